//! What is running right now, for the live terminal line: the executor records each scenario's
//! current step; the terminal reporter redraws from it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Default)]
pub struct Progress {
    running: Arc<Mutex<BTreeMap<String, (String, Instant)>>>,
}

impl Progress {
    pub fn step(&self, scenario: &str, step: &str) {
        self.lock().insert(scenario.to_string(), (step.to_string(), Instant::now()));
    }

    pub fn done(&self, scenario: &str) {
        self.lock().remove(scenario);
    }

    /// (scenario, step, time in the step), in scenario-name order.
    pub fn running(&self) -> Vec<(String, String, Duration)> {
        self.lock().iter().map(|(scenario, (step, since))| (scenario.clone(), step.clone(), since.elapsed())).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (String, Instant)>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::Progress;

    #[test]
    fn tracks_the_current_step_of_each_scenario() {
        let progress = Progress::default();
        progress.step("b", "label pods app=rng active=yes");
        progress.step("a", "apply \"x.yaml\"");
        progress.step("b", "select service/rng app=rng,active=yes");
        let running: Vec<(String, String)> = progress.running().into_iter().map(|(s, t, _)| (s, t)).collect();
        assert_eq!(
            running,
            [("a".into(), "apply \"x.yaml\"".into()), ("b".into(), "select service/rng app=rng,active=yes".into())]
        );
        progress.done("a");
        assert_eq!(progress.running().len(), 1);
    }
}
