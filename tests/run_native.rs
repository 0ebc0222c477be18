//! `cutover run --no-tui` end to end on the throwaway PostgreSQL primary: plan with
//! live facts, request (refused without a role → exit 3), run natively, record
//! Flyway history, and a second run of the same plan has nothing pending.

mod db_common;

use std::path::Path;
use std::process::Command;

fn pg_url() -> Option<String> {
    db_common::url("CUTOVER_TEST_PG_PRIMARY")
}

fn cutover(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(args)
        .current_dir(dir)
        .env("CUTOVER_AUDIT_KEY", "an-audit-key-for-tests-0123456789")
        .env("USER", "root")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn os_user() -> String {
    // The supervisor identifies the local actor by the peer's OS user.
    let out = Command::new("id")
        .arg("-un")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test]
async fn headless_native_run_applies_records_history_and_is_refused_without_a_role() {
    let Some(dsn) = pg_url() else { return };
    let (client, conn) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(conn);
    client
        .batch_execute("DROP TABLE IF EXISTS run_e2e; DROP TABLE IF EXISTS flyway_schema_history;")
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    std::fs::create_dir_all(d.join("db")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        d.join("db/V1__run_e2e.sql"),
        "SET lock_timeout = '2s';\nCREATE TABLE run_e2e (id int PRIMARY KEY, note text);\nALTER TABLE run_e2e ADD COLUMN status text;\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let target = format!(
        "[[targets]]\nname = \"dev\"\nengine = \"postgres\"\nenvironment = \"dev\"\nprimary = \"{dsn}\"\nexecutor = \"native\"\n"
    );

    // Nobody holds a role: the request is refused and recorded, nothing runs.
    std::fs::write(d.join("cutover.toml"), &target).unwrap_or_else(|e| panic!("{e}"));
    let (code, _, err) = cutover(d, &["run", "db", "--target", "dev", "--no-tui"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("not allowed to request"), "{err}");
    // The refusal names the key that would let this OS user request.
    assert!(
        err.contains("add a `[[policy.people]]` entry with `local = [\""),
        "{err}"
    );
    let exists: bool = client
        .query_one("SELECT to_regclass('run_e2e') IS NOT NULL", &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .get(0);
    assert!(!exists, "a refused run must not touch the database");

    // A DBA (this OS user) runs it: dev + low risk needs no approval.
    let policy = format!(
        "{target}\n[[policy.people]]\nid = \"me\"\nname = \"Me\"\nrole = \"dba\"\nlocal = [\"{}\"]\n",
        os_user()
    );
    std::fs::write(d.join("cutover.toml"), policy).unwrap_or_else(|e| panic!("{e}"));
    std::fs::remove_dir_all(d.join(".cutover/runs")).unwrap_or_else(|e| panic!("{e}"));
    let (code, out, err) = cutover(d, &["run", "db", "--target", "dev", "--no-tui"]);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("SUCCEEDED"), "{out}");
    let cols: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'run_e2e'",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .get(0);
    assert_eq!(cols, 3);
    let applied: i64 = client
        .query_one(
            "SELECT count(*) FROM flyway_schema_history WHERE version = '1' AND success",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .get(0);
    assert_eq!(applied, 1);

    // Without a Slack token the relay wrote what the channel would have seen.
    // The supervisor outlives the headless client until the relay has rewritten the
    // pre-flight to its final state (edits are coalesced, so this takes seconds).
    let run_dir = std::fs::read_dir(d.join(".cutover/runs"))
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.join("slack-transcript.jsonl").exists())
        .unwrap_or_else(|| panic!("no run wrote a transcript"));
    let name = run_dir.file_name().unwrap_or_default().to_string_lossy();
    // Short ids: target, version range, digest prefix.
    assert!(
        name.starts_with("dev-1-") && name.len() == "dev-1-".len() + 12,
        "{name}"
    );
    let path = run_dir.join("slack-transcript.jsonl");
    let mut transcript = String::new();
    for _ in 0..300 {
        transcript = std::fs::read_to_string(&path).unwrap_or_default();
        if transcript.contains("chat.update") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(transcript.contains("chat.postMessage"), "{transcript}");
    assert!(transcript.contains("completed on"), "{transcript}");
    let last_update = transcript
        .lines()
        .rfind(|l| l.contains("chat.update"))
        .unwrap_or_else(|| panic!("the pre-flight was never updated: {transcript}"));
    assert!(
        !last_update.contains("\"approve\""),
        "stale Approve button left: {last_update}"
    );

    // Flyway's history now records V1: the same plan has nothing pending.
    let (code, out, err) = cutover(d, &["run", "db", "--target", "dev", "--no-tui"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Nothing to run"), "{out}");

    // The trail verifies and tells the story.
    let (code, out, err) = cutover(d, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");
    client
        .batch_execute("DROP TABLE run_e2e; DROP TABLE flyway_schema_history;")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

/// A failed native step names the statement that failed and its own line,
/// not the first line of its transaction.
#[tokio::test]
async fn a_failed_step_names_the_statement_and_its_line() {
    let Some(dsn) = pg_url() else { return };
    let (client, conn) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(conn);
    client
        .batch_execute("DROP TABLE IF EXISTS run_fail; DROP TABLE IF EXISTS flyway_schema_history;")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    std::fs::create_dir_all(d.join("db")).unwrap_or_else(|e| panic!("{e}"));
    // One transaction (Flyway, PostgreSQL); the third statement fails at line 5.
    std::fs::write(
        d.join("db/V1__run_fail.sql"),
        "SET lock_timeout = '2s';\nCREATE TABLE run_fail (id int PRIMARY KEY);\n\n-- the failing one:\nINSERT INTO run_fail (id) VALUES (1 / 0);\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        d.join("cutover.toml"),
        format!(
            "[[targets]]\nname = \"dev\"\nengine = \"postgres\"\nenvironment = \"dev\"\nprimary = \"{dsn}\"\nexecutor = \"native\"\n\n[[policy.people]]\nid = \"me\"\nrole = \"dba\"\nlocal = [\"{}\"]\n",
            os_user()
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (code, out, err) = cutover(d, &["run", "db", "--target", "dev", "--no-tui"]);
    assert_eq!(code, 1, "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains("V1__run_fail.sql:5") && out.contains("INSERT INTO run_fail"),
        "{out}"
    );
    assert!(out.contains("division by zero"), "{out}");
    let exists: bool = client
        .query_one("SELECT to_regclass('run_fail') IS NOT NULL", &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .get(0);
    assert!(!exists, "the transaction was rolled back");
}
