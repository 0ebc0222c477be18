//! `cutover.toml`: targets (and, as later parts land, policy and Slack).
//!
//! Unknown keys are errors naming file and line, so a typo never silently changes
//! a production setting. `${VAR}` in DSNs is read from the environment; passwords
//! never appear in any output (see [`crate::sql::redact::redact_dsn`]).

use crate::migrate::SourceFormat;
use crate::model::Engine;
use crate::risk::rules::Throughput;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Deployment stage of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Dev,
    Staging,
    Prod,
}

/// A replica to poll for lag.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReplicaConfig {
    pub name: String,
    pub dsn: String,
}

/// One database a plan can be applied to.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub name: String,
    pub engine: Engine,
    pub environment: Stage,
    /// Connection URL of the primary; `${VAR}` is taken from the environment.
    pub primary: String,
    #[serde(default)]
    pub replicas: Vec<ReplicaConfig>,
    /// `native`, `gh-ost`, `pt-osc` (a migration's directive wins).
    #[serde(default)]
    pub executor: Option<String>,
    /// Per-target throughput model; the rules' defaults otherwise.
    #[serde(default)]
    pub throughput: Option<Throughput>,
    /// Migration source format, when auto-detection is not wanted.
    #[serde(default)]
    pub format: Option<String>,
    /// Replica lag polling (`[targets.lag]`: interval, timeout, heartbeat table).
    #[serde(default)]
    pub lag: Option<crate::lag::LagSettings>,
}

/// Where the rules come from.
#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    /// An override file, relative to cutover.toml.
    pub path: Option<PathBuf>,
}

/// The whole file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub targets: Vec<TargetConfig>,
    #[serde(default)]
    pub rules: RulesConfig,
    /// Roles, approvals, windows, promotion (`[policy]`).
    #[serde(default)]
    pub policy: crate::policy::PolicyConfig,
    /// Console theme and key bindings (`[console]`).
    #[serde(default)]
    pub console: crate::tui::ConsoleConfig,
    /// Sections owned by later parts, accepted as-is for now.
    #[serde(default)]
    pub slack: Option<toml::Value>,
    #[serde(default)]
    pub audit: Option<toml::Value>,
    /// Service mode (`[service]`, see [`crate::serve`]).
    #[serde(default)]
    pub service: Option<crate::serve::ServiceConfig>,
    #[serde(skip)]
    pub path: PathBuf,
}

/// A config problem, with file and line.
#[derive(Debug, thiserror::Error)]
#[error("{path}{}: {message}", .line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    pub path: String,
    pub line: Option<usize>,
    pub message: String,
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: shown.clone(),
            line: None,
            message: e.to_string(),
        })?;
        let mut c = Self::parse(&text, &shown)?;
        c.path = path.to_path_buf();
        Ok(c)
    }

    /// Parses config text (`origin` names it in errors).
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let c: Config = toml::from_str(text).map_err(|e| ConfigError {
            path: origin.to_string(),
            line: e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1),
            message: e.message().to_string(),
        })?;
        // `[slack]` stays a raw table here (the relay reads it), but a typo in it
        // must fail at load like everywhere else, with the section's line.
        if let Some(v) = &c.slack {
            v.clone()
                .try_into::<crate::slack::SlackConfig>()
                .map_err(|e| ConfigError {
                    path: origin.to_string(),
                    line: text
                        .lines()
                        .position(|l| l.trim() == "[slack]")
                        .map(|i| i + 1),
                    message: format!("[slack]: {}", e.message()),
                })?;
        }
        let mut seen = std::collections::HashSet::new();
        for t in &c.targets {
            if !seen.insert(t.name.as_str()) {
                return Err(ConfigError {
                    path: origin.to_string(),
                    line: text
                        .find(&format!("\"{}\"", t.name))
                        .map(|p| text[..p].matches('\n').count() + 1),
                    message: format!("target '{}' is defined twice", t.name),
                });
            }
            if let Some(f) = &t.format {
                f.parse::<SourceFormat>().map_err(|m| ConfigError {
                    path: origin.to_string(),
                    line: None,
                    message: format!("target '{}': {m}", t.name),
                })?;
            }
        }
        Ok(c)
    }

    /// Finds a target by name, or says which exist.
    pub fn target(&self, name: &str) -> Result<&TargetConfig, ConfigError> {
        self.targets
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| ConfigError {
                path: self.path.display().to_string(),
                line: None,
                message: format!(
                    "no target named '{name}' (known: {})",
                    if self.targets.is_empty() {
                        "none".to_string()
                    } else {
                        self.targets
                            .iter()
                            .map(|t| t.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
            })
    }
}

/// Replaces `${VAR}` with the environment's value; a missing variable is an error.
pub fn interpolate(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "unterminated ${ in connection string".to_string())?;
        let var = &after[..end];
        let val =
            std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))?;
        out.push_str(&val);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Looks for `cutover.toml` in the current directory and its parents.
pub fn discover() -> Option<PathBuf> {
    let mut dir = std::env::current_dir().ok()?;
    loop {
        let p = dir.join("cutover.toml");
        if p.is_file() {
            return Some(p);
        }
        if !dir.pop() {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_name_the_line() {
        let e = Config::parse("[[targets]]\nname = \"a\"\nengine = \"postgres\"\nenvironment = \"prod\"\nprimary = \"x\"\nreplica = []\n", "c.toml").unwrap_err();
        assert_eq!(e.line, Some(6), "{e}");
        assert!(e.to_string().contains("unknown field"));
    }

    #[test]
    fn policy_and_console_sections_are_typed() {
        let c = Config::parse(
            "[[policy.people]]\nid = \"alice\"\nrole = \"dba\"\nlocal = [\"alice\"]\n[console]\ntheme = \"light\"\n[console.keys]\npause = \"P\"\n",
            "c.toml",
        )
        .unwrap();
        assert_eq!(c.policy.people[0].id, "alice");
        assert_eq!(c.console.theme.as_deref(), Some("light"));
        let e = Config::parse("[policy]\nbogus = 1\n", "c.toml").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
    }

    #[test]
    fn a_slack_typo_is_an_error_at_load() {
        assert!(Config::parse("[slack]\nchannel = \"C1\"\n", "c.toml").is_ok());
        let e = Config::parse(
            "[rules]\n[slack]\nchannel = \"C1\"\nchanel = \"C2\"\n",
            "c.toml",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        assert!(e.to_string().contains("chanel"), "{e}");
    }

    #[test]
    fn engine_names_the_server_flavour() {
        for (name, want) in [
            ("postgres", Engine::Postgres),
            ("postgresql", Engine::Postgres),
            ("mysql", Engine::Mysql),
            ("mariadb", Engine::Mysql),
        ] {
            let c = Config::parse(
                &format!("[[targets]]\nname = \"a\"\nengine = \"{name}\"\nenvironment = \"dev\"\nprimary = \"x\"\nreplicas = []\n"),
                "c.toml",
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(c.targets[0].engine, want);
        }
        assert!(Config::parse("[[targets]]\nname = \"a\"\nengine = \"oracle\"\nenvironment = \"dev\"\nprimary = \"x\"\nreplicas = []\n", "c.toml").is_err());
    }

    #[test]
    fn interpolates_env() {
        // SAFETY-free: a variable unique to this test.
        assert!(interpolate("x${CUTOVER_TEST_SURELY_UNSET_VAR}").is_err());
        assert_eq!(interpolate("plain").unwrap(), "plain");
    }
}
