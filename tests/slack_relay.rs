//! The coalescing sender on tokio's paused clock against an in-process fake
//! of the API trait: edits spaced and coalesced, 429 honoured with only the
//! newest state sent afterwards, final state delivered after an outage, ids
//! recorded through the run core (run events) so a relay rebuilt from the
//! trail edits the same messages, and the transcript written without a token.

mod slack_common;

use cutover::audit::Anchor;
use cutover::exec::ExecPhase;
use cutover::policy::Actor;
use cutover::run::core::{Reply, Request};
use cutover::run::fanout::{Fanout, Published};
use cutover::run::{Command, RunState};
use cutover::run::{Event, EventRecord, Sample};
use cutover::slack::api::{ApiError, SlackApi};
use cutover::slack::relay::{MessageIds, Relay, RelaySetup, keys};
use cutover::slack::transcript::{TRANSCRIPT_FILE, Transcript};
use cutover::slack::view::RunView;
use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use slack_common::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<(Instant, String, Value)>>,
    /// Until this instant every call fails: Some(true) = 429 Retry-After 30, Some(false) = 503.
    outage: Mutex<Option<(Instant, bool)>>,
    next_ts: Mutex<u64>,
}

impl SlackApi for Fake {
    fn call<'a>(&'a self, method: &'a str, args: Value) -> BoxFuture<'a, Result<Value, ApiError>> {
        Box::pin(async move {
            let now = Instant::now();
            self.calls
                .lock()
                .unwrap()
                .push((now, method.to_string(), args.clone()));
            if let Some((until, rl)) = *self.outage.lock().unwrap()
                && now < until
            {
                return Err(if rl {
                    ApiError::RateLimited {
                        method: method.into(),
                        retry_after: Duration::from_secs(30),
                    }
                } else {
                    ApiError::Status {
                        method: method.into(),
                        status: 503,
                    }
                });
            }
            let mut n = self.next_ts.lock().unwrap();
            *n += 1;
            Ok(match method {
                "chat.postMessage" => {
                    json!({"ok": true, "channel": "C1", "ts": format!("1700000000.{:06}", *n)})
                }
                _ => json!({"ok": true, "channel": "C1", "ts": args["ts"]}),
            })
        })
    }
}

fn anchor() -> Anchor {
    Anchor {
        records: 0,
        tag: String::new(),
    }
}

struct Driver {
    fan: Fanout,
    view: RunView,
}

impl Driver {
    fn events(&mut self, actor: Actor, secs: i64, events: Vec<Event>) {
        let recs = EventRecord::stamp(
            "run-7f3a",
            self.view.state.last_seq,
            events,
            &actor,
            None,
            t0() + chrono::Duration::seconds(secs),
        );
        for r in recs {
            self.view.event(&r);
            self.fan.publish(Published::Event {
                record: r,
                anchor: anchor(),
            });
        }
    }
    fn sample(&mut self, s: Sample) {
        self.fan.publish(Published::Sample(s));
    }
}

fn setup(requests: Option<tokio::sync::mpsc::Sender<Request>>) -> RelaySetup {
    RelaySetup {
        run: "run-7f3a".into(),
        target: "orders-prod".into(),
        channel: "C1".into(),
        plan: small_plan(),
        links: Default::default(),
        people: Default::default(),
        coalesce: Duration::from_secs(5),
        requests,
    }
}

/// Requests, approves, starts, and ticks progress every second for `secs`.
async fn drive(d: &mut Driver, secs: u64, plan: &cutover::model::Plan) {
    d.events(
        Actor::local("bob"),
        0,
        vec![
            Event::Created {
                spec: spec_of(plan),
            },
            Event::Requested {
                person: "bob".into(),
                name: "Bob".into(),
                surface: cutover::policy::Surface::Console,
            },
        ],
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    d.events(
        Actor::slack("T1", "U2"),
        1,
        vec![
            Event::Approved {
                approval: approval(plan, "alice", 1),
            },
            Event::ApprovalSatisfied {
                approvers: vec!["alice".into()],
            },
            Event::Started {
                person: "bob".into(),
            },
        ],
    );
    for i in 0..secs {
        tokio::time::sleep(Duration::from_secs(1)).await;
        d.sample(progress_sample(
            i * 1000,
            secs * 1000,
            i as i64 + 2,
            ExecPhase::Copying,
        ));
    }
}

type Noted = Arc<Mutex<Vec<(String, String, String)>>>;

/// A stand-in for the run core's request channel: records `NoteMessage`
/// commands (which must come from cutover itself) and accepts them.
fn fake_core() -> (tokio::sync::mpsc::Sender<Request>, Noted) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Request>(16);
    let noted: Noted = Arc::default();
    let n2 = noted.clone();
    tokio::spawn(async move {
        while let Some(r) = rx.recv().await {
            if let Request::Command(env, reply) = r {
                assert_eq!(env.actor, Actor::System);
                if let Command::NoteMessage { key, channel, id } = env.command {
                    n2.lock().unwrap().push((key, channel, id));
                }
                let _ = reply.send(Reply::Accepted { seqs: vec![] });
            }
        }
    });
    (tx, noted)
}

fn updates_per_window(calls: &[(Instant, String, Value)], ts: &str, window: Duration) -> usize {
    let ups: Vec<Instant> = calls
        .iter()
        .filter(|(_, m, a)| m == "chat.update" && a["ts"] == ts)
        .map(|c| c.0)
        .collect();
    ups.windows(2)
        .map(|w| w[1] - w[0])
        .filter(|g| *g < window)
        .count()
}

#[tokio::test(start_paused = true)]
async fn progress_edits_are_coalesced_and_the_final_state_is_delivered() {
    let plan = small_plan();
    let fake = Arc::new(Fake::default());
    let mut d = Driver {
        fan: Fanout::default(),
        view: RunView::default(),
    };
    let sub = d.fan.subscribe(4096);
    let relay = Relay::new(setup(None), fake.clone(), RunView::default());
    let task = tokio::spawn(relay.run(sub));
    drive(&mut d, 120, &plan).await;
    d.events(Actor::System, 130, vec![Event::Succeeded]);
    d.fan.close();
    let report = tokio::time::timeout(Duration::from_secs(600), task)
        .await
        .unwrap()
        .unwrap();
    assert!(
        report.final_delivered && report.fatal.is_none(),
        "{report:?}"
    );
    let calls = fake.calls.lock().unwrap().clone();
    let progress_ts = report.ids.progress.clone().unwrap();
    let edits = calls
        .iter()
        .filter(|(_, m, a)| m == "chat.update" && a["ts"] == progress_ts)
        .count();
    // 120 one-second ticks: at most one edit per 5 s, but the message keeps up.
    assert!((15..=26).contains(&edits), "{edits} progress edits");
    assert_eq!(
        updates_per_window(&calls, &progress_ts, Duration::from_secs(5)),
        0
    );
    // Threaded under the pre-flight; the summary is broadcast.
    let pre = report.ids.preflight.clone().unwrap();
    let posts: Vec<&Value> = calls
        .iter()
        .filter(|(_, m, _)| m == "chat.postMessage")
        .map(|c| &c.2)
        .collect();
    assert!(posts[0].get("thread_ts").is_none());
    assert!(posts[1..].iter().all(|p| p["thread_ts"] == pre));
    assert!(
        posts.iter().any(|p| p["reply_broadcast"] == true
            && p["text"].as_str().unwrap_or("").contains("completed"))
    );
    // The last edit of each message shows the final state.
    let last_pre = calls
        .iter()
        .rev()
        .find(|(_, m, a)| m == "chat.update" && a["ts"] == pre)
        .unwrap();
    assert!(
        last_pre.2["text"]
            .as_str()
            .unwrap_or("")
            .contains("completed"),
        "{}",
        last_pre.2["text"]
    );
}

#[tokio::test(start_paused = true)]
async fn after_a_429_only_the_newest_state_is_sent_and_an_outage_does_not_lose_the_end() {
    let plan = small_plan();
    let fake = Arc::new(Fake::default());
    let (core_tx, noted) = fake_core();
    let mut d = Driver {
        fan: Fanout::default(),
        view: RunView::default(),
    };
    let sub = d.fan.subscribe(4096);
    let relay = Relay::new(setup(Some(core_tx)), fake.clone(), RunView::default());
    let task = tokio::spawn(relay.run(sub));
    drive(&mut d, 20, &plan).await;
    let start = Instant::now();
    *fake.outage.lock().unwrap() = Some((start + Duration::from_secs(30), true));
    for i in 20..60u64 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        d.sample(progress_sample(
            i * 1000,
            100_000,
            i as i64 + 2,
            ExecPhase::Copying,
        ));
    }
    let calls = fake.calls.lock().unwrap().clone();
    let during: Vec<_> = calls
        .iter()
        .filter(|c| c.0 >= start && c.0 < start + Duration::from_secs(30))
        .collect();
    assert!(
        during.len() <= 2,
        "sent while rate limited: {}",
        during.len()
    );
    let after = calls
        .iter()
        .find(|c| c.0 >= start + Duration::from_secs(30) && c.1 == "chat.update")
        .unwrap();
    assert!(after.0 < start + Duration::from_secs(31), "resumed late");
    // Then a long 503 outage across the end of the run.
    *fake.outage.lock().unwrap() = Some((Instant::now() + Duration::from_secs(300), false));
    d.events(
        Actor::System,
        70,
        vec![Event::Failed {
            error: "duplicate key".into(),
            leftovers: vec![],
        }],
    );
    d.fan.close();
    let report = tokio::time::timeout(Duration::from_secs(3600), task)
        .await
        .unwrap()
        .unwrap();
    assert!(report.final_delivered, "{report:?}");
    let calls = fake.calls.lock().unwrap().clone();
    let newest = calls
        .iter()
        .rev()
        .find(|c| {
            c.1 == "chat.update"
                && Some(c.2["ts"].as_str().unwrap_or("").to_string()) == report.ids.progress
        })
        .unwrap();
    assert!(newest.2["text"].as_str().unwrap_or("").contains("failed"));
    // Backoff, not a hot loop, during the 300 s outage.
    assert!(calls.len() < 120, "{} calls", calls.len());
    // Every new message's ts went to the run core as a system command.
    let noted = noted.lock().unwrap().clone();
    let mut state = RunState::default();
    let recs = EventRecord::stamp(
        "run-7f3a",
        0,
        noted
            .iter()
            .map(|(key, channel, id)| Event::MessagePosted {
                key: key.clone(),
                channel: channel.clone(),
                id: id.clone(),
            })
            .collect(),
        &Actor::System,
        None,
        t0(),
    );
    for r in &recs {
        state = state.apply(r);
    }
    assert_eq!(
        MessageIds::from_state(&state, "C1"),
        report.ids,
        "{noted:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_restarted_relay_edits_the_same_messages() {
    let plan = small_plan();
    let fake = Arc::new(Fake::default());
    let mut d = Driver {
        fan: Fanout::default(),
        view: RunView::default(),
    };
    // The trail so far, as a restarted supervisor replays it.
    d.events(
        Actor::local("bob"),
        0,
        vec![
            Event::Created {
                spec: spec_of(&plan),
            },
            Event::Requested {
                person: "bob".into(),
                name: "Bob".into(),
                surface: cutover::policy::Surface::Console,
            },
        ],
    );
    d.events(
        Actor::System,
        1,
        vec![
            Event::MessagePosted {
                key: keys::PREFLIGHT.into(),
                channel: "C1".into(),
                id: "1700000000.000001".into(),
            },
            Event::MessagePosted {
                key: keys::PROGRESS.into(),
                channel: "C1".into(),
                id: "1700000000.000002".into(),
            },
        ],
    );
    let rebuilt = RunView::from_state(d.view.state.clone());
    let sub = d.fan.subscribe(4096);
    let task = tokio::spawn(Relay::new(setup(None), fake.clone(), rebuilt).run(sub));
    tokio::time::sleep(Duration::from_secs(1)).await;
    d.events(
        Actor::slack("T1", "U2"),
        2,
        vec![
            Event::Approved {
                approval: approval(&plan, "alice", 2),
            },
            Event::ApprovalSatisfied {
                approvers: vec!["alice".into()],
            },
            Event::Started {
                person: "bob".into(),
            },
        ],
    );
    for i in 0..3u64 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        d.sample(progress_sample(
            i * 1000,
            3000,
            i as i64 + 3,
            ExecPhase::Copying,
        ));
    }
    d.events(Actor::System, 10, vec![Event::Succeeded]);
    d.fan.close();
    let report = task.await.unwrap();
    let calls = fake.calls.lock().unwrap().clone();
    let posts: Vec<_> = calls.iter().filter(|c| c.1 == "chat.postMessage").collect();
    assert!(
        posts
            .iter()
            .all(|p| p.2["thread_ts"] == "1700000000.000001"),
        "no new pre-flight"
    );
    assert!(
        calls
            .iter()
            .any(|c| c.1 == "chat.update" && c.2["ts"] == "1700000000.000002"),
        "the recorded progress message is edited"
    );
    assert_eq!(report.ids.progress.as_deref(), Some("1700000000.000002"));
}

#[tokio::test(start_paused = true)]
async fn without_a_token_every_payload_goes_to_the_transcript() {
    let plan = small_plan();
    let dir = tempfile::tempdir().unwrap();
    let api = Arc::new(Transcript::in_run_dir(dir.path()));
    let mut d = Driver {
        fan: Fanout::default(),
        view: RunView::default(),
    };
    let sub = d.fan.subscribe(4096);
    let task = tokio::spawn(Relay::new(setup(None), api, RunView::default()).run(sub));
    drive(&mut d, 10, &plan).await;
    d.events(Actor::System, 20, vec![Event::Succeeded]);
    d.fan.close();
    assert!(task.await.unwrap().final_delivered);
    let text = std::fs::read_to_string(dir.path().join(TRANSCRIPT_FILE)).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 4);
    assert_eq!(lines[0]["method"], "chat.postMessage");
    assert!(lines.iter().any(|l| l["args"]["reply_broadcast"] == true));
}
