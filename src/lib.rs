//! cutover: coordinate production schema migrations — classify, approve, run,
//! watch and audit them.
//!
//! The library holds every piece; `main.rs` only parses arguments and maps
//! outcomes to exit codes.

pub mod audit;
pub mod catalog;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod dberror;
pub mod exec;
pub mod lag;
pub mod migrate;
pub mod model;
pub mod policy;
pub mod report;
pub mod risk;
pub mod run;
pub mod serve;
pub mod slack;
pub mod sql;
pub mod supervisor;
pub mod tui;
pub mod verify;
