//! What a subscriber that attaches late has missed: the run's recent events
//! and a bounded buffer of recent samples, sent once before the live stream
//! so that a console re-attaching (or attaching to a run started headless, or
//! to a restarted supervisor) shows the event log and the lag chart's history
//! instead of an empty screen.
//!
//! The buffer is fed by everything the run publishes and, after a supervisor
//! restart, seeded from the run's records in the trail (its events and the
//! samples recorded at the bounded rate).

use super::events::{Event, EventRecord, Sample};
use crate::exec::ExecStatus;
use crate::lag::LagSample;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// Events kept (the console's event log holds as many lines).
pub const BACKLOG_EVENTS: usize = 2000;
/// Lag readings kept per replica: an hour at one per second (the chart's widest zoom).
pub const BACKLOG_LAG: usize = 3600;
/// Progress statuses kept: enough for the copy rate's window.
pub const BACKLOG_PROGRESS: usize = 120;
/// Replicas (chart lines) kept; a misbehaving source cannot grow it without bound.
pub const BACKLOG_REPLICAS: usize = 32;

/// The buffer (see the module doc). Oldest first everywhere.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Backlog {
    /// The latest events, by sequence number.
    pub events: VecDeque<EventRecord>,
    /// Lag readings per replica.
    pub lag: BTreeMap<String, VecDeque<LagSample>>,
    /// Executor statuses.
    pub progress: VecDeque<ExecStatus>,
}

impl Backlog {
    /// Seeded from a run's records (the trail, after a supervisor restart):
    /// its events, and the samples recorded with them.
    pub fn from_records(records: &[EventRecord]) -> Backlog {
        let mut b = Backlog::default();
        for r in records {
            b.event(r);
        }
        b
    }

    /// Keeps one event; of a `Sampled` event, only the sample it carries
    /// (the log does not show them, and over hours they would crowd out the
    /// events that matter).
    pub fn event(&mut self, r: &EventRecord) {
        if let Event::Sampled { sample, .. } = &r.event {
            self.sample(sample);
            return;
        }
        self.events.push_back(r.clone());
        while self.events.len() > BACKLOG_EVENTS {
            self.events.pop_front();
        }
    }

    /// Keeps one sample. A sample recorded as an event was usually published
    /// just before: the same reading is kept once.
    pub fn sample(&mut self, s: &Sample) {
        match s {
            Sample::Lag { sample } => {
                if !self.lag.contains_key(&sample.replica) && self.lag.len() >= BACKLOG_REPLICAS {
                    return;
                }
                let h = self.lag.entry(sample.replica.clone()).or_default();
                if h.back() == Some(sample) {
                    return;
                }
                h.push_back(sample.clone());
                while h.len() > BACKLOG_LAG {
                    h.pop_front();
                }
            }
            Sample::Progress { status } => {
                if self.progress.back() == Some(status) {
                    return;
                }
                self.progress.push_back(status.clone());
                while self.progress.len() > BACKLOG_PROGRESS {
                    self.progress.pop_front();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lag::LagSource;
    use crate::policy::Actor;
    use chrono::{DateTime, Duration, Utc};

    fn lag(sec: i64, v: f64) -> LagSample {
        LagSample {
            replica: "r1".into(),
            seconds: Some(v),
            bytes: None,
            source: LagSource::Simulated,
            at: DateTime::<Utc>::UNIX_EPOCH + Duration::seconds(sec),
            why: None,
        }
    }

    #[test]
    fn keeps_events_and_samples_bounded_and_once() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let mut b = Backlog::default();
        let s = Sample::Lag {
            sample: lag(1, 0.5),
        };
        b.sample(&s);
        // The same reading, recorded as an event right after: kept once.
        let recs = EventRecord::stamp(
            "r",
            0,
            vec![Event::Sampled {
                sample: s,
                why: "interval".into(),
            }],
            &Actor::System,
            None,
            t0,
        );
        b.event(&recs[0]);
        assert_eq!(b.lag["r1"].len(), 1);
        assert!(b.events.is_empty(), "a sampled event keeps only its sample");
        for i in 0..(BACKLOG_LAG as i64 + 10) {
            b.sample(&Sample::Lag {
                sample: lag(2 + i, 0.1),
            });
        }
        assert_eq!(b.lag["r1"].len(), BACKLOG_LAG);
        assert_eq!(
            b.lag["r1"].back().map(|s| s.at),
            Some(t0 + Duration::seconds(BACKLOG_LAG as i64 + 11))
        );
        let many = EventRecord::stamp(
            "r",
            1,
            vec![Event::Unthrottled; BACKLOG_EVENTS + 5],
            &Actor::System,
            None,
            t0,
        );
        for r in &many {
            b.event(r);
        }
        assert_eq!(b.events.len(), BACKLOG_EVENTS);
        assert_eq!(
            b.events.back().map(|r| r.seq),
            Some(BACKLOG_EVENTS as u64 + 6)
        );
        assert_eq!(b.events.front().map(|r| r.seq), Some(7));
    }
}
