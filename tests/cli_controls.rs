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
