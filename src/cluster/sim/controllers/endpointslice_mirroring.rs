//! The EndpointSlice mirroring controller: a Service without a selector (and not ExternalName)
//! routes to the addresses of the Endpoints object of its name, written by hand (often for a
//! backend outside the cluster), through EndpointSlices this controller keeps from it.
//!
//! As upstream's: the Endpoints' subsets are repacked (addresses grouped by the ports they
//! share; an address listed both ready and not ready is not ready), and each port set and
//! address family gets one slice `<name>-<suffix>` of at most 1,000 endpoints, labelled with the
//! Endpoints' labels, the Service's name and this controller's, carrying its annotations (but
//! the last-applied configuration and the change trigger time), and owned by the Endpoints.
//! Endpoints say only whether an address is ready, so a slice's conditions hold `ready` alone;
//! an address that is not an IP is not mirrored. A Service given a selector, an Endpoints object
//! gone or labelled `endpointslice.kubernetes.io/skip-mirror: "true"` loses its mirrored slices;
//! a Service deleted leaves them, and the garbage collector deletes them with their Endpoints.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Map, Value, json};

use super::super::resources::{ENDPOINT_SLICE, ENDPOINTS, SERVICE};
use super::super::store::Store;
use super::{controller_ref, is_deleting, label, name, write};

const SERVICE_NAME: &str = "kubernetes.io/service-name";
const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
const CONTROLLER: &str = "endpointslicemirroring-controller.k8s.io";
const SKIP_MIRROR: &str = "endpointslice.kubernetes.io/skip-mirror";
/// The annotation a leader-election record held in an Endpoints object carries: never mirrored.
const LEADER: &str = "control-plane.alpha.kubernetes.io/leader";
/// Annotations of the Endpoints that its slices do not carry.
const NOT_COPIED: [&str; 2] =
    ["endpoints.kubernetes.io/last-change-trigger-time", "kubectl.kubernetes.io/last-applied-configuration"];
/// kube-controller-manager's `--mirroring-max-endpoints-per-subset` default.
const MAX_ENDPOINTS_PER_SUBSET: usize = 1000;

pub fn run(store: &mut Store, namespaces: &[String]) {
    for namespace in namespaces {
        for service in store.list_owned(SERVICE, namespace) {
            sync(store, namespace, &service);
        }
    }
}

/// Upstream's syncEndpoints for the Service's name.
fn sync(store: &mut Store, namespace: &str, service: &Value) {
    if service["spec"]["type"] == "ExternalName" {
        return;
    }
    let service_name = name(service);
    // An empty selector is stored as none (Go drops an empty map): it selects nothing, and the
    // Service is mirrored.
    let has_selector = service["spec"]["selector"].as_object().is_some_and(|s| !s.is_empty());
    let endpoints = store.get(ENDPOINTS, namespace, service_name).filter(|e| should_mirror(e)).cloned();
    let existing: Vec<Value> = store
        .list(ENDPOINT_SLICE, Some(namespace))
        .filter(|s| label(s, SERVICE_NAME) == Some(service_name) && label(s, MANAGED_BY) == Some(CONTROLLER))
        .filter(|s| !is_deleting(s))
        .cloned()
        .collect();
    let Some(endpoints) = endpoints.filter(|_| !has_selector) else {
        for slice in existing {
            store.remove(ENDPOINT_SLICE, namespace, name(&slice));
        }
        return;
    };
    reconcile(store, namespace, &endpoints, existing);
}

fn should_mirror(endpoints: &Value) -> bool {
    label(endpoints, SKIP_MIRROR) != Some("true") && endpoints["metadata"]["annotations"].get(LEADER).is_none()
}

/// One slice per port set and address type, as the Endpoints ask now.
struct Desired {
    ports: Value,
    address_type: &'static str,
    endpoints: Vec<Value>,
}

/// Upstream's reconcile: the slice of each port set and address type is the first existing one
/// of that key, updated when it differs (the others of the key are deleted); a key without a
/// slice gets a new one, which takes the name of a slice that would be deleted when there is
/// one (creates, then updates, then deletes).
fn reconcile(store: &mut Store, namespace: &str, endpoints: &Value, existing: Vec<Value>) {
    let mut by_key: Vec<((Value, String), Vec<Value>)> = Vec::new();
    for slice in existing {
        let key = (port_set(&slice["ports"]), slice["addressType"].as_str().unwrap_or_default().to_string());
        match by_key.iter_mut().find(|(k, _)| *k == key) {
            Some((_, slices)) => slices.push(slice),
            None => by_key.push((key, vec![slice])),
        }
    }
    let (mut create, mut update, mut delete) = (Vec::new(), Vec::new(), Vec::new());
    for desired in desired(endpoints) {
        let key = (port_set(&desired.ports), desired.address_type.to_string());
        let mut slices = by_key.iter().position(|(k, _)| *k == key).map(|i| by_key.remove(i).1).unwrap_or_default();
        let first = (!slices.is_empty()).then(|| slices.remove(0));
        delete.extend(slices);
        let mut slice = new_slice(endpoints, desired);
        match first {
            Some(first) => {
                let mut written = first.clone();
                take_content(&mut slice, &mut written);
                if written != first {
                    update.push(written);
                }
            }
            None => create.push(slice),
        }
    }
    delete.extend(by_key.into_iter().flat_map(|(_, slices)| slices));
    // Upstream's finalize: a slice that would be deleted is recycled for one that would be made.
    while !create.is_empty() && !delete.is_empty() {
        let mut recycled = delete.remove(0);
        take_content(&mut create.remove(0), &mut recycled);
        update.push(recycled);
    }
    for slice in create {
        let _ = store.create(ENDPOINT_SLICE, namespace, slice);
    }
    for slice in update {
        write(store, ENDPOINT_SLICE, namespace, slice);
    }
    for slice in delete {
        store.remove(ENDPOINT_SLICE, namespace, name(&slice));
    }
}

/// Moves what the controller writes of a slice (its content, labels, annotations and owner)
/// from a new slice onto a stored one, which keeps its name and the rest of its metadata.
fn take_content(new: &mut Value, stored: &mut Value) {
    for field in ["addressType", "endpoints", "ports"] {
        stored[field] = new[field].take();
    }
    let Some(metadata) = stored["metadata"].as_object_mut() else { return };
    for field in ["labels", "annotations", "ownerReferences"] {
        match new["metadata"][field].take() {
            Value::Null => metadata.remove(field),
            value => metadata.insert(field.into(), value),
        };
    }
}

/// A port list compared as a set: the same ports in another order are the same port set.
fn port_set(ports: &Value) -> Value {
    let mut ports: Vec<Value> = ports.as_array().cloned().unwrap_or_default();
    ports.sort_by_key(|p| p.to_string());
    Value::Array(ports)
}

/// The Endpoints' subsets repacked (upstream's RepackSubsets), then each subset's addresses as
/// endpoints grouped by address type: ready ones first, at most 1,000 of a subset, addresses
/// that are not IPs left out.
fn desired(endpoints: &Value) -> Vec<Desired> {
    let mut out: Vec<Desired> = Vec::new();
    for (ports, addresses) in repack(endpoints) {
        let mut added = 0;
        for (address, ready) in
            addresses.iter().filter(|(_, ready)| *ready).chain(addresses.iter().filter(|(_, r)| !*r))
        {
            if added >= MAX_ENDPOINTS_PER_SUBSET {
                break;
            }
            let Some(address_type) = address_type(address["ip"].as_str().unwrap_or_default()) else { continue };
            added += 1;
            let endpoint = endpoint(address, *ready);
            match out.iter_mut().find(|d| d.ports == ports && d.address_type == address_type) {
                Some(desired) => desired.endpoints.push(endpoint),
                None => out.push(Desired { ports: ports.clone(), address_type, endpoints: vec![endpoint] }),
            }
        }
    }
    out
}

fn address_type(ip: &str) -> Option<&'static str> {
    match ip.parse::<IpAddr>().ok()? {
        IpAddr::V4(_) => Some("IPv4"),
        IpAddr::V6(_) => Some("IPv6"),
    }
}

/// Upstream's addressToEndpoint.
fn endpoint(address: &Value, ready: bool) -> Value {
    let mut endpoint = json!({"addresses": [address["ip"]], "conditions": {"ready": ready}});
    if !address["targetRef"].is_null() {
        endpoint["targetRef"] = address["targetRef"].clone();
    }
    if let Some(node) = address["nodeName"].as_str() {
        endpoint["nodeName"] = node.into();
    }
    if let Some(hostname) = address["hostname"].as_str().filter(|h| !h.is_empty()) {
        endpoint["hostname"] = hostname.into();
    }
    endpoint
}

/// Addresses as an Endpoints subset lists them, each with whether it is ready.
type Addresses = Vec<(Value, bool)>;

/// Upstream's RepackSubsets: each address (told apart by IP and the uid it names) with the
/// ports it serves, not ready on a port if any subset lists it not ready there; then the ports
/// whose addresses are the same grouped into one subset. Subsets come out sorted by their ports,
/// addresses by IP.
fn repack(endpoints: &Value) -> Vec<(Value, Addresses)> {
    // Address (IP, uid of the pod it names) -> the address as written, and whether it is ready.
    type ByAddress = BTreeMap<(String, String), (Value, bool)>;
    let mut by_port: Vec<(Value, ByAddress)> = Vec::new();
    for subset in endpoints["subsets"].as_array().into_iter().flatten() {
        let ports: Vec<Value> = subset["ports"].as_array().cloned().unwrap_or_default();
        // A subset without ports keeps its addresses, under no port.
        let ports = if ports.is_empty() { vec![Value::Null] } else { ports };
        for port in ports {
            let index = match by_port.iter().position(|(p, _)| *p == port) {
                Some(index) => index,
                None => {
                    by_port.push((port, BTreeMap::new()));
                    by_port.len() - 1
                }
            };
            let addresses = &mut by_port[index].1;
            for (field, ready) in [("addresses", true), ("notReadyAddresses", false)] {
                for address in subset[field].as_array().into_iter().flatten() {
                    let key = (
                        address["ip"].as_str().unwrap_or_default().to_string(),
                        address["targetRef"]["uid"].as_str().unwrap_or_default().to_string(),
                    );
                    let entry = addresses.entry(key).or_insert_with(|| (address.clone(), ready));
                    entry.1 &= ready;
                }
            }
        }
    }
    let mut subsets: Vec<(Vec<Value>, Addresses)> = Vec::new();
    for (port, addresses) in by_port {
        let addresses: Addresses = addresses.into_values().collect();
        match subsets.iter_mut().find(|(_, a)| *a == addresses) {
            Some((ports, _)) => ports.extend((!port.is_null()).then_some(port)),
            None => subsets.push(((!port.is_null()).then_some(port).into_iter().collect(), addresses)),
        }
    }
    let mut repacked: Vec<(Value, Addresses)> =
        subsets.into_iter().map(|(ports, addresses)| (slice_ports(ports), addresses)).collect();
    repacked.sort_by_key(|(ports, _)| port_set(ports).to_string());
    repacked
}

/// An Endpoints port as a slice lists it (the name written even when empty).
fn slice_ports(ports: Vec<Value>) -> Value {
    if ports.is_empty() {
        return Value::Null;
    }
    let ports = ports.into_iter().map(|port| {
        let mut written = json!({
            "name": port["name"].as_str().unwrap_or_default(),
            "port": port["port"],
            "protocol": port["protocol"].as_str().unwrap_or("TCP"),
        });
        if let Some(app) = port.get("appProtocol").filter(|a| !a.is_null()) {
            written["appProtocol"] = app.clone();
        }
        written
    });
    Value::Array(ports.collect())
}

/// Upstream's newEndpointSlice, named by the API from `<endpoints>-`.
fn new_slice(endpoints: &Value, desired: Desired) -> Value {
    let mut labels = endpoints["metadata"]["labels"].as_object().cloned().unwrap_or_default();
    labels.insert(SERVICE_NAME.into(), name(endpoints).into());
    labels.insert(MANAGED_BY.into(), CONTROLLER.into());
    let annotations: Map<String, Value> = endpoints["metadata"]["annotations"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(key, _)| !NOT_COPIED.contains(&key.as_str()))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let mut metadata = json!({
        "generateName": format!("{}-", name(endpoints)),
        "labels": labels,
        "ownerReferences": [controller_ref(endpoints, "v1", "Endpoints")],
    });
    if !annotations.is_empty() {
        metadata["annotations"] = Value::Object(annotations);
    }
    json!({
        "metadata": metadata,
        "addressType": desired.address_type,
        "endpoints": if desired.endpoints.is_empty() { Value::Null } else { Value::Array(desired.endpoints) },
        "ports": desired.ports,
    })
}
