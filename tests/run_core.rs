//! The run loop end to end on a paused tokio clock: simulated executor and
//! replicas, durable-before-publish, a slow subscriber, and the trail folding
//! back to the final state.

use chrono::{TimeZone, Utc};
use cutover::audit::{AuditKey, Entry, Trail, read_file};
use cutover::exec::sim::{SimConfig, SimExecutor};
use cutover::lag::sim::{SimReplica, SimReplicas};
use cutover::model::Risk;
use cutover::policy::approvals::Binding;
use cutover::policy::authz::Role;
use cutover::policy::config::PersonConfig;
use cutover::policy::{Actor, Clock, Directory, Environment, PolicyConfig, Surface};
use cutover::run::core::{CoreDeps, Reply, Request, RunCore, TokioClock};
use cutover::run::fanout::{Published, Subscription};
use cutover::run::{Command, CommandEnvelope, Event, EventRecord, Phase, RunSpec, RunState};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

fn key() -> AuditKey {
    AuditKey::new(b"run-core-test-key-0123".to_vec()).unwrap_or_else(|e| panic!("{e}"))
}

fn policy() -> PolicyConfig {
    let p = |id: &str, role, slack: &str| PersonConfig {
        id: id.into(),
        name: None,
        role,
        local: vec![id.into()],
        slack: Some(slack.into()),
    };
    PolicyConfig {
        people: vec![p("dba1", Role::Dba, "U1"), p("own", Role::Owner, "U3")],
        ..PolicyConfig::default()
    }
}

fn spec() -> RunSpec {
    RunSpec {
        binding: Binding {
            plan_digest: "e".repeat(64),
            target: "prod-main".into(),
        },
        environment: Environment::Prod,
        risk: Risk::Medium,
        versions: vec![],
        estimated_seconds: 30.0,
        tables: vec!["orders".into()],
        executor: "sim".into(),
    }
}

fn deps(dir: &Path, clock: Arc<dyn Clock>) -> CoreDeps {
    let policy = policy();
    CoreDeps {
        directory: Directory::new(&policy),
        policy,
        staging_successes: ["e".repeat(64)].into_iter().collect(),
        clock,
        run_dir: dir.to_path_buf(),
        postpone_cut_over: true,
        tick: Duration::from_secs(1),
    }
}

async fn send(tx: &mpsc::Sender<Request>, actor: Actor, surface: Surface, cmd: Command) -> Reply {
    let (rtx, rrx) = oneshot::channel();
    let env = CommandEnvelope::new(actor, surface, cmd);
    if tx.send(Request::Command(env, rtx)).await.is_err() {
        return Reply::Error {
            message: "core gone".into(),
        };
    }
    rrx.await.unwrap_or(Reply::Error {
        message: "no reply".into(),
    })
}

async fn subscribe(tx: &mpsc::Sender<Request>, capacity: usize) -> Subscription {
    let (rtx, rrx) = oneshot::channel();
    let _ = tx
        .send(Request::Subscribe {
            capacity,
            reply: rtx,
        })
        .await;
    rrx.await.unwrap_or_else(|_| panic!("no subscription")).1
}

/// Waits for an event, checking that each one is already in the trail on disk.
async fn until(sub: &mut Subscription, trail: &Path, want: fn(&Event) -> bool) -> EventRecord {
    loop {
        match sub.recv().await {
            Some(Published::Event { record, anchor }) => {
                let (entries, report) = read_file(trail, &key()).unwrap_or_else(|e| panic!("{e}"));
                assert!(report.ok());
                assert!(report.records >= anchor.records, "published before durable");
                assert!(
                    entries
                        .iter()
                        .any(|e| matches!(&e.entry, Entry::Run { record: r } if r == &record))
                );
                if want(&record.event) {
                    return record;
                }
            }
            Some(_) => {}
            None => panic!("run ended before the awaited event"),
        }
    }
}

fn folded(trail: &Path, run: &str) -> RunState {
    let (entries, _) = read_file(trail, &key()).unwrap_or_else(|e| panic!("{e}"));
    let recs: Vec<EventRecord> = entries
        .into_iter()
        .filter_map(|e| match e.entry {
            Entry::Run { record } if record.run == run => Some(record),
            _ => None,
        })
        .collect();
    RunState::replay(&recs)
}

#[tokio::test(start_paused = true)]
async fn a_run_from_request_to_cut_over_with_a_slow_subscriber() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("audit.jsonl");
    let (trail, _) = Trail::open(&path, key()).unwrap_or_else(|e| panic!("{e}"));
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new(
        Utc.with_ymd_and_hms(2025, 3, 3, 12, 0, 0)
            .single()
            .unwrap_or_default(),
    ));
    let exec = SimExecutor::new(
        SimConfig {
            rows_total: 60_000,
            ..SimConfig::default()
        },
        clock.clone(),
    );
    let replicas = SimReplicas::new(
        vec![SimReplica {
            name: "replica-1".into(),
            peak_seconds: 3.0,
            period: 8,
            offset: 0,
            unknown_every: 0,
        }],
        clock.clone(),
    );
    let core = RunCore::create(
        "r-1",
        spec(),
        deps(dir.path(), clock.clone()),
        trail,
        Box::new(exec),
    )
    .unwrap_or_else(|e| panic!("{e}"))
    .with_lag(Box::new(replicas));
    let (tx, rx) = mpsc::channel(16);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(core.run(rx, shutdown.clone()));
    let mut fast = subscribe(&tx, 10_000).await;
    let mut slow = subscribe(&tx, 3).await;

    let dba = Actor::local("dba1");
    assert!(matches!(
        send(&tx, dba.clone(), Surface::Console, Command::Request).await,
        Reply::Accepted { .. }
    ));
    // The same person from Slack cannot approve their own request.
    let r = send(
        &tx,
        Actor::slack("T1", "U1"),
        Surface::Slack,
        Command::Approve {
            plan_digest: "e".repeat(64),
        },
    )
    .await;
    assert!(
        matches!(&r, Reply::Refused { reason } if reason.contains("self-approval")),
        "{r:?}"
    );
    let r = send(
        &tx,
        Actor::slack("T1", "U3"),
        Surface::Slack,
        Command::Approve {
            plan_digest: "e".repeat(64),
        },
    )
    .await;
    assert!(matches!(r, Reply::Accepted { .. }), "{r:?}");
    assert!(matches!(
        send(&tx, dba.clone(), Surface::Console, Command::Start).await,
        Reply::Accepted { .. }
    ));
    until(&mut fast, &path, |e| matches!(e, Event::Started { .. })).await;
    // Lag above 1.5 s throttles the copy (the core throttles the simulator).
    until(&mut fast, &path, |e| matches!(e, Event::Throttled { .. })).await;
    until(&mut fast, &path, |e| matches!(e, Event::Unthrottled)).await;
    // Pause counts once the executor confirms it.
    let r = send(&tx, Actor::local("own"), Surface::Console, Command::Pause).await;
    assert!(matches!(r, Reply::Accepted { .. }), "{r:?}");
    until(&mut fast, &path, |e| matches!(e, Event::Paused)).await;
    assert!(matches!(
        send(&tx, Actor::local("own"), Surface::Console, Command::Resume).await,
        Reply::Accepted { .. }
    ));
    until(&mut fast, &path, |e| matches!(e, Event::ReadyToCutOver)).await;
    // The core keeps polling replicas while the cut-over waits (that can take hours).
    let polled = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match fast.recv().await {
                Some(Published::Sample(cutover::run::Sample::Lag { .. })) => return true,
                Some(_) => {}
                None => return false,
            }
        }
    })
    .await;
    assert_eq!(
        polled.ok(),
        Some(true),
        "no lag poll while ready to cut over"
    );
    let r = send(
        &tx,
        Actor::local("own"),
        Surface::Console,
        Command::CutOver { table: None },
    )
    .await;
    assert!(matches!(r, Reply::Refused { .. }), "owners cannot cut over");
    assert!(matches!(
        send(
            &tx,
            dba.clone(),
            Surface::Console,
            Command::CutOver { table: None }
        )
        .await,
        Reply::Accepted { .. }
    ));
    until(&mut fast, &path, |e| matches!(e, Event::Succeeded)).await;
    let state = task
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(state.phase, Phase::Succeeded);

    // The slow subscriber lost old items but was told, and got the final event.
    let mut items = Vec::new();
    while let Some(i) = slow.recv().await {
        items.push(i);
    }
    assert!(items.iter().any(|i| matches!(i, Published::Gap { .. })));
    assert!(matches!(
        items.iter().rev().find_map(|i| match i {
            Published::Event { record, .. } => Some(&record.event),
            _ => None,
        }),
        Some(Event::Succeeded)
    ));
    assert!(items.len() <= 5, "bounded queue: {}", items.len());
    // The trail folds to the same state.
    assert_eq!(folded(&path, "r-1"), state);
    let sampled = read_file(&path, &key()).map(|(e, _)| e).unwrap_or_default().iter().filter(|e| matches!(&e.entry, Entry::Run { record } if matches!(record.event, Event::Sampled { .. }))).count();
    assert!(sampled > 0, "samples recorded at a bounded rate");
}

/// A replica that never answers (a poll waiting forever) must not hold up
/// commands: lag is read in a task of its own.
#[tokio::test(start_paused = true)]
async fn a_hung_replica_never_delays_a_command() {
    struct Hung;
    impl cutover::lag::LagPoller for Hung {
        fn poll(&mut self) -> futures_util::future::BoxFuture<'_, Vec<cutover::lag::LagSample>> {
            Box::pin(std::future::pending())
        }
    }
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("audit.jsonl");
    let (trail, _) = Trail::open(&path, key()).unwrap_or_else(|e| panic!("{e}"));
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new(
        Utc.with_ymd_and_hms(2025, 3, 3, 12, 0, 0)
            .single()
            .unwrap_or_default(),
    ));
    let exec = SimExecutor::new(
        SimConfig {
            rows_total: 1_000_000_000,
            ..SimConfig::default()
        },
        clock.clone(),
    );
    let core = RunCore::create(
        "r-h",
        spec(),
        deps(dir.path(), clock.clone()),
        trail,
        Box::new(exec),
    )
    .unwrap_or_else(|e| panic!("{e}"))
    .with_lag_every(Box::new(Hung), Duration::from_millis(500));
    let (tx, rx) = mpsc::channel(16);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(core.run(rx, shutdown.clone()));
    let mut sub = subscribe(&tx, 10_000).await;
    let dba = Actor::local("dba1");
    let steps = async {
        send(&tx, dba.clone(), Surface::Console, Command::Request).await;
        send(
            &tx,
            Actor::slack("T1", "U3"),
            Surface::Slack,
            Command::Approve {
                plan_digest: "e".repeat(64),
            },
        )
        .await;
        let started = send(&tx, dba.clone(), Surface::Console, Command::Start).await;
        assert!(matches!(started, Reply::Accepted { .. }), "{started:?}");
        until(&mut sub, &path, |e| matches!(e, Event::Started { .. })).await;
        let paused = send(&tx, dba.clone(), Surface::Console, Command::Pause).await;
        assert!(matches!(paused, Reply::Accepted { .. }), "{paused:?}");
        until(&mut sub, &path, |e| matches!(e, Event::Paused)).await;
    };
    // On the paused clock this only fires if the loop is stuck.
    tokio::time::timeout(Duration::from_secs(3600), steps)
        .await
        .unwrap_or_else(|_| panic!("a command waited on the hung replica"));
    shutdown.cancel();
    let _ = task.await;
}
