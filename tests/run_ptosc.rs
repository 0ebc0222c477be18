//! Real pt-online-schema-change through `cutover run --no-tui` on the throwaway
//! MariaDB primary + replica: replicas through the DSN table, progress, the pause
//! file, a stopped replica seen as throttling, chunk size refused while it runs,
//! abort by SIGINT leaving triggers and `_<t>_new` that the next run refuses to
//! start on, and `cutover cleanup` restoring the schema as before.

mod db_common;
mod osc_common;

use cutover::run::core::Reply;
use cutover::run::{Command, Event};
use mysql_async::prelude::*;
use osc_common::*;
use std::time::Duration;

const ROWS: u64 = 1_000_000;

async fn schema_of(url: &str) -> Vec<(String, String)> {
    let mut c = conn(url).await;
    c.query(
        "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'ptbig' ORDER BY ORDINAL_POSITION",
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

async fn triggers(url: &str) -> u64 {
    count(
        url,
        "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = 'ptbig'",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ptosc_run_pauses_throttles_aborts_and_cleanup_restores_the_schema() {
    let Some(primary) = db_common::url("CUTOVER_TEST_MY_PRIMARY") else {
        return;
    };
    let Some(replica) = db_common::url("CUTOVER_TEST_MY_REPLICA") else {
        return;
    };
    if !ptosc() {
        return;
    }
    big_table(&primary, &replica, "ptbig", ROWS).await;
    let before = schema_of(&primary).await;
    let dir = project(
        &primary,
        &replica,
        "pt-osc",
        &[(
            "V9201__ptbig_c.sql",
            "-- cutover: chunk-size=200\nALTER TABLE ptbig ADD COLUMN c INT NULL;\n",
        )],
    );
    let d = dir.path();
    let mut client = spawn_cutover(d, &["run", "db", "--target", "dev", "--no-tui"]);
    let mut w = watch(d).await;
    w.until("the executor", |w, _, _| w.executor().is_some())
        .await;
    let (name, caps) = w.executor().unwrap_or_else(|| panic!("no executor"));
    assert_eq!(name, "pt-osc");
    assert!(caps.pause && !caps.set_chunk_size && !caps.set_max_lag && !caps.postpone_cut_over);

    w.until("copy progress", |_, _, s| {
        s.and_then(copied).is_some_and(|n| n > 0)
    })
    .await;

    // Chunk size cannot change while pt-osc runs, and the refusal says so.
    match w.command(Command::SetChunkSize { rows: 500 }).await {
        Reply::Refused { reason } => assert!(reason.contains("pt-osc"), "{reason}"),
        r => panic!("chunk size accepted under pt-osc: {r:?}"),
    }

    // Pause → the pause file: `_ptbig_new` stops growing.
    w.accepted(Command::Pause).await;
    w.event("paused").await;
    assert!(run_dir(d).join("pt-osc.pause").exists());
    let new = "SELECT COUNT(*) FROM _ptbig_new";
    let a = count(&primary, new).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(a, count(&primary, new).await, "rows copied while paused");
    assert!(
        a < ROWS,
        "the copy finished before the pause could be checked"
    );

    // Resume removes the file; pt-osc goes on when its 60-second sleep ends.
    w.accepted(Command::Resume).await;
    assert!(!run_dir(d).join("pt-osc.pause").exists());
    w.event("resumed").await;
    assert!(count(&primary, new).await > a);

    // A stopped replica SQL thread: pt-osc waits, cutover shows it as throttled.
    let mut r = conn(&replica).await;
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
    assert!(reason.contains("replica"), "{reason}");
    w.event("unthrottled").await;

    // Abort → SIGINT: pt-osc keeps its triggers and `_ptbig_new`; they are reported.
    w.accepted(Command::Abort {
        reason: "test abort".into(),
        table: Some("ptbig".into()),
    })
    .await;
    let ab = w.event("aborted").await;
    let Event::Aborted { leftovers, .. } = &ab else {
        unreachable!()
    };
    let names: Vec<&str> = leftovers.iter().map(|l| l.name.as_str()).collect();
    assert!(
        names.iter().any(|n| n.ends_with("._ptbig_new")),
        "{names:?}"
    );
    assert_eq!(
        names.iter().filter(|n| n.contains("pt_osc_")).count(),
        3,
        "{names:?}"
    );
    assert_eq!(triggers(&primary).await, 3);
    assert!(table_exists(&primary, "_ptbig_new").await);
    assert_eq!(
        schema_of(&primary).await,
        before,
        "the original table changed"
    );
    let _ = tokio::task::spawn_blocking(move || client.wait()).await;

    // The next run on the table refuses to start on the leftovers.
    let next = project(
        &primary,
        &replica,
        "pt-osc",
        &[(
            "V9202__ptbig_d.sql",
            "ALTER TABLE ptbig ADD COLUMN d INT NULL;\n",
        )],
    );
    let (code, out, err) = cutover(next.path(), &["run", "db", "--target", "dev", "--no-tui"]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(out.contains("leftovers of an earlier"), "{out}{err}");
    assert!(out.contains("cutover cleanup"), "{out}{err}");
    assert_eq!(schema_of(&primary).await, before);

    // Cleanup: a wrong confirmation runs nothing; the table name does.
    let run = run_dir(d)
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let (code, out, err) = cutover(d, &["cleanup", &run, "--confirm", "yes"]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.contains("DROP TRIGGER IF EXISTS"), "{out}");
    assert_eq!(triggers(&primary).await, 3);
    let (code, out, err) = cutover(d, &["cleanup", &run, "--confirm", "ptbig"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(triggers(&primary).await, 0);
    assert!(!table_exists(&primary, "_ptbig_new").await);
    // cutover's own replica list for pt-osc goes too (no other pt-osc uses it).
    assert!(out.contains("cutover_ptosc_dsns"), "{out}");
    assert!(!table_exists(&primary, "cutover_ptosc_dsns").await);
    assert_eq!(schema_of(&primary).await, before);
    let (code, out, err) = cutover(d, &["audit", "show"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("leftovers cleaned up by me"), "{out}");
    let (code, out, err) = cutover(d, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");

    let mut c = conn(&primary).await;
    c.query_drop("DROP TABLE IF EXISTS ptbig")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}
