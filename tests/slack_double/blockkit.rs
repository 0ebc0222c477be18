//! Block Kit validation as Slack's servers do it, written from the spec's
//! §5 table and Slack's block reference — deliberately independent of the
//! renderer (none of its constants are imported). Each problem is reported
//! the way Slack reports it in `response_metadata.messages`: `[ERROR] …`.

use serde_json::{Map, Value};
use std::collections::HashSet;

/// Why Slack refuses a message or view.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// The error code (`invalid_blocks`, `msg_too_long`, …).
    pub code: &'static str,
    /// `response_metadata.messages`.
    pub messages: Vec<String>,
}

fn refuse(code: &'static str, messages: Vec<String>) -> Result<(), Refusal> {
    Err(Refusal { code, messages })
}

struct Check {
    problems: Vec<String>,
    text_total: usize,
}

impl Check {
    fn err(&mut self, at: &str, what: impl AsRef<str>) {
        self.problems
            .push(format!("[ERROR] {} [json-pointer:{at}]", what.as_ref()));
    }

    fn keys(&mut self, at: &str, o: &Map<String, Value>, allowed: &[&str]) {
        for k in o.keys() {
            if !allowed.contains(&k.as_str()) {
                self.err(at, format!("unsupported key '{k}'"));
            }
        }
    }

    fn len(&mut self, at: &str, s: &str, max: usize, what: &str) {
        let n = s.chars().count();
        if n > max {
            self.err(
                at,
                format!("{what} must be at most {max} characters (got {n})"),
            );
        }
    }

    /// A text object; `plain_only` for fields that take `plain_text` only.
    fn text(&mut self, at: &str, v: &Value, max: usize, plain_only: bool) {
        let Some(o) = v.as_object() else {
            self.err(at, "must be a text object");
            return;
        };
        let ty = o.get("type").and_then(Value::as_str).unwrap_or("");
        match ty {
            "plain_text" => self.keys(at, o, &["type", "text", "emoji"]),
            "mrkdwn" if !plain_only => self.keys(at, o, &["type", "text", "verbatim"]),
            "mrkdwn" => self.err(at, "must be a plain_text object"),
            _ => self.err(at, format!("unknown text type '{ty}'")),
        }
        match o.get("text").and_then(Value::as_str) {
            None => self.err(at, "missing required field: text"),
            Some("") => self.err(at, "text must not be empty"),
            Some(t) => {
                self.len(at, t, max, "text");
                self.text_total += t.chars().count();
            }
        }
    }

    fn confirm(&mut self, at: &str, v: &Value) {
        let Some(o) = v.as_object() else {
            self.err(at, "confirm must be an object");
            return;
        };
        self.keys(at, o, &["title", "text", "confirm", "deny", "style"]);
        for (k, max, plain) in [
            ("title", 100, true),
            ("text", 300, false),
            ("confirm", 30, true),
            ("deny", 30, true),
        ] {
            match o.get(k) {
                Some(t) => self.text(&format!("{at}/{k}"), t, max, plain),
                None => self.err(at, format!("missing required field: {k}")),
            }
        }
        if let Some(s) = o.get("style")
            && !matches!(s.as_str(), Some("primary" | "danger"))
        {
            self.err(at, "style must be primary or danger");
        }
    }

    fn element(&mut self, at: &str, v: &Value, ids: &mut HashSet<String>) {
        let Some(o) = v.as_object() else {
            self.err(at, "element must be an object");
            return;
        };
        if let Some(id) = o.get("action_id") {
            match id.as_str() {
                Some(s) => {
                    self.len(at, s, 255, "action_id");
                    if !ids.insert(s.to_string()) {
                        self.err(at, format!("duplicate action_id '{s}'"));
                    }
                }
                None => self.err(at, "action_id must be a string"),
            }
        }
        match o.get("type").and_then(Value::as_str) {
            Some("button") => {
                self.keys(
                    at,
                    o,
                    &[
                        "type",
                        "text",
                        "action_id",
                        "url",
                        "value",
                        "style",
                        "confirm",
                        "accessibility_label",
                    ],
                );
                match o.get("text") {
                    Some(t) => self.text(&format!("{at}/text"), t, 75, true),
                    None => self.err(at, "missing required field: text"),
                }
                if let Some(s) = o.get("value").and_then(Value::as_str) {
                    self.len(at, s, 2000, "value");
                }
                if let Some(s) = o.get("url").and_then(Value::as_str) {
                    self.len(at, s, 3000, "url");
                }
                if let Some(s) = o.get("style")
                    && !matches!(s.as_str(), Some("primary" | "danger"))
                {
                    self.err(at, "style must be primary or danger");
                }
                if let Some(c) = o.get("confirm") {
                    self.confirm(&format!("{at}/confirm"), c);
                }
            }
            Some("plain_text_input") => {
                self.keys(
                    at,
                    o,
                    &[
                        "type",
                        "action_id",
                        "initial_value",
                        "multiline",
                        "min_length",
                        "max_length",
                        "placeholder",
                        "dispatch_action_config",
                        "focus_on_load",
                    ],
                );
                if let Some(p) = o.get("placeholder") {
                    self.text(&format!("{at}/placeholder"), p, 150, true);
                }
                if let Some(n) = o.get("min_length")
                    && n.as_u64().is_none_or(|n| n > 3000)
                {
                    self.err(at, "min_length must be 0..3000");
                }
            }
            Some(t) => self.err(at, format!("unsupported element type '{t}'")),
            None => self.err(at, "missing required field: type"),
        }
    }

    fn block(&mut self, at: &str, b: &Value, block_ids: &mut HashSet<String>, in_view: bool) {
        let Some(o) = b.as_object() else {
            self.err(at, "block must be an object");
            return;
        };
        if let Some(id) = o.get("block_id") {
            match id.as_str() {
                Some(s) => {
                    self.len(at, s, 255, "block_id");
                    if !block_ids.insert(s.to_string()) {
                        self.err(at, format!("duplicate block_id '{s}'"));
                    }
                }
                None => self.err(at, "block_id must be a string"),
            }
        }
        let ty = o.get("type").and_then(Value::as_str).unwrap_or("");
        match ty {
            "section" => {
                self.keys(
                    at,
                    o,
                    &["type", "block_id", "text", "fields", "accessory", "expand"],
                );
                if let Some(t) = o.get("text") {
                    self.text(&format!("{at}/text"), t, 3000, false);
                }
                match o.get("fields").map(Value::as_array) {
                    Some(Some(f)) => {
                        if f.len() > 10 {
                            self.err(
                                at,
                                format!("fields must have at most 10 items (got {})", f.len()),
                            );
                        }
                        for (i, x) in f.iter().enumerate() {
                            self.text(&format!("{at}/fields/{i}"), x, 2000, false);
                        }
                    }
                    Some(None) => self.err(at, "fields must be an array"),
                    None if o.get("text").is_none() => {
                        self.err(at, "a section needs text or fields")
                    }
                    None => {}
                }
                if let Some(a) = o.get("accessory") {
                    self.element(&format!("{at}/accessory"), a, &mut HashSet::new());
                }
            }
            "header" => {
                self.keys(at, o, &["type", "block_id", "text"]);
                match o.get("text") {
                    Some(t) => self.text(&format!("{at}/text"), t, 150, true),
                    None => self.err(at, "missing required field: text"),
                }
            }
            "divider" => self.keys(at, o, &["type", "block_id"]),
            "context" => {
                self.keys(at, o, &["type", "block_id", "elements"]);
                match o.get("elements").and_then(Value::as_array) {
                    Some(e) if e.is_empty() || e.len() > 10 => self.err(
                        at,
                        format!("elements must have 1..10 items (got {})", e.len()),
                    ),
                    Some(e) => {
                        for (i, x) in e.iter().enumerate() {
                            let p = format!("{at}/elements/{i}");
                            if x["type"] == "image" {
                                let ok = x.as_object().is_some_and(|m| {
                                    m.keys().all(|k| {
                                        ["type", "image_url", "alt_text", "slack_file"]
                                            .contains(&k.as_str())
                                    })
                                });
                                if !ok || x["alt_text"].as_str().is_none() {
                                    self.err(&p, "invalid image element");
                                }
                            } else {
                                // Context text has no own limit beyond the message's.
                                self.text(&p, x, 3000, false);
                            }
                        }
                    }
                    None => self.err(at, "missing required field: elements"),
                }
            }
            "actions" => {
                self.keys(at, o, &["type", "block_id", "elements"]);
                match o.get("elements").and_then(Value::as_array) {
                    Some(e) if e.is_empty() || e.len() > 25 => self.err(
                        at,
                        format!("elements must have 1..25 items (got {})", e.len()),
                    ),
                    Some(e) => {
                        let mut ids = HashSet::new();
                        for (i, x) in e.iter().enumerate() {
                            self.element(&format!("{at}/elements/{i}"), x, &mut ids);
                        }
                    }
                    None => self.err(at, "missing required field: elements"),
                }
            }
            "input" if in_view => {
                self.keys(
                    at,
                    o,
                    &[
                        "type",
                        "block_id",
                        "label",
                        "element",
                        "hint",
                        "optional",
                        "dispatch_action",
                    ],
                );
                match o.get("label") {
                    Some(t) => self.text(&format!("{at}/label"), t, 2000, true),
                    None => self.err(at, "missing required field: label"),
                }
                if let Some(h) = o.get("hint") {
                    self.text(&format!("{at}/hint"), h, 2000, true);
                }
                match o.get("element") {
                    Some(e) => self.element(&format!("{at}/element"), e, &mut HashSet::new()),
                    None => self.err(at, "missing required field: element"),
                }
            }
            "input" => self.err(at, "input blocks are only allowed in views"),
            "markdown" => {
                self.keys(at, o, &["type", "block_id", "text"]);
                match o.get("text").and_then(Value::as_str) {
                    Some(t) if !t.is_empty() => self.len(at, t, 12000, "text"),
                    _ => self.err(at, "missing required field: text"),
                }
            }
            "rich_text" => {
                self.keys(at, o, &["type", "block_id", "elements"]);
                match o.get("elements").and_then(Value::as_array) {
                    Some(e) if !e.is_empty() => {
                        for (i, x) in e.iter().enumerate() {
                            self.rich_container(&format!("{at}/elements/{i}"), x);
                        }
                    }
                    _ => self.err(at, "elements must have at least 1 item"),
                }
            }
            "" => self.err(at, "missing required field: type"),
            t => self.err(at, format!("unsupported block type '{t}'")),
        }
    }

    /// A `rich_text` block's child (Slack's rich text reference; the spec's
    /// §5 table lists no limits for it, so only the shape and the message's
    /// cumulative text count).
    fn rich_container(&mut self, at: &str, v: &Value) {
        let Some(o) = v.as_object() else {
            self.err(at, "must be an object");
            return;
        };
        let ty = o.get("type").and_then(Value::as_str).unwrap_or("");
        match ty {
            "rich_text_section" | "rich_text_quote" => self.keys(at, o, &["type", "elements"]),
            "rich_text_preformatted" => self.keys(at, o, &["type", "elements", "border"]),
            _ => {
                self.err(at, format!("unsupported rich text element '{ty}'"));
                return;
            }
        }
        match o.get("elements").and_then(Value::as_array) {
            Some(e) if !e.is_empty() => {
                for (i, x) in e.iter().enumerate() {
                    self.rich_leaf(&format!("{at}/elements/{i}"), x);
                }
            }
            _ => self.err(at, "elements must have at least 1 item"),
        }
    }

    fn rich_leaf(&mut self, at: &str, v: &Value) {
        let Some(o) = v.as_object() else {
            self.err(at, "must be an object");
            return;
        };
        let ty = o.get("type").and_then(Value::as_str).unwrap_or("");
        match ty {
            "text" => self.keys(at, o, &["type", "text", "style"]),
            "link" => {
                self.keys(at, o, &["type", "url", "text", "style", "unsafe"]);
                if o.get("url")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    self.err(at, "missing required field: url");
                }
            }
            "user" => self.keys(at, o, &["type", "user_id", "style"]),
            _ => {
                self.err(at, format!("unsupported rich text leaf '{ty}'"));
                return;
            }
        }
        if let Some(style) = o.get("style") {
            match style.as_object() {
                Some(m) => {
                    for (k, x) in m {
                        if !["bold", "italic", "strike", "code"].contains(&k.as_str())
                            || !x.is_boolean()
                        {
                            self.err(at, format!("invalid style '{k}'"));
                        }
                    }
                }
                None => self.err(at, "style must be an object"),
            }
        }
        match o.get("text") {
            Some(Value::String(t)) if t.is_empty() => self.err(at, "text must not be empty"),
            Some(Value::String(t)) => self.text_total += t.chars().count(),
            Some(_) => self.err(at, "text must be a string"),
            None if ty == "text" => self.err(at, "missing required field: text"),
            None => {}
        }
    }
}

/// `chat.postMessage` / `chat.update` / `chat.postEphemeral`: the message
/// arguments. `update` enables the 4,000-character fallback rule (Slack
/// documents `msg_too_long` for `chat.update` and `chat.postEphemeral`).
pub fn message(args: &Value, strict_text: bool) -> Result<(), Refusal> {
    let text = args.get("text").and_then(Value::as_str).unwrap_or("");
    let blocks = args.get("blocks");
    if text.is_empty() && blocks.is_none_or(|b| b.as_array().is_some_and(Vec::is_empty)) {
        return refuse("no_text", vec![]);
    }
    if strict_text && text.chars().count() > 4000 {
        return refuse("msg_too_long", vec![]);
    }
    let Some(blocks) = blocks else {
        return Ok(());
    };
    // Slack also accepts blocks as a JSON string (form-encoded callers).
    let parsed;
    let blocks = match blocks {
        Value::String(s) => {
            parsed = serde_json::from_str::<Value>(s).map_err(|_| Refusal {
                code: "invalid_blocks_format",
                messages: vec![],
            })?;
            &parsed
        }
        b => b,
    };
    let Some(list) = blocks.as_array() else {
        return refuse("invalid_blocks_format", vec![]);
    };
    let mut c = Check {
        problems: Vec::new(),
        text_total: 0,
    };
    if list.len() > 50 {
        c.err(
            "/blocks",
            format!("no more than 50 items allowed (got {})", list.len()),
        );
    }
    let mut ids = HashSet::new();
    for (i, b) in list.iter().enumerate() {
        c.block(&format!("/blocks/{i}"), b, &mut ids, false);
    }
    if !c.problems.is_empty() {
        return refuse("invalid_blocks", c.problems);
    }
    // Undocumented cumulative limit, observed at about 12–13k characters.
    if c.text_total > 12_000 {
        return refuse("msg_blocks_too_long", vec![]);
    }
    Ok(())
}

/// `views.open` / `views.update`: a modal.
pub fn view(v: &Value) -> Result<(), Refusal> {
    if v.to_string().len() > 250_000 {
        return refuse("view_too_large", vec![]);
    }
    let Some(o) = v.as_object() else {
        return refuse(
            "invalid_arguments",
            vec!["[ERROR] view must be an object".into()],
        );
    };
    let mut c = Check {
        problems: Vec::new(),
        text_total: 0,
    };
    c.keys(
        "/view",
        o,
        &[
            "type",
            "title",
            "blocks",
            "close",
            "submit",
            "private_metadata",
            "callback_id",
            "clear_on_close",
            "notify_on_close",
            "external_id",
            "submit_disabled",
        ],
    );
    if o.get("type").and_then(Value::as_str) != Some("modal") {
        c.err("/view/type", "type must be modal");
    }
    match o.get("title") {
        Some(t) => c.text("/view/title", t, 24, true),
        None => c.err("/view", "missing required field: title"),
    }
    for k in ["submit", "close"] {
        if let Some(t) = o.get(k) {
            c.text(&format!("/view/{k}"), t, 24, true);
        }
    }
    if let Some(s) = o.get("callback_id").and_then(Value::as_str) {
        c.len("/view/callback_id", s, 255, "callback_id");
    }
    if let Some(s) = o.get("private_metadata").and_then(Value::as_str) {
        c.len("/view/private_metadata", s, 3000, "private_metadata");
    }
    let blocks = o.get("blocks").and_then(Value::as_array);
    match blocks {
        Some(b) if b.is_empty() || b.len() > 100 => c.err(
            "/view/blocks",
            format!("must have 1..100 items (got {})", b.len()),
        ),
        Some(b) => {
            let mut ids = HashSet::new();
            let mut inputs = false;
            for (i, x) in b.iter().enumerate() {
                inputs |= x["type"] == "input";
                c.block(&format!("/view/blocks/{i}"), x, &mut ids, true);
            }
            if inputs && o.get("submit").is_none() {
                c.err("/view", "a view with input blocks needs submit");
            }
        }
        None => c.err("/view", "missing required field: blocks"),
    }
    if c.problems.is_empty() {
        Ok(())
    } else {
        refuse("invalid_blocks", c.problems)
    }
}
