//! The EndpointSlice mirroring controller: a Service without a selector routes to the addresses
//! of the Endpoints object of its name, written by hand (often for a backend outside the
//! cluster), through EndpointSlices this controller keeps from it.
//!
//! As upstream's: each port set and address family of the repacked Endpoints
//! ([`crate::model::mirroring`]) gets one slice `<name>-<suffix>`, labelled with the Endpoints'
//! labels, the Service's name and this controller's, carrying its annotations (but the
//! last-applied configuration and the change trigger time), and owned by the Endpoints. A
//! Service given a selector or deleted, or an Endpoints object gone or marked
//! `endpointslice.kubernetes.io/skip-mirror: "true"`, loses its mirrored slices; an Endpoints
//! object being deleted gets no new slice (the garbage collector would race to delete it).

use serde_json::{Map, Value, json};

use super::super::resources::{ENDPOINT_SLICE, ENDPOINTS, SERVICE};
use super::super::store::Store;
use super::{controller_ref, is_deleting, label, name, write};
use crate::model::mirroring::{
    MIRRORING_CONTROLLER as CONTROLLER, MirroredSlice, mirrored_slices, port_set, should_mirror,
};

const SERVICE_NAME: &str = "kubernetes.io/service-name";
const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
/// Annotations of the Endpoints that its slices do not carry.
const NOT_COPIED: [&str; 2] =
    ["endpoints.kubernetes.io/last-change-trigger-time", "kubectl.kubernetes.io/last-applied-configuration"];

pub fn run(store: &mut Store, namespaces: &[String]) {
    for namespace in namespaces {
        for service in store.list_owned(SERVICE, namespace) {
            sync(store, namespace, &service);
        }
        // Upstream syncs a Service's name when the Service is deleted too: gone, its mirrored
        // slices are deleted.
        let orphaned: Vec<String> = store
            .list(ENDPOINT_SLICE, Some(namespace))
            .filter(|s| label(s, MANAGED_BY) == Some(CONTROLLER))
            .filter(|s| label(s, SERVICE_NAME).is_none_or(|service| store.get(SERVICE, namespace, service).is_none()))
            .map(|s| name(s).to_string())
            .collect();
        for slice in orphaned {
            store.remove(ENDPOINT_SLICE, namespace, &slice);
        }
    }
}

/// Upstream's syncEndpoints for the Service's name.
fn sync(store: &mut Store, namespace: &str, service: &Value) {
    let service_name = name(service);
    // An empty selector is stored as none (Go drops an empty map): it selects nothing, and the
    // Service is mirrored.
    let has_selector = service["spec"]["selector"].as_object().is_some_and(|s| !s.is_empty());
    let endpoints = store
        .get(ENDPOINTS, namespace, service_name)
        .filter(|e| !has_selector && should_mirror(&e["metadata"]))
        .cloned();
    let existing: Vec<Value> = store
        .list(ENDPOINT_SLICE, Some(namespace))
        .filter(|s| label(s, SERVICE_NAME) == Some(service_name) && label(s, MANAGED_BY) == Some(CONTROLLER))
        .filter(|s| !is_deleting(s))
        .cloned()
        .collect();
    match endpoints {
        Some(endpoints) => reconcile(store, namespace, &endpoints, existing),
        None => {
            for slice in existing {
                store.remove(ENDPOINT_SLICE, namespace, name(&slice));
            }
        }
    }
}

/// Upstream's reconcile: the slice of each port set and address type is the first existing one
/// of that key, updated when its endpoints, labels or annotations differ (the others of the key
/// are deleted); a key without a slice gets a new one, which takes a slice of its address type
/// that would be deleted when there is one (creates, then updates, then deletes). An Endpoints
/// object being deleted gets no new slice.
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
    for desired in mirrored_slices(endpoints) {
        let key = (port_set(&desired.ports), desired.address_type.to_string());
        let mut slices = by_key.iter().position(|(k, _)| *k == key).map(|i| by_key.remove(i).1).unwrap_or_default();
        let first = (!slices.is_empty()).then(|| slices.remove(0));
        delete.extend(slices);
        let mut slice = new_slice(endpoints, desired);
        match first {
            Some(first) => {
                let unchanged = first["endpoints"] == slice["endpoints"]
                    && first["metadata"]["labels"] == slice["metadata"]["labels"]
                    && first["metadata"]["annotations"] == slice["metadata"]["annotations"];
                if !unchanged {
                    let mut written = first;
                    take_content(&mut slice, &mut written);
                    update.push(written);
                }
            }
            None => create.push(slice),
        }
    }
    delete.extend(by_key.into_iter().flat_map(|(_, slices)| slices));
    // Upstream's recycleSlices: a slice that would be deleted is reused for one of its address
    // type that would be made.
    let mut made = Vec::new();
    for mut slice in create {
        match delete.iter().position(|d| d["addressType"] == slice["addressType"]) {
            Some(index) => {
                let mut recycled = delete.remove(index);
                take_content(&mut slice, &mut recycled);
                update.push(recycled);
            }
            None => made.push(slice),
        }
    }
    if !is_deleting(endpoints) {
        for slice in made {
            let _ = store.create(ENDPOINT_SLICE, namespace, slice);
        }
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

/// Upstream's newEndpointSlice, named by the API from `<endpoints>-`.
fn new_slice(endpoints: &Value, desired: MirroredSlice) -> Value {
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
        "endpoints": desired.endpoints,
        "ports": desired.ports,
    })
}
