//! Before-start checks the native executors share: replica health and free
//! disk for a rewrite or a copy. Pure verdicts here; the executors read the
//! facts.

use crate::lag::LagSample;
use crate::migrate::Migration;
use crate::model::Engine;
use crate::sql::analyze::analyze;
use crate::sql::ops::{Action, Op};
use std::path::Path;

/// The refusal when any replica's lag is unknown (stopped thread, NULL,
/// unreachable: replication is broken, and nothing would show the harm), or
/// when a configured poller saw no replica. A replica that is known but over
/// the limit is not refused here: the executor waits, throttled, until every
/// replica is under the limit before its first statement.
pub fn replica_health(samples: &[LagSample]) -> Option<String> {
    if samples.is_empty() {
        return Some("replica health: no replica answered the lag poll".into());
    }
    let bad: Vec<String> = samples
        .iter()
        .filter(|s| s.seconds.is_none_or(|v| !v.is_finite()))
        .map(|s| {
            format!(
                "{} lag is unknown (stopped, unreachable or NULL)",
                s.replica
            )
        })
        .collect();
    (!bad.is_empty()).then(|| {
        format!(
            "replica health: {}: fix replication (or remove the replica from the target) before migrating",
            bad.join(", ")
        )
    })
}

/// How much room a statement needs, and on which table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Room {
    /// A full copy of the table with its indexes (rewrite, copy, rebuild).
    TableAndIndexes(String),
    /// About the table's heap (an index build sorts and writes the index).
    Heap(String),
}

/// What each statement of `migrations` needs in free disk (pure).
///
/// PostgreSQL: a rewriting ALTER, VACUUM FULL or CLUSTER writes a new copy
/// of the table and its indexes; an index build needs at most about the
/// heap. MySQL/MariaDB: any ALTER may rebuild (INPLACE) or copy the table,
/// so each needs a full copy; OPTIMIZE rebuilds.
pub fn room_needed(migrations: &[Migration]) -> Vec<Room> {
    let mut out = Vec::new();
    for m in migrations {
        for s in &m.statements {
            let op = analyze(&s.sql, m.engine).op;
            match (m.engine, op) {
                (Engine::Postgres, Op::CreateIndex { table, .. }) => out.push(Room::Heap(table)),
                (Engine::Postgres, Op::AlterTable { table, actions, .. })
                    if actions.iter().any(|a| {
                        matches!(
                            a,
                            Action::AlterColumnType { .. }
                                | Action::ModifyColumn { .. }
                                | Action::PgRewrite(_)
                        )
                    }) =>
                {
                    out.push(Room::TableAndIndexes(table))
                }
                (
                    Engine::Postgres,
                    Op::Vacuum {
                        full: true,
                        table: Some(table),
                    },
                )
                | (Engine::Postgres, Op::Cluster { table: Some(table) }) => {
                    out.push(Room::TableAndIndexes(table))
                }
                (Engine::Mysql, Op::AlterTable { table, .. })
                | (Engine::Mysql, Op::Optimize { table }) => out.push(Room::TableAndIndexes(table)),
                (Engine::Mysql, Op::CreateIndex { table, .. }) => {
                    out.push(Room::TableAndIndexes(table))
                }
                _ => {}
            }
        }
    }
    out
}

/// The disk verdict.
#[derive(Debug, Clone, PartialEq)]
pub enum Disk {
    /// Enough room (or nothing needs room).
    Ok,
    /// Free space could not be read: say so and go on.
    Warn(String),
    /// Not enough room: refuse.
    Refuse(String),
}

/// Compares the largest need with the free space (10% headroom: the WAL or
/// redo log written meanwhile needs room too).
pub fn disk_verdict(needed: &[(String, u64)], free: Result<u64, String>) -> Disk {
    let Some((table, bytes)) = needed.iter().max_by_key(|(_, b)| *b) else {
        return Disk::Ok;
    };
    if *bytes == 0 {
        return Disk::Ok;
    }
    let need = bytes + bytes / 10;
    match free {
        Err(why) => Disk::Warn(format!(
            "free disk on the server cannot be read ({why}): {table} needs about {} for its rewrite or copy; check it by hand",
            human(need)
        )),
        Ok(f) if f < need => Disk::Refuse(format!(
            "free disk: {table} needs about {} for its rewrite or copy, the server's data directory has {} free",
            human(need),
            human(f)
        )),
        Ok(_) => Disk::Ok,
    }
}

/// `1536` → `1.5 KiB`.
pub fn human(b: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// Free bytes of the file system holding `dir`, when the server runs on
/// this machine (`local`) and the directory is visible here.
pub fn local_free(dir: &str, local: bool) -> Result<u64, String> {
    if !local {
        return Err("the server is not on this machine".into());
    }
    let p = Path::new(dir);
    if !p.is_dir() {
        return Err(format!("{dir} is not visible from here"));
    }
    let st = rustix::fs::statvfs(p).map_err(|e| format!("statvfs {dir}: {e}"))?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Whether a DSN's host is this machine (loopback or a socket path).
pub fn is_local_host(host: &str) -> bool {
    host.is_empty()
        || host.starts_with('/')
        || host == "localhost"
        || host == "::1"
        || host.starts_with("127.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lag::LagSource;
    use chrono::{DateTime, Utc};

    fn s(name: &str, seconds: Option<f64>) -> LagSample {
        LagSample {
            replica: name.into(),
            seconds,
            bytes: None,
            source: LagSource::Simulated,
            at: DateTime::<Utc>::UNIX_EPOCH,
            why: None,
        }
    }

    #[test]
    fn replica_health_refuses_unknown_and_over() {
        assert_eq!(replica_health(&[s("r1", Some(0.2))]), None);
        let r = replica_health(&[s("r1", Some(0.2)), s("r2", None)]).unwrap();
        assert!(r.contains("r2 lag is unknown") && !r.contains("r1"), "{r}");
        // Known but over the limit: the executor waits instead.
        assert_eq!(replica_health(&[s("r1", Some(3.0))]), None);
        assert!(replica_health(&[s("r1", Some(f64::NAN))]).is_some());
        assert!(replica_health(&[]).is_some());
    }

    #[test]
    fn disk_verdicts() {
        let need = vec![("t".to_string(), 1000u64), ("u".to_string(), 10)];
        assert_eq!(disk_verdict(&need, Ok(2000)), Disk::Ok);
        assert!(matches!(disk_verdict(&need, Ok(1050)), Disk::Refuse(m) if m.contains("t needs")));
        assert!(
            matches!(disk_verdict(&need, Err("remote".into())), Disk::Warn(m) if m.contains("remote"))
        );
        assert_eq!(disk_verdict(&[], Err("x".into())), Disk::Ok);
        assert_eq!(human(1536), "1.5 KiB");
        assert!(is_local_host("127.0.0.1") && is_local_host("/tmp/sock") && !is_local_host("db1"));
        assert!(local_free("/", true).is_ok());
        assert!(local_free("/", false).is_err());
    }

    #[test]
    fn room_for_rewrites_and_index_builds() {
        let mk = |sql: &str, engine| Migration {
            version: "1".into(),
            description: String::new(),
            path: "V1__x.sql".into(),
            checksum: String::new(),
            engine,
            format: crate::migrate::SourceFormat::Flyway,
            repeatable: false,
            tx: crate::migrate::TxWrap::Whole,
            directives: Default::default(),
            statements: crate::sql::split::split(sql, engine, 1, ";"),
            text: sql.into(),
        };
        assert_eq!(
            room_needed(&[mk(
                "CREATE INDEX CONCURRENTLY i ON t (c); ALTER TABLE u ALTER COLUMN c TYPE bigint; ALTER TABLE v ADD COLUMN d int;",
                Engine::Postgres
            )]),
            vec![Room::Heap("t".into()), Room::TableAndIndexes("u".into())]
        );
        assert_eq!(
            room_needed(&[mk("ALTER TABLE t ADD COLUMN d int;", Engine::Mysql)]),
            vec![Room::TableAndIndexes("t".into())]
        );
    }
}
