//! `rehearse run` on the testbed (start it with `tests/testbed/testbed.sh up`):
//!
//! 1. latency: a pod is relabelled and a view-driven expectation waits for it; the figure is the
//!    time from sending the PATCH (and from receiving its response) to the expectation completing;
//! 2. the runbook suite with `--jobs 1`, `--jobs 4` and `--jobs 12` (all its scenarios at once):
//!    median wall of 5 interleaved runs each (`REHEARSE_BENCH_ROUNDS`), every run on a quiet
//!    cluster (the earlier runs' namespaces deleted), with the CPU the control plane and rehearse
//!    used during it;
//! 3. peak memory (max RSS) of `rehearse run` on the suite, from `/usr/bin/time`.
//!
//! Run with `cargo bench --bench run`. Targets (issue 4): median latency under 10 ms, --jobs 4 at
//! least 2.5 times faster than --jobs 1, peak memory under 50 MB.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use rehearse::cluster::connect::{ConnectOptions, connect};
use rehearse::exec::view::{Nodes, View};

fn kubeconfig() -> PathBuf {
    std::env::var_os("REHEARSE_KUBECONFIG").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/rehearse-testbed/run/kubeconfig")
    })
}

/// The middle sample (the upper one of an even count); `None` without samples.
fn median<T: Copy + PartialOrd>(samples: impl IntoIterator<Item = T>) -> Option<T> {
    let mut samples: Vec<T> = samples.into_iter().collect();
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    samples.get(samples.len() / 2).copied()
}

async fn latency() {
    let options = ConnectOptions { kubeconfig: Some(kubeconfig()), ..Default::default() };
    let client = connect(&options).await.expect("the testbed is up (tests/testbed/testbed.sh up)").client;
    let run = rehearse::exec::namespace::RunIdentity::new(rehearse::exec::namespace::DEFAULT_LEASE);
    let own = rehearse::exec::namespace::create(&client, "bench latency", &run).await.unwrap();
    let namespace = own.name.clone();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "probe", "labels": {"round": "0"}},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let nodes = Nodes::start(&client).await.unwrap();
    let view = View::start(&client, &own, &nodes, &Default::default()).await.unwrap();
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
        median(from_send.iter().copied()).unwrap_or_default(),
        {
            let mut s = from_send.clone();
            s.sort();
            s[s.len() * 9 / 10]
        },
        median(from_response).unwrap_or_default()
    );
}

/// One run of the suite: its wall time, rehearse's peak memory and CPU, and the control plane's CPU.
struct SuiteRun {
    wall: Duration,
    max_rss_kb: Option<u64>,
    rehearse_cpu: Option<f64>,
    control_plane_cpu: Option<f64>,
}

/// CPU seconds used so far by the testbed's components (from their pid files and /proc), if the
/// testbed runs on this machine.
fn control_plane_cpu() -> Option<f64> {
    let dir = kubeconfig().parent()?.join("pids");
    let ticks = 100.0; // USER_HZ on Linux
    let mut total = 0.0;
    for entry in std::fs::read_dir(dir).ok()? {
        let pid = std::fs::read_to_string(entry.ok()?.path()).ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).ok()?;
        // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        total += (fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?) / ticks;
    }
    Some(total)
}

/// Waits (watch-driven) until no scenario namespace is left from an earlier run, so every run
/// starts on a quiet cluster as a user's single run would, not during the last run's cleanup.
async fn quiet_cluster(client: &kube::Client) {
    let label = format!("{}={}", rehearse::exec::namespace::OWNER_LABEL, rehearse::exec::namespace::OWNER_VALUE);
    let config = kube::runtime::watcher::Config::default().labels(&label);
    rehearse::cluster::until(Api::<Namespace>::all(client.clone()), config, Duration::from_secs(180), |namespaces| {
        namespaces.is_empty().then_some(())
    })
    .await
    .expect("the earlier runs' namespaces are deleted within 3 minutes");
}

fn suite(runtime: &tokio::runtime::Runtime, client: &kube::Client, jobs: &str) -> SuiteRun {
    runtime.block_on(quiet_cluster(client));
    let binary = env!("CARGO_BIN_EXE_rehearse");
    let timed = std::path::Path::new("/usr/bin/time").exists();
    let mut command = if timed {
        let mut c = Command::new("/usr/bin/time");
        c.args(["-f", "maxrss_kb=%M cpu_s=%U+%S", binary]);
        c
    } else {
        Command::new(binary)
    };
    command.args(["run", "--jobs", jobs, "scenarios"]).env("KUBECONFIG", kubeconfig()).env("CI", "1");
    let cpu_before = control_plane_cpu();
    let started = Instant::now();
    let output = command.output().unwrap();
    let wall = started.elapsed();
    let cpu_after = control_plane_cpu();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let field = |name: &str| {
        stderr.lines().find_map(|l| l.split_whitespace().find_map(|f| f.strip_prefix(name)).map(str::to_string))
    };
    SuiteRun {
        wall,
        max_rss_kb: field("maxrss_kb=").and_then(|v| v.parse().ok()),
        rehearse_cpu: field("cpu_s=").and_then(|v| {
            let (user, system) = v.split_once('+')?;
            Some(user.parse::<f64>().ok()? + system.parse::<f64>().ok()?)
        }),
        control_plane_cpu: cpu_before.zip(cpu_after).map(|(before, after)| after - before),
    }
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(latency());
    let options = ConnectOptions { kubeconfig: Some(kubeconfig()), ..Default::default() };
    let client = runtime.block_on(connect(&options)).expect("the testbed is up").client;
    let rounds: usize = std::env::var("REHEARSE_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    let job_counts = ["1", "4", "12"];
    // Interleaved rounds, so a slow spell of the machine hits every job count alike.
    let mut runs: Vec<Vec<SuiteRun>> = job_counts.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds {
        for (i, jobs) in job_counts.iter().enumerate() {
            runs[i].push(suite(&runtime, &client, jobs));
        }
    }
    let walls: Vec<Duration> = runs.iter().map(|r| median(r.iter().map(|s| s.wall)).unwrap_or_default()).collect();
    for (i, jobs) in job_counts.iter().enumerate() {
        let control_plane = median(runs[i].iter().filter_map(|r| r.control_plane_cpu));
        let own = median(runs[i].iter().filter_map(|r| r.rehearse_cpu));
        let busy = control_plane.zip(own).map(|(c, o)| (c + o) / (walls[i].as_secs_f64() * cores) * 100.0);
        println!(
            "runbook suite --jobs {jobs:>2}: median wall {:.2} s over {rounds} runs (each {}); speed-up over --jobs 1: {:.2}x; \
             CPU during the run: control plane {}, rehearse {}, machine busy {}",
            walls[i].as_secs_f64(),
            runs[i].iter().map(|r| format!("{:.2}", r.wall.as_secs_f64())).collect::<Vec<_>>().join(" "),
            walls[0].as_secs_f64() / walls[i].as_secs_f64(),
            control_plane.map_or("n/a".into(), |c| format!("{c:.2} s")),
            own.map_or("n/a".into(), |c| format!("{c:.2} s")),
            busy.map_or("n/a".into(), |b| format!("{b:.0}% of {cores} cores")),
        );
    }
    let peak = runs.iter().flatten().filter_map(|r| r.max_rss_kb).max().unwrap_or(0);
    println!("peak memory of `rehearse run`: {:.1} MB (max RSS)", peak as f64 / 1024.0);
}
