//! What successful tool runs leave, against the real gh-ost 1.1.5: the old
//! table is kept as a rollback backup under a timestamped name, so a second
//! gh-ost run on the same table succeeds; `cutover cleanup` removes a stale
//! gh-ost socket, flag files and cutover's pt-osc replica list, keeps the
//! backups unless asked (`--backups`), and records what it did.

mod db_common;
mod osc_common;

use mysql_async::prelude::*;
use osc_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_ghost_runs_on_one_table_succeed_and_cleanup_takes_files_and_backups_on_request() {
    let Some(primary) = db_common::url("CUTOVER_TEST_MY_PRIMARY") else {
        return;
    };
    let Some(replica) = db_common::url("CUTOVER_TEST_MY_REPLICA") else {
        return;
    };
    if ghost().is_none() {
        return;
    }
    big_table(&primary, &replica, "lft", 20_000).await;
    let first = project(
        &primary,
        &replica,
        "gh-ost",
        &[(
            "V9501__lft_a.sql",
            "ALTER TABLE lft ADD COLUMN a INT NULL;\n",
        )],
    );
    let (ok, out) = run_to_end(first.path(), "lft").await;
    assert!(ok, "{out}");
    assert!(
        out.contains("old table is kept as a rollback backup"),
        "{out}"
    );
    assert_eq!(old_tables(&primary, "lft").await.len(), 1);

    // A second gh-ost run on the same table is not blocked by the backup.
    let second = project(
        &primary,
        &replica,
        "gh-ost",
        &[(
            "V9502__lft_b.sql",
            "ALTER TABLE lft ADD COLUMN b INT NULL;\n",
        )],
    );
    let d = second.path();
    let (ok, out) = run_to_end(d, "lft").await;
    assert!(ok, "{out}");
    assert!(
        out.contains("old tables kept as rollback backups by earlier runs"),
        "the new run names the earlier backup: {out}"
    );
    assert!(
        out.contains("earlier backups still kept"),
        "the summary tells this run's backup from the earlier one: {out}"
    );
    assert!(column_exists(&primary, "lft", "a").await);
    assert!(column_exists(&primary, "lft", "b").await);
    assert_eq!(old_tables(&primary, "lft").await.len(), 2);
    assert_eq!(count(&primary, "SELECT COUNT(*) FROM lft").await, 20_000);

    // What a crash leaves in the run directory: a socket nobody serves, the
    // flag files; and cutover's replica list for pt-osc in the schema.
    let rd = run_dir(d);
    let sock = rd.join("gh-ost.sock");
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap_or_else(|e| panic!("{e}")));
    assert!(
        sock.exists(),
        "a stale socket file stays after its listener"
    );
    std::fs::write(rd.join("gh-ost.postpone"), "").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(rd.join("pt-osc.pause"), "").unwrap_or_else(|e| panic!("{e}"));
    let mut c = conn(&primary).await;
    c.query_drop("CREATE TABLE IF NOT EXISTS cutover_ptosc_dsns (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, parent_id int NULL, dsn varchar(255) NOT NULL)")
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let run = rd
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let (code, out, err) = cutover(d, &["cleanup", &run, "--confirm", "lft"]);
    assert_eq!(code, 0, "{out}{err}");
    for what in [
        "gh-ost.sock",
        "gh-ost.postpone",
        "pt-osc.pause",
        "cutover_ptosc_dsns",
    ] {
        assert!(out.contains(what), "{what} not listed: {out}");
    }
    assert!(out.contains("Kept (rollback backups"), "{out}");
    assert!(!sock.exists());
    assert!(!rd.join("gh-ost.postpone").exists());
    assert!(!rd.join("pt-osc.pause").exists());
    assert!(!table_exists(&primary, "cutover_ptosc_dsns").await);
    assert_eq!(
        old_tables(&primary, "lft").await.len(),
        2,
        "backups are kept unless asked"
    );

    // --backups drops them, after the same typed confirmation.
    let (code, out, err) = cutover(d, &["cleanup", &run, "--backups", "--confirm", "no"]);
    assert_eq!(code, 3, "{out}{err}");
    assert_eq!(old_tables(&primary, "lft").await.len(), 2);
    let (code, out, err) = cutover(d, &["cleanup", &run, "--backups", "--confirm", "lft"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(old_tables(&primary, "lft").await.is_empty());
    let (code, out, err) = cutover(d, &["audit", "show"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("gh-ost.sock"),
        "the removal is recorded: {out}"
    );
    let (code, out, err) = cutover(d, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");

    c.query_drop("DROP TABLE IF EXISTS lft")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.query_drop("DELETE FROM flyway_schema_history WHERE version IN ('9501', '9502')")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}
