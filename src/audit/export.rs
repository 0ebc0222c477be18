//! `cutover audit export`: records as JSON or CSV for compliance (pure renderer).

use super::chain::VerifiedEntry;
use super::entry::Entry;
use super::show::describe;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// A JSON array of rows, each with the full record.
    Json,
    /// CSV with a header row.
    Csv,
}

#[derive(Serialize)]
struct Row<'a> {
    n: u64,
    tag: &'a str,
    at: Option<DateTime<Utc>>,
    run: &'a str,
    seq: Option<u64>,
    actor: String,
    event: &'a str,
    summary: String,
    entry: &'a Entry,
}

fn rows(entries: &[VerifiedEntry], since: Option<DateTime<Utc>>) -> Vec<Row<'_>> {
    entries
        .iter()
        .filter_map(|e| {
            let row = match &e.entry {
                Entry::Run { record } => Row {
                    n: e.n,
                    tag: &e.tag,
                    at: Some(record.at),
                    run: &record.run,
                    seq: Some(record.seq),
                    actor: record.actor.to_string(),
                    event: record.event.name(),
                    summary: describe(&record.event),
                    entry: &e.entry,
                },
                Entry::Relay { record } => Row {
                    n: e.n,
                    tag: &e.tag,
                    at: Some(record.at),
                    run: &record.run,
                    seq: None,
                    actor: record.actor.to_string(),
                    event: "relay_refused",
                    summary: format!("relay refused {}: {}", record.command, record.reason),
                    entry: &e.entry,
                },
                Entry::Forgotten {
                    at,
                    by,
                    run,
                    phase,
                    removed,
                } => Row {
                    n: e.n,
                    tag: &e.tag,
                    at: Some(*at),
                    run,
                    seq: None,
                    actor: by.clone(),
                    event: "forgotten",
                    summary: format!("forgotten ({phase}): removed {removed}"),
                    entry: &e.entry,
                },
                Entry::Sealed {
                    at,
                    by,
                    problem,
                    reason,
                    ..
                } => Row {
                    n: e.n,
                    tag: &e.tag,
                    at: Some(*at),
                    run: "",
                    seq: None,
                    actor: by.clone(),
                    event: "sealed",
                    summary: format!("{problem} (reason: {reason})"),
                    entry: &e.entry,
                },
                Entry::TornTailRepaired { line, bytes, .. } => Row {
                    n: e.n,
                    tag: &e.tag,
                    at: None,
                    run: "",
                    seq: None,
                    actor: "system".to_string(),
                    event: "torn_tail_repaired",
                    summary: format!("torn line {line} ({bytes} bytes) moved aside"),
                    entry: &e.entry,
                },
            };
            // Trail notes have no time: keep them so gaps are explained.
            match (since, row.at) {
                (Some(s), Some(at)) if at < s => None,
                _ => Some(row),
            }
        })
        .collect()
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Renders records at or after `since` in `format`.
pub fn export(
    entries: &[VerifiedEntry],
    format: ExportFormat,
    since: Option<DateTime<Utc>>,
) -> String {
    let rows = rows(entries, since);
    match format {
        ExportFormat::Json => {
            serde_json::to_string_pretty(&rows).unwrap_or_else(|_| "[]".into()) + "\n"
        }
        ExportFormat::Csv => {
            let mut out = String::from("n,at,run,seq,actor,event,summary,tag\n");
            for r in rows {
                let fields = [
                    r.n.to_string(),
                    r.at.map(|a| a.to_rfc3339()).unwrap_or_default(),
                    r.run.to_string(),
                    r.seq.map(|s| s.to_string()).unwrap_or_default(),
                    r.actor,
                    r.event.to_string(),
                    r.summary,
                    r.tag.to_string(),
                ];
                let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
                out.push_str(&line.join(","));
                out.push('\n');
            }
            out
        }
    }
}
