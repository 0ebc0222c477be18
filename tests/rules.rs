//! One case (at least) per rule in rules.toml: the SQL that must trigger it, the
//! engine and table size, and the risk the statement (or migration) must get.
//! A rule without a case fails `every_rule_has_a_case`.

use cutover::catalog::load_stats;
use cutover::migrate::{LoadOptions, load_paths};
use cutover::model::{Engine, EngineVersion, Plan, Risk};
use cutover::risk::{Context, RuleSet, classify};

const STATS: &str = r#"
[tables.big]
rows = 10_000_000
bytes = 5_000_000_000
columns = { v = "varchar(10)", w = "varchar(50)", e = "enum('a','b')", n = "int", c = "int NOT NULL", t = "text" }
indexes = [{ name = "big_n_idx", columns = ["n"] }, { name = "big_bad_idx", columns = ["c"], valid = false }]
[tables.small]
rows = 100
bytes = 16384
columns = { v = "varchar(10)", n = "int", c = "int NOT NULL" }
indexes = []
[tables.parent]
rows = 100
bytes = 16384
[tables.child]
rows = 100
bytes = 16384
has_triggers = true
columns = { parent_id = "int", n = "int" }
indexes = [{ name = "child_pkey", columns = ["id"], unique = true }]
foreign_keys = [{ name = "child_parent_fk", columns = ["parent_id"], references = "parent", on_delete = "cascade" }]
[tables.docs]
rows = 100
bytes = 16384
columns = { id = "int NOT NULL", n = "int", body = "text" }
indexes = [{ name = "PRIMARY", columns = ["id"], unique = true }, { name = "docs_ft", columns = ["body"], fulltext = true }]
"#;

/// Where the expected finding sits.
#[derive(Clone, Copy)]
enum At {
    /// Statement index within the only migration.
    Stmt(usize),
    /// The migration's own (transaction-level) findings.
    Migration,
}

struct Case {
    rule: &'static str,
    engine: Engine,
    version: Option<&'static str>,
    /// File name decides the format: `V1__x.sql` is Flyway (one transaction on PostgreSQL).
    file: &'static str,
    sql: &'static str,
    at: At,
    risk: Risk,
}

fn plan(c: &Case) -> Plan {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(c.file);
    std::fs::write(&path, c.sql).unwrap();
    let ms = load_paths(
        &[path],
        &LoadOptions {
            engine: Some(c.engine),
            format: None,
        },
    )
    .unwrap();
    let rules = RuleSet::default_rules();
    let catalog = load_stats(STATS, "stats", c.engine).unwrap();
    let mut pg = EngineVersion::default_for(Engine::Postgres);
    let mut my = EngineVersion::default_for(Engine::Mysql);
    if let Some(v) = c
        .version
        .map(|v| EngineVersion::parse(v).expect("case version"))
    {
        match v.engine() {
            Engine::Postgres => pg = v,
            Engine::Mysql => my = v,
        }
    }
    classify(
        &ms,
        &Context {
            rules: &rules,
            catalog: &catalog,
            pg_version: pg,
            mysql_version: my,
        },
    )
}

use At::*;
use Engine::{Mysql as My, Postgres as Pg};
use Risk::*;

#[rustfmt::skip]
fn cases() -> Vec<Case> {
    let c = |rule, engine, sql, at, risk| Case { rule, engine, version: None, file: "t.sql", sql, at, risk };
    let v = |rule, engine, version, sql, at, risk| Case { rule, engine, version: Some(version), file: "t.sql", sql, at, risk };
    let f = |rule, engine, sql, at, risk| Case { rule, engine, version: None, file: "V1__t.sql", sql, at, risk };
    vec![
        c("unanalyzable-sql", Pg, "ALTR TABLE big ADD x int", Stmt(0), High),
        c("unanalyzable-sql", Pg, "ALTER TABLE `big` ADD COLUMN `x` int", Stmt(0), High),
        c("dynamic-sql", Pg, "DO $$ BEGIN EXECUTE format('DROP TABLE %I', 't'); END $$", Stmt(0), High),
        c("dynamic-sql", My, "PREPARE stmt FROM @nowhere", Stmt(0), High),
        c("drop-table", Pg, "DROP TABLE small", Stmt(0), High),
        c("drop-column", My, "ALTER TABLE small DROP COLUMN n", Stmt(0), High),
        c("truncate", Pg, "TRUNCATE small", Stmt(0), High),
        c("dml-without-where", Pg, "DELETE FROM small", Stmt(0), High),
        c("batched-backfill", Pg, "-- cutover: backfill table=big set=\"n = 0\" key=id batch=1s\nSELECT 1;\n", Stmt(1), Medium),
        c("drop-schema-or-database", Pg, "DROP SCHEMA app", Stmt(0), High),
        c("drop-cascade", Pg, "DROP VIEW v CASCADE", Stmt(0), High),
        c("drop-partition", My, "ALTER TABLE big DROP PARTITION p2019", Stmt(0), High),
        c("create-table-force", My, "CREATE OR REPLACE TABLE big (id int)", Stmt(0), High),
        c("create-index-blocking", Pg, "CREATE INDEX i ON big (n)", Stmt(0), High),
        c("create-index-blocking", Pg, "CREATE INDEX i ON small (n)", Stmt(0), Medium),
        c("drop-index-blocking", Pg, "DROP INDEX big_n_idx", Stmt(0), Medium),
        c("reindex-blocking", Pg, "REINDEX TABLE big", Stmt(0), High),
        c("mysql-add-secondary-index", My, "ALTER TABLE big ADD INDEX i (n)", Stmt(0), Medium),
        c("mysql-add-secondary-index", My, "CREATE INDEX i ON small (n)", Stmt(0), Low),
        c("mysql-fulltext-spatial-index", My, "ALTER TABLE big ADD FULLTEXT INDEX ft (t)", Stmt(0), High),
        c("unique-index-may-fail", Pg, "CREATE UNIQUE INDEX CONCURRENTLY u ON big (n)", Stmt(0), Medium),
        c("add-check-validated", Pg, "ALTER TABLE big ADD CONSTRAINT ck CHECK (n > 0)", Stmt(0), High),
        c("add-check-validated", My, "ALTER TABLE big ADD CONSTRAINT ck CHECK (n > 0)", Stmt(0), High),
        c("add-foreign-key-validated", Pg, "ALTER TABLE big ADD CONSTRAINT fk FOREIGN KEY (n) REFERENCES parent (id)", Stmt(0), High),
        c("validate-constraint", Pg, "ALTER TABLE big VALIDATE CONSTRAINT fk", Stmt(0), Low),
        c("add-unique-constraint", Pg, "ALTER TABLE big ADD CONSTRAINT u UNIQUE (n)", Stmt(0), High),
        c("add-primary-key", Pg, "ALTER TABLE big ADD PRIMARY KEY (c)", Stmt(0), High),
        c("add-exclusion-constraint", Pg, "ALTER TABLE big ADD CONSTRAINT ex EXCLUDE USING gist (n WITH =)", Stmt(0), High),
        c("constraint-using-index", Pg, "ALTER TABLE big ADD CONSTRAINT u UNIQUE USING INDEX big_n_uq", Stmt(0), Medium),
        c("drop-primary-key", My, "ALTER TABLE big DROP PRIMARY KEY", Stmt(0), High),
        c("drop-foreign-key", My, "ALTER TABLE big DROP FOREIGN KEY fk", Stmt(0), Medium),
        c("column-type-rebuilds-fk", Pg, "ALTER TABLE child ALTER COLUMN parent_id TYPE bigint", Stmt(0), Medium),
        c("fulltext-online-rebuild-limit", My, "ALTER TABLE docs DROP PRIMARY KEY, ADD PRIMARY KEY (id, n)", Stmt(0), Medium),
        c("drop-constraint", Pg, "ALTER TABLE big DROP CONSTRAINT ck", Stmt(0), Medium),
        c("set-not-null", Pg, "ALTER TABLE big ALTER COLUMN n SET NOT NULL", Stmt(0), High),
        c("set-not-null", Pg, "ALTER TABLE small ALTER COLUMN n SET NOT NULL", Stmt(0), Medium),
        c("drop-not-null", Pg, "ALTER TABLE big ALTER COLUMN c DROP NOT NULL", Stmt(0), Medium),
        c("not-null-column-without-default", Pg, "ALTER TABLE small ADD COLUMN x int NOT NULL", Stmt(0), High),
        c("not-null-zero-fill", My, "ALTER TABLE small ADD COLUMN x int NOT NULL", Stmt(0), Medium),
        c("add-column-volatile-default", Pg, "ALTER TABLE big ADD COLUMN x float8 DEFAULT random()", Stmt(0), High),
        v("add-column-volatile-default", Pg, "postgres-10", "ALTER TABLE big ADD COLUMN x int DEFAULT 0", Stmt(0), High),
        c("add-column-expression-default", My, "ALTER TABLE big ADD COLUMN x char(36) DEFAULT (UUID())", Stmt(0), High),
        c("add-column-stored-generated", Pg, "ALTER TABLE big ADD COLUMN x int GENERATED ALWAYS AS (n + 1) STORED", Stmt(0), High),
        c("add-column-auto-increment", Pg, "ALTER TABLE big ADD COLUMN x bigserial", Stmt(0), High),
        c("add-column-auto-increment", My, "ALTER TABLE big ADD COLUMN x INT AUTO_INCREMENT UNIQUE", Stmt(0), High),
        c("add-column-inline-constraint", Pg, "ALTER TABLE big ADD COLUMN x int REFERENCES parent (id)", Stmt(0), High),
        c("add-column", Pg, "ALTER TABLE big ADD COLUMN x int DEFAULT 0", Stmt(0), Low),
        c("add-column", My, "ALTER TABLE big ADD COLUMN x int", Stmt(0), Low),
        c("add-column-json", Pg, "ALTER TABLE big ADD COLUMN x json", Stmt(0), Low),
        c("change-column-type", Pg, "ALTER TABLE big ALTER COLUMN n TYPE bigint", Stmt(0), High),
        c("change-column-type", My, "ALTER TABLE big MODIFY n BIGINT", Stmt(0), High),
        c("change-column-type-coercible", Pg, "ALTER TABLE big ALTER COLUMN v TYPE varchar(20)", Stmt(0), Medium),
        c("enum-set-modify", My, "ALTER TABLE big MODIFY e ENUM('z','a','b')", Stmt(0), High),
        v("column-reorder", My, "mysql-8.0.30", "ALTER TABLE big MODIFY n INT AFTER c", Stmt(0), Medium),
        c("charset-conversion", My, "ALTER TABLE big CONVERT TO CHARACTER SET utf8mb4", Stmt(0), High),
        c("set-or-drop-default", Pg, "ALTER TABLE big ALTER COLUMN n SET DEFAULT 0", Stmt(0), Medium),
        c("rename-column", Pg, "ALTER TABLE big RENAME COLUMN n TO m", Stmt(0), Medium),
        c("rename-table", My, "RENAME TABLE big TO big_old", Stmt(0), Medium),
        c("pg-table-rewrite-maintenance", Pg, "VACUUM FULL big", Stmt(0), High),
        c("pg-table-rewrite-maintenance", Pg, "ALTER TABLE big SET LOGGED", Stmt(0), High),
        c("mysql-table-rebuild", My, "OPTIMIZE TABLE big", Stmt(0), Medium),
        c("mysql-table-rebuild", My, "ALTER TABLE big FORCE", Stmt(0), Medium),
        c("mysql-engine-change", My, "ALTER TABLE big ENGINE=MyISAM", Stmt(0), High),
        c("mysql-copy-algorithm", My, "ALTER TABLE big MODIFY n BIGINT", Stmt(0), High),
        c("mysql-copy-or-lock-clause", My, "ALTER TABLE big ADD COLUMN x int, ALGORITHM=COPY", Stmt(0), High),
        c("mysql-partitioning-change", My, "ALTER TABLE big PARTITION BY HASH(c) PARTITIONS 4", Stmt(0), High),
        c("partition-add", My, "ALTER TABLE big ADD PARTITION (PARTITION p2030 VALUES LESS THAN (2031))", Stmt(0), Low),
        c("partition-detach-blocking", Pg, "ALTER TABLE big DETACH PARTITION big_2019", Stmt(0), High),
        c("partition-attach-scan", Pg, "ALTER TABLE big ATTACH PARTITION big_2030 FOR VALUES FROM (2030) TO (2031)", Stmt(0), Medium),
        c("create-or-drop-trigger", Pg, "CREATE TRIGGER trg BEFORE UPDATE ON big FOR EACH ROW EXECUTE FUNCTION f()", Stmt(0), Medium),
        c("refresh-matview-blocking", Pg, "REFRESH MATERIALIZED VIEW big", Stmt(0), High),
        c("pg-enum-rename", Pg, "ALTER TYPE mood RENAME VALUE 'sad' TO 'blue'", Stmt(0), Medium),
        c("add-column-constrained-domain", Pg, "ALTER DOMAIN positive ADD CONSTRAINT pos CHECK (VALUE > 0)", Stmt(0), Medium),
        c("lock-table", Pg, "LOCK TABLE big IN ACCESS EXCLUSIVE MODE", Stmt(0), High),
        c("unknown-alter-action", Pg, "ALTER TABLE big FROBNICATE", Stmt(0), High),
        c("insert-select", Pg, "INSERT INTO big SELECT * FROM small", Stmt(0), Medium),
        c("vacuum-analyze", Pg, "VACUUM big", Stmt(0), Low),
        c("table-size-unknown", Pg, "CREATE INDEX i ON mystery (x)", Stmt(0), High),
        c("missing-lock-timeout", Pg, "ALTER TABLE big ADD COLUMN x int", Migration, Medium),
        f("statements-after-exclusive-lock", Pg, "SET lock_timeout = '2s';\nALTER TABLE big ADD COLUMN x int;\nUPDATE big SET x = 1 WHERE n < 10;\n", Migration, High),
        f("concurrently-in-transaction", Pg, "SET lock_timeout = '2s';\nBEGIN;\nCREATE INDEX CONCURRENTLY i ON big (n);\nCOMMIT;\n", Migration, High),
        f("validate-in-same-transaction", Pg, "SET lock_timeout = '2s';\nALTER TABLE big ADD CONSTRAINT ck CHECK (n > 0) NOT VALID;\nALTER TABLE big VALIDATE CONSTRAINT ck;\n", Migration, High),
        c("transaction-control", Pg, "BEGIN;\nUPDATE small SET n = 1 WHERE n = 2;\n", Migration, Medium),
        c("lock-timeout-too-long", Pg, "SET lock_timeout = '10min';\nALTER TABLE big ADD COLUMN x int;\n", Migration, Medium),
        c("mysql-implicit-commit", My, "SET SESSION lock_wait_timeout = 5;\nALTER TABLE small ADD COLUMN x int;\nALTER TABLE small ADD COLUMN y int;\n", Migration, Low),
        v("instant-add-row-version-limit", My, "mysql-8.0.30", "ALTER TABLE big ADD COLUMN x int", Stmt(0), Low),
        v("concurrent-index-pg14-bug", Pg, "postgres-14.2", "CREATE INDEX CONCURRENTLY i ON big (n)", Stmt(0), High),
        v("concurrent-index-pg14-bug", Pg, "postgres-14", "REINDEX INDEX CONCURRENTLY big_n_idx", Stmt(0), High),
        c("enum-change-pg", Pg, "DROP TYPE mood;\nCREATE TYPE mood AS ENUM ('sad', 'ok');\n", Migration, High),
        c("enum-change-pg", Pg, "CREATE TYPE mood2 AS ENUM ('sad', 'ok');\nALTER TABLE big ALTER COLUMN t TYPE mood2 USING t::mood2;\n", Migration, High),
        c("index-too-wide", Pg, "CREATE INDEX CONCURRENTLY i ON big (a, b, c, d)", Stmt(0), Low),
        c("rename-schema", Pg, "ALTER SCHEMA app RENAME TO app_old", Stmt(0), Medium),
        c("missing-statement-timeout", Pg, "SET lock_timeout = '2s';\nCREATE INDEX CONCURRENTLY i ON big (n);\n", Migration, Low),
        c("multiple-alter-same-table", My, "SET SESSION lock_wait_timeout = 5;\nALTER TABLE small ADD COLUMN x int;\nALTER TABLE small ADD COLUMN y int;\n", Migration, Low),
        c("auto-increment-reset", My, "ALTER TABLE small AUTO_INCREMENT = 1000", Stmt(0), Low),
        c("volatile-default-single-value", My, "ALTER TABLE small ADD COLUMN x DOUBLE DEFAULT (RAND())", Stmt(0), Low),
        c("drop-column-reclaim", Pg, "ALTER TABLE big DROP COLUMN t", Stmt(0), High),
        c("fk-without-index", Pg, "ALTER TABLE big ADD CONSTRAINT fk FOREIGN KEY (c) REFERENCES parent (id) NOT VALID", Stmt(0), Medium),
        c("fk-without-index", Pg, "ALTER TABLE small ADD CONSTRAINT fk FOREIGN KEY (n) REFERENCES parent (id) NOT VALID", Stmt(0), Low),
        c("fk-lock-on-referenced-table", Pg, "ALTER TABLE child DROP CONSTRAINT child_parent_fk", Stmt(0), Medium),
        c("fk-lock-on-referenced-table", Pg, "DROP TABLE child", Stmt(0), High),
        c("cascade-fk-online-ddl-limit", My, "ALTER TABLE child ADD INDEX i (n)", Stmt(0), Medium),
        c("triggers-on-target", My, "-- cutover: executor=gh-ost\nALTER TABLE child ADD COLUMN x int;\n", Stmt(0), Medium),
        c("triggers-on-target", Pg, "-- cutover: executor=pt-osc\nALTER TABLE child ADD COLUMN x int;\n", Stmt(0), Medium),
        c("non-idempotent-ddl", My, "SET SESSION lock_wait_timeout = 5;\nCREATE TABLE fresh (id int);\nCREATE INDEX fresh_idx ON fresh (id);\n", Migration, Low),
        c("non-idempotent-ddl", Pg, "SET lock_timeout = '2s';\nDROP INDEX CONCURRENTLY big_old_idx;\nCREATE INDEX CONCURRENTLY big_n2_idx ON big (n);\n", Migration, Low),
        c("drop-owned", Pg, "DROP OWNED BY app", Stmt(0), High),
        c("create-rule-instead", Pg, "CREATE RULE r AS ON INSERT TO small DO INSTEAD NOTHING", Stmt(0), High),
        c("add-column-domain-check", Pg, "CREATE DOMAIN posint AS int CHECK (VALUE > 0);\nALTER TABLE big ADD COLUMN p posint;\n", Stmt(1), High),
        c("mysql-partition-clause-algorithm-ignored", My, "ALTER TABLE big PARTITION BY HASH(c) PARTITIONS 4, ALGORITHM=INSTANT", Stmt(0), High),
    ]
}

#[test]
fn each_case_fires_its_rule_at_the_expected_risk() {
    let mut failures = Vec::new();
    for c in cases() {
        let p = plan(&c);
        let m = &p.migrations[0];
        let (findings, risk) = match c.at {
            Stmt(i) => (&m.statements[i].findings, m.statements[i].risk),
            Migration => (&m.findings, m.risk),
        };
        let fired = findings.iter().any(|f| f.rule == c.rule);
        if !fired || risk != c.risk {
            failures.push(format!(
                "{} on {:?}: `{}` → fired={fired}, risk={risk} (want {}); findings: {:?}",
                c.rule,
                c.engine,
                c.sql.replace('\n', " "),
                c.risk,
                findings
                    .iter()
                    .map(|f| format!("{}:{}", f.rule, f.risk))
                    .collect::<Vec<_>>()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_rule_has_a_case() {
    let rules = RuleSet::default_rules();
    let mut covered: std::collections::HashSet<&str> = cases().iter().map(|c| c.rule).collect();
    // Driven by live facts only: covered by `lock_queue_risk_needs_an_old_transaction_on_the_table`.
    covered.insert("lock-queue-risk");
    let missing: Vec<&String> = rules
        .rules
        .keys()
        .filter(|id| !covered.contains(id.as_str()))
        .collect();
    assert!(missing.is_empty(), "rules without a test case: {missing:?}");
}

#[test]
fn the_pg14_index_bug_is_not_reported_on_fixed_releases() {
    for v in ["postgres-14.4", "postgres-15", "postgres-13.9"] {
        let case = Case {
            rule: "",
            engine: Pg,
            version: Some(v),
            file: "t.sql",
            sql: "CREATE INDEX CONCURRENTLY i ON big (n)",
            at: Stmt(0),
            risk: Low,
        };
        let p = plan(&case);
        let rules: Vec<&str> = p.migrations[0].statements[0]
            .findings
            .iter()
            .map(|f| f.rule.as_str())
            .collect();
        assert!(
            !rules.contains(&"concurrent-index-pg14-bug"),
            "{v}: {rules:?}"
        );
    }
}

/// Catalog-only ALTER TABLE forms: the lock PostgreSQL 15 really takes
/// (`cutover verify` found SET STORAGE/COMPRESSION planned one level too weak).
#[test]
fn catalog_only_alters_take_the_lock_the_engine_takes() {
    let lock_of = |sql: &'static str| {
        let p = plan(&Case {
            rule: "",
            engine: Pg,
            version: None,
            file: "t.sql",
            sql,
            at: Stmt(0),
            risk: Low,
        });
        p.migrations[0].statements[0].lock.mode.clone()
    };
    for sql in [
        "ALTER TABLE small ALTER COLUMN v SET STORAGE EXTERNAL",
        "ALTER TABLE small ALTER COLUMN v SET COMPRESSION pglz",
        "ALTER TABLE small INHERIT parent",
        "ALTER TABLE small NO INHERIT parent",
        "ALTER TABLE small SET SCHEMA archive",
        "ALTER TABLE small NOT OF",
        "ALTER TABLE small NO FORCE ROW LEVEL SECURITY",
    ] {
        assert_eq!(lock_of(sql), "AccessExclusiveLock", "{sql}");
    }
    for sql in [
        "ALTER TABLE small ALTER COLUMN v SET STATISTICS 500",
        "ALTER TABLE small ALTER COLUMN v SET (n_distinct = 100)",
        "ALTER TABLE small CLUSTER ON small_pkey",
        "ALTER TABLE small SET WITHOUT CLUSTER",
        "ALTER TABLE small SET (fillfactor = 90)",
    ] {
        assert_eq!(lock_of(sql), "ShareUpdateExclusiveLock", "{sql}");
    }
}

/// LOCK TABLE takes the mode it names (ACCESS EXCLUSIVE without one); still high risk.
#[test]
fn explicit_lock_table_takes_the_mode_it_names() {
    let got = |sql: &'static str| {
        let p = plan(&Case {
            rule: "",
            engine: Pg,
            version: None,
            file: "t.sql",
            sql,
            at: Stmt(0),
            risk: Low,
        });
        let s = &p.migrations[0].statements[0];
        (s.lock.mode.clone(), s.risk)
    };
    assert_eq!(
        got("LOCK TABLE small IN SHARE MODE"),
        ("ShareLock".into(), High)
    );
    assert_eq!(
        got("LOCK TABLE small IN ROW EXCLUSIVE MODE NOWAIT"),
        ("RowExclusiveLock".into(), High)
    );
    assert_eq!(
        got("LOCK TABLE small"),
        ("AccessExclusiveLock".into(), High)
    );
}

/// A column type change re-creates the foreign keys using the column, on both
/// sides: the other table is locked too (seen by `cutover verify` on PostgreSQL 15).
#[test]
fn column_type_change_locks_the_other_side_of_its_foreign_keys() {
    let other_locks = |sql: &'static str| {
        let p = plan(&Case {
            rule: "",
            engine: Pg,
            version: None,
            file: "t.sql",
            sql,
            at: Stmt(0),
            risk: Low,
        });
        p.migrations[0].statements[0]
            .lock
            .other_locks
            .iter()
            .map(|o| format!("{} {}", o.table, o.mode))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        other_locks("ALTER TABLE child ALTER COLUMN parent_id TYPE bigint"),
        ["parent AccessExclusiveLock"]
    );
    // The referenced side: parent's indexes are unknown, so its key may be any column.
    assert_eq!(
        other_locks("ALTER TABLE parent ALTER COLUMN id TYPE bigint"),
        ["child AccessExclusiveLock"]
    );
    // A column no foreign key uses locks nothing else.
    assert!(other_locks("ALTER TABLE child ALTER COLUMN n TYPE bigint").is_empty());
}

/// MySQL/MariaDB: a rebuild of a table holding a FULLTEXT index cannot be
/// LOCK=NONE, whether the index is in the catalog or added earlier in the plan.
#[test]
fn fulltext_index_forces_a_shared_lock_on_rebuilds() {
    let stmt_lock = |sql: &'static str, i: usize| {
        let p = plan(&Case {
            rule: "",
            engine: My,
            version: None,
            file: "t.sql",
            sql,
            at: Stmt(0),
            risk: Low,
        });
        p.migrations[0].statements[i].lock.mode.clone()
    };
    assert_eq!(
        stmt_lock(
            "ALTER TABLE docs DROP PRIMARY KEY, ADD PRIMARY KEY (id, n)",
            0
        ),
        "INPLACE, LOCK=SHARED"
    );
    assert_eq!(
        stmt_lock(
            "ALTER TABLE small ADD FULLTEXT INDEX ft (v);\nALTER TABLE small ENGINE=InnoDB;\n",
            1
        ),
        "INPLACE, LOCK=SHARED"
    );
    assert_eq!(
        stmt_lock("ALTER TABLE small ENGINE=InnoDB", 0),
        "INPLACE, LOCK=NONE"
    );
    // A table's first FULLTEXT index rebuilds it (FTS_DOC_ID); a second does not.
    let rewrites = |sql: &'static str| {
        plan(&Case {
            rule: "",
            engine: My,
            version: None,
            file: "t.sql",
            sql,
            at: Stmt(0),
            risk: Low,
        })
        .migrations[0]
            .statements[0]
            .rewrites_table
    };
    assert!(rewrites("CREATE FULLTEXT INDEX ft ON small (v)"));
    assert!(rewrites("ALTER TABLE small ADD FULLTEXT INDEX ft (v)"));
    assert!(!rewrites("CREATE FULLTEXT INDEX ft2 ON docs (body)"));
    assert!(!rewrites("ALTER TABLE docs ADD FULLTEXT INDEX ft2 (body)"));
}

#[test]
fn fk_facts_shape_locks_and_index_checks() {
    let case = |sql: &'static str| Case {
        rule: "",
        engine: Pg,
        version: None,
        file: "t.sql",
        sql,
        at: Stmt(0),
        risk: Low,
    };
    // An index created earlier in the plan counts.
    let p = plan(&case(
        "CREATE INDEX CONCURRENTLY i ON small (n);\nALTER TABLE small ADD CONSTRAINT fk FOREIGN KEY (n) REFERENCES parent (id) NOT VALID;\n",
    ));
    let rules: Vec<&str> = p.migrations[0].statements[1]
        .findings
        .iter()
        .map(|f| f.rule.as_str())
        .collect();
    assert!(!rules.contains(&"fk-without-index"), "{rules:?}");
    // The referenced table is locked ACCESS EXCLUSIVE when the FK goes.
    let p = plan(&case("ALTER TABLE child DROP CONSTRAINT child_parent_fk"));
    let lock = &p.migrations[0].statements[0].lock;
    assert!(
        lock.other_locks
            .iter()
            .any(|o| o.table == "parent" && o.mode == "AccessExclusiveLock"),
        "{lock:?}"
    );
    // A constraint that is not a known FK does not lock another table.
    let p = plan(&case("ALTER TABLE child DROP CONSTRAINT child_check"));
    assert!(p.migrations[0].statements[0].lock.other_locks.is_empty());
    // MySQL: the cascading FK turns LOCK=NONE into LOCK=SHARED.
    let p = plan(&Case {
        engine: My,
        ..case("ALTER TABLE child ADD INDEX i (n)")
    });
    assert_eq!(
        p.migrations[0].statements[0].lock.mode,
        "NOCOPY, LOCK=SHARED"
    );
    let p = plan(&Case {
        engine: My,
        ..case("ALTER TABLE small ADD INDEX i (n)")
    });
    assert_eq!(p.migrations[0].statements[0].lock.mode, "NOCOPY, LOCK=NONE");
}

#[test]
fn guarded_or_transactional_ddl_is_idempotent_enough() {
    for (file, sql) in [
        (
            "t.sql",
            "SET lock_timeout = '2s';\nCREATE TABLE IF NOT EXISTS fresh (id int);\nCREATE INDEX IF NOT EXISTS fresh_idx ON fresh (id);\nDROP TABLE IF EXISTS old_t;\n",
        ),
        // Flyway wraps a PostgreSQL migration in one transaction: a failure rolls it all back.
        (
            "V1__t.sql",
            "SET lock_timeout = '2s';\nCREATE TABLE fresh (id int);\nCREATE INDEX fresh_idx ON fresh (id);\n",
        ),
    ] {
        let p = plan(&Case {
            rule: "",
            engine: Pg,
            version: None,
            file,
            sql,
            at: Migration,
            risk: Low,
        });
        let rules: Vec<&str> = p.migrations[0]
            .findings
            .iter()
            .map(|f| f.rule.as_str())
            .collect();
        assert!(!rules.contains(&"non-idempotent-ddl"), "{file}: {rules:?}");
    }
}

#[test]
fn safe_statements_stay_low() {
    for (engine, sql) in [
        (
            Pg,
            "SET lock_timeout = '2s';\nCREATE INDEX CONCURRENTLY i ON big (n);",
        ),
        (
            Pg,
            "SET lock_timeout = '2s';\nALTER TABLE big ADD CONSTRAINT fk FOREIGN KEY (n) REFERENCES parent (id) NOT VALID;",
        ),
        (
            Pg,
            "CREATE TABLE fresh (id int PRIMARY KEY);\nCREATE INDEX fresh_idx ON fresh (id);",
        ),
        (Pg, "ALTER TYPE mood ADD VALUE 'meh';"),
        (
            My,
            "SET SESSION lock_wait_timeout = 5;\nALTER TABLE big ADD COLUMN x int, ALGORITHM=INSTANT;",
        ),
        (Pg, "UPDATE big SET n = 0 WHERE id BETWEEN 1 AND 1000;"),
    ] {
        let case = Case {
            rule: "",
            engine,
            version: None,
            file: "t.sql",
            sql,
            at: Migration,
            risk: Low,
        };
        let p = plan(&case);
        assert_eq!(
            p.risk,
            Low,
            "{sql}: {}",
            serde_json::to_string_pretty(&p).unwrap()
        );
    }
}

#[test]
fn lock_queue_risk_needs_an_old_transaction_on_the_table() {
    use cutover::catalog::OpenTransaction;
    let sql = "SET lock_timeout = '2s';\nALTER TABLE big ADD COLUMN x int;\nALTER TABLE small ADD COLUMN y int;\n";
    let run = |open: Vec<OpenTransaction>, engine: Engine| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sql");
        std::fs::write(&path, sql).unwrap();
        let ms = load_paths(
            &[path],
            &LoadOptions {
                engine: Some(engine),
                format: None,
            },
        )
        .unwrap();
        let rules = RuleSet::default_rules();
        let mut catalog = load_stats(STATS, "stats", engine).unwrap();
        catalog.open_transactions = open;
        let p = classify(
            &ms,
            &Context {
                rules: &rules,
                catalog: &catalog,
                pg_version: EngineVersion::default_for(Engine::Postgres),
                mysql_version: EngineVersion::default_for(Engine::Mysql),
            },
        );
        p.migrations[0]
            .statements
            .iter()
            .map(|s| {
                (
                    s.risk,
                    s.findings.iter().any(|f| f.rule == "lock-queue-risk"),
                )
            })
            .collect::<Vec<_>>()
    };
    let tx = |age, table: Option<&str>| OpenTransaction {
        id: 42,
        age_seconds: age,
        state: "idle in transaction".into(),
        table: table.map(str::to_string),
    };
    // PostgreSQL: only the table the old transaction holds, and only past the threshold (60 s).
    let got = run(vec![tx(600, Some("public.big"))], Pg);
    assert_eq!(got[1], (High, true), "ALTER of big");
    assert!(!got[2].1, "small is not held");
    assert!(
        !run(vec![tx(5, Some("public.big"))], Pg)[1].1,
        "a young transaction is no queue risk"
    );
    // MySQL: InnoDB does not say which tables, so every DDL is at risk.
    let got = run(vec![tx(600, None)], My);
    assert!(got[1].1 && got[2].1, "{got:?}");
    assert_eq!(got[2].0, High);
}

/// The plan's risk of each statement of `sql` (one migration, plain file).
fn stmt_risks(engine: Engine, sql: &'static str) -> Vec<(Risk, Vec<String>)> {
    let p = plan(&Case {
        rule: "",
        engine,
        version: None,
        file: "t.sql",
        sql,
        at: Migration,
        risk: Low,
    });
    p.migrations[0]
        .statements
        .iter()
        .map(|s| (s.risk, s.findings.iter().map(|f| f.rule.clone()).collect()))
        .collect()
}

/// Issue #15: every class of statement that destroys data, hides DML or cannot be
/// read plans high; at least two variants per engine and class.
#[rustfmt::skip]
#[test]
fn fail_safe_classes_plan_high() {
    let cases: Vec<(&str, Engine, &str)> = vec![
        // 1. DML hidden inside another statement.
        ("hidden-dml", Pg, "WITH d AS (DELETE FROM victim RETURNING *) SELECT count(*) FROM d"),
        ("hidden-dml", Pg, "WITH u AS (UPDATE victim SET a = 1 RETURNING id) SELECT * FROM u"),
        ("hidden-dml", Pg, "WITH x AS (SELECT 1) DELETE FROM victim"),
        ("hidden-dml", Pg, "INSERT INTO archive WITH d AS (DELETE FROM victim RETURNING *) SELECT * FROM d"),
        ("hidden-dml", Pg, "EXPLAIN ANALYZE DELETE FROM victim"),
        ("hidden-dml", Pg, "EXPLAIN (ANALYZE, BUFFERS) UPDATE victim SET a = 1"),
        ("hidden-dml", Pg, "PREPARE p AS DELETE FROM victim"),
        ("hidden-dml", Pg, "DO $$ BEGIN DELETE FROM victim; END $$"),
        ("hidden-dml", My, "WITH x AS (SELECT 1) DELETE FROM victim"),
        ("hidden-dml", My, "WITH x AS (SELECT 1) UPDATE victim SET a = 1"),
        ("hidden-dml", My, "ANALYZE DELETE FROM victim"),
        ("hidden-dml", My, "ANALYZE FORMAT=JSON UPDATE victim SET a = 1"),
        ("hidden-dml", My, "PREPARE s FROM 'DELETE FROM victim'"),
        // 2. Predicates that bound nothing; ORDER BY/LIMIT without WHERE.
        ("no-bound", Pg, "DELETE FROM victim WHERE true"),
        ("no-bound", Pg, "DELETE FROM victim WHERE 1=1"),
        ("no-bound", Pg, "UPDATE victim SET a = 1 WHERE NOT false"),
        ("no-bound", Pg, "UPDATE victim SET a = 1 WHERE (a > 1 OR true)"),
        ("no-bound", Pg, "DELETE FROM victim WHERE ((TRUE))"),
        ("no-bound", Pg, "DELETE FROM victim WHERE id = id"),
        ("no-bound", My, "DELETE FROM victim WHERE 1"),
        ("no-bound", My, "DELETE FROM victim WHERE 1 = 1 LIMIT 18446744073709551615"),
        ("no-bound", My, "DELETE FROM victim ORDER BY id LIMIT 10"),
        ("no-bound", My, "UPDATE victim SET a = 1 LIMIT 18446744073709551615"),
        ("no-bound", My, "UPDATE victim SET a = 1 WHERE a = 2 OR 1"),
        // 3. Statements that silently discard or drop data.
        ("discard", Pg, "CREATE RULE r AS ON INSERT TO victim DO INSTEAD NOTHING"),
        ("discard", Pg, "CREATE OR REPLACE RULE r AS ON DELETE TO victim DO INSTEAD NOTHING"),
        ("discard", Pg, "DROP OWNED BY app"),
        ("discard", Pg, "DROP OWNED BY app, reporting CASCADE"),
        ("discard", My, "ALTER TABLE victim TRUNCATE PARTITION p1"),
        ("discard", My, "ALTER TABLE victim TRUNCATE PARTITION p1, p2"),
        // 4. Executable comments are SQL.
        ("exec-comment", My, "/*!50001 DROP TABLE victim */"),
        ("exec-comment", My, "/*M!100100 DROP TABLE victim */"),
        ("exec-comment", My, "/*!40000 ALTER TABLE victim DROP COLUMN a */"),
        ("exec-comment", My, "/*M!100100 DELETE FROM victim */"),
        // 5. Text the engine rejects, whatever the fallback makes of it.
        ("rejected", Pg, "ALTER TABLE victim ADD COLUMN c int DEFAULT 0 garbage"),
        ("rejected", Pg, "ALTER TABLE victim ADD COLUMN d int,"),
        ("rejected", Pg, "ALTER TABLE victim ADD COLUMN e text DEFAULT 'V0'\nALTER TABLE victim DROP COLUMN f"),
        ("rejected", Pg, "ALTER TABLE victim ADD COLUMN g int UNSIGNED"),
        ("rejected", Pg, "CREATE TABLE t2 (id integer PRIMARY KEY AUTOINCREMENT)"),
        ("rejected", Pg, "ALTER TABLE `victim` ADD COLUMN h int"),
        ("rejected", Pg, "ALTER TABLE victim DROP COLUMN a garbage"),
        ("rejected", Pg, "ALTER TABLE victim ADD COLUMN c int,, ADD COLUMN d int"),
        ("rejected", My, "ALTER TABLE victim ADD COLUMN c int DEFAULT 0 garbage"),
        ("rejected", My, "ALTER TABLE victim ADD COLUMN d int,"),
        ("rejected", My, "ALTER TABLE victim ADD COLUMN e varchar(9) DEFAULT 'V0'\nALTER TABLE victim DROP COLUMN f"),
        ("rejected", My, "CREATE TABLE t2 (id integer PRIMARY KEY AUTOINCREMENT)"),
        ("rejected", My, "ALTER TABLE victim ADD COLUMN c int NOT NULL DEFAULT 0 AFTER id garbage"),
        ("rejected", My, "ALTER TABLE victim MODIFY c int::bigint"),
    ];
    let mut failures = Vec::new();
    for (class, engine, sql) in cases {
        for (i, (risk, rules)) in stmt_risks(engine, sql).into_iter().enumerate() {
            if risk != High {
                failures.push(format!("{class} {engine:?} `{}` statement {i}: {risk} {rules:?}", sql.replace('\n', " ")));
            }
        }
    }
    assert!(failures.is_empty(), "{} below high:\n{}", failures.len(), failures.join("\n"));
}

/// Issue #15 class 6: facts the plan already has.
#[test]
fn plan_facts_carry_to_later_statements() {
    // A table created and then filled by INSERT … SELECT is no longer empty.
    for (engine, sql) in [
        (
            Pg,
            "CREATE TABLE filled (id int);\nINSERT INTO filled SELECT n FROM big;\nCREATE INDEX fi ON filled (id);\n",
        ),
        (
            Pg,
            "CREATE TABLE filled AS SELECT n AS id FROM big;\nALTER TABLE filled ALTER COLUMN id SET NOT NULL;\n",
        ),
        (
            My,
            "CREATE TABLE filled (id int);\nINSERT INTO filled SELECT n FROM big;\nALTER TABLE filled ADD FULLTEXT INDEX ft (id);\n",
        ),
        (
            My,
            "CREATE TABLE filled (id int);\nINSERT INTO filled (id) SELECT n FROM big;\nALTER TABLE filled MODIFY id BIGINT;\n",
        ),
    ] {
        let risks = stmt_risks(engine, sql);
        let (risk, rules) = risks.last().unwrap();
        assert_eq!(*risk, High, "{sql}: {rules:?}");
        assert!(
            rules.iter().any(|r| r == "table-size-unknown"),
            "{sql}: {rules:?}"
        );
    }
    // Still empty without the fill.
    let risks = stmt_risks(
        Pg,
        "CREATE TABLE fresh (id int);\nINSERT INTO fresh VALUES (1);\nCREATE INDEX fi ON fresh (id);\n",
    );
    assert_eq!(risks[2].0, Low, "{risks:?}");
    // A domain with CHECK, created or constrained earlier, makes ADD COLUMN a rewrite.
    for sql in [
        "CREATE DOMAIN posint AS int CHECK (VALUE > 0);\nALTER TABLE big ADD COLUMN p posint;\n",
        "CREATE DOMAIN posint AS int;\nALTER DOMAIN posint ADD CONSTRAINT pos CHECK (VALUE > 0);\nALTER TABLE big ADD COLUMN p posint;\n",
    ] {
        let risks = stmt_risks(Pg, sql);
        let (risk, rules) = risks.last().unwrap();
        assert_eq!(*risk, High, "{sql}: {rules:?}");
        assert!(
            rules.iter().any(|r| r == "add-column-domain-check"),
            "{sql}: {rules:?}"
        );
    }
    let risks = stmt_risks(
        Pg,
        "CREATE DOMAIN label AS text;\nALTER TABLE big ADD COLUMN l label;\n",
    );
    assert_eq!(risks[1].0, Low, "{risks:?}");
    // ALTER CONSTRAINT … DEFERRABLE is catalog-only.
    for sql in [
        "ALTER TABLE big ALTER CONSTRAINT fk DEFERRABLE INITIALLY DEFERRED",
        "ALTER TABLE big ALTER CONSTRAINT fk NOT DEFERRABLE",
    ] {
        let risks = stmt_risks(Pg, sql);
        assert_eq!(risks[0].0, Low, "{sql}: {risks:?}");
    }
}

/// Bounded DML and read-only statements stay below high (the fixes must not
/// raise everything).
#[test]
fn bounded_and_read_only_statements_stay_below_high() {
    for (engine, sql) in [
        (Pg, "DELETE FROM small WHERE id = 1 OR false"),
        (Pg, "UPDATE small SET n = 1 WHERE n IS NULL"),
        (Pg, "WITH x AS (SELECT 1) SELECT * FROM x"),
        (Pg, "EXPLAIN DELETE FROM small"),
        (
            Pg,
            "CREATE RULE r AS ON SELECT TO small DO INSTEAD SELECT * FROM big",
        ),
        (My, "DELETE FROM small WHERE id < 10 ORDER BY id LIMIT 5"),
        (My, "/*!40101 SET NAMES utf8mb4 */"),
        (My, "/*M!100100 SET NAMES utf8mb4 */"),
    ] {
        for (risk, rules) in stmt_risks(engine, sql) {
            assert_ne!(risk, High, "{sql}: {rules:?}");
        }
    }
}
