//! What a pod needs from its namespace before its kubelet can start it: the ConfigMaps and
//! Secrets its volumes and environment name, unless marked optional. A kubelet mounts the
//! volumes first and creates the pod's sandbox only then, so a missing volume source leaves the
//! pod Pending, ContainerCreating, with no IP; a missing environment source fails that
//! container alone, `CreateContainerConfigError`, in the kubelet's words. Either way the pod is
//! not ready until the object (and the key) exists. The testbed's kwok mounts nothing and starts
//! such a pod regardless: here the built-in cluster follows a real kubelet (docs/testbed.md).
//! Init containers run first, one after another, each to its end (here they end at once, as
//! kwok ends them): one whose environment cannot be made waits, `CreateContainerConfigError`, and
//! so does every container after it (`Init:CreateContainerConfigError` in kubectl's words).

use serde_json::Value;

use super::super::claims;
use super::super::resources::{self, Resource};
use super::super::store::Store;

/// What keeps a pod from starting.
#[derive(Debug, PartialEq, Eq)]
pub enum Unmet {
    /// A volume cannot be mounted: no container is created, the pod has no sandbox yet.
    Volume,
    /// An init container (by its index among the pod's init containers) whose environment cannot
    /// be made, with the kubelet's message: the init containers before it have run, it and every
    /// container after it wait.
    Initialization(usize, String),
    /// Each container (by name) whose environment cannot be made, with the kubelet's message.
    Environment(Vec<(String, String)>),
}

/// A ConfigMap or a Secret, as a pod names one: `reference` is the naming object, which also
/// holds the volume's `items` or the variable's `key`.
struct Source<'a> {
    resource: Resource,
    reference: &'a Value,
    name: &'a str,
    optional: bool,
}

impl Source<'_> {
    /// The stored object, if it exists.
    fn get<'s>(&self, store: &'s Store, namespace: &str) -> Option<&'s Value> {
        store.get(self.resource, namespace, self.name)
    }

    fn kind(&self) -> &'static str {
        if self.resource == resources::SECRET { "Secret" } else { "ConfigMap" }
    }
}

fn source<'a>(resource: Resource, reference: &'a Value, name_field: &str) -> Option<Source<'a>> {
    let name = reference.get(name_field)?.as_str()?;
    Some(Source { resource, reference, name, optional: reference["optional"].as_bool().unwrap_or(false) })
}

/// Whether `object` (a ConfigMap or Secret) holds `key` for a volume's items, which read a
/// ConfigMap's `binaryData` too.
fn holds(object: &Value, key: &str) -> bool {
    ["data", "binaryData"].iter().any(|map| object[map].get(key).is_some())
}

/// Whether `object` holds `key` for an environment variable, which reads `data` only.
fn holds_text(object: &Value, key: &str) -> bool {
    object["data"].get(key).is_some()
}

/// Why the pod's kubelet cannot start it now, if it cannot.
pub fn unmet(store: &Store, namespace: &str, spec: &Value) -> Option<Unmet> {
    // A claim that does not exist (a pod placed by `nodeName` skips the scheduler, which would
    // have held it) cannot be fetched by the volume manager either. One that exists is never
    // mounted here (`claims::refuse_unmodelled`).
    let mut volumes = spec["volumes"].as_array().into_iter().flatten();
    if claims::first_missing(store, namespace, spec).is_some() || volumes.any(|v| !mountable(store, namespace, v)) {
        return Some(Unmet::Volume);
    }
    let init_containers = spec["initContainers"].as_array().into_iter().flatten();
    if let Some((at, why)) =
        init_containers.enumerate().find_map(|(at, c)| Some((at, environment_problem(store, namespace, c)?)))
    {
        return Some(Unmet::Initialization(at, why));
    }
    let failing: Vec<(String, String)> = spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|container| {
            let why = environment_problem(store, namespace, container)?;
            Some((container["name"].as_str().unwrap_or_default().to_string(), why))
        })
        .collect();
    (!failing.is_empty()).then_some(Unmet::Environment(failing))
}

/// Whether a volume's ConfigMap or Secret (directly or projected) exists with the keys its
/// items name, or is optional.
fn mountable(store: &Store, namespace: &str, volume: &Value) -> bool {
    let direct = [
        source(resources::CONFIG_MAP, &volume["configMap"], "name"),
        source(resources::SECRET, &volume["secret"], "secretName"),
    ];
    let projected = volume["projected"]["sources"].as_array().into_iter().flatten().flat_map(|projection| {
        [
            source(resources::CONFIG_MAP, &projection["configMap"], "name"),
            source(resources::SECRET, &projection["secret"], "name"),
        ]
    });
    direct.into_iter().chain(projected).flatten().all(|source| match source.get(store, namespace) {
        None => source.optional,
        Some(object) => {
            source.optional
                || source.reference["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .all(|item| item["key"].as_str().is_none_or(|key| holds(object, key)))
        }
    })
}

/// The kubelet's message for the first environment source of a container it cannot read.
fn environment_problem(store: &Store, namespace: &str, container: &Value) -> Option<String> {
    for from in container["envFrom"].as_array().into_iter().flatten() {
        let sources = [
            source(resources::CONFIG_MAP, &from["configMapRef"], "name"),
            source(resources::SECRET, &from["secretRef"], "name"),
        ];
        for source in sources.into_iter().flatten() {
            if !source.optional && source.get(store, namespace).is_none() {
                return Some(not_found(&source));
            }
        }
    }
    for variable in container["env"].as_array().into_iter().flatten() {
        let from = &variable["valueFrom"];
        let sources = [
            source(resources::CONFIG_MAP, &from["configMapKeyRef"], "name"),
            source(resources::SECRET, &from["secretKeyRef"], "name"),
        ];
        for source in sources.into_iter().flatten() {
            let key = source.reference["key"].as_str().unwrap_or_default();
            match source.get(store, namespace) {
                _ if source.optional => {}
                None => return Some(not_found(&source)),
                Some(object) if !holds_text(object, key) => {
                    return Some(format!("couldn't find key {key} in {} {namespace}/{}", source.kind(), source.name));
                }
                Some(_) => {}
            }
        }
    }
    None
}

/// `configmap "settings" not found`, as the kubelet reports a missing source.
fn not_found(source: &Source) -> String {
    format!("{} \"{}\" not found", source.kind().to_ascii_lowercase(), source.name)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn store() -> Store {
        let mut store = Store::with_namespaces(&["ns"]);
        store
            .create(resources::CONFIG_MAP, "ns", json!({"metadata": {"name": "settings"}, "data": {"mode": "fast"}}))
            .unwrap();
        store
            .create(resources::SECRET, "ns", json!({"metadata": {"name": "token"}, "data": {"value": "eA=="}}))
            .unwrap();
        store
    }

    fn spec(volumes: Value, env: Value, env_from: Value) -> Value {
        json!({"volumes": volumes, "containers": [
            {"name": "web", "image": "nginx", "env": env, "envFrom": env_from},
            {"name": "sidecar", "image": "envoy"},
        ]})
    }

    #[test]
    fn a_pod_whose_config_exists_or_is_optional_starts() {
        let store = store();
        let volumes = json!([
            {"name": "a", "configMap": {"name": "settings", "items": [{"key": "mode", "path": "mode"}]}},
            {"name": "b", "secret": {"secretName": "token"}},
            {"name": "c", "configMap": {"name": "absent", "optional": true}},
            {"name": "d", "projected": {"sources": [{"configMap": {"name": "settings"}}, {"secret": {"name": "nope", "optional": true}}]}},
            {"name": "e", "emptyDir": {}},
        ]);
        let env = json!([
            {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}},
            {"name": "MISSING", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "other", "optional": true}}},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "token", "key": "value"}}},
            {"name": "PLAIN", "value": "x"},
        ]);
        let env_from =
            json!([{"configMapRef": {"name": "settings"}}, {"secretRef": {"name": "absent", "optional": true}}]);
        assert_eq!(unmet(&store, "ns", &spec(volumes, env, env_from)), None);
        assert_eq!(unmet(&store, "ns", &json!({"containers": [{"name": "web"}]})), None);
    }

    #[test]
    fn a_missing_volume_source_holds_the_whole_pod() {
        let store = store();
        for volume in [
            json!({"name": "a", "configMap": {"name": "absent"}}),
            json!({"name": "a", "secret": {"secretName": "absent"}}),
            json!({"name": "a", "configMap": {"name": "settings", "items": [{"key": "absent", "path": "x"}]}}),
            json!({"name": "a", "projected": {"sources": [{"secret": {"name": "absent"}}]}}),
        ] {
            assert_eq!(
                unmet(&store, "ns", &spec(json!([volume]), json!(null), json!(null))),
                Some(Unmet::Volume),
                "{volume}"
            );
        }
        // A claim that does not exist (a pod bound by nodeName that no scheduler held).
        let volumes = json!([{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]);
        assert_eq!(unmet(&store, "ns", &spec(volumes, json!(null), json!(null))), Some(Unmet::Volume));
        // Elsewhere the objects do not exist.
        let volumes = json!([{"name": "a", "configMap": {"name": "settings"}}]);
        assert_eq!(unmet(&store, "other", &spec(volumes, json!(null), json!(null))), Some(Unmet::Volume));
    }

    #[test]
    fn a_missing_environment_source_fails_its_container_in_the_kubelets_words() {
        let store = store();
        let failing = |env: Value, env_from: Value| match unmet(&store, "ns", &spec(json!(null), env, env_from)) {
            Some(Unmet::Environment(failing)) => failing,
            other => panic!("{other:?}"),
        };
        let key =
            |kind: &str, name: &str, key: &str| json!([{"name": "X", "valueFrom": {kind: {"name": name, "key": key}}}]);
        let web = |why: &str| vec![("web".to_string(), why.to_string())];
        assert_eq!(
            failing(key("configMapKeyRef", "absent", "mode"), json!(null)),
            web("configmap \"absent\" not found")
        );
        assert_eq!(failing(key("secretKeyRef", "absent", "value"), json!(null)), web("secret \"absent\" not found"));
        assert_eq!(
            failing(key("configMapKeyRef", "settings", "speed"), json!(null)),
            web("couldn't find key speed in ConfigMap ns/settings")
        );
        assert_eq!(
            failing(key("secretKeyRef", "token", "other"), json!(null)),
            web("couldn't find key other in Secret ns/token")
        );
        // An environment reads a ConfigMap's `data` only, not its `binaryData`.
        let mut store = store;
        store
            .create(resources::CONFIG_MAP, "ns", json!({"metadata": {"name": "blob"}, "binaryData": {"raw": "eA=="}}))
            .unwrap();
        let failing = |env: Value, env_from: Value| match unmet(&store, "ns", &spec(json!(null), env, env_from)) {
            Some(Unmet::Environment(failing)) => failing,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            failing(key("configMapKeyRef", "blob", "raw"), json!(null)),
            web("couldn't find key raw in ConfigMap ns/blob")
        );
        // envFrom is read before env, as the kubelet reads them.
        assert_eq!(
            failing(key("secretKeyRef", "absent", "value"), json!([{"configMapRef": {"name": "gone"}}])),
            web("configmap \"gone\" not found")
        );
        assert_eq!(failing(json!(null), json!([{"secretRef": {"name": "gone"}}])), web("secret \"gone\" not found"));
    }

    #[test]
    fn an_init_container_that_cannot_start_holds_every_container_after_it() {
        let store = store();
        let init = |name: &str, config: &str| json!({"name": name, "image": "busybox", "envFrom": [{"configMapRef": {"name": config}}]});
        let mut pod = spec(json!(null), json!(null), json!([{"configMapRef": {"name": "gone"}}]));
        pod["initContainers"] = json!([init("first", "settings"), init("second", "absent"), init("third", "other")]);
        // The first init container that cannot start is told; the app container's own problem
        // is not reached.
        assert_eq!(unmet(&store, "ns", &pod), Some(Unmet::Initialization(1, "configmap \"absent\" not found".into())));
        pod["initContainers"] = json!([init("first", "settings")]);
        assert!(matches!(unmet(&store, "ns", &pod), Some(Unmet::Environment(_))));
        // A volume that cannot be mounted comes first: there is no sandbox to run them in.
        pod["volumes"] = json!([{"name": "a", "secret": {"secretName": "absent"}}]);
        pod["initContainers"] = json!([init("second", "absent")]);
        assert_eq!(unmet(&store, "ns", &pod), Some(Unmet::Volume));
    }
}
