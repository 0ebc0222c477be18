//! Clicks Slack hands to another run's relay (one Slack app, one Socket
//! Mode link per supervisor; Slack picks the link): the receiving relay
//! forwards them over the run's control socket, and the run's own relay
//! handles them as its own — an unauthorized click is refused and recorded
//! in *that run's* trail, a DBA's approval counts. A click for a run whose
//! supervisor is not running is answered and recorded by the relay that got it.

mod slack_common;

use cutover::audit::{AuditKey, Entry, Trail, read_file};
use cutover::exec::sim::{SimConfig, SimExecutor};
use cutover::policy::authz::Role;
use cutover::policy::config::PersonConfig;
use cutover::policy::{Actor, Clock, Directory, PolicyConfig, Surface};
use cutover::run::core::Reply;
use cutover::run::core::{CoreDeps, Request, RunCore, TokioClock};
use cutover::run::{Command, CommandEnvelope, Event, Phase};
use cutover::slack::api::{ApiError, SlackApi};
use cutover::slack::blocks::ActionValue;
use cutover::slack::interact::{Interactions, RunHandle};
use cutover::slack::route::Router;
use cutover::slack::view::RunView;
use cutover::supervisor::peer::current_uid;
use cutover::supervisor::{Client, bind, serve_with, socket_path};
use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use slack_common::*;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

const PREFLIGHT_TS: &str = "1700000001.000100";

fn key() -> AuditKey {
    AuditKey::new(b"slack-forward-test-key-0123".to_vec()).unwrap()
}

/// A Slack Web API that says yes and remembers what it was asked.
#[derive(Default)]
struct Fake(Mutex<Vec<(String, Value)>>);
impl SlackApi for Fake {
    fn call<'a>(&'a self, method: &'a str, args: Value) -> BoxFuture<'a, Result<Value, ApiError>> {
        self.0.lock().unwrap().push((method.to_string(), args));
        Box::pin(async move {
            Ok(match method {
                "users.info" => {
                    json!({"ok": true, "user": {"id": "U", "deleted": false, "is_bot": false}})
                }
                "views.open" => json!({"ok": true, "view": {"id": "V0FORM1"}}),
                _ => json!({"ok": true, "users": []}),
            })
        })
    }
}

impl Fake {
    fn ephemerals(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, _)| m == "chat.postEphemeral")
            .map(|(_, a)| a["text"].as_str().unwrap_or("").to_string())
            .collect()
    }
}

fn click(user: &str, v: &ActionValue, message_ts: &str, action_ts: &str) -> Value {
    button(user, "approve", v, message_ts, action_ts)
}

fn button(user: &str, action: &str, v: &ActionValue, message_ts: &str, action_ts: &str) -> Value {
    json!({"type": "block_actions", "user": {"id": user, "team_id": "T1"}, "trigger_id": "1.2.abc",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": "C1"},
        "actions": [{"type": "button", "action_id": action, "value": v.encode(), "action_ts": action_ts}]})
}

fn log(h: &Interactions) -> Vec<String> {
    h.log.lock().unwrap().iter().map(|x| x.1.clone()).collect()
}

/// Waits (real time: the control socket is real I/O) until `f` holds.
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

fn relay_records(path: &Path) -> Vec<cutover::audit::RelayRecord> {
    if !path.exists() {
        return Vec::new();
    }
    read_file(path, &key())
        .unwrap()
        .0
        .into_iter()
        .filter_map(|e| match e.entry {
            Entry::Relay { record } => Some(record),
            _ => None,
        })
        .collect()
}

fn refusals(path: &Path, run: &str) -> Vec<(String, String)> {
    read_file(path, &key())
        .unwrap()
        .0
        .into_iter()
        .filter_map(|e| match e.entry {
            Entry::Run { record } if record.run == run => match record.event {
                Event::Refused { person, reason, .. } => Some((person, reason)),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

const SECRET: &str = "forward-test-signing-secret-0123";

/// `cutover relay serve`: the signed HTTP endpoint, serving no run, routing
/// through `runs` and the test's registry. Its address.
async fn http_endpoint(root: &Path, runs: &Path) -> String {
    use cutover::slack::config::Secret;
    use cutover::slack::signing::Verifier;
    let (t, _) = Trail::open(&root.join("http-relay-audit.jsonl"), key()).unwrap();
    let handler = Arc::new(
        Interactions::new(Arc::new(Fake::default()), vec![], Duration::from_secs(300))
            .with_audit(t)
            .with_router(Router::new(runs, &root.join("live"), "relay-serve")),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(cutover::slack::http::serve(
        l,
        Arc::new(Verifier::new(Secret::new(SECRET))),
        handler,
        CancellationToken::new(),
    ));
    addr
}

/// Posts an interaction payload as Slack would (form-encoded, signed now).
async fn post_signed(addr: &str, payload: &Value) -> u16 {
    let mut form = reqwest::Url::parse("http://form/").unwrap();
    form.query_pairs_mut()
        .append_pair("payload", &payload.to_string());
    let body = form.query().unwrap_or("").as_bytes().to_vec();
    let ts = chrono::Utc::now().timestamp().to_string();
    reqwest::Client::new()
        .post(format!("http://{addr}/slack/interactivity"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("X-Slack-Request-Timestamp", &ts)
        .header(
            "X-Slack-Signature",
            cutover::slack::signing::sign(SECRET, &ts, &body),
        )
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The relay that Slack picked: serves another run (`run-b`), routes
/// through `runs` and a registry of its own, records in `relay-audit.jsonl`.
fn receiving_relay(root: &Path, runs: &Path) -> (Arc<Fake>, Interactions, PathBuf) {
    let relay_trail = root.join("relay-audit.jsonl");
    let (t, _) = Trail::open(&relay_trail, key()).unwrap();
    let fake = Arc::new(Fake::default());
    let h = Interactions::new(fake.clone(), vec![], Duration::from_secs(300))
        .with_audit(t)
        .with_router(Router::new(runs, &root.join("live"), "run-b"));
    (fake, h, relay_trail)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_for_a_run_that_is_not_live_is_answered_and_recorded_where_it_landed() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    std::fs::create_dir_all(runs.join("run-a")).unwrap();
    std::fs::write(runs.join("run-a/run.json"), "{}").unwrap();
    let (fake, b, relay_trail) = receiving_relay(dir.path(), &runs);
    let v = ActionValue {
        run: "run-a".into(),
        digest: "d".into(),
        rev: 1,
    };
    b.process(&click("U1", &v, PREFLIGHT_TS, "1.1"), Some("e1"))
        .await;
    assert_eq!(log(&b), ["not live"]);
    let eph = fake.ephemerals();
    assert_eq!(eph.len(), 1, "{eph:?}");
    assert!(
        eph[0].contains("is not live") && eph[0].contains("cutover resume run-a"),
        "{eph:?}"
    );
    let rec = relay_records(&relay_trail);
    assert_eq!(rec.len(), 1, "{rec:?}");
    assert_eq!(rec[0].run, "run-a");
    assert!(rec[0].reason.contains("not live"), "{rec:?}");
    // A run nobody here knows of is still "not served by this relay".
    let nope = ActionValue {
        run: "nope".into(),
        ..v
    };
    b.process(&click("U1", &nope, PREFLIGHT_TS, "1.2"), Some("e2"))
        .await;
    assert_eq!(log(&b)[1], "unknown run");
    assert_eq!(relay_records(&relay_trail).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_clicks_are_authorized_and_recorded_by_their_own_run() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let run_dir = runs.join("run-a");
    std::fs::create_dir_all(&run_dir).unwrap();
    std::fs::write(run_dir.join("run.json"), "{}").unwrap();
    // Run A: a real core, its relay's click router, and its control socket.
    let trail_path = dir.path().join("audit.jsonl");
    let (trail, _) = Trail::open(&trail_path, key()).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new(t0()));
    let p = |id: &str, role, slack: &str| PersonConfig {
        id: id.into(),
        name: None,
        role,
        local: vec![id.into()],
        slack: Some(slack.into()),
    };
    let policy = PolicyConfig {
        people: vec![p("alice", Role::Dba, "U1"), p("bob", Role::Dba, "U9")],
        ..PolicyConfig::default()
    };
    let plan = small_plan();
    let mut spec = spec_of(&plan);
    spec.risk = cutover::model::Risk::Medium;
    let deps = CoreDeps {
        directory: Directory::new(&policy),
        policy,
        staging_successes: [spec.binding.plan_digest.clone()].into_iter().collect(),
        clock: clock.clone(),
        run_dir: run_dir.clone(),
        postpone_cut_over: true,
        tick: Duration::from_secs(1),
    };
    let exec = SimExecutor::new(SimConfig::default(), clock);
    let mut core = RunCore::create("run-a", spec.clone(), deps, trail, Box::new(exec)).unwrap();
    let mut sub = core.subscribe(4096);
    let (tx, rx) = mpsc::channel(16);
    let shutdown = CancellationToken::new();
    let _core = tokio::spawn(core.run(rx, shutdown.clone()));
    let (vtx, vrx) = watch::channel(RunView::default());
    tokio::spawn(async move {
        let mut v = RunView::default();
        while let Some(i) = sub.recv().await {
            v.apply(&i);
            vtx.send_replace(v.clone());
        }
    });
    let fake_a = Arc::new(Fake::default());
    let a = Arc::new(Interactions::new(
        fake_a.clone(),
        vec![],
        Duration::from_secs(300),
    ));
    a.register(
        "run-a",
        RunHandle {
            requests: tx.clone(),
            view: vrx.clone(),
            target: "orders-prod".into(),
            channel: "C1".into(),
        },
    );
    let listener = bind(&socket_path(&run_dir)).unwrap();
    // Opened as by `cutover serve`: relayed clients may be named (`OnBehalf`).
    tokio::spawn(serve_with(
        listener,
        tx.clone(),
        shutdown.clone(),
        true,
        Some(a.forwarded()),
    ));
    let command = |actor: Actor, surface: Surface, c: Command| {
        let tx = tx.clone();
        async move {
            let (rtx, rrx) = oneshot::channel();
            let env = CommandEnvelope::new(actor, surface, c);
            tx.send(Request::Command(env, rtx)).await.unwrap();
            rrx.await.unwrap()
        }
    };
    // Run A's pre-flight is in Slack, and bob requested from Slack.
    command(
        Actor::System,
        Surface::System,
        Command::NoteMessage {
            key: "slack.preflight".into(),
            channel: "C1".into(),
            id: PREFLIGHT_TS.into(),
        },
    )
    .await;
    command(Actor::slack("T1", "U9"), Surface::Slack, Command::Request).await;
    until("the relay's view of the request", || {
        vrx.borrow().state.phase == Phase::AwaitingApproval
    })
    .await;
    let v = ActionValue {
        run: "run-a".into(),
        digest: spec.binding.plan_digest.clone(),
        rev: vrx.borrow().rev,
    };
    // Slack hands the clicks to run B's relay.
    let (fake_b, b, relay_trail) = receiving_relay(dir.path(), &runs);
    // Someone with no role: refused by run A, recorded in run A's trail.
    b.process(&click("U7", &v, PREFLIGHT_TS, "2.1"), Some("e1"))
        .await;
    // The requester: no self-approval.
    b.process(&click("U9", &v, PREFLIGHT_TS, "2.2"), Some("e2"))
        .await;
    assert_eq!(log(&b), ["forwarded", "forwarded"]);
    until("run A's relay to refuse both", || {
        log(&a).iter().filter(|l| l.starts_with("refused")).count() == 2
    })
    .await;
    let refused = refusals(&trail_path, "run-a");
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(
        refused.iter().any(|(_, r)| r.contains("not allowed")),
        "{refused:?}"
    );
    assert!(
        refused
            .iter()
            .any(|(p, r)| p == "bob" && r.contains("self-approval")),
        "{refused:?}"
    );
    // Run A's relay answered the clickers; B's said nothing and recorded nothing.
    assert_eq!(fake_a.ephemerals().len(), 2, "{:?}", fake_a.ephemerals());
    assert!(fake_b.ephemerals().is_empty(), "{:?}", fake_b.ephemerals());
    assert!(relay_records(&relay_trail).is_empty());
    // A click on a message that is not run A's (another project's run of
    // the same id): run A does not take it; B answers and records it.
    b.process(&click("U1", &v, "1699999999.000001", "2.3"), Some("e3"))
        .await;
    let l = log(&b);
    assert!(
        l[2].starts_with("not taken") && l[2].contains("not on a message"),
        "{l:?}"
    );
    assert_eq!(relay_records(&relay_trail).len(), 1);
    assert_eq!(fake_b.ephemerals().len(), 1);
    // A client the service relays for another user (its peer uid is the
    // supervisor's own) cannot hand over a Slack payload: it would be
    // trusted as Slack's word that Alice clicked.
    let mut relayed = Client::connect(&socket_path(&run_dir)).await.unwrap();
    relayed.on_behalf(current_uid() + 1).await.unwrap();
    let forged = relayed
        .forward_slack(click("U1", &v, PREFLIGHT_TS, "2.9"), "run-b")
        .await
        .unwrap();
    assert!(
        matches!(&forged, Reply::Refused { reason } if reason.contains("only from the supervisor's own user")),
        "{forged:?}"
    );
    assert_eq!(vrx.borrow().state.phase, Phase::AwaitingApproval);
    assert!(!log(&a).contains(&"accepted".to_string()), "{:?}", log(&a));
    // Alice, a DBA, approves — through the signed HTTP endpoint (`cutover
    // relay serve`), which serves no run itself: the approval reaches run A.
    let http = http_endpoint(dir.path(), &runs).await;
    assert_eq!(
        post_signed(&http, &click("U1", &v, PREFLIGHT_TS, "2.4")).await,
        200
    );
    until("run A approved", || {
        vrx.borrow().state.phase == Phase::Approved
    })
    .await;
    assert!(log(&a).contains(&"accepted".to_string()), "{:?}", log(&a));
    // A form: the abort click lands in the relay of another project's run
    // that happens to have the same id (run A is in the registry of live
    // relays); not being on its messages, it goes to run A, whose relay
    // opens the form (the trigger is the app's, whichever link got the click) ...
    let _registered = Router::new(&runs, &dir.path().join("live"), "run-a")
        .register("run-a", &run_dir)
        .unwrap();
    let (twin_tx, mut twin_rx) = mpsc::channel(16);
    let twin = Interactions::new(Arc::new(Fake::default()), vec![], Duration::from_secs(300))
        .with_router(Router::new(
            &dir.path().join("other-project/runs"),
            &dir.path().join("live"),
            "run-a",
        ));
    twin.register(
        "run-a",
        RunHandle {
            requests: twin_tx,
            view: watch::channel(RunView::default()).1,
            target: "orders-prod".into(),
            channel: "C1".into(),
        },
    );
    let v = ActionValue {
        rev: vrx.borrow().rev,
        ..v
    };
    let twin_click = button("U1", "abort", &v, PREFLIGHT_TS, "2.5");
    // (Handled as the twin's own, it would wait for a core that never answers.)
    tokio::time::timeout(
        Duration::from_secs(10),
        twin.process(&twin_click, Some("e5")),
    )
    .await
    .expect("the twin relay handed the click on");
    assert_eq!(log(&twin), ["forwarded"]);
    assert!(twin_rx.try_recv().is_err(), "the twin run heard nothing");
    until("run A to open the form", || {
        log(&a).contains(&"modal opened".to_string())
    })
    .await;
    let submit = |view_id: &str| {
        json!({"type": "view_submission", "user": {"id": "U1", "team_id": "T1"},
            "view": {"id": view_id, "callback_id": "abort", "private_metadata": v.encode(),
                "state": {"values": {"reason": {"reason_input": {"value": "not during the sale"}}}}}})
    };
    // ... a submission of a form run A never opened is not taken ...
    b.process(&submit("V0OTHER"), Some("e6")).await;
    assert!(log(&b)[3].starts_with("not taken"), "{:?}", log(&b));
    assert_ne!(vrx.borrow().state.phase, Phase::Aborted);
    // ... and its own form's submission, handed to B, comes back to run A.
    assert_eq!(b.ack_payload(&submit("V0FORM1")), None);
    b.process(&submit("V0FORM1"), Some("e7")).await;
    assert_eq!(log(&b)[4], "forwarded", "{:?}", log(&b));
    until("run A's relay to take the submission", || {
        log(&a).iter().filter(|l| *l == "accepted").count() == 2
    })
    .await;
    until("run A aborted", || {
        vrx.borrow().state.phase == Phase::Aborted
    })
    .await;
    let aborted = read_file(&trail_path, &key())
        .unwrap()
        .0
        .into_iter()
        .any(|e| {
            matches!(e.entry, Entry::Run { record } if matches!(&record.event,
                Event::Aborted { reason, .. } if reason.contains("alice") && reason.contains("not during the sale")))
        });
    assert!(aborted, "alice's typed reason is in run A's trail");
    shutdown.cancel();
}
