//! Shared by the integration tests that need the testbed (tests/testbed/testbed.sh up).
#![allow(dead_code)]

use std::path::PathBuf;
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
