//! A PodDisruptionBudget's spec, as upstream's ValidatePodDisruptionBudgetSpec judges it: one of
//! minAvailable and maxUnavailable, each a count or a percentage of at most 100%, a well-formed
//! selector and a known eviction policy for unhealthy pods.

use serde_json::Value;

use super::{compact, int_or_percent_problem, not_over_100_percent, selector_as_go, selector_syntax, unsupported};

pub(super) fn spec(object: &Value) -> Vec<String> {
    let spec = &object["spec"];
    let (min_available, max_unavailable) = (&spec["minAvailable"], &spec["maxUnavailable"]);
    let mut causes = Vec::new();
    if !min_available.is_null() && !max_unavailable.is_null() {
        causes
            .push(format!("spec: Invalid value: {}: minAvailable and maxUnavailable cannot be both set", as_go(spec)));
    }
    for (field, value) in [("minAvailable", min_available), ("maxUnavailable", max_unavailable)] {
        if !value.is_null() {
            let path = format!("spec.{field}");
            causes.extend(int_or_percent_problem(&path, value));
            causes.extend(not_over_100_percent(&path, value));
        }
    }
    if spec["selector"].is_object() {
        causes.extend(selector_syntax(&spec["selector"], "spec.selector"));
    }
    if let Some(policy) = spec["unhealthyPodEvictionPolicy"].as_str()
        && !matches!(policy, "AlwaysAllow" | "IfHealthyBudget")
    {
        causes.push(unsupported("spec.unhealthyPodEvictionPolicy", policy, &["AlwaysAllow", "IfHealthyBudget"]));
    }
    causes
}

/// The spec as the API server prints it: Go's JSON of its internal struct, which has no JSON
/// names (so its fields are named as in Go), unset pointers `null`.
fn as_go(spec: &Value) -> String {
    let or_null = |value: &Value| if value.is_null() { "null".to_string() } else { compact(value) };
    let selector = if spec["selector"].is_object() { selector_as_go(&spec["selector"]) } else { "null".to_string() };
    format!(
        "{{\"MinAvailable\":{},\"Selector\":{selector},\"MaxUnavailable\":{},\"UnhealthyPodEvictionPolicy\":{}}}",
        or_null(&spec["minAvailable"]),
        or_null(&spec["maxUnavailable"]),
        or_null(&spec["unhealthyPodEvictionPolicy"])
    )
}
