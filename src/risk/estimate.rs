//! Lock and duration estimates from table size and the throughput model.

use super::{Eval, WorkKind};
use crate::model::{Blocks, Estimate};
use crate::sql::ops::Op;

/// Average row size assumed when only the row count is known.
const BYTES_PER_ROW: f64 = 100.0;

/// `None` when the table's size is unknown (the plan says so with `table-size-unknown`).
pub fn estimate(ev: &Eval, op: &Op) -> Option<Estimate> {
    let tp = ev.ctx.rules.throughput;
    let Some(table) = ev
        .lock
        .table
        .clone()
        .or_else(|| op.table().map(str::to_string))
    else {
        return Some(Estimate {
            lock_seconds: 0.0,
            duration_seconds: 0.0,
        });
    };
    if ev.work.is_empty() {
        let lock = if ev.lock.blocks == Blocks::Nothing {
            0.0
        } else {
            tp.lock_acquire_seconds
        };
        return Some(Estimate {
            lock_seconds: lock,
            duration_seconds: lock,
        });
    }
    let (rows, bytes) = if ev.exists(&table) {
        let f = ev.ctx.catalog.lookup(&table)?;
        match (f.rows, f.bytes) {
            (Some(r), Some(b)) => (r as f64, b as f64),
            (Some(r), None) => (r as f64, r as f64 * BYTES_PER_ROW),
            (None, Some(b)) => (b as f64 / BYTES_PER_ROW, b as f64),
            (None, None) => return None,
        }
    } else {
        (0.0, 0.0)
    };
    let mb = bytes / 1_048_576.0;
    let mut duration = 0.0;
    let mut lock = 0.0;
    for (kind, blocking) in &ev.work {
        let secs = match kind {
            WorkKind::Meta => tp.lock_acquire_seconds,
            WorkKind::Scan => mb / tp.scan_mb_per_s,
            WorkKind::Build => mb / tp.scan_mb_per_s + mb / tp.index_build_mb_per_s,
            WorkKind::Rewrite => mb / tp.rewrite_mb_per_s,
            WorkKind::Dml => rows / tp.dml_rows_per_s,
        };
        duration += secs;
        if *blocking {
            lock += secs;
        }
    }
    if ev.lock.blocks != Blocks::Nothing && lock == 0.0 {
        lock = tp.lock_acquire_seconds;
    }
    Some(Estimate {
        lock_seconds: round(lock),
        duration_seconds: round(duration.max(lock)),
    })
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
