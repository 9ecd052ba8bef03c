//! `--report junit=PATH`: one test suite per script, one test case per scenario.

use std::collections::BTreeMap;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::document::Status;

pub fn render(outcome: &crate::suite::RunOutcome) -> String {
    let (results, cluster) = (&outcome.results, outcome.cluster.as_str());
    let shard = outcome.shard.map(|s| s.to_string());
    let mut report = Report::new("rehearse");
    let mut suites: BTreeMap<&str, TestSuite> = BTreeMap::new();
    for result in results {
        let suite = suites.entry(&result.file).or_insert_with(|| {
            let mut suite = TestSuite::new(result.file.clone());
            suite.add_property(quick_junit::Property::new("cluster", cluster));
            if let Some(shard) = &shard {
                suite.add_property(quick_junit::Property::new("shard", shard.as_str()));
            }
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
    for entry in &outcome.not_run {
        let suite = suites.entry(&entry.file).or_insert_with(|| TestSuite::new(entry.file.clone()));
        let mut status = TestCaseStatus::skipped();
        if let TestCaseStatus::Skipped { message, .. } = &mut status {
            *message = Some("not run: the run stopped before it (--fail-fast after a failure, or a signal)".into());
        }
        let mut case = TestCase::new(entry.scenario.clone(), status);
        case.set_classname(entry.file.clone());
        suite.add_test_case(case);
    }
    report.add_test_suites(suites.into_values());
    report.to_string().unwrap_or_default()
}
