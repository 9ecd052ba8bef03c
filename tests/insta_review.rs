//! Snapshot review with insta's own tool: the real `cargo insta` (cargo-insta, installed by
//! .ci/run) accepts and rejects the `.snap.new` files a changed scenario leaves, exactly as it
//! does a Rust project's, and `INSTA_UPDATE` modes behave as insta users expect.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rehearse");

const ONE_POD: &str = "scenario \"pods\" {\n    run a image \"nginx:1.27\" labels app=web\n    wait pod/a condition=Ready\n    snapshot \"web pods\"\n}\n";
const TWO_PODS: &str = "scenario \"pods\" {\n    run a image \"nginx:1.27\" labels app=web\n    run b image \"nginx:1.27\" labels app=web\n    wait pod/a condition=Ready\n    wait pod/b condition=Ready\n    snapshot \"web pods\"\n}\n";

fn run(script: &Path, insta_update: Option<&str>) -> (i32, String) {
    let mut command = Command::new(BIN);
    command.args(["run", "--pace", "fast"]).arg(script).env_remove("KUBECONFIG").env_remove("CI");
    match insta_update {
        Some(mode) => command.env("INSTA_UPDATE", mode),
        None => command.env_remove("INSTA_UPDATE"),
    };
    let output = command.output().unwrap();
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// A directory inside a Cargo project, as a Rust developer's scenarios are: cargo-insta finds
/// pending snapshots anywhere under the project it is run in.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        "[package]\nname = \"plans\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[lib]\npath = \"lib.rs\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("lib.rs"), "").unwrap();
    std::fs::create_dir(dir.path().join("rollouts")).unwrap();
    dir
}

fn cargo_insta(verb: &str, root: &Path) -> String {
    let output = Command::new(env!("CARGO"))
        .args(["insta", verb])
        .current_dir(root)
        .env_remove("CI")
        .output()
        .expect("cargo runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !stderr.contains("no such command"),
        "cargo-insta is not installed: `cargo install --locked cargo-insta` (tests/run.sh does)"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "cargo insta {verb}: {stderr}{stdout}");
    stderr + &stdout
}

fn snapshot_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("snapshots"))
        .map(|entries| entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn cargo_insta_accepts_and_rejects_what_a_changed_scenario_observed() {
    let project = project();
    let dir = project.path().join("rollouts");
    let dir = dir.as_path();
    let script = dir.join("plan.rollout");
    std::fs::write(&script, ONE_POD).unwrap();
    let (code, err) = run(&script, None);
    assert_eq!(code, 0, "{err}");
    let snap = dir.join("snapshots/plan__pods__web_pods.snap");
    assert!(cargo_insta("pending-snapshots", project.path()).contains("No pending snapshots"));
    let recorded = std::fs::read_to_string(&snap).unwrap();

    // The scenario changes: the run fails, and leaves the observation for review.
    std::fs::write(&script, TWO_PODS).unwrap();
    let (code, err) = run(&script, None);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("review with `cargo insta review`"), "{err}");
    assert_eq!(snapshot_files(dir), ["plan__pods__web_pods.snap", "plan__pods__web_pods.snap.new"]);

    // Rejected: the recorded snapshot stays, the pending one goes.
    cargo_insta("reject", project.path());
    assert_eq!(snapshot_files(dir), ["plan__pods__web_pods.snap"]);
    assert_eq!(std::fs::read_to_string(&snap).unwrap(), recorded);

    // Accepted: the observation becomes the snapshot, and the next run passes.
    let (code, _) = run(&script, None);
    assert_eq!(code, 1);
    cargo_insta("accept", project.path());
    assert_eq!(snapshot_files(dir), ["plan__pods__web_pods.snap"]);
    let accepted = std::fs::read_to_string(&snap).unwrap();
    assert_ne!(accepted, recorded);
    assert!(accepted.matches("pod/").count() > recorded.matches("pod/").count(), "{accepted}");
    let (code, err) = run(&script, None);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn insta_update_modes() {
    let project = project();
    let dir = project.path().join("rollouts");
    let dir = dir.as_path();
    let script = dir.join("plan.rollout");
    std::fs::write(&script, ONE_POD).unwrap();

    // no: nothing written, and a missing snapshot fails.
    let (code, err) = run(&script, Some("no"));
    assert_eq!(code, 1, "{err}");
    assert!(snapshot_files(dir).is_empty());
    // new: even a first observation waits for review as .snap.new.
    let (code, _) = run(&script, Some("new"));
    assert_eq!(code, 1);
    assert_eq!(snapshot_files(dir), ["plan__pods__web_pods.snap.new"]);
    cargo_insta("accept", project.path());
    assert_eq!(run(&script, Some("no")).0, 0);
    // always: overwritten in place, nothing pending; the run passes.
    std::fs::write(&script, TWO_PODS).unwrap();
    let (code, err) = run(&script, Some("always"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(snapshot_files(dir), ["plan__pods__web_pods.snap"]);
    assert_eq!(run(&script, Some("no")).0, 0);
    // A value insta would not take is invalid input.
    let (code, err) = run(&script, Some("sometimes"));
    assert_eq!(code, 2);
    assert!(err.contains("INSTA_UPDATE=sometimes is not an update mode"), "{err}");
}
