//! `--report json=PATH`: every scenario with its steps, timings and failure messages.

use serde::Serialize;

use super::document::ScenarioResult;

#[derive(Serialize)]
struct Report<'a> {
    /// Where the scenarios ran: `built-in (kind pace)` or `context NAME`.
    cluster: &'a str,
    /// `K/N` when the run was one shard of the suite (`--shard`).
    #[serde(skip_serializing_if = "Option::is_none")]
    shard: Option<String>,
    passed: usize,
    failed: usize,
    scenarios: Vec<Scenario<'a>>,
    /// Selected but not started (`--fail-fast` after a failure, or the run was stopped).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    not_run: &'a [crate::select::ScenarioEntry],
}

#[derive(Serialize)]
struct Scenario<'a> {
    #[serde(flatten)]
    result: &'a ScenarioResult,
    namespace: &'a str,
    kept: bool,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    held_by_finalizers: &'a [String],
    duration_ms: u128,
    step_durations_ms: Vec<u128>,
}

pub fn render(outcome: &crate::suite::RunOutcome) -> String {
    let results = &outcome.results;
    let passed = results.iter().filter(|r| r.status == super::document::Status::Passed).count();
    let report = Report {
        cluster: &outcome.cluster,
        shard: outcome.shard.map(|s| s.to_string()),
        not_run: &outcome.not_run,
        passed,
        failed: results.len() - passed,
        scenarios: results
            .iter()
            .map(|r| Scenario {
                result: r,
                namespace: &r.namespace,
                kept: r.kept,
                held_by_finalizers: &r.held_by_finalizers,
                duration_ms: r.duration.as_millis(),
                step_durations_ms: r.steps.iter().map(|s| s.elapsed.as_millis()).collect(),
            })
            .collect(),
    };
    serde_json::to_string_pretty(&report).unwrap_or_default()
}
