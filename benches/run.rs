//! `rehearse run` on the testbed (start it with `tests/testbed/testbed.sh up`):
//!
//! 1. latency: a pod is relabelled and a view-driven expectation waits for it; the figure is the
//!    time from sending the PATCH (and from receiving its response) to the expectation completing;
//! 2. the runbook suite with `--jobs 1` and `--jobs 4` (median wall of 3 runs each);
//! 3. peak memory (max RSS) of `rehearse run` on the suite, from `/usr/bin/time`.
//!
//! Run with `cargo bench --bench run`. Targets (issue 4): median latency under 10 ms, --jobs 4 at
//! least 2.5 times faster than --jobs 1, peak memory under 50 MB.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use rehearse::cluster::connect::{ConnectOptions, connect};
use rehearse::exec::view::{Nodes, View};

fn kubeconfig() -> PathBuf {
    std::env::var_os("REHEARSE_KUBECONFIG").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/rehearse-testbed/run/kubeconfig")
    })
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

async fn latency() {
    let options = ConnectOptions { kubeconfig: Some(kubeconfig()), ..Default::default() };
    let client = connect(&options).await.expect("the testbed is up (tests/testbed/testbed.sh up)").client;
    let own = rehearse::exec::namespace::create(&client, "bench latency").await.unwrap();
    let namespace = own.name.clone();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "probe", "labels": {"round": "0"}},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let nodes = Nodes::start(&client).await.unwrap();
    let view = View::start(&client, &namespace, &nodes).await.unwrap();
    let (mut from_send, mut from_response) = (Vec::new(), Vec::new());
    for round in 1..=200 {
        let wanted = round.to_string();
        let expectation = {
            let view = &view;
            let wanted = wanted.clone();
            async move {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
                view.wait_for(deadline, |v| {
                    v.live_pods()
                        .iter()
                        .any(|p| p.metadata.labels.as_ref().and_then(|l| l.get("round")) == Some(&wanted))
                        .then_some(())
                        .ok_or(())
                })
                .await
                .expect("the label arrives");
                Instant::now()
            }
        };
        let patch = serde_json::json!({"metadata": {"labels": {"round": wanted}}});
        let sent = Instant::now();
        let (done, responded) = tokio::join!(expectation, async {
            pods.patch("probe", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
            Instant::now()
        });
        from_send.push(done - sent);
        from_response.push(done.saturating_duration_since(responded));
    }
    rehearse::exec::namespace::delete(&client, &own).await.unwrap();
    println!(
        "latency over 200 changes: change sent -> expectation done: median {:?}, p90 {:?}; API response -> done: median {:?}",
        median(from_send.clone()),
        {
            let mut s = from_send.clone();
            s.sort();
            s[s.len() * 9 / 10]
        },
        median(from_response)
    );
}

fn suite(jobs: &str) -> (Duration, Option<u64>) {
    let binary = env!("CARGO_BIN_EXE_rehearse");
    let timed = std::path::Path::new("/usr/bin/time").exists();
    let mut command = if timed {
        let mut c = Command::new("/usr/bin/time");
        c.args(["-f", "maxrss_kb=%M", binary]);
        c
    } else {
        Command::new(binary)
    };
    command.args(["run", "--jobs", jobs, "scenarios"]).env("KUBECONFIG", kubeconfig()).env("CI", "1");
    let started = Instant::now();
    let output = command.output().unwrap();
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let rss = stderr.lines().find_map(|l| l.strip_prefix("maxrss_kb=")).and_then(|v| v.trim().parse().ok());
    (elapsed, rss)
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(latency());
    let mut peak = 0;
    for jobs in ["1", "4"] {
        let runs: Vec<(Duration, Option<u64>)> = (0..3).map(|_| suite(jobs)).collect();
        peak = runs.iter().filter_map(|r| r.1).max().unwrap_or(0).max(peak);
        println!(
            "runbook suite --jobs {jobs}: median wall {:?} over 3 runs",
            median(runs.iter().map(|r| r.0).collect())
        );
    }
    println!("peak memory of `rehearse run`: {:.1} MB (max RSS)", peak as f64 / 1024.0);
}
