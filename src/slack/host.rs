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
//! Slack hands each Socket Mode envelope to one connection of the app: give
//! the click router a [`Router`](super::route::Router) so clicks for this
//! user's other live runs reach their supervisors, and hand
//! [`Interactions::forwarded`] to the control socket
//! ([`supervise_with`](crate::supervisor::supervise_with)) so theirs reach
//! this one. Runs on several hosts need one Slack app per host, or the HTTP
//! endpoint behind one address.

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

/// Where the last demo's Slack transcript is kept (the demo's own directory
/// is temporary).
pub fn demo_transcript_path() -> std::path::PathBuf {
    std::env::temp_dir().join("cutover-demo-slack-transcript.jsonl")
}

/// Relays a run without a token: every payload to the transcript in
/// `run_dir` (what the demo shows of Slack). Subscribes through `requests`;
/// `None` when the run core is gone.
pub async fn transcript_relay(
    run_dir: &std::path::Path,
    run: &str,
    target: &str,
    plan: crate::model::Plan,
    requests: mpsc::Sender<Request>,
    shutdown: CancellationToken,
) -> Option<(JoinHandle<RelayReport>, std::path::PathBuf)> {
    let t = Arc::new(super::transcript::Transcript::in_run_dir(run_dir));
    let path = t.path().to_path_buf();
    let api: Arc<dyn SlackApi> = t;
    let interactions =
        Interactions::new(api.clone(), Vec::new(), std::time::Duration::from_secs(300));
    let host = SlackHost::new(api, Arc::new(interactions));
    let (reply, rx) = tokio::sync::oneshot::channel();
    requests
        .send(Request::Subscribe {
            capacity: 4096,
            reply,
        })
        .await
        .ok()?;
    let (state, sub) = rx.await.ok()?;
    let setup = RelaySetup {
        run: run.to_string(),
        target: target.to_string(),
        channel: "#db-changes".into(),
        plan,
        links: Default::default(),
        people: Default::default(),
        coalesce: std::time::Duration::from_secs(1),
        requests: None,
    };
    Some((
        host.spawn_for_run(setup, requests, state, sub, shutdown),
        path,
    ))
}

/// After the demo: waits for the relay's last edits, keeps the transcript
/// at [`demo_transcript_path`], and prints what the channel would have seen.
pub async fn finish_demo(
    relay: JoinHandle<RelayReport>,
    transcript: &std::path::Path,
    print: bool,
) {
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), relay).await;
    let kept = demo_transcript_path();
    let at = match std::fs::copy(transcript, &kept) {
        Ok(_) => kept,
        Err(_) => transcript.to_path_buf(),
    };
    if !print {
        return;
    }
    let text = std::fs::read_to_string(&at).unwrap_or_default();
    println!();
    println!(
        "Slack is off (no token): what #db-changes would have seen — transcript at {} (`cutover slack preview --demo` shows it again):",
        at.display()
    );
    println!();
    for l in super::transcript::render_channel(&text) {
        println!("  {l}");
    }
}
