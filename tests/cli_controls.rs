//! `cutover pause|resume|abort|cut-over RUN` against a live supervisor: the
//! same authorization and recording as the console (surface `cli`), the typed
//! table name on a high-risk abort, and a clear message once the supervisor
//! is gone.

use cutover::audit::{AuditKey, Entry, Trail, read_file};
use cutover::exec::sim::{SimConfig, SimExecutor};
use cutover::model::Risk;
use cutover::policy::approvals::Binding;
use cutover::policy::authz::Role;
use cutover::policy::config::PersonConfig;
use cutover::policy::{Actor, Clock, Directory, Environment, PolicyConfig, Surface, SystemClock};
use cutover::run::core::{CoreDeps, Reply, Request, RunCore};
use cutover::run::{Command, CommandEnvelope, Event, EventRecord, Phase, RunSpec};
use cutover::supervisor::{self, peer::current_user};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

fn key() -> AuditKey {
    AuditKey::new(b"cli-controls-test-key-0123".to_vec()).unwrap_or_else(|e| panic!("{e}"))
}

fn records(path: &Path) -> Vec<EventRecord> {
    read_file(path, &key())
        .map(|(e, _)| e)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| match e.entry {
            Entry::Run { record } => Some(record),
            _ => None,
        })
        .collect()
}

async fn cli(args: Vec<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cutover"))
            .args(&args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn controls_from_the_command_line_are_decided_and_recorded_like_the_console() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let runs = dir.path().join("runs");
    let run_dir = runs.join("r-c");
    std::fs::create_dir_all(&run_dir).unwrap_or_else(|e| panic!("{e}"));
    // A run directory as `cutover run` leaves it (commands that re-open a
    // run look for it); this supervisor runs in-process.
    std::fs::write(run_dir.join("run.json"), "{}").unwrap_or_else(|e| panic!("{e}"));
    let trail_path = dir.path().join("audit.jsonl");
    let (trail, _) = Trail::open(&trail_path, key()).unwrap_or_else(|e| panic!("{e}"));
    let mut policy = PolicyConfig {
        people: vec![
            PersonConfig {
                id: "me".into(),
                name: None,
                role: Role::Dba,
                local: vec![current_user()],
                slack: None,
            },
            PersonConfig {
                id: "own".into(),
                name: None,
                role: Role::Owner,
                local: vec![],
                slack: Some("U3".into()),
            },
        ],
        ..PolicyConfig::default()
    };
    // No approval rule: the run may start once requested.
    policy.approvals.rules.clear();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let exec = SimExecutor::new(
        SimConfig {
            rows_total: u64::MAX / 4,
            tick: Duration::from_millis(20),
            ..SimConfig::default()
        },
        clock.clone(),
    );
    let spec = RunSpec {
        binding: Binding {
            plan_digest: "c".repeat(64),
            target: "prod-main".into(),
        },
        environment: Environment::Dev,
        risk: Risk::High,
        versions: vec![],
        estimated_seconds: 60.0,
        tables: vec!["orders".into()],
        executor: "sim".into(),
    };
    let deps = CoreDeps {
        directory: Directory::new(&policy),
        policy,
        staging_successes: ["c".repeat(64)].into_iter().collect(),
        clock,
        run_dir: run_dir.clone(),
        postpone_cut_over: true,
        tick: Duration::from_millis(20),
    };
    let core =
        RunCore::create("r-c", spec, deps, trail, Box::new(exec)).unwrap_or_else(|e| panic!("{e}"));
    let (tx, rx) = mpsc::channel(16);
    let inner = tx.clone();
    let sup = tokio::spawn({
        let run_dir = run_dir.clone();
        async move { supervisor::supervise(&run_dir, core, (tx, rx), CancellationToken::new()).await }
    });
    // Requested by me, approved by the owner from Slack, started: running.
    let send = |actor: Actor, surface: Surface, cmd: Command| {
        let inner = inner.clone();
        async move {
            let (rtx, rrx) = oneshot::channel();
            let _ = inner
                .send(Request::Command(
                    CommandEnvelope::new(actor, surface, cmd),
                    rtx,
                ))
                .await;
            rrx.await.unwrap_or(Reply::Error {
                message: "no reply".into(),
            })
        }
    };
    let me = Actor::local(current_user());
    assert!(matches!(
        send(me.clone(), Surface::Console, Command::Request).await,
        Reply::Accepted { .. }
    ));
    let started = send(me.clone(), Surface::Console, Command::Start).await;
    let runs_arg = runs.display().to_string();
    let args = |v: &[&str]| -> Vec<String> {
        v.iter()
            .map(|s| s.to_string())
            .chain(["--runs".to_string(), runs_arg.clone()])
            .collect()
    };
    assert!(matches!(started, Reply::Accepted { .. }), "{started:?}");
    {
        let (code, out, err) = cli(args(&["pause", "r-c"])).await;
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("pause accepted"), "{out}");
        let mut paused = false;
        for _ in 0..500 {
            if records(&trail_path)
                .iter()
                .any(|r| matches!(r.event, Event::Paused))
            {
                paused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(paused, "the executor confirmed the CLI's pause");
        let (code, out, err) = cli(args(&["resume", "r-c"])).await;
        assert_eq!(code, 0, "{out}{err}");
    }
    // High risk: an abort without the typed table is refused and recorded.
    let (code, _, err) = cli(args(&["abort", "r-c", "--reason", "testing"])).await;
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("type the table name"), "{err}");
    let refused = records(&trail_path).into_iter().any(|r| {
        matches!(&r.event, Event::Refused { surface: Surface::Cli, reason, .. } if reason.contains("type the table name"))
    });
    assert!(refused, "the CLI's refusal is recorded with surface cli");
    let (code, out, err) = cli(args(&[
        "abort", "r-c", "--reason", "testing", "--table", "orders",
    ]))
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let state = sup
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(state.phase, Phase::Aborted);
    // The supervisor is gone: say so, and how to go on.
    let (code, _, err) = cli(args(&["pause", "r-c"])).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("supervisor is gone"), "{err}");
    assert!(err.contains("cutover run"), "{err}");
}

/// A command that lands as the run ends (its supervisor hangs up on it) says
/// how the run ended, not "control socket: Broken pipe". The supervisor here
/// is a scripted socket, so the race happens every time: the state says
/// running, the command's connection is dropped unanswered, and the stream
/// then brings the final event.
#[tokio::test]
async fn a_command_racing_the_end_of_the_run_reports_how_it_ended() {
    use cutover::audit::Anchor;
    use cutover::run::RunState;
    use cutover::supervisor::ServerMsg;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let runs = dir.path().join("runs");
    let run_dir = runs.join("r-race");
    std::fs::create_dir_all(&run_dir).unwrap_or_else(|e| panic!("{e}"));
    let sock = supervisor::socket_path(&run_dir);
    let listener = tokio::net::UnixListener::bind(&sock).unwrap_or_else(|e| panic!("{e}"));
    let spec = RunSpec {
        binding: Binding {
            plan_digest: "d".repeat(64),
            target: "prod-main".into(),
        },
        environment: Environment::Dev,
        risk: Risk::Low,
        versions: vec![],
        estimated_seconds: 1.0,
        tables: vec!["orders".into()],
        executor: "sim".into(),
    };
    let t0 = chrono::Utc::now();
    let recs = EventRecord::stamp(
        "r-race",
        0,
        vec![
            Event::Created { spec },
            Event::Started {
                person: "me".into(),
            },
        ],
        &Actor::System,
        None,
        t0,
    );
    let running = RunState::replay(&recs);
    assert_eq!(running.phase, Phase::Running);
    let end = EventRecord::stamp(
        "r-race",
        2,
        vec![Event::Succeeded],
        &Actor::System,
        None,
        t0,
    );
    let line = |m: &ServerMsg| format!("{}\n", serde_json::to_string(m).unwrap_or_default());
    let server = tokio::spawn(async move {
        // The watch: subscribe → the state (running).
        let (watch, _) = listener.accept().await.unwrap_or_else(|e| panic!("{e}"));
        let (r, mut w) = watch.into_split();
        let mut lines = BufReader::new(r).lines();
        let _ = lines.next_line().await;
        let _ = w
            .write_all(
                line(&ServerMsg::State {
                    state: Box::new(running),
                })
                .as_bytes(),
            )
            .await;
        // The command: read, then hang up unanswered (the run core has gone).
        let (cmd, _) = listener.accept().await.unwrap_or_else(|e| panic!("{e}"));
        let mut cmd = BufReader::new(cmd);
        let mut got = String::new();
        let _ = cmd.read_line(&mut got).await;
        drop(cmd);
        // The stream's last words: the final event, then the end.
        for m in [
            ServerMsg::Event {
                record: Box::new(end[0].clone()),
                anchor: Anchor {
                    records: 3,
                    tag: "00".into(),
                },
            },
            ServerMsg::End,
        ] {
            let _ = w.write_all(line(&m).as_bytes()).await;
        }
        got
    });
    let (code, out, err) = cli(vec![
        "abort".into(),
        "r-race".into(),
        "--reason".into(),
        "late".into(),
        "--runs".into(),
        runs.display().to_string(),
    ])
    .await;
    let sent = server.await.unwrap_or_else(|e| panic!("{e}"));
    assert!(sent.contains("abort"), "the command was sent: {sent}");
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        err.contains("abort not applied: the run had already ended: SUCCEEDED"),
        "{err}"
    );
    assert!(!err.to_lowercase().contains("broken pipe"), "{err}");
    assert!(!err.contains("hung up"), "{err}");
}

/// Once the run has ended and its supervisor left with it, a control says
/// the run ended (from the trail), not that the supervisor is gone.
#[tokio::test]
async fn a_command_after_the_run_ended_says_it_ended() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let runs = dir.path().join("runs");
    let run_dir = runs.join("r-done");
    std::fs::create_dir_all(&run_dir).unwrap_or_else(|e| panic!("{e}"));
    let trail_path = dir.path().join("audit.jsonl");
    let key_path = dir.path().join("audit.key");
    std::fs::write(&key_path, b"cli-controls-test-key-0123").unwrap_or_else(|e| panic!("{e}"));
    let (mut trail, _) = Trail::open(&trail_path, key()).unwrap_or_else(|e| panic!("{e}"));
    let spec = RunSpec {
        binding: Binding {
            plan_digest: "e".repeat(64),
            target: "prod-main".into(),
        },
        environment: Environment::Dev,
        risk: Risk::Low,
        versions: vec![],
        estimated_seconds: 1.0,
        tables: vec!["orders".into()],
        executor: "sim".into(),
    };
    for r in EventRecord::stamp(
        "r-done",
        0,
        vec![
            Event::Created { spec },
            Event::Started {
                person: "me".into(),
            },
            Event::Failed {
                error: "lost connection to the primary".into(),
                leftovers: vec![],
            },
        ],
        &Actor::System,
        None,
        chrono::Utc::now(),
    ) {
        trail
            .append(&Entry::Run { record: r })
            .unwrap_or_else(|e| panic!("{e}"));
    }
    drop(trail);
    let run_json = serde_json::json!({
        "run": "r-done",
        "target": "prod-main",
        "versions": [],
        "plan_digest": "e".repeat(64),
        "trail": trail_path,
        "key_file": key_path,
        "config": dir.path().join("cutover.toml"),
        "postpone_cut_over": false,
    });
    std::fs::write(run_dir.join("run.json"), run_json.to_string())
        .unwrap_or_else(|e| panic!("{e}"));
    let (code, out, err) = cli(vec![
        "pause".into(),
        "r-done".into(),
        "--runs".into(),
        runs.display().to_string(),
    ])
    .await;
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        err.contains(
            "pause not applied: the run had already ended: FAILED (lost connection to the primary)"
        ),
        "{err}"
    );
}
