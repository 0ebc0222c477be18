//! The console (not --no-tui) in a real terminal (tmux) against real gh-ost
//! 1.1.5 on a 1,000,000-row MariaDB table: progress shows; `p` and `r` reach
//! gh-ost (its own status says so, the ghost table stops and grows again);
//! replica lag induced with `STOP SLAVE SQL_THREAD` shows THROTTLED with
//! gh-ost's reason; the postponed cut-over waits for `c`, then the column is
//! there. Screen text is read with `capture-pane`.

mod db_common;
mod osc_common;

use mysql_async::prelude::*;
use osc_common::*;
use std::process::Command;
use std::time::{Duration, Instant};

const ROWS: u64 = 1_000_000;

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
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "osc"]).stdout).into()
    }

    fn keys(&self, keys: &[&str]) {
        let mut a = vec!["send-keys", "-t", "osc"];
        a.extend_from_slice(keys);
        self.cmd(&a);
    }

    /// Polls the screen until `ok` holds (a stuck console fails, not hangs).
    async fn wait(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}:\n{s}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

fn state_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_tmux_drives_real_ghost() {
    let Some(primary) = db_common::url("CUTOVER_TEST_MY_PRIMARY") else {
        return;
    };
    let Some(replica) = db_common::url("CUTOVER_TEST_MY_REPLICA") else {
        return;
    };
    let Some(ghost_bin) = ghost() else {
        return;
    };
    if Command::new("tmux").arg("-V").output().is_err() {
        assert!(
            std::env::var_os("CUTOVER_TEST_REQUIRE_DB").is_none(),
            "tmux is required (scripts/test installs it)"
        );
        return;
    }
    big_table(&primary, &replica, "conbig", ROWS).await;
    let dir = project(
        &primary,
        &replica,
        "native",
        &[(
            "V9601__conbig_c.sql",
            "-- cutover: executor=gh-ost chunk-size=100\nALTER TABLE conbig ADD COLUMN c INT NULL;\n",
        )],
    );
    let d = dir.path();
    let t = Tmux {
        server: format!("cutover-osc-{}", std::process::id()),
    };
    let bin = env!("CARGO_BIN_EXE_cutover");
    let out = t.cmd(&[
        "new-session",
        "-d",
        "-s",
        "osc",
        "-x",
        "140",
        "-y",
        "45",
        "-c",
        &d.display().to_string(),
        &format!(
            "CUTOVER_AUDIT_KEY={KEY} CUTOVER_GHOST={ghost_bin} {bin} run db --target dev --postpone-cut-over; echo EXITED $?; sleep 60"
        ),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Progress shows while gh-ost copies.
    let s = t
        .wait("copy progress", |s| {
            state_line(s).contains("state RUNNING") && s.contains("rows")
        })
        .await;
    assert!(s.contains("Progress"), "{s}");
    let sock = run_dir(d).join("gh-ost.sock");

    // `p` → gh-ost `throttle`: gh-ost says so, the ghost table stops growing.
    t.keys(&["p"]);
    let s = t
        .wait("paused", |s| state_line(s).contains("state PAUSED"))
        .await;
    assert!(s.contains("MIGRATION PAUSED"), "{s}");
    let st = cutover::exec::ghost::ask(&sock, "status")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(st.contains("commanded by user"), "{st}");
    let gho = "SELECT COUNT(*) FROM _conbig_gho";
    let a = count(&primary, gho).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(a, count(&primary, gho).await, "rows copied while paused");
    assert!(a < ROWS, "the copy ended before the pause could be seen");

    // `r` → `no-throttle`: the copy goes on.
    t.keys(&["r"]);
    t.wait("resumed", |s| state_line(s).contains("state RUNNING"))
        .await;
    let mut grew = false;
    for _ in 0..100 {
        if count(&primary, gho).await > a {
            grew = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(grew, "the copy did not resume");

    // Replica lag: THROTTLED with gh-ost's reason.
    let mut r = conn(&replica).await;
    r.query_drop("STOP SLAVE SQL_THREAD")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let s = t
        .wait("throttled", |s| state_line(s).contains("state THROTTLED"))
        .await;
    r.query_drop("START SLAVE SQL_THREAD")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(s.contains("replica-lag") || s.contains("lag"), "{s}");
    eprintln!("throttled screen:\n{s}");

    // The postponed cut-over waits for `c`.
    let s = t
        .wait("ready to cut over", |s| {
            state_line(s).contains("state READY TO CUT OVER")
        })
        .await;
    eprintln!("ready screen:\n{s}");
    assert!(!column_exists(&primary, "conbig", "c").await);
    let st = cutover::exec::ghost::ask(&sock, "status")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(st.contains("postponing cut-over"), "{st}");
    t.keys(&["c"]);
    let s = t.wait("the dialog", |s| s.contains("Cancel")).await;
    if s.contains("type the table") || s.contains("table name") {
        t.keys(&["-l", "conbig"]);
    }
    t.keys(&["Tab"]);
    t.keys(&["Enter"]);
    let s = t
        .wait("succeeded", |s| {
            state_line(s).contains("state SUCCEEDED") || s.contains("EXITED")
        })
        .await;
    eprintln!("end screen:\n{s}");
    assert!(column_exists(&primary, "conbig", "c").await);
    assert_eq!(count(&primary, "SELECT COUNT(*) FROM conbig").await, ROWS);

    let mut c = conn(&primary).await;
    c.query_drop("DROP TABLE IF EXISTS conbig")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    drop_old_tables(&primary, "conbig").await;
}
