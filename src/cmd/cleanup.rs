//! `cutover cleanup RUN`: shows the exact statements that remove what an
//! aborted or failed gh-ost/pt-osc run left behind (pt-osc triggers first,
//! then ghost/changelog/new tables, cutover's pt-osc replica list) and the
//! files in its run directory (a gh-ost socket nobody serves, postpone, panic
//! and pause flags, the tools' credentials files), runs them only after a DBA
//! typed the migrated table's name, and records who did it in the audit
//! trail. Old tables kept as rollback backups are listed, and dropped only
//! with `--backups`. A tool still alive (its socket answers, its pid runs)
//! stops the cleanup: its tables are in use.

use super::Outcome;
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
use std::path::Path;

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

/// `cutover cleanup RUN`: returns the exit code. Through the service when
/// one is configured (its run directories and trail are not the caller's).
pub fn run(a: &CleanupArgs) -> Result<i32, InputError> {
    if let Some(service) = crate::serve::client::socket(&a.service, None) {
        return crate::serve::client::cleanup(&service, a);
    }
    let user = crate::supervisor::peer::current_user();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(input)?;
    rt.block_on(async {
        match survey(&a.runs.join(&a.run), &a.run, &user, a.backups).await? {
            Surveyed::Stop(o) => Ok(o.print()),
            Surveyed::Ready(s) => {
                print!("{}", s.listing);
                let typed = match &a.confirm {
                    Some(t) => t.clone(),
                    None => ask_table(&s.table)?,
                };
                Ok(carry_out(s, &typed).await?.print())
            }
        }
    })
}

/// Asks on the terminal for the table name that confirms a cleanup.
pub fn ask_table(table: &str) -> Result<String, InputError> {
    print!("Type the table name ({table}) to run them: ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(input)?;
    Ok(line)
}

/// A cleanup that found leftovers and waits for the typed table name.
pub struct Survey {
    /// What the DBA is shown before confirming (leftovers, statements, kept backups).
    pub listing: String,
    /// The table name that confirms.
    pub table: String,
    statements: Vec<String>,
    files: Vec<String>,
    conn: mysql_async::Conn,
    sup: SuperviseSpec,
    run: String,
    person: String,
    user: String,
}

/// The first half of a cleanup.
pub enum Surveyed {
    /// Nothing to do, or not allowed: said and done.
    Stop(Outcome),
    /// Leftovers to remove once confirmed.
    Ready(Box<Survey>),
}

/// Checks that `user` (an OS user name: the caller, or the service's peer)
/// may clean up the ended run in `run_dir`, and finds what it left.
pub async fn survey(
    run_dir: &Path,
    run: &str,
    user: &str,
    backups: bool,
) -> Result<Surveyed, InputError> {
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
            Entry::Run { record } if record.run == run => Some(record),
            _ => None,
        })
        .collect();
    let state = crate::run::RunState::replay(&records);
    let phase = state.phase;
    // The tables come from the trail (HMAC-chained), not from the run
    // directory, which the requester can edit.
    let tables = state.spec.map(|s| s.tables).unwrap_or_default();
    if !phase.is_terminal() && crate::supervisor::is_running(run_dir) {
        return Ok(Surveyed::Stop(Outcome::refused(format!(
            "run {run} is {phase} under its supervisor; abort it (or let it end) before cleaning up"
        ))));
    }
    let cfg = Config::load(&sup.config).map_err(input)?;
    let target = cfg.target(&sup.target).map_err(input)?.clone();
    if target.engine != Engine::Mysql {
        return Err(InputError(format!(
            "target '{}' is PostgreSQL: cutover cleanup removes gh-ost/pt-osc leftovers (MySQL/MariaDB)",
            target.name
        )));
    }
    let who = Directory::new(&cfg.policy).resolve(&Actor::local(user.to_string()));
    if who.role != Some(Role::Dba) {
        return Ok(Surveyed::Stop(Outcome::refused(format!(
            "cleanup needs a DBA; {} ({user}) is not one",
            who.name
        ))));
    }
    let url = crate::config::interpolate(&target.primary)
        .map_err(|m| InputError(format!("target '{}': {m}", target.name)))?;
    if let Some(live) = live_tool(run_dir).await {
        return Ok(Surveyed::Stop(Outcome::refused(format!(
            "{live}; abort it (or let it end) before cleaning up"
        ))));
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
    for d in crate::exec::select::segment_dirs(run_dir) {
        found.extend(leftovers::files_in(&d));
    }
    let (act, kept) = chosen(found, backups);
    if act.is_empty() {
        let mut out = format!("Nothing left behind by run {run} on {}.\n", target.name);
        out.push_str(&kept_lines(&kept));
        return Ok(Surveyed::Stop(Outcome::said(out)));
    }
    let statements = leftovers::statements(&act);
    let files: Vec<String> = act
        .iter()
        .filter(|l| leftovers::is_file(l))
        .map(|l| l.name.clone())
        .collect();
    let mut listing = format!("Run {run} left on {}:\n", target.name);
    for l in &act {
        listing.push_str(&format!("  {} {}\n", l.kind, l.name));
    }
    listing.push_str("Statements:\n");
    for s in &statements {
        listing.push_str(&format!("  {s}\n"));
    }
    for f in &files {
        listing.push_str(&format!("  rm {f}\n"));
    }
    listing.push_str(&kept_lines(&kept));
    Ok(Surveyed::Ready(Box::new(Survey {
        listing,
        table: tables.first().cloned().unwrap_or_default(),
        statements,
        files,
        conn: c,
        sup,
        run: run.to_string(),
        person: who.person,
        user: user.to_string(),
    })))
}

/// The second half: runs the statements and removes the files when `typed`
/// names the table, and records who did it.
pub async fn carry_out(s: Box<Survey>, typed: &str) -> Result<Outcome, InputError> {
    if !confirms(typed, &s.table) {
        return Ok(Outcome::refused(format!(
            "not confirmed (expected the table name {}); nothing was run",
            s.table
        )));
    }
    let mut c = s.conn;
    let mut done = Vec::new();
    for st in &s.statements {
        c.query_drop(st.as_str())
            .await
            .map_err(|e| InputError(format!("{st}: {e}")))?;
        done.push(st.clone());
    }
    for f in &s.files {
        match std::fs::remove_file(f) {
            Ok(()) => done.push(format!("rm {f}")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(InputError(format!("{f}: {e}"))),
        }
    }
    let n = done.len();
    record(&s.sup, &s.run, &s.person, &s.user, done)?;
    Ok(Outcome::said(format!(
        "Cleaned up: {n} statement(s) and file(s), recorded in the audit trail.\n"
    )))
}

/// What cleanup removes, and the kept backups it leaves (all of it with `backups`).
pub fn chosen(found: Vec<Leftover>, backups: bool) -> (Vec<Leftover>, Vec<Leftover>) {
    found
        .into_iter()
        .partition(|l| backups || !leftovers::is_backup(l))
}

fn kept_lines(kept: &[Leftover]) -> String {
    if kept.is_empty() {
        return String::new();
    }
    let mut out = String::from("Kept (rollback backups; add --backups to drop them too):\n");
    for l in kept {
        out.push_str(&format!(
            "  {} {}{}\n",
            l.kind,
            l.name,
            l.cleanup
                .as_ref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default()
        ));
    }
    out
}

/// A gh-ost or pt-osc of this run that still runs: its socket answers or
/// its recorded pid is alive (then its tables are in use).
async fn live_tool(run_dir: &Path) -> Option<String> {
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
