//! `--report junit=PATH`: one test suite per script, one test case per scenario.

use std::collections::BTreeMap;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::document::{ScenarioResult, Status};

pub fn render(results: &[ScenarioResult], cluster: &str) -> String {
    let mut report = Report::new("rehearse");
    let mut suites: BTreeMap<&str, TestSuite> = BTreeMap::new();
    for result in results {
        let suite = suites.entry(&result.file).or_insert_with(|| {
            let mut suite = TestSuite::new(result.file.clone());
            suite.add_property(quick_junit::Property::new("cluster", cluster));
            suite
        });
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
        suite.add_test_case(case);
    }
    report.add_test_suites(suites.into_values());
    report.to_string().unwrap_or_default()
}
