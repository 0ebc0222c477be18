//! The service socket's protocol: one JSON request line from the client,
//! one JSON reply line from the service. A `connect` reply that succeeds
//! turns the connection into the run's supervisor protocol
//! ([`crate::supervisor::protocol`]), relayed as is.
//!
//! Every request carries `v`; a service that speaks another version says so
//! instead of guessing. Nothing a client sends is trusted beyond the bytes
//! of its migration files and the names it asks for: the service plans,
//! digests and records itself, and takes the actor from the peer's uid.

use crate::model::Plan;
use serde::{Deserialize, Serialize};

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;

/// Largest request line the service reads (the migration files travel in it).
pub const MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;

/// A request line: `{"v":1,"op":"…",…}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Protocol version.
    pub v: u32,
    /// What is asked.
    #[serde(flatten)]
    pub op: Op,
}

/// What a client asks the service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// `cutover run`: plan these files for `target` and open (or find) the
    /// run; the service requests it (or continues it) as the peer.
    Run {
        /// A target of the service's cutover.toml.
        target: String,
        /// The paths given on the command line, with their files.
        inputs: Vec<Input>,
        /// `--source-format`.
        #[serde(default)]
        source_format: Option<String>,
        /// `--postpone-cut-over`.
        #[serde(default)]
        postpone_cut_over: bool,
        /// Stop the supervisor the service started when the request is
        /// refused (the client is headless and will not wait).
        #[serde(default)]
        stop_if_refused: bool,
    },
    /// Relay this connection to the run's supervisor, as the peer.
    Connect {
        /// Run id.
        run: String,
        /// Start the run's supervisor when it is not running (`cutover resume`).
        #[serde(default)]
        start: bool,
    },
    /// The plan of a run (what the console shows).
    Plan {
        /// Run id.
        run: String,
    },
    /// `cutover audit head` of the service's trail.
    Head,
    /// `cutover runs`: the service's runs, from its trail.
    Runs,
    /// `cutover cleanup RUN`, as the peer (a DBA). Without `confirm` the
    /// service replies with what it would remove and the table name that
    /// confirms; with it, it removes them, unless what it finds now differs
    /// from `shown` (what the person confirmed).
    Cleanup {
        /// Run id.
        run: String,
        /// `--backups`.
        #[serde(default)]
        backups: bool,
        /// The table name the person typed.
        #[serde(default)]
        confirm: Option<String>,
        /// The listing the person saw before typing it.
        #[serde(default)]
        shown: Option<String>,
    },
    /// `cutover forget RUN`, as the peer (its requester or a DBA).
    Forget {
        /// Run id.
        run: String,
    },
}

/// One path given on the command line: a file, or a directory with the
/// files under it (names relative to it, `/`-separated).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The path's last component (`db`, `V1__a.sql`).
    pub name: String,
    /// Whether the path was a directory.
    pub dir: bool,
    /// Its files: for a file, one with an empty `path`.
    pub files: Vec<SubmittedFile>,
}

/// A file's bytes, as UTF-8 text (migrations are text; others are refused
/// by the client, naming the file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmittedFile {
    /// Relative to its input (`sub/V2__b.sql`), empty for a file input.
    pub path: String,
    /// Contents.
    pub text: String,
}

/// The reply line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Reply {
    /// Protocol version of the service.
    pub v: u32,
    /// Whether the request was carried out.
    pub ok: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The exit code the client should end with when not ok (2 bad input,
    /// 1 trail does not verify).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<i32>,
    /// The run (`run`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// The run's plan (`run`, `plan`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Box<Plan>>,
    /// The request or continuation was refused (`run`): the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// Something to tell the person (`run`: nothing to run, continuing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The runs (`runs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<Vec<crate::cmd::runs::RunRow>>,
    /// `<records> <tag>` (`head`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// What the command prints on standard output (`cleanup`, `forget`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// The table name to type to confirm (`cleanup` without `confirm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm: Option<String>,
}

impl Reply {
    /// A successful reply.
    pub fn ok() -> Reply {
        Reply {
            v: VERSION,
            ok: true,
            ..Reply::default()
        }
    }

    /// What a command run in the service had to say.
    pub fn outcome(o: crate::cmd::Outcome) -> Reply {
        Reply {
            v: VERSION,
            ok: o.code == 0,
            output: (!o.out.is_empty()).then_some(o.out),
            error: (!o.err.is_empty()).then_some(o.err),
            exit: Some(o.code),
            ..Reply::default()
        }
    }

    /// A failed one.
    pub fn error(message: impl Into<String>, exit: i32) -> Reply {
        Reply {
            v: VERSION,
            ok: false,
            error: Some(message.into()),
            exit: Some(exit),
            ..Reply::default()
        }
    }
}

/// A run id a client may name: what [`crate::cmd::run::run_id`] makes, never
/// a path (no `/`, no `..`, no leading dot).
pub fn valid_run_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A submitted relative path, as components: no absolute path, no `..`, no
/// empty or dot component — the service writes it under its own directory.
pub fn relative_parts(path: &str) -> Option<Vec<&str>> {
    if path.is_empty() {
        return Some(Vec::new());
    }
    let parts: Vec<&str> = path.split('/').collect();
    parts
        .iter()
        .all(|p| !p.is_empty() && *p != "." && *p != ".." && !p.contains('\0'))
        .then_some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_with_their_version() {
        let r = Request {
            v: VERSION,
            op: Op::Connect {
                run: "prod-1..2-abc".into(),
                start: false,
            },
        };
        let line = serde_json::to_string(&r).unwrap_or_default();
        assert_eq!(
            line,
            r#"{"v":1,"op":"connect","run":"prod-1..2-abc","start":false}"#
        );
        assert_eq!(serde_json::from_str::<Request>(&line).ok(), Some(r));
        assert!(serde_json::from_str::<Request>(r#"{"v":1,"op":"head"}"#).is_ok());
        assert!(serde_json::from_str::<Request>(r#"{"v":1,"op":"format_disk"}"#).is_err());
    }

    #[test]
    fn names_from_clients_stay_inside() {
        assert!(valid_run_id("prod-V1..V9-3fa2c1d9e0b4-2"));
        for bad in ["", "../x", "a/b", ".hidden", "a b"] {
            assert!(!valid_run_id(bad), "{bad}");
        }
        assert_eq!(relative_parts("sub/V1.sql"), Some(vec!["sub", "V1.sql"]));
        assert_eq!(relative_parts(""), Some(vec![]));
        for bad in ["/etc/passwd", "../x", "a/../b", "a//b", "./a"] {
            assert_eq!(relative_parts(bad), None, "{bad}");
        }
    }
}
