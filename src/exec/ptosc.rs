//! The pt-online-schema-change driver (pt-osc.md, 3.2.1 on MariaDB 10.11).
//!
//! pt-osc runs detached with stdout/stderr in the run directory
//! (`pt-osc.out`, `pt-osc.err`) and its pid in `pt-osc.pid`. Replicas come
//! from a DSN table (`cutover_ptosc_dsns` in the migrated schema), because
//! processlist discovery fails on non-standard ports and then silently runs
//! without lag checks. Pause is the `--pause-file` (pt-osc sleeps 60 s at a
//! time, so a resume takes effect up to 60 s later), abort is SIGINT (it
//! keeps its triggers and `_<t>_new`, which are then reported), and chunk
//! size and max lag cannot change while it runs.

use super::ghost::{connect, ensure_history, find_leftovers, record_history};
use super::tool::{self, Follow, MyEndpoint, ToolAlter, ToolFiles};
use super::{
    Capabilities, Control, ExecError, ExecJob, ExecPhase, ExecStatus, ExecUpdate, Executor,
    Leftover, Outcome, OutcomeKind, Progress,
};
use crate::lag::{LagSample, LagSource};
use crate::migrate::Migration;
use chrono::Utc;
use futures_util::future::BoxFuture;
use mysql_async::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// pt-osc sleeps this long per look at its pause file.
pub const PAUSE_SLEEP_SECONDS: u32 = 60;

/// What pt-osc honours.
pub const CAPABILITIES: Capabilities = Capabilities {
    pause: true,
    postpone_cut_over: false,
    set_chunk_size: false,
    set_max_lag: false,
    lag_throttle: true,
};

/// What surfaces say about pt-osc's controls.
pub fn notes() -> Vec<String> {
    vec![
        format!(
            "pt-osc notices a pause before its next chunk and a resume only when its {PAUSE_SLEEP_SECONDS}-second sleep ends"
        ),
        "chunk size and max lag cannot change while pt-osc runs".to_string(),
        "pt-osc swaps tables right after the copy (no postponed cut-over)".to_string(),
    ]
}

/// The DSN table pt-osc reads its replicas from.
pub const DSN_TABLE: &str = "cutover_ptosc_dsns";

/// What one output line says.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// `Copying approximately N rows...`
    Total(u64),
    /// `Copying `db`.`t`:  NN% MM:SS remain`
    Progress {
        /// Percent.
        percent: f64,
        /// Seconds left.
        eta_seconds: Option<f64>,
    },
    /// A lag wait: the replica and its lag (`None` = stopped).
    LagWait {
        /// Replica host name.
        replica: String,
        /// Seconds, when reported.
        seconds: Option<f64>,
    },
    /// `Pausing because …` (max-load).
    LoadWait(String),
    /// `Sleeping 60 seconds because <file> exists`.
    Sleeping,
    /// `Copied rows OK.`
    Copied,
    /// `Swapping tables...`
    Swapping,
    /// `Successfully altered …`
    Done,
    /// `# Exiting on SIGINT.`
    Signalled(String),
}

fn after_ts(line: &str) -> &str {
    // `2026-11-24T01:36:14 Copying …`: drop the timestamp prefix.
    let b = line.as_bytes();
    if b.len() > 20 && b[4] == b'-' && b[10] == b'T' && b[19] == b' ' {
        &line[20..]
    } else {
        line
    }
}

fn remain(s: &str) -> Option<f64> {
    let s = s.trim();
    let (days, rest) = match s.split_once('+') {
        Some((d, r)) => (d.parse::<f64>().ok()?, r),
        None => (0.0, s),
    };
    let parts: Vec<f64> = rest
        .split(':')
        .map(|p| p.parse::<f64>().ok())
        .collect::<Option<_>>()?;
    let secs = match parts.as_slice() {
        [m, s] => m * 60.0 + s,
        [h, m, s] => h * 3600.0 + m * 60.0 + s,
        _ => return None,
    };
    Some(days * 86400.0 + secs)
}

/// Parses one stdout or stderr line.
pub fn parse_line(line: &str) -> Option<Line> {
    let l = after_ts(line.trim_end());
    if let Some(r) = l.strip_prefix("Copying approximately ") {
        return r.split_whitespace().next()?.parse().ok().map(Line::Total);
    }
    if l.starts_with("Copying `") {
        let (_, r) = l.rsplit_once(": ")?;
        let (pct, r) = r.trim().split_once('%')?;
        let eta = r.trim().strip_suffix("remain").and_then(remain);
        return Some(Line::Progress {
            percent: pct.trim().parse().ok()?,
            eta_seconds: eta,
        });
    }
    if let Some(r) = l.strip_prefix("Replica lag is ") {
        let (n, r) = r.split_once(" seconds on ")?;
        let host = r.strip_suffix(".  Waiting.")?.to_string();
        return Some(Line::LagWait {
            replica: host,
            seconds: n.trim().parse().ok(),
        });
    }
    if l.starts_with("(1) Replica '") || l.starts_with("(2) Replica '") {
        let host = l[13..].split('\'').next()?.to_string();
        return Some(Line::LagWait {
            replica: host,
            seconds: None,
        });
    }
    if let Some(r) = l.strip_prefix("Pausing because ") {
        return Some(Line::LoadWait(r.trim_end_matches('.').to_string()));
    }
    if l.starts_with("Sleeping ") && l.contains(" seconds because ") && l.ends_with(" exists") {
        return Some(Line::Sleeping);
    }
    if l.starts_with("Copied rows OK") {
        return Some(Line::Copied);
    }
    if l.starts_with("Swapping tables") {
        return Some(Line::Swapping);
    }
    if l.starts_with("Successfully altered ") {
        return Some(Line::Done);
    }
    if let Some(r) = l.strip_prefix("# Exiting on ") {
        return Some(Line::Signalled(r.trim_end_matches('.').to_string()));
    }
    None
}

/// The fold of pt-osc's output so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fold {
    /// Row estimate.
    pub total: Option<u64>,
    /// Last percent.
    pub percent: Option<f64>,
    /// Last ETA.
    pub eta: Option<f64>,
    /// Waiting on lag or load: why.
    pub waiting: Option<String>,
    /// Sleeping on the pause file.
    pub sleeping: bool,
    /// Copy finished.
    pub copied: bool,
    /// Swapping.
    pub swapping: bool,
    /// Success line seen.
    pub done: bool,
    /// Signal line seen.
    pub signalled: Option<String>,
}

impl Fold {
    /// Folds one parsed line.
    pub fn apply(&mut self, l: &Line) {
        match l {
            Line::Total(n) => self.total = Some(*n),
            Line::Progress {
                percent,
                eta_seconds,
            } => {
                self.percent = Some(*percent);
                self.eta = *eta_seconds;
                self.waiting = None;
                self.sleeping = false;
            }
            Line::LagWait { replica, seconds } => {
                self.waiting = Some(match seconds {
                    Some(s) => format!("{replica} replica-lag={s}s"),
                    None => format!("{replica} replica stopped"),
                })
            }
            Line::LoadWait(why) => self.waiting = Some(format!("max-load {why}")),
            Line::Sleeping => self.sleeping = true,
            Line::Copied => {
                self.copied = true;
                self.percent = Some(100.0);
                self.waiting = None;
                self.sleeping = false;
            }
            Line::Swapping => self.swapping = true,
            Line::Done => self.done = true,
            Line::Signalled(s) => self.signalled = Some(s.clone()),
        }
    }

    /// The normalised status. `pause_file`: whether the pause file exists now.
    pub fn status(&self, pause_file: bool) -> ExecStatus {
        let phase = if self.swapping {
            ExecPhase::CuttingOver
        } else if self.sleeping || (pause_file && !self.copied && self.total.is_some()) {
            ExecPhase::Paused
        } else if let Some(w) = &self.waiting {
            ExecPhase::Throttled { reason: w.clone() }
        } else if self.total.is_some() {
            ExecPhase::Copying
        } else {
            ExecPhase::Starting
        };
        let unknown_eta = matches!(phase, ExecPhase::Paused | ExecPhase::Throttled { .. });
        ExecStatus {
            progress: self.total.map(|t| Progress {
                rows_copied: (t as f64 * self.percent.unwrap_or(0.0) / 100.0) as u64,
                rows_total: Some(t),
                percent: self.percent,
                eta_seconds: if unknown_eta { None } else { self.eta },
                chunk_size: None,
                max_lag_millis: None,
                detail: None,
            }),
            phase,
            at: Utc::now(),
        }
    }
}

/// Where the target's servers are.
#[derive(Debug, Clone)]
pub struct PtOscTarget {
    /// Primary.
    pub primary: MyEndpoint,
    /// Replicas to watch.
    pub replicas: Vec<MyEndpoint>,
}

/// The run directory's pt-osc files.
#[derive(Debug, Clone)]
pub struct Paths {
    /// stdout / stderr / pid.
    pub files: ToolFiles,
    /// `--pause-file`.
    pub pause: PathBuf,
    /// Credentials (`F=` in the DSN).
    pub conf: PathBuf,
}

impl Paths {
    /// The files for `run_dir`.
    pub fn new(run_dir: &Path) -> Paths {
        Paths {
            files: ToolFiles::new(run_dir, "pt-osc"),
            pause: run_dir.join("pt-osc.pause"),
            conf: run_dir.join("pt-osc.cnf"),
        }
    }
}

/// pt-osc's command line (credentials are in the `F=` file).
pub fn command_line(
    t: &PtOscTarget,
    a: &ToolAlter,
    p: &Paths,
    max_lag_millis: u64,
    chunk_size: Option<u32>,
) -> Vec<String> {
    let max_lag = max_lag_millis.div_ceil(1000).max(1);
    let mut v = vec![
        format!("--alter={}", a.alter),
        "--execute".into(),
        "--noversion-check".into(),
        format!("--max-lag={max_lag}"),
        "--check-interval=1".into(),
        "--progress=time,1".into(),
        format!("--pause-file={}", p.pause.display()),
    ];
    if t.replicas.is_empty() {
        v.push("--recursion-method=none".into());
    } else {
        v.push(format!(
            "--recursion-method=dsn=D={},t={DSN_TABLE}",
            a.schema
        ));
    }
    if let Some(c) = chunk_size {
        v.push(format!("--chunk-size={c}"));
    }
    v.push(format!(
        "h={},P={},D={},t={},F={}",
        t.primary.host,
        t.primary.port,
        a.schema,
        a.table,
        p.conf.display()
    ));
    v
}

#[derive(Debug, Default)]
struct Shared {
    status: Option<ExecStatus>,
    outcome: Option<Outcome>,
    abort_requested: bool,
    pid: Option<u32>,
}

fn lock(m: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The pt-osc executor for one migration.
pub struct PtOscExecutor {
    target: PtOscTarget,
    migration: Migration,
    alter: Option<ToolAlter>,
    paths: Option<Paths>,
    shared: Arc<Mutex<Shared>>,
}

impl PtOscExecutor {
    /// A driver for `migration` (one ALTER TABLE) on `target`.
    pub fn new(target: PtOscTarget, migration: Migration) -> PtOscExecutor {
        PtOscExecutor {
            target,
            migration,
            alter: None,
            paths: None,
            shared: Arc::new(Mutex::new(Shared::default())),
        }
    }

    fn alter(&self) -> Result<ToolAlter, ExecError> {
        let db = self.target.primary.database.clone().unwrap_or_default();
        tool::single_alter(&self.migration, &db, "pt-osc").map_err(ExecError::Refused)
    }

    fn spawn_monitor(
        &self,
        child: Option<tokio::process::Child>,
        pid: Option<u32>,
        updates: mpsc::Sender<ExecUpdate>,
    ) -> Result<(), ExecError> {
        let m = Monitor {
            paths: self.paths.clone().ok_or(ExecError::NotStarted)?,
            alter: self.alter()?,
            shared: self.shared.clone(),
            primary: self.target.primary.clone(),
            migration: self.migration.clone(),
        };
        tokio::spawn(m.run(child, pid, updates));
        Ok(())
    }
}

struct Monitor {
    paths: Paths,
    alter: ToolAlter,
    shared: Arc<Mutex<Shared>>,
    primary: MyEndpoint,
    migration: Migration,
}

impl Monitor {
    async fn run(
        self,
        mut child: Option<tokio::process::Child>,
        pid: Option<u32>,
        updates: mpsc::Sender<ExecUpdate>,
    ) {
        let started = std::time::Instant::now();
        let mut out = Follow::new(&self.paths.files.out);
        let mut err = Follow::new(&self.paths.files.err);
        let mut fold = Fold::default();
        let mut last_error: Option<String> = None;
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tick.tick().await;
            let mut lags = Vec::new();
            let mut changed = false;
            for l in out.lines().into_iter().chain(err.lines()) {
                if let Some(p) = parse_line(&l) {
                    if let Line::LagWait { replica, seconds } = &p {
                        lags.push((replica.clone(), *seconds));
                    }
                    fold.apply(&p);
                    changed = true;
                } else if l.contains("Error ") || l.starts_with("Cannot ") || l.contains(" failed")
                {
                    last_error = Some(after_ts(&l).trim().to_string());
                }
            }
            let st = fold.status(self.paths.pause.exists());
            let prev = lock(&self.shared).status.clone();
            if changed || prev.as_ref().map(|p| &p.phase) != Some(&st.phase) {
                lock(&self.shared).status = Some(st.clone());
                if updates.send(ExecUpdate::Status(st)).await.is_err() {
                    return;
                }
            }
            for (replica, seconds) in lags {
                let s = LagSample {
                    replica: format!("{replica} (pt-osc)"),
                    seconds,
                    bytes: None,
                    source: LagSource::Executor,
                    at: Utc::now(),
                    why: None,
                };
                let _ = updates.send(ExecUpdate::Lag(s)).await;
            }
            let code = match child.as_mut() {
                Some(c) => match c.try_wait() {
                    Ok(Some(st)) => Some(st.code()),
                    Ok(None) => None,
                    Err(_) => Some(None),
                },
                None => match pid {
                    Some(pid) if tool::alive(pid, "pt-online-schema-change") => None,
                    _ => Some(None),
                },
            };
            let Some(code) = code else { continue };
            for l in out.lines().into_iter().chain(err.lines()) {
                if let Some(p) = parse_line(&l) {
                    fold.apply(&p);
                }
            }
            let _ = std::fs::remove_file(&self.paths.pause);
            let _ = std::fs::remove_file(&self.paths.conf);
            let aborted = lock(&self.shared).abort_requested;
            let outcome = if fold.done && code.unwrap_or(0) == 0 {
                let ms = started.elapsed().as_millis().min(i32::MAX as u128) as i32;
                match record_history(&self.primary, &self.migration, ms).await {
                    Ok(()) => Outcome {
                        kind: OutcomeKind::Succeeded,
                        leftovers: Vec::new(),
                    },
                    Err(e) => Outcome {
                        kind: OutcomeKind::Failed {
                            error: format!(
                                "pt-osc applied the change but the history row failed: {e}"
                            ),
                        },
                        leftovers: Vec::new(),
                    },
                }
            } else {
                let leftovers = find_leftovers(&self.primary, &self.alter).await;
                Outcome {
                    kind: if aborted {
                        OutcomeKind::Aborted
                    } else {
                        OutcomeKind::Failed {
                            error: last_error.unwrap_or_else(|| match code {
                                Some(c) => {
                                    format!("pt-osc exited with status {c} (see pt-osc.out)")
                                }
                                None => "pt-osc stopped (see pt-osc.out)".into(),
                            }),
                        }
                    },
                    leftovers,
                }
            };
            lock(&self.shared).outcome = Some(outcome.clone());
            let _ = updates.send(ExecUpdate::Finished(outcome)).await;
            return;
        }
    }
}

/// Writes the replicas into the DSN table pt-osc reads (on the primary).
async fn write_dsns(t: &PtOscTarget, schema: &str) -> Result<(), String> {
    let mut c = connect(&t.primary, Some(schema)).await?;
    let e = |x: mysql_async::Error| crate::sql::redact::redact_dsn(&x.to_string());
    c.query_drop(format!(
        "CREATE TABLE IF NOT EXISTS `{DSN_TABLE}` (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, parent_id int NULL, dsn varchar(255) NOT NULL)"
    ))
    .await
    .map_err(e)?;
    c.query_drop(format!("DELETE FROM `{DSN_TABLE}`"))
        .await
        .map_err(e)?;
    for r in &t.replicas {
        c.exec_drop(
            format!("INSERT INTO `{DSN_TABLE}` (dsn) VALUES (?)"),
            (format!("h={},P={}", r.host, r.port),),
        )
        .await
        .map_err(e)?;
    }
    Ok(())
}

impl Executor for PtOscExecutor {
    fn name(&self) -> &'static str {
        "pt-osc"
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    fn notes(&self) -> Vec<String> {
        notes()
    }

    fn start(
        &mut self,
        job: ExecJob,
        updates: mpsc::Sender<ExecUpdate>,
    ) -> BoxFuture<'_, Result<(), ExecError>> {
        Box::pin(async move {
            let alter = self.alter()?;
            let p = Paths::new(&job.run_dir);
            let mut c = connect(&self.target.primary, Some(&alter.schema))
                .await
                .map_err(ExecError::Refused)?;
            let found = super::leftovers::find_mysql(
                &mut c,
                &[format!("{}.{}", alter.schema, alter.table)],
            )
            .await
            .map_err(|e| ExecError::Refused(e.to_string()))?;
            if let Some(r) = super::leftovers::refusal(&found, Some(&job.run)) {
                return Err(ExecError::Refused(r));
            }
            drop(c);
            write_dsns(&self.target, &alter.schema)
                .await
                .map_err(ExecError::Refused)?;
            let _ = std::fs::remove_file(&p.pause);
            let pr = &self.target.primary;
            tool::write_private(
                &p.conf,
                &format!("[client]\nuser={}\npassword={}\n", pr.user, pr.password),
            )?;
            let bin = tool::binary("CUTOVER_PTOSC", "pt-online-schema-change")
                .map_err(ExecError::Refused)?;
            let directive = tool::directive_settings(&self.migration);
            let args = command_line(
                &self.target,
                &alter,
                &p,
                job.max_lag_millis
                    .or(directive.max_lag_millis)
                    .unwrap_or(1500),
                job.chunk_size.or(directive.chunk_size),
            );
            std::fs::write(
                job.run_dir.join("pt-osc.args"),
                format!("{}\n", args.join("\n")),
            )?;
            let child = tool::spawn_detached(&bin, &args, &p.files)
                .map_err(|e| ExecError::Refused(format!("cannot start {}: {e}", bin.display())))?;
            let pid = child.id();
            lock(&self.shared).pid = pid;
            lock(&self.shared).status = Some(ExecStatus {
                phase: ExecPhase::Starting,
                progress: None,
                at: Utc::now(),
            });
            self.alter = Some(alter);
            self.paths = Some(p);
            self.spawn_monitor(Some(child), pid, updates)
        })
    }

    fn control(&mut self, control: Control) -> BoxFuture<'_, Result<(), ExecError>> {
        Box::pin(async move {
            let p = self.paths.clone().ok_or(ExecError::NotStarted)?;
            match control {
                Control::Pause => {
                    std::fs::write(&p.pause, "paused by cutover\n")?;
                    Ok(())
                }
                Control::Resume => {
                    let _ = std::fs::remove_file(&p.pause);
                    Ok(())
                }
                Control::Throttle { .. } | Control::Unthrottle => Ok(()),
                Control::Abort { .. } => {
                    lock(&self.shared).abort_requested = true;
                    let pid = lock(&self.shared)
                        .pid
                        .or_else(|| tool::read_pid(&p.files.pid))
                        .ok_or(ExecError::NotStarted)?;
                    tool::signal_group(pid, rustix::process::Signal::INT)?;
                    Ok(())
                }
                Control::CutOver { .. } => Err(ExecError::Unsupported {
                    executor: "pt-osc",
                    what: "postpone the cut-over (it swaps right after the copy)".into(),
                }),
                Control::SetChunkSize { .. } | Control::SetMaxLag { .. } => {
                    Err(ExecError::Unsupported {
                        executor: "pt-osc",
                        what: "change chunk size or max lag while it runs".into(),
                    })
                }
            }
        })
    }

    fn status(&mut self) -> BoxFuture<'_, Result<ExecStatus, ExecError>> {
        Box::pin(async move {
            lock(&self.shared)
                .status
                .clone()
                .ok_or(ExecError::NotStarted)
        })
    }

    fn outcome(&mut self) -> BoxFuture<'_, Result<Option<Outcome>, ExecError>> {
        Box::pin(async move { Ok(lock(&self.shared).outcome.clone()) })
    }

    fn leftovers(&mut self) -> BoxFuture<'_, Result<Vec<Leftover>, ExecError>> {
        Box::pin(async move {
            let a = self.alter()?;
            Ok(find_leftovers(&self.target.primary, &a).await)
        })
    }

    fn recover(
        &mut self,
        job: ExecJob,
        updates: mpsc::Sender<ExecUpdate>,
    ) -> BoxFuture<'_, Result<ExecStatus, ExecError>> {
        Box::pin(async move {
            let alter = self.alter()?;
            let p = Paths::new(&job.run_dir);
            self.alter = Some(alter.clone());
            self.paths = Some(p.clone());
            // The log so far says where it is.
            let mut fold = Fold::default();
            for f in [&p.files.out, &p.files.err] {
                for l in std::fs::read_to_string(f).unwrap_or_default().lines() {
                    if let Some(x) = parse_line(l) {
                        fold.apply(&x);
                    }
                }
            }
            if let Some(pid) = tool::read_pid(&p.files.pid)
                && tool::alive(pid, "pt-online-schema-change")
            {
                lock(&self.shared).pid = Some(pid);
                let st = fold.status(p.pause.exists());
                lock(&self.shared).status = Some(st.clone());
                self.spawn_monitor(None, Some(pid), updates)?;
                return Ok(st);
            }
            if fold.done {
                // It finished while the supervisor was down, maybe before the
                // history row was written.
                ensure_history(&self.target.primary, &self.migration)
                    .await
                    .map_err(|e| {
                        ExecError::Refused(format!(
                            "pt-osc finished, but recording {} in the history failed: {e}",
                            self.migration.version
                        ))
                    })?;
                return Ok(ExecStatus {
                    phase: ExecPhase::Succeeded,
                    progress: None,
                    at: Utc::now(),
                });
            }
            let left = find_leftovers(&self.target.primary, &alter).await;
            Ok(super::tool::gone("pt-osc", &left))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_verified_lines() {
        assert_eq!(
            parse_line("2026-11-24T01:36:14 Copying approximately 200143 rows..."),
            Some(Line::Total(200143))
        );
        assert_eq!(
            parse_line("Copying `osc`.`t1`:  49% 00:04 remain"),
            Some(Line::Progress {
                percent: 49.0,
                eta_seconds: Some(4.0)
            })
        );
        assert_eq!(
            parse_line("Copying `test`.`big`:  27% 1+02:44:00 remain"),
            Some(Line::Progress {
                percent: 27.0,
                eta_seconds: Some(86400.0 + 2.0 * 3600.0 + 44.0 * 60.0)
            })
        );
        assert_eq!(
            parse_line("Replica lag is 4 seconds on vm.  Waiting."),
            Some(Line::LagWait {
                replica: "vm".into(),
                seconds: Some(4.0)
            })
        );
        assert_eq!(
            parse_line("(2) Replica 'vm' is stopped.  Waiting."),
            Some(Line::LagWait {
                replica: "vm".into(),
                seconds: None
            })
        );
        assert_eq!(
            parse_line("Sleeping 60 seconds because /r/pt-osc.pause exists"),
            Some(Line::Sleeping)
        );
        assert_eq!(
            parse_line("2026-11-24T01:36:15 Swapping tables..."),
            Some(Line::Swapping)
        );
        assert_eq!(
            parse_line("# Exiting on SIGINT."),
            Some(Line::Signalled("SIGINT".into()))
        );
        assert_eq!(parse_line("Creating new table..."), None);
    }

    #[test]
    fn fold_tracks_waits_pauses_and_unknown_eta() {
        let mut f = Fold::default();
        assert_eq!(f.status(false).phase, ExecPhase::Starting);
        f.apply(&Line::Total(1000));
        f.apply(&Line::Progress {
            percent: 10.0,
            eta_seconds: Some(9.0),
        });
        let s = f.status(false);
        assert_eq!(s.phase, ExecPhase::Copying);
        assert_eq!(s.progress.as_ref().map(|p| p.rows_copied), Some(100));
        f.apply(&Line::LagWait {
            replica: "vm".into(),
            seconds: Some(4.0),
        });
        let s = f.status(false);
        assert_eq!(
            s.phase,
            ExecPhase::Throttled {
                reason: "vm replica-lag=4s".into()
            }
        );
        assert_eq!(s.progress.and_then(|p| p.eta_seconds), None);
        assert_eq!(f.status(true).phase, ExecPhase::Paused, "pause file set");
        f.apply(&Line::Progress {
            percent: 20.0,
            eta_seconds: Some(8.0),
        });
        assert_eq!(f.status(false).phase, ExecPhase::Copying);
    }

    #[test]
    fn command_line_names_replicas_by_dsn_table() {
        let e = |port| MyEndpoint {
            host: "127.0.0.1".into(),
            port,
            user: "dba".into(),
            password: "secret".into(),
            database: Some("test".into()),
        };
        let t = PtOscTarget {
            primary: e(13306),
            replicas: vec![e(13307)],
        };
        let a = ToolAlter {
            schema: "test".into(),
            table: "big".into(),
            alter: "ADD COLUMN c INT NULL".into(),
            at: "x:1".into(),
        };
        let v = command_line(&t, &a, &Paths::new(Path::new("/r")), 1500, None);
        assert!(v.contains(&"--max-lag=2".to_string()));
        assert!(v.contains(&format!("--recursion-method=dsn=D=test,t={DSN_TABLE}")));
        assert!(v.contains(&"--pause-file=/r/pt-osc.pause".to_string()));
        assert_eq!(
            v.last().map(String::as_str),
            Some("h=127.0.0.1,P=13306,D=test,t=big,F=/r/pt-osc.cnf")
        );
        assert!(!v.iter().any(|x| x.contains("secret")));
    }
}
