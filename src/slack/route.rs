//! Routing interactions between the live relays of one user.
//!
//! Every supervisor's relay opens its own Socket Mode link of the one Slack
//! app, and Slack hands each envelope to *one* open link of its choice. A
//! relay that receives a click or modal submission for a run it does not
//! serve finds that run's supervisor — in its own project's runs directory,
//! else in the per-user registry of live relays (runs of other projects) —
//! and forwards the payload over that supervisor's control socket
//! ([`ClientMsg::SlackInteraction`](crate::supervisor::ClientMsg)). The
//! receiving supervisor's relay handles it exactly as if Slack had delivered
//! it there (same authorization, recording and answers).
//!
//! The registry is `<short socket dir>/live/` (owner-only): one file per
//! live relay, `<run>@<hash of its run dir>`, holding the run directory.
//! A killed supervisor leaves its file behind; its socket then refuses
//! connections and the run counts as not live.

use crate::run::core::Reply;
use crate::supervisor::{Client, socket_path};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long one forward may take (the envelope is already acked; the
/// receiving relay still has to open a modal within Slack's 3 s).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(2);

/// Where a forwarded interaction ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed {
    /// The run's own supervisor took it.
    Taken,
    /// The run exists here, but no supervisor runs it.
    NotLive,
    /// Live supervisors of that run id refused it (why, per supervisor).
    NotTaken(Vec<String>),
    /// No run of that id is known on this host.
    Unknown,
}

/// Finds and reaches the supervisor of a run this relay does not serve.
#[derive(Debug, Clone)]
pub struct Router {
    runs_dir: PathBuf,
    registry: PathBuf,
    own_run: String,
}

/// A run id that may name a file: what `cutover run` makes (letters,
/// digits, `-`, `_`, `.`), never a path. A payload's run id comes from Slack.
pub fn valid_run_id(run: &str) -> bool {
    !run.is_empty()
        && run.len() <= 200
        && !run.starts_with('.')
        && run
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// This relay's entry in the registry, removed when dropped.
#[derive(Debug)]
pub struct Registration {
    path: PathBuf,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn dir_hash(dir: &Path) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(dir.as_os_str().as_encoded_bytes()))[..12].to_string()
}

fn absolute(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
}

impl Router {
    /// Routes from the relay of `own_run`, whose project keeps its runs in
    /// `runs_dir`, using the registry directory `registry`.
    pub fn new(runs_dir: &Path, registry: &Path, own_run: &str) -> Router {
        Router {
            runs_dir: runs_dir.to_path_buf(),
            registry: registry.to_path_buf(),
            own_run: own_run.to_string(),
        }
    }

    /// The registry of this user's live relays on this host.
    pub fn default_registry() -> PathBuf {
        crate::supervisor::short_socket_dir().join("live")
    }

    /// Enters `run` (in `run_dir`) in the registry, so relays of other
    /// projects can forward its interactions here.
    pub fn register(&self, run: &str, run_dir: &Path) -> std::io::Result<Registration> {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt};
        if !valid_run_id(run) {
            return Err(std::io::Error::other(format!(
                "run id '{run}' cannot name a file"
            )));
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.registry)?;
        // Entries say where to send approvals: only this user may write them.
        let meta = std::fs::symlink_metadata(&self.registry)?;
        if !meta.is_dir()
            || meta.uid() != crate::supervisor::peer::current_uid()
            || meta.mode() & 0o022 != 0
        {
            return Err(std::io::Error::other(format!(
                "{}: not a directory of this user's that only it may write",
                self.registry.display()
            )));
        }
        self.prune();
        let dir = absolute(run_dir);
        let path = self.registry.join(format!("{run}@{}", dir_hash(&dir)));
        std::fs::write(&path, dir.as_os_str().as_encoded_bytes())?;
        Ok(Registration { path })
    }

    /// Drops entries whose run directory is gone (a killed supervisor's
    /// run, its directory removed since): they could never be reached.
    fn prune(&self) {
        let Ok(entries) = std::fs::read_dir(&self.registry) else {
            return;
        };
        for e in entries.flatten() {
            let gone = std::fs::read_to_string(e.path())
                .map(|d| !Path::new(&d).join("run.json").exists())
                .unwrap_or(false);
            if gone {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    /// The run directories that may hold `run`: this project's first, then
    /// the registered ones; never this relay's own (no forwarding to itself).
    pub fn candidates(&self, run: &str) -> Vec<PathBuf> {
        if !valid_run_id(run) {
            return Vec::new();
        }
        let me = absolute(&self.runs_dir.join(&self.own_run));
        let mut dirs = Vec::new();
        let own = self.runs_dir.join(run);
        if own.join("run.json").exists() && absolute(&own) != me {
            dirs.push(absolute(&own));
        }
        let prefix = format!("{run}@");
        if let Ok(entries) = std::fs::read_dir(&self.registry) {
            let mut listed: Vec<PathBuf> = entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .map(PathBuf::from)
                .filter(|d| d.join("run.json").exists())
                .collect();
            listed.sort();
            for d in listed {
                if d != me && !dirs.contains(&d) {
                    dirs.push(d);
                }
            }
        }
        dirs
    }

    /// Forwards `payload` (for `run`) to that run's live supervisor.
    pub async fn forward(&self, payload: &Value, run: &str) -> Routed {
        let dirs = self.candidates(run);
        if dirs.is_empty() {
            return Routed::Unknown;
        }
        let mut refused = Vec::new();
        for dir in dirs {
            // Where the supervisor put it depends on the length of the path
            // *it* was given (often relative): inside the run directory, or
            // the short per-user name derived from the absolute path.
            let inside = dir.join("control.sock");
            let sock = if inside.exists() {
                inside
            } else {
                socket_path(&dir)
            };
            let attempt = async {
                // No socket, or nobody listening: the supervisor is not running.
                let mut c = Client::connect(&sock).await.ok()?;
                Some(c.forward_slack(payload.clone(), &self.own_run).await)
            };
            match tokio::time::timeout(FORWARD_TIMEOUT, attempt).await {
                Ok(None) => {}
                Ok(Some(Ok(Reply::Accepted { .. }))) => return Routed::Taken,
                Ok(Some(Ok(Reply::Refused { reason }))) => refused.push(reason),
                Ok(Some(Ok(other))) => refused.push(format!("{other:?}")),
                Ok(Some(Err(e))) => refused.push(e.to_string()),
                Err(_) => refused.push("its supervisor did not answer in time".into()),
            }
        }
        if refused.is_empty() {
            Routed::NotLive
        } else {
            Routed::NotTaken(refused)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_from_slack_never_name_paths() {
        for ok in ["prod-V1-3fa2c1d9e0b4", "staging-V1..V12-abc_def-2"] {
            assert!(valid_run_id(ok), "{ok}");
        }
        for bad in ["", "..", ".hidden", "a/b", "../runs", "a b", "x\0"] {
            assert!(!valid_run_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn registered_runs_are_found_and_unregistered_on_drop() {
        let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (runs_a, runs_b) = (t.path().join("a/runs"), t.path().join("b/runs"));
        let registry = t.path().join("live");
        for d in [runs_a.join("r1"), runs_b.join("r2")] {
            std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(d.join("run.json"), "{}").unwrap_or_else(|e| panic!("{e}"));
        }
        let a = Router::new(&runs_a, &registry, "r1");
        let b = Router::new(&runs_b, &registry, "r2");
        // Another run of project a finds r1 in the runs directory.
        let a3 = Router::new(&runs_a, &registry, "r3");
        assert_eq!(a3.candidates("r1"), vec![absolute(&runs_a.join("r1"))]);
        assert!(a.candidates("r1").is_empty(), "never itself");
        assert!(a.candidates("r2").is_empty());
        let reg = b
            .register("r2", &runs_b.join("r2"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.candidates("r2"), vec![absolute(&runs_b.join("r2"))]);
        assert!(a.candidates("../b/runs/r2").is_empty());
        // Never itself, even when registered (another project's run of the same id is fine).
        let _own = a
            .register("r1", &runs_a.join("r1"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(a.candidates("r1").is_empty());
        assert_eq!(b.candidates("r1"), vec![absolute(&runs_a.join("r1"))]);
        drop(reg);
        assert!(a.candidates("r2").is_empty());
        // A registered run whose directory went away is dropped at the next registration.
        let stale = b
            .register("r2", &runs_b.join("r2"))
            .unwrap_or_else(|e| panic!("{e}"));
        std::mem::forget(stale);
        std::fs::remove_dir_all(runs_b.join("r2")).unwrap_or_else(|e| panic!("{e}"));
        let _again = a
            .register("r1", &runs_a.join("r1"))
            .unwrap_or_else(|e| panic!("{e}"));
        let left: Vec<_> = std::fs::read_dir(&registry)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert_eq!(left.len(), 1, "{left:?}");
    }
}
