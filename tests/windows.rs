//! Windows with fixed clocks: time zones, DST changes, freeze boundaries and
//! the suggested next maintenance window.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc, Weekday};
use cutover::model::Risk;
use cutover::policy::config::{Freeze, RecurringWindow, WindowsConfig};
use cutover::policy::windows::{
    ClockTime, WindowDecision, evaluate, next_maintenance, occurrences,
};
use cutover::policy::{Clock, FixedClock};

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .unwrap_or_default()
}

fn t(s: &str) -> ClockTime {
    ClockTime::try_from(s.to_string()).unwrap_or_else(|e| panic!("{e}"))
}

fn window(days: &[Weekday], start: &str, end: &str) -> RecurringWindow {
    RecurringWindow {
        name: None,
        days: days.to_vec(),
        start: t(start),
        end: t(end),
    }
}

fn weekdays() -> Vec<Weekday> {
    vec![
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
    ]
}

fn berlin() -> WindowsConfig {
    WindowsConfig {
        timezone: "Europe/Berlin".into(),
        peak: vec![window(&weekdays(), "09:00", "18:00")],
        maintenance: vec![RecurringWindow {
            name: Some("weekend".into()),
            ..window(&[Weekday::Sat], "02:00", "06:00")
        }],
        ..WindowsConfig::default()
    }
}

fn decision(cfg: &WindowsConfig, risk: Risk, at: DateTime<Utc>) -> WindowDecision {
    evaluate(cfg, risk, Duration::hours(1), at)
        .map(|v| v.decision)
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn peak_is_read_in_local_time_and_moves_with_dst() {
    let cfg = berlin();
    let clock = FixedClock::new(utc(2025, 3, 24, 7, 30)); // Mon 08:30 CET: before peak
    assert_eq!(
        decision(&cfg, Risk::High, clock.now()),
        WindowDecision::Allow
    );
    clock.set(utc(2025, 3, 31, 7, 30)); // Mon 09:30 CEST: same UTC time, now in peak
    assert_eq!(
        decision(&cfg, Risk::High, clock.now()),
        WindowDecision::Block
    );
    assert_eq!(
        decision(&cfg, Risk::Medium, clock.now()),
        WindowDecision::Warn
    );
    assert_eq!(
        decision(&cfg, Risk::Low, clock.now()),
        WindowDecision::Allow
    );
    clock.advance(Duration::hours(8) + Duration::minutes(29)); // 17:59 CEST
    assert_eq!(
        decision(&cfg, Risk::High, clock.now()),
        WindowDecision::Block
    );
    clock.advance(Duration::minutes(1)); // 18:00 CEST: end is exclusive
    assert_eq!(
        decision(&cfg, Risk::High, clock.now()),
        WindowDecision::Allow
    );
    clock.set(utc(2025, 3, 29, 10, 0)); // Saturday
    assert_eq!(
        decision(&cfg, Risk::High, clock.now()),
        WindowDecision::Allow
    );
}

#[test]
fn a_blocked_high_risk_run_is_told_the_next_window_that_fits() {
    let cfg = berlin();
    let now = utc(2025, 3, 24, 9, 0); // Mon 10:00 CET, peak
    let v = evaluate(&cfg, Risk::High, Duration::hours(3), now).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v.decision, WindowDecision::Block);
    let next = v
        .suggestion
        .clone()
        .unwrap_or_else(|| panic!("no suggestion"));
    assert_eq!(next.start, utc(2025, 3, 29, 1, 0)); // Sat 02:00 CET
    let text = v.explain(&cfg.timezone);
    assert!(text.contains("peak traffic"), "{text}");
    assert!(
        text.contains("weekend Sat 2025-03-29 02:00–06:00 Europe/Berlin"),
        "{text}"
    );
    // Five hours do not fit a four-hour window: no suggestion, and it says so.
    let v = evaluate(&cfg, Risk::High, Duration::hours(5), now).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v.suggestion, None);
    assert!(v.explain(&cfg.timezone).contains("no maintenance window"));
}

#[test]
fn spring_forward_shortens_a_window_and_the_suggestion_skips_it() {
    // America/New_York jumps 02:00 → 03:00 on Sunday 2025-03-09.
    let cfg = WindowsConfig {
        timezone: "America/New_York".into(),
        maintenance: vec![window(&[Weekday::Sun], "02:00", "05:00")],
        ..WindowsConfig::default()
    };
    let tz = cfg.tz().unwrap_or_else(|e| panic!("{e}"));
    let spans: Vec<_> = occurrences(
        tz,
        &cfg.maintenance[0],
        utc(2025, 3, 8, 0, 0),
        utc(2025, 3, 10, 0, 0),
    )
    .collect();
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].start, utc(2025, 3, 9, 7, 0)); // 03:00 EDT, the instant of the jump
    assert_eq!(spans[0].end, utc(2025, 3, 9, 9, 0)); // 05:00 EDT: two hours, not three
    let now = utc(2025, 3, 8, 12, 0);
    let fits =
        |h: i64| next_maintenance(&cfg, tz, Risk::High, Duration::minutes(h), now).map(|s| s.start);
    assert_eq!(fits(120), Some(utc(2025, 3, 9, 7, 0)));
    assert_eq!(fits(150), Some(utc(2025, 3, 16, 6, 0))); // next Sunday, 02:00 EDT
}

#[test]
fn fall_back_takes_the_widest_reading_of_an_ambiguous_time() {
    // Europe/Berlin repeats 02:00–03:00 on Sunday 2025-10-26.
    let cfg = WindowsConfig {
        timezone: "Europe/Berlin".into(),
        peak: vec![window(&[Weekday::Sun], "02:30", "02:45")],
        ..WindowsConfig::default()
    };
    let tz = cfg.tz().unwrap_or_else(|e| panic!("{e}"));
    let spans: Vec<_> = occurrences(
        tz,
        &cfg.peak[0],
        utc(2025, 10, 25, 0, 0),
        utc(2025, 10, 27, 0, 0),
    )
    .collect();
    assert_eq!(spans[0].start, utc(2025, 10, 26, 0, 30)); // first 02:30 (CEST)
    assert_eq!(spans[0].end, utc(2025, 10, 26, 1, 45)); // second 02:45 (CET)
    assert_eq!(
        decision(&cfg, Risk::High, utc(2025, 10, 26, 1, 10)),
        WindowDecision::Block
    );
    assert_eq!(
        decision(&cfg, Risk::High, utc(2025, 10, 26, 1, 45)),
        WindowDecision::Allow
    );
}

#[test]
fn freeze_boundaries_are_local_midnights_inclusive() {
    let cfg = WindowsConfig {
        timezone: "Europe/Berlin".into(),
        freezes: vec![Freeze {
            from: NaiveDate::from_ymd_opt(2025, 12, 20).unwrap_or_default(),
            to: NaiveDate::from_ymd_opt(2026, 1, 4).unwrap_or_default(),
            reason: "year-end freeze".into(),
        }],
        maintenance: vec![window(&[Weekday::Sat], "02:00", "06:00")],
        ..WindowsConfig::default()
    };
    let before = utc(2025, 12, 19, 22, 59);
    assert_eq!(decision(&cfg, Risk::High, before), WindowDecision::Allow);
    assert_eq!(
        decision(&cfg, Risk::High, utc(2025, 12, 19, 23, 0)),
        WindowDecision::Block
    );
    assert_eq!(
        decision(&cfg, Risk::High, utc(2026, 1, 4, 22, 59)),
        WindowDecision::Block
    );
    assert_eq!(
        decision(&cfg, Risk::High, utc(2026, 1, 4, 23, 0)),
        WindowDecision::Allow
    );
    assert_eq!(
        decision(&cfg, Risk::Medium, utc(2025, 12, 24, 12, 0)),
        WindowDecision::Warn
    );
    let v = evaluate(
        &cfg,
        Risk::High,
        Duration::hours(2),
        utc(2025, 12, 24, 12, 0),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(v.reasons[0].contains("year-end freeze"));
    // The first Saturday window after the freeze: 2026-01-10 02:00 CET.
    assert_eq!(v.suggestion.map(|s| s.start), Some(utc(2026, 1, 10, 1, 0)));
}

#[test]
fn overnight_windows_end_the_next_day_and_bad_zones_fail_closed() {
    let cfg = WindowsConfig {
        timezone: "Asia/Tokyo".into(),
        peak: vec![window(&[Weekday::Fri], "22:00", "02:00")],
        ..WindowsConfig::default()
    };
    // Sat 01:30 JST is still Friday's peak.
    assert_eq!(
        decision(&cfg, Risk::High, utc(2025, 5, 2, 16, 30)),
        WindowDecision::Block
    );
    assert_eq!(
        decision(&cfg, Risk::High, utc(2025, 5, 2, 17, 0)),
        WindowDecision::Allow
    );
    let bad = WindowsConfig {
        timezone: "Mars/Olympus".into(),
        ..WindowsConfig::default()
    };
    assert!(evaluate(&bad, Risk::Low, Duration::zero(), utc(2025, 1, 1, 0, 0)).is_err());
}

mod through_the_run_core {
    use super::*;
    use cutover::exec::Capabilities;
    use cutover::policy::approvals::Binding;
    use cutover::policy::authz::Role;
    use cutover::policy::config::{CloseAction, PersonConfig, PolicyConfig};
    use cutover::policy::{Actor, Directory, Environment, Surface};
    use cutover::run::{
        Command, CommandEnvelope, Context, Event, EventRecord, OverrideScope, Phase, RunSpec,
        RunState, decide,
    };
    use std::collections::BTreeSet;

    struct Run {
        policy: PolicyConfig,
        state: RunState,
        clock: FixedClock,
        staging: BTreeSet<String>,
    }

    impl Run {
        fn new(policy: PolicyConfig, at: DateTime<Utc>) -> Run {
            let spec = RunSpec {
                binding: Binding {
                    plan_digest: "d".repeat(64),
                    target: "prod-main".into(),
                },
                environment: Environment::Prod,
                risk: Risk::High,
                versions: vec![],
                estimated_seconds: 3.0 * 3600.0,
                tables: vec!["orders".into()],
                executor: "sim".into(),
            };
            let recs = EventRecord::stamp(
                "r",
                0,
                vec![Event::Created { spec }],
                &Actor::System,
                None,
                at,
            );
            Run {
                policy,
                state: RunState::replay(&recs),
                clock: FixedClock::new(at),
                staging: BTreeSet::new(),
            }
        }

        fn send(&mut self, who: Actor, cmd: Command) -> Result<Vec<Event>, String> {
            let dir = Directory::new(&self.policy);
            let ctx = Context {
                policy: &self.policy,
                directory: &dir,
                staging_successes: &self.staging,
                capabilities: Capabilities {
                    pause: true,
                    postpone_cut_over: true,
                    set_chunk_size: true,
                    set_max_lag: true,
                    lag_throttle: true,
                },
                now: self.clock.now(),
            };
            let d = decide(
                &self.state,
                &CommandEnvelope::new(who.clone(), Surface::Console, cmd),
                &ctx,
            );
            let refusal = d.refusal().map(str::to_string);
            let events = d.into_events();
            for r in EventRecord::stamp(
                "r",
                self.state.last_seq,
                events.clone(),
                &who,
                None,
                self.clock.now(),
            ) {
                self.state = self.state.clone().apply(&r);
            }
            refusal.map_or(Ok(events), Err)
        }
    }

    fn policy() -> PolicyConfig {
        let p = |id: &str, role| PersonConfig {
            id: id.into(),
            name: None,
            role,
            local: vec![id.into()],
            slack: None,
        };
        PolicyConfig {
            people: vec![
                p("dba1", Role::Dba),
                p("dba2", Role::Dba),
                p("own", Role::Owner),
            ],
            windows: berlin(),
            ..PolicyConfig::default()
        }
    }

    #[test]
    fn a_high_risk_request_in_peak_is_refused_naming_the_next_window_until_a_dba_overrides() {
        let mut run = Run::new(policy(), utc(2025, 3, 24, 9, 0));
        run.staging.insert("d".repeat(64));
        let err = run
            .send(Actor::local("dba1"), Command::Request)
            .err()
            .unwrap_or_default();
        assert!(
            err.contains("blocked by window") && err.contains("weekend Sat 2025-03-29 02:00–06:00"),
            "{err}"
        );
        assert_eq!(run.state.refusals, 1);
        let ov = |reason: &str| Command::Override {
            scope: OverrideScope::Window,
            reason: reason.into(),
        };
        assert!(
            run.send(Actor::local("own"), ov("urgent")).is_err(),
            "owners cannot override"
        );
        assert!(
            run.send(Actor::local("dba2"), ov(" ")).is_err(),
            "a reason is required"
        );
        assert!(
            run.send(Actor::local("dba2"), ov("incident 42 fix"))
                .is_ok()
        );
        assert!(run.send(Actor::local("dba1"), Command::Request).is_ok());
        assert_eq!(run.state.phase, Phase::AwaitingApproval);
    }

    #[test]
    fn prod_needs_staging_first_unless_overridden() {
        let mut run = Run::new(policy(), utc(2025, 3, 29, 1, 0));
        let err = run
            .send(Actor::local("dba1"), Command::Request)
            .err()
            .unwrap_or_default();
        assert!(
            err.contains("has not succeeded on a staging target"),
            "{err}"
        );
        let ov = Command::Override {
            scope: OverrideScope::Promotion,
            reason: "staging is down".into(),
        };
        assert!(run.send(Actor::local("dba2"), ov).is_ok());
        assert!(run.send(Actor::local("dba1"), Command::Request).is_ok());
    }

    #[test]
    fn approved_in_peak_waits_for_the_window_and_a_closing_window_pauses_by_policy() {
        let mut policy = policy();
        policy.windows.on_close = CloseAction::Pause;
        policy.promotion.require_staging_for_prod = false;
        let mut run = Run::new(policy, utc(2025, 3, 24, 6, 0)); // Mon 07:00 CET
        assert!(run.send(Actor::local("dba1"), Command::Request).is_ok());
        run.clock.set(utc(2025, 3, 24, 9, 0)); // peak
        assert!(
            run.send(
                Actor::local("dba2"),
                Command::Approve {
                    plan_digest: "d".repeat(64)
                }
            )
            .is_ok()
        );
        assert_eq!(run.state.phase, Phase::WaitingForWindow);
        assert!(run.send(Actor::local("dba2"), Command::Start).is_err());
        run.clock.set(utc(2025, 3, 24, 17, 0)); // 18:00 CET, peak over
        let ev = run.send(Actor::System, Command::Tick).unwrap_or_default();
        assert_eq!(ev, vec![Event::WindowOpened], "no auto start by default");
        assert!(run.send(Actor::local("dba2"), Command::Start).is_ok());
        run.clock.set(utc(2025, 3, 25, 8, 0)); // Tue 09:00 CET: peak again, still running
        let ev = run.send(Actor::System, Command::Tick).unwrap_or_default();
        assert!(
            matches!(
                ev.as_slice(),
                [
                    Event::WindowClosed {
                        action: CloseAction::Pause,
                        ..
                    },
                    Event::PauseRequested { .. }
                ]
            ),
            "{ev:?}"
        );
        assert_eq!(
            run.send(Actor::System, Command::Tick).unwrap_or_default(),
            vec![],
            "warned once"
        );
        assert_eq!(
            run.state.phase,
            Phase::Running,
            "paused only when the executor confirms"
        );
    }
}
