//! History tables end to end: the native executors record what they apply
//! (PostgreSQL inside the migration's own transaction, MariaDB after it), and
//! `cutover plan --target` reads Flyway, Alembic and Liquibase history to
//! plan only what is pending, flagging an applied migration that changed.
//! Each engine works in its own throwaway database so that other test
//! binaries' history rows do not interfere.

mod db_common;
use db_common::with_db;
use db_common::{pg, url};

use cutover::exec::native_mysql::{MyExecOptions, NativeMysql};
use cutover::exec::native_pg::{NativePg, PgExecOptions};
use cutover::exec::{ExecJob, ExecUpdate, Executor, Outcome, OutcomeKind};
use cutover::migrate::{LoadOptions, Migration, load_paths};
use cutover::model::{Engine, Risk};
use cutover::policy::Environment;
use cutover::policy::approvals::Binding;
use cutover::run::RunSpec;
use mysql_async::prelude::*;
use std::path::Path;
use std::process::Command;
use tokio::sync::mpsc;

fn load(paths: &[&Path], engine: Engine) -> Vec<Migration> {
    load_paths(
        &paths.iter().map(|p| p.to_path_buf()).collect::<Vec<_>>(),
        &LoadOptions {
            engine: Some(engine),
            format: None,
        },
    )
    .unwrap()
}

fn job(dir: &Path) -> ExecJob {
    ExecJob {
        run: "h1".into(),
        spec: RunSpec {
            binding: Binding {
                plan_digest: "d".repeat(64),
                target: "t".into(),
            },
            environment: Environment::Staging,
            risk: Risk::Low,
            versions: vec![],
            estimated_seconds: 1.0,
            tables: vec![],
            executor: "native".into(),
        },
        run_dir: dir.to_path_buf(),
        postpone_cut_over: false,
        chunk_size: None,
        max_lag_millis: None,
        running: None,
    }
}

async fn run_to_end(ex: &mut dyn Executor, dir: &Path) -> Outcome {
    let (tx, mut rx) = mpsc::channel(1024);
    ex.start(job(dir), tx).await.unwrap();
    loop {
        if let ExecUpdate::Finished(o) = rx.recv().await.expect("an outcome") {
            return o;
        }
    }
}

/// `cutover plan ARGS --target t --format json` in `dir`: (exit code, JSON, stderr).
fn plan(dir: &Path, engine: &str, dsn: &str, files: &[&str]) -> (i32, serde_json::Value, String) {
    std::fs::write(
        dir.join("cutover.toml"),
        format!("[[targets]]\nname = \"t\"\nengine = \"{engine}\"\nenvironment = \"staging\"\nprimary = \"{dsn}\"\n"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .arg("plan")
        .args(files)
        .args(["--target", "t", "--format", "json"])
        .current_dir(dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), json, stderr)
}

fn versions(plan: &serde_json::Value) -> Vec<String> {
    plan["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["version"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn postgres_history_records_in_the_transaction_and_plans_only_pending() {
    let Some(admin) = url("CUTOVER_TEST_PG_PRIMARY") else {
        return;
    };
    let c = pg(&admin).await;
    c.batch_execute("DROP DATABASE IF EXISTS cutover_hist WITH (FORCE)")
        .await
        .unwrap();
    c.batch_execute("CREATE DATABASE cutover_hist")
        .await
        .unwrap();
    let dsn = with_db(&admin, "cutover_hist");
    let db = pg(&dsn).await;
    let dir = tempfile::tempdir().unwrap();
    let mig = dir.path().join("mig");
    std::fs::create_dir(&mig).unwrap();
    let v1 = "CREATE TABLE hist_a (id int);\n";
    let v2 = "CREATE TABLE hist_b (id int);\nINSERT INTO hist_b VALUES (1);\n";
    std::fs::write(mig.join("V1__a.sql"), v1).unwrap();
    std::fs::write(mig.join("V2__b.sql"), v2).unwrap();

    let mut ex = NativePg::new(
        &dsn,
        load(&[&mig], Engine::Postgres),
        PgExecOptions::default(),
    );
    let o = run_to_end(&mut ex, dir.path()).await;
    assert_eq!(o.kind, OutcomeKind::Succeeded, "{o:?}");

    // The history row was written by the migration's own transaction.
    for (version, table) in [("1", "hist_a"), ("2", "hist_b")] {
        let row = db
            .query_one(
                "SELECT (SELECT xmin::text FROM flyway_schema_history WHERE version = $1),
                        (SELECT xmin::text FROM pg_class WHERE relname = $2)",
                &[&version, &table],
            )
            .await
            .unwrap();
        let (h, t): (Option<String>, Option<String>) = (row.get(0), row.get(1));
        assert!(h.is_some(), "no history row for V{version}");
        assert_eq!(
            h, t,
            "V{version}: history row and table from different transactions"
        );
    }

    // Everything applied: nothing pending.
    std::fs::write(mig.join("V3__c.sql"), "CREATE TABLE hist_c (id int);\n").unwrap();
    let (code, p, err) = plan(dir.path(), "postgres", &dsn, &["mig"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(versions(&p), vec!["3"]);
    assert_eq!(
        p["history"]["skipped_applied"],
        serde_json::json!(["1", "2"])
    );

    // An applied migration edited afterwards: bad input, said clearly.
    std::fs::write(
        mig.join("V2__b.sql"),
        v2.replace("VALUES (1)", "VALUES (2)"),
    )
    .unwrap();
    let (code, p, err) = plan(dir.path(), "postgres", &dsn, &["mig"]);
    assert_eq!(code, 2, "a changed applied migration must fail: {err}");
    assert!(err.contains("changed after being applied"), "{err}");
    assert_eq!(versions(&p), vec!["2", "3"]);
    let f = &p["migrations"][0]["findings"][0];
    assert_eq!(f["rule"], "history-checksum-mismatch");
    assert_eq!(f["risk"], "high");
    assert!(f["reason"].as_str().unwrap().contains("V2__b.sql"));
    assert_eq!(
        p["history"]["changed_after_apply"],
        serde_json::json!(["2"])
    );

    // Alembic: alembic_version at a1 → only b2 is pending.
    db.batch_execute(
        "CREATE TABLE alembic_version (version_num varchar(32) NOT NULL PRIMARY KEY);
         INSERT INTO alembic_version VALUES ('a1');",
    )
    .await
    .unwrap();
    std::fs::write(
        dir.path().join("upgrade.sql"),
        "BEGIN;\nCREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL);\n\
         -- Running upgrade  -> a1\nCREATE TABLE al_x (id int);\nUPDATE alembic_version SET version_num='a1';\n\
         -- Running upgrade a1 -> b2\nALTER TABLE al_x ADD y int;\nUPDATE alembic_version SET version_num='b2';\nCOMMIT;\n",
    )
    .unwrap();
    let (code, p, err) = plan(dir.path(), "postgres", &dsn, &["upgrade.sql"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(versions(&p), vec!["b2"]);
    assert_eq!(p["history"]["skipped_applied"].as_array().unwrap().len(), 2);

    // Liquibase: matched by ID and AUTHOR, with the limit said.
    db.batch_execute(
        "CREATE TABLE databasechangelog (id varchar(255), author varchar(255), filename varchar(255), orderexecuted int);
         INSERT INTO databasechangelog VALUES ('1', 'alice', 'cl.sql', 1);",
    )
    .await
    .unwrap();
    std::fs::write(
        dir.path().join("cl.sql"),
        "--liquibase formatted sql\n--changeset alice:1\nCREATE TABLE lq_a (id int);\n--changeset bob:2\nCREATE TABLE lq_b (id int);\n",
    )
    .unwrap();
    let (code, p, err) = plan(dir.path(), "postgres", &dsn, &["cl.sql"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(versions(&p), vec!["bob:2"]);
    assert!(
        p["history"]["notes"][0]
            .as_str()
            .unwrap()
            .contains("MD5SUM"),
        "{p}"
    );

    // Liquibase changesets are refused natively, before anything runs.
    let mut ex = NativePg::new(
        &dsn,
        load(&[&dir.path().join("cl.sql")], Engine::Postgres),
        PgExecOptions::default(),
    );
    let o = run_to_end(&mut ex, dir.path()).await;
    match &o.kind {
        OutcomeKind::Failed { error } => {
            assert!(error.contains("cannot be applied natively"), "{error}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let lq: bool = db
        .query_one("SELECT to_regclass('lq_b') IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!lq, "a refused changeset must not run");
    drop(db);
    c.batch_execute("DROP DATABASE IF EXISTS cutover_hist WITH (FORCE)")
        .await
        .unwrap();
}

#[tokio::test]
async fn mariadb_records_flyway_history_and_refuses_liquibase() {
    let Some(admin) = url("CUTOVER_TEST_MY_PRIMARY") else {
        return;
    };
    let mut c = mysql_async::Conn::new(mysql_async::Opts::from_url(&admin).unwrap())
        .await
        .unwrap();
    c.query_drop("DROP DATABASE IF EXISTS cutover_hist; CREATE DATABASE cutover_hist")
        .await
        .unwrap();
    let dsn = with_db(&admin, "cutover_hist");
    let dir = tempfile::tempdir().unwrap();
    let mig = dir.path().join("mig");
    std::fs::create_dir(&mig).unwrap();
    std::fs::write(mig.join("V1__a.sql"), "CREATE TABLE hist_a (id int);\n").unwrap();
    let mut ex = NativeMysql::new(&dsn, load(&[&mig], Engine::Mysql), MyExecOptions::default());
    let o = run_to_end(&mut ex, dir.path()).await;
    assert_eq!(o.kind, OutcomeKind::Succeeded, "{o:?}");

    std::fs::write(
        mig.join("V2__b.sql"),
        "ALTER TABLE hist_a ADD COLUMN b int;\n",
    )
    .unwrap();
    let (code, p, err) = plan(dir.path(), "mysql", &dsn, &["mig"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(versions(&p), vec!["2"]);
    assert_eq!(p["history"]["skipped_applied"], serde_json::json!(["1"]));

    std::fs::write(
        dir.path().join("cl.sql"),
        "--liquibase formatted sql\n--changeset bob:2\nCREATE TABLE lq_b (id int);\n",
    )
    .unwrap();
    let mut ex = NativeMysql::new(
        &dsn,
        load(&[&dir.path().join("cl.sql")], Engine::Mysql),
        MyExecOptions::default(),
    );
    let o = run_to_end(&mut ex, dir.path()).await;
    assert!(
        matches!(&o.kind, OutcomeKind::Failed { error } if error.contains("cannot be applied natively")),
        "{o:?}"
    );
    let n: Option<u64> = c
        .query_first(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'cutover_hist' AND TABLE_NAME = 'lq_b'",
        )
        .await
        .unwrap();
    assert_eq!(n, Some(0), "a refused changeset must not run");
    c.query_drop("DROP DATABASE IF EXISTS cutover_hist")
        .await
        .unwrap();
}
