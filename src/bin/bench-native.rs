//! Benchmark (not a test) of the native executors and lag pollers against
//! the throwaway topology (`CUTOVER_TEST_*` URLs; `scripts/bench-native`
//! starts and stops it). Prints:
//!
//! - poll cost per replica: statements the server runs per poll (and so per
//!   second at a 1 s interval) and client CPU per poll;
//! - lag detection latency: from the first moment the server itself reports
//!   lag over the threshold to the first poller sample over it, in poll
//!   intervals (target: within 2);
//! - batched backfill throughput as a fraction of one unbatched `UPDATE` of
//!   the same 1,000,000-row table (target: at least 50%), and the longest
//!   chunk's row-lock time against the declared target chunk time (each
//!   chunk is one autocommit `UPDATE`, so its row locks last exactly as long
//!   as the statement).
//!
//! Environment: BENCH_ROWS (default 1000000), BENCH_POLLS (default 200),
//! BENCH_INTERVAL_MS (poll interval for detection, default 500),
//! BENCH_CHUNK_MS (target chunk time, default 500).

use anyhow::{Context, Result, anyhow};
use chrono::{DateTime, Utc};
use cutover::exec::native_mysql::{MyExecOptions, NativeMysql};
use cutover::exec::native_pg::{NativePg, PgExecOptions};
use cutover::exec::{ExecJob, ExecPhase, ExecUpdate, Executor, OutcomeKind};
use cutover::lag::mysql::{MyReplica, MysqlLagPoller};
use cutover::lag::pg::{PgLagPoller, PgReplica};
use cutover::lag::{LagPoller, LagSample, PollOptions};
use cutover::migrate::{LoadOptions, load_paths};
use cutover::model::{Engine, Risk};
use cutover::policy::Environment;
use cutover::policy::approvals::Binding;
use cutover::run::RunSpec;
use futures_util::future::BoxFuture;
use mysql_async::prelude::*;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn env(var: &str) -> Result<String> {
    std::env::var(var).with_context(|| format!("{var} is not set (run scripts/bench-native)"))
}

fn env_u64(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// User + system CPU of this process, seconds (`/proc/self/stat`, 100 Hz ticks).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start at `) `.
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    (tick(11) + tick(12)) / 100.0
}

async fn pg(dsn: &str) -> Result<tokio_postgres::Client> {
    let (c, conn) = tokio_postgres::connect(dsn, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(c)
}

async fn my(dsn: &str) -> Result<mysql_async::Conn> {
    Ok(mysql_async::Conn::new(mysql_async::Opts::from_url(dsn)?).await?)
}

fn pg_poller(primary: &str, replica: &str, interval: Duration) -> PgLagPoller {
    PgLagPoller::new(
        primary,
        vec![PgReplica {
            name: "pg_replica".into(),
            dsn: replica.into(),
        }],
        PollOptions {
            interval,
            ..PollOptions::default()
        },
    )
}

fn my_poller(replica: &str, interval: Duration) -> Result<MysqlLagPoller> {
    Ok(MysqlLagPoller::new(
        vec![MyReplica {
            name: "r1".into(),
            dsn: replica.into(),
        }],
        PollOptions {
            interval,
            ..PollOptions::default()
        },
        None,
    )?)
}

/// Statements committed in the current database (flushed by exiting backends).
async fn pg_xacts(dsn: &str) -> Result<i64> {
    let c = pg(dsn).await?;
    Ok(c.query_one(
        "SELECT (xact_commit + xact_rollback)::int8 FROM pg_stat_database WHERE datname = current_database()",
        &[],
    )
    .await?
    .get(0))
}

async fn my_questions(c: &mut mysql_async::Conn) -> Result<u64> {
    let row: Option<(String, String)> =
        c.query_first("SHOW GLOBAL STATUS LIKE 'Questions'").await?;
    row.and_then(|(_, v)| v.parse().ok())
        .ok_or_else(|| anyhow!("no Questions status"))
}

async fn poll_cost(primary_pg: &str, replica_pg: &str, replica_my: &str, n: u64) -> Result<()> {
    println!("== poll cost per replica ({n} polls each)");
    // PostgreSQL: the poller reads the primary and the replica; backends
    // flush their counters when they exit, so the poller is dropped first.
    let (p0, r0) = (pg_xacts(primary_pg).await?, pg_xacts(replica_pg).await?);
    let mut p = pg_poller(primary_pg, replica_pg, Duration::from_secs(1));
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    for _ in 0..n {
        p.poll().await;
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    drop(p);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (p1, r1) = (pg_xacts(primary_pg).await?, pg_xacts(replica_pg).await?);
    // Each reading adds its own statement on each server.
    let per_poll_p = (p1 - p0 - 1) as f64 / n as f64;
    let per_poll_r = (r1 - r0 - 1) as f64 / n as f64;
    println!(
        "postgres: {per_poll_p:.2} statements/poll on the primary + {per_poll_r:.2} on the replica = {:.2} queries/s per replica at a 1 s interval; client CPU {:.0} µs/poll; {:.2} ms/poll wall",
        per_poll_p + per_poll_r,
        cpu * 1e6 / n as f64,
        wall * 1e3 / n as f64
    );
    // MariaDB: the poller reads the replica only.
    let mut watch = my(replica_my).await?;
    let q0 = my_questions(&mut watch).await?;
    let mut p = my_poller(replica_my, Duration::from_secs(1))?;
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    for _ in 0..n {
        p.poll().await;
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let q1 = my_questions(&mut watch).await?;
    let per_poll = (q1 - q0 - 1) as f64 / n as f64;
    println!(
        "mariadb: {per_poll:.2} statements/poll on the replica = {per_poll:.2} queries/s per replica at a 1 s interval; client CPU {:.0} µs/poll; {:.2} ms/poll wall",
        cpu * 1e6 / n as f64,
        wall * 1e3 / n as f64
    );
    Ok(())
}

/// Polls every `interval` while `server_lag` is read 10 times per interval;
/// returns the detection latency in intervals (first poll at or after the
/// moment the server reported lag over `threshold` that is over it).
async fn detect(
    poller: &mut dyn LagPoller,
    interval: Duration,
    threshold: f64,
    mut server_lag: impl AsyncFnMut() -> Result<Option<f64>>,
) -> Result<(f64, u32)> {
    let mut server_over_at: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut next_poll = Instant::now();
    loop {
        if Instant::now() > deadline {
            return Err(anyhow!("no detection within 60 s"));
        }
        if server_over_at.is_none() && server_lag().await?.is_some_and(|l| l > threshold) {
            server_over_at = Some(Instant::now());
        }
        if Instant::now() >= next_poll {
            let polled_at = Instant::now();
            let samples: Vec<LagSample> = poller.poll().await;
            next_poll = polled_at + interval;
            if let Some(t0) = server_over_at
                && polled_at >= t0
            {
                let over = samples
                    .iter()
                    .any(|s| s.seconds.is_some_and(|v| v > threshold));
                let polls_after =
                    ((polled_at - t0).as_secs_f64() / interval.as_secs_f64()).floor() as u32 + 1;
                if over {
                    return Ok(((polled_at - t0).as_secs_f64(), polls_after));
                }
            }
        }
        tokio::time::sleep(interval / 10).await;
    }
}

async fn detection(
    primary_pg: &str,
    replica_pg: &str,
    primary_my: &str,
    replica_my: &str,
    interval: Duration,
) -> Result<()> {
    let threshold = 1.0;
    println!(
        "== lag detection latency (poll interval {} ms, threshold {threshold:.1} s)",
        interval.as_millis()
    );
    let trials = env_u64("BENCH_TRIALS", 3);
    // PostgreSQL: pause replay on the replica and write on the primary.
    let primary = pg(primary_pg).await?;
    let replica = pg(replica_pg).await?;
    primary
        .batch_execute("CREATE TABLE IF NOT EXISTS bench_lag (id serial PRIMARY KEY, v int)")
        .await?;
    let mut worst = 0;
    for trial in 1..=trials {
        wait_replica_pg(primary_pg, replica_pg).await?;
        replica
            .batch_execute("SELECT pg_wal_replay_pause()")
            .await?;
        let w = primary_pg.to_string();
        let writer = tokio::spawn(async move {
            if let Ok(c) = pg(&w).await {
                loop {
                    let _ = c
                        .batch_execute("INSERT INTO bench_lag (v) VALUES (1)")
                        .await;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        let mut poller = pg_poller(primary_pg, replica_pg, interval);
        let r = detect(&mut poller, interval, threshold, async || {
        Ok(primary
            .query_opt(
                "SELECT EXTRACT(EPOCH FROM replay_lag)::float8 FROM pg_stat_replication WHERE application_name = 'pg_replica'",
                &[],
            )
            .await?
            .and_then(|r| r.get::<_, Option<f64>>(0)))
    })
    .await;
        writer.abort();
        replica
            .batch_execute("SELECT pg_wal_replay_resume()")
            .await?;
        let (secs, polls) = r?;
        worst = worst.max(polls);
        println!(
            "postgres trial {trial}: detected {:.0} ms after the server reported it, on poll {polls} after",
            secs * 1e3
        );
    }
    println!(
        "postgres: worst of {trials}: poll {worst} after the server reported lag (target <= 2)"
    );

    // MariaDB: hold a read lock on the replica while the primary writes.
    let mut p = my(primary_my).await?;
    p.query_drop("CREATE TABLE IF NOT EXISTS lag_probe (id int AUTO_INCREMENT PRIMARY KEY, v int)")
        .await?;
    let mut worst = 0;
    for trial in 1..=trials {
        wait_replica_my(replica_my).await?;
        let mut locker = my(replica_my).await?;
        let mut watcher = my(replica_my).await?;
        locker.query_drop("FLUSH TABLES WITH READ LOCK").await?;
        let w = primary_my.to_string();
        let writer = tokio::spawn(async move {
            if let Ok(mut c) = my(&w).await {
                loop {
                    let _ = c.query_drop("INSERT INTO lag_probe (v) VALUES (1)").await;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        let mut poller = my_poller(replica_my, interval)?;
        let r = detect(&mut poller, interval, threshold, async || {
            let row: Option<mysql_async::Row> = watcher.query_first("SHOW SLAVE STATUS").await?;
            Ok(row
                .and_then(|r| r.get::<Option<u64>, _>("Seconds_Behind_Master"))
                .flatten()
                .map(|v| v as f64))
        })
        .await;
        locker.query_drop("UNLOCK TABLES").await?;
        writer.abort();
        let (secs, polls) = r?;
        worst = worst.max(polls);
        println!(
            "mariadb trial {trial}: detected {:.0} ms after the server reported it, on poll {polls} after",
            secs * 1e3
        );
    }
    println!(
        "mariadb: worst of {trials}: poll {worst} after the server reported lag (target <= 2)"
    );
    Ok(())
}

/// A lag poller that records when each poll ended, so that a chunk's time
/// can be told apart from the lag check before it.
struct Timed {
    inner: Box<dyn LagPoller>,
    ends: Arc<Mutex<Vec<DateTime<Utc>>>>,
}

impl LagPoller for Timed {
    fn poll(&mut self) -> BoxFuture<'_, Vec<LagSample>> {
        Box::pin(async move {
            let s = self.inner.poll().await;
            if let Ok(mut e) = self.ends.lock() {
                e.push(Utc::now());
            }
            s
        })
    }
}

fn job(dir: &std::path::Path, table: &str) -> ExecJob {
    ExecJob {
        run: "bench".into(),
        spec: RunSpec {
            binding: Binding {
                plan_digest: "0".repeat(64),
                target: "bench".into(),
            },
            environment: Environment::Staging,
            risk: Risk::Low,
            versions: vec![],
            estimated_seconds: 0.0,
            tables: vec![table.into()],
            executor: "native".into(),
        },
        run_dir: dir.join("run"),
        postpone_cut_over: false,
        chunk_size: None,
        max_lag_millis: Some(1000),
        running: None,
    }
}

/// Runs the executor to its end; returns (seconds, longest chunk seconds, chunks).
async fn run_backfill(
    ex: &mut dyn Executor,
    job: ExecJob,
    ends: Arc<Mutex<Vec<DateTime<Utc>>>>,
) -> Result<(f64, f64, usize)> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(65536);
    let t0 = Instant::now();
    ex.start(job, tx).await?;
    let mut longest = 0.0f64;
    let mut chunks = 0;
    let mut last_rows = 0;
    loop {
        match rx.recv().await {
            Some(ExecUpdate::Status(s)) => {
                if let (ExecPhase::Copying, Some(p)) = (&s.phase, &s.progress)
                    && p.rows_copied > last_rows
                {
                    last_rows = p.rows_copied;
                    chunks += 1;
                    let ends = ends.lock().map(|e| e.clone()).unwrap_or_default();
                    if let Some(start) = ends.iter().rev().find(|t| **t <= s.at) {
                        let d = (s.at - *start).num_microseconds().unwrap_or(0) as f64 / 1e6;
                        if std::env::var_os("BENCH_VERBOSE").is_some() {
                            eprintln!(
                                "  chunk {chunks}: {:.0} ms, size {:?}, rows {}",
                                d * 1e3,
                                p.chunk_size,
                                p.rows_copied
                            );
                        }
                        longest = longest.max(d);
                    }
                }
            }
            Some(ExecUpdate::Finished(o)) => {
                if o.kind != OutcomeKind::Succeeded {
                    return Err(anyhow!("backfill did not succeed: {:?}", o.kind));
                }
                return Ok((t0.elapsed().as_secs_f64(), longest, chunks));
            }
            Some(ExecUpdate::Lag(_) | ExecUpdate::Executor { .. }) => {}
            None => return Err(anyhow!("executor ended without an outcome")),
        }
    }
}

fn report(engine: &str, rows: u64, one: f64, batched: (f64, f64, usize), target: f64) {
    let (t, longest, chunks) = batched;
    println!(
        "{engine}: one UPDATE of {rows} rows {one:.2} s ({:.0} rows/s); batched {t:.2} s ({:.0} rows/s) in {chunks} chunks = {:.0}% of the one-shot throughput (target >= 50%); longest chunk {:.0} ms vs target {:.0} ms ({})",
        rows as f64 / one,
        rows as f64 / t,
        one / t * 100.0,
        longest * 1e3,
        target * 1e3,
        if longest <= target { "within" } else { "OVER" }
    );
}

fn backfill_migration(
    dir: &std::path::Path,
    engine: Engine,
    target: f64,
) -> Result<Vec<cutover::migrate::Migration>> {
    let mig = dir.join("mig");
    std::fs::create_dir_all(&mig)?;
    std::fs::write(
        mig.join("V1__bench_backfill.sql"),
        format!(
            "-- cutover: backfill table=bench_bf set=\"c = 2\" key=id batch={}ms\nSELECT 1;\n",
            (target * 1e3) as u64
        ),
    )?;
    Ok(load_paths(
        &[mig],
        &LoadOptions {
            engine: Some(engine),
            format: None,
        },
    )?)
}

#[allow(clippy::too_many_arguments)]
async fn backfill(
    primary_pg: &str,
    replica_pg: &str,
    primary_my: &str,
    replica_my: &str,
    rows: u64,
    target: f64,
) -> Result<()> {
    println!(
        "== batched backfill vs one UPDATE ({rows} rows, target chunk {:.0} ms)",
        target * 1e3
    );
    // PostgreSQL.
    let c = pg(primary_pg).await?;
    c.batch_execute(&format!(
        "DROP TABLE IF EXISTS bench_bf; CREATE TABLE bench_bf (id int PRIMARY KEY, c int);
         INSERT INTO bench_bf (id) SELECT g FROM generate_series(1, {rows}) g"
    ))
    .await?;
    // VACUUM refuses to run in the implicit transaction of a multi-statement query.
    c.batch_execute("VACUUM ANALYZE bench_bf").await?;
    let t0 = Instant::now();
    c.batch_execute("UPDATE bench_bf SET c = 1").await?;
    let one = t0.elapsed().as_secs_f64();
    c.batch_execute("VACUUM bench_bf").await?;
    let dir = tempfile::tempdir()?;
    let ends = Arc::new(Mutex::new(Vec::new()));
    let timed = Timed {
        inner: Box::new(pg_poller(primary_pg, replica_pg, Duration::from_secs(1))),
        ends: ends.clone(),
    };
    let mut ex = NativePg::new(
        primary_pg,
        backfill_migration(dir.path(), Engine::Postgres, target)?,
        PgExecOptions {
            record_history: false,
            lag_interval: Duration::from_millis(200),
            ..PgExecOptions::default()
        },
    )
    .with_lag(Box::new(timed));
    let b = run_backfill(&mut ex, job(dir.path(), "bench_bf"), ends).await?;
    report("postgres", rows, one, b, target);
    c.batch_execute("DROP TABLE bench_bf").await?;

    // MariaDB.
    let mut m = my(primary_my).await?;
    m.query_drop(format!(
        "DROP TABLE IF EXISTS bench_bf; CREATE TABLE bench_bf (id int PRIMARY KEY, c int);
         INSERT INTO bench_bf (id) SELECT seq FROM seq_1_to_{rows}"
    ))
    .await?;
    wait_replica_my(replica_my).await?;
    let t0 = Instant::now();
    m.query_drop("UPDATE bench_bf SET c = 1").await?;
    let one = t0.elapsed().as_secs_f64();
    wait_replica_my(replica_my).await?;
    let dir = tempfile::tempdir()?;
    let ends = Arc::new(Mutex::new(Vec::new()));
    let timed = Timed {
        inner: Box::new(my_poller(replica_my, Duration::from_secs(1))?),
        ends: ends.clone(),
    };
    let mut ex = NativeMysql::new(
        primary_my,
        backfill_migration(dir.path(), Engine::Mysql, target)?,
        MyExecOptions {
            record_history: false,
            lag_interval: Duration::from_millis(200),
            ..MyExecOptions::default()
        },
    )
    .with_lag(Box::new(timed));
    let b = run_backfill(&mut ex, job(dir.path(), "bench_bf"), ends).await?;
    report("mariadb", rows, one, b, target);
    m.query_drop("DROP TABLE bench_bf").await?;
    Ok(())
}

/// Waits until the PostgreSQL replica reads as caught up.
async fn wait_replica_pg(primary: &str, replica: &str) -> Result<()> {
    let mut p = pg_poller(primary, replica, Duration::from_millis(200));
    for _ in 0..600 {
        if p.poll()
            .await
            .iter()
            .all(|s| s.seconds.is_some_and(|v| v < 0.5))
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(anyhow!("the PostgreSQL replica did not catch up"))
}

/// Waits until the MariaDB replica reports no lag (so one measurement does
/// not pay for the previous one's replication).
async fn wait_replica_my(replica: &str) -> Result<()> {
    let mut p = my_poller(replica, Duration::from_millis(200))?;
    for _ in 0..600 {
        if p.poll().await.iter().all(|s| s.seconds == Some(0.0)) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(anyhow!("the MariaDB replica did not catch up"))
}

#[tokio::main]
async fn main() -> Result<()> {
    let primary_pg = env("CUTOVER_TEST_PG_PRIMARY")?;
    let replica_pg = env("CUTOVER_TEST_PG_REPLICA")?;
    let primary_my = env("CUTOVER_TEST_MY_PRIMARY")?;
    let replica_my = env("CUTOVER_TEST_MY_REPLICA")?;
    let rows = env_u64("BENCH_ROWS", 1_000_000);
    let polls = env_u64("BENCH_POLLS", 200);
    let interval = Duration::from_millis(env_u64("BENCH_INTERVAL_MS", 500));
    let target = env_u64("BENCH_CHUNK_MS", 500) as f64 / 1e3;
    poll_cost(&primary_pg, &replica_pg, &replica_my, polls).await?;
    detection(&primary_pg, &replica_pg, &primary_my, &replica_my, interval).await?;
    backfill(
        &primary_pg,
        &replica_pg,
        &primary_my,
        &replica_my,
        rows,
        target,
    )
    .await?;
    Ok(())
}
