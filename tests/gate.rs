//! The gate binds to what runs: each bypass a hostile requester found, tried
//! end to end with the `cutover` binary on the throwaway PostgreSQL and
//! MariaDB primaries (`scripts/test`). Every test checks the database was not
//! touched by what was not approved.

mod db_common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const KEY: &str = "an-audit-key-for-gate-tests-0123456789";

#[derive(Clone, Copy, PartialEq, Debug)]
enum Eng {
    Pg,
    My,
}

impl Eng {
    fn name(self) -> &'static str {
        match self {
            Eng::Pg => "postgres",
            Eng::My => "mysql",
        }
    }
    fn sleep(self, s: u32) -> String {
        match self {
            Eng::Pg => format!("SELECT pg_sleep({s});"),
            Eng::My => format!("SELECT SLEEP({s});"),
        }
    }
}

/// A fresh database `db` on the engine's primary; its DSN, or `None` to skip.
async fn fresh_db(eng: Eng, db: &str) -> Option<String> {
    match eng {
        Eng::Pg => db_common::fresh_pg(db).await,
        Eng::My => db_common::fresh_my(db).await,
    }
}

async fn table_exists(eng: Eng, dsn: &str, table: &str) -> bool {
    match eng {
        Eng::Pg => {
            let c = db_common::pg(dsn).await;
            c.query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .get(0)
        }
        Eng::My => {
            use mysql_async::prelude::Queryable;
            let opts = mysql_async::Opts::from_url(dsn).unwrap_or_else(|e| panic!("{e}"));
            let mut c = mysql_async::Conn::new(opts)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let n: Option<i64> = c
                .exec_first(
                    "SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?",
                    (table,),
                )
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            n.unwrap_or(0) > 0
        }
    }
}

fn os_user() -> String {
    let out = Command::new("id")
        .arg("-un")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A project: `db/` migrations and a cutover.toml with the given targets.
struct Project {
    dir: tempfile::TempDir,
    eng: Eng,
    dsn: String,
}

impl Project {
    fn new(eng: Eng, dsn: String) -> Project {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir_all(dir.path().join("db")).unwrap_or_else(|e| panic!("{e}"));
        Project { dir, eng, dsn }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn migration(&self, name: &str, sql: &str) {
        std::fs::write(self.path().join("db").join(name), sql).unwrap_or_else(|e| panic!("{e}"));
    }

    fn target(&self, name: &str, stage: &str, executor: &str) -> String {
        format!(
            "[[targets]]\nname = \"{name}\"\nengine = \"{}\"\nenvironment = \"{stage}\"\nprimary = \"{}\"\nexecutor = \"{executor}\"\n",
            self.eng.name(),
            self.dsn
        )
    }

    /// cutover.toml: the targets, and this OS user as a DBA when `dba`.
    fn config(&self, targets: &[String], dba: bool, extra: &str) {
        let mut text = targets.join("\n");
        if dba {
            text.push_str(&format!(
                "\n[[policy.people]]\nid = \"me\"\nname = \"Me\"\nrole = \"dba\"\nlocal = [\"{}\"]\n",
                os_user()
            ));
        }
        text.push_str(extra);
        std::fs::write(self.path().join("cutover.toml"), text).unwrap_or_else(|e| panic!("{e}"));
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

    fn run(&self, target: &str) -> (i32, String, String) {
        self.cutover(&["run", "db", "--target", target, "--no-tui"])
    }

    /// The only run directory.
    fn run_dir(&self) -> PathBuf {
        let dirs: Vec<PathBuf> = std::fs::read_dir(self.path().join(".cutover/runs"))
            .unwrap_or_else(|e| panic!("{e}"))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        assert_eq!(dirs.len(), 1, "{dirs:?}");
        dirs[0].clone()
    }

    fn trail(&self) -> PathBuf {
        self.path().join(".cutover/audit.jsonl")
    }
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        text.contains(from),
        "{} has no {from:?}: {text}",
        path.display()
    );
    std::fs::write(path, text.replacen(from, to, 1)).unwrap_or_else(|e| panic!("{e}"));
}

/// A refused request leaves a planned run (and, since #9 item 8, no supervisor).
fn planned_run(p: &Project, target: &str) -> PathBuf {
    let (code, out, err) = p.run(target);
    assert_eq!(code, 3, "{out}{err}");
    let run_dir = p.run_dir();
    assert!(
        !cutover::supervisor::is_running(&run_dir),
        "a supervisor was left running after exit 3"
    );
    run_dir
}

async fn tampered_stored_sql(eng: Eng, db: &str) {
    let Some(dsn) = fresh_db(eng, db).await else {
        return;
    };
    let p = Project::new(eng, dsn.clone());
    p.migration("V1__gate.sql", "CREATE TABLE gate_ok (id int);\n");
    let t = p.target("t", "dev", "native");
    p.config(std::slice::from_ref(&t), false, "");
    let run_dir = planned_run(&p, "t");

    // Edit the SQL the run stored, after the plan was recorded.
    let stored = run_dir.join("migrations.json");
    edit(
        &stored,
        "CREATE TABLE gate_ok (id int);",
        "CREATE TABLE gate_ok (id int); CREATE TABLE gate_evil (id int);",
    );
    p.config(std::slice::from_ref(&t), true, "");
    let (code, out, err) = p.run("t");
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("versions"), "names the field: {err}");
    assert!(!table_exists(eng, &dsn, "gate_evil").await);
    assert!(!table_exists(eng, &dsn, "gate_ok").await);

    // A forced source format is covered by the digest too.
    edit(
        &stored,
        "CREATE TABLE gate_ok (id int); CREATE TABLE gate_evil (id int);",
        "CREATE TABLE gate_ok (id int);",
    );
    edit(&stored, "\"format\": null", "\"format\": \"plain\"");
    let (code, out, err) = p.run("t");
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("plan digest"), "names the field: {err}");

    // The approved bytes, untouched: the same run goes ahead.
    edit(&stored, "\"format\": \"plain\"", "\"format\": null");
    let (code, out, err) = p.run("t");
    assert_eq!(code, 0, "{out}{err}");
    assert!(table_exists(eng, &dsn, "gate_ok").await);
    assert!(!table_exists(eng, &dsn, "gate_evil").await);
}

#[tokio::test]
async fn pg_tampered_stored_sql_is_refused() {
    tampered_stored_sql(Eng::Pg, "gate_tamper").await;
}

#[tokio::test]
async fn mariadb_tampered_stored_sql_is_refused() {
    tampered_stored_sql(Eng::My, "gate_tamper").await;
}

async fn edited_run_parameters(eng: Eng, db: &str) {
    let Some(dsn) = fresh_db(eng, db).await else {
        return;
    };
    let p = Project::new(eng, dsn.clone());
    p.migration("V1__seed.sql", "CREATE TABLE gate_victim (id int);\n");
    let dev = p.target("dev", "dev", "native");
    let prod = p.target("prod", "prod", "native");
    p.config(&[dev.clone(), prod.clone()], true, "");
    let (code, out, err) = p.run("dev");
    assert_eq!(code, 0, "{out}{err}");
    std::fs::remove_dir_all(p.path().join(".cutover/runs")).unwrap_or_else(|e| panic!("{e}"));

    // A high-risk prod plan, requested by nobody allowed to: planned only.
    p.migration("V2__drop.sql", "DROP TABLE gate_victim;\n");
    p.config(&[dev.clone(), prod.clone()], false, "");
    let run_dir = planned_run(&p, "prod");
    let spec = run_dir.join("run.json");

    // "risk = low" in run.json: not a field the supervisor takes from there.
    let original = std::fs::read_to_string(&spec).unwrap_or_else(|e| panic!("{e}"));
    edit(
        &spec,
        "\"target\": \"prod\"",
        "\"risk\": \"low\", \"target\": \"prod\"",
    );
    p.config(&[dev.clone(), prod.clone()], true, "");
    let (code, out, err) = p.run("prod");
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("risk"), "{err}");

    // Pointing the run at the dev target (no approval needed there): refused,
    // naming the field, since the trail recorded prod.
    std::fs::write(&spec, &original).unwrap_or_else(|e| panic!("{e}"));
    edit(&spec, "\"target\": \"prod\"", "\"target\": \"dev\"");
    let (code, out, err) = p.run("prod");
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("target"), "{err}");
    assert!(table_exists(eng, &dsn, "gate_victim").await, "DROP ran");

    // Making prod look like staging in cutover.toml after the run was recorded.
    std::fs::write(&spec, &original).unwrap_or_else(|e| panic!("{e}"));
    let staged = prod.replace("environment = \"prod\"", "environment = \"staging\"");
    p.config(&[dev, staged], true, "");
    let (code, out, err) = p.run("prod");
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("environment"), "{err}");
    assert!(table_exists(eng, &dsn, "gate_victim").await, "DROP ran");
}

#[tokio::test]
async fn pg_edited_run_parameters_are_refused() {
    edited_run_parameters(Eng::Pg, "gate_params").await;
}

#[tokio::test]
async fn mariadb_edited_run_parameters_are_refused() {
    edited_run_parameters(Eng::My, "gate_params").await;
}

fn freeze_today() -> String {
    let today = chrono::Utc::now().date_naive();
    let from = today - chrono::Days::new(1);
    let to = today + chrono::Days::new(1);
    format!(
        "\n[policy.windows]\ntimezone = \"UTC\"\nfreezes = [{{ from = \"{from}\", to = \"{to}\", reason = \"gate test freeze\" }}]\nduring_freeze = {{ low = \"block\", medium = \"block\", high = \"block\" }}\n"
    )
}

async fn restart_after_window_closed(eng: Eng, db: &str) {
    let Some(dsn) = fresh_db(eng, db).await else {
        return;
    };
    let p = Project::new(eng, dsn.clone());
    p.migration(
        "V1__slow.sql",
        &format!(
            "CREATE TABLE gate_w1 (id int);\n{}\nCREATE TABLE gate_w2 (id int);\n",
            eng.sleep(8)
        ),
    );
    let t = p.target("t", "dev", "native");
    p.config(std::slice::from_ref(&t), true, "");
    let mut client = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(["run", "db", "--target", "t", "--no-tui"])
        .current_dir(p.path())
        .env("CUTOVER_AUDIT_KEY", KEY)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = client.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let mut lines = BufReader::new(stdout).lines();
    // Wait by progress: the run has started.
    for line in lines.by_ref() {
        let line = line.unwrap_or_default();
        if line.contains("started") {
            break;
        }
    }
    let run_dir = p.run_dir();
    let pid: i32 = std::fs::read_to_string(run_dir.join("supervisor.pid"))
        .unwrap_or_else(|e| panic!("{e}"))
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    // The supervisor dies mid-run (kill -9); the client follows it out.
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    let _ = client.kill();
    let _ = client.wait();
    while cutover::supervisor::is_running(&run_dir) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    // The window closes; the same plan is run again: it is the same run,
    // recorded as interrupted, and it does not continue.
    p.config(std::slice::from_ref(&t), true, &freeze_today());
    let (code, out, err) = p.run("t");
    assert_eq!(code, 3, "{out}{err}");
    assert!(err.contains("blocked by window"), "{err}");
    assert!(err.contains("gate test freeze"), "{err}");
    assert!(!table_exists(eng, &dsn, "gate_w2").await);
    assert_eq!(p.run_dir(), run_dir, "the same run was re-opened");
    let (_, shown, _) = p.cutover(&["audit", "show"]);
    assert!(shown.contains("interrupted"), "{shown}");

    // The window opens again: `cutover resume RUN` continues the same run.
    p.config(std::slice::from_ref(&t), true, "");
    let id = run_dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let (code, out, err) = p.cutover(&["resume", &id, "--no-tui"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("SUCCEEDED"), "{out}");
    assert!(table_exists(eng, &dsn, "gate_w2").await);
    assert_eq!(p.run_dir(), run_dir);
}

#[tokio::test]
async fn pg_restart_after_the_window_closed_is_refused() {
    restart_after_window_closed(Eng::Pg, "gate_window").await;
}

#[tokio::test]
async fn mariadb_restart_after_the_window_closed_is_refused() {
    restart_after_window_closed(Eng::My, "gate_window").await;
}

#[test]
fn sim_executor_cannot_run_a_configured_target() {
    let p = Project::new(Eng::Pg, "postgres://nobody@127.0.0.1:1/none".into());
    p.migration("V1__a.sql", "CREATE TABLE a (id int);\n");
    p.config(&[p.target("staging", "staging", "sim")], true, "");
    let (code, out, err) = p.run("staging");
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("executor 'sim' cannot run a configured target"),
        "{err}"
    );
}

#[tokio::test]
async fn pg_a_cut_trail_is_caught_and_never_appended_to_until_sealed() {
    let Some(dsn) = fresh_db(Eng::Pg, "gate_trail").await else {
        return;
    };
    let p = Project::new(Eng::Pg, dsn.clone());
    p.migration("V1__a.sql", "CREATE TABLE gate_a (id int);\n");
    let t = p.target("t", "dev", "native");
    p.config(std::slice::from_ref(&t), true, "");
    let (code, out, err) = p.run("t");
    assert_eq!(code, 0, "{out}{err}");
    // The supervisor outlives the client while the relay finishes: wait for it.
    while cutover::supervisor::is_running(&p.run_dir()) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The summary publishes the head, in the form --expect-head takes.
    let published = out
        .lines()
        .find_map(|l| l.strip_prefix("audit head: "))
        .and_then(|l| l.split(" (").next())
        .unwrap_or_else(|| panic!("no audit head in the summary: {out}"))
        .to_string();
    let (code, head, _) = p.cutover(&["audit", "head"]);
    assert_eq!(code, 0);
    let (code, out, _) = p.cutover(&["audit", "verify", "--expect-head", &published]);
    assert_eq!(code, 0, "{out} (head now {head})");

    // Drop the last records: caught against the head side file…
    let trail = p.trail();
    let text = std::fs::read_to_string(&trail).unwrap_or_else(|e| panic!("{e}"));
    let kept: String = text.lines().take(3).map(|l| format!("{l}\n")).collect();
    std::fs::write(&trail, &kept).unwrap_or_else(|e| panic!("{e}"));
    let (code, out, _) = p.cutover(&["audit", "verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("truncated"), "{out}");
    // …and without it.
    let head_file = p.path().join(".cutover/audit.jsonl.head");
    std::fs::remove_file(&head_file).unwrap_or_else(|e| panic!("{e}"));
    let (code, out, _) = p.cutover(&["audit", "verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("head side file is missing"), "{out}");
    let (code, out, _) = p.cutover(&["audit", "verify", "--expect-head", &published]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("truncated"), "{out}");
    // Readers say so by their exit status.
    let (code, _, err) = p.cutover(&["audit", "show"]);
    assert_eq!(code, 1, "{err}");
    let (code, out, err) = p.cutover(&["audit", "export"]);
    assert_eq!((code, out.is_empty()), (1, true), "{err}");

    // No run appends to it (a refused one neither), and the head file is not rewritten.
    p.migration("V2__b.sql", "CREATE TABLE gate_b (id int);\n");
    let (code, out, err) = p.run("t");
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("does not verify"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&trail).unwrap_or_default(),
        kept,
        "appended to a cut trail"
    );
    assert!(!head_file.exists());
    assert!(!table_exists(Eng::Pg, &dsn, "gate_b").await);

    // An explicit, audited repair seals it; runs go on, the cut stays visible.
    let (code, out, err) = p.cutover(&["audit", "repair", "--reason", "gate test: cut by hand"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = p.run("t");
    assert_eq!(code, 0, "{out}{err}");
    assert!(table_exists(Eng::Pg, &dsn, "gate_b").await);
    let (code, out, _) = p.cutover(&["audit", "verify"]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = p.cutover(&["audit", "verify", "--expect-head", &published]);
    assert_eq!(code, 1, "{out}");
    let (_, shown, _) = p.cutover(&["audit", "show"]);
    assert!(
        shown.contains("SEALED") && shown.contains("cut by hand"),
        "{shown}"
    );
}

#[tokio::test]
async fn pg_a_120_version_plan_runs_end_to_end_headless() {
    let Some(dsn) = fresh_db(Eng::Pg, "gate_many").await else {
        return;
    };
    let p = Project::new(Eng::Pg, dsn.clone());
    for i in 1..=120 {
        p.migration(
            &format!("V{i}__table_number_{i}_with_a_long_descriptive_name.sql"),
            &format!("CREATE TABLE gate_many_{i} (id int);\n"),
        );
    }
    p.config(&[p.target("t", "dev", "native")], true, "");
    let (code, out, err) = p.run("t");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("SUCCEEDED"), "{out}");
    let name = p
        .run_dir()
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    assert!(name.starts_with("t-1..120-"), "{name}");
    assert!(table_exists(Eng::Pg, &dsn, "gate_many_120").await);
}

#[tokio::test]
async fn pg_a_failed_plan_can_be_run_again_with_its_own_run() {
    let Some(dsn) = fresh_db(Eng::Pg, "gate_again").await else {
        return;
    };
    let p = Project::new(Eng::Pg, dsn.clone());
    p.migration(
        "V1__a.sql",
        "CREATE TABLE gate_again (id int REFERENCES nowhere(id));\n",
    );
    p.config(&[p.target("t", "dev", "native")], true, "");
    let (code, out, err) = p.run("t");
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("FAILED"), "{out}");
    // The same plan again: a run of its own (numbered), with its own records.
    let (code, out, err) = p.run("t");
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("FAILED"), "{out}");
    // The fixed plan: another run, which succeeds.
    p.migration("V1__a.sql", "CREATE TABLE gate_again (id int);\n");
    let (code, out, err) = p.run("t");
    assert_eq!(code, 0, "{out}{err}");
    assert!(table_exists(Eng::Pg, &dsn, "gate_again").await);
    let mut runs: Vec<String> = std::fs::read_dir(p.path().join(".cutover/runs"))
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().to_string()))
        .collect();
    runs.sort();
    assert_eq!(runs.len(), 3, "{runs:?}");
    assert!(runs.iter().any(|r| r.ends_with("-2")), "{runs:?}");
    // The failed runs stay in the trail as they ended.
    let (code, shown, _) = p.cutover(&["audit", "show"]);
    assert_eq!(code, 0, "{shown}");
    assert!(shown.matches("failed").count() >= 2, "{shown}");
}

/// Rules handed to `run` on the command line are the requester's own file: they
/// must not lower what the organisation's rules (cutover.toml) say a run is.
async fn requester_rules_cannot_lower_a_run(eng: Eng, db: &str) {
    let Some(dsn) = fresh_db(eng, db).await else {
        return;
    };
    let p = Project::new(eng, dsn.clone());
    p.migration("V1__seed.sql", "CREATE TABLE gate_rules_victim (id int);\n");
    let dev = p.target("dev", "dev", "native");
    let prod = p.target("prod", "prod", "native");
    p.config(&[dev.clone(), prod.clone()], true, "");
    let (code, out, err) = p.run("dev");
    assert_eq!(code, 0, "{out}{err}");
    std::fs::remove_dir_all(p.path().join(".cutover/runs")).unwrap_or_else(|e| panic!("{e}"));

    p.migration("V2__drop.sql", "DROP TABLE gate_rules_victim;\n");
    std::fs::write(
        p.path().join("lax.toml"),
        "[rules.drop-table]\nrisk = \"low\"\n[rules.missing-lock-timeout]\nrisk = \"low\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // The requester (a DBA) cannot approve their own run: the DROP needs another DBA.
    let no_staging = "\n[policy.promotion]\nrequire_staging_for_prod = false\n";
    p.config(&[dev.clone(), prod.clone()], true, no_staging);
    let (code, out, err) = p.cutover(&["plan", "db", "--target", "prod", "--format", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("\"risk\": \"high\""),
        "the organisation's rules: {out}"
    );
    let (code, out, err) = p.cutover(&[
        "run", "db", "--target", "prod", "--no-tui", "--rules", "lax.toml",
    ]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("--rules"), "{err}");
    assert!(
        table_exists(eng, &dsn, "gate_rules_victim").await,
        "the DROP ran with the requester's rules"
    );
    // `plan --rules` still explores freely.
    let (code, out, err) = p.cutover(&["plan", "db", "--rules", "lax.toml", "--format", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("\"risk\": \"low\""), "{out}");

    // Nor through run.json: a recorded run whose run.json gains a rules file.
    p.config(&[dev.clone(), prod.clone()], false, no_staging);
    let run_dir = planned_run(&p, "prod");
    let spec = run_dir.join("run.json");
    edit(&spec, "\"rules\": null", "\"rules\": \"../../../lax.toml\"");
    p.config(&[dev, prod], true, no_staging);
    let (code, out, err) = p.run("prod");
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("rules file"), "{err}");
    assert!(
        table_exists(eng, &dsn, "gate_rules_victim").await,
        "the DROP ran with rules named in run.json"
    );
}

#[tokio::test]
async fn pg_requester_rules_cannot_lower_a_run() {
    requester_rules_cannot_lower_a_run(Eng::Pg, "gate_rules").await;
}

#[tokio::test]
async fn mariadb_requester_rules_cannot_lower_a_run() {
    requester_rules_cannot_lower_a_run(Eng::My, "gate_rules").await;
}
