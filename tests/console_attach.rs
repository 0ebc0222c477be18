//! `cutover attach` to a run started headless, on the throwaway PostgreSQL
//! primary + replica, in a real terminal (tmux): the console shows the event
//! log from before it attached and the lag chart's history at once, not an
//! empty screen; `attach --no-tui` prints the earlier events first.

mod db_common;

use cutover::supervisor::{Client, ServerMsg, socket_path};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const KEY: &str = "an-audit-key-for-tests-0123456789";

fn os_user() -> String {
    let out = Command::new("id")
        .arg("-un")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

struct Tmux {
    server: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.server)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("tmux: {e}"))
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "att"]).stdout).into()
    }

    fn wait(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

/// The run directory once its supervisor's socket is up.
async fn live_run(d: &Path) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(rd) = std::fs::read_dir(d.join(".cutover/runs")) {
            for e in rd.flatten() {
                if Client::connect(&socket_path(&e.path())).await.is_ok() {
                    return e.path();
                }
            }
        }
        assert!(Instant::now() < deadline, "no supervisor came up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn attach_to_a_headless_run_shows_its_history() {
    let Some(dsn) = db_common::url("CUTOVER_TEST_PG_PRIMARY") else {
        return;
    };
    let Some(replica) = db_common::url("CUTOVER_TEST_PG_REPLICA") else {
        return;
    };
    if Command::new("tmux").arg("-V").output().is_err() {
        assert!(
            std::env::var_os("CUTOVER_TEST_REQUIRE_DB").is_none(),
            "tmux is required (scripts/test installs it)"
        );
        return;
    }
    let c = db_common::pg(&dsn).await;
    c.batch_execute("DROP TABLE IF EXISTS flyway_schema_history;")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    std::fs::create_dir_all(d.join("db")).unwrap_or_else(|e| panic!("{e}"));
    // Long enough to attach while it runs; a read, so nothing to clean up.
    std::fs::write(d.join("db/V1__wait.sql"), "SELECT pg_sleep(12);\n")
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        d.join("cutover.toml"),
        format!(
            "[[targets]]\nname = \"dev\"\nengine = \"postgres\"\nenvironment = \"dev\"\nprimary = \"{dsn}\"\nexecutor = \"native\"\nreplicas = [{{ name = \"pg-r1\", dsn = \"{replica}\" }}]\n\n[[policy.people]]\nid = \"me\"\nname = \"Me\"\nrole = \"dba\"\nlocal = [\"{}\"]\n",
            os_user()
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let bin = env!("CARGO_BIN_EXE_cutover");
    let out = std::fs::File::create(d.join("headless.out")).unwrap_or_else(|e| panic!("{e}"));
    let mut headless = Command::new(bin)
        .args(["run", "db", "--target", "dev", "--no-tui"])
        .current_dir(d)
        .env("CUTOVER_AUDIT_KEY", KEY)
        .stdout(out)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let run_dir = live_run(d).await;
    let run = run_dir
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    // Let the run start and the replica be read a few times before the console comes.
    let mut w = Client::connect(&socket_path(&run_dir))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    w.subscribe(4096).await.unwrap_or_else(|e| panic!("{e}"));
    let mut lag = 0;
    while lag < 3 {
        match w.next().await.unwrap_or_else(|e| panic!("{e}")) {
            Some(ServerMsg::Sample { sample }) => {
                if matches!(*sample, cutover::run::Sample::Lag { .. }) {
                    lag += 1;
                }
            }
            Some(_) => {}
            None => panic!("the run ended before the console attached"),
        }
    }
    drop(w);
    // A headless attach prints the events from before it attached too.
    let lines = Command::new(bin)
        .args(["attach", &run, "--no-tui", "--read-only"])
        .current_dir(d)
        .env("CUTOVER_AUDIT_KEY", KEY)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));

    let t = Tmux {
        server: format!("cutover-attach-{}", std::process::id()),
    };
    let dstr = d.display().to_string();
    let status = t.cmd(&[
        "new-session",
        "-d",
        "-s",
        "att",
        "-x",
        "140",
        "-y",
        "45",
        "-c",
        &dstr,
        &format!("{bin} attach {run}; echo EXITED $?; sleep 30"),
    ]);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    // Events from before the attach are in the log, the replica on the chart.
    let s = t.wait("the replayed log", |s| s.contains("started by"));
    assert!(
        s.contains("approval requested"),
        "the log has the run's early events:\n{s}"
    );
    assert!(s.contains("pg-r1"), "the lag chart has the replica:\n{s}");
    t.cmd(&["send-keys", "-t", "att", "q"]);
    t.wait("detach", |s| s.contains("EXITED"));
    let code = tokio::task::spawn_blocking(move || headless.wait())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let printed = std::fs::read_to_string(d.join("headless.out")).unwrap_or_default();
    // The history table this run recorded would be in the way of the next tests' V1.
    c.batch_execute("DROP TABLE IF EXISTS flyway_schema_history;")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(code.success(), "{printed}");
    assert!(printed.contains("SUCCEEDED"), "{printed}");
    let followed = tokio::task::spawn_blocking(move || lines.wait_with_output())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let followed = String::from_utf8_lossy(&followed.stdout).to_string();
    assert!(
        followed.contains("earlier:")
            && followed.contains("approval requested")
            && followed.contains("started by")
            && followed.contains("SUCCEEDED"),
        "attach --no-tui:\n{followed}"
    );
    // Each event once, though history and stream meet.
    assert_eq!(
        followed.matches("started by").count(),
        1,
        "attach --no-tui:\n{followed}"
    );
}
