//! The run's state: a pure fold of its events. Rebuilding a run after a crash
//! is `RunState::replay` over the events read back from the audit trail.

use super::command::OverrideScope;
use super::events::{Event, EventRecord, RunSpec};
use crate::policy::approvals::ApprovalRecord;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Created, nobody asked for approval yet.
    #[default]
    Planned,
    /// Requested; approvals outstanding.
    AwaitingApproval,
    /// Approvals complete; may be started.
    Approved,
    /// Approvals complete, but a window blocks it.
    WaitingForWindow,
    /// The executor is working.
    Running,
    /// The executor confirmed a pause.
    Paused,
    /// The executor throttles.
    Throttled,
    /// Copy complete, cut-over postponed.
    ReadyToCutOver,
    /// Cutting over.
    CuttingOver,
    /// Done.
    Succeeded,
    /// The executor failed.
    Failed,
    /// Aborted.
    Aborted,
    /// Rejected by an approver.
    Rejected,
    /// Withdrawn before it started (superseded by a changed plan).
    Withdrawn,
    /// Approvals lapsed.
    Expired,
    /// The supervisor died mid-run.
    Interrupted,
}

impl Phase {
    /// No further event changes the phase.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Phase::Succeeded
                | Phase::Failed
                | Phase::Aborted
                | Phase::Rejected
                | Phase::Withdrawn
                | Phase::Expired
        )
    }

    /// The executor has been started and not finished.
    pub fn is_executing(self) -> bool {
        matches!(
            self,
            Phase::Running
                | Phase::Paused
                | Phase::Throttled
                | Phase::ReadyToCutOver
                | Phase::CuttingOver
        )
    }

    /// Before the executor was started.
    pub fn is_pre_start(self) -> bool {
        matches!(
            self,
            Phase::Planned | Phase::AwaitingApproval | Phase::Approved | Phase::WaitingForWindow
        )
    }

    /// snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Planned => "planned",
            Phase::AwaitingApproval => "awaiting_approval",
            Phase::Approved => "approved",
            Phase::WaitingForWindow => "waiting_for_window",
            Phase::Running => "running",
            Phase::Paused => "paused",
            Phase::Throttled => "throttled",
            Phase::ReadyToCutOver => "ready_to_cut_over",
            Phase::CuttingOver => "cutting_over",
            Phase::Succeeded => "succeeded",
            Phase::Failed => "failed",
            Phase::Aborted => "aborted",
            Phase::Rejected => "rejected",
            Phase::Withdrawn => "withdrawn",
            Phase::Expired => "expired",
            Phase::Interrupted => "interrupted",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An override in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverrideRecord {
    /// What.
    pub scope: OverrideScope,
    /// Who.
    pub person: String,
    /// Why.
    pub reason: String,
}

/// Everything the fold knows about a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RunState {
    /// Run id (empty before `Created`).
    pub run: String,
    /// Phase.
    pub phase: Phase,
    /// The run's spec; its binding follows plan revisions.
    pub spec: Option<RunSpec>,
    /// Requester's person id.
    pub requester: Option<String>,
    /// Approvals given since the last void.
    pub approvals: Vec<ApprovalRecord>,
    /// Overrides in force.
    pub overrides: Vec<OverrideRecord>,
    /// Why approvals were last voided, for every surface to show.
    pub voided: Option<String>,
    /// Latest window warning or closing.
    pub window_note: Option<String>,
    /// A pause was accepted and not yet confirmed.
    pub pause_pending: bool,
    /// A resume was accepted and not yet confirmed.
    pub resume_pending: bool,
    /// A cut-over was commanded and has not begun.
    pub cut_over_pending: bool,
    /// An abort was commanded and not yet finished.
    pub abort_pending: bool,
    /// Who aborted and why, once commanded.
    pub abort_reason: Option<String>,
    /// Current chunk size, if tuned.
    pub chunk_size: Option<u32>,
    /// Current max lag in milliseconds, if tuned.
    pub max_lag_millis: Option<u64>,
    /// Phase before an interruption.
    pub interrupted_from: Option<Phase>,
    /// When the executor was started.
    pub started_at: Option<DateTime<Utc>>,
    /// Last sequence number folded.
    pub last_seq: u64,
    /// Time of the last event folded.
    pub last_at: Option<DateTime<Utc>>,
    /// Refusals so far.
    pub refusals: u64,
    /// Transport de-duplication keys seen.
    pub seen: BTreeSet<String>,
    /// The last reason a run ended or failed.
    pub outcome: Option<String>,
    /// Messages surfaces posted about the run: key → where it is.
    #[serde(default)]
    pub messages: std::collections::BTreeMap<String, PostedMessage>,
    /// The driver running the current migration (`None` before one reported).
    #[serde(default)]
    pub executor: Option<String>,
    /// Its controls: surfaces offer only these (all, while unknown).
    #[serde(default)]
    pub capabilities: Option<crate::exec::Capabilities>,
    /// What surfaces should say about those controls.
    #[serde(default)]
    pub executor_notes: Vec<String>,
    /// The migration(s) the last driver took over (`ExecutorSelected`): which
    /// segment of a mixed run was running, from the trail.
    #[serde(default)]
    pub executor_migration: Option<String>,
}

/// Where a surface's message is (recorded by [`Event::MessagePosted`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PostedMessage {
    /// Channel.
    pub channel: String,
    /// Message id (Slack `ts`).
    pub id: String,
}

impl RunState {
    /// Folds a sequence of records from the start.
    pub fn replay<'a>(records: impl IntoIterator<Item = &'a EventRecord>) -> RunState {
        records
            .into_iter()
            .fold(RunState::default(), |s, r| s.apply(r))
    }

    /// Whether an override of `scope` is in force.
    pub fn overridden(&self, scope: OverrideScope) -> bool {
        self.overrides.iter().any(|o| o.scope == scope)
    }

    /// The next sequence number.
    pub fn next_seq(&self) -> u64 {
        self.last_seq + 1
    }

    /// An ended run has nothing pending: no surface may show a request
    /// (e.g. "cut-over requested") as still waiting.
    fn clear_pending(&mut self) {
        self.pause_pending = false;
        self.resume_pending = false;
        self.cut_over_pending = false;
        self.abort_pending = false;
    }

    /// The fold step.
    pub fn apply(mut self, rec: &EventRecord) -> RunState {
        self.last_seq = rec.seq;
        self.last_at = Some(rec.at);
        if let Some(k) = &rec.dedup {
            self.seen.insert(k.clone());
        }
        match &rec.event {
            Event::Created { spec } => {
                self.run = rec.run.clone();
                self.spec = Some(spec.clone());
                self.phase = Phase::Planned;
            }
            Event::Requested { person, .. } => {
                self.requester = Some(person.clone());
                self.phase = Phase::AwaitingApproval;
            }
            Event::Approved { approval } => self.approvals.push(approval.clone()),
            Event::ApprovalSatisfied { .. } => {
                self.phase = Phase::Approved;
                self.voided = None;
            }
            Event::Rejected { reason, .. } => {
                self.phase = Phase::Rejected;
                self.outcome = Some(reason.clone());
            }
            Event::Withdrawn { reason, .. } => {
                self.phase = Phase::Withdrawn;
                self.outcome = Some(reason.clone());
            }
            Event::Overridden {
                scope,
                person,
                reason,
            } => self.overrides.push(OverrideRecord {
                scope: *scope,
                person: person.clone(),
                reason: reason.clone(),
            }),
            Event::WindowWarning { reason } => self.window_note = Some(reason.clone()),
            Event::WaitingForWindow { reason } => {
                self.phase = Phase::WaitingForWindow;
                self.window_note = Some(reason.clone());
            }
            Event::WindowOpened => {
                self.phase = Phase::Approved;
                self.window_note = None;
            }
            Event::WindowClosed { reason, .. } => self.window_note = Some(reason.clone()),
            Event::PlanRevised {
                binding, versions, ..
            } => {
                if let Some(spec) = self.spec.as_mut() {
                    spec.binding = binding.clone();
                    spec.versions = versions.clone();
                }
            }
            Event::ApprovalsVoided { reason } => {
                self.approvals.clear();
                self.voided = Some(reason.clone());
                if matches!(self.phase, Phase::Approved | Phase::WaitingForWindow) {
                    self.phase = Phase::AwaitingApproval;
                }
            }
            Event::Expired { reason } => {
                self.phase = Phase::Expired;
                self.outcome = Some(reason.clone());
            }
            Event::Started { .. } => {
                self.phase = Phase::Running;
                self.started_at = Some(rec.at);
                self.interrupted_from = None;
                self.pause_pending = false;
                self.resume_pending = false;
                self.cut_over_pending = false;
            }
            Event::PauseRequested { .. } => self.pause_pending = true,
            Event::Paused => {
                self.phase = Phase::Paused;
                self.pause_pending = false;
            }
            Event::ResumeRequested { .. } => self.resume_pending = true,
            Event::Resumed => {
                self.phase = Phase::Running;
                self.resume_pending = false;
            }
            Event::Throttled { .. } => self.phase = Phase::Throttled,
            Event::Unthrottled => self.phase = Phase::Running,
            Event::ReadyToCutOver => self.phase = Phase::ReadyToCutOver,
            Event::CutOverRequested { .. } => self.cut_over_pending = true,
            Event::CuttingOver => {
                self.phase = Phase::CuttingOver;
                self.cut_over_pending = false;
            }
            Event::Tuned {
                chunk_size,
                max_lag_millis,
            } => {
                self.chunk_size = chunk_size.or(self.chunk_size);
                self.max_lag_millis = max_lag_millis.or(self.max_lag_millis);
            }
            Event::AbortRequested { person, reason } => {
                self.abort_pending = true;
                self.abort_reason = Some(format!("aborted by {person}: {reason}"));
            }
            Event::Succeeded => {
                self.phase = Phase::Succeeded;
                self.clear_pending();
            }
            Event::Failed { error, .. } => {
                self.phase = Phase::Failed;
                self.outcome = Some(error.clone());
                self.clear_pending();
            }
            Event::Aborted { reason, .. } => {
                self.phase = Phase::Aborted;
                self.outcome = Some(reason.clone());
                self.clear_pending();
            }
            Event::Interrupted { .. } => {
                if self.phase != Phase::Interrupted {
                    self.interrupted_from = Some(self.phase);
                }
                self.phase = Phase::Interrupted;
            }
            Event::Recovered { status } => {
                if let Some(p) = status.phase.run_phase() {
                    self.phase = p;
                }
            }
            Event::Refused { .. } => self.refusals += 1,
            Event::MessagePosted { key, channel, id } => {
                self.messages.insert(
                    key.clone(),
                    PostedMessage {
                        channel: channel.clone(),
                        id: id.clone(),
                    },
                );
            }
            Event::ExecutorSelected {
                migration,
                executor,
                capabilities,
                notes,
            } => {
                self.executor = Some(executor.clone());
                self.executor_migration = Some(migration.clone());
                self.capabilities = Some(*capabilities);
                self.executor_notes = notes.clone();
                // The previous migration cut over; the next one is copying.
                if matches!(self.phase, Phase::CuttingOver | Phase::ReadyToCutOver) {
                    self.phase = Phase::Running;
                    self.cut_over_pending = false;
                }
            }
            Event::SlackProblem { .. } | Event::Sampled { .. } | Event::CleanedUp { .. } => {}
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Actor;

    fn rec(seq: u64, event: Event) -> EventRecord {
        EventRecord {
            schema: crate::run::events::EVENT_SCHEMA,
            run: "r".into(),
            seq,
            at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
            actor: Actor::System,
            dedup: None,
            event,
        }
    }

    #[test]
    fn an_ended_run_has_nothing_pending() {
        for end in [
            Event::Succeeded,
            Event::Failed {
                error: "x".into(),
                leftovers: vec![],
            },
            Event::Aborted {
                reason: "x".into(),
                leftovers: vec![],
            },
        ] {
            let recs = [
                rec(1, Event::ReadyToCutOver),
                rec(
                    2,
                    Event::CutOverRequested {
                        person: "alice".into(),
                    },
                ),
                rec(
                    3,
                    Event::PauseRequested {
                        person: "bob".into(),
                    },
                ),
                rec(4, end),
            ];
            let st = RunState::replay(&recs);
            assert!(st.phase.is_terminal());
            assert!(!st.cut_over_pending && !st.pause_pending, "{st:?}");
        }
    }
}
