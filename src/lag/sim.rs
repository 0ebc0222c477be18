//! Simulated replicas (filled in step 4).
