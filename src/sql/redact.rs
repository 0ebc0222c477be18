//! Secrets never leave cutover: passwords in SQL are masked in every output.
//!
//! Redaction works on tokens, not on patterns over the raw line: comments between
//! `PASSWORD` and its literal, every literal syntax of both engines (`E'…'`,
//! `U&'…'`, `$tag$…$tag$`, MySQL `"…"`, introducers), `PASSWORD('…')` calls,
//! `IDENTIFIED BY|WITH|VIA … USING …`, conninfo `password=` inside literals, SQL
//! inside literals (DO bodies, PREPARE strings) and unterminated literals (the rest
//! of the text is masked).

use once_cell::sync::Lazy;
use regex::Regex;

/// A lexical token: its byte range and, for literals, the range of its content.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok {
    Word(usize, usize),
    /// Content range (inside the quotes); `raw` is true when the content is the
    /// text as written (no escapes), so inner offsets map onto the statement.
    Str {
        content: (usize, usize),
        raw: bool,
    },
    Punct(u8),
}

fn lex(s: &str) -> Vec<Tok> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' | 0x0c => i += 1,
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = b[i..]
                    .iter()
                    .position(|&x| x == b'\n')
                    .map_or(b.len(), |p| i + p);
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                // MySQL/MariaDB executable comments hold SQL: only their markers are skipped.
                let exec = match (b.get(i + 2), b.get(i + 3)) {
                    (Some(b'!'), _) => Some(3),
                    (Some(b'M'), Some(b'!')) => Some(4),
                    _ => None,
                };
                if let Some(n) = exec {
                    i += n;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                } else {
                    i = s[i + 2..].find("*/").map_or(b.len(), |p| i + 2 + p + 2);
                }
            }
            b'*' if b.get(i + 1) == Some(&b'/') => i += 2,
            b'\'' | b'"' | b'`' => {
                let (end, content_end, escaped) = quoted(b, i, c);
                if c == b'`' {
                    out.push(Tok::Word(i, end));
                } else {
                    out.push(Tok::Str {
                        content: (i + 1, content_end),
                        raw: !escaped,
                    });
                }
                i = end;
            }
            b'$' => {
                let tag_end = b[i + 1..]
                    .iter()
                    .position(|&x| !(x.is_ascii_alphanumeric() || x == b'_'))
                    .map(|p| i + 1 + p);
                match tag_end {
                    Some(t) if b[t] == b'$' && !(i > 0 && is_word_byte(b[i - 1])) => {
                        let tag = &s[i..=t];
                        let close = s[t + 1..].find(tag).map(|p| t + 1 + p);
                        let content_end = close.unwrap_or(b.len());
                        out.push(Tok::Str {
                            content: (t + 1, content_end),
                            raw: true,
                        });
                        i = close.map_or(b.len(), |p| p + tag.len());
                    }
                    _ => {
                        out.push(Tok::Punct(c));
                        i += 1;
                    }
                }
            }
            c if is_word_byte(c) || c >= 0x80 => {
                let start = i;
                while i < b.len() && (is_word_byte(b[i]) || b[i] >= 0x80) {
                    i += 1;
                }
                // Literal prefixes: E'…', N'…', B'…', X'…', _utf8mb4'…', U&'…'.
                if i < b.len() && b[i] == b'\'' {
                    let (end, content_end, escaped) = quoted(b, i, b'\'');
                    out.push(Tok::Str {
                        content: (i + 1, content_end),
                        raw: !escaped,
                    });
                    i = end;
                } else if s[start..i].eq_ignore_ascii_case("u")
                    && b.get(i) == Some(&b'&')
                    && b.get(i + 1) == Some(&b'\'')
                {
                    let (end, content_end, escaped) = quoted(b, i + 1, b'\'');
                    out.push(Tok::Str {
                        content: (i + 2, content_end),
                        raw: !escaped,
                    });
                    i = end;
                } else {
                    out.push(Tok::Word(start, i));
                }
            }
            _ => {
                out.push(Tok::Punct(c));
                i += 1;
            }
        }
    }
    out
}

fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'@'
}

/// A quoted literal starting at `i`: (index after it, end of content, had escapes).
/// Backslash always escapes (MySQL, PostgreSQL E''): for a standard PostgreSQL
/// string that ends in a backslash this masks too much, never too little.
fn quoted(b: &[u8], i: usize, q: u8) -> (usize, usize, bool) {
    let mut j = i + 1;
    let mut escaped = false;
    while j < b.len() {
        if b[j] == b'\\' && q != b'`' {
            escaped = true;
            j += 2;
            continue;
        }
        if b[j] == q {
            if b.get(j + 1) == Some(&q) {
                escaped = true;
                j += 2;
                continue;
            }
            return (j + 1, j, escaped);
        }
        j += 1;
    }
    // Unterminated: everything after the quote is its content.
    (b.len(), b.len(), escaped)
}

/// Byte ranges of `sql` that hold secrets, and secret values seen only inside
/// escaped literals (for [`scrub`]).
fn secret_spans(sql: &str) -> (Vec<(usize, usize)>, Vec<String>) {
    let toks = lex(sql);
    let word = |t: &Tok| match t {
        Tok::Word(a, z) => Some(&sql[*a..*z]),
        _ => None,
    };
    let mut spans = Vec::new();
    let mut values = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let w = word(&toks[i]).map(|w| w.to_ascii_uppercase());
        match w.as_deref() {
            Some(w) if w == "PASSWORD" || w.ends_with("_PASSWORD") => {
                // PASSWORD 'x' | PASSWORD = 'x' | PASSWORD('x') | PASSWORD = PASSWORD('x')
                // | SET PASSWORD FOR user@host = …
                let mut j = i + 1;
                if word(toks.get(j).unwrap_or(&Tok::Punct(0)))
                    .is_some_and(|x| x.eq_ignore_ascii_case("for"))
                {
                    while j < toks.len() && j <= i + 12 && toks[j] != Tok::Punct(b'=') {
                        j += 1;
                    }
                }
                let limit = j + 4;
                while j < toks.len() && j <= limit {
                    match toks[j] {
                        Tok::Punct(b'=' | b'(') => j += 1,
                        Tok::Word(..)
                            if word(&toks[j])
                                .is_some_and(|x| x.eq_ignore_ascii_case("password")) =>
                        {
                            j += 1
                        }
                        Tok::Str { content, .. } => {
                            spans.push(content);
                            break;
                        }
                        _ => break,
                    }
                }
            }
            Some("IDENTIFIED") => {
                // IDENTIFIED BY 'x' | WITH plugin BY|AS 'x' | VIA plugin USING 'x' OR …
                let mut j = i + 1;
                while j < toks.len() && j <= i + 16 {
                    match toks[j] {
                        Tok::Punct(b',' | b';') => break,
                        Tok::Str { content, .. } => spans.push(content),
                        _ => {}
                    }
                    j += 1;
                }
            }
            _ => {}
        }
        if let Tok::Str { content, raw } = toks[i] {
            let inner = &sql[content.0..content.1];
            let lower = inner.to_ascii_lowercase();
            if let Some(p) = conninfo_password(&lower) {
                spans.push((content.0 + p.0, content.0 + p.1));
            } else if lower.contains("password") || lower.contains("identified") {
                // SQL inside a literal (DO body, PREPARE string, SET @s = '…').
                if raw {
                    let (nested, inner_values) = secret_spans(inner);
                    spans.extend(nested.iter().map(|(a, z)| (content.0 + a, content.0 + z)));
                    values.extend(inner_values);
                } else {
                    // Escapes shift offsets: mask the whole literal, and remember
                    // the unescaped values.
                    let unescaped = inner.replace("''", "'").replace("\\'", "'");
                    let (nested, inner_values) = secret_spans(&unescaped);
                    if !nested.is_empty() {
                        spans.push(content);
                        values.extend(nested.iter().map(|(a, z)| unescaped[*a..*z].to_string()));
                        values.extend(inner_values);
                    }
                }
            }
        }
        i += 1;
    }
    spans.sort();
    (spans, values)
}

/// `password=value` inside a conninfo string: the value's range.
fn conninfo_password(lower: &str) -> Option<(usize, usize)> {
    static RE: Lazy<Regex> = Lazy::new(|| Regex::new(r"password\s*=\s*").expect("static regex"));
    let m = RE.find(lower)?;
    let rest = &lower[m.end()..];
    let len = if rest.starts_with(['\'', '"', '\\']) {
        rest.len()
    } else {
        rest.find(char::is_whitespace).unwrap_or(rest.len())
    };
    Some((m.end(), m.end() + len))
}

/// Replaces secrets with `***` (a literal keeps its quotes: `'***'`).
pub fn redact(sql: &str) -> String {
    redact_with_secrets(sql).0
}

/// Redacts `sql` and returns the secret values found, so text derived from the
/// statement (finding messages, parser errors) can be cleaned too.
pub fn redact_with_secrets(sql: &str) -> (String, Vec<String>) {
    // Cheap pre-check: almost no statement mentions a password.
    use crate::sql::analyze::contains_ci;
    if !contains_ci(sql, b"password") && !contains_ci(sql, b"identified") {
        return (sql.to_string(), Vec::new());
    }
    let (spans, mut secrets) = secret_spans(sql);
    if spans.is_empty() {
        return (sql.to_string(), Vec::new());
    }
    let mut out = String::with_capacity(sql.len());
    let mut at = 0;
    for (a, z) in spans {
        if a < at {
            continue;
        }
        out.push_str(&sql[at..a]);
        out.push_str("***");
        if z > a {
            secrets.push(sql[a..z].to_string());
        }
        at = z;
    }
    out.push_str(&sql[at..]);
    (out, secrets)
}

/// Removes known secret values from text derived from a statement.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut s = text.to_string();
    for v in secrets {
        // Derived text may show the value unescaped or re-escaped.
        for form in [v.clone(), v.replace("''", "'"), v.replace("\\'", "'")] {
            if !form.is_empty() && s.contains(&form) {
                s = s.replace(&form, "***");
            }
        }
    }
    s
}

/// Masks the password in a connection URL or DSN (`postgres://u:secret@h/db`).
pub fn redact_dsn(dsn: &str) -> String {
    static URL: Lazy<Regex> =
        Lazy::new(|| Regex::new(r"(://[^:/@]*:)([^@]*)(@)").expect("static regex"));
    static KV: Lazy<Regex> =
        Lazy::new(|| Regex::new(r"(?i)(password\s*=\s*)(\S+)").expect("static regex"));
    let s = URL.replace_all(dsn, "$1***$3");
    KV.replace_all(&s, "$1***").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords() {
        assert_eq!(
            redact("CREATE USER u IDENTIFIED BY 's3cret'"),
            "CREATE USER u IDENTIFIED BY '***'"
        );
        assert_eq!(
            redact("ALTER ROLE r WITH ENCRYPTED PASSWORD 'x''y'"),
            "ALTER ROLE r WITH ENCRYPTED PASSWORD '***'"
        );
        assert!(!redact("CHANGE MASTER TO MASTER_PASSWORD='repl'").contains("repl'"));
        assert_eq!(
            redact_dsn("postgres://app:hunter2@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        assert_eq!(
            redact_dsn("host=db password=hunter2 user=x"),
            "host=db password=*** user=x"
        );
    }

    /// Every syntax the issue lists: the secret `hunter2` never survives.
    #[test]
    fn masks_every_password_syntax_by_token() {
        for sql in [
            "ALTER ROLE r PASSWORD E'hunter2'",
            "ALTER ROLE r PASSWORD E'hun\\'ter2'",
            "ALTER ROLE r PASSWORD $$hunter2$$",
            "ALTER ROLE r PASSWORD $pw$hunter2$pw$",
            "ALTER ROLE r PASSWORD/**/'hunter2'",
            "ALTER ROLE r PASSWORD -- c\n 'hunter2'",
            "ALTER ROLE r PASSWORD U&'hunter2'",
            "ALTER ROLE r PASSWORD u&'hunter2'",
            "SELECT dblink_connect('host=db user=u password=hunter2 dbname=x')",
            "CREATE SUBSCRIPTION s CONNECTION 'host=db password=hunter2' PUBLICATION p",
            "CREATE USER MAPPING FOR u SERVER s OPTIONS (user 'u', password 'hunter2')",
            "DO $$ BEGIN CREATE ROLE r LOGIN PASSWORD 'hunter2'; END $$",
            "DO $body$ BEGIN EXECUTE 'ALTER ROLE r PASSWORD ''hunter2'''; END $body$",
            "ALTER ROLE r PASSWORD 'hunter2",
            "ALTER ROLE r PASSWORD $$hunter2",
            "SET PASSWORD FOR u = PASSWORD('hunter2')",
            "SET PASSWORD FOR 'u'@'%' = 'hunter2'",
            "SET PASSWORD = \"hunter2\"",
            "CREATE USER u IDENTIFIED VIA ed25519 USING PASSWORD('hunter2')",
            "CREATE USER u IDENTIFIED VIA mysql_native_password USING 'hunter2' OR unix_socket",
            "CREATE USER u IDENTIFIED WITH 'caching_sha2_password' BY 'hunter2'",
            "ALTER USER u IDENTIFIED BY _utf8mb4'hunter2'",
            "PREPARE s FROM 'CREATE USER u IDENTIFIED BY \\'hunter2\\''",
            "SET @s = 'ALTER USER u IDENTIFIED BY ''hunter2'''",
            "SELECT PASSWORD('hunter2') = authentication_string FROM mysql.user",
            "/*!80000 CREATE USER u IDENTIFIED BY 'hunter2' */",
            "/*M!100100 ALTER USER u IDENTIFIED BY 'hunter2' */",
            "CHANGE REPLICATION SOURCE TO SOURCE_PASSWORD = 'hunter2'",
        ] {
            let (r, secrets) = redact_with_secrets(sql);
            assert!(!r.contains("hunter2") && !r.contains("ter2"), "{sql} → {r}");
            assert!(r.contains("***"), "{sql} → {r}");
            let msg = format!("parser error near: {sql}");
            assert!(
                !scrub(&msg, &secrets).contains("ter2"),
                "{sql}: {secrets:?}"
            );
        }
        // Nothing secret: unchanged.
        for sql in [
            "ALTER TABLE users ADD COLUMN password_hash text",
            "UPDATE users SET password = NULL WHERE id = 1",
            "SELECT 'no secrets here'",
        ] {
            assert_eq!(redact(sql), sql);
        }
    }
}
