//! Service mode with real OS users (#9 item 6; cleanup and forget as the
//! person), and the target's executor in the plan digest (#9 item 2), end to
//! end with the `cutover` binary on the throwaway PostgreSQL and MariaDB
//! primaries (`scripts/test`).
//!
//! The service-mode tests create a group and three users (service,
//! requester, second DBA), one test at a time, and need root; without root
//! they skip with one line, unless `CUTOVER_TEST_REQUIRE_DB` or `CI` says
//! they must run.

mod db_common;
use db_common::with_db;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const KEY: &str = "an-audit-key-for-serve-tests-0123456789";
const GROUP: &str = "cutover-t";
const SVC: &str = "cutover-t-svc";
const REQ: &str = "cutover-t-req";
const DBA: &str = "cutover-t-dba";

async fn table_exists(dsn: &str, table: &str) -> bool {
    let c = db_common::pg(dsn).await;
    c.query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .get(0)
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn sh(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn id_of(flag: &str, name: &str) -> u32 {
    let o = sh("id", &[flag, name]);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The test's group and users; created idempotently, removed on drop.
struct Users;

impl Users {
    fn create() -> Users {
        let o = sh("groupadd", &["-f", GROUP]);
        assert!(o.status.success(), "{}", text(&o));
        for u in [SVC, REQ, DBA] {
            if sh("id", &["-u", u]).status.success() {
                continue;
            }
            let o = sh(
                "useradd",
                &["-M", "-N", "-g", GROUP, "-s", "/usr/sbin/nologin", u],
            );
            assert!(o.status.success(), "useradd {u}: {}", text(&o));
        }
        Users
    }
}

impl Drop for Users {
    fn drop(&mut self) {
        for u in [SVC, REQ, DBA] {
            let _ = sh("userdel", &[u]);
        }
        let _ = sh("groupdel", &[GROUP]);
    }
}

fn chown(path: &Path, user: &str, mode: u32) {
    let o = sh(
        "chown",
        &[&format!("{user}:{GROUP}"), &path.to_string_lossy()],
    );
    assert!(o.status.success(), "{}", text(&o));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("{e}"));
}

/// `program args` as `user` (its uid, the test group, its supplementary
/// groups), with a clean environment: no audit key is passed to anyone.
fn as_user(user: &str, cwd: &Path, program: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("setpriv");
    c.arg(format!("--reuid={user}"))
        .arg(format!("--regid={GROUP}"))
        .arg("--init-groups")
        .arg("--")
        .arg(program)
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .env("HOME", cwd);
    c
}

fn run_as(user: &str, cwd: &Path, program: &Path, args: &[&str]) -> Output {
    as_user(user, cwd, program, args)
        .output()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Kills the service on drop (a failed assertion must not leave it behind).
struct Service(std::process::Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = sh("kill", &["-TERM", &self.0.id().to_string()]);
        let _ = self.0.wait();
    }
}

/// Kills a client process on drop unless disarmed (a failed assertion
/// must not leave it following the run).
struct KillOnDrop(Option<u32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = sh("kill", &["-KILL", &pid.to_string()]);
        }
    }
}

/// The service's cutover.toml: one prod target on `engine` at `dsn`, the
/// requester (rita) and the second DBA (bob), no staging rehearsal needed;
/// `extra` is appended.
fn service_config(engine: &str, dsn: &str, extra: &str) -> String {
    format!(
        r#"[[targets]]
name = "prod"
engine = "{engine}"
environment = "prod"
primary = "{dsn}"
executor = "native"

[[policy.people]]
id = "rita"
role = "dba"
local = ["{REQ}"]

[[policy.people]]
id = "bob"
role = "dba"
local = ["{DBA}"]

[policy.promotion]
require_staging_for_prod = false

{extra}"#
    )
}

/// The tests that create the OS users run one at a time (one removes them
/// when it ends).
static USERS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Whether this process may create OS users; without root the test skips
/// with one line, unless CI says it must run.
fn root_or_skip(test: &str) -> bool {
    if cutover::supervisor::peer::current_uid() == 0 {
        return true;
    }
    let demanded =
        std::env::var_os("CUTOVER_TEST_REQUIRE_DB").is_some() || std::env::var_os("CI").is_some();
    assert!(
        !demanded,
        "service-mode test needs root (to create OS users), and CI demands it"
    );
    eprintln!("skipping {test}: needs root to create OS users");
    false
}

/// A service's layout: a traversable base; the service's state (0700, its
/// own: cutover.toml, key, trail, runs); the socket directory (the group
/// may enter); the requester's and the second DBA's working directories;
/// the service running as `SVC`.
struct Layout {
    base: tempfile::TempDir,
    bin: PathBuf,
    state: PathBuf,
    req: PathBuf,
    dba: PathBuf,
    sock: PathBuf,
    key: PathBuf,
    trail: PathBuf,
    runs: PathBuf,
    _service: Service,
}

impl Layout {
    /// Lays out the directories with `config` as the service's cutover.toml
    /// and `migration` (name, SQL) in the requester's `db/`, and starts the
    /// service.
    fn start(config: &str, migration: (&str, &str)) -> Layout {
        let base = tempfile::Builder::new()
            .prefix("cutover-serve-")
            .tempdir_in("/tmp")
            .unwrap_or_else(|e| panic!("{e}"));
        let b = base.path();
        std::fs::set_permissions(b, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("{e}"));
        let bin = b.join("cutover");
        std::fs::copy(env!("CARGO_BIN_EXE_cutover"), &bin).unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("{e}"));
        let (state, sockdir, req, dba) =
            (b.join("svc"), b.join("sock"), b.join("req"), b.join("dba"));
        for d in [&state, &sockdir, &req, &dba] {
            std::fs::create_dir(d).unwrap_or_else(|e| panic!("{e}"));
        }
        let key = state.join("audit.key");
        std::fs::write(&key, KEY).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(state.join("cutover.toml"), config).unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir(req.join("db")).unwrap_or_else(|e| panic!("{e}"));
        let file = req.join("db").join(migration.0);
        std::fs::write(&file, migration.1).unwrap_or_else(|e| panic!("{e}"));
        chown(&key, SVC, 0o600);
        chown(&state.join("cutover.toml"), SVC, 0o600);
        chown(&state, SVC, 0o700);
        chown(&sockdir, SVC, 0o750);
        chown(&file, REQ, 0o644);
        chown(&req.join("db"), REQ, 0o755);
        chown(&req, REQ, 0o700);
        chown(&dba, DBA, 0o700);
        let sock = sockdir.join("cutover.sock");
        let log = std::fs::File::create(b.join("serve.log")).unwrap_or_else(|e| panic!("{e}"));
        let service = Service(
            as_user(
                SVC,
                &state,
                &bin,
                &[
                    "serve",
                    "--config",
                    "cutover.toml",
                    "--socket",
                    &sock.to_string_lossy(),
                    "--group",
                    GROUP,
                    "--runs",
                    "runs",
                    "--trail",
                    "audit.jsonl",
                    "--key-file",
                    &key.to_string_lossy(),
                ],
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{e}")),
        );
        wait_until("the service socket", || {
            std::os::unix::net::UnixStream::connect(&sock).is_ok()
        });
        Layout {
            bin,
            trail: state.join("audit.jsonl"),
            runs: state.join("runs"),
            state,
            req,
            dba,
            sock,
            key,
            base,
            _service: service,
        }
    }

    fn sock_s(&self) -> String {
        self.sock.to_string_lossy().to_string()
    }

    fn serve_log(&self) -> String {
        std::fs::read_to_string(self.base.path().join("serve.log")).unwrap_or_default()
    }

    /// `cutover audit show` of the service's trail, as the service user.
    fn show(&self) -> String {
        let o = run_as(
            SVC,
            &self.state,
            &self.bin,
            &[
                "audit",
                "show",
                "--trail",
                &self.trail.to_string_lossy(),
                "--key-file",
                &self.key.to_string_lossy(),
            ],
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    /// The one run directory of the service, and its id.
    fn the_run(&self) -> (PathBuf, String) {
        let dir = std::fs::read_dir(&self.runs)
            .unwrap_or_else(|e| panic!("{e}"))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .next()
            .unwrap_or_else(|| panic!("no run directory; service log: {}", self.serve_log()));
        let id = dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        (dir, id)
    }
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..600 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("gave up waiting: {what}");
}

#[tokio::test]
async fn pg_service_mode_separates_requester_and_approver() {
    if !root_or_skip("pg_service_mode_separates_requester_and_approver") {
        return;
    }
    let Some(dsn) = db_common::fresh_pg("serve_users").await else {
        return;
    };
    db_common::pg(&dsn)
        .await
        .batch_execute(
            "CREATE TABLE serve_victim (id int); INSERT INTO serve_victim VALUES (1); CREATE TABLE serve_other (id int);",
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let _one = USERS.lock().await;
    let _users = Users::create();
    let l = Layout::start(
        &service_config("postgres", &dsn, ""),
        ("V1__drop.sql", "DROP TABLE serve_victim;\n"),
    );
    let (bin, state, req, dba) = (l.bin.clone(), l.state.clone(), l.req.clone(), l.dba.clone());
    let (sock, sock_s) = (l.sock.clone(), l.sock_s());
    let (trail, runs, key) = (l.trail.clone(), l.runs.clone(), l.key.clone());
    let (trail_s, key_s) = (
        trail.to_string_lossy().to_string(),
        key.to_string_lossy().to_string(),
    );
    let serve_log = || l.serve_log();

    // The requester asks for a high-risk prod run through the service.
    let requester = as_user(
        REQ,
        &req,
        &bin,
        &[
            "run",
            "db",
            "--target",
            "prod",
            "--no-tui",
            "--service",
            &sock_s,
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap_or_else(|e| panic!("{e}"));
    let mut requester_guard = KillOnDrop(Some(requester.id()));
    let show = || l.show();
    wait_until("the request in the service's trail", || {
        show().contains("approval requested by rita")
    });
    let (run_dir, run) = l.the_run();

    // Another DBA finds it among the service's runs.
    let o = run_as(DBA, &dba, &bin, &["runs", "--service", &sock_s]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let listed = String::from_utf8_lossy(&o.stdout);
    assert!(listed.contains(&run) && listed.contains("rita"), "{listed}");

    // What runs is what the service copied: the requester's files, changed
    // after the request, do not matter.
    std::fs::write(req.join("db/V1__drop.sql"), "DROP TABLE serve_other;\n")
        .unwrap_or_else(|e| panic!("{e}"));
    // Their own rules would change the verdict: refused.
    let o = run_as(
        REQ,
        &req,
        &bin,
        &[
            "run",
            "db",
            "--target",
            "prod",
            "--no-tui",
            "--service",
            &sock_s,
            "--rules",
            "lenient.toml",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("--rules cannot be used with the cutover service"),
        "{}",
        text(&o)
    );

    // The requester can neither change what runs or what is recorded, nor
    // read the key: the kernel says no.
    let stored = run_dir.join("migrations.json");
    for attempt in [
        format!("echo 'DROP TABLE other;' >> {}", stored.display()),
        format!("touch {}/evil", run_dir.display()),
        format!("echo '{{}}' >> {}", trail.display()),
        format!("cat {}", key.display()),
        format!("ls {}", runs.display()),
    ] {
        let o = run_as(REQ, &req, Path::new("/bin/sh"), &["-c", &attempt]);
        assert!(!o.status.success(), "{attempt}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("Permission denied"),
            "{attempt}: {}",
            text(&o)
        );
    }

    // Nor approve their own run: refused through the service, and recorded.
    let o = run_as(REQ, &req, &bin, &["approve", &run, "--service", &sock_s]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("self-approval"),
        "{}",
        text(&o)
    );
    assert!(show().contains("self-approval"), "{}", show());

    // A client of the service cannot name someone else on a relayed run.
    forged_identity_is_refused(&sock, &run, id_of("-u", DBA)).await;
    assert!(!show().contains("approved by bob"), "{}", show());

    // Another DBA watches the run through the service (read-only, headless)…
    let watcher = as_user(
        DBA,
        &dba,
        &bin,
        &[
            "attach",
            &run,
            "--no-tui",
            "--read-only",
            "--service",
            &sock_s,
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap_or_else(|e| panic!("{e}"));
    let mut watcher_guard = KillOnDrop(Some(watcher.id()));

    // …and approves; the requester's run goes ahead and succeeds.
    let o = run_as(DBA, &dba, &bin, &["approve", &run, "--service", &sock_s]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = requester
        .wait_with_output()
        .unwrap_or_else(|e| panic!("{e}"));
    requester_guard.0 = None;
    let watched = watcher.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    watcher_guard.0 = None;
    assert_eq!(watched.status.code(), Some(0), "{}", text(&watched));
    assert!(
        String::from_utf8_lossy(&watched.stdout).contains("SUCCEEDED"),
        "{}",
        text(&watched)
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out),
        serve_log()
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("SUCCEEDED"), "{stdout}");
    assert!(!table_exists(&dsn, "serve_victim").await);
    assert!(
        table_exists(&dsn, "serve_other").await,
        "ran the edited file"
    );
    let shown = show();
    assert!(shown.contains("approved by bob"), "{shown}");
    assert!(shown.contains("started by rita"), "{shown}");

    // The requester reads the head the service publishes; the service user
    // verifies the trail with its key.
    let o = run_as(REQ, &req, &bin, &["audit", "head", "--service", &sock_s]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let head = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let o = run_as(
        SVC,
        &state,
        &bin,
        &[
            "audit",
            "verify",
            "--trail",
            &trail_s,
            "--key-file",
            &key_s,
            "--expect-head",
            &head,
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = run_as(REQ, &req, &bin, &["audit", "verify", "--trail", &trail_s]);
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    wait_until("the supervisor to end", || {
        !cutover::supervisor::is_running(&run_dir)
    });
}

/// Housekeeping goes through the service as the person (the caller can
/// read neither its run directories nor its key): a DBA cleans up what a
/// MariaDB run left behind (listed, confirmed by the typed table name,
/// recorded under their name) and forgets the run; the service's own user,
/// who is no person of the policy, is refused both.
#[tokio::test]
async fn mariadb_service_mode_cleanup_and_forget_run_as_the_person() {
    use mysql_async::prelude::Queryable;
    if !root_or_skip("mariadb_service_mode_cleanup_and_forget_run_as_the_person") {
        return;
    }
    let Some(admin) = db_common::url("CUTOVER_TEST_MY_PRIMARY") else {
        return;
    };
    let mut c = mysql_async::Conn::from_url(admin.as_str())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for q in [
        "DROP DATABASE IF EXISTS serve_clean",
        "CREATE DATABASE serve_clean",
        "CREATE TABLE serve_clean.serve_t (id INT PRIMARY KEY)",
    ] {
        c.query_drop(q).await.unwrap_or_else(|e| panic!("{q}: {e}"));
    }
    let dsn = with_db(&admin, "serve_clean");
    let _one = USERS.lock().await;
    let _users = Users::create();
    let l = Layout::start(
        &service_config(
            "mysql",
            &dsn,
            // The run itself needs no approval here (prod/medium): housekeeping is the point.
            "[[policy.approvals.rules]]\nenvironment = \"prod\"\nrisk = \"high\"\ncount = 1\nroles = [\"dba\"]\n",
        ),
        ("V1__add.sql", "ALTER TABLE serve_t ADD COLUMN c2 INT;\n"),
    );
    let sock_s = l.sock_s();
    let o = run_as(
        REQ,
        &l.req,
        &l.bin,
        &[
            "run",
            "db",
            "--target",
            "prod",
            "--no-tui",
            "--service",
            &sock_s,
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}\n{}", text(&o), l.serve_log());
    let (run_dir, run) = l.the_run();
    wait_until("the supervisor to end", || {
        !cutover::supervisor::is_running(&run_dir)
    });
    // What an aborted gh-ost leaves: its ghost table.
    c.query_drop("CREATE TABLE serve_clean._serve_t_gho (id INT PRIMARY KEY)")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    async fn ghost_left(c: &mut mysql_async::Conn) -> bool {
        let q = "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'serve_clean' AND TABLE_NAME = '_serve_t_gho'";
        let n: Option<i64> = c.query_first(q).await.unwrap_or_else(|e| panic!("{e}"));
        n == Some(1)
    }

    // The service's own user is no person of the policy: refused, nothing dropped.
    let o = run_as(
        SVC,
        &l.state,
        &l.bin,
        &[
            "cleanup",
            &run,
            "--confirm",
            "serve_t",
            "--service",
            &sock_s,
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cleanup needs a DBA"),
        "{}",
        text(&o)
    );
    assert!(ghost_left(&mut c).await);

    // A DBA is shown the statement, types the table name, and it runs.
    let mut cleaner = as_user(
        DBA,
        &l.dba,
        &l.bin,
        &["cleanup", &run, "--service", &sock_s],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap_or_else(|e| panic!("{e}"));
    {
        use std::io::Write;
        let mut stdin = cleaner.stdin.take().unwrap_or_else(|| panic!("stdin"));
        stdin
            .write_all(b"serve_t\n")
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let o = cleaner.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(o.status.code(), Some(0), "{}\n{}", text(&o), l.serve_log());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("_serve_t_gho") && out.contains("DROP TABLE") && out.contains("Cleaned up"),
        "{out}"
    );
    assert!(!ghost_left(&mut c).await, "the ghost table is still there");
    assert!(
        l.show().contains("leftovers cleaned up by bob"),
        "{}",
        l.show()
    );

    // Forgetting: refused to a non-person, done for a DBA (not the requester).
    let o = run_as(
        SVC,
        &l.state,
        &l.bin,
        &["forget", &run, "--service", &sock_s],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("needs its requester or a DBA"),
        "{}",
        text(&o)
    );
    assert!(run_dir.exists());
    let o = run_as(DBA, &l.dba, &l.bin, &["forget", &run, "--service", &sock_s]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!run_dir.exists(), "the run directory is still there");
    assert!(
        l.show().contains(&format!("{run}  forgotten by {DBA}")),
        "{}",
        l.show()
    );
}

/// Through the service, a client names `uid` (the second DBA) after the
/// service named the client, and approves: the supervisor refuses the name
/// and hangs up; nothing is approved.
async fn forged_identity_is_refused(sock: &Path, run: &str, uid: u32) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let s = tokio::net::UnixStream::connect(sock)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (read, mut write) = s.into_split();
    let mut lines = BufReader::new(read).lines();
    write
        .write_all(format!("{{\"v\":1,\"op\":\"connect\",\"run\":\"{run}\"}}\n").as_bytes())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let ok = lines.next_line().await.ok().flatten().unwrap_or_default();
    assert!(ok.contains("\"ok\":true"), "{ok}");
    let state = state_of(sock, run).await;
    let digest = state["state"]["spec"]["binding"]["plan_digest"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    write
        .write_all(
            format!(
                "{{\"op\":\"on_behalf\",\"uid\":{uid}}}\n{{\"op\":\"command\",\"surface\":\"cli\",\"command\":{{\"command\":\"approve\",\"plan_digest\":\"{digest}\"}}}}\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Streamed events may come first; the answer to the forged name must be
    // an error, and no reply to the approval may follow.
    let mut refused = false;
    while let Ok(Some(l)) = lines.next_line().await {
        assert!(
            !l.contains("\"msg\":\"reply\""),
            "the forged approval was answered: {l}"
        );
        if l.contains("may not speak for another user") {
            refused = true;
        }
    }
    assert!(refused, "no refusal of the forged name");
}

/// The run's state message, through the service on a connection of its own.
async fn state_of(sock: &Path, run: &str) -> serde_json::Value {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let s = tokio::net::UnixStream::connect(sock)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (read, mut write) = s.into_split();
    let mut lines = BufReader::new(read).lines();
    write
        .write_all(
            format!(
                "{{\"v\":1,\"op\":\"connect\",\"run\":\"{run}\"}}\n{{\"op\":\"subscribe\",\"capacity\":16}}\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    loop {
        let l = lines
            .next_line()
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("hung up before the state"));
        let v: serde_json::Value = serde_json::from_str(&l).unwrap_or_else(|e| panic!("{e}: {l}"));
        if v["msg"] == "state" {
            return v;
        }
    }
}

/// A project in a temp dir, run as this user (no service).
fn cutover(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(args)
        .current_dir(dir)
        .env("CUTOVER_AUDIT_KEY", KEY)
        .env_remove("CUTOVER_SERVICE")
        .output()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn runs_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join(".cutover/runs"))
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn pg_changing_the_targets_executor_voids_the_approval() {
    let Some(dsn) = db_common::fresh_pg("serve_digest").await else {
        return;
    };
    let p = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = p.path();
    std::fs::create_dir(dir.join("db")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.join("db/V1__a.sql"),
        "CREATE TABLE serve_digest_a (id int);\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let config = |executor: &str| {
        // Nobody may request: the run stays planned, its plan recorded.
        let t = format!(
            "[[targets]]\nname = \"t\"\nengine = \"postgres\"\nenvironment = \"dev\"\nprimary = \"{dsn}\"\nexecutor = \"{executor}\"\n"
        );
        std::fs::write(dir.join("cutover.toml"), t).unwrap_or_else(|e| panic!("{e}"));
    };
    config("native");
    let o = cutover(dir, &["run", "db", "--target", "t", "--no-tui"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let first = runs_in(dir);
    assert_eq!(first.len(), 1);
    let plan_digest = |dir: &Path| {
        let o = cutover(dir, &["plan", "db", "--target", "t", "--format", "json"]);
        let v: serde_json::Value =
            serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
        v["plan_digest"].as_str().unwrap_or_default().to_string()
    };
    let native = plan_digest(dir);

    // The target's default executor changes after the plan was recorded:
    // the plan is another plan.
    config("gh-ost");
    let ghost = plan_digest(dir);
    assert_ne!(native, ghost, "the target's executor is not in the digest");
    // The recorded run's supervisor refuses by its digest…
    let o = cutover(
        dir,
        &["supervise", "--run-dir", &first[0].to_string_lossy()],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("plan digest"),
        "{}",
        text(&o)
    );
    // …and `cutover run` opens a new run for the new digest, with no
    // approvals of its own: whatever the old one had does not carry over.
    let o = cutover(dir, &["run", "db", "--target", "t", "--no-tui"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let now = runs_in(dir);
    assert_eq!(now.len(), 2, "{now:?}");
    let new = now
        .iter()
        .find(|r| **r != first[0])
        .and_then(|r| r.file_name())
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    assert!(new.ends_with(&ghost[..12]), "{new} vs {ghost}");
    assert!(!table_exists(&dsn, "serve_digest_a").await);
}
