//! rehearse: rehearse Kubernetes traffic changes before making them.
//!
//! The pipeline, one module each: [`syntax`] parses `.rollout` scripts into a typed AST,
//! [`check`] finds problems before anything runs, and the executor (later) runs scenarios.
//! [`model`] holds the pure vocabulary (selectors, labels, kinds) all stages share.

pub mod check;
pub mod cluster;
pub mod diagnostic;
pub mod exec;
pub mod input;
pub mod model;
pub mod report;
pub mod select;
pub mod span;
pub mod suite;
pub mod syntax;

pub use check::{CheckedFile, check_path, check_source};
pub use diagnostic::{Diagnostic, Severity};
pub use select::{ScenarioEntry, Selection, Shard};
pub use suite::{Cluster, RunConfig, RunError, RunOutcome, Suite};
pub use syntax::{Parsed, parse};
