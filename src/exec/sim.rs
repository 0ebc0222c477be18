//! A simulated executor: copies rows over (tokio) time and honours every
//! control a real online-schema-change tool offers. Deterministic under
//! `tokio::time::pause()`, so tests and the demo need no database.
//!
//! [`SimExecutor::gh_ost_shaped`] makes it speak as the gh-ost driver does
//! (the demo's run): gh-ost's capabilities, announced as the run's executor;
//! it reads the replicas itself (the readings a [`Tee`] shares), throttles on
//! lag by itself with gh-ost's reason, reports the inspected replica's lag
//! as the tool's own reading, and gives an ETA — so the console and Slack
//! show what a real gh-ost run shows.
//!
//! It saves its progress to `<run_dir>/sim-state.json` on every tick, so that
//! after the supervisor is killed `recover` can say what really happened: the
//! copy stopped with the process (`not_running`, ghost table left behind), or
//! it had already finished.

use super::{
    Capabilities, Control, ExecError, ExecJob, ExecPhase, ExecStatus, ExecUpdate, Executor,
    Leftover, Outcome, OutcomeKind, Progress,
};
use crate::lag::{LagPoller, LagSample};
use crate::policy::Clock;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// How the simulation behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Rows to copy.
    pub rows_total: u64,
    /// Chunks copied per tick.
    pub chunks_per_tick: u64,
    /// Initial chunk size.
    pub chunk_size: u32,
    /// Tick length (simulated copy cadence and status interval).
    pub tick: Duration,
    /// Fail when this many rows are copied.
    pub fail_at_rows: Option<u64>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            rows_total: 100_000,
            chunks_per_tick: 5,
            chunk_size: 1000,
            tick: Duration::from_secs(1),
            fail_at_rows: None,
        }
    }
}

/// gh-ost's `--max-lag-millis` default.
const GH_OST_MAX_LAG_MILLIS: u64 = 1500;

/// The label of the gh-ost-shaped simulation (the demo's executor).
pub const GH_OST_SHAPED: &str = "sim (gh-ost-shaped)";

/// What surfaces say about the gh-ost-shaped simulation's controls.
pub const GH_OST_SHAPED_NOTE: &str = "simulated gh-ost: pause = throttle, resume = no-throttle, cut over = unpostpone, abort = panic";

/// The latest replica readings, shared between the run's own lag poller and
/// the gh-ost-shaped simulation (which, like gh-ost, reads the replicas itself).
pub type Readings = Arc<Mutex<Vec<LagSample>>>;

/// A lag poller that also leaves its latest readings in [`Readings`].
pub struct Tee {
    inner: Box<dyn LagPoller>,
    latest: Readings,
}

impl Tee {
    /// Wraps `inner`; the readings are shared with whoever holds the returned [`Readings`].
    pub fn new(inner: Box<dyn LagPoller>) -> (Tee, Readings) {
        let latest: Readings = Arc::default();
        (
            Tee {
                inner,
                latest: latest.clone(),
            },
            latest,
        )
    }
}

impl LagPoller for Tee {
    fn poll(&mut self) -> BoxFuture<'_, Vec<LagSample>> {
        Box::pin(async move {
            let got = self.inner.poll().await;
            *self.latest.lock().unwrap_or_else(|p| p.into_inner()) = got.clone();
            got
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct SimState {
    copied: u64,
    total: u64,
    chunk_size: u32,
    max_lag_millis: Option<u64>,
    paused: bool,
    throttle: Option<String>,
    /// gh-ost-shaped: throttled by its own look at the replicas.
    #[serde(default)]
    lag_throttle: Option<String>,
    postpone: bool,
    cut_over: bool,
    table: String,
    finished: Option<Outcome>,
}

/// The simulated executor.
pub struct SimExecutor {
    cfg: SimConfig,
    clock: Arc<dyn Clock>,
    state: Arc<Mutex<SimState>>,
    controls: Option<mpsc::UnboundedSender<Control>>,
    state_file: Option<PathBuf>,
    /// gh-ost-shaped: the replicas it reads (see the module doc).
    ghost: Option<Readings>,
}

impl SimExecutor {
    /// A simulator with its own settings and clock (for timestamps).
    pub fn new(cfg: SimConfig, clock: Arc<dyn Clock>) -> SimExecutor {
        SimExecutor {
            cfg,
            clock,
            state: Arc::new(Mutex::new(SimState::default())),
            controls: None,
            state_file: None,
            ghost: None,
        }
    }

    /// Speaks as the gh-ost driver does (see the module doc), reading the
    /// replicas from `replicas`.
    pub fn gh_ost_shaped(mut self, replicas: Readings) -> SimExecutor {
        self.ghost = Some(replicas);
        self
    }

    fn snapshot(&self) -> SimState {
        lock(&self.state).clone()
    }
}

fn lock(m: &Mutex<SimState>) -> std::sync::MutexGuard<'_, SimState> {
    // The state stays consistent field by field; a panicked holder cannot tear it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn ghost(table: &str) -> Vec<Leftover> {
    let base = table.rsplit('.').next().unwrap_or(table);
    vec![Leftover {
        kind: "table".into(),
        name: format!("_{base}_gho"),
        cleanup: Some(format!("DROP TABLE IF EXISTS _{base}_gho;")),
    }]
}

fn status_of(s: &SimState, clock: &dyn Clock) -> ExecStatus {
    let phase = if let Some(o) = &s.finished {
        match &o.kind {
            OutcomeKind::Succeeded => ExecPhase::Succeeded,
            OutcomeKind::Failed { error } => ExecPhase::Failed {
                error: error.clone(),
            },
            OutcomeKind::Aborted => ExecPhase::Aborted,
        }
    } else if s.copied >= s.total && s.cut_over {
        ExecPhase::CuttingOver
    } else if s.copied >= s.total && s.postpone {
        ExecPhase::PostponingCutOver
    } else if s.paused {
        ExecPhase::Paused
    } else if let Some(r) = s.throttle.as_ref().or(s.lag_throttle.as_ref()) {
        ExecPhase::Throttled { reason: r.clone() }
    } else {
        ExecPhase::Copying
    };
    let percent = if s.total == 0 {
        100.0
    } else {
        s.copied as f64 * 100.0 / s.total as f64
    };
    ExecStatus {
        phase,
        progress: Some(Progress {
            rows_copied: s.copied,
            rows_total: Some(s.total),
            percent: Some(percent),
            eta_seconds: None,
            chunk_size: Some(s.chunk_size),
            max_lag_millis: s.max_lag_millis,
            detail: None,
        }),
        at: clock.now(),
    }
}

fn apply(s: &mut SimState, c: Control) {
    match c {
        Control::Pause => s.paused = true,
        Control::Resume => s.paused = false,
        Control::Throttle { reason } => s.throttle = Some(reason),
        Control::Unthrottle => s.throttle = None,
        Control::CutOver { .. } => s.cut_over = true,
        Control::Abort { .. } => {
            s.finished = Some(Outcome {
                kind: OutcomeKind::Aborted,
                leftovers: ghost(&s.table),
            })
        }
        Control::SetChunkSize { rows } => s.chunk_size = rows,
        Control::SetMaxLag { millis } => s.max_lag_millis = Some(millis),
    }
}

/// One tick of copying; returns the outcome when the run ends in this tick.
fn step(s: &mut SimState, cfg: &SimConfig) {
    if s.finished.is_some() {
        return;
    }
    if s.copied >= s.total {
        if s.cut_over || !s.postpone {
            if s.cut_over {
                s.finished = Some(Outcome {
                    kind: OutcomeKind::Succeeded,
                    leftovers: Vec::new(),
                });
            } else {
                // Not postponed: cut over on the next tick.
                s.cut_over = true;
            }
        }
        return;
    }
    if s.paused || s.throttle.is_some() || s.lag_throttle.is_some() {
        return;
    }
    s.copied = (s.copied + u64::from(s.chunk_size) * cfg.chunks_per_tick).min(s.total);
    if cfg.fail_at_rows.is_some_and(|f| s.copied >= f) {
        s.finished = Some(Outcome {
            kind: OutcomeKind::Failed {
                error: "simulated failure: lost connection to the primary".into(),
            },
            leftovers: ghost(&s.table),
        });
    }
}

/// gh-ost's look at the replicas before a tick: throttled, with gh-ost's
/// reason, while any reading is over the max lag or unknown (gh-ost's
/// `--throttle-control-replicas`), and the inspected (first) replica's lag as
/// the tool reports it (`Lag:`).
fn ghost_look(
    s: &mut SimState,
    readings: &[LagSample],
    now: chrono::DateTime<chrono::Utc>,
) -> Option<LagSample> {
    let max = s.max_lag_millis.unwrap_or(GH_OST_MAX_LAG_MILLIS) as f64 / 1000.0;
    s.lag_throttle = readings
        .iter()
        .find(|r| crate::lag::over_limit(r, max))
        .map(|r| match r.seconds {
            Some(v) => format!("{} replica-lag={v:.6}s", r.replica),
            None => format!("{} replica-lag=unknown", r.replica),
        });
    readings.first().map(|r| LagSample {
        replica: format!("{} (gh-ost)", r.replica),
        source: crate::lag::LagSource::Executor,
        at: now,
        ..r.clone()
    })
}

/// gh-ost's ETA: the rows left at the rows per tick (a tick lasting
/// `tick_seconds` of the run's clock), while copying.
fn ghost_eta(status: &mut ExecStatus, cfg: &SimConfig, chunk: u32, tick_seconds: f64) {
    let copying = matches!(status.phase, ExecPhase::Copying);
    if let Some(p) = status.progress.as_mut() {
        let per_tick = u64::from(chunk) * cfg.chunks_per_tick;
        p.eta_seconds = (copying && per_tick > 0).then(|| {
            let left = p.rows_total.unwrap_or(0).saturating_sub(p.rows_copied);
            left.div_ceil(per_tick) as f64 * tick_seconds
        });
    }
}

fn save(path: &Option<PathBuf>, s: &SimState) {
    if let (Some(p), Ok(text)) = (path, serde_json::to_string(s)) {
        // Best effort: only recovery after a crash reads it.
        let _ = std::fs::write(p, text);
    }
}

impl Executor for SimExecutor {
    fn name(&self) -> &'static str {
        "sim"
    }

    fn capabilities(&self) -> Capabilities {
        if self.ghost.is_some() {
            return super::ghost::CAPABILITIES;
        }
        Capabilities {
            pause: true,
            postpone_cut_over: true,
            set_chunk_size: true,
            set_max_lag: true,
            lag_throttle: false,
        }
    }

    fn notes(&self) -> Vec<String> {
        match self.ghost {
            Some(_) => vec![GH_OST_SHAPED_NOTE.to_string()],
            None => Vec::new(),
        }
    }

    fn start(
        &mut self,
        job: ExecJob,
        updates: mpsc::Sender<ExecUpdate>,
    ) -> BoxFuture<'_, Result<(), ExecError>> {
        Box::pin(async move {
            {
                let mut s = lock(&self.state);
                *s = SimState {
                    copied: 0,
                    total: self.cfg.rows_total,
                    chunk_size: job.chunk_size.unwrap_or(self.cfg.chunk_size),
                    max_lag_millis: job.max_lag_millis,
                    postpone: job.postpone_cut_over,
                    table: job.spec.tables.first().cloned().unwrap_or_default(),
                    ..SimState::default()
                };
            }
            self.state_file = Some(job.run_dir.join("sim-state.json"));
            if self.ghost.is_some() {
                // Announced like a driver taking over, so every surface
                // shows gh-ost's controls and the label.
                let _ = updates
                    .send(ExecUpdate::Executor {
                        migration: job
                            .spec
                            .versions
                            .iter()
                            .map(|v| v.version.clone())
                            .collect::<Vec<_>>()
                            .join(", "),
                        executor: GH_OST_SHAPED.to_string(),
                        capabilities: self.capabilities(),
                        notes: self.notes(),
                    })
                    .await;
            }
            let (tx, mut rx) = mpsc::unbounded_channel();
            self.controls = Some(tx);
            let state = self.state.clone();
            let cfg = self.cfg.clone();
            let clock = self.clock.clone();
            let file = self.state_file.clone();
            let ghost = self.ghost.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(cfg.tick);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tick.tick().await;
                let mut last_tick = None;
                loop {
                    tokio::select! {
                        c = rx.recv() => match c {
                            Some(c) => apply(&mut lock(&state), c),
                            None => return,
                        },
                        _ = tick.tick() => {
                            // A tick's length on the run's clock (the demo's runs faster than the wall).
                            let now = clock.now();
                            let tick_seconds = last_tick
                                .map(|l: chrono::DateTime<chrono::Utc>| (now - l).num_milliseconds() as f64 / 1000.0)
                                .filter(|d| *d > 0.0)
                                .unwrap_or(cfg.tick.as_secs_f64());
                            last_tick = Some(now);
                            let readings = ghost
                                .as_ref()
                                .map(|r| r.lock().unwrap_or_else(|p| p.into_inner()).clone());
                            let (status, done, tool_lag) = {
                                let mut s = lock(&state);
                                let tool_lag = readings
                                    .as_ref()
                                    .and_then(|r| ghost_look(&mut s, r, clock.now()));
                                step(&mut s, &cfg);
                                save(&file, &s);
                                let mut status = status_of(&s, clock.as_ref());
                                if ghost.is_some() {
                                    ghost_eta(&mut status, &cfg, s.chunk_size, tick_seconds);
                                }
                                (status, s.finished.clone(), tool_lag)
                            };
                            if updates.send(ExecUpdate::Status(status)).await.is_err() {
                                return;
                            }
                            if let Some(l) = tool_lag
                                && updates.send(ExecUpdate::Lag(l)).await.is_err()
                            {
                                return;
                            }
                            if let Some(o) = done {
                                let _ = updates.send(ExecUpdate::Finished(o)).await;
                                return;
                            }
                        }
                    }
                }
            });
            Ok(())
        })
    }

    fn control(&mut self, control: Control) -> BoxFuture<'_, Result<(), ExecError>> {
        Box::pin(async move {
            let tx = self.controls.as_ref().ok_or(ExecError::NotStarted)?;
            tx.send(control)
                .map_err(|_| ExecError::Refused("the simulated run has ended".into()))
        })
    }

    fn status(&mut self) -> BoxFuture<'_, Result<ExecStatus, ExecError>> {
        Box::pin(async move { Ok(status_of(&self.snapshot(), self.clock.as_ref())) })
    }

    fn outcome(&mut self) -> BoxFuture<'_, Result<Option<Outcome>, ExecError>> {
        Box::pin(async move { Ok(self.snapshot().finished) })
    }

    fn leftovers(&mut self) -> BoxFuture<'_, Result<Vec<Leftover>, ExecError>> {
        Box::pin(async move {
            let s = self.snapshot();
            Ok(match &s.finished {
                Some(o) => o.leftovers.clone(),
                None if s.copied > 0 || !s.table.is_empty() => ghost(&s.table),
                None => Vec::new(),
            })
        })
    }

    fn recover(
        &mut self,
        job: ExecJob,
        _updates: mpsc::Sender<ExecUpdate>,
    ) -> BoxFuture<'_, Result<ExecStatus, ExecError>> {
        Box::pin(async move {
            let path = job.run_dir.join("sim-state.json");
            let saved: Option<SimState> = std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok());
            let mut s = saved.unwrap_or_else(|| SimState {
                table: job.spec.tables.first().cloned().unwrap_or_default(),
                ..SimState::default()
            });
            // The simulated copy lived in the dead process: unless it had
            // finished, nothing is running any more.
            let status = if s.finished.is_some() {
                status_of(&s, self.clock.as_ref())
            } else {
                ExecStatus {
                    phase: ExecPhase::NotRunning,
                    progress: status_of(&s, self.clock.as_ref()).progress,
                    at: self.clock.now(),
                }
            };
            s.paused = false;
            *lock(&self.state) = s;
            self.state_file = Some(path);
            Ok(status)
        })
    }
}
