//! What a run produces: result documents (deterministic), snapshot files, and reports for people
//! (terminal) and CI (JUnit XML, JSON, GitHub Actions annotations).

pub mod color;
pub mod document;
pub mod github;
pub mod json;
pub mod junit;
pub mod progress;
pub mod snapshot;
pub mod terminal;
