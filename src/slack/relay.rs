//! The relay: follows one run's published items and keeps three Slack
//! messages true — the pre-flight, the progress reply in its thread, and the
//! completion summary (broadcast to the channel) — plus milestone replies.
//!
//! Rate limits shape everything here (spec §4):
//! - each message is re-rendered from the *current* view when it is due, so
//!   intermediate states are never queued (latest state wins);
//! - one message is edited at most once per `coalesce` interval;
//! - a 429 blocks that method until `Retry-After` has passed; then only the
//!   newest state goes out;
//! - server errors and outages are retried with capped backoff, and the relay
//!   does not finish until the final state of every message is delivered
//!   (or a configuration error makes that impossible, which it reports).
//!
//! Message `ts` values are part of the run: each new message is recorded
//! through the run core as [`Command::NoteMessage`] (an
//! [`Event::MessagePosted`] in the trail), and a relay started from a run's
//! state (after a restart, rebuilt from the trail) edits the same messages.
//! The completion summary is posted after the run's last event, when its
//! core may already have stopped: its `ts` is then kept in memory only, and
//! a relay restarted in that moment posts the summary once more rather
//! than never (a duplicate summary is better than a missing one).

use super::api::{ApiError, Handling, SlackApi, methods};
use super::blocks::{self, Message, RenderCtx};
use super::config::LinkTemplates;
use super::pace::Paced;
use super::view::RunView;
use crate::model::Plan;
use crate::policy::{Actor, Surface};
use crate::run::core::Request;
use crate::run::fanout::{Published, Subscription};
use crate::run::{Command, CommandEnvelope, Phase, RunState};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Keys of the relay's messages in [`RunState::messages`].
pub mod keys {
    /// The pre-flight message.
    pub const PREFLIGHT: &str = "slack.preflight";
    /// The progress reply.
    pub const PROGRESS: &str = "slack.progress";
    /// The completion summary.
    pub const COMPLETION: &str = "slack.completion";
}

/// How long recording a message id may hold up the relay.
const NOTE_TIMEOUT: Duration = Duration::from_secs(5);
/// Milestone replies kept while Slack is unreachable (older ones are dropped;
/// the progress message still shows the state).
const MAX_MILESTONES: usize = 20;

/// Where the relay's messages are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageIds {
    /// Channel id as Slack returned it.
    pub channel: String,
    /// The pre-flight message.
    pub preflight: Option<String>,
    /// The progress reply.
    pub progress: Option<String>,
    /// The completion summary.
    pub completion: Option<String>,
}

impl MessageIds {
    /// The ids a run recorded (its [`Event::MessagePosted`] events), in `channel` by default.
    pub fn from_state(state: &RunState, channel: &str) -> MessageIds {
        let get = |k: &str| state.messages.get(k);
        MessageIds {
            channel: get(keys::PREFLIGHT)
                .map_or_else(|| channel.to_string(), |m| m.channel.clone()),
            preflight: get(keys::PREFLIGHT).map(|m| m.id.clone()),
            progress: get(keys::PROGRESS).map(|m| m.id.clone()),
            completion: get(keys::COMPLETION).map(|m| m.id.clone()),
        }
    }
}

/// What the relay needs to know about its run.
#[derive(Debug, Clone)]
pub struct RelaySetup {
    /// Run id.
    pub run: String,
    /// Target name.
    pub target: String,
    /// Channel id.
    pub channel: String,
    /// The plan (statements for the pre-flight).
    pub plan: Plan,
    /// Link templates.
    pub links: LinkTemplates,
    /// Person id → Slack user id.
    pub people: BTreeMap<String, String>,
    /// Minimum interval between edits of one message.
    pub coalesce: Duration,
    /// The run core, to record message ids; `None` keeps them in memory only.
    pub requests: Option<mpsc::Sender<Request>>,
}

/// How the relay ended.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RelayReport {
    /// Message ids.
    pub ids: MessageIds,
    /// The final state of every message reached Slack.
    pub final_delivered: bool,
    /// A configuration error that stopped the relay (token, scope, channel).
    pub fatal: Option<String>,
    /// Payload bugs Slack rejected (logged, not resent).
    pub rejected: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    Preflight,
    Progress,
    Completion,
}

#[derive(Debug, Default)]
struct SlotState {
    /// The last payload Slack accepted for this message.
    sent: Option<Value>,
    /// When it was last sent (edits are spaced by `coalesce`).
    last_sent: Option<Instant>,
    /// Slack rejected this message's blocks: from now on it is plain text
    /// (a rejected payload is never resent, and the same renderer would
    /// only produce the same mistake again).
    plain: Option<String>,
    /// Slack rejected even the plain text: nothing more is sent for it.
    dead: bool,
}

/// The relay for one run.
pub struct Relay {
    setup: RelaySetup,
    api: Arc<Paced<dyn SlackApi>>,
    view: RunView,
    ids: MessageIds,
    slots: BTreeMap<Slot, SlotState>,
    milestones: VecDeque<Message>,
    report: RelayReport,
    views_tx: watch::Sender<RunView>,
}

/// The plain-text stand-in for a message whose blocks Slack rejected.
fn plain_body(channel: &str, why: &str, m: &Message, update: bool) -> Value {
    let text = blocks::clip(
        &format!(
            "⚠️ Slack rejected the formatted message ({why}); plain text instead — decide and watch in the console.\n{}",
            m.text
        ),
        4000,
    );
    let mut body = json!({"channel": channel, "text": text});
    if update {
        // Without `blocks` an edit would keep the old (stale) ones.
        body["blocks"] = json!([]);
    }
    body
}

impl Relay {
    /// A relay starting from `view` (the state handed over with the subscription).
    pub fn new(setup: RelaySetup, api: Arc<dyn SlackApi>, view: RunView) -> Relay {
        let ids = MessageIds::from_state(&view.state, &setup.channel);
        let (views_tx, _) = watch::channel(view.clone());
        Relay {
            setup,
            api: Arc::new(Paced::new(api)),
            view,
            ids,
            slots: BTreeMap::new(),
            milestones: VecDeque::new(),
            report: RelayReport::default(),
            views_tx,
        }
    }

    /// The relay's current view, for click handling (render revision, phase).
    pub fn views(&self) -> watch::Receiver<RunView> {
        self.views_tx.subscribe()
    }

    fn ctx(&self) -> RenderCtx<'_> {
        RenderCtx {
            run: &self.setup.run,
            target: &self.setup.target,
            links: &self.setup.links,
            people: &self.setup.people,
        }
    }

    /// Folds one item; milestones are queued as their events arrive.
    pub fn apply(&mut self, item: &Published) {
        self.view.apply(item);
        if let Published::Event { record, .. } = item {
            let ctx = self.ctx();
            if let Some(m) = blocks::milestone_for(&record.event, &ctx) {
                if self.milestones.len() >= MAX_MILESTONES {
                    self.milestones.pop_front();
                }
                self.milestones.push_back(m);
            }
        }
        self.views_tx.send_replace(self.view.clone());
    }

    fn ended(&self) -> bool {
        self.view.state.phase.is_terminal()
    }

    /// The payload a slot should show now, if it should exist yet.
    fn desired(&self, slot: Slot) -> Option<Message> {
        let s = &self.view.state;
        match slot {
            Slot::Preflight => (s.phase != Phase::Planned || s.requester.is_some())
                .then(|| blocks::preflight(&self.setup.plan, &self.view, &self.ctx())),
            Slot::Progress => s
                .started_at
                .is_some()
                .then(|| blocks::progress(&self.view, &self.ctx())),
            Slot::Completion => self
                .ended()
                .then(|| blocks::completion(&self.view, &self.ctx())),
        }
    }

    /// The body a slot should have in Slack now (blocks, or the plain-text
    /// stand-in once its blocks were rejected); `None` when it should not
    /// exist yet or nothing more can be sent for it.
    fn desired_body(&self, slot: Slot) -> Option<Value> {
        let m = self.desired(slot)?;
        let st = self.slots.get(&slot);
        if st.is_some_and(|s| s.dead) {
            return None;
        }
        Some(match st.and_then(|s| s.plain.as_deref()) {
            Some(why) => plain_body(&self.ids.channel, why, &m, self.ts(slot).is_some()),
            None => m.body(&self.ids.channel),
        })
    }

    fn ts(&self, slot: Slot) -> Option<&String> {
        match slot {
            Slot::Preflight => self.ids.preflight.as_ref(),
            Slot::Progress => self.ids.progress.as_ref(),
            Slot::Completion => self.ids.completion.as_ref(),
        }
    }

    /// Sends a system command to the run core (message ids, problems).
    async fn note(&self, command: Command) {
        let Some(requests) = &self.setup.requests else {
            return;
        };
        let env = CommandEnvelope::new(Actor::System, Surface::System, command);
        let (tx, rx) = oneshot::channel();
        // The core answers at once; after the run's end it is gone (see the
        // module doc). Never let a stuck core stall the messages.
        let sent = tokio::time::timeout(NOTE_TIMEOUT, requests.send(Request::Command(env, tx)));
        if matches!(sent.await, Ok(Ok(()))) {
            let _ = tokio::time::timeout(NOTE_TIMEOUT, rx).await;
        }
    }

    async fn set_ts(&mut self, slot: Slot, ts: Option<String>) {
        let key = match slot {
            Slot::Preflight => keys::PREFLIGHT,
            Slot::Progress => keys::PROGRESS,
            Slot::Completion => keys::COMPLETION,
        };
        match slot {
            Slot::Preflight => self.ids.preflight = ts.clone(),
            Slot::Progress => self.ids.progress = ts.clone(),
            Slot::Completion => self.ids.completion = ts.clone(),
        }
        let Some(id) = ts else {
            return;
        };
        self.note(Command::NoteMessage {
            key: key.to_string(),
            channel: self.ids.channel.clone(),
            id,
        })
        .await;
    }

    /// The method and body a slot needs sent now, ignoring pacing.
    fn pending(&self, slot: Slot) -> Option<(&'static str, Value)> {
        let body = self.desired_body(slot)?;
        let st = self.slots.get(&slot);
        let posted = self.ts(slot).is_some();
        if posted && st.and_then(|s| s.sent.as_ref()) == Some(&body) {
            return None;
        }
        if !posted && slot != Slot::Preflight && self.ids.preflight.is_none() {
            return None; // threads under the pre-flight
        }
        Some(if posted {
            (methods::UPDATE, body)
        } else {
            (methods::POST_MESSAGE, body)
        })
    }

    /// The next moment something may be sent, or `None` when nothing is pending.
    fn next_due(&self, now: Instant, coalesce: Duration) -> Option<Instant> {
        if self.report.fatal.is_some() {
            return None;
        }
        let mut due: Option<Instant> = None;
        let mut consider = |t: Instant| due = Some(due.map_or(t, |d: Instant| d.min(t)));
        for slot in [Slot::Preflight, Slot::Progress, Slot::Completion] {
            let Some((method, _)) = self.pending(slot) else {
                continue;
            };
            let mut t = now;
            if method == methods::UPDATE
                && let Some(last) = self.slots.get(&slot).and_then(|s| s.last_sent)
            {
                t = t.max(last + coalesce);
            }
            if let Some(b) = self.api.blocked_until(method) {
                t = t.max(b);
            }
            consider(t);
        }
        if !self.milestones.is_empty() && self.ids.preflight.is_some() {
            consider(
                self.api
                    .blocked_until(methods::POST_MESSAGE)
                    .map_or(now, |b| b.max(now)),
            );
        }
        due
    }

    /// Whether every message shows the final state (or cannot be shown).
    fn final_delivered(&self) -> bool {
        self.ended()
            && [Slot::Preflight, Slot::Progress, Slot::Completion]
                .into_iter()
                .all(|slot| match self.desired_body(slot) {
                    None => true,
                    Some(b) => {
                        self.ts(slot).is_some()
                            && self.slots.get(&slot).and_then(|s| s.sent.as_ref()) == Some(&b)
                    }
                })
    }

    /// Records a problem as a run event (the console shows it) and in the report.
    async fn problem(&mut self, code: &str, detail: String) {
        eprintln!("cutover: Slack: {detail}");
        self.note(Command::NoteSlackProblem {
            code: code.to_string(),
            detail,
        })
        .await;
    }

    async fn failed(&mut self, slot: Option<Slot>, method: &'static str, e: &ApiError) {
        let code = e.code().unwrap_or("error").to_string();
        match e.handling() {
            // Pacing already knows (see `pace`): nothing is resent early.
            Handling::RateLimited | Handling::Retry => {}
            Handling::Fatal | Handling::StopChannel => {
                self.report.fatal = Some(e.to_string());
                self.problem(
                    &code,
                    format!("the relay stopped: {e}; the channel sees nothing more of this run"),
                )
                .await;
            }
            Handling::Repost | Handling::ReplyInstead => {
                if let Some(s) = slot {
                    self.set_ts(s, None).await;
                    self.slots.remove(&s);
                }
            }
            _ => {
                // Our payload was wrong. Never send it again: the slot goes
                // plain text once, and if even that is rejected, quiet.
                self.report.rejected.push(e.to_string());
                let details = match e {
                    ApiError::Slack { messages, .. } if !messages.is_empty() => {
                        format!(" ({})", blocks::clip(&messages.join("; "), 300))
                    }
                    _ => String::new(),
                };
                let what = match slot {
                    Some(Slot::Preflight) => "pre-flight message",
                    Some(Slot::Progress) => "progress message",
                    Some(Slot::Completion) => "completion summary",
                    None => "milestone reply",
                };
                let Some(s) = slot else {
                    self.problem(
                        &code,
                        format!("Slack rejected a {what}: {method} {code}{details}"),
                    )
                    .await;
                    return;
                };
                let st = self.slots.entry(s).or_default();
                let detail = if st.plain.is_none() {
                    st.plain = Some(code.clone());
                    format!(
                        "Slack rejected the {what}: {method} {code}{details}; sent as plain text instead"
                    )
                } else {
                    st.dead = true;
                    format!(
                        "Slack rejected the plain-text {what} too: {method} {code}{details}; it is no longer sent"
                    )
                };
                let dead_preflight =
                    s == Slot::Preflight && st.dead && self.ids.preflight.is_none();
                self.problem(&code, detail).await;
                if dead_preflight {
                    // Nothing can thread under a pre-flight that does not exist.
                    self.report.fatal = Some(e.to_string());
                }
            }
        }
    }

    /// Sends whatever is due at `now`: the pre-flight first (the others
    /// thread under it), then progress, milestones, and the summary last so
    /// the thread reads in order.
    async fn flush(&mut self, coalesce: Duration) {
        let now = Instant::now();
        self.flush_slots(&[Slot::Preflight, Slot::Progress], coalesce, now)
            .await;
        self.flush_milestones().await;
        if self.milestones.is_empty() {
            self.flush_slots(&[Slot::Completion], coalesce, now).await;
        }
    }

    async fn flush_slots(&mut self, slots: &[Slot], coalesce: Duration, now: Instant) {
        for &slot in slots {
            if self.report.fatal.is_some() {
                return;
            }
            let Some((method, body)) = self.pending(slot) else {
                continue;
            };
            if method == methods::UPDATE
                && self
                    .slots
                    .get(&slot)
                    .and_then(|s| s.last_sent)
                    .is_some_and(|l| l + coalesce > now)
            {
                continue;
            }
            if self.api.blocked_until(method).is_some() {
                continue;
            }
            let mut args = body.clone();
            match (self.ts(slot).cloned(), slot) {
                (Some(ts), _) => args["ts"] = json!(ts),
                (None, Slot::Preflight) => {}
                (None, _) => {
                    let Some(parent) = self.ids.preflight.clone() else {
                        continue;
                    };
                    args["thread_ts"] = json!(parent);
                    if slot == Slot::Completion {
                        args["reply_broadcast"] = json!(true);
                    }
                }
            }
            match self.api.call(method, args).await {
                Ok(resp) => {
                    if method == methods::POST_MESSAGE {
                        if let Some(c) = resp["channel"].as_str() {
                            self.ids.channel = c.to_string();
                        }
                        let ts = resp["ts"].as_str().map(str::to_string);
                        self.set_ts(slot, ts).await;
                    }
                    let st = self.slots.entry(slot).or_default();
                    st.sent = Some(body);
                    st.last_sent = Some(now);
                }
                Err(e) => self.failed(Some(slot), method, &e).await,
            }
        }
    }

    async fn flush_milestones(&mut self) {
        while let (Some(m), Some(parent)) =
            (self.milestones.front().cloned(), self.ids.preflight.clone())
        {
            if self.report.fatal.is_some()
                || self.api.blocked_until(methods::POST_MESSAGE).is_some()
            {
                break;
            }
            let mut args = m.body(&self.ids.channel);
            args["thread_ts"] = json!(parent);
            match self.api.call(methods::POST_MESSAGE, args).await {
                Ok(_) => {
                    self.milestones.pop_front();
                }
                Err(e) => {
                    let h = e.handling();
                    if !matches!(h, Handling::RateLimited | Handling::Retry) {
                        // Not resent: the progress message still shows the state.
                        self.milestones.pop_front();
                    }
                    self.failed(None, methods::POST_MESSAGE, &e).await;
                    break;
                }
            }
        }
    }

    /// Runs until the run has ended and its final state is in Slack (or a
    /// configuration error stops it). Never blocks the run: it only reads
    /// its own subscription.
    pub async fn run(self, sub: Subscription) -> RelayReport {
        self.run_until(sub, CancellationToken::new()).await
    }

    /// [`run`](Self::run), or until `shutdown` (then the report says
    /// whether the final state had been delivered).
    pub async fn run_until(
        mut self,
        mut sub: Subscription,
        shutdown: CancellationToken,
    ) -> RelayReport {
        let coalesce = self.setup.coalesce;
        let mut open = true;
        loop {
            let now = Instant::now();
            if self.final_delivered() || self.report.fatal.is_some() {
                break;
            }
            if !open && !self.ended() {
                // The run core went away without a final event: keep what is shown.
                break;
            }
            let due = self.next_due(now, coalesce);
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                item = sub.recv(), if open => match item {
                    Some(i) => self.apply(&i),
                    None => open = false,
                },
                _ = async {
                    match due {
                        Some(t) => tokio::time::sleep_until(t).await,
                        None => std::future::pending::<()>().await,
                    }
                } => self.flush(coalesce).await,
            }
        }
        self.report.final_delivered = self.final_delivered();
        self.report.ids = self.ids.clone();
        self.report
    }
}
