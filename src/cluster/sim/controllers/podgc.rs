//! The pod garbage collector (upstream's pkg/controller/podgc), its rule for orphans: a pod bound
//! to a node that does not exist (a `nodeName` typed by hand) has no kubelet to run it or to
//! finish its deletion. Upstream's loop runs every 20 s; a pass puts the missing node in
//! quarantine for 40 s, and the first pass after that finds it still missing marks its pods
//! Failed (condition DisruptionTarget, reason DeletionByPodGC) and deletes them at once. Here the
//! passes are counted from the cluster's start, so an orphan goes 40 to 60 s after it is bound,
//! as on a cluster, where the point in that window depends on the controller manager's start.
//!
//! Upstream keeps one quarantine for the whole cluster; here each namespace has its own, so one
//! scenario's orphans never hasten another's (on the testbed, a node name two scenarios share
//! would).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde_json::{Value, json};

use super::super::resources::{NODE, POD};
use super::super::store::Store;
use super::{Tick, name, write};

/// How often upstream's loop runs (gcCheckPeriod).
const PERIOD: Duration = Duration::from_secs(20);

/// How many passes a missing node stays in quarantine (quarantineTime, 40 s).
const QUARANTINE_PASSES: u64 = 2;

/// Per namespace: the next pass due there, and at which pass each missing node was quarantined.
#[derive(Default)]
pub struct PodGc {
    namespaces: HashMap<String, Orphans>,
}

#[derive(Default)]
struct Orphans {
    /// The pass (counted from the cluster's start) the collector is next woken for. A visit for
    /// a change between passes makes none: upstream's loop sees pods only when it runs.
    next_pass: Option<u64>,
    quarantined_at: BTreeMap<String, u64>,
}

impl PodGc {
    pub fn run(&mut self, store: &mut Store, tick: &mut Tick, namespace: &str) {
        let nodes: BTreeSet<&str> = store.list(NODE, None).map(name).collect();
        let orphans: Vec<(String, String)> = store
            .list(POD, Some(namespace))
            .filter_map(|pod| {
                let node = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty() && !nodes.contains(n))?;
                Some((name(pod).to_string(), node.to_string()))
            })
            .collect();
        if orphans.is_empty() {
            self.namespaces.remove(namespace);
            return;
        }
        let elapsed = store.clock.elapsed();
        let current = (elapsed.as_nanos() / PERIOD.as_nanos()) as u64;
        let state = self.namespaces.entry(namespace.to_string()).or_default();
        let due = *state.next_pass.get_or_insert(current + 1);
        if current >= due {
            state.next_pass = Some(current + 1);
            for (_, node) in &orphans {
                state.quarantined_at.entry(node.clone()).or_insert(current);
            }
            let gone: BTreeSet<String> = state
                .quarantined_at
                .iter()
                .filter(|(_, at)| current >= *at + QUARANTINE_PASSES)
                .map(|(node, _)| node.clone())
                .collect();
            state.quarantined_at.retain(|node, _| !gone.contains(node));
            for (pod, _) in orphans.iter().filter(|(_, node)| gone.contains(node)) {
                delete_orphan(store, tick, namespace, pod);
            }
            if state.quarantined_at.is_empty() {
                // Every orphan is gone: nothing to wake for.
                self.namespaces.remove(namespace);
                return;
            }
        }
        let next = state.next_pass.unwrap_or(current + 1);
        let at = PERIOD * u32::try_from(next).unwrap_or(u32::MAX);
        tick.wake_at(tick.now + at.saturating_sub(elapsed));
    }

    /// Forgets the namespaces that are gone.
    pub fn retain(&mut self, namespaces: &[String]) {
        self.namespaces.retain(|namespace, _| namespaces.contains(namespace));
    }
}

/// Upstream's markFailedAndDeletePodWithCondition: Failed with the reason, then deleted with no
/// grace period (no kubelet would ever confirm its end).
fn delete_orphan(store: &mut Store, tick: &Tick, namespace: &str, pod_name: &str) {
    let Some(pod) = store.get(POD, namespace, pod_name) else { return };
    let mut failed = pod.clone();
    if !matches!(failed["status"]["phase"].as_str(), Some("Succeeded" | "Failed")) {
        failed["status"]["phase"] = "Failed".into();
        let condition = json!({
            "type": "DisruptionTarget",
            "status": "True",
            "lastProbeTime": Value::Null,
            "lastTransitionTime": tick.timestamp(),
            "reason": "DeletionByPodGC",
            "message": "PodGC: node no longer exists",
        });
        match failed["status"]["conditions"].as_array_mut() {
            Some(conditions) => conditions.push(condition),
            None => failed["status"]["conditions"] = json!([condition]),
        }
        write(store, POD, namespace, failed);
    }
    store.remove(POD, namespace, pod_name);
}
