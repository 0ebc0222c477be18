//! Keys: a rebindable key map (key → [`Action`]) and the console's UI state
//! machine, a pure function from (UI state, run facts, key) to the next UI
//! state and at most one [`Effect`]. Destructive actions (abort, cut-over)
//! always pass a confirm dialog whose default is Cancel; on a high-risk run
//! the dialog also wants a table name typed.

use crate::model::Risk;
use crate::run::{Command, Phase};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Deserialize;
use std::collections::BTreeMap;

/// What a key means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Help overlay.
    Help,
    /// Selection up.
    Up,
    /// Selection down.
    Down,
    /// Next pane.
    NextPane,
    /// Pause the migration.
    Pause,
    /// Resume the migration.
    Resume,
    /// Abort (confirm dialog).
    Abort,
    /// Cut over (confirm dialog).
    CutOver,
    /// Bigger chunks.
    ChunkUp,
    /// Smaller chunks.
    ChunkDown,
    /// Set the max lag (prompt).
    MaxLag,
    /// Cycle the chart's time window.
    Zoom,
    /// Freeze / unfreeze the display (the migration is unaffected).
    Freeze,
    /// Leave the console; the run goes on.
    Detach,
    /// Start an approved run.
    Start,
    /// Approve (a second authorized person attached to the run).
    Approve,
}

impl Action {
    /// Every action, for help and config validation.
    pub const ALL: [Action; 16] = [
        Action::Help,
        Action::Up,
        Action::Down,
        Action::NextPane,
        Action::Pause,
        Action::Resume,
        Action::Abort,
        Action::CutOver,
        Action::ChunkUp,
        Action::ChunkDown,
        Action::MaxLag,
        Action::Zoom,
        Action::Freeze,
        Action::Detach,
        Action::Start,
        Action::Approve,
    ];

    /// Whether it changes the run (refused in read-only mode).
    pub fn is_control(self) -> bool {
        matches!(
            self,
            Action::Pause
                | Action::Resume
                | Action::Abort
                | Action::CutOver
                | Action::ChunkUp
                | Action::ChunkDown
                | Action::MaxLag
                | Action::Start
                | Action::Approve
        )
    }

    /// Help text.
    pub fn help(self) -> &'static str {
        match self {
            Action::Help => "this help",
            Action::Up => "previous statement / scroll log up",
            Action::Down => "next statement / scroll log down",
            Action::NextPane => "next pane",
            Action::Pause => "pause the migration",
            Action::Resume => "resume the migration",
            Action::Abort => "abort (asks; default Cancel)",
            Action::CutOver => "cut over now (asks; default Cancel)",
            Action::ChunkUp => "chunk size +25%",
            Action::ChunkDown => "chunk size -20%",
            Action::MaxLag => "set max replica lag",
            Action::Zoom => "chart time window 1m/5m/15m/1h",
            Action::Freeze => "freeze the display (migration keeps going)",
            Action::Detach => "detach: leave the console, the run goes on",
            Action::Start => "start an approved run",
            Action::Approve => "approve (as a second authorized person)",
        }
    }
}

/// A key as written in config: `p`, `?`, `space`, `tab`, `up`, `ctrl-c`, `f1`…
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// The code (characters lower-cased only when `ctrl` is set).
    pub code: KeyCodeName,
    /// Control held.
    pub ctrl: bool,
}

/// The key codes the map knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyCodeName {
    /// A character.
    Char(char),
    /// Arrow up.
    Up,
    /// Arrow down.
    Down,
    /// Tab.
    Tab,
    /// Enter.
    Enter,
    /// Escape.
    Esc,
    /// Function key.
    F(u8),
}

impl Key {
    /// Parses a key name.
    pub fn parse(s: &str) -> Result<Key, String> {
        let (ctrl, rest) = match s.strip_prefix("ctrl-") {
            Some(r) => (true, r),
            None => (false, s),
        };
        let code = match rest {
            "space" => KeyCodeName::Char(' '),
            "tab" => KeyCodeName::Tab,
            "up" => KeyCodeName::Up,
            "down" => KeyCodeName::Down,
            "enter" => KeyCodeName::Enter,
            "esc" => KeyCodeName::Esc,
            f if f.len() >= 2 && f.starts_with('f') && f[1..].parse::<u8>().is_ok() => {
                KeyCodeName::F(f[1..].parse().unwrap_or(1))
            }
            c if c.chars().count() == 1 => KeyCodeName::Char(c.chars().next().unwrap_or(' ')),
            other => return Err(format!("unknown key '{other}'")),
        };
        Ok(Key { code, ctrl })
    }

    /// From a terminal key event.
    pub fn from_event(k: &KeyEvent) -> Option<Key> {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        let code = match k.code {
            KeyCode::Char(c) => KeyCodeName::Char(if ctrl { c.to_ascii_lowercase() } else { c }),
            KeyCode::Up => KeyCodeName::Up,
            KeyCode::Down => KeyCodeName::Down,
            KeyCode::Tab => KeyCodeName::Tab,
            KeyCode::Enter => KeyCodeName::Enter,
            KeyCode::Esc => KeyCodeName::Esc,
            KeyCode::F(n) => KeyCodeName::F(n),
            _ => return None,
        };
        Some(Key { code, ctrl })
    }

    /// Display name.
    pub fn name(&self) -> String {
        let base = match self.code {
            KeyCodeName::Char(' ') => "Space".to_string(),
            KeyCodeName::Char(c) => c.to_string(),
            KeyCodeName::Up => "↑".into(),
            KeyCodeName::Down => "↓".into(),
            KeyCodeName::Tab => "Tab".into(),
            KeyCodeName::Enter => "Enter".into(),
            KeyCodeName::Esc => "Esc".into(),
            KeyCodeName::F(n) => format!("F{n}"),
        };
        if self.ctrl {
            format!("Ctrl-{base}")
        } else {
            base
        }
    }
}

/// Key → action.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyMap {
    map: BTreeMap<Key, Action>,
}

impl Default for KeyMap {
    fn default() -> Self {
        let pairs: &[(&str, Action)] = &[
            ("?", Action::Help),
            ("k", Action::Up),
            ("up", Action::Up),
            ("j", Action::Down),
            ("down", Action::Down),
            ("tab", Action::NextPane),
            ("p", Action::Pause),
            ("r", Action::Resume),
            ("a", Action::Abort),
            ("c", Action::CutOver),
            ("+", Action::ChunkUp),
            ("=", Action::ChunkUp),
            ("-", Action::ChunkDown),
            ("m", Action::MaxLag),
            ("z", Action::Zoom),
            ("space", Action::Freeze),
            ("q", Action::Detach),
            ("s", Action::Start),
            ("A", Action::Approve),
        ];
        let map = pairs
            .iter()
            .filter_map(|(k, a)| Key::parse(k).ok().map(|k| (k, *a)))
            .collect();
        KeyMap { map }
    }
}

impl KeyMap {
    /// Defaults with `[console.keys]` overrides (`pause = "P"` or `pause = ["P", "f5"]`):
    /// an overridden action loses its default keys.
    pub fn with_overrides(overrides: &BTreeMap<Action, KeySpec>) -> Result<KeyMap, String> {
        let mut km = KeyMap::default();
        for (action, spec) in overrides {
            km.map.retain(|_, a| a != action);
            for k in spec.keys() {
                let key = Key::parse(k).map_err(|e| format!("console.keys.{action:?}: {e}"))?;
                if let Some(other) = km.map.get(&key)
                    && overrides.contains_key(other)
                    && other != action
                {
                    return Err(format!(
                        "console.keys: '{k}' is bound to both {other:?} and {action:?}"
                    ));
                }
                km.map.insert(key, *action);
            }
        }
        Ok(km)
    }

    /// The action of a key.
    pub fn action(&self, k: &Key) -> Option<Action> {
        self.map.get(k).copied()
    }

    /// The keys of an action, for help and hints.
    pub fn keys_of(&self, a: Action) -> Vec<String> {
        self.map
            .iter()
            .filter(|(_, x)| **x == a)
            .map(|(k, _)| k.name())
            .collect()
    }

    /// The first key of an action, for the status bar.
    pub fn hint(&self, a: Action) -> String {
        self.keys_of(a)
            .into_iter()
            .next()
            .unwrap_or_else(|| "-".into())
    }
}

/// One key or several, as written in config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum KeySpec {
    /// `pause = "p"`
    One(String),
    /// `pause = ["p", "f5"]`
    Many(Vec<String>),
}

impl KeySpec {
    fn keys(&self) -> Vec<&str> {
        match self {
            KeySpec::One(s) => vec![s.as_str()],
            KeySpec::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// Panes that take focus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pane {
    /// Statements and their details.
    #[default]
    Statements,
    /// The lag chart.
    Chart,
    /// The event log.
    Log,
}

/// What a confirm dialog is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogKind {
    /// Abort the run.
    Abort,
    /// Proceed with the cut-over.
    CutOver,
    /// Set the max lag (seconds typed).
    MaxLag,
    /// Ctrl-C: leave the console?
    Quit,
    /// Approve the run (as a second authorized person).
    Approve,
}

/// Which button has focus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Button {
    /// The default.
    Cancel,
    /// Go ahead.
    Confirm,
}

/// An open dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// What for.
    pub kind: DialogKind,
    /// Typed text (table name, or seconds for max lag).
    pub input: String,
    /// Whether typed input is required (high-risk abort / cut-over, max lag).
    pub needs_input: bool,
    /// Focused button.
    pub button: Button,
    /// Why the last confirm did not go through.
    pub error: Option<String>,
}

/// Chart time windows, seconds.
pub const ZOOMS: [u64; 4] = [60, 300, 900, 3600];

/// The console's own state: focus, selection, dialogs. Not the run's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ui {
    /// Focused pane.
    pub pane: Pane,
    /// Selected statement (flat index over the plan).
    pub selected: usize,
    /// Log lines scrolled up from the bottom.
    pub log_scroll: usize,
    /// Index into [`ZOOMS`].
    pub zoom: usize,
    /// The display is frozen.
    pub frozen: bool,
    /// Help overlay shown.
    pub help: bool,
    /// Open dialog.
    pub dialog: Option<Dialog>,
    /// Observer mode: controls are refused here.
    pub read_only: bool,
    /// A one-line message for the status bar.
    pub message: Option<String>,
    /// The run is the demo's simulation, which ends with the console (no
    /// supervisor keeps it going after a detach).
    pub simulation: bool,
}

/// What the run looks like to the key handler.
#[derive(Debug, Clone, PartialEq)]
pub struct RunFacts {
    /// Phase.
    pub phase: Phase,
    /// Plan risk.
    pub risk: Risk,
    /// Tables of the run (for the typed confirmation).
    pub tables: Vec<String>,
    /// Current chunk size.
    pub chunk_size: Option<u32>,
    /// Current max lag, ms.
    pub max_lag_millis: Option<u64>,
    /// Plan digest (approvals bind to it).
    pub plan_digest: String,
    /// Statements in the plan.
    pub statements: usize,
}

/// What the app must do after a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send this command to the supervisor.
    Send(Command),
    /// Leave the console; the run is not touched.
    Detach,
    /// The display was frozen or unfrozen (the app keeps or drops its snapshot).
    FreezeChanged,
}

/// Handles one key: the next UI state and at most one effect.
pub fn handle_key(ui: &mut Ui, facts: &RunFacts, keys: &KeyMap, ev: &KeyEvent) -> Option<Effect> {
    if ev.code == KeyCode::Backspace {
        backspace(ui);
        return None;
    }
    let key = Key::from_event(ev)?;
    ui.message = None;
    if ui.dialog.is_some() {
        return dialog_key(ui, facts, &key);
    }
    if key.ctrl && key.code == KeyCodeName::Char('c') {
        ui.dialog = Some(Dialog {
            kind: DialogKind::Quit,
            input: String::new(),
            needs_input: false,
            button: Button::Cancel,
            error: None,
        });
        return None;
    }
    if ui.help {
        // Any key closes help; it does nothing else.
        ui.help = false;
        return None;
    }
    if key.code == KeyCodeName::Esc {
        return None;
    }
    let action = keys.action(&key)?;
    if ui.read_only && action.is_control() {
        ui.message = Some("read-only observer: controls are disabled".into());
        return None;
    }
    match action {
        Action::Help => ui.help = true,
        Action::Up => match ui.pane {
            Pane::Log => ui.log_scroll += 1,
            _ => ui.selected = ui.selected.saturating_sub(1),
        },
        Action::Down => match ui.pane {
            Pane::Log => ui.log_scroll = ui.log_scroll.saturating_sub(1),
            _ => ui.selected = (ui.selected + 1).min(facts.statements.saturating_sub(1)),
        },
        Action::NextPane => {
            ui.pane = match ui.pane {
                Pane::Statements => Pane::Chart,
                Pane::Chart => Pane::Log,
                Pane::Log => Pane::Statements,
            }
        }
        Action::Zoom => ui.zoom = (ui.zoom + 1) % ZOOMS.len(),
        Action::Freeze => {
            ui.frozen = !ui.frozen;
            return Some(Effect::FreezeChanged);
        }
        Action::Detach => return Some(Effect::Detach),
        Action::Pause => return Some(Effect::Send(Command::Pause)),
        Action::Resume => return Some(Effect::Send(Command::Resume)),
        Action::Start => return Some(Effect::Send(Command::Start)),
        Action::Approve => {
            // An approval lets a migration run on production: it is confirmed
            // like abort and cut-over, with the table typed on high risk.
            if facts.phase.is_terminal() {
                ui.message = Some(format!("the run has ended ({})", facts.phase));
                return None;
            }
            ui.dialog = Some(Dialog {
                kind: DialogKind::Approve,
                input: String::new(),
                needs_input: facts.risk == Risk::High,
                button: Button::Cancel,
                error: None,
            });
        }
        Action::ChunkUp | Action::ChunkDown => {
            let cur = facts.chunk_size.unwrap_or(1000);
            let rows = if action == Action::ChunkUp {
                (cur + cur / 4).max(cur + 1)
            } else {
                (cur - cur / 5).min(cur.saturating_sub(1))
            }
            .clamp(10, 100_000);
            return Some(Effect::Send(Command::SetChunkSize { rows }));
        }
        Action::MaxLag => {
            let cur = facts.max_lag_millis.unwrap_or(1500) as f64 / 1000.0;
            ui.dialog = Some(Dialog {
                kind: DialogKind::MaxLag,
                input: format!("{cur}"),
                needs_input: true,
                button: Button::Cancel,
                error: None,
            });
        }
        Action::Abort | Action::CutOver => {
            if facts.phase.is_terminal() {
                ui.message = Some(format!("the run has ended ({})", facts.phase));
                return None;
            }
            ui.dialog = Some(Dialog {
                kind: if action == Action::Abort {
                    DialogKind::Abort
                } else {
                    DialogKind::CutOver
                },
                input: String::new(),
                needs_input: facts.risk == Risk::High,
                button: Button::Cancel,
                error: None,
            });
        }
    }
    None
}

fn dialog_key(ui: &mut Ui, facts: &RunFacts, key: &Key) -> Option<Effect> {
    let d = ui.dialog.as_mut()?;
    match key.code {
        KeyCodeName::Esc => ui.dialog = None,
        KeyCodeName::Tab | KeyCodeName::Up | KeyCodeName::Down => {
            d.button = match d.button {
                Button::Cancel => Button::Confirm,
                Button::Confirm => Button::Cancel,
            }
        }
        KeyCodeName::Enter => {
            if d.button == Button::Cancel {
                ui.dialog = None;
                ui.message = Some("cancelled".into());
                return None;
            }
            return confirm(ui, facts);
        }
        KeyCodeName::Char(c) if key.ctrl && c == 'c' => ui.dialog = None,
        KeyCodeName::Char(c) if !key.ctrl => {
            if d.kind == DialogKind::Quit {
                // y/n shortcuts; anything else leaves the default (Cancel).
                match c {
                    'y' => {
                        ui.dialog = None;
                        return Some(Effect::Detach);
                    }
                    'n' => ui.dialog = None,
                    _ => {}
                }
            } else if d.needs_input && d.input.chars().count() < 64 {
                d.input.push(c);
                d.error = None;
            }
        }
        KeyCodeName::Char(_) => {}
        _ => {}
    }
    None
}

/// Deletes the last typed character of an open dialog.
pub fn backspace(ui: &mut Ui) {
    if let Some(d) = ui.dialog.as_mut() {
        d.input.pop();
    }
}

fn confirm(ui: &mut Ui, facts: &RunFacts) -> Option<Effect> {
    let d = ui.dialog.as_mut()?;
    match d.kind {
        DialogKind::Quit => {
            ui.dialog = None;
            Some(Effect::Detach)
        }
        DialogKind::MaxLag => {
            let secs: Option<f64> = d.input.trim().trim_end_matches('s').parse().ok();
            match secs.filter(|s| s.is_finite() && (0.1..=3600.0).contains(s)) {
                Some(s) => {
                    ui.dialog = None;
                    Some(Effect::Send(Command::SetMaxLag {
                        millis: (s * 1000.0).round() as u64,
                    }))
                }
                None => {
                    d.error = Some("type seconds between 0.1 and 3600".into());
                    None
                }
            }
        }
        DialogKind::Abort | DialogKind::CutOver | DialogKind::Approve => {
            let table = if d.needs_input {
                let typed = d.input.trim().to_string();
                if !crate::run::decide::table_matches(&facts.tables, &typed) {
                    d.error = Some(format!(
                        "type the table name to confirm ({})",
                        facts.tables.join(", ")
                    ));
                    return None;
                }
                Some(typed)
            } else {
                None
            };
            let kind = d.kind;
            ui.dialog = None;
            Some(Effect::Send(match kind {
                DialogKind::Abort => Command::Abort {
                    reason: "aborted from the console".into(),
                    table,
                },
                DialogKind::Approve => Command::Approve {
                    plan_digest: facts.plan_digest.clone(),
                },
                _ => Command::CutOver { table },
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }
    fn code(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }
    fn facts(risk: Risk) -> RunFacts {
        RunFacts {
            phase: Phase::Running,
            risk,
            tables: vec!["public.orders".into()],
            chunk_size: Some(1000),
            max_lag_millis: None,
            plan_digest: "d".repeat(64),
            statements: 3,
        }
    }
    fn press(ui: &mut Ui, f: &RunFacts, keys: &[KeyEvent]) -> Vec<Effect> {
        let km = KeyMap::default();
        keys.iter()
            .filter_map(|e| handle_key(ui, f, &km, e))
            .collect()
    }

    #[test]
    fn abort_needs_confirmation_and_defaults_to_cancel() {
        let f = facts(Risk::Medium);
        let mut ui = Ui::default();
        assert!(press(&mut ui, &f, &[k('a')]).is_empty());
        assert_eq!(ui.dialog.as_ref().map(|d| d.button), Some(Button::Cancel));
        // Enter on the default does nothing to the run.
        assert!(press(&mut ui, &f, &[code(KeyCode::Enter)]).is_empty());
        assert!(ui.dialog.is_none());
        // Tab to Confirm, Enter: the abort is sent.
        let fx = press(
            &mut ui,
            &f,
            &[k('a'), code(KeyCode::Tab), code(KeyCode::Enter)],
        );
        assert!(matches!(
            fx.as_slice(),
            [Effect::Send(Command::Abort { table: None, .. })]
        ));
    }

    #[test]
    fn high_risk_abort_needs_the_right_table_name() {
        let f = facts(Risk::High);
        let mut ui = Ui::default();
        let mut keys = vec![k('a')];
        keys.extend("users".chars().map(k));
        keys.extend([code(KeyCode::Tab), code(KeyCode::Enter)]);
        assert!(press(&mut ui, &f, &keys).is_empty(), "wrong name");
        let d = ui.dialog.clone().unwrap_or_else(|| panic!("dialog closed"));
        assert!(d.error.unwrap_or_default().contains("orders"));
        for _ in 0..5 {
            backspace(&mut ui);
        }
        let mut keys: Vec<KeyEvent> = "orders".chars().map(k).collect();
        keys.push(code(KeyCode::Enter));
        let fx = press(&mut ui, &f, &keys);
        assert_eq!(
            fx,
            vec![Effect::Send(Command::Abort {
                reason: "aborted from the console".into(),
                table: Some("orders".into())
            })]
        );
        // Typing `a` inside the dialog types, it does not re-open or abort.
        let mut ui = Ui::default();
        assert!(press(&mut ui, &f, &[k('c'), k('a'), k('a')]).is_empty());
        assert_eq!(ui.dialog.map(|d| d.input), Some("aa".into()));
    }

    #[test]
    fn approve_is_confirmed_and_high_risk_wants_the_table() {
        let shift_a = KeyEvent::new(KeyCode::Char('A'), KeyModifiers::SHIFT);
        // Medium risk: a dialog defaulting to Cancel, then Confirm approves.
        let f = facts(Risk::Medium);
        let mut ui = Ui::default();
        assert!(press(&mut ui, &f, &[shift_a, code(KeyCode::Enter)]).is_empty());
        assert!(ui.dialog.is_none());
        let fx = press(
            &mut ui,
            &f,
            &[shift_a, code(KeyCode::Tab), code(KeyCode::Enter)],
        );
        assert_eq!(
            fx,
            vec![Effect::Send(Command::Approve {
                plan_digest: f.plan_digest.clone()
            })]
        );
        // High risk: nothing is sent until the table is typed.
        let f = facts(Risk::High);
        let mut ui = Ui::default();
        let fx = press(
            &mut ui,
            &f,
            &[shift_a, code(KeyCode::Tab), code(KeyCode::Enter)],
        );
        assert!(fx.is_empty());
        assert!(ui.dialog.as_ref().and_then(|d| d.error.clone()).is_some());
        let mut keys: Vec<KeyEvent> = "orders".chars().map(k).collect();
        keys.push(code(KeyCode::Enter));
        assert_eq!(
            press(&mut ui, &f, &keys),
            vec![Effect::Send(Command::Approve {
                plan_digest: f.plan_digest.clone()
            })]
        );
    }

    #[test]
    fn q_detaches_without_any_command() {
        let f = facts(Risk::High);
        let mut ui = Ui::default();
        assert_eq!(press(&mut ui, &f, &[k('q')]), vec![Effect::Detach]);
        // Ctrl-C asks first; the default keeps the console.
        let cc = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert!(press(&mut ui, &f, &[cc, code(KeyCode::Enter)]).is_empty());
        assert_eq!(press(&mut ui, &f, &[cc, k('y')]), vec![Effect::Detach]);
    }

    #[test]
    fn read_only_refuses_every_control() {
        let f = facts(Risk::Low);
        let mut ui = Ui {
            read_only: true,
            ..Ui::default()
        };
        for a in Action::ALL.into_iter().filter(|a| a.is_control()) {
            for key in KeyMap::default().keys_of(a) {
                let key = Key::parse(&key.to_lowercase()).or_else(|_| Key::parse(&key));
                let Ok(key) = key else { continue };
                let KeyCodeName::Char(c) = key.code else {
                    continue;
                };
                assert_eq!(press(&mut ui, &f, &[k(c)]), vec![], "{a:?}");
                assert!(ui.dialog.is_none(), "{a:?}");
                assert!(ui.message.as_deref().unwrap_or("").contains("read-only"));
            }
        }
        // Viewing still works.
        assert_eq!(press(&mut ui, &f, &[k('j'), k('z')]), vec![]);
        assert_eq!((ui.selected, ui.zoom), (1, 1));
        assert_eq!(press(&mut ui, &f, &[k('q')]), vec![Effect::Detach]);
    }

    #[test]
    fn pause_resume_tuning_and_freeze() {
        let f = facts(Risk::Low);
        let mut ui = Ui::default();
        assert_eq!(
            press(&mut ui, &f, &[k('p'), k('r'), k('+'), k('-'), k(' ')]),
            vec![
                Effect::Send(Command::Pause),
                Effect::Send(Command::Resume),
                Effect::Send(Command::SetChunkSize { rows: 1250 }),
                Effect::Send(Command::SetChunkSize { rows: 800 }),
                Effect::FreezeChanged,
            ]
        );
        assert!(ui.frozen);
        let mut keys = vec![k('m')];
        keys.extend([code(KeyCode::Backspace)]);
        press(&mut ui, &f, &keys);
        for _ in 0..5 {
            backspace(&mut ui);
        }
        let fx = press(
            &mut ui,
            &f,
            &[k('3'), code(KeyCode::Tab), code(KeyCode::Enter)],
        );
        assert_eq!(fx, vec![Effect::Send(Command::SetMaxLag { millis: 3000 })]);
    }

    #[test]
    fn keys_are_rebindable() {
        let mut o = BTreeMap::new();
        o.insert(Action::Pause, KeySpec::One("P".into()));
        o.insert(
            Action::Detach,
            KeySpec::Many(vec!["x".into(), "f10".into()]),
        );
        let km = KeyMap::with_overrides(&o).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            km.action(&Key::parse("P").unwrap_or_else(|e| panic!("{e}"))),
            Some(Action::Pause)
        );
        assert_eq!(
            km.action(&Key::parse("p").unwrap_or_else(|e| panic!("{e}"))),
            None
        );
        assert_eq!(
            km.action(&Key::parse("f10").unwrap_or_else(|e| panic!("{e}"))),
            Some(Action::Detach)
        );
        let mut bad = BTreeMap::new();
        bad.insert(Action::Pause, KeySpec::One("x".into()));
        bad.insert(Action::Abort, KeySpec::One("x".into()));
        assert!(KeyMap::with_overrides(&bad).is_err());
        bad.clear();
        bad.insert(Action::Pause, KeySpec::One("hyper-p".into()));
        assert!(KeyMap::with_overrides(&bad).is_err());
    }
}
