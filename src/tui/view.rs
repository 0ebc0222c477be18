//! The screen, as a pure function of ([`Console`], [`Ui`]): no I/O, no clock.
//! Pre-flight, approval wait, running and done are states of this one screen:
//! the right-hand top pane shows approvals and windows before the start, the
//! lag chart and progress while executing, and the summary at the end.

use super::keys::{Action, Button, DialogKind, KeyMap, Pane, Ui, ZOOMS};
use super::model::{Console, LogKind, short};
use super::theme::Theme;
use crate::exec::ExecPhase;
use crate::model::{Risk, StatementVerdict};
use crate::run::Phase;
use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Borders, Chart, Clear, Dataset, Gauge, GraphType, LegendPosition, List, ListItem,
    ListState, Paragraph, Wrap,
};

/// Smallest usable terminal.
pub const MIN_WIDTH: u16 = 80;
/// Smallest usable terminal.
pub const MIN_HEIGHT: u16 = 24;

/// Draws the whole console.
pub fn draw(f: &mut Frame, c: &Console, ui: &Ui, theme: &Theme, keys: &KeyMap) {
    let area = f.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = Paragraph::new(vec![
            Line::from("cutover: terminal too small"),
            Line::from(format!(
                "{}×{} — need at least {MIN_WIDTH}×{MIN_HEIGHT}",
                area.width, area.height
            )),
            Line::from("the run is not affected; enlarge the window"),
        ])
        .style(theme.text())
        .wrap(Wrap { trim: true });
        f.render_widget(msg, area);
        return;
    }
    let [header, body, status] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(10),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(f, header, c, theme);
    let log_h = if area.height >= 36 { 12 } else { 7 };
    let [upper, log] =
        Layout::vertical([Constraint::Min(8), Constraint::Length(log_h)]).areas(body);
    let left_w = if area.width >= 110 { 46 } else { 34 };
    let [left, top] =
        Layout::horizontal([Constraint::Length(left_w), Constraint::Min(30)]).areas(upper);
    let [list, detail] =
        Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(left);
    draw_statements(f, list, c, ui, theme);
    draw_detail(f, detail, c, ui, theme);

    let phase = c.state.phase;
    if phase.is_terminal() {
        draw_summary(f, top, c, theme);
    } else if phase.is_pre_start() {
        draw_preflight(f, top, c, theme, keys);
    } else {
        let [chart, gauge] =
            Layout::vertical([Constraint::Min(5), Constraint::Length(5)]).areas(top);
        draw_chart(f, chart, c, ui, theme);
        draw_progress(f, gauge, c, theme);
    }
    draw_log(f, log, c, ui, theme);
    draw_status(f, status, c, ui, theme, keys);
    if ui.help {
        draw_help(f, area, theme, keys);
    }
    if ui.dialog.is_some() {
        draw_dialog(f, area, c, ui, theme);
    }
}

fn pane_block<'a>(title: &'a str, focused: bool, theme: &Theme) -> Block<'a> {
    let style = if focused {
        theme.accent()
    } else {
        Style::default().fg(theme.border)
    };
    Block::default()
        .borders(Borders::ALL)
        .border_style(style)
        .title(Span::styled(format!(" {title} "), theme.accent()))
}

/// The state's name and colour.
pub fn phase_label(p: Phase, theme: &Theme) -> (String, ratatui::style::Color) {
    let c = match p {
        Phase::Succeeded => theme.ok,
        Phase::Running | Phase::CuttingOver => theme.ok,
        Phase::Failed
        | Phase::Aborted
        | Phase::Rejected
        | Phase::Withdrawn
        | Phase::Expired
        | Phase::Interrupted => theme.bad,
        _ => theme.warn,
    };
    (p.as_str().replace('_', " ").to_uppercase(), c)
}

fn risk_name(r: Risk) -> &'static str {
    match r {
        Risk::Low => "LOW",
        Risk::Medium => "MEDIUM",
        Risk::High => "HIGH",
    }
}

fn draw_header(f: &mut Frame, area: Rect, c: &Console, theme: &Theme) {
    let spec = c.state.spec.as_ref();
    let (phase, pc) = phase_label(c.state.phase, theme);
    let risk = spec.map(|s| s.risk).unwrap_or(Risk::High);
    let sep = Span::styled(" │ ", theme.dim());
    let window = match (&c.state.phase, &c.state.window_note) {
        (Phase::WaitingForWindow, Some(n)) => (format!("BLOCKED: {n}"), theme.bad),
        (_, Some(n)) => (format!("WARN: {n}"), theme.warn),
        _ => ("open".to_string(), theme.ok),
    };
    let line1 = Line::from(vec![
        Span::styled(format!(" cutover {}", c.header.version), theme.accent()),
        sep.clone(),
        Span::styled("target ", theme.dim()),
        Span::styled(
            spec.map(|s| s.binding.target.clone()).unwrap_or_default(),
            theme.text(),
        ),
        Span::styled(
            format!(" ({})", spec.map(|s| s.environment.as_str()).unwrap_or("?")),
            theme.dim(),
        ),
        sep.clone(),
        Span::styled(
            format!(" {} RISK ", risk_name(risk)),
            theme.badge(theme.risk(risk)),
        ),
        sep.clone(),
        Span::styled("state ", theme.dim()),
        Span::styled(phase, theme.fg(pc).add_modifier(Modifier::BOLD)),
    ]);
    let slack_c = if c.header.slack_connected {
        theme.ok
    } else {
        theme.warn
    };
    let line2 = Line::from(vec![
        Span::styled(format!(" run {}", c.state.run), theme.dim()),
        Span::styled(
            format!(
                "  plan {}",
                short(spec.map(|s| s.binding.plan_digest.as_str()).unwrap_or(""))
            ),
            theme.dim(),
        ),
        sep.clone(),
        Span::styled("window ", theme.dim()),
        Span::styled(window.0, theme.fg(window.1)),
        sep,
        Span::styled("slack ", theme.dim()),
        Span::styled(c.header.slack.clone(), theme.fg(slack_c)),
    ]);
    f.render_widget(Paragraph::new(vec![line1, line2]), area);
}

/// The plan's statements in order, with their migration version.
pub fn statements(c: &Console) -> Vec<(&str, &StatementVerdict)> {
    c.plan
        .iter()
        .flat_map(|p| p.migrations.iter())
        .flat_map(|m| m.statements.iter().map(move |s| (m.version.as_str(), s)))
        .collect()
}

fn draw_statements(f: &mut Frame, area: Rect, c: &Console, ui: &Ui, theme: &Theme) {
    let stmts = statements(c);
    let block = pane_block("Statements", ui.pane == Pane::Statements, theme);
    if stmts.is_empty() {
        f.render_widget(
            Paragraph::new("no plan in the run directory")
                .style(theme.dim())
                .block(block),
            area,
        );
        return;
    }
    let items: Vec<ListItem> = stmts
        .iter()
        .map(|(v, s)| {
            let risk = match s.risk {
                Risk::Low => "LOW ",
                Risk::Medium => "MED ",
                Risk::High => "HIGH",
            };
            let sql: String = s.sql.split_whitespace().collect::<Vec<_>>().join(" ");
            ListItem::new(Line::from(vec![
                Span::styled(
                    risk,
                    theme.fg(theme.risk(s.risk)).add_modifier(Modifier::BOLD),
                ),
                Span::styled(format!(" V{v} "), theme.dim()),
                Span::styled(sql, theme.text()),
            ]))
        })
        .collect();
    let mut state = ListState::default().with_selected(Some(ui.selected.min(stmts.len() - 1)));
    let list = List::new(items)
        .block(block)
        .highlight_style(Style::default().bg(theme.selected_bg))
        .highlight_symbol("▶");
    f.render_stateful_widget(list, area, &mut state);
}

fn draw_detail(f: &mut Frame, area: Rect, c: &Console, ui: &Ui, theme: &Theme) {
    let stmts = statements(c);
    let block = pane_block("Detail", false, theme);
    let Some((v, s)) = stmts.get(ui.selected.min(stmts.len().saturating_sub(1))) else {
        f.render_widget(Paragraph::new("").block(block), area);
        return;
    };
    let mut lines = vec![
        Line::from(vec![
            Span::styled(format!("V{v} line {}  ", s.line), theme.dim()),
            Span::styled(
                format!(" {} ", risk_name(s.risk)),
                theme.badge(theme.risk(s.risk)),
            ),
        ]),
        Line::from(Span::styled(
            s.sql.split_whitespace().collect::<Vec<_>>().join(" "),
            theme.text(),
        )),
        Line::from(vec![
            Span::styled("lock ", theme.dim()),
            Span::styled(
                format!(
                    "{} on {} — blocks {}",
                    s.lock.mode,
                    s.lock.table.as_deref().unwrap_or("-"),
                    s.lock.blocks.as_str()
                ),
                theme.text(),
            ),
        ]),
    ];
    if let Some(e) = s.estimate {
        lines.push(Line::from(vec![
            Span::styled("estimate ", theme.dim()),
            Span::styled(
                format!(
                    "{} total, lock held {}{}",
                    duration(e.duration_seconds),
                    duration(e.lock_seconds),
                    if s.rewrites_table {
                        ", rewrites table"
                    } else {
                        ""
                    }
                ),
                theme.text(),
            ),
        ]));
    }
    for fd in &s.findings {
        lines.push(Line::from(vec![
            Span::styled(
                format!("● {} ", risk_name(fd.risk)),
                theme.fg(theme.risk(fd.risk)),
            ),
            Span::styled(format!("{}: ", fd.rule), theme.accent()),
            Span::styled(fd.reason.clone(), theme.text()),
        ]));
        if let Some(alt) = &fd.safe_alternative {
            lines.push(Line::from(vec![
                Span::styled("  safer: ", theme.fg(theme.ok)),
                Span::styled(alt.clone(), theme.text()),
            ]));
        }
    }
    f.render_widget(
        Paragraph::new(lines).block(block).wrap(Wrap { trim: true }),
        area,
    );
}

fn draw_preflight(f: &mut Frame, area: Rect, c: &Console, theme: &Theme, keys: &KeyMap) {
    let s = &c.state;
    let title = match s.phase {
        Phase::Planned => "Pre-flight",
        Phase::AwaitingApproval => "Awaiting approval",
        Phase::WaitingForWindow => "Blocked by window",
        _ => "Ready to start",
    };
    let mut lines = vec![Line::from(vec![
        Span::styled("approvals needed ", theme.dim()),
        Span::styled(
            if c.header.approval_rule.is_empty() {
                "per policy".to_string()
            } else {
                c.header.approval_rule.clone()
            },
            theme.text(),
        ),
    ])];
    if s.approvals.is_empty() {
        lines.push(Line::from(Span::styled("  none given yet", theme.dim())));
    }
    for a in &s.approvals {
        lines.push(Line::from(vec![
            Span::styled("  ✓ ", theme.fg(theme.ok)),
            Span::styled(
                format!(
                    "{} ({}) via {} at {}",
                    a.name,
                    a.role,
                    super::model::surface_str(a.surface),
                    a.at.format("%H:%M:%S UTC")
                ),
                theme.text(),
            ),
        ]));
    }
    if let Some(v) = &s.voided {
        lines.push(Line::from(vec![
            Span::styled("  ✗ voided: ", theme.fg(theme.bad)),
            Span::styled(v.clone(), theme.text()),
        ]));
    }
    if let Some(r) = &s.requester {
        lines.push(Line::from(vec![
            Span::styled("requested by ", theme.dim()),
            Span::styled(r.clone(), theme.text()),
            Span::styled(" (cannot approve their own run)", theme.dim()),
        ]));
    }
    lines.push(Line::from(""));
    let (wtext, wc) = match (&s.phase, &s.window_note) {
        (Phase::WaitingForWindow, Some(n)) => (format!("BLOCKED — {n}"), theme.bad),
        (_, Some(n)) => (format!("WARNING — {n}"), theme.warn),
        _ => ("open: nothing blocks this run now".to_string(), theme.ok),
    };
    lines.push(Line::from(vec![
        Span::styled("window ", theme.dim()),
        Span::styled(wtext, theme.fg(wc)),
    ]));
    if let Some(spec) = &s.spec {
        lines.push(Line::from(vec![
            Span::styled("estimate ", theme.dim()),
            Span::styled(
                format!(
                    "{} · executor {} · {} migration(s) · tables {}",
                    duration(spec.estimated_seconds),
                    spec.executor,
                    spec.versions.len(),
                    spec.tables.join(", ")
                ),
                theme.text(),
            ),
        ]));
    }
    lines.push(Line::from(""));
    let next = match s.phase {
        Phase::Planned => "next: request approval".to_string(),
        Phase::AwaitingApproval => format!(
            "next: an authorized approver approves in Slack, with `cutover approve {}`, or `{}` here",
            s.run,
            keys.hint(Action::Approve)
        ),
        Phase::WaitingForWindow => {
            "next: the run starts when the window allows (or a DBA overrides with a reason)"
                .to_string()
        }
        _ => format!("next: start with `{}`", keys.hint(Action::Start)),
    };
    lines.push(Line::from(Span::styled(next, theme.accent())));
    f.render_widget(
        Paragraph::new(lines)
            .block(pane_block(title, false, theme))
            .wrap(Wrap { trim: true }),
        area,
    );
}

/// Downsamples `(x, y)` points into at most `buckets` columns, keeping each
/// column's maximum (lag peaks are what matter).
pub fn downsample(points: &[(f64, f64)], x0: f64, x1: f64, buckets: usize) -> Vec<(f64, f64)> {
    if points.len() <= buckets * 2 || buckets == 0 || x1 <= x0 {
        return points.to_vec();
    }
    let w = (x1 - x0) / buckets as f64;
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(buckets);
    let mut cur: Option<(usize, f64, f64)> = None;
    for &(x, y) in points {
        let b = (((x - x0) / w) as usize).min(buckets - 1);
        cur = match cur {
            Some((cb, cx, cy)) if cb == b => Some((cb, if y > cy { x } else { cx }, cy.max(y))),
            Some((_, cx, cy)) => {
                out.push((cx, cy));
                Some((b, x, y))
            }
            None => Some((b, x, y)),
        };
    }
    if let Some((_, x, y)) = cur {
        out.push((x, y));
    }
    out
}

fn secs_label(s: u64) -> String {
    if s >= 60 && s.is_multiple_of(60) {
        format!("-{}m", s / 60)
    } else {
        format!("-{s}s")
    }
}

/// A chart line: legend, colour, points.
type Series = (String, ratatui::style::Color, Vec<(f64, f64)>);

fn draw_chart(f: &mut Frame, area: Rect, c: &Console, ui: &Ui, theme: &Theme) {
    let window = ZOOMS[ui.zoom % ZOOMS.len()] as f64;
    let max = c.max_lag_seconds();
    let now: Option<DateTime<Utc>> = c.now;
    let width = area.width.saturating_sub(10) as usize;
    let mut series: Vec<Series> = Vec::new();
    let mut top = max * 2.0;
    for (i, (name, hist)) in c.lag.iter().enumerate() {
        let Some(now) = now else { break };
        let pts: Vec<(f64, f64)> = hist
            .iter()
            .filter_map(|(at, v)| {
                let x = (*at - now).num_milliseconds() as f64 / 1000.0;
                (x >= -window).then_some((x, (*v)?))
            })
            .collect();
        let pts = downsample(&pts, -window, 0.0, width.max(1));
        for p in &pts {
            top = top.max(p.1 * 1.1);
        }
        let last = match hist.back() {
            Some((_, Some(v))) => format!("{v:.1}s"),
            Some((_, None)) => "UNKNOWN".into(),
            None => "-".into(),
        };
        let over = hist
            .back()
            .map(|(_, v)| v.is_none_or(|v| v > max))
            .unwrap_or(false);
        let mark = if over { " ▲OVER" } else { "" };
        series.push((format!("{name} {last}{mark}"), theme.replica(i), pts));
    }
    let threshold = [(-window, max), (0.0, max)];
    let mut datasets: Vec<Dataset> = series
        .iter()
        .map(|(name, color, pts)| {
            Dataset::default()
                .name(name.clone())
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::default().fg(*color))
                .data(pts)
        })
        .collect();
    datasets.push(
        Dataset::default()
            .name(format!("max {max:.1}s"))
            .marker(Marker::Dot)
            .graph_type(GraphType::Line)
            .style(theme.fg(theme.threshold))
            .data(&threshold),
    );
    let title = format!(
        "Replica lag — last {} ({} zoom)",
        secs_label(window as u64).trim_start_matches('-'),
        "z"
    );
    let block = pane_block(&title, ui.pane == Pane::Chart, theme);
    let chart = Chart::new(datasets)
        .block(block)
        .legend_position(Some(LegendPosition::TopLeft))
        .hidden_legend_constraints((Constraint::Percentage(60), Constraint::Percentage(60)))
        .x_axis(
            Axis::default()
                .style(theme.dim())
                .bounds([-window, 0.0])
                .labels(vec![
                    Line::from(secs_label(window as u64)),
                    Line::from(secs_label((window / 2.0) as u64)),
                    Line::from("now"),
                ]),
        )
        .y_axis(
            Axis::default()
                .style(theme.dim())
                .bounds([0.0, top])
                .labels(vec![
                    Line::from("0s"),
                    Line::from(format!("{:.1}s", top / 2.0)),
                    Line::from(format!("{top:.1}s")),
                ]),
        );
    f.render_widget(chart, area);
}

fn draw_progress(f: &mut Frame, area: Rect, c: &Console, theme: &Theme) {
    let block = pane_block("Progress", false, theme);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let [g, info, reason] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(inner);
    let p = c.progress.as_ref().and_then(|s| s.progress.clone());
    let pct = c.copy.percent();
    // The bar cannot be fuller than full; the label says the real figure.
    let ratio = pct.map_or(0.0, |x| x / 100.0).clamp(0.0, 1.0);
    let moving = matches!(c.state.phase, Phase::Running | Phase::CuttingOver);
    let gc = if moving { theme.ok } else { theme.warn };
    f.render_widget(
        Gauge::default()
            .gauge_style(Style::default().fg(gc))
            .ratio(ratio)
            .label(pct.map_or_else(|| "?%".into(), crate::run::copyview::percent_label)),
        g,
    );
    let text = match &p {
        Some(p) => format!(
            "{}/{} rows · {} · ETA {} · chunk {} · max lag {:.1}s",
            thousands(p.rows_copied),
            p.rows_total.map(thousands).unwrap_or_else(|| "?".into()),
            c.rate
                .map(|r| format!("{} rows/s", thousands(r as u64)))
                .unwrap_or_else(|| "— rows/s".into()),
            c.eta_seconds().map(duration).unwrap_or_else(|| "—".into()),
            p.chunk_size
                .map(|x| x.to_string())
                .unwrap_or_else(|| "?".into()),
            c.max_lag_seconds()
        ),
        None => "waiting for the executor's first status".into(),
    };
    f.render_widget(Paragraph::new(text).style(theme.text()), info);
    let why = match c.throttle_reason() {
        Some(r) => Line::from(Span::styled(
            format!("⏸ {r}"),
            theme.fg(theme.warn).add_modifier(Modifier::BOLD),
        )),
        None if matches!(
            c.progress.as_ref().map(|s| &s.phase),
            Some(ExecPhase::CuttingOver)
        ) =>
        {
            Line::from(Span::styled("⇄ cutting over", theme.fg(theme.warn)))
        }
        None => Line::from(Span::styled("▶ copying", theme.fg(theme.ok))),
    };
    f.render_widget(Paragraph::new(why), reason);
}

fn draw_summary(f: &mut Frame, area: Rect, c: &Console, theme: &Theme) {
    let s = &c.state;
    let (phase, pc) = phase_label(s.phase, theme);
    let took = match (s.started_at, s.last_at) {
        (Some(a), Some(b)) => format!(" in {}", duration((b - a).num_seconds() as f64)),
        _ => String::new(),
    };
    let mut lines = vec![Line::from(vec![
        Span::styled(format!(" {phase} "), theme.badge(pc)),
        Span::styled(took, theme.text()),
    ])];
    if let Some(o) = &s.outcome {
        lines.push(Line::from(Span::styled(o.clone(), theme.text())));
    }
    // Only row counts are rows copied (index builds report blocks or tuples).
    if let Some(p) = c
        .progress
        .as_ref()
        .and_then(|p| p.progress.as_ref())
        .filter(|p| p.rows_copied > 0 || p.rows_total.is_some())
    {
        lines.push(Line::from(vec![
            Span::styled("rows copied ", theme.dim()),
            Span::styled(
                format!(
                    "{} of {}",
                    thousands(p.rows_copied),
                    p.rows_total.map(thousands).unwrap_or_else(|| "?".into())
                ),
                theme.text(),
            ),
        ]));
    }
    for a in &s.approvals {
        lines.push(Line::from(vec![
            Span::styled("approved by ", theme.dim()),
            Span::styled(format!("{} ({})", a.name, a.role), theme.text()),
        ]));
    }
    if s.refusals > 0 {
        lines.push(Line::from(vec![
            Span::styled("refusals ", theme.dim()),
            Span::styled(s.refusals.to_string(), theme.text()),
        ]));
    }
    if !c.leftovers.is_empty() {
        lines.push(Line::from(Span::styled(
            "left behind (clean up):",
            theme.fg(theme.warn),
        )));
        for l in &c.leftovers {
            lines.push(Line::from(Span::styled(
                format!(
                    "  {} {}{}",
                    l.kind,
                    l.name,
                    l.cleanup
                        .as_ref()
                        .map(|x| format!(" → {x}"))
                        .unwrap_or_default()
                ),
                theme.text(),
            )));
        }
    }
    if let Some(a) = &c.anchor {
        lines.push(Line::from(vec![
            Span::styled("audit head ", theme.dim()),
            Span::styled(
                format!("{} records, tag {}", a.records, short(&a.tag)),
                theme.text(),
            ),
        ]));
    }
    f.render_widget(
        Paragraph::new(lines)
            .block(pane_block("Summary", false, theme))
            .wrap(Wrap { trim: true }),
        area,
    );
}

fn draw_log(f: &mut Frame, area: Rect, c: &Console, ui: &Ui, theme: &Theme) {
    let h = area.height.saturating_sub(2) as usize;
    let end = c.log.len().saturating_sub(ui.log_scroll.min(c.log.len()));
    let start = end.saturating_sub(h);
    let lines: Vec<Line> = c
        .log
        .range(start..end)
        .map(|l| {
            let color = match l.kind {
                LogKind::Event => theme.text,
                LogKind::Sent => theme.accent,
                LogKind::Tool => theme.dim,
                LogKind::Slack => theme.accent,
                LogKind::Problem => theme.bad,
            };
            Line::from(vec![
                Span::styled(format!("{} ", l.at.format("%H:%M:%S")), theme.dim()),
                Span::styled(format!("{:<12.12} ", l.actor), theme.dim()),
                Span::styled(l.text.clone(), theme.fg(color)),
            ])
        })
        .collect();
    let title = if ui.log_scroll > 0 {
        format!("Event log (scrolled up {})", ui.log_scroll)
    } else {
        "Event log".to_string()
    };
    f.render_widget(
        Paragraph::new(lines).block(pane_block(&title, ui.pane == Pane::Log, theme)),
        area,
    );
}

fn draw_status(f: &mut Frame, area: Rect, c: &Console, ui: &Ui, theme: &Theme, keys: &KeyMap) {
    let mut spans = Vec::new();
    if ui.frozen {
        spans.push(Span::styled(
            " DISPLAY FROZEN — the migration keeps running (Space) ",
            theme.badge(theme.warn),
        ));
        spans.push(Span::raw(" "));
    }
    if c.state.phase == Phase::Paused {
        spans.push(Span::styled(" MIGRATION PAUSED ", theme.badge(theme.warn)));
        spans.push(Span::raw(" "));
    }
    if ui.read_only {
        spans.push(Span::styled(" READ-ONLY ", theme.badge(theme.accent)));
        spans.push(Span::raw(" "));
    }
    if c.ended {
        // A supervisor that ends before its run did crashed or was killed.
        let (label, colour) = if c.state.phase.is_terminal() {
            (" supervisor finished ", theme.dim)
        } else {
            (" SUPERVISOR GONE ", theme.warn)
        };
        spans.push(Span::styled(label, theme.badge(colour)));
        spans.push(Span::raw(" "));
    }
    if let Some(m) = &ui.message {
        spans.push(Span::styled(m.clone(), theme.fg(theme.warn)));
    } else {
        let mut hints = vec![(Action::Help, "help")];
        if !ui.read_only {
            // Only the controls the current executor honours (all while unknown).
            let can = c.state.capabilities;
            let has = |f: fn(&crate::exec::Capabilities) -> bool| can.as_ref().is_none_or(f);
            hints.extend(
                [
                    (Action::Pause, "pause", has(|k| k.pause)),
                    (Action::Resume, "resume", has(|k| k.pause)),
                    (Action::Abort, "abort", true),
                    (Action::CutOver, "cut over", has(|k| k.postpone_cut_over)),
                    (Action::ChunkUp, "chunk+", has(|k| k.set_chunk_size)),
                    (Action::MaxLag, "max lag", has(|k| k.set_max_lag)),
                ]
                .into_iter()
                .filter(|(_, _, on)| *on)
                .map(|(a, l, _)| (a, l)),
            );
        }
        hints.extend([
            (Action::Zoom, "zoom"),
            (Action::Freeze, "freeze"),
            (Action::Detach, "detach"),
        ]);
        for (a, label) in hints {
            spans.push(Span::styled(keys.hint(a), theme.accent()));
            spans.push(Span::styled(format!(" {label}  "), theme.dim()));
        }
        if let Some(note) = c.state.executor_notes.first() {
            spans.push(Span::styled(note.clone(), theme.dim()));
        }
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn draw_help(f: &mut Frame, area: Rect, theme: &Theme, keys: &KeyMap) {
    let lines: Vec<Line> = Action::ALL
        .iter()
        .map(|a| {
            Line::from(vec![
                Span::styled(
                    format!("{:>12}  ", keys.keys_of(*a).join(" ")),
                    theme.accent(),
                ),
                Span::styled(a.help(), theme.text()),
            ])
        })
        .chain([
            Line::from(""),
            Line::from(Span::styled(
                "Pausing stops the copy; freezing only stops the screen. Any key closes.",
                theme.dim(),
            )),
        ])
        .collect();
    let r = centered(area, 76, lines.len() as u16 + 2);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).block(pane_block("Keys", true, theme)),
        r,
    );
}

fn draw_dialog(f: &mut Frame, area: Rect, c: &Console, ui: &Ui, theme: &Theme) {
    let Some(d) = &ui.dialog else { return };
    let target = c
        .state
        .spec
        .as_ref()
        .map(|s| s.binding.target.clone())
        .unwrap_or_default();
    let tables = c
        .state
        .spec
        .as_ref()
        .map(|s| s.tables.join(", "))
        .unwrap_or_default();
    let (title, mut lines, confirm) = match d.kind {
        DialogKind::Abort => (
            "Abort?",
            vec![
                Line::from(format!("Abort the migration on {target}?")),
                Line::from("The copy stops; leftovers are listed in the summary."),
            ],
            "Abort",
        ),
        DialogKind::CutOver => (
            "Cut over?",
            vec![
                Line::from(format!("Swap the new table in on {target} now?")),
                Line::from("Takes a brief exclusive lock on the table."),
            ],
            "Cut over",
        ),
        DialogKind::MaxLag => (
            "Max replica lag",
            vec![Line::from(
                "Throttle when any replica lags more than (seconds):",
            )],
            "Set",
        ),
        DialogKind::Quit if ui.simulation => (
            "Leave the demo?",
            vec![
                Line::from("The demo's simulation ends with the console."),
                Line::from("(A real run keeps going under its supervisor.) (y/n)"),
            ],
            "Leave",
        ),
        DialogKind::Quit => (
            "Leave the console?",
            vec![
                Line::from("The migration keeps running under its supervisor."),
                Line::from("Come back with `cutover attach`. (y/n)"),
            ],
            "Detach",
        ),
        DialogKind::Approve => (
            "Approve?",
            vec![
                Line::from(format!(
                    "Approve plan {} on {target}?",
                    short(
                        &c.state
                            .spec
                            .as_ref()
                            .map(|s| s.binding.plan_digest.clone())
                            .unwrap_or_default()
                    )
                )),
                Line::from("Your name and the plan digest are recorded in the audit trail."),
            ],
            "Approve",
        ),
    };
    if d.needs_input {
        if matches!(
            d.kind,
            DialogKind::Abort | DialogKind::CutOver | DialogKind::Approve
        ) {
            lines.push(Line::from(Span::styled(
                format!("HIGH RISK: type the table name to confirm ({tables})"),
                theme.fg(theme.high).add_modifier(Modifier::BOLD),
            )));
        }
        lines.push(Line::from(vec![
            Span::styled("> ", theme.accent()),
            Span::styled(format!("{}▏", d.input), theme.text()),
        ]));
    }
    if let Some(e) = &d.error {
        lines.push(Line::from(Span::styled(e.clone(), theme.fg(theme.bad))));
    }
    lines.push(Line::from(""));
    let button = |label: &str, on: bool| {
        let s = if on {
            theme.badge(theme.accent)
        } else {
            theme.dim()
        };
        Span::styled(format!("[ {label} ]"), s)
    };
    lines.push(
        Line::from(vec![
            button("Cancel", d.button == Button::Cancel),
            Span::raw("   "),
            button(confirm, d.button == Button::Confirm),
        ])
        .alignment(Alignment::Center),
    );
    lines.push(Line::from(Span::styled(
        "Tab switch · Enter choose · Esc cancel",
        theme.dim(),
    )));
    let r = centered(area, 70, lines.len() as u16 + 2);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines)
            .block(pane_block(title, true, theme))
            .wrap(Wrap { trim: true }),
        r,
    );
}

/// `3m12s`, `1h04m`, `45s`.
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// `48,000,000`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(thousands(48_000_000), "48,000,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(duration(192.0), "3m12s");
        assert_eq!(duration(3840.0), "1h04m");
    }

    #[test]
    fn downsample_keeps_peaks_and_bounds_points() {
        let pts: Vec<(f64, f64)> = (0..3600)
            .map(|i| (i as f64 - 3600.0, if i == 1234 { 9.0 } else { 1.0 }))
            .collect();
        let d = downsample(&pts, -3600.0, 0.0, 100);
        assert!(d.len() <= 100, "{}", d.len());
        assert!(d.iter().any(|p| p.1 == 9.0));
    }
}
