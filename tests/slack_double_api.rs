//! The Slack double is as strict as the spec, and the real client
//! (`HttpApi`) speaks to it correctly: tokens, content types, envelopes,
//! error codes with their handling, Block Kit refusals, injected 429/5xx,
//! trigger ids, single-use Socket Mode tickets and `hello`; and every payload
//! the renderer produces is accepted by the double's independent checker.

mod slack_common;
mod slack_double;

use cutover::slack::api::{ApiError, Handling, HttpApi, SlackApi};
use cutover::slack::blocks::{self, Action, ActionValue, RenderCtx};
use cutover::slack::config::Secret;
use futures_util::StreamExt;
use serde_json::{Value, json};
use slack_common::*;
use slack_double::{APP, BOT, CHANNEL, Double, Fault, OTHER_CHANNEL};
use std::collections::BTreeMap;
use std::time::Duration;

fn client(d: &Double, bot: &str, app: &str) -> HttpApi {
    HttpApi::new(&d.base, Some(Secret::new(bot)), Some(Secret::new(app)))
}

fn code(r: Result<Value, ApiError>) -> String {
    match r {
        Ok(v) => format!("ok {v}"),
        Err(e) => e
            .code()
            .map(str::to_string)
            .unwrap_or_else(|| e.to_string()),
    }
}

async fn raw(d: &Double, method: &str, headers: &[(&str, &str)], body: &str) -> Value {
    let mut req = reqwest::Client::new().post(format!("{}/{method}", d.base));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.body(body.to_string()).send().await.unwrap();
    assert_eq!(r.status(), 200, "logical errors are HTTP 200");
    r.json().await.unwrap()
}

#[tokio::test]
async fn tokens_and_content_types_are_checked_like_slack() {
    let d = Double::start().await;
    let api = client(&d, BOT, APP);
    let me = api.call("auth.test", json!({})).await.unwrap();
    assert_eq!(me["bot_id"], "B0RELAY01");
    // Unknown token, wrong token kinds.
    assert_eq!(
        code(
            client(&d, "xoxb-nope", APP)
                .call("auth.test", json!({}))
                .await
        ),
        "invalid_auth"
    );
    assert_eq!(
        code(
            client(&d, APP, APP)
                .call("chat.postMessage", json!({"channel": CHANNEL, "text": "x"}))
                .await
        ),
        "not_allowed_token_type"
    );
    assert_eq!(
        code(
            client(&d, BOT, BOT)
                .call("apps.connections.open", json!({}))
                .await
        ),
        "not_allowed_token_type"
    );
    let e = client(&d, "xoxb-nope", APP)
        .call("auth.test", json!({}))
        .await
        .unwrap_err();
    assert_eq!(e.handling(), Handling::Fatal);
    // No header: not_authed, also when the token is inside the JSON body.
    let v = raw(
        &d,
        "chat.postMessage",
        &[("Content-Type", "application/json; charset=utf-8")],
        &json!({"token": BOT, "channel": CHANNEL, "text": "x"}).to_string(),
    )
    .await;
    assert_eq!(v["error"], "not_authed");
    // JSON without a charset works, with Slack's warning.
    let v = raw(
        &d,
        "chat.postMessage",
        &[
            ("Authorization", &format!("Bearer {BOT}")),
            ("Content-Type", "application/json"),
        ],
        &json!({"channel": CHANNEL, "text": "x"}).to_string(),
    )
    .await;
    assert_eq!(v["ok"], true);
    assert_eq!(v["warning"], "missing_charset");
    // Read methods do not read JSON bodies: the argument is simply missing.
    let v = raw(
        &d,
        "users.info",
        &[
            ("Authorization", &format!("Bearer {BOT}")),
            ("Content-Type", "application/json; charset=utf-8"),
        ],
        &json!({"user": "U0DBA0001"}).to_string(),
    )
    .await;
    assert_eq!(v["error"], "user_not_found");
    // The client sends reads as forms, writes as JSON with a charset.
    let u = api
        .call("users.info", json!({"user": "U0DBA0001"}))
        .await
        .unwrap();
    assert_eq!(u["user"]["name"], "alice");
    let calls = d.calls();
    let ui = calls.iter().rfind(|c| c.method == "users.info").unwrap();
    assert!(
        ui.content_type
            .starts_with("application/x-www-form-urlencoded"),
        "{}",
        ui.content_type
    );
    assert!(
        calls
            .iter()
            .filter(|c| c.method == "auth.test" && c.error.is_none())
            .count()
            == 1
    );
    let g = api
        .call("usergroups.users.list", json!({"usergroup": "S0DBAS001"}))
        .await
        .unwrap();
    assert_eq!(g["users"], json!(["U0DBA0001", "U0GUEST01"]));
    assert_eq!(
        code(
            api.call("usergroups.users.list", json!({"usergroup": "S0NOPE"}))
                .await
        ),
        "no_such_subteam"
    );
    // apps.connections.open: both `{}` and an empty body, with the app token.
    let o = api.call("apps.connections.open", json!({})).await.unwrap();
    assert!(o["url"].as_str().unwrap().starts_with("ws://127.0.0.1:"));
    let v = raw(
        &d,
        "apps.connections.open",
        &[
            ("Authorization", &format!("Bearer {APP}")),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        "",
    )
    .await;
    assert_eq!(v["ok"], true, "{v}");
}

#[tokio::test]
async fn chat_errors_and_block_kit_refusals() {
    let d = Double::start().await;
    let api = client(&d, BOT, APP);
    let post = |args: Value| api.call("chat.postMessage", args);
    let ok = post(json!({"channel": CHANNEL, "text": "hi"}))
        .await
        .unwrap();
    let ts = ok["ts"].as_str().unwrap().to_string();
    assert!(ts.len() == 17 && ts.as_bytes()[10] == b'.', "{ts}");
    assert_eq!(
        code(post(json!({"channel": "#db-ops", "text": "x"})).await),
        "channel_not_found"
    );
    assert_eq!(
        code(post(json!({"channel": OTHER_CHANNEL, "text": "x"})).await),
        "not_in_channel"
    );
    assert_eq!(code(post(json!({"channel": CHANNEL})).await), "no_text");
    let e = post(json!({"channel": CHANNEL, "text": "x", "blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "*h*"}}]}))
        .await
        .unwrap_err();
    assert_eq!(e.handling(), Handling::Bug);
    match e {
        ApiError::Slack { code, messages, .. } => {
            assert_eq!(code, "invalid_blocks");
            assert!(
                messages[0].starts_with("[ERROR]") && messages[0].contains("/blocks/0/text"),
                "{messages:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    let many: Vec<Value> = (0..51).map(|_| json!({"type": "divider"})).collect();
    assert_eq!(
        code(post(json!({"channel": CHANNEL, "text": "x", "blocks": many})).await),
        "invalid_blocks"
    );
    for bad in [
        json!({"type": "section", "text": {"type": "mrkdwn", "text": ""}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": "x"}, "colour": "red"}),
        json!({"type": "sectionx"}),
        json!({"type": "section", "fields": [{"type": "mrkdwn", "text": "x".repeat(2001)}]}),
        json!({"type": "actions", "elements": [
            {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "A"}},
            {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "B"}}]}),
        json!({"type": "actions", "elements": [{"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "x".repeat(76)}}]}),
        json!({"type": "actions", "elements": [{"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "A"}, "style": "green"}]}),
    ] {
        assert_eq!(
            code(post(json!({"channel": CHANNEL, "text": "x", "blocks": [bad.clone()]})).await),
            "invalid_blocks",
            "{bad}"
        );
    }
    let dup = json!([{"type": "divider", "block_id": "a"}, {"type": "divider", "block_id": "a"}]);
    assert_eq!(
        code(post(json!({"channel": CHANNEL, "text": "x", "blocks": dup})).await),
        "invalid_blocks"
    );
    let long: Vec<Value> = (0..5)
        .map(|_| json!({"type": "section", "text": {"type": "mrkdwn", "text": "y".repeat(2900)}}))
        .collect();
    assert_eq!(
        code(post(json!({"channel": CHANNEL, "text": "x", "blocks": long})).await),
        "msg_blocks_too_long"
    );
    // chat.update.
    let up = |args: Value| api.call("chat.update", args);
    assert_eq!(
        code(up(json!({"channel": CHANNEL, "ts": "1.2", "text": "x"})).await),
        "message_not_found"
    );
    assert_eq!(
        code(up(json!({"channel": CHANNEL, "ts": "1600000000.000001", "text": "x"})).await),
        "cant_update_message"
    );
    assert_eq!(
        code(up(json!({"channel": CHANNEL, "ts": ts, "text": "x".repeat(4001)})).await),
        "msg_too_long"
    );
    let e = up(json!({"channel": CHANNEL, "ts": "1.2", "text": "x"}))
        .await
        .unwrap_err();
    assert_eq!(e.handling(), Handling::Repost);
    let u = up(json!({"channel": CHANNEL, "ts": ts, "text": "edited"}))
        .await
        .unwrap();
    assert_eq!(
        (u["ts"].as_str(), u["text"].as_str()),
        (Some(ts.as_str()), Some("edited"))
    );
    // Ephemerals.
    let eph = api
        .call(
            "chat.postEphemeral",
            json!({"channel": CHANNEL, "user": "U0DBA0001", "text": "psst"}),
        )
        .await
        .unwrap();
    assert!(eph["message_ts"].is_string());
    assert_eq!(
        code(
            api.call(
                "chat.postEphemeral",
                json!({"channel": CHANNEL, "user": "U0STRANGER", "text": "x"})
            )
            .await
        ),
        "user_not_in_channel"
    );
}

#[tokio::test]
async fn injected_faults_reach_the_client_as_slack_sends_them() {
    let d = Double::start().await;
    let api = client(&d, BOT, APP);
    d.inject("chat.update", Fault::RateLimited(7));
    d.inject("chat.update", Fault::Status(503));
    d.inject("chat.update", Fault::Error("fatal_error"));
    let args = json!({"channel": CHANNEL, "ts": "1.2", "text": "x"});
    match api.call("chat.update", args.clone()).await.unwrap_err() {
        ApiError::RateLimited { retry_after, .. } => {
            assert_eq!(retry_after, Duration::from_secs(7))
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(
        api.call("chat.update", args.clone())
            .await
            .unwrap_err()
            .handling(),
        Handling::Retry
    );
    assert_eq!(
        api.call("chat.update", args.clone())
            .await
            .unwrap_err()
            .handling(),
        Handling::Retry
    );
    let c = d.calls_of("chat.update");
    assert_eq!(
        c.iter().map(|c| c.status).collect::<Vec<_>>(),
        [429, 503, 200]
    );
    // Tier 3: the 51st chat.update within a minute is refused with 429.
    let ts = api
        .call("chat.postMessage", json!({"channel": CHANNEL, "text": "x"}))
        .await
        .unwrap()["ts"]
        .clone();
    let mut limited = 0;
    for i in 0..51 {
        match api
            .call(
                "chat.update",
                json!({"channel": CHANNEL, "ts": ts, "text": format!("{i}")}),
            )
            .await
        {
            Err(ApiError::RateLimited { .. }) => limited += 1,
            r => assert!(r.is_ok(), "{r:?}"),
        }
    }
    assert_eq!(limited, 1);
}

#[tokio::test]
async fn triggers_are_single_use_and_views_are_validated() {
    let d = Double::start().await;
    let api = client(&d, BOT, APP);
    let v = ActionValue {
        run: "run-7f3a".into(),
        digest: "e".repeat(64),
        rev: 3,
    };
    let modal = blocks::reject_modal(&v, "orders-prod");
    assert_eq!(
        code(
            api.call("views.open", json!({"trigger_id": "nope", "view": modal}))
                .await
        ),
        "invalid_trigger_id"
    );
    let t = d.trigger();
    let opened = api
        .call("views.open", json!({"trigger_id": t, "view": modal}))
        .await
        .unwrap();
    assert!(opened["view"]["id"].is_string() && opened["view"]["hash"].is_string());
    assert_eq!(
        code(
            api.call("views.open", json!({"trigger_id": t, "view": modal}))
                .await
        ),
        "exchanged_trigger_id"
    );
    let mut bad = modal.clone();
    bad["title"]["text"] = json!("a title that is far too long");
    assert_eq!(
        code(
            api.call(
                "views.open",
                json!({"trigger_id": d.trigger(), "view": bad})
            )
            .await
        ),
        "invalid_blocks"
    );
    let id = opened["view"]["id"].clone();
    assert_eq!(
        code(
            api.call(
                "views.update",
                json!({"view_id": id, "hash": "stale", "view": modal})
            )
            .await
        ),
        "hash_conflict"
    );
    assert!(
        api.call(
            "views.update",
            json!({"view_id": id, "hash": opened["view"]["hash"], "view": modal})
        )
        .await
        .is_ok()
    );
}

#[tokio::test]
async fn every_rendered_payload_is_accepted_by_the_double() {
    let d = Double::start().await;
    d.enforce_tiers(false);
    let api = client(&d, BOT, APP);
    let people: BTreeMap<String, String> = [("alice".to_string(), "U0DBA0001".to_string())].into();
    let links = Default::default();
    let ctx = RenderCtx {
        run: "run-7f3a",
        target: "orders-prod",
        links: &links,
        people: &people,
    };
    for plan in [small_plan(), big_plan()] {
        for (name, v) in stages(&plan) {
            for (kind, m) in [
                ("preflight", blocks::preflight(&plan, &v, &ctx)),
                ("progress", blocks::progress(&v, &ctx)),
                ("completion", blocks::completion(&v, &ctx)),
            ] {
                let r = api.call("chat.postMessage", m.body(CHANNEL)).await;
                assert!(r.is_ok(), "{kind}/{name}: {r:?}");
            }
        }
    }
    let v = ActionValue {
        run: "run-7f3a".into(),
        digest: "e".repeat(64),
        rev: 3,
    };
    for view in [
        blocks::reject_modal(&v, "orders-prod"),
        blocks::abort_reason_modal(&v, "orders-prod"),
        blocks::typed_table_modal(Action::Abort, &v, "orders-prod", &["orders".into()]),
        blocks::typed_table_modal(Action::CutOver, &v, "orders-prod", &["orders".into()]),
    ] {
        let r = api
            .call(
                "views.open",
                json!({"trigger_id": d.trigger(), "view": view}),
            )
            .await;
        assert!(r.is_ok(), "{r:?}");
    }
}

#[tokio::test]
async fn socket_mode_tickets_are_single_use_and_hello_comes_first() {
    let d = Double::start().await;
    let api = client(&d, BOT, APP);
    let url = api.call("apps.connections.open", json!({})).await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    let first = ws.next().await.unwrap().unwrap().into_text().unwrap();
    let hello: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["connection_info"]["app_id"], "A0RELAY01");
    assert!(
        tokio_tungstenite::connect_async(url.as_str())
            .await
            .is_err(),
        "a ticket is single use"
    );
    let forged = url.replace("ticket=", "ticket=x");
    assert!(
        tokio_tungstenite::connect_async(forged.as_str())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn wss_urls_are_spoken_with_rustls() {
    // A listener that is not TLS: the handshake fails as a TLS/IO error,
    // never as "TLS support not compiled in".
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            use tokio::io::AsyncWriteExt;
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    let e = tokio_tungstenite::connect_async(format!("wss://localhost:{port}/link/?ticket=x"))
        .await
        .unwrap_err();
    let s = format!("{e:?}");
    assert!(!s.contains("TlsFeatureNotEnabled"), "{s}");
    assert!(s.contains("Tls") || s.contains("Io"), "{s}");
}

#[tokio::test]
async fn the_double_catches_late_wrong_and_missing_acks() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message as Ws;
    let d = Double::start().await;
    let api = client(&d, BOT, APP);
    let url = api.call("apps.connections.open", json!({})).await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    let _hello = ws.next().await.unwrap().unwrap();
    let mut next_text = async || loop {
        if let Ws::Text(t) = ws.next().await.unwrap().unwrap() {
            return serde_json::from_str::<Value>(&t).unwrap();
        }
    };
    // A block_actions envelope acked with a payload it does not accept.
    let click = d.block_actions("U0DBA0001", "1.2", "approve", "x|y|1");
    let e1 = d.deliver(click.clone()).unwrap();
    let f = next_text().await;
    assert_eq!(
        (f["type"].as_str(), f["accepts_response_payload"].as_bool()),
        (Some("interactive"), Some(false))
    );
    assert_eq!(f["payload"]["trigger_id"], click["trigger_id"]);
    let bad = json!({"envelope_id": e1, "payload": {"response_action": "errors", "errors": {"reason": "x"}}});
    ws.send(Ws::Text(bad.to_string().into())).await.unwrap();
    // An ack for an envelope that was never sent.
    ws.send(Ws::Text(json!({"envelope_id": "nope"}).to_string().into()))
        .await
        .unwrap();
    // A second envelope left unacked: recorded after 3 s and delivered again.
    let e2 = d.deliver(click).unwrap();
    d.wait_for("the redelivery", Duration::from_secs(10), |d| {
        d.deliveries()
            .iter()
            .filter(|x| x.envelope_id == e2)
            .count()
            == 2
    })
    .await;
    let ds = d.deliveries();
    assert!(ds.iter().find(|x| x.envelope_id == e2).unwrap().timed_out);
    let v = d.violations();
    assert!(v.iter().any(|m| m.contains("does not accept one")), "{v:?}");
    assert!(
        v.iter()
            .any(|m| m.contains("unknown or already acked envelope nope")),
        "{v:?}"
    );
}
