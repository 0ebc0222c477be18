//! `cutover serve`: service mode (see [`crate::serve`]). Resolves the paths
//! from flags and `[service]`, makes everything the service creates its
//! own (umask 077), refuses a key others can read, and listens.

use super::plan::InputError;
use crate::cli::ServeArgs;
use crate::config::Config;
use crate::serve::server::{self, Service};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn input(e: impl std::fmt::Display) -> InputError {
    InputError(e.to_string())
}

fn absolute(p: &Path) -> Result<PathBuf, InputError> {
    std::path::absolute(p).map_err(|e| InputError(format!("{}: {e}", p.display())))
}

/// A key file the service trusts: a regular file only its owner may read.
fn check_key_file(p: &Path) -> Result<(), InputError> {
    let m = std::fs::metadata(p).map_err(|e| InputError(format!("{}: {e}", p.display())))?;
    if m.mode() & 0o077 != 0 {
        return Err(InputError(format!(
            "{}: the audit key is readable by others (mode {:o}); `chmod 600` it and make it the service user's",
            p.display(),
            m.mode() & 0o777
        )));
    }
    if m.uid() != crate::supervisor::peer::current_uid() {
        return Err(InputError(format!(
            "{}: the audit key belongs to uid {}, not to the service user ({})",
            p.display(),
            m.uid(),
            crate::supervisor::peer::current_user()
        )));
    }
    Ok(())
}

/// Binds the service socket: 0660 and `group`'s when given, else 0600.
/// A live service on the same path is not replaced.
fn bind(sock: &Path, group: Option<&str>) -> Result<tokio::net::UnixListener, InputError> {
    if sock.exists() {
        if std::os::unix::net::UnixStream::connect(sock).is_ok() {
            return Err(InputError(format!(
                "{}: a cutover service is already listening there",
                sock.display()
            )));
        }
        std::fs::remove_file(sock).map_err(|e| InputError(format!("{}: {e}", sock.display())))?;
    }
    let listener = tokio::net::UnixListener::bind(sock)
        .map_err(|e| InputError(format!("{}: {e}", sock.display())))?;
    let mode = match group {
        Some(g) => {
            let gid = crate::supervisor::peer::group_id(g)
                .ok_or_else(|| InputError(format!("--group: no OS group named '{g}'")))?;
            rustix::fs::chown(sock, None, Some(rustix::fs::Gid::from_raw(gid))).map_err(|e| {
                InputError(format!(
                    "{}: giving the socket to group {g}: {e} (the service user must be a member)",
                    sock.display()
                ))
            })?;
            0o660
        }
        None => 0o600,
    };
    std::fs::set_permissions(sock, std::fs::Permissions::from_mode(mode))
        .map_err(|e| InputError(format!("{}: {e}", sock.display())))?;
    Ok(listener)
}

/// `cutover serve`.
pub fn run(a: &ServeArgs) -> Result<i32, InputError> {
    // Run directories, the trail, incoming files and every supervisor's
    // files: the service user's alone.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    if crate::supervisor::peer::current_uid() == 0 {
        eprintln!(
            "cutover serve: running as root; run it as a dedicated user (e.g. `cutover`) so that only that user owns runs, trail and key"
        );
    }
    let cfg_path = a
        .config
        .clone()
        .or_else(crate::config::discover)
        .ok_or_else(|| InputError("no cutover.toml found (use --config)".into()))?;
    let cfg_path = absolute(&cfg_path)?;
    let cfg = Config::load(&cfg_path).map_err(input)?;
    let sc = cfg.service.clone().unwrap_or_default();
    let sock = a.socket.clone().or(sc.socket).ok_or_else(|| {
        InputError(format!(
            "no socket: use --socket or set [service] socket in {}",
            cfg_path.display()
        ))
    })?;
    let group = a.group.clone().or(sc.group);
    let runs = absolute(
        &a.runs
            .clone()
            .or(sc.runs)
            .unwrap_or_else(|| ".cutover/runs".into()),
    )?;
    let trail = absolute(
        &a.trail
            .clone()
            .or(sc.trail)
            .unwrap_or_else(|| ".cutover/audit.jsonl".into()),
    )?;
    let key_file = a
        .key_file
        .clone()
        .or(sc.key_file)
        .map(|k| absolute(&k))
        .transpose()?;
    if let Some(k) = &key_file {
        check_key_file(k)?;
    }
    crate::audit::AuditKey::load(key_file.as_deref()).map_err(input)?;
    for dir in [Some(runs.as_path()), trail.parent()].into_iter().flatten() {
        std::fs::create_dir_all(dir).map_err(|e| InputError(format!("{}: {e}", dir.display())))?;
    }
    std::fs::set_permissions(&runs, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| InputError(format!("{}: {e}", runs.display())))?;
    if trail.exists() {
        std::fs::set_permissions(&trail, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| InputError(format!("{}: {e}", trail.display())))?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(input)?;
    rt.block_on(async {
        let listener = bind(&sock, group.as_deref())?;
        eprintln!(
            "cutover serve: listening on {} ({}), as {}; runs {}, trail {}",
            sock.display(),
            group
                .as_deref()
                .map(|g| format!("group {g}"))
                .unwrap_or_else(|| "owner only: set --group for other users".into()),
            crate::supervisor::peer::current_user(),
            runs.display(),
            trail.display()
        );
        let svc = Arc::new(Service::new(cfg_path, runs, trail, key_file));
        let shutdown = tokio_util::sync::CancellationToken::new();
        let serving = tokio::spawn(server::serve(svc, listener, shutdown.clone()));
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(input)?;
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        // Supervisors are their own process groups: runs go on without the
        // service, and a restarted service relays to them again.
        shutdown.cancel();
        let _ = serving.await;
        let _ = std::fs::remove_file(&sock);
        eprintln!("cutover serve: stopped");
        Ok(0)
    })
}
