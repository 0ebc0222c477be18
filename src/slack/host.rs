//! The entry points the supervisor calls: one [`SlackHost`] per Slack app
//! on this host (API client, click router, Socket Mode link), and one
//! relay per run, spawned with [`SlackHost::spawn_for_run`].
//!
//! ```ignore
//! let host = SlackHost::new(api, Arc::new(Interactions::new(api.clone(), groups, ttl)));
//! let socket = host.spawn_socket_mode(shutdown.clone());          // once per host
//! let (state, sub) = /* Request::Subscribe to the run core */;
//! let relay = host.spawn_for_run(setup, requests.clone(), state, sub, shutdown.clone());
//! let report: RelayReport = relay.await?;                          // after the run ends
//! ```
//!
//! Runs on several hosts need one Slack app per host (Slack hands each
//! Socket Mode envelope to one connection of the app), or the HTTP endpoint
//! behind one address.

use super::api::SlackApi;
use super::interact::{Interactions, RunHandle};
use super::relay::{Relay, RelayReport, RelaySetup};
use super::socket::{self, SocketError};
use super::view::RunView;
use crate::run::RunState;
use crate::run::core::Request;
use crate::run::fanout::Subscription;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// One Slack app on this host.
#[derive(Clone)]
pub struct SlackHost {
    /// The Web API (HTTP client, or the transcript without a token).
    pub api: Arc<dyn SlackApi>,
    /// Routes clicks to the runs served here.
    pub interactions: Arc<Interactions>,
}

impl SlackHost {
    /// A host for `api`, routing clicks through `interactions`.
    pub fn new(api: Arc<dyn SlackApi>, interactions: Arc<Interactions>) -> SlackHost {
        // Every call from this host (Socket Mode, relays) is paced: nothing
        // reaches Slack while it has asked us to wait.
        let api: Arc<dyn SlackApi> = Arc::new(super::pace::Paced::new(api));
        SlackHost { api, interactions }
    }

    /// The Socket Mode link (needs the app-level token); ends on `shutdown`
    /// or a fatal error (`link_disabled`, bad token).
    pub fn spawn_socket_mode(
        &self,
        shutdown: CancellationToken,
    ) -> JoinHandle<Result<(), SocketError>> {
        tokio::spawn(socket::run(
            self.api.clone(),
            self.interactions.clone(),
            shutdown,
        ))
    }

    /// Relays one run: posts and edits its messages from `sub` (subscribed
    /// with `state` via [`Request::Subscribe`]), routes its clicks to
    /// `requests`, and records message ids through the same channel. The
    /// task ends when the run's final state is in Slack, on a configuration
    /// error, or on `shutdown`; then the run's clicks are no longer served
    /// here (they are answered and recorded as for an unknown run).
    pub fn spawn_for_run(
        &self,
        mut setup: RelaySetup,
        requests: mpsc::Sender<Request>,
        state: RunState,
        sub: Subscription,
        shutdown: CancellationToken,
    ) -> JoinHandle<RelayReport> {
        setup.requests = Some(requests.clone());
        let run = setup.run.clone();
        let handle_base = (setup.target.clone(), setup.channel.clone());
        let relay = Relay::new(setup, self.api.clone(), RunView::from_state(state));
        self.interactions.register(
            &run,
            RunHandle {
                requests,
                view: relay.views(),
                target: handle_base.0,
                channel: handle_base.1,
            },
        );
        // Group members and accounts cached before the first click.
        self.interactions.spawn_warm(&run);
        let interactions = self.interactions.clone();
        tokio::spawn(async move {
            let report = relay.run_until(sub, shutdown).await;
            interactions.unregister(&run);
            report
        })
    }
}
