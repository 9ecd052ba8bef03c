//! rehearse: rehearse Kubernetes traffic changes before making them.
//!
//! Most users want [`suite`]: load `.rollout` scripts, check them, choose scenarios
//! ([`Selection`]: name filters, shards) and run them on the built-in cluster or a named one,
//! getting typed results and their deterministic result documents:
//!
//! ```no_run
//! use rehearse::suite::{Cluster, Pace, RunConfig, Suite};
//!
//! let suite = Suite::load(&["scenarios"]).expect("the scripts can be read");
//! for file in suite.files() {
//!     for diagnostic in &file.diagnostics {
//!         eprintln!("{}: {}", diagnostic.location().unwrap_or_default(), diagnostic.message);
//!     }
//! }
//! let config = RunConfig { cluster: Cluster::Builtin { pace: Pace::Fast }, jobs: 4, ..Default::default() };
//! let outcome = suite.run(&config).expect("the cluster runs");
//! for result in &outcome.results {
//!     println!("{:?} {}\n{}", result.status, result.scenario, result.document());
//! }
//! ```
//!
//! The pipeline, one module each: [`syntax`] parses scripts into a typed AST with spans,
//! [`check`] finds problems before anything runs, [`exec`] runs one scenario's steps against a
//! [`cluster`] (a real one through kube-rs, or the built-in one in [`cluster::sim`]), and
//! [`report`] turns results into documents, snapshots and reports. [`model`] holds the pure
//! vocabulary (selectors, labels, kinds) all stages share.

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
