//! The Service registry's node port allocator: a NodePort or LoadBalancer Service holds a port
//! from 30000-32767 for each of its ports, one the user names or one the API picks, and no two
//! Services in the cluster hold the same one. It refuses in the registry's words (`provided port
//! is already allocated`).

use std::collections::BTreeSet;

use serde_json::Value;

use super::error::{ApiError, invalid};
use super::resources::{self, Resource};
use super::store::Store;

/// The API server's default `--service-node-port-range`.
const RANGE: std::ops::RangeInclusive<i64> = 30000..=32767;

/// Upstream's needsNodePort: a NodePort Service, or a LoadBalancer one that does not opt out.
fn needs_node_ports(service: &Value) -> bool {
    match service["spec"]["type"].as_str() {
        Some("NodePort") => true,
        Some("LoadBalancer") => service["spec"]["allocateLoadBalancerNodePorts"] != false,
        _ => false,
    }
}

fn node_port(port: &Value) -> i64 {
    port["nodePort"].as_i64().unwrap_or(0)
}

/// Gives `service` (about to be stored in `namespace`, replacing `current` if there is one) its
/// node ports: those it names, if free and in range; for each other port, the one it held before
/// (same port and protocol) or a free one. Runs before validation, as the registry's allocation
/// does, so its refusal comes first.
pub fn allocate(
    store: &Store,
    resource: Resource,
    namespace: &str,
    current: Option<&Value>,
    service: &mut Value,
) -> Result<(), ApiError> {
    if resource != resources::SERVICE || !needs_node_ports(service) {
        return Ok(());
    }
    let name = service["metadata"]["name"].as_str().unwrap_or_default().to_string();
    let taken: BTreeSet<i64> = store
        .list(resources::SERVICE, None)
        .filter(|other| !(other["metadata"]["namespace"] == namespace && other["metadata"]["name"] == name.as_str()))
        .filter(|other| needs_node_ports(other))
        .flat_map(|other| other["spec"]["ports"].as_array().into_iter().flatten().map(node_port))
        .filter(|port| *port != 0)
        .collect();
    let key = |port: &Value| (port["port"].as_i64(), port["protocol"].as_str().unwrap_or("TCP").to_string());
    let held: Vec<&Value> = current
        .filter(|current| needs_node_ports(current))
        .and_then(|current| current["spec"]["ports"].as_array())
        .map(|ports| ports.iter().collect())
        .unwrap_or_default();
    let Some(ports) = service.pointer_mut("/spec/ports").and_then(Value::as_array_mut) else { return Ok(()) };
    let mut in_use = taken;
    // Upstream's initNodePorts, in one pass: a port number served over two protocols shares
    // one node port; any other node port, named or not, must be free.
    let mut by_port_number: Vec<(Option<i64>, i64)> = Vec::new();
    for (index, port) in ports.iter_mut().enumerate() {
        let wanted = node_port(port);
        let shared = by_port_number.iter().find(|(number, _)| *number == port["port"].as_i64()).map(|p| p.1);
        let given = match (shared, wanted) {
            (Some(shared), 0) => shared,
            (Some(shared), wanted) if wanted == shared => continue,
            (_, 0) => {
                let kept = held.iter().find(|old| key(old) == key(port)).map(|old| node_port(old));
                // A real API server picks at random; here the highest free port, far from the
                // low end where scenarios name theirs.
                let Some(picked) = kept
                    .filter(|p| *p != 0 && !in_use.contains(p))
                    .or_else(|| RANGE.rev().find(|p| !in_use.contains(p)))
                else {
                    return Err(ApiError::internal("failed to allocate a nodePort: range is full"));
                };
                picked
            }
            (_, wanted) => {
                let problem = if !RANGE.contains(&wanted) {
                    Some(format!(
                        "provided port is not in the valid range. The range of valid ports is {}-{}",
                        RANGE.start(),
                        RANGE.end()
                    ))
                } else if in_use.contains(&wanted) {
                    Some("provided port is already allocated".to_string())
                } else {
                    None
                };
                if let Some(problem) = problem {
                    let cause = format!("spec.ports[{index}].nodePort: Invalid value: {wanted}: {problem}");
                    return Err(invalid(resources::SERVICE, &name, &[cause]));
                }
                wanted
            }
        };
        in_use.insert(given);
        if shared.is_none() {
            by_port_number.push((port["port"].as_i64(), given));
        }
        port["nodePort"] = given.into();
    }
    Ok(())
}

/// Upstream's dropTypeDependentFields for node ports: a Service switched to a type without them
/// (ClusterIP, ExternalName) loses those it held, unless the change also names a new one (which
/// validation then refuses). Runs on updates, before validation.
pub fn drop_unneeded(resource: Resource, current: &Value, service: &mut Value) {
    if resource != resources::SERVICE || !needs_node_ports(current) || needs_node_ports(service) {
        return;
    }
    let held: BTreeSet<i64> = current["spec"]["ports"].as_array().into_iter().flatten().map(node_port).collect();
    let Some(ports) = service.pointer_mut("/spec/ports").and_then(Value::as_array_mut) else { return };
    if ports.iter().map(node_port).all(|port| port == 0 || held.contains(&port)) {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            port.remove("nodePort");
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::cluster::sim::clock::Clock;

    fn service(name: &str, kind: &str, ports: Value) -> Value {
        json!({"metadata": {"name": name, "namespace": "ns"}, "spec": {"type": kind, "ports": ports}})
    }

    fn stored(store: &mut Store, mut object: Value) {
        allocate(store, resources::SERVICE, "ns", None, &mut object).unwrap();
        store.create(resources::SERVICE, "ns", object).unwrap();
    }

    #[test]
    fn a_node_port_is_held_by_one_service_and_given_where_none_is_named() {
        let mut store = Store::new(Clock::default());
        store.create(resources::NAMESPACE, "", json!({"metadata": {"name": "ns"}})).unwrap();
        stored(&mut store, service("a", "NodePort", json!([{"port": 80, "nodePort": 31080}])));
        let refusal = |store: &Store, ports: Value| {
            allocate(store, resources::SERVICE, "ns", None, &mut service("b", "NodePort", ports)).unwrap_err().message
        };
        // The testbed's API server's words (v1.37).
        assert_eq!(
            refusal(&store, json!([{"port": 80, "nodePort": 31080}])),
            "Service \"b\" is invalid: spec.ports[0].nodePort: Invalid value: 31080: provided port is already allocated"
        );
        assert_eq!(
            refusal(&store, json!([{"port": 81}, {"port": 80, "nodePort": 80}])),
            "Service \"b\" is invalid: spec.ports[1].nodePort: Invalid value: 80: provided port is not in the valid \
             range. The range of valid ports is 30000-32767"
        );
        assert_eq!(
            refusal(&store, json!([{"port": 80, "nodePort": 31090}, {"port": 81, "nodePort": 31090}])),
            "Service \"b\" is invalid: spec.ports[1].nodePort: Invalid value: 31090: provided port is already allocated",
            "within one service too"
        );
        let mut lb = service("b", "LoadBalancer", json!([{"port": 80}, {"port": 53, "protocol": "UDP"}, {"port": 53}]));
        allocate(&store, resources::SERVICE, "ns", None, &mut lb).unwrap();
        let given: Vec<i64> = lb["spec"]["ports"].as_array().unwrap().iter().map(node_port).collect();
        assert_eq!(given, [32767, 32766, 32766], "one port number, one node port");
        // The service itself may keep what it holds; a port it no longer names keeps its own.
        let current = store.get(resources::SERVICE, "ns", "a").unwrap().clone();
        let mut changed = service("a", "NodePort", json!([{"port": 80}, {"port": 443, "nodePort": 31443}]));
        allocate(&store, resources::SERVICE, "ns", Some(&current), &mut changed).unwrap();
        assert_eq!(changed["spec"]["ports"][0]["nodePort"], 31080);
        // Switched to ClusterIP, it gives up what it held, unless it names a new one.
        let mut switched = current.clone();
        switched["spec"]["type"] = json!("ClusterIP");
        drop_unneeded(resources::SERVICE, &current, &mut switched);
        assert_eq!(switched["spec"]["ports"], json!([{"port": 80}]));
        let mut renamed = current.clone();
        renamed["spec"]["type"] = json!("ClusterIP");
        renamed["spec"]["ports"][0]["nodePort"] = json!(31081);
        drop_unneeded(resources::SERVICE, &current, &mut renamed);
        assert_eq!(renamed["spec"]["ports"][0]["nodePort"], 31081, "left for validation to refuse");
        let mut opted_out = service("d", "LoadBalancer", json!([{"port": 80}]));
        opted_out["spec"]["allocateLoadBalancerNodePorts"] = json!(false);
        allocate(&store, resources::SERVICE, "ns", None, &mut opted_out).unwrap();
        assert!(opted_out["spec"]["ports"][0].get("nodePort").is_none(), "a load balancer may do without");
        let mut cluster_ip = service("c", "ClusterIP", json!([{"port": 80}]));
        allocate(&store, resources::SERVICE, "ns", None, &mut cluster_ip).unwrap();
        assert!(cluster_ip["spec"]["ports"][0].get("nodePort").is_none());
    }
}
