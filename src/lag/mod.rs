//! Replica lag: the sample type every poller produces, and the rule that
//! unknown lag counts as over the limit (a stopped replica is the worst case,
//! not a healthy one).

pub mod mysql;
pub mod pg;
pub mod sim;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How often and how patiently replicas are read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PollOptions {
    /// Between polls (default 1 s).
    pub interval: Duration,
    /// Per replica query (connect included); slower reads are unknown (default 2 s).
    pub timeout: Duration,
}

impl Default for PollOptions {
    fn default() -> Self {
        PollOptions {
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
        }
    }
}

/// The optional `[targets.lag]` section of cutover.toml.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LagSettings {
    /// Poll interval, e.g. `"1s"`, `"500ms"`.
    pub interval: Option<String>,
    /// Per-query timeout, e.g. `"2s"`.
    pub timeout: Option<String>,
    /// MySQL/MariaDB: a pt-heartbeat table `db.heartbeat` (preferred when set).
    pub heartbeat_table: Option<String>,
    /// The primary's `server_id` in the heartbeat table (default 1).
    pub heartbeat_server_id: Option<u32>,
    /// The heartbeat writer's `--interval`, e.g. `"1s"` (default 1 s).
    pub heartbeat_interval: Option<String>,
    /// MySQL/MariaDB: subtract `SQL_Delay` (an intentional delay); default true.
    pub subtract_sql_delay: Option<bool>,
}

/// A bad `[targets.lag]` or replica setting.
#[derive(Debug, thiserror::Error)]
#[error("target '{target}': {message}")]
pub struct LagConfigError {
    /// Target name.
    pub target: String,
    /// What is wrong.
    pub message: String,
}

fn duration(
    target: &str,
    key: &str,
    v: Option<&str>,
    default: Duration,
) -> Result<Duration, LagConfigError> {
    match v {
        None => Ok(default),
        Some(s) => parse_duration(s).ok_or_else(|| LagConfigError {
            target: target.to_string(),
            message: format!("lag.{key} must be a duration like 500ms or 2s, not '{s}'"),
        }),
    }
}

/// `500ms`, `2s`, `1.5s`, `1m`, `3` (seconds); positive and finite.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, mul) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.trim().parse().ok()?;
    (v.is_finite() && v > 0.0).then(|| Duration::from_secs_f64(v * mul))
}

/// Builds the poller for a target's replicas from cutover.toml (`${VAR}` in
/// DSNs interpolated). `interval` overrides the configured one.
pub fn poller_for(
    target: &crate::config::TargetConfig,
    interval: Option<Duration>,
) -> Result<(Box<dyn LagPoller>, PollOptions), LagConfigError> {
    let err = |message: String| LagConfigError {
        target: target.name.clone(),
        message,
    };
    let settings = target.lag.clone().unwrap_or_default();
    let d = PollOptions::default();
    let opts = PollOptions {
        interval: match interval {
            Some(i) => i,
            None => duration(
                &target.name,
                "interval",
                settings.interval.as_deref(),
                d.interval,
            )?,
        },
        timeout: duration(
            &target.name,
            "timeout",
            settings.timeout.as_deref(),
            d.timeout,
        )?,
    };
    if target.replicas.is_empty() {
        return Err(err(
            "has no replicas to poll ([[targets.replicas]] name, dsn)".into(),
        ));
    }
    let mut reps = Vec::new();
    for r in &target.replicas {
        let dsn = crate::config::interpolate(&r.dsn)
            .map_err(|m| err(format!("replica '{}': {m}", r.name)))?;
        reps.push((r.name.clone(), dsn));
    }
    Ok(match target.engine {
        crate::model::Engine::Postgres => {
            let primary = crate::config::interpolate(&target.primary).map_err(err)?;
            let reps = reps
                .into_iter()
                .map(|(name, dsn)| pg::PgReplica { name, dsn })
                .collect();
            (Box::new(pg::PgLagPoller::new(&primary, reps, opts)), opts)
        }
        crate::model::Engine::Mysql => {
            let heartbeat = match &settings.heartbeat_table {
                None => None,
                Some(t) => Some(mysql::Heartbeat {
                    table: t.clone(),
                    primary_server_id: settings.heartbeat_server_id.unwrap_or(1),
                    interval: duration(
                        &target.name,
                        "heartbeat_interval",
                        settings.heartbeat_interval.as_deref(),
                        Duration::from_secs(1),
                    )?,
                }),
            };
            let reps = reps
                .into_iter()
                .map(|(name, dsn)| mysql::MyReplica { name, dsn })
                .collect();
            let mut p = mysql::MysqlLagPoller::new(reps, opts, heartbeat).map_err(|e| err(e.0))?;
            p.subtract_sql_delay = settings.subtract_sql_delay.unwrap_or(true);
            (Box::new(p), opts)
        }
    })
}

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
    /// Why the lag is unknown, when it is (the server and the cause).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
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
            why: None,
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
