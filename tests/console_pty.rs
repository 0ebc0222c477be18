//! End to end in a real pseudo-terminal (tmux): `cutover demo` reaches the
//! running state, `p` pauses it, `r` resumes it, `q` leaves and restores the
//! terminal. Screen text is read with `capture-pane`.

use std::process::Command;
use std::time::{Duration, Instant};

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
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "demo"]).stdout).into()
    }

    /// The pane's scrollback and screen: what the shell printed after the
    /// console left the alternate screen (longer than one screen).
    fn history(&self) -> String {
        String::from_utf8_lossy(
            &self
                .cmd(&["capture-pane", "-p", "-S", "-", "-t", "demo"])
                .stdout,
        )
        .into()
    }

    /// Waits until the screen satisfies `ok`; the last screen on timeout.
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

fn has_tmux() -> bool {
    Command::new("tmux").arg("-V").output().is_ok()
}

fn state_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}

#[test]
fn demo_pause_resume_detach_in_a_real_terminal() {
    if !has_tmux() {
        assert!(
            std::env::var_os("CUTOVER_TEST_REQUIRE_DB").is_none(),
            "tmux is required (scripts/test installs it)"
        );
        eprintln!("skipped: tmux not installed");
        return;
    }
    let t = Tmux {
        server: format!("cutover-test-{}", std::process::id()),
    };
    let bin = env!("CARGO_BIN_EXE_cutover");
    let out = t.cmd(&[
        "new-session",
        "-d",
        "-s",
        "demo",
        "-x",
        "120",
        "-y",
        "40",
        &format!("{bin} demo --speed 4; echo EXITED $?; sleep 30"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let s = t.wait("the running state", |s| {
        let l = state_line(s);
        l.contains("state RUNNING") || l.contains("state THROTTLED")
    });
    assert!(s.contains("Replica lag"), "{s}");
    assert!(s.contains("Progress"), "{s}");
    // A gh-ost-shaped run: labelled so, and its controls in the key hints.
    let s = t.wait("the executor's label", |s| {
        s.contains("sim (gh-ost-shaped)")
    });
    for hint in ["pause", "cut over", "chunk+", "max lag"] {
        assert!(s.contains(hint), "no {hint:?} in the key hints:\n{s}");
    }

    t.cmd(&["send-keys", "-t", "demo", "p"]);
    let s = t.wait("paused", |s| state_line(s).contains("state PAUSED"));
    assert!(s.contains("MIGRATION PAUSED"), "{s}");
    assert!(s.contains("paused (executor confirmed)"), "{s}");
    // The log says what gh-ost is told.
    assert!(s.contains("gh-ost-shaped): throttle"), "{s}");

    t.cmd(&["send-keys", "-t", "demo", "r"]);
    let s = t.wait("resumed", |s| {
        s.contains("resume requested by you") && !state_line(s).contains("PAUSED")
    });
    assert!(!s.contains("MIGRATION PAUSED"), "{s}");

    // `q` leaves the console; the terminal is restored (normal screen, shell output).
    t.cmd(&["send-keys", "-t", "demo", "q"]);
    let s = t.wait("detach", |s| s.contains("EXITED"));
    // The demo prints what Slack would have shown and where its files are
    // kept after the detach note: read the scrollback, not just the screen.
    let h = t.history();
    assert!(h.contains("detached:"), "{h}");
    assert!(s.contains("EXITED 0"), "{s}");
    assert!(!s.contains("┌ Event log"), "alternate screen left: {s}");
}
