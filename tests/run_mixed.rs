//! One run, two executors: a native migration, then a gh-ost one chosen by its
//! directive, through `cutover run --no-tui` on the throwaway MariaDB pair.

mod db_common;
mod osc_common;

use cutover::run::Event;
use mysql_async::prelude::*;
use osc_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_mixes_native_and_ghost_migrations_in_order() {
    let Some(primary) = db_common::url("CUTOVER_TEST_MY_PRIMARY") else {
        return;
    };
    let Some(replica) = db_common::url("CUTOVER_TEST_MY_REPLICA") else {
        return;
    };
    if ghost().is_none() {
        return;
    }
    big_table(&primary, &replica, "mixt", 20_000).await;
    let dir = project(
        &primary,
        &replica,
        "native",
        &[
            (
                "V9301__mixt_a.sql",
                "ALTER TABLE mixt ADD COLUMN a INT NULL;\n",
            ),
            (
                "V9302__mixt_b.sql",
                "-- cutover: executor=gh-ost\nALTER TABLE mixt ADD COLUMN b INT NULL;\n",
            ),
        ],
    );
    let d = dir.path();
    let mut client = spawn_cutover(
        d,
        &[
            "run", "db", "--target", "dev", "--no-tui", "--format", "json",
        ],
    );
    let mut w = watch(d).await;
    // The plan is high risk, so gh-ost waits for a DBA before its cut-over.
    w.event("ready_to_cut_over").await;
    assert!(
        column_exists(&primary, "mixt", "a").await,
        "the native migration ran first"
    );
    assert!(!column_exists(&primary, "mixt", "b").await);
    w.accepted(cutover::run::Command::CutOver {
        table: Some("mixt".into()),
    })
    .await;
    w.event("succeeded").await;
    let status = tokio::task::spawn_blocking(move || client.wait())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let out = std::fs::read_to_string(d.join("client.out")).unwrap_or_default();
    assert!(status.success(), "{out}");
    assert!(column_exists(&primary, "mixt", "a").await);
    assert!(column_exists(&primary, "mixt", "b").await);
    assert_eq!(count(&primary, "SELECT COUNT(*) FROM mixt").await, 20_000);
    assert_eq!(
        count(&primary, "SELECT COUNT(*) FROM flyway_schema_history WHERE version IN ('9301', '9302') AND success = 1").await,
        2
    );
    // The trail says which driver ran which migration, in order.
    let picked: Vec<(String, String)> = out
        .lines()
        .filter_map(|l| serde_json::from_str::<cutover::run::EventRecord>(l).ok())
        .filter_map(|r| match r.event {
            Event::ExecutorSelected {
                migration,
                executor,
                ..
            } => Some((migration, executor)),
            _ => None,
        })
        .collect();
    assert_eq!(
        picked,
        vec![
            ("9301".to_string(), "native".to_string()),
            ("9302".to_string(), "gh-ost".to_string())
        ],
        "{out}"
    );
    let mut c = conn(&primary).await;
    c.query_drop("DROP TABLE IF EXISTS mixt")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    drop_old_tables(&primary, "mixt").await;
    c.query_drop("DELETE FROM flyway_schema_history WHERE version IN ('9301', '9302')")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}
