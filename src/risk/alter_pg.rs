//! PostgreSQL ALTER TABLE: per sub-command lock, work and findings (engines.md §1.2).

use super::locks::PgLock;
use super::{Eval, WorkKind, worst_case};
use crate::sql::names::base_name;
use crate::sql::ops::{Action, ColumnSpec, ConstraintKind, DefaultKind, Op};

/// Evaluates an `Op::AlterTable` on PostgreSQL.
pub fn evaluate(ev: &mut Eval, op: &Op) {
    let Op::AlterTable { table, actions, .. } = op else {
        return;
    };
    let mut strongest = PgLock::AccessShare;
    let mut unknown = false;
    for a in actions {
        let (lock, kind) = action(ev, table, a, &mut unknown);
        strongest = strongest.max(lock);
        if let Some(k) = kind {
            ev.work(k, lock.blocks() != crate::model::Blocks::Nothing);
        }
    }
    if unknown {
        worst_case(ev);
        ev.lock.table = Some(table.clone());
        return;
    }
    ev.take_lock(table, strongest.name(), strongest.blocks());
}

fn action(
    ev: &mut Eval,
    table: &str,
    a: &Action,
    unknown: &mut bool,
) -> (PgLock, Option<WorkKind>) {
    use PgLock::*;
    let t = table;
    match a {
        Action::AddColumn(spec) => add_column(ev, t, spec),
        Action::DropColumn { names, cascade } => {
            for n in names {
                ev.add("drop-column", true, &[("table", t), ("column", n)]);
                ev.add("drop-column-reclaim", false, &[("table", t), ("column", n)]);
            }
            if *cascade {
                ev.add("drop-cascade", true, &[("name", t)]);
            }
            (AccessExclusive, Some(WorkKind::Meta))
        }
        Action::AlterColumnType {
            column, new_type, ..
        } => {
            column_type_fk_locks(ev, t, column);
            let old = ev
                .ctx
                .catalog
                .lookup(t)
                .and_then(|f| f.columns.get(column))
                .map(|c| c.data_type.clone());
            match old.as_deref().map(|o| pg_binary_coercible(o, new_type)) {
                Some(true) => {
                    let detail = format!(
                        "{new_type} (binary-coercible from {})",
                        old.unwrap_or_default()
                    );
                    ev.add(
                        "change-column-type-coercible",
                        false,
                        &[("table", t), ("column", column), ("detail", &detail)],
                    );
                    (AccessExclusive, Some(WorkKind::Meta))
                }
                known => {
                    let large = ev.large(t);
                    let detail = match known {
                        Some(_) => format!(
                            "{new_type} rewrites the table and rebuilds its indexes under ACCESS EXCLUSIVE"
                        ),
                        None => format!(
                            "{new_type} rewrites the table and its indexes under ACCESS EXCLUSIVE unless the change is binary-coercible (current type unknown: pass --target)"
                        ),
                    };
                    let alt = format!(
                        "Expand/contract: ALTER TABLE {t} ADD COLUMN {column}_new {new_type}; backfill in batches; switch readers and writers; drop {column}"
                    );
                    ev.add(
                        "change-column-type",
                        large,
                        &[
                            ("table", t),
                            ("column", column),
                            ("detail", &detail),
                            ("alt_sql", &alt),
                        ],
                    );
                    (AccessExclusive, Some(WorkKind::Rewrite))
                }
            }
        }
        Action::SetNotNull { column } => {
            let has_check = ev.version.pg_major().is_some_and(|v| v >= 12)
                && ev
                    .ctx
                    .catalog
                    .lookup(t)
                    .and_then(|f| f.columns.get(column))
                    .is_some_and(|c| c.valid_not_null_check);
            if has_check {
                ev.add("set-not-null", false, &[("table", t), ("column", column), ("detail", "is catalog-only here: a validated CHECK (col IS NOT NULL) exists (PostgreSQL 12+), but it takes ACCESS EXCLUSIVE briefly")]);
                (AccessExclusive, Some(WorkKind::Meta))
            } else {
                let large = ev.large(t);
                let c = format!("{}_{column}_not_null", base_name(t));
                let alt = format!(
                    "ALTER TABLE {t} ADD CONSTRAINT {c} CHECK ({column} IS NOT NULL) NOT VALID;\n-- backfill NULLs in batches, then in a later transaction:\nALTER TABLE {t} VALIDATE CONSTRAINT {c};\nALTER TABLE {t} ALTER COLUMN {column} SET NOT NULL;\nALTER TABLE {t} DROP CONSTRAINT {c};"
                );
                ev.add("set-not-null", large, &[("table", t), ("column", column), ("detail", "scans the whole table under ACCESS EXCLUSIVE: all reads and writes wait"), ("alt_sql", &alt)]);
                (AccessExclusive, Some(WorkKind::Scan))
            }
        }
        Action::DropNotNull { column } => {
            ev.add("drop-not-null", false, &[("table", t), ("column", column)]);
            (AccessExclusive, Some(WorkKind::Meta))
        }
        Action::SetDefault { column, .. } => {
            ev.add(
                "set-or-drop-default",
                false,
                &[("table", t), ("column", column), ("detail", "SET DEFAULT")],
            );
            (AccessExclusive, Some(WorkKind::Meta))
        }
        Action::DropDefault { column } => {
            ev.add(
                "set-or-drop-default",
                false,
                &[("table", t), ("column", column), ("detail", "DROP DEFAULT")],
            );
            (AccessExclusive, Some(WorkKind::Meta))
        }
        Action::AddConstraint {
            kind,
            name,
            not_valid,
            using_index,
            columns,
            ..
        } => add_constraint(
            ev,
            t,
            kind,
            name.as_deref(),
            *not_valid,
            *using_index,
            columns,
        ),
        Action::DropConstraint { name, cascade } => {
            ev.add("drop-constraint", false, &[("table", t), ("name", name)]);
            let parent = ev
                .ctx
                .catalog
                .lookup(t)
                .and_then(|f| f.foreign_key(name))
                .map(|fk| fk.references.clone());
            if let Some(parent) = parent {
                fk_parent_lock(ev, t, &parent);
            }
            if *cascade {
                ev.add("drop-cascade", true, &[("name", name)]);
            }
            (AccessExclusive, Some(WorkKind::Meta))
        }
        Action::ValidateConstraint { name } => {
            ev.add(
                "validate-constraint",
                false,
                &[("table", t), ("name", name)],
            );
            (ShareUpdateExclusive, Some(WorkKind::Scan))
        }
        Action::RenameColumn { from, .. } => {
            ev.add("rename-column", false, &[("table", t), ("column", from)]);
            (AccessExclusive, Some(WorkKind::Meta))
        }
        Action::RenameTo { to } => {
            ev.add("rename-table", false, &[("table", t), ("name", to)]);
            (AccessExclusive, Some(WorkKind::Meta))
        }
        Action::PgRewrite(what) => {
            let large = ev.large(t);
            ev.add(
                "pg-table-rewrite-maintenance",
                large,
                &[("table", t), ("detail", what)],
            );
            (AccessExclusive, Some(WorkKind::Rewrite))
        }
        Action::PgSetStorage => (ShareUpdateExclusive, Some(WorkKind::Meta)),
        Action::PgCatalogExclusive(_) => (AccessExclusive, Some(WorkKind::Meta)),
        Action::Trigger => {
            ev.add(
                "create-or-drop-trigger",
                false,
                &[("table", t), ("detail", "ENABLE/DISABLE TRIGGER")],
            );
            (ShareRowExclusive, Some(WorkKind::Meta))
        }
        Action::RowLevelSecurity
        | Action::Owner
        | Action::RenameIndex
        | Action::AlterConstraint { .. } => (AccessExclusive, Some(WorkKind::Meta)),
        Action::AttachPartition { partition } => {
            let large = ev.large(partition);
            ev.add(
                "partition-attach-scan",
                large,
                &[("table", t), ("name", partition)],
            );
            ev.other_lock(partition, AccessExclusive.name(), AccessExclusive.blocks());
            (ShareUpdateExclusive, Some(WorkKind::Scan))
        }
        Action::DetachPartition {
            partition,
            concurrently,
        } => {
            if *concurrently {
                (ShareUpdateExclusive, Some(WorkKind::Meta))
            } else {
                ev.add(
                    "partition-detach-blocking",
                    false,
                    &[("table", t), ("name", partition)],
                );
                ev.other_lock(partition, AccessExclusive.name(), AccessExclusive.blocks());
                (AccessExclusive, Some(WorkKind::Meta))
            }
        }
        other => {
            let text = match other {
                Action::Unknown(s) => s.clone(),
                o => format!("{o:?} (MySQL syntax on PostgreSQL)"),
            };
            ev.add(
                "unknown-alter-action",
                true,
                &[("table", t), ("detail", &text)],
            );
            *unknown = true;
            (AccessExclusive, Some(WorkKind::Rewrite))
        }
    }
}

fn add_column(ev: &mut Eval, t: &str, spec: &ColumnSpec) -> (PgLock, Option<WorkKind>) {
    use PgLock::*;
    let c = spec.name.as_str();
    let mut lock = AccessExclusive;
    let mut work = WorkKind::Meta;
    if spec.generated == Some(crate::sql::ops::Generated::Stored) {
        let large = ev.large(t);
        ev.add(
            "add-column-stored-generated",
            large,
            &[
                ("table", t),
                ("column", c),
                ("detail", "under ACCESS EXCLUSIVE"),
            ],
        );
        work = WorkKind::Rewrite;
    } else if spec.auto_increment {
        let large = ev.large(t);
        ev.add(
            "add-column-auto-increment",
            large,
            &[
                ("table", t),
                ("column", c),
                ("detail", "under ACCESS EXCLUSIVE"),
            ],
        );
        work = WorkKind::Rewrite;
    } else if let Some(DefaultKind::Volatile(f)) = &spec.default {
        let large = ev.large(t);
        let alt = format!(
            "ALTER TABLE {t} ADD COLUMN {c} {ty};\nALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT {f}();\n-- then backfill existing rows in batches",
            ty = spec.data_type
        );
        ev.add(
            "add-column-volatile-default",
            large,
            &[
                ("table", t),
                ("column", c),
                ("detail", &format!("{f}()")),
                ("alt_sql", &alt),
            ],
        );
        work = WorkKind::Rewrite;
    } else if ev
        .checked_domains
        .contains(&spec.data_type.to_ascii_lowercase())
    {
        // A domain with constraints makes PostgreSQL check every row: a rewrite.
        let large = ev.large(t);
        ev.add(
            "add-column-domain-check",
            large,
            &[
                ("table", t),
                ("column", c),
                ("detail", &spec.data_type.to_ascii_lowercase()),
            ],
        );
        work = WorkKind::Rewrite;
    } else if spec.default.is_some() && ev.version.pg_major().is_some_and(|v| v < 11) {
        let large = ev.large(t);
        ev.add(
            "add-column-volatile-default",
            large,
            &[
                ("table", t),
                ("column", c),
                ("detail", "any default before PostgreSQL 11"),
                (
                    "alt_sql",
                    "Add the column without a default, SET DEFAULT, then backfill in batches",
                ),
            ],
        );
        work = WorkKind::Rewrite;
    }
    if let Some(parent) = &spec.references {
        let large = ev.large(t);
        ev.add(
            "add-column-inline-constraint",
            large,
            &[
                ("table", t),
                ("column", c),
                ("detail", &format!("REFERENCES {parent}")),
            ],
        );
        ev.other_lock(parent, ShareRowExclusive.name(), ShareRowExclusive.blocks());
        if work == WorkKind::Meta {
            work = WorkKind::Scan;
        }
    }
    if spec.unique || spec.primary_key {
        let large = ev.large(t);
        let what = if spec.primary_key {
            "PRIMARY KEY"
        } else {
            "UNIQUE"
        };
        ev.add(
            "add-column-inline-constraint",
            large,
            &[("table", t), ("column", c), ("detail", what)],
        );
        if work == WorkKind::Meta {
            work = WorkKind::Build;
        }
    }
    if spec.check {
        let large = ev.large(t);
        let alt = format!(
            "ALTER TABLE {t} ADD COLUMN {c} {}; then ADD CONSTRAINT … CHECK (…) NOT VALID and VALIDATE it in a later transaction",
            spec.data_type
        );
        ev.add(
            "add-check-validated",
            large,
            &[
                ("table", t),
                ("detail", "ACCESS EXCLUSIVE"),
                ("alt_sql", &alt),
            ],
        );
    }
    let has_default = spec.default.is_some() || spec.auto_increment || spec.generated.is_some();
    if spec.not_null && !has_default && !spec.primary_key && ev.exists(t) {
        ev.add(
            "not-null-column-without-default",
            false,
            &[
                ("table", t),
                ("column", c),
                ("detail", "PostgreSQL fails on a non-empty table"),
            ],
        );
    }
    if spec.data_type == "JSON" {
        ev.add("add-column-json", false, &[("column", c)]);
    }
    if work == WorkKind::Meta
        && ev
            .findings
            .iter()
            .all(|f| f.risk == crate::model::Risk::Low)
    {
        let detail = match &spec.default {
            Some(DefaultKind::Stable) => {
                "stable default evaluated once (PostgreSQL 11+ fast default)"
            }
            Some(_) => "constant default stored in the catalog (PostgreSQL 11+ fast default)",
            None => "nullable, no default",
        };
        ev.add(
            "add-column",
            false,
            &[("table", t), ("column", c), ("detail", detail)],
        );
    }
    if spec.generated.is_some() && work == WorkKind::Meta {
        lock = AccessExclusive;
    }
    (lock, Some(work))
}

/// Dropping an FK (or its table) takes ACCESS EXCLUSIVE on the referenced table too.
/// Changing a column's type drops and re-creates every foreign key that uses it,
/// on either side (seen on PostgreSQL 15): ACCESS EXCLUSIVE on the other table
/// too, for as long as the statement runs, and the key is validated again.
fn column_type_fk_locks(ev: &mut Eval, t: &str, column: &str) {
    let catalog = &ev.ctx.catalog;
    let Some(facts) = catalog.lookup(t) else {
        return;
    };
    let mut others: Vec<(String, String)> = facts
        .foreign_keys
        .iter()
        .filter(|fk| fk.columns.iter().any(|c| c == column))
        .map(|fk| (fk.references.clone(), fk.name.clone()))
        .collect();
    // A referencing key points at a unique key of `t`; the catalog does not say
    // which columns, so any unique index holding the column counts (all, when
    // the indexes are unknown).
    let keyed = !facts.indexes_known
        || facts
            .indexes
            .iter()
            .any(|i| i.unique && i.columns.iter().any(|c| c == column));
    if keyed {
        let mut children: Vec<(String, String)> = catalog
            .tables
            .iter()
            .flat_map(|(name, child)| {
                child
                    .foreign_keys
                    .iter()
                    .filter(|fk| {
                        catalog
                            .lookup(&fk.references)
                            .is_some_and(|p| std::ptr::eq(p, facts))
                    })
                    .map(move |fk| (name.clone(), fk.name.clone()))
            })
            .collect();
        children.sort();
        others.extend(children);
    }
    for (other, fk) in others {
        ev.other_lock(
            &other,
            PgLock::AccessExclusive.name(),
            PgLock::AccessExclusive.blocks(),
        );
        let large = ev.large(t) || ev.large(&other);
        ev.add(
            "column-type-rebuilds-fk",
            large,
            &[
                ("table", t),
                ("column", column),
                ("name", &other),
                ("detail", &fk),
            ],
        );
    }
}

pub(super) fn fk_parent_lock(ev: &mut Eval, child: &str, parent: &str) {
    ev.other_lock(
        parent,
        PgLock::AccessExclusive.name(),
        PgLock::AccessExclusive.blocks(),
    );
    ev.add(
        "fk-lock-on-referenced-table",
        false,
        &[("table", child), ("name", parent)],
    );
}

fn add_constraint(
    ev: &mut Eval,
    t: &str,
    kind: &ConstraintKind,
    name: Option<&str>,
    not_valid: bool,
    using_index: bool,
    columns: &[String],
) -> (PgLock, Option<WorkKind>) {
    use PgLock::*;
    let cname = name
        .map(str::to_string)
        .unwrap_or_else(|| format!("{}_constraint", base_name(t)));
    let cols = columns.join(", ");
    match kind {
        ConstraintKind::Check { expr } => {
            if not_valid {
                return (AccessExclusive, Some(WorkKind::Meta));
            }
            let large = ev.large(t);
            let alt = format!(
                "ALTER TABLE {t} ADD CONSTRAINT {cname} CHECK ({expr}) NOT VALID;\n-- in a later transaction:\nALTER TABLE {t} VALIDATE CONSTRAINT {cname};"
            );
            ev.add(
                "add-check-validated",
                large,
                &[
                    ("table", t),
                    ("detail", "ACCESS EXCLUSIVE (all reads and writes wait)"),
                    ("alt_sql", &alt),
                ],
            );
            (AccessExclusive, Some(WorkKind::Scan))
        }
        ConstraintKind::ForeignKey { references } => {
            ev.other_lock(
                references,
                ShareRowExclusive.name(),
                ShareRowExclusive.blocks(),
            );
            if ev.lacks_index_prefix(t, columns) {
                let large = ev.large(t);
                let idx = format!("{}_{}_idx", base_name(t), columns.join("_"));
                let alt = format!("CREATE INDEX CONCURRENTLY {idx} ON {t} ({cols});");
                ev.add(
                    "fk-without-index",
                    large,
                    &[
                        ("table", t),
                        ("detail", &cols),
                        ("name", references),
                        ("alt_sql", &alt),
                    ],
                );
            }
            if not_valid {
                return (ShareRowExclusive, Some(WorkKind::Meta));
            }
            let large = ev.large(t) || ev.large(references);
            let alt = format!(
                "ALTER TABLE {t} ADD CONSTRAINT {cname} FOREIGN KEY ({cols}) REFERENCES {references} NOT VALID;\n-- in a later transaction:\nALTER TABLE {t} VALIDATE CONSTRAINT {cname};"
            );
            ev.add(
                "add-foreign-key-validated",
                large,
                &[("table", t), ("name", references), ("alt_sql", &alt)],
            );
            (ShareRowExclusive, Some(WorkKind::Scan))
        }
        ConstraintKind::Unique | ConstraintKind::PrimaryKey if using_index => {
            ev.add("constraint-using-index", false, &[("table", t)]);
            (AccessExclusive, Some(WorkKind::Meta))
        }
        ConstraintKind::Unique => {
            let large = ev.large(t);
            let idx = format!("{}_{}_key", base_name(t), columns.join("_"));
            let alt = format!(
                "CREATE UNIQUE INDEX CONCURRENTLY {idx} ON {t} ({cols});\nALTER TABLE {t} ADD CONSTRAINT {cname} UNIQUE USING INDEX {idx};"
            );
            ev.add(
                "add-unique-constraint",
                large,
                &[("table", t), ("alt_sql", &alt)],
            );
            if ev.exists(t) {
                ev.add(
                    "unique-index-may-fail",
                    large,
                    &[("table", t), ("detail", &cols)],
                );
            }
            (AccessExclusive, Some(WorkKind::Build))
        }
        ConstraintKind::PrimaryKey => {
            let large = ev.large(t);
            let idx = format!("{}_pkey_idx", base_name(t));
            let alt = format!(
                "CREATE UNIQUE INDEX CONCURRENTLY {idx} ON {t} ({cols});\nALTER TABLE {t} ADD CONSTRAINT {cname} PRIMARY KEY USING INDEX {idx};  -- columns must already be NOT NULL (via a validated CHECK)"
            );
            ev.add(
                "add-primary-key",
                large,
                &[
                    ("table", t),
                    (
                        "detail",
                        "under ACCESS EXCLUSIVE: all reads and writes wait",
                    ),
                    ("alt_sql", &alt),
                ],
            );
            (AccessExclusive, Some(WorkKind::Build))
        }
        ConstraintKind::Exclude => {
            let large = ev.large(t);
            ev.add("add-exclusion-constraint", large, &[("table", t)]);
            (AccessExclusive, Some(WorkKind::Build))
        }
        ConstraintKind::Index(_) => {
            ev.add(
                "unknown-alter-action",
                true,
                &[
                    ("table", t),
                    ("detail", "ADD INDEX (MySQL syntax on PostgreSQL)"),
                ],
            );
            (AccessExclusive, Some(WorkKind::Rewrite))
        }
    }
}

/// Binary-coercible type changes that need no rewrite (engines.md §1.2).
pub fn pg_binary_coercible(old: &str, new: &str) -> bool {
    let (o, n) = (canon(old), canon(new));
    let (ob, ol) = split_len(&o);
    let (nb, nl) = split_len(&n);
    match (ob.as_str(), nb.as_str()) {
        ("VARCHAR", "VARCHAR") => match (ol, nl) {
            (Some(a), Some(b)) => b.0 >= a.0,
            (_, None) => true,
            (None, Some(_)) => false,
        },
        ("VARCHAR", "TEXT") | ("TEXT", "TEXT") => true,
        ("NUMERIC", "NUMERIC") => match (ol, nl) {
            (Some(a), Some(b)) => b.0 >= a.0 && a.1 == b.1,
            (_, None) => true,
            _ => false,
        },
        ("CIDR", "INET") => true,
        (a, b) => a == b && ol == nl,
    }
}

fn canon(t: &str) -> String {
    let u = t
        .trim()
        .to_ascii_uppercase()
        .replace("CHARACTER VARYING", "VARCHAR")
        .replace("DECIMAL", "NUMERIC");
    u.replace(' ', "")
}

/// `VARCHAR(10)` → ("VARCHAR", Some((10, 0))); `NUMERIC(10,2)` → ("NUMERIC", Some((10, 2))).
fn split_len(t: &str) -> (String, Option<(u32, u32)>) {
    match t.split_once('(') {
        Some((base, rest)) => {
            let inner = rest.trim_end_matches(')');
            let mut parts = inner
                .split(',')
                .map(|p| p.trim().parse::<u32>().unwrap_or(0));
            let a = parts.next().unwrap_or(0);
            let b = parts.next().unwrap_or(0);
            (base.to_string(), Some((a, b)))
        }
        None => (t.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::pg_binary_coercible as c;

    #[test]
    fn coercible_changes() {
        assert!(c("character varying(10)", "VARCHAR(20)"));
        assert!(c("varchar(10)", "text"));
        assert!(!c("varchar(10)", "varchar(5)"));
        assert!(!c("integer", "bigint"));
        assert!(!c("text", "varchar(100)"));
        assert!(c("numeric(10,2)", "numeric(12,2)"));
        assert!(!c("numeric(10,2)", "numeric(12,3)"));
    }
}
