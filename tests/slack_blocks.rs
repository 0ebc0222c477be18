//! Every Block Kit payload the relay can produce passes Slack's rules as
//! checked by `validate_blocks.py` (slack_sdk), for a small plan and a
//! 200-statement plan; and the content says what the issue asks.

mod slack_common;

use cutover::slack::blocks::{self, Action, ActionValue, Decision, RenderCtx};
use cutover::slack::config::LinkTemplates;
use serde_json::Value;
use slack_common::*;
use std::collections::BTreeMap;

fn links() -> LinkTemplates {
    LinkTemplates {
        diff: Some("https://git.example/pr/{version}".into()),
        plan: Some("https://ci.example/plan/{digest}".into()),
        statement: None,
    }
}

fn all_payloads(plan: &cutover::model::Plan) -> Vec<(String, Value, bool)> {
    let l = links();
    let people: BTreeMap<String, String> = [("alice".to_string(), "U2".to_string())].into();
    let ctx = RenderCtx {
        run: "run-7f3a",
        target: "orders-prod",
        links: &l,
        people: &people,
    };
    let mut out = Vec::new();
    for (name, v) in stages(plan) {
        out.push((
            format!("preflight/{name}"),
            blocks::preflight(plan, &v, &ctx).body("C1"),
            false,
        ));
        out.push((
            format!("progress/{name}"),
            blocks::progress(&v, &ctx).body("C1"),
            false,
        ));
        out.push((
            format!("completion/{name}"),
            blocks::completion(&v, &ctx).body("C1"),
            false,
        ));
    }
    let v = ActionValue {
        run: "run-7f3a".into(),
        digest: "e".repeat(64),
        rev: 3,
    };
    out.push((
        "reject modal".into(),
        blocks::reject_modal(&v, "orders-prod"),
        true,
    ));
    out.push((
        "abort modal".into(),
        blocks::abort_reason_modal(&v, "orders-prod"),
        true,
    ));
    for a in [Action::Abort, Action::CutOver] {
        out.push((
            format!("typed {a:?}"),
            blocks::typed_table_modal(a, &v, "orders-prod", &["orders".into()]),
            true,
        ));
    }
    out.push((
        "milestone".into(),
        blocks::milestone("Paused by <@U2> & co").body("C1"),
        false,
    ));
    out
}

fn check_all(plan: &cutover::model::Plan) {
    let script = validator();
    let payloads = all_payloads(plan);
    let input: Vec<(Value, bool)> = payloads.iter().map(|(_, p, v)| (p.clone(), *v)).collect();
    let failures: Vec<String> = validate_many(&script, &input)
        .into_iter()
        .zip(&payloads)
        .filter_map(|(r, (n, _, _))| r.err().map(|e| format!("{n}: {e}")))
        .collect();
    assert!(payloads.len() > 40);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_payload_of_a_small_plan_is_valid_block_kit() {
    check_all(&small_plan());
}

#[test]
fn every_payload_of_a_200_statement_plan_is_valid_block_kit() {
    let plan = big_plan();
    let n: usize = plan.migrations.iter().map(|m| m.statements.len()).sum();
    assert_eq!(n, 200);
    check_all(&plan);
}

#[test]
fn the_validator_is_not_a_rubber_stamp() {
    let script = validator();
    let blocks: Vec<Value> = (0..51)
        .map(|i| serde_json::json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("s{i}")}}))
        .collect();
    let r = validate_many(
        &script,
        &[
            (serde_json::json!({"text": "x", "blocks": blocks}), false),
            (
                serde_json::json!({"text": "x", "blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}]}),
                false,
            ),
            (serde_json::json!({"text": "x", "blocks": []}), false),
        ],
    );
    assert!(r[0].is_err() && r[1].is_err() && r[2].is_ok(), "{r:?}");
}

fn texts(v: &Value) -> String {
    v.to_string()
}

#[test]
fn preflight_names_version_target_risk_and_guards_approve() {
    let plan = small_plan();
    let l = links();
    let people = BTreeMap::new();
    let ctx = RenderCtx {
        run: "run-7f3a",
        target: "orders-prod",
        links: &l,
        people: &people,
    };
    let st = stages(&plan);
    let pending = &st
        .iter()
        .find(|(n, _)| *n == "pending")
        .map(|x| x.1.clone())
        .unwrap_or_default();
    let m = blocks::preflight(&plan, pending, &ctx);
    let header = m.blocks[0]["text"]["text"].as_str().unwrap_or_default();
    assert!(
        header.contains("v41…v42") && header.contains("orders-prod") && header.contains("HIGH"),
        "{header}"
    );
    assert!(m.text.contains("approval needed"));
    let all = texts(&Value::Array(m.blocks.clone()));
    assert!(all.contains("https://git.example/pr/41") && all.contains("https://ci.example/plan/"));
    // Long SQL is truncated with a link.
    assert!(all.contains("Full statement"), "{all}");
    let actions = m
        .blocks
        .iter()
        .find(|b| b["type"] == "actions")
        .cloned()
        .unwrap_or_default();
    let approve = &actions["elements"][0];
    assert_eq!(approve["action_id"], "approve");
    let confirm = approve["confirm"].to_string();
    assert!(
        confirm.contains("orders-prod") && confirm.contains("v41") && confirm.contains("HIGH"),
        "{confirm}"
    );
    let value = ActionValue::parse(approve["value"].as_str().unwrap_or_default())
        .unwrap_or_else(|| panic!("value"));
    assert_eq!(
        (value.run.as_str(), value.digest.as_str()),
        ("run-7f3a", plan.plan_digest.as_str())
    );
    assert_eq!(actions["elements"][1]["action_id"], "reject");
    // SQL is escaped for mrkdwn.
    assert!(!all.contains("<c>"));
}

#[test]
fn decisions_rewrite_the_preflight_without_buttons() {
    let plan = small_plan();
    let l = LinkTemplates::default();
    let people: BTreeMap<String, String> = [("alice".to_string(), "U2".to_string())].into();
    let ctx = RenderCtx {
        run: "run-7f3a",
        target: "orders-prod",
        links: &l,
        people: &people,
    };
    for (name, want) in [
        ("approved", "Approved by <@U2> at <!date^"),
        ("rejected", "Rejected — lock risk too high &lt;at peak&gt;"),
        ("expired", "Expired — re-request from the console"),
        ("succeeded", "Completed in 41m 55s"),
        ("aborted", "aborted by alice: peak"),
    ] {
        let v = stage(&plan, name);
        let m = blocks::preflight(&plan, &v, &ctx);
        let all = texts(&Value::Array(m.blocks.clone()));
        assert!(all.contains(want), "{name}: {all}");
        assert!(
            !m.blocks.iter().any(|b| b["type"] == "actions"),
            "{name} still has buttons"
        );
    }
    let v = stage(&plan, "voided");
    assert!(matches!(
        Decision::of(&v),
        Decision::Pending { voided: Some(_) }
    ));
    let all = texts(&Value::Array(blocks::preflight(&plan, &v, &ctx).blocks));
    assert!(all.contains("voided") && all.contains("checksums changed"));
}

#[test]
fn a_big_plan_is_summarised_riskiest_first() {
    let plan = big_plan();
    let l = links();
    let people = BTreeMap::new();
    let ctx = RenderCtx {
        run: "r",
        target: "t",
        links: &l,
        people: &people,
    };
    let v = stage(&plan, "pending");
    let m = blocks::preflight(&plan, &v, &ctx);
    assert!(m.blocks.len() <= 50);
    let all = texts(&Value::Array(m.blocks.clone()));
    assert!(all.contains("of 200 statements shown"), "{all}");
    assert!(
        m.blocks.iter().any(|b| b["type"] == "actions"),
        "buttons survive summarising"
    );
}

#[test]
fn progress_offers_only_the_controls_the_state_allows() {
    let plan = small_plan();
    let l = LinkTemplates::default();
    let people = BTreeMap::new();
    let ctx = RenderCtx {
        run: "run-7f3a",
        target: "orders-prod",
        links: &l,
        people: &people,
    };
    let ids = |name: &str| -> Vec<String> {
        let v = stage(&plan, name);
        blocks::progress(&v, &ctx)
            .blocks
            .iter()
            .filter(|b| b["type"] == "actions")
            .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
            .map(|e| e["action_id"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(ids("running"), ["pause", "abort"]);
    assert_eq!(ids("paused"), ["resume", "abort"]);
    assert_eq!(ids("ready"), ["cut_over", "abort"]);
    assert!(ids("succeeded").is_empty());
    let v = stage(&plan, "throttled");
    let all = texts(&Value::Array(blocks::progress(&v, &ctx).blocks));
    for want in [
        "40,000 / 1,000,000",
        "4.0%",
        "3,000 rows/s",
        "replica-1",
        "0.4s / 1.5s",
        "unknown",
        "lag=2.48s",
    ] {
        assert!(all.contains(want), "{want}: {all}");
    }
}

#[test]
fn completion_summarises_who_what_and_leftovers() {
    let plan = small_plan();
    let l = LinkTemplates::default();
    let people: BTreeMap<String, String> = [("alice".to_string(), "U2".to_string())].into();
    let ctx = RenderCtx {
        run: "run-7f3a",
        target: "orders-prod",
        links: &l,
        people: &people,
    };
    let v = stage(&plan, "aborted");
    let all = texts(&Value::Array(blocks::completion(&v, &ctx).blocks));
    for want in [
        "aborted",
        "36s",
        "40,000",
        "0.4s (",
        "<@U2>",
        "<@U2> paused",
        "<@U2> aborted",
        "_orders_gho",
        "DROP TABLE",
    ] {
        assert!(all.contains(want), "{want}: {all}");
    }
}

#[test]
fn plan_level_findings_show_and_an_unknown_part_makes_the_estimate_unknown() {
    let mut plan = small_plan();
    plan.migrations[0].findings.push(cutover::model::Finding {
        rule: "statements-after-exclusive-lock".into(),
        risk: cutover::model::Risk::High,
        reason: "3 statements run while <ACCESS EXCLUSIVE> is held".into(),
        safe_alternative: Some("split the migration".into()),
    });
    for m in &mut plan.migrations {
        for s in &mut m.statements {
            s.estimate = Some(cutover::model::Estimate {
                lock_seconds: 1.0,
                duration_seconds: 20.0,
            });
        }
    }
    let l = links();
    let people = BTreeMap::new();
    let ctx = RenderCtx {
        run: "run-7f3a",
        target: "orders-prod",
        links: &l,
        people: &people,
    };
    let view = stage(&plan, "pending");
    let all = texts(&Value::Array(blocks::preflight(&plan, &view, &ctx).blocks));
    assert!(all.contains("statements-after-exclusive-lock"), "{all}");
    assert!(
        all.contains("&lt;ACCESS EXCLUSIVE&gt; is held") && all.contains("split the migration")
    );
    assert!(all.contains("est. "), "{all}");
    assert!(!all.contains("est. unknown"), "{all}");
    // One statement without a size: the whole estimate is unknown.
    plan.migrations[0].statements[0].estimate = None;
    let all = texts(&Value::Array(blocks::preflight(&plan, &view, &ctx).blocks));
    assert!(all.contains("est. unknown"), "{all}");
}

#[test]
fn modals_escape_and_bound_what_people_typed() {
    let v = ActionValue {
        run: "run-<!channel>".into(),
        digest: "d".into(),
        rev: 1,
    };
    let tables = vec!["<!here>".to_string(); 400];
    for view in [
        blocks::reject_modal(&v, "<https://evil|x>"),
        blocks::abort_reason_modal(&v, "<https://evil|x>"),
        blocks::typed_table_modal(Action::Abort, &v, "<https://evil|x>", &tables),
    ] {
        let s = view["blocks"][0]["text"]["text"].as_str().unwrap_or("");
        assert!(!s.contains("<!") && !s.contains("<https"), "{s}");
        assert!(s.chars().count() <= 3000);
    }
}

#[test]
fn console_and_slack_show_the_same_progress_from_one_fold() {
    use cutover::exec::ExecPhase;
    use cutover::run::Sample;
    let plan = small_plan();
    let mut view = stage(&plan, "approved");
    let mut console = cutover::tui::Console::default();
    let feed = |view: &mut cutover::slack::view::RunView,
                console: &mut cutover::tui::Console,
                s: Sample| {
        view.sample(&s);
        console.apply(&cutover::supervisor::ServerMsg::Sample {
            sample: Box::new(s),
        });
    };
    // gh-ost's estimate exceeded: 1,045,000 of 1,000,000.
    for (i, rows) in [1_030_000u64, 1_040_000, 1_045_000].into_iter().enumerate() {
        let mut s = progress_sample(0, 1_000_000, 30 + i as i64 * 5, ExecPhase::Copying);
        if let Sample::Progress { status } = &mut s
            && let Some(p) = status.progress.as_mut()
        {
            p.rows_copied = rows;
        }
        feed(&mut view, &mut console, s);
    }
    assert_eq!(console.copy, view.copy);
    assert_eq!(console.rate, view.rate());
    assert_eq!(console.eta_seconds(), None);
    let l = links();
    let people = BTreeMap::new();
    let ctx = RenderCtx {
        run: "run-7f3a",
        target: "orders-prod",
        links: &l,
        people: &people,
    };
    let all = texts(&Value::Array(blocks::progress(&view, &ctx).blocks));
    assert!(all.contains("104.5% (past the estimated total)"), "{all}");
    assert!(all.contains("*ETA*\\nunknown"), "{all}");
    // Throttled: no rate, ETA unknown, on both.
    feed(
        &mut view,
        &mut console,
        progress_sample(
            1_045_000,
            2_000_000,
            50,
            ExecPhase::Throttled {
                reason: "lag".into(),
            },
        ),
    );
    assert_eq!((console.rate, view.rate()), (None, None));
    let all = texts(&Value::Array(blocks::progress(&view, &ctx).blocks));
    assert!(!all.contains("*Rate*"), "{all}");
}

/// A pause asked for while a native ALTER runs takes effect when the
/// statement ends: the executor says so, and Slack and the console both
/// show it (not a pause that looks ignored).
#[test]
fn a_pause_waiting_for_the_running_statement_says_so_on_both_surfaces() {
    use cutover::exec::ExecPhase;
    use cutover::policy::Actor;
    use cutover::run::{Event, Sample};
    let plan = small_plan();
    let mut view = stage(&plan, "running");
    let mut console = cutover::tui::Console::default();
    console.apply(&cutover::supervisor::ServerMsg::State {
        state: Box::new(view.state.clone()),
    });
    let at = view.state.last_seq;
    push(
        &mut view,
        Actor::local("bob"),
        40,
        vec![Event::PauseRequested {
            person: "bob".into(),
        }],
    );
    console.apply(&cutover::supervisor::ServerMsg::State {
        state: Box::new(view.state.clone()),
    });
    assert!(view.state.last_seq > at && view.state.pause_pending);
    let note = "V3__alter.sql:2: pause requested: takes effect when the running statement ends (it cannot stop midway; abort cancels it)";
    let mut s = progress_sample(500, 1_000, 41, ExecPhase::Copying);
    if let Sample::Progress { status } = &mut s
        && let Some(p) = status.progress.as_mut()
    {
        p.detail = Some(note.into());
    }
    view.sample(&s);
    console.apply(&cutover::supervisor::ServerMsg::Sample {
        sample: Box::new(s.clone()),
    });
    let l = links();
    let people = BTreeMap::new();
    let ctx = RenderCtx {
        run: "run-7f3a",
        target: "orders-prod",
        links: &l,
        people: &people,
    };
    let all = texts(&Value::Array(blocks::progress(&view, &ctx).blocks));
    assert!(
        all.contains("takes effect when the running statement ends"),
        "{all}"
    );
    assert_eq!(console.throttle_reason().as_deref(), Some(note));
    // In the console's log once, however often the status repeats.
    console.apply(&cutover::supervisor::ServerMsg::Sample {
        sample: Box::new(s),
    });
    let logged = console.log.iter().filter(|l| l.text == note).count();
    assert_eq!(logged, 1, "{:#?}", console.log);
    // The next statuses describe the step again: the note stays until it pauses.
    let mut s = progress_sample(600, 1_000, 43, ExecPhase::Copying);
    if let Sample::Progress { status } = &mut s
        && let Some(p) = status.progress.as_mut()
    {
        p.detail = Some("step 1/2: V3__alter.sql:2".into());
    }
    view.sample(&s);
    console.apply(&cutover::supervisor::ServerMsg::Sample {
        sample: Box::new(s),
    });
    let all = texts(&Value::Array(blocks::progress(&view, &ctx).blocks));
    assert!(
        all.contains("takes effect when the running statement ends"),
        "{all}"
    );
    assert_eq!(console.throttle_reason().as_deref(), Some(note));
}
