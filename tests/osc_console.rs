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

/// Rows copied as the Progress pane shows them (`204,100/1,000,000 rows · …`).
fn copied_on_screen(s: &str) -> Option<u64> {
    s.lines().find_map(|l| {
        let (head, _) = l.split_once(" rows · ")?;
        let (copied, _) = head.rsplit_once('/')?;
        let digits = copied.rsplit(|c: char| !(c.is_ascii_digit() || c == ','));
        digits.into_iter().next()?.replace(',', "").parse().ok()
    })
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
            state_line(s).contains("state RUNNING") && copied_on_screen(s).is_some_and(|n| n > 0)
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

/// The same console against real pt-osc: `p` writes the pause file and pt-osc
/// sleeps on it (its log says so, `_<t>_new` stops growing); `a` sends SIGINT
/// and the summary lists the triggers and `_<t>_new` it left, which
/// `cutover cleanup` removes with cutover's replica list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_tmux_pauses_and_aborts_real_ptosc() {
    let Some(primary) = db_common::url("CUTOVER_TEST_MY_PRIMARY") else {
        return;
    };
    let Some(replica) = db_common::url("CUTOVER_TEST_MY_REPLICA") else {
        return;
    };
    if !ptosc() {
        return;
    }
    if Command::new("tmux").arg("-V").output().is_err() {
        assert!(
            std::env::var_os("CUTOVER_TEST_REQUIRE_DB").is_none(),
            "tmux is required (scripts/test installs it)"
        );
        return;
    }
    big_table(&primary, &replica, "conpt", ROWS).await;
    let dir = project(
        &primary,
        &replica,
        "pt-osc",
        &[(
            "V9602__conpt_c.sql",
            "-- cutover: chunk-size=200\nALTER TABLE conpt ADD COLUMN c INT NULL;\n",
        )],
    );
    let d = dir.path();
    let t = Tmux {
        server: format!("cutover-osc-pt-{}", std::process::id()),
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
        &format!("CUTOVER_AUDIT_KEY={KEY} {bin} run db --target dev; echo EXITED $?; sleep 60"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = t
        .wait("copy progress", |s| {
            state_line(s).contains("state RUNNING") && copied_on_screen(s).is_some_and(|n| n > 0)
        })
        .await;
    assert!(s.contains("Progress"), "{s}");
    let rd = run_dir(d);

    // `p` → the pause file; pt-osc sleeps on it before its next chunk.
    t.keys(&["p"]);
    let s = t
        .wait("paused", |s| state_line(s).contains("state PAUSED"))
        .await;
    eprintln!("paused screen:\n{s}");
    assert!(
        s.contains("pt-osc notices a pause before its next chunk"),
        "the console says when pt-osc notices: {s}"
    );
    assert!(rd.join("pt-osc.pause").exists());
    for _ in 0..600 {
        let log = std::fs::read_to_string(rd.join("pt-osc.out")).unwrap_or_default()
            + &std::fs::read_to_string(rd.join("pt-osc.err")).unwrap_or_default();
        if log.contains("because") && log.contains("pt-osc.pause exists") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let new = "SELECT COUNT(*) FROM _conpt_new";
    let a = count(&primary, new).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(a, count(&primary, new).await, "rows copied while paused");
    assert!(
        a > 0 && a < ROWS,
        "the pause was not seen mid-copy ({a} rows)"
    );

    // `a` → confirm → SIGINT: ABORTED, and the summary names what is left.
    t.keys(&["a"]);
    let s = t.wait("the dialog", |s| s.contains("Cancel")).await;
    if s.contains("type the table") || s.contains("table name") {
        t.keys(&["-l", "conpt"]);
    }
    t.keys(&["Tab"]);
    t.keys(&["Enter"]);
    let s = t
        .wait("aborted", |s| state_line(s).contains("state ABORTED"))
        .await;
    eprintln!("aborted screen:\n{s}");
    assert!(s.contains("_conpt_new"), "{s}");
    assert!(!column_exists(&primary, "conpt", "c").await);

    let run = rd
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    t.keys(&["q"]);
    t.wait("exit", |s| s.contains("EXITED")).await;
    let (code, out, err) = cutover(d, &["cleanup", &run, "--confirm", "conpt"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!table_exists(&primary, "_conpt_new").await);
    assert!(!table_exists(&primary, "cutover_ptosc_dsns").await);
    assert_eq!(
        count(&primary, "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = 'conpt'").await,
        0
    );

    let mut c = conn(&primary).await;
    c.query_drop("DROP TABLE IF EXISTS conpt")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn progress_rows_are_read_off_the_screen() {
    assert_eq!(
        copied_on_screen("│x││204,100/1,000,000 rows · — rows/s · ETA —  │"),
        Some(204_100)
    );
    assert_eq!(copied_on_screen("││0/1,000,001 rows · — rows/s"), Some(0));
    assert_eq!(copied_on_screen("no progress"), None);
}
