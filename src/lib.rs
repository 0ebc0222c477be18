//! cutover: coordinate production schema migrations — classify, approve, run,
//! watch and audit them.
//!
//! The library holds every piece; `main.rs` only parses arguments and maps
//! outcomes to exit codes.

pub mod migrate;
pub mod model;
pub mod sql;
