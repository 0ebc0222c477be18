//! MySQL/MariaDB ALTER TABLE: the cheapest algorithm and weakest lock the server
//! accepts for each sub-command (engines.md §2.2 and §3.1), combined per statement.

use super::locks::{Algo, MyCost, MyLock};
use super::{Eval, WorkKind, worst_case};
use crate::model::{Blocks, EngineVersion};
use crate::sql::ops::{
    Action, ColumnSpec, ConstraintKind, DefaultKind, Generated, IndexKind, Op, TableOption,
};

/// Evaluates an `Op::AlterTable` on MySQL/MariaDB.
pub fn evaluate(ev: &mut Eval, op: &Op) {
    let Op::AlterTable {
        table,
        actions,
        algorithm,
        lock,
    } = op
    else {
        return;
    };
    let t = table.as_str();
    let mut cost = MyCost::INSTANT;
    let mut reasons: Vec<String> = Vec::new();
    let mut unknown = false;
    let adds_pk = actions.iter().any(|a| {
        matches!(
            a,
            Action::AddConstraint {
                kind: ConstraintKind::PrimaryKey,
                ..
            }
        )
    });
    let mut exclusive_rename = false;
    for a in actions {
        let (c, why) = action(ev, t, a, adds_pk, &mut unknown);
        if matches!(a, Action::RenameTo { .. }) {
            exclusive_rename = true;
        }
        if c.algo >= Algo::Inplace && (c.rebuild || c.algo == Algo::Copy || c.lock > MyLock::None) {
            reasons.push(why);
        }
        cost = cost.combine(c);
    }
    if unknown {
        worst_case(ev);
        ev.lock.table = Some(table.clone());
        return;
    }
    // An explicit ALGORITHM=COPY or a LOCK= stronger than NONE is obeyed by the server.
    // MariaDB accepts INSTANT/NOCOPY on PARTITION BY and copies anyway.
    if actions.iter().any(|a| matches!(a, Action::Repartition))
        && let Some(alg @ ("INSTANT" | "NOCOPY" | "INPLACE")) = algorithm.as_deref()
    {
        let large = ev.large(t);
        ev.add(
            "mysql-partition-clause-algorithm-ignored",
            large,
            &[("table", t), ("detail", alg)],
        );
    }
    let asked_copy = algorithm.as_deref() == Some("COPY");
    let asked_lock = match lock.as_deref() {
        Some("SHARED") => Some(MyLock::Shared),
        Some("EXCLUSIVE") => Some(MyLock::Exclusive),
        _ => None,
    };
    if asked_copy || asked_lock.is_some() {
        let large = ev.large(t);
        let detail = [
            algorithm.as_ref().map(|a| format!("ALGORITHM={a}")),
            lock.as_ref().map(|l| format!("LOCK={l}")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ");
        ev.add(
            "mysql-copy-or-lock-clause",
            large,
            &[("table", t), ("detail", &detail)],
        );
        if asked_copy {
            cost = cost.combine(MyCost::COPY);
        }
        if let Some(l) = asked_lock {
            cost.lock = cost.lock.max(l);
        }
    }
    // InnoDB refuses LOCK=NONE on a table whose FKs cascade or set NULL: writes wait.
    if cost.algo > Algo::Instant
        && cost.algo < Algo::Copy
        && cost.lock == MyLock::None
        && ev.exists(t)
        && ev.ctx.catalog.lookup(t).is_some_and(|f| f.cascading_fks)
    {
        let large = ev.large(t);
        cost.lock = MyLock::Shared;
        ev.add("cascade-fk-online-ddl-limit", large, &[("table", t)]);
    }
    // InnoDB rebuilds a table holding a FULLTEXT index only with LOCK=SHARED
    // (seen on MariaDB 10.11: a primary key swap refused LOCK=NONE).
    if cost.rebuild
        && cost.algo > Algo::Instant
        && cost.algo < Algo::Copy
        && cost.lock == MyLock::None
        && ev.exists(t)
        && ev.has_fulltext(t)
    {
        let large = ev.large(t);
        cost.lock = MyLock::Shared;
        ev.add("fulltext-online-rebuild-limit", large, &[("table", t)]);
    }
    if exclusive_rename && ev.version.is_mariadb() {
        cost.lock = cost.lock.max(MyLock::Exclusive);
    }
    let why = reasons.join("; ");
    if cost.algo == Algo::Copy {
        let large = ev.large(t);
        let clause = alter_clause(ev.sql);
        let alt = format!(
            "Run the same change online:\n  gh-ost --alter=\"{clause}\" --table={t} --database=<db> --execute\nor\n  pt-online-schema-change --alter \"{clause}\" D=<db>,t={t} --execute"
        );
        ev.add("mysql-copy-algorithm", large, &[("table", t), ("detail", &format!("(ALGORITHM=COPY, LOCK={}: writes are blocked for the whole copy) because: {why}", cost.lock.name())), ("alt_sql", &alt)]);
        ev.work(WorkKind::Rewrite, cost.lock > MyLock::None);
    } else if cost.rebuild {
        let large = ev.large(t);
        ev.add(
            "mysql-table-rebuild",
            large,
            &[("table", t), ("detail", &why)],
        );
        ev.work(WorkKind::Rewrite, cost.lock > MyLock::None);
    } else if cost.algo >= Algo::Nocopy && ev.work.is_empty() {
        ev.work(WorkKind::Build, cost.lock > MyLock::None);
    } else if ev.work.is_empty() {
        ev.work(WorkKind::Meta, false);
    }
    let blocks = if exclusive_rename {
        Blocks::ReadsAndWrites.max(cost.lock.blocks())
    } else {
        cost.lock.blocks()
    };
    ev.take_lock(t, &cost.mode(), blocks);
    if cost.rebuild || cost.algo == Algo::Copy {
        ev.rewrites = ev.exists(t);
    }
}

/// The part of an ALTER TABLE after the table name, for gh-ost/pt-osc `--alter`.
fn alter_clause(sql: &str) -> String {
    let words: Vec<&str> = sql.split_whitespace().collect();
    let pos = words
        .iter()
        .position(|w| w.eq_ignore_ascii_case("table"))
        .map(|p| p + 2)
        .unwrap_or(words.len());
    words[pos.min(words.len())..].join(" ").replace('"', "\\\"")
}

fn mysql_instant_add(v: &EngineVersion, positioned: bool) -> MyCost {
    match v {
        EngineVersion::Mysql { .. } if !v.mysql_at_least(8, 0, 12) => MyCost::REBUILD,
        EngineVersion::Mysql { .. } if positioned && !v.mysql_at_least(8, 0, 29) => MyCost::REBUILD,
        _ => MyCost::INSTANT,
    }
}

fn action(
    ev: &mut Eval,
    t: &str,
    a: &Action,
    adds_pk: bool,
    unknown: &mut bool,
) -> (MyCost, String) {
    let v = ev.version;
    match a {
        Action::AddColumn(spec) => add_column(ev, t, spec),
        Action::DropColumn { names, .. } => {
            for n in names {
                ev.add("drop-column", true, &[("table", t), ("column", n)]);
            }
            let c = if matches!(v, EngineVersion::Mysql { .. }) && !v.mysql_at_least(8, 0, 29) {
                MyCost::REBUILD
            } else {
                MyCost::INSTANT
            };
            (c, "DROP COLUMN rebuilds before MySQL 8.0.29".into())
        }
        Action::ModifyColumn {
            column,
            new_name,
            spec,
        } => modify_column(ev, t, column, new_name.as_deref(), spec),
        Action::SetDefault { column, .. } | Action::DropDefault { column } => {
            ev.add(
                "set-or-drop-default",
                false,
                &[
                    ("table", t),
                    ("column", column),
                    ("detail", "Changing the default"),
                ],
            );
            (MyCost::INSTANT, String::new())
        }
        Action::AddConstraint { kind, columns, .. } => match kind {
            ConstraintKind::Index(IndexKind::Normal) | ConstraintKind::Unique => {
                let large = ev.large(t);
                ev.add("mysql-add-secondary-index", large, &[("table", t)]);
                if matches!(kind, ConstraintKind::Unique) && ev.exists(t) {
                    ev.add(
                        "unique-index-may-fail",
                        large,
                        &[("table", t), ("detail", &columns.join(", "))],
                    );
                }
                (MyCost::NOCOPY, "index build".into())
            }
            ConstraintKind::Index(k) => {
                let large = ev.large(t);
                let what = if *k == IndexKind::Fulltext {
                    "FULLTEXT"
                } else {
                    "SPATIAL"
                };
                ev.add(
                    "mysql-fulltext-spatial-index",
                    large,
                    &[("table", t), ("detail", what)],
                );
                (
                    MyCost {
                        algo: Algo::Inplace,
                        lock: MyLock::Shared,
                        // The first FULLTEXT index adds FTS_DOC_ID: a rebuild.
                        rebuild: *k == IndexKind::Fulltext && !ev.has_fulltext(t),
                    },
                    format!("{what} index creation requires LOCK=SHARED"),
                )
            }
            ConstraintKind::PrimaryKey => {
                (MyCost::REBUILD, "ADD PRIMARY KEY rebuilds the table".into())
            }
            ConstraintKind::ForeignKey { references } => {
                let large = ev.large(t) || ev.large(references);
                ev.add("add-foreign-key-validated", large, &[("table", t), ("name", references), ("alt_sql", "Check for orphans first, then add it with SET foreign_key_checks=0 (in place, rows not validated), or use pt-online-schema-change --alter-foreign-keys-method")]);
                ev.other_lock(references, "MDL", Blocks::Nothing);
                (
                    MyCost::COPY,
                    "adding a foreign key with foreign_key_checks=ON copies the table".into(),
                )
            }
            ConstraintKind::Check { .. } => {
                let large = ev.large(t);
                ev.add("add-check-validated", large, &[("table", t), ("detail", "LOCK=SHARED (writes blocked) during a table copy"), ("alt_sql", "Use gh-ost or pt-online-schema-change, or add it NOT ENFORCED (MySQL) and enforce it in a window")]);
                (MyCost::COPY, "ADD CHECK copies the table".into())
            }
            ConstraintKind::Exclude => {
                *unknown = true;
                ev.add(
                    "unknown-alter-action",
                    true,
                    &[
                        ("table", t),
                        ("detail", "EXCLUDE (PostgreSQL syntax on MySQL)"),
                    ],
                );
                (MyCost::COPY, String::new())
            }
        },
        Action::DropConstraint { name, .. } | Action::DropForeignKey { name } => {
            ev.add("drop-foreign-key", false, &[("table", t), ("name", name)]);
            (MyCost::INSTANT, String::new())
        }
        Action::DropPrimaryKey => {
            if adds_pk {
                (MyCost::REBUILD, "primary key replaced".into())
            } else {
                let large = ev.large(t);
                ev.add("drop-primary-key", large, &[("table", t)]);
                (
                    MyCost::COPY,
                    "dropping a primary key without adding one copies the table".into(),
                )
            }
        }
        Action::DropIndex { .. } | Action::RenameIndex => (MyCost::NOCOPY, String::new()),
        Action::RenameColumn { from, .. } => {
            ev.add("rename-column", false, &[("table", t), ("column", from)]);
            (MyCost::INSTANT, String::new())
        }
        Action::RenameTo { to } => {
            ev.add("rename-table", false, &[("table", t), ("name", to)]);
            (MyCost::INSTANT, String::new())
        }
        Action::TableOption(o) => match o {
            TableOption::Engine(e) if e == "innodb" => {
                (MyCost::REBUILD, "ENGINE=InnoDB rebuilds the table".into())
            }
            TableOption::Engine(e) => {
                let large = ev.large(t);
                ev.add("mysql-engine-change", large, &[("table", t), ("detail", e)]);
                (MyCost::COPY, format!("ENGINE={e}"))
            }
            TableOption::RowFormat | TableOption::KeyBlockSize => (
                MyCost::REBUILD,
                "changing table options rebuilds the table".into(),
            ),
            TableOption::Force => (MyCost::REBUILD, "FORCE rebuilds the table".into()),
            TableOption::ConvertCharset => {
                let large = ev.large(t);
                ev.add(
                    "charset-conversion",
                    large,
                    &[("table", t), ("detail", "(CONVERT TO CHARACTER SET)")],
                );
                (MyCost::COPY, "CONVERT TO CHARACTER SET".into())
            }
            TableOption::AutoIncrement => {
                ev.add("auto-increment-reset", false, &[("table", t)]);
                (MyCost::INSTANT, String::new())
            }
            TableOption::DefaultCharset | TableOption::Comment => (MyCost::INSTANT, String::new()),
        },
        Action::Repartition => {
            let large = ev.large(t);
            ev.add(
                "mysql-partitioning-change",
                large,
                &[
                    ("table", t),
                    ("detail", "PARTITION BY / REMOVE PARTITIONING"),
                ],
            );
            (MyCost::COPY, "repartitioning copies the table".into())
        }
        Action::AddPartition => {
            ev.add("partition-add", false, &[("table", t)]);
            (MyCost::NOCOPY, String::new())
        }
        Action::DropPartition => {
            ev.add("drop-partition", true, &[("table", t)]);
            (MyCost::NOCOPY, String::new())
        }
        Action::TruncatePartition => {
            ev.add("truncate", true, &[("table", t)]);
            (MyCost::NOCOPY, String::new())
        }
        Action::PartitionMaintenance(kind) => match kind.as_str() {
            "analyze" | "check" | "repair" | "exchange" => (MyCost::NOCOPY, String::new()),
            other => {
                let large = ev.large(t);
                ev.add(
                    "mysql-partitioning-change",
                    large,
                    &[
                        ("table", t),
                        (
                            "detail",
                            &format!("{} PARTITION", other.to_ascii_uppercase()),
                        ),
                    ],
                );
                (
                    MyCost {
                        algo: Algo::Inplace,
                        lock: MyLock::Shared,
                        rebuild: true,
                    },
                    format!("{} PARTITION needs LOCK=SHARED", other.to_ascii_uppercase()),
                )
            }
        },
        Action::Trigger
        | Action::Owner
        | Action::RowLevelSecurity
        | Action::PgSetStorage
        | Action::PgCatalogExclusive(_) => (MyCost::INSTANT, String::new()),
        other => {
            let text = match other {
                Action::Unknown(s) => s.clone(),
                o => format!("{o:?} (PostgreSQL syntax on MySQL)"),
            };
            ev.add(
                "unknown-alter-action",
                true,
                &[("table", t), ("detail", &text)],
            );
            *unknown = true;
            (MyCost::COPY, text)
        }
    }
}

fn add_column(ev: &mut Eval, t: &str, spec: &ColumnSpec) -> (MyCost, String) {
    let c = spec.name.as_str();
    let v = ev.version;
    if spec.generated == Some(Generated::Stored) {
        let large = ev.large(t);
        ev.add(
            "add-column-stored-generated",
            large,
            &[
                ("table", t),
                ("column", c),
                ("detail", "(ALGORITHM=COPY, LOCK=SHARED)"),
            ],
        );
        return (
            MyCost::COPY,
            "a STORED generated column copies the table".into(),
        );
    }
    if spec.auto_increment {
        let large = ev.large(t);
        ev.add(
            "add-column-auto-increment",
            large,
            &[
                ("table", t),
                ("column", c),
                ("detail", "in place with LOCK=SHARED (writes blocked)"),
            ],
        );
        return (
            MyCost {
                algo: Algo::Inplace,
                lock: MyLock::Shared,
                rebuild: true,
            },
            "adding an auto-increment column requires a lock".into(),
        );
    }
    let mut cost = mysql_instant_add(&v, spec.positioned);
    let mut why = String::from("ADD COLUMN is not instant on this server version");
    if let Some(DefaultKind::Expression(expr)) | Some(DefaultKind::Volatile(expr)) = &spec.default {
        let large = ev.large(t);
        ev.add(
            "add-column-expression-default",
            large,
            &[("table", t), ("column", c), ("detail", expr)],
        );
        if !instant_expression(expr) {
            cost = MyCost::COPY;
            why = format!("ADD COLUMN with DEFAULT {expr} copies the table");
        } else if v.is_mariadb() && expr.to_ascii_lowercase().contains("rand") {
            ev.add(
                "volatile-default-single-value",
                false,
                &[("column", c), ("detail", expr)],
            );
        }
    }
    if let Some(parent) = &spec.references {
        let large = ev.large(t);
        ev.add("add-column-inline-constraint", large, &[("table", t), ("column", c), ("detail", &format!("REFERENCES {parent} (MySQL ignores inline REFERENCES; MariaDB validates it with a copy)"))]);
        cost = cost.combine(MyCost::COPY);
        why = "an inline foreign key copies the table".into();
    }
    if spec.unique || spec.primary_key {
        let large = ev.large(t);
        ev.add(
            "add-column-inline-constraint",
            large,
            &[
                ("table", t),
                ("column", c),
                (
                    "detail",
                    if spec.primary_key {
                        "PRIMARY KEY"
                    } else {
                        "UNIQUE"
                    },
                ),
            ],
        );
        cost = cost.combine(if spec.primary_key {
            MyCost::REBUILD
        } else {
            MyCost::NOCOPY
        });
        why = "an inline key builds an index".into();
    }
    let has_default = spec.default.is_some() || spec.generated.is_some();
    if spec.not_null && !has_default && ev.exists(t) {
        ev.add("not-null-zero-fill", false, &[("table", t), ("column", c)]);
    }
    if matches!(v, EngineVersion::Mysql { .. }) && cost.algo == Algo::Instant {
        ev.add("instant-add-row-version-limit", false, &[("table", t)]);
    }
    if cost == MyCost::INSTANT
        && ev
            .findings
            .iter()
            .all(|f| f.risk == crate::model::Risk::Low)
    {
        ev.add(
            "add-column",
            false,
            &[("table", t), ("column", c), ("detail", "ALGORITHM=INSTANT")],
        );
    }
    (cost, why)
}

/// MariaDB evaluates these default expressions once, instantly; others copy.
fn instant_expression(expr: &str) -> bool {
    let lower = expr.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    words.iter().all(|w| {
        w.chars().all(|c| c.is_ascii_digit())
            || matches!(
                *w,
                "rand"
                    | "now"
                    | "current_timestamp"
                    | "localtimestamp"
                    | "curdate"
                    | "current_date"
                    | "null"
                    | "true"
                    | "false"
            )
    })
}

fn modify_column(
    ev: &mut Eval,
    t: &str,
    column: &str,
    new_name: Option<&str>,
    spec: &ColumnSpec,
) -> (MyCost, String) {
    let v = ev.version;
    let mut cost = MyCost::INSTANT;
    let mut why: Vec<String> = Vec::new();
    if let Some(n) = new_name {
        let _ = n;
        ev.add("rename-column", false, &[("table", t), ("column", column)]);
    }
    let old = ev
        .ctx
        .catalog
        .lookup(t)
        .and_then(|f| f.columns.get(column))
        .cloned();
    let new_type = norm_type(&spec.data_type);
    match &old {
        None => {
            let large = ev.large(t);
            ev.add("change-column-type", large, &[("table", t), ("column", column), ("detail", &format!("{} may copy the table (current definition unknown: pass --target)", spec.data_type)), ("alt_sql", "Verify with `cutover plan --target` or use gh-ost / pt-online-schema-change")]);
            cost = MyCost::COPY;
            why.push(format!("MODIFY {column} (current type unknown)"));
        }
        Some(o) => {
            let old_type = norm_type(&o.data_type);
            if old_type != new_type {
                let bpc = o.bytes_per_char.unwrap_or(4);
                match type_change(&old_type, &new_type, bpc, &v) {
                    TypeChange::Instant => {}
                    TypeChange::InplaceMeta => cost = cost.combine(MyCost::NOCOPY),
                    TypeChange::EnumCopy => {
                        let large = ev.large(t);
                        ev.add(
                            "enum-set-modify",
                            large,
                            &[("table", t), ("column", column)],
                        );
                        cost = MyCost::COPY;
                        why.push(format!("{column}: ENUM/SET change other than append"));
                    }
                    TypeChange::Copy => {
                        let large = ev.large(t);
                        let clause = format!("MODIFY {column} {}", spec.data_type);
                        let alt = format!(
                            "gh-ost --alter=\"{clause}\" --table={t} --execute, or pt-online-schema-change --alter \"{clause}\" D=<db>,t={t} --execute"
                        );
                        ev.add(
                            "change-column-type",
                            large,
                            &[
                                ("table", t),
                                ("column", column),
                                (
                                    "detail",
                                    &format!(
                                        "{} (from {}) copies the table; writes are blocked",
                                        spec.data_type, o.data_type
                                    ),
                                ),
                                ("alt_sql", &alt),
                            ],
                        );
                        cost = MyCost::COPY;
                        why.push(format!("{column}: {} → {}", o.data_type, spec.data_type));
                    }
                }
            }
            if o.nullable && spec.not_null {
                cost = cost.combine(MyCost::REBUILD);
                why.push(format!("{column} NULL → NOT NULL (fails if NULLs exist)"));
            } else if !o.nullable && !spec.not_null {
                ev.add("drop-not-null", false, &[("table", t), ("column", column)]);
                cost = cost.combine(MyCost::REBUILD);
                why.push(format!("{column} NOT NULL → NULL"));
            }
            if let Some(cs) = &spec.charset {
                let large = ev.large(t);
                ev.add(
                    "charset-conversion",
                    large,
                    &[
                        ("table", t),
                        ("detail", &format!("column {column} to {cs}")),
                    ],
                );
                cost = MyCost::COPY;
                why.push(format!("{column} CHARACTER SET {cs}"));
            }
        }
    }
    if spec.positioned && matches!(v, EngineVersion::Mysql { .. }) {
        let large = ev.large(t);
        ev.add("column-reorder", large, &[("table", t), ("column", column)]);
        cost = cost.combine(MyCost::REBUILD);
        why.push("column reorder".into());
    }
    (cost, why.join("; "))
}

enum TypeChange {
    Instant,
    InplaceMeta,
    EnumCopy,
    Copy,
}

fn norm_type(t: &str) -> String {
    t.to_ascii_uppercase()
        .replace(' ', "")
        .replace("CHARACTERVARYING", "VARCHAR")
}

fn varchar_len(t: &str) -> Option<u32> {
    t.strip_prefix("VARCHAR(")?
        .trim_end_matches(')')
        .parse()
        .ok()
}

fn type_change(old: &str, new: &str, bpc: u32, v: &EngineVersion) -> TypeChange {
    if let (Some(a), Some(b)) = (varchar_len(old), varchar_len(new)) {
        if b < a {
            return TypeChange::Copy;
        }
        let (ob, nb) = (a * bpc, b * bpc);
        return if v.is_mariadb() {
            // engines.md §2.3
            if ob <= 127 || nb <= 255 || ob >= 256 {
                TypeChange::Instant
            } else {
                TypeChange::Copy
            }
        } else if (ob <= 255) == (nb <= 255) {
            TypeChange::InplaceMeta
        } else {
            TypeChange::Copy
        };
    }
    let members = |t: &str| -> Option<Vec<String>> {
        let inner = t
            .strip_prefix("ENUM(")
            .or_else(|| t.strip_prefix("SET("))?
            .strip_suffix(')')?;
        Some(inner.split(',').map(|s| s.to_string()).collect())
    };
    if let (Some(a), Some(b)) = (members(old), members(new)) {
        return if b.len() >= a.len() && b[..a.len()] == a[..] && b.len() <= 255 {
            TypeChange::Instant
        } else {
            TypeChange::EnumCopy
        };
    }
    TypeChange::Copy
}
