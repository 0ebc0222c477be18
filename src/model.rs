//! The plan's vocabulary: engines, risk levels, locks, estimates and verdicts.
//!
//! These types are the JSON contract of `cutover plan --format json` (documented in
//! the README) and what every later stage (approval, Slack, console) consumes, so
//! field names are stable and serialised in snake_case.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The SQL engine family a migration targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    #[serde(alias = "postgresql")]
    Postgres,
    /// MySQL and MariaDB share one dialect; the version says which server.
    #[serde(alias = "mariadb")]
    Mysql,
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Engine::Postgres => "postgres",
            Engine::Mysql => "mysql",
        })
    }
}

impl std::str::FromStr for Engine {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" | "pg" => Ok(Engine::Postgres),
            "mysql" | "mariadb" => Ok(Engine::Mysql),
            other => Err(format!(
                "unknown engine '{other}' (expected postgres or mysql)"
            )),
        }
    }
}

/// The newest MySQL 8.0 patch level whose facts the rules model (8.0.29:
/// INSTANT ADD/DROP COLUMN anywhere); `mysql-8.0` without a patch means it.
pub const MYSQL_80_NEWEST_MODELED_PATCH: u32 = 29;

/// A server flavour and version; engine facts differ between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "flavor", rename_all = "lowercase")]
pub enum EngineVersion {
    Postgres {
        major: u32,
        /// Minor release; 0 when unknown (`--engine-version postgres-15`).
        #[serde(default)]
        minor: u32,
    },
    Mariadb {
        major: u32,
        minor: u32,
    },
    Mysql {
        major: u32,
        minor: u32,
        patch: u32,
    },
}

impl EngineVersion {
    /// The documented defaults: PostgreSQL 15 and MariaDB 10.11.
    pub fn default_for(engine: Engine) -> Self {
        match engine {
            Engine::Postgres => EngineVersion::Postgres {
                major: 15,
                minor: 0,
            },
            Engine::Mysql => EngineVersion::Mariadb {
                major: 10,
                minor: 11,
            },
        }
    }

    pub fn engine(&self) -> Engine {
        match self {
            EngineVersion::Postgres { .. } => Engine::Postgres,
            _ => Engine::Mysql,
        }
    }

    pub fn is_mariadb(&self) -> bool {
        matches!(self, EngineVersion::Mariadb { .. })
    }

    /// The facts of a flavour's default version: `mysql` means MySQL 8.0 at the
    /// newest patch level the rules model, `mariadb` MariaDB 10.11, `postgres`
    /// PostgreSQL 15.
    pub fn default_for_flavor(flavor: &str) -> Option<Self> {
        match flavor.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" | "pg" => Some(Self::default_for(Engine::Postgres)),
            "mariadb" => Some(Self::default_for(Engine::Mysql)),
            "mysql" => Some(EngineVersion::Mysql {
                major: 8,
                minor: 0,
                patch: MYSQL_80_NEWEST_MODELED_PATCH,
            }),
            _ => None,
        }
    }

    /// Parses `postgres-15`, `mariadb-10.11`, `mysql-8.0`, `mysql-8.0.29`.
    /// A version the rules know nothing about (`postgres-99`) is an error, and
    /// `mysql-8.0` without a patch level means the newest 8.0 facts modelled
    /// (not 8.0.0, whose instant-DDL rules are the oldest).
    pub fn parse(s: &str) -> Result<Self, String> {
        const EXPECTED: &str = "expected postgres-10 … postgres-18, mariadb-10.2 … mariadb-11.8, \
             mysql-5.7, mysql-8.0[.N], mysql-8.4 or mysql-9.N";
        let bad = || format!("'{s}': {EXPECTED}");
        let (flavor, ver) = s.trim().split_once('-').ok_or_else(bad)?;
        let nums: Vec<u32> = ver
            .split('.')
            .map(|p| p.parse().ok())
            .collect::<Option<_>>()
            .ok_or_else(bad)?;
        if nums.is_empty() || nums.len() > 3 {
            return Err(bad());
        }
        let n = |i: usize| nums.get(i).copied();
        let v = match flavor.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" | "pg" if (10..=18).contains(&nums[0]) && nums.len() <= 2 => {
                EngineVersion::Postgres {
                    major: nums[0],
                    minor: n(1).unwrap_or(0),
                }
            }
            "mariadb"
                if nums.len() == 2
                    && ((nums[0] == 10 && (2..=11).contains(&nums[1]))
                        || (nums[0] == 11 && nums[1] <= 8)) =>
            {
                EngineVersion::Mariadb {
                    major: nums[0],
                    minor: nums[1],
                }
            }
            "mysql"
                if nums.len() >= 2
                    && matches!((nums[0], nums[1]), (5, 7) | (8, 0) | (8, 4) | (9, 0..=5)) =>
            {
                let newest = if (nums[0], nums[1]) == (8, 0) {
                    MYSQL_80_NEWEST_MODELED_PATCH
                } else {
                    0
                };
                EngineVersion::Mysql {
                    major: nums[0],
                    minor: nums[1],
                    patch: n(2).unwrap_or(newest),
                }
            }
            _ => return Err(bad()),
        };
        Ok(v)
    }

    /// Parses what the server reports (`SHOW server_version_num`, `SELECT VERSION()`).
    pub fn from_server_string(engine: Engine, s: &str) -> Option<Self> {
        match engine {
            Engine::Postgres => {
                let num: u32 = s.trim().parse().ok()?;
                Some(EngineVersion::Postgres {
                    major: num / 10000,
                    minor: num % 10000,
                })
            }
            Engine::Mysql => {
                let head = s.split('-').next()?;
                let nums: Vec<u32> = head.split('.').filter_map(|p| p.parse().ok()).collect();
                let n = |i: usize| nums.get(i).copied().unwrap_or(0);
                if s.to_ascii_lowercase().contains("mariadb") {
                    Some(EngineVersion::Mariadb {
                        major: n(0),
                        minor: n(1),
                    })
                } else {
                    Some(EngineVersion::Mysql {
                        major: n(0),
                        minor: n(1),
                        patch: n(2),
                    })
                }
            }
        }
    }

    /// MySQL at or after a given 8.0 patch level.
    pub fn mysql_at_least(&self, major: u32, minor: u32, patch: u32) -> bool {
        match *self {
            EngineVersion::Mysql {
                major: a,
                minor: b,
                patch: c,
            } => (a, b, c) >= (major, minor, patch),
            _ => false,
        }
    }

    pub fn pg_major(&self) -> Option<u32> {
        match *self {
            EngineVersion::Postgres { major, .. } => Some(major),
            _ => None,
        }
    }
}

impl fmt::Display for EngineVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineVersion::Postgres { major, minor: 0 } => write!(f, "postgres-{major}"),
            EngineVersion::Postgres { major, minor } => write!(f, "postgres-{major}.{minor}"),
            EngineVersion::Mariadb { major, minor } => write!(f, "mariadb-{major}.{minor}"),
            EngineVersion::Mysql {
                major,
                minor,
                patch,
            } => write!(f, "mysql-{major}.{minor}.{patch}"),
        }
    }
}

/// Risk level; ordered so that `max` gives the worst.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    #[default]
    Low,
    Medium,
    High,
}

impl Risk {
    pub fn as_str(&self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        }
    }
    /// One level down (for size-scaled rules on small tables).
    pub fn lower(self) -> Risk {
        match self {
            Risk::High => Risk::Medium,
            _ => Risk::Low,
        }
    }
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Risk {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "low" => Ok(Risk::Low),
            "medium" => Ok(Risk::Medium),
            "high" => Ok(Risk::High),
            other => Err(format!(
                "unknown risk '{other}' (expected low, medium or high)"
            )),
        }
    }
}

/// What ordinary traffic cannot do while the statement holds its strongest lock.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum Blocks {
    #[default]
    Nothing,
    Writes,
    ReadsAndWrites,
}

impl Blocks {
    pub fn as_str(&self) -> &'static str {
        match self {
            Blocks::Nothing => "nothing",
            Blocks::Writes => "writes",
            Blocks::ReadsAndWrites => "reads_and_writes",
        }
    }
}

/// A lock taken on a table other than the statement's main one (FK parents, indexes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtherLock {
    pub table: String,
    pub mode: String,
    pub blocks: Blocks,
}

/// The strongest lock a statement takes on its table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Lock {
    /// The engine's own name, e.g. `AccessExclusiveLock` or `INPLACE, LOCK=NONE`.
    pub mode: String,
    pub blocks: Blocks,
    pub table: Option<String>,
    #[serde(default)]
    pub other_locks: Vec<OtherLock>,
}

/// Estimated time holding the blocking lock and total duration, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub lock_seconds: f64,
    pub duration_seconds: f64,
}

/// One rule's verdict on a statement or a migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub rule: String,
    pub risk: Risk,
    pub reason: String,
    pub safe_alternative: Option<String>,
}

/// The verdict on one statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatementVerdict {
    /// Counts from 0 within its migration.
    pub index: usize,
    /// 1-based line in the migration file where the statement starts.
    pub line: usize,
    /// The statement text with secrets redacted.
    pub sql: String,
    pub risk: Risk,
    pub lock: Lock,
    pub rewrites_table: bool,
    /// `None` when the table size is unknown.
    pub estimate: Option<Estimate>,
    pub findings: Vec<Finding>,
}

/// The verdict on one migration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigrationVerdict {
    pub version: String,
    pub description: String,
    pub path: String,
    /// SHA-256 of the file's bytes (of the changeset/revision text for multi-migration files).
    pub checksum: String,
    pub engine: Engine,
    /// The source format that was detected or forced.
    pub format: String,
    /// Executor requested by a `-- cutover: executor=` directive, if any.
    pub executor: Option<String>,
    pub risk: Risk,
    /// Transaction-level findings (they count toward the migration, not a statement).
    pub findings: Vec<Finding>,
    pub statements: Vec<StatementVerdict>,
}

/// Version of the JSON contract; bump on incompatible change.
pub const PLAN_FORMAT_VERSION: u32 = 1;

/// The whole plan: what `cutover plan` prints and what approvals bind to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    /// SHA-256 over the ordered (version, checksum) pairs and the rules digest.
    pub plan_digest: String,
    pub rules_digest: String,
    pub engine_version: String,
    pub risk: Risk,
    pub migrations: Vec<MigrationVerdict>,
    /// What the target's history tables said (`plan --target`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<HistoryCheck>,
}

/// The history-table check of `plan --target`: only pending migrations are
/// planned; the rest are counted here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct HistoryCheck {
    /// The target read.
    pub target: String,
    /// Versions skipped because the history tables record them as applied.
    pub skipped_applied: Vec<String>,
    /// Versions applied with a different checksum than the file has now.
    pub changed_after_apply: Vec<String>,
    /// Limits of the check (e.g. Liquibase checksums not compared).
    pub notes: Vec<String>,
}
