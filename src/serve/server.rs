//! `cutover serve`'s side of the socket. Each connection is one request: the
//! peer's uid (from the kernel) is the only identity; the service plans the
//! submitted files itself, runs supervisors as its own user, and relays
//! `connect`s to a run's supervisor naming that uid.

use super::protocol::{self, Input, Op, Reply, Request, relative_parts, valid_run_id};
use crate::cli::{ClientArgs, LineFormat, PlanOpts, RunArgs, ServiceOpt};
use crate::cmd::plan::InputError;
use crate::cmd::run::{self as runcmd, Prepare};
use crate::supervisor::{self, ClientMsg};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

/// What the service owns.
#[derive(Debug)]
pub struct Service {
    /// cutover.toml (absolute).
    pub config: PathBuf,
    /// Run directories (absolute).
    pub runs: PathBuf,
    /// The audit trail (absolute).
    pub trail: PathBuf,
    /// The key file, else `CUTOVER_AUDIT_KEY` of the service's environment.
    pub key_file: Option<PathBuf>,
    /// One `run` at a time: choosing a run and writing its directory must
    /// not race another request for the same target.
    runs_lock: tokio::sync::Mutex<()>,
}

impl Service {
    /// A service over these paths.
    pub fn new(
        config: PathBuf,
        runs: PathBuf,
        trail: PathBuf,
        key_file: Option<PathBuf>,
    ) -> Service {
        Service {
            config,
            runs,
            trail,
            key_file,
            runs_lock: tokio::sync::Mutex::new(()),
        }
    }
}

/// Serves until `shutdown`.
pub async fn serve(svc: Arc<Service>, listener: UnixListener, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            conn = listener.accept() => {
                let Ok((stream, _)) = conn else { continue };
                tokio::spawn(connection(svc.clone(), stream));
            }
        }
    }
}

async fn send(w: &mut UnixStream, reply: &Reply) {
    if let Ok(mut line) = serde_json::to_string(reply) {
        line.push('\n');
        let _ = w.write_all(line.as_bytes()).await;
    }
}

async fn connection(svc: Arc<Service>, stream: UnixStream) {
    let uid = match stream.peer_cred() {
        Ok(c) => c.uid(),
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    let read = (&mut reader)
        .take(protocol::MAX_REQUEST_BYTES as u64 + 1)
        .read_line(&mut line)
        .await;
    let request = match read {
        Ok(0) => return,
        Ok(n) if n > protocol::MAX_REQUEST_BYTES => Err(format!(
            "request larger than {} MiB",
            protocol::MAX_REQUEST_BYTES / 1024 / 1024
        )),
        Ok(_) => parse(&line),
        Err(e) => Err(format!("reading the request: {e}")),
    };
    let op = match request {
        Ok(op) => op,
        Err(m) => {
            send(reader.get_mut(), &Reply::error(m, 2)).await;
            return;
        }
    };
    let user = supervisor::peer::user_name(uid);
    match op {
        Op::Connect { run, start } => {
            let buffered = reader.buffer().to_vec();
            let mut client = reader.into_inner();
            match reach(&svc, &run, start, uid).await {
                Ok(mut sup) => {
                    send(&mut client, &Reply::ok()).await;
                    if !buffered.is_empty() && sup.write_all(&buffered).await.is_err() {
                        return;
                    }
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut sup).await;
                }
                Err(m) => send(&mut client, &Reply::error(m, 2)).await,
            }
        }
        Op::Run {
            target,
            inputs,
            source_format,
            postpone_cut_over,
            stop_if_refused,
        } => {
            let reply = run(
                &svc,
                uid,
                RunRequest {
                    target,
                    inputs,
                    source_format,
                    postpone_cut_over,
                    stop_if_refused,
                },
            )
            .await
            .unwrap_or_else(|e| Reply::error(e.0, 2));
            eprintln!(
                "serve: run for {user}: {}",
                match (&reply.run, &reply.error, &reply.refused) {
                    (_, Some(e), _) => format!("refused: {e}"),
                    (Some(r), _, Some(why)) => format!("{r} ({why})"),
                    (Some(r), _, None) => r.clone(),
                    _ => "nothing to run".into(),
                }
            );
            send(reader.get_mut(), &reply).await;
        }
        Op::Plan { run } => {
            let reply = match read_plan(&svc, &run) {
                Ok(plan) => Reply {
                    plan: Some(Box::new(plan)),
                    ..Reply::ok()
                },
                Err(m) => Reply::error(m, 2),
            };
            send(reader.get_mut(), &reply).await;
        }
        Op::Head => {
            let reply = head(&svc);
            send(reader.get_mut(), &reply).await;
        }
        Op::Runs => {
            let reply = runs(&svc);
            send(reader.get_mut(), &reply).await;
        }
        Op::Cleanup {
            run,
            backups,
            confirm,
            shown,
        } => {
            let reply = cleanup(&svc, &user, &run, backups, confirm, shown)
                .await
                .unwrap_or_else(|e| Reply::error(e, 2));
            eprintln!(
                "serve: cleanup of {run} by {user}: exit {}",
                reply.exit.unwrap_or(0)
            );
            send(reader.get_mut(), &reply).await;
        }
        Op::Forget { run } => {
            let reply = forget(svc.clone(), user.clone(), run.clone())
                .await
                .unwrap_or_else(|e| Reply::error(e, 2));
            eprintln!(
                "serve: forget {run} by {user}: exit {}",
                reply.exit.unwrap_or(0)
            );
            send(reader.get_mut(), &reply).await;
        }
    }
}

/// `cutover cleanup` as the peer `user`: the same checks as a local one
/// (a DBA, the run ended, no live tool), on the service's run directory.
async fn cleanup(
    svc: &Service,
    user: &str,
    run: &str,
    backups: bool,
    confirm: Option<String>,
    shown: Option<String>,
) -> Result<Reply, String> {
    use crate::cmd::cleanup::{Surveyed, carry_out, survey};
    let dir = run_dir(svc, run)?;
    let survey = match survey(&dir, run, user, backups).await.map_err(|e| e.0)? {
        Surveyed::Stop(o) => return Ok(Reply::outcome(o)),
        Surveyed::Ready(s) => s,
    };
    let Some(typed) = confirm else {
        return Ok(Reply {
            output: Some(survey.listing.clone()),
            confirm: Some(survey.table.clone()),
            ..Reply::ok()
        });
    };
    let listing = survey.listing.clone();
    match shown {
        // What was confirmed is what runs: a change in between (another
        // cleanup, a tool that left more) is shown again first.
        Some(seen) if seen != listing => Ok(Reply::outcome(crate::cmd::Outcome {
            out: listing,
            err: "what is left changed since it was shown (above now); nothing was run: run cutover cleanup again".into(),
            code: 3,
        })),
        Some(_) => Ok(Reply::outcome(carry_out(survey, &typed).await.map_err(|e| e.0)?)),
        None => {
            let mut o = carry_out(survey, &typed).await.map_err(|e| e.0)?;
            o.out = format!("{listing}{}", o.out);
            Ok(Reply::outcome(o))
        }
    }
}

/// `cutover forget` as the peer `user`: only the run's requester or a DBA
/// may remove a run's directory from the service.
async fn forget(svc: Arc<Service>, user: String, run: String) -> Result<Reply, String> {
    let _dir = run_dir(&svc, &run)?;
    tokio::task::spawn_blocking(move || {
        let cfg = crate::config::Config::load(&svc.config).map_err(|e| e.to_string())?;
        let key = crate::audit::AuditKey::load(svc.key_file.as_deref())
            .map_err(|e| format!("the service's audit key: {e}"))?;
        let who = crate::policy::Directory::new(&cfg.policy)
            .resolve(&crate::policy::Actor::local(user.clone()));
        let o = crate::cmd::runs::forget_in(&svc.trail, key, &svc.runs, &run, &user, |state| {
            let requester = state.requester.as_deref() == Some(who.person.as_str());
            if requester || who.role == Some(crate::policy::Role::Dba) {
                Ok(())
            } else {
                Err(format!(
                    "forgetting run {run} needs its requester or a DBA; {} ({user}) is neither",
                    who.name
                ))
            }
        })
        .map_err(|e| e.0)?;
        Ok(Reply::outcome(o))
    })
    .await
    .map_err(|e| e.to_string())?
}

fn parse(line: &str) -> Result<Op, String> {
    // The version first: a newer client's request may not parse as ours.
    let v = serde_json::from_str::<serde_json::Value>(line)
        .map_err(|e| format!("not a JSON request line: {e}"))?
        .get("v")
        .and_then(|v| v.as_u64());
    match v {
        Some(v) if v == u64::from(protocol::VERSION) => serde_json::from_str::<Request>(line)
            .map(|r| r.op)
            .map_err(|e| format!("bad request: {e}")),
        Some(v) => Err(format!(
            "protocol version {v} is not supported: this service ({}) speaks {}",
            env!("CARGO_PKG_VERSION"),
            protocol::VERSION
        )),
        None => Err("the request has no protocol version \"v\"".into()),
    }
}

fn run_dir(svc: &Service, run: &str) -> Result<PathBuf, String> {
    if !valid_run_id(run) {
        return Err(format!("'{run}' is not a run id"));
    }
    let dir = svc.runs.join(run);
    if !dir.join("run.json").exists() {
        return Err(format!(
            "run {run}: no such run on this service (its runs are in {})",
            svc.runs.display()
        ));
    }
    Ok(dir)
}

/// Connects to a run's supervisor (starting it when asked and not
/// running) and names the client's uid on that connection.
async fn reach(svc: &Service, run: &str, start: bool, uid: u32) -> Result<UnixStream, String> {
    let dir = run_dir(svc, run)?;
    let sock = supervisor::socket_path(&dir);
    if !supervisor::is_running(&dir) {
        if !start {
            return Err(crate::cmd::control::supervisor_gone(
                run,
                &sock,
                "no supervisor is running",
            ));
        }
        let mut child = runcmd::spawn_supervisor(&dir).map_err(|e| e.0)?;
        let waited = runcmd::wait_for(&sock, &dir, Some(&mut child)).await;
        reap(child);
        waited.map_err(|e| e.0)?;
    }
    let mut s = UnixStream::connect(&sock)
        .await
        .map_err(|e| crate::cmd::control::supervisor_gone(run, &sock, &e.to_string()))?;
    let mut hello =
        serde_json::to_string(&ClientMsg::OnBehalf { uid }).map_err(|e| e.to_string())?;
    hello.push('\n');
    s.write_all(hello.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    Ok(s)
}

/// Waits for a supervisor this service started, off the runtime, so it
/// never lingers as a zombie.
fn reap(mut child: std::process::Child) {
    std::thread::spawn(move || {
        let _ = child.wait();
    });
}

struct RunRequest {
    target: String,
    inputs: Vec<Input>,
    source_format: Option<String>,
    postpone_cut_over: bool,
    stop_if_refused: bool,
}

/// Writes the submitted files under `dir` (the service's own, 0700): the
/// paths to plan, one per input.
fn write_inputs(dir: &Path, inputs: &[Input]) -> Result<Vec<PathBuf>, InputError> {
    let bad = |what: &str| InputError(format!("refused: {what}"));
    if inputs.is_empty() {
        return Err(bad("no migration paths were sent"));
    }
    let mut paths = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let name = match relative_parts(&input.name).as_deref() {
            Some([one]) => one.to_string(),
            _ => return Err(bad(&format!("'{}' is not a file name", input.name))),
        };
        let base = dir.join(i.to_string()).join(&name);
        for f in &input.files {
            let parts = relative_parts(&f.path)
                .ok_or_else(|| bad(&format!("'{}' is not a relative path", f.path)))?;
            let dest = match (input.dir, parts.is_empty()) {
                (true, false) => parts.iter().fold(base.clone(), |p, c| p.join(c)),
                (false, true) => base.clone(),
                _ => return Err(bad(&format!("'{}' does not fit its input", f.path))),
            };
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(|e| InputError(e.to_string()))?;
            }
            std::fs::write(&dest, &f.text)
                .map_err(|e| InputError(format!("{}: {e}", dest.display())))?;
        }
        if input.dir {
            std::fs::create_dir_all(&base).map_err(|e| InputError(e.to_string()))?;
        }
        paths.push(base);
    }
    Ok(paths)
}

async fn run(svc: &Service, uid: u32, r: RunRequest) -> Result<Reply, InputError> {
    let _one = svc.runs_lock.lock().await;
    // The client's bytes, copied into the service's own directory; from here
    // on only the service's reading of them counts.
    let incoming = tempfile::Builder::new()
        .prefix("cutover-incoming-")
        .tempdir()
        .map_err(|e| InputError(format!("a directory for the submitted files: {e}")))?;
    let paths = write_inputs(incoming.path(), &r.inputs)?;
    let args = RunArgs {
        opts: PlanOpts {
            paths,
            engine: None,
            engine_version: None,
            source_format: r.source_format,
            target: Some(r.target),
            stats: None,
            rules: None,
            config: Some(svc.config.clone()),
        },
        client: ClientArgs {
            no_tui: true,
            format: LineFormat::Text,
            theme: None,
            read_only: false,
        },
        runs: svc.runs.clone(),
        trail: svc.trail.clone(),
        key_file: svc.key_file.clone(),
        postpone_cut_over: r.postpone_cut_over,
        service: ServiceOpt::default(),
    };
    // Planning reads the target (its own runtime): off this one.
    let prepared = tokio::task::spawn_blocking(move || runcmd::prepare(&args, true))
        .await
        .map_err(|e| InputError(format!("planning: {e}")))??;
    let p = match prepared {
        Prepare::Nothing(message) => {
            return Ok(Reply {
                note: Some(message),
                ..Reply::ok()
            });
        }
        Prepare::Ready(p) => p,
    };
    runcmd::withdraw_superseded(&p, Some(uid)).await;
    let mut l = runcmd::launch(&p).await?;
    drop(incoming);
    let refused = runcmd::go(&l.sock, &l.state, &p.id, Some(uid)).await?;
    if let Some(mut child) = l.spawned.take() {
        if refused.is_some() && r.stop_if_refused {
            runcmd::stop_supervisor(&mut child);
        } else {
            reap(child);
        }
    }
    Ok(Reply {
        run: Some(p.id.clone()),
        plan: Some(Box::new(p.plan.clone())),
        refused,
        note: l.note,
        ..Reply::ok()
    })
}

fn read_plan(svc: &Service, run: &str) -> Result<crate::model::Plan, String> {
    let dir = run_dir(svc, run)?;
    let path = dir.join("plan.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("run {run}: plan: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("run {run}: plan: {e}"))
}

fn runs(svc: &Service) -> Reply {
    let listed = crate::audit::AuditKey::load(svc.key_file.as_deref())
        .map_err(|e| InputError(format!("the service's audit key: {e}")))
        .and_then(|key| crate::cmd::runs::records_by_run(&svc.trail, &key))
        .map(|records| crate::cmd::runs::rows(&records, &svc.runs));
    match listed {
        Ok(rows) => Reply {
            rows: Some(rows),
            ..Reply::ok()
        },
        Err(e) => Reply::error(e.0, 1),
    }
}

fn head(svc: &Service) -> Reply {
    let key = match crate::audit::AuditKey::load(svc.key_file.as_deref()) {
        Ok(k) => k,
        Err(e) => return Reply::error(format!("the service's audit key: {e}"), 2),
    };
    match crate::audit::verify_file(&svc.trail, &key) {
        Ok(r) => match &r.problem {
            None => Reply {
                head: Some(format!("{} {}", r.records, r.head)),
                ..Reply::ok()
            },
            Some(p) => Reply::error(
                format!(
                    "the service's trail: NOT VERIFIED after {} good record(s): {p}",
                    r.records
                ),
                1,
            ),
        },
        Err(e) => Reply::error(format!("the service's trail: {e}"), 2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::protocol::SubmittedFile;

    #[test]
    fn versions_are_checked_before_anything_else() {
        assert!(parse(r#"{"v":1,"op":"head"}"#).is_ok());
        let e = parse(r#"{"v":2,"op":"teleport"}"#)
            .err()
            .unwrap_or_default();
        assert!(e.contains("protocol version 2 is not supported"), "{e}");
        let e = parse(r#"{"op":"head"}"#).err().unwrap_or_default();
        assert!(e.contains("no protocol version"), "{e}");
        assert!(parse("not json").is_err());
    }

    #[test]
    fn submitted_files_land_inside_the_services_directory() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = |path: &str| SubmittedFile {
            path: path.into(),
            text: "SELECT 1;".into(),
        };
        let ok = [
            Input {
                name: "db".into(),
                dir: true,
                files: vec![file("V1__a.sql"), file("sub/V2__b.sql")],
            },
            Input {
                name: "V3__c.sql".into(),
                dir: false,
                files: vec![file("")],
            },
        ];
        let paths = write_inputs(dir.path(), &ok).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(paths.len(), 2);
        assert!(paths[0].join("sub/V2__b.sql").is_file());
        assert!(paths[1].is_file());
        for (name, path) in [("db", "../../escape.sql"), ("..", "x.sql"), ("a/b", "x")] {
            let bad = [Input {
                name: name.into(),
                dir: true,
                files: vec![file(path)],
            }];
            assert!(write_inputs(dir.path(), &bad).is_err(), "{name} {path}");
        }
        assert!(!dir.path().join("escape.sql").exists());
    }
}
