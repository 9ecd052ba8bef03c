//! How server-side apply reads the types of an applied configuration, before the API server
//! converts it to the kind: structured-merge-diff refuses a value of the wrong kind of scalar,
//! or a scalar where a map or a list belongs, naming its path in its own notation
//! (`.spec.template.spec.containers[name="web"].env[name="PORT"].value: expected string, got
//! &value.valueUnstructured{Value:8080}`); its schema knows numbers, not integers, so a whole
//! number written as a float (`replicas: 2.0`) is taken as the integer, and only the conversion
//! refuses another one (`cannot convert float64 to int32`).

use serde_json::Value;

use super::resources::Resource;
use super::schema::{self, Step};

/// Why server-side apply refuses an applied configuration's types.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    /// structured-merge-diff's words, with the path (a "failed to create typed patch object").
    Typed(String),
    /// The conversion to the kind's types failed ("failed to convert new object").
    Unconvertible(String),
}

/// Makes the whole floats of `object` integers, then says why it does not fit its kind's types,
/// if it does not.
pub fn check(resource: Resource, object: &mut Value) -> Option<Refusal> {
    whole_floats_to_integers(object);
    let misfit = loop {
        let misfit = schema::misfit(resource, object)?;
        // structured-merge-diff takes `null` for any type, and Go's decoding then makes it the
        // zero value: a label `team: null` is stored as `team: ""`. Only types that cannot be
        // absent (a string map's values) meet it here; each such `null` is made "" in turn.
        match value_at_mut(object, &misfit.path) {
            Some(found @ Value::Null) if matches!(expectation(&misfit.why), Expected::String) => {
                *found = Value::String(String::new());
            }
            _ => break misfit,
        }
    };
    let Some(found) = value_at(object, &misfit.path) else {
        return Some(Refusal::Unconvertible(misfit.why));
    };
    let problem = match (expectation(&misfit.why), found) {
        // Whole ones are integers by now: only the conversion to the kind refuses the rest.
        (Expected::Integer(bits), Value::Number(_)) => {
            return Some(Refusal::Unconvertible(format!("cannot convert float64 to int{bits}")));
        }
        (Expected::String, found) => {
            format!("expected string, got &value.valueUnstructured{{Value:{}}}", go_syntax(found))
        }
        (Expected::Integer(_) | Expected::Float, found) => {
            format!("expected numeric (int or float), got {}", go_type(found))
        }
        (Expected::Boolean, found) => format!("expected boolean, got &{{{}}}", go_value(found)),
        (Expected::List, found) => format!("expected list, got &{{{}}}", go_value(found)),
        (Expected::Map, found) if !found.is_object() => format!("expected map, got &{{{}}}", go_value(found)),
        // The unstructured converter decodes bytes as JSON, and says so.
        _ if misfit.why.starts_with("illegal base64") => {
            return Some(Refusal::Unconvertible(format!("error decoding from json: {}", misfit.why)));
        }
        _ => return Some(Refusal::Unconvertible(misfit.why)),
    };
    Some(Refusal::Typed(format!("{}: {problem}", path_text(resource, object, &misfit.path))))
}

/// structured-merge-diff knows numbers, not integers, and Go writes a whole float64 without its
/// fraction: the API server reads `replicas: 2.0` as 2, wherever a number stands.
fn whole_floats_to_integers(value: &mut Value) {
    match value {
        Value::Number(number) if number.is_f64() => {
            let float = number.as_f64().unwrap_or(f64::NAN);
            if float.fract() == 0.0 && float.abs() < 2f64.powi(63) {
                *value = Value::from(float as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_floats_to_integers),
        Value::Object(fields) => fields.values_mut().for_each(whole_floats_to_integers),
        _ => {}
    }
}

/// What serde expected where the value did not fit (`invalid type: ..., expected a string`).
#[derive(Debug, PartialEq)]
enum Expected {
    String,
    Integer(u32),
    Float,
    Boolean,
    List,
    Map,
    Other,
}

fn expectation(why: &str) -> Expected {
    let Some((_, expected)) = why.rsplit_once(", expected ") else { return Expected::Other };
    if !why.starts_with("invalid type: ") {
        return Expected::Other;
    }
    match expected {
        "a string" => Expected::String,
        "a boolean" => Expected::Boolean,
        "a sequence" => Expected::List,
        "f32" | "f64" => Expected::Float,
        "a map" => Expected::Map,
        number if number.len() > 1 && matches!(&number[..1], "i" | "u") => {
            number[1..].parse().map_or(Expected::Other, Expected::Integer)
        }
        // k8s-openapi names its structs (`ResourceRequirements`): an object belongs there.
        name if name.starts_with(|c: char| c.is_ascii_uppercase()) => Expected::Map,
        _ => Expected::Other,
    }
}

fn value_at<'a>(object: &'a Value, path: &[Step]) -> Option<&'a Value> {
    path.iter().try_fold(object, |value, step| match step {
        Step::Field(name) => value.get(name.as_str()),
        Step::Item(index) => value.get(*index),
    })
}

fn value_at_mut<'a>(object: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(object, |value, step| match step {
        Step::Field(name) => value.get_mut(name.as_str()),
        Step::Item(index) => value.get_mut(*index),
    })
}

/// The path in structured-merge-diff's notation: `.field`, and an item of an associative list by
/// its keys (`[name="web"]`, `[containerPort=80,protocol="TCP"]`), of another list by its index.
fn path_text(resource: Resource, object: &Value, path: &[Step]) -> String {
    let mut text = String::new();
    let mut value = object;
    let mut in_container = false;
    let mut field = "";
    for step in path {
        match step {
            Step::Field(name) => {
                text.push('.');
                text.push_str(name);
                field = name;
                value = &value[name.as_str()];
            }
            Step::Item(index) => {
                let item = &value[*index];
                // A set of scalars (`+listType=set`): an item is named by its value.
                if field == "finalizers" || (field == "addresses" && resource.kind == "EndpointSlice") {
                    text.push_str(&format!("[={item}]"));
                    value = item;
                    continue;
                }
                let keys: &[&str] = match field {
                    "containers"
                    | "initContainers"
                    | "ephemeralContainers"
                    | "env"
                    | "volumes"
                    | "imagePullSecrets" => &["name"],
                    "ports" if in_container => &["containerPort", "protocol"],
                    "ports" if resource.kind == "Service" => &["port", "protocol"],
                    "volumeMounts" => &["mountPath"],
                    _ => &[],
                };
                let rendered: Option<Vec<String>> = keys
                    .iter()
                    .map(|key| match (&item[*key], *key) {
                        (Value::Null, "protocol") => Some(format!("{key}=\"TCP\"")),
                        (Value::Null, _) => None,
                        (found, _) => Some(format!("{key}={found}")),
                    })
                    .collect();
                match rendered.filter(|r| !r.is_empty()) {
                    Some(rendered) => text.push_str(&format!("[{}]", rendered.join(","))),
                    None => text.push_str(&format!("[{index}]")),
                }
                in_container |= matches!(field, "containers" | "initContainers" | "ephemeralContainers");
                value = item;
            }
        }
    }
    text
}

/// The value as Go's `%#v` prints it once decoded from JSON (`8080`, `"x"`,
/// `map[string]interface {}{"a":"b"}`).
fn go_syntax(value: &Value) -> String {
    match value {
        Value::Null => "interface {}(nil)".to_string(),
        Value::String(text) => format!("{text:?}"),
        Value::Array(items) => {
            format!("[]interface {{}}{{{}}}", items.iter().map(go_syntax).collect::<Vec<_>>().join(", "))
        }
        Value::Object(fields) => {
            let mut fields: Vec<_> = fields.iter().collect();
            fields.sort_by_key(|(key, _)| *key);
            let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k:?}:{}", go_syntax(v))).collect();
            format!("map[string]interface {{}}{{{}}}", fields.join(", "))
        }
        other => other.to_string(),
    }
}

/// The value as Go's `%v` prints it (`disk`, `map[a:b]`, `[a b]`).
fn go_value(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".to_string(),
        Value::String(text) => text.clone(),
        Value::Array(items) => format!("[{}]", items.iter().map(go_value).collect::<Vec<_>>().join(" ")),
        Value::Object(fields) => {
            let mut fields: Vec<_> = fields.iter().collect();
            fields.sort_by_key(|(key, _)| *key);
            let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}:{}", go_value(v))).collect();
            format!("map[{}]", fields.join(" "))
        }
        other => other.to_string(),
    }
}

/// The Go type of a value decoded from JSON, as `%T` names it.
fn go_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(number) if number.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::resources::{self, DEPLOYMENT, SERVICE};
    use super::{Refusal, check};

    fn deployment(replicas: serde_json::Value, container: serde_json::Value) -> serde_json::Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {
            "replicas": replicas, "selector": {"matchLabels": {"app": "d"}},
            "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [container]}}}})
    }

    #[test]
    fn a_null_string_map_value_is_the_empty_string_as_the_api_server_stores_it() {
        let mut service = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "labels": {"team": null, "app": "web"}},
            "spec": {"selector": {"app": null}, "ports": [{"port": 80}]}});
        assert!(check(SERVICE, &mut service).is_none());
        assert_eq!(service["metadata"]["labels"], json!({"team": "", "app": "web"}));
        assert_eq!(service["spec"]["selector"], json!({"app": ""}));
    }

    #[test]
    fn a_value_of_the_wrong_type_is_named_in_structured_merge_diffs_words() {
        // The testbed's words (v1.37) for each.
        let typed = |mut object: serde_json::Value, resource| match check(resource, &mut object) {
            Some(Refusal::Typed(problem)) => problem,
            other => panic!("{other:?}"),
        };
        let web = |extra: serde_json::Value| {
            let mut container = json!({"name": "web", "image": "nginx"});
            container.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            deployment(json!(1), container)
        };
        assert_eq!(
            typed(web(json!({"env": [{"name": "PORT", "value": 8080}]})), DEPLOYMENT),
            ".spec.template.spec.containers[name=\"web\"].env[name=\"PORT\"].value: expected string, got &value.valueUnstructured{Value:8080}"
        );
        assert_eq!(
            typed(web(json!({"ports": [{"containerPort": "80"}]})), DEPLOYMENT),
            ".spec.template.spec.containers[name=\"web\"].ports[containerPort=\"80\",protocol=\"TCP\"].containerPort: expected numeric (int or float), got string"
        );
        assert_eq!(
            typed(web(json!({"args": ["--port", 8080]})), DEPLOYMENT),
            ".spec.template.spec.containers[name=\"web\"].args[1]: expected string, got &value.valueUnstructured{Value:8080}"
        );
        assert_eq!(
            typed(web(json!({"workingDir": {"a": "b"}})), DEPLOYMENT),
            ".spec.template.spec.containers[name=\"web\"].workingDir: expected string, got &value.valueUnstructured{Value:map[string]interface {}{\"a\":\"b\"}}"
        );
        assert_eq!(
            typed(web(json!({"args": "run"})), DEPLOYMENT),
            ".spec.template.spec.containers[name=\"web\"].args: expected list, got &{run}"
        );
        assert_eq!(
            typed(deployment(json!(true), json!({"name": "web"})), DEPLOYMENT),
            ".spec.replicas: expected numeric (int or float), got bool"
        );
        let mut host = deployment(json!(1), json!({"name": "web"}));
        host["spec"]["template"]["spec"]["hostNetwork"] = json!("true");
        assert_eq!(typed(host.clone(), DEPLOYMENT), ".spec.template.spec.hostNetwork: expected boolean, got &{true}");
        host["spec"]["template"]["spec"]["hostNetwork"] = json!(false);
        host["spec"]["template"]["spec"]["nodeSelector"] = json!("disk");
        assert_eq!(typed(host, DEPLOYMENT), ".spec.template.spec.nodeSelector: expected map, got &{disk}");
        let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"ports": [{"port": "80"}]}});
        assert_eq!(
            typed(service, SERVICE),
            ".spec.ports[port=\"80\",protocol=\"TCP\"].port: expected numeric (int or float), got string"
        );
        // A set of scalars names its item by value; an atomic list (a slice's ports) by index.
        let slice = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "s"},
            "addressType": "IPv4", "endpoints": [{"addresses": [1]}], "ports": [{"port": 80}]});
        assert_eq!(
            typed(slice.clone(), super::super::resources::ENDPOINT_SLICE),
            ".endpoints[0].addresses[=1]: expected string, got &value.valueUnstructured{Value:1}"
        );
        let mut ports = slice;
        ports["endpoints"][0]["addresses"] = json!(["10.1.1.1"]);
        ports["ports"][0]["port"] = json!("80");
        assert_eq!(
            typed(ports, super::super::resources::ENDPOINT_SLICE),
            ".ports[0].port: expected numeric (int or float), got string"
        );
        let config =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"port": 8080}});
        let config_map = resources::by_kind("v1", "ConfigMap").unwrap();
        assert_eq!(typed(config, config_map), ".data.port: expected string, got &value.valueUnstructured{Value:8080}");
    }

    #[test]
    fn a_whole_float_is_an_integer_and_another_float_does_not_convert() {
        let mut whole = deployment(json!(2.0), json!({"name": "web", "image": "nginx"}));
        whole["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = json!(30.0);
        assert_eq!(check(DEPLOYMENT, &mut whole), None);
        assert_eq!(whole["spec"]["replicas"], json!(2));
        assert!(whole["spec"]["replicas"].is_i64());
        assert_eq!(whole["spec"]["template"]["spec"]["terminationGracePeriodSeconds"], json!(30));
        let mut half = deployment(json!(1.5), json!({"name": "web", "image": "nginx"}));
        assert_eq!(
            check(DEPLOYMENT, &mut half),
            Some(Refusal::Unconvertible("cannot convert float64 to int32".to_string()))
        );
        // Every whole float in one walk, however many: a list of them, a float in an object the
        // schema does not type.
        let ports: Vec<_> = (1..=5000).map(|port| json!({"containerPort": port as f64})).collect();
        let mut many = deployment(json!(1), json!({"name": "web", "image": "nginx", "ports": ports}));
        many["metadata"]["annotations"] = json!({"note": "2.0"});
        assert_eq!(check(DEPLOYMENT, &mut many), None);
        assert_eq!(many["spec"]["template"]["spec"]["containers"][0]["ports"][4999]["containerPort"], json!(5000));
        assert_eq!(many["metadata"]["annotations"]["note"], json!("2.0"), "text stays text");
        let mut grace = deployment(json!(1), json!({"name": "web", "image": "nginx"}));
        grace["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = json!(2.5);
        assert_eq!(
            check(DEPLOYMENT, &mut grace),
            Some(Refusal::Unconvertible("cannot convert float64 to int64".to_string()))
        );
    }
}
