//! What the API server does with a new pod's `matchLabelKeys` and `mismatchLabelKeys` (its
//! registry's PrepareForCreate, MatchLabelKeysInPodAffinity and
//! MatchLabelKeysInPodTopologySpreadSelectorMerge, both on): each key the pod has a label for
//! becomes an expression of the term's or constraint's label selector, `key In (value)` or
//! `key NotIn (value)`. The pod is stored so, and the scheduler reads only the selector: a
//! required anti-affinity per `pod-template-hash` then keeps apart only the pods of one
//! ReplicaSet, and a rolling update may place its new pods beside the old ones. A term or
//! constraint without a selector matches nothing, and is left as it is.

use serde_json::{Value, json};

/// Merges the pod's label keys into its affinity terms' and spread constraints' selectors.
pub fn merge_into_selectors(pod: &mut Value) {
    let labels = pod["metadata"]["labels"].clone();
    let Some(spec) = pod.get_mut("spec") else { return };
    if let Some(affinity) = spec.get_mut("affinity") {
        for kind in ["podAffinity", "podAntiAffinity"] {
            let Some(terms) = affinity.get_mut(kind) else { continue };
            if let Some(preferred) = terms.get_mut("preferredDuringSchedulingIgnoredDuringExecution") {
                for weighted in items_mut(preferred) {
                    if let Some(term) = weighted.get_mut("podAffinityTerm") {
                        merge(term, &labels);
                    }
                }
            }
            if let Some(required) = terms.get_mut("requiredDuringSchedulingIgnoredDuringExecution") {
                items_mut(required).for_each(|term| merge(term, &labels));
            }
        }
    }
    if let Some(constraints) = spec.get_mut("topologySpreadConstraints") {
        items_mut(constraints).for_each(|constraint| merge(constraint, &labels));
    }
}

/// `matchLabelKeys` as `In`, then `mismatchLabelKeys` as `NotIn`, each key the pod has a label
/// for, appended to the selector's expressions in the order the keys are listed.
fn merge(holder: &mut Value, labels: &Value) {
    if !holder["labelSelector"].is_object() {
        return;
    }
    let mut expressions = Vec::new();
    for (field, operator) in [("matchLabelKeys", "In"), ("mismatchLabelKeys", "NotIn")] {
        for key in holder[field].as_array().into_iter().flatten().filter_map(Value::as_str) {
            if let Some(value) = labels.get(key).filter(|v| v.is_string()) {
                expressions.push(json!({"key": key, "operator": operator, "values": [value]}));
            }
        }
    }
    if expressions.is_empty() {
        return;
    }
    let selector = &mut holder["labelSelector"];
    match selector.get_mut("matchExpressions").and_then(Value::as_array_mut) {
        Some(existing) => existing.extend(expressions),
        None => selector["matchExpressions"] = expressions.into(),
    }
}

fn items_mut(list: &mut Value) -> impl Iterator<Item = &mut Value> {
    list.as_array_mut().into_iter().flatten()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::merge_into_selectors;

    #[test]
    fn label_keys_the_pod_has_become_selector_expressions_and_others_are_skipped() {
        let mut pod = json!({
            "metadata": {"labels": {"app": "web", "pod-template-hash": "abc"}},
            "spec": {
                "affinity": {"podAntiAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname",
                         "matchLabelKeys": ["pod-template-hash", "missing"], "mismatchLabelKeys": ["app"]},
                        {"topologyKey": "kubernetes.io/hostname", "matchLabelKeys": ["pod-template-hash"]},
                    ],
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": 1, "podAffinityTerm": {
                            "labelSelector": {"matchExpressions": [{"key": "app", "operator": "Exists"}]},
                            "topologyKey": "zone", "matchLabelKeys": ["app"]}},
                    ],
                }},
                "topologySpreadConstraints": [
                    {"labelSelector": {}, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule", "maxSkew": 1,
                     "matchLabelKeys": ["pod-template-hash"]},
                ],
            },
        });
        merge_into_selectors(&mut pod);
        let anti = &pod["spec"]["affinity"]["podAntiAffinity"];
        assert_eq!(
            anti["requiredDuringSchedulingIgnoredDuringExecution"][0]["labelSelector"]["matchExpressions"],
            json!([
                {"key": "pod-template-hash", "operator": "In", "values": ["abc"]},
                {"key": "app", "operator": "NotIn", "values": ["web"]},
            ])
        );
        // No selector matches nothing, and stays so.
        assert!(anti["requiredDuringSchedulingIgnoredDuringExecution"][1].get("labelSelector").is_none());
        assert_eq!(
            anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]["labelSelector"]["matchExpressions"],
            json!([{"key": "app", "operator": "Exists"}, {"key": "app", "operator": "In", "values": ["web"]}])
        );
        assert_eq!(
            pod["spec"]["topologySpreadConstraints"][0]["labelSelector"],
            json!({"matchExpressions": [{"key": "pod-template-hash", "operator": "In", "values": ["abc"]}]})
        );
    }
}
