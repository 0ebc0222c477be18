//! The optional `[slack]` section of `cutover.toml`.
//!
//! Tokens never live in this file: they come from the environment
//! (`SLACK_BOT_TOKEN`, `SLACK_APP_TOKEN`, `SLACK_SIGNING_SECRET`) or from the
//! files named here, and they are never printed, logged or recorded.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `[slack]`: embed as `#[serde(default)] pub slack: Option<SlackConfig>` in `config::Config`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// Channel id (`C…`/`G…`); names are not accepted by `chat.postMessage`.
    pub channel: String,
    /// Web API base URL (tests point it at a loopback double).
    #[serde(default = "default_api_base")]
    pub api_base: String,
    /// URL templates for the pre-flight's links.
    #[serde(default)]
    pub links: LinkTemplates,
    /// File holding the bot token (`xoxb-…`), relative to cutover.toml; `SLACK_BOT_TOKEN` wins.
    #[serde(default)]
    pub bot_token_file: Option<PathBuf>,
    /// File holding the app-level token (`xapp-…`, Socket Mode); `SLACK_APP_TOKEN` wins.
    #[serde(default)]
    pub app_token_file: Option<PathBuf>,
    /// File holding the signing secret (HTTP endpoint); `SLACK_SIGNING_SECRET` wins.
    #[serde(default)]
    pub signing_secret_file: Option<PathBuf>,
    /// Minimum seconds between two edits of one message (Slack recommends ≥ 5).
    #[serde(default = "default_coalesce")]
    pub coalesce_seconds: f64,
    /// How long Slack user-group membership is cached, seconds.
    #[serde(default = "default_group_ttl")]
    pub group_ttl_seconds: u64,
    /// Slack user id of the requester when the console's user has none in the policy.
    #[serde(default)]
    pub requester: Option<String>,
}

fn default_api_base() -> String {
    "https://slack.com/api".to_string()
}
fn default_coalesce() -> f64 {
    5.0
}
fn default_group_ttl() -> u64 {
    300
}

/// URL templates. Placeholders: `{run}`, `{version}`, `{digest}`, `{target}`, `{statement}`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkTemplates {
    /// The diff of the migrations (e.g. a pull request).
    #[serde(default)]
    pub diff: Option<String>,
    /// The full plan (e.g. a CI artifact).
    #[serde(default)]
    pub plan: Option<String>,
    /// The full text of one statement; falls back to `plan`.
    #[serde(default)]
    pub statement: Option<String>,
}

/// The values a template may use.
#[derive(Debug, Clone, Default)]
pub struct LinkVars<'a> {
    /// Run id.
    pub run: &'a str,
    /// Migration version.
    pub version: &'a str,
    /// Plan digest.
    pub digest: &'a str,
    /// Target name.
    pub target: &'a str,
    /// `<version>-<index>`.
    pub statement: &'a str,
}

/// Fills a template; values are percent-encoded so they cannot break the URL.
pub fn fill(template: &str, v: &LinkVars<'_>) -> String {
    template
        .replace("{run}", &encode(v.run))
        .replace("{version}", &encode(v.version))
        .replace("{digest}", &encode(v.digest))
        .replace("{target}", &encode(v.target))
        .replace("{statement}", &encode(v.statement))
}

fn encode(s: &str) -> String {
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

impl Default for SlackConfig {
    fn default() -> Self {
        SlackConfig {
            channel: String::new(),
            api_base: default_api_base(),
            links: LinkTemplates::default(),
            bot_token_file: None,
            app_token_file: None,
            signing_secret_file: None,
            coalesce_seconds: default_coalesce(),
            group_ttl_seconds: default_group_ttl(),
            requester: None,
        }
    }
}

/// A secret: its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// The three credentials; each optional.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    /// `xoxb-…`.
    pub bot: Option<Secret>,
    /// `xapp-…`.
    pub app: Option<Secret>,
    /// Signing secret.
    pub signing: Option<Secret>,
}

/// A token file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct TokenError {
    /// The file.
    pub path: String,
    /// Why.
    pub message: String,
}

impl SlackConfig {
    /// The edit interval.
    pub fn coalesce(&self) -> Duration {
        Duration::from_secs_f64(self.coalesce_seconds.clamp(1.0, 600.0))
    }

    /// Reads the credentials: environment first, then the files named here
    /// (relative to `base`, the directory of cutover.toml).
    pub fn tokens(&self, base: &Path) -> Result<Tokens, TokenError> {
        let one = |var: &str, file: &Option<PathBuf>| -> Result<Option<Secret>, TokenError> {
            if let Ok(v) = std::env::var(var)
                && !v.trim().is_empty()
            {
                return Ok(Some(Secret::new(v.trim())));
            }
            match file {
                None => Ok(None),
                Some(f) => {
                    let p = base.join(f);
                    let text = std::fs::read_to_string(&p).map_err(|e| TokenError {
                        path: p.display().to_string(),
                        message: e.to_string(),
                    })?;
                    let t = text.trim();
                    if t.is_empty() {
                        return Err(TokenError {
                            path: p.display().to_string(),
                            message: "the file is empty".into(),
                        });
                    }
                    Ok(Some(Secret::new(t)))
                }
            }
        };
        Ok(Tokens {
            bot: one("SLACK_BOT_TOKEN", &self.bot_token_file)?,
            app: one("SLACK_APP_TOKEN", &self.app_token_file)?,
            signing: one("SLACK_SIGNING_SECRET", &self.signing_secret_file)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_defaults_and_rejects_typos() {
        let c: SlackConfig = toml::from_str("channel = \"C1\"").unwrap_or_default();
        assert_eq!(c.channel, "C1");
        assert_eq!(c.coalesce(), Duration::from_secs(5));
        assert!(toml::from_str::<SlackConfig>("channel = \"C1\"\nchanel = 1").is_err());
    }

    #[test]
    fn templates_encode_values() {
        let v = LinkVars {
            run: "r 1",
            version: "42",
            digest: "ab",
            target: "prod/x",
            statement: "42-0",
        };
        assert_eq!(
            fill("https://x/{target}/{version}?r={run}#{statement}", &v),
            "https://x/prod%2Fx/42?r=r%201#42-0"
        );
    }

    #[test]
    fn secrets_do_not_debug_print() {
        let t = Secret::new("xoxb-123");
        assert!(!format!("{t:?}").contains("xoxb"));
    }
}
