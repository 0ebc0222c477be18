//! Clicks and modal submissions → authorized commands for the run core.
//!
//! Transport-neutral: Socket Mode and the HTTP endpoint both hand payloads
//! here after acknowledging them. The order of checks: transport duplicate
//! (dropped) → known run → fresh render (first click wins) → the run core,
//! which authorizes the Slack user against the policy and group membership
//! and records every acceptance and refusal in the audit trail. Refusals are
//! explained to the clicker with an ephemeral message.
//!
//! Nothing is refused unrecorded: a stale click goes to the run core as a
//! [`Request::Refuse`] and lands in the run's own trail. A click for a run
//! with no core to record it — not served here, or already ended — goes
//! to the relay's own trail ([`Entry::Relay`]), because there is no run
//! stream to append to and inventing one would break the run's sequence.
//!
//! Slack hands each Socket Mode envelope to one open link of the app, so a
//! click for a run served by another supervisor of this user can land here:
//! it is forwarded to that supervisor ([`super::route`]), whose relay takes
//! it through [`Interactions::forwarded`] and handles it as its own. Only a
//! click for a run that is not live, or not known, is answered here.

use super::api::{Handling, SlackApi, methods};
use super::blocks::{self, Action, ActionValue};
use super::route::{Routed, Router};
use super::view::RunView;
use crate::audit::{Entry, RelayRecord, Trail};
use crate::model::Risk;
use crate::policy::{Actor, Surface};
use crate::run::core::{Reply, Request};
use crate::run::{Command, CommandEnvelope, CommandKind};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// Who clicked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackUser {
    /// Workspace (`T…`).
    pub team: String,
    /// User (`U…`/`W…`).
    pub id: String,
}

/// One interaction, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Interaction {
    /// A button click on a message.
    Click {
        /// Who.
        user: SlackUser,
        /// Which button.
        action: Action,
        /// What it carried.
        value: ActionValue,
        /// For `views.open` (3 s, single use).
        trigger_id: String,
        /// The click's own timestamp (de-duplication).
        action_ts: String,
        /// Channel of the message.
        channel: String,
        /// The message's ts.
        message_ts: String,
    },
    /// A modal submission.
    Submit {
        /// Who.
        user: SlackUser,
        /// Which modal (`callback_id`).
        action: Action,
        /// From `private_metadata`.
        value: ActionValue,
        /// Typed reason.
        reason: Option<String>,
        /// Typed table name.
        table: Option<String>,
        /// The view id (de-duplication).
        view_id: String,
    },
}

impl Interaction {
    /// Parses a `block_actions` or `view_submission` payload.
    pub fn parse(p: &Value) -> Option<Interaction> {
        let user = SlackUser {
            team: p["user"]["team_id"]
                .as_str()
                .or(p["team"]["id"].as_str())
                .unwrap_or("T?")
                .to_string(),
            id: p["user"]["id"].as_str()?.to_string(),
        };
        match p["type"].as_str()? {
            "block_actions" => {
                let a = p["actions"].get(0)?;
                Some(Interaction::Click {
                    user,
                    action: Action::parse(a["action_id"].as_str()?)?,
                    value: ActionValue::parse(a["value"].as_str()?)?,
                    trigger_id: p["trigger_id"].as_str().unwrap_or("").to_string(),
                    action_ts: a["action_ts"].as_str().unwrap_or("").to_string(),
                    channel: p["container"]["channel_id"]
                        .as_str()
                        .or(p["channel"]["id"].as_str())
                        .unwrap_or("")
                        .to_string(),
                    message_ts: p["container"]["message_ts"]
                        .as_str()
                        .or(p["message"]["ts"].as_str())
                        .unwrap_or("")
                        .to_string(),
                })
            }
            "view_submission" => {
                let v = &p["view"];
                let values = &v["state"]["values"];
                let text = |block: &str, action: &str| {
                    values[block][action]["value"].as_str().map(str::to_string)
                };
                Some(Interaction::Submit {
                    user,
                    action: Action::parse(v["callback_id"].as_str()?)?,
                    value: ActionValue::parse(v["private_metadata"].as_str()?)?,
                    reason: text("reason", "reason_input"),
                    table: text("table", "table_input"),
                    view_id: v["id"].as_str().unwrap_or("").to_string(),
                })
            }
            _ => None,
        }
    }

    fn user(&self) -> &SlackUser {
        match self {
            Interaction::Click { user, .. } | Interaction::Submit { user, .. } => user,
        }
    }

    fn value(&self) -> &ActionValue {
        match self {
            Interaction::Click { value, .. } | Interaction::Submit { value, .. } => value,
        }
    }

    /// The transport-independent de-duplication key.
    pub fn dedup_key(&self) -> String {
        match self {
            Interaction::Click {
                user,
                action,
                action_ts,
                ..
            } => format!("slack:{}:{}:{}", user.id, action.as_str(), action_ts),
            Interaction::Submit { user, view_id, .. } => {
                format!("slack:{}:view:{view_id}", user.id)
            }
        }
    }
}

/// A run this relay serves.
#[derive(Clone)]
pub struct RunHandle {
    /// The run core's request channel (in-process, next to the supervisor).
    pub requests: mpsc::Sender<Request>,
    /// The relay's view (render revision, phase, spec).
    pub view: watch::Receiver<RunView>,
    /// Target name.
    pub target: String,
    /// The run's channel (ephemeral answers to modal submissions go there).
    pub channel: String,
}

/// Group membership cached with a TTL.
#[derive(Debug, Default)]
struct GroupCache {
    fetched: Option<Instant>,
    /// Members per group, as last fetched (handed to each new run's core).
    members: BTreeMap<String, Vec<String>>,
    /// `users.info` verdicts: user → (when, why the user may not act).
    users: HashMap<String, (Instant, Option<String>)>,
}

/// Accounts looked up ahead of clicks per refresh (`users.info` is Tier 4).
const WARM_USERS: usize = 50;
/// Shortest interval between background refreshes.
const MIN_REFRESH: Duration = Duration::from_secs(30);

/// Why a Slack account may not act at all, from its `users.info` (spec
/// §11.1): bots, deactivated accounts and guests are refused whatever
/// their role.
pub fn account_problem(info: &Value) -> Option<String> {
    let u = &info["user"];
    if !u.is_object() {
        return Some("Slack did not describe this user".into());
    }
    let flag = |k: &str| u[k].as_bool().unwrap_or(false);
    if flag("deleted") {
        Some("the account is deactivated".into())
    } else if flag("is_bot") || flag("is_app_user") {
        Some("bots and apps cannot decide".into())
    } else if flag("is_restricted") || flag("is_ultra_restricted") {
        Some("guest accounts cannot decide".into())
    } else {
        None
    }
}

/// Routes interactions to runs.
pub struct Interactions {
    api: Arc<dyn SlackApi>,
    runs: Mutex<HashMap<String, RunHandle>>,
    seen: Mutex<VecDeque<String>>,
    groups: Vec<String>,
    group_ttl: Duration,
    cache: tokio::sync::Mutex<GroupCache>,
    /// One refresh at a time; never held while answering a click.
    refreshing: tokio::sync::Mutex<()>,
    /// Outcomes, for logs and tests: (dedup key, what happened).
    pub log: Mutex<Vec<(String, String)>>,
    /// The relay's own trail, for refusals no run can record.
    audit: Mutex<Option<Trail>>,
    /// Reaches the supervisors of runs not served here.
    router: Option<Router>,
    /// Modals opened here (view ids): a forwarded submission is taken only
    /// for a form this relay opened.
    opened_views: Mutex<VecDeque<String>>,
}

fn kind_of(a: Action) -> CommandKind {
    match a {
        Action::Approve => CommandKind::Approve,
        Action::Reject => CommandKind::Reject,
        Action::Pause => CommandKind::Pause,
        Action::Resume => CommandKind::Resume,
        Action::Abort => CommandKind::Abort,
        Action::CutOver => CommandKind::CutOver,
    }
}

/// The command a click asks for, as far as a refusal needs it.
fn command_of(a: Action, digest: &str) -> Command {
    match a {
        Action::Approve => Command::Approve {
            plan_digest: digest.to_string(),
        },
        Action::Reject => Command::Reject {
            reason: String::new(),
        },
        Action::Pause => Command::Pause,
        Action::Resume => Command::Resume,
        Action::Abort => Command::Abort {
            reason: String::new(),
            table: None,
        },
        Action::CutOver => Command::CutOver { table: None },
    }
}

/// De-duplication memory (keys).
const SEEN_KEYS: usize = 4096;

/// The ack for a submission: `None` closes the modal; `Some` shows errors.
pub type AckPayload = Option<Value>;

impl Interactions {
    /// Serves no runs yet; `groups` are the policy's Slack groups.
    pub fn new(api: Arc<dyn SlackApi>, groups: Vec<String>, group_ttl: Duration) -> Interactions {
        Interactions {
            // Ephemeral answers, modals and lookups share the one backoff.
            api: Arc::new(super::pace::Paced::new(api)),
            runs: Mutex::new(HashMap::new()),
            seen: Mutex::new(VecDeque::new()),
            groups,
            group_ttl,
            cache: tokio::sync::Mutex::new(GroupCache::default()),
            refreshing: tokio::sync::Mutex::new(()),
            log: Mutex::new(Vec::new()),
            audit: Mutex::new(None),
            router: None,
            opened_views: Mutex::new(VecDeque::new()),
        }
    }

    /// Forwards interactions for runs not served here through `router`.
    pub fn with_router(mut self, router: Router) -> Interactions {
        self.router = Some(router);
        self
    }

    /// What the supervisor's control socket hands forwarded interactions to.
    pub fn forwarded(self: &Arc<Self>) -> Arc<dyn crate::supervisor::ForwardedInteractions> {
        Arc::new(TakeForwarded(self.clone()))
    }

    /// Whether an interaction another relay received is this relay's: its
    /// run is served here, and (run ids of two projects may coincide) the
    /// click is on one of this run's messages, the submission from a form
    /// opened here.
    pub fn owns(&self, i: &Interaction) -> Result<(), String> {
        let run = &i.value().run;
        let h = self
            .handle(run)
            .ok_or_else(|| format!("run {run} is not served by this supervisor's relay"))?;
        let mine = match i {
            Interaction::Click { message_ts, .. } => h
                .view
                .borrow()
                .state
                .messages
                .values()
                .any(|m| &m.id == message_ts),
            Interaction::Submit { view_id, .. } => self
                .opened_views
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(view_id),
        };
        if mine {
            Ok(())
        } else {
            Err(format!(
                "the interaction is not on a message or form of this relay's run {run}"
            ))
        }
    }

    fn opened(&self, view_id: &str) {
        let mut v = self.opened_views.lock().unwrap_or_else(|p| p.into_inner());
        if v.len() >= SEEN_KEYS {
            v.pop_front();
        }
        v.push_back(view_id.to_string());
    }

    /// Records refusals that no run can record in `trail` (the relay's own,
    /// e.g. `relay-audit.jsonl` next to the project's trail).
    pub fn with_audit(self, trail: Trail) -> Interactions {
        *self.audit.lock().unwrap_or_else(|p| p.into_inner()) = Some(trail);
        self
    }

    /// Stops serving a run (its relay ended).
    pub fn unregister(&self, run: &str) {
        self.runs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(run);
    }

    /// Appends a relay refusal; without a trail it is logged (and says so).
    fn record_relay(
        &self,
        user: &SlackUser,
        run: &str,
        command: CommandKind,
        reason: &str,
        key: &str,
    ) {
        let record = RelayRecord {
            at: chrono::Utc::now(),
            actor: Actor::slack(&user.team, &user.id),
            surface: Surface::Slack,
            run: run.to_string(),
            command,
            reason: crate::run::decide::scrub(reason),
            dedup: Some(key.to_string()),
        };
        let mut t = self.audit.lock().unwrap_or_else(|p| p.into_inner());
        match t.as_mut().map(|t| t.append(&Entry::Relay { record })) {
            Some(Ok(_)) => {}
            Some(Err(e)) => eprintln!("cutover: could not record a refused Slack click: {e}"),
            None => eprintln!(
                "cutover: refused a Slack click from {} for run {run} ({reason}); no relay trail configured",
                user.id
            ),
        }
    }

    /// Records a refusal decided here: in the run's trail while its core
    /// listens, else in the relay's own.
    async fn refuse_recorded(
        &self,
        h: Option<&RunHandle>,
        i: &Interaction,
        reason: &str,
        key: &str,
    ) {
        let (action, value) = match i {
            Interaction::Click { action, value, .. }
            | Interaction::Submit { action, value, .. } => (*action, value),
        };
        let user = i.user();
        if let Some(h) = h {
            let envelope = CommandEnvelope {
                actor: Actor::slack(&user.team, &user.id),
                surface: Surface::Slack,
                origin: None,
                dedup: Some(key.to_string()),
                command: command_of(action, &value.digest),
            };
            let (tx, rx) = oneshot::channel();
            let sent = h
                .requests
                .send(Request::Refuse {
                    envelope,
                    reason: reason.to_string(),
                    reply: tx,
                })
                .await
                .is_ok();
            if sent && matches!(rx.await, Ok(Reply::Refused { .. } | Reply::Duplicate)) {
                return;
            }
        }
        let why = match h {
            Some(_) => format!("{reason} (the run's core has ended)"),
            None => reason.to_string(),
        };
        self.record_relay(user, &value.run, kind_of(action), &why, key);
    }

    /// Starts serving a run.
    pub fn register(&self, run: &str, handle: RunHandle) {
        self.runs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(run.to_string(), handle);
    }

    /// Whether `key` was seen; remembers it.
    pub fn seen_before(&self, key: &str) -> bool {
        let mut s = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if s.iter().any(|k| k == key) {
            return true;
        }
        if s.len() >= SEEN_KEYS {
            s.pop_front();
        }
        s.push_back(key.to_string());
        false
    }

    fn note(&self, key: &str, what: impl Into<String>) {
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((key.to_string(), what.into()));
    }

    fn handle(&self, run: &str) -> Option<RunHandle> {
        self.runs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(run)
            .cloned()
    }

    /// The synchronous part, done *before* the ack: for a submission whose
    /// typed table name is wrong, the errors to show in the modal.
    pub fn ack_payload(&self, payload: &Value) -> AckPayload {
        let Some(Interaction::Submit {
            action,
            value,
            table,
            reason,
            ..
        }) = Interaction::parse(payload)
        else {
            return None;
        };
        let h = self.handle(&value.run)?;
        let view = h.view.borrow().clone();
        let spec = view.state.spec.as_ref()?;
        let mut errors = BTreeMap::new();
        if matches!(action, Action::Reject | Action::Abort)
            && reason.as_deref().is_none_or(|r| r.trim().len() < 3)
        {
            errors.insert("reason", "Give a reason (it goes into the audit trail).");
        }
        if spec.risk == Risk::High && matches!(action, Action::Abort | Action::CutOver) {
            let typed = table.as_deref().unwrap_or("").trim();
            if !spec.tables.iter().any(|t| t.eq_ignore_ascii_case(typed)) {
                errors.insert("table", "Type the table name exactly.");
            }
        }
        (!errors.is_empty()).then(|| json!({"response_action": "errors", "errors": errors}))
    }

    async fn ephemeral(&self, channel: &str, user: &str, text: &str) {
        if channel.is_empty() {
            return;
        }
        let args = json!({"channel": channel, "user": user, "text": text});
        if let Err(e) = self.api.call(methods::POST_EPHEMERAL, args).await
            && e.handling() != Handling::NotInChannel
        {
            eprintln!("cutover: could not answer a Slack click: {e}");
        }
    }

    fn fresh(&self, at: Option<Instant>) -> bool {
        at.is_some_and(|t| t.elapsed() < self.group_ttl)
    }

    /// Group members, fetched when stale (or `force`d), and handed to the
    /// run core. No lock is held across a Slack call that a click waits on.
    async fn refresh_groups(&self, h: &RunHandle, force: bool) -> Vec<String> {
        if self.groups.is_empty() {
            return Vec::new();
        }
        let _one = self.refreshing.lock().await;
        let cached = {
            let c = self.cache.lock().await;
            (!force && self.fresh(c.fetched)).then(|| c.members.clone())
        };
        let members = match cached {
            Some(m) => m,
            None => {
                let mut fetched = BTreeMap::new();
                for g in &self.groups {
                    let args = json!({"usergroup": g.trim_start_matches('@')});
                    match self.api.call(methods::USERGROUP_USERS, args).await {
                        Ok(v) => {
                            let users: Vec<String> = v["users"]
                                .as_array()
                                .map(|a| {
                                    a.iter()
                                        .filter_map(|u| u.as_str().map(str::to_string))
                                        .collect()
                                })
                                .unwrap_or_default();
                            fetched.insert(g.clone(), users);
                        }
                        // Free plan or bad id: the static allow-list (people) still works.
                        Err(e) => eprintln!("cutover: Slack group {g}: {e}"),
                    }
                }
                let mut c = self.cache.lock().await;
                c.fetched = Some(Instant::now());
                c.members = fetched.clone();
                fetched
            }
        };
        let mut all = Vec::new();
        for (group, users) in members {
            all.extend(users.iter().cloned());
            let _ = h
                .requests
                .send(Request::SetGroupMembers { group, users })
                .await;
        }
        all.sort();
        all.dedup();
        all
    }

    /// `users.info` for the clicker, cached like group membership.
    async fn account_check(&self, user: &str) -> Option<String> {
        {
            let c = self.cache.lock().await;
            if let Some((at, why)) = c.users.get(user)
                && self.fresh(Some(*at))
            {
                return why.clone();
            }
        }
        self.fetch_account(user).await
    }

    /// Asks Slack about an account and caches the answer (not when Slack is
    /// unreachable: then it fails closed, uncached).
    async fn fetch_account(&self, user: &str) -> Option<String> {
        let why = match self
            .api
            .call(methods::USERS_INFO, json!({"user": user}))
            .await
        {
            Ok(v) => account_problem(&v),
            Err(e) if e.handling() == Handling::Unauthorized => {
                Some(format!("Slack does not know this user ({e})"))
            }
            Err(e) => return Some(format!("could not check the account with Slack ({e})")),
        };
        self.cache
            .lock()
            .await
            .users
            .insert(user.to_string(), (Instant::now(), why.clone()));
        why
    }

    /// Whether a click by `user` can be checked from the caches alone.
    pub fn warm_for(&self, user: &str) -> bool {
        let Ok(c) = self.cache.try_lock() else {
            return false;
        };
        (self.groups.is_empty() || self.fresh(c.fetched))
            && c.users
                .get(user)
                .is_some_and(|(at, _)| self.fresh(Some(*at)))
    }

    /// Warms the caches for a run as it starts (group members to its core,
    /// the members' accounts) and keeps them fresh in the background while
    /// the run is served, so a click never waits on a cold cache.
    pub fn spawn_warm(self: &Arc<Self>, run: &str) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        let run = run.to_string();
        tokio::spawn(async move {
            let mut first = true;
            while let Some(h) = me.handle(&run) {
                let members = me.refresh_groups(&h, !first).await;
                for u in members.iter().take(WARM_USERS) {
                    if me.handle(&run).is_none() {
                        return;
                    }
                    me.fetch_account(u).await;
                }
                first = false;
                tokio::time::sleep((me.group_ttl / 2).max(MIN_REFRESH)).await;
            }
        })
    }

    /// The work after the ack. `envelope` is the transport's id (Socket Mode envelope).
    pub async fn process(&self, payload: &Value, envelope: Option<&str>) {
        self.process_as(payload, envelope, false).await
    }

    /// [`process`](Self::process); a `forwarded` interaction (another relay
    /// received it) is never forwarded again.
    async fn process_as(&self, payload: &Value, envelope: Option<&str>, forwarded: bool) {
        let Some(i) = Interaction::parse(payload) else {
            return;
        };
        let key = i.dedup_key();
        if envelope.is_some_and(|e| self.seen_before(&format!("env:{e}"))) || self.seen_before(&key)
        {
            self.note(&key, "duplicate");
            return;
        }
        let user = i.user().clone();
        let channel = match &i {
            Interaction::Click { channel, .. } => channel.clone(),
            Interaction::Submit { .. } => String::new(),
        };
        let value = i.value().clone();
        let Some(h) = self.handle(&value.run) else {
            let routed = match (&self.router, forwarded) {
                (Some(r), false) => r.forward(payload, &value.run).await,
                _ => Routed::Unknown,
            };
            let run = blocks::fit(&value.run, 80);
            let (what, reason, answer) = match routed {
                Routed::Taken => {
                    // Its own relay answers and records it.
                    self.note(&key, "forwarded");
                    return;
                }
                Routed::NotLive => (
                    "not live".to_string(),
                    "the run is not live (its supervisor is not running)".to_string(),
                    format!(
                        "Run `{run}` is not live (its supervisor is not running): start it with `cutover resume {run}`. Nothing was done."
                    ),
                ),
                Routed::NotTaken(why) => (
                    format!("not taken: {}", why.join("; ")),
                    format!("the run's supervisor did not take it: {}", why.join("; ")),
                    format!(
                        "Run `{run}` could not take this ({}); nothing was done.",
                        blocks::fit(&why.join("; "), 300)
                    ),
                ),
                Routed::Unknown => (
                    "unknown run".to_string(),
                    "the run is not served by this relay".to_string(),
                    format!(
                        "Run `{run}` is not served by this relay (it may have ended or run on another host)."
                    ),
                ),
            };
            self.note(&key, what);
            self.refuse_recorded(None, &i, &reason, &key).await;
            self.ephemeral(&channel, &user.id, &answer).await;
            return;
        };
        // Run ids of two projects may coincide (copies of one repository):
        // a click on a message (a form) that is not provably this run's goes
        // first to another live run of that id that owns it, if any.
        if !forwarded
            && let Some(r) = &self.router
            && self.owns(&i).is_err()
            && r.forward(payload, &value.run).await == Routed::Taken
        {
            self.note(&key, "forwarded");
            return;
        }
        let channel = if channel.is_empty() {
            h.channel.clone()
        } else {
            channel
        };
        let view = h.view.borrow().clone();
        if let Interaction::Click { .. } = &i
            && value.rev != view.rev
        {
            self.note(&key, "stale render");
            let reason = format!(
                "clicked an out-of-date message (render {}, current {}; the run is {})",
                value.rev, view.rev, view.state.phase
            );
            self.refuse_recorded(Some(&h), &i, &reason, &key).await;
            self.ephemeral(
                &channel,
                &user.id,
                &format!(
                    "That message was out of date (the run is now {}); nothing was done. Look at the refreshed message.",
                    view.state.phase
                ),
            )
            .await;
            return;
        }
        let risk = view.state.spec.as_ref().map_or(Risk::High, |s| s.risk);
        let opens_modal = match &i {
            Interaction::Click { action, .. } => match action {
                Action::Reject | Action::Abort => true,
                Action::CutOver => risk == Risk::High,
                _ => false,
            },
            Interaction::Submit { .. } => false,
        };
        // A modal must open within 3 s of the click. On a cold cache the
        // checks would eat that time: open the form now and check at
        // submission (which always checks) — the form itself decides nothing.
        if !opens_modal || self.warm_for(&user.id) {
            self.refresh_groups(&h, false).await;
            if let Some(why) = self.account_check(&user.id).await {
                self.note(&key, format!("refused: {why}"));
                self.refuse_recorded(Some(&h), &i, &why, &key).await;
                self.ephemeral(&channel, &user.id, &format!("Refused: {why}"))
                    .await;
                return;
            }
        }
        let tables = view
            .state
            .spec
            .as_ref()
            .map(|s| s.tables.clone())
            .unwrap_or_default();
        let command = match &i {
            Interaction::Click {
                action, trigger_id, ..
            } => {
                let modal = match action {
                    Action::Reject => Some(blocks::reject_modal(&value, &h.target)),
                    Action::Abort if risk == Risk::High => Some(blocks::typed_table_modal(
                        Action::Abort,
                        &value,
                        &h.target,
                        &tables,
                    )),
                    Action::Abort => Some(blocks::abort_reason_modal(&value, &h.target)),
                    Action::CutOver if risk == Risk::High => Some(blocks::typed_table_modal(
                        Action::CutOver,
                        &value,
                        &h.target,
                        &tables,
                    )),
                    _ => None,
                };
                if let Some(view) = modal {
                    let args = json!({"trigger_id": trigger_id, "view": view});
                    match self.api.call(methods::VIEWS_OPEN, args).await {
                        Ok(v) => {
                            if let Some(id) = v["view"]["id"].as_str() {
                                self.opened(id);
                            }
                            self.note(&key, "modal opened")
                        }
                        Err(e) => {
                            self.note(&key, format!("modal failed: {e}"));
                            self.ephemeral(
                                &channel,
                                &user.id,
                                "Slack did not open the form in time; please click again.",
                            )
                            .await;
                        }
                    }
                    return;
                }
                match action {
                    Action::Approve => Command::Approve {
                        plan_digest: value.digest.clone(),
                    },
                    Action::Pause => Command::Pause,
                    Action::Resume => Command::Resume,
                    _ => Command::CutOver { table: None },
                }
            }
            Interaction::Submit {
                action,
                reason,
                table,
                ..
            } => match action {
                Action::Reject => Command::Reject {
                    reason: reason.clone().unwrap_or_default(),
                },
                Action::Abort => Command::Abort {
                    reason: reason.clone().unwrap_or_default(),
                    table: table.clone(),
                },
                Action::CutOver => Command::CutOver {
                    table: table.clone(),
                },
                _ => return,
            },
        };
        let env = CommandEnvelope {
            actor: Actor::slack(&user.team, &user.id),
            surface: Surface::Slack,
            origin: match &i {
                Interaction::Click { message_ts, .. } => Some(format!("slack ts {message_ts}")),
                Interaction::Submit { view_id, .. } => Some(format!("slack view {view_id}")),
            },
            dedup: Some(key.clone()),
            command,
        };
        let env_kind = env.command.kind();
        let (tx, rx) = oneshot::channel();
        let reply = if h.requests.send(Request::Command(env, tx)).await.is_ok() {
            rx.await.unwrap_or(Reply::Error {
                message: "the run core did not answer".into(),
            })
        } else {
            Reply::Error {
                message: "the run has ended".into(),
            }
        };
        match &reply {
            Reply::Accepted { .. } => self.note(&key, "accepted"),
            Reply::Duplicate => self.note(&key, "duplicate"),
            Reply::Refused { reason } => {
                self.note(&key, format!("refused: {reason}"));
                self.ephemeral(&channel, &user.id, &format!("Refused: {reason}"))
                    .await;
            }
            Reply::Error { message } => {
                self.note(&key, format!("error: {message}"));
                self.record_relay(&user, &value.run, env_kind, message, &key);
                self.ephemeral(&channel, &user.id, &format!("Not done: {message}"))
                    .await;
            }
        }
    }
}

/// The control socket's side of forwarding: takes what this relay owns
/// and handles it in the background, as if Slack had delivered it here.
struct TakeForwarded(Arc<Interactions>);

impl crate::supervisor::ForwardedInteractions for TakeForwarded {
    fn take(&self, payload: Value, received_by_run: &str) -> Result<(), String> {
        let i = Interaction::parse(&payload)
            .ok_or_else(|| "not a click or modal submission cutover understands".to_string())?;
        self.0.owns(&i)?;
        let me = self.0.clone();
        let key = i.dedup_key();
        me.note(
            &key,
            format!("received from the relay of run {received_by_run}"),
        );
        tokio::spawn(async move { me.process_as(&payload, None, true).await });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bots_deactivated_and_guest_accounts_cannot_decide() {
        let u = |k: &str| json!({"ok": true, "user": {"id": "U1", k: true}});
        assert_eq!(
            account_problem(&json!({"ok": true, "user": {"id": "U1", "deleted": false}})),
            None
        );
        for (k, want) in [
            ("deleted", "deactivated"),
            ("is_bot", "bots"),
            ("is_app_user", "bots"),
            ("is_restricted", "guest"),
            ("is_ultra_restricted", "guest"),
        ] {
            assert!(
                account_problem(&u(k)).is_some_and(|w| w.contains(want)),
                "{k}"
            );
        }
        assert!(
            account_problem(&json!({"ok": true})).is_some(),
            "no user object: refused"
        );
    }
}
