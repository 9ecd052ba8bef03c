//! A StatefulSet's spec, as upstream's ValidateStatefulSetSpec judges it once the defaults are in
//! (see `defaults`), in its order: how it manages and rolls its pods, the claim retention
//! policy, its counts, the governing service's name, the selector (required, well formed, not
//! empty) and the pod template it must match; and on a change, the fields that may not change.

use serde_json::Value;

use super::{
    MISMATCH, PERCENT, compact, dns_label_causes, is_empty_selector, label_map, nonnegative, percent, pod,
    selector_as_go, selector_syntax, selects,
};

pub(super) fn spec(object: &Value) -> Vec<String> {
    let spec = &object["spec"];
    let mut causes = Vec::new();
    match spec["podManagementPolicy"].as_str().unwrap_or_default() {
        "" => causes.push("spec.podManagementPolicy: Required value".to_string()),
        "OrderedReady" | "Parallel" => {}
        other => causes.push(format!(
            "spec.podManagementPolicy: Invalid value: \"{other}\": must be 'OrderedReady' or 'Parallel'"
        )),
    }
    causes.extend(update_strategy(&spec["updateStrategy"]));
    for when in ["whenDeleted", "whenScaled"] {
        let policy = spec["persistentVolumeClaimRetentionPolicy"][when].as_str().unwrap_or_default();
        if !policy.is_empty() && policy != "Retain" && policy != "Delete" {
            causes.push(format!(
                "spec.persistentVolumeClaimRetentionPolicy.{when}: Unsupported value: \"{policy}\": supported values: \"Retain\", \"Delete\""
            ));
        }
    }
    causes.extend(nonnegative(&spec["replicas"], "spec.replicas"));
    causes.extend(nonnegative(&spec["minReadySeconds"], "spec.minReadySeconds"));
    causes.extend(nonnegative(&spec["ordinals"]["start"], "spec.ordinals.start"));
    if let Some(service) = spec["serviceName"].as_str().filter(|s| !s.is_empty()) {
        causes.extend(dns_label_causes("spec.serviceName", service));
    }
    let selector = &spec["selector"];
    let syntax = selector_syntax(selector, "spec.selector");
    let readable = syntax.is_empty();
    let empty = is_empty_selector(selector);
    if selector.is_null() {
        causes.push("spec.selector: Required value".to_string());
    }
    causes.extend(syntax);
    if empty {
        causes.push("spec.selector: Invalid value: {}: empty selector is invalid for statefulset".to_string());
    }
    let template = &spec["template"];
    if readable {
        // A missing selector selects nothing, so no template matches it; an empty one selects all.
        let labels = &template["metadata"]["labels"];
        let matched = empty || (selector.is_object() && selects(selector, labels));
        if !matched {
            causes.push(format!("spec.template.metadata.labels: Invalid value: {}: {MISMATCH}", compact(labels)));
        }
        // The controller sets each pod's hostname and subdomain, so the template's are not judged;
        // each volume claim template is a volume of the pod (what its mounts may name).
        let mut pod_spec = template["spec"].clone();
        if let Some(fields) = pod_spec.as_object_mut() {
            fields.remove("hostname");
            fields.remove("subdomain");
            let claims: std::collections::BTreeSet<&str> = spec["volumeClaimTemplates"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|claim| claim["metadata"]["name"].as_str())
                .collect();
            if !claims.is_empty() {
                let mut volumes: Vec<Value> = claims
                    .iter()
                    .map(|name| serde_json::json!({"name": name, "persistentVolumeClaim": {"claimName": name}}))
                    .collect();
                let own = fields.get("volumes").and_then(Value::as_array).cloned().unwrap_or_default();
                volumes.extend(own.into_iter().filter(|v| !v["name"].as_str().is_some_and(|n| claims.contains(n))));
                fields.insert("volumes".into(), Value::Array(volumes));
            }
        }
        causes.extend(pod::spec(&pod_spec, "spec.template.spec", false));
        causes.extend(label_map("spec.template.labels", labels));
    }
    causes.extend(pod::template_restart_policy(&template["spec"], "spec.template.spec"));
    if !template["spec"]["activeDeadlineSeconds"].is_null() {
        causes.push(
            "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in StatefulSet is not Supported"
                .to_string(),
        );
    }
    causes
}

/// The fields a StatefulSet may not change, after the spec's own checks.
pub(super) fn immutable(current: &Value, object: &Value) -> Vec<String> {
    let mut causes = Vec::new();
    for (field, default) in [("selector", Value::Null), ("volumeClaimTemplates", Value::Null)] {
        let (before, after) = (&current["spec"][field], &object["spec"][field]);
        if before != after {
            let shown = match after {
                Value::Null => compact(&default),
                // A selector is printed as Go prints its struct.
                Value::Object(_) if field == "selector" => selector_as_go(after),
                _ => compact(after),
            };
            causes.push(format!("spec.{field}: Invalid value: {shown}: field is immutable"));
        }
    }
    for field in ["serviceName", "podManagementPolicy"] {
        let text = |object: &Value| object["spec"][field].as_str().unwrap_or_default().to_string();
        if text(current) != text(object) {
            causes.push(format!("spec.{field}: Invalid value: \"{}\": field is immutable", text(object)));
        }
    }
    causes
}

/// How it rolls: a known type, a `rollingUpdate` only for RollingUpdate, a partition of at
/// least 0 and a maxUnavailable of 1 or more (or a percentage up to 100%). An invalid strategy
/// is printed in the API's internal form, Go field names and all.
fn update_strategy(strategy: &Value) -> Vec<String> {
    let rolling = &strategy["rollingUpdate"];
    let internal = || {
        if rolling.is_object() {
            let unavailable = rolling.get("maxUnavailable").filter(|v| !v.is_null()).map_or("null".into(), compact);
            let partition = rolling["partition"].as_i64().unwrap_or(0);
            format!("{{\"Partition\":{partition},\"MaxUnavailable\":{unavailable}}}")
        } else {
            "null".to_string()
        }
    };
    let path = "spec.updateStrategy";
    match strategy["type"].as_str().unwrap_or_default() {
        "" => vec![format!("{path}: Required value")],
        "OnDelete" if rolling.is_null() => Vec::new(),
        "OnDelete" => vec![format!(
            "{path}.rollingUpdate: Invalid value: {}: only allowed for updateStrategy 'RollingUpdate'",
            internal()
        )],
        "RollingUpdate" if rolling.is_null() => Vec::new(),
        "RollingUpdate" => {
            let mut causes: Vec<String> =
                nonnegative(&rolling["partition"], &format!("{path}.rollingUpdate.partition")).into_iter().collect();
            let unavailable = &rolling["maxUnavailable"];
            let at = format!("{path}.rollingUpdate.maxUnavailable");
            match unavailable {
                Value::Number(n) => {
                    let n = n.as_i64().unwrap_or(0);
                    if n < 0 {
                        causes.push(format!("{at}: Invalid value: {n}: must be greater than or equal to 0"));
                    }
                    if n == 0 {
                        causes.push(format!("{at}: Invalid value: 0: cannot be 0"));
                    }
                }
                Value::String(text) => match percent(text) {
                    None => {
                        causes.push(format!("{at}: Invalid value: {}: {PERCENT}", compact(unavailable)));
                        causes.push(format!("{at}: Invalid value: {}: cannot be 0", compact(unavailable)));
                    }
                    Some(0) => causes.push(format!("{at}: Invalid value: {}: cannot be 0", compact(unavailable))),
                    Some(p) if p > 100 => causes
                        .push(format!("{at}: Invalid value: {}: must not be greater than 100%", compact(unavailable))),
                    Some(_) => {}
                },
                _ => {}
            }
            causes
        }
        other => vec![format!(
            "{path}: Invalid value: {{\"Type\":{},\"RollingUpdate\":{}}}: must be 'RollingUpdate' or 'OnDelete'",
            compact(&other.into()),
            internal()
        )],
    }
}
