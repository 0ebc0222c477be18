//! Migration history tables: record a natively applied migration where its
//! tool looks, and tell which migrations are still pending.
//!
//! Flyway's checksum (source of truth: flyway/flyway,
//! `flyway-core/.../api/resource/LoadableResource.java` `calculateChecksum`,
//! used by `internal/resolver/ChecksumCalculator`): the file is read with
//! `BufferedReader.readLine()` (which splits on `\n`, `\r` or `\r\n` and drops
//! the terminator), a UTF-8 BOM is removed from the first line, each line's
//! UTF-8 bytes are fed to `java.util.zip.CRC32` with nothing between lines,
//! and the value is stored as a signed 32-bit `int`. So line endings do not
//! change the checksum, but a trailing newline does not add a line either.

use crate::migrate::{Migration, SourceFormat};

/// IEEE CRC-32 (the polynomial of `java.util.zip.CRC32`), bitwise: history
/// rows are written once per migration, so speed does not matter here.
fn crc32_update(mut crc: u32, bytes: &[u8]) -> u32 {
    crc = !crc;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// Splits like Java's `BufferedReader.readLine()`: `\n`, `\r` and `\r\n` end
/// a line; a final terminator does not start an empty line.
fn java_lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let (mut start, mut i) = (0, 0);
    while i < b.len() {
        match b[i] {
            b'\n' => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            b'\r' => {
                out.push(&text[start..i]);
                if b.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < b.len() {
        out.push(&text[start..]);
    }
    out
}

/// Flyway's checksum of a SQL migration's text.
pub fn flyway_checksum(text: &str) -> i32 {
    let mut crc = 0u32;
    for (n, line) in java_lines(text).into_iter().enumerate() {
        let line = if n == 0 {
            line.strip_prefix('\u{feff}').unwrap_or(line)
        } else {
            line
        };
        crc = crc32_update(crc, line.as_bytes());
    }
    crc as i32
}

/// One row of `flyway_schema_history` as far as pending checks need it.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedRow {
    /// `version` (NULL for repeatable migrations).
    pub version: Option<String>,
    /// `script`.
    pub script: String,
    /// `checksum`.
    pub checksum: Option<i32>,
    /// `success`.
    pub success: bool,
}

/// A migration's standing against the history table.
#[derive(Debug, Clone, PartialEq)]
pub enum Standing {
    /// Applied with the same checksum.
    Applied,
    /// Not applied (or only a failed attempt is recorded).
    Pending,
    /// Applied, but the file changed since (Flyway's validate would fail).
    ChecksumMismatch {
        /// Recorded checksum.
        recorded: Option<i32>,
        /// The file's checksum now.
        now: i32,
    },
}

/// How `m` stands against `rows`. Repeatable migrations are applied when a
/// successful row has the current checksum (Flyway re-runs them on change).
pub fn standing(m: &Migration, rows: &[AppliedRow]) -> Standing {
    let now = flyway_checksum(&m.text);
    let script = script_name(m);
    let mine: Vec<&AppliedRow> = rows
        .iter()
        .filter(|r| r.success)
        .filter(|r| {
            if m.repeatable {
                r.version.is_none() && r.script == script
            } else {
                r.version.as_deref() == Some(m.version.as_str())
            }
        })
        .collect();
    if m.repeatable {
        return if mine.iter().any(|r| r.checksum == Some(now)) {
            Standing::Applied
        } else {
            Standing::Pending
        };
    }
    match mine.last() {
        None => Standing::Pending,
        Some(r) if r.checksum == Some(now) => Standing::Applied,
        Some(r) => Standing::ChecksumMismatch {
            recorded: r.checksum,
            now,
        },
    }
}

/// The migrations still to apply (Flyway-format ones by the history table;
/// other formats are not tracked here and always count as pending).
pub fn pending<'a>(migrations: &'a [Migration], rows: &[AppliedRow]) -> Vec<&'a Migration> {
    migrations
        .iter()
        .filter(|m| m.format != SourceFormat::Flyway || standing(m, rows) != Standing::Applied)
        .collect()
}

/// The `script` column: the file name, as Flyway records it for a top-level location.
pub fn script_name(m: &Migration) -> String {
    m.path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| m.path.display().to_string())
}

/// PostgreSQL: the history table as Flyway 9/10 creates it.
pub const PG_CREATE: &str = "CREATE TABLE IF NOT EXISTS flyway_schema_history (
    installed_rank integer NOT NULL PRIMARY KEY,
    version varchar(50),
    description varchar(200) NOT NULL,
    type varchar(20) NOT NULL,
    script varchar(1000) NOT NULL,
    checksum integer,
    installed_by varchar(100) NOT NULL,
    installed_on timestamp NOT NULL DEFAULT now(),
    execution_time integer NOT NULL,
    success boolean NOT NULL)";

/// MySQL/MariaDB: the history table as Flyway creates it.
pub const MYSQL_CREATE: &str = "CREATE TABLE IF NOT EXISTS flyway_schema_history (
    installed_rank INT NOT NULL PRIMARY KEY,
    version VARCHAR(50),
    description VARCHAR(200) NOT NULL,
    type VARCHAR(20) NOT NULL,
    script VARCHAR(1000) NOT NULL,
    checksum INT,
    installed_by VARCHAR(100) NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    execution_time INT NOT NULL,
    success BOOL NOT NULL) ENGINE=InnoDB";

/// Records `m` in PostgreSQL's `flyway_schema_history` (created when missing).
pub async fn record_pg(
    client: &tokio_postgres::Client,
    m: &Migration,
    execution_ms: i32,
) -> Result<(), tokio_postgres::Error> {
    client.batch_execute(PG_CREATE).await?;
    let version = (!m.repeatable).then(|| m.version.clone());
    client
        .execute(
            "INSERT INTO flyway_schema_history
               (installed_rank, version, description, type, script, checksum, installed_by, execution_time, success)
             SELECT coalesce(max(installed_rank), 0) + 1, $1, $2, 'SQL', $3, $4, current_user, $5, true
               FROM flyway_schema_history",
            &[
                &version,
                &m.description,
                &script_name(m),
                &flyway_checksum(&m.text),
                &execution_ms,
            ],
        )
        .await?;
    Ok(())
}

/// Reads PostgreSQL's `flyway_schema_history` (empty when it does not exist).
pub async fn read_pg(
    client: &tokio_postgres::Client,
) -> Result<Vec<AppliedRow>, tokio_postgres::Error> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('flyway_schema_history') IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    if !exists {
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            "SELECT version::text, script::text, checksum, success FROM flyway_schema_history ORDER BY installed_rank",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| AppliedRow {
            version: r.get(0),
            script: r.get(1),
            checksum: r.get(2),
            success: r.get(3),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        // The CRC-32/ISO-HDLC check value of "123456789".
        assert_eq!(crc32_update(0, b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn checksum_ignores_line_endings_and_bom_but_not_content() {
        let lf = "CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\n";
        let crlf = "CREATE TABLE t (id int);\r\nINSERT INTO t VALUES (1);\r\n";
        let cr = "\u{feff}CREATE TABLE t (id int);\rINSERT INTO t VALUES (1);";
        assert_eq!(flyway_checksum(lf), flyway_checksum(crlf));
        assert_eq!(flyway_checksum(lf), flyway_checksum(cr));
        // Lines are concatenated without separators.
        assert_eq!(
            flyway_checksum(lf),
            crc32_update(0, b"CREATE TABLE t (id int);INSERT INTO t VALUES (1);") as i32
        );
        assert_ne!(
            flyway_checksum(lf),
            flyway_checksum("CREATE TABLE t (id bigint);\n")
        );
        assert_eq!(java_lines("a\n\nb"), vec!["a", "", "b"]);
    }
}
