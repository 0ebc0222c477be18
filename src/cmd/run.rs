//! `cutover run`, `cutover attach`, `cutover approve` and the hidden
//! `cutover supervise`.
//!
//! `run` plans with live table facts from the target (never a stats file),
//! writes the run's spec to its run directory, starts (or reuses) the run's
//! supervisor — this same binary re-executed as `cutover supervise` in its
//! own process group, output to `supervisor.log` — and attaches as a client:
//! the console, or the headless printer with `--no-tui`. Quitting the client
//! never stops the run; `attach` comes back.

use super::headless::{self, LineFormat};
use super::plan::InputError;
use crate::audit::{self, AuditKey, Entry, Trail};
use crate::cli::{ApproveArgs, AttachArgs, RunArgs, SuperviseArgs};
use crate::config::{Config, Stage, TargetConfig};
use crate::exec::Executor;
use crate::exec::sim::{SimConfig, SimExecutor};
use crate::model::Plan;
use crate::policy::{Clock, Directory, Environment, Surface, SystemClock};
use crate::run::core::{CoreDeps, Reply, RunCore};
use crate::run::{Command, Phase, RunSpec};
use crate::supervisor::{self, Client, ServerMsg, socket_path};
use crate::tui::app::{self, AppOptions};
use crate::tui::{Console, HeaderInfo, KeyMap, Theme};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What the supervisor process needs, written to `<run_dir>/run.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SuperviseSpec {
    /// Run id.
    pub run: String,
    /// What is run where.
    pub spec: RunSpec,
    /// The audit trail.
    pub trail: PathBuf,
    /// The key file (else `CUTOVER_AUDIT_KEY`, inherited).
    pub key_file: Option<PathBuf>,
    /// cutover.toml.
    pub config: PathBuf,
    /// Postpone the cut-over until commanded.
    pub postpone_cut_over: bool,
}

fn input(e: impl std::fmt::Display) -> InputError {
    InputError(e.to_string())
}

fn runtime() -> Result<tokio::runtime::Runtime, InputError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(input)
}

/// A stable run id for (target, versions): re-running the same plan reuses the run.
pub fn run_id(spec: &RunSpec) -> String {
    let versions: Vec<&str> = spec.versions.iter().map(|v| v.version.as_str()).collect();
    let raw = format!("{}-{}", spec.binding.target, versions.join("_"));
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn environment(s: Stage) -> Environment {
    match s {
        Stage::Dev => Environment::Dev,
        Stage::Staging => Environment::Staging,
        Stage::Prod => Environment::Prod,
    }
}

fn header(spec: &RunSpec, cfg: &Config) -> HeaderInfo {
    let policy = &cfg.policy;
    let rule = policy
        .approval_rule(spec.environment, spec.risk)
        .map(|r| {
            format!(
                "{} from {}",
                r.count,
                r.roles
                    .iter()
                    .map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )
        })
        .unwrap_or_else(|| "none".into());
    HeaderInfo {
        version: env!("CARGO_PKG_VERSION").into(),
        slack: slack_status(cfg),
        slack_connected: slack_configured(cfg),
        approval_rule: rule,
    }
}

/// Whether the supervisor's relay talks to Slack (a `[slack]` bot token is set).
fn slack_configured(cfg: &Config) -> bool {
    let base = cfg.path.parent().unwrap_or(Path::new("."));
    cfg.slack
        .clone()
        .and_then(|v| v.try_into::<crate::slack::SlackConfig>().ok())
        .and_then(|sc| sc.tokens(base).ok())
        .is_some_and(|t| t.bot.is_some())
}

/// The header's Slack field: where the team sees this run.
fn slack_status(cfg: &Config) -> String {
    let channel = cfg
        .slack
        .as_ref()
        .and_then(|v| v.get("channel"))
        .and_then(|c| c.as_str())
        .unwrap_or("");
    if slack_configured(cfg) {
        format!("slack {channel}")
    } else {
        "slack off — payloads go to the run's transcript".into()
    }
}

/// `cutover run`: returns the exit code.
pub fn run(a: &RunArgs) -> Result<i32, InputError> {
    let target_name = a.opts.target.clone().ok_or_else(|| {
        InputError("cutover run needs --target (verdicts come from live table facts)".into())
    })?;
    if a.opts.stats.is_some() {
        return Err(InputError(
            "cutover run reads table facts live from the target; --stats is for `cutover plan`"
                .into(),
        ));
    }
    let cfg_path = a
        .opts
        .config
        .clone()
        .or_else(crate::config::discover)
        .ok_or_else(|| InputError("no cutover.toml found (use --config)".into()))?;
    let cfg = Config::load(&cfg_path).map_err(input)?;
    let target = cfg.target(&target_name).map_err(input)?.clone();
    let (plan, _, migrations) = super::plan::build_all(&a.opts)?;
    if let Some(h) = &plan.history
        && !h.changed_after_apply.is_empty()
    {
        return Err(InputError(format!(
            "target '{}': migration(s) {} were applied with different content than the files have now; fix the files or the history before running (see `cutover plan --target {}`)",
            h.target,
            h.changed_after_apply.join(", "),
            h.target
        )));
    }
    if migrations.is_empty() {
        println!("Nothing to run: every migration is already applied on {target_name}.");
        return Ok(0);
    }
    let executor = target.executor.clone().unwrap_or_else(|| "native".into());
    let spec = RunSpec::from_plan(
        &plan,
        &target.name,
        environment(target.environment),
        &executor,
    );
    let id = run_id(&spec);
    let run_dir = a.runs.join(&id);
    let sup = SuperviseSpec {
        run: id.clone(),
        spec: spec.clone(),
        trail: a.trail.clone(),
        key_file: a.key_file.clone(),
        config: cfg_path.clone(),
        postpone_cut_over: a.postpone_cut_over,
    };
    let rt = runtime()?;
    rt.block_on(async {
        if !supervisor::is_running(&run_dir) {
            // Check the key now: a supervisor without one would die unseen.
            AuditKey::load(a.key_file.as_deref()).map_err(input)?;
            std::fs::create_dir_all(&run_dir).map_err(input)?;
            write_json(&run_dir.join("run.json"), &sup)?;
            write_json(&run_dir.join("plan.json"), &plan)?;
            crate::exec::stored::save(&run_dir, &migrations).map_err(input)?;
            spawn_supervisor(&run_dir)?;
        }
        let sock = socket_path(&run_dir);
        wait_for(&sock).await?;
        let state = current_state(&sock).await?;
        // The plan was re-read: if it changed, approvals given for the old one are void.
        if let Some(old) = &state.spec
            && (old.binding != spec.binding || old.versions != spec.versions)
        {
            let mut c = Client::connect(&sock).await.map_err(input)?;
            let reply = c
                .command(
                    Surface::Cli,
                    Command::RevisePlan {
                        binding: spec.binding.clone(),
                        versions: spec.versions.clone(),
                        reason: "plan re-read by `cutover run`".into(),
                    },
                    None,
                    |_| {},
                )
                .await
                .map_err(input)?;
            match reply {
                // The run keeps the plan it had; nothing of the new one is stored.
                Reply::Refused { reason } => {
                    eprintln!("cutover: plan revision refused: {reason}")
                }
                _ => {
                    // Stored only once the run core accepted the revision (which
                    // voided the old approvals), so no start can see a mix.
                    write_json(&run_dir.join("plan.json"), &plan)?;
                    crate::exec::stored::save(&run_dir, &migrations).map_err(input)?;
                }
            }
        }
        if state.phase == Phase::Planned {
            let mut c = Client::connect(&sock).await.map_err(input)?;
            let reply = c
                .command(Surface::Cli, Command::Request, app::tty(), |_| {})
                .await
                .map_err(input)?;
            if let Reply::Refused { reason } = reply {
                eprintln!("cutover: request refused: {reason}");
                if a.client.no_tui {
                    // Nothing will happen to this run: say so by the exit code (3 = refused).
                    return Ok(3);
                }
            }
        }
        let console = Console::new(header(&spec, &cfg), Some(plan));
        client(&sock, console, &cfg, &a.client, true).await
    })
}

/// `cutover attach RUN`.
pub fn attach(a: &AttachArgs) -> Result<i32, InputError> {
    let run_dir = a.runs.join(&a.run);
    let sock = socket_path(&run_dir);
    if !sock.exists() {
        return Err(InputError(format!(
            "run {}: no supervisor is running ({} missing); see `cutover audit show {}`",
            a.run,
            sock.display(),
            a.run
        )));
    }
    let cfg = crate::config::discover()
        .and_then(|p| Config::load(&p).ok())
        .unwrap_or_default();
    let plan: Option<Plan> = std::fs::read_to_string(run_dir.join("plan.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let rt = runtime()?;
    rt.block_on(async {
        let state = current_state(&sock).await?;
        let h = state
            .spec
            .as_ref()
            .map(|s| header(s, &cfg))
            .unwrap_or_default();
        client(&sock, Console::new(h, plan), &cfg, &a.client, false).await
    })
}

/// `cutover approve RUN`: a local approval through the run's socket.
pub fn approve(a: &ApproveArgs) -> Result<i32, InputError> {
    let sock = socket_path(&a.runs.join(&a.run));
    let rt = runtime()?;
    rt.block_on(async {
        let state = current_state(&sock).await?;
        let digest = state
            .spec
            .as_ref()
            .map(|s| s.binding.plan_digest.clone())
            .unwrap_or_default();
        if let Some(seen) = &a.plan_digest
            && !digest.starts_with(seen.as_str())
        {
            return Err(InputError(format!(
                "run {} is now plan {}, not {seen}: review it again before approving",
                a.run,
                crate::tui::model::short(&digest)
            )));
        }
        let mut c = Client::connect(&sock).await.map_err(input)?;
        let reply = c
            .command(
                Surface::Cli,
                Command::Approve {
                    plan_digest: digest,
                },
                app::tty(),
                |_| {},
            )
            .await
            .map_err(input)?;
        Ok(match reply {
            Reply::Accepted { seqs } => {
                println!(
                    "approved (recorded as #{})",
                    seqs.iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", #")
                );
                0
            }
            Reply::Refused { reason } => {
                eprintln!("cutover: approval refused: {reason}");
                3
            }
            Reply::Duplicate => 0,
            Reply::Error { message } => {
                eprintln!("cutover: {message}");
                1
            }
        })
    })
}

async fn client(
    sock: &Path,
    console: Console,
    cfg: &Config,
    a: &crate::cli::ClientArgs,
    auto_start: bool,
) -> Result<i32, InputError> {
    if a.no_tui {
        let format = match a.format {
            crate::cli::LineFormat::Json => LineFormat::Json,
            crate::cli::LineFormat::Text => LineFormat::Text,
        };
        let mut out = std::io::stdout();
        let c = headless::follow(sock, console, format, auto_start, &mut out)
            .await
            .map_err(input)?;
        if format == LineFormat::Text {
            println!();
            for l in headless::summary(&c) {
                println!("{l}");
            }
        }
        return Ok(headless::exit_code(c.state.phase));
    }
    let theme_name = a
        .theme
        .clone()
        .or_else(|| cfg.console.theme.clone())
        .unwrap_or_else(|| "dark".into());
    let theme = Theme::load(&theme_name).map_err(input)?;
    let keys = KeyMap::with_overrides(&cfg.console.keys).map_err(InputError)?;
    let exit = app::run(
        sock,
        console,
        AppOptions {
            simulation: false,
            theme,
            keys,
            read_only: a.read_only,
            auto_start: auto_start && !a.read_only,
            actor: format!("local:{}", supervisor::peer::current_user()),
        },
    )
    .await
    .map_err(input)?;
    Ok(match exit {
        app::AppExit::Ended(p) => headless::exit_code(p),
        app::AppExit::Detached => {
            eprintln!("detached; the run goes on under its supervisor (`cutover attach`)");
            0
        }
    })
}

fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<(), InputError> {
    let text = serde_json::to_string_pretty(v).map_err(input)?;
    std::fs::write(path, text).map_err(|e| InputError(format!("{}: {e}", path.display())))
}

fn spawn_supervisor(run_dir: &Path) -> Result<(), InputError> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().map_err(input)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(run_dir.join("supervisor.log"))
        .map_err(input)?;
    let err = log.try_clone().map_err(input)?;
    std::process::Command::new(exe)
        .arg("supervise")
        .arg("--run-dir")
        .arg(run_dir)
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(err)
        // Its own process group: Ctrl-C or a closed terminal never reaches it.
        .process_group(0)
        .spawn()
        .map_err(|e| InputError(format!("starting the supervisor: {e}")))?;
    Ok(())
}

async fn wait_for(sock: &Path) -> Result<(), InputError> {
    for _ in 0..200 {
        if Client::connect(sock).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(InputError(format!(
        "the supervisor did not open {} (see supervisor.log beside it)",
        sock.display()
    )))
}

async fn current_state(sock: &Path) -> Result<crate::run::RunState, InputError> {
    let mut c = Client::connect(sock).await.map_err(input)?;
    c.subscribe(16).await.map_err(input)?;
    loop {
        match c.next().await.map_err(input)? {
            Some(ServerMsg::State { state }) => return Ok(*state),
            Some(_) => {}
            None => return Err(InputError("the supervisor hung up".into())),
        }
    }
}

/// The executor a run names. `native` runs the approved SQL itself on the target's
/// primary, from the migrations stored in the run directory (verified against the
/// approved checksums at start); `sim` is the simulator the demo uses.
pub fn executor(
    name: &str,
    target: &TargetConfig,
    clock: Arc<dyn Clock>,
) -> Result<Box<dyn Executor>, InputError> {
    match name {
        "sim" => Ok(Box::new(SimExecutor::new(
            SimConfig {
                tick: Duration::from_millis(200),
                ..SimConfig::default()
            },
            clock,
        ))),
        "native" | "gh-ost" | "pt-osc" => crate::exec::drivers::per_migration(name, target)
            .map_err(|m| InputError(format!("target '{}': {m}", target.name))),
        other => Err(InputError(format!(
            "executor '{other}' is not available in this build (known: native, gh-ost, pt-osc, sim)"
        ))),
    }
}

/// Starts the Slack relay for this run inside the supervisor: the real Web API
/// (and Socket Mode with an app token) when `[slack]` has a bot token, otherwise
/// a transcript of every payload in the run directory. The relay subscribes to
/// the run core like any other view, and its clicks become commands to it.
fn start_slack(
    run_dir: &Path,
    sup: &SuperviseSpec,
    cfg: &Config,
    requests: &tokio::sync::mpsc::Sender<crate::run::core::Request>,
    shutdown: CancellationToken,
) -> Result<Option<tokio::task::JoinHandle<crate::slack::relay::RelayReport>>, InputError> {
    use crate::slack::{
        SlackConfig, SlackHost,
        api::{HttpApi, SlackApi},
        interact::Interactions,
        relay::RelaySetup,
        transcript::Transcript,
    };
    let sc: SlackConfig = match &cfg.slack {
        Some(v) => v
            .clone()
            .try_into()
            .map_err(|e| InputError(format!("{} [slack]: {e}", cfg.path.display())))?,
        None => SlackConfig {
            channel: "transcript".into(),
            ..SlackConfig::default()
        },
    };
    let base = cfg.path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let tokens = sc.tokens(&base).map_err(input)?;
    let has_app = tokens.app.is_some();
    let api: Arc<dyn SlackApi> = match tokens.bot {
        Some(bot) => Arc::new(HttpApi::new(&sc.api_base, Some(bot), tokens.app)),
        None => Arc::new(Transcript::in_run_dir(run_dir)),
    };
    let groups = cfg.policy.groups.iter().map(|g| g.slack.clone()).collect();
    let mut interactions = Interactions::new(
        api.clone(),
        groups,
        Duration::from_secs(sc.group_ttl_seconds),
    );
    if let Ok(key) = AuditKey::load(sup.key_file.as_deref()) {
        let relay_trail = sup.trail.with_file_name("relay-audit.jsonl");
        if let Ok((t, _)) = Trail::open(&relay_trail, key) {
            interactions = interactions.with_audit(t);
        }
    }
    let host = SlackHost::new(api, Arc::new(interactions));
    if has_app {
        host.spawn_socket_mode(shutdown.clone());
    }
    let plan: Plan = std::fs::read(run_dir.join("plan.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| InputError(format!("{}: no readable plan.json", run_dir.display())))?;
    let people = cfg
        .policy
        .people
        .iter()
        .filter_map(|p| p.slack.clone().map(|u| (p.id.clone(), u)))
        .collect();
    let setup = RelaySetup {
        run: sup.run.clone(),
        target: sup.spec.binding.target.clone(),
        channel: sc.channel.clone(),
        plan,
        links: sc.links.clone(),
        people,
        coalesce: sc.coalesce(),
        requests: None,
    };
    let (reply, rx) = tokio::sync::oneshot::channel();
    // Queued now, answered once the run core's loop starts in `supervise`.
    requests
        .try_send(crate::run::core::Request::Subscribe {
            capacity: 4096,
            reply,
        })
        .map_err(|e| InputError(format!("slack relay: cannot subscribe to the run: {e}")))?;
    let requests = requests.clone();
    Ok(Some(tokio::spawn(async move {
        match rx.await {
            Ok((state, sub)) => host
                .spawn_for_run(setup, requests, state, sub, shutdown)
                .await
                .unwrap_or_default(),
            Err(_) => Default::default(),
        }
    })))
}

/// `cutover supervise --run-dir DIR` (hidden): the per-run supervisor process.
pub fn supervise(a: &SuperviseArgs) -> Result<i32, InputError> {
    let text = std::fs::read_to_string(a.run_dir.join("run.json"))
        .map_err(|e| InputError(format!("{}: {e}", a.run_dir.join("run.json").display())))?;
    let sup: SuperviseSpec = serde_json::from_str(&text).map_err(input)?;
    let _lock = supervisor::lock_run_dir(&a.run_dir).map_err(input)?;
    let cfg = Config::load(&sup.config).map_err(input)?;
    let key = AuditKey::load(sup.key_file.as_deref()).map_err(input)?;
    if let Some(parent) = sup.trail.parent() {
        std::fs::create_dir_all(parent).map_err(input)?;
    }
    let staging = audit::read_file(&sup.trail, &key)
        .map(|(entries, _)| {
            let e: Vec<Entry> = entries.into_iter().map(|v| v.entry).collect();
            audit::staging_successes(e.iter())
        })
        .unwrap_or_default();
    let known = audit::read_file(&sup.trail, &key)
        .map(|(entries, _)| {
            entries
                .iter()
                .any(|v| matches!(&v.entry, Entry::Run { record } if record.run == sup.run))
        })
        .unwrap_or(false);
    let (trail, _) = Trail::open(&sup.trail, key).map_err(input)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let target = cfg.target(&sup.spec.binding.target).map_err(input)?.clone();
    let exec = executor(&sup.spec.executor, &target, clock.clone())?;
    // Replica lag: one poller, owned by the run core (chart, Slack, throttling).
    let lag = if target.replicas.is_empty() {
        None
    } else {
        Some(crate::lag::poller_for(&target, None).map_err(input)?)
    };
    let deps = CoreDeps {
        directory: Directory::new(&cfg.policy),
        policy: cfg.policy.clone(),
        staging_successes: staging,
        clock,
        run_dir: a.run_dir.clone(),
        postpone_cut_over: sup.postpone_cut_over,
        tick: Duration::from_secs(1),
    };
    let rt = runtime()?;
    rt.block_on(async {
        let mut core = if known {
            RunCore::recover(&sup.run, deps, trail, exec).await
        } else {
            RunCore::create(&sup.run, sup.spec.clone(), deps, trail, exec)
        }
        .map_err(input)?;
        if let Some((poller, opts)) = lag {
            core = core.with_lag_every(poller, opts.interval);
        }
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let shutdown = CancellationToken::new();
        // A run directory that was removed (its run abandoned, a test's temp dir
        // dropped) must not leave an orphan supervisor behind.
        let watch = shutdown.clone();
        let spec_file = a.run_dir.join("run.json");
        tokio::spawn(async move {
            while !watch.is_cancelled() {
                tokio::time::sleep(Duration::from_secs(2)).await;
                if !spec_file.exists() {
                    watch.cancel();
                }
            }
        });
        let relay = start_slack(&a.run_dir, &sup, &cfg, &tx, shutdown.clone())?;
        if let Some(group) = cfg.policy.local_group.clone() {
            // Once the socket exists, let the group's members (a second local
            // approver) use it; they are still identified by their own uid.
            let (dir, sock) = (a.run_dir.clone(), socket_path(&a.run_dir));
            tokio::spawn(async move {
                for _ in 0..100 {
                    if sock.exists() {
                        if let Err(e) = supervisor::peer::share_with_group(&dir, &sock, &group) {
                            eprintln!("cannot share the control socket with group {group}: {e}");
                        }
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
        }
        let state = supervisor::supervise(&a.run_dir, core, (tx, rx), shutdown.clone())
            .await
            .map_err(input)?;
        // The run is over: let the relay deliver the final state before leaving.
        if let Some(relay) = relay {
            match tokio::time::timeout(Duration::from_secs(120), relay).await {
                Ok(Ok(report)) if !report.final_delivered => {
                    eprintln!(
                        "slack: the final state of run {} was not delivered",
                        sup.run
                    )
                }
                Ok(_) => {}
                Err(_) => eprintln!("slack: gave up delivering the final state after 120 s"),
            }
        }
        shutdown.cancel();
        eprintln!("run {} ended: {}", sup.run, state.phase);
        Ok(headless::exit_code(state.phase))
    })
}
