//! Audit trail (step 2).
