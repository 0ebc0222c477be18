//! Migration sources: files on disk → ordered [`Migration`]s with statements.
//!
//! Formats are auto-detected per file (see [`detect`]) and can be forced. Each
//! migration keeps its version, checksum and the transaction behaviour of the tool
//! that would normally apply it, because the classifier's transaction checks and the
//! native executor must agree with that tool.

mod alembic;
mod directives;
mod discover;
mod liquibase;
mod naming;
mod updown;

pub use directives::{BackfillDirective, Directives};
pub use discover::{LoadOptions, load_paths};
pub use naming::compare_versions;

use crate::model::Engine;
use crate::sql::split::RawStatement;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How migrations in a file are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceFormat {
    Flyway,
    GolangMigrate,
    Diesel,
    Liquibase,
    Alembic,
    /// goose: `-- +goose Up` / `-- +goose Down` in one file.
    Goose,
    /// dbmate: `-- migrate:up` / `-- migrate:down` in one file.
    Dbmate,
    Plain,
}

impl SourceFormat {
    pub fn as_str(&self) -> &'static str {
        match self {
            SourceFormat::Flyway => "flyway",
            SourceFormat::GolangMigrate => "golang-migrate",
            SourceFormat::Diesel => "diesel",
            SourceFormat::Liquibase => "liquibase",
            SourceFormat::Alembic => "alembic",
            SourceFormat::Goose => "goose",
            SourceFormat::Dbmate => "dbmate",
            SourceFormat::Plain => "plain",
        }
    }
}

impl std::str::FromStr for SourceFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "flyway" => SourceFormat::Flyway,
            "golang-migrate" | "migrate" => SourceFormat::GolangMigrate,
            "diesel" => SourceFormat::Diesel,
            "liquibase" => SourceFormat::Liquibase,
            "alembic" => SourceFormat::Alembic,
            "goose" => SourceFormat::Goose,
            "dbmate" => SourceFormat::Dbmate,
            "plain" | "sql" => SourceFormat::Plain,
            other => {
                return Err(format!(
                    "unknown format '{other}' (expected flyway, golang-migrate, diesel, liquibase, alembic, goose, dbmate or plain)"
                ));
            }
        })
    }
}

/// How the tool that owns a migration wraps it in transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxWrap {
    /// The tool runs the whole migration in one transaction (Flyway on PostgreSQL,
    /// a Liquibase changeset, Diesel).
    Whole,
    /// Statements run as written: explicit BEGIN/COMMIT make transactions, the rest
    /// autocommit (Alembic offline SQL, plain files, non-transactional changesets).
    AsWritten,
}

/// One migration: a versioned unit of change as its tool sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Migration {
    pub version: String,
    pub description: String,
    pub path: PathBuf,
    /// Lowercase hex SHA-256 of the migration's bytes.
    pub checksum: String,
    pub engine: Engine,
    pub format: SourceFormat,
    /// Flyway repeatable (`R__`) migrations run after all versioned ones.
    pub repeatable: bool,
    pub tx: TxWrap,
    pub directives: Directives,
    #[serde(skip)]
    pub statements: Vec<RawStatement>,
    /// The migration's own text (what the checksum covers).
    #[serde(skip)]
    pub text: String,
}

/// Bad input: always names the file and, where known, the line.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Syntax {
        path: String,
        line: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Other { path: String, message: String },
}

/// SHA-256 of bytes as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}
