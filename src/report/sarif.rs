//! SARIF 2.1.0 output for code-scanning UIs.

use crate::model::{Plan, Risk};
use crate::risk::RuleSet;
use serde_json::{Value, json};

fn level(r: Risk) -> &'static str {
    match r {
        Risk::High => "error",
        Risk::Medium => "warning",
        Risk::Low => "note",
    }
}

/// One result per finding, located at the statement's (or migration's) line.
pub fn render(plan: &Plan, rules: &RuleSet) -> String {
    let mut results: Vec<Value> = Vec::new();
    let mut used: std::collections::BTreeSet<String> = Default::default();
    for m in &plan.migrations {
        let first_line = m.statements.first().map(|s| s.line).unwrap_or(1);
        for f in &m.findings {
            used.insert(f.rule.clone());
            results.push(result(
                &f.rule,
                f.risk,
                &f.reason,
                f.safe_alternative.as_deref(),
                &m.path,
                first_line,
            ));
        }
        for s in &m.statements {
            for f in &s.findings {
                used.insert(f.rule.clone());
                results.push(result(
                    &f.rule,
                    f.risk,
                    &f.reason,
                    f.safe_alternative.as_deref(),
                    &m.path,
                    s.line,
                ));
            }
        }
    }
    let driver_rules: Vec<Value> = used
        .iter()
        .map(|id| {
            let def = rules.rules.get(id);
            json!({
                "id": id,
                "shortDescription": {"text": def.map(|d| d.message.clone()).unwrap_or_default()},
                "defaultConfiguration": {"level": def.map(|d| level(d.risk)).unwrap_or("error")},
            })
        })
        .collect();
    let doc = json!({
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [{
            "tool": {"driver": {
                "name": "cutover",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": driver_rules,
            }},
            "properties": {"plan_digest": plan.plan_digest, "risk": plan.risk},
            "results": results,
        }]
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

fn result(
    rule: &str,
    risk: Risk,
    reason: &str,
    alt: Option<&str>,
    path: &str,
    line: usize,
) -> Value {
    let text = match alt {
        Some(a) => format!("{reason}\nSafer: {a}"),
        None => reason.to_string(),
    };
    json!({
        "ruleId": rule,
        "level": level(risk),
        "message": {"text": text},
        "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": path},
            "region": {"startLine": line.max(1)}
        }}]
    })
}
