//! What the relay shows: a pure fold of the run's published items (durable
//! events and live samples) on top of [`RunState`].
//!
//! Besides the state it keeps the latest progress and lag per replica, the
//! worst lag seen, who intervened, what was left behind, and the *render
//! revision*: the sequence number of the last event that changed which
//! buttons are offered. Buttons carry it, so a click on an older render is
//! recognisably stale.

use crate::exec::{ExecStatus, Leftover};
use crate::lag::LagSample;
use crate::run::copyview::CopyView;
use crate::run::fanout::Published;
use crate::run::{Event, EventRecord, Phase, RunState, Sample};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// One human intervention after the start (pause, resume, abort, cut-over, override).
#[derive(Debug, Clone, PartialEq)]
pub struct Intervention {
    /// Person id.
    pub person: String,
    /// What they did.
    pub what: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// The relay's view of one run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunView {
    /// The folded state.
    pub state: RunState,
    /// Latest executor status.
    pub progress: Option<ExecStatus>,
    /// Latest lag reading per replica.
    pub lag: BTreeMap<String, LagSample>,
    /// Worst lag seen (seconds); unknown readings are counted separately.
    pub max_lag_seen: Option<f64>,
    /// Readings with unknown lag.
    pub unknown_lag_readings: u64,
    /// Current throttle reason.
    pub throttle: Option<String>,
    /// Who intervened.
    pub interventions: Vec<Intervention>,
    /// What the run left behind.
    pub leftovers: Vec<Leftover>,
    /// When the run ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// Render revision (see the module doc).
    pub rev: u64,
    /// The copy's progress, folded as every surface folds it.
    pub copy: CopyView,
    /// The audit trail's head after the last event (published in the summary,
    /// so the head lives outside the machine that holds the trail).
    pub audit_head: Option<crate::audit::Anchor>,
}

/// Which buttons a state offers; a change bumps the render revision.
fn controls(s: &RunState) -> (Phase, bool, bool, bool, bool, Option<String>) {
    (
        s.phase,
        s.pause_pending,
        s.resume_pending,
        s.abort_pending,
        s.cut_over_pending,
        s.spec.as_ref().map(|sp| sp.binding.plan_digest.clone()),
    )
}

impl RunView {
    /// A view starting from a state (as a subscription hands it over).
    pub fn from_state(state: RunState) -> RunView {
        RunView {
            rev: state.last_seq,
            state,
            ..RunView::default()
        }
    }

    /// Folds one published item.
    pub fn apply(&mut self, item: &Published) {
        match item {
            Published::Event { record, anchor } => {
                self.audit_head = Some(anchor.clone());
                self.event(record)
            }
            Published::Sample(s) => self.sample(s),
            Published::Gap { .. } => {}
        }
    }

    /// Folds one event record.
    pub fn event(&mut self, rec: &EventRecord) {
        if rec.seq <= self.state.last_seq && self.state.last_seq > 0 {
            return; // already folded (replay overlap)
        }
        let before = controls(&self.state);
        self.state = std::mem::take(&mut self.state).apply(rec);
        if controls(&self.state) != before {
            self.rev = rec.seq;
        }
        let mut note = |person: &str, what: &str| {
            self.interventions.push(Intervention {
                person: person.to_string(),
                what: what.to_string(),
                at: rec.at,
            })
        };
        match &rec.event {
            Event::PauseRequested { person } => note(person, "paused"),
            Event::ResumeRequested { person } => note(person, "resumed"),
            Event::CutOverRequested { person } => note(person, "cut over"),
            Event::AbortRequested { person, .. } => note(person, "aborted"),
            Event::Overridden { person, scope, .. } => note(
                person,
                &format!("overrode the {scope:?} block").to_lowercase(),
            ),
            Event::Throttled { reason } => self.throttle = Some(reason.clone()),
            Event::Unthrottled | Event::Resumed => self.throttle = None,
            Event::Failed { leftovers, .. } | Event::Aborted { leftovers, .. } => {
                self.leftovers = leftovers.clone()
            }
            Event::Sampled { sample, .. } => self.sample(sample),
            _ => {}
        }
        if rec.event.is_terminal() {
            self.ended_at = Some(rec.at);
        }
    }

    /// Folds one sample.
    pub fn sample(&mut self, s: &Sample) {
        match s {
            Sample::Progress { status } => {
                self.copy.sample(status);
                if let crate::exec::ExecPhase::Throttled { reason } = &status.phase {
                    self.throttle = Some(reason.clone());
                }
                self.progress = Some(status.clone());
            }
            Sample::Lag { sample } => {
                match sample.seconds {
                    Some(v) if v.is_finite() => {
                        self.max_lag_seen = Some(self.max_lag_seen.map_or(v, |m| m.max(v)))
                    }
                    _ => self.unknown_lag_readings += 1,
                }
                self.lag.insert(sample.replica.clone(), sample.clone());
            }
        }
    }

    /// Rows per second over the recent copy (see [`crate::run::copyview`]).
    pub fn rate(&self) -> Option<f64> {
        self.copy.rate()
    }

    /// People who approved, in order, without repeats.
    pub fn approvers(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for a in &self.state.approvals {
            if !out.contains(&a.approver) {
                out.push(a.approver.clone());
            }
        }
        out
    }
}
