//! The optional `[console]` section of `cutover.toml`.

use super::keys::{Action, KeySpec};
use serde::Deserialize;
use std::collections::BTreeMap;

/// `[console]`: theme, key bindings, mouse.
///
/// ```toml
/// [console]
/// theme = "high-contrast"     # or a path to a .toml file
/// [console.keys]
/// pause = "P"
/// detach = ["q", "f10"]
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Theme name or file (`--theme` wins).
    pub theme: Option<String>,
    /// Key overrides per action; an overridden action loses its default keys.
    pub keys: BTreeMap<Action, KeySpec>,
    /// Capture the mouse (off by default so terminal selection keeps working).
    pub mouse: bool,
}
