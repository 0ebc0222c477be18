//! Server faults during a run, on the throwaway topology (`scripts/test`):
//! the PostgreSQL primary restarted mid-backfill and mid-build, the MariaDB
//! primary restarted mid-backfill, the primary down past the retry budget, and a replica stopped or frozen (SIGSTOP)
//! mid-backfill on both engines. Each run reconnects or throttles with a
//! clear reason, and ends consistent: every row of a non-idempotent backfill
//! (`SET c = c + 1`) updated once, the index valid once, what was left
//! reported.
//!
//! Every test breaks a shared server, so they run one at a time, and each
//! restores what it broke (also when it fails) through `scripts/topology`.

mod db_common;
use db_common::{my, with_db};

use cutover::audit::{AuditKey, Entry, read_file};
use cutover::exec::native_pg::{NativePg, PgExecOptions};
use cutover::exec::{ExecJob, ExecPhase, ExecUpdate, Executor, OutcomeKind};
use cutover::migrate::{LoadOptions, load_paths};
use cutover::model::{Engine, Risk};
use cutover::policy::Environment;
use cutover::policy::approvals::Binding;
use cutover::run::{Event, EventRecord, RunSpec};
use mysql_async::prelude::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const KEY: &str = "an-audit-key-for-fault-tests-0123456789";
/// Generous: a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(600);

/// One fault at a time: they break servers every test shares.
static TOPOLOGY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Clone, Copy, PartialEq, Debug)]
enum Eng {
    Pg,
    My,
}

// ------------------------------------------------------------- topology --

/// `scripts/topology VERB SERVER` on the topology `scripts/test` started.
fn topology(verb: &str, server: &str) -> Result<(), String> {
    let dir = std::env::var("CUTOVER_TEST_TOPO_DIR")
        .map_err(|_| "CUTOVER_TEST_TOPO_DIR is not set (run through scripts/test)".to_string())?;
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/topology"))
        .args([verb, server])
        .env("TOPO_DIR", dir)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "scripts/topology {verb} {server}: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A server broken by a test, restored when dropped (also on a panic).
struct Broken {
    server: &'static str,
    undo: Option<&'static str>,
}

impl Broken {
    fn new(verb: &str, undo: &'static str, server: &'static str) -> Broken {
        topology(verb, server).unwrap_or_else(|e| panic!("{e}"));
        Broken {
            server,
            undo: Some(undo),
        }
    }

    fn restore(&mut self) {
        if let Some(undo) = self.undo.take() {
            topology(undo, self.server).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

impl Drop for Broken {
    fn drop(&mut self) {
        if let Some(undo) = self.undo.take()
            && let Err(e) = topology(undo, self.server)
        {
            eprintln!("restoring {}: {e}", self.server);
        }
    }
}

// ------------------------------------------------------------- databases --

/// A fresh database `db` holding `kf (id, c, v)` with `rows` rows; its DSN.
async fn fresh_table(eng: Eng, db: &str, rows: i64) -> Option<String> {
    match eng {
        Eng::Pg => {
            let admin = db_common::url("CUTOVER_TEST_PG_PRIMARY")?;
            let c = db_common::pg(&admin).await;
            // DROP/CREATE DATABASE cannot share a query string (an implicit
            // transaction), and CREATE fails while another copies template1.
            let mut made = false;
            for _ in 0..100 {
                let drop = format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)");
                if c.batch_execute(&drop).await.is_ok()
                    && c.batch_execute(&format!("CREATE DATABASE {db}"))
                        .await
                        .is_ok()
                {
                    made = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(made, "creating database {db}");
            let dsn = with_db(&admin, db);
            db_common::pg(&dsn)
                .await
                .batch_execute(&format!(
                    "CREATE TABLE kf (id int PRIMARY KEY, c int NOT NULL DEFAULT 0, v text NOT NULL);
                     INSERT INTO kf (id, v) SELECT g, md5(g::text) FROM generate_series(1, {rows}) g;
                     ANALYZE kf;"
                ))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            Some(dsn)
        }
        Eng::My => {
            let admin = db_common::url("CUTOVER_TEST_MY_PRIMARY")?;
            let mut c = my(&admin).await;
            c.query_drop(format!(
                "DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db}"
            ))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
            let dsn = with_db(&admin, db);
            let mut c = my(&dsn).await;
            c.query_drop(
                "CREATE TABLE kf (id int PRIMARY KEY, c int NOT NULL DEFAULT 0, v varchar(64) NOT NULL)",
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
            c.query_drop(format!(
                "INSERT INTO kf (id, v) SELECT seq, md5(seq) FROM seq_1_to_{rows}"
            ))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
            Some(dsn)
        }
    }
}

/// One integer from `sql`; `None` while the server does not answer.
async fn try_int(eng: Eng, dsn: &str, sql: &str) -> Option<i64> {
    match eng {
        Eng::Pg => {
            let (c, conn) = tokio_postgres::connect(dsn, tokio_postgres::NoTls)
                .await
                .ok()?;
            tokio::spawn(conn);
            c.query_one(sql, &[]).await.ok().map(|r| r.get(0))
        }
        Eng::My => {
            let o = mysql_async::Opts::from_url(dsn).ok()?;
            let mut c = mysql_async::Conn::new(o).await.ok()?;
            let v: Option<i64> = c.query_first(sql).await.ok()?;
            let _ = c.disconnect().await;
            v
        }
    }
}

async fn int(eng: Eng, dsn: &str, sql: &str) -> i64 {
    try_int(eng, dsn, sql)
        .await
        .unwrap_or_else(|| panic!("{sql}: no answer"))
}

/// Rows of `kf` updated other than once (`c <> 1`).
async fn not_once(eng: Eng, dsn: &str) -> i64 {
    let sql = match eng {
        Eng::Pg => "SELECT count(*) FROM kf WHERE c <> 1",
        Eng::My => "SELECT COUNT(*) FROM kf WHERE c <> 1",
    };
    int(eng, dsn, sql).await
}

async fn updated(eng: Eng, dsn: &str) -> Option<i64> {
    try_int(eng, dsn, "SELECT count(*) FROM kf WHERE c > 0").await
}

// -------------------------------------------------------------- projects --

fn os_user() -> String {
    let out = Command::new("id")
        .arg("-un")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A project with migrations `files` and a dev target (native executor), with
/// the engine's replica as `r1` when `replica` is set.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new(eng: Eng, dsn: &str, replica: Option<&str>, files: &[(&str, &str)]) -> Project {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let d = dir.path();
        std::fs::create_dir_all(d.join("db")).unwrap_or_else(|e| panic!("{e}"));
        for (name, sql) in files {
            std::fs::write(d.join("db").join(name), sql).unwrap_or_else(|e| panic!("{e}"));
        }
        let engine = match eng {
            Eng::Pg => "postgres",
            Eng::My => "mysql",
        };
        let replicas = replica
            .map(|r| format!("\n[[targets.replicas]]\nname = \"r1\"\ndsn = \"{r}\"\n"))
            .unwrap_or_default();
        std::fs::write(
            d.join("cutover.toml"),
            format!(
                "[[targets]]\nname = \"t\"\nengine = \"{engine}\"\nenvironment = \"dev\"\nprimary = \"{dsn}\"\nexecutor = \"native\"\n{replicas}\n[[policy.people]]\nid = \"me\"\nname = \"Me\"\nrole = \"dba\"\nlocal = [\"{}\"]\n",
                os_user()
            ),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        Project { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn cutover(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_cutover"))
            .args(args)
            .current_dir(self.path())
            .env("CUTOVER_AUDIT_KEY", KEY)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }

    fn spawn_run(&self) -> Child {
        let file = |ext: &str| {
            std::fs::File::create(self.path().join(format!("run.{ext}")))
                .unwrap_or_else(|e| panic!("{e}"))
        };
        Command::new(env!("CARGO_BIN_EXE_cutover"))
            .args(["run", "db", "--target", "t", "--no-tui"])
            .current_dir(self.path())
            .env("CUTOVER_AUDIT_KEY", KEY)
            .stdout(file("out"))
            .stderr(file("err"))
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn output(&self) -> String {
        let r = |ext: &str| {
            std::fs::read_to_string(self.path().join(format!("run.{ext}"))).unwrap_or_default()
        };
        let log = self
            .run_dir()
            .and_then(|d| std::fs::read_to_string(d.join("supervisor.log")).ok())
            .unwrap_or_default();
        format!(
            "stdout:\n{}\nstderr:\n{}\nsupervisor.log:\n{log}",
            r("out"),
            r("err")
        )
    }

    fn run_dir(&self) -> Option<PathBuf> {
        std::fs::read_dir(self.path().join(".cutover/runs"))
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .next()
    }

    fn records(&self) -> Vec<EventRecord> {
        let key = AuditKey::new(KEY.as_bytes().to_vec()).unwrap_or_else(|e| panic!("{e}"));
        read_file(&self.path().join(".cutover/audit.jsonl"), &key)
            .map(|(e, _)| e)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|e| match e.entry {
                Entry::Run { record } => Some(record),
                _ => None,
            })
            .collect()
    }

    /// Waits for the run to end: its exit code.
    async fn wait(&self, mut client: Child) -> i32 {
        tokio::task::spawn_blocking(move || client.wait())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"))
            .code()
            .unwrap_or(-1)
    }

    fn verify(&self) {
        let (code, out, err) = self.cutover(&["audit", "verify"]);
        assert_eq!(code, 0, "audit verify: {out}{err}");
    }
}

/// Polls `ready` until it holds, failing if the run ended first.
async fn until(client: &mut Child, p: &Project, what: &str, mut ready: impl AsyncFnMut() -> bool) {
    let t0 = Instant::now();
    loop {
        if let Ok(Some(st)) = client.try_wait() {
            panic!("the run ended ({st}) before {what}:\n{}", p.output());
        }
        if ready().await {
            return;
        }
        assert!(t0.elapsed() < DEADLINE, "never saw {what}:\n{}", p.output());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const BACKFILL: &str =
    "-- cutover: backfill table=kf set=\"c = c + 1\" key=id batch=20ms\nSELECT 1;\n";

// ------------------------------------------- PostgreSQL primary restarted --

/// The primary restarts twice under a `cutover run`: mid-backfill, and
/// while its `CREATE INDEX CONCURRENTLY` is mid-way (held in its last wait
/// by an old snapshot, so the restart lands mid-build on any machine). The
/// run shows it reconnecting, settles the lost chunk, drops the INVALID
/// index the broken build left, builds it again and succeeds.
#[tokio::test]
async fn pg_primary_restarted_mid_backfill_and_mid_build_the_run_reconnects_and_finishes() {
    const ROWS: i64 = 400_000;
    let _g = TOPOLOGY.lock().await;
    let Some(dsn) = fresh_table(Eng::Pg, "faults_restart", ROWS).await else {
        return;
    };
    let p = Project::new(
        Eng::Pg,
        &dsn,
        None,
        &[(
            "V1__kf.sql",
            &format!("{BACKFILL}CREATE INDEX CONCURRENTLY kf_v ON kf (v, c);\n"),
        )],
    );
    let mut client = p.spawn_run();
    let d = dsn.clone();
    until(&mut client, &p, "backfill progress", async || {
        updated(Eng::Pg, &d)
            .await
            .is_some_and(|n| (5_000..ROWS / 2).contains(&n))
    })
    .await;
    topology("restart", "pg-primary").unwrap_or_else(|e| panic!("{e}"));
    // An old snapshot (taken before the build starts, after the restart
    // that would end it) holds the build in its last wait.
    let holder = db_common::pg(&dsn).await;
    holder
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1;")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        updated(Eng::Pg, &dsn).await.is_some_and(|n| n < ROWS),
        "the backfill ended before the snapshot was taken"
    );
    until(&mut client, &p, "the build waiting mid-way", async || {
        try_int(
            Eng::Pg,
            &d,
            "SELECT count(*) FROM pg_stat_progress_create_index WHERE relid = 'kf'::regclass AND phase LIKE 'waiting for old snapshots%'",
        )
        .await
            == Some(1)
    })
    .await;
    // The restart also ends the holder's snapshot: the rebuild goes through.
    topology("restart", "pg-primary").unwrap_or_else(|e| panic!("{e}"));
    drop(holder);
    let code = p.wait(client).await;
    let out = p.output();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("SUCCEEDED"), "{out}");
    assert!(out.contains("reconnecting"), "{out}");
    assert_eq!(not_once(Eng::Pg, &dsn).await, 0, "every row updated once");
    assert_eq!(
        int(Eng::Pg, &dsn, "SELECT count(*) FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid WHERE x.relname LIKE 'kf_v%' AND i.indisvalid").await,
        1,
        "the index exists once and is valid"
    );
    assert_eq!(
        int(
            Eng::Pg,
            &dsn,
            "SELECT count(*) FROM pg_index WHERE NOT indisvalid"
        )
        .await,
        0,
        "no INVALID leftover"
    );
    assert_eq!(
        int(
            Eng::Pg,
            &dsn,
            "SELECT count(*) FROM flyway_schema_history WHERE version = '1' AND success"
        )
        .await,
        1
    );
    p.verify();
}

/// The MariaDB primary restarts under a `cutover run` while a backfill
/// chunk waits on a row lock a test session holds mid-table (so the restart
/// lands mid-backfill on any machine): the run reconnects, asks the marker
/// row whether the lost chunk committed, and finishes with every row
/// updated once.
#[tokio::test]
async fn mariadb_primary_restarted_mid_backfill_the_run_reconnects_and_finishes() {
    const ROWS: i64 = 200_000;
    let _g = TOPOLOGY.lock().await;
    let Some(dsn) = fresh_table(Eng::My, "faults_restart", ROWS).await else {
        return;
    };
    let p = Project::new(Eng::My, &dsn, None, &[("V1__kf.sql", BACKFILL)]);
    let mut holder = my(&dsn).await;
    holder
        .query_drop("START TRANSACTION")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    holder
        .query_drop(format!(
            "SELECT id FROM kf WHERE id = {} FOR UPDATE",
            ROWS / 2
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut client = p.spawn_run();
    let d = dsn.clone();
    until(&mut client, &p, "a chunk waiting on the row lock", async || {
        try_int(
            Eng::My,
            &d,
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'UPDATE kf%' AND TIME_MS > 100",
        )
        .await
            == Some(1)
    })
    .await;
    let before = updated(Eng::My, &dsn).await.unwrap_or(0);
    assert!(before > 0 && before < ROWS, "mid-backfill: {before}");
    topology("restart", "my-primary").unwrap_or_else(|e| panic!("{e}"));
    drop(holder); // its session died with the server
    let code = p.wait(client).await;
    let out = p.output();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("SUCCEEDED"), "{out}");
    assert!(out.contains("reconnecting"), "{out}");
    assert_eq!(not_once(Eng::My, &dsn).await, 0, "every row updated once");
    assert_eq!(
        int(
            Eng::My,
            &dsn,
            "SELECT COUNT(*) FROM flyway_schema_history WHERE version = '1' AND success = 1"
        )
        .await,
        1
    );
    p.verify();
}

/// The primary goes away past the retry budget mid-backfill: the run shows
/// each reconnect attempt, fails naming the budget, and reports what it
/// left (the keys the backfill had reached, the statements not applied).
/// Nothing was applied twice.
#[tokio::test]
async fn pg_primary_down_past_the_retry_budget_fails_and_reports_leftovers() {
    const ROWS: i64 = 400_000;
    let _g = TOPOLOGY.lock().await;
    let Some(dsn) = fresh_table(Eng::Pg, "faults_down", ROWS).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(dir.path().join("mig")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("mig/V1__kf.sql"), BACKFILL).unwrap_or_else(|e| panic!("{e}"));
    let ms = load_paths(
        &[dir.path().join("mig")],
        &LoadOptions {
            engine: Some(Engine::Postgres),
            format: None,
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut ex = NativePg::new(
        &dsn,
        ms,
        PgExecOptions {
            record_history: false,
            reconnect_retries: 3,
            reconnect_backoff: Duration::from_millis(200),
            ..PgExecOptions::default()
        },
    );
    let job = ExecJob {
        run: "rd".into(),
        spec: RunSpec {
            binding: Binding {
                plan_digest: "d".repeat(64),
                target: "t".into(),
            },
            environment: Environment::Dev,
            risk: Risk::Medium,
            versions: vec![],
            estimated_seconds: 1.0,
            tables: vec!["kf".into()],
            executor: "native".into(),
        },
        run_dir: dir.path().join("run"),
        postpone_cut_over: false,
        chunk_size: Some(200),
        max_lag_millis: None,
        running: None,
    };
    let (tx, mut rx) = mpsc::channel(65536);
    ex.start(job, tx).await.unwrap_or_else(|e| panic!("{e}"));
    let mut down: Option<Broken> = None;
    let mut attempts = Vec::new();
    let outcome = loop {
        match tokio::time::timeout(DEADLINE, rx.recv()).await {
            Ok(Some(ExecUpdate::Status(s))) => {
                if let ExecPhase::Throttled { reason } = &s.phase
                    && reason.contains("reconnecting")
                {
                    attempts.push(reason.clone());
                }
                if down.is_none() && updated(Eng::Pg, &dsn).await.is_some_and(|n| n >= 5_000) {
                    down = Some(Broken::new("stop", "start", "pg-primary"));
                }
            }
            Ok(Some(ExecUpdate::Finished(o))) => break o,
            Ok(Some(_)) => {}
            Ok(None) => panic!("the executor ended without an outcome"),
            Err(_) => panic!("no outcome within {DEADLINE:?}"),
        }
    };
    let Some(mut down) = down else {
        panic!("the backfill ended before the primary could be stopped: {outcome:?}")
    };
    down.restore();
    let OutcomeKind::Failed { error } = &outcome.kind else {
        panic!("{outcome:?}")
    };
    assert!(
        error.contains("stayed unreachable after 3 reconnect attempts"),
        "{error}"
    );
    assert_eq!(attempts.len(), 3, "each attempt shown: {attempts:?}");
    assert!(attempts[2].contains("attempt 3/3"), "{attempts:?}");
    let left: Vec<String> = outcome
        .leftovers
        .iter()
        .map(|l| format!("{} {}", l.kind, l.name))
        .collect();
    assert!(
        left.iter().any(|l| l.contains("backfill")),
        "the backfill's stopping point is reported: {left:?}"
    );
    let twice = int(Eng::Pg, &dsn, "SELECT count(*) FROM kf WHERE c > 1").await;
    assert_eq!(twice, 0, "no row updated twice");
}

// ------------------------------------------------ replica stopped / frozen --

/// A replica goes away (`stop`) or hangs (`freeze`, SIGSTOP) mid-run,
/// while the statement before a backfill runs: its lag becomes unknown, the
/// run throttles saying so (the backfill waits), and it goes on once the
/// replica is back. Every row updated once.
async fn replica_fault(eng: Eng, db: &str, verb: &str, undo: &'static str) {
    const ROWS: i64 = 200_000;
    let _g = TOPOLOGY.lock().await;
    let (replica, server, sleep, running) = match eng {
        Eng::Pg => (
            db_common::url("CUTOVER_TEST_PG_REPLICA"),
            "pg-replica",
            "SELECT pg_sleep(8);\n",
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(8)%' AND state = 'active' AND pid <> pg_backend_pid()",
        ),
        Eng::My => (
            db_common::url("CUTOVER_TEST_MY_REPLICA"),
            "my-replica",
            "SELECT SLEEP(8);\n",
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP(8)%'",
        ),
    };
    let Some(replica) = replica else { return };
    let Some(dsn) = fresh_table(eng, db, ROWS).await else {
        return;
    };
    let p = Project::new(
        eng,
        &dsn,
        Some(&replica),
        &[("V1__sleep.sql", sleep), ("V2__kf.sql", BACKFILL)],
    );
    let mut client = p.spawn_run();
    let d = dsn.clone();
    until(
        &mut client,
        &p,
        "the statement before the backfill",
        async || try_int(eng, &d, running).await == Some(1),
    )
    .await;
    let at = p.records().len();
    let mut broken = Broken::new(verb, undo, server);
    until(&mut client, &p, "a throttle on unknown lag", async || {
        p.records()[at..].iter().any(|r| {
            matches!(&r.event, Event::Throttled { reason } if reason.contains("r1 lag unknown"))
        })
    })
    .await;
    let during = updated(eng, &dsn).await.unwrap_or(0);
    assert!(during < ROWS, "the backfill ended before the throttle");
    broken.restore();
    let code = p.wait(client).await;
    let out = p.output();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("SUCCEEDED"), "{out}");
    assert!(out.contains("r1 lag unknown"), "{out}");
    let recs = p.records();
    let throttled = recs
        .iter()
        .skip(at)
        .position(|r| {
            matches!(&r.event, Event::Throttled { reason } if reason.contains("r1 lag unknown"))
        })
        .map(|i| i + at)
        .unwrap_or(at);
    assert!(
        recs[throttled..]
            .iter()
            .any(|r| matches!(r.event, Event::Unthrottled)),
        "the throttle ended once the replica was back"
    );
    assert_eq!(not_once(eng, &dsn).await, 0, "every row updated once");
    p.verify();
}

#[tokio::test]
async fn pg_replica_stopped_mid_backfill_throttles_then_finishes() {
    replica_fault(Eng::Pg, "faults_rstop", "stop", "start").await;
}

#[tokio::test]
async fn pg_replica_frozen_mid_backfill_throttles_then_finishes() {
    replica_fault(Eng::Pg, "faults_rfreeze", "freeze", "thaw").await;
}

#[tokio::test]
async fn mariadb_replica_stopped_mid_backfill_throttles_then_finishes() {
    replica_fault(Eng::My, "faults_rstop", "stop", "start").await;
}

#[tokio::test]
async fn mariadb_replica_frozen_mid_backfill_throttles_then_finishes() {
    replica_fault(Eng::My, "faults_rfreeze", "freeze", "thaw").await;
}
