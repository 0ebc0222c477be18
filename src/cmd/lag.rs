//! `cutover lag --target NAME`: stream replica lag samples headless, one line
//! (text) or one JSON object per replica per poll.

use crate::cli::LagArgs;
use crate::config::{self, Config};
use crate::lag::{LagSample, over_limit, parse_duration, poller_for};
use std::io::Write;

/// One sample as a text line. Unknown lag says so (and why it matters).
pub fn render_text(s: &LagSample, max_seconds: f64) -> String {
    let when = s.at.format("%H:%M:%S%.3f");
    let lag = match s.seconds {
        Some(v) => format!("{v:>8.2}s"),
        None => " unknown".to_string(),
    };
    let bytes = s
        .bytes
        .map(|b| format!("  {b} B behind"))
        .unwrap_or_default();
    let flag = if over_limit(s, max_seconds) {
        if s.seconds.is_none() {
            "  OVER (unknown counts as over)"
        } else {
            "  OVER"
        }
    } else {
        ""
    };
    let why = s
        .why
        .as_deref()
        .filter(|_| s.seconds.is_none())
        .map(|w| format!("  ({w})"))
        .unwrap_or_default();
    format!("{when}  {:<20} {lag}{bytes}{flag}{why}", s.replica)
}

/// Runs the command; returns the exit code (errors are bad input: exit 2).
pub fn run(a: &LagArgs) -> Result<i32, crate::cmd::plan::InputError> {
    stream(a).map_err(|e| crate::cmd::plan::InputError(format!("{e:#}")))
}

fn stream(a: &LagArgs) -> anyhow::Result<i32> {
    let path = a
        .config
        .clone()
        .or_else(config::discover)
        .ok_or_else(|| anyhow::anyhow!("no cutover.toml found (use --config)"))?;
    let cfg = Config::load(&path)?;
    let target = cfg.target(&a.target)?.clone();
    let interval = a
        .interval
        .as_deref()
        .map(|s| {
            parse_duration(s).ok_or_else(|| {
                anyhow::anyhow!("--interval must be a duration like 500ms or 2s, not '{s}'")
            })
        })
        .transpose()?;
    let max = a.max_lag;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let (mut poller, opts) = poller_for(&target, interval)?;
        let mut tick = tokio::time::interval(opts.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut polls = 0u64;
        let stdout = std::io::stdout();
        loop {
            tick.tick().await;
            let samples = poller.poll().await;
            let mut out = stdout.lock();
            for s in &samples {
                let line = if a.format == "json" {
                    serde_json::to_string(s)?
                } else {
                    render_text(s, max)
                };
                // A closed pipe (`| head`) ends the stream quietly.
                if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
                    return Ok(0);
                }
            }
            polls += 1;
            if a.count.is_some_and(|c| polls >= c) {
                return Ok(0);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lag::LagSource;
    use chrono::{DateTime, Utc};

    fn s(seconds: Option<f64>) -> LagSample {
        LagSample {
            replica: "r1".into(),
            seconds,
            bytes: Some(40),
            source: LagSource::PgReplayLag,
            at: DateTime::<Utc>::UNIX_EPOCH,
            why: None,
        }
    }

    #[test]
    fn text_lines() {
        assert_eq!(
            render_text(&s(Some(0.5)), 1.0),
            "00:00:00.000  r1                       0.50s  40 B behind"
        );
        assert!(render_text(&s(Some(3.0)), 1.0).ends_with("OVER"));
        assert!(render_text(&s(None), 1.0).contains("unknown  40 B behind  OVER (unknown"));
    }
}
