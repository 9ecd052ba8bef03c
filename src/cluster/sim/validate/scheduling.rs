//! Where a pod may run, as upstream's validateAffinity and validateTopologySpreadConstraints
//! judge a pod spec: node affinity's selector terms, inter-pod (anti-)affinity terms and their
//! weights, and the spread constraints' skew, key, action and policies. Required node affinity
//! must name label values that can exist; preferred terms may name any (upstream lets them
//! through, as they can still hold on a one-node cluster).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{Requirement, items, label_key_problems, selector_syntax, subdomain_problems, text, unsupported};

/// `spec.affinity` of the pod spec at `path`.
pub(super) fn affinity(spec: &Value, path: &str) -> Vec<String> {
    let affinity = &spec["affinity"];
    let path = format!("{path}.affinity");
    let mut causes = Vec::new();
    let node = &affinity["nodeAffinity"];
    let node_path = format!("{path}.nodeAffinity");
    let required = &node["requiredDuringSchedulingIgnoredDuringExecution"];
    if required.is_object() {
        causes.extend(node_selector(required, &format!("{node_path}.requiredDuringSchedulingIgnoredDuringExecution")));
    }
    let preferred_path = format!("{node_path}.preferredDuringSchedulingIgnoredDuringExecution");
    for (index, term) in items(&node["preferredDuringSchedulingIgnoredDuringExecution"]).iter().enumerate() {
        causes.extend(weight(term, &format!("{preferred_path}[{index}]")));
        let preference = format!("{preferred_path}[{index}].preference");
        causes.extend(node_selector_term(&term["preference"], &preference, false));
    }
    for kind in ["podAffinity", "podAntiAffinity"] {
        let terms = &affinity[kind];
        let path = format!("{path}.{kind}");
        let required = format!("{path}.requiredDuringSchedulingIgnoredDuringExecution");
        for (index, term) in items(&terms["requiredDuringSchedulingIgnoredDuringExecution"]).iter().enumerate() {
            causes.extend(pod_affinity_term(term, &format!("{required}[{index}]")));
        }
        let preferred = format!("{path}.preferredDuringSchedulingIgnoredDuringExecution");
        for (index, term) in items(&terms["preferredDuringSchedulingIgnoredDuringExecution"]).iter().enumerate() {
            let path = format!("{preferred}[{index}]");
            causes.extend(weight(term, &path));
            causes.extend(pod_affinity_term(&term["podAffinityTerm"], &format!("{path}.podAffinityTerm")));
        }
    }
    causes
}

/// `spec.topologySpreadConstraints` of the pod spec at `path`.
pub(super) fn topology_spread(spec: &Value, path: &str) -> Vec<String> {
    let constraints = items(&spec["topologySpreadConstraints"]);
    let mut causes = Vec::new();
    for (index, constraint) in constraints.iter().enumerate() {
        let path = format!("{path}.topologySpreadConstraints[{index}]");
        let max_skew = constraint["maxSkew"].as_i64().unwrap_or(0);
        if max_skew <= 0 {
            causes.push(format!("{path}.maxSkew: Invalid value: {max_skew}: {NOT_POSITIVE}"));
        }
        let topology_key = text(&constraint["topologyKey"]);
        if topology_key.is_empty() {
            causes.push(format!("{path}.topologyKey: Required value: can not be empty"));
        }
        let action = text(&constraint["whenUnsatisfiable"]);
        if !ACTIONS.contains(&action) {
            causes.push(unsupported(&format!("{path}.whenUnsatisfiable"), action, &ACTIONS));
        }
        let same_kind =
            |other: &Value| text(&other["topologyKey"]) == topology_key && text(&other["whenUnsatisfiable"]) == action;
        if constraints[index + 1..].iter().any(same_kind) {
            causes.push(format!(
                "{path}.{{topologyKey, whenUnsatisfiable}}: Duplicate value: \"{{{topology_key}, {action}}}\""
            ));
        }
        if let Some(min_domains) = constraint["minDomains"].as_i64() {
            if min_domains <= 0 {
                causes.push(format!("{path}.minDomains: Invalid value: {min_domains}: {NOT_POSITIVE}"));
            }
            if action != "DoNotSchedule" {
                causes.push(format!(
                    "{path}.minDomains: Invalid value: {min_domains}: can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {action}"
                ));
            }
        }
        for policy in ["nodeAffinityPolicy", "nodeTaintsPolicy"] {
            if let Some(value) = constraint[policy].as_str()
                && !["Honor", "Ignore"].contains(&value)
            {
                causes.push(unsupported(&format!("{path}.{policy}"), value, &["Honor", "Ignore"]));
            }
        }
        causes.extend(label_keys(constraint, &path, &constraint["labelSelector"]));
        if constraint["labelSelector"].is_object() {
            causes.extend(selector_syntax(&constraint["labelSelector"], &format!("{path}.labelSelector")));
        }
    }
    causes
}

/// What whenUnsatisfiable may say, in upstream's (sorted) order.
const ACTIONS: [&str; 2] = ["DoNotSchedule", "ScheduleAnyway"];

const NOT_POSITIVE: &str = "must be greater than zero";

/// ValidateNodeSelector: at least one term, each judged.
fn node_selector(selector: &Value, path: &str) -> Vec<String> {
    let terms = items(&selector["nodeSelectorTerms"]);
    if terms.is_empty() {
        return vec![format!("{path}.nodeSelectorTerms: Required value: must have at least one node selector term")];
    }
    let path = format!("{path}.nodeSelectorTerms");
    terms
        .iter()
        .enumerate()
        .flat_map(|(index, term)| node_selector_term(term, &format!("{path}[{index}]"), true))
        .collect()
}

/// ValidateNodeSelectorTerm: its label expressions, then its field expressions (only
/// `metadata.name`, with one value to compare).
fn node_selector_term(term: &Value, path: &str, values_are_labels: bool) -> Vec<String> {
    let mut causes = Vec::new();
    let kind = Requirement::Node { values_are_labels };
    for (index, requirement) in items(&term["matchExpressions"]).iter().enumerate() {
        causes.extend(super::requirement(requirement, &format!("{path}.matchExpressions[{index}]"), kind));
    }
    for (index, requirement) in items(&term["matchFields"]).iter().enumerate() {
        let path = format!("{path}.matchFields[{index}]");
        let values = items(&requirement["values"]);
        let operator = text(&requirement["operator"]);
        match operator {
            "In" | "NotIn" if values.len() != 1 => causes.push(format!(
                "{path}.values: Required value: must be only one value when `operator` is 'In' or 'NotIn' for node field selector"
            )),
            "In" | "NotIn" => {}
            _ => causes.push(format!("{path}.operator: Invalid value: \"{operator}\": not a valid selector operator")),
        }
        let key = text(&requirement["key"]);
        if key != "metadata.name" {
            causes.push(format!("{path}.key: Invalid value: \"{key}\": not a valid field selector key"));
            continue;
        }
        for (value_index, value) in values.iter().enumerate() {
            let value = text(value);
            for problem in subdomain_problems(value, "characters") {
                causes.push(format!("{path}.values[{value_index}]: Invalid value: \"{value}\": {problem}"));
            }
        }
    }
    causes
}

/// A preferred term's weight, 1 to 100.
fn weight(term: &Value, path: &str) -> Option<String> {
    let weight = term["weight"].as_i64().unwrap_or(0);
    (!(1..=100).contains(&weight))
        .then(|| format!("{path}.weight: Invalid value: {weight}: must be in the range 1-100"))
}

/// validatePodAffinityTerm: its selectors, the namespaces it names, its label keys, and the
/// topology key (required, and a label name).
fn pod_affinity_term(term: &Value, path: &str) -> Vec<String> {
    let mut causes = Vec::new();
    for selector in ["labelSelector", "namespaceSelector"] {
        if term[selector].is_object() {
            causes.extend(selector_syntax(&term[selector], &format!("{path}.{selector}")));
        }
    }
    for namespace in items(&term["namespaces"]) {
        let namespace = text(namespace);
        for problem in super::dns_label_problems(namespace) {
            causes.push(format!("{path}.namespace: Invalid value: \"{namespace}\": {problem}"));
        }
    }
    causes.extend(label_keys(term, path, &term["labelSelector"]));
    let topology_key = text(&term["topologyKey"]);
    if topology_key.is_empty() {
        causes.push(format!("{path}.topologyKey: Required value: can not be empty"));
    }
    causes.extend(label_name(topology_key, &format!("{path}.topologyKey")));
    causes
}

/// ValidateMatchLabelKeysAndMismatchLabelKeys for the term or constraint at `path`: the keys are
/// label names and need a label selector; a key of `matchLabelKeys` may not be said again in the
/// selector's expressions (where the API server merged it, see `label_keys::merge_into_selectors`)
/// nor in `mismatchLabelKeys`. The selector clash is reported at `path[i]`, as upstream's
/// `fldPath.Index(i)` has it.
fn label_keys(holder: &Value, path: &str, selector: &Value) -> Vec<String> {
    let match_keys: Vec<&str> = items(&holder["matchLabelKeys"]).iter().map(text).collect();
    let mismatch_keys: Vec<&str> = items(&holder["mismatchLabelKeys"]).iter().map(text).collect();
    let mut causes = Vec::new();
    for (field, keys) in [("matchLabelKeys", &match_keys), ("mismatchLabelKeys", &mismatch_keys)] {
        if keys.is_empty() {
            continue;
        }
        if !selector.is_object() {
            causes.push(format!("{path}.{field}: Forbidden: must not be specified when labelSelector is not set"));
            continue;
        }
        for (index, key) in keys.iter().enumerate() {
            causes.extend(label_name(key, &format!("{path}.{field}[{index}]")));
        }
    }
    if selector.is_object() {
        // The last index of each key, as upstream's map of them keeps.
        let position: BTreeMap<&str, usize> = match_keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();
        let mut said: BTreeSet<&str> =
            selector["matchLabels"].as_object().into_iter().flatten().map(|(k, _)| k.as_str()).collect();
        for expression in items(&selector["matchExpressions"]) {
            let key = text(&expression["key"]);
            if let Some(index) = position.get(key)
                && said.contains(key)
            {
                causes.push(format!(
                    "{path}[{index}]: Invalid value: \"{key}\": exists in both matchLabelKeys and labelSelector"
                ));
            }
            said.insert(key);
        }
    }
    for (index, key) in match_keys.iter().enumerate() {
        if mismatch_keys.contains(key) {
            causes.push(format!(
                "{path}.matchLabelKeys[{index}]: Invalid value: \"{key}\": exists in both matchLabelKeys and mismatchLabelKeys"
            ));
        }
    }
    causes
}

/// ValidateLabelName: one cause per problem of the key.
fn label_name(key: &str, path: &str) -> Vec<String> {
    label_key_problems(key).into_iter().map(|problem| format!("{path}: Invalid value: \"{key}\": {problem}")).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{affinity, topology_spread};

    /// What server-side apply never lets through (it refuses the duplicate key first) but a
    /// create or update would meet: upstream's field.Duplicate on the pair.
    #[test]
    fn a_spread_constraint_of_the_same_key_and_action_is_a_duplicate_of_the_later_one() {
        let spec = json!({"topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {}},
            {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway"},
            {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule", "minDomains": 2},
        ]});
        assert_eq!(
            topology_spread(&spec, "spec"),
            [
                "spec.topologySpreadConstraints[0].{topologyKey, whenUnsatisfiable}: Duplicate value: \"{zone, DoNotSchedule}\""
            ]
        );
    }

    /// The clash of a merged key with the selector is reported at the term's path indexed by the
    /// key's position, as upstream's `fldPath.Index(i)` words it.
    #[test]
    fn a_label_key_the_selector_names_twice_is_reported_at_the_terms_index() {
        let term = json!({
            "labelSelector": {"matchLabels": {"app": "web"}, "matchExpressions": [
                {"key": "app", "operator": "In", "values": ["web"]},
            ]},
            "matchLabelKeys": ["track", "app"],
            "topologyKey": "kubernetes.io/hostname",
        });
        let spec = json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}});
        assert_eq!(
            affinity(&spec, "spec"),
            [
                "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0][1]: Invalid value: \"app\": exists in both matchLabelKeys and labelSelector"
            ]
        );
    }
}
