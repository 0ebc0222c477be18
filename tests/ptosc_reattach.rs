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
    let (Restarted { mut client, mut w }, ptosc_pid) =
        kill_and_reattach(d, &primary, "pt-osc", "_ptre_new", ROWS).await;
    let rd = run_dir(d);

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
    assert!(!alive(ptosc_pid), "pt-osc still runs after the abort");

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
