//! Bad input gets an answer, never a panic: arbitrary text (SQL-ish fragments,
//! quotes, dollar tags, delimiters, non-ASCII) through splitting, analysis and
//! classification, for both engines.

use cutover::catalog::Catalog;
use cutover::migrate::{Directives, Migration, SourceFormat, TxWrap, sha256_hex};
use cutover::model::{Engine, EngineVersion, Risk};
use cutover::risk::{Context, RuleSet, classify};
use cutover::sql::split::split;
use proptest::prelude::*;

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("ALTER TABLE ".to_string()),
        Just("CREATE ".to_string()),
        Just("INDEX CONCURRENTLY ".to_string()),
        Just("DROP ".to_string()),
        Just("ADD COLUMN x int ".to_string()),
        Just("MODIFY ".to_string()),
        Just("SET @s = '".to_string()),
        Just("PREPARE s FROM @s".to_string()),
        Just("DO $$ BEGIN ".to_string()),
        Just("$$".to_string()),
        Just("$tag$".to_string()),
        Just("DELIMITER //\n".to_string()),
        Just("BEGIN".to_string()),
        Just("END".to_string()),
        Just("'".to_string()),
        Just("\"".to_string()),
        Just("`".to_string()),
        Just("/*".to_string()),
        Just("*/".to_string()),
        Just("--".to_string()),
        Just("#".to_string()),
        Just(";".to_string()),
        Just("\n".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just(",".to_string()),
        Just("é漢🙂".to_string()),
        "[a-z_]{1,8}".prop_map(|s| format!("{s} ")),
        "[0-9]{1,4}".prop_map(|s| format!("{s} ")),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn arbitrary_text_is_classified_without_panic(t in text(), mysql in any::<bool>()) {
        let engine = if mysql { Engine::Mysql } else { Engine::Postgres };
        let statements = split(&t, engine, 1, ";");
        // Every statement's line lies within the text.
        let lines = t.lines().count().max(1);
        for s in &statements {
            prop_assert!(s.line >= 1 && s.line <= lines, "line {} of {}", s.line, lines);
        }
        let m = Migration {
            version: "1".into(),
            description: String::new(),
            path: "fuzz.sql".into(),
            checksum: sha256_hex(t.as_bytes()),
            engine,
            format: SourceFormat::Plain,
            repeatable: false,
            tx: TxWrap::AsWritten,
            directives: Directives::default(),
            statements,
            text: t.clone(),
        };
        let rules = RuleSet::default_rules();
        let catalog = Catalog::empty(engine);
        let ctx = Context {
            rules: &rules,
            catalog: &catalog,
            pg_version: EngineVersion::default_for(Engine::Postgres),
            mysql_version: EngineVersion::default_for(Engine::Mysql),
        };
        let plan = classify(std::slice::from_ref(&m), &ctx);
        // Whatever was not understood is never low.
        for s in &plan.migrations[0].statements {
            if s.findings.iter().any(|f| f.rule == "unanalyzable-sql") {
                prop_assert_eq!(s.risk, Risk::High);
            }
        }
    }
}
