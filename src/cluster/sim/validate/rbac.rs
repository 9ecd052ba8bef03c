//! Roles and RoleBindings, as upstream's ValidateRole and ValidateRoleBinding judge them: every
//! rule names verbs, and either resources (with their API groups) or, outside a namespace,
//! non-resource URLs; a binding refers to a Role or ClusterRole of the RBAC group by a name that
//! is a path segment, and names its subjects by kinds it knows. A binding's roleRef never
//! changes. RBAC names are path segments, not DNS names (`system:reader` and `Caps` are valid).
//!
//! A missing verb list and a missing name are judged by the declarative validation, whose
//! problems the API server lists after the hand-written checks' (as the testbed shows).

use serde_json::Value;

use super::{compact, path_segment_problems, subdomain_problems, unsupported};
use crate::cluster::sim::resources;

const GROUP: &str = resources::ROLE.group;

/// A Role's rules (a namespaced role's rules cannot name non-resource URLs).
pub(super) fn role(object: &Value) -> Vec<String> {
    let rules = object["rules"].as_array().map(Vec::as_slice).unwrap_or_default();
    let mut causes: Vec<String> =
        rules.iter().enumerate().flat_map(|(i, rule)| policy_rule(rule, &format!("rules[{i}]"))).collect();
    let without_verbs = rules.iter().enumerate().filter(|(_, rule)| !listed(rule, "verbs"));
    causes.extend(without_verbs.map(|(i, _)| format!("rules[{i}].verbs: Required value")));
    causes
}

fn listed(rule: &Value, field: &str) -> bool {
    rule[field].as_array().is_some_and(|items| !items.is_empty())
}

/// A rule's problems but a missing verb list (see the module's note).
fn policy_rule(rule: &Value, path: &str) -> Vec<String> {
    let listed = |field: &str| listed(rule, field);
    let mut causes = Vec::new();
    if listed("nonResourceURLs") {
        let urls = compact(&rule["nonResourceURLs"]);
        causes.push(format!(
            "{path}.nonResourceURLs: Invalid value: {urls}: namespaced rules cannot apply to non-resource URLs"
        ));
        if listed("apiGroups") || listed("resources") || listed("resourceNames") {
            causes.push(format!(
                "{path}.nonResourceURLs: Invalid value: {urls}: rules cannot apply to both regular resources and non-resource URLs"
            ));
        }
        return causes;
    }
    if !listed("apiGroups") {
        causes.push(format!("{path}.apiGroups: Required value: resource rules must supply at least one api group"));
    }
    if !listed("resources") {
        causes.push(format!("{path}.resources: Required value: resource rules must supply at least one resource"));
    }
    causes
}

/// A RoleBinding's reference to its role and its subjects, after the defaults (an empty API
/// group is the RBAC group's, and a User's or Group's subject too).
pub(super) fn role_binding(object: &Value) -> Vec<String> {
    let role_ref = &object["roleRef"];
    let text = |value: &Value| value.as_str().unwrap_or_default().to_string();
    let mut causes = Vec::new();
    let group = text(&role_ref["apiGroup"]);
    if group != GROUP {
        causes.push(unsupported("roleRef.apiGroup", &group, &[GROUP]));
    }
    let kind = text(&role_ref["kind"]);
    if kind != "Role" && kind != "ClusterRole" {
        causes.push(unsupported("roleRef.kind", &kind, &["Role", "ClusterRole"]));
    }
    let name = text(&role_ref["name"]);
    for problem in path_segment_problems(&name) {
        causes.push(format!("roleRef.name: Invalid value: \"{name}\": {problem}"));
    }
    let subjects = object["subjects"].as_array().map(Vec::as_slice).unwrap_or_default();
    for (i, subject) in subjects.iter().enumerate() {
        causes.extend(subject_problems(subject, &format!("subjects[{i}]")));
    }
    // The declarative validation's, after the rest (see the module's note), in the order of the
    // Go struct's fields: subjects before roleRef.
    let unnamed = subjects.iter().enumerate().filter(|(_, s)| s["name"].as_str().is_none_or(str::is_empty));
    causes.extend(unnamed.map(|(i, _)| format!("subjects[{i}].name: Required value")));
    if name.is_empty() {
        causes.push("roleRef.name: Required value".to_string());
    }
    causes
}

/// A subject's problems but a missing name (see the module's note).
fn subject_problems(subject: &Value, path: &str) -> Vec<String> {
    let name = subject["name"].as_str().unwrap_or_default();
    let group = subject["apiGroup"].as_str().unwrap_or_default();
    let mut causes = Vec::new();
    match subject["kind"].as_str().unwrap_or_default() {
        "ServiceAccount" => {
            if !name.is_empty() {
                for problem in subdomain_problems(name, "characters") {
                    causes.push(format!("{path}.name: Invalid value: \"{name}\": {problem}"));
                }
            }
            if !group.is_empty() {
                causes.push(unsupported(&format!("{path}.apiGroup"), group, &[""]));
            }
        }
        "User" | "Group" if group != GROUP => causes.push(unsupported(&format!("{path}.apiGroup"), group, &[GROUP])),
        "User" | "Group" => {}
        other => causes.push(unsupported(&format!("{path}.kind"), other, &["ServiceAccount", "User", "Group"])),
    }
    causes
}

/// A binding's roleRef may not change; the API server prints the new one as its internal Go
/// struct (field names capitalised, in declaration order).
pub(super) fn role_binding_change(current: &Value, object: &Value) -> Option<String> {
    let (old, new) = (&current["roleRef"], &object["roleRef"]);
    if old == new {
        return None;
    }
    let field = |name: &str| Value::String(new[name].as_str().unwrap_or_default().to_string());
    let as_go = format!("{{\"APIGroup\":{},\"Kind\":{},\"Name\":{}}}", field("apiGroup"), field("kind"), field("name"));
    Some(format!("roleRef: Invalid value: {as_go}: field is immutable"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn rbac_names_are_path_segments() {
        assert!(path_segment_problems("system:reader").is_empty());
        assert!(path_segment_problems("Caps").is_empty());
        assert_eq!(path_segment_problems(".."), ["may not be '..'"]);
        assert_eq!(path_segment_problems("a/b%c"), ["may not contain '/'", "may not contain '%'"]);
    }

    #[test]
    fn rules_name_verbs_and_resources_with_their_groups() {
        let ok = json!({"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]});
        assert!(role(&ok).is_empty());
        assert_eq!(
            role(&json!({"rules": [{}, {"resources": ["pods"], "verbs": ["get"]}]})),
            [
                "rules[0].apiGroups: Required value: resource rules must supply at least one api group",
                "rules[0].resources: Required value: resource rules must supply at least one resource",
                "rules[1].apiGroups: Required value: resource rules must supply at least one api group",
                "rules[0].verbs: Required value",
            ]
        );
        let urls = json!({"rules": [{"nonResourceURLs": ["/healthz"], "resources": ["pods"], "verbs": ["get"]}]});
        assert_eq!(
            role(&urls),
            [
                "rules[0].nonResourceURLs: Invalid value: [\"/healthz\"]: namespaced rules cannot apply to non-resource URLs",
                "rules[0].nonResourceURLs: Invalid value: [\"/healthz\"]: rules cannot apply to both regular resources and non-resource URLs",
            ]
        );
    }

    #[test]
    fn a_binding_is_defaulted_then_judged() {
        let mut binding = json!({
            "roleRef": {"kind": "Role", "name": "reader"},
            "subjects": [{"kind": "Group", "name": "devs"}, {"kind": "ServiceAccount", "name": "web"}],
        });
        crate::cluster::sim::defaults::apply(crate::cluster::sim::resources::ROLE_BINDING, &mut binding);
        assert_eq!(binding["roleRef"]["apiGroup"], GROUP);
        assert_eq!(binding["subjects"][0]["apiGroup"], GROUP);
        assert!(binding["subjects"][1].get("apiGroup").is_none(), "a service account's group stays the core one");
        assert!(role_binding(&binding).is_empty());

        let mut bad = json!({"roleRef": {}, "subjects": [{"kind": "Robot", "name": "r"}, {"kind": "User"}]});
        crate::cluster::sim::defaults::apply(crate::cluster::sim::resources::ROLE_BINDING, &mut bad);
        assert_eq!(
            role_binding(&bad),
            [
                "roleRef.kind: Unsupported value: \"\": supported values: \"Role\", \"ClusterRole\"",
                "subjects[0].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"",
                "subjects[1].name: Required value",
                "roleRef.name: Required value",
            ]
        );
    }

    #[test]
    fn a_bindings_role_ref_never_changes() {
        let current = json!({"roleRef": {"apiGroup": GROUP, "kind": "Role", "name": "reader"}});
        assert_eq!(role_binding_change(&current, &current), None);
        let changed = json!({"roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": "view"}});
        assert_eq!(
            role_binding_change(&current, &changed).unwrap(),
            "roleRef: Invalid value: {\"APIGroup\":\"rbac.authorization.k8s.io\",\"Kind\":\"ClusterRole\",\"Name\":\"view\"}: field is immutable"
        );
    }
}
