//! PostgreSQL replica lag, in time and bytes, correct on an idle primary.
//!
//! Each poll reads the primary once (`pg_current_wal_lsn()`, `pg_stat_replication`)
//! and then every replica concurrently (`pg_last_wal_replay_lsn()`, the idle-safe
//! replica-side formula). Rules (engines.md §4.2/§4.3):
//! - byte lag = primary's current LSN − replica's replay LSN; 0 bytes is "no
//!   lag" whatever the timestamps say (an idle primary has no false growing lag);
//! - otherwise the time is `replay_lag` from the primary, or, when that is NULL,
//!   `now() − pg_last_xact_replay_timestamp()` on the replica while it has WAL it
//!   has not replayed;
//! - with more than [`TRUST_BYTES`] outstanding (e.g. just after a stalled
//!   replica resumes) `replay_lag` is stale and can read near 0 while
//!   100 MB wait: it only raises another figure (the replica-side age of its
//!   last replayed commit while it has WAL to replay, or the byte gap over the
//!   primary's WAL rate), and without one the lag is unknown;
//! - unknown: either server unreachable or too slow, the replica not in
//!   recovery (promoted), no `pg_stat_replication` row for it, or its state
//!   not `streaming`.

use super::{LagPoller, LagSample, LagSource, PollOptions};
use chrono::Utc;
use futures_util::future::{BoxFuture, join_all};
use tokio_postgres::{Client, NoTls};

/// WAL not yet received beyond this, with no time figure, reads as unknown
/// rather than "in flight".
const IN_FLIGHT_BYTES: u64 = 16 * 1024 * 1024;

/// Parses an LSN such as `16/B374D848`.
pub fn parse_lsn(s: &str) -> Option<u64> {
    let (hi, lo) = s.trim().split_once('/')?;
    let hi = u64::from_str_radix(hi, 16).ok()?;
    let lo = u64::from_str_radix(lo, 16).ok()?;
    (hi <= u32::MAX as u64 && lo <= u32::MAX as u64).then_some((hi << 32) | lo)
}

/// `application_name=…` from a libpq connection string (`pg_stat_wal_receiver.conninfo`).
pub fn application_name(conninfo: &str) -> Option<String> {
    conninfo.split_whitespace().find_map(|kv| {
        let v = kv.strip_prefix("application_name=")?;
        Some(v.trim_matches('\'').to_string())
    })
}

/// What the primary says about one walsender.
#[derive(Debug, Clone, PartialEq)]
pub struct SenderRow {
    /// `application_name`.
    pub application_name: String,
    /// `state`.
    pub state: String,
    /// `replay_lag` in seconds (NULL when caught up and idle).
    pub replay_lag: Option<f64>,
}

/// What the replica says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaRow {
    /// `pg_is_in_recovery()`.
    pub in_recovery: bool,
    /// `pg_last_wal_receive_lsn()`.
    pub receive_lsn: Option<u64>,
    /// `pg_last_wal_replay_lsn()`.
    pub replay_lsn: Option<u64>,
    /// `now() − pg_last_xact_replay_timestamp()`, seconds.
    pub since_last_replay: Option<f64>,
}

/// Outstanding WAL beyond which `replay_lag` alone is not trusted.
pub const TRUST_BYTES: u64 = IN_FLIGHT_BYTES;

/// The classification, pure: `(seconds, bytes)`; `seconds = None` is unknown.
pub fn classify(
    primary_lsn: u64,
    sender: Option<&SenderRow>,
    replica: &ReplicaRow,
) -> (Option<f64>, Option<u64>) {
    let (s, b, _) = classify_with_rate(primary_lsn, sender, replica, None);
    (s, b)
}

/// [`classify`] with the primary's recent WAL rate (bytes per second), used
/// to estimate a large gap; also says where the figure came from.
pub fn classify_with_rate(
    primary_lsn: u64,
    sender: Option<&SenderRow>,
    replica: &ReplicaRow,
    wal_rate: Option<f64>,
) -> (Option<f64>, Option<u64>, LagSource) {
    let (seconds, bytes) = classify_small(primary_lsn, sender, replica);
    let Some(b) = bytes.filter(|b| *b > TRUST_BYTES) else {
        return (seconds, bytes, LagSource::PgReplayLag);
    };
    if seconds.is_none() && sender.is_none_or(|s| s.state != "streaming") {
        return (None, bytes, LagSource::PgReplayLag);
    }
    if !replica.in_recovery {
        return (None, bytes, LagSource::PgReplayLag);
    }
    // A large gap: every figure is a lower bound at best; take the largest.
    let estimate = wal_rate
        .filter(|r| r.is_finite() && *r > 0.0)
        .map(|r| b as f64 / r);
    // `replay_lag` alone is what reads falsely low: it only ever raises a
    // figure from another source.
    let max = |vals: &[Option<f64>]| {
        vals.iter()
            .flatten()
            .copied()
            .filter(|v| v.is_finite())
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
    };
    let replica_side = match replica.receive_lsn {
        Some(recv) if replica.replay_lsn.is_some_and(|r| recv > r) => replica.since_last_replay,
        _ => None,
    };
    let best = max(&[replica_side, estimate])
        .and_then(|b| max(&[Some(b), sender.and_then(|s| s.replay_lag)]));
    let source = if best.is_some() && best == estimate {
        LagSource::PgWalBytes
    } else {
        LagSource::PgReplayLag
    };
    (best.map(|v| v.max(0.0)), bytes, source)
}

fn classify_small(
    primary_lsn: u64,
    sender: Option<&SenderRow>,
    replica: &ReplicaRow,
) -> (Option<f64>, Option<u64>) {
    let Some(replay) = replica.replay_lsn else {
        return (None, None);
    };
    let bytes = primary_lsn.saturating_sub(replay);
    if !replica.in_recovery {
        return (None, Some(bytes));
    }
    let Some(sender) = sender.filter(|s| s.state == "streaming") else {
        return (None, Some(bytes));
    };
    if bytes == 0 {
        return (Some(0.0), Some(0));
    }
    let replica_side = match replica.receive_lsn {
        Some(recv) if recv > replay => replica.since_last_replay,
        _ => None,
    };
    let seconds = sender.replay_lag.or(replica_side).or_else(|| {
        // WAL written but not yet received: in flight, unless it is a lot.
        (bytes <= IN_FLIGHT_BYTES).then_some(0.0)
    });
    (seconds.map(|s| s.max(0.0)), Some(bytes))
}

/// One replica to poll.
#[derive(Debug, Clone)]
pub struct PgReplica {
    /// Name shown in samples.
    pub name: String,
    /// Connection string (URL or key=value).
    pub dsn: String,
}

#[derive(Default)]
struct Slot {
    client: Option<Client>,
}

impl Slot {
    async fn client(&mut self, dsn: &str) -> Result<&Client, tokio_postgres::Error> {
        if let Some(c) = self.client.take()
            && !c.is_closed()
        {
            return Ok(self.client.insert(c));
        }
        let (client, conn) = tokio_postgres::connect(dsn, NoTls).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(self.client.insert(client))
    }
}

/// Polls PostgreSQL replicas of one primary.
pub struct PgLagPoller {
    primary_dsn: String,
    primary: Slot,
    replicas: Vec<(PgReplica, Slot)>,
    opts: PollOptions,
    /// The primary's LSN at the previous poll, for its WAL rate.
    last_lsn: Option<(u64, std::time::Instant)>,
}

/// WAL bytes per second between two readings; `None` without movement.
pub fn wal_rate(before: (u64, f64), now: (u64, f64)) -> Option<f64> {
    let (db, dt) = (now.0.checked_sub(before.0)?, now.1 - before.1);
    (db > 0 && dt > 0.0).then(|| db as f64 / dt)
}

impl PgLagPoller {
    /// A poller for `replicas` of the primary at `primary_dsn`.
    pub fn new(primary_dsn: &str, replicas: Vec<PgReplica>, opts: PollOptions) -> PgLagPoller {
        PgLagPoller {
            primary_dsn: primary_dsn.to_string(),
            primary: Slot::default(),
            replicas: replicas.into_iter().map(|r| (r, Slot::default())).collect(),
            opts,
            last_lsn: None,
        }
    }
}

/// The rows of a parameterless query over the simple protocol: one round
/// trip and one statement on the server per poll (the extended protocol
/// would add a prepare for each).
async fn simple_rows(
    c: &tokio_postgres::Client,
    sql: &str,
) -> Result<Vec<tokio_postgres::SimpleQueryRow>, tokio_postgres::Error> {
    Ok(c.simple_query(sql)
        .await?
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .collect())
}

fn text(r: &tokio_postgres::SimpleQueryRow, i: usize) -> Option<String> {
    r.get(i).map(str::to_string)
}

fn float(r: &tokio_postgres::SimpleQueryRow, i: usize) -> Option<f64> {
    r.get(i).and_then(|v| v.parse().ok())
}

async fn read_primary(
    slot: &mut Slot,
    dsn: &str,
) -> Result<(u64, Vec<SenderRow>), tokio_postgres::Error> {
    let c = slot.client(dsn).await?;
    // One statement: the LSN rides on every row (and a row with NULLs when
    // no replica is connected).
    let rows = simple_rows(
        c,
        "SELECT pg_current_wal_lsn()::text, s.application_name::text, s.state::text,
                EXTRACT(EPOCH FROM s.replay_lag)::float8
           FROM (SELECT 1) one LEFT JOIN pg_stat_replication s ON true",
    )
    .await?;
    let lsn = rows.first().and_then(|r| text(r, 0));
    let senders = rows
        .iter()
        .filter(|r| r.get(1).is_some() || r.get(2).is_some())
        .map(|r| SenderRow {
            application_name: text(r, 1).unwrap_or_default(),
            state: text(r, 2).unwrap_or_default(),
            replay_lag: float(r, 3),
        })
        .collect();
    Ok((lsn.as_deref().and_then(parse_lsn).unwrap_or(0), senders))
}

async fn read_replica(
    slot: &mut Slot,
    dsn: &str,
) -> Result<(ReplicaRow, Option<String>), tokio_postgres::Error> {
    let c = slot.client(dsn).await?;
    let rows = simple_rows(
        c,
        "SELECT pg_is_in_recovery()::text, pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text,
                EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8,
                (SELECT conninfo FROM pg_stat_wal_receiver LIMIT 1)",
    )
    .await?;
    let Some(r) = rows.first() else {
        // Not reachable in practice: a SELECT without FROM returns one row.
        return Ok((
            ReplicaRow {
                in_recovery: false,
                receive_lsn: None,
                replay_lsn: None,
                since_last_replay: None,
            },
            None,
        ));
    };
    let lsn = |i: usize| text(r, i).as_deref().and_then(parse_lsn);
    Ok((
        ReplicaRow {
            in_recovery: r.get(0) == Some("true"),
            receive_lsn: lsn(1),
            replay_lsn: lsn(2),
            since_last_replay: float(r, 3),
        },
        text(r, 4).as_deref().and_then(application_name),
    ))
}

impl LagPoller for PgLagPoller {
    fn poll(&mut self) -> BoxFuture<'_, Vec<LagSample>> {
        Box::pin(async move {
            let timeout = self.opts.timeout;
            let primary =
                tokio::time::timeout(timeout, read_primary(&mut self.primary, &self.primary_dsn))
                    .await;
            let (primary, primary_why) = match primary {
                Ok(Ok(p)) => (Some(p), None),
                Ok(Err(e)) => {
                    self.primary.client = None;
                    let w = crate::dberror::postgres(&self.primary_dsn, &e);
                    (None, Some(format!("the primary cannot be read: {w}")))
                }
                Err(_) => {
                    self.primary.client = None;
                    let w = crate::dberror::timed_out(
                        crate::model::Engine::Postgres,
                        &self.primary_dsn,
                        timeout.as_secs().max(1),
                    );
                    (None, Some(format!("the primary cannot be read: {w}")))
                }
            };
            let now = std::time::Instant::now();
            let rate = match (&primary, self.last_lsn) {
                (Some((lsn, _)), Some((l0, t0))) => {
                    wal_rate((l0, 0.0), (*lsn, now.duration_since(t0).as_secs_f64()))
                }
                _ => None,
            };
            if let Some((lsn, _)) = &primary {
                self.last_lsn = Some((*lsn, now));
            }
            let primary = &primary;
            let primary_why = &primary_why;
            let reads = self.replicas.iter_mut().map(|(rep, slot)| async move {
                let r = tokio::time::timeout(timeout, read_replica(slot, &rep.dsn)).await;
                let mut why = None;
                let (seconds, bytes, source) = match (r, primary) {
                    (Ok(Ok((row, app))), Some((lsn, senders))) => {
                        let app = app.unwrap_or_else(|| rep.name.clone());
                        let sender = senders.iter().find(|s| s.application_name == app);
                        let c = classify_with_rate(*lsn, sender, &row, rate);
                        if c.0.is_none() {
                            why = Some(if sender.is_none() {
                                format!("'{app}' is not streaming from the primary (not in pg_stat_replication)")
                            } else {
                                "the replica reports no replay position or lag".to_string()
                            });
                        }
                        c
                    }
                    (Ok(Ok(_)), None) => {
                        why = primary_why.clone();
                        (None, None, LagSource::PgReplayLag)
                    }
                    (Ok(Err(e)), _) => {
                        slot.client = None;
                        why = Some(crate::dberror::postgres(&rep.dsn, &e));
                        (None, None, LagSource::PgReplayLag)
                    }
                    (Err(_), _) => {
                        slot.client = None;
                        why = Some(crate::dberror::timed_out(
                            crate::model::Engine::Postgres,
                            &rep.dsn,
                            timeout.as_secs().max(1),
                        ));
                        (None, None, LagSource::PgReplayLag)
                    }
                };
                LagSample {
                    replica: rep.name.clone(),
                    seconds,
                    bytes,
                    source,
                    at: Utc::now(),
                    why,
                }
            });
            join_all(reads).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender(state: &str, lag: Option<f64>) -> SenderRow {
        SenderRow {
            application_name: "r".into(),
            state: state.into(),
            replay_lag: lag,
        }
    }

    fn replica(recv: u64, replay: u64, since: f64) -> ReplicaRow {
        ReplicaRow {
            in_recovery: true,
            receive_lsn: Some(recv),
            replay_lsn: Some(replay),
            since_last_replay: Some(since),
        }
    }

    #[test]
    fn lsn_parsing() {
        assert_eq!(parse_lsn("0/3000148"), Some(0x3000148));
        assert_eq!(parse_lsn("16/B374D848"), Some((0x16 << 32) | 0xB374D848));
        assert_eq!(parse_lsn("x"), None);
        assert_eq!(
            application_name("user=postgres application_name=pg_replica host=/tmp").as_deref(),
            Some("pg_replica")
        );
    }

    #[test]
    fn idle_primary_is_no_lag_whatever_the_timestamp() {
        // 600 s since the last replayed commit, but nothing to replay.
        let (s, b) = classify(
            1000,
            Some(&sender("streaming", None)),
            &replica(1000, 1000, 600.0),
        );
        assert_eq!((s, b), (Some(0.0), Some(0)));
    }

    #[test]
    fn paused_replay_uses_replay_lag_then_replica_side() {
        let (s, b) = classify(
            5000,
            Some(&sender("streaming", Some(3.5))),
            &replica(5000, 1000, 4.0),
        );
        assert_eq!((s, b), (Some(3.5), Some(4000)));
        let (s, _) = classify(
            5000,
            Some(&sender("streaming", None)),
            &replica(5000, 1000, 4.0),
        );
        assert_eq!(s, Some(4.0));
        // Not yet received, small: in flight; large: unknown.
        let (s, _) = classify(
            5000,
            Some(&sender("streaming", None)),
            &replica(1000, 1000, 99.0),
        );
        assert_eq!(s, Some(0.0));
        let big = 1000 + IN_FLIGHT_BYTES + 1;
        let (s, _) = classify(
            big,
            Some(&sender("streaming", None)),
            &replica(1000, 1000, 99.0),
        );
        assert_eq!(s, None);
    }

    #[test]
    fn stale_replay_lag_is_not_trusted_over_a_large_gap() {
        // After SIGSTOP/SIGCONT of the replica: replay_lag 0.011 s with
        // 106,963,288 bytes outstanding, nothing received yet.
        let gap = 106_963_288;
        let mut r = replica(1000, 1000, 0.0);
        r.since_last_replay = None;
        let st = sender("streaming", Some(0.011));
        let (s, b, _) = classify_with_rate(1000 + gap, Some(&st), &r, None);
        assert_eq!((s, b), (None, Some(gap)), "replay_lag alone is not trusted");
        // With the primary's WAL rate: the gap over the rate.
        let (s, _, src) = classify_with_rate(1000 + gap, Some(&st), &r, Some(10_000_000.0));
        assert!((s.unwrap_or(0.0) - gap as f64 / 1e7).abs() < 1e-9, "{s:?}");
        assert_eq!(src, LagSource::PgWalBytes);
        // The age of the last replayed commit counts when it is larger
        // (WAL received and not replayed).
        r.since_last_replay = Some(42.0);
        r.receive_lsn = Some(2000);
        let (s, _, src) = classify_with_rate(1000 + gap, Some(&st), &r, Some(10_000_000.0));
        assert_eq!(s, Some(42.0));
        assert_eq!(src, LagSource::PgReplayLag);
        // A small gap: replay_lag as before.
        let (s, _, _) = classify_with_rate(5000, Some(&st), &replica(5000, 1000, 4.0), None);
        assert_eq!(s, Some(0.011));
        assert_eq!(wal_rate((100, 0.0), (1100, 2.0)), Some(500.0));
        assert_eq!(wal_rate((100, 0.0), (100, 2.0)), None);
    }

    #[test]
    fn unknown_cases() {
        assert_eq!(
            classify(10, None, &replica(10, 10, 0.0)).0,
            None,
            "no walsender row"
        );
        assert_eq!(
            classify(10, Some(&sender("catchup", None)), &replica(10, 10, 0.0)).0,
            None
        );
        let mut promoted = replica(10, 10, 0.0);
        promoted.in_recovery = false;
        assert_eq!(
            classify(10, Some(&sender("streaming", None)), &promoted).0,
            None
        );
    }
}
