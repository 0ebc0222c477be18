//! Resuming an interrupted native run: which steps completed, and where to
//! start again so that every statement is applied exactly once.
//!
//! Three sources, strongest first:
//! 1. The history table: a Flyway migration recorded with its current
//!    checksum is applied as a whole (on PostgreSQL the row is written in the
//!    migration's own transaction, so it cannot lie).
//! 2. The run's journal (`native-journal.jsonl` in the run directory),
//!    appended and fsynced after each statement or step. For a PostgreSQL
//!    transaction the journal holds its transaction id *before* COMMIT is
//!    sent, so `txid_status` tells later whether it committed.
//! 3. The live catalog, for the one statement that may have run after the
//!    last journal write (a crash between the statement and the fsync):
//!    the table, column or index it creates or drops is there or not. When
//!    the catalog cannot tell (DML, most constraints), resuming is refused
//!    with the statement named: guessing could apply it twice.
//!
//! A backfill resumes at the key after its last committed chunk, never from
//! its first key (its SET need not be idempotent, e.g. `c = c + 1`). On
//! PostgreSQL each chunk is a transaction whose id is journaled with the
//! chunk's key range before COMMIT ([`Entry::Chunk`]); on MySQL/MariaDB the
//! chunk's transaction also writes its last key to a marker row
//! ([`MARKER_TABLE`], [`Entry::Backfill`] names the row), which commits or
//! rolls back with the chunk.

use super::native::Step;
use crate::migrate::Migration;
use crate::model::Engine;
use crate::sql::analyze::analyze;
use crate::sql::ops::{Action, ConstraintKind, Op};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The journal file's name inside the run directory.
pub const JOURNAL_FILE: &str = "native-journal.jsonl";

/// MySQL/MariaDB: the table in the target database whose rows hold each
/// running backfill's last committed key (written in the chunk's transaction).
pub const MARKER_TABLE: &str = "cutover_backfill_marker";

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    /// A run of this plan started (written before its first statement).
    Started,
    /// The first `statements` statements of step `step` are applied
    /// (`statements == None`: the whole step).
    Done {
        /// Step index.
        step: usize,
        /// The step's label, to catch a journal of another plan.
        label: String,
        /// Statements done within the step; `None` = all.
        statements: Option<usize>,
    },
    /// Step `step`'s transaction id, written before its COMMIT is sent.
    Xid {
        /// Step index.
        step: usize,
        /// `txid_current()` as text.
        xid: String,
    },
    /// A backfill step started over keys `min..=max` (MySQL: its marker row
    /// is `token`). Written before its first chunk.
    Backfill {
        /// Step index.
        step: usize,
        /// First key of the table when it started.
        min: i64,
        /// Last key.
        max: i64,
        /// MySQL/MariaDB: the key of its row in [`MARKER_TABLE`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
    },
    /// PostgreSQL: a backfill chunk over keys `lo..=hi` in transaction `xid`,
    /// written before its COMMIT is sent. Every earlier chunk committed
    /// (a chunk starts only after the one before it is known committed).
    Chunk {
        /// Step index.
        step: usize,
        /// First key of the chunk.
        lo: i64,
        /// Last key.
        hi: i64,
        /// `txid_current()` as text.
        xid: String,
    },
    /// The executor opened this session on the server (PostgreSQL
    /// `pid@backend_start`, MySQL/MariaDB connection id). The server goes on
    /// with a statement after its client died (an index build, an ALTER):
    /// a resume waits until no journaled session runs anything, else it
    /// would judge a half-done statement and issue it again.
    Session {
        /// The server's identity of the session.
        id: String,
    },
}

/// Where an interrupted backfill stands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BackfillJournal {
    /// Key range when it started.
    pub min: i64,
    /// Last key.
    pub max: i64,
    /// MySQL marker row.
    pub token: Option<String>,
    /// PostgreSQL: the last chunk journaled (`lo`, `hi`, `xid`).
    pub last_chunk: Option<(i64, i64, String)>,
}

/// How far an interrupted backfill got, settled against the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillResume {
    /// First key of the backfill when it started.
    pub min: i64,
    /// Its last key.
    pub max: i64,
    /// The first key not committed: the backfill resumes here.
    pub next: i64,
    /// MySQL marker row, reused by the resumed backfill.
    pub token: Option<String>,
}

impl BackfillResume {
    /// `keys 1..35800 committed before the interruption; resuming at key 35801`.
    pub fn describe(&self) -> String {
        if self.next <= self.min {
            format!(
                "no chunk of keys {}..{} committed before the interruption; resuming at key {}",
                self.min, self.max, self.next
            )
        } else {
            format!(
                "keys {}..{} committed before the interruption; resuming at key {}",
                self.min,
                self.next - 1,
                self.next
            )
        }
    }
}

/// Append-only, fsynced journal of one run.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
}

impl Journal {
    /// The journal in `run_dir` (created on first write).
    pub fn new(run_dir: &Path) -> Journal {
        Journal {
            path: run_dir.join(JOURNAL_FILE),
        }
    }

    /// Appends `e` and fsyncs, so that a crash after this returns cannot lose it.
    pub fn append(&self, e: &Entry) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        let line = serde_json::to_string(e).map_err(std::io::Error::other)?;
        writeln!(f, "{line}")?;
        f.sync_data()
    }

    /// Every entry; a torn last line (a crash mid-write) is ignored.
    pub fn read(&self) -> std::io::Result<Vec<Entry>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect())
    }
}

/// What the live schema says about one statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Its effect is visible.
    Applied,
    /// Its effect is not visible.
    NotApplied,
    /// The catalog cannot tell.
    Unknown,
}

/// A catalog fact that shows a statement's effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The table exists (`true`) or not.
    Table {
        /// Table name.
        table: String,
        /// Expected to exist.
        exists: bool,
    },
    /// The column exists (`true`) or not.
    Column {
        /// Table name.
        table: String,
        /// Column name.
        column: String,
        /// Expected to exist.
        exists: bool,
    },
    /// A named constraint (foreign key, check, unique) exists (`true`) or not.
    Constraint {
        /// Table name.
        table: String,
        /// Constraint name.
        name: String,
        /// Expected to exist.
        exists: bool,
    },
    /// Re-running the action leaves the same result (MySQL `MODIFY`, `SET
    /// DEFAULT`, table options): it neither proves nor disproves anything,
    /// and re-running it is safe.
    Idempotent,
    /// The index exists, and is valid (`true`) or does not exist.
    Index {
        /// Index name.
        name: String,
        /// Table, when the statement names it (MySQL index names are per table).
        table: Option<String>,
        /// Expected to exist.
        exists: bool,
    },
}

/// `sql` without MySQL `ALGORITHM=`/`LOCK=` clauses, which change how an
/// ALTER runs but not what it does (and make the parser fall back to a
/// reading that loses index names).
fn without_algorithm_clauses(sql: &str) -> std::borrow::Cow<'_, str> {
    static RE: once_cell::sync::Lazy<regex::Regex> = once_cell::sync::Lazy::new(|| {
        regex::Regex::new(r"(?i),\s*(ALGORITHM|LOCK)\s*=?\s*[A-Za-z]+\b")
            .unwrap_or_else(|e| panic!("static regex: {e}"))
    });
    RE.replace_all(sql, "")
}

/// The probes that show `sql` applied; `None` when the catalog cannot tell.
pub fn probes(sql: &str, engine: Engine) -> Option<Vec<Probe>> {
    let t = |s: &str| s.to_string();
    let sql = match engine {
        Engine::Mysql => without_algorithm_clauses(sql),
        Engine::Postgres => std::borrow::Cow::Borrowed(sql),
    };
    // Names of indexes added as `ADD [UNIQUE|FULLTEXT|SPATIAL] INDEX|KEY name (`, in
    // order, for the forms whose parsed reading has no name.
    static ADDED: once_cell::sync::Lazy<regex::Regex> = once_cell::sync::Lazy::new(|| {
        regex::Regex::new(
            r"(?i)\bADD\s+(?:UNIQUE\s+|FULLTEXT\s+|SPATIAL\s+)?(?:INDEX|KEY)\s+`?([A-Za-z0-9_$]+)`?\s*\(",
        )
        .unwrap_or_else(|e| panic!("static regex: {e}"))
    });
    let mut added = ADDED
        .captures_iter(&sql)
        .filter_map(|c| c.get(1).map(|m| m.as_str().to_string()))
        .collect::<Vec<_>>()
        .into_iter()
        .peekable();
    match analyze(&sql, engine).op {
        Op::CreateTable {
            table,
            or_replace: false,
            temporary: false,
            ..
        } => Some(vec![Probe::Table {
            table,
            exists: true,
        }]),
        Op::DropTable { tables, .. } => Some(
            tables
                .into_iter()
                .map(|table| Probe::Table {
                    table,
                    exists: false,
                })
                .collect(),
        ),
        Op::CreateIndex {
            table,
            name: Some(name),
            ..
        } => Some(vec![Probe::Index {
            name,
            table: Some(table),
            exists: true,
        }]),
        Op::DropIndex { names, table, .. } => Some(
            names
                .into_iter()
                .map(|name| Probe::Index {
                    name,
                    table: table.clone(),
                    exists: false,
                })
                .collect(),
        ),
        Op::AlterTable { table, actions, .. } if !actions.is_empty() => {
            let mut out = Vec::new();
            for a in actions {
                match a {
                    Action::AddColumn(c) => out.push(Probe::Column {
                        table: t(&table),
                        column: c.name,
                        exists: true,
                    }),
                    Action::DropColumn { names, .. } => {
                        out.extend(names.into_iter().map(|column| Probe::Column {
                            table: t(&table),
                            column,
                            exists: false,
                        }))
                    }
                    Action::RenameColumn { from, to } => {
                        out.push(Probe::Column {
                            table: t(&table),
                            column: from,
                            exists: false,
                        });
                        out.push(Probe::Column {
                            table: t(&table),
                            column: to,
                            exists: true,
                        });
                    }
                    // MySQL/MariaDB: every named index form is an index.
                    Action::AddConstraint {
                        name,
                        kind: ConstraintKind::Unique | ConstraintKind::Index(_),
                        ..
                    } if engine == Engine::Mysql => {
                        let name = match name {
                            Some(n) => {
                                // Keep the textual names aligned with the actions.
                                added.next_if(|a| a.eq_ignore_ascii_case(&n));
                                n
                            }
                            None => added.next()?,
                        };
                        out.push(Probe::Index {
                            name,
                            table: Some(t(&table)),
                            exists: true,
                        })
                    }
                    Action::AddConstraint {
                        kind: ConstraintKind::PrimaryKey,
                        ..
                    } if engine == Engine::Mysql => out.push(Probe::Index {
                        name: "PRIMARY".into(),
                        table: Some(t(&table)),
                        exists: true,
                    }),
                    Action::DropPrimaryKey if engine == Engine::Mysql => out.push(Probe::Index {
                        name: "PRIMARY".into(),
                        table: Some(t(&table)),
                        exists: false,
                    }),
                    Action::AddConstraint {
                        name: Some(name),
                        kind:
                            ConstraintKind::ForeignKey { .. }
                            | ConstraintKind::Check { .. }
                            | ConstraintKind::Unique,
                        ..
                    } => out.push(Probe::Constraint {
                        table: t(&table),
                        name,
                        exists: true,
                    }),
                    Action::DropConstraint { name, .. } | Action::DropForeignKey { name } => out
                        .push(Probe::Constraint {
                            table: t(&table),
                            name,
                            exists: false,
                        }),
                    Action::DropIndex { name } => out.push(Probe::Index {
                        name,
                        table: Some(t(&table)),
                        exists: false,
                    }),
                    Action::RenameTo { to } => {
                        out.push(Probe::Table {
                            table: t(&table),
                            exists: false,
                        });
                        out.push(Probe::Table {
                            table: to,
                            exists: true,
                        });
                    }
                    // Same definition again: a no-op (at worst a rebuild).
                    Action::ModifyColumn { new_name: None, .. }
                    | Action::SetDefault { .. }
                    | Action::DropDefault { .. }
                    | Action::TableOption(_)
                        if engine == Engine::Mysql =>
                    {
                        out.push(Probe::Idempotent)
                    }
                    Action::ModifyColumn {
                        column,
                        new_name: Some(to),
                        ..
                    } if engine == Engine::Mysql => {
                        out.push(Probe::Column {
                            table: t(&table),
                            column,
                            exists: false,
                        });
                        out.push(Probe::Column {
                            table: t(&table),
                            column: to,
                            exists: true,
                        });
                    }
                    _ => return None,
                }
            }
            Some(out)
        }
        // Reads and session settings change nothing a resume could repeat.
        Op::Select | Op::Set { .. } => Some(vec![Probe::Idempotent]),
        _ => None,
    }
}

/// Combines probe results where `neutral` idempotent actions took no part:
/// only idempotent actions → not applied (re-running them is safe).
pub fn settle(results: &[bool], neutral: bool) -> Seen {
    if results.is_empty() && neutral {
        Seen::NotApplied
    } else {
        combine(results)
    }
}

/// Combines the probes of one statement: all hold → applied, none → not
/// applied, some → unknown (a multi-part DDL the server should have made
/// atomic; a human must look).
pub fn combine(results: &[bool]) -> Seen {
    if results.is_empty() {
        Seen::Unknown
    } else if results.iter().all(|r| *r) {
        Seen::Applied
    } else if results.iter().all(|r| !*r) {
        Seen::NotApplied
    } else {
        Seen::Unknown
    }
}

/// Where a run resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumePoint {
    /// First step not (fully) applied; `steps.len()` when all are.
    pub step: usize,
    /// Statements of that step already applied (autocommit statements only).
    pub skip_statements: usize,
    /// When that step is a backfill that committed chunks before the
    /// interruption: where it resumes.
    pub backfill: Option<BackfillResume>,
    /// How each completed step is known, for the report.
    pub evidence: Vec<String>,
}

impl ResumePoint {
    /// A one-line summary.
    pub fn summary(&self, steps: &[Step], migrations: &[Migration]) -> String {
        if self.step == 0 && self.skip_statements == 0 && self.backfill.is_none() {
            return "nothing applied yet: starting at step 1".into();
        }
        if self.step >= steps.len() {
            return format!("all {} steps already applied", steps.len());
        }
        let within = if self.skip_statements > 0 {
            format!(" from its statement {}", self.skip_statements + 1)
        } else {
            String::new()
        };
        let backfill = self
            .backfill
            .as_ref()
            .map(|b| format!(" ({})", b.describe()))
            .unwrap_or_default();
        if self.step == 0 && self.skip_statements == 0 {
            return format!(
                "resuming at step 1 {}{backfill}",
                steps[0].label(migrations)
            );
        }
        format!(
            "steps 1..{} applied ({}); resuming at step {} {}{within}{backfill}",
            self.step,
            self.evidence.join("; "),
            self.step + 1,
            steps[self.step].label(migrations)
        )
    }
}

/// What the journal says: steps done, and the partial step with its
/// statements done and its transaction id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Journaled {
    /// Leading steps fully done.
    pub steps_done: usize,
    /// Statements done in step `steps_done`.
    pub statements_done: usize,
    /// Transaction id of step `steps_done`, when one was written.
    pub xid: Option<String>,
    /// A run started before (else nothing can have run after a journal write).
    pub started: bool,
    /// The backfill of step `steps_done`, when it had started.
    pub backfill: Option<BackfillJournal>,
}

/// Reads the journal against `steps`; an entry naming another step label
/// means the journal belongs to another plan: refused.
pub fn journaled(
    entries: &[Entry],
    steps: &[Step],
    migrations: &[Migration],
) -> Result<Journaled, String> {
    let mut j = Journaled::default();
    for e in entries {
        match e {
            Entry::Done {
                step,
                label,
                statements,
            } => {
                let want = steps.get(*step).map(|s| s.label(migrations));
                if want.as_deref() != Some(label.as_str()) {
                    return Err(format!(
                        "the run's journal names step {} as {label}, but this plan's step is {}: it belongs to another plan; move {JOURNAL_FILE} away to start afresh",
                        step + 1,
                        want.unwrap_or_else(|| "absent".into())
                    ));
                }
                match statements {
                    None if *step >= j.steps_done => {
                        j.steps_done = step + 1;
                        j.statements_done = 0;
                        j.xid = None;
                        j.backfill = None;
                    }
                    Some(n) if *step == j.steps_done => j.statements_done = *n,
                    _ => {}
                }
            }
            Entry::Started => j.started = true,
            Entry::Xid { step, xid } if *step == j.steps_done => j.xid = Some(xid.clone()),
            Entry::Xid { .. } => {}
            Entry::Backfill {
                step,
                min,
                max,
                token,
            } if *step == j.steps_done => {
                // A restarted backfill keeps its first range and marker row.
                let b = j.backfill.get_or_insert_with(|| BackfillJournal {
                    min: *min,
                    max: *max,
                    token: token.clone(),
                    last_chunk: None,
                });
                b.max = b.max.max(*max);
            }
            Entry::Chunk { step, lo, hi, xid } if *step == j.steps_done => {
                if let Some(b) = j.backfill.as_mut() {
                    b.last_chunk = Some((*lo, *hi, xid.clone()));
                }
            }
            Entry::Backfill { .. } | Entry::Chunk { .. } | Entry::Session { .. } => {}
        }
    }
    Ok(j)
}

/// Every session the journal names, oldest first, each once.
pub fn sessions(entries: &[Entry]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in entries {
        if let Entry::Session { id } = e
            && !out.contains(id)
        {
            out.push(id.clone());
        }
    }
    out
}

/// A statement a session of the interrupted run still runs on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    /// The session, as the server names it (`pid 4242`, `connection 17`).
    pub session: String,
    /// What it runs.
    pub query: String,
    /// The statement that cancels it (`SELECT pg_cancel_backend(4242);`).
    pub cancel: String,
}

impl Orphan {
    fn query_clipped(&self) -> String {
        let q: String = self.query.split_whitespace().collect::<Vec<_>>().join(" ");
        if q.chars().count() > 120 {
            format!("{}…", q.chars().take(120).collect::<String>())
        } else {
            q
        }
    }

    /// What a resume says while it waits.
    pub fn note(&self) -> String {
        format!(
            "the interrupted run's session {} is still running on the server: `{}`; waiting for it to end before resuming (abort stops waiting)",
            self.session,
            self.query_clipped()
        )
    }

    /// What a run aborted while waiting leaves behind.
    pub fn leftover(&self) -> super::Leftover {
        super::Leftover {
            kind: "session".into(),
            name: format!(
                "{} of the interrupted run, still running `{}`",
                self.session,
                self.query_clipped()
            ),
            cleanup: Some(self.cancel.clone()),
        }
    }
}

/// The live database as resuming asks it.
pub trait Inspect: Send {
    /// Whether transaction `xid` committed (PostgreSQL `txid_status`).
    fn committed<'a>(&'a mut self, xid: &'a str) -> BoxFuture<'a, Result<bool, String>>;
    /// Whether `sql`'s effect is visible in the live schema.
    fn seen<'a>(&'a mut self, sql: &'a str, engine: Engine) -> BoxFuture<'a, Result<Seen, String>>;
    /// MySQL/MariaDB: the last key committed under marker row `token`
    /// (`None`: no chunk committed).
    fn marker<'a>(&'a mut self, _token: &'a str) -> BoxFuture<'a, Result<Option<i64>, String>> {
        Box::pin(async { Ok(None) })
    }
}

/// Where the backfill journaled in `b` resumes: after the last chunk whose
/// commit the database confirms (its transaction id on PostgreSQL, the
/// marker row on MySQL), else at its first key.
pub async fn backfill_resume(
    b: &BackfillJournal,
    db: &mut dyn Inspect,
) -> Result<BackfillResume, String> {
    let next = if let Some(token) = &b.token {
        match db.marker(token).await? {
            Some(last) => last + 1,
            None => b.min,
        }
    } else {
        match &b.last_chunk {
            Some((lo, hi, xid)) => {
                if db.committed(xid).await? {
                    hi + 1
                } else {
                    *lo
                }
            }
            None => b.min,
        }
    };
    Ok(BackfillResume {
        min: b.min,
        max: b.max,
        next,
        token: b.token.clone(),
    })
}

/// Where to resume, from the history `sorting` and the journal `j`; the one
/// step that may have run after the last journal write is settled with
/// `committed` (a journaled transaction id, PostgreSQL) or `seen` (catalog
/// probes per statement). A statement the catalog cannot judge refuses.
pub async fn resume_from(
    steps: &[Step],
    migrations: &[Migration],
    j: &Journaled,
    sorting: &super::history::Sorting,
    db: &mut dyn Inspect,
) -> Result<ResumePoint, String> {
    if let Some(mm) = sorting.mismatches.first() {
        let m = &migrations[mm.migration];
        return Err(format!(
            "{}: recorded as applied with checksum {}, but the file's checksum is now {}: the file changed after it was applied",
            m.path.display(),
            mm.recorded
                .map(|c| c.to_string())
                .unwrap_or_else(|| "NULL".into()),
            mm.now
        ));
    }
    let recorded = |mi: usize| {
        migrations[mi].format == crate::migrate::SourceFormat::Flyway
            && sorting.applied.contains(&mi)
    };
    let mut point = ResumePoint {
        step: 0,
        skip_statements: 0,
        backfill: None,
        evidence: Vec::new(),
    };
    let mut k = 0;
    while k < steps.len() {
        if recorded(steps[k].migration()) {
            point
                .evidence
                .push(format!("step {} by flyway_schema_history", k + 1));
        } else if k < j.steps_done {
            point
                .evidence
                .push(format!("step {} by the journal", k + 1));
        } else {
            break;
        }
        k += 1;
    }
    // Steps that may have run after the last journal write (all of them
    // when the journal was lost): settled one by one while the database
    // shows them applied. A plan never started has nothing to settle.
    while j.started && k < steps.len() {
        let first = k == j.steps_done;
        let done_before = if first { j.statements_done } else { 0 };
        let engine = migrations[steps[k].migration()].engine;
        point.skip_statements = done_before;
        let settled = match &steps[k] {
            Step::Unit { in_txn: true, .. } if engine == Engine::Postgres => match &j.xid {
                // COMMIT is only sent after the id is journaled.
                Some(xid) if first => db.committed(xid).await?,
                _ => false,
            },
            Step::Unit { statements, .. } => {
                let mut all = true;
                for (si, st) in statements.iter().enumerate().skip(done_before) {
                    match db.seen(&st.sql, engine).await? {
                        Seen::Applied => point.skip_statements = si + 1,
                        Seen::NotApplied => {
                            all = false;
                            break;
                        }
                        Seen::Unknown => {
                            return Err(format!(
                                "{}: cannot tell from the live schema whether the statement at line {} ran before the interruption; check by hand, then run the rest yourself or start afresh without it",
                                steps[k].label(migrations),
                                st.line
                            ));
                        }
                    }
                }
                all
            }
            // A backfill resumes after its last committed chunk (below); a
            // record is not in history.
            Step::Backfill { .. } | Step::Record { .. } => false,
        };
        if !settled {
            break;
        }
        point
            .evidence
            .push(format!("step {} by the live database", k + 1));
        point.skip_statements = 0;
        k += 1;
    }
    point.step = k;
    if k == j.steps_done
        && matches!(steps.get(k), Some(Step::Backfill { .. }))
        && let Some(b) = &j.backfill
    {
        point.backfill = Some(backfill_resume(b, db).await?);
    }
    Ok(point)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_from_ddl() {
        assert_eq!(
            probes("CREATE INDEX CONCURRENTLY i ON t (c)", Engine::Postgres),
            Some(vec![Probe::Index {
                name: "i".into(),
                table: Some("t".into()),
                exists: true
            }])
        );
        assert_eq!(
            probes(
                "ALTER TABLE t ADD COLUMN c int, DROP COLUMN d",
                Engine::Mysql
            ),
            Some(vec![
                Probe::Column {
                    table: "t".into(),
                    column: "c".into(),
                    exists: true
                },
                Probe::Column {
                    table: "t".into(),
                    column: "d".into(),
                    exists: false
                }
            ])
        );
        assert_eq!(probes("INSERT INTO t VALUES (1)", Engine::Postgres), None);
        assert_eq!(
            probes(
                "ALTER TABLE t ALTER COLUMN c SET NOT NULL",
                Engine::Postgres
            ),
            None
        );
        assert_eq!(combine(&[true, true]), Seen::Applied);
        assert_eq!(combine(&[false]), Seen::NotApplied);
        assert_eq!(combine(&[true, false]), Seen::Unknown);
        assert_eq!(combine(&[]), Seen::Unknown);
    }

    #[test]
    fn every_mysql_alter_action_the_executor_runs_is_probed() {
        let idx = |name: &str, exists| Probe::Index {
            name: name.into(),
            table: Some("t".into()),
            exists,
        };
        let m = |sql| probes(sql, Engine::Mysql);
        assert_eq!(
            m("ALTER TABLE t ADD INDEX t_c (c)"),
            Some(vec![idx("t_c", true)])
        );
        assert_eq!(
            m("ALTER TABLE t ADD KEY t_c (c), ALGORITHM=NOCOPY, LOCK=NONE"),
            Some(vec![idx("t_c", true)])
        );
        assert_eq!(
            m("ALTER TABLE t ADD UNIQUE INDEX t_u (c)"),
            Some(vec![idx("t_u", true)])
        );
        assert_eq!(
            m("ALTER TABLE t ADD FULLTEXT INDEX t_f (v)"),
            Some(vec![idx("t_f", true)])
        );
        assert_eq!(
            m("ALTER TABLE t ADD PRIMARY KEY (id)"),
            Some(vec![idx("PRIMARY", true)])
        );
        assert_eq!(
            m("ALTER TABLE t DROP PRIMARY KEY"),
            Some(vec![idx("PRIMARY", false)])
        );
        assert_eq!(
            m("ALTER TABLE t ADD CONSTRAINT t_fk FOREIGN KEY (p) REFERENCES p (id)"),
            Some(vec![Probe::Constraint {
                table: "t".into(),
                name: "t_fk".into(),
                exists: true
            }])
        );
        assert_eq!(
            m("ALTER TABLE t DROP FOREIGN KEY t_fk"),
            Some(vec![Probe::Constraint {
                table: "t".into(),
                name: "t_fk".into(),
                exists: false
            }])
        );
        assert_eq!(
            m("ALTER TABLE t MODIFY c BIGINT NOT NULL"),
            Some(vec![Probe::Idempotent])
        );
        assert_eq!(
            m("ALTER TABLE t ALTER COLUMN c SET DEFAULT 5"),
            Some(vec![Probe::Idempotent])
        );
        assert_eq!(
            m("ALTER TABLE t ENGINE=InnoDB"),
            Some(vec![Probe::Idempotent])
        );
        // An idempotent part alongside a probed one: the probe decides.
        assert_eq!(
            m("ALTER TABLE t ADD INDEX t_c (c), MODIFY v VARCHAR(20)"),
            Some(vec![idx("t_c", true), Probe::Idempotent])
        );
        // A read or a session setting interrupted mid-way is simply run again.
        assert_eq!(m("SELECT SLEEP(8)"), Some(vec![Probe::Idempotent]));
        assert_eq!(
            m("SET SESSION lock_wait_timeout = 5"),
            Some(vec![Probe::Idempotent])
        );
        assert_eq!(settle(&[], true), Seen::NotApplied);
        assert_eq!(settle(&[true], true), Seen::Applied);
        assert_eq!(settle(&[], false), Seen::Unknown);
        assert_eq!(
            m("ALTER TABLE t ADD INDEX a (x), ADD UNIQUE INDEX b (y), ADD CONSTRAINT c UNIQUE (z)"),
            Some(vec![idx("a", true), idx("b", true), idx("c", true)])
        );
        // An unnamed index cannot be found by name: a human must look.
        assert_eq!(m("ALTER TABLE t ADD INDEX (c)"), None);
    }

    #[test]
    fn sessions_are_listed_once_in_order_and_the_wait_says_what_runs() {
        let s = |id: &str| Entry::Session { id: id.into() };
        let entries = vec![s("7@1.5"), Entry::Started, s("9@2.5"), s("7@1.5")];
        assert_eq!(sessions(&entries), vec!["7@1.5", "9@2.5"]);
        assert!(sessions(&[Entry::Started]).is_empty());
        let o = Orphan {
            session: "pid 7".into(),
            query: "CREATE INDEX CONCURRENTLY i\n  ON t (c)".into(),
            cancel: "SELECT pg_cancel_backend(7);".into(),
        };
        let note = o.note();
        assert!(note.contains("still running on the server"), "{note}");
        assert!(
            note.contains("`CREATE INDEX CONCURRENTLY i ON t (c)`"),
            "{note}"
        );
        let left = o.leftover();
        assert_eq!(left.kind, "session");
        assert!(
            left.name.starts_with("pid 7 of the interrupted run"),
            "{}",
            left.name
        );
        assert_eq!(
            left.cleanup.as_deref(),
            Some("SELECT pg_cancel_backend(7);")
        );
        let long = Orphan {
            query: "x".repeat(500),
            ..o
        }
        .note();
        assert!(long.len() < 400 && long.contains('…'), "{long}");
    }

    #[test]
    fn journal_round_trip_and_reading() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(&dir.path().join("run"));
        assert!(j.read().unwrap().is_empty());
        let m = Migration {
            version: "1".into(),
            description: "x".into(),
            path: "V1__x.sql".into(),
            checksum: String::new(),
            engine: Engine::Postgres,
            format: crate::migrate::SourceFormat::Flyway,
            repeatable: false,
            tx: crate::migrate::TxWrap::AsWritten,
            directives: Default::default(),
            statements: crate::sql::split::split(
                "CREATE TABLE a (id int);\nCREATE TABLE b (id int);\n",
                Engine::Postgres,
                1,
                ";",
            ),
            text: String::new(),
        };
        let ms = vec![m];
        let steps = super::super::native::plan_steps(&ms, false);
        assert_eq!(steps.len(), 2);
        let done = |step: usize, statements| Entry::Done {
            step,
            label: steps[step].label(&ms),
            statements,
        };
        j.append(&done(0, None)).unwrap();
        j.append(&Entry::Xid {
            step: 1,
            xid: "42".into(),
        })
        .unwrap();
        // A torn line from a crash mid-write is ignored.
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("run").join(JOURNAL_FILE))
            .and_then(|mut f| f.write_all(b"{\"kind\":\"do"))
            .unwrap();
        let e = j.read().unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(
            journaled(&e, &steps, &ms).unwrap(),
            Journaled {
                steps_done: 1,
                statements_done: 0,
                xid: Some("42".into()),
                started: false,
                backfill: None,
            }
        );
        let other = vec![Entry::Done {
            step: 0,
            label: "V9__other.sql:1".into(),
            statements: None,
        }];
        assert!(
            journaled(&other, &steps, &ms)
                .unwrap_err()
                .contains("another plan")
        );
    }
}
