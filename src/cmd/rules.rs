//! `cutover rules`: the rules in force.

use super::plan::{InputError, load_rules};
use std::path::Path;

/// Prints one line per rule: id, engines, risk (and whether it scales), enabled.
pub fn run(overrides: Option<&Path>) -> Result<i32, InputError> {
    let rs = load_rules(None, overrides)?;
    println!("{:<36} {:<16} {:<14} ENABLED", "RULE", "ENGINES", "RISK");
    for (id, r) in &rs.rules {
        let engines = r
            .engines
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let risk = if r.scales {
            format!("{} (scales)", r.risk)
        } else {
            r.risk.to_string()
        };
        println!(
            "{id:<36} {engines:<16} {risk:<14} {}",
            if r.enabled { "yes" } else { "no" }
        );
    }
    println!("\nrules digest {}", rs.digest);
    Ok(0)
}
