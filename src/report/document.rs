//! The result of one scenario. Its YAML form (`ScenarioResult::document`) holds only what is
//! deterministic: no durations, namespace names, uids or generated names.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::snapshot::SnapshotOutcome;

use crate::model::file_name::slug;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Passed,
    Failed,
    /// The cluster or infrastructure failed, or the run was interrupted.
    Error,
    Skipped,
}

#[derive(Clone, Debug, Serialize)]
pub struct StepResult {
    pub line: usize,
    /// 1-based column of the step: for annotations, not the document (which predates it).
    #[serde(skip)]
    pub column: usize,
    pub step: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Lines that follow the message on the terminal but are not recorded: they differ from run
    /// to run (the generated names of the pods in flux, and how long they have waited).
    #[serde(skip)]
    pub detail: Vec<String>,
    #[serde(skip)]
    pub elapsed: Duration,
    /// When a step still running began: a signal stops it mid-way, and its time is then the
    /// time until the signal.
    #[serde(skip)]
    pub started: Option<std::time::Instant>,
}

impl StepResult {
    /// `at` is the step's 1-based (line, column).
    pub fn passed(at: (usize, usize), step: String, observed: String, elapsed: Duration) -> Self {
        let observed = (!observed.is_empty()).then_some(observed);
        StepResult {
            line: at.0,
            column: at.1,
            step,
            status: Status::Passed,
            observed,
            message: None,
            detail: Vec::new(),
            elapsed,
            started: None,
        }
    }

    pub fn failed(at: (usize, usize), step: String, message: String, elapsed: Duration) -> Self {
        let (line, column) = at;
        StepResult {
            line,
            column,
            step,
            status: Status::Failed,
            observed: None,
            message: Some(message),
            detail: Vec::new(),
            elapsed,
            started: None,
        }
    }

    /// A step running since `started`, recorded as interrupted until it ends: a signal may stop
    /// it, and it then has no verdict.
    pub fn interrupted(at: (usize, usize), step: String, started: std::time::Instant) -> Self {
        let (line, column) = at;
        StepResult {
            line,
            column,
            step,
            status: Status::Error,
            observed: None,
            message: Some("interrupted".into()),
            detail: Vec::new(),
            elapsed: Duration::ZERO,
            started: Some(started),
        }
    }

    pub fn skipped(at: (usize, usize), step: String) -> Self {
        let (line, column) = at;
        StepResult {
            line,
            column,
            step,
            status: Status::Skipped,
            observed: None,
            message: None,
            detail: Vec::new(),
            elapsed: Duration::ZERO,
            started: None,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct GuardResult {
    pub service: String,
    pub invariant: String,
    pub line: usize,
    /// 1-based column of the `guard` step (not in the document).
    #[serde(skip)]
    pub column: usize,
    pub expect_violation: bool,
    pub violations: Vec<String>,
    pub status: Status,
    /// Why the guard did not pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Each violation with what opened and closed it (which pods, how low): for people, not for
    /// the document, since batching by the endpoint controller may vary them between runs.
    #[serde(skip)]
    pub details: Vec<String>,
}

impl GuardResult {
    /// How the guard is named in messages.
    pub fn title(&self) -> String {
        format!("guard {} {} (line {})", self.service, self.invariant, self.line)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ScenarioResult {
    pub scenario: String,
    pub file: String,
    /// 1-based line and column of the `scenario` keyword (not in the document, which predates them).
    #[serde(skip)]
    pub line: usize,
    #[serde(skip)]
    pub column: usize,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    pub steps: Vec<StepResult>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub guards: Vec<GuardResult>,
    #[serde(skip)]
    pub snapshots: Vec<SnapshotOutcome>,
    #[serde(skip)]
    pub namespace: String,
    #[serde(skip)]
    pub kept: bool,
    /// What finalizers hold as the scenario ends (`kind/name (finalizers)`): on a real cluster
    /// they keep its namespace Terminating. Not in the document: a warning about the script,
    /// not part of its verdict.
    #[serde(skip)]
    pub held_by_finalizers: Vec<String>,
    #[serde(skip)]
    pub duration: Duration,
}

impl ScenarioResult {
    pub fn new(scenario: &str, file: &Path) -> Self {
        ScenarioResult {
            scenario: scenario.to_string(),
            file: file.display().to_string(),
            line: 0,
            column: 0,
            status: Status::Passed,
            failure: None,
            steps: Vec::new(),
            guards: Vec::new(),
            snapshots: Vec::new(),
            namespace: String::new(),
            kept: false,
            held_by_finalizers: Vec::new(),
            duration: Duration::ZERO,
        }
    }

    /// Where `--results DIR` writes this scenario's document.
    pub fn document_name(&self) -> String {
        document_name(Path::new(&self.file), &self.scenario)
    }

    /// The deterministic result document, as YAML. The scenario's namespace, random per run,
    /// reads `{namespace}` wherever a message quotes it (an API server's 500 names the object).
    pub fn document(&self) -> String {
        let document = serde_saphyr::to_string(self).unwrap_or_else(|e| format!("# cannot render the result: {e}\n"));
        if self.namespace.is_empty() { document } else { document.replace(&self.namespace, "{namespace}") }
    }
}

/// The file name of the result document of `scenario` in `file`: the file's stem and the
/// scenario's name as [`slug`] files it.
pub fn document_name(file: &Path, scenario: &str) -> String {
    let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    format!("{stem}__{}.yaml", slug(scenario, '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_names_no_namespace() {
        let mut result = ScenarioResult::new("web", Path::new("web.rollout"));
        result.namespace = "rehearse-web-1a2b3c4d".into();
        result.status = Status::Failed;
        result.failure =
            Some("refused by the API (500): failed to convert new object (rehearse-web-1a2b3c4d/bad; ...)".into());
        let document = result.document();
        assert!(document.contains("(500): failed to convert new object ({namespace}/bad; ...)"), "{document}");
        assert!(!document.contains("1a2b3c4d"), "{document}");
    }
}
