//! Shared by the gh-ost and pt-osc end-to-end tests: a project directory with a
//! MySQL target (primary + replica from `scripts/test`), `cutover run --no-tui` in
//! the background, and a control-socket client to watch and command the run.
#![allow(dead_code)]

use cutover::policy::Surface;
use cutover::run::core::Reply;
use cutover::run::{Command, Event, Phase, RunState, Sample};
use cutover::supervisor::{Client, ServerMsg};
use mysql_async::prelude::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const KEY: &str = "an-audit-key-for-tests-0123456789";

/// The gh-ost binary `scripts/test` built or found, or `None` to skip (a failure
/// under `CUTOVER_TEST_REQUIRE_DB`, saying how to get one).
pub fn ghost() -> Option<String> {
    match std::env::var("CUTOVER_TEST_GHOST") {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            let how = "gh-ost 1.1.5 is needed: put it on PATH, or let scripts/test build it from \
                       ../shared/vendor/gh-ost/gh-ost-1.1.5.tar.gz (set CUTOVER_GHOST_ARCHIVE to \
                       another copy; building needs `apt-get install -y golang-go`)";
            assert!(
                std::env::var("CUTOVER_TEST_REQUIRE_DB").is_err(),
                "CUTOVER_TEST_GHOST is not set but CUTOVER_TEST_REQUIRE_DB is: {how}"
            );
            eprintln!("skipping: CUTOVER_TEST_GHOST not set (run through scripts/test; {how})");
            None
        }
    }
}

/// Whether pt-online-schema-change is installed (`scripts/test` installs
/// percona-toolkit); `false` skips, or fails under `CUTOVER_TEST_REQUIRE_DB`.
pub fn ptosc() -> bool {
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|d| d.join("pt-online-schema-change").is_file());
    if !found {
        let how = "install percona-toolkit (apt-get install -y percona-toolkit; scripts/test does it as root)";
        assert!(
            std::env::var("CUTOVER_TEST_REQUIRE_DB").is_err(),
            "pt-online-schema-change is not on PATH but CUTOVER_TEST_REQUIRE_DB is set: {how}"
        );
        eprintln!("skipping: pt-online-schema-change not on PATH ({how})");
    }
    found
}

pub fn os_user() -> String {
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub async fn conn(url: &str) -> mysql_async::Conn {
    mysql_async::Conn::new(mysql_async::Opts::from_url(url).unwrap_or_else(|e| panic!("{e}")))
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// A table of `rows` rows (id, v), rebuilt, and the replica caught up.
pub async fn big_table(primary: &str, replica: &str, table: &str, rows: u64) {
    let mut c = conn(primary).await;
    c.query_drop(format!(
        "DROP TABLE IF EXISTS {table}, _{table}_gho, _{table}_ghc, _{table}_del, _{table}_new, _{table}_old"
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    drop_old_tables(primary, table).await;
    c.query_drop(format!(
        "CREATE TABLE {table} (id int NOT NULL PRIMARY KEY, v varchar(40) NOT NULL)"
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    c.query_drop(format!(
        "INSERT INTO {table} SELECT seq, concat('value ', seq) FROM seq_1_to_{rows}"
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    catch_up(primary, replica).await;
}

pub async fn catch_up(primary: &str, replica: &str) {
    let mut c = conn(primary).await;
    let pos: Option<String> = c
        .query_first("SELECT @@gtid_binlog_pos")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut r = conn(replica).await;
    let w: Option<i64> = r
        .exec_first(
            "SELECT MASTER_GTID_WAIT(?, 120)",
            (pos.unwrap_or_default(),),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(w, Some(0), "replica did not catch up");
}

pub async fn count(url: &str, sql: &str) -> u64 {
    let mut c = conn(url).await;
    let n: Option<u64> = c
        .query_first(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    n.unwrap_or(0)
}

pub async fn table_exists(url: &str, table: &str) -> bool {
    count(
        url,
        &format!(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{table}'"
        ),
    )
    .await
        > 0
}

/// gh-ost's timestamped old tables of `table` (`_<t>_<YYYYMMDDhhmmss>_del`), oldest first.
pub async fn old_tables(url: &str, table: &str) -> Vec<String> {
    let mut c = conn(url).await;
    let names: Vec<String> = c
        .exec(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE ? ORDER BY TABLE_NAME",
            (format!("\\_{table}\\_%\\_del"),),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    names
        .into_iter()
        .filter(|n| {
            n.strip_prefix(&format!("_{table}_"))
                .and_then(|r| r.strip_suffix("_del"))
                .is_some_and(|ts| ts.len() == 14 && ts.chars().all(|c| c.is_ascii_digit()))
        })
        .collect()
}

/// Drops gh-ost's timestamped old tables of `table`.
pub async fn drop_old_tables(url: &str, table: &str) {
    let mut c = conn(url).await;
    for t in old_tables(url, table).await {
        c.query_drop(format!("DROP TABLE IF EXISTS `{t}`"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

pub async fn column_exists(url: &str, table: &str, column: &str) -> bool {
    count(
        url,
        &format!(
            "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{table}' AND COLUMN_NAME = '{column}'"
        ),
    )
    .await
        > 0
}

/// A project: migrations in `db/`, a dev MySQL target whose default executor is
/// `executor`, this OS user as a DBA.
pub fn project(
    primary: &str,
    replica: &str,
    executor: &str,
    files: &[(&str, &str)],
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    std::fs::create_dir_all(d.join("db")).unwrap_or_else(|e| panic!("{e}"));
    for (name, sql) in files {
        std::fs::write(d.join("db").join(name), sql).unwrap_or_else(|e| panic!("{e}"));
    }
    let cfg = format!(
        "[[targets]]\nname = \"dev\"\nengine = \"mysql\"\nenvironment = \"dev\"\nprimary = \"{primary}\"\nexecutor = \"{executor}\"\n\n[[targets.replicas]]\nname = \"r1\"\ndsn = \"{replica}\"\n\n[[policy.people]]\nid = \"me\"\nname = \"Me\"\nrole = \"dba\"\nlocal = [\"{}\"]\n",
        os_user()
    );
    std::fs::write(d.join("cutover.toml"), cfg).unwrap_or_else(|e| panic!("{e}"));
    dir
}

/// Runs `cutover ARGS` to completion.
pub fn cutover(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(args)
        .current_dir(dir)
        .env("CUTOVER_AUDIT_KEY", KEY)
        .env(
            "CUTOVER_GHOST",
            std::env::var("CUTOVER_TEST_GHOST").unwrap_or_default(),
        )
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Starts `cutover ARGS` in the background (stdout/stderr to files in `dir`).
pub fn spawn_cutover(dir: &Path, args: &[&str]) -> std::process::Child {
    let out = std::fs::File::create(dir.join("client.out")).unwrap_or_else(|e| panic!("{e}"));
    let err = std::fs::File::create(dir.join("client.err")).unwrap_or_else(|e| panic!("{e}"));
    std::process::Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(args)
        .current_dir(dir)
        .env("CUTOVER_AUDIT_KEY", KEY)
        .env(
            "CUTOVER_GHOST",
            std::env::var("CUTOVER_TEST_GHOST").unwrap_or_default(),
        )
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The run's directory (the only run of the project).
pub fn run_dir(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir.join(".cutover/runs"))
        .ok()
        .and_then(|mut rd| rd.next())
        .and_then(|e| e.ok())
        .map(|e| e.path())
        .unwrap_or_else(|| dir.join(".cutover/runs/none"))
}

/// Waits for the run's control socket.
pub async fn watch(dir: &Path) -> Watch {
    for _ in 0..600 {
        let sock = run_dir(dir).join("control.sock");
        if let Ok(mut c) = Client::connect(&sock).await {
            c.subscribe(100_000).await.unwrap_or_else(|e| panic!("{e}"));
            return Watch {
                sub: c,
                sock,
                events: Vec::new(),
                samples: Vec::new(),
                phase: Phase::Planned,
                first: None,
                dir: dir.to_path_buf(),
            };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = std::fs::read_to_string(dir.join("client.err")).unwrap_or_default();
    panic!("no supervisor socket under {}: {log}", dir.display());
}

/// A subscriber that keeps everything it saw.
pub struct Watch {
    sub: Client,
    pub sock: PathBuf,
    pub events: Vec<Event>,
    pub samples: Vec<Sample>,
    pub phase: Phase,
    /// The state at subscription.
    pub first: Option<RunState>,
    dir: PathBuf,
}

impl Watch {
    /// The driver of the current migration, as events or the first state say.
    pub fn executor(&self) -> Option<(String, cutover::exec::Capabilities)> {
        self.events
            .iter()
            .rev()
            .find_map(|e| match e {
                Event::ExecutorSelected {
                    executor,
                    capabilities,
                    ..
                } => Some((executor.clone(), *capabilities)),
                _ => None,
            })
            .or_else(|| {
                let s = self.first.as_ref()?;
                Some((s.executor.clone()?, s.capabilities?))
            })
    }

    /// Reads until `f` holds for an event or a sample (or the run ends: panic).
    pub async fn until(
        &mut self,
        what: &str,
        mut f: impl FnMut(&Watch, Option<&Event>, Option<&Sample>) -> bool,
    ) {
        let wait = async {
            loop {
                let m = self.sub.next().await.unwrap_or_else(|e| panic!("{e}"));
                match m {
                    Some(ServerMsg::State { state }) => {
                        self.phase = state.phase;
                        self.first = Some(*state);
                        if f(self, None, None) {
                            return;
                        }
                    }
                    Some(ServerMsg::Event { record, .. }) => {
                        self.events.push(record.event.clone());
                        self.phase = phase_after(self.phase, &record.event);
                        if f(self, Some(&record.event), None) {
                            return;
                        }
                    }
                    Some(ServerMsg::Sample { sample }) => {
                        self.samples.push((*sample).clone());
                        if f(self, None, Some(&sample)) {
                            return;
                        }
                    }
                    Some(ServerMsg::End) | None => panic!(
                        "the run ended while waiting for {what}; events: {:#?}\nstate: {:?}\nclient: {}",
                        self.events.iter().map(|e| e.name()).collect::<Vec<_>>(),
                        self.first.as_ref().map(|s| (s.phase, s.outcome.clone())),
                        std::fs::read_to_string(self.dir.join("client.out")).unwrap_or_default()
                    ),
                    Some(_) => {}
                }
            }
        };
        // Generous: a stuck run fails instead of hanging the suite.
        if tokio::time::timeout(Duration::from_secs(300), wait)
            .await
            .is_err()
        {
            panic!(
                "gave up waiting for {what}; events: {:?}",
                self.events.iter().map(|e| e.name()).collect::<Vec<_>>()
            );
        }
    }

    /// Waits for an event named `name`.
    pub async fn event(&mut self, name: &str) -> Event {
        let mut found = None;
        self.until(name, |_, e, _| match e {
            Some(e) if e.name() == name => {
                found = Some(e.clone());
                true
            }
            _ => false,
        })
        .await;
        found.unwrap_or_else(|| panic!("{name}"))
    }

    /// Sends a command as this OS user (a DBA in the project's policy).
    pub async fn command(&self, c: Command) -> Reply {
        let mut cl = Client::connect(&self.sock)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        cl.command(Surface::Cli, c, None, |_| {})
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Sends a command that must be accepted.
    pub async fn accepted(&self, c: Command) {
        let what = format!("{c:?}");
        let r = self.command(c).await;
        assert!(matches!(r, Reply::Accepted { .. }), "{what}: {r:?}");
    }
}

fn phase_after(p: Phase, e: &Event) -> Phase {
    match e {
        Event::Paused => Phase::Paused,
        Event::Resumed | Event::Unthrottled => Phase::Running,
        Event::Throttled { .. } => Phase::Throttled,
        Event::ReadyToCutOver => Phase::ReadyToCutOver,
        Event::CuttingOver => Phase::CuttingOver,
        Event::Succeeded => Phase::Succeeded,
        Event::Failed { .. } => Phase::Failed,
        Event::Aborted { .. } => Phase::Aborted,
        _ => p,
    }
}

/// Rows copied so far per the last progress sample.
pub fn copied(s: &Sample) -> Option<u64> {
    match s {
        Sample::Progress { status } => status.progress.as_ref().map(|p| p.rows_copied),
        _ => None,
    }
}

/// The pid of the supervisor of the run in `run_dir` (from /proc; a test helper).
pub fn supervisor_pid(run_dir: &Path) -> Option<u32> {
    // `cutover run` passes the run directory relative to the project (its cwd).
    let id = run_dir.file_name()?.to_string_lossy().to_string();
    let project = run_dir.parent()?.parent()?.parent()?.canonicalize().ok()?;
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_string_lossy().parse().ok()?;
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let cwd = std::fs::read_link(e.path().join("cwd")).ok()?;
        (cmd.contains(" supervise ") && cmd.contains(&id) && cwd == project).then_some(pid)
    })
}

/// kill -9 of the supervisor of the run in `rd` (its client `client` ends with
/// it); returns once the supervisor is gone.
pub async fn kill_supervisor(rd: &Path, mut client: std::process::Child) {
    let sup = supervisor_pid(rd).unwrap_or_else(|| panic!("no supervisor process"));
    let st = std::process::Command::new("kill")
        .args(["-9", &sup.to_string()])
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(st.success());
    let _ = tokio::task::spawn_blocking(move || client.wait()).await;
    while alive(sup) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The pid a tool run recorded in `dir` (`<stem>.pid`).
pub fn tool_pid(dir: &Path, stem: &str) -> u32 {
    std::fs::read_to_string(dir.join(format!("{stem}.pid")))
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok())
        .unwrap_or_else(|| panic!("no {stem}.pid in {}", dir.display()))
}

/// A run restarted after [`kill_supervisor`]: its client and watcher.
pub struct Restarted {
    pub client: std::process::Child,
    pub w: Watch,
}

/// The shared middle of the reattach tests: `cutover run --no-tui` in `d`
/// until the tool (`stem`: `gh-ost` or `pt-osc`) has copied some but less
/// than half of `rows`, kill -9 of the supervisor (the tool lives on), then
/// `cutover run` again: the new supervisor re-attaches to the same process
/// and the copy goes on from where it was (rows in `copy_table` do not drop).
/// Returns the restarted run and the tool's pid.
pub async fn kill_and_reattach(
    d: &Path,
    primary: &str,
    stem: &str,
    copy_table: &str,
    rows: u64,
) -> (Restarted, u32) {
    let client = spawn_cutover(d, &["run", "db", "--target", "dev", "--no-tui"]);
    let mut w = watch(d).await;
    w.until("copy progress", |_, _, s| {
        s.and_then(copied).is_some_and(|n| n > 0 && n < rows / 2)
    })
    .await;
    let rd = run_dir(d);
    let pid = tool_pid(&rd, stem);
    // kill -9 the supervisor: the tool lives on in its own process group.
    kill_supervisor(&rd, client).await;
    assert!(alive(pid), "{stem} died with the supervisor");
    let counted = format!("SELECT COUNT(*) FROM {copy_table}");
    let before = count(primary, &counted).await;

    // Restart: the supervisor recovers and re-attaches to the same tool.
    let client = spawn_cutover(d, &["run", "db", "--target", "dev", "--no-tui"]);
    let mut w = watch(d).await;
    // Recovered before this client subscribed, or while it watches.
    w.until("recovered", |w, e, _| {
        matches!(e, Some(Event::Recovered { .. }))
            || (e.is_none() && w.first.as_ref().is_some_and(|s| s.phase == Phase::Running))
    })
    .await;
    assert!(alive(pid), "{stem} was replaced");
    assert_eq!(tool_pid(&rd, stem), pid, "a second {stem} was started");
    // The copy goes on from where it was, reported through the re-attached monitor.
    w.until("progress after the restart", |_, _, s| {
        s.and_then(copied).is_some_and(|n| n > before)
    })
    .await;
    assert!(count(primary, &counted).await >= before);
    (Restarted { client, w }, pid)
}

/// Whether `pid` is a live process (zombies count as dead).
pub fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, r)| r.split_whitespace().next())
        .unwrap_or("X")
        .to_string();
    !matches!(state.as_str(), "Z" | "X")
}

/// `cutover run --no-tui` in `d` to its end, cutting over when the run waits
/// for it (a high-risk plan postpones gh-ost's cut-over); the client's exit
/// status and output.
pub async fn run_to_end(d: &Path, table: &str) -> (bool, String) {
    let mut client = spawn_cutover(d, &["run", "db", "--target", "dev", "--no-tui"]);
    let mut w = watch(d).await;
    let mut ready = false;
    w.until("the cut-over wait or the end", |w, e, _| {
        ready = matches!(e, Some(Event::ReadyToCutOver))
            || (e.is_none()
                && w.first
                    .as_ref()
                    .is_some_and(|s| s.phase == Phase::ReadyToCutOver));
        ready || matches!(e, Some(Event::Succeeded))
    })
    .await;
    if ready {
        w.accepted(Command::CutOver {
            table: Some(table.into()),
        })
        .await;
    }
    drop(w);
    let status = tokio::task::spawn_blocking(move || client.wait())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let out = std::fs::read_to_string(d.join("client.out")).unwrap_or_default();
    let err = std::fs::read_to_string(d.join("client.err")).unwrap_or_default();
    (status.success(), format!("{out}{err}"))
}

/// Waits for the client of a restarted run to exit: its status and output.
pub async fn client_end(d: &Path, mut client: std::process::Child) -> (bool, String) {
    let status = tokio::task::spawn_blocking(move || client.wait())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let out = std::fs::read_to_string(d.join("client.out")).unwrap_or_default();
    let err = std::fs::read_to_string(d.join("client.err")).unwrap_or_default();
    (status.success(), format!("{out}{err}"))
}

/// Rows of `flyway_schema_history` for `version` that succeeded.
pub async fn history_rows(url: &str, version: &str) -> u64 {
    if !table_exists(url, "flyway_schema_history").await {
        return 0;
    }
    count(
        url,
        &format!(
            "SELECT COUNT(*) FROM flyway_schema_history WHERE version = '{version}' AND success = 1"
        ),
    )
    .await
}
