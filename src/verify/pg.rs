//! PostgreSQL probes (engines.md §7.1).
//!
//! Each statement runs in its own `BEGIN … ROLLBACK`, after replaying the
//! plan's earlier statements (so it meets the objects they create), and the
//! locks its own backend gained are read from `pg_locks` and resolved against a
//! catalog snapshot taken before anything ran (so dropped relations still
//! resolve). A changed `relfilenode` is a rewrite. Statements that cannot run
//! in a transaction run on a scratch copy while another session holds
//! SHARE UPDATE EXCLUSIVE on it: the statement queues, and its granted and
//! requested locks are read while it waits.

use super::{Method, Observed, Outcome, Probe, VerifyError, VerifyOptions, bare_name};
use crate::model::{Blocks, Lock, OtherLock, Plan};
use crate::risk::PgLock;
use crate::sql::ops::{Action, Op};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

/// Prefix of the scratch schema; the leftover check looks for it.
pub const SCRATCH_PREFIX: &str = "_cutover_verify_";

#[derive(Debug, Clone)]
struct Rel {
    schema: String,
    name: String,
    kind: String,
    filenode: u32,
    /// For an index: its table, `schema.name`.
    parent: Option<String>,
}

impl Rel {
    fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
    fn is_table(&self) -> bool {
        matches!(self.kind.as_str(), "r" | "p" | "m")
    }
}

fn err(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("ERROR {}: {}", d.code().code(), d.message()),
        None => crate::sql::redact::redact_dsn(&e.to_string()),
    }
}

async fn connect(dsn: &str) -> Result<Client, VerifyError> {
    let (c, conn) = tokio_postgres::connect(dsn, NoTls)
        .await
        .map_err(|e| VerifyError(crate::sql::redact::redact_dsn(&err(&e))))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(c)
}

const USER_RELS: &str = "SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text, c.relfilenode,
            (SELECT pn.nspname || '.' || pc.relname FROM pg_index i JOIN pg_class pc ON pc.oid = i.indrelid
               JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE i.indexrelid = c.oid)
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
        AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'";

async fn user_rels(c: &Client) -> Result<HashMap<u32, Rel>, tokio_postgres::Error> {
    let rows = c.query(USER_RELS, &[]).await?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get::<_, u32>(0),
                Rel {
                    schema: r.get(1),
                    name: r.get(2),
                    kind: r.get(3),
                    filenode: r.get(4),
                    parent: r.get(5),
                },
            )
        })
        .collect())
}

async fn own_locks(c: &Client) -> Result<BTreeSet<(u32, String)>, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT relation, mode FROM pg_locks
              WHERE pid = pg_backend_pid() AND locktype = 'relation' AND relation IS NOT NULL",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get::<_, u32>(0), r.get::<_, String>(1)))
        .collect())
}

async fn filenodes(c: &Client, oids: &[u32]) -> Result<HashMap<u32, u32>, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT oid, relfilenode FROM pg_class WHERE oid = ANY($1)",
            &[&oids],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get::<_, u32>(0), r.get::<_, u32>(1)))
        .collect())
}

/// `pg_locks.mode` → the ordered lock mode.
pub fn parse_mode(mode: &str) -> Option<PgLock> {
    use PgLock::*;
    [
        AccessShare,
        RowShare,
        RowExclusive,
        ShareUpdateExclusive,
        Share,
        ShareRowExclusive,
        Exclusive,
        AccessExclusive,
    ]
    .into_iter()
    .find(|l| l.name() == mode)
}

/// Statements PostgreSQL refuses inside a transaction block (engines.md §1.3).
pub fn needs_no_transaction(op: &Op) -> bool {
    match op {
        Op::CreateIndex { concurrently, .. }
        | Op::DropIndex { concurrently, .. }
        | Op::Reindex { concurrently, .. } => *concurrently,
        Op::Vacuum { .. } => true,
        Op::AlterTable { actions, .. } => actions.iter().any(|a| {
            matches!(
                a,
                Action::DetachPartition {
                    concurrently: true,
                    ..
                }
            )
        }),
        _ => false,
    }
}

/// Locks seen, per relation, reduced to the statement's lock picture.
/// `main` is the plan's table for the statement, if any (it may name an index:
/// then its table is the main one, reported under the plan's name).
/// An ACCESS EXCLUSIVE lock on one of the main table's indexes blocks reads
/// too: every query on the table opens all its indexes while planning.
fn lock_picture(seen: &[(Rel, PgLock, bool)], main: Option<&str>, notes: &mut Vec<String>) -> Lock {
    let mut per_table: BTreeMap<String, PgLock> = BTreeMap::new();
    // Per table: its indexes locked ACCESS EXCLUSIVE.
    let mut index_ael: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut main_index_parent = None;
    for (rel, mode, granted) in seen {
        if rel.is_table() {
            let e = per_table.entry(rel.qualified()).or_insert(*mode);
            *e = (*e).max(*mode);
        } else if rel.kind == "i" || rel.kind == "I" {
            if main.is_some_and(|m| bare_name(m) == bare_name(&rel.name)) {
                main_index_parent = rel.parent.clone();
            }
            if *mode == PgLock::AccessExclusive
                && let Some(p) = &rel.parent
            {
                index_ael
                    .entry(p.clone())
                    .or_default()
                    .push(rel.name.clone());
            }
            let note = format!(
                "{}{} on index {}",
                mode.name(),
                if *granted { "" } else { " (requested)" },
                rel.qualified()
            );
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
    }
    let main_name = main
        .and_then(|m| {
            per_table
                .keys()
                .find(|k| bare_name(k) == bare_name(m))
                .cloned()
        })
        .or(main_index_parent
            .clone()
            .filter(|p| per_table.contains_key(p)))
        .or_else(|| {
            per_table
                .iter()
                .max_by_key(|(_, m)| **m)
                .map(|(k, _)| k.clone())
        });
    let Some(main_name) = main_name else {
        return Lock {
            mode: "none".into(),
            blocks: Blocks::Nothing,
            table: main.map(str::to_string),
            other_locks: vec![],
        };
    };
    let picture = |table: &str, mode: PgLock| -> (String, Blocks) {
        match index_ael.get(table) {
            Some(ix) if mode != PgLock::AccessExclusive => (
                format!(
                    "{} + AccessExclusiveLock on index {}",
                    mode.name(),
                    ix.join(", ")
                ),
                Blocks::ReadsAndWrites,
            ),
            _ => (mode.name().to_string(), mode.blocks()),
        }
    };
    let (mode, blocks) = picture(&main_name, per_table[&main_name]);
    let shown = match (&main_index_parent, main) {
        (Some(p), Some(m)) if *p == main_name => {
            notes.push(format!("{m} is an index of {p}"));
            m.to_string()
        }
        _ => main_name.clone(),
    };
    Lock {
        mode,
        blocks,
        table: Some(shown),
        other_locks: per_table
            .iter()
            .filter(|(k, _)| **k != main_name)
            .map(|(k, m)| {
                let (mode, blocks) = picture(k, *m);
                OtherLock {
                    table: k.clone(),
                    mode,
                    blocks,
                }
            })
            .collect(),
    }
}

struct Session<'a> {
    dsn: &'a str,
    opts: &'a VerifyOptions,
    c: Client,
    /// Relations before any probe: what the plan calls "existing".
    baseline: HashMap<u32, Rel>,
    scratch: Option<String>,
    /// Statements that ran in a transaction, replayed before the next one.
    replay: Vec<String>,
}

/// Verifies the probes in order on the PostgreSQL target at `dsn`.
pub async fn verify(
    dsn: &str,
    plan: &Plan,
    probes: &[Probe],
    opts: &VerifyOptions,
) -> Result<(String, Vec<(usize, usize, Outcome)>, Vec<String>), VerifyError> {
    let c = connect(dsn).await?;
    let version: String = c
        .query_one("SHOW server_version", &[])
        .await
        .map_err(|e| VerifyError(err(&e)))?
        .get(0);
    let baseline = user_rels(&c).await.map_err(|e| VerifyError(err(&e)))?;
    let mut s = Session {
        dsn,
        opts,
        c,
        baseline,
        scratch: None,
        replay: Vec::new(),
    };
    let mut out = Vec::new();
    for p in probes {
        let main = plan
            .migrations
            .get(p.migration)
            .and_then(|m| m.statements.get(p.statement))
            .and_then(|v| v.lock.table.clone())
            .or_else(|| p.op.table().map(str::to_string));
        let outcome = s.probe(p, main.as_deref()).await;
        out.push((p.migration, p.statement, outcome));
    }
    let mut leftovers = Vec::new();
    let pid: i32 =
        s.c.query_one("SELECT pg_backend_pid()", &[])
            .await
            .map_err(|e| VerifyError(err(&e)))?
            .get(0);
    let scratch_name = format!("{SCRATCH_PREFIX}{pid}");
    // The relations the plan names: its tables, and every name its statements mention.
    let named: BTreeSet<String> = s
        .baseline
        .values()
        .map(|r| bare_name(&r.name))
        .filter(|n| probes.iter().any(|p| mentions(&p.sql, n)))
        .chain(probes.iter().filter_map(|p| p.op.table().map(bare_name)))
        .collect();
    if let Some(schema) = s.scratch.take()
        && let Err(e) =
            s.c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", quote(&schema)))
                .await
    {
        leftovers.push(format!("schema {schema} (drop failed: {})", err(&e)));
    }
    leftovers.extend(
        s.leftovers(&named, &scratch_name)
            .await
            .map_err(|e| VerifyError(err(&e)))?,
    );
    Ok((format!("postgres {version}"), out, leftovers))
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

impl Session<'_> {
    async fn probe(&mut self, p: &Probe, main: Option<&str>) -> Outcome {
        if super::is_transaction_control(&p.op) {
            return Outcome::Skipped {
                reason: "transaction control: each statement is probed in its own transaction"
                    .into(),
            };
        }
        if needs_no_transaction(&p.op) {
            return self.on_scratch(p, main).await;
        }
        // Alone first: earlier statements' locks would hide this one's. Only
        // when it fails alone (it needs what they create) are they replayed.
        let mut r = self.in_transaction(&p.sql, main, false).await;
        if r.as_ref()
            .is_err_and(|e| e.code() != Some(&SqlState::ACTIVE_SQL_TRANSACTION))
            && !self.replay.is_empty()
        {
            r = self.in_transaction(&p.sql, main, true).await;
        }
        match r {
            Ok(mut o) => {
                self.replay.push(p.sql.clone());
                if matches!(p.op, Op::Truncate { .. }) && o.rewrote == Some(true) {
                    // TRUNCATE swaps in empty storage: no rows are copied.
                    o.rewrote = Some(false);
                    o.notes
                        .push("new empty relfilenode (TRUNCATE): no rows copied".into());
                }
                Outcome::Observed(o)
            }
            Err(e) if e.code() == Some(&SqlState::ACTIVE_SQL_TRANSACTION) => {
                self.on_scratch(p, main).await
            }
            Err(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => Outcome::Failed {
                error: format!(
                    "{}: a session on staging holds a conflicting lock; the lock was not granted within {} ms (retry, or raise --lock-timeout-ms)",
                    err(&e),
                    self.opts.lock_timeout_ms
                ),
            },
            Err(e) => Outcome::Failed { error: err(&e) },
        }
    }

    async fn in_transaction(
        &mut self,
        sql: &str,
        main: Option<&str>,
        replay: bool,
    ) -> Result<Observed, tokio_postgres::Error> {
        let c = &self.c;
        c.batch_execute(&format!(
            "BEGIN; SET LOCAL lock_timeout = '{}ms'; SET LOCAL statement_timeout = '{}ms'",
            self.opts.lock_timeout_ms, self.opts.statement_timeout_ms
        ))
        .await?;
        let r = self.observe_in_transaction(sql, main, replay).await;
        // Whatever happened, nothing stays.
        let _ = self.c.batch_execute("ROLLBACK").await;
        r
    }

    async fn observe_in_transaction(
        &self,
        sql: &str,
        main: Option<&str>,
        replay: bool,
    ) -> Result<Observed, tokio_postgres::Error> {
        let c = &self.c;
        let mut notes = Vec::new();
        let prior_statements: &[String] = if replay { &self.replay } else { &[] };
        if replay {
            notes.push(format!(
                "observed after replaying the {} earlier statement(s) it depends on",
                prior_statements.len()
            ));
        }
        for (i, prior) in prior_statements.iter().enumerate() {
            c.batch_execute("SAVEPOINT cutover_replay").await?;
            if c.batch_execute(prior).await.is_err() {
                c.batch_execute("ROLLBACK TO SAVEPOINT cutover_replay")
                    .await?;
                notes.push(format!(
                    "earlier statement #{i} failed when replayed before this one"
                ));
            }
        }
        let oids: Vec<u32> = self.baseline.keys().copied().collect();
        let locks_before = own_locks(c).await?;
        let nodes_before = filenodes(c, &oids).await?;
        let start = Instant::now();
        c.batch_execute(sql).await?;
        let duration_ms = start.elapsed().as_secs_f64() * 1000.0;
        let locks_after = own_locks(c).await?;
        let nodes_after = filenodes(c, &oids).await?;

        let mut seen = Vec::new();
        for (oid, mode) in locks_after.difference(&locks_before) {
            if let (Some(rel), Some(m)) = (self.baseline.get(oid), parse_mode(mode)) {
                seen.push((rel.clone(), m, true));
            }
        }
        let lock = lock_picture(&seen, main, &mut notes);
        let masked = main.is_some_and(|m| {
            let seen_main = lock
                .table
                .as_deref()
                .is_some_and(|t| bare_name(t) == bare_name(m));
            !seen_main
                && locks_before.iter().any(|(oid, _)| {
                    self.baseline
                        .get(oid)
                        .is_some_and(|r| r.is_table() && bare_name(&r.name) == bare_name(m))
                })
        });
        let rewritten: Vec<&Rel> = nodes_before
            .iter()
            .filter(|(oid, node)| **node != 0 && nodes_after.get(oid).is_some_and(|a| *a != **node))
            .filter_map(|(oid, _)| self.baseline.get(oid))
            .filter(|r| r.is_table())
            .collect();
        let rewrote = match main {
            Some(m) => rewritten.iter().any(|r| bare_name(&r.name) == bare_name(m)),
            None => !rewritten.is_empty(),
        };
        for r in &rewritten {
            if main.is_none_or(|m| bare_name(&r.name) != bare_name(m)) {
                notes.push(format!("also rewrote {}", r.qualified()));
            }
        }
        if masked {
            notes.push(format!(
                "the lock on {} was already held by an earlier statement of this plan: not observable here",
                main.unwrap_or("?")
            ));
        }
        Ok(Observed {
            method: Some(Method::Transaction),
            lock: if masked { None } else { Some(lock) },
            rewrote: Some(rewrote),
            duration_ms,
            notes,
            ..Observed::default()
        })
    }

    /// The baseline table a statement acts on (by name, or through its index).
    async fn base_table(&self, p: &Probe, main: Option<&str>) -> Option<(u32, Rel)> {
        let by_name = |n: &str| {
            let schema = n.contains('.').then(|| {
                n.rsplit_once('.')
                    .map(|(s, _)| s.trim_matches('"').to_string())
                    .unwrap_or_default()
            });
            let mut cands: Vec<(u32, Rel)> = self
                .baseline
                .iter()
                .filter(|(_, r)| {
                    bare_name(&r.name) == bare_name(n)
                        && schema.as_ref().is_none_or(|s| *s == r.schema)
                })
                .map(|(o, r)| (*o, r.clone()))
                .collect();
            cands.sort_by_key(|(_, r)| r.schema != "public");
            cands.into_iter().next()
        };
        if let Some(t) = main.or(p.op.table())
            && let Some((oid, rel)) = by_name(t)
            && rel.is_table()
        {
            return Some((oid, rel));
        }
        // DROP INDEX CONCURRENTLY name / REINDEX INDEX CONCURRENTLY name: the index's table.
        let index = match &p.op {
            Op::DropIndex { names, .. } => names.first().cloned(),
            Op::Reindex { target, .. } => Some(target.clone()),
            _ => None,
        }?;
        let (ioid, _) = by_name(&index)?;
        let row = self
            .c
            .query_opt(
                "SELECT indrelid FROM pg_index WHERE indexrelid = $1",
                &[&ioid],
            )
            .await
            .ok()??;
        let t: u32 = row.get(0);
        self.baseline.get(&t).map(|r| (t, r.clone()))
    }

    async fn on_scratch(&mut self, p: &Probe, main: Option<&str>) -> Outcome {
        let Some((_, rel)) = self.base_table(p, main).await else {
            return Outcome::Skipped {
                reason: "cannot run in a transaction and its table does not exist before this plan: nothing to copy".into(),
            };
        };
        match self.scratch_probe(p, &rel).await {
            Ok(o) => Outcome::Observed(o),
            Err(e) => Outcome::Failed { error: e },
        }
    }

    async fn ensure_scratch(&mut self) -> Result<String, String> {
        if let Some(s) = &self.scratch {
            return Ok(s.clone());
        }
        let pid: i32 = self
            .c
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .map_err(|e| err(&e))?
            .get(0);
        let name = format!("{SCRATCH_PREFIX}{pid}");
        self.c
            .batch_execute(&format!("CREATE SCHEMA {}", quote(&name)))
            .await
            .map_err(|e| err(&e))?;
        self.scratch = Some(name.clone());
        Ok(name)
    }

    /// `CREATE TABLE scratch.t (LIKE t INCLUDING ALL)` + a sample of rows, with
    /// the original index names (so statements naming an index find it).
    async fn copy_table(&mut self, rel: &Rel) -> Result<String, String> {
        let scratch = self.ensure_scratch().await?;
        let src = format!("{}.{}", quote(&rel.schema), quote(&rel.name));
        let dst = format!("{}.{}", quote(&scratch), quote(&rel.name));
        let c = &self.c;
        let e = |e: tokio_postgres::Error| {
            format!("copying {} to scratch: {}", rel.qualified(), err(&e))
        };
        c.batch_execute(&format!(
            "DROP TABLE IF EXISTS {dst} CASCADE; CREATE TABLE {dst} (LIKE {src} INCLUDING ALL)"
        ))
        .await
        .map_err(e)?;
        let cols: Vec<String> = c
            .query(
                "SELECT quote_ident(attname) FROM pg_attribute
                  WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
                  ORDER BY attnum",
                &[&src],
            )
            .await
            .map_err(e)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let cols = cols.join(", ");
        c.batch_execute(&format!(
            "INSERT INTO {dst} ({cols}) OVERRIDING SYSTEM VALUE SELECT {cols} FROM {src} LIMIT {}",
            self.opts.sample_rows
        ))
        .await
        .map_err(e)?;
        // Index names: LIKE generates its own; match by definition and rename.
        let defs = "SELECT ic.relname::text, i.indisunique, regexp_replace(pg_get_indexdef(i.indexrelid), '^.* USING ', '')
                      FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                     WHERE i.indrelid = $1::text::regclass ORDER BY ic.relname";
        let orig = c.query(defs, &[&src]).await.map_err(e)?;
        let copy = c.query(defs, &[&dst]).await.map_err(e)?;
        let mut used = BTreeSet::new();
        for o in &orig {
            let (oname, ou, od): (String, bool, String) = (o.get(0), o.get(1), o.get(2));
            if let Some(cp) = copy.iter().find(|r| {
                let n: String = r.get(0);
                r.get::<_, bool>(1) == ou && r.get::<_, String>(2) == od && !used.contains(&n)
            }) {
                let cname: String = cp.get(0);
                used.insert(cname.clone());
                if cname != oname {
                    c.batch_execute(&format!(
                        "ALTER INDEX {}.{} RENAME TO {}",
                        quote(&scratch),
                        quote(&cname),
                        quote(&oname)
                    ))
                    .await
                    .map_err(e)?;
                }
            }
        }
        Ok(dst)
    }

    async fn scratch_probe(&mut self, p: &Probe, rel: &Rel) -> Result<Observed, String> {
        let dst = self.copy_table(rel).await?;
        let scratch = self.scratch.clone().unwrap_or_default();
        let sql = requalify(&p.sql, &rel.schema, &scratch);
        let holder = connect(self.dsn).await.map_err(|e| e.0)?;
        let stmt = connect(self.dsn).await.map_err(|e| e.0)?;
        let pid: i32 = stmt
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .map_err(|e| err(&e))?
            .get(0);
        let search_path: String = stmt
            .query_one("SHOW search_path", &[])
            .await
            .map_err(|e| err(&e))?
            .get(0);
        stmt.batch_execute(&format!(
            "SET search_path = {}, {search_path}; SET statement_timeout = '{}ms'",
            quote(&scratch),
            self.opts.statement_timeout_ms
        ))
        .await
        .map_err(|e| err(&e))?;
        let node_q = format!("SELECT relfilenode FROM pg_class WHERE oid = '{dst}'::regclass");
        let before: u32 = self
            .c
            .query_one(&node_q, &[])
            .await
            .map_err(|e| err(&e))?
            .get(0);
        holder
            .batch_execute(&format!(
                "BEGIN; LOCK TABLE {dst} IN SHARE UPDATE EXCLUSIVE MODE"
            ))
            .await
            .map_err(|e| err(&e))?;

        let start = Instant::now();
        let run = stmt.batch_execute(&sql);
        tokio::pin!(run);
        let mut seen: Vec<(Rel, PgLock, bool)> = Vec::new();
        let mut waited = false;
        let mut result = None;
        let deadline = Instant::now() + Duration::from_secs(30);
        // Poll the statement's locks until it queues behind the holder (or ends).
        while result.is_none() && !waited && Instant::now() < deadline {
            tokio::select! {
                r = &mut run => result = Some(r),
                _ = tokio::time::sleep(Duration::from_millis(10)) => {
                    let rows = self.c.query(
                        "SELECT n.nspname::text, c.relname::text, c.relkind::text, l.mode, l.granted
                           FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                           JOIN pg_namespace n ON n.oid = c.relnamespace
                          WHERE l.pid = $1 AND l.locktype = 'relation' AND n.nspname = $2",
                        &[&pid, &scratch],
                    ).await.map_err(|e| err(&e))?;
                    if rows.iter().any(|r| !r.get::<_, bool>(4)) {
                        waited = true;
                        for r in &rows {
                            if let Some(m) = parse_mode(&r.get::<_, String>(3)) {
                                // Reported under the original schema: the copy stands for it.
                                seen.push((Rel { schema: rel.schema.clone(), name: r.get(1), kind: r.get(2), filenode: 0, parent: Some(rel.qualified()) }, m, r.get(4)));
                            }
                        }
                    }
                }
            }
        }
        let released = Instant::now();
        let _ = holder.batch_execute("ROLLBACK").await;
        let result = match result {
            Some(r) => r,
            None => run.await,
        };
        let duration_ms = if waited {
            released.elapsed().as_secs_f64() * 1000.0
        } else {
            start.elapsed().as_secs_f64() * 1000.0
        };
        result.map_err(|e| err(&e))?;
        let after: Option<u32> = self
            .c
            .query_opt(
                "SELECT relfilenode FROM pg_class WHERE oid = to_regclass($1)",
                &[&dst],
            )
            .await
            .map_err(|e| err(&e))?
            .map(|r| r.get(0));
        let _ = self
            .c
            .batch_execute(&format!("DROP TABLE IF EXISTS {dst} CASCADE"))
            .await;
        let mut notes = vec![format!(
            "run outside a transaction on a scratch copy ({} sample rows at most)",
            self.opts.sample_rows
        )];
        let lock = if waited {
            lock_picture(&seen, Some(&rel.qualified()), &mut notes)
        } else {
            notes.push(
                "it never waited behind SHARE UPDATE EXCLUSIVE: its locks are weaker (AccessShare, RowShare or RowExclusive)"
                    .into(),
            );
            Lock {
                mode: "weaker than ShareUpdateExclusiveLock".into(),
                blocks: Blocks::Nothing,
                table: Some(rel.qualified()),
                other_locks: vec![],
            }
        };
        Ok(Observed {
            method: Some(Method::ScratchCopy),
            lock: Some(lock),
            rewrote: Some(after.is_some_and(|a| a != before)),
            duration_ms,
            notes,
            ..Observed::default()
        })
    }

    /// What the probes left: this run's scratch schema, or a change to a
    /// relation the plan names (other sessions may change the rest of staging).
    async fn leftovers(
        &self,
        named: &BTreeSet<String>,
        scratch: &str,
    ) -> Result<Vec<String>, tokio_postgres::Error> {
        let mut out: Vec<String> = self
            .c
            .query(
                "SELECT nspname::text FROM pg_namespace WHERE nspname = $1",
                &[&scratch],
            )
            .await?
            .iter()
            .map(|r| format!("schema {}", r.get::<_, String>(0)))
            .collect();
        let ours = |r: &Rel| named.contains(&bare_name(&r.name));
        let now = user_rels(&self.c).await?;
        for (oid, r) in now.iter().filter(|(_, r)| ours(r)) {
            match self.baseline.get(oid) {
                None => out.push(format!("relation {} created", r.qualified())),
                Some(b) if b.filenode != r.filenode => {
                    out.push(format!("relation {} rewritten", r.qualified()))
                }
                _ => {}
            }
        }
        for (oid, r) in self.baseline.iter().filter(|(_, r)| ours(r)) {
            if !now.contains_key(oid) {
                out.push(format!("relation {} dropped", r.qualified()));
            }
        }
        out.sort();
        Ok(out)
    }
}

/// True when `sql` mentions `name` as a whole word (case-insensitive).
fn mentions(sql: &str, name: &str) -> bool {
    let pat = format!(r#"(?i)(^|[^\w$]){}($|[^\w$])"#, regex::escape(name));
    regex::Regex::new(&pat).is_ok_and(|re| re.is_match(sql))
}

/// Points `schema.`-qualified names at the scratch schema (unqualified names
/// find the copy through `search_path`).
pub fn requalify(sql: &str, schema: &str, scratch: &str) -> String {
    let pat = format!(r#"(?i)(^|[^\w."])"?{}"?\s*\.\s*"#, regex::escape(schema));
    match regex::Regex::new(&pat) {
        Ok(re) => re
            .replace_all(sql, |c: &regex::Captures| {
                format!("{}\"{scratch}\".", &c[1])
            })
            .into_owned(),
        Err(_) => sql.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requalifies_only_the_schema() {
        assert_eq!(
            requalify("CREATE INDEX CONCURRENTLY i ON public.t (c)", "public", "s"),
            "CREATE INDEX CONCURRENTLY i ON \"s\".t (c)"
        );
        assert_eq!(
            requalify("REINDEX TABLE CONCURRENTLY \"public\".\"t\"", "public", "s"),
            "REINDEX TABLE CONCURRENTLY \"s\".\"t\""
        );
        assert_eq!(requalify("VACUUM t", "public", "s"), "VACUUM t");
        assert_eq!(
            requalify("VACUUM mypublic.t", "public", "s"),
            "VACUUM mypublic.t"
        );
    }

    #[test]
    fn lock_picture_takes_the_strongest_on_the_main_table() {
        let rel = |n: &str, k: &str| Rel {
            schema: "public".into(),
            name: n.into(),
            kind: k.into(),
            filenode: 1,
            parent: (k == "i").then(|| "public.t".to_string()),
        };
        let mut notes = vec![];
        let l = lock_picture(
            &[
                (rel("t", "r"), PgLock::Share, true),
                (rel("t", "r"), PgLock::AccessExclusive, true),
                (rel("p", "r"), PgLock::ShareRowExclusive, true),
                (rel("t_c_idx", "i"), PgLock::AccessExclusive, true),
            ],
            Some("t"),
            &mut notes,
        );
        assert_eq!(l.mode, "AccessExclusiveLock");
        assert_eq!(l.blocks, Blocks::ReadsAndWrites);
        assert_eq!(l.other_locks.len(), 1);
        assert_eq!(l.other_locks[0].blocks, Blocks::Writes);
        assert_eq!(notes.len(), 1);
    }

    #[test]
    fn an_exclusive_index_lock_blocks_reads_of_its_table() {
        let t = Rel {
            schema: "public".into(),
            name: "t".into(),
            kind: "r".into(),
            filenode: 1,
            parent: None,
        };
        let i = Rel {
            schema: "public".into(),
            name: "t_c_idx".into(),
            kind: "i".into(),
            filenode: 2,
            parent: Some("public.t".into()),
        };
        let mut notes = vec![];
        // REINDEX TABLE: SHARE on the table, ACCESS EXCLUSIVE on each index.
        let l = lock_picture(
            &[
                (t.clone(), PgLock::Share, true),
                (i.clone(), PgLock::AccessExclusive, true),
            ],
            Some("t"),
            &mut notes,
        );
        assert_eq!(l.blocks, Blocks::ReadsAndWrites);
        assert!(
            l.mode
                .starts_with("ShareLock + AccessExclusiveLock on index t_c_idx"),
            "{}",
            l.mode
        );
        // DROP INDEX named by the plan as the index: reported under that name.
        let l = lock_picture(
            &[
                (t, PgLock::AccessExclusive, true),
                (i, PgLock::AccessExclusive, true),
            ],
            Some("t_c_idx"),
            &mut notes,
        );
        assert_eq!(l.table.as_deref(), Some("t_c_idx"));
        assert_eq!(l.mode, "AccessExclusiveLock");
    }

    #[test]
    fn concurrently_needs_no_transaction() {
        let a = crate::sql::analyze::analyze(
            "CREATE INDEX CONCURRENTLY i ON t (c)",
            crate::model::Engine::Postgres,
        );
        assert!(needs_no_transaction(&a.op));
        let a =
            crate::sql::analyze::analyze("CREATE INDEX i ON t (c)", crate::model::Engine::Postgres);
        assert!(!needs_no_transaction(&a.op));
    }
}
