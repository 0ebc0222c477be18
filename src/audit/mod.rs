//! The audit trail: one append-only JSON Lines file per project, each record
//! carrying an HMAC-SHA256 tag over its own bytes and the previous record's
//! tag.
//!
//! Why a keyed chain and not a plain hash chain: anyone who can edit the file
//! can also recompute plain hashes, so a hash chain only detects accidents. The
//! key lives outside the trail (a file or `CUTOVER_AUDIT_KEY`), so a forger
//! cannot re-chain. Truncation of whole records is caught against the head tag
//! published in run summaries and kept in the `<trail>.head` side file.
//!
//! Entry points for the CLI: [`verify_file`], [`show_file`], [`export_file`],
//! [`AuditKey::load`]; the run core appends through [`Trail`].

pub mod chain;
pub mod entry;
pub mod export;
pub mod key;
pub mod show;

pub use chain::{
    Anchor, HeadFile, OpenReport, Problem, Trail, VerifiedEntry, VerifyReport, check_expected_head,
    read_file, read_head, repair, verify_bytes, verify_file,
};
pub use entry::{Entry, RelayRecord, staging_successes};
pub use export::{ExportFormat, export};
pub use key::{AuditKey, KEY_ENV};
pub use show::show;

use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};

/// Audit trail failures.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Reading or writing the trail.
    #[error("audit trail {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// No key, or an unusable one.
    #[error("audit key: {0}")]
    Key(String),
    /// The trail does not verify: appending to it would bury the evidence.
    #[error(
        "audit trail {path} does not verify at record {line}: {reason} (run `cutover audit verify` and investigate before appending)"
    )]
    Tampered {
        /// The file.
        path: PathBuf,
        /// 1-based record number.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// An entry could not be serialised.
    #[error("audit entry: {0}")]
    Encode(#[from] serde_json::Error),
}

impl AuditError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> AuditError {
        AuditError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// `cutover audit show [RUN|VERSION]`: verifies the trail, then renders the
/// timeline of the runs matching `filter` (a run id or a migration version;
/// all when `None`). A trail that does not verify is shown up to its first
/// bad record, followed by the problem (also returned: the caller exits 1).
pub fn show_file(
    path: &Path,
    key: &AuditKey,
    filter: Option<&str>,
) -> Result<(String, Option<Problem>), AuditError> {
    let (entries, report) = read_file(path, key)?;
    let mut out = show(&entries, filter);
    if let Some(p) = &report.problem {
        out.push_str(&format!("\n!! {p}\n"));
    }
    Ok((out, report.problem))
}

/// `cutover audit export --format json|csv [--since …]`: the verified records
/// rendered for compliance, and the problem when the trail does not verify
/// (then the rendering holds only the records before it).
pub fn export_file(
    path: &Path,
    key: &AuditKey,
    format: ExportFormat,
    since: Option<DateTime<Utc>>,
) -> Result<(String, Option<Problem>), AuditError> {
    let (entries, report) = read_file(path, key)?;
    Ok((export(&entries, format, since), report.problem))
}
