//! Connection failures in words a DBA can act on: which server, and why
//! (refused, timed out, authentication, TLS, unknown host, no such database).
//!
//! The drivers' own messages say "error connecting to server" or "db error"
//! and hide the cause in the error's source chain or the server's SQLSTATE;
//! every command that connects (plan --target, lag, run) words it here, so
//! the same failure reads the same everywhere.

use crate::sql::redact::redact_dsn;

/// Why a connection failed, in a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    Refused,
    Timeout,
    Auth,
    Tls,
    UnknownHost,
    NoDatabase,
    Other,
}

impl Cause {
    fn word(self) -> &'static str {
        match self {
            Cause::Refused => "connection refused (is the server running and listening there?)",
            Cause::Timeout => "timed out (firewall, wrong host, or server overloaded)",
            Cause::Auth => "authentication failed (user or password)",
            Cause::Tls => "TLS failed",
            Cause::UnknownHost => "unknown host (DNS)",
            Cause::NoDatabase => "no such database",
            Cause::Other => "failed",
        }
    }
}

/// `host:port` of a DSN (`postgres://…`, `mysql://…`, or key=value conninfo),
/// without the user or password.
pub fn endpoint(dsn: &str) -> String {
    if let Some((_, rest)) = dsn.split_once("://") {
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        return if hostport.is_empty() {
            "localhost".into()
        } else {
            hostport.to_string()
        };
    }
    // conninfo: host=… port=…
    let field = |k: &str| {
        dsn.split_whitespace()
            .find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
    };
    match (field("host"), field("port")) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        (None, Some(p)) => format!("localhost:{p}"),
        (None, None) => "localhost".into(),
    }
}

fn io_cause(e: &std::io::Error) -> Cause {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => Cause::Refused,
        K::TimedOut | K::WouldBlock => Cause::Timeout,
        _ => {
            let s = e.to_string().to_ascii_lowercase();
            if s.contains("failed to lookup")
                || s.contains("name or service not known")
                || s.contains("no address")
            {
                Cause::UnknownHost
            } else {
                Cause::Other
            }
        }
    }
}

/// Walks an error's source chain for an I/O error's cause.
fn chain_cause(e: &(dyn std::error::Error + 'static)) -> Option<(Cause, String)> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut deepest = None;
    while let Some(x) = cur {
        if let Some(io) = x.downcast_ref::<std::io::Error>() {
            return Some((io_cause(io), io.to_string()));
        }
        deepest = Some(x.to_string());
        cur = x.source();
    }
    let text = deepest?;
    let lower = text.to_ascii_lowercase();
    let cause = if lower.contains("timeout") || lower.contains("timed out") {
        Cause::Timeout
    } else if lower.contains("tls") || lower.contains("ssl") || lower.contains("certificate") {
        Cause::Tls
    } else {
        Cause::Other
    };
    Some((cause, text))
}

/// Words a PostgreSQL connection (or first query) failure.
pub fn postgres(dsn: &str, e: &tokio_postgres::Error) -> String {
    let at = endpoint(dsn);
    if let Some(db) = e.as_db_error() {
        let cause = match db.code().code() {
            "28P01" | "28000" => Cause::Auth,
            "3D000" => Cause::NoDatabase,
            _ => Cause::Other,
        };
        return redact_dsn(&format!(
            "PostgreSQL at {at}: {} — {} (SQLSTATE {})",
            cause.word(),
            db.message(),
            db.code().code()
        ));
    }
    let (cause, detail) = chain_cause(e).unwrap_or((Cause::Other, e.to_string()));
    redact_dsn(&format!("PostgreSQL at {at}: {} — {detail}", cause.word()))
}

/// Words a MySQL/MariaDB connection (or first query) failure.
pub fn mysql(dsn: &str, e: &mysql_async::Error) -> String {
    let at = endpoint(dsn);
    let (cause, detail) = match e {
        mysql_async::Error::Server(s) => (
            match s.code {
                1045 | 1044 | 1698 => Cause::Auth,
                1049 => Cause::NoDatabase,
                _ => Cause::Other,
            },
            format!("ERROR {} ({}): {}", s.code, s.state, s.message),
        ),
        mysql_async::Error::Io(io) => {
            let text = io.to_string();
            let lower = text.to_ascii_lowercase();
            let cause = chain_cause(io).map_or(Cause::Other, |(c, _)| c);
            let cause = if cause == Cause::Other && (lower.contains("tls") || lower.contains("ssl"))
            {
                Cause::Tls
            } else if cause == Cause::Other && lower.contains("refused") {
                Cause::Refused
            } else {
                cause
            };
            (cause, last_clause(&text))
        }
        other => chain_cause(other).unwrap_or((Cause::Other, other.to_string())),
    };
    redact_dsn(&format!(
        "MySQL/MariaDB at {at}: {} — {detail}",
        cause.word()
    ))
}

/// A connection that did not answer within `secs`.
pub fn timed_out(engine: crate::model::Engine, dsn: &str, secs: u64) -> String {
    let name = match engine {
        crate::model::Engine::Postgres => "PostgreSQL",
        crate::model::Engine::Mysql => "MySQL/MariaDB",
    };
    format!(
        "{name} at {}: {} — no answer within {secs}s",
        endpoint(dsn),
        Cause::Timeout.word()
    )
}

/// mysql_async repeats its wrapper ("Input/output error: Input/output error: …").
fn last_clause(s: &str) -> String {
    s.rsplit(": ").next().unwrap_or(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_never_carry_credentials() {
        assert_eq!(
            endpoint("postgres://u:secret@db.internal:5432/shop"),
            "db.internal:5432"
        );
        assert_eq!(
            endpoint("mysql://root@127.0.0.1:13306/x?ssl-mode=DISABLED"),
            "127.0.0.1:13306"
        );
        assert_eq!(
            endpoint("host=/tmp port=15432 user=postgres password=x"),
            "/tmp:15432"
        );
        assert_eq!(endpoint("postgres:///db"), "localhost");
    }

    #[tokio::test]
    async fn a_refused_connection_says_refused_and_where() {
        // Port 1 on loopback: nothing listens there.
        let dsn = "postgres://u:pw@127.0.0.1:1/db";
        let e = tokio_postgres::connect(dsn, tokio_postgres::NoTls)
            .await
            .err()
            .unwrap();
        let m = postgres(dsn, &e);
        assert!(
            m.contains("127.0.0.1:1") && m.contains("connection refused"),
            "{m}"
        );
        assert!(!m.contains("pw"), "{m}");
        let dsn = "mysql://u:pw@127.0.0.1:1/db";
        let e = mysql_async::Conn::new(mysql_async::Opts::from_url(dsn).unwrap())
            .await
            .err()
            .unwrap();
        let m = mysql(dsn, &e);
        assert!(
            m.contains("127.0.0.1:1") && m.contains("connection refused"),
            "{m}"
        );
    }
}
