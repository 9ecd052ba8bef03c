//! The one schema rule server-side apply enforces whatever the request's field validation: a
//! field the kind's schema does not declare is refused ("field not declared in schema"). The
//! schema is k8s-openapi's: an object that survives a round trip through the kind's typed struct
//! keeps every declared field, so a field present before and missing after is undeclared.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::resources::Resource;

/// The path of the first field (in key order, depth first) the kind's schema does not declare,
/// in structured-merge-diff's notation (`.spec.template.spec.containers[name="web"].bogus`).
/// None when every field is declared, or when the kind has no typed schema here, or the object
/// does not even fit the schema's types ([`type_error`] says why).
pub fn undeclared_field(resource: Resource, object: &Value) -> Option<String> {
    let typed = through_types(resource, object)?.ok()?;
    first_missing(object, &typed, &mut String::new())
}

/// Why the object does not fit its kind's types (`containers: [1]`), in serde's words: the API
/// server cannot decode such a body and refuses it before anything else reads it. None when it
/// fits, or the kind has no typed schema here.
pub fn type_error(resource: Resource, object: &Value) -> Option<String> {
    misfit(resource, object).map(|misfit| misfit.why)
}

/// Where an object first does not fit its kind's types, and serde's words for why.
pub struct Misfit {
    pub path: Vec<Step>,
    pub why: String,
}

/// One step into a JSON object: a field, or an item of a list.
#[derive(Debug, PartialEq)]
pub enum Step {
    Field(String),
    Item(usize),
}

/// The first value of the object that does not fit its kind's types; None when it fits, or the
/// kind has no typed schema here.
pub fn misfit(resource: Resource, object: &Value) -> Option<Misfit> {
    through_types(resource, object)?.err()
}

/// The object after a round trip through its kind's typed struct, or where it does not fit; None
/// for a kind without one here.
fn through_types(resource: Resource, object: &Value) -> Option<Result<Value, Misfit>> {
    Some(match resource.kind {
        "Pod" => round_trip::<Pod>(object),
        "Service" => round_trip::<Service>(object),
        "ConfigMap" => round_trip::<ConfigMap>(object),
        "Secret" => round_trip::<Secret>(object),
        "ServiceAccount" => round_trip::<ServiceAccount>(object),
        "Namespace" => round_trip::<Namespace>(object),
        "Deployment" => round_trip::<Deployment>(object),
        "ReplicaSet" => round_trip::<ReplicaSet>(object),
        "DaemonSet" => round_trip::<DaemonSet>(object),
        "StatefulSet" => round_trip::<StatefulSet>(object),
        "HorizontalPodAutoscaler" => round_trip::<HorizontalPodAutoscaler>(object),
        "Job" => round_trip::<Job>(object),
        "CronJob" => round_trip::<CronJob>(object),
        "PodDisruptionBudget" => round_trip::<PodDisruptionBudget>(object),
        "Ingress" => round_trip::<Ingress>(object),
        "NetworkPolicy" => round_trip::<NetworkPolicy>(object),
        "Role" => round_trip::<Role>(object),
        "RoleBinding" => round_trip::<RoleBinding>(object),
        "EndpointSlice" => round_trip::<EndpointSlice>(object),
        _ => return None,
    })
}

/// Where a kind keeps its pod spec, and that spec's path in messages: a Pod's own, a
/// controller's template, a CronJob's job template.
pub fn pod_spec(resource: Resource, object: &Value) -> Option<(&Value, &'static str)> {
    match resource.kind {
        "Pod" => Some((&object["spec"], "spec")),
        "Deployment" | "ReplicaSet" | "DaemonSet" | "StatefulSet" | "Job" => {
            Some((&object["spec"]["template"]["spec"], "spec.template.spec"))
        }
        "CronJob" => {
            Some((&object["spec"]["jobTemplate"]["spec"]["template"]["spec"], "spec.jobTemplate.spec.template.spec"))
        }
        _ => None,
    }
}

/// Whether the object holds a resource quantity its kind's types cannot hold (`cpu: abc`): the
/// API server cannot even decode it, before any validation (the caller answers in the API's
/// words for the request, [`super::quantity::FORMAT_ERROR`]).
pub fn holds_unreadable_quantity(resource: Resource, object: &Value) -> bool {
    let Some((spec, _)) = pod_spec(resource, object) else { return false };
    let unreadable = |list: &Value| {
        list.as_object().is_some_and(|list| list.values().any(|q| super::quantity::Quantity::from_json(q).is_none()))
    };
    let containers = ["containers", "initContainers", "ephemeralContainers"]
        .into_iter()
        .flat_map(|field| spec[field].as_array().into_iter().flatten());
    let lists = containers.flat_map(|c| [&c["resources"]["requests"], &c["resources"]["limits"]]).chain([
        &spec["overhead"],
        &spec["resources"]["requests"],
        &spec["resources"]["limits"],
    ]);
    let volumes = spec["volumes"].as_array().into_iter().flatten().map(|v| &v["emptyDir"]["sizeLimit"]);
    lists.into_iter().any(unreadable)
        || volumes.into_iter().any(|size| !size.is_null() && super::quantity::Quantity::from_json(size).is_none())
}

/// A `null` in the finalizers, a set of strings: structured-merge-diff refuses it before it
/// types anything else, where a `null` string elsewhere is read as "".
pub fn null_finalizer(object: &Value) -> Option<String> {
    let at = object["metadata"]["finalizers"].as_array()?.iter().position(Value::is_null)?;
    Some(format!(
        ".metadata.finalizers: element {at}: associative list without keys has an element that's an explicit null"
    ))
}

/// The entries of the kind's associative lists that share their key (two containers named `web`,
/// two ports `80/TCP`), in structured-merge-diff's words (`.spec.ports: duplicate entries for key
/// [port=80,protocol="TCP"]`): server-side apply cannot merge such a list, so it refuses the
/// configuration before validation sees it. Key order, depth first, a list's entries before the
/// list (a real API server reports several in no set order).
pub fn duplicate_entries(resource: Resource, object: &Value) -> Vec<String> {
    let mut found = Vec::new();
    // A set of strings (`+listType=set`): its entries are their own keys.
    let mut seen = std::collections::BTreeSet::new();
    for name in object["metadata"]["finalizers"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        let key = format!(".metadata.finalizers: duplicate entries for key [={}]", quoted(name));
        if !seen.insert(name) && !found.contains(&key) {
            found.push(key);
        }
    }
    if resource.kind == "Service" {
        duplicates(&object["spec"]["ports"], ".spec.ports", &["port", "protocol"], &mut found);
    }
    if let Some((spec, path)) = pod_spec(resource, object) {
        let path = format!(".{path}");
        let mut fields: Vec<(&String, &Value)> = spec.as_object().into_iter().flatten().collect();
        fields.sort_by_key(|(field, _)| *field);
        for (field, list) in fields {
            let list_path = format!("{path}.{field}");
            match field.as_str() {
                "containers" | "initContainers" => {
                    for container in list.as_array().into_iter().flatten() {
                        let Some(name) = container["name"].as_str() else { continue };
                        let item = format!("{list_path}[name={}]", quoted(name));
                        // Fields in key order, as the object's own keys are walked.
                        for (nested, keys) in [
                            ("env", &["name"][..]),
                            ("ports", &["containerPort", "protocol"][..]),
                            ("volumeMounts", &["mountPath"][..]),
                        ] {
                            duplicates(&container[nested], &format!("{item}.{nested}"), keys, &mut found);
                        }
                    }
                    duplicates(list, &list_path, &["name"], &mut found);
                }
                "volumes" | "schedulingGates" => duplicates(list, &list_path, &["name"], &mut found),
                "topologySpreadConstraints" => {
                    duplicates(list, &list_path, &["topologyKey", "whenUnsatisfiable"], &mut found)
                }
                _ => {}
            }
        }
    }
    found.dedup();
    found
}

/// One message per key said more than once in the list at `path`; an entry without its key (a
/// port's protocol is TCP when left out) is left to validation.
fn duplicates(list: &Value, path: &str, keys: &[&str], found: &mut Vec<String>) {
    let mut seen = std::collections::BTreeMap::new();
    for entry in list.as_array().into_iter().flatten() {
        let rendered: Option<Vec<String>> = keys
            .iter()
            .map(|key| match (&entry[*key], *key) {
                (Value::Null, "protocol") => Some(format!("{key}={}", quoted("TCP"))),
                (Value::String(text), _) => Some(format!("{key}={}", quoted(text))),
                (Value::Number(number), _) => Some(format!("{key}={number}")),
                _ => None,
            })
            .collect();
        let Some(rendered) = rendered else { continue };
        let count = seen.entry(rendered.join(",")).or_insert(0);
        *count += 1;
        if *count == 2 {
            found.push(format!("{path}: duplicate entries for key [{}]", rendered.join(",")));
        }
    }
}

fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

fn round_trip<K: DeserializeOwned + Serialize>(object: &Value) -> Result<Value, Misfit> {
    let typed: K = serde_path_to_error::deserialize(object).map_err(|error| {
        let path = error
            .path()
            .iter()
            .map_while(|segment| match segment {
                serde_path_to_error::Segment::Map { key } => Some(Step::Field(key.clone())),
                serde_path_to_error::Segment::Seq { index } => Some(Step::Item(*index)),
                _ => None,
            })
            .collect();
        Misfit { path, why: in_go_words(error.into_inner().to_string()) }
    })?;
    serde_json::to_value(typed).map_err(|e| Misfit { path: Vec::new(), why: e.to_string() })
}

/// serde's words where Go's differ in a way a reader meets: a value that is not base64 (a
/// Secret's data), which base64 calls "Invalid symbol 33, offset 0.".
fn in_go_words(why: String) -> String {
    for prefix in ["Invalid symbol ", "Invalid last symbol "] {
        if let Some((_, offset)) = why.strip_prefix(prefix).and_then(|rest| rest.split_once(", offset ")) {
            return format!("illegal base64 data at input byte {}", offset.trim_end_matches('.'));
        }
    }
    why
}

fn first_missing(given: &Value, kept: &Value, path: &mut String) -> Option<String> {
    match (given, kept) {
        (Value::Object(given), Value::Object(kept)) => {
            let mut keys: Vec<&String> = given.keys().collect();
            keys.sort();
            for key in keys {
                let value = &given[key.as_str()];
                if value.is_null() {
                    continue; // an unset optional field, declared or not, is nothing to keep
                }
                let len = path.len();
                path.push('.');
                path.push_str(key);
                let found = match kept.get(key.as_str()) {
                    None => Some(path.clone()),
                    Some(kept_value) => first_missing(value, kept_value, path),
                };
                path.truncate(len);
                if found.is_some() {
                    return found;
                }
            }
            None
        }
        (Value::Array(given), Value::Array(kept)) => {
            for (index, (item, kept_item)) in given.iter().zip(kept).enumerate() {
                let len = path.len();
                match item["name"].as_str() {
                    Some(name) => path.push_str(&format!("[name=\"{name}\"]")),
                    None => path.push_str(&format!("[{index}]")),
                }
                let found = first_missing(item, kept_item, path);
                path.truncate(len);
                if found.is_some() {
                    return found;
                }
            }
            None
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::resources::{DEPLOYMENT, POD, SERVICE};
    use super::{duplicate_entries, undeclared_field};

    #[test]
    fn entries_sharing_their_key_are_named_as_server_side_apply_names_them() {
        let pod = json!({"spec": {
            "volumes": [{"name": "cache", "emptyDir": {}}, {"name": "cache", "emptyDir": {}}],
            "topologySpreadConstraints": [
                {"topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"},
                {"topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway"},
                {"topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule", "maxSkew": 2},
            ],
            "containers": [
                {"name": "web", "env": [{"name": "A"}, {"name": "A"}, {"name": "A"}],
                 "ports": [{"containerPort": 80}, {"containerPort": 80, "protocol": "TCP"}, {"containerPort": 80, "protocol": "UDP"}]},
                {"name": "web"},
                {"image": "unnamed"},
            ],
        }});
        // The testbed's words (v1.37); a port's protocol is TCP when left out, a key said three
        // times is named once, an entry without its key is left to validation.
        assert_eq!(
            duplicate_entries(POD, &pod),
            [
                ".spec.containers[name=\"web\"].env: duplicate entries for key [name=\"A\"]",
                ".spec.containers[name=\"web\"].ports: duplicate entries for key [containerPort=80,protocol=\"TCP\"]",
                ".spec.containers: duplicate entries for key [name=\"web\"]",
                ".spec.topologySpreadConstraints: duplicate entries for key [topologyKey=\"zone\",whenUnsatisfiable=\"DoNotSchedule\"]",
                ".spec.volumes: duplicate entries for key [name=\"cache\"]",
            ]
        );
        let service =
            json!({"spec": {"ports": [{"port": 80, "name": "a"}, {"port": 80, "name": "b", "protocol": "UDP"}]}});
        assert_eq!(duplicate_entries(SERVICE, &service), Vec::<String>::new(), "one port per protocol");
        let deployment = json!({"spec": {"template": {"spec": {"initContainers": [{"name": "a"}, {"name": "a"}]}}}});
        assert_eq!(
            duplicate_entries(DEPLOYMENT, &deployment),
            [".spec.template.spec.initContainers: duplicate entries for key [name=\"a\"]"]
        );
        // Finalizers are a set: each is its own key. Metadata sorts before the spec.
        let held = json!({"metadata": {"finalizers": ["example.com/a", "example.com/b", "example.com/a", "example.com/a"]},
            "spec": {"ports": [{"port": 80}, {"port": 80}]}});
        assert_eq!(
            duplicate_entries(SERVICE, &held),
            [
                ".metadata.finalizers: duplicate entries for key [=\"example.com/a\"]",
                ".spec.ports: duplicate entries for key [port=80,protocol=\"TCP\"]",
            ]
        );
    }

    #[test]
    fn a_field_the_schema_does_not_declare_is_named_by_its_path() {
        let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x", "creationTimestamp": null},
            "spec": {"selectr": {"app": "x"}, "ports": [{"port": 80}]}});
        assert_eq!(undeclared_field(SERVICE, &service).as_deref(), Some(".spec.selectr"));
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
            "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": {"metadata": {"labels": {"app": "x"}},
                "spec": {"containers": [{"name": "c", "image": "i", "bogus": 1}], "alsoBogus": true}}}});
        // Key order, depth first: `alsoBogus` sorts before `containers`, as the API server reports it.
        assert_eq!(undeclared_field(DEPLOYMENT, &deployment).as_deref(), Some(".spec.template.spec.alsoBogus"));
        let mut only_in_container = deployment.clone();
        only_in_container["spec"]["template"]["spec"].as_object_mut().unwrap().remove("alsoBogus");
        assert_eq!(
            undeclared_field(DEPLOYMENT, &only_in_container).as_deref(),
            Some(".spec.template.spec.containers[name=\"c\"].bogus")
        );
    }

    #[test]
    fn declared_fields_labels_and_nulls_pass() {
        let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x",
            "labels": {"any-key": "v"}, "annotations": {"a/b": "c"}, "creationTimestamp": null},
            "spec": {"selector": {"app": "x"}, "ports": [{"port": 80, "targetPort": "http"}], "type": "ClusterIP"}});
        assert_eq!(undeclared_field(SERVICE, &service), None);
    }
}
