//! The native PostgreSQL executor against the throwaway primary (and its
//! replica, for lag throttling). Tests share one lock: they share tables and
//! the replica. Assertions are on behaviour and sample counts, never on time.

mod db_common;
use db_common::{pg, url};

use cutover::exec::native_pg::{NativePg, PgExecOptions};
use cutover::exec::{Control, ExecJob, ExecPhase, ExecUpdate, Executor, Outcome, OutcomeKind};
use cutover::lag::PollOptions;
use cutover::lag::pg::{PgLagPoller, PgReplica};
use cutover::migrate::{LoadOptions, Migration, load_paths};
use cutover::model::{Engine, Risk};
use cutover::policy::Environment;
use cutover::policy::approvals::Binding;
use cutover::run::RunSpec;
use std::time::Duration;
use tokio::sync::mpsc;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn migrations(dir: &std::path::Path, files: &[(&str, &str)]) -> Vec<Migration> {
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    load_paths(
        &[dir.to_path_buf()],
        &LoadOptions {
            engine: Some(Engine::Postgres),
            format: None,
        },
    )
    .unwrap()
}

fn job(dir: &std::path::Path, tables: &[&str], max_lag_millis: Option<u64>) -> ExecJob {
    ExecJob {
        run: "r1".into(),
        spec: RunSpec {
            binding: Binding {
                plan_digest: "d".repeat(64),
                target: "t".into(),
            },
            environment: Environment::Staging,
            risk: Risk::High,
            versions: vec![],
            estimated_seconds: 1.0,
            tables: tables.iter().map(|t| t.to_string()).collect(),
            executor: "native".into(),
        },
        run_dir: dir.to_path_buf(),
        postpone_cut_over: false,
        chunk_size: None,
        max_lag_millis,
        running: None,
    }
}

fn fast() -> PgExecOptions {
    PgExecOptions {
        lock_timeout: Duration::from_millis(200),
        retry_backoff: Duration::from_millis(100),
        lock_retries: 50,
        progress_interval: Duration::from_millis(100),
        lag_interval: Duration::from_millis(200),
        ..PgExecOptions::default()
    }
}

/// Collects statuses until the outcome; `on` sees each status first.
async fn drive(
    ex: &mut NativePg,
    rx: &mut mpsc::Receiver<ExecUpdate>,
    mut on: impl AsyncFnMut(&mut NativePg, &cutover::exec::ExecStatus),
) -> (Vec<cutover::exec::ExecStatus>, Outcome) {
    let mut seen = Vec::new();
    loop {
        match rx.recv().await.expect("executor ended without an outcome") {
            ExecUpdate::Status(s) => {
                on(ex, &s).await;
                seen.push(s);
            }
            ExecUpdate::Lag(_) | ExecUpdate::Executor { .. } => {}
            ExecUpdate::Finished(o) => return (seen, o),
        }
    }
}

/// A 1,000,000-row table, created once.
async fn big_table(c: &tokio_postgres::Client) {
    c.batch_execute(
        "CREATE TABLE IF NOT EXISTS big (id int PRIMARY KEY, v text);
         INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 1000000) g
           WHERE NOT EXISTS (SELECT 1 FROM big LIMIT 1);
         DROP INDEX IF EXISTS big_v_idx; DROP INDEX IF EXISTS big_v_abort;",
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn concurrent_index_build_reports_increasing_progress() {
    let Some(dsn) = url("CUTOVER_TEST_PG_PRIMARY") else {
        return;
    };
    let _g = SERIAL.lock().await;
    let c = pg(&dsn).await;
    big_table(&c).await;
    let dir = tempfile::tempdir().unwrap();
    let ms = migrations(
        dir.path(),
        &[(
            "V1__idx.sql",
            "CREATE INDEX CONCURRENTLY big_v_idx ON big (v);\n",
        )],
    );
    let mut ex = NativePg::new(
        &dsn,
        ms,
        PgExecOptions {
            record_history: false,
            ..fast()
        },
    );
    let (tx, mut rx) = mpsc::channel(1024);
    ex.start(job(dir.path(), &["big"], None), tx).await.unwrap();
    let (seen, outcome) = drive(&mut ex, &mut rx, async |_, _| {}).await;
    assert_eq!(outcome.kind, OutcomeKind::Succeeded, "{outcome:?}");
    // Samples of the build, grouped by phase: within a phase, units done never
    // go down, and at least one phase shows them going up.
    // (phase, percent within it); blocks and tuples are not rows copied.
    let builds: Vec<(String, f64)> = seen
        .iter()
        .filter_map(|s| s.progress.as_ref())
        .filter(|p| p.percent.is_some())
        .filter_map(|p| {
            let d = p.detail.clone()?;
            assert_eq!(p.rows_copied, 0, "index build units shown as rows: {d}");
            let phase = d
                .rsplit_once(" (")
                .map_or(d.clone(), |(a, _)| a.to_string());
            Some((phase, p.percent?))
        })
        .collect();
    assert!(builds.len() >= 2, "progress samples: {builds:?}");
    let mut rose = false;
    for w in builds.windows(2) {
        if w[0].0 == w[1].0 {
            assert!(w[1].1 >= w[0].1, "progress went backwards: {w:?}");
            rose |= w[1].1 > w[0].1;
        }
    }
    // Under load the sampler may see each phase once: moving on to a later
    // phase is progress too.
    let mut phases: Vec<&str> = builds.iter().map(|(p, _)| p.as_str()).collect();
    phases.dedup();
    assert!(
        rose || phases.len() >= 2,
        "no phase showed increasing progress and the build never moved to another phase: {builds:?}"
    );
    assert!(
        builds
            .iter()
            .any(|(d, _)| d.contains("CREATE INDEX CONCURRENTLY"))
    );
    let valid: bool = c
        .query_one(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'big_v_idx'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(valid);
}

#[tokio::test]
async fn abort_mid_build_reports_the_invalid_index_and_what_did_not_run() {
    let Some(dsn) = url("CUTOVER_TEST_PG_PRIMARY") else {
        return;
    };
    let _g = SERIAL.lock().await;
    let c = pg(&dsn).await;
    big_table(&c).await;
    c.batch_execute("DROP TABLE IF EXISTS after_abort")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ms = migrations(
        dir.path(),
        &[
            (
                "V1__idx.sql",
                "CREATE INDEX CONCURRENTLY big_v_abort ON big (v);\n",
            ),
            ("V2__next.sql", "CREATE TABLE after_abort (id int);\n"),
        ],
    );
    let mut ex = NativePg::new(
        &dsn,
        ms,
        PgExecOptions {
            record_history: false,
            ..fast()
        },
    );
    let (tx, mut rx) = mpsc::channel(1024);
    ex.start(job(dir.path(), &["big"], None), tx).await.unwrap();
    let mut sent = false;
    let (_, outcome) = drive(&mut ex, &mut rx, async |ex, s| {
        let building = s
            .progress
            .as_ref()
            .and_then(|p| p.detail.as_deref())
            .is_some_and(|d| d.contains("building index"));
        if building && !sent {
            sent = true;
            ex.control(Control::Abort { table: None }).await.unwrap();
        }
    })
    .await;
    assert!(sent, "the build was seen running");
    assert_eq!(outcome.kind, OutcomeKind::Aborted, "{outcome:?}");
    let idx = outcome
        .leftovers
        .iter()
        .find(|l| l.kind == "index")
        .expect("the INVALID index is reported");
    assert_eq!(
        idx.cleanup.as_deref(),
        Some("DROP INDEX CONCURRENTLY IF EXISTS \"public\".\"big_v_abort\";")
    );
    let stmts = outcome
        .leftovers
        .iter()
        .find(|l| l.kind == "statements")
        .unwrap();
    assert!(
        stmts.name.starts_with("0 of 2 steps applied"),
        "{}",
        stmts.name
    );
    assert!(stmts.name.contains("V2__next.sql:1"), "{}", stmts.name);
    // The documented state: the index exists, INVALID; nothing after it ran.
    let valid: bool = c
        .query_one(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'big_v_abort'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!valid);
    let next: Option<String> = c
        .query_one("SELECT to_regclass('after_abort')::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(next, None);
    c.batch_execute(idx.cleanup.as_deref().unwrap())
        .await
        .unwrap();
}

#[tokio::test]
async fn lock_timeout_is_retried_until_the_blocker_goes() {
    let Some(dsn) = url("CUTOVER_TEST_PG_PRIMARY") else {
        return;
    };
    let _g = SERIAL.lock().await;
    let c = pg(&dsn).await;
    c.batch_execute("DROP TABLE IF EXISTS lt; CREATE TABLE lt (id int)")
        .await
        .unwrap();
    let blocker = pg(&dsn).await;
    blocker
        .batch_execute("BEGIN; SELECT * FROM lt")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ms = migrations(
        dir.path(),
        &[("V1__add.sql", "ALTER TABLE lt ADD COLUMN c int;\n")],
    );

    // Out of retries while the blocker stays: fails, naming the lock timeout.
    let mut ex = NativePg::new(
        &dsn,
        ms.clone(),
        PgExecOptions {
            record_history: false,
            lock_retries: 1,
            ..fast()
        },
    );
    let (tx, mut rx) = mpsc::channel(1024);
    ex.start(job(dir.path(), &["lt"], None), tx).await.unwrap();
    let (_, outcome) = drive(&mut ex, &mut rx, async |_, _| {}).await;
    match &outcome.kind {
        OutcomeKind::Failed { error } => assert!(
            error.contains("55P03") && error.contains("after 1 retries"),
            "{error}"
        ),
        other => panic!("expected a lock-timeout failure, got {other:?}"),
    }

    // With retries: the test ends its transaction after the second retry.
    let mut ex = NativePg::new(
        &dsn,
        ms,
        PgExecOptions {
            record_history: false,
            ..fast()
        },
    );
    let (tx, mut rx) = mpsc::channel(1024);
    ex.start(job(dir.path(), &["lt"], None), tx).await.unwrap();
    let mut retries = 0;
    let (_, outcome) = drive(&mut ex, &mut rx, async |_, s| {
        if matches!(&s.phase, ExecPhase::Throttled { reason } if reason.starts_with("lock timeout"))
        {
            retries += 1;
            if retries == 2 {
                blocker.batch_execute("COMMIT").await.unwrap();
            }
        }
    })
    .await;
    assert_eq!(outcome.kind, OutcomeKind::Succeeded, "{outcome:?}");
    assert!(retries >= 2);
    let n: i64 = c
        .query_one("SELECT count(*) FROM information_schema.columns WHERE table_name = 'lt' AND column_name = 'c'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

#[tokio::test]
async fn backfill_throttles_while_the_replica_lags_and_resumes_after() {
    let (Some(dsn), Some(rdsn)) = (
        url("CUTOVER_TEST_PG_PRIMARY"),
        url("CUTOVER_TEST_PG_REPLICA"),
    ) else {
        return;
    };
    let _g = SERIAL.lock().await;
    let c = pg(&dsn).await;
    let replica = pg(&rdsn).await;
    c.batch_execute(
        "DROP TABLE IF EXISTS bf; CREATE TABLE bf (id int PRIMARY KEY, c int);
         INSERT INTO bf SELECT g, NULL FROM generate_series(1, 100000) g;
         CREATE TABLE IF NOT EXISTS lag_probe (id serial PRIMARY KEY, v int);",
    )
    .await
    .unwrap();
    // Lag first: the backfill must not write a single chunk while it lasts.
    replica
        .batch_execute("SELECT pg_wal_replay_pause()")
        .await
        .unwrap();
    let wdsn = dsn.clone();
    let writer = db_common::spawn_pg_writer(wdsn);
    let mut waits = 0;
    loop {
        let lag: Option<f64> = c
            .query_opt("SELECT EXTRACT(EPOCH FROM replay_lag)::float8 FROM pg_stat_replication WHERE application_name = 'pg_replica'", &[])
            .await
            .unwrap()
            .and_then(|r| r.get(0));
        if lag.is_some_and(|l| l > 1.0) {
            break;
        }
        waits += 1;
        assert!(waits < 200, "the server never reported replay lag");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let ms = migrations(
        dir.path(),
        &[(
            "V1__bf.sql",
            "-- cutover: backfill table=bf set=\"c = 1\" key=id batch=100ms where=\"c IS NULL\"\nSELECT 1;\n",
        )],
    );
    let poller = PgLagPoller::new(
        &dsn,
        vec![PgReplica {
            name: "pg_replica".into(),
            dsn: rdsn.clone(),
        }],
        PollOptions::default(),
    );
    let mut ex = NativePg::new(
        &dsn,
        ms,
        PgExecOptions {
            record_history: false,
            ..fast()
        },
    )
    .with_lag(Box::new(poller));
    assert!(ex.capabilities().lag_throttle);
    let (tx, mut rx) = mpsc::channel(1024);
    ex.start(job(dir.path(), &["bf"], Some(500)), tx)
        .await
        .unwrap();
    let mut throttled = 0;
    let mut updated_while_throttled = None;
    let mut copying_after = 0;
    let (_, outcome) = drive(&mut ex, &mut rx, async |_, s| match &s.phase {
        ExecPhase::Throttled { reason } if reason.contains("lag") => {
            throttled += 1;
            if throttled == 3 {
                let n: i64 = c
                    .query_one("SELECT count(*) FROM bf WHERE c = 1", &[])
                    .await
                    .unwrap()
                    .get(0);
                updated_while_throttled = Some(n);
                replica
                    .batch_execute("SELECT pg_wal_replay_resume()")
                    .await
                    .unwrap();
                writer.abort();
            }
        }
        ExecPhase::Copying
            if throttled >= 3 && s.progress.as_ref().is_some_and(|p| p.rows_copied > 0) =>
        {
            copying_after += 1;
        }
        _ => {}
    })
    .await;
    let _ = replica.batch_execute("SELECT pg_wal_replay_resume()").await;
    assert_eq!(outcome.kind, OutcomeKind::Succeeded, "{outcome:?}");
    assert!(throttled >= 3, "throttled on lag");
    assert_eq!(
        updated_while_throttled,
        Some(0),
        "no chunk ran while lag was over the limit"
    );
    assert!(copying_after >= 2, "chunks resumed after the lag cleared");
    let n: i64 = c
        .query_one("SELECT count(*) FROM bf WHERE c = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 100_000);
}

#[tokio::test]
async fn flyway_migration_applied_natively_is_seen_as_applied() {
    let Some(dsn) = url("CUTOVER_TEST_PG_PRIMARY") else {
        return;
    };
    let _g = SERIAL.lock().await;
    let c = pg(&dsn).await;
    c.batch_execute(
        "DROP TABLE IF EXISTS fly_t;
         CREATE TABLE IF NOT EXISTS flyway_schema_history (installed_rank integer NOT NULL PRIMARY KEY, version varchar(50), description varchar(200) NOT NULL, type varchar(20) NOT NULL, script varchar(1000) NOT NULL, checksum integer, installed_by varchar(100) NOT NULL, installed_on timestamp NOT NULL DEFAULT now(), execution_time integer NOT NULL, success boolean NOT NULL);
         DELETE FROM flyway_schema_history WHERE version IN ('9001', '9002');",
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ms = migrations(
        dir.path(),
        &[
            (
                "V9001__create_fly.sql",
                "CREATE TABLE fly_t (id int);\r\nINSERT INTO fly_t VALUES (1);\r\n",
            ),
            ("V9002__later.sql", "ALTER TABLE fly_t ADD COLUMN c int;\n"),
        ],
    );
    let rows = cutover::exec::history::read_pg(&c).await.unwrap();
    assert_eq!(cutover::exec::history::pending(&ms, &rows).len(), 2);
    let mut ex = NativePg::new(&dsn, vec![ms[0].clone()], fast());
    let (tx, mut rx) = mpsc::channel(1024);
    ex.start(job(dir.path(), &["fly_t"], None), tx)
        .await
        .unwrap();
    let (_, outcome) = drive(&mut ex, &mut rx, async |_, _| {}).await;
    assert_eq!(outcome.kind, OutcomeKind::Succeeded, "{outcome:?}");
    let rows = cutover::exec::history::read_pg(&c).await.unwrap();
    let pending = cutover::exec::history::pending(&ms, &rows);
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].version, "9002");
    let (script, checksum, desc): (String, i32, String) = {
        let r = c
            .query_one("SELECT script::text, checksum, description::text FROM flyway_schema_history WHERE version = '9001'", &[])
            .await
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    assert_eq!(script, "V9001__create_fly.sql");
    assert_eq!(desc, "create fly");
    assert_eq!(
        checksum,
        cutover::exec::history::flyway_checksum(&ms[0].text)
    );
}

/// A run killed mid-migration (its connection terminated while a statement
/// waits on a lock), with the journal also missing the last writes before
/// the kill (the crash window between a statement and its fsync) and the
/// last history record lost: `recover` says where it resumes, and a new
/// start applies every remaining statement exactly once.
#[tokio::test]
async fn killed_run_resumes_and_applies_every_statement_once() {
    let Some(admin) = url("CUTOVER_TEST_PG_PRIMARY") else {
        return;
    };
    let _g = SERIAL.lock().await;
    let a = pg(&admin).await;
    a.batch_execute("DROP DATABASE IF EXISTS cutover_resume WITH (FORCE)")
        .await
        .unwrap();
    a.batch_execute("CREATE DATABASE cutover_resume")
        .await
        .unwrap();
    let (base, _) = admin.rsplit_once('/').unwrap();
    let dsn = format!("{base}/cutover_resume");
    let c = pg(&dsn).await;
    c.batch_execute("CREATE TABLE r_log (n int); CREATE TABLE r_block (id int);")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let mig = dir.path().join("mig");
    std::fs::create_dir(&mig).unwrap();
    let ms = migrations(
        &mig,
        &[
            (
                "V1__r_a.sql",
                "CREATE TABLE r_a (id int);\nINSERT INTO r_log VALUES (1);\n",
            ),
            (
                "V2__r_idx.sql",
                "CREATE INDEX CONCURRENTLY r_a_i ON r_a (id);\n",
            ),
            (
                "V3__r_c.sql",
                "ALTER TABLE r_a ADD COLUMN c int;\nINSERT INTO r_log VALUES (3);\nALTER TABLE r_block ADD COLUMN x int;\n",
            ),
        ],
    );
    let opts = PgExecOptions {
        lock_timeout: Duration::from_secs(60),
        // The session's death stands for the process's: no reconnect.
        reconnect_retries: 0,
        ..fast()
    };
    // A transaction of the test's holds r_block: V3 waits on it.
    let blocker = pg(&dsn).await;
    blocker
        .batch_execute("BEGIN; LOCK TABLE r_block IN ACCESS SHARE MODE;")
        .await
        .unwrap();
    let mut ex = NativePg::new(&dsn, ms.clone(), opts.clone());
    let (tx, mut rx) = mpsc::channel(4096);
    let mut j = job(&run_dir, &[], None);
    ex.start(j.clone(), tx).await.unwrap();
    loop {
        let waiting: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'cutover' AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if waiting > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The crash: the executor's session dies mid-statement.
    c.batch_execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'cutover'",
    )
    .await
    .unwrap();
    let (_, o) = drive(&mut ex, &mut rx, async |_, _| {}).await;
    assert!(matches!(o.kind, OutcomeKind::Failed { .. }), "{o:?}");
    blocker.batch_execute("ROLLBACK").await.unwrap();
    // The crash window: V2's index was built, but neither its journal lines
    // nor its history record made it.
    let journal = run_dir.join(cutover::exec::resume::JOURNAL_FILE);
    let text = std::fs::read_to_string(&journal).unwrap();
    // (Session lines name the killed session: gone, nothing to wait for.)
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("\"session\""))
        .take(3)
        .collect();
    assert!(kept[0].contains("\"started\""), "{text}");
    assert!(kept[2].contains("\"done\""), "{text}");
    std::fs::write(&journal, kept.join("\n") + "\n").unwrap();
    c.batch_execute("DELETE FROM flyway_schema_history WHERE version = '2'")
        .await
        .unwrap();

    let mut ex = NativePg::new(&dsn, ms, opts);
    let (tx, mut rx) = mpsc::channel(4096);
    let st = ex.recover(j.clone(), tx.clone()).await.unwrap();
    let detail = st.progress.unwrap().detail.unwrap();
    assert!(detail.contains("resuming at step 3"), "{detail}");
    assert!(detail.contains("step 2 by the live database"), "{detail}");
    j.run = "r2".into();
    ex.start(j, tx).await.unwrap();
    let (_, o) = drive(&mut ex, &mut rx, async |_, _| {}).await;
    assert_eq!(o.kind, OutcomeKind::Succeeded, "{o:?}");
    let logged: Vec<i32> = c
        .query("SELECT n FROM r_log ORDER BY n", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(logged, vec![1, 3], "every INSERT exactly once");
    let versions: Vec<String> = c
        .query(
            "SELECT version FROM flyway_schema_history ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, vec!["1", "2", "3"]);
    let cols: i64 = c
        .query_one(
            "SELECT count(*) FROM information_schema.columns WHERE (table_name, column_name) IN (('r_a','c'), ('r_block','x'))",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(cols, 2);
    drop(c);
    a.batch_execute("DROP DATABASE IF EXISTS cutover_resume WITH (FORCE)")
        .await
        .unwrap();
}

/// Before start, a replica whose lag cannot be read refuses the run (unknown
/// counts as over the limit), and nothing is applied.
#[tokio::test]
async fn unknown_replica_refuses_before_start() {
    let Some(dsn) = url("CUTOVER_TEST_PG_PRIMARY") else {
        return;
    };
    let _g = SERIAL.lock().await;
    let c = pg(&dsn).await;
    c.batch_execute("DROP TABLE IF EXISTS rh_t; CREATE TABLE rh_t (id int);")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ms = migrations(
        dir.path(),
        &[("V1__rh.sql", "ALTER TABLE rh_t ADD COLUMN c int;\n")],
    );
    let poller = PgLagPoller::new(
        &dsn,
        vec![PgReplica {
            name: "gone".into(),
            dsn: "postgres://postgres@127.0.0.1:1/postgres".into(),
        }],
        PollOptions {
            timeout: Duration::from_millis(500),
            ..PollOptions::default()
        },
    );
    let mut ex = NativePg::new(
        &dsn,
        ms,
        PgExecOptions {
            record_history: false,
            ..fast()
        },
    )
    .with_lag(Box::new(poller));
    let (tx, mut rx) = mpsc::channel(1024);
    ex.start(job(dir.path(), &["rh_t"], Some(1000)), tx)
        .await
        .unwrap();
    let (_, o) = drive(&mut ex, &mut rx, async |_, _| {}).await;
    match &o.kind {
        OutcomeKind::Failed { error } => {
            assert!(error.contains("gone lag is unknown"), "{error}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let cols: i64 = c
        .query_one(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'rh_t' AND column_name = 'c'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(cols, 0);
}

/// A backfill chunk never holds its row locks past the declared chunk time:
/// a row the test keeps locked makes the chunk over it wait, the chunk is
/// cancelled at the target (well before the 10 s lock_timeout), retried
/// smaller, and after repeated overruns the run fails saying so, with the
/// rows before it done.
#[tokio::test]
async fn backfill_chunk_is_cancelled_at_the_target_time() {
    let Some(dsn) = url("CUTOVER_TEST_PG_PRIMARY") else {
        return;
    };
    let _g = SERIAL.lock().await;
    let c = pg(&dsn).await;
    c.batch_execute(
        "DROP TABLE IF EXISTS bt; CREATE TABLE bt (id int PRIMARY KEY, c int);
         INSERT INTO bt (id) SELECT g FROM generate_series(1, 5000) g;",
    )
    .await
    .unwrap();
    let holder = pg(&dsn).await;
    holder
        .batch_execute("BEGIN; SELECT * FROM bt WHERE id = 4000 FOR UPDATE;")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ms = migrations(
        dir.path(),
        &[(
            "V1__bt.sql",
            "-- cutover: backfill table=bt set=\"c = 1\" key=id batch=200ms\nSELECT 1;\n",
        )],
    );
    let mut ex = NativePg::new(
        &dsn,
        ms,
        PgExecOptions {
            record_history: false,
            lock_timeout: Duration::from_secs(10),
            ..fast()
        },
    );
    let (tx, mut rx) = mpsc::channel(4096);
    ex.start(job(dir.path(), &["bt"], None), tx).await.unwrap();
    let (_, o) = drive(&mut ex, &mut rx, async |_, _| {}).await;
    holder.batch_execute("ROLLBACK").await.unwrap();
    match &o.kind {
        OutcomeKind::Failed { error } => assert!(
            error.contains("exceeded the target chunk time of 200 ms 5 times"),
            "{error}"
        ),
        other => panic!("expected a failure, got {other:?}"),
    }
    let done: i64 = c
        .query_one("SELECT count(*) FROM bt WHERE c = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        (1..4000).contains(&done),
        "rows before the locked one: {done}"
    );
    assert!(
        o.leftovers.iter().any(|l| l.kind == "backfill"),
        "{:?}",
        o.leftovers
    );
}
