//! sampling (later step).
