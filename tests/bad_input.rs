//! Bad input ends in a clear error or a pass, never a hang or a flood (issue 10). Inputs are
//! generated; these tests assert behaviour and output, benches/bad-input.sh measures time and memory.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rehearse");

fn rehearse(args: &[&std::ffi::OsStr]) -> (i32, String) {
    let output = Command::new(BIN).args(args).env("NO_COLOR", "1").output().unwrap();
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
}

fn check(path: &Path) -> (i32, String) {
    rehearse(&["check".as_ref(), path.as_os_str()])
}

#[test]
fn a_selector_of_a_hundred_thousand_terms_is_answered() {
    let selector: Vec<String> = (0..100_000).map(|i| format!("key{i}=v")).collect();
    let text = format!("scenario \"s\" {{\n    expect pods {} count 1\n}}\n", selector.join(","));
    let file = rehearse::check_source(Path::new("big.rollout"), &text);
    assert!(file.diagnostics.is_empty(), "{:?}", file.diagnostics.first());
    // A conflict at the very end is still found.
    let text = format!("scenario \"s\" {{\n    expect pods {},key0=w count 1\n}}\n", selector.join(","));
    let file = rehearse::check_source(Path::new("big.rollout"), &text);
    assert_eq!(file.diagnostics[0].code, "rehearse::labels::never_matches");
}

#[test]
fn thousands_of_bad_lines_print_a_hundred_and_an_exact_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.rollout");
    std::fs::write(&path, format!("scenario \"s\" {{\n{}}}\n", "    frobnicate the widget\n".repeat(5000))).unwrap();
    let (code, err) = check(&path);
    assert_eq!(code, 2);
    assert_eq!(err.matches("unknown step `frobnicate`").count(), 100, "{}", &err[..500]);
    assert!(err.contains(&format!("... and 4900 more error(s) in {}", path.display())), "{}", &err[err.len() - 300..]);
    assert!(err.contains("checked 1 file: 5000 error(s), 0 warning(s)"));
    // The library keeps the first 1,000 by position and counts the rest.
    let file = rehearse::check::Checker::new().check_file(&path).unwrap();
    assert_eq!(file.diagnostics.len(), rehearse::diagnostic::KEPT_PER_FILE);
    assert_eq!(file.errors(), 5000);
    assert!(file.diagnostics[999].location().unwrap().ends_with(":1001:5"));
}

#[test]
fn ten_thousand_unclosed_scenarios_are_two_errors() {
    let file = rehearse::check_source(Path::new("nest.rollout"), &"scenario \"s\" {\n".repeat(10_000));
    let messages: Vec<&str> = file.diagnostics.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        ["this scenario is never closed, nor are the 9999 after it", "10000 scenarios are named \"s\""]
    );
}

#[test]
fn a_script_above_the_limit_is_refused_saying_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.rollout");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(rehearse::input::SCRIPT_LIMIT + 1).unwrap();
    let (code, err) = check(&path);
    assert_eq!(code, 2);
    assert!(err.contains("rehearse::io::too_large"), "{err}");
    assert!(err.contains("is larger than the 16 MiB limit"), "{err}");
}

#[cfg(unix)]
#[test]
fn symlink_loops_end_and_each_file_is_checked_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("scripts");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("a.rollout"), "scenario \"a\" {\n    scale deploy/rng to 1\n}\n").unwrap();
    std::os::unix::fs::symlink("..", root.join("sub/up")).unwrap();
    std::os::unix::fs::symlink(".", root.join("self")).unwrap();
    std::os::unix::fs::symlink("a.rollout", root.join("b.rollout")).unwrap();
    let found = rehearse::check::find_scripts(std::slice::from_ref(&root)).unwrap();
    assert_eq!(found, vec![root.join("a.rollout")]);
    let (code, err) = check(&root);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("checked 1 file: 0 error(s)"), "{err}");
    assert!(err.contains("skipped") && err.contains("self: a directory already searched"), "{err}");
    assert!(err.contains("b.rollout: the same file as one already found"), "{err}");
}

#[cfg(unix)]
#[test]
fn a_symlink_loop_named_or_applied_is_said_to_be_unreadable_not_missing() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.rollout"), dir.path().join("b.rollout"));
    std::os::unix::fs::symlink(&b, &a).unwrap();
    std::os::unix::fs::symlink(&a, &b).unwrap();
    let (code, err) = check(&a);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("Too many levels of symbolic links"), "{err}");
    assert!(!err.contains("does not exist"), "{err}");
    // The same loop as a manifest: there, but unreadable.
    std::os::unix::fs::symlink("m2.yaml", dir.path().join("m1.yaml")).unwrap();
    std::os::unix::fs::symlink("m1.yaml", dir.path().join("m2.yaml")).unwrap();
    let script = dir.path().join("s.rollout");
    std::fs::write(&script, "scenario \"s\" {\n    apply \"m1.yaml\"\n}\n").unwrap();
    let (code, err) = check(&script);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("rehearse::manifest::unreadable") && err.contains("cannot be read"), "{err}");
    assert!(!err.contains("no such manifest"), "{err}");
}

#[cfg(unix)]
#[test]
fn fifos_and_devices_are_refused_without_being_opened() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.rollout");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    // Named directly: an error (reading it would block forever).
    let (code, err) = check(&fifo);
    assert_eq!(code, 2);
    assert!(err.contains("it is a FIFO (named pipe), not a regular file"), "{err}");
    // Found in a directory: skipped, said so.
    std::fs::write(dir.path().join("ok.rollout"), "scenario \"a\" {\n    apply \"/dev/zero\"\n}\n").unwrap();
    let (code, err) = check(dir.path());
    assert_eq!(code, 2, "the /dev/zero manifest is an error");
    assert!(err.contains("pipe.rollout: it is a FIFO"), "{err}");
    assert!(err.contains("cannot read /dev/zero: it is a device, not a regular file"), "{err}");
}

#[test]
fn a_directory_without_scripts_is_invalid_input() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "nothing to run").unwrap();
    for command in ["check", "fmt", "run"] {
        let (code, err) = rehearse(&[command.as_ref(), dir.path().as_os_str()]);
        assert_eq!(code, 2, "{command}: {err}");
        assert!(err.contains(&format!("{} holds no .rollout files", dir.path().display())), "{command}: {err}");
    }
}

#[test]
fn check_refuses_the_yaml_run_would_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let laughs: String = std::iter::once("  l0: &a0 [lol]\n".to_string())
        .chain((1..10).map(|i| format!("  l{i}: &a{i} [{}]\n", vec![format!("*a{}", i - 1); 10].join(","))))
        .collect();
    let deep: String =
        (0..1000).map(|i| format!("{}k:\n", " ".repeat(i))).collect::<String>() + &" ".repeat(1000) + "v\n";
    for (name, yaml) in [("laughs", format!("kind: ConfigMap\ndata:\n{laughs}")), ("deep", deep)] {
        std::fs::write(dir.path().join(format!("{name}.yaml")), &yaml).unwrap();
        let script = format!("scenario \"s\" {{\n    apply \"{name}.yaml\"\n}}\n");
        let file = rehearse::check::Checker::new().check_source(&dir.path().join("s.rollout"), &script);
        let refused: Vec<_> = file.diagnostics.iter().filter(|d| d.code == "rehearse::yaml::refused").collect();
        assert_eq!(refused.len(), 1, "{name}: {:?}", file.diagnostics);
        assert!(refused[0].message.contains("budget breached"), "{}", refused[0].message);
        // `run` reads with the same reader, and fails the same way.
        assert!(rehearse::input::yaml_documents(&yaml).is_err());
    }
}

#[test]
fn control_bytes_never_reach_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("esc.rollout");
    std::fs::write(&path, "scenario \"a\u{1b}[31mred\" {\n    frob\u{1b}[2J x\u{7}\r\n    \u{1b}]0;title\u{7}\n}\n")
        .unwrap();
    let (code, err) = check(&path);
    assert_eq!(code, 2);
    let raw: Vec<char> = err.chars().filter(|c| c.is_control() && *c != '\n' && *c != '\t').collect();
    assert!(raw.is_empty(), "raw control characters {raw:?} in:\n{err}");
    assert!(err.contains("frob\u{241b}[2J x\u{2407}"), "{err}");
}
