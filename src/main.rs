//! The binary: parse arguments, dispatch, map the outcome to an exit code.

use clap::Parser;
use cutover::cli::{Cli, Command};
use cutover::cmd;
use std::process::ExitCode;

fn main() -> ExitCode {
    // clap exits 2 on usage errors and 0 on --help, as documented.
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Plan(a) => cmd::plan::run(a),
        Command::Demo(a) => cmd::demo::main(a),
        Command::Run(a) => cmd::run::run(a),
        Command::Verify(a) => cmd::verify::run(a),
        Command::Attach(a) => cmd::run::attach(a),
        Command::Resume(a) => cmd::run::resume(a),
        Command::Approve(a) => cmd::run::approve(a),
        Command::Pause(a) => cmd::control::pause(a),
        Command::Abort(a) => cmd::control::abort(a),
        Command::CutOver(a) => cmd::control::cut_over(a),
        Command::Supervise(a) => cmd::run::supervise(a),
        Command::Serve(a) => cmd::serve::run(a),
        Command::Runs(a) => cmd::runs::list(a),
        Command::Forget(a) => cmd::runs::forget(a),
        Command::Cleanup(a) => cmd::cleanup::run(a),
        Command::Rules(a) => cmd::rules::run(a.rules.as_deref()),
        Command::Audit(c) => cmd::audit::run(c),
        Command::Lag(a) => cmd::lag::run(a),
        Command::Slack(c) => cmd::slack::run(c),
        Command::Relay(c) => cmd::slack::relay(c),
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("cutover: {e}");
            ExitCode::from(2)
        }
    }
}
