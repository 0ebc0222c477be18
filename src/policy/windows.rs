//! Change windows: peak periods, freezes and maintenance windows, evaluated
//! in the configured time zone at an injected instant.
//!
//! DST: a local time that does not exist (spring forward) means the instant
//! the clocks jump; a local time that occurs twice (fall back) is read so the
//! period is as wide as possible (earliest start, latest end). For a peak or
//! a freeze that is the safe reading; a maintenance window suggestion is then
//! still checked against the estimated duration.

use super::config::{RecurringWindow, WindowsConfig};
use crate::model::Risk;
use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Mutex;

/// Source of "now", injected so that window logic is testable.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to (tests, demos).
#[derive(Debug)]
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    /// A clock stopped at `at`.
    pub fn new(at: DateTime<Utc>) -> FixedClock {
        FixedClock(Mutex::new(at))
    }

    /// Moves the clock to `at`.
    pub fn set(&self, at: DateTime<Utc>) {
        if let Ok(mut g) = self.0.lock() {
            *g = at;
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        if let Ok(mut g) = self.0.lock() {
            *g += by;
        }
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        // A poisoned lock still holds a valid instant.
        match self.0.lock() {
            Ok(g) => *g,
            Err(p) => *p.into_inner(),
        }
    }
}

/// A local wall-clock time `HH:MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClockTime {
    /// Hour, 0–23.
    pub hour: u32,
    /// Minute, 0–59.
    pub minute: u32,
}

impl TryFrom<String> for ClockTime {
    type Error = String;
    fn try_from(s: String) -> Result<ClockTime, String> {
        let bad = || format!("bad time '{s}' (expected HH:MM, 24-hour)");
        let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
        let hour: u32 = h.parse().map_err(|_| bad())?;
        let minute: u32 = m.parse().map_err(|_| bad())?;
        if hour > 23 || minute > 59 {
            return Err(bad());
        }
        Ok(ClockTime { hour, minute })
    }
}

impl From<ClockTime> for String {
    fn from(t: ClockTime) -> String {
        t.to_string()
    }
}

impl fmt::Display for ClockTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

/// What a window says about a run of some risk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum WindowDecision {
    /// Go ahead.
    #[default]
    Allow,
    /// Go ahead, but say so on every surface.
    Warn,
    /// Refuse unless a DBA overrides with a reason.
    Block,
}

/// A concrete period in UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// Name of the window, if configured.
    pub name: Option<String>,
    /// Start (inclusive).
    pub start: DateTime<Utc>,
    /// End (exclusive).
    pub end: DateTime<Utc>,
}

impl Span {
    /// Whether `t` lies within the span.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }

    fn overlaps(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        self.start < end && start < self.end
    }

    /// `name 2025-03-29 02:00–05:00 Europe/Berlin`, in local time.
    pub fn describe(&self, tz: Tz) -> String {
        let s = self.start.with_timezone(&tz);
        let e = self.end.with_timezone(&tz);
        format!(
            "{}{}–{} {} ({})",
            self.name
                .as_deref()
                .map(|n| format!("{n} "))
                .unwrap_or_default(),
            s.format("%a %Y-%m-%d %H:%M"),
            e.format("%H:%M"),
            tz.name(),
            e.format("%Z")
        )
    }
}

/// The verdict of the windows on a run at an instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowVerdict {
    /// The strictest applicable decision.
    pub decision: WindowDecision,
    /// Why (empty when nothing applies).
    pub reasons: Vec<String>,
    /// When blocked: the next maintenance window that fits the estimated duration.
    pub suggestion: Option<Span>,
}

impl WindowVerdict {
    /// One sentence for a refusal or warning, naming the suggested window.
    pub fn explain(&self, tz_name: &str) -> String {
        let mut s = self.reasons.join("; ");
        if let Some(next) = &self.suggestion {
            let tz: Tz = tz_name.parse().unwrap_or(Tz::UTC);
            s.push_str(&format!(
                "; next maintenance window that fits: {}",
                next.describe(tz)
            ));
        } else if self.decision == WindowDecision::Block {
            s.push_str("; no maintenance window in the next 60 days fits the estimated duration");
        }
        s
    }
}

/// A time zone that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown time zone '{0}' in [policy.windows] (use an IANA name such as Europe/Berlin)")]
pub struct BadTimeZone(pub String);

/// How far ahead a suggestion is searched for.
const HORIZON_DAYS: i64 = 60;

impl WindowsConfig {
    /// The configured time zone.
    pub fn tz(&self) -> Result<Tz, BadTimeZone> {
        self.timezone
            .parse::<Tz>()
            .map_err(|_| BadTimeZone(self.timezone.clone()))
    }
}

/// Evaluates the windows for a run of `risk` and `estimated` duration at `now`.
pub fn evaluate(
    cfg: &WindowsConfig,
    risk: Risk,
    estimated: Duration,
    now: DateTime<Utc>,
) -> Result<WindowVerdict, BadTimeZone> {
    let tz = cfg.tz()?;
    let (decision, reasons) = decision_at(cfg, tz, risk, now, now);
    let suggestion = if decision == WindowDecision::Block {
        next_maintenance(cfg, tz, risk, estimated, now)
    } else {
        None
    };
    Ok(WindowVerdict {
        decision,
        reasons,
        suggestion,
    })
}

/// The strictest decision over `[start, end]` (a point when equal) and its reasons.
fn decision_at(
    cfg: &WindowsConfig,
    tz: Tz,
    risk: Risk,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> (WindowDecision, Vec<String>) {
    let hit = |s: &Span| {
        if start == end {
            s.contains(start)
        } else {
            s.overlaps(start, end)
        }
    };
    let mut decision = WindowDecision::Allow;
    let mut reasons = Vec::new();
    for f in &cfg.freezes {
        if freeze_span(tz, f.from, f.to).as_ref().is_some_and(hit) {
            let d = cfg.during_freeze.for_risk(risk);
            decision = decision.max(d);
            reasons.push(format!(
                "change freeze {} to {}: {} ({} for {risk} risk)",
                f.from,
                f.to,
                f.reason,
                label(d)
            ));
        }
    }
    for w in &cfg.peak {
        if let Some(span) = occurrences(tz, w, start - Duration::days(8), end).find(|s| hit(s)) {
            let d = cfg.during_peak.for_risk(risk);
            decision = decision.max(d);
            reasons.push(format!(
                "peak traffic ({}) ({} for {risk} risk)",
                span.describe(tz),
                label(d)
            ));
        }
    }
    (decision, reasons)
}

fn label(d: WindowDecision) -> &'static str {
    match d {
        WindowDecision::Allow => "allowed",
        WindowDecision::Warn => "warning",
        WindowDecision::Block => "blocked",
    }
}

/// The first maintenance window after `now` with at least `estimated` left in
/// it, that no peak or freeze blocks for this risk.
pub fn next_maintenance(
    cfg: &WindowsConfig,
    tz: Tz,
    risk: Risk,
    estimated: Duration,
    now: DateTime<Utc>,
) -> Option<Span> {
    let horizon = now + Duration::days(HORIZON_DAYS);
    let mut candidates: Vec<Span> = cfg
        .maintenance
        .iter()
        .flat_map(|w| occurrences(tz, w, now - Duration::days(2), horizon))
        .filter(|s| s.end > now)
        .collect();
    candidates.sort_by_key(|s| s.start);
    candidates.into_iter().find(|s| {
        let begin = s.start.max(now);
        begin + estimated <= s.end
            && decision_at(cfg, tz, risk, begin, begin + estimated).0 != WindowDecision::Block
    })
}

/// Occurrences of a weekly window whose start day lies in `[from, to]` (local dates).
pub fn occurrences(
    tz: Tz,
    w: &RecurringWindow,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> impl Iterator<Item = Span> + '_ {
    let first = from.with_timezone(&tz).date_naive();
    let last = to.with_timezone(&tz).date_naive();
    first
        .iter_days()
        .take_while(move |d| *d <= last)
        .filter(|d| w.days.contains(&d.weekday()))
        .filter_map(move |d| {
            let end_day = if w.end <= w.start { d.succ_opt()? } else { d };
            Some(Span {
                name: w.name.clone(),
                start: local_to_utc(tz, d, w.start, Edge::Earliest)?,
                end: local_to_utc(tz, end_day, w.end, Edge::Latest)?,
            })
        })
}

fn freeze_span(tz: Tz, from: NaiveDate, to: NaiveDate) -> Option<Span> {
    let midnight = ClockTime { hour: 0, minute: 0 };
    Some(Span {
        name: None,
        start: local_to_utc(tz, from, midnight, Edge::Earliest)?,
        end: local_to_utc(tz, to.succ_opt()?, midnight, Edge::Latest)?,
    })
}

#[derive(Clone, Copy)]
enum Edge {
    Earliest,
    Latest,
}

/// Local date + time → UTC, resolving DST gaps and folds as documented above.
fn local_to_utc(tz: Tz, date: NaiveDate, t: ClockTime, edge: Edge) -> Option<DateTime<Utc>> {
    let mut naive: NaiveDateTime = date.and_hms_opt(t.hour, t.minute, 0)?;
    // A gap lasts at most a few hours; step minute by minute to its end so a
    // whole-minute time lands exactly on the instant the clocks jump.
    for _ in 0..(4 * 60) {
        match tz.from_local_datetime(&naive) {
            LocalResult::Single(d) => return Some(d.with_timezone(&Utc)),
            LocalResult::Ambiguous(a, b) => {
                return Some(
                    match edge {
                        Edge::Earliest => a.min(b),
                        Edge::Latest => a.max(b),
                    }
                    .with_timezone(&Utc),
                );
            }
            LocalResult::None => naive += Duration::minutes(1),
        }
    }
    None
}
