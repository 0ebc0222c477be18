//! `cutover demo`: the whole console on an embedded simulation.
//!
//! A simulated production target (the bundled demo migrations on a 48M-row
//! `orders` table: high risk), a simulated gh-ost (the `sim` executor speaking
//! as the gh-ost driver does: its controls, its throttle reasons, its own lag
//! reading, a postponed cut-over) copying rows over a couple of minutes,
//! three simulated replicas whose lag rises and falls (one crosses the limit
//! and the simulated gh-ost throttles itself), and two simulated
//! Slack users: Bob (DBA on call) requests the run, Alice (a DBA) approves it a few seconds
//! later and cuts over if nobody at the keyboard does. The run has a real
//! supervisor, control socket, audit trail (temporary, with a generated key)
//! and run core: the console talks to it exactly as it does to a real run.

use super::headless::{self, LineFormat};
use super::plan::{InputError, build, demo_dir};
use crate::audit::{AuditKey, Trail, verify_file};
use crate::cli::PlanOpts;
use crate::exec::sim::{GH_OST_SHAPED, SimConfig, SimExecutor, Tee};
use crate::lag::sim::{SimReplica, SimReplicas};
use crate::policy::authz::Role;
use crate::policy::config::PersonConfig;
use crate::policy::{Actor, Clock, Directory, Environment, PolicyConfig, Surface};
use crate::run::core::{CoreDeps, Reply, Request, RunCore};
use crate::run::{Command, CommandEnvelope, Phase, RunSpec};
use crate::supervisor::{self, peer::current_user, socket_path};
use crate::tui::app::{self, AppOptions};
use crate::tui::{Console, HeaderInfo, KeyMap, Theme};
use chrono::{DateTime, Utc};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Demo options.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Headless: events as lines, then the summary and the verified trail.
    pub no_tui: bool,
    /// JSON lines instead of text (headless).
    pub json: bool,
    /// Simulated seconds per real second.
    pub speed: f64,
    /// Theme name or file.
    pub theme: String,
    /// Observer mode.
    pub read_only: bool,
}

/// Simulated time: starts now and runs `speed` times faster than the wall.
#[derive(Debug)]
struct ScaledClock {
    base: DateTime<Utc>,
    start: std::time::Instant,
    speed: f64,
}

impl Clock for ScaledClock {
    fn now(&self) -> DateTime<Utc> {
        let ms = self.start.elapsed().as_secs_f64() * self.speed * 1000.0;
        self.base + chrono::Duration::milliseconds(ms as i64)
    }
}

/// Simulated seconds of copying at full speed.
const COPY_TICKS: u64 = 75;
/// Rows per chunk at the start.
const CHUNK: u32 = 2000;
/// The simulated Slack users' ids.
const BOB: &str = "U0BOB";
const ALICE: &str = "U0ALICE";
const TEAM: &str = "T0DEMO";

fn policy() -> PolicyConfig {
    PolicyConfig {
        people: vec![
            PersonConfig {
                id: "you".into(),
                name: Some(format!("you ({})", current_user())),
                role: Role::Dba,
                local: vec![current_user()],
                slack: None,
            },
            PersonConfig {
                id: "alice".into(),
                name: Some("Alice (DBA)".into()),
                role: Role::Dba,
                local: vec![],
                slack: Some(ALICE.into()),
            },
            PersonConfig {
                id: "bob".into(),
                name: Some("Bob (DBA on call)".into()),
                role: Role::Dba,
                local: vec![],
                slack: Some(BOB.into()),
            },
        ],
        ..PolicyConfig::default()
    }
}

fn random_key() -> Result<AuditKey, InputError> {
    use std::io::Read;
    let mut buf = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| InputError(format!("generating the demo's audit key: {e}")))?;
    AuditKey::new(hex::encode(buf).into_bytes()).map_err(|e| InputError(e.to_string()))
}

/// `cutover demo` from its arguments: returns the exit code.
pub fn main(a: &crate::cli::DemoArgs) -> Result<i32, InputError> {
    let json = a.format == crate::cli::LineFormat::Json;
    run(&DemoOptions {
        no_tui: a.no_tui,
        json,
        speed: a.speed,
        theme: a.theme.clone(),
        read_only: a.read_only,
    })
}

/// `cutover demo`: returns the exit code.
pub fn run(opts: &DemoOptions) -> Result<i32, InputError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| InputError(e.to_string()))?;
    rt.block_on(demo(opts))
}

async fn demo(opts: &DemoOptions) -> Result<i32, InputError> {
    let speed = opts.speed.clamp(0.1, 1000.0);
    let err = |e: &dyn std::fmt::Display| InputError(e.to_string());
    let (dir, mig) = demo_dir()?;
    let (plan, _) = build(&PlanOpts {
        paths: vec![mig],
        engine: Some("postgres".into()),
        engine_version: None,
        source_format: None,
        target: None,
        stats: Some(dir.path().join("stats.toml")),
        rules: None,
        config: Some(PathBuf::from("/dev/null")),
    })?;
    let key = random_key()?;
    // The demo's directory outlives it, so that the audit commands can be tried
    // on its trail right after (the key is written beside it, 0600).
    let dir = dir.keep();
    write_key(&dir.join("audit.key"), &key)?;
    let trail_path = dir.join("audit.jsonl");
    let (trail, _) = Trail::open(&trail_path, key.clone()).map_err(|e| err(&e))?;
    let clock: Arc<dyn Clock> = Arc::new(ScaledClock {
        base: Utc::now(),
        start: std::time::Instant::now(),
        speed,
    });
    let tick = Duration::from_secs_f64(1.0 / speed);
    let run_id = format!("demo-{}", clock.now().format("%Y%m%d-%H%M%S"));
    let run_dir = dir.join("runs").join(&run_id);
    let lock = supervisor::lock_run_dir(&run_dir).map_err(|e| err(&e))?;
    std::fs::write(
        run_dir.join("plan.json"),
        serde_json::to_string(&plan).unwrap_or_default(),
    )
    .map_err(|e| err(&e))?;
    let spec = RunSpec::from_plan(&plan, "demo-prod", Environment::Prod, GH_OST_SHAPED);
    let table = spec.tables.first().cloned().unwrap_or_default();
    let rows_total = 48_000_000u64;
    let replicas = SimReplicas::new(
        vec![
            replica("replica-1", 0.6, 40, 0),
            replica("replica-2", 1.1, 30, 9),
            // Peaks over the 1.5 s limit for about a third of its cycle.
            replica("replica-3", 2.4, 44, 0),
        ],
        clock.clone(),
    );
    // Like gh-ost, the simulated copy reads the replicas itself (the same
    // readings the chart shows) and throttles on them by itself.
    let (replicas, readings) = Tee::new(Box::new(replicas));
    let exec = SimExecutor::new(
        SimConfig {
            rows_total,
            chunks_per_tick: rows_total / (u64::from(CHUNK) * COPY_TICKS),
            chunk_size: CHUNK,
            tick,
            fail_at_rows: None,
        },
        clock.clone(),
    )
    .gh_ost_shaped(readings);
    let policy = policy();
    let deps = CoreDeps {
        directory: Directory::new(&policy),
        policy,
        // The same plan "succeeded on staging" so the prod promotion gate passes.
        staging_successes: [spec.binding.plan_digest.clone()].into_iter().collect(),
        clock: clock.clone(),
        run_dir: run_dir.clone(),
        postpone_cut_over: true,
        tick,
    };
    let core = RunCore::create(&run_id, spec, deps, trail, Box::new(exec))
        .map_err(|e| err(&e))?
        .with_lag(Box::new(replicas));
    let (tx, rx) = mpsc::channel(64);
    let shutdown = CancellationToken::new();
    let sup = {
        let run_dir = run_dir.clone();
        let tx = tx.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move { supervisor::supervise(&run_dir, core, (tx, rx), shutdown).await })
    };
    let sock = socket_path(&run_dir);
    // The supervisor task binds the socket; on a loaded machine that can take
    // seconds, and connecting before it would fail ("connection refused").
    for _ in 0..3000 {
        if sock.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Slack without a token: the relay writes what it would post to a transcript.
    let slack = crate::slack::host::transcript_relay(
        &run_dir,
        &run_id,
        "demo-prod",
        plan.clone(),
        tx.clone(),
        shutdown.clone(),
    )
    .await;
    // At the keyboard, a newcomer gets time to approve (A) and cut over (c)
    // before the simulated Alice does.
    let (approve_wait, cut_over_wait) = if opts.no_tui {
        (4.0, 8.0)
    } else {
        (45.0, 20.0)
    };
    let bot = tokio::spawn(slack_users(
        tx.clone(),
        tick,
        table.clone(),
        approve_wait,
        cut_over_wait,
    ));
    drop(tx);

    let console = Console::new(
        HeaderInfo {
            version: env!("CARGO_PKG_VERSION").into(),
            slack: "off — posts shown in the log".into(),
            slack_connected: false,
            approval_rule: if opts.no_tui {
                "1 from dba (prod, high risk); requester excluded".into()
            } else {
                "1 from dba (prod, high risk); requester excluded — press A to approve (else Alice will)".into()
            },
        },
        Some(plan),
    );
    let code = if opts.no_tui {
        let format = if opts.json {
            LineFormat::Json
        } else {
            LineFormat::Text
        };
        let mut out = std::io::stdout();
        let c = headless::follow(&sock, console, format, true, &mut out)
            .await
            .map_err(|e| err(&e))?;
        let _ = sup.await;
        if format == LineFormat::Text {
            println!();
            for l in headless::summary(&c) {
                println!("{l}");
            }
            let report = verify_file(&trail_path, &key).map_err(|e| err(&e))?;
            match &report.problem {
                None => println!(
                    "audit trail verified: {} records, head {} ({})",
                    report.records,
                    crate::tui::model::short(&report.head),
                    trail_path.display()
                ),
                Some(p) => println!("audit trail does NOT verify: {p}"),
            }
        }
        headless::exit_code(c.state.phase)
    } else {
        let theme = Theme::load(&opts.theme).map_err(|e| err(&e))?;
        let exit = app::run(
            &sock,
            console,
            AppOptions {
                theme,
                keys: KeyMap::default(),
                read_only: opts.read_only,
                auto_start: true,
                actor: format!("local:{}", current_user()),
                simulation: true,
            },
        )
        .await
        .map_err(|e| err(&e))?;
        shutdown.cancel();
        let _ = sup.await;
        match exit {
            app::AppExit::Ended(p) => headless::exit_code(p),
            app::AppExit::Detached => {
                eprintln!(
                    "detached: in a real run the supervisor keeps going (`cutover attach`); the demo's simulation stops with the demo"
                );
                0
            }
        }
    };
    if let Some((relay, path)) = slack {
        crate::slack::host::finish_demo(relay, &path, !opts.json).await;
    }
    bot.abort();
    drop(lock);
    if !opts.json {
        print_kept(&dir);
    }
    Ok(code)
}

/// Writes the demo's audit key where only this user can read it.
fn write_key(path: &std::path::Path, key: &AuditKey) -> Result<(), InputError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(key.bytes()))
        .map_err(|e| InputError(format!("{}: {e}", path.display())))
}

/// Says where the demo's trail is and how to read it.
fn print_kept(dir: &std::path::Path) {
    let d = dir.display();
    println!("\nThe demo's files are kept in {d} (delete it when done). Try:");
    for sub in ["verify", "show", "export --format csv"] {
        println!("  cutover audit {sub} --trail {d}/audit.jsonl --key-file {d}/audit.key");
    }
}

fn replica(name: &str, peak: f64, period: u64, offset: u64) -> SimReplica {
    SimReplica {
        name: name.into(),
        peak_seconds: peak,
        period,
        offset,
        unknown_every: 0,
    }
}

async fn send(tx: &mpsc::Sender<Request>, user: &str, command: Command) -> Option<Reply> {
    let (rtx, rrx) = oneshot::channel();
    let mut env = CommandEnvelope::new(Actor::slack(TEAM, user), Surface::Slack, command);
    env.origin = Some(format!("slack demo message by {user}"));
    tx.send(Request::Command(env, rtx)).await.ok()?;
    rrx.await.ok()
}

/// Bob requests; Alice approves after `approve_wait` simulated seconds unless
/// someone at the keyboard did, and, once the copy is done, cuts over if nobody
/// at the keyboard did within `cut_over_wait`.
async fn slack_users(
    tx: mpsc::Sender<Request>,
    tick: Duration,
    table: String,
    approve_wait: f64,
    cut_over_wait: f64,
) {
    let sim = |secs: f64| tick.mul_f64(secs);
    let (stx, srx) = oneshot::channel();
    if tx
        .send(Request::Subscribe {
            capacity: 4096,
            reply: stx,
        })
        .await
        .is_err()
    {
        return;
    }
    let Ok((mut state, mut sub)) = srx.await else {
        return;
    };
    tokio::time::sleep(sim(1.0)).await;
    send(&tx, BOB, Command::Request).await;
    let wait = tokio::time::Instant::now() + sim(approve_wait);
    while tokio::time::Instant::now() < wait
        && matches!(state.phase, Phase::Planned | Phase::AwaitingApproval)
    {
        match tokio::time::timeout_at(wait, sub.recv()).await {
            Ok(Some(crate::run::fanout::Published::Event { record, .. })) => {
                state = state.apply(&record);
            }
            Ok(Some(_)) | Err(_) => {}
            Ok(None) => return,
        }
    }
    let digest = state
        .spec
        .as_ref()
        .map(|s| s.binding.plan_digest.clone())
        .unwrap_or_default();
    if matches!(state.phase, Phase::Planned | Phase::AwaitingApproval) {
        send(
            &tx,
            ALICE,
            Command::Approve {
                plan_digest: digest,
            },
        )
        .await;
    }
    let mut ready_since: Option<tokio::time::Instant> = None;
    loop {
        let item = tokio::time::timeout(sim(1.0), sub.recv()).await;
        match item {
            Ok(Some(crate::run::fanout::Published::Event { record, .. })) => {
                state = state.apply(&record);
            }
            Ok(Some(_)) => {}
            Ok(None) => return,
            Err(_) => {}
        }
        if state.phase == Phase::ReadyToCutOver && !state.cut_over_pending {
            let since = *ready_since.get_or_insert_with(tokio::time::Instant::now);
            if since.elapsed() >= sim(cut_over_wait) {
                ready_since = None;
                send(
                    &tx,
                    ALICE,
                    Command::CutOver {
                        table: Some(table.clone()),
                    },
                )
                .await;
            }
        }
        if state.phase.is_terminal() {
            return;
        }
    }
}
