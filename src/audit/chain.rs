//! The keyed chain: line format, append (file lock + fsync), verify, and
//! torn-line handling.
//!
//! A line is `{"tag":"<64 hex>","body":<body>}` where `<body>` is
//! `{"n":<record number>,"prev":"<previous tag>","entry":<entry>}` and the tag is
//! HMAC-SHA256(key, domain ‖ body bytes). The tag's position and length are
//! fixed, so the verifier takes the body's exact bytes from the line instead
//! of re-serialising (which could differ in float or key formatting).

use super::AuditError;
use super::entry::Entry;
use super::key::AuditKey;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const DOMAIN: &[u8] = b"cutover-audit-v1\n";
const PREFIX: &str = "{\"tag\":\"";
const MIDDLE: &str = "\",\"body\":";
const TAG_HEX: usize = 64;
/// The previous tag of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A verified record.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedEntry {
    /// 1-based record number.
    pub n: u64,
    /// Its tag (hex).
    pub tag: String,
    /// Its payload.
    pub entry: Entry,
}

#[derive(Serialize)]
struct BodyOut<'a> {
    n: u64,
    prev: &'a str,
    entry: &'a Entry,
}

#[derive(Deserialize)]
struct BodyIn {
    n: u64,
    prev: String,
    entry: serde_json::Value,
}

/// What is wrong with a trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    /// A complete record fails: edited, deleted, reordered, forged.
    BadRecord {
        /// 1-based record number (= line number).
        line: u64,
        /// What failed.
        reason: String,
    },
    /// The last line is incomplete (a crash during an append).
    TornTail {
        /// 1-based line number.
        line: u64,
        /// Its length in bytes.
        bytes: u64,
    },
    /// Whole records are missing at the end (checked against a published head).
    Truncated {
        /// Records the anchor says there were.
        expected: u64,
        /// Records found.
        found: u64,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::BadRecord { line, reason } => write!(f, "record {line} is bad: {reason}"),
            Problem::TornTail { line, bytes } => write!(
                f,
                "line {line} is torn ({bytes} bytes without a newline): an append was interrupted"
            ),
            Problem::Truncated { expected, found } => write!(
                f,
                "the trail is truncated: the published head is record {expected}, the trail ends at record {found} (records {} onwards are missing)",
                found + 1
            ),
        }
    }
}

/// The result of verifying a trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Records that verify, from the first.
    pub records: u64,
    /// Tag of the last good record (the genesis value for an empty trail).
    pub head: String,
    /// The first problem, if any.
    pub problem: Option<Problem>,
}

impl VerifyReport {
    /// Whether the whole trail verifies.
    pub fn ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// A published head: record count and tag (from a run summary or the `.head` file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// Records at the time.
    pub records: u64,
    /// Tag of the last of them.
    pub tag: String,
}

fn mac(key: &AuditKey, body: &[u8]) -> Result<Hmac<Sha256>, AuditError> {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key.bytes())
        .map_err(|e| AuditError::Key(e.to_string()))?;
    m.update(DOMAIN);
    m.update(body);
    Ok(m)
}

/// Builds the line for record `n` after `prev` (without the newline).
fn encode(
    key: &AuditKey,
    n: u64,
    prev: &str,
    entry: &Entry,
) -> Result<(String, String), AuditError> {
    let body = serde_json::to_string(&BodyOut { n, prev, entry })?;
    let tag = hex::encode(mac(key, body.as_bytes())?.finalize().into_bytes());
    Ok((format!("{PREFIX}{tag}{MIDDLE}{body}}}"), tag))
}

/// Checks one complete line as record `n` after `prev`; returns its tag and entry.
fn check_line(key: &AuditKey, line: &[u8], n: u64, prev: &str) -> Result<(String, Entry), String> {
    let text = std::str::from_utf8(line).map_err(|_| "not UTF-8".to_string())?;
    let rest = text
        .strip_prefix(PREFIX)
        .ok_or("not a trail record (bad prefix)")?;
    let tag = rest.get(..TAG_HEX).ok_or("tag too short")?;
    let body = rest
        .get(TAG_HEX..)
        .and_then(|r| r.strip_prefix(MIDDLE))
        .and_then(|r| r.strip_suffix('}'))
        .ok_or("not a trail record (bad framing)")?;
    let tag_bytes = hex::decode(tag).map_err(|_| "tag is not hex".to_string())?;
    mac(key, body.as_bytes())
        .map_err(|e| e.to_string())?
        .verify_slice(&tag_bytes)
        .map_err(|_| {
            "tag does not match its content (edited, or forged without the key)".to_string()
        })?;
    let parsed: BodyIn = serde_json::from_str(body).map_err(|e| format!("body: {e}"))?;
    if parsed.n != n {
        return Err(format!(
            "record number {} where {n} was expected (records deleted or reordered)",
            parsed.n
        ));
    }
    if parsed.prev != prev {
        return Err(
            "does not chain to the record before it (records deleted, reordered or inserted)"
                .into(),
        );
    }
    let entry: Entry =
        serde_json::from_value(parsed.entry).map_err(|e| format!("unknown entry: {e}"))?;
    Ok((tag.to_string(), entry))
}

/// Verifies trail bytes, returning the good records (up to the first problem)
/// and the report. `anchor` checks for truncation of whole records.
pub fn verify_bytes(
    key: &AuditKey,
    bytes: &[u8],
    anchor: Option<&Anchor>,
) -> (Vec<VerifiedEntry>, VerifyReport) {
    let mut entries = Vec::new();
    let mut head = GENESIS.to_string();
    let mut problem = None;
    let mut rest = bytes;
    let mut n = 0u64;
    while !rest.is_empty() {
        let Some(nl) = rest.iter().position(|b| *b == b'\n') else {
            problem = Some(Problem::TornTail {
                line: n + 1,
                bytes: rest.len() as u64,
            });
            break;
        };
        let line = &rest[..nl];
        rest = &rest[nl + 1..];
        match check_line(key, line, n + 1, &head) {
            Ok((tag, entry)) => {
                n += 1;
                head = tag.clone();
                entries.push(VerifiedEntry { n, tag, entry });
            }
            Err(reason) => {
                problem = Some(Problem::BadRecord {
                    line: n + 1,
                    reason,
                });
                break;
            }
        }
    }
    if problem.is_none()
        && let Some(a) = anchor
    {
        if a.records > n {
            problem = Some(Problem::Truncated {
                expected: a.records,
                found: n,
            });
        } else if a.records > 0
            && entries.get(a.records as usize - 1).map(|e| e.tag.as_str()) != Some(a.tag.as_str())
        {
            problem = Some(Problem::BadRecord {
                line: a.records,
                reason: "does not match the published head tag (the trail was rewritten)".into(),
            });
        }
    }
    let report = VerifyReport {
        records: n,
        head,
        problem,
    };
    (entries, report)
}

fn head_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_os_string();
    p.push(".head");
    PathBuf::from(p)
}

fn read_anchor(path: &Path) -> Option<Anchor> {
    let text = std::fs::read_to_string(head_path(path)).ok()?;
    let (n, tag) = text.trim().split_once(' ')?;
    Some(Anchor {
        records: n.parse().ok()?,
        tag: tag.to_string(),
    })
}

/// Reads and verifies a trail file against its `.head` side file when present.
pub fn read_file(
    path: &Path,
    key: &AuditKey,
) -> Result<(Vec<VerifiedEntry>, VerifyReport), AuditError> {
    let bytes = std::fs::read(path).map_err(|e| AuditError::io(path, e))?;
    Ok(verify_bytes(key, &bytes, read_anchor(path).as_ref()))
}

/// `cutover audit verify`: checks the whole chain and names the first bad record.
/// I/O errors are `Err`; a trail that does not verify is `Ok` with
/// [`VerifyReport::problem`] set (exit non-zero on `!report.ok()`).
pub fn verify_file(path: &Path, key: &AuditKey) -> Result<VerifyReport, AuditError> {
    read_file(path, key).map(|(_, r)| r)
}

/// What opening a trail for appending found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// Complete records kept.
    pub records: u64,
    /// A torn last line moved aside (and recorded as an entry), if there was one.
    pub torn: Option<Problem>,
}

/// An open trail for appending. Several processes may hold one on the same
/// file: every append takes an exclusive lock, catches up with records the
/// others wrote, then writes and fsyncs.
#[derive(Debug)]
pub struct Trail {
    path: PathBuf,
    key: AuditKey,
    file: File,
    len: u64,
    records: u64,
    head: String,
}

impl Trail {
    /// Opens (creating) a trail. A torn last line is moved to a quarantine file
    /// and recorded; any other problem refuses the open.
    pub fn open(path: &Path, key: AuditKey) -> Result<(Trail, OpenReport), AuditError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| AuditError::io(path, e))?;
        let mut t = Trail {
            path: path.to_path_buf(),
            key,
            file,
            len: 0,
            records: 0,
            head: GENESIS.to_string(),
        };
        t.file.lock().map_err(|e| AuditError::io(path, e))?;
        let res = t.catch_up();
        let _ = t.file.unlock();
        let torn = res?;
        if torn.is_some() {
            t.write_anchor();
        }
        let report = OpenReport {
            records: t.records,
            torn,
        };
        Ok((t, report))
    }

    /// Records written so far, and the head tag (publish it in run summaries).
    pub fn anchor(&self) -> Anchor {
        Anchor {
            records: self.records,
            tag: self.head.clone(),
        }
    }

    /// The trail's key.
    pub fn key(&self) -> &AuditKey {
        &self.key
    }

    /// The trail's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry durably (written and fsynced before returning).
    pub fn append(&mut self, entry: &Entry) -> Result<Anchor, AuditError> {
        self.file
            .lock()
            .map_err(|e| AuditError::io(&self.path, e))?;
        let res = self.catch_up().and_then(|_| self.write_record(entry));
        let _ = self.file.unlock();
        res?;
        self.write_anchor();
        Ok(self.anchor())
    }

    fn write_record(&mut self, entry: &Entry) -> Result<(), AuditError> {
        let (line, tag) = encode(&self.key, self.records + 1, &self.head, entry)?;
        let bytes = format!("{line}\n");
        let io = |e| AuditError::io(&self.path, e);
        self.file.seek(SeekFrom::Start(self.len)).map_err(io)?;
        self.file.write_all(bytes.as_bytes()).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.len += bytes.len() as u64;
        self.records += 1;
        self.head = tag;
        Ok(())
    }

    /// Under the lock: reads what others appended since we last looked,
    /// verifying it; moves a torn tail aside.
    fn catch_up(&mut self) -> Result<Option<Problem>, AuditError> {
        let io = |e| AuditError::io(&self.path, e);
        let len = self.file.metadata().map_err(io)?.len();
        if len < self.len {
            return Err(AuditError::Tampered {
                path: self.path.clone(),
                line: self.records,
                reason: format!("the file shrank from {} to {len} bytes", self.len),
            });
        }
        if len == self.len {
            return Ok(None);
        }
        let mut new = Vec::with_capacity((len - self.len) as usize);
        self.file.seek(SeekFrom::Start(self.len)).map_err(io)?;
        (&mut self.file)
            .take(len - self.len)
            .read_to_end(&mut new)
            .map_err(io)?;
        let mut rest = &new[..];
        while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
            let (tag, _) = check_line(&self.key, &rest[..nl], self.records + 1, &self.head)
                .map_err(|reason| AuditError::Tampered {
                    path: self.path.clone(),
                    line: self.records + 1,
                    reason,
                })?;
            self.records += 1;
            self.head = tag;
            self.len += nl as u64 + 1;
            rest = &rest[nl + 1..];
        }
        if rest.is_empty() {
            return Ok(None);
        }
        let torn = Problem::TornTail {
            line: self.records + 1,
            bytes: rest.len() as u64,
        };
        let sha = hex::encode(Sha256::digest(rest));
        let quarantine = {
            let mut p = self.path.as_os_str().to_os_string();
            p.push(format!(".torn-{}-{}", self.records + 1, &sha[..12]));
            PathBuf::from(p)
        };
        std::fs::write(&quarantine, rest).map_err(io)?;
        self.file.set_len(self.len).map_err(io)?;
        self.file.sync_all().map_err(io)?;
        let note = Entry::TornTailRepaired {
            line: self.records + 1,
            bytes: rest.len() as u64,
            sha256: sha,
            quarantine: quarantine.display().to_string(),
        };
        self.write_record(&note)?;
        Ok(Some(torn))
    }

    /// Best effort: the side file helps detect truncation; the published head is the real anchor.
    fn write_anchor(&self) {
        let hp = head_path(&self.path);
        let tmp = hp.with_extension("head.tmp");
        if std::fs::write(&tmp, format!("{} {}\n", self.records, self.head)).is_ok() {
            let _ = std::fs::rename(&tmp, &hp);
        }
    }
}
