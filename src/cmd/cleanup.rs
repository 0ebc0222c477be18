//! `cutover cleanup RUN`: shows the exact statements that remove what an
//! aborted or failed gh-ost/pt-osc run left behind (pt-osc triggers first,
//! then ghost/changelog/new tables, cutover's pt-osc replica list) and the
//! files in its run directory (a gh-ost socket nobody serves, postpone, panic
//! and pause flags, the tools' credentials files), runs them only after a DBA
//! typed the migrated table's name, and records who did it in the audit
//! trail. Old tables kept as rollback backups are listed, and dropped only
//! with `--backups`. A tool still alive (its socket answers, its pid runs)
//! stops the cleanup: its tables are in use.

use super::plan::InputError;
use super::run::SuperviseSpec;
use crate::audit::{AuditKey, Entry, Trail, read_file};
use crate::cli::CleanupArgs;
use crate::config::Config;
use crate::exec::{Leftover, leftovers};
use crate::model::Engine;
use crate::policy::{Actor, Directory, Role};
use crate::run::{Event, EventRecord};
use mysql_async::prelude::*;
use std::io::{BufRead, Write};

fn input(e: impl std::fmt::Display) -> InputError {
    InputError(e.to_string())
}

/// Whether `typed` names `table` (schema and quotes optional).
pub fn confirms(typed: &str, table: &str) -> bool {
    let norm = |s: &str| -> String {
        let s: String = s
            .trim()
            .chars()
            .filter(|c| !matches!(c, '`' | '"'))
            .collect();
        s.rsplit('.').next().unwrap_or("").to_ascii_lowercase()
    };
    !typed.trim().is_empty() && norm(typed) == norm(table)
}

/// `cutover cleanup RUN`: returns the exit code.
pub fn run(a: &CleanupArgs) -> Result<i32, InputError> {
    let run_dir = a.runs.join(&a.run);
    let spec_path = run_dir.join("run.json");
    let text = std::fs::read_to_string(&spec_path)
        .map_err(|e| InputError(format!("{}: {e}", spec_path.display())))?;
    let sup: SuperviseSpec = serde_json::from_str(&text)
        .map_err(|e| InputError(format!("{}: {e}", spec_path.display())))?;
    // A live tool may still need its tables: only an ended (or orphaned) run is cleaned.
    let key = AuditKey::load(sup.key_file.as_deref()).map_err(input)?;
    let (entries, _) = read_file(&sup.trail, &key).map_err(input)?;
    let records: Vec<EventRecord> = entries
        .into_iter()
        .filter_map(|e| match e.entry {
            Entry::Run { record } if record.run == a.run => Some(record),
            _ => None,
        })
        .collect();
    let state = crate::run::RunState::replay(&records);
    let phase = state.phase;
    // The tables come from the trail (HMAC-chained), not from the run
    // directory, which the requester can edit.
    let tables = state.spec.map(|s| s.tables).unwrap_or_default();
    if !phase.is_terminal() && crate::supervisor::is_running(&run_dir) {
        eprintln!(
            "cutover: run {} is {phase} under its supervisor; abort it (or let it end) before cleaning up",
            a.run
        );
        return Ok(3);
    }
    let cfg = Config::load(&sup.config).map_err(input)?;
    let target = cfg.target(&sup.target).map_err(input)?.clone();
    if target.engine != Engine::Mysql {
        return Err(InputError(format!(
            "target '{}' is PostgreSQL: cutover cleanup removes gh-ost/pt-osc leftovers (MySQL/MariaDB)",
            target.name
        )));
    }
    let user = crate::supervisor::peer::current_user();
    let who = Directory::new(&cfg.policy).resolve(&Actor::local(user.clone()));
    if who.role != Some(Role::Dba) {
        eprintln!(
            "cutover: cleanup needs a DBA; {} ({user}) is not one",
            who.name
        );
        return Ok(3);
    }
    let url = crate::config::interpolate(&target.primary)
        .map_err(|m| InputError(format!("target '{}': {m}", target.name)))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(input)?;
    rt.block_on(async {
        if let Some(live) = live_tool(&run_dir).await {
            eprintln!("cutover: {live}; abort it (or let it end) before cleaning up");
            return Ok(3);
        }
        let opts = mysql_async::Opts::from_url(&url).map_err(input)?;
        let mut c = mysql_async::Conn::new(opts)
            .await
            .map_err(|e| InputError(crate::sql::redact::redact_dsn(&e.to_string())))?;
        let mut found = leftovers::find_mysql(&mut c, &tables)
            .await
            .map_err(input)?;
        let current: Option<Option<String>> =
            c.query_first("SELECT DATABASE()").await.map_err(input)?;
        let current = current.flatten().unwrap_or_default();
        let mut schemas: Vec<(String, Vec<String>)> = Vec::new();
        for t in &tables {
            let (s, t) = leftovers::split_name(t, &current);
            match schemas.iter_mut().find(|(x, _)| *x == s) {
                Some((_, v)) => v.push(t),
                None => schemas.push((s, vec![t])),
            }
        }
        for (schema, own) in &schemas {
            if let Some(l) = leftovers::find_dsn_list(&mut c, schema, own)
                .await
                .map_err(input)?
            {
                found.push(l);
            }
        }
        for d in crate::exec::select::segment_dirs(&run_dir) {
            found.extend(leftovers::files_in(&d));
        }
        let (act, kept) = chosen(found, a.backups);
        if act.is_empty() {
            println!("Nothing left behind by run {} on {}.", a.run, target.name);
            print_kept(&kept);
            return Ok(0);
        }
        let statements = leftovers::statements(&act);
        let files: Vec<&Leftover> = act.iter().filter(|l| leftovers::is_file(l)).collect();
        println!("Run {} left on {}:", a.run, target.name);
        for l in &act {
            println!("  {} {}", l.kind, l.name);
        }
        println!("Statements:");
        for s in &statements {
            println!("  {s}");
        }
        for f in &files {
            println!("  rm {}", f.name);
        }
        print_kept(&kept);
        let table = tables.first().cloned().unwrap_or_default();
        let typed = match &a.confirm {
            Some(t) => t.clone(),
            None => {
                print!("Type the table name ({table}) to run them: ");
                let _ = std::io::stdout().flush();
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .map_err(input)?;
                line
            }
        };
        if !confirms(&typed, &table) {
            eprintln!("cutover: not confirmed (expected the table name {table}); nothing was run");
            return Ok(3);
        }
        let mut done = Vec::new();
        for s in &statements {
            c.query_drop(s.as_str())
                .await
                .map_err(|e| InputError(format!("{s}: {e}")))?;
            done.push(s.clone());
        }
        for f in &files {
            match std::fs::remove_file(&f.name) {
                Ok(()) => done.push(format!("rm {}", f.name)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(InputError(format!("{}: {e}", f.name))),
            }
        }
        let n = done.len();
        record(&sup, &a.run, &who.person, &user, done)?;
        println!("Cleaned up: {n} statement(s) and file(s), recorded in the audit trail.");
        Ok(0)
    })
}

/// What cleanup removes, and the kept backups it leaves (all of it with `backups`).
pub fn chosen(found: Vec<Leftover>, backups: bool) -> (Vec<Leftover>, Vec<Leftover>) {
    found
        .into_iter()
        .partition(|l| backups || !leftovers::is_backup(l))
}

fn print_kept(kept: &[Leftover]) {
    if kept.is_empty() {
        return;
    }
    println!("Kept (rollback backups; add --backups to drop them too):");
    for l in kept {
        println!(
            "  {} {}{}",
            l.kind,
            l.name,
            l.cleanup
                .as_ref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default()
        );
    }
}

/// A gh-ost or pt-osc of this run that still runs: its socket answers or
/// its recorded pid is alive (then its tables are in use).
async fn live_tool(run_dir: &std::path::Path) -> Option<String> {
    for d in crate::exec::select::segment_dirs(run_dir) {
        let sock = d.join("gh-ost.sock");
        if sock.exists() && crate::exec::ghost::ask(&sock, "status").await.is_ok() {
            return Some(format!("a gh-ost still serves {}", sock.display()));
        }
        for (stem, needle) in [("gh-ost", "gh-ost"), ("pt-osc", "pt-online-schema-change")] {
            let pid = crate::exec::tool::read_pid(&d.join(format!("{stem}.pid")));
            if let Some(pid) = pid
                && crate::exec::tool::alive(pid, needle)
            {
                return Some(format!("{stem} (pid {pid}) of this run is still running"));
            }
        }
    }
    None
}

fn record(
    sup: &SuperviseSpec,
    run: &str,
    person: &str,
    user: &str,
    statements: Vec<String>,
) -> Result<(), InputError> {
    let key = AuditKey::load(sup.key_file.as_deref()).map_err(input)?;
    let (entries, _) = read_file(&sup.trail, &key).map_err(input)?;
    let last = entries
        .iter()
        .filter_map(|e| match &e.entry {
            Entry::Run { record } if record.run == run => Some(record.seq),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let (mut trail, _) = Trail::open(&sup.trail, key).map_err(input)?;
    let recs = EventRecord::stamp(
        run,
        last,
        vec![Event::CleanedUp {
            person: person.to_string(),
            statements,
        }],
        &Actor::local(user.to_string()),
        None,
        chrono::Utc::now(),
    );
    for r in recs {
        trail.append(&Entry::Run { record: r }).map_err(input)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_name_confirms() {
        assert!(confirms("orders", "orders"));
        assert!(confirms(" `shop`.`orders`\n", "orders"));
        assert!(confirms("ORDERS", "shop.orders"));
        assert!(!confirms("", "orders"));
        assert!(!confirms("yes", "orders"));
    }

    #[test]
    fn backups_are_dropped_only_when_asked() {
        let found = vec![
            leftovers::table("test", "_t_gho", leftovers::GHOST),
            leftovers::table("test", "_t_20261204143000_del", leftovers::GHOST_OLD),
            leftovers::file(std::path::Path::new("/r/gh-ost.sock"), "gh-ost socket"),
        ];
        let (act, kept) = chosen(found.clone(), false);
        assert_eq!(act.len(), 2);
        assert_eq!(kept.len(), 1);
        assert!(kept[0].name.ends_with("_del"));
        let (act, kept) = chosen(found, true);
        assert_eq!((act.len(), kept.len()), (3, 0));
    }
}
