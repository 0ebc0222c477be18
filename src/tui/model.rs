//! What the console knows: the run's state as streamed by the supervisor,
//! plus the history it draws (lag per replica, progress rate, event log).
//! Updated by [`Console::apply`], a pure step over one server message; the
//! views read it and never change it.

use crate::audit::Anchor;
use crate::exec::{ExecPhase, ExecStatus, Leftover};
use crate::lag::LagSample;
use crate::model::Plan;
use crate::run::backlog::Backlog;
use crate::run::{Event, EventRecord, Phase, RunState, Sample};
use crate::supervisor::ServerMsg;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, VecDeque};

/// Samples kept per replica: one hour of 1-second readings.
pub const LAG_HISTORY: usize = 3600;
/// Event-log lines kept.
pub const LOG_LINES: usize = 2000;

/// One replica's readings: (time, seconds or unknown), oldest first.
pub type LagHistory = VecDeque<(DateTime<Utc>, Option<f64>)>;

/// How a log line is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    /// An event of the run.
    Event,
    /// A command this console sent, or its answer.
    Sent,
    /// A control the run core passes to the executor.
    Tool,
    /// What a Slack relay posts (or would post when Slack is off).
    Slack,
    /// Refusals, failures.
    Problem,
}

/// One line of the event log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// When (UTC).
    pub at: DateTime<Utc>,
    /// Who caused it (`local:alice`, `slack:T1/U2`, `system`).
    pub actor: String,
    /// The text.
    pub text: String,
    /// Its kind.
    pub kind: LogKind,
}

/// Static facts shown in the header.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HeaderInfo {
    /// cutover version.
    pub version: String,
    /// Slack link status, e.g. `connected #db-changes` or `off — posts shown in the log`.
    pub slack: String,
    /// Whether a Slack relay is connected (else the log shows what would be posted).
    pub slack_connected: bool,
    /// The approval rule for this run, e.g. `1 approval from dba`.
    pub approval_rule: String,
}

/// The console's model of one run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Console {
    /// The folded state.
    pub state: RunState,
    /// The plan (statements pane); absent when the run directory has none.
    pub plan: Option<Plan>,
    /// Header facts.
    pub header: HeaderInfo,
    /// Lag readings per replica, oldest first.
    pub lag: BTreeMap<String, LagHistory>,
    /// The latest executor status.
    pub progress: Option<ExecStatus>,
    /// Copy rate, rows per second (from [`Console::copy`]).
    pub rate: Option<f64>,
    /// The copy's progress, folded as every surface folds it.
    pub copy: crate::run::copyview::CopyView,
    /// The event log, oldest first.
    pub log: VecDeque<LogLine>,
    /// The trail head after the latest event.
    pub anchor: Option<Anchor>,
    /// What the run left behind, from its final event.
    pub leftovers: Vec<Leftover>,
    /// The supervisor said the stream is over.
    pub ended: bool,
    /// Latest time seen (events and samples), the chart's "now".
    pub now: Option<DateTime<Utc>>,
    /// Items dropped because this console was slow.
    pub missed: u64,
}

impl Console {
    /// A console for a run with its plan.
    pub fn new(header: HeaderInfo, plan: Option<Plan>) -> Console {
        Console {
            header,
            plan,
            ..Console::default()
        }
    }

    /// The max lag in force, seconds.
    pub fn max_lag_seconds(&self) -> f64 {
        self.state.max_lag_millis.unwrap_or(1500) as f64 / 1000.0
    }

    /// Adds a log line (bounded).
    pub fn log(&mut self, at: DateTime<Utc>, actor: &str, text: String, kind: LogKind) {
        self.log.push_back(LogLine {
            at,
            actor: actor.to_string(),
            text,
            kind,
        });
        while self.log.len() > LOG_LINES {
            self.log.pop_front();
        }
    }

    fn seen(&mut self, at: DateTime<Utc>) {
        if self.now.is_none_or(|n| at > n) {
            self.now = Some(at);
        }
    }

    /// Folds one message from the supervisor into the model.
    pub fn apply(&mut self, msg: &ServerMsg) {
        match msg {
            ServerMsg::State { state } => {
                self.state = (**state).clone();
                if let Some(at) = state.last_at {
                    self.seen(at);
                }
            }
            ServerMsg::History { backlog } => self.replay(backlog),
            ServerMsg::Event { record, anchor } => {
                self.event(record);
                self.anchor = Some(anchor.clone());
            }
            ServerMsg::Sample { sample } => self.sample(sample),
            ServerMsg::Gap { missed_events } => {
                self.missed += missed_events;
                let at = self.now.unwrap_or_default();
                self.log(
                    at,
                    "console",
                    format!("{missed_events} event(s) skipped: this console was slow (see `cutover audit show`)"),
                    LogKind::Problem,
                );
            }
            ServerMsg::Reply { .. } => {}
            ServerMsg::End => self.ended = true,
            ServerMsg::Error { message } => {
                let at = self.now.unwrap_or_default();
                self.log(at, "supervisor", message.clone(), LogKind::Problem);
            }
        }
    }

    /// Folds the history a supervisor sends on attach: the log gets the
    /// lines the events would have given live, the chart the lag readings,
    /// the progress pane the latest statuses. The state stays the one the
    /// supervisor sent (the backlog may not reach back to the first event).
    pub fn replay(&mut self, b: &Backlog) {
        let state = std::mem::take(&mut self.state);
        let log = std::mem::take(&mut self.log);
        for rec in &b.events {
            self.event(rec);
        }
        // Lines this console wrote itself before the history came stay, after it.
        for l in log {
            self.log(l.at, &l.actor, l.text, l.kind);
        }
        if state.last_seq > 0 {
            self.state = state;
        }
        for samples in b.lag.values() {
            for s in samples {
                self.lag_sample(s);
            }
        }
        for st in &b.progress {
            self.sample(&Sample::Progress { status: st.clone() });
        }
    }

    /// Folds one event.
    pub fn event(&mut self, rec: &EventRecord) {
        // A late subscriber may see events it already has in the state.
        if rec.seq <= self.state.last_seq && rec.seq != 0 {
            return;
        }
        self.state = std::mem::take(&mut self.state).apply(rec);
        self.seen(rec.at);
        let actor = rec.actor.to_string();
        let kind = match &rec.event {
            Event::Refused { .. }
            | Event::Failed { .. }
            | Event::Interrupted { .. }
            | Event::SlackProblem { .. } => LogKind::Problem,
            _ => LogKind::Event,
        };
        if !matches!(rec.event, Event::Sampled { .. }) {
            self.log(
                rec.at,
                &actor,
                format!("#{} {}", rec.seq, describe(&rec.event)),
                kind,
            );
        }
        if let Some(tool) = tool_command(&rec.event, self.state.executor.as_deref()) {
            self.log(rec.at, "system", tool, LogKind::Tool);
        }
        if let Some(post) = slack_post(&rec.event, &self.state) {
            let text = if self.header.slack_connected {
                format!("slack ▸ {post}")
            } else {
                format!("slack (off) would post ▸ {post}")
            };
            self.log(rec.at, "relay", text, LogKind::Slack);
        }
        match &rec.event {
            Event::Failed { leftovers, .. } | Event::Aborted { leftovers, .. } => {
                self.leftovers = leftovers.clone()
            }
            _ => {}
        }
    }

    fn sample(&mut self, s: &Sample) {
        match s {
            Sample::Lag { sample } => self.lag_sample(sample),
            Sample::Progress { status } => {
                self.seen(status.at);
                self.copy.sample(status);
                self.rate = self.copy.rate();
                // A pause that waits for the running statement says so in the log, once.
                let note = status
                    .progress
                    .as_ref()
                    .and_then(|p| p.detail.clone())
                    .filter(|d| self.state.pause_pending && d.contains("pause requested"));
                if let Some(note) = note
                    && !self.log.iter().rev().take(20).any(|l| l.text == note)
                {
                    self.log(status.at, "system", note, LogKind::Tool);
                }
                self.progress = Some(status.clone());
            }
        }
    }

    /// Records one lag reading (bounded history per replica).
    pub fn lag_sample(&mut self, s: &LagSample) {
        self.seen(s.at);
        let h = self.lag.entry(s.replica.clone()).or_default();
        h.push_back((s.at, s.seconds));
        while h.len() > LAG_HISTORY {
            h.pop_front();
        }
    }

    /// Seconds left at the recent copy rate (see [`crate::run::copyview`]).
    pub fn eta_seconds(&self) -> Option<f64> {
        self.copy.eta_seconds()
    }

    /// Why the copy is not moving, if it is not.
    pub fn throttle_reason(&self) -> Option<String> {
        if self.state.phase != Phase::Paused
            && let Some(note) =
                crate::run::copyview::pause_note(self.state.pause_pending, &self.copy)
        {
            return Some(note);
        }
        match (&self.state.phase, self.progress.as_ref().map(|p| &p.phase)) {
            (Phase::Paused, _) => Some("paused by command".into()),
            (_, Some(ExecPhase::Throttled { reason })) => Some(reason.clone()),
            (_, Some(ExecPhase::Paused)) => Some("paused by command".into()),
            (Phase::ReadyToCutOver, _) => Some("cut-over postponed: waiting for `c`".into()),
            _ => None,
        }
    }
}

/// One line describing an event, for the log and the headless printer: the
/// audit timeline's wording (one source), with the outcomes a DBA must not miss
/// in capitals.
pub fn describe(e: &Event) -> String {
    let line = crate::audit::show::describe(e);
    match e {
        Event::Refused { .. } | Event::Failed { .. } | Event::Aborted { .. } => {
            let (head, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
            let head = match e {
                Event::Aborted { .. } => "ABORTED:".to_string(),
                _ => head.to_uppercase(),
            };
            if matches!(e, Event::Aborted { .. }) {
                format!("{head} {line}")
            } else {
                format!("{head} {rest}")
            }
        }
        _ => line,
    }
}

/// What the run core tells the executor because of an event, in the
/// current driver's own terms where it has them (gh-ost's socket commands,
/// pt-osc's pause file and signal), so the log teaches what really happens.
fn tool_command(e: &Event, executor: Option<&str>) -> Option<String> {
    let ghost = executor.is_some_and(|x| x.contains("gh-ost"));
    let ptosc = executor.is_some_and(|x| x.contains("pt-osc"));
    let c = match e {
        Event::Started { .. } => "start".to_string(),
        Event::PauseRequested { .. } if ghost => "throttle".into(),
        Event::PauseRequested { .. } if ptosc => "create the pause file".into(),
        Event::PauseRequested { .. } => "pause".into(),
        Event::ResumeRequested { .. } if ghost => "no-throttle".into(),
        Event::ResumeRequested { .. } if ptosc => "remove the pause file".into(),
        Event::ResumeRequested { .. } => "resume".into(),
        Event::CutOverRequested { .. } if ghost => "unpostpone".into(),
        Event::CutOverRequested { .. } => "cut-over".into(),
        Event::AbortRequested { .. } if ghost => "panic".into(),
        Event::AbortRequested { .. } if ptosc => "SIGINT".into(),
        Event::AbortRequested { .. } => "abort".into(),
        Event::Tuned {
            chunk_size,
            max_lag_millis,
        } if ghost => [
            chunk_size.map(|n| format!("chunk-size={n}")),
            max_lag_millis.map(|n| format!("max-lag-millis={n}")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", "),
        Event::Tuned { .. } => "set chunk size / max lag".into(),
        _ => return None,
    };
    let who = match executor {
        Some(x) if ghost || ptosc => x,
        _ => "executor",
    };
    Some(format!("→ {who}: {c}"))
}

/// The gist of what the Slack relay posts for an event.
fn slack_post(e: &Event, s: &RunState) -> Option<String> {
    let target = s
        .spec
        .as_ref()
        .map(|x| x.binding.target.as_str())
        .unwrap_or("?");
    Some(match e {
        Event::Requested { name, .. } => {
            format!(
                "approval request to #db-changes: {name} wants to run on {target} [Approve] [Reject]"
            )
        }
        Event::ApprovalSatisfied { .. } => format!("thread: approved for {target}"),
        Event::Started { .. } => format!("thread: started on {target}"),
        Event::Throttled { reason } => format!("thread: throttled ({reason})"),
        Event::ReadyToCutOver => "thread: ready to cut over [Cut over] [Abort]".into(),
        Event::Succeeded => format!("thread: succeeded on {target} ✓"),
        Event::Failed { error, .. } => format!("thread + channel: FAILED on {target}: {error}"),
        Event::Aborted { .. } => format!("thread + channel: aborted on {target}"),
        Event::WindowClosed { .. } => "thread: window closed while running".into(),
        _ => return None,
    })
}

/// A surface's name.
pub fn surface_str(s: crate::policy::Surface) -> &'static str {
    match s {
        crate::policy::Surface::Console => "console",
        crate::policy::Surface::Slack => "slack",
        crate::policy::Surface::Cli => "cli",
        crate::policy::Surface::System => "system",
    }
}

/// The first 12 characters of a digest.
pub fn short(d: &str) -> &str {
    d.get(..12).unwrap_or(d)
}
