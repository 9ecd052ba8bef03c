//! The built-in cluster's figures (issue 9), from the release binary as a user runs it:
//!
//! 1. `rehearse run scenarios` wall time, process start included: median and best of
//!    `REHEARSE_BENCH_ROUNDS` (default 11) runs, at both paces;
//! 2. simple steps per second: a generated scenario that labels one pod, re-selects a 10-pod
//!    service and checks its traffic, over and over (`REHEARSE_BENCH_STEPS`, default 30,000);
//!    steps divided by the wall time of the run, minus the wall time of the same scenario with no
//!    repeated steps; median and best of `REHEARSE_BENCH_STEP_ROUNDS` (default 5) runs. The
//!    figure against the target is that of one scenario, steps one after another, as a runbook
//!    runs; then the same steps shared by one scenario per core, run at once as `rehearse run`
//!    runs a suite, show what the machine's cores add;
//! 3. peak memory (max RSS, from `/usr/bin/time`) of the suite run;
//! 4. a large scale: one Deployment scaled to `REHEARSE_BENCH_SCALE` pods (default 2,000) on
//!    one worker per 100 pods and one more, rolled out and routed to, wall time; and the same
//!    scale of a Deployment whose pods must spread evenly over the workers (a hard topology spread
//!    constraint, which the scheduler weighs for every pod on every node). No target: they show
//!    how the built-in cluster's work grows with the pods.
//!
//! Run with `cargo bench --bench builtin` (it builds nothing: run `cargo build --release` first).
//! Targets: suite under 100 ms wall, at least 50,000 steps per second, peak memory under 30 MB.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn binary() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/rehearse");
    assert!(path.exists(), "build the release binary first: cargo build --release");
    path
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Runs `rehearse run ARGS` on the built-in cluster; the wall time, and whether it passed.
fn timed_run(args: &[&str]) -> (Duration, bool) {
    let started = Instant::now();
    let status = Command::new(binary())
        .arg("run")
        .args(args)
        .env_remove("KUBECONFIG")
        .env("CI", "1")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("rehearse runs");
    (started.elapsed(), status.success())
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn suite() {
    let rounds = env_number("REHEARSE_BENCH_ROUNDS", 11);
    for pace in ["kind", "fast"] {
        let mut walls: Vec<Duration> = Vec::new();
        for _ in 0..rounds {
            let (wall, passed) = timed_run(&["--pace", pace, "scenarios"]);
            assert!(passed, "the suite failed on the built-in cluster at the {pace} pace");
            walls.push(wall);
        }
        walls.sort();
        println!(
            "suite (scenarios/, {pace} pace): median {:.1} ms, best {:.1} ms wall over {rounds} runs (target < 100 ms)",
            ms(walls[walls.len() / 2]),
            ms(walls[0])
        );
    }
}

/// A script of `scenarios` scenarios, each of `repeats` × 3 simple steps on a 10-pod service.
fn steps_script(dir: &Path, scenarios: usize, repeats: usize) -> PathBuf {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut text = format!("base-dir {:?}\n", examples.display().to_string());
    for scenario in 0..scenarios {
        text.push_str(&format!(
            "\nscenario \"steps {scenario}\" {{\n    apply \"dockercoins/rng.yaml\"\n    scale deployment/rng to 10\n    wait rollout deployment/rng\n    let pod = one pod app=rng\n"
        ));
        for i in 0..repeats {
            let value = if i % 2 == 0 { "a" } else { "b" };
            text.push_str(&format!(
                "    label $pod round={value}\n    select service/rng app=rng\n    expect-traffic service/rng count 10\n"
            ));
        }
        text.push_str("}\n");
    }
    let path = dir.join(format!("steps-{scenarios}x{repeats}.rollout"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Steps per second of `scenarios` scenarios sharing the steps, run as `rehearse run` spreads
/// them (a thread per core); with one scenario, the rate of a single runbook, step after step.
fn steps_per_second(scenarios: usize) {
    let steps = env_number("REHEARSE_BENCH_STEPS", 30_000);
    let rounds = env_number("REHEARSE_BENCH_STEP_ROUNDS", 5).max(1);
    let repeats = steps / 3 / scenarios;
    let total = scenarios * repeats * 3;
    let dir = tempfile::tempdir().unwrap();
    let base = steps_script(dir.path(), scenarios, 0);
    let many = steps_script(dir.path(), scenarios, repeats);
    // Rounds alternate the two scripts, so a slow spell of the machine weighs on both alike.
    let mut rates: Vec<f64> = Vec::new();
    let mut walls: Vec<Duration> = Vec::new();
    let jobs = scenarios.to_string();
    for _ in 0..rounds {
        let (base_wall, passed) = timed_run(&["--pace", "fast", "--jobs", &jobs, base.to_str().unwrap()]);
        assert!(passed, "the base scenarios failed");
        let (wall, passed) = timed_run(&["--pace", "fast", "--jobs", &jobs, many.to_str().unwrap()]);
        assert!(passed, "the steps scenarios failed");
        let spent = wall.saturating_sub(base_wall).max(Duration::from_micros(1));
        rates.push(total as f64 / spent.as_secs_f64());
        walls.push(wall);
    }
    rates.sort_by(f64::total_cmp);
    walls.sort();
    let (shape, judged) = if scenarios == 1 {
        ("one scenario".to_string(), "target >= 50,000 steps/s")
    } else {
        (format!("{scenarios} scenarios at once (--jobs {scenarios})"), "the target is judged on one scenario")
    };
    println!(
        "simple steps, {shape}: {} steps, median {:.0} ms wall ({:.0} steps/s), best {:.0} ms ({:.0} steps/s) over {rounds} runs, \
         the base scenarios' wall subtracted ({judged})",
        total,
        ms(walls[walls.len() / 2]),
        rates[rates.len() / 2],
        ms(walls[0]),
        rates[rates.len() - 1]
    );
}

fn peak_memory() {
    let output = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(binary())
        .args(["run", "scenarios"])
        .env_remove("KUBECONFIG")
        .env("CI", "1")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("/usr/bin/time runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let kib: u64 = stderr.lines().last().and_then(|l| l.trim().parse().ok()).expect("a max RSS figure");
    println!("peak memory (suite, kind pace): {:.1} MB max RSS (target < 30 MB)", kib as f64 / 1024.0);
}

fn large_scale() {
    let pods = env_number("REHEARSE_BENCH_SCALE", 2000);
    let dir = tempfile::tempdir().unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let path = dir.path().join("scale.rollout");
    let workers = pods / 100 + 1;
    std::fs::write(
        &path,
        format!(
            "base-dir {:?}\n\nscenario \"scale\" {{\n    nodes {workers}\n    apply \"dockercoins/rng.yaml\"\n    scale deployment/rng to {pods}\n    wait rollout deployment/rng within 10m\n    expect-traffic service/rng count {pods}\n}}\n",
            examples.display().to_string()
        ),
    )
    .unwrap();
    for pace in ["fast", "kind"] {
        let (wall, passed) = timed_run(&["--pace", pace, path.to_str().unwrap()]);
        assert!(passed, "the scale scenario failed at the {pace} pace");
        println!("scale to {pods} pods on {workers} workers ({pace} pace): {:.0} ms wall", ms(wall));
    }
    let spread = dir.path().join("spread.rollout");
    std::fs::write(
        &spread,
        format!(
            "scenario \"spread\" {{\n    nodes {workers}\n    apply <<YAML\n{SPREAD_DEPLOYMENT}YAML\n    scale deployment/web to {pods}\n    wait rollout deployment/web within 10m\n}}\n"
        ),
    )
    .unwrap();
    let (wall, passed) = timed_run(&["--pace", "fast", spread.to_str().unwrap()]);
    assert!(passed, "the spread scenario failed");
    println!("scale to {pods} pods spread evenly over {workers} workers (fast pace): {:.0} ms wall", ms(wall));
}

/// A Deployment whose pods spread over the workers' hostnames with a skew of at most one (the
/// control-plane node's taint honoured, so it does not hold the minimum at 0).
const SPREAD_DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: DoNotSchedule
          nodeTaintsPolicy: Honor
          labelSelector:
            matchLabels:
              app: web
      containers:
        - name: web
          image: nginx
";

fn main() {
    suite();
    steps_per_second(1);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if cores > 1 {
        steps_per_second(cores);
    }
    peak_memory();
    large_scale();
}
