//! `cutover verify`: the plan, then each statement probed on a non-production
//! target (see `crate::verify`).

use super::plan::{InputError, build_all};
use crate::cli::VerifyArgs;
use crate::config::{self, Config, Stage};
use crate::model::Engine;
use crate::verify::{self, Probe, VerifyOptions, VerifyReport};

/// Builds the plan against the target and verifies it there.
pub fn report(args: &VerifyArgs) -> Result<VerifyReport, InputError> {
    let Some(name) = args.opts.target.as_deref() else {
        return Err(InputError(
            "verify needs --target: a staging (or dev) target it may write scratch copies to"
                .into(),
        ));
    };
    let cfg_path = args
        .opts
        .config
        .clone()
        .or_else(config::discover)
        .ok_or_else(|| {
            InputError(format!(
                "--target {name}: no cutover.toml found (use --config)"
            ))
        })?;
    let cfg = Config::load(&cfg_path).map_err(|e| InputError(e.to_string()))?;
    let target = cfg
        .target(name)
        .map_err(|e| InputError(e.to_string()))?
        .clone();
    if target.environment == Stage::Prod {
        return Err(InputError(format!(
            "target '{name}' is a production target (environment = \"prod\"): verify runs the statements and copies tables, so it only runs on staging or dev"
        )));
    }
    let mut opts = args.opts.clone();
    opts.config = Some(cfg_path);
    // Never prod, so never calibrated: the default history is never read.
    let (plan, _rules, migrations) = build_all(&opts, &Default::default())?;
    let mut probes = Vec::new();
    for (mi, mv) in plan.migrations.iter().enumerate() {
        let Some(m) = migrations
            .iter()
            .find(|m| m.version == mv.version && m.path.display().to_string() == mv.path)
        else {
            continue;
        };
        for (si, raw) in m.statements.iter().enumerate() {
            probes.push(Probe {
                migration: mi,
                statement: si,
                sql: raw.sql.clone(),
                op: crate::sql::analyze::analyze(&raw.sql, m.engine).op,
            });
        }
    }
    let dsn = config::interpolate(&target.primary)
        .map_err(|m| InputError(format!("target '{name}': {m}")))?;
    let vopts = VerifyOptions {
        sample_rows: args.sample_rows,
        lock_timeout_ms: args.lock_timeout_ms,
        ..VerifyOptions::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| InputError(e.to_string()))?;
    let (version, outcomes, leftovers) = rt
        .block_on(async {
            match target.engine {
                Engine::Postgres => verify::pg::verify(&dsn, &plan, &probes, &vopts).await,
                Engine::Mysql => verify::mysql::verify(&dsn, &probes, &vopts).await,
            }
        })
        .map_err(|e| InputError(format!("target '{name}': {e}")))?;
    Ok(verify::assemble(&plan, name, &version, outcomes, leftovers))
}

/// `cutover verify`: exit 0 when staging agrees with the plan, 1 on a
/// disagreement, a failed statement or scratch work left behind.
pub fn run(args: &VerifyArgs) -> Result<i32, InputError> {
    let r = report(args)?;
    match args.format.as_str() {
        "json" => println!(
            "{}",
            serde_json::to_string_pretty(&r).map_err(|e| InputError(e.to_string()))?
        ),
        _ => println!("{}", verify::render::text(&r).trim_end()),
    }
    Ok(
        if r.disagreements > 0 || r.failed > 0 || !r.leftovers.is_empty() {
            1
        } else {
            0
        },
    )
}
