//! `cutover slack preview|manifest|check` and `cutover relay serve`.

use super::plan::{InputError, build};
use crate::cli::{RelayCommand, SlackCommand};
use crate::config::{self, Config};
use crate::slack::api::{HttpApi, SlackApi, methods};
use crate::slack::blocks::{self, Decision, RenderCtx};
use crate::slack::config::SlackConfig;
use crate::slack::view::RunView;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn input<E: std::fmt::Display>(e: E) -> InputError {
    InputError(e.to_string())
}

/// The `[slack]` section of the config at `path` (or discovered), if any.
pub fn slack_config(path: Option<&Path>) -> Result<Option<(SlackConfig, PathBuf)>, InputError> {
    let Some(p) = path.map(Path::to_path_buf).or_else(config::discover) else {
        return Ok(None);
    };
    let cfg = Config::load(&p).map_err(input)?;
    let base = p.parent().unwrap_or(Path::new(".")).to_path_buf();
    match cfg.slack {
        None => Ok(None),
        Some(v) => {
            let s: SlackConfig = v
                .try_into()
                .map_err(|e| InputError(format!("{} [slack]: {e}", p.display())))?;
            Ok(Some((s, base)))
        }
    }
}

/// `cutover slack …`.
pub fn run(c: &SlackCommand) -> Result<i32, InputError> {
    match c {
        SlackCommand::Preview { demo: true, .. } => transcript(None),
        SlackCommand::Preview { opts, run, .. } => {
            let (plan, _) = build(opts)?;
            let sc = slack_config(opts.config.as_deref())?
                .map(|x| x.0)
                .unwrap_or_default();
            let people = BTreeMap::new();
            let target = opts.target.clone().unwrap_or_else(|| "(target)".into());
            let ctx = RenderCtx {
                run,
                target: &target,
                links: &sc.links,
                people: &people,
            };
            let m = blocks::preflight_with(
                &plan,
                &RunView::default(),
                &ctx,
                &Decision::Pending { voided: None },
            );
            let out = json!({"text": m.text, "blocks": m.blocks});
            println!("{}", serde_json::to_string_pretty(&out).map_err(input)?);
            Ok(0)
        }
        SlackCommand::Manifest { request_url } => {
            print!(
                "{}",
                crate::slack::manifest::manifest(request_url.as_deref()).map_err(input)?
            );
            Ok(0)
        }
        SlackCommand::Check { config } => check(config.as_deref()),
        SlackCommand::Transcript { file } => transcript(file.clone()),
    }
}

/// Prints what a transcript's channel would have shown (default: the last demo's).
fn transcript(file: Option<PathBuf>) -> Result<i32, InputError> {
    let path = file.unwrap_or_else(crate::slack::host::demo_transcript_path);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        InputError(format!(
            "{}: {e} (run `cutover demo` first, or name a run's slack-transcript.jsonl)",
            path.display()
        ))
    })?;
    for l in crate::slack::transcript::render_channel(&text) {
        println!("{l}");
    }
    Ok(0)
}

fn check(config: Option<&Path>) -> Result<i32, InputError> {
    let (sc, base) = slack_config(config)?
        .ok_or_else(|| InputError("no [slack] section in cutover.toml".into()))?;
    let tokens = sc.tokens(&base).map_err(input)?;
    let api = HttpApi::new(&sc.api_base, tokens.bot.clone(), tokens.app.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(input)?;
    let mut failed = false;
    let mut line = |ok: bool, what: String| {
        failed |= !ok;
        println!("{} {what}", if ok { "ok  " } else { "FAIL" });
    };
    // Only what was checked is reported as ok: a check that could not run
    // says so ("skip") and why.
    let skip = |what: &str, why: &str| println!("skip {what}: not checked ({why})");
    rt.block_on(async {
        if tokens.bot.is_none() {
            line(
                false,
                "bot token: none configured (set SLACK_BOT_TOKEN or bot_token_file in [slack])"
                    .into(),
            );
            for what in [format!("channel {}", sc.channel), "scope usergroups:read".into()] {
                skip(&what, "no bot token");
            }
        } else {
            let reachable = match api.call(methods::AUTH_TEST, json!({})).await {
                Ok(v) => {
                    line(
                        true,
                        format!(
                            "bot token: {} in {}",
                            v["user"].as_str().unwrap_or("?"),
                            v["team"].as_str().unwrap_or("?")
                        ),
                    );
                    true
                }
                Err(e) => {
                    let transport = matches!(e, crate::slack::api::ApiError::Transport { .. });
                    line(false, format!("bot token: {e}"));
                    !transport
                }
            };
            if !reachable {
                for what in [format!("channel {}", sc.channel), "scope usergroups:read".into()] {
                    skip(&what, "the Slack API is unreachable");
                }
            } else {
                // An ephemeral to the bot itself is invisible, and fails exactly when
                // the bot cannot post to the channel.
                let probe = json!({"channel": sc.channel, "text": "cutover slack check", "user": "USLACKBOT"});
                match api.call(methods::POST_EPHEMERAL, probe).await {
                    Ok(_) => line(true, format!("channel {}: the bot can post", sc.channel)),
                    Err(e) if e.code() == Some("user_not_in_channel") => {
                        line(true, format!("channel {}: the bot can post", sc.channel))
                    }
                    Err(e) => line(false, format!("channel {}: {e}", sc.channel)),
                }
                // A made-up group: Slack checks the scope before the group, so
                // "no such group" proves the scope; only those answers say ok.
                match api
                    .call(methods::USERGROUP_USERS, json!({"usergroup": "S0"}))
                    .await
                {
                    Ok(_) => line(true, "scope usergroups:read".into()),
                    Err(e) if matches!(e.code(), Some("no_such_subteam" | "invalid_usergroup")) => {
                        line(true, "scope usergroups:read".into())
                    }
                    Err(e) if e.code() == Some("plan_upgrade_required") => line(
                        true,
                        "scope usergroups:read (user groups need a paid plan: the static allow-list is used)".into(),
                    ),
                    Err(e) if e.code() == Some("missing_scope") => {
                        line(false, format!("scope usergroups:read: {e}"))
                    }
                    Err(e) => skip("scope usergroups:read", &e.to_string()),
                }
            }
        }
        match &tokens.app {
            Some(_) => match api.call(methods::CONNECTIONS_OPEN, json!({})).await {
                Ok(_) => line(true, "app-level token: Socket Mode available".into()),
                Err(e) => line(false, format!("app-level token: {e}")),
            },
            None => line(
                tokens.signing.is_some(),
                "no app-level token (Socket Mode) — needs SLACK_SIGNING_SECRET for `relay serve`"
                    .into(),
            ),
        }
    });
    Ok(if failed { 1 } else { 0 })
}

/// `cutover relay serve`.
pub fn relay(c: &RelayCommand) -> Result<i32, InputError> {
    let RelayCommand::Serve {
        listen,
        config,
        trail,
        audit_key_file,
    } = c;
    let key = crate::audit::AuditKey::load(audit_key_file.as_deref()).map_err(input)?;
    let (trail, _) = crate::audit::Trail::open(trail, key)
        .map_err(|e| InputError(format!("{}: {e}", trail.display())))?;
    let (sc, base) = slack_config(config.as_deref())?
        .ok_or_else(|| InputError("no [slack] section in cutover.toml".into()))?;
    let tokens = sc.tokens(&base).map_err(input)?;
    let secret = tokens.signing.clone().ok_or_else(|| {
        InputError(
            "relay serve needs SLACK_SIGNING_SECRET (or signing_secret_file in [slack])".into(),
        )
    })?;
    let api: Arc<dyn SlackApi> = Arc::new(HttpApi::new(&sc.api_base, tokens.bot, tokens.app));
    let rt = tokio::runtime::Runtime::new().map_err(input)?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| InputError(format!("--listen {listen}: {e}")))?;
        eprintln!("cutover: serving Slack interactivity on {listen}");
        let handler = Arc::new(
            crate::slack::interact::Interactions::new(
                api,
                Vec::new(),
                std::time::Duration::from_secs(sc.group_ttl_seconds),
            )
            .with_audit(trail)
            // It serves no run itself: each click goes to its run's
            // supervisor (this project's runs, or this user's live relays).
            .with_router(crate::slack::route::Router::new(
                &base.join(".cutover/runs"),
                &crate::slack::route::Router::default_registry(),
                "relay-serve",
            )),
        );
        let verifier = Arc::new(crate::slack::signing::Verifier::new(secret));
        let shutdown = tokio_util::sync::CancellationToken::new();
        let s2 = shutdown.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            s2.cancel();
        });
        crate::slack::http::serve(listener, verifier, handler, shutdown).await;
        Ok(0)
    })
}
