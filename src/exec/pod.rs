//! A pod as the steps read it: its metadata, its node, its phase and its conditions. The view
//! watches pods in this shape rather than as k8s-openapi's whole `Pod`: a watch event then skips
//! the containers, volumes and statuses instead of building them (half the cost of a label
//! step's event), and a view of thousands of pods holds only what the steps read.

use k8s_openapi::Resource;
use k8s_openapi::api::core::v1::Affinity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Pod {
    #[serde(default)]
    pub metadata: ObjectMeta,
    pub spec: Option<PodSpec>,
    pub status: Option<PodStatus>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    pub node_name: Option<String>,
    /// The node a daemon pod is made for, before the scheduler binds it (see [`Pod::target_node`]).
    pub affinity: Option<Affinity>,
    /// Who binds it to a node: the cluster's scheduler, `default-scheduler`, unless it says.
    pub scheduler_name: Option<String>,
    /// Conditions beside its containers' that its readiness waits for.
    pub readiness_gates: Option<Vec<ReadinessGate>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadinessGate {
    #[serde(default)]
    pub condition_type: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct PodStatus {
    pub phase: Option<String>,
    pub conditions: Option<Vec<PodCondition>>,
    /// Only a pod with an IP has an endpoint.
    #[serde(rename = "podIP")]
    pub pod_ip: Option<String>,
    /// Whether its containers are still being created, or stuck, or restarting.
    #[serde(rename = "containerStatuses")]
    pub container_statuses: Option<Vec<ContainerStatus>>,
    #[serde(rename = "initContainerStatuses")]
    pub init_container_statuses: Option<Vec<ContainerStatus>>,
}

/// A container's status as the steps read it: why it waits, and how often it restarted.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStatus {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub restart_count: i32,
    pub state: Option<ContainerState>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct ContainerState {
    pub waiting: Option<Waiting>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Waiting {
    pub reason: Option<String>,
    pub message: Option<String>,
}

/// A condition as the steps read it. Its transition time stays text until a message needs it:
/// most events are read only for whether the pod is Ready.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    pub message: Option<String>,
    pub last_transition_time: Option<String>,
}

impl Pod {
    /// The node the pod runs on, or, not yet scheduled, the one node its required affinity
    /// names: upstream's GetTargetNodeName, by which the DaemonSet controller counts a daemon
    /// pod on its node from the moment it is made.
    pub fn target_node(&self) -> Option<&str> {
        let spec = self.spec.as_ref()?;
        if let Some(node) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
            return Some(node);
        }
        let node_affinity = spec.affinity.as_ref()?.node_affinity.as_ref()?;
        let terms = &node_affinity.required_during_scheduling_ignored_during_execution.as_ref()?.node_selector_terms;
        let pin = terms
            .iter()
            .flat_map(|term| term.match_fields.iter().flatten())
            .find(|field| field.key == "metadata.name" && field.operator == "In")?;
        match pin.values.as_deref() {
            Some([node]) => Some(node),
            _ => None,
        }
    }
}

impl PodCondition {
    /// When the condition last changed, if the API server said and said it readably.
    pub fn transitioned_at(&self) -> Option<k8s_openapi::jiff::Timestamp> {
        self.last_transition_time.as_deref()?.parse().ok()
    }
}

/// The whole pod, as k8s-openapi has it.
type Whole = k8s_openapi::api::core::v1::Pod;

/// Served where k8s-openapi's `Pod` is: `kube::Api<Pod>` lists and watches `/api/v1/.../pods`.
impl Resource for Pod {
    const API_VERSION: &'static str = Whole::API_VERSION;
    const GROUP: &'static str = Whole::GROUP;
    const KIND: &'static str = Whole::KIND;
    const VERSION: &'static str = Whole::VERSION;
    const URL_PATH_SEGMENT: &'static str = Whole::URL_PATH_SEGMENT;
    type Scope = k8s_openapi::NamespaceResourceScope;
}

impl k8s_openapi::Metadata for Pod {
    type Ty = ObjectMeta;

    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::Pod;

    #[test]
    fn a_pod_keeps_what_the_steps_read_and_skips_the_rest() {
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web-1", "uid": "u1", "labels": {"app": "web"}},
            "spec": {"nodeName": "worker", "containers": [{"name": "web", "image": "web:1"}]},
            "status": {
                "phase": "Running",
                "podIP": "10.0.0.1",
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
                "containerStatuses": [{"name": "web", "ready": true}],
            },
        }))
        .unwrap();
        assert_eq!(pod.metadata.labels.unwrap()["app"], "web");
        assert_eq!(pod.spec.unwrap().node_name.as_deref(), Some("worker"));
        let status = pod.status.unwrap();
        assert_eq!(status.phase.as_deref(), Some("Running"));
        let ready = &status.conditions.unwrap()[0];
        assert_eq!((ready.type_.as_str(), ready.status.as_str()), ("Ready", "True"));
        assert_eq!(ready.transitioned_at().map(|t| t.as_second()), Some(1_767_225_600));
    }

    #[test]
    fn a_pod_without_spec_or_status_reads_as_none() {
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": null})).unwrap();
        assert!(pod.spec.is_none() && pod.status.is_none());
    }

    #[test]
    fn a_pod_targets_its_node_or_the_one_node_its_affinity_pins_it_to() {
        let pod = |spec: serde_json::Value| -> Pod { serde_json::from_value(json!({"spec": spec})).unwrap() };
        let pinned = |values: serde_json::Value| {
            json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": values}]}]}}})
        };
        assert_eq!(
            pod(json!({"nodeName": "worker", "affinity": pinned(json!(["other"]))})).target_node(),
            Some("worker")
        );
        assert_eq!(pod(json!({"nodeName": "", "affinity": pinned(json!(["worker2"]))})).target_node(), Some("worker2"));
        // Upstream's GetTargetNodeName names no node for a pin to several, or to none.
        assert_eq!(pod(json!({"affinity": pinned(json!(["a", "b"]))})).target_node(), None);
        assert_eq!(pod(json!({})).target_node(), None);
    }
}
