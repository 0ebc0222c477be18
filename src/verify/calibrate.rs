//! Rehearsal calibration: a successful `cutover run` on staging measured how
//! long its work really took; `plan --target prod` (and so the ETAs of a prod
//! run) use that throughput per operation kind instead of the model's guess.
//!
//! The staging history is the audit trail: a staging run's `Created` (its
//! estimate), `Started`, pauses and `Succeeded` are HMAC-chained records, read
//! only when the chain verifies, because estimates decide whether a run fits
//! a change window. The run's `plan.json` says which kind of work the estimate
//! was made of; it is used only when its estimates add up to the trail's.
//! One kind must dominate a run's estimate (≥ 80%) for the run to calibrate it,
//! and small work (under 32 MB, or 100,000 rows) measures mostly overhead.

use crate::audit::Entry;
use crate::model::{Engine, Plan, StatementVerdict};
use crate::risk::rules::Throughput;
use crate::run::Event;
use crate::sql::ops::{Action, ConstraintKind, Op};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// Least work that calibrates: MB for copies, builds and scans…
pub const MIN_MB: f64 = 32.0;
/// …and rows for backfills.
pub const MIN_ROWS: f64 = 100_000.0;
/// Share of a run's estimate one kind must hold to be measured by it.
pub const DOMINANT_SHARE: f64 = 0.8;

/// Kinds of work the estimate model has a throughput for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    Rewrite,
    IndexBuild,
    Scan,
    Dml,
}

impl OpKind {
    pub fn label(self) -> &'static str {
        match self {
            OpKind::Rewrite => "copy/rewrite",
            OpKind::IndexBuild => "index build",
            OpKind::Scan => "validation scan",
            OpKind::Dml => "backfill",
        }
    }
}

/// The kind of work a planned statement does, from its verdict.
pub fn kind_of(v: &StatementVerdict, engine: Engine) -> Option<OpKind> {
    let op = crate::sql::analyze::analyze(&v.sql, engine).op;
    match &op {
        Op::CreateIndex { .. } | Op::Reindex { .. } => return Some(OpKind::IndexBuild),
        Op::Update { .. } | Op::Delete { .. } | Op::Insert { .. } => return Some(OpKind::Dml),
        _ => {}
    }
    if v.rewrites_table {
        return Some(OpKind::Rewrite);
    }
    let Op::AlterTable { actions, .. } = &op else {
        return None;
    };
    let builds = actions.iter().any(|a| {
        matches!(
            a,
            Action::AddConstraint {
                kind: ConstraintKind::Unique
                    | ConstraintKind::PrimaryKey
                    | ConstraintKind::Index(_),
                ..
            }
        )
    });
    let scans = actions.iter().any(|a| {
        matches!(
            a,
            Action::ValidateConstraint { .. }
                | Action::SetNotNull { .. }
                | Action::AddConstraint {
                    kind: ConstraintKind::Check { .. } | ConstraintKind::ForeignKey { .. },
                    ..
                }
        )
    });
    if builds {
        Some(OpKind::IndexBuild)
    } else if scans {
        Some(OpKind::Scan)
    } else {
        None
    }
}

/// A staging run that succeeded, as the trail tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct StagingRun {
    pub run: String,
    pub target: String,
    pub digest: String,
    pub estimated_seconds: f64,
    /// Executing time: start to success, minus pauses and waits for a cut-over.
    pub seconds: f64,
    pub ended: DateTime<Utc>,
}

/// Succeeded staging runs, oldest first.
pub fn staging_runs<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Vec<StagingRun> {
    struct Acc {
        staging: bool,
        target: String,
        digest: String,
        estimated: f64,
        started: Option<DateTime<Utc>>,
        held_since: Option<DateTime<Utc>>,
        held: f64,
    }
    let mut runs: BTreeMap<String, Acc> = BTreeMap::new();
    let mut out = Vec::new();
    for e in entries {
        let Entry::Run { record } = e else { continue };
        let at = record.at;
        if let Event::Created { spec } = &record.event {
            runs.insert(
                record.run.clone(),
                Acc {
                    staging: spec.environment == crate::policy::Environment::Staging,
                    target: spec.binding.target.clone(),
                    digest: spec.binding.plan_digest.clone(),
                    estimated: spec.estimated_seconds,
                    started: None,
                    held_since: None,
                    held: 0.0,
                },
            );
            continue;
        }
        let Some(a) = runs.get_mut(&record.run) else {
            continue;
        };
        let secs = |from: DateTime<Utc>| (at - from).num_milliseconds() as f64 / 1000.0;
        match &record.event {
            Event::Started { .. } => a.started = Some(at),
            Event::Paused | Event::ReadyToCutOver => {
                a.held_since.get_or_insert(at);
            }
            Event::Resumed | Event::CuttingOver => {
                if let Some(h) = a.held_since.take() {
                    a.held += secs(h);
                }
            }
            Event::PlanRevised { binding, .. } => a.digest = binding.plan_digest.clone(),
            Event::Succeeded => {
                if let (true, Some(s)) = (a.staging, a.started) {
                    out.push(StagingRun {
                        run: record.run.clone(),
                        target: a.target.clone(),
                        digest: a.digest.clone(),
                        estimated_seconds: a.estimated,
                        seconds: (secs(s) - a.held).max(0.0),
                        ended: at,
                    });
                }
            }
            _ => {}
        }
    }
    out
}

/// What one staging run measured: seconds per unit (MB, or rows for DML).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measured {
    pub kind: OpKind,
    pub run: String,
    pub target: String,
    /// MB (or rows) the work processed, from the estimate and the rates used.
    pub amount: f64,
    pub seconds: f64,
}

/// Seconds the model gives one unit of `kind` under `tp`.
fn secs_per_unit(kind: OpKind, tp: &Throughput) -> f64 {
    match kind {
        OpKind::Rewrite => 1.0 / tp.rewrite_mb_per_s,
        OpKind::IndexBuild => 1.0 / tp.scan_mb_per_s + 1.0 / tp.index_build_mb_per_s,
        OpKind::Scan => 1.0 / tp.scan_mb_per_s,
        OpKind::Dml => 1.0 / tp.dml_rows_per_s,
    }
}

/// The measurement of a staging run whose plan is `plan`, estimated with `used`.
pub fn measure(run: &StagingRun, plan: &Plan, used: &Throughput) -> Option<Measured> {
    if plan.plan_digest != run.digest {
        return None;
    }
    let mut per_kind: BTreeMap<OpKind, f64> = BTreeMap::new();
    let mut total = 0.0;
    for m in &plan.migrations {
        for s in &m.statements {
            let e = s.estimate.map(|e| e.duration_seconds).unwrap_or(0.0);
            total += e;
            if let Some(k) = kind_of(s, m.engine) {
                *per_kind.entry(k).or_default() += e;
            }
        }
    }
    // The run's own (trail) estimate must be what plan.json says.
    if total <= 0.0 || (total - run.estimated_seconds).abs() > 0.01 * total.max(1.0) {
        return None;
    }
    let (kind, est) = per_kind.into_iter().max_by(|a, b| a.1.total_cmp(&b.1))?;
    if est / total < DOMINANT_SHARE {
        return None;
    }
    // The rest is taken as estimated; what remains is this kind's.
    let seconds = run.seconds - (total - est);
    let amount = est / secs_per_unit(kind, used);
    let least = if kind == OpKind::Dml {
        MIN_ROWS
    } else {
        MIN_MB
    };
    if seconds <= 0.0 || amount < least {
        return None;
    }
    Some(Measured {
        kind,
        run: run.run.clone(),
        target: run.target.clone(),
        amount,
        seconds,
    })
}

/// Throughput with the measured kinds replaced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    pub measured: Vec<Measured>,
}

impl Calibration {
    /// `base` with each measured kind's rate set from its measurement.
    pub fn apply(&self, base: Throughput) -> Throughput {
        let mut tp = base;
        for m in &self.measured {
            let spu = m.seconds / m.amount;
            match m.kind {
                OpKind::Rewrite => tp.rewrite_mb_per_s = 1.0 / spu,
                OpKind::Scan => tp.scan_mb_per_s = 1.0 / spu,
                OpKind::Dml => tp.dml_rows_per_s = 1.0 / spu,
                OpKind::IndexBuild => {
                    // A build is a scan plus the build proper: keep the scan rate.
                    let build = spu - 1.0 / tp.scan_mb_per_s;
                    if build > 0.0 {
                        tp.index_build_mb_per_s = 1.0 / build;
                    } else {
                        tp.scan_mb_per_s = 2.0 / spu;
                        tp.index_build_mb_per_s = 2.0 / spu;
                    }
                }
            }
        }
        tp
    }

    /// Says so in `plan`'s notes (those of its history check on `target`).
    pub fn note(&self, plan: &mut Plan, target: &str) {
        plan.history
            .get_or_insert_with(|| crate::model::HistoryCheck {
                target: target.to_string(),
                ..Default::default()
            })
            .notes
            .push(self.describe());
    }

    /// "calibrated from staging run r1 (copy/rewrite 85.3 MB/s on staging)".
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .measured
            .iter()
            .map(|m| {
                let rate = m.amount / m.seconds;
                let unit = if m.kind == OpKind::Dml {
                    "rows/s"
                } else {
                    "MB/s"
                };
                format!(
                    "calibrated from staging run {} ({} {rate:.1} {unit} on {})",
                    m.run,
                    m.kind.label(),
                    m.target
                )
            })
            .collect();
        format!("estimates {}", parts.join("; "))
    }
}

/// The newest measurement per kind among staging runs of `engine`.
/// `plan_of` reads a run's `plan.json`; `used` is the throughput a staging
/// target's estimates were made with (`None`: not a target of this engine).
pub fn from_history(
    runs: &[StagingRun],
    plan_of: impl Fn(&str) -> Option<Plan>,
    used: impl Fn(&str) -> Option<Throughput>,
) -> Option<Calibration> {
    let mut by_kind: BTreeMap<OpKind, Measured> = BTreeMap::new();
    for r in runs.iter().rev() {
        let Some(tp) = used(&r.target) else { continue };
        let Some(plan) = plan_of(&r.run) else {
            continue;
        };
        if let Some(m) = measure(r, &plan, &tp) {
            by_kind.entry(m.kind).or_insert(m);
        }
    }
    (!by_kind.is_empty()).then(|| Calibration {
        measured: by_kind.into_values().collect(),
    })
}

/// The throughput a target's estimates use: its own figures over the
/// model's, then what staging measured (`measure` gets the model's figures
/// and answers only for prod). One rule for `plan` and the supervisor, so a
/// run estimates as its plan did.
pub fn target_throughput(
    model: Throughput,
    target: &crate::config::TargetConfig,
    measure: impl FnOnce(Throughput) -> Option<Calibration>,
) -> (Throughput, Option<Calibration>) {
    let own = target.throughput.unwrap_or(model);
    match measure(model) {
        Some(c) => (c.apply(own), Some(c)),
        None => (own, None),
    }
}

/// Where staging rehearsals are recorded: the trail, the run directories and
/// the key that verifies the trail. Prod estimates are calibrated from them,
/// so they must be the ones the runs wrote (a service's, or `--trail`'s), not
/// whatever `.cutover/` happens to be in the working directory.
#[derive(Debug, Clone)]
pub struct StagingHistory {
    pub trail: std::path::PathBuf,
    pub runs: std::path::PathBuf,
    pub key_file: Option<std::path::PathBuf>,
}

impl Default for StagingHistory {
    fn default() -> Self {
        StagingHistory {
            trail: ".cutover/audit.jsonl".into(),
            runs: ".cutover/runs".into(),
            key_file: None,
        }
    }
}

/// Calibration for a plan on `target` (prod only), from the trail at
/// `trail` (verified with the audit key) and run directories under `runs`.
/// `None` when there is nothing trustworthy to calibrate from.
pub fn for_target(
    cfg: Option<&crate::config::Config>,
    target: &crate::config::TargetConfig,
    default_tp: Throughput,
    history: &StagingHistory,
) -> Option<Calibration> {
    if target.environment != crate::config::Stage::Prod || !history.trail.exists() {
        return None;
    }
    let key = crate::audit::AuditKey::load(history.key_file.as_deref()).ok()?;
    let (entries, report) = crate::audit::chain::read_file(&history.trail, &key).ok()?;
    if !report.ok() {
        return None;
    }
    from_trail(
        cfg,
        target,
        default_tp,
        entries.iter().map(|v| &v.entry),
        &history.runs,
    )
}

/// [`for_target`] over entries already read and verified (the supervisor's).
pub fn from_trail<'a>(
    cfg: Option<&crate::config::Config>,
    target: &crate::config::TargetConfig,
    default_tp: Throughput,
    entries: impl IntoIterator<Item = &'a Entry>,
    runs_dir: &std::path::Path,
) -> Option<Calibration> {
    if target.environment != crate::config::Stage::Prod {
        return None;
    }
    let runs = staging_runs(entries);
    from_history(
        &runs,
        |run| {
            let text = std::fs::read(runs_dir.join(run).join("plan.json")).ok()?;
            serde_json::from_slice(&text).ok()
        },
        |name| {
            let t = cfg?.targets.iter().find(|t| t.name == name)?;
            (t.engine == target.engine).then(|| t.throughput.unwrap_or(default_tp))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Blocks, Estimate, Lock, MigrationVerdict, Risk};

    fn tp() -> Throughput {
        Throughput {
            scan_mb_per_s: 200.0,
            rewrite_mb_per_s: 60.0,
            index_build_mb_per_s: 80.0,
            dml_rows_per_s: 50_000.0,
            lock_acquire_seconds: 0.05,
        }
    }

    fn stmt(sql: &str, rewrites: bool, secs: f64) -> StatementVerdict {
        StatementVerdict {
            index: 0,
            line: 1,
            sql: sql.into(),
            risk: Risk::High,
            lock: Lock {
                mode: "x".into(),
                blocks: Blocks::Writes,
                table: Some("t".into()),
                other_locks: vec![],
            },
            rewrites_table: rewrites,
            estimate: Some(Estimate {
                lock_seconds: secs,
                duration_seconds: secs,
            }),
            findings: vec![],
        }
    }

    fn plan(stmts: Vec<StatementVerdict>) -> Plan {
        Plan {
            format_version: 1,
            plan_digest: "d1".into(),
            rules_digest: String::new(),
            engine_version: "postgres-15".into(),
            risk: Risk::High,
            migrations: vec![MigrationVerdict {
                version: "1".into(),
                description: String::new(),
                path: String::new(),
                checksum: String::new(),
                engine: Engine::Postgres,
                format: "plain".into(),
                executor: None,
                risk: Risk::High,
                findings: vec![],
                statements: stmts,
            }],
            history: None,
        }
    }

    fn run(estimated: f64, seconds: f64) -> StagingRun {
        StagingRun {
            run: "stg-1".into(),
            target: "staging".into(),
            digest: "d1".into(),
            estimated_seconds: estimated,
            seconds,
            ended: Utc::now(),
        }
    }

    #[test]
    fn a_rewrite_twice_as_slow_halves_the_rewrite_rate() {
        // 10 s estimated at 60 MB/s = 600 MB; it took 20 s (plus 0.05 s of metadata).
        let p = plan(vec![
            stmt("ALTER TABLE t ALTER COLUMN c TYPE bigint", true, 10.0),
            stmt("ALTER TABLE t ADD COLUMN x int", false, 0.05),
        ]);
        let m = measure(&run(10.05, 20.05), &p, &tp()).unwrap();
        assert_eq!(m.kind, OpKind::Rewrite);
        assert!((m.amount - 600.0).abs() < 1e-6);
        let c = Calibration { measured: vec![m] };
        let out = c.apply(tp());
        assert!((out.rewrite_mb_per_s - 30.0).abs() < 1e-6, "{out:?}");
        assert_eq!(out.scan_mb_per_s, 200.0);
        assert!(
            c.describe()
                .contains("calibrated from staging run stg-1 (copy/rewrite 30.0 MB/s on staging)"),
            "{}",
            c.describe()
        );
    }

    #[test]
    fn an_index_build_keeps_the_scan_rate() {
        let p = plan(vec![stmt("CREATE INDEX i ON t (c)", false, 9.0)]);
        // 9 s at 1/200 + 1/80 s per MB = 514.3 MB; took 18 s.
        let m = measure(&run(9.0, 18.0), &p, &tp()).unwrap();
        assert_eq!(m.kind, OpKind::IndexBuild);
        let out = Calibration {
            measured: vec![m.clone()],
        }
        .apply(tp());
        let per_mb = 1.0 / out.scan_mb_per_s + 1.0 / out.index_build_mb_per_s;
        assert!((per_mb * m.amount - 18.0).abs() < 1e-6);
        assert_eq!(out.scan_mb_per_s, 200.0);
    }

    #[test]
    fn mixed_short_or_mismatched_runs_do_not_calibrate() {
        let mixed = plan(vec![
            stmt("ALTER TABLE t ALTER COLUMN c TYPE bigint", true, 5.0),
            stmt("CREATE INDEX i ON t (c)", false, 5.0),
        ]);
        assert!(
            measure(&run(10.0, 30.0), &mixed, &tp()).is_none(),
            "no kind dominates"
        );
        let p = plan(vec![stmt("CREATE INDEX i ON t (c)", false, 0.2)]);
        assert!(
            measure(&run(0.2, 0.5), &p, &tp()).is_none(),
            "too little work"
        );
        let p = plan(vec![stmt("CREATE INDEX i ON t (c)", false, 9.0)]);
        assert!(
            measure(&run(4.0, 18.0), &p, &tp()).is_none(),
            "plan.json disagrees with the trail"
        );
        let mut other = run(9.0, 18.0);
        other.digest = "d2".into();
        assert!(measure(&other, &p, &tp()).is_none(), "another plan");
    }

    #[test]
    fn newest_run_per_kind_wins() {
        let p = plan(vec![stmt(
            "ALTER TABLE t ALTER COLUMN c TYPE bigint",
            true,
            10.0,
        )]);
        let mut old = run(10.0, 40.0);
        old.run = "old".into();
        let new = run(10.0, 20.0);
        let c = from_history(&[old, new], |_| Some(p.clone()), |_| Some(tp())).unwrap();
        assert_eq!(c.measured.len(), 1);
        assert_eq!(c.measured[0].run, "stg-1");
        assert!(from_history(&[run(10.0, 20.0)], |_| Some(p.clone()), |_| None).is_none());
    }
}
