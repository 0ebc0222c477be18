//! The trail's HMAC key: never stored in the trail, loaded from a file or
//! the environment.

use super::AuditError;
use std::fmt;
use std::path::Path;

/// Environment variable holding the key when no key file is configured.
pub const KEY_ENV: &str = "CUTOVER_AUDIT_KEY";

/// Keys shorter than this are refused: the chain is only as strong as the key.
const MIN_KEY_BYTES: usize = 16;

/// The HMAC key. `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct AuditKey(Vec<u8>);

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuditKey(<{} bytes>)", self.0.len())
    }
}

impl AuditKey {
    /// A key from bytes (at least 16).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<AuditKey, AuditError> {
        let bytes = bytes.into();
        if bytes.len() < MIN_KEY_BYTES {
            return Err(AuditError::Key(format!(
                "the key has {} bytes; use at least {MIN_KEY_BYTES} (e.g. `head -c 32 /dev/urandom | base64`)",
                bytes.len()
            )));
        }
        Ok(AuditKey(bytes))
    }

    /// Loads the key from `file` when given, else from `CUTOVER_AUDIT_KEY`.
    /// Surrounding whitespace (a trailing newline) is not part of the key.
    pub fn load(file: Option<&Path>) -> Result<AuditKey, AuditError> {
        match file {
            Some(path) => {
                let raw = std::fs::read(path).map_err(|e| {
                    AuditError::Key(format!("cannot read key file {}: {e}", path.display()))
                })?;
                AuditKey::new(trim(&raw).to_vec())
            }
            None => match std::env::var(KEY_ENV) {
                Ok(v) => AuditKey::new(v.trim().as_bytes().to_vec()),
                Err(_) => Err(AuditError::Key(format!(
                    "no audit key: set {KEY_ENV} or configure a key file"
                ))),
            },
        }
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_from_file_ignores_the_trailing_newline_and_refuses_short_keys() {
        let dir = tempfile::tempdir().ok();
        let Some(dir) = dir else { return };
        let p = dir.path().join("k");
        std::fs::write(&p, "0123456789abcdef0123\n").ok();
        let k = AuditKey::load(Some(&p)).ok();
        assert_eq!(k.as_ref().map(|k| k.bytes().len()), Some(20));
        assert!(!format!("{k:?}").contains("0123"));
        std::fs::write(&p, "short\n").ok();
        assert!(AuditKey::load(Some(&p)).is_err());
    }
}
