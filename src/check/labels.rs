//! Label keys and values follow Kubernetes' rules; selectors can match something; a Service's
//! selector is a plain `key=value` map.

use super::Context;
use crate::diagnostic::Diagnostic;
use crate::model::labels::{validate_key, validate_value};
use crate::model::{LabelChangeKind, Operator, Requirement, Selector};
use crate::span::Spanned;
use crate::syntax::ast::{Binding, Scenario, SelectMode, Step, StepKind, value_variable};
use crate::syntax::format;

pub(super) fn check(scenario: &Scenario, context: &mut Context) {
    let meant_to_be_refused: Vec<&Step> = scenario
        .steps()
        .filter_map(|step| match &step.kind {
            StepKind::ExpectRefused { step: inner, .. } => Some(&**inner),
            _ => None,
        })
        .collect();
    for step in scenario.all_steps() {
        // Labels a step sends the API server (a pod's, a template's, a Service selector) are its
        // to refuse: under `expect-refused` a key or value it would refuse is what is rehearsed.
        let sent_to_be_refused = meant_to_be_refused.iter().any(|refused| std::ptr::eq(*refused, step));
        if !sent_to_be_refused {
            for change in step.label_changes() {
                key(&change.key, context);
                if let LabelChangeKind::Set(v) = &change.kind {
                    value(v, context);
                }
            }
        }
        let service_selector_sent = sent_to_be_refused && matches!(step.kind, StepKind::Select { .. });
        for selector in step.selectors() {
            if !service_selector_sent {
                for requirement in &selector.requirements {
                    key(&requirement.key, context);
                    requirement.values.iter().for_each(|v| value(v, context));
                }
            }
            never_matches(selector, context);
        }
        if let StepKind::Select { mode, selector, .. } = &step.kind {
            service_selector(*mode, selector, context);
        }
        if let StepKind::Let { value: Binding::LabelOf { key: label_key, .. }, .. } = &step.kind {
            key(label_key, context);
        }
    }
}

fn key(key: &Spanned<String>, context: &mut Context) {
    if let Err(error) = validate_key(&key.value) {
        context.report(
            Diagnostic::error("rehearse::labels::invalid_key", format!("`{}` is not a valid label key", key.value))
                .label(key.span, error.problem)
                .help(error.help),
        );
    }
}

/// A value written `$name` is a variable's, known only when the step runs (and checked then).
fn value(value: &Spanned<String>, context: &mut Context) {
    if value_variable(&value.value).is_some() {
        return;
    }
    if let Err(error) = validate_value(&value.value) {
        let help = if value.value.contains('$') {
            format!("{}; a variable stands for a whole value: `key=$name`", error.help)
        } else {
            error.help.to_string()
        };
        context.report(
            Diagnostic::error(
                "rehearse::labels::invalid_value",
                format!("`{}` is not a valid label value", value.value),
            )
            .label(value.span, error.problem)
            .help(help),
        );
    }
}

fn never_matches(selector: &Selector, context: &mut Context) {
    // A variable's value is known only when the step runs (`app=$a,app=b` may well match): judge
    // `key=$a` and `key in ($a,b)` as "key exists", and `key!=$a` as no requirement.
    let known = Selector {
        requirements: selector
            .requirements
            .iter()
            .filter_map(|r| {
                if !r.values.iter().any(|v| value_variable(&v.value).is_some()) {
                    return Some(r.clone());
                }
                matches!(r.operator, Operator::Equals | Operator::In).then(|| Requirement {
                    operator: Operator::Exists,
                    values: Vec::new(),
                    ..r.clone()
                })
            })
            .collect(),
        span: selector.span,
    };
    if let Some(conflict) = known.conflict() {
        let diagnostic = Diagnostic::error(
            "rehearse::labels::never_matches",
            format!("the selector `{}` can never match", format::selector(selector)),
        )
        .label(conflict.second, conflict.reason);
        let diagnostic = if conflict.first != conflict.second {
            diagnostic.label(conflict.first, "conflicts with this")
        } else {
            diagnostic
        };
        context.report(diagnostic.help(format!("keep one requirement on `{}`", conflict.key)));
    }
}

/// Services select with a map: only `key=value`; `-=` takes bare keys.
fn service_selector(mode: SelectMode, selector: &Selector, context: &mut Context) {
    for requirement in &selector.requirements {
        let fits = match mode {
            SelectMode::Remove => requirement.operator == Operator::Exists,
            _ => requirement.operator == Operator::Equals,
        };
        if fits {
            continue;
        }
        let (problem, help) = match mode {
            SelectMode::Remove => {
                ("`-=` takes label keys", "write the keys to drop, e.g. `select service/web -= active`")
            }
            _ => (
                "a Service selects pods by exact labels only",
                "write `key=value` pairs; set-based selectors (`in`, `!=`, `!key`) work for pods, not for Services",
            ),
        };
        context.report(
            Diagnostic::error("rehearse::labels::service_selector", problem)
                .label(requirement.span, format!("`{requirement}` is not allowed here"))
                .help(help),
        );
    }
}
