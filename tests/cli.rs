//! `rehearse check` and `rehearse fmt` as a user runs them: exit codes, plain output off a
//! terminal, files rewritten or left alone.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rehearse");

fn rehearse(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(BIN).args(args).env_remove("NO_COLOR").output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn check_exit_codes_and_plain_output() {
    let (code, _, err) = rehearse(&["check", "scenarios", "tests/fixtures/ok"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("checked 11 files: 0 error(s), 0 warning(s)"), "{err}");

    let (code, _, err) = rehearse(&["check", "tests/fixtures/err/labels.rollout"]);
    assert_eq!(code, 2);
    // Not a terminal: ASCII art and no colour codes.
    assert!(err.contains(",-[tests/fixtures/err/labels.rollout:2:24]"), "{err}");
    assert!(!err.contains('\u{1b}'), "no escape codes off a terminal");

    // Warnings pass unless denied.
    let (code, _, _) = rehearse(&["check", "tests/fixtures/err/enable-slip.rollout"]);
    assert_eq!(code, 0);
    let (code, _, _) = rehearse(&["check", "--deny-warnings", "tests/fixtures/err/enable-slip.rollout"]);
    assert_eq!(code, 2);

    let (code, _, err) = rehearse(&["check", "no/such/path"]);
    assert_eq!(code, 2);
    assert!(err.contains("no/such/path does not exist"), "{err}");

    // A path that leads nowhere does not stop the others being checked: one run, every problem.
    let (code, _, err) = rehearse(&["check", "no/such/path", "tests/fixtures/err/labels.rollout", "scenarios"]);
    assert_eq!(code, 2);
    assert!(err.contains("no/such/path does not exist"), "{err}");
    assert!(err.contains(",-[tests/fixtures/err/labels.rollout:2:24]"), "{err}");
    assert!(err.contains("checked 11 files: "), "{err}");
}

#[test]
fn fmt_rewrites_checks_and_refuses_broken_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let messy = dir.path().join("messy.rollout");
    std::fs::write(&messy, "scenario   \"x\" {\n  scale   deploy/rng to 3   # three\n}\n").unwrap();
    let path = messy.to_str().unwrap();

    let (code, out, _) = rehearse(&["fmt", "--check", path]);
    assert_eq!(code, 1);
    assert!(out.contains("not in the canonical layout"), "{out}");
    let (code, _, _) = rehearse(&["fmt", path]);
    assert_eq!(code, 0);
    assert_eq!(std::fs::read_to_string(&messy).unwrap(), "scenario \"x\" {\n    scale deploy/rng to 3  # three\n}\n");
    let (code, _, _) = rehearse(&["fmt", "--check", path]);
    assert_eq!(code, 0);

    // A script written with CRLF keeps its line endings; only its layout changes.
    let windows = dir.path().join("windows.rollout");
    std::fs::write(&windows, "scenario   \"x\" {\r\n  apply <<YAML\r\n    kind: ConfigMap\r\n  YAML\r\n}\r\n").unwrap();
    let (code, _, _) = rehearse(&["fmt", windows.to_str().unwrap()]);
    assert_eq!(code, 0);
    let formatted = std::fs::read_to_string(&windows).unwrap();
    assert_eq!(formatted, "scenario \"x\" {\r\n    apply <<YAML\r\n        kind: ConfigMap\r\n    YAML\r\n}\r\n");
    let (code, _, _) = rehearse(&["fmt", "--check", windows.to_str().unwrap()]);
    assert_eq!(code, 0, "a formatted CRLF script is in the canonical layout");

    let broken = dir.path().join("broken.rollout");
    std::fs::write(&broken, "scenario \"x\" {\n    scale deploy/rng 3\n}\n").unwrap();
    let before = std::fs::read_to_string(&broken).unwrap();
    let (code, _, err) = rehearse(&["fmt", broken.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("expected `to`"), "{err}");
    assert_eq!(std::fs::read_to_string(&broken).unwrap(), before, "a broken script is left alone");
}

#[test]
fn help_describes_every_command() {
    for command in ["check", "fmt", "run"] {
        let (code, out, _) = rehearse(&[command, "--help"]);
        assert_eq!(code, 0);
        assert!(out.contains("Usage: rehearse"), "{out}");
    }
}

/// `rehearse run` on a script that checks clean, with the given environment; no cluster needed.
fn run_without_cluster(args: &[&str], kubeconfig_env: Option<&std::path::Path>) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("ok.rollout");
    std::fs::write(&script, "scenario \"ok\" {\n    scale deployment/rng to 1\n}\n").unwrap();
    let mut command = Command::new(BIN);
    command.arg("run").args(args).arg(&script).env("CI", "1").env("NO_COLOR", "1");
    match kubeconfig_env {
        Some(path) => command.env("KUBECONFIG", path),
        None => command.env_remove("KUBECONFIG"),
    };
    let output = command.output().unwrap();
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
}

const KUBECONFIG: &str = "apiVersion: v1
kind: Config
current-context: kind-gone
contexts:
  - name: kind-gone
    context: {cluster: gone, user: gone}
clusters:
  - name: gone
    cluster: {server: \"https://127.0.0.1:1\"}
users:
  - name: gone
    user: {token: nothing}
";

#[test]
fn a_missing_or_broken_kubeconfig_is_invalid_input_and_an_unreachable_cluster_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-kubeconfig");

    let (code, err) = run_without_cluster(&["--kubeconfig", missing.to_str().unwrap()], None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("cannot read the kubeconfig {}: there is no such file", missing.display())), "{err}");
    assert!(err.contains("(named by --kubeconfig)") && err.contains("point --kubeconfig or KUBECONFIG at"), "{err}");

    let (code, err) = run_without_cluster(&[], Some(&missing));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&missing.display().to_string()) && err.contains("(named by KUBECONFIG)"), "{err}");

    let broken = dir.path().join("broken");
    std::fs::write(&broken, "clusters: [unclosed\n").unwrap();
    let (code, err) = run_without_cluster(&["--kubeconfig", broken.to_str().unwrap()], None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("cannot read the kubeconfig {}", broken.display())), "{err}");

    let config = dir.path().join("kubeconfig");
    std::fs::write(&config, KUBECONFIG).unwrap();
    let (code, err) = run_without_cluster(&["--context", "kind-nowhere"], Some(&config));
    assert_eq!(code, 2, "a context the kubeconfig does not have: {err}");
    assert!(err.contains("context `kind-nowhere`"), "{err}");

    let (code, err) = run_without_cluster(&[], Some(&config));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("does not answer") && err.contains("\n  is it running?"), "{err}");
    assert!(!err.contains("\\n"), "a real newline, not a literal one: {err}");
}

#[test]
fn a_signal_while_the_cluster_has_not_answered_yet_stops_the_run_at_once() {
    // A "cluster" that takes the connection and never answers: the run is in its first
    // contact, which gives up only after 12 s, once this listener has a connection.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kubeconfig");
    std::fs::write(&config, KUBECONFIG.replace("127.0.0.1:1", &format!("127.0.0.1:{port}"))).unwrap();
    let script = dir.path().join("ok.rollout");
    std::fs::write(&script, "scenario \"ok\" {\n    scale deployment/rng to 1\n}\n").unwrap();
    let report = dir.path().join("report.json");
    let child = Command::new(BIN)
        .args(["run", "--kubeconfig", config.to_str().unwrap(), "--report"])
        .arg(format!("json={}", report.display()))
        .arg(&script)
        .env("NO_COLOR", "1")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (_connection, _) = listener.accept().unwrap();
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let output = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    // 143 (128 + SIGTERM), not the 3 of a cluster that never answered.
    assert_eq!(output.status.code(), Some(143), "{err}");
    assert!(err.contains("1 scenario(s) not run: the run was interrupted"), "{err}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["not_run"][0]["scenario"], "ok", "{report}");
}

#[test]
fn a_closed_output_pipe_does_not_stop_a_run_or_a_listing() {
    // `rehearse run scenarios 2>&1 | head -1`: the reader goes away, the run goes on to its end
    // (on a cluster: to delete its namespaces) and exits with its own code, not a panic's 101.
    for args in [&["run", "--cluster", "builtin", "scenarios"][..], &["list", "scenarios"], &["check", "scenarios"]] {
        let mut child = Command::new(BIN)
            .args(args)
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        drop(child.stderr.take());
        assert_eq!(child.wait().unwrap().code(), Some(0), "{args:?}");
    }
}

#[test]
fn naming_a_cluster_beside_cluster_builtin_is_invalid_input() {
    for (flag, value) in [("--context", "kind-x"), ("--kubeconfig", "/nonexistent"), ("--allow-context", "prod")] {
        let (code, err) = run_without_cluster(&["--cluster", "builtin", flag, value], None);
        assert_eq!(code, 2, "{flag}: {err}");
        assert!(err.contains(&format!("error: {flag} names a cluster, but --cluster builtin")), "{err}");
    }
    // KUBECONFIG in the environment is not a flag: --cluster builtin runs beside it.
    let (code, err) = run_without_cluster(&["--cluster", "builtin"], Some(std::path::Path::new("/nonexistent")));
    assert_eq!(code, 1, "the script's `scale` of a missing deployment fails on the built-in cluster: {err}");
}

#[test]
fn a_context_the_kubeconfig_lacks_is_named_with_those_it_has_and_a_kubeconfig_list_skips_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kubeconfig");
    std::fs::write(&config, KUBECONFIG).unwrap();
    let (code, err) = run_without_cluster(&["--kubeconfig", config.to_str().unwrap(), "--context", "prod"], None);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("the kubeconfig {} has no context `prod`; it has: kind-gone", config.display())),
        "named before the throwaway check, with the contexts there are: {err}"
    );
    // As kubectl does, a KUBECONFIG list skips its files that do not exist: the second is read.
    let list = std::env::join_paths([dir.path().join("missing"), config.clone()]).unwrap();
    let (code, err) = run_without_cluster(&["--context", "kind-nowhere"], Some(std::path::Path::new(&list)));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("has no context `kind-nowhere`; it has: kind-gone"), "{err}");
}

#[test]
fn a_report_or_results_path_that_cannot_be_written_is_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir/report.xml");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    for (args, said) in [
        (vec!["--report".to_string(), format!("junit={}", missing.display())], "there is no directory"),
        (vec!["--report".to_string(), format!("json={}", dir.path().display())], "it is a directory"),
        (
            vec!["--results".to_string(), file.join("results").display().to_string()],
            "cannot make the results directory",
        ),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, err) = run_without_cluster(&[&["--cluster", "builtin"], &args[..]].concat(), None);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(said) && !err.contains("passed"), "nothing runs: {err}");
    }
}
