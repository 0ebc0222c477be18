//! goose (`-- +goose Up` / `-- +goose Down`) and dbmate (`-- migrate:up` /
//! `-- migrate:down`) files: one file holds both directions, and only the up half
//! is ever planned or run.
//!
//! The up half keeps the file's line numbers: every other line is blanked, so a
//! statement's line is the line in the file.

use super::MigrateError;
use crate::model::Engine;
use crate::sql::split::{RawStatement, split_checked};

/// Which tool's annotations a file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Goose,
    Dbmate,
}

/// The up half of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Up {
    pub statements: Vec<RawStatement>,
    /// `-- +goose NO TRANSACTION` / `-- migrate:up transaction:false`.
    pub no_transaction: bool,
}

/// The annotation on a line, lower-cased without the comment marker: `+goose up`,
/// `migrate:down transaction:false`, …
fn annotation(line: &str) -> Option<String> {
    let t = line.trim();
    let rest = t.strip_prefix("--")?.trim_start();
    let lower = rest.to_ascii_lowercase();
    (lower.starts_with("+goose") || lower.starts_with("migrate:"))
        .then(|| lower.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// The tool whose up/down annotations `text` carries, if any.
pub fn detect(text: &str) -> Option<Tool> {
    if !text.contains("+goose") && !text.contains("migrate:") && !text.contains("+GOOSE") {
        return None;
    }
    for line in text.lines() {
        match annotation(line).as_deref() {
            Some(a) if a.starts_with("+goose up") => return Some(Tool::Goose),
            Some(a) if a.starts_with("migrate:up") => return Some(Tool::Dbmate),
            _ => {}
        }
    }
    None
}

/// Reads the up half of a goose or dbmate file.
pub fn up(text: &str, tool: Tool, engine: Engine, path: &str) -> Result<Up, MigrateError> {
    let err = |line: usize, message: String| MigrateError::Syntax {
        path: path.to_string(),
        line,
        message,
    };
    #[derive(PartialEq)]
    enum Section {
        None,
        Up,
        Down,
    }
    let mut section = Section::None;
    let mut no_transaction = false;
    let mut seen_up = false;
    // The up half with every other line blanked (line numbers kept).
    let mut plain = String::with_capacity(text.len());
    // goose StatementBegin … StatementEnd blocks: one statement each.
    let mut blocks: Vec<RawStatement> = Vec::new();
    let mut block: Option<(usize, String)> = None;
    for (n, line) in text.lines().enumerate() {
        let lineno = n + 1;
        let a = annotation(line);
        let mut keep = false;
        match (tool, a.as_deref()) {
            (Tool::Goose, Some(a)) if a.starts_with("+goose up") => {
                if seen_up {
                    return Err(err(lineno, "a second `-- +goose Up`".into()));
                }
                seen_up = true;
                section = Section::Up;
            }
            (Tool::Goose, Some(a)) if a.starts_with("+goose down") => section = Section::Down,
            (Tool::Goose, Some("+goose no transaction")) => no_transaction = true,
            (Tool::Goose, Some(a)) if a.starts_with("+goose statementbegin") => {
                if section == Section::Up {
                    if block.is_some() {
                        return Err(err(lineno, "StatementBegin inside StatementBegin".into()));
                    }
                    block = Some((lineno + 1, String::new()));
                }
            }
            (Tool::Goose, Some(a)) if a.starts_with("+goose statementend") => {
                if section == Section::Up {
                    let Some((first, body)) = block.take() else {
                        return Err(err(lineno, "StatementEnd without StatementBegin".into()));
                    };
                    push_block(&mut blocks, first, &body);
                }
            }
            (Tool::Goose, Some(a)) if a.starts_with("+goose ") => {}
            (Tool::Dbmate, Some(a)) if a.starts_with("migrate:up") => {
                if seen_up {
                    return Err(err(lineno, "a second `-- migrate:up`".into()));
                }
                seen_up = true;
                section = Section::Up;
                no_transaction = a.split_whitespace().any(|w| w == "transaction:false");
            }
            (Tool::Dbmate, Some(a)) if a.starts_with("migrate:down") => section = Section::Down,
            _ => {
                if section == Section::Up {
                    if let Some((_, body)) = block.as_mut() {
                        body.push_str(line);
                        body.push('\n');
                    } else {
                        keep = true;
                    }
                }
            }
        }
        if keep {
            plain.push_str(line);
        }
        plain.push('\n');
    }
    if !seen_up {
        let marker = match tool {
            Tool::Goose => "-- +goose Up",
            Tool::Dbmate => "-- migrate:up",
        };
        return Err(err(
            1,
            format!("no `{marker}` annotation: nothing to apply"),
        ));
    }
    if let Some((first, _)) = block {
        return Err(err(
            first - 1,
            "StatementBegin without StatementEnd: the rest of the file would be one statement"
                .into(),
        ));
    }
    let mut statements = split_checked(&plain, engine, 1, ";", super::discover::MAX_STATEMENTS)
        .map_err(|e| err(e.line, e.message))?;
    statements.extend(blocks);
    statements.sort_by_key(|s| s.line);
    Ok(Up {
        statements,
        no_transaction,
    })
}

fn push_block(out: &mut Vec<RawStatement>, first_line: usize, body: &str) {
    let lead = body.len() - body.trim_start().len();
    let line = first_line + body[..lead].matches('\n').count();
    let sql = body.trim().trim_end_matches(';').trim();
    if !sql.is_empty() {
        out.push(RawStatement {
            sql: sql.to_string(),
            line,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqls(u: &Up) -> Vec<(&str, usize)> {
        u.statements
            .iter()
            .map(|s| (s.sql.as_str(), s.line))
            .collect()
    }

    #[test]
    fn goose_up_half_only_with_statement_blocks() {
        let text = "-- +goose Up\nCREATE TABLE a (id int);\n-- +goose StatementBegin\nCREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n-- +goose StatementEnd\nALTER TABLE a ADD b int;\n\n-- +goose Down\nDROP TABLE a;\n";
        assert_eq!(detect(text), Some(Tool::Goose));
        let u = up(text, Tool::Goose, Engine::Postgres, "g.sql").unwrap();
        assert_eq!(
            sqls(&u),
            vec![
                ("CREATE TABLE a (id int)", 2),
                (
                    "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql",
                    4
                ),
                ("ALTER TABLE a ADD b int", 6),
            ]
        );
        assert!(!u.no_transaction);
        let u = up(
            "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY i ON a (b);\n-- +goose Down\nDROP INDEX i;\n",
            Tool::Goose,
            Engine::Postgres,
            "g.sql",
        )
        .unwrap();
        assert!(u.no_transaction);
        assert_eq!(u.statements.len(), 1);
    }

    #[test]
    fn dbmate_up_half_only() {
        let text = "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON a (b);\n\n-- migrate:down\nDROP INDEX i;\n";
        assert_eq!(detect(text), Some(Tool::Dbmate));
        let u = up(text, Tool::Dbmate, Engine::Postgres, "d.sql").unwrap();
        assert!(u.no_transaction);
        assert_eq!(sqls(&u), vec![("CREATE INDEX CONCURRENTLY i ON a (b)", 2)]);
        let u = up(
            "-- migrate:down\nDROP TABLE a;\n-- migrate:up\nCREATE TABLE a (id int);\n",
            Tool::Dbmate,
            Engine::Mysql,
            "d.sql",
        )
        .unwrap();
        assert!(!u.no_transaction);
        assert_eq!(sqls(&u), vec![("CREATE TABLE a (id int)", 4)]);
    }

    #[test]
    fn unbalanced_blocks_are_errors_with_their_line() {
        let e = up(
            "-- +goose Up\n-- +goose StatementBegin\nCREATE TABLE a (id int);\n-- +goose Down\n",
            Tool::Goose,
            Engine::Postgres,
            "g.sql",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("g.sql:2:"), "{e}");
        let e = up(
            "-- +goose Up\nSELECT 1;\n-- +goose StatementEnd\n",
            Tool::Goose,
            Engine::Postgres,
            "g.sql",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("g.sql:3:"), "{e}");
    }
}
