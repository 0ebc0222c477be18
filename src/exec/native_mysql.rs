//! The native MySQL/MariaDB executor: each ALTER TABLE climbs the algorithm
//! and lock ladder of engines.md §7.2 (INSTANT → NOCOPY (MariaDB) → INPLACE
//! with LOCK=NONE → INPLACE with LOCK=SHARED) and stops at the first rung the
//! server accepts; it never falls back to a copying ALTER on a table larger
//! than [`MyExecOptions::copy_max_rows`] (that is gh-ost's or pt-osc's job).
//!
//! - A statement that names its own `ALGORITHM=`/`LOCK=` runs as written;
//!   partition maintenance (which rejects the clauses) runs as written;
//!   `PARTITION BY` / `REMOVE PARTITIONING` accept INSTANT yet copy, so they
//!   are treated as copies.
//! - `lock_wait_timeout` bounds the metadata-lock wait; error 1205 is retried
//!   with backoff.
//! - Progress from performance_schema stages, else MariaDB's PROCESSLIST
//!   `PROGRESS`, else an honest "no progress available" (never a fake 0%).
//! - Abort is `KILL QUERY` on the running statement; nothing further runs.
//! - A `-- cutover: backfill` directive runs as autocommit `UPDATE … WHERE
//!   key BETWEEN` chunks sized to the declared time per chunk, waiting while
//!   any replica is over the limit or unknown (same semantics as PostgreSQL).
//! - Flyway migrations are recorded in `flyway_schema_history` after their
//!   statements (DDL commits implicitly; the journal covers the gap).

use super::native::{
    Ctl, Shared, Step, backfill_leftover, detail_only, lock, plan_steps, run_summary,
    statements_leftover,
};
use super::native::{eta, lag_reason, next_chunk};
use super::preflight::{
    Disk, Room, disk_verdict, is_local_host, local_free, replica_health, room_needed,
};
use super::resume::{
    BackfillResume, Entry, Inspect, Journal, MARKER_TABLE, Orphan, Probe, ResumePoint, Seen,
    journaled, probes, resume_from, settle,
};
use super::{
    Capabilities, Control, ExecError, ExecJob, ExecPhase, ExecStatus, ExecUpdate, Executor,
    Leftover, Outcome, OutcomeKind, Progress,
};
use crate::lag::LagPoller;
use crate::migrate::{BackfillDirective, Migration};
use crate::sql::analyze::analyze;
use crate::sql::ops::Op;
use chrono::Utc;
use futures_util::future::BoxFuture;
use mysql_async::prelude::*;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Options of native MySQL/MariaDB runs.
#[derive(Debug, Clone, PartialEq)]
pub struct MyExecOptions {
    /// `lock_wait_timeout` in seconds (default 5; the server default is a day).
    pub lock_wait_timeout_s: u32,
    /// Retries after error 1205 (default 5).
    pub lock_retries: u32,
    /// First backoff, doubled each retry up to 30 s (default 1 s).
    pub retry_backoff: Duration,
    /// Progress sampling (default 1 s).
    pub progress_interval: Duration,
    /// Largest table (rows, estimated) a copying ALTER may run on (default 100,000).
    pub copy_max_rows: u64,
    /// Record Flyway migrations in `flyway_schema_history` (default true).
    pub record_history: bool,
    /// Max replica lag when the job does not say (default 1 s).
    pub max_lag: Duration,
    /// Wait between lag polls while throttled (default 1 s).
    pub lag_interval: Duration,
    /// Reconnect attempts after the connection is lost (server restart,
    /// `KILL`) before the run fails; also the most losses one step survives
    /// (default 10).
    pub reconnect_retries: u32,
    /// First wait before a reconnect, doubled up to 10 s (default 1 s).
    pub reconnect_backoff: Duration,
}

impl Default for MyExecOptions {
    fn default() -> Self {
        MyExecOptions {
            lock_wait_timeout_s: 5,
            lock_retries: 5,
            retry_backoff: Duration::from_secs(1),
            progress_interval: Duration::from_secs(1),
            copy_max_rows: 100_000,
            record_history: true,
            max_lag: Duration::from_secs(1),
            lag_interval: Duration::from_secs(1),
            reconnect_retries: 10,
            reconnect_backoff: Duration::from_secs(1),
        }
    }
}

/// How an ALTER is to be run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterPlan {
    /// Not an ALTER TABLE, or it names its own clauses, or partition
    /// maintenance: run as written.
    AsWritten,
    /// Try these clauses in order, then decide about a copy.
    Ladder {
        /// The table.
        table: String,
        /// Clauses appended to the statement, weakest lock first.
        rungs: Vec<&'static str>,
    },
}

const PARTITION_MAINTENANCE: &[&str] = &[
    "ADD PARTITION",
    "DROP PARTITION",
    "TRUNCATE PARTITION",
    "REORGANIZE PARTITION",
    "EXCHANGE PARTITION",
    "COALESCE PARTITION",
    "REBUILD PARTITION",
    "ANALYZE PARTITION",
    "CHECK PARTITION",
    "OPTIMIZE PARTITION",
    "REPAIR PARTITION",
    "DISCARD PARTITION",
    "IMPORT PARTITION",
];

/// The plan for one statement (pure).
pub fn alter_plan(sql: &str, mariadb: bool) -> AlterPlan {
    let Op::AlterTable { table, .. } = analyze(sql, crate::model::Engine::Mysql).op else {
        return AlterPlan::AsWritten;
    };
    let up = sql.to_ascii_uppercase();
    let words: String = up.split_whitespace().collect::<Vec<_>>().join(" ");
    if words.contains("ALGORITHM") || words.contains("LOCK =") || words.contains("LOCK=") {
        return AlterPlan::AsWritten;
    }
    if PARTITION_MAINTENANCE.iter().any(|p| words.contains(p)) {
        return AlterPlan::AsWritten;
    }
    // These accept INSTANT/NOCOPY and still copy (engines.md §7.2 caveats).
    let copies = words.contains("PARTITION BY") || words.contains("REMOVE PARTITIONING");
    let mut rungs = Vec::new();
    if !copies {
        rungs.push(", ALGORITHM=INSTANT");
        if mariadb {
            rungs.push(", ALGORITHM=NOCOPY");
        }
        rungs.push(", ALGORITHM=INPLACE, LOCK=NONE");
        rungs.push(", ALGORITHM=INPLACE, LOCK=SHARED");
    }
    AlterPlan::Ladder { table, rungs }
}

/// The statement with a clause appended (before any trailing `;`).
pub fn with_clause(sql: &str, clause: &str) -> String {
    format!("{}{clause}", sql.trim().trim_end_matches(';').trim_end())
}

/// 1845/1846/1847 (SQLSTATE 0A000): the server rejects this algorithm or lock.
fn rejected(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(s) if matches!(s.code, 1845..=1848))
}

fn lock_wait(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(s) if s.code == 1205)
}

/// The session is gone (server restart, `KILL`, broken socket), as opposed
/// to a statement error: worth a reconnect.
pub fn is_connection_loss(e: &mysql_async::Error) -> bool {
    match e {
        mysql_async::Error::Io(_) => true,
        mysql_async::Error::Driver(d) => {
            matches!(d, mysql_async::DriverError::ConnectionClosed)
        }
        // 1053 shutdown in progress, 1927 connection killed, 2006/2013 gone
        // or lost, 4031 disconnected by the server.
        mysql_async::Error::Server(s) => matches!(s.code, 1053 | 1927 | 2006 | 2013 | 4031),
        _ => false,
    }
}

fn my_error(e: &mysql_async::Error) -> String {
    match e {
        mysql_async::Error::Server(s) => format!("ERROR {} ({}): {}", s.code, s.state, s.message),
        other => crate::sql::redact::redact_dsn(&other.to_string()),
    }
}

/// PROCESSLIST `PROGRESS, STAGE, MAX_STAGE, STATE`.
type ProcessRow = (Option<f64>, Option<u32>, Option<u32>, Option<String>);

/// The native MySQL/MariaDB executor.
pub struct NativeMysql {
    dsn: String,
    migrations: Arc<Vec<Migration>>,
    opts: MyExecOptions,
    lag: Option<Box<dyn LagPoller>>,
    has_lag: bool,
    shared: Arc<Mutex<Shared>>,
    controls: Option<mpsc::UnboundedSender<Control>>,
}

impl NativeMysql {
    /// An executor that will apply `migrations` on the primary at `dsn`.
    pub fn new(dsn: &str, migrations: Vec<Migration>, opts: MyExecOptions) -> NativeMysql {
        NativeMysql {
            dsn: dsn.to_string(),
            migrations: Arc::new(migrations),
            opts,
            lag: None,
            has_lag: false,
            shared: Arc::new(Mutex::new(Shared::default())),
            controls: None,
        }
    }

    /// Throttles backfill chunks on this poller's replicas, and checks
    /// their health before start.
    pub fn with_lag(mut self, poller: Box<dyn LagPoller>) -> NativeMysql {
        self.lag = Some(poller);
        self.has_lag = true;
        self
    }
}

struct Task {
    /// Where to reconnect.
    dsn: String,
    conn: mysql_async::Conn,
    mon: mysql_async::Conn,
    id: u32,
    mariadb: bool,
    opts: MyExecOptions,
    migrations: Arc<Vec<Migration>>,
    ctl: Ctl,
    rx: mpsc::UnboundedReceiver<Control>,
    updates: mpsc::Sender<ExecUpdate>,
    shared: Arc<Mutex<Shared>>,
    where_: String,
    /// When the current migration's first step started (history `execution_time`).
    migration_started: Instant,
    /// The run's journal (resume).
    journal: Journal,
    /// Why performance_schema stage progress is unavailable, when it is.
    stages_note: Option<String>,
    /// Replica lag, for backfill throttling (a tokio mutex keeps the task `Send`).
    lag: Option<tokio::sync::Mutex<Box<dyn LagPoller>>>,
    /// Set when a backfill stopped between chunks (what it left).
    backfill_left: Option<Leftover>,
    /// Before-start warnings, published first.
    warnings: Vec<String>,
    /// Index of the step running.
    step_index: usize,
    /// What the backfills did, for the closing summary.
    notes: Vec<String>,
    /// Rows updated by backfills in this run.
    rows_updated: u64,
    /// Marker rows of backfills completed in this run (deleted at the end).
    markers: Vec<String>,
}

enum End {
    Done,
    Aborted,
    Failed(String),
    /// The connection was lost (settled by [`Task::statement`]).
    Lost(String),
}

impl Task {
    async fn publish(&self, phase: ExecPhase, progress: Option<Progress>) {
        let status = ExecStatus {
            phase,
            progress,
            at: Utc::now(),
        };
        lock(&self.shared).status = status.clone();
        let _ = self.updates.send(ExecUpdate::Status(status)).await;
    }

    async fn sample(
        mon: &mut mysql_async::Conn,
        id: u32,
        where_: &str,
        started: Instant,
        stages_note: Option<&str>,
    ) -> Progress {
        let stage: Option<(String, Option<u64>, Option<u64>)> = mon
            .exec_first(
                "SELECT s.EVENT_NAME, s.WORK_COMPLETED, s.WORK_ESTIMATED
                   FROM performance_schema.events_stages_current s
                   JOIN performance_schema.threads t ON t.THREAD_ID = s.THREAD_ID
                  WHERE t.PROCESSLIST_ID = ?",
                (id,),
            )
            .await
            .ok()
            .flatten();
        let mut p = detail_only(String::new(), 0.0);
        p.max_lag_millis = None;
        if let Some((name, Some(done), Some(total))) = stage
            && total > 0
        {
            // Work units are not rows copied: percent and detail only.
            p.percent = Some((done as f64 * 100.0 / total as f64).min(100.0));
            p.detail = Some(format!("{where_}: {name} (work units {done} of {total})"));
            return p;
        }
        let pl: Option<ProcessRow> = mon
            .exec_first(
                "SELECT PROGRESS, STAGE, MAX_STAGE, STATE FROM information_schema.PROCESSLIST WHERE ID = ?",
                (id,),
            )
            .await
            .ok()
            .flatten();
        if let Some((Some(progress), stage, max, state)) = pl.clone()
            && progress > 0.0
        {
            p.percent = Some(progress.min(100.0));
            p.detail = Some(format!(
                "{where_}: {} stage {}/{} (percent within the stage)",
                state.unwrap_or_default(),
                stage.unwrap_or(0),
                max.unwrap_or(0)
            ));
            return p;
        }
        let state = pl.and_then(|r| r.3).unwrap_or_default();
        p.detail = Some(format!(
            "{where_}: running {:.0}s, no progress available{}{}",
            started.elapsed().as_secs_f64(),
            if state.is_empty() {
                String::new()
            } else {
                format!(" ({state})")
            },
            stages_note
                .map(|n| format!("; performance_schema stage progress unavailable: {n}"))
                .unwrap_or_default()
        ));
        p
    }

    /// Runs one statement, sampling progress and answering controls.
    async fn watch(&mut self, sql: &str) -> Result<u64, mysql_async::Error> {
        let started = Instant::now();
        let mut tick = tokio::time::interval(self.opts.progress_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let conn = &mut self.conn;
        let fut = async move {
            conn.query_drop(sql).await?;
            Ok::<u64, mysql_async::Error>(conn.affected_rows())
        };
        tokio::pin!(fut);
        let mut killed = false;
        loop {
            tokio::select! {
                r = &mut fut => return r,
                c = self.rx.recv() => {
                    if let Some(c) = c {
                        let pausing = c == Control::Pause;
                        self.ctl.apply(c);
                        if pausing {
                            pause_waits_for_statement(&self.updates, &self.where_, self.ctl.max_lag_seconds);
                        }
                    }
                    if self.ctl.abort && !killed {
                        killed = true;
                        let _ = self.mon.query_drop(format!("KILL QUERY {}", self.id)).await;
                    }
                }
                _ = tick.tick() => {
                    let p = Task::sample(&mut self.mon, self.id, &self.where_, started, self.stages_note.as_deref()).await;
                    let status = ExecStatus { phase: ExecPhase::Copying, progress: Some(p), at: Utc::now() };
                    lock(&self.shared).status = status.clone();
                    let _ = self.updates.try_send(ExecUpdate::Status(status));
                }
            }
        }
    }

    /// Waits while paused, throttled by the core, or (`check_lag`) while any
    /// replica is over the limit or unknown; `false` when aborted.
    async fn between(&mut self, check_lag: bool) -> bool {
        loop {
            while let Ok(c) = self.rx.try_recv() {
                self.ctl.apply(c);
            }
            if self.ctl.abort {
                return false;
            }
            let mut phase = self.ctl.holding(None);
            if phase.is_none()
                && check_lag
                && let Some(p) = self.lag.as_ref()
            {
                let samples = p.lock().await.poll().await;
                phase = self
                    .ctl
                    .holding(lag_reason(&samples, self.ctl.max_lag_seconds));
            }
            let Some(phase) = phase else {
                return true;
            };
            self.publish(
                phase,
                Some(detail_only(self.where_.clone(), self.ctl.max_lag_seconds)),
            )
            .await;
            tokio::select! {
                c = self.rx.recv() => if let Some(c) = c { self.ctl.apply(c) },
                _ = tokio::time::sleep(self.opts.lag_interval) => {}
            }
        }
    }

    /// A declared backfill: `UPDATE … WHERE key BETWEEN lo AND hi` chunks
    /// (autocommit, so each chunk's row locks end with it) sized to the
    /// declared time per chunk, waiting between chunks while a replica is
    /// over the limit or unknown.
    /// One backfill chunk as a transaction that also moves the backfill's
    /// marker row to `hi`: the marker commits or rolls back with the chunk,
    /// so a resume knows exactly which keys were updated. Lock waits are
    /// retried (the whole chunk, after a rollback).
    async fn chunk(
        &mut self,
        update: &str,
        token: &str,
        hi: i64,
    ) -> Result<u64, mysql_async::Error> {
        let mut backoff = self.opts.retry_backoff;
        let mut attempt = 0;
        let mut losses = 0u32;
        loop {
            let r = async {
                self.conn.query_drop("START TRANSACTION").await?;
                let n = self.watch(update).await?;
                self.conn
                    .exec_drop(
                        format!(
                            "INSERT INTO {MARKER_TABLE} (token, last_key) VALUES (?, ?) ON DUPLICATE KEY UPDATE last_key = VALUES(last_key)"
                        ),
                        (token, hi),
                    )
                    .await?;
                self.conn.query_drop("COMMIT").await?;
                Ok::<u64, mysql_async::Error>(n)
            }
            .await;
            match r {
                Ok(n) => return Ok(n),
                Err(e) if is_connection_loss(&e) && !self.ctl.abort => {
                    losses += 1;
                    if losses > self.opts.reconnect_retries {
                        return Err(e);
                    }
                    if self.reconnect(&my_error(&e)).await.is_err() {
                        return Err(e);
                    }
                    // The marker row commits with its chunk: it says whether
                    // the lost chunk landed.
                    let last: Option<i64> = self
                        .conn
                        .exec_first(
                            format!("SELECT last_key FROM {MARKER_TABLE} WHERE token = ?"),
                            (token,),
                        )
                        .await?;
                    if last.is_some_and(|k| k >= hi) {
                        return Ok(0);
                    }
                }
                Err(e) => {
                    let _ = self.conn.query_drop("ROLLBACK").await;
                    if !(lock_wait(&e) && attempt < self.opts.lock_retries && !self.ctl.abort) {
                        return Err(e);
                    }
                    attempt += 1;
                    let reason = format!(
                        "lock wait timeout; retry {attempt}/{}",
                        self.opts.lock_retries
                    );
                    self.publish(
                        ExecPhase::Throttled { reason },
                        Some(detail_only(self.where_.clone(), 0.0)),
                    )
                    .await;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    async fn run_backfill(
        &mut self,
        b: &BackfillDirective,
        resume: Option<&BackfillResume>,
    ) -> End {
        let pred = b
            .predicate
            .as_ref()
            .map(|p| format!(" AND ({p})"))
            .unwrap_or_default();
        let range: Result<Option<(Option<i64>, Option<i64>)>, _> = self
            .conn
            .query_first(format!(
                "SELECT CAST(MIN({k}) AS SIGNED), CAST(MAX({k}) AS SIGNED) FROM {t}",
                k = b.key,
                t = b.table
            ))
            .await;
        let (min, max) = match range {
            Ok(Some((Some(min), Some(max)))) => (min, max),
            Ok(_) => return End::Done,
            Err(e) => {
                return End::Failed(format!(
                    "{}: reading the key range of {}.{} (an integer key is required): {}",
                    self.where_,
                    b.table,
                    b.key,
                    my_error(&e)
                ));
            }
        };
        let total: u64 = match self
            .conn
            .query_first::<u64, _>(format!("SELECT COUNT(*) FROM {} WHERE 1=1{pred}", b.table))
            .await
        {
            Ok(n) => n.unwrap_or(0),
            Err(e) => return End::Failed(format!("{}: {}", self.where_, my_error(&e))),
        };
        // Resumed: the keys before `next` committed before the interruption
        // (the marker row says so), and the same marker row goes on.
        let (first, start) = match resume {
            Some(r) => (r.min.min(min), r.next.max(min)),
            None => (min, min),
        };
        let token = resume.and_then(|r| r.token.clone()).unwrap_or_else(|| {
            format!(
                "{}-{}-{}",
                std::process::id(),
                self.step_index,
                Utc::now().timestamp_nanos_opt().unwrap_or_default()
            )
        });
        if let Err(e) = self
            .conn
            .query_drop(format!(
                "CREATE TABLE IF NOT EXISTS {MARKER_TABLE} (token VARCHAR(64) NOT NULL PRIMARY KEY, last_key BIGINT NOT NULL) ENGINE=InnoDB"
            ))
            .await
        {
            return End::Failed(format!(
                "{}: creating the backfill marker table {MARKER_TABLE} (needed to resume the backfill exactly): {}",
                self.where_,
                my_error(&e)
            ));
        }
        if let Err(e) = self.journal.append(&Entry::Backfill {
            step: self.step_index,
            min: first,
            max,
            token: Some(token.clone()),
        }) {
            return End::Failed(format!(
                "{}: cannot write the run journal (needed to resume the backfill safely): {e}",
                self.where_
            ));
        }
        let before =
            (start > first).then(|| format!("keys {first}..{} before the interruption", start - 1));
        let min = first;
        let keys = (max - min + 1) as f64;
        let mut size = u64::from(self.ctl.chunk_rows.unwrap_or(1000));
        let set_by_human = self.ctl.chunk_rows;
        let (mut lo, mut rows_done, mut busy) = (start, 0u64, 0.0f64);
        let left =
            |lo: i64, rows_done: u64| backfill_leftover(&b.table, (min, start, lo, max), rows_done);
        while lo <= max {
            if !self.between(true).await {
                self.backfill_left = Some(left(lo, rows_done));
                return End::Aborted;
            }
            if self.ctl.chunk_rows != set_by_human
                && let Some(c) = self.ctl.chunk_rows
            {
                size = u64::from(c);
            }
            let hi = lo.saturating_add(size as i64 - 1).min(max);
            let sql = format!(
                "UPDATE {} SET {} WHERE {k} BETWEEN {lo} AND {hi}{pred}",
                b.table,
                b.set,
                k = b.key
            );
            let t0 = Instant::now();
            let n = match self.chunk(&sql, &token, hi).await {
                Ok(n) => n,
                Err(e) => {
                    self.backfill_left = Some(left(lo, rows_done));
                    if self.ctl.abort {
                        return End::Aborted;
                    }
                    return End::Failed(format!(
                        "{}: chunk {lo}..{hi}: {}",
                        self.where_,
                        my_error(&e)
                    ));
                }
            };
            let took = t0.elapsed().as_secs_f64();
            busy += took;
            rows_done += n;
            let keys_done = (hi - min + 1) as f64;
            size = next_chunk(hi as u64 - lo as u64 + 1, took, b.batch_seconds);
            lo = hi + 1;
            let p = Progress {
                rows_copied: rows_done,
                rows_total: Some(total),
                percent: Some((keys_done * 100.0 / keys).min(100.0)),
                eta_seconds: eta(keys_done, keys, busy),
                chunk_size: u32::try_from(size).ok(),
                max_lag_millis: Some((self.ctl.max_lag_seconds * 1000.0) as u64),
                detail: Some(format!(
                    "{}: backfill {} (key {}..{hi} of {min}..{max})",
                    self.where_, b.table, b.key
                )),
            };
            self.publish(ExecPhase::Copying, Some(p)).await;
        }
        self.rows_updated += rows_done;
        self.markers.push(token);
        self.notes.push(match &before {
            Some(before) => format!(
                "backfill {}: {before}, keys {start}..{max} after it ({rows_done} rows)",
                b.table
            ),
            None => format!("backfill {}: keys {min}..{max} ({rows_done} rows)", b.table),
        });
        End::Done
    }

    /// Runs with lock-wait retries.
    async fn run_retrying(&mut self, sql: &str) -> Result<u64, mysql_async::Error> {
        let mut backoff = self.opts.retry_backoff;
        let mut attempt = 0;
        loop {
            match self.watch(sql).await {
                Err(e) if lock_wait(&e) && attempt < self.opts.lock_retries && !self.ctl.abort => {
                    attempt += 1;
                    let reason = format!(
                        "lock wait timeout; retry {attempt}/{}",
                        self.opts.lock_retries
                    );
                    self.publish(
                        ExecPhase::Throttled { reason },
                        Some(detail_only(self.where_.clone(), 0.0)),
                    )
                    .await;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
                r => return r,
            }
        }
    }

    async fn table_rows(&mut self, table: &str) -> Option<u64> {
        let (schema, name) = match table.split_once('.') {
            Some((s, n)) => (Some(s.to_string()), n.to_string()),
            None => (None, table.to_string()),
        };
        self.mon
            .exec_first(
                "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?",
                (schema, name),
            )
            .await
            .ok()
            .flatten()
            .flatten()
    }

    /// Opens new sessions after the old ones were lost, waiting (shown as
    /// throttled, with the reason) while the server stays away; abortable.
    async fn reconnect(&mut self, why: &str) -> Result<(), String> {
        let n = self.opts.reconnect_retries;
        let mut backoff = self.opts.reconnect_backoff;
        let mut last = why.to_string();
        for attempt in 1..=n {
            let reason = format!(
                "connection to the primary lost ({last}); reconnecting, attempt {attempt}/{n}"
            );
            self.publish(
                ExecPhase::Throttled { reason },
                Some(detail_only(self.where_.clone(), 0.0)),
            )
            .await;
            let until = tokio::time::Instant::now() + backoff;
            while tokio::time::Instant::now() < until {
                tokio::select! {
                    c = self.rx.recv() => if let Some(c) = c { self.ctl.apply(c) },
                    _ = tokio::time::sleep_until(until) => {}
                }
                if self.ctl.abort {
                    return Err("aborted while reconnecting".into());
                }
            }
            backoff = (backoff * 2).min(Duration::from_secs(10));
            match prepare(&self.dsn, &self.opts).await {
                Ok((conn, mon, id, _)) => {
                    self.conn = conn;
                    self.mon = mon;
                    self.id = id;
                    // A resume after a crash waits for what this session runs.
                    match self.journal.append(&Entry::Session { id: id.to_string() }) {
                        Ok(()) => return Ok(()),
                        Err(e) => last = format!("writing the run journal: {e}"),
                    }
                }
                Err(e) => last = e,
            }
        }
        Err(format!(
            "the primary stayed unreachable after {n} reconnect attempts (last: {last})"
        ))
    }

    /// Runs one statement; a lost connection is reconnected and the
    /// statement settled by the live schema (applied → done, not applied →
    /// run again, cannot tell → fail), within the retry budget.
    async fn statement(&mut self, sql: &str) -> End {
        let mut losses = 0u32;
        loop {
            let lost = match self.statement_once(sql).await {
                End::Lost(lost) => lost,
                other => return other,
            };
            if self.ctl.abort {
                return End::Aborted;
            }
            losses += 1;
            if losses > self.opts.reconnect_retries {
                return End::Failed(format!(
                    "{}: {lost} (connection lost {losses} times; retry budget spent)",
                    self.where_
                ));
            }
            if let Err(why) = self.reconnect(&lost).await {
                if self.ctl.abort {
                    return End::Aborted;
                }
                return End::Failed(format!("{}: {lost}; {why}", self.where_));
            }
            match MyInspect(&mut self.mon)
                .seen(sql, crate::model::Engine::Mysql)
                .await
            {
                Ok(Seen::Applied) => return End::Done,
                Ok(Seen::NotApplied) => continue,
                Ok(Seen::Unknown) => {
                    return End::Failed(format!(
                        "{}: {lost}; the live schema cannot tell whether the statement applied before the connection was lost: check by hand",
                        self.where_
                    ));
                }
                Err(e) => return End::Failed(format!("{}: {lost}; {e}", self.where_)),
            }
        }
    }

    async fn statement_once(&mut self, sql: &str) -> End {
        let fail = |w: &str, e: &mysql_async::Error| {
            if is_connection_loss(e) {
                End::Lost(my_error(e))
            } else {
                End::Failed(format!("{w}: {}", my_error(e)))
            }
        };
        match alter_plan(sql, self.mariadb) {
            AlterPlan::AsWritten => match self.run_retrying(sql).await {
                Ok(_) => End::Done,
                Err(_) if self.ctl.abort => End::Aborted,
                Err(e) => fail(&self.where_, &e),
            },
            AlterPlan::Ladder { table, rungs } => {
                for clause in rungs {
                    let full = with_clause(sql, clause);
                    match self.run_retrying(&full).await {
                        Ok(rows) => {
                            let how = if rows > 0 {
                                " (the server copied the table)"
                            } else {
                                ""
                            };
                            self.where_ = format!(
                                "{} applied with{}{how}",
                                self.where_,
                                clause.trim_start_matches(',')
                            );
                            self.publish(
                                ExecPhase::Copying,
                                Some(detail_only(self.where_.clone(), 0.0)),
                            )
                            .await;
                            return End::Done;
                        }
                        Err(e) if rejected(&e) => continue,
                        Err(_) if self.ctl.abort => return End::Aborted,
                        Err(e) => return fail(&self.where_, &e),
                    }
                }
                let rows = self.table_rows(&table).await;
                if rows.is_none_or(|r| r > self.opts.copy_max_rows) {
                    return End::Failed(format!(
                        "{}: only a copying ALTER can apply this to {table} ({} rows, limit {}): refusing to copy natively; use executor=gh-ost or executor=pt-osc",
                        self.where_,
                        rows.map(|r| r.to_string())
                            .unwrap_or_else(|| "unknown".into()),
                        self.opts.copy_max_rows
                    ));
                }
                match self
                    .run_retrying(&with_clause(sql, ", ALGORITHM=COPY, LOCK=SHARED"))
                    .await
                {
                    Ok(_) => End::Done,
                    Err(_) if self.ctl.abort => End::Aborted,
                    Err(e) => fail(&self.where_, &e),
                }
            }
        }
    }

    async fn run(mut self, steps: Vec<Step>, from: ResumePoint) -> Outcome {
        let n = steps.len();
        let mut done = from.step;
        let mut end = End::Done;
        let mut current_migration = usize::MAX;
        for w in std::mem::take(&mut self.warnings) {
            self.publish(
                ExecPhase::Starting,
                Some(detail_only(format!("warning before start: {w}"), 0.0)),
            )
            .await;
        }
        // Every replica under the limit before the first statement.
        if !self.between(true).await {
            return Outcome {
                kind: OutcomeKind::Aborted,
                leftovers: Vec::new(),
            };
        }
        if let Err(e) = self.journal.append(&Entry::Session {
            id: self.id.to_string(),
        }) {
            return Outcome {
                kind: OutcomeKind::Failed {
                    error: format!("cannot write the run journal (needed to resume safely): {e}"),
                },
                leftovers: Vec::new(),
            };
        }
        if let Err(e) = self.journal.append(&Entry::Started) {
            return Outcome {
                kind: OutcomeKind::Failed {
                    error: format!("cannot write the run journal (needed to resume safely): {e}"),
                },
                leftovers: Vec::new(),
            };
        }
        if from.step > 0 || from.skip_statements > 0 || from.backfill.is_some() {
            self.publish(
                ExecPhase::Starting,
                Some(detail_only(from.summary(&steps, &self.migrations), 0.0)),
            )
            .await;
        }
        'steps: for (i, step) in steps.iter().enumerate().skip(from.step) {
            self.step_index = i;
            if step.migration() != current_migration {
                current_migration = step.migration();
                self.migration_started = Instant::now();
            }
            self.where_ = format!("step {}/{n} {}", i + 1, step.label(&self.migrations));
            if !self.between(false).await {
                end = End::Aborted;
                break;
            }
            self.publish(
                ExecPhase::Copying,
                Some(detail_only(self.where_.clone(), 0.0)),
            )
            .await;
            match step {
                Step::Unit { statements, .. } => {
                    let skip = if i == from.step {
                        from.skip_statements
                    } else {
                        0
                    };
                    for (si, s) in statements.iter().enumerate().skip(skip) {
                        // A failure names this statement and its own line.
                        self.where_ = format!(
                            "step {}/{n} {}",
                            i + 1,
                            step.statement_label(&self.migrations, s)
                        );
                        end = self.statement(&s.sql).await;
                        if !matches!(end, End::Done) {
                            break 'steps;
                        }
                        // DDL commits implicitly: journal each statement.
                        if let Err(e) = self.journal.append(&Entry::Done {
                            step: i,
                            label: step.label(&self.migrations),
                            statements: Some(si + 1),
                        }) {
                            end = End::Failed(format!(
                                "{}: applied, but writing the run journal failed ({e})",
                                self.where_
                            ));
                            break 'steps;
                        }
                    }
                }
                Step::Record { migration } => {
                    let ms = i32::try_from(self.migration_started.elapsed().as_millis())
                        .unwrap_or(i32::MAX);
                    if let Err(e) = super::history::record_mysql(
                        &mut self.conn,
                        &self.migrations[*migration],
                        ms,
                    )
                    .await
                    {
                        end = End::Failed(format!(
                            "{}: recording in flyway_schema_history: {}",
                            self.where_,
                            my_error(&e)
                        ));
                        break 'steps;
                    }
                }
                Step::Backfill { directive, .. } => {
                    let resume = from.backfill.as_ref().filter(|_| i == from.step);
                    end = self.run_backfill(directive, resume).await;
                    if !matches!(end, End::Done) {
                        break 'steps;
                    }
                }
            }
            done += 1;
            if let Err(e) = self.journal.append(&Entry::Done {
                step: i,
                label: step.label(&self.migrations),
                statements: None,
            }) {
                end = End::Failed(format!(
                    "{}: applied, but writing the run journal failed ({e})",
                    self.where_
                ));
                break;
            }
            if self.ctl.abort {
                end = End::Aborted;
                break;
            }
        }
        // Marker rows of completed backfills: their steps are journaled done.
        for token in std::mem::take(&mut self.markers) {
            let _ = self
                .conn
                .exec_drop(
                    format!("DELETE FROM {MARKER_TABLE} WHERE token = ?"),
                    (token,),
                )
                .await;
        }
        if matches!(end, End::Done) {
            let left: Option<u64> = self
                .conn
                .query_first(format!("SELECT COUNT(*) FROM {MARKER_TABLE}"))
                .await
                .unwrap_or(None);
            if left == Some(0) {
                let _ = self
                    .conn
                    .query_drop(format!("DROP TABLE IF EXISTS {MARKER_TABLE}"))
                    .await;
            }
        }
        let mut leftovers: Vec<Leftover> = Vec::new();
        leftovers.extend(self.backfill_left.take());
        leftovers.extend(statements_leftover(&steps, done, &self.migrations));
        let detail = run_summary(
            done,
            n,
            (from.step > 0 || from.skip_statements > 0 || from.backfill.is_some())
                .then(|| from.summary(&steps, &self.migrations)),
            &self.notes,
        );
        let p = Progress {
            rows_copied: self.rows_updated,
            rows_total: (!self.notes.is_empty()).then_some(self.rows_updated),
            detail: Some(detail),
            ..Progress::default()
        };
        let phase = self.ctl.holding(None).unwrap_or(ExecPhase::Copying);
        self.publish(phase, Some(p)).await;
        Outcome {
            kind: match end {
                End::Done => OutcomeKind::Succeeded,
                End::Aborted => OutcomeKind::Aborted,
                End::Failed(error) | End::Lost(error) => OutcomeKind::Failed { error },
            },
            leftovers,
        }
    }
}

/// Turns on the performance_schema stage instruments and consumer that ALTER
/// progress needs; the error says why progress will be unavailable.
async fn enable_stages(mon: &mut mysql_async::Conn) -> Result<(), String> {
    let on: Option<i64> = mon
        .query_first("SELECT @@performance_schema")
        .await
        .map_err(|e| my_error(&e))?;
    if on != Some(1) {
        return Err("performance_schema is OFF (it can only be turned on at server start)".into());
    }
    mon.query_drop(
        "UPDATE performance_schema.setup_instruments SET ENABLED = 'YES', TIMED = 'YES'
          WHERE NAME LIKE 'stage/innodb/alter%' OR NAME = 'stage/sql/copy to tmp table'",
    )
    .await
    .map_err(|e| format!("cannot enable the stage instruments: {}", my_error(&e)))?;
    mon.query_drop(
        "UPDATE performance_schema.setup_consumers SET ENABLED = 'YES'
          WHERE NAME IN ('events_stages_current', 'events_stages_history')",
    )
    .await
    .map_err(|e| format!("cannot enable the stage consumers: {}", my_error(&e)))
}

/// Tables an earlier gh-ost or pt-osc run on `table` leaves behind.
pub fn tool_tables(table: &str) -> Vec<String> {
    ["gho", "ghc", "del", "new", "old"]
        .iter()
        .map(|s| format!("_{table}_{s}"))
        .collect()
}

/// Before start: ghost/changelog tables and pt-osc triggers of an earlier
/// run on the run's tables (a second tool run would fail or, worse, a live
/// trigger would keep writing). Returns the refusal, with the cleanup.
async fn earlier_run_leftovers(
    mon: &mut mysql_async::Conn,
    tables: &[String],
) -> Result<Option<String>, String> {
    // One detection for every executor (exec::leftovers).
    let found = super::leftovers::find_mysql(mon, tables)
        .await
        .map_err(|e| my_error(&e))?;
    Ok(super::leftovers::refusal(&found, None))
}

/// Before start: every replica known (when a poller is attached), and free
/// disk for a rebuild or copy of each altered table (a warning when the
/// server's disk cannot be read from here). `Err` is the refusal.
async fn preflight(
    mon: &mut mysql_async::Conn,
    dsn: &str,
    migrations: &[Migration],
    lag: Option<&mut Box<dyn LagPoller>>,
) -> Result<Vec<String>, String> {
    if let Some(p) = lag
        && let Some(r) = replica_health(&p.poll().await)
    {
        return Err(r);
    }
    let mut needed = Vec::new();
    for room in room_needed(migrations) {
        let (Room::Heap(t) | Room::TableAndIndexes(t)) = room;
        let b: Option<u64> = mon
            .exec_first(
                "SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
                (unquote(&t),),
            )
            .await
            .map_err(|e| my_error(&e))?;
        needed.push((t, b.unwrap_or(0)));
    }
    if needed.iter().all(|(_, b)| *b == 0) {
        return Ok(Vec::new());
    }
    let local = mysql_async::Opts::from_url(dsn)
        .map(|o| o.socket().is_some() || is_local_host(o.ip_or_hostname()))
        .unwrap_or(false);
    let free = match mon.query_first::<String, _>("SELECT @@datadir").await {
        Ok(Some(dir)) => local_free(&dir, local),
        Ok(None) => Err("@@datadir is empty".into()),
        Err(e) => Err(format!("@@datadir is not readable: {}", my_error(&e))),
    };
    match disk_verdict(&needed, free) {
        Disk::Ok => Ok(Vec::new()),
        Disk::Warn(w) => Ok(vec![w]),
        Disk::Refuse(r) => Err(r),
    }
}

async fn prepare(
    dsn: &str,
    opts: &MyExecOptions,
) -> Result<(mysql_async::Conn, mysql_async::Conn, u32, bool), String> {
    let o = mysql_async::Opts::from_url(dsn)
        .map_err(|e| crate::sql::redact::redact_dsn(&e.to_string()))?;
    let mut conn = mysql_async::Conn::new(o.clone())
        .await
        .map_err(|e| crate::dberror::mysql(dsn, &e))?;
    let mon = mysql_async::Conn::new(o)
        .await
        .map_err(|e| crate::dberror::mysql(dsn, &e))?;
    let (id, version): (u32, String) = conn
        .query_first("SELECT CONNECTION_ID(), VERSION()")
        .await
        .map_err(|e| my_error(&e))?
        .ok_or("no answer to SELECT CONNECTION_ID()")?;
    conn.query_drop(format!(
        "SET SESSION lock_wait_timeout = {}",
        opts.lock_wait_timeout_s
    ))
    .await
    .map_err(|e| my_error(&e))?;
    Ok((
        conn,
        mon,
        id,
        version.to_ascii_lowercase().contains("mariadb"),
    ))
}

/// What a start hands to its task: it waits for the interrupted run's
/// statements still on the server, prepares, finds where to resume, checks,
/// then runs.
struct Launch {
    dsn: String,
    migrations: Arc<Vec<Migration>>,
    opts: MyExecOptions,
    // A tokio mutex keeps the launch `Sync` (pollers are only `Send`).
    lag: Option<tokio::sync::Mutex<Box<dyn LagPoller>>>,
    shared: Arc<Mutex<Shared>>,
    updates: mpsc::Sender<ExecUpdate>,
    rx: mpsc::UnboundedReceiver<Control>,
    ctl: Ctl,
}

/// Keeps a run's ending where `status`/`outcome`/`leftovers` read it.
fn finish(o: Outcome, shared: &Arc<Mutex<Shared>>) -> Outcome {
    let mut s = lock(shared);
    s.leftovers = o.leftovers.clone();
    s.status = ExecStatus {
        phase: match &o.kind {
            OutcomeKind::Succeeded => ExecPhase::Succeeded,
            OutcomeKind::Aborted => ExecPhase::Aborted,
            OutcomeKind::Failed { error } => ExecPhase::Failed {
                error: error.clone(),
            },
        },
        progress: s.status.progress.clone(),
        at: Utc::now(),
    };
    s.outcome = Some(o.clone());
    o
}

impl Launch {
    async fn end(&self, kind: OutcomeKind, leftovers: Vec<Leftover>) {
        let o = finish(Outcome { kind, leftovers }, &self.shared);
        let _ = self.updates.send(ExecUpdate::Finished(o)).await;
    }

    /// Waits while a session of the interrupted run still runs a statement
    /// (the server finishes an ALTER for a dead client); when aborted
    /// meanwhile, what still runs.
    async fn wait_for_orphans(
        &mut self,
        run_dir: &std::path::Path,
    ) -> Result<Option<Vec<Orphan>>, String> {
        let sessions = super::resume::sessions(
            &Journal::new(run_dir)
                .read()
                .map_err(|e| format!("reading the run journal in {}: {e}", run_dir.display()))?,
        );
        if sessions.is_empty() {
            return Ok(None);
        }
        let (_, mut c, _, _) = prepare(&self.dsn, &self.opts).await?;
        loop {
            let found = orphans(&mut c, &sessions).await?;
            let Some(first) = found.first() else {
                let _ = c.disconnect().await;
                return Ok(None);
            };
            let status = ExecStatus {
                phase: ExecPhase::Starting,
                progress: Some(detail_only(first.note(), self.ctl.max_lag_seconds)),
                at: Utc::now(),
            };
            lock(&self.shared).status = status.clone();
            let _ = self.updates.send(ExecUpdate::Status(status)).await;
            tokio::select! {
                c = self.rx.recv() => if let Some(c) = c { self.ctl.apply(c) },
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            if self.ctl.abort {
                return Ok(Some(found));
            }
        }
    }

    async fn run(mut self, job: ExecJob) {
        match self.wait_for_orphans(&job.run_dir).await {
            Ok(None) => {}
            Ok(Some(running)) => {
                let left = running.iter().map(Orphan::leftover).collect();
                return self.end(OutcomeKind::Aborted, left).await;
            }
            Err(e) => {
                return self
                    .end(
                        OutcomeKind::Failed {
                            error: format!("refused before start: {e}"),
                        },
                        Vec::new(),
                    )
                    .await;
            }
        }
        let steps = plan_steps(&self.migrations, self.opts.record_history);
        let refusal = super::history::liquibase_refusal(&self.migrations)
            .map(|r| format!("refused before start: {r}"));
        let prepared = match refusal {
            Some(r) => Err(r),
            None => prepare(&self.dsn, &self.opts).await,
        };
        let prepared = match prepared {
            Ok(mut p) => match earlier_run_leftovers(&mut p.1, &job.spec.tables).await {
                Ok(Some(r)) | Err(r) => Err(format!("refused before start: {r}")),
                Ok(None) => Ok(p),
            },
            Err(e) => Err(e),
        };
        let prepared = match prepared {
            Ok(mut p) => resume_point(&mut p.1, &steps, &self.migrations, &job.run_dir)
                .await
                .map(|r| (p, r))
                .map_err(|e| format!("refused before start: {e}")),
            Err(e) => Err(e),
        };
        let mut warnings = Vec::new();
        let mut prepared = match prepared {
            Ok(mut p) => {
                match preflight(
                    &mut p.0.1,
                    &self.dsn,
                    &self.migrations,
                    self.lag.as_mut().map(|m| m.get_mut()),
                )
                .await
                {
                    Ok(w) => {
                        warnings = w;
                        Ok(p)
                    }
                    Err(e) => Err(format!("refused before start: {e}")),
                }
            }
            Err(e) => Err(e),
        };
        let stages_note = match &mut prepared {
            Ok(((_, mon, _, _), _)) => enable_stages(mon).await.err(),
            Err(_) => None,
        };
        let ((conn, mon, id, mariadb), from) = match prepared {
            Ok(x) => x,
            Err(error) => return self.end(OutcomeKind::Failed { error }, Vec::new()).await,
        };
        let shared = self.shared.clone();
        let updates = self.updates.clone();
        let task = Task {
            dsn: self.dsn,
            conn,
            mon,
            id,
            mariadb,
            opts: self.opts,
            migrations: self.migrations,
            ctl: self.ctl,
            rx: self.rx,
            updates: updates.clone(),
            shared: shared.clone(),
            where_: String::new(),
            migration_started: Instant::now(),
            journal: Journal::new(&job.run_dir),
            stages_note,
            lag: self.lag,
            backfill_left: None,
            warnings,
            step_index: 0,
            notes: Vec::new(),
            rows_updated: 0,
            markers: Vec::new(),
        };
        let o = finish(task.run(steps, from).await, &shared);
        let _ = updates.send(ExecUpdate::Finished(o)).await;
    }
}

/// The statements sessions `sessions` (journaled connection ids) still run
/// on the server; sleeping sessions are left out. Ids
/// restart with the server, so only the run's own user's sessions count.
async fn orphans(c: &mut mysql_async::Conn, sessions: &[String]) -> Result<Vec<Orphan>, String> {
    if sessions.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(u64, Option<String>)> = c
        .exec(
            "SELECT ID, INFO FROM information_schema.PROCESSLIST
              WHERE FIND_IN_SET(ID, ?) AND ID <> CONNECTION_ID() AND COMMAND <> 'Sleep'
                AND USER = SUBSTRING_INDEX(USER(), '@', 1)",
            (sessions.join(","),),
        )
        .await
        .map_err(|e| my_error(&e))?;
    Ok(rows
        .into_iter()
        .map(|(id, q)| Orphan {
            session: format!("connection {id}"),
            query: q.unwrap_or_default(),
            cancel: format!("KILL QUERY {id};"),
        })
        .collect())
}

impl Executor for NativeMysql {
    fn name(&self) -> &'static str {
        "native"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            pause: true,
            postpone_cut_over: false,
            set_chunk_size: true,
            set_max_lag: true,
            lag_throttle: self.has_lag,
        }
    }

    fn start(
        &mut self,
        job: ExecJob,
        updates: mpsc::Sender<ExecUpdate>,
    ) -> BoxFuture<'_, Result<(), ExecError>> {
        Box::pin(async move {
            let (tx, rx) = mpsc::unbounded_channel();
            self.controls = Some(tx);
            *lock(&self.shared) = Shared::default();
            let launch = Launch {
                dsn: self.dsn.clone(),
                migrations: self.migrations.clone(),
                opts: self.opts.clone(),
                lag: self.lag.take().map(tokio::sync::Mutex::new),
                shared: self.shared.clone(),
                updates,
                rx,
                ctl: Ctl {
                    max_lag_seconds: job
                        .max_lag_millis
                        .map(|m| m as f64 / 1000.0)
                        .unwrap_or(self.opts.max_lag.as_secs_f64()),
                    chunk_rows: job.chunk_size,
                    ..Ctl::default()
                },
            };
            // Everything that may wait (an interrupted run's ALTER still
            // running on the server) happens in the task: the run core stays
            // free to take commands, abort included.
            tokio::spawn(launch.run(job));
            Ok(())
        })
    }

    fn control(&mut self, control: Control) -> BoxFuture<'_, Result<(), ExecError>> {
        Box::pin(async move {
            let what = match &control {
                Control::CutOver { .. } => Some(
                    "postpone or trigger a cut-over (an in-place ALTER has no copy to cut over to)",
                ),
                _ => None,
            };
            if let Some(what) = what {
                return Err(ExecError::Unsupported {
                    executor: "native",
                    what: what.into(),
                });
            }
            let tx = self.controls.as_ref().ok_or(ExecError::NotStarted)?;
            tx.send(control)
                .map_err(|_| ExecError::Refused("the native run has ended".into()))
        })
    }

    fn status(&mut self) -> BoxFuture<'_, Result<ExecStatus, ExecError>> {
        Box::pin(async move { Ok(lock(&self.shared).status.clone()) })
    }

    fn outcome(&mut self) -> BoxFuture<'_, Result<Option<Outcome>, ExecError>> {
        Box::pin(async move { Ok(lock(&self.shared).outcome.clone()) })
    }

    fn leftovers(&mut self) -> BoxFuture<'_, Result<Vec<Leftover>, ExecError>> {
        Box::pin(async move { Ok(lock(&self.shared).leftovers.clone()) })
    }

    fn recover(
        &mut self,
        job: ExecJob,
        _updates: mpsc::Sender<ExecUpdate>,
    ) -> BoxFuture<'_, Result<ExecStatus, ExecError>> {
        Box::pin(async move {
            // The server goes on with an ALTER whose client died (only KILL
            // QUERY rolls it back, engines.md §6.4): while it runs, nothing
            // can be judged. Then what ran is read from the journal, the
            // history and the live schema. Nothing is changed here.
            let (_, mut mon, _, _) = prepare(&self.dsn, &self.opts)
                .await
                .map_err(|e| ExecError::Refused(format!("cannot inspect the target: {e}")))?;
            let steps = plan_steps(&self.migrations, self.opts.record_history);
            // A statement the dead process left running (an ALTER) decides
            // where the run resumes only once it has ended.
            let sessions =
                super::resume::sessions(&Journal::new(&job.run_dir).read().unwrap_or_default());
            let running = orphans(&mut mon, &sessions)
                .await
                .map_err(ExecError::Refused)?;
            if let Some(first) = running.first() {
                let status = ExecStatus {
                    phase: ExecPhase::NotRunning,
                    progress: Some(detail_only(first.note(), 0.0)),
                    at: Utc::now(),
                };
                lock(&self.shared).status = status.clone();
                return Ok(status);
            }
            let from = resume_point(&mut mon, &steps, &self.migrations, &job.run_dir)
                .await
                .map_err(ExecError::Refused)?;
            let status = ExecStatus {
                phase: ExecPhase::NotRunning,
                progress: Some(detail_only(from.summary(&steps, &self.migrations), 0.0)),
                at: Utc::now(),
            };
            lock(&self.shared).status = status.clone();
            Ok(status)
        })
    }
}

/// Where a run of `steps` resumes on the database behind `conn`: history,
/// the journal in `run_dir`, then the live schema for the statement that
/// may have run after the last journal write (a half-applied migration).
pub async fn resume_point(
    conn: &mut mysql_async::Conn,
    steps: &[Step],
    migrations: &[Migration],
    run_dir: &std::path::Path,
) -> Result<ResumePoint, String> {
    let entries = Journal::new(run_dir)
        .read()
        .map_err(|e| format!("reading the run journal in {}: {e}", run_dir.display()))?;
    let j = journaled(&entries, steps, migrations)?;
    let h = super::history::read_all_mysql(conn)
        .await
        .map_err(|e| my_error(&e))?;
    let sorting = super::history::sort(
        migrations,
        &super::history::History {
            flyway: h.flyway,
            ..Default::default()
        },
    );
    resume_from(steps, migrations, &j, &sorting, &mut MyInspect(conn)).await
}

struct MyInspect<'c>(&'c mut mysql_async::Conn);

impl Inspect for MyInspect<'_> {
    fn committed<'a>(&'a mut self, _xid: &'a str) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async { Ok(false) })
    }

    fn marker<'a>(&'a mut self, token: &'a str) -> BoxFuture<'a, Result<Option<i64>, String>> {
        Box::pin(async move {
            self.0
                .exec_first(
                    format!("SELECT last_key FROM {MARKER_TABLE} WHERE token = ?"),
                    (token,),
                )
                .await
                .map_err(|e| {
                    format!(
                        "reading the backfill marker {MARKER_TABLE} (where the interrupted backfill stands): {}",
                        my_error(&e)
                    )
                })
        })
    }

    fn seen<'a>(
        &'a mut self,
        sql: &'a str,
        engine: crate::model::Engine,
    ) -> BoxFuture<'a, Result<Seen, String>> {
        Box::pin(async move {
            let Some(ps) = probes(sql, engine) else {
                return Ok(Seen::Unknown);
            };
            let mut results = Vec::new();
            let mut neutral = false;
            for p in ps {
                let (q, params, want): (&str, Vec<String>, bool) = match p {
                    Probe::Idempotent => {
                        neutral = true;
                        continue;
                    }
                    Probe::Constraint {
                        table,
                        name,
                        exists,
                    } => (
                        "SELECT COUNT(*) FROM information_schema.TABLE_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = ? AND CONSTRAINT_NAME = ?",
                        vec![unquote(&table), unquote(&name)],
                        exists,
                    ),
                    Probe::Table { table, exists } => (
                        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
                        vec![unquote(&table)],
                        exists,
                    ),
                    Probe::Column {
                        table,
                        column,
                        exists,
                    } => (
                        "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?",
                        vec![unquote(&table), unquote(&column)],
                        exists,
                    ),
                    Probe::Index {
                        name,
                        table: Some(table),
                        exists,
                    } => (
                        "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND INDEX_NAME = ?",
                        vec![unquote(&table), unquote(&name)],
                        exists,
                    ),
                    Probe::Index {
                        name,
                        table: None,
                        exists,
                    } => (
                        "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND INDEX_NAME = ?",
                        vec![unquote(&name)],
                        exists,
                    ),
                };
                let n: Option<u64> = self
                    .0
                    .exec_first(q, params)
                    .await
                    .map_err(|e| my_error(&e))?;
                results.push((n.unwrap_or(0) > 0) == want);
            }
            Ok(settle(&results, neutral))
        })
    }
}

/// `schema`.`name` → name, without backticks (the probes ask DATABASE()).
fn unquote(name: &str) -> String {
    name.rsplit('.')
        .next()
        .unwrap_or(name)
        .trim_matches('`')
        .to_string()
}

/// A pause asked for while a statement runs: it takes effect when the
/// statement ends (an ALTER or index build cannot stop midway), and the
/// console says so rather than looking ignored.
fn pause_waits_for_statement(updates: &mpsc::Sender<ExecUpdate>, where_: &str, max_lag: f64) {
    let status = ExecStatus {
        phase: ExecPhase::Copying,
        progress: Some(detail_only(
            format!(
                "{where_}: pause requested: takes effect when the running statement ends (it cannot stop midway; abort cancels it)"
            ),
            max_lag,
        )),
        at: Utc::now(),
    };
    let _ = updates.try_send(ExecUpdate::Status(status));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladder_and_exceptions() {
        match alter_plan("ALTER TABLE t ADD COLUMN x int;", true) {
            AlterPlan::Ladder { table, rungs } => {
                assert_eq!(table, "t");
                assert_eq!(rungs[0], ", ALGORITHM=INSTANT");
                assert_eq!(rungs[1], ", ALGORITHM=NOCOPY");
                assert_eq!(rungs.len(), 4);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(alter_plan("ALTER TABLE t ADD COLUMN x int", false), AlterPlan::Ladder { rungs, .. } if rungs.len() == 3)
        );
        assert_eq!(
            alter_plan("ALTER TABLE t ADD c int, ALGORITHM=COPY", true),
            AlterPlan::AsWritten
        );
        assert_eq!(
            alter_plan("ALTER TABLE t DROP PARTITION p1", true),
            AlterPlan::AsWritten
        );
        assert!(
            matches!(alter_plan("ALTER TABLE t PARTITION BY HASH(id) PARTITIONS 4", true), AlterPlan::Ladder { rungs, .. } if rungs.is_empty())
        );
        assert_eq!(
            alter_plan("CREATE TABLE t (id int)", true),
            AlterPlan::AsWritten
        );
        assert_eq!(
            with_clause("ALTER TABLE t ADD c int ;", ", ALGORITHM=INSTANT"),
            "ALTER TABLE t ADD c int, ALGORITHM=INSTANT"
        );
    }
}
