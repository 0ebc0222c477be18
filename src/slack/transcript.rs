//! Without a token the relay still runs: every payload it would send goes,
//! one JSON object per line, to `slack-transcript.jsonl` in the run
//! directory, so the demo and dry runs show exactly what the channel would see.

use super::api::{ApiError, SlackApi, methods};
use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The transcript's file name in a run directory.
pub const TRANSCRIPT_FILE: &str = "slack-transcript.jsonl";

/// An API that writes instead of sending.
#[derive(Debug)]
pub struct Transcript {
    path: PathBuf,
    counter: Mutex<u64>,
}

impl Transcript {
    /// Writes to `<run_dir>/slack-transcript.jsonl`.
    pub fn in_run_dir(run_dir: &Path) -> Transcript {
        Transcript {
            path: run_dir.join(TRANSCRIPT_FILE),
            counter: Mutex::new(0),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&self, method: &str, args: &Value) -> Result<u64, ApiError> {
        let mut n = self.counter.lock().unwrap_or_else(|p| p.into_inner());
        *n += 1;
        let line = json!({"seq": *n, "method": method, "args": args});
        let io = |e: std::io::Error| ApiError::Transport {
            method: method.to_string(),
            message: format!("{}: {e}", self.path.display()),
        };
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        writeln!(f, "{line}").map_err(io)?;
        Ok(*n)
    }
}

impl SlackApi for Transcript {
    fn call<'a>(&'a self, method: &'a str, args: Value) -> BoxFuture<'a, Result<Value, ApiError>> {
        Box::pin(async move {
            let n = self.write(method, &args)?;
            let ts = format!("{:010}.{:06}", 1, n);
            let channel = args["channel"].clone();
            Ok(match method {
                methods::POST_MESSAGE => json!({"ok": true, "channel": channel, "ts": ts}),
                methods::UPDATE => json!({"ok": true, "channel": channel, "ts": args["ts"]}),
                methods::POST_EPHEMERAL => json!({"ok": true, "message_ts": ts}),
                _ => json!({"ok": true}),
            })
        })
    }
}
