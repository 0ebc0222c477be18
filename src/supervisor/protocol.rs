//! The control socket protocol: one JSON object per line each way.
//!
//! Client → supervisor: `subscribe` (then state, optionally the recent
//! history, then events and samples stream back until the run ends) or `command` (answered by one `reply`). A
//! connection may do both.
//!
//! `slack_interaction` is how another supervisor's Slack relay hands over a
//! click or modal submission for this run that Slack delivered to *its*
//! Socket Mode link (answered by one `reply`: `accepted`
//! with no seqs when this supervisor's relay took it and answers the clicker
//! itself, `refused` saying why not). Only a peer with the
//! supervisor's own uid may send it.

use crate::audit::Anchor;
use crate::policy::Surface;
use crate::run::backlog::Backlog;
use crate::run::core::Reply;
use crate::run::{Command, EventRecord, RunState, Sample};
use serde::{Deserialize, Serialize};

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ClientMsg {
    /// Stream the state and everything after it.
    Subscribe {
        /// Queue size for this client (slow clients lose old items, never the end).
        #[serde(default = "default_capacity")]
        capacity: usize,
        /// Send the run's recent history first (`history`): a console's
        /// event log and lag chart. Clients that only need the state leave it off.
        #[serde(default)]
        history: bool,
    },
    /// The connection speaks for another OS user: only from `cutover serve`
    /// (a peer with the supervisor's own uid, for a run the service opened),
    /// and only as the first message. The service read `uid` from its own
    /// client's peer credentials.
    OnBehalf {
        /// The client's uid.
        uid: u32,
    },
    /// A command; the actor is the peer's OS user.
    Command {
        /// `console` or `cli`.
        surface: Surface,
        /// The command.
        command: Command,
        /// The tty, for the approval record.
        #[serde(default)]
        origin: Option<String>,
    },
    /// A Slack interaction for this run, received by another run's relay.
    SlackInteraction {
        /// The Slack payload, as Socket Mode delivered it (`block_actions`
        /// or `view_submission`).
        payload: serde_json::Value,
        /// The run whose relay received it (for logs).
        received_by_run: String,
    },
}

fn default_capacity() -> usize {
    1024
}

/// What the supervisor sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
pub enum ServerMsg {
    /// The state at subscription time.
    State {
        /// The state.
        state: Box<RunState>,
    },
    /// What the run published before this subscription (recent events and
    /// samples), sent right after `state` so a late console shows the
    /// event log and the lag chart's history. Its events are already folded
    /// into `state`.
    History {
        /// The backlog.
        backlog: Box<Backlog>,
    },
    /// A durable event.
    Event {
        /// The record.
        record: Box<EventRecord>,
        /// The trail head after it.
        anchor: Anchor,
    },
    /// A sample.
    Sample {
        /// The sample.
        sample: Box<Sample>,
    },
    /// Items were dropped because this client was slow.
    Gap {
        /// Events missed.
        missed_events: u64,
    },
    /// The answer to a command.
    Reply {
        /// The answer.
        reply: Reply,
    },
    /// The run ended; nothing more will come.
    End,
    /// The request could not be understood.
    Error {
        /// Why.
        message: String,
    },
}
