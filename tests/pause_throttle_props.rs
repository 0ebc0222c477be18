//! Pause, throttle and resume compose in every order: a property test over
//! interleavings of DBA pause/resume, replica lag going over and back under,
//! core lag polls, executor reports and ticks, against the pure run core
//! (`decide` + `decide_exec` + fold) and the native executors' own control
//! state (`Ctl`). Whatever the order, once lag is back under the limit and
//! the DBA resumed, the run is Running; and after every executor report the
//! run's phase is what the executor says.

use chrono::{DateTime, TimeZone, Utc};
use cutover::exec::native::Ctl;
use cutover::exec::{Capabilities, ExecPhase, ExecStatus, ExecUpdate};
use cutover::model::Risk;
use cutover::policy::approvals::Binding;
use cutover::policy::authz::Role;
use cutover::policy::config::PersonConfig;
use cutover::policy::{Actor, Directory, Environment, PolicyConfig, Surface};
use cutover::run::decide::{lag_control, watches_lag};
use cutover::run::{
    Command, CommandEnvelope, Context, Decision, Event, EventRecord, Phase, RunSpec, RunState,
    decide, decide_exec,
};
use proptest::prelude::*;
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy)]
enum Op {
    Pause,
    Resume,
    LagOver,
    LagBack,
    /// The core reads the replicas (throttles drivers that do not).
    Poll,
    /// The executor reports its status.
    Report,
    Tick,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Pause),
        Just(Op::Resume),
        Just(Op::LagOver),
        Just(Op::LagBack),
        Just(Op::Poll),
        Just(Op::Report),
        Just(Op::Tick),
    ]
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 4, 10, 0, 0)
        .single()
        .unwrap_or_default()
}

struct World {
    policy: PolicyConfig,
    directory: Directory,
    caps: Capabilities,
    state: RunState,
    ctl: Ctl,
    /// The core throttles the executor now.
    core_throttling: bool,
    /// The replica is over the limit.
    lag_over: bool,
}

impl World {
    fn new(executor_watches_lag: bool) -> World {
        let policy = PolicyConfig {
            people: vec![PersonConfig {
                id: "dba1".into(),
                name: None,
                role: Role::Dba,
                local: vec!["d1".into()],
                slack: None,
            }],
            ..PolicyConfig::default()
        };
        let spec = RunSpec {
            binding: Binding {
                plan_digest: "a".repeat(64),
                target: "t".into(),
            },
            environment: Environment::Dev,
            risk: Risk::Low,
            versions: vec![],
            estimated_seconds: 0.0,
            tables: vec!["t".into()],
            executor: "native".into(),
        };
        let recs = EventRecord::stamp(
            "r",
            0,
            vec![
                Event::Created { spec },
                Event::Started {
                    person: "dba1".into(),
                },
            ],
            &Actor::System,
            None,
            t0(),
        );
        World {
            directory: Directory::new(&policy),
            policy,
            caps: Capabilities {
                pause: true,
                postpone_cut_over: false,
                set_chunk_size: true,
                set_max_lag: true,
                lag_throttle: executor_watches_lag,
            },
            state: RunState::replay(&recs),
            ctl: Ctl::default(),
            core_throttling: false,
            lag_over: false,
        }
    }

    fn record(&mut self, events: Vec<Event>) {
        let recs = EventRecord::stamp("r", self.state.last_seq, events, &Actor::System, None, t0());
        for r in &recs {
            self.state = std::mem::take(&mut self.state).apply(r);
        }
    }

    /// A command from the DBA, decided, recorded, and passed on as the core does.
    fn command(&mut self, command: Command) -> Decision {
        let staging = BTreeSet::new();
        let ctx = Context {
            policy: &self.policy,
            directory: &self.directory,
            staging_successes: &staging,
            capabilities: self.caps,
            now: t0(),
        };
        let actor = if matches!(command, Command::Tick) {
            Actor::System
        } else {
            Actor::local("d1")
        };
        let env = CommandEnvelope::new(actor, Surface::Console, command);
        let d = decide(&self.state, &env, &ctx);
        for e in d.clone().into_events() {
            match e {
                Event::PauseRequested { .. } => {
                    self.ctl.apply(cutover::exec::Control::Pause);
                }
                Event::ResumeRequested { .. } => {
                    self.ctl.apply(cutover::exec::Control::Resume);
                }
                _ => {}
            }
            self.record(vec![e]);
        }
        d
    }

    fn poll(&mut self) {
        if !watches_lag(self.state.phase) || self.caps.lag_throttle {
            return;
        }
        let over: Vec<String> = if self.lag_over {
            vec!["r1 lag=3.00s".into()]
        } else {
            vec![]
        };
        if let Some(c) = lag_control(&over, self.core_throttling) {
            self.core_throttling = !over.is_empty();
            self.ctl.apply(c);
        }
    }

    /// What the executor reports between chunks.
    fn report(&mut self) -> ExecPhase {
        let own = (self.caps.lag_throttle && self.lag_over).then(|| "r1 lag=3.0s".to_string());
        let phase = self.ctl.holding(own).unwrap_or(ExecPhase::Copying);
        let st = ExecStatus {
            phase: phase.clone(),
            progress: None,
            at: t0(),
        };
        let events = decide_exec(&self.state, &ExecUpdate::Status(st));
        self.record(events);
        phase
    }

    fn step(&mut self, op: Op) -> Result<(), TestCaseError> {
        match op {
            Op::Pause => {
                self.command(Command::Pause);
            }
            Op::Resume => {
                let d = self.command(Command::Resume);
                if let Some(r) = d.refusal() {
                    // Refused only when there is nothing to resume yet.
                    prop_assert!(
                        self.state.phase != Phase::Paused || self.state.resume_pending,
                        "resume refused while paused: {r}"
                    );
                }
            }
            Op::LagOver => self.lag_over = true,
            Op::LagBack => self.lag_over = false,
            Op::Poll => self.poll(),
            Op::Report => {
                let reported = self.report();
                let want = reported.run_phase();
                prop_assert_eq!(
                    Some(self.state.phase),
                    want,
                    "the run disagrees with the executor's {:?}",
                    reported
                );
            }
            Op::Tick => {
                self.command(Command::Tick);
            }
        }
        prop_assert!(
            !self.state.phase.is_terminal(),
            "{:?} ended the run",
            self.state.phase
        );
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn pause_throttle_and_resume_compose_in_every_order(
        ops in prop::collection::vec(op(), 0..40),
        executor_watches_lag in any::<bool>(),
    ) {
        let mut w = World::new(executor_watches_lag);
        for o in ops {
            w.step(o)?;
        }
        // Lag is back, the core and the executor see it, the DBA resumes.
        w.step(Op::LagBack)?;
        for _ in 0..3 {
            w.step(Op::Poll)?;
            w.step(Op::Report)?;
            if w.state.phase == Phase::Paused {
                w.step(Op::Resume)?;
            }
        }
        w.step(Op::Report)?;
        prop_assert_eq!(w.state.phase, Phase::Running);
        prop_assert!(!w.state.resume_pending, "a resume left pending");
    }
}

/// The reported defect, step by step: throttled on lag, paused, resumed
/// while still throttled, lag back: Running, and nothing refused.
#[test]
fn pause_while_throttled_then_resume_ends_running() {
    let mut w = World::new(false);
    let run = |w: &mut World, ops: &[Op]| {
        for o in ops {
            w.step(*o).unwrap_or_else(|e| panic!("{e}"));
        }
    };
    run(&mut w, &[Op::LagOver, Op::Poll, Op::Report]);
    assert_eq!(w.state.phase, Phase::Throttled);
    run(&mut w, &[Op::Pause, Op::Report]);
    assert_eq!(w.state.phase, Phase::Paused);
    // Still lagging when the DBA resumes: resumed, and throttled.
    run(&mut w, &[Op::Resume, Op::Report]);
    assert_eq!(w.state.phase, Phase::Throttled);
    assert!(!w.state.resume_pending);
    run(&mut w, &[Op::LagBack, Op::Poll, Op::Report]);
    assert_eq!(w.state.phase, Phase::Running);
    // Paused while throttled, lag back while paused: the throttle is lifted
    // while paused, and the resume finds the run free.
    run(
        &mut w,
        &[Op::LagOver, Op::Poll, Op::Report, Op::Pause, Op::Report],
    );
    assert_eq!(w.state.phase, Phase::Paused);
    run(&mut w, &[Op::LagBack, Op::Poll]);
    assert!(w.ctl.throttled.is_none(), "lag is polled while paused");
    run(&mut w, &[Op::Resume, Op::Report]);
    assert_eq!(w.state.phase, Phase::Running);
}
