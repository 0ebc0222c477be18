//! The async loop that owns one run.
//!
//! It receives commands and subscriptions over one mpsc channel and executor
//! updates over another, decides with the pure [`decide`](super::decide)
//! functions, appends every event to the audit trail (fsync) *before*
//! publishing it, and only then tells the executor to act. Ticks drive
//! expiry, windows and lag polling.

use super::command::{Command, CommandEnvelope};
use super::decide::{
    Context, Decision, decide, decide_exec, lag_control, refuse_outside, scrub, watches_lag,
};
use super::events::{Event, EventRecord, RunSpec, Sample};
use super::fanout::{Fanout, Published, Subscription};
use super::sampling::SampleGate;
use super::state::{Phase, RunState};
use crate::audit::{AuditError, Entry, Trail, read_file};
use crate::exec::{Control, ExecJob, ExecUpdate, Executor};
use crate::lag::{LagPoller, LagSample, over_limit};
use crate::policy::{Actor, Clock, Directory, PolicyConfig, Surface};
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Max lag when nobody set one (gh-ost's default is 1.5 s).
const DEFAULT_MAX_LAG_MILLIS: u64 = 1500;

/// Run-core failures: the trail could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The audit trail failed; nothing is published or done without it.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The run is not in the trail.
    #[error("run {0} is not in the audit trail")]
    UnknownRun(String),
}

/// The answer to a command.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// Recorded as these sequence numbers.
    Accepted {
        /// Sequence numbers of the events.
        seqs: Vec<u64>,
    },
    /// Refused and recorded.
    Refused {
        /// Why.
        reason: String,
    },
    /// A transport duplicate, dropped.
    Duplicate,
    /// The run core could not record it.
    Error {
        /// What failed.
        message: String,
    },
}

/// Requests to the run core.
#[derive(Debug)]
pub enum Request {
    /// A command and where to send the answer.
    Command(CommandEnvelope, oneshot::Sender<Reply>),
    /// A new subscriber: gets the state now and every later item.
    Subscribe {
        /// Queue capacity for this subscriber.
        capacity: usize,
        /// Where to send the state and the subscription.
        reply: oneshot::Sender<(RunState, Subscription)>,
    },
    /// A console attaching: like `Subscribe`, plus what was published
    /// before (recent events and samples), so it shows the run's history.
    Attach {
        /// Queue capacity for this subscriber.
        capacity: usize,
        /// Where to send the state, the backlog and the subscription.
        reply: oneshot::Sender<(RunState, super::backlog::Backlog, Subscription)>,
    },
    /// A refusal decided at the edge (a click on an out-of-date render), to
    /// be recorded as the run's own refusal.
    Refuse {
        /// The command as the human sent it.
        envelope: CommandEnvelope,
        /// Why it is refused.
        reason: String,
        /// Where to send the answer.
        reply: oneshot::Sender<Reply>,
    },
    /// Slack user-group membership, as the relay fetched it (`usergroups.users.list`).
    SetGroupMembers {
        /// Group id or handle, as in the policy.
        group: String,
        /// Member Slack user ids.
        users: Vec<String>,
    },
}

/// Everything a run core needs besides its trail and executor.
#[derive(Clone)]
pub struct CoreDeps {
    /// The policy.
    pub policy: PolicyConfig,
    /// Actor → person.
    pub directory: Directory,
    /// Plan digests that succeeded on staging.
    pub staging_successes: BTreeSet<String>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The run's directory (executor files).
    pub run_dir: PathBuf,
    /// Postpone the cut-over until commanded.
    pub postpone_cut_over: bool,
    /// How often ticks run (windows, expiry, lag polls).
    pub tick: Duration,
}

/// One run, owned.
pub struct RunCore {
    state: RunState,
    deps: CoreDeps,
    trail: Trail,
    fanout: Fanout,
    executor: Box<dyn Executor>,
    lag: Option<Box<dyn LagPoller>>,
    /// Between lag polls (`[targets.lag] interval`); the tick when unset.
    lag_every: Option<Duration>,
    gate: SampleGate,
    lag_throttling: bool,
    /// The executor's latest status with a description (recorded when it finishes).
    last_status: Option<crate::exec::ExecStatus>,
    exec_tx: mpsc::Sender<ExecUpdate>,
    exec_rx: mpsc::Receiver<ExecUpdate>,
}

impl RunCore {
    /// A new run of `spec`, recorded as `Created`.
    pub fn create(
        run: &str,
        spec: RunSpec,
        deps: CoreDeps,
        trail: Trail,
        executor: Box<dyn Executor>,
    ) -> Result<RunCore, CoreError> {
        let mut core = RunCore::with(RunState::default(), deps, trail, executor);
        core.state.run = run.to_string();
        core.record(vec![Event::Created { spec }], &Actor::System, None)?;
        Ok(core)
    }

    /// Rebuilds a run from the trail after the supervisor died. If it was
    /// executing, it is recorded as interrupted and the executor is asked
    /// what really happened before anything continues.
    pub async fn recover(
        run: &str,
        deps: CoreDeps,
        trail: Trail,
        executor: Box<dyn Executor>,
    ) -> Result<RunCore, CoreError> {
        let (entries, _) = read_file(trail.path(), trail_key(&trail))?;
        let records: Vec<EventRecord> = entries
            .into_iter()
            .filter_map(|e| match e.entry {
                Entry::Run { record } if record.run == run => Some(record),
                _ => None,
            })
            .collect();
        if records.is_empty() {
            return Err(CoreError::UnknownRun(run.to_string()));
        }
        let state = RunState::replay(&records);
        let mut core = RunCore::with(state, deps, trail, executor);
        // A console attaching after the restart sees the run's history.
        core.fanout.seed(&records);
        let phase = core.state.phase;
        if phase.is_executing() || phase == Phase::Interrupted {
            if phase != Phase::Interrupted {
                core.record(
                    vec![Event::Interrupted {
                        reason: format!("the supervisor stopped while the run was {phase}"),
                    }],
                    &Actor::System,
                    None,
                )?;
            }
            let job = core.job();
            let status = core.executor.recover(job, core.exec_tx.clone()).await;
            let events = match status {
                Ok(st) => {
                    let events = decide_exec(&core.state, &ExecUpdate::Status(st.clone()));
                    if events.is_empty() && st.progress.as_ref().is_some_and(|p| p.detail.is_some())
                    {
                        // What the executor found (where a resume picks up) is recorded.
                        vec![Event::Sampled {
                            sample: Sample::Progress { status: st },
                            why: "recovery".to_string(),
                        }]
                    } else {
                        events
                    }
                }
                Err(e) => vec![Event::Interrupted {
                    reason: format!(
                        "the executor cannot tell what happened: {}",
                        scrub(&e.to_string())
                    ),
                }],
            };
            core.record(events, &Actor::System, None)?;
        }
        Ok(core)
    }

    fn with(state: RunState, deps: CoreDeps, trail: Trail, executor: Box<dyn Executor>) -> RunCore {
        let (exec_tx, exec_rx) = mpsc::channel(256);
        RunCore {
            state,
            deps,
            trail,
            fanout: Fanout::default(),
            executor,
            lag: None,
            lag_every: None,
            gate: SampleGate::default(),
            lag_throttling: false,
            last_status: None,
            exec_tx,
            exec_rx,
        }
    }

    /// Adds a replica lag poller, read every tick.
    pub fn with_lag(mut self, poller: Box<dyn LagPoller>) -> RunCore {
        self.lag = Some(poller);
        self
    }

    /// Adds a replica lag poller read every `interval` (`[targets.lag] interval`).
    pub fn with_lag_every(mut self, poller: Box<dyn LagPoller>, interval: Duration) -> RunCore {
        self.lag = Some(poller);
        self.lag_every = Some(interval);
        self
    }

    /// The current state.
    pub fn state(&self) -> &RunState {
        &self.state
    }

    /// A subscriber from now on.
    pub fn subscribe(&mut self, capacity: usize) -> Subscription {
        self.fanout.subscribe(capacity)
    }

    fn job(&self) -> ExecJob {
        ExecJob {
            run: self.state.run.clone(),
            spec: self.state.spec.clone().unwrap_or_else(|| RunSpec {
                binding: crate::policy::Binding {
                    plan_digest: String::new(),
                    target: String::new(),
                },
                environment: crate::policy::Environment::Dev,
                risk: crate::model::Risk::Low,
                versions: Vec::new(),
                estimated_seconds: 0.0,
                tables: Vec::new(),
                executor: String::new(),
            }),
            run_dir: self.deps.run_dir.clone(),
            postpone_cut_over: self.deps.postpone_cut_over,
            chunk_size: self.state.chunk_size,
            max_lag_millis: self.state.max_lag_millis,
            running: self.state.executor_migration.clone(),
        }
    }

    /// Appends, folds, then publishes each event — in that order.
    fn record(
        &mut self,
        events: Vec<Event>,
        actor: &Actor,
        dedup: Option<&str>,
    ) -> Result<Vec<EventRecord>, CoreError> {
        let now = self.deps.clock.now();
        let recs = EventRecord::stamp(
            &self.state.run,
            self.state.last_seq,
            events,
            actor,
            dedup,
            now,
        );
        for r in &recs {
            let anchor = self.trail.append(&Entry::Run { record: r.clone() })?;
            self.state = std::mem::take(&mut self.state).apply(r);
            self.fanout.publish(Published::Event {
                record: r.clone(),
                anchor,
            });
        }
        Ok(recs)
    }

    fn context_now(&self) -> DateTime<Utc> {
        self.deps.clock.now()
    }

    /// Decides, records and acts on one command.
    pub async fn command(&mut self, env: CommandEnvelope) -> Result<Reply, CoreError> {
        let now = self.context_now();
        let ctx = Context {
            policy: &self.deps.policy,
            directory: &self.deps.directory,
            staging_successes: &self.deps.staging_successes,
            capabilities: self.executor.capabilities(),
            now,
        };
        let before = self.state.phase;
        let decision = decide(&self.state, &env, &ctx);
        let reply = match &decision {
            Decision::Duplicate => return Ok(Reply::Duplicate),
            Decision::Refused(_) => Reply::Refused {
                reason: decision.refusal().unwrap_or_default().to_string(),
            },
            Decision::Accepted(_) => Reply::Accepted { seqs: Vec::new() },
        };
        let recs = self.record(decision.into_events(), &env.actor, env.dedup.as_deref())?;
        for r in &recs {
            self.effect(&r.event, before).await?;
        }
        Ok(match reply {
            Reply::Accepted { .. } => Reply::Accepted {
                seqs: recs.iter().map(|r| r.seq).collect(),
            },
            other => other,
        })
    }

    /// Records a refusal decided at the edge (see [`Request::Refuse`]).
    pub fn refuse(&mut self, env: CommandEnvelope, reason: &str) -> Result<Reply, CoreError> {
        let ctx = Context {
            policy: &self.deps.policy,
            directory: &self.deps.directory,
            staging_successes: &self.deps.staging_successes,
            capabilities: self.executor.capabilities(),
            now: self.context_now(),
        };
        let decision = refuse_outside(&self.state, &env, &ctx, reason);
        if decision == Decision::Duplicate {
            return Ok(Reply::Duplicate);
        }
        let reason = decision.refusal().unwrap_or_default().to_string();
        self.record(decision.into_events(), &env.actor, env.dedup.as_deref())?;
        Ok(Reply::Refused { reason })
    }

    /// Tells the executor what a recorded event asks of it.
    async fn effect(&mut self, event: &Event, before: Phase) -> Result<(), CoreError> {
        let table = self
            .state
            .spec
            .as_ref()
            .and_then(|s| s.tables.first().cloned());
        let control = match event {
            Event::Started { .. } => {
                let job = self.job();
                if let Err(e) = self.executor.start(job, self.exec_tx.clone()).await {
                    self.record(
                        vec![Event::Failed {
                            error: format!("the executor did not start: {}", scrub(&e.to_string())),
                            leftovers: Vec::new(),
                        }],
                        &Actor::System,
                        None,
                    )?;
                }
                return Ok(());
            }
            Event::AbortRequested { .. } if before == Phase::Interrupted => {
                // Nothing is running: end it here with what was left behind.
                let leftovers = self.executor.leftovers().await.unwrap_or_default();
                let reason = self.state.abort_reason.clone().unwrap_or_default();
                self.record(
                    vec![Event::Aborted { reason, leftovers }],
                    &Actor::System,
                    None,
                )?;
                return Ok(());
            }
            Event::PauseRequested { .. } => Control::Pause,
            Event::ResumeRequested { .. } => Control::Resume,
            Event::CutOverRequested { .. } => Control::CutOver { table },
            Event::AbortRequested { .. } => Control::Abort { table },
            Event::Tuned {
                chunk_size: Some(rows),
                ..
            } if self.state.phase.is_executing() => Control::SetChunkSize { rows: *rows },
            Event::Tuned {
                max_lag_millis: Some(millis),
                ..
            } if self.state.phase.is_executing() => Control::SetMaxLag { millis: *millis },
            _ => return Ok(()),
        };
        if let Err(e) = self.executor.control(control).await {
            self.record(
                vec![Event::Refused {
                    command: super::command::CommandKind::Tick,
                    person: "system".into(),
                    surface: Surface::System,
                    reason: format!("the executor refused: {}", scrub(&e.to_string())),
                }],
                &Actor::System,
                None,
            )?;
        }
        Ok(())
    }

    async fn exec_update(&mut self, u: ExecUpdate) -> Result<(), CoreError> {
        if let ExecUpdate::Finished(_) = &u
            && let Some(st) = self.last_status.take()
            && self.state.phase.is_executing()
        {
            // The executor's closing status (its summary: steps applied,
            // backfill ranges, rows) belongs in the trail.
            self.record(
                vec![Event::Sampled {
                    sample: Sample::Progress { status: st },
                    why: "final".to_string(),
                }],
                &Actor::System,
                None,
            )?;
        }
        if let ExecUpdate::Lag(s) = &u {
            // The tool's own view of lag: charted and sampled like the poller's.
            let max = self.state.max_lag_millis.unwrap_or(DEFAULT_MAX_LAG_MILLIS) as f64 / 1000.0;
            let why = self.gate.lag(s, max);
            let sample = Sample::Lag { sample: s.clone() };
            self.fanout.publish(Published::Sample(sample.clone()));
            if let Some(why) = why
                && self.state.phase.is_executing()
            {
                self.record(
                    vec![Event::Sampled {
                        sample,
                        why: why.to_string(),
                    }],
                    &Actor::System,
                    None,
                )?;
            }
            return Ok(());
        }
        if let ExecUpdate::Status(st) = &u {
            let sample = Sample::Progress { status: st.clone() };
            self.fanout.publish(Published::Sample(sample.clone()));
            let described = st.progress.as_ref().is_some_and(|p| p.detail.is_some());
            self.last_status = described.then(|| st.clone());
            // What an executor says as it starts (warnings, where a resumed
            // run picks up) is recorded, not only sampled.
            let starting = described && st.phase == crate::exec::ExecPhase::Starting;
            if self.state.phase.is_executing()
                && let Some(why) = if starting {
                    Some("starting")
                } else {
                    self.gate.progress(st.at)
                }
            {
                self.record(
                    vec![Event::Sampled {
                        sample,
                        why: why.to_string(),
                    }],
                    &Actor::System,
                    None,
                )?;
            }
        }
        let events = decide_exec(&self.state, &u);
        self.record(events, &Actor::System, None)?;
        Ok(())
    }

    async fn tick(&mut self) -> Result<(), CoreError> {
        self.command(CommandEnvelope::new(
            Actor::System,
            Surface::System,
            Command::Tick,
        ))
        .await?;
        Ok(())
    }

    /// One poll's readings: published, recorded at the bounded rate, and
    /// turned into throttle controls for drivers that do not watch replicas.
    async fn lag_samples(&mut self, samples: Vec<LagSample>) -> Result<(), CoreError> {
        if !watches_lag(self.state.phase) {
            return Ok(());
        }
        let max = self.state.max_lag_millis.unwrap_or(DEFAULT_MAX_LAG_MILLIS) as f64 / 1000.0;
        let mut over = Vec::new();
        for s in samples {
            if over_limit(&s, max) {
                over.push(match s.seconds {
                    Some(v) => format!("{} lag={v:.2}s", s.replica),
                    None => format!("{} lag unknown", s.replica),
                });
            }
            let why = self.gate.lag(&s, max);
            let sample = Sample::Lag { sample: s };
            self.fanout.publish(Published::Sample(sample.clone()));
            if let Some(why) = why {
                self.record(
                    vec![Event::Sampled {
                        sample,
                        why: why.to_string(),
                    }],
                    &Actor::System,
                    None,
                )?;
            }
        }
        // At a postponed cut-over nothing copies: nothing to throttle.
        if !self.executor.capabilities().lag_throttle
            && self.state.phase != Phase::ReadyToCutOver
            && let Some(c) = lag_control(&over, self.lag_throttling)
        {
            self.lag_throttling = !over.is_empty();
            let _ = self.executor.control(c).await;
        }
        Ok(())
    }

    /// Runs until the run ends or `shutdown` fires; returns the final state.
    pub async fn run(
        mut self,
        mut requests: mpsc::Receiver<Request>,
        shutdown: CancellationToken,
    ) -> Result<RunState, CoreError> {
        let mut tick = tokio::time::interval(self.deps.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut requests_open = true;
        // Replicas are read in a task of their own: a hung replica (a poll
        // waiting out its timeout) never delays a command.
        let (lag_tx, mut lag_rx) = mpsc::channel::<Vec<LagSample>>(4);
        let lag_task = self.lag.take().map(|mut poller| {
            let every = self.lag_every.unwrap_or(self.deps.tick);
            tokio::spawn(async move {
                let mut iv = tokio::time::interval(every);
                iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    iv.tick().await;
                    let samples = poller.poll().await;
                    if lag_tx.send(samples).await.is_err() {
                        break;
                    }
                }
            })
        });
        let mut lag_open = lag_task.is_some();
        let result = async {
            while !self.state.phase.is_terminal() {
                tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => break,
                    Some(u) = self.exec_rx.recv() => self.exec_update(u).await?,
                    r = requests.recv(), if requests_open => match r {
                        Some(Request::Command(env, reply)) => {
                            let answer = match self.command(env).await {
                                Ok(a) => a,
                                Err(e) => {
                                    let _ = reply.send(Reply::Error { message: e.to_string() });
                                    return Err(e);
                                }
                            };
                            let _ = reply.send(answer);
                        }
                        Some(Request::Subscribe { capacity, reply }) => {
                            let sub = self.fanout.subscribe(capacity);
                            let _ = reply.send((self.state.clone(), sub));
                        }
                        Some(Request::Attach { capacity, reply }) => {
                            let (backlog, sub) = self.fanout.attach(capacity);
                            let _ = reply.send((self.state.clone(), backlog, sub));
                        }
                        Some(Request::Refuse { envelope, reason, reply }) => {
                            let answer = self.refuse(envelope, &reason);
                            let _ = reply.send(match &answer {
                                Ok(a) => a.clone(),
                                Err(e) => Reply::Error { message: e.to_string() },
                            });
                            answer?;
                        }
                        Some(Request::SetGroupMembers { group, users }) => {
                            self.deps.directory.set_group_members(&group, users);
                        }
                        // Every sender is gone: the run goes on by itself.
                        None => requests_open = false,
                    },
                    _ = tick.tick() => self.tick().await?,
                    l = lag_rx.recv(), if lag_open => match l {
                        Some(samples) => self.lag_samples(samples).await?,
                        None => lag_open = false,
                    },
                }
            }
            Ok::<(), CoreError>(())
        }
        .await;
        if let Some(t) = lag_task {
            t.abort();
        }
        result?;
        self.fanout.close();
        Ok(self.state)
    }
}

fn trail_key(trail: &Trail) -> &crate::audit::AuditKey {
    trail.key()
}

/// A clock that follows tokio's (pausable) time from a fixed UTC start, so
/// timestamps are deterministic in tests and the demo.
#[derive(Debug)]
pub struct TokioClock {
    base: DateTime<Utc>,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// Starts at `base` now.
    pub fn new(base: DateTime<Utc>) -> TokioClock {
        TokioClock {
            base,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = self.start.elapsed();
        self.base + chrono::Duration::from_std(elapsed).unwrap_or_default()
    }
}
