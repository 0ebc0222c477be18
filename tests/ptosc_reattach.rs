//! kill -9 of the supervisor while real pt-osc copies: a restarted supervisor
//! finds the live pt-osc by its pid file and log and re-attaches (same process,
//! the copy is not restarted), the audit trail verifies; an abort then leaves the
//! triggers and `_<t>_new`, which `cutover cleanup` removes.

mod db_common;
mod osc_common;

use cutover::run::{Command, Event};
use mysql_async::prelude::*;
use osc_common::*;

const ROWS: u64 = 1_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_supervisor_reattaches_to_live_ptosc_and_abort_leaves_cleanable_leftovers() {
    let Some(primary) = db_common::url("CUTOVER_TEST_MY_PRIMARY") else {
        return;
    };
    let Some(replica) = db_common::url("CUTOVER_TEST_MY_REPLICA") else {
        return;
    };
    if !ptosc() {
        return;
    }
    big_table(&primary, &replica, "ptre", ROWS).await;
    let dir = project(
        &primary,
        &replica,
        "pt-osc",
        &[(
            "V9203__ptre_c.sql",
            "-- cutover: chunk-size=200\nALTER TABLE ptre ADD COLUMN c INT NULL;\n",
        )],
    );
    let d = dir.path();
    let mut client = spawn_cutover(d, &["run", "db", "--target", "dev", "--no-tui"]);
    let mut w = watch(d).await;
    w.until("copy progress", |_, _, s| {
        s.and_then(copied).is_some_and(|n| n > 0 && n < ROWS / 2)
    })
    .await;
    let rd = run_dir(d);
    let tool_pid = std::fs::read_to_string(rd.join("pt-osc.pid"))
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok())
        .unwrap_or_else(|| panic!("no pt-osc.pid"));
    let sup = supervisor_pid(&rd).unwrap_or_else(|| panic!("no supervisor process"));

    // kill -9 the supervisor: pt-osc lives on in its own process group.
    let st = std::process::Command::new("kill")
        .args(["-9", &sup.to_string()])
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(st.success());
    let _ = tokio::task::spawn_blocking(move || client.wait()).await;
    while alive(sup) {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(alive(tool_pid), "pt-osc died with the supervisor");
    let before = count(&primary, "SELECT COUNT(*) FROM _ptre_new").await;

    // Restart: the supervisor recovers and re-attaches to the same pt-osc.
    let mut client = spawn_cutover(d, &["run", "db", "--target", "dev", "--no-tui"]);
    let mut w = watch(d).await;
    // Recovered before this client subscribed, or while it watches.
    w.until("recovered", |w, e, _| {
        matches!(e, Some(Event::Recovered { .. }))
            || (e.is_none()
                && w.first
                    .as_ref()
                    .is_some_and(|s| s.phase == cutover::run::Phase::Running))
    })
    .await;
    assert!(alive(tool_pid), "pt-osc was replaced");
    let pid_now = std::fs::read_to_string(rd.join("pt-osc.pid")).unwrap_or_default();
    assert_eq!(
        pid_now.trim(),
        tool_pid.to_string(),
        "a second pt-osc was started"
    );
    // The copy goes on from where it was, reported through the re-attached monitor.
    w.until("progress after the restart", |_, _, s| {
        s.and_then(copied).is_some_and(|n| n > before)
    })
    .await;
    assert!(count(&primary, "SELECT COUNT(*) FROM _ptre_new").await >= before);

    // Abort → SIGINT: it exits, leaving its triggers and new table.
    w.accepted(Command::Abort {
        reason: "test abort".into(),
        table: Some("ptre".into()),
    })
    .await;
    let ab = w.event("aborted").await;
    let Event::Aborted { leftovers, .. } = &ab else {
        unreachable!()
    };
    let names: Vec<&str> = leftovers.iter().map(|l| l.name.as_str()).collect();
    assert!(names.iter().any(|n| n.ends_with("._ptre_new")), "{names:?}");
    assert_eq!(
        names.iter().filter(|n| n.contains("pt_osc_")).count(),
        3,
        "{names:?}"
    );
    assert!(!column_exists(&primary, "ptre", "c").await);
    let _ = tokio::task::spawn_blocking(move || client.wait()).await;
    assert!(!alive(tool_pid), "pt-osc still runs after the abort");

    let run = rd
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let (code, out, err) = cutover(d, &["cleanup", &run, "--confirm", "ptre"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!table_exists(&primary, "_ptre_new").await);
    assert_eq!(
        count(&primary, "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = 'ptre'").await,
        0
    );
    let (code, out, err) = cutover(d, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");
    let (_, out, _) = cutover(d, &["audit", "show"]);
    assert!(out.contains("interrupted"), "{out}");

    let mut c = conn(&primary).await;
    c.query_drop("DROP TABLE IF EXISTS ptre")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}
