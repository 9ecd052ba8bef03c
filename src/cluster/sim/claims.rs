//! PersistentVolumeClaims as pods meet them. The built-in cluster has no volumes: whether a claim
//! is ever bound depends on the cluster's storage (kind's provisioner binds one at once, a cluster
//! without a provisioner never does), so a pod that mounts an existing claim has no verdict it
//! could trust, and the write that would make one stops the scenario. A claim that does not exist
//! is the same on every cluster: the scheduler leaves the pod Pending, in its own words.

use serde_json::Value;

use super::error::ApiError;
use super::resources::{self, Resource};
use super::schema::pod_spec;
use super::store::Store;

/// The claims a pod spec mounts, in the order of its volumes.
pub fn mounted(spec: &Value) -> impl Iterator<Item = &str> {
    volumes(spec).filter_map(|volume| volume["persistentVolumeClaim"]["claimName"].as_str())
}

fn volumes(spec: &Value) -> impl Iterator<Item = &Value> {
    spec["volumes"].as_array().into_iter().flatten()
}

/// The scheduler's answer to a pod that mounts a claim its namespace does not have (upstream's
/// VolumeRestrictions and VolumeBinding pre-filters, which reject it before any node is weighed),
/// in the testbed's words: `0/3 nodes are available: persistentvolumeclaim "data" not found. not
/// found`. The first missing claim in the order of the volumes is named.
pub fn missing(store: &Store, namespace: &str, spec: &Value, nodes: usize) -> Option<String> {
    let claim = first_missing(store, namespace, spec)?;
    Some(format!("0/{nodes} nodes are available: persistentvolumeclaim \"{claim}\" not found. not found"))
}

/// The first claim of the pod spec's volumes that its namespace does not have.
pub fn first_missing<'a>(store: &Store, namespace: &str, spec: &'a Value) -> Option<&'a str> {
    mounted(spec).find(|claim| store.get(resources::PERSISTENT_VOLUME_CLAIM, namespace, claim).is_none())
}

/// Refuses, as a scenario the built-in cluster cannot rehearse, a write that would leave a pod
/// (or a controller's pods) waiting on a claim that exists: an object whose pod spec mounts an
/// existing claim or has an ephemeral volume (whose claim the cluster makes), and a claim that a
/// pod or a pod template of its namespace mounts. Called after validation, as the API server
/// would have taken the object.
pub fn refuse_unmodelled(store: &Store, resource: Resource, namespace: &str, object: &Value) -> Result<(), ApiError> {
    let name = object["metadata"]["name"].as_str().or_else(|| object["metadata"]["generateName"].as_str());
    let name = name.unwrap_or_default();
    if resource == resources::PERSISTENT_VOLUME_CLAIM {
        return match mounter(store, namespace, name) {
            Some((kind, mounter)) => Err(ApiError::claim_not_modelled(kind, &mounter, name)),
            None => Ok(()),
        };
    }
    let Some((spec, _)) = pod_spec(resource, object) else { return Ok(()) };
    if volumes(spec).any(|volume| volume.get("ephemeral").is_some_and(|source| !source.is_null())) {
        return Err(ApiError::ephemeral_volume_not_modelled(resource, name));
    }
    match mounted(spec).find(|claim| store.get(resources::PERSISTENT_VOLUME_CLAIM, namespace, claim).is_some()) {
        Some(claim) => Err(ApiError::claim_not_modelled(resource, name, claim)),
        None => Ok(()),
    }
}

/// A controller or a pod of `namespace` whose pod spec mounts `claim`, the one a runbook most
/// likely wrote: a Deployment before its ReplicaSets, a ReplicaSet before its pods; then by name.
/// Only one that runs or may run pods counts: not a controller scaled to 0 (an old ReplicaSet of
/// a Deployment; scaling one up is a write this check sees), nor a pod that has ended or is
/// being deleted.
fn mounter(store: &Store, namespace: &str, claim: &str) -> Option<(Resource, String)> {
    const MOUNTERS: [Resource; 5] =
        [resources::DEPLOYMENT, resources::DAEMON_SET, resources::STATEFUL_SET, resources::REPLICA_SET, resources::POD];
    let may_run_pods = |resource: Resource, object: &Value| {
        if resource == resources::POD {
            let ended = matches!(object["status"]["phase"].as_str(), Some("Succeeded" | "Failed"));
            !ended && object["metadata"]["deletionTimestamp"].is_null()
        } else {
            object["spec"]["replicas"].as_i64() != Some(0)
        }
    };
    MOUNTERS.into_iter().find_map(|resource| {
        store
            .list(resource, Some(namespace))
            .filter(|object| may_run_pods(resource, object))
            .find(|object| pod_spec(resource, object).is_some_and(|(spec, _)| mounted(spec).any(|c| c == claim)))
            .map(|object| (resource, object["metadata"]["name"].as_str().unwrap_or_default().to_string()))
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn store() -> Store {
        Store::with_namespaces(&["ns"])
    }

    fn pod(name: &str, volumes: Value) -> Value {
        json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "nginx"}], "volumes": volumes}})
    }

    fn claim(name: &str) -> Value {
        json!({"metadata": {"name": name}, "spec": {"accessModes": ["ReadWriteOnce"]}})
    }

    #[test]
    fn the_first_missing_claim_in_volume_order_keeps_a_pod_unscheduled() {
        let mut store = store();
        let spec = pod(
            "web",
            json!([
                {"name": "config", "configMap": {"name": "settings"}},
                {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
                {"name": "more", "persistentVolumeClaim": {"claimName": "other"}},
            ]),
        )["spec"]
            .clone();
        assert_eq!(
            missing(&store, "ns", &spec, 3).as_deref(),
            Some("0/3 nodes are available: persistentvolumeclaim \"data\" not found. not found")
        );
        store.create(resources::PERSISTENT_VOLUME_CLAIM, "ns", claim("data")).unwrap();
        assert_eq!(
            missing(&store, "ns", &spec, 3).as_deref(),
            Some("0/3 nodes are available: persistentvolumeclaim \"other\" not found. not found")
        );
        store.create(resources::PERSISTENT_VOLUME_CLAIM, "ns", claim("other")).unwrap();
        assert_eq!(missing(&store, "ns", &spec, 3), None);
        assert_eq!(missing(&store, "ns", &pod("plain", json!(null))["spec"], 3), None);
    }

    #[test]
    fn a_write_that_would_mount_an_existing_claim_stops_the_scenario_and_a_missing_one_does_not() {
        let mut store = store();
        let mounting = pod("web", json!([{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]));
        // Missing: the pod is taken, and waits as on every cluster.
        assert!(refuse_unmodelled(&store, resources::POD, "ns", &mounting).is_ok());
        store.create(resources::POD, "ns", mounting.clone()).unwrap();
        // The claim made afterwards: a cluster would bind it (or not): no verdict.
        let refused = refuse_unmodelled(&store, resources::PERSISTENT_VOLUME_CLAIM, "ns", &claim("data")).unwrap_err();
        assert_eq!(refused.code, 501);
        assert!(refused.message.contains("pod/web mounts persistentvolumeclaim/data"), "{}", refused.message);
        // Nor one only a controller at 0 replicas mounts.
        let idle = json!({"metadata": {"name": "old"}, "spec": {"replicas": 0, "template": {"spec": {"volumes": [
            {"name": "cache", "persistentVolumeClaim": {"claimName": "cache"}}]}}}});
        store.create(resources::REPLICA_SET, "ns", idle).unwrap();
        assert!(refuse_unmodelled(&store, resources::PERSISTENT_VOLUME_CLAIM, "ns", &claim("cache")).is_ok());
        // A claim no pod mounts is only stored.
        assert!(refuse_unmodelled(&store, resources::PERSISTENT_VOLUME_CLAIM, "ns", &claim("logs")).is_ok());
        store.create(resources::PERSISTENT_VOLUME_CLAIM, "ns", claim("logs")).unwrap();
        // A controller whose template mounts an existing claim.
        let deployment = json!({"metadata": {"name": "api"}, "spec": {"template": {"spec": {"volumes": [
            {"name": "logs", "persistentVolumeClaim": {"claimName": "logs"}}]}}}});
        let refused = refuse_unmodelled(&store, resources::DEPLOYMENT, "ns", &deployment).unwrap_err();
        assert!(refused.message.contains("deployment/api mounts persistentvolumeclaim/logs"), "{}", refused.message);
        // In another namespace the claim does not exist.
        assert!(refuse_unmodelled(&store, resources::DEPLOYMENT, "other", &deployment).is_ok());
        // An ephemeral volume's claim is made by the cluster itself.
        let ephemeral = pod("tmp", json!([{"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}}]));
        let refused = refuse_unmodelled(&store, resources::POD, "ns", &ephemeral).unwrap_err();
        assert!(refused.message.contains("pod/tmp has an ephemeral volume"), "{}", refused.message);
    }
}
