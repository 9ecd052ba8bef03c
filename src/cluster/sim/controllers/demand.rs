//! What a pod asks of the node it runs on, as the scheduler counts it: its resource requests
//! (upstream's PodRequests: containers summed, an init container at its peak, sidecars
//! throughout, pod-level requests where set, then the overhead) and the host ports it binds
//! (GetHostPorts).

use std::collections::BTreeMap;

use serde_json::Value;

use super::super::quantity::Quantity;

/// Amounts by resource name: CPU in thousandths of a core, everything else in whole units, as
/// the scheduler measures them.
pub type Resources = BTreeMap<String, i128>;

/// The resources the scheduler's NodeResourcesFit weighs (its preFilterState): CPU, memory,
/// ephemeral storage, and the scalar ones (huge pages, extended resources such as
/// `nvidia.com/gpu`, prefixed native ones). Others (`pods` in a request) are not counted.
fn weighed(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage")
        || name.starts_with("hugepages-")
        || name.starts_with("attachable-volumes-")
        || name.contains('/')
}

/// A resource list (`requests`, `limits`, `overhead`) as amounts; a quantity the API would have
/// refused counts as nothing.
pub fn amounts(list: &Value) -> Resources {
    let Some(list) = list.as_object() else { return Resources::new() };
    list.iter()
        .filter_map(|(name, value)| {
            let quantity = Quantity::from_json(value)?;
            Some((name.clone(), if name == "cpu" { quantity.milli() } else { quantity.units() }))
        })
        .collect()
}

fn add(total: &mut Resources, more: &Resources) {
    for (name, amount) in more {
        let sum = total.entry(name.clone()).or_default();
        *sum = sum.saturating_add(*amount);
    }
}

fn raise(peak: &mut Resources, candidate: &Resources) {
    for (name, amount) in candidate {
        let current = peak.entry(name.clone()).or_default();
        *current = (*current).max(*amount);
    }
}

/// A container's requests as the API stores them: a limit without a request is its request too
/// (SetDefaults_Pod).
fn container_requests(container: &Value) -> Resources {
    let mut requests = amounts(&container["resources"]["limits"]);
    requests.extend(amounts(&container["resources"]["requests"]));
    requests
}

fn is_sidecar(container: &Value) -> bool {
    container["restartPolicy"] == "Always"
}

fn containers<'a>(spec: &'a Value, field: &str) -> impl Iterator<Item = &'a Value> {
    spec[field].as_array().into_iter().flatten()
}

/// Pod-level resources cover CPU, memory and huge pages.
fn pod_level(name: &str) -> bool {
    matches!(name, "cpu" | "memory") || name.starts_with("hugepages-")
}

/// The pod's requests, weighed resources only.
pub fn requests(spec: &Value) -> Resources {
    let mut total = Resources::new();
    for container in containers(spec, "containers") {
        add(&mut total, &container_requests(container));
    }
    // An init container runs beside the sidecars started before it; a sidecar runs throughout.
    let mut sidecars = Resources::new();
    let mut init_peak = Resources::new();
    for container in containers(spec, "initContainers") {
        let own = container_requests(container);
        if is_sidecar(container) {
            add(&mut total, &own);
            add(&mut sidecars, &own);
            raise(&mut init_peak, &sidecars);
        } else {
            let mut running = own;
            add(&mut running, &sidecars);
            raise(&mut init_peak, &running);
        }
    }
    raise(&mut total, &init_peak);
    // Pod-level requests replace the containers' sum; a pod-level limit without a request is
    // the request for a resource no container requests (the API's defaulting).
    let pod_requests = amounts(&spec["resources"]["requests"]);
    let pod_limits = amounts(&spec["resources"]["limits"]);
    for (name, limit) in pod_limits.into_iter().filter(|(name, _)| pod_level(name)) {
        if !pod_requests.contains_key(&name) && !total.contains_key(&name) {
            total.insert(name, limit);
        }
    }
    total.extend(pod_requests.into_iter().filter(|(name, _)| pod_level(name)));
    add(&mut total, &amounts(&spec["overhead"]));
    total.retain(|name, _| weighed(name));
    total
}

/// A host port a pod binds: `(hostIP, protocol, port)`, the IP `0.0.0.0` when unset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    ip: String,
    protocol: String,
    port: i64,
}

impl HostPort {
    /// Whether binding `self` clashes with `used`, already bound on the node: the same protocol
    /// and port, where either binds every address or both bind the same one.
    pub fn conflicts_with(&self, used: &HostPort) -> bool {
        self.protocol == used.protocol
            && self.port == used.port
            && (self.ip == "0.0.0.0" || used.ip == "0.0.0.0" || self.ip == used.ip)
    }
}

/// The host ports of the pod's sidecars and containers (a plain init container's ports are
/// free again once it has run).
pub fn host_ports(spec: &Value) -> Vec<HostPort> {
    let sidecars = containers(spec, "initContainers").filter(|c| is_sidecar(c));
    sidecars
        .chain(containers(spec, "containers"))
        .flat_map(|container| container["ports"].as_array().into_iter().flatten())
        .filter_map(|port| {
            let number = port["hostPort"].as_i64().filter(|p| *p > 0)?;
            let text = |field: &str, default: &str| {
                port[field].as_str().filter(|s| !s.is_empty()).unwrap_or(default).to_string()
            };
            Some(HostPort { ip: text("hostIP", "0.0.0.0"), protocol: text("protocol", "TCP"), port: number })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn resources(pairs: &[(&str, i128)]) -> Resources {
        pairs.iter().map(|(name, amount)| (name.to_string(), *amount)).collect()
    }

    #[test]
    fn requests_add_up_as_the_scheduler_adds_them() {
        let spec = json!({
            "initContainers": [
                {"name": "setup", "resources": {"requests": {"cpu": "2", "memory": "1Gi"}}},
                {"name": "proxy", "restartPolicy": "Always", "resources": {"requests": {"cpu": "100m"}}},
                {"name": "migrate", "resources": {"requests": {"cpu": "1"}}},
            ],
            "containers": [
                {"name": "web", "resources": {"requests": {"cpu": "250m"}, "limits": {"memory": "128Mi", "nvidia.com/gpu": 1}}},
                {"name": "log", "resources": {"requests": {"cpu": "250m", "pods": "1"}}},
            ],
            "overhead": {"cpu": "10m"},
        });
        // Containers and the sidecar: 600m; the init peak: max(2, 1 + 100m sidecar) = 2 cores.
        // Memory: 128Mi from the limit, against the 1Gi init container. Then the overhead.
        assert_eq!(requests(&spec), resources(&[("cpu", 2010), ("memory", 1 << 30), ("nvidia.com/gpu", 1)]));
        assert_eq!(requests(&json!({"containers": [{"name": "web"}]})), Resources::new());
    }

    #[test]
    fn pod_level_requests_replace_the_containers_sum() {
        let spec = json!({
            "resources": {"requests": {"cpu": "1"}, "limits": {"memory": "2Gi"}},
            "containers": [{"name": "web", "resources": {"requests": {"cpu": "3", "ephemeral-storage": "1Gi"}}}],
        });
        assert_eq!(requests(&spec), resources(&[("cpu", 1000), ("ephemeral-storage", 1 << 30), ("memory", 2 << 30)]));
    }

    #[test]
    fn host_ports_clash_on_the_same_protocol_port_and_address() {
        let spec = json!({
            "initContainers": [{"name": "setup", "ports": [{"containerPort": 1, "hostPort": 1}]}],
            "containers": [{"name": "web", "ports": [
                {"containerPort": 80},
                {"containerPort": 8080, "hostPort": 8080},
                {"containerPort": 53, "hostPort": 53, "protocol": "UDP", "hostIP": "10.0.0.1"},
            ]}],
        });
        let ports = host_ports(&spec);
        assert_eq!(ports.len(), 2, "a plain init container's port and ports without a host port do not count");
        let port = |ip: &str, protocol: &str, port: i64| HostPort { ip: ip.into(), protocol: protocol.into(), port };
        assert!(port("0.0.0.0", "TCP", 8080).conflicts_with(&ports[0]));
        assert!(port("10.0.0.2", "TCP", 8080).conflicts_with(&ports[0]), "it binds every address");
        assert!(!port("0.0.0.0", "UDP", 8080).conflicts_with(&ports[0]));
        assert!(port("0.0.0.0", "UDP", 53).conflicts_with(&ports[1]));
        assert!(!port("10.0.0.2", "UDP", 53).conflicts_with(&ports[1]));
    }
}
