//! `cutover verify` on the throwaway PostgreSQL and MariaDB: each fixture
//! statement's observed lock and rewrite must match the engine facts of
//! specs/engines.md (§1.2, §2.2), nothing may be left behind, and a prod
//! target is refused. Disagreements with the plan are printed (they are the
//! point of verify), not asserted away.

mod db_common;
use db_common::with_db;
use db_common::{pg, url};

use cutover::cli::{PlanOpts, VerifyArgs};
use cutover::model::Blocks;
use cutover::verify::{Outcome, VerifyReport};
use mysql_async::prelude::Queryable;
use std::path::Path;

/// (statement, expected strongest lock on its table, expected rewrite).
/// Lock `None` = not compared (the statement's own lock is not its point).
const PG: &[(&str, Option<&str>, bool)] = &[
    (
        "ALTER TABLE t ADD COLUMN x int",
        Some("AccessExclusiveLock"),
        false,
    ),
    (
        "ALTER TABLE t ADD COLUMN x int NOT NULL DEFAULT 0",
        Some("AccessExclusiveLock"),
        false,
    ),
    (
        "ALTER TABLE t ADD COLUMN x timestamptz DEFAULT now()",
        Some("AccessExclusiveLock"),
        false,
    ),
    (
        "ALTER TABLE t ADD COLUMN x float8 DEFAULT random()",
        Some("AccessExclusiveLock"),
        true,
    ),
    (
        "ALTER TABLE t ADD COLUMN x bigserial",
        Some("AccessExclusiveLock"),
        true,
    ),
    (
        "ALTER TABLE t ADD COLUMN x int GENERATED ALWAYS AS (c + 1) STORED",
        Some("AccessExclusiveLock"),
        true,
    ),
    (
        "ALTER TABLE t ALTER COLUMN c TYPE bigint",
        Some("AccessExclusiveLock"),
        true,
    ),
    (
        "ALTER TABLE t ALTER COLUMN v TYPE varchar(20)",
        Some("AccessExclusiveLock"),
        false,
    ),
    (
        "ALTER TABLE t ALTER COLUMN v TYPE text",
        Some("AccessExclusiveLock"),
        false,
    ),
    (
        "ALTER TABLE t ALTER COLUMN v TYPE varchar(5)",
        Some("AccessExclusiveLock"),
        true,
    ),
    (
        "ALTER TABLE t ALTER COLUMN txt TYPE varchar(100)",
        Some("AccessExclusiveLock"),
        true,
    ),
    (
        "ALTER TABLE t ALTER COLUMN m TYPE text",
        Some("AccessExclusiveLock"),
        true,
    ),
    (
        "ALTER TABLE t ALTER COLUMN c SET NOT NULL",
        Some("AccessExclusiveLock"),
        false,
    ),
    (
        "ALTER TABLE t ALTER COLUMN id DROP NOT NULL",
        Some("AccessExclusiveLock"),
        false,
    ),
    (
        "ALTER TABLE t ADD CONSTRAINT t_c_pos2 CHECK (c > 0)",
        Some("AccessExclusiveLock"),
        false,
    ),
    (
        "ALTER TABLE t ADD CONSTRAINT t_c_pos3 CHECK (c > 0) NOT VALID",
        Some("AccessExclusiveLock"),
        false,
    ),
    (
        "ALTER TABLE t VALIDATE CONSTRAINT t_c_pos",
        Some("ShareUpdateExclusiveLock"),
        false,
    ),
    (
        "ALTER TABLE t ADD CONSTRAINT t_d_fk2 FOREIGN KEY (d) REFERENCES parent (id)",
        Some("ShareRowExclusiveLock"),
        false,
    ),
    (
        "ALTER TABLE t VALIDATE CONSTRAINT t_d_fk",
        Some("ShareUpdateExclusiveLock"),
        false,
    ),
    ("CREATE INDEX t_v_idx ON t (v)", Some("ShareLock"), false),
    (
        "CREATE INDEX CONCURRENTLY t_v_idx2 ON t (v)",
        Some("ShareUpdateExclusiveLock"),
        false,
    ),
    ("DROP INDEX t_c_idx", Some("AccessExclusiveLock"), false),
    (
        "DROP INDEX CONCURRENTLY t_c_idx",
        Some("ShareUpdateExclusiveLock"),
        false,
    ),
    (
        "ALTER TABLE t DROP COLUMN txt",
        Some("AccessExclusiveLock"),
        false,
    ),
    (
        "ALTER TABLE t RENAME COLUMN txt TO txt2",
        Some("AccessExclusiveLock"),
        false,
    ),
    (
        "ALTER TABLE t ALTER COLUMN d SET DEFAULT 2",
        Some("AccessExclusiveLock"),
        false,
    ),
    (
        "ALTER TABLE t ADD PRIMARY KEY (id)",
        Some("AccessExclusiveLock"),
        false,
    ),
    (
        "ALTER TABLE t ALTER COLUMN c SET STATISTICS 100",
        Some("ShareUpdateExclusiveLock"),
        false,
    ),
    (
        "ALTER TABLE t SET (fillfactor = 70)",
        Some("ShareUpdateExclusiveLock"),
        false,
    ),
    (
        "ALTER TABLE t SET UNLOGGED",
        Some("AccessExclusiveLock"),
        true,
    ),
    ("CLUSTER t USING t_id_uq", Some("AccessExclusiveLock"), true),
    ("VACUUM FULL t", Some("AccessExclusiveLock"), true),
    ("REINDEX TABLE t", Some("ShareLock"), false),
    (
        "REINDEX TABLE CONCURRENTLY t",
        Some("ShareUpdateExclusiveLock"),
        false,
    ),
    ("VACUUM t", Some("ShareUpdateExclusiveLock"), false),
    (
        "CREATE TRIGGER t_touch BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION touch()",
        Some("ShareRowExclusiveLock"),
        false,
    ),
    ("TRUNCATE child", Some("AccessExclusiveLock"), false),
    (
        "UPDATE t SET c = c + 1 WHERE id < 10",
        Some("RowExclusiveLock"),
        false,
    ),
    ("DROP TABLE child", Some("AccessExclusiveLock"), false),
    ("CREATE TABLE newt (id int PRIMARY KEY)", None, false),
    ("CREATE INDEX newt_id ON newt (id)", None, false),
];

const PG_SETUP: &str = "
    CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
    CREATE TABLE parent (id int PRIMARY KEY);
    INSERT INTO parent SELECT g FROM generate_series(1, 10) g;
    CREATE TABLE t (id int NOT NULL, c int, v varchar(10), txt text, m mood, d int DEFAULT 1);
    CREATE UNIQUE INDEX t_id_uq ON t (id);
    CREATE INDEX t_c_idx ON t (c);
    ALTER TABLE t ADD CONSTRAINT t_c_pos CHECK (c > 0) NOT VALID;
    ALTER TABLE t ADD CONSTRAINT t_d_fk FOREIGN KEY (d) REFERENCES parent (id) NOT VALID;
    INSERT INTO t SELECT g, g, 'v', 'x', 'ok', 1 FROM generate_series(1, 100) g;
    CREATE TABLE child (id int PRIMARY KEY, p int REFERENCES parent (id));
    INSERT INTO child SELECT g, 1 FROM generate_series(1, 20) g;
    CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
";

/// The MariaDB tests compare server-wide schema lists: one at a time.
static MY_SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// (statement, expected blocks, expected rewrite or copy).
const MY: &[(&str, Blocks, bool)] = &[
    ("ALTER TABLE t ADD COLUMN x INT", Blocks::Nothing, false),
    (
        "ALTER TABLE t ADD COLUMN y INT NOT NULL DEFAULT 0",
        Blocks::Nothing,
        false,
    ),
    ("ALTER TABLE t MODIFY v VARCHAR(20)", Blocks::Nothing, false),
    (
        "ALTER TABLE t MODIFY e ENUM('a', 'b', 'c')",
        Blocks::Nothing,
        false,
    ),
    (
        "ALTER TABLE t RENAME COLUMN x TO x2",
        Blocks::Nothing,
        false,
    ),
    (
        "ALTER TABLE t ALTER COLUMN d SET DEFAULT 2",
        Blocks::Nothing,
        false,
    ),
    ("ALTER TABLE t ADD INDEX i_c (c)", Blocks::Nothing, false),
    ("CREATE INDEX i_v ON t (v)", Blocks::Nothing, false),
    ("DROP INDEX i_v ON t", Blocks::Nothing, false),
    ("ALTER TABLE t DROP COLUMN x2", Blocks::Nothing, false),
    ("ALTER TABLE t MODIFY c BIGINT", Blocks::Writes, true),
    ("ALTER TABLE t FORCE", Blocks::Nothing, true),
    ("ALTER TABLE t ENGINE=InnoDB", Blocks::Nothing, true),
    (
        "ALTER TABLE t ADD FOREIGN KEY (d) REFERENCES p (id)",
        Blocks::Writes,
        true,
    ),
    (
        "ALTER TABLE pt PARTITION BY HASH(id) PARTITIONS 4",
        Blocks::Writes,
        true,
    ),
    ("ALTER TABLE pt REMOVE PARTITIONING", Blocks::Writes, true),
    (
        "ALTER TABLE pr ADD PARTITION (PARTITION p2 VALUES LESS THAN (300))",
        Blocks::Nothing,
        false,
    ),
    ("ALTER TABLE pr DROP PARTITION p0", Blocks::Nothing, false),
    ("UPDATE t SET c = 1 WHERE id < 10", Blocks::Nothing, false),
    (
        "CREATE TABLE newt (id INT PRIMARY KEY)",
        Blocks::Nothing,
        false,
    ),
];

const MY_SETUP: &[&str] = &[
    "CREATE TABLE p (id INT PRIMARY KEY)",
    "INSERT INTO p SELECT seq FROM seq_1_to_10",
    "CREATE TABLE t (id INT PRIMARY KEY, c INT, v VARCHAR(10), e ENUM('a', 'b'), d INT) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    "INSERT INTO t SELECT seq, seq, 'v', 'a', 1 FROM seq_1_to_100",
    "CREATE TABLE pt (id INT PRIMARY KEY, c INT) ENGINE=InnoDB",
    "INSERT INTO pt SELECT seq, seq FROM seq_1_to_100",
    "CREATE TABLE pr (id INT NOT NULL, c INT) ENGINE=InnoDB PARTITION BY RANGE (id) (PARTITION p0 VALUES LESS THAN (100), PARTITION p1 VALUES LESS THAN (200))",
    "INSERT INTO pr SELECT seq, seq FROM seq_1_to_150",
];

fn write_fixture(dir: &Path, engine: &str, env: &str, dsn: &str, stmts: &[&str]) -> VerifyArgs {
    let mig = dir.join("migrations");
    std::fs::create_dir_all(&mig).unwrap();
    let body: String = stmts.iter().map(|s| format!("{s};\n")).collect();
    std::fs::write(mig.join("V1__fixture.sql"), body).unwrap();
    let cfg = dir.join("cutover.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[targets]]\nname = \"staging\"\nengine = \"{engine}\"\nenvironment = \"{env}\"\nprimary = \"{dsn}\"\n"
        ),
    )
    .unwrap();
    VerifyArgs {
        opts: PlanOpts {
            paths: vec![mig],
            engine: None,
            engine_version: None,
            source_format: Some("plain".into()),
            target: Some("staging".into()),
            stats: None,
            rules: None,
            config: Some(cfg),
        },
        format: "json".into(),
        sample_rows: 1000,
        lock_timeout_ms: 2000,
    }
}

/// The plan may over-predict (fail safe) but never under-predict: no statement
/// may lock more, rewrite, or lock another table beyond what the plan said.
fn assert_no_under_prediction(r: &VerifyReport) {
    use cutover::verify::compare::{
        OBSERVED_BLOCKING_LOCK, OBSERVED_OTHER_TABLE_LOCK, OBSERVED_TABLE_REWRITE,
    };
    let under: Vec<String> = r
        .migrations
        .iter()
        .flat_map(|m| &m.statements)
        .flat_map(|s| {
            s.disagreements
                .iter()
                .filter(|f| {
                    [
                        OBSERVED_BLOCKING_LOCK,
                        OBSERVED_OTHER_TABLE_LOCK,
                        OBSERVED_TABLE_REWRITE,
                    ]
                    .contains(&f.rule.as_str())
                })
                .map(move |f| format!("L{} {}: {}", s.verdict.line, s.verdict.sql, f.reason))
        })
        .collect();
    assert!(
        under.is_empty(),
        "the plan predicted less than staging observed:\n{}",
        under.join("\n")
    );
}

fn print_disagreements(r: &VerifyReport) {
    println!("{}", cutover::verify::render::text(r));
    for m in &r.migrations {
        for s in &m.statements {
            for f in &s.disagreements {
                println!(
                    "DISAGREE L{} {}: {} — {}",
                    s.verdict.line, s.verdict.sql, f.rule, f.reason
                );
            }
        }
    }
}

#[test]
fn postgres_reports_the_locks_and_rewrites_the_engine_takes() {
    let Some(dsn) = url("CUTOVER_TEST_PG_PRIMARY") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fixture = with_db(&dsn, "verify_fixture");
    let snapshot = rt.block_on(async {
        let admin = pg(&dsn).await;
        admin
            .batch_execute("DROP DATABASE IF EXISTS verify_fixture WITH (FORCE)")
            .await
            .unwrap();
        admin
            .batch_execute("CREATE DATABASE verify_fixture")
            .await
            .unwrap();
        let c = pg(&fixture).await;
        c.batch_execute(PG_SETUP).await.unwrap();
        catalog_pg(&c).await
    });
    let dir = tempfile::tempdir().unwrap();
    let stmts: Vec<&str> = PG.iter().map(|s| s.0).collect();
    let args = write_fixture(dir.path(), "postgres", "staging", &fixture, &stmts);
    let r = cutover::cmd::verify::report(&args).expect("verify runs");
    print_disagreements(&r);
    assert_no_under_prediction(&r);

    let got = &r.migrations[0].statements;
    assert_eq!(got.len(), PG.len());
    let mut wrong = Vec::new();
    for ((sql, mode, rewrite), s) in PG.iter().zip(got) {
        let Outcome::Observed(o) = &s.outcome else {
            wrong.push(format!("{sql}: not observed: {:?}", s.outcome));
            continue;
        };
        if let Some(mode) = mode {
            let seen = o.lock.as_ref().map(|l| l.mode.as_str());
            if !seen.is_some_and(|s| s.starts_with(mode)) {
                wrong.push(format!("{sql}: lock {seen:?}, engines.md says {mode}"));
            }
        }
        if o.rewrote != Some(*rewrite) {
            wrong.push(format!(
                "{sql}: rewrite {:?}, engines.md says {rewrite}",
                o.rewrote
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "observations differ from the engine facts:\n{}",
        wrong.join("\n")
    );

    // The FK addition also locks the parent against writes (engines.md §1.2).
    let fk = &got[17];
    let Outcome::Observed(o) = &fk.outcome else {
        unreachable!()
    };
    let parent = o
        .lock
        .as_ref()
        .unwrap()
        .other_locks
        .iter()
        .find(|l| l.table.ends_with("parent"));
    assert_eq!(
        parent.map(|p| p.mode.as_str()),
        Some("ShareRowExclusiveLock"),
        "{o:?}"
    );

    // Nothing left behind: the verifier's own check and an independent one.
    assert!(r.leftovers.is_empty(), "{:?}", r.leftovers);
    let after = rt.block_on(async { catalog_pg(&pg(&fixture).await).await });
    assert_eq!(snapshot, after, "the staging catalog changed");
}

/// Every user relation with its storage and every column: any change shows.
async fn catalog_pg(c: &tokio_postgres::Client) -> Vec<String> {
    c.query(
        "SELECT n.nspname || '.' || c.relname || ' ' || c.relkind::text || ' ' || c.relfilenode::text || ' ' || c.relpersistence::text
                || ' ' || coalesce((SELECT string_agg(attname::text || ':' || format_type(atttypid, atttypmod) || ':' || attnotnull::text, ',' ORDER BY attnum)
                                      FROM pg_attribute WHERE attrelid = c.oid AND attnum > 0 AND NOT attisdropped), '')
                || ' ' || (SELECT count(*) FROM pg_constraint WHERE conrelid = c.oid)
                || ' ' || (SELECT count(*) FROM pg_trigger WHERE tgrelid = c.oid)
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
          UNION ALL SELECT 'schema ' || nspname::text FROM pg_namespace
          UNION ALL SELECT 'rows t ' || count(*) FROM t
          ORDER BY 1",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[test]
fn mariadb_reports_the_algorithm_lock_and_copy_the_engine_takes() {
    let Some(dsn) = url("CUTOVER_TEST_MY_PRIMARY") else {
        return;
    };
    let _serial = MY_SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fixture = with_db(&dsn, "verify_fixture");
    let snapshot = rt.block_on(async {
        let mut c = mysql_async::Conn::new(mysql_async::Opts::from_url(&dsn).unwrap())
            .await
            .unwrap();
        c.query_drop("DROP DATABASE IF EXISTS verify_fixture")
            .await
            .unwrap();
        c.query_drop("CREATE DATABASE verify_fixture")
            .await
            .unwrap();
        c.query_drop("USE verify_fixture").await.unwrap();
        for s in MY_SETUP {
            c.query_drop(*s).await.unwrap();
        }
        catalog_my(&mut c).await
    });
    let dir = tempfile::tempdir().unwrap();
    let stmts: Vec<&str> = MY.iter().map(|s| s.0).collect();
    let args = write_fixture(dir.path(), "mysql", "staging", &fixture, &stmts);
    let r = cutover::cmd::verify::report(&args).expect("verify runs");
    print_disagreements(&r);
    assert_no_under_prediction(&r);

    let got = &r.migrations[0].statements;
    assert_eq!(got.len(), MY.len());
    let mut wrong = Vec::new();
    for ((sql, blocks, rewrite), s) in MY.iter().zip(got) {
        let Outcome::Observed(o) = &s.outcome else {
            wrong.push(format!("{sql}: not observed: {:?}", s.outcome));
            continue;
        };
        let seen = o.lock.as_ref().map(|l| l.blocks).unwrap_or(Blocks::Nothing);
        if seen != *blocks {
            wrong.push(format!(
                "{sql}: blocks {seen:?} ({:?}), engines.md says {blocks:?}",
                o.lock
            ));
        }
        if o.rewrote.unwrap_or(false) != *rewrite {
            wrong.push(format!(
                "{sql}: rewrite {:?}, engines.md says {rewrite}",
                o.rewrote
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "observations differ from the engine facts:\n{}",
        wrong.join("\n")
    );

    // Partitioning accepts INSTANT yet copies: verify must say COPY.
    let Outcome::Observed(part) = &got[14].outcome else {
        unreachable!()
    };
    assert_eq!(part.rows_copied, Some(100), "{part:?}");
    assert!(
        part.lock.as_ref().unwrap().mode.starts_with("COPY"),
        "{part:?}"
    );
    // The first ADD COLUMN is INSTANT.
    let Outcome::Observed(add) = &got[0].outcome else {
        unreachable!()
    };
    assert_eq!(add.accepted.as_deref(), Some("ALGORITHM=INSTANT"));

    assert!(r.leftovers.is_empty(), "{:?}", r.leftovers);
    let after = rt.block_on(async {
        let mut c = mysql_async::Conn::new(mysql_async::Opts::from_url(&fixture).unwrap())
            .await
            .unwrap();
        catalog_my(&mut c).await
    });
    assert_eq!(snapshot, after, "the staging schema changed");
}

async fn catalog_my(c: &mut mysql_async::Conn) -> Vec<String> {
    let mut v: Vec<String> = c
        .query(
            "SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME, ' ', COLUMN_NAME, ' ', COLUMN_TYPE)
               FROM information_schema.COLUMNS WHERE TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')",
        )
        .await
        .unwrap();
    v.extend(
        c.query::<String, _>("SELECT CONCAT('db ', SCHEMA_NAME) FROM information_schema.SCHEMATA")
            .await
            .unwrap(),
    );
    v.extend(
        c.query::<String, _>(
            "SELECT CONCAT(NAME, ' ', SPACE) FROM information_schema.INNODB_SYS_TABLES WHERE NAME LIKE 'verify\\_fixture/%'",
        )
        .await
        .unwrap(),
    );
    v.sort();
    v
}

#[test]
fn a_prod_target_is_refused_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    write_fixture(
        dir.path(),
        "postgres",
        "prod",
        "postgres://nobody@127.0.0.1:1/x",
        &["ALTER TABLE t ADD COLUMN x int"],
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cutover"))
        .current_dir(dir.path())
        .args(["verify", "migrations", "--target", "staging"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("production target"), "{err}");
}

/// Statements beyond engines.md's table: each must be observed (not fail) and
/// leave nothing behind; what the plan got wrong is printed for review.
const PG_MORE: &[&str] = &[
    "ALTER TABLE t ALTER COLUMN ts TYPE timestamptz",
    "ALTER TABLE t ALTER COLUMN n TYPE numeric(12,2)",
    "ALTER TABLE t ALTER COLUMN n TYPE numeric(10,3)",
    "ALTER TABLE t ALTER COLUMN d TYPE integer",
    "ALTER TABLE t ALTER COLUMN v TYPE varchar(10) COLLATE \"C\"",
    "ALTER TABLE t ADD COLUMN x int REFERENCES parent (id)",
    "ALTER TABLE t ADD COLUMN x int UNIQUE",
    "ALTER TABLE t ADD COLUMN x int GENERATED ALWAYS AS IDENTITY",
    "ALTER TABLE t SET LOGGED",
    "ALTER TABLE t ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE t DISABLE TRIGGER ALL",
    "ALTER TABLE t ALTER COLUMN txt SET STORAGE EXTERNAL",
    "ALTER TABLE t ALTER COLUMN txt SET COMPRESSION pglz",
    "ALTER TABLE t ALTER COLUMN c SET (n_distinct = 100)",
    "ALTER TABLE t ADD CONSTRAINT t_id_u UNIQUE USING INDEX t_id_uq",
    "ALTER TABLE t RENAME TO t_renamed",
    "ALTER INDEX t_c_idx RENAME TO t_c_idx2",
    "ALTER TABLE t DROP CONSTRAINT t_d_fk",
    "ALTER TABLE t ALTER COLUMN d DROP DEFAULT",
    "COMMENT ON TABLE t IS 'orders'",
    "ANALYZE t",
    "LOCK TABLE t IN SHARE MODE",
    "DELETE FROM t WHERE id = 1",
    "INSERT INTO t (id, c) VALUES (1000, 1)",
    "CREATE UNIQUE INDEX CONCURRENTLY t_id_uq2 ON t (id)",
    "CREATE INDEX t_c_part ON t (c) WHERE c > 10",
    "REFRESH MATERIALIZED VIEW mv",
    "ALTER TYPE mood ADD VALUE 'great'",
    "ALTER TABLE t VALIDATE CONSTRAINT t_c_pos",
];

const MY_MORE: &[&str] = &[
    "ALTER TABLE t ADD COLUMN z INT AFTER id",
    "ALTER TABLE t MODIFY v VARCHAR(100)",
    "ALTER TABLE t MODIFY c INT NOT NULL",
    "ALTER TABLE t ADD COLUMN j JSON",
    "ALTER TABLE t COMMENT = 'orders'",
    "ALTER TABLE t AUTO_INCREMENT = 1000",
    "ALTER TABLE t ADD UNIQUE INDEX u_c (c)",
    "ALTER TABLE t MODIFY e ENUM('b', 'a')",
    "ALTER TABLE t ADD CONSTRAINT chk CHECK (c > 0)",
    "ALTER TABLE t ROW_FORMAT=COMPACT",
    "ALTER TABLE t ADD FULLTEXT INDEX ft (v)",
    "ALTER TABLE t MODIFY v VARCHAR(100) CHARACTER SET latin1",
    "ALTER TABLE t CONVERT TO CHARACTER SET latin1",
    "ALTER TABLE t DROP PRIMARY KEY, ADD PRIMARY KEY (id, c)",
    "ALTER TABLE t ADD COLUMN ai INT AUTO_INCREMENT UNIQUE",
    "ALTER TABLE t RENAME TO t_renamed",
    "OPTIMIZE TABLE pt",
    "TRUNCATE TABLE pt",
    "DROP TABLE pt",
];

#[test]
fn postgres_more_statements_are_observed_and_leave_nothing() {
    let Some(dsn) = url("CUTOVER_TEST_PG_PRIMARY") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fixture = with_db(&dsn, "verify_more");
    let snapshot = rt.block_on(async {
        let admin = pg(&dsn).await;
        admin
            .batch_execute("DROP DATABASE IF EXISTS verify_more WITH (FORCE)")
            .await
            .unwrap();
        admin
            .batch_execute("CREATE DATABASE verify_more")
            .await
            .unwrap();
        let c = pg(&fixture).await;
        c.batch_execute(PG_SETUP).await.unwrap();
        c.batch_execute(
            "ALTER TABLE t ADD COLUMN ts timestamp, ADD COLUMN n numeric(10,2);
             CREATE MATERIALIZED VIEW mv AS SELECT id, c FROM t;
             SET TIME ZONE 'UTC'; ALTER DATABASE verify_more SET timezone = 'UTC'",
        )
        .await
        .unwrap();
        catalog_pg(&c).await
    });
    let dir = tempfile::tempdir().unwrap();
    let args = write_fixture(dir.path(), "postgres", "staging", &fixture, PG_MORE);
    let r = cutover::cmd::verify::report(&args).expect("verify runs");
    print_disagreements(&r);
    assert_no_under_prediction(&r);
    let got = &r.migrations[0].statements;
    assert_eq!(got.len(), PG_MORE.len());
    for (sql, s) in PG_MORE.iter().zip(got) {
        assert!(
            matches!(s.outcome, Outcome::Observed(_)),
            "{sql}: {:?}",
            s.outcome
        );
    }
    assert!(r.leftovers.is_empty(), "{:?}", r.leftovers);
    let after = rt.block_on(async { catalog_pg(&pg(&fixture).await).await });
    assert_eq!(snapshot, after, "the staging catalog changed");
}

#[test]
fn mariadb_more_statements_are_observed_and_leave_nothing() {
    let Some(dsn) = url("CUTOVER_TEST_MY_PRIMARY") else {
        return;
    };
    let _serial = MY_SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fixture = with_db(&dsn, "verify_more");
    let snapshot = rt.block_on(async {
        let mut c = mysql_async::Conn::new(mysql_async::Opts::from_url(&dsn).unwrap())
            .await
            .unwrap();
        c.query_drop("DROP DATABASE IF EXISTS verify_more")
            .await
            .unwrap();
        c.query_drop("CREATE DATABASE verify_more").await.unwrap();
        c.query_drop("USE verify_more").await.unwrap();
        for s in MY_SETUP {
            c.query_drop(*s).await.unwrap();
        }
        catalog_my(&mut c).await
    });
    let dir = tempfile::tempdir().unwrap();
    let args = write_fixture(dir.path(), "mysql", "staging", &fixture, MY_MORE);
    let r = cutover::cmd::verify::report(&args).expect("verify runs");
    print_disagreements(&r);
    assert_no_under_prediction(&r);
    let got = &r.migrations[0].statements;
    assert_eq!(got.len(), MY_MORE.len());
    for (sql, s) in MY_MORE.iter().zip(got) {
        assert!(
            matches!(s.outcome, Outcome::Observed(_)),
            "{sql}: {:?}",
            s.outcome
        );
    }
    assert!(r.leftovers.is_empty(), "{:?}", r.leftovers);
    let after = rt.block_on(async {
        let mut c = mysql_async::Conn::new(mysql_async::Opts::from_url(&fixture).unwrap())
            .await
            .unwrap();
        catalog_my(&mut c).await
    });
    assert_eq!(snapshot, after, "the staging schema changed");
}

/// The binary: text output beside the plan, exit 1 on a disagreement.
#[test]
fn a_disagreement_exits_1_and_is_printed() {
    let Some(dsn) = url("CUTOVER_TEST_PG_PRIMARY") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fixture = with_db(&dsn, "verify_cli");
    rt.block_on(async {
        let admin = pg(&dsn).await;
        admin
            .batch_execute("DROP DATABASE IF EXISTS verify_cli WITH (FORCE)")
            .await
            .unwrap();
        admin
            .batch_execute("CREATE DATABASE verify_cli")
            .await
            .unwrap();
        pg(&fixture).await.batch_execute(PG_SETUP).await.unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    // The plan marks REINDEX TABLE as a table rewrite; the engine rebuilds only indexes.
    write_fixture(
        dir.path(),
        "postgres",
        "staging",
        &fixture,
        &["REINDEX TABLE t"],
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cutover"))
        .current_dir(dir.path())
        .args(["verify", "migrations", "--target", "staging"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("predicted: ShareLock"), "{text}");
    assert!(
        text.contains("observed:  ShareLock + AccessExclusiveLock on index"),
        "{text}"
    );
    assert!(text.contains("observed-weaker-than-predicted"), "{text}");
    assert!(text.contains("nothing left behind"), "{text}");
}

/// Rehearsal calibration: a real native run on staging measures the rewrite;
/// `plan --target prod` then estimates with the measured rate and says so.
#[test]
fn a_staging_run_calibrates_prod_estimates() {
    let Some(dsn) = url("CUTOVER_TEST_PG_PRIMARY") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (stg, prod) = (with_db(&dsn, "calib_stg"), with_db(&dsn, "calib_prod"));
    rt.block_on(async {
        let admin = pg(&dsn).await;
        for (db, rows) in [("calib_stg", 1_000_000), ("calib_prod", 300_000)] {
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                .await
                .unwrap();
            admin.batch_execute(&format!("CREATE DATABASE {db}")).await.unwrap();
            let c = pg(&with_db(&dsn, db)).await;
            c.batch_execute(&format!(
                "CREATE TABLE big (id int PRIMARY KEY, c int, pad text);
                 INSERT INTO big SELECT g, g, 'padding-padding-padding' FROM generate_series(1, {rows}) g;
                 ANALYZE big;"
            ))
            .await
            .unwrap();
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("db")).unwrap();
    std::fs::write(
        d.join("db/V1__widen.sql"),
        "ALTER TABLE big ALTER COLUMN c TYPE bigint;\n",
    )
    .unwrap();
    let me = String::from_utf8_lossy(
        &std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .to_string();
    std::fs::write(
        d.join("cutover.toml"),
        format!(
            "[[targets]]\nname = \"staging\"\nengine = \"postgres\"\nenvironment = \"staging\"\nprimary = \"{stg}\"\nexecutor = \"native\"\n\n\
             [[targets]]\nname = \"prod\"\nengine = \"postgres\"\nenvironment = \"prod\"\nprimary = \"{prod}\"\nexecutor = \"native\"\n\n\
             [[policy.people]]\nid = \"me\"\nname = \"Me\"\nrole = \"dba\"\nlocal = [\"{me}\"]\n\n\
             # prod/medium needs no approval here: only the prod run's estimate matters.\n\
             [[policy.approvals.rules]]\nenvironment = \"prod\"\nrisk = \"high\"\ncount = 1\nroles = [\"dba\"]\n"
        ),
    )
    .unwrap();
    let cutover = |args: &[&str], key: bool| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_cutover"));
        c.args(args).current_dir(d).env("USER", &me);
        if key {
            c.env("CUTOVER_AUDIT_KEY", "an-audit-key-for-tests-0123456789");
        } else {
            c.env_remove("CUTOVER_AUDIT_KEY");
        }
        let out = c.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let estimate = |json: &str| -> f64 {
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        v["migrations"][0]["statements"][0]["estimate"]["duration_seconds"]
            .as_f64()
            .unwrap()
    };

    let (_, before, _) = cutover(
        &["plan", "db", "--target", "prod", "--format", "json"],
        true,
    );
    assert!(!before.contains("calibrated from"), "{before}");

    // The rehearsal keeps its trail elsewhere than `.cutover/` (as a service
    // does): calibration must read the trail the runs wrote, not the cwd's.
    const REC: [&str; 4] = ["--trail", "rec/audit.jsonl", "--runs", "rec/runs"];
    fn with_rec<'a>(args: &[&'a str]) -> Vec<&'a str> {
        [args, &REC[..]].concat()
    }
    let (code, out, err) = cutover(
        &with_rec(&["run", "db", "--target", "staging", "--no-tui"]),
        true,
    );
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    // The run's id is its directory (whatever the id scheme).
    let runs: Vec<String> = std::fs::read_dir(d.join("rec/runs"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().join("plan.json").is_file())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = &runs[0];

    // The working directory's (empty) history calibrates nothing.
    let (_, cwd_only, _) = cutover(
        &["plan", "db", "--target", "prod", "--format", "json"],
        true,
    );
    assert!(!cwd_only.contains("calibrated from"), "{cwd_only}");
    let (_, after, err) = cutover(
        &with_rec(&["plan", "db", "--target", "prod", "--format", "json"]),
        true,
    );
    println!("{after}");
    assert!(
        after.contains(&format!(
            "estimates calibrated from staging run {run} (copy/rewrite"
        )),
        "{after}\n{err}"
    );
    assert_ne!(estimate(&before), estimate(&after));
    let (_, text, _) = cutover(&with_rec(&["plan", "db", "--target", "prod"]), true);
    assert!(
        text.contains(&format!(
            "note: estimates calibrated from staging run {run}"
        )),
        "{text}"
    );

    // Without the audit key the staging history cannot be verified: no calibration.
    let (_, unkeyed, _) = cutover(
        &with_rec(&["plan", "db", "--target", "prod", "--format", "json"]),
        false,
    );
    assert!(!unkeyed.contains("calibrated from"), "{unkeyed}");
    assert_eq!(estimate(&before), estimate(&unkeyed));

    // A prod run with that trail plans with the calibrated estimate too (its
    // ETA and pre-flight come from the plan it stores).
    let (code, out, err) = cutover(
        &with_rec(&["run", "db", "--target", "prod", "--no-tui"]),
        true,
    );
    assert_eq!(code, Some(0), "prod run: stdout: {out}\nstderr: {err}");
    let prod_plan = std::fs::read_dir(d.join("rec/runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.ends_with(run.as_str()))
        .find_map(|p| std::fs::read_to_string(p.join("plan.json")).ok())
        .expect("the prod run stored its plan");
    assert!(
        prod_plan.contains(&format!("calibrated from staging run {run}")),
        "{prod_plan}"
    );
}

/// A busy staging table: the probe gives up after its short lock_timeout and
/// says why, instead of queueing every query on the table behind it.
#[test]
fn a_held_lock_on_staging_times_out_quickly() {
    let Some(dsn) = url("CUTOVER_TEST_PG_PRIMARY") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fixture = with_db(&dsn, "verify_busy");
    let holder = rt.block_on(async {
        let admin = pg(&dsn).await;
        admin
            .batch_execute("DROP DATABASE IF EXISTS verify_busy WITH (FORCE)")
            .await
            .unwrap();
        admin
            .batch_execute("CREATE DATABASE verify_busy")
            .await
            .unwrap();
        pg(&fixture).await.batch_execute(PG_SETUP).await.unwrap();
        let h = pg(&fixture).await;
        h.batch_execute("BEGIN; SELECT 1 FROM t LIMIT 1")
            .await
            .unwrap();
        h
    });
    let dir = tempfile::tempdir().unwrap();
    let mut args = write_fixture(
        dir.path(),
        "postgres",
        "staging",
        &fixture,
        &["ALTER TABLE t ADD COLUMN x int"],
    );
    args.lock_timeout_ms = 200;
    let r = cutover::cmd::verify::report(&args).expect("verify runs");
    let s = &r.migrations[0].statements[0];
    let Outcome::Failed { error } = &s.outcome else {
        panic!("expected a lock timeout: {:?}", s.outcome)
    };
    assert!(
        error.contains("55P03") && error.contains("200 ms"),
        "{error}"
    );
    assert_eq!(r.failed, 1);
    rt.block_on(async { holder.batch_execute("ROLLBACK").await.unwrap() });
    assert!(r.leftovers.is_empty(), "{:?}", r.leftovers);
}

/// #12's known-dangerous migration: a blocking index build on a 1,000,000-row
/// table is high in the plan, and staging confirms the lock it takes.
#[test]
fn a_blocking_index_build_on_a_large_table_is_high_and_confirmed() {
    let Some(dsn) = url("CUTOVER_TEST_PG_PRIMARY") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fixture = with_db(&dsn, "verify_big");
    rt.block_on(async {
        let admin = pg(&dsn).await;
        admin
            .batch_execute("DROP DATABASE IF EXISTS verify_big WITH (FORCE)")
            .await
            .unwrap();
        admin
            .batch_execute("CREATE DATABASE verify_big")
            .await
            .unwrap();
        pg(&fixture)
            .await
            .batch_execute(
                "CREATE TABLE orders (id int PRIMARY KEY, customer int, note text);
                 INSERT INTO orders SELECT g, g % 1000, 'n' FROM generate_series(1, 1000000) g;
                 ANALYZE orders;",
            )
            .await
            .unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    let args = write_fixture(
        dir.path(),
        "postgres",
        "staging",
        &fixture,
        &["CREATE INDEX orders_customer ON orders (customer)"],
    );
    let r = cutover::cmd::verify::report(&args).expect("verify runs");
    print_disagreements(&r);
    assert_no_under_prediction(&r);
    let s = &r.migrations[0].statements[0];
    assert_eq!(s.predicted_risk, cutover::model::Risk::High);
    assert!(
        s.verdict
            .findings
            .iter()
            .any(|f| f.rule == "create-index-blocking"),
        "{:?}",
        s.verdict.findings
    );
    let Outcome::Observed(o) = &s.outcome else {
        panic!("{:?}", s.outcome)
    };
    let lock = o.lock.as_ref().unwrap();
    assert_eq!(lock.mode, "ShareLock");
    assert_eq!(lock.blocks, Blocks::Writes);
    assert!(s.disagreements.is_empty(), "{:?}", s.disagreements);
    assert!(r.leftovers.is_empty(), "{:?}", r.leftovers);
}
