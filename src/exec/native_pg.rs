//! The native PostgreSQL executor: runs the approved SQL exactly as written
//! through `tokio-postgres`.
//!
//! - Every unit runs with `lock_timeout` and `statement_timeout` set for the
//!   session (defaults: [`PgExecOptions::default`]); a lock timeout (SQLSTATE
//!   55P03) rolls the unit back and retries it with backoff, so no lock is held
//!   while waiting.
//! - Transaction boundaries are the tool's ([`super::native::plan_steps`]);
//!   `CONCURRENTLY` statements run alone, outside a transaction.
//! - While a statement runs, `pg_stat_progress_create_index` is sampled; other
//!   statements report elapsed time and wait event only (engines.md §6.1).
//! - A failed or cancelled concurrent build leaves an INVALID index: it is
//!   reported with `DROP INDEX CONCURRENTLY …`, and dropped before a retry.
//! - Pause, throttle and abort act between units and chunks; abort also runs
//!   `pg_cancel_backend` on the running statement, and nothing further runs.
//! - A `-- cutover: backfill` directive runs as `UPDATE … WHERE key BETWEEN`
//!   chunks sized to the declared time per chunk, pausing while any replica's
//!   lag is over the limit or unknown.

use super::native::{
    Ctl, Shared, Step, backfill_leftover, detail_only, eta, lock, next_chunk, plan_steps,
    record_in_transactions, run_summary, statements_leftover,
};
use super::preflight::{
    Disk, Room, disk_verdict, is_local_host, local_free, replica_health, room_needed,
};
use super::resume::{
    BackfillResume, Entry, Inspect, Journal, Orphan, Probe, ResumePoint, Seen, journaled, probes,
    resume_from, settle,
};
use super::{
    Capabilities, Control, ExecError, ExecJob, ExecPhase, ExecStatus, ExecUpdate, Executor,
    Leftover, Outcome, OutcomeKind, Progress,
};
use crate::lag::LagPoller;
use crate::migrate::{BackfillDirective, Migration};
use chrono::Utc;
use futures_util::future::BoxFuture;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

/// Options of native PostgreSQL runs.
#[derive(Debug, Clone, PartialEq)]
pub struct PgExecOptions {
    /// `lock_timeout` per statement (default 5 s: traffic queues behind a
    /// waiting lock for at most this long).
    pub lock_timeout: Duration,
    /// `statement_timeout`; `None` = off (default: index builds may take hours).
    pub statement_timeout: Option<Duration>,
    /// Retries after a lock timeout (default 5).
    pub lock_retries: u32,
    /// First backoff after a lock timeout, doubled each time up to 30 s (default 1 s).
    pub retry_backoff: Duration,
    /// Progress sampling while a statement runs (default 1 s).
    pub progress_interval: Duration,
    /// Refuse to start while a transaction older than this holds a lock on a
    /// table of the run (default 60 s).
    pub old_transaction: Duration,
    /// Max replica lag when the job does not say (default 1 s).
    pub max_lag: Duration,
    /// Wait between lag polls while throttled (default 1 s).
    pub lag_interval: Duration,
    /// Record Flyway migrations in `flyway_schema_history` (default true).
    pub record_history: bool,
    /// Reconnect attempts after the connection is lost (primary restart,
    /// session terminated) before the run fails; also the most losses one
    /// step survives (default 10).
    pub reconnect_retries: u32,
    /// First wait before a reconnect, doubled up to 10 s (default 1 s).
    pub reconnect_backoff: Duration,
}

impl Default for PgExecOptions {
    fn default() -> Self {
        PgExecOptions {
            lock_timeout: Duration::from_secs(5),
            statement_timeout: None,
            lock_retries: 5,
            retry_backoff: Duration::from_secs(1),
            progress_interval: Duration::from_secs(1),
            old_transaction: Duration::from_secs(60),
            max_lag: Duration::from_secs(1),
            lag_interval: Duration::from_secs(1),
            record_history: true,
            reconnect_retries: 10,
            reconnect_backoff: Duration::from_secs(1),
        }
    }
}

/// The native PostgreSQL executor for one set of approved migrations.
pub struct NativePg {
    dsn: String,
    migrations: Arc<Vec<Migration>>,
    opts: PgExecOptions,
    lag: Option<Box<dyn LagPoller>>,
    has_lag: bool,
    shared: Arc<Mutex<Shared>>,
    controls: Option<mpsc::UnboundedSender<Control>>,
}

impl NativePg {
    /// An executor that will apply `migrations` on the primary at `dsn`.
    pub fn new(dsn: &str, migrations: Vec<Migration>, opts: PgExecOptions) -> NativePg {
        NativePg {
            dsn: dsn.to_string(),
            migrations: Arc::new(migrations),
            opts,
            lag: None,
            has_lag: false,
            shared: Arc::new(Mutex::new(Shared::default())),
            controls: None,
        }
    }

    /// The steps of this executor's migrations.
    fn steps(&self) -> Vec<Step> {
        record_in_transactions(
            plan_steps(&self.migrations, self.opts.record_history),
            &self.migrations,
        )
    }

    /// Throttles backfill chunks on this poller's replicas by itself.
    pub fn with_lag(mut self, poller: Box<dyn LagPoller>) -> NativePg {
        self.lag = Some(poller);
        self.has_lag = true;
        self
    }
}

/// A tokio-postgres error as a DBA reads it (SQLSTATE included).
pub fn pg_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => {
            let mut s = format!(
                "{}: {} (SQLSTATE {})",
                d.severity(),
                d.message(),
                d.code().code()
            );
            if let Some(detail) = d.detail() {
                s.push_str(&format!("; {detail}"));
            }
            s
        }
        None => e.to_string(),
    }
}

/// `step 2/5 V3__x.sql:4` for the statement at `s.line`: the step's label
/// with the statement's own line and its text (clipped).
fn statement_at(where_: &str, s: &crate::sql::split::RawStatement) -> String {
    let base = match where_.rsplit_once(':') {
        Some((head, tail)) if tail.chars().all(|c| c.is_ascii_digit()) => head,
        _ => where_,
    };
    format!("{base}:{} `{}`", s.line, super::native::clip_sql(&s.sql))
}

fn is_lock_timeout(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE)
}

/// The session is gone (server restart or shutdown, session terminated,
/// socket broken), as opposed to a statement error: worth a reconnect.
pub fn is_connection_loss(e: &tokio_postgres::Error) -> bool {
    e.is_closed()
        || matches!(
            e.code(),
            Some(c) if *c == SqlState::ADMIN_SHUTDOWN
                || *c == SqlState::CRASH_SHUTDOWN
                || *c == SqlState::CANNOT_CONNECT_NOW
        )
        || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
}

/// The session settings every executor connection runs with.
fn session_sql(opts: &PgExecOptions) -> String {
    format!(
        "SET lock_timeout = '{}ms'; SET statement_timeout = '{}ms'; SET application_name = 'cutover'",
        opts.lock_timeout.as_millis(),
        opts.statement_timeout.map(|d| d.as_millis()).unwrap_or(0)
    )
}

async fn connect(dsn: &str) -> Result<Client, String> {
    let (c, conn) = tokio_postgres::connect(dsn, NoTls)
        .await
        .map_err(|e| crate::dberror::postgres(dsn, &e))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(c)
}

/// INVALID indexes in the database, as `schema.name`.
async fn invalid_indexes(c: &Client) -> Result<BTreeSet<String>, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT n.nspname || '.' || ic.relname FROM pg_index i
               JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
              WHERE NOT i.indisvalid",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
}

fn quote_qualified(name: &str) -> String {
    name.split('.')
        .map(|p| format!("\"{}\"", p.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(".")
}

fn invalid_leftover(name: &str) -> Leftover {
    Leftover {
        kind: "index".into(),
        name: format!("{name} (INVALID)"),
        cleanup: Some(format!(
            "DROP INDEX CONCURRENTLY IF EXISTS {};",
            quote_qualified(name)
        )),
    }
}

/// Before-start checks: old transactions holding locks on the run's tables
/// (the DDL would queue behind them and every query behind the DDL) and
/// INVALID indexes left by an earlier build on those tables. Returns the
/// refusal, if any.
pub async fn before_start(
    c: &Client,
    tables: &[String],
    old: Duration,
) -> Result<Option<String>, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT DISTINCT a.pid, EXTRACT(EPOCH FROM now() - a.xact_start)::float8, coalesce(a.state, ''), c.relname::text
               FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid JOIN pg_class c ON c.oid = l.relation
              WHERE l.locktype = 'relation' AND a.pid <> pg_backend_pid()
                AND a.xact_start < now() - make_interval(secs => $1)
                AND l.relation IN (SELECT to_regclass(x) FROM unnest($2::text[]) x)",
            &[&old.as_secs_f64(), &tables],
        )
        .await?;
    if let Some(r) = rows.first() {
        let pid: i32 = r.get(0);
        let age: f64 = r.get(1);
        let state: String = r.get(2);
        let table: String = r.get(3);
        return Ok(Some(format!(
            "pid {pid} has held a transaction open for {age:.0}s ({state}) with a lock on {table}: the DDL would queue behind it and stall all traffic on the table. End it (SELECT pg_terminate_backend({pid})) or wait, then start again"
        )));
    }
    let rows = c
        .query(
            "SELECT n.nspname || '.' || ic.relname FROM pg_index i
               JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
              WHERE NOT i.indisvalid AND i.indrelid IN (SELECT to_regclass(x) FROM unnest($1::text[]) x)",
            &[&tables],
        )
        .await?;
    if !rows.is_empty() {
        let names: Vec<String> = rows.iter().map(|r| r.get::<_, String>(0)).collect();
        let cleanup: Vec<String> = names
            .iter()
            .map(|n| format!("DROP INDEX CONCURRENTLY IF EXISTS {};", quote_qualified(n)))
            .collect();
        return Ok(Some(format!(
            "INVALID index(es) left by an earlier build: {}. Clean up first: {}",
            names.join(", "),
            cleanup.join(" ")
        )));
    }
    Ok(None)
}

/// Where a run of `steps` resumes on the database behind `c` (see
/// [`super::resume`]): history first, then the journal in `run_dir`, then
/// `txid_status` or the catalog for the one step that may have run after the
/// last journal write.
pub async fn resume_point(
    c: &Client,
    steps: &[Step],
    migrations: &[Migration],
    run_dir: &std::path::Path,
) -> Result<ResumePoint, String> {
    let entries = Journal::new(run_dir)
        .read()
        .map_err(|e| format!("reading the run journal in {}: {e}", run_dir.display()))?;
    let j = journaled(&entries, steps, migrations)?;
    let rows = super::history::read_pg(c).await.map_err(|e| pg_error(&e))?;
    let sorting = super::history::sort(
        migrations,
        &super::history::History {
            flyway: Some(rows),
            ..Default::default()
        },
    );
    resume_from(steps, migrations, &j, &sorting, &mut PgInspect(c)).await
}

struct PgInspect<'c>(&'c Client);

impl Inspect for PgInspect<'_> {
    fn committed<'a>(&'a mut self, xid: &'a str) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            let status: Option<String> = self
                .0
                .query_one("SELECT txid_status($1::text::bigint)::text", &[&xid])
                .await
                .map_err(|e| pg_error(&e))?
                .get(0);
            match status.as_deref() {
                Some("committed") => Ok(true),
                Some("in progress") => Err(format!(
                    "transaction {xid} of the interrupted step is still in progress: the earlier run is still connected; end it first"
                )),
                _ => Ok(false),
            }
        })
    }

    fn seen<'a>(
        &'a mut self,
        sql: &'a str,
        engine: crate::model::Engine,
    ) -> BoxFuture<'a, Result<Seen, String>> {
        Box::pin(pg_seen(self.0, sql, engine))
    }
}

/// Evaluates one statement's catalog probes.
async fn pg_seen(c: &Client, sql: &str, engine: crate::model::Engine) -> Result<Seen, String> {
    let Some(ps) = probes(sql, engine) else {
        return Ok(Seen::Unknown);
    };
    let mut results = Vec::new();
    let mut neutral = false;
    for p in ps {
        let (q, a, b, want) = match &p {
            Probe::Idempotent => {
                neutral = true;
                continue;
            }
            Probe::Constraint {
                table,
                name,
                exists,
            } => (
                "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass($1) AND conname = $2)",
                table.clone(),
                name.clone(),
                *exists,
            ),
            Probe::Table { table, exists } => (
                "SELECT to_regclass($1) IS NOT NULL AND $2 = $2",
                table.clone(),
                String::new(),
                *exists,
            ),
            Probe::Column {
                table,
                column,
                exists,
            } => (
                "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = $2 AND NOT attisdropped)",
                table.clone(),
                column.clone(),
                *exists,
            ),
            Probe::Index { name, exists, .. } => (
                // An INVALID index is a failed build: not applied.
                "SELECT EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass($1) AND indisvalid AND $2 = $2)",
                name.clone(),
                String::new(),
                *exists,
            ),
        };
        let found: bool = c
            .query_one(q, &[&a, &b])
            .await
            .map_err(|e| pg_error(&e))?
            .get(0);
        results.push(found == want);
    }
    Ok(settle(&results, neutral))
}

/// Before-start checks beyond [`before_start`]: every replica known (when a
/// poller is attached; over the limit waits in [`Task::run`]), and free disk for rewrites
/// and index builds (a warning when the server's disk cannot be read from
/// here). Returns the warnings; `Err` is the refusal.
async fn preflight(
    mon: &Client,
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
        let (q, t) = match room {
            Room::Heap(t) => (
                "SELECT coalesce(pg_relation_size(to_regclass($1)), 0)::int8",
                t,
            ),
            Room::TableAndIndexes(t) => (
                "SELECT coalesce(pg_total_relation_size(to_regclass($1)), 0)::int8",
                t,
            ),
        };
        let b: i64 = mon
            .query_one(q, &[&t])
            .await
            .map_err(|e| pg_error(&e))?
            .get(0);
        needed.push((t, b.max(0) as u64));
    }
    if needed.iter().all(|(_, b)| *b == 0) {
        return Ok(Vec::new());
    }
    let local = dsn
        .parse::<tokio_postgres::Config>()
        .map(|c| {
            c.get_hosts().iter().all(|h| match h {
                tokio_postgres::config::Host::Tcp(h) => is_local_host(h),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(_) => true,
            })
        })
        .unwrap_or(false);
    let free = match mon
        .query_one("SELECT current_setting('data_directory')", &[])
        .await
    {
        Ok(r) => local_free(&r.get::<_, String>(0), local),
        Err(e) => Err(format!("data_directory is not readable: {}", pg_error(&e))),
    };
    match disk_verdict(&needed, free) {
        Disk::Ok => Ok(Vec::new()),
        Disk::Warn(w) => Ok(vec![w]),
        Disk::Refuse(r) => Err(r),
    }
}

/// Consecutive chunks cancelled at the target time before a backfill gives
/// up (something else is slowing every chunk down, e.g. a lock wait).
const MAX_OVER_TARGET: u32 = 5;

/// Everything the running task owns.
struct Task {
    /// Where to reconnect.
    dsn: String,
    client: Client,
    mon: Client,
    pid: i32,
    migrations: Arc<Vec<Migration>>,
    opts: PgExecOptions,
    // A tokio mutex makes the task `Sync`-safe to borrow across awaits.
    lag: Option<tokio::sync::Mutex<Box<dyn LagPoller>>>,
    ctl: Ctl,
    rx: mpsc::UnboundedReceiver<Control>,
    updates: mpsc::Sender<ExecUpdate>,
    shared: Arc<Mutex<Shared>>,
    /// `statement i/n: label` of the current step.
    where_: String,
    /// The statement of the current unit that runs (or failed), with its line.
    failed_at: Option<String>,
    invalid_before: BTreeSet<String>,
    /// Set when a backfill stopped between chunks (what it left).
    backfill_left: Option<Leftover>,
    /// When the current migration's first step started (history `execution_time`).
    migration_started: Instant,
    /// The run's journal (resume).
    journal: Journal,
    /// Index of the step running.
    step_index: usize,
    /// Before-start warnings, published first.
    warnings: Vec<String>,
    /// What the backfills did, for the closing summary.
    notes: Vec<String>,
    /// Rows updated by backfills in this run.
    rows_updated: u64,
}

enum StepEnd {
    Done,
    Aborted,
    Failed(String),
}

impl Task {
    async fn publish(&self, phase: ExecPhase, progress: Option<Progress>) {
        let status = ExecStatus {
            phase,
            progress,
            at: Utc::now(),
        };
        lock(&self.shared).status = status.clone();
        // A closed channel means the core is gone; the run still finishes.
        let _ = self.updates.send(ExecUpdate::Status(status)).await;
    }

    fn drain_controls(&mut self) {
        while let Ok(c) = self.rx.try_recv() {
            self.ctl.apply(c);
        }
    }

    /// Waits while paused or throttled; `false` when aborted.
    async fn between(&mut self, check_lag: bool) -> bool {
        loop {
            self.drain_controls();
            if self.ctl.abort {
                return false;
            }
            let mut phase = self.ctl.holding(None);
            if phase.is_none()
                && check_lag
                && let Some(p) = self.lag.as_ref()
            {
                let samples = p.lock().await.poll().await;
                phase = self.ctl.holding(super::native::lag_reason(
                    &samples,
                    self.ctl.max_lag_seconds,
                ));
            }
            let Some(phase) = phase else {
                return true;
            };
            let detail = detail_only(self.where_.clone(), self.ctl.max_lag_seconds);
            self.publish(phase, Some(detail)).await;
            tokio::select! {
                c = self.rx.recv() => if let Some(c) = c { self.ctl.apply(c) },
                _ = tokio::time::sleep(self.opts.lag_interval) => {}
            }
        }
    }

    /// The closing status: steps applied, what each backfill did (and what
    /// ran before an interruption), rows updated. The run core records it.
    async fn publish_summary(&self, done: usize, n: usize, from: &ResumePoint, steps: &[Step]) {
        let detail = run_summary(
            done,
            n,
            (from.step > 0 || from.backfill.is_some())
                .then(|| from.summary(steps, &self.migrations)),
            &self.notes,
        );
        let p = Progress {
            rows_copied: self.rows_updated,
            // Rows updated by backfills, when there were any (never "0 of ?").
            rows_total: (!self.notes.is_empty()).then_some(self.rows_updated),
            percent: None,
            eta_seconds: None,
            chunk_size: None,
            max_lag_millis: Some((self.ctl.max_lag_seconds * 1000.0) as u64),
            detail: Some(detail),
        };
        let phase = self.ctl.holding(None).unwrap_or(ExecPhase::Copying);
        self.publish(phase, Some(p)).await;
    }

    async fn sample(&self, started: Instant) -> Progress {
        let row = self
            .mon
            .query_opt(
                "SELECT command, phase, blocks_total, blocks_done, tuples_total, tuples_done, lockers_total, lockers_done
                   FROM pg_stat_progress_create_index WHERE pid = $1",
                &[&self.pid],
            )
            .await
            .ok()
            .flatten();
        let mut p = detail_only(String::new(), self.ctl.max_lag_seconds);
        if let Some(r) = row {
            let command: String = r.get(0);
            let phase: String = r.get(1);
            let (unit, done, total): (&str, i64, i64) = if phase.contains("loading tuples") {
                ("tuples", r.get(5), r.get(4))
            } else if phase.starts_with("waiting for") {
                ("lockers", r.get(7), r.get(6))
            } else {
                ("blocks", r.get(3), r.get(2))
            };
            // Blocks, tuples and lockers are not rows copied: the figures
            // go in the percent and the detail only.
            // Per phase: the totals change meaning between phases (engines.md §6.1).
            p.percent = (total > 0).then(|| (done as f64 * 100.0 / total as f64).min(100.0));
            p.detail = Some(format!(
                "{}: {command}: {phase} ({unit} {done} of {total})",
                self.where_
            ));
        } else {
            let wait: Option<String> = self
                .mon
                .query_opt(
                    "SELECT wait_event_type || ':' || wait_event FROM pg_stat_activity WHERE pid = $1 AND wait_event IS NOT NULL",
                    &[&self.pid],
                )
                .await
                .ok()
                .flatten()
                .and_then(|r| r.get(0));
            p.detail = Some(format!(
                "{}: running {:.0}s, no progress available{}",
                self.where_,
                started.elapsed().as_secs_f64(),
                wait.map(|w| format!(" (waiting on {w})"))
                    .unwrap_or_default()
            ));
        }
        p
    }

    /// Runs one statement, sampling progress and answering controls; an
    /// abort cancels it with `pg_cancel_backend`. Returns rows affected.
    async fn watch(&mut self, sql: &str, sample: bool) -> Result<u64, tokio_postgres::Error> {
        let started = Instant::now();
        let mut tick = tokio::time::interval(self.opts.progress_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let client = &self.client;
        let fut = async move {
            let msgs = client.simple_query(sql).await?;
            Ok::<u64, tokio_postgres::Error>(
                msgs.iter()
                    .map(|m| match m {
                        tokio_postgres::SimpleQueryMessage::CommandComplete(n) => *n,
                        _ => 0,
                    })
                    .sum(),
            )
        };
        tokio::pin!(fut);
        let mut cancelled = false;
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
                    if self.ctl.abort && !cancelled {
                        cancelled = true;
                        let _ = self.mon.execute("SELECT pg_cancel_backend($1)", &[&self.pid]).await;
                    }
                }
                _ = tick.tick(), if sample => {
                    let p = self.sample(started).await;
                    let status = ExecStatus { phase: ExecPhase::Copying, progress: Some(p), at: Utc::now() };
                    lock(&self.shared).status = status.clone();
                    let _ = self.updates.try_send(ExecUpdate::Status(status));
                }
            }
        }
    }

    /// Drops INVALID indexes this run created (before a retry).
    async fn drop_new_invalid(&self) -> Result<(), tokio_postgres::Error> {
        let now = invalid_indexes(&self.mon).await?;
        for name in now.difference(&self.invalid_before) {
            self.mon
                .batch_execute(&format!(
                    "DROP INDEX CONCURRENTLY IF EXISTS {}",
                    quote_qualified(name)
                ))
                .await?;
        }
        Ok(())
    }

    /// Journals the statement session, so that a resume after a crash
    /// waits for whatever it still runs on the server.
    async fn journal_session(&self) -> Result<(), String> {
        let id = session_id(&self.client).await.map_err(|e| pg_error(&e))?;
        self.journal
            .append(&Entry::Session { id })
            .map_err(|e| e.to_string())
    }

    /// Opens new sessions after the old ones were lost, waiting (shown as
    /// throttled, with the reason) while the primary stays away; abortable.
    /// `Err` says why it gave up.
    async fn reconnect(&mut self, why: &str) -> Result<(), String> {
        let n = self.opts.reconnect_retries;
        let mut backoff = self.opts.reconnect_backoff;
        let mut last = why.to_string();
        for attempt in 1..=n {
            let reason = format!(
                "connection to the primary lost ({}); reconnecting, attempt {attempt}/{n}",
                crate::sql::redact::redact_dsn(&last)
            );
            self.publish(
                ExecPhase::Throttled { reason },
                Some(detail_only(self.where_.clone(), self.ctl.max_lag_seconds)),
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
            let opened = async {
                let client = connect(&self.dsn).await?;
                let mon = connect(&self.dsn).await?;
                client
                    .batch_execute(&session_sql(&self.opts))
                    .await
                    .map_err(|e| pg_error(&e))?;
                let pid: i32 = client
                    .query_one("SELECT pg_backend_pid()", &[])
                    .await
                    .map_err(|e| pg_error(&e))?
                    .get(0);
                Ok::<_, String>((client, mon, pid))
            }
            .await;
            match opened {
                Ok((client, mon, pid)) => {
                    self.client = client;
                    self.mon = mon;
                    self.pid = pid;
                    match self.journal_session().await {
                        Ok(()) => return Ok(()),
                        Err(e) => last = e,
                    }
                }
                Err(e) => last = e,
            }
        }
        Err(format!(
            "the primary stayed unreachable after {n} reconnect attempts (last: {})",
            crate::sql::redact::redact_dsn(&last)
        ))
    }

    /// Whether the journaled transaction `xid` committed; an old session
    /// still finishing it is waited for (bounded).
    async fn xid_committed(&self, xid: &str) -> Result<bool, String> {
        for _ in 0..50 {
            let status: Option<String> = self
                .mon
                .query_one("SELECT txid_status($1::text::bigint)::text", &[&xid])
                .await
                .map_err(|e| pg_error(&e))?
                .get(0);
            match status.as_deref() {
                Some("committed") => return Ok(true),
                Some("in progress") => tokio::time::sleep(Duration::from_millis(200)).await,
                _ => return Ok(false),
            }
        }
        Err(format!(
            "transaction {xid} of the lost session is still in progress"
        ))
    }

    /// The transaction id journaled for this step's unit, or for its chunk
    /// `lo..=hi`, if one was written (COMMIT is only sent after).
    fn journaled_xid(&self, chunk: Option<(i64, i64)>) -> Option<String> {
        let step = self.step_index;
        self.journal
            .read()
            .ok()?
            .into_iter()
            .rev()
            .find_map(|e| match (e, chunk) {
                (Entry::Xid { step: s, xid }, None) if s == step => Some(xid),
                (
                    Entry::Chunk {
                        step: s,
                        lo,
                        hi,
                        xid,
                    },
                    Some((l, h)),
                ) if s == step && lo == l && hi == h => Some(xid),
                _ => None,
            })
    }

    /// After a reconnect: did the lost unit apply? A transaction by its
    /// journaled id; a lone statement (CONCURRENTLY) by the catalog, whose
    /// INVALID leftover is dropped before it is run again.
    async fn unit_applied(
        &mut self,
        statements: &[crate::sql::split::RawStatement],
        in_txn: bool,
    ) -> Result<bool, String> {
        if in_txn {
            return match self.journaled_xid(None) {
                Some(xid) => self.xid_committed(&xid).await,
                None => Ok(false),
            };
        }
        let engine = crate::model::Engine::Postgres;
        let Some(st) = statements.first() else {
            return Ok(true);
        };
        match pg_seen(&self.mon, &st.sql, engine).await? {
            Seen::Applied => Ok(true),
            Seen::NotApplied => {
                self.drop_new_invalid().await.map_err(|e| {
                    format!(
                        "dropping the INVALID index before a retry: {}",
                        pg_error(&e)
                    )
                })?;
                Ok(false)
            }
            Seen::Unknown => Err(format!(
                "the connection was lost while line {} ran, and the catalog cannot tell whether it applied; check by hand",
                st.line
            )),
        }
    }

    async fn run_unit(
        &mut self,
        statements: &[crate::sql::split::RawStatement],
        in_txn: bool,
        wrap: bool,
        record: Option<usize>,
    ) -> StepEnd {
        let mut backoff = self.opts.retry_backoff;
        let mut attempt = 0u32;
        let mut losses = 0u32;
        loop {
            let r = self.try_unit(statements, in_txn, wrap, record).await;
            match r {
                Ok(()) => return StepEnd::Done,
                Err(e) => {
                    if in_txn {
                        let _ = self.client.batch_execute("ROLLBACK").await;
                    }
                    if self.ctl.abort {
                        return StepEnd::Aborted;
                    }
                    if is_connection_loss(&e) {
                        losses += 1;
                        let lost = pg_error(&e);
                        if losses > self.opts.reconnect_retries {
                            return StepEnd::Failed(format!(
                                "{}: {lost} (connection lost {losses} times; retry budget spent)",
                                self.where_
                            ));
                        }
                        if let Err(why) = self.reconnect(&lost).await {
                            if self.ctl.abort {
                                return StepEnd::Aborted;
                            }
                            return StepEnd::Failed(format!("{}: {lost}; {why}", self.where_));
                        }
                        match self.unit_applied(statements, in_txn).await {
                            Ok(true) => return StepEnd::Done,
                            Ok(false) => continue,
                            Err(why) => {
                                return StepEnd::Failed(format!("{}: {lost}; {why}", self.where_));
                            }
                        }
                    }
                    if !is_lock_timeout(&e) || attempt >= self.opts.lock_retries {
                        let tries = if attempt > 0 {
                            format!(" after {} retries", attempt)
                        } else {
                            String::new()
                        };
                        // Name the statement that failed, at its own line.
                        return StepEnd::Failed(format!(
                            "{}: {}{tries}",
                            self.failed_at.as_deref().unwrap_or(&self.where_),
                            pg_error(&e)
                        ));
                    }
                    attempt += 1;
                    // A concurrent build that timed out left an INVALID index: drop it first.
                    if let Err(e) = self.drop_new_invalid().await {
                        return StepEnd::Failed(format!(
                            "{}: dropping the INVALID index before a retry: {}",
                            self.where_,
                            pg_error(&e)
                        ));
                    }
                    let reason = format!(
                        "lock timeout; retry {attempt}/{} in {:.1}s",
                        self.opts.lock_retries,
                        backoff.as_secs_f64()
                    );
                    self.publish(
                        ExecPhase::Throttled { reason },
                        Some(detail_only(self.where_.clone(), self.ctl.max_lag_seconds)),
                    )
                    .await;
                    let until = tokio::time::Instant::now() + backoff;
                    while tokio::time::Instant::now() < until {
                        tokio::select! {
                            c = self.rx.recv() => if let Some(c) = c { self.ctl.apply(c) },
                            _ = tokio::time::sleep_until(until) => {}
                        }
                        if self.ctl.abort {
                            return StepEnd::Aborted;
                        }
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    async fn try_unit(
        &mut self,
        statements: &[crate::sql::split::RawStatement],
        in_txn: bool,
        wrap: bool,
        record: Option<usize>,
    ) -> Result<(), tokio_postgres::Error> {
        if in_txn && wrap {
            self.client.batch_execute("BEGIN").await?;
        }
        self.failed_at = None;
        for (k, s) in statements.iter().enumerate() {
            self.failed_at = Some(statement_at(&self.where_, s));
            // The file's own COMMIT ends the unit: the history row goes in first.
            let last = k + 1 == statements.len();
            if let Some(mi) = record
                && !wrap
                && last
            {
                self.record(mi).await?;
            }
            if in_txn && !wrap && last {
                self.journal_xid().await?;
            }
            self.watch(&s.sql, true).await?;
            if self.ctl.abort {
                // The statement finished before the cancel landed; stop here.
                if in_txn {
                    let _ = self.client.batch_execute("ROLLBACK").await;
                }
                return Ok(());
            }
        }
        if in_txn && wrap {
            if let Some(mi) = record {
                self.record(mi).await?;
            }
            self.journal_xid().await?;
            self.client.batch_execute("COMMIT").await?;
        }
        Ok(())
    }

    /// Writes the open transaction's id to the journal before COMMIT is sent,
    /// so a resume can ask `txid_status` whether it committed. A journal that
    /// cannot be written fails the unit (rolled back) rather than commit blind.
    async fn journal_xid(&self) -> Result<(), tokio_postgres::Error> {
        let step = self.step_index;
        self.journal_in_txn(|xid| Entry::Xid { step, xid }).await
    }

    /// Journals `entry(xid)` for the open transaction before its COMMIT.
    async fn journal_in_txn(
        &self,
        entry: impl FnOnce(String) -> Entry,
    ) -> Result<(), tokio_postgres::Error> {
        let xid: String = self
            .client
            .query_one("SELECT txid_current()::text", &[])
            .await?
            .get(0);
        if let Err(e) = self.journal.append(&entry(xid)) {
            // Reuse the statement error path: cancel this unit with a clear reason.
            self.client
                .batch_execute(&format!(
                    "DO $$BEGIN RAISE EXCEPTION 'cutover: writing the run journal failed: {}'; END$$",
                    e.to_string().replace(['\'', '$'], "")
                ))
                .await?;
        }
        Ok(())
    }

    /// Inserts migration `mi`'s history row on the run's connection (inside
    /// the open transaction, when there is one).
    async fn record(&self, mi: usize) -> Result<(), tokio_postgres::Error> {
        let ms = i32::try_from(self.migration_started.elapsed().as_millis()).unwrap_or(i32::MAX);
        super::history::record_pg(&self.client, &self.migrations[mi], ms).await
    }

    /// One backfill chunk as a transaction: the UPDATE bounded by the
    /// target chunk time, then the chunk's range and transaction id
    /// journaled, then COMMIT (a resume asks `txid_status`).
    async fn chunk(
        &mut self,
        update: &str,
        target_ms: u64,
        lo: i64,
        hi: i64,
    ) -> Result<u64, tokio_postgres::Error> {
        // SET LOCAL ends with the transaction: the session's timeout is back after it.
        let bounded = format!("BEGIN; SET LOCAL statement_timeout = '{target_ms}ms'; {update}");
        let r = match self.watch(&bounded, false).await {
            Ok(n) => {
                let step = self.step_index;
                match self
                    .journal_in_txn(|xid| Entry::Chunk { step, lo, hi, xid })
                    .await
                {
                    Ok(()) => self.client.batch_execute("COMMIT").await.map(|()| n),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        if r.is_err() {
            let _ = self.client.batch_execute("ROLLBACK").await;
        }
        r
    }

    async fn run_backfill(
        &mut self,
        b: &BackfillDirective,
        initial_chunk: Option<u32>,
        resume: Option<&BackfillResume>,
    ) -> StepEnd {
        let range = self
            .client
            .query_one(
                &format!(
                    "SELECT min({k})::int8, max({k})::int8 FROM {t}",
                    k = b.key,
                    t = b.table
                ),
                &[],
            )
            .await;
        let (min, max): (Option<i64>, Option<i64>) = match range {
            Ok(r) => (r.get(0), r.get(1)),
            Err(e) => {
                return StepEnd::Failed(format!(
                    "{}: reading the key range of {}.{} (an integer key is required): {}",
                    self.where_,
                    b.table,
                    b.key,
                    pg_error(&e)
                ));
            }
        };
        let (Some(min), Some(max)) = (min, max) else {
            return StepEnd::Done;
        };
        let total = match self
            .client
            .query_one(
                &format!(
                    "SELECT count(*) FROM {}{}",
                    b.table,
                    b.predicate
                        .as_ref()
                        .map(|p| format!(" WHERE {p}"))
                        .unwrap_or_default()
                ),
                &[],
            )
            .await
        {
            Ok(r) => r.get::<_, i64>(0).max(0) as u64,
            Err(e) => return StepEnd::Failed(format!("{}: {}", self.where_, pg_error(&e))),
        };
        // Resumed: the keys before `next` committed before the interruption.
        let (first, start) = match resume {
            Some(r) => (r.min.min(min), r.next.max(min)),
            None => (min, min),
        };
        if let Err(e) = self.journal.append(&Entry::Backfill {
            step: self.step_index,
            min: first,
            max,
            token: None,
        }) {
            return StepEnd::Failed(format!(
                "{}: cannot write the run journal (needed to resume the backfill safely): {e}",
                self.where_
            ));
        }
        let before =
            (start > first).then(|| format!("keys {first}..{} before the interruption", start - 1));
        let min = first;
        let keys = (max - min + 1) as f64;
        let mut size = u64::from(self.ctl.chunk_rows.or(initial_chunk).unwrap_or(1000));
        let mut lo = start;
        let mut rows_done = 0u64;
        let mut busy = 0.0f64;
        let set_by_human = self.ctl.chunk_rows;
        let target_ms = ((b.batch_seconds * 1000.0).ceil() as u64).max(1);
        let mut over_target = 0;
        let mut losses = 0u32;
        while lo <= max {
            if !self.between(true).await {
                self.backfill_left = Some(backfill_leftover(
                    &b.table,
                    (min, start, lo, max),
                    rows_done,
                ));
                return StepEnd::Aborted;
            }
            if self.ctl.chunk_rows != set_by_human
                && let Some(c) = self.ctl.chunk_rows
            {
                size = u64::from(c);
            }
            let hi = lo.saturating_add(size as i64 - 1).min(max);
            let sql = format!(
                "UPDATE {} SET {} WHERE {k} BETWEEN {lo} AND {hi}{}",
                b.table,
                b.set,
                b.predicate
                    .as_ref()
                    .map(|p| format!(" AND ({p})"))
                    .unwrap_or_default(),
                k = b.key
            );
            // The chunk's row locks last as long as its statement: a
            // statement_timeout at the target time makes that a bound (a
            // cancelled UPDATE rolls back at once), and the chunk is retried
            // smaller.
            let t0 = Instant::now();
            let mut attempt = 0;
            let n = loop {
                match self.chunk(&sql, target_ms, lo, hi).await {
                    Ok(n) => break Some(n),
                    Err(e) if is_connection_loss(&e) && !self.ctl.abort => {
                        losses += 1;
                        let lost = pg_error(&e);
                        let settled = if losses > self.opts.reconnect_retries {
                            Err(format!(
                                "connection lost {losses} times; retry budget spent"
                            ))
                        } else {
                            match self.reconnect(&lost).await {
                                // Committed before the loss (its id was
                                // journaled and COMMIT sent): do not run it again.
                                Ok(()) => match self.journaled_xid(Some((lo, hi))) {
                                    Some(xid) => self.xid_committed(&xid).await,
                                    None => Ok(false),
                                },
                                Err(why) => Err(why),
                            }
                        };
                        match settled {
                            Ok(true) => break Some(0),
                            Ok(false) => continue,
                            Err(why) => {
                                self.backfill_left = Some(backfill_leftover(
                                    &b.table,
                                    (min, start, lo, max),
                                    rows_done,
                                ));
                                if self.ctl.abort {
                                    return StepEnd::Aborted;
                                }
                                return StepEnd::Failed(format!(
                                    "{}: chunk {lo}..{hi}: {lost}; {why}",
                                    self.where_
                                ));
                            }
                        }
                    }
                    Err(e)
                        if is_lock_timeout(&e)
                            && attempt < self.opts.lock_retries
                            && !self.ctl.abort =>
                    {
                        attempt += 1;
                        tokio::time::sleep(self.opts.retry_backoff * attempt).await;
                    }
                    Err(e)
                        if e.code() == Some(&SqlState::QUERY_CANCELED)
                            && !self.ctl.abort
                            && over_target < MAX_OVER_TARGET =>
                    {
                        over_target += 1;
                        break None;
                    }
                    Err(e) => {
                        self.backfill_left = Some(backfill_leftover(
                            &b.table,
                            (min, start, lo, max),
                            rows_done,
                        ));
                        if self.ctl.abort {
                            return StepEnd::Aborted;
                        }
                        if e.code() == Some(&SqlState::QUERY_CANCELED) {
                            return StepEnd::Failed(format!(
                                "{}: chunk {lo}..{hi} ({} rows) exceeded the target chunk time of {target_ms} ms {MAX_OVER_TARGET} times in a row, shrinking each time: something (a lock, I/O) slows every chunk; find it, or declare a longer batch=",
                                self.where_,
                                hi - lo + 1
                            ));
                        }
                        return StepEnd::Failed(format!(
                            "{}: chunk {lo}..{hi}: {}",
                            self.where_,
                            pg_error(&e)
                        ));
                    }
                }
            };
            let took = t0.elapsed().as_secs_f64();
            busy += took;
            let Some(n) = n else {
                size = (size / 4).max(100);
                continue;
            };
            over_target = 0;
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
        self.notes.push(match &before {
            Some(before) => format!(
                "backfill {}: {before}, keys {start}..{max} after it ({rows_done} rows)",
                b.table
            ),
            None => format!("backfill {}: keys {min}..{max} ({rows_done} rows)", b.table),
        });
        StepEnd::Done
    }

    async fn run(
        mut self,
        steps: Vec<Step>,
        initial_chunk: Option<u32>,
        from: ResumePoint,
    ) -> Outcome {
        let n = steps.len();
        let mut done = from.step;
        let mut end = StepEnd::Done;
        let mut current_migration = usize::MAX;
        for w in std::mem::take(&mut self.warnings) {
            self.publish(
                ExecPhase::Starting,
                Some(detail_only(
                    format!("warning before start: {w}"),
                    self.ctl.max_lag_seconds,
                )),
            )
            .await;
        }
        // Every replica under the limit before the first statement: wait,
        // throttled and abortable, while any is over.
        if !self.between(true).await {
            return Outcome {
                kind: OutcomeKind::Aborted,
                leftovers: Vec::new(),
            };
        }
        if let Err(e) = self.journal_session().await {
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
        if from.step > 0 {
            self.publish(
                ExecPhase::Starting,
                Some(detail_only(
                    from.summary(&steps, &self.migrations),
                    self.ctl.max_lag_seconds,
                )),
            )
            .await;
        }
        for (i, step) in steps.iter().enumerate().skip(from.step) {
            self.step_index = i;
            if step.migration() != current_migration {
                current_migration = step.migration();
                self.migration_started = Instant::now();
            }
            self.where_ = format!("step {}/{n} {}", i + 1, step.label(&self.migrations));
            if !self.between(false).await {
                end = StepEnd::Aborted;
                break;
            }
            self.publish(
                ExecPhase::Copying,
                Some(detail_only(self.where_.clone(), self.ctl.max_lag_seconds)),
            )
            .await;
            end = match step {
                Step::Unit {
                    statements,
                    in_txn,
                    wrap,
                    record,
                    migration,
                } => {
                    self.run_unit(statements, *in_txn, *wrap, record.then_some(*migration))
                        .await
                }
                Step::Backfill { directive, .. } => {
                    let resume = from.backfill.as_ref().filter(|_| i == from.step);
                    self.run_backfill(directive, initial_chunk, resume).await
                }
                Step::Record { migration } => match self.record(*migration).await {
                    Ok(()) => StepEnd::Done,
                    Err(e) => StepEnd::Failed(format!(
                        "{}: recording in flyway_schema_history: {}",
                        self.where_,
                        pg_error(&e)
                    )),
                },
            };
            if !matches!(end, StepEnd::Done) {
                break;
            }
            done += 1;
            if let Err(e) = self.journal.append(&Entry::Done {
                step: i,
                label: step.label(&self.migrations),
                statements: None,
            }) {
                end = StepEnd::Failed(format!(
                    "{}: applied, but writing the run journal failed ({e}): a resume could not tell",
                    self.where_
                ));
                break;
            }
            if self.ctl.abort {
                end = StepEnd::Aborted;
                break;
            }
        }
        let mut leftovers = Vec::new();
        // Every ending reports INVALID indexes left by a broken build; a
        // lost monitor session is replaced to look.
        let invalid = match invalid_indexes(&self.mon).await {
            Ok(v) => Ok(v),
            Err(_) => match connect(&self.dsn).await {
                Ok(c) => invalid_indexes(&c).await.map_err(|e| pg_error(&e)),
                Err(e) => Err(e),
            },
        };
        match invalid {
            Ok(now) => leftovers.extend(
                now.difference(&self.invalid_before)
                    .map(|n| invalid_leftover(n)),
            ),
            Err(e) => leftovers.push(Leftover {
                kind: "index".into(),
                name: format!(
                    "unknown: INVALID indexes could not be checked after the run ({e})"
                ),
                cleanup: Some(
                    "SELECT indexrelid::regclass FROM pg_index WHERE NOT indisvalid; -- then DROP INDEX CONCURRENTLY each one this run created"
                        .into(),
                ),
            }),
        }
        leftovers.extend(self.backfill_left.take());
        leftovers.extend(statements_leftover(&steps, done, &self.migrations));
        self.publish_summary(done, n, &from, &steps).await;
        let kind = match end {
            StepEnd::Done => OutcomeKind::Succeeded,
            StepEnd::Aborted => OutcomeKind::Aborted,
            StepEnd::Failed(error) => OutcomeKind::Failed { error },
        };
        Outcome { kind, leftovers }
    }
}

async fn prepare(
    dsn: &str,
    job: &ExecJob,
    opts: &PgExecOptions,
) -> Result<(Client, Client, i32, BTreeSet<String>), String> {
    let client = connect(dsn).await?;
    let mon = connect(dsn).await?;
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .map_err(|e| pg_error(&e))?
        .get(0);
    if let Some(refusal) = before_start(&mon, &job.spec.tables, opts.old_transaction)
        .await
        .map_err(|e| pg_error(&e))?
    {
        return Err(format!("refused before start: {refusal}"));
    }
    client
        .batch_execute(&session_sql(opts))
        .await
        .map_err(|e| pg_error(&e))?;
    let before = invalid_indexes(&mon).await.map_err(|e| pg_error(&e))?;
    Ok((client, mon, pid, before))
}

/// What a start hands to its task: it prepares (waiting for the
/// interrupted run's statements still on the server), finds where to resume,
/// checks, then runs.
struct Launch {
    dsn: String,
    migrations: Arc<Vec<Migration>>,
    opts: PgExecOptions,
    // A tokio mutex keeps the launch `Sync` (pollers are only `Send`).
    lag: Option<tokio::sync::Mutex<Box<dyn LagPoller>>>,
    shared: Arc<Mutex<Shared>>,
    updates: mpsc::Sender<ExecUpdate>,
    rx: mpsc::UnboundedReceiver<Control>,
    ctl: Ctl,
}

/// Keeps a run's ending where `status`/`outcome`/`leftovers` read it.
fn finish(shared: &Arc<Mutex<Shared>>, o: &Outcome) {
    let mut s = lock(shared);
    s.leftovers = o.leftovers.clone();
    s.outcome = Some(o.clone());
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
}

impl Launch {
    async fn end(&self, kind: OutcomeKind, leftovers: Vec<Leftover>) {
        let o = Outcome { kind, leftovers };
        finish(&self.shared, &o);
        let _ = self.updates.send(ExecUpdate::Finished(o)).await;
    }

    /// Waits while a session of the interrupted run still runs a statement
    /// (the server finishes an index build for a dead client); when aborted
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
        let c = connect(&self.dsn).await?;
        loop {
            let found = orphans(&c, &sessions).await?;
            let Some(first) = found.first() else {
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

    async fn run(mut self, job: ExecJob, steps: Vec<Step>) {
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
                            error: crate::sql::redact::redact_dsn(&format!(
                                "refused before start: {e}"
                            )),
                        },
                        Vec::new(),
                    )
                    .await;
            }
        }
        let prepared = match super::history::liquibase_refusal(&self.migrations) {
            Some(r) => Err(format!("refused before start: {r}")),
            None => prepare(&self.dsn, &job, &self.opts).await,
        };
        let prepared = match prepared {
            Ok(p) => resume_point(&p.1, &steps, &self.migrations, &job.run_dir)
                .await
                .map(|r| (p, r))
                .map_err(|e| format!("refused before start: {e}")),
            Err(e) => Err(e),
        };
        let mut warnings = Vec::new();
        let prepared = match prepared {
            Ok(p) => {
                match preflight(
                    &p.0.1,
                    &self.dsn,
                    &self.migrations[..],
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
        let ((client, mon, pid, before), from) = match prepared {
            Ok(x) => x,
            Err(error) => {
                return self
                    .end(
                        OutcomeKind::Failed {
                            error: crate::sql::redact::redact_dsn(&error),
                        },
                        Vec::new(),
                    )
                    .await;
            }
        };
        let shared = self.shared.clone();
        let updates = self.updates.clone();
        let task = Task {
            dsn: self.dsn,
            client,
            mon,
            pid,
            migrations: self.migrations,
            opts: self.opts,
            lag: self.lag,
            ctl: self.ctl,
            rx: self.rx,
            updates: updates.clone(),
            shared: shared.clone(),
            where_: String::new(),
            failed_at: None,
            invalid_before: before,
            backfill_left: None,
            migration_started: Instant::now(),
            journal: Journal::new(&job.run_dir),
            step_index: 0,
            warnings,
            notes: Vec::new(),
            rows_updated: 0,
        };
        let o = task.run(steps, job.chunk_size, from).await;
        finish(&shared, &o);
        let _ = updates.send(ExecUpdate::Finished(o)).await;
    }
}

/// The statements sessions `sessions` (journaled `pid@backend_start`) still
/// run on the server; idle sessions are left out.
async fn orphans(c: &Client, sessions: &[String]) -> Result<Vec<Orphan>, String> {
    if sessions.is_empty() {
        return Ok(Vec::new());
    }
    let rows = c
        .query(
            "SELECT pid, coalesce(query, '') FROM pg_stat_activity
              WHERE pid::text || '@' || extract(epoch FROM backend_start)::text = ANY($1::text[])
                AND pid <> pg_backend_pid() AND state IS DISTINCT FROM 'idle'",
            &[&sessions],
        )
        .await
        .map_err(|e| pg_error(&e))?;
    Ok(rows
        .iter()
        .map(|r| {
            let pid: i32 = r.get(0);
            Orphan {
                session: format!("pid {pid}"),
                query: r.get(1),
                cancel: format!("SELECT pg_cancel_backend({pid});"),
            }
        })
        .collect())
}

/// This session's identity for [`Entry::Session`]: `pid@backend_start`.
async fn session_id(c: &Client) -> Result<String, tokio_postgres::Error> {
    Ok(c.query_one(
        "SELECT pid::text || '@' || extract(epoch FROM backend_start)::text FROM pg_stat_activity WHERE pid = pg_backend_pid()",
        &[],
    )
    .await?
    .get(0))
}

impl Executor for NativePg {
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
            let steps = self.steps();
            let max_lag = job
                .max_lag_millis
                .map(|m| m as f64 / 1000.0)
                .unwrap_or(self.opts.max_lag.as_secs_f64());
            let launch = Launch {
                dsn: self.dsn.clone(),
                migrations: self.migrations.clone(),
                opts: self.opts.clone(),
                lag: self.lag.take().map(tokio::sync::Mutex::new),
                shared: self.shared.clone(),
                updates,
                rx,
                ctl: Ctl {
                    max_lag_seconds: max_lag,
                    ..Ctl::default()
                },
            };
            // Everything that may wait (an interrupted run's statement still
            // running on the server) happens in the task: the run core stays
            // free to take commands, abort included.
            tokio::spawn(launch.run(job, steps));
            Ok(())
        })
    }

    fn control(&mut self, control: Control) -> BoxFuture<'_, Result<(), ExecError>> {
        Box::pin(async move {
            if matches!(control, Control::CutOver { .. }) {
                return Err(ExecError::Unsupported {
                    executor: "native",
                    what: "postpone or trigger a cut-over (statements apply in place; there is no copy to cut over to)".into(),
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
            // The statements ran on the dead process's connection, which the
            // server has closed (rolling back an open transaction). Report
            // what completed and where a new start resumes; change nothing.
            let c = connect(&self.dsn)
                .await
                .map_err(|e| ExecError::Refused(format!("cannot inspect the target: {e}")))?;
            let steps = self.steps();
            // A statement the dead process left running (an index build)
            // decides where the run resumes only once it has ended.
            let sessions =
                super::resume::sessions(&Journal::new(&job.run_dir).read().unwrap_or_default());
            let running = orphans(&c, &sessions).await.map_err(ExecError::Refused)?;
            if let Some(first) = running.first() {
                let status = ExecStatus {
                    phase: ExecPhase::NotRunning,
                    progress: Some(detail_only(first.note(), 0.0)),
                    at: Utc::now(),
                };
                lock(&self.shared).status = status.clone();
                return Ok(status);
            }
            let from = resume_point(&c, &steps, &self.migrations, &job.run_dir)
                .await
                .map_err(ExecError::Refused)?;
            let mut detail = from.summary(&steps, &self.migrations);
            if let Some(r) =
                before_start(&c, &job.spec.tables, Duration::from_secs(u32::MAX as u64))
                    .await
                    .map_err(|e| ExecError::Refused(pg_error(&e)))?
            {
                detail.push_str(&format!("; {r}"));
            }
            let status = ExecStatus {
                phase: ExecPhase::NotRunning,
                progress: Some(detail_only(detail, 0.0)),
                at: Utc::now(),
            };
            lock(&self.shared).status = status.clone();
            Ok(status)
        })
    }
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
