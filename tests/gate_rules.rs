//! The gate's rules without a database: a restart is a start (approvals,
//! window, promotion re-checked), and only real rehearsals count for promotion.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use cutover::audit::{Entry, staging_successes};
use cutover::exec::Capabilities;
use cutover::model::Risk;
use cutover::policy::approvals::Binding;
use cutover::policy::authz::Role;
use cutover::policy::config::{Freeze, PersonConfig, PolicyConfig};
use cutover::policy::windows::WindowDecision;
use cutover::policy::{Actor, Directory, Environment, Surface};
use cutover::run::{
    Command, CommandEnvelope, Context, Event, EventRecord, OverrideScope, Phase, RunSpec, RunState,
    decide,
};
use std::collections::BTreeSet;

fn spec(env: Environment, executor: &str) -> RunSpec {
    RunSpec {
        binding: Binding {
            plan_digest: "d".repeat(64),
            target: "db".into(),
        },
        environment: env,
        risk: Risk::High,
        versions: vec![],
        estimated_seconds: 60.0,
        tables: vec!["orders".into()],
        executor: executor.into(),
    }
}

fn policy() -> PolicyConfig {
    let p = |id: &str| PersonConfig {
        id: id.into(),
        name: None,
        role: Role::Dba,
        local: vec![id.into()],
        slack: None,
    };
    let mut policy = PolicyConfig {
        people: vec![p("dba1"), p("dba2")],
        ..PolicyConfig::default()
    };
    policy.windows.freezes = vec![Freeze {
        from: NaiveDate::from_ymd_opt(2025, 12, 20).unwrap_or_default(),
        to: NaiveDate::from_ymd_opt(2025, 12, 31).unwrap_or_default(),
        reason: "year-end freeze".into(),
    }];
    policy.windows.during_freeze.high = WindowDecision::Block;
    policy
}

struct Run {
    policy: PolicyConfig,
    state: RunState,
    now: DateTime<Utc>,
    staging: BTreeSet<String>,
}

impl Run {
    fn new(now: DateTime<Utc>) -> Run {
        let recs = EventRecord::stamp(
            "r",
            0,
            vec![Event::Created {
                spec: spec(Environment::Prod, "native"),
            }],
            &Actor::System,
            None,
            now,
        );
        Run {
            policy: policy(),
            state: RunState::replay(&recs),
            now,
            staging: ["d".repeat(64)].into_iter().collect(),
        }
    }

    fn apply(&mut self, who: &Actor, events: Vec<Event>) {
        for r in EventRecord::stamp("r", self.state.last_seq, events, who, None, self.now) {
            self.state = self.state.clone().apply(&r);
        }
    }

    fn send(&mut self, who: &str, cmd: Command) -> Result<Vec<Event>, String> {
        let dir = Directory::new(&self.policy);
        let ctx = Context {
            policy: &self.policy,
            directory: &dir,
            staging_successes: &self.staging,
            capabilities: Capabilities {
                pause: true,
                postpone_cut_over: false,
                set_chunk_size: false,
                set_max_lag: false,
                lag_throttle: false,
            },
            now: self.now,
        };
        let who = Actor::local(who);
        let d = decide(
            &self.state,
            &CommandEnvelope::new(who.clone(), Surface::Cli, cmd),
            &ctx,
        );
        let refusal = d.refusal().map(str::to_string);
        let events = d.into_events();
        self.apply(&who, events.clone());
        refusal.map_or(Ok(events), Err)
    }

    /// Requested, approved, started, then the supervisor died.
    fn interrupted(now: DateTime<Utc>) -> Run {
        let mut run = Run::new(now);
        run.send("dba1", Command::Request)
            .unwrap_or_else(|e| panic!("{e}"));
        run.send(
            "dba2",
            Command::Approve {
                plan_digest: "d".repeat(64),
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        run.send("dba1", Command::Start)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(run.state.phase, Phase::Running);
        run.apply(
            &Actor::System,
            vec![Event::Interrupted {
                reason: "the supervisor stopped".into(),
            }],
        );
        assert_eq!(run.state.phase, Phase::Interrupted);
        run
    }
}

fn utc(y: i32, mo: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

#[test]
fn continuing_an_interrupted_run_after_the_window_closed_is_refused_until_a_dba_overrides() {
    let mut run = Run::interrupted(utc(2025, 12, 18));
    run.now = utc(2025, 12, 22); // in the freeze
    let err = run.send("dba1", Command::Start).err().unwrap_or_default();
    assert!(
        err.contains("blocked by window") && err.contains("year-end freeze"),
        "{err}"
    );
    assert_eq!(run.state.phase, Phase::Interrupted);
    run.send(
        "dba2",
        Command::Override {
            scope: OverrideScope::Window,
            reason: "finish the half-applied change".into(),
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(run.send("dba1", Command::Start).is_ok());
    assert_eq!(run.state.phase, Phase::Running);
}

#[test]
fn continuing_an_interrupted_run_rechecks_promotion() {
    let mut run = Run::interrupted(utc(2025, 12, 1));
    // The staging success no longer counts (e.g. it was a simulated run).
    run.staging.clear();
    let err = run.send("dba1", Command::Start).err().unwrap_or_default();
    assert!(
        err.contains("has not succeeded on a staging target"),
        "{err}"
    );
    // A run that took longer than the approval lifetime is not voided by age.
    run.staging.insert("d".repeat(64));
    run.now = utc(2025, 12, 5);
    assert!(run.send("dba1", Command::Start).is_ok());
}

fn trail_of(runs: &[(&str, Environment, &str)]) -> Vec<Entry> {
    let mut out = Vec::new();
    for (id, env, executor) in runs {
        for r in EventRecord::stamp(
            id,
            0,
            vec![
                Event::Created {
                    spec: spec(*env, executor),
                },
                Event::Succeeded,
            ],
            &Actor::System,
            None,
            utc(2025, 1, 1),
        ) {
            out.push(Entry::Run { record: r });
        }
    }
    out
}

#[test]
fn only_real_staging_rehearsals_count_for_promotion() {
    let sim = trail_of(&[("a", Environment::Staging, "sim")]);
    assert!(staging_successes(sim.iter()).is_empty(), "sim counted");
    let dev = trail_of(&[("a", Environment::Dev, "native")]);
    assert!(staging_successes(dev.iter()).is_empty(), "dev counted");
    for executor in ["native", "gh-ost", "pt-osc"] {
        let real = trail_of(&[("a", Environment::Staging, executor)]);
        assert_eq!(
            staging_successes(real.iter()),
            ["d".repeat(64)].into_iter().collect(),
            "{executor}"
        );
    }
}

#[test]
fn the_plan_digest_covers_executor_engine_and_format() {
    use cutover::migrate::{Directives, Migration, SourceFormat, TxWrap};
    use cutover::model::Engine;
    let m = Migration {
        version: "1".into(),
        description: "a".into(),
        path: "V1__a.sql".into(),
        checksum: "c".repeat(64),
        engine: Engine::Postgres,
        format: SourceFormat::Flyway,
        repeatable: false,
        tx: TxWrap::Whole,
        directives: Directives {
            executor: Some("gh-ost".into()),
            ..Directives::default()
        },
        statements: vec![],
        text: String::new(),
    };
    let digest = |m: &Migration| cutover::risk::plan_digest(std::slice::from_ref(m), "rules");
    let base = digest(&m);
    let mut native = m.clone();
    native.directives.executor = Some("native".into());
    assert_ne!(
        digest(&native),
        base,
        "switching gh-ost to native keeps the digest"
    );
    let mut mysql = m.clone();
    mysql.engine = Engine::Mysql;
    assert_ne!(digest(&mysql), base, "the engine is not covered");
    let mut plain = m.clone();
    plain.format = SourceFormat::Plain;
    assert_ne!(digest(&plain), base, "the source format is not covered");
    assert_ne!(
        cutover::risk::plan_digest(std::slice::from_ref(&m), "other rules"),
        base
    );
    assert_eq!(digest(&m.clone()), base);
}
