//! `bench-slack`: the relay's Slack traffic over a simulated 6-hour run.
//!
//! One progress sample per second for 6 hours, fed to the real relay
//! (`slack::relay::Relay`) on tokio's paused clock, against an in-process
//! fake of the `SlackApi` trait that answers in 50–150 ms and injects two
//! outages: a burst of 429s (`Retry-After: 30`) and a 10-minute 5xx outage.
//! A loopback HTTP double and a paused clock do not mix, hence the fake.
//!
//! Prints API calls per method per minute (mean and worst minute), the
//! worst minute of `chat.update` per message, the maximum staleness of the
//! progress message outside the outages, the recovery time after each
//! outage, whether the final state arrived, and how many calls reached the
//! fake while a `Retry-After` it had sent was still running (target 0).
//! A second, 10-minute scenario refuses every payload with blocks
//! (`invalid_blocks`) and counts the calls: one refusal per message, then
//! plain text — not a flood.
//!
//! Run: `cargo run --release --bin bench-slack` (or without `--release`).

use chrono::{TimeZone, Utc};
use cutover::exec::{ExecPhase, ExecStatus, Progress};
use cutover::policy::approvals::ApprovalRecord;
use cutover::policy::{Actor, Environment, Role, Surface};
use cutover::run::fanout::{Fanout, Published};
use cutover::run::{Event, EventRecord, RunSpec, Sample};
use cutover::slack::api::{ApiError, SlackApi};
use cutover::slack::relay::{Relay, RelaySetup};
use cutover::slack::view::RunView;
use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

const RUN_SECONDS: u64 = 6 * 3600;
/// 429 burst: from 1 h for 2 min, every call answered `Retry-After: 30`.
const BURST: (u64, u64, u64) = (3600, 120, 30);
/// 5xx outage: from 3 h for 10 min.
const OUTAGE: (u64, u64) = (3 * 3600, 600);

/// One call: when, method, message ts, whether Slack accepted it.
type CallRecord = (Instant, String, Option<String>, bool);

#[derive(Default)]
struct Fake {
    start: Mutex<Option<Instant>>,
    calls: Mutex<Vec<CallRecord>>,
    next_ts: Mutex<u64>,
    /// Per method: until when the last 429 asked to wait.
    retry_after: Mutex<BTreeMap<String, Instant>>,
    /// Calls that arrived while their method's Retry-After was running.
    while_blocked: Mutex<u64>,
    /// Refuse every message write that carries blocks (`invalid_blocks`),
    /// as Slack does with a payload it finds invalid, however often resent.
    reject_blocks: bool,
}

impl Fake {
    fn secs(&self, now: Instant) -> u64 {
        let s = self.start.lock().map(|s| *s).ok().flatten().unwrap_or(now);
        (now - s).as_secs()
    }
}

impl SlackApi for Fake {
    fn call<'a>(&'a self, method: &'a str, args: Value) -> BoxFuture<'a, Result<Value, ApiError>> {
        Box::pin(async move {
            // Deterministic latency between 50 and 150 ms.
            let n = self.calls.lock().map(|c| c.len()).unwrap_or(0) as u64;
            tokio::time::sleep(Duration::from_millis(50 + (n * 37) % 100)).await;
            let now = Instant::now();
            let t = self.secs(now);
            let ts = args["ts"].as_str().map(str::to_string);
            if let Ok(r) = self.retry_after.lock()
                && r.get(method).is_some_and(|until| now < *until)
                && let Ok(mut n) = self.while_blocked.lock()
            {
                *n += 1;
            }
            let has_blocks = args["blocks"].as_array().is_some_and(|b| !b.is_empty());
            let result = if self.reject_blocks && has_blocks {
                Err(ApiError::Slack {
                    method: method.into(),
                    code: "invalid_blocks".into(),
                    needed: None,
                    messages: vec!["[ERROR] refused by the bench [json-pointer:/blocks/0]".into()],
                })
            } else if (BURST.0..BURST.0 + BURST.1).contains(&t) {
                if let Ok(mut r) = self.retry_after.lock() {
                    r.insert(method.to_string(), now + Duration::from_secs(BURST.2));
                }
                Err(ApiError::RateLimited {
                    method: method.into(),
                    retry_after: Duration::from_secs(BURST.2),
                })
            } else if (OUTAGE.0..OUTAGE.0 + OUTAGE.1).contains(&t) {
                Err(ApiError::Status {
                    method: method.into(),
                    status: 503,
                })
            } else {
                let mut next = self.next_ts.lock().unwrap_or_else(|p| p.into_inner());
                *next += 1;
                Ok(match method {
                    "chat.postMessage" => {
                        json!({"ok": true, "channel": "C1", "ts": format!("1700000000.{:06}", *next)})
                    }
                    _ => json!({"ok": true, "channel": "C1", "ts": args["ts"]}),
                })
            };
            let ok = result.is_ok();
            let ts = match &result {
                Ok(v) if method == "chat.postMessage" => v["ts"].as_str().map(str::to_string),
                _ => ts,
            };
            if let Ok(mut c) = self.calls.lock() {
                c.push((now, method.to_string(), ts, ok));
            }
            result
        })
    }
}

fn plan() -> Result<cutover::model::Plan, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    std::fs::write(
        dir.path().join("V42__orders_region.sql"),
        "ALTER TABLE orders ADD COLUMN region text;\nUPDATE orders SET region = 'eu' WHERE region IS NULL;\nCREATE INDEX CONCURRENTLY orders_region ON orders (region);\n",
    )
    .map_err(|e| e.to_string())?;
    let opts = cutover::cli::PlanOpts {
        paths: vec![dir.path().to_path_buf()],
        engine: Some("postgres".into()),
        engine_version: None,
        source_format: Some("flyway".into()),
        target: None,
        stats: None,
        rules: None,
        config: Some("/dev/null".into()),
    };
    cutover::cmd::plan::build(&opts)
        .map(|p| p.0)
        .map_err(|e| e.to_string())
}

struct Feed {
    fan: Fanout,
    seq: u64,
    t0: chrono::DateTime<Utc>,
}

impl Feed {
    fn events(&mut self, actor: Actor, at: u64, events: Vec<Event>) {
        let recs = EventRecord::stamp(
            "run-bench",
            self.seq,
            events,
            &actor,
            None,
            self.t0 + chrono::Duration::seconds(at as i64),
        );
        for r in recs {
            self.seq = r.seq;
            self.fan.publish(Published::Event {
                record: r,
                anchor: cutover::audit::Anchor {
                    records: 0,
                    tag: String::new(),
                },
            });
        }
    }
}

fn main() -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let fake = Arc::new(Fake::default());
        let (started, report) = bench(fake.clone(), RUN_SECONDS).await?;
        let calls = fake.calls.lock().map_err(|e| e.to_string())?.clone();
        print_figures(&calls, started, &report)?;
        println!(
            "calls made while blocked by Retry-After: {} (target 0)",
            fake.while_blocked.lock().map(|n| *n).unwrap_or(0)
        );
        rejected_scenario().await
    })
}

/// A payload Slack rejects (`invalid_blocks` on every message with blocks)
/// over a 10-minute run: one refusal per message, then plain text; no flood.
async fn rejected_scenario() -> Result<(), String> {
    const SECONDS: u64 = 600;
    let fake = Arc::new(Fake {
        reject_blocks: true,
        ..Fake::default()
    });
    let (_, report) = bench(fake.clone(), SECONDS).await?;
    let calls = fake.calls.lock().map_err(|e| e.to_string())?.clone();
    let refused = calls.iter().filter(|c| !c.3).count();
    let posts = calls.iter().filter(|c| c.1 == "chat.postMessage").count();
    println!();
    println!(
        "rejected-post scenario ({} min, every payload with blocks refused invalid_blocks): {} calls ({} refused, {} posts), {} rejection(s) reported, final state delivered as plain text: {}",
        SECONDS / 60,
        calls.len(),
        refused,
        posts,
        report.rejected.len(),
        if report.final_delivered { "yes" } else { "NO" }
    );
    if refused > 3 || !report.final_delivered {
        return Err(format!("a rejected payload was resent: {refused} refusals"));
    }
    Ok(())
}

async fn bench(
    fake: Arc<Fake>,
    run_seconds: u64,
) -> Result<(Instant, cutover::slack::relay::RelayReport), String> {
    let plan = plan()?;
    let t0 = Utc
        .with_ymd_and_hms(2025, 3, 3, 2, 0, 0)
        .single()
        .unwrap_or_default();
    let spec = RunSpec::from_plan(&plan, "orders-prod", Environment::Prod, "sim");
    let mut feed = Feed {
        fan: Fanout::default(),
        seq: 0,
        t0,
    };
    let sub = feed.fan.subscribe(1 << 16);
    let setup = RelaySetup {
        run: "run-bench".into(),
        target: "orders-prod".into(),
        channel: "C1".into(),
        plan: plan.clone(),
        links: Default::default(),
        people: BTreeMap::new(),
        coalesce: Duration::from_secs(5),
        requests: None,
    };
    let started = Instant::now();
    if let Ok(mut s) = fake.start.lock() {
        *s = Some(started);
    }
    let relay = tokio::spawn(Relay::new(setup, fake.clone(), RunView::default()).run(sub));
    feed.events(
        Actor::local("bob"),
        0,
        vec![
            Event::Created { spec: spec.clone() },
            Event::Requested {
                person: "bob".into(),
                name: "Bob".into(),
                surface: Surface::Console,
            },
        ],
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    feed.events(
        Actor::slack("T1", "U1"),
        1,
        vec![
            Event::Approved {
                approval: ApprovalRecord {
                    approver: "alice".into(),
                    name: "Alice".into(),
                    role: Role::Dba,
                    actor: Actor::slack("T1", "U1"),
                    surface: Surface::Slack,
                    at: t0,
                    binding: spec.binding.clone(),
                    versions: spec.versions.clone(),
                    origin: None,
                },
            },
            Event::ApprovalSatisfied {
                approvers: vec!["alice".into()],
            },
            Event::Started {
                person: "bob".into(),
            },
        ],
    );
    let total = run_seconds * 1000;
    for i in 1..=run_seconds {
        tokio::time::sleep_until(started + Duration::from_secs(i)).await;
        feed.fan.publish(Published::Sample(Sample::Progress {
            status: ExecStatus {
                phase: ExecPhase::Copying,
                progress: Some(Progress {
                    rows_copied: i * 1000,
                    rows_total: Some(total),
                    percent: None,
                    eta_seconds: Some((run_seconds - i) as f64),
                    chunk_size: Some(1000),
                    max_lag_millis: None,
                    detail: None,
                }),
                at: t0 + chrono::Duration::seconds(i as i64),
            },
        }));
    }
    feed.events(Actor::System, run_seconds + 1, vec![Event::Succeeded]);
    feed.fan.close();
    let report = tokio::time::timeout(Duration::from_secs(3600), relay)
        .await
        .map_err(|_| "the relay did not finish within an hour of the end".to_string())?
        .map_err(|e| e.to_string())?;
    Ok((started, report))
}

type Calls = [CallRecord];

fn print_figures(
    calls: &Calls,
    started: Instant,
    report: &cutover::slack::relay::RelayReport,
) -> Result<(), String> {
    let minute = |t: Instant| (t - started).as_secs() / 60;
    let minutes = calls.iter().map(|c| minute(c.0)).max().unwrap_or(0) + 1;
    println!(
        "bench-slack: {} h run, 1 progress sample/s, paused clock; 429 burst at {}–{} min (Retry-After {} s), 5xx outage at {}–{} min",
        RUN_SECONDS / 3600,
        BURST.0 / 60,
        (BURST.0 + BURST.1) / 60,
        BURST.2,
        OUTAGE.0 / 60,
        (OUTAGE.0 + OUTAGE.1) / 60
    );
    println!("{} API calls over {minutes} minutes", calls.len());
    println!(
        "{:<22} {:>8} {:>10} {:>12}",
        "method", "calls", "mean/min", "worst min"
    );
    let mut methods: BTreeMap<&str, BTreeMap<u64, u64>> = BTreeMap::new();
    for c in calls {
        *methods
            .entry(c.1.as_str())
            .or_default()
            .entry(minute(c.0))
            .or_default() += 1;
    }
    for (m, per) in &methods {
        let n: u64 = per.values().sum();
        println!(
            "{m:<22} {n:>8} {:>10.2} {:>12}",
            n as f64 / minutes as f64,
            per.values().max().copied().unwrap_or(0)
        );
    }
    let progress = report.ids.progress.clone().unwrap_or_default();
    let preflight = report.ids.preflight.clone().unwrap_or_default();
    for (name, ts) in [("pre-flight", &preflight), ("progress", &progress)] {
        let mut per: BTreeMap<u64, u64> = BTreeMap::new();
        for c in calls
            .iter()
            .filter(|c| c.1 == "chat.update" && c.2.as_deref() == Some(ts))
        {
            *per.entry(minute(c.0)).or_default() += 1;
        }
        let worst = per.values().max().copied().unwrap_or(0);
        println!(
            "chat.update on the {name} message: worst minute {worst} (target <= 12) {}",
            if worst <= 12 { "ok" } else { "OVER" }
        );
    }
    // Staleness: at every second, time since the progress message last
    // reached Slack, or since the outage ended if that is later (during an
    // outage nothing can arrive; after a 429 the wait for Retry-After is
    // mandatory, so it counts as outage).
    let delivered: Vec<u64> = calls
        .iter()
        .filter(|c| c.3 && c.2.as_deref() == Some(progress.as_str()))
        .map(|c| (c.0 - started).as_secs())
        .collect();
    let outages = [
        (BURST.0, BURST.0 + BURST.1 + BURST.2),
        (OUTAGE.0, OUTAGE.0 + OUTAGE.1),
    ];
    let first = delivered.first().copied().unwrap_or(0);
    let mut worst = 0u64;
    let mut worst_at = 0u64;
    let mut k = 0usize;
    for t in first..=RUN_SECONDS {
        while k + 1 < delivered.len() && delivered[k + 1] <= t {
            k += 1;
        }
        if outages.iter().any(|(a, b)| (*a..*b).contains(&t)) {
            continue;
        }
        let since_outage = outages
            .iter()
            .filter(|(_, b)| *b <= t)
            .map(|(_, b)| *b)
            .max()
            .unwrap_or(0);
        let s = t - delivered[k].max(since_outage);
        if s > worst {
            worst = s;
            worst_at = t;
        }
    }
    println!(
        "max staleness of the progress message outside outages: {worst} s (at {} min; target <= 10) {}",
        worst_at / 60,
        if worst <= 10 { "ok" } else { "OVER" }
    );
    for (a, b) in outages {
        let back = delivered.iter().find(|d| **d >= b).map(|d| d - b);
        println!(
            "first progress edit after the outage ending at {} min: {}",
            b / 60,
            back.map_or("never".to_string(), |s| format!("+{s} s"))
        );
        let _ = a;
    }
    println!(
        "final state delivered: {}{}",
        if report.final_delivered { "yes" } else { "NO" },
        report
            .fatal
            .as_ref()
            .map(|f| format!(" (fatal: {f})"))
            .unwrap_or_default()
    );
    if report.final_delivered {
        Ok(())
    } else {
        Err("the final state was not delivered".into())
    }
}
