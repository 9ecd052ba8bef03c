//! The garbage collector and the namespace controller. An object whose owners are all gone is
//! deleted (background propagation); owners that are gone are dropped from an object that still
//! has others. The `orphan` and `foregroundDeletion` finalizers are honoured. A namespace being
//! deleted has everything in it deleted, and is removed once nothing is left in it.

use std::collections::BTreeSet;

use serde_json::Value;

use super::super::resources::{ALL, NAMESPACE, Resource};
use super::super::store::Store;
use super::{delete, is_deleting, name, remove_owner, uid, write};

pub fn run(store: &mut Store, visited: &[String]) {
    namespaces(store, visited);
    owners(store, visited);
    finalizers(store, visited);
}

fn namespaced() -> impl Iterator<Item = Resource> {
    ALL.iter().copied().filter(|r| r.namespaced)
}

/// Every object, with its namespace ("" for cluster-scoped kinds), borrowed: the collector
/// runs after every write, so it looks first and clones only what it must change.
fn every_object<'a>(store: &'a Store, visited: &'a [String]) -> impl Iterator<Item = (Resource, &'a str, &'a Value)> {
    // Namespaced kinds are read one visited namespace at a time: the store keeps each
    // namespace's objects of a kind together, and the other namespaces' are not this pass's.
    let scopes = |resource: Resource| -> Vec<Option<&'a str>> {
        if resource.namespaced { visited.iter().map(|ns| Some(ns.as_str())).collect() } else { vec![None] }
    };
    ALL.iter().copied().flat_map(move |resource| {
        scopes(resource).into_iter().flat_map(move |scope| {
            store
                .list(resource, scope)
                .map(move |object| (resource, object["metadata"]["namespace"].as_str().unwrap_or_default(), object))
        })
    })
}

fn namespaces(store: &mut Store, visited: &[String]) {
    let terminating: Vec<String> = store
        .list(NAMESPACE, None)
        .filter(|ns| is_deleting(ns) && visited.iter().any(|v| v == name(ns)))
        .map(|ns| name(ns).to_string())
        .collect();
    for namespace in terminating {
        for resource in namespaced() {
            for object in store.list_owned(resource, &namespace) {
                delete(store, resource, &namespace, &object);
            }
        }
        let empty = namespaced().all(|r| store.list(r, Some(&namespace)).next().is_none());
        if empty {
            store.remove(NAMESPACE, "", &namespace);
        }
    }
}

fn owners(store: &mut Store, visited: &[String]) {
    // Owners live in their dependents' namespace or are cluster-scoped.
    let uids: BTreeSet<&str> = every_object(store, visited).map(|(_, _, o)| uid(o)).collect();
    let mut dangling = Vec::new();
    for (resource, namespace, object) in every_object(store, visited) {
        let Some(refs) = object["metadata"]["ownerReferences"].as_array().filter(|r| !r.is_empty()) else { continue };
        // An owner of a kind the API does not serve cannot be looked up: upstream's collector
        // fails to map it and retries without end, touching none of the dependent's references.
        let unresolvable = |r: &Value| {
            crate::cluster::sim::resources::by_kind(
                r["apiVersion"].as_str().unwrap_or_default(),
                r["kind"].as_str().unwrap_or_default(),
            )
            .is_none()
        };
        if refs.iter().any(unresolvable) {
            continue;
        }
        let gone: Vec<String> =
            refs.iter().filter_map(|r| r["uid"].as_str()).filter(|u| !uids.contains(u)).map(String::from).collect();
        if gone.is_empty() {
            continue;
        }
        dangling.push((resource, namespace.to_string(), object.clone(), gone.len() == refs.len(), gone));
    }
    for (resource, namespace, mut object, all_gone, gone) in dangling {
        if all_gone {
            delete(store, resource, &namespace, &object);
        } else {
            for owner in &gone {
                remove_owner(&mut object, owner);
            }
            write(store, resource, &namespace, object);
        }
    }
}

/// Owners being deleted with `orphan` (their dependents lose the reference) or
/// `foregroundDeletion` (their dependents are deleted first; the owner goes once no dependent
/// that blocks owner deletion is left).
fn finalizers(store: &mut Store, visited: &[String]) {
    let has =
        |owner: &Value, f: &str| owner["metadata"]["finalizers"].as_array().is_some_and(|l| l.iter().any(|x| x == f));
    let finalizing: Vec<(Resource, String, Value)> = every_object(store, visited)
        .filter(|(_, _, o)| is_deleting(o) && (has(o, "orphan") || has(o, "foregroundDeletion")))
        .map(|(r, ns, o)| (r, ns.to_string(), o.clone()))
        .collect();
    for (resource, namespace, owner) in finalizing {
        let orphan = has(&owner, "orphan");
        let owner_uid = uid(&owner).to_string();
        let dependents: Vec<(Resource, String, Value)> = every_object(store, visited)
            .filter(|(_, _, o)| {
                o["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|r| r["uid"] == owner_uid.as_str()))
            })
            .map(|(r, ns, o)| (r, ns.to_string(), o.clone()))
            .collect();
        let finalizer = if orphan {
            for (r, ns, mut dependent) in dependents {
                remove_owner(&mut dependent, &owner_uid);
                write(store, r, &ns, dependent);
            }
            "orphan"
        } else {
            let mut blocking = false;
            for (r, ns, dependent) in &dependents {
                blocking |= dependent["metadata"]["ownerReferences"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|x| x["uid"] == owner_uid.as_str() && x["blockOwnerDeletion"].as_bool() == Some(true));
                delete(store, *r, ns, dependent);
            }
            if blocking {
                continue;
            }
            "foregroundDeletion"
        };
        let Some(mut current) = store.get(resource, &namespace, name(&owner)).cloned() else { continue };
        if let Some(list) = current.pointer_mut("/metadata/finalizers").and_then(Value::as_array_mut) {
            list.retain(|f| f != finalizer);
        }
        write(store, resource, &namespace, current);
    }
}
