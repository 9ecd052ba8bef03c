//! The API server's validation that scenarios meet, in its own words: object names, label keys
//! and values, Service selectors, and the apps/v1 controllers' selector rules (required, not
//! empty, matching the pod template, immutable once created).

use serde_json::Value;

use super::error::{ApiError, invalid};
use super::resources::{self, Resource};
use crate::model::annotations::{POD_DELETION_COST, TOTAL_LIMIT, is_deletion_cost};

const MISMATCH: &str = "`selector` does not match template `labels`";

/// Validation of a new object.
pub fn create(resource: Resource, object: &Value) -> Result<(), ApiError> {
    let mut causes = common(resource, object);
    causes.extend(controller_selector(resource, object));
    finish(resource, object, causes)
}

/// Validation of a change: everything a new object must satisfy, and what may not change.
pub fn update(resource: Resource, current: &Value, object: &Value) -> Result<(), ApiError> {
    let mut causes = common(resource, object);
    causes.extend(controller_selector(resource, object));
    if is_apps_controller(resource) && current["spec"]["selector"] != object["spec"]["selector"] {
        causes.push(format!(
            "spec.selector: Invalid value: {}: field is immutable",
            compact(&object["spec"]["selector"])
        ));
    }
    finish(resource, object, causes)
}

fn finish(resource: Resource, object: &Value, causes: Vec<String>) -> Result<(), ApiError> {
    if causes.is_empty() {
        return Ok(());
    }
    Err(invalid(resource, object["metadata"]["name"].as_str().unwrap_or_default(), &causes))
}

fn common(resource: Resource, object: &Value) -> Vec<String> {
    let mut causes = Vec::new();
    if let Some(name) = object["metadata"]["name"].as_str()
        && let Some(problem) = name_problem(resource, name)
    {
        causes.push(format!("metadata.name: Invalid value: \"{name}\": {problem}"));
    }
    causes.extend(label_map("metadata.labels", &object["metadata"]["labels"]));
    causes.extend(annotations(resource, &object["metadata"]["annotations"]));
    if resource == resources::SERVICE {
        causes.extend(label_map("spec.selector", &object["spec"]["selector"]));
    }
    if is_apps_controller(resource) {
        causes.extend(label_map("spec.template.metadata.labels", &object["spec"]["template"]["metadata"]["labels"]));
    }
    causes
}

fn is_apps_controller(resource: Resource) -> bool {
    resource == resources::DEPLOYMENT || resource == resources::REPLICA_SET || resource == resources::DAEMON_SET
}

/// The selector rules of Deployments, ReplicaSets and DaemonSets.
fn controller_selector(resource: Resource, object: &Value) -> Vec<String> {
    if !is_apps_controller(resource) {
        return Vec::new();
    }
    let selector = &object["spec"]["selector"];
    let template_labels = &object["spec"]["template"]["metadata"]["labels"];
    let mismatch = || format!("spec.template.metadata.labels: Invalid value: {}: {MISMATCH}", compact(template_labels));
    let daemon_set = resource == resources::DAEMON_SET;
    if selector.is_null() {
        // A DaemonSet's missing selector matches nothing, so its template fails the match.
        return vec![if daemon_set { mismatch() } else { "spec.selector: Required value".to_string() }];
    }
    let match_labels = selector["matchLabels"].as_object().filter(|m| !m.is_empty());
    let expressions = selector["matchExpressions"].as_array().filter(|e| !e.is_empty());
    if match_labels.is_none() && expressions.is_none() {
        // ReplicaSets share the Deployment's wording.
        return vec![format!(
            "spec.selector: Invalid value: {{}}: empty selector is invalid for {}",
            if daemon_set { "daemonset" } else { "deployment" }
        )];
    }
    if selects(selector, template_labels) { Vec::new() } else { vec![mismatch()] }
}

/// Whether a LabelSelector (matchLabels and matchExpressions) selects these labels.
pub fn selects(selector: &Value, labels: &Value) -> bool {
    let label = |key: &str| labels.get(key).and_then(Value::as_str);
    let by_labels = selector["matchLabels"]
        .as_object()
        .is_none_or(|wanted| wanted.iter().all(|(k, v)| label(k).is_some() && label(k) == v.as_str()));
    let by_expressions = selector["matchExpressions"].as_array().is_none_or(|expressions| {
        expressions.iter().all(|e| {
            let key = e["key"].as_str().unwrap_or_default();
            let values: Vec<&str> = e["values"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            match e["operator"].as_str() {
                Some("In") => label(key).is_some_and(|v| values.contains(&v)),
                Some("NotIn") => label(key).is_none_or(|v| !values.contains(&v)),
                Some("Exists") => label(key).is_some(),
                Some("DoesNotExist") => label(key).is_none(),
                _ => false,
            }
        })
    });
    by_labels && by_expressions
}

/// JSON as the API server prints an invalid value (compact, keys sorted).
fn compact(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

const SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS_LABEL: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS_1035: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const NAME_PART: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

fn name_problem(resource: Resource, name: &str) -> Option<&'static str> {
    if resource == resources::SERVICE {
        return (!is_dns_1035(name)).then_some(DNS_1035);
    }
    if resource == resources::NAMESPACE {
        return (!is_dns_label(name)).then_some(DNS_LABEL);
    }
    (!is_subdomain(name)).then_some(SUBDOMAIN)
}

fn label_map(path: &str, labels: &Value) -> Vec<String> {
    let Some(labels) = labels.as_object() else { return Vec::new() };
    let mut causes = Vec::new();
    for (key, value) in labels {
        if let Some(problem) = label_key_problem(key) {
            causes.push(format!("{path}: Invalid value: \"{key}\": {problem}"));
        }
        match value.as_str() {
            Some(value) if !is_label_value(value) => {
                causes.push(format!("{path}: Invalid value: \"{value}\": {LABEL_VALUE}"));
            }
            _ => {}
        }
    }
    causes
}

/// Keys are label keys; all keys and values together fit in 256 KiB; a pod's deletion cost is an
/// int32.
fn annotations(resource: Resource, annotations: &Value) -> Vec<String> {
    let Some(annotations) = annotations.as_object() else { return Vec::new() };
    let mut causes = Vec::new();
    let mut total = 0;
    for (key, value) in annotations {
        if let Some(problem) = label_key_problem(key) {
            causes.push(format!("metadata.annotations: Invalid value: \"{key}\": {problem}"));
        }
        total += key.len() + value.as_str().map_or(0, str::len);
    }
    if total > TOTAL_LIMIT {
        causes.push(format!("metadata.annotations: Too long: may not be more than {TOTAL_LIMIT} bytes"));
    }
    if resource == resources::POD
        && let Some(cost) = annotations.get(POD_DELETION_COST).and_then(Value::as_str)
        && !is_deletion_cost(cost)
    {
        causes.push(format!(
            "metadata.annotations[{POD_DELETION_COST}]: Invalid value: \"{cost}\": must be a 32bit integer"
        ));
    }
    causes
}

fn label_key_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if name.contains('/') {
        return Some(
            "a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            .to_string());
    }
    if let Some(prefix) = prefix
        && (prefix.is_empty() || !is_subdomain(prefix))
    {
        return Some(format!("prefix part {SUBDOMAIN}"));
    }
    if name.is_empty() {
        return Some("name part must be non-empty".into());
    }
    if name.len() > 63 {
        return Some("name part must be no more than 63 characters".into());
    }
    (!is_label_value(name)).then(|| NAME_PART.to_string())
}

fn is_label_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    value.len() <= 63
        && (bytes.is_empty()
            || (bytes[0].is_ascii_alphanumeric()
                && bytes[bytes.len() - 1].is_ascii_alphanumeric()
                && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))))
}

fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

fn is_dns_1035(name: &str) -> bool {
    is_dns_label(name) && name.as_bytes()[0].is_ascii_lowercase()
}

fn is_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_dns_label)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment(selector: Value, labels: Value) -> Value {
        json!({"metadata": {"name": "rng"}, "spec": {"selector": selector, "template": {"metadata": {"labels": labels}}}})
    }

    #[test]
    fn a_template_its_selector_misses_is_refused_in_the_api_servers_words() {
        let error =
            create(resources::DEPLOYMENT, &deployment(json!({"matchLabels": {"app": "rng"}}), json!({"app": "other"})))
                .unwrap_err();
        assert_eq!(error.code, 422);
        assert_eq!(
            error.message,
            "Deployment.apps \"rng\" is invalid: spec.template.metadata.labels: Invalid value: {\"app\":\"other\"}: `selector` does not match template `labels`"
        );
        let expressions = json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["rng", "web"]}]});
        assert!(create(resources::DEPLOYMENT, &deployment(expressions, json!({"app": "web"}))).is_ok());
    }

    #[test]
    fn a_controllers_selector_is_immutable() {
        let current = deployment(json!({"matchLabels": {"app": "rng"}}), json!({"app": "rng", "x": "y"}));
        let changed = deployment(json!({"matchLabels": {"app": "rng", "x": "y"}}), json!({"app": "rng", "x": "y"}));
        assert_eq!(
            update(resources::DEPLOYMENT, &current, &changed).unwrap_err().message,
            "Deployment.apps \"rng\" is invalid: spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"rng\",\"x\":\"y\"}}: field is immutable"
        );
    }

    #[test]
    fn names_and_labels_follow_the_api_servers_syntax() {
        let bad_name = json!({"metadata": {"name": "Bad"}});
        assert!(
            create(resources::DEPLOYMENT, &bad_name).unwrap_err().message.contains("a lowercase RFC 1123 subdomain")
        );
        let bad_value = json!({"metadata": {"name": "rng", "labels": {"ok": "bad value!"}}});
        assert!(create(resources::POD, &bad_value).unwrap_err().message.starts_with(
            "Pod \"rng\" is invalid: metadata.labels: Invalid value: \"bad value!\": a valid label must be an empty string"
        ));
        let bad_selector = json!({"metadata": {"name": "rng"}, "spec": {"selector": {"app": "-x"}}});
        assert!(
            create(resources::SERVICE, &bad_selector)
                .unwrap_err()
                .message
                .contains("spec.selector: Invalid value: \"-x\"")
        );
        assert!(
            create(resources::POD, &json!({"metadata": {"name": "p", "labels": {"example.com/app": "x"}}})).is_ok()
        );
    }

    #[test]
    fn annotations_are_refused_in_the_api_servers_words() {
        let pod = |annotations: Value| json!({"metadata": {"name": "p", "annotations": annotations}});
        let refused = |resource, annotations| create(resource, &pod(annotations)).unwrap_err().message;
        assert_eq!(
            refused(resources::POD, json!({"controller.kubernetes.io/pod-deletion-cost": "007"})),
            "Pod \"p\" is invalid: metadata.annotations[controller.kubernetes.io/pod-deletion-cost]: Invalid value: \
             \"007\": must be a 32bit integer"
        );
        // Only a pod's cost is judged.
        assert!(
            create(resources::SERVICE, &pod(json!({"controller.kubernetes.io/pod-deletion-cost": "high"}))).is_ok()
        );
        assert!(
            create(
                resources::POD,
                &pod(json!({"controller.kubernetes.io/pod-deletion-cost": "-0", "note": "any text"}))
            )
            .is_ok()
        );
        assert!(refused(resources::POD, json!({"bad key": "1"})).contains(
            "metadata.annotations: Invalid value: \"bad key\": name part must consist of alphanumeric characters"
        ));
        let big = "x".repeat(TOTAL_LIMIT);
        assert!(
            refused(resources::POD, json!({ "big": big }))
                .ends_with("metadata.annotations: Too long: may not be more than 262144 bytes")
        );
    }
}
