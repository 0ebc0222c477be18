//! The console: a full-screen terminal UI over one run.
//!
//! - [`model`]: what the console knows, folded from the supervisor's stream;
//! - [`keys`]: the key map and the pure key → effect state machine;
//! - [`view`]: rendering, a pure function of (model, UI state, theme);
//! - [`theme`]: colours from `themes/*.toml`, embedded defaults;
//! - [`app`]: the terminal loop (the only part with I/O).
//!
//! The console is a client of the run's supervisor: it knows nothing about
//! the executor behind it (native, gh-ost, pt-osc or the demo's simulator).

pub mod app;
pub mod config;
pub mod keys;
pub mod model;
pub mod theme;
pub mod view;

pub use config::ConsoleConfig;
pub use keys::{Action, Effect, KeyMap, Ui};
pub use model::{Console, HeaderInfo};
pub use theme::Theme;
