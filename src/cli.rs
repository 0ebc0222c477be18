//! Command-line definitions (clap). Parsing only: resolution and validation of the
//! options happen in `cmd::*`, so `--help` and behaviour stay in one place each.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// cutover — coordinate production schema migrations: classify their risk before a
/// window, gate them on approval, run and watch them, and keep an audit trail.
#[derive(Debug, Parser)]
#[command(name = "cutover", version, about, long_about = None, after_help = "Start here:\n  cutover demo                         # the console on an embedded demo, nothing to configure\n  cutover plan db/migration            # risk of each statement, no database needed\n  cutover run db/migration --target staging\n\nExit codes: 0 success; 1 --fail-on threshold met (plan), run failed, or trail does not verify (audit);\n2 bad input or usage (names file:line); 3 run refused, rejected or approval expired; 4 run aborted.\nDocs: README.md. Example config: examples/cutover.toml; a local playground: examples/local/.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Classify migrations: risk, lock, rewrite, estimate and safer alternative per statement.
    #[command(
        after_help = "Examples:\n  cutover plan db/migration                       # Flyway dir, engine guessed per file\n  cutover plan migrations --engine mysql --stats stats.toml --format json\n  cutover plan db/migration --target prod --fail-on high   # live table facts, CI gate\n\nExit codes: 0 ok, 1 --fail-on met, 2 bad input (message names file:line)."
    )]
    Plan(PlanArgs),
    /// The console on an embedded simulation: a high-risk migration, replicas, approvals.
    #[command(
        after_help = "Examples:\n  cutover demo                     # full-screen console, about two minutes\n  cutover demo --no-tui --speed 20 # headless: events as lines, summary, verified audit trail"
    )]
    Demo(DemoArgs),
    /// Plan with live facts, request approval, wait for the window, execute and watch.
    #[command(
        after_help = "Examples:\n  cutover run db/migration --target prod            # full-screen console\n  cutover run db/migration --target prod --no-tui --format json   # CI / cron\n\nExit codes: 0 succeeded, 1 failed, 2 usage or bad input, 3 refused/rejected or expired, 4 aborted.\nDetaching (q) leaves the run going; `cutover attach RUN` comes back."
    )]
    Run(RunArgs),
    /// Run each statement on a staging target and compare the engine's real locks and rewrites with the plan.
    #[command(
        after_help = "Examples:\n  cutover verify db/migration --target staging\n  cutover verify db/migration --target staging --format json\n\nPostgreSQL: each statement in BEGIN … ROLLBACK; what cannot run in a transaction, and\nevery MySQL/MariaDB statement, runs on scratch copies that are dropped after.\nExit codes: 0 agrees, 1 a disagreement, failure or leftover, 2 bad input or a prod target."
    )]
    Verify(VerifyArgs),
    /// Reconnect a console (or the headless printer) to a run.
    Attach(AttachArgs),
    /// Continue a run: re-open one whose supervisor is gone (recorded as
    /// interrupted, recovered, then continued with a first start's checks),
    /// or resume a paused one (a control, like `cutover pause`: it does not attach).
    #[command(after_help = "Examples:
  cutover resume prod-V12..V14-3fa2c1d9e0b4 --no-tui

`cutover run` on the same plan finds the same run by itself; `resume` names it.
Exit codes as for `cutover run`; 3 when the run may not continue (the reason is printed).")]
    Resume(AttachArgs),
    /// Approve a run locally, as a second authorized person (where policy allows).
    Approve(ApproveArgs),
    /// Pause a running run (as from the console; the executor confirms it).
    Pause(ControlArgs),
    /// Abort a run, with a written reason (high risk: type the table name).
    Abort(AbortArgs),
    /// Trigger a postponed cut-over (high risk: type the table name).
    #[command(name = "cut-over")]
    CutOver(CutOverArgs),
    /// Remove what an aborted or failed gh-ost/pt-osc run left behind (a DBA, after typing the table name).
    #[command(
        after_help = "Examples:\n  cutover cleanup dev-9101                  # shows the statements, asks for the table name\n  cutover cleanup dev-9101 --confirm orders # non-interactive\n\nExit codes: 0 cleaned or nothing to clean, 2 bad input, 3 refused or not confirmed."
    )]
    Cleanup(CleanupArgs),
    /// List the runs in the audit trail: id, target, state, when, who asked, and what is left here.
    #[command(after_help = "Examples:\n  cutover runs\n  cutover runs --format json")]
    Runs(RunsArgs),
    /// Remove a finished (or never started) run's directory, socket and supervisor; recorded in the trail.
    #[command(
        after_help = "A run that executed and did not end is resumed or aborted, never forgotten.\nIts records stay in the trail.\n\nExit codes: 0 forgotten or nothing left, 2 bad input, 3 the run is in progress."
    )]
    Forget(ForgetArgs),
    /// Service mode: run as the `cutover` OS user, owning run directories, trail and key; clients connect to its socket.
    #[command(
        after_help = "Examples:\n  cutover serve --config /etc/cutover/cutover.toml        # [service] socket, group, runs, trail, key_file\n  cutover serve --socket /run/cutover/cutover.sock --group cutover\n\nClients use it when cutover.toml has [service] socket, or with --service SOCKET / CUTOVER_SERVICE.\nSee README.md, \"Threat model\", and examples/systemd/."
    )]
    Serve(ServeArgs),
    /// The per-run supervisor process (started by `cutover run`).
    #[command(hide = true)]
    Supervise(SuperviseArgs),
    /// List the rules in force (built-in rules.toml plus overrides).
    Rules(RulesArgs),
    /// Check, read and export the tamper-evident audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Stream replica lag samples of a target (unknown lag counts as over the limit).
    #[command(
        after_help = "Examples:\n  cutover lag --target prod\n  cutover lag --target prod --format json --interval 500ms --count 10"
    )]
    Lag(LagArgs),
    /// Slack: preview the pre-flight message, print the app manifest, check the setup.
    #[command(subcommand)]
    Slack(SlackCommand),
    /// The Slack relay's HTTP endpoint (for workspaces that use request URLs).
    #[command(subcommand)]
    Relay(RelayCommand),
}

/// `cutover lag …`
#[derive(Debug, Args)]
pub struct LagArgs {
    /// Target in cutover.toml whose replicas are polled.
    #[arg(long)]
    pub target: String,
    /// Output format: one line or one JSON object per replica per poll.
    #[arg(long, value_parser = ["text", "json"], default_value = "text")]
    pub format: String,
    /// Poll interval (default: [targets.lag] interval, else 1s).
    #[arg(long)]
    pub interval: Option<String>,
    /// Stop after this many polls (default: until interrupted).
    #[arg(long)]
    pub count: Option<u64>,
    /// Lag above this many seconds is flagged OVER in text output.
    #[arg(long, default_value_t = 1.0)]
    pub max_lag: f64,
    /// Config file (default: cutover.toml in this directory or a parent).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// `cutover slack …`
#[derive(Debug, Subcommand)]
pub enum SlackCommand {
    /// Print the pre-flight message's Block Kit JSON (paste into Block Kit Builder).
    Preview {
        #[command(flatten)]
        opts: PlanOpts,
        /// Run id shown in the message.
        #[arg(long, default_value = "preview")]
        run: String,
        /// Instead: what the channel would have seen during the last `cutover demo`.
        #[arg(long, exclusive = true)]
        demo: bool,
    },
    /// Print a Slack app manifest (bot scopes, Socket Mode or a request URL, interactivity).
    Manifest {
        /// Use HTTP interactivity at this URL instead of Socket Mode.
        #[arg(long)]
        request_url: Option<String>,
    },
    /// Show what a channel would have seen from a Slack transcript (runs
    /// without a token write one; default: the last `cutover demo`'s).
    Transcript {
        /// A `slack-transcript.jsonl`.
        file: Option<std::path::PathBuf>,
    },
    /// Verify the bot token, channel membership and scopes.
    Check {
        /// Config file (default: cutover.toml in this directory or a parent).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// `cutover relay …`
#[derive(Debug, Subcommand)]
pub enum RelayCommand {
    /// Serve signed Slack interactivity requests on ADDR (e.g. 127.0.0.1:3000).
    Serve {
        /// Address to listen on.
        #[arg(long)]
        listen: String,
        /// Config file (default: cutover.toml in this directory or a parent).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The relay's own audit trail, for refused clicks no run can record
        /// (key from CUTOVER_AUDIT_KEY or --audit-key-file).
        #[arg(long, default_value = "relay-audit.jsonl")]
        trail: PathBuf,
        /// File holding the audit key.
        #[arg(long)]
        audit_key_file: Option<PathBuf>,
    },
}

/// `cutover audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the whole HMAC chain; names the first bad record. Exit 1 if it does not verify.
    Verify {
        #[command(flatten)]
        opts: AuditOpts,
        /// A head published earlier (`<records> <tag>`, from `cutover audit head` or a
        /// run summary): exit 1 if the trail is shorter than it or differs from it.
        #[arg(long)]
        expect_head: Option<String>,
    },
    /// Print the verified head `<records> <tag>` (publish it outside this machine).
    Head(AuditHeadArgs),
    /// Seal damage found by verify as a new, audited record (nothing is deleted
    /// or rewritten), so runs may append again.
    Repair {
        #[command(flatten)]
        opts: AuditOpts,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
    },
    /// Readable timeline of all runs, or of one run id or migration version.
    Show {
        #[command(flatten)]
        opts: AuditOpts,
        /// A run id or a migration version.
        filter: Option<String>,
    },
    /// Export verified records for compliance.
    Export {
        #[command(flatten)]
        opts: AuditOpts,
        #[arg(long, value_parser = ["json", "csv"], default_value = "json")]
        format: String,
        /// Only records at or after this UTC time (RFC 3339, e.g. 2026-11-01T00:00:00Z).
        #[arg(long)]
        since: Option<String>,
        /// On a trail that does not verify, still write the records before the
        /// first bad one (the exit status is 1 all the same).
        #[arg(long)]
        partial: bool,
    },
}

/// Where the trail and its key are.
#[derive(Debug, Args, Clone)]
pub struct AuditOpts {
    /// The trail file (default: .cutover/audit.jsonl).
    #[arg(long, default_value = ".cutover/audit.jsonl")]
    pub trail: std::path::PathBuf,
    /// File holding the HMAC key (default: the CUTOVER_AUDIT_KEY environment variable).
    #[arg(long)]
    pub key_file: Option<std::path::PathBuf>,
}

/// Output formats of the headless printers (demo, run, attach).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LineFormat {
    Text,
    Json,
}

/// Output formats of `plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Sarif,
}

/// Options shared by everything that classifies.
#[derive(Debug, Args, Clone)]
pub struct PlanOpts {
    /// Migration files or directories (searched recursively for *.sql).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// SQL dialect; guessed per file from directives, path and syntax otherwise.
    #[arg(long, value_parser = ["postgres", "mysql", "mariadb"])]
    pub engine: Option<String>,
    /// Engine version facts: postgres-15, mariadb-10.11, mysql-8.0 (read from the server with --target).
    #[arg(long)]
    pub engine_version: Option<String>,
    /// Force the migration source format instead of detecting it per file.
    #[arg(long, value_parser = ["flyway", "golang-migrate", "diesel", "liquibase", "alembic", "goose", "dbmate", "plain"])]
    pub source_format: Option<String>,
    /// Target in cutover.toml: table facts are read live (read-only) from its primary.
    #[arg(long)]
    pub target: Option<String>,
    /// Table facts from a TOML file ([tables."orders"] rows = …, bytes = …).
    #[arg(long, conflicts_with = "target")]
    pub stats: Option<PathBuf>,
    /// Rule overrides on top of the built-in rules.toml.
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// Config file (default: cutover.toml in this directory or a parent).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub opts: PlanOpts,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Exit 1 when the plan's risk is at or above this level.
    #[arg(long, value_parser = ["low", "medium", "high"])]
    pub fail_on: Option<String>,
    /// The audit trail whose staging rehearsals calibrate `--target` prod estimates.
    #[arg(long, default_value = ".cutover/audit.jsonl")]
    pub trail: PathBuf,
    /// The run directories of those rehearsals.
    #[arg(long, default_value = ".cutover/runs")]
    pub runs: PathBuf,
    /// File holding the audit HMAC key (default: CUTOVER_AUDIT_KEY); without it no calibration.
    #[arg(long)]
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Headless: print events as lines, then the summary and the verified audit trail.
    #[arg(long)]
    pub no_tui: bool,
    /// Headless output: text lines or JSON lines.
    #[arg(long, value_enum, default_value_t = LineFormat::Text)]
    pub format: LineFormat,
    /// Simulated seconds per real second (the copy takes ~100 simulated seconds).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Console theme: dark, light, high-contrast, or a .toml file.
    #[arg(long, default_value = "dark")]
    pub theme: String,
    /// Observer mode: the console refuses controls.
    #[arg(long)]
    pub read_only: bool,
}

#[derive(Debug, Args)]
pub struct RulesArgs {
    /// Rule overrides on top of the built-in rules.toml.
    #[arg(long)]
    pub rules: Option<PathBuf>,
}

/// How a client shows a run.
#[derive(Debug, Args, Clone)]
pub struct ClientArgs {
    /// Headless: events as lines, summary at the end, exit code says how it ended.
    #[arg(long)]
    pub no_tui: bool,
    /// Headless output: text lines or JSON lines.
    #[arg(long, value_enum, default_value_t = LineFormat::Text)]
    pub format: LineFormat,
    /// Console theme: dark, light, high-contrast, or a .toml file (default: [console] theme).
    #[arg(long)]
    pub theme: Option<String>,
    /// Observer mode: the console refuses controls.
    #[arg(long)]
    pub read_only: bool,
}

/// `cutover run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub opts: PlanOpts,
    #[command(flatten)]
    pub client: ClientArgs,
    /// Where run directories live.
    #[arg(long, default_value = ".cutover/runs")]
    pub runs: PathBuf,
    /// The audit trail.
    #[arg(long, default_value = ".cutover/audit.jsonl")]
    pub trail: PathBuf,
    /// File holding the audit HMAC key (default: CUTOVER_AUDIT_KEY).
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// Stop after the copy until someone cuts over (`c` in the console, or Slack).
    #[arg(long)]
    pub postpone_cut_over: bool,
    #[command(flatten)]
    pub service: ServiceOpt,
}

/// `cutover attach RUN`.
#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Run id (a directory under --runs).
    pub run: String,
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(flatten)]
    pub service: ServiceOpt,
    /// Where run directories live.
    #[arg(long, default_value = ".cutover/runs")]
    pub runs: PathBuf,
}

/// `cutover approve RUN`.
#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// Run id.
    pub run: String,
    /// The plan digest (or its prefix) you reviewed; refused, and the refusal recorded, if the run's plan changed.
    #[arg(long)]
    pub plan_digest: Option<String>,
    /// Where run directories live.
    #[arg(long, default_value = ".cutover/runs")]
    pub runs: PathBuf,
    #[command(flatten)]
    pub service: ServiceOpt,
}

/// `cutover pause|resume RUN`.
#[derive(Debug, Args)]
pub struct ControlArgs {
    /// Run id.
    pub run: String,
    /// Where run directories live.
    #[arg(long, default_value = ".cutover/runs")]
    pub runs: PathBuf,
    #[command(flatten)]
    pub service: ServiceOpt,
}

/// `cutover cleanup RUN`.
#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// Run id.
    pub run: String,
    /// The migrated table's name, typed as confirmation (else asked on the terminal).
    #[arg(long)]
    pub confirm: Option<String>,
    /// Also drop the old tables kept as rollback backups (gh-ost's `_<t>_<ts>_del`).
    #[arg(long)]
    pub backups: bool,
    /// Where run directories live.
    #[arg(long, default_value = ".cutover/runs")]
    pub runs: PathBuf,
    #[command(flatten)]
    pub service: ServiceOpt,
}

/// `cutover abort RUN --reason …`.
#[derive(Debug, Args)]
pub struct AbortArgs {
    #[command(flatten)]
    pub control: ControlArgs,
    /// Why (recorded in the audit trail).
    #[arg(long)]
    pub reason: String,
    /// The table name, typed to confirm a high-risk abort (asked for on a terminal when absent).
    #[arg(long)]
    pub table: Option<String>,
}

/// `cutover cut-over RUN`.
#[derive(Debug, Args)]
pub struct CutOverArgs {
    #[command(flatten)]
    pub control: ControlArgs,
    /// The table name, typed to confirm a high-risk cut-over (asked for on a terminal when absent).
    #[arg(long)]
    pub table: Option<String>,
}

/// `cutover runs`.
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// The audit trail.
    #[arg(long, default_value = ".cutover/audit.jsonl")]
    pub trail: PathBuf,
    /// File holding the audit HMAC key (default: CUTOVER_AUDIT_KEY).
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// Where run directories live.
    #[arg(long, default_value = ".cutover/runs")]
    pub runs: PathBuf,
    /// A table, or JSON for scripts.
    #[arg(long, value_enum, default_value_t = LineFormat::Text)]
    pub format: LineFormat,
    #[command(flatten)]
    pub service: ServiceOpt,
}

/// `cutover forget RUN`.
#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// Run id (see `cutover runs`).
    pub run: String,
    /// The audit trail.
    #[arg(long, default_value = ".cutover/audit.jsonl")]
    pub trail: PathBuf,
    /// File holding the audit HMAC key (default: CUTOVER_AUDIT_KEY).
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// Where run directories live.
    #[arg(long, default_value = ".cutover/runs")]
    pub runs: PathBuf,
    #[command(flatten)]
    pub service: ServiceOpt,
}

/// `cutover supervise` (hidden).
#[derive(Debug, Args)]
pub struct SuperviseArgs {
    /// The run directory holding run.json.
    #[arg(long)]
    pub run_dir: PathBuf,
}

/// `cutover verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Migrations, engine and rule options as for `plan`; --target is required
    /// and must not be a prod target.
    #[command(flatten)]
    pub opts: PlanOpts,
    /// Output format: predicted beside observed per statement.
    #[arg(long, value_parser = ["text", "json"], default_value = "text")]
    pub format: String,
    /// Rows copied into each scratch table.
    #[arg(long, default_value_t = 1000)]
    pub sample_rows: u64,
    /// Lock timeout per probe, in milliseconds (a busy staging table fails fast).
    #[arg(long, default_value_t = 2000)]
    pub lock_timeout_ms: u64,
}

/// Service mode for a client command.
#[derive(Debug, Args, Clone, Default)]
pub struct ServiceOpt {
    /// Talk to `cutover serve` on this socket (default: cutover.toml's `[service] socket`).
    #[arg(long, env = "CUTOVER_SERVICE", value_name = "SOCKET")]
    pub service: Option<PathBuf>,
}

/// `cutover serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// cutover.toml (targets, policy, `[service]`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The socket to listen on (default: `[service] socket`).
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// OS group allowed to connect (default: `[service] group`; else owner-only).
    #[arg(long)]
    pub group: Option<String>,
    /// Where run directories live (default: `[service] runs`, else .cutover/runs).
    #[arg(long)]
    pub runs: Option<PathBuf>,
    /// The audit trail (default: `[service] trail`, else .cutover/audit.jsonl).
    #[arg(long)]
    pub trail: Option<PathBuf>,
    /// File holding the audit HMAC key (default: `[service] key_file`, else CUTOVER_AUDIT_KEY).
    #[arg(long)]
    pub key_file: Option<PathBuf>,
}

/// `cutover audit head`.
#[derive(Debug, Args, Clone)]
pub struct AuditHeadArgs {
    #[command(flatten)]
    pub opts: AuditOpts,
    #[command(flatten)]
    pub service: ServiceOpt,
}
