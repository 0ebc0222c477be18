//! Subcommand implementations: resolve options, call the library, render.

pub mod audit;
pub mod lag;
pub mod plan;
pub mod rules;
pub mod slack;
