//! Service mode: `cutover serve`, a long-running process that runs as its own
//! OS user and alone owns the run directories, the audit trail and its key.
//!
//! Without it, whoever runs `cutover run` owns the run directory and can
//! read the key: local approval then separates well-meaning people only.
//! With it, `cutover run`, `attach`, `resume`, `approve`, the run controls,
//! `runs` and `audit head` are clients of the service's socket. The service knows
//! each client by the kernel's peer credentials (`SO_PEERCRED` uid → OS user
//! name → the person of `[policy]`), copies the migration files a client
//! submits into its own run directory, plans and digests them itself, and
//! starts the run's supervisor as today — as the service user. A client's
//! connection to a run is relayed by the service to the run's supervisor,
//! naming the client's uid ([`crate::supervisor::ClientMsg::OnBehalf`]), so
//! the existing authorization and no-self-approval rules decide as before.
//!
//! The protocol is [`protocol`]: one JSON line each way, versioned.

pub mod client;
pub mod protocol;
pub mod server;

use serde::Deserialize;
use std::path::PathBuf;

/// `[service]` in cutover.toml: where the service listens, and (for the
/// service itself) where it keeps runs, trail and key.
#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// The service's socket. Clients that see it use the service.
    pub socket: Option<PathBuf>,
    /// OS group allowed to connect to the socket (mode 0660).
    #[serde(default)]
    pub group: Option<String>,
    /// The service's run directories (`.cutover/runs` in its working directory).
    #[serde(default)]
    pub runs: Option<PathBuf>,
    /// The service's audit trail (`.cutover/audit.jsonl` in its working directory).
    #[serde(default)]
    pub trail: Option<PathBuf>,
    /// The audit key file (else `CUTOVER_AUDIT_KEY` in the service's environment).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}
