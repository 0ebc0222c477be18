//! Environment promotion: dev → staging → prod.
//!
//! A prod run needs the same plan digest to have succeeded on a staging
//! target before. The digest does not cover the target, so any staging
//! target counts. The history comes from the audit trail
//! ([`crate::audit::staging_successes`]).

use super::config::{Environment, PromotionConfig};
use std::collections::BTreeSet;

/// `Ok` when the run may proceed, or the reason it may not (overridable by a DBA).
pub fn check(
    cfg: &PromotionConfig,
    env: Environment,
    plan_digest: &str,
    staging_successes: &BTreeSet<String>,
) -> Result<(), String> {
    if env != Environment::Prod || !cfg.require_staging_for_prod {
        return Ok(());
    }
    if staging_successes.contains(plan_digest) {
        Ok(())
    } else {
        Err(format!(
            "plan {} has not succeeded on a staging target yet (run it on staging first, or a DBA overrides promotion with a reason)",
            short(plan_digest)
        ))
    }
}

/// The first 12 characters of a digest, for messages.
pub fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prod_needs_the_same_digest_on_staging() {
        let cfg = PromotionConfig::default();
        let mut seen = BTreeSet::new();
        assert!(check(&cfg, Environment::Staging, "abc", &seen).is_ok());
        assert!(check(&cfg, Environment::Dev, "abc", &seen).is_ok());
        assert!(check(&cfg, Environment::Prod, "abc", &seen).is_err());
        seen.insert("abd".to_string());
        assert!(check(&cfg, Environment::Prod, "abc", &seen).is_err());
        seen.insert("abc".to_string());
        assert!(check(&cfg, Environment::Prod, "abc", &seen).is_ok());
        let off = PromotionConfig {
            require_staging_for_prod: false,
        };
        assert!(check(&off, Environment::Prod, "zzz", &BTreeSet::new()).is_ok());
    }
}
