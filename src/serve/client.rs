//! The client side of service mode: which socket, the one-line calls, and a
//! private local relay so the console, the headless printer and the run
//! controls talk to a run through the service exactly as they talk to a
//! local supervisor socket.

use super::protocol::{self, Input, Op, Reply, Request, SubmittedFile};
use crate::cli::{RunArgs, ServiceOpt};
use crate::cmd::plan::InputError;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// The service socket a client command uses: `--service` / `CUTOVER_SERVICE`,
/// else `[service] socket` of cutover.toml (`config`, else the discovered
/// one). `None`: no service, everything runs as the invoking user.
pub fn socket(opt: &ServiceOpt, config: Option<&Path>) -> Option<PathBuf> {
    if let Some(s) = &opt.service {
        return Some(s.clone());
    }
    let path = config
        .map(Path::to_path_buf)
        .or_else(crate::config::discover)?;
    crate::config::Config::load(&path).ok()?.service?.socket
}

fn unreachable(sock: &Path, e: impl std::fmt::Display) -> InputError {
    InputError(format!(
        "cannot reach the cutover service at {}: {e} (is `cutover serve` running, and are you in its group?)",
        sock.display()
    ))
}

/// Sends one request line; reads the reply line byte by byte, so nothing
/// after it (a relayed run's protocol) is consumed.
async fn call_on(stream: &mut UnixStream, sock: &Path, op: Op) -> Result<Reply, InputError> {
    let mut line = serde_json::to_string(&Request {
        v: protocol::VERSION,
        op,
    })
    .map_err(|e| InputError(e.to_string()))?;
    line.push('\n');
    stream
        .write_all(line.as_bytes())
        .await
        .map_err(|e| unreachable(sock, e))?;
    let mut buf = Vec::new();
    loop {
        let mut b = [0u8; 1];
        let n = stream
            .read(&mut b)
            .await
            .map_err(|e| unreachable(sock, e))?;
        if n == 0 || b[0] == b'\n' {
            break;
        }
        buf.push(b[0]);
    }
    if buf.is_empty() {
        return Err(InputError(format!(
            "the cutover service at {} closed the connection without a reply",
            sock.display()
        )));
    }
    let reply: Reply = serde_json::from_slice(&buf).map_err(|e| {
        InputError(format!(
            "the cutover service at {} sent an unreadable reply ({e}); is it the same version as this client ({})?",
            sock.display(),
            env!("CARGO_PKG_VERSION")
        ))
    })?;
    if reply.v != protocol::VERSION {
        return Err(InputError(format!(
            "the cutover service at {} speaks protocol {}, this client {}",
            sock.display(),
            reply.v,
            protocol::VERSION
        )));
    }
    Ok(reply)
}

async fn call(sock: &Path, op: Op) -> Result<(UnixStream, Reply), InputError> {
    let mut stream = UnixStream::connect(sock)
        .await
        .map_err(|e| unreachable(sock, e))?;
    let reply = call_on(&mut stream, sock, op).await?;
    Ok((stream, reply))
}

/// A failed reply as an error (the message is the service's).
fn refused(r: &Reply) -> InputError {
    InputError(
        r.error
            .clone()
            .unwrap_or_else(|| "the cutover service refused the request".into()),
    )
}

/// Where a client command reaches a run: the local supervisor socket, or a
/// relay through the service.
pub enum Endpoint {
    /// `<runs>/<run>/control.sock` (or its short name).
    Local(PathBuf),
    /// Through `cutover serve`.
    Service(Relay),
}

impl Endpoint {
    /// The run `run`'s endpoint. Through a service, the service is asked now
    /// (so "no such run" is this command's error) and `start` has it start
    /// the run's supervisor when none is running (`cutover resume`).
    pub async fn open(
        run: &str,
        runs: &Path,
        service: &ServiceOpt,
        start: bool,
    ) -> Result<Endpoint, InputError> {
        match socket(service, None) {
            Some(s) => Ok(Endpoint::Service(Relay::open(&s, run, start).await?)),
            None => Ok(Endpoint::Local(crate::supervisor::socket_path(
                &runs.join(run),
            ))),
        }
    }

    /// The socket path clients connect to.
    pub fn path(&self) -> &Path {
        match self {
            Endpoint::Local(p) => p,
            Endpoint::Service(r) => &r.path,
        }
    }
}

/// A socket in a private directory of this process; every connection to it
/// becomes a `connect` through the service, so code written for a local
/// supervisor socket works unchanged. The service sees this process's uid.
pub struct Relay {
    _dir: tempfile::TempDir,
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Opens a relay to run `run` through the service at `service`.
    pub async fn open(service: &Path, run: &str, start: bool) -> Result<Relay, InputError> {
        let (probe, reply) = call(
            service,
            Op::Connect {
                run: run.into(),
                start,
            },
        )
        .await?;
        if !reply.ok {
            return Err(refused(&reply));
        }
        drop(probe);
        let tmp = std::env::temp_dir();
        let base = if tmp.as_os_str().len() > 60 {
            PathBuf::from("/tmp")
        } else {
            tmp
        };
        let dir = tempfile::Builder::new()
            .prefix("cutover-relay-")
            .tempdir_in(base)
            .map_err(|e| InputError(format!("creating a relay directory: {e}")))?;
        // Whoever reaches this socket speaks to the run as this user: it
        // lives in a directory only this user may enter.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .map_err(|e| InputError(format!("{}: {e}", dir.path().display())))?;
        let path = dir.path().join("run.sock");
        let listener = tokio::net::UnixListener::bind(&path)
            .map_err(|e| InputError(format!("{}: {e}", path.display())))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| InputError(format!("{}: {e}", path.display())))?;
        let (service, run) = (service.to_path_buf(), run.to_string());
        let task = tokio::spawn(async move {
            while let Ok((mut local, _)) = listener.accept().await {
                let (service, run) = (service.clone(), run.clone());
                tokio::spawn(async move {
                    let op = Op::Connect { run, start: false };
                    if let Ok((mut up, reply)) = call(&service, op).await
                        && reply.ok
                    {
                        let _ = tokio::io::copy_bidirectional(&mut local, &mut up).await;
                    }
                });
            }
        });
        Ok(Relay {
            _dir: dir,
            path,
            task,
        })
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The files under the paths given on the command line, as sent to the
/// service. Hidden entries are skipped (as `.git`); a file that is not UTF-8
/// text is skipped with a note (it cannot be a migration).
pub fn gather(paths: &[PathBuf]) -> Result<Vec<Input>, InputError> {
    fn walk(
        root: &Path,
        dir: &Path,
        out: &mut Vec<SubmittedFile>,
        bytes: &mut usize,
    ) -> Result<(), InputError> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| InputError(format!("{}: {e}", dir.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for p in entries {
            let name = p.file_name().map(|n| n.to_string_lossy().to_string());
            if name.as_deref().is_none_or(|n| n.starts_with('.')) {
                continue;
            }
            if p.is_dir() {
                walk(root, &p, out, bytes)?;
            } else if p.is_file() {
                let rel = p
                    .strip_prefix(root)
                    .map_err(|e| InputError(e.to_string()))?
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().to_string())
                    .collect::<Vec<_>>()
                    .join("/");
                if let Some(text) = read_text(&p, bytes)? {
                    out.push(SubmittedFile { path: rel, text });
                }
            }
        }
        Ok(())
    }
    fn read_text(p: &Path, bytes: &mut usize) -> Result<Option<String>, InputError> {
        let raw = std::fs::read(p).map_err(|e| InputError(format!("{}: {e}", p.display())))?;
        *bytes += raw.len();
        if *bytes > protocol::MAX_REQUEST_BYTES / 2 {
            return Err(InputError(format!(
                "{}: the migration files exceed {} MiB, more than the service accepts",
                p.display(),
                protocol::MAX_REQUEST_BYTES / 2 / 1024 / 1024
            )));
        }
        match String::from_utf8(raw) {
            Ok(t) => Ok(Some(t)),
            Err(_) => {
                eprintln!(
                    "cutover: {}: not UTF-8 text, not sent to the service",
                    p.display()
                );
                Ok(None)
            }
        }
    }
    let mut bytes = 0;
    let mut inputs = Vec::new();
    for p in paths {
        let name = p
            .canonicalize()
            .ok()
            .and_then(|c| c.file_name().map(|n| n.to_string_lossy().to_string()))
            .ok_or_else(|| InputError(format!("{}: no such file or directory", p.display())))?;
        let mut files = Vec::new();
        let dir = p.is_dir();
        if dir {
            walk(p, p, &mut files, &mut bytes)?;
        } else if let Some(text) = read_text(p, &mut bytes)? {
            files.push(SubmittedFile {
                path: String::new(),
                text,
            });
        }
        inputs.push(Input { name, dir, files });
    }
    Ok(inputs)
}

/// `cutover run` through the service: the files' bytes go to the service,
/// which plans, records and requests the run as this user; then this
/// process follows the run like a local one.
pub fn run(a: &RunArgs, service: &Path) -> Result<i32, InputError> {
    for (given, flag) in [
        (a.opts.rules.is_some(), "--rules"),
        (a.opts.engine.is_some(), "--engine"),
        (a.opts.engine_version.is_some(), "--engine-version"),
        (a.opts.stats.is_some(), "--stats"),
    ] {
        if given {
            return Err(InputError(format!(
                "{flag} cannot be used with the cutover service: it plans with its own cutover.toml, rules and live table facts"
            )));
        }
    }
    let target = a.opts.target.clone().ok_or_else(|| {
        InputError("cutover run needs --target (verdicts come from live table facts)".into())
    })?;
    let inputs = gather(&a.opts.paths)?;
    let cfg = a
        .opts
        .config
        .clone()
        .or_else(crate::config::discover)
        .and_then(|p| crate::config::Config::load(&p).ok())
        .unwrap_or_default();
    let rt = crate::cmd::run::runtime()?;
    rt.block_on(async {
        let (_, reply) = call(
            service,
            Op::Run {
                target,
                inputs,
                source_format: a.opts.source_format.clone(),
                postpone_cut_over: a.postpone_cut_over,
                stop_if_refused: a.client.no_tui,
            },
        )
        .await?;
        if !reply.ok {
            if let Some(code) = reply.exit.filter(|c| *c != 2) {
                eprintln!("cutover: {}", refused(&reply));
                return Ok(code);
            }
            return Err(refused(&reply));
        }
        if let Some(n) = &reply.note {
            eprintln!("cutover: {n}");
        }
        let Some(id) = reply.run.clone() else {
            // Nothing to run (the note said why).
            return Ok(0);
        };
        if let Some(why) = &reply.refused {
            eprintln!("cutover: {why}");
            if a.client.no_tui {
                return Ok(3);
            }
        }
        let relay = Relay::open(service, &id, false).await?;
        let state = crate::cmd::run::current_state(&relay.path).await?;
        let header = state
            .spec
            .as_ref()
            .map(|s| crate::cmd::run::header(s, &cfg))
            .unwrap_or_default();
        let console = crate::tui::Console::new(header, reply.plan.map(|p| *p));
        crate::cmd::run::client(&relay.path, console, &cfg, &a.client, true, &|| None).await
    })
}

/// A run's plan, from the service (for the console of `attach`).
pub async fn plan(service: &Path, run: &str) -> Option<crate::model::Plan> {
    let (_, reply) = call(service, Op::Plan { run: run.into() }).await.ok()?;
    reply.plan.map(|p| *p)
}

/// `cutover audit head` of the service's trail.
pub fn head(service: &Path) -> Result<i32, InputError> {
    let rt = crate::cmd::run::runtime()?;
    rt.block_on(async {
        let (_, reply) = call(service, Op::Head).await?;
        match (reply.ok, &reply.head) {
            (true, Some(h)) => {
                println!("{h}");
                Ok(0)
            }
            _ => {
                eprintln!("cutover: {}", refused(&reply));
                Ok(reply.exit.unwrap_or(1))
            }
        }
    })
}

/// `cutover runs` of the service.
pub fn runs(service: &Path) -> Result<Vec<crate::cmd::runs::RunRow>, InputError> {
    let rt = crate::cmd::run::runtime()?;
    rt.block_on(async {
        let (_, reply) = call(service, Op::Runs).await?;
        match (reply.ok, reply.rows.clone()) {
            (true, Some(rows)) => Ok(rows),
            _ => Err(refused(&reply)),
        }
    })
}

/// Prints what the service said a command printed; returns its exit code.
fn print_outcome(r: &Reply) -> i32 {
    if let Some(out) = &r.output {
        print!("{out}");
    }
    if let Some(e) = &r.error {
        eprintln!("cutover: {}", e.trim_end());
    }
    r.exit.unwrap_or(if r.ok { 0 } else { 1 })
}

/// `cutover cleanup RUN` through the service: it lists what it would
/// remove, the person types the table name here, the service removes it
/// (as the person, recorded in its trail).
pub fn cleanup(service: &Path, a: &crate::cli::CleanupArgs) -> Result<i32, InputError> {
    let rt = crate::cmd::run::runtime()?;
    rt.block_on(async {
        let op = |confirm: Option<String>, shown: Option<String>| Op::Cleanup {
            run: a.run.clone(),
            backups: a.backups,
            confirm,
            shown,
        };
        let (_, reply) = call(service, op(a.confirm.clone(), None)).await?;
        let Some(table) = reply.confirm.clone() else {
            return Ok(print_outcome(&reply));
        };
        let shown = reply.output.clone().unwrap_or_default();
        print!("{shown}");
        let typed = crate::cmd::cleanup::ask_table(&table)?;
        let (_, done) = call(service, op(Some(typed), Some(shown))).await?;
        Ok(print_outcome(&done))
    })
}

/// `cutover forget RUN` through the service.
pub fn forget(service: &Path, run: &str) -> Result<i32, InputError> {
    let rt = crate::cmd::run::runtime()?;
    rt.block_on(async {
        let (_, reply) = call(service, Op::Forget { run: run.into() }).await?;
        Ok(print_outcome(&reply))
    })
}
