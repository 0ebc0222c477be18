//! Audit trail: tamper detection, torn lines, kill -9 during appends.

use chrono::{TimeZone, Utc};
use cutover::audit::{AuditKey, Entry, Problem, Trail, verify_bytes, verify_file};
use cutover::model::Risk;
use cutover::policy::approvals::Binding;
use cutover::policy::{Actor, Environment, Surface};
use cutover::run::{Event, EventRecord, RunSpec};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

fn key() -> AuditKey {
    AuditKey::new(b"test-key-0123456789abcdef".to_vec()).unwrap_or_else(|e| panic!("{e}"))
}

fn record(seq: u64, event: Event) -> Entry {
    Entry::Run {
        record: EventRecord {
            schema: 1,
            run: "r1".into(),
            seq,
            at: Utc
                .with_ymd_and_hms(2025, 1, 1, 0, 0, seq as u32 % 60)
                .single()
                .unwrap_or_default(),
            actor: Actor::local("d1"),
            dedup: None,
            event,
        },
    }
}

fn events(n: u64) -> Vec<Entry> {
    let spec = RunSpec {
        binding: Binding {
            plan_digest: "ab".repeat(32),
            target: "prod".into(),
        },
        environment: Environment::Prod,
        risk: Risk::High,
        versions: vec![],
        estimated_seconds: 1.5,
        tables: vec!["orders".into()],
        executor: "sim".into(),
    };
    (1..=n)
        .map(|i| {
            record(
                i,
                if i == 1 {
                    Event::Created { spec: spec.clone() }
                } else {
                    Event::Refused {
                        command: cutover::run::CommandKind::Start,
                        person: "x".into(),
                        surface: Surface::Console,
                        reason: format!("reason {i}"),
                    }
                },
            )
        })
        .collect()
}

fn trail(dir: &Path, n: u64) -> PathBuf {
    let p = dir.join("audit.jsonl");
    let (mut t, _) = Trail::open(&p, key()).unwrap_or_else(|e| panic!("{e}"));
    for e in events(n) {
        t.append(&e).unwrap_or_else(|e| panic!("{e}"));
    }
    p
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn bad_line(bytes: &[u8]) -> Option<u64> {
    match verify_bytes(&key(), bytes, None).1.problem {
        Some(Problem::BadRecord { line, .. }) => Some(line),
        _ => None,
    }
}

fn join(l: &[String]) -> Vec<u8> {
    (l.join("\n") + "\n").into_bytes()
}

#[test]
fn an_untouched_trail_verifies_and_publishes_its_head() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = trail(dir.path(), 6);
    let r = verify_file(&p, &key()).unwrap_or_else(|e| panic!("{e}"));
    assert!(r.ok(), "{:?}", r.problem);
    assert_eq!(r.records, 6);
    let (t, _) = Trail::open(&p, key()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.anchor().tag, r.head);
    let wrong = AuditKey::new(b"another-key-0123456789".to_vec()).unwrap_or_else(|e| panic!("{e}"));
    // A wrong key is named as such, not blamed on record 1.
    assert!(matches!(
        verify_file(&p, &wrong).map(|r| r.problem),
        Ok(Some(Problem::WrongKey))
    ));
    assert!(
        Problem::WrongKey
            .to_string()
            .contains("does not verify with this key")
    );
}

#[test]
fn edit_delete_reorder_and_forgery_name_the_first_bad_record() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = trail(dir.path(), 6);
    let l = lines(&p);

    let mut edited = l.clone();
    edited[2] = edited[2].replace("reason 3", "reason X");
    assert_eq!(bad_line(&join(&edited)), Some(3), "edit");

    let mut deleted = l.clone();
    deleted.remove(3);
    assert_eq!(bad_line(&join(&deleted)), Some(4), "delete");

    let mut reordered = l.clone();
    reordered.swap(1, 2);
    assert_eq!(bad_line(&join(&reordered)), Some(2), "reorder");

    // A forger without the key re-chains with a plain SHA-256.
    let head_tag = &l[5][8..72];
    let body = format!(
        "{{\"n\":7,\"prev\":\"{head_tag}\",\"entry\":{}}}",
        serde_json::to_string(&events(7)[6]).unwrap_or_default()
    );
    let fake = hex::encode(Sha256::digest(body.as_bytes()));
    let mut forged = l.clone();
    forged.push(format!("{{\"tag\":\"{fake}\",\"body\":{body}}}"));
    assert_eq!(bad_line(&join(&forged)), Some(7), "forged append");
    assert_eq!(bad_line(&join(&l)), None);
}

#[test]
fn truncation_is_caught_against_the_published_head() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = trail(dir.path(), 6);
    let l = lines(&p);
    std::fs::write(&p, join(&l[..4])).unwrap_or_else(|e| panic!("{e}"));
    let r = verify_file(&p, &key()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        r.problem,
        Some(Problem::Truncated {
            expected: 6,
            found: 4
        })
    );
    // Cut mid-record: a torn tail, named by its line.
    let mut bytes = join(&l);
    bytes.truncate(bytes.len() - 10);
    std::fs::write(&p, &bytes).unwrap_or_else(|e| panic!("{e}"));
    let r = verify_file(&p, &key()).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(r.problem, Some(Problem::TornTail { line: 6, .. })),
        "{:?}",
        r.problem
    );
}

#[test]
fn a_torn_last_line_is_reported_quarantined_and_recorded_on_open() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = trail(dir.path(), 4);
    // What a crash in the middle of write(2) leaves: half of the next line.
    let (line, _) = {
        let other = dir.path().join("other.jsonl");
        let (mut t, _) = Trail::open(&other, key()).unwrap_or_else(|e| panic!("{e}"));
        for e in events(5) {
            t.append(&e).unwrap_or_else(|e| panic!("{e}"));
        }
        (lines(&other)[4].clone(), ())
    };
    let mut bytes = std::fs::read(&p).unwrap_or_default();
    bytes.extend_from_slice(&line.as_bytes()[..line.len() / 2]);
    std::fs::write(&p, &bytes).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        verify_file(&p, &key()).map(|r| r.problem),
        Ok(Some(Problem::TornTail { line: 5, .. }))
    ));
    let (mut t, report) = Trail::open(&p, key()).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        report.torn,
        Some(Problem::TornTail { line: 5, .. })
    ));
    assert_eq!(report.records, 5, "4 kept + the repair note");
    t.append(&events(6)[5]).unwrap_or_else(|e| panic!("{e}"));
    let (entries, r) = cutover::audit::read_file(&p, &key()).unwrap_or_else(|e| panic!("{e}"));
    assert!(r.ok(), "{:?}", r.problem);
    assert!(matches!(
        entries[4].entry,
        Entry::TornTailRepaired { line: 5, .. }
    ));
    let quarantined: Vec<_> = std::fs::read_dir(dir.path())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".torn-"))
        .collect();
    assert_eq!(quarantined.len(), 1);
}

#[test]
fn two_writers_are_serialized_by_the_lock() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = dir.path().join("audit.jsonl");
    let ev = events(20);
    let threads: Vec<_> = (0..2usize)
        .map(|i| {
            let mine: Vec<Entry> = ev.iter().skip(i).step_by(2).cloned().collect();
            let p = p.clone();
            std::thread::spawn(move || {
                let (mut t, _) = Trail::open(&p, key()).unwrap_or_else(|e| panic!("{e}"));
                for e in mine {
                    t.append(&e).unwrap_or_else(|e| panic!("{e}"));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap_or_else(|_| panic!("writer panicked"));
    }
    let r = verify_file(&p, &key()).unwrap_or_else(|e| panic!("{e}"));
    assert!(r.ok(), "{:?}", r.problem);
    assert_eq!(r.records, 20);
}

/// A reader (verify, show, export, a supervisor's start) while another
/// process appends sees a whole trail, never a line half written (a false
/// "torn": the kernel extends a file page by page while a write copies in,
/// and CI caught `audit export` reading 38 bytes of a Slack record). Here the
/// writer is frozen mid-line, holding the trail's lock as an append does.
#[test]
fn a_reader_during_an_append_waits_for_the_whole_line() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = dir.path().join("audit.jsonl");
    let head = PathBuf::from(format!("{}.head", p.display()));
    let ev = events(2);
    let (mut t, _) = Trail::open(&p, key()).unwrap_or_else(|e| panic!("{e}"));
    t.append(&ev[0]).unwrap_or_else(|e| panic!("{e}"));
    let one = std::fs::read(&p).unwrap_or_else(|e| panic!("{e}"));
    let head_one = std::fs::read(&head).unwrap_or_else(|e| panic!("{e}"));
    t.append(&ev[1]).unwrap_or_else(|e| panic!("{e}"));
    drop(t);
    let line = std::fs::read(&p).unwrap_or_else(|e| panic!("{e}"))[one.len()..].to_vec();
    // Back to one record, then the second written in two halves under the lock.
    std::fs::write(&p, &one).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&head, &head_one).unwrap_or_else(|e| panic!("{e}"));
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&p)
        .unwrap_or_else(|e| panic!("{e}"));
    f.lock().unwrap_or_else(|e| panic!("{e}"));
    let half = line.len() / 2;
    f.write_all(&line[..half]).unwrap_or_else(|e| panic!("{e}"));
    let reader = {
        let p = p.clone();
        std::thread::spawn(move || verify_file(&p, &key()).unwrap_or_else(|e| panic!("{e}")))
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    f.write_all(&line[half..]).unwrap_or_else(|e| panic!("{e}"));
    f.unlock().unwrap_or_else(|e| panic!("{e}"));
    let r = reader.join().unwrap_or_else(|_| panic!("reader panicked"));
    assert!(r.ok(), "{:?}", r.problem);
    assert_eq!(r.records, 2);
}

#[test]
fn show_filters_by_run_and_export_renders_json_and_csv() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = trail(dir.path(), 3);
    let shown = cutover::audit::show_file(&p, &key(), Some("r1"))
        .map(|(s, _)| s)
        .unwrap_or_default();
    assert!(
        shown.contains("created: plan abababababab on prod (prod, high risk"),
        "{shown}"
    );
    assert!(
        shown.contains("refused start from x via console: reason 3"),
        "{shown}"
    );
    let none = cutover::audit::show_file(&p, &key(), Some("r9"))
        .map(|(s, _)| s)
        .unwrap_or_default();
    assert_eq!(none, "no matching records\n");
    let csv = cutover::audit::export_file(&p, &key(), cutover::audit::ExportFormat::Csv, None)
        .map(|(s, _)| s)
        .unwrap_or_default();
    assert_eq!(csv.lines().count(), 4);
    assert!(csv.starts_with("n,at,run,seq,actor,event,summary,tag\n"));
    let since = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 2).single();
    let json = cutover::audit::export_file(&p, &key(), cutover::audit::ExportFormat::Json, since)
        .map(|(s, _)| s)
        .unwrap_or_default();
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
    assert_eq!(rows.as_array().map(Vec::len), Some(2));
}

const CHILD_ENV: &str = "CUTOVER_TEST_APPEND_FOREVER";

/// Child mode: appends large records until killed.
#[test]
#[ignore = "child process of kill_9_during_appends_keeps_every_complete_record"]
fn child_append_forever() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (mut t, _) = Trail::open(Path::new(&path), key()).unwrap_or_else(|e| panic!("{e}"));
    let big = "x".repeat(256 * 1024);
    for i in 1.. {
        let e = record(
            i,
            Event::Interrupted {
                reason: big.clone(),
            },
        );
        t.append(&e).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn kill_9_during_appends_keeps_every_complete_record() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = dir.path().join("audit.jsonl");
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    let mut child = std::process::Command::new(exe)
        .args([
            "--exact",
            "child_append_forever",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_ENV, &p)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    // Wait (by progress, not by the clock) until several records are durable.
    let mut seen = 0;
    for _ in 0..10_000 {
        seen = verify_file(&p, &key()).map(|r| r.records).unwrap_or(0);
        if seen >= 5 {
            break;
        }
        std::thread::yield_now();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap_or_else(|e| panic!("{e}")); // SIGKILL
    let _ = child.wait();
    assert!(seen >= 5, "child made no progress");
    let before = verify_file(&p, &key()).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        before.problem.is_none() || matches!(before.problem, Some(Problem::TornTail { .. })),
        "{:?}",
        before.problem
    );
    let (_, report) = Trail::open(&p, key()).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.records >= before.records && report.records >= seen);
    assert_eq!(report.torn.is_some(), before.problem.is_some());
    let after = verify_file(&p, &key()).unwrap_or_else(|e| panic!("{e}"));
    assert!(after.ok(), "{:?}", after.problem);
}

/// `cutover audit verify|show|export` on a real trail, then on a tampered copy.
#[test]
fn audit_cli_verifies_shows_exports_and_names_the_tampered_record() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = trail(dir.path(), 4);
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, "test-key-0123456789abcdef\n").unwrap_or_else(|e| panic!("{e}"));
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cutover"))
            .arg("audit")
            .args(args)
            .args([
                "--trail",
                p.to_str().unwrap_or_default(),
                "--key-file",
                key_file.to_str().unwrap_or_default(),
            ])
            .env_remove("CUTOVER_AUDIT_KEY")
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let (code, out) = run(&["verify"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("4 record(s) verify"), "{out}");
    let (code, out) = run(&["show", "r1"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("reason 3"), "{out}");
    let (code, out) = run(&["export", "--format", "csv"]);
    assert_eq!(code, Some(0));
    assert!(out.lines().count() >= 5, "{out}");
    // Edit one byte of record 3's reason: verify exits 1 and names it.
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&p, text.replacen("reason 3", "reason 9", 1)).unwrap_or_else(|e| panic!("{e}"));
    let (code, out) = run(&["verify"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("record 3"), "{out}");
    // Readers exit 1 on a trail that does not verify; export writes nothing
    // unless asked for the verified prefix.
    let (code, out) = run(&["show"]);
    assert_eq!(code, Some(1), "{out}");
    let (code, out) = run(&["export", "--format", "csv"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.is_empty(), "{out}");
    let (code, out) = run(&["export", "--format", "csv", "--partial"]);
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(out.lines().count(), 3, "header + records 1-2: {out}");
    let (code, _) = run(&["head"]);
    assert_eq!(code, Some(1));
    // Sealed: the damaged line stays, the seal is recorded, appends may go on.
    let (code, out) = run(&[
        "repair",
        "--reason",
        "record 3 edited by hand; see ticket 42",
    ]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = run(&["verify"]);
    assert_eq!(code, Some(0), "{out}");
    // Records 1-2, then the seal covering the damaged lines 3-4.
    assert!(out.contains("3 record(s) verify"), "{out}");
    assert!(
        std::fs::read_to_string(&p)
            .unwrap_or_default()
            .contains("reason 9"),
        "the damaged record is kept"
    );
    let (code, out) = run(&["show"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("SEALED") && out.contains("ticket 42"), "{out}");
    let (code, head) = run(&["head"]);
    assert_eq!(code, Some(0), "{head}");
    let (code, out) = run(&["verify", "--expect-head", head.trim()]);
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn truncation_without_or_with_a_rewritten_head_file_is_caught_and_never_appended_to() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = trail(dir.path(), 6);
    let head_file = dir.path().join("audit.jsonl.head");
    let published = verify_file(&p, &key()).unwrap_or_else(|e| panic!("{e}"));
    let published = cutover::audit::Anchor {
        records: published.records,
        tag: published.head,
    };
    let l = lines(&p);
    std::fs::write(&p, join(&l[..4])).unwrap_or_else(|e| panic!("{e}"));

    // The head side file deleted: no longer "clean".
    std::fs::remove_file(&head_file).unwrap_or_else(|e| panic!("{e}"));
    let r = verify_file(&p, &key()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.problem, Some(Problem::HeadMissing { records: 4 }));

    // Rewritten to match the cut trail (no key needed for the old format): caught.
    let tag4 = &l[3][8..72];
    std::fs::write(&head_file, format!("4 {tag4}\n")).unwrap_or_else(|e| panic!("{e}"));
    let r = verify_file(&p, &key()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.problem, Some(Problem::HeadForged));
    std::fs::write(&head_file, format!("4 {tag4} {}\n", "0".repeat(64)))
        .unwrap_or_else(|e| panic!("{e}"));
    let r = verify_file(&p, &key()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.problem, Some(Problem::HeadForged));

    // Emptied entirely, head gone: not "0 records, clean".
    std::fs::write(&p, b"").unwrap_or_else(|e| panic!("{e}"));
    std::fs::remove_file(&head_file).unwrap_or_else(|e| panic!("{e}"));
    let r = verify_file(&p, &key()).unwrap_or_else(|e| panic!("{e}"));
    assert!(!r.ok(), "an emptied trail must not verify clean");

    // Nothing appends to a trail that does not verify, and the head file is
    // not rewritten by the attempt.
    std::fs::write(&p, join(&l[..4])).unwrap_or_else(|e| panic!("{e}"));
    assert!(Trail::open(&p, key()).is_err());
    assert!(!head_file.exists());
    assert_eq!(
        verify_file(&p, &key()).map(|r| r.problem).ok().flatten(),
        Some(Problem::HeadMissing { records: 4 })
    );

    // Against the head published in a run summary, the cut is named.
    let (entries, _) = cutover::audit::read_file(&p, &key()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        cutover::audit::check_expected_head(&entries, &published),
        Some(Problem::Truncated {
            expected: 6,
            found: 4
        })
    );

    // An explicit repair seals it; appends go on after the seal.
    let a = cutover::audit::repair(&p, key(), "records 5-6 lost with the old disk", "ops")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a.records, 5);
    let (mut t, _) = Trail::open(&p, key()).unwrap_or_else(|e| panic!("{e}"));
    t.append(&events(1)[0]).unwrap_or_else(|e| panic!("{e}"));
    let r = verify_file(&p, &key()).unwrap_or_else(|e| panic!("{e}"));
    assert!(r.ok(), "{:?}", r.problem);
    assert_eq!(r.records, 6);
    // The published head still shows what was lost: the seal does not hide it.
    let (entries, _) = cutover::audit::read_file(&p, &key()).unwrap_or_else(|e| panic!("{e}"));
    assert!(cutover::audit::check_expected_head(&entries, &published).is_some());
}
