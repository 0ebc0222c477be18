//! Subcommand implementations: resolve options, call the library, render.

pub mod audit;
pub mod cleanup;
pub mod control;
pub mod demo;
pub mod headless;
pub mod lag;
pub mod plan;
pub mod rederive;
pub mod rules;
pub mod run;
pub mod runs;
pub mod serve;
pub mod slack;
pub mod verify;
