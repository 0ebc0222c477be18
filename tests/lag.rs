//! Replica lag pollers against the throwaway topology started by scripts/test.
//! Lag is induced deterministically (engines.md §5); every test takes one lock
//! because they share the replicas. Assertions count samples, never time.

mod db_common;
use db_common::{pg, url};

use cutover::lag::mysql::{MyReplica, MysqlLagPoller};
use cutover::lag::pg::{PgLagPoller, PgReplica};
use cutover::lag::{LagPoller, LagSample, PollOptions};
use mysql_async::prelude::*;
use std::time::Duration;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Over this many seconds counts as "lagging" in these tests.
const THRESHOLD: f64 = 2.0;
/// Polls allowed for the replica to come back under the threshold.
const RECOVERY_POLLS: usize = 40;

fn opts() -> PollOptions {
    PollOptions {
        interval: Duration::from_millis(250),
        timeout: Duration::from_secs(2),
    }
}

async fn one(p: &mut dyn LagPoller, name: &str) -> LagSample {
    let samples = p.poll().await;
    samples
        .into_iter()
        .find(|s| s.replica == name)
        .expect("a sample per replica")
}

async fn my_conn(dsn: &str) -> mysql_async::Conn {
    mysql_async::Conn::new(mysql_async::Opts::from_url(dsn).unwrap())
        .await
        .expect("connect to test MariaDB")
}

async fn my_catch_up(primary: &mut mysql_async::Conn, replica: &mut mysql_async::Conn) {
    let pos: String = primary
        .query_first("SELECT @@gtid_binlog_pos")
        .await
        .unwrap()
        .unwrap();
    let r: Option<i64> = replica
        .query_first(format!("SELECT MASTER_GTID_WAIT('{pos}', 60)"))
        .await
        .unwrap();
    assert_eq!(r, Some(0), "replica caught up");
}

async fn server_sbm(replica: &mut mysql_async::Conn) -> Option<f64> {
    let row: mysql_async::Row = replica
        .query_first("SHOW SLAVE STATUS")
        .await
        .unwrap()
        .expect("replica status");
    row.get::<Option<u64>, _>("Seconds_Behind_Master")
        .flatten()
        .map(|v| v as f64)
}

/// Writes a row on the primary every 100 ms until dropped.
fn my_writer(dsn: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut c = my_conn(&dsn).await;
        loop {
            let _ = c.query_drop("INSERT INTO lag_probe (v) VALUES (1)").await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

#[tokio::test]
async fn mariadb_lag_is_seen_and_recovers() {
    let (Some(p), Some(r)) = (
        url("CUTOVER_TEST_MY_PRIMARY"),
        url("CUTOVER_TEST_MY_REPLICA"),
    ) else {
        return;
    };
    let _g = SERIAL.lock().await;
    let mut primary = my_conn(&p).await;
    let mut locker = my_conn(&r).await;
    let mut watcher = my_conn(&r).await;
    primary
        .query_drop(
            "CREATE TABLE IF NOT EXISTS lag_probe (id int AUTO_INCREMENT PRIMARY KEY, v int)",
        )
        .await
        .unwrap();
    my_catch_up(&mut primary, &mut watcher).await;
    let mut poller = MysqlLagPoller::new(
        vec![MyReplica {
            name: "r1".into(),
            dsn: r.clone(),
        }],
        opts(),
        None,
    )
    .unwrap();
    assert_eq!(
        one(&mut poller, "r1").await.seconds,
        Some(0.0),
        "caught up reads 0"
    );

    // The replica's SQL thread waits for the read lock while the primary writes.
    locker
        .query_drop("FLUSH TABLES WITH READ LOCK")
        .await
        .unwrap();
    let writer = my_writer(p.clone());
    let mut waits = 0;
    while server_sbm(&mut watcher).await.unwrap_or(0.0) <= THRESHOLD {
        waits += 1;
        assert!(
            waits < 200,
            "the server never reported lag over {THRESHOLD}s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first = one(&mut poller, "r1").await;
    let second = one(&mut poller, "r1").await;
    assert!(
        [&first, &second]
            .iter()
            .any(|s| s.seconds.is_some_and(|v| v > THRESHOLD)),
        "one of the first two samples after the server said > {THRESHOLD}s: {first:?} {second:?}"
    );

    locker.query_drop("UNLOCK TABLES").await.unwrap();
    writer.abort();
    let mut back = false;
    for _ in 0..RECOVERY_POLLS {
        if one(&mut poller, "r1")
            .await
            .seconds
            .is_some_and(|v| v <= THRESHOLD)
        {
            back = true;
            break;
        }
        tokio::time::sleep(opts().interval).await;
    }
    assert!(back, "lag returned under {THRESHOLD}s after UNLOCK TABLES");
    my_catch_up(&mut primary, &mut watcher).await;
}

#[tokio::test]
async fn mariadb_stopped_sql_thread_and_unreachable_are_unknown() {
    let (Some(p), Some(r)) = (
        url("CUTOVER_TEST_MY_PRIMARY"),
        url("CUTOVER_TEST_MY_REPLICA"),
    ) else {
        return;
    };
    let _g = SERIAL.lock().await;
    let mut admin = my_conn(&r).await;
    let mut primary = my_conn(&p).await;
    let mut poller = MysqlLagPoller::new(
        vec![
            MyReplica {
                name: "r1".into(),
                dsn: r.clone(),
            },
            // Port 1: nothing listens there.
            MyReplica {
                name: "gone".into(),
                dsn: "mysql://dba:dba@127.0.0.1:1/test".into(),
            },
        ],
        opts(),
        None,
    )
    .unwrap();
    let before = poller.poll().await;
    assert_eq!(before[0].seconds, Some(0.0));
    assert_eq!(before[1].seconds, None, "unreachable replica is unknown");

    admin.query_drop("STOP SLAVE SQL_THREAD").await.unwrap();
    let stopped = one(&mut poller, "r1").await;
    admin.query_drop("START SLAVE SQL_THREAD").await.unwrap();
    assert_eq!(stopped.seconds, None, "a stopped SQL thread is unknown");
    assert!(
        cutover::lag::over_limit(&stopped, 1e9),
        "unknown counts as over"
    );
    my_catch_up(&mut primary, &mut admin).await;
    assert_eq!(one(&mut poller, "r1").await.seconds, Some(0.0));
}

async fn pg_catch_up(primary: &tokio_postgres::Client, replica: &tokio_postgres::Client) {
    let lsn: String = primary
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .unwrap()
        .get(0);
    for _ in 0..600 {
        let ok: bool = replica
            .query_one(
                "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn",
                &[&lsn],
            )
            .await
            .unwrap()
            .get(0);
        if ok {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("PostgreSQL replica did not catch up");
}

async fn server_replay_lag(primary: &tokio_postgres::Client) -> Option<f64> {
    primary
        .query_opt(
            "SELECT EXTRACT(EPOCH FROM replay_lag)::float8 FROM pg_stat_replication WHERE application_name = 'pg_replica'",
            &[],
        )
        .await
        .unwrap()
        .and_then(|r| r.get(0))
}

#[tokio::test]
async fn postgres_paused_replay_is_seen_and_recovers() {
    let (Some(p), Some(r)) = (
        url("CUTOVER_TEST_PG_PRIMARY"),
        url("CUTOVER_TEST_PG_REPLICA"),
    ) else {
        return;
    };
    let _g = SERIAL.lock().await;
    let primary = pg(&p).await;
    let replica = pg(&r).await;
    primary
        .batch_execute("CREATE TABLE IF NOT EXISTS lag_probe (id serial PRIMARY KEY, v int)")
        .await
        .unwrap();
    pg_catch_up(&primary, &replica).await;
    let mut poller = PgLagPoller::new(
        &p,
        vec![PgReplica {
            name: "pg_replica".into(),
            dsn: r.clone(),
        }],
        opts(),
    );
    assert_eq!(one(&mut poller, "pg_replica").await.seconds, Some(0.0));

    replica
        .batch_execute("SELECT pg_wal_replay_pause()")
        .await
        .unwrap();
    let dsn = p.clone();
    let writer = db_common::spawn_pg_writer(dsn);
    let mut waits = 0;
    while server_replay_lag(&primary).await.unwrap_or(0.0) <= THRESHOLD {
        waits += 1;
        assert!(
            waits < 200,
            "the server never reported replay_lag over {THRESHOLD}s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first = one(&mut poller, "pg_replica").await;
    let second = one(&mut poller, "pg_replica").await;
    replica
        .batch_execute("SELECT pg_wal_replay_resume()")
        .await
        .unwrap();
    writer.abort();
    assert!(
        [&first, &second]
            .iter()
            .any(|s| s.seconds.is_some_and(|v| v > THRESHOLD) && s.bytes.is_some_and(|b| b > 0)),
        "one of the first two samples after the server said > {THRESHOLD}s: {first:?} {second:?}"
    );
    let mut back = false;
    for _ in 0..RECOVERY_POLLS {
        if one(&mut poller, "pg_replica")
            .await
            .seconds
            .is_some_and(|v| v <= THRESHOLD)
        {
            back = true;
            break;
        }
        tokio::time::sleep(opts().interval).await;
    }
    assert!(
        back,
        "lag returned under {THRESHOLD}s after pg_wal_replay_resume()"
    );
}

#[tokio::test]
async fn postgres_idle_primary_shows_no_growing_lag_and_unreachable_is_unknown() {
    let (Some(p), Some(r)) = (
        url("CUTOVER_TEST_PG_PRIMARY"),
        url("CUTOVER_TEST_PG_REPLICA"),
    ) else {
        return;
    };
    let _g = SERIAL.lock().await;
    let primary = pg(&p).await;
    let replica = pg(&r).await;
    primary
        .batch_execute("CREATE TABLE IF NOT EXISTS lag_probe (id serial PRIMARY KEY, v int); INSERT INTO lag_probe (v) VALUES (1)")
        .await
        .unwrap();
    pg_catch_up(&primary, &replica).await;
    let mut poller = PgLagPoller::new(
        &p,
        vec![
            PgReplica {
                name: "pg_replica".into(),
                dsn: r.clone(),
            },
            PgReplica {
                name: "gone".into(),
                dsn: "postgres://postgres@127.0.0.1:1/postgres".into(),
            },
        ],
        opts(),
    );
    // Stay idle until the naive replica-side figure is clearly over the
    // threshold: that is the false lag the poller must not report.
    let mut naive = 0.0;
    for _ in 0..200 {
        naive = replica
            .query_one(
                "SELECT EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if naive > THRESHOLD + 0.5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(naive > THRESHOLD, "the naive idle figure grew ({naive})");
    for _ in 0..3 {
        let samples = poller.poll().await;
        assert!(
            samples[0].seconds.is_some_and(|s| s < THRESHOLD),
            "idle primary reads as not lagging: {:?}",
            samples[0]
        );
        assert_eq!(samples[1].seconds, None, "unreachable replica is unknown");
    }
}
