//! The EndpointSlice controller: for each Service with a selector, slices named
//! `<service>-<suffix>` listing every selected pod that has an IP (terminating ones included),
//! with upstream's conditions (ready = serving and not terminating, unless
//! publishNotReadyAddresses; serving = the pod's Ready; terminating = being deleted). Pods whose
//! target ports resolve differently go to different slices, as upstream groups them by port set,
//! and a port set of more than 100 endpoints is split over slices of at most 100 as upstream's
//! reconciler splits it (see `reconcile`); a port a pod does not serve (a named targetPort it does not declare) is left out of its
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
                if service["spec"]["type"] == "ExternalName" {
                    continue;
                }
                // A pass over the same inputs onto the slices it left would write nothing: most
                // writes (a relabelled pod that stays selected, another service's change) end here.
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

/// kube-controller-manager's `--max-endpoints-per-slice` default.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// Brings the service's managed slices to `groups` as upstream's reconciler does: endpoints stay
/// in the slice that lists them (changed in place, or removed), new ones fill the slices already
/// being rewritten, then the unchanged slice they fit best, then new slices of at most
/// [`MAX_ENDPOINTS_PER_SLICE`]; slices left empty are deleted, or reused for a slice that would be
/// created. The writes go in upstream's order (creates, updates, deletes), which a guard may see
/// one at a time. Where upstream's order is a Go map's (which slice first, which new endpoint
/// first), this one is store order and pod-name order.
fn reconcile(store: &mut Store, namespace: &str, service: &Value, groups: Vec<(Value, Vec<Value>)>) {
    let mut labels = service["metadata"]["labels"].as_object().cloned().unwrap_or_default();
    labels.insert(SERVICE_NAME.into(), name(service).into());
    labels.insert(MANAGED_BY.into(), CONTROLLER.into());
    if service["spec"]["clusterIP"] == "None" {
        labels.insert("service.kubernetes.io/headless".into(), "".into());
    }
    let labels = Value::Object(labels);
    let existing: Vec<Value> = store
        .list(ENDPOINT_SLICE, Some(namespace))
        .filter(|s| label(s, SERVICE_NAME) == Some(name(service)) && label(s, MANAGED_BY) == Some(CONTROLLER))
        .filter(|s| !is_deleting(s))
        .cloned()
        .collect();
    let existing_count = existing.len();
    let mut plan = Plan::default();
    // Slices of another (an earlier, deleted) service of this name go; the others by port set.
    let mut by_ports: Vec<(Value, Vec<Value>)> = Vec::new();
    for slice in existing {
        if !owned_by(&slice, service) {
            plan.delete.push(slice);
            continue;
        }
        let ports = slice.get("ports").cloned().unwrap_or(Value::Null);
        match by_ports.iter_mut().find(|(p, _)| *p == ports) {
            Some((_, slices)) => slices.push(slice),
            None => by_ports.push((ports, vec![slice])),
        }
    }
    for (ports, endpoints) in groups {
        let slices = by_ports.iter().position(|(p, _)| *p == ports).map(|i| by_ports.remove(i).1).unwrap_or_default();
        reconcile_port_set(&mut plan, service, &labels, ports, endpoints, slices);
    }
    // Port sets no pod has any more.
    plan.delete.extend(by_ports.into_iter().flat_map(|(_, slices)| slices));
    // Upstream's placeholder: a service with no endpoints keeps one slice with no ports.
    if plan.delete.len() == existing_count && plan.create.is_empty() {
        let placeholder = new_slice(service, &labels, Value::Null, Vec::new());
        match plan.delete.as_slice() {
            [only] if is_placeholder(only, &labels) => plan.delete.clear(),
            _ => plan.create.push(placeholder),
        }
    }
    // A slice that would be deleted is reused, under its name, for one that would be created.
    while !plan.create.is_empty() {
        let Some(reused) = plan.delete.iter().position(|s| owned_by(s, service)) else { break };
        let old = plan.delete.remove(reused);
        let mut slice = plan.create.pop().expect("checked non-empty");
        slice["metadata"] = old["metadata"].clone();
        slice["metadata"]["labels"] = labels.clone();
        plan.update.push(slice);
    }
    // A service being deleted (its finalizers hold it) keeps its slices up to date but gets no
    // new one, which the garbage collector would race to delete: upstream's reconciler.
    if !is_deleting(service) {
        for slice in plan.create {
            let _ = store.create(ENDPOINT_SLICE, namespace, slice);
        }
    }
    for slice in plan.update {
        write(store, ENDPOINT_SLICE, namespace, slice);
    }
    for slice in plan.delete {
        store.remove(ENDPOINT_SLICE, namespace, name(&slice));
    }
}

/// The slices one pass creates, updates (whole, as stored plus the changes) and deletes.
#[derive(Default)]
struct Plan {
    create: Vec<Value>,
    update: Vec<Value>,
    delete: Vec<Value>,
}

/// Upstream's reconcileByPortMapping for one port set: its existing slices (store order) against
/// the endpoints its pods should have (pod-name order).
fn reconcile_port_set(
    plan: &mut Plan,
    service: &Value,
    labels: &Value,
    ports: Value,
    desired: Vec<Value>,
    existing: Vec<Value>,
) {
    let mut desired: Vec<Option<Value>> = desired.into_iter().map(Some).collect();
    let mut by_key: HashMap<EndpointKey, usize> =
        desired.iter().enumerate().map(|(i, e)| (endpoint_key(e.as_ref().expect("just made")), i)).collect();
    let mut updates: Vec<Value> = Vec::new();
    let mut unchanged: Vec<Value> = Vec::new();
    for mut slice in existing {
        let listed = slice["endpoints"].take();
        let listed = listed.as_array().map_or(&[][..], Vec::as_slice);
        let mut kept = Vec::with_capacity(listed.len());
        let mut changed = false;
        for endpoint in listed {
            // An endpoint listed twice (in two slices) stays only where it is found first.
            let Some(index) = by_key.remove(&endpoint_key(endpoint)) else { continue };
            let wanted = desired[index].take().expect("each index is taken once");
            changed |= wanted != *endpoint;
            kept.push(wanted);
        }
        let rewrite = changed || kept.len() != listed.len();
        if rewrite && kept.is_empty() {
            plan.delete.push(slice);
            continue;
        }
        // Unchanged, `kept` is what the slice listed.
        slice["endpoints"] = null_if_empty(kept);
        if rewrite || slice["metadata"]["labels"] != *labels {
            slice["metadata"]["labels"] = labels.clone();
            updates.push(slice);
        } else {
            unchanged.push(slice);
        }
    }
    let mut remaining = desired.into_iter().flatten();
    // The slices being rewritten anyway take new endpoints first, the fullest first.
    updates.sort_by_key(|s| std::cmp::Reverse(endpoint_count(s)));
    for slice in &mut updates {
        let room = MAX_ENDPOINTS_PER_SLICE.saturating_sub(endpoint_count(slice));
        append(slice, remaining.by_ref().take(room).collect());
    }
    let mut remaining: Vec<Value> = remaining.collect();
    while !remaining.is_empty() {
        // Fewer than a slice's worth left: the unchanged slice they fill most closely.
        let fill = (remaining.len() < MAX_ENDPOINTS_PER_SLICE)
            .then(|| best_fit(&unchanged, remaining.len()))
            .flatten()
            .map(|i| unchanged.remove(i));
        let take = remaining.len().min(MAX_ENDPOINTS_PER_SLICE - fill.as_ref().map_or(0, endpoint_count));
        let added: Vec<Value> = remaining.drain(..take).collect();
        match fill {
            Some(mut slice) => {
                append(&mut slice, added);
                updates.push(slice);
            }
            None => plan.create.push(new_slice(service, labels, ports.clone(), added)),
        }
    }
    plan.update.extend(updates);
}

/// Adds endpoints to a slice, whose list may be stored as null (empty).
fn append(slice: &mut Value, added: Vec<Value>) {
    if added.is_empty() {
        return;
    }
    match &mut slice["endpoints"] {
        Value::Array(endpoints) => endpoints.extend(added),
        other => *other = Value::Array(added),
    }
}

/// What upstream tells endpoints apart by: addresses, hostname and the pod named.
type EndpointKey = (Value, Value, Value, Value);

fn endpoint_key(endpoint: &Value) -> EndpointKey {
    (
        endpoint["addresses"].clone(),
        endpoint["hostname"].clone(),
        endpoint["targetRef"]["namespace"].clone(),
        endpoint["targetRef"]["name"].clone(),
    )
}

fn endpoint_count(slice: &Value) -> usize {
    slice["endpoints"].as_array().map_or(0, Vec::len)
}

/// Upstream's getSliceToFill: the first slice that `count` more endpoints fill most closely.
fn best_fit(slices: &[Value], count: usize) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (index, slice) in slices.iter().enumerate() {
        let Some(left) = MAX_ENDPOINTS_PER_SLICE.checked_sub(count + endpoint_count(slice)) else { continue };
        if best.is_none_or(|(_, closest)| left < closest) {
            best = Some((index, left));
            if left == 0 {
                break;
            }
        }
    }
    best.map(|(index, _)| index)
}

fn new_slice(service: &Value, labels: &Value, ports: Value, endpoints: Vec<Value>) -> Value {
    json!({
        "metadata": {
            "generateName": format!("{}-", name(service)),
            "labels": labels,
            "ownerReferences": [controller_ref(service, "v1", "Service")],
        },
        "addressType": "IPv4",
        "endpoints": null_if_empty(endpoints),
        "ports": ports,
    })
}

/// Whether a slice is already the placeholder a service with no endpoints would get.
fn is_placeholder(slice: &Value, labels: &Value) -> bool {
    endpoint_count(slice) == 0
        && slice["ports"].as_array().is_none_or(Vec::is_empty)
        && slice["metadata"]["labels"] == *labels
}

/// Upstream's ownedBy: the slice names the service (this one, by uid) among its owners.
fn owned_by(slice: &Value, service: &Value) -> bool {
    slice["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|refs| refs.iter().any(|r| r["uid"] == service["metadata"]["uid"]))
}
