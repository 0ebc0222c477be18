//! The pre-flight classifier: migrations + rules + table facts → a [`Plan`].
//!
//! Each statement is analyzed into operation facts, then the rule families add
//! findings, the strongest lock and the work it does. Risk is the worst finding;
//! the transaction checks add findings to the migration. See the README's risk
//! policy for the order in which the rules decide.

mod alter_mysql;
mod alter_pg;
pub mod backfill;
mod estimate;
mod locks;
pub mod rules;
mod statements;
pub mod txn;

use crate::catalog::Catalog;
use crate::migrate::{Migration, TxWrap};
use crate::model::*;
use crate::sql::analyze::analyze;
use crate::sql::ops::{Analysis, Op};
use crate::sql::redact::{redact_with_secrets, scrub};
pub use locks::PgLock;
pub use rules::RuleSet;
use std::collections::{HashMap, HashSet};

/// Everything the classifier needs besides the migrations.
pub struct Context<'a> {
    pub rules: &'a RuleSet,
    /// Facts per engine (a plan may mix engines only in odd set-ups).
    pub catalog: &'a Catalog,
    pub pg_version: EngineVersion,
    pub mysql_version: EngineVersion,
}

/// How much work a statement does on a table while holding its lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkKind {
    /// Catalog only.
    Meta,
    /// Reads the table (validation).
    Scan,
    /// Builds an index.
    Build,
    /// Rewrites or copies the table.
    Rewrite,
    /// Changes rows.
    Dml,
}

/// A statement under evaluation: the rule families fill it in.
pub struct Eval<'a> {
    pub ctx: &'a Context<'a>,
    pub engine: Engine,
    pub version: EngineVersion,
    pub sql: &'a str,
    /// Tables created earlier in the plan (they count as empty).
    pub created: &'a HashSet<String>,
    pub findings: Vec<Finding>,
    pub lock: Lock,
    pub rewrites: bool,
    pub work: Vec<(WorkKind, bool)>,
    /// Tables whose unknown size was already reported.
    pub size_reported: HashSet<String>,
    /// Index key columns created earlier in the plan, per table as written.
    pub plan_indexes: &'a HashMap<String, Vec<Vec<String>>>,
    /// Domains with a CHECK constraint created (or constrained) earlier in the plan.
    pub checked_domains: &'a HashSet<String>,
    /// Tables given a FULLTEXT index earlier in the plan.
    pub plan_fulltext: &'a HashSet<String>,
}

impl<'a> Eval<'a> {
    fn new(
        ctx: &'a Context<'a>,
        engine: Engine,
        sql: &'a str,
        created: &'a HashSet<String>,
        plan_indexes: &'a HashMap<String, Vec<Vec<String>>>,
        checked_domains: &'a HashSet<String>,
        plan_fulltext: &'a HashSet<String>,
    ) -> Self {
        Eval {
            ctx,
            engine,
            version: match engine {
                Engine::Postgres => ctx.pg_version,
                Engine::Mysql => ctx.mysql_version,
            },
            sql,
            created,
            findings: Vec::new(),
            lock: Lock {
                mode: "none".into(),
                blocks: Blocks::Nothing,
                table: None,
                other_locks: vec![],
            },
            rewrites: false,
            work: Vec::new(),
            size_reported: HashSet::new(),
            plan_indexes,
            checked_domains,
            plan_fulltext,
        }
    }

    /// True when the table's facts are known and no valid index (from the catalog or
    /// created earlier in this plan) starts with `columns`.
    pub fn lacks_index_prefix(&self, table: &str, columns: &[String]) -> bool {
        if columns.is_empty() || !self.exists(table) {
            return false;
        }
        let planned = self.plan_indexes.get(table).is_some_and(|v| {
            v.iter()
                .any(|i| i.len() >= columns.len() && i[..columns.len()] == *columns)
        });
        match self.ctx.catalog.lookup(table) {
            Some(f) if f.indexes_known => !planned && !f.has_index_prefix(columns),
            _ => false,
        }
    }

    /// True when the table has a FULLTEXT index (catalog, or added earlier in the plan).
    pub fn has_fulltext(&self, table: &str) -> bool {
        self.plan_fulltext.contains(table)
            || self
                .ctx
                .catalog
                .lookup(table)
                .is_some_and(|f| f.indexes.iter().any(|i| i.fulltext))
    }

    /// True if the table existed before this plan.
    pub fn exists(&self, table: &str) -> bool {
        !self.created.contains(table)
    }

    /// Large for size-scaled rules: known size over a threshold, or unknown (and then said).
    pub fn large(&mut self, table: &str) -> bool {
        if !self.exists(table) {
            return false;
        }
        let th = self.ctx.rules.thresholds;
        match self.ctx.catalog.lookup(table) {
            Some(f) if f.rows.is_some() || f.bytes.is_some() => {
                f.rows.is_some_and(|r| r >= th.large_rows)
                    || f.bytes.is_some_and(|b| b >= th.large_bytes)
            }
            _ => {
                if self.size_reported.insert(table.to_string()) {
                    self.add("table-size-unknown", false, &[("table", table)]);
                }
                true
            }
        }
    }

    /// Adds a finding of rule `id` (if enabled for this engine).
    pub fn add(&mut self, id: &str, large: bool, vars: &[(&str, &str)]) {
        if let Some(f) = self.ctx.rules.finding(id, self.engine, large, vars)
            && !self
                .findings
                .iter()
                .any(|g| g.rule == f.rule && g.reason == f.reason)
        {
            self.findings.push(f);
        }
    }

    /// Records a lock; the strongest one on an existing table is the statement's lock.
    pub fn take_lock(&mut self, table: &str, mode: &str, blocks: Blocks) {
        let blocks = if self.exists(table) {
            blocks
        } else {
            Blocks::Nothing
        };
        if self.lock.table.is_none() || blocks > self.lock.blocks || (self.lock.mode == "none") {
            if let Some(prev) = self.lock.table.take()
                && prev != table
            {
                self.lock.other_locks.push(OtherLock {
                    table: prev,
                    mode: self.lock.mode.clone(),
                    blocks: self.lock.blocks,
                });
            }
            self.lock.mode = mode.to_string();
            self.lock.blocks = blocks;
            self.lock.table = Some(table.to_string());
        } else if self.lock.table.as_deref() != Some(table)
            && !self.lock.other_locks.iter().any(|o| o.table == table)
        {
            self.lock.other_locks.push(OtherLock {
                table: table.to_string(),
                mode: mode.to_string(),
                blocks,
            });
        }
    }

    /// Records a lock on another table (FK parent) without making it the main lock.
    pub fn other_lock(&mut self, table: &str, mode: &str, blocks: Blocks) {
        let blocks = if self.exists(table) {
            blocks
        } else {
            Blocks::Nothing
        };
        if !self.lock.other_locks.iter().any(|o| o.table == table)
            && self.lock.table.as_deref() != Some(table)
        {
            self.lock.other_locks.push(OtherLock {
                table: table.to_string(),
                mode: mode.to_string(),
                blocks,
            });
        }
    }

    /// Records work done on the statement's table; `blocking` = under a lock that blocks traffic.
    pub fn work(&mut self, kind: WorkKind, blocking: bool) {
        self.work.push((kind, blocking));
        if kind == WorkKind::Rewrite {
            self.rewrites = true;
        }
    }
}

/// Classifies migrations into a plan.
pub fn classify(migrations: &[Migration], ctx: &Context) -> Plan {
    let mut created: HashSet<String> = HashSet::new();
    let mut plan_indexes: HashMap<String, Vec<Vec<String>>> = HashMap::new();
    let mut domains: HashSet<String> = HashSet::new();
    let mut fulltext: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    // Parse in batches: all cores busy, and the parse results of only one batch
    // held at a time.
    const BATCH_STATEMENTS: usize = 8192;
    let mut start = 0;
    while start < migrations.len() {
        let mut end = start;
        let mut n = 0;
        while end < migrations.len() && (end == start || n < BATCH_STATEMENTS) {
            n += migrations[end].statements.len();
            end += 1;
        }
        let batch = &migrations[start..end];
        for (m, parsed) in batch.iter().zip(analyze_batch(batch)) {
            let mut state = PlanState {
                created: &mut created,
                plan_indexes: &mut plan_indexes,
                checked_domains: &mut domains,
                fulltext: &mut fulltext,
            };
            out.push(classify_migration(m, ctx, &mut state, parsed));
        }
        start = end;
    }
    let risk = out.iter().map(|m| m.risk).max().unwrap_or(Risk::Low);
    let version = if migrations.iter().all(|m| m.engine == Engine::Mysql) && !migrations.is_empty()
    {
        ctx.mysql_version
    } else {
        ctx.pg_version
    };
    Plan {
        format_version: PLAN_FORMAT_VERSION,
        plan_digest: plan_digest(migrations, &ctx.rules.digest),
        rules_digest: ctx.rules.digest.clone(),
        engine_version: version.to_string(),
        risk,
        migrations: out,
        history: None,
    }
}

/// SHA-256 over the ordered (version, checksum) pairs, what decides how each
/// runs (engine, source format, executor directive) and the rules digest:
/// switching any of them after approval voids the approval.
pub fn plan_digest(migrations: &[Migration], rules_digest: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for m in migrations {
        h.update(m.version.as_bytes());
        h.update([0]);
        h.update(m.checksum.as_bytes());
        h.update([0]);
        h.update(m.engine.to_string().as_bytes());
        h.update([0]);
        h.update(m.format.as_str().as_bytes());
        h.update([0]);
        h.update(m.directives.executor.as_deref().unwrap_or("-").as_bytes());
        h.update([b'\n']);
    }
    h.update(b"rules:");
    h.update(rules_digest.as_bytes());
    hex::encode(h.finalize())
}

/// What earlier statements of the plan established, for the later ones.
struct PlanState<'s> {
    /// Tables created in the plan and still empty (nobody uses them yet).
    created: &'s mut HashSet<String>,
    plan_indexes: &'s mut HashMap<String, Vec<Vec<String>>>,
    checked_domains: &'s mut HashSet<String>,
    fulltext: &'s mut HashSet<String>,
}

fn classify_migration(
    m: &Migration,
    ctx: &Context,
    st: &mut PlanState,
    parsed: Vec<Analysis>,
) -> MigrationVerdict {
    let mut statements = Vec::new();
    let mut analyses: Vec<Analysis> = Vec::new();
    let mut facts: Vec<txn::StmtFacts> = Vec::new();
    // MySQL user variables holding SQL text, for PREPARE … FROM @var.
    let mut vars: HashMap<String, Vec<String>> = HashMap::new();
    for ((index, raw), analysis) in m.statements.iter().enumerate().zip(parsed) {
        if let Op::SetUserVar { name, embedded } = &analysis.op {
            vars.insert(name.to_ascii_lowercase(), embedded.clone());
        }
        let mut ev = Eval::new(
            ctx,
            m.engine,
            &raw.sql,
            st.created,
            st.plan_indexes,
            st.checked_domains,
            st.fulltext,
        );
        evaluate(&mut ev, &analysis, &vars);
        triggers_on_target(&mut ev, m, &analysis.op);
        lock_queue(&mut ev);
        // Size-scaled rules are moot on a table this plan creates: nobody uses it yet.
        let main_table = ev
            .lock
            .table
            .clone()
            .or_else(|| analysis.op.table().map(str::to_string));
        let existing_table = main_table.as_ref().is_some_and(|t| ev.exists(t));
        if let Some(t) = &main_table
            && !ev.exists(t)
        {
            ev.findings
                .retain(|f| !ctx.rules.rules.get(&f.rule).is_some_and(|r| r.scales));
        }
        let risk = ev
            .findings
            .iter()
            .map(|f| f.risk)
            .max()
            .unwrap_or(Risk::Low);
        let est = estimate::estimate(&ev, &analysis.op);
        facts.push(txn::StmtFacts {
            work: ev.work.clone(),
            existing_table,
        });
        // Secrets leave neither in the statement nor in text derived from it.
        let (sql, secrets) = redact_with_secrets(&raw.sql);
        if !secrets.is_empty() {
            for f in &mut ev.findings {
                f.reason = scrub(&f.reason, &secrets);
                f.safe_alternative = f.safe_alternative.as_ref().map(|a| scrub(a, &secrets));
            }
        }
        statements.push(StatementVerdict {
            index,
            line: raw.line,
            sql,
            risk,
            lock: ev.lock,
            rewrites_table: ev.rewrites,
            estimate: est,
            findings: ev.findings,
        });
        remember(st, &analysis.op);
        analyses.push(analysis);
    }
    let findings = txn::check(m, &analyses, &statements, &facts, ctx);
    // Declared backfills show as the batched UPDATEs they run (their line
    // says where). After the file's statements: a statement's index stays
    // its index in the migration (`cutover verify` pairs them by it).
    for b in &m.directives.backfills {
        let mut v = backfill::verdict(b, m, ctx, st);
        v.index = statements.len();
        statements.push(v);
    }
    let risk = statements
        .iter()
        .map(|s| s.risk)
        .chain(findings.iter().map(|f| f.risk))
        .max()
        .unwrap_or(Risk::Low);
    MigrationVerdict {
        version: m.version.clone(),
        description: m.description.clone(),
        path: m.path.display().to_string(),
        checksum: m.checksum.clone(),
        engine: m.engine,
        format: m.format.as_str().to_string(),
        executor: m.directives.executor.clone(),
        risk,
        findings,
        statements,
    }
}

/// Records what a statement establishes for the statements after it.
fn remember(st: &mut PlanState, op: &Op) {
    match op {
        // A new, empty table: nobody uses it yet. One created from a query is
        // filled: its size is unknown, like any existing table's.
        Op::CreateTable {
            table, as_select, ..
        } => {
            if *as_select {
                st.created.remove(table);
            } else {
                st.created.insert(table.clone());
            }
        }
        // INSERT … SELECT fills it with an unknown number of rows.
        Op::Insert {
            table,
            from_select: true,
        } => {
            st.created.remove(table);
        }
        Op::CreateDomain { name, check: true } | Op::AlterDomainAddConstraint { name } => {
            st.checked_domains.insert(name.to_ascii_lowercase());
        }
        _ => {}
    }
    if adds_fulltext(op) {
        let (Op::CreateIndex { table, .. } | Op::AlterTable { table, .. }) = op else {
            unreachable!("adds_fulltext is true only for these")
        };
        st.fulltext.insert(table.clone());
    }
    for (table, cols) in index_keys(op) {
        st.plan_indexes.entry(table).or_default().push(cols);
    }
}

/// True when the statement adds a FULLTEXT index.
pub(crate) fn adds_fulltext(op: &Op) -> bool {
    use crate::sql::ops::{Action, ConstraintKind, IndexKind};
    match op {
        Op::CreateIndex { kind, .. } => *kind == IndexKind::Fulltext,
        Op::AlterTable { actions, .. } => actions.iter().any(|a| {
            matches!(
                a,
                Action::AddConstraint {
                    kind: ConstraintKind::Index(IndexKind::Fulltext),
                    ..
                }
            )
        }),
        _ => false,
    }
}

/// Index key columns a statement creates (CREATE INDEX, ADD INDEX/UNIQUE/PRIMARY KEY).
fn index_keys(op: &Op) -> Vec<(String, Vec<String>)> {
    use crate::sql::ops::{Action, ConstraintKind};
    match op {
        Op::CreateIndex { table, columns, .. } => vec![(table.clone(), columns.clone())],
        Op::AlterTable { table, actions, .. } => {
            actions
                .iter()
                .filter_map(|a| match a {
                    Action::AddConstraint {
                        kind:
                            ConstraintKind::Unique
                            | ConstraintKind::PrimaryKey
                            | ConstraintKind::Index(_),
                        columns,
                        ..
                    } => Some((table.clone(), columns.clone())),
                    _ => None,
                })
                .collect()
        }
        _ => vec![],
    }
}

/// gh-ost refuses a table with triggers unless `--include-triggers`; pt-osc drops
/// them unless `--preserve-triggers`.
fn triggers_on_target(ev: &mut Eval, m: &Migration, op: &Op) {
    let Some(exec @ ("gh-ost" | "pt-osc")) = m.directives.executor.as_deref() else {
        return;
    };
    let Op::AlterTable { table, .. } = op else {
        return;
    };
    if ev.ctx.catalog.lookup(table).is_some_and(|f| f.has_triggers) {
        let flag = if exec == "gh-ost" {
            "--include-triggers"
        } else {
            "--preserve-triggers"
        };
        ev.add(
            "triggers-on-target",
            false,
            &[("table", table), ("detail", exec), ("name", flag)],
        );
    }
}

/// Parses the statements of several migrations on every core (classification
/// itself is sequential: it depends on earlier statements). Returns one vector
/// of analyses per migration.
fn analyze_batch(ms: &[Migration]) -> Vec<Vec<Analysis>> {
    // Chunks of statements, so one large migration is spread over the cores too.
    const CHUNK: usize = 64;
    let mut chunks: Vec<(usize, &[crate::sql::split::RawStatement])> = Vec::new();
    for (i, m) in ms.iter().enumerate() {
        for part in m.statements.chunks(CHUNK) {
            chunks.push((i, part));
        }
    }
    let results = crate::sql::par::map(
        &chunks,
        |(i, part)| {
            let e = ms[*i].engine;
            part.iter().map(|s| analyze(&s.sql, e)).collect::<Vec<_>>()
        },
        // A crashed parser must not drop statements: they become unanalyzable (high).
        |(_, part)| {
            part.iter()
                .map(|_| Analysis {
                    op: Op::Unanalyzable {
                        message: "the SQL parser crashed on this statement".into(),
                    },
                    parsed_by: crate::sql::ops::ParsedBy::Fallback,
                    parse_error: None,
                })
                .collect()
        },
    );
    let mut out: Vec<Vec<Analysis>> = ms
        .iter()
        .map(|m| Vec::with_capacity(m.statements.len()))
        .collect();
    for ((i, _), r) in chunks.iter().zip(results) {
        out[*i].extend(r);
    }
    out
}

/// Runs the rule families on one analyzed statement.
fn evaluate(ev: &mut Eval, a: &Analysis, vars: &HashMap<String, Vec<String>>) {
    match &a.op {
        Op::Unanalyzable { message } => {
            let detail = match &a.parse_error {
                Some(e) if e != message => format!("{message}; parser: {e}"),
                _ => message.clone(),
            };
            ev.add("unanalyzable-sql", true, &[("detail", &detail)]);
            worst_case(ev);
        }
        Op::Prepare { var, sql } => {
            let texts: Vec<String> = match (var, sql) {
                (_, Some(s)) => vec![s.clone()],
                (Some(v), None) => vars
                    .get(&v.to_ascii_lowercase())
                    .cloned()
                    .unwrap_or_default(),
                _ => vec![],
            };
            if texts.is_empty() {
                ev.add(
                    "dynamic-sql",
                    true,
                    &[("detail", "PREPARE from a variable whose SQL is not known")],
                );
                worst_case(ev);
            }
            // IF(cond, 'ALTER …', 'SELECT 1'): every alternative is classified; the worst wins.
            for t in texts {
                let inner = analyze(&t, ev.engine);
                evaluate(ev, &inner, vars);
            }
        }
        Op::OpaqueCode(what) => {
            ev.add("dynamic-sql", true, &[("detail", what)]);
            worst_case(ev);
        }
        op => {
            if let Op::AlterTable { .. } = op {
                match ev.engine {
                    Engine::Postgres => alter_pg::evaluate(ev, op),
                    Engine::Mysql => alter_mysql::evaluate(ev, op),
                }
            } else {
                statements::evaluate(ev, op);
            }
        }
    }
}

/// A lock-taking statement on a table an old open transaction holds (seen live):
/// the statement would queue, and every later query behind it.
fn lock_queue(ev: &mut Eval) {
    let Some(table) = ev.lock.table.clone() else {
        return;
    };
    let takes_lock = match ev.engine {
        Engine::Postgres => ev.lock.blocks != Blocks::Nothing,
        // Every MySQL/MariaDB DDL takes an exclusive metadata lock at its edges.
        Engine::Mysql => !ev.lock.mode.contains("row") && ev.lock.mode != "none",
    };
    if !takes_lock || !ev.exists(&table) {
        return;
    }
    let min = ev.ctx.rules.thresholds.old_transaction_seconds;
    let old = ev.ctx.catalog.old_transactions_on(&table, min);
    if let Some(t) = old.iter().max_by_key(|t| t.age_seconds) {
        let detail = format!(
            "{} {} has been in a transaction for {} s ({}){}",
            if ev.engine == Engine::Postgres {
                "pid"
            } else {
                "connection"
            },
            t.id,
            t.age_seconds,
            if t.state.is_empty() {
                "state unknown"
            } else {
                &t.state
            },
            if t.table.is_none() {
                " and may hold locks on it (InnoDB does not say which tables)"
            } else {
                " holding a lock on the table"
            }
        );
        ev.add(
            "lock-queue-risk",
            false,
            &[("table", &table), ("detail", &detail)],
        );
    }
}

/// What cannot be understood reports the worst case.
pub(crate) fn worst_case(ev: &mut Eval) {
    let table = statements::guess_table(ev.sql).unwrap_or_else(|| "?".into());
    ev.lock.mode = "unknown".into();
    ev.lock.blocks = Blocks::ReadsAndWrites;
    ev.lock.table = Some(table);
    ev.rewrites = true;
    ev.work.push((WorkKind::Rewrite, true));
}

/// True for migrations whose tool wraps them in one transaction.
pub fn wraps_whole(m: &Migration) -> bool {
    m.tx == TxWrap::Whole
}
