//! The EndpointSlice controller: for each Service with a selector, slices named
//! `<service>-<suffix>` listing every selected pod that has an IP (terminating ones included),
//! with upstream's conditions (ready = serving and not terminating, unless
//! publishNotReadyAddresses; serving = the pod's Ready; terminating = being deleted). Pods whose
//! target ports resolve differently go to different slices, as upstream groups them by port set;
//! a port a pod does not serve (a named targetPort it does not declare) is left out of its
//! endpoint, and the pod still listed.
//!
//! As upstream, the controller leaves a Service without a selector alone, slices included: a
//! selector removed leaves the slices as they were (kubernetes/kubernetes#118376); a Service
//! deleted takes its slices with it through the garbage collector.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::super::resources::{ENDPOINT_SLICE, NODE, POD, SERVICE};
use super::super::store::Store;
use super::{controller_ref, is_deleting, is_ready, is_terminal, label, map_selects, name, uid, write};

const SERVICE_NAME: &str = "kubernetes.io/service-name";
const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
const CONTROLLER: &str = "endpointslice-controller.k8s.io";
const ZONE: &str = "topology.kubernetes.io/zone";

/// The controller, with what each service's slices were last computed from.
#[derive(Default)]
pub struct EndpointSlices {
    /// Namespace -> service name -> the inputs of its last pass and its slices as that pass
    /// left them.
    last: HashMap<String, HashMap<String, Memo>>,
}

#[derive(PartialEq, Eq)]
struct Memo {
    inputs: Vec<u8>,
    slices: Vec<u8>,
}

impl EndpointSlices {
    pub fn run(&mut self, store: &mut Store, namespaces: &[String]) {
        for namespace in namespaces {
            let mut last = self.last.remove(namespace).unwrap_or_default();
            let mut now = HashMap::new();
            for service in store.list_owned(SERVICE, namespace) {
                let Some(selector) = service["spec"]["selector"].as_object().filter(|s| !s.is_empty()) else {
                    continue;
                };
                if is_deleting(&service) || service["spec"]["type"] == "ExternalName" {
                    continue;
                }
                // A pass over the same inputs onto the slices it left would write nothing: most
                // writes (a label no selector reads, another service's change) end here.
                let inputs = inputs(store, namespace, &service, selector);
                let mut memo = Memo { inputs, slices: slices(store, namespace, &service) };
                if last.remove(name(&service)).is_none_or(|last| last != memo) {
                    let groups = endpoints_by_ports(store, namespace, &service, selector);
                    reconcile(store, namespace, &service, groups);
                    memo.slices = slices(store, namespace, &service);
                }
                now.insert(name(&service).to_string(), memo);
            }
            if !now.is_empty() {
                self.last.insert(namespace.clone(), now);
            }
        }
    }
}

/// Everything a service's endpoints are computed from, written out so that two passes can be
/// compared exactly: the service as stored, the nodes' zones, and for each selected pod with an
/// IP, what its endpoint shows (pods not selected or without an IP are not listed at all).
fn inputs(store: &Store, namespace: &str, service: &Value, selector: &Map<String, Value>) -> Vec<u8> {
    let mut out = Vec::new();
    put(&mut out, service["metadata"]["resourceVersion"].as_str().unwrap_or_default());
    for node in store.list(NODE, None) {
        put(&mut out, name(node));
        put(&mut out, label(node, ZONE).unwrap_or_default());
    }
    let service_ports: Vec<&Value> = service["spec"]["ports"].as_array().into_iter().flatten().collect();
    for (pod, facts) in store.list_with_facts(POD, namespace) {
        let Some(ip) = &facts.pod_ip else { continue };
        if facts.terminal || !map_selects(selector, &facts.labels) {
            continue;
        }
        for text in [&facts.name, &facts.uid, ip, &facts.node_name, &facts.hostname, &facts.subdomain] {
            put(&mut out, text);
        }
        out.extend([u8::from(facts.ready), u8::from(facts.deleting)]);
        for service_port in &service_ports {
            out.extend(pod_port(service_port, pod).map_or([0xff; 8], i64::to_le_bytes));
        }
    }
    out
}

/// The service's managed slices as stored (name and resourceVersion): any change to one, by
/// this controller or anyone else, shows here.
fn slices(store: &Store, namespace: &str, service: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    for slice in store.list(ENDPOINT_SLICE, Some(namespace)).filter(|s| label(s, SERVICE_NAME) == Some(name(service))) {
        put(&mut out, name(slice));
        put(&mut out, slice["metadata"]["resourceVersion"].as_str().unwrap_or_default());
    }
    out
}

/// Appends one length-prefixed text, so that no two lists of texts write the same bytes.
fn put(out: &mut Vec<u8>, text: &str) {
    out.extend((text.len() as u64).to_le_bytes());
    out.extend(text.as_bytes());
}

/// The service port a pod serves on (upstream's FindPort): a numeric targetPort as is, a named
/// one as the pod's container port of that name (None when the pod has none).
fn pod_port(service_port: &Value, pod: &Value) -> Option<i64> {
    match &service_port["targetPort"] {
        Value::Number(n) => n.as_i64(),
        Value::String(port_name) => {
            let protocol = service_port["protocol"].as_str().unwrap_or("TCP");
            pod["spec"]["containers"]
                .as_array()?
                .iter()
                .flat_map(|c| c["ports"].as_array().into_iter().flatten())
                .find_map(|p| {
                    (p["name"] == port_name.as_str() && p["protocol"].as_str().unwrap_or("TCP") == protocol)
                        .then(|| p["containerPort"].as_i64())
                        .flatten()
                })
        }
        _ => service_port["port"].as_i64(),
    }
}

/// The selected pods' endpoints, grouped by their resolved port list, in pod-name order.
fn endpoints_by_ports(
    store: &Store,
    namespace: &str,
    service: &Value,
    selector: &Map<String, Value>,
) -> Vec<(Value, Vec<Value>)> {
    let service_ports: Vec<&Value> = service["spec"]["ports"].as_array().into_iter().flatten().collect();
    let publish_not_ready = service["spec"]["publishNotReadyAddresses"].as_bool() == Some(true);
    let mut groups: Vec<(Value, Vec<Value>)> = Vec::new();
    for pod in store.list(POD, Some(namespace)) {
        let Some(ip) = pod["status"]["podIP"].as_str().filter(|ip| !ip.is_empty()) else { continue };
        if is_terminal(pod) || !map_selects(selector, &pod["metadata"]["labels"]) {
            continue;
        }
        let mut ports = Vec::new();
        for service_port in &service_ports {
            // As upstream's getEndpointPorts: a port the pod does not serve is left out of its
            // endpoint, not the pod out of the service.
            let Some(port) = pod_port(service_port, pod) else { continue };
            let mut port = json!({
                "name": service_port["name"].as_str().unwrap_or_default(),
                "protocol": service_port["protocol"].as_str().unwrap_or("TCP"),
                "port": port,
            });
            if let Some(app) = service_port.get("appProtocol").filter(|a| !a.is_null()) {
                port["appProtocol"] = app.clone();
            }
            ports.push(port);
        }
        let serving = is_ready(pod);
        let terminating = is_deleting(pod);
        let mut endpoint = json!({
            "addresses": [ip],
            "conditions": {
                "ready": publish_not_ready || (serving && !terminating),
                "serving": serving,
                "terminating": terminating,
            },
            "targetRef": {"kind": "Pod", "namespace": namespace, "name": name(pod), "uid": uid(pod)},
        });
        if let Some(node) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
            endpoint["nodeName"] = node.into();
            if let Some(zone) = store.get(NODE, "", node).and_then(|n| label(n, ZONE)) {
                endpoint["zone"] = zone.into();
            }
        }
        if let Some(hostname) = pod["spec"]["hostname"].as_str().filter(|h| !h.is_empty())
            && pod["spec"]["subdomain"] == name(service)
        {
            endpoint["hostname"] = hostname.into();
        }
        let ports = null_if_empty(ports);
        match groups.iter_mut().find(|(p, _)| *p == ports) {
            Some((_, endpoints)) => endpoints.push(endpoint),
            None => groups.push((ports, vec![endpoint])),
        }
    }
    // Store order is already by pod name within the namespace.
    groups
}

/// A list as the API server writes an empty one in an EndpointSlice (`ports` and `endpoints`
/// are not omitted when empty): `null`.
fn null_if_empty(items: Vec<Value>) -> Value {
    if items.is_empty() { Value::Null } else { Value::Array(items) }
}

/// Brings the service's managed slices to `groups` (one slice per port set; one empty slice when
/// there is nothing to list), reusing the existing slices in store order.
fn reconcile(store: &mut Store, namespace: &str, service: &Value, mut groups: Vec<(Value, Vec<Value>)>) {
    if groups.is_empty() {
        // Upstream's placeholder: no ports, no endpoints.
        groups.push((Value::Null, Vec::new()));
    }
    let mut labels = service["metadata"]["labels"].as_object().cloned().unwrap_or_default();
    labels.insert(SERVICE_NAME.into(), name(service).into());
    labels.insert(MANAGED_BY.into(), CONTROLLER.into());
    if service["spec"]["clusterIP"] == "None" {
        labels.insert("service.kubernetes.io/headless".into(), "".into());
    }
    let mut existing: Vec<Value> = store
        .list(ENDPOINT_SLICE, Some(namespace))
        .filter(|s| label(s, SERVICE_NAME) == Some(name(service)) && label(s, MANAGED_BY) == Some(CONTROLLER))
        .filter(|s| !is_deleting(s))
        .cloned()
        .collect();
    // Slices that already carry a group's ports keep it.
    let mut assigned: Vec<(Option<Value>, Value, Vec<Value>)> = Vec::new();
    for (ports, endpoints) in groups {
        let slot = existing.iter().position(|s| s.get("ports").cloned().unwrap_or(Value::Null) == ports);
        assigned.push((slot.map(|i| existing.remove(i)), ports, endpoints));
    }
    for (slice, ports, endpoints) in assigned {
        let slice = slice.or_else(|| (!existing.is_empty()).then(|| existing.remove(0)));
        let mut desired = match &slice {
            Some(slice) => slice.clone(),
            None => json!({"metadata": {"generateName": format!("{}-", name(service))}}),
        };
        desired["metadata"]["labels"] = Value::Object(labels.clone());
        desired["metadata"]["ownerReferences"] = json!([controller_ref(service, "v1", "Service")]);
        desired["addressType"] = "IPv4".into();
        desired["endpoints"] = null_if_empty(endpoints);
        desired["ports"] = ports;
        match slice {
            Some(slice) if slice == desired => {}
            Some(_) => {
                write(store, ENDPOINT_SLICE, namespace, desired);
            }
            None => {
                let _ = store.create(ENDPOINT_SLICE, namespace, desired);
            }
        }
    }
    for surplus in existing {
        store.remove(ENDPOINT_SLICE, namespace, name(&surplus));
    }
}
