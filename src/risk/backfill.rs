//! A declared batched backfill (`-- cutover: backfill table=t set="…" key=id
//! batch=2s where="…"`) as the plan shows it: the batched UPDATE it runs,
//! not the placeholder statement beside it, with its own risk and estimate.
//!
//! The UPDATE is classified like any statement (lock, work, table size),
//! then judged as what it is: batches by key range are the safe form of a
//! full-table UPDATE (so `dml-without-where` does not apply), but on a big
//! table each batch still holds row locks, every changed row goes to the
//! WAL/binlog and replicas can lag: `batched-backfill` (medium, scaled by
//! size; unknown size counts as big).

use super::{Context, Eval, PlanState, estimate, evaluate};
use crate::migrate::{BackfillDirective, Migration};
use crate::model::{Blocks, Estimate, Risk, StatementVerdict};
use crate::sql::analyze::analyze;
use crate::sql::redact::{redact_with_secrets, scrub};
use std::collections::HashMap;

/// The statement the directive runs, as SQL (one batch without its key range).
pub fn update_sql(b: &BackfillDirective) -> String {
    match &b.predicate {
        Some(p) => format!("UPDATE {} SET {} WHERE {p}", b.table, b.set),
        None => format!("UPDATE {} SET {}", b.table, b.set),
    }
}

/// `48,000,000`.
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `~500 ms`, `~2 s`.
fn batch_label(seconds: f64) -> String {
    if seconds < 1.0 {
        format!("~{} ms", (seconds * 1000.0).round())
    } else {
        format!("~{} s", (seconds * 10.0).round() / 10.0)
    }
}

/// What the plan shows for `b`: its statement text says it is batched.
pub fn shown_sql(b: &BackfillDirective) -> String {
    format!(
        "{} — in batches of {} by {}",
        update_sql(b),
        batch_label(b.batch_seconds),
        b.key
    )
}

/// The verdict on one backfill directive of `m` (see the module doc).
pub(super) fn verdict(
    b: &BackfillDirective,
    m: &Migration,
    ctx: &Context,
    st: &mut PlanState,
) -> StatementVerdict {
    let sql = update_sql(b);
    let analysis = analyze(&sql, m.engine);
    let mut ev = Eval::new(
        ctx,
        m.engine,
        &sql,
        st.created,
        st.plan_indexes,
        st.checked_domains,
        st.fulltext,
    );
    evaluate(&mut ev, &analysis, &HashMap::new());
    // Batches by key range are what `dml-without-where` asks for.
    ev.findings.retain(|f| f.rule != "dml-without-where");
    let table = ev
        .lock
        .table
        .clone()
        .or_else(|| analysis.op.table().map(str::to_string))
        .unwrap_or_else(|| b.table.clone());
    let large = ev.large(&table);
    let est = estimate::estimate(&ev, &analysis.op);
    let rows = ctx.catalog.lookup(&table).and_then(|f| f.rows);
    let per_batch = (ctx.rules.throughput.dml_rows_per_s * b.batch_seconds).max(1.0);
    let detail = match rows.filter(|_| ev.exists(&table)) {
        Some(r) => format!(
            "batches of {} by {} (~{} rows, ~{} batches)",
            batch_label(b.batch_seconds),
            b.key,
            thousands(r),
            thousands((r as f64 / per_batch).ceil() as u64)
        ),
        None => format!(
            "batches of {} by {} (table size unknown)",
            batch_label(b.batch_seconds),
            b.key
        ),
    };
    ev.add(
        "batched-backfill",
        large,
        &[("table", &table), ("column", &b.key), ("detail", &detail)],
    );
    // Locks last one batch; the whole run lasts as estimated from the size.
    let estimate = est.map(|e| Estimate {
        lock_seconds: if ev.lock.blocks == Blocks::Nothing {
            0.0
        } else {
            b.batch_seconds.min(e.duration_seconds)
        },
        duration_seconds: e.duration_seconds,
    });
    let mut lock = ev.lock.clone();
    if lock.blocks != Blocks::Nothing {
        lock.mode = format!("{} (one batch of rows at a time)", lock.mode);
    }
    let risk = ev
        .findings
        .iter()
        .map(|f| f.risk)
        .max()
        .unwrap_or(Risk::Low);
    let (shown, secrets) = redact_with_secrets(&shown_sql(b));
    let mut findings = ev.findings;
    if !secrets.is_empty() {
        for f in &mut findings {
            f.reason = scrub(&f.reason, &secrets);
            f.safe_alternative = f.safe_alternative.as_ref().map(|a| scrub(a, &secrets));
        }
    }
    StatementVerdict {
        index: 0,
        line: b.line,
        sql: shown,
        risk,
        lock,
        rewrites_table: false,
        estimate,
        findings,
    }
}
