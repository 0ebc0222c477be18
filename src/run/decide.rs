//! The pure decision: given the run's state, a command (or an executor
//! update), the policy and the time, which events happen — or why not.
//!
//! Checks come in a fixed order so that a refusal names the first problem:
//! transport duplicate (dropped, unrecorded) → run ended → role × command
//! matrix → phase → command-specific rules (stale digest, self-approval,
//! windows, promotion, typed table name).

use super::command::{Command, CommandEnvelope, OverrideScope};
use super::events::{Event, RunSpec};
use super::state::{Phase, RunState};
use crate::exec::{Capabilities, Control, ExecPhase, ExecUpdate, OutcomeKind};
use crate::model::Risk;
use crate::policy::approvals::{self, ApprovalRecord, ApprovalStatus};
use crate::policy::authz::{self, Permission};
use crate::policy::config::CloseAction;
use crate::policy::promotion::{self, short};
use crate::policy::windows::{self, WindowDecision};
use crate::policy::{Actor, Directory, Identity, PolicyConfig};
use crate::sql::redact::{redact, redact_dsn};
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeSet;

/// Everything outside the run that a decision depends on.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The policy.
    pub policy: &'a PolicyConfig,
    /// Actor → person and role.
    pub directory: &'a Directory,
    /// Plan digests that succeeded on a staging target (from the trail).
    pub staging_successes: &'a BTreeSet<String>,
    /// What the run's executor can do.
    pub capabilities: Capabilities,
    /// Now.
    pub now: DateTime<Utc>,
}

/// The answer to a command.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// A transport duplicate: dropped without a record.
    Duplicate,
    /// Accepted: these events are to be recorded in order (may be empty for a quiet tick).
    Accepted(Vec<Event>),
    /// Refused: the [`Event::Refused`] is to be recorded.
    Refused(Event),
}

impl Decision {
    /// The events to record.
    pub fn into_events(self) -> Vec<Event> {
        match self {
            Decision::Duplicate => Vec::new(),
            Decision::Accepted(e) => e,
            Decision::Refused(e) => vec![e],
        }
    }

    /// The refusal reason, if refused.
    pub fn refusal(&self) -> Option<&str> {
        match self {
            Decision::Refused(Event::Refused { reason, .. }) => Some(reason),
            _ => None,
        }
    }
}

/// Free text from humans and tools never carries a secret into the trail.
pub fn scrub(text: &str) -> String {
    redact_dsn(&redact(text.trim()))
}

/// The permission a command needs from a human, for a run of `risk`.
pub fn permission_for(command: &Command, risk: Risk) -> Permission {
    match command {
        Command::Request | Command::RevisePlan { .. } | Command::Withdraw { .. } => {
            Permission::Request
        }
        Command::Approve { .. } | Command::Reject { .. } => Permission::approve(risk),
        Command::Override { .. } => Permission::Override,
        Command::Start => Permission::Start,
        Command::Pause => Permission::Pause,
        Command::Resume => Permission::Resume,
        Command::Abort { .. } => Permission::Abort,
        Command::CutOver { .. } => Permission::CutOver,
        Command::SetChunkSize { .. }
        | Command::SetMaxLag { .. }
        | Command::Tick
        | Command::NoteMessage { .. }
        | Command::NoteSlackProblem { .. } => Permission::Tune,
    }
}

/// Decides a command.
pub fn decide(state: &RunState, env: &CommandEnvelope, ctx: &Context<'_>) -> Decision {
    if env.dedup.as_ref().is_some_and(|k| state.seen.contains(k)) {
        return Decision::Duplicate;
    }
    let who = ctx.directory.resolve(&env.actor);
    let kind = env.command.kind();
    let refuse = |reason: String| {
        Decision::Refused(Event::Refused {
            command: kind,
            person: who.person.clone(),
            surface: env.surface,
            reason,
        })
    };
    let Some(spec) = state.spec.as_ref() else {
        return refuse("no such run".to_string());
    };
    if state.phase.is_terminal() {
        if matches!(env.command, Command::Tick) {
            return Decision::Accepted(Vec::new());
        }
        // The completion summary is posted after the end; where it is
        // still belongs to the run.
        if let (Command::NoteMessage { key, channel, id }, Actor::System) =
            (&env.command, &env.actor)
        {
            return Decision::Accepted(vec![Event::MessagePosted {
                key: key.clone(),
                channel: channel.clone(),
                id: id.clone(),
            }]);
        }
        if let (Command::NoteSlackProblem { code, detail }, Actor::System) =
            (&env.command, &env.actor)
        {
            return Decision::Accepted(vec![Event::SlackProblem {
                code: code.clone(),
                detail: detail.clone(),
            }]);
        }
        return refuse(format!("the run has ended ({})", state.phase));
    }
    let system_only = matches!(
        env.command,
        Command::Tick | Command::NoteMessage { .. } | Command::NoteSlackProblem { .. }
    );
    if env.actor == Actor::System {
        if !matches!(
            env.command,
            Command::Tick
                | Command::RevisePlan { .. }
                | Command::NoteMessage { .. }
                | Command::NoteSlackProblem { .. }
        ) {
            return refuse(format!("{kind} needs a person, not cutover itself"));
        }
    } else if system_only {
        return refuse("only cutover itself sends ticks".to_string());
    } else {
        let perm = permission_for(&env.command, spec.risk);
        if !authz::allowed(&ctx.policy.permissions, who.role, perm) {
            return refuse(authz::refusal(
                &ctx.policy.permissions,
                &env.actor,
                &who,
                perm,
            ));
        }
    }
    let d = Decider {
        state,
        spec,
        ctx,
        who: &who,
        env,
    };
    match d.command() {
        Ok(events) => Decision::Accepted(events),
        Err(reason) => refuse(reason),
    }
}

/// A refusal decided at the edge, before the command could be decided here:
/// a click on an out-of-date render (first click wins). It is recorded like
/// any refusal, except that a transport duplicate is dropped unrecorded.
pub fn refuse_outside(
    state: &RunState,
    env: &CommandEnvelope,
    ctx: &Context<'_>,
    reason: &str,
) -> Decision {
    if env.dedup.as_ref().is_some_and(|k| state.seen.contains(k)) {
        return Decision::Duplicate;
    }
    Decision::Refused(Event::Refused {
        command: env.command.kind(),
        person: ctx.directory.resolve(&env.actor).person,
        surface: env.surface,
        reason: scrub(reason),
    })
}

struct Decider<'a> {
    state: &'a RunState,
    spec: &'a RunSpec,
    ctx: &'a Context<'a>,
    who: &'a Identity,
    env: &'a CommandEnvelope,
}

type Verdict = Result<Vec<Event>, String>;

impl Decider<'_> {
    fn command(&self) -> Verdict {
        let phase = self.state.phase;
        match &self.env.command {
            Command::Request => self.request(),
            Command::Approve { plan_digest } => self.approve(plan_digest),
            Command::Reject { reason } => {
                self.phase_in(&[
                    Phase::AwaitingApproval,
                    Phase::Approved,
                    Phase::WaitingForWindow,
                ])?;
                Ok(vec![Event::Rejected {
                    person: self.who.person.clone(),
                    reason: need_reason(reason)?,
                }])
            }
            Command::Withdraw { reason } => {
                self.phase_in(&[
                    Phase::Planned,
                    Phase::AwaitingApproval,
                    Phase::Approved,
                    Phase::WaitingForWindow,
                ])?;
                Ok(vec![Event::Withdrawn {
                    person: self.who.person.clone(),
                    reason: need_reason(reason)?,
                }])
            }
            Command::Override { scope, reason } => self.override_(*scope, reason),
            Command::Start => self.start(),
            Command::Pause => {
                self.phase_in(&[Phase::Running, Phase::Throttled])?;
                self.capable(self.ctx.capabilities.pause, "pause")?;
                if self.state.pause_pending {
                    return Err("a pause is already pending".into());
                }
                Ok(vec![Event::PauseRequested {
                    person: self.who.person.clone(),
                }])
            }
            Command::Resume => {
                self.phase_in(&[Phase::Paused])?;
                if self.state.resume_pending {
                    return Err("a resume is already pending".into());
                }
                Ok(vec![Event::ResumeRequested {
                    person: self.who.person.clone(),
                }])
            }
            Command::Abort { reason, table } => {
                let reason = need_reason(reason)?;
                self.typed_table(table.as_deref())?;
                if phase.is_pre_start() {
                    return Ok(vec![Event::Aborted {
                        reason: format!("aborted by {} before start: {reason}", self.who.person),
                        leftovers: Vec::new(),
                    }]);
                }
                if self.state.abort_pending {
                    return Err("an abort is already pending".into());
                }
                Ok(vec![Event::AbortRequested {
                    person: self.who.person.clone(),
                    reason,
                }])
            }
            Command::CutOver { table } => {
                self.phase_in(&[Phase::ReadyToCutOver])?;
                self.typed_table(table.as_deref())?;
                if self.state.cut_over_pending {
                    return Err("a cut-over is already pending".into());
                }
                Ok(vec![Event::CutOverRequested {
                    person: self.who.person.clone(),
                }])
            }
            Command::SetChunkSize { rows } => {
                self.tunable(
                    self.ctx.capabilities.set_chunk_size,
                    "change the chunk size",
                )?;
                if !(10..=100_000).contains(rows) {
                    return Err(format!("chunk size {rows} is outside 10–100000 rows"));
                }
                Ok(vec![Event::Tuned {
                    chunk_size: Some(*rows),
                    max_lag_millis: None,
                }])
            }
            Command::SetMaxLag { millis } => {
                self.tunable(self.ctx.capabilities.set_max_lag, "change the max lag")?;
                if !(100..=3_600_000).contains(millis) {
                    return Err(format!("max lag {millis} ms is outside 100 ms – 1 h"));
                }
                Ok(vec![Event::Tuned {
                    chunk_size: None,
                    max_lag_millis: Some(*millis),
                }])
            }
            Command::RevisePlan {
                binding,
                versions,
                reason,
            } => {
                if !phase.is_pre_start() {
                    return Err(format!("the plan cannot change once the run is {phase}"));
                }
                let old = &self.spec.binding;
                if binding == old && versions == &self.spec.versions {
                    return Err("the plan is unchanged".into());
                }
                let reason = scrub(reason);
                let what = if binding.plan_digest != old.plan_digest {
                    format!(
                        "plan digest changed from {} to {}",
                        short(&old.plan_digest),
                        short(&binding.plan_digest)
                    )
                } else if binding.target != old.target {
                    format!("target changed from {} to {}", old.target, binding.target)
                } else {
                    "migration checksums changed".to_string()
                };
                let mut events = vec![Event::PlanRevised {
                    binding: binding.clone(),
                    versions: versions.clone(),
                    reason: reason.clone(),
                }];
                if !self.state.approvals.is_empty()
                    || matches!(phase, Phase::Approved | Phase::WaitingForWindow)
                {
                    events.push(Event::ApprovalsVoided {
                        reason: format!(
                            "{what} ({reason}): {} approval(s) no longer count",
                            self.state.approvals.len()
                        ),
                    });
                }
                Ok(events)
            }
            Command::Tick => Ok(self.tick()),
            Command::NoteMessage { key, channel, id } => {
                if self
                    .state
                    .messages
                    .get(key)
                    .is_some_and(|m| m.channel == *channel && m.id == *id)
                {
                    return Ok(Vec::new());
                }
                Ok(vec![Event::MessagePosted {
                    key: key.clone(),
                    channel: channel.clone(),
                    id: id.clone(),
                }])
            }
            Command::NoteSlackProblem { code, detail } => Ok(vec![Event::SlackProblem {
                code: code.clone(),
                detail: detail.clone(),
            }]),
        }
    }

    fn phase_in(&self, allowed: &[Phase]) -> Result<(), String> {
        if allowed.contains(&self.state.phase) {
            Ok(())
        } else {
            Err(format!("not allowed while the run is {}", self.state.phase))
        }
    }

    fn capable(&self, yes: bool, what: &str) -> Result<(), String> {
        if yes {
            Ok(())
        } else {
            Err(format!("the {} executor cannot {what}", self.spec.executor))
        }
    }

    fn tunable(&self, capable: bool, what: &str) -> Result<(), String> {
        let phase = self.state.phase;
        if phase.is_pre_start() {
            return Ok(());
        }
        self.phase_in(&[
            Phase::Running,
            Phase::Paused,
            Phase::Throttled,
            Phase::ReadyToCutOver,
        ])?;
        self.capable(capable, what)
    }

    /// High-risk abort and cut-over need the table name typed by the human.
    fn typed_table(&self, typed: Option<&str>) -> Result<(), String> {
        if self.spec.risk != Risk::High {
            return Ok(());
        }
        let expected = self.spec.tables.join(", ");
        match typed {
            None => Err(format!(
                "high-risk run: type the table name to confirm ({expected})"
            )),
            Some(t) if table_matches(&self.spec.tables, t) => Ok(()),
            Some(t) => Err(format!(
                "typed table '{}' is not a table of this run ({expected})",
                scrub(t)
            )),
        }
    }

    fn window(&self) -> windows::WindowVerdict {
        let est = Duration::seconds(self.spec.estimated_seconds.max(0.0).ceil() as i64);
        windows::evaluate(&self.ctx.policy.windows, self.spec.risk, est, self.ctx.now)
            .unwrap_or_else(|e| windows::WindowVerdict {
                // Fail safe: a window we cannot read blocks.
                decision: WindowDecision::Block,
                reasons: vec![e.to_string()],
                suggestion: None,
            })
    }

    fn window_note(&self, v: &windows::WindowVerdict) -> String {
        v.explain(&self.ctx.policy.windows.timezone)
    }

    /// `Some(reason)` when a window blocks and no override is in force.
    fn window_block(&self) -> Option<String> {
        if self.state.overridden(OverrideScope::Window) {
            return None;
        }
        let v = self.window();
        (v.decision == WindowDecision::Block).then(|| self.window_note(&v))
    }

    fn promotion(&self) -> Result<(), String> {
        if self.state.overridden(OverrideScope::Promotion) {
            return Ok(());
        }
        promotion::check(
            &self.ctx.policy.promotion,
            self.spec.environment,
            &self.spec.binding.plan_digest,
            self.ctx.staging_successes,
        )
    }

    fn approval_status(&self, approvals: &[ApprovalRecord]) -> ApprovalStatus {
        let rule = self
            .ctx
            .policy
            .approval_rule(self.spec.environment, self.spec.risk);
        approvals::evaluate(
            self.ctx.policy,
            rule,
            approvals,
            &self.spec.binding,
            self.state.requester.as_deref(),
            self.ctx.now,
        )
    }

    /// Once approvals are complete: approved now, or waiting for the window.
    fn on_satisfied(&self, status: &ApprovalStatus, events: &mut Vec<Event>) {
        events.push(Event::ApprovalSatisfied {
            approvers: status.counted.clone(),
        });
        if let Some(reason) = self.window_block() {
            events.push(Event::WaitingForWindow { reason });
        }
    }

    fn request(&self) -> Verdict {
        self.phase_in(&[Phase::Planned])?;
        if let Some(reason) = self.window_block() {
            return Err(format!("blocked by window: {reason}"));
        }
        self.promotion()?;
        let mut events = vec![Event::Requested {
            person: self.who.person.clone(),
            name: self.who.name.clone(),
            surface: self.env.surface,
        }];
        let v = self.window();
        if v.decision == WindowDecision::Warn && !self.state.overridden(OverrideScope::Window) {
            events.push(Event::WindowWarning {
                reason: self.window_note(&v),
            });
        }
        let status = self.approval_status(&[]);
        if status.satisfied() {
            self.on_satisfied(&status, &mut events);
        }
        Ok(events)
    }

    fn approve(&self, seen_digest: &str) -> Verdict {
        if matches!(self.state.phase, Phase::Approved | Phase::WaitingForWindow) {
            return Err("the run is already approved".into());
        }
        self.phase_in(&[Phase::AwaitingApproval])?;
        let binding = &self.spec.binding;
        if seen_digest != binding.plan_digest {
            return Err(format!(
                "stale approval: it was for plan {} but the run's plan is now {}",
                short(seen_digest),
                short(&binding.plan_digest)
            ));
        }
        if self.env.surface != crate::policy::Surface::Slack
            && !self.ctx.policy.approvals.allow_local
        {
            return Err("policy accepts approvals from Slack only".into());
        }
        if self.state.requester.as_deref() == Some(self.who.person.as_str()) {
            return Err(format!(
                "self-approval: {} requested this run and cannot approve it",
                self.who.name
            ));
        }
        let Some(role) = self.who.role else {
            return Err("unknown approver".into());
        };
        let status = self.approval_status(&self.state.approvals);
        if !status.roles.contains(&role) {
            let roles: Vec<&str> = status.roles.iter().map(|r| r.as_str()).collect();
            return Err(format!(
                "a {role}'s approval does not count for a {} {} run (needs {})",
                self.spec.environment,
                self.spec.risk,
                if roles.is_empty() {
                    "none".to_string()
                } else {
                    roles.join(" or ")
                }
            ));
        }
        if status.counted.contains(&self.who.person) {
            return Err(format!("{} has already approved", self.who.name));
        }
        let record = ApprovalRecord {
            approver: self.who.person.clone(),
            name: self.who.name.clone(),
            role,
            actor: self.env.actor.clone(),
            surface: self.env.surface,
            at: self.ctx.now,
            binding: binding.clone(),
            versions: self.spec.versions.clone(),
            origin: self.env.origin.as_deref().map(scrub),
        };
        let mut all = self.state.approvals.clone();
        all.push(record.clone());
        let mut events = vec![Event::Approved { approval: record }];
        let status = self.approval_status(&all);
        if status.satisfied() {
            self.on_satisfied(&status, &mut events);
        }
        Ok(events)
    }

    fn override_(&self, scope: OverrideScope, reason: &str) -> Verdict {
        let reason = need_reason(reason)?;
        if !self.state.phase.is_pre_start() && scope == OverrideScope::Promotion {
            return Err(format!("not allowed while the run is {}", self.state.phase));
        }
        if self.state.overridden(scope) {
            return Err("already overridden".into());
        }
        let mut events = vec![Event::Overridden {
            scope,
            person: self.who.person.clone(),
            reason,
        }];
        if scope == OverrideScope::Window && self.state.phase == Phase::WaitingForWindow {
            events.push(Event::WindowOpened);
        }
        Ok(events)
    }

    fn start(&self) -> Verdict {
        let started = Event::Started {
            person: self.who.person.clone(),
        };
        match self.state.phase {
            // Restart after an interruption the executor confirmed left nothing
            // running: a restart is a start, so the same gates hold (a recorded
            // window override still waives the window).
            Phase::Interrupted => {
                self.restart_gate()?;
                return Ok(vec![started]);
            }
            Phase::WaitingForWindow => {
                return Err(format!(
                    "waiting for window: {}",
                    self.state.window_note.clone().unwrap_or_default()
                ));
            }
            _ => self.phase_in(&[Phase::Approved])?,
        }
        let status = self.approval_status(&self.state.approvals);
        if !status.satisfied() {
            return Err(format!("approvals no longer hold: {}", status.missing()));
        }
        if let Some(reason) = self.window_block() {
            return Err(format!("blocked by window: {reason}"));
        }
        self.promotion()?;
        Ok(vec![started])
    }

    /// The gates of a first start, for continuing an interrupted run. The
    /// approvals must still bind to the run's plan and satisfy the policy as
    /// they did when it first started (a run that ran for hours is not voided
    /// by their age).
    fn restart_gate(&self) -> Result<(), String> {
        let rule = self
            .ctx
            .policy
            .approval_rule(self.spec.environment, self.spec.risk);
        let status = approvals::evaluate(
            self.ctx.policy,
            rule,
            &self.state.approvals,
            &self.spec.binding,
            self.state.requester.as_deref(),
            self.state.started_at.unwrap_or(self.ctx.now),
        );
        if !status.satisfied() {
            return Err(format!("approvals no longer hold: {}", status.missing()));
        }
        if let Some(reason) = self.window_block() {
            return Err(format!("blocked by window: {reason}"));
        }
        self.promotion()
    }

    fn tick(&self) -> Vec<Event> {
        let phase = self.state.phase;
        let mut events = Vec::new();
        if matches!(phase, Phase::Approved | Phase::WaitingForWindow) {
            let status = self.approval_status(&self.state.approvals);
            if !status.satisfied() {
                let hours = self.ctx.policy.approvals.expire_after_hours;
                events.push(Event::Expired {
                    reason: format!("approvals expired: the run did not start within {hours} h"),
                });
                return events;
            }
        }
        if phase == Phase::WaitingForWindow && self.window_block().is_none() {
            events.push(Event::WindowOpened);
            if self.ctx.policy.approvals.auto_start_in_window && self.promotion().is_ok() {
                events.push(Event::Started {
                    person: "system".to_string(),
                });
            }
        }
        if matches!(phase, Phase::Running | Phase::Throttled | Phase::Paused)
            && !self.state.overridden(OverrideScope::Window)
        {
            let v = self.window();
            if v.decision != WindowDecision::Allow {
                let reason = format!("window closed while running: {}", self.window_note(&v));
                if self.state.window_note.as_deref() != Some(reason.as_str()) {
                    let action = self.ctx.policy.windows.on_close;
                    events.push(Event::WindowClosed { reason, action });
                    if action == CloseAction::Pause
                        && phase != Phase::Paused
                        && !self.state.pause_pending
                        && self.ctx.capabilities.pause
                    {
                        events.push(Event::PauseRequested {
                            person: "system".to_string(),
                        });
                    }
                }
            }
        }
        events
    }
}

fn need_reason(reason: &str) -> Result<String, String> {
    let r = scrub(reason);
    if r.is_empty() {
        Err("a written reason is required".into())
    } else {
        Ok(r)
    }
}

/// Whether a typed name is one of the run's tables (schema and quotes optional).
pub fn table_matches(tables: &[String], typed: &str) -> bool {
    let norm = |s: &str| {
        s.trim()
            .chars()
            .filter(|c| !matches!(c, '`' | '"'))
            .collect::<String>()
            .to_ascii_lowercase()
    };
    let t = norm(typed);
    !t.is_empty()
        && tables.iter().any(|name| {
            let n = norm(name);
            n == t
                || n.rsplit('.').next() == Some(t.as_str())
                || t.rsplit('.').next() == Some(n.as_str())
        })
}

/// Phases in which replica lag is read and drives throttling. Paused is one
/// of them: a throttle that lag no longer warrants must be lifted while the
/// run is paused, or a resume would find it still throttled.
pub fn watches_lag(phase: Phase) -> bool {
    // A postponed cut-over can wait for hours while replicas drift: keep polling.
    matches!(
        phase,
        Phase::Running | Phase::Throttled | Phase::Paused | Phase::ReadyToCutOver
    )
}

/// The control the core sends to a driver that does not watch replicas
/// itself, given the replicas over the limit (`over`, each named) and
/// whether the core throttles it now.
pub fn lag_control(over: &[String], throttling: bool) -> Option<Control> {
    match (over.is_empty(), throttling) {
        (false, false) => Some(Control::Throttle {
            reason: over.join(", "),
        }),
        (true, true) => Some(Control::Unthrottle),
        _ => None,
    }
}

/// Decides what an executor update means for the run: phase changes become
/// events (a pause counts only once the executor confirms it).
pub fn decide_exec(state: &RunState, update: &ExecUpdate) -> Vec<Event> {
    let phase = state.phase;
    if phase.is_terminal() || phase.is_pre_start() {
        return Vec::new();
    }
    match update {
        ExecUpdate::Lag(_) => Vec::new(),
        ExecUpdate::Executor {
            migration,
            executor,
            capabilities,
            notes,
        } => vec![Event::ExecutorSelected {
            migration: migration.clone(),
            executor: executor.clone(),
            capabilities: *capabilities,
            notes: notes.clone(),
        }],
        ExecUpdate::Finished(outcome) => vec![match &outcome.kind {
            OutcomeKind::Succeeded => Event::Succeeded,
            OutcomeKind::Failed { error } => Event::Failed {
                error: scrub(error),
                leftovers: outcome.leftovers.clone(),
            },
            OutcomeKind::Aborted => Event::Aborted {
                reason: state
                    .abort_reason
                    .clone()
                    .unwrap_or_else(|| "aborted by the executor".to_string()),
                leftovers: outcome.leftovers.clone(),
            },
        }],
        ExecUpdate::Status(st) => {
            if phase == Phase::Interrupted {
                return match &st.phase {
                    ExecPhase::Succeeded => vec![Event::Succeeded],
                    ExecPhase::Failed { error } => vec![Event::Failed {
                        error: scrub(error),
                        leftovers: Vec::new(),
                    }],
                    ExecPhase::Aborted => vec![Event::Aborted {
                        reason: "found aborted after an interruption".to_string(),
                        leftovers: Vec::new(),
                    }],
                    p if p.run_phase().is_some() => vec![Event::Recovered { status: st.clone() }],
                    _ => Vec::new(),
                };
            }
            match (&st.phase, phase) {
                (ExecPhase::Paused, Phase::Running | Phase::Throttled) => vec![Event::Paused],
                (ExecPhase::Copying | ExecPhase::Starting, Phase::Paused) => vec![Event::Resumed],
                (ExecPhase::Copying | ExecPhase::Starting, Phase::Throttled) => {
                    vec![Event::Unthrottled]
                }
                (ExecPhase::Throttled { reason }, Phase::Running) => vec![Event::Throttled {
                    reason: scrub(reason),
                }],
                // Throttled is not paused: the executor took the resume (a
                // pause dominates a throttle in every driver) but lag still
                // holds it. Both facts are recorded, or the run would stay
                // paused for ever.
                (ExecPhase::Throttled { reason }, Phase::Paused) => vec![
                    Event::Resumed,
                    Event::Throttled {
                        reason: scrub(reason),
                    },
                ],
                (
                    ExecPhase::PostponingCutOver,
                    Phase::Running | Phase::Throttled | Phase::Paused,
                ) => vec![Event::ReadyToCutOver],
                (ExecPhase::CuttingOver, p) if p != Phase::CuttingOver => vec![Event::CuttingOver],
                _ => Vec::new(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::approvals::Binding;
    use crate::policy::{Environment, Surface};
    use crate::run::events::EventRecord;

    fn state() -> RunState {
        let spec = RunSpec {
            binding: Binding {
                plan_digest: "d".into(),
                target: "t".into(),
            },
            environment: Environment::Prod,
            risk: Risk::Medium,
            versions: vec![],
            estimated_seconds: 0.0,
            tables: vec![],
            executor: "sim".into(),
        };
        let recs = EventRecord::stamp(
            "r",
            0,
            vec![Event::Created { spec }],
            &Actor::System,
            None,
            DateTime::<Utc>::default(),
        );
        RunState::replay(&recs)
    }

    fn with<T>(f: impl FnOnce(&Context<'_>) -> T) -> T {
        let policy = PolicyConfig::default();
        let directory = Directory::new(&policy);
        let staging = BTreeSet::new();
        f(&Context {
            policy: &policy,
            directory: &directory,
            staging_successes: &staging,
            capabilities: Capabilities {
                pause: true,
                postpone_cut_over: true,
                set_chunk_size: true,
                set_max_lag: true,
                lag_throttle: false,
            },
            now: DateTime::<Utc>::default(),
        })
    }

    fn note(actor: Actor) -> CommandEnvelope {
        CommandEnvelope::new(
            actor,
            Surface::System,
            Command::NoteMessage {
                key: "slack.preflight".into(),
                channel: "C1".into(),
                id: "1.2".into(),
            },
        )
    }

    #[test]
    fn message_ids_are_noted_by_cutover_itself_only_and_once() {
        let s = state();
        let d = with(|c| decide(&s, &note(Actor::System), c));
        let Decision::Accepted(events) = d else {
            panic!("{d:?}")
        };
        assert!(matches!(&events[..], [Event::MessagePosted { id, .. }] if id == "1.2"));
        let recs = EventRecord::stamp(
            "r",
            s.last_seq,
            events,
            &Actor::System,
            None,
            s.last_at.unwrap_or_default(),
        );
        let s2 = s.clone().apply(&recs[0]);
        assert_eq!(s2.messages["slack.preflight"].id, "1.2");
        let again = with(|c| decide(&s2, &note(Actor::System), c));
        assert_eq!(
            again,
            Decision::Accepted(vec![]),
            "the same id is not recorded twice"
        );
        let by_human = with(|c| decide(&s, &note(Actor::local("mallory")), c));
        assert!(by_human.refusal().is_some(), "{by_human:?}");
    }

    #[test]
    fn refusals_from_the_edge_are_recorded_unless_duplicates() {
        let s = state();
        let mut env =
            CommandEnvelope::new(Actor::slack("T1", "U1"), Surface::Slack, Command::Pause);
        env.dedup = Some("k".into());
        let d = with(|c| refuse_outside(&s, &env, c, "clicked an out-of-date message"));
        assert!(
            matches!(
                &d,
                Decision::Refused(Event::Refused {
                    command: crate::run::CommandKind::Pause,
                    surface: Surface::Slack,
                    ..
                })
            ),
            "{d:?}"
        );
        let recs = EventRecord::stamp(
            "r",
            s.last_seq,
            d.into_events(),
            &env.actor,
            Some("k"),
            s.last_at.unwrap_or_default(),
        );
        let s2 = s.apply(&recs[0]);
        assert_eq!(s2.refusals, 1);
        assert_eq!(
            with(|c| refuse_outside(&s2, &env, c, "again")),
            Decision::Duplicate
        );
    }
}
