//! Who may do what, and when: roles, approvals, change windows and environment
//! promotion.
//!
//! Everything here is pure: it reads [`PolicyConfig`] (the `[policy]` section
//! of `cutover.toml`) and a point in time, and answers allow / warn / block with
//! a reason. The run core ([`crate::run`]) is the only caller that acts on
//! the answers, so every surface (console, Slack, headless CLI) gets the same
//! verdict.

pub mod approvals;
pub mod authz;
pub mod config;
pub mod identity;
pub mod promotion;
pub mod windows;

pub use approvals::{ApprovalRecord, ApprovalStatus, Binding};
pub use authz::{Permission, Role};
pub use config::{Environment, PolicyConfig};
pub use identity::{Actor, Directory, Identity, Surface};
pub use windows::{Clock, FixedClock, SystemClock, WindowDecision, WindowVerdict};
