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
use crate::supervisor::{Client, ServerMsg};
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

/// What a command that raced the end of its run says: the run's ending,
/// not the socket's error (`abort not applied: the run had already ended: SUCCEEDED`).
pub fn already_ended(what: &str, state: &RunState) -> String {
    let why = state
        .outcome
        .as_deref()
        .filter(|o| !o.is_empty())
        .map(|o| format!(" ({})", crate::exec::native::clip_sql(o)))
        .unwrap_or_default();
    format!(
        "{what} not applied: the run had already ended: {}{why}",
        state.phase.to_string().to_uppercase()
    )
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

/// The run's state as its trail records it, when `run.json` says where the
/// trail is and the trail reads (a run whose supervisor is gone may have
/// ended normally: its socket goes with it).
fn recorded_state(run_dir: &Path, run: &str) -> Option<RunState> {
    let text = std::fs::read_to_string(run_dir.join("run.json")).ok()?;
    let sup: super::run::SuperviseSpec = serde_json::from_str(&text).ok()?;
    let key = crate::audit::AuditKey::load(sup.key_file.as_deref()).ok()?;
    let (entries, _) = crate::audit::read_file(&sup.trail, &key).ok()?;
    let records: Vec<_> = entries
        .into_iter()
        .filter_map(|e| match e.entry {
            crate::audit::Entry::Run { record } if record.run == run => Some(record),
            _ => None,
        })
        .collect();
    (!records.is_empty()).then(|| RunState::replay(&records))
}

/// Why a control cannot reach the run: it had ended (its supervisor left
/// with it), or the supervisor is gone.
fn unreachable(a: &ControlArgs, what: &str, sock: &Path, why: &str) -> Result<i32, InputError> {
    match recorded_state(&a.runs.join(&a.run), &a.run) {
        Some(st) if st.phase.is_terminal() => {
            eprintln!("cutover: run {}: {}", a.run, already_ended(what, &st));
            Ok(3)
        }
        _ => Err(InputError(supervisor_gone(&a.run, sock, why))),
    }
}

/// The rest of the run's stream after a command got no reply: the final
/// events come before the supervisor hangs up, so a command that raced the
/// end learns how the run ended.
async fn final_state(watch: &mut Client, mut state: RunState) -> RunState {
    while let Ok(Some(m)) = watch.next().await {
        match m {
            ServerMsg::Event { record, .. } if record.seq > state.last_seq => {
                state = state.apply(&record);
            }
            ServerMsg::End => break,
            _ => {}
        }
    }
    state
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
        // The run's socket, or a relay through `cutover serve`.
        let endpoint =
            crate::serve::client::Endpoint::open(&a.run, &a.runs, &a.service, false).await?;
        let sock = endpoint.path().to_path_buf();
        if !sock.exists() {
            return unreachable(a, what, &sock, "no control socket");
        }
        let mut watch = match Client::connect(&sock).await {
            Ok(c) => c,
            Err(e) => return unreachable(a, what, &sock, &e.to_string()),
        };
        if let Err(e) = watch.subscribe(16).await {
            return unreachable(a, what, &sock, &e.to_string());
        }
        let state = loop {
            match watch.next().await {
                Ok(Some(ServerMsg::State { state })) => break *state,
                Ok(Some(_)) => {}
                Ok(None) => {
                    return unreachable(a, what, &sock, "the supervisor closed the connection");
                }
                Err(e) => return unreachable(a, what, &sock, &e.to_string()),
            }
        };
        if state.phase.is_terminal() {
            eprintln!("cutover: run {}: {}", a.run, already_ended(what, &state));
            return Ok(3);
        }
        let command = make(&state);
        let sent = match Client::connect(&sock).await {
            Ok(mut c) => {
                c.command(Surface::Cli, command, crate::tui::app::tty(), |_| {})
                    .await
            }
            Err(e) => Err(e),
        };
        let reply = match sent {
            Ok(Reply::Error { message }) if message == crate::supervisor::server::RUN_ENDED => {
                Err(message)
            }
            Ok(r) => Ok(r),
            Err(e) => Err(e.to_string()),
        };
        let reply = match reply {
            Ok(r) => r,
            Err(cause) => {
                // The command raced the end of the run: say how it ended.
                let end = final_state(&mut watch, state).await;
                if end.phase.is_terminal() {
                    eprintln!("cutover: run {}: {}", a.run, already_ended(what, &end));
                    return Ok(3);
                }
                return unreachable(a, what, &sock, &cause);
            }
        };
        Ok(match reply {
            Reply::Accepted { seqs } => {
                let seqs: Vec<String> = seqs.iter().map(u64::to_string).collect();
                println!("{what} accepted (recorded as #{})", seqs.join(", #"));
                let executor = state
                    .executor
                    .as_deref()
                    .or(state.spec.as_ref().map(|s| s.executor.as_str()));
                if what == "pause" && executor == Some("native") {
                    println!(
                        "the executor pauses between statements and chunks: a pause during a statement (e.g. an ALTER) takes effect when the statement ends"
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
