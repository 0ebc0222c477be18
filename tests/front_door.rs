//! What a newcomer meets first: help that teaches, flags that mean what they
//! say, and errors that name the cause.

mod db_common;

use std::path::Path;
use std::process::Command;

fn cutover(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("CUTOVER_AUDIT_KEY")
        .output()
        .expect("run cutover");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// A directory with one MySQL-flavoured migration (its syntax alone does not
/// tell the dialect, so flags decide).
fn mysql_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("V1__add_c.sql"),
        "ALTER TABLE t ADD COLUMN c int AFTER a;\n",
    )
    .unwrap();
    d
}

fn plan_json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let mut a = vec!["plan", ".", "--format", "json", "--config", "/dev/null"];
    a.extend_from_slice(args);
    let (code, out, err) = cutover(dir, &a);
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap()
}

fn rules_of(plan: &serde_json::Value) -> Vec<String> {
    plan["migrations"][0]["statements"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn engine_flags_mean_the_server_they_name() {
    let d = mysql_dir();
    // `--engine mysql` is MySQL (8.0 at the newest modelled patch), not MariaDB.
    let p = plan_json(d.path(), &["--engine", "mysql"]);
    assert_eq!(p["engine_version"], "mysql-8.0.29");
    let p = plan_json(d.path(), &["--engine", "mariadb"]);
    assert_eq!(p["engine_version"], "mariadb-10.11");
    // `mysql-8.0` is the newest 8.0 facts: ADD COLUMN … AFTER is instant there,
    // a rebuild on 8.0.12.
    let newest = plan_json(d.path(), &["--engine-version", "mysql-8.0"]);
    assert_eq!(newest["engine_version"], "mysql-8.0.29");
    assert!(
        !rules_of(&newest).contains(&"mysql-table-rebuild".to_string()),
        "{:?}",
        rules_of(&newest)
    );
    let old = plan_json(d.path(), &["--engine-version", "mysql-8.0.12"]);
    assert!(
        rules_of(&old).contains(&"mysql-table-rebuild".to_string()),
        "{:?}",
        rules_of(&old)
    );
}

#[test]
fn unknown_or_contradicting_versions_are_errors() {
    let d = mysql_dir();
    for (args, want) in [
        (vec!["--engine-version", "postgres-99"], "postgres-99"),
        (vec!["--engine-version", "mysql-7.1"], "mysql-7.1"),
        (vec!["--engine-version", "oracle-19"], "oracle-19"),
        (
            vec!["--engine", "postgres", "--engine-version", "mysql-8.0"],
            "contradicts --engine postgres",
        ),
        (
            vec!["--engine", "mysql", "--engine-version", "mariadb-10.11"],
            "contradicts --engine mysql",
        ),
    ] {
        let mut a = vec!["plan", ".", "--config", "/dev/null"];
        a.extend_from_slice(&args);
        let (code, _, err) = cutover(d.path(), &a);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

#[test]
fn help_teaches_exit_codes_and_only_accepted_formats() {
    let d = tempfile::tempdir().unwrap();
    let (code, out, _) = cutover(d.path(), &["--help"]);
    assert_eq!(code, 0);
    for want in ["cutover demo", "3 run refused", "4 run aborted"] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    for sub in ["demo", "run", "attach"] {
        let (code, out, _) = cutover(d.path(), &[sub, "--help"]);
        assert_eq!(code, 0);
        assert!(out.contains("text") && out.contains("json"), "{sub}: {out}");
        assert!(!out.contains("sarif"), "{sub} --help offers sarif:\n{out}");
    }
    let (code, _, err) = cutover(d.path(), &["demo", "--no-tui", "--format", "sarif"]);
    assert_eq!(code, 2, "{err}");
}

fn config_with(dir: &Path, targets: &[(&str, &str, &str)]) -> std::path::PathBuf {
    let mut t = String::new();
    for (name, engine, dsn) in targets {
        t.push_str(&format!(
            "[[targets]]\nname = \"{name}\"\nengine = \"{engine}\"\nenvironment = \"dev\"\nprimary = \"{dsn}\"\nreplicas = []\n\n"
        ));
    }
    let p = dir.join("cutover.toml");
    std::fs::write(&p, t).unwrap();
    p
}

#[test]
fn connection_errors_name_the_server_and_the_cause() {
    let d = mysql_dir();
    // Nothing listens on loopback port 1.
    config_with(
        d.path(),
        &[
            ("pg", "postgres", "postgres://u:hunter2@127.0.0.1:1/db"),
            ("my", "mariadb", "mysql://u:hunter2@127.0.0.1:1/db"),
        ],
    );
    for target in ["pg", "my"] {
        let (code, _, err) = cutover(d.path(), &["plan", ".", "--target", target]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("127.0.0.1:1") && err.contains("connection refused"),
            "{target}: {err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
    }
    // `cutover run` plans first: the same words.
    let out = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(["run", ".", "--target", "pg", "--no-tui"])
        .current_dir(d.path())
        .env("CUTOVER_AUDIT_KEY", "0123456789abcdef0123456789abcdef")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("127.0.0.1:1") && err.contains("connection refused"),
        "{err}"
    );
}

#[test]
fn unknown_lag_says_why_in_text_and_json() {
    let d = tempfile::tempdir().unwrap();
    let mut t = String::new();
    for (name, engine, scheme) in [("pg", "postgres", "postgres"), ("my", "mariadb", "mysql")] {
        t.push_str(&format!(
            "[[targets]]\nname = \"{name}\"\nengine = \"{engine}\"\nenvironment = \"dev\"\nprimary = \"{scheme}://u@127.0.0.1:1/db\"\nreplicas = [{{ name = \"r1\", dsn = \"{scheme}://u:hunter2@127.0.0.1:1/db\" }}]\n\n"
        ));
    }
    std::fs::write(d.path().join("cutover.toml"), t).unwrap();
    for target in ["pg", "my"] {
        let (code, out, err) = cutover(d.path(), &["lag", "--target", target, "--count", "1"]);
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains("unknown")
                && out.contains("127.0.0.1:1")
                && out.contains("connection refused"),
            "{target}: {out}"
        );
        let (code, out, err) = cutover(
            d.path(),
            &[
                "lag", "--target", target, "--count", "1", "--format", "json",
            ],
        );
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert!(v["seconds"].is_null(), "{out}");
        let why = v["why"].as_str().unwrap_or_default();
        assert!(why.contains("connection refused"), "{target}: {out}");
        assert!(!out.contains("hunter2"), "{out}");
    }
}

/// Swaps the user and password of a URL for ones the server does not know.
fn with_bad_user(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://nosuchuser:wrongpw@{rest}")
}

#[test]
fn authentication_failures_say_so() {
    let (Some(pg), Some(my)) = (
        db_common::url("CUTOVER_TEST_PG_PRIMARY"),
        db_common::url("CUTOVER_TEST_MY_PRIMARY"),
    ) else {
        return;
    };
    let d = mysql_dir();
    config_with(
        d.path(),
        &[
            ("pg", "postgres", &with_bad_user(&pg)),
            ("my", "mysql", &with_bad_user(&my)),
        ],
    );
    for target in ["pg", "my"] {
        let (code, _, err) = cutover(d.path(), &["plan", ".", "--target", target]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("authentication failed"), "{target}: {err}");
        assert!(!err.contains("wrongpw"), "{err}");
    }
}

/// The event wording (trail, console log, headless lines) is built in one
/// place; no `{:?}` there may print Rust's debug text to a DBA.
#[test]
fn event_wording_has_no_debug_formatting() {
    let src = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/audit/show.rs"),
    )
    .unwrap();
    let body = &src[src.find("pub fn describe").unwrap()..];
    let body = &body[..body.find("\n}\n").unwrap()];
    for (n, line) in body.lines().enumerate() {
        assert!(
            !line.contains(":?}"),
            "describe line {}: debug formatting: {line}",
            n + 1
        );
    }
}

/// The whole demo, headless: every event line it prints (throttles, progress,
/// approvals, cut-over) reads as words; its trail is kept for the audit
/// commands it names.
#[test]
fn the_demo_speaks_words_and_keeps_its_trail() {
    let d = tempfile::tempdir().unwrap();
    let (code, out, err) = cutover(d.path(), &["demo", "--no-tui", "--speed", "40"]);
    assert_eq!(code, 0, "{err}\n{out}");
    for line in out.lines() {
        assert!(
            !line.contains(" { ") && !line.contains("\" }"),
            "debug text: {line}"
        );
    }
    assert!(out.contains("throttled"), "{out}");
    // A gh-ost-shaped run: announced as such, throttled by the simulated
    // gh-ost itself with gh-ost's reason, its own lag reading recorded.
    assert!(out.contains("runs under sim (gh-ost-shaped)"), "{out}");
    assert!(out.contains("throttled: replica-3 replica-lag="), "{out}");
    assert!(out.contains("replica-1 (gh-ost)"), "{out}");
    assert!(out.contains("copy complete: cut-over postponed"), "{out}");
    let kept = out
        .lines()
        .find_map(|l| l.strip_prefix("The demo's files are kept in "))
        .and_then(|l| l.split(' ').next())
        .unwrap_or_else(|| panic!("no kept directory in\n{out}"))
        .to_string();
    let trail = format!("{kept}/audit.jsonl");
    let key = format!("{kept}/audit.key");
    let (code, out, err) = cutover(
        d.path(),
        &["audit", "verify", "--trail", &trail, "--key-file", &key],
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = cutover(
        d.path(),
        &["audit", "show", "--trail", &trail, "--key-file", &key],
    );
    assert_eq!(code, 0);
    assert!(out.contains("approved by"), "{out}");

    // `cutover runs` lists it; `forget` removes its directory and says so in the trail.
    let runs = format!("{kept}/runs");
    let common = ["--trail", &trail, "--key-file", &key, "--runs", &runs];
    let mut a = vec!["runs", "--format", "json"];
    a.extend_from_slice(&common);
    let (code, out, err) = cutover(d.path(), &a);
    assert_eq!(code, 0, "{err}");
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    let row = &rows[0];
    assert_eq!(row["state"], "succeeded", "{out}");
    assert_eq!(row["target"], "demo-prod", "{out}");
    assert_eq!(row["requester"], "bob", "{out}");
    assert_eq!(row["directory"], true, "{out}");
    let id = row["id"].as_str().unwrap().to_string();
    let mut a = vec!["forget", &id];
    a.extend_from_slice(&common);
    let (code, out, err) = cutover(d.path(), &a);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!Path::new(&runs).join(&id).exists());
    let (code, out, _) = cutover(
        d.path(),
        &["audit", "show", "--trail", &trail, "--key-file", &key],
    );
    assert_eq!(code, 0);
    assert!(out.contains("forgotten by"), "{out}");
    let (code, out, err) = cutover(
        d.path(),
        &["audit", "verify", "--trail", &trail, "--key-file", &key],
    );
    assert_eq!(code, 0, "{out}{err}");
    let mut a = vec!["forget", "no-such-run"];
    a.extend_from_slice(&common);
    let (code, _, err) = cutover(d.path(), &a);
    assert_eq!(code, 2, "{err}");
    std::fs::remove_dir_all(&kept).unwrap();
}
