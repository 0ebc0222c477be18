//! Property tests over random command sequences against the pure run core
//! (`decide` + fold), checked against an independent reading of the trail.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cutover::exec::{Capabilities, ExecPhase, ExecStatus, ExecUpdate, Outcome, OutcomeKind};
use cutover::model::Risk;
use cutover::policy::approvals::{Binding, VersionChecksum};
use cutover::policy::authz::{self, Role};
use cutover::policy::config::PersonConfig;
use cutover::policy::{Actor, Directory, Environment, PolicyConfig, Surface};
use cutover::run::decide::permission_for;
use cutover::run::{
    Command, CommandEnvelope, Context, Decision, Event, EventRecord, OverrideScope, Phase, RunSpec,
    RunState, decide, decide_exec,
};
use proptest::prelude::*;
use std::collections::{BTreeSet, HashSet};

const DIGESTS: [&str; 3] = [
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
];

fn person(id: &str, role: Role, local: &str, slack: &str) -> PersonConfig {
    PersonConfig {
        id: id.into(),
        name: None,
        role,
        local: vec![local.into()],
        slack: Some(slack.into()),
    }
}

fn policy() -> PolicyConfig {
    PolicyConfig {
        people: vec![
            person("dba1", Role::Dba, "d1", "U1"),
            person("dba2", Role::Dba, "d2", "U2"),
            person("owner1", Role::Owner, "o1", "U3"),
            person("owner2", Role::Owner, "o2", "U4"),
            person("obs", Role::Observer, "x1", "U5"),
        ],
        ..PolicyConfig::default()
    }
}

/// Actor pool: every person on both surfaces, plus a stranger.
fn actor(i: usize) -> (Actor, Surface) {
    const LOCAL: [&str; 6] = ["d1", "d2", "o1", "o2", "x1", "stranger"];
    const SLACK: [&str; 6] = ["U1", "U2", "U3", "U4", "U5", "U9"];
    if i.is_multiple_of(2) {
        (Actor::local(LOCAL[(i / 2) % 6]), Surface::Console)
    } else {
        (Actor::slack("T1", SLACK[(i / 2) % 6]), Surface::Slack)
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 4, 10, 0, 0)
        .single()
        .unwrap_or_default()
}

fn spec(risk: Risk, env: Environment) -> RunSpec {
    RunSpec {
        binding: Binding {
            plan_digest: DIGESTS[0].into(),
            target: "prod-main".into(),
        },
        environment: env,
        risk,
        versions: vec![VersionChecksum {
            version: "1".into(),
            checksum: "c1".into(),
        }],
        estimated_seconds: 60.0,
        tables: vec!["public.orders".into()],
        executor: "sim".into(),
    }
}

#[derive(Debug, Clone)]
enum Step {
    Cmd {
        actor: usize,
        cmd: Command,
        dedup: Option<u8>,
    },
    Exec(ExecUpdate),
    Advance(i64),
    Resend,
}

fn status(phase: ExecPhase) -> ExecUpdate {
    ExecUpdate::Status(ExecStatus {
        phase,
        progress: None,
        at: t0(),
    })
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        4 => Just(Command::Request),
        8 => (0usize..3).prop_map(|i| Command::Approve { plan_digest: DIGESTS[i].into() }),
        1 => Just(Command::Reject { reason: "no".into() }),
        1 => Just(Command::Reject { reason: "  ".into() }),
        1 => Just(Command::Override { scope: OverrideScope::Promotion, reason: "hotfix".into() }),
        5 => Just(Command::Start),
        2 => Just(Command::Pause),
        2 => Just(Command::Resume),
        1 => prop_oneof![Just(None), Just(Some("orders".to_string())), Just(Some("users".to_string()))]
            .prop_map(|table| Command::Abort { reason: "stop".into(), table }),
        2 => prop_oneof![Just(None), Just(Some("public.orders".to_string())), Just(Some("x".to_string()))]
            .prop_map(|table| Command::CutOver { table }),
        1 => (0u32..200_000).prop_map(|rows| Command::SetChunkSize { rows }),
        1 => (0u64..5_000_000).prop_map(|millis| Command::SetMaxLag { millis }),
        2 => (1usize..3).prop_map(|i| Command::RevisePlan {
            binding: Binding { plan_digest: DIGESTS[i].into(), target: "prod-main".into() },
            versions: vec![VersionChecksum { version: "1".into(), checksum: format!("c{i}") }],
            reason: "checksum changed".into(),
        }),
        1 => Just(Command::Tick),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        10 => (0usize..12, command(), proptest::option::of(0u8..6))
            .prop_map(|(actor, cmd, dedup)| Step::Cmd { actor, cmd, dedup }),
        3 => prop_oneof![
            Just(status(ExecPhase::Paused)),
            Just(status(ExecPhase::Copying)),
            Just(status(ExecPhase::Throttled { reason: "lag=2s".into() })),
            Just(status(ExecPhase::PostponingCutOver)),
            Just(status(ExecPhase::CuttingOver)),
            Just(ExecUpdate::Finished(Outcome { kind: OutcomeKind::Succeeded, leftovers: vec![] })),
        ].prop_map(Step::Exec),
        1 => (1i64..30).prop_map(Step::Advance),
        1 => Just(Step::Resend),
    ]
}

struct Sim {
    policy: PolicyConfig,
    directory: Directory,
    staging: BTreeSet<String>,
    state: RunState,
    trail: Vec<EventRecord>,
    now: DateTime<Utc>,
    last: Option<CommandEnvelope>,
}

impl Sim {
    fn new(risk: Risk, env: Environment, staging: bool) -> Sim {
        let policy = policy();
        let directory = Directory::new(&policy);
        let mut s = Sim {
            policy,
            directory,
            staging: if staging {
                DIGESTS.iter().map(|d| d.to_string()).collect()
            } else {
                BTreeSet::new()
            },
            state: RunState::default(),
            trail: Vec::new(),
            now: t0(),
            last: None,
        };
        s.record(
            vec![Event::Created {
                spec: spec(risk, env),
            }],
            &Actor::System,
            None,
        );
        s
    }

    fn record(&mut self, events: Vec<Event>, actor: &Actor, dedup: Option<&str>) -> usize {
        let recs = EventRecord::stamp("r1", self.state.last_seq, events, actor, dedup, self.now);
        let n = recs.len();
        for r in recs {
            self.state = self.state.clone().apply(&r);
            self.trail.push(r);
        }
        n
    }

    fn ctx(&self) -> Context<'_> {
        Context {
            policy: &self.policy,
            directory: &self.directory,
            staging_successes: &self.staging,
            capabilities: Capabilities {
                pause: true,
                postpone_cut_over: true,
                set_chunk_size: true,
                set_max_lag: true,
                lag_throttle: true,
            },
            now: self.now,
        }
    }

    fn send(&mut self, env: CommandEnvelope) -> Result<(), TestCaseError> {
        let before = self.state.clone();
        let d = decide(&self.state, &env, &self.ctx());
        let who = self.directory.resolve(&env.actor);
        let spec = before
            .spec
            .clone()
            .unwrap_or_else(|| spec(Risk::Low, Environment::Dev));
        let perm = permission_for(&env.command, spec.risk);
        let allowed =
            env.actor == Actor::System || authz::allowed(&self.policy.permissions, who.role, perm);
        if env.dedup.as_ref().is_some_and(|k| before.seen.contains(k)) {
            prop_assert_eq!(&d, &Decision::Duplicate);
            return Ok(());
        }
        if !allowed && !matches!(env.command, Command::Tick) {
            prop_assert!(
                d.refusal().is_some(),
                "unauthorized {:?} by {:?} accepted",
                env.command,
                who
            );
        }
        if !phase_allows(&env.command, before.phase) {
            prop_assert!(
                d.refusal().is_some() || d == Decision::Accepted(vec![]),
                "{:?} accepted in phase {}",
                env.command,
                before.phase
            );
        }
        let refused = d.refusal().is_some();
        let events = d.into_events();
        let n = self.record(events, &env.actor, env.dedup.as_deref());
        if refused {
            prop_assert_eq!(n, 1);
            let last_is_refusal = matches!(
                self.trail.last().map(|r| &r.event),
                Some(Event::Refused { .. })
            );
            prop_assert!(last_is_refusal, "refusal not recorded");
        } else if !matches!(env.command, Command::Tick) {
            prop_assert!(n >= 1, "accepted {:?} left no record", env.command);
        }
        self.last = Some(env);
        Ok(())
    }
}

/// Phases in which a command can possibly be accepted (a necessary condition).
fn phase_allows(cmd: &Command, p: Phase) -> bool {
    use Phase::*;
    match cmd {
        Command::Request => p == Planned,
        Command::Approve { .. } => p == AwaitingApproval,
        Command::Reject { .. } => matches!(p, AwaitingApproval | Approved | WaitingForWindow),
        Command::Start => matches!(p, Approved | Interrupted),
        Command::Pause => matches!(p, Running | Throttled),
        Command::Resume => p == Paused,
        Command::CutOver { .. } => p == ReadyToCutOver,
        Command::RevisePlan { .. } => p.is_pre_start(),
        _ => !p.is_terminal(),
    }
}

/// Independent check: at every `started`, the approvals recorded since the
/// last void, for the binding in force, by people other than the requester,
/// with a counting role and not expired, meet the default rule.
fn check_trail(trail: &[EventRecord], policy: &PolicyConfig) -> Result<(), TestCaseError> {
    let mut binding: Option<Binding> = None;
    let mut env_risk = None;
    let mut requester: Option<String> = None;
    let mut approvals = Vec::new();
    for r in trail {
        match &r.event {
            Event::Created { spec } => {
                binding = Some(spec.binding.clone());
                env_risk = Some((spec.environment, spec.risk));
            }
            Event::Requested { person, .. } => requester = Some(person.clone()),
            Event::PlanRevised { binding: b, .. } => binding = Some(b.clone()),
            Event::ApprovalsVoided { .. } => approvals.clear(),
            Event::Approved { approval } => {
                prop_assert!(
                    Some(&approval.approver) != requester.as_ref(),
                    "self-approval recorded"
                );
                prop_assert_eq!(
                    Some(&approval.binding),
                    binding.as_ref(),
                    "approval for a stale binding"
                );
                approvals.push(approval.clone());
            }
            Event::Started { .. } => {
                let (env, risk) = env_risk.unwrap_or((Environment::Dev, Risk::Low));
                if let Some(rule) = policy.approval_rule(env, risk) {
                    let people: HashSet<&str> = approvals
                        .iter()
                        .filter(|a| Some(&a.binding) == binding.as_ref())
                        .filter(|a| Some(&a.approver) != requester.as_ref())
                        .filter(|a| rule.roles.contains(&a.role))
                        .filter(|a| r.at < a.at + Duration::hours(24))
                        .map(|a| a.approver.as_str())
                        .collect();
                    prop_assert!(
                        people.len() >= rule.count as usize,
                        "started with {} of {} approvals",
                        people.len(),
                        rule.count
                    );
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn run_steps(sim: &mut Sim, steps: Vec<Step>) -> Result<(), TestCaseError> {
    for s in steps {
        match s {
            Step::Cmd {
                actor: a,
                cmd,
                dedup,
            } => {
                let (actor, surface) = actor(a);
                let mut env = CommandEnvelope::new(actor, surface, cmd.clone());
                env.dedup = dedup.map(|d| format!("env-{d}"));
                if matches!(cmd, Command::Tick | Command::RevisePlan { .. }) && a.is_multiple_of(3)
                {
                    env.actor = Actor::System;
                    env.surface = Surface::System;
                }
                sim.send(env)?;
            }
            Step::Exec(u) => {
                let ev = decide_exec(&sim.state, &u);
                sim.record(ev, &Actor::System, None);
            }
            Step::Advance(h) => sim.now += Duration::hours(h),
            Step::Resend => {
                if let Some(mut env) = sim.last.clone() {
                    if env.dedup.is_none() {
                        env.dedup = Some("resent".into());
                    }
                    let first = decide(&sim.state, &env, &sim.ctx());
                    if env
                        .dedup
                        .as_ref()
                        .is_some_and(|k| sim.state.seen.contains(k))
                    {
                        prop_assert_eq!(first, Decision::Duplicate);
                    }
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_command_sequences_keep_the_invariants(
        risk in prop_oneof![Just(Risk::Low), Just(Risk::Medium), Just(Risk::High)],
        env in prop_oneof![Just(Environment::Staging), Just(Environment::Prod)],
        staging in any::<bool>(),
        steps in proptest::collection::vec(step(), 1..60),
    ) {
        let mut sim = Sim::new(risk, env, staging);
        run_steps(&mut sim, steps)?;
        check_trail(&sim.trail, &sim.policy)?;
        // Folding the trail as serialised reproduces the state.
        let text: Vec<String> = sim.trail.iter().map(|r| serde_json::to_string(r).unwrap_or_default()).collect();
        let back: Vec<EventRecord> = text.iter().filter_map(|l| serde_json::from_str(l).ok()).collect();
        prop_assert_eq!(back.len(), sim.trail.len());
        prop_assert_eq!(RunState::replay(&back), sim.state.clone());
        // Sequence numbers have no gaps.
        for (i, r) in sim.trail.iter().enumerate() {
            prop_assert_eq!(r.seq, i as u64 + 1);
        }
    }
}

/// A directed walk: the happy path and the named refusals, so the property
/// test is known to reach `started`.
#[test]
fn prod_high_needs_one_other_dba_across_surfaces() {
    let mut sim = Sim::new(Risk::High, Environment::Prod, true);
    let send = |sim: &mut Sim, a: Actor, s: Surface, c: Command| {
        let d = decide(
            &sim.state,
            &CommandEnvelope::new(a.clone(), s, c),
            &sim.ctx(),
        );
        let r = d.refusal().map(str::to_string);
        sim.record(d.into_events(), &a, None);
        r
    };
    let dba1_local = Actor::local("d1");
    let dba1_slack = Actor::slack("T1", "U1");
    assert_eq!(
        send(
            &mut sim,
            dba1_local.clone(),
            Surface::Console,
            Command::Request
        ),
        None
    );
    let digest = DIGESTS[0].to_string();
    let r = send(
        &mut sim,
        dba1_slack,
        Surface::Slack,
        Command::Approve {
            plan_digest: digest.clone(),
        },
    );
    assert!(r.unwrap_or_default().contains("self-approval"));
    let r = send(
        &mut sim,
        Actor::slack("T1", "U3"),
        Surface::Slack,
        Command::Approve {
            plan_digest: digest.clone(),
        },
    );
    assert!(
        r.unwrap_or_default().contains("not allowed"),
        "owner cannot approve high"
    );
    let r = send(
        &mut sim,
        Actor::slack("T1", "U2"),
        Surface::Slack,
        Command::Approve {
            plan_digest: DIGESTS[1].into(),
        },
    );
    assert!(r.unwrap_or_default().contains("stale"));
    assert_eq!(
        send(
            &mut sim,
            Actor::slack("T1", "U2"),
            Surface::Slack,
            Command::Approve {
                plan_digest: digest.clone()
            }
        ),
        None
    );
    assert_eq!(sim.state.phase, Phase::Approved);
    // A changed checksum voids the approval.
    let revise = Command::RevisePlan {
        binding: Binding {
            plan_digest: DIGESTS[1].into(),
            target: "prod-main".into(),
        },
        versions: vec![],
        reason: "V1 checksum changed on disk".into(),
    };
    assert_eq!(send(&mut sim, Actor::System, Surface::System, revise), None);
    assert_eq!(sim.state.phase, Phase::AwaitingApproval);
    assert!(
        sim.state
            .voided
            .clone()
            .unwrap_or_default()
            .contains("plan digest changed")
    );
    let r = send(
        &mut sim,
        Actor::local("d2"),
        Surface::Console,
        Command::Start,
    );
    assert!(r.is_some());
    assert_eq!(
        send(
            &mut sim,
            Actor::local("d2"),
            Surface::Console,
            Command::Approve {
                plan_digest: DIGESTS[1].into()
            }
        ),
        None
    );
    let r = send(
        &mut sim,
        Actor::local("o1"),
        Surface::Console,
        Command::Start,
    );
    assert!(r.unwrap_or_default().contains("not allowed"));
    assert_eq!(
        send(
            &mut sim,
            Actor::local("d2"),
            Surface::Console,
            Command::Start
        ),
        None
    );
    assert_eq!(sim.state.phase, Phase::Running);
    let r = send(
        &mut sim,
        Actor::local("d2"),
        Surface::Console,
        Command::Abort {
            reason: "x".into(),
            table: None,
        },
    );
    assert!(r.unwrap_or_default().contains("type the table name"));
    assert_eq!(
        send(
            &mut sim,
            Actor::local("d2"),
            Surface::Console,
            Command::Abort {
                reason: "x".into(),
                table: Some("orders".into())
            }
        ),
        None
    );
    assert!(sim.state.abort_pending);
    check_trail(&sim.trail, &sim.policy).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn approvals_expire_after_24_hours_without_a_start() {
    let mut sim = Sim::new(Risk::Medium, Environment::Prod, true);
    for (a, c) in [
        (Actor::local("d1"), Command::Request),
        (
            Actor::local("o2"),
            Command::Approve {
                plan_digest: DIGESTS[0].into(),
            },
        ),
    ] {
        let d = decide(
            &sim.state,
            &CommandEnvelope::new(a.clone(), Surface::Console, c),
            &sim.ctx(),
        );
        assert_eq!(d.refusal(), None);
        sim.record(d.into_events(), &a, None);
    }
    assert_eq!(sim.state.phase, Phase::Approved);
    sim.now += Duration::hours(25);
    let d = decide(
        &sim.state,
        &CommandEnvelope::new(Actor::System, Surface::System, Command::Tick),
        &sim.ctx(),
    );
    sim.record(d.into_events(), &Actor::System, None);
    assert_eq!(sim.state.phase, Phase::Expired);
}

/// The generator must reach the interesting states, or the property above proves little.
#[test]
fn the_generator_reaches_started_and_voided_approvals() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut started, mut voided, mut self_refused) = (0, 0, 0);
    for _ in 0..300 {
        let steps = proptest::collection::vec(step(), 40..60)
            .new_tree(&mut runner)
            .map(|t| t.current())
            .unwrap_or_default();
        let mut sim = Sim::new(Risk::High, Environment::Prod, true);
        let _ = run_steps(&mut sim, steps);
        for r in &sim.trail {
            match &r.event {
                Event::Started { .. } => started += 1,
                Event::ApprovalsVoided { .. } => voided += 1,
                Event::Refused { reason, .. } if reason.contains("self-approval") => {
                    self_refused += 1
                }
                _ => {}
            }
        }
    }
    assert!(started > 5, "started {started}");
    assert!(voided > 5, "voided {voided}");
    assert!(self_refused > 5, "self-approval refusals {self_refused}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// Folding the trail as read back from the audit file reproduces the state.
    #[test]
    fn the_trail_read_back_from_disk_folds_to_the_same_state(
        risk in prop_oneof![Just(Risk::Medium), Just(Risk::High)],
        steps in proptest::collection::vec(step(), 1..60),
    ) {
        use cutover::audit::{AuditKey, Entry, Trail, read_file};
        let mut sim = Sim::new(risk, Environment::Prod, true);
        run_steps(&mut sim, steps)?;
        let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let path = dir.path().join("audit.jsonl");
        let key = AuditKey::new(b"0123456789abcdef0123".to_vec()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let (mut trail, _) = Trail::open(&path, key.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for r in &sim.trail {
            trail.append(&Entry::Run { record: r.clone() }).map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        let (entries, report) = read_file(&path, &key).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(report.ok());
        let records: Vec<EventRecord> = entries
            .into_iter()
            .filter_map(|e| match e.entry { Entry::Run { record } => Some(record), _ => None })
            .collect();
        prop_assert_eq!(RunState::replay(&records), sim.state.clone());
    }
}
