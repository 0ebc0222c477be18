//! The terminal loop: the only part of the console with I/O.
//!
//! One tokio `select!` over terminal events (read on a small blocking
//! thread), the supervisor's stream, command replies, signals and a render
//! tick. It draws at once, redraws on resize and on change, and otherwise
//! only on a slow tick, so an idle console costs almost nothing.
//! `ratatui::try_init` installs a panic hook that restores the terminal;
//! signals and errors restore it on the way out.

use super::keys::{Effect, KeyMap, RunFacts, Ui, handle_key};
use super::model::{Console, LogKind};
use super::theme::Theme;
use super::view;
use crate::policy::Surface;
use crate::run::core::Reply;
use crate::run::{Command, Phase};
use crate::supervisor::{Client, ServerMsg, SupervisorError};
use crossterm::event::{Event as TermEvent, KeyEventKind};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;

/// How the console behaves.
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// Colours.
    pub theme: Theme,
    /// Key bindings.
    pub keys: KeyMap,
    /// Observer mode: no controls.
    pub read_only: bool,
    /// Send `start` once the run is approved (the `cutover run` that requested it).
    pub auto_start: bool,
    /// The actor shown for commands this console sends (`local:<user>`).
    pub actor: String,
    /// The demo's simulation: it ends with the console.
    pub simulation: bool,
}

/// How the console ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppExit {
    /// The user detached; the run goes on.
    Detached,
    /// The run ended (the summary was on screen) and the user left.
    Ended(Phase),
}

/// Console failures (the terminal or the socket).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Terminal I/O.
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
    /// The supervisor.
    #[error(transparent)]
    Supervisor(#[from] SupervisorError),
}

/// The facts the key handler needs from the model.
pub fn facts(c: &Console) -> RunFacts {
    let spec = c.state.spec.as_ref();
    RunFacts {
        phase: c.state.phase,
        risk: spec.map(|s| s.risk).unwrap_or(crate::model::Risk::High),
        tables: spec.map(|s| s.tables.clone()).unwrap_or_default(),
        chunk_size: c
            .state
            .chunk_size
            .or_else(|| c.progress.as_ref()?.progress.as_ref()?.chunk_size),
        max_lag_millis: c.state.max_lag_millis,
        plan_digest: spec
            .map(|s| s.binding.plan_digest.clone())
            .unwrap_or_default(),
        statements: view::statements(c).len(),
    }
}

/// The index of the first statement of the plan's highest risk (shown first).
pub fn riskiest(c: &Console) -> usize {
    let stmts = view::statements(c);
    let top = stmts.iter().map(|(_, s)| s.risk).max();
    stmts
        .iter()
        .position(|(_, s)| Some(s.risk) == top)
        .unwrap_or(0)
}

/// The controlling terminal, for approval records.
pub fn tty() -> Option<String> {
    std::fs::read_link("/proc/self/fd/0")
        .ok()
        .map(|p: PathBuf| p.display().to_string())
        .filter(|p| p.starts_with("/dev/"))
}

/// Forwards the supervisor's stream into a channel until it ends.
pub async fn stream(mut sub: Client, tx: mpsc::Sender<ServerMsg>) {
    loop {
        match sub.next().await {
            Ok(Some(m)) => {
                let end = matches!(m, ServerMsg::End);
                if tx.send(m).await.is_err() || end {
                    return;
                }
            }
            _ => {
                let _ = tx.send(ServerMsg::End).await;
                return;
            }
        }
    }
}

/// What became of a command: the supervisor's reply, or why it got none
/// (the socket broke: usually the run ended while the command was on its way).
pub type Delivery = Result<Reply, String>;

/// Sends commands one at a time and reports each reply.
pub async fn commander(
    mut client: Client,
    mut rx: mpsc::Receiver<Command>,
    replies: mpsc::Sender<(Command, Delivery)>,
    surface: Surface,
) {
    let origin = tty();
    while let Some(cmd) = rx.recv().await {
        let reply = match client
            .command(surface, cmd.clone(), origin.clone(), |_| {})
            .await
        {
            // The supervisor's own words when the core had already stopped.
            Ok(Reply::Error { message }) if message == crate::supervisor::server::RUN_ENDED => {
                Err(message)
            }
            Ok(r) => Ok(r),
            Err(e) => Err(e.to_string()),
        };
        if replies.send((cmd, reply)).await.is_err() {
            return;
        }
    }
}

/// What the console says about a command that got no reply: the run's
/// ending when it had ended (the command raced the end), that the
/// supervisor is gone when the stream broke before the end, and nothing
/// yet while the stream may still bring the final event.
pub fn undelivered(what: &str, c: &Console) -> Option<String> {
    if c.state.phase.is_terminal() {
        Some(crate::cmd::control::already_ended(what, &c.state))
    } else if c.ended {
        Some(crate::cmd::control::gone_while(&c.state.run, c.state.phase))
    } else {
        None
    }
}

/// The supervisor's clock, carried forward: the latest time seen in the
/// stream (events and samples are stamped by the run's clock) plus the time
/// since it was seen. A line this console writes (`→ sent …`) is stamped with
/// it, so it sits in time among the run's own lines even when nothing was
/// published for a while (awaiting approval, a postponed cut-over, a pause).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RunClock {
    seen: Option<(chrono::DateTime<chrono::Utc>, std::time::Instant)>,
}

impl RunClock {
    /// Notes the console's latest time, as of `local`, when it moved.
    pub fn observe(
        &mut self,
        now: Option<chrono::DateTime<chrono::Utc>>,
        local: std::time::Instant,
    ) {
        if let Some(now) = now
            && self.seen.is_none_or(|(t, _)| t != now)
        {
            self.seen = Some((now, local));
        }
    }

    /// The run's time at `local`; the wall clock before anything was seen.
    pub fn at(&self, local: std::time::Instant) -> chrono::DateTime<chrono::Utc> {
        match self.seen {
            Some((t, l)) => {
                t + chrono::Duration::from_std(local.saturating_duration_since(l))
                    .unwrap_or_default()
            }
            None => chrono::Utc::now(),
        }
    }
}

/// Runs the console over a supervisor's socket until the user leaves.
pub async fn run(
    socket: &std::path::Path,
    mut console: Console,
    opts: AppOptions,
) -> Result<AppExit, AppError> {
    let mut sub = Client::connect(socket).await?;
    sub.attach(4096).await?;
    let cmd_client = Client::connect(socket).await?;
    let (msg_tx, mut msgs) = mpsc::channel(4096);
    tokio::spawn(stream(sub, msg_tx));
    let (cmd_tx, cmd_rx) = mpsc::channel::<Command>(16);
    let (reply_tx, mut replies) = mpsc::channel(16);
    tokio::spawn(commander(cmd_client, cmd_rx, reply_tx, Surface::Console));

    let mut terminal = ratatui::try_init()?;
    let result = event_loop(
        &mut terminal,
        &mut console,
        &opts,
        &mut msgs,
        &cmd_tx,
        &mut replies,
    )
    .await;
    ratatui::restore();
    result
}

fn term_events() -> mpsc::Receiver<TermEvent> {
    let (tx, rx) = mpsc::channel(64);
    std::thread::spawn(move || {
        while !tx.is_closed() {
            match crossterm::event::poll(Duration::from_millis(200)) {
                Ok(true) => match crossterm::event::read() {
                    Ok(ev) => {
                        if tx.blocking_send(ev).is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                },
                Ok(false) => {}
                Err(_) => return,
            }
        }
    });
    rx
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    console: &mut Console,
    opts: &AppOptions,
    msgs: &mut mpsc::Receiver<ServerMsg>,
    cmd_tx: &mpsc::Sender<Command>,
    replies: &mut mpsc::Receiver<(Command, Delivery)>,
) -> Result<AppExit, AppError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut keys_rx = term_events();
    let mut ui = Ui {
        read_only: opts.read_only,
        simulation: opts.simulation,
        selected: riskiest(console),
        ..Ui::default()
    };
    let mut frozen: Option<Console> = None;
    let mut started = false;
    let mut selected_once = console.plan.is_some();
    // A modest tick: redraws only when something changed, plus a slow refresh.
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut dirty = true;
    let mut idle_ticks = 0u32;
    let mut clock = RunClock::default();
    clock.observe(console.now, std::time::Instant::now());
    // A command whose reply never came, waiting for the stream to say why.
    let mut unanswered: Option<(String, String, u32)> = None;
    loop {
        if dirty {
            let shown = frozen.as_ref().unwrap_or(console);
            terminal.draw(|f| view::draw(f, shown, &ui, &opts.theme, &opts.keys))?;
            dirty = false;
            idle_ticks = 0;
        }
        tokio::select! {
            _ = term.recv() => return Ok(AppExit::Detached),
            _ = hup.recv() => return Ok(AppExit::Detached),
            ev = keys_rx.recv() => {
                let Some(ev) = ev else { return Ok(AppExit::Detached) };
                match ev {
                    TermEvent::Key(k) if k.kind != KeyEventKind::Release => {
                        let f = facts(console);
                        match handle_key(&mut ui, &f, &opts.keys, &k) {
                            Some(Effect::Detach) => {
                                return Ok(if console.state.phase.is_terminal() {
                                    AppExit::Ended(console.state.phase)
                                } else {
                                    AppExit::Detached
                                });
                            }
                            Some(Effect::Send(cmd)) => {
                                let now = clock.at(std::time::Instant::now());
                                console.log(now, &opts.actor, format!("→ sent {} from the console", cmd.kind()), LogKind::Sent);
                                let what = cmd.kind().to_string();
                                if cmd_tx.send(cmd).await.is_err() {
                                    ui.message = Some(undelivered(&what, console).unwrap_or_else(|| {
                                        crate::cmd::control::gone_while(
                                            &console.state.run,
                                            console.state.phase,
                                        )
                                    }));
                                }
                            }
                            Some(Effect::FreezeChanged) => {
                                frozen = ui.frozen.then(|| console.clone());
                            }
                            None => {}
                        }
                        dirty = true;
                    }
                    TermEvent::Resize(_, _) => {
                        terminal.autoresize()?;
                        dirty = true;
                    }
                    _ => {}
                }
            }
            m = msgs.recv() => {
                match m {
                    Some(m) => {
                        console.apply(&m);
                        clock.observe(console.now, std::time::Instant::now());
                    }
                    None => {
                        console.ended = true;
                        if !console.state.phase.is_terminal() {
                            // Not "connection refused": say what it means and how to go on.
                            ui.message = Some(crate::cmd::control::gone_while(
                                &console.state.run,
                                console.state.phase,
                            ));
                        }
                    }
                }
                if !selected_once && console.plan.is_some() {
                    ui.selected = riskiest(console);
                    selected_once = true;
                }
                if let Some((what, _, _)) = &unanswered
                    && let Some(why) = undelivered(what, console)
                {
                    let now = clock.at(std::time::Instant::now());
                    console.log(now, "supervisor", format!("← {why}"), LogKind::Problem);
                    ui.message = Some(why);
                    unanswered = None;
                }
                if opts.auto_start && !started && !opts.read_only && console.state.phase == Phase::Approved {
                    started = true;
                    let now = clock.at(std::time::Instant::now());
                    console.log(now, &opts.actor, "→ sent start (approved: starting as requested)".into(), LogKind::Sent);
                    let _ = cmd_tx.send(Command::Start).await;
                }
                // The frozen screen stays as it was; live data keeps folding underneath.
                dirty = frozen.is_none();
            }
            r = replies.recv() => {
                if let Some((cmd, reply)) = r {
                    let now = clock.at(std::time::Instant::now());
                    match reply {
                        Err(cause) => match undelivered(&cmd.kind().to_string(), console) {
                            Some(why) => {
                                ui.message = Some(why.clone());
                                console.log(now, "supervisor", format!("← {why}"), LogKind::Problem);
                            }
                            // The final event may still be on its way: wait for it.
                            None => unanswered = Some((cmd.kind().to_string(), cause, 0)),
                        },
                        Ok(Reply::Refused { reason }) => {
                            ui.message = Some(format!("{} refused: {reason}", cmd.kind()));
                            console.log(now, "supervisor", format!("← {} refused: {reason}", cmd.kind()), LogKind::Problem);
                        }
                        Ok(Reply::Error { message }) => {
                            ui.message = Some(format!("{} failed: {message}", cmd.kind()));
                            console.log(now, "supervisor", format!("← {} failed: {message}", cmd.kind()), LogKind::Problem);
                        }
                        Ok(Reply::Accepted { seqs }) => {
                            console.log(now, "supervisor", format!("← {} accepted (#{})", cmd.kind(), seqs.iter().map(u64::to_string).collect::<Vec<_>>().join(", #")), LogKind::Sent);
                        }
                        Ok(Reply::Duplicate) => {}
                    }
                    dirty = true;
                }
            }
            _ = tick.tick() => {
                idle_ticks += 1;
                // No final event within a couple of seconds: say what broke.
                if let Some((what, cause, waited)) = unanswered.as_mut() {
                    *waited += 1;
                    if *waited >= 8 {
                        let why = format!("{what} failed: {cause}");
                        let now = clock.at(std::time::Instant::now());
                        console.log(now, "supervisor", format!("← {why}"), LogKind::Problem);
                        ui.message = Some(why);
                        unanswered = None;
                        dirty = true;
                    }
                }
                // Refresh at least every 2 s (status-bar clock, resize races).
                if idle_ticks >= 8 {
                    dirty = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{Event, EventRecord};
    use chrono::TimeZone;

    /// `→ sent` lines are stamped with the run's clock carried forward, not
    /// the time of the last thing published: a minute after the last event,
    /// a key press says a minute later.
    #[test]
    fn sent_lines_carry_the_run_clock_forward() {
        let t = chrono::Utc.with_ymd_and_hms(2026, 3, 10, 2, 0, 5).unwrap();
        let i0 = std::time::Instant::now();
        let mut clock = RunClock::default();
        clock.observe(Some(t), i0);
        let later = i0 + Duration::from_secs(61);
        assert_eq!(clock.at(later), t + chrono::Duration::seconds(61));
        // The same time seen again (a reply, a duplicate) does not reset it.
        clock.observe(Some(t), i0 + Duration::from_secs(30));
        assert_eq!(clock.at(later), t + chrono::Duration::seconds(61));
        // A newer time does.
        let t2 = t + chrono::Duration::seconds(50);
        clock.observe(Some(t2), i0 + Duration::from_secs(50));
        assert_eq!(clock.at(later), t2 + chrono::Duration::seconds(11));
        // Before anything was seen: the wall clock, never 1970.
        assert!(RunClock::default().at(i0).timestamp() > 1_700_000_000);
    }

    /// A command that got no reply says how the run ended when it had, that
    /// the supervisor is gone when the stream broke before the end, and
    /// waits for the stream otherwise.
    #[test]
    fn an_unanswered_command_says_how_the_run_ended() {
        let t = chrono::Utc.with_ymd_and_hms(2026, 3, 10, 2, 0, 5).unwrap();
        let mut c = Console::default();
        c.state.run = "r1".into();
        c.state.phase = Phase::Running;
        assert_eq!(
            undelivered("abort", &c),
            None,
            "the final event may be on its way"
        );
        for r in EventRecord::stamp(
            "r1",
            0,
            vec![Event::Succeeded],
            &crate::policy::Actor::System,
            None,
            t,
        ) {
            c.event(&r);
        }
        let said = undelivered("abort", &c).unwrap_or_default();
        assert_eq!(
            said,
            "abort not applied: the run had already ended: SUCCEEDED"
        );
        let mut gone = Console::default();
        gone.state.run = "r1".into();
        gone.state.phase = Phase::Running;
        gone.ended = true;
        let said = undelivered("pause", &gone).unwrap_or_default();
        assert!(said.contains("supervisor of run r1 is gone"), "{said}");
    }
}
