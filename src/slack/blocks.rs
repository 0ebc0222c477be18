//! Pure rendering of a run (and its plan) to Block Kit JSON, always with a
//! plain `text` fallback.
//!
//! Four messages — pre-flight, its in-place rewrites after a decision,
//! progress, completion — and two modals (reject reason, typed table name).
//! Every function here is a pure function of its inputs; the limits of
//! Slack's spec are enforced here by construction (truncation, summarising),
//! and checked independently in the tests by `validate_blocks.py`.

use super::config::{LinkTemplates, LinkVars, fill};
use super::view::RunView;
use crate::model::{Plan, Risk, StatementVerdict};
use crate::run::Phase;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Slack's limits (spec §1, §5). Kept private to rendering: the tests'
/// checker does not reuse them.
mod limits {
    pub const MESSAGE_BLOCKS: usize = 50;
    pub const SECTION_TEXT: usize = 3000;
    pub const HEADER_TEXT: usize = 150;
    pub const FALLBACK_TEXT: usize = 4000;
    /// Slack's cumulative limit is undocumented (~12k); stay well under.
    pub const TOTAL_TEXT: usize = 9000;
    pub const BUTTON_TEXT: usize = 75;
    pub const CONFIRM_TITLE: usize = 100;
    pub const CONFIRM_TEXT: usize = 300;
    pub const MODAL_TITLE: usize = 24;
    pub const BLOCK_ID: usize = 255;
    pub const CONTEXT_ELEMENTS: usize = 10;
}

/// A rendered message: fallback text and blocks.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Plain fallback (notifications, screen readers), ≤ 4,000 chars.
    pub text: String,
    /// Block Kit blocks, ≤ 50.
    pub blocks: Vec<Value>,
}

impl Message {
    /// The `chat.postMessage` / `chat.update` body.
    pub fn body(&self, channel: &str) -> Value {
        json!({"channel": channel, "text": self.text, "blocks": self.blocks})
    }
}

/// What a button does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Approve the plan shown.
    Approve,
    /// Reject (opens the reason modal).
    Reject,
    /// Pause copying.
    Pause,
    /// Resume copying.
    Resume,
    /// Abort (confirm; high risk: typed table name).
    Abort,
    /// Proceed with the postponed cut-over.
    CutOver,
}

impl Action {
    /// The `action_id`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Approve => "approve",
            Action::Reject => "reject",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Abort => "abort",
            Action::CutOver => "cut_over",
        }
    }

    /// From an `action_id` or modal `callback_id`.
    pub fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "approve" => Action::Approve,
            "reject" => Action::Reject,
            "pause" => Action::Pause,
            "resume" => Action::Resume,
            "abort" => Action::Abort,
            "cut_over" => Action::CutOver,
            _ => return None,
        })
    }
}

/// What every button and modal carries: run id, plan digest and render revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionValue {
    /// Run id.
    pub run: String,
    /// Plan digest at render time.
    pub digest: String,
    /// Render revision.
    pub rev: u64,
}

impl ActionValue {
    /// `<run>|<digest>|<rev>` (≤ 2,000 chars for any sane run id).
    pub fn encode(&self) -> String {
        format!("{}|{}|{}", self.run, self.digest, self.rev)
    }

    /// The inverse of [`encode`](Self::encode).
    pub fn parse(s: &str) -> Option<ActionValue> {
        let mut it = s.rsplitn(3, '|');
        let rev = it.next()?.parse().ok()?;
        let digest = it.next()?.to_string();
        let run = it.next()?.to_string();
        (!run.is_empty()).then_some(ActionValue { run, digest, rev })
    }
}

/// Everything rendering needs besides the run.
#[derive(Debug, Clone)]
pub struct RenderCtx<'a> {
    /// Run id.
    pub run: &'a str,
    /// Target name.
    pub target: &'a str,
    /// Link templates.
    pub links: &'a LinkTemplates,
    /// Person id → Slack user id, for mentions.
    pub people: &'a BTreeMap<String, String>,
}

/// Escapes text for `mrkdwn` (Slack's three control characters).
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Truncates to `max` characters with an ellipsis.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Escapes user text for `mrkdwn`, then bounds it to `max` characters of
/// the *escaped* text (escaping after truncating could exceed the bound;
/// truncating after escaping could cut `&amp;` in half): whole entities only.
pub fn fit(s: &str, max: usize) -> String {
    let max = max.max(1);
    let mut out = String::new();
    let mut n = 0;
    let total: usize = s.chars().map(esc_len).sum();
    if total <= max {
        return esc(s);
    }
    for c in s.chars() {
        let k = esc_len(c);
        if n + k > max - 1 {
            break;
        }
        n += k;
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out.push('…');
    out
}

fn esc_len(c: char) -> usize {
    match c {
        '&' => 5,
        '<' | '>' => 4,
        _ => 1,
    }
}

/// Truncates `mrkdwn` built from escaped parts to `max` characters without
/// cutting an entity (`&amp;`) or markup (`<@U…>`, `<url|text>`) in half:
/// the cut moves back to before the unfinished piece.
pub fn clip_mrkdwn(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut cut: Vec<char> = s.chars().take(max.saturating_sub(1)).collect();
    let open_at = |cut: &[char], open: char, close: char| {
        let o = cut.iter().rposition(|c| *c == open)?;
        let closed = cut[o..].contains(&close);
        (!closed).then_some(o)
    };
    if let Some(o) = open_at(&cut, '<', '>') {
        cut.truncate(o);
    }
    if let Some(o) = open_at(&cut, '&', ';') {
        cut.truncate(o);
    }
    let mut out: String = cut.into_iter().collect();
    out.push('…');
    out
}

fn plain(s: &str, max: usize) -> Value {
    let s = if s.trim().is_empty() { "-" } else { s };
    json!({"type": "plain_text", "text": clip(s, max), "emoji": true})
}

fn mrkdwn(s: &str, max: usize) -> Value {
    let s = if s.trim().is_empty() { " -" } else { s };
    json!({"type": "mrkdwn", "text": clip_mrkdwn(s, max)})
}

fn header(s: &str) -> Value {
    json!({"type": "header", "text": plain(s, limits::HEADER_TEXT)})
}

fn section(s: &str) -> Value {
    json!({"type": "section", "text": mrkdwn(s, limits::SECTION_TEXT)})
}

fn context(parts: &[String]) -> Value {
    let elements: Vec<Value> = parts
        .iter()
        .take(limits::CONTEXT_ELEMENTS)
        .map(|p| mrkdwn(p, limits::SECTION_TEXT))
        .collect();
    json!({"type": "context", "elements": elements})
}

fn block_id(kind: &str, v: &ActionValue) -> String {
    clip(&format!("{kind}:{}:{}", v.run, v.rev), limits::BLOCK_ID)
}

fn confirm(title: &str, text: &str, yes: &str, danger: bool) -> Value {
    let mut c = json!({
        "title": plain(title, limits::CONFIRM_TITLE),
        "text": mrkdwn(text, limits::CONFIRM_TEXT),
        "confirm": plain(yes, 30),
        "deny": plain("Cancel", 30),
    });
    if danger {
        c["style"] = json!("danger");
    }
    c
}

fn button(action: Action, label: &str, v: &ActionValue, style: Option<&str>) -> Value {
    let mut b = json!({
        "type": "button",
        "action_id": action.as_str(),
        "text": plain(label, limits::BUTTON_TEXT),
        "value": v.encode(),
    });
    if let Some(s) = style {
        b["style"] = json!(s);
    }
    b
}

/// Risk as a coloured word.
pub fn risk_badge(r: Risk) -> &'static str {
    match r {
        Risk::Low => "🟢 low",
        Risk::Medium => "🟠 medium",
        Risk::High => "🔴 HIGH",
    }
}

/// `1h 02m`, `4m 05s`, `12s`.
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "?".into();
    }
    let s = seconds.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A person as a mention when their Slack id is known.
fn who(ctx: &RenderCtx<'_>, person: &str) -> String {
    match ctx.people.get(person) {
        // A configured id becomes a mention only when it looks like one.
        Some(u)
            if !u.is_empty() && u.len() <= 20 && u.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            format!("<@{u}>")
        }
        _ => fit(person, 80),
    }
}

/// A time Slack shows in each reader's zone, with a UTC fallback.
fn when(at: DateTime<Utc>) -> String {
    format!(
        "<!date^{}^{{date_short_pretty}} {{time}}|{}>",
        at.timestamp(),
        at.format("%Y-%m-%d %H:%M UTC")
    )
}

fn versions_label(plan: &Plan) -> String {
    match plan.migrations.as_slice() {
        [] => "no migrations".into(),
        [m] => format!("v{}", m.version),
        [first, .., last] => format!("v{}…v{}", first.version, last.version),
    }
}

fn action_value(ctx: &RenderCtx<'_>, view: &RunView, digest: &str) -> ActionValue {
    ActionValue {
        run: ctx.run.to_string(),
        digest: digest.to_string(),
        rev: view.rev,
    }
}

/// Where the pre-flight's approval stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Not requested yet: no buttons.
    NotRequested,
    /// Waiting for approval: buttons (after a void, with the void's reason).
    Pending {
        /// Why earlier approvals were voided, if they were.
        voided: Option<String>,
    },
    /// Approved: by whom, when.
    Approved,
    /// Rejected.
    Rejected,
    /// Withdrawn before it started (superseded by a changed plan).
    Withdrawn,
    /// Expired.
    Expired,
}

impl Decision {
    /// The decision a view shows.
    pub fn of(view: &RunView) -> Decision {
        let s = &view.state;
        match s.phase {
            Phase::Planned => Decision::NotRequested,
            Phase::AwaitingApproval => Decision::Pending {
                voided: s.voided.clone(),
            },
            Phase::Rejected => Decision::Rejected,
            Phase::Withdrawn => Decision::Withdrawn,
            Phase::Expired => Decision::Expired,
            Phase::Aborted if s.started_at.is_none() && s.approvals.is_empty() => {
                Decision::Rejected
            }
            _ => Decision::Approved,
        }
    }
}

/// Rich-text pieces: literal text (never parsed as markup, so nothing
/// in it needs escaping and SQL shows exactly as it runs).
fn rt(text: &str) -> Value {
    json!({"type": "text", "text": text})
}

fn rt_styled(text: &str, style: &str) -> Value {
    json!({"type": "text", "text": text, "style": {style: true}})
}

/// One statement as a `rich_text` block: what it locks and for how long,
/// its SQL verbatim in a preformatted element (cut, and said so, only
/// when very long), and its riskiest finding.
fn statement_block(
    m_version: &str,
    st: &StatementVerdict,
    sql_max: usize,
    ctx: &RenderCtx<'_>,
    digest: &str,
) -> Value {
    let mut head = vec![
        rt_styled(
            &format!("v{} #{}", clip(m_version, 60), st.index + 1),
            "bold",
        ),
        rt(&format!(" · {}", risk_badge(st.risk))),
    ];
    if let Some(table) = &st.lock.table {
        head.push(rt(" · "));
        head.push(rt_styled(&clip(table, 130), "code"));
    }
    let mut line = format!(
        "\nLock {} ({})",
        clip(&st.lock.mode, 60),
        st.lock.blocks.as_str()
    );
    match &st.estimate {
        Some(e) => {
            let _ = write!(
                line,
                " ~{} · total ~{}",
                duration(e.lock_seconds),
                duration(e.duration_seconds)
            );
        }
        None => line.push_str(" · duration unknown (no table size)"),
    }
    if st.rewrites_table {
        line.push_str(" · rewrites the table");
    }
    head.push(rt(&line));
    let mut elements = vec![json!({"type": "rich_text_section", "elements": head})];

    let sql = st.sql.trim();
    let total = sql.chars().count();
    let sql_shown: String = sql.chars().take(sql_max).collect();
    let sql_shown = if sql_shown.is_empty() {
        "-".to_string()
    } else {
        sql_shown
    };
    elements.push(json!({"type": "rich_text_preformatted", "elements": [rt(&sql_shown)]}));

    let mut tail = Vec::new();
    if total > sql_max {
        tail.push(rt_styled(
            &format!("(first {sql_max} of {total} characters shown) "),
            "italic",
        ));
        let vars = LinkVars {
            run: ctx.run,
            version: m_version,
            digest,
            target: ctx.target,
            statement: &format!("{m_version}-{}", st.index),
        };
        match ctx.links.statement.as_ref().or(ctx.links.plan.as_ref()) {
            Some(tpl) => tail
                .push(json!({"type": "link", "url": fill(tpl, &vars), "text": "Full statement"})),
            None => tail.push(rt_styled("see the full plan in the console", "italic")),
        }
    }
    if let Some(f) = st.findings.iter().max_by_key(|f| f.risk) {
        if !tail.is_empty() {
            tail.push(rt("\n"));
        }
        tail.push(rt_styled(&clip(&f.reason, 300), "italic"));
        if let Some(alt) = &f.safe_alternative {
            tail.push(rt(&format!("\nSafer: {}", clip(alt, 300))));
        }
    }
    if !tail.is_empty() {
        elements.push(json!({"type": "rich_text_section", "elements": tail}));
    }
    json!({"type": "rich_text", "elements": elements})
}

/// The plan's transaction-level findings (they explain a risk no single
/// statement shows), riskiest first, in one section.
fn plan_findings(plan: &Plan) -> Option<Value> {
    let mut all: Vec<(&str, &crate::model::Finding)> = plan
        .migrations
        .iter()
        .flat_map(|m| m.findings.iter().map(move |f| (m.version.as_str(), f)))
        .collect();
    if all.is_empty() {
        return None;
    }
    all.sort_by_key(|(_, f)| std::cmp::Reverse(f.risk));
    let mut t = String::from("*Whole-migration findings*");
    let mut shown = 0;
    for (v, f) in &all {
        let mut line = format!(
            "\n• *v{}* · {} · `{}`: _{}_",
            fit(v, 60),
            risk_badge(f.risk),
            fit(&f.rule, 80),
            fit(&f.reason, 300)
        );
        if let Some(alt) = &f.safe_alternative {
            let _ = write!(line, "\n   Safer: {}", fit(alt, 300));
        }
        if t.chars().count() + line.chars().count() > limits::SECTION_TEXT - 60 {
            break;
        }
        t.push_str(&line);
        shown += 1;
    }
    if shown < all.len() {
        let _ = write!(t, "\n…and {} more (see the full plan)", all.len() - shown);
    }
    Some(section(&t))
}

fn text_len(blocks: &[Value]) -> usize {
    fn walk(v: &Value) -> usize {
        match v {
            Value::Object(m) => m
                .iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("text", Value::String(s)) => s.chars().count(),
                    _ => walk(v),
                })
                .sum(),
            Value::Array(a) => a.iter().map(walk).sum(),
            _ => 0,
        }
    }
    blocks.iter().map(walk).sum()
}

/// The pre-flight message: header, summary, links, one section per statement
/// (highest risk first when they do not all fit), and the decision: buttons
/// while pending, a record line after.
pub fn preflight(plan: &Plan, view: &RunView, ctx: &RenderCtx<'_>) -> Message {
    let decision = Decision::of(view);
    preflight_with(plan, view, ctx, &decision)
}

/// [`preflight`] with an explicit decision (the preview shows `Pending`).
pub fn preflight_with(
    plan: &Plan,
    view: &RunView,
    ctx: &RenderCtx<'_>,
    decision: &Decision,
) -> Message {
    let digest = view
        .state
        .spec
        .as_ref()
        .map(|s| s.binding.plan_digest.clone())
        .unwrap_or_else(|| plan.plan_digest.clone());
    let versions = versions_label(plan);
    let statements: Vec<(&str, &StatementVerdict)> = plan
        .migrations
        .iter()
        .flat_map(|m| m.statements.iter().map(move |s| (m.version.as_str(), s)))
        .collect();
    let unknown = statements
        .iter()
        .filter(|(_, s)| s.estimate.is_none())
        .count();
    let known: f64 = statements
        .iter()
        .filter_map(|(_, s)| s.estimate.map(|e| e.duration_seconds))
        .sum();
    // A sum over the known parts would understate: any unknown part makes
    // the whole unknown.
    let est = if unknown > 0 || statements.is_empty() {
        format!("unknown ({unknown} statement(s) without a size)")
    } else {
        duration(known)
    };
    let outcome = outcome_line(view, ctx);
    let title = match &outcome {
        Some((icon, short, _)) => format!("{icon} {versions} → {} · {short}", ctx.target),
        None => format!(
            "{versions} → {} · {} risk",
            ctx.target,
            risk_badge(plan.risk)
        ),
    };
    let mut head = vec![header(&title)];
    let mut summary = format!(
        "*Migration* {} on `{}` · risk {} · {} statement(s) in {} migration(s) · est. {} · plan `{}`",
        fit(&versions, 80),
        fit(ctx.target, 80),
        risk_badge(plan.risk),
        statements.len(),
        plan.migrations.len(),
        est,
        esc(&clip(&digest, 12)),
    );
    if let Some(r) = &view.state.requester {
        let _ = write!(summary, "\nRequested by {}", who(ctx, r));
    }
    head.push(section(&summary));
    if let Some(f) = plan_findings(plan) {
        head.push(f);
    }
    let first = plan.migrations.first().map_or("", |m| m.version.as_str());
    let vars = LinkVars {
        run: ctx.run,
        version: first,
        digest: &digest,
        target: ctx.target,
        statement: "",
    };
    let mut links = Vec::new();
    if let Some(t) = &ctx.links.diff {
        links.push(format!("<{}|Diff>", fill(t, &vars)));
    }
    if let Some(t) = &ctx.links.plan {
        links.push(format!("<{}|Full plan>", fill(t, &vars)));
    }
    links.push(format!("run `{}`", fit(ctx.run, 80)));
    head.push(context(&[links.join(" · ")]));
    head.push(json!({"type": "divider"}));

    // The tail: decision line and buttons.
    let v = action_value(ctx, view, &digest);
    let mut tail = Vec::new();
    match decision {
        Decision::NotRequested => tail.push(context(&[
            "Not yet requested: approval is asked from the console.".to_string(),
        ])),
        Decision::Pending { voided } => {
            if let Some(r) = voided {
                tail.push(section(&format!(
                    "♻️ *Earlier approvals were voided:* {}",
                    fit(r, 1000)
                )));
            }
            let approve = {
                let mut b = button(Action::Approve, "Approve", &v, Some("primary"));
                b["confirm"] = confirm(
                    &format!("Approve {versions} on {}?", ctx.target),
                    &format!(
                        "Approve *{}* on *{}* at {} risk (plan `{}`).",
                        fit(&versions, 60),
                        fit(ctx.target, 60),
                        risk_badge(plan.risk),
                        esc(&clip(&digest, 12))
                    ),
                    "Approve",
                    false,
                );
                b
            };
            let reject = button(Action::Reject, "Reject…", &v, Some("danger"));
            tail.push(json!({
                "type": "actions",
                "block_id": block_id("approval", &v),
                "elements": [approve, reject],
            }));
        }
        Decision::Approved => {
            let lines: Vec<String> = view
                .state
                .approvals
                .iter()
                .map(|a| format!("✅ Approved by {} at {}", who(ctx, &a.approver), when(a.at)))
                .collect();
            let line = if lines.is_empty() {
                "✅ Approved".to_string()
            } else {
                lines.join("\n")
            };
            tail.push(context(&[line]));
        }
        Decision::Rejected => {
            let line = match view.state.outcome.as_deref() {
                Some(r) => format!("❌ Rejected — {}", fit(r, 1000)),
                None => "❌ Rejected".to_string(),
            };
            tail.push(context(&[line]));
        }
        Decision::Withdrawn => {
            let line = match view.state.outcome.as_deref() {
                Some(r) => format!("↩️ Withdrawn — {}", fit(r, 1000)),
                None => "↩️ Withdrawn".to_string(),
            };
            tail.push(context(&[line]));
        }
        Decision::Expired => tail.push(context(&[
            "⏱ Expired — re-request from the console".to_string()
        ])),
    }
    if let Some((_, _, long)) = &outcome {
        tail.push(context(std::slice::from_ref(long)));
    }

    // Statements: in plan order when they fit; otherwise the riskiest ones
    // and a summary line for the rest.
    let room = limits::MESSAGE_BLOCKS - head.len() - tail.len() - 1;
    let fixed_text = text_len(&head) + text_len(&tail) + 300;
    let sql_max = if statements.len() <= 8 { 600 } else { 160 };
    let mut order: Vec<usize> = (0..statements.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(statements[i].1.risk), i));
    let mut chosen = Vec::new();
    let mut used = fixed_text;
    for i in order {
        if chosen.len() >= room {
            break;
        }
        let (ver, st) = statements[i];
        let b = statement_block(ver, st, sql_max, ctx, &digest);
        let n = text_len(std::slice::from_ref(&b));
        if used + n > limits::TOTAL_TEXT {
            break;
        }
        used += n;
        chosen.push((i, b));
    }
    chosen.sort_by_key(|(i, _)| *i);
    let shown = chosen.len();
    let mut blocks = head;
    blocks.extend(chosen.into_iter().map(|(_, b)| b));
    if shown < statements.len() {
        let by = |r: Risk| statements.iter().filter(|(_, s)| s.risk == r).count();
        let mut line = format!(
            "*{} of {} statements shown* (riskiest first). Whole plan: {} high, {} medium, {} low.",
            shown,
            statements.len(),
            by(Risk::High),
            by(Risk::Medium),
            by(Risk::Low)
        );
        if let Some(t) = &ctx.links.plan {
            let _ = write!(line, " <{}|Full plan>", fill(t, &vars));
        }
        blocks.push(section(&line));
    }
    blocks.extend(tail);

    let mut text = format!(
        "cutover: {} on {} — {} risk, {} statement(s)",
        versions,
        ctx.target,
        plan.risk,
        statements.len()
    );
    match decision {
        Decision::Pending { .. } => text.push_str(" — approval needed"),
        Decision::Approved => text.push_str(" — approved"),
        Decision::Rejected => text.push_str(" — rejected"),
        Decision::Withdrawn => text.push_str(" — withdrawn"),
        Decision::Expired => text.push_str(" — expired"),
        Decision::NotRequested => {}
    }
    if let Some((_, short, _)) = &outcome {
        let _ = write!(text, " — {short}");
    }
    Message {
        text: fit(&text, limits::FALLBACK_TEXT),
        blocks,
    }
}

/// After the run: (icon, short title, long line) for the pre-flight's final state.
fn outcome_line(view: &RunView, ctx: &RenderCtx<'_>) -> Option<(&'static str, String, String)> {
    let s = &view.state;
    let took = match (s.started_at, view.ended_at) {
        (Some(a), Some(b)) => duration((b - a).num_milliseconds() as f64 / 1000.0),
        _ => "?".into(),
    };
    let reason = s
        .outcome
        .as_deref()
        .map(|o| fit(o, 1000))
        .unwrap_or_default();
    match s.phase {
        Phase::Succeeded => Some((
            "✅",
            format!("completed in {took}"),
            format!("✅ Completed in {took}"),
        )),
        Phase::Failed => Some(("❌", "failed".into(), format!("❌ Failed: {reason}"))),
        Phase::Aborted => Some(("🛑", "aborted".into(), format!("🛑 {reason}"))),
        Phase::Interrupted => Some((
            "⚠️",
            "interrupted".into(),
            "⚠️ Interrupted — the supervisor stopped; see the console".into(),
        )),
        _ => {
            let _ = ctx;
            None
        }
    }
}

fn phase_label(view: &RunView) -> String {
    let s = &view.state;
    let base = match s.phase {
        Phase::Running => "▶️ Running",
        Phase::Paused => "⏸ Paused",
        Phase::Throttled => "🐢 Throttled",
        Phase::ReadyToCutOver => "⏳ Ready to cut over",
        Phase::CuttingOver => "🔀 Cutting over",
        Phase::Succeeded => "✅ Succeeded",
        Phase::Failed => "❌ Failed",
        Phase::Aborted => "🛑 Aborted",
        Phase::Interrupted => "⚠️ Interrupted",
        Phase::Approved => "✅ Approved, not started",
        Phase::WaitingForWindow => "🕒 Waiting for a window",
        Phase::AwaitingApproval => "✋ Awaiting approval",
        Phase::Planned => "Planned",
        Phase::Rejected => "❌ Rejected",
        Phase::Withdrawn => "↩️ Withdrawn",
        Phase::Expired => "⏱ Expired",
    };
    let mut out = base.to_string();
    for (on, what) in [
        (s.pause_pending, "pause requested"),
        (s.resume_pending, "resume requested"),
        (s.abort_pending, "abort requested"),
        (s.cut_over_pending, "cut-over requested"),
    ] {
        if on {
            let _ = write!(out, " · _{what}_");
        }
    }
    out
}

/// The progress message (a thread reply, edited in place).
pub fn progress(view: &RunView, ctx: &RenderCtx<'_>) -> Message {
    let s = &view.state;
    let risk = s.spec.as_ref().map_or(Risk::High, |sp| sp.risk);
    let digest = s
        .spec
        .as_ref()
        .map(|sp| sp.binding.plan_digest.clone())
        .unwrap_or_default();
    let max_lag = s.max_lag_millis.unwrap_or(1500) as f64 / 1000.0;
    let mut blocks = vec![section(&format!("*{}*", phase_label(view)))];
    let mut text = format!("cutover {} on {}: {}", ctx.run, ctx.target, s.phase);

    let p = view.progress.as_ref().and_then(|st| st.progress.clone());
    let mut fields = Vec::new();
    if let Some(p) = &p {
        let rows = match p.rows_total {
            Some(t) => format!("{} / {}", count(p.rows_copied), count(t)),
            None => count(p.rows_copied),
        };
        fields.push(format!("*Rows*\n{rows}"));
        // One fold for every surface: unclamped percent, rate only over
        // real copying, ETA from the recent rate (see `run::copyview`).
        if let Some(pct) = view.copy.percent() {
            let filled = ((pct / 10.0).round() as usize).min(10);
            let label = crate::run::copyview::percent_label(pct);
            fields.push(format!(
                "*Progress*\n{}{} {label}",
                "█".repeat(filled),
                "░".repeat(10 - filled)
            ));
            let _ = write!(text, ", {label}");
        }
        if let Some(r) = view.rate() {
            fields.push(format!("*Rate*\n{} rows/s", count(r as u64)));
        }
        if view.copy.copying() {
            fields.push(format!(
                "*ETA*\n{}",
                view.copy.eta_seconds().map_or("unknown".into(), duration)
            ));
        }
    }
    let mut lag_lines = Vec::new();
    for l in view.lag.values().take(8) {
        let over = crate::lag::over_limit(l, max_lag);
        let v = l
            .seconds
            .filter(|x| x.is_finite())
            .map_or("unknown".to_string(), |x| format!("{x:.1}s"));
        lag_lines.push(format!(
            "{} `{}` {v} / {max_lag:.1}s",
            if over { "🔴" } else { "🟢" },
            fit(&l.replica, 80)
        ));
    }
    if !lag_lines.is_empty() {
        fields.push(format!("*Replica lag*\n{}", lag_lines.join("\n")));
    }
    if !fields.is_empty() {
        let f: Vec<Value> = fields.iter().take(10).map(|t| mrkdwn(t, 2000)).collect();
        blocks.push(json!({"type": "section", "fields": f}));
    }
    let mut notes = Vec::new();
    if let Some(t) = &view.throttle {
        notes.push(format!("Throttled: {}", fit(t, 500)));
    }
    if let Some(w) = &s.window_note {
        notes.push(format!("Window: {}", fit(w, 500)));
    }
    // A pause waiting for the running statement (native ALTER, index build) says so.
    if s.phase != Phase::Paused
        && let Some(n) = crate::run::copyview::pause_note(s.pause_pending, &view.copy)
    {
        notes.push(format!("Pause: {}", fit(&n, 500)));
    }
    // What the current executor's controls can and cannot do (pt-osc: pause latency).
    notes.extend(s.executor_notes.iter().map(|n| esc(n)));
    if !notes.is_empty() {
        blocks.push(context(&[notes.join(" · ")]));
    }
    let v = action_value(ctx, view, &digest);
    // Only the controls the current executor honours (all while it is unknown).
    let can = s.capabilities.unwrap_or(crate::exec::Capabilities {
        pause: true,
        postpone_cut_over: true,
        set_chunk_size: true,
        set_max_lag: true,
        lag_throttle: false,
    });
    let mut buttons = Vec::new();
    let ph = s.phase;
    let verb = |a: Action| match a {
        Action::Abort => "Abort",
        _ => "Cut over",
    };
    if matches!(ph, Phase::Running | Phase::Throttled) && !s.pause_pending && can.pause {
        let mut b = button(Action::Pause, "Pause", &v, None);
        b["confirm"] = confirm(
            "Pause the migration?",
            &format!("Pause copying on *{}*.", fit(ctx.target, 80)),
            "Pause",
            false,
        );
        buttons.push(b);
    }
    if ph == Phase::Paused && !s.resume_pending && can.pause {
        let mut b = button(Action::Resume, "Resume", &v, Some("primary"));
        b["confirm"] = confirm(
            "Resume the migration?",
            &format!("Resume copying on *{}*.", fit(ctx.target, 80)),
            "Resume",
            false,
        );
        buttons.push(b);
    }
    if ph == Phase::ReadyToCutOver && !s.cut_over_pending && can.postpone_cut_over {
        let mut b = button(Action::CutOver, "Cut over", &v, Some("primary"));
        let extra = if risk == Risk::High {
            " You will be asked to type the table name."
        } else {
            ""
        };
        b["confirm"] = confirm(
            &format!("{} on {}?", verb(Action::CutOver), ctx.target),
            &format!("Swap in the new table on *{}*.{extra}", fit(ctx.target, 80)),
            "Cut over",
            false,
        );
        buttons.push(b);
    }
    if (ph.is_executing() || ph == Phase::Interrupted) && !s.abort_pending {
        let mut b = button(Action::Abort, "Abort", &v, Some("danger"));
        let extra = if risk == Risk::High {
            " You will be asked to type the table name."
        } else {
            ""
        };
        b["confirm"] = confirm(
            &format!("{} on {}?", verb(Action::Abort), ctx.target),
            &format!(
                "Stop the migration on *{}*; what it left behind is listed afterwards.{extra}",
                fit(ctx.target, 80)
            ),
            "Abort",
            true,
        );
        buttons.push(b);
    }
    if !buttons.is_empty() {
        blocks.push(json!({
            "type": "actions",
            "block_id": block_id("ctl", &v),
            "elements": buttons,
        }));
    }
    Message {
        text: fit(&text, limits::FALLBACK_TEXT),
        blocks,
    }
}

/// The completion summary (thread reply with `reply_broadcast`).
pub fn completion(view: &RunView, ctx: &RenderCtx<'_>) -> Message {
    let s = &view.state;
    let (icon, word) = match s.phase {
        Phase::Succeeded => ("✅", "completed"),
        Phase::Failed => ("❌", "failed"),
        Phase::Aborted => ("🛑", "aborted"),
        Phase::Rejected => ("❌", "rejected"),
        Phase::Withdrawn => ("↩️", "withdrawn"),
        Phase::Expired => ("⏱", "expired"),
        _ => ("⚠️", "ended"),
    };
    let took = match (s.started_at, view.ended_at) {
        (Some(a), Some(b)) => duration((b - a).num_milliseconds() as f64 / 1000.0),
        _ => "—".into(),
    };
    let mut blocks = vec![section(&format!(
        "{icon} *{}* {word} on `{}` in {took}",
        fit(ctx.run, 80),
        fit(ctx.target, 80)
    ))];
    let rows = view
        .progress
        .as_ref()
        .and_then(|p| p.progress.as_ref())
        .map_or("—".into(), |p| count(p.rows_copied));
    let max_lag = match (view.max_lag_seen, view.unknown_lag_readings) {
        (Some(m), 0) => format!("{m:.1}s"),
        (Some(m), u) => format!("{m:.1}s ({u} unknown readings)"),
        (None, 0) => "—".into(),
        (None, u) => format!("unknown ({u} readings)"),
    };
    let approvers: Vec<String> = view.approvers().iter().map(|p| who(ctx, p)).collect();
    let interveners: Vec<String> = view
        .interventions
        .iter()
        .map(|i| format!("{} {}", who(ctx, &i.person), i.what))
        .collect();
    let fields = [
        format!("*Duration*\n{took}"),
        format!("*Rows*\n{rows}"),
        format!("*Max lag seen*\n{max_lag}"),
        format!(
            "*Approved by*\n{}",
            if approvers.is_empty() {
                "—".into()
            } else {
                approvers.join(", ")
            }
        ),
        format!(
            "*Interventions*\n{}",
            if interveners.is_empty() {
                "none".into()
            } else {
                clip_mrkdwn(&interveners.join(", "), 1500)
            }
        ),
    ];
    let f: Vec<Value> = fields.iter().map(|t| mrkdwn(t, 2000)).collect();
    blocks.push(json!({"type": "section", "fields": f}));
    if let Some(o) = &s.outcome {
        blocks.push(section(&format!("*Reason:* {}", fit(o, 2500))));
    }
    if let Some(a) = &view.audit_head {
        // Check later with `cutover audit verify --expect-head "<records> <tag>"`.
        blocks.push(
            json!({"type": "context", "elements": [mrkdwn(&format!("audit head `{a}`"), 300)]}),
        );
    }
    if !view.leftovers.is_empty() {
        let mut t = String::from("*Left behind* (clean up by hand):");
        for l in view.leftovers.iter().take(20) {
            let _ = write!(t, "\n• {} `{}`", fit(&l.kind, 40), fit(&l.name, 130));
            if let Some(c) = &l.cleanup {
                let _ = write!(t, " — `{}`", fit(c, 200));
            }
        }
        blocks.push(section(&t));
    }
    let text = format!(
        "cutover {} {word} on {} in {took}; rows {rows}; max lag {max_lag}",
        ctx.run, ctx.target
    );
    Message {
        text: fit(&text, limits::FALLBACK_TEXT),
        blocks,
    }
}

/// A one-line milestone reply (paused by X, lag over the limit, …) from
/// plain text: everything in it is escaped.
pub fn milestone(line: &str) -> Message {
    Message {
        text: fit(line, limits::FALLBACK_TEXT),
        blocks: vec![section(&fit(line, limits::SECTION_TEXT))],
    }
}

/// The milestone reply an event calls for, if any: the person as a mention
/// (or their escaped name), and every reason typed by someone escaped and
/// bounded, so `<!channel>` stays text and a long reason cannot push the
/// line over Slack's limits.
pub fn milestone_for(event: &crate::run::Event, ctx: &RenderCtx<'_>) -> Option<Message> {
    use crate::run::Event;
    const REASON: usize = 1500;
    let line = match event {
        Event::PauseRequested { person } => format!("⏸ Pause requested by {}", who(ctx, person)),
        Event::ResumeRequested { person } => {
            format!("▶️ Resume requested by {}", who(ctx, person))
        }
        Event::AbortRequested { person, reason } => format!(
            "🛑 Abort requested by {}: {}",
            who(ctx, person),
            fit(reason, REASON)
        ),
        Event::CutOverRequested { person } => {
            format!("🔀 Cut-over requested by {}", who(ctx, person))
        }
        Event::WindowClosed { reason, .. } => format!("🕒 Window closed: {}", fit(reason, REASON)),
        Event::Interrupted { reason } => format!("⚠️ Interrupted: {}", fit(reason, REASON)),
        _ => return None,
    };
    Some(Message {
        // The fallback shows in notifications: same escaped line, no blocks needed.
        text: clip_mrkdwn(&line, limits::FALLBACK_TEXT),
        blocks: vec![section(&line)],
    })
}

/// The modal asking for a reject reason.
pub fn reject_modal(v: &ActionValue, target: &str) -> Value {
    json!({
        "type": "modal",
        "callback_id": "reject",
        "private_metadata": v.encode(),
        "title": plain("Reject migration", limits::MODAL_TITLE),
        "submit": plain("Reject", 24),
        "close": plain("Cancel", 24),
        "blocks": [
            section(&format!("Reject run `{}` on *{}*. The reason is recorded in the audit trail.", fit(&v.run, 80), fit(target, 80))),
            {
                "type": "input",
                "block_id": "reason",
                "label": plain("Reason", 2000),
                "element": {"type": "plain_text_input", "action_id": "reason_input", "multiline": true, "min_length": 3}
            }
        ]
    })
}

/// The high-risk modal for abort or cut-over: type the table name (and, for
/// abort, a reason).
pub fn typed_table_modal(
    action: Action,
    v: &ActionValue,
    target: &str,
    tables: &[String],
) -> Value {
    let (title, submit) = match action {
        Action::Abort => ("Abort migration", "Abort"),
        _ => ("Cut over", "Cut over"),
    };
    let mut blocks = vec![
        section(&format!(
            "This is a *high-risk* run on *{}*. Type the table name to confirm ({}).",
            fit(target, 80),
            fit(&tables.join(", "), 500)
        )),
        json!({
            "type": "input",
            "block_id": "table",
            "label": plain("Table name", 2000),
            "element": {"type": "plain_text_input", "action_id": "table_input"}
        }),
    ];
    if action == Action::Abort {
        blocks.push(json!({
            "type": "input",
            "block_id": "reason",
            "label": plain("Reason", 2000),
            "element": {"type": "plain_text_input", "action_id": "reason_input", "multiline": true}
        }));
    }
    json!({
        "type": "modal",
        "callback_id": action.as_str(),
        "private_metadata": v.encode(),
        "title": plain(title, limits::MODAL_TITLE),
        "submit": plain(submit, 24),
        "close": plain("Cancel", 24),
        "blocks": blocks,
    })
}

/// The modal asking for an abort reason (not high risk).
pub fn abort_reason_modal(v: &ActionValue, target: &str) -> Value {
    json!({
        "type": "modal",
        "callback_id": "abort",
        "private_metadata": v.encode(),
        "title": plain("Abort migration", limits::MODAL_TITLE),
        "submit": plain("Abort", 24),
        "close": plain("Cancel", 24),
        "blocks": [
            section(&format!("Abort run `{}` on *{}*.", fit(&v.run, 80), fit(target, 80))),
            {
                "type": "input",
                "block_id": "reason",
                "label": plain("Reason", 2000),
                "element": {"type": "plain_text_input", "action_id": "reason_input", "multiline": true}
            }
        ]
    })
}
