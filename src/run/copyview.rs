//! The copy's progress as every surface shows it: one pure fold of the
//! executor's statuses, used by the console ([`crate::tui::Console`]), the
//! headless printer (which folds a `Console`) and the Slack relay
//! ([`crate::slack::RunView`]), so they cannot disagree.
//!
//! - Rate: rows per second over the last minute of *copying* statuses; none
//!   while throttled, paused, postponing the cut-over or not moving (a rate
//!   over no work is not a rate).
//! - Percent: the tool's, else rows copied over the estimated total; never
//!   clamped — gh-ost's estimate can be exceeded, and 104% is shown as such.
//! - ETA: from the recent copy rate, and unknown while not copying, below
//!   1% (too early to say), or past the estimated total.

use crate::exec::{ExecPhase, ExecStatus, Progress};
use chrono::{DateTime, Utc};
use std::collections::VecDeque;

/// Seconds of copying history used for the rate.
pub const RATE_WINDOW_SECONDS: i64 = 60;
/// Below this percentage the ETA is unknown.
pub const ETA_MIN_PERCENT: f64 = 1.0;

/// The fold (see the module doc).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CopyView {
    /// The latest status.
    pub status: Option<ExecStatus>,
    /// (time, rows copied) while copying, oldest first.
    history: VecDeque<(DateTime<Utc>, u64)>,
    /// The executor's note on a pause waiting for the running statement,
    /// kept until it pauses (later statuses describe the step instead).
    pause_wait: Option<String>,
}

impl CopyView {
    /// Folds one executor status.
    pub fn sample(&mut self, s: &ExecStatus) {
        match (&s.progress, matches!(s.phase, ExecPhase::Copying)) {
            (Some(p), true) => {
                // Out of order or a restarted copy: the old history says nothing.
                if self
                    .history
                    .back()
                    .is_some_and(|(t, r)| s.at < *t || p.rows_copied < *r)
                {
                    self.history.clear();
                }
                self.history.push_back((s.at, p.rows_copied));
                while self.history.len() > 2
                    && self
                        .history
                        .front()
                        .is_some_and(|(t, _)| (s.at - *t).num_seconds() > RATE_WINDOW_SECONDS)
                {
                    self.history.pop_front();
                }
            }
            _ => self.history.clear(),
        }
        if let Some(d) = s
            .progress
            .as_ref()
            .and_then(|p| p.detail.as_deref())
            .filter(|d| d.contains("pause requested"))
        {
            self.pause_wait = Some(d.to_string());
        } else if !matches!(s.phase, ExecPhase::Copying | ExecPhase::Starting) {
            self.pause_wait = None;
        }
        self.status = Some(s.clone());
    }

    /// The executor's note on a pause waiting for the running statement.
    pub fn pause_wait(&self) -> Option<&str> {
        self.pause_wait.as_deref()
    }

    /// The latest progress numbers.
    pub fn progress(&self) -> Option<&Progress> {
        self.status.as_ref()?.progress.as_ref()
    }

    /// Whether the executor said it is copying.
    pub fn copying(&self) -> bool {
        self.status
            .as_ref()
            .is_some_and(|s| matches!(s.phase, ExecPhase::Copying))
    }

    /// Rows per second over the recent copy; `None` when not copying or
    /// nothing moved.
    pub fn rate(&self) -> Option<f64> {
        if !self.copying() {
            return None;
        }
        let (t0, r0) = self.history.front()?;
        let (t1, r1) = self.history.back()?;
        let dt = (*t1 - *t0).num_milliseconds() as f64 / 1000.0;
        (dt > 0.0 && r1 > r0).then(|| (r1 - r0) as f64 / dt)
    }

    /// Percent done, unclamped (may exceed 100).
    pub fn percent(&self) -> Option<f64> {
        let p = self.progress()?;
        p.percent
            .or_else(|| {
                p.rows_total
                    .filter(|t| *t > 0)
                    .map(|t| p.rows_copied as f64 * 100.0 / t as f64)
            })
            .filter(|x| x.is_finite() && *x >= 0.0)
    }

    /// Seconds left at the recent copy rate (see the module doc).
    pub fn eta_seconds(&self) -> Option<f64> {
        let pct = self.percent()?;
        if !self.copying() || !(ETA_MIN_PERCENT..=100.0).contains(&pct) {
            return None;
        }
        let p = self.progress()?;
        let total = p.rows_total?;
        let rate = self.rate().filter(|r| *r > 0.0)?;
        (p.rows_copied <= total).then(|| (total - p.rows_copied) as f64 / rate)
    }
}

/// What every surface says while a pause is asked for and not yet
/// confirmed: the executor's own note when it gave one (a native ALTER or
/// index build cannot stop midway, so the pause takes effect when the
/// statement ends), else that the executor has yet to confirm it.
pub fn pause_note(pause_pending: bool, copy: &CopyView) -> Option<String> {
    if !pause_pending {
        return None;
    }
    Some(match copy.pause_wait() {
        Some(d) => d.to_string(),
        None => "pause requested: waiting for the executor to confirm".to_string(),
    })
}

/// A percentage as every surface prints it: one decimal, and past 100 said
/// so rather than hidden.
pub fn percent_label(pct: f64) -> String {
    if pct > 100.0 {
        format!("{pct:.1}% (past the estimated total)")
    } else {
        format!("{pct:.1}%")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn st(secs: i64, rows: u64, total: u64, phase: ExecPhase) -> ExecStatus {
        ExecStatus {
            phase,
            progress: Some(Progress {
                rows_copied: rows,
                rows_total: Some(total),
                percent: None,
                eta_seconds: Some(1.0),
                chunk_size: None,
                max_lag_millis: None,
                detail: None,
            }),
            at: Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
                + chrono::Duration::seconds(secs),
        }
    }

    #[test]
    fn eta_comes_from_the_recent_rate_and_is_unknown_when_it_cannot_be_known() {
        let mut v = CopyView::default();
        v.sample(&st(0, 0, 100_000, ExecPhase::Copying));
        v.sample(&st(10, 500, 100_000, ExecPhase::Copying));
        // 0.5%: too early, whatever the tool says.
        assert_eq!(v.eta_seconds(), None);
        v.sample(&st(20, 2_000, 100_000, ExecPhase::Copying));
        assert_eq!(v.rate(), Some(100.0));
        assert_eq!(v.eta_seconds(), Some(980.0));
        // Throttled: no rate, no ETA.
        v.sample(&st(
            25,
            2_000,
            100_000,
            ExecPhase::Throttled {
                reason: "lag".into(),
            },
        ));
        assert_eq!((v.rate(), v.eta_seconds()), (None, None));
        // Copying again but nothing moved: no rate over no work.
        v.sample(&st(30, 2_000, 100_000, ExecPhase::Copying));
        v.sample(&st(35, 2_000, 100_000, ExecPhase::Copying));
        assert_eq!(v.rate(), None);
        // Only the last minute counts.
        for i in 0..20 {
            v.sample(&st(
                40 + i * 5,
                2_000 + i as u64 * 5_000,
                100_000,
                ExecPhase::Copying,
            ));
        }
        assert_eq!(v.rate(), Some(1000.0));
        // Postponed cut-over: no rate.
        v.sample(&st(200, 100_000, 100_000, ExecPhase::PostponingCutOver));
        assert_eq!(v.rate(), None);
    }

    #[test]
    fn progress_past_the_estimate_is_shown_as_such() {
        let mut v = CopyView::default();
        v.sample(&st(0, 104_000, 100_000, ExecPhase::Copying));
        v.sample(&st(5, 104_500, 100_000, ExecPhase::Copying));
        let pct = v.percent().unwrap();
        assert!((pct - 104.5).abs() < 1e-9);
        assert_eq!(percent_label(pct), "104.5% (past the estimated total)");
        assert_eq!(v.eta_seconds(), None);
        assert_eq!(percent_label(42.0), "42.0%");
    }
}
