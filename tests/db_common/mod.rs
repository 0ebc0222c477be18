//! Shared by the tests that talk to the throwaway servers `scripts/test` starts.
#![allow(dead_code)] // each test binary uses a different subset

/// The URL in `var`, or `None` to skip — unless `CUTOVER_TEST_REQUIRE_DB` is set,
/// in which case a missing server fails the test.
pub fn url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            assert!(
                std::env::var("CUTOVER_TEST_REQUIRE_DB").is_err(),
                "{var} is not set but CUTOVER_TEST_REQUIRE_DB is"
            );
            eprintln!("skipping: {var} not set (run through scripts/test)");
            None
        }
    }
}

/// The URL with its database replaced by `db`.
pub fn with_db(url: &str, db: &str) -> String {
    let (base, _) = url.rsplit_once('/').unwrap_or((url, ""));
    format!("{base}/{db}")
}

/// A fresh database `db` on the PostgreSQL primary; its DSN, or `None` to skip.
pub async fn fresh_pg(db: &str) -> Option<String> {
    let admin = url("CUTOVER_TEST_PG_PRIMARY")?;
    Some(fresh_pg_on(&admin, db).await)
}

/// A fresh database `db` on the PostgreSQL server of `admin`; its DSN.
pub async fn fresh_pg_on(admin: &str, db: &str) -> String {
    let c = pg(admin).await;
    // CREATE DATABASE copies template1, which fails while another test's
    // CREATE DATABASE is copying it: retry.
    let mut last = None;
    for _ in 0..100 {
        let res = match c
            .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
            .await
        {
            Ok(()) => c.batch_execute(&format!("CREATE DATABASE {db}")).await,
            Err(e) => Err(e),
        };
        match res {
            Ok(()) => return with_db(admin, db),
            Err(e) => last = Some(format!("{e:?}")),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("creating database {db}: {last:?}")
}

/// A fresh database `db` on the MariaDB primary; its DSN, or `None` to skip.
pub async fn fresh_my(db: &str) -> Option<String> {
    let admin = url("CUTOVER_TEST_MY_PRIMARY")?;
    Some(fresh_my_on(&admin, db).await)
}

/// A fresh database `db` on the MariaDB server of `admin`; its DSN.
pub async fn fresh_my_on(admin: &str, db: &str) -> String {
    use mysql_async::prelude::Queryable;
    let mut c = my(admin).await;
    c.query_drop(format!(
        "DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db}"
    ))
    .await
    .unwrap_or_else(|e| panic!("creating {db}: {e}"));
    with_db(admin, db)
}

/// A MariaDB connection.
pub async fn my(dsn: &str) -> mysql_async::Conn {
    let opts = mysql_async::Opts::from_url(dsn).unwrap_or_else(|e| panic!("{e}"));
    mysql_async::Conn::new(opts)
        .await
        .unwrap_or_else(|e| panic!("{dsn}: {e}"))
}

/// A PostgreSQL client whose connection task runs in the background.
pub async fn pg(dsn: &str) -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(dsn, tokio_postgres::NoTls)
        .await
        .expect("connect to test PostgreSQL");
    tokio::spawn(conn);
    c
}

/// Writes a row into `lag_probe` on the primary every 100 ms until aborted, so
/// that a paused replica falls further behind.
pub fn spawn_pg_writer(dsn: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let c = pg(&dsn).await;
        loop {
            let _ = c
                .batch_execute("INSERT INTO lag_probe (v) VALUES (1)")
                .await;
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
}
