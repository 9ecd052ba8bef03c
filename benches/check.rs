//! `rehearse check` over 1,000 scenario files (about 1 MB), on one core.
//!
//! Run with `cargo bench --bench check`. Prints the wall time of the library pipeline (read,
//! parse, check, all in one thread) and of the release binary, pinned to one CPU when `taskset`
//! exists. Target (issue 2): under 100 ms.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const FILES: usize = 1000;

/// Writes the benchmark corpus: the runbook's scenario files, renamed, until 1,000 files exist.
fn corpus(dir: &Path) -> usize {
    let examples = std::fs::canonicalize("examples").expect("run from the crate root");
    let mut sources = Vec::new();
    for entry in std::fs::read_dir("scenarios").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rollout") {
            let text = std::fs::read_to_string(&path).unwrap();
            sources.push(
                text.replace("base-dir \"../examples\"", &format!("base-dir {:?}", examples.display().to_string())),
            );
        }
    }
    sources.sort();
    let mut bytes = 0;
    for i in 0..FILES {
        let text = sources[i % sources.len()].replace("scenario \"", &format!("scenario \"{i} "));
        // Pad to ~1 KB per file with comments, as real scripts carry explanations.
        let padding = "# rehearsal notes: why this order matters and what to watch for in production\n";
        let mut text = text;
        while text.len() < 1000 {
            text.insert_str(0, padding);
        }
        bytes += text.len();
        std::fs::write(dir.join(format!("s{i:04}.rollout")), text).unwrap();
    }
    bytes
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = corpus(dir.path());
    println!("corpus: {FILES} files, {:.2} MB", bytes as f64 / 1e6);

    let paths = vec![dir.path().to_path_buf()];
    let mut library = Vec::new();
    for _ in 0..15 {
        let started = Instant::now();
        let files = rehearse::check::check_path(&paths).unwrap();
        let elapsed = started.elapsed();
        assert_eq!(files.len(), FILES);
        assert!(files.iter().all(|f| f.diagnostics.is_empty()));
        library.push(elapsed);
    }
    println!("library check_path: median {:?}, min {:?}", median(library.clone()), library.iter().min().unwrap());

    let binary = PathBuf::from(env!("CARGO_BIN_EXE_rehearse"));
    let pinned = Command::new("taskset").arg("--version").output().is_ok();
    let mut runs = Vec::new();
    for _ in 0..15 {
        let mut command = if pinned {
            let mut c = Command::new("taskset");
            c.args(["-c", "0"]).arg(&binary);
            c
        } else {
            Command::new(&binary)
        };
        command.arg("check").arg(dir.path());
        let started = Instant::now();
        let output = command.output().unwrap();
        runs.push(started.elapsed());
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    println!(
        "binary `rehearse check` ({}): median {:?}, min {:?}",
        if pinned { "taskset -c 0" } else { "not pinned" },
        median(runs.clone()),
        runs.iter().min().unwrap()
    );
}
