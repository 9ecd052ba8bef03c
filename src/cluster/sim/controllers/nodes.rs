//! Nodes: the testbed's, and the rules that say whether a pod may go on one (taints and
//! tolerations, nodeSelector and required node affinity), shared by the scheduler and the
//! DaemonSet controller.

use serde_json::{Value, json};

use super::map_selects;
use crate::cluster::PACE_ANNOTATION;
use crate::cluster::sim::Pace;

pub const CONTROL_PLANE_LABEL: &str = "node-role.kubernetes.io/control-plane";

/// The testbed's nodes, as kind names them: `rehearse-control-plane` (tainted
/// `node-role.kubernetes.io/control-plane:NoSchedule`) and `workers` workers (`rehearse-worker`,
/// `rehearse-worker2`, ...), Ready, with an InternalIP each (172.18.0.2, .3, ...) and a pod CIDR
/// each (10.244.0.0/24, 10.244.1.0/24, ...), marked with the pace their kubelet plays pods at.
pub fn default_nodes(workers: usize, pace: Pace) -> Vec<Value> {
    let mut nodes = vec![node("rehearse-control-plane", 0, true, pace)];
    for n in 1..=workers {
        let name = if n == 1 { "rehearse-worker".to_string() } else { format!("rehearse-worker{n}") };
        nodes.push(node(&name, n, false, pace));
    }
    nodes
}

fn node(name: &str, index: usize, control_plane: bool, pace: Pace) -> Value {
    let mut labels = json!({
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
    });
    let mut spec = json!({
        "podCIDR": format!("10.244.{index}.0/24"),
        "podCIDRs": [format!("10.244.{index}.0/24")],
        "providerID": format!("kind://docker/rehearse/{name}"),
    });
    if control_plane {
        labels[CONTROL_PLANE_LABEL] = "".into();
        labels["node.kubernetes.io/exclude-from-external-load-balancers"] = "".into();
        spec["taints"] = json!([{"key": CONTROL_PLANE_LABEL, "effect": "NoSchedule"}]);
    }
    // The testbed's nodes: kind's pod limit (the kubelet's default), CPU and memory that no
    // scenario fills (requests are not counted here).
    let capacity = json!({"cpu": "1k", "memory": "1Ti", "pods": "110"});
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {PACE_ANNOTATION: match pace { Pace::Fast => "fast", Pace::Kind => "kind" }},
        },
        "spec": spec,
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": format!("172.18.0.{}", index + 2)},
                {"type": "Hostname", "address": name},
            ],
            "allocatable": capacity.clone(),
            "capacity": capacity,
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": "amd64",
                "containerRuntimeVersion": "containerd://2.1.1",
                "kernelVersion": "6.1.0",
                "kubeProxyVersion": "",
                "kubeletVersion": "v1.34.0",
                "operatingSystem": "linux",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "bootID": "", "machineID": "", "systemUUID": "",
            },
        },
    })
}

fn condition(kind: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastHeartbeatTime": "2026-01-01T00:00:00Z",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    })
}

/// The node's InternalIP.
pub fn internal_ip(node: &Value) -> Option<&str> {
    node["status"]["addresses"].as_array()?.iter().find(|a| a["type"] == "InternalIP")?["address"].as_str()
}

/// Upstream's ToleratesTaint: one toleration against one taint.
fn tolerates(toleration: &Value, taint: &Value) -> bool {
    let effect = toleration["effect"].as_str().unwrap_or_default();
    if !effect.is_empty() && Some(effect) != taint["effect"].as_str() {
        return false;
    }
    let key = toleration["key"].as_str().unwrap_or_default();
    if !key.is_empty() && Some(key) != taint["key"].as_str() {
        return false;
    }
    match toleration["operator"].as_str().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" => toleration["value"].as_str().unwrap_or_default() == taint["value"].as_str().unwrap_or_default(),
        _ => false,
    }
}

/// The first of the node's taints with one of `effects` that no toleration in `spec` tolerates.
pub fn untolerated_taint<'a>(spec: &Value, node: &'a Value, effects: &[&str]) -> Option<&'a Value> {
    let tolerations = spec["tolerations"].as_array().map(Vec::as_slice).unwrap_or_default();
    node["spec"]["taints"]
        .as_array()?
        .iter()
        .filter(|t| t["effect"].as_str().is_some_and(|e| effects.contains(&e)))
        .find(|taint| !tolerations.iter().any(|t| tolerates(t, taint)))
}

/// Whether the pod spec's nodeSelector and required node affinity let it on the node.
pub fn matches_affinity(spec: &Value, node: &Value) -> bool {
    let labels = &node["metadata"]["labels"];
    if let Some(selector) = spec["nodeSelector"].as_object()
        && !map_selects(selector, labels)
    {
        return false;
    }
    let required = &spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"];
    let Some(terms) = required["nodeSelectorTerms"].as_array() else { return true };
    // Terms are ORed; a term with no requirements matches nothing.
    terms.iter().any(|term| {
        let expressions = term["matchExpressions"].as_array().map(Vec::as_slice).unwrap_or_default();
        let fields = term["matchFields"].as_array().map(Vec::as_slice).unwrap_or_default();
        (!expressions.is_empty() || !fields.is_empty())
            && expressions.iter().all(|e| requirement(e, labels[e["key"].as_str().unwrap_or_default()].as_str()))
            && fields.iter().all(|e| {
                let field = (e["key"] == "metadata.name").then(|| node["metadata"]["name"].as_str()).flatten();
                requirement(e, field)
            })
    })
}

/// One NodeSelectorRequirement against a label's (or field's) value.
fn requirement(requirement: &Value, value: Option<&str>) -> bool {
    let values: Vec<&str> = requirement["values"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let number = |s: &str| s.parse::<i64>().ok();
    match requirement["operator"].as_str().unwrap_or_default() {
        "In" => value.is_some_and(|v| values.contains(&v)),
        "NotIn" => value.is_none_or(|v| !values.contains(&v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (value.and_then(number), values.first().copied().and_then(number)) else {
                return false;
            };
            if requirement["operator"] == "Gt" { v > bound } else { v < bound }
        }
        _ => false,
    }
}

/// The tolerations the DaemonSet controller adds to its pods (upstream's
/// AddOrUpdateDaemonPodTolerations); network-unavailable only for host-network pods.
pub fn add_daemon_tolerations(spec: &mut Value) {
    let mut wanted = vec![
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if spec["hostNetwork"].as_bool() == Some(true) {
        wanted.push(("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    if !spec["tolerations"].is_array() {
        spec["tolerations"] = json!([]);
    }
    let tolerations = spec["tolerations"].as_array_mut().expect("an array");
    for (key, effect) in wanted {
        let toleration = json!({"key": key, "operator": "Exists", "effect": effect});
        // AddOrUpdateTolerationInPodSpec: an equal toleration is replaced, others kept.
        let same = |t: &Value| {
            t["key"] == key && t["effect"] == effect && t["operator"].as_str().unwrap_or("Equal") == "Exists"
        };
        if let Some(existing) = tolerations.iter_mut().find(|t| same(t)) {
            *existing = toleration;
        } else {
            tolerations.push(toleration);
        }
    }
}
