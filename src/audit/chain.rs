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
    /// No record verifies with the key given: a wrong key, not a bad record.
    WrongKey,
    /// The `.head` side file is gone: records could have been cut off the end.
    HeadMissing {
        /// Records in the trail.
        records: u64,
    },
    /// The `.head` side file does not verify with the key (rewritten).
    HeadForged,
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
            Problem::WrongKey => write!(
                f,
                "the trail does not verify with this key (no record's tag matches: check CUTOVER_AUDIT_KEY or --key-file)"
            ),
            Problem::HeadMissing { records } => write!(
                f,
                "the head side file is missing ({records} record(s) in the trail): records may have been cut off the end; check against a published head with --expect-head"
            ),
            Problem::HeadForged => write!(
                f,
                "the head side file does not verify with this key (it was rewritten): records may have been cut off the end; check against a published head with --expect-head"
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
    /// Bytes of the file that verified (where an append would go).
    #[serde(skip)]
    pub bytes: u64,
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

impl fmt::Display for Anchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.records, self.tag)
    }
}

impl std::str::FromStr for Anchor {
    type Err = String;
    /// `<records> <tag>`, as `cutover audit head` prints it.
    fn from_str(s: &str) -> Result<Anchor, String> {
        let bad =
            || format!("'{s}': expected \"<records> <tag>\" as `cutover audit head` prints it");
        let (n, tag) = s.trim().split_once(' ').ok_or_else(bad)?;
        let tag = tag.trim();
        if tag.len() != TAG_HEX || !tag.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        Ok(Anchor {
            records: n.parse().map_err(|_| bad())?,
            tag: tag.to_ascii_lowercase(),
        })
    }
}

const HEAD_DOMAIN: &[u8] = b"cutover-audit-head-v1\n";

/// The side file's MAC over `<records> <tag>`: only the key holder can write a head.
fn head_mac(key: &AuditKey, a: &Anchor) -> Result<String, AuditError> {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key.bytes())
        .map_err(|e| AuditError::Key(e.to_string()))?;
    m.update(HEAD_DOMAIN);
    m.update(a.to_string().as_bytes());
    Ok(hex::encode(m.finalize().into_bytes()))
}

/// What the `.head` side file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadFile {
    /// There is none.
    Missing,
    /// It does not verify with the key (its text).
    Forged(String),
    /// A head written by the key holder.
    Valid(Anchor),
}

/// Reads and checks the `.head` side file of a trail.
pub fn read_head(path: &Path, key: &AuditKey) -> HeadFile {
    let Ok(text) = std::fs::read_to_string(head_path(path)) else {
        return HeadFile::Missing;
    };
    let forged = || HeadFile::Forged(text.trim().to_string());
    let mut parts = text.split_whitespace();
    let (Some(n), Some(tag), Some(mac)) = (parts.next(), parts.next(), parts.next()) else {
        return forged();
    };
    let Ok(a) = format!("{n} {tag}").parse::<Anchor>() else {
        return forged();
    };
    match head_mac(key, &a) {
        Ok(m) if m == mac => HeadFile::Valid(a),
        _ => forged(),
    }
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

/// Whether a line's tag matches its body under `key` (nothing else checked).
fn tag_matches(key: &AuditKey, line: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(line) else {
        return false;
    };
    let Some(rest) = text.strip_prefix(PREFIX) else {
        return false;
    };
    let (Some(tag), Some(body)) = (
        rest.get(..TAG_HEX),
        rest.get(TAG_HEX..)
            .and_then(|r| r.strip_prefix(MIDDLE))
            .and_then(|r| r.strip_suffix('}')),
    ) else {
        return false;
    };
    let Ok(tag) = hex::decode(tag) else {
        return false;
    };
    mac(key, body.as_bytes()).is_ok_and(|m| m.verify_slice(&tag).is_ok())
}

/// A later line that seals the damaged lines from `start`: record `n` after
/// `prev`, an [`Entry::Sealed`] whose count and digest cover exactly the
/// bytes between. Returns (offset after the seal, its tag, its entry).
fn find_seal(
    key: &AuditKey,
    bytes: &[u8],
    start: usize,
    n: u64,
    prev: &str,
) -> Option<(usize, String, Entry)> {
    let mut pos = start;
    let mut lines = 0u64;
    while let Some(nl) = bytes[pos..].iter().position(|b| *b == b'\n') {
        let end = pos + nl;
        if pos > start
            && let Ok((tag, entry)) = check_line(key, &bytes[pos..end], n, prev)
            && let Entry::Sealed {
                damaged_lines,
                damaged_sha256,
                ..
            } = &entry
            && *damaged_lines == lines
            && *damaged_sha256 == hex::encode(Sha256::digest(&bytes[start..pos]))
        {
            return Some((end + 1, tag, entry));
        }
        lines += 1;
        pos = end + 1;
    }
    None
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
/// and the report. `anchor` checks for truncation of whole records. Damage
/// sealed by `cutover audit repair` is skipped: the seal is the next record
/// and its digest covers exactly the damaged lines.
pub fn verify_bytes(
    key: &AuditKey,
    bytes: &[u8],
    anchor: Option<&Anchor>,
) -> (Vec<VerifiedEntry>, VerifyReport) {
    let mut entries = Vec::new();
    let mut head = GENESIS.to_string();
    let mut problem = None;
    let mut pos = 0usize;
    let mut n = 0u64;
    while pos < bytes.len() {
        let Some(nl) = bytes[pos..].iter().position(|b| *b == b'\n') else {
            problem = Some(Problem::TornTail {
                line: n + 1,
                bytes: (bytes.len() - pos) as u64,
            });
            break;
        };
        let line = &bytes[pos..pos + nl];
        match check_line(key, line, n + 1, &head) {
            Ok((tag, entry)) => {
                n += 1;
                head = tag.clone();
                entries.push(VerifiedEntry { n, tag, entry });
                pos += nl + 1;
            }
            Err(reason) => {
                if let Some((next, tag, entry)) = find_seal(key, bytes, pos, n + 1, &head) {
                    n += 1;
                    head = tag.clone();
                    entries.push(VerifiedEntry { n, tag, entry });
                    pos = next;
                    continue;
                }
                let any_tag_matches = bytes
                    .split(|b| *b == b'\n')
                    .any(|l| !l.is_empty() && tag_matches(key, l));
                problem = Some(if n == 0 && !any_tag_matches {
                    Problem::WrongKey
                } else {
                    Problem::BadRecord {
                        line: n + 1,
                        reason,
                    }
                });
                break;
            }
        }
    }
    if problem.is_none()
        && let Some(a) = anchor
    {
        problem = anchor_problem(&entries, n, a);
    }
    let report = VerifyReport {
        records: n,
        head,
        problem,
        bytes: pos as u64,
    };
    (entries, report)
}

/// Whether verified `entries` (`n` of them) are shorter than, or differ
/// from, a published head.
fn anchor_problem(entries: &[VerifiedEntry], n: u64, a: &Anchor) -> Option<Problem> {
    if a.records > n {
        return Some(Problem::Truncated {
            expected: a.records,
            found: n,
        });
    }
    if a.records > 0
        && entries.get(a.records as usize - 1).map(|e| e.tag.as_str()) != Some(a.tag.as_str())
    {
        return Some(Problem::BadRecord {
            line: a.records,
            reason: "does not match the published head tag (the trail was rewritten)".into(),
        });
    }
    None
}

/// Checks verified entries against an externally published head
/// (`cutover audit verify --expect-head`).
pub fn check_expected_head(entries: &[VerifiedEntry], expected: &Anchor) -> Option<Problem> {
    anchor_problem(entries, entries.len() as u64, expected)
}

fn head_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_os_string();
    p.push(".head");
    PathBuf::from(p)
}

/// Reads and verifies a trail file against its `.head` side file, which must
/// exist and verify with the key (a missing or rewritten head could hide
/// records cut off the end).
pub fn read_file(
    path: &Path,
    key: &AuditKey,
) -> Result<(Vec<VerifiedEntry>, VerifyReport), AuditError> {
    let (bytes, head) = read_locked(path, key)?;
    let anchor = match &head {
        HeadFile::Valid(a) => Some(a),
        _ => None,
    };
    let (entries, mut report) = verify_bytes(key, &bytes, anchor);
    if report.problem.is_none() {
        report.problem = match head {
            HeadFile::Missing => Some(Problem::HeadMissing {
                records: report.records,
            }),
            HeadFile::Forged(_) => Some(Problem::HeadForged),
            HeadFile::Valid(_) => None,
        };
    }
    Ok((entries, report))
}

/// The trail's bytes and its head side file, read under the trail's shared
/// lock: an append holds the exclusive one while it writes, so a reader
/// never sees a line half written (a false "torn") nor a head written after
/// the bytes it read (a false "cut"). Where the file system has no locks,
/// read as is.
fn read_locked(path: &Path, key: &AuditKey) -> Result<(Vec<u8>, HeadFile), AuditError> {
    let mut file = std::fs::File::open(path).map_err(|e| AuditError::io(path, e))?;
    let locked = file.lock_shared().is_ok();
    let mut bytes = Vec::new();
    let read = file.read_to_end(&mut bytes);
    let head = read_head(path, key);
    if locked {
        let _ = file.unlock();
    }
    read.map_err(|e| AuditError::io(path, e))?;
    Ok((bytes, head))
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
    /// and recorded; any other problem refuses the open: a trail that does
    /// not verify (a bad record, a missing or rewritten head, records cut off
    /// the end) is never appended to until `cutover audit repair` seals it.
    pub fn open(path: &Path, key: AuditKey) -> Result<(Trail, OpenReport), AuditError> {
        Trail::open_inner(path, key, false)
    }

    fn open_inner(
        path: &Path,
        key: AuditKey,
        repairing: bool,
    ) -> Result<(Trail, OpenReport), AuditError> {
        let existed = path.exists();
        if !existed && !repairing {
            // The head of an empty trail goes first: whoever sees the trail
            // file also sees its head, even while its creator is mid-open.
            write_head(
                path,
                &key,
                &Anchor {
                    records: 0,
                    tag: GENESIS.to_string(),
                },
            );
        }
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
        let res = if repairing {
            Ok(None)
        } else {
            t.load(existed).and_then(|()| t.catch_up())
        };
        let _ = t.file.unlock();
        let torn = res?;
        if torn.is_some() || !existed {
            t.write_anchor();
        }
        let report = OpenReport {
            records: t.records,
            torn,
        };
        Ok((t, report))
    }

    /// Under the lock: verifies what is there (seals included) against the
    /// head side file, and positions the trail after it.
    fn load(&mut self, existed: bool) -> Result<(), AuditError> {
        let mut bytes = Vec::new();
        self.file
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.file.read_to_end(&mut bytes))
            .map_err(|e| AuditError::io(&self.path, e))?;
        let (entries, report) = verify_bytes(&self.key, &bytes, None);
        let tampered = |line: u64, reason: String| AuditError::Tampered {
            path: self.path.clone(),
            line,
            reason,
        };
        match &report.problem {
            None | Some(Problem::TornTail { .. }) => {}
            Some(Problem::BadRecord { line, reason }) => {
                return Err(tampered(*line, reason.clone()));
            }
            Some(p) => return Err(tampered(report.records + 1, p.to_string())),
        }
        let head_problem = match read_head(&self.path, &self.key) {
            HeadFile::Valid(a) => anchor_problem(&entries, report.records, &a),
            // A trail created by this open.
            HeadFile::Missing if !existed => None,
            HeadFile::Missing => Some(Problem::HeadMissing {
                records: report.records,
            }),
            HeadFile::Forged(_) => Some(Problem::HeadForged),
        };
        if let Some(p) = head_problem {
            return Err(tampered(report.records, p.to_string()));
        }
        self.len = report.bytes;
        self.records = report.records;
        self.head = report.head;
        Ok(())
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

    /// Best effort: the side file helps detect truncation (it carries a MAC,
    /// so only the key holder can write one); the published head is the real anchor.
    fn write_anchor(&self) {
        write_head(&self.path, &self.key, &self.anchor());
    }
}

/// Writes `<trail>.head` atomically (best effort, see [`Trail::append`]).
fn write_head(path: &Path, key: &AuditKey, a: &Anchor) {
    let Ok(mac) = head_mac(key, a) else {
        return;
    };
    let hp = head_path(path);
    // Unique per writer, so concurrent writers never rename each other's file.
    let tmp = hp.with_extension(format!("head.tmp{}", std::process::id()));
    if std::fs::write(&tmp, format!("{a} {mac}\n")).is_ok() {
        let _ = std::fs::rename(&tmp, &hp);
    }
}

/// `cutover audit repair`: seals the damage verification found as a new
/// record (what was found, the old head, the reason, who) chained after the
/// last good record, and writes a new head. Nothing is deleted or rewritten:
/// damaged lines stay in place, covered by the seal's count and digest.
pub fn repair(path: &Path, key: AuditKey, reason: &str, by: &str) -> Result<Anchor, AuditError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(AuditError::Key(
            "a written reason is required to seal a trail".into(),
        ));
    }
    let (mut t, _) = Trail::open_inner(path, key, true)?;
    t.file.lock().map_err(|e| AuditError::io(path, e))?;
    let res = (|| {
        let mut bytes = Vec::new();
        t.file
            .seek(SeekFrom::Start(0))
            .and_then(|_| t.file.read_to_end(&mut bytes))
            .map_err(|e| AuditError::io(path, e))?;
        let head = read_head(path, &t.key);
        let anchor = match &head {
            HeadFile::Valid(a) => Some(a.clone()),
            _ => None,
        };
        let (_, chain) = verify_bytes(&t.key, &bytes, None);
        let problem = match (&chain.problem, &head) {
            (Some(Problem::WrongKey), _) => {
                return Err(AuditError::Key(
                    "the trail does not verify with this key: a repair needs the trail's key"
                        .into(),
                ));
            }
            (Some(Problem::TornTail { .. }), _) => {
                return Err(AuditError::Key(
                    "a torn last line is moved aside by the next append; nothing to seal".into(),
                ));
            }
            (Some(p), _) => p.clone(),
            (None, HeadFile::Missing) => Problem::HeadMissing {
                records: chain.records,
            },
            (None, HeadFile::Forged(_)) => Problem::HeadForged,
            (None, HeadFile::Valid(a)) => {
                let (entries, _) = verify_bytes(&t.key, &bytes, None);
                match anchor_problem(&entries, chain.records, a) {
                    Some(p) => p,
                    None => {
                        return Err(AuditError::Key(
                            "the trail verifies: nothing to repair".into(),
                        ));
                    }
                }
            }
        };
        if bytes.last().is_some_and(|b| *b != b'\n') {
            return Err(AuditError::Key(
                "the trail ends in a torn line: append once (it is moved aside), then repair"
                    .into(),
            ));
        }
        let damaged = &bytes[chain.bytes as usize..];
        let old_head = match head {
            HeadFile::Missing => None,
            HeadFile::Forged(text) => Some(format!("{text} (does not verify)")),
            HeadFile::Valid(a) => Some(a.to_string()),
        };
        let _ = anchor;
        t.len = bytes.len() as u64;
        t.records = chain.records;
        t.head = chain.head.clone();
        t.write_record(&Entry::Sealed {
            at: chrono::Utc::now(),
            by: by.to_string(),
            reason: reason.to_string(),
            problem: problem.to_string(),
            records_kept: chain.records,
            damaged_lines: damaged.iter().filter(|b| **b == b'\n').count() as u64,
            damaged_sha256: hex::encode(Sha256::digest(damaged)),
            old_head,
        })
    })();
    let _ = t.file.unlock();
    res?;
    t.write_anchor();
    Ok(t.anchor())
}
