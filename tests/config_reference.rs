//! The configuration docs and examples cannot rot: `docs/configuration.md`
//! names every key of every `cutover.toml` struct (and no key that does not
//! exist), and `examples/local/` loads and plans with no database.

use cutover::cli::PlanOpts;
use cutover::config::Config;
use cutover::model::{Engine, Risk};
use serde::de::{self, DeserializeOwned, Visitor};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A deserializer that answers only one question: which field names does a
/// derived `Deserialize` struct accept? serde hands that list to
/// `deserialize_struct`, so probing needs no sample value.
struct Probe;

#[derive(Debug)]
enum ProbeError {
    Fields(&'static [&'static str]),
    Other(String),
}

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProbeError::Fields(f2) => write!(f, "a struct with fields {f2:?}"),
            ProbeError::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ProbeError {}

impl de::Error for ProbeError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        ProbeError::Other(msg.to_string())
    }
}

impl<'de> de::Deserializer<'de> for Probe {
    type Error = ProbeError;

    fn deserialize_any<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, ProbeError> {
        Err(ProbeError::Other("not a struct with named fields".into()))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _v: V,
    ) -> Result<V::Value, ProbeError> {
        Err(ProbeError::Fields(fields))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

fn fields<T: DeserializeOwned>() -> &'static [&'static str] {
    match T::deserialize(Probe) {
        Err(ProbeError::Fields(f)) => f,
        Err(e) => panic!("{}: {e}", std::any::type_name::<T>()),
        Ok(_) => panic!(
            "{}: the probe has no value to give",
            std::any::type_name::<T>()
        ),
    }
}

/// The text under a heading, up to the next heading of any level.
fn section<'a>(doc: &'a str, heading: &str) -> &'a str {
    let start = doc
        .lines()
        .position(|l| l.starts_with('#') && l.trim_start_matches('#').trim() == heading)
        .unwrap_or_else(|| panic!("docs/configuration.md has no heading {heading}"));
    let lines: Vec<&str> = doc.lines().collect();
    let end = lines[start + 1..]
        .iter()
        .position(|l| l.starts_with('#'))
        .map_or(lines.len(), |p| start + 1 + p);
    let from = lines[..start].iter().map(|l| l.len() + 1).sum::<usize>();
    let to = lines[..end].iter().map(|l| l.len() + 1).sum::<usize>();
    &doc[from..to.min(doc.len())]
}

/// The keys a section's table documents: the first cell of each row.
fn table_keys(section: &str) -> Vec<&str> {
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once("` |").map(|(k, _)| k))
        .collect()
}

/// Every struct `Config` deserializes, with the heading that documents it.
/// A new field in any of them (a new section is a new field of `Config`)
/// fails here until the reference describes it.
fn documented_structs() -> Vec<(&'static str, &'static [&'static str])> {
    use cutover::policy::config as p;
    vec![
        ("`[[targets]]`", fields::<cutover::config::TargetConfig>()),
        (
            "`[[targets]].replicas`",
            fields::<cutover::config::ReplicaConfig>(),
        ),
        (
            "`[targets.throughput]`",
            fields::<cutover::risk::rules::Throughput>(),
        ),
        ("`[targets.lag]`", fields::<cutover::lag::LagSettings>()),
        ("`[rules]`", fields::<cutover::config::RulesConfig>()),
        ("`[policy]`", fields::<p::PolicyConfig>()),
        ("`[[policy.people]]`", fields::<p::PersonConfig>()),
        ("`[[policy.groups]]`", fields::<p::GroupConfig>()),
        ("`[policy.permissions]`", fields::<p::PermissionsConfig>()),
        ("`[policy.approvals]`", fields::<p::ApprovalsConfig>()),
        ("`[[policy.approvals.rules]]`", fields::<p::ApprovalRule>()),
        ("`[policy.windows]`", fields::<p::WindowsConfig>()),
        (
            "`[[policy.windows.peak]]` and `[[policy.windows.maintenance]]`",
            fields::<p::RecurringWindow>(),
        ),
        ("`[[policy.windows.freezes]]`", fields::<p::Freeze>()),
        ("`[policy.promotion]`", fields::<p::PromotionConfig>()),
        ("`[service]`", fields::<cutover::serve::ServiceConfig>()),
        ("`[slack]`", fields::<cutover::slack::SlackConfig>()),
        (
            "`[slack.links]`",
            fields::<cutover::slack::config::LinkTemplates>(),
        ),
        (
            "`[console]`",
            fields::<cutover::tui::config::ConsoleConfig>(),
        ),
    ]
}

#[test]
fn the_reference_documents_every_key_and_no_other() {
    let doc = read(&root().join("docs/configuration.md"));
    for (heading, keys) in documented_structs() {
        let text = section(&doc, heading);
        let rows = table_keys(text);
        for k in keys {
            assert!(
                rows.contains(k),
                "docs/configuration.md, section {heading}: key `{k}` is not documented (rows: {rows:?})"
            );
        }
        for r in &rows {
            assert!(
                keys.contains(r),
                "docs/configuration.md, section {heading}: documents `{r}`, which the parser does not accept"
            );
        }
    }
    // `during_peak`/`during_freeze` are tables of one decision per risk.
    let windows = section(&doc, "`[policy.windows]`");
    for k in fields::<cutover::policy::config::RiskDecisions>() {
        assert!(windows.contains(&format!("`{k}`")), "risk decision `{k}`");
    }
    // Every top-level section has its own heading.
    for k in fields::<Config>() {
        let heading = if *k == "targets" {
            "`[[targets]]`".to_string()
        } else {
            format!("`[{k}]`")
        };
        section(&doc, &heading);
    }
}

#[test]
fn the_probe_sees_a_new_field() {
    // The probe itself must be able to fail: it reports the fields serde sees.
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Two {
        a: u8,
        #[serde(default)]
        b: u8,
        #[serde(skip)]
        c: u8,
    }
    assert_eq!(fields::<Two>(), &["a", "b"]);
    let doc =
        "## `[x]`\n\n| Key | Type |\n|-----|------|\n| `a` | int |\n\n## `[y]`\n| `b` | int |\n";
    assert_eq!(table_keys(section(doc, "`[x]`")), vec!["a"]);
}

fn plan(dir: &str, engine: &str) -> cutover::model::Plan {
    let opts = PlanOpts {
        paths: vec![root().join("examples/local").join(dir)],
        engine: Some(engine.into()),
        engine_version: None,
        source_format: None,
        target: None,
        stats: None,
        rules: None,
        config: Some(root().join("examples/local/cutover.toml")),
    };
    match cutover::cmd::plan::build(&opts) {
        Ok((p, _)) => p,
        Err(e) => panic!("examples/local/{dir}: {e}"),
    }
}

#[test]
fn the_local_example_loads_and_plans() {
    let path = root().join("examples/local/cutover.toml");
    let cfg = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let engine_of = |name: &str| {
        let t = cfg.target(name).unwrap_or_else(|e| panic!("{e}"));
        assert!(!t.replicas.is_empty(), "{name} has replicas");
        t.engine
    };
    assert_eq!(engine_of("local-pg"), Engine::Postgres);
    assert_eq!(engine_of("local-pg-staging"), Engine::Postgres);
    assert_eq!(engine_of("local-mariadb"), Engine::Mysql);
    // The recipe's second OS user approves through the group's socket.
    assert_eq!(cfg.policy.local_group.as_deref(), Some("cutover"));
    for user in ["root", "bob"] {
        assert!(
            cfg.policy
                .people
                .iter()
                .any(|p| p.local.iter().any(|l| l == user)),
            "{user} is a configured person"
        );
    }
    // Transcript mode: a valid [slack] section with no token file.
    let slack: cutover::slack::SlackConfig = cfg
        .slack
        .clone()
        .map(|v| v.try_into().unwrap_or_else(|e| panic!("[slack]: {e}")))
        .unwrap_or_else(|| panic!("the example has a [slack] section"));
    assert!(slack.bot_token_file.is_none() && slack.app_token_file.is_none());

    for (dir, engine) in [("pg", "postgres"), ("mariadb", "mariadb")] {
        let p = plan(dir, engine);
        assert_eq!(p.migrations.len(), 3, "{dir}");
        let risks: Vec<Risk> = p.migrations.iter().map(|m| m.risk).collect();
        assert_eq!(risks, vec![Risk::Low, Risk::Low, Risk::High], "{dir}");
        assert_eq!(p.risk, Risk::High, "{dir}");
    }
    // The production-shaped example loads too.
    Config::load(&root().join("examples/cutover.toml")).unwrap_or_else(|e| panic!("{e}"));
}
