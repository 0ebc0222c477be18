//! The fallback recognizer: when sqlparser cannot parse a statement, identify its
//! kind, table and (for ALTER TABLE) its sub-commands from tokens.
//!
//! It is deliberately conservative: any ALTER TABLE clause it cannot read becomes
//! [`Action::Unknown`], which the rules classify as high. It also handles a few
//! statements before the parser sees them (PREPARE/EXECUTE of MySQL dynamic SQL,
//! PostgreSQL `DO` blocks), whose inner SQL is analyzed instead.

use super::analyze::{analyze, classify_default_text, collect_sql_strings};
use super::names::fold;
use super::ops::*;
use crate::model::Engine;
use sqlparser::dialect::{MySqlDialect, PostgreSqlDialect};
use sqlparser::tokenizer::{Token, Tokenizer};

/// A simplified token.
#[derive(Debug, Clone, PartialEq)]
enum T {
    /// Upper-cased word, raw value, quoted?
    W(String, String, bool),
    P(String),
    S(String),
    N(String),
}

impl T {
    fn up(&self) -> &str {
        match self {
            T::W(u, _, false) => u,
            T::P(p) => p,
            _ => "",
        }
    }
}

fn tokens(sql: &str, engine: Engine) -> Option<Vec<T>> {
    let toks = match engine {
        Engine::Postgres => Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize(),
        Engine::Mysql => Tokenizer::new(&MySqlDialect {}, sql).tokenize(),
    }
    .ok()?;
    Some(
        toks.into_iter()
            .filter_map(|t| match t {
                Token::Whitespace(_) | Token::EOF => None,
                Token::Word(w) => Some(T::W(
                    w.value.to_ascii_uppercase(),
                    w.value,
                    w.quote_style.is_some(),
                )),
                Token::SingleQuotedString(s)
                | Token::EscapedStringLiteral(s)
                | Token::DoubleQuotedString(s) => Some(T::S(s)),
                Token::DollarQuotedString(d) => Some(T::S(d.value)),
                Token::Number(n, _) => Some(T::N(n)),
                other => Some(T::P(other.to_string())),
            })
            .collect(),
    )
}

/// Statements handled before the parser: dynamic SQL and code blocks.
pub fn pre_parse(sql: &str, engine: Engine) -> Option<Op> {
    let head: Vec<String> = sql
        .split_whitespace()
        .take(4)
        .map(|w| w.to_ascii_uppercase())
        .collect();
    let first = head.first()?.as_str();
    match (engine, first) {
        (Engine::Mysql, "PREPARE") => {
            // PREPARE name FROM @var | 'sql'
            let rest = sql.split_whitespace().skip(3).collect::<Vec<_>>().join(" ");
            if rest.starts_with('@') {
                Some(Op::Prepare {
                    var: Some(rest.trim_end_matches(';').to_string()),
                    sql: None,
                })
            } else {
                let mut found = Vec::new();
                collect_sql_strings(&rest, &mut found);
                Some(Op::Prepare {
                    var: None,
                    sql: found.into_iter().next(),
                })
            }
        }
        (Engine::Mysql, "EXECUTE") | (Engine::Mysql, "DEALLOCATE") => {
            Some(Op::Benign(first.to_ascii_lowercase()))
        }
        (Engine::Postgres, "DO") => Some(do_block(sql, engine)),
        // MariaDB `ANALYZE [FORMAT=JSON] <statement>` runs the statement.
        (Engine::Mysql, "ANALYZE") => {
            let at = dml_keyword_at(sql)?;
            Some(analyze(&sql[at..], engine).op)
        }
        _ => None,
    }
}

/// Byte offset of the first top-level-looking DML keyword (a word, outside quotes
/// is not checked: callers pass statement heads).
fn dml_keyword_at(sql: &str) -> Option<usize> {
    let up = sql.to_ascii_uppercase();
    let b = up.as_bytes();
    let mut best: Option<usize> = None;
    for k in ["SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "WITH"] {
        let mut from = 0;
        while let Some(p) = up[from..].find(k).map(|p| p + from) {
            let before = p == 0 || !(b[p - 1].is_ascii_alphanumeric() || b[p - 1] == b'_');
            let after = b
                .get(p + k.len())
                .is_none_or(|c| !(c.is_ascii_alphanumeric() || *c == b'_'));
            if before && after {
                best = Some(best.map_or(p, |x: usize| x.min(p)));
                break;
            }
            from = p + k.len();
        }
    }
    best
}

/// A `DO $$ … $$` block: the DDL/DML statements inside are analyzed; dynamic
/// `EXECUTE` makes it opaque.
fn do_block(sql: &str, engine: Engine) -> Op {
    let body = match (sql.find('$'), sql.rfind('$')) {
        (Some(a), Some(b)) if b > a => {
            let tag_end = sql[a + 1..]
                .find('$')
                .map(|p| a + 1 + p + 1)
                .unwrap_or(a + 1);
            let close = sql[..=b].rfind(&sql[a..tag_end]).unwrap_or(b);
            if close > tag_end {
                &sql[tag_end..close]
            } else {
                ""
            }
        }
        _ => "",
    };
    let upper = body.to_ascii_uppercase();
    if upper.contains("EXECUTE ") || upper.contains("EXECUTE\n") || upper.contains("EXECUTE FORMAT")
    {
        return Op::OpaqueCode("DO block with dynamic SQL (EXECUTE)".into());
    }
    let mut inner = Vec::new();
    for stmt in crate::sql::split::split(body, engine, 1, ";") {
        let s = stmt.sql.trim();
        // Strip PL/pgSQL wrappers so the inner statement is seen.
        let s = strip_plpgsql_prefix(s);
        let u = s.to_ascii_uppercase();
        if [
            "ALTER ",
            "CREATE ",
            "DROP ",
            "UPDATE ",
            "DELETE ",
            "INSERT ",
            "TRUNCATE ",
            "REINDEX ",
            "VACUUM ",
            "REFRESH ",
            "COMMENT ",
        ]
        .iter()
        .any(|k| u.starts_with(k))
        {
            inner.push(analyze(s, engine).op);
        }
    }
    if inner.is_empty() {
        Op::OpaqueCode("DO block".into())
    } else if inner.len() == 1 {
        inner.pop().unwrap_or(Op::OpaqueCode("DO block".into()))
    } else {
        Op::OpaqueCode(format!("DO block with {} statements", inner.len()))
    }
}

fn strip_plpgsql_prefix(s: &str) -> &str {
    let mut s = s;
    loop {
        let u = s.to_ascii_uppercase();
        let cut = ["BEGIN", "DECLARE", "ELSE", "END IF", "END LOOP", "LOOP"]
            .iter()
            .find(|k| u.starts_with(*k) && u[k.len()..].starts_with(char::is_whitespace))
            .map(|k| k.len());
        if let Some(n) = cut {
            s = s[n..].trim_start();
            continue;
        }
        if (u.starts_with("IF ") || u.starts_with("ELSIF "))
            && let Some(p) = u.find(" THEN")
        {
            s = s[p + 5..].trim_start();
            continue;
        }
        return s;
    }
}

/// Identifies a statement sqlparser could not parse; `None` if it cannot.
pub fn recognize(sql: &str, engine: Engine) -> Option<Op> {
    let t = tokens(sql, engine)?;
    let mut c = Cursor {
        t: &t,
        i: 0,
        e: engine,
    };
    let first = c.peek_up().to_string();
    if merged_statements(&t) {
        return None;
    }
    match first.as_str() {
        "CREATE" => c.create(),
        "ALTER" => c.alter(),
        "DROP" => c.drop(),
        "TRUNCATE" => {
            c.bump();
            c.eat("TABLE");
            let tables = c.name_list();
            let cascade = c.contains("CASCADE");
            (!tables.is_empty()).then_some(Op::Truncate { tables, cascade })
        }
        "RENAME" => {
            c.bump();
            if !c.eat("TABLE") {
                return None;
            }
            let mut pairs = Vec::new();
            loop {
                let a = c.name()?;
                if !c.eat("TO") {
                    return None;
                }
                let b = c.name()?;
                pairs.push((a, b));
                if !c.eat(",") {
                    break;
                }
            }
            Some(Op::RenameTables { pairs })
        }
        "INSERT" | "REPLACE" => {
            c.bump();
            for k in ["LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY", "IGNORE", "INTO"] {
                c.eat(k);
            }
            let table = c.name()?;
            let from_select = c.contains("SELECT");
            Some(Op::Insert { table, from_select })
        }
        "UPDATE" => {
            c.bump();
            c.eat("LOW_PRIORITY");
            c.eat("IGNORE");
            c.eat("ONLY");
            let table = c.name()?;
            Some(Op::Update {
                table,
                has_where: c.where_bounds(),
            })
        }
        "DELETE" => {
            c.bump();
            c.eat("LOW_PRIORITY");
            c.eat("QUICK");
            c.eat("IGNORE");
            c.eat("FROM");
            c.eat("ONLY");
            let table = c.name()?;
            Some(Op::Delete {
                table,
                has_where: c.where_bounds(),
            })
        }
        // A CTE or EXPLAIN ANALYZE may hide data-modifying statements: only a
        // read-only one is recognized.
        "WITH" | "EXPLAIN" | "SELECT" | "VALUES" => (!t.iter().any(|x| {
            matches!(
                x.up(),
                "INSERT" | "UPDATE" | "DELETE" | "MERGE" | "REPLACE" | "CALL" | "DO"
            )
        }))
        .then_some(Op::Select),
        "SHOW" => Some(Op::Select),
        "SET" => {
            c.bump();
            for k in ["SESSION", "LOCAL", "GLOBAL"] {
                c.eat(k);
            }
            let name = c.raw_word().unwrap_or_default();
            if let Some(var) = sql
                .split_whitespace()
                .nth(1)
                .filter(|w| w.starts_with('@') && !w.starts_with("@@"))
            {
                let mut embedded = Vec::new();
                collect_sql_strings(sql, &mut embedded);
                return Some(Op::SetUserVar {
                    name: var.trim_end_matches('=').to_string(),
                    embedded,
                });
            }
            let value = c.rest_text();
            Some(Op::Set {
                name: name.trim_start_matches("@@").to_ascii_lowercase(),
                value: value
                    .trim_start_matches(['=', ' '])
                    .trim_start_matches("TO ")
                    .to_string(),
            })
        }
        "BEGIN" | "START" => Some(Op::Begin),
        "COMMIT" | "END" => Some(Op::Commit),
        "ROLLBACK" | "ABORT" => Some(Op::Rollback),
        "GRANT" | "REVOKE" | "COMMENT" | "ANALYZE" | "USE" | "CHECKPOINT" | "NOTIFY" | "LISTEN"
        | "DISCARD" | "RESET" | "SAVEPOINT" | "RELEASE" | "SECURITY" | "DECLARE" | "DEALLOCATE"
        | "CHECK" | "FLUSH" => Some(Op::Benign(first.to_ascii_lowercase())),
        "REINDEX" => {
            c.bump();
            let level = c.peek_up().to_string();
            c.bump();
            let concurrently =
                c.eat("CONCURRENTLY") || sql.to_ascii_uppercase().contains("CONCURRENTLY");
            let target = c.name().unwrap_or_default();
            Some(Op::Reindex {
                target,
                table_level: level == "TABLE",
                concurrently,
            })
        }
        "VACUUM" => Some(Op::Vacuum {
            full: c.contains("FULL"),
            table: None,
        }),
        "CLUSTER" => {
            c.bump();
            Some(Op::Cluster { table: c.name() })
        }
        "OPTIMIZE" => {
            c.bump();
            c.eat("NO_WRITE_TO_BINLOG");
            c.eat("LOCAL");
            c.eat("TABLE");
            Some(Op::Optimize { table: c.name()? })
        }
        "REFRESH" => {
            c.bump();
            c.eat("MATERIALIZED");
            c.eat("VIEW");
            let concurrently = c.eat("CONCURRENTLY");
            Some(Op::RefreshMatView {
                name: c.name()?,
                concurrently,
            })
        }
        "LOCK" => Some(Op::LockTable {
            tables: vec![],
            mode: "LOCK".into(),
        }),
        "CALL" => Some(Op::OpaqueCode("CALL".into())),
        "UNLOCK" => Some(Op::Benign("unlock".into())),
        _ => None,
    }
}

/// Text the engine's grammar rejects, found without the parser: two statements
/// merged by a missing `;`, or an ALTER TABLE with an empty clause (dangling
/// comma). Independent of the analysis, so tests can check the plan against it.
pub fn grammar_rejects(sql: &str, engine: Engine) -> Option<&'static str> {
    let t = tokens(sql, engine)?;
    if merged_statements(&t) {
        return Some("two statements merged by a missing `;`");
    }
    if t.first().map(T::up) == Some("ALTER") && t.get(1).map(T::up) == Some("TABLE") {
        let mut depth = 0;
        let mut prev_comma = false;
        for (i, x) in t.iter().enumerate() {
            match x.up() {
                "(" => depth += 1,
                ")" => depth -= 1,
                "," if depth == 0 => {
                    if prev_comma || i + 1 == t.len() {
                        return Some("a dangling comma in ALTER TABLE");
                    }
                    prev_comma = true;
                    continue;
                }
                _ => {}
            }
            prev_comma = false;
        }
    }
    None
}

/// True when the tokens hold the start of a second statement at top level: a
/// missing `;` merged two statements, and reading the first would hide the second.
/// Routine, trigger and rule bodies legitimately hold statements and are exempt.
fn merged_statements(t: &[T]) -> bool {
    let head: Vec<&str> = t.iter().take(8).map(T::up).collect();
    // `WITH … DELETE`, `EXPLAIN ANALYZE UPDATE`: the DML is this statement's own
    // (the fallback never reads these below high anyway).
    if matches!(
        head.first().copied(),
        Some("WITH" | "EXPLAIN" | "ANALYZE" | "PREPARE")
    ) {
        return false;
    }
    if head.first() == Some(&"CREATE")
        && head.iter().any(|w| {
            matches!(
                *w,
                "TRIGGER" | "RULE" | "FUNCTION" | "PROCEDURE" | "EVENT" | "POLICY"
            )
        })
    {
        return false;
    }
    let mut depth = 0i32;
    for i in 1..t.len() {
        match t[i].up() {
            "(" => depth += 1,
            ")" => depth -= 1,
            _ => {}
        }
        if depth != 0 {
            continue;
        }
        let next = t.get(i + 1).map(T::up).unwrap_or("");
        let starts = match t[i].up() {
            "ALTER" => next == "TABLE",
            "CREATE" => matches!(
                next,
                "TABLE" | "INDEX" | "UNIQUE" | "VIEW" | "SEQUENCE" | "TYPE" | "OR" | "SCHEMA"
            ),
            // MySQL `ALTER TABLE t DROP INDEX i` is one statement.
            "DROP" => {
                matches!(
                    next,
                    "TABLE" | "VIEW" | "SCHEMA" | "DATABASE" | "SEQUENCE" | "TYPE"
                ) || (next == "INDEX" && head.first() != Some(&"ALTER"))
            }
            "INSERT" => next == "INTO",
            "DELETE" => next == "FROM",
            "TRUNCATE" => next == "TABLE",
            "RENAME" => next == "TABLE",
            "UPDATE" => t.get(i + 2).map(T::up) == Some("SET"),
            _ => false,
        };
        if starts {
            return true;
        }
    }
    false
}

/// Parses `text` as one complete expression of the engine's grammar.
fn parse_expr_whole(text: &str, e: Engine) -> Option<sqlparser::ast::Expr> {
    use sqlparser::parser::Parser;
    let dialect: Box<dyn sqlparser::dialect::Dialect> = match e {
        Engine::Postgres => Box::new(PostgreSqlDialect {}),
        Engine::Mysql => Box::new(MySqlDialect {}),
    };
    let mut p = Parser::new(dialect.as_ref()).try_with_sql(text).ok()?;
    let expr = p.parse_expr().ok()?;
    (p.peek_token().token == Token::EOF).then_some(expr)
}

/// Parses `text` as one complete data type of the engine's grammar.
fn parse_type_whole(text: &str, e: Engine) -> bool {
    use sqlparser::parser::Parser;
    // MySQL type attributes sqlparser does not read (`VARCHAR(9) BINARY`).
    let mut text = text;
    if e == Engine::Mysql {
        while let Some(t) = [
            "BINARY", "ASCII", "UNICODE", "ZEROFILL", "SIGNED", "UNSIGNED",
        ]
        .iter()
        .find_map(|w| text.strip_suffix(w).filter(|t| t.ends_with(' ')))
        {
            text = t.trim_end();
        }
    }
    let dialect: Box<dyn sqlparser::dialect::Dialect> = match e {
        Engine::Postgres => Box::new(PostgreSqlDialect {}),
        Engine::Mysql => Box::new(MySqlDialect {}),
    };
    let Ok(mut p) = Parser::new(dialect.as_ref()).try_with_sql(text) else {
        return false;
    };
    p.parse_data_type().is_ok() && p.peek_token().token == Token::EOF
}

struct Cursor<'a> {
    t: &'a [T],
    i: usize,
    e: Engine,
}

impl Cursor<'_> {
    fn peek_up(&self) -> &str {
        self.t.get(self.i).map(T::up).unwrap_or("")
    }
    fn bump(&mut self) {
        self.i += 1;
    }
    fn eat(&mut self, k: &str) -> bool {
        if self.peek_up() == k {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn eat_seq(&mut self, ks: &[&str]) -> bool {
        let save = self.i;
        for k in ks {
            if !self.eat(k) {
                self.i = save;
                return false;
            }
        }
        true
    }
    fn contains(&self, k: &str) -> bool {
        self.t[self.i.min(self.t.len())..]
            .iter()
            .any(|t| t.up() == k)
    }
    fn raw_word(&mut self) -> Option<String> {
        match self.t.get(self.i) {
            Some(T::W(_, raw, _)) => {
                self.i += 1;
                Some(raw.clone())
            }
            _ => None,
        }
    }
    fn ident(&mut self) -> Option<String> {
        match self.t.get(self.i) {
            Some(T::W(_, raw, q)) => {
                self.i += 1;
                Some(fold(raw, *q, self.e))
            }
            Some(T::S(s)) if self.e == Engine::Mysql => {
                self.i += 1;
                Some(s.clone())
            }
            _ => None,
        }
    }
    /// A possibly qualified name.
    fn name(&mut self) -> Option<String> {
        let mut parts = vec![self.ident()?];
        while self.peek_up() == "." {
            self.bump();
            parts.push(self.ident()?);
        }
        Some(parts.join("."))
    }
    fn name_list(&mut self) -> Vec<String> {
        let mut v = Vec::new();
        while let Some(n) = self.name() {
            v.push(n);
            if !self.eat(",") {
                break;
            }
        }
        v
    }
    /// True when a WHERE clause follows that restricts something. A predicate that
    /// folds to constant true, or one the grammar does not accept, bounds nothing.
    fn where_bounds(&self) -> bool {
        let Some(w) = self.t[self.i..].iter().position(|t| t.up() == "WHERE") else {
            return false;
        };
        let start = self.i + w + 1;
        let mut end = start;
        let mut depth = 0;
        while let Some(t) = self.t.get(end) {
            match t.up() {
                "(" => depth += 1,
                ")" => depth -= 1,
                "ORDER" | "LIMIT" | "RETURNING" if depth == 0 => break,
                _ => {}
            }
            end += 1;
        }
        let text = Cursor {
            t: &self.t[start..end],
            i: 0,
            e: self.e,
        }
        .rest_text();
        parse_expr_whole(&text, self.e).is_some_and(|x| !super::analyze::bounds_nothing(&x))
    }
    /// True at the end of the clause, after any of the optional trailing words.
    fn at_end_after(&mut self, optional: &[&str]) -> bool {
        while optional.contains(&self.peek_up()) && self.i < self.t.len() {
            self.bump();
        }
        self.i >= self.t.len()
    }
    /// Skips `IF [NOT] EXISTS`; true if it was there.
    fn skip_if_exists(&mut self) -> bool {
        self.eat_seq(&["IF", "NOT", "EXISTS"]) || self.eat_seq(&["IF", "EXISTS"])
    }
    fn rest_text(&self) -> String {
        self.t[self.i.min(self.t.len())..]
            .iter()
            .map(|t| match t {
                T::W(_, r, _) => r.clone(),
                T::P(p) => p.clone(),
                T::S(s) => format!("'{s}'"),
                T::N(n) => n.clone(),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn create(&mut self) -> Option<Op> {
        self.bump();
        let or_replace = self.eat_seq(&["OR", "REPLACE"]);
        let mut temporary = false;
        let mut unique = false;
        let mut kind = IndexKind::Normal;
        loop {
            match self.peek_up() {
                "TEMP" | "TEMPORARY" | "GLOBAL" | "LOCAL" => temporary = true,
                "UNLOGGED" | "DEFINER" | "ALGORITHM" | "SQL" | "SECURITY" | "AGGREGATE"
                | "RECURSIVE" | "CONSTRAINT" | "TRUSTED" | "PROCEDURAL" | "ONLINE" | "OFFLINE" => {}
                "=" => {
                    // DEFINER = user@host
                    self.bump();
                    self.bump();
                    while matches!(self.peek_up(), "@")
                        || matches!(self.t.get(self.i), Some(T::S(_)))
                    {
                        self.bump();
                    }
                    continue;
                }
                "UNIQUE" => unique = true,
                "FULLTEXT" => kind = IndexKind::Fulltext,
                "SPATIAL" => kind = IndexKind::Spatial,
                _ => break,
            }
            self.bump();
        }
        let obj = self.peek_up().to_string();
        self.bump();
        match obj.as_str() {
            "TABLE" => {
                let if_not_exists = self.skip_if_exists();
                let table = self.name()?;
                let mut references = Vec::new();
                while self.i < self.t.len() {
                    if self.eat("REFERENCES") {
                        if let Some(n) = self.name() {
                            references.push(n);
                        }
                    } else {
                        self.bump();
                    }
                }
                Some(Op::CreateTable {
                    table,
                    or_replace,
                    temporary,
                    references,
                    as_select: false,
                    partition_of: None,
                    if_not_exists,
                })
            }
            "INDEX" | "KEY" => {
                let concurrently = self.eat("CONCURRENTLY");
                let if_not_exists = self.skip_if_exists();
                let name = if self.peek_up() != "ON" {
                    self.name()
                } else {
                    None
                };
                if !self.eat("ON") {
                    return None;
                }
                self.eat("ONLY");
                let table = self.name()?;
                Some(Op::CreateIndex {
                    table,
                    name,
                    unique,
                    concurrently,
                    kind,
                    columns: vec![],
                    if_not_exists,
                })
            }
            "TRIGGER" | "CONSTRAINT" => {
                while self.i < self.t.len() && self.peek_up() != "ON" {
                    self.bump();
                }
                self.eat("ON");
                Some(Op::CreateTrigger {
                    table: self.name()?,
                })
            }
            "DOMAIN" => Some(Op::CreateDomain {
                name: self.name().unwrap_or_default(),
                check: self.contains("CHECK"),
            }),
            "RULE" => {
                // CREATE RULE name AS ON event TO table [WHERE …] DO [ALSO|INSTEAD] …
                self.name()?;
                if !self.eat_seq(&["AS", "ON"]) {
                    return None;
                }
                let event = self.peek_up().to_string();
                self.bump();
                if !self.eat("TO") {
                    return None;
                }
                let table = self.name()?;
                let instead = self
                    .t
                    .windows(2)
                    .any(|w| w[0].up() == "DO" && w[1].up() == "INSTEAD");
                Some(Op::CreateRule {
                    table,
                    event,
                    instead,
                })
            }
            "VIEW" | "MATERIALIZED" | "FUNCTION" | "PROCEDURE" | "SEQUENCE" | "EXTENSION"
            | "SCHEMA" | "DATABASE" | "TYPE" | "ROLE" | "USER" | "EVENT" | "AGGREGATE"
            | "OPERATOR" | "CAST" | "COLLATION" | "LANGUAGE" | "POLICY" | "PUBLICATION"
            | "SUBSCRIPTION" | "SERVER" | "STATISTICS" | "TEXT" | "ACCESS" | "CONVERSION"
            | "FOREIGN" | "TABLESPACE" | "GROUP" => {
                Some(Op::Benign(format!("create {}", obj.to_ascii_lowercase())))
            }
            _ => None,
        }
    }

    fn drop(&mut self) -> Option<Op> {
        self.bump();
        self.eat("TEMPORARY");
        let obj = self.peek_up().to_string();
        self.bump();
        match obj.as_str() {
            "TABLE" => {
                let if_exists = self.skip_if_exists();
                let tables = self.name_list();
                Some(Op::DropTable {
                    cascade: self.contains("CASCADE"),
                    tables,
                    if_exists,
                })
            }
            "INDEX" => {
                let concurrently = self.eat("CONCURRENTLY");
                let if_exists = self.skip_if_exists();
                let names = self.name_list();
                let table = if self.eat("ON") { self.name() } else { None };
                Some(Op::DropIndex {
                    names,
                    table,
                    concurrently,
                    cascade: self.contains("CASCADE"),
                    if_exists,
                })
            }
            "SCHEMA" | "DATABASE" => {
                self.skip_if_exists();
                let names = self.name_list();
                Some(Op::DropSchema {
                    names,
                    cascade: self.contains("CASCADE"),
                })
            }
            "TRIGGER" => {
                self.skip_if_exists();
                let _ = self.name();
                let table = if self.eat("ON") { self.name() } else { None };
                Some(Op::DropTrigger { table })
            }
            "" => None,
            "OWNED" => {
                if !self.eat("BY") {
                    return None;
                }
                let roles = self.name_list();
                (!roles.is_empty()).then_some(Op::DropOwned { roles })
            }
            other => {
                let kind = other.to_ascii_lowercase();
                if other == "MATERIALIZED" {
                    self.eat("VIEW");
                }
                self.skip_if_exists();
                let names = self.name_list();
                Some(Op::DropOther {
                    kind,
                    names,
                    cascade: self.contains("CASCADE"),
                })
            }
        }
    }

    fn alter(&mut self) -> Option<Op> {
        self.bump();
        for k in ["ONLINE", "OFFLINE", "IGNORE"] {
            self.eat(k);
        }
        let obj = self.peek_up().to_string();
        self.bump();
        match obj.as_str() {
            "TABLE" => {}
            "TYPE" => {
                let name = self.name()?;
                return Some(if self.contains("ADD") && self.contains("VALUE") {
                    Op::AlterTypeAddValue { name }
                } else if self.contains("RENAME") && self.contains("VALUE") {
                    Op::AlterTypeRenameValue { name }
                } else {
                    Op::Benign("alter type".into())
                });
            }
            "DOMAIN" => {
                let name = self.name().unwrap_or_default();
                return Some(
                    if self.contains("ADD")
                        && (self.contains("CHECK") || self.contains("CONSTRAINT"))
                    {
                        Op::AlterDomainAddConstraint { name }
                    } else {
                        Op::Benign("alter domain".into())
                    },
                );
            }
            "SCHEMA" if self.contains("RENAME") => {
                return Some(Op::RenameSchema {
                    name: self.name().unwrap_or_default(),
                });
            }
            "INDEX" | "SEQUENCE" | "VIEW" | "FUNCTION" | "PROCEDURE" | "SCHEMA" | "DATABASE"
            | "ROLE" | "USER" | "EXTENSION" | "MATERIALIZED" | "DEFAULT" | "POLICY" | "TRIGGER"
            | "EVENT" | "COLLATION" | "PUBLICATION" | "AGGREGATE" | "OPERATOR" | "STATISTICS"
            | "SERVER" | "LANGUAGE" | "GROUP" => {
                return Some(Op::Benign(format!("alter {}", obj.to_ascii_lowercase())));
            }
            _ => return None,
        }
        self.skip_if_exists();
        self.eat("ONLY");
        let table = self.name()?;
        let mut wait = false;
        if self.eat("WAIT") {
            self.bump();
            wait = true;
        } else if self.eat("NOWAIT") {
            wait = true;
        }
        let _ = wait;
        let mut actions = Vec::new();
        let mut algorithm = None;
        let mut lock = None;
        let clauses = split_top_level(&self.t[self.i..]);
        if clauses.is_empty() {
            actions.push(Action::Unknown("ALTER TABLE without an action".into()));
        }
        for clause in clauses {
            if clause.is_empty() {
                // `ADD c int,` or `,,`: the engine rejects a dangling comma.
                actions.push(Action::Unknown("an empty clause (dangling comma)".into()));
                continue;
            }
            let mut cl = Cursor {
                t: clause,
                i: 0,
                e: self.e,
            };
            let head = cl.peek_up().to_string();
            if head == "ALGORITHM" || head == "LOCK" {
                cl.bump();
                cl.eat("=");
                let v = cl.peek_up().to_string();
                if head == "ALGORITHM" {
                    algorithm = Some(v);
                } else {
                    lock = Some(v);
                }
                continue;
            }
            actions.push(cl.alter_clause());
        }
        Some(Op::AlterTable {
            table,
            actions,
            algorithm,
            lock,
        })
    }

    fn clause_text(&self) -> String {
        let save = Cursor {
            t: self.t,
            i: 0,
            e: self.e,
        };
        save.rest_text()
    }

    fn alter_clause(&mut self) -> Action {
        let unknown = Action::Unknown(self.clause_text());
        let head = self.peek_up().to_string();
        self.bump();
        match head.as_str() {
            "ADD" => {
                match self.peek_up() {
                    "CONSTRAINT" | "PRIMARY" | "UNIQUE" | "FOREIGN" | "CHECK" | "INDEX" | "KEY"
                    | "FULLTEXT" | "SPATIAL" | "EXCLUDE" => self.add_constraint(),
                    "PARTITION" => Action::AddPartition,
                    _ => {
                        self.eat("COLUMN");
                        self.skip_if_exists();
                        if self.peek_up() == "(" {
                            // ADD (a int, b int): treat as a plain column add of the first.
                            self.bump();
                        }
                        match self.column_def() {
                            Some(spec) => Action::AddColumn(spec),
                            None => unknown,
                        }
                    }
                }
            }
            "DROP" => {
                // Every DROP form ends after its name (and CASCADE/RESTRICT):
                // anything more is text the engine rejects.
                let action = match self.peek_up() {
                    "PRIMARY" => {
                        self.bump();
                        self.eat("KEY");
                        Action::DropPrimaryKey
                    }
                    "FOREIGN" => {
                        self.bump();
                        self.eat("KEY");
                        self.skip_if_exists();
                        match self.ident() {
                            Some(name) => Action::DropForeignKey { name },
                            None => return unknown,
                        }
                    }
                    "INDEX" | "KEY" => {
                        self.bump();
                        self.skip_if_exists();
                        match self.ident() {
                            Some(name) => Action::DropIndex { name },
                            None => return unknown,
                        }
                    }
                    "CONSTRAINT" | "CHECK" => {
                        self.bump();
                        self.skip_if_exists();
                        let Some(name) = self.ident() else {
                            return unknown;
                        };
                        Action::DropConstraint {
                            name,
                            cascade: self.contains("CASCADE"),
                        }
                    }
                    "PARTITION" => return Action::DropPartition,
                    "DEFAULT" => return unknown,
                    _ => {
                        self.eat("COLUMN");
                        self.skip_if_exists();
                        match self.ident() {
                            Some(n) => Action::DropColumn {
                                names: vec![n],
                                cascade: self.contains("CASCADE"),
                            },
                            None => return unknown,
                        }
                    }
                };
                if self.at_end_after(&["CASCADE", "RESTRICT"]) {
                    action
                } else {
                    unknown
                }
            }
            "MODIFY" | "CHANGE" => {
                self.eat("COLUMN");
                let old = match self.ident() {
                    Some(n) => n,
                    None => return unknown,
                };
                if head == "CHANGE" {
                    let save = self.i;
                    match self.column_def() {
                        Some(spec) => {
                            let new_name = (spec.name != old).then(|| spec.name.clone());
                            Action::ModifyColumn {
                                column: old,
                                new_name,
                                spec,
                            }
                        }
                        None => {
                            self.i = save;
                            unknown
                        }
                    }
                } else {
                    self.i -= 1;
                    match self.column_def() {
                        Some(spec) => Action::ModifyColumn {
                            column: old,
                            new_name: None,
                            spec,
                        },
                        None => unknown,
                    }
                }
            }
            "ALTER" if self.peek_up() == "CONSTRAINT" => {
                // PostgreSQL ALTER CONSTRAINT name [NOT] DEFERRABLE [INITIALLY …]
                self.bump();
                let Some(name) = self.ident() else {
                    return unknown;
                };
                let attrs = [
                    "DEFERRABLE",
                    "NOT",
                    "INITIALLY",
                    "DEFERRED",
                    "IMMEDIATE",
                    "ENFORCED",
                    "INHERIT",
                    "NO",
                ];
                if self.i < self.t.len() && self.at_end_after(&attrs) {
                    Action::AlterConstraint { name }
                } else {
                    unknown
                }
            }
            "ALTER" => {
                self.eat("COLUMN");
                let Some(column) = self.ident() else {
                    return unknown;
                };
                match (
                    self.peek_up().to_string().as_str(),
                    self.t.get(self.i + 1).map(T::up).unwrap_or(""),
                ) {
                    ("SET", "NOT") | ("DROP", "NOT") => {
                        let set = self.peek_up() == "SET";
                        self.i += 2;
                        if !self.eat("NULL") || self.i < self.t.len() {
                            return unknown;
                        }
                        if set {
                            Action::SetNotNull { column }
                        } else {
                            Action::DropNotNull { column }
                        }
                    }
                    ("SET", "DEFAULT") => {
                        self.i += 2;
                        let text = self.rest_text();
                        Action::SetDefault {
                            column,
                            default: classify_default_text(&text, self.e, text.starts_with('(')),
                        }
                    }
                    ("DROP", "DEFAULT") if self.t.len() == self.i + 2 => {
                        Action::DropDefault { column }
                    }
                    ("SET", "DATA") | ("TYPE", _) => {
                        self.eat("SET");
                        self.eat("DATA");
                        self.eat("TYPE");
                        let ty = self.type_text();
                        Action::AlterColumnType {
                            column,
                            new_type: ty,
                            using: self.contains("USING"),
                        }
                    }
                    ("SET", "STATISTICS") | ("SET", "(") | ("RESET", _) => Action::PgSetStorage,
                    ("SET", what @ ("STORAGE" | "COMPRESSION")) => {
                        Action::PgCatalogExclusive(format!("SET {what}"))
                    }
                    ("ADD", "GENERATED") => Action::AddColumn(ColumnSpec {
                        name: column,
                        auto_increment: true,
                        ..Default::default()
                    }),
                    ("DROP", "IDENTITY") | ("DROP", "EXPRESSION") => Action::DropDefault { column },
                    ("SET", "INVISIBLE") | ("SET", "VISIBLE") => Action::DropDefault { column },
                    _ => unknown,
                }
            }
            "RENAME" => {
                if self.eat("COLUMN") {
                    let (Some(from), true, Some(to)) = (self.ident(), self.eat("TO"), self.ident())
                    else {
                        return unknown;
                    };
                    if self.i < self.t.len() {
                        return unknown;
                    }
                    return Action::RenameColumn { from, to };
                }
                if self.eat("INDEX") || self.eat("KEY") || self.eat("CONSTRAINT") {
                    return Action::RenameIndex;
                }
                self.eat("TO");
                self.eat("AS");
                match self.name() {
                    Some(to) if self.peek_up() == "TO" => {
                        // PostgreSQL RENAME a TO b (column without the keyword)
                        self.bump();
                        Action::RenameColumn {
                            from: to,
                            to: self.ident().unwrap_or_default(),
                        }
                    }
                    Some(to) => Action::RenameTo { to },
                    None => unknown,
                }
            }
            "ENGINE" | "TYPE" => {
                self.eat("=");
                Action::TableOption(TableOption::Engine(
                    self.raw_word().unwrap_or_default().to_ascii_lowercase(),
                ))
            }
            "ROW_FORMAT" => Action::TableOption(TableOption::RowFormat),
            "KEY_BLOCK_SIZE" => Action::TableOption(TableOption::KeyBlockSize),
            "FORCE" => Action::TableOption(TableOption::Force),
            "AUTO_INCREMENT" => Action::TableOption(TableOption::AutoIncrement),
            "COMMENT" => Action::TableOption(TableOption::Comment),
            "CONVERT" => Action::TableOption(TableOption::ConvertCharset),
            "DEFAULT" | "CHARACTER" | "CHARSET" | "COLLATE" => {
                Action::TableOption(TableOption::DefaultCharset)
            }
            "ORDER" | "STATS_PERSISTENT" | "STATS_AUTO_RECALC" | "STATS_SAMPLE_PAGES"
            | "PACK_KEYS" | "CHECKSUM" | "DELAY_KEY_WRITE" | "MAX_ROWS" | "MIN_ROWS"
            | "AVG_ROW_LENGTH" | "PAGE_CHECKSUM" | "TRANSACTIONAL" => {
                Action::TableOption(TableOption::Comment)
            }
            "PARTITION" => Action::Repartition,
            "REMOVE" => Action::Repartition,
            "COALESCE" | "REORGANIZE" | "REBUILD" | "OPTIMIZE" | "ANALYZE" | "CHECK" | "REPAIR"
            | "EXCHANGE" | "DISCARD" | "IMPORT" => {
                Action::PartitionMaintenance(head.to_ascii_lowercase())
            }
            "TRUNCATE" => Action::TruncatePartition,
            "VALIDATE" => {
                self.eat("CONSTRAINT");
                Action::ValidateConstraint {
                    name: self.ident().unwrap_or_default(),
                }
            }
            "SET" => match self.peek_up() {
                "LOGGED" => Action::PgRewrite("SET LOGGED".into()),
                "UNLOGGED" => Action::PgRewrite("SET UNLOGGED".into()),
                "TABLESPACE" => Action::PgRewrite("SET TABLESPACE".into()),
                "ACCESS" => Action::PgRewrite("SET ACCESS METHOD".into()),
                "WITHOUT" | "(" => Action::PgSetStorage,
                "SCHEMA" => Action::PgCatalogExclusive("SET SCHEMA".into()),
                _ => unknown,
            },
            "RESET" | "CLUSTER" => Action::PgSetStorage,
            "NO" if self.contains("FORCE") => Action::RowLevelSecurity,
            w @ ("INHERIT" | "NO" | "OF" | "NOT") => Action::PgCatalogExclusive(w.to_string()),
            "ENABLE" | "DISABLE" => {
                if self.contains("ROW") {
                    Action::RowLevelSecurity
                } else if self.contains("KEYS") {
                    Action::TableOption(TableOption::Comment)
                } else {
                    Action::Trigger
                }
            }
            "FORCE_RLS" => Action::RowLevelSecurity,
            "OWNER" | "REPLICA" => Action::Owner,
            "ATTACH" => {
                self.eat("PARTITION");
                Action::AttachPartition {
                    partition: self.name().unwrap_or_default(),
                }
            }
            "DETACH" => {
                self.eat("PARTITION");
                let partition = self.name().unwrap_or_default();
                Action::DetachPartition {
                    partition,
                    concurrently: self.contains("CONCURRENTLY"),
                }
            }
            _ => unknown,
        }
    }

    fn add_constraint(&mut self) -> Action {
        let mut name = None;
        if self.eat("CONSTRAINT")
            && !matches!(
                self.peek_up(),
                "PRIMARY" | "UNIQUE" | "FOREIGN" | "CHECK" | "EXCLUDE"
            )
        {
            name = self.ident();
        }
        let not_valid = self.contains("NOT") && self.t.iter().any(|t| t.up() == "VALID");
        let using_index = self
            .t
            .windows(2)
            .any(|w| w[0].up() == "USING" && w[1].up() == "INDEX");
        let kw = self.peek_up().to_string();
        self.bump();
        let kind = match kw.as_str() {
            "PRIMARY" => ConstraintKind::PrimaryKey,
            "UNIQUE" => ConstraintKind::Unique,
            "FOREIGN" => {
                while self.i < self.t.len() && self.peek_up() != "REFERENCES" {
                    self.bump();
                }
                self.eat("REFERENCES");
                ConstraintKind::ForeignKey {
                    references: self.name().unwrap_or_default(),
                }
            }
            "CHECK" => ConstraintKind::Check {
                expr: self.rest_text(),
            },
            "EXCLUDE" => ConstraintKind::Exclude,
            "FULLTEXT" => ConstraintKind::Index(IndexKind::Fulltext),
            "SPATIAL" => ConstraintKind::Index(IndexKind::Spatial),
            _ => ConstraintKind::Index(IndexKind::Normal),
        };
        let unique = matches!(kind, ConstraintKind::Unique | ConstraintKind::PrimaryKey);
        Action::AddConstraint {
            kind,
            name,
            not_valid,
            using_index,
            columns: vec![],
            unique,
        }
    }

    /// Type text up to the first column option keyword.
    fn type_text(&mut self) -> String {
        let mut out = String::new();
        let mut depth = 0i32;
        while let Some(t) = self.t.get(self.i) {
            let u = t.up();
            if depth == 0
                && matches!(
                    u,
                    "NOT"
                        | "NULL"
                        | "DEFAULT"
                        | "PRIMARY"
                        | "UNIQUE"
                        | "REFERENCES"
                        | "CHECK"
                        | "AUTO_INCREMENT"
                        | "COMMENT"
                        | "COLLATE"
                        | "CHARACTER"
                        | "CHARSET"
                        | "GENERATED"
                        | "AS"
                        | "FIRST"
                        | "AFTER"
                        | "USING"
                        | "CONSTRAINT"
                        | "ON"
                        | "INVISIBLE"
                        | "VISIBLE"
                        | "STORED"
                        | "VIRTUAL"
                        | "PERSISTENT"
                )
            {
                break;
            }
            match t {
                T::P(p) if p == "(" => depth += 1,
                T::P(p) if p == ")" => depth -= 1,
                _ => {}
            }
            if depth < 0 {
                break;
            }
            let piece = match t {
                T::W(u, _, _) => u.clone(),
                T::P(p) => p.clone(),
                T::S(s) => format!("'{s}'"),
                T::N(n) => n.clone(),
            };
            if !out.is_empty()
                && !matches!(piece.as_str(), "(" | ")" | ",")
                && !out.ends_with('(')
                && !out.ends_with(',')
            {
                out.push(' ');
            }
            out.push_str(&piece);
            self.bump();
        }
        out
    }

    /// A column definition; `None` unless every token is a column option the engine
    /// accepts (trailing garbage or a swallowed statement makes it unreadable).
    fn column_def(&mut self) -> Option<ColumnSpec> {
        let name = self.ident()?;
        let data_type = self.type_text();
        if data_type.is_empty() || !parse_type_whole(&data_type, self.e) {
            return None;
        }
        let mut spec = ColumnSpec {
            name,
            auto_increment: matches!(data_type.as_str(), "SERIAL" | "BIGSERIAL" | "SMALLSERIAL"),
            data_type,
            ..Default::default()
        };
        while self.i < self.t.len() {
            let u = self.peek_up().to_string();
            self.bump();
            match u.as_str() {
                "NOT" if self.eat("NULL") => spec.not_null = true,
                "NULL" => spec.null = true,
                "DEFAULT" => {
                    let start = self.i;
                    let paren = self.peek_up() == "(";
                    let mut depth = 0;
                    while let Some(t) = self.t.get(self.i) {
                        let tu = t.up();
                        if depth == 0
                            && self.i > start
                            && matches!(
                                tu,
                                "NOT"
                                    | "NULL"
                                    | "PRIMARY"
                                    | "UNIQUE"
                                    | "REFERENCES"
                                    | "CHECK"
                                    | "AUTO_INCREMENT"
                                    | "COMMENT"
                                    | "COLLATE"
                                    | "ON"
                                    | "FIRST"
                                    | "AFTER"
                                    | "CONSTRAINT"
                                    | "GENERATED"
                            )
                        {
                            break;
                        }
                        if tu == "(" {
                            depth += 1;
                        } else if tu == ")" {
                            depth -= 1;
                        }
                        self.bump();
                    }
                    let text = Cursor {
                        t: &self.t[start..self.i],
                        i: 0,
                        e: self.e,
                    }
                    .rest_text();
                    parse_expr_whole(&text, self.e)?;
                    spec.default = Some(classify_default_text(
                        &text.replace(" ( ", "(").replace(" (", "("),
                        self.e,
                        paren,
                    ));
                }
                "PRIMARY" => {
                    spec.primary_key = true;
                    spec.not_null = true;
                }
                "UNIQUE" => spec.unique = true,
                "REFERENCES" => spec.references = self.name(),
                "CHECK" => spec.check = true,
                "AUTO_INCREMENT" | "IDENTITY" => spec.auto_increment = true,
                "GENERATED" => {
                    let identity_by_default = self.eat_seq(&["BY", "DEFAULT"]);
                    self.eat("ALWAYS");
                    if identity_by_default
                        || self.contains("IDENTITY")
                            && !self.t[self.i..].iter().any(|t| t.up() == "(")
                    {
                        spec.auto_increment = true;
                    } else {
                        spec.generated = Some(
                            if self.contains("STORED")
                                || self.contains("PERSISTENT")
                                || self.e == Engine::Postgres
                            {
                                Generated::Stored
                            } else {
                                Generated::Virtual
                            },
                        );
                    }
                }
                "AS" => {
                    spec.generated =
                        Some(if self.contains("STORED") || self.contains("PERSISTENT") {
                            Generated::Stored
                        } else {
                            Generated::Virtual
                        });
                }
                "FIRST" => spec.positioned = true,
                "AFTER" => {
                    spec.positioned = true;
                    self.ident()?;
                }
                "CONSTRAINT" => {
                    if !matches!(
                        self.peek_up(),
                        "CHECK" | "UNIQUE" | "PRIMARY" | "REFERENCES" | "NOT" | "NULL" | "DEFAULT"
                    ) {
                        self.ident()?;
                    }
                }
                "COLUMN_FORMAT" | "STORAGE" | "COMPRESSION" => {
                    self.bump();
                }
                "(" => {
                    // A parenthesised group (CHECK, REFERENCES columns, identity options).
                    let mut depth = 1;
                    while depth > 0 {
                        match self.t.get(self.i).map(T::up) {
                            Some("(") => depth += 1,
                            Some(")") => depth -= 1,
                            Some(_) => {}
                            None => return None,
                        }
                        self.bump();
                    }
                }
                "CHARACTER" | "CHARSET" => {
                    self.eat("SET");
                    spec.charset = self.raw_word().map(|s| s.to_ascii_lowercase());
                }
                "COLLATE" => spec.collate = self.raw_word().map(|s| s.to_ascii_lowercase()),
                "KEY" | "ON" | "UPDATE" | "DELETE" | "CASCADE" | "RESTRICT" | "SET" | "NO"
                | "ACTION" | "MATCH" | "FULL" | "PARTIAL" | "SIMPLE" | "DEFERRABLE"
                | "INITIALLY" | "DEFERRED" | "IMMEDIATE" | "ALWAYS" | "BY" | "STORED"
                | "VIRTUAL" | "PERSISTENT" | "INVISIBLE" | "VISIBLE" | "ENFORCED" | "COMMENT"
                | "CURRENT_TIMESTAMP" | "LOCALTIMESTAMP" | "NOW" | "SRID" | "UNSIGNED"
                | "ZEROFILL" | "SERIAL" | "NOT" => {}
                _ => match self.t.get(self.i - 1) {
                    // Literals (COMMENT 'x', SRID 4326) and quoted words are harmless.
                    Some(T::S(_) | T::N(_) | T::W(_, _, true)) => {}
                    _ => return None,
                },
            }
        }
        Some(spec)
    }
}

/// Splits ALTER TABLE's tail at top-level commas.
fn split_top_level(t: &[T]) -> Vec<&[T]> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, tok) in t.iter().enumerate() {
        match tok.up() {
            "(" => depth += 1,
            ")" => depth -= 1,
            "," if depth == 0 => {
                out.push(&t[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    // A trailing comma leaves an empty last clause, which the caller reports.
    if !t.is_empty() {
        out.push(&t[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_mysql_alter_clauses() {
        let op = recognize("ALTER TABLE `Events` ADD COLUMN `x` int NOT NULL DEFAULT 0 AFTER `id`, CONVERT TO CHARACTER SET utf8mb4, ALGORITHM=INPLACE, LOCK=NONE", Engine::Mysql).unwrap();
        let Op::AlterTable {
            table,
            actions,
            algorithm,
            lock,
        } = op
        else {
            panic!("not alter")
        };
        assert_eq!(table, "Events");
        assert_eq!(algorithm.as_deref(), Some("INPLACE"));
        assert_eq!(lock.as_deref(), Some("NONE"));
        assert!(
            matches!(&actions[0], Action::AddColumn(c) if c.not_null && c.positioned && c.default == Some(DefaultKind::Constant))
        );
        assert_eq!(actions[1], Action::TableOption(TableOption::ConvertCharset));
    }

    #[test]
    fn unknown_clause_is_kept_as_unknown() {
        let op = recognize("ALTER TABLE t FROBNICATE everything", Engine::Postgres).unwrap();
        assert!(
            matches!(op, Op::AlterTable { ref actions, .. } if matches!(actions[0], Action::Unknown(_)))
        );
    }

    #[test]
    fn prepare_from_variable() {
        assert_eq!(
            pre_parse("PREPARE stmt FROM @s", Engine::Mysql),
            Some(Op::Prepare {
                var: Some("@s".into()),
                sql: None
            })
        );
    }

    #[test]
    fn do_block_inner_ddl_is_analyzed() {
        let op = pre_parse(
            "DO $$ BEGIN ALTER TABLE t ADD COLUMN c int; END $$",
            Engine::Postgres,
        )
        .unwrap();
        assert!(matches!(op, Op::AlterTable { .. }), "{op:?}");
        let op = pre_parse(
            "DO $$ BEGIN EXECUTE format('DROP TABLE %I', x); END $$",
            Engine::Postgres,
        )
        .unwrap();
        assert!(matches!(op, Op::OpaqueCode(_)));
    }
}
