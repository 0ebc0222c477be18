//! Shared helpers of the Slack tests: plans, run views, and the offline
//! Block Kit validator (`scripts/validate_blocks.py`, slack_sdk).
#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use cutover::cli::PlanOpts;
use cutover::exec::{ExecPhase, ExecStatus, Leftover, Progress};
use cutover::lag::{LagSample, LagSource};
use cutover::model::Plan;
use cutover::policy::approvals::ApprovalRecord;
use cutover::policy::{Actor, Environment, Role, Surface};
use cutover::run::{Event, EventRecord, RunSpec, Sample};
use cutover::slack::view::RunView;
use std::path::PathBuf;
use std::process::Command;

/// A plan built from `files` (name, SQL) by the real classifier.
pub fn plan_of(files: &[(String, String)]) -> Plan {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for (n, sql) in files {
        std::fs::write(dir.path().join(n), sql).unwrap_or_else(|e| panic!("{e}"));
    }
    let opts = PlanOpts {
        paths: vec![dir.path().to_path_buf()],
        engine: Some("postgres".into()),
        engine_version: None,
        source_format: Some("flyway".into()),
        target: None,
        stats: None,
        rules: None,
        config: Some(PathBuf::from("/dev/null")),
    };
    cutover::cmd::plan::build(&opts)
        .unwrap_or_else(|e| panic!("{e}"))
        .0
}

/// A two-migration plan with a high-risk statement and a long one.
pub fn small_plan() -> Plan {
    let long = format!(
        "UPDATE orders SET note = '{}' WHERE id < 10;",
        "x".repeat(3000)
    );
    plan_of(&[
        (
            "V41__add_region.sql".into(),
            "ALTER TABLE orders ADD COLUMN region text;\nCREATE INDEX CONCURRENTLY orders_region ON orders (region);\n".into(),
        ),
        (
            "V42__tighten.sql".into(),
            format!("ALTER TABLE orders ALTER COLUMN region SET NOT NULL;\nALTER TABLE orders ALTER COLUMN id TYPE bigint;\n{long}\n"),
        ),
    ])
}

/// 200 statements across 20 migrations.
pub fn big_plan() -> Plan {
    let files: Vec<(String, String)> = (0..20)
        .map(|m| {
            let sql: String = (0..10)
                .map(|i| match i % 4 {
                    0 => format!("ALTER TABLE t{m} ADD COLUMN c{i} integer;\n"),
                    1 => format!("ALTER TABLE t{m} ALTER COLUMN c{i} TYPE bigint;\n"),
                    2 => {
                        format!("CREATE INDEX i{m}_{i} ON t{m} (c{i}, <>c{i});\n").replace("<>", "")
                    }
                    _ => format!(
                        "UPDATE t{m} SET c{i} = 0 WHERE c{i} IS NULL AND note <> 'a&b<c>';\n"
                    ),
                })
                .collect();
            (format!("V{}__m{m}.sql", m + 1), sql)
        })
        .collect();
    plan_of(&files)
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 3, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

/// Records `events` after the view's last sequence number.
pub fn push(view: &mut RunView, actor: Actor, secs: i64, events: Vec<Event>) {
    let recs = EventRecord::stamp(
        "run-7f3a",
        view.state.last_seq,
        events,
        &actor,
        None,
        t0() + chrono::Duration::seconds(secs),
    );
    for r in &recs {
        view.event(r);
    }
}

pub fn spec_of(plan: &Plan) -> RunSpec {
    RunSpec::from_plan(plan, "orders-prod", Environment::Prod, "sim")
}

pub fn approval(plan: &Plan, who: &str, secs: i64) -> ApprovalRecord {
    let spec = spec_of(plan);
    ApprovalRecord {
        approver: who.into(),
        name: who.into(),
        role: Role::Dba,
        actor: Actor::slack("T1", "U1"),
        surface: Surface::Slack,
        at: t0() + chrono::Duration::seconds(secs),
        binding: spec.binding,
        versions: spec.versions,
        origin: None,
    }
}

pub fn progress_sample(rows: u64, total: u64, secs: i64, phase: ExecPhase) -> Sample {
    Sample::Progress {
        status: ExecStatus {
            phase,
            progress: Some(Progress {
                rows_copied: rows,
                rows_total: Some(total),
                percent: None,
                eta_seconds: Some(((total - rows) / 1000) as f64),
                chunk_size: Some(1000),
                max_lag_millis: None,
                detail: None,
            }),
            at: t0() + chrono::Duration::seconds(secs),
        },
    }
}

pub fn lag_sample(replica: &str, seconds: Option<f64>, secs: i64) -> Sample {
    Sample::Lag {
        sample: LagSample {
            replica: replica.into(),
            seconds,
            bytes: None,
            source: LagSource::Simulated,
            at: t0() + chrono::Duration::seconds(secs),
            why: None,
        },
    }
}

/// Views of one run at every stage the relay renders.
/// The view at one named stage of `stages`; an unknown name is a test bug.
pub fn stage(plan: &Plan, name: &str) -> RunView {
    stages(plan)
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|x| x.1)
        .unwrap_or_else(|| panic!("no stage named {name}"))
}

pub fn stages(plan: &Plan) -> Vec<(&'static str, RunView)> {
    let sys = Actor::System;
    let alice = Actor::slack("T1", "U2");
    let mut out = Vec::new();
    let mut v = RunView::default();
    push(
        &mut v,
        sys.clone(),
        0,
        vec![Event::Created {
            spec: spec_of(plan),
        }],
    );
    out.push(("planned", v.clone()));
    push(
        &mut v,
        Actor::local("bob"),
        1,
        vec![Event::Requested {
            person: "bob".into(),
            name: "Bob".into(),
            surface: Surface::Console,
        }],
    );
    out.push(("pending", v.clone()));
    let mut voided = v.clone();
    push(
        &mut voided,
        sys.clone(),
        2,
        vec![Event::ApprovalsVoided {
            reason: "migration checksums changed (V42 edited)".into(),
        }],
    );
    out.push(("voided", voided));
    let mut rejected = v.clone();
    push(
        &mut rejected,
        alice.clone(),
        3,
        vec![Event::Rejected {
            person: "alice".into(),
            reason: "lock risk too high <at peak>".into(),
        }],
    );
    out.push(("rejected", rejected));
    let mut expired = v.clone();
    push(
        &mut expired,
        sys.clone(),
        3,
        vec![Event::Expired {
            reason: "approvals lapsed".into(),
        }],
    );
    out.push(("expired", expired));
    push(
        &mut v,
        alice.clone(),
        4,
        vec![
            Event::Approved {
                approval: approval(plan, "alice", 4),
            },
            Event::ApprovalSatisfied {
                approvers: vec!["alice".into()],
            },
        ],
    );
    out.push(("approved", v.clone()));
    push(
        &mut v,
        Actor::local("bob"),
        5,
        vec![Event::Started {
            person: "bob".into(),
        }],
    );
    v.sample(&progress_sample(10_000, 1_000_000, 10, ExecPhase::Copying));
    v.sample(&progress_sample(40_000, 1_000_000, 20, ExecPhase::Copying));
    v.sample(&lag_sample("replica-1", Some(0.4), 20));
    v.sample(&lag_sample("replica-2", None, 20));
    out.push(("running", v.clone()));
    push(
        &mut v,
        sys.clone(),
        21,
        vec![Event::Throttled {
            reason: "lag=2.48s on replica-2".into(),
        }],
    );
    out.push(("throttled", v.clone()));
    push(
        &mut v,
        alice.clone(),
        22,
        vec![
            Event::PauseRequested {
                person: "alice".into(),
            },
            Event::Paused,
        ],
    );
    out.push(("paused", v.clone()));
    push(
        &mut v,
        alice.clone(),
        30,
        vec![
            Event::ResumeRequested {
                person: "alice".into(),
            },
            Event::Resumed,
            Event::ReadyToCutOver,
        ],
    );
    out.push(("ready", v.clone()));
    let mut aborted = v.clone();
    push(
        &mut aborted,
        alice.clone(),
        40,
        vec![Event::AbortRequested {
            person: "alice".into(),
            reason: "peak".into(),
        }],
    );
    push(
        &mut aborted,
        sys.clone(),
        41,
        vec![Event::Aborted {
            reason: "aborted by alice: peak".into(),
            leftovers: vec![Leftover {
                kind: "table".into(),
                name: "_orders_gho".into(),
                cleanup: Some("DROP TABLE _orders_gho;".into()),
            }],
        }],
    );
    out.push(("aborted", aborted));
    let mut failed = v.clone();
    push(
        &mut failed,
        sys.clone(),
        41,
        vec![Event::Failed {
            error: "duplicate key".into(),
            leftovers: vec![],
        }],
    );
    out.push(("failed", failed));
    push(
        &mut v,
        alice,
        50,
        vec![
            Event::CutOverRequested {
                person: "alice".into(),
            },
            Event::CuttingOver,
        ],
    );
    out.push(("cutting", v.clone()));
    push(&mut v, sys, 2520, vec![Event::Succeeded]);
    out.push(("succeeded", v));
    out
}

/// The validator script (shipped in `scripts/`; `CUTOVER_BLOCK_VALIDATOR`
/// overrides it).
pub fn validator() -> PathBuf {
    let p = std::env::var_os("CUTOVER_BLOCK_VALIDATOR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/validate_blocks.py")
        });
    assert!(
        p.exists(),
        "Block Kit validator not found at {}",
        p.display()
    );
    p
}

/// Runs the validator on one payload; `Err` lists the problems.
pub fn validate(
    script: &std::path::Path,
    payload: &serde_json::Value,
    as_view: bool,
) -> Result<(), String> {
    let f = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    std::fs::write(f.path(), payload.to_string()).map_err(|e| e.to_string())?;
    let mut c = Command::new("python3");
    c.arg(script).arg("-q");
    if as_view {
        c.args(["--as", "view"]);
    }
    let out = c.arg(f.path()).output().map_err(|e| e.to_string())?;
    match out.status.code() {
        Some(0) => Ok(()),
        Some(1) => Err(String::from_utf8_lossy(&out.stdout).into_owned()),
        _ => panic!(
            "validator unusable (is slack_sdk installed?): {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

const DRIVER: &str = r#"
import importlib.util, io, contextlib, sys
spec = importlib.util.spec_from_file_location("vb", sys.argv[1])
vb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(vb)
for arg in sys.argv[2:]:
    kind, path = arg.split(":", 1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = vb.main(["-q", "--as", kind, path])
    print("@@ %d %s" % (code, out.getvalue().replace("\n", " | ")))
"#;

/// Validates many payloads in one Python process (slack_sdk imports once).
pub fn validate_many(
    script: &std::path::Path,
    payloads: &[(serde_json::Value, bool)],
) -> Vec<Result<(), String>> {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut args = Vec::new();
    for (i, (p, view)) in payloads.iter().enumerate() {
        let f = dir.path().join(format!("{i}.json"));
        std::fs::write(&f, p.to_string()).unwrap_or_else(|e| panic!("{e}"));
        args.push(format!(
            "{}:{}",
            if *view { "view" } else { "message" },
            f.display()
        ));
    }
    let out = Command::new("python3")
        .args(["-c", DRIVER])
        .arg(script)
        .args(&args)
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("@@ ")).collect();
    assert_eq!(
        lines.len(),
        payloads.len(),
        "validator unusable (is slack_sdk installed?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    lines
        .iter()
        .map(|l| match l.strip_prefix("@@ 0 ") {
            Some(_) => Ok(()),
            None => Err(l.to_string()),
        })
        .collect()
}
