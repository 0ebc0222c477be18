//! The per-run supervisor process and its control socket.
//!
//! `cutover run` starts (or reuses) one supervisor per run. It owns the run
//! core, the executor, the lag pollers and the Slack relay's sender; the
//! console and the headless printer are clients on a Unix socket, so
//! quitting or losing the console never stops a migration, and `cutover
//! attach RUN` reconnects. Local commands take their actor from the peer's
//! credentials (`SO_PEERCRED`), never from what the client claims.
//!
//! A supervisor holds `<run_dir>/supervisor.lock` (an advisory lock the
//! kernel drops when the process dies, even on kill -9): a lock that can be
//! taken means nobody is running the run, and a restart goes through
//! [`RunCore::recover`](crate::run::core::RunCore::recover).

pub mod client;
pub mod peer;
pub mod protocol;
pub mod server;

pub use client::Client;
pub use protocol::{ClientMsg, ServerMsg};
pub use server::{ForwardedInteractions, bind, serve, serve_with};

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// Longest socket path that fits `sockaddr_un.sun_path` with its NUL on
/// every platform cutover runs on (Linux allows 108, macOS 104).
const SUN_PATH_MAX: usize = 103;

/// The socket's path for a run directory: inside it when that fits
/// `sun_path`, else a short name in a per-user directory (derived from the
/// run directory's absolute path, so every client finds the same one).
pub fn socket_path(run_dir: &Path) -> PathBuf {
    let inside = run_dir.join("control.sock");
    if inside.as_os_str().len() <= SUN_PATH_MAX {
        return inside;
    }
    use sha2::{Digest, Sha256};
    let abs = std::fs::canonicalize(run_dir).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|d| d.join(run_dir))
            .unwrap_or_else(|_| run_dir.to_path_buf())
    });
    let digest = hex::encode(Sha256::digest(abs.as_os_str().as_encoded_bytes()));
    short_socket_dir().join(format!("{}.sock", &digest[..24]))
}

/// `$XDG_RUNTIME_DIR/cutover` or `/tmp/cutover-<uid>`, owner-only (also
/// where live Slack relays register, see `slack::route`).
pub fn short_socket_dir() -> PathBuf {
    let uid = peer::current_uid();
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_dir() && p.as_os_str().len() < 60)
        .map(|p| p.join("cutover"))
        .unwrap_or_else(|| PathBuf::from(format!("/tmp/cutover-{uid}")))
}

/// Creates the short socket directory when a run's socket lives there,
/// refusing one that another user owns or others can enter.
pub fn prepare_socket_dir(sock: &Path) -> Result<(), SupervisorError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Some(dir) = sock.parent() else {
        return Ok(());
    };
    if dir != short_socket_dir() {
        return Ok(());
    }
    let io = |what, source| SupervisorError::Io {
        what,
        path: dir.to_path_buf(),
        source,
    };
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io("creating socket directory", e)),
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|e| io("reading socket directory", e))?;
    if !meta.is_dir() || meta.uid() != peer::current_uid() {
        return Err(io(
            "checking socket directory",
            std::io::Error::other("not a directory owned by this user"),
        ));
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| io("securing socket directory", e))
}

/// Supervisor failures.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// Socket or lock-file I/O.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Another supervisor runs this run.
    #[error("a supervisor is already running for {0} (use `cutover attach`)")]
    AlreadyRunning(PathBuf),
    /// A protocol error on the socket.
    #[error("control socket: {0}")]
    Protocol(String),
}

/// Held for the supervisor's lifetime; the kernel releases it on death.
#[derive(Debug)]
pub struct SupervisorLock {
    _file: File,
}

/// Creates the run directory (owner-only) and takes the supervisor lock.
pub fn lock_run_dir(run_dir: &Path) -> Result<SupervisorLock, SupervisorError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |what, path: &Path| {
        let path = path.to_path_buf();
        move |source| SupervisorError::Io { what, path, source }
    };
    std::fs::create_dir_all(run_dir).map_err(io("creating run directory", run_dir))?;
    // The socket lives here: nobody else may even look up its name.
    std::fs::set_permissions(run_dir, std::fs::Permissions::from_mode(0o700))
        .map_err(io("securing run directory", run_dir))?;
    let path = run_dir.join("supervisor.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io("opening", &path))?;
    match file.try_lock() {
        Ok(()) => Ok(SupervisorLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => Err(SupervisorError::AlreadyRunning(path)),
        Err(std::fs::TryLockError::Error(e)) => Err(SupervisorError::Io {
            what: "locking",
            path,
            source: e,
        }),
    }
}

/// Whether a live supervisor holds the run (the lock is taken).
pub fn is_running(run_dir: &Path) -> bool {
    matches!(
        lock_run_dir(run_dir),
        Err(SupervisorError::AlreadyRunning(_))
    )
}

/// Runs a supervisor: serves the control socket in `run_dir` while `core`
/// runs, then removes the socket. `requests` is the core's request channel;
/// keep a clone of its sender for in-process surfaces (the Slack relay).
pub async fn supervise(
    run_dir: &Path,
    core: crate::run::core::RunCore,
    requests: (
        tokio::sync::mpsc::Sender<crate::run::core::Request>,
        tokio::sync::mpsc::Receiver<crate::run::core::Request>,
    ),
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<crate::run::RunState, SupervisorError> {
    supervise_with(run_dir, core, requests, shutdown, false, None).await
}

/// [`supervise`], for a run `cutover serve` opened when `service` (see
/// [`serve_with`]), with the run's Slack relay taking interactions that
/// other supervisors' relays received for this run (`forwarded`, see
/// [`ClientMsg::SlackInteraction`]).
pub async fn supervise_with(
    run_dir: &Path,
    core: crate::run::core::RunCore,
    requests: (
        tokio::sync::mpsc::Sender<crate::run::core::Request>,
        tokio::sync::mpsc::Receiver<crate::run::core::Request>,
    ),
    shutdown: tokio_util::sync::CancellationToken,
    service: bool,
    forwarded: Option<std::sync::Arc<dyn ForwardedInteractions>>,
) -> Result<crate::run::RunState, SupervisorError> {
    let path = socket_path(run_dir);
    prepare_socket_dir(&path)?;
    let listener = bind(&path)?;
    let (tx, rx) = requests;
    let serving = shutdown.child_token();
    let server = tokio::spawn(serve_with(
        listener,
        tx,
        serving.clone(),
        service,
        forwarded,
    ));
    let result = core.run(rx, shutdown).await;
    // Let clients drain the final events before the socket goes away.
    tokio::task::yield_now().await;
    serving.cancel();
    let _ = server.await;
    let _ = std::fs::remove_file(&path);
    result.map_err(|e| SupervisorError::Protocol(e.to_string()))
}
