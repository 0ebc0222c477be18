//! sqlparser-based analysis: one statement's text → [`Analysis`].
//!
//! The parser's AST is mapped to engine-neutral [`Op`] facts. Where the parser
//! fails, the token recognizer in [`super::fallback`] takes over; what neither
//! understands becomes [`Op::Unanalyzable`], which the rules classify as high.

use super::fallback;
use super::names::{norm_ident, norm_name};
use super::ops::*;
use crate::model::Engine;
use sqlparser::ast::{
    self, AlterColumnOperation, AlterTableOperation, ColumnOption, Expr, ObjectType, Statement,
    TableConstraint,
};
use sqlparser::dialect::{MySqlDialect, PostgreSqlDialect};
use sqlparser::parser::Parser;

/// Statements longer than this are not parsed: the parser's memory grows by a few
/// hundred bytes per input byte, and a migration statement this long is generated
/// data, not reviewable DDL. They are unanalyzable (high), never a memory spike.
pub const MAX_PARSED_STATEMENT_BYTES: usize = 128 * 1024;

/// Analyzes one statement (without its terminator).
pub fn analyze(sql: &str, engine: Engine) -> Analysis {
    if sql.len() > MAX_PARSED_STATEMENT_BYTES {
        return unanalyzable(format!(
            "statement of {} KiB is too large to analyze (limit {} KiB)",
            sql.len() / 1024,
            MAX_PARSED_STATEMENT_BYTES / 1024
        ));
    }
    // MySQL `/*!NNNNN … */` and MariaDB `/*M!NNNNNN … */` run: analyze what they hold.
    let unwrapped;
    let sql = match engine {
        Engine::Mysql => match unwrap_executable_comments(sql) {
            Some(s) => {
                unwrapped = s;
                unwrapped.as_str()
            }
            None => sql,
        },
        Engine::Postgres => sql,
    };
    if let Some(what) = foreign_syntax(sql, engine) {
        return unanalyzable(format!("{what} is not {engine} syntax"));
    }
    if let Some(op) = fallback::pre_parse(sql, engine) {
        return Analysis {
            op,
            parsed_by: ParsedBy::Sqlparser,
            parse_error: None,
        };
    }
    let parsed = match engine {
        Engine::Postgres => Parser::parse_sql(&PostgreSqlDialect {}, sql),
        Engine::Mysql => Parser::parse_sql(&MySqlDialect {}, sql),
    };
    match parsed {
        Ok(stmts) if stmts.len() == 1 => {
            let op = map_statement(&stmts[0], engine);
            if let Op::Unanalyzable { .. } = op
                && let Some(op) = fallback::recognize(sql, engine)
            {
                return Analysis {
                    op,
                    parsed_by: ParsedBy::Fallback,
                    parse_error: None,
                };
            }
            Analysis {
                op,
                parsed_by: ParsedBy::Sqlparser,
                parse_error: None,
            }
        }
        Ok(stmts) if stmts.is_empty() => Analysis {
            op: Op::Benign("empty".into()),
            parsed_by: ParsedBy::Sqlparser,
            parse_error: None,
        },
        // The splitter saw one statement where the engine sees several (inside an
        // executable comment, say): reading only the first would hide the others.
        Ok(_) => unanalyzable("several statements where one was expected".into()),
        Err(e) => fallback_or_unanalyzable(sql, engine, e.to_string()),
    }
}

fn unanalyzable(message: String) -> Analysis {
    Analysis {
        op: Op::Unanalyzable {
            message: message.clone(),
        },
        parsed_by: ParsedBy::Fallback,
        parse_error: Some(message),
    }
}

/// Replaces MySQL/MariaDB executable comments by their content (the version number
/// dropped); `None` when there is none. Quotes are respected.
pub fn unwrap_executable_comments(sql: &str) -> Option<String> {
    let b = sql.as_bytes();
    if !sql.contains("/*!") && !sql.contains("/*M!") {
        return None;
    }
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    let mut copied = 0;
    let mut found = false;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    i += if b[i] == b'\\' && q != b'`' { 2 } else { 1 };
                }
                i += 1;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let open = if b.get(i + 2) == Some(&b'!') {
                    3
                } else if b.get(i + 2) == Some(&b'M') && b.get(i + 3) == Some(&b'!') {
                    4
                } else {
                    0
                };
                let close = sql[i + 2..].find("*/").map(|p| p + i + 2);
                let Some(close) = close else { break };
                if open > 0 {
                    found = true;
                    out.push_str(&sql[copied..i]);
                    let mut j = i + open;
                    while j < close && b[j].is_ascii_digit() {
                        j += 1;
                    }
                    out.push(' ');
                    out.push_str(&sql[j..close]);
                    out.push(' ');
                    copied = close + 2;
                }
                i = close + 2;
            }
            _ => i += 1,
        }
    }
    if !found {
        return None;
    }
    out.push_str(&sql[copied.min(sql.len())..]);
    Some(out)
}

/// Why the engine's grammar rejects `sql`, as far as checks independent of the
/// analysis can tell (other-dialect syntax, merged statements, dangling commas).
pub fn grammar_rejects(sql: &str, engine: Engine) -> Option<String> {
    if let Some(what) = foreign_syntax(sql, engine) {
        return Some(format!("{what} is not {engine} syntax"));
    }
    fallback::grammar_rejects(sql, engine).map(str::to_string)
}

/// Case-insensitive substring test without allocating (`needle` is lower-case).
pub(crate) fn contains_ci(hay: &str, needle: &[u8]) -> bool {
    let h = hay.as_bytes();
    let Some(&first) = needle.first() else {
        return true;
    };
    h.len() >= needle.len()
        && (0..=h.len() - needle.len()).any(|i| {
            h[i].to_ascii_lowercase() == first
                && h[i..i + needle.len()].eq_ignore_ascii_case(needle)
        })
}

/// Other dialects' syntax that sqlparser accepts but the engine rejects (MySQL
/// `UNSIGNED` or backticks on PostgreSQL, SQLite `AUTOINCREMENT`).
fn foreign_syntax(sql: &str, engine: Engine) -> Option<&'static str> {
    use sqlparser::tokenizer::{Token, Tokenizer};
    let words: &[&'static str] = match engine {
        Engine::Postgres => &["unsigned", "zerofill", "auto_increment", "autoincrement"],
        Engine::Mysql => &["autoincrement"],
    };
    let backtick = engine == Engine::Postgres && sql.contains('`');
    let cast = engine == Engine::Mysql && sql.contains("::");
    if !backtick && !cast && !words.iter().any(|w| contains_ci(sql, w.as_bytes())) {
        return None;
    }
    // Confirm on tokens: inside a string or quoted identifier they are fine.
    let toks = match engine {
        Engine::Postgres => Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize(),
        Engine::Mysql => Tokenizer::new(&MySqlDialect {}, sql).tokenize(),
    };
    let Ok(toks) = toks else {
        return backtick.then_some("a backtick-quoted identifier");
    };
    for t in &toks {
        match t {
            Token::Word(w) if w.quote_style.is_none() => {
                let v = w.value.to_ascii_lowercase();
                if let Some(found) = words.iter().find(|k| **k == v) {
                    return Some(match *found {
                        "unsigned" => "UNSIGNED (MySQL)",
                        "zerofill" => "ZEROFILL (MySQL)",
                        "auto_increment" => "AUTO_INCREMENT (MySQL)",
                        _ => "AUTOINCREMENT (SQLite)",
                    });
                }
            }
            Token::Word(w) if w.quote_style == Some('`') && engine == Engine::Postgres => {
                return Some("a backtick-quoted identifier (MySQL)");
            }
            Token::Char('`') if engine == Engine::Postgres => {
                return Some("a backtick-quoted identifier (MySQL)");
            }
            Token::DoubleColon if engine == Engine::Mysql => {
                return Some("a :: cast (PostgreSQL)");
            }
            _ => {}
        }
    }
    None
}

fn fallback_or_unanalyzable(sql: &str, engine: Engine, message: String) -> Analysis {
    match fallback::recognize(sql, engine) {
        Some(op) => Analysis {
            op,
            parsed_by: ParsedBy::Fallback,
            parse_error: Some(message),
        },
        None => Analysis {
            op: Op::Unanalyzable {
                message: message.clone(),
            },
            parsed_by: ParsedBy::Fallback,
            parse_error: Some(message),
        },
    }
}

fn map_statement(s: &Statement, e: Engine) -> Op {
    match s {
        Statement::CreateTable(ct) => {
            let mut references: Vec<String> = ct
                .constraints
                .iter()
                .filter_map(|c| match c {
                    TableConstraint::ForeignKey(fk) => Some(norm_name(&fk.foreign_table, e)),
                    _ => None,
                })
                .collect();
            for col in &ct.columns {
                if let Some(r) = column_spec(col, e, false).references {
                    references.push(r);
                }
            }
            Op::CreateTable {
                table: norm_name(&ct.name, e),
                or_replace: ct.or_replace,
                temporary: ct.temporary,
                references,
                as_select: ct.query.is_some(),
                partition_of: ct.partition_of.as_ref().map(|p| norm_name(p, e)),
                if_not_exists: ct.if_not_exists,
            }
        }
        Statement::CreateIndex(ci) => {
            let using = ci
                .using
                .as_ref()
                .map(|u| u.to_string().to_ascii_lowercase())
                .unwrap_or_default();
            Op::CreateIndex {
                table: norm_name(&ci.table_name, e),
                name: ci.name.as_ref().map(|n| norm_name(n, e)),
                unique: ci.unique,
                concurrently: ci.concurrently,
                if_not_exists: ci.if_not_exists,
                kind: if using.contains("fulltext") {
                    IndexKind::Fulltext
                } else if using.contains("spatial") {
                    IndexKind::Spatial
                } else {
                    IndexKind::Normal
                },
                columns: ci
                    .columns
                    .iter()
                    .map(|c| c.column.expr.to_string())
                    .collect(),
            }
        }
        Statement::AlterTable(at) => {
            let mut actions = Vec::new();
            let mut algorithm = None;
            let mut lock = None;
            for op in &at.operations {
                match op {
                    AlterTableOperation::Algorithm { algorithm: a, .. } => {
                        algorithm = Some(a.to_string().to_ascii_uppercase())
                    }
                    AlterTableOperation::Lock { lock: l, .. } => {
                        lock = Some(l.to_string().to_ascii_uppercase())
                    }
                    other => actions.push(map_alter(other, e)),
                }
            }
            Op::AlterTable {
                table: norm_name(&at.name, e),
                actions,
                algorithm,
                lock,
            }
        }
        Statement::Drop {
            object_type,
            names,
            cascade,
            table,
            if_exists,
            ..
        } => {
            let names: Vec<String> = names.iter().map(|n| norm_name(n, e)).collect();
            match object_type {
                ObjectType::Table => Op::DropTable {
                    tables: names,
                    cascade: *cascade,
                    if_exists: *if_exists,
                },
                ObjectType::Index => Op::DropIndex {
                    names,
                    table: table.as_ref().map(|t| norm_name(t, e)),
                    concurrently: false,
                    cascade: *cascade,
                    if_exists: *if_exists,
                },
                ObjectType::Schema | ObjectType::Database => Op::DropSchema {
                    names,
                    cascade: *cascade,
                },
                other => Op::DropOther {
                    kind: other.to_string().to_ascii_lowercase(),
                    names,
                    cascade: *cascade,
                },
            }
        }
        Statement::Truncate(t) => Op::Truncate {
            tables: t
                .table_names
                .iter()
                .map(|t| norm_name(&t.name, e))
                .collect(),
            cascade: t
                .cascade
                .as_ref()
                .is_some_and(|c| c.to_string().eq_ignore_ascii_case("cascade")),
        },
        Statement::RenameTable(rs) => Op::RenameTables {
            pairs: rs
                .iter()
                .map(|r| (norm_name(&r.old_name, e), norm_name(&r.new_name, e)))
                .collect(),
        },
        // ORDER BY/LIMIT bound how many rows, not which: without a WHERE that
        // restricts something, the statement may touch any row.
        Statement::Update(u) => Op::Update {
            table: table_factor_name(&u.table.relation, e),
            has_where: u.selection.as_ref().is_some_and(|w| !bounds_nothing(w)),
        },
        Statement::Delete(d) => {
            let table = d
                .tables
                .first()
                .map(|n| norm_name(n, e))
                .or_else(|| match &d.from {
                    ast::FromTable::WithFromKeyword(t) | ast::FromTable::WithoutKeyword(t) => {
                        t.first().map(|t| table_factor_name(&t.relation, e))
                    }
                })
                .unwrap_or_default();
            Op::Delete {
                table,
                has_where: d.selection.as_ref().is_some_and(|w| !bounds_nothing(w)),
            }
        }
        Statement::Insert(i) if i.source.as_ref().is_some_and(|q| has_hidden_dml(q)) => {
            let mut dml = Vec::new();
            if let Some(q) = &i.source {
                query_dml(q, &mut dml);
            }
            worst_of(dml.into_iter().map(|s| map_statement(s, e)))
        }
        Statement::Insert(i) => Op::Insert {
            table: match &i.table {
                ast::TableObject::TableName(n) => norm_name(n, e),
                other => other.to_string(),
            },
            from_select: i
                .source
                .as_ref()
                .is_some_and(|q| !matches!(*q.body, ast::SetExpr::Values(_))),
        },
        Statement::Query(q) => {
            // Data-modifying CTEs (`WITH d AS (DELETE …) SELECT …`) and `WITH … UPDATE`.
            let mut dml = Vec::new();
            query_dml(q, &mut dml);
            if dml.is_empty() {
                Op::Select
            } else {
                worst_of(dml.into_iter().map(|s| map_statement(s, e)))
            }
        }
        Statement::Explain {
            analyze,
            statement,
            options,
            ..
        } => {
            // EXPLAIN ANALYZE executes the statement.
            let runs = *analyze
                || options.iter().flatten().any(|o| {
                    o.name.value.eq_ignore_ascii_case("analyze")
                        && !o.arg.as_ref().is_some_and(|a| {
                            matches!(
                                a.to_string().to_ascii_lowercase().as_str(),
                                "false" | "off" | "0"
                            )
                        })
                });
            if runs {
                map_statement(statement, e)
            } else {
                Op::Benign("explain".into())
            }
        }
        Statement::Set(set) => map_set(set, e),
        Statement::StartTransaction { .. } => Op::Begin,
        Statement::Commit { .. } => Op::Commit,
        Statement::Rollback { .. } => Op::Rollback,
        Statement::Savepoint { .. } | Statement::ReleaseSavepoint { .. } => {
            Op::Benign("savepoint".into())
        }
        Statement::Vacuum(v) => Op::Vacuum {
            full: v.full,
            table: v.table_name.as_ref().map(|n| norm_name(n, e)),
        },
        Statement::RefreshMaterializedView(r) => Op::RefreshMatView {
            name: norm_name(&r.name, e),
            concurrently: r.concurrently,
        },
        Statement::OptimizeTable { name, .. } => Op::Optimize {
            table: norm_name(name, e),
        },
        Statement::CreateTrigger(t) => Op::CreateTrigger {
            table: norm_name(&t.table_name, e),
        },
        Statement::DropTrigger(t) => Op::DropTrigger {
            table: t.table_name.as_ref().map(|n| norm_name(n, e)),
        },
        Statement::AlterType(at) => match &at.operation {
            ast::AlterTypeOperation::AddValue(_) => Op::AlterTypeAddValue {
                name: norm_name(&at.name, e),
            },
            ast::AlterTypeOperation::RenameValue(_) => Op::AlterTypeRenameValue {
                name: norm_name(&at.name, e),
            },
            ast::AlterTypeOperation::Rename(_) => Op::AlterTypeRenameValue {
                name: norm_name(&at.name, e),
            },
        },
        Statement::CreateDomain(d) => Op::CreateDomain {
            name: norm_name(&d.name, e),
            check: d.to_string().to_ascii_uppercase().contains("CHECK"),
        },
        Statement::Prepare { statement, .. } => Op::Prepare {
            var: None,
            sql: Some(statement.to_string()),
        },
        Statement::LockTables { .. } => Op::LockTable {
            tables: vec![],
            mode: "LOCK TABLES".into(),
        },
        Statement::Lock(l) => {
            let text = l.to_string();
            Op::LockTable {
                tables: vec![],
                mode: text,
            }
        }
        Statement::Call(_) => Op::OpaqueCode("CALL".into()),
        Statement::Analyze(_) => Op::Benign("analyze".into()),
        Statement::CreateView(_) => Op::Benign("create view".into()),
        Statement::CreateFunction(_) | Statement::CreateProcedure { .. } => {
            Op::Benign("create function".into())
        }
        Statement::DropFunction(_) | Statement::DropProcedure { .. } => {
            Op::Benign("drop function".into())
        }
        Statement::CreateSequence { .. } => Op::Benign("create sequence".into()),
        Statement::CreateExtension(_) => Op::Benign("create extension".into()),
        Statement::DropExtension(_) => Op::Benign("drop extension".into()),
        Statement::CreateSchema { .. } => Op::Benign("create schema".into()),
        Statement::CreateDatabase { .. } => Op::Benign("create database".into()),
        Statement::CreateType { name, .. } => Op::CreateType {
            name: norm_name(name, e),
            is_enum: s.to_string().to_ascii_uppercase().contains(" AS ENUM"),
        },
        Statement::CreateRole(_)
        | Statement::CreateUser(_)
        | Statement::AlterUser(_)
        | Statement::AlterRole { .. } => Op::Benign("role".into()),
        Statement::Grant(_)
        | Statement::Revoke(_)
        | Statement::GrantRole(_)
        | Statement::RevokeRole(_)
        | Statement::AlterDefaultPrivileges(_) => Op::Benign("grant".into()),
        Statement::Comment { .. } => Op::Benign("comment".into()),
        Statement::CreatePolicy(_) | Statement::AlterPolicy(_) | Statement::DropPolicy(_) => {
            Op::Benign("policy".into())
        }
        Statement::AlterSchema(a) => {
            let text = a.to_string();
            if text.to_ascii_uppercase().contains(" RENAME TO ") {
                Op::RenameSchema {
                    name: norm_name(&a.name, e),
                }
            } else {
                Op::Benign("alter schema".into())
            }
        }
        Statement::AlterView(_) => Op::Benign("alter view".into()),
        Statement::AlterFunction(_) => Op::Benign("alter function".into()),
        Statement::AlterIndex { .. } => Op::Benign("alter index".into()),
        Statement::CreateCollation(_) | Statement::AlterCollation(_) => {
            Op::Benign("collation".into())
        }
        Statement::Use(_) => Op::Benign("use".into()),
        Statement::Deallocate { .. } => Op::Benign("deallocate".into()),
        Statement::Execute { .. } => Op::Benign("execute".into()),
        Statement::ShowVariable { .. }
        | Statement::ShowVariables { .. }
        | Statement::ShowCreate { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowTables { .. } => Op::Benign("show".into()),
        Statement::Flush { .. } => Op::Benign("flush".into()),
        Statement::Declare { .. } => Op::Benign("declare".into()),
        Statement::CreateRule(r) => Op::CreateRule {
            table: norm_name(&r.table_name, e),
            event: r.event.to_string(),
            instead: matches!(r.do_kind, Some(ast::CreateRuleDoKind::Instead)),
        },
        Statement::DropRule(_) => Op::Benign("rule".into()),
        Statement::CreateOperator(_)
        | Statement::CreateOperatorClass(_)
        | Statement::CreateOperatorFamily(_)
        | Statement::CreateAggregate(_)
        | Statement::CreateTextSearch(_) => Op::Benign("create operator".into()),
        Statement::DropDomain(_)
        | Statement::DropOperator(_)
        | Statement::DropOperatorClass(_)
        | Statement::DropOperatorFamily(_) => Op::Benign("drop object".into()),
        Statement::AlterTrigger(_) => Op::Benign("alter trigger".into()),
        Statement::Copy { .. } => Op::Insert {
            table: "copy".into(),
            from_select: true,
        },
        Statement::Kill { .. } => Op::Unanalyzable {
            message: "KILL in a migration".into(),
        },
        _ => Op::Unanalyzable {
            message: format!(
                "statement kind not modelled: {}",
                first_words(&s.to_string(), 3)
            ),
        },
    }
}

/// Collects the data-modifying statements of a query: its CTEs' and its body's.
fn query_dml<'a>(q: &'a ast::Query, out: &mut Vec<&'a Statement>) {
    if let Some(w) = &q.with {
        for c in &w.cte_tables {
            query_dml(&c.query, out);
        }
    }
    set_expr_dml(&q.body, out);
}

fn set_expr_dml<'a>(b: &'a ast::SetExpr, out: &mut Vec<&'a Statement>) {
    match b {
        ast::SetExpr::Insert(s)
        | ast::SetExpr::Update(s)
        | ast::SetExpr::Delete(s)
        | ast::SetExpr::Merge(s) => out.push(s),
        ast::SetExpr::Query(q) => query_dml(q, out),
        ast::SetExpr::SetOperation { left, right, .. } => {
            set_expr_dml(left, out);
            set_expr_dml(right, out);
        }
        _ => {}
    }
}

fn has_hidden_dml(q: &ast::Query) -> bool {
    let mut v = Vec::new();
    query_dml(q, &mut v);
    !v.is_empty()
}

/// The riskiest of several operations one statement performs.
fn worst_of(ops: impl Iterator<Item = Op>) -> Op {
    let rank = |o: &Op| match o {
        Op::Unanalyzable { .. } => 4,
        Op::Update {
            has_where: false, ..
        }
        | Op::Delete {
            has_where: false, ..
        } => 3,
        Op::Update { .. } | Op::Delete { .. } => 2,
        Op::Insert { .. } => 1,
        _ => 0,
    };
    ops.max_by_key(rank).unwrap_or(Op::Select)
}

/// True when a WHERE predicate restricts nothing: it folds to a constant true
/// (`true`, `1=1`, `NOT false`, `x OR true`, MySQL `WHERE 1`, `id = id`).
pub fn bounds_nothing(e: &Expr) -> bool {
    const_truth(e) == Some(true)
}

/// The constant truth value of a predicate, when it has one (NULL counts as false).
fn const_truth(e: &Expr) -> Option<bool> {
    use ast::{BinaryOperator as B, UnaryOperator as U, Value as V};
    match e {
        Expr::Value(v) => match &v.value {
            V::Boolean(b) => Some(*b),
            V::Null => Some(false),
            V::Number(n, _) => n.parse::<f64>().ok().map(|x| x != 0.0),
            _ => None,
        },
        Expr::Nested(x) => const_truth(x),
        Expr::UnaryOp { op: U::Not, expr } => const_truth(expr).map(|b| !b),
        Expr::IsTrue(x) | Expr::IsNotFalse(x) => const_truth(x),
        Expr::IsFalse(x) | Expr::IsNotTrue(x) => const_truth(x).map(|b| !b),
        Expr::IsNotNull(x) => match &**x {
            Expr::Value(v) if !matches!(v.value, V::Null) => Some(true),
            _ => literal_number(x).map(|_| true),
        },
        Expr::BinaryOp { left, op, right } => match op {
            B::Or => match (const_truth(left), const_truth(right)) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            },
            B::And => match (const_truth(left), const_truth(right)) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            },
            B::Eq | B::NotEq | B::Lt | B::LtEq | B::Gt | B::GtEq => {
                if let (Some(a), Some(b)) = (literal_number(left), literal_number(right)) {
                    return Some(match op {
                        B::Eq => a == b,
                        B::NotEq => a != b,
                        B::Lt => a < b,
                        B::LtEq => a <= b,
                        B::Gt => a > b,
                        _ => a >= b,
                    });
                }
                // The same expression on both sides: true for every non-NULL row.
                let same = left.to_string() == right.to_string() && !has_call(left);
                match op {
                    B::Eq | B::LtEq | B::GtEq if same => Some(true),
                    B::NotEq | B::Lt | B::Gt if same => Some(false),
                    _ => None,
                }
            }
            _ => None,
        },
        _ => None,
    }
}

fn literal_number(e: &Expr) -> Option<f64> {
    match e {
        Expr::Value(v) => match &v.value {
            ast::Value::Number(n, _) => n.parse().ok(),
            ast::Value::SingleQuotedString(s) => s.parse().ok(),
            ast::Value::Boolean(b) => Some(if *b { 1.0 } else { 0.0 }),
            _ => None,
        },
        Expr::Nested(x) => literal_number(x),
        Expr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            expr,
        } => literal_number(expr).map(|x| -x),
        _ => None,
    }
}

/// A function call may be volatile (`random() = random()`).
fn has_call(e: &Expr) -> bool {
    e.to_string().contains('(')
}

fn first_words(s: &str, n: usize) -> String {
    s.split_whitespace().take(n).collect::<Vec<_>>().join(" ")
}

fn table_factor_name(t: &ast::TableFactor, e: Engine) -> String {
    match t {
        ast::TableFactor::Table { name, .. } => norm_name(name, e),
        other => other.to_string(),
    }
}

fn map_set(set: &ast::Set, e: Engine) -> Op {
    match set {
        ast::Set::SingleAssignment {
            variable, values, ..
        } => {
            let name = variable.to_string();
            if name.starts_with('@') && !name.starts_with("@@") {
                let mut embedded = Vec::new();
                for v in values {
                    collect_sql_strings(&v.to_string(), &mut embedded);
                }
                return Op::SetUserVar { name, embedded };
            }
            let name = name.trim_start_matches("@@").to_ascii_lowercase();
            let name = name
                .strip_prefix("session.")
                .or_else(|| name.strip_prefix("local."))
                .unwrap_or(&name)
                .to_string();
            let value = values
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            Op::Set { name, value }
        }
        ast::Set::MultipleAssignments { assignments } => {
            // `SET a = 1, b = 2`: keep the first that matters for the rules.
            let mut first = None;
            for a in assignments {
                let name = a
                    .name
                    .to_string()
                    .trim_start_matches("@@")
                    .to_ascii_lowercase();
                let value = a.value.to_string();
                if name.contains("timeout") || first.is_none() {
                    first = Some(Op::Set { name, value });
                }
            }
            first.unwrap_or(Op::Benign("set".into()))
        }
        _ => {
            let _ = e;
            Op::Benign("set".into())
        }
    }
}

/// Finds string literals that look like SQL statements (MySQL `SET @s = 'ALTER …'`).
pub fn collect_sql_strings(text: &str, out: &mut Vec<String>) {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\'' || b[i] == b'"' {
            let q = b[i];
            let mut j = i + 1;
            let mut s = String::new();
            while j < b.len() {
                if b[j] == b'\\' && j + 1 < b.len() {
                    s.push(b[j + 1] as char);
                    j += 2;
                    continue;
                }
                if b[j] == q {
                    if b.get(j + 1) == Some(&q) {
                        s.push(q as char);
                        j += 2;
                        continue;
                    }
                    break;
                }
                s.push(b[j] as char);
                j += 1;
            }
            let head = s.trim_start().to_ascii_uppercase();
            if [
                "ALTER ",
                "CREATE ",
                "DROP ",
                "RENAME ",
                "TRUNCATE ",
                "UPDATE ",
                "DELETE ",
                "INSERT ",
                "OPTIMIZE ",
            ]
            .iter()
            .any(|k| head.starts_with(k))
            {
                // Re-read as UTF-8 from the original slice to keep non-ASCII intact.
                let raw = &text[i + 1..j.min(text.len())];
                let unescaped = if q == b'"' {
                    raw.replace("\"\"", "\"")
                } else {
                    raw.replace("''", "'").replace("\\'", "'")
                };
                out.push(unescaped);
            }
            i = j + 1;
        } else {
            i += 1;
        }
    }
}

fn map_alter(op: &AlterTableOperation, e: Engine) -> Action {
    use AlterTableOperation as A;
    match op {
        A::AddColumn {
            column_def,
            column_position,
            ..
        } => {
            let mut spec = column_spec(column_def, e, false);
            spec.positioned = column_position.is_some();
            Action::AddColumn(spec)
        }
        A::DropColumn {
            column_names,
            drop_behavior,
            ..
        } => Action::DropColumn {
            names: column_names.iter().map(|i| norm_ident(i, e)).collect(),
            cascade: is_cascade(drop_behavior),
        },
        A::AlterColumn { column_name, op } => {
            let column = norm_ident(column_name, e);
            match op {
                AlterColumnOperation::SetNotNull => Action::SetNotNull { column },
                AlterColumnOperation::DropNotNull => Action::DropNotNull { column },
                AlterColumnOperation::SetDefault { value } => Action::SetDefault {
                    column,
                    default: default_kind(value, e),
                },
                AlterColumnOperation::DropDefault => Action::DropDefault { column },
                AlterColumnOperation::SetDataType {
                    data_type, using, ..
                } => Action::AlterColumnType {
                    column,
                    new_type: data_type.to_string().to_ascii_uppercase(),
                    using: using.is_some(),
                },
                AlterColumnOperation::AddGenerated { .. } => Action::AddColumn(ColumnSpec {
                    name: column,
                    auto_increment: true,
                    ..Default::default()
                }),
                other => Action::Unknown(other.to_string()),
            }
        }
        A::ModifyColumn {
            col_name,
            data_type,
            options,
            column_position,
        } => {
            let def = column_def(col_name, data_type, options);
            let mut spec = column_spec(&def, e, true);
            spec.positioned = column_position.is_some();
            Action::ModifyColumn {
                column: norm_ident(col_name, e),
                new_name: None,
                spec,
            }
        }
        A::ChangeColumn {
            old_name,
            new_name,
            data_type,
            options,
            column_position,
        } => {
            let def = column_def(new_name, data_type, options);
            let mut spec = column_spec(&def, e, true);
            spec.positioned = column_position.is_some();
            let (old, new) = (norm_ident(old_name, e), norm_ident(new_name, e));
            Action::ModifyColumn {
                column: old.clone(),
                new_name: (old != new).then_some(new),
                spec,
            }
        }
        A::AddConstraint {
            constraint,
            not_valid,
        } => map_constraint(constraint, *not_valid, e),
        A::DropConstraint {
            name,
            drop_behavior,
            ..
        } => Action::DropConstraint {
            name: norm_ident(name, e),
            cascade: is_cascade(drop_behavior),
        },
        A::DropPrimaryKey { .. } => Action::DropPrimaryKey,
        A::DropForeignKey { name, .. } => Action::DropForeignKey {
            name: norm_ident(name, e),
        },
        A::DropIndex { name } => Action::DropIndex {
            name: norm_ident(name, e),
        },
        A::ValidateConstraint { name } => Action::ValidateConstraint {
            name: norm_ident(name, e),
        },
        A::RenameColumn {
            old_column_name,
            new_column_name,
        } => Action::RenameColumn {
            from: norm_ident(old_column_name, e),
            to: norm_ident(new_column_name, e),
        },
        A::RenameTable { table_name } => Action::RenameTo {
            to: match table_name {
                ast::RenameTableNameKind::As(n) | ast::RenameTableNameKind::To(n) => {
                    norm_name(n, e)
                }
            },
        },
        A::RenameConstraint { .. } => Action::RenameIndex,
        A::SetLogged => Action::PgRewrite("SET LOGGED".into()),
        A::SetUnlogged => Action::PgRewrite("SET UNLOGGED".into()),
        A::SetOptionsParens { .. } | A::ResetOptions { .. } | A::SetTblProperties { .. } => {
            Action::PgSetStorage
        }
        A::AttachPartitionOf { partition, .. } => Action::AttachPartition {
            partition: norm_name(partition, e),
        },
        A::DetachPartitionOf { partition, mode } => Action::DetachPartition {
            partition: norm_name(partition, e),
            concurrently: mode
                .as_ref()
                .is_some_and(|m| m.to_string().to_ascii_uppercase().contains("CONCURRENTLY")),
        },
        A::AddPartitions { .. } => Action::AddPartition,
        A::DropPartitions { .. } => Action::DropPartition,
        A::DisableTrigger { .. }
        | A::EnableTrigger { .. }
        | A::EnableAlwaysTrigger { .. }
        | A::EnableReplicaTrigger { .. }
        | A::DisableRule { .. }
        | A::EnableRule { .. }
        | A::EnableAlwaysRule { .. }
        | A::EnableReplicaRule { .. } => Action::Trigger,
        A::EnableRowLevelSecurity
        | A::DisableRowLevelSecurity
        | A::ForceRowLevelSecurity
        | A::NoForceRowLevelSecurity => Action::RowLevelSecurity,
        A::OwnerTo { .. } | A::ReplicaIdentity { .. } => Action::Owner,
        A::AutoIncrement { .. } => Action::TableOption(TableOption::AutoIncrement),
        A::Inherit { .. } => Action::PgCatalogExclusive("INHERIT".into()),
        A::NoInherit { .. } => Action::PgCatalogExclusive("NO INHERIT".into()),
        other => Action::Unknown(other.to_string()),
    }
}

/// MODIFY/CHANGE carry a name, type and options: the shape of a column definition.
fn column_def(
    name: &ast::Ident,
    data_type: &ast::DataType,
    options: &[ColumnOption],
) -> ast::ColumnDef {
    ast::ColumnDef {
        name: name.clone(),
        data_type: data_type.clone(),
        options: options
            .iter()
            .map(|o| ast::ColumnOptionDef {
                name: None,
                option: o.clone(),
            })
            .collect(),
    }
}

fn is_cascade(b: &Option<ast::DropBehavior>) -> bool {
    b.as_ref()
        .is_some_and(|b| b.to_string().eq_ignore_ascii_case("cascade"))
}

fn index_cols(cols: &[ast::IndexColumn]) -> Vec<String> {
    cols.iter().map(|c| c.column.expr.to_string()).collect()
}

fn map_constraint(c: &TableConstraint, not_valid: bool, e: Engine) -> Action {
    let (kind, name, columns, unique, using_index) = match c {
        TableConstraint::Check(ch) => (
            ConstraintKind::Check {
                expr: ch.expr.to_string(),
            },
            ch.name.as_ref(),
            vec![],
            false,
            false,
        ),
        TableConstraint::ForeignKey(fk) => (
            ConstraintKind::ForeignKey {
                references: norm_name(&fk.foreign_table, e),
            },
            fk.name.as_ref(),
            fk.columns.iter().map(|i| norm_ident(i, e)).collect(),
            false,
            false,
        ),
        TableConstraint::Unique(u) => (
            ConstraintKind::Unique,
            u.name.as_ref(),
            index_cols(&u.columns),
            true,
            false,
        ),
        TableConstraint::PrimaryKey(p) => (
            ConstraintKind::PrimaryKey,
            p.name.as_ref(),
            index_cols(&p.columns),
            true,
            false,
        ),
        TableConstraint::Index(i) => (
            ConstraintKind::Index(IndexKind::Normal),
            i.name.as_ref(),
            index_cols(&i.columns),
            false,
            false,
        ),
        TableConstraint::FulltextOrSpatial(f) => (
            ConstraintKind::Index(if f.fulltext {
                IndexKind::Fulltext
            } else {
                IndexKind::Spatial
            }),
            f.opt_index_name.as_ref(),
            index_cols(&f.columns),
            false,
            false,
        ),
        TableConstraint::PrimaryKeyUsingIndex(u) => (
            ConstraintKind::PrimaryKey,
            u.name.as_ref(),
            vec![],
            true,
            true,
        ),
        TableConstraint::UniqueUsingIndex(u) => {
            (ConstraintKind::Unique, u.name.as_ref(), vec![], true, true)
        }
        TableConstraint::Exclude(x) => (
            ConstraintKind::Exclude,
            None::<&ast::Ident>.or(None),
            {
                let _ = x;
                vec![]
            },
            false,
            false,
        ),
    };
    Action::AddConstraint {
        kind,
        name: name.map(|n| norm_ident(n, e)),
        not_valid,
        using_index,
        columns,
        unique,
    }
}

/// Builds the facts of a column definition.
fn column_spec(def: &ast::ColumnDef, e: Engine, _modify: bool) -> ColumnSpec {
    let data_type = def.data_type.to_string().to_ascii_uppercase();
    let mut spec = ColumnSpec {
        name: norm_ident(&def.name, e),
        auto_increment: matches!(
            data_type.as_str(),
            "SERIAL" | "BIGSERIAL" | "SMALLSERIAL" | "SERIAL4" | "SERIAL8" | "SERIAL2"
        ),
        data_type,
        ..Default::default()
    };
    for o in &def.options {
        match &o.option {
            ColumnOption::Null => spec.null = true,
            ColumnOption::NotNull => spec.not_null = true,
            ColumnOption::Default(expr) => spec.default = Some(default_kind(expr, e)),
            ColumnOption::PrimaryKey(_) => {
                spec.primary_key = true;
                spec.not_null = true;
            }
            ColumnOption::Unique(_) => spec.unique = true,
            ColumnOption::ForeignKey(fk) => spec.references = Some(norm_name(&fk.foreign_table, e)),
            ColumnOption::Check(_) => spec.check = true,
            ColumnOption::CharacterSet(cs) => {
                spec.charset = Some(cs.to_string().to_ascii_lowercase())
            }
            ColumnOption::Collation(c) => spec.collate = Some(c.to_string().to_ascii_lowercase()),
            ColumnOption::Identity(_) => spec.auto_increment = true,
            ColumnOption::Generated {
                generation_expr,
                generation_expr_mode,
                ..
            } => {
                if generation_expr.is_some() {
                    spec.generated = Some(match generation_expr_mode {
                        Some(ast::GeneratedExpressionMode::Stored) => Generated::Stored,
                        Some(ast::GeneratedExpressionMode::Virtual) => Generated::Virtual,
                        // PostgreSQL only has stored generated columns (before 18); MySQL defaults to VIRTUAL.
                        None if e == Engine::Postgres => Generated::Stored,
                        None => Generated::Virtual,
                    });
                } else {
                    spec.auto_increment = true;
                }
            }
            ColumnOption::DialectSpecific(tokens) => {
                let t: String = tokens
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
                    .to_ascii_uppercase();
                if t.contains("AUTO_INCREMENT") || t.contains("AUTOINCREMENT") {
                    spec.auto_increment = true;
                }
                if t.contains("PERSISTENT") || t.contains("STORED") {
                    spec.generated = Some(Generated::Stored);
                }
            }
            _ => {}
        }
    }
    spec
}

const VOLATILE: &[&str] = &[
    "random",
    "clock_timestamp",
    "gen_random_uuid",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "nextval",
    "timeofday",
    "txid_current",
    "uuid",
    "rand",
    "uuid_short",
    "sysdate",
];
const STABLE: &[&str] = &[
    "now",
    "current_timestamp",
    "transaction_timestamp",
    "statement_timestamp",
    "localtimestamp",
    "current_date",
    "current_time",
    "localtime",
    "current_user",
    "session_user",
    "utc_timestamp",
    "curdate",
    "curtime",
];

/// Classifies a default expression by how often it is evaluated.
pub fn default_kind(expr: &Expr, e: Engine) -> DefaultKind {
    let text = expr.to_string();
    classify_default_text(&text, e, matches!(expr, Expr::Nested(_)))
}

/// Text-level default classification (shared with the fallback recognizer).
pub fn classify_default_text(text: &str, e: Engine, parenthesised: bool) -> DefaultKind {
    let lower = text.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    let calls = |list: &[&str]| -> Option<String> {
        list.iter()
            .find(|f| {
                words.contains(f)
                    && (lower.contains(&format!("{f}("))
                        || matches!(
                            **f,
                            "current_timestamp"
                                | "localtimestamp"
                                | "current_date"
                                | "current_time"
                                | "localtime"
                                | "current_user"
                                | "session_user"
                        ))
            })
            .map(|s| s.to_string())
    };
    if let Some(v) = calls(VOLATILE) {
        if e == Engine::Mysql && parenthesised {
            return DefaultKind::Expression(text.to_string());
        }
        return DefaultKind::Volatile(v);
    }
    if calls(STABLE).is_some() {
        return DefaultKind::Stable;
    }
    if e == Engine::Mysql && parenthesised {
        return DefaultKind::Expression(text.to_string());
    }
    DefaultKind::Constant
}
