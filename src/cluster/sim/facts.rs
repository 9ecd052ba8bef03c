//! What the controllers ask of an object on every pass (its uid, labels, controller, whether it
//! is being deleted; for a pod whether it is Ready, its IP, its node), read from its JSON once
//! when the object is written. The ReplicaSet and EndpointSlice controllers go through every pod
//! of a namespace after every write to one, and a JSON lookup is a search of string keys: read
//! there each time, these facts were most of a label step's cost.

use serde_json::Value;

use super::resources::{self, Resource};

#[derive(Debug, Default, PartialEq)]
pub struct Facts {
    pub name: String,
    pub uid: String,
    /// `metadata.labels` as stored (null when there are none).
    pub labels: Value,
    /// The uid of the ownerReference with `controller: true` (empty if it has none), if any.
    pub controller_uid: Option<String>,
    /// Whether it has a deletionTimestamp.
    pub deleting: bool,
    /// Pods only (false and None elsewhere): the Ready condition is True, ...
    pub ready: bool,
    /// ... the phase is Succeeded or Failed, ...
    pub terminal: bool,
    /// ... `status.podIP` (when not empty), and `spec.nodeName`, `spec.hostname` and
    /// `spec.subdomain` (empty when unset).
    pub pod_ip: Option<String>,
    pub node_name: String,
    pub hostname: String,
    pub subdomain: String,
    /// Workloads and Services only (empty elsewhere): the label keys that decide which pods
    /// they select or stamp, sorted: a workload's selector (matchLabels and matchExpressions)
    /// and template labels, a Service's selector.
    pub selection_keys: Vec<String>,
}

impl Facts {
    pub fn of(resource: Resource, object: &Value) -> Facts {
        let metadata = &object["metadata"];
        let text = |value: &Value| value.as_str().unwrap_or_default().to_string();
        let controller_uid = metadata["ownerReferences"]
            .as_array()
            .and_then(|refs| refs.iter().find(|r| r["controller"].as_bool() == Some(true)))
            // A controller reference without a uid is still someone else's, never an orphan.
            .map(|r| text(&r["uid"]));
        let mut facts = Facts {
            name: text(&metadata["name"]),
            uid: text(&metadata["uid"]),
            labels: metadata.get("labels").cloned().unwrap_or(Value::Null),
            controller_uid,
            deleting: metadata["deletionTimestamp"].is_string(),
            ..Facts::default()
        };
        if resource == resources::POD {
            let (spec, status) = (&object["spec"], &object["status"]);
            facts.ready = status["conditions"]
                .as_array()
                .and_then(|conditions| conditions.iter().find(|c| c["type"] == "Ready"))
                .is_some_and(|c| c["status"] == "True");
            facts.terminal = matches!(status["phase"].as_str(), Some("Succeeded" | "Failed"));
            facts.pod_ip = status["podIP"].as_str().filter(|ip| !ip.is_empty()).map(str::to_string);
            facts.node_name = text(&spec["nodeName"]);
            facts.hostname = text(&spec["hostname"]);
            facts.subdomain = text(&spec["subdomain"]);
        }
        facts.selection_keys = selection_keys(resource, &object["spec"]);
        facts
    }

    /// Whether relabelling a pod's `changed` keys can move it into or out of this object's
    /// selection (a workload's or a Service's; never for other kinds).
    pub fn selects_on_any(&self, changed: &[&str]) -> bool {
        changed.iter().any(|key| self.selection_keys.binary_search_by(|k| k.as_str().cmp(key)).is_ok())
    }

    /// Upstream's IsPodActive: not terminal and not being deleted.
    pub fn is_active(&self) -> bool {
        !self.terminal && !self.deleting
    }

    pub fn controlled_by(&self, owner_uid: &str) -> bool {
        self.controller_uid.as_deref() == Some(owner_uid)
    }

    /// Whether the controller with `owner_uid` could claim it: it is that controller's or nobody's.
    pub fn claimable_by(&self, owner_uid: &str) -> bool {
        self.controller_uid.as_deref().is_none_or(|uid| uid == owner_uid)
    }
}

/// The kinds whose objects select pods by label, and so have selection keys.
pub const SELECTING: [Resource; 5] =
    [resources::REPLICA_SET, resources::DAEMON_SET, resources::STATEFUL_SET, resources::DEPLOYMENT, resources::SERVICE];

fn selection_keys(resource: Resource, spec: &Value) -> Vec<String> {
    let map_keys = |map: &Value| map.as_object().into_iter().flat_map(|m| m.keys().cloned()).collect::<Vec<_>>();
    let mut keys = if resource == resources::SERVICE {
        map_keys(&spec["selector"])
    } else if SELECTING.contains(&resource) {
        let selector = &spec["selector"];
        let expressions = selector["matchExpressions"].as_array().into_iter().flatten();
        let mut keys = map_keys(&selector["matchLabels"]);
        keys.extend(expressions.filter_map(|e| e["key"].as_str()).map(str::to_string));
        keys.extend(map_keys(&spec["template"]["metadata"]["labels"]));
        keys
    } else {
        Vec::new()
    };
    keys.sort_unstable();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_pods_facts_are_read_from_its_json() {
        let pod = json!({
            "metadata": {
                "name": "web-1", "uid": "u1", "labels": {"app": "web"},
                "ownerReferences": [
                    {"uid": "other", "controller": false},
                    {"uid": "rs-1", "controller": true},
                ],
            },
            "spec": {"nodeName": "worker", "hostname": "h"},
            "status": {
                "phase": "Running", "podIP": "10.0.0.1",
                "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}],
            },
        });
        let facts = Facts::of(resources::POD, &pod);
        assert_eq!(facts.name, "web-1");
        assert_eq!(facts.labels, json!({"app": "web"}));
        assert_eq!(facts.controller_uid.as_deref(), Some("rs-1"));
        assert!(facts.ready && !facts.terminal && !facts.deleting && facts.is_active());
        assert_eq!((facts.pod_ip.as_deref(), facts.node_name.as_str()), (Some("10.0.0.1"), "worker"));
        assert_eq!((facts.hostname.as_str(), facts.subdomain.as_str()), ("h", ""));
        assert!(facts.controlled_by("rs-1") && facts.claimable_by("rs-1") && !facts.claimable_by("rs-2"));
    }

    #[test]
    fn not_ready_terminal_deleting_and_orphan_pods_read_so() {
        let pod = json!({
            "metadata": {"name": "p", "deletionTimestamp": "2026-01-01T00:00:00Z"},
            "status": {"phase": "Failed", "podIP": "", "conditions": [{"type": "Ready", "status": "False"}]},
        });
        let facts = Facts::of(resources::POD, &pod);
        assert!(!facts.ready && facts.terminal && facts.deleting && !facts.is_active());
        assert!(facts.claimable_by("anyone"));
        assert_eq!((facts.pod_ip, facts.labels, facts.controller_uid), (None, Value::Null, None));
    }

    #[test]
    fn a_controller_reference_without_a_uid_does_not_make_an_orphan() {
        let pod = json!({"metadata": {"name": "p", "ownerReferences": [{"name": "rs", "controller": true}]}});
        let facts = Facts::of(resources::POD, &pod);
        assert_eq!(facts.controller_uid.as_deref(), Some(""));
        assert!(!facts.claimable_by("rs-1") && !facts.controlled_by("rs-1"));
    }

    #[test]
    fn workloads_and_services_know_the_keys_they_select_on() {
        let replica_set = json!({"spec": {
            "selector": {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "Exists"}]},
            "template": {"metadata": {"labels": {"app": "web", "tier": "front", "round": "a"}}},
        }});
        let facts = Facts::of(resources::REPLICA_SET, &replica_set);
        assert_eq!(facts.selection_keys, ["app", "round", "tier"]);
        assert!(facts.selects_on_any(&["zone", "round"]) && !facts.selects_on_any(&["zone"]));
        let service = Facts::of(resources::SERVICE, &json!({"spec": {"selector": {"app": "web"}}}));
        assert_eq!(service.selection_keys, ["app"]);
        let selectorless = Facts::of(resources::SERVICE, &json!({"spec": {"type": "ExternalName"}}));
        assert!(!selectorless.selects_on_any(&["app"]));
        // A pod's own labels select nothing.
        let pod = Facts::of(resources::POD, &json!({"metadata": {"labels": {"app": "web"}}}));
        assert!(pod.selection_keys.is_empty());
    }

    #[test]
    fn only_pods_have_pod_facts() {
        let service = json!({"metadata": {"name": "s"}, "status": {"phase": "Running", "podIP": "10.0.0.1"}});
        let facts = Facts::of(resources::SERVICE, &service);
        assert_eq!((facts.pod_ip, facts.terminal), (None, false));
    }
}
