//! Choosing what runs, as a CI user does: `rehearse list`, name filters, `--shard K/N` and
//! `--fail-fast`, on the built-in cluster (no cluster needed), with what the reports say.

use std::collections::BTreeSet;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rehearse");

fn rehearse(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(BIN).args(args).env_remove("KUBECONFIG").env_remove("CI").output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Every `scenario "NAME" {` line of the runbook suite, as (file, line, name), read without rehearse.
fn scenarios_in_the_suite() -> Vec<(String, usize, String)> {
    let mut files: Vec<_> = std::fs::read_dir("scenarios")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rollout"))
        .collect();
    files.sort();
    let mut found = Vec::new();
    for file in files {
        for (i, line) in std::fs::read_to_string(&file).unwrap().lines().enumerate() {
            if let Some(rest) = line.strip_prefix("scenario \"") {
                let name = &rest[..rest.find('"').unwrap()];
                found.push((file.display().to_string(), i + 1, name.to_string()));
            }
        }
    }
    found
}

fn listed(args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["list", "--format", "json"];
    all.extend_from_slice(args);
    let (code, out, err) = rehearse(&all);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str::<Vec<serde_json::Value>>(&out).unwrap()
}

fn ids(entries: &[serde_json::Value]) -> Vec<String> {
    entries.iter().map(|e| format!("{}::{}", e["file"].as_str().unwrap(), e["scenario"].as_str().unwrap())).collect()
}

#[test]
fn list_names_every_scenario_with_its_file_and_line() {
    let expected = scenarios_in_the_suite();
    assert!(expected.len() >= 10, "{expected:?}");
    let (code, out, err) = rehearse(&["list", "scenarios"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<String> = expected.iter().map(|(file, line, name)| format!("{file}:{line}: {name}")).collect();
    assert_eq!(out.lines().collect::<Vec<_>>(), lines);

    let json = listed(&["scenarios"]);
    assert_eq!(json.len(), expected.len());
    for (entry, (file, line, name)) in json.iter().zip(&expected) {
        assert_eq!(entry["file"], file.as_str());
        assert_eq!(entry["line"], *line);
        assert_eq!(entry["column"], 1);
        assert_eq!(entry["scenario"], name.as_str());
    }
}

#[test]
fn filters_select_by_substring_exact_name_and_skip() {
    let canary = ids(&listed(&["scenarios", "--filter", "canary"]));
    assert_eq!(canary, ["scenarios/09-advanced-rollout.rollout::a canary takes a quarter of the traffic"]);
    // A filter may name a file: all its scenarios.
    let by_file = ids(&listed(&["scenarios", "--filter", "02-labels"]));
    assert_eq!(by_file.len(), 2, "{by_file:?}");
    // Exact: the whole name, or the whole FILE::NAME; a part is not enough.
    let exact = ids(&listed(&["scenarios", "--exact", "--filter", "blue/green switch without a gap"]));
    assert_eq!(exact, ["scenarios/09-advanced-rollout.rollout::blue/green switch without a gap"]);
    let (code, _, err) = rehearse(&["list", "scenarios", "--exact", "--filter", "blue/green"]);
    assert_eq!(code, 2);
    assert!(err.contains("no scenario matches the filters (--filter blue/green, --exact)"), "{err}");
    // Several filters: any may match; --skip takes out.
    let two = ids(&listed(&["scenarios", "--filter", "canary", "--filter", "debug pod"]));
    assert_eq!(two.len(), 2, "{two:?}");
    let skipped = ids(&listed(&["scenarios", "--filter", "09-advanced", "--skip", "canary"]));
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(skipped.iter().all(|id| !id.contains("canary")), "{skipped:?}");
}

#[test]
fn shards_split_the_suite_exactly_once_and_stably() {
    let all = ids(&listed(&["scenarios", "tests/parity"]));
    for total in 1..=5 {
        let mut union = Vec::new();
        for index in 1..=total {
            let shard = format!("{index}/{total}");
            let taken = ids(&listed(&["scenarios", "tests/parity", "--shard", &shard]));
            assert!(!taken.is_empty() || all.len() < total, "shard {shard} is empty");
            assert_eq!(taken, ids(&listed(&["scenarios", "tests/parity", "--shard", &shard])), "stable");
            union.extend(taken);
        }
        let distinct: BTreeSet<&String> = union.iter().collect();
        assert_eq!(distinct.len(), union.len(), "{total} shards overlap: {union:?}");
        assert_eq!(distinct, all.iter().collect::<BTreeSet<_>>(), "{total} shards do not cover the suite");
    }
    let (code, _, err) = rehearse(&["list", "scenarios", "--shard", "4/3"]);
    assert_eq!(code, 2);
    assert!(err.contains("shard 4 of 3 does not exist"), "{err}");
}

#[test]
fn a_sharded_filtered_run_reports_its_shard_and_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let junit = dir.path().join("report.xml");
    let (code, _, err) = rehearse(&[
        "run",
        "scenarios",
        "--pace",
        "fast",
        "--filter",
        "09-advanced",
        "--shard",
        "2/2",
        "--report",
        &format!("json={}", json.display()),
        "--report",
        &format!("junit={}", junit.display()),
    ]);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["shard"], "2/2");
    assert_eq!(report["cluster"], "built-in (fast pace)");
    let ran: Vec<&str> =
        report["scenarios"].as_array().unwrap().iter().map(|s| s["scenario"].as_str().unwrap()).collect();
    assert_eq!(ran, ["a canary takes a quarter of the traffic"]);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains(r#"<property name="shard" value="2/2"/>"#), "{xml}");
    assert!(xml.contains(r#"<property name="cluster" value="built-in (fast pace)"/>"#), "{xml}");
    assert_eq!(xml.matches("<testcase ").count(), 1, "{xml}");
}

/// A CI matrix may have more runners than scenarios: a runner whose shard is empty passes, and
/// still writes its (empty) reports. Scripts with no scenario, or filters that take none, are a
/// mistake, said as such.
#[test]
fn an_empty_shard_runs_nothing_and_passes_while_an_empty_selection_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let junit = dir.path().join("report.xml");
    let results = dir.path().join("results");
    let shards = (scenarios_in_the_suite().len() + 1).to_string();
    let last = format!("{shards}/{shards}");
    let (code, _, err) = rehearse(&[
        "run",
        "scenarios",
        "--shard",
        &last,
        "--results",
        results.to_str().unwrap(),
        "--report",
        &format!("json={}", json.display()),
        "--report",
        &format!("junit={}", junit.display()),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&format!("shard {last} holds none of the")), "{err}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(
        (report["shard"].as_str(), report["scenarios"].as_array().map(Vec::len)),
        (Some(last.as_str()), Some(0))
    );
    assert!(std::fs::read_to_string(&junit).unwrap().contains(r#"tests="0""#));
    assert_eq!(std::fs::read_dir(&results).unwrap().count(), 0);
    let (code, out, _) = rehearse(&["list", "scenarios", "--shard", &last]);
    assert_eq!((code, out.as_str()), (0, ""));

    let empty = dir.path().join("empty.rollout");
    std::fs::write(&empty, "# nothing yet\n").unwrap();
    for command in ["run", "list"] {
        let (code, _, err) = rehearse(&[command, empty.to_str().unwrap()]);
        assert_eq!(code, 2, "{command}: {err}");
        assert!(err.contains("error: no scenario in the given scripts"), "{command}: {err}");
        let (code, _, err) = rehearse(&[command, "scenarios", "--filter", "no such scenario"]);
        assert_eq!(code, 2, "{command}: {err}");
        assert!(err.contains("error: no scenario matches the filters (--filter no such scenario)"), "{err}");
    }
}

/// Scripts of one name in two directories, with scenarios of one name: their result documents
/// would overwrite each other, so `--results` refuses to run them together.
#[test]
fn result_documents_that_would_overwrite_each_other_are_refused_before_running() {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["a", "b"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
        std::fs::write(dir.path().join(sub).join("smoke.rollout"), "scenario \"s\" {\n    run web\n}\n").unwrap();
    }
    let results = dir.path().join("results");
    let paths = [dir.path().join("a"), dir.path().join("b")];
    let (code, _, err) = rehearse(&[
        "run",
        "--results",
        results.to_str().unwrap(),
        paths[0].to_str().unwrap(),
        paths[1].to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("would both write the result document smoke__s.yaml"), "{err}");
    assert!(!results.exists(), "nothing ran");
    // Without --results nothing is written, so both run.
    let (code, _, err) = rehearse(&["run", paths[0].to_str().unwrap(), paths[1].to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn fail_fast_starts_nothing_after_a_failure_and_reports_what_was_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("plan.rollout");
    std::fs::write(
        &script,
        "scenario \"first fails\" {\n    expect pods app=none count 1 within 5s\n}\n\n\
         scenario \"second\" {\n    expect pods app=none count 0\n}\n\n\
         scenario \"third\" {\n    expect pods app=none count 0\n}\n",
    )
    .unwrap();
    let json = dir.path().join("report.json");
    let junit = dir.path().join("report.xml");
    let report_args = |extra: &[&str]| -> (i32, String) {
        let mut args = vec![
            "run".to_string(),
            script.display().to_string(),
            "--report".into(),
            format!("json={}", json.display()),
            "--report".into(),
            format!("junit={}", junit.display()),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, _, err) = rehearse(&args);
        (code, err)
    };

    // One at a time, so "second" waits for "first fails" (at the default, one per core, they
    // would start together).
    let (code, err) = report_args(&["--fail-fast", "--jobs", "1"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("2 scenario(s) not run: --fail-fast stopped the run after a failure"), "{err}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["scenarios"].as_array().unwrap().len(), 1);
    assert_eq!(report["scenarios"][0]["status"], "failed");
    let not_run: Vec<&str> =
        report["not_run"].as_array().unwrap().iter().map(|s| s["scenario"].as_str().unwrap()).collect();
    assert_eq!(not_run, ["second", "third"]);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<skipped").count(), 2, "{xml}");

    // Without it, every scenario runs.
    let (code, err) = report_args(&[]);
    assert_eq!(code, 1, "{err}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let statuses: Vec<&str> =
        report["scenarios"].as_array().unwrap().iter().map(|s| s["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["failed", "passed", "passed"]);
    assert!(report.get("not_run").is_none(), "{report}");
}
