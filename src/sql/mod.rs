//! SQL text → statements → operation facts.

pub mod analyze;
pub mod fallback;
pub mod names;
pub mod ops;
pub mod par;
pub mod redact;
pub mod split;
