//! Human-readable plan: one block per migration, one row per statement.

use crate::model::{Blocks, Plan, Risk};
use std::fmt::Write;

/// Renders the plan; `color` adds ANSI colours (only on a TTY, never with NO_COLOR).
pub fn render(plan: &Plan, color: bool) -> String {
    let paint = |risk: Risk, s: &str| -> String {
        if !color {
            return s.to_string();
        }
        let code = match risk {
            Risk::High => "1;31",
            Risk::Medium => "1;33",
            Risk::Low => "32",
        };
        format!("\x1b[{code}m{s}\x1b[0m")
    };
    let badge = |r: Risk| paint(r, &format!("[{}]", r.as_str().to_uppercase()));
    let mut out = String::new();
    let stmts: usize = plan.migrations.iter().map(|m| m.statements.len()).sum();
    let _ = writeln!(
        out,
        "cutover plan: {} migration(s), {} statement(s), risk {}  (engine {}, digest {})",
        plan.migrations.len(),
        stmts,
        badge(plan.risk),
        plan.engine_version,
        &plan.plan_digest[..12.min(plan.plan_digest.len())]
    );
    if let Some(h) = &plan.history {
        let _ = writeln!(
            out,
            "history on target {}: {} migration(s) skipped as already applied{}",
            h.target,
            h.skipped_applied.len(),
            if h.changed_after_apply.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} CHANGED AFTER BEING APPLIED: {}",
                    h.changed_after_apply.len(),
                    h.changed_after_apply.join(", ")
                )
            }
        );
        for n in &h.notes {
            let _ = writeln!(out, "  note: {n}");
        }
    }
    for m in &plan.migrations {
        let _ = writeln!(out);
        let exec = m
            .executor
            .as_deref()
            .map(|e| format!(", executor {e}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{} {}  {}  ({}, {}{exec})",
            badge(m.risk),
            m.version,
            m.description,
            m.format,
            m.engine
        );
        let _ = writeln!(
            out,
            "    {}  sha256:{}",
            m.path,
            &m.checksum[..12.min(m.checksum.len())]
        );
        for s in &m.statements {
            let first = s.sql.lines().next().unwrap_or("");
            let sql = if first.chars().count() > 90 {
                format!("{}…", first.chars().take(89).collect::<String>())
            } else {
                first.to_string()
            };
            let blocks = match s.lock.blocks {
                Blocks::Nothing => "blocks nothing",
                Blocks::Writes => "blocks writes",
                Blocks::ReadsAndWrites => "blocks reads+writes",
            };
            let est = match &s.estimate {
                Some(e) => format!(
                    "lock ~{}, total ~{}",
                    secs(e.lock_seconds),
                    secs(e.duration_seconds)
                ),
                None => "estimate unknown (table size unknown)".into(),
            };
            let _ = writeln!(
                out,
                "  {:>3} L{:<5} {} {}",
                s.index,
                s.line,
                paint(s.risk, &format!("{:<6}", s.risk.as_str())),
                sql
            );
            let _ = writeln!(
                out,
                "             {} on {} — {}{} — {}",
                s.lock.mode,
                s.lock.table.as_deref().unwrap_or("-"),
                blocks,
                if s.rewrites_table {
                    ", rewrites table"
                } else {
                    ""
                },
                est
            );
            for f in &s.findings {
                let _ = writeln!(
                    out,
                    "             {} {}: {}",
                    paint(f.risk, &format!("{:<6}", f.risk.as_str())),
                    f.rule,
                    f.reason
                );
                if let Some(a) = &f.safe_alternative {
                    for (i, l) in a.lines().enumerate() {
                        let _ = writeln!(
                            out,
                            "             {} {}",
                            if i == 0 { "  safer:" } else { "        " },
                            l
                        );
                    }
                }
            }
        }
        for f in &m.findings {
            let _ = writeln!(
                out,
                "  migration {} {}: {}",
                paint(f.risk, f.risk.as_str()),
                f.rule,
                f.reason
            );
            if let Some(a) = &f.safe_alternative {
                let _ = writeln!(out, "             safer: {a}");
            }
        }
    }
    out
}

/// `0.05` → `50ms`, `75` → `1m15s`, `7200` → `2h0m`.
pub fn secs(s: f64) -> String {
    if s < 1.0 {
        format!("{}ms", (s * 1000.0).round() as u64)
    } else if s < 60.0 {
        format!("{:.1}s", s)
    } else if s < 3600.0 {
        format!("{}m{}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!("{}h{}m", (s / 3600.0) as u64, ((s % 3600.0) / 60.0) as u64)
    }
}
