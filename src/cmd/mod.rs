//! Subcommand implementations: resolve options, call the library, render.

pub mod plan;
pub mod rules;
