//! Shared by the integration tests that need the testbed (tests/testbed/testbed.sh up).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};

/// The testbed's kubeconfig: `REHEARSE_KUBECONFIG`, else where testbed.sh writes it.
pub fn kubeconfig() -> PathBuf {
    if let Some(path) = std::env::var_os("REHEARSE_KUBECONFIG") {
        return PathBuf::from(path);
    }
    let cache = std::env::var_os("REHEARSE_TESTBED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/rehearse-testbed/run"));
    cache.join("kubeconfig")
}

pub async fn client() -> Client {
    let path = kubeconfig();
    assert!(
        path.exists(),
        "no testbed kubeconfig at {}: start the testbed with `tests/testbed/testbed.sh up` (or run `bash .ci/run`)",
        path.display()
    );
    let options = rehearse::cluster::connect::ConnectOptions { kubeconfig: Some(path), ..Default::default() };
    rehearse::cluster::connect(&options).await.expect("connect to the testbed").client
}

pub const TIMEOUT: Duration = Duration::from_secs(60);

/// A namespace for one test, deleted when the test ends, even by a panic.
pub struct TestNamespace {
    pub name: String,
}

impl TestNamespace {
    pub async fn new(client: &Client, prefix: &str) -> Self {
        let name = format!("{prefix}-{}", std::process::id() as u64 * 1000 + rand_suffix());
        let namespace: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": {"rehearse.dev/test": "true"}}
        }))
        .unwrap();
        Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &namespace).await.unwrap();
        TestNamespace { name }
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        // Drop cannot await: delete from a thread with its own runtime and its own client (a
        // client's connection is driven by the runtime that made it, which is blocked here).
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let client = client().await;
                let _ = Api::<Namespace>::all(client).delete(&name, &DeleteParams::background()).await;
            });
        })
        .join();
    }
}

/// `rehearse ARGS` on the testbed; CI=1 so no snapshot is ever written unless a test says so.
pub fn rehearse(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rehearse"));
    command.args(args).env("CI", "1").env("NO_COLOR", "1");
    // REHEARSE_TEST_CLUSTER=builtin runs the same tests on the built-in cluster (tests/run.sh
    // does so for the verdict tests); otherwise they run on the testbed.
    if std::env::var("REHEARSE_TEST_CLUSTER").is_ok_and(|c| c == "builtin") {
        command.env_remove("KUBECONFIG");
    } else {
        command.env("KUBECONFIG", kubeconfig());
    }
    command
}

pub fn run(mut command: impl std::borrow::BorrowMut<Command>) -> (i32, String) {
    let Output { status, stdout, stderr } = command.borrow_mut().output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&stdout), String::from_utf8_lossy(&stderr));
    (status.code().unwrap_or(-1), text)
}

pub fn script(dir: &Path, name: &str, text: &str) -> PathBuf {
    let examples = std::fs::canonicalize("examples").unwrap();
    let path = dir.join(name);
    std::fs::write(&path, format!("base-dir {:?}\n\n{text}", examples.display().to_string())).unwrap();
    path
}

/// The namespaces a JSON report names, with whether each is gone or being deleted.
pub async fn namespaces_left(report: &Path) -> Vec<String> {
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
    let api = Api::<Namespace>::all(client().await);
    let mut left = Vec::new();
    for scenario in report["scenarios"].as_array().unwrap() {
        let name = scenario["namespace"].as_str().unwrap();
        assert!(name.starts_with("rehearse-"), "{name}");
        if let Some(ns) = api.get_opt(name).await.unwrap()
            && ns.metadata.deletion_timestamp.is_none()
        {
            left.push(name.to_string());
        }
    }
    left
}

/// A scenario name no other run on the testbed has (its namespace starts `rehearse-NAME-`).
pub fn unique(what: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("{what} {} {}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Starts `rehearse run` on a scenario (named uniquely: a namespace another test left terminating
/// must not be mistaken for this run's) that waits in a long step, and returns once the scenario's
/// Deployment exists (watched, not polled), with the namespace's name.
pub async fn start_waiting(dir: &Path, extra: &[&str]) -> (Child, String, std::path::PathBuf) {
    let scenario = unique("waits");
    let prefix = format!("rehearse-{}-", scenario.replace(' ', "-"));
    let text = format!(
        "scenario {scenario:?} {{\n    apply \"dockercoins/rng.yaml\"\n    expect pods app=never count 1 within 5m\n}}\n"
    );
    let path = script(dir, "waits.rollout", &text);
    let json = dir.join("report.json");
    let report = format!("json={}", json.display());
    let mut args = vec!["run", path.to_str().unwrap(), "--report", &report];
    args.extend_from_slice(extra);
    let child = rehearse(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let client = client().await;
    let name = rehearse::cluster::until(
        Api::<k8s_openapi::api::apps::v1::Deployment>::all(client),
        kube::runtime::watcher::Config::default(),
        Duration::from_secs(30),
        |all| all.iter().filter_map(|d| d.metadata.namespace.clone()).find(|n| n.starts_with(&prefix)),
    )
    .await
    .expect("the scenario started");
    (child, name, json)
}

pub fn signal(child: &Child, name: &str) {
    assert!(Command::new("kill").args([&format!("-{name}"), &child.id().to_string()]).status().unwrap().success());
}

pub async fn finish(child: Child) -> (Option<i32>, String) {
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.code(), text)
}
