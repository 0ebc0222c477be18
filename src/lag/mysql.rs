//! MySQL/MariaDB replica lag from `SHOW REPLICA STATUS` (or `SHOW SLAVE STATUS`)
//! and, when configured, a pt-heartbeat table (preferred).
//!
//! Columns are read by name because their order differs between variants and
//! versions (MariaDB keeps `Slave_*` names under `SHOW REPLICA STATUS`; MySQL
//! 8.0.22+ says `Replica_*`/`Source_*`). Facts: engines.md §4.1 and §4.3.

use super::{LagPoller, LagSample, LagSource, PollOptions};
use chrono::Utc;
use futures_util::future::{BoxFuture, join_all};
use mysql_async::prelude::*;
use std::collections::HashMap;
use std::time::Duration;

/// A pt-heartbeat table to read on each replica (`pt-heartbeat --update --utc`).
#[derive(Debug, Clone, PartialEq)]
pub struct Heartbeat {
    /// `db.heartbeat` (validated as one or two plain identifiers).
    pub table: String,
    /// The primary's `server_id` (the row the writer updates).
    pub primary_server_id: u32,
    /// How often the writer updates the row; a row older than three
    /// intervals while replication is caught up means the writer stopped.
    pub interval: Duration,
}

/// One replica's status row, by column name (NULL = `None`).
pub type StatusRow = HashMap<String, Option<String>>;

fn col<'a>(row: &'a StatusRow, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| row.get(*n).and_then(|v| v.as_deref()))
}

/// Lag from one status row: `None` (unknown) unless both threads say `Yes`
/// and `Seconds_Behind_Master` is a number. An intentional `SQL_Delay` is
/// subtracted (the replica is where it was told to be).
pub fn lag_from_status(row: &StatusRow, subtract_sql_delay: bool) -> Option<f64> {
    let io = col(row, &["Slave_IO_Running", "Replica_IO_Running"])?;
    let sql = col(row, &["Slave_SQL_Running", "Replica_SQL_Running"])?;
    if io != "Yes" || sql != "Yes" {
        return None;
    }
    let sbm: f64 = col(row, &["Seconds_Behind_Master", "Seconds_Behind_Source"])?
        .trim()
        .parse()
        .ok()?;
    let delay: f64 = if subtract_sql_delay {
        col(row, &["SQL_Delay"])
            .and_then(|d| d.trim().parse().ok())
            .unwrap_or(0.0)
    } else {
        0.0
    };
    Some((sbm - delay).max(0.0))
}

/// Combines the status lag with a heartbeat reading (engines.md §4.3): the
/// heartbeat wins when threads run; a stale heartbeat row on a caught-up
/// replica means the writer stopped, which is unknown, not "no lag".
pub fn combine(status_lag: Option<f64>, heartbeat: Option<f64>, hb: &Heartbeat) -> Option<f64> {
    let status = status_lag?;
    let beat = heartbeat?;
    let stale_after = hb.interval.as_secs_f64() * 3.0;
    if beat > stale_after && status == 0.0 {
        return None;
    }
    Some(beat.max(0.0))
}

fn valid_table(t: &str) -> bool {
    let parts: Vec<&str> = t.split('.').collect();
    parts.len() <= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        })
}

/// One replica to poll.
#[derive(Debug, Clone)]
pub struct MyReplica {
    /// Name shown in samples.
    pub name: String,
    /// Connection URL.
    pub dsn: String,
}

struct Conn {
    replica: MyReplica,
    conn: Option<mysql_async::Conn>,
}

/// Polls MySQL/MariaDB replicas concurrently, one connection each, kept
/// between polls and re-opened after an error.
pub struct MysqlLagPoller {
    conns: Vec<Conn>,
    opts: PollOptions,
    heartbeat: Option<Heartbeat>,
    /// Subtract `SQL_Delay` (an intentional delay is not lag).
    pub subtract_sql_delay: bool,
}

/// Bad poller configuration.
#[derive(Debug, thiserror::Error)]
#[error("lag poller: {0}")]
pub struct PollerConfigError(pub String);

impl MysqlLagPoller {
    /// A poller over `replicas`; with `heartbeat`, the table is read too.
    pub fn new(
        replicas: Vec<MyReplica>,
        opts: PollOptions,
        heartbeat: Option<Heartbeat>,
    ) -> Result<MysqlLagPoller, PollerConfigError> {
        if let Some(hb) = &heartbeat
            && !valid_table(&hb.table)
        {
            return Err(PollerConfigError(format!(
                "heartbeat table '{}' must be db.table with plain identifiers",
                hb.table
            )));
        }
        for r in &replicas {
            mysql_async::Opts::from_url(&r.dsn).map_err(|e| {
                PollerConfigError(format!(
                    "replica '{}': bad URL: {}",
                    r.name,
                    crate::sql::redact::redact_dsn(&e.to_string())
                ))
            })?;
        }
        Ok(MysqlLagPoller {
            conns: replicas
                .into_iter()
                .map(|replica| Conn {
                    replica,
                    conn: None,
                })
                .collect(),
            opts,
            heartbeat,
            subtract_sql_delay: true,
        })
    }
}

async fn read_status(
    conn: &mut mysql_async::Conn,
) -> Result<Option<StatusRow>, mysql_async::Error> {
    let rows: Vec<mysql_async::Row> = match conn.query("SHOW REPLICA STATUS").await {
        Ok(r) => r,
        // Servers older than MariaDB 10.5.1 / MySQL 8.0.22 know only the old name.
        Err(mysql_async::Error::Server(_)) => conn.query("SHOW SLAVE STATUS").await?,
        Err(e) => return Err(e),
    };
    Ok(rows.into_iter().next().map(|row| {
        let cols = row.columns_ref().to_vec();
        cols.iter()
            .enumerate()
            .map(|(i, c)| {
                let v = match row.as_ref(i) {
                    None | Some(mysql_async::Value::NULL) => None,
                    Some(mysql_async::Value::Bytes(b)) => {
                        Some(String::from_utf8_lossy(b).into_owned())
                    }
                    Some(mysql_async::Value::Int(n)) => Some(n.to_string()),
                    Some(mysql_async::Value::UInt(n)) => Some(n.to_string()),
                    Some(other) => Some(other.as_sql(true).trim_matches('\'').to_string()),
                };
                (c.name_str().into_owned(), v)
            })
            .collect()
    }))
}

async fn read_one(
    c: &mut Conn,
    heartbeat: Option<&Heartbeat>,
    subtract_delay: bool,
) -> Result<Option<f64>, mysql_async::Error> {
    if c.conn.is_none() {
        let opts = mysql_async::Opts::from_url(&c.replica.dsn)
            .map_err(|e| mysql_async::Error::Other(Box::new(e)))?;
        c.conn = Some(mysql_async::Conn::new(opts).await?);
    }
    let Some(conn) = c.conn.as_mut() else {
        return Ok(None);
    };
    let Some(row) = read_status(conn).await? else {
        // Not configured as a replica at all.
        return Ok(None);
    };
    let status = lag_from_status(&row, subtract_delay);
    let Some(hb) = heartbeat else {
        return Ok(status);
    };
    let q = format!(
        "SELECT TIMESTAMPDIFF(MICROSECOND, ts, UTC_TIMESTAMP(6)) / 1e6 FROM {} WHERE server_id = {}",
        hb.table, hb.primary_server_id
    );
    let beat: Option<Option<f64>> = conn.query_first(q).await?;
    Ok(combine(status, beat.flatten(), hb))
}

impl LagPoller for MysqlLagPoller {
    fn poll(&mut self) -> BoxFuture<'_, Vec<LagSample>> {
        Box::pin(async move {
            let timeout = self.opts.timeout;
            let hb = self.heartbeat.clone();
            let sub = self.subtract_sql_delay;
            let source = if hb.is_some() {
                LagSource::Heartbeat
            } else {
                LagSource::SecondsBehind
            };
            let reads = self.conns.iter_mut().map(|c| {
                let hb = hb.clone();
                async move {
                    let r = tokio::time::timeout(timeout, read_one(c, hb.as_ref(), sub)).await;
                    let (seconds, why) = match r {
                        Ok(Ok(Some(s))) => (Some(s), None),
                        Ok(Ok(None)) => (
                            None,
                            Some(
                                "replication is not running (threads stopped, or no lag reported)"
                                    .to_string(),
                            ),
                        ),
                        // Error or timeout: unknown, and a fresh connection next time.
                        Ok(Err(e)) => {
                            c.conn = None;
                            (None, Some(crate::dberror::mysql(&c.replica.dsn, &e)))
                        }
                        Err(_) => {
                            c.conn = None;
                            (
                                None,
                                Some(crate::dberror::timed_out(
                                    crate::model::Engine::Mysql,
                                    &c.replica.dsn,
                                    timeout.as_secs().max(1),
                                )),
                            )
                        }
                    };
                    LagSample {
                        replica: c.replica.name.clone(),
                        seconds,
                        bytes: None,
                        source,
                        at: Utc::now(),
                        why,
                    }
                }
            });
            join_all(reads).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(io: &str, sql: &str, sbm: Option<&str>, delay: &str) -> StatusRow {
        let mut r = StatusRow::new();
        r.insert("Slave_IO_Running".into(), Some(io.into()));
        r.insert("Slave_SQL_Running".into(), Some(sql.into()));
        r.insert("Seconds_Behind_Master".into(), sbm.map(Into::into));
        r.insert("SQL_Delay".into(), Some(delay.into()));
        r
    }

    #[test]
    fn stopped_threads_and_null_are_unknown() {
        assert_eq!(
            lag_from_status(&row("Yes", "Yes", Some("3"), "0"), true),
            Some(3.0)
        );
        assert_eq!(lag_from_status(&row("Yes", "No", None, "0"), true), None);
        assert_eq!(
            lag_from_status(&row("Connecting", "Yes", Some("0"), "0"), true),
            None
        );
        assert_eq!(lag_from_status(&row("Yes", "Yes", None, "0"), true), None);
    }

    #[test]
    fn intentional_delay_is_subtracted() {
        assert_eq!(
            lag_from_status(&row("Yes", "Yes", Some("65"), "60"), true),
            Some(5.0)
        );
        assert_eq!(
            lag_from_status(&row("Yes", "Yes", Some("3"), "60"), true),
            Some(0.0)
        );
        assert_eq!(
            lag_from_status(&row("Yes", "Yes", Some("65"), "60"), false),
            Some(65.0)
        );
    }

    #[test]
    fn mysql_8_column_names() {
        let mut r = StatusRow::new();
        r.insert("Replica_IO_Running".into(), Some("Yes".into()));
        r.insert("Replica_SQL_Running".into(), Some("Yes".into()));
        r.insert("Seconds_Behind_Source".into(), Some("7".into()));
        assert_eq!(lag_from_status(&r, true), Some(7.0));
    }

    #[test]
    fn heartbeat_preferred_and_stale_writer_unknown() {
        let hb = Heartbeat {
            table: "percona.heartbeat".into(),
            primary_server_id: 1,
            interval: Duration::from_secs(1),
        };
        assert_eq!(combine(Some(0.0), Some(0.4), &hb), Some(0.4));
        assert_eq!(combine(Some(2.0), Some(4.5), &hb), Some(4.5));
        assert_eq!(combine(Some(0.0), Some(10.0), &hb), None, "writer stopped");
        assert_eq!(combine(None, Some(0.2), &hb), None, "thread stopped");
        assert_eq!(combine(Some(0.0), None, &hb), None, "no row");
        assert!(valid_table("percona.heartbeat"));
        assert!(!valid_table("x; DROP TABLE y"));
    }
}
