//! What an online-schema-change run leaves behind on MySQL/MariaDB, found the
//! same way by every executor's before-start check and by `cutover cleanup`.
//!
//! gh-ost: `_<t>_gho` (ghost), `_<t>_ghc` (changelog), `_<t>_del` (sentry or old
//! table) and `_<t>_<YYYYMMDDhhmmss>_del`; pt-osc: `_<t>_new` (with up to ten
//! extra leading `_`), `_<t>_old` and the `pt_osc_<db>_<t>_ins|upd|del`
//! triggers. Both tools truncate names to 64 characters (gh-ost.md §11,
//! pt-osc.md §7, §10).
//!
//! Not everything found is in the way. The ghost, changelog and new tables
//! and the triggers belong to a run that did not finish: a new run on the
//! table is refused until they are removed. An old table (gh-ost's `_del`
//! after a successful cut-over, kept as a rollback backup; pt-osc's `_old`
//! with `--no-drop-old-table`) and cutover's own pt-osc replica list are not:
//! they are named, and `cutover cleanup` removes them when asked.

use super::Leftover;
use mysql_async::prelude::*;

/// MySQL's identifier limit.
const MAX_NAME: usize = 64;

/// `_<table><suffix>` cut so that it fits 64 characters, as the tools name it.
pub fn tool_name(table: &str, suffix: &str) -> String {
    let room = MAX_NAME.saturating_sub(1 + suffix.len());
    let cut: String = table.chars().take(room).collect();
    format!("_{cut}{suffix}")
}

/// Which tool left `candidate` behind for `table`, when it is such a table.
pub fn table_kind(table: &str, candidate: &str) -> Option<&'static str> {
    for (suffix, kind) in [
        ("_gho", GHOST),
        ("_ghc", CHANGELOG),
        ("_del", GHOST_OLD),
        ("_old", PTOSC_OLD),
    ] {
        if candidate == tool_name(table, suffix) {
            return Some(kind);
        }
    }
    // pt-osc adds leading underscores while the name is taken.
    let new = tool_name(table, "_new");
    let extra = candidate.len().saturating_sub(new.len());
    if extra <= 10
        && candidate.ends_with(new.as_str())
        && candidate[..extra].chars().all(|c| c == '_')
    {
        return Some("pt-osc new table");
    }
    // gh-ost --timestamp-old-table: _<t>_<14 digits>_del.
    let stamped = tool_name(table, "_00000000000000_del");
    if candidate.len() == stamped.len() {
        let prefix_len = stamped.len() - "00000000000000_del".len();
        let (head, tail) = candidate.split_at(prefix_len);
        if head == &stamped[..prefix_len]
            && tail.ends_with("_del")
            && tail[..14].chars().all(|c| c.is_ascii_digit())
        {
            return Some(GHOST_OLD);
        }
    }
    None
}

/// gh-ost's ghost table (an unfinished run).
pub const GHOST: &str = "gh-ost ghost table";
/// gh-ost's changelog table (an unfinished run).
pub const CHANGELOG: &str = "gh-ost changelog table";
/// gh-ost's old table: the table as it was before a cut-over, kept as a backup.
pub const GHOST_OLD: &str = "gh-ost old table, kept as a rollback backup";
/// pt-osc's old table (`--no-drop-old-table`).
pub const PTOSC_OLD: &str = "pt-osc old table, kept as a rollback backup";
/// cutover's replica list for pt-osc (`--recursion-method=dsn`).
pub const DSN_LIST: &str = "cutover's pt-osc replica list";

/// Whether `l` is in the way of a new run on its table: what an unfinished
/// run left (ghost, changelog and new tables, triggers), not a kept old
/// table, cutover's replica list or a file.
pub fn blocks(l: &Leftover) -> bool {
    if l.kind.starts_with("trigger") {
        return true;
    }
    [GHOST, CHANGELOG, "pt-osc new table"]
        .iter()
        .any(|k| l.kind == format!("table ({k})"))
}

/// Whether `l` is an old table kept as a rollback backup.
pub fn is_backup(l: &Leftover) -> bool {
    [GHOST_OLD, PTOSC_OLD]
        .iter()
        .any(|k| l.kind == format!("table ({k})"))
}

fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A table left behind, with its cleanup statement.
pub fn table(schema: &str, name: &str, kind: &str) -> Leftover {
    Leftover {
        kind: format!("table ({kind})"),
        name: format!("{schema}.{name}"),
        cleanup: Some(format!(
            "DROP TABLE IF EXISTS {}.{};",
            quote(schema),
            quote(name)
        )),
    }
}

/// A pt-osc trigger left behind (it keeps writing into `_<t>_new` until dropped).
pub fn trigger(schema: &str, name: &str) -> Leftover {
    Leftover {
        kind: "trigger (pt-osc)".into(),
        name: format!("{schema}.{name}"),
        cleanup: Some(format!(
            "DROP TRIGGER IF EXISTS {}.{};",
            quote(schema),
            quote(name)
        )),
    }
}

/// `(schema, table)` of a possibly qualified, possibly quoted name.
pub fn split_name(name: &str, default_schema: &str) -> (String, String) {
    let clean: String = name.chars().filter(|c| !matches!(c, '`' | '"')).collect();
    match clean.rsplit_once('.') {
        Some((s, t)) => (s.trim().to_string(), t.trim().to_string()),
        None => (default_schema.to_string(), clean.trim().to_string()),
    }
}

/// Finds what earlier tool runs left for `tables` (names as the plan has them;
/// unqualified ones are in the connection's current database).
pub async fn find_mysql(
    conn: &mut mysql_async::Conn,
    tables: &[String],
) -> Result<Vec<Leftover>, mysql_async::Error> {
    let current: Option<Option<String>> = conn.query_first("SELECT DATABASE()").await?;
    let current = current.flatten().unwrap_or_default();
    let mut out = Vec::new();
    for t in tables {
        let (schema, table_name) = split_name(t, &current);
        // Triggers first: cleanup drops them before the table they write to.
        let triggers: Vec<String> = conn
            .exec(
                "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND EVENT_OBJECT_TABLE = ? AND TRIGGER_NAME LIKE 'pt\\_osc\\_%' ORDER BY TRIGGER_NAME",
                (schema.clone(), table_name.clone()),
            )
            .await?;
        out.extend(triggers.iter().map(|tr| trigger(&schema, tr)));
        let names: Vec<String> = conn
            .exec(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME LIKE '\\_%' ORDER BY TABLE_NAME",
                (schema.clone(),),
            )
            .await?;
        for n in names {
            if let Some(kind) = table_kind(&table_name, &n) {
                out.push(table(&schema, &n, kind));
            }
        }
    }
    Ok(out)
}

/// The before-start refusal when anything in the way is left (see
/// [`blocks`]): names and the way out. Kept backups do not refuse.
pub fn refusal(leftovers: &[Leftover], run: Option<&str>) -> Option<String> {
    let leftovers: Vec<Leftover> = leftovers.iter().filter(|l| blocks(l)).cloned().collect();
    if leftovers.is_empty() {
        return None;
    }
    let found: Vec<String> = leftovers
        .iter()
        .map(|l| format!("{} {}", l.kind, l.name))
        .collect();
    let how = match run {
        Some(r) => format!("`cutover cleanup {r}`"),
        None => "`cutover cleanup RUN`".into(),
    };
    Some(format!(
        "leftovers of an earlier gh-ost/pt-osc run: {}. Make sure that run is over, then remove them with {how} (or run: {})",
        found.join(", "),
        statements(&leftovers).join(" ")
    ))
}

/// What a new run says about kept backups on its table (not a refusal):
/// they take disk space until a DBA drops them.
pub fn backups_note(leftovers: &[Leftover], run: &str) -> Option<String> {
    let kept: Vec<&str> = leftovers
        .iter()
        .filter(|l| is_backup(l))
        .map(|l| l.name.as_str())
        .collect();
    (!kept.is_empty()).then(|| {
        format!(
            "old tables kept as rollback backups by earlier runs: {} (they hold disk space; drop them with `cutover cleanup {run} --backups` once no longer needed)",
            kept.join(", ")
        )
    })
}

/// cutover's pt-osc replica list in `schema`, when it exists and no pt-osc
/// is running on another table of that schema (pt-osc 3.2 re-reads the list
/// at every lag check: dropping it under a live one would blind its lag checks).
pub async fn find_dsn_list(
    conn: &mut mysql_async::Conn,
    schema: &str,
    except_tables: &[String],
) -> Result<Option<Leftover>, mysql_async::Error> {
    let n: Option<u64> = conn
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (schema, super::ptosc::DSN_TABLE),
        )
        .await?;
    if n.unwrap_or(0) == 0 {
        return Ok(None);
    }
    let others: Vec<String> = conn
        .exec(
            "SELECT DISTINCT EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND TRIGGER_NAME LIKE 'pt\\_osc\\_%'",
            (schema,),
        )
        .await?;
    if others.iter().any(|t| !except_tables.contains(t)) {
        return Ok(None);
    }
    Ok(Some(table(schema, super::ptosc::DSN_TABLE, DSN_LIST)))
}

/// A file a tool run left in the run directory (socket, flag file, credentials).
pub fn file(path: &std::path::Path, kind: &str) -> Leftover {
    Leftover {
        kind: format!("file ({kind})"),
        name: path.display().to_string(),
        cleanup: Some(format!("rm {}", path.display())),
    }
}

/// The files a gh-ost or pt-osc run leaves in `dir` (one segment directory)
/// once it has ended: a socket nobody serves any more, the postpone, panic and
/// pause flag files, and the credentials files.
pub fn files_in(dir: &std::path::Path) -> Vec<Leftover> {
    [
        ("gh-ost.sock", "gh-ost socket"),
        ("gh-ost.postpone", "gh-ost postpone flag"),
        ("gh-ost.panic", "gh-ost panic flag"),
        ("gh-ost.cnf", "gh-ost credentials"),
        ("pt-osc.pause", "pt-osc pause flag"),
        ("pt-osc.cnf", "pt-osc credentials"),
    ]
    .iter()
    .map(|(n, k)| (dir.join(n), *k))
    .filter(|(p, _)| p.symlink_metadata().is_ok())
    .map(|(p, k)| file(&p, k))
    .collect()
}

/// Whether `l` is a file in the run directory (removed by cleanup, not by SQL).
pub fn is_file(l: &Leftover) -> bool {
    l.kind.starts_with("file")
}

/// The cleanup statements (SQL), triggers before tables.
pub fn statements(leftovers: &[Leftover]) -> Vec<String> {
    let mut v: Vec<&Leftover> = leftovers
        .iter()
        .filter(|l| l.cleanup.is_some() && !is_file(l))
        .collect();
    v.sort_by_key(|l| !l.kind.starts_with("trigger"));
    v.iter().filter_map(|l| l.cleanup.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_tools_including_truncation() {
        assert_eq!(table_kind("t", "_t_gho"), Some("gh-ost ghost table"));
        assert_eq!(table_kind("t", "_t_ghc"), Some("gh-ost changelog table"));
        assert_eq!(table_kind("t", "_t_del"), Some(GHOST_OLD));
        assert_eq!(table_kind("t", "_t_20261204143000_del"), Some(GHOST_OLD));
        assert_eq!(table_kind("t", "_t_2026120414300x_del"), None);
        assert_eq!(table_kind("t", "_t_new"), Some("pt-osc new table"));
        assert_eq!(table_kind("t", "___t_new"), Some("pt-osc new table"));
        assert_eq!(table_kind("t", "_t2_gho"), None);
        assert_eq!(table_kind("t", "_tt_new"), None);
        assert_eq!(table_kind("orders", "_t_gho"), None);

        let long = "x".repeat(70);
        let gho = tool_name(&long, "_gho");
        assert_eq!(gho.len(), 64);
        assert_eq!(table_kind(&long, &gho), Some("gh-ost ghost table"));
        assert_eq!(table_kind(&long, &format!("_{long}_gho")), None);
    }

    #[test]
    fn cleanup_drops_triggers_first_and_quotes_names() {
        let l = vec![
            table("test", "_t_new", "pt-osc new table"),
            trigger("test", "pt_osc_test_t_ins"),
        ];
        let s = statements(&l);
        assert!(s[0].starts_with("DROP TRIGGER IF EXISTS `test`.`pt_osc_test_t_ins`"));
        assert_eq!(s[1], "DROP TABLE IF EXISTS `test`.`_t_new`;");
        let r = refusal(&l, Some("dev-1")).unwrap_or_default();
        assert!(r.contains("cutover cleanup dev-1"), "{r}");
        assert!(refusal(&[], None).is_none());
        // A kept backup, the replica list and files are named, not in the way.
        let kept = vec![
            table("test", "_t_20261204143000_del", GHOST_OLD),
            table("test", "cutover_ptosc_dsns", DSN_LIST),
            file(std::path::Path::new("/r/gh-ost.sock"), "gh-ost socket"),
        ];
        assert!(refusal(&kept, Some("dev-1")).is_none());
        let note = backups_note(&kept, "dev-1").unwrap_or_default();
        assert!(
            note.contains("test._t_20261204143000_del")
                && note.contains("cutover cleanup dev-1 --backups"),
            "{note}"
        );
        assert!(!note.contains("cutover_ptosc_dsns"), "{note}");
        assert_eq!(
            statements(&kept),
            vec![
                "DROP TABLE IF EXISTS `test`.`_t_20261204143000_del`;".to_string(),
                "DROP TABLE IF EXISTS `test`.`cutover_ptosc_dsns`;".to_string()
            ],
            "files are not SQL"
        );
        let mut both = kept.clone();
        both.push(table("test", "_t_gho", GHOST));
        let r = refusal(&both, Some("dev-1")).unwrap_or_default();
        assert!(r.contains("_t_gho") && !r.contains("_del"), "{r}");
        assert_eq!(
            split_name("`db`.`t`", "x"),
            ("db".to_string(), "t".to_string())
        );
        assert_eq!(split_name("t", "x"), ("x".to_string(), "t".to_string()));
    }
}
