//! Supervisor (step 6).
