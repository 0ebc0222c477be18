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
