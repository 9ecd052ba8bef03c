//! Shell niceties through the binary: completion scripts, the man page, and `--color`
//! (with NO_COLOR) on diagnostics, the terminal reporter and clap's help.

use std::io::Write;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_rehearse");

/// `rehearse ARGS`, piped, on the built-in cluster, with no colour variables inherited.
fn rehearse(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(BIN);
    command.args(args).env_remove("KUBECONFIG").env_remove("NO_COLOR").env_remove("CLICOLOR_FORCE");
    command.env_remove("GITHUB_ACTIONS").env("CI", "1");
    command.envs(env.iter().copied());
    let output = command.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Whether `program` can be run (it exists on PATH).
fn installed(program: &str) -> bool {
    Command::new("sh").arg("-c").arg(format!("command -v {program}")).output().is_ok_and(|o| o.status.success())
}

/// Feeds `input` to `program args` on stdin; its exit status and stderr.
fn pipe_into(program: &str, args: &[&str], input: &str) -> (bool, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn bash_completion_names_the_commands_and_flags_and_parses() {
    let (code, script, err) = rehearse(&["completions", "bash"], &[]);
    assert_eq!(code, 0, "{err}");
    for word in ["check", "run", "clean", "fmt", "completions", "man", "--report", "--cluster", "--color"] {
        assert!(script.contains(word), "no `{word}` in the bash completion");
    }
    let (parses, err) = pipe_into("bash", &["-n"], &script);
    assert!(parses, "bash -n refuses the completion script: {err}");
    // A deliberately broken script is refused: the check can fail.
    let (parses, _) = pipe_into("bash", &["-n"], &format!("{script}\nif then fi\n"));
    assert!(!parses);
}

#[test]
fn zsh_and_fish_completions_are_generated() {
    let (code, zsh, _) = rehearse(&["completions", "zsh"], &[]);
    assert_eq!(code, 0);
    assert!(zsh.starts_with("#compdef rehearse"), "{zsh}");
    assert!(zsh.contains("--report") && zsh.contains("--cluster"));
    let (code, fish, _) = rehearse(&["completions", "fish"], &[]);
    assert_eq!(code, 0);
    assert!(fish.contains("complete -c rehearse") && fish.contains("-l report"), "{fish}");
    if installed("fish") {
        let (parses, err) = pipe_into("fish", &["--no-execute"], &fish);
        assert!(parses, "fish refuses the completion script: {err}");
    } else {
        eprintln!("fish is not installed: its script's syntax is not checked");
    }
    let (code, _, err) = rehearse(&["completions", "tcsh"], &[]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn the_man_page_is_roff_and_lists_the_commands() {
    let (code, page, err) = rehearse(&["man"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(page.contains(".TH rehearse 1"), "{page}");
    for command in ["check", "run", "clean", "fmt", "completions"] {
        assert!(page.contains(&format!("rehearse\\-{command}(1)")), "no {command} in\n{page}");
    }
    let (code, run_page, _) = rehearse(&["man", "run"], &[]);
    assert_eq!(code, 0);
    assert!(run_page.contains(".TH rehearse-run 1"), "{run_page}");
    assert!(run_page.contains("\\-\\-report") && run_page.contains("\\-\\-pace"), "{run_page}");
    let (code, _, err) = rehearse(&["man", "nope"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("no command `nope`"), "{err}");

    if installed("groff") {
        let output = Command::new("sh")
            .arg("-c")
            .arg(format!("{BIN} man run | groff -man -Tutf8 -ww 2>&1 >/dev/null; {BIN} man run | groff -man -Tascii"))
            .output()
            .unwrap();
        // Bold and underline are overstruck (`x\x08x`): keep the last character of each.
        let text =
            regex::Regex::new(".\x08").unwrap().replace_all(&String::from_utf8_lossy(&output.stdout), "").into_owned();
        assert!(output.status.success());
        // Warnings (printed first) would show as lines before the page.
        assert!(text.starts_with("rehearse-run(1)"), "groff warned or failed:\n{text}");
        assert!(text.contains("--report"), "{text}");
    } else {
        eprintln!("groff is not installed: the page is not rendered");
    }
}

fn failing_and_passing_script(dir: &std::path::Path) -> std::path::PathBuf {
    let examples = std::fs::canonicalize("examples").unwrap();
    let path = dir.join("mixed.rollout");
    let text = format!(
        "base-dir {:?}\n\nscenario \"passes\" {{\n    apply \"dockercoins/rng.yaml\"\n}}\n\nscenario \"fails\" {{\n    apply \"dockercoins/rng.yaml\"\n    expect pods app=rng count 5 within 10s\n}}\n",
        examples.display().to_string()
    );
    std::fs::write(&path, text).unwrap();
    path
}

const ESC: char = '\u{1b}';

#[test]
fn color_always_colours_a_pipe_and_never_or_no_color_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let script = failing_and_passing_script(dir.path());
    let script = script.to_str().unwrap();
    let bad = "tests/fixtures/err/labels.rollout";

    let (code, _, err) = rehearse(&["--color", "always", "check", bad], &[]);
    assert_eq!(code, 2);
    assert!(err.contains(&format!("{ESC}[31mrehearse::labels::invalid_key")), "diagnostics coloured: {err}");
    // Colour is not unicode: off a terminal the art stays ASCII.
    assert!(err.contains(",-["), "{err}");
    let (code, _, err) = rehearse(&["run", "--color=always", script], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("{ESC}[32mPASS{ESC}[0m passes")), "{err}");
    assert!(err.contains(&format!("{ESC}[31mFAIL{ESC}[0m fails")), "{err}");

    for (args, env) in [
        (vec!["--color", "never"], vec![]),
        (vec!["--color", "never"], vec![("CLICOLOR_FORCE", "1")]),
        (vec![], vec![("NO_COLOR", "1")]),
        (vec!["--color", "auto"], vec![("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")]),
        // auto off a terminal.
        (vec![], vec![]),
    ] {
        let check: Vec<&str> = args.iter().copied().chain(["check", bad]).collect();
        let (code, _, err) = rehearse(&check, &env);
        assert_eq!(code, 2);
        assert!(err.contains("invalid_key") && !err.contains(ESC), "{args:?} {env:?}: {err}");
        let run: Vec<&str> = ["run"].into_iter().chain(args.iter().copied()).chain([script]).collect();
        let (code, _, err) = rehearse(&run, &env);
        assert_eq!(code, 1);
        assert!(err.contains("PASS passes") && !err.contains(ESC), "{args:?} {env:?}: {err}");
    }

    // CLICOLOR_FORCE colours a pipe under auto.
    let (_, _, err) = rehearse(&["run", script], &[("CLICOLOR_FORCE", "1")]);
    assert!(err.contains(&format!("{ESC}[32mPASS")), "{err}");
}

#[test]
fn clap_help_follows_color_too() {
    let (code, help, _) = rehearse(&["--color", "always", "run", "--help"], &[]);
    assert_eq!(code, 0);
    assert!(help.contains(&format!("{ESC}[1m--color")), "{help}");
    for args in [["--color", "never", "run", "--help"].as_slice(), &["run", "--help", "--color=never"]] {
        let (code, help, _) = rehearse(args, &[]);
        assert_eq!(code, 0);
        assert!(help.contains("--color <WHEN>") && !help.contains(ESC), "{args:?}: {help}");
    }
}

/// The testbed's kubectl (tests/testbed/testbed.sh build puts it in its cache), or kubectl on the PATH.
fn kubectl() -> std::path::PathBuf {
    let cache = std::path::PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/rehearse-testbed");
    let built = std::fs::read_dir(&cache)
        .into_iter()
        .flatten()
        .map(|e| e.unwrap().path().join("bin/kubectl"))
        .find(|p| p.is_file());
    match built {
        Some(path) => path,
        None => {
            assert!(installed("kubectl"), "no kubectl: build the testbed (tests/testbed/testbed.sh build)");
            "kubectl".into()
        }
    }
}

#[test]
fn kubectl_runs_rehearse_as_its_plugin() {
    let plugin = std::path::Path::new(env!("CARGO_BIN_EXE_kubectl-rehearse"));
    // kubectl finds `kubectl-rehearse` on the PATH; the plugin runs the `rehearse` beside it.
    let path = std::env::join_paths(
        std::iter::once(plugin.parent().unwrap().to_path_buf())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let output = Command::new(kubectl()).args(["rehearse", "list", "scenarios"]).env("PATH", &path).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.contains("scenarios/09-advanced-rollout.rollout:31: blue/green switch without a gap"), "{stdout}");
    // rehearse's own exit codes come through kubectl.
    let output = Command::new(kubectl()).args(["rehearse", "list", "no/such/dir"]).env("PATH", &path).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", String::from_utf8_lossy(&output.stderr));
}
