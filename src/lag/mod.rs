//! Replica lag: the sample type every poller produces, and the rule that
//! unknown lag counts as over the limit (a stopped replica is the worst case,
//! not a healthy one).

pub mod sim;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

/// Where a reading came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LagSource {
    /// MySQL/MariaDB `Seconds_Behind_Master` / `Seconds_Behind_Source`.
    SecondsBehind,
    /// PostgreSQL `pg_stat_replication.replay_lag`.
    PgReplayLag,
    /// PostgreSQL WAL byte distance.
    PgWalBytes,
    /// A heartbeat table.
    Heartbeat,
    /// Reported by the executor (gh-ost `Lag:`).
    Executor,
    /// The simulator.
    Simulated,
}

/// One lag reading for one replica.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LagSample {
    /// Replica name or `host:port`.
    pub replica: String,
    /// Seconds behind; `None` = unknown (replication stopped, NULL, unreachable).
    pub seconds: Option<f64>,
    /// Bytes behind, where the engine tells.
    pub bytes: Option<u64>,
    /// Source.
    pub source: LagSource,
    /// When read.
    pub at: DateTime<Utc>,
}

/// Whether a reading is over the limit; unknown lag is over.
pub fn over_limit(sample: &LagSample, max_seconds: f64) -> bool {
    match sample.seconds {
        Some(s) if s.is_finite() => s > max_seconds,
        _ => true,
    }
}

/// A replica lag poller.
pub trait LagPoller: Send {
    /// Reads every replica once.
    fn poll(&mut self) -> BoxFuture<'_, Vec<LagSample>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(seconds: Option<f64>) -> LagSample {
        LagSample {
            replica: "r1".into(),
            seconds,
            bytes: None,
            source: LagSource::Simulated,
            at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    #[test]
    fn unknown_lag_counts_as_over() {
        assert!(over_limit(&s(None), 1.0));
        assert!(over_limit(&s(Some(f64::NAN)), 1.0));
        assert!(over_limit(&s(Some(1.5)), 1.0));
        assert!(!over_limit(&s(Some(1.0)), 1.0));
        assert!(!over_limit(&s(Some(0.0)), 1.0));
    }
}
