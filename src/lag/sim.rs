//! Simulated replicas whose lag rises and falls, deterministic by poll count.

use super::{LagPoller, LagSample, LagSource};
use crate::policy::Clock;
use futures_util::future::BoxFuture;
use std::sync::Arc;

/// One simulated replica: lag follows a triangle wave; some polls read unknown.
#[derive(Debug, Clone, PartialEq)]
pub struct SimReplica {
    /// Name.
    pub name: String,
    /// Highest lag, seconds.
    pub peak_seconds: f64,
    /// Polls for a full rise and fall.
    pub period: u64,
    /// Poll offset (phase shift).
    pub offset: u64,
    /// Every n-th poll reads unknown (replication stopped); 0 = never.
    pub unknown_every: u64,
}

impl SimReplica {
    /// Lag at poll number `i`; `None` = unknown.
    pub fn lag_at(&self, i: u64) -> Option<f64> {
        if self.unknown_every > 0 && i > 0 && i.is_multiple_of(self.unknown_every) {
            return None;
        }
        let period = self.period.max(2);
        let pos = (i + self.offset) % period;
        let half = period as f64 / 2.0;
        let up = pos as f64;
        let frac = if up <= half {
            up / half
        } else {
            (period as f64 - up) / half
        };
        Some(self.peak_seconds * frac)
    }
}

/// A poller over simulated replicas.
pub struct SimReplicas {
    replicas: Vec<SimReplica>,
    polls: u64,
    clock: Arc<dyn Clock>,
}

impl SimReplicas {
    /// Replicas read with `clock` for timestamps.
    pub fn new(replicas: Vec<SimReplica>, clock: Arc<dyn Clock>) -> SimReplicas {
        SimReplicas {
            replicas,
            polls: 0,
            clock,
        }
    }
}

impl LagPoller for SimReplicas {
    fn poll(&mut self) -> BoxFuture<'_, Vec<LagSample>> {
        Box::pin(async move {
            let i = self.polls;
            self.polls += 1;
            let at = self.clock.now();
            self.replicas
                .iter()
                .map(|r| {
                    let seconds = r.lag_at(i);
                    LagSample {
                        replica: r.name.clone(),
                        seconds,
                        bytes: seconds.map(|s| (s * 1_000_000.0) as u64),
                        source: LagSource::Simulated,
                        at,
                        why: None,
                    }
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_rises_and_falls_and_sometimes_is_unknown() {
        let r = SimReplica {
            name: "r1".into(),
            peak_seconds: 10.0,
            period: 10,
            offset: 0,
            unknown_every: 7,
        };
        let lags: Vec<Option<f64>> = (0..11).map(|i| r.lag_at(i)).collect();
        assert_eq!(lags[0], Some(0.0));
        assert_eq!(lags[5], Some(10.0));
        assert_eq!(lags[7], None);
        assert_eq!(lags[10], Some(0.0));
    }
}
