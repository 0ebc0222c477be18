//! Live, read-only table facts from a target's primary.
//!
//! Only catalog views are read (`pg_class`, `information_schema`); nothing is
//! written and no table is scanned. Names are stored normalised so that lookups
//! match the way the engine resolves the statement's names.

use super::{Catalog, ColumnFacts, FactSource, ForeignKeyFacts, IndexFacts, TableFacts};
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
        Err(_) => Err(err(crate::dberror::timed_out(
            engine,
            dsn,
            TIMEOUT.as_secs(),
        ))),
    }
}

async fn read_pg(dsn: &str) -> Result<Catalog, String> {
    let (client, conn) = tokio_postgres::connect(dsn, tokio_postgres::NoTls)
        .await
        .map_err(|e| crate::dberror::postgres(dsn, &e))?;
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
            "SELECT n.nspname::text, c.relname::text, c.reltuples::float8, pg_total_relation_size(c.oid)::int8,
                    -- relhastriggers is also true for the internal triggers behind FKs
                    EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal)
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
            indexes_known: true,
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
    let idx = client
        .query(
            "SELECT n.nspname::text || '.' || c.relname::text, i.relname::text, x.indisunique, x.indisvalid,
                    ARRAY(SELECT coalesce(a.attname::text, pg_get_indexdef(x.indexrelid, k.n::int, true))
                            FROM unnest(x.indkey::int2[]) WITH ORDINALITY k(attnum, n)
                            LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum AND k.attnum > 0
                           WHERE k.n <= x.indnkeyatts ORDER BY k.n)
               FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg_toast%'",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    for r in idx {
        if let Some(t) = cat.tables.get_mut(&r.get::<_, String>(0)) {
            t.indexes.push(IndexFacts {
                name: r.get(1),
                unique: r.get(2),
                valid: r.get(3),
                columns: r.get(4),
                fulltext: false,
            });
        }
    }
    let fks = client
        .query(
            "SELECT n.nspname::text || '.' || c.relname::text, k.conname::text,
                    ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(attnum, n)
                            JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum ORDER BY u.n),
                    rn.nspname::text || '.' || rc.relname::text, k.confdeltype::text, k.confupdtype::text
               FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_class rc ON rc.oid = k.confrelid JOIN pg_namespace rn ON rn.oid = rc.relnamespace
              WHERE k.contype = 'f'",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    for r in fks {
        if let Some(t) = cat.tables.get_mut(&r.get::<_, String>(0)) {
            let fk = ForeignKeyFacts {
                name: r.get(1),
                columns: r.get(2),
                references: r.get(3),
                on_delete: pg_fk_action(&r.get::<_, String>(4)).into(),
                on_update: pg_fk_action(&r.get::<_, String>(5)).into(),
            };
            t.cascading_fks |= fk.cascades();
            t.foreign_keys.push(fk);
        }
    }
    // Unqualified names resolve through search_path; `public` covers the common case
    // (Catalog::lookup tries it).
    // Open transactions and the tables they hold locks on (lock-queue risk).
    let open = client
        .query(
            "SELECT a.pid::int8, COALESCE(EXTRACT(EPOCH FROM now() - a.xact_start), 0)::int8, COALESCE(a.state, ''),
                    n.nspname::text || '.' || c.relname::text
               FROM pg_stat_activity a
               JOIN pg_locks l ON l.pid = a.pid AND l.relation IS NOT NULL
               JOIN pg_class c ON c.oid = l.relation AND c.relkind IN ('r','p','m')
               JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE a.xact_start IS NOT NULL AND a.pid <> pg_backend_pid()
                AND n.nspname NOT IN ('pg_catalog','information_schema')",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    for r in open {
        cat.open_transactions.push(super::OpenTransaction {
            id: r.get::<_, i64>(0).max(0) as u64,
            age_seconds: r.get::<_, i64>(1).max(0) as u64,
            state: r.get(2),
            table: Some(r.get(3)),
        });
    }
    drop(client);
    task.abort();
    Ok(cat)
}

/// `pg_constraint.confdeltype` / `confupdtype` codes.
fn pg_fk_action(code: &str) -> &'static str {
    match code {
        "c" => "CASCADE",
        "n" => "SET NULL",
        "d" => "SET DEFAULT",
        "r" => "RESTRICT",
        _ => "NO ACTION",
    }
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
        .map_err(|e| crate::dberror::mysql(dsn, &e))?;
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
    read_mysql_keys(&mut conn, &mut cat, current.as_deref()).await?;
    // InnoDB does not say which tables a transaction touched: every old one counts.
    let open: Vec<(u64, u64, String)> = conn
        .query(
            "SELECT trx_mysql_thread_id, TIMESTAMPDIFF(SECOND, trx_started, NOW()), trx_state
               FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id <> CONNECTION_ID()",
        )
        .await
        .unwrap_or_default();
    for (id, age, state) in open {
        cat.open_transactions.push(super::OpenTransaction {
            id,
            age_seconds: age,
            state,
            table: None,
        });
    }
    let _ = conn.disconnect().await;
    Ok(cat)
}

/// The tables a MySQL row belongs to: `schema.table`, and `table` in the current database.
fn my_keys(schema: &str, table: &str, current: Option<&str>) -> Vec<String> {
    let mut k = vec![format!("{schema}.{table}")];
    if current == Some(schema) {
        k.push(table.to_string());
    }
    k
}

/// Indexes, foreign keys and triggers from `information_schema`.
async fn read_mysql_keys(
    conn: &mut mysql_async::Conn,
    cat: &mut Catalog,
    current: Option<&str>,
) -> Result<(), String> {
    use mysql_async::prelude::*;
    const SYS: &str = "('mysql','information_schema','performance_schema','sys')";
    for t in cat.tables.values_mut() {
        t.indexes_known = true;
    }
    let idx: Vec<(String, String, String, i64, String, String)> = conn
        .query(format!(
            "SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, NON_UNIQUE, COALESCE(COLUMN_NAME, ''), INDEX_TYPE
               FROM information_schema.STATISTICS WHERE TABLE_SCHEMA NOT IN {SYS}
              ORDER BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX"
        ))
        .await
        .map_err(|e| e.to_string())?;
    for (schema, table, index, non_unique, col, kind) in idx {
        for key in my_keys(&schema, &table, current) {
            let Some(t) = cat.tables.get_mut(&key) else {
                continue;
            };
            match t.indexes.iter_mut().find(|i| i.name == index) {
                Some(i) => i.columns.push(col.clone()),
                None => t.indexes.push(IndexFacts {
                    name: index.clone(),
                    columns: vec![col.clone()],
                    unique: non_unique == 0,
                    valid: true,
                    fulltext: kind.eq_ignore_ascii_case("FULLTEXT"),
                }),
            }
        }
    }
    let fks: Vec<(String, String, String, String, String, String, String)> = conn
        .query(format!(
            "SELECT k.TABLE_SCHEMA, k.TABLE_NAME, k.CONSTRAINT_NAME, k.COLUMN_NAME,
                    CONCAT(k.REFERENCED_TABLE_SCHEMA, '.', k.REFERENCED_TABLE_NAME), r.DELETE_RULE, r.UPDATE_RULE
               FROM information_schema.KEY_COLUMN_USAGE k
               JOIN information_schema.REFERENTIAL_CONSTRAINTS r
                 ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME
                AND r.TABLE_NAME = k.TABLE_NAME
              WHERE k.TABLE_SCHEMA NOT IN {SYS} AND k.REFERENCED_TABLE_NAME IS NOT NULL
              ORDER BY k.TABLE_SCHEMA, k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION"
        ))
        .await
        .map_err(|e| e.to_string())?;
    for (schema, table, name, col, refd, del, upd) in fks {
        for key in my_keys(&schema, &table, current) {
            let Some(t) = cat.tables.get_mut(&key) else {
                continue;
            };
            match t.foreign_keys.iter_mut().find(|f| f.name == name) {
                Some(f) => f.columns.push(col.clone()),
                None => {
                    let fk = ForeignKeyFacts {
                        name: name.clone(),
                        columns: vec![col.clone()],
                        references: refd.clone(),
                        on_delete: del.clone(),
                        on_update: upd.clone(),
                    };
                    t.cascading_fks |= fk.cascades();
                    t.foreign_keys.push(fk);
                }
            }
        }
    }
    let trg: Vec<(String, String)> = conn
        .query(format!(
            "SELECT DISTINCT EVENT_OBJECT_SCHEMA, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS
              WHERE EVENT_OBJECT_SCHEMA NOT IN {SYS}"
        ))
        .await
        .map_err(|e| e.to_string())?;
    for (schema, table) in trg {
        for key in my_keys(&schema, &table, current) {
            if let Some(t) = cat.tables.get_mut(&key) {
                t.has_triggers = true;
            }
        }
    }
    Ok(())
}
