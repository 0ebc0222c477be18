//! `cutover plan` end to end: the binary on fixtures of every source format.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn cutover(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(args)
        .current_dir(fixtures())
        .env("NO_COLOR", "1")
        .output()
        .expect("run cutover");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn plan_json(args: &[&str]) -> Value {
    let mut a = vec!["plan", "--format", "json", "--config", "/dev/null"];
    a.extend_from_slice(args);
    let (code, out, err) = cutover(&a);
    assert_eq!(code, 0, "stderr: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON ({e}): {out}"))
}

fn versions(p: &Value) -> Vec<String> {
    p["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["version"].as_str().unwrap().to_string())
        .collect()
}

fn stmt(p: &Value, m: usize, s: usize) -> &Value {
    &p["migrations"][m]["statements"][s]
}

fn rules_of(v: &Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn json_contract_has_every_documented_field() {
    let p = plan_json(&["flyway", "--stats", "stats.toml"]);
    for k in ["format_version", "plan_digest", "risk", "migrations"] {
        assert!(p.get(k).is_some(), "missing {k}");
    }
    let m = &p["migrations"][0];
    for k in [
        "version",
        "description",
        "path",
        "checksum",
        "engine",
        "risk",
        "findings",
        "statements",
    ] {
        assert!(m.get(k).is_some(), "missing migration.{k}");
    }
    let s = stmt(&p, 0, 0);
    for k in [
        "index",
        "line",
        "sql",
        "risk",
        "lock",
        "rewrites_table",
        "estimate",
        "findings",
    ] {
        assert!(s.get(k).is_some(), "missing statement.{k}");
    }
    for k in ["mode", "blocks", "table", "other_locks"] {
        assert!(s["lock"].get(k).is_some(), "missing lock.{k}");
    }
    assert_eq!(p["plan_digest"].as_str().unwrap().len(), 64);
    assert_eq!(m["checksum"].as_str().unwrap().len(), 64);
}

#[test]
fn flyway_versions_order_numerically_with_repeatables_last() {
    let p = plan_json(&["flyway", "--stats", "stats.toml"]);
    assert_eq!(versions(&p), ["1", "1.9", "1.10", "R__views"]);
    // accounts is created in V1 of the same plan, so it counts as empty: the
    // blocking index build is not high.
    let idx = stmt(&p, 1, 0);
    assert_eq!(idx["risk"], "low", "{idx}");
}

#[test]
fn blocking_index_on_a_large_existing_table_is_high_with_the_concurrent_alternative() {
    let p = plan_json(&[
        "flyway/V1_9__index.sql",
        "--stats",
        "stats.toml",
        "--engine",
        "postgres",
    ]);
    let s = stmt(&p, 0, 0);
    assert_eq!(s["risk"], "high");
    assert_eq!(s["lock"]["mode"], "ShareLock");
    assert_eq!(s["lock"]["blocks"], "writes");
    let f = &s["findings"][0];
    assert_eq!(f["rule"], "create-index-blocking");
    assert!(
        f["safe_alternative"]
            .as_str()
            .unwrap()
            .contains("CREATE INDEX CONCURRENTLY accounts_email_idx")
    );
    assert!(s["estimate"]["lock_seconds"].as_f64().unwrap() > 1.0);
    // Without facts the size is unknown: still high, estimate null, and it says why.
    let p = plan_json(&["flyway/V1_9__index.sql", "--engine", "postgres"]);
    let s = stmt(&p, 0, 0);
    assert_eq!(s["risk"], "high");
    assert!(s["estimate"].is_null());
    assert!(rules_of(s).contains(&"table-size-unknown".to_string()));
}

#[test]
fn liquibase_changesets_are_migrations_with_their_own_transactions() {
    let p = plan_json(&["liquibase", "--engine", "postgres", "--stats", "stats.toml"]);
    assert_eq!(versions(&p), ["alice:1", "bob:2"]);
    let m0 = &p["migrations"][0];
    assert_eq!(m0["format"], "liquibase");
    // NOT VALID then VALIDATE in the same changeset transaction.
    assert!(
        rules_of(m0).contains(&"validate-in-same-transaction".to_string()),
        "{m0}"
    );
    assert_eq!(m0["risk"], "high");
    // runInTransaction:false lets CONCURRENTLY run.
    let m1 = &p["migrations"][1];
    assert!(
        !rules_of(m1).contains(&"concurrently-in-transaction".to_string()),
        "{m1}"
    );
    assert_eq!(m1["statements"][0]["line"], 9);
}

#[test]
fn alembic_offline_sql_splits_per_revision() {
    let p = plan_json(&["alembic", "--engine", "postgres", "--stats", "stats.toml"]);
    assert_eq!(versions(&p), ["upgrade-preamble", "1a2b3c", "4d5e6f"]);
    let not_null = stmt(&p, 2, 0);
    assert_eq!(not_null["line"], 16);
    assert!(rules_of(not_null).contains(&"set-not-null".to_string()));
    // orders is small (100 rows): a scan under ACCESS EXCLUSIVE is medium, not high.
    assert_eq!(not_null["risk"], "medium");
}

#[test]
fn golang_migrate_mysql_skips_down_files_and_reads_ddl_inside_strings() {
    let p = plan_json(&["golang", "--stats", "stats.toml"]);
    assert_eq!(versions(&p), ["000001", "000002"]);
    assert_eq!(p["migrations"][1]["engine"], "mysql");
    // Planned alone, orders already exists (in the whole plan V1 creates it).
    let p = plan_json(&["golang/000002_widen.up.sql", "--stats", "stats.toml"]);
    // VARCHAR(10) → (100) on utf8mb4 MariaDB: 40 → 400 bytes, instant.
    let widen = stmt(&p, 0, 0);
    assert_eq!(widen["lock"]["mode"], "INSTANT", "{widen}");
    // The PREPARE runs the ALTER hidden in the string: CONVERT TO CHARACTER SET copies.
    let prep = stmt(&p, 0, 3);
    assert!(
        rules_of(prep).contains(&"charset-conversion".to_string()),
        "{prep}"
    );
    assert_eq!(prep["rewrites_table"], true);
}

#[test]
fn diesel_dirs_and_plain_files_load() {
    let p = plan_json(&["diesel", "--engine", "postgres"]);
    assert_eq!(versions(&p), ["2024-01-02-000000"]);
    assert_eq!(p["migrations"][0]["format"], "diesel");
    let p = plan_json(&["plain", "--engine", "postgres"]);
    assert_eq!(versions(&p), ["001", "002"]);
    let del = stmt(&p, 1, 1);
    assert_eq!(del["risk"], "high");
    assert!(rules_of(del).contains(&"dml-without-where".to_string()));
    // Secrets never reach any output.
    let all = serde_json::to_string(&p).unwrap();
    assert!(!all.contains("hunter2"), "password leaked");
}

#[test]
fn directive_selects_executor() {
    let p = plan_json(&["ghost", "--engine", "mysql", "--stats", "stats.toml"]);
    assert_eq!(p["migrations"][0]["executor"], "gh-ost");
}

#[test]
fn bad_directive_is_exit_2_with_file_and_line() {
    let (code, _, err) = cutover(&["plan", "bad", "--config", "/dev/null"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("V1__typo.sql:2:") && err.contains("chunksize"),
        "{err}"
    );
}

#[test]
fn fail_on_sets_exit_1_and_bad_input_wins_with_2() {
    let (code, _, _) = cutover(&[
        "plan",
        "plain",
        "--engine",
        "postgres",
        "--fail-on",
        "high",
        "--config",
        "/dev/null",
    ]);
    assert_eq!(code, 1);
    let (code, _, _) = cutover(&[
        "plan",
        "flyway/V1_10__later.sql",
        "--engine",
        "postgres",
        "--stats",
        "stats.toml",
        "--fail-on",
        "high",
        "--config",
        "/dev/null",
    ]);
    assert_eq!(code, 0, "a low plan passes --fail-on high");
    let (code, _, err) = cutover(&[
        "plan",
        "no-such-dir",
        "--fail-on",
        "low",
        "--config",
        "/dev/null",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("no-such-dir"), "{err}");
}

#[test]
fn rules_override_changes_digest_and_risk() {
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("o.toml");
    std::fs::write(&o, "[rules.dml-without-where]\nrisk = \"medium\"\n").unwrap();
    let base = plan_json(&["plain", "--engine", "postgres"]);
    let over = plan_json(&[
        "plain",
        "--engine",
        "postgres",
        "--rules",
        o.to_str().unwrap(),
    ]);
    assert_ne!(base["plan_digest"], over["plan_digest"]);
    assert_eq!(stmt(&over, 1, 1)["risk"], "medium");
}

#[test]
fn sarif_and_text_render() {
    let (code, out, _) = cutover(&[
        "plan",
        "plain",
        "--engine",
        "postgres",
        "--format",
        "sarif",
        "--config",
        "/dev/null",
    ]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["version"], "2.1.0");
    let results = v["runs"][0]["results"].as_array().unwrap();
    assert!(results.iter().any(|r| r["ruleId"] == "dml-without-where"
        && r["level"] == "error"
        && r["locations"][0]["physicalLocation"]["region"]["startLine"] == 2));
    let (code, out, _) = cutover(&[
        "plan",
        "plain",
        "--engine",
        "postgres",
        "--config",
        "/dev/null",
    ]);
    assert_eq!(code, 0);
    assert!(
        out.contains("dml-without-where") && !out.contains("\x1b["),
        "{out}"
    );
}

#[test]
fn demo_prints_a_plan() {
    // The headless demo: the bundled high-risk plan runs on the simulation to
    // the end, with approval, lag throttling, cut-over and a verified trail.
    let (code, out, err) = cutover(&["demo", "--no-tui", "--speed", "100"]);
    assert_eq!(code, 0, "{err}\n{out}");
    for needle in [
        "approval requested by Bob",
        "approved by Alice",
        "started by you",
        "throttled: replica-3 replica-lag=",
        "copy complete: cut-over postponed",
        "cut-over requested by alice",
        "SUCCEEDED",
        "rows copied: 48,000,000 of 48,000,000",
        "audit trail verified:",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    // The demo keeps its files for the audit commands; this test does not need them.
    if let Some(kept) = out
        .lines()
        .find_map(|l| l.strip_prefix("The demo's files are kept in "))
        .and_then(|l| l.split(' ').next())
    {
        let _ = std::fs::remove_dir_all(kept);
    }
}

#[test]
fn run_needs_a_target_and_live_facts() {
    let (code, _, err) = cutover(&["run", "flyway", "--no-tui"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--target"), "{err}");
    let (code, _, err) = cutover(&["attach", "no-such-run", "--runs", "/nonexistent"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no supervisor is running"), "{err}");
}

/// Plans files written to a fresh directory; returns (exit code, stdout, stderr).
fn plan_files(files: &[(&str, &str)], extra: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let d = dir.path().to_str().unwrap().to_string();
    let mut a = vec!["plan", d.as_str(), "--config", "/dev/null"];
    if !extra.contains(&"--format") {
        a.extend(["--format", "json"]);
    }
    a.extend_from_slice(extra);
    cutover(&a)
}

fn sqls_of(p: &Value) -> Vec<String> {
    p["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["statements"].as_array().unwrap().iter())
        .map(|s| s["sql"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn goose_and_dbmate_plan_only_the_up_half() {
    let goose = "-- +goose Up\nCREATE TABLE a (id int);\n-- +goose StatementBegin\nCREATE FUNCTION f() RETURNS trigger AS $$ BEGIN RETURN NEW; END; $$ LANGUAGE plpgsql;\n-- +goose StatementEnd\n\n-- +goose Down\nDROP TABLE a;\nDROP FUNCTION f();\n";
    let goose_nt = "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY i ON a (id);\n-- +goose Down\nDROP INDEX CONCURRENTLY i;\n";
    let dbmate = "-- migrate:up\nALTER TABLE a ADD COLUMN b int;\n\n-- migrate:down\nALTER TABLE a DROP COLUMN b;\n";
    let dbmate_nt = "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY j ON a (b);\n-- migrate:down\nDROP INDEX j;\n";
    for forced in [None, Some("plain")] {
        let mut extra = vec!["--engine", "postgres"];
        if let Some(f) = forced {
            extra.extend(["--source-format", f]);
        }
        let (code, out, err) = plan_files(
            &[
                ("00001_a.sql", goose),
                ("00002_i.sql", goose_nt),
                ("20240101000003_b.sql", dbmate),
                ("20240101000004_j.sql", dbmate_nt),
            ],
            &extra,
        );
        assert_eq!(code, 0, "{err}");
        let p: Value = serde_json::from_str(&out).unwrap();
        let sqls = sqls_of(&p);
        assert_eq!(sqls.len(), 5, "{forced:?}: {sqls:?}");
        assert!(
            sqls.iter().all(|s| !s.starts_with("DROP")),
            "down half planned: {sqls:?}"
        );
        let formats: Vec<&str> = p["migrations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["format"].as_str().unwrap())
            .collect();
        assert_eq!(formats, ["goose", "goose", "dbmate", "dbmate"]);
        // NO TRANSACTION / transaction:false: CONCURRENTLY is fine; otherwise it
        // would be inside the tool's transaction.
        let rules: Vec<String> = p["migrations"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|m| m["findings"].as_array().unwrap().iter())
            .map(|f| f["rule"].as_str().unwrap().to_string())
            .collect();
        assert!(
            !rules.contains(&"concurrently-in-transaction".to_string()),
            "{rules:?}"
        );
    }
    let (code, out, _) = plan_files(
        &[(
            "00001_i.sql",
            "-- +goose Up\nCREATE INDEX CONCURRENTLY i ON a (id);\n-- +goose Down\nDROP INDEX i;\n",
        )],
        &["--engine", "postgres"],
    );
    assert_eq!(code, 0);
    assert!(out.contains("concurrently-in-transaction"), "{out}");
}

#[test]
fn bad_input_is_exit_2_naming_file_and_line() {
    for (name, text, at) in [
        (
            "V1__q.sql",
            "SELECT 1;\nUPDATE t SET a = 'x WHERE id = 1;\nDROP TABLE t;\n",
            "V1__q.sql:2:",
        ),
        (
            "V1__c.sql",
            "SELECT 1;\n/* start\nDROP TABLE t;\n",
            "V1__c.sql:2:",
        ),
        (
            "V1__d.sql",
            "DO $body$ BEGIN\nPERFORM 1;\nEND $$;\n",
            "V1__d.sql:1:",
        ),
        (
            "1_g.sql",
            "-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n",
            "1_g.sql:2:",
        ),
        (
            "c.sql",
            "--liquibase formatted sql\n--changeset a:1 endDelimiter:\nSELECT 1;\n",
            "c.sql:2:",
        ),
        (
            "d.sql",
            "--liquibase formatted sql\n--changeset a:1\nSELECT 1;\n--changeset a:1\nSELECT 2;\n",
            "d.sql:4:",
        ),
    ] {
        let (code, _, err) = plan_files(&[(name, text)], &["--engine", "postgres"]);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(err.contains(at), "{name}: {err}");
    }
    let (code, _, err) = plan_files(
        &[("V1__a.sql", "/*!40101 SET NAMES utf8 */;\nSELECT `a;\n")],
        &["--engine", "mysql"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("V1__a.sql:2:"), "{err}");
}

#[test]
fn flyway_versions_that_compare_equal_are_duplicates() {
    for (a, b) in [
        ("V1__a.sql", "V1.0__b.sql"),
        ("V1__a.sql", "V01__b.sql"),
        ("V1_2__a.sql", "V1.2.0__b.sql"),
    ] {
        let (code, _, err) = plan_files(
            &[(a, "SELECT 1;"), (b, "SELECT 2;")],
            &["--engine", "postgres"],
        );
        assert_eq!(code, 2, "{a} {b}: {err}");
        assert!(err.contains("must be unique"), "{err}");
    }
    let (code, _, err) = plan_files(
        &[("V1__a.sql", "SELECT 1;"), ("V1.1__b.sql", "SELECT 2;")],
        &["--engine", "postgres"],
    );
    assert_eq!(code, 0, "{err}");
}

#[test]
fn non_regular_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("V1__fifo.sql");
    let st = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(st.success());
    for target in [fifo.clone(), dir.path().to_path_buf()] {
        let (code, _, err) = cutover(&["plan", target.to_str().unwrap(), "--config", "/dev/null"]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("not a regular file") && err.contains("V1__fifo.sql"),
            "{err}"
        );
    }
    let (code, _, err) = cutover(&["plan", "/dev/null", "--config", "/dev/null"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a regular file"), "{err}");
}

#[test]
fn a_closed_pipe_ends_the_plan_quietly_in_every_format() {
    // Output far larger than a pipe's buffer: the write fails whatever the timing.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("big.sql");
    let sql: String = (0..3000)
        .map(|i| format!("ALTER TABLE t{i} ADD COLUMN c{i} int;\n"))
        .collect();
    std::fs::write(&f, sql).unwrap();
    for format in ["text", "json", "sarif"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cutover"))
            .args([
                "plan",
                f.to_str().unwrap(),
                "--engine",
                "postgres",
                "--config",
                "/dev/null",
                "--format",
                format,
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{format}: {err}");
        assert!(err.is_empty(), "{format}: {err}");
    }
}

#[test]
fn secrets_are_redacted_in_every_format() {
    let pg = "ALTER ROLE a PASSWORD E'hunter2';\nALTER ROLE b PASSWORD $pw$hunter2$pw$;\nALTER ROLE c PASSWORD/**/'hunter2';\nALTER ROLE d PASSWORD U&'hunter2';\nSELECT dblink_connect('host=x password=hunter2');\nCREATE SUBSCRIPTION s CONNECTION 'host=x password=hunter2' PUBLICATION p;\nDO $$ BEGIN CREATE ROLE e LOGIN PASSWORD 'hunter2'; END $$;\nALTER ROLE f PASSWORD 'hunter2' GARBAGE GARBAGE;\n";
    let my = "SET PASSWORD FOR u = PASSWORD('hunter2');\nSET PASSWORD FOR 'u'@'%' = 'hunter2';\nCREATE USER v IDENTIFIED VIA ed25519 USING PASSWORD('hunter2');\nPREPARE s FROM 'CREATE USER w IDENTIFIED BY \\'hunter2\\'';\nSELECT PASSWORD('hunter2');\n";
    for (engine, sql) in [("postgres", pg), ("mysql", my)] {
        for format in ["text", "json", "sarif"] {
            let (code, out, err) = plan_files(
                &[("V1__secrets.sql", sql)],
                &["--engine", engine, "--format", format],
            );
            assert_eq!(code, 0, "{err}");
            assert!(
                !out.contains("hunter2") && !err.contains("hunter2"),
                "{engine} {format}: {out}"
            );
            // SARIF carries findings, not statement text.
            assert!(
                format == "sarif" || out.contains("***"),
                "{engine} {format}"
            );
        }
    }
}

#[test]
fn absurd_inputs_are_bounded() {
    // Too many statements: refused with the file and the line of the first one over.
    let many = "SELECT 1;\n".repeat(100_001);
    let (code, _, err) = plan_files(&[("many.sql", &many)], &["--engine", "postgres"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("many.sql:100001:") && err.contains("100000"),
        "{err}"
    );
    // One statement too large to parse cheaply: unanalyzable, high.
    let big = format!("SELECT {};\n", vec!["1"; 100_000].join(","));
    let (code, out, err) = plan_files(&[("big.sql", &big)], &["--engine", "postgres"]);
    assert_eq!(code, 0, "{err}");
    let p: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(p["risk"], "high");
    assert!(rules_of(stmt(&p, 0, 0)).contains(&"unanalyzable-sql".to_string()));
}

/// A `-- cutover: backfill` directive is planned as the batched UPDATE it
/// runs (not as the `SELECT 1` beside it, rated low), with its risk — a
/// backfill of a big table is medium: row locks per batch, replica lag,
/// WAL/binlog volume — and an estimate from the table's size; in JSON, in
/// text and in the Slack pre-flight.
#[test]
fn a_backfill_directive_is_planned_as_its_batched_update() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("V5__backfill.sql"),
        "-- cutover: backfill table=accounts set=\"flag = 1\" key=id batch=500ms where=\"flag IS NULL\"\nSELECT 1;\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("V6__small.sql"),
        "-- cutover: backfill table=orders set=\"status = 'new'\" key=id batch=2s\nSELECT 1;\n",
    )
    .unwrap();
    let d = dir.path().to_str().unwrap();
    let base = [
        "plan",
        d,
        "--config",
        "/dev/null",
        "--engine",
        "postgres",
        "--stats",
        "stats.toml",
    ];
    let json = |extra: &[&str]| -> Value {
        let a: Vec<&str> = base.iter().chain(extra).copied().collect();
        let (code, out, err) = cutover(&a);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    };
    let p = json(&["--format", "json"]);
    // After the file's statements (indexes stay the file's), at its own line.
    assert_eq!(stmt(&p, 0, 0)["sql"], "SELECT 1");
    let big = stmt(&p, 0, 1);
    assert_eq!(big["index"], 1);
    assert_eq!(
        big["sql"],
        "UPDATE accounts SET flag = 1 WHERE flag IS NULL — in batches of ~500 ms by id"
    );
    assert_eq!(big["line"], 1);
    assert_eq!(big["risk"], "medium", "{big}");
    assert!(
        rules_of(big).contains(&"batched-backfill".to_string()),
        "{big}"
    );
    assert!(!rules_of(big).contains(&"dml-without-where".to_string()));
    let reason = big["findings"][0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("~5,000,000 rows") && reason.contains("WAL/binlog"),
        "{reason}"
    );
    let secs = big["estimate"]["duration_seconds"].as_f64().unwrap_or(0.0);
    assert!(secs > 10.0, "an estimate from the table's size: {big}");
    assert_eq!(p["migrations"][0]["risk"], "medium");
    // A small table: the same directive, scaled down.
    let small = stmt(&p, 1, 1);
    assert_eq!(
        small["sql"],
        "UPDATE orders SET status = 'new' — in batches of ~2 s by id"
    );
    assert_eq!(small["risk"], "low", "{small}");
    // Text.
    let a: Vec<&str> = base.iter().chain(&["--format", "text"]).copied().collect();
    let (code, out, err) = cutover(&a);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("UPDATE accounts SET flag = 1 WHERE flag IS NULL"),
        "{out}"
    );
    assert!(out.contains("batched-backfill"), "{out}");
    // The Slack pre-flight.
    let a: Vec<&str> = ["slack", "preview"]
        .iter()
        .chain(base[1..].iter())
        .copied()
        .collect();
    let (code, out, err) = cutover(&a);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("UPDATE accounts SET flag = 1 WHERE flag IS NULL"),
        "{out}"
    );
    assert!(out.contains("in batches of ~500 ms by id"), "{out}");
}
