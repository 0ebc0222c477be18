//! The exact migrations a run was approved for, kept in its run directory.
//!
//! The supervisor never re-reads migration files from the project: `cutover
//! run` copies the source files' bytes into `<run_dir>/migrations.json`, and
//! at every start and recovery the executor re-loads them with the same loader
//! `cutover plan` uses (splitting, directives, transaction wrapping all derived
//! from the bytes), keeps the approved versions and checks every (version,
//! SHA-256) pair against the run's binding. Nothing derived (statement lists,
//! directives) is stored, so nothing derived can be edited after approval.

use super::{
    Capabilities, Control, ExecError, ExecJob, ExecStatus, ExecUpdate, Executor, Leftover, Outcome,
};
use crate::lag::LagPoller;
use crate::migrate::{LoadOptions, Migration, SourceFormat, load_paths, sha256_hex};
use crate::model::Engine;
use crate::policy::approvals::VersionChecksum;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// File name inside the run directory.
pub const FILE: &str = "migrations.json";

/// One source file, byte for byte.
#[derive(Serialize, Deserialize)]
struct StoredFile {
    /// Where it was read from (shown, and recorded in the history table).
    path: PathBuf,
    text: String,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    /// The source format forced on the command line or in cutover.toml, if any
    /// (it is covered by the plan digest, so editing it voids the approval).
    format: Option<SourceFormat>,
    files: Vec<StoredFile>,
}

/// Writes the source files of `migrations` to `<run_dir>/migrations.json` (atomically).
pub fn save(
    run_dir: &Path,
    migrations: &[Migration],
    format: Option<SourceFormat>,
) -> std::io::Result<()> {
    let mut files: Vec<StoredFile> = Vec::new();
    for m in migrations {
        if files.iter().any(|f| f.path == m.path) {
            continue;
        }
        let text = std::fs::read_to_string(&m.path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", m.path.display())))?;
        files.push(StoredFile {
            path: m.path.clone(),
            text,
        });
    }
    let json =
        serde_json::to_vec_pretty(&Stored { format, files }).map_err(std::io::Error::other)?;
    let tmp = run_dir.join(format!("{FILE}.tmp"));
    std::fs::write(&tmp, json)?;
    std::fs::rename(tmp, run_dir.join(FILE))
}

/// Why stored migrations cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoredError {
    #[error("{path}: {message}")]
    Read { path: String, message: String },
    #[error(
        "the stored migrations do not match the approved plan: {0}. Nothing was run; re-run `cutover run` to re-plan"
    )]
    Mismatch(String),
}

/// Loads the stored bytes of `versions` (in that order) for `engine`: every
/// statement list, directive and transaction mode comes from the bytes.
pub fn load(
    run_dir: &Path,
    engine: Engine,
    versions: &[String],
) -> Result<Vec<Migration>, StoredError> {
    let path = run_dir.join(FILE);
    let shown = path.display().to_string();
    let read = |message: String| StoredError::Read {
        path: shown.clone(),
        message,
    };
    let bytes = std::fs::read(&path).map_err(|e| read(e.to_string()))?;
    let stored: Stored = serde_json::from_slice(&bytes).map_err(|e| read(e.to_string()))?;
    // The loader reads files: give it the approved bytes in a private scratch dir.
    let scratch = tempfile::Builder::new()
        .prefix(".approved")
        .tempdir_in(run_dir)
        .map_err(|e| read(e.to_string()))?;
    let mut all: Vec<Migration> = Vec::new();
    for (i, f) in stored.files.iter().enumerate() {
        let name = f
            .path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| "migration.sql".into());
        let dir = scratch.path().join(i.to_string());
        std::fs::create_dir_all(&dir).map_err(|e| read(e.to_string()))?;
        let p = dir.join(name);
        std::fs::write(&p, &f.text).map_err(|e| read(e.to_string()))?;
        let opts = LoadOptions {
            engine: Some(engine),
            format: stored.format,
        };
        let ms = load_paths(&[p], &opts)
            .map_err(|e| read(format!("{} (stored copy): {e}", f.path.display())))?;
        for mut m in ms {
            m.path = f.path.clone();
            all.push(m);
        }
    }
    let mut out = Vec::with_capacity(versions.len());
    for v in versions {
        let i = all.iter().position(|m| &m.version == v).ok_or_else(|| {
            StoredError::Mismatch(format!("version {v} is not in the stored files"))
        })?;
        out.push(all.swap_remove(i));
    }
    Ok(out)
}

/// Loads the stored migrations and checks them against the run's approved
/// (version, SHA-256) pairs.
pub fn load_verified(
    run_dir: &Path,
    engine: Engine,
    approved: &[VersionChecksum],
) -> Result<Vec<Migration>, StoredError> {
    let versions: Vec<String> = approved.iter().map(|a| a.version.clone()).collect();
    let ms = load(run_dir, engine, &versions)?;
    for (m, a) in ms.iter().zip(approved) {
        let actual = sha256_hex(m.text.as_bytes());
        if m.checksum != a.checksum || actual != a.checksum {
            return Err(StoredError::Mismatch(format!(
                "version {} hashes to {} but {} was approved",
                m.version,
                short(&actual),
                short(&a.checksum)
            )));
        }
    }
    Ok(ms)
}

fn short(s: &str) -> &str {
    &s[..12.min(s.len())]
}

/// Builds the real executor once the approved migrations are known.
pub type Factory =
    Box<dyn Fn(Vec<Migration>, Option<Box<dyn LagPoller>>) -> Box<dyn Executor> + Send>;

/// A native executor that takes its migrations from the run directory at start
/// (or recovery), verified against the job's approved versions.
pub struct FromRunDir {
    name: &'static str,
    capabilities: Capabilities,
    engine: Engine,
    factory: Factory,
    lag: Option<Box<dyn LagPoller>>,
    inner: Option<Box<dyn Executor>>,
}

impl FromRunDir {
    /// `capabilities` are the inner driver's (known before it exists).
    pub fn new(
        name: &'static str,
        capabilities: Capabilities,
        engine: Engine,
        factory: Factory,
        lag: Option<Box<dyn LagPoller>>,
    ) -> FromRunDir {
        FromRunDir {
            name,
            capabilities,
            engine,
            factory,
            lag,
            inner: None,
        }
    }

    fn build(&mut self, job: &ExecJob) -> Result<&mut Box<dyn Executor>, ExecError> {
        let ms = load_verified(&job.run_dir, self.engine, &job.spec.versions)
            .map_err(|e| ExecError::Refused(e.to_string()))?;
        let exec = (self.factory)(ms, self.lag.take());
        Ok(self.inner.insert(exec))
    }
}

impl Executor for FromRunDir {
    fn name(&self) -> &'static str {
        self.name
    }

    fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    fn start(
        &mut self,
        job: ExecJob,
        updates: mpsc::Sender<ExecUpdate>,
    ) -> BoxFuture<'_, Result<(), ExecError>> {
        Box::pin(async move {
            let inner = self.build(&job)?;
            inner.start(job, updates).await
        })
    }

    fn control(&mut self, control: Control) -> BoxFuture<'_, Result<(), ExecError>> {
        match self.inner.as_mut() {
            Some(i) => i.control(control),
            None => Box::pin(async { Err(ExecError::NotStarted) }),
        }
    }

    fn status(&mut self) -> BoxFuture<'_, Result<ExecStatus, ExecError>> {
        match self.inner.as_mut() {
            Some(i) => i.status(),
            None => Box::pin(async { Err(ExecError::NotStarted) }),
        }
    }

    fn outcome(&mut self) -> BoxFuture<'_, Result<Option<Outcome>, ExecError>> {
        match self.inner.as_mut() {
            Some(i) => i.outcome(),
            None => Box::pin(async { Ok(None) }),
        }
    }

    fn leftovers(&mut self) -> BoxFuture<'_, Result<Vec<Leftover>, ExecError>> {
        match self.inner.as_mut() {
            Some(i) => i.leftovers(),
            None => Box::pin(async { Ok(Vec::new()) }),
        }
    }

    fn recover(
        &mut self,
        job: ExecJob,
        updates: mpsc::Sender<ExecUpdate>,
    ) -> BoxFuture<'_, Result<ExecStatus, ExecError>> {
        Box::pin(async move {
            let inner = self.build(&job)?;
            inner.recover(job, updates).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn migrations(dir: &Path, sql: &str) -> Vec<Migration> {
        let f = dir.join("V1__a.sql");
        std::fs::write(&f, sql).unwrap_or_else(|e| panic!("{e}"));
        load_paths(
            &[f],
            &LoadOptions {
                engine: Some(Engine::Postgres),
                format: None,
            },
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn approved(ms: &[Migration]) -> Vec<VersionChecksum> {
        ms.iter()
            .map(|m| VersionChecksum {
                version: m.version.clone(),
                checksum: m.checksum.clone(),
            })
            .collect()
    }

    #[test]
    fn round_trips_and_refuses_edited_or_other_migrations() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let ms = migrations(dir.path(), "ALTER TABLE t ADD c int;\nSELECT 1;\n");
        save(dir.path(), &ms, None).unwrap_or_else(|e| panic!("{e}"));
        let back = load_verified(dir.path(), Engine::Postgres, &approved(&ms))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back[0].statements, ms[0].statements);
        assert_eq!(back[0].text, ms[0].text);

        // Approved for other content: refused.
        let other = migrations(dir.path(), "DROP TABLE t;\n");
        assert!(matches!(
            load_verified(dir.path(), Engine::Postgres, &approved(&other)),
            Err(StoredError::Mismatch(_))
        ));

        // Stored text edited behind cutover's back: refused even with the old checksum.
        let p = dir.path().join(FILE);
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&p, text.replace("ADD c int", "ADD c bigint"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            load_verified(dir.path(), Engine::Postgres, &approved(&ms)),
            Err(StoredError::Mismatch(_))
        ));
    }

    #[test]
    fn statements_are_split_from_the_approved_bytes_not_read_from_disk() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let ms = migrations(dir.path(), "ALTER TABLE t ADD c int;\n");
        save(dir.path(), &ms, None).unwrap_or_else(|e| panic!("{e}"));
        // A statement list smuggled into the stored file is ignored.
        let p = dir.path().join(FILE);
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&p).unwrap_or_else(|e| panic!("{e}")))
                .unwrap_or_else(|e| panic!("{e}"));
        v["files"][0]["statements"] = serde_json::json!([[1, "DROP TABLE t"]]);
        std::fs::write(&p, v.to_string()).unwrap_or_else(|e| panic!("{e}"));
        let back = load_verified(dir.path(), Engine::Postgres, &approved(&ms))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back[0].statements.len(), 1);
        assert!(back[0].statements[0].sql.contains("ADD c int"));
    }
}
