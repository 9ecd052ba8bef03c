//! Annotations where the user looks: GitHub workflow commands for failing steps (under GitHub
//! Actions, or with `--report github`) and for `check` errors, and file and line on each JUnit
//! test case. All on the built-in cluster.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rehearse");

/// `rehearse ARGS` on the built-in cluster, `GITHUB_ACTIONS` as given; (exit code, stdout, stderr).
fn rehearse(args: &[&str], github_actions: bool) -> (i32, String, String) {
    let mut command = Command::new(BIN);
    command.args(args).env_remove("KUBECONFIG").env("CI", "1").env("NO_COLOR", "1");
    if github_actions {
        command.env("GITHUB_ACTIONS", "true");
    } else {
        command.env_remove("GITHUB_ACTIONS");
    }
    let output = command.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A script (in a directory whose name has a comma, which annotations escape) whose second
/// scenario, at line 7, fails its step at line 9, column 5.
fn failing_script(dir: &Path) -> PathBuf {
    let examples = std::fs::canonicalize("examples").unwrap();
    let dir = dir.join("a,b");
    std::fs::create_dir(&dir).unwrap();
    let path = dir.join("plan.rollout");
    let text = format!(
        "base-dir {:?}\n\nscenario \"passes\" {{\n    apply \"dockercoins/rng.yaml\"\n}}\n\nscenario \"fails\" {{\n    apply \"dockercoins/rng.yaml\"\n    expect pods app=rng count 5 within 10s\n}}\n",
        examples.display().to_string()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn annotations(stdout: &str) -> Vec<&str> {
    stdout.lines().filter(|l| l.starts_with("::")).collect()
}

#[test]
fn a_failing_step_is_annotated_under_github_actions_only() {
    let dir = tempfile::tempdir().unwrap();
    let script = failing_script(dir.path());
    let path = script.to_str().unwrap();
    let file = path.replace(',', "%2C");
    let expected = format!(
        "::error file={file},line=9,col=5,title=rehearse%3A scenario \"fails\" failed::\
         {path}:9:5: `expect pods app=rng count 5 within 10s`: not satisfied within 10s: 1 match `pods app=rng`"
    );

    let (code, out, err) = rehearse(&["run", path], true);
    assert_eq!(code, 1, "{err}");
    assert_eq!(annotations(&out), [expected.as_str()], "{out}");

    let (code, out, err) = rehearse(&["run", path], false);
    assert_eq!(code, 1, "{err}");
    assert!(!out.contains("::error") && !err.contains("::error"), "{out}{err}");

    let (code, out, _) = rehearse(&["run", "--report", "github", path], false);
    assert_eq!(code, 1);
    assert_eq!(annotations(&out), [expected.as_str()], "--report github forces them: {out}");

    // GitHub's own `true` only.
    let mut command = Command::new(BIN);
    command.args(["run", path]).env_remove("KUBECONFIG").env("GITHUB_ACTIONS", "false");
    assert!(!String::from_utf8_lossy(&command.output().unwrap().stdout).contains("::error"));
}

#[test]
fn report_github_takes_no_path() {
    let (code, _, err) = rehearse(&["run", "--report", "github=out.txt", "scenarios"], false);
    assert_eq!(code, 2);
    assert!(err.contains("`github` takes no path"), "{err}");
}

#[test]
fn check_errors_and_warnings_are_annotated_under_github_actions() {
    let (code, out, _) = rehearse(&["check", "tests/fixtures/err/labels.rollout"], true);
    assert_eq!(code, 2);
    let lines = annotations(&out);
    assert!(
        lines.iter().any(|l| l.starts_with(
            "::error file=tests/fixtures/err/labels.rollout,line=2,col=24,title=rehearse%3A%3Alabels%3A%3Ainvalid_key::`-bad` is not a valid label key"
        )),
        "{out}"
    );
    // One annotation per diagnostic: the file also has two warnings.
    assert_eq!(lines.iter().filter(|l| l.starts_with("::error file=tests/fixtures/err/labels.rollout,")).count(), 10);
    assert_eq!(lines.iter().filter(|l| l.starts_with("::warning file=tests/fixtures/err/labels.rollout,")).count(), 2);
    assert_eq!(lines.len(), 12, "{out}");

    let (code, out, _) = rehearse(&["check", "tests/fixtures/err/enable-slip.rollout"], true);
    assert_eq!(code, 0);
    assert!(
        annotations(&out)
            .iter()
            .any(|l| l.starts_with("::warning file=tests/fixtures/err/enable-slip.rollout,line=8,col=28,")),
        "{out}"
    );

    let (_, out, _) = rehearse(&["check", "tests/fixtures/err/labels.rollout"], false);
    assert!(out.is_empty(), "{out}");
}

#[test]
fn the_junit_report_carries_file_and_line_of_each_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let script = failing_script(dir.path());
    let path = script.to_str().unwrap();
    let junit = dir.path().join("junit.xml");
    let (code, _, err) = rehearse(&["run", "--report", &format!("junit={}", junit.display()), path], false);
    assert_eq!(code, 1, "{err}");
    let xml = std::fs::read_to_string(junit).unwrap();
    let case = |name: &str| {
        xml.lines().find(|l| l.contains(&format!("<testcase name=\"{name}\""))).unwrap_or_else(|| panic!("{xml}"))
    };
    assert!(case("passes").contains(&format!("file=\"{path}\" line=\"3\"")), "{xml}");
    assert!(case("fails").contains(&format!("file=\"{path}\" line=\"7\"")), "{xml}");
}
