//! Live, read-only table facts from a target's primary.
//!
//! Only catalog views are read (`pg_class`, `information_schema`); nothing is
//! written and no table is scanned. Names are stored normalised so that lookups
//! match the way the engine resolves the statement's names.

use super::{Catalog, ColumnFacts, FactSource, TableFacts};
use crate::model::{Engine, EngineVersion};
use std::time::Duration;

/// Why live facts could not be read (the DSN is never included).
#[derive(Debug, thiserror::Error)]
#[error("reading table facts from target '{target}': {message}")]
pub struct LiveError {
    pub target: String,
    pub message: String,
}

const TIMEOUT: Duration = Duration::from_secs(15);

/// Reads every user table's size and columns from the primary.
pub async fn read(engine: Engine, dsn: &str, target: &str) -> Result<Catalog, LiveError> {
    let err = |m: String| LiveError {
        target: target.to_string(),
        message: crate::sql::redact::redact_dsn(&m),
    };
    let fut = async {
        match engine {
            Engine::Postgres => read_pg(dsn).await,
            Engine::Mysql => read_mysql(dsn).await,
        }
    };
    match tokio::time::timeout(TIMEOUT, fut).await {
        Ok(r) => r.map_err(err),
        Err(_) => Err(err(format!("no answer within {}s", TIMEOUT.as_secs()))),
    }
}

async fn read_pg(dsn: &str) -> Result<Catalog, String> {
    let (client, conn) = tokio_postgres::connect(dsn, tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut cat = Catalog::empty(Engine::Postgres);
    cat.source = FactSource::Live;
    let v: String = client
        .query_one("SHOW server_version_num", &[])
        .await
        .map_err(|e| e.to_string())?
        .get(0);
    cat.server_version = EngineVersion::from_server_string(Engine::Postgres, &v);
    let rows = client
        .query(
            "SELECT n.nspname::text, c.relname::text, c.reltuples::float8, pg_total_relation_size(c.oid)::int8, c.relhastriggers
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('r','p','m') AND n.nspname NOT IN ('pg_catalog','information_schema')
                AND n.nspname NOT LIKE 'pg_toast%'",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    for r in rows {
        let (schema, name): (String, String) = (r.get(0), r.get(1));
        let tuples: f64 = r.get(2);
        let bytes: i64 = r.get(3);
        let facts = TableFacts {
            // reltuples = -1 means never analysed (PG 14+): the row count is unknown.
            rows: (tuples >= 0.0).then_some(tuples as u64),
            bytes: Some(bytes.max(0) as u64),
            has_triggers: r.get(4),
            ..Default::default()
        };
        cat.tables.insert(format!("{schema}.{name}"), facts);
    }
    let cols = client
        .query(
            "SELECT n.nspname::text, c.relname::text, a.attname::text, upper(format_type(a.atttypid, a.atttypmod)), NOT a.attnotnull,
                    EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'c' AND k.convalidated
                             AND pg_get_constraintdef(k.oid) ILIKE '%' || quote_ident(a.attname) || ' IS NOT NULL%')
               FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r','p')
                AND n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg_toast%'",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    for r in cols {
        let key = format!("{}.{}", r.get::<_, String>(0), r.get::<_, String>(1));
        if let Some(t) = cat.tables.get_mut(&key) {
            t.columns.insert(
                r.get(2),
                ColumnFacts {
                    data_type: r.get(3),
                    nullable: r.get(4),
                    valid_not_null_check: r.get(5),
                    bytes_per_char: None,
                },
            );
        }
    }
    // Unqualified names resolve through search_path; `public` covers the common case
    // (Catalog::lookup tries it).
    drop(client);
    task.abort();
    Ok(cat)
}

/// schema, table, column, type, nullable, max chars, max octets
type MyColumnRow = (
    String,
    String,
    String,
    String,
    String,
    Option<u64>,
    Option<u64>,
);

async fn read_mysql(dsn: &str) -> Result<Catalog, String> {
    use mysql_async::prelude::*;
    let opts = mysql_async::Opts::from_url(dsn).map_err(|e| e.to_string())?;
    let mut conn = mysql_async::Conn::new(opts)
        .await
        .map_err(|e| e.to_string())?;
    let mut cat = Catalog::empty(Engine::Mysql);
    cat.source = FactSource::Live;
    let v: Option<String> = conn
        .query_first("SELECT VERSION()")
        .await
        .map_err(|e| e.to_string())?;
    cat.server_version = v.and_then(|v| EngineVersion::from_server_string(Engine::Mysql, &v));
    let tables: Vec<(String, String, Option<u64>, Option<u64>)> = conn
        .query(
            "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_ROWS, DATA_LENGTH + INDEX_LENGTH
               FROM information_schema.TABLES
              WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN ('mysql','information_schema','performance_schema','sys')",
        )
        .await
        .map_err(|e| e.to_string())?;
    let current: Option<String> = conn
        .query_first("SELECT DATABASE()")
        .await
        .map_err(|e| e.to_string())?;
    for (schema, name, rows, bytes) in tables {
        let facts = TableFacts {
            rows,
            bytes,
            ..Default::default()
        };
        if current.as_deref() == Some(schema.as_str()) {
            cat.tables.insert(name.clone(), facts.clone());
        }
        cat.tables.insert(format!("{schema}.{name}"), facts);
    }
    let cols: Vec<MyColumnRow> = conn
        .query(
            "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, UPPER(COLUMN_TYPE), IS_NULLABLE, CHARACTER_MAXIMUM_LENGTH, CHARACTER_OCTET_LENGTH
               FROM information_schema.COLUMNS
              WHERE TABLE_SCHEMA NOT IN ('mysql','information_schema','performance_schema','sys')",
        )
        .await
        .map_err(|e| e.to_string())?;
    for (schema, table, col, ty, nullable, chars, octets) in cols {
        let facts = ColumnFacts {
            data_type: ty,
            nullable: nullable == "YES",
            valid_not_null_check: false,
            bytes_per_char: match (chars, octets) {
                (Some(c), Some(o)) if c > 0 => Some((o / c) as u32),
                _ => None,
            },
        };
        for key in [format!("{schema}.{table}"), table.clone()] {
            if key == table && current.as_deref() != Some(schema.as_str()) {
                continue;
            }
            if let Some(t) = cat.tables.get_mut(&key) {
                t.columns.insert(col.clone(), facts.clone());
            }
        }
    }
    let _ = conn.disconnect().await;
    Ok(cat)
}
