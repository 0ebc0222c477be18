//! Which samples are recorded: every 30 s per stream, and at every threshold
//! crossing (a replica going over or back under the max lag).

use crate::lag::{LagSample, over_limit};
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeMap;

/// The bounded-rate gate (pure apart from its own memory).
#[derive(Debug, Clone)]
pub struct SampleGate {
    interval: Duration,
    progress_at: Option<DateTime<Utc>>,
    lag: BTreeMap<String, (DateTime<Utc>, bool)>,
}

impl Default for SampleGate {
    fn default() -> Self {
        SampleGate::new(Duration::seconds(30))
    }
}

impl SampleGate {
    /// A gate recording at most once per `interval` per stream, plus crossings.
    pub fn new(interval: Duration) -> SampleGate {
        SampleGate {
            interval,
            progress_at: None,
            lag: BTreeMap::new(),
        }
    }

    /// Whether a progress sample at `now` is recorded, and why.
    pub fn progress(&mut self, now: DateTime<Utc>) -> Option<&'static str> {
        if self.progress_at.is_some_and(|t| now - t < self.interval) {
            return None;
        }
        self.progress_at = Some(now);
        Some("interval")
    }

    /// Whether a lag sample is recorded, and why.
    pub fn lag(&mut self, s: &LagSample, max_seconds: f64) -> Option<&'static str> {
        let over = over_limit(s, max_seconds);
        let why = match self.lag.get(&s.replica) {
            None if over => Some("crossed over"),
            None => Some("interval"),
            Some((_, was)) if *was != over => {
                Some(if over { "crossed over" } else { "back under" })
            }
            Some((t, _)) if s.at - *t >= self.interval => Some("interval"),
            _ => None,
        };
        if why.is_some() {
            self.lag.insert(s.replica.clone(), (s.at, over));
        }
        why
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lag::LagSource;

    #[test]
    fn records_every_30_s_and_at_crossings() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let s = |sec: i64, lag: Option<f64>| LagSample {
            replica: "r1".into(),
            seconds: lag,
            bytes: None,
            source: LagSource::Simulated,
            at: t0 + Duration::seconds(sec),
            why: None,
        };
        let mut g = SampleGate::default();
        assert_eq!(g.lag(&s(0, Some(0.1)), 1.0), Some("interval"));
        assert_eq!(g.lag(&s(1, Some(0.2)), 1.0), None);
        assert_eq!(g.lag(&s(2, Some(3.0)), 1.0), Some("crossed over"));
        assert_eq!(g.lag(&s(3, None), 1.0), None, "unknown is still over");
        assert_eq!(g.lag(&s(4, Some(0.5)), 1.0), Some("back under"));
        assert_eq!(g.lag(&s(33, Some(0.5)), 1.0), None);
        assert_eq!(g.lag(&s(34, Some(0.5)), 1.0), Some("interval"));
        assert_eq!(g.progress(t0), Some("interval"));
        assert_eq!(g.progress(t0 + Duration::seconds(29)), None);
        assert_eq!(g.progress(t0 + Duration::seconds(30)), Some("interval"));
    }
}
