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

/// MySQL/MariaDB: records `m` in `flyway_schema_history` (created when
/// missing). DDL commits implicitly there, so the row follows the statements.
pub async fn record_mysql(
    conn: &mut mysql_async::Conn,
    m: &Migration,
    execution_ms: i32,
) -> Result<(), mysql_async::Error> {
    use mysql_async::prelude::*;
    conn.query_drop(MYSQL_CREATE).await?;
    let version = (!m.repeatable).then(|| m.version.clone());
    conn.exec_drop(
        "INSERT INTO flyway_schema_history
           (installed_rank, version, description, type, script, checksum, installed_by, execution_time, success)
         SELECT COALESCE(MAX(installed_rank), 0) + 1, ?, ?, 'SQL', ?, ?, SUBSTRING_INDEX(CURRENT_USER(), '@', 1), ?, 1
           FROM flyway_schema_history",
        (
            version,
            m.description.clone(),
            script_name(m),
            flyway_checksum(&m.text),
            execution_ms,
        ),
    )
    .await
}

/// One row of Liquibase's `DATABASECHANGELOG`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangelogRow {
    /// `ID`.
    pub id: String,
    /// `AUTHOR`.
    pub author: String,
    /// `FILENAME` as the changelog was referenced.
    pub filename: String,
}

/// What the target's history tables say; `None` = that table does not exist.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct History {
    /// `flyway_schema_history`.
    pub flyway: Option<Vec<AppliedRow>>,
    /// `alembic_version.version_num` (the current head or heads).
    pub alembic: Option<Vec<String>>,
    /// `DATABASECHANGELOG`.
    pub liquibase: Option<Vec<ChangelogRow>>,
}

/// An applied migration whose file changed since (Flyway's validate fails on it).
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// Index into the migrations.
    pub migration: usize,
    /// Recorded checksum.
    pub recorded: Option<i32>,
    /// The file's checksum now.
    pub now: i32,
}

/// Migrations sorted against the history tables (indices into the input).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sorting {
    /// Still to apply, in order.
    pub pending: Vec<usize>,
    /// Already applied (and unchanged where a checksum is recorded).
    pub applied: Vec<usize>,
    /// Applied, but the file changed since: bad input.
    pub mismatches: Vec<Mismatch>,
    /// What the check could not do (e.g. Liquibase checksums are not compared).
    pub notes: Vec<String>,
}

/// Sorts `migrations` into pending, applied and changed-since-applied.
///
/// - Flyway: by version (or script, for repeatables) and checksum.
/// - Alembic: `alembic_version` holds the head; every revision of the same
///   file up to it is applied, and the set-up preamble is applied when the
///   table exists (running its `CREATE TABLE` again would fail).
/// - Liquibase: by `ID` and `AUTHOR` (`FILENAME` depends on how the changelog
///   was referenced, so it is not compared); MD5SUMs are not compared.
/// - Other formats keep no history: always pending.
pub fn sort(migrations: &[Migration], h: &History) -> Sorting {
    let mut out = Sorting::default();
    // Alembic: the last index (per file) at or before the recorded head.
    let mut alembic_upto: std::collections::HashMap<&std::path::Path, usize> =
        std::collections::HashMap::new();
    if let Some(heads) = &h.alembic {
        for (i, m) in migrations.iter().enumerate() {
            if m.format == SourceFormat::Alembic && heads.iter().any(|v| v == &m.version) {
                alembic_upto.insert(m.path.as_path(), i);
            }
        }
        for head in heads {
            let known = migrations
                .iter()
                .any(|m| m.format == SourceFormat::Alembic && &m.version == head);
            if !known && migrations.iter().any(|m| m.format == SourceFormat::Alembic) {
                out.notes.push(format!(
                    "alembic_version is at revision {head}, which none of the files contains: their revisions are shown as pending"
                ));
            }
        }
    }
    let mut liquibase_seen = false;
    for (i, m) in migrations.iter().enumerate() {
        let applied = match m.format {
            SourceFormat::Flyway => match &h.flyway {
                None => false,
                Some(rows) => match standing(m, rows) {
                    Standing::Applied => true,
                    Standing::Pending => false,
                    Standing::ChecksumMismatch { recorded, now } => {
                        out.mismatches.push(Mismatch {
                            migration: i,
                            recorded,
                            now,
                        });
                        continue;
                    }
                },
            },
            SourceFormat::Alembic => {
                let preamble = m.description == "alembic set-up";
                (preamble && h.alembic.is_some())
                    || alembic_upto.get(m.path.as_path()).is_some_and(|&k| i <= k)
            }
            SourceFormat::Liquibase => {
                liquibase_seen = true;
                h.liquibase.as_ref().is_some_and(|rows| {
                    rows.iter()
                        .any(|r| format!("{}:{}", r.author, r.id) == m.version)
                })
            }
            _ => false,
        };
        if applied {
            out.applied.push(i);
        } else {
            out.pending.push(i);
        }
    }
    if liquibase_seen && h.liquibase.is_some() {
        out.notes.push(
            "Liquibase changesets matched by ID and AUTHOR; their MD5SUMs are not compared".into(),
        );
    }
    out
}

/// Why Liquibase changesets are not run natively, when `migrations` has any.
///
/// Liquibase's `MD5SUM` (checksum version 8/9) is computed over a
/// normalised form of each change that depends on the Liquibase version;
/// recording a wrong one makes `liquibase update` fail validation, and
/// recording none makes it run the changeset again. Either is worse than
/// refusing.
pub fn liquibase_refusal(migrations: &[Migration]) -> Option<String> {
    let m = migrations
        .iter()
        .find(|m| m.format == SourceFormat::Liquibase)?;
    Some(format!(
        "{}: Liquibase changeset {} cannot be applied natively: cutover cannot write DATABASECHANGELOG with the MD5SUM Liquibase would compute, so Liquibase would re-run or reject it. Apply it with `liquibase update` (or a gh-ost/pt-osc executor for the ALTER, then `liquibase changelog-sync`)",
        m.path.display(),
        m.version
    ))
}

/// Reads all three history tables from a PostgreSQL database (current schema path).
pub async fn read_all_pg(
    client: &tokio_postgres::Client,
) -> Result<History, tokio_postgres::Error> {
    let exists = |name: &'static str| async move {
        client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
            .await
            .map(|r| r.get::<_, bool>(0))
    };
    let mut h = History::default();
    if exists("flyway_schema_history").await? {
        h.flyway = Some(read_pg(client).await?);
    }
    if exists("alembic_version").await? {
        let rows = client
            .query("SELECT version_num::text FROM alembic_version", &[])
            .await?;
        h.alembic = Some(rows.iter().map(|r| r.get(0)).collect());
    }
    if exists("databasechangelog").await? {
        let rows = client
            .query(
                "SELECT id::text, author::text, filename::text FROM databasechangelog ORDER BY orderexecuted",
                &[],
            )
            .await?;
        h.liquibase = Some(
            rows.iter()
                .map(|r| ChangelogRow {
                    id: r.get(0),
                    author: r.get(1),
                    filename: r.get(2),
                })
                .collect(),
        );
    }
    Ok(h)
}

/// Reads all three history tables from the current MySQL/MariaDB database.
pub async fn read_all_mysql(conn: &mut mysql_async::Conn) -> Result<History, mysql_async::Error> {
    use mysql_async::prelude::*;
    let tables: Vec<String> = conn
        .query(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()
               AND TABLE_NAME IN ('flyway_schema_history', 'alembic_version', 'DATABASECHANGELOG', 'databasechangelog')",
        )
        .await?;
    let mut h = History::default();
    if tables.iter().any(|t| t == "flyway_schema_history") {
        let rows: Vec<(Option<String>, String, Option<i32>, bool)> = conn
            .query(
                "SELECT version, script, checksum, success FROM flyway_schema_history ORDER BY installed_rank",
            )
            .await?;
        h.flyway = Some(
            rows.into_iter()
                .map(|(version, script, checksum, success)| AppliedRow {
                    version,
                    script,
                    checksum,
                    success,
                })
                .collect(),
        );
    }
    if tables.iter().any(|t| t == "alembic_version") {
        h.alembic = Some(
            conn.query("SELECT version_num FROM alembic_version")
                .await?,
        );
    }
    if let Some(t) = tables
        .iter()
        .find(|t| t.eq_ignore_ascii_case("databasechangelog"))
    {
        let rows: Vec<(String, String, String)> = conn
            .query(format!(
                "SELECT ID, AUTHOR, FILENAME FROM `{t}` ORDER BY ORDEREXECUTED"
            ))
            .await?;
        h.liquibase = Some(
            rows.into_iter()
                .map(|(id, author, filename)| ChangelogRow {
                    id,
                    author,
                    filename,
                })
                .collect(),
        );
    }
    Ok(h)
}

/// Reads the history tables of the database at `dsn`.
pub async fn read_all(engine: crate::model::Engine, dsn: &str) -> Result<History, String> {
    match engine {
        crate::model::Engine::Postgres => {
            let (c, conn) = tokio_postgres::connect(dsn, tokio_postgres::NoTls)
                .await
                .map_err(|e| crate::dberror::postgres(dsn, &e))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            read_all_pg(&c).await.map_err(|e| e.to_string())
        }
        crate::model::Engine::Mysql => {
            let opts = mysql_async::Opts::from_url(dsn)
                .map_err(|e| crate::sql::redact::redact_dsn(&e.to_string()))?;
            let mut conn = mysql_async::Conn::new(opts)
                .await
                .map_err(|e| crate::dberror::mysql(dsn, &e))?;
            let h = read_all_mysql(&mut conn).await.map_err(|e| e.to_string());
            let _ = conn.disconnect().await;
            h
        }
    }
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

    fn m(version: &str, format: SourceFormat, path: &str, text: &str, desc: &str) -> Migration {
        Migration {
            version: version.into(),
            description: desc.into(),
            path: path.into(),
            checksum: String::new(),
            engine: crate::model::Engine::Postgres,
            format,
            repeatable: false,
            tx: crate::migrate::TxWrap::Whole,
            directives: Default::default(),
            statements: vec![],
            text: text.into(),
        }
    }

    #[test]
    fn sorts_flyway_by_checksum_alembic_by_head_liquibase_by_id() {
        let ms = vec![
            m(
                "1",
                SourceFormat::Flyway,
                "V1__a.sql",
                "CREATE TABLE a (id int);",
                "a",
            ),
            m(
                "2",
                SourceFormat::Flyway,
                "V2__b.sql",
                "CREATE TABLE b (id int);",
                "b",
            ),
            m(
                "3",
                SourceFormat::Flyway,
                "V3__c.sql",
                "CREATE TABLE c (id int);",
                "c",
            ),
            m(
                "up-preamble",
                SourceFormat::Alembic,
                "up.sql",
                "",
                "alembic set-up",
            ),
            m("a1", SourceFormat::Alembic, "up.sql", "", " -> a1"),
            m("b2", SourceFormat::Alembic, "up.sql", "", "a1 -> b2"),
            m(
                "alice:1",
                SourceFormat::Liquibase,
                "cl.sql",
                "",
                "changeset",
            ),
            m("bob:2", SourceFormat::Liquibase, "cl.sql", "", "changeset"),
            m("x", SourceFormat::Plain, "x.sql", "", "x"),
        ];
        let row = |v: &str, text: &str| AppliedRow {
            version: Some(v.into()),
            script: format!("V{v}__.sql"),
            checksum: Some(flyway_checksum(text)),
            success: true,
        };
        let h = History {
            flyway: Some(vec![
                row("1", "CREATE TABLE a (id int);"),
                row("2", "CREATE TABLE b (id bigint);"),
            ]),
            alembic: Some(vec!["a1".into()]),
            liquibase: Some(vec![ChangelogRow {
                id: "1".into(),
                author: "alice".into(),
                filename: "db/cl.sql".into(),
            }]),
        };
        let s = sort(&ms, &h);
        assert_eq!(s.applied, vec![0, 3, 4, 6]);
        assert_eq!(s.pending, vec![2, 5, 7, 8]);
        assert_eq!(s.mismatches.len(), 1);
        assert_eq!(s.mismatches[0].migration, 1);
        assert_ne!(s.mismatches[0].recorded, Some(s.mismatches[0].now));
        assert!(
            s.notes.iter().any(|n| n.contains("MD5SUM")),
            "{:?}",
            s.notes
        );
        // No tables at all: everything is pending.
        assert_eq!(sort(&ms, &History::default()).pending.len(), ms.len());
        // A head no file knows is said, not guessed.
        let h2 = History {
            alembic: Some(vec!["zz".into()]),
            ..History::default()
        };
        let s2 = sort(&ms, &h2);
        assert!(s2.notes.iter().any(|n| n.contains("zz")));
        assert!(s2.pending.contains(&4) && s2.applied.contains(&3));
    }

    #[test]
    fn liquibase_changesets_are_refused_with_the_reason() {
        let ms = vec![
            m("1", SourceFormat::Flyway, "V1__a.sql", "", "a"),
            m(
                "alice:1",
                SourceFormat::Liquibase,
                "cl.sql",
                "",
                "changeset",
            ),
        ];
        let r = liquibase_refusal(&ms).unwrap();
        assert!(r.starts_with("cl.sql: Liquibase changeset alice:1"), "{r}");
        assert!(r.contains("MD5SUM"));
        assert_eq!(liquibase_refusal(&ms[..1]), None);
    }
}
