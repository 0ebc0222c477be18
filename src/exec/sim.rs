//! Simulated executor (filled in step 4).
