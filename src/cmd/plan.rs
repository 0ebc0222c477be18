//! `cutover plan` and `cutover demo`: options → migrations + facts + rules → plan.

use crate::catalog::{self, Catalog};
use crate::cli::{Format, PlanArgs, PlanOpts};
use crate::config::{self, Config};
use crate::migrate::{self, LoadOptions};
use crate::model::{Engine, EngineVersion, Finding, HistoryCheck, MigrationVerdict, Plan, Risk};
use crate::report;
use crate::risk::{self, Context, RuleSet};
use std::path::{Path, PathBuf};

/// Bad input or usage: exit code 2, message names file:line where it can.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

fn input<E: std::fmt::Display>(e: E) -> InputError {
    InputError(e.to_string())
}

/// Loads the rule set: built-in, then cutover.toml's `[rules] path`, then `--rules`.
pub fn load_rules(cfg: Option<&Config>, cli: Option<&Path>) -> Result<RuleSet, InputError> {
    let mut rs = RuleSet::default_rules();
    if let Some(c) = cfg
        && let Some(p) = &c.rules.path
    {
        let p = c.path.parent().unwrap_or(Path::new(".")).join(p);
        let text =
            std::fs::read_to_string(&p).map_err(|e| InputError(format!("{}: {e}", p.display())))?;
        rs = rs
            .with_overrides(&text, &p.display().to_string())
            .map_err(input)?;
    }
    if let Some(p) = cli {
        let text =
            std::fs::read_to_string(p).map_err(|e| InputError(format!("{}: {e}", p.display())))?;
        rs = rs
            .with_overrides(&text, &p.display().to_string())
            .map_err(input)?;
    }
    Ok(rs)
}

pub use crate::verify::calibrate::StagingHistory;

/// Builds the plan for the given options.
pub fn build(opts: &PlanOpts) -> Result<(Plan, RuleSet), InputError> {
    build_inner(opts, false, &StagingHistory::default()).map(|(p, r, _)| (p, r))
}

/// Builds the plan and returns the migrations it classified (what a run
/// executes); estimates are calibrated from `history`.
pub fn build_all(
    opts: &PlanOpts,
    history: &StagingHistory,
) -> Result<(Plan, RuleSet, Vec<migrate::Migration>), InputError> {
    build_inner(opts, true, history)
}

fn build_inner(
    opts: &PlanOpts,
    keep_text: bool,
    history: &StagingHistory,
) -> Result<(Plan, RuleSet, Vec<migrate::Migration>), InputError> {
    let cfg_path = opts.config.clone().or_else(config::discover);
    let cfg = match &cfg_path {
        Some(p) => Some(Config::load(p).map_err(input)?),
        None => None,
    };
    let mut rules = load_rules(cfg.as_ref(), opts.rules.as_deref())?;
    let target = match &opts.target {
        Some(name) => {
            let c = cfg.as_ref().ok_or_else(|| {
                InputError(format!(
                    "--target {name}: no cutover.toml found (use --config)"
                ))
            })?;
            Some(c.target(name).map_err(input)?.clone())
        }
        None => None,
    };
    // Prod estimates use what staging rehearsals measured (crate::verify::calibrate).
    let mut calibration = None;
    if let Some(t) = &target {
        let (tp, c) = crate::verify::calibrate::target_throughput(rules.throughput, t, |model| {
            crate::verify::calibrate::for_target(cfg.as_ref(), t, model, history)
        });
        rules.throughput = tp;
        calibration = c;
    }
    let version = opts
        .engine_version
        .as_deref()
        .map(|v| EngineVersion::parse(v).map_err(|e| InputError(format!("--engine-version {e}"))))
        .transpose()?;
    // The engine the user named beats a guess from the files' syntax; a
    // version names its engine too.
    let engine: Option<Engine> = match (&opts.engine, &target, &version) {
        (Some(e), _, _) => Some(e.parse().map_err(InputError)?),
        (None, Some(t), _) => Some(t.engine),
        (None, None, Some(v)) => Some(v.engine()),
        _ => None,
    };
    let format = opts
        .source_format
        .as_deref()
        .or(target.as_ref().and_then(|t| t.format.as_deref()))
        .map(|f| f.parse().map_err(InputError))
        .transpose()?;
    let mut migrations =
        migrate::load_paths(&opts.paths, &LoadOptions { engine, format }).map_err(input)?;
    let plan_engine = engine
        .or_else(|| migrations.first().map(|m| m.engine))
        .unwrap_or(Engine::Postgres);

    let mut history = None;
    let catalog = if let Some(t) = &target {
        let dsn = config::interpolate(&t.primary)
            .map_err(|m| InputError(format!("target '{}': {m}", t.name)))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(input)?;
        // A server that accepts but never answers must not hang the plan.
        const HISTORY_TIMEOUT: u64 = 15;
        let h = rt
            .block_on(async {
                tokio::time::timeout(
                    std::time::Duration::from_secs(HISTORY_TIMEOUT),
                    crate::exec::history::read_all(t.engine, &dsn),
                )
                .await
                .unwrap_or_else(|_| Err(crate::dberror::timed_out(t.engine, &dsn, HISTORY_TIMEOUT)))
            })
            .map_err(|e| {
                InputError(format!(
                    "target '{}': reading the migration history tables: {e}",
                    t.name
                ))
            })?;
        let (pending, check) = split_by_history(migrations, &h, &t.name);
        migrations = pending;
        history = Some(check);
        rt.block_on(catalog::live::read(t.engine, &dsn, &t.name))
            .map_err(input)?
    } else if let Some(p) = &opts.stats {
        let text =
            std::fs::read_to_string(p).map_err(|e| InputError(format!("{}: {e}", p.display())))?;
        catalog::load_stats(&text, &p.display().to_string(), plan_engine).map_err(input)?
    } else {
        Catalog::empty(plan_engine)
    };

    if !keep_text {
        // Only a run needs the files' text (to store what it executes, and the
        // history check above, for Flyway's checksum); a plan of a
        // large corpus should not hold it twice.
        for m in &mut migrations {
            m.text = String::new();
        }
    }
    let mut pg_version = EngineVersion::default_for(Engine::Postgres);
    let mut mysql_version = EngineVersion::default_for(Engine::Mysql);
    // `--engine mysql` means MySQL's facts, `--engine mariadb` MariaDB's.
    if let Some(v) = opts
        .engine
        .as_deref()
        .and_then(EngineVersion::default_for_flavor)
        .filter(|v| v.engine() == Engine::Mysql)
    {
        mysql_version = v;
    }
    if let Some(v) = version {
        check_version_fits(&v, opts.engine.as_deref(), &migrations)?;
        match v.engine() {
            Engine::Postgres => pg_version = v,
            Engine::Mysql => mysql_version = v,
        }
    }
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
    if let Some(t) = &target {
        super::rederive::bind_target_executor(&mut plan, t);
    }
    if let Some(h) = history {
        plan.migrations.splice(0..0, h.1);
        plan.risk = plan
            .migrations
            .iter()
            .map(|m| m.risk)
            .max()
            .unwrap_or(Risk::Low);
        plan.history = Some(h.0);
    }
    if let (Some(c), Some(t)) = (&calibration, &target) {
        c.note(&mut plan, &t.name);
    }
    Ok((plan, rules, migrations))
}

/// An `--engine-version` must be of the engine the plan is for: the flavour
/// named by `--engine`, and the dialect of at least one migration (a version
/// of another engine would otherwise be silently ignored).
fn check_version_fits(
    v: &EngineVersion,
    engine: Option<&str>,
    migrations: &[migrate::Migration],
) -> Result<(), InputError> {
    if let Some(e) = engine {
        let flavor_matches = match v {
            EngineVersion::Postgres { .. } => e.parse::<Engine>() == Ok(Engine::Postgres),
            EngineVersion::Mariadb { .. } => e.eq_ignore_ascii_case("mariadb"),
            EngineVersion::Mysql { .. } => e.eq_ignore_ascii_case("mysql"),
        };
        if !flavor_matches {
            return Err(InputError(format!(
                "--engine-version {v} contradicts --engine {e}"
            )));
        }
    }
    if let Some(m) = migrations.first()
        && !migrations.iter().any(|m| m.engine == v.engine())
    {
        return Err(InputError(format!(
            "--engine-version {v} is for {}, but {} is {} SQL (set --engine, or drop --engine-version)",
            v.engine(),
            m.path.display(),
            m.engine
        )));
    }
    Ok(())
}

/// Rule name of the finding on a migration changed after it was applied.
pub const CHANGED_AFTER_APPLY: &str = "history-checksum-mismatch";

/// Keeps the pending migrations; applied ones are counted, and each applied
/// one whose file changed since becomes a verdict with a high finding (and
/// no statements: they are not run again).
pub fn split_by_history(
    migrations: Vec<migrate::Migration>,
    h: &crate::exec::history::History,
    target: &str,
) -> (
    Vec<migrate::Migration>,
    (HistoryCheck, Vec<MigrationVerdict>),
) {
    let sorting = crate::exec::history::sort(&migrations, h);
    let mut check = HistoryCheck {
        target: target.to_string(),
        notes: sorting.notes.clone(),
        ..HistoryCheck::default()
    };
    let mut changed = Vec::new();
    for i in &sorting.applied {
        check.skipped_applied.push(migrations[*i].version.clone());
    }
    for mm in &sorting.mismatches {
        let m = &migrations[mm.migration];
        check.changed_after_apply.push(m.version.clone());
        changed.push(MigrationVerdict {
            version: m.version.clone(),
            description: m.description.clone(),
            path: m.path.display().to_string(),
            checksum: m.checksum.clone(),
            engine: m.engine,
            format: m.format.as_str().to_string(),
            executor: None,
            risk: Risk::High,
            findings: vec![Finding {
                rule: CHANGED_AFTER_APPLY.into(),
                risk: Risk::High,
                reason: format!(
                    "{}: applied on target '{target}' with Flyway checksum {}, but the file's checksum is now {}: an applied migration was edited. Flyway's validate will fail and the change will never run",
                    m.path.display(),
                    mm.recorded
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "NULL".into()),
                    mm.now
                ),
                safe_alternative: Some(
                    "restore the file as applied and put the change in a new versioned migration"
                        .into(),
                ),
            }],
            statements: Vec::new(),
        });
    }
    let keep: std::collections::HashSet<usize> = sorting.pending.iter().copied().collect();
    let pending = migrations
        .into_iter()
        .enumerate()
        .filter(|(i, _)| keep.contains(i))
        .map(|(_, m)| m)
        .collect();
    (pending, (check, changed))
}

/// Renders in the chosen format.
pub fn render(plan: &Plan, rules: &RuleSet, format: Format) -> String {
    match format {
        Format::Text => {
            use std::io::IsTerminal;
            let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            report::text::render(plan, color)
        }
        Format::Json => report::json(plan),
        Format::Sarif => report::sarif::render(plan, rules),
    }
}

/// `cutover plan`: returns the exit code (0, or 1 when --fail-on is met).
pub fn run(args: &PlanArgs) -> Result<i32, InputError> {
    let history = StagingHistory {
        trail: args.trail.clone(),
        runs: args.runs.clone(),
        key_file: args.key_file.clone(),
    };
    let (plan, rules, _) = build_inner(&args.opts, false, &history)?;
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    let written = if args.format == Format::Json {
        // Streamed: a large plan is never held twice in memory.
        serde_json::to_writer_pretty(&mut w, &plan)
            .map_err(std::io::Error::from)
            .and_then(|_| writeln!(w))
    } else {
        writeln!(w, "{}", render(&plan, &rules, args.format).trim_end())
    }
    .and_then(|_| w.flush());
    match written {
        // `cutover plan … | head`: the reader has what it wanted; stop quietly, as
        // Unix tools do.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(input(e)),
        Ok(()) => {}
    }
    if let Some(h) = &plan.history
        && !h.changed_after_apply.is_empty()
    {
        return Err(InputError(format!(
            "migration(s) {} changed after being applied on target '{}' (finding {CHANGED_AFTER_APPLY} above): fix the files before planning",
            h.changed_after_apply.join(", "),
            h.target
        )));
    }
    let threshold: Option<Risk> = args
        .fail_on
        .as_deref()
        .map(|r| r.parse().map_err(InputError))
        .transpose()?;
    Ok(match threshold {
        Some(t) if plan.risk >= t => 1,
        _ => 0,
    })
}

const DEMO_FILES: &[(&str, &str)] = &[
    (
        "V2__orders_add_region.sql",
        include_str!("../../examples/demo/V2__orders_add_region.sql"),
    ),
    (
        "V3__orders_tighten.sql",
        include_str!("../../examples/demo/V3__orders_tighten.sql"),
    ),
    ("stats.toml", include_str!("../../examples/demo/stats.toml")),
];

/// Writes the bundled demo migrations to a fresh directory and returns it.
pub fn demo_dir() -> Result<(tempfile::TempDir, PathBuf), InputError> {
    let dir = tempfile::Builder::new()
        .prefix("cutover-demo")
        .tempdir()
        .map_err(input)?;
    let mig = dir.path().join("db/migration");
    std::fs::create_dir_all(&mig).map_err(input)?;
    for (name, text) in DEMO_FILES {
        let p = if name.ends_with(".toml") {
            dir.path().join(name)
        } else {
            mig.join(name)
        };
        std::fs::write(&p, text).map_err(input)?;
    }
    Ok((dir, mig))
}

/// `cutover demo`: the plan of the bundled example (the console takes over later).
pub fn demo(format: Format) -> Result<i32, InputError> {
    let (dir, mig) = demo_dir()?;
    let opts = PlanOpts {
        paths: vec![mig],
        engine: Some("postgres".into()),
        engine_version: None,
        source_format: None,
        target: None,
        stats: Some(dir.path().join("stats.toml")),
        rules: None,
        config: Some(PathBuf::from("/dev/null")),
    };
    let (plan, rules) = build(&opts)?;
    println!("{}", render(&plan, &rules, format).trim_end());
    Ok(0)
}
