//! The scheduler: binds each pod that has no node (and is not being deleted) to the node that
//! passes upstream's filters (NodeUnschedulable, TaintToleration, NodeAffinity, the pod count of
//! NodeResourcesFit, InterPodAffinity's required terms) with the fewest pods, ties by name; a pod no node takes stays Pending with
//! PodScheduled False, Unschedulable, and the scheduler's message.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::super::resources::{NODE, POD};
use super::super::store::Store;
use super::nodes::{matches_affinity, untolerated_taint};
use super::{is_deleting, is_terminal, name, selects, write};

/// Whether the pod waits for this scheduler: no node yet, not being deleted.
fn waits(pod: &Value) -> bool {
    pod["spec"]["nodeName"].as_str().is_none_or(str::is_empty)
        && !is_deleting(pod)
        && pod["spec"]["schedulerName"].as_str().unwrap_or("default-scheduler") == "default-scheduler"
}

pub fn run(store: &mut Store, namespaces: &[String]) {
    // Most rounds have no pod to place: only then is every node's load worth counting.
    if !namespaces.iter().any(|ns| store.list(POD, Some(ns)).any(waits)) {
        return;
    }
    let nodes: Vec<Value> = store.list(NODE, None).cloned().collect();
    let mut pods_on: BTreeMap<String, i64> = nodes.iter().map(|n| (name(n).to_string(), 0)).collect();
    let mut waiting = Vec::new();
    let mut placed = Vec::new();
    for namespace in store.namespaces() {
        for pod in store.list(POD, Some(&namespace)) {
            match pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
                Some(node) if !is_terminal(pod) => {
                    *pods_on.entry(node.to_string()).or_default() += 1;
                    placed.push(Placed::new(&namespace, pod, node));
                }
                Some(_) => {}
                None if waits(pod) && namespaces.contains(&namespace) => waiting.push((namespace.clone(), pod.clone())),
                None => {}
            }
        }
    }
    for (namespace, mut pod) in waiting {
        if pod["spec"]["schedulingGates"].as_array().is_some_and(|g| !g.is_empty()) {
            let message = "Scheduling is blocked due to non-empty scheduling gates";
            set_scheduled(store, &namespace, pod, "False", Some(("SchedulingGated", message)));
            continue;
        }
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        let mut best: Option<(i64, &Value)> = None;
        for node in &nodes {
            let reason = filter(&pod["spec"], node, pods_on[name(node)])
                .or_else(|| inter_pod_affinity(&namespace, &pod, node, &nodes, &placed));
            match reason {
                Some(reason) => *reasons.entry(reason).or_default() += 1,
                None => {
                    let count = pods_on[name(node)];
                    if best.is_none_or(|(fewest, _)| count < fewest) {
                        best = Some((count, node));
                    }
                }
            }
        }
        match best {
            Some((_, node)) => {
                *pods_on.get_mut(name(node)).expect("a known node") += 1;
                pod["spec"]["nodeName"] = name(node).into();
                placed.push(Placed::new(&namespace, &pod, name(node)));
                set_scheduled(store, &namespace, pod, "True", None);
            }
            None => {
                let message = unschedulable_message(nodes.len(), &reasons);
                set_scheduled(store, &namespace, pod, "False", Some(("Unschedulable", &message)));
            }
        }
    }
}

/// The first filter the node fails, in the scheduler's words; None when it passes them all.
fn filter(spec: &Value, node: &Value, pods_on_node: i64) -> Option<String> {
    let unschedulable_tolerated = spec["tolerations"].as_array().is_some_and(|tolerations| {
        tolerations.iter().any(|t| {
            let key_ok = t["key"].as_str().is_none_or(|k| k.is_empty() || k == "node.kubernetes.io/unschedulable");
            let effect_ok = t["effect"].as_str().is_none_or(|e| e.is_empty() || e == "NoSchedule");
            let exists = t["operator"] == "Exists" || t["key"].as_str().is_some_and(|k| !k.is_empty());
            key_ok && effect_ok && exists
        })
    });
    if node["spec"]["unschedulable"].as_bool() == Some(true) && !unschedulable_tolerated {
        return Some("node(s) were unschedulable".into());
    }
    // Today's scheduler no longer names the taint (older ones said `untolerated taint {key: value}`).
    if untolerated_taint(spec, node, &["NoSchedule", "NoExecute"]).is_some() {
        return Some("node(s) had untolerated taint(s)".into());
    }
    if !matches_affinity(spec, node) {
        return Some("node(s) didn't match Pod's node affinity/selector".into());
    }
    let allowed = node["status"]["allocatable"]["pods"].as_str().and_then(|p| p.parse::<i64>().ok()).unwrap_or(110);
    if pods_on_node >= allowed {
        return Some("Too many pods".into());
    }
    None
}

/// A pod bound to a node, as inter-pod affinity sees it.
struct Placed {
    namespace: String,
    labels: Value,
    node: String,
    affinity: Value,
}

impl Placed {
    fn new(namespace: &str, pod: &Value, node: &str) -> Placed {
        Placed {
            namespace: namespace.to_string(),
            labels: pod["metadata"]["labels"].clone(),
            node: node.to_string(),
            affinity: pod["spec"]["affinity"].clone(),
        }
    }
}

/// Upstream's InterPodAffinity filter, required terms only: the pod's anti-affinity (no
/// matching pod in the node's topology domain), existing pods' anti-affinity against it, and
/// its affinity (a matching pod in the domain, or none anywhere when it matches its own term).
fn inter_pod_affinity(
    namespace: &str,
    pod: &Value,
    node: &Value,
    nodes: &[Value],
    placed: &[Placed],
) -> Option<String> {
    let node_labels = |node_name: &str| {
        nodes.iter().find(|n| name(n) == node_name).map(|n| n["metadata"]["labels"].clone()).unwrap_or(Value::Null)
    };
    let same_domain = |key: &str, other_node: &str| {
        let here = node["metadata"]["labels"].get(key).and_then(Value::as_str);
        here.is_some() && here == node_labels(other_node).get(key).and_then(Value::as_str)
    };
    let required = |affinity: &Value, kind: &str| -> Vec<Value> {
        affinity[kind]["requiredDuringSchedulingIgnoredDuringExecution"].as_array().cloned().unwrap_or_default()
    };
    // The namespaces a term applies to: its list, or the namespace of the pod that holds it.
    let term_selects = |term: &Value, holder_namespace: &str, other_namespace: &str, labels: &Value| {
        let in_scope = match term["namespaces"].as_array().filter(|l| !l.is_empty()) {
            Some(list) => list.iter().any(|n| n.as_str() == Some(other_namespace)),
            None => holder_namespace == other_namespace,
        };
        in_scope && selects(&term["labelSelector"], labels)
    };
    let affinity = &pod["spec"]["affinity"];
    let labels = &pod["metadata"]["labels"];
    for term in required(affinity, "podAntiAffinity") {
        let key = term["topologyKey"].as_str().unwrap_or_default();
        if placed.iter().any(|p| same_domain(key, &p.node) && term_selects(&term, namespace, &p.namespace, &p.labels)) {
            return Some("node(s) didn't match pod anti-affinity rules".into());
        }
    }
    for existing in placed {
        for term in required(&existing.affinity, "podAntiAffinity") {
            let key = term["topologyKey"].as_str().unwrap_or_default();
            if same_domain(key, &existing.node) && term_selects(&term, &existing.namespace, namespace, labels) {
                return Some("node(s) didn't satisfy existing pods anti-affinity rules".into());
            }
        }
    }
    for term in required(affinity, "podAffinity") {
        let key = term["topologyKey"].as_str().unwrap_or_default();
        let matching: Vec<&Placed> =
            placed.iter().filter(|p| term_selects(&term, namespace, &p.namespace, &p.labels)).collect();
        let first_of_its_kind = matching.is_empty() && term_selects(&term, namespace, namespace, labels);
        if !first_of_its_kind && !matching.iter().any(|p| same_domain(key, &p.node)) {
            return Some("node(s) didn't match pod affinity rules".into());
        }
    }
    None
}

/// `0/3 nodes are available: 1 node(s) had untolerated taint(s), 2 Too many pods. preemption: 0/3
/// nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found
/// for incoming pod.` Parts are sorted as whole strings, as upstream's are.
fn unschedulable_message(nodes: usize, reasons: &BTreeMap<String, usize>) -> String {
    if nodes == 0 {
        return "no nodes available to schedule pods".to_string();
    }
    let found = histogram(reasons.iter().map(|(reason, count)| (reason.as_str(), *count)));
    let nodes_where = |helps: bool| -> usize {
        reasons.iter().filter(|(reason, _)| preemption_might_help(reason) == helps).map(|(_, n)| n).sum()
    };
    // Every pod here has the same priority, so preemption never finds a pod to evict.
    let preemption = histogram([
        ("Preemption is not helpful for scheduling", nodes_where(false)),
        ("No preemption victims found for incoming pod", nodes_where(true)),
    ]);
    format!("0/{nodes} nodes are available: {found}. preemption: 0/{nodes} nodes are available: {preemption}.")
}

/// `2 Too many pods, 1 node(s) ...`: each reason with its count of nodes (none left out), sorted
/// as whole strings.
fn histogram<'a>(counts: impl IntoIterator<Item = (&'a str, usize)>) -> String {
    let mut parts: Vec<String> =
        counts.into_iter().filter(|(_, count)| *count > 0).map(|(reason, count)| format!("{count} {reason}")).collect();
    parts.sort();
    parts.join(", ")
}

/// Whether evicting pods could make the node fit (upstream's Unschedulable, where taints, node
/// affinity, an unschedulable node or the pod's own affinity are UnschedulableAndUnresolvable).
fn preemption_might_help(reason: &str) -> bool {
    matches!(
        reason,
        "Too many pods"
            | "node(s) didn't match pod anti-affinity rules"
            | "node(s) didn't satisfy existing pods anti-affinity rules"
    )
}

/// Writes the PodScheduled condition (and the binding, already in `pod`); the transition time
/// only changes with the status.
fn set_scheduled(store: &mut Store, namespace: &str, mut pod: Value, status: &str, why: Option<(&str, &str)>) {
    let now = store.clock.timestamp();
    let mut condition =
        json!({"type": "PodScheduled", "status": status, "lastProbeTime": null, "lastTransitionTime": now});
    if let Some((reason, message)) = why {
        condition["reason"] = reason.into();
        condition["message"] = message.into();
    }
    if !pod["status"].is_object() {
        pod["status"] = json!({"phase": "Pending"});
    }
    if !pod["status"]["conditions"].is_array() {
        pod["status"]["conditions"] = json!([]);
    }
    let conditions = pod["status"]["conditions"].as_array_mut().expect("an array");
    match conditions.iter_mut().find(|c| c["type"] == "PodScheduled") {
        Some(current) => {
            if current["status"] == status {
                condition["lastTransitionTime"] = current["lastTransitionTime"].clone();
            }
            *current = condition;
        }
        None => conditions.push(condition),
    }
    write(store, POD, namespace, pod);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::unschedulable_message;

    #[test]
    fn preemption_is_said_to_find_no_victims_only_where_evicting_pods_could_help() {
        let reasons = |pairs: &[(&str, usize)]| -> BTreeMap<String, usize> {
            pairs.iter().map(|(reason, count)| (reason.to_string(), *count)).collect()
        };
        // The testbed's words for a rollout that overfills both workers (kube-scheduler v1.37).
        assert_eq!(
            unschedulable_message(3, &reasons(&[("node(s) had untolerated taint(s)", 1), ("Too many pods", 2)])),
            "0/3 nodes are available: 1 node(s) had untolerated taint(s), 2 Too many pods. preemption: 0/3 nodes \
             are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming \
             pod."
        );
        assert_eq!(
            unschedulable_message(
                3,
                &reasons(&[
                    ("node(s) had untolerated taint(s)", 1),
                    ("node(s) didn't match Pod's node affinity/selector", 2)
                ])
            ),
            "0/3 nodes are available: 1 node(s) had untolerated taint(s), 2 node(s) didn't match Pod's node \
             affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
        );
        assert_eq!(unschedulable_message(0, &BTreeMap::new()), "no nodes available to schedule pods");
    }
}
