//! Renderers of a [`crate::model::Plan`]: text for people, JSON for CI, SARIF for
//! code-scanning UIs. All are pure functions of the plan.

pub mod sarif;
pub mod text;

use crate::model::Plan;

/// The stable JSON contract (documented in the README).
pub fn json(plan: &Plan) -> String {
    serde_json::to_string_pretty(plan).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
