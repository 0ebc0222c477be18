//! kill -9 of the real supervisor, resumed with `cutover run` on the same
//! plan, both engines, on the throwaway topology (`scripts/test`):
//!
//! - during a batched backfill (`SET c = c + 1`, not idempotent);
//! - during a PostgreSQL `CREATE INDEX CONCURRENTLY` (the orphaned build
//!   goes on in the server after its client died);
//! - during a MariaDB in-place `ALTER TABLE … ADD INDEX, ADD COLUMN`;
//! - between steps (the run paused after step 1 committed).
//!
//! Each resume must apply nothing twice (every row updated once, the index
//! exists once and is valid, no "already exists"), leave the history with
//! each version once and successful, and leave a trail that verifies and
//! says the run was interrupted and what was resumed.

mod db_common;
use db_common::my;

use cutover::audit::{AuditKey, Entry, read_file};
use cutover::run::{EventRecord, Phase, RunState};
use mysql_async::prelude::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const KEY: &str = "an-audit-key-for-kill9-tests-0123456789";
/// Generous: a loaded 2-core machine runs several of these at once.
const DEADLINE: Duration = Duration::from_secs(600);

#[derive(Clone, Copy, PartialEq, Debug)]
enum Eng {
    Pg,
    My,
}

/// A fresh database `db` on the engine's primary; its DSN, or `None` to skip.
async fn fresh_db(eng: Eng, db: &str) -> Option<String> {
    match eng {
        Eng::Pg => db_common::fresh_pg(db).await,
        Eng::My => db_common::fresh_my(db).await,
    }
}

/// One integer from `sql` on either engine.
async fn int(eng: Eng, dsn: &str, sql: &str) -> i64 {
    match eng {
        Eng::Pg => {
            let c = db_common::pg(dsn).await;
            c.query_one(sql, &[])
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .get(0)
        }
        Eng::My => {
            let mut c = my(dsn).await;
            let v: Option<i64> = c
                .query_first(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            let _ = c.disconnect().await;
            v.unwrap_or(0)
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

/// A project: `db/` migrations, a dev target with the native executor, this
/// OS user as a DBA (dev needs no approval).
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new(eng: Eng, dsn: &str, files: &[(&str, &str)]) -> Project {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let d = dir.path();
        std::fs::create_dir_all(d.join("db")).unwrap_or_else(|e| panic!("{e}"));
        for (name, sql) in files {
            std::fs::write(d.join("db").join(name), sql).unwrap_or_else(|e| panic!("{e}"));
        }
        let engine = match eng {
            Eng::Pg => "postgres",
            Eng::My => "mysql",
        };
        std::fs::write(
            d.join("cutover.toml"),
            format!(
                "[[targets]]\nname = \"t\"\nengine = \"{engine}\"\nenvironment = \"dev\"\nprimary = \"{dsn}\"\nexecutor = \"native\"\n\n[[policy.people]]\nid = \"me\"\nname = \"Me\"\nrole = \"dba\"\nlocal = [\"{}\"]\n",
                os_user()
            ),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        Project { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
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

    /// `cutover run` in the background; its output goes to `NAME.out|err`.
    fn spawn_run(&self, name: &str) -> Child {
        let file = |ext: &str| {
            std::fs::File::create(self.path().join(format!("{name}.{ext}")))
                .unwrap_or_else(|e| panic!("{e}"))
        };
        Command::new(env!("CARGO_BIN_EXE_cutover"))
            .args(["run", "db", "--target", "t", "--no-tui"])
            .current_dir(self.path())
            .env("CUTOVER_AUDIT_KEY", KEY)
            .stdout(file("out"))
            .stderr(file("err"))
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn output(&self, name: &str) -> String {
        let r = |ext: &str| {
            std::fs::read_to_string(self.path().join(format!("{name}.{ext}"))).unwrap_or_default()
        };
        let log = self
            .run_dir()
            .and_then(|d| std::fs::read_to_string(d.join("supervisor.log")).ok())
            .unwrap_or_default();
        format!(
            "stdout:\n{}\nstderr:\n{}\nsupervisor.log:\n{log}",
            r("out"),
            r("err")
        )
    }

    /// The only run directory, once there is one.
    fn run_dir(&self) -> Option<PathBuf> {
        let dirs: Vec<PathBuf> = std::fs::read_dir(self.path().join(".cutover/runs"))
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        assert!(dirs.len() <= 1, "one run only: {dirs:?}");
        dirs.into_iter().next()
    }

    fn run_id(&self) -> String {
        self.run_dir()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().to_string()))
            .unwrap_or_default()
    }

    /// The run's records in the trail.
    fn records(&self) -> Vec<EventRecord> {
        let key = AuditKey::new(KEY.as_bytes().to_vec()).unwrap_or_else(|e| panic!("{e}"));
        read_file(&self.path().join(".cutover/audit.jsonl"), &key)
            .map(|(e, _)| e)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|e| match e.entry {
                Entry::Run { record } => Some(record),
                _ => None,
            })
            .collect()
    }

    fn phase(&self) -> Phase {
        RunState::replay(&self.records()).phase
    }

    /// kill -9 of the run's supervisor (its client follows it out), and
    /// waits until the kernel has released the run directory's lock.
    async fn kill_supervisor(&self, mut client: Child) {
        let run_dir = self.run_dir().unwrap_or_else(|| panic!("no run directory"));
        let pid: i32 = std::fs::read_to_string(run_dir.join("supervisor.pid"))
            .unwrap_or_else(|e| panic!("{e}"))
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        let st = Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(st.success(), "kill -9 {pid}");
        let _ = client.kill();
        let _ = tokio::task::spawn_blocking(move || client.wait()).await;
        let t0 = Instant::now();
        while cutover::supervisor::is_running(&run_dir) {
            assert!(
                t0.elapsed() < DEADLINE,
                "the killed supervisor's lock stayed"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs the same plan again to its end: `(exit code, output)`.
    async fn rerun(&self) -> (i32, String) {
        let mut c = self.spawn_run("rerun");
        let code = tokio::task::spawn_blocking(move || c.wait())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"))
            .code()
            .unwrap_or(-1);
        (code, self.output("rerun"))
    }

    /// The trail verifies; `audit show` says the run was interrupted and
    /// what the resume found. Returns the shown text.
    fn check_trail(&self, resumed: &[&str]) -> String {
        let (code, out, err) = self.cutover(&["audit", "verify"]);
        assert_eq!(code, 0, "audit verify: {out}{err}");
        let id = self.run_id();
        let (code, shown, err) = self.cutover(&["audit", "show", &id]);
        assert_eq!(code, 0, "audit show: {shown}{err}");
        assert!(shown.contains("interrupted"), "{shown}");
        for r in resumed {
            assert!(shown.contains(r), "the trail does not say {r:?}:\n{shown}");
        }
        assert_eq!(self.phase(), Phase::Succeeded, "{shown}");
        shown
    }
}

/// Polls `ready` until it holds, failing if `client` ended first.
async fn until(client: &mut Child, p: &Project, what: &str, mut ready: impl AsyncFnMut() -> bool) {
    let t0 = Instant::now();
    loop {
        if let Ok(Some(st)) = client.try_wait() {
            panic!("the run ended ({st}) before {what}:\n{}", p.output("run"));
        }
        if ready().await {
            return;
        }
        assert!(
            t0.elapsed() < DEADLINE,
            "never saw {what}:\n{}",
            p.output("run")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// History has each version once, successful, and nothing else.
async fn history_once(eng: Eng, dsn: &str, versions: &[&str]) {
    let all = int(eng, dsn, "SELECT count(*) FROM flyway_schema_history").await;
    assert_eq!(all, versions.len() as i64, "history rows");
    for v in versions {
        let sql = match eng {
            Eng::Pg => format!(
                "SELECT count(*) FROM flyway_schema_history WHERE version = '{v}' AND success"
            ),
            Eng::My => format!(
                "SELECT count(*) FROM flyway_schema_history WHERE version = '{v}' AND success = 1"
            ),
        };
        assert_eq!(int(eng, dsn, &sql).await, 1, "version {v} recorded once");
    }
}

async fn fill(eng: Eng, dsn: &str, table: &str, rows: i64) {
    match eng {
        Eng::Pg => {
            let c = db_common::pg(dsn).await;
            c.batch_execute(&format!(
                "CREATE TABLE {table} (id int PRIMARY KEY, c int NOT NULL DEFAULT 0, v text NOT NULL);
                 INSERT INTO {table} (id, v) SELECT g, md5(g::text) FROM generate_series(1, {rows}) g;
                 ANALYZE {table};"
            ))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        }
        Eng::My => {
            let mut c = my(dsn).await;
            c.query_drop(format!(
                "CREATE TABLE {table} (id int PRIMARY KEY, c int NOT NULL DEFAULT 0, v varchar(64) NOT NULL)"
            ))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
            c.query_drop(format!(
                "INSERT INTO {table} (id, v) SELECT seq, md5(seq) FROM seq_1_to_{rows}"
            ))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
            c.query_drop(format!("ANALYZE TABLE {table}"))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

// ------------------------------------------------------------- (a) backfill --

async fn killed_mid_backfill(eng: Eng, db: &str) {
    const ROWS: i64 = 400_000;
    let Some(dsn) = fresh_db(eng, db).await else {
        return;
    };
    fill(eng, &dsn, "k9", ROWS).await;
    let p = Project::new(
        eng,
        &dsn,
        &[(
            "V1__k9_backfill.sql",
            "-- cutover: backfill table=k9 set=\"c = c + 1\" key=id batch=20ms\nSELECT 1;\n",
        )],
    );
    let mut client = p.spawn_run("run");
    let d = dsn.clone();
    until(&mut client, &p, "backfill progress", async || {
        let n = int(eng, &d, "SELECT count(*) FROM k9 WHERE c > 0").await;
        (5_000..ROWS / 2).contains(&n)
    })
    .await;
    p.kill_supervisor(client).await;

    let (code, out) = p.rerun().await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("SUCCEEDED"), "{out}");
    let sql = match eng {
        Eng::Pg => "SELECT count(*) FILTER (WHERE c <> 1) FROM k9",
        Eng::My => "SELECT CAST(COALESCE(SUM(c <> 1), 0) AS SIGNED) FROM k9",
    };
    assert_eq!(
        int(eng, &dsn, sql).await,
        0,
        "every row updated exactly once (c = c + 1)"
    );
    history_once(eng, &dsn, &["1"]).await;
    p.check_trail(&[
        "committed before the interruption",
        "before the interruption, keys",
    ]);
}

#[tokio::test]
async fn pg_supervisor_killed_mid_backfill_resumes_with_cutover_run() {
    killed_mid_backfill(Eng::Pg, "k9m_backfill").await;
}

#[tokio::test]
async fn mariadb_supervisor_killed_mid_backfill_resumes_with_cutover_run() {
    killed_mid_backfill(Eng::My, "k9m_backfill").await;
}

// ----------------------------------------- (b) PostgreSQL CREATE INDEX CONCURRENTLY --

/// The supervisor dies while its `CREATE INDEX CONCURRENTLY` is mid-way; the
/// server goes on building for the dead client (a test session's old
/// snapshot holds the build in its last wait, so the kill lands mid-build
/// on any machine). `cutover run` on the same plan waits for that build
/// instead of refusing on its INVALID index or issuing it again.
#[tokio::test]
async fn pg_supervisor_killed_mid_concurrent_build_resumes_with_cutover_run() {
    const ROWS: i64 = 300_000;
    let Some(dsn) = fresh_db(Eng::Pg, "k9m_cic").await else {
        return;
    };
    fill(Eng::Pg, &dsn, "k9", ROWS).await;
    let p = Project::new(
        Eng::Pg,
        &dsn,
        &[
            (
                "V1__k9_idx.sql",
                "CREATE INDEX CONCURRENTLY k9_expr ON k9 (md5(v || id::text));\n",
            ),
            (
                "V2__k9_after.sql",
                "UPDATE k9 SET c = c + 1 WHERE id <= 10;\n",
            ),
        ],
    );
    // An old snapshot in the same database: the build waits for it at its end.
    let holder = db_common::pg(&dsn).await;
    holder
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1;")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut client = p.spawn_run("run");
    let d = dsn.clone();
    until(&mut client, &p, "the build waiting mid-way", async || {
        int(
            Eng::Pg,
            &d,
            "SELECT count(*) FROM pg_stat_progress_create_index WHERE relid = 'k9'::regclass AND phase LIKE 'waiting for old snapshots%'",
        )
        .await
            == 1
    })
    .await;
    p.kill_supervisor(client).await;
    // The orphaned build is still there, holding an INVALID index.
    assert_eq!(
        int(Eng::Pg, &dsn, "SELECT count(*) FROM pg_index WHERE indexrelid = 'k9_expr'::regclass AND NOT indisvalid").await,
        1
    );

    // Resume while the orphan still builds; it ends once the old snapshot goes.
    let mut rerun = p.spawn_run("rerun");
    let t0 = Instant::now();
    loop {
        if rerun.try_wait().ok().flatten().is_some() {
            break;
        }
        let out = p.output("rerun");
        if out.contains("still running on the server") {
            break;
        }
        assert!(t0.elapsed() < DEADLINE, "{out}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    holder
        .batch_execute("COMMIT")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let code = tokio::task::spawn_blocking(move || rerun.wait())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"))
        .code()
        .unwrap_or(-1);
    let out = p.output("rerun");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("SUCCEEDED"), "{out}");
    assert!(!out.contains("already exists"), "{out}");
    assert_eq!(
        int(Eng::Pg, &dsn, "SELECT count(*) FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid WHERE x.relname LIKE 'k9_expr%' AND i.indisvalid").await,
        1,
        "the index exists once and is valid"
    );
    assert_eq!(
        int(
            Eng::Pg,
            &dsn,
            "SELECT count(*) FROM pg_index WHERE NOT indisvalid"
        )
        .await,
        0,
        "no INVALID leftover"
    );
    assert_eq!(
        int(
            Eng::Pg,
            &dsn,
            "SELECT count(*) FROM k9 WHERE c <> (CASE WHEN id <= 10 THEN 1 ELSE 0 END)"
        )
        .await,
        0,
        "V2 ran once"
    );
    history_once(Eng::Pg, &dsn, &["1", "2"]).await;
    p.check_trail(&["still running on the server", "step 1 by the live database"]);
}

/// The DBA aborts while the resume waits for the interrupted run's build:
/// the run ends aborted at once and reports the session still building,
/// with the statement that cancels it.
#[tokio::test]
async fn pg_abort_while_waiting_for_the_interrupted_build_reports_the_session_left() {
    const ROWS: i64 = 100_000;
    let Some(dsn) = fresh_db(Eng::Pg, "k9m_cic_abort").await else {
        return;
    };
    fill(Eng::Pg, &dsn, "k9", ROWS).await;
    let p = Project::new(
        Eng::Pg,
        &dsn,
        &[(
            "V1__k9_idx.sql",
            "CREATE INDEX CONCURRENTLY k9_expr ON k9 (md5(v || id::text));\n",
        )],
    );
    let holder = db_common::pg(&dsn).await;
    holder
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1;")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut client = p.spawn_run("run");
    let d = dsn.clone();
    until(&mut client, &p, "the build waiting mid-way", async || {
        int(
            Eng::Pg,
            &d,
            "SELECT count(*) FROM pg_stat_progress_create_index WHERE relid = 'k9'::regclass AND phase LIKE 'waiting for old snapshots%'",
        )
        .await
            == 1
    })
    .await;
    p.kill_supervisor(client).await;
    let mut rerun = p.spawn_run("rerun");
    let t0 = Instant::now();
    while !p.output("rerun").contains("still running on the server") {
        assert!(
            rerun.try_wait().ok().flatten().is_none(),
            "{}",
            p.output("rerun")
        );
        assert!(t0.elapsed() < DEADLINE, "{}", p.output("rerun"));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, out, err) = p.cutover(&["abort", &p.run_id(), "--reason", "test abort"]);
    assert_eq!(code, 0, "abort: {out}{err}");
    let code = tokio::task::spawn_blocking(move || rerun.wait())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"))
        .code()
        .unwrap_or(-1);
    let out = p.output("rerun");
    assert_eq!(code, 4, "aborted: {out}");
    assert!(
        out.contains("of the interrupted run, still running `CREATE INDEX CONCURRENTLY k9_expr"),
        "{out}"
    );
    let cleanup = p
        .records()
        .iter()
        .find_map(|r| match &r.event {
            cutover::run::Event::Aborted { leftovers, .. } => leftovers
                .iter()
                .find(|l| l.kind == "session")
                .and_then(|l| l.cleanup.clone()),
            _ => None,
        })
        .unwrap_or_default();
    assert!(
        cleanup.starts_with("SELECT pg_cancel_backend("),
        "{cleanup}"
    );
    holder
        .batch_execute("COMMIT")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (code, out, err) = p.cutover(&["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");
}

// ----------------------------------------------- (c) MariaDB in-place ALTER --

/// The supervisor dies while its in-place `ALTER TABLE … ADD INDEX, ADD
/// COLUMN` runs; the server finishes the ALTER for the dead client.
/// `cutover run` on the same plan waits for it and finds the index and the
/// column there instead of issuing the ALTER again ("Duplicate key name").
#[tokio::test]
async fn mariadb_supervisor_killed_mid_inplace_alter_resumes_with_cutover_run() {
    const ROWS: i64 = 1_000_000;
    let Some(dsn) = fresh_db(Eng::My, "k9m_alter").await else {
        return;
    };
    fill(Eng::My, &dsn, "k9", ROWS).await;
    let p = Project::new(
        Eng::My,
        &dsn,
        &[
            (
                "V1__k9_alter.sql",
                "ALTER TABLE k9 ADD INDEX k9_v (v, c), ADD COLUMN w int NULL, ALGORITHM=INPLACE, LOCK=NONE;\n",
            ),
            (
                "V2__k9_after.sql",
                "UPDATE k9 SET c = c + 1 WHERE id <= 10;\n",
            ),
        ],
    );
    let mut client = p.spawn_run("run");
    let d = dsn.clone();
    until(&mut client, &p, "the ALTER running", async || {
        int(
            Eng::My,
            &d,
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'ALTER TABLE k9 ADD INDEX%' AND TIME_MS > 200",
        )
        .await
            == 1
    })
    .await;
    p.kill_supervisor(client).await;
    let orphan = int(
        Eng::My,
        &dsn,
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'ALTER TABLE k9 ADD INDEX%'",
    )
    .await;

    let (code, out) = p.rerun().await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("SUCCEEDED"), "{out}");
    assert!(!out.contains("Duplicate"), "{out}");
    assert_eq!(
        int(Eng::My, &dsn, "SELECT COUNT(DISTINCT INDEX_NAME) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'k9' AND INDEX_NAME LIKE 'k9_v%'").await,
        1,
        "the index exists once"
    );
    assert_eq!(
        int(Eng::My, &dsn, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'k9' AND COLUMN_NAME = 'w'").await,
        1
    );
    assert_eq!(
        int(
            Eng::My,
            &dsn,
            "SELECT CAST(COALESCE(SUM(c <> IF(id <= 10, 1, 0)), 0) AS SIGNED) FROM k9"
        )
        .await,
        0,
        "V2 ran once"
    );
    history_once(Eng::My, &dsn, &["1", "2"]).await;
    let shown = p.check_trail(&["resuming at step"]);
    assert!(
        shown.contains("by the live database") || shown.contains("by the journal"),
        "orphan ALTER still running at the kill: {orphan}\n{shown}"
    );
}

// ------------------------------------------------------- (d) between steps --

/// The run pauses at the step boundary after step 1 committed (a pause
/// takes effect between statements), and the supervisor dies there.
async fn killed_between_steps(eng: Eng, db: &str) {
    let Some(dsn) = fresh_db(eng, db).await else {
        return;
    };
    fill(eng, &dsn, "k9", 100).await;
    let sleep = match eng {
        Eng::Pg => "SELECT pg_sleep(5);",
        Eng::My => "SELECT SLEEP(5);",
    };
    let p = Project::new(
        eng,
        &dsn,
        &[
            (
                "V1__k9_one.sql",
                &format!("UPDATE k9 SET c = c + 1 WHERE id <= 10;\n{sleep}\n"),
            ),
            (
                "V2__k9_two.sql",
                "UPDATE k9 SET c = c + 10 WHERE id <= 10;\n",
            ),
        ],
    );
    let mut client = p.spawn_run("run");
    let running = match eng {
        Eng::Pg => {
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(5)%' AND state = 'active' AND pid <> pg_backend_pid()"
        }
        Eng::My => {
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP(5)%'"
        }
    };
    let d = dsn.clone();
    until(&mut client, &p, "step 1 running", async || {
        int(eng, &d, running).await == 1
    })
    .await;
    let (code, out, err) = p.cutover(&["pause", &p.run_id()]);
    assert_eq!(code, 0, "pause: {out}{err}");
    until(&mut client, &p, "the run paused", async || {
        p.phase() == Phase::Paused
    })
    .await;
    // Step 1 committed (and is in history), step 2 not begun.
    assert_eq!(
        int(eng, &dsn, "SELECT count(*) FROM k9 WHERE c = 1").await,
        10,
        "step 1 committed before the pause"
    );
    p.kill_supervisor(client).await;

    let (code, out) = p.rerun().await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("SUCCEEDED"), "{out}");
    assert_eq!(
        int(eng, &dsn, "SELECT count(*) FROM k9 WHERE c = 11").await,
        10,
        "each step applied once"
    );
    assert_eq!(
        int(
            eng,
            &dsn,
            "SELECT count(*) FROM k9 WHERE c <> 0 AND c <> 11"
        )
        .await,
        0
    );
    history_once(eng, &dsn, &["1", "2"]).await;
    p.check_trail(&["paused", "resuming at step"]);
}

#[tokio::test]
async fn pg_supervisor_killed_between_steps_resumes_with_cutover_run() {
    killed_between_steps(Eng::Pg, "k9m_between").await;
}

#[tokio::test]
async fn mariadb_supervisor_killed_between_steps_resumes_with_cutover_run() {
    killed_between_steps(Eng::My, "k9m_between").await;
}
