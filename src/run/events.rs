//! Events: the facts of a run, in order. Each is recorded in the audit trail
//! before anyone sees it, and the run's state is a fold of them.
//!
//! Samples (progress ticks, lag readings) are not events; they go straight to
//! subscribers and are recorded only at a bounded rate, as [`Event::Sampled`].

use super::command::{CommandKind, OverrideScope};
use crate::exec::{ExecStatus, Leftover};
use crate::lag::LagSample;
use crate::model::{Plan, Risk};
use crate::policy::approvals::{ApprovalRecord, Binding, VersionChecksum};
use crate::policy::config::CloseAction;
use crate::policy::{Actor, Environment, Surface};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Version of the event schema; bump on incompatible change.
pub const EVENT_SCHEMA: u32 = 1;

/// One event as recorded: schema, run, sequence, time and actor around the fact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// [`EVENT_SCHEMA`] at the time of writing.
    pub schema: u32,
    /// Run id.
    pub run: String,
    /// Per-run sequence number, from 1 without gaps.
    pub seq: u64,
    /// When (UTC).
    pub at: DateTime<Utc>,
    /// Who caused it.
    pub actor: Actor,
    /// Transport de-duplication key of the command that caused it (e.g. a Slack envelope id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup: Option<String>,
    /// The fact.
    pub event: Event,
}

impl EventRecord {
    /// Wraps events caused by one command (or update) as the next records of
    /// the run, numbered after `last_seq`; the de-duplication key goes on each.
    pub fn stamp(
        run: &str,
        last_seq: u64,
        events: Vec<Event>,
        actor: &Actor,
        dedup: Option<&str>,
        at: DateTime<Utc>,
    ) -> Vec<EventRecord> {
        events
            .into_iter()
            .zip(last_seq + 1..)
            .map(|(event, seq)| EventRecord {
                schema: EVENT_SCHEMA,
                run: run.to_string(),
                seq,
                at,
                actor: actor.clone(),
                dedup: dedup.map(str::to_string),
                event,
            })
            .collect()
    }
}

/// What is being run: the plan's binding and what the policy needs to know about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// Plan digest and target.
    pub binding: Binding,
    /// The target's environment.
    pub environment: Environment,
    /// The plan's overall risk.
    pub risk: Risk,
    /// Migrations with their checksums.
    pub versions: Vec<VersionChecksum>,
    /// Estimated duration in seconds (0 when unknown).
    pub estimated_seconds: f64,
    /// Tables touched; a high-risk abort or cut-over must name one of them.
    pub tables: Vec<String>,
    /// Executor name (`sim`, `native`, `gh-ost`, `pt-osc`).
    pub executor: String,
}

impl RunSpec {
    /// The spec of running `plan` on `target`.
    pub fn from_plan(
        plan: &Plan,
        target: &str,
        environment: Environment,
        executor: &str,
    ) -> RunSpec {
        let mut tables: Vec<String> = plan
            .migrations
            .iter()
            .flat_map(|m| m.statements.iter())
            .filter_map(|s| s.lock.table.clone())
            .collect();
        tables.sort();
        tables.dedup();
        let estimated_seconds = plan
            .migrations
            .iter()
            .flat_map(|m| m.statements.iter())
            .filter_map(|s| s.estimate.map(|e| e.duration_seconds))
            .sum();
        RunSpec {
            binding: Binding {
                plan_digest: plan.plan_digest.clone(),
                target: target.to_string(),
            },
            environment,
            risk: plan.risk,
            versions: plan
                .migrations
                .iter()
                .map(|m| VersionChecksum {
                    version: m.version.clone(),
                    checksum: m.checksum.clone(),
                })
                .collect(),
            estimated_seconds,
            tables,
            executor: executor.to_string(),
        }
    }
}

/// A sample: published to subscribers as it comes, recorded only at a bounded rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Sample {
    /// Executor progress.
    Progress {
        /// The executor's normalised status.
        status: ExecStatus,
    },
    /// A replica lag reading.
    Lag {
        /// The reading.
        sample: LagSample,
    },
}

/// The facts of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The run exists: plan, target, environment.
    Created {
        /// What is run where.
        spec: RunSpec,
    },
    /// Someone asked for approval.
    Requested {
        /// Requester's person id.
        person: String,
        /// Display name.
        name: String,
        /// Surface.
        surface: Surface,
    },
    /// One approval.
    Approved {
        /// The full record.
        approval: ApprovalRecord,
    },
    /// The approval rule is satisfied for the current binding.
    ApprovalSatisfied {
        /// People whose approval counted.
        approvers: Vec<String>,
    },
    /// A person with approval rights said no. Terminal.
    Rejected {
        /// Person id.
        person: String,
        /// Why.
        reason: String,
    },
    /// The run was withdrawn before it started (a changed plan superseded
    /// it); its approvals do not carry over. Terminal.
    Withdrawn {
        /// Person id.
        person: String,
        /// Why.
        reason: String,
    },
    /// A DBA overrode a window or promotion block.
    Overridden {
        /// What was overridden.
        scope: OverrideScope,
        /// Person id.
        person: String,
        /// Why.
        reason: String,
    },
    /// A window warns about this run (peak or freeze with decision `warn`).
    WindowWarning {
        /// Which window and why.
        reason: String,
    },
    /// Approved, but the windows block it now.
    WaitingForWindow {
        /// Which window and the next one that fits.
        reason: String,
    },
    /// The blocking window is over (or overridden): the run may start.
    WindowOpened,
    /// The run's window closed while it was running. It is not killed.
    WindowClosed {
        /// Which window.
        reason: String,
        /// What policy does about it.
        action: CloseAction,
    },
    /// The plan or target changed (checksum, rules override, target).
    PlanRevised {
        /// The new binding.
        binding: Binding,
        /// The new migrations and checksums.
        versions: Vec<VersionChecksum>,
        /// Why.
        reason: String,
    },
    /// Existing approvals no longer count.
    ApprovalsVoided {
        /// Why, for every surface to show.
        reason: String,
    },
    /// Approvals lapsed before the run started. Terminal.
    Expired {
        /// Why.
        reason: String,
    },
    /// The executor was told to start.
    Started {
        /// Person id (or `system` for an automatic start).
        person: String,
    },
    /// A pause was accepted; the run is paused once the executor confirms.
    PauseRequested {
        /// Person id.
        person: String,
    },
    /// The executor confirmed the pause.
    Paused,
    /// A resume was accepted.
    ResumeRequested {
        /// Person id.
        person: String,
    },
    /// The executor is copying again.
    Resumed,
    /// The executor throttles (lag, load, flag file…).
    Throttled {
        /// The executor's reason.
        reason: String,
    },
    /// Throttling ended.
    Unthrottled,
    /// Copy done, cut-over postponed until commanded.
    ReadyToCutOver,
    /// A cut-over was commanded.
    CutOverRequested {
        /// Person id.
        person: String,
    },
    /// The executor is cutting over.
    CuttingOver,
    /// Chunk size or max lag changed.
    Tuned {
        /// New chunk size, rows.
        chunk_size: Option<u32>,
        /// New max lag, milliseconds.
        max_lag_millis: Option<u64>,
    },
    /// An abort was commanded.
    AbortRequested {
        /// Person id.
        person: String,
        /// Why.
        reason: String,
    },
    /// Done. Terminal.
    Succeeded,
    /// The executor failed. Terminal.
    Failed {
        /// What went wrong (secrets redacted).
        error: String,
        /// What was left behind.
        leftovers: Vec<Leftover>,
    },
    /// Aborted. Terminal.
    Aborted {
        /// Why.
        reason: String,
        /// What was left behind.
        leftovers: Vec<Leftover>,
    },
    /// The supervisor died mid-run; nothing continues until the executor says what happened.
    Interrupted {
        /// What was found on restart.
        reason: String,
    },
    /// The executor reported after an interruption.
    Recovered {
        /// What it said, normalised.
        status: ExecStatus,
    },
    /// A command was refused; the refusal is part of the record.
    Refused {
        /// Which command.
        command: CommandKind,
        /// Person id of the sender.
        person: String,
        /// Surface it came from.
        surface: Surface,
        /// Why.
        reason: String,
    },
    /// A surface posted a message about the run; it edits this one from now on.
    MessagePosted {
        /// Which message, e.g. `slack.preflight`.
        key: String,
        /// Channel.
        channel: String,
        /// Message id (Slack `ts`).
        id: String,
    },
    /// A surface could not show the run as it should (Slack rejected a
    /// payload, or a configuration error stopped the relay): recorded so
    /// the console and the trail say what the channel did not see.
    SlackProblem {
        /// Slack's error code (`invalid_blocks`, `invalid_auth`, …).
        code: String,
        /// What was rejected and what was sent instead.
        detail: String,
    },
    /// The driver for a migration took over (a run may mix executors): from
    /// now on surfaces offer only the controls it honours.
    ExecutorSelected {
        /// The migration's version.
        migration: String,
        /// Driver name (`native`, `gh-ost`, `pt-osc`, `sim`).
        executor: String,
        /// Its controls.
        capabilities: crate::exec::Capabilities,
        /// What surfaces should say about them (e.g. pt-osc's pause latency).
        #[serde(default)]
        notes: Vec<String>,
    },
    /// A DBA removed what the run left behind (`cutover cleanup`), after typing
    /// the table name; recorded after the run ended.
    CleanedUp {
        /// Person id.
        person: String,
        /// The statements run, in order.
        statements: Vec<String>,
    },
    /// A sample recorded at the bounded rate or at a threshold crossing.
    Sampled {
        /// The sample.
        sample: Sample,
        /// Why it was recorded (`interval`, `crossed over`, `back under`).
        why: String,
    },
}

impl Event {
    /// Whether the run ends with this event.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Event::Succeeded
                | Event::Failed { .. }
                | Event::Aborted { .. }
                | Event::Rejected { .. }
                | Event::Withdrawn { .. }
                | Event::Expired { .. }
        )
    }

    /// snake_case name, as serialised in `type`.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Created { .. } => "created",
            Event::Requested { .. } => "requested",
            Event::Approved { .. } => "approved",
            Event::ApprovalSatisfied { .. } => "approval_satisfied",
            Event::Rejected { .. } => "rejected",
            Event::Withdrawn { .. } => "withdrawn",
            Event::Overridden { .. } => "overridden",
            Event::WindowWarning { .. } => "window_warning",
            Event::WaitingForWindow { .. } => "waiting_for_window",
            Event::WindowOpened => "window_opened",
            Event::WindowClosed { .. } => "window_closed",
            Event::PlanRevised { .. } => "plan_revised",
            Event::ApprovalsVoided { .. } => "approvals_voided",
            Event::Expired { .. } => "expired",
            Event::Started { .. } => "started",
            Event::PauseRequested { .. } => "pause_requested",
            Event::Paused => "paused",
            Event::ResumeRequested { .. } => "resume_requested",
            Event::Resumed => "resumed",
            Event::Throttled { .. } => "throttled",
            Event::Unthrottled => "unthrottled",
            Event::ReadyToCutOver => "ready_to_cut_over",
            Event::CutOverRequested { .. } => "cut_over_requested",
            Event::CuttingOver => "cutting_over",
            Event::Tuned { .. } => "tuned",
            Event::AbortRequested { .. } => "abort_requested",
            Event::Succeeded => "succeeded",
            Event::Failed { .. } => "failed",
            Event::Aborted { .. } => "aborted",
            Event::Interrupted { .. } => "interrupted",
            Event::Recovered { .. } => "recovered",
            Event::Refused { .. } => "refused",
            Event::MessagePosted { .. } => "message_posted",
            Event::SlackProblem { .. } => "slack_problem",
            Event::ExecutorSelected { .. } => "executor_selected",
            Event::CleanedUp { .. } => "cleaned_up",
            Event::Sampled { .. } => "sampled",
        }
    }
}
