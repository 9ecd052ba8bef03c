//! Deterministic names for what a run observes: generated pod names, template hashes and uids
//! differ on every run, so results describe pods by their role (`$victim`, `pod of
//! replicaset/rng-{hash}`) and print hash label values as `{hash}`.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::Pod;

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
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for d in descriptions {
        *counts.entry(d).or_default() += 1;
    }
    if counts.is_empty() {
        return "nothing".into();
    }
    counts.into_iter().map(|(d, n)| if n == 1 { d } else { format!("{n} × {d}") }).collect::<Vec<_>>().join(", ")
}

/// Pods still on their way in or out, for a step that timed out while they were: which pod,
/// since when, and what it is waiting for (its grace period, or readiness). Empty when every pod
/// is ready and none is terminating.
pub fn pods_in_flux(
    pods: &[std::sync::Arc<Pod>],
    variables: &HashMap<String, String>,
    now: k8s_openapi::jiff::Timestamp,
) -> Vec<String> {
    let seconds_since = |t: &k8s_openapi::jiff::Timestamp| now.duration_since(*t).as_secs().max(0);
    let mut notes: Vec<String> = pods
        .iter()
        .filter_map(|p| {
            let name = format!("pod/{} ({})", p.metadata.name.clone().unwrap_or_default(), pod(p, variables));
            if let Some(deadline) = &p.metadata.deletion_timestamp {
                let grace = p.metadata.deletion_grace_period_seconds.unwrap_or(0);
                let since = deadline.0 - k8s_openapi::jiff::SignedDuration::from_secs(grace);
                let left = deadline.0.duration_since(now).as_secs().max(0);
                return Some(format!(
                    "{name} has been terminating for {}s: its grace period is {grace}s, so it is gone within {left}s \
                     (until then it still holds its node and may still serve)",
                    seconds_since(&since)
                ));
            }
            let conditions = p.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
            let ready = conditions.iter().find(|c| c.type_ == "Ready");
            if ready.is_some_and(|c| c.status == "True") {
                return None;
            }
            let since = ready
                .and_then(|c| c.last_transition_time.as_ref())
                .or(p.metadata.creation_timestamp.as_ref())
                .map_or(0, |t| seconds_since(&t.0));
            let phase = p.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_else(|| "Pending".into());
            let waiting = if p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none() {
                "waiting to be scheduled".to_string()
            } else {
                format!("waiting for readiness (phase {phase})")
            };
            Some(format!("{name} has not been ready for {since}s: {waiting}"))
        })
        .collect();
    notes.sort();
    notes
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
        let labels = Labels::from([("app".into(), "rng".into()), ("pod-template-hash".into(), "abc".into())]);
        assert_eq!(super::labels(&labels), "app=rng,pod-template-hash={hash}");
    }

    #[test]
    fn pods_in_flux_say_what_they_wait_for() {
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
        let unscheduled =
            pod_json(serde_json::json!({"metadata": {"name": "nowhere", "uid": "u3", "creationTimestamp": at(-5)}}));
        let ready = pod_json(serde_json::json!({
            "metadata": {"name": "fine", "uid": "u4"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }));
        let pods: Vec<std::sync::Arc<Pod>> =
            [terminating, starting, unscheduled, ready].into_iter().map(std::sync::Arc::new).collect();
        let notes = pods_in_flux(&pods, &HashMap::new(), now);
        assert_eq!(notes.len(), 3, "{notes:?}");
        let text = notes.join("\n");
        let pattern = regex::Regex::new(concat!(
            r"pod/new \(pod/new\) has not been ready for [23]s: waiting for readiness \(phase Pending\)\n",
            r"pod/nowhere \(pod/nowhere\) has not been ready for [56]s: waiting to be scheduled\n",
            r"pod/old \(pod/old\) has been terminating for 1[12]s: its grace period is 30s, so it is gone within 1[78]s"
        ))
        .unwrap();
        assert!(pattern.is_match(&text), "{text}");
    }
}
