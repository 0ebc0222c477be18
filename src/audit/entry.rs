//! What a trail record holds.

use crate::policy::{Actor, Environment, Surface};
use crate::run::{CommandKind, Event, EventRecord};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One record's payload.
// Nearly every entry is a run event; boxing it would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    /// An event of a run.
    Run {
        /// The event.
        record: EventRecord,
    },
    /// A refusal by a relay that no run could record: a click for a run the
    /// relay does not serve, or for a run whose core has ended.
    Relay {
        /// The refusal.
        record: RelayRecord,
    },
    /// A torn last line (a crash mid-append) was moved aside on open.
    TornTailRepaired {
        /// 1-based record number the torn line would have had.
        line: u64,
        /// Its length in bytes.
        bytes: u64,
        /// SHA-256 of its bytes.
        sha256: String,
        /// Where it was moved.
        quarantine: String,
    },
    /// `cutover forget RUN`: a finished (or never started) run's leftovers on
    /// this machine (run directory, socket, supervisor) were removed. Its
    /// records stay; this says who removed what, and when.
    Forgotten {
        /// When (UTC).
        at: DateTime<Utc>,
        /// Who (OS user).
        by: String,
        /// The run.
        run: String,
        /// Its state when forgotten.
        phase: String,
        /// The directory removed.
        removed: String,
    },
    /// `cutover audit repair`: damage found in the trail, sealed by an
    /// operator. Nothing is deleted or rewritten: damaged lines stay where
    /// they are, covered by this record's count and digest, and the head the
    /// side file claimed is kept here.
    Sealed {
        /// When (UTC).
        at: DateTime<Utc>,
        /// Who (OS user).
        by: String,
        /// The written reason.
        reason: String,
        /// What verification found.
        problem: String,
        /// Records that verified before the damage.
        records_kept: u64,
        /// Complete lines after them that do not verify (left in place).
        damaged_lines: u64,
        /// SHA-256 of those lines' bytes.
        damaged_sha256: String,
        /// The `.head` side file as found (`None`: missing).
        old_head: Option<String>,
    },
}

/// A relay's own record (see [`Entry::Relay`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelayRecord {
    /// When (UTC).
    pub at: DateTime<Utc>,
    /// Who clicked.
    pub actor: Actor,
    /// Surface.
    pub surface: Surface,
    /// The run id the click named.
    pub run: String,
    /// The command the click asked for.
    pub command: CommandKind,
    /// Why it was refused.
    pub reason: String,
    /// Transport de-duplication key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup: Option<String>,
}

/// Executors whose success is a real rehearsal (the simulator proves nothing).
const REAL_EXECUTORS: &[&str] = &["native", "gh-ost", "pt-osc"];

/// Plan digests that succeeded on a staging target, for the promotion rule.
/// Only real rehearsals count: a run on a staging environment with a real
/// executor.
pub fn staging_successes<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> BTreeSet<String> {
    // Per run: its environment and current digest (plan revisions move it).
    let mut runs: BTreeMap<&str, (Environment, String)> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for e in entries {
        let Entry::Run { record } = e else { continue };
        match &record.event {
            Event::Created { spec } if REAL_EXECUTORS.contains(&spec.executor.as_str()) => {
                runs.insert(
                    &record.run,
                    (spec.environment, spec.binding.plan_digest.clone()),
                );
            }
            Event::PlanRevised { binding, .. } => {
                if let Some(r) = runs.get_mut(record.run.as_str()) {
                    r.1 = binding.plan_digest.clone();
                }
            }
            Event::Succeeded => {
                if let Some((Environment::Staging, digest)) = runs.get(record.run.as_str()) {
                    out.insert(digest.clone());
                }
            }
            _ => {}
        }
    }
    out
}
