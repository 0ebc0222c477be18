//! The executor interface: anything that applies a plan (native PostgreSQL /
//! MySQL, gh-ost, pt-osc, the simulator) behind one trait and one normalised
//! status.
//!
//! The shape follows what the online-schema-change tools can do: gh-ost can
//! pause (throttle), postpone and trigger the cut-over, and change chunk size
//! and max lag at run time over its socket; pt-osc can only pause through a
//! flag file and be stopped with a signal. [`Capabilities`] says which
//! controls a driver honours so that the run core refuses the others up
//! front instead of pretending.

pub mod drivers;
pub mod ghost;
pub mod history;
pub mod leftovers;
pub mod native;
pub mod native_mysql;
pub mod native_pg;
pub mod preflight;
pub mod ptosc;
pub mod resume;
pub mod select;
pub mod sim;
pub mod stored;
pub mod tool;

use crate::run::RunSpec;
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use tokio::sync::mpsc;

/// What an executor is doing, normalised across drivers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum ExecPhase {
    /// Preparing (creating ghost tables, triggers, connecting).
    Starting,
    /// Copying rows / applying statements.
    Copying,
    /// Paused on command (gh-ost `throttle`, pt-osc pause file).
    Paused,
    /// Throttled for another reason (lag, load, flag file).
    Throttled {
        /// The driver's reason, e.g. `lag=2.48s`.
        reason: String,
    },
    /// Copy complete, cut-over postponed.
    PostponingCutOver,
    /// In the cut-over.
    CuttingOver,
    /// Finished successfully.
    Succeeded,
    /// Finished with an error.
    Failed {
        /// What went wrong.
        error: String,
    },
    /// Aborted on command.
    Aborted,
    /// Nothing is running and nothing finished (e.g. killed with the supervisor).
    NotRunning,
    /// The driver could not tell (unparseable status): never read as progress.
    Unknown,
}

impl ExecPhase {
    /// The run phase this corresponds to, when there is one.
    pub fn run_phase(&self) -> Option<crate::run::Phase> {
        use crate::run::Phase;
        Some(match self {
            ExecPhase::Starting | ExecPhase::Copying => Phase::Running,
            ExecPhase::Paused => Phase::Paused,
            ExecPhase::Throttled { .. } => Phase::Throttled,
            ExecPhase::PostponingCutOver => Phase::ReadyToCutOver,
            ExecPhase::CuttingOver => Phase::CuttingOver,
            ExecPhase::Succeeded => Phase::Succeeded,
            ExecPhase::Failed { .. } => Phase::Failed,
            ExecPhase::Aborted => Phase::Aborted,
            ExecPhase::NotRunning | ExecPhase::Unknown => return None,
        })
    }
}

impl std::fmt::Display for ExecPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExecPhase::Starting => f.write_str("starting"),
            ExecPhase::Copying => f.write_str("copying"),
            ExecPhase::Paused => f.write_str("paused"),
            ExecPhase::Throttled { reason } => write!(f, "throttled: {reason}"),
            ExecPhase::PostponingCutOver => f.write_str("copy complete, cut-over postponed"),
            ExecPhase::CuttingOver => f.write_str("cutting over"),
            ExecPhase::Succeeded => f.write_str("succeeded"),
            ExecPhase::Failed { error } => write!(f, "failed: {error}"),
            ExecPhase::Aborted => f.write_str("aborted"),
            ExecPhase::NotRunning => f.write_str("not running"),
            ExecPhase::Unknown => f.write_str("unknown (unreadable status)"),
        }
    }
}

/// Copy progress, when the driver reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Progress {
    /// Rows copied so far.
    pub rows_copied: u64,
    /// Rows to copy (an estimate for most tools).
    pub rows_total: Option<u64>,
    /// Percent done, 0–100.
    pub percent: Option<f64>,
    /// Seconds left; `None` while throttled or unknown.
    pub eta_seconds: Option<f64>,
    /// Current chunk size.
    pub chunk_size: Option<u32>,
    /// Current max lag, milliseconds.
    pub max_lag_millis: Option<u64>,
    /// What the numbers count, when it is not rows: e.g. `statement 2/5:
    /// CREATE INDEX CONCURRENTLY: building index: scanning table (blocks)`,
    /// or `no progress available` (never a fake 0%).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The normalised status: one type for every driver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecStatus {
    /// Phase.
    #[serde(flatten)]
    pub phase: ExecPhase,
    /// Progress, when known.
    pub progress: Option<Progress>,
    /// When observed.
    pub at: DateTime<Utc>,
}

/// A run-time control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "control", rename_all = "snake_case")]
pub enum Control {
    /// Pause copying (gh-ost `throttle`, pt-osc pause file).
    Pause,
    /// Resume copying.
    Resume,
    /// Throttle for a reason the core saw (replica lag from its own pollers).
    Throttle {
        /// Why.
        reason: String,
    },
    /// End a throttle the core asked for.
    Unthrottle,
    /// Proceed with the postponed cut-over; the table name is passed on (gh-ost checks it).
    CutOver {
        /// Table name.
        table: Option<String>,
    },
    /// Abort (gh-ost `panic`, pt-osc SIGTERM, native: cancel the statement).
    Abort {
        /// Table name.
        table: Option<String>,
    },
    /// New chunk size.
    SetChunkSize {
        /// Rows.
        rows: u32,
    },
    /// New max lag.
    SetMaxLag {
        /// Milliseconds.
        millis: u64,
    },
}

/// Which controls a driver honours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Pause and resume.
    pub pause: bool,
    /// Cut-over can be postponed and then triggered.
    pub postpone_cut_over: bool,
    /// Chunk size can change while running.
    pub set_chunk_size: bool,
    /// Max lag can change while running.
    pub set_max_lag: bool,
    /// The driver throttles on replica lag by itself.
    pub lag_throttle: bool,
}

impl Capabilities {
    /// Every control (the simulator).
    pub const ALL: Capabilities = Capabilities {
        pause: true,
        postpone_cut_over: true,
        set_chunk_size: true,
        set_max_lag: true,
        lag_throttle: false,
    };

    /// What cannot change while this driver runs, for surfaces to say so
    /// (e.g. `chunk size and max lag cannot change while pt-osc runs`).
    pub fn fixed_settings(&self, executor: &str) -> Option<String> {
        let fixed: Vec<&str> = [
            (!self.set_chunk_size).then_some("chunk size"),
            (!self.set_max_lag).then_some("max lag"),
        ]
        .into_iter()
        .flatten()
        .collect();
        (!fixed.is_empty()).then(|| {
            format!(
                "{} cannot change while {executor} runs",
                fixed.join(" and ")
            )
        })
    }
}

/// Something a run left behind (ghost tables, triggers, sockets, flag files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leftover {
    /// `table`, `trigger`, `socket`, `file`, …
    pub kind: String,
    /// Its name or path.
    pub name: String,
    /// How to clean it up, when known (SQL or shell).
    pub cleanup: Option<String>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum OutcomeKind {
    /// Applied.
    Succeeded,
    /// Failed.
    Failed {
        /// What went wrong.
        error: String,
    },
    /// Aborted on command.
    Aborted,
}

/// The end of a run and what it left behind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// How it ended.
    #[serde(flatten)]
    pub kind: OutcomeKind,
    /// What was left behind.
    pub leftovers: Vec<Leftover>,
}

/// What an executor sends to the run core while it works.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "update", rename_all = "snake_case")]
pub enum ExecUpdate {
    /// A status (a sample; phase changes become events).
    Status(ExecStatus),
    /// The end.
    Finished(Outcome),
    /// Replica lag as the tool sees it (gh-ost `Lag:`, pt-osc lag waits).
    Lag(crate::lag::LagSample),
    /// The driver for the next migration took over (a run may mix executors).
    Executor {
        /// The migration's version (or file name).
        migration: String,
        /// Driver name.
        executor: String,
        /// Its controls.
        capabilities: Capabilities,
        /// What surfaces should say about its controls (see [`Executor::notes`]).
        notes: Vec<String>,
    },
}

/// What the executor is asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecJob {
    /// Run id.
    pub run: String,
    /// What to run where.
    pub spec: RunSpec,
    /// The run's directory (raw output, sockets, flag files).
    pub run_dir: PathBuf,
    /// Stop before the cut-over until told.
    pub postpone_cut_over: bool,
    /// Initial chunk size.
    pub chunk_size: Option<u32>,
    /// Initial max lag, milliseconds.
    pub max_lag_millis: Option<u64>,
    /// On recovery, the migration(s) the trail last recorded as taken over by
    /// a driver: a mixed run recovers that segment, never one a file in the
    /// (requester-writable) run directory names.
    pub running: Option<String>,
}

/// Executor failures.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The driver does not support this control.
    #[error("the {executor} executor cannot {what}")]
    Unsupported {
        /// Driver name.
        executor: &'static str,
        /// What was asked.
        what: String,
    },
    /// The control does not fit the executor's state.
    #[error("{0}")]
    Refused(String),
    /// Not started.
    #[error("the executor has not been started")]
    NotStarted,
    /// I/O with the tool or the database.
    #[error("executor I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// An executor. Methods return boxed futures so that the run core can hold a
/// `Box<dyn Executor>` chosen from config.
pub trait Executor: Send {
    /// Driver name (`sim`, `native`, `gh-ost`, `pt-osc`).
    fn name(&self) -> &'static str;

    /// Which controls it honours.
    fn capabilities(&self) -> Capabilities;

    /// What surfaces should say about its controls, e.g. that a pause takes
    /// effect only when the tool next looks, or that settings are fixed.
    fn notes(&self) -> Vec<String> {
        self.capabilities()
            .fixed_settings(self.name())
            .into_iter()
            .collect()
    }

    /// Starts the job; statuses and the final outcome arrive on `updates`.
    fn start(
        &mut self,
        job: ExecJob,
        updates: mpsc::Sender<ExecUpdate>,
    ) -> BoxFuture<'_, Result<(), ExecError>>;

    /// Applies a control.
    fn control(&mut self, control: Control) -> BoxFuture<'_, Result<(), ExecError>>;

    /// The current status.
    fn status(&mut self) -> BoxFuture<'_, Result<ExecStatus, ExecError>>;

    /// The outcome, once finished.
    fn outcome(&mut self) -> BoxFuture<'_, Result<Option<Outcome>, ExecError>>;

    /// What a run of this job left behind (tables, triggers, files) as far as it can tell.
    fn leftovers(&mut self) -> BoxFuture<'_, Result<Vec<Leftover>, ExecError>>;

    /// After the supervisor died: find out what really happened to `job`
    /// (re-attach to a live tool, or inspect what is left) without changing
    /// anything. Later updates arrive on `updates` if the job is still live.
    fn recover(
        &mut self,
        job: ExecJob,
        updates: mpsc::Sender<ExecUpdate>,
    ) -> BoxFuture<'_, Result<ExecStatus, ExecError>>;
}
