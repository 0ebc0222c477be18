//! The console's screen is a pure function of state: one snapshot per run
//! state, at 120×40 and 80×24, rendered with ratatui's `TestBackend`.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cutover::audit::Anchor;
use cutover::cli::PlanOpts;
use cutover::exec::{ExecPhase, ExecStatus, Leftover, Progress};
use cutover::lag::{LagSample, LagSource};
use cutover::model::Plan;
use cutover::policy::approvals::ApprovalRecord;
use cutover::policy::authz::Role;
use cutover::policy::{Actor, Environment, Surface};
use cutover::run::backlog::Backlog;
use cutover::run::{EVENT_SCHEMA, Event, EventRecord, RunSpec, Sample};
use cutover::supervisor::ServerMsg;
use cutover::tui::keys::{Button, Dialog, DialogKind};
use cutover::tui::{Console, HeaderInfo, KeyMap, Theme, Ui, view};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::path::PathBuf;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 2, 0, 0)
        .single()
        .unwrap_or_default()
}

fn plan() -> Plan {
    let (dir, mig) = cutover::cmd::plan::demo_dir().unwrap_or_else(|e| panic!("{e}"));
    let opts = PlanOpts {
        paths: vec![mig],
        engine: Some("postgres".into()),
        engine_version: None,
        source_format: None,
        target: None,
        stats: Some(dir.path().join("stats.toml")),
        rules: None,
        config: Some(PathBuf::from("/dev/null")),
    };
    let mut plan = cutover::cmd::plan::build(&opts)
        .unwrap_or_else(|e| panic!("{e}"))
        .0;
    // The digest covers the rule set; pin it so a rules.toml edit does not churn
    // every screen snapshot (the digest's own behaviour is tested elsewhere).
    plan.plan_digest = "d9382d30340b".repeat(5) + "d938";
    plan
}

struct Story {
    c: Console,
    seq: u64,
    /// What a supervisor would keep for a console attaching later.
    backlog: Backlog,
}

impl Story {
    fn new() -> Story {
        let plan = plan();
        let spec = RunSpec::from_plan(&plan, "prod-main", Environment::Prod, "sim");
        let mut s = Story {
            c: Console::new(
                HeaderInfo {
                    version: "0.1.0".into(),
                    slack: "off — posts shown in the log".into(),
                    slack_connected: false,
                    approval_rule: "1 from dba".into(),
                },
                Some(plan),
            ),
            seq: 0,
            backlog: Backlog::default(),
        };
        s.c.state.run = "r-20260310-0200".into();
        s.ev(0, Actor::System, Event::Created { spec });
        s
    }

    fn ev(&mut self, secs: i64, actor: Actor, event: Event) {
        self.seq += 1;
        let record = EventRecord {
            schema: EVENT_SCHEMA,
            run: "r-20260310-0200".into(),
            seq: self.seq,
            at: t0() + Duration::seconds(secs),
            actor,
            dedup: None,
            event,
        };
        self.backlog.event(&record);
        self.c.apply(&ServerMsg::Event {
            record: Box::new(record),
            anchor: Anchor {
                records: 40 + self.seq,
                tag: "9f2c4e71ab03d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0".into(),
            },
        });
    }

    fn me() -> Actor {
        Actor::local("dana")
    }

    fn requested(mut self) -> Story {
        self.ev(
            5,
            Story::me(),
            Event::Requested {
                person: "dana".into(),
                name: "Dana (owner)".into(),
                surface: Surface::Console,
            },
        );
        self
    }

    fn approved(mut self, wait_for_window: bool) -> Story {
        let binding = self
            .c
            .state
            .spec
            .as_ref()
            .map(|s| s.binding.clone())
            .unwrap_or_else(|| panic!("no spec"));
        let approval = ApprovalRecord {
            approver: "alice".into(),
            name: "Alice".into(),
            role: Role::Dba,
            actor: Actor::slack("T1", "U42"),
            surface: Surface::Slack,
            at: t0() + Duration::seconds(9),
            binding,
            versions: vec![],
            origin: Some("1741572009.000200".into()),
        };
        self.ev(9, Actor::slack("T1", "U42"), Event::Approved { approval });
        self.ev(
            9,
            Actor::slack("T1", "U42"),
            Event::ApprovalSatisfied {
                approvers: vec!["alice".into()],
            },
        );
        if wait_for_window {
            self.ev(
                9,
                Actor::System,
                Event::WaitingForWindow {
                    reason: "peak traffic Tue 08:00–20:00 Europe/Berlin blocks high risk; next window Tue 22:00–02:00".into(),
                },
            );
        }
        self
    }

    fn running(mut self, until: i64) -> Story {
        self.ev(
            12,
            Story::me(),
            Event::Started {
                person: "dana".into(),
            },
        );
        for i in 0..=until - 12 {
            let at = t0() + Duration::seconds(12 + i);
            for (n, (name, peak, period)) in [
                ("replica-1", 0.6, 40),
                ("replica-2", 1.1, 30),
                ("replica-3", 2.4, 50),
            ]
            .into_iter()
            .enumerate()
            {
                let pos = (i + n as i64 * 7) % period;
                let half = period as f64 / 2.0;
                let frac = if (pos as f64) <= half {
                    pos as f64 / half
                } else {
                    (period - pos) as f64 / half
                };
                let seconds = if n == 1 && i == until - 12 - 20 {
                    None
                } else {
                    Some(peak * frac)
                };
                let sample = Sample::Lag {
                    sample: LagSample {
                        replica: name.into(),
                        seconds,
                        bytes: None,
                        source: LagSource::Simulated,
                        at,
                        why: None,
                    },
                };
                self.backlog.sample(&sample);
                self.c.apply(&ServerMsg::Sample {
                    sample: Box::new(sample),
                });
            }
            self.progress(12 + i, (i as u64) * 160_000, ExecPhase::Copying);
        }
        self
    }

    fn progress(&mut self, secs: i64, rows: u64, phase: ExecPhase) {
        let total = 48_000_000u64;
        let rows = rows.min(total);
        let sample = Sample::Progress {
            status: ExecStatus {
                phase,
                progress: Some(Progress {
                    rows_copied: rows,
                    rows_total: Some(total),
                    percent: Some(rows as f64 * 100.0 / total as f64),
                    eta_seconds: None,
                    chunk_size: Some(2000),
                    max_lag_millis: Some(1500),
                    detail: None,
                }),
                at: t0() + Duration::seconds(secs),
            },
        };
        self.backlog.sample(&sample);
        self.c.apply(&ServerMsg::Sample {
            sample: Box::new(sample),
        });
    }

    fn throttled(mut self) -> Story {
        let reason = "replica-3 lag=2.1s".to_string();
        self.ev(
            200,
            Actor::System,
            Event::Throttled {
                reason: reason.clone(),
            },
        );
        self.progress(201, 188 * 160_000, ExecPhase::Throttled { reason });
        self
    }

    fn ready(mut self) -> Story {
        self.progress(320, 48_000_000, ExecPhase::PostponingCutOver);
        self.ev(320, Actor::System, Event::ReadyToCutOver);
        self
    }
}

fn render(c: &Console, ui: &Ui, w: u16, h: u16) -> String {
    let backend = TestBackend::new(w, h);
    let mut term = Terminal::new(backend).unwrap_or_else(|e| panic!("{e}"));
    let theme = Theme::embedded("dark").unwrap_or_else(|e| panic!("{e}"));
    let keys = KeyMap::default();
    term.draw(|f| view::draw(f, c, ui, &theme, &keys))
        .unwrap_or_else(|e| panic!("{e}"));
    term.backend().to_string()
}

fn snap(name: &str, c: &Console, ui: &Ui) {
    for (w, h) in [(120, 40), (80, 24)] {
        let text = render(c, ui, w, h);
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), text);
    }
}

#[test]
fn preflight() {
    let s = Story::new();
    snap("preflight", &s.c, &Ui::default());
}

#[test]
fn awaiting_approval() {
    let s = Story::new().requested();
    let text = render(&s.c, &Ui::default(), 120, 40);
    assert!(text.contains("AWAITING APPROVAL"), "{text}");
    assert!(text.contains("slack (off) would post"), "{text}");
    snap("awaiting_approval", &s.c, &Ui::default());
}

#[test]
fn blocked_by_window() {
    let s = Story::new().requested().approved(true);
    let text = render(&s.c, &Ui::default(), 120, 40);
    assert!(text.contains("BLOCKED"), "{text}");
    snap("blocked_by_window", &s.c, &Ui::default());
}

#[test]
fn running() {
    let s = Story::new().requested().approved(false).running(190);
    let text = render(&s.c, &Ui::default(), 120, 40);
    assert!(text.contains("replica-3"), "{text}");
    assert!(text.contains("rows/s"), "{text}");
    snap("running", &s.c, &Ui::default());
}

#[test]
fn throttled() {
    let s = Story::new()
        .requested()
        .approved(false)
        .running(190)
        .throttled();
    let text = render(&s.c, &Ui::default(), 120, 40);
    assert!(text.contains("⏸ replica-3 lag=2.1s"), "{text}");
    snap("throttled", &s.c, &Ui::default());
}

#[test]
fn postponed_cut_over() {
    let s = Story::new()
        .requested()
        .approved(false)
        .running(190)
        .ready();
    snap("postponed_cut_over", &s.c, &Ui::default());
    // The cut-over dialog on a high-risk run wants the table name, default Cancel.
    let ui = Ui {
        dialog: Some(Dialog {
            kind: DialogKind::CutOver,
            input: "ord".into(),
            needs_input: true,
            button: Button::Cancel,
            error: None,
        }),
        ..Ui::default()
    };
    let text = render(&s.c, &ui, 120, 40);
    assert!(text.contains("type the table name"), "{text}");
    insta::assert_snapshot!("cut_over_dialog_120x40", text);
}

#[test]
fn aborted() {
    let mut s = Story::new().requested().approved(false).running(190);
    s.ev(
        195,
        Story::me(),
        Event::AbortRequested {
            person: "dana".into(),
            reason: "aborted from the console".into(),
        },
    );
    s.ev(
        196,
        Actor::System,
        Event::Aborted {
            reason: "aborted by dana: aborted from the console".into(),
            leftovers: vec![Leftover {
                kind: "table".into(),
                name: "_orders_gho".into(),
                cleanup: Some("DROP TABLE IF EXISTS _orders_gho;".into()),
            }],
        },
    );
    let text = render(&s.c, &Ui::default(), 120, 40);
    assert!(text.contains("DROP TABLE IF EXISTS _orders_gho"), "{text}");
    snap("aborted", &s.c, &Ui::default());
}

#[test]
fn succeeded() {
    let mut s = Story::new()
        .requested()
        .approved(false)
        .running(190)
        .ready();
    s.ev(
        330,
        Story::me(),
        Event::CutOverRequested {
            person: "dana".into(),
        },
    );
    s.ev(331, Actor::System, Event::CuttingOver);
    s.ev(333, Actor::System, Event::Succeeded);
    let text = render(&s.c, &Ui::default(), 120, 40);
    assert!(text.contains("SUCCEEDED"), "{text}");
    assert!(text.contains("audit head"), "{text}");
    snap("succeeded", &s.c, &Ui::default());
}

#[test]
fn frozen_read_only_help_and_too_small() {
    let s = Story::new().requested().approved(false).running(60);
    let ui = Ui {
        frozen: true,
        read_only: true,
        ..Ui::default()
    };
    let text = render(&s.c, &ui, 120, 40);
    assert!(text.contains("DISPLAY FROZEN"), "{text}");
    assert!(text.contains("READ-ONLY"), "{text}");
    assert!(
        !text.contains("abort"),
        "controls are not offered read-only: {text}"
    );
    let help = Ui {
        help: true,
        ..Ui::default()
    };
    insta::assert_snapshot!("help_120x40", render(&s.c, &help, 120, 40));
    let small = render(&s.c, &Ui::default(), 60, 20);
    assert!(small.contains("need at least 80×24"), "{small}");
}

/// A console that attaches late (re-attach, a run started headless, a
/// restarted supervisor) folds the supervisor's history into the same
/// screen as one that watched from the start: the event log, the lag chart
/// and the progress pane.
#[test]
fn a_console_attaching_late_shows_what_one_watching_saw() {
    let live = Story::new()
        .requested()
        .approved(false)
        .running(199)
        .throttled();
    let mut late = Console::new(live.c.header.clone(), live.c.plan.clone());
    late.apply(&ServerMsg::State {
        state: Box::new(live.c.state.clone()),
    });
    late.apply(&ServerMsg::History {
        backlog: Box::new(live.backlog.clone()),
    });
    late.anchor = live.c.anchor.clone();
    assert_eq!(late.log, live.c.log);
    assert_eq!(late.lag, live.c.lag);
    assert_eq!(late.progress, live.c.progress);
    assert_eq!(late.state, live.c.state);
    let ui = Ui::default();
    assert_eq!(render(&late, &ui, 120, 40), render(&live.c, &ui, 120, 40));
    // Nothing replayed twice: the live stream goes on after the history.
    let before = late.log.len();
    late.apply(&ServerMsg::Event {
        record: Box::new(
            live.backlog
                .events
                .back()
                .cloned()
                .unwrap_or_else(|| panic!("no events")),
        ),
        anchor: Anchor {
            records: 1,
            tag: "00".into(),
        },
    });
    assert_eq!(
        late.log.len(),
        before,
        "an event already folded is not logged again"
    );
}
