//! A HorizontalPodAutoscaler's spec (autoscaling/v2), as upstream's
//! validateHorizontalPodAutoscalerSpec judges it once the defaults are in (see `defaults`), in its
//! order: the replica bounds, the target reference, the metrics, the scaling behavior. The
//! cluster's HPAScaleToZero gate is on (Kubernetes 1.37), so minReplicas may be 0 when an Object
//! or External metric could wake the target.

use serde_json::Value;

use super::{path_segment_problems, unsupported};
use crate::cluster::sim::quantity::Quantity;

/// The longest stabilization window and policy period the API takes (one hour, 30 minutes).
const MAX_STABILIZATION_WINDOW_SECONDS: i64 = 3600;
const MAX_PERIOD_SECONDS: i64 = 1800;

const METRIC_TYPES: &[&str] = &["ContainerResource", "External", "Object", "Pods", "Resource"];

/// `current`: the autoscaler as stored, on a change.
pub(super) fn spec(object: &Value, current: Option<&Value>) -> Vec<String> {
    let spec = &object["spec"];
    let mut causes = Vec::new();
    // The bounds are judged by the API's declarative validation, whose errors come after the
    // rest, in its own words.
    let mut bounds = Vec::new();
    let min = spec["minReplicas"].as_i64();
    if let Some(min) = min.filter(|min| *min < 0) {
        bounds.push(format!("spec.minReplicas: Invalid value: {min}: must be greater than or equal to 0"));
    }
    let max = spec["maxReplicas"].as_i64().unwrap_or(0);
    if max == 0 {
        bounds.push("spec.maxReplicas: Required value".to_string());
    } else if max < 0 {
        bounds.push(format!("spec.maxReplicas: Invalid value: {max}: must be greater than or equal to 1"));
    }
    if min.is_some_and(|min| max < min) {
        causes.push(format!("spec.maxReplicas: Invalid value: {max}: must be greater than or equal to `minReplicas`"));
    }
    // A change that keeps the target's kind and apiVersion is not held to the apiVersion rule
    // (one stored before the rule was is left alone).
    let target = &spec["scaleTargetRef"];
    let kept = current.is_some_and(|current| {
        let stored = &current["spec"]["scaleTargetRef"];
        stored["apiVersion"] == target["apiVersion"] && stored["kind"] == target["kind"]
    });
    let empty_group = target["kind"] == "ReplicationController";
    causes.extend(reference(target, "spec.scaleTargetRef", !kept, empty_group));
    causes.extend(metrics(spec["metrics"].as_array().map(Vec::as_slice).unwrap_or_default(), min));
    for direction in ["scaleUp", "scaleDown"] {
        causes.extend(scaling_rules(&spec["behavior"][direction], &format!("spec.behavior.{direction}")));
    }
    causes.extend(bounds);
    causes
}

/// ValidateCrossVersionObjectReference: kind and name are path segments, and the apiVersion
/// names a group (`check_version`: unless the change keeps it).
fn reference(reference: &Value, path: &str, check_version: bool, empty_group: bool) -> Vec<String> {
    let mut causes = Vec::new();
    for field in ["kind", "name"] {
        match reference[field].as_str().unwrap_or_default() {
            "" => causes.push(format!("{path}.{field}: Required value")),
            text => causes.extend(
                path_segment_problems(text)
                    .into_iter()
                    .map(|problem| format!("{path}.{field}: Invalid value: \"{text}\": {problem}")),
            ),
        }
    }
    let version = reference["apiVersion"].as_str().unwrap_or_default();
    if check_version && let Some(problem) = api_version_problem(version, empty_group) {
        causes.push(format!("{path}.apiVersion: Invalid value: \"{version}\": {problem}"));
    }
    causes
}

/// schema.ParseGroupVersion, then the group rule.
fn api_version_problem(version: &str, empty_group: bool) -> Option<String> {
    let group = match version.matches('/').count() {
        _ if version.is_empty() || version == "/" => "",
        0 => "",
        1 => version.split('/').next().unwrap_or_default(),
        _ => return Some(format!("unexpected GroupVersion string: {version}")),
    };
    (group.is_empty() && !empty_group).then(|| "apiVersion must specify API group".to_string())
}

fn metrics(metrics: &[Value], min_replicas: Option<i64>) -> Vec<String> {
    let mut causes = Vec::new();
    for (i, metric) in metrics.iter().enumerate() {
        causes.extend(metric_spec(metric, &format!("spec.metrics[{i}]")));
    }
    let wakes = metrics.iter().any(|m| m["type"] == "Object" || m["type"] == "External");
    if min_replicas == Some(0) && !wakes {
        causes.push(
            "spec.metrics: Forbidden: must specify at least one Object or External metric to support scaling to zero replicas"
                .to_string(),
        );
    }
    causes
}

/// validateMetricSpec: a known type, the source of that type and no other.
fn metric_spec(metric: &Value, path: &str) -> Vec<String> {
    let mut causes = Vec::new();
    let kind = metric["type"].as_str().unwrap_or_default();
    if kind.is_empty() {
        causes.push(format!("{path}.type: Required value: must specify a metric source type"));
    }
    if !METRIC_TYPES.contains(&kind) {
        causes.push(unsupported(&format!("{path}.type"), kind, METRIC_TYPES));
    }
    // Upstream's order of sources; only the first one present is looked into.
    let sources = ["object", "external", "pods", "resource", "containerResource"];
    let present: Vec<&str> = sources.into_iter().filter(|source| !metric[*source].is_null()).collect();
    if let Some(first) = present.first() {
        let source = &metric[*first];
        let path = format!("{path}.{first}");
        causes.extend(match *first {
            "object" => object_source(source, &path),
            "external" => external_source(source, &path),
            "pods" => pods_source(source, &path),
            "resource" => resource_source(source, &path),
            _ => container_resource_source(source, &path),
        });
    }
    let expected = match kind {
        "Object" => "object",
        "Pods" => "pods",
        "Resource" => "resource",
        "External" => "external",
        "ContainerResource" => "containerResource",
        _ => "",
    };
    if expected.is_empty() {
        causes.push(unsupported(&format!("{path}.type"), kind, METRIC_TYPES));
    } else if metric[expected].is_null() {
        causes
            .push(format!("{path}.{expected}: Required value: must populate information for the given metric source"));
    }
    if present.len() != 1 {
        // Upstream walks a Go set here: its order is Go's map order. Sorted, it is at least
        // the same order on every run.
        let mut others: Vec<&str> = present.into_iter().filter(|source| *source != expected).collect();
        others.sort_unstable();
        for other in others {
            causes.push(format!("{path}.{other}: Forbidden: must populate the given metric source only"));
        }
    }
    causes
}

fn object_source(source: &Value, path: &str) -> Vec<String> {
    let mut causes = reference(&source["describedObject"], &format!("{path}.describedObject"), true, true);
    causes.extend(metric_identifier(&source["metric"], &format!("{path}.metric")));
    causes.extend(metric_target(&source["target"], &format!("{path}.target")));
    if source["target"]["value"].is_null() && source["target"]["averageValue"].is_null() {
        causes.push(format!(
            "{path}.target.averageValue: Required value: must set either a target value or averageValue"
        ));
    }
    causes
}

fn external_source(source: &Value, path: &str) -> Vec<String> {
    let mut causes = metric_identifier(&source["metric"], &format!("{path}.metric"));
    causes.extend(metric_target(&source["target"], &format!("{path}.target")));
    let target = &source["target"];
    match (target["value"].is_null(), target["averageValue"].is_null()) {
        (true, true) => causes.push(format!(
            "{path}.target.averageValue: Required value: must set either a target value for metric or a per-pod target"
        )),
        (false, false) => causes.push(format!(
            "{path}.target.value: Forbidden: may not set both a target value for metric and a per-pod target"
        )),
        _ => {}
    }
    causes
}

fn pods_source(source: &Value, path: &str) -> Vec<String> {
    let mut causes = metric_identifier(&source["metric"], &format!("{path}.metric"));
    causes.extend(metric_target(&source["target"], &format!("{path}.target")));
    if source["target"]["averageValue"].is_null() {
        causes.push(format!("{path}.target.averageValue: Required value: must specify a positive target averageValue"));
    }
    causes
}

fn resource_source(source: &Value, path: &str) -> Vec<String> {
    let mut causes = Vec::new();
    if source["name"].as_str().unwrap_or_default().is_empty() {
        causes.push(format!("{path}.name: Required value: must specify a resource name"));
    }
    causes.extend(metric_target(&source["target"], &format!("{path}.target")));
    causes.extend(raw_or_utilization(&source["target"], path));
    causes
}

fn container_resource_source(source: &Value, path: &str) -> Vec<String> {
    let mut causes = Vec::new();
    if source["name"].as_str().unwrap_or_default().is_empty() {
        causes.push(format!("{path}.name: Required value: must specify a resource name"));
    }
    match source["container"].as_str().unwrap_or_default() {
        "" => causes.push(format!("{path}.container: Required value: must specify a container")),
        container => causes.extend(super::dns_label_causes(&format!("{path}.container"), container)),
    }
    causes.extend(metric_target(&source["target"], &format!("{path}.target")));
    causes.extend(raw_or_utilization(&source["target"], path));
    causes
}

/// A resource metric's target is a raw value or a utilization, one of them.
fn raw_or_utilization(target: &Value, path: &str) -> Option<String> {
    match (target["averageUtilization"].is_null(), target["averageValue"].is_null()) {
        (true, true) => Some(format!(
            "{path}.target.averageUtilization: Required value: must set either a target raw value or a target utilization"
        )),
        (false, false) => Some(format!(
            "{path}.target.averageValue: Forbidden: may not set both a target raw value and a target utilization"
        )),
        _ => None,
    }
}

fn metric_target(target: &Value, path: &str) -> Vec<String> {
    let mut causes = Vec::new();
    let kind = target["type"].as_str().unwrap_or_default();
    if kind.is_empty() {
        causes.push(format!("{path}.type: Required value: must specify a metric target type"));
    }
    if !matches!(kind, "Utilization" | "Value" | "AverageValue") {
        causes.push(format!(
            "{path}.type: Invalid value: \"{kind}\": must be either Utilization, Value, or AverageValue"
        ));
    }
    for field in ["value", "averageValue"] {
        if let Some(quantity) = Quantity::from_json(&target[field]).filter(|q| !q.is_positive()) {
            causes.push(format!("{path}.{field}: Invalid value: \"{quantity}\": must be positive"));
        }
    }
    if let Some(utilization) = target["averageUtilization"].as_i64().filter(|u| *u < 1) {
        causes.push(format!("{path}.averageUtilization: Invalid value: {utilization}: must be greater than 0"));
    }
    causes
}

fn metric_identifier(identifier: &Value, path: &str) -> Vec<String> {
    match identifier["name"].as_str().unwrap_or_default() {
        "" => vec![format!("{path}.name: Required value: must specify a metric name")],
        name => path_segment_problems(name)
            .into_iter()
            .map(|problem| format!("{path}.name: Invalid value: \"{name}\": {problem}"))
            .collect(),
    }
}

/// validateScalingRules, for the rules the defaults filled in.
fn scaling_rules(rules: &Value, path: &str) -> Vec<String> {
    let mut causes = Vec::new();
    if rules.is_null() {
        return causes;
    }
    if let Some(window) = rules["stabilizationWindowSeconds"].as_i64() {
        if window < 0 {
            causes.push(format!(
                "{path}.stabilizationWindowSeconds: Invalid value: {window}: must be greater than or equal to zero"
            ));
        }
        if window > MAX_STABILIZATION_WINDOW_SECONDS {
            causes.push(format!(
                "{path}.stabilizationWindowSeconds: Invalid value: {window}: must be less than or equal to {MAX_STABILIZATION_WINDOW_SECONDS}"
            ));
        }
    }
    if let Some(select) = rules["selectPolicy"].as_str().filter(|s| !matches!(*s, "Max" | "Min" | "Disabled")) {
        causes.push(unsupported(&format!("{path}.selectPolicy"), select, &["Disabled", "Max", "Min"]));
    }
    let policies = rules["policies"].as_array().map(Vec::as_slice).unwrap_or_default();
    if policies.is_empty() {
        causes.push(format!("{path}.policies: Required value: must specify at least one Policy"));
    }
    for (i, policy) in policies.iter().enumerate() {
        let path = format!("{path}.policies[{i}]");
        let kind = policy["type"].as_str().unwrap_or_default();
        if kind != "Pods" && kind != "Percent" {
            causes.push(unsupported(&format!("{path}.type"), kind, &["Percent", "Pods"]));
        }
        let value = policy["value"].as_i64().unwrap_or(0);
        if value <= 0 {
            causes.push(format!("{path}.value: Invalid value: {value}: must be greater than zero"));
        }
        let period = policy["periodSeconds"].as_i64().unwrap_or(0);
        if period <= 0 {
            causes.push(format!("{path}.periodSeconds: Invalid value: {period}: must be greater than zero"));
        }
        if period > MAX_PERIOD_SECONDS {
            causes.push(format!(
                "{path}.periodSeconds: Invalid value: {period}: must be less than or equal to {MAX_PERIOD_SECONDS}"
            ));
        }
    }
    causes
}
