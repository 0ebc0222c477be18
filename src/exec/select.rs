//! Executor selection per migration: a migration's `-- cutover: executor=`
//! directive wins over the target's `executor`, so one run may apply a
//! native migration and then a gh-ost one. Consecutive migrations with the
//! same driver form one segment; segments run in order, each announced with
//! [`ExecUpdate::Executor`] (surfaces then show that driver's controls), and
//! the run succeeds when the last one does.
//!
//! A restarted supervisor recovers the segment the trail last recorded a
//! driver taking over (`ExecutorSelected`); segments before it had succeeded
//! (the next one only begins then). `<run_dir>/segment.json` says the same
//! for people, but the run directory is the requester's: it is not believed. Each segment
//! after the first keeps its files (tool output, socket, flag files, the
//! native journal) in `<run_dir>/segment-<i>/`: two gh-ost migrations must
//! not read each other's `# Done`, nor two native segments one journal.
//!
//! After a restart the run continues where it stopped: recovery re-attaches
//! to the segment that was running, or, when that one finished while nobody
//! watched, the continued run begins with the next segment (never again
//! from the first).

use super::stored::load_verified;
use super::{
    Capabilities, Control, ExecError, ExecJob, ExecStatus, ExecUpdate, Executor, Leftover, Outcome,
    OutcomeKind,
};
use crate::migrate::Migration;
use futures_util::future::BoxFuture;
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc};

/// The segment a recovery re-attaches to: the one holding the migration(s)
/// the trail last recorded a driver taking over. `segment.json` in the run
/// directory is only a note for people; the requester can edit it, and a
/// segment skipped on its word would run later migrations without earlier
/// ones. Nothing recorded yet: the first segment.
pub fn recovered_segment(segs: &[(String, Vec<Migration>)], running: Option<&str>) -> usize {
    let Some(running) = running else { return 0 };
    segs.iter()
        .position(|(_, ms)| {
            ms.iter()
                .map(|m| m.version.as_str())
                .collect::<Vec<_>>()
                .join(", ")
                == running
        })
        .unwrap_or(0)
}

/// Builds the driver `name` for some migrations.
pub type Build =
    Arc<dyn Fn(&str, Vec<Migration>) -> Result<Box<dyn Executor>, ExecError> + Send + Sync>;

/// The capabilities of a driver by name, before it exists.
pub type CapsOf = Arc<dyn Fn(&str) -> Capabilities + Send + Sync>;

/// The driver a migration asks for, else `default`.
pub fn executor_for(m: &Migration, default: &str) -> String {
    m.directives
        .executor
        .clone()
        .unwrap_or_else(|| default.to_string())
}

/// Consecutive migrations with the same driver, in order.
pub fn segments(ms: Vec<Migration>, default: &str) -> Vec<(String, Vec<Migration>)> {
    let mut out: Vec<(String, Vec<Migration>)> = Vec::new();
    for m in ms {
        let name = executor_for(&m, default);
        // A tool runs one ALTER per process: each tool migration is its own segment.
        let tool = matches!(name.as_str(), "gh-ost" | "pt-osc");
        match out.last_mut() {
            Some((n, v)) if *n == name && !tool => v.push(m),
            _ => out.push((name, vec![m])),
        }
    }
    out
}

struct Inner {
    segments: Vec<(String, Vec<Migration>)>,
    index: usize,
    current: Option<Box<dyn Executor>>,
    finished: Option<Outcome>,
    /// Where a continued run begins (set by recovery; earlier segments are done).
    resume_at: Option<usize>,
}

/// The job of segment `i`: the first keeps the run directory (a run of one
/// migration looks as it always did), later ones get their own.
pub fn segment_job(job: &ExecJob, i: usize) -> std::io::Result<ExecJob> {
    let mut j = job.clone();
    if i > 0 {
        j.run_dir = job.run_dir.join(format!("segment-{i}"));
        std::fs::create_dir_all(&j.run_dir)?;
    }
    Ok(j)
}

/// Every segment directory of a run (the run directory first), for cleanup.
pub fn segment_dirs(run_dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v = vec![run_dir.to_path_buf()];
    let mut more: Vec<(usize, std::path::PathBuf)> = std::fs::read_dir(run_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            let i = n.strip_prefix("segment-")?.parse().ok()?;
            e.path().is_dir().then_some((i, e.path()))
        })
        .collect();
    more.sort();
    v.extend(more.into_iter().map(|(_, p)| p));
    v
}

/// What recovery says when segment `done` finished while the supervisor was
/// down and `next` has not started: not running; a continued run begins there.
pub fn between_segments(segs: &[(String, Vec<Migration>)], done: usize, next: usize) -> ExecStatus {
    let names = |i: usize| {
        segs.get(i)
            .map(|(n, ms)| {
                let v: Vec<&str> = ms.iter().map(|m| m.version.as_str()).collect();
                format!("migration {} ({n})", v.join(", "))
            })
            .unwrap_or_default()
    };
    ExecStatus {
        phase: super::ExecPhase::NotRunning,
        progress: Some(super::Progress {
            detail: Some(format!(
                "{} finished while the supervisor was down; the run continues with {} (`cutover resume` or `cutover run` again)",
                names(done),
                names(next)
            )),
            ..super::Progress::default()
        }),
        at: chrono::Utc::now(),
    }
}

/// The per-migration executor.
pub struct PerMigration {
    default: String,
    /// The target's engine: the stored files are split as it reads them.
    engine: crate::model::Engine,
    build: Build,
    caps_of: CapsOf,
    inner: Arc<Mutex<Inner>>,
    caps: Arc<std::sync::Mutex<Capabilities>>,
}

const SEGMENT_FILE: &str = "segment.json";

impl PerMigration {
    /// Migrations default to `default`; `build` makes drivers.
    pub fn new(
        default: &str,
        engine: crate::model::Engine,
        build: Build,
        caps_of: CapsOf,
    ) -> PerMigration {
        let caps = caps_of(default);
        PerMigration {
            default: default.to_string(),
            engine,
            build,
            caps_of,
            inner: Arc::new(Mutex::new(Inner {
                segments: Vec::new(),
                index: 0,
                current: None,
                finished: None,
                resume_at: None,
            })),
            caps: Arc::new(std::sync::Mutex::new(caps)),
        }
    }

    fn load(&self, job: &ExecJob) -> Result<Vec<(String, Vec<Migration>)>, ExecError> {
        let ms = load_verified(&job.run_dir, self.engine, &job.spec.versions)
            .map_err(|e| ExecError::Refused(e.to_string()))?;
        Ok(segments(ms, &self.default))
    }
}

struct Runner {
    build: Build,
    inner: Arc<Mutex<Inner>>,
    caps: Arc<std::sync::Mutex<Capabilities>>,
    job: ExecJob,
    updates: mpsc::Sender<ExecUpdate>,
}

impl Runner {
    /// Starts segment `i` (or recovers it); its updates go to `tx`.
    async fn begin(
        &self,
        i: usize,
        tx: mpsc::Sender<ExecUpdate>,
        recover: bool,
    ) -> Result<Option<ExecStatus>, ExecError> {
        let mut g = self.inner.lock().await;
        let (name, ms) = g
            .segments
            .get(i)
            .cloned()
            .ok_or_else(|| ExecError::Refused("no migration to run".into()))?;
        let mut exec = (self.build)(&name, ms.clone())?;
        let caps = exec.capabilities();
        *self.caps.lock().unwrap_or_else(|p| p.into_inner()) = caps;
        let _ = std::fs::write(self.job.run_dir.join(SEGMENT_FILE), i.to_string());
        let _ = self
            .updates
            .send(ExecUpdate::Executor {
                migration: ms
                    .iter()
                    .map(|m| m.version.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
                executor: exec.name().to_string(),
                capabilities: caps,
                notes: exec.notes(),
            })
            .await;
        let job = segment_job(&self.job, i)?;
        let status = if recover {
            Some(exec.recover(job, tx).await?)
        } else {
            exec.start(job, tx).await?;
            None
        };
        g.index = i;
        g.current = Some(exec);
        Ok(status)
    }

    /// Forwards segment updates; starts the next segment when one succeeds.
    async fn forward(self, mut rx: mpsc::Receiver<ExecUpdate>) {
        loop {
            let Some(u) = rx.recv().await else { return };
            match u {
                ExecUpdate::Finished(o) if o.kind == OutcomeKind::Succeeded => {
                    let next = {
                        let g = self.inner.lock().await;
                        (g.index + 1 < g.segments.len()).then_some(g.index + 1)
                    };
                    let Some(next) = next else {
                        self.inner.lock().await.finished = Some(o.clone());
                        let _ = self.updates.send(ExecUpdate::Finished(o)).await;
                        return;
                    };
                    let (tx, nrx) = mpsc::channel(64);
                    if let Err(e) = self.begin(next, tx, false).await {
                        let o = Outcome {
                            kind: OutcomeKind::Failed {
                                error: format!("the next migration did not start: {e}"),
                            },
                            leftovers: Vec::new(),
                        };
                        self.inner.lock().await.finished = Some(o.clone());
                        let _ = self.updates.send(ExecUpdate::Finished(o)).await;
                        return;
                    }
                    rx = nrx;
                }
                ExecUpdate::Finished(o) => {
                    self.inner.lock().await.finished = Some(o.clone());
                    let _ = self.updates.send(ExecUpdate::Finished(o)).await;
                    return;
                }
                other => {
                    if self.updates.send(other).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

impl Executor for PerMigration {
    fn name(&self) -> &'static str {
        "per-migration"
    }

    fn capabilities(&self) -> Capabilities {
        *self.caps.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn start(
        &mut self,
        job: ExecJob,
        updates: mpsc::Sender<ExecUpdate>,
    ) -> BoxFuture<'_, Result<(), ExecError>> {
        Box::pin(async move {
            let segs = self.load(&job)?;
            let first = {
                let mut g = self.inner.lock().await;
                g.segments = segs;
                g.finished = None;
                // A continued run begins where recovery found it stopped.
                g.resume_at.take().unwrap_or(0)
            };
            let runner = Runner {
                build: self.build.clone(),
                inner: self.inner.clone(),
                caps: self.caps.clone(),
                job,
                updates,
            };
            let (tx, rx) = mpsc::channel(64);
            runner.begin(first, tx, false).await?;
            tokio::spawn(runner.forward(rx));
            Ok(())
        })
    }

    fn control(&mut self, control: Control) -> BoxFuture<'_, Result<(), ExecError>> {
        Box::pin(async move {
            let mut g = self.inner.lock().await;
            match g.current.as_mut() {
                Some(e) => e.control(control).await,
                None => Err(ExecError::NotStarted),
            }
        })
    }

    fn status(&mut self) -> BoxFuture<'_, Result<ExecStatus, ExecError>> {
        Box::pin(async move {
            let mut g = self.inner.lock().await;
            match g.current.as_mut() {
                Some(e) => e.status().await,
                None => Err(ExecError::NotStarted),
            }
        })
    }

    fn outcome(&mut self) -> BoxFuture<'_, Result<Option<Outcome>, ExecError>> {
        Box::pin(async move { Ok(self.inner.lock().await.finished.clone()) })
    }

    fn leftovers(&mut self) -> BoxFuture<'_, Result<Vec<Leftover>, ExecError>> {
        Box::pin(async move {
            let mut g = self.inner.lock().await;
            match g.current.as_mut() {
                Some(e) => e.leftovers().await,
                None => Ok(Vec::new()),
            }
        })
    }

    fn recover(
        &mut self,
        job: ExecJob,
        updates: mpsc::Sender<ExecUpdate>,
    ) -> BoxFuture<'_, Result<ExecStatus, ExecError>> {
        Box::pin(async move {
            let segs = self.load(&job)?;
            let i = recovered_segment(&segs, job.running.as_deref());
            let last = i + 1 >= segs.len();
            {
                let mut g = self.inner.lock().await;
                g.segments = segs.clone();
                // Whatever recovery finds, segments before `i` are done: a
                // continued run never begins before it.
                g.resume_at = Some(i);
            }
            *self.caps.lock().unwrap_or_else(|p| p.into_inner()) = (self.caps_of)(&self.default);
            let runner = Runner {
                build: self.build.clone(),
                inner: self.inner.clone(),
                caps: self.caps.clone(),
                job,
                updates,
            };
            let (tx, rx) = mpsc::channel(64);
            let status = runner
                .begin(i, tx, true)
                .await?
                .ok_or_else(|| ExecError::Refused("recovery returned no status".into()))?;
            tokio::spawn(runner.forward(rx));
            // An earlier migration of a mixed run finished while nobody watched:
            // the run is not done, nothing starts by itself, and a continued
            // run begins with the next migration.
            if status.phase == super::ExecPhase::Succeeded && !last {
                self.inner.lock().await.resume_at = Some(i + 1);
                return Ok(between_segments(&segs, i, i + 1));
            }
            Ok(status)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::{LoadOptions, load_paths};

    #[test]
    fn directives_win_and_tool_migrations_run_alone() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let files = [
            ("V1__a.sql", "CREATE TABLE a (id int primary key);\n"),
            ("V2__b.sql", "CREATE TABLE b (id int primary key);\n"),
            (
                "V3__c.sql",
                "-- cutover: executor=gh-ost\nALTER TABLE a ADD c int;\n",
            ),
            (
                "V4__d.sql",
                "-- cutover: executor=gh-ost\nALTER TABLE b ADD c int;\n",
            ),
            ("V5__e.sql", "ALTER TABLE a ADD d int;\n"),
        ];
        let paths: Vec<_> = files
            .iter()
            .map(|(n, t)| {
                let p = dir.path().join(n);
                std::fs::write(&p, t).unwrap_or_else(|e| panic!("{e}"));
                p
            })
            .collect();
        let ms = load_paths(
            &paths,
            &LoadOptions {
                engine: Some(crate::model::Engine::Mysql),
                format: None,
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let segs = segments(ms, "native");
        let shape: Vec<(String, Vec<String>)> = segs
            .iter()
            .map(|(n, ms)| (n.clone(), ms.iter().map(|m| m.version.clone()).collect()))
            .collect();
        assert_eq!(
            shape,
            vec![
                ("native".to_string(), vec!["1".to_string(), "2".to_string()]),
                ("gh-ost".to_string(), vec!["3".to_string()]),
                ("gh-ost".to_string(), vec!["4".to_string()]),
                ("native".to_string(), vec!["5".to_string()]),
            ]
        );
    }

    /// A driver that records what it is asked to do.
    struct Fake {
        name: &'static str,
        versions: String,
        log: Arc<std::sync::Mutex<Vec<String>>>,
    }

    impl Executor for Fake {
        fn name(&self) -> &'static str {
            self.name
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities::ALL
        }
        fn start(
            &mut self,
            job: ExecJob,
            _: mpsc::Sender<ExecUpdate>,
        ) -> BoxFuture<'_, Result<(), ExecError>> {
            let dir = job
                .run_dir
                .file_name()
                .map(|n| n.to_string_lossy().to_string());
            self.log
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(format!(
                    "start {} in {}",
                    self.versions,
                    dir.unwrap_or_default()
                ));
            Box::pin(async { Ok(()) })
        }
        fn control(&mut self, _: Control) -> BoxFuture<'_, Result<(), ExecError>> {
            Box::pin(async { Ok(()) })
        }
        fn status(&mut self) -> BoxFuture<'_, Result<ExecStatus, ExecError>> {
            Box::pin(async { Err(ExecError::NotStarted) })
        }
        fn outcome(&mut self) -> BoxFuture<'_, Result<Option<Outcome>, ExecError>> {
            Box::pin(async { Ok(None) })
        }
        fn leftovers(&mut self) -> BoxFuture<'_, Result<Vec<Leftover>, ExecError>> {
            Box::pin(async { Ok(Vec::new()) })
        }
        fn recover(
            &mut self,
            _: ExecJob,
            _: mpsc::Sender<ExecUpdate>,
        ) -> BoxFuture<'_, Result<ExecStatus, ExecError>> {
            self.log
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(format!("recover {}", self.versions));
            // The tool finished while the supervisor was down.
            Box::pin(async {
                Ok(ExecStatus {
                    phase: super::super::ExecPhase::Succeeded,
                    progress: None,
                    at: chrono::Utc::now(),
                })
            })
        }
    }

    #[tokio::test]
    async fn a_restart_after_a_finished_segment_begins_with_the_next_one() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let files = [
            ("V1__a.sql", "ALTER TABLE a ADD c int;\n"),
            (
                "V2__b.sql",
                "-- cutover: executor=gh-ost\nALTER TABLE a ADD d int;\n",
            ),
            ("V3__c.sql", "ALTER TABLE a ADD e int;\n"),
        ];
        let paths: Vec<_> = files
            .iter()
            .map(|(n, t)| {
                let p = dir.path().join(n);
                std::fs::write(&p, t).unwrap_or_else(|e| panic!("{e}"));
                p
            })
            .collect();
        let ms = load_paths(
            &paths,
            &LoadOptions {
                engine: Some(crate::model::Engine::Mysql),
                format: None,
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let run_dir = dir.path().join("run");
        std::fs::create_dir_all(&run_dir).unwrap_or_else(|e| panic!("{e}"));
        crate::exec::stored::save(&run_dir, &ms, None).unwrap_or_else(|e| panic!("{e}"));
        // The gh-ost migration (segment 1) was running when the supervisor died,
        // as the trail says; the run directory's note says otherwise, and is
        // not believed.
        std::fs::write(run_dir.join(SEGMENT_FILE), "0").unwrap_or_else(|e| panic!("{e}"));
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let l = log.clone();
        let build: Build = Arc::new(move |name: &str, ms: Vec<Migration>| {
            let name: &'static str = match name {
                "gh-ost" => "gh-ost",
                _ => "native",
            };
            let versions: Vec<String> = ms.iter().map(|m| m.version.clone()).collect();
            Ok(Box::new(Fake {
                name,
                versions: versions.join(","),
                log: l.clone(),
            }) as Box<dyn Executor>)
        });
        let caps: CapsOf = Arc::new(|_: &str| Capabilities::ALL);
        let mut pm = PerMigration::new("native", crate::model::Engine::Mysql, build, caps);
        let job = ExecJob {
            run: "r1".into(),
            spec: crate::run::RunSpec {
                binding: crate::policy::Binding {
                    plan_digest: "d".into(),
                    target: "dev".into(),
                },
                environment: crate::policy::Environment::Dev,
                risk: crate::model::Risk::Low,
                versions: ms
                    .iter()
                    .map(|m| crate::policy::approvals::VersionChecksum {
                        version: m.version.clone(),
                        checksum: m.checksum.clone(),
                    })
                    .collect(),
                estimated_seconds: 0.0,
                tables: vec!["a".into()],
                executor: "native".into(),
            },
            run_dir: run_dir.clone(),
            postpone_cut_over: false,
            chunk_size: None,
            max_lag_millis: None,
            running: Some("2".into()),
        };
        let (tx, _rx) = mpsc::channel(64);
        let st = pm
            .recover(job.clone(), tx.clone())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(st.phase, super::super::ExecPhase::NotRunning);
        let detail = st.progress.and_then(|p| p.detail).unwrap_or_default();
        assert!(
            detail.contains("migration 2 (gh-ost) finished while the supervisor was down")
                && detail.contains("continues with migration 3 (native)"),
            "{detail}"
        );
        pm.start(job, tx).await.unwrap_or_else(|e| panic!("{e}"));
        let seen = log.lock().unwrap_or_else(|p| p.into_inner()).clone();
        assert_eq!(
            seen,
            vec!["recover 2".to_string(), "start 3 in segment-2".to_string()],
            "the done migrations are not run again; the third keeps its own directory"
        );
        // The other way round: the note claims the first segment is done, the
        // trail says it was running. Recovery looks at the first one.
        std::fs::write(run_dir.join(SEGMENT_FILE), "2").unwrap_or_else(|e| panic!("{e}"));
        let segs = segments(ms.clone(), "native");
        assert_eq!(recovered_segment(&segs, Some("1")), 0);
        assert_eq!(recovered_segment(&segs, None), 0);
        assert_eq!(recovered_segment(&segs, Some("3")), 2);
        assert_eq!(
            segment_dirs(&run_dir),
            vec![
                run_dir.clone(),
                run_dir.join("segment-1"),
                run_dir.join("segment-2")
            ]
        );
    }
}
