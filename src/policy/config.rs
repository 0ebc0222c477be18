//! The `[policy]` section of `cutover.toml`: people and their roles, Slack
//! groups, the role × command matrix, approval rules, change windows and
//! promotion.
//!
//! Every struct denies unknown fields so a typo in a safety setting is an
//! error, not a silently ignored line. `PolicyConfig::default()` is the
//! documented default policy.

use super::authz::{Permission, Role};
use super::windows::{ClockTime, WindowDecision};
use crate::model::Risk;
use chrono::{NaiveDate, Weekday};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The deployment stage a target belongs to; runs are promoted dev → staging → prod.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Developer databases: no approvals by default.
    #[default]
    Dev,
    /// Staging: where a plan must succeed before it may run in prod.
    Staging,
    /// Production.
    Prod,
}

impl Environment {
    /// The lowercase name used in config and output.
    pub fn as_str(&self) -> &'static str {
        match self {
            Environment::Dev => "dev",
            Environment::Staging => "staging",
            Environment::Prod => "prod",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Embed as `#[serde(default)] policy: PolicyConfig` in the config root, i.e.
/// TOML `[policy]`, `[[policy.people]]`, `[[policy.groups]]`,
/// `[policy.permissions]`, `[policy.approvals]`, `[[policy.approvals.rules]]`,
/// `[policy.windows]`, `[policy.promotion]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// People and their role; one person may act from several surfaces.
    pub people: Vec<PersonConfig>,
    /// Slack user groups whose members get a role.
    pub groups: Vec<GroupConfig>,
    /// The role × command matrix.
    pub permissions: PermissionsConfig,
    /// How many approvals each environment and risk needs, and for how long they hold.
    pub approvals: ApprovalsConfig,
    /// Peak periods, freezes and maintenance windows.
    pub windows: WindowsConfig,
    /// Environment promotion.
    pub promotion: PromotionConfig,
    /// OS group whose members may use a run's control socket (a second local
    /// approver, an observer's `attach`). Unset: the socket is owner-only.
    pub local_group: Option<String>,
}

/// One person: the unit self-approval is checked against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonConfig {
    /// Stable id used in the trail, e.g. `alice`.
    pub id: String,
    /// Display name; the id when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// The person's role.
    pub role: Role,
    /// Local OS user names that are this person.
    #[serde(default)]
    pub local: Vec<String>,
    /// Slack user id (`U…`/`W…`) of this person.
    #[serde(default)]
    pub slack: Option<String>,
}

/// A Slack user group granting a role to its members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// Group id (`S…`) or handle (`@dba-team` or `dba-team`).
    pub slack: String,
    /// Role of every member.
    pub role: Role,
}

/// What each role may do. Defaults: observer nothing; owner approve medium,
/// pause, resume; dba everything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PermissionsConfig {
    /// Observer permissions.
    pub observer: Vec<Permission>,
    /// Owner permissions.
    pub owner: Vec<Permission>,
    /// DBA permissions.
    pub dba: Vec<Permission>,
}

impl Default for PermissionsConfig {
    fn default() -> Self {
        PermissionsConfig {
            observer: Vec::new(),
            owner: vec![
                Permission::ApproveMedium,
                Permission::Pause,
                Permission::Resume,
            ],
            dba: Permission::ALL.to_vec(),
        }
    }
}

impl PermissionsConfig {
    /// The permissions of a role.
    pub fn of(&self, role: Role) -> &[Permission] {
        match role {
            Role::Observer => &self.observer,
            Role::Owner => &self.owner,
            Role::Dba => &self.dba,
        }
    }
}

/// Approval requirements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalsConfig {
    /// Requirement per environment and risk; a pair with no rule needs no approval.
    pub rules: Vec<ApprovalRule>,
    /// Approvals lapse when the run has not started this long after them.
    pub expire_after_hours: u32,
    /// Start an approved run by itself when its window opens.
    pub auto_start_in_window: bool,
    /// Accept approvals given locally (`cutover approve RUN`), not only from Slack.
    pub allow_local: bool,
}

impl Default for ApprovalsConfig {
    fn default() -> Self {
        ApprovalsConfig {
            rules: vec![
                ApprovalRule {
                    environment: Environment::Prod,
                    risk: Risk::High,
                    count: 1,
                    roles: vec![Role::Dba],
                },
                ApprovalRule {
                    environment: Environment::Prod,
                    risk: Risk::Medium,
                    count: 1,
                    roles: vec![Role::Dba, Role::Owner],
                },
            ],
            expire_after_hours: 24,
            auto_start_in_window: false,
            allow_local: true,
        }
    }
}

/// `count` approvals from distinct people holding one of `roles`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRule {
    /// Environment the rule applies to.
    pub environment: Environment,
    /// Risk level the rule applies to.
    pub risk: Risk,
    /// Distinct approvers needed.
    pub count: u32,
    /// Roles whose approval counts.
    pub roles: Vec<Role>,
}

/// Change windows, in one time zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WindowsConfig {
    /// IANA time zone the recurring windows and freeze dates are written in.
    pub timezone: String,
    /// Weekly peak-traffic periods.
    pub peak: Vec<RecurringWindow>,
    /// Weekly maintenance windows; suggested when a run is blocked.
    pub maintenance: Vec<RecurringWindow>,
    /// Change freezes.
    pub freezes: Vec<Freeze>,
    /// Decision per risk during a peak period.
    pub during_peak: RiskDecisions,
    /// Decision per risk during a freeze.
    pub during_freeze: RiskDecisions,
    /// What happens to a running migration when its window closes.
    pub on_close: CloseAction,
}

impl Default for WindowsConfig {
    fn default() -> Self {
        WindowsConfig {
            timezone: "UTC".to_string(),
            peak: Vec::new(),
            maintenance: Vec::new(),
            freezes: Vec::new(),
            during_peak: RiskDecisions::default(),
            during_freeze: RiskDecisions::default(),
            on_close: CloseAction::Warn,
        }
    }
}

/// A weekly recurring period in local time; `end` before `start` crosses midnight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecurringWindow {
    /// Shown in messages, e.g. `weekday lunch peak`.
    #[serde(default)]
    pub name: Option<String>,
    /// Days on which the period starts (`mon`, `tue`, …).
    pub days: Vec<Weekday>,
    /// Local start, `HH:MM`.
    pub start: ClockTime,
    /// Local end, `HH:MM`.
    pub end: ClockTime,
}

/// A change freeze over whole local days, both ends inclusive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Freeze {
    /// First frozen day (`"2025-12-20"`).
    pub from: NaiveDate,
    /// Last frozen day.
    pub to: NaiveDate,
    /// Why; shown in every refusal.
    pub reason: String,
}

/// A decision for each risk level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskDecisions {
    /// Low-risk runs.
    pub low: WindowDecision,
    /// Medium-risk runs.
    pub medium: WindowDecision,
    /// High-risk runs.
    pub high: WindowDecision,
}

impl Default for RiskDecisions {
    fn default() -> Self {
        RiskDecisions {
            low: WindowDecision::Allow,
            medium: WindowDecision::Warn,
            high: WindowDecision::Block,
        }
    }
}

impl RiskDecisions {
    /// The decision for a risk level.
    pub fn for_risk(&self, risk: Risk) -> WindowDecision {
        match risk {
            Risk::Low => self.low,
            Risk::Medium => self.medium,
            Risk::High => self.high,
        }
    }
}

/// Policy for a run still going when its window closes. It is never killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CloseAction {
    /// Warn on every surface and keep going.
    #[default]
    Warn,
    /// Warn and pause the executor.
    Pause,
}

/// Environment promotion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PromotionConfig {
    /// A prod run needs the same plan digest to have succeeded on staging.
    pub require_staging_for_prod: bool,
}

impl Default for PromotionConfig {
    fn default() -> Self {
        PromotionConfig {
            require_staging_for_prod: true,
        }
    }
}

impl PolicyConfig {
    /// The approval rule for an environment and risk, if any.
    pub fn approval_rule(&self, env: Environment, risk: Risk) -> Option<&ApprovalRule> {
        self.approvals
            .rules
            .iter()
            .find(|r| r.environment == env && r.risk == risk && r.count > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Root {
        #[serde(default)]
        policy: PolicyConfig,
    }

    #[test]
    fn the_documented_toml_parses_and_typos_are_errors() {
        let text = r#"
[policy.approvals]
expire_after_hours = 12
auto_start_in_window = true

[[policy.approvals.rules]]
environment = "prod"
risk = "high"
count = 2
roles = ["dba"]

[[policy.people]]
id = "alice"
name = "Alice Adams"
role = "dba"
local = ["alice"]
slack = "U024BE7LH"

[[policy.groups]]
slack = "S0614TZR7"
role = "owner"

[policy.permissions]
owner = ["request", "approve_medium", "pause", "resume"]

[policy.windows]
timezone = "Europe/Berlin"
on_close = "pause"
during_peak = { low = "allow", medium = "block", high = "block" }

[[policy.windows.peak]]
days = ["mon", "tue", "wed", "thu", "fri"]
start = "09:00"
end = "18:00"

[[policy.windows.freezes]]
from = "2025-12-20"
to = "2026-01-04"
reason = "year-end"
"#;
        let root: Result<Root, _> = toml::from_str(text);
        let p = root.map(|r| r.policy).map_err(|e| e.to_string());
        let p = match p {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(p.approvals.expire_after_hours, 12);
        assert_eq!(
            p.approval_rule(Environment::Prod, Risk::High)
                .map(|r| r.count),
            Some(2)
        );
        assert_eq!(p.windows.peak[0].days.len(), 5);
        assert_eq!(
            p.windows.during_peak.medium,
            crate::policy::WindowDecision::Block
        );
        assert!(p.promotion.require_staging_for_prod);
        assert!(toml::from_str::<Root>("[policy.approvals]\nexpire_after_hour = 1\n").is_err());
        assert!(toml::from_str::<Root>("[policy.windows]\npeak = [{ days = [\"mon\"], start = \"25:00\", end = \"01:00\" }]\n").is_err());
        let empty: Result<Root, _> = toml::from_str("");
        assert_eq!(empty.map(|r| r.policy).ok(), Some(PolicyConfig::default()));
    }
}
