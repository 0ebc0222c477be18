//! `cutover pause|resume|abort|cut-over RUN`: the console's run controls
//! for a DBA without the console. They go through the run's supervisor
//! socket like a console's, so the supervisor identifies the person by the
//! peer's OS user, the same policy decides, and the command (or its
//! refusal) is recorded the same way, with surface `cli`.

use super::plan::InputError;
use crate::cli::{AbortArgs, ControlArgs, CutOverArgs};
use crate::model::Risk;
use crate::policy::Surface;
use crate::run::core::Reply;
use crate::run::{Command, RunState};
use crate::supervisor::{Client, ServerMsg, socket_path};
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

/// What a control command says when the run has no live supervisor.
pub fn supervisor_gone(run: &str, sock: &Path, why: &str) -> String {
    format!(
        "run {run}: its supervisor is gone ({why}; socket {}). Nothing is driving the run: if it was running, it stopped with the supervisor and is recovered when restarted — run `cutover run` again on the same plan and target. History: `cutover audit show {run}`",
        sock.display()
    )
}

/// The console's line when its supervisor goes away before the run ended.
pub fn gone_while(run: &str, phase: crate::run::Phase) -> String {
    format!(
        "the supervisor of run {run} is gone while the run was {phase}: nothing drives it now. Run `cutover run` again on the same plan and target to recover and resume it (history: `cutover audit show {run}`)"
    )
}

async fn connect(a: &ControlArgs) -> Result<(Client, RunState), InputError> {
    let sock = socket_path(&a.runs.join(&a.run));
    if !sock.exists() {
        return Err(InputError(supervisor_gone(
            &a.run,
            &sock,
            "no control socket",
        )));
    }
    let gone =
        |e: &dyn std::fmt::Display| InputError(supervisor_gone(&a.run, &sock, &e.to_string()));
    let mut watch = Client::connect(&sock).await.map_err(|e| gone(&e))?;
    watch.subscribe(16).await.map_err(|e| gone(&e))?;
    let state = loop {
        match watch.next().await.map_err(|e| gone(&e))? {
            Some(ServerMsg::State { state }) => break *state,
            Some(_) => {}
            None => return Err(gone(&"the supervisor closed the connection")),
        }
    };
    let c = Client::connect(&sock).await.map_err(|e| gone(&e))?;
    Ok((c, state))
}

/// The typed table name for a high-risk abort or cut-over: `--table`, or
/// asked for on a terminal; `None` lets the run refuse and say why.
fn typed_table(given: Option<&str>, state: &RunState, what: &str) -> Option<String> {
    if let Some(t) = given {
        return Some(t.to_string());
    }
    let spec = state.spec.as_ref()?;
    if spec.risk != Risk::High || !std::io::stdin().is_terminal() {
        return None;
    }
    eprint!(
        "high-risk run: type the table name to confirm the {what} ({}): ",
        spec.tables.join(", ")
    );
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).ok()?;
    let t = line.trim();
    (!t.is_empty()).then(|| t.to_string())
}

fn send(
    a: &ControlArgs,
    what: &str,
    make: impl FnOnce(&RunState) -> Command,
) -> Result<i32, InputError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| InputError(e.to_string()))?;
    rt.block_on(async {
        let (mut c, state) = connect(a).await?;
        let command = make(&state);
        let sock = socket_path(&a.runs.join(&a.run));
        let reply = c
            .command(Surface::Cli, command, crate::tui::app::tty(), |_| {})
            .await
            .map_err(|e| InputError(supervisor_gone(&a.run, &sock, &e.to_string())))?;
        Ok(match reply {
            Reply::Accepted { seqs } => {
                let seqs: Vec<String> = seqs.iter().map(u64::to_string).collect();
                println!("{what} accepted (recorded as #{})", seqs.join(", #"));
                if what == "pause" && state.spec.as_ref().is_some_and(|s| s.executor == "native") {
                    println!(
                        "the executor pauses between statements and chunks: a statement already running (e.g. an ALTER) finishes first"
                    );
                }
                0
            }
            Reply::Refused { reason } => {
                eprintln!("cutover: {what} refused: {reason}");
                3
            }
            Reply::Duplicate => 0,
            Reply::Error { message } => {
                eprintln!("cutover: {message}");
                1
            }
        })
    })
}

/// `cutover pause RUN`.
pub fn pause(a: &ControlArgs) -> Result<i32, InputError> {
    send(a, "pause", |_| Command::Pause)
}

/// `cutover abort RUN --reason …`.
pub fn abort(a: &AbortArgs) -> Result<i32, InputError> {
    send(&a.control, "abort", |s| Command::Abort {
        reason: a.reason.clone(),
        table: typed_table(a.table.as_deref(), s, "abort"),
    })
}

/// `cutover cut-over RUN`.
pub fn cut_over(a: &CutOverArgs) -> Result<i32, InputError> {
    send(&a.control, "cut-over", |s| Command::CutOver {
        table: typed_table(a.table.as_deref(), s, "cut-over"),
    })
}
