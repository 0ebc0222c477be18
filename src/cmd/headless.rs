//! The headless printer (`--no-tui`): the same run as the console, events
//! printed as lines or JSON lines, a summary at the end, and an exit code that
//! says how the run ended. Controls come from Slack (or `cutover approve`).

use crate::policy::Surface;
use crate::run::core::Reply;
use crate::run::{Command, EventRecord, Phase};
use crate::supervisor::{Client, ServerMsg, SupervisorError};
use crate::tui::Console;
use crate::tui::model::{describe, short};
use crate::tui::view::{duration, thousands};
use std::io::Write;
use std::path::Path;

/// How events are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFormat {
    /// `HH:MM:SS #seq actor text`.
    Text,
    /// One JSON object per event (the trail's record).
    Json,
}

/// Exit code of a run that ended in `phase`: 0 succeeded, 1 failed,
/// 3 refused/rejected or expired, 4 aborted (2 is usage or bad input).
pub fn exit_code(phase: Phase) -> i32 {
    match phase {
        Phase::Succeeded => 0,
        Phase::Rejected | Phase::Withdrawn | Phase::Expired => 3,
        Phase::Aborted => 4,
        _ => 1,
    }
}

/// One event as a line.
pub fn line(rec: &EventRecord, format: LineFormat) -> String {
    match format {
        LineFormat::Text => format!(
            "{} #{} {} {}",
            rec.at.format("%H:%M:%S"),
            rec.seq,
            rec.actor,
            describe(&rec.event)
        ),
        LineFormat::Json => serde_json::to_string(rec).unwrap_or_default(),
    }
}

/// The end-of-run summary, as lines.
pub fn summary(c: &Console) -> Vec<String> {
    let s = &c.state;
    let mut out = vec![format!(
        "run {} {}{}",
        s.run,
        s.phase.as_str().to_uppercase(),
        match (s.started_at, s.last_at) {
            (Some(a), Some(b)) => format!(" in {}", duration((b - a).num_seconds() as f64)),
            _ => String::new(),
        }
    )];
    if let Some(spec) = &s.spec {
        out.push(format!(
            "target {} ({}), {} risk, plan {}",
            spec.binding.target,
            spec.environment,
            spec.risk,
            short(&spec.binding.plan_digest)
        ));
    }
    if let Some(o) = &s.outcome {
        out.push(format!("outcome: {o}"));
    }
    if let Some(p) = c
        .progress
        .as_ref()
        .and_then(|p| p.progress.as_ref())
        .filter(|p| p.rows_copied > 0 || p.rows_total.is_some())
    {
        out.push(format!(
            "rows copied: {} of {}{}",
            thousands(p.rows_copied),
            p.rows_total.map(thousands).unwrap_or_else(|| "?".into()),
            // The same fold as the console and Slack (never clamped).
            c.copy
                .percent()
                .map(|x| format!(" ({})", crate::run::copyview::percent_label(x)))
                .unwrap_or_default()
        ));
    }
    for a in &s.approvals {
        out.push(format!(
            "approved by {} ({}, {})",
            a.name,
            a.role,
            crate::tui::model::surface_str(a.surface)
        ));
    }
    for l in &c.leftovers {
        out.push(format!(
            "left behind: {} {}{}",
            l.kind,
            l.name,
            l.cleanup
                .as_ref()
                .map(|x| format!(" (clean up: {x})"))
                .unwrap_or_default()
        ));
    }
    if let Some(a) = &c.anchor {
        out.push(format!(
            "audit head: {a} (check later: cutover audit verify --expect-head \"{a}\")"
        ));
    }
    out
}

/// Follows a run over its socket, printing events to `out` until it ends.
/// With `auto_start`, sends `start` once the run is approved.
pub async fn follow(
    socket: &Path,
    mut console: Console,
    format: LineFormat,
    auto_start: bool,
    out: &mut (dyn Write + Send),
) -> Result<Console, SupervisorError> {
    let mut sub = Client::connect(socket).await?;
    // With the run's history: a client that attaches late (or re-opens a
    // run) prints what happened before it too, as the console shows it.
    sub.attach(4096).await?;
    let mut printed_to = 0u64;
    let mut cmd = if auto_start {
        Some(Client::connect(socket).await?)
    } else {
        None
    };
    let mut started = false;
    loop {
        let Some(m) = sub.next().await? else { break };
        console.apply(&m);
        match &m {
            ServerMsg::History { backlog } => {
                if format == LineFormat::Text && !backlog.events.is_empty() {
                    let _ = writeln!(out, "earlier:");
                }
                for record in &backlog.events {
                    let _ = writeln!(out, "{}", line(record, format));
                    printed_to = printed_to.max(record.seq);
                }
                let _ = out.flush();
            }
            // An event of the history may also be streamed: printed once.
            ServerMsg::Event { record, .. } if record.seq > printed_to => {
                let _ = writeln!(out, "{}", line(record, format));
                printed_to = record.seq;
                let _ = out.flush();
            }
            ServerMsg::State { state } if format == LineFormat::Text => {
                let target = state
                    .spec
                    .as_ref()
                    .map(|s| s.binding.target.clone())
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "following run {} on {target}: {}",
                    state.run, state.phase
                );
            }
            ServerMsg::Gap { missed_events } if format == LineFormat::Text => {
                let _ = writeln!(out, "({missed_events} event(s) skipped: slow reader)");
            }
            ServerMsg::End => break,
            _ => {}
        }
        if console.state.phase == Phase::Approved
            && !started
            && let Some(c) = cmd.as_mut()
        {
            started = true;
            let reply = c
                .command(Surface::Cli, Command::Start, None, |_| {})
                .await?;
            if let Reply::Refused { reason } = reply
                && format == LineFormat::Text
            {
                let _ = writeln!(out, "start refused: {reason}");
            }
        }
        if console.state.phase.is_terminal() && matches!(m, ServerMsg::Event { .. }) {
            // The final event is in; the stream ends right after.
            continue;
        }
    }
    Ok(console)
}
