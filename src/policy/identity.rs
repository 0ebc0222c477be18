//! Actors (who sent a command, on which surface) and their mapping to people.
//!
//! Self-approval must be caught across surfaces: `local:alice` and
//! `slack:T01/U42` may be the same person, so checks compare the resolved
//! person id, never the raw actor.

use super::authz::Role;
use super::config::PolicyConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Who sent a command, as the surface saw it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Actor {
    /// A local OS user (console, headless CLI, `cutover approve`).
    Local {
        /// OS user name.
        user: String,
    },
    /// A Slack user.
    Slack {
        /// Workspace id (`T…`).
        team: String,
        /// User id (`U…`).
        user: String,
    },
    /// cutover itself: the executor, timers, recovery.
    System,
}

impl Actor {
    /// A local user.
    pub fn local(user: impl Into<String>) -> Actor {
        Actor::Local { user: user.into() }
    }

    /// A Slack user.
    pub fn slack(team: impl Into<String>, user: impl Into<String>) -> Actor {
        Actor::Slack {
            team: team.into(),
            user: user.into(),
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Local { user } => write!(f, "local:{user}"),
            Actor::Slack { team, user } => write!(f, "slack:{team}/{user}"),
            Actor::System => f.write_str("system"),
        }
    }
}

impl From<Actor> for String {
    fn from(a: Actor) -> String {
        a.to_string()
    }
}

impl TryFrom<String> for Actor {
    type Error = String;
    fn try_from(s: String) -> Result<Actor, String> {
        if s == "system" {
            return Ok(Actor::System);
        }
        if let Some(user) = s.strip_prefix("local:").filter(|u| !u.is_empty()) {
            return Ok(Actor::local(user));
        }
        if let Some((team, user)) = s
            .strip_prefix("slack:")
            .and_then(|r| r.split_once('/'))
            .filter(|(t, u)| !t.is_empty() && !u.is_empty())
        {
            return Ok(Actor::slack(team, user));
        }
        Err(format!(
            "bad actor '{s}' (expected local:<user>, slack:<team>/<user> or system)"
        ))
    }
}

/// The surface a command came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Surface {
    /// The terminal console.
    Console,
    /// Slack buttons or slash commands.
    Slack,
    /// A headless CLI invocation (`cutover run --yes`, `cutover approve`).
    Cli,
    /// cutover itself.
    System,
}

/// An actor resolved to a person and role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Person id: the configured id, or the actor string for someone not listed.
    pub person: String,
    /// Display name.
    pub name: String,
    /// Role; `None` for unknown actors.
    pub role: Option<Role>,
}

/// Maps actors to people using the policy and Slack group membership.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    people: Vec<super::config::PersonConfig>,
    groups: Vec<super::config::GroupConfig>,
    /// Group id or handle → member Slack user ids, as fetched by the Slack relay.
    members: BTreeMap<String, Vec<String>>,
}

impl Directory {
    /// A directory from the policy alone (no Slack group membership known yet).
    pub fn new(policy: &PolicyConfig) -> Directory {
        Directory {
            people: policy.people.clone(),
            groups: policy.groups.clone(),
            members: BTreeMap::new(),
        }
    }

    /// Records the members of a Slack group, keyed as in config (`S…` id or handle).
    pub fn set_group_members(&mut self, group: &str, users: Vec<String>) {
        self.members.insert(normalize_group(group), users);
    }

    /// Resolves an actor. Unknown actors get no role.
    pub fn resolve(&self, actor: &Actor) -> Identity {
        let person = self.people.iter().find(|p| match actor {
            Actor::Local { user } => p.local.iter().any(|l| l == user),
            Actor::Slack { user, .. } => p.slack.as_deref() == Some(user.as_str()),
            Actor::System => false,
        });
        let group_role = match actor {
            Actor::Slack { user, .. } => self
                .groups
                .iter()
                .filter(|g| {
                    self.members
                        .get(&normalize_group(&g.slack))
                        .is_some_and(|m| m.iter().any(|u| u == user))
                })
                .map(|g| g.role)
                .max(),
            _ => None,
        };
        match person {
            Some(p) => Identity {
                person: p.id.clone(),
                name: p.name.clone().unwrap_or_else(|| p.id.clone()),
                role: Some(group_role.map_or(p.role, |g| g.max(p.role))),
            },
            None => Identity {
                person: actor.to_string(),
                name: actor.to_string(),
                role: group_role,
            },
        }
    }
}

fn normalize_group(g: &str) -> String {
    g.trim().trim_start_matches('@').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::config::{GroupConfig, PersonConfig};

    fn policy() -> PolicyConfig {
        PolicyConfig {
            people: vec![PersonConfig {
                id: "alice".into(),
                name: Some("Alice A".into()),
                role: Role::Owner,
                local: vec!["alice".into(), "aa".into()],
                slack: Some("U1".into()),
            }],
            groups: vec![GroupConfig {
                slack: "@DBA-team".into(),
                role: Role::Dba,
            }],
            ..PolicyConfig::default()
        }
    }

    #[test]
    fn actor_round_trips_through_its_string_form() {
        for a in [Actor::local("bob"), Actor::slack("T1", "U9"), Actor::System] {
            let s = serde_json::to_string(&a).unwrap_or_default();
            assert_eq!(serde_json::from_str::<Actor>(&s).ok(), Some(a));
        }
        assert!(Actor::try_from("slack:T1".to_string()).is_err());
        assert!(Actor::try_from("local:".to_string()).is_err());
    }

    #[test]
    fn local_and_slack_resolve_to_the_same_person() {
        let mut d = Directory::new(&policy());
        assert_eq!(d.resolve(&Actor::local("aa")).person, "alice");
        assert_eq!(d.resolve(&Actor::slack("T1", "U1")).person, "alice");
        assert_eq!(d.resolve(&Actor::slack("T1", "U1")).role, Some(Role::Owner));
        let stranger = d.resolve(&Actor::slack("T1", "U7"));
        assert_eq!(
            (stranger.person.as_str(), stranger.role),
            ("slack:T1/U7", None)
        );
        d.set_group_members("dba-team", vec!["U7".into(), "U1".into()]);
        assert_eq!(d.resolve(&Actor::slack("T1", "U7")).role, Some(Role::Dba));
        assert_eq!(d.resolve(&Actor::slack("T1", "U1")).role, Some(Role::Dba));
        assert_eq!(d.resolve(&Actor::local("alice")).role, Some(Role::Owner));
    }
}
