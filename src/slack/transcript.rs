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
    /// A restarted supervisor continues the numbering of the file it finds
    /// (and so never hands out a message `ts` twice).
    pub fn in_run_dir(run_dir: &Path) -> Transcript {
        let path = run_dir.join(TRANSCRIPT_FILE);
        let last = last_seq(&path);
        // End a torn last line so the next record starts on its own.
        if std::fs::read(&path).is_ok_and(|b| b.last().is_some_and(|c| *c != b'\n'))
            && let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(&path)
        {
            let _ = writeln!(f);
        }
        Transcript {
            path,
            counter: Mutex::new(last),
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

/// The highest `seq` in an existing transcript (0 when there is none). A
/// torn last line (a crash mid-write) is skipped.
fn last_seq(path: &Path) -> u64 {
    let Ok(text) = std::fs::read_to_string(path) else {
        return 0;
    };
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["seq"].as_u64())
        .max()
        .unwrap_or(0)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_restarted_transcript_continues_the_sequence() {
        let dir = tempfile::tempdir().unwrap();
        let t = Transcript::in_run_dir(dir.path());
        for _ in 0..3 {
            t.call(methods::POST_MESSAGE, json!({"channel": "C"}))
                .await
                .unwrap();
        }
        // A crash mid-line, then a restart.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(t.path())
            .unwrap();
        write!(f, "{{\"seq\": 9").unwrap();
        drop(f);
        let t2 = Transcript::in_run_dir(dir.path());
        let r = t2
            .call(methods::POST_MESSAGE, json!({"channel": "C"}))
            .await
            .unwrap();
        assert_eq!(r["ts"], "0000000001.000004");
        let text = std::fs::read_to_string(t2.path()).unwrap();
        let seqs: Vec<u64> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| v["seq"].as_u64())
            .collect();
        assert_eq!(seqs, vec![1, 2, 3, 4]);
    }
}
