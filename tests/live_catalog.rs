//! Live, read-only table facts from the throwaway PostgreSQL and MariaDB primaries
//! started by scripts/test (URLs in CUTOVER_TEST_*). With CUTOVER_TEST_REQUIRE_DB=1 a
//! missing server fails the test instead of skipping it.

mod db_common;
use db_common::url;

use std::process::Command;

fn plan_with_target(engine: &str, dsn: &str, sql: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cutover.toml"), format!("[[targets]]\nname = \"t\"\nengine = \"{engine}\"\nenvironment = \"staging\"\nprimary = \"{dsn}\"\n")).unwrap();
    std::fs::write(dir.path().join("V1__m.sql"), sql).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(["plan", "V1__m.sql", "--target", "t", "--format", "json"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "plan failed: {err}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn postgres_facts_drive_the_verdict() {
    let Some(dsn) = url("CUTOVER_TEST_PG_PRIMARY") else {
        return;
    };
    let (client, conn) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
        .await
        .expect("connect to test PostgreSQL");
    tokio::spawn(conn);
    client
        .batch_execute(
            "DROP TABLE IF EXISTS live_facts;
             CREATE TABLE live_facts (id int PRIMARY KEY, v varchar(10), n int);
             INSERT INTO live_facts SELECT g, 'x', g FROM generate_series(1, 5000) g;
             ALTER TABLE live_facts ADD CONSTRAINT live_facts_n_nn CHECK (n IS NOT NULL);
             ANALYZE live_facts;",
        )
        .await
        .unwrap();
    let cat = cutover::catalog::live::read(cutover::model::Engine::Postgres, &dsn, "t")
        .await
        .unwrap();
    let t = cat.lookup("live_facts").expect("table found via public");
    assert_eq!(t.rows, Some(5000));
    assert!(t.bytes.unwrap() > 100_000);
    assert_eq!(t.columns["v"].data_type, "CHARACTER VARYING(10)");
    assert!(t.columns["n"].valid_not_null_check);
    assert!(cat.server_version.and_then(|v| v.pg_major()).is_some());

    let p = plan_with_target(
        "postgres",
        &dsn,
        "SET lock_timeout = '2s';\nALTER TABLE live_facts ALTER COLUMN v TYPE varchar(20);\nALTER TABLE live_facts ALTER COLUMN n SET NOT NULL;\n",
    );
    let s = &p["migrations"][0]["statements"];
    // varchar widening is binary-coercible: catalog-only, medium, no rewrite.
    assert_eq!(s[1]["rewrites_table"], false, "{}", s[1]);
    assert_eq!(s[1]["risk"], "medium");
    // A validated CHECK (n IS NOT NULL) exists: SET NOT NULL skips its scan.
    assert_eq!(s[2]["risk"], "medium", "{}", s[2]);
    assert!(s[2]["estimate"].is_object());
    client.batch_execute("DROP TABLE live_facts").await.unwrap();
}

#[tokio::test]
async fn postgres_keys_and_triggers_are_read() {
    let Some(dsn) = url("CUTOVER_TEST_PG_PRIMARY") else {
        return;
    };
    let (client, conn) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
        .await
        .expect("connect to test PostgreSQL");
    tokio::spawn(conn);
    client
        .batch_execute(
            "DROP TABLE IF EXISTS live_child, live_parent;
             CREATE TABLE live_parent (id int PRIMARY KEY);
             CREATE TABLE live_child (id int PRIMARY KEY, parent_id int, a int, b int,
               CONSTRAINT live_child_fk FOREIGN KEY (parent_id) REFERENCES live_parent (id) ON DELETE CASCADE);
             CREATE INDEX live_child_ab ON live_child (a, b);
             CREATE OR REPLACE FUNCTION live_noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
             CREATE TRIGGER live_trg BEFORE INSERT ON live_child FOR EACH ROW EXECUTE FUNCTION live_noop();",
        )
        .await
        .unwrap();
    let cat = cutover::catalog::live::read(cutover::model::Engine::Postgres, &dsn, "t")
        .await
        .unwrap();
    let child = cat.lookup("live_child").unwrap();
    assert!(child.has_triggers && child.indexes_known && child.cascading_fks);
    let ab = child
        .indexes
        .iter()
        .find(|i| i.name == "live_child_ab")
        .unwrap();
    assert_eq!(ab.columns, ["a", "b"]);
    assert!(ab.valid && !ab.unique);
    assert!(
        child
            .indexes
            .iter()
            .any(|i| i.unique && i.columns == ["id"])
    );
    let fk = child.foreign_key("live_child_fk").unwrap();
    assert_eq!(
        (fk.columns.as_slice(), fk.references.as_str()),
        (&["parent_id".to_string()][..], "public.live_parent")
    );
    assert_eq!(
        (fk.on_delete.as_str(), fk.on_update.as_str()),
        ("CASCADE", "NO ACTION")
    );
    // The parent has only the FK's internal triggers: not "triggers" for gh-ost/pt-osc.
    assert!(!cat.lookup("live_parent").unwrap().has_triggers);

    let p = plan_with_target(
        "postgres",
        &dsn,
        "SET lock_timeout = '2s';\nALTER TABLE live_child DROP CONSTRAINT live_child_fk;\nALTER TABLE live_child ADD CONSTRAINT fk2 FOREIGN KEY (b) REFERENCES live_parent (id) NOT VALID;\nALTER TABLE live_child ADD CONSTRAINT fk3 FOREIGN KEY (a) REFERENCES live_parent (id) NOT VALID;\n",
    );
    let s = &p["migrations"][0]["statements"];
    let rules = |i: usize| {
        s[i]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["rule"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert!(
        rules(1).contains(&"fk-lock-on-referenced-table".to_string()),
        "{}",
        s[1]
    );
    assert_eq!(
        s[1]["lock"]["other_locks"][0]["table"], "public.live_parent",
        "{}",
        s[1]
    );
    assert!(
        rules(2).contains(&"fk-without-index".to_string()),
        "{}",
        s[2]
    );
    assert!(
        !rules(3).contains(&"fk-without-index".to_string()),
        "{}",
        s[3]
    );
    client
        .batch_execute("DROP TABLE live_child, live_parent")
        .await
        .unwrap();
}

#[tokio::test]
async fn mariadb_facts_drive_the_verdict() {
    use mysql_async::prelude::*;
    let Some(dsn) = url("CUTOVER_TEST_MY_PRIMARY") else {
        return;
    };
    let pool = mysql_async::Pool::new(dsn.as_str());
    let mut c = pool.get_conn().await.expect("connect to test MariaDB");
    c.query_drop("DROP TABLE IF EXISTS live_facts")
        .await
        .unwrap();
    c.query_drop("CREATE TABLE live_facts (id INT PRIMARY KEY, v VARCHAR(50) CHARACTER SET utf8mb4, w VARCHAR(10) CHARACTER SET utf8mb4)").await.unwrap();
    c.query_drop("INSERT INTO live_facts SELECT seq, 'x', 'y' FROM seq_1_to_3000")
        .await
        .unwrap();
    c.query_drop("ANALYZE TABLE live_facts").await.unwrap();
    let cat = cutover::catalog::live::read(cutover::model::Engine::Mysql, &dsn, "t")
        .await
        .unwrap();
    let t = cat
        .lookup("live_facts")
        .expect("table found in the current database");
    assert!(t.rows.unwrap() > 0);
    assert_eq!(t.columns["v"].bytes_per_char, Some(4));
    assert!(cat.server_version.is_some_and(|v| v.is_mariadb()));

    // utf8mb4 VARCHAR(50) → (100): 200 B → 400 B crosses 255 B from 128–255: COPY.
    // VARCHAR(10) → (20): 40 B → 80 B: INSTANT.
    let p = plan_with_target(
        "mysql",
        &dsn,
        "ALTER TABLE live_facts MODIFY v VARCHAR(100);\nALTER TABLE live_facts MODIFY w VARCHAR(20);\n",
    );
    let s = &p["migrations"][0]["statements"];
    assert!(
        s[0]["lock"]["mode"].as_str().unwrap().starts_with("COPY"),
        "{}",
        s[0]
    );
    assert_eq!(s[0]["rewrites_table"], true);
    assert_eq!(s[1]["lock"]["mode"], "INSTANT", "{}", s[1]);
    c.query_drop("DROP TABLE live_facts").await.unwrap();
    drop(c);
    pool.disconnect().await.unwrap();
}

#[tokio::test]
async fn mariadb_keys_and_triggers_are_read() {
    use mysql_async::prelude::*;
    let Some(dsn) = url("CUTOVER_TEST_MY_PRIMARY") else {
        return;
    };
    let pool = mysql_async::Pool::new(dsn.as_str());
    let mut c = pool.get_conn().await.expect("connect to test MariaDB");
    for q in [
        "DROP TABLE IF EXISTS live_child, live_parent",
        "CREATE TABLE live_parent (id INT PRIMARY KEY)",
        "CREATE TABLE live_child (id INT PRIMARY KEY, parent_id INT, a INT, b INT, KEY live_child_ab (a, b), CONSTRAINT live_child_fk FOREIGN KEY (parent_id) REFERENCES live_parent (id) ON DELETE SET NULL)",
        "CREATE TRIGGER live_trg BEFORE INSERT ON live_child FOR EACH ROW SET NEW.a = NEW.a",
    ] {
        c.query_drop(q).await.unwrap();
    }
    let cat = cutover::catalog::live::read(cutover::model::Engine::Mysql, &dsn, "t")
        .await
        .unwrap();
    let child = cat.lookup("live_child").unwrap();
    assert!(child.has_triggers && child.cascading_fks);
    assert!(!cat.lookup("live_parent").unwrap().has_triggers);
    let ab = child
        .indexes
        .iter()
        .find(|i| i.name == "live_child_ab")
        .unwrap();
    assert_eq!(ab.columns, ["a", "b"]);
    assert!(
        child
            .indexes
            .iter()
            .any(|i| i.name == "PRIMARY" && i.unique)
    );
    let fk = child.foreign_key("live_child_fk").unwrap();
    assert_eq!(fk.columns, ["parent_id"]);
    assert!(fk.references.ends_with(".live_parent"), "{}", fk.references);
    assert_eq!(fk.on_delete, "SET NULL");

    let p = plan_with_target(
        "mysql",
        &dsn,
        "-- cutover: executor=gh-ost\nALTER TABLE live_child ADD INDEX i_b (b);\n",
    );
    let s = &p["migrations"][0]["statements"][0];
    assert!(
        s["lock"]["mode"].as_str().unwrap().ends_with("LOCK=SHARED"),
        "{s}"
    );
    let rules: Vec<&str> = s["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"cascade-fk-online-ddl-limit"), "{rules:?}");
    assert!(rules.contains(&"triggers-on-target"), "{rules:?}");
    for q in ["DROP TABLE live_child", "DROP TABLE live_parent"] {
        c.query_drop(q).await.unwrap();
    }
    drop(c);
    pool.disconnect().await.unwrap();
}

#[tokio::test]
async fn postgres_open_transaction_on_the_table_is_a_lock_queue_risk() {
    let Some(dsn) = url("CUTOVER_TEST_PG_PRIMARY") else {
        return;
    };
    let (setup, conn) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    setup
        .batch_execute(
            "DROP TABLE IF EXISTS queue_risk; CREATE TABLE queue_risk (id int PRIMARY KEY);",
        )
        .await
        .unwrap();
    // Another session sits in an open transaction holding ACCESS SHARE on the table.
    let (holder, conn2) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn2);
    holder
        .batch_execute("BEGIN; SELECT count(*) FROM queue_risk;")
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cutover.toml"),
        format!("[[targets]]\nname = \"t\"\nengine = \"postgres\"\nenvironment = \"staging\"\nprimary = \"{dsn}\"\n"),
    )
    .unwrap();
    // Any age counts here, so the test need not wait out the 60 s default.
    std::fs::write(dir.path().join("o.toml"), "[thresholds]\nlarge_rows = 1000000\nlarge_bytes = 1073741824\nold_transaction_seconds = 0\n").unwrap();
    std::fs::write(
        dir.path().join("V1__m.sql"),
        "SET lock_timeout = '2s';\nALTER TABLE queue_risk ADD COLUMN x int;\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args([
            "plan",
            "V1__m.sql",
            "--target",
            "t",
            "--rules",
            "o.toml",
            "--format",
            "json",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &p["migrations"][0]["statements"][1];
    assert_eq!(s["risk"], "high", "{s}");
    assert!(
        s["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "lock-queue-risk"),
        "{s}"
    );

    // Once the transaction ends, the risk is gone.
    holder.batch_execute("COMMIT").await.unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args([
            "plan",
            "V1__m.sql",
            "--target",
            "t",
            "--rules",
            "o.toml",
            "--format",
            "json",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let p: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &p["migrations"][0]["statements"][1];
    assert!(
        !s["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "lock-queue-risk"),
        "{s}"
    );
    setup.batch_execute("DROP TABLE queue_risk").await.unwrap();
}
