//! The gh-ost driver (gh-ost.md, checked against 1.1.5 on MariaDB 10.11).
//!
//! gh-ost reads the binlog from a replica and copies on the primary. It runs
//! detached in its own process group with stdout/stderr in the run directory
//! (`gh-ost.out`, `gh-ost.err`); its socket (`gh-ost.sock`), postpone and panic
//! flag files live there too, so a restarted supervisor finds a live gh-ost
//! through the socket. Progress comes from the status line (stdout, or the
//! socket's `status` when stdout is quiet); controls are socket commands
//! naming the table, confirmed by the next status line or the exit.
//!
//! The old table is kept after the cut-over, as gh-ost does by default
//! (dropping a big table can stall a live primary, and it is the way back):
//! with `--timestamp-old-table` it is `_<t>_<YYYYMMDDhhmmss>_del`, so the next
//! gh-ost run on the table does not bail out on it. The run's summary names
//! it; `cutover cleanup RUN --backups` drops it.

use super::tool::{self, Follow, MyEndpoint, ToolAlter, ToolFiles};
use super::{
    Capabilities, Control, ExecError, ExecJob, ExecPhase, ExecStatus, ExecUpdate, Executor,
    Leftover, Outcome, OutcomeKind, Progress,
};
use crate::lag::{LagSample, LagSource};
use crate::migrate::{Migration, SourceFormat};
use chrono::Utc;
use futures_util::future::BoxFuture;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// What gh-ost honours.
pub const CAPABILITIES: Capabilities = Capabilities {
    pause: true,
    postpone_cut_over: true,
    set_chunk_size: true,
    set_max_lag: true,
    lag_throttle: true,
};

/// One parsed status line (gh-ost.md §3.8).
#[derive(Debug, Clone, PartialEq)]
pub struct StatusLine {
    /// Rows copied.
    pub copied: u64,
    /// Row estimate.
    pub total: u64,
    /// Percent as printed (may exceed 100).
    pub percent: f64,
    /// Inspected-server lag, seconds.
    pub lag: Option<f64>,
    /// Heartbeat lag, seconds.
    pub heartbeat_lag: Option<f64>,
    /// `State:` text.
    pub state: String,
    /// `ETA:` text.
    pub eta: String,
}

/// Parses a status line; `None` for anything else (never read as progress).
pub fn parse_status(line: &str) -> Option<StatusLine> {
    let line = line.trim();
    let rest = line.strip_prefix("Copy: ")?;
    let (head, eta) = rest.rsplit_once("; ETA: ")?;
    let (head, state) = head.rsplit_once(", State: ")?;
    let (counts, rest) = head.split_once(' ')?;
    let (copied, total) = counts.split_once('/')?;
    let percent = rest.split('%').next()?.trim().parse().ok()?;
    let secs = |key: &str| -> Option<f64> {
        let i = head.find(key)? + key.len();
        head[i..].split('s').next()?.trim().parse().ok()
    };
    Some(StatusLine {
        copied: copied.parse().ok()?,
        total: total.parse().ok()?,
        percent,
        lag: secs("; Lag: "),
        heartbeat_lag: secs(", HeartbeatLag: "),
        state: state.trim().to_string(),
        eta: eta.trim().to_string(),
    })
}

/// Go duration text (`2h6m30s`, `59s`) in seconds.
pub fn parse_duration(s: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut num = String::new();
    let mut any = false;
    for c in s.chars() {
        match c {
            '0'..='9' | '.' => num.push(c),
            'h' | 'm' | 's' => {
                let v: f64 = num.parse().ok()?;
                total += v * match c {
                    'h' => 3600.0,
                    'm' => 60.0,
                    _ => 1.0,
                };
                num.clear();
                any = true;
            }
            _ => return None,
        }
    }
    (any && num.is_empty()).then_some(total)
}

/// The normalised status of a line. `cutting_over`: a cut-over was commanded
/// (gh-ost says `migrating` while it cuts over).
pub fn status_of(l: &StatusLine, cutting_over: bool, settings: &Settings) -> ExecStatus {
    let phase = if l.state == "postponing cut-over" {
        ExecPhase::PostponingCutOver
    } else if l.state == "throttled, commanded by user" {
        ExecPhase::Paused
    } else if let Some(reason) = l.state.strip_prefix("throttled, ") {
        ExecPhase::Throttled {
            reason: reason.to_string(),
        }
    } else if l.state == "counting rows" {
        ExecPhase::Starting
    } else if cutting_over && l.copied >= l.total {
        ExecPhase::CuttingOver
    } else {
        ExecPhase::Copying
    };
    let eta_seconds = match (&phase, l.eta.as_str()) {
        (ExecPhase::Throttled { .. } | ExecPhase::Paused, _) => None,
        (_, "due") => Some(0.0),
        (_, e) => parse_duration(e),
    };
    ExecStatus {
        phase,
        progress: Some(Progress {
            rows_copied: l.copied,
            rows_total: Some(l.total),
            percent: Some(l.percent),
            eta_seconds,
            chunk_size: Some(settings.chunk_size),
            max_lag_millis: Some(settings.max_lag_millis),
            detail: None,
        }),
        at: Utc::now(),
    }
}

/// Run-time settings gh-ost was given (and later told).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Rows per chunk.
    pub chunk_size: u32,
    /// Max lag, ms.
    pub max_lag_millis: u64,
}

/// Where the target's servers are.
#[derive(Debug, Clone)]
pub struct GhostTarget {
    /// The gh-ost binary.
    pub binary: PathBuf,
    /// Primary.
    pub primary: MyEndpoint,
    /// Replicas (the first is inspected; all are throttle-control replicas).
    pub replicas: Vec<MyEndpoint>,
}

/// The run directory's gh-ost files.
#[derive(Debug, Clone)]
pub struct Paths {
    /// stdout / stderr / pid.
    pub files: ToolFiles,
    /// Interactive socket.
    pub socket: PathBuf,
    /// Postpone flag file (exists = cut-over waits).
    pub postpone: PathBuf,
    /// Panic flag file.
    pub panic: PathBuf,
    /// Credentials (`[client]`, mode 0600).
    pub conf: PathBuf,
}

impl Paths {
    /// The files for `run_dir`.
    pub fn new(run_dir: &Path) -> Paths {
        Paths {
            files: ToolFiles::new(run_dir, "gh-ost"),
            socket: run_dir.join("gh-ost.sock"),
            postpone: run_dir.join("gh-ost.postpone"),
            panic: run_dir.join("gh-ost.panic"),
            conf: run_dir.join("gh-ost.cnf"),
        }
    }
}

/// gh-ost's command line (credentials are in the conf file, not here).
pub fn command_line(
    t: &GhostTarget,
    a: &ToolAlter,
    p: &Paths,
    s: &Settings,
    execute: bool,
) -> Vec<String> {
    let inspect = t.replicas.first().unwrap_or(&t.primary);
    let mut v = vec![
        format!("--conf={}", p.conf.display()),
        format!("--host={}", inspect.host),
        format!("--port={}", inspect.port),
        format!("--database={}", a.schema),
        format!("--table={}", a.table),
        format!("--alter={}", a.alter),
        "--assume-rbr".into(),
        "--exact-rowcount".into(),
        "--concurrent-rowcount".into(),
        format!("--chunk-size={}", s.chunk_size),
        format!("--max-lag-millis={}", s.max_lag_millis),
        format!("--serve-socket-file={}", p.socket.display()),
        format!("--postpone-cut-over-flag-file={}", p.postpone.display()),
        format!("--panic-flag-file={}", p.panic.display()),
        "--default-retries=10".into(),
        // Each run keeps its own old table: a backup never blocks the next run.
        "--timestamp-old-table".into(),
        "--verbose".into(),
    ];
    if t.replicas.is_empty() {
        v.push("--allow-on-master".into());
    } else {
        let list: Vec<String> = t.replicas.iter().map(MyEndpoint::addr).collect();
        v.push(format!("--throttle-control-replicas={}", list.join(",")));
    }
    if execute {
        v.push("--execute".into());
    }
    v
}

/// Sends one command over gh-ost's socket (one per connection; the reply ends
/// with the connection).
pub async fn ask(socket: &Path, command: &str) -> std::io::Result<String> {
    let talk = async {
        let mut s = tokio::net::UnixStream::connect(socket).await?;
        s.write_all(format!("{command}\n").as_bytes()).await?;
        let mut out = String::new();
        s.read_to_string(&mut out).await?;
        Ok::<_, std::io::Error>(out)
    };
    tokio::time::timeout(Duration::from_secs(5), talk)
        .await
        .map_err(|_| std::io::Error::other("gh-ost did not answer within 5 s"))?
}

#[derive(Debug, Default)]
struct Shared {
    status: Option<ExecStatus>,
    outcome: Option<Outcome>,
    abort_requested: bool,
    cut_over_requested: bool,
    settings: Option<Settings>,
}

fn lock(m: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The gh-ost executor for one migration.
pub struct GhostExecutor {
    target: GhostTarget,
    migration: Migration,
    /// The run id (cleanup commands name it).
    run: String,
    alter: Option<ToolAlter>,
    paths: Option<Paths>,
    shared: Arc<Mutex<Shared>>,
}

impl GhostExecutor {
    /// A driver for `migration` (one ALTER TABLE) on `target`.
    pub fn new(target: GhostTarget, migration: Migration) -> GhostExecutor {
        GhostExecutor {
            target,
            migration,
            run: String::new(),
            alter: None,
            paths: None,
            shared: Arc::new(Mutex::new(Shared::default())),
        }
    }

    fn alter(&self) -> Result<ToolAlter, ExecError> {
        let db = self.target.primary.database.clone().unwrap_or_default();
        tool::single_alter(&self.migration, &db, "gh-ost").map_err(ExecError::Refused)
    }

    async fn send(&self, command: String) -> Result<String, ExecError> {
        let p = self.paths.as_ref().ok_or(ExecError::NotStarted)?;
        let reply = ask(&p.socket, &command).await?;
        let low = reply.to_ascii_lowercase();
        if low.contains("unknown command") || low.contains("ignoring request") {
            return Err(ExecError::Refused(format!(
                "gh-ost: {}",
                reply.lines().next().unwrap_or("").trim()
            )));
        }
        Ok(reply)
    }

    fn spawn_monitor(
        &self,
        child: Option<tokio::process::Child>,
        pid: Option<u32>,
        from_end: bool,
        updates: mpsc::Sender<ExecUpdate>,
    ) -> Result<(), ExecError> {
        let p = self.paths.clone().ok_or(ExecError::NotStarted)?;
        let alter = self.alter()?;
        let m = Monitor {
            paths: p,
            run: self.run.clone(),
            alter,
            shared: self.shared.clone(),
            primary: self.target.primary.clone(),
            inspected: self
                .target
                .replicas
                .first()
                .unwrap_or(&self.target.primary)
                .addr(),
            migration: self.migration.clone(),
        };
        tokio::spawn(m.run(child, pid, from_end, updates));
        Ok(())
    }
}

struct Monitor {
    paths: Paths,
    run: String,
    alter: ToolAlter,
    shared: Arc<Mutex<Shared>>,
    primary: MyEndpoint,
    inspected: String,
    migration: Migration,
}

impl Monitor {
    async fn run(
        self,
        mut child: Option<tokio::process::Child>,
        pid: Option<u32>,
        from_end: bool,
        updates: mpsc::Sender<ExecUpdate>,
    ) {
        let started = std::time::Instant::now();
        let mut out = Follow::new(&self.paths.files.out);
        let mut err = Follow::new(&self.paths.files.err);
        if from_end {
            out.lines();
            err.lines();
        }
        let mut done = false;
        let mut fatal: Option<String> = None;
        let mut last_line = std::time::Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tick.tick().await;
            let mut lines = out.lines();
            if last_line.elapsed() > Duration::from_secs(2) && self.paths.socket.exists() {
                // stdout is quiet (gh-ost prints every 30 s on long copies): ask.
                if let Ok(reply) = ask(&self.paths.socket, "status").await {
                    lines.extend(reply.lines().map(str::to_string));
                }
            }
            for l in lines {
                if l.trim() == "# Done" {
                    done = true;
                }
                if let Some(s) = parse_status(&l) {
                    last_line = std::time::Instant::now();
                    if !self.status(&s, &updates).await {
                        return;
                    }
                }
            }
            for l in err.lines() {
                if let Some(i) = l.find(" FATAL ") {
                    fatal = Some(l[i + 7..].trim().to_string());
                }
            }
            let code = match child.as_mut() {
                Some(c) => match c.try_wait() {
                    Ok(Some(st)) => Some(st.code()),
                    Ok(None) => None,
                    Err(_) => Some(None),
                },
                None => match pid {
                    Some(pid) if tool::alive(pid, "gh-ost") => None,
                    // Not our child: its status is gone; the output tells.
                    _ => Some(None),
                },
            };
            let Some(code) = code else { continue };
            // gh-ost read its credentials and flags at start: nothing of them
            // stays on disk after it.
            let _ = std::fs::remove_file(&self.paths.conf);
            let _ = std::fs::remove_file(&self.paths.postpone);
            let _ = std::fs::remove_file(&self.paths.panic);
            // Whatever it printed last.
            for l in out.lines() {
                if l.trim() == "# Done" {
                    done = true;
                }
            }
            for l in err.lines() {
                if let Some(i) = l.find(" FATAL ") {
                    fatal = Some(l[i + 7..].trim().to_string());
                }
            }
            let outcome = self
                .finish(
                    done && code.unwrap_or(0) == 0,
                    code,
                    fatal,
                    started,
                    &updates,
                )
                .await;
            lock(&self.shared).outcome = Some(outcome.clone());
            let _ = updates.send(ExecUpdate::Finished(outcome)).await;
            return;
        }
    }

    async fn status(&self, s: &StatusLine, updates: &mpsc::Sender<ExecUpdate>) -> bool {
        let st = {
            let sh = lock(&self.shared);
            let settings = sh.settings.unwrap_or(Settings {
                chunk_size: 1000,
                max_lag_millis: 1500,
            });
            status_of(s, sh.cut_over_requested, &settings)
        };
        lock(&self.shared).status = Some(st.clone());
        if updates.send(ExecUpdate::Status(st)).await.is_err() {
            return false;
        }
        let lag = LagSample {
            replica: format!("{} (gh-ost)", self.inspected),
            seconds: s.lag,
            bytes: None,
            source: LagSource::Executor,
            at: Utc::now(),
            why: None,
        };
        updates.send(ExecUpdate::Lag(lag)).await.is_ok()
    }

    async fn finish(
        &self,
        ok: bool,
        code: Option<i32>,
        fatal: Option<String>,
        started: std::time::Instant,
        updates: &mpsc::Sender<ExecUpdate>,
    ) -> Outcome {
        let aborted = lock(&self.shared).abort_requested;
        if ok {
            let ms = started.elapsed().as_millis().min(i32::MAX as u128) as i32;
            let mut leftovers = find_leftovers(&self.primary, &self.alter).await;
            // The old table stays (dropping a big table on a live primary is
            // the DBA's call): named in the summary, not a failure.
            let kind = match record_history(&self.primary, &self.migration, ms).await {
                Ok(()) => OutcomeKind::Succeeded,
                Err(e) => OutcomeKind::Failed {
                    error: format!("gh-ost applied the change but the history row failed: {e}"),
                },
            };
            leftovers.retain(super::leftovers::is_backup);
            let last = lock(&self.shared)
                .status
                .as_ref()
                .and_then(|s| s.progress.clone());
            if let Some(st) = kept_summary(&leftovers, &self.run, last) {
                lock(&self.shared).status = Some(st.clone());
                let _ = updates.send(ExecUpdate::Status(st)).await;
            }
            return Outcome { kind, leftovers };
        }
        let mut leftovers = find_leftovers(&self.primary, &self.alter).await;
        if self.paths.socket.exists() {
            leftovers.push(Leftover {
                kind: "socket".into(),
                name: self.paths.socket.display().to_string(),
                cleanup: None,
            });
        }
        let kind = if aborted {
            OutcomeKind::Aborted
        } else {
            OutcomeKind::Failed {
                error: fatal.unwrap_or_else(|| match code {
                    Some(c) => format!("gh-ost exited with status {c} (see gh-ost.err)"),
                    None => "gh-ost stopped (see gh-ost.err)".to_string(),
                }),
            }
        };
        Outcome { kind, leftovers }
    }
}

/// The closing status of a successful run that kept old tables: the summary
/// says where this run's backup is (the newest timestamped one), which
/// earlier ones are still there, and how to drop them. `last`: the copy's
/// last progress, kept so the summary still counts rows.
pub fn kept_summary(kept: &[Leftover], run: &str, last: Option<Progress>) -> Option<ExecStatus> {
    let stamped = |n: &str| {
        n.strip_suffix("_del")
            .and_then(|h| h.get(h.len().checked_sub(14)?..))
            .is_some_and(|ts| ts.chars().all(|c| c.is_ascii_digit()))
    };
    let mine = kept
        .iter()
        .map(|l| l.name.as_str())
        .filter(|n| stamped(n))
        .max()?;
    let earlier: Vec<&str> = kept
        .iter()
        .map(|l| l.name.as_str())
        .filter(|n| *n != mine)
        .collect();
    let mut detail = format!(
        "the old table is kept as a rollback backup: {mine} (drop it with `cutover cleanup {run} --backups` once no longer needed)"
    );
    if !earlier.is_empty() {
        detail.push_str(&format!(
            "; earlier backups still kept: {}",
            earlier.join(", ")
        ));
    }
    Some(ExecStatus {
        phase: ExecPhase::Succeeded,
        progress: Some(Progress {
            detail: Some(detail),
            eta_seconds: None,
            ..last.unwrap_or_default()
        }),
        at: Utc::now(),
    })
}

pub(super) async fn connect(e: &MyEndpoint, db: Option<&str>) -> Result<mysql_async::Conn, String> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(e.host.clone())
        .tcp_port(e.port)
        .user(Some(e.user.clone()))
        .pass(Some(e.password.clone()))
        .db_name(db.map(str::to_string).or_else(|| e.database.clone()));
    mysql_async::Conn::new(opts)
        .await
        .map_err(|x| crate::sql::redact::redact_dsn(&x.to_string()))
}

pub(super) async fn find_leftovers(primary: &MyEndpoint, a: &ToolAlter) -> Vec<Leftover> {
    let Ok(mut c) = connect(primary, Some(&a.schema)).await else {
        return Vec::new();
    };
    super::leftovers::find_mysql(&mut c, &[format!("{}.{}", a.schema, a.table)])
        .await
        .unwrap_or_default()
}

/// Records `m` unless the history already has it: a tool that finished while
/// the supervisor was down applied the change, but nobody wrote the row.
pub(super) async fn ensure_history(primary: &MyEndpoint, m: &Migration) -> Result<(), String> {
    if m.format != SourceFormat::Flyway {
        return Ok(());
    }
    let mut c = connect(primary, None).await?;
    let h = super::history::read_all_mysql(&mut c)
        .await
        .map_err(|e| e.to_string())?;
    let rows = h.flyway.unwrap_or_default();
    if super::history::standing(m, &rows) == super::history::Standing::Applied {
        return Ok(());
    }
    drop(c);
    record_history(primary, m, 0).await
}

pub(super) async fn record_history(
    primary: &MyEndpoint,
    m: &Migration,
    ms: i32,
) -> Result<(), String> {
    if m.format != SourceFormat::Flyway {
        return Ok(());
    }
    let mut c = connect(primary, None).await?;
    super::history::record_mysql(&mut c, m, ms)
        .await
        .map_err(|e| e.to_string())
}

impl Executor for GhostExecutor {
    fn name(&self) -> &'static str {
        "gh-ost"
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    fn start(
        &mut self,
        job: ExecJob,
        updates: mpsc::Sender<ExecUpdate>,
    ) -> BoxFuture<'_, Result<(), ExecError>> {
        Box::pin(async move {
            let alter = self.alter()?;
            let p = Paths::new(&job.run_dir);
            // Before start: nothing of an earlier run may be in the way.
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
            self.run = job.run.clone();
            let kept = super::leftovers::backups_note(&found, &job.run);
            if p.socket.exists() {
                if ask(&p.socket, "status").await.is_ok() {
                    return Err(ExecError::Refused(format!(
                        "a gh-ost is already serving {}",
                        p.socket.display()
                    )));
                }
                // A socket nobody listens on: left by a killed run.
                std::fs::remove_file(&p.socket)?;
            }
            let _ = std::fs::remove_file(&p.panic);
            let insp = self.target.replicas.first().unwrap_or(&self.target.primary);
            tool::write_private(
                &p.conf,
                &format!("[client]\nuser={}\npassword={}\n", insp.user, insp.password),
            )?;
            let directive = tool::directive_settings(&self.migration);
            // High risk waits for a DBA before the cut-over.
            let postpone = job.postpone_cut_over
                || directive.postpone_cut_over
                || job.spec.risk == crate::model::Risk::High;
            if postpone {
                std::fs::write(&p.postpone, "")?;
            } else {
                let _ = std::fs::remove_file(&p.postpone);
            }
            let settings = Settings {
                chunk_size: job.chunk_size.or(directive.chunk_size).unwrap_or(1000),
                max_lag_millis: job
                    .max_lag_millis
                    .or(directive.max_lag_millis)
                    .unwrap_or(1500),
            };
            lock(&self.shared).settings = Some(settings);
            let bin = tool::binary("CUTOVER_GHOST", "gh-ost").map_err(ExecError::Refused)?;
            let args = command_line(&self.target, &alter, &p, &settings, true);
            std::fs::write(
                job.run_dir.join("gh-ost.args"),
                format!("{}\n", args.join("\n")),
            )?;
            let child = tool::spawn_detached(&bin, &args, &p.files)
                .map_err(|e| ExecError::Refused(format!("cannot start {}: {e}", bin.display())))?;
            let pid = child.id();
            self.alter = Some(alter);
            self.paths = Some(p);
            let st = ExecStatus {
                phase: ExecPhase::Starting,
                progress: kept.map(|k| Progress {
                    detail: Some(k),
                    ..Progress::default()
                }),
                at: Utc::now(),
            };
            lock(&self.shared).status = Some(st.clone());
            if st.progress.is_some() {
                // Recorded: the DBA learns that backups are piling up.
                let _ = updates.send(ExecUpdate::Status(st)).await;
            }
            self.spawn_monitor(Some(child), pid, false, updates)
        })
    }

    fn control(&mut self, control: Control) -> BoxFuture<'_, Result<(), ExecError>> {
        Box::pin(async move {
            let table = self
                .alter
                .as_ref()
                .map(|a| a.table.clone())
                .ok_or(ExecError::NotStarted)?;
            match control {
                Control::Pause => self.send(format!("throttle={table}")).await.map(|_| ()),
                Control::Resume => self.send(format!("no-throttle={table}")).await.map(|_| ()),
                // gh-ost watches the replicas itself (`lag_throttle`).
                Control::Throttle { .. } | Control::Unthrottle => Ok(()),
                Control::CutOver { .. } => {
                    lock(&self.shared).cut_over_requested = true;
                    let r = self.send(format!("unpostpone={table}")).await;
                    if let Some(p) = &self.paths {
                        let _ = std::fs::remove_file(&p.postpone);
                    }
                    r.map(|_| ())
                }
                Control::Abort { .. } => {
                    lock(&self.shared).abort_requested = true;
                    // Confirmed by the exit, not the reply (1.1.5 may exit first).
                    if self.send(format!("panic={table}")).await.is_err()
                        && let Some(p) = &self.paths
                    {
                        std::fs::write(&p.panic, "")?;
                    }
                    Ok(())
                }
                Control::SetChunkSize { rows } => {
                    self.send(format!("chunk-size={rows}")).await?;
                    if let Some(s) = lock(&self.shared).settings.as_mut() {
                        s.chunk_size = rows;
                    }
                    Ok(())
                }
                Control::SetMaxLag { millis } => {
                    self.send(format!("max-lag-millis={millis}")).await?;
                    if let Some(s) = lock(&self.shared).settings.as_mut() {
                        s.max_lag_millis = millis;
                    }
                    Ok(())
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
            self.run = job.run.clone();
            self.alter = Some(alter.clone());
            self.paths = Some(p.clone());
            lock(&self.shared).settings = Some(Settings {
                chunk_size: job.chunk_size.unwrap_or(1000),
                max_lag_millis: job.max_lag_millis.unwrap_or(1500),
            });
            // A live gh-ost answers on its socket: re-attach, copy untouched.
            if let Ok(reply) = ask(&p.socket, "status").await {
                let line = reply.lines().find_map(parse_status);
                let pid = tool::read_pid(&p.files.pid);
                self.spawn_monitor(None, pid, true, updates)?;
                let settings = lock(&self.shared).settings.unwrap_or(Settings {
                    chunk_size: 1000,
                    max_lag_millis: 1500,
                });
                let st = match line {
                    Some(l) => status_of(&l, false, &settings),
                    None => ExecStatus {
                        phase: ExecPhase::Starting,
                        progress: None,
                        at: Utc::now(),
                    },
                };
                lock(&self.shared).status = Some(st.clone());
                return Ok(st);
            }
            let out = std::fs::read_to_string(&p.files.out).unwrap_or_default();
            if out.lines().any(|l| l.trim() == "# Done") {
                // It finished while the supervisor was down, maybe before the
                // history row was written.
                ensure_history(&self.target.primary, &self.migration)
                    .await
                    .map_err(|e| {
                        ExecError::Refused(format!(
                            "gh-ost finished, but recording {} in the history failed: {e}",
                            self.migration.version
                        ))
                    })?;
                let mut kept = find_leftovers(&self.target.primary, &alter).await;
                kept.retain(super::leftovers::is_backup);
                return Ok(kept_summary(&kept, &job.run, None).unwrap_or(ExecStatus {
                    phase: ExecPhase::Succeeded,
                    progress: None,
                    at: Utc::now(),
                }));
            }
            let left = find_leftovers(&self.target.primary, &alter).await;
            Ok(super::tool::gone("gh-ost", &left))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_real_status_lines() {
        let l = parse_status("Copy: 466600/752865 62.0%; Applied: 0; Backlog: 0/100; Time: 2m40s(total), 2m11s(copy); streamer: mysql-bin.007069:622646704; Lag: 0.01s, HeartbeatLag: 0.01s, State: throttled, my.replica-01.com:3306 replica-lag=3.000000s; ETA: 1m19s")
            .unwrap_or_else(|| panic!("no parse"));
        assert_eq!((l.copied, l.total), (466600, 752865));
        assert_eq!(l.lag, Some(0.01));
        assert_eq!(
            l.state,
            "throttled, my.replica-01.com:3306 replica-lag=3.000000s"
        );
        let s = status_of(
            &l,
            false,
            &Settings {
                chunk_size: 1000,
                max_lag_millis: 1500,
            },
        );
        assert_eq!(
            s.phase,
            ExecPhase::Throttled {
                reason: "my.replica-01.com:3306 replica-lag=3.000000s".into()
            }
        );
        assert_eq!(
            s.progress.and_then(|p| p.eta_seconds),
            None,
            "no ETA while throttled"
        );

        let l = parse_status("Copy: 1699250189/1690108499 100.5%; Applied: 0; Backlog: 0/1000; Time: 15s(total), 1s(copy); streamer: b.000009:951064562; Lag: 0.03s, HeartbeatLag: 0.05s, State: postponing cut-over; ETA: due")
            .unwrap_or_else(|| panic!("no parse"));
        assert_eq!(l.percent, 100.5, "above 100% is kept, not clamped");
        assert_eq!(l.heartbeat_lag, Some(0.05));
        let s = status_of(
            &l,
            false,
            &Settings {
                chunk_size: 1000,
                max_lag_millis: 1500,
            },
        );
        assert_eq!(s.phase, ExecPhase::PostponingCutOver);

        let l = parse_status("Copy: 14100/752865 1.9%; Applied: 0; Backlog: 0/100; Time: 32s(total), 3s(copy); streamer: mysql-bin.007068:864722759; Lag: 0.01s, HeartbeatLag: 0.01s, State: throttled, commanded by user; ETA: 2m37s")
            .unwrap_or_else(|| panic!("no parse"));
        let s = status_of(
            &l,
            false,
            &Settings {
                chunk_size: 1000,
                max_lag_millis: 1500,
            },
        );
        assert_eq!(s.phase, ExecPhase::Paused);
        assert!(parse_status("# Migrating `test`.`t`").is_none());
        assert!(parse_status("Copy: x/y").is_none());
        assert_eq!(parse_duration("2h6m30s"), Some(7590.0));
        assert_eq!(parse_duration("N/A"), None);
    }

    #[tokio::test]
    async fn a_stale_socket_of_a_dead_ghost_is_not_a_reattach() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let f = dir.path().join("V1__t.sql");
        std::fs::write(&f, "ALTER TABLE t ADD COLUMN c INT NULL;\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let m = crate::migrate::load_paths(
            &[f],
            &crate::migrate::LoadOptions {
                engine: Some(crate::model::Engine::Mysql),
                format: None,
            },
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .remove(0);
        // Nothing listens on port 1: the leftover look-up finds nothing.
        let e = MyEndpoint {
            host: "127.0.0.1".into(),
            port: 1,
            user: "u".into(),
            password: "p".into(),
            database: Some("test".into()),
        };
        let mut g = GhostExecutor::new(
            GhostTarget {
                binary: "gh-ost".into(),
                primary: e,
                replicas: Vec::new(),
            },
            m,
        );
        let run_dir = dir.path().join("run");
        std::fs::create_dir_all(&run_dir).unwrap_or_else(|e| panic!("{e}"));
        // A killed gh-ost leaves its socket file; nobody answers on it.
        let p = Paths::new(&run_dir);
        drop(std::os::unix::net::UnixListener::bind(&p.socket).unwrap_or_else(|e| panic!("{e}")));
        std::fs::write(&p.files.out, "Copy: 10/100 10.0%; Applied: 0; Backlog: 0/1000; Time: 1s(total), 1s(copy); streamer: b.000001:1; Lag: 0.01s, HeartbeatLag: 0.01s, State: migrating; ETA: 9s\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let job = ExecJob {
            run: "r1".into(),
            spec: crate::run::RunSpec {
                binding: crate::policy::Binding {
                    plan_digest: "d".into(),
                    target: "dev".into(),
                },
                environment: crate::policy::Environment::Dev,
                risk: crate::model::Risk::Low,
                versions: Vec::new(),
                estimated_seconds: 0.0,
                tables: vec!["t".into()],
                executor: "gh-ost".into(),
            },
            run_dir,
            postpone_cut_over: false,
            chunk_size: None,
            max_lag_millis: None,
            running: None,
        };
        let (tx, _rx) = mpsc::channel(8);
        let st = g.recover(job, tx).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            st.phase,
            ExecPhase::NotRunning,
            "not re-attached to a dead socket"
        );
        let d = st.progress.and_then(|p| p.detail).unwrap_or_default();
        assert!(d.starts_with("gh-ost is gone"), "{d}");
    }

    #[test]
    fn the_summary_names_this_runs_backup_and_the_earlier_ones() {
        let t =
            |n: &str| super::super::leftovers::table("test", n, super::super::leftovers::GHOST_OLD);
        let kept = vec![
            t("_t_20261204100000_del"),
            t("_t_20261204110000_del"),
            t("_t_del"),
        ];
        let st = kept_summary(&kept, "dev-1", None).unwrap_or_else(|| panic!("none"));
        let d = st.progress.and_then(|p| p.detail).unwrap_or_default();
        assert!(
            d.starts_with("the old table is kept as a rollback backup: test._t_20261204110000_del"),
            "{d}"
        );
        assert!(d.contains("cutover cleanup dev-1 --backups"), "{d}");
        assert!(
            d.ends_with("earlier backups still kept: test._t_20261204100000_del, test._t_del"),
            "{d}"
        );
        assert!(kept_summary(&[], "dev-1", None).is_none());
    }

    #[test]
    fn command_line_inspects_the_replica_and_executes_only_when_told() {
        let e = |port| MyEndpoint {
            host: "127.0.0.1".into(),
            port,
            user: "dba".into(),
            password: "secret".into(),
            database: Some("test".into()),
        };
        let t = GhostTarget {
            binary: "gh-ost".into(),
            primary: e(13306),
            replicas: vec![e(13307)],
        };
        let a = ToolAlter {
            schema: "test".into(),
            table: "big".into(),
            alter: "ADD COLUMN c INT NULL".into(),
            at: "V1__a.sql:1".into(),
        };
        let p = Paths::new(Path::new("/run/r1"));
        let s = Settings {
            chunk_size: 500,
            max_lag_millis: 1500,
        };
        let v = command_line(&t, &a, &p, &s, false);
        assert!(v.contains(&"--port=13307".to_string()));
        assert!(v.contains(&"--alter=ADD COLUMN c INT NULL".to_string()));
        assert!(v.contains(&"--throttle-control-replicas=127.0.0.1:13307".to_string()));
        assert!(v.contains(&"--serve-socket-file=/run/r1/gh-ost.sock".to_string()));
        assert!(
            v.contains(&"--timestamp-old-table".to_string()),
            "a kept old table must not block the next run"
        );
        assert!(!v.contains(&"--execute".to_string()));
        assert!(
            !v.iter().any(|x| x.contains("secret")),
            "no password on the command line"
        );
        assert!(command_line(&t, &a, &p, &s, true).contains(&"--execute".to_string()));
    }
}
