//! The supervisor process: control socket, attach, and kill -9 mid-run.

use chrono::{TimeZone, Utc};
use cutover::audit::{AuditKey, Entry, Trail, read_file};
use cutover::exec::sim::{SimConfig, SimExecutor};
use cutover::model::Risk;
use cutover::policy::approvals::Binding;
use cutover::policy::authz::Role;
use cutover::policy::config::PersonConfig;
use cutover::policy::{Actor, Clock, Directory, Environment, PolicyConfig, Surface, SystemClock};
use cutover::run::core::{CoreDeps, Reply, Request, RunCore, TokioClock};
use cutover::run::{Command, CommandEnvelope, Event, EventRecord, Phase, RunSpec, RunState};
use cutover::supervisor::{self, Client, ServerMsg, peer::current_user, socket_path};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

const CHILD_ENV: &str = "CUTOVER_TEST_SUPERVISOR_DIR";

fn key() -> AuditKey {
    AuditKey::new(b"supervisor-test-key-0123".to_vec()).unwrap_or_else(|e| panic!("{e}"))
}

fn deps(run_dir: &Path, clock: Arc<dyn Clock>, tick: Duration, postpone: bool) -> CoreDeps {
    let policy = PolicyConfig {
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
    CoreDeps {
        directory: Directory::new(&policy),
        policy,
        staging_successes: ["f".repeat(64)].into_iter().collect(),
        clock,
        run_dir: run_dir.to_path_buf(),
        postpone_cut_over: postpone,
        tick,
    }
}

fn spec() -> RunSpec {
    RunSpec {
        binding: Binding {
            plan_digest: "f".repeat(64),
            target: "prod-main".into(),
        },
        environment: Environment::Prod,
        risk: Risk::Medium,
        versions: vec![],
        estimated_seconds: 60.0,
        tables: vec!["orders".into()],
        executor: "sim".into(),
    }
}

async fn command(c: &mut Client, cmd: Command) -> Reply {
    c.command(Surface::Console, cmd, Some("/dev/pts/9".into()), |_| {})
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Child mode: a supervisor that starts a long simulated run and never ends.
#[tokio::test]
#[ignore = "child process of kill_9_mid_run_comes_back_interrupted_and_finishes_cleanly"]
async fn child_supervisor() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    let run_dir = dir.join("run");
    let _lock = supervisor::lock_run_dir(&run_dir).unwrap_or_else(|e| panic!("{e}"));
    let (trail, _) = Trail::open(&dir.join("audit.jsonl"), key()).unwrap_or_else(|e| panic!("{e}"));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let exec = SimExecutor::new(
        SimConfig {
            rows_total: u64::MAX / 4,
            tick: Duration::from_millis(20),
            ..SimConfig::default()
        },
        clock.clone(),
    );
    let core = RunCore::create(
        "r-9",
        spec(),
        deps(&run_dir, clock, Duration::from_millis(20), false),
        trail,
        Box::new(exec),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (tx, rx) = mpsc::channel(16);
    let slack = tx.clone();
    let sup = tokio::spawn(async move {
        supervisor::supervise(&run_dir, core, (tx, rx), CancellationToken::new()).await
    });
    let sock = socket_path(&dir.join("run"));
    while !sock.exists() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut c = Client::connect(&sock)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        command(&mut c, Command::Request).await,
        Reply::Accepted { .. }
    ));
    // The owner approves from Slack (in-process, as the relay would).
    let (rtx, rrx) = oneshot::channel();
    let approve = CommandEnvelope::new(
        Actor::slack("T1", "U3"),
        Surface::Slack,
        Command::Approve {
            plan_digest: "f".repeat(64),
        },
    );
    let _ = slack.send(Request::Command(approve, rtx)).await;
    assert!(matches!(rrx.await, Ok(Reply::Accepted { .. })));
    assert!(matches!(
        command(&mut c, Command::Start).await,
        Reply::Accepted { .. }
    ));
    let _ = sup.await;
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

#[tokio::test(start_paused = true)]
async fn kill_9_mid_run_comes_back_interrupted_and_finishes_cleanly() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let trail_path = dir.path().join("audit.jsonl");
    let run_dir = dir.path().join("run");
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    let mut child = std::process::Command::new(exe)
        .args(["--exact", "child_supervisor", "--ignored", "--nocapture"])
        .env(CHILD_ENV, dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    // Wait by progress: the run has started and the simulator has copied.
    let mut running = false;
    for _ in 0..20_000 {
        let recs = records(&trail_path);
        if recs
            .iter()
            .any(|r| matches!(r.event, Event::Started { .. }))
            && run_dir.join("sim-state.json").exists()
        {
            running = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(running, "the child supervisor never got the run going");
    // Attach from another client: owner-only socket, state streamed.
    let sock = socket_path(&run_dir);
    let mode = std::fs::metadata(&sock)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0);
    assert_eq!(mode, 0o600);
    assert!(supervisor::is_running(&run_dir));
    let mut c = Client::connect(&sock)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.subscribe(64).await.unwrap_or_else(|e| panic!("{e}"));
    match c.next().await {
        Ok(Some(ServerMsg::State { state })) => assert_eq!(state.phase, Phase::Running),
        other => panic!("{other:?}"),
    }
    drop(c);

    child.kill().unwrap_or_else(|e| panic!("{e}")); // SIGKILL
    let _ = child.wait();
    assert!(
        !supervisor::is_running(&run_dir),
        "the kernel released the lock"
    );

    // Restart: rebuilt from the trail, recorded as interrupted, executor asked.
    let _lock = supervisor::lock_run_dir(&run_dir).unwrap_or_else(|e| panic!("{e}"));
    let (trail, open) = Trail::open(&trail_path, key()).unwrap_or_else(|e| panic!("{e}"));
    let before = open.records;
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new(
        Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0)
            .single()
            .unwrap_or_default(),
    ));
    let exec = SimExecutor::new(
        SimConfig {
            rows_total: 20_000,
            ..SimConfig::default()
        },
        clock.clone(),
    );
    let core = RunCore::recover(
        "r-9",
        deps(&run_dir, clock, Duration::from_secs(1), false),
        trail,
        Box::new(exec),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(core.state().phase, Phase::Interrupted);
    assert_eq!(core.state().interrupted_from, Some(Phase::Running));
    let (tx, rx) = mpsc::channel(16);
    let sup = tokio::spawn({
        let run_dir = run_dir.clone();
        async move { supervisor::supervise(&run_dir, core, (tx, rx), CancellationToken::new()).await }
    });
    // The stale socket was replaced; a DBA resumes.
    let mut c = loop {
        if let Ok(c) = Client::connect(&sock).await {
            break c;
        }
        tokio::task::yield_now().await;
    };
    // A console attaching to the restarted supervisor gets the run's history
    // from the trail: the log from before the crash, not an empty screen.
    {
        let mut a = Client::connect(&sock)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let console = attach_console(&mut a).await;
        let log: Vec<&str> = console.log.iter().map(|l| l.text.as_str()).collect();
        assert!(
            log.iter().any(|l| l.starts_with("#1 ")),
            "the log starts at the run's first event: {log:#?}"
        );
        assert!(log.iter().any(|l| l.contains("started by")), "{log:#?}");
        assert!(
            log.iter().any(|l| l.to_lowercase().contains("interrupted")),
            "{log:#?}"
        );
        assert!(
            console.progress.is_some(),
            "the progress recorded before the crash is shown"
        );
        assert_eq!(console.state.phase, Phase::Interrupted);
    }
    let r = command(&mut c, Command::Start).await;
    assert!(matches!(r, Reply::Accepted { .. }), "{r:?}");
    c.subscribe(1024).await.unwrap_or_else(|e| panic!("{e}"));
    let mut ended = false;
    while let Ok(Some(m)) = c.next().await {
        if matches!(m, ServerMsg::End) {
            ended = true;
            break;
        }
    }
    assert!(ended);
    let state = sup
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(state.phase, Phase::Succeeded);
    let recs: Vec<EventRecord> = records(&trail_path)
        .into_iter()
        .filter(|r| r.run == "r-9")
        .collect();
    assert!(recs.len() as u64 > before.saturating_sub(1));
    assert!(
        recs.iter().any(
            |r| matches!(&r.event, Event::Interrupted { reason } if reason.contains("running"))
        )
    );
    assert_eq!(
        RunState::replay(&recs),
        state,
        "the trail folds to the supervisor's state"
    );
    assert!(!sock.exists(), "socket removed at the end");
}

/// Attaches as the console does and folds the state and history it gets.
async fn attach_console(c: &mut Client) -> cutover::tui::Console {
    c.attach(4096).await.unwrap_or_else(|e| panic!("{e}"));
    let mut console = cutover::tui::Console::default();
    loop {
        let m = c
            .next()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("hung up before the history"));
        console.apply(&m);
        if matches!(m, ServerMsg::History { .. }) {
            return console;
        }
    }
}

/// A console attaching mid-run (after detaching, or to a run started
/// headless) shows the event log and the lag chart's history, not an empty
/// screen: the supervisor sends what it published before the live stream.
#[tokio::test]
async fn a_console_attaching_mid_run_gets_the_log_and_the_lag_history() {
    use cutover::lag::sim::{SimReplica, SimReplicas};
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let run_dir = dir.path().join("run");
    let _lock = supervisor::lock_run_dir(&run_dir).unwrap_or_else(|e| panic!("{e}"));
    let (trail, _) =
        Trail::open(&dir.path().join("audit.jsonl"), key()).unwrap_or_else(|e| panic!("{e}"));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let exec = SimExecutor::new(
        SimConfig {
            rows_total: u64::MAX / 4,
            tick: Duration::from_millis(20),
            ..SimConfig::default()
        },
        clock.clone(),
    );
    let replicas = SimReplicas::new(
        vec![SimReplica {
            name: "replica-1".into(),
            peak_seconds: 0.5,
            period: 10,
            offset: 0,
            unknown_every: 0,
        }],
        clock.clone(),
    );
    let core = RunCore::create(
        "r-att",
        spec(),
        deps(&run_dir, clock, Duration::from_millis(20), true),
        trail,
        Box::new(exec),
    )
    .unwrap_or_else(|e| panic!("{e}"))
    .with_lag(Box::new(replicas));
    let (tx, rx) = mpsc::channel(16);
    let slack = tx.clone();
    let sup = tokio::spawn({
        let run_dir = run_dir.clone();
        async move { supervisor::supervise(&run_dir, core, (tx, rx), CancellationToken::new()).await }
    });
    let sock = socket_path(&run_dir);
    while !sock.exists() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut c = Client::connect(&sock)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        command(&mut c, Command::Request).await,
        Reply::Accepted { .. }
    ));
    let (rtx, rrx) = oneshot::channel();
    let approve = CommandEnvelope::new(
        Actor::slack("T1", "U3"),
        Surface::Slack,
        Command::Approve {
            plan_digest: "f".repeat(64),
        },
    );
    let _ = slack.send(Request::Command(approve, rtx)).await;
    assert!(matches!(rrx.await, Ok(Reply::Accepted { .. })));
    // A watcher that leaves before the next console comes: it sees the run
    // going (lag readings and progress) and detaches.
    {
        let mut w = Client::connect(&sock)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        w.subscribe(4096).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            command(&mut c, Command::Start).await,
            Reply::Accepted { .. }
        ));
        let (mut lag, mut progress) = (0, 0);
        while lag < 8 || progress < 3 {
            match w.next().await.unwrap_or_else(|e| panic!("{e}")) {
                Some(ServerMsg::Sample { sample }) => match *sample {
                    cutover::run::Sample::Lag { .. } => lag += 1,
                    cutover::run::Sample::Progress { .. } => progress += 1,
                },
                Some(_) => {}
                None => panic!("the run ended early"),
            }
        }
    }
    // The console comes (back): the log and the chart are there at once.
    let mut a = Client::connect(&sock)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let console = attach_console(&mut a).await;
    let log: Vec<&str> = console.log.iter().map(|l| l.text.as_str()).collect();
    for want in ["#1 ", "approval requested", "approved by", "started by"] {
        assert!(
            log.iter().any(|l| l.contains(want)),
            "missing {want:?} in the replayed log: {log:#?}"
        );
    }
    let chart = console.lag.get("replica-1").map(|h| h.len()).unwrap_or(0);
    assert!(
        chart >= 8,
        "the lag chart has its history: {chart} readings"
    );
    assert!(
        console.progress.is_some(),
        "the progress pane has the latest status"
    );
    assert!(
        console.state.phase.is_executing(),
        "{:?}",
        console.state.phase
    );
    // The live stream follows without a gap or a repeat.
    let next_seq = console.state.last_seq + 1;
    let r = command(
        &mut c,
        Command::Abort {
            reason: "test over".into(),
            table: Some("orders".into()),
        },
    )
    .await;
    assert!(matches!(r, Reply::Accepted { .. }), "{r:?}");
    let mut console = console;
    let mut seen = Vec::new();
    while let Ok(Some(m)) = a.next().await {
        if let ServerMsg::Event { record, .. } = &m {
            seen.push(record.seq);
        }
        console.apply(&m);
        if matches!(m, ServerMsg::End) {
            break;
        }
    }
    assert_eq!(seen.first(), Some(&next_seq), "{seen:?}");
    assert!(seen.windows(2).all(|w| w[1] == w[0] + 1), "{seen:?}");
    assert_eq!(console.state.phase, Phase::Aborted);
    let _ = sup.await;
}
