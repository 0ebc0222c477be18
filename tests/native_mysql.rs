//! The native MySQL/MariaDB executor against the throwaway MariaDB primary.

mod db_common;
use db_common::url;

use cutover::exec::native_mysql::{MyExecOptions, NativeMysql};
use cutover::exec::{Control, ExecJob, ExecPhase, ExecUpdate, Executor, OutcomeKind};
use cutover::migrate::{LoadOptions, Migration, load_paths};
use cutover::model::{Engine, Risk};
use cutover::policy::Environment;
use cutover::policy::approvals::Binding;
use cutover::run::RunSpec;
use mysql_async::prelude::*;
use std::time::Duration;
use tokio::sync::mpsc;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn migrations(dir: &std::path::Path, name: &str, text: &str) -> Vec<Migration> {
    std::fs::write(dir.join(name), text).unwrap();
    load_paths(
        &[dir.to_path_buf()],
        &LoadOptions {
            engine: Some(Engine::Mysql),
            format: None,
        },
    )
    .unwrap()
}

fn job(dir: &std::path::Path) -> ExecJob {
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
            tables: vec!["ladder".into()],
            executor: "native".into(),
        },
        run_dir: dir.to_path_buf(),
        postpone_cut_over: false,
        chunk_size: None,
        max_lag_millis: None,
        running: None,
    }
}

fn opts() -> MyExecOptions {
    MyExecOptions {
        progress_interval: Duration::from_millis(100),
        copy_max_rows: 100,
        record_history: false,
        ..MyExecOptions::default()
    }
}

async fn run(dsn: &str, sql: &str, abort_on_progress: bool) -> (Vec<String>, OutcomeKind) {
    let dir = tempfile::tempdir().unwrap();
    let ms = migrations(dir.path(), "V1__m.sql", sql);
    let mut ex = NativeMysql::new(dsn, ms, opts());
    let (tx, mut rx) = mpsc::channel(1024);
    ex.start(job(dir.path()), tx).await.unwrap();
    let mut details = Vec::new();
    let mut aborted = false;
    loop {
        match rx.recv().await.unwrap() {
            ExecUpdate::Status(s) => {
                let d = s
                    .progress
                    .and_then(|p| {
                        if p.percent.is_some() {
                            p.detail.map(|d| format!("% {d}"))
                        } else {
                            p.detail
                        }
                    })
                    .unwrap_or_default();
                if abort_on_progress && !aborted && d.starts_with('%') {
                    aborted = true;
                    ex.control(Control::Abort { table: None }).await.unwrap();
                }
                details.push(d);
            }
            ExecUpdate::Lag(_) | ExecUpdate::Executor { .. } => {}
            ExecUpdate::Finished(o) => return (details, o.kind),
        }
    }
}

#[tokio::test]
async fn ladder_picks_the_weakest_lock_and_refuses_a_large_copy() {
    let Some(dsn) = url("CUTOVER_TEST_MY_PRIMARY") else {
        return;
    };
    let _g = SERIAL.lock().await;
    let mut c = mysql_async::Conn::new(mysql_async::Opts::from_url(&dsn).unwrap())
        .await
        .unwrap();
    c.query_drop("DROP TABLE IF EXISTS ladder").await.unwrap();
    c.query_drop("CREATE TABLE ladder (id int PRIMARY KEY, c int)")
        .await
        .unwrap();
    c.query_drop("INSERT INTO ladder SELECT seq, seq FROM seq_1_to_1000")
        .await
        .unwrap();
    c.query_drop("ANALYZE TABLE ladder").await.unwrap();

    let (d, k) = run(&dsn, "ALTER TABLE ladder ADD COLUMN x int;\n", false).await;
    assert_eq!(k, OutcomeKind::Succeeded);
    assert!(
        d.iter()
            .any(|d| d.contains("applied with ALGORITHM=INSTANT")),
        "{d:?}"
    );

    let (d, k) = run(&dsn, "ALTER TABLE ladder ADD INDEX ladder_c (c);\n", false).await;
    assert_eq!(k, OutcomeKind::Succeeded);
    assert!(
        d.iter()
            .any(|d| d.contains("applied with ALGORITHM=NOCOPY")),
        "{d:?}"
    );

    let (_, k) = run(&dsn, "ALTER TABLE ladder MODIFY c BIGINT;\n", false).await;
    match k {
        OutcomeKind::Failed { error } => assert!(
            error.contains("refusing to copy natively") && error.contains("gh-ost"),
            "{error}"
        ),
        other => panic!("{other:?}"),
    }
    let ty: String = c
        .query_first("SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'ladder' AND COLUMN_NAME = 'c'")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ty, "int", "the table was not copied");
}

#[tokio::test]
async fn inplace_rebuild_reports_stage_progress_and_kill_query_aborts() {
    let Some(dsn) = url("CUTOVER_TEST_MY_PRIMARY") else {
        return;
    };
    let _g = SERIAL.lock().await;
    let mut c = mysql_async::Conn::new(mysql_async::Opts::from_url(&dsn).unwrap())
        .await
        .unwrap();
    c.query_drop("UPDATE performance_schema.setup_consumers SET ENABLED = 'YES' WHERE NAME IN ('events_stages_current', 'events_stages_history')").await.unwrap();
    c.query_drop("CREATE TABLE IF NOT EXISTS rebuild (id int PRIMARY KEY, v varchar(64))")
        .await
        .unwrap();
    let n: Option<i64> = c.query_first("SELECT COUNT(*) FROM rebuild").await.unwrap();
    if n != Some(1_000_000) {
        c.query_drop("TRUNCATE rebuild").await.unwrap();
        c.query_drop("INSERT INTO rebuild SELECT seq, md5(seq) FROM seq_1_to_1000000")
            .await
            .unwrap();
    }
    let (d, k) = run(&dsn, "ALTER TABLE rebuild FORCE;\n", true).await;
    assert_eq!(k, OutcomeKind::Aborted, "{d:?}");
    assert!(
        d.iter()
            .any(|d| d.starts_with("% ") && d.contains("stage/")),
        "{d:?}"
    );
}

/// A migration half applied by a run that died (two of its four DDL
/// statements visible, no journal): `recover` finds the half-applied state
/// from the live schema and a new start runs only the rest, recording the
/// migration once; a statement the schema cannot judge refuses to resume.
#[tokio::test]
async fn half_applied_migration_is_detected_and_resumed() {
    let Some(admin) = url("CUTOVER_TEST_MY_PRIMARY") else {
        return;
    };
    let _g = SERIAL.lock().await;
    let mut c = mysql_async::Conn::new(mysql_async::Opts::from_url(&admin).unwrap())
        .await
        .unwrap();
    c.query_drop("DROP DATABASE IF EXISTS cutover_resume; CREATE DATABASE cutover_resume")
        .await
        .unwrap();
    let (base, _) = admin.rsplit_once('/').unwrap();
    let dsn = format!("{base}/cutover_resume");
    let dir = tempfile::tempdir().unwrap();
    let mig = dir.path().join("mig");
    std::fs::create_dir(&mig).unwrap();
    let ms = migrations(
        &mig,
        "V1__m.sql",
        "CREATE TABLE m_a (id int PRIMARY KEY);\nALTER TABLE m_a ADD COLUMN b int;\nCREATE INDEX m_a_b ON m_a (b);\nALTER TABLE m_a ADD COLUMN c int;\n",
    );
    // What the dead run got done: it had started, and its journal was lost.
    std::fs::write(
        dir.path().join(cutover::exec::resume::JOURNAL_FILE),
        "{\"kind\":\"started\"}\n",
    )
    .unwrap();
    c.query_drop("CREATE TABLE cutover_resume.m_a (id int PRIMARY KEY); ALTER TABLE cutover_resume.m_a ADD COLUMN b int")
        .await
        .unwrap();
    let o = MyExecOptions {
        record_history: true,
        ..opts()
    };
    let mut ex = NativeMysql::new(&dsn, ms.clone(), o.clone());
    let (tx, mut rx) = mpsc::channel(1024);
    let j = job(dir.path());
    let st = ex.recover(j.clone(), tx.clone()).await.unwrap();
    let detail = st.progress.unwrap().detail.unwrap();
    assert!(detail.contains("by the live database"), "{detail}");
    assert!(detail.contains("resuming at step"), "{detail}");
    ex.start(j.clone(), tx).await.unwrap();
    let outcome = loop {
        if let ExecUpdate::Finished(o) = rx.recv().await.unwrap() {
            break o;
        }
    };
    assert_eq!(outcome.kind, OutcomeKind::Succeeded, "{outcome:?}");
    let n: Option<u64> = c
        .query_first("SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = 'cutover_resume' AND TABLE_NAME = 'm_a' AND INDEX_NAME = 'm_a_b'")
        .await
        .unwrap();
    assert_eq!(n, Some(1));
    let cols: Option<u64> = c
        .query_first("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'cutover_resume' AND TABLE_NAME = 'm_a'")
        .await
        .unwrap();
    assert_eq!(cols, Some(3));
    let rec: Option<u64> = c
        .query_first(
            "SELECT COUNT(*) FROM cutover_resume.flyway_schema_history WHERE version = '1'",
        )
        .await
        .unwrap();
    assert_eq!(rec, Some(1), "recorded exactly once");

    // A second start of the same plan: everything is known applied; nothing runs twice.
    let mut ex = NativeMysql::new(&dsn, ms, o.clone());
    let (tx, mut rx) = mpsc::channel(1024);
    ex.start(j, tx).await.unwrap();
    let outcome = loop {
        if let ExecUpdate::Finished(o) = rx.recv().await.unwrap() {
            break o;
        }
    };
    assert_eq!(outcome.kind, OutcomeKind::Succeeded, "{outcome:?}");

    // DML after a crash: the schema cannot tell, so resuming is refused.
    let dir2 = tempfile::tempdir().unwrap();
    let ms = migrations(
        dir2.path(),
        "V2__d.sql",
        "INSERT INTO m_a VALUES (1, 1, 1);\n",
    );
    std::fs::write(
        dir2.path().join(cutover::exec::resume::JOURNAL_FILE),
        "{\"kind\":\"started\"}\n",
    )
    .unwrap();
    let mut ex = NativeMysql::new(
        &dsn,
        ms,
        MyExecOptions {
            record_history: false,
            ..o
        },
    );
    let (tx, _rx) = mpsc::channel(1024);
    let e = ex
        .recover(job(dir2.path()), tx)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("V2__d.sql:1: cannot tell from the live schema"),
        "{e}"
    );
    c.query_drop("DROP DATABASE IF EXISTS cutover_resume")
        .await
        .unwrap();
}

/// Before start: gh-ost/pt-osc leftovers on the run's table refuse the run
/// with the cleanup; after a clean start the stage consumer progress needs
/// is on (the test turns it off first).
#[tokio::test]
async fn earlier_tool_leftovers_refuse_and_stage_consumers_are_enabled() {
    let Some(dsn) = url("CUTOVER_TEST_MY_PRIMARY") else {
        return;
    };
    let _g = SERIAL.lock().await;
    let mut c = mysql_async::Conn::new(mysql_async::Opts::from_url(&dsn).unwrap())
        .await
        .unwrap();
    c.query_drop(
        "DROP TABLE IF EXISTS lo_t, _lo_t_gho; CREATE TABLE lo_t (id int PRIMARY KEY); CREATE TABLE _lo_t_gho (id int PRIMARY KEY);
         UPDATE performance_schema.setup_consumers SET ENABLED = 'NO' WHERE NAME = 'events_stages_current'",
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ms = migrations(
        dir.path(),
        "V1__lo.sql",
        "ALTER TABLE lo_t ADD COLUMN x int;\n",
    );
    let mut j = job(dir.path());
    j.spec.tables = vec!["lo_t".into()];
    let outcome = async |ms: Vec<Migration>, j: ExecJob| {
        let mut ex = NativeMysql::new(&dsn, ms, opts());
        let (tx, mut rx) = mpsc::channel(1024);
        ex.start(j, tx).await.unwrap();
        loop {
            if let ExecUpdate::Finished(o) = rx.recv().await.unwrap() {
                break o;
            }
        }
    };
    let o = outcome(ms.clone(), j.clone()).await;
    match &o.kind {
        OutcomeKind::Failed { error } => assert!(
            error.contains("._lo_t_gho")
                && error.contains("DROP TABLE IF EXISTS `test`.`_lo_t_gho`;"),
            "{error}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
    c.query_drop("DROP TABLE _lo_t_gho").await.unwrap();
    let o = outcome(ms, j).await;
    assert_eq!(o.kind, OutcomeKind::Succeeded, "{o:?}");
    let on: Option<String> = c
        .query_first("SELECT ENABLED FROM performance_schema.setup_consumers WHERE NAME = 'events_stages_current'")
        .await
        .unwrap();
    assert_eq!(on.as_deref(), Some("YES"));
    c.query_drop("DROP TABLE lo_t").await.unwrap();
}

/// A declared backfill on MariaDB runs in chunks, waits (throttled) while the
/// replica lags over the limit — induced by a read lock held on the replica
/// while the primary writes — and finishes after the lock is released.
#[tokio::test]
async fn backfill_waits_on_replica_lag_and_completes() {
    let (Some(dsn), Some(rdsn)) = (
        url("CUTOVER_TEST_MY_PRIMARY"),
        url("CUTOVER_TEST_MY_REPLICA"),
    ) else {
        return;
    };
    let _g = SERIAL.lock().await;
    let conn = async |u: &str| {
        mysql_async::Conn::new(mysql_async::Opts::from_url(u).unwrap())
            .await
            .unwrap()
    };
    let mut c = conn(&dsn).await;
    c.query_drop(
        "DROP TABLE IF EXISTS bfm; CREATE TABLE bfm (id int PRIMARY KEY, c int);
         INSERT INTO bfm (id) SELECT seq FROM seq_1_to_20000;
         CREATE TABLE IF NOT EXISTS lag_probe (id int AUTO_INCREMENT PRIMARY KEY, v int)",
    )
    .await
    .unwrap();
    let mut locker = conn(&rdsn).await;
    let mut watcher = conn(&rdsn).await;
    // Wait until the replica has the table, then hold it back.
    loop {
        let n: Option<u64> = watcher
            .query_first("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'test' AND TABLE_NAME = 'bfm'")
            .await
            .unwrap();
        if n == Some(1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    locker
        .query_drop("FLUSH TABLES WITH READ LOCK")
        .await
        .unwrap();
    let writer_dsn = dsn.clone();
    let writer = tokio::spawn(async move {
        let mut w = mysql_async::Conn::new(mysql_async::Opts::from_url(&writer_dsn).unwrap())
            .await
            .unwrap();
        loop {
            let _ = w.query_drop("INSERT INTO lag_probe (v) VALUES (1)").await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut waits = 0;
    loop {
        let row: mysql_async::Row = watcher
            .query_first("SHOW SLAVE STATUS")
            .await
            .unwrap()
            .unwrap();
        let sbm = row.get::<Option<u64>, _>("Seconds_Behind_Master").flatten();
        if sbm.is_some_and(|v| v >= 1) {
            break;
        }
        waits += 1;
        assert!(waits < 200, "the server never reported lag");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let ms = migrations(
        dir.path(),
        "V1__bf.sql",
        "-- cutover: backfill table=bfm set=\"c = 1\" key=id batch=100ms where=\"c IS NULL\"\nSELECT 1;\n",
    );
    let poller = cutover::lag::mysql::MysqlLagPoller::new(
        vec![cutover::lag::mysql::MyReplica {
            name: "r1".into(),
            dsn: rdsn.clone(),
        }],
        cutover::lag::PollOptions::default(),
        None,
    )
    .unwrap();
    let mut ex = NativeMysql::new(
        &dsn,
        ms,
        MyExecOptions {
            lag_interval: Duration::from_millis(200),
            ..opts()
        },
    )
    .with_lag(Box::new(poller));
    assert!(ex.capabilities().lag_throttle);
    let mut j = job(dir.path());
    j.spec.tables = vec!["bfm".into()];
    j.max_lag_millis = Some(500);
    let (tx, mut rx) = mpsc::channel(4096);
    ex.start(j, tx).await.unwrap();
    let mut throttled = 0;
    let mut updated_while_throttled = None;
    let mut chunks_after = 0;
    let outcome = loop {
        match rx.recv().await.unwrap() {
            ExecUpdate::Status(s) => match &s.phase {
                ExecPhase::Throttled { reason } if reason.contains("lag") => {
                    throttled += 1;
                    if throttled == 3 {
                        let n: Option<u64> = c
                            .query_first("SELECT COUNT(*) FROM bfm WHERE c = 1")
                            .await
                            .unwrap();
                        updated_while_throttled = n;
                        locker.query_drop("UNLOCK TABLES").await.unwrap();
                        writer.abort();
                    }
                }
                ExecPhase::Copying
                    if throttled >= 3 && s.progress.as_ref().is_some_and(|p| p.rows_copied > 0) =>
                {
                    chunks_after += 1
                }
                _ => {}
            },
            ExecUpdate::Lag(_) | ExecUpdate::Executor { .. } => {}
            ExecUpdate::Finished(o) => break o,
        }
    };
    let _ = locker.query_drop("UNLOCK TABLES").await;
    writer.abort();
    assert_eq!(outcome.kind, OutcomeKind::Succeeded, "{outcome:?}");
    assert!(throttled >= 3, "throttled on lag");
    assert_eq!(updated_while_throttled, Some(0), "no chunk while lagging");
    assert!(chunks_after >= 2, "chunked after the lag cleared");
    let n: Option<u64> = c
        .query_first("SELECT COUNT(*) FROM bfm WHERE c = 1")
        .await
        .unwrap();
    assert_eq!(n, Some(20000));
    c.query_drop("DROP TABLE bfm").await.unwrap();
}
