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
        running: None,
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

/// The demo's executor speaks as the gh-ost driver does: gh-ost's
/// capabilities announced under its label, throttled by its own look at the
/// replicas with gh-ost's reason (and no command from the run core), the
/// inspected replica's lag as the tool's reading, an ETA, and a postponed
/// cut-over that waits for the command.
#[tokio::test(start_paused = true)]
async fn the_gh_ost_shaped_simulation_speaks_as_gh_ost_does() {
    use cutover::exec::sim::{GH_OST_SHAPED, Readings};
    use cutover::lag::{LagSample, LagSource};
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let at = Utc
        .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    let clock = Arc::new(FixedClock::new(at));
    let readings: Readings = Arc::default();
    let set = |lag: f64| {
        *readings.lock().unwrap_or_else(|p| p.into_inner()) = ["replica-1", "replica-3"]
            .iter()
            .enumerate()
            .map(|(i, r)| LagSample {
                replica: r.to_string(),
                seconds: Some(if i == 1 { lag } else { 0.2 }),
                bytes: None,
                source: LagSource::Simulated,
                at,
                why: None,
            })
            .collect();
    };
    set(0.1);
    let mut ex = SimExecutor::new(
        SimConfig {
            rows_total: 20_000,
            ..SimConfig::default()
        },
        clock,
    )
    .gh_ost_shaped(readings.clone());
    assert_eq!(ex.capabilities(), cutover::exec::ghost::CAPABILITIES);
    let (tx, mut rx) = mpsc::channel(64);
    ex.start(job(dir.path(), true), tx)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    match rx.recv().await {
        Some(ExecUpdate::Executor {
            executor,
            capabilities,
            notes,
            ..
        }) => {
            assert_eq!(executor, GH_OST_SHAPED);
            assert!(capabilities.lag_throttle && capabilities.postpone_cut_over);
            assert!(
                notes.iter().any(|n| n.contains("pause = throttle")),
                "{notes:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    match next_phase(&mut rx, |p| matches!(p, ExecPhase::Copying)).await {
        ExecUpdate::Status(s) => {
            let eta = s.progress.and_then(|p| p.eta_seconds);
            assert!(eta.is_some_and(|e| e > 0.0), "{eta:?}");
        }
        other => panic!("{other:?}"),
    }
    // The tool's own lag reading, of the inspected (first) replica.
    loop {
        match rx.recv().await {
            Some(ExecUpdate::Lag(l)) => {
                assert_eq!(l.replica, "replica-1 (gh-ost)");
                assert_eq!(l.source, LagSource::Executor);
                break;
            }
            Some(_) => {}
            None => panic!("executor stopped"),
        }
    }
    // A replica over gh-ost's 1.5 s default: throttled, by itself.
    set(2.5);
    match next_phase(&mut rx, |p| matches!(p, ExecPhase::Throttled { .. })).await {
        ExecUpdate::Status(s) => {
            assert_eq!(
                s.phase,
                ExecPhase::Throttled {
                    reason: "replica-3 replica-lag=2.500000s".into()
                }
            );
            assert_eq!(
                s.progress.and_then(|p| p.eta_seconds),
                None,
                "no ETA while throttled"
            );
        }
        other => panic!("{other:?}"),
    }
    set(0.3);
    next_phase(&mut rx, |p| matches!(p, ExecPhase::Copying)).await;
    next_phase(&mut rx, |p| matches!(p, ExecPhase::PostponingCutOver)).await;
    tokio::time::advance(std::time::Duration::from_secs(30)).await;
    assert!(
        matches!(
            ex.status().await.map(|s| s.phase),
            Ok(ExecPhase::PostponingCutOver)
        ),
        "the cut-over waits for the command"
    );
    ex.control(Control::CutOver { table: None })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    match next_phase(&mut rx, |_| false).await {
        ExecUpdate::Finished(o) => assert_eq!(o.kind, OutcomeKind::Succeeded),
        other => panic!("{other:?}"),
    }
}
