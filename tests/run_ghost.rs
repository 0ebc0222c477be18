//! Real gh-ost 1.1.5 through `cutover run --no-tui` on the throwaway MariaDB
//! primary + replica, a 1,000,000-row table: the migration's directive picks
//! gh-ost over the target's native executor; progress follows the copy; pause,
//! resume, chunk size and induced replica lag reach the tool; the postponed
//! cut-over waits for the command; effects are checked in the database.

mod db_common;
mod osc_common;

use cutover::exec::ExecPhase;
use cutover::lag::LagSource;
use cutover::run::{Command, Event, Sample};
use mysql_async::prelude::*;
use osc_common::*;
use std::time::Duration;

const ROWS: u64 = 1_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ghost_run_is_controlled_from_cutover_and_cuts_over_on_command() {
    let Some(primary) = db_common::url("CUTOVER_TEST_MY_PRIMARY") else {
        return;
    };
    let Some(replica) = db_common::url("CUTOVER_TEST_MY_REPLICA") else {
        return;
    };
    if ghost().is_none() {
        return;
    }
    big_table(&primary, &replica, "ghbig", ROWS).await;
    let dir = project(
        &primary,
        &replica,
        "native",
        &[(
            "V9101__ghbig_c.sql",
            "-- cutover: executor=gh-ost chunk-size=100\nALTER TABLE ghbig ADD COLUMN c INT NULL;\n",
        )],
    );
    let d = dir.path();
    let mut client = spawn_cutover(
        d,
        &[
            "run",
            "db",
            "--target",
            "dev",
            "--no-tui",
            "--postpone-cut-over",
        ],
    );
    let mut w = watch(d).await;

    // The directive won over the target's `native`.
    w.until("the executor", |w, _, _| w.executor().is_some())
        .await;
    let (name, caps) = w.executor().unwrap_or_else(|| panic!("no executor"));
    assert_eq!(name, "gh-ost");
    assert!(caps.postpone_cut_over && caps.set_chunk_size);

    // Progress follows the copy.
    w.until("copy progress", |_, _, s| {
        s.and_then(copied).is_some_and(|n| n > 0 && n < ROWS)
    })
    .await;

    // Pause → gh-ost `throttle`: the ghost table stops growing.
    w.accepted(Command::Pause).await;
    w.event("paused").await;
    let gho = "SELECT COUNT(*) FROM _ghbig_gho";
    let a = count(&primary, gho).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let b = count(&primary, gho).await;
    assert_eq!(a, b, "rows were copied while paused");
    assert!(
        a < ROWS,
        "the copy finished before the pause could be checked"
    );

    // Chunk size reaches gh-ost (asked back over its socket).
    w.accepted(Command::SetChunkSize { rows: 200 }).await;
    let sock = run_dir(d).join("gh-ost.sock");
    let reply = cutover::exec::ghost::ask(&sock, "chunk-size=?")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(reply.trim().starts_with("200"), "{reply}");

    // Induced replica lag while paused would read "commanded by user": resume first.
    let mut r = conn(&replica).await;
    w.accepted(Command::Resume).await;
    w.event("resumed").await;
    r.query_drop("STOP SLAVE SQL_THREAD")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let th = w.event("throttled").await;
    r.query_drop("START SLAVE SQL_THREAD")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let Event::Throttled { reason } = &th else {
        unreachable!()
    };
    assert!(reason.contains("lag"), "throttle reason: {reason}");
    w.event("unthrottled").await;

    // The tool's lag reached the chart as executor lag.
    assert!(
        w.samples
            .iter()
            .any(|s| matches!(s, Sample::Lag { sample } if sample.source == LagSource::Executor)),
        "no executor lag sample"
    );

    // The copy completes; the cut-over waits for the command.
    w.event("ready_to_cut_over").await;
    assert!(
        !column_exists(&primary, "ghbig", "c").await,
        "cut over before the command"
    );
    assert_eq!(count(&primary, gho).await, ROWS);
    w.accepted(Command::CutOver {
        table: Some("ghbig".into()),
    })
    .await;
    w.event("succeeded").await;

    // Effect in the database: new column, every row, the old table kept, history.
    assert!(column_exists(&primary, "ghbig", "c").await);
    assert_eq!(count(&primary, "SELECT COUNT(*) FROM ghbig").await, ROWS);
    // Kept under a timestamped name, so it never blocks the next gh-ost run.
    assert_eq!(old_tables(&primary, "ghbig").await.len(), 1);
    assert!(!table_exists(&primary, "_ghbig_gho").await);
    assert_eq!(
        count(
            &primary,
            "SELECT COUNT(*) FROM flyway_schema_history WHERE version = '9101' AND success = 1"
        )
        .await,
        1
    );
    let progress_phases: Vec<ExecPhase> = w
        .samples
        .iter()
        .filter_map(|s| match s {
            Sample::Progress { status } => Some(status.phase.clone()),
            _ => None,
        })
        .collect();
    assert!(progress_phases.contains(&ExecPhase::Paused));

    let status = tokio::task::spawn_blocking(move || client.wait())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let out = std::fs::read_to_string(d.join("client.out")).unwrap_or_default();
    assert!(status.success(), "{out}");
    // The summary says where the backup is and how to drop it.
    assert!(
        out.contains("old table is kept as a rollback backup") && out.contains("--backups"),
        "{out}"
    );
    let (code, out, err) = cutover(d, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");

    let mut c = conn(&primary).await;
    c.query_drop("DROP TABLE IF EXISTS ghbig")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    drop_old_tables(&primary, "ghbig").await;
}
