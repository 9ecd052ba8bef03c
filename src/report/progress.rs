//! What is running right now, for the live terminal line: the executor records each scenario's
//! current step; the terminal reporter redraws from it, and a library caller may wait for a step.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

type Running = BTreeMap<String, (String, Instant)>;

#[derive(Clone, Default)]
pub struct Progress {
    running: Arc<(Mutex<Running>, Condvar)>,
}

impl Progress {
    pub fn step(&self, scenario: &str, step: &str) {
        self.lock().insert(scenario.to_string(), (step.to_string(), Instant::now()));
        self.running.1.notify_all();
    }

    pub fn done(&self, scenario: &str) {
        self.lock().remove(scenario);
        self.running.1.notify_all();
    }

    /// Blocks this thread until a running scenario's step satisfies `wanted` (given the scenario
    /// and the step's text), or `timeout` passes; whether one did. For a caller on another thread
    /// than the run's, e.g. to cancel it in a given step.
    pub fn wait_for_step(&self, timeout: Duration, wanted: impl Fn(&str, &str) -> bool) -> bool {
        let found = |running: &Running| running.iter().any(|(scenario, (step, _))| wanted(scenario, step));
        let guard = self.lock();
        let (guard, _) = self
            .running
            .1
            .wait_timeout_while(guard, timeout, |running| !found(running))
            .unwrap_or_else(|e| e.into_inner());
        found(&guard)
    }

    /// (scenario, step, time in the step), in scenario-name order.
    pub fn running(&self) -> Vec<(String, String, Duration)> {
        self.lock().iter().map(|(scenario, (step, since))| (scenario.clone(), step.clone(), since.elapsed())).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Running> {
        self.running.0.lock().unwrap_or_else(|e| e.into_inner())
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

    #[test]
    fn a_wait_for_a_step_ends_when_another_thread_reaches_it_or_at_its_timeout() {
        let progress = Progress::default();
        let runner = progress.clone();
        let steps = std::thread::spawn(move || {
            for step in ["apply", "scale deployment/web to 3", "wait rollout deployment/web"] {
                runner.step("a", step);
            }
        });
        // The last step stays current, so the wait sees it whether it began waiting before the
        // other thread got there (woken by the notification) or after (found at once).
        let seen = progress.wait_for_step(std::time::Duration::from_secs(10), |_, step| step.starts_with("wait"));
        steps.join().unwrap();
        assert!(seen);
        let never = progress.wait_for_step(std::time::Duration::from_millis(20), |_, step| step == "delete");
        assert!(!never);
    }
}
