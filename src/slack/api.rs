//! The Slack Web API behind one small trait, and its `reqwest` implementation.
//!
//! One generic [`SlackApi::call`] (method name + JSON arguments) keeps the
//! trait easy to fake: the in-process fake of the benchmark, the transcript
//! writer and the HTTP client all implement it. Typed helpers sit on top.
//! Every error code of the spec maps to a [`Handling`].

use super::config::Secret;
use futures_util::future::BoxFuture;
use serde_json::Value;
use std::time::Duration;

/// The methods the relay uses.
pub mod methods {
    /// Post a message.
    pub const POST_MESSAGE: &str = "chat.postMessage";
    /// Edit a message.
    pub const UPDATE: &str = "chat.update";
    /// Post a message only one user sees.
    pub const POST_EPHEMERAL: &str = "chat.postEphemeral";
    /// Open a modal.
    pub const VIEWS_OPEN: &str = "views.open";
    /// Update a modal.
    pub const VIEWS_UPDATE: &str = "views.update";
    /// A user's profile.
    pub const USERS_INFO: &str = "users.info";
    /// A user group's members.
    pub const USERGROUP_USERS: &str = "usergroups.users.list";
    /// Validate the bot token.
    pub const AUTH_TEST: &str = "auth.test";
    /// Socket Mode URL (app-level token).
    pub const CONNECTIONS_OPEN: &str = "apps.connections.open";
}

/// What to do about an error (spec §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    /// Rate limited: wait, then send only the newest state.
    RateLimited,
    /// Server-side or transport trouble: retry with backoff.
    Retry,
    /// Configuration (token, scope, channel): stop posting and tell the console.
    Fatal,
    /// The message is gone or not ours: post a new one and store its `ts`.
    Repost,
    /// Edits are not possible: post new thread replies instead.
    ReplyInstead,
    /// Our payload was wrong (a bug): log the details, do not resend it.
    Bug,
    /// The channel is archived or frozen: stop posting and editing.
    StopChannel,
    /// A modal's trigger expired or was used: ask the user to click again.
    ClickAgain,
    /// A modal changed meanwhile: re-read it and retry.
    Reread,
    /// The user is not in the channel: fall back to a thread reply.
    NotInChannel,
    /// User groups are unavailable: use the static allow-list only.
    StaticAllowList,
    /// The user cannot be resolved: treat as unauthorized.
    Unauthorized,
}

/// The handling of a Slack error code; unknown codes are fatal (never guess
/// that a failure is harmless).
pub fn handling(code: &str) -> Handling {
    use Handling::*;
    match code {
        "ratelimited" | "rate_limited" => RateLimited,
        "update_failed"
        | "fatal_error"
        | "internal_error"
        | "service_unavailable"
        | "request_timeout" => Retry,
        "not_authed"
        | "invalid_auth"
        | "token_revoked"
        | "account_inactive"
        | "token_expired"
        | "missing_scope"
        | "not_allowed_token_type"
        | "missing_args"
        | "forbidden_team"
        | "insecure_request"
        | "not_in_channel"
        | "channel_not_found" => Fatal,
        c if c.starts_with("restricted_action") => Fatal,
        "is_archived" | "is_inactive" => StopChannel,
        "msg_too_long"
        | "no_text"
        | "invalid_blocks"
        | "invalid_blocks_format"
        | "msg_blocks_too_long"
        | "not_found"
        | "duplicate_external_id"
        | "view_too_large" => Bug,
        "message_not_found" | "cant_update_message" => Repost,
        "edit_window_closed" | "block_mismatch" => ReplyInstead,
        "expired_trigger_id" | "exchanged_trigger_id" | "invalid_trigger_id" => ClickAgain,
        "hash_conflict" => Reread,
        "user_not_in_channel" => NotInChannel,
        "plan_upgrade_required" | "no_such_subteam" => StaticAllowList,
        "user_not_found" | "user_not_visible" => Unauthorized,
        _ => Fatal,
    }
}

/// A failed call. Never carries a token.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// HTTP 429 (or `ratelimited`/`rate_limited`): wait this long.
    #[error("{method}: rate limited, retry after {}s", retry_after.as_secs())]
    RateLimited {
        /// Method.
        method: String,
        /// From `Retry-After` (1 s when absent).
        retry_after: Duration,
    },
    /// `{"ok": false, "error": code}`.
    #[error("{method}: {code}{}", needed.as_ref().map(|n| format!(" (needs scope {n})")).unwrap_or_default())]
    Slack {
        /// Method.
        method: String,
        /// Slack's error code.
        code: String,
        /// `missing_scope`: the scope needed.
        needed: Option<String>,
        /// `response_metadata.messages` (for `invalid_blocks`).
        messages: Vec<String>,
    },
    /// A non-200 status other than 429.
    #[error("{method}: HTTP {status}")]
    Status {
        /// Method.
        method: String,
        /// Status code.
        status: u16,
    },
    /// Connection, timeout or an unreadable body.
    #[error("{method}: {message}")]
    Transport {
        /// Method.
        method: String,
        /// What happened.
        message: String,
    },
    /// No token for this method.
    #[error("{method}: no {which} configured (set {var} or the token file in [slack])")]
    NoToken {
        /// Method.
        method: String,
        /// Which token.
        which: &'static str,
        /// Its environment variable.
        var: &'static str,
    },
}

impl ApiError {
    /// What to do about it.
    pub fn handling(&self) -> Handling {
        match self {
            ApiError::RateLimited { .. } => Handling::RateLimited,
            ApiError::Slack { code, .. } => handling(code),
            ApiError::Status { status, .. } if *status >= 500 || *status == 408 => Handling::Retry,
            ApiError::Status { .. } => Handling::Fatal,
            ApiError::Transport { .. } => Handling::Retry,
            ApiError::NoToken { .. } => Handling::Fatal,
        }
    }

    /// The Slack error code, if Slack answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::Slack { code, .. } => Some(code),
            ApiError::RateLimited { .. } => Some("ratelimited"),
            _ => None,
        }
    }
}

/// The Web API.
pub trait SlackApi: Send + Sync {
    /// Calls `method` with JSON arguments; `Ok` is the whole `ok: true` body.
    fn call<'a>(&'a self, method: &'a str, args: Value) -> BoxFuture<'a, Result<Value, ApiError>>;
}

/// Parses a response body (status 200) into `Ok(body)` or the Slack error.
pub fn parse_body(
    method: &str,
    status: u16,
    retry_after: Option<&str>,
    body: &str,
) -> Result<Value, ApiError> {
    let wait = || Duration::from_secs(retry_after.and_then(|s| s.trim().parse().ok()).unwrap_or(1));
    if status == 429 {
        return Err(ApiError::RateLimited {
            method: method.to_string(),
            retry_after: wait(),
        });
    }
    if status != 200 {
        return Err(ApiError::Status {
            method: method.to_string(),
            status,
        });
    }
    let v: Value = serde_json::from_str(body).map_err(|e| ApiError::Transport {
        method: method.to_string(),
        message: format!("unreadable response: {e}"),
    })?;
    if v["ok"].as_bool() == Some(true) {
        return Ok(v);
    }
    let code = v["error"].as_str().unwrap_or("unknown_error").to_string();
    if handling(&code) == Handling::RateLimited {
        return Err(ApiError::RateLimited {
            method: method.to_string(),
            retry_after: wait(),
        });
    }
    Err(ApiError::Slack {
        method: method.to_string(),
        needed: v["needed"].as_str().map(str::to_string),
        messages: v["response_metadata"]["messages"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|m| m.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        code,
    })
}

/// The real client: JSON for writes, form-encoded for reads, Bearer tokens.
#[derive(Clone)]
pub struct HttpApi {
    client: reqwest::Client,
    base: String,
    bot: Option<Secret>,
    app: Option<Secret>,
}

impl std::fmt::Debug for HttpApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpApi")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl HttpApi {
    /// A client for `base` (e.g. `https://slack.com/api`).
    pub fn new(base: &str, bot: Option<Secret>, app: Option<Secret>) -> HttpApi {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap_or_default();
        HttpApi {
            client,
            base: base.trim_end_matches('/').to_string(),
            bot,
            app,
        }
    }

    async fn send(&self, method: &str, args: Value) -> Result<Value, ApiError> {
        let app_method = method == methods::CONNECTIONS_OPEN;
        let (token, which, var) = if app_method {
            (&self.app, "app-level token", "SLACK_APP_TOKEN")
        } else {
            (&self.bot, "bot token", "SLACK_BOT_TOKEN")
        };
        let token = token.as_ref().ok_or_else(|| ApiError::NoToken {
            method: method.to_string(),
            which,
            var,
        })?;
        let url = format!("{}/{method}", self.base);
        let req = self
            .client
            .post(&url)
            .header("Authorization", format!("Bearer {}", token.expose()));
        let req = match method {
            methods::USERS_INFO | methods::USERGROUP_USERS | methods::AUTH_TEST => {
                let form: Vec<(String, String)> = args
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| {
                                let s = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                                (k.clone(), s)
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let body: String = form
                    .iter()
                    .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
                    .collect::<Vec<_>>()
                    .join("&");
                req.header("Content-Type", "application/x-www-form-urlencoded")
                    .body(body)
            }
            _ if app_method => req
                .header("Content-Type", "application/json; charset=utf-8")
                .body("{}"),
            _ => req
                .header("Content-Type", "application/json; charset=utf-8")
                .body(args.to_string()),
        };
        let transport = |e: reqwest::Error| ApiError::Transport {
            method: method.to_string(),
            message: transport_message(&self.base, e),
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        let retry = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp.text().await.map_err(transport)?;
        parse_body(method, status, retry.as_deref(), &body)
    }
}

/// "cannot reach HOST: CAUSE" from a reqwest error: the host of the API
/// base and the innermost cause (connection refused, DNS, TLS, timeout),
/// never the URL's path or any header (no token can leak here).
fn transport_message(base: &str, e: reqwest::Error) -> String {
    let host = base
        .split_once("://")
        .map_or(base, |(_, r)| r)
        .split('/')
        .next()
        .unwrap_or(base);
    let timeout = e.is_timeout();
    let e = e.without_url();
    let mut cause = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        cause = s.to_string();
        src = s.source();
    }
    if timeout {
        cause = format!("timed out ({cause})");
    }
    format!("cannot reach {host}: {cause}")
}

/// Percent-encodes a form value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl SlackApi for HttpApi {
    fn call<'a>(&'a self, method: &'a str, args: Value) -> BoxFuture<'a, Result<Value, ApiError>> {
        Box::pin(self.send(method, args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spec_error_code_has_a_handling() {
        use Handling::*;
        let table = [
            ("ratelimited", RateLimited),
            ("rate_limited", RateLimited),
            ("not_authed", Fatal),
            ("invalid_auth", Fatal),
            ("token_revoked", Fatal),
            ("account_inactive", Fatal),
            ("token_expired", Fatal),
            ("missing_scope", Fatal),
            ("not_allowed_token_type", Fatal),
            ("missing_args", Fatal),
            ("forbidden_team", Fatal),
            ("insecure_request", Fatal),
            ("not_in_channel", Fatal),
            ("channel_not_found", Fatal),
            ("is_archived", StopChannel),
            ("is_inactive", StopChannel),
            ("restricted_action_read_only_channel", Fatal),
            ("msg_too_long", Bug),
            ("no_text", Bug),
            ("invalid_blocks", Bug),
            ("invalid_blocks_format", Bug),
            ("msg_blocks_too_long", Bug),
            ("message_not_found", Repost),
            ("cant_update_message", Repost),
            ("edit_window_closed", ReplyInstead),
            ("block_mismatch", ReplyInstead),
            ("update_failed", Retry),
            ("fatal_error", Retry),
            ("internal_error", Retry),
            ("service_unavailable", Retry),
            ("request_timeout", Retry),
            ("expired_trigger_id", ClickAgain),
            ("exchanged_trigger_id", ClickAgain),
            ("invalid_trigger_id", ClickAgain),
            ("hash_conflict", Reread),
            ("not_found", Bug),
            ("duplicate_external_id", Bug),
            ("view_too_large", Bug),
            ("user_not_in_channel", NotInChannel),
            ("plan_upgrade_required", StaticAllowList),
            ("no_such_subteam", StaticAllowList),
            ("user_not_found", Unauthorized),
            ("user_not_visible", Unauthorized),
            ("something_new", Fatal),
        ];
        for (code, want) in table {
            assert_eq!(handling(code), want, "{code}");
        }
    }

    #[test]
    fn bodies_and_statuses_parse() {
        let e = parse_body(
            "chat.update",
            429,
            Some("7"),
            "{\"ok\":false,\"error\":\"ratelimited\"}",
        );
        assert_eq!(
            e,
            Err(ApiError::RateLimited {
                method: "chat.update".into(),
                retry_after: Duration::from_secs(7)
            })
        );
        let e = parse_body(
            "chat.postMessage",
            200,
            None,
            r#"{"ok":false,"error":"missing_scope","needed":"chat:write","provided":"users:read"}"#,
        );
        assert!(matches!(&e, Err(ApiError::Slack { needed: Some(n), .. }) if n == "chat:write"));
        assert_eq!(
            parse_body("x", 503, None, "").err().map(|e| e.handling()),
            Some(Handling::Retry)
        );
        assert!(parse_body("x", 200, None, r#"{"ok":true,"ts":"1.2"}"#).is_ok());
    }
}
