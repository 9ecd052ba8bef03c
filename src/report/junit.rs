//! `--report junit=PATH`: one test suite per script, one test case per scenario, carrying the
//! script's path and the line of its `scenario` keyword (`file` and `line` attributes, as pytest
//! writes them and GitLab and most JUnit readers link them).

use std::collections::BTreeMap;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::document::Status;

pub fn render(outcome: &crate::suite::RunOutcome) -> String {
    let (results, cluster) = (&outcome.results, outcome.cluster.as_str());
    let shard = outcome.shard.map(|s| s.to_string());
    let mut report = Report::new("rehearse");
    let mut suites: BTreeMap<&str, TestSuite> = BTreeMap::new();
    // One suite per script, saying where it ran.
    let new_suite = |file: &str| {
        let mut suite = TestSuite::new(file);
        suite.add_property(quick_junit::Property::new("cluster", cluster));
        if let Some(shard) = &shard {
            suite.add_property(quick_junit::Property::new("shard", shard.as_str()));
        }
        suite
    };
    for result in results {
        let suite = suites.entry(&result.file).or_insert_with(|| new_suite(&result.file));
        let status = match result.status {
            Status::Passed => TestCaseStatus::success(),
            Status::Skipped => TestCaseStatus::skipped(),
            Status::Failed | Status::Error => {
                let kind =
                    if result.status == Status::Failed { NonSuccessKind::Failure } else { NonSuccessKind::Error };
                let mut status = TestCaseStatus::non_success(kind);
                if let TestCaseStatus::NonSuccess { message, description, .. } = &mut status {
                    *message = result.failure.clone().map(Into::into);
                    *description = Some(result.document().into());
                }
                status
            }
        };
        let mut case = TestCase::new(result.scenario.clone(), status);
        case.set_time(result.duration);
        case.set_classname(result.file.clone());
        case.extra.insert("file".into(), result.file.as_str().into());
        if result.line > 0 {
            case.extra.insert("line".into(), result.line.to_string().into());
        }
        suite.add_test_case(case);
    }
    for entry in &outcome.not_run {
        let suite = suites.entry(&entry.file).or_insert_with(|| new_suite(&entry.file));
        let mut status = TestCaseStatus::skipped();
        if let TestCaseStatus::Skipped { message, .. } = &mut status {
            *message = Some("not run: the run stopped before it (--fail-fast after a failure, or a signal)".into());
        }
        let mut case = TestCase::new(entry.scenario.clone(), status);
        case.set_classname(entry.file.clone());
        case.extra.insert("file".into(), entry.file.as_str().into());
        case.extra.insert("line".into(), entry.line.to_string().into());
        suite.add_test_case(case);
    }
    report.add_test_suites(suites.into_values());
    report.to_string().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::report::document::ScenarioResult;
    use crate::suite::RunOutcome;

    fn outcome(results: Vec<ScenarioResult>) -> RunOutcome {
        RunOutcome {
            cluster: "built-in (kind pace)".into(),
            shard: None,
            results,
            not_run: Vec::new(),
            left_behind: Vec::new(),
            cancelled: false,
        }
    }

    #[test]
    fn each_test_case_carries_its_file_and_line() {
        let mut failed = ScenarioResult::new("b & c", Path::new("plans/x.rollout"));
        (failed.line, failed.status, failed.failure) = (12, Status::Failed, Some("it broke".into()));
        let mut passed = ScenarioResult::new("a", Path::new("plans/x.rollout"));
        passed.line = 3;
        let xml = render(&outcome(vec![passed, failed]));
        assert!(xml.contains(r#"<testcase name="a" classname="plans/x.rollout" "#), "{xml}");
        assert!(xml.contains(r#"file="plans/x.rollout" line="3""#), "{xml}");
        assert!(xml.contains(r#"<testcase name="b &amp; c" "#), "{xml}");
        assert!(xml.contains(r#"file="plans/x.rollout" line="12""#), "{xml}");
    }
}
