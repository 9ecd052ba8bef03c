//! Label keys and values follow Kubernetes' rules; selectors can match something; a Service's
//! selector is a plain `key=value` map.

use super::Context;
use crate::diagnostic::Diagnostic;
use crate::model::labels::{validate_key, validate_value};
use crate::model::{LabelChangeKind, Operator, Selector};
use crate::span::Spanned;
use crate::syntax::ast::{Scenario, SelectMode, StepKind};

pub(super) fn check(scenario: &Scenario, context: &mut Context) {
    for step in scenario.all_steps() {
        for change in step.label_changes() {
            key(&change.key, context);
            if let LabelChangeKind::Set(v) = &change.kind {
                value(v, context);
            }
        }
        for selector in step.selectors() {
            for requirement in &selector.requirements {
                key(&requirement.key, context);
                requirement.values.iter().for_each(|v| value(v, context));
            }
            never_matches(selector, context);
        }
        if let StepKind::Select { mode, selector, .. } = &step.kind {
            service_selector(*mode, selector, context);
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

fn value(value: &Spanned<String>, context: &mut Context) {
    if let Err(error) = validate_value(&value.value) {
        context.report(
            Diagnostic::error(
                "rehearse::labels::invalid_value",
                format!("`{}` is not a valid label value", value.value),
            )
            .label(value.span, error.problem)
            .help(error.help),
        );
    }
}

fn never_matches(selector: &Selector, context: &mut Context) {
    if let Some(conflict) = selector.conflict() {
        let diagnostic =
            Diagnostic::error("rehearse::labels::never_matches", format!("the selector `{selector}` can never match"))
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
