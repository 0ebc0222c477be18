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
use super::rederive;
use crate::audit::{self, AuditKey, Entry, Trail};
use crate::cli::{ApproveArgs, AttachArgs, RunArgs, SuperviseArgs};
use crate::config::{Config, TargetConfig};
use crate::exec::Executor;
use crate::model::Plan;
use crate::policy::{Clock, Directory, Surface, SystemClock};
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

/// What the supervisor process needs, written to `<run_dir>/run.json`. It
/// holds only what cannot be re-derived: everything that decides whether and
/// how the run may go is derived again from the approved bytes, the rules and
/// cutover.toml at every supervisor start (see [`super::rederive`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuperviseSpec {
    /// Run id.
    pub run: String,
    /// The target's name in cutover.toml.
    pub target: String,
    /// The versions this run applies, in order (their bytes are in migrations.json).
    pub versions: Vec<String>,
    /// The plan digest `cutover run` planned (the supervisor's own must match).
    pub plan_digest: String,
    /// The audit trail.
    pub trail: PathBuf,
    /// The key file (else `CUTOVER_AUDIT_KEY`, inherited).
    pub key_file: Option<PathBuf>,
    /// cutover.toml.
    pub config: PathBuf,
    /// Never set by `cutover run`: a supervisor refuses a run.json naming a
    /// rules file (kept so such a file is read, and refused, not ignored).
    #[serde(default)]
    pub rules: Option<PathBuf>,
    /// Postpone the cut-over until commanded.
    pub postpone_cut_over: bool,
    /// Opened by `cutover serve`: the service (this supervisor's own OS
    /// user) may relay a client's connection and name the client's uid.
    #[serde(default)]
    pub service: bool,
}

fn input(e: impl std::fmt::Display) -> InputError {
    InputError(e.to_string())
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, InputError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(input)
}

/// A short run id that fits any plan: target, first..last version and a
/// digest prefix (`prod-V1..V120-3fa2c1d9e0b4`), each part capped and made
/// file-name safe. `n` > 1 numbers a later run of the same plan (after a
/// failed or aborted one).
pub fn run_id(spec: &RunSpec, n: u32) -> String {
    fn clean(s: &str, max: usize) -> String {
        s.chars()
            .take(max)
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }
    let first = spec.versions.first().map(|v| v.version.as_str());
    let last = spec.versions.last().map(|v| v.version.as_str());
    let versions = match (first, last) {
        (Some(a), Some(b)) if a != b => format!("{}..{}", clean(a, 24), clean(b, 24)),
        (Some(a), _) => clean(a, 24),
        _ => "none".into(),
    };
    let digest = clean(&spec.binding.plan_digest, 12);
    let base = format!("{}-{versions}-{digest}", clean(&spec.binding.target, 40));
    if n > 1 { format!("{base}-{n}") } else { base }
}

/// The runs the trail holds: id → state. A trail that does not verify is
/// never appended to, so it refuses the run here, naming the first bad record.
pub(crate) fn trail_runs(
    trail: &Path,
    key: &AuditKey,
) -> Result<std::collections::BTreeMap<String, crate::run::RunState>, InputError> {
    let mut out: std::collections::BTreeMap<String, Vec<crate::run::EventRecord>> =
        Default::default();
    if !trail.exists() {
        return Ok(Default::default());
    }
    let (entries, report) = audit::read_file(trail, key).map_err(input)?;
    if let Some(p) = &report.problem {
        return Err(InputError(format!(
            "audit trail {} does not verify: {p}. Nothing is appended to it until an operator seals the damage with `cutover audit repair --reason …`",
            trail.display()
        )));
    }
    for e in entries {
        if let Entry::Run { record } = e.entry {
            out.entry(record.run.clone()).or_default().push(record);
        }
    }
    Ok(out
        .into_iter()
        .map(|(id, recs)| (id, crate::run::RunState::replay(&recs)))
        .collect())
}

/// Which run `cutover run` continues or starts for `spec`: (id, whether new).
///
/// A run is found again by what it is, not by what is still pending: a
/// started, unfinished run on the target (crashed, interrupted, or still
/// going) whose remaining versions are exactly the pending ones is the same
/// run. A run of this plan that has not started is reused. Otherwise a new
/// run, numbered after finished runs of the same plan (whose records stay as
/// they ended).
fn choose_run(
    states: &std::collections::BTreeMap<String, crate::run::RunState>,
    spec: &RunSpec,
) -> Result<(String, bool), InputError> {
    for (id, st) in states {
        let Some(old) = &st.spec else { continue };
        if old.binding.target != spec.binding.target
            || st.phase.is_terminal()
            || st.phase.is_pre_start()
        {
            continue;
        }
        if old.versions.ends_with(&spec.versions) {
            return Ok((id.clone(), false));
        }
        return Err(InputError(format!(
            "run {id} on target '{}' is unfinished ({}) and applies other migrations than these; continue it with `cutover resume {id}` or abort it first",
            spec.binding.target, st.phase
        )));
    }
    let mut n = 1;
    loop {
        let id = run_id(spec, n);
        match states.get(&id) {
            Some(st) if st.phase.is_pre_start() => return Ok((id, false)),
            Some(_) => n += 1,
            None => return Ok((id, true)),
        }
    }
}

pub(crate) fn header(spec: &RunSpec, cfg: &Config) -> HeaderInfo {
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
    if let Some(service) = crate::serve::client::socket(&a.service, a.opts.config.as_deref()) {
        return crate::serve::client::run(a, &service);
    }
    let p = match prepare(a, false)? {
        Prepare::Nothing(message) => {
            println!("{message}");
            return Ok(0);
        }
        Prepare::Ready(p) => p,
    };
    let rt = runtime()?;
    rt.block_on(async {
        withdraw_superseded(&p, None).await;
        let mut l = launch(&p).await?;
        if let Some(why) = go(&l.sock, &l.state, &p.id, None).await? {
            eprintln!("cutover: {why}");
            if a.client.no_tui {
                // Nothing will happen to this run: say so by the exit code
                // (3 = refused), and leave no supervisor behind for it.
                if let Some(child) = l.spawned.as_mut() {
                    stop_supervisor(child);
                }
                return Ok(3);
            }
        }
        let console = Console::new(header(&p.spec, &p.cfg), Some(p.plan.clone()));
        let ended = || {
            let key = AuditKey::load(a.key_file.as_deref()).ok()?;
            trail_runs(&a.trail, &key).ok()?.remove(&p.id)
        };
        client(&l.sock, console, &p.cfg, &a.client, true, &ended).await
    })
}

/// What [`prepare`] found.
pub(crate) enum Prepare {
    /// Every migration is applied already (the message says so).
    Nothing(String),
    /// A run to launch.
    Ready(Box<Prepared>),
}

/// A run planned from the files, chosen among the trail's runs, its
/// directory not yet written (see [`launch`]).
pub(crate) struct Prepared {
    pub(crate) id: String,
    pub(crate) run_dir: PathBuf,
    pub(crate) plan: Plan,
    pub(crate) spec: RunSpec,
    pub(crate) cfg: Config,
    sup: SuperviseSpec,
    migrations: Vec<crate::migrate::Migration>,
    format: Option<crate::migrate::SourceFormat>,
    new: bool,
    /// The phase the run stopped in, when it was started before.
    resuming: Option<Phase>,
    /// Runs of an older plan this one replaces (see [`withdraw_superseded`]).
    superseded: Vec<(String, PathBuf, Phase)>,
}

/// Plans `a`'s files for its target, checks the trail and chooses the run.
/// `service`: the run is opened by `cutover serve` for a client, so its
/// supervisor takes a client's identity from the service (see
/// [`crate::supervisor::server`]).
pub(crate) fn prepare(a: &RunArgs, service: bool) -> Result<Prepare, InputError> {
    let target_name = a.opts.target.clone().ok_or_else(|| {
        InputError("cutover run needs --target (verdicts come from live table facts)".into())
    })?;
    if a.opts.stats.is_some() {
        return Err(InputError(
            "cutover run reads table facts live from the target; --stats is for `cutover plan`"
                .into(),
        ));
    }
    // The requester's own rules file could lower a plan below what needs an
    // approval: a run's rules are the organisation's, named by cutover.toml.
    if let Some(r) = &a.opts.rules {
        return Err(InputError(format!(
            "cutover run takes its rules from cutover.toml ([rules] path), not --rules {}: a requester's file must not decide what needs approval (--rules is for `cutover plan`)",
            r.display()
        )));
    }
    let cfg_path = a
        .opts
        .config
        .clone()
        .or_else(crate::config::discover)
        .ok_or_else(|| InputError("no cutover.toml found (use --config)".into()))?;
    let cfg = Config::load(&cfg_path).map_err(input)?;
    let target = cfg.target(&target_name).map_err(input)?.clone();
    let executor = rederive::executor_name(&target);
    check_executor(&executor, &target)?;
    // Calibrated from this run's own trail (the service's, or --trail's).
    let history = super::plan::StagingHistory {
        trail: a.trail.clone(),
        runs: a.runs.clone(),
        key_file: a.key_file.clone(),
    };
    let (plan, _, migrations) = super::plan::build_all(&a.opts, &history)?;
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
        return Ok(Prepare::Nothing(format!(
            "Nothing to run: every migration is already applied on {target_name}."
        )));
    }
    let spec = RunSpec::from_plan(
        &plan,
        &target.name,
        rederive::environment(target.environment),
        &executor,
    );
    // Check the key now: a supervisor without one would die unseen.
    let key = AuditKey::load(a.key_file.as_deref()).map_err(input)?;
    let states = trail_runs(&a.trail, &key)?;
    let (id, new) = choose_run(&states, &spec)?;
    let run_dir = a.runs.join(&id);
    let superseded = superseded_by(&a.runs, &states, &spec, &id);
    let format = a
        .opts
        .source_format
        .as_deref()
        .or(target.format.as_deref())
        .map(|f| f.parse().map_err(InputError))
        .transpose()?;
    let sup = SuperviseSpec {
        run: id.clone(),
        target: target.name.clone(),
        versions: spec.versions.iter().map(|v| v.version.clone()).collect(),
        plan_digest: spec.binding.plan_digest.clone(),
        trail: a.trail.clone(),
        key_file: a.key_file.clone(),
        config: cfg_path.clone(),
        rules: None,
        postpone_cut_over: a.postpone_cut_over,
        service,
    };
    let resuming = states
        .get(&id)
        .map(|s| s.phase)
        .filter(|p| !p.is_pre_start());
    Ok(Prepare::Ready(Box::new(Prepared {
        id,
        run_dir,
        plan,
        spec,
        cfg,
        sup,
        migrations,
        format,
        new,
        resuming,
        superseded,
    })))
}

/// A run whose supervisor is up.
pub(crate) struct Launched {
    /// Its control socket.
    pub(crate) sock: PathBuf,
    /// The supervisor, when this process started it.
    pub(crate) spawned: Option<std::process::Child>,
    /// The run's state when it was reached.
    pub(crate) state: crate::run::RunState,
    /// Said to the person (continuing a stopped run).
    pub(crate) note: Option<String>,
}

/// Writes a new run's directory (the approved bytes, run.json) and starts
/// its supervisor unless one is running; waits for its socket.
pub(crate) async fn launch(p: &Prepared) -> Result<Launched, InputError> {
    let (id, run_dir) = (&p.id, &p.run_dir);
    let mut spawned = None;
    let mut note = None;
    if !supervisor::is_running(run_dir) {
        if p.new || !run_dir.join("run.json").exists() {
            if p.resuming.is_some() {
                return Err(InputError(format!(
                    "run {id} was started but {} is gone: its approved bytes cannot be recovered; see `cutover audit show {id}`",
                    run_dir.display()
                )));
            }
            std::fs::create_dir_all(run_dir).map_err(input)?;
            write_json(&run_dir.join("run.json"), &p.sup)?;
            write_json(&run_dir.join("plan.json"), &p.plan)?;
            crate::exec::stored::save(run_dir, &p.migrations, p.format).map_err(input)?;
        } else if let Some(phase) = p.resuming {
            let n = format!("continuing run {id} (it stopped while {phase})");
            eprintln!("cutover: {n}");
            note = Some(n);
        }
        spawned = Some(spawn_supervisor(run_dir)?);
    }
    let sock = socket_path(run_dir);
    if let Err(e) = wait_for(&sock, run_dir, spawned.as_mut()).await {
        // A long-lived caller (`cutover serve`) must not keep a zombie.
        if let Some(mut child) = spawned {
            std::thread::spawn(move || child.wait());
        }
        return Err(e);
    }
    let state = current_state(&sock).await?;
    Ok(Launched {
        sock,
        spawned,
        state,
        note,
    })
}

/// Requests a planned run, or continues an interrupted one (a start, with
/// a first start's gates), as the client — or, for the service, as the
/// user `behalf` names. `Some(reason)` when refused.
pub(crate) async fn go(
    sock: &Path,
    state: &crate::run::RunState,
    id: &str,
    behalf: Option<u32>,
) -> Result<Option<String>, InputError> {
    let command = match state.phase {
        Phase::Planned => Command::Request,
        Phase::Interrupted => Command::Start,
        _ => return Ok(None),
    };
    let mut c = Client::connect(sock).await.map_err(input)?;
    if let Some(uid) = behalf {
        c.on_behalf(uid).await.map_err(input)?;
    }
    let origin = if behalf.is_some() { None } else { app::tty() };
    let reply = c
        .command(Surface::Cli, command.clone(), origin, |_| {})
        .await
        .map_err(input)?;
    Ok(match reply {
        Reply::Refused { reason } if command == Command::Request => {
            Some(format!("request refused: {reason}"))
        }
        // The run stays interrupted, recorded; the next `cutover run`
        // re-checks with cutover.toml as it is then.
        Reply::Refused { reason } => Some(format!("run {id} cannot continue: {reason}")),
        _ => None,
    })
}

/// Continues an interrupted run: a start, with a first start's gates.
/// `false` when refused (the reason is printed; the run stays interrupted).
async fn continue_run(sock: &Path, id: &str) -> Result<bool, InputError> {
    let mut c = Client::connect(sock).await.map_err(input)?;
    let reply = c
        .command(Surface::Cli, Command::Start, app::tty(), |_| {})
        .await
        .map_err(input)?;
    Ok(match reply {
        Reply::Refused { reason } => {
            eprintln!("cutover: run {id} cannot continue: {reason}");
            false
        }
        _ => true,
    })
}

/// Runs of an older plan on the same target that never started, with a
/// supervisor still waiting: a new plan supersedes them.
fn superseded_by(
    runs: &Path,
    states: &std::collections::BTreeMap<String, crate::run::RunState>,
    spec: &RunSpec,
    chosen: &str,
) -> Vec<(String, PathBuf, Phase)> {
    states
        .iter()
        .filter(|(id, st)| {
            id.as_str() != chosen
                && st.phase.is_pre_start()
                && st
                    .spec
                    .as_ref()
                    .is_some_and(|s| s.binding.target == spec.binding.target)
                && supervisor::is_running(&runs.join(id))
        })
        .map(|(id, st)| (id.clone(), runs.join(id), st.phase))
        .collect()
}

/// Withdraws the runs `p` supersedes, through their supervisors, as the
/// requester (or, for the service, as the user `behalf` names): the trail
/// closes them as withdrawn, and their approvals do not carry over. A
/// supervisor that does not take it (gone, or the person may not) is stopped,
/// its run left as it was recorded.
pub(crate) async fn withdraw_superseded(p: &Prepared, behalf: Option<u32>) {
    for (id, dir, phase) in &p.superseded {
        let reason = format!(
            "superseded by run {}: the plan changed (now {})",
            p.id,
            &p.spec.binding.plan_digest[..12.min(p.spec.binding.plan_digest.len())]
        );
        let withdrawn = async {
            let mut c = Client::connect(&socket_path(dir)).await.ok()?;
            if let Some(uid) = behalf {
                c.on_behalf(uid).await.ok()?;
            }
            c.command(
                Surface::Cli,
                Command::Withdraw {
                    reason: reason.clone(),
                },
                None,
                |_| {},
            )
            .await
            .ok()
        }
        .await;
        match withdrawn {
            Some(Reply::Accepted { .. }) => eprintln!(
                "cutover: run {id} ({phase}) is withdrawn, {reason}; its approvals do not carry over"
            ),
            other => {
                let why = match other {
                    Some(Reply::Refused { reason }) => reason,
                    _ => "its supervisor did not answer".into(),
                };
                let pid = std::fs::read_to_string(dir.join("supervisor.pid"))
                    .ok()
                    .and_then(|t| t.trim().parse::<i32>().ok())
                    .and_then(rustix::process::Pid::from_raw);
                if let Some(pid) = pid
                    && rustix::process::kill_process(pid, rustix::process::Signal::TERM).is_ok()
                {
                    eprintln!(
                        "cutover: run {id} ({phase}) is superseded by this plan: its supervisor was stopped ({why}), and its approvals do not carry over"
                    );
                }
            }
        }
    }
}

/// The `sim` executor is for the demo and tests: a configured target is a
/// real database, and a simulated run of it would prove nothing.
fn check_executor(name: &str, target: &TargetConfig) -> Result<(), InputError> {
    if rederive::REAL_EXECUTORS.contains(&name) {
        return Ok(());
    }
    Err(InputError(format!(
        "target '{}': executor '{name}' cannot run a configured target (use native, gh-ost or pt-osc; `sim` is for `cutover demo` and tests)",
        target.name
    )))
}

/// `cutover attach RUN`.
pub fn attach(a: &AttachArgs) -> Result<i32, InputError> {
    if let Some(service) = crate::serve::client::socket(&a.service, None) {
        return attach_via_service(a, &service, false);
    }
    let run_dir = a.runs.join(&a.run);
    let sock = socket_path(&run_dir);
    if !sock.exists() {
        return Err(InputError(format!(
            "run {}: no supervisor is running ({} missing); continue it with `cutover resume {}`, or see `cutover audit show {}`",
            a.run,
            sock.display(),
            a.run,
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
        client(
            &sock,
            Console::new(h, plan),
            &cfg,
            &a.client,
            false,
            &|| None,
        )
        .await
    })
}

/// `cutover attach RUN` (and `resume`: `start`) through `cutover serve`:
/// the service starts the run's supervisor when asked, relays this
/// process's connections, and the same follow-up as a local run applies.
fn attach_via_service(a: &AttachArgs, service: &Path, start: bool) -> Result<i32, InputError> {
    use crate::serve::client::{Relay, plan};
    let cfg = crate::config::discover()
        .and_then(|p| Config::load(&p).ok())
        .unwrap_or_default();
    let rt = runtime()?;
    rt.block_on(async {
        let sock =
            crate::serve::client::Endpoint::Service(Relay::open(service, &a.run, start).await?);
        let state = current_state(sock.path()).await?;
        if start && state.phase.is_terminal() {
            println!("run {} has ended: {}", a.run, state.phase);
            return Ok(headless::exit_code(state.phase));
        }
        if start && state.phase == Phase::Paused {
            return resume_paused(sock.path(), &a.run).await;
        }
        if start
            && state.phase == Phase::Interrupted
            && let Some(why) = go(sock.path(), &state, &a.run, None).await?
        {
            eprintln!("cutover: {why}");
            if a.client.no_tui {
                return Ok(3);
            }
        }
        let h = state
            .spec
            .as_ref()
            .map(|s| header(s, &cfg))
            .unwrap_or_default();
        let console = Console::new(h, plan(service, &a.run).await);
        client(sock.path(), console, &cfg, &a.client, false, &|| None).await
    })
}

/// `cutover resume RUN`: re-opens a run whose supervisor is gone (it
/// recovers, then continues through a first start's gates), or resumes a
/// paused one, then follows it like `cutover run`.
pub fn resume(a: &AttachArgs) -> Result<i32, InputError> {
    if let Some(service) = crate::serve::client::socket(&a.service, None) {
        return attach_via_service(a, &service, true);
    }
    let run_dir = a.runs.join(&a.run);
    if !run_dir.join("run.json").exists() {
        return Err(InputError(format!(
            "run {}: no run directory {} (see `cutover audit show {}`)",
            a.run,
            run_dir.display(),
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
        let mut spawned = None;
        if !supervisor::is_running(&run_dir) {
            spawned = Some(spawn_supervisor(&run_dir)?);
        }
        let sock = socket_path(&run_dir);
        wait_for(&sock, &run_dir, spawned.as_mut()).await?;
        let state = current_state(&sock).await?;
        if state.phase.is_terminal() {
            println!("run {} has ended: {}", a.run, state.phase);
            return Ok(headless::exit_code(state.phase));
        }
        let go_on = match state.phase {
            Phase::Interrupted => continue_run(&sock, &a.run).await?,
            Phase::Paused => return resume_paused(&sock, &a.run).await,
            _ => true,
        };
        if !go_on && a.client.no_tui {
            if let Some(child) = spawned.as_mut() {
                stop_supervisor(child);
            }
            return Ok(3);
        }
        let h = state
            .spec
            .as_ref()
            .map(|s| header(s, &cfg))
            .unwrap_or_default();
        client(
            &sock,
            Console::new(h, plan),
            &cfg,
            &a.client,
            false,
            &|| None,
        )
        .await
    })
}

/// Resuming a paused run is a control, like `cutover pause`: sent,
/// answered, and the command exits.
async fn resume_paused(sock: &Path, run: &str) -> Result<i32, InputError> {
    let mut c = Client::connect(sock).await.map_err(input)?;
    let reply = c
        .command(Surface::Cli, Command::Resume, app::tty(), |_| {})
        .await
        .map_err(input)?;
    Ok(match reply {
        Reply::Refused { reason } => {
            eprintln!("cutover: resume refused: {reason}");
            3
        }
        Reply::Error { message } => {
            eprintln!("cutover: {message}");
            1
        }
        _ => {
            println!("resume accepted: run {run} (`cutover attach {run}` to watch)");
            0
        }
    })
}

/// `cutover approve RUN`: a local approval through the run's socket.
pub fn approve(a: &ApproveArgs) -> Result<i32, InputError> {
    let rt = runtime()?;
    rt.block_on(async {
        let endpoint =
            crate::serve::client::Endpoint::open(&a.run, &a.runs, &a.service, false).await?;
        let sock = endpoint.path();
        let state = current_state(sock).await?;
        let digest = state
            .spec
            .as_ref()
            .map(|s| s.binding.plan_digest.clone())
            .unwrap_or_default();
        // The plan the approver reviewed: a prefix of the run's digest stands
        // for it. Any other digest goes to the run core as given, which
        // refuses it as stale *and records the refusal*: an approval for
        // another plan is a decision the trail must hold.
        let plan_digest = match &a.plan_digest {
            Some(seen) if !digest.starts_with(seen.as_str()) => seen.clone(),
            _ => digest,
        };
        let mut c = Client::connect(sock).await.map_err(input)?;
        let reply = c
            .command(
                Surface::Cli,
                Command::Approve { plan_digest },
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

/// `ended`: the run's state from the trail, for a run that ended before this
/// client could follow it (the headless output then says how it ended).
pub(crate) async fn client(
    sock: &Path,
    console: Console,
    cfg: &Config,
    a: &crate::cli::ClientArgs,
    auto_start: bool,
    ended: &(dyn Fn() -> Option<crate::run::RunState> + Sync),
) -> Result<i32, InputError> {
    if a.no_tui {
        let format = match a.format {
            crate::cli::LineFormat::Json => LineFormat::Json,
            crate::cli::LineFormat::Text => LineFormat::Text,
        };
        let mut out = std::io::stdout();
        let header = console.header.clone();
        // A stream that ended (or broke) before it said anything: the run
        // ended first, and the trail says how.
        let mut c = match headless::follow(sock, console, format, auto_start, &mut out).await {
            Ok(c) => c,
            Err(e) => match ended().filter(|s| s.phase.is_terminal()) {
                Some(_) => Console::new(header, None),
                None => return Err(input(e)),
            },
        };
        if c.state.run.is_empty()
            && let Some(st) = ended()
        {
            c.state = st;
        }
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

pub(crate) fn spawn_supervisor(run_dir: &Path) -> Result<std::process::Child, InputError> {
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
        .map_err(|e| InputError(format!("starting the supervisor: {e}")))
}

/// Ends a supervisor this process started (for a run nothing will happen to).
pub(crate) fn stop_supervisor(child: &mut std::process::Child) {
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_child(child),
        rustix::process::Signal::TERM,
    );
    for _ in 0..50 {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits for the supervisor's socket. A supervisor that exits first refused
/// the run: its last words (from supervisor.log) become this command's error.
pub(crate) async fn wait_for(
    sock: &Path,
    run_dir: &Path,
    mut child: Option<&mut std::process::Child>,
) -> Result<(), InputError> {
    for _ in 0..400 {
        if Client::connect(sock).await.is_ok() {
            return Ok(());
        }
        if let Some(c) = child.as_mut()
            && let Ok(Some(status)) = c.try_wait()
        {
            let log = std::fs::read_to_string(run_dir.join("supervisor.log")).unwrap_or_default();
            let last = log
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no output")
                .trim()
                .trim_start_matches("cutover: ")
                .to_string();
            return Err(InputError(format!(
                "the supervisor refused the run ({status}): {last}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(InputError(format!(
        "the supervisor did not open {} (see supervisor.log in {})",
        sock.display(),
        run_dir.display()
    )))
}

pub(crate) async fn current_state(sock: &Path) -> Result<crate::run::RunState, InputError> {
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
/// approved checksums at start). The simulator is never available for a
/// configured target.
pub fn executor(
    name: &str,
    target: &TargetConfig,
    clock: Arc<dyn Clock>,
) -> Result<Box<dyn Executor>, InputError> {
    let _ = clock;
    check_executor(name, target)?;
    match name {
        // Each driver takes its migrations from the run directory at start
        // (or recovery), verified against the approved checksums, and each
        // migration's `executor=` directive picks its driver.
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
/// The relay, what the control socket hands forwarded Slack interactions to,
/// and the run's entry among this user's live relays (kept while it runs).
type SlackStarted = (
    tokio::task::JoinHandle<crate::slack::relay::RelayReport>,
    Arc<dyn supervisor::ForwardedInteractions>,
    Option<crate::slack::route::Registration>,
);

fn start_slack(
    run_dir: &Path,
    sup: &SuperviseSpec,
    cfg: &Config,
    requests: &tokio::sync::mpsc::Sender<crate::run::core::Request>,
    shutdown: CancellationToken,
) -> Result<SlackStarted, InputError> {
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
    let has_bot = tokens.bot.is_some();
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
    // Slack may hand this relay clicks for this user's other live runs.
    let router = crate::slack::route::Router::new(
        run_dir.parent().unwrap_or(Path::new(".")),
        &crate::slack::route::Router::default_registry(),
        &sup.run,
    );
    let registration = if has_bot {
        router
            .register(&sup.run, run_dir)
            .map_err(|e| eprintln!("slack: other runs' relays cannot forward clicks here: {e}"))
            .ok()
    } else {
        None
    };
    let interactions = Arc::new(interactions.with_router(router));
    let forwarded = interactions.forwarded();
    let host = SlackHost::new(api, interactions);
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
        target: sup.target.clone(),
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
    let relay = tokio::spawn(async move {
        match rx.await {
            Ok((state, sub)) => host
                .spawn_for_run(setup, requests, state, sub, shutdown)
                .await
                .unwrap_or_default(),
            Err(_) => Default::default(),
        }
    });
    Ok((relay, forwarded, registration))
}

/// `cutover supervise --run-dir DIR` (hidden): the per-run supervisor process.
pub fn supervise(a: &SuperviseArgs) -> Result<i32, InputError> {
    let spec_path = a.run_dir.join("run.json");
    let text = std::fs::read_to_string(&spec_path)
        .map_err(|e| InputError(format!("{}: {e}", spec_path.display())))?;
    let sup: SuperviseSpec = serde_json::from_str(&text)
        .map_err(|e| InputError(format!("{}: {e}", spec_path.display())))?;
    let _lock = supervisor::lock_run_dir(&a.run_dir).map_err(input)?;
    let _ = std::fs::write(
        a.run_dir.join("supervisor.pid"),
        format!("{}\n", std::process::id()),
    );
    let cfg = Config::load(&sup.config).map_err(input)?;
    let key = AuditKey::load(sup.key_file.as_deref()).map_err(input)?;
    if let Some(parent) = sup.trail.parent() {
        std::fs::create_dir_all(parent).map_err(input)?;
    }
    let entries: Vec<Entry> = if sup.trail.exists() {
        let (entries, report) = audit::read_file(&sup.trail, &key).map_err(input)?;
        if let Some(p) = &report.problem {
            return Err(InputError(format!(
                "audit trail {} does not verify: {p}. Nothing is appended to it until an operator seals the damage with `cutover audit repair --reason …`",
                sup.trail.display()
            )));
        }
        entries.into_iter().map(|v| v.entry).collect()
    } else {
        Vec::new()
    };
    let staging = audit::staging_successes(entries.iter());
    let records: Vec<crate::run::EventRecord> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Run { record } if record.run == sup.run => Some(record.clone()),
            _ => None,
        })
        .collect();
    let known = !records.is_empty();
    // Everything that decides whether and how the run goes, derived again
    // from the approved bytes, the rules and cutover.toml.
    // run.json is the requester's file: it may not bring rules of its own.
    if let Some(r) = &sup.rules {
        return Err(InputError(format!(
            "run {} refused: run.json names a rules file ({}); a run's rules come from cutover.toml only",
            sup.run,
            r.display()
        )));
    }
    let runs_dir = a.run_dir.parent().unwrap_or(Path::new("."));
    let rehearsals = rederive::Rehearsals {
        entries: &entries,
        runs: runs_dir,
    };
    let derived = rederive::derive(
        &a.run_dir,
        &cfg,
        &sup.target,
        &sup.versions,
        None,
        Some(rehearsals),
    )?;
    if known {
        let recorded = crate::run::RunState::replay(&records);
        let started = !recorded.phase.is_pre_start();
        if let Some(spec) = &recorded.spec
            && let Some(m) = rederive::mismatch(spec, &derived.spec, started)
        {
            return Err(InputError(format!("run {} refused: {m}", sup.run)));
        }
    } else if derived.spec.binding.plan_digest != sup.plan_digest {
        return Err(InputError(format!(
            "run {} refused: plan digest: run.json expects {}, the stored migrations give {}",
            sup.run, sup.plan_digest, derived.spec.binding.plan_digest
        )));
    } else {
        // What the console and Slack show is the supervisor's own plan.
        write_json(&a.run_dir.join("plan.json"), &derived.plan)?;
    }
    let (trail, _) = Trail::open(&sup.trail, key).map_err(input)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let target = cfg.target(&sup.target).map_err(input)?.clone();
    let exec = executor(&derived.spec.executor, &target, clock.clone())?;
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
            RunCore::create(&sup.run, derived.spec.clone(), deps, trail, exec)
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
        let (relay, forwarded, _registered) =
            start_slack(&a.run_dir, &sup, &cfg, &tx, shutdown.clone())?;
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
        let state = supervisor::supervise_with(
            &a.run_dir,
            core,
            (tx, rx),
            shutdown.clone(),
            sup.service,
            Some(forwarded),
        )
        .await
        .map_err(input)?;
        // The run is over: let the relay deliver the final state before leaving.
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
        shutdown.cancel();
        eprintln!("run {} ended: {}", sup.run, state.phase);
        Ok(headless::exit_code(state.phase))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A supervisor that hangs up before saying anything: the run ended
    /// before the client could follow it.
    async fn silent_supervisor(dir: &Path) -> PathBuf {
        let sock = dir.join("control.sock");
        let listener = tokio::net::UnixListener::bind(&sock).unwrap_or_else(|e| panic!("{e}"));
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                drop(s);
            }
        });
        sock
    }

    fn headless() -> crate::cli::ClientArgs {
        crate::cli::ClientArgs {
            no_tui: true,
            format: crate::cli::LineFormat::Text,
            theme: None,
            read_only: false,
        }
    }

    #[tokio::test]
    async fn a_run_that_ended_before_it_was_followed_reports_its_end_from_the_trail() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let sock = silent_supervisor(dir.path()).await;
        let console = || Console::new(crate::tui::model::HeaderInfo::default(), None);
        let cfg = Config::default();
        // The trail says the run is still going: the broken stream is an error.
        let going = || {
            Some(crate::run::RunState {
                run: "t-1".into(),
                phase: Phase::Running,
                ..Default::default()
            })
        };
        let r = client(&sock, console(), &cfg, &headless(), false, &going).await;
        assert!(r.is_err(), "a running run's broken stream was hidden");
        // The trail says it succeeded: exit 0, not "run PLANNED" and exit 1.
        let ended = || {
            Some(crate::run::RunState {
                run: "t-1".into(),
                phase: Phase::Succeeded,
                ..Default::default()
            })
        };
        let code = client(&sock, console(), &cfg, &headless(), false, &ended)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(code, 0);
    }
}
