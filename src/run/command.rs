//! Commands: what a human (or cutover itself) asks of a run, from any surface.

use crate::policy::approvals::{Binding, VersionChecksum};
use crate::policy::{Actor, Surface};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A command with who sent it, from where, and its transport identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandEnvelope {
    /// Sender.
    pub actor: Actor,
    /// Surface.
    pub surface: Surface,
    /// Where exactly: Slack message ts, or the local tty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Transport de-duplication key (Slack envelope id): a second delivery is dropped unrecorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup: Option<String>,
    /// The command.
    pub command: Command,
}

impl CommandEnvelope {
    /// An envelope with no origin and no de-duplication key.
    pub fn new(actor: Actor, surface: Surface, command: Command) -> CommandEnvelope {
        CommandEnvelope {
            actor,
            surface,
            origin: None,
            dedup: None,
            command,
        }
    }
}

/// What can be overridden, always with a written reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverrideScope {
    /// Peak periods and freezes.
    Window,
    /// The staging-before-prod rule.
    Promotion,
}

/// The commands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// Ask for approval.
    Request,
    /// Approve the plan the approver saw; a different digest is stale and refused.
    Approve {
        /// The digest shown to the approver.
        plan_digest: String,
    },
    /// Reject, with a reason.
    Reject {
        /// Why.
        reason: String,
    },
    /// Withdraw a run that has not started, with a reason (a changed plan
    /// superseded it): whoever may request may withdraw. Terminal.
    Withdraw {
        /// Why.
        reason: String,
    },
    /// Override a window or promotion block, with a reason.
    Override {
        /// What.
        scope: OverrideScope,
        /// Why.
        reason: String,
    },
    /// Start an approved run.
    Start,
    /// Pause.
    Pause,
    /// Resume.
    Resume,
    /// Abort, with a reason; high-risk runs need the typed table name.
    Abort {
        /// Why.
        reason: String,
        /// The table name typed by the human.
        #[serde(default)]
        table: Option<String>,
    },
    /// Proceed with a postponed cut-over; high-risk runs need the typed table name.
    CutOver {
        /// The table name typed by the human.
        #[serde(default)]
        table: Option<String>,
    },
    /// Change the chunk size (rows).
    SetChunkSize {
        /// Rows per chunk, 10–100000.
        rows: u32,
    },
    /// Change the max replica lag (milliseconds, as gh-ost counts it).
    SetMaxLag {
        /// Milliseconds, 100–3600000.
        millis: u64,
    },
    /// The plan or target changed under the run (checksums re-read, rules overridden).
    RevisePlan {
        /// New binding.
        binding: Binding,
        /// New migrations.
        versions: Vec<VersionChecksum>,
        /// Why.
        reason: String,
    },
    /// Time passed: expiry, windows opening and closing. From `system` only.
    Tick,
    /// A surface posted a message about the run (e.g. the Slack pre-flight)
    /// and records where it is, so a restarted surface edits the same one.
    /// From `system` only.
    NoteMessage {
        /// Which message, e.g. `slack.preflight`.
        key: String,
        /// Channel (or equivalent) the message is in.
        channel: String,
        /// The message's id there (Slack `ts`).
        id: String,
    },
    /// The Slack relay could not show the run as it should. From `system` only.
    NoteSlackProblem {
        /// Slack's error code.
        code: String,
        /// What was rejected and what was sent instead.
        detail: String,
    },
}

/// A command's name, for refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandKind {
    /// [`Command::Request`].
    Request,
    /// [`Command::Approve`].
    Approve,
    /// [`Command::Reject`].
    Reject,
    /// [`Command::Withdraw`].
    Withdraw,
    /// [`Command::Override`].
    Override,
    /// [`Command::Start`].
    Start,
    /// [`Command::Pause`].
    Pause,
    /// [`Command::Resume`].
    Resume,
    /// [`Command::Abort`].
    Abort,
    /// [`Command::CutOver`].
    CutOver,
    /// [`Command::SetChunkSize`].
    SetChunkSize,
    /// [`Command::SetMaxLag`].
    SetMaxLag,
    /// [`Command::RevisePlan`].
    RevisePlan,
    /// [`Command::Tick`].
    Tick,
    /// [`Command::NoteMessage`].
    NoteMessage,
    /// [`Command::NoteSlackProblem`].
    NoteSlackProblem,
}

impl Command {
    /// The command's kind.
    pub fn kind(&self) -> CommandKind {
        match self {
            Command::Request => CommandKind::Request,
            Command::Approve { .. } => CommandKind::Approve,
            Command::Reject { .. } => CommandKind::Reject,
            Command::Withdraw { .. } => CommandKind::Withdraw,
            Command::Override { .. } => CommandKind::Override,
            Command::Start => CommandKind::Start,
            Command::Pause => CommandKind::Pause,
            Command::Resume => CommandKind::Resume,
            Command::Abort { .. } => CommandKind::Abort,
            Command::CutOver { .. } => CommandKind::CutOver,
            Command::SetChunkSize { .. } => CommandKind::SetChunkSize,
            Command::SetMaxLag { .. } => CommandKind::SetMaxLag,
            Command::RevisePlan { .. } => CommandKind::RevisePlan,
            Command::Tick => CommandKind::Tick,
            Command::NoteMessage { .. } => CommandKind::NoteMessage,
            Command::NoteSlackProblem { .. } => CommandKind::NoteSlackProblem,
        }
    }
}

impl fmt::Display for CommandKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        f.write_str(&s)
    }
}
