//! Deterministic names for what a run observes: generated pod names, template hashes and uids
//! differ on every run, so results describe pods by their role (`$victim`, `pod of
//! replicaset/rng-{hash}`) and print hash label values as `{hash}`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::api::core::v1::Node;

use super::pod::Pod;
use super::view::controller_ref;
use crate::model::labels::Labels;

/// Label keys whose values are generated hashes.
const HASH_KEYS: [&str; 2] = ["pod-template-hash", "controller-revision-hash"];

/// Replaces a generated hash inside a name (`rng-7d9f8c6b5` → `rng-{hash}`).
pub fn normalise_name(name: &str, hash: Option<&str>) -> String {
    match hash {
        Some(hash) if !hash.is_empty() => name.replace(hash, "{hash}"),
        _ => name.to_string(),
    }
}

/// Labels with hash values replaced, as `k=v,k2=v2`.
pub fn labels(labels: &Labels) -> String {
    labels
        .iter()
        .map(|(k, v)| if HASH_KEYS.contains(&k.as_str()) { format!("{k}={{hash}}") } else { format!("{k}={v}") })
        .collect::<Vec<_>>()
        .join(",")
}

/// How a pod is named in results.
pub fn pod(pod: &Pod, variables: &HashMap<String, String>) -> String {
    if let Some(variable) = pod.metadata.uid.as_ref().and_then(|uid| variables.get(uid)) {
        return format!("${variable}");
    }
    let hash = pod.metadata.labels.as_ref().and_then(|l| HASH_KEYS.iter().find_map(|k| l.get(*k))).map(String::as_str);
    if let Some(owner) = controller_ref(&pod.metadata) {
        return format!("pod of {}/{}", owner.kind.to_ascii_lowercase(), normalise_name(&owner.name, hash));
    }
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    match &pod.metadata.generate_name {
        Some(prefix) if name.starts_with(prefix.as_str()) => format!("pod/{}{{id}}", normalise_name(prefix, hash)),
        _ => format!("pod/{name}"),
    }
}

/// A multiset of descriptions, printed sorted with counts: `3 × pod of replicaset/rng-{hash}, $victim`.
pub fn tally(descriptions: impl IntoIterator<Item = String>) -> String {
    let counted = counted(descriptions);
    if counted.is_empty() { "nothing".into() } else { counted.join(", ") }
}

/// Each distinct description once, sorted, without counts: `pod of replicaset/rng-{hash}, $victim`.
/// For pods that changed together in one EndpointSlice update, whose number is the controller's
/// batching (timing), not the script's.
pub fn distinct(descriptions: impl IntoIterator<Item = String>) -> String {
    let distinct: std::collections::BTreeSet<String> = descriptions.into_iter().collect();
    if distinct.is_empty() { "nothing".into() } else { distinct.into_iter().collect::<Vec<_>>().join(", ") }
}

/// Each distinct description once, sorted, prefixed with its count when it is more than one.
pub fn counted(descriptions: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for d in descriptions {
        *counts.entry(d).or_default() += 1;
    }
    counts.into_iter().map(|(d, n)| if n == 1 { d } else { format!("{n} × {d}") }).collect()
}

/// The first container that cannot be created for want of a ConfigMap or Secret, in the
/// kubelet's words: `web: CreateContainerConfigError: configmap "settings" not found`, or `init
/// container setup: ...` for an init container (which holds every container after it, so it is
/// looked at first). The kubelet keeps that state until the object exists, and its message names
/// only the object (and the namespace, which documents mask), so it reads the same on every run;
/// other waiting reasons come and go (a crash loop's back-off) or name the pod.
fn stuck_container(status: &super::pod::PodStatus) -> Option<String> {
    let init = status.init_container_statuses.iter().flatten().map(|c| ("init container ", c));
    let app = status.container_statuses.iter().flatten().map(|c| ("", c));
    init.chain(app).find_map(|(what, container)| {
        let waiting = container.state.as_ref()?.waiting.as_ref()?;
        let reason = waiting.reason.as_deref().filter(|r| *r == "CreateContainerConfigError")?;
        Some(match waiting.message.as_deref().filter(|m| !m.is_empty()) {
            Some(message) => format!("{what}{}: {reason}: {message}", container.name),
            None => format!("{what}{}: {reason}", container.name),
        })
    })
}

/// The readiness gates of a pod whose containers are ready, whose conditions are not True:
/// `readiness gate "example.com/lb" not True`. Someone else (a load balancer's controller) must
/// set them; on a cluster without one, nobody does.
fn unmet_gates(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    let conditions = status.conditions.as_deref().unwrap_or_default();
    let holds = |kind: &str| conditions.iter().any(|c| c.type_ == kind && c.status == "True");
    if !holds("ContainersReady") {
        return None;
    }
    let gates = pod.spec.as_ref()?.readiness_gates.as_deref().unwrap_or_default();
    let unmet: Vec<String> =
        gates.iter().filter(|g| !holds(&g.condition_type)).map(|g| format!("\"{}\"", g.condition_type)).collect();
    match unmet.len() {
        0 => None,
        1 => Some(format!("readiness gate {} not True", unmet[0])),
        _ => Some(format!("readiness gates {} not True", unmet.join(", "))),
    }
}

/// The pods still on their way in or out when a step timed out: what each is waiting for, and
/// which pod it is and for how long.
pub struct PodsInFlux {
    pods: Vec<InFlux>,
}

struct InFlux {
    /// Its role (`pod of replicaset/rng-{hash}`, `$victim`) and what it waits for: the same
    /// on every run of the scenario.
    what: String,
    /// Its name and how long it has waited: different on every run (generated names, seconds).
    which: String,
    /// How long a pod not yet ready has waited, in seconds (none for a terminating pod).
    starting_for: Option<i64>,
}

/// When a pod bound to a node that does not exist goes: upstream's pod garbage collector looks
/// every 20 s, quarantines the node at the first look that finds such a pod, and deletes the pod
/// at its first look once the 40 s quarantine is over.
pub const COLLECTED: &str =
    "the pod garbage collector deletes it about 40s after it first finds it there (it looks every 20s)";

/// How many pods the detail names before it only counts the rest.
const NAMED_IN_FLUX: usize = 10;

impl PodsInFlux {
    /// Every pod that is not Ready, or is terminating. `nodes` are the cluster's nodes: a pod
    /// bound to one that is not among them has no kubelet (when the view holds no node at all,
    /// none is taken for missing).
    pub fn of(
        pods: &[std::sync::Arc<Pod>],
        nodes: &[std::sync::Arc<Node>],
        variables: &HashMap<String, String>,
        now: k8s_openapi::jiff::Timestamp,
    ) -> PodsInFlux {
        let seconds_since = |t: &k8s_openapi::jiff::Timestamp| now.duration_since(*t).as_secs().max(0);
        let known: BTreeSet<&str> = nodes.iter().filter_map(|n| n.metadata.name.as_deref()).collect();
        let mut pods: Vec<InFlux> = pods
            .iter()
            .filter_map(|p| {
                let role = pod(p, variables);
                let name = format!("pod/{}", p.metadata.name.as_deref().unwrap_or_default());
                let bound_to = p.spec.as_ref().and_then(|s| s.node_name.as_deref()).filter(|n| !n.is_empty());
                // No kubelet runs there: the pod garbage collector deletes such a pod (upstream's
                // gcOrphaned). The node's name stays out of what is recorded: on a real cluster it
                // may be a generated one that is gone.
                let missing_node = bound_to.filter(|node| !known.is_empty() && !known.contains(node));
                if let Some(deadline) = &p.metadata.deletion_timestamp {
                    let grace = p.metadata.deletion_grace_period_seconds.unwrap_or(0);
                    let since = deadline.0 - k8s_openapi::jiff::SignedDuration::from_secs(grace);
                    let left = deadline.0.duration_since(now);
                    // The kubelet removes the pod a moment after the period ends (it stops the
                    // process, then writes the pod's last status).
                    let held = p.metadata.finalizers.as_deref().unwrap_or_default();
                    let finished =
                        matches!(p.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"));
                    let stopped = !held.is_empty() && finished;
                    let unbound = bound_to.is_none();
                    // A missing node first: the pod garbage collector marks such a pod Failed
                    // too, with no kubelet involved.
                    let ends = if let Some(node) = missing_node {
                        format!("its node {node} does not exist, so no kubelet ends it")
                    } else if stopped {
                        "its kubelet has stopped it".to_string()
                    } else if !held.is_empty() && unbound {
                        "no node took it, so no kubelet stops it".to_string()
                    } else if left.is_positive() {
                        format!("its grace period ends in {}s", left.as_secs_f64().ceil())
                    } else if held.is_empty() {
                        "its grace period is over, and its kubelet removes it next".to_string()
                    } else {
                        "its grace period is over, and its kubelet stops it next".to_string()
                    };
                    let what = if missing_node.is_some() {
                        let after = if held.is_empty() {
                            COLLECTED.to_string()
                        } else {
                            format!("it stays until its finalizers ({}) are removed", held.join(", "))
                        };
                        format!("{role} deleted on a node that does not exist: no kubelet ends it, and {after}")
                    } else if held.is_empty() {
                        format!(
                            "{role} terminating: its grace period is {grace}s (until it ends the pod still holds its \
                             node and may still serve)"
                        )
                    } else if stopped || unbound {
                        // No wait ends this: only whoever set the finalizers can let the pod go.
                        let how = if stopped { "stopped by its kubelet" } else { "deleted before a node took it" };
                        format!(
                            "{role} {how} and held by its finalizers ({}): it stays until they are removed",
                            held.join(", ")
                        )
                    } else {
                        format!(
                            "{role} terminating, held by its finalizers ({}): it stays until they are removed (its \
                             kubelet stops it once its grace period of {grace}s ends)",
                            held.join(", ")
                        )
                    };
                    return Some(InFlux {
                        what,
                        which: format!("{name} ({role}) has been terminating for {}s; {ends}", seconds_since(&since)),
                        starting_for: None,
                    });
                }
                let status = p.status.as_ref();
                let condition =
                    |kind: &str| status.and_then(|s| s.conditions.as_ref())?.iter().find(|c| c.type_ == kind);
                let ready = condition("Ready");
                if ready.is_some_and(|c| c.status == "True") {
                    return None;
                }
                let since = ready
                    .and_then(|c| c.transitioned_at())
                    .or(p.metadata.creation_timestamp.as_ref().map(|t| t.0))
                    .map_or(0, |t| seconds_since(&t));
                let waiting = if missing_node.is_some() {
                    format!("bound to a node that does not exist: no kubelet starts it, and {COLLECTED}")
                } else if p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none() {
                    // The scheduler says why it placed the pod nowhere.
                    match condition("PodScheduled").and_then(|c| c.message.as_deref()).filter(|m| !m.is_empty()) {
                        Some(why) => format!("waiting to be scheduled ({why})"),
                        None => "waiting to be scheduled".into(),
                    }
                } else {
                    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
                    match status.and_then(stuck_container).or_else(|| unmet_gates(p)) {
                        Some(why) => format!("waiting for readiness (phase {phase}; {why})"),
                        None => format!("waiting for readiness (phase {phase})"),
                    }
                };
                let node = missing_node.map(|node| format!("; its node {node} does not exist")).unwrap_or_default();
                Some(InFlux {
                    what: format!("{role} not ready: {waiting}"),
                    which: format!("{name} ({role}) has not been ready for {since}s{node}"),
                    starting_for: Some(since),
                })
            })
            .collect();
        pods.sort_by(|a, b| (&a.what, &a.which).cmp(&(&b.what, &b.which)));
        PodsInFlux { pods }
    }

    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }

    /// What the pods wait for, alike ones counted together (`3 × pod of replicaset/rng-{hash} not
    /// ready: ...`): nothing that differs between two runs of the scenario, so a result may
    /// record it.
    pub fn summary(&self) -> Vec<String> {
        counted(self.pods.iter().map(|p| p.what.clone()))
    }

    /// When every pod still starting was made in the second half of a step that took `timeout`,
    /// why that is likely: something before them took most of the step (a Recreate rollout
    /// waits until every old pod is gone, grace period and all), so the step needs more time.
    pub fn started_late(&self, timeout: std::time::Duration) -> Option<String> {
        let longest = self.pods.iter().filter_map(|p| p.starting_for).max()?;
        let half = i64::try_from(timeout.as_secs() / 2).unwrap_or(i64::MAX);
        (longest < half).then(|| {
            format!(
                "the pods still starting were made at most {longest}s before the {}s deadline: what came before \
                 them took most of the step (a Recreate rollout first waits out the old pods' termination grace \
                 period, 30s unless the template says); give the step more time with `within`",
                timeout.as_secs()
            )
        })
    }

    /// Which pods they are and how long they have waited, the first few by name: for the person
    /// reading the run, never recorded.
    pub fn detail(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.pods.iter().take(NAMED_IN_FLUX).map(|p| p.which.clone()).collect();
        if self.pods.len() > NAMED_IN_FLUX {
            lines.push(format!("and {} more", self.pods.len() - NAMED_IN_FLUX));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_json(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn pods_are_named_by_role() {
        let owned = pod_json(serde_json::json!({"metadata": {
            "name": "rng-7d9f8c-abcde", "uid": "u1", "generateName": "rng-7d9f8c-",
            "labels": {"app": "rng", "pod-template-hash": "7d9f8c"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rng-7d9f8c", "uid": "rs", "controller": true}]
        }}));
        let orphan = pod_json(serde_json::json!({"metadata": {
            "name": "rng-7d9f8c-xyz12", "uid": "u2", "generateName": "rng-7d9f8c-",
            "labels": {"pod-template-hash": "7d9f8c"}
        }}));
        let bare = pod_json(serde_json::json!({"metadata": {"name": "debug", "uid": "u3"}}));
        let variables = HashMap::from([("u3".to_string(), "probe".to_string())]);
        assert_eq!(pod(&owned, &variables), "pod of replicaset/rng-{hash}");
        assert_eq!(pod(&orphan, &variables), "pod/rng-{hash}-{id}");
        assert_eq!(pod(&bare, &variables), "$probe");
        assert_eq!(pod(&bare, &HashMap::new()), "pod/debug");
    }

    #[test]
    fn tallies_are_sorted_and_counted() {
        let items = ["b", "a", "b", "b"].map(String::from);
        assert_eq!(tally(items), "a, 3 × b");
        assert_eq!(tally(Vec::<String>::new()), "nothing");
        assert_eq!(distinct(["b", "a", "b"].map(String::from)), "a, b");
        assert_eq!(distinct(Vec::<String>::new()), "nothing");
        let labels = Labels::from([("app".into(), "rng".into()), ("pod-template-hash".into(), "abc".into())]);
        assert_eq!(super::labels(&labels), "app=rng,pod-template-hash={hash}");
    }

    #[test]
    fn pods_in_flux_say_what_they_wait_for_and_apart_from_that_which_and_for_how_long() {
        let now = k8s_openapi::jiff::Timestamp::now();
        let at = |seconds: i64| (now + k8s_openapi::jiff::SignedDuration::from_secs(seconds)).to_string();
        let terminating = pod_json(serde_json::json!({
            "metadata": {"name": "old", "uid": "u1", "deletionTimestamp": at(18), "deletionGracePeriodSeconds": 30},
            "spec": {"nodeName": "worker", "containers": []},
        }));
        let starting = pod_json(serde_json::json!({
            "metadata": {"name": "new", "uid": "u2", "creationTimestamp": at(-3)},
            "spec": {"nodeName": "worker", "containers": []},
            "status": {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": at(-2)}]},
        }));
        let unscheduled = |name: &str, uid: &str| {
            pod_json(serde_json::json!({
                "metadata": {
                    "name": name, "uid": uid, "generateName": "web-abc-", "creationTimestamp": at(-5),
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc", "uid": "rs", "controller": true}],
                },
                "status": {"phase": "Pending", "conditions": [{
                    "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                    "message": "0/3 nodes are available: 3 Too many pods.",
                }]},
            }))
        };
        let ready = pod_json(serde_json::json!({
            "metadata": {"name": "fine", "uid": "u4"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }));
        let mut pods = vec![terminating, starting, ready];
        pods.extend((0..12).map(|i| unscheduled(&format!("web-abc-{i:02}"), &format!("w{i}"))));
        let pods: Vec<std::sync::Arc<Pod>> = pods.into_iter().map(std::sync::Arc::new).collect();
        let variables = HashMap::from([("u2".to_string(), "canary".to_string())]);
        let in_flux = PodsInFlux::of(&pods, &[], &variables, now);

        assert_eq!(
            in_flux.summary(),
            [
                "$canary not ready: waiting for readiness (phase Pending)",
                "12 × pod of replicaset/web-abc not ready: waiting to be scheduled (0/3 nodes are available: 3 Too \
                 many pods.)",
                "pod/old terminating: its grace period is 30s (until it ends the pod still holds its node and may \
                 still serve)",
            ]
        );
        let detail = in_flux.detail();
        assert_eq!(detail.len(), NAMED_IN_FLUX + 1, "{detail:?}");
        assert!(
            regex::Regex::new(r"^pod/new \(\$canary\) has not been ready for [23]s$").unwrap().is_match(&detail[0])
        );
        assert!(
            regex::Regex::new(r"^pod/web-abc-00 \(pod of replicaset/web-abc\) has not been ready for [56]s$")
                .unwrap()
                .is_match(&detail[1]),
            "{detail:?}"
        );
        assert_eq!(detail[NAMED_IN_FLUX], "and 4 more");
        assert!(PodsInFlux::of(&pods[2..3], &[], &variables, now).is_empty());

        // The oldest pod still starting waited 5-6 s: late in a 30 s step, not in a 10 s one.
        let late = in_flux.started_late(std::time::Duration::from_secs(30)).expect("started late");
        assert!(late.contains("before the 30s deadline") && late.contains("`within`"), "{late}");
        assert_eq!(in_flux.started_late(std::time::Duration::from_secs(10)), None);
        // Terminating pods alone are not pods starting late.
        assert_eq!(
            PodsInFlux::of(&pods[..1], &[], &variables, now).started_late(std::time::Duration::from_secs(30)),
            None
        );
    }

    #[test]
    fn a_pod_its_finalizers_hold_says_so_before_and_after_its_kubelet_stops_it() {
        let now = k8s_openapi::jiff::Timestamp::now();
        let at = |seconds: i64| (now + k8s_openapi::jiff::SignedDuration::from_secs(seconds)).to_string();
        let held = |phase: &str, deadline: i64, grace: i64| {
            std::sync::Arc::new(pod_json(serde_json::json!({
                "metadata": {
                    "name": "web", "uid": "u1", "finalizers": ["example.com/hold"],
                    "deletionTimestamp": at(deadline), "deletionGracePeriodSeconds": grace,
                },
                "spec": {"nodeName": "worker", "containers": []},
                "status": {"phase": phase},
            })))
        };
        let running = PodsInFlux::of(&[held("Running", 5, 10)], &[], &HashMap::new(), now);
        assert_eq!(
            running.summary(),
            ["pod/web terminating, held by its finalizers (example.com/hold): it stays until they are removed (its \
              kubelet stops it once its grace period of 10s ends)"]
        );
        assert_eq!(running.detail(), ["pod/web (pod/web) has been terminating for 5s; its grace period ends in 5s"]);
        let stopped = PodsInFlux::of(&[held("Failed", -7, 0)], &[], &HashMap::new(), now);
        assert_eq!(
            stopped.summary(),
            ["pod/web stopped by its kubelet and held by its finalizers (example.com/hold): it stays until they are \
              removed"]
        );
        assert_eq!(stopped.detail(), ["pod/web (pod/web) has been terminating for 7s; its kubelet has stopped it"]);
        let mut unbound = (*held("Pending", 0, 0)).clone();
        unbound.spec.as_mut().unwrap().node_name = None;
        let unbound = PodsInFlux::of(&[std::sync::Arc::new(unbound)], &[], &HashMap::new(), now);
        assert_eq!(
            unbound.summary(),
            ["pod/web deleted before a node took it and held by its finalizers (example.com/hold): it stays until \
              they are removed"]
        );
        assert_eq!(
            unbound.detail(),
            ["pod/web (pod/web) has been terminating for 0s; no node took it, so no kubelet stops it"]
        );
    }

    #[test]
    fn a_pod_bound_to_a_node_that_does_not_exist_says_no_kubelet_will_start_or_end_it() {
        let now = k8s_openapi::jiff::Timestamp::now();
        let deadline = (now - k8s_openapi::jiff::SignedDuration::from_secs(3)).to_string();
        let worker = std::sync::Arc::new(Node {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("worker".into()),
                ..Default::default()
            },
            ..Default::default()
        });
        let on = |node: &str, deleted: bool, finalizers: &[&str], phase: &str| {
            let mut metadata = serde_json::json!({"name": "stray", "uid": "u1", "finalizers": finalizers});
            if deleted {
                metadata["deletionTimestamp"] = deadline.clone().into();
                metadata["deletionGracePeriodSeconds"] = 30.into();
            }
            std::sync::Arc::new(pod_json(serde_json::json!({
                "metadata": metadata,
                "spec": {"nodeName": node, "containers": []},
                "status": {"phase": phase},
            })))
        };
        let nodes = [worker];
        // The node's name only in the detail, which results do not record.
        let starting = PodsInFlux::of(&[on("gone", false, &[], "Pending")], &nodes, &HashMap::new(), now);
        assert_eq!(
            starting.summary(),
            ["pod/stray not ready: bound to a node that does not exist: no kubelet starts it, and the pod garbage \
              collector deletes it about 40s after it first finds it there (it looks every 20s)"]
        );
        assert_eq!(
            starting.detail(),
            ["pod/stray (pod/stray) has not been ready for 0s; its node gone does not exist"]
        );
        let ending = PodsInFlux::of(&[on("gone", true, &[], "Pending")], &nodes, &HashMap::new(), now);
        assert_eq!(
            ending.summary(),
            ["pod/stray deleted on a node that does not exist: no kubelet ends it, and the pod garbage collector \
              deletes it about 40s after it first finds it there (it looks every 20s)"]
        );
        assert_eq!(
            ending.detail(),
            ["pod/stray (pod/stray) has been terminating for 33s; its node gone does not exist, so no kubelet ends it"]
        );
        // Held by finalizers, before and after the collector has marked it Failed: no kubelet
        // stopped it.
        for phase in ["Pending", "Failed"] {
            let held = PodsInFlux::of(&[on("gone", true, &["example.com/hold"], phase)], &nodes, &HashMap::new(), now);
            assert_eq!(
                held.summary(),
                ["pod/stray deleted on a node that does not exist: no kubelet ends it, and it stays until its \
                  finalizers (example.com/hold) are removed"],
                "{phase}"
            );
            assert_eq!(
                held.detail(),
                [
                    "pod/stray (pod/stray) has been terminating for 33s; its node gone does not exist, so no kubelet ends \
                  it"
                ],
                "{phase}"
            );
        }
        // A node the view holds, or a view that holds none: the kubelet's own words.
        for (pod, nodes) in [(on("worker", true, &[], "Running"), &nodes[..]), (on("gone", true, &[], "Running"), &[])]
        {
            let summary = PodsInFlux::of(&[pod], nodes, &HashMap::new(), now).summary();
            assert_eq!(
                summary,
                ["pod/stray terminating: its grace period is 30s (until it ends the pod still holds its node and may \
                  still serve)"]
            );
        }
    }
}
