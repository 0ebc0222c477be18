//! Transaction-level checks: they look across the statements of one migration, with
//! the transaction boundaries its tool really uses, and count toward the migration.

use super::{Context, WorkKind};
use crate::migrate::{Migration, TxWrap};
use crate::model::{Blocks, Engine, Finding, StatementVerdict};
use crate::sql::ops::{Action, Analysis, Op};

/// Per-statement facts the checks need besides the verdict.
pub struct StmtFacts {
    pub work: Vec<(WorkKind, bool)>,
    /// The statement's table existed before the plan.
    pub existing_table: bool,
}

/// True for statements PostgreSQL refuses inside a transaction block (engines.md §1.3).
pub fn non_transactional(op: &Op) -> bool {
    match op {
        Op::CreateIndex {
            concurrently: true, ..
        }
        | Op::DropIndex {
            concurrently: true, ..
        }
        | Op::Reindex {
            concurrently: true, ..
        } => true,
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

/// Where each statement runs: `Some(n)` = inside transaction n, `None` = autocommit.
pub fn transaction_groups(m: &Migration, ops: &[&Op]) -> Vec<Option<usize>> {
    let pg = m.engine == Engine::Postgres;
    // Flyway runs a PostgreSQL migration outside a transaction when it holds a
    // statement that cannot run in one; the other tools wrap regardless (and fail).
    let flyway_escape = m.format == crate::migrate::SourceFormat::Flyway
        && ops.iter().any(|o| non_transactional(o));
    let whole = m.tx == TxWrap::Whole && pg && !flyway_escape;
    let mut groups = Vec::with_capacity(ops.len());
    let mut next = 0usize;
    let mut current: Option<usize> = if whole { Some(0) } else { None };
    if whole {
        next = 1;
    }
    for op in ops {
        match op {
            Op::Begin if current.is_none() => {
                current = Some(next);
                next += 1;
                groups.push(current);
                continue;
            }
            Op::Commit | Op::Rollback if !whole => {
                groups.push(current);
                current = None;
                continue;
            }
            _ => {}
        }
        // MySQL/MariaDB DDL commits implicitly.
        if !pg && is_ddl(op) {
            current = None;
        }
        groups.push(current);
    }
    groups
}

/// CREATE/DROP of a table or index without `IF [NOT] EXISTS`: (statement, name, "NOT " or "").
fn unguarded(op: &Op) -> Option<(&'static str, String, &'static str)> {
    match op {
        Op::CreateTable {
            table,
            if_not_exists: false,
            or_replace: false,
            temporary: false,
            ..
        } => Some(("CREATE TABLE", table.clone(), "NOT ")),
        Op::CreateIndex {
            name: Some(name),
            if_not_exists: false,
            ..
        } => Some(("CREATE INDEX", name.clone(), "NOT ")),
        Op::DropTable {
            tables,
            if_exists: false,
            ..
        } => Some(("DROP TABLE", tables.join(", "), "")),
        Op::DropIndex {
            names,
            if_exists: false,
            ..
        } => Some(("DROP INDEX", names.join(", "), "")),
        _ => None,
    }
}

fn is_ddl(op: &Op) -> bool {
    matches!(
        op,
        Op::CreateTable { .. }
            | Op::CreateIndex { .. }
            | Op::DropIndex { .. }
            | Op::DropTable { .. }
            | Op::Truncate { .. }
            | Op::RenameTables { .. }
            | Op::AlterTable { .. }
            | Op::Optimize { .. }
            | Op::DropSchema { .. }
            | Op::DropOther { .. }
    )
}

/// Runs the transaction-level checks of one migration.
pub fn check(
    m: &Migration,
    analyses: &[Analysis],
    verdicts: &[StatementVerdict],
    facts: &[StmtFacts],
    ctx: &Context,
) -> Vec<Finding> {
    let rules = ctx.rules;
    let e = m.engine;
    let ops: Vec<&Op> = analyses.iter().map(|a| &a.op).collect();
    let groups = transaction_groups(m, &ops);
    let mut out: Vec<Finding> = Vec::new();
    let mut push = |f: Option<Finding>| {
        if let Some(f) = f
            && !out.iter().any(|g| g.rule == f.rule && g.reason == f.reason)
        {
            out.push(f);
        }
    };
    let line = |i: usize| format!("line {}", verdicts[i].line);

    // CONCURRENTLY (and friends) inside a transaction fail.
    if e == Engine::Postgres {
        for (i, op) in ops.iter().enumerate() {
            if non_transactional(op) && groups[i].is_some() {
                push(rules.finding(
                    "concurrently-in-transaction",
                    e,
                    true,
                    &[("detail", &line(i))],
                ));
            }
        }
    }

    // CREATE/DROP without IF [NOT] EXISTS where a half-applied migration stays half-applied.
    let real = ops
        .iter()
        .filter(|o| !matches!(o, Op::Set { .. } | Op::Begin | Op::Commit | Op::Rollback))
        .count();
    let one_tx =
        groups.first().is_some_and(|g| g.is_some()) && groups.windows(2).all(|w| w[0] == w[1]);
    if real > 1 && !one_tx {
        for (i, op) in ops.iter().enumerate() {
            if let Some((what, name, not)) = unguarded(op) {
                push(rules.finding(
                    "non-idempotent-ddl",
                    e,
                    false,
                    &[
                        ("detail", what),
                        ("name", &name),
                        ("sql", not),
                        ("column", &line(i)),
                    ],
                ));
            }
        }
    }

    // Explicit transaction control.
    let whole = m.tx == TxWrap::Whole && e == Engine::Postgres;
    let mut open = false;
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Begin if whole => push(rules.finding("transaction-control", e, false, &[("detail", &format!("BEGIN at {} inside a migration its tool already runs in a transaction: its COMMIT ends the tool's transaction early", line(i)))])),
            Op::Begin if open => push(rules.finding("transaction-control", e, false, &[("detail", &format!("nested BEGIN at {}", line(i)))])),
            Op::Begin => open = true,
            Op::Commit | Op::Rollback => open = false,
            _ => {}
        }
    }
    if open && !whole {
        push(rules.finding(
            "transaction-control",
            e,
            false,
            &[(
                "detail",
                "BEGIN without COMMIT: the transaction stays open and its locks held",
            )],
        ));
    }

    // Lock timeouts, in statement order (a SET applies to what follows it).
    let mut timeout_set = false;
    for (i, op) in ops.iter().enumerate() {
        if let Op::Set { name, value } = op {
            let n = name.trim_start_matches("session.").to_ascii_lowercase();
            if n == "lock_timeout" || n == "lock_wait_timeout" {
                match timeout_seconds(value, e) {
                    Some(s) if s > 0.0 && s <= 60.0 => timeout_set = true,
                    Some(s) => {
                        timeout_set = s > 0.0;
                        push(rules.finding(
                            "lock-timeout-too-long",
                            e,
                            false,
                            &[("detail", &format!("{n} = {value}"))],
                        ));
                    }
                    None => timeout_set = true,
                }
            }
            continue;
        }
        let sql_upper = verdicts[i].sql.to_ascii_uppercase();
        let statement_wait =
            e == Engine::Mysql && (sql_upper.contains(" NOWAIT") || sql_upper.contains(" WAIT "));
        if lock_taking(op, &verdicts[i], &facts[i], e) && !timeout_set && !statement_wait {
            let alt = match e {
                Engine::Postgres => {
                    "SET lock_timeout = '5s';  -- before the statement (SET LOCAL inside a transaction); retry on timeout"
                }
                Engine::Mysql => {
                    "SET SESSION lock_wait_timeout = 5;  -- or ALTER TABLE … WAIT 5 (MariaDB)"
                }
            };
            push(rules.finding(
                "missing-lock-timeout",
                e,
                false,
                &[("detail", &line(i)), ("alt_sql", alt)],
            ));
            // One finding per migration is enough to act on.
            timeout_set = true;
        }
    }

    // A statement timeout bounds work that grows with a table.
    let timeout_set = ops.iter().any(|o| {
        matches!(o, Op::Set { name, .. } if ["statement_timeout", "max_statement_time", "max_execution_time"].contains(&name.trim_start_matches("session.")))
    });
    if !timeout_set
        && let Some(i) = (0..ops.len()).find(|&i| {
            facts[i].existing_table && facts[i].work.iter().any(|(k, _)| *k != WorkKind::Meta)
        })
    {
        push(rules.finding(
            "missing-statement-timeout",
            e,
            false,
            &[("detail", &line(i))],
        ));
    }

    // PostgreSQL cannot drop or reorder enum labels: a migration that drops and
    // re-creates the type (or moves columns to a new enum with USING) rewrites
    // every table that uses it, under ACCESS EXCLUSIVE.
    if e == Engine::Postgres {
        let created: Vec<(usize, &str)> = ops
            .iter()
            .enumerate()
            .filter_map(|(i, o)| match o {
                Op::CreateType {
                    name,
                    is_enum: true,
                } => Some((i, name.as_str())),
                _ => None,
            })
            .collect();
        for (i, op) in ops.iter().enumerate() {
            let hit = match op {
                Op::DropOther { kind, names, .. } if kind == "type" => names
                    .iter()
                    .find(|n| created.iter().any(|(j, c)| *j > i && c == n))
                    .map(|n| format!("type {n} is dropped and re-created")),
                Op::AlterTable { table, actions, .. } => actions.iter().find_map(|a| match a {
                    Action::AlterColumnType {
                        column,
                        new_type,
                        using: true,
                    } => created
                        .iter()
                        .find(|(j, c)| *j < i && new_type.eq_ignore_ascii_case(c))
                        .map(|(_, c)| format!("{table}.{column} moves to the new enum {c}")),
                    _ => None,
                }),
                _ => None,
            };
            if let Some(detail) = hit {
                push(rules.finding(
                    "enum-change-pg",
                    e,
                    true,
                    &[("detail", &detail), ("name", &line(i))],
                ));
            }
        }
    }

    // Several ALTERs of one table re-queue for its lock each time.
    let mut alters: std::collections::BTreeMap<&str, usize> = Default::default();
    for op in &ops {
        if let Op::AlterTable { table, .. } = op {
            *alters.entry(table.as_str()).or_default() += 1;
        }
    }
    for (table, n) in alters {
        if n > 1 {
            push(rules.finding(
                "multiple-alter-same-table",
                e,
                false,
                &[("table", table), ("detail", &n.to_string())],
            ));
        }
    }

    if e == Engine::Postgres {
        // Several lock-taking statements in one transaction: the first lock is held
        // while later work runs, or a second table is locked (lock chains).
        let mut by_group: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
        for (i, g) in groups.iter().enumerate() {
            if let Some(g) = g {
                by_group.entry(*g).or_default().push(i);
            }
        }
        for idx in by_group.values() {
            let mut first: Option<usize> = None;
            let mut later: Vec<usize> = Vec::new();
            for &i in idx {
                let taking = lock_taking(ops[i], &verdicts[i], &facts[i], e);
                let Some(f) = first else {
                    if taking {
                        first = Some(i);
                    }
                    continue;
                };
                let heavy = facts[i].work.iter().any(|(k, _)| *k != WorkKind::Meta);
                let other_table = verdicts[i].lock.table != verdicts[f].lock.table;
                if (taking && (heavy || other_table))
                    || (!taking && facts[i].work.iter().any(|(k, _)| *k == WorkKind::Dml))
                {
                    later.push(i);
                }
            }
            if let (Some(f), false) = (first, later.is_empty()) {
                let rest = later
                    .iter()
                    .map(|&i| verdicts[i].line.to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                push(rules.finding(
                    "statements-after-exclusive-lock",
                    e,
                    true,
                    &[(
                        "detail",
                        &format!(
                            "the lock taken at {} is held while lines {rest} run",
                            line(f)
                        ),
                    )],
                ));
            }
        }
        // NOT VALID and VALIDATE of the same constraint in one transaction.
        for (i, op) in ops.iter().enumerate() {
            let Op::AlterTable { actions, .. } = op else {
                continue;
            };
            for a in actions {
                let Action::ValidateConstraint { name } = a else {
                    continue;
                };
                let added_here = ops[..i].iter().enumerate().any(|(j, o)| {
                    groups[j].is_some()
                        && groups[j] == groups[i]
                        && matches!(o, Op::AlterTable { actions, .. } if actions.iter().any(|a| matches!(a, Action::AddConstraint { name: Some(n), not_valid: true, .. } if n == name)))
                });
                if added_here {
                    push(rules.finding("validate-in-same-transaction", e, true, &[("name", name)]));
                }
            }
        }
    } else {
        let ddl = ops.iter().filter(|o| is_ddl(o)).count();
        if ddl > 1 {
            push(rules.finding(
                "mysql-implicit-commit",
                e,
                false,
                &[("detail", &ddl.to_string())],
            ));
        }
    }
    out
}

/// A statement that takes a lock traffic can queue behind.
fn lock_taking(op: &Op, v: &StatementVerdict, f: &StmtFacts, e: Engine) -> bool {
    if !f.existing_table {
        return false;
    }
    match e {
        Engine::Postgres => v.lock.blocks != Blocks::Nothing,
        // Every MySQL/MariaDB DDL takes an exclusive metadata lock at its edges.
        Engine::Mysql => is_ddl(op) && !matches!(op, Op::CreateTable { .. }),
    }
}

/// `'5s'`, `5000` (ms on PostgreSQL), `'1min'`; MySQL values are seconds.
fn timeout_seconds(value: &str, e: Engine) -> Option<f64> {
    let v = value
        .trim()
        .trim_matches(['\'', '"'])
        .trim()
        .to_ascii_lowercase();
    let num: String = v
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let n: f64 = num.parse().ok()?;
    let unit = v[num.len()..].trim();
    Some(match (e, unit) {
        (Engine::Mysql, _) => n,
        (_, "") | (_, "ms") => n / 1000.0,
        (_, "s") => n,
        (_, "min") => n * 60.0,
        (_, "h") => n * 3600.0,
        (_, "us") => n / 1e6,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse() {
        assert_eq!(timeout_seconds("'5s'", Engine::Postgres), Some(5.0));
        assert_eq!(timeout_seconds("2000", Engine::Postgres), Some(2.0));
        assert_eq!(timeout_seconds("'1min'", Engine::Postgres), Some(60.0));
        assert_eq!(timeout_seconds("5", Engine::Mysql), Some(5.0));
    }
}
