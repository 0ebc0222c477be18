//! Clicks through `Interactions` into a real run core (simulated executor):
//! the requester and a non-DBA are refused (and the refusals recorded), a
//! DBA's approval is accepted, a duplicate is dropped, a stale render and an
//! unknown run get an ephemeral answer, and an abort from Slack reaches the executor.

mod slack_common;

use cutover::audit::{AuditKey, Trail};
use cutover::exec::sim::{SimConfig, SimExecutor};
use cutover::policy::authz::Role;
use cutover::policy::config::PersonConfig;
use cutover::policy::{Clock, Directory, PolicyConfig};
use cutover::run::Phase;
use cutover::run::core::{CoreDeps, Request, RunCore, TokioClock};
use cutover::slack::api::{ApiError, SlackApi};
use cutover::slack::blocks::ActionValue;
use cutover::slack::interact::{Interactions, RunHandle};
use cutover::slack::view::RunView;
use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use slack_common::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

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
                _ => json!({"ok": true, "users": []}),
            })
        })
    }
}

fn click(user: &str, action: &str, v: &ActionValue, ts: &str) -> Value {
    json!({"type": "block_actions", "user": {"id": user, "team_id": "T1"}, "trigger_id": "1.2.abc",
        "container": {"type": "message", "message_ts": "1.1", "channel_id": "C1"},
        "actions": [{"type": "button", "action_id": action, "value": v.encode(), "action_ts": ts}]})
}

#[tokio::test(start_paused = true)]
async fn clicks_are_authorized_by_the_run_core() {
    let dir = tempfile::tempdir().unwrap();
    let (trail, _) = Trail::open(
        &dir.path().join("audit.jsonl"),
        AuditKey::new(b"slack-test-key-0123456".to_vec()).unwrap(),
    )
    .unwrap();
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new(t0()));
    let p = |id: &str, role, slack: &str| PersonConfig {
        id: id.into(),
        name: None,
        role,
        local: vec![id.into()],
        slack: Some(slack.into()),
    };
    let policy = PolicyConfig {
        people: vec![
            p("dba1", Role::Dba, "U1"),
            p("own", Role::Owner, "U3"),
            p("bob", Role::Dba, "U9"),
        ],
        ..PolicyConfig::default()
    };
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
        tick: Duration::from_secs(1),
    };
    let exec = SimExecutor::new(
        SimConfig {
            rows_total: 10_000_000,
            ..SimConfig::default()
        },
        clock,
    );
    let mut core = RunCore::create("run-7f3a", spec.clone(), deps, trail, Box::new(exec)).unwrap();
    let mut sub = core.subscribe(4096);
    let (tx, rx) = mpsc::channel(16);
    let shutdown = CancellationToken::new();
    let core_task = tokio::spawn(core.run(rx, shutdown.clone()));
    // The relay's view follows the run.
    let (vtx, vrx) = watch::channel(RunView::default());
    tokio::spawn(async move {
        let mut v = RunView::default();
        while let Some(i) = sub.recv().await {
            v.apply(&i);
            vtx.send_replace(v.clone());
        }
    });
    let fake = Arc::new(Fake::default());
    let h = Interactions::new(fake.clone(), vec![], Duration::from_secs(300));
    h.register(
        "run-7f3a",
        RunHandle {
            requests: tx.clone(),
            view: vrx.clone(),
            target: "orders-prod".into(),
            channel: "C1".into(),
        },
    );
    // bob requests from Slack.
    let (rtx, rrx) = oneshot::channel();
    let env = cutover::run::CommandEnvelope::new(
        cutover::policy::Actor::slack("T1", "U9"),
        cutover::policy::Surface::Slack,
        cutover::run::Command::Request,
    );
    tx.send(Request::Command(env, rtx)).await.unwrap();
    rrx.await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let value = |rev| ActionValue {
        run: "run-7f3a".into(),
        digest: spec.binding.plan_digest.clone(),
        rev,
    };
    let rev = vrx.borrow().rev;
    let log = |h: &Interactions| {
        h.log
            .lock()
            .unwrap()
            .iter()
            .map(|x| x.1.clone())
            .collect::<Vec<_>>()
    };
    h.process(&click("U9", "approve", &value(rev), "1.1"), Some("e1"))
        .await; // requester
    h.process(&click("U7", "approve", &value(rev), "1.0"), Some("e0"))
        .await; // no role
    h.process(&click("U3", "approve", &value(rev), "1.2"), Some("e2"))
        .await; // owner may approve medium
    let mut l = log(&h);
    assert!(
        l[0].starts_with("refused") && l[0].contains("self-approval"),
        "{l:?}"
    );
    assert!(
        l[1].starts_with("refused") && l[1].contains("not allowed"),
        "{l:?}"
    );
    assert_eq!(l.remove(2), "accepted", "{l:?}");
    h.log.lock().unwrap().remove(1);
    h.process(&click("U3", "approve", &value(rev), "1.2"), Some("e2"))
        .await; // duplicate
    assert_eq!(log(&h)[2], "duplicate");
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(vrx.borrow().state.phase, Phase::Approved);
    h.process(&click("U1", "approve", &value(rev), "1.3"), Some("e3"))
        .await; // stale render
    assert_eq!(log(&h)[3], "stale render");
    h.process(
        &click(
            "U1",
            "approve",
            &ActionValue {
                run: "nope".into(),
                ..value(rev)
            },
            "1.4",
        ),
        Some("e4"),
    )
    .await;
    assert_eq!(log(&h)[4], "unknown run");
    let eph = fake
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|(m, _)| m == "chat.postEphemeral")
        .count();
    assert_eq!(
        eph, 4,
        "requester, no role, stale and unknown run get an ephemeral"
    );
    // Start from the console side, then abort from Slack (reason modal → submission).
    let (rtx, rrx) = oneshot::channel();
    let env = cutover::run::CommandEnvelope::new(
        cutover::policy::Actor::local("dba1"),
        cutover::policy::Surface::Console,
        cutover::run::Command::Start,
    );
    tx.send(Request::Command(env, rtx)).await.unwrap();
    rrx.await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rev = vrx.borrow().rev;
    h.process(&click("U1", "abort", &value(rev), "2.1"), Some("e5"))
        .await;
    assert!(
        fake.0
            .lock()
            .unwrap()
            .iter()
            .any(|(m, a)| m == "views.open" && a["view"]["callback_id"] == "abort")
    );
    let submit = json!({"type": "view_submission", "user": {"id": "U1", "team_id": "T1"}, "view": {"id": "V1", "callback_id": "abort", "private_metadata": value(rev).encode(),
        "state": {"values": {"reason": {"reason_input": {"type": "plain_text_input", "value": "peak traffic"}}}}}});
    h.process(&submit, Some("e6")).await;
    assert_eq!(
        log(&h).last().map(String::as_str),
        Some("accepted"),
        "{:?}",
        log(&h)
    );
    let end = tokio::time::timeout(Duration::from_secs(60), core_task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(end.phase, Phase::Aborted, "the executor was aborted");
    assert!(end.refusals >= 2, "the requester's refusal is recorded");
}
