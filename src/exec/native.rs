//! What the native executors share: the plan of steps (statements grouped by
//! the transaction boundaries the migration's tool uses, declared backfills,
//! history records), the run-time control state, chunk sizing and the status
//! they publish. Engine-specific I/O lives in `native_pg` / `native_mysql`.

use super::{ExecPhase, ExecStatus, Leftover, Outcome, Progress};
use crate::migrate::{BackfillDirective, Migration, SourceFormat};
use crate::risk::txn::transaction_groups;
use crate::sql::analyze::analyze;
use crate::sql::ops::Op;
use crate::sql::split::RawStatement;
use chrono::Utc;
use std::sync::{Arc, Mutex};

/// One thing to do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Statements run exactly as written. `in_txn`: they form one transaction
    /// (`wrap`: the executor adds BEGIN/COMMIT because the tool would);
    /// otherwise a single autocommit statement.
    Unit {
        /// Index into the migrations.
        migration: usize,
        /// The statements.
        statements: Vec<RawStatement>,
        /// One transaction.
        in_txn: bool,
        /// BEGIN/COMMIT added by the executor.
        wrap: bool,
        /// Insert the migration's history row inside this transaction, just
        /// before its COMMIT (see [`record_in_transactions`]).
        record: bool,
    },
    /// A backfill declared by a `-- cutover: backfill` directive.
    Backfill {
        /// Index into the migrations.
        migration: usize,
        /// The directive.
        directive: BackfillDirective,
    },
    /// Record the migration in its tool's history table.
    Record {
        /// Index into the migrations.
        migration: usize,
    },
}

impl Step {
    /// The migration it belongs to.
    pub fn migration(&self) -> usize {
        match self {
            Step::Unit { migration, .. }
            | Step::Backfill { migration, .. }
            | Step::Record { migration } => *migration,
        }
    }

    /// `V2__x.sql:9 `ALTER TABLE orders …`` : the statement of this step that
    /// runs now, at its own line, so a failure names what failed and where.
    pub fn statement_label(
        &self,
        migrations: &[Migration],
        statement: &crate::sql::split::RawStatement,
    ) -> String {
        let file = super::history::script_name(&migrations[self.migration()]);
        format!("{file}:{} `{}`", statement.line, clip_sql(&statement.sql))
    }

    /// `V2__x.sql:7` style label.
    pub fn label(&self, migrations: &[Migration]) -> String {
        let m = &migrations[self.migration()];
        let file = super::history::script_name(m);
        match self {
            Step::Unit { statements, .. } => {
                format!("{file}:{}", statements.first().map(|s| s.line).unwrap_or(0))
            }
            Step::Backfill { directive, .. } => format!("{file}:{} (backfill)", directive.line),
            Step::Record { .. } => format!("{file} (history record)"),
        }
    }
}

/// A statement on one line, at most 80 characters (for failure messages).
pub fn clip_sql(sql: &str) -> String {
    let one: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    let shown: String = one.chars().take(80).collect();
    if shown.len() < one.len() {
        format!("{shown}…")
    } else {
        shown
    }
}

/// Plans the steps of `migrations`: transaction groups from
/// [`transaction_groups`], backfills at their directive's line, and a history
/// record after each Flyway migration when `record_history`.
pub fn plan_steps(migrations: &[Migration], record_history: bool) -> Vec<Step> {
    let mut out = Vec::new();
    for (mi, m) in migrations.iter().enumerate() {
        let analyses: Vec<_> = m
            .statements
            .iter()
            .map(|s| analyze(&s.sql, m.engine))
            .collect();
        let ops: Vec<&Op> = analyses.iter().map(|a| &a.op).collect();
        let groups = transaction_groups(m, &ops);
        let mut backfills: Vec<&BackfillDirective> = m.directives.backfills.iter().collect();
        backfills.sort_by_key(|b| b.line);
        let mut bi = 0;
        let mut i = 0;
        while i < m.statements.len() {
            while bi < backfills.len() && backfills[bi].line < m.statements[i].line {
                out.push(Step::Backfill {
                    migration: mi,
                    directive: backfills[bi].clone(),
                });
                bi += 1;
            }
            match groups[i] {
                None => {
                    out.push(Step::Unit {
                        migration: mi,
                        statements: vec![m.statements[i].clone()],
                        in_txn: false,
                        wrap: false,
                        record: false,
                    });
                    i += 1;
                }
                Some(g) => {
                    let start = i;
                    while i < m.statements.len() && groups[i] == Some(g) {
                        i += 1;
                    }
                    let wrap = !matches!(ops[start], Op::Begin);
                    out.push(Step::Unit {
                        migration: mi,
                        statements: m.statements[start..i].to_vec(),
                        in_txn: true,
                        wrap,
                        record: false,
                    });
                }
            }
        }
        for b in &backfills[bi..] {
            out.push(Step::Backfill {
                migration: mi,
                directive: (*b).clone(),
            });
        }
        if record_history && m.format == SourceFormat::Flyway {
            out.push(Step::Record { migration: mi });
        }
    }
    out
}

/// Moves each history record into the migration's last transaction when
/// that transaction ends the migration (PostgreSQL: transactional DDL), so a
/// crash can never leave a migration applied but unrecorded, or recorded but
/// not applied. A unit counts when the executor adds the COMMIT (`wrap`) or
/// the file's own last statement is `COMMIT`.
pub fn record_in_transactions(steps: Vec<Step>, migrations: &[Migration]) -> Vec<Step> {
    let mut out: Vec<Step> = Vec::with_capacity(steps.len());
    for step in steps {
        if let Step::Record { migration } = step
            && let Some(Step::Unit {
                migration: um,
                statements,
                in_txn: true,
                wrap,
                record,
            }) = out.last_mut()
            && *um == migration
        {
            let ends_with_commit = statements.last().is_some_and(|s| {
                matches!(analyze(&s.sql, migrations[migration].engine).op, Op::Commit)
            });
            if *wrap || ends_with_commit {
                *record = true;
                continue;
            }
        }
        out.push(step);
    }
    out
}

/// Run-time controls as the executor's task sees them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ctl {
    /// Paused by a human.
    pub paused: bool,
    /// Throttled by the run core (its own lag pollers).
    pub throttled: Option<String>,
    /// Abort requested.
    pub abort: bool,
    /// Chunk size set by a human.
    pub chunk_rows: Option<u32>,
    /// Max lag in seconds.
    pub max_lag_seconds: f64,
}

impl Ctl {
    /// Applies a control (cut-over is refused before it gets here).
    pub fn apply(&mut self, c: super::Control) {
        use super::Control;
        match c {
            Control::Pause => self.paused = true,
            Control::Resume => self.paused = false,
            Control::Throttle { reason } => self.throttled = Some(reason),
            Control::Unthrottle => self.throttled = None,
            Control::Abort { .. } => self.abort = true,
            Control::SetChunkSize { rows } => self.chunk_rows = Some(rows.max(1)),
            Control::SetMaxLag { millis } => self.max_lag_seconds = millis as f64 / 1000.0,
            Control::CutOver { .. } => {}
        }
    }
}

impl Ctl {
    /// What holds the executor between chunks and steps, if anything: a
    /// pause dominates a throttle (a resume may leave it throttled), and
    /// the core's throttle dominates the executor's own lag reading `lag`.
    pub fn holding(&self, lag: Option<String>) -> Option<ExecPhase> {
        if self.paused {
            Some(ExecPhase::Paused)
        } else {
            self.throttled
                .clone()
                .or(lag)
                .map(|reason| ExecPhase::Throttled { reason })
        }
    }
}

/// Share of the target time a chunk is sized for: chunk times vary by a
/// few tens of percent (checkpoints, page cache), and the target is a bound
/// on how long a chunk holds its row locks, not an average.
pub const CHUNK_AIM: f64 = 0.75;

/// The next chunk size, aiming at [`CHUNK_AIM`] of `target_s` per chunk from
/// the last chunk's `rows` and `elapsed_s`: grows by at most half per step
/// (chunk time grows faster than linearly on InnoDB once a chunk no longer
/// fits its buffers), and shrinks as far as needed (down to a quarter) after
/// a slow chunk; 100 to 1,000,000 rows.
pub fn next_chunk(rows: u64, elapsed_s: f64, target_s: f64) -> u64 {
    let factor = if elapsed_s <= 0.0 {
        1.5
    } else {
        (target_s * CHUNK_AIM / elapsed_s).clamp(0.25, 1.5)
    };
    ((rows as f64 * factor) as u64).clamp(100, 1_000_000)
}

/// The throttle reason when any replica is over `max_lag_seconds` or
/// unknown (unknown counts as over), naming each.
pub fn lag_reason(samples: &[crate::lag::LagSample], max_lag_seconds: f64) -> Option<String> {
    let over: Vec<String> = samples
        .iter()
        .filter(|s| crate::lag::over_limit(s, max_lag_seconds))
        .map(|s| match s.seconds {
            Some(v) => format!("{} lag={v:.1}s", s.replica),
            None => format!("{} lag unknown", s.replica),
        })
        .collect();
    (!over.is_empty()).then(|| over.join(", "))
}

/// Seconds left at the observed rate; `None` until there is a rate.
pub fn eta(done: f64, total: f64, busy_seconds: f64) -> Option<f64> {
    (done > 0.0 && busy_seconds > 0.0 && total >= done)
        .then(|| (total - done) * busy_seconds / done)
}

/// Status and outcome shared between the task and the trait methods.
#[derive(Debug)]
pub struct Shared {
    /// Latest status.
    pub status: ExecStatus,
    /// Final outcome.
    pub outcome: Option<Outcome>,
    /// What is left behind so far.
    pub leftovers: Vec<Leftover>,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            status: ExecStatus {
                phase: ExecPhase::NotRunning,
                progress: None,
                at: Utc::now(),
            },
            outcome: None,
            leftovers: Vec::new(),
        }
    }
}

/// Locks the shared state; a panicked holder cannot tear plain data.
pub fn lock(m: &Arc<Mutex<Shared>>) -> std::sync::MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A progress value with only a detail (statements that report nothing).
pub fn detail_only(detail: String, max_lag_seconds: f64) -> Progress {
    Progress {
        max_lag_millis: Some((max_lag_seconds * 1000.0) as u64),
        detail: Some(detail),
        ..Progress::default()
    }
}

/// The leftover that says which statements ran and which did not.
pub fn statements_leftover(
    steps: &[Step],
    done: usize,
    migrations: &[Migration],
) -> Option<Leftover> {
    if done >= steps.len() {
        return None;
    }
    let not_run: Vec<String> = steps[done..].iter().map(|s| s.label(migrations)).collect();
    Some(Leftover {
        kind: "statements".into(),
        name: format!(
            "{done} of {} steps applied; not applied: {}",
            steps.len(),
            not_run.join(", ")
        ),
        cleanup: None,
    })
}

/// What a stopped backfill left: the keys updated (before an interruption
/// and in this run), and the keys not updated. `keys` = (first key, key this
/// run started at, first key not updated, last key).
pub fn backfill_leftover(table: &str, keys: (i64, i64, i64, i64), rows: u64) -> Leftover {
    let (min, start, lo, max) = keys;
    let done = if start > min {
        format!(
            "keys {min}..{} updated before the interruption, keys {start}..{} after it ({rows} rows)",
            start - 1,
            lo - 1
        )
    } else {
        format!("keys {min}..{} updated ({rows} rows)", lo - 1)
    };
    Leftover {
        kind: "backfill".into(),
        name: format!("{table}: {done}, keys {lo}..{max} not"),
        cleanup: None,
    }
}

/// The closing summary of a native run: `3 of 3 steps applied; resumed:
/// …; backfill t: keys 1..35800 before the interruption, keys 35801..100000
/// after it (64200 rows)`.
pub fn run_summary(done: usize, n: usize, resumed: Option<String>, notes: &[String]) -> String {
    let mut parts = vec![format!("{done} of {n} steps applied")];
    if let Some(r) = resumed {
        parts.push(format!("resumed: {r}"));
    }
    parts.extend(notes.iter().cloned());
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::{Directives, TxWrap};
    use crate::model::Engine;

    fn mig(
        text: &str,
        tx: TxWrap,
        format: SourceFormat,
        backfills: Vec<BackfillDirective>,
    ) -> Migration {
        Migration {
            version: "1".into(),
            description: "x".into(),
            path: "V1__x.sql".into(),
            checksum: String::new(),
            engine: Engine::Postgres,
            format,
            repeatable: false,
            tx,
            directives: Directives {
                backfills,
                ..Directives::default()
            },
            statements: crate::sql::split::split(text, Engine::Postgres, 1, ";"),
            text: text.into(),
        }
    }

    #[test]
    fn whole_migration_is_one_wrapped_unit_then_recorded() {
        let m = mig(
            "ALTER TABLE t ADD c int;\nALTER TABLE t ADD d int;\n",
            TxWrap::Whole,
            SourceFormat::Flyway,
            vec![],
        );
        let s = plan_steps(&[m], true);
        assert_eq!(s.len(), 2);
        assert!(
            matches!(&s[0], Step::Unit { statements, in_txn: true, wrap: true, .. } if statements.len() == 2)
        );
        assert_eq!(s[1], Step::Record { migration: 0 });
        let m = mig(
            "ALTER TABLE t ADD c int;\nALTER TABLE t ADD d int;\n",
            TxWrap::Whole,
            SourceFormat::Flyway,
            vec![],
        );
        let s = record_in_transactions(s, std::slice::from_ref(&m));
        assert_eq!(s.len(), 1);
        assert!(matches!(&s[0], Step::Unit { record: true, .. }));
    }

    #[test]
    fn record_stays_separate_after_a_non_transactional_statement() {
        let m = mig(
            "CREATE INDEX CONCURRENTLY i ON t (c);\n",
            TxWrap::Whole,
            SourceFormat::Flyway,
            vec![],
        );
        let s = record_in_transactions(
            plan_steps(std::slice::from_ref(&m), true),
            std::slice::from_ref(&m),
        );
        assert_eq!(s.len(), 2);
        assert_eq!(s[1], Step::Record { migration: 0 });
        // The file's own BEGIN … COMMIT: the record goes before its COMMIT.
        let m = mig(
            "BEGIN;\nALTER TABLE t ADD e int;\nCOMMIT;\n",
            TxWrap::AsWritten,
            SourceFormat::Flyway,
            vec![],
        );
        let s = record_in_transactions(
            plan_steps(std::slice::from_ref(&m), true),
            std::slice::from_ref(&m),
        );
        assert!(matches!(
            &s[..],
            [Step::Unit {
                record: true,
                wrap: false,
                ..
            }]
        ));
    }

    #[test]
    fn concurrently_runs_alone_outside_a_transaction_and_backfill_at_its_line() {
        let b = BackfillDirective {
            table: "t".into(),
            set: "c = 0".into(),
            key: "id".into(),
            predicate: None,
            batch_seconds: 1.0,
            line: 2,
        };
        let m = mig(
            "ALTER TABLE t ADD c int;\n-- cutover: backfill\nCREATE INDEX CONCURRENTLY t_c ON t (c);\nBEGIN;\nALTER TABLE t ADD e int;\nCOMMIT;\n",
            TxWrap::Whole,
            SourceFormat::Flyway,
            vec![b],
        );
        let s = plan_steps(&[m], false);
        assert!(matches!(&s[0], Step::Unit { in_txn: false, .. }));
        assert!(matches!(&s[1], Step::Backfill { .. }));
        assert!(
            matches!(&s[2], Step::Unit { in_txn: false, statements, .. } if statements[0].sql.contains("CONCURRENTLY"))
        );
        assert!(
            matches!(&s[3], Step::Unit { in_txn: true, wrap: false, statements, .. } if statements.len() == 3)
        );
    }

    #[test]
    fn chunk_sizing_and_eta() {
        assert_eq!(next_chunk(1000, 0.25, 1.0), 1500);
        assert_eq!(next_chunk(1000, 0.6, 1.0), 1250);
        assert_eq!(next_chunk(1000, 8.0, 1.0), 250);
        assert_eq!(next_chunk(1000, 1.25, 1.0), 600);
        assert_eq!(next_chunk(50, 0.0, 1.0), 100);
        assert_eq!(next_chunk(1000, 0.0, 1.0), 1500);
        assert_eq!(eta(25.0, 100.0, 10.0), Some(30.0));
        assert_eq!(eta(0.0, 100.0, 10.0), None);
    }
}
