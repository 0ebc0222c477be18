//! kill -9 of the supervisor while real gh-ost copies: a restarted supervisor
//! finds the live gh-ost through its socket and re-attaches (same process, the
//! copy is not restarted), the audit trail verifies; an abort then leaves the
//! ghost and changelog tables, which `cutover cleanup` removes.

mod db_common;
mod osc_common;

use cutover::run::{Command, Event};
use mysql_async::prelude::*;
use osc_common::*;

const ROWS: u64 = 1_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_supervisor_reattaches_to_live_ghost_and_abort_leaves_cleanable_tables() {
    let Some(primary) = db_common::url("CUTOVER_TEST_MY_PRIMARY") else {
        return;
    };
    let Some(replica) = db_common::url("CUTOVER_TEST_MY_REPLICA") else {
        return;
    };
    if ghost().is_none() {
        return;
    }
    big_table(&primary, &replica, "ghre", ROWS).await;
    let dir = project(
        &primary,
        &replica,
        "native",
        &[(
            "V9103__ghre_c.sql",
            "-- cutover: executor=gh-ost chunk-size=100\nALTER TABLE ghre ADD COLUMN c INT NULL;\n",
        )],
    );
    let d = dir.path();
    let (Restarted { mut client, mut w }, ghost_pid) =
        kill_and_reattach(d, &primary, "gh-ost", "_ghre_gho", ROWS).await;
    let rd = run_dir(d);

    // Abort → gh-ost `panic`: it exits, leaving its ghost and changelog tables.
    w.accepted(Command::Abort {
        reason: "test abort".into(),
        table: Some("ghre".into()),
    })
    .await;
    let ab = w.event("aborted").await;
    let Event::Aborted { leftovers, .. } = &ab else {
        unreachable!()
    };
    let names: Vec<&str> = leftovers.iter().map(|l| l.name.as_str()).collect();
    assert!(names.iter().any(|n| n.ends_with("._ghre_gho")), "{names:?}");
    assert!(names.iter().any(|n| n.ends_with("._ghre_ghc")), "{names:?}");
    assert!(!column_exists(&primary, "ghre", "c").await);
    let _ = tokio::task::spawn_blocking(move || client.wait()).await;
    assert!(!alive(ghost_pid), "gh-ost still runs after the abort");

    let run = rd
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let (code, out, err) = cutover(d, &["cleanup", &run, "--confirm", "ghre"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!table_exists(&primary, "_ghre_gho").await);
    assert!(!table_exists(&primary, "_ghre_ghc").await);
    let (code, out, err) = cutover(d, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");
    let (_, out, _) = cutover(d, &["audit", "show"]);
    assert!(out.contains("interrupted"), "{out}");

    // Slack: each message was posted once; the restarted relay edited the same ones.
    let keyf = d.join("audit.key");
    std::fs::write(&keyf, KEY).unwrap_or_else(|e| panic!("{e}"));
    let key = cutover::audit::AuditKey::load(Some(&keyf)).unwrap_or_else(|e| panic!("{e}"));
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(rd.join("run.json")).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
    let trail = d.join(spec["trail"].as_str().unwrap_or_default());
    let (entries, _) = cutover::audit::read_file(&trail, &key).unwrap_or_else(|e| panic!("{e}"));
    let mut posted: Vec<String> = entries
        .iter()
        .filter_map(|e| match &e.entry {
            cutover::audit::Entry::Run { record } => match &record.event {
                Event::MessagePosted { key, .. } => Some(key.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert!(!posted.is_empty(), "no Slack message recorded");
    let n = posted.len();
    posted.sort();
    posted.dedup();
    assert_eq!(posted.len(), n, "a message was posted twice: {posted:?}");
    // The transcript: the pre-flight and the progress message were each posted once
    // (thread notes such as the abort and the summary are separate replies).
    let transcript = std::fs::read_to_string(rd.join("slack-transcript.jsonl")).unwrap_or_default();
    let posts: Vec<&str> = transcript
        .lines()
        .filter(|l| l.contains("\"method\":\"chat.postMessage\""))
        .collect();
    let preflights = posts
        .iter()
        .filter(|l| l.contains("\"type\":\"header\""))
        .count();
    let progress = posts
        .iter()
        .filter(|l| l.contains("\"block_id\":\"ctl:"))
        .count();
    assert_eq!((preflights, progress), (1, 1), "{posts:#?}");

    let mut c = conn(&primary).await;
    c.query_drop("DROP TABLE IF EXISTS ghre")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}
