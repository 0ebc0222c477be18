//! A migration run as an append-only stream of events.
//!
//! - [`events`]: the event and sample types (the trail's vocabulary);
//! - [`command`]: what surfaces send;
//! - [`state`]: the pure fold of events into a [`RunState`];
//! - [`decide`]: the pure decision — a command or an executor update in, events out;
//! - [`sampling`]: which samples are worth recording, at a bounded rate;
//! - [`fanout`]: per-subscriber queues that never block the run;
//! - [`backlog`]: what a late subscriber missed (recent events and samples);
//! - [`core`]: the async loop that owns one run.

pub mod backlog;
pub mod command;
pub mod copyview;
pub mod core;
pub mod decide;
pub mod events;
pub mod fanout;
pub mod sampling;
pub mod state;

pub use command::{Command, CommandEnvelope, CommandKind, OverrideScope};
pub use decide::{Context, Decision, decide, decide_exec, refuse_outside};
pub use events::{EVENT_SCHEMA, Event, EventRecord, RunSpec, Sample};
pub use state::{Phase, RunState};
