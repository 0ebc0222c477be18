//! Engine-neutral operation facts: what a statement does, as far as risk goes.
//!
//! The analyzer (sqlparser, or the fallback recognizer) turns SQL into these facts;
//! the rules read only these facts, so rules never depend on a parser's AST.

use serde::Serialize;

/// How a column default is evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum DefaultKind {
    /// A literal or constant expression.
    Constant,
    /// Evaluated once per statement (`now()`, `CURRENT_TIMESTAMP`).
    Stable,
    /// Evaluated per row (`random()`, `gen_random_uuid()`, `nextval()`): the name.
    Volatile(String),
    /// A MySQL parenthesised expression default `DEFAULT (expr)`, with its text.
    Expression(String),
}

/// Generated column storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Generated {
    Stored,
    Virtual,
}

/// A column definition as written in ADD COLUMN / MODIFY / CHANGE / CREATE TABLE.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ColumnSpec {
    pub name: String,
    /// Normalised upper-case type text, e.g. `VARCHAR(20)`.
    pub data_type: String,
    pub not_null: bool,
    /// `NULL` written explicitly.
    pub null: bool,
    pub default: Option<DefaultKind>,
    pub generated: Option<Generated>,
    /// serial/bigserial, identity, AUTO_INCREMENT.
    pub auto_increment: bool,
    pub references: Option<String>,
    pub unique: bool,
    pub primary_key: bool,
    pub check: bool,
    /// MySQL FIRST/AFTER.
    pub positioned: bool,
    pub charset: Option<String>,
    pub collate: Option<String>,
}

/// Index flavours that behave differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum IndexKind {
    Normal,
    Fulltext,
    Spatial,
}

/// Kinds of constraint added by ALTER TABLE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ConstraintKind {
    Check {
        expr: String,
    },
    ForeignKey {
        references: String,
    },
    Unique,
    PrimaryKey,
    Exclude,
    /// MySQL `ADD INDEX`/`ADD KEY` inside ALTER TABLE.
    Index(IndexKind),
}

/// One sub-command of ALTER TABLE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Action {
    AddColumn(ColumnSpec),
    DropColumn {
        names: Vec<String>,
        cascade: bool,
    },
    AlterColumnType {
        column: String,
        new_type: String,
        using: bool,
    },
    /// MySQL MODIFY / CHANGE: a full new definition.
    ModifyColumn {
        column: String,
        new_name: Option<String>,
        spec: ColumnSpec,
    },
    SetNotNull {
        column: String,
    },
    DropNotNull {
        column: String,
    },
    SetDefault {
        column: String,
        default: DefaultKind,
    },
    DropDefault {
        column: String,
    },
    AddConstraint {
        kind: ConstraintKind,
        name: Option<String>,
        not_valid: bool,
        using_index: bool,
        columns: Vec<String>,
        unique: bool,
    },
    DropConstraint {
        name: String,
        cascade: bool,
    },
    DropPrimaryKey,
    DropForeignKey {
        name: String,
    },
    DropIndex {
        name: String,
    },
    ValidateConstraint {
        name: String,
    },
    RenameColumn {
        from: String,
        to: String,
    },
    RenameTo {
        to: String,
    },
    RenameIndex,
    /// PostgreSQL `ALTER CONSTRAINT name [NOT] DEFERRABLE …`: catalog only.
    AlterConstraint {
        name: String,
    },
    /// PostgreSQL storage changes that rewrite: SET LOGGED/UNLOGGED, TABLESPACE, ACCESS METHOD.
    PgRewrite(String),
    /// Storage parameters / statistics / CLUSTER ON: SUE, no rewrite.
    PgSetStorage,
    /// Catalog-only changes that still take ACCESS EXCLUSIVE: column SET STORAGE and
    /// SET COMPRESSION, [NO] INHERIT, [NOT] OF, SET SCHEMA (seen on PostgreSQL 15).
    PgCatalogExclusive(String),
    /// MySQL table options: ENGINE=, ROW_FORMAT=, FORCE, CONVERT TO CHARACTER SET …
    TableOption(TableOption),
    AttachPartition {
        partition: String,
    },
    DetachPartition {
        partition: String,
        concurrently: bool,
    },
    AddPartition,
    DropPartition,
    TruncatePartition,
    /// PARTITION BY / REMOVE PARTITIONING.
    Repartition,
    /// REORGANIZE / COALESCE / REBUILD / OPTIMIZE PARTITION …
    PartitionMaintenance(String),
    Trigger,
    RowLevelSecurity,
    Owner,
    /// A sub-command the analyzer does not model, with its text.
    Unknown(String),
}

/// MySQL table options inside ALTER TABLE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum TableOption {
    /// `ENGINE=x` (lower-case name).
    Engine(String),
    RowFormat,
    KeyBlockSize,
    Force,
    ConvertCharset,
    DefaultCharset,
    AutoIncrement,
    Comment,
}

/// What a statement does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Op {
    CreateTable {
        table: String,
        or_replace: bool,
        temporary: bool,
        references: Vec<String>,
        as_select: bool,
        partition_of: Option<String>,
        /// `IF NOT EXISTS`.
        if_not_exists: bool,
    },
    CreateIndex {
        table: String,
        name: Option<String>,
        unique: bool,
        concurrently: bool,
        kind: IndexKind,
        columns: Vec<String>,
        /// `IF NOT EXISTS`.
        if_not_exists: bool,
    },
    DropIndex {
        names: Vec<String>,
        table: Option<String>,
        concurrently: bool,
        cascade: bool,
        /// `IF EXISTS`.
        if_exists: bool,
    },
    DropTable {
        tables: Vec<String>,
        cascade: bool,
        /// `IF EXISTS`.
        if_exists: bool,
    },
    /// DROP SCHEMA / DATABASE.
    DropSchema {
        names: Vec<String>,
        cascade: bool,
    },
    /// DROP VIEW / SEQUENCE / TYPE / FUNCTION / …: the object kind.
    DropOther {
        kind: String,
        names: Vec<String>,
        cascade: bool,
    },
    Truncate {
        tables: Vec<String>,
        cascade: bool,
    },
    RenameTables {
        pairs: Vec<(String, String)>,
    },
    AlterTable {
        table: String,
        actions: Vec<Action>,
        algorithm: Option<String>,
        lock: Option<String>,
    },
    Reindex {
        target: String,
        table_level: bool,
        concurrently: bool,
    },
    Vacuum {
        full: bool,
        table: Option<String>,
    },
    Cluster {
        table: Option<String>,
    },
    Optimize {
        table: String,
    },
    RefreshMatView {
        name: String,
        concurrently: bool,
    },
    CreateTrigger {
        table: String,
    },
    DropTrigger {
        table: Option<String>,
    },
    AlterTypeAddValue {
        name: String,
    },
    AlterTypeRenameValue {
        name: String,
    },
    /// `CREATE DOMAIN name … [CHECK …]`.
    CreateDomain {
        name: String,
        check: bool,
    },
    /// `ALTER DOMAIN name ADD CONSTRAINT|CHECK …`.
    AlterDomainAddConstraint {
        name: String,
    },
    /// PostgreSQL `CREATE RULE … ON event TO table DO [ALSO|INSTEAD] …`.
    CreateRule {
        table: String,
        /// SELECT, INSERT, UPDATE or DELETE.
        event: String,
        instead: bool,
    },
    /// PostgreSQL `DROP OWNED BY role, …`: drops every object the roles own.
    DropOwned {
        roles: Vec<String>,
    },
    /// `CREATE TYPE name …`: the name, and whether it is an enum.
    CreateType {
        name: String,
        is_enum: bool,
    },
    /// `ALTER SCHEMA … RENAME TO …`.
    RenameSchema {
        name: String,
    },
    Update {
        table: String,
        has_where: bool,
    },
    Delete {
        table: String,
        has_where: bool,
    },
    Insert {
        table: String,
        from_select: bool,
    },
    Select,
    /// `SET [LOCAL|SESSION] name = value`.
    Set {
        name: String,
        value: String,
    },
    /// MySQL `SET @var = …` with SQL found inside its string literals.
    SetUserVar {
        name: String,
        embedded: Vec<String>,
    },
    /// `PREPARE name FROM @var` / `FROM '…'`: the SQL it will run, when known.
    Prepare {
        var: Option<String>,
        sql: Option<String>,
    },
    Begin,
    Commit,
    Rollback,
    LockTable {
        tables: Vec<String>,
        mode: String,
    },
    /// Other statements that take no table lock of note (CREATE VIEW/FUNCTION/
    /// SEQUENCE/EXTENSION/SCHEMA, GRANT, COMMENT, ANALYZE, …): the kind.
    Benign(String),
    /// A PostgreSQL `DO` block or procedure call: runs unknown SQL.
    OpaqueCode(String),
    /// Nothing could be made of it.
    Unanalyzable {
        message: String,
    },
}

impl Op {
    /// The main table the statement acts on, as written.
    pub fn table(&self) -> Option<&str> {
        match self {
            Op::CreateTable { table, .. }
            | Op::CreateIndex { table, .. }
            | Op::AlterTable { table, .. }
            | Op::Optimize { table }
            | Op::CreateTrigger { table }
            | Op::Update { table, .. }
            | Op::Delete { table, .. }
            | Op::Insert { table, .. } => Some(table),
            Op::DropTable { tables, .. }
            | Op::Truncate { tables, .. }
            | Op::LockTable { tables, .. } => tables.first().map(String::as_str),
            Op::RenameTables { pairs } => pairs.first().map(|p| p.0.as_str()),
            Op::Reindex {
                target,
                table_level: true,
                ..
            } => Some(target),
            Op::Vacuum { table, .. } | Op::Cluster { table } => table.as_deref(),
            Op::RefreshMatView { name, .. } => Some(name),
            Op::DropIndex { table, .. } | Op::DropTrigger { table } => table.as_deref(),
            _ => None,
        }
    }
}

/// Which analyzer produced the facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ParsedBy {
    Sqlparser,
    /// sqlparser failed; the token recognizer identified it.
    Fallback,
}

/// The analysis of one statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Analysis {
    pub op: Op,
    pub parsed_by: ParsedBy,
    /// sqlparser's message when it failed.
    pub parse_error: Option<String>,
}
