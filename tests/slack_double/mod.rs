//! A Slack double on loopback, as strict as the spec (`../shared/specs/slack.md`).
//!
//! - Web API on `http://127.0.0.1:<port>/api/<method>`: Bearer tokens
//!   (`not_authed`, `invalid_auth`, `not_allowed_token_type`), JSON for
//!   `chat.*`/`views.*` (charset warning when missing), form or query for
//!   reads, `{ok, error, warning, response_metadata}` envelopes with HTTP 200
//!   for logical errors, the error codes of spec §3.1, Block Kit validation
//!   ([`blockkit`], written from §5 alone), Tier 3 enforcement for
//!   `chat.update` and ~1/s per channel for `chat.postMessage`, and injected
//!   faults (429 + `Retry-After`, 5xx, slow answers, any error code).
//! - Socket Mode: `apps.connections.open` hands out single-use
//!   `ws://127.0.0.1:<port>/link/?ticket=…&app_id=A0RELAY01`; each link gets
//!   `hello` first; `interactive` envelopes carry complete payloads; acks are
//!   checked (known id, `payload` only when `accepts_response_payload`) and
//!   timed against the 3 s rule — an envelope not acked in 3 s is recorded
//!   and redelivered; `disconnect` on demand; pings answered and sent.
//!
//! Time here is wall-clock: the double runs on real sockets.
#![allow(dead_code)]

pub mod blockkit;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};

/// The bot token the double knows.
pub const BOT: &str = "xoxb-1111-2222-doubletoken";
/// The app-level token the double knows.
pub const APP: &str = "xapp-1-A0RELAY01-3333-doubletoken";
/// The channel the bot is a member of.
pub const CHANNEL: &str = "C0DBOPS01";
/// A channel the bot is not in.
pub const OTHER_CHANNEL: &str = "C0NOTIN01";
/// Team id.
pub const TEAM: &str = "T0TEAM001";
/// App id.
pub const APP_ID: &str = "A0RELAY01";
/// Slack's acknowledgement deadline.
pub const ACK_DEADLINE: Duration = Duration::from_secs(3);

/// A fault to inject on the next call(s) of a method.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// HTTP 429, `Retry-After: secs`, `{"ok":false,"error":"ratelimited"}`.
    RateLimited(u64),
    /// A bare HTTP status (5xx: the gateway, not the API, answered).
    Status(u16),
    /// Answer normally after this delay.
    Slow(Duration),
    /// HTTP 200 `{"ok":false,"error":code}`.
    Error(&'static str),
}

/// One Web API call as the double saw it.
#[derive(Debug, Clone)]
pub struct Call {
    /// Method name.
    pub method: String,
    /// Arguments as parsed (JSON body, form or query).
    pub args: Value,
    /// `Content-Type` header.
    pub content_type: String,
    /// When it arrived.
    pub at: Instant,
    /// HTTP status answered.
    pub status: u16,
    /// Error code answered, if any.
    pub error: Option<String>,
}

/// A message in a channel.
#[derive(Debug, Clone)]
pub struct Posted {
    /// Channel.
    pub channel: String,
    /// Timestamp id.
    pub ts: String,
    /// Thread parent.
    pub thread_ts: Option<String>,
    /// Latest fallback text.
    pub text: String,
    /// Latest blocks.
    pub blocks: Value,
    /// Posted by our bot (else another app: `cant_update_message`).
    pub ours: bool,
    /// `reply_broadcast`.
    pub broadcast: bool,
    /// Number of edits.
    pub edits: u32,
}

/// One delivery of an envelope.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// `envelope_id`.
    pub envelope_id: String,
    /// Link it went to.
    pub link: u64,
    /// When it was sent.
    pub sent_at: Instant,
    /// Whether a `payload` may come back in the ack.
    pub accepts_response_payload: bool,
    /// When the ack arrived and its body.
    pub ack: Option<(Instant, Value)>,
    /// Not acked within 3 s (then redelivered once).
    pub timed_out: bool,
    /// Payload (kept for redelivery).
    pub payload: Value,
}

impl Delivery {
    /// Ack latency, if acked.
    pub fn latency(&self) -> Option<Duration> {
        self.ack.as_ref().map(|(t, _)| *t - self.sent_at)
    }
}

/// A Socket Mode link.
#[derive(Debug)]
struct Link {
    tx: mpsc::UnboundedSender<Ws>,
    open: bool,
}

#[derive(Debug, Default)]
struct State {
    calls: Vec<Call>,
    faults: HashMap<String, VecDeque<Fault>>,
    messages: Vec<Posted>,
    ephemerals: Vec<Value>,
    next_ts: u64,
    users: BTreeMap<String, Value>,
    groups: BTreeMap<String, Vec<String>>,
    members: HashSet<String>,
    triggers: HashMap<String, (Instant, bool)>,
    views: HashMap<String, (String, Value)>,
    next_view: u64,
    tickets: HashMap<String, bool>,
    next_ticket: u64,
    links: BTreeMap<u64, Link>,
    next_link: u64,
    deliveries: Vec<Delivery>,
    next_envelope: u64,
    /// Protocol violations by the client (acks for unknown envelopes, …).
    violations: Vec<String>,
    /// Link lifecycle, in order: "open 2", "hello 2", "close 1 by client".
    link_log: Vec<(Instant, String)>,
    pings_from_client: u64,
    pongs_from_client: u64,
    enforce_tiers: bool,
    /// While set, every message write with blocks is refused with this code
    /// (a payload Slack finds invalid stays invalid when resent).
    reject_blocks: Option<&'static str>,
}

/// The running double.
#[derive(Clone)]
pub struct Double {
    /// `http://127.0.0.1:<port>/api`.
    pub base: String,
    ws_port: u16,
    state: Arc<Mutex<State>>,
}

fn lock(s: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

fn user(id: &str, name: &str) -> Value {
    json!({"id": id, "team_id": TEAM, "name": name, "deleted": false, "real_name": name,
        "tz": "Europe/Berlin", "profile": {"display_name": name, "real_name": name},
        "is_admin": false, "is_owner": false, "is_restricted": false, "is_ultra_restricted": false,
        "is_bot": false, "is_app_user": false, "updated": 1_700_000_000})
}

impl Double {
    /// Starts the Web API and Socket Mode listeners on loopback.
    pub async fn start() -> Double {
        let http = TcpListener::bind("127.0.0.1:0").await.expect("bind api");
        let ws = TcpListener::bind("127.0.0.1:0").await.expect("bind ws");
        let mut st = State {
            enforce_tiers: true,
            ..State::default()
        };
        for (id, name) in [
            ("U0DBA0001", "alice"),
            ("U0REQ0001", "bob"),
            ("U0DEV0001", "carol"),
        ] {
            st.users.insert(id.into(), user(id, name));
            st.members.insert(id.into());
        }
        // A guest (single-channel) account, in the DBA group by mistake.
        let mut guest = user("U0GUEST01", "gus");
        guest["is_restricted"] = json!(true);
        st.users.insert("U0GUEST01".into(), guest);
        st.members.insert("U0GUEST01".into());
        st.groups.insert(
            "S0DBAS001".into(),
            vec!["U0DBA0001".into(), "U0GUEST01".into()],
        );
        // A message by another app, for `cant_update_message`.
        st.messages.push(Posted {
            channel: CHANNEL.into(),
            ts: "1600000000.000001".into(),
            thread_ts: None,
            text: "someone else's".into(),
            blocks: json!([]),
            ours: false,
            broadcast: false,
            edits: 0,
        });
        let d = Double {
            base: format!("http://{}/api", http.local_addr().expect("addr")),
            ws_port: ws.local_addr().expect("addr").port(),
            state: Arc::new(Mutex::new(st)),
        };
        let d2 = d.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = http.accept().await {
                tokio::spawn(d2.clone().http(s));
            }
        });
        let d3 = d.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = ws.accept().await {
                tokio::spawn(d3.clone().link(s));
            }
        });
        let d4 = d.clone();
        tokio::spawn(async move { d4.ack_watch().await });
        d
    }

    // ---------------------------------------------------------------- control

    /// Queues `fault` for the next call of `method` (`*` = any method).
    pub fn inject(&self, method: &str, fault: Fault) {
        lock(&self.state)
            .faults
            .entry(method.into())
            .or_default()
            .push_back(fault);
    }

    /// Refuses every `chat.postMessage`/`chat.update` that carries blocks
    /// with `code` (and a `[ERROR]` detail), until called with `None`.
    pub fn reject_blocks(&self, code: Option<&'static str>) {
        lock(&self.state).reject_blocks = code;
    }

    /// Turns Tier enforcement off (for tests that count calls themselves).
    pub fn enforce_tiers(&self, on: bool) {
        lock(&self.state).enforce_tiers = on;
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.state).calls.clone()
    }

    /// Calls of one method.
    pub fn calls_of(&self, method: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method)
            .collect()
    }

    /// Messages in channels (not ephemerals).
    pub fn messages(&self) -> Vec<Posted> {
        lock(&self.state)
            .messages
            .iter()
            .filter(|m| m.ours)
            .cloned()
            .collect()
    }

    /// Ephemeral messages (`chat.postEphemeral` arguments).
    pub fn ephemerals(&self) -> Vec<Value> {
        lock(&self.state).ephemerals.clone()
    }

    /// Envelope deliveries so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.state).deliveries.clone()
    }

    /// Protocol violations by the client.
    pub fn violations(&self) -> Vec<String> {
        lock(&self.state).violations.clone()
    }

    /// Link lifecycle log.
    pub fn link_log(&self) -> Vec<String> {
        lock(&self.state)
            .link_log
            .iter()
            .map(|x| x.1.clone())
            .collect()
    }

    /// Pings and pongs received from the client.
    pub fn client_pings(&self) -> (u64, u64) {
        let s = lock(&self.state);
        (s.pings_from_client, s.pongs_from_client)
    }

    /// Open link ids.
    pub fn open_links(&self) -> Vec<u64> {
        lock(&self.state)
            .links
            .iter()
            .filter(|(_, l)| l.open)
            .map(|(k, _)| *k)
            .collect()
    }

    /// A fresh trigger id (what Slack puts in an interaction), valid 3 s, single use.
    pub fn trigger(&self) -> String {
        let mut s = lock(&self.state);
        let n = s.triggers.len() + 1;
        let t = format!(
            "{}.{}.{:x}",
            1_700_000_000 + n,
            47_445_629_121u64 + n as u64,
            0xabcdef00u64 + n as u64
        );
        s.triggers.insert(t.clone(), (Instant::now(), false));
        t
    }

    /// A complete `block_actions` payload (spec §7.2) for a button on a message.
    pub fn block_actions(
        &self,
        user: &str,
        message_ts: &str,
        action_id: &str,
        value: &str,
    ) -> Value {
        let trigger = self.trigger();
        let (name, blocks, text) = {
            let s = lock(&self.state);
            let name = s
                .users
                .get(user)
                .and_then(|u| u["name"].as_str().map(str::to_string))
                .unwrap_or_else(|| "someone".into());
            let m = s.messages.iter().find(|m| m.ts == message_ts);
            (
                name,
                m.map(|m| m.blocks.clone()).unwrap_or(json!([])),
                m.map(|m| m.text.clone()).unwrap_or_default(),
            )
        };
        let block_id = blocks
            .as_array()
            .and_then(|bs| {
                bs.iter().find(|b| {
                    b["elements"]
                        .as_array()
                        .is_some_and(|e| e.iter().any(|x| x["action_id"] == action_id))
                })
            })
            .and_then(|b| b["block_id"].as_str().map(str::to_string))
            .unwrap_or_else(|| "b".into());
        let action_ts = {
            let s = lock(&self.state);
            format!("{}.{:06}", 1_700_000_100 + s.next_envelope, s.calls.len())
        };
        json!({
            "type": "block_actions",
            "user": {"id": user, "username": name, "name": name, "team_id": TEAM},
            "api_app_id": APP_ID,
            "token": "verification_token_is_deprecated",
            "container": {"type": "message", "message_ts": message_ts, "channel_id": CHANNEL, "is_ephemeral": false},
            "trigger_id": trigger,
            "team": {"id": TEAM, "domain": "acme"},
            "enterprise": null,
            "is_enterprise_install": false,
            "channel": {"id": CHANNEL, "name": "db-ops"},
            "message": {"type": "message", "ts": message_ts, "text": text, "blocks": blocks, "bot_id": "B0RELAY01"},
            "state": {"values": {}},
            "response_url": format!("https://hooks.slack.com/actions/{TEAM}/1/abc"),
            "actions": [{
                "action_id": action_id, "block_id": block_id, "type": "button",
                "text": {"type": "plain_text", "text": action_id, "emoji": true},
                "value": value, "action_ts": action_ts
            }]
        })
    }

    /// A complete `view_submission` payload (spec §7.3) for an opened view,
    /// with `values` as `{block_id: {action_id: text}}`.
    pub fn view_submission(
        &self,
        user: &str,
        view_id: &str,
        values: &[(&str, &str, &str)],
    ) -> Value {
        let s = lock(&self.state);
        let (hash, view) = s.views.get(view_id).cloned().unwrap_or_default();
        let mut state = Map::new();
        for (b, a, text) in values {
            state.insert(
                (*b).into(),
                json!({ *a: {"type": "plain_text_input", "value": text} }),
            );
        }
        json!({
            "type": "view_submission",
            "team": {"id": TEAM, "domain": "acme"},
            "user": {"id": user, "username": "u", "name": "u", "team_id": TEAM},
            "api_app_id": APP_ID,
            "token": "verification_token_is_deprecated",
            "trigger_id": format!("{}.1.submit", 1_700_000_500),
            "view": {
                "id": view_id, "team_id": TEAM, "type": "modal",
                "callback_id": view["callback_id"], "private_metadata": view["private_metadata"],
                "hash": hash, "title": view["title"], "blocks": view["blocks"],
                "close": view["close"], "submit": view["submit"],
                "state": {"values": state},
                "root_view_id": view_id, "previous_view_id": null,
                "app_id": APP_ID, "bot_id": "B0RELAY01", "external_id": ""
            },
            "response_urls": [],
            "is_enterprise_install": false
        })
    }

    /// Views opened so far: (view id, view).
    pub fn views(&self) -> Vec<(String, Value)> {
        let s = lock(&self.state);
        let mut v: Vec<_> = s
            .views
            .iter()
            .map(|(k, (_, v))| (k.clone(), v.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Sends an `interactive` envelope on the newest open link; returns its id.
    pub fn deliver(&self, payload: Value) -> Option<String> {
        let accepts = payload["type"] == "view_submission";
        let mut s = lock(&self.state);
        let link = *s.links.iter().rev().find(|(_, l)| l.open)?.0;
        s.next_envelope += 1;
        let id = format!(
            "{:08x}-5d6e-4c1a-9b7d-{:012x}",
            s.next_envelope,
            s.next_envelope * 7919
        );
        send_envelope(&mut s, link, &id, payload, accepts);
        Some(id)
    }

    /// Sends an envelope again with the same id (a transport duplicate).
    pub fn redeliver(&self, envelope_id: &str) -> bool {
        let mut s = lock(&self.state);
        let Some(d) = s
            .deliveries
            .iter()
            .find(|d| d.envelope_id == envelope_id)
            .cloned()
        else {
            return false;
        };
        let Some(link) = s.links.iter().rev().find(|(_, l)| l.open).map(|(k, _)| *k) else {
            return false;
        };
        send_envelope(
            &mut s,
            link,
            envelope_id,
            d.payload,
            d.accepts_response_payload,
        );
        true
    }

    /// Sends `disconnect` with `reason` on the newest open link; with
    /// `warning`, the double closes that link itself after `grace`.
    pub fn disconnect(&self, reason: &str, grace: Duration) -> Option<u64> {
        let s = lock(&self.state);
        let (id, l) = s.links.iter().rev().find(|(_, l)| l.open)?;
        let frame = json!({"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-double-2"}});
        let _ = l.tx.send(Ws::Text(frame.to_string().into()));
        let id = *id;
        if reason == "warning" {
            let tx = l.tx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                let _ = tx.send(Ws::Close(None));
            });
        }
        Some(id)
    }

    /// Sends a WebSocket ping (like `Ping from applink-…`) on every open link.
    pub fn ping_all(&self) {
        for l in lock(&self.state).links.values().filter(|l| l.open) {
            let _ =
                l.tx.send(Ws::Ping(b"Ping from applink-double".to_vec().into()));
        }
    }

    /// Polls `f` every 10 ms until it holds (panics after `limit`).
    pub async fn wait_for(&self, what: &str, limit: Duration, f: impl Fn(&Double) -> bool) {
        let end = Instant::now() + limit;
        while !f(self) {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    // ---------------------------------------------------------------- HTTP

    async fn http(self, mut s: TcpStream) {
        // One request per connection (`Connection: close`): simple and
        // exactly what the client must cope with anyway.
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        let head_end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or("");
        let mut headers = HashMap::new();
        for l in lines {
            if let Some((k, v)) = l.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned();
        let mut parts = request_line.split(' ');
        let verb = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let (status, extra, out) = match path.strip_prefix("/api/") {
            Some(method) => self.api(method, &verb, query, &headers, &body).await,
            None => (404, vec![], json!({"ok": false, "error": "unknown_method"})),
        };
        let reason = match status {
            200 => "OK",
            429 => "Too Many Requests",
            500 => "Internal Server Error",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            _ => "Error",
        };
        let (ct, body) = if status >= 500 {
            (
                "text/html",
                "<html><body>upstream error</body></html>".to_string(),
            )
        } else {
            ("application/json; charset=utf-8", out.to_string())
        };
        let mut resp = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (k, v) in extra {
            resp.push_str(&format!("{k}: {v}\r\n"));
        }
        resp.push_str("\r\n");
        resp.push_str(&body);
        let _ = s.write_all(resp.as_bytes()).await;
        let _ = s.shutdown().await;
    }

    async fn api(
        &self,
        method: &str,
        verb: &str,
        query: &str,
        headers: &HashMap<String, String>,
        body: &str,
    ) -> (u16, Vec<(String, String)>, Value) {
        let ct = headers.get("content-type").cloned().unwrap_or_default();
        let fault = {
            let mut s = lock(&self.state);
            let f = s.faults.get_mut(method).and_then(VecDeque::pop_front);
            f.or_else(|| s.faults.get_mut("*").and_then(VecDeque::pop_front))
        };
        if let Some(Fault::Slow(d)) = &fault {
            tokio::time::sleep(*d).await;
        }
        let mut args = Value::Object(Map::new());
        let (status, extra, out) = match fault {
            Some(Fault::RateLimited(secs)) => (
                429,
                vec![("Retry-After".to_string(), secs.to_string())],
                json!({"ok": false, "error": "ratelimited"}),
            ),
            Some(Fault::Status(code)) => (code, vec![], json!({})),
            Some(Fault::Error(code)) => (200, vec![], json!({"ok": false, "error": code})),
            _ if self.refuses_blocks(method, body).is_some() => {
                args = serde_json::from_str(body).unwrap_or_default();
                let code = self
                    .refuses_blocks(method, body)
                    .unwrap_or("invalid_blocks");
                (
                    200,
                    vec![],
                    json!({"ok": false, "error": code, "response_metadata":
                        {"messages": ["[ERROR] refused by the test (reject_blocks) [json-pointer:/blocks/0]"]}}),
                )
            }
            _ => {
                let r = self.method(method, verb, query, &ct, headers, body, &mut args);
                match r {
                    Ok(v) => (200, vec![], v),
                    Err(Answer::Limited(secs)) => (
                        429,
                        vec![("Retry-After".to_string(), secs.to_string())],
                        json!({"ok": false, "error": "ratelimited"}),
                    ),
                    Err(Answer::Error(v)) => (200, vec![], v),
                }
            }
        };
        lock(&self.state).calls.push(Call {
            method: method.into(),
            args,
            content_type: ct,
            at: Instant::now(),
            status,
            error: out["error"].as_str().map(str::to_string),
        });
        (status, extra, out)
    }

    fn refuses_blocks(&self, method: &str, body: &str) -> Option<&'static str> {
        let code = lock(&self.state).reject_blocks?;
        if method != "chat.postMessage" && method != "chat.update" {
            return None;
        }
        let v: Value = serde_json::from_str(body).ok()?;
        v["blocks"]
            .as_array()
            .is_some_and(|b| !b.is_empty())
            .then_some(code)
    }

    #[allow(clippy::too_many_arguments)]
    fn method(
        &self,
        method: &str,
        verb: &str,
        query: &str,
        ct: &str,
        headers: &HashMap<String, String>,
        body: &str,
        args_out: &mut Value,
    ) -> Result<Value, Answer> {
        const KNOWN: [&str; 9] = [
            "chat.postMessage",
            "chat.update",
            "chat.postEphemeral",
            "views.open",
            "views.update",
            "users.info",
            "usergroups.users.list",
            "auth.test",
            "apps.connections.open",
        ];
        if !KNOWN.contains(&method) {
            return Err(err("unknown_method"));
        }
        let json_method = method.starts_with("chat.") || method.starts_with("views.");
        let mut warnings = Vec::new();
        // Arguments by content type, as Slack reads them.
        let ct_main = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let args: Value = if verb == "GET" {
            form(query)
        } else if ct_main == "application/json" {
            if !ct.to_ascii_lowercase().contains("charset") {
                warnings.push("missing_charset");
            }
            if !json_method && method != "apps.connections.open" {
                // Slack reads JSON bodies only for methods that accept them.
                Value::Object(Map::new())
            } else if body.trim().is_empty() {
                Value::Object(Map::new())
            } else {
                match serde_json::from_str::<Value>(body) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => return Err(err("invalid_json")),
                }
            }
        } else if ct_main == "application/x-www-form-urlencoded" || ct_main.is_empty() {
            form(body)
        } else {
            return Err(err("invalid_form_data"));
        };
        *args_out = args.clone();
        // Tokens: the header only (a token in a JSON body does not count).
        let token = match headers
            .get("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
        {
            Some(t) => t.trim().to_string(),
            None if !json_method => match args["token"].as_str() {
                Some(t) => t.to_string(),
                None => return Err(err("not_authed")),
            },
            None => return Err(err("not_authed")),
        };
        let app_method = method == "apps.connections.open";
        match (token.as_str(), app_method) {
            (BOT, false) | (APP, true) => {}
            (BOT, true) | (APP, false) => return Err(err("not_allowed_token_type")),
            _ => return Err(err("invalid_auth")),
        }
        if json_method && verb != "POST" {
            return Err(err("invalid_arguments"));
        }
        let mut s = lock(&self.state);
        let mut v = match method {
            "auth.test" => json!({"ok": true, "url": "https://acme.slack.com/", "team": "Acme",
                "user": "db-migrations", "team_id": TEAM, "user_id": "U0BOT0001", "bot_id": "B0RELAY01", "is_enterprise_install": false}),
            "apps.connections.open" => {
                if verb != "POST" {
                    return Err(err("insecure_request"));
                }
                if args.as_object().is_some_and(|o| !o.is_empty()) {
                    return Err(err("invalid_arguments"));
                }
                s.next_ticket += 1;
                let t = format!(
                    "{:08x}-1b2c-4d3e-8f4a-{:012x}",
                    s.next_ticket,
                    s.next_ticket * 31
                );
                s.tickets.insert(t.clone(), false);
                json!({"ok": true, "url": format!("ws://127.0.0.1:{}/link/?ticket={t}&app_id={APP_ID}", self.ws_port),
                    "response_metadata": {"scopes": ["connections:write"], "acceptedScopes": ["connections:write"]}})
            }
            "users.info" => match args["user"].as_str().and_then(|u| s.users.get(u)) {
                Some(u) => json!({"ok": true, "user": u}),
                None => return Err(err("user_not_found")),
            },
            "usergroups.users.list" => {
                match args["usergroup"].as_str().and_then(|g| s.groups.get(g)) {
                    Some(u) => json!({"ok": true, "users": u}),
                    None => return Err(err("no_such_subteam")),
                }
            }
            "chat.postMessage" | "chat.postEphemeral" | "chat.update" => {
                let channel = args["channel"].as_str().unwrap_or("");
                if channel.is_empty() || !matches!(&channel[..1], "C" | "G" | "D") {
                    return Err(err("channel_not_found"));
                }
                if channel == OTHER_CHANNEL {
                    return Err(err("not_in_channel"));
                }
                if channel != CHANNEL {
                    return Err(err("channel_not_found"));
                }
                for k in ["reply_broadcast", "unfurl_links", "unfurl_media", "mrkdwn"] {
                    if args.get(k).is_some_and(|b| !b.is_boolean()) {
                        return Err(err("invalid_arguments"));
                    }
                }
                blockkit::message(&args, method != "chat.postMessage").map_err(|r| {
                    Answer::Error(json!({"ok": false, "error": r.code, "response_metadata": {"messages": r.messages}}))
                })?;
                let text = args["text"].as_str().unwrap_or("").to_string();
                let blocks = args.get("blocks").cloned().unwrap_or(json!([]));
                let now = Instant::now();
                match method {
                    "chat.postEphemeral" => {
                        let user = args["user"].as_str().unwrap_or("");
                        if user.is_empty() {
                            return Err(err("user_not_found"));
                        }
                        if !s.members.contains(user) {
                            return Err(err("user_not_in_channel"));
                        }
                        s.ephemerals.push(args.clone());
                        s.next_ts += 1;
                        json!({"ok": true, "message_ts": format!("1700000000.{:06}", s.next_ts)})
                    }
                    "chat.postMessage" => {
                        // ~1 message/s per channel with short bursts: 10 in 10 s.
                        if s.enforce_tiers
                            && s.calls
                                .iter()
                                .filter(|c| {
                                    c.method == method
                                        && c.status == 200
                                        && c.error.is_none()
                                        && now - c.at < Duration::from_secs(10)
                                })
                                .count()
                                >= 10
                        {
                            return Err(Answer::Limited(1));
                        }
                        if let Some(t) = args["thread_ts"].as_str()
                            && !s.messages.iter().any(|m| m.ts == t && m.channel == channel)
                        {
                            // Slack would post a stray top-level message; a double
                            // flags it, since the relay always knows its parent.
                            s.violations
                                .push(format!("thread_ts {t} is not a message in {channel}"));
                        }
                        s.next_ts += 1;
                        let ts = format!("1700000000.{:06}", s.next_ts);
                        s.messages.push(Posted {
                            channel: channel.into(),
                            ts: ts.clone(),
                            thread_ts: args["thread_ts"].as_str().map(str::to_string),
                            text: text.clone(),
                            blocks: blocks.clone(),
                            ours: true,
                            broadcast: args["reply_broadcast"] == true,
                            edits: 0,
                        });
                        json!({"ok": true, "channel": channel, "ts": ts,
                            "message": {"type": "message", "ts": ts, "text": text, "bot_id": "B0RELAY01", "blocks": blocks}})
                    }
                    _ => {
                        // Tier 3: 50 per minute per method.
                        if s.enforce_tiers
                            && s.calls
                                .iter()
                                .filter(|c| {
                                    c.method == method
                                        && c.status == 200
                                        && c.error.is_none()
                                        && now - c.at < Duration::from_secs(60)
                                })
                                .count()
                                >= 50
                        {
                            return Err(Answer::Limited(5));
                        }
                        let ts = args["ts"].as_str().unwrap_or("");
                        let Some(m) = s
                            .messages
                            .iter_mut()
                            .find(|m| m.ts == ts && m.channel == channel)
                        else {
                            return Err(err("message_not_found"));
                        };
                        if !m.ours {
                            return Err(err("cant_update_message"));
                        }
                        m.text = text.clone();
                        m.blocks = blocks.clone();
                        m.edits += 1;
                        json!({"ok": true, "channel": channel, "ts": ts, "text": text,
                            "message": {"type": "message", "text": text, "bot_id": "B0RELAY01", "blocks": blocks}})
                    }
                }
            }
            "views.open" => {
                let t = args["trigger_id"].as_str().unwrap_or("");
                let well_formed = {
                    let p: Vec<&str> = t.split('.').collect();
                    p.len() == 3
                        && p[0].chars().all(|c| c.is_ascii_digit())
                        && p[1].chars().all(|c| c.is_ascii_digit())
                        && !p[2].is_empty()
                };
                if !well_formed {
                    return Err(err("invalid_trigger_id"));
                }
                match s.triggers.get_mut(t) {
                    None => return Err(err("invalid_trigger_id")),
                    Some((_, true)) => return Err(err("exchanged_trigger_id")),
                    Some((at, used)) => {
                        if at.elapsed() > ACK_DEADLINE {
                            return Err(err("expired_trigger_id"));
                        }
                        *used = true;
                    }
                }
                let view = args["view"].clone();
                blockkit::view(&view).map_err(|r| {
                    Answer::Error(json!({"ok": false, "error": r.code, "response_metadata": {"messages": r.messages}}))
                })?;
                s.next_view += 1;
                let id = format!("V0DOUBLE{:04}", s.next_view);
                let hash = format!("1700000000.{:08x}", s.next_view);
                s.views.insert(id.clone(), (hash.clone(), view.clone()));
                let mut full = view;
                full["id"] = json!(id);
                full["hash"] = json!(hash);
                full["team_id"] = json!(TEAM);
                full["state"] = json!({"values": {}});
                json!({"ok": true, "view": full})
            }
            "views.update" => {
                let id = args["view_id"].as_str().unwrap_or("").to_string();
                let view = args["view"].clone();
                let Some((hash, _)) = s.views.get(&id).cloned() else {
                    return Err(err("not_found"));
                };
                if let Some(h) = args["hash"].as_str()
                    && h != hash
                {
                    return Err(err("hash_conflict"));
                }
                blockkit::view(&view).map_err(|r| {
                    Answer::Error(json!({"ok": false, "error": r.code, "response_metadata": {"messages": r.messages}}))
                })?;
                s.next_view += 1;
                let new_hash = format!("1700000000.{:08x}", s.next_view);
                s.views.insert(id.clone(), (new_hash.clone(), view.clone()));
                let mut full = view;
                full["id"] = json!(id);
                full["hash"] = json!(new_hash);
                json!({"ok": true, "view": full})
            }
            _ => return Err(err("unknown_method")),
        };
        if !warnings.is_empty() {
            v["warning"] = json!(warnings.join(","));
            v["response_metadata"]["warnings"] = json!(warnings);
        }
        Ok(v)
    }

    // ---------------------------------------------------------------- Socket Mode

    #[allow(clippy::result_large_err)] // the handshake callback's signature is tungstenite's
    async fn link(self, stream: TcpStream) {
        let st = self.state.clone();
        let callback = move |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
            let uri = req.uri();
            let ticket = uri
                .query()
                .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("ticket=")))
                .map(str::to_string);
            let mut s = lock(&st);
            let ok = uri.path() == "/link/"
                && ticket
                    .as_ref()
                    .is_some_and(|t| s.tickets.get(t) == Some(&false));
            if !ok {
                s.violations.push(format!("handshake refused for {uri}"));
                let mut e = ErrorResponse::new(Some("invalid or reused ticket".into()));
                *e.status_mut() = tokio_tungstenite::tungstenite::http::StatusCode::UNAUTHORIZED;
                return Err(e);
            }
            if let Some(t) = ticket {
                s.tickets.insert(t, true);
            }
            Ok(resp)
        };
        let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
            return;
        };
        let (mut sink, mut stream) = ws.split();
        let (tx, mut rx) = mpsc::unbounded_channel::<Ws>();
        let id = {
            let mut s = lock(&self.state);
            s.next_link += 1;
            let id = s.next_link;
            s.links.insert(
                id,
                Link {
                    tx: tx.clone(),
                    open: true,
                },
            );
            s.link_log.push((Instant::now(), format!("open {id}")));
            let n = s.links.values().filter(|l| l.open).count();
            let hello = json!({"type": "hello", "num_connections": n,
                "debug_info": {"host": "applink-double-1", "build_number": 118, "approximate_connection_time": 18060},
                "connection_info": {"app_id": APP_ID}});
            let _ = tx.send(Ws::Text(hello.to_string().into()));
            s.link_log.push((Instant::now(), format!("hello {id}")));
            id
        };
        let writer = tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                let close = matches!(m, Ws::Close(_));
                if sink.send(m).await.is_err() || close {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let mut by = "client";
        while let Some(frame) = stream.next().await {
            match frame {
                Ok(Ws::Text(t)) => self.ack(id, &t),
                Ok(Ws::Ping(_)) => lock(&self.state).pings_from_client += 1,
                Ok(Ws::Pong(_)) => lock(&self.state).pongs_from_client += 1,
                Ok(Ws::Close(_)) => break,
                Ok(_) => lock(&self.state)
                    .violations
                    .push(format!("link {id}: unexpected binary frame")),
                Err(_) => {
                    by = "error";
                    break;
                }
            }
        }
        if writer.is_finished() {
            by = "double";
        }
        writer.abort();
        let mut s = lock(&self.state);
        if let Some(l) = s.links.get_mut(&id) {
            l.open = false;
        }
        s.link_log
            .push((Instant::now(), format!("close {id} by {by}")));
    }

    fn ack(&self, link: u64, text: &str) {
        let now = Instant::now();
        let mut s = lock(&self.state);
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            s.violations.push(format!("link {link}: not JSON: {text}"));
            return;
        };
        let Some(id) = v["envelope_id"].as_str() else {
            s.violations
                .push(format!("link {link}: frame without envelope_id: {text}"));
            return;
        };
        let keys_ok = v
            .as_object()
            .is_some_and(|o| o.keys().all(|k| k == "envelope_id" || k == "payload"));
        if !keys_ok {
            s.violations.push(format!("ack with unknown keys: {text}"));
        }
        let Some(d) = s
            .deliveries
            .iter_mut()
            .rev()
            .find(|d| d.envelope_id == id && d.ack.is_none())
        else {
            s.violations
                .push(format!("ack for unknown or already acked envelope {id}"));
            return;
        };
        if d.link != link {
            let msg = format!("envelope {id} sent on link {} acked on link {link}", d.link);
            d.ack = Some((now, v.clone()));
            s.violations.push(msg);
            return;
        }
        if v.get("payload")
            .is_some_and(|p| !p.is_null() && p != &json!({}))
            && !d.accepts_response_payload
        {
            let msg = format!("ack payload for envelope {id}, which does not accept one");
            d.ack = Some((now, v.clone()));
            s.violations.push(msg);
            return;
        }
        d.ack = Some((now, v));
    }

    /// Records envelopes not acked within 3 s and redelivers them once.
    async fn ack_watch(self) {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let mut s = lock(&self.state);
            let late: Vec<usize> = s
                .deliveries
                .iter()
                .enumerate()
                .filter(|(_, d)| {
                    d.ack.is_none() && !d.timed_out && d.sent_at.elapsed() > ACK_DEADLINE
                })
                .map(|(i, _)| i)
                .collect();
            for i in late {
                s.deliveries[i].timed_out = true;
                let d = s.deliveries[i].clone();
                let retried = s
                    .deliveries
                    .iter()
                    .filter(|x| x.envelope_id == d.envelope_id)
                    .count()
                    > 1;
                if !retried
                    && let Some(link) = s.links.iter().rev().find(|(_, l)| l.open).map(|(k, _)| *k)
                {
                    send_envelope(
                        &mut s,
                        link,
                        &d.envelope_id,
                        d.payload,
                        d.accepts_response_payload,
                    );
                }
            }
        }
    }
}

enum Answer {
    Limited(u64),
    Error(Value),
}

fn err(code: &str) -> Answer {
    Answer::Error(json!({"ok": false, "error": code}))
}

fn send_envelope(s: &mut State, link: u64, id: &str, payload: Value, accepts: bool) {
    let frame = json!({"type": "interactive", "envelope_id": id,
        "accepts_response_payload": accepts, "payload": payload});
    if let Some(l) = s.links.get(&link) {
        let _ = l.tx.send(Ws::Text(frame.to_string().into()));
    }
    s.deliveries.push(Delivery {
        envelope_id: id.to_string(),
        link,
        sent_at: Instant::now(),
        accepts_response_payload: accepts,
        ack: None,
        timed_out: false,
        payload,
    });
}

/// Parses `a=b&c=d` (percent- and plus-decoded) into a JSON object of strings.
pub fn form(s: &str) -> Value {
    let mut m = Map::new();
    for kv in s.split('&').filter(|x| !x.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        m.insert(decode(k), Value::String(decode(v)));
    }
    Value::Object(m)
}

fn decode(s: &str) -> String {
    let b = s.replace('+', " ").into_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(x) = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(x);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
