//! The role × command matrix.

use super::config::PermissionsConfig;
use super::identity::{Actor, Identity};
use crate::model::Risk;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A person's role. Unknown actors have no role and may do nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees everything, may do nothing.
    Observer,
    /// Owns the application; approves medium-risk runs, pauses and resumes.
    Owner,
    /// Database administrator: everything.
    Dba,
}

impl Role {
    /// Lowercase name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Observer => "observer",
            Role::Owner => "owner",
            Role::Dba => "dba",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One cell of the matrix. Approval is split by risk so that an owner can
/// approve a medium-risk run but not a high-risk one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Ask for a run to be approved.
    Request,
    /// Approve or reject a low-risk run.
    ApproveLow,
    /// Approve or reject a medium-risk run.
    ApproveMedium,
    /// Approve or reject a high-risk run.
    ApproveHigh,
    /// Override a window or promotion block (with a reason).
    Override,
    /// Start an approved run.
    Start,
    /// Pause a running migration.
    Pause,
    /// Resume a paused migration.
    Resume,
    /// Abort a run.
    Abort,
    /// Proceed with a postponed cut-over.
    CutOver,
    /// Change chunk size or max lag while running.
    Tune,
}

impl Permission {
    /// Every permission (the DBA default).
    pub const ALL: [Permission; 11] = [
        Permission::Request,
        Permission::ApproveLow,
        Permission::ApproveMedium,
        Permission::ApproveHigh,
        Permission::Override,
        Permission::Start,
        Permission::Pause,
        Permission::Resume,
        Permission::Abort,
        Permission::CutOver,
        Permission::Tune,
    ];

    /// The approval permission needed for a run of this risk.
    pub fn approve(risk: Risk) -> Permission {
        match risk {
            Risk::Low => Permission::ApproveLow,
            Risk::Medium => Permission::ApproveMedium,
            Risk::High => Permission::ApproveHigh,
        }
    }

    /// snake_case name, as in config.
    pub fn as_str(&self) -> &'static str {
        match self {
            Permission::Request => "request",
            Permission::ApproveLow => "approve_low",
            Permission::ApproveMedium => "approve_medium",
            Permission::ApproveHigh => "approve_high",
            Permission::Override => "override",
            Permission::Start => "start",
            Permission::Pause => "pause",
            Permission::Resume => "resume",
            Permission::Abort => "abort",
            Permission::CutOver => "cut_over",
            Permission::Tune => "tune",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `role` holds `permission` under the matrix; `None` (unknown actor) never does.
pub fn allowed(matrix: &PermissionsConfig, role: Option<Role>, permission: Permission) -> bool {
    role.is_some_and(|r| matrix.of(r).contains(&permission))
}

/// Why `who` (acting as `actor`) may not `permission`, naming the
/// `cutover.toml` key that would change the answer: someone unknown needs a
/// `[[policy.people]]` entry, someone known needs a role that holds it.
pub fn refusal(
    matrix: &PermissionsConfig,
    actor: &Actor,
    who: &Identity,
    permission: Permission,
) -> String {
    match who.role {
        None => {
            let hint = match actor {
                Actor::Local { user } => format!(
                    "{actor} is not a configured person: add a `[[policy.people]]` entry \
                     with `local = [\"{user}\"]` and a `role` that may {permission}"
                ),
                Actor::Slack { user, .. } => format!(
                    "{actor} is not a configured person: add a `[[policy.people]]` entry \
                     with `slack = \"{user}\"` and a `role` that may {permission}, \
                     or a `[[policy.groups]]` group they belong to"
                ),
                Actor::System => "cutover itself holds no role".to_string(),
            };
            format!(
                "{} (no role) is not allowed to {permission}: {hint}",
                who.name
            )
        }
        Some(role) => {
            let holders: Vec<&str> = [Role::Observer, Role::Owner, Role::Dba]
                .into_iter()
                .filter(|r| matrix.of(*r).contains(&permission))
                .map(|r| r.as_str())
                .collect();
            let who_may = if holders.is_empty() {
                "no role".to_string()
            } else {
                format!("role {}", holders.join(" or "))
            };
            format!(
                "{} (role {role}) is not allowed to {permission}: {who_may} may \
                 (`[policy.permissions]` {role} = [...] lists what {role} may do)",
                who.name
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_the_missing_key() {
        let m = PermissionsConfig::default();
        let policy = crate::policy::PolicyConfig::default();
        let dir = crate::policy::Directory::new(&policy);
        let root = Actor::local("root");
        let r = refusal(&m, &root, &dir.resolve(&root), Permission::Request);
        assert!(
            r.contains("add a `[[policy.people]]` entry with `local = [\"root\"]`"),
            "{r}"
        );
        let u = Actor::slack("T1", "U42");
        let r = refusal(&m, &u, &dir.resolve(&u), Permission::ApproveHigh);
        assert!(r.contains("`slack = \"U42\"`"), "{r}");
        let owner = Identity {
            person: "bob".into(),
            name: "Bob".into(),
            role: Some(Role::Owner),
        };
        let r = refusal(&m, &Actor::local("bob"), &owner, Permission::ApproveHigh);
        assert!(
            r.contains("Bob (role owner) is not allowed to approve_high"),
            "{r}"
        );
        assert!(r.contains("role dba may"), "{r}");
    }

    #[test]
    fn default_matrix_matches_the_documented_defaults() {
        let m = PermissionsConfig::default();
        for p in Permission::ALL {
            assert!(!allowed(&m, Some(Role::Observer), p), "observer {p}");
            assert!(allowed(&m, Some(Role::Dba), p), "dba {p}");
            assert!(!allowed(&m, None, p));
        }
        let owner: Vec<_> = Permission::ALL
            .into_iter()
            .filter(|p| allowed(&m, Some(Role::Owner), *p))
            .collect();
        assert_eq!(
            owner,
            vec![
                Permission::ApproveMedium,
                Permission::Pause,
                Permission::Resume
            ]
        );
    }
}
