//! Deterministic names for what a run observes: generated pod names, template hashes and uids
//! differ on every run, so results describe pods by their role (`$victim`, `pod of
//! replicaset/rng-{hash}`) and print hash label values as `{hash}`.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::Pod;

use super::view::controller_of;
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
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    if let Some(variable) = variables.get(&uid) {
        return format!("${variable}");
    }
    let pod_labels = pod.metadata.labels.clone().unwrap_or_default();
    let hash = HASH_KEYS.iter().find_map(|k| pod_labels.get(*k)).map(String::as_str);
    if let Some((kind, name, _)) = controller_of(&pod.metadata) {
        return format!("pod of {}/{}", kind.to_ascii_lowercase(), normalise_name(&name, hash));
    }
    let name = pod.metadata.name.clone().unwrap_or_default();
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
}
