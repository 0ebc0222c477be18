//! Table facts: sizes, column types and constraints that decide what a statement costs.
//!
//! Facts come from a stats file (`--stats`, for CI without a database) or live and
//! read-only from the target's primary (`--target`). A run's verdicts always use
//! live facts; the stats file is only for `plan`.

pub mod live;

use crate::model::{Engine, EngineVersion};
use crate::sql::names::norm_user_name;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

/// One column as the catalog knows it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ColumnFacts {
    /// Upper-case type as the engine names it, e.g. `CHARACTER VARYING(10)` or `VARCHAR(10)`.
    pub data_type: String,
    pub nullable: bool,
    /// PostgreSQL: a validated `CHECK (col IS NOT NULL)` exists (SET NOT NULL skips its scan).
    pub valid_not_null_check: bool,
    /// MySQL: bytes per character of the column's character set.
    pub bytes_per_char: Option<u32>,
}

/// What is known about one table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableFacts {
    pub rows: Option<u64>,
    pub bytes: Option<u64>,
    pub columns: BTreeMap<String, ColumnFacts>,
    pub has_triggers: bool,
    /// Foreign keys with ON DELETE/UPDATE CASCADE or SET NULL (MySQL: no LOCK=NONE).
    pub cascading_fks: bool,
    /// Indexes on the table (primary key and unique constraints included).
    pub indexes: Vec<IndexFacts>,
    /// Foreign keys declared on this table (it is the referencing side).
    pub foreign_keys: Vec<ForeignKeyFacts>,
    /// Index facts were read (live, or an `indexes` key in the stats file); without
    /// them a missing index cannot be told from an unknown one.
    pub indexes_known: bool,
}

impl TableFacts {
    /// True if `columns` are a leading prefix of a valid index (an FK lookup can use it).
    pub fn has_index_prefix(&self, columns: &[String]) -> bool {
        !columns.is_empty()
            && self.indexes.iter().any(|i| {
                i.valid
                    && i.columns.len() >= columns.len()
                    && i.columns[..columns.len()] == *columns
            })
    }

    /// The foreign key named `name`, if known.
    pub fn foreign_key(&self, name: &str) -> Option<&ForeignKeyFacts> {
        self.foreign_keys.iter().find(|f| f.name == name)
    }
}

/// One index as the catalog knows it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexFacts {
    pub name: String,
    /// Key columns in index order (expressions appear as their text).
    pub columns: Vec<String>,
    #[serde(default)]
    pub unique: bool,
    /// PostgreSQL: `indisvalid` (a failed CREATE INDEX CONCURRENTLY leaves it false).
    #[serde(default = "yes")]
    pub valid: bool,
    /// MySQL/MariaDB FULLTEXT: InnoDB rebuilds such a table only with LOCK=SHARED.
    #[serde(default)]
    pub fulltext: bool,
}

/// One foreign key of a table.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForeignKeyFacts {
    pub name: String,
    /// Referencing columns, in order.
    pub columns: Vec<String>,
    /// The referenced table, normalised like the catalog's keys.
    pub references: String,
    /// Upper-case referential actions, e.g. `CASCADE`, `SET NULL`, `NO ACTION`.
    #[serde(default = "no_action")]
    pub on_delete: String,
    #[serde(default = "no_action")]
    pub on_update: String,
}

impl ForeignKeyFacts {
    /// ON … CASCADE / SET NULL / SET DEFAULT: the engine changes child rows itself.
    pub fn cascades(&self) -> bool {
        [&self.on_delete, &self.on_update]
            .iter()
            .map(|a| a.to_ascii_uppercase())
            .any(|a| a.starts_with("CASCADE") || a.starts_with("SET "))
    }
}

fn yes() -> bool {
    true
}

fn no_action() -> String {
    "NO ACTION".into()
}

/// A transaction that was open when the facts were read.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenTransaction {
    /// Backend pid / connection id.
    pub id: u64,
    pub age_seconds: u64,
    /// e.g. `idle in transaction`.
    pub state: String,
    /// Normalised `schema.table` it holds a lock on; `None` when unknown.
    pub table: Option<String>,
}

impl Catalog {
    /// Transactions at least `min_age` seconds old that may hold a lock on `table`.
    pub fn old_transactions_on(&self, table: &str, min_age: u64) -> Vec<&OpenTransaction> {
        let qualified = if table.contains('.') || self.engine != Engine::Postgres {
            table.to_string()
        } else {
            format!("public.{table}")
        };
        self.open_transactions
            .iter()
            .filter(|t| t.age_seconds >= min_age)
            .filter(|t| match &t.table {
                Some(x) => {
                    x == table || *x == qualified || crate::sql::names::base_name(x) == table
                }
                None => true,
            })
            .collect()
    }
}

/// Where the facts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactSource {
    None,
    StatsFile,
    Live,
}

/// Facts for the tables of a plan, keyed by normalised name.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub engine: Engine,
    pub tables: HashMap<String, TableFacts>,
    /// Open transactions seen live, with the tables they hold locks on (empty
    /// when the engine cannot tell: then `table` is `None`).
    pub open_transactions: Vec<OpenTransaction>,
    pub source: FactSource,
    /// The server's version, when read live.
    pub server_version: Option<EngineVersion>,
}

impl Catalog {
    pub fn empty(engine: Engine) -> Self {
        Catalog {
            engine,
            tables: HashMap::new(),
            open_transactions: Vec::new(),
            source: FactSource::None,
            server_version: None,
        }
    }

    /// Looks a table up as the engine would resolve the name: an unqualified name
    /// also matches `public.<name>` on PostgreSQL, and a qualified one its base name.
    pub fn lookup(&self, name: &str) -> Option<&TableFacts> {
        if let Some(t) = self.tables.get(name) {
            return Some(t);
        }
        if !name.contains('.') {
            if self.engine == Engine::Postgres
                && let Some(t) = self.tables.get(&format!("public.{name}"))
            {
                return Some(t);
            }
            return None;
        }
        let base = crate::sql::names::base_name(name);
        let schema = &name[..name.len() - base.len() - 1];
        if self.engine == Engine::Postgres && schema == "public" {
            return self.tables.get(base);
        }
        None
    }
}

/// A bad stats file, with file and line.
#[derive(Debug, thiserror::Error)]
#[error("{path}{}: {message}", .line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct StatsError {
    pub path: String,
    pub line: Option<usize>,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsFile {
    #[serde(default)]
    tables: BTreeMap<String, StatsTable>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsTable {
    rows: Option<u64>,
    bytes: Option<u64>,
    #[serde(default)]
    columns: BTreeMap<String, String>,
    #[serde(default)]
    has_triggers: bool,
    indexes: Option<Vec<IndexFacts>>,
    #[serde(default)]
    foreign_keys: Vec<ForeignKeyFacts>,
}

/// Reads a `--stats` TOML file: `[tables."orders"] rows = …, bytes = …`, optionally
/// `columns = { status = "varchar(10)" }`, `has_triggers = true`,
/// `indexes = [{ name = "i", columns = ["a", "b"], unique = false, valid = true }]` and
/// `foreign_keys = [{ name = "fk", columns = ["a"], references = "parent", on_delete = "CASCADE" }]`.
pub fn load_stats(text: &str, path: &str, engine: Engine) -> Result<Catalog, StatsError> {
    let f: StatsFile = toml::from_str(text).map_err(|e| StatsError {
        path: path.to_string(),
        line: e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1),
        message: e.message().to_string(),
    })?;
    let mut cat = Catalog::empty(engine);
    cat.source = FactSource::StatsFile;
    for (name, t) in f.tables {
        let columns = t
            .columns
            .into_iter()
            .map(|(c, ty)| {
                let upper = ty.to_ascii_uppercase();
                (
                    norm_user_name(&c, engine),
                    ColumnFacts {
                        nullable: !upper.contains("NOT NULL"),
                        data_type: upper.replace("NOT NULL", "").trim().to_string(),
                        valid_not_null_check: false,
                        bytes_per_char: None,
                    },
                )
            })
            .collect();
        cat.tables.insert(
            norm_user_name(&name, engine),
            TableFacts {
                rows: t.rows,
                bytes: t.bytes,
                columns,
                has_triggers: t.has_triggers,
                cascading_fks: t.foreign_keys.iter().any(ForeignKeyFacts::cascades),
                indexes_known: t.indexes.is_some(),
                indexes: t
                    .indexes
                    .unwrap_or_default()
                    .into_iter()
                    .map(|mut i| {
                        i.name = norm_user_name(&i.name, engine);
                        i.columns = i
                            .columns
                            .iter()
                            .map(|c| norm_user_name(c, engine))
                            .collect();
                        i
                    })
                    .collect(),
                foreign_keys: t
                    .foreign_keys
                    .into_iter()
                    .map(|mut f| {
                        f.name = norm_user_name(&f.name, engine);
                        f.columns = f
                            .columns
                            .iter()
                            .map(|c| norm_user_name(c, engine))
                            .collect();
                        f.references = norm_user_name(&f.references, engine);
                        f.on_delete = f.on_delete.to_ascii_uppercase();
                        f.on_update = f.on_update.to_ascii_uppercase();
                        f
                    })
                    .collect(),
            },
        );
    }
    Ok(cat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_file_names_fold_like_the_engine() {
        let c = load_stats(
            "[tables.'\"Orders\"']\nrows = 5\n[tables.Items]\nrows = 7\nbytes = 100\n",
            "s.toml",
            Engine::Postgres,
        )
        .unwrap();
        assert_eq!(c.lookup("items").and_then(|t| t.rows), Some(7));
        assert_eq!(c.lookup("public.items").and_then(|t| t.bytes), Some(100));
        assert_eq!(c.lookup("Orders").and_then(|t| t.rows), Some(5));
        assert!(c.lookup("orders").is_none());
    }

    #[test]
    fn stats_errors_name_the_line() {
        let e = load_stats(
            "[tables.t]\nrows = 5\nrowz = 6\n",
            "s.toml",
            Engine::Postgres,
        )
        .unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(e.to_string().starts_with("s.toml:3:"));
    }
}
