//! Builds the driver a migration names from the target's settings, so that
//! a run can mix executors (see [`select`](super::select)). Which controls a
//! driver honours is the driver's own answer (`Executor::capabilities`).

use super::select::{Build, CapsOf, PerMigration};
use super::tool::MyEndpoint;
use super::{Capabilities, ExecError, Executor, ghost, native_mysql, native_pg, ptosc};
use crate::config::TargetConfig;
use crate::migrate::Migration;
use crate::model::Engine;
use std::sync::Arc;

/// One driver for `migrations` on `target`.
pub fn build(
    name: &str,
    target: &TargetConfig,
    migrations: Vec<Migration>,
) -> Result<Box<dyn Executor>, String> {
    let primary = crate::config::interpolate(&target.primary)?;
    let tool_target = || -> Result<(MyEndpoint, Vec<MyEndpoint>), String> {
        if target.engine != Engine::Mysql {
            return Err(format!(
                "{name} runs on MySQL/MariaDB only; target '{}' is {:?}",
                target.name, target.engine
            ));
        }
        let p = MyEndpoint::parse(&primary)?;
        let r = target
            .replicas
            .iter()
            .map(|r| crate::config::interpolate(&r.dsn).and_then(|u| MyEndpoint::parse(&u)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((p, r))
    };
    Ok(match name {
        "native" => match target.engine {
            Engine::Postgres => Box::new(native_pg::NativePg::new(
                &primary,
                migrations,
                native_pg::PgExecOptions::default(),
            )),
            Engine::Mysql => Box::new(native_mysql::NativeMysql::new(
                &primary,
                migrations,
                native_mysql::MyExecOptions::default(),
            )),
        },
        "gh-ost" => {
            let (primary, replicas) = tool_target()?;
            let m = one(name, migrations)?;
            Box::new(ghost::GhostExecutor::new(
                ghost::GhostTarget {
                    binary: "gh-ost".into(),
                    primary,
                    replicas,
                },
                m,
            ))
        }
        "pt-osc" => {
            let (primary, replicas) = tool_target()?;
            let m = one(name, migrations)?;
            Box::new(ptosc::PtOscExecutor::new(
                ptosc::PtOscTarget { primary, replicas },
                m,
            ))
        }
        other => {
            return Err(format!(
                "unknown executor '{other}' (known: native, gh-ost, pt-osc)"
            ));
        }
    })
}

fn one(name: &str, mut ms: Vec<Migration>) -> Result<Migration, String> {
    if ms.len() != 1 {
        return Err(format!(
            "{name} runs one migration at a time, got {}",
            ms.len()
        ));
    }
    Ok(ms.remove(0))
}

/// The controls of driver `name` on `target`, before it runs.
pub fn capabilities(name: &str, target: &TargetConfig) -> Capabilities {
    match name {
        "gh-ost" => ghost::CAPABILITIES,
        "pt-osc" => ptosc::CAPABILITIES,
        _ => build(name, target, Vec::new())
            .map(|e| e.capabilities())
            .unwrap_or(Capabilities {
                pause: false,
                postpone_cut_over: false,
                set_chunk_size: false,
                set_max_lag: false,
                lag_throttle: false,
            }),
    }
}

/// The run's executor: each migration's directive, else `default`.
pub fn per_migration(default: &str, target: &TargetConfig) -> Result<Box<dyn Executor>, String> {
    // Fail now on a bad URL rather than at start.
    crate::config::interpolate(&target.primary)?;
    let t = target.clone();
    let build: Build = Arc::new(move |name: &str, ms: Vec<Migration>| {
        build(name, &t, ms).map_err(ExecError::Refused)
    });
    let t = target.clone();
    let caps: CapsOf = Arc::new(move |name: &str| capabilities(name, &t));
    Ok(Box::new(PerMigration::new(
        default,
        target.engine,
        build,
        caps,
    )))
}
