//! Label keys that decide where traffic goes: a Service selector key that nothing in the scenario
//! sets (the Service would go empty), and a set key one slip away from a selected one (the
//! runbook's own `enable` vs `enabled`).

use std::collections::BTreeSet;

use super::Context;
use super::kinds::Variables;
use super::yaml::Declared;
use crate::diagnostic::Diagnostic;
use crate::model::{Kind, LabelChangeKind};
use crate::span::Span;
use crate::syntax::ast::{Scenario, SelectMode, StepKind, Target};

/// Keys that controllers put on the pods they create: the Deployment's template hash, the
/// DaemonSet's and StatefulSet's revision hash and the DaemonSet's template generation, and a
/// StatefulSet pod's name and ordinal (what a Service for one member of the set selects).
const CONTROLLER_KEYS: [&str; 5] = [
    "pod-template-hash",
    "controller-revision-hash",
    "pod-template-generation",
    "statefulset.kubernetes.io/pod-name",
    "apps.kubernetes.io/pod-index",
];

/// A key as written somewhere: in the script (a span) or in a manifest (a span and a place).
struct KeyUse {
    key: String,
    span: Span,
    place: Option<String>,
}

pub(super) fn check(scenario: &Scenario, declared: &[Declared], context: &mut Context) {
    let mut set: Vec<KeyUse> = Vec::new();
    let mut selected: Vec<KeyUse> = Vec::new();
    let variables = super::kinds::variable_kinds(scenario);
    for step in scenario.all_steps() {
        match &step.kind {
            // A label on a Deployment or a Service is on no pod: Services never see it.
            StepKind::Label { target, .. } if !on_pods(target, &variables) => {}
            StepKind::Label { .. } | StepKind::Template { .. } | StepKind::Run { .. } => {
                for change in step.label_changes() {
                    if let LabelChangeKind::Set(_) = change.kind {
                        set.push(KeyUse { key: change.key.value.clone(), span: change.key.span, place: None });
                    }
                }
            }
            StepKind::Select { mode: SelectMode::Replace | SelectMode::Extend, selector, .. } => {
                for key in selector.keys() {
                    selected.push(KeyUse { key: key.value.clone(), span: key.span, place: None });
                }
            }
            _ => {}
        }
    }
    for Declared { origin, object } in declared {
        for label in object.pod_labels() {
            let (span, place) = origin.locate(label.at, label.key.len());
            set.push(KeyUse { key: label.key.clone(), span, place: Some(place) });
        }
        if object.kind.as_deref() == Some("Service") {
            for label in &object.selector {
                let (span, place) = origin.locate(label.at, label.key.len());
                selected.push(KeyUse { key: label.key.clone(), span, place: Some(place) });
            }
        }
    }
    let set_keys: BTreeSet<&str> = set.iter().map(|k| k.key.as_str()).chain(CONTROLLER_KEYS).collect();
    let selected_keys: BTreeSet<&str> = selected.iter().map(|k| k.key.as_str()).collect();

    let mut reported = BTreeSet::new();
    for key in &selected {
        if set_keys.contains(key.key.as_str()) || !reported.insert(key.key.as_str()) {
            continue;
        }
        let near = set_keys.iter().find(|k| near_miss(k, &key.key));
        let diagnostic = Diagnostic::warning(
            "rehearse::traffic::unset_selector_key",
            format!("{}nothing in this scenario puts the label `{}` on a pod", prefix(&key.place), key.key),
        )
        .label(key.span, "a Service selects on this key")
        .help(match near {
            Some(near) => format!("did you mean `{near}`? As written, the Service would have no endpoints"),
            None => format!(
                "label the pods with `{}` before the Service selects on it, or the Service has no endpoints",
                key.key
            ),
        });
        context.report(diagnostic);
    }
    let mut reported = BTreeSet::new();
    for key in &set {
        if selected_keys.contains(key.key.as_str()) || !reported.insert((key.key.as_str(), key.span.start)) {
            continue;
        }
        if let Some(near) = selected_keys.iter().find(|s| near_miss(&key.key, s)) {
            context.report(
                Diagnostic::warning(
                    "rehearse::traffic::near_miss_key",
                    format!(
                        "{}the label `{}` is one slip away from the selected key `{near}`",
                        prefix(&key.place),
                        key.key
                    ),
                )
                .label(key.span, "no Service selects this key")
                .help(format!("did you mean `{near}`?")),
            );
        }
    }
}

/// Whether a target stands for pods (or may: a kind not known is reported elsewhere).
fn on_pods(target: &Target, variables: &Variables) -> bool {
    let kind = match target {
        Target::Object(object) => object.kind,
        Target::Selection(selection) => selection.kind,
        Target::Variable(name) => variables.get(name.value.as_str()).map(|(kind, _)| *kind),
    };
    kind.is_none_or(|kind| kind == Kind::Pod)
}

fn prefix(place: &Option<String>) -> String {
    place.as_ref().filter(|p| !p.starts_with("inline")).map(|p| format!("{p}: ")).unwrap_or_default()
}

/// Two different keys close enough that one is likely a slip for the other.
fn near_miss(a: &str, b: &str) -> bool {
    if a == b || a.len() < 3 || b.len() < 3 {
        return false;
    }
    strsim::damerau_levenshtein(a, b) <= if a.len().min(b.len()) < 6 { 1 } else { 2 }
}

#[cfg(test)]
mod tests {
    use super::near_miss;

    #[test]
    fn near_misses() {
        assert!(near_miss("enable", "enabled"));
        assert!(near_miss("actve", "active"));
        assert!(!near_miss("active", "active"));
        assert!(!near_miss("app", "tier"));
        assert!(!near_miss("track", "trace-id"));
    }
}
