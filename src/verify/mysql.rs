//! MySQL/MariaDB probes on scratch copies (engines.md §7.2).
//!
//! DDL commits implicitly, so nothing runs on the real tables: every table a
//! statement names is copied (`CREATE TABLE … LIKE` + a sample of rows) into a
//! scratch schema, the plan's statements run there in order, and each ALTER is
//! offered `ALGORITHM=INSTANT`, `NOCOPY`, `INPLACE` with `LOCK=NONE`, then
//! `LOCK=SHARED`, then `COPY`, keeping the first the server accepts. Rows
//! affected > 0 means a copy, a new tablespace id a rebuild: that catches
//! partitioning, which accepts INSTANT and copies anyway.

use super::{Method, Observed, Outcome, Probe, VerifyError, VerifyOptions};
use crate::model::{Blocks, Lock};
use crate::sql::ops::{Action, Op};
use mysql_async::prelude::Queryable;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Instant;

/// Prefix of the scratch database; the leftover check looks for it.
pub const SCRATCH_PREFIX: &str = "_cutover_verify_";

fn err(e: &mysql_async::Error) -> String {
    match e {
        mysql_async::Error::Server(s) => format!("ERROR {} ({}): {}", s.code, s.state, s.message),
        other => crate::sql::redact::redact_dsn(&other.to_string()),
    }
}

fn refused(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(s) if s.state == "0A000")
}

fn q(ident: &str) -> String {
    format!("`{}`", ident.replace('`', "``"))
}

/// The clauses offered, cheapest first: (ALGORITHM, LOCK).
pub const LADDER: &[(&str, Option<&str>)] = &[
    ("INSTANT", None),
    ("NOCOPY", Some("NONE")),
    ("INPLACE", Some("NONE")),
    ("INPLACE", Some("SHARED")),
    ("COPY", Some("SHARED")),
    ("COPY", Some("EXCLUSIVE")),
];

/// How a statement is probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// ALTER TABLE / CREATE INDEX / DROP INDEX without its own clauses: the ladder.
    Ladder,
    /// An ALTER whose clause is fixed (written by the author, or partition
    /// maintenance that refuses any clause): run as written.
    AsWritten,
    /// Anything else: run as written, nothing to classify.
    Plain,
}

pub fn kind(op: &Op) -> Kind {
    match op {
        Op::AlterTable {
            actions,
            algorithm,
            lock,
            ..
        } => {
            let maintenance = actions.iter().any(|a| {
                matches!(
                    a,
                    Action::AddPartition
                        | Action::DropPartition
                        | Action::TruncatePartition
                        | Action::PartitionMaintenance(_)
                )
            });
            if algorithm.is_some() || lock.is_some() || maintenance {
                Kind::AsWritten
            } else {
                Kind::Ladder
            }
        }
        Op::CreateIndex { .. } | Op::DropIndex { .. } => Kind::Ladder,
        _ => Kind::Plain,
    }
}

/// The statement with `ALGORITHM=…[, LOCK=…]` added where the grammar takes it.
pub fn with_clause(sql: &str, op: &Op, algo: &str, lock: Option<&str>) -> Option<String> {
    let sql = sql.trim().trim_end_matches(';').trim_end();
    match op {
        Op::AlterTable { .. } => {
            let re = regex::Regex::new(
                r"(?is)^\s*ALTER\s+(?:ONLINE\s+)?(?:IGNORE\s+)?TABLE\s+(?:IF\s+EXISTS\s+)?(?:`[^`]+`|[\w$]+)(?:\s*\.\s*(?:`[^`]+`|[\w$]+))?(?:\s+WAIT\s+\d+|\s+NOWAIT)?\s*",
            )
            .ok()?;
            let m = re.find(sql)?;
            let (head, rest) = sql.split_at(m.end());
            let clause = match lock {
                Some(l) => format!("ALGORITHM={algo}, LOCK={l}"),
                None => format!("ALGORITHM={algo}"),
            };
            let upper = rest.trim_start().to_ascii_uppercase();
            let sep = if rest.trim().is_empty()
                || upper.starts_with("PARTITION BY")
                || upper.starts_with("REMOVE PARTITIONING")
            {
                " "
            } else {
                ", "
            };
            Some(format!("{} {clause}{sep}{rest}", head.trim_end()))
        }
        // MariaDB's DROP INDEX takes no ALGORITHM clause: probe the ALTER form.
        Op::DropIndex {
            names,
            table: Some(t),
            ..
        } if names.len() == 1 => {
            let alter = format!("ALTER TABLE {t} DROP INDEX {}", names[0]);
            let op = crate::sql::analyze::analyze(&alter, crate::model::Engine::Mysql).op;
            if matches!(op, Op::AlterTable { .. }) {
                with_clause(&alter, &op, algo, lock)
            } else {
                None
            }
        }
        Op::CreateIndex { .. } => Some(match lock {
            Some(l) => format!("{sql} ALGORITHM={algo} LOCK={l}"),
            None => format!("{sql} ALGORITHM={algo}"),
        }),
        _ => None,
    }
}

/// The table's storage was replaced: a surviving table or partition got a new
/// tablespace, or none survived (repartitioning). Partitions added or dropped
/// alone are not a rebuild.
pub fn rebuilt(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> bool {
    let common: Vec<&String> = before.keys().filter(|k| after.contains_key(*k)).collect();
    common.is_empty() || common.iter().any(|k| before[*k] != after[*k])
}

/// `LOCK=` level → what traffic it blocks.
fn blocks_of(lock: &str) -> Blocks {
    match lock {
        "SHARED" => Blocks::Writes,
        "EXCLUSIVE" => Blocks::ReadsAndWrites,
        _ => Blocks::Nothing,
    }
}

/// Points `db.`-qualified names at the scratch database.
pub fn requalify(sql: &str, db: &str, scratch: &str) -> String {
    let pat = format!(r"(?i)(^|[^\w$.`])`?{}`?\s*\.\s*", regex::escape(db));
    match regex::Regex::new(&pat) {
        Ok(re) => re
            .replace_all(sql, |c: &regex::Captures| format!("{}`{scratch}`.", &c[1]))
            .into_owned(),
        Err(_) => sql.to_string(),
    }
}

fn mentions(sql: &str, table: &str) -> bool {
    let pat = format!(r"(?i)(^|[^\w$]){}($|[^\w$])", regex::escape(table));
    regex::Regex::new(&pat).is_ok_and(|re| re.is_match(sql))
}

struct Session<'a> {
    opts: &'a VerifyOptions,
    c: mysql_async::Conn,
    db: String,
    scratch: String,
    base_tables: BTreeSet<String>,
    mariadb: bool,
}

/// Verifies the probes in order on the MySQL/MariaDB target at `dsn`.
pub async fn verify(
    dsn: &str,
    probes: &[Probe],
    opts: &VerifyOptions,
) -> Result<(String, Vec<(usize, usize, Outcome)>, Vec<String>), VerifyError> {
    let o = mysql_async::Opts::from_url(dsn)
        .map_err(|e| VerifyError(crate::sql::redact::redact_dsn(&e.to_string())))?;
    let mut c = mysql_async::Conn::new(o)
        .await
        .map_err(|e| VerifyError(err(&e)))?;
    let (id, version, db): (u32, String, Option<String>) = c
        .query_first("SELECT CONNECTION_ID(), VERSION(), DATABASE()")
        .await
        .map_err(|e| VerifyError(err(&e)))?
        .ok_or_else(|| VerifyError("no answer to SELECT VERSION()".into()))?;
    let db = db.ok_or_else(|| {
        VerifyError("the target's connection URL names no database (…/dbname)".into())
    })?;
    let base_tables = tables(&mut c, &db)
        .await
        .map_err(|e| VerifyError(err(&e)))?;
    let scratch = format!("{SCRATCH_PREFIX}{id}");
    c.query_drop(format!(
        "SET SESSION lock_wait_timeout = {}",
        opts.lock_timeout_ms.div_ceil(1000).max(1)
    ))
    .await
    .map_err(|e| VerifyError(err(&e)))?;
    c.query_drop(format!("CREATE DATABASE {}", q(&scratch)))
        .await
        .map_err(|e| VerifyError(err(&e)))?;
    let mut s = Session {
        opts,
        c,
        db,
        scratch,
        base_tables,
        mariadb: version.to_ascii_lowercase().contains("mariadb"),
    };
    let mut out = Vec::new();
    let r = s.c.query_drop(format!("USE {}", q(&s.scratch))).await;
    if let Err(e) = r {
        out.clear();
        let _ =
            s.c.query_drop(format!("DROP DATABASE IF EXISTS {}", q(&s.scratch)))
                .await;
        return Err(VerifyError(err(&e)));
    }
    for p in probes {
        let outcome = s.probe(p).await;
        out.push((p.migration, p.statement, outcome));
    }
    let mut leftovers = Vec::new();
    if let Err(e) =
        s.c.query_drop(format!("DROP DATABASE IF EXISTS {}", q(&s.scratch)))
            .await
    {
        leftovers.push(format!("database {} (drop failed: {})", s.scratch, err(&e)));
    }
    leftovers.extend(s.leftovers().await.map_err(|e| VerifyError(err(&e)))?);
    let flavour = if s.mariadb { "mariadb" } else { "mysql" };
    Ok((format!("{flavour} {version}"), out, leftovers))
}

async fn tables(
    c: &mut mysql_async::Conn,
    db: &str,
) -> Result<BTreeSet<String>, mysql_async::Error> {
    let rows: Vec<String> = c
        .exec(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE'",
            (db,),
        )
        .await?;
    Ok(rows.into_iter().collect())
}

impl Session<'_> {
    async fn probe(&mut self, p: &Probe) -> Outcome {
        if super::is_transaction_control(&p.op) {
            return Outcome::Skipped {
                reason: "transaction control".into(),
            };
        }
        if let Some(t) = p.op.table()
            && let Some((schema, _)) = t.rsplit_once('.')
            && !schema.trim_matches('`').eq_ignore_ascii_case(&self.db)
        {
            return Outcome::Skipped {
                reason: format!(
                    "names a table in database {schema}, outside the target's database {}",
                    self.db
                ),
            };
        }
        let sql = requalify(&p.sql, &self.db, &self.scratch);
        if let Err(e) = self.clone_mentioned(&sql, &p.op).await {
            return Outcome::Failed { error: e };
        }
        let table = p.op.table().map(super::bare_name);
        match kind(&p.op) {
            Kind::Plain => self.plain(&sql).await,
            k => self.alter(&sql, &p.op, k, table.as_deref()).await,
        }
    }

    /// Copies into scratch every base table the statement names that is not there yet.
    async fn clone_mentioned(&mut self, sql: &str, op: &Op) -> Result<(), String> {
        let present = tables(&mut self.c, &self.scratch)
            .await
            .map_err(|e| err(&e))?;
        let present: HashSet<String> = present
            .into_iter()
            .map(|t| t.to_ascii_lowercase())
            .collect();
        let created = match op {
            Op::CreateTable { table, .. } => Some(super::bare_name(table)),
            _ => None,
        };
        let names: Vec<String> = self
            .base_tables
            .iter()
            .filter(|t| !present.contains(&t.to_ascii_lowercase()))
            .filter(|t| created.as_deref() != Some(t.to_ascii_lowercase().as_str()))
            .filter(|t| mentions(sql, t))
            .cloned()
            .collect();
        for t in names {
            let src = format!("{}.{}", q(&self.db), q(&t));
            let dst = format!("{}.{}", q(&self.scratch), q(&t));
            let e = |e: mysql_async::Error| format!("copying {t} to scratch: {}", err(&e));
            self.c
                .query_drop(format!("CREATE TABLE {dst} LIKE {src}"))
                .await
                .map_err(e)?;
            let cols: Vec<String> = self
                .c
                .exec(
                    "SELECT COLUMN_NAME FROM information_schema.COLUMNS
                      WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND EXTRA NOT LIKE '%GENERATED%'
                        AND EXTRA NOT LIKE '%VIRTUAL%' AND EXTRA NOT LIKE '%STORED%'
                      ORDER BY ORDINAL_POSITION",
                    (&self.db, &t),
                )
                .await
                .map_err(e)?;
            let cols = cols.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ");
            self.c
                .query_drop(format!(
                    "INSERT INTO {dst} ({cols}) SELECT {cols} FROM {src} LIMIT {}",
                    self.opts.sample_rows
                ))
                .await
                .map_err(e)?;
        }
        Ok(())
    }

    /// Tablespace id per InnoDB table name of a scratch table (and its partitions).
    async fn spaces(&mut self, table: &str) -> Option<BTreeMap<String, u64>> {
        let name = format!("{}/{}", self.scratch, table);
        let like = format!("{}#%", name.replace('_', "\\_"));
        let q = if self.mariadb {
            "SELECT NAME, SPACE FROM information_schema.INNODB_SYS_TABLES WHERE NAME = ? OR NAME LIKE ?"
        } else {
            "SELECT NAME, SPACE FROM information_schema.INNODB_TABLES WHERE NAME = ? OR NAME LIKE ?"
        };
        let rows: Vec<(String, u64)> = self.c.exec(q, (&name, &like)).await.ok()?;
        Some(rows.into_iter().collect())
    }

    async fn plain(&mut self, sql: &str) -> Outcome {
        let start = Instant::now();
        match self.c.query_drop(sql).await {
            Ok(()) => Outcome::Observed(Observed {
                method: Some(Method::ScratchCopy),
                rows_copied: Some(self.c.affected_rows()),
                duration_ms: start.elapsed().as_secs_f64() * 1000.0,
                notes: vec![
                    "run on scratch copies: its metadata lock is not observable there".into(),
                ],
                ..Observed::default()
            }),
            Err(e) => Outcome::Failed { error: err(&e) },
        }
    }

    async fn alter(&mut self, sql: &str, op: &Op, k: Kind, table: Option<&str>) -> Outcome {
        let before = match table {
            Some(t) => self.spaces(t).await,
            None => None,
        };
        let mut obs = Observed {
            method: Some(Method::ScratchCopy),
            ..Observed::default()
        };
        let mut accepted: Option<(String, Option<String>)> = None;
        if k == Kind::Ladder {
            for (algo, lock) in LADDER {
                let Some(probe) = with_clause(sql, op, algo, *lock) else {
                    break;
                };
                let label = match lock {
                    Some(l) => format!("ALGORITHM={algo}, LOCK={l}"),
                    None => format!("ALGORITHM={algo}"),
                };
                let start = Instant::now();
                match self.c.query_drop(&probe).await {
                    Ok(()) => {
                        obs.duration_ms = start.elapsed().as_secs_f64() * 1000.0;
                        obs.accepted = Some(label);
                        accepted = Some((algo.to_string(), lock.map(str::to_string)));
                        break;
                    }
                    Err(e) if refused(&e) => obs.refused.push(format!("{label}: {}", err(&e))),
                    // The grammar takes no clause here: run it as written.
                    Err(mysql_async::Error::Server(se)) if se.code == 1064 => {
                        obs.notes
                            .push(format!("the server takes no {label} clause here"));
                        break;
                    }
                    Err(e) => return Outcome::Failed { error: err(&e) },
                }
            }
            if accepted.is_none() && obs.refused.len() == LADDER.len() {
                return Outcome::Failed {
                    error: format!(
                        "the server refused every ALGORITHM/LOCK combination: {}",
                        obs.refused.join("; ")
                    ),
                };
            }
        }
        if accepted.is_none() {
            let start = Instant::now();
            if let Err(e) = self.c.query_drop(sql).await {
                return Outcome::Failed { error: err(&e) };
            }
            obs.duration_ms = start.elapsed().as_secs_f64() * 1000.0;
            let (algo, lock) = match op {
                Op::AlterTable {
                    algorithm, lock, ..
                } => (
                    algorithm.clone().map(|a| a.to_ascii_uppercase()),
                    lock.clone().map(|l| l.to_ascii_uppercase()),
                ),
                _ => (None, None),
            };
            obs.notes.push(
                "run as written (its ALGORITHM/LOCK is fixed, or the server takes no clause here)"
                    .into(),
            );
            accepted = Some((
                algo.unwrap_or_else(|| "DEFAULT".into()),
                lock.or(Some("DEFAULT".into())),
            ));
        }
        let rows = self.c.affected_rows();
        obs.rows_copied = Some(rows);
        let after = match table {
            Some(t) => self.spaces(t).await,
            None => None,
        };
        let rebuilt = match (&before, &after) {
            (Some(b), Some(a)) if !b.is_empty() && !a.is_empty() => Some(rebuilt(b, a)),
            _ => None,
        };
        let copied = rows > 0;
        obs.rewrote = match rebuilt {
            Some(r) => Some(r || copied),
            None if copied => Some(true),
            None => None,
        };
        let (algo, lock) = accepted.unwrap_or_default();
        let (mode, blocks) = if copied {
            // A copy holds at least LOCK=SHARED before MariaDB 11.2, whatever clause was accepted.
            let l = match lock.as_deref() {
                Some("EXCLUSIVE") => "EXCLUSIVE",
                _ => "SHARED",
            };
            if algo != "COPY" {
                obs.notes.push(format!(
                    "accepted ALGORITHM={algo} yet copied {rows} rows: counted as COPY"
                ));
            }
            (format!("COPY, LOCK={l}"), blocks_of(l))
        } else {
            match (algo.as_str(), lock.as_deref()) {
                ("INSTANT", _) => ("INSTANT".to_string(), Blocks::Nothing),
                (a, Some("DEFAULT") | None) => (a.to_string(), Blocks::Nothing),
                (a, Some(l)) => (format!("{a}, LOCK={l}"), blocks_of(l)),
            }
        };
        if rebuilt == Some(true) && !copied {
            obs.notes
                .push("rebuilt in place (new tablespace id)".into());
        }
        obs.lock = Some(Lock {
            mode,
            blocks,
            table: table.map(str::to_string),
            other_locks: vec![],
        });
        Outcome::Observed(obs)
    }

    async fn leftovers(&mut self) -> Result<Vec<String>, mysql_async::Error> {
        // Only this run's scratch: another verify may be running on the server.
        let mut out: Vec<String> = self
            .c
            .exec::<String, _, _>(
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
                (&self.scratch,),
            )
            .await?
            .into_iter()
            .map(|s| format!("database {s}"))
            .collect();
        let now = tables(&mut self.c, &self.db).await?;
        for t in now.symmetric_difference(&self.base_tables) {
            out.push(format!("table {}.{t} created or dropped", self.db));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Engine;
    use crate::sql::analyze::analyze;

    fn clause(sql: &str, algo: &str, lock: Option<&str>) -> String {
        with_clause(sql, &analyze(sql, Engine::Mysql).op, algo, lock).unwrap()
    }

    #[test]
    fn clauses_go_where_the_grammar_takes_them() {
        assert_eq!(
            clause("ALTER TABLE t ADD COLUMN x INT;", "INSTANT", None),
            "ALTER TABLE t ALGORITHM=INSTANT, ADD COLUMN x INT"
        );
        assert_eq!(
            clause(
                "ALTER TABLE `db`.`t` PARTITION BY HASH(id) PARTITIONS 4",
                "INPLACE",
                Some("NONE")
            ),
            "ALTER TABLE `db`.`t` ALGORITHM=INPLACE, LOCK=NONE PARTITION BY HASH(id) PARTITIONS 4"
        );
        assert_eq!(
            clause("CREATE INDEX i ON t (c)", "NOCOPY", Some("NONE")),
            "CREATE INDEX i ON t (c) ALGORITHM=NOCOPY LOCK=NONE"
        );
    }

    #[test]
    fn partition_maintenance_and_explicit_clauses_run_as_written() {
        let k = |s: &str| kind(&analyze(s, Engine::Mysql).op);
        assert_eq!(k("ALTER TABLE t ADD COLUMN x INT"), Kind::Ladder);
        assert_eq!(
            k("ALTER TABLE t ADD COLUMN x INT, ALGORITHM=COPY"),
            Kind::AsWritten
        );
        assert_eq!(k("ALTER TABLE t DROP PARTITION p0"), Kind::AsWritten);
        assert_eq!(k("UPDATE t SET c = 1"), Kind::Plain);
    }

    #[test]
    fn adding_or_dropping_a_partition_is_not_a_rebuild() {
        let m = |v: &[(&str, u64)]| v.iter().map(|(k, s)| (k.to_string(), *s)).collect();
        let before = m(&[("s/pr#P#p0", 5), ("s/pr#P#p1", 6)]);
        assert!(!rebuilt(
            &before,
            &m(&[("s/pr#P#p0", 5), ("s/pr#P#p1", 6), ("s/pr#P#p2", 7)])
        ));
        assert!(!rebuilt(&before, &m(&[("s/pr#P#p1", 6)])));
        assert!(rebuilt(&before, &m(&[("s/pr#P#p0", 8), ("s/pr#P#p1", 6)])));
        assert!(rebuilt(&m(&[("s/pt", 3)]), &m(&[("s/pt#P#p0", 9)])));
        assert!(!rebuilt(&m(&[("s/t", 3)]), &m(&[("s/t", 3)])));
    }

    #[test]
    fn drop_index_is_probed_as_alter() {
        assert_eq!(
            clause("DROP INDEX i ON t", "INSTANT", None),
            "ALTER TABLE t ALGORITHM=INSTANT, DROP INDEX i"
        );
    }

    #[test]
    fn requalifies_the_target_database_only() {
        assert_eq!(
            requalify("ALTER TABLE test.t ADD x INT", "test", "s"),
            "ALTER TABLE `s`.t ADD x INT"
        );
        assert_eq!(
            requalify("ALTER TABLE `test`.`t` ADD x INT", "test", "s"),
            "ALTER TABLE `s`.`t` ADD x INT"
        );
        assert_eq!(
            requalify("ALTER TABLE latest.t ADD x INT", "test", "s"),
            "ALTER TABLE latest.t ADD x INT"
        );
    }
}
