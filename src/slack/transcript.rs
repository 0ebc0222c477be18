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

/// What the channel would have shown, as text, from a transcript's lines:
/// each top-level message in its final state (after every edit), its thread
/// replies indented under it, buttons as `[Label]`.
pub fn render_channel(transcript: &str) -> Vec<String> {
    struct Msg {
        ts: String,
        thread: Option<String>,
        args: Value,
        edits: u32,
        broadcast: bool,
    }
    let mut msgs: Vec<Msg> = Vec::new();
    for v in transcript
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        let seq = v["seq"].as_u64().unwrap_or(0);
        let args = v["args"].clone();
        match v["method"].as_str().unwrap_or("") {
            methods::POST_MESSAGE => msgs.push(Msg {
                ts: format!("{:010}.{:06}", 1, seq),
                thread: args["thread_ts"].as_str().map(str::to_string),
                broadcast: args["reply_broadcast"] == true,
                args,
                edits: 0,
            }),
            methods::UPDATE => {
                if let Some(m) = msgs
                    .iter_mut()
                    .find(|m| Some(m.ts.as_str()) == args["ts"].as_str())
                {
                    m.args = args;
                    m.edits += 1;
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    let show = |m: &Msg, indent: &str, out: &mut Vec<String>| {
        let mut lines = blocks_text(&m.args);
        if lines.is_empty() {
            lines = m.args["text"]
                .as_str()
                .unwrap_or("")
                .lines()
                .map(unescape)
                .collect();
        }
        let mut note = Vec::new();
        if m.edits > 0 {
            note.push(format!("edited {} time(s)", m.edits));
        }
        if m.broadcast {
            note.push("also sent to the channel".to_string());
        }
        let head = if indent.is_empty() { "●" } else { "↳" };
        out.push(format!(
            "{indent}{head} message {}{}",
            m.ts,
            if note.is_empty() {
                String::new()
            } else {
                format!(" ({})", note.join(", "))
            }
        ));
        for l in lines {
            out.push(format!("{indent}  {l}"));
        }
    };
    for m in msgs.iter().filter(|m| m.thread.is_none()) {
        show(m, "", &mut out);
        for r in msgs
            .iter()
            .filter(|r| r.thread.as_deref() == Some(m.ts.as_str()))
        {
            show(r, "    ", &mut out);
        }
        out.push(String::new());
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A section field on one line: "*Label*\nA\nB" → "*Label*: A, B" (a field
/// of several lines, such as one replica per line, stays readable).
fn field_line(text: &str) -> String {
    match text.split_once('\n') {
        Some((label, rest)) => format!("{label}: {}", rest.replace('\n', ", ")),
        None => text.to_string(),
    }
}

/// A message's blocks as text lines.
fn blocks_text(args: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let text_of = |v: &Value| unescape(v["text"].as_str().unwrap_or(""));
    for b in args["blocks"].as_array().into_iter().flatten() {
        match b["type"].as_str().unwrap_or("") {
            "header" => out.push(format!("# {}", text_of(&b["text"]))),
            "divider" => out.push("────".into()),
            "section" => {
                if b.get("text").is_some() {
                    out.extend(text_of(&b["text"]).lines().map(str::to_string));
                }
                let fields: Vec<String> = b["fields"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|f| field_line(&text_of(f)))
                    .collect();
                if !fields.is_empty() {
                    out.push(fields.join(" · "));
                }
            }
            "context" => {
                let parts: Vec<String> = b["elements"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(text_of)
                    .collect();
                out.extend(parts.join(" · ").lines().map(str::to_string));
            }
            "actions" => {
                let buttons: Vec<String> = b["elements"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| format!("[{}]", e["text"]["text"].as_str().unwrap_or("?")))
                    .collect();
                out.push(buttons.join(" "));
            }
            "rich_text" => {
                for e in b["elements"].as_array().into_iter().flatten() {
                    let text: String = e["elements"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|x| x["text"].as_str().unwrap_or("").to_string())
                        .collect();
                    let pre = e["type"] == "rich_text_preformatted";
                    for l in text.lines() {
                        out.push(if pre {
                            format!("    {l}")
                        } else {
                            l.to_string()
                        });
                    }
                }
            }
            _ => {}
        }
    }
    out
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

    #[test]
    fn a_field_of_several_lines_reads_as_a_list() {
        let lines = blocks_text(&json!({"blocks": [{"type": "section", "fields": [
            {"type": "mrkdwn", "text": "*Rows*\n48,000"},
            {"type": "mrkdwn", "text": "*Replica lag*\n🟢 `r1` 0.2s / 1.5s\n🔴 `r2` 1.9s / 1.5s"}]}]}));
        assert_eq!(
            lines,
            vec!["*Rows*: 48,000 · *Replica lag*: 🟢 `r1` 0.2s / 1.5s, 🔴 `r2` 1.9s / 1.5s"]
        );
    }

    #[tokio::test]
    async fn the_channel_renders_from_a_transcript_in_its_final_state() {
        let dir = tempfile::tempdir().unwrap();
        let t = Transcript::in_run_dir(dir.path());
        let pre = t
            .call(
                methods::POST_MESSAGE,
                json!({"channel": "C", "text": "x", "blocks": [
                    {"type": "header", "text": {"type": "plain_text", "text": "v42 on prod"}},
                    {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Approve"}}]}]}),
            )
            .await
            .unwrap();
        let ts = pre["ts"].as_str().unwrap().to_string();
        t.call(
            methods::POST_MESSAGE,
            json!({"channel": "C", "thread_ts": ts, "text": "x", "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": "&lt;!channel&gt; paused"}}]}),
        )
        .await
        .unwrap();
        t.call(
            methods::UPDATE,
            json!({"channel": "C", "ts": ts, "text": "x", "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "✅ v42 on prod"}},
                {"type": "rich_text", "elements": [{"type": "rich_text_preformatted", "elements": [{"type": "text", "text": "ALTER TABLE t"}]}]}]}),
        )
        .await
        .unwrap();
        let text = std::fs::read_to_string(t.path()).unwrap();
        let lines = render_channel(&text);
        let all = lines.join("\n");
        assert!(all.contains("(edited 1 time(s))"), "{all}");
        assert!(
            all.contains("# ✅ v42 on prod") && !all.contains("[Approve]"),
            "{all}"
        );
        assert!(all.contains("    ALTER TABLE t"), "{all}");
        assert!(
            all.contains("    ↳ message") && all.contains("<!channel> paused"),
            "{all}"
        );
    }
}
