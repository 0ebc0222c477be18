//! `cutover audit show`: a readable timeline (pure renderer).

use super::chain::VerifiedEntry;
use super::entry::Entry;
use crate::policy::promotion::short;
use crate::run::{Event, EventRecord, Sample};
use std::collections::BTreeSet;
use std::fmt::Write;

/// One line describing an event, shared by `show` and `export`.
pub fn describe(event: &Event) -> String {
    match event {
        Event::ExecutorSelected {
            migration,
            executor,
            notes,
            ..
        } => format!(
            "migration {migration} runs under {executor}{}",
            if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join("; "))
            }
        ),
        Event::CleanedUp { person, statements } => {
            format!("leftovers cleaned up by {person}: {}", statements.join(" "))
        }
        Event::Created { spec } => format!(
            "created: plan {} on {} ({}, {} risk, {} migration(s), executor {})",
            short(&spec.binding.plan_digest),
            spec.binding.target,
            spec.environment,
            spec.risk,
            spec.versions.len(),
            spec.executor
        ),
        Event::Requested {
            person,
            name,
            surface,
        } => {
            let who = if name.is_empty() || name == person {
                person.clone()
            } else {
                format!("{name} ({person})")
            };
            format!("approval requested by {who} via {}", surface_name(*surface))
        }
        Event::Approved { approval: a } => format!(
            "approved by {} ({}, {}) via {}{} for plan {} on {} [{}]",
            a.name,
            a.approver,
            a.role,
            surface_name(a.surface),
            a.origin
                .as_deref()
                .map(|o| format!(" ({o})"))
                .unwrap_or_default(),
            short(&a.binding.plan_digest),
            a.binding.target,
            a.versions
                .iter()
                .map(|v| format!("{}:{}", v.version, short(&v.checksum)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Event::ApprovalSatisfied { approvers } => {
            format!("approval complete ({})", approvers.join(", "))
        }
        Event::Rejected { person, reason } => format!("rejected by {person}: {reason}"),
        Event::Withdrawn { person, reason } => format!("withdrawn by {person}: {reason}"),
        Event::Overridden {
            scope,
            person,
            reason,
        } => format!(
            "{} overridden by {person}: {reason}",
            match scope {
                crate::run::OverrideScope::Window => "window",
                crate::run::OverrideScope::Promotion => "promotion",
            }
        ),
        Event::WindowWarning { reason } => format!("window warning: {reason}"),
        Event::WaitingForWindow { reason } => format!("waiting for window: {reason}"),
        Event::WindowOpened => "window open".to_string(),
        Event::WindowClosed { reason, action } => format!(
            "{reason} (policy: {})",
            match action {
                crate::policy::config::CloseAction::Warn => "warn and keep going",
                crate::policy::config::CloseAction::Pause => "pause",
            }
        ),
        Event::PlanRevised {
            binding, reason, ..
        } => format!(
            "plan revised to {} on {}: {reason}",
            short(&binding.plan_digest),
            binding.target
        ),
        Event::ApprovalsVoided { reason } => format!("approvals void: {reason}"),
        Event::Expired { reason } => format!("expired: {reason}"),
        Event::Started { person } => format!("started by {person}"),
        Event::PauseRequested { person } => format!("pause requested by {person}"),
        Event::Paused => "paused (executor confirmed)".to_string(),
        Event::ResumeRequested { person } => format!("resume requested by {person}"),
        Event::Resumed => "resumed".to_string(),
        Event::Throttled { reason } => format!("throttled: {reason}"),
        Event::Unthrottled => "no longer throttled".to_string(),
        Event::ReadyToCutOver => "copy complete: cut-over postponed until commanded".to_string(),
        Event::CutOverRequested { person } => format!("cut-over requested by {person}"),
        Event::CuttingOver => "cutting over".to_string(),
        Event::Tuned {
            chunk_size,
            max_lag_millis,
        } => {
            let mut parts = Vec::new();
            if let Some(c) = chunk_size {
                parts.push(format!("chunk size {c}"));
            }
            if let Some(m) = max_lag_millis {
                parts.push(format!("max lag {m} ms"));
            }
            format!("tuned: {}", parts.join(", "))
        }
        Event::AbortRequested { person, reason } => {
            format!("abort requested by {person}: {reason}")
        }
        Event::Succeeded => "succeeded".to_string(),
        Event::Failed { error, leftovers } => {
            format!("failed: {error}{}", left(leftovers))
        }
        Event::Aborted { reason, leftovers } => format!("{reason}{}", left(leftovers)),
        Event::Interrupted { reason } => format!("interrupted: {reason}"),
        Event::Recovered { status } => format!("recovered: executor reports {}", status.phase),
        Event::Refused {
            command,
            person,
            surface,
            reason,
        } => format!(
            "refused {command} from {person} via {}: {reason}",
            surface_name(*surface)
        ),
        Event::MessagePosted { key, channel, id } => {
            format!("message {key} posted in {channel} as {id}")
        }
        Event::SlackProblem { code, detail } => format!("slack problem ({code}): {detail}"),
        Event::Sampled { sample, why } => match sample {
            Sample::Progress { status } => format!(
                "progress ({why}): {}{}{}",
                status.phase,
                status
                    .progress
                    .as_ref()
                    .and_then(|p| p.percent)
                    .map(|p| format!(" {p:.1}%"))
                    .unwrap_or_default(),
                // What the executor said (where a resume picks up, its summary).
                status
                    .progress
                    .as_ref()
                    .and_then(|p| p.detail.as_deref())
                    .map(|d| format!(" — {d}"))
                    .unwrap_or_default()
            ),
            Sample::Lag { sample } => format!(
                "lag ({why}): {} {}",
                sample.replica,
                sample
                    .seconds
                    .map(|s| format!("{s:.1}s"))
                    .unwrap_or_else(|| "unknown".to_string())
            ),
        },
    }
}

fn left(leftovers: &[crate::exec::Leftover]) -> String {
    if leftovers.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = leftovers
            .iter()
            .map(|l| format!("{} {}", l.kind, l.name))
            .collect();
        format!("; left behind: {}", names.join(", "))
    }
}

fn surface_name(s: crate::policy::Surface) -> &'static str {
    match s {
        crate::policy::Surface::Console => "console",
        crate::policy::Surface::Slack => "slack",
        crate::policy::Surface::Cli => "cli",
        crate::policy::Surface::System => "system",
    }
}

/// Runs whose id equals `filter` or whose plan includes migration version `filter`.
fn matching_runs(entries: &[VerifiedEntry], filter: &str) -> BTreeSet<String> {
    entries
        .iter()
        .filter_map(|e| match &e.entry {
            Entry::Run { record } => Some(record),
            _ => None,
        })
        .filter(|r| {
            r.run == filter
                || match &r.event {
                    Event::Created { spec } => spec.versions.iter().any(|v| v.version == filter),
                    Event::PlanRevised { versions, .. } => {
                        versions.iter().any(|v| v.version == filter)
                    }
                    _ => false,
                }
        })
        .map(|r| r.run.clone())
        .collect()
}

/// Renders the timeline of the runs matching `filter` (run id or migration
/// version), or of everything.
pub fn show(entries: &[VerifiedEntry], filter: Option<&str>) -> String {
    let runs = filter.map(|f| matching_runs(entries, f));
    let mut out = String::new();
    for e in entries {
        match &e.entry {
            Entry::Run { record } => {
                if runs.as_ref().is_some_and(|r| !r.contains(&record.run)) {
                    continue;
                }
                let _ = writeln!(out, "{}", line(record));
            }
            Entry::Relay { record: r } => {
                if runs.as_ref().is_some_and(|x| !x.contains(&r.run))
                    && filter != Some(r.run.as_str())
                {
                    continue;
                }
                let _ = writeln!(
                    out,
                    "{}  {}  relay  refused {} from {}: {}",
                    r.at.format("%Y-%m-%d %H:%M:%SZ"),
                    r.run,
                    r.command,
                    r.actor,
                    r.reason
                );
            }
            Entry::Forgotten {
                at,
                by,
                run,
                phase,
                removed,
            } => {
                if runs.as_ref().is_some_and(|x| !x.contains(run)) && filter != Some(run.as_str()) {
                    continue;
                }
                let _ = writeln!(
                    out,
                    "{}  {run}  forgotten by {by} ({phase}): removed {removed}",
                    at.format("%Y-%m-%d %H:%M:%SZ"),
                );
            }
            Entry::Sealed {
                at,
                by,
                reason,
                problem,
                damaged_lines,
                old_head,
                ..
            } => {
                let _ = writeln!(
                    out,
                    "#{:<5} {} trail SEALED by {by}: {problem}; {damaged_lines} damaged line(s) left in place; old head {}; reason: {reason}",
                    e.n,
                    at.format("%Y-%m-%d %H:%M:%S"),
                    old_head.as_deref().unwrap_or("missing")
                );
            }
            Entry::TornTailRepaired {
                line,
                bytes,
                quarantine,
                ..
            } => {
                let _ = writeln!(
                    out,
                    "#{:<5} trail: a torn line {line} ({bytes} bytes) from an interrupted append was moved to {quarantine}",
                    e.n
                );
            }
        }
    }
    if out.is_empty() {
        out.push_str("no matching records\n");
    }
    out
}

fn line(r: &EventRecord) -> String {
    format!(
        "{}  {}  #{:<3} {:<22} {}",
        r.at.format("%Y-%m-%d %H:%M:%SZ"),
        r.run,
        r.seq,
        r.actor.to_string(),
        describe(&r.event)
    )
}
