//! cutover: coordinate production schema migrations — classify, approve, run,
//! watch and audit them.
//!
//! The library holds every piece; `main.rs` only parses arguments and maps
//! outcomes to exit codes.

pub mod catalog;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod migrate;
pub mod model;
pub mod report;
pub mod risk;
pub mod sql;
