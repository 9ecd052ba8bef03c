//! rehearse from another Rust program: load the runbook scenarios, run those whose name matches
//! the first argument (all without one) on the built-in cluster, print each verdict.
//!
//!     cargo run --example embed -- canary

use rehearse::suite::{RunConfig, Suite};

fn main() -> std::process::ExitCode {
    let suite = match Suite::load(&["scenarios"]) {
        Ok(suite) => suite,
        Err(diagnostic) => {
            eprintln!("{}: {}", diagnostic.code, diagnostic.message);
            return std::process::ExitCode::from(2);
        }
    };
    let mut config = RunConfig::default();
    config.selection.patterns.extend(std::env::args().nth(1));
    match suite.run(&config) {
        Ok(outcome) => {
            for result in &outcome.results {
                println!("{:?}: {} ({})", result.status, result.scenario, result.file);
            }
            println!("on the {} cluster: {}", outcome.cluster, if outcome.passed() { "all passed" } else { "FAILED" });
            std::process::ExitCode::from(if outcome.passed() { 0 } else { 1 })
        }
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::from(if error.is_invalid_input() { 2 } else { 3 })
        }
    }
}
