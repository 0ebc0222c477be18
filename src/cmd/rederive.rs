//! What a supervisor runs, re-derived from what it can trust.
//!
//! `run.json` is written by whoever started the run (the requester, outside
//! service mode), so it holds only what cannot be re-derived: which target,
//! which versions, and the digest the requester expects. Everything that
//! decides whether and how a run may go — risk, environment, executor,
//! checksums, digest — is derived again from the approved bytes in the run
//! directory, the rules and cutover.toml, at every supervisor start. A
//! difference from what the trail recorded refuses the run, naming the field.

use super::plan::{InputError, load_rules};
use crate::catalog;
use crate::config::{Config, Stage, TargetConfig};
use crate::exec::stored;
use crate::migrate::Migration;
use crate::model::{Engine, EngineVersion, Plan};
use crate::policy::Environment;
use crate::risk::{self, Context};
use crate::run::RunSpec;
use std::path::{Path, PathBuf};

/// The real executors: only these count as rehearsals and may run configured targets.
pub const REAL_EXECUTORS: &[&str] = &["native", "gh-ost", "pt-osc"];

/// A run's environment from its target's stage.
pub fn environment(s: Stage) -> Environment {
    match s {
        Stage::Dev => Environment::Dev,
        Stage::Staging => Environment::Staging,
        Stage::Prod => Environment::Prod,
    }
}

/// The executor a target names (native by default).
pub fn executor_name(target: &TargetConfig) -> String {
    target.executor.clone().unwrap_or_else(|| "native".into())
}

/// Folds the target's default executor into the plan digest. The digest
/// already covers each migration's `executor=` directive; the target's
/// default decides how every other migration runs, so switching a target
/// from gh-ost to native after approval must void the approval too (not
/// only be caught by a field check). Every planner with a target calls it
/// (`cutover plan --target`, `cutover run`, the supervisor), so they agree.
pub fn bind_target_executor(plan: &mut Plan, target: &TargetConfig) {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(plan.plan_digest.as_bytes());
    h.update(b"\ntarget-executor:");
    h.update(executor_name(target).as_bytes());
    plan.plan_digest = hex::encode(h.finalize());
}

/// A run's spec, derived.
pub struct Derived {
    /// What approvals bind to.
    pub spec: RunSpec,
    /// The plan of the stored migrations.
    pub plan: Plan,
    /// The migrations, from the approved bytes.
    pub migrations: Vec<Migration>,
}

/// Staging rehearsals recorded in a verified trail, and where their run
/// directories are: what prod estimates are calibrated from.
#[derive(Clone, Copy)]
pub struct Rehearsals<'a> {
    pub entries: &'a [crate::audit::Entry],
    pub runs: &'a Path,
}

/// Derives the spec of running `versions` (stored in `run_dir`) on `target`.
pub fn derive(
    run_dir: &Path,
    cfg: &Config,
    target: &str,
    versions: &[String],
    rules: Option<&PathBuf>,
    rehearsals: Option<Rehearsals<'_>>,
) -> Result<Derived, InputError> {
    let target = cfg
        .target(target)
        .map_err(|e| InputError(e.to_string()))?
        .clone();
    let migrations =
        stored::load(run_dir, target.engine, versions).map_err(|e| InputError(e.to_string()))?;
    let mut rules = load_rules(Some(cfg), rules.map(|p| p.as_path()))?;
    // The same staging calibration `cutover run` planned with, so the
    // supervisor's pre-flight and window check use the estimates shown.
    let (tp, calibration) =
        crate::verify::calibrate::target_throughput(rules.throughput, &target, |model| {
            let r = rehearsals?;
            crate::verify::calibrate::from_trail(Some(cfg), &target, model, r.entries, r.runs)
        });
    rules.throughput = tp;
    let dsn = crate::config::interpolate(&target.primary)
        .map_err(|m| InputError(format!("target '{}': {m}", target.name)))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| InputError(e.to_string()))?;
    let catalog = rt
        .block_on(catalog::live::read(target.engine, &dsn, &target.name))
        .map_err(|e| InputError(e.to_string()))?;
    let mut pg_version = EngineVersion::default_for(Engine::Postgres);
    let mut mysql_version = EngineVersion::default_for(Engine::Mysql);
    if let Some(v) = catalog.server_version {
        match v.engine() {
            Engine::Postgres => pg_version = v,
            Engine::Mysql => mysql_version = v,
        }
    }
    let ctx = Context {
        rules: &rules,
        catalog: &catalog,
        pg_version,
        mysql_version,
    };
    let mut plan = risk::classify(&migrations, &ctx);
    if let Some(c) = &calibration {
        c.note(&mut plan, &target.name);
    }
    bind_target_executor(&mut plan, &target);
    let spec = RunSpec::from_plan(
        &plan,
        &target.name,
        environment(target.environment),
        &executor_name(&target),
    );
    Ok(Derived {
        spec,
        plan,
        migrations,
    })
}

/// The first field where `derived` differs from what the trail `recorded`
/// for the run. Risk may only have been recorded higher (a table that grew
/// since is no reason to refuse, a lower recorded risk is), and is compared
/// only before the run `started`: after that the live tables reflect the
/// run's own changes, and the risk it was approved at governs.
pub fn mismatch(recorded: &RunSpec, derived: &RunSpec, started: bool) -> Option<String> {
    let r = recorded;
    let d = derived;
    let field = |name: &str, a: &dyn std::fmt::Display, b: &dyn std::fmt::Display| {
        Some(format!(
            "{name}: the trail recorded {a}, the approved bytes, rules and cutover.toml give {b}"
        ))
    };
    if r.binding.target != d.binding.target {
        return field("target", &r.binding.target, &d.binding.target);
    }
    if r.versions != d.versions {
        let show = |v: &RunSpec| {
            v.versions
                .iter()
                .map(|x| format!("{}@{}", x.version, &x.checksum[..12.min(x.checksum.len())]))
                .collect::<Vec<_>>()
                .join(",")
        };
        return field("versions", &show(r), &show(d));
    }
    if r.binding.plan_digest != d.binding.plan_digest {
        return field(
            "plan digest",
            &r.binding.plan_digest,
            &d.binding.plan_digest,
        );
    }
    if r.environment != d.environment {
        return field("environment", &r.environment, &d.environment);
    }
    if r.executor != d.executor {
        return field("executor", &r.executor, &d.executor);
    }
    if !started && r.risk < d.risk {
        return field("risk", &r.risk, &d.risk);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Risk;
    use crate::policy::Binding;
    use crate::policy::approvals::VersionChecksum;

    fn spec() -> RunSpec {
        RunSpec {
            binding: Binding {
                plan_digest: "d".repeat(64),
                target: "prod".into(),
            },
            environment: Environment::Prod,
            risk: Risk::High,
            versions: vec![VersionChecksum {
                version: "1".into(),
                checksum: "c".repeat(64),
            }],
            estimated_seconds: 1.0,
            tables: vec![],
            executor: "native".into(),
        }
    }

    #[test]
    fn names_the_first_field_that_differs() {
        let r = spec();
        assert_eq!(mismatch(&r, &spec(), false), None);
        let mut d = spec();
        d.risk = Risk::Low;
        // Recorded higher than derived: the stricter record stands.
        assert_eq!(mismatch(&r, &d, false), None);
        let mut low = spec();
        low.risk = Risk::Low;
        assert!(mismatch(&low, &spec(), false).is_some_and(|m| m.starts_with("risk")));
        // Once started, the live tables reflect the run itself: the record governs.
        assert_eq!(mismatch(&low, &spec(), true), None);
        let mut d = spec();
        d.environment = Environment::Staging;
        assert!(mismatch(&r, &d, false).is_some_and(|m| m.starts_with("environment")));
        let mut d = spec();
        d.executor = "sim".into();
        assert!(mismatch(&r, &d, true).is_some_and(|m| m.starts_with("executor")));
        let mut d = spec();
        d.versions[0].checksum = "e".repeat(64);
        assert!(mismatch(&r, &d, true).is_some_and(|m| m.starts_with("versions")));
    }
}
