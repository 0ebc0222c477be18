//! Predicted versus observed: pure functions that turn a disagreement into a
//! finding (engines.md §7.3). A stronger observation raises the risk; a weaker
//! one is reported at low risk and never lowers it (fail safe).

use super::{Observed, bare_name};
use crate::model::{Blocks, Engine, Finding, Risk, StatementVerdict};

/// The statement took a lock that blocks more than predicted.
pub const OBSERVED_BLOCKING_LOCK: &str = "observed-blocking-lock";
/// The statement rewrote or copied the table although the plan said it would not.
pub const OBSERVED_TABLE_REWRITE: &str = "observed-table-rewrite";
/// A blocking lock on another table the plan did not predict.
pub const OBSERVED_OTHER_TABLE_LOCK: &str = "observed-other-table-lock";
/// The plan over-predicted (weaker lock or no rewrite).
pub const OBSERVED_WEAKER: &str = "observed-weaker-than-predicted";
/// The statement failed on staging.
pub const FAILED_ON_STAGING: &str = "failed-on-staging";

/// Findings that say something about every statement, not about the operation:
/// they cannot be "the rule that was wrong".
const GENERIC: &[&str] = &[
    "table-size-unknown",
    "missing-lock-timeout",
    "missing-statement-timeout",
    "lock-queue-risk",
    "multiple-alter-same-table",
    "lock-timeout-too-long",
];

/// The rule whose prediction the observation contradicts: the statement's most
/// severe operation-specific finding, or the built-in lock model when none fired.
pub fn predicting_rule(v: &StatementVerdict) -> String {
    v.findings
        .iter()
        .filter(|f| !GENERIC.contains(&f.rule.as_str()))
        .max_by_key(|f| f.risk)
        .map(|f| f.rule.clone())
        .unwrap_or_else(|| "lock-model (no rule matched)".into())
}

fn blocks_text(b: Blocks) -> &'static str {
    match b {
        Blocks::Nothing => "nothing",
        Blocks::Writes => "writes",
        Blocks::ReadsAndWrites => "reads and writes",
    }
}

fn risk_of(blocks: Blocks, rewrite: bool) -> Risk {
    if blocks == Blocks::ReadsAndWrites || (rewrite && blocks != Blocks::Nothing) {
        Risk::High
    } else {
        Risk::Medium
    }
}

fn same_table(a: &str, b: &str) -> bool {
    bare_name(a) == bare_name(b)
}

/// Compares one statement's prediction with what the engine did.
pub fn compare(engine: Engine, pred: &StatementVerdict, obs: &Observed) -> Vec<Finding> {
    let mut out = Vec::new();
    let rule = predicting_rule(pred);
    let observed_blocks = obs.lock.as_ref().map(|l| l.blocks);
    if let Some(lock) = &obs.lock {
        // The main table: the plan's, else the observed one.
        let pred_main = pred.lock.table.as_deref();
        let same = match (pred_main, lock.table.as_deref()) {
            (Some(p), Some(o)) => same_table(p, o),
            // The plan named no table: what it said about the observed one is in other_locks.
            (None, Some(_)) => false,
            (_, None) => true,
        };
        let pred_blocks = if same {
            pred.lock.blocks
        } else {
            // Observed main table is another one: what did the plan say about it?
            lock.table
                .as_deref()
                .and_then(|t| {
                    pred.lock
                        .other_locks
                        .iter()
                        .find(|o| same_table(&o.table, t))
                })
                .map(|o| o.blocks)
                .unwrap_or(Blocks::Nothing)
        };
        let table = lock.table.as_deref().unwrap_or("?");
        if lock.blocks > pred_blocks {
            out.push(Finding {
                rule: OBSERVED_BLOCKING_LOCK.into(),
                risk: risk_of(lock.blocks, obs.rewrote == Some(true)),
                reason: format!(
                    "staging took {} on {table} (blocks {}); the plan predicted {} (blocks {}). Rule that was wrong: {rule}",
                    lock.mode,
                    blocks_text(lock.blocks),
                    pred.lock.mode,
                    blocks_text(pred_blocks)
                ),
                safe_alternative: None,
            });
        } else if lock.blocks < pred_blocks {
            out.push(Finding {
                rule: OBSERVED_WEAKER.into(),
                risk: Risk::Low,
                reason: format!(
                    "staging took only {} on {table} (blocks {}); the plan predicted {} (blocks {}). Rule that over-predicts: {rule}",
                    lock.mode,
                    blocks_text(lock.blocks),
                    pred.lock.mode,
                    blocks_text(pred_blocks)
                ),
                safe_alternative: None,
            });
        }
        for other in &lock.other_locks {
            if other.blocks == Blocks::Nothing {
                continue;
            }
            let predicted = pred
                .lock
                .other_locks
                .iter()
                .chain(std::iter::once(&crate::model::OtherLock {
                    table: pred.lock.table.clone().unwrap_or_default(),
                    mode: pred.lock.mode.clone(),
                    blocks: pred.lock.blocks,
                }))
                .filter(|o| same_table(&o.table, &other.table))
                .map(|o| o.blocks)
                .max()
                .unwrap_or(Blocks::Nothing);
            if other.blocks > predicted {
                out.push(Finding {
                    rule: OBSERVED_OTHER_TABLE_LOCK.into(),
                    risk: risk_of(other.blocks, false),
                    reason: format!(
                        "staging also took {} on {} (blocks {}), which the plan did not predict. Rule that was wrong: {rule}",
                        other.mode,
                        other.table,
                        blocks_text(other.blocks)
                    ),
                    safe_alternative: None,
                });
            }
        }
    }
    match obs.rewrote {
        Some(true) if !pred.rewrites_table => out.push(Finding {
            rule: OBSERVED_TABLE_REWRITE.into(),
            // A copy that blocks nothing (online rebuild) is still a long operation.
            risk: risk_of(observed_blocks.unwrap_or(Blocks::ReadsAndWrites), true),
            reason: format!(
                "staging {} the table{}; the plan predicted no rewrite. Rule that was wrong: {rule}",
                if engine == Engine::Mysql && obs.rows_copied.unwrap_or(0) > 0 {
                    "copied"
                } else {
                    "rewrote"
                },
                obs.rows_copied
                    .filter(|n| *n > 0)
                    .map(|n| format!(" ({n} rows affected)"))
                    .unwrap_or_default()
            ),
            safe_alternative: None,
        }),
        Some(false) if pred.rewrites_table => out.push(Finding {
            rule: OBSERVED_WEAKER.into(),
            risk: Risk::Low,
            reason: format!(
                "staging did not rewrite the table; the plan predicted a rewrite. Rule that over-predicts: {rule}"
            ),
            safe_alternative: None,
        }),
        _ => {}
    }
    out
}

/// A statement that failed on staging: it would fail in production too.
pub fn failed_finding(error: &str) -> Finding {
    Finding {
        rule: FAILED_ON_STAGING.into(),
        risk: Risk::High,
        reason: format!("the statement failed on the staging copy: {error}"),
        safe_alternative: Some("fix the migration before it reaches production".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Lock, OtherLock};

    fn verdict(mode: &str, blocks: Blocks, rewrites: bool, rule: Option<&str>) -> StatementVerdict {
        StatementVerdict {
            index: 0,
            line: 1,
            sql: "ALTER TABLE t …".into(),
            risk: Risk::Low,
            lock: Lock {
                mode: mode.into(),
                blocks,
                table: Some("t".into()),
                other_locks: vec![],
            },
            rewrites_table: rewrites,
            estimate: None,
            findings: rule
                .into_iter()
                .map(|r| Finding {
                    rule: r.into(),
                    risk: Risk::Low,
                    reason: String::new(),
                    safe_alternative: None,
                })
                .collect(),
        }
    }

    fn seen(mode: &str, blocks: Blocks, rewrote: bool) -> Observed {
        Observed {
            lock: Some(Lock {
                mode: mode.into(),
                blocks,
                table: Some("public.t".into()),
                other_locks: vec![],
            }),
            rewrote: Some(rewrote),
            ..Observed::default()
        }
    }

    #[test]
    fn agreement_has_no_findings() {
        let v = verdict("AccessExclusiveLock", Blocks::ReadsAndWrites, false, None);
        let o = seen("AccessExclusiveLock", Blocks::ReadsAndWrites, false);
        assert!(compare(Engine::Postgres, &v, &o).is_empty());
    }

    #[test]
    fn unpredicted_rewrite_is_high_and_names_the_rule() {
        let v = verdict(
            "AccessExclusiveLock",
            Blocks::ReadsAndWrites,
            false,
            Some("change-column-type-coercible"),
        );
        let o = seen("AccessExclusiveLock", Blocks::ReadsAndWrites, true);
        let f = compare(Engine::Postgres, &v, &o);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule, OBSERVED_TABLE_REWRITE);
        assert_eq!(f[0].risk, Risk::High);
        assert!(
            f[0].reason.contains("change-column-type-coercible"),
            "{}",
            f[0].reason
        );
    }

    #[test]
    fn stronger_lock_raises_weaker_lock_does_not() {
        let v = verdict("ShareUpdateExclusiveLock", Blocks::Nothing, false, None);
        let o = seen("ShareLock", Blocks::Writes, false);
        let f = compare(Engine::Postgres, &v, &o);
        assert_eq!(f[0].rule, OBSERVED_BLOCKING_LOCK);
        assert_eq!(f[0].risk, Risk::Medium);
        assert!(f[0].reason.contains("lock-model"));

        let v = verdict("AccessExclusiveLock", Blocks::ReadsAndWrites, true, None);
        let o = seen("ShareUpdateExclusiveLock", Blocks::Nothing, false);
        let f = compare(Engine::Postgres, &v, &o);
        assert_eq!(f.len(), 2);
        assert!(
            f.iter()
                .all(|f| f.rule == OBSERVED_WEAKER && f.risk == Risk::Low)
        );
    }

    #[test]
    fn unpredicted_lock_on_another_table() {
        let mut v = verdict("ShareRowExclusiveLock", Blocks::Writes, false, None);
        let mut o = seen("ShareRowExclusiveLock", Blocks::Writes, false);
        o.lock.as_mut().unwrap().other_locks.push(OtherLock {
            table: "public.parent".into(),
            mode: "AccessExclusiveLock".into(),
            blocks: Blocks::ReadsAndWrites,
        });
        let f = compare(Engine::Postgres, &v, &o);
        assert_eq!(f[0].rule, OBSERVED_OTHER_TABLE_LOCK);
        assert_eq!(f[0].risk, Risk::High);
        v.lock.other_locks.push(OtherLock {
            table: "parent".into(),
            mode: "AccessExclusiveLock".into(),
            blocks: Blocks::ReadsAndWrites,
        });
        assert!(compare(Engine::Postgres, &v, &o).is_empty());
    }

    #[test]
    fn a_statement_the_plan_gave_no_table_is_compared_on_the_observed_one() {
        let mut v = verdict("none", Blocks::Nothing, false, None);
        v.lock.table = None;
        let o = seen("ShareRowExclusiveLock", Blocks::Writes, false);
        assert_eq!(
            compare(Engine::Postgres, &v, &o)[0].rule,
            OBSERVED_BLOCKING_LOCK
        );
        v.lock.other_locks.push(OtherLock {
            table: "t".into(),
            mode: "ShareRowExclusiveLock".into(),
            blocks: Blocks::Writes,
        });
        assert!(compare(Engine::Postgres, &v, &o).is_empty());
    }

    #[test]
    fn unknown_observation_is_no_finding() {
        let v = verdict("INSTANT", Blocks::Nothing, false, None);
        assert!(compare(Engine::Mysql, &v, &Observed::default()).is_empty());
    }
}
