//! Secrets never leave cutover: passwords in SQL are masked in every output.

use once_cell::sync::Lazy;
use regex::Regex;

static PATTERNS: Lazy<Vec<Regex>> = Lazy::new(|| {
    [
        // MySQL: IDENTIFIED BY 'x', IDENTIFIED WITH plugin BY 'x', IDENTIFIED BY PASSWORD 'x'
        r#"(?i)(identified\s+(?:with\s+\S+\s+)?(?:by|as)\s+(?:password\s+)?)('(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")"#,
        // PostgreSQL: PASSWORD 'x', ENCRYPTED PASSWORD 'x'
        r"(?i)(password\s*(?:=\s*)?)('(?:[^'\\]|\\.|'')*')",
        // MASTER_PASSWORD='x' and friends
        r"(?i)((?:master|source)_password\s*=\s*)('(?:[^'\\]|\\.|'')*')",
    ]
    .iter()
    .map(|p| Regex::new(p).expect("static regex"))
    .collect()
});

/// Replaces quoted secrets with `'***'`.
pub fn redact(sql: &str) -> String {
    // Cheap pre-check: almost no statement mentions a password.
    let lower = sql.to_ascii_lowercase();
    if !lower.contains("password") && !lower.contains("identified") {
        return sql.to_string();
    }
    let mut s = sql.to_string();
    for re in PATTERNS.iter() {
        s = re.replace_all(&s, "$1'***'").into_owned();
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
}
