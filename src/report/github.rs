//! GitHub Actions annotations: workflow commands on stdout (`::error file=F,line=L,col=C,title=T::M`)
//! that put each failure on its script line in the pull request. Printed under GitHub Actions
//! (`GITHUB_ACTIONS=true`) or with `--report github`.

use crate::diagnostic::{Diagnostic, Severity};

use super::document::{ScenarioResult, Status};

/// Whether this process runs in a GitHub Actions job.
pub fn in_github_actions() -> bool {
    std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
}

/// Where an annotation points: a file, and a 1-based line and column in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position<'a> {
    pub file: &'a str,
    pub line: usize,
    pub column: usize,
}

/// A message escaped as GitHub's runner reads it back: `%`, CR and LF.
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// A property value escaped: as [`escape_data`], and `:` and `,`, which end a property.
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// One workflow command line (without its newline).
pub fn command(level: Level, at: Option<Position>, title: Option<&str>, message: &str) -> String {
    let mut properties = Vec::new();
    if let Some(Position { file, line, column }) = at {
        properties.push(format!("file={}", escape_property(file)));
        if line > 0 {
            properties.push(format!("line={line}"));
            if column > 0 {
                properties.push(format!("col={column}"));
            }
        }
    }
    if let Some(title) = title {
        properties.push(format!("title={}", escape_property(title)));
    }
    let name = match level {
        Level::Error => "error",
        Level::Warning => "warning",
    };
    let separator = if properties.is_empty() { "" } else { " " };
    format!("::{name}{separator}{}::{}", properties.join(","), escape_data(message))
}

/// The annotations of one finished scenario: one per failing step and guard, and one on the
/// `scenario` line for a failure neither of them shows (an infrastructure error, a snapshot).
pub fn scenario(result: &ScenarioResult) -> Vec<String> {
    if !matches!(result.status, Status::Failed | Status::Error) {
        return Vec::new();
    }
    let title = |status: Status| {
        let what = if status == Status::Error { "error" } else { "failed" };
        format!("rehearse: scenario \"{}\" {what}", result.scenario)
    };
    let at = |line, column| Some(Position { file: &result.file, line, column });
    let mut lines = Vec::new();
    let mut shown = Vec::new();
    for step in result.steps.iter().filter(|s| matches!(s.status, Status::Failed | Status::Error)) {
        let message = step.message.as_deref().unwrap_or("failed");
        lines.push(command(Level::Error, at(step.line, step.column), Some(&title(result.status)), message));
        shown.push(message.to_string());
    }
    for guard in result.guards.iter().filter(|g| g.status != Status::Passed) {
        let message = format!("{} {}", guard.title(), guard.message.as_deref().unwrap_or("failed"));
        lines.push(command(Level::Error, at(guard.line, guard.column), Some(&title(guard.status)), &message));
        shown.push(message);
    }
    if let Some(failure) = result.failure.as_deref() {
        // What the steps and guards did not say yet (a namespace left behind after a failed step).
        let unsaid: Vec<&str> = failure.lines().filter(|line| !shown.iter().any(|s| s.ends_with(line))).collect();
        if !unsaid.is_empty() {
            lines.push(command(
                Level::Error,
                at(result.line, result.column),
                Some(&title(result.status)),
                &unsaid.join("\n"),
            ));
        }
    }
    lines
}

/// The annotation of a diagnostic from `check`: an error or a warning at its primary label,
/// titled with its code; its help follows the message.
pub fn diagnostic(diagnostic: &Diagnostic) -> String {
    let level = match diagnostic.severity {
        Severity::Error => Level::Error,
        Severity::Warning => Level::Warning,
    };
    let at = diagnostic.position().map(|(file, line, column)| Position { file, line, column });
    let message = match &diagnostic.help {
        Some(help) => format!("{}\nhelp: {help}", diagnostic.message),
        None => diagnostic.message.clone(),
    };
    command(level, at, Some(diagnostic.code), &message)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::diagnostic::SourceFile;
    use crate::report::document::{GuardResult, StepResult};

    #[test]
    fn messages_escape_percent_and_line_breaks_only() {
        assert_eq!(escape_data("100% done\r\nnext: a,b"), "100%25 done%0D%0Anext: a,b");
        // `%` first: an escape is not escaped again.
        assert_eq!(escape_data("%0A"), "%250A");
    }

    #[test]
    fn properties_also_escape_colons_and_commas() {
        assert_eq!(escape_property("C:\\dir,x%\n"), "C%3A\\dir%2Cx%25%0A");
    }

    #[test]
    fn a_command_names_file_line_column_and_title() {
        let at = Some(Position { file: "plans/a,b.rollout", line: 7, column: 5 });
        assert_eq!(
            command(Level::Error, at, Some("scenario: x"), "line one\nline two"),
            "::error file=plans/a%2Cb.rollout,line=7,col=5,title=scenario%3A x::line one%0Aline two"
        );
        assert_eq!(command(Level::Warning, None, None, "plain"), "::warning::plain");
        let no_line = Some(Position { file: "f", line: 0, column: 0 });
        assert_eq!(command(Level::Error, no_line, None, "m"), "::error file=f::m");
    }

    fn failed_scenario() -> ScenarioResult {
        let mut result = ScenarioResult::new("canary", Path::new("plans/canary.rollout"));
        (result.line, result.column) = (3, 1);
        result.status = Status::Failed;
        result.steps.push(StepResult::passed(
            (4, 5),
            "scale deployment/rng to 2".into(),
            String::new(),
            Duration::ZERO,
        ));
        let message = "plans/canary.rollout:5:5: `expect pods app=rng count 3`: found 2".to_string();
        result.steps.push(StepResult::failed(
            (5, 5),
            "expect pods app=rng count 3".into(),
            message.clone(),
            Duration::ZERO,
        ));
        result.steps.push(StepResult::skipped((6, 5), "wait rollout deployment/rng".into()));
        result.failure = Some(message);
        result
    }

    #[test]
    fn a_failing_step_is_annotated_at_its_line_and_column_and_nothing_else() {
        let lines = scenario(&failed_scenario());
        assert_eq!(
            lines,
            ["::error file=plans/canary.rollout,line=5,col=5,title=rehearse%3A scenario \"canary\" failed::\
                 plans/canary.rollout:5:5: `expect pods app=rng count 3`: found 2"]
        );
    }

    #[test]
    fn a_failing_guard_and_an_unsaid_failure_are_annotated_too() {
        let mut result = failed_scenario();
        result.guards.push(GuardResult {
            service: "service/rng".into(),
            invariant: "always-serving".into(),
            line: 4,
            column: 9,
            expect_violation: false,
            violations: vec![],
            status: Status::Failed,
            message: Some("fired: no serving endpoints".into()),
            details: vec![],
        });
        result.status = Status::Error;
        let failure = result.failure.take().unwrap();
        result.failure = Some(format!("{failure}\ncannot delete namespace rehearse-x: gone"));
        let lines = scenario(&result);
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert!(lines[0].starts_with("::error file=plans/canary.rollout,line=5,col=5,"), "{}", lines[0]);
        assert_eq!(
            lines[1],
            "::error file=plans/canary.rollout,line=4,col=9,title=rehearse%3A scenario \"canary\" failed::\
             guard service/rng always-serving (line 4) fired: no serving endpoints"
        );
        assert_eq!(
            lines[2],
            "::error file=plans/canary.rollout,line=3,col=1,title=rehearse%3A scenario \"canary\" error::\
             cannot delete namespace rehearse-x: gone"
        );
    }

    #[test]
    fn passing_scenarios_say_nothing() {
        let mut result = failed_scenario();
        result.status = Status::Passed;
        assert!(scenario(&result).is_empty());
    }

    #[test]
    fn diagnostics_become_errors_and_warnings_at_their_label() {
        let source = Arc::new(SourceFile::new("a.rollout", Arc::from("scenario \"x\" {\n    lable pods\n}\n")));
        let error = Diagnostic::error("rehearse::syntax::step", "unknown step `lable`")
            .label(crate::span::Span::new(19, 24), "here")
            .help("did you mean `label`?")
            .with_source(source.clone());
        assert_eq!(
            super::diagnostic(&error),
            "::error file=a.rollout,line=2,col=5,title=rehearse%3A%3Asyntax%3A%3Astep::unknown step `lable`%0Ahelp: did you mean `label`?"
        );
        let warning = Diagnostic::warning("rehearse::x", "careful").label(crate::span::Span::new(0, 8), "");
        assert_eq!(super::diagnostic(&warning), "::warning title=rehearse%3A%3Ax::careful");
    }
}
