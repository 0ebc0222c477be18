//! `cutover verify`: run each planned statement on a staging target and record
//! what the engine really did (locks, rewrite, algorithm, duration), beside what
//! the plan predicted. A disagreement becomes a finding that raises the
//! statement's risk and names the rule that predicted wrongly.
//!
//! The probes never leave anything behind: PostgreSQL statements run inside
//! `BEGIN … ROLLBACK`; what cannot run in a transaction, and every MySQL/MariaDB
//! statement, runs on scratch copies in a scratch schema that is dropped after.
//! Engine facts: specs/engines.md §7.

pub mod calibrate;
pub mod compare;
pub mod mysql;
pub mod pg;
pub mod render;

use crate::model::{Engine, Finding, Lock, Plan, Risk, StatementVerdict};
use serde::Serialize;

/// How a statement was observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// PostgreSQL: inside `BEGIN … ROLLBACK` on the real tables.
    Transaction,
    /// On a scratch copy of the table (`LIKE` + a sample of rows).
    ScratchCopy,
}

/// What the engine did with one statement.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Observed {
    pub method: Option<Method>,
    /// Strongest lock on the statement's main table, other tables in `other_locks`.
    /// `None` when it could not be observed.
    pub lock: Option<Lock>,
    /// The table's storage was replaced (relfilenode / tablespace id changed, or rows copied).
    pub rewrote: Option<bool>,
    /// MySQL/MariaDB: rows the server reported as affected (COPY copies every row).
    pub rows_copied: Option<u64>,
    /// MySQL/MariaDB: the first `ALGORITHM=…, LOCK=…` the server accepted.
    pub accepted: Option<String>,
    /// MySQL/MariaDB: the clauses the server refused, with its error.
    pub refused: Vec<String>,
    /// Wall-clock time of the statement itself (on staging or its sample).
    pub duration_ms: f64,
    /// Facts worth showing that the comparison does not use.
    pub notes: Vec<String>,
}

/// The outcome of verifying one statement.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Observed(Observed),
    /// The statement failed on staging: it would fail in production too.
    Failed {
        error: String,
    },
    /// Not run (transaction control, a table this plan creates, …).
    Skipped {
        reason: String,
    },
}

/// One statement: the plan's verdict (risk raised by disagreements) and what was seen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifiedStatement {
    /// The plan's verdict; `risk` and `findings` include the verify findings.
    pub verdict: StatementVerdict,
    /// Risk the plan predicted before verification.
    pub predicted_risk: Risk,
    pub outcome: Outcome,
    /// Findings added by verification (also in `verdict.findings`).
    pub disagreements: Vec<Finding>,
}

/// One migration of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifiedMigration {
    pub version: String,
    pub description: String,
    pub path: String,
    pub engine: Engine,
    pub risk: Risk,
    pub statements: Vec<VerifiedStatement>,
}

/// What `cutover verify` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyReport {
    pub target: String,
    pub server_version: String,
    pub plan_digest: String,
    /// The plan's risk before verification, and after.
    pub predicted_risk: Risk,
    pub risk: Risk,
    pub migrations: Vec<VerifiedMigration>,
    pub disagreements: usize,
    pub failed: usize,
    /// Objects the probes created and could not remove (empty when clean).
    pub leftovers: Vec<String>,
}

/// Options of a verification run.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Rows copied into each scratch table.
    pub sample_rows: u64,
    /// PostgreSQL `lock_timeout` per probe (and MySQL `lock_wait_timeout`, rounded up).
    pub lock_timeout_ms: u64,
    /// PostgreSQL `statement_timeout` per probe.
    pub statement_timeout_ms: u64,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            sample_rows: 1000,
            lock_timeout_ms: 2000,
            statement_timeout_ms: 600_000,
        }
    }
}

/// A statement to verify, in plan order.
#[derive(Debug, Clone)]
pub struct Probe {
    /// Index of the migration in the plan's list and of the statement in it.
    pub migration: usize,
    pub statement: usize,
    /// The statement as the migration holds it (unredacted: it is executed).
    pub sql: String,
    pub op: crate::sql::ops::Op,
}

/// Errors that stop a verification (connection, scratch set-up).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct VerifyError(pub String);

/// Assembles the report from the plan and the outcomes (in probe order).
pub fn assemble(
    plan: &Plan,
    target: &str,
    server_version: &str,
    outcomes: Vec<(usize, usize, Outcome)>,
    leftovers: Vec<String>,
) -> VerifyReport {
    let mut migrations: Vec<VerifiedMigration> = plan
        .migrations
        .iter()
        .map(|m| VerifiedMigration {
            version: m.version.clone(),
            description: m.description.clone(),
            path: m.path.clone(),
            engine: m.engine,
            risk: m.risk,
            statements: m
                .statements
                .iter()
                .map(|s| VerifiedStatement {
                    verdict: s.clone(),
                    predicted_risk: s.risk,
                    outcome: Outcome::Skipped {
                        reason: "not probed".into(),
                    },
                    disagreements: vec![],
                })
                .collect(),
        })
        .collect();
    for (mi, si, outcome) in outcomes {
        let Some(m) = migrations.get_mut(mi) else {
            continue;
        };
        let engine = m.engine;
        let Some(s) = m.statements.get_mut(si) else {
            continue;
        };
        if let Outcome::Observed(o) = &outcome {
            s.disagreements = compare::compare(engine, &s.verdict, o);
        }
        if let Outcome::Failed { error } = &outcome {
            s.disagreements = vec![compare::failed_finding(error)];
        }
        for f in &s.disagreements {
            s.verdict.risk = s.verdict.risk.max(f.risk);
            s.verdict.findings.push(f.clone());
        }
        s.outcome = outcome;
    }
    for m in &mut migrations {
        m.risk = m
            .statements
            .iter()
            .map(|s| s.verdict.risk)
            .fold(m.risk, Risk::max);
    }
    let disagreements = migrations
        .iter()
        .flat_map(|m| &m.statements)
        .filter(|s| {
            s.disagreements
                .iter()
                .any(|f| f.rule != compare::FAILED_ON_STAGING)
        })
        .count();
    let failed = migrations
        .iter()
        .flat_map(|m| &m.statements)
        .filter(|s| matches!(s.outcome, Outcome::Failed { .. }))
        .count();
    let risk = migrations.iter().map(|m| m.risk).fold(plan.risk, Risk::max);
    VerifyReport {
        target: target.to_string(),
        server_version: server_version.to_string(),
        plan_digest: plan.plan_digest.clone(),
        predicted_risk: plan.risk,
        risk,
        migrations,
        disagreements,
        failed,
        leftovers,
    }
}

/// True for statements that only steer transactions (nothing to observe).
pub fn is_transaction_control(op: &crate::sql::ops::Op) -> bool {
    use crate::sql::ops::Op;
    matches!(op, Op::Begin | Op::Commit | Op::Rollback)
}

/// The last dotted component, unquoted and lowercased: how names are matched.
pub fn bare_name(name: &str) -> String {
    name.rsplit('.')
        .next()
        .unwrap_or(name)
        .trim_matches(|c| c == '"' || c == '`')
        .to_ascii_lowercase()
}
