//! The exact migrations a run was approved for, kept in its run directory.
//!
//! The supervisor never re-reads migration files: `cutover run` writes the text
//! and statements it planned to `<run_dir>/migrations.json`, and a native executor
//! loads them at start and checks every (version, SHA-256) pair against the run's
//! binding. A file edited after approval therefore cannot run: the plan revision
//! voids the approval, and stale stored text fails the check.

use super::{
    Capabilities, Control, ExecError, ExecJob, ExecStatus, ExecUpdate, Executor, Leftover, Outcome,
};
use crate::lag::LagPoller;
use crate::migrate::{Directives, Migration, SourceFormat, TxWrap, sha256_hex};
use crate::model::Engine;
use crate::policy::approvals::VersionChecksum;
use crate::sql::split::RawStatement;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// File name inside the run directory.
pub const FILE: &str = "migrations.json";

#[derive(Serialize, Deserialize)]
struct StoredMigration {
    version: String,
    description: String,
    path: PathBuf,
    checksum: String,
    engine: Engine,
    format: SourceFormat,
    repeatable: bool,
    tx: TxWrap,
    directives: Directives,
    /// (line, sql) of each statement, exactly as planned.
    statements: Vec<(usize, String)>,
    text: String,
}

/// Writes the migrations to `<run_dir>/migrations.json` (atomically).
pub fn save(run_dir: &Path, migrations: &[Migration]) -> std::io::Result<()> {
    let stored: Vec<StoredMigration> = migrations
        .iter()
        .map(|m| StoredMigration {
            version: m.version.clone(),
            description: m.description.clone(),
            path: m.path.clone(),
            checksum: m.checksum.clone(),
            engine: m.engine,
            format: m.format,
            repeatable: m.repeatable,
            tx: m.tx,
            directives: m.directives.clone(),
            statements: m
                .statements
                .iter()
                .map(|s| (s.line, s.sql.clone()))
                .collect(),
            text: m.text.clone(),
        })
        .collect();
    let json = serde_json::to_vec_pretty(&stored).map_err(std::io::Error::other)?;
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

/// Loads the stored migrations and checks them against the run's approved versions.
pub fn load_verified(
    run_dir: &Path,
    approved: &[VersionChecksum],
) -> Result<Vec<Migration>, StoredError> {
    let path = run_dir.join(FILE);
    let shown = path.display().to_string();
    let bytes = std::fs::read(&path).map_err(|e| StoredError::Read {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    let stored: Vec<StoredMigration> =
        serde_json::from_slice(&bytes).map_err(|e| StoredError::Read {
            path: shown.clone(),
            message: e.to_string(),
        })?;
    if stored.len() != approved.len() {
        return Err(StoredError::Mismatch(format!(
            "{} migration(s) stored, {} approved",
            stored.len(),
            approved.len()
        )));
    }
    let mut out = Vec::with_capacity(stored.len());
    for (s, a) in stored.into_iter().zip(approved) {
        let actual = sha256_hex(s.text.as_bytes());
        if s.version != a.version || s.checksum != a.checksum || actual != a.checksum {
            return Err(StoredError::Mismatch(format!(
                "version {} (stored checksum {}, text hashes to {}) vs approved {} ({})",
                s.version,
                short(&s.checksum),
                short(&actual),
                a.version,
                short(&a.checksum)
            )));
        }
        out.push(Migration {
            version: s.version,
            description: s.description,
            path: s.path,
            checksum: s.checksum,
            engine: s.engine,
            format: s.format,
            repeatable: s.repeatable,
            tx: s.tx,
            directives: s.directives,
            statements: s
                .statements
                .into_iter()
                .map(|(line, sql)| RawStatement { sql, line })
                .collect(),
            text: s.text,
        });
    }
    Ok(out)
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
    factory: Factory,
    lag: Option<Box<dyn LagPoller>>,
    inner: Option<Box<dyn Executor>>,
}

impl FromRunDir {
    /// `capabilities` are the inner driver's (known before it exists).
    pub fn new(
        name: &'static str,
        capabilities: Capabilities,
        factory: Factory,
        lag: Option<Box<dyn LagPoller>>,
    ) -> FromRunDir {
        FromRunDir {
            name,
            capabilities,
            factory,
            lag,
            inner: None,
        }
    }

    fn build(&mut self, job: &ExecJob) -> Result<&mut Box<dyn Executor>, ExecError> {
        let ms = load_verified(&job.run_dir, &job.spec.versions)
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
    use crate::migrate::{LoadOptions, load_paths};

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
        save(dir.path(), &ms).unwrap_or_else(|e| panic!("{e}"));
        let back = load_verified(dir.path(), &approved(&ms)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back[0].statements, ms[0].statements);
        assert_eq!(back[0].text, ms[0].text);

        // Approved for other content: refused.
        let other = migrations(dir.path(), "DROP TABLE t;\n");
        assert!(matches!(
            load_verified(dir.path(), &approved(&other)),
            Err(StoredError::Mismatch(_))
        ));

        // Stored text edited behind cutover's back: refused even with the old checksum.
        let p = dir.path().join(FILE);
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&p, text.replace("ADD c int", "ADD c bigint"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            load_verified(dir.path(), &approved(&ms)),
            Err(StoredError::Mismatch(_))
        ));
    }
}
