//! Issue #12's acceptance test: the mission's validation claim, end to end,
//! with the public `cutover` binary on the throwaway PostgreSQL primary
//! (`scripts/test`) and the Slack double (`tests/slack_double/`) reached by
//! the supervisors' own relays over Socket Mode.
//!
//! Staging and prod are two databases on one primary, each holding a
//! 1,000,000-row table. In order:
//!
//! 1. `plan --target prod` classifies a blocking `CREATE INDEX` high (ShareLock, blocks writes);
//! 2. `verify --target staging` observes that lock on staging, and leaves staging as it was;
//! 3. prod is gated: refused before a staging rehearsal (promotion), then —
//!    after one — requested and blocked while approval is missing (nothing runs);
//! 4. the requester's own approval, from Slack and from the CLI, is refused and recorded;
//! 5. a DBA's approval of the plan, then an edit of the migration: the approval
//!    does not carry over to the new bytes, and approvals carrying the older
//!    digest (a Slack render of the old plan, `cutover approve --plan-digest`)
//!    are refused and recorded;
//! 6. the new bytes are rehearsed on staging with the real native executor;
//! 7. another DBA's Slack approval of this digest lets prod run: the index exists;
//! 8. `audit verify` passes, and `audit export`/`show` hold each decision in order.
//!
//! Why the rehearsal comes before the prod request: with
//! `require_staging_for_prod` (the default), a prod run of a digest that has
//! not succeeded on staging cannot even be requested. So the old bytes are
//! rehearsed first, and the new bytes after staging is refreshed (its
//! Flyway history holds the old checksum for V1, which `plan --target` rightly
//! refuses as "applied with different content").

mod db_common;
use db_common::my;
mod slack_double;

use mysql_async::prelude::Queryable;
use serde_json::Value;
use slack_double::{APP, BOT, CHANNEL, Double};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

const KEY: &str = "an-audit-key-for-the-acceptance-test-0123";
const ALICE: &str = "U0DBA0001"; // another DBA
const BOB: &str = "U0REQ0001"; // the requester (this OS user), a DBA
const CAROL: &str = "U0DEV0001"; // an observer
const WAIT: Duration = Duration::from_secs(120);

/// The engine under test, and what is dangerous on it.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Eng {
    Pg,
    My,
}

impl Eng {
    fn name(self) -> &'static str {
        match self {
            Eng::Pg => "postgres",
            Eng::My => "mariadb",
        }
    }

    fn admin_var(self) -> &'static str {
        match self {
            Eng::Pg => "CUTOVER_TEST_PG_PRIMARY",
            Eng::My => "CUTOVER_TEST_MY_PRIMARY",
        }
    }

    /// Rows seeded. PostgreSQL's count is exact after VACUUM; InnoDB's
    /// `TABLE_ROWS` is an estimate, so MariaDB gets a margin above the
    /// 1,000,000-row "large" threshold.
    fn rows(self) -> i64 {
        match self {
            Eng::Pg => 1_000_000,
            Eng::My => 1_200_000,
        }
    }

    fn index(self) -> &'static str {
        match self {
            Eng::Pg => "acc_items_val_idx",
            Eng::My => "acc_items_note_ft",
        }
    }

    /// The known-dangerous migration: a blocking index build.
    fn old_sql(self) -> &'static str {
        match self {
            // Not CONCURRENTLY: ShareLock, writes blocked for the whole build.
            Eng::Pg => "CREATE INDEX acc_items_val_idx ON acc_items (val);\n",
            // MariaDB builds B-tree indexes online; a FULLTEXT one needs LOCK=SHARED.
            Eng::My => "CREATE FULLTEXT INDEX acc_items_note_ft ON acc_items (note);\n",
        }
    }

    /// The edit after the first approval: what `plan` advises (a lock timeout).
    fn new_sql(self) -> String {
        let timeout = match self {
            Eng::Pg => "SET lock_timeout = '5s';\n",
            Eng::My => "SET SESSION lock_wait_timeout = 5;\n",
        };
        format!("{timeout}{}", self.old_sql())
    }

    /// (lock mode, rule) the plan must predict.
    fn predicted(self) -> (&'static str, &'static str) {
        match self {
            Eng::Pg => ("ShareLock", "create-index-blocking"),
            Eng::My => ("INPLACE, LOCK=SHARED", "mysql-fulltext-spatial-index"),
        }
    }

    /// A fresh database `db` holding `acc_items` with [`Eng::rows`] rows and
    /// fresh statistics (the planner reads the row count live).
    async fn seeded_db(self, admin: &str, db: &str) -> String {
        let rows = self.rows();
        match self {
            Eng::Pg => {
                let dsn = db_common::fresh_pg_on(admin, db).await;
                let c = db_common::pg(&dsn).await;
                c.batch_execute(&format!(
                    "CREATE TABLE acc_items (id bigint PRIMARY KEY, val int NOT NULL, note text);
                     INSERT INTO acc_items SELECT g, g % 1000, 'item ' || g FROM generate_series(1, {rows}) g;"
                ))
                .await
                .unwrap_or_else(|e| panic!("seeding {db}: {e:?}"));
                // Its own statement: VACUUM cannot run in the batch's implicit transaction.
                c.batch_execute("VACUUM (ANALYZE) acc_items")
                    .await
                    .unwrap_or_else(|e| panic!("vacuuming {db}: {e:?}"));
                dsn
            }
            Eng::My => {
                let dsn = db_common::fresh_my_on(admin, db).await;
                let mut c = my(&dsn).await;
                c.query_drop(format!(
                    "CREATE TABLE acc_items (id bigint PRIMARY KEY, val int NOT NULL, note varchar(64)) ENGINE=InnoDB;
                     INSERT INTO acc_items SELECT seq, seq % 1000, CONCAT('item ', seq) FROM seq_1_to_{rows};
                     ANALYZE TABLE acc_items;"
                ))
                .await
                .unwrap_or_else(|e| panic!("seeding {db}: {e}"));
                dsn
            }
        }
    }

    async fn index_exists(self, dsn: &str) -> bool {
        match self {
            Eng::Pg => {
                let c = db_common::pg(dsn).await;
                c.query_one("SELECT to_regclass($1) IS NOT NULL", &[&self.index()])
                    .await
                    .unwrap_or_else(|e| panic!("{e}"))
                    .get(0)
            }
            Eng::My => {
                let mut c = my(dsn).await;
                let n: Option<i64> = c
                    .exec_first(
                        "SELECT count(*) FROM information_schema.statistics WHERE table_schema = DATABASE() AND index_name = ?",
                        (self.index(),),
                    )
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                n.unwrap_or(0) > 0
            }
        }
    }

    /// Flyway history rows: (version, checksum, success); empty when the table is absent.
    async fn history(self, dsn: &str) -> Vec<(String, i64, bool)> {
        let sql = "SELECT version, checksum, success FROM flyway_schema_history WHERE version IS NOT NULL ORDER BY installed_rank";
        match self {
            Eng::Pg => {
                let c = db_common::pg(dsn).await;
                let exists: bool = c
                    .query_one(
                        "SELECT to_regclass('flyway_schema_history') IS NOT NULL",
                        &[],
                    )
                    .await
                    .unwrap_or_else(|e| panic!("{e}"))
                    .get(0);
                if !exists {
                    return Vec::new();
                }
                c.query(sql, &[])
                    .await
                    .unwrap_or_else(|e| panic!("{e}"))
                    .iter()
                    .map(|r| (r.get(0), i64::from(r.get::<_, i32>(1)), r.get(2)))
                    .collect()
            }
            Eng::My => {
                let mut c = my(dsn).await;
                let n: Option<i64> = c
                    .query_first(
                        "SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'flyway_schema_history'",
                    )
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                if n.unwrap_or(0) == 0 {
                    return Vec::new();
                }
                let rows: Vec<(String, i64, i64)> =
                    c.query(sql).await.unwrap_or_else(|e| panic!("{e}"));
                rows.into_iter().map(|(v, c, s)| (v, c, s != 0)).collect()
            }
        }
    }
}

fn os_user() -> String {
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

struct Project {
    dir: tempfile::TempDir,
    slack_base: String,
    eng: Eng,
}

struct Out {
    code: i32,
    out: String,
    err: String,
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.out, self.err
        )
    }
}

impl Project {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn migration(&self, sql: &str) {
        std::fs::write(self.path().join("db/V1__items_val_index.sql"), sql)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_cutover"));
        c.args(args)
            .current_dir(self.path())
            .env("CUTOVER_AUDIT_KEY", KEY)
            // The supervisors inherit these: their relays talk to the double.
            .env("SLACK_BOT_TOKEN", BOT)
            .env("SLACK_APP_TOKEN", APP)
            .env_remove("SLACK_SIGNING_SECRET")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }

    async fn cutover(&self, args: &[&str]) -> Out {
        let out = self
            .command(args)
            .output()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        Out {
            code: out.status.code().unwrap_or(-1),
            out: String::from_utf8_lossy(&out.stdout).into(),
            err: String::from_utf8_lossy(&out.stderr).into(),
        }
    }

    fn runs_dir(&self) -> PathBuf {
        self.path().join(".cutover/runs")
    }

    /// Waits until no supervisor of this project is running (a finished run's
    /// supervisor outlives its client while the relay delivers the final state).
    async fn supervisors_gone(&self) {
        let end = std::time::Instant::now() + WAIT;
        loop {
            let running: Vec<PathBuf> = std::fs::read_dir(self.runs_dir())
                .map(|d| {
                    d.filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| cutover::supervisor::is_running(p))
                        .collect()
                })
                .unwrap_or_default();
            if running.is_empty() {
                return;
            }
            assert!(
                std::time::Instant::now() < end,
                "supervisors still running: {running:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn config(&self, stage: &str, prod: &str) {
        let me = os_user();
        let text = format!(
            r#"[[targets]]
name = "staging"
engine = "{engine}"
environment = "staging"
primary = "{stage}"
executor = "native"

[[targets]]
name = "prod"
engine = "{engine}"
environment = "prod"
primary = "{prod}"
executor = "native"

# Default approval rules (prod high: one DBA, never the requester) and
# promotion (prod needs the digest to have succeeded on staging).

[[policy.people]]
id = "bob"
name = "Bob"
role = "dba"
local = ["{me}"]
slack = "{BOB}"

[[policy.people]]
id = "alice"
name = "Alice"
role = "dba"
slack = "{ALICE}"

[[policy.people]]
id = "carol"
name = "Carol"
role = "observer"
slack = "{CAROL}"

[slack]
channel = "{CHANNEL}"
api_base = "{base}"
coalesce_seconds = 1.0
"#,
            base = self.slack_base,
            engine = self.eng.name()
        );
        std::fs::write(self.path().join("cutover.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// A headless `cutover run … --format json` left running; its records
/// (the trail's, one JSON object per line) are collected as they come.
struct Follower {
    child: tokio::process::Child,
    reader: tokio::task::JoinHandle<()>,
    seen: Arc<Mutex<Vec<Value>>>,
}

impl Follower {
    fn spawn(p: &Project, target: &str) -> Follower {
        let mut child = p
            .command(&[
                "run", "db", "--target", target, "--no-tui", "--format", "json",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let reader = tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    s2.lock().unwrap_or_else(|p| p.into_inner()).push(v);
                }
            }
        });
        Follower {
            child,
            reader,
            seen,
        }
    }

    /// The event types printed so far.
    fn types(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|v| v["event"]["type"].as_str().unwrap_or("?").to_string())
            .collect()
    }

    /// Whether the client is still following (has not exited).
    fn following(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the client to end by itself: its exit code, event types, stderr.
    async fn finish(self) -> (i32, Vec<String>, String) {
        let out = tokio::time::timeout(WAIT, self.child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("the client did not end"))
            .unwrap_or_else(|e| panic!("{e}"));
        let _ = self.reader.await;
        let types = self
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|v| v["event"]["type"].as_str().unwrap_or("?").to_string())
            .collect();
        (
            out.status.code().unwrap_or(-1),
            types,
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }

    /// Detaches: ends this client (a child of this test); the run's
    /// supervisor, in its own process group, goes on.
    async fn detach(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        let _ = self.reader.await;
    }
}

/// The pre-flight message with an Approve button for plan `digest`:
/// (message ts, button value, run id). The run is found by what it is,
/// whatever the run-id scheme.
fn approve_button(d: &Double, digest: &str) -> Option<(String, String, String)> {
    d.messages().into_iter().find_map(|m| {
        let value = m.blocks.as_array()?.iter().find_map(|b| {
            b["elements"].as_array()?.iter().find_map(|e| {
                (e["action_id"] == "approve")
                    .then(|| e["value"].as_str().map(str::to_string))
                    .flatten()
            })
        })?;
        let (run, rest) = value.split_once('|')?;
        let run = run.to_string();
        rest.starts_with(&format!("{digest}|"))
            .then(|| (m.ts.clone(), value.clone(), run))
    })
}

async fn wait_button(d: &Double, digest: &str) -> (String, String, String) {
    d.wait_for(&format!("the pre-flight of plan {digest}"), WAIT, |d| {
        approve_button(d, digest).is_some()
    })
    .await;
    approve_button(d, digest).unwrap_or_else(|| panic!("no pre-flight for {digest}"))
}

/// The run created on `target` for plan `digest`, from the trail's `created` records.
fn run_created(rows: &[Value], target: &str, digest: &str) -> String {
    let found: Vec<&str> = rows
        .iter()
        .filter(|r| {
            let spec = &r["entry"]["record"]["event"]["spec"];
            r["event"] == "created"
                && spec["binding"]["target"] == target
                && spec["binding"]["plan_digest"] == digest
        })
        .filter_map(|r| r["run"].as_str())
        .collect();
    assert_eq!(found.len(), 1, "runs of {digest} on {target}: {found:?}");
    found[0].to_string()
}

/// The run's records in the trail, as `audit export --format json` rows.
fn rows_of<'a>(rows: &'a [Value], run: &str) -> Vec<&'a Value> {
    rows.iter().filter(|r| r["run"] == run).collect()
}

/// Reads the trail by `audit export` until `f` holds on the rows.
async fn export_until(p: &Project, what: &str, f: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    export_trail_until(p, ".cutover/audit.jsonl", what, f).await
}

/// [`export_until`] on another trail (the relay's own).
async fn export_trail_until(
    p: &Project,
    trail: &str,
    what: &str,
    f: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let end = std::time::Instant::now() + WAIT;
    loop {
        let o = p
            .cutover(&["audit", "export", "--format", "json", "--trail", trail])
            .await;
        assert_eq!(o.code, 0, "{o}");
        let rows: Vec<Value> =
            serde_json::from_str(&o.out).unwrap_or_else(|e| panic!("export is not JSON: {e}: {o}"));
        if f(&rows) {
            return rows;
        }
        assert!(std::time::Instant::now() < end, "waiting for {what}: {o}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn refusals(rows: &[Value], run: &str) -> Vec<String> {
    rows_of(rows, run)
        .into_iter()
        .filter(|r| r["event"] == "refused")
        .map(|r| {
            format!(
                "{} {}: {}",
                r["entry"]["record"]["event"]["surface"]
                    .as_str()
                    .unwrap_or("?"),
                r["entry"]["record"]["event"]["person"]
                    .as_str()
                    .unwrap_or("?"),
                r["entry"]["record"]["event"]["reason"]
                    .as_str()
                    .unwrap_or("?")
            )
        })
        .collect()
}

/// The `n` (trail position) of the first row of `run` with event `ty` whose
/// summary contains `text`.
fn pos(rows: &[Value], run: &str, ty: &str, text: &str) -> u64 {
    rows_of(rows, run)
        .into_iter()
        .find(|r| r["event"] == ty && r["summary"].as_str().unwrap_or("").contains(text))
        .and_then(|r| r["n"].as_u64())
        .unwrap_or_else(|| {
            panic!(
                "no '{ty}' record ({text}) for {run} in the trail: {:#?}",
                rows_of(rows, run)
                    .iter()
                    .map(|r| format!("#{} {} {}", r["n"], r["event"], r["summary"]))
                    .collect::<Vec<_>>()
            )
        })
}

fn plan_digest(plan_json: &str) -> String {
    let v: Value = serde_json::from_str(plan_json).unwrap_or_else(|e| panic!("{e}: {plan_json}"));
    v["plan_digest"]
        .as_str()
        .unwrap_or_else(|| panic!("no plan_digest: {plan_json}"))
        .to_string()
}

async fn from_plan_to_prod_only_through_the_gate(eng: Eng) {
    let Some(admin) = db_common::url(eng.admin_var()) else {
        return;
    };
    let stage = eng.seeded_db(&admin, "acc_stage").await;
    let prod = eng.seeded_db(&admin, "acc_prod").await;
    let d = Double::start().await;
    let p = Project {
        dir: tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")),
        slack_base: d.base.clone(),
        eng,
    };
    std::fs::create_dir_all(p.path().join("db")).unwrap_or_else(|e| panic!("{e}"));
    p.config(&stage, &prod);
    p.migration(eng.old_sql());

    // 1. The plan against prod's live facts: high, a lock that blocks writes.
    let o = p
        .cutover(&["plan", "db", "--target", "prod", "--format", "json"])
        .await;
    assert_eq!(o.code, 0, "{o}");
    let plan: Value = serde_json::from_str(&o.out).unwrap_or_else(|e| panic!("{e}: {o}"));
    let st = &plan["migrations"][0]["statements"][0];
    assert_eq!(plan["risk"], "high", "{o}");
    assert_eq!(st["risk"], "high", "{o}");
    let (mode, rule) = eng.predicted();
    assert_eq!(st["lock"]["mode"], mode, "{o}");
    assert_eq!(st["lock"]["blocks"], "writes", "{o}");
    assert_eq!(st["lock"]["table"], "acc_items", "{o}");
    assert!(
        st["findings"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x["rule"] == rule)),
        "{o}"
    );
    // High because the table is large (1,000,000 rows read live), not
    // because its size is unknown.
    assert!(st["estimate"].is_object(), "{o}");
    assert!(
        !o.out.contains("table-size-unknown"),
        "the live row count was not read: {o}"
    );
    let st_rewrites = st["rewrites_table"].clone();
    let d_old = plan_digest(&o.out);
    // The CI gate says so by its exit code.
    let o = p
        .cutover(&["plan", "db", "--target", "prod", "--fail-on", "high"])
        .await;
    assert_eq!(o.code, 1, "{o}");

    // 2. verify on staging: the engine takes that lock; staging is left as it was.
    let o = p
        .cutover(&["verify", "db", "--target", "staging", "--format", "json"])
        .await;
    let v: Value = serde_json::from_str(&o.out).unwrap_or_else(|e| panic!("{e}: {o}"));
    let vs = &v["migrations"][0]["statements"][0];
    assert_eq!(vs["outcome"]["status"], "observed", "{o}");
    assert_eq!(vs["outcome"]["lock"]["mode"], mode, "{o}");
    assert_eq!(vs["outcome"]["lock"]["blocks"], "writes", "{o}");
    // Staging agrees with the plan, rewrite included (MariaDB rebuilds the
    // table for its first FULLTEXT index, and the plan says so).
    assert_eq!(o.code, 0, "staging agrees with the plan: {o}");
    assert_eq!(vs["outcome"]["rewrote"], st_rewrites, "{o}");
    if eng == Eng::My {
        assert_eq!(st_rewrites, Value::Bool(true), "{o}");
    }
    eprintln!(
        "{eng:?} verify on staging: {} {} in {} ms",
        vs["outcome"]["lock"]["mode"],
        vs["outcome"]["lock"]["blocks"],
        vs["outcome"]["duration_ms"]
    );
    assert_eq!(v["risk"], "high", "{o}");
    assert_eq!(v["leftovers"].as_array().map(Vec::len), Some(0), "{o}");
    assert!(
        !eng.index_exists(&stage).await,
        "verify left the index on staging"
    );
    assert!(eng.history(&stage).await.is_empty());
    // …and prod is no staging target.
    let o = p.cutover(&["verify", "db", "--target", "prod"]).await;
    assert_eq!(o.code, 2, "{o}");

    // 3a. Prod before any rehearsal: refused by promotion, nothing executed.
    let o = p
        .cutover(&["run", "db", "--target", "prod", "--no-tui"])
        .await;
    assert_eq!(o.code, 3, "{o}");
    assert!(
        o.err.contains("has not succeeded on a staging target"),
        "{o}"
    );
    assert!(!eng.index_exists(&prod).await);
    assert!(eng.history(&prod).await.is_empty());
    p.supervisors_gone().await;

    // A rehearsal of these bytes on staging (the real native executor).
    let o = p
        .cutover(&["run", "db", "--target", "staging", "--no-tui"])
        .await;
    assert_eq!(o.code, 0, "{o}");
    assert!(o.out.contains("SUCCEEDED"), "{o}");
    assert!(eng.index_exists(&stage).await);
    p.supervisors_gone().await;

    // 3b. Prod, requested: approval is missing, so it waits; nothing runs.
    // (The request is made before the client follows the run: the pre-flight
    // posted in Slack is what shows it.)
    let mut client = Follower::spawn(&p, "prod");
    let (pre_old, value_old, run_old) = wait_button(&d, &d_old).await;
    assert!(
        !client.types().iter().any(|t| t == "started"),
        "{:?}",
        client.types()
    );
    let o = p.cutover(&["runs", "--format", "json"]).await;
    assert_eq!(o.code, 0, "{o}");
    assert!(
        o.out.contains(&run_old) && o.out.contains("awaiting_approval"),
        "{o}"
    );
    assert!(!eng.index_exists(&prod).await, "prod ran without approval");
    assert!(
        eng.history(&prod).await.is_empty(),
        "prod ran without approval"
    );

    // 4. The requester approves their own run: refused, from Slack…
    let slack_refusals = |rows: &[Value], run: &str| -> Vec<String> {
        refusals(rows, run)
            .into_iter()
            .filter(|r| r.starts_with("slack "))
            .collect()
    };
    d.deliver(d.block_actions(BOB, &pre_old, "approve", &value_old))
        .unwrap_or_else(|| panic!("no Socket Mode link open"));
    let rows = export_until(&p, "the self-approval refusal", |rows| {
        !slack_refusals(rows, &run_old).is_empty()
    })
    .await;
    let r = slack_refusals(&rows, &run_old);
    assert!(
        r[0].starts_with("slack bob:") && r[0].contains("self-approval"),
        "{r:?}"
    );
    // Bob was told so in Slack, privately.
    d.wait_for("Bob's ephemeral", WAIT, |d| {
        d.ephemerals().iter().any(|e| {
            e["user"] == BOB
                && e["text"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("Refused") && t.contains("self-approval"))
        })
    })
    .await;
    // …an observer's approval does not count either…
    d.deliver(d.block_actions(CAROL, &pre_old, "approve", &value_old))
        .unwrap_or_else(|| panic!("no Socket Mode link open"));
    let rows = export_until(&p, "the observer's refusal", |rows| {
        slack_refusals(rows, &run_old).len() >= 2
    })
    .await;
    let r = slack_refusals(&rows, &run_old);
    assert!(r[1].starts_with("slack carol:"), "{r:?}");
    // …and from the command line.
    let o = p.cutover(&["approve", &run_old]).await;
    assert_eq!(o.code, 3, "{o}");
    assert!(o.err.contains("self-approval"), "{o}");
    assert!(!eng.index_exists(&prod).await, "prod ran without approval");
    assert!(!client.types().iter().any(|t| t == "started"));
    assert!(client.following(), "the blocked client exited");
    // The requester's client goes; the run waits under its supervisor.
    client.detach().await;

    // 5. Another DBA approves these bytes (nobody starts the run yet)…
    d.deliver(d.block_actions(ALICE, &pre_old, "approve", &value_old))
        .unwrap_or_else(|| panic!("no Socket Mode link open"));
    export_until(&p, "Alice's approval of the old bytes", |rows| {
        rows_of(rows, &run_old)
            .iter()
            .any(|r| r["event"] == "approval_satisfied")
    })
    .await;
    assert!(!eng.index_exists(&prod).await);
    // …then the migration is edited: a new plan, and the approval stays with
    // the old digest. The new bytes are not rehearsed: refused, nothing runs.
    p.migration(&eng.new_sql());
    let o = p
        .cutover(&["plan", "db", "--target", "prod", "--format", "json"])
        .await;
    let d_new = plan_digest(&o.out);
    assert_ne!(d_old, d_new);
    let o = p
        .cutover(&["run", "db", "--target", "prod", "--no-tui"])
        .await;
    assert_eq!(o.code, 3, "{o}");
    assert!(o.err.contains("superseded"), "{o}");
    // The old run is closed in the trail (withdrawn, by the requester), not
    // left approved for ever.
    let rows = export_until(&p, "the old run's withdrawal", |rows| {
        rows_of(rows, &run_old)
            .iter()
            .any(|r| r["event"] == "withdrawn")
    })
    .await;
    let old_events: Vec<String> = rows_of(&rows, &run_old)
        .iter()
        .map(|r| r["event"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        old_events.last().map(String::as_str),
        Some("withdrawn"),
        "{old_events:?}"
    );
    assert!(
        o.err.contains("has not succeeded on a staging target"),
        "{o}"
    );
    assert!(
        !eng.index_exists(&prod).await,
        "prod ran on an old approval"
    );
    assert!(eng.history(&prod).await.is_empty());
    p.supervisors_gone().await;

    // 6. The new bytes on staging. Staging's history holds V1's old checksum,
    // which cutover rightly refuses; staging is refreshed (as from a prod
    // snapshot), then the rehearsal with the real executor succeeds.
    let o = p
        .cutover(&["run", "db", "--target", "staging", "--no-tui"])
        .await;
    assert_eq!(o.code, 2, "{o}");
    assert!(o.err.contains("applied with different content"), "{o}");
    eng.seeded_db(&admin, "acc_stage").await;
    let o = p
        .cutover(&["run", "db", "--target", "staging", "--no-tui"])
        .await;
    assert_eq!(o.code, 0, "{o}");
    assert!(o.out.contains("SUCCEEDED"), "{o}");
    assert!(eng.index_exists(&stage).await);
    let stage_history = eng.history(&stage).await;
    assert_eq!(stage_history.len(), 1, "{stage_history:?}");
    assert!(stage_history[0].2, "{stage_history:?}");
    p.supervisors_gone().await;
    // The staging run calibrates prod's estimate (index build on 1M rows).
    let o = p.cutover(&["plan", "db", "--target", "prod"]).await;
    match o
        .out
        .lines()
        .find(|l| l.contains("calibrated from staging run"))
    {
        Some(note) => eprintln!("{eng:?} prod plan after the rehearsal: {}", note.trim()),
        None => {
            assert_ne!(eng, Eng::Pg, "no calibration note: {o}");
            eprintln!("{eng:?}: no calibration from the rehearsal: {}", o.out);
        }
    }

    // 7. Prod with the new bytes: requested, waiting; Alice's approval of the
    // old digest did not carry over.
    let mut client = Follower::spawn(&p, "prod");
    let (pre_new, value_new, run_new) = wait_button(&d, &d_new).await;
    assert_ne!(run_new, run_old);
    assert!(!eng.index_exists(&prod).await);
    // An approval carrying the older digest — the old plan's render, replayed
    // onto this run — is refused and recorded in this run's trail.
    let rev = value_new.rsplit('|').next().unwrap_or("0");
    let forged = format!("{run_new}|{d_old}|{rev}");
    d.deliver(d.block_actions(ALICE, &pre_new, "approve", &forged))
        .unwrap_or_else(|| panic!("no Socket Mode link open"));
    let stale = |rows: &[Value]| -> Vec<String> {
        refusals(rows, &run_new)
            .into_iter()
            .filter(|r| r.contains("stale approval"))
            .collect()
    };
    export_until(&p, "the Slack refusal of the older digest", |rows| {
        !stale(rows).is_empty()
    })
    .await;
    // The old run's button, clicked again: its run is not served any more,
    // and the relay records the refusal in its own trail.
    d.deliver(d.block_actions(ALICE, &pre_old, "approve", &value_old))
        .unwrap_or_else(|| panic!("no Socket Mode link open"));
    export_trail_until(
        &p,
        ".cutover/relay-audit.jsonl",
        "the relay's refusal",
        |rows| {
            rows.iter()
                .any(|r| r["event"] == "relay_refused" && r["run"] == run_old.as_str())
        },
    )
    .await;
    // From the command line, approving what was reviewed (the old digest).
    let o = p
        .cutover(&["approve", &run_new, "--plan-digest", &d_old[..12]])
        .await;
    assert_eq!(o.code, 3, "{o}");
    assert!(o.err.contains("stale approval"), "{o}");
    let rows = export_until(&p, "the older-digest refusals", |rows| {
        stale(rows).len() >= 2
    })
    .await;
    let r = stale(&rows);
    let (old12, new12) = (&d_old[..12], &d_new[..12]);
    assert!(
        r[0].starts_with("slack alice:") && r[0].contains(old12) && r[0].contains(new12),
        "{r:?}"
    );
    assert!(
        r[1].starts_with("cli bob:") && r[1].contains(old12),
        "{r:?}"
    );
    assert!(
        !eng.index_exists(&prod).await,
        "prod ran on an old approval"
    );
    assert!(!client.types().iter().any(|t| t == "started"));
    assert!(client.following(), "the blocked client exited");

    // Another DBA approves this digest from Slack: the client starts the run.
    d.deliver(d.block_actions(ALICE, &pre_new, "approve", &value_new))
        .unwrap_or_else(|| panic!("no Socket Mode link open"));
    let (code, types, err) = client.finish().await;
    assert_eq!(code, 0, "{types:?} {err}");
    // The pre-flight was rewritten in place: no Approve button any more.
    d.wait_for("the approved pre-flight", WAIT, |d| {
        approve_button(d, &d_new).is_none()
    })
    .await;
    let at = |t: &str| {
        types
            .iter()
            .position(|x| x == t)
            .unwrap_or_else(|| panic!("no {t}: {types:?}"))
    };
    assert!(at("approved") < at("started") && at("started") < at("succeeded"));
    assert!(eng.index_exists(&prod).await, "the index is on prod");
    let h = eng.history(&prod).await;
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!((h[0].0.as_str(), h[0].2), ("1", true), "{h:?}");
    assert_eq!(
        h[0].1, stage_history[0].1,
        "the rehearsed bytes ran on prod"
    );
    p.supervisors_gone().await;

    // 8. The trail verifies and holds each decision, in order.
    let o = p.cutover(&["audit", "verify"]).await;
    assert_eq!(o.code, 0, "{o}");
    let rows = export_until(&p, "the whole trail", |_| true).await;
    let stage_new = &run_created(&rows, "staging", &d_new);
    assert_eq!(run_created(&rows, "prod", &d_new), run_new);
    let order = [
        pos(&rows, &run_old, "requested", ""),
        pos(&rows, &run_old, "refused", "self-approval"),
        pos(&rows, &run_old, "approved", "alice"),
        pos(&rows, stage_new, "succeeded", ""),
        pos(&rows, &run_new, "requested", ""),
        pos(&rows, &run_new, "refused", "stale approval"),
        pos(&rows, &run_new, "approved", "alice"),
        pos(&rows, &run_new, "started", ""),
        pos(&rows, &run_new, "succeeded", ""),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    // The rehearsal ran the real native executor on a staging target.
    let created = rows_of(&rows, stage_new)
        .into_iter()
        .find(|r| r["event"] == "created")
        .unwrap_or_else(|| panic!("no created record for {stage_new}"));
    let spec = &created["entry"]["record"]["event"]["spec"];
    assert_eq!(spec["executor"], "native", "{created}");
    assert_eq!(spec["environment"], "staging", "{created}");
    assert_eq!(spec["binding"]["plan_digest"], d_new.as_str(), "{created}");
    // Alice's recorded approval binds to the new digest.
    let approval = rows_of(&rows, &run_new)
        .into_iter()
        .find(|r| r["event"] == "approved")
        .unwrap_or_else(|| panic!("no approval"));
    assert_eq!(
        approval["entry"]["record"]["event"]["approval"]["binding"]["plan_digest"],
        d_new.as_str(),
        "{approval}"
    );
    // The relay's own trail (clicks for runs it does not serve) verifies too.
    let o = p
        .cutover(&["audit", "verify", "--trail", ".cutover/relay-audit.jsonl"])
        .await;
    assert_eq!(o.code, 0, "{o}");
    let o = p.cutover(&["audit", "show", &run_new]).await;
    assert_eq!(o.code, 0, "{o}");
    for text in ["stale approval", "approved by Alice", "succeeded"] {
        assert!(o.out.contains(text), "{text}: {o}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_a_dangerous_migration_goes_from_plan_to_prod_only_through_the_gate() {
    from_plan_to_prod_only_through_the_gate(Eng::Pg).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_a_dangerous_migration_goes_from_plan_to_prod_only_through_the_gate() {
    from_plan_to_prod_only_through_the_gate(Eng::My).await;
}

/// Two supervisors on one host (two runs, here of two projects) each open a
/// Socket Mode link of the one Slack app, and Slack hands an envelope to one
/// link of its choice: a DBA's approval of the waiting prod run lands in the
/// other run's relay, which forwards it to the prod run's supervisor; the
/// approval counts and the prod run goes ahead. (Before the fix it was
/// refused as "not served by this relay" and the prod run never heard of it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_an_approval_reaches_its_run_while_another_run_is_live() {
    let eng = Eng::Pg;
    let Some(admin) = db_common::url(eng.admin_var()) else {
        return;
    };
    let stage = eng.seeded_db(&admin, "acc_route_stage").await;
    let prod = eng.seeded_db(&admin, "acc_route_prod").await;
    let d = Double::start().await;
    let project = || {
        let p = Project {
            dir: tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")),
            slack_base: d.base.clone(),
            eng,
        };
        std::fs::create_dir_all(p.path().join("db")).unwrap_or_else(|e| panic!("{e}"));
        p.config(&stage, &prod);
        p
    };
    let p = project();
    p.migration(eng.old_sql());
    let o = p
        .cutover(&["run", "db", "--target", "staging", "--no-tui"])
        .await;
    assert_eq!(o.code, 0, "{o}");
    p.supervisors_gone().await;
    let o = p
        .cutover(&["plan", "db", "--target", "prod", "--format", "json"])
        .await;
    let client = Follower::spawn(&p, "prod");
    let (pre, value, _) = wait_button(&d, &plan_digest(&o.out)).await;
    // Another run goes live meanwhile (its supervisor opens the newer link).
    let q = project();
    std::fs::write(q.path().join("db/V7__slow.sql"), "SELECT pg_sleep(30);\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let other = Follower::spawn(&q, "staging");
    d.wait_for("a second link", WAIT, |d| d.open_links().len() == 2)
        .await;
    d.deliver(d.block_actions(ALICE, &pre, "approve", &value))
        .unwrap_or_else(|| panic!("no Socket Mode link open"));
    let (code, types, err) = client.finish().await;
    assert_eq!(code, 0, "{types:?} {err}");
    assert!(eng.index_exists(&prod).await);
    other.detach().await;
}
