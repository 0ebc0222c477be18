//! Statements other than ALTER TABLE, for both engines.

use super::locks::PgLock;
use super::{Eval, WorkKind};
use crate::model::{Blocks, Engine};
use crate::sql::ops::{IndexKind, Op};
use once_cell::sync::Lazy;
use regex::Regex;

/// Evaluates a non-ALTER statement.
pub fn evaluate(ev: &mut Eval, op: &Op) {
    let pg = ev.engine == Engine::Postgres;
    match op {
        Op::CreateTable {
            table,
            or_replace,
            references,
            ..
        } => {
            if *or_replace {
                ev.add("create-table-force", true, &[("table", table)]);
                ev.take_lock(
                    table,
                    if pg {
                        PgLock::AccessExclusive.name()
                    } else {
                        "MDL EXCLUSIVE"
                    },
                    Blocks::ReadsAndWrites,
                );
            } else {
                ev.take_lock(
                    table,
                    if pg {
                        PgLock::AccessExclusive.name()
                    } else {
                        "MDL EXCLUSIVE"
                    },
                    Blocks::Nothing,
                );
                // A new table is nobody's yet.
                ev.lock.blocks = Blocks::Nothing;
            }
            for r in references {
                if pg {
                    ev.other_lock(
                        r,
                        PgLock::ShareRowExclusive.name(),
                        PgLock::ShareRowExclusive.blocks(),
                    );
                }
            }
            ev.work(WorkKind::Meta, false);
        }
        Op::CreateIndex {
            table,
            unique,
            concurrently,
            kind,
            columns,
            ..
        } => {
            let large = ev.large(table);
            if pg {
                if *concurrently {
                    ev.take_lock(table, PgLock::ShareUpdateExclusive.name(), Blocks::Nothing);
                    ev.work(WorkKind::Build, false);
                } else {
                    let alt = add_concurrently(ev.sql, "INDEX");
                    ev.add(
                        "create-index-blocking",
                        large,
                        &[("table", table), ("alt_sql", &alt)],
                    );
                    ev.take_lock(table, PgLock::Share.name(), Blocks::Writes);
                    ev.work(WorkKind::Build, true);
                }
            } else if *kind == IndexKind::Normal {
                ev.add("mysql-add-secondary-index", large, &[("table", table)]);
                ev.take_lock(
                    table,
                    if ev.version.is_mariadb() {
                        "NOCOPY, LOCK=NONE"
                    } else {
                        "INPLACE, LOCK=NONE"
                    },
                    Blocks::Nothing,
                );
                ev.work(WorkKind::Build, false);
            } else {
                let what = if *kind == IndexKind::Fulltext {
                    "FULLTEXT"
                } else {
                    "SPATIAL"
                };
                ev.add(
                    "mysql-fulltext-spatial-index",
                    large,
                    &[("table", table), ("detail", what)],
                );
                ev.take_lock(table, "INPLACE, LOCK=SHARED", Blocks::Writes);
                // A table's first FULLTEXT index adds the hidden FTS_DOC_ID
                // column: InnoDB rebuilds the table (seen on MariaDB 10.11).
                if *kind == IndexKind::Fulltext && ev.exists(table) && !ev.has_fulltext(table) {
                    ev.work(WorkKind::Rewrite, true);
                } else {
                    ev.work(WorkKind::Build, true);
                }
            }
            if *concurrently {
                pg14_concurrent_bug(ev, "CREATE INDEX CONCURRENTLY");
            }
            if !*unique && columns.len() > 3 {
                ev.add(
                    "index-too-wide",
                    false,
                    &[("table", table), ("detail", &columns.len().to_string())],
                );
            }
            if *unique && ev.exists(table) {
                ev.add(
                    "unique-index-may-fail",
                    large,
                    &[("table", table), ("detail", &columns.join(", "))],
                );
            }
        }
        Op::DropIndex {
            names,
            table,
            concurrently,
            cascade,
            ..
        } => {
            let target = table
                .clone()
                .or_else(|| names.first().cloned())
                .unwrap_or_default();
            if pg {
                if *concurrently {
                    ev.take_lock(
                        &target,
                        PgLock::ShareUpdateExclusive.name(),
                        Blocks::Nothing,
                    );
                } else {
                    let alt = add_concurrently(ev.sql, "INDEX");
                    ev.add(
                        "drop-index-blocking",
                        false,
                        &[("table", &target), ("alt_sql", &alt)],
                    );
                    ev.take_lock(
                        &target,
                        PgLock::AccessExclusive.name(),
                        Blocks::ReadsAndWrites,
                    );
                }
                if *cascade {
                    ev.add("drop-cascade", true, &[("name", &target)]);
                }
            } else {
                ev.take_lock(
                    &target,
                    if ev.version.is_mariadb() {
                        "NOCOPY, LOCK=NONE"
                    } else {
                        "INPLACE, LOCK=NONE"
                    },
                    Blocks::Nothing,
                );
            }
            ev.work(WorkKind::Meta, false);
        }
        Op::DropTable {
            tables, cascade, ..
        } => destroy(ev, "drop-table", tables, *cascade),
        Op::DropSchema { names, cascade } => {
            let n = names.join(", ");
            ev.add(
                "drop-schema-or-database",
                true,
                &[("name", &n), ("detail", "SCHEMA/DATABASE")],
            );
            if *cascade {
                ev.add("drop-cascade", true, &[("name", &n)]);
            }
            ev.take_lock(
                &n,
                "AccessExclusiveLock (every object)",
                Blocks::ReadsAndWrites,
            );
        }
        Op::DropOther {
            kind,
            names,
            cascade,
        } => {
            if *cascade {
                ev.add("drop-cascade", true, &[("name", &names.join(", "))]);
            }
            if kind.contains("materialized") {
                for n in names {
                    ev.take_lock(n, PgLock::AccessExclusive.name(), Blocks::ReadsAndWrites);
                }
            }
        }
        Op::Truncate { tables, cascade } => destroy(ev, "truncate", tables, *cascade),
        Op::RenameTables { pairs } => {
            for (a, b) in pairs {
                ev.add("rename-table", false, &[("table", a), ("name", b)]);
                ev.take_lock(
                    a,
                    if pg {
                        PgLock::AccessExclusive.name()
                    } else {
                        "MDL EXCLUSIVE"
                    },
                    Blocks::ReadsAndWrites,
                );
            }
            ev.work(WorkKind::Meta, true);
        }
        Op::Reindex {
            target,
            concurrently,
            ..
        } => {
            if *concurrently {
                pg14_concurrent_bug(ev, "REINDEX CONCURRENTLY");
                ev.take_lock(target, PgLock::ShareUpdateExclusive.name(), Blocks::Nothing);
                ev.work(WorkKind::Build, false);
            } else {
                let large = ev.large(target);
                let alt = add_concurrently(ev.sql, "REINDEX");
                ev.add(
                    "reindex-blocking",
                    large,
                    &[("table", target), ("alt_sql", &alt)],
                );
                // SHARE on the table, ACCESS EXCLUSIVE on each index: queries that use them wait.
                ev.take_lock(
                    target,
                    "ShareLock (table) + AccessExclusiveLock (each index)",
                    Blocks::ReadsAndWrites,
                );
                ev.work(WorkKind::Build, true);
                ev.rewrites = ev.exists(target);
            }
        }
        Op::Vacuum { full, table } => {
            let t = table.clone().unwrap_or_else(|| "(all tables)".into());
            if *full {
                let large = ev.large(&t);
                ev.add(
                    "pg-table-rewrite-maintenance",
                    large,
                    &[("table", &t), ("detail", "VACUUM FULL")],
                );
                ev.take_lock(&t, PgLock::AccessExclusive.name(), Blocks::ReadsAndWrites);
                ev.work(WorkKind::Rewrite, true);
            } else {
                ev.add("vacuum-analyze", false, &[("detail", "VACUUM")]);
                ev.take_lock(&t, PgLock::ShareUpdateExclusive.name(), Blocks::Nothing);
            }
        }
        Op::Cluster { table } => {
            let t = table.clone().unwrap_or_else(|| "(clustered tables)".into());
            let large = ev.large(&t);
            ev.add(
                "pg-table-rewrite-maintenance",
                large,
                &[("table", &t), ("detail", "CLUSTER")],
            );
            ev.take_lock(&t, PgLock::AccessExclusive.name(), Blocks::ReadsAndWrites);
            ev.work(WorkKind::Rewrite, true);
        }
        Op::Optimize { table } => {
            let large = ev.large(table);
            ev.add(
                "mysql-table-rebuild",
                large,
                &[("table", table), ("detail", "OPTIMIZE TABLE")],
            );
            ev.take_lock(table, "INPLACE, LOCK=NONE", Blocks::Nothing);
            ev.work(WorkKind::Rewrite, false);
        }
        Op::RefreshMatView { name, concurrently } => {
            if *concurrently {
                ev.take_lock(name, PgLock::Exclusive.name(), Blocks::Nothing);
                ev.work(WorkKind::Rewrite, false);
            } else {
                let large = ev.large(name);
                ev.add("refresh-matview-blocking", large, &[("table", name)]);
                ev.take_lock(name, PgLock::AccessExclusive.name(), Blocks::ReadsAndWrites);
                ev.work(WorkKind::Rewrite, true);
            }
        }
        Op::CreateTrigger { table } => {
            ev.add(
                "create-or-drop-trigger",
                false,
                &[("table", table), ("detail", "CREATE TRIGGER")],
            );
            ev.take_lock(
                table,
                if pg {
                    PgLock::ShareRowExclusive.name()
                } else {
                    "MDL EXCLUSIVE"
                },
                Blocks::Writes,
            );
            ev.work(WorkKind::Meta, true);
        }
        Op::DropTrigger { table } => {
            let t = table.clone().unwrap_or_default();
            ev.add(
                "create-or-drop-trigger",
                false,
                &[("table", &t), ("detail", "DROP TRIGGER")],
            );
            ev.take_lock(
                &t,
                if pg {
                    PgLock::AccessExclusive.name()
                } else {
                    "MDL EXCLUSIVE"
                },
                Blocks::ReadsAndWrites,
            );
            ev.work(WorkKind::Meta, true);
        }
        Op::AlterTypeRenameValue { name } => ev.add("pg-enum-rename", false, &[("name", name)]),
        Op::RenameSchema { name } => ev.add("rename-schema", false, &[("name", name)]),
        Op::CreateRule {
            table,
            event,
            instead,
        } => {
            // ON SELECT … DO INSTEAD is how views are built; on writes it replaces them.
            if *instead && !event.eq_ignore_ascii_case("SELECT") {
                ev.add(
                    "create-rule-instead",
                    true,
                    &[("table", table), ("detail", event)],
                );
            }
            ev.take_lock(
                table,
                PgLock::AccessExclusive.name(),
                Blocks::ReadsAndWrites,
            );
            ev.work(WorkKind::Meta, true);
        }
        Op::DropOwned { roles } => {
            let n = roles.join(", ");
            ev.add("drop-owned", true, &[("name", &n)]);
            ev.take_lock(
                &format!("(objects owned by {n})"),
                PgLock::AccessExclusive.name(),
                Blocks::ReadsAndWrites,
            );
            ev.work(WorkKind::Meta, true);
        }
        Op::AlterDomainAddConstraint { .. } => {
            ev.add(
                "add-column-constrained-domain",
                true,
                &[("detail", "ALTER DOMAIN … ADD CONSTRAINT")],
            );
        }
        Op::Update { table, has_where } | Op::Delete { table, has_where } => {
            let what = if matches!(op, Op::Update { .. }) {
                "UPDATE"
            } else {
                "DELETE"
            };
            if *has_where {
                ev.take_lock(
                    table,
                    if pg {
                        PgLock::RowExclusive.name()
                    } else {
                        "row locks"
                    },
                    Blocks::Nothing,
                );
            } else {
                ev.add(
                    "dml-without-where",
                    true,
                    &[("table", table), ("detail", what)],
                );
                ev.take_lock(
                    table,
                    if pg {
                        "RowExclusiveLock + every row"
                    } else {
                        "row locks on every row"
                    },
                    Blocks::Writes,
                );
            }
            ev.work(WorkKind::Dml, !has_where);
        }
        Op::Insert { table, from_select } => {
            if *from_select {
                let large = ev.large(table);
                ev.add("insert-select", large, &[("table", table)]);
                ev.work(WorkKind::Dml, false);
            }
            ev.take_lock(
                table,
                if pg {
                    PgLock::RowExclusive.name()
                } else {
                    "row locks"
                },
                Blocks::Nothing,
            );
        }
        Op::LockTable { mode, .. } => {
            ev.add("lock-table", false, &[("detail", mode)]);
            let t = guess_table(ev.sql).unwrap_or_default();
            match explicit_lock_mode(ev.sql, pg) {
                Some(l) => ev.take_lock(&t, l.name(), l.blocks()),
                None => ev.take_lock(&t, mode, Blocks::ReadsAndWrites),
            }
        }
        _ => {}
    }
}

/// The lock a PostgreSQL `LOCK TABLE … IN <mode> MODE` asks for (ACCESS EXCLUSIVE
/// without a mode clause); None for MySQL or a mode not understood (then the
/// worst is assumed).
fn explicit_lock_mode(sql: &str, pg: bool) -> Option<PgLock> {
    if !pg {
        return None;
    }
    let words: Vec<String> = sql
        .split_whitespace()
        .map(|w| w.trim_end_matches(';').to_ascii_uppercase())
        .collect();
    let Some(at) = words.iter().position(|w| w == "IN") else {
        return Some(PgLock::AccessExclusive);
    };
    let end = words.iter().rposition(|w| w == "MODE")?;
    let mode = words.get(at + 1..end)?.join(" ");
    Some(match mode.as_str() {
        "ACCESS SHARE" => PgLock::AccessShare,
        "ROW SHARE" => PgLock::RowShare,
        "ROW EXCLUSIVE" => PgLock::RowExclusive,
        "SHARE UPDATE EXCLUSIVE" => PgLock::ShareUpdateExclusive,
        "SHARE" => PgLock::Share,
        "SHARE ROW EXCLUSIVE" => PgLock::ShareRowExclusive,
        "EXCLUSIVE" => PgLock::Exclusive,
        "ACCESS EXCLUSIVE" => PgLock::AccessExclusive,
        _ => return None,
    })
}

/// PostgreSQL 14.0–14.3 could corrupt indexes built concurrently (fixed in 14.4).
/// An unknown minor release (`postgres-14`) is flagged too, saying so.
fn pg14_concurrent_bug(ev: &mut Eval, what: &str) {
    if let crate::model::EngineVersion::Postgres { major: 14, minor } = ev.version
        && minor < 4
    {
        let note = if minor == 0 {
            " (the minor release is unknown: pass --target or --engine-version postgres-14.N)"
        } else {
            ""
        };
        ev.add(
            "concurrent-index-pg14-bug",
            false,
            &[("detail", what), ("name", note)],
        );
    }
}

/// DROP TABLE and TRUNCATE: data gone, and an exclusive lock on each table.
fn destroy(ev: &mut Eval, rule: &str, tables: &[String], cascade: bool) {
    for t in tables {
        ev.add(rule, true, &[("table", t)]);
        ev.take_lock(t, exclusive(ev.engine), Blocks::ReadsAndWrites);
    }
    if rule == "drop-table" && ev.engine == Engine::Postgres {
        let parents: Vec<(String, String)> = tables
            .iter()
            .filter_map(|t| ev.ctx.catalog.lookup(t).map(|f| (t, f)))
            .flat_map(|(t, f)| {
                f.foreign_keys
                    .iter()
                    .map(|fk| (t.clone(), fk.references.clone()))
            })
            .collect();
        for (child, parent) in parents {
            super::alter_pg::fk_parent_lock(ev, &child, &parent);
        }
    }
    if cascade {
        ev.add("drop-cascade", true, &[("name", &tables.join(", "))]);
    }
    ev.work(WorkKind::Meta, true);
}

/// The engine's name for the lock that blocks everything on a table.
fn exclusive(engine: Engine) -> &'static str {
    match engine {
        Engine::Postgres => PgLock::AccessExclusive.name(),
        Engine::Mysql => "MDL EXCLUSIVE",
    }
}

/// Inserts CONCURRENTLY after the keyword (`CREATE [UNIQUE] INDEX`, `DROP INDEX`, `REINDEX TABLE|INDEX`).
fn add_concurrently(sql: &str, keyword: &str) -> String {
    static IDX: Lazy<Regex> = Lazy::new(|| {
        Regex::new(r"(?i)^(\s*(?:create\s+(?:unique\s+)?|drop\s+)index)\b").expect("static regex")
    });
    static RE: Lazy<Regex> = Lazy::new(|| {
        Regex::new(r"(?i)^(\s*reindex\s+(?:\([^)]*\)\s*)?(?:table|index|schema|database|system))\b")
            .expect("static regex")
    });
    let re = if keyword == "INDEX" { &*IDX } else { &*RE };
    let s = re.replace(sql.trim(), "$1 CONCURRENTLY").into_owned();
    format!("{};", s.trim_end_matches(';'))
}

/// A best-effort table name from the text, for statements nothing else understood.
pub fn guess_table(sql: &str) -> Option<String> {
    static RE: Lazy<Regex> = Lazy::new(|| {
        Regex::new(r#"(?i)\b(?:table|into|update|from|on)\s+(?:if\s+(?:not\s+)?exists\s+)?(?:only\s+)?([A-Za-z_`"][\w`".$]*)"#).expect("static regex")
    });
    RE.captures(sql).map(|c| c[1].replace(['`', '"'], ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrently_is_inserted() {
        assert_eq!(
            add_concurrently("CREATE UNIQUE INDEX i ON t (a)", "INDEX"),
            "CREATE UNIQUE INDEX CONCURRENTLY i ON t (a);"
        );
        assert_eq!(
            add_concurrently("drop index i;", "INDEX"),
            "drop index CONCURRENTLY i;"
        );
        assert_eq!(
            add_concurrently("REINDEX TABLE t", "REINDEX"),
            "REINDEX TABLE CONCURRENTLY t;"
        );
    }

    #[test]
    fn guesses_tables() {
        assert_eq!(
            guess_table("ALTER TABLE `x`.`y` FROB").as_deref(),
            Some("x.y")
        );
    }
}
