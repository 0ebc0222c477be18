//! `-- cutover: key=value …` directive comments inside migration files.
//!
//! Directives say what the SQL alone cannot: which executor should apply the
//! migration (`executor=gh-ost`), a declared batched backfill, or an explicit
//! transaction mode. Unknown keys are errors, so a typo never silently changes how
//! a production migration runs.

use super::MigrateError;
use crate::model::Engine;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A declared batched backfill: `-- cutover: backfill table=t set="c = 0" key=id batch=2s`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackfillDirective {
    pub table: String,
    /// The assignment list, e.g. `status = 'new'`.
    pub set: String,
    pub key: String,
    /// Optional extra predicate (`where=`), e.g. `status IS NULL`.
    pub predicate: Option<String>,
    /// Target time per chunk in seconds.
    pub batch_seconds: f64,
    pub line: usize,
}

/// Everything the `-- cutover:` comments of one migration declare.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Directives {
    pub executor: Option<String>,
    pub engine: Option<Engine>,
    /// `transaction=none` forces statements to run as written; `whole` wraps them.
    pub transaction: Option<String>,
    pub backfills: Vec<BackfillDirective>,
    /// Other accepted keys (e.g. executor options such as `chunk-size`).
    pub options: BTreeMap<String, String>,
}

const EXECUTORS: &[&str] = &["native", "gh-ost", "pt-osc", "sim"];
const OPTION_KEYS: &[&str] = &[
    "chunk-size",
    "max-lag",
    "postpone-cut-over",
    "alter",
    "table",
];

/// Reads the directives in `text`; `first_line` is the line number of its first line.
pub fn parse(text: &str, path: &str, first_line: usize) -> Result<Directives, MigrateError> {
    let mut d = Directives::default();
    for (n, raw) in text.lines().enumerate() {
        let line = first_line + n;
        let t = raw.trim_start();
        let Some(rest) = t.strip_prefix("--").map(str::trim_start) else {
            continue;
        };
        let Some(body) = rest.strip_prefix("cutover:") else {
            continue;
        };
        let err = |message: String| MigrateError::Syntax {
            path: path.to_string(),
            line,
            message,
        };
        let words = tokenize(body).map_err(|m| err(m.to_string()))?;
        let mut iter = words.into_iter().peekable();
        if iter.peek().map(|w| w.as_str()) == Some("backfill") {
            iter.next();
            let kv: BTreeMap<String, String> = iter
                .map(|w| {
                    split_kv(&w).ok_or_else(|| err(format!("expected key=value, found '{w}'")))
                })
                .collect::<Result<_, _>>()?;
            d.backfills.push(backfill(&kv, line).map_err(err)?);
            continue;
        }
        for w in iter {
            let (k, v) =
                split_kv(&w).ok_or_else(|| err(format!("expected key=value, found '{w}'")))?;
            match k.as_str() {
                "executor" => {
                    if !EXECUTORS.contains(&v.as_str()) {
                        return Err(err(format!(
                            "unknown executor '{v}' (expected one of {})",
                            EXECUTORS.join(", ")
                        )));
                    }
                    d.executor = Some(v);
                }
                "engine" => d.engine = Some(v.parse().map_err(err)?),
                "transaction" => {
                    if v != "none" && v != "whole" {
                        return Err(err(format!("transaction must be none or whole, not '{v}'")));
                    }
                    d.transaction = Some(v);
                }
                k if OPTION_KEYS.contains(&k) => {
                    d.options.insert(k.to_string(), v);
                }
                other => {
                    return Err(err(format!(
                        "unknown cutover directive '{other}' (known: executor, engine, transaction, backfill, {})",
                        OPTION_KEYS.join(", ")
                    )));
                }
            }
        }
    }
    Ok(d)
}

fn backfill(kv: &BTreeMap<String, String>, line: usize) -> Result<BackfillDirective, String> {
    for k in kv.keys() {
        if !["table", "set", "key", "where", "batch"].contains(&k.as_str()) {
            return Err(format!(
                "unknown backfill key '{k}' (known: table, set, key, where, batch)"
            ));
        }
    }
    let get = |k: &str| {
        kv.get(k)
            .cloned()
            .ok_or_else(|| format!("backfill needs {k}="))
    };
    let batch = kv.get("batch").map(String::as_str).unwrap_or("1s");
    let batch_seconds = parse_seconds(batch)
        .ok_or_else(|| format!("batch must be a duration like 500ms or 2s, not '{batch}'"))?;
    Ok(BackfillDirective {
        table: get("table")?,
        set: get("set")?,
        key: get("key")?,
        predicate: kv.get("where").cloned(),
        batch_seconds,
        line,
    })
}

/// `500ms`, `2s`, `1.5s`, `3` (seconds).
pub fn parse_seconds(s: &str) -> Option<f64> {
    let s = s.trim();
    let (num, mul) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.trim().parse().ok()?;
    (v.is_finite() && v > 0.0).then_some(v * mul)
}

fn split_kv(w: &str) -> Option<(String, String)> {
    let (k, v) = w.split_once('=')?;
    (!k.is_empty()).then(|| (k.to_ascii_lowercase(), v.to_string()))
}

/// Splits on whitespace; double quotes group words (`set="a = 1"`).
fn tokenize(s: &str) -> Result<Vec<String>, &'static str> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_q = false;
    for c in s.chars() {
        match c {
            '"' => in_q = !in_q,
            c if c.is_whitespace() && !in_q => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if in_q {
        return Err("unterminated double quote in cutover directive");
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_executor_and_backfill() {
        let d = parse(
            "-- cutover: executor=gh-ost chunk-size=500\nALTER TABLE t ADD c int;\n-- cutover: backfill table=t set=\"c = 0\" key=id batch=500ms where=\"c IS NULL\"\n",
            "m.sql",
            1,
        )
        .unwrap();
        assert_eq!(d.executor.as_deref(), Some("gh-ost"));
        assert_eq!(d.options.get("chunk-size").map(String::as_str), Some("500"));
        let b = &d.backfills[0];
        assert_eq!(
            (b.table.as_str(), b.set.as_str(), b.key.as_str(), b.line),
            ("t", "c = 0", "id", 3)
        );
        assert!((b.batch_seconds - 0.5).abs() < 1e-9);
        assert_eq!(b.predicate.as_deref(), Some("c IS NULL"));
    }

    #[test]
    fn unknown_keys_name_the_line() {
        let e = parse("\n-- cutover: exector=gh-ost\n", "m.sql", 1).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("m.sql:2: unknown cutover directive 'exector'"),
            "{e}"
        );
        let e = parse("-- cutover: executor=ghost\n", "m.sql", 1).unwrap_err();
        assert!(e.to_string().contains("unknown executor"));
    }
}
