//! kill -9 mid-backfill, both engines: a process running the native executor
//! on a non-idempotent backfill (`SET c = c + 1`) is killed with SIGKILL
//! while chunks commit; a new executor recovers (says which keys committed
//! before the crash) and resumes from the next key. Every row ends updated
//! exactly once, and the closing summary names the ranges before and after.

mod db_common;
use db_common::{pg, url};

use cutover::exec::native_mysql::{MyExecOptions, NativeMysql};
use cutover::exec::native_pg::{NativePg, PgExecOptions};
use cutover::exec::{ExecJob, ExecUpdate, Executor, OutcomeKind};
use cutover::migrate::{LoadOptions, Migration, load_paths};
use cutover::model::{Engine, Risk};
use cutover::policy::Environment;
use cutover::policy::approvals::Binding;
use cutover::run::RunSpec;
use mysql_async::prelude::*;
use std::path::Path;
use std::time::Duration;
use tokio::sync::mpsc;

const CHILD_DIR: &str = "CUTOVER_TEST_KILL9_DIR";

/// The MariaDB tests run one at a time: the kill test waits until no other
/// session of the test user is left before counting rows.
static MY_SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const ROWS: i64 = 200_000;
const MIGRATION: &str =
    "-- cutover: backfill table=bk9 set=\"c = c + 1\" key=id batch=50ms\nSELECT 1;\n";

fn migrations(dir: &Path, engine: Engine) -> Vec<Migration> {
    load_paths(
        &[dir.join("mig")],
        &LoadOptions {
            engine: Some(engine),
            format: None,
        },
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn job(dir: &Path, run: &str) -> ExecJob {
    ExecJob {
        run: run.into(),
        spec: RunSpec {
            binding: Binding {
                plan_digest: "9".repeat(64),
                target: "t".into(),
            },
            environment: Environment::Staging,
            risk: Risk::Medium,
            versions: vec![],
            estimated_seconds: 1.0,
            tables: vec!["bk9".into()],
            executor: "native".into(),
        },
        run_dir: dir.join("run"),
        postpone_cut_over: false,
        chunk_size: Some(100),
        max_lag_millis: None,
        running: None,
    }
}

fn pg_dsn(admin: &str) -> String {
    let (base, _) = admin.rsplit_once('/').unwrap_or((admin, ""));
    format!("{base}/cutover_kill9")
}

fn executor(engine: Engine, dir: &Path) -> Box<dyn Executor> {
    let ms = migrations(dir, engine);
    match engine {
        Engine::Postgres => {
            let dsn = pg_dsn(&url("CUTOVER_TEST_PG_PRIMARY").unwrap_or_default());
            Box::new(NativePg::new(
                &dsn,
                ms,
                PgExecOptions {
                    record_history: false,
                    ..PgExecOptions::default()
                },
            ))
        }
        Engine::Mysql => {
            let dsn = url("CUTOVER_TEST_MY_PRIMARY").unwrap_or_default();
            Box::new(NativeMysql::new(
                &dsn,
                ms,
                MyExecOptions {
                    record_history: false,
                    ..MyExecOptions::default()
                },
            ))
        }
    }
}

/// Child mode: runs the backfill until killed.
async fn child(engine: Engine) {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let dir = Path::new(&dir);
    let mut ex = executor(engine, dir);
    let (tx, mut rx) = mpsc::channel(4096);
    ex.start(job(dir, "r1"), tx)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    while let Some(u) = rx.recv().await {
        if let ExecUpdate::Finished(o) = u {
            eprintln!("child finished before the kill: {o:?}");
            return;
        }
    }
}

#[tokio::test]
#[ignore = "child process of backfill_killed_mid_run_on_postgres_resumes_after_the_last_committed_chunk"]
async fn child_pg() {
    child(Engine::Postgres).await;
}

#[tokio::test]
#[ignore = "child process of backfill_killed_mid_run_on_mariadb_resumes_after_the_marker"]
async fn child_my() {
    child(Engine::Mysql).await;
}

/// Starts the child, waits until `progressed` says chunks have committed,
/// and kills it with SIGKILL while it still runs.
async fn kill_mid_backfill(
    dir: &Path,
    name: &str,
    mut progressed: impl AsyncFnMut() -> bool,
) -> i64 {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    let mut kid = std::process::Command::new(exe)
        .args(["--exact", name, "--ignored", "--nocapture"])
        .env(CHILD_DIR, dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut polls = 0i64;
    loop {
        assert!(
            kid.try_wait().unwrap_or(None).is_none(),
            "the child ended before it could be killed"
        );
        if progressed().await {
            break;
        }
        polls += 1;
        assert!(polls < 6000, "the backfill never progressed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        kid.try_wait().unwrap_or(None).is_none(),
        "the child ended before it could be killed"
    );
    kid.kill().unwrap_or_else(|e| panic!("{e}")); // SIGKILL
    let _ = kid.wait();
    polls
}

/// Recovers and resumes with a new executor; returns the recovery detail
/// and the closing summary.
async fn resume(engine: Engine, dir: &Path) -> (String, String) {
    let mut ex = executor(engine, dir);
    let (tx, mut rx) = mpsc::channel(65536);
    let st = ex
        .recover(job(dir, "r1"), tx.clone())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let recovered = st.progress.and_then(|p| p.detail).unwrap_or_default();
    ex.start(job(dir, "r2"), tx)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut last = String::new();
    loop {
        match rx.recv().await {
            Some(ExecUpdate::Status(s)) => {
                if let Some(d) = s.progress.and_then(|p| p.detail) {
                    last = d;
                }
            }
            Some(ExecUpdate::Finished(o)) => {
                assert_eq!(o.kind, OutcomeKind::Succeeded, "{o:?}");
                return (recovered, last);
            }
            Some(_) => {}
            None => panic!("the executor ended without an outcome"),
        }
    }
}

fn write_migration(dir: &Path) {
    std::fs::create_dir_all(dir.join("mig")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("mig/V1__bk9.sql"), MIGRATION).unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn backfill_killed_mid_run_on_postgres_resumes_after_the_last_committed_chunk() {
    let Some(admin) = url("CUTOVER_TEST_PG_PRIMARY") else {
        return;
    };
    let a = pg(&admin).await;
    a.batch_execute("DROP DATABASE IF EXISTS cutover_kill9 WITH (FORCE)")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    a.batch_execute("CREATE DATABASE cutover_kill9")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let c = pg(&pg_dsn(&admin)).await;
    c.batch_execute(&format!(
        "CREATE TABLE bk9 (id int PRIMARY KEY, c int NOT NULL DEFAULT 0);
         INSERT INTO bk9 (id) SELECT g FROM generate_series(1, {ROWS}) g;"
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write_migration(dir.path());
    let c2 = &c;
    kill_mid_backfill(dir.path(), "child_pg", async || {
        let n: i64 = c2
            .query_one("SELECT count(*) FROM bk9 WHERE c > 0", &[])
            .await
            .map(|r| r.get(0))
            .unwrap_or(0);
        n >= 5_000
    })
    .await;
    // A COMMIT already on the wire when the process died still lands: wait
    // for the server to end the killed session before counting.
    for _ in 0..500 {
        let open: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'cutover' AND datname = 'cutover_kill9'",
                &[],
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .get(0);
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before: i64 = c
        .query_one("SELECT count(*) FROM bk9 WHERE c > 0", &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .get(0);
    assert!(before < ROWS, "killed after the backfill ended: {before}");
    let journal = std::fs::read_to_string(
        dir.path()
            .join("run")
            .join(cutover::exec::resume::JOURNAL_FILE),
    )
    .unwrap_or_default();
    assert!(journal.contains("\"chunk\""), "{journal}");

    let (recovered, summary) = resume(Engine::Postgres, dir.path()).await;
    assert!(
        recovered.contains(&format!(
            "keys 1..{before} committed before the interruption"
        )),
        "{recovered} (rows updated before the kill: {before})"
    );
    assert!(
        summary.contains(&format!(
            "keys 1..{before} before the interruption, keys {}..{ROWS} after it ({} rows)",
            before + 1,
            ROWS - before
        )),
        "{summary}"
    );
    let r = c
        .query_one(
            "SELECT count(*) FILTER (WHERE c = 1), count(*) FILTER (WHERE c <> 1) FROM bk9",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (once, other): (i64, i64) = (r.get(0), r.get(1));
    assert_eq!(
        (once, other),
        (ROWS, 0),
        "every row updated exactly once ({other} updated twice or never)"
    );
    drop(c);
    a.batch_execute("DROP DATABASE IF EXISTS cutover_kill9 WITH (FORCE)")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn backfill_killed_mid_run_on_mariadb_resumes_after_the_marker() {
    let Some(dsn) = url("CUTOVER_TEST_MY_PRIMARY") else {
        return;
    };
    let _g = MY_SERIAL.lock().await;
    let opts = mysql_async::Opts::from_url(&dsn).unwrap_or_else(|e| panic!("{e}"));
    let mut c = mysql_async::Conn::new(opts)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.query_drop("DROP TABLE IF EXISTS bk9, cutover_backfill_marker")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.query_drop("CREATE TABLE bk9 (id int PRIMARY KEY, c int NOT NULL DEFAULT 0)")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.query_drop(format!(
        "INSERT INTO bk9 (id) SELECT seq FROM seq_1_to_{ROWS}"
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write_migration(dir.path());
    let watch = std::sync::Arc::new(tokio::sync::Mutex::new(
        mysql_async::Conn::new(mysql_async::Opts::from_url(&dsn).unwrap_or_else(|e| panic!("{e}")))
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    ));
    let w = &watch;
    kill_mid_backfill(dir.path(), "child_my", async || {
        let n: Option<i64> = w
            .lock()
            .await
            .query_first("SELECT COUNT(*) FROM bk9 WHERE c > 0")
            .await
            .unwrap_or(None);
        n.unwrap_or(0) >= 5_000
    })
    .await;
    // The killed sessions end (an open chunk rolls back, a COMMIT already
    // on the wire lands) before counting.
    if let Ok(w) = std::sync::Arc::try_unwrap(watch) {
        let _ = w.into_inner().disconnect().await;
    }
    let user = mysql_async::Opts::from_url(&dsn)
        .ok()
        .and_then(|o| o.user().map(str::to_string))
        .unwrap_or_default();
    // Count only once the killed sessions are gone: a count read before the
    // last check can miss a COMMIT that lands in between.
    let mut before = -1;
    for _ in 0..500 {
        let open: Option<i64> = c
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND USER = ? AND COMMAND <> 'Daemon'",
                (user.clone(),),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        if open == Some(0) {
            let n: Option<i64> = c
                .query_first("SELECT COUNT(*) FROM bk9 WHERE c > 0")
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            before = n.unwrap_or(0);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sessions: Vec<(u64, String, String, Option<String>)> = c
        .exec(
            "SELECT ID, USER, COMMAND, INFO FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND USER = ?",
            (user.clone(),),
        )
        .await
        .unwrap_or_default();
    assert!(
        before > 0 && before < ROWS,
        "rows updated before the kill: {before}; sessions: {sessions:?}"
    );
    let marker: Option<i64> = c
        .query_first("SELECT last_key FROM cutover_backfill_marker")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(marker, Some(before), "the marker commits with its chunk");

    let (recovered, summary) = resume(Engine::Mysql, dir.path()).await;
    assert!(
        recovered.contains(&format!(
            "keys 1..{before} committed before the interruption"
        )),
        "{recovered}"
    );
    assert!(
        summary.contains(&format!(
            "keys 1..{before} before the interruption, keys {}..{ROWS} after it ({} rows)",
            before + 1,
            ROWS - before
        )),
        "{summary}"
    );
    let r: Option<(i64, i64)> = c
        .query_first("SELECT CAST(SUM(c = 1) AS SIGNED), CAST(SUM(c <> 1) AS SIGNED) FROM bk9")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        r,
        Some((ROWS, 0)),
        "every row updated exactly once (second figure: updated twice or never)"
    );
    let marker_left: Option<i64> = c
        .query_first("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'cutover_backfill_marker'")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        marker_left,
        Some(0),
        "the marker table is dropped at the end"
    );
    c.query_drop("DROP TABLE IF EXISTS bk9")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = c.disconnect().await;
}

/// The executor's session is terminated twice (as by a primary restart or a
/// DBA's `pg_terminate_backend`): once mid-backfill, once mid
/// `CREATE INDEX CONCURRENTLY`. The executor reconnects, settles the lost
/// chunk by its journaled transaction id, drops the INVALID index the broken
/// build left, builds it again, and finishes: every row updated once.
#[tokio::test]
async fn executor_session_killed_mid_backfill_and_mid_build_reconnects_and_finishes() {
    let Some(admin) = url("CUTOVER_TEST_PG_PRIMARY") else {
        return;
    };
    let a = pg(&admin).await;
    a.batch_execute("DROP DATABASE IF EXISTS cutover_fault WITH (FORCE)")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    a.batch_execute("CREATE DATABASE cutover_fault")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (base, _) = admin.rsplit_once('/').unwrap_or((&admin, ""));
    let dsn = format!("{base}/cutover_fault");
    let c = pg(&dsn).await;
    c.batch_execute(&format!(
        "CREATE TABLE bkf (id int PRIMARY KEY, c int NOT NULL DEFAULT 0, v text);
         INSERT INTO bkf (id, v) SELECT g, md5(g::text) FROM generate_series(1, {ROWS}) g;"
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(dir.path().join("mig")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("mig/V1__bkf.sql"),
        "-- cutover: backfill table=bkf set=\"c = c + 1\" key=id batch=50ms\nCREATE INDEX CONCURRENTLY bkf_v ON bkf (v, c);\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut ex = NativePg::new(
        &dsn,
        migrations(dir.path(), Engine::Postgres),
        PgExecOptions {
            record_history: false,
            reconnect_backoff: Duration::from_millis(100),
            progress_interval: Duration::from_millis(50),
            ..PgExecOptions::default()
        },
    );
    let (tx, mut rx) = mpsc::channel(65536);
    ex.start(job(dir.path(), "rf"), tx)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let kill = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'cutover' AND datname = 'cutover_fault'";
    let (mut killed_backfill, mut killed_build) = (false, false);
    let mut reconnecting = Vec::new();
    let outcome = loop {
        match rx.recv().await {
            Some(ExecUpdate::Status(s)) => {
                let detail = s.progress.and_then(|p| p.detail).unwrap_or_default();
                if let cutover::exec::ExecPhase::Throttled { reason } = &s.phase
                    && reason.contains("reconnecting")
                {
                    reconnecting.push(reason.clone());
                }
                if !killed_backfill && detail.contains("backfill bkf (key") {
                    let n: i64 = c
                        .query_one("SELECT count(*) FROM bkf WHERE c > 0", &[])
                        .await
                        .map(|r| r.get(0))
                        .unwrap_or(0);
                    if n >= 5_000 {
                        killed_backfill = true;
                        c.batch_execute(kill)
                            .await
                            .unwrap_or_else(|e| panic!("{e}"));
                    }
                }
                if killed_backfill && !killed_build && detail.contains("CREATE INDEX") {
                    killed_build = true;
                    c.batch_execute(kill)
                        .await
                        .unwrap_or_else(|e| panic!("{e}"));
                }
            }
            Some(ExecUpdate::Finished(o)) => break o,
            Some(_) => {}
            None => panic!("the executor ended without an outcome"),
        }
    };
    assert!(killed_backfill && killed_build, "both kills landed");
    assert_eq!(outcome.kind, OutcomeKind::Succeeded, "{outcome:?}");
    assert!(
        reconnecting.len() >= 2,
        "the reconnects were shown: {reconnecting:?}"
    );
    let r = c
        .query_one(
            "SELECT count(*) FILTER (WHERE c = 1), count(*) FILTER (WHERE c <> 1) FROM bkf",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (once, other): (i64, i64) = (r.get(0), r.get(1));
    assert_eq!((once, other), (ROWS, 0), "every row updated exactly once");
    let valid: Vec<bool> = c
        .query(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid WHERE x.relname LIKE 'bkf_v%'",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(valid, vec![true], "one valid index, no INVALID leftover");
    drop(c);
    a.batch_execute("DROP DATABASE IF EXISTS cutover_fault WITH (FORCE)")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

/// MariaDB: the executor's connection is `KILL`ed mid-backfill. The
/// executor reconnects, asks the marker row whether the lost chunk landed,
/// and finishes: every row updated once.
#[tokio::test]
async fn mariadb_connection_killed_mid_backfill_reconnects_and_finishes() {
    let Some(dsn) = url("CUTOVER_TEST_MY_PRIMARY") else {
        return;
    };
    let _g = MY_SERIAL.lock().await;
    let o = mysql_async::Opts::from_url(&dsn).unwrap_or_else(|e| panic!("{e}"));
    let mut c = mysql_async::Conn::new(o)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.query_drop("DROP TABLE IF EXISTS bkm")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.query_drop("CREATE TABLE bkm (id int PRIMARY KEY, c int NOT NULL DEFAULT 0)")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.query_drop(format!(
        "INSERT INTO bkm (id) SELECT seq FROM seq_1_to_{ROWS}"
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(dir.path().join("mig")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("mig/V1__bkm.sql"),
        "-- cutover: backfill table=bkm set=\"c = c + 1\" key=id batch=50ms\nSELECT 1;\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut ex = NativeMysql::new(
        &dsn,
        migrations(dir.path(), Engine::Mysql),
        MyExecOptions {
            record_history: false,
            reconnect_backoff: Duration::from_millis(100),
            ..MyExecOptions::default()
        },
    );
    let (tx, mut rx) = mpsc::channel(65536);
    ex.start(job(dir.path(), "rm"), tx)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Once chunks are committing, a watcher on its own connection polls the
    // processlist every few milliseconds and kills the executor's connection
    // while it runs a chunk's UPDATE (a status-driven check missed the short
    // statements under load).
    let started = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let killer = tokio::spawn({
        let started = started.clone();
        let o = mysql_async::Opts::from_url(&dsn).unwrap_or_else(|e| panic!("{e}"));
        async move {
            let mut k = mysql_async::Conn::new(o).await.ok()?;
            while !started.load(std::sync::atomic::Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            loop {
                let ids: Vec<u64> = k
                    .query("SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'UPDATE bkm%'")
                    .await
                    .unwrap_or_default();
                if let Some(id) = ids.first()
                    && k.query_drop(format!("KILL CONNECTION {id}")).await.is_ok()
                {
                    return Some(*id);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    });
    let mut reconnecting = false;
    let outcome = loop {
        match rx.recv().await {
            Some(ExecUpdate::Status(s)) => {
                if let cutover::exec::ExecPhase::Throttled { reason } = &s.phase {
                    reconnecting |= reason.contains("reconnecting");
                }
                let detail = s.progress.and_then(|p| p.detail).unwrap_or_default();
                if detail.contains("backfill bkm (key") {
                    started.store(true, std::sync::atomic::Ordering::SeqCst);
                }
            }
            Some(ExecUpdate::Finished(o)) => break o,
            Some(_) => {}
            None => panic!("the executor ended without an outcome"),
        }
    };
    let killed = if killer.is_finished() {
        killer.await.ok().flatten().is_some()
    } else {
        killer.abort();
        false
    };
    assert!(killed, "the kill landed mid-chunk");
    assert_eq!(outcome.kind, OutcomeKind::Succeeded, "{outcome:?}");
    assert!(reconnecting, "the reconnect was shown");
    let r: Option<(i64, i64)> = c
        .query_first("SELECT CAST(SUM(c = 1) AS SIGNED), CAST(SUM(c <> 1) AS SIGNED) FROM bkm")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r, Some((ROWS, 0)), "every row updated exactly once");
    c.query_drop("DROP TABLE IF EXISTS bkm")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = c.disconnect().await;
}

/// MariaDB: a pause asked for during an in-place ALTER says it takes effect
/// when the statement ends, and the executor is paused once it has.
#[tokio::test]
async fn mariadb_pause_during_an_alter_takes_effect_when_it_ends() {
    let Some(dsn) = url("CUTOVER_TEST_MY_PRIMARY") else {
        return;
    };
    let _g = MY_SERIAL.lock().await;
    let o = mysql_async::Opts::from_url(&dsn).unwrap_or_else(|e| panic!("{e}"));
    let mut c = mysql_async::Conn::new(o)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.query_drop("DROP TABLE IF EXISTS pza")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.query_drop("CREATE TABLE pza (id int PRIMARY KEY, v varchar(64))")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.query_drop("INSERT INTO pza SELECT seq, md5(seq) FROM seq_1_to_300000")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(dir.path().join("mig")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("mig/V1__pza.sql"),
        "ALTER TABLE pza FORCE;\nALTER TABLE pza ADD COLUMN w int;\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut ex = NativeMysql::new(
        &dsn,
        migrations(dir.path(), Engine::Mysql),
        MyExecOptions {
            record_history: false,
            progress_interval: Duration::from_millis(50),
            copy_max_rows: 10_000_000,
            ..MyExecOptions::default()
        },
    );
    let (tx, mut rx) = mpsc::channel(65536);
    ex.start(job(dir.path(), "rp"), tx)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (mut asked, mut told, mut paused) = (false, false, false);
    let mut console = cutover::tui::Console::default();
    console.state.phase = cutover::run::Phase::Running;
    let mut console_told = false;
    let outcome = loop {
        match rx.recv().await {
            Some(ExecUpdate::Status(s)) => {
                let detail = s
                    .progress
                    .as_ref()
                    .and_then(|p| p.detail.clone())
                    .unwrap_or_default();
                if !asked
                    && detail.contains("step 1/")
                    && s.phase == cutover::exec::ExecPhase::Copying
                {
                    let running: Option<i64> = c
                        .query_first("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'ALTER TABLE pza FORCE%'")
                        .await
                        .unwrap_or(None);
                    if running == Some(1) {
                        asked = true;
                        ex.control(cutover::exec::Control::Pause)
                            .await
                            .unwrap_or_else(|e| panic!("{e}"));
                    }
                }
                told |= detail.contains("takes effect when the running statement ends");
                // What the console shows from the same statuses (the run
                // core would have recorded the pause request).
                console.state.pause_pending = asked && !paused;
                console.apply(&cutover::supervisor::ServerMsg::Sample {
                    sample: Box::new(cutover::run::Sample::Progress { status: s.clone() }),
                });
                if told && !paused {
                    let shown = console.throttle_reason().unwrap_or_default();
                    console_told |= shown.contains("takes effect when the running statement ends");
                }
                if s.phase == cutover::exec::ExecPhase::Paused && !paused {
                    paused = true;
                    // The ALTER finished before the pause held; the next one waits.
                    let cols: Option<i64> = c
                        .query_first("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'pza' AND COLUMN_NAME = 'w'")
                        .await
                        .unwrap_or(None);
                    assert_eq!(cols, Some(0), "nothing ran while paused");
                    ex.control(cutover::exec::Control::Resume)
                        .await
                        .unwrap_or_else(|e| panic!("{e}"));
                }
            }
            Some(ExecUpdate::Finished(o)) => break o,
            // Other updates (lag, executor notes) where the executor sends them.
            #[allow(unreachable_patterns)]
            Some(_) => {}
            None => panic!("the executor ended without an outcome"),
        }
    };
    assert!(asked, "the pause was sent while the ALTER ran");
    assert!(told, "the pause said when it takes effect");
    assert!(
        console_told,
        "the console showed when the pause takes effect"
    );
    assert!(
        console.log.iter().any(|l| l
            .text
            .contains("takes effect when the running statement ends")),
        "the console's log says it"
    );
    assert!(paused, "the executor paused after the statement");
    assert_eq!(outcome.kind, OutcomeKind::Succeeded, "{outcome:?}");
    c.query_drop("DROP TABLE IF EXISTS pza")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = c.disconnect().await;
}
