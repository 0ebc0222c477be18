//! core (later step).
