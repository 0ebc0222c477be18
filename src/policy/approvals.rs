//! Approvals: what one records, and whether a set of them satisfies policy.
//!
//! An approval binds to a [`Binding`] (plan digest, target). It counts only
//! while the run's binding is the same, it was not given by the requester (the
//! same *person*, whatever the surface), the approver held an allowed role, and
//! it has not expired.

use super::authz::Role;
use super::config::{ApprovalRule, PolicyConfig};
use super::identity::{Actor, Surface};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// What an approval is for: this exact plan on this exact target.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Binding {
    /// `Plan::plan_digest`.
    pub plan_digest: String,
    /// Target name from config.
    pub target: String,
}

/// One migration as approved: its version and checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionChecksum {
    /// Migration version.
    pub version: String,
    /// SHA-256 of the migration.
    pub checksum: String,
}

/// Everything recorded for one approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    /// Person id of the approver.
    pub approver: String,
    /// Display name of the approver.
    pub name: String,
    /// Role held when approving.
    pub role: Role,
    /// The raw actor.
    pub actor: Actor,
    /// Surface it came through.
    pub surface: Surface,
    /// When (UTC).
    pub at: DateTime<Utc>,
    /// The plan digest and target approved.
    pub binding: Binding,
    /// The migrations approved.
    pub versions: Vec<VersionChecksum>,
    /// Where it came from: Slack message ts, or the local tty.
    pub origin: Option<String>,
}

/// How far a run is from satisfying its approval rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalStatus {
    /// Approvals needed (0 when no rule applies).
    pub required: u32,
    /// Roles whose approval counts.
    pub roles: Vec<Role>,
    /// Distinct people whose approval counts now.
    pub counted: Vec<String>,
}

impl ApprovalStatus {
    /// Whether enough approvals are in.
    pub fn satisfied(&self) -> bool {
        self.counted.len() as u64 >= u64::from(self.required)
    }

    /// A sentence for refusals: what is missing.
    pub fn missing(&self) -> String {
        let roles: Vec<&str> = self.roles.iter().map(Role::as_str).collect();
        format!(
            "{} of {} approval(s) from {} (the requester cannot approve)",
            self.counted.len(),
            self.required,
            roles.join(" or ")
        )
    }
}

/// Whether an approval given at `at` still holds at `now`.
pub fn is_fresh(policy: &PolicyConfig, at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now < at + Duration::hours(i64::from(policy.approvals.expire_after_hours))
}

/// Evaluates approvals against a rule (or none) for a binding, a requester and a time.
pub fn evaluate(
    policy: &PolicyConfig,
    rule: Option<&ApprovalRule>,
    approvals: &[ApprovalRecord],
    binding: &Binding,
    requester: Option<&str>,
    now: DateTime<Utc>,
) -> ApprovalStatus {
    let Some(rule) = rule else {
        return ApprovalStatus {
            required: 0,
            roles: Vec::new(),
            counted: Vec::new(),
        };
    };
    let counted: BTreeSet<String> = approvals
        .iter()
        .filter(|a| &a.binding == binding)
        .filter(|a| Some(a.approver.as_str()) != requester)
        .filter(|a| rule.roles.contains(&a.role))
        .filter(|a| is_fresh(policy, a.at, now))
        .map(|a| a.approver.clone())
        .collect();
    ApprovalStatus {
        required: rule.count,
        roles: rule.roles.clone(),
        counted: counted.into_iter().collect(),
    }
}
