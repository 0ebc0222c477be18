//! fanout (later step).
