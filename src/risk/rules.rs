//! The rule set: `rules.toml` (embedded default, overridable) → [`RuleSet`].
//!
//! Detection lives in Rust; this file's job is the data each rule's verdict is
//! built from — base risk, scaling, message and safe-alternative templates — so
//! an organisation can tune severities without a rebuild.

use crate::model::{Engine, Finding, Risk};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The default rule set, embedded at build time.
pub const DEFAULT_RULES: &str = include_str!("../../rules.toml");

/// One rule's data.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleDef {
    pub engines: Vec<Engine>,
    pub risk: Risk,
    #[serde(default)]
    pub scales: bool,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub message: String,
    #[serde(default)]
    pub safe_alternative: String,
}

fn yes() -> bool {
    true
}

/// Size thresholds above which a table is "large".
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub large_rows: u64,
    pub large_bytes: u64,
    /// A transaction open longer than this (seconds) on a table the plan locks
    /// is a lock-queue risk (`--target` only).
    #[serde(default = "default_old_transaction")]
    pub old_transaction_seconds: u64,
}

fn default_old_transaction() -> u64 {
    60
}

/// Throughput model used for estimates.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Throughput {
    pub scan_mb_per_s: f64,
    pub rewrite_mb_per_s: f64,
    pub index_build_mb_per_s: f64,
    pub dml_rows_per_s: f64,
    pub lock_acquire_seconds: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    thresholds: Option<Thresholds>,
    throughput: Option<Throughput>,
    #[serde(default)]
    rules: BTreeMap<String, RuleDefPatch>,
}

/// An override may change any field of a rule.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RuleDefPatch {
    engines: Option<Vec<Engine>>,
    risk: Option<Risk>,
    scales: Option<bool>,
    enabled: Option<bool>,
    message: Option<String>,
    safe_alternative: Option<String>,
}

/// The rules in force and their digest.
#[derive(Debug, Clone)]
pub struct RuleSet {
    pub rules: BTreeMap<String, RuleDef>,
    pub thresholds: Thresholds,
    pub throughput: Throughput,
    /// SHA-256 over the canonical form of everything above: approvals bind to it.
    pub digest: String,
}

/// A rules file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{origin}{}: {message}", .line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct RulesError {
    pub origin: String,
    pub line: Option<usize>,
    pub message: String,
}

impl RuleSet {
    /// The embedded default rules.
    pub fn default_rules() -> Self {
        // The embedded file is checked by a unit test; failing here is a build defect.
        Self::parse_base(DEFAULT_RULES, "rules.toml (embedded)")
            .unwrap_or_else(|e| panic!("embedded rules.toml is invalid: {e}"))
    }

    fn parse_base(text: &str, origin: &str) -> Result<Self, RulesError> {
        let f: RulesFile = parse_toml(text, origin)?;
        let mut rules = BTreeMap::new();
        for (id, p) in f.rules {
            let def = RuleDef {
                engines: p.engines.ok_or_else(|| missing(origin, &id, "engines"))?,
                risk: p.risk.ok_or_else(|| missing(origin, &id, "risk"))?,
                scales: p.scales.unwrap_or(false),
                enabled: p.enabled.unwrap_or(true),
                message: p.message.ok_or_else(|| missing(origin, &id, "message"))?,
                safe_alternative: p.safe_alternative.unwrap_or_default(),
            };
            rules.insert(id, def);
        }
        let thresholds = f
            .thresholds
            .ok_or_else(|| missing(origin, "", "[thresholds]"))?;
        let throughput = f
            .throughput
            .ok_or_else(|| missing(origin, "", "[throughput]"))?;
        let mut rs = RuleSet {
            rules,
            thresholds,
            throughput,
            digest: String::new(),
        };
        rs.digest = rs.compute_digest();
        Ok(rs)
    }

    /// Applies an override file on top of these rules: known rule ids are patched,
    /// unknown ids are errors (a typo must not silently leave a rule unchanged).
    pub fn with_overrides(mut self, text: &str, origin: &str) -> Result<Self, RulesError> {
        let f: RulesFile = parse_toml(text, origin)?;
        if let Some(t) = f.thresholds {
            self.thresholds = t;
        }
        if let Some(t) = f.throughput {
            self.throughput = t;
        }
        for (id, p) in f.rules {
            let Some(def) = self.rules.get_mut(&id) else {
                return Err(RulesError {
                    origin: origin.to_string(),
                    line: find_line(text, &id),
                    message: format!("unknown rule id '{id}' (see `cutover rules` for the list)"),
                });
            };
            if let Some(v) = p.engines {
                def.engines = v;
            }
            if let Some(v) = p.risk {
                def.risk = v;
            }
            if let Some(v) = p.scales {
                def.scales = v;
            }
            if let Some(v) = p.enabled {
                def.enabled = v;
            }
            if let Some(v) = p.message {
                def.message = v;
            }
            if let Some(v) = p.safe_alternative {
                def.safe_alternative = v;
            }
        }
        self.digest = self.compute_digest();
        Ok(self)
    }

    fn compute_digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(format!("{:?}|{:?}|", self.thresholds, self.throughput).as_bytes());
        for (id, r) in &self.rules {
            h.update(
                format!(
                    "{id}|{:?}|{}|{}|{}|{}|{}\n",
                    r.engines, r.risk, r.scales, r.enabled, r.message, r.safe_alternative
                )
                .as_bytes(),
            );
        }
        hex::encode(h.finalize())
    }

    /// Builds a finding for rule `id` if it is enabled for `engine`.
    ///
    /// `large` applies size scaling; `vars` fill the templates.
    pub fn finding(
        &self,
        id: &str,
        engine: Engine,
        large: bool,
        vars: &[(&str, &str)],
    ) -> Option<Finding> {
        let Some(def) = self.rules.get(id) else {
            // Unknown id in code: still report it, as high, rather than hide it.
            return Some(Finding {
                rule: id.to_string(),
                risk: Risk::High,
                reason: format!("internal: rule '{id}' missing from the rule set"),
                safe_alternative: None,
            });
        };
        if !def.enabled || !def.engines.contains(&engine) {
            return None;
        }
        let risk = if def.scales && !large {
            def.risk.lower()
        } else {
            def.risk
        };
        let alt = fill(&def.safe_alternative, vars);
        Some(Finding {
            rule: id.to_string(),
            risk,
            reason: fill(&def.message, vars),
            safe_alternative: (!alt.trim().is_empty()).then_some(alt),
        })
    }
}

fn missing(origin: &str, id: &str, field: &str) -> RulesError {
    RulesError {
        origin: origin.to_string(),
        line: None,
        message: if id.is_empty() {
            format!("missing {field}")
        } else {
            format!("rule '{id}' is missing '{field}'")
        },
    }
}

fn find_line(text: &str, needle: &str) -> Option<usize> {
    text.lines().position(|l| l.contains(needle)).map(|p| p + 1)
}

/// Parses TOML, turning the error's byte span into a line number.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    text: &str,
    origin: &str,
) -> Result<T, RulesError> {
    toml::from_str(text).map_err(|e| RulesError {
        origin: origin.to_string(),
        line: e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1),
        message: e.message().to_string(),
    })
}

/// Fills `{name}` placeholders; unknown placeholders are left visible.
/// Expands `{name}` placeholders in one pass; unknown ones stay as written.
fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}').and_then(|close| {
            let key = &after[..close];
            vars.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (close, *v))
        }) {
            Some((close, v)) => {
                out.push_str(v);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_expands_known_placeholders_once() {
        assert_eq!(
            fill(
                "{table} {x} {table}{detail}",
                &[("table", "t"), ("detail", "{table}")]
            ),
            "t {x} t{table}"
        );
        assert_eq!(fill("no braces", &[]), "no braces");
        assert_eq!(fill("dangling {", &[("a", "b")]), "dangling {");
    }

    #[test]
    fn embedded_rules_parse() {
        let rs = RuleSet::default_rules();
        assert!(rs.rules.len() > 50);
        assert_eq!(rs.thresholds.large_rows, 1_000_000);
    }

    #[test]
    fn overrides_change_the_digest_and_reject_unknown_ids() {
        let base = RuleSet::default_rules();
        let d0 = base.digest.clone();
        let o = base
            .clone()
            .with_overrides("[rules.drop-column]\nrisk = \"medium\"\n", "o.toml")
            .unwrap();
        assert_ne!(o.digest, d0);
        assert_eq!(o.rules["drop-column"].risk, Risk::Medium);
        let e = base
            .with_overrides("\n[rules.drop-colum]\nrisk = \"low\"\n", "o.toml")
            .unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.to_string().starts_with("o.toml:2: unknown rule id"));
    }

    #[test]
    fn scaling_lowers_on_small_tables() {
        let rs = RuleSet::default_rules();
        let f = rs
            .finding(
                "create-index-blocking",
                Engine::Postgres,
                false,
                &[("table", "t"), ("alt_sql", "x")],
            )
            .unwrap();
        assert_eq!(f.risk, Risk::Medium);
        assert!(
            rs.finding("create-index-blocking", Engine::Mysql, true, &[])
                .is_none()
        );
    }
}
