//! `cutover runs` and `cutover forget RUN`: what runs this project has, and
//! removing a finished one's leftovers on this machine.
//!
//! Both read the audit trail (verified), not the run directories: a run's
//! state is a fold of its records, and a directory the requester can edit
//! says nothing trustworthy about it.

use super::Outcome;
use super::plan::InputError;
use crate::audit::{AuditKey, Entry, Trail};
use crate::run::{Event, Phase, RunState};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One row of `cutover runs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRow {
    pub id: String,
    pub target: String,
    pub environment: String,
    pub state: String,
    /// When the run was created (its first record).
    pub created: Option<DateTime<Utc>>,
    /// When it was started, if it was.
    pub started: Option<DateTime<Utc>>,
    pub requester: Option<String>,
    /// A supervisor holds its run directory now.
    pub supervisor: bool,
    /// Its run directory is still on this machine.
    pub directory: bool,
}

/// The rows, oldest first, from the runs' records.
pub fn rows(
    records: &std::collections::BTreeMap<String, Vec<crate::run::EventRecord>>,
    runs_dir: &Path,
) -> Vec<RunRow> {
    let mut out: Vec<RunRow> = records
        .iter()
        .map(|(id, recs)| {
            let st = RunState::replay(recs);
            let spec = st.spec.as_ref();
            let dir = runs_dir.join(id);
            RunRow {
                id: id.clone(),
                target: spec.map(|s| s.binding.target.clone()).unwrap_or_default(),
                environment: spec.map(|s| s.environment.to_string()).unwrap_or_default(),
                state: st.phase.to_string(),
                created: recs.first().map(|r| r.at),
                started: recs
                    .iter()
                    .find(|r| matches!(r.event, Event::Started { .. }))
                    .map(|r| r.at),
                requester: recs.iter().find_map(|r| match &r.event {
                    Event::Requested { person, .. } => Some(person.clone()),
                    _ => None,
                }),
                supervisor: dir.is_dir() && crate::supervisor::is_running(&dir),
                directory: dir.is_dir(),
            }
        })
        .collect();
    out.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
    out
}

/// The table `cutover runs` prints.
pub fn render(rows: &[RunRow]) -> String {
    if rows.is_empty() {
        return "no runs in this trail\n".into();
    }
    let w = rows.iter().map(|r| r.id.len()).max().unwrap_or(2).max(2);
    let t = |d: Option<DateTime<Utc>>| {
        d.map(|d| d.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_else(|| "-".into())
    };
    let mut s = format!(
        "{:<w$}  {:<16} {:<18} {:<16}  {:<16}  {:<12} {}\n",
        "RUN", "TARGET", "STATE", "CREATED", "STARTED", "REQUESTER", "ON THIS MACHINE"
    );
    for r in rows {
        let here = match (r.supervisor, r.directory) {
            (true, _) => "supervisor running",
            (false, true) => "run directory",
            (false, false) => "-",
        };
        s.push_str(&format!(
            "{:<w$}  {:<16} {:<18} {:<16}  {:<16}  {:<12} {here}\n",
            r.id,
            format!("{} ({})", r.target, r.environment),
            r.state,
            t(r.created),
            t(r.started),
            r.requester.as_deref().unwrap_or("-"),
        ));
    }
    s
}

pub(crate) fn records_by_run(
    trail: &Path,
    key: &AuditKey,
) -> Result<std::collections::BTreeMap<String, Vec<crate::run::EventRecord>>, InputError> {
    let mut out: std::collections::BTreeMap<String, Vec<crate::run::EventRecord>> =
        Default::default();
    if !trail.exists() {
        return Ok(out);
    }
    let (entries, report) =
        crate::audit::read_file(trail, key).map_err(|e| InputError(e.to_string()))?;
    if let Some(p) = &report.problem {
        return Err(InputError(format!(
            "audit trail {} does not verify: {p}",
            trail.display()
        )));
    }
    for e in entries {
        if let Entry::Run { record } = e.entry {
            out.entry(record.run.clone()).or_default().push(record);
        }
    }
    Ok(out)
}

/// `cutover runs`.
pub fn list(a: &crate::cli::RunsArgs) -> Result<i32, InputError> {
    let rows = match crate::serve::client::socket(&a.service, None) {
        Some(service) => crate::serve::client::runs(&service)?,
        None => {
            let key =
                AuditKey::load(a.key_file.as_deref()).map_err(|e| InputError(e.to_string()))?;
            rows(&records_by_run(&a.trail, &key)?, &a.runs)
        }
    };
    if a.format == crate::cli::LineFormat::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).map_err(|e| InputError(e.to_string()))?
        );
    } else {
        print!("{}", render(&rows));
    }
    Ok(0)
}

/// Whether a run in `phase` may be forgotten: ended, or never started (a
/// refused or abandoned request). A run that executed and did not end may
/// have work on the database: it is resumed or aborted, never forgotten.
pub fn may_forget(phase: Phase) -> bool {
    phase.is_terminal() || phase.is_pre_start()
}

/// `cutover forget RUN`: through the service when one is configured.
pub fn forget(a: &crate::cli::ForgetArgs) -> Result<i32, InputError> {
    if let Some(service) = crate::serve::client::socket(&a.service, None) {
        return crate::serve::client::forget(&service, &a.run);
    }
    let key = AuditKey::load(a.key_file.as_deref()).map_err(|e| InputError(e.to_string()))?;
    let by = crate::supervisor::peer::current_user();
    // Single-user mode: whoever owns the files may remove them.
    Ok(forget_in(&a.trail, key, &a.runs, &a.run, &by, |_| Ok(()))?.print())
}

/// Forgets `run` (recorded first, then its directory under `runs` removed)
/// when it ended or never started and `may` allows `by` to.
pub fn forget_in(
    trail_path: &Path,
    key: AuditKey,
    runs: &Path,
    run: &str,
    by: &str,
    may: impl FnOnce(&RunState) -> Result<(), String>,
) -> Result<Outcome, InputError> {
    let records = records_by_run(trail_path, &key)?;
    let dir: PathBuf = runs.join(run);
    let Some(recs) = records.get(run) else {
        return Err(InputError(format!(
            "run {run}: not in the trail {} (see `cutover runs`)",
            trail_path.display()
        )));
    };
    let state = RunState::replay(recs);
    let phase = state.phase;
    if !may_forget(phase) {
        return Ok(Outcome::refused(format!(
            "run {run} is {phase}: it may have work in progress on the database. Resume it (`cutover resume {run}`) or abort it (`cutover abort {run} --reason …`) first."
        )));
    }
    if let Err(why) = may(&state) {
        return Ok(Outcome::refused(why));
    }
    if !dir.exists() {
        return Ok(Outcome::said(format!(
            "run {run} ({phase}) has nothing left on this machine\n"
        )));
    }
    // The supervisor of an ended or unstarted run exits when its directory
    // goes; the record comes first, so a removal is never unrecorded.
    let (mut trail, _) = Trail::open(trail_path, key).map_err(|e| InputError(e.to_string()))?;
    trail
        .append(&Entry::Forgotten {
            at: Utc::now(),
            by: by.to_string(),
            run: run.to_string(),
            phase: phase.to_string(),
            removed: dir.display().to_string(),
        })
        .map_err(|e| InputError(e.to_string()))?;
    std::fs::remove_dir_all(&dir).map_err(|e| InputError(format!("{}: {e}", dir.display())))?;
    for _ in 0..100 {
        if !crate::supervisor::socket_path(&dir).exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Ok(Outcome::said(format!(
        "run {run} ({phase}) forgotten: removed {}\n",
        dir.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ended_or_unstarted_runs_may_be_forgotten() {
        for p in [
            Phase::Succeeded,
            Phase::Failed,
            Phase::Aborted,
            Phase::Planned,
            Phase::AwaitingApproval,
        ] {
            assert!(may_forget(p), "{p}");
        }
        for p in [
            Phase::Running,
            Phase::Paused,
            Phase::Throttled,
            Phase::ReadyToCutOver,
            Phase::Interrupted,
        ] {
            assert!(!may_forget(p), "{p}");
        }
    }
}
