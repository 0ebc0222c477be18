//! A mixed run whose gh-ost migration had finished when the supervisor was
//! killed (kill -9) comes back and goes on with the next migration: never
//! gh-ost again on the done one, never stuck Interrupted. Real gh-ost 1.1.5,
//! real pt-osc, the throwaway MariaDB pair.

mod db_common;
mod osc_common;

use cutover::run::{Command, Event};
use osc_common::*;
use std::time::Duration;

async fn wait_dead(pid: u32, what: &str) {
    for _ in 0..1200 {
        if !alive(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} (pid {pid}) did not end");
}

/// gh-ost waits at its postponed cut-over; the supervisor is killed; the cut-over
/// happens while nobody watches (the postpone flag is removed, as gh-ost's own
/// docs suggest), so gh-ost ends with `# Done` and no history row is written.
/// `cutover run` again: migration 1 is recognised as done (its history row is
/// written now), and migration 2 (pt-osc) starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ghost_done_while_supervisor_was_down_then_the_run_goes_on_with_ptosc() {
    let Some(primary) = db_common::url("CUTOVER_TEST_MY_PRIMARY") else {
        return;
    };
    let Some(replica) = db_common::url("CUTOVER_TEST_MY_REPLICA") else {
        return;
    };
    if ghost().is_none() || !ptosc() {
        return;
    }
    big_table(&primary, &replica, "mxa", 20_000).await;
    big_table(&primary, &replica, "mxb", 20_000).await;
    let dir = project(
        &primary,
        &replica,
        "native",
        &[
            (
                "V9401__mxa_a.sql",
                "-- cutover: executor=gh-ost postpone-cut-over=true\nALTER TABLE mxa ADD COLUMN a INT NULL;\n",
            ),
            (
                "V9402__mxb_b.sql",
                "-- cutover: executor=pt-osc\nALTER TABLE mxb ADD COLUMN b INT NULL;\n",
            ),
        ],
    );
    let d = dir.path();
    let client = spawn_cutover(d, &["run", "db", "--target", "dev", "--no-tui"]);
    let mut w = watch(d).await;
    w.event("ready_to_cut_over").await;
    drop(w);
    let rd = run_dir(d);
    let ghost_pid = tool_pid(&rd, "gh-ost");
    kill_supervisor(&rd, client).await;
    assert!(alive(ghost_pid), "gh-ost died with the supervisor");

    // The cut-over happens with no supervisor: gh-ost ends by itself.
    std::fs::remove_file(rd.join("gh-ost.postpone")).unwrap_or_else(|e| panic!("{e}"));
    wait_dead(ghost_pid, "gh-ost").await;
    let out = std::fs::read_to_string(rd.join("gh-ost.out")).unwrap_or_default();
    assert!(out.lines().any(|l| l.trim() == "# Done"), "{out}");
    assert!(column_exists(&primary, "mxa", "a").await);
    assert_eq!(history_rows(&primary, "9401").await, 0, "nobody wrote it");

    // Restart: migration 1 is done, migration 2 runs, the run succeeds.
    let client = spawn_cutover(d, &["run", "db", "--target", "dev", "--no-tui"]);
    let (ok, out) = client_end(d, client).await;
    assert!(ok, "{out}");
    // What recovery found is in the trail (recorded before this client watched).
    let (_, shown, _) = cutover(d, &["audit", "show"]);
    assert!(
        shown.contains("migration 9401 (gh-ost) finished while the supervisor was down")
            && shown.contains("continues with migration 9402 (pt-osc)"),
        "{shown}"
    );
    assert_eq!(
        tool_pid(&rd, "gh-ost"),
        ghost_pid,
        "gh-ost was started again on the done migration"
    );
    assert!(
        rd.join("segment-1").join("pt-osc.pid").exists(),
        "pt-osc keeps its files in the second segment's directory"
    );
    assert!(column_exists(&primary, "mxa", "a").await);
    assert!(column_exists(&primary, "mxb", "b").await);
    assert_eq!(history_rows(&primary, "9401").await, 1);
    assert_eq!(history_rows(&primary, "9402").await, 1);
    assert_eq!(
        old_tables(&primary, "mxa").await.len(),
        1,
        "gh-ost's backup"
    );
    let (code, out, err) = cutover(d, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");

    let mut c = conn(&primary).await;
    use mysql_async::prelude::*;
    c.query_drop("DROP TABLE IF EXISTS mxa, mxb")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    drop_old_tables(&primary, "mxa").await;
    c.query_drop("DELETE FROM flyway_schema_history WHERE version IN ('9401', '9402')")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

/// gh-ost succeeded, then the native migration on the same table was running
/// when the supervisor was killed (the native executor dies with it): the
/// restart resumes the native migration, not gh-ost, and gh-ost's kept old
/// table does not stop the native one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_after_ghost_killed_mid_way_resumes_the_native_migration() {
    let Some(primary) = db_common::url("CUTOVER_TEST_MY_PRIMARY") else {
        return;
    };
    let Some(replica) = db_common::url("CUTOVER_TEST_MY_REPLICA") else {
        return;
    };
    if ghost().is_none() {
        return;
    }
    big_table(&primary, &replica, "mxc", 20_000).await;
    let dir = project(
        &primary,
        &replica,
        "native",
        &[
            (
                "V9411__mxc_a.sql",
                "-- cutover: executor=gh-ost\nALTER TABLE mxc ADD COLUMN a INT NULL;\n",
            ),
            (
                "V9412__mxc_b.sql",
                "SELECT SLEEP(8);\nALTER TABLE mxc ADD COLUMN b INT NULL;\n",
            ),
        ],
    );
    let d = dir.path();
    let client = spawn_cutover(d, &["run", "db", "--target", "dev", "--no-tui"]);
    let mut w = watch(d).await;
    let mut cut = false;
    w.until("the native migration", |_, e, _| match e {
        Some(Event::ReadyToCutOver) => {
            cut = true;
            true
        }
        Some(Event::ExecutorSelected { executor, .. }) => executor == "native",
        _ => false,
    })
    .await;
    if cut {
        w.accepted(Command::CutOver {
            table: Some("mxc".into()),
        })
        .await;
        w.until("the native migration", |_, e, _| {
            matches!(e, Some(Event::ExecutorSelected { executor, .. }) if executor == "native")
        })
        .await;
    }
    drop(w);
    let rd = run_dir(d);
    let run = rd
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let ghost_pid = tool_pid(&rd, "gh-ost");
    // Into the native migration's SLEEP (where it stands does not matter: the
    // restart must finish it either way).
    tokio::time::sleep(Duration::from_secs(2)).await;
    kill_supervisor(&rd, client).await;
    assert!(column_exists(&primary, "mxc", "a").await, "gh-ost cut over");
    assert_eq!(history_rows(&primary, "9411").await, 1);

    let client = spawn_cutover(d, &["run", "db", "--target", "dev", "--no-tui"]);
    let (ok, out) = client_end(d, client).await;
    assert!(ok, "{out}");
    // The same run went on (no second run of the rest of the plan).
    assert!(out.contains(&format!("continuing run {run}")), "{out}");
    let (_, shown, _) = cutover(d, &["audit", "show"]);
    eprintln!("{shown}");
    assert!(!alive(ghost_pid));
    assert_eq!(
        tool_pid(&rd, "gh-ost"),
        ghost_pid,
        "gh-ost was started again on the done migration"
    );
    assert!(column_exists(&primary, "mxc", "b").await);
    assert_eq!(history_rows(&primary, "9411").await, 1);
    assert_eq!(history_rows(&primary, "9412").await, 1);
    let (code, out, err) = cutover(d, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");

    let mut c = conn(&primary).await;
    use mysql_async::prelude::*;
    c.query_drop("DROP TABLE IF EXISTS mxc")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    drop_old_tables(&primary, "mxc").await;
    c.query_drop("DELETE FROM flyway_schema_history WHERE version IN ('9411', '9412')")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}
