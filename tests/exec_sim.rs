//! The simulated executor on a paused tokio clock.

use chrono::{TimeZone, Utc};
use cutover::exec::sim::{SimConfig, SimExecutor};
use cutover::exec::{Control, ExecJob, ExecPhase, ExecUpdate, Executor, OutcomeKind};
use cutover::model::Risk;
use cutover::policy::approvals::Binding;
use cutover::policy::{Environment, FixedClock};
use cutover::run::RunSpec;
use std::sync::Arc;
use tokio::sync::mpsc;

pub fn job(dir: &std::path::Path, postpone: bool) -> ExecJob {
    ExecJob {
        run: "r1".into(),
        spec: RunSpec {
            binding: Binding {
                plan_digest: "d".repeat(64),
                target: "t".into(),
            },
            environment: Environment::Staging,
            risk: Risk::High,
            versions: vec![],
            estimated_seconds: 10.0,
            tables: vec!["public.orders".into()],
            executor: "sim".into(),
        },
        run_dir: dir.to_path_buf(),
        postpone_cut_over: postpone,
        chunk_size: None,
        max_lag_millis: None,
    }
}

async fn next_phase(
    rx: &mut mpsc::Receiver<ExecUpdate>,
    want: fn(&ExecPhase) -> bool,
) -> ExecUpdate {
    loop {
        match rx.recv().await {
            Some(ExecUpdate::Status(s)) if want(&s.phase) => return ExecUpdate::Status(s),
            Some(u @ ExecUpdate::Finished(_)) => return u,
            Some(_) => continue,
            None => panic!("executor stopped"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn copies_pauses_resumes_postpones_and_cuts_over() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let clock = Arc::new(FixedClock::new(
        Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default(),
    ));
    let mut ex = SimExecutor::new(
        SimConfig {
            rows_total: 20_000,
            ..SimConfig::default()
        },
        clock,
    );
    let (tx, mut rx) = mpsc::channel(16);
    ex.start(job(dir.path(), true), tx)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    next_phase(&mut rx, |p| matches!(p, ExecPhase::Copying)).await;
    ex.control(Control::Pause)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    next_phase(&mut rx, |p| matches!(p, ExecPhase::Paused)).await;
    let paused_at = ex
        .status()
        .await
        .ok()
        .and_then(|s| s.progress)
        .map(|p| p.rows_copied);
    tokio::time::advance(std::time::Duration::from_secs(10)).await;
    let still = ex
        .status()
        .await
        .ok()
        .and_then(|s| s.progress)
        .map(|p| p.rows_copied);
    assert_eq!(paused_at, still, "no copying while paused");
    ex.control(Control::Resume)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    ex.control(Control::SetChunkSize { rows: 2000 })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    next_phase(&mut rx, |p| matches!(p, ExecPhase::PostponingCutOver)).await;
    // Postponed: it waits as long as it takes.
    tokio::time::advance(std::time::Duration::from_secs(3600)).await;
    assert!(matches!(
        ex.status().await.map(|s| s.phase),
        Ok(ExecPhase::PostponingCutOver)
    ));
    ex.control(Control::CutOver {
        table: Some("orders".into()),
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    match next_phase(&mut rx, |_| false).await {
        ExecUpdate::Finished(o) => assert_eq!(o.kind, OutcomeKind::Succeeded),
        u => panic!("{u:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn abort_leaves_the_ghost_table_behind() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let clock = Arc::new(FixedClock::new(
        Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default(),
    ));
    let mut ex = SimExecutor::new(SimConfig::default(), clock);
    let (tx, mut rx) = mpsc::channel(16);
    ex.start(job(dir.path(), false), tx)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    next_phase(&mut rx, |p| matches!(p, ExecPhase::Copying)).await;
    ex.control(Control::Abort { table: None })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    match next_phase(&mut rx, |_| false).await {
        ExecUpdate::Finished(o) => {
            assert_eq!(o.kind, OutcomeKind::Aborted);
            assert_eq!(o.leftovers[0].name, "_orders_gho");
        }
        u => panic!("{u:?}"),
    }
}
