//! The relay against the Slack double when Slack says no: a rejected
//! payload is sent once, then as plain text, and recorded as a run event
//! (no flood); a configuration error stops the relay after one call; and
//! hostile text typed by people (names, reasons, SQL) reaches the channel
//! escaped, bounded and exact, in every message kind.

mod slack_common;
mod slack_double;

use cutover::audit::Anchor;
use cutover::exec::{ExecPhase, Leftover};
use cutover::policy::{Actor, Surface};
use cutover::run::core::{Reply, Request};
use cutover::run::fanout::{Fanout, Published};
use cutover::run::{Command, Event, EventRecord};
use cutover::slack::api::HttpApi;
use cutover::slack::config::Secret;
use cutover::slack::relay::{Relay, RelayReport, RelaySetup};
use cutover::slack::view::RunView;
use serde_json::Value;
use slack_common::*;
use slack_double::{BOT, CHANNEL, Double};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Problems = Arc<Mutex<Vec<(String, String)>>>;

/// The run core's request channel: accepts system commands, keeps the
/// `NoteSlackProblem` ones.
fn fake_core() -> (tokio::sync::mpsc::Sender<Request>, Problems) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Request>(64);
    let problems: Problems = Arc::default();
    let p2 = problems.clone();
    tokio::spawn(async move {
        while let Some(r) = rx.recv().await {
            if let Request::Command(env, reply) = r {
                if let Command::NoteSlackProblem { code, detail } = env.command {
                    p2.lock().unwrap().push((code, detail));
                }
                let _ = reply.send(Reply::Accepted { seqs: vec![] });
            }
        }
    });
    (tx, problems)
}

struct Run {
    fan: Fanout,
    seq: u64,
}

impl Run {
    fn events(&mut self, actor: Actor, secs: i64, events: Vec<Event>) {
        for r in EventRecord::stamp(
            "run-7f3a",
            self.seq,
            events,
            &actor,
            None,
            t0() + chrono::Duration::seconds(secs),
        ) {
            self.seq = r.seq;
            self.fan.publish(Published::Event {
                record: r,
                anchor: Anchor {
                    records: 0,
                    tag: String::new(),
                },
            });
        }
    }
}

fn setup(plan: cutover::model::Plan, core: tokio::sync::mpsc::Sender<Request>) -> RelaySetup {
    RelaySetup {
        run: "run-7f3a".into(),
        target: "orders-prod".into(),
        channel: CHANNEL.into(),
        plan,
        links: Default::default(),
        people: [("alice".to_string(), "U0DBA0001".to_string())].into(),
        coalesce: Duration::from_millis(300),
        requests: Some(core),
    }
}

async fn finish(task: tokio::task::JoinHandle<RelayReport>) -> RelayReport {
    tokio::time::timeout(Duration::from_secs(120), task)
        .await
        .expect("relay finished")
        .expect("relay task")
}

/// Created → requested → approved → started → progress → succeeded.
fn happy_run(run: &mut Run, plan: &cutover::model::Plan) {
    run.events(
        Actor::local("bob"),
        0,
        vec![
            Event::Created {
                spec: spec_of(plan),
            },
            Event::Requested {
                person: "bob".into(),
                name: "Bob".into(),
                surface: Surface::Console,
            },
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
    run.fan.publish(Published::Sample(progress_sample(
        5_000,
        10_000,
        3,
        ExecPhase::Copying,
    )));
    run.events(Actor::System, 10, vec![Event::Succeeded]);
    run.fan.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_post_is_sent_once_then_as_plain_text_and_recorded() {
    let double = Double::start().await;
    double.reject_blocks(Some("invalid_blocks"));
    let api = Arc::new(HttpApi::new(&double.base, Some(Secret::new(BOT)), None));
    let (core, problems) = fake_core();
    let plan = small_plan();
    let mut run = Run {
        fan: Fanout::default(),
        seq: 0,
    };
    let sub = run.fan.subscribe(4096);
    let relay = Relay::new(setup(plan.clone(), core), api, RunView::default());
    let task = tokio::spawn(relay.run(sub));
    happy_run(&mut run, &plan);
    let report = finish(task).await;
    assert!(report.final_delivered, "{report:?}");

    let calls = double.calls();
    let refused: Vec<_> = calls.iter().filter(|c| c.error.is_some()).collect();
    // One refusal per message (pre-flight, progress, completion), never two.
    assert_eq!(
        refused
            .iter()
            .filter(|c| c.error.as_deref() == Some("invalid_blocks"))
            .count(),
        3,
        "{:#?}",
        calls
            .iter()
            .map(|c| (&c.method, &c.error))
            .collect::<Vec<_>>()
    );
    // No payload Slack refused is ever sent again.
    for r in &refused {
        let same = calls.iter().filter(|c| c.args == r.args).count();
        assert_eq!(same, 1, "resent: {}", r.args);
    }
    // The pre-flight: one refused post, one plain-text post saying why.
    let top: Vec<_> = calls
        .iter()
        .filter(|c| c.method == "chat.postMessage" && c.args.get("thread_ts").is_none())
        .collect();
    assert_eq!(top.len(), 2, "top-level posts");
    assert_eq!(top[0].error.as_deref(), Some("invalid_blocks"));
    assert!(top[1].error.is_none());
    let text = top[1].args["text"].as_str().unwrap_or("");
    assert!(
        text.contains("rejected") && text.contains("invalid_blocks"),
        "{text}"
    );
    assert!(top[1].args.get("blocks").is_none());
    // Each rejection is a run event (the console shows it), naming the message.
    let problems = problems.lock().unwrap().clone();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems.iter().all(|(c, _)| c == "invalid_blocks"));
    assert!(problems[0].1.contains("pre-flight") && problems[0].1.contains("plain text"));
    assert_eq!(report.rejected.len(), 3);
    assert!(report.fatal.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_stops_the_relay_after_one_call_and_says_so() {
    let double = Double::start().await;
    let api = Arc::new(HttpApi::new(
        &double.base,
        Some(Secret::new("xoxb-not-a-known-token")),
        None,
    ));
    let (core, problems) = fake_core();
    let plan = small_plan();
    let mut run = Run {
        fan: Fanout::default(),
        seq: 0,
    };
    let sub = run.fan.subscribe(4096);
    let relay = Relay::new(setup(plan.clone(), core), api, RunView::default());
    let task = tokio::spawn(relay.run(sub));
    happy_run(&mut run, &plan);
    let report = finish(task).await;
    assert!(
        report
            .fatal
            .as_deref()
            .unwrap_or("")
            .contains("invalid_auth")
    );
    assert_eq!(double.calls().len(), 1);
    let problems = problems.lock().unwrap().clone();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].0, "invalid_auth");
    assert!(problems[0].1.contains("stopped"));
}

const HOSTILE: &str = "<!channel> <https://evil.example/login|click here> & <@U0DBA0001>";

/// Every string Slack parses as markup (rich text is literal: its text is
/// never parsed, so it is checked separately).
fn all_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) if m.get("type").and_then(Value::as_str) == Some("rich_text") => {}
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| all_strings(x, out)),
        Value::Object(m) => m.values().for_each(|x| all_strings(x, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_reasons_and_sql_reach_the_channel_escaped_bounded_and_exact() {
    let double = Double::start().await;
    let api = Arc::new(HttpApi::new(&double.base, Some(Secret::new(BOT)), None));
    let (core, problems) = fake_core();
    let sql = "UPDATE orders SET note = '```<!channel>``` & <b>';";
    let plan = plan_of(&[("V42__notes.sql".to_string(), sql.to_string())]);
    let mut run = Run {
        fan: Fanout::default(),
        seq: 0,
    };
    let sub = run.fan.subscribe(4096);
    let relay = Relay::new(setup(plan.clone(), core), api, RunView::default());
    let task = tokio::spawn(relay.run(sub));
    let long: String = format!("{HOSTILE} ").repeat(10_000 / (HOSTILE.len() + 1) + 1);
    let long: String = long.chars().take(10_000).collect();
    run.events(
        Actor::local("bob"),
        0,
        vec![
            Event::Created {
                spec: spec_of(&plan),
            },
            Event::Requested {
                person: HOSTILE.into(),
                name: HOSTILE.into(),
                surface: Surface::Console,
            },
            Event::Approved {
                approval: approval(&plan, "alice", 1),
            },
            Event::ApprovalSatisfied {
                approvers: vec!["alice".into()],
            },
            Event::Started {
                person: HOSTILE.into(),
            },
        ],
    );
    run.fan
        .publish(Published::Sample(lag_sample(HOSTILE, Some(0.5), 3)));
    run.events(
        Actor::System,
        4,
        vec![Event::Throttled {
            reason: HOSTILE.into(),
        }],
    );
    run.events(
        Actor::local("x"),
        5,
        vec![
            Event::PauseRequested {
                person: HOSTILE.into(),
            },
            Event::WindowClosed {
                reason: long.clone(),
                action: cutover::policy::config::CloseAction::Warn,
            },
            Event::AbortRequested {
                person: "alice".into(),
                reason: long.clone(),
            },
        ],
    );
    run.events(
        Actor::System,
        6,
        vec![Event::Aborted {
            reason: long.clone(),
            leftovers: vec![Leftover {
                kind: "table".into(),
                name: HOSTILE.into(),
                cleanup: Some(format!("DROP TABLE `{HOSTILE}`;")),
            }],
        }],
    );
    run.fan.close();
    let report = finish(task).await;
    assert!(report.final_delivered, "{report:?}");
    let calls = double.calls();
    let errors: Vec<_> = calls
        .iter()
        .filter(|c| c.error.is_some() && c.error.as_deref() != Some("ratelimited"))
        .map(|c| (&c.method, &c.error))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert!(problems.lock().unwrap().is_empty());
    let mut strings = Vec::new();
    let mut preformatted = Vec::new();
    let messages = double.messages();
    for m in messages.iter().filter(|m| m.ours) {
        all_strings(&m.blocks, &mut strings);
        strings.push(m.text.clone());
        for b in m.blocks.as_array().into_iter().flatten() {
            for e in b["elements"].as_array().into_iter().flatten() {
                if e["type"] == "rich_text_preformatted" {
                    preformatted.push(e["elements"][0]["text"].as_str().unwrap_or("").to_string());
                }
            }
        }
    }
    // Nothing typed by a person becomes markup: no channel ping, no fake link,
    // no forged mention (the one real mention is alice's, from configuration).
    for s in &strings {
        for bad in ["<!channel>", "<https://evil", "& <"] {
            assert!(!s.contains(bad), "unescaped {bad:?} in {s:?}");
        }
    }
    let joined = strings.join("\n");
    assert!(
        joined.contains("&lt;!channel&gt; &lt;https://evil.example/login|click here&gt; &amp;")
    );
    // The 10,000-character reason: bounded, cut after escaping, whole entities only.
    let abort = messages
        .iter()
        .find(|m| m.text.starts_with("🛑 Abort requested by"))
        .expect("abort milestone");
    let t = abort.blocks[0]["text"]["text"].as_str().unwrap_or("");
    assert!(t.contains("<@U0DBA0001>: &lt;!channel&gt;"), "{t}");
    assert!(t.ends_with('…') && t.chars().count() <= 3000, "{}", t.len());
    let before = t.trim_end_matches('…');
    assert!(!before.ends_with(['&', '<']) && !before.rsplit('&').next().unwrap_or(";").is_empty());
    // The completion keeps its reason and what was left behind.
    let done = messages
        .iter()
        .find(|m| m.broadcast)
        .expect("completion summary");
    let done_text: Vec<String> = {
        let mut v = Vec::new();
        all_strings(&done.blocks, &mut v);
        v
    };
    assert!(
        done_text
            .iter()
            .any(|s| s.starts_with("*Reason:* &lt;!channel&gt;"))
    );
    assert!(done_text.iter().any(|s| s.contains("*Left behind*")));
    assert!(done_text.iter().all(|s| s.chars().count() <= 3000));
    // The SQL shows exactly as it runs (no ``` → ''' substitution).
    let statement = sql.trim_end_matches(';');
    assert!(
        preformatted.iter().any(|p| p == statement),
        "{preformatted:?}"
    );
}

fn cutover(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_cutover"));
    c.current_dir(dir)
        .args(args)
        .env_remove("SLACK_BOT_TOKEN")
        .env_remove("SLACK_APP_TOKEN")
        .env_remove("SLACK_SIGNING_SECRET");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("run cutover");
    (
        o.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[test]
fn slack_check_reports_only_what_it_checked_and_names_the_host_it_cannot_reach() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        dir.path().join("cutover.toml"),
        format!("[slack]\nchannel = \"C0DBOPS01\"\napi_base = \"http://127.0.0.1:{port}/api\"\n"),
    )
    .unwrap();
    let cfg = dir.path().join("cutover.toml");
    let cfg = cfg.to_str().unwrap();
    // No token: nothing is claimed ok.
    let (code, out) = cutover(dir.path(), &["slack", "check", "--config", cfg], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(!out.contains("ok   scope"), "{out}");
    assert!(out.contains("skip scope usergroups:read"), "{out}");
    // Unreachable API: the host and the cause, and nothing claimed ok.
    let (code, out) = cutover(
        dir.path(),
        &["slack", "check", "--config", cfg],
        &[("SLACK_BOT_TOKEN", BOT)],
    );
    assert_eq!(code, 1, "{out}");
    assert!(!out.contains("ok   scope"), "{out}");
    assert!(
        out.contains(&format!("cannot reach 127.0.0.1:{port}")) && out.contains("refused"),
        "{out}"
    );
}

#[test]
fn slack_manifest_accepts_only_https_request_urls_and_quotes_them() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = cutover(
        dir.path(),
        &[
            "slack",
            "manifest",
            "--request-url",
            "https://relay.example/slack?x=1#y",
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("request_url: \"https://relay.example/slack?x=1#y\""),
        "{out}"
    );
    for bad in [
        "http://relay.example/slack",
        "https://a.example/x\n  token_rotation_enabled: true",
    ] {
        let (code, out) = cutover(
            dir.path(),
            &["slack", "manifest", "--request-url", bad],
            &[],
        );
        assert_eq!(code, 2, "{bad}: {out}");
        assert!(out.contains("--request-url"), "{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modal_opens_within_the_trigger_window_on_a_cold_cache_and_warm_caches_answer_at_once() {
    use cutover::slack::blocks::ActionValue;
    use cutover::slack::interact::{Interactions, RunHandle};
    use slack_double::Fault;
    let double = Double::start().await;
    // Slack is slow today: 2 s for each lookup (two of them would expire the trigger).
    for _ in 0..4 {
        double.inject("usergroups.users.list", Fault::Slow(Duration::from_secs(2)));
        double.inject("users.info", Fault::Slow(Duration::from_secs(2)));
    }
    let api = Arc::new(HttpApi::new(&double.base, Some(Secret::new(BOT)), None));
    let h = Arc::new(Interactions::new(
        api,
        vec!["S0DBAS001".into()],
        Duration::from_secs(300),
    ));
    let (core, _) = fake_core();
    let plan = small_plan();
    let view = stage(&plan, "pending");
    let value = ActionValue {
        run: "run-7f3a".into(),
        digest: plan.plan_digest.clone(),
        rev: view.rev,
    };
    let (_vtx, vrx) = tokio::sync::watch::channel(view);
    h.register(
        "run-7f3a",
        RunHandle {
            requests: core,
            view: vrx,
            target: "orders-prod".into(),
            channel: CHANNEL.into(),
        },
    );
    // Cold cache: the reject form opens first; the checks happen at submission.
    let click = double.block_actions("U0DBA0001", "1700000000.000100", "reject", &value.encode());
    h.process(&click, None).await;
    let opens = double.calls_of("views.open");
    assert_eq!(opens.len(), 1);
    assert_eq!(opens[0].error, None, "the trigger expired");
    let calls = double.calls();
    let open_at = calls.iter().position(|c| c.method == "views.open").unwrap();
    assert!(
        calls[..open_at]
            .iter()
            .all(|c| c.method != "users.info" && c.method != "usergroups.users.list"),
        "the form waited on lookups"
    );
    // Warmed at run start (here: by hand), in the background.
    h.spawn_warm("run-7f3a");
    double
        .wait_for("warm caches", Duration::from_secs(30), |_| {
            h.warm_for("U0DBA0001") && h.warm_for("U0GUEST01")
        })
        .await;
    let lookups =
        |d: &Double| d.calls_of("users.info").len() + d.calls_of("usergroups.users.list").len();
    let before = lookups(&double);
    // A guest in the DBA group clicks Reject: refused from the cache, no form, no lookup.
    let guest = double.block_actions("U0GUEST01", "1700000000.000100", "reject", &value.encode());
    h.process(&guest, None).await;
    assert_eq!(double.calls_of("views.open").len(), 1);
    assert_eq!(lookups(&double), before);
    let log = h.log.lock().unwrap().clone();
    assert!(
        log.last().is_some_and(|(_, w)| w.contains("guest")),
        "{log:?}"
    );
    // Alice again: checked from the cache, the form opens.
    let again = double.block_actions("U0DBA0001", "1700000000.000100", "reject", &value.encode());
    h.process(&again, None).await;
    let opens = double.calls_of("views.open");
    assert_eq!(opens.len(), 2);
    assert_eq!(opens[1].error, None);
    assert_eq!(lookups(&double), before);
}

#[test]
fn the_demo_shows_what_the_channel_would_have_seen() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().to_str().unwrap();
    let (code, out) = cutover(
        dir.path(),
        &["demo", "--no-tui", "--speed", "100"],
        &[("TMPDIR", tmp)],
    );
    assert_eq!(code, 0, "{out}");
    let kept = dir.path().join("cutover-demo-slack-transcript.jsonl");
    assert!(
        out.contains(&format!("transcript at {}", kept.display())),
        "{out}"
    );
    // Pre-flight (final state, with the plan-level findings), the progress
    // reply and the broadcast summary, from the relay's own transcript.
    for needle in [
        "# ✅ v2…v3 → demo-prod · completed in",
        "statements-after-exclusive-lock",
        "✅ Approved by alice",
        "*Rows*: 48,000,000 / 48,000,000",
        "(also sent to the channel)",
        "🔀 Cut-over requested by alice",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    // And again later, from the kept file.
    let (code, again) = cutover(dir.path(), &["slack", "transcript"], &[("TMPDIR", tmp)]);
    assert_eq!(code, 0, "{again}");
    assert!(again.contains("statements-after-exclusive-lock"), "{again}");
    let (code, preview) = cutover(
        dir.path(),
        &["slack", "preview", "--demo"],
        &[("TMPDIR", tmp)],
    );
    assert_eq!(code, 0, "{preview}");
    assert_eq!(preview, again);
}

#[test]
fn the_console_shows_a_slack_problem_as_a_problem() {
    use cutover::tui::model::LogKind;
    let mut console = cutover::tui::Console::default();
    let plan = small_plan();
    for r in EventRecord::stamp(
        "run-7f3a",
        0,
        vec![
            Event::Created {
                spec: spec_of(&plan),
            },
            Event::SlackProblem {
                code: "invalid_blocks".into(),
                detail: "Slack rejected the pre-flight message: chat.postMessage invalid_blocks; sent as plain text instead".into(),
            },
        ],
        &Actor::System,
        None,
        t0(),
    ) {
        console.event(&r);
    }
    let last = console.log.back().expect("a log line");
    assert_eq!(last.kind, LogKind::Problem);
    assert!(
        last.text.contains("invalid_blocks") && last.text.contains("plain text"),
        "{}",
        last.text
    );
}
