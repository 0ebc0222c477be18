//! A whole run through the Slack double over real sockets: the relay's
//! `HttpApi` talks to the double's Web API, its Socket Mode client to the
//! double's WebSocket, and clicks go through a real run core with the
//! simulated executor. Also the signed HTTP endpoint with the spec's vectors.

mod slack_common;
mod slack_double;

use cutover::audit::{AuditKey, Entry, Trail, read_file};
use cutover::exec::sim::{SimConfig, SimExecutor};
use cutover::policy::authz::Role;
use cutover::policy::config::PersonConfig;
use cutover::policy::{Actor, Clock, Directory, PolicyConfig, Surface};
use cutover::run::core::{CoreDeps, Request, RunCore, TokioClock};
use cutover::run::fanout::Published;
use cutover::run::{Command, CommandEnvelope, CommandKind, Event, Phase, Sample};
use cutover::slack::SlackHost;
use cutover::slack::api::{HttpApi, SlackApi};
use cutover::slack::config::Secret;
use cutover::slack::interact::Interactions;
use cutover::slack::relay::{RelaySetup, keys};
use cutover::slack::signing::Verifier;
use serde_json::Value;
use slack_common::*;
use slack_double::{ACK_DEADLINE, APP, BOT, CHANNEL, Double};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

const ALICE: &str = "U0DBA0001"; // DBA through the Slack group S0DBAS001
const BOB: &str = "U0REQ0001"; // DBA, the requester
const CAROL: &str = "U0DEV0001"; // observer
const GUEST: &str = "U0GUEST01"; // a guest account in the DBA group
const WAIT: Duration = Duration::from_secs(20);

fn key() -> AuditKey {
    AuditKey::new(b"slack-e2e-test-key-0123456789".to_vec()).unwrap()
}

fn policy() -> PolicyConfig {
    let p = |id: &str, role, slack: &str| PersonConfig {
        id: id.into(),
        name: None,
        role,
        local: vec![id.into()],
        slack: Some(slack.into()),
    };
    PolicyConfig {
        people: vec![
            // An observer by herself: her DBA role comes from the user group,
            // which the relay reads with usergroups.users.list.
            p("alice", Role::Observer, ALICE),
            p("bob", Role::Dba, BOB),
            p("carol", Role::Observer, CAROL),
        ],
        groups: vec![cutover::policy::config::GroupConfig {
            slack: "S0DBAS001".into(),
            role: Role::Dba,
        }],
        ..PolicyConfig::default()
    }
}

/// The button `action_id` on the latest render of message `ts`: its value.
fn button(d: &Double, ts: &str, action: &str) -> Option<String> {
    let m = d.messages().into_iter().find(|m| m.ts == ts)?;
    m.blocks.as_array()?.iter().find_map(|b| {
        b["elements"].as_array()?.iter().find_map(|e| {
            (e["action_id"] == action).then(|| e["value"].as_str().map(str::to_string))?
        })
    })
}

fn log(i: &Interactions) -> Vec<String> {
    i.log.lock().unwrap().iter().map(|x| x.1.clone()).collect()
}

async fn command(tx: &mpsc::Sender<Request>, who: &str, c: Command) {
    let (rtx, rrx) = oneshot::channel();
    tx.send(Request::Command(
        CommandEnvelope::new(Actor::local(who), Surface::Console, c),
        rtx,
    ))
    .await
    .unwrap();
    let r = rrx.await.unwrap();
    assert!(
        matches!(r, cutover::run::core::Reply::Accepted { .. }),
        "{r:?}"
    );
}

async fn wait_log(i: &Interactions, n: usize) -> Vec<String> {
    let end = std::time::Instant::now() + WAIT;
    loop {
        let l = log(i);
        if l.len() >= n {
            return l;
        }
        assert!(
            std::time::Instant::now() < end,
            "waiting for {n} outcomes: {l:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_run_through_the_double() {
    let d = Double::start().await;
    let dir = tempfile::tempdir().unwrap();
    let api: Arc<dyn SlackApi> = Arc::new(HttpApi::new(
        &d.base,
        Some(Secret::new(BOT)),
        Some(Secret::new(APP)),
    ));
    let relay_trail_path = dir.path().join("relay-audit.jsonl");
    let (relay_trail, _) = Trail::open(&relay_trail_path, key()).unwrap();
    let interactions = Arc::new(
        Interactions::new(
            api.clone(),
            vec!["S0DBAS001".into()],
            Duration::from_secs(300),
        )
        .with_audit(relay_trail),
    );
    let host = SlackHost::new(api.clone(), interactions.clone());
    let shutdown = CancellationToken::new();
    let socket = host.spawn_socket_mode(shutdown.clone());
    d.wait_for("the first link", WAIT, |d| d.open_links() == [1])
        .await;

    // The run core with the simulated executor.
    let trail_path = dir.path().join("audit.jsonl");
    let (trail, _) = Trail::open(&trail_path, key()).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new(t0()));
    let policy = policy();
    let plan = small_plan();
    let mut spec = spec_of(&plan);
    spec.risk = cutover::model::Risk::Medium;
    spec.tables = vec!["orders".into()];
    let deps = CoreDeps {
        directory: Directory::new(&policy),
        policy,
        staging_successes: [spec.binding.plan_digest.clone()].into_iter().collect(),
        clock: clock.clone(),
        run_dir: dir.path().to_path_buf(),
        postpone_cut_over: true,
        tick: Duration::from_millis(200),
    };
    let exec = SimExecutor::new(
        SimConfig {
            rows_total: 50_000_000,
            tick: Duration::from_millis(100),
            ..SimConfig::default()
        },
        clock,
    );
    let mut core = RunCore::create("run-7f3a", spec, deps, trail, Box::new(exec)).unwrap();
    let state = core.state().clone();
    let sub = core.subscribe(4096);
    // Count the progress samples the relay could have shown.
    let mut counter = core.subscribe(4096);
    let samples = Arc::new(AtomicU64::new(0));
    let s2 = samples.clone();
    tokio::spawn(async move {
        while let Some(i) = counter.recv().await {
            if let Published::Sample(Sample::Progress { .. }) = i {
                s2.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let (tx, rx) = mpsc::channel(64);
    let core_task = tokio::spawn(core.run(rx, shutdown.clone()));
    let setup = RelaySetup {
        run: "run-7f3a".into(),
        target: "orders-prod".into(),
        channel: CHANNEL.into(),
        plan: plan.clone(),
        links: Default::default(),
        people: [
            ("alice".to_string(), ALICE.to_string()),
            ("bob".to_string(), BOB.to_string()),
        ]
        .into(),
        coalesce: Duration::from_secs(1),
        requests: None,
    };
    let relay = host.spawn_for_run(setup, tx.clone(), state, sub, shutdown.clone());

    // Requested from the console: the pre-flight is posted with its buttons.
    command(&tx, "bob", Command::Request).await;
    d.wait_for("the pre-flight", WAIT, |d| {
        d.messages()
            .first()
            .is_some_and(|m| button(d, &m.ts, "approve").is_some())
    })
    .await;
    let pre = d.messages()[0].ts.clone();
    let approve_value = button(&d, &pre, "approve").unwrap();

    // The requester, an observer, then a DBA.
    d.deliver(d.block_actions(BOB, &pre, "approve", &approve_value))
        .unwrap();
    let l = wait_log(&interactions, 1).await;
    assert!(
        l[0].starts_with("refused") && l[0].contains("self-approval"),
        "{l:?}"
    );
    d.deliver(d.block_actions(CAROL, &pre, "approve", &approve_value))
        .unwrap();
    let l = wait_log(&interactions, 2).await;
    assert!(
        l[1].starts_with("refused") && l[1].contains("not allowed"),
        "{l:?}"
    );
    d.deliver(d.block_actions(GUEST, &pre, "approve", &approve_value))
        .unwrap();
    let l = wait_log(&interactions, 3).await;
    assert!(
        l[2].starts_with("refused") && l[2].contains("guest"),
        "{l:?}"
    );
    let alice_env = d
        .deliver(d.block_actions(ALICE, &pre, "approve", &approve_value))
        .unwrap();
    let l = wait_log(&interactions, 4).await;
    assert_eq!(l[3], "accepted", "{l:?}");
    // The same envelope again (a transport duplicate): dropped.
    assert!(d.redeliver(&alice_env));
    let l = wait_log(&interactions, 5).await;
    assert_eq!(l[4], "duplicate", "{l:?}");
    // The message is rewritten in place: buttons gone, approver named.
    d.wait_for("the approved rewrite", WAIT, |d| {
        button(d, &pre, "approve").is_none()
    })
    .await;
    // A second click on the old render: refused as stale, and recorded.
    d.deliver(d.block_actions(ALICE, &pre, "approve", &approve_value))
        .unwrap();
    let l = wait_log(&interactions, 6).await;
    assert_eq!(l[5], "stale render", "{l:?}");
    d.wait_for("three ephemerals", WAIT, |d| d.ephemerals().len() == 4)
        .await;
    let told: Vec<&str> = vec![BOB, CAROL, GUEST, ALICE];
    let eph: Vec<String> = d
        .ephemerals()
        .iter()
        .map(|e| e["user"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(eph, told);

    // Started from the console; progress is posted in the thread and edited.
    command(&tx, "bob", Command::Start).await;
    let groups = d.calls_of("usergroups.users.list");
    assert_eq!(groups.len(), 1, "membership is cached");
    assert_eq!(groups[0].args["usergroup"], "S0DBAS001");
    d.wait_for("the progress message", WAIT, |d| {
        d.messages()
            .iter()
            .any(|m| m.thread_ts.as_deref() == Some(&pre) && m.edits >= 3)
    })
    .await;

    // Slack recycles the link: the new one is open before the old one closes.
    d.disconnect("refresh_requested", Duration::from_secs(10))
        .unwrap();
    d.wait_for("the switch", WAIT, |d| d.open_links() == [2])
        .await;
    let ll = d.link_log();
    let pos = |s: &str| {
        ll.iter()
            .position(|x| x == s)
            .unwrap_or_else(|| panic!("{s} in {ll:?}"))
    };
    assert!(pos("hello 2") < pos("close 1 by client"), "{ll:?}");
    // Slack's pings are answered on the new link.
    d.ping_all();
    d.wait_for("a pong", WAIT, |d| d.client_pings().1 >= 1)
        .await;

    // Abort from Slack on the new link: the reason modal, then its submission.
    let progress = d
        .messages()
        .into_iter()
        .find(|m| m.thread_ts.as_deref() == Some(&pre) && button(&d, &m.ts, "abort").is_some())
        .unwrap();
    let abort_value = button(&d, &progress.ts, "abort").unwrap();
    d.deliver(d.block_actions(ALICE, &progress.ts, "abort", &abort_value))
        .unwrap();
    d.wait_for("the abort modal", WAIT, |d| d.views().len() == 1)
        .await;
    let (view_id, view) = d.views().remove(0);
    assert_eq!(view["callback_id"], "abort");
    d.deliver(d.view_submission(
        ALICE,
        &view_id,
        &[("reason", "reason_input", "peak traffic")],
    ))
    .unwrap();
    let end = tokio::time::timeout(WAIT, core_task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(end.phase, Phase::Aborted, "the executor was aborted");
    let report = tokio::time::timeout(WAIT, relay).await.unwrap().unwrap();
    assert!(
        report.final_delivered && report.fatal.is_none(),
        "{report:?}"
    );
    let l = log(&interactions);
    assert_eq!(l.last().map(String::as_str), Some("accepted"), "{l:?}");

    // The final state reached Slack: summary broadcast, pre-flight rewritten.
    let msgs = d.messages();
    assert!(
        msgs.iter()
            .any(|m| m.broadcast && m.thread_ts.as_deref() == Some(&pre))
    );
    let pre_now = msgs.iter().find(|m| m.ts == pre).unwrap();
    assert!(
        pre_now.text.to_lowercase().contains("abort"),
        "{}",
        pre_now.text
    );

    // Progress edits were coalesced: far fewer than the samples.
    let edits = d
        .calls_of("chat.update")
        .iter()
        .filter(|c| c.args["ts"] == progress.ts.as_str() && c.error.is_none())
        .count() as u64;
    let n = samples.load(Ordering::Relaxed);
    assert!(edits >= 3 && edits * 3 < n, "{edits} edits for {n} samples");

    // After the run: its clicks are no longer served; refused and recorded by the relay.
    d.deliver(d.block_actions(ALICE, &pre, "approve", &approve_value))
        .unwrap();
    let l = wait_log(&interactions, 9).await;
    assert_eq!(l[8], "unknown run", "{l:?}");

    // Every envelope was acked, once, within Slack's 3 s, with no protocol violation.
    // The relay logs a click before its ack has crossed the socket into the
    // double, so wait for the acks themselves (their latency is what is judged).
    d.wait_for("every ack", WAIT, |d| {
        d.deliveries()
            .iter()
            .all(|x| x.ack.is_some() || x.timed_out)
    })
    .await;
    let deliveries = d.deliveries();
    assert_eq!(deliveries.len(), 9);
    for x in &deliveries {
        assert!(!x.timed_out, "{} not acked in 3 s", x.envelope_id);
        let lat = x
            .latency()
            .unwrap_or_else(|| panic!("{} never acked", x.envelope_id));
        assert!(lat <= ACK_DEADLINE, "{} acked after {lat:?}", x.envelope_id);
    }
    assert!(d.violations().is_empty(), "{:?}", d.violations());

    // The run's trail: refusals (requester, observer, stale) and message ids.
    let (entries, _) = read_file(&trail_path, &key()).unwrap();
    let events: Vec<Event> = entries
        .iter()
        .filter_map(|e| match &e.entry {
            Entry::Run { record } => Some(record.event.clone()),
            _ => None,
        })
        .collect();
    let refused: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Event::Refused {
                command: CommandKind::Approve,
                reason,
                ..
            } => Some(reason.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(refused.len(), 4, "{refused:?}");
    assert!(refused[2].contains("guest"), "{refused:?}");
    assert!(refused[3].contains("out-of-date"), "{refused:?}");
    let posted: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Event::MessagePosted { key, id, .. } => Some(format!("{key}={id}")),
            _ => None,
        })
        .collect();
    assert_eq!(
        posted,
        [
            format!("{}={pre}", keys::PREFLIGHT),
            format!("{}={}", keys::PROGRESS, progress.ts)
        ]
    );
    // The relay's own trail holds the click it could not route.
    let (entries, _) = read_file(&relay_trail_path, &key()).unwrap();
    let relay_refusals: Vec<_> = entries
        .iter()
        .filter_map(|e| match &e.entry {
            Entry::Relay { record } => Some(record.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(relay_refusals.len(), 1, "{relay_refusals:?}");
    assert_eq!(relay_refusals[0].run, "run-7f3a");
    assert_eq!(relay_refusals[0].actor, Actor::slack("T0TEAM001", ALICE));

    // A relay rebuilt from the trail (e.g. after a supervisor restart) edits
    // the same messages: no second pre-flight, an edit of the recorded one.
    let records: Vec<_> = read_file(&trail_path, &key())
        .unwrap()
        .0
        .into_iter()
        .filter_map(|e| match e.entry {
            Entry::Run { record } => Some(record),
            _ => None,
        })
        .collect();
    let rebuilt = cutover::run::RunState::replay(&records);
    let posts_before = d.calls_of("chat.postMessage").len();
    let updates_before = d.calls_of("chat.update").len();
    let mut fan = cutover::run::fanout::Fanout::default();
    let sub = fan.subscribe(16);
    fan.close();
    // The run's core has ended: its request channel is closed.
    let (tx2, rx2) = mpsc::channel(4);
    drop(rx2);
    let setup = RelaySetup {
        run: "run-7f3a".into(),
        target: "orders-prod".into(),
        channel: CHANNEL.into(),
        plan,
        links: Default::default(),
        people: Default::default(),
        coalesce: Duration::from_secs(1),
        requests: None,
    };
    let again = host.spawn_for_run(setup, tx2, rebuilt, sub, shutdown.clone());
    let report = tokio::time::timeout(WAIT, again).await.unwrap().unwrap();
    assert_eq!(report.ids.preflight.as_deref(), Some(pre.as_str()));
    let calls = d.calls();
    assert!(
        calls[updates_before.min(calls.len())..]
            .iter()
            .any(|c| c.method == "chat.update" && c.args["ts"] == pre.as_str()),
        "the recorded pre-flight is edited"
    );
    let new_posts: Vec<_> = d.calls_of("chat.postMessage")[posts_before..].to_vec();
    assert!(
        new_posts
            .iter()
            .all(|c| c.args["thread_ts"] == pre.as_str()),
        "no second pre-flight: {:?}",
        new_posts
            .iter()
            .map(|c| &c.args["text"])
            .collect::<Vec<_>>()
    );
    shutdown.cancel();
    let _ = socket.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_do_not_wait_for_slow_slack_and_disconnects_are_obeyed() {
    let d = Double::start().await;
    let api: Arc<dyn SlackApi> = Arc::new(HttpApi::new(
        &d.base,
        Some(Secret::new(BOT)),
        Some(Secret::new(APP)),
    ));
    let interactions = Arc::new(Interactions::new(
        api.clone(),
        vec![],
        Duration::from_secs(300),
    ));
    let host = SlackHost::new(api, interactions.clone());
    let socket = host.spawn_socket_mode(CancellationToken::new());
    d.wait_for("the first link", WAIT, |d| d.open_links() == [1])
        .await;
    // The answer to this click (an ephemeral) is slow; the ack is not.
    d.inject(
        "chat.postEphemeral",
        slack_double::Fault::Slow(Duration::from_secs(4)),
    );
    let env = d
        .deliver(d.block_actions(ALICE, "1700000000.000100", "approve", "run-gone|d|1"))
        .unwrap();
    d.wait_for("the slow ephemeral", WAIT, |d| d.ephemerals().len() == 1)
        .await;
    let delivery = d
        .deliveries()
        .into_iter()
        .find(|x| x.envelope_id == env)
        .unwrap();
    let (acked, _) = delivery.ack.clone().expect("acked");
    let answered = d.calls_of("chat.postEphemeral")[0].at;
    assert!(acked < answered, "acked before the work finished");
    assert!(!delivery.timed_out);
    // `warning`: the link closes soon; the client moves to a new one first.
    d.disconnect("warning", Duration::from_secs(5)).unwrap();
    d.wait_for("the second link", WAIT, |d| d.open_links() == [2])
        .await;
    let ll = d.link_log();
    let pos = |s: &str| {
        ll.iter()
            .position(|x| x == s)
            .unwrap_or_else(|| panic!("{s} in {ll:?}"))
    };
    assert!(pos("hello 2") < pos("close 1 by client"), "{ll:?}");
    // `link_disabled`: Socket Mode was turned off; the client stops for good.
    d.disconnect("link_disabled", Duration::ZERO).unwrap();
    let r = tokio::time::timeout(WAIT, socket).await.unwrap().unwrap();
    assert!(
        matches!(r, Err(cutover::slack::socket::SocketError::Fatal(ref m)) if m.contains("link_disabled")),
        "{r:?}"
    );
    assert_eq!(
        d.calls_of("apps.connections.open").len(),
        2,
        "no reconnect after link_disabled"
    );
    assert!(d.violations().is_empty(), "{:?}", d.violations());
}

/// Vector B's body: `payload=` + every reserved character percent-encoded.
fn vector_b() -> Vec<u8> {
    let json = r#"{"type":"block_actions","user":{"id":"U0DBA0001","username":"alice","team_id":"T0TEAM001"},"team":{"id":"T0TEAM001","domain":"acme"},"channel":{"id":"C0DBOPS01","name":"db-ops"},"container":{"type":"message","message_ts":"1700000000.000100","channel_id":"C0DBOPS01","is_ephemeral":false},"message":{"ts":"1700000000.000100","type":"message"},"trigger_id":"1234.5678.abcdef","response_url":"https://hooks.slack.com/actions/T0TEAM001/1/abc","actions":[{"type":"button","action_id":"approve","block_id":"approval:run-7f3a","value":"run-7f3a","text":{"type":"plain_text","text":"Approve"},"action_ts":"1700000005.123456"}]}"#;
    format!("payload={}", cutover::slack::api::urlencode(json)).into_bytes()
}

async fn post(addr: &str, ts: &str, sig: &str, body: &[u8]) -> u16 {
    reqwest::Client::new()
        .post(format!("http://{addr}/slack/interactivity"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("X-Slack-Request-Timestamp", ts)
        .header("X-Slack-Signature", sig)
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn the_http_endpoint_accepts_the_spec_vectors_and_refuses_forged_stale_and_replayed() {
    use sha2::Digest;
    let d = Double::start().await;
    let api: Arc<dyn SlackApi> = Arc::new(HttpApi::new(&d.base, Some(Secret::new(BOT)), None));
    let dir = tempfile::tempdir().unwrap();
    let (relay_trail, _) = Trail::open(&dir.path().join("relay-audit.jsonl"), key()).unwrap();
    let handler =
        Arc::new(Interactions::new(api, vec![], Duration::from_secs(300)).with_audit(relay_trail));
    let now = Arc::new(AtomicI64::new(0));
    let n2 = now.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let serve = |secret: &str| {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let verifier = Arc::new(Verifier::new(Secret::new(secret)));
        let clock = n2.clone();
        tokio::spawn(cutover::slack::http::serve_with_clock(
            tokio::net::TcpListener::from_std(l).unwrap(),
            verifier,
            handler.clone(),
            CancellationToken::new(),
            Arc::new(move || clock.load(Ordering::Relaxed)),
        ));
        addr
    };
    drop(listener);
    let _ = addr;
    // A: Slack's documented example (a slash command, so not a payload: 400, not 401).
    let a = serve("8f742231b10e8888abcd99yyyzzz85a5");
    let a_body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    let a_sig = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    now.store(1531420618 + 301, Ordering::Relaxed);
    assert_eq!(
        post(&a, "1531420618", a_sig, a_body).await,
        401,
        "301 s late"
    );
    now.store(1531420618 - 301, Ordering::Relaxed);
    assert_eq!(
        post(&a, "1531420618", a_sig, a_body).await,
        401,
        "301 s early"
    );
    now.store(1531420618 + 300, Ordering::Relaxed);
    assert_eq!(
        post(&a, "1531420618", a_sig, a_body).await,
        400,
        "300 s is inside the window"
    );
    // B: a realistic block_actions.
    let b = serve("test-signing-secret-0123456789abcdef");
    let body = vector_b();
    assert_eq!(body.len(), 991);
    assert_eq!(
        hex::encode(sha2::Sha256::digest(&body)),
        "acc01c2b9f18859eb4e37616cf864e4fbc48335c97a39f714b364687650b0d6b"
    );
    let b_sig = "v0=50140fff54797a2e9f65508ccda0ae91d3ddb6dac7dfe118937fd71814ca6293";
    now.store(1700000000, Ordering::Relaxed);
    let forged = b_sig.replace("5014", "5015");
    assert_eq!(post(&b, "1700000000", &forged, &body).await, 401, "forged");
    let mut tampered = body.clone();
    tampered[20] ^= 1;
    assert_eq!(
        post(&b, "1700000000", b_sig, &tampered).await,
        401,
        "tampered body"
    );
    assert_eq!(post(&b, "1700000000", b_sig, &body).await, 200);
    assert_eq!(post(&b, "1700000000", b_sig, &body).await, 401, "replayed");
    // The replay cache is keyed by the signature's bytes: the same signature
    // in upper-case hex is the same request.
    let upper = format!("v0={}", b_sig[3..].to_uppercase());
    assert_eq!(
        post(&b, "1700000000", &upper, &body).await,
        401,
        "replayed in upper case"
    );
    assert_eq!(post(&b, "1700000000", "", &body).await, 401, "unsigned");
    // C and D.
    let c = serve("s3cr3t");
    assert_eq!(
        post(
            &c,
            "1700000000",
            "v0=9bd5477541a00dbf00547fcf0c737fae226b1171a61f7e01d959b5a519d32da7",
            b"payload=%7B%22type%22%3A%22block_actions%22%7D"
        )
        .await,
        200
    );
    assert_eq!(
        post(
            &c,
            "1700000000",
            "v0=7ad0ebb3c6d81a9e405202a046b04ce8f876759740b099f47adcd4d72eefc622",
            b""
        )
        .await,
        400,
        "D verifies; an empty body is not a payload"
    );
    // A signed click for a run this relay does not serve: answered and recorded.
    let click = d.block_actions(ALICE, "1700000000.000100", "approve", "run-elsewhere|abc|3");
    let body = format!(
        "payload={}",
        cutover::slack::api::urlencode(&click.to_string())
    );
    let ts = "1700000100";
    now.store(1700000100, Ordering::Relaxed);
    let sig = cutover::slack::signing::sign("s3cr3t", ts, body.as_bytes());
    assert_eq!(post(&c, ts, &sig, body.as_bytes()).await, 200);
    d.wait_for("the ephemeral", WAIT, |d| d.ephemerals().len() == 1)
        .await;
    let e: &Value = &d.ephemerals()[0];
    assert!(e["text"].as_str().unwrap().contains("run-elsewhere"));
    let (entries, _) = read_file(&dir.path().join("relay-audit.jsonl"), &key()).unwrap();
    assert!(
        entries
            .iter()
            .any(|e| matches!(&e.entry, Entry::Relay { record } if record.run == "run-elsewhere"))
    );
}

/// 1,000 connections that send half a request and stall: each is closed by
/// the read timeout; at the connection limit the accept loop waits (one turn
/// per accepted connection, no spinning).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_are_closed_by_the_timeout_and_the_accept_loop_stays_idle() {
    use cutover::slack::http::{ServeOptions, ServeStats, serve_with};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let d = Double::start().await;
    let api: Arc<dyn SlackApi> = Arc::new(HttpApi::new(&d.base, Some(Secret::new(BOT)), None));
    let handler = Arc::new(Interactions::new(api, vec![], Duration::from_secs(300)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stats = Arc::new(ServeStats::default());
    let shutdown = CancellationToken::new();
    tokio::spawn(serve_with(
        listener,
        Arc::new(Verifier::new(Secret::new("s3cr3t"))),
        handler,
        shutdown.clone(),
        Arc::new(|| 1_700_000_000),
        ServeOptions {
            read_timeout: Duration::from_millis(500),
            max_connections: 250,
        },
        stats.clone(),
    ));
    const N: usize = 1000;
    let mut conns = Vec::with_capacity(N);
    for _ in 0..N {
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b"POST /slack HTTP/1.1\r\nContent-Length: 500\r\n\r\npayload=%7B")
            .await
            .unwrap();
        conns.push(c);
    }
    let cpu0 = cpu_seconds();
    let wall0 = std::time::Instant::now();
    let closers: Vec<_> = conns
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                let mut out = Vec::new();
                // Closed by the server: EOF after at most a 408.
                let _ = c.read_to_end(&mut out).await;
                String::from_utf8_lossy(&out).into_owned()
            })
        })
        .collect();
    let mut answers = Vec::new();
    for c in closers {
        // A guard, not a timing assertion: without the read timeout this hangs.
        let a = tokio::time::timeout(Duration::from_secs(120), c)
            .await
            .expect("the server closed the connection")
            .unwrap();
        answers.push(a);
    }
    let (cpu, wall) = (cpu_seconds() - cpu0, wall0.elapsed().as_secs_f64());
    eprintln!(
        "1,000 half-sent connections closed in {wall:.1} s using {cpu:.2} s of CPU ({:.0}% of a core, client included)",
        100.0 * cpu / wall
    );
    assert!(
        answers
            .iter()
            .all(|a| a.is_empty() || a.starts_with("HTTP/1.1 408"))
    );
    let get = |x: &std::sync::atomic::AtomicU64| x.load(Ordering::Relaxed);
    assert_eq!(get(&stats.accepted), N as u64);
    assert_eq!(get(&stats.timed_out), N as u64);
    assert_eq!(get(&stats.accept_errors), 0);
    // One turn per accepted connection (+ the one waiting now): never a spin.
    assert!(
        get(&stats.loop_turns) <= N as u64 + 1,
        "{}",
        get(&stats.loop_turns)
    );
    // And no connection is left open.
    d.wait_for("connections closed", Duration::from_secs(10), |_| {
        get(&stats.open) == 0
    })
    .await;
    shutdown.cancel();
}

/// User + system CPU seconds of this process (Linux `/proc/self/stat`).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |x| x.1);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the ')'.
    (ticks(11) + ticks(12)) / 100.0
}
