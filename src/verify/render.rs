//! Text rendering of a [`VerifyReport`]: the plan's layout, with the observed
//! lock, blocks and rewrite beside the predicted ones.

use super::{Method, Outcome, VerifyReport};
use crate::model::{Blocks, Risk};
use std::fmt::Write;

fn blocks(b: Blocks) -> &'static str {
    match b {
        Blocks::Nothing => "blocks nothing",
        Blocks::Writes => "blocks writes",
        Blocks::ReadsAndWrites => "blocks reads+writes",
    }
}

fn badge(r: Risk) -> String {
    format!("[{}]", r.as_str().to_uppercase())
}

/// Renders the report for people.
pub fn text(r: &VerifyReport) -> String {
    let mut out = String::new();
    let stmts: usize = r.migrations.iter().map(|m| m.statements.len()).sum();
    let _ = writeln!(
        out,
        "cutover verify on target {} ({}): {} migration(s), {} statement(s), risk {} predicted, {} verified; {} disagreement(s), {} failed  (digest {})",
        r.target,
        r.server_version,
        r.migrations.len(),
        stmts,
        badge(r.predicted_risk),
        badge(r.risk),
        r.disagreements,
        r.failed,
        &r.plan_digest[..12.min(r.plan_digest.len())]
    );
    for m in &r.migrations {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{} {}  {}  ({})",
            badge(m.risk),
            m.version,
            m.description,
            m.path
        );
        for s in &m.statements {
            let v = &s.verdict;
            let first = v.sql.lines().next().unwrap_or("");
            let sql: String = if first.chars().count() > 90 {
                format!("{}…", first.chars().take(89).collect::<String>())
            } else {
                first.to_string()
            };
            let risk = if s.predicted_risk == v.risk {
                v.risk.as_str().to_string()
            } else {
                format!("{}→{}", s.predicted_risk.as_str(), v.risk.as_str())
            };
            let _ = writeln!(out, "  {:>3} L{:<5} {:<11} {}", v.index, v.line, risk, sql);
            let _ = writeln!(
                out,
                "             predicted: {} on {} — {}{}",
                v.lock.mode,
                v.lock.table.as_deref().unwrap_or("-"),
                blocks(v.lock.blocks),
                if v.rewrites_table {
                    ", rewrites table"
                } else {
                    ""
                }
            );
            match &s.outcome {
                Outcome::Observed(o) => {
                    let how = match o.method {
                        Some(Method::Transaction) => "in a rolled-back transaction",
                        Some(Method::ScratchCopy) => "on a scratch copy",
                        None => "",
                    };
                    let lock = match &o.lock {
                        Some(l) => format!(
                            "{} on {} — {}",
                            l.mode,
                            l.table.as_deref().unwrap_or("-"),
                            blocks(l.blocks)
                        ),
                        None => "lock not observed".into(),
                    };
                    let rewrite = match o.rewrote {
                        Some(true) => ", rewrote table",
                        Some(false) => ", no rewrite",
                        None => "",
                    };
                    let copied = match o.rows_copied {
                        Some(n) if n > 0 => format!(", {n} rows affected"),
                        _ => String::new(),
                    };
                    let _ = writeln!(
                        out,
                        "             observed:  {lock}{rewrite}{copied} — {:.1}ms {how}",
                        o.duration_ms
                    );
                    for x in &o.others_text() {
                        let _ = writeln!(out, "                        {x}");
                    }
                    for n in &o.notes {
                        let _ = writeln!(out, "                        note: {n}");
                    }
                }
                Outcome::Failed { error } => {
                    let _ = writeln!(out, "             observed:  FAILED: {error}");
                }
                Outcome::Skipped { reason } => {
                    let _ = writeln!(out, "             observed:  not run ({reason})");
                }
            }
            for f in &s.disagreements {
                let _ = writeln!(
                    out,
                    "             {:<6} {}: {}",
                    f.risk.as_str(),
                    f.rule,
                    f.reason
                );
            }
        }
    }
    let _ = writeln!(out);
    if r.leftovers.is_empty() {
        let _ = writeln!(out, "scratch work removed: nothing left behind");
    } else {
        let _ = writeln!(out, "LEFT BEHIND: {}", r.leftovers.join(", "));
    }
    out
}

impl super::Observed {
    /// The accepted/refused clauses and locks on other tables, one line each.
    fn others_text(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(a) = &self.accepted {
            v.push(format!("accepted: {a}"));
        }
        for r in &self.refused {
            v.push(format!("refused:  {r}"));
        }
        if let Some(l) = &self.lock {
            for o in &l.other_locks {
                v.push(format!(
                    "also {} on {} — {}",
                    o.mode,
                    o.table,
                    blocks(o.blocks)
                ));
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;
    use crate::verify::{Observed, Outcome, VerifiedMigration, VerifiedStatement};

    #[test]
    fn shows_predicted_beside_observed_and_the_raise() {
        let lock = |mode: &str, blocks| Lock {
            mode: mode.into(),
            blocks,
            table: Some("t".into()),
            other_locks: vec![],
        };
        let finding = Finding {
            rule: "observed-table-rewrite".into(),
            risk: Risk::High,
            reason: "staging rewrote the table".into(),
            safe_alternative: None,
        };
        let r = VerifyReport {
            target: "staging".into(),
            server_version: "postgres 15".into(),
            plan_digest: "abcdef0123456789".into(),
            predicted_risk: Risk::Low,
            risk: Risk::High,
            migrations: vec![VerifiedMigration {
                version: "1".into(),
                description: "widen".into(),
                path: "V1__widen.sql".into(),
                engine: Engine::Postgres,
                risk: Risk::High,
                statements: vec![VerifiedStatement {
                    verdict: StatementVerdict {
                        index: 0,
                        line: 3,
                        sql: "ALTER TABLE t ALTER COLUMN c TYPE bigint".into(),
                        risk: Risk::High,
                        lock: lock("AccessExclusiveLock", Blocks::ReadsAndWrites),
                        rewrites_table: false,
                        estimate: None,
                        findings: vec![finding.clone()],
                    },
                    predicted_risk: Risk::Low,
                    outcome: Outcome::Observed(Observed {
                        method: Some(crate::verify::Method::Transaction),
                        lock: Some(lock("AccessExclusiveLock", Blocks::ReadsAndWrites)),
                        rewrote: Some(true),
                        duration_ms: 12.5,
                        ..Observed::default()
                    }),
                    disagreements: vec![finding],
                }],
            }],
            disagreements: 1,
            failed: 0,
            leftovers: vec![],
        };
        let t = text(&r);
        assert!(t.contains("low→high"), "{t}");
        assert!(
            t.contains("predicted: AccessExclusiveLock on t — blocks reads+writes\n"),
            "{t}"
        );
        assert!(t.contains("observed:  AccessExclusiveLock on t — blocks reads+writes, rewrote table — 12.5ms in a rolled-back transaction"), "{t}");
        assert!(
            t.contains("high   observed-table-rewrite: staging rewrote the table"),
            "{t}"
        );
        assert!(t.contains("nothing left behind"), "{t}");
    }
}
