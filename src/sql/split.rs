//! Lexical statement splitter.
//!
//! Splits a file into statements at top-level terminators while skipping comments,
//! quoted strings and identifiers, PostgreSQL dollar-quoted bodies and MySQL `#`
//! comments, and honouring MySQL `DELIMITER` lines. MySQL `/*!NNNNN … */` and
//! MariaDB `/*M!NNNNNN … */` comments are executable, so they stay in the statement's
//! text. An unterminated block comment, quote or dollar-quote is bad input
//! ([`split_checked`] names its line): the engine would not run what follows it.

use crate::model::Engine;

/// One statement as written, with the 1-based line where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawStatement {
    pub sql: String,
    pub line: usize,
}

/// Text the engine would not accept as a whole: an unterminated comment or quote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct SplitError {
    /// 1-based line where the unterminated construct starts.
    pub line: usize,
    pub message: String,
}

/// Splits `text` (whose first line is `first_line`) into statements; an
/// unterminated construct ends the text (callers that plan use [`split_checked`]).
///
/// `delimiter` is the initial terminator (`;`, or a Liquibase `endDelimiter`).
pub fn split(text: &str, engine: Engine, first_line: usize, delimiter: &str) -> Vec<RawStatement> {
    split_inner(text, engine, first_line, delimiter, usize::MAX).0
}

/// Like [`split`], but an unterminated block comment, quote or dollar-quote is an
/// error naming the line where it starts. Stops after `limit` + 1 statements (the
/// caller refuses more; splitting on would only use memory).
pub fn split_checked(
    text: &str,
    engine: Engine,
    first_line: usize,
    delimiter: &str,
    limit: usize,
) -> Result<Vec<RawStatement>, SplitError> {
    match split_inner(text, engine, first_line, delimiter, limit) {
        (_, Some(e)) => Err(e),
        (v, None) => Ok(v),
    }
}

fn split_inner(
    text: &str,
    engine: Engine,
    first_line: usize,
    delimiter: &str,
    limit: usize,
) -> (Vec<RawStatement>, Option<SplitError>) {
    let mut err: Option<SplitError> = None;
    let mut unterminated = |line: usize, what: &str| {
        if err.is_none() {
            err = Some(SplitError {
                line,
                message: format!("unterminated {what}: the rest of the file would be swallowed"),
            });
        }
    };
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    // An empty terminator would match at every byte and never advance.
    let mut delim = if delimiter.is_empty() { ";" } else { delimiter }.to_string();
    let mut i = 0usize;
    let mut line = first_line;
    // Start of the current statement's significant text, and its line.
    let mut start: Option<(usize, usize)> = None;
    let mysql = engine == Engine::Mysql;
    let at_line_start = |i: usize| i == 0 || bytes[i - 1] == b'\n';
    // MySQL routines sent without DELIMITER (multi-statement drivers): `;` inside
    // BEGIN … END does not end the CREATE PROCEDURE/FUNCTION/TRIGGER/EVENT.
    let mut routine = false;
    let mut words_seen = 0usize;
    let mut depth = 0i32;
    let mut last_word = String::new();

    while i < bytes.len() {
        if out.len() > limit {
            return (out, err);
        }
        let c = bytes[i];
        // MySQL client `DELIMITER x` lines (only between statements).
        if mysql
            && start.is_none()
            && at_line_start(i)
            && starts_with_ci(&bytes[i..], b"delimiter ")
        {
            let end = find_byte(bytes, i, b'\n').unwrap_or(bytes.len());
            let d = text[i + 10..end].trim();
            if !d.is_empty() {
                delim = d.to_string();
            }
            i = end;
            continue;
        }
        if mysql
            && start.is_some()
            && at_line_start_ws(bytes, i)
            && starts_with_ci(skip_ws(bytes, i), b"delimiter ")
        {
            // A DELIMITER line ends a statement that lacked its terminator.
            push(&mut out, text, &mut start, i);
            continue;
        }
        // A delimiter that starts with white space (Liquibase `\nGO`) is checked first.
        // Terminator? Comments and quotes are consumed whole below, so a delimiter
        // seen here is at top level (and one starting with white space, like
        // Liquibase's `\nGO`, is seen before the white space is skipped).
        // Under a custom DELIMITER the client sends everything up to it as one
        // query, and the server runs each `;`-separated statement in it (outside
        // routine bodies): so `;` still ends a statement there.
        let at_delim = bytes[i..].starts_with(delim.as_bytes());
        let at_semi = !at_delim && mysql && c == b';' && delim != ";";
        if at_delim || at_semi {
            if routine && last_word == "END" {
                // A bare END right before the terminator closes a BEGIN block.
                depth -= 1;
                last_word.clear();
            }
            if !(routine && depth > 0) {
                routine = false;
                words_seen = 0;
                depth = 0;
                push(&mut out, text, &mut start, i);
                if at_semi {
                    i += 1;
                } else {
                    line += count_newlines(delim.as_bytes());
                    i += delim.len();
                }
                continue;
            }
        }
        match c {
            b'\n' => {
                line += 1;
                i += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' | 0x0c => {
                i += 1;
                continue;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = find_byte(bytes, i, b'\n').unwrap_or(bytes.len());
                continue;
            }
            b'#' if mysql => {
                i = find_byte(bytes, i, b'\n').unwrap_or(bytes.len());
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                // MySQL `/*! ... */` and MariaDB `/*M! ... */` comments are executable:
                // they are statements' text, keep them.
                let exec = mysql
                    && (bytes.get(i + 2) == Some(&b'!')
                        || (bytes.get(i + 2) == Some(&b'M') && bytes.get(i + 3) == Some(&b'!')));
                if exec && start.is_none() {
                    start = Some((i, line));
                }
                let end = match skip_block_comment(bytes, i, !mysql) {
                    Some(end) => end,
                    None => {
                        unterminated(line, "block comment (/* without */)");
                        bytes.len()
                    }
                };
                line += count_newlines(&bytes[i..end]);
                i = end;
                continue;
            }
            _ => {}
        }
        if start.is_none() {
            start = Some((i, line));
        }
        // Terminator?
        match c {
            b'\'' => {
                let backslash = mysql || (i > 0 && (bytes[i - 1] == b'E' || bytes[i - 1] == b'e'));
                let end = skip_quoted(bytes, i, b'\'', backslash).unwrap_or_else(|| {
                    unterminated(line, "quoted string (')");
                    bytes.len()
                });
                line += count_newlines(&bytes[i..end]);
                i = end;
            }
            b'"' => {
                let end = skip_quoted(bytes, i, b'"', mysql).unwrap_or_else(|| {
                    unterminated(line, "double-quoted string or identifier (\")");
                    bytes.len()
                });
                line += count_newlines(&bytes[i..end]);
                i = end;
            }
            b'`' if mysql => {
                let end = skip_quoted(bytes, i, b'`', false).unwrap_or_else(|| {
                    unterminated(line, "backtick-quoted identifier (`)");
                    bytes.len()
                });
                line += count_newlines(&bytes[i..end]);
                i = end;
            }
            b'$' if !mysql => {
                if let Some(tag_end) = dollar_tag(bytes, i) {
                    let tag = &bytes[i..tag_end];
                    let body_end = find_sub(bytes, tag_end, tag)
                        .map(|p| p + tag.len())
                        .unwrap_or_else(|| {
                            unterminated(
                                line,
                                &format!("dollar-quoted string ({})", String::from_utf8_lossy(tag)),
                            );
                            bytes.len()
                        });
                    line += count_newlines(&bytes[i..body_end]);
                    i = body_end;
                } else {
                    i += 1;
                }
            }
            c if mysql
                && (c.is_ascii_alphabetic() || c == b'_')
                && (i == 0
                    || !(bytes[i - 1].is_ascii_alphanumeric()
                        || bytes[i - 1] == b'_'
                        || bytes[i - 1] == b'@')) =>
            {
                let mut j = i;
                while j < bytes.len()
                    && (bytes[j].is_ascii_alphanumeric()
                        || bytes[j] == b'_'
                        || (bytes[j] == b'$' && !bytes[j..].starts_with(delim.as_bytes())))
                {
                    j += 1;
                }
                let w = text[i..j].to_ascii_uppercase();
                if words_seen < 8 {
                    words_seen += 1;
                    if matches!(w.as_str(), "PROCEDURE" | "FUNCTION" | "TRIGGER" | "EVENT")
                        && text[start.map(|s| s.0).unwrap_or(i)..i]
                            .to_ascii_uppercase()
                            .trim_start()
                            .starts_with("CREATE")
                    {
                        routine = true;
                    }
                }
                if routine {
                    match w.as_str() {
                        "BEGIN" | "CASE" => depth += 1,
                        "IF" | "LOOP" | "WHILE" | "REPEAT" if last_word == "END" => {}
                        _ => {}
                    }
                    if last_word == "END"
                        && !matches!(w.as_str(), "IF" | "LOOP" | "WHILE" | "REPEAT")
                    {
                        depth -= 1;
                    }
                }
                last_word = w;
                i = j;
                continue;
            }
            _ => i += char_len(c),
        }
    }
    push(&mut out, text, &mut start, bytes.len());
    (out, err)
}

fn push(out: &mut Vec<RawStatement>, text: &str, start: &mut Option<(usize, usize)>, end: usize) {
    if let Some((s, line)) = start.take() {
        let sql = text[s..end].trim();
        if !sql.is_empty() {
            out.push(RawStatement {
                sql: sql.to_string(),
                line,
            });
        }
    }
}

fn char_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

fn at_line_start_ws(bytes: &[u8], i: usize) -> bool {
    let mut j = i;
    while j > 0 {
        match bytes[j - 1] {
            b' ' | b'\t' => j -= 1,
            b'\n' => return true,
            _ => return false,
        }
    }
    true
}

fn skip_ws(bytes: &[u8], mut i: usize) -> &[u8] {
    while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') {
        i += 1;
    }
    &bytes[i..]
}

fn starts_with_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.len() >= needle.len() && hay[..needle.len()].eq_ignore_ascii_case(needle)
}

fn find_byte(bytes: &[u8], from: usize, b: u8) -> Option<usize> {
    bytes[from..].iter().position(|&x| x == b).map(|p| p + from)
}

fn find_sub(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || from >= bytes.len() {
        return None;
    }
    bytes[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn count_newlines(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count()
}

/// Returns the index after the closing `*/` (PostgreSQL block comments nest), or
/// `None` when the comment never ends.
fn skip_block_comment(bytes: &[u8], i: usize, nested: bool) -> Option<usize> {
    let mut depth = 0usize;
    let mut j = i;
    while j + 1 < bytes.len() {
        if bytes[j] == b'/' && bytes[j + 1] == b'*' {
            depth += 1;
            j += 2;
            if !nested && depth > 1 {
                depth = 1;
            }
        } else if bytes[j] == b'*' && bytes[j + 1] == b'/' {
            depth -= 1;
            j += 2;
            if depth == 0 {
                return Some(j);
            }
        } else {
            j += 1;
        }
    }
    None
}

/// Returns the index after the closing quote (a doubled quote is an escaped quote),
/// or `None` when the quote never closes.
fn skip_quoted(bytes: &[u8], i: usize, q: u8, backslash: bool) -> Option<usize> {
    let mut j = i + 1;
    while j < bytes.len() {
        let c = bytes[j];
        if backslash && c == b'\\' {
            j += 2;
            continue;
        }
        if c == q {
            if bytes.get(j + 1) == Some(&q) {
                j += 2;
                continue;
            }
            return Some(j + 1);
        }
        j += 1;
    }
    None
}

/// If a dollar-quote tag (`$$` or `$tag$`) starts at `i`, returns the index after it.
fn dollar_tag(bytes: &[u8], i: usize) -> Option<usize> {
    // `$1` is a parameter, and `a$b` part of an identifier.
    if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') {
        return None;
    }
    let mut j = i + 1;
    while j < bytes.len() {
        let c = bytes[j];
        if c == b'$' {
            return Some(j + 1);
        }
        if !(c.is_ascii_alphanumeric() || c == b'_') || (j == i + 1 && c.is_ascii_digit()) {
            return None;
        }
        j += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqls(text: &str, engine: Engine) -> Vec<(String, usize)> {
        split(text, engine, 1, ";")
            .into_iter()
            .map(|s| (s.sql, s.line))
            .collect()
    }

    #[test]
    fn splits_on_semicolons_with_lines() {
        let got = sqls(
            "-- head\nCREATE TABLE a (id int);\n\nALTER TABLE a ADD b int;\n",
            Engine::Postgres,
        );
        assert_eq!(
            got,
            vec![
                ("CREATE TABLE a (id int)".to_string(), 2),
                ("ALTER TABLE a ADD b int".to_string(), 4)
            ]
        );
    }

    #[test]
    fn dollar_quotes_hide_semicolons() {
        let text = "CREATE FUNCTION f() RETURNS int AS $body$ BEGIN RETURN 1; END; $body$ LANGUAGE plpgsql;\nDO $$ BEGIN PERFORM 1; END $$;";
        let got = sqls(text, Engine::Postgres);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].1, 2);
    }

    #[test]
    fn quotes_and_comments_hide_semicolons() {
        let text = "INSERT INTO t VALUES ('a;b', 'it''s');\n/* x; y */ SELECT \"a;b\" FROM t; -- ; \nSELECT 1";
        let got = sqls(text, Engine::Postgres);
        assert_eq!(got.len(), 3);
        assert_eq!(got[2], ("SELECT 1".to_string(), 3));
    }

    #[test]
    fn mysql_delimiter_and_hash_comments() {
        let text = "# c;\nDELIMITER $$\nCREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END$$\nDELIMITER ;\nCALL p();\nSELECT 'a\\';b';";
        let got = sqls(text, Engine::Mysql);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].0.starts_with("CREATE PROCEDURE"));
        assert_eq!(got[0].1, 3);
        assert_eq!(got[1], ("CALL p()".to_string(), 5));
        assert_eq!(got[2].0, "SELECT 'a\\';b'");
    }

    #[test]
    fn mysql_routine_without_delimiter_stays_whole() {
        let text = "CREATE PROCEDURE p ()\nBEGIN\nDECLARE x INT;\nIF x > 0 THEN\n  UPDATE t SET a = 1;\nEND IF;\nEND;\nCALL p();\nDROP PROCEDURE IF EXISTS p;";
        let got = sqls(text, Engine::Mysql);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].0.ends_with("END"));
        assert_eq!(got[1], ("CALL p()".to_string(), 8));
    }

    #[test]
    fn semicolons_under_a_custom_delimiter_end_statements_outside_routines() {
        let text = "DELIMITER //\nDROP TRIGGER IF EXISTS t1;\nCREATE TRIGGER t1 AFTER UPDATE ON e FOR EACH ROW\nBEGIN\n  DECLARE d INT DEFAULT 0;\n  IF d THEN UPDATE m SET x = 1; END IF;\nEND;\n//\nDELIMITER ;\nSELECT 1;";
        let got = sqls(text, Engine::Mysql);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0], ("DROP TRIGGER IF EXISTS t1".to_string(), 2));
        assert!(
            got[1].0.starts_with("CREATE TRIGGER") && got[1].0.ends_with("END"),
            "{got:?}"
        );
        assert_eq!(got[1].1, 3);
    }

    #[test]
    fn custom_end_delimiter() {
        let got: Vec<_> = split("SELECT 1\nGO\nSELECT 2\nGO", Engine::Postgres, 10, "\nGO")
            .into_iter()
            .map(|s| (s.sql, s.line))
            .collect();
        assert_eq!(got, vec![("SELECT 1".into(), 10), ("SELECT 2".into(), 12)]);
    }

    #[test]
    fn unterminated_quote_runs_to_end_without_panic() {
        let got = sqls("SELECT 'abc;\nSELECT 2;", Engine::Postgres);
        assert_eq!(got.len(), 1);
    }

    #[test]
    fn unterminated_constructs_are_errors_with_their_line() {
        for (text, engine, line) in [
            (
                "SELECT 1;\nSELECT 'abc;\nDROP TABLE t;",
                Engine::Postgres,
                2,
            ),
            ("SELECT 1;\n\n/* hidden\nDROP TABLE t;", Engine::Postgres, 3),
            (
                "SELECT 1;\nDO $x$ BEGIN\nDROP TABLE t; END $$;",
                Engine::Postgres,
                2,
            ),
            ("SELECT 1;\nSELECT \"a;\nDROP TABLE t;", Engine::Postgres, 2),
            ("SELECT 1;\nSELECT 'a\\';\nDROP TABLE t;", Engine::Mysql, 2),
            ("SELECT 1;\n/*!50001 DROP TABLE t;", Engine::Mysql, 2),
            ("SELECT `a;\nDROP TABLE t;", Engine::Mysql, 1),
        ] {
            let e = split_checked(text, engine, 1, ";", usize::MAX).unwrap_err();
            assert_eq!(e.line, line, "{text}: {e}");
            assert!(e.message.starts_with("unterminated"), "{e}");
        }
        assert!(
            split_checked("SELECT '/*';\n-- '\nSELECT 1;", Engine::Postgres, 1, ";", 9).is_ok()
        );
    }

    #[test]
    fn executable_comments_are_statements() {
        let got = sqls(
            "/*!40101 SET NAMES utf8 */;\n/*M!100100 DROP TABLE t */;\n/* plain */;\nSELECT 1;",
            Engine::Mysql,
        );
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[1], ("/*M!100100 DROP TABLE t */".to_string(), 2));
    }
}
