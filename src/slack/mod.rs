//! The Slack relay: the team watches and decides in Slack while the DBA
//! drives the console.
//!
//! - [`config`]: the optional `[slack]` section of `cutover.toml`;
//! - [`view`]: the relay's pure fold of run events and samples into what it shows;
//! - [`blocks`]: pure rendering of that view (and of a plan) to Block Kit JSON;
//! - [`api`]: the Web API behind a trait, over `reqwest`, with every documented error classified;
//! - [`pace`]: one backoff (Retry-After and server errors, with jitter) for every call;
//! - [`transcript`]: the API stand-in used without a token (every payload to a file);
//! - [`relay`]: the coalescing sender — latest state wins, `Retry-After` honoured, a rejected payload
//!   never resent (plain text instead, recorded as a run event), final state always delivered;
//! - [`interact`]: clicks and modal submissions → authorized commands for the run core;
//! - [`signing`]: v0 request signatures (HTTP interactivity);
//! - [`socket`]: the Socket Mode client;
//! - [`http`]: `cutover relay serve`, the signed HTTP endpoint;
//! - [`manifest`]: the app manifest;
//! - [`route`]: forwarding a click Slack handed to this relay to the supervisor of its run;
//! - [`host`]: what the supervisor calls — [`SlackHost::spawn_for_run`].
//!
//! Slack hands each Socket Mode envelope to one connection of the app, so a
//! relay sees clicks for runs it does not own: on one host (one user) they
//! are forwarded to their run's supervisor ([`route`]). Runs on several
//! hosts need one Slack app per host, or the HTTP endpoint behind one address.

pub mod api;
pub mod blocks;
pub mod config;
pub mod host;
pub mod http;
pub mod interact;
pub mod manifest;
pub mod pace;
pub mod relay;
pub mod route;
pub mod signing;
pub mod socket;
pub mod transcript;
pub mod view;

// pub use api::{ApiError, SlackApi};
pub use config::SlackConfig;
pub use host::SlackHost;
pub use view::RunView;
