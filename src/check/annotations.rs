//! Annotations follow the API server's rules: keys are qualified names (the label key rules), the
//! values of one step fit in the 256 KiB all of an object's annotations may take, and a pod's
//! deletion cost is a 32-bit integer. Values are otherwise free text.

use std::collections::HashMap;

use super::Context;
use crate::diagnostic::Diagnostic;
use crate::model::annotations::{POD_DELETION_COST, TOTAL_LIMIT, is_deletion_cost};
use crate::model::labels::validate_key;
use crate::model::{Kind, LabelChangeKind};
use crate::syntax::ast::{Binding, Scenario, StepKind, Target, value_variable};

const KEY_HELP: &str = "an annotation key follows the label key rules: a name of at most 63 letters, digits, \
`-`, `_` and `.`, starting and ending with a letter or digit, with an optional DNS subdomain prefix and `/`";

pub(super) fn check(scenario: &Scenario, context: &mut Context) {
    // What each variable holds, to know whether `annotate $x ...` annotates pods.
    let mut kinds: HashMap<&str, Option<Kind>> = HashMap::new();
    for step in scenario.all_steps() {
        match &step.kind {
            StepKind::Let { name, value: Binding::OneOf(selection) } => {
                kinds.insert(&name.value, selection.kind);
            }
            StepKind::Let { name, value: Binding::Object(object) } => {
                kinds.insert(&name.value, object.kind);
            }
            StepKind::Annotate { target, changes } => {
                let on_pods = match target {
                    Target::Variable(name) => kinds.get(name.value.as_str()).copied().flatten() == Some(Kind::Pod),
                    Target::Object(object) => object.kind == Some(Kind::Pod),
                    Target::Selection(selection) => selection.kind == Some(Kind::Pod),
                };
                let mut total = 0;
                for change in changes {
                    if let Err(error) = validate_key(&change.key.value) {
                        context.report(
                            Diagnostic::error(
                                "rehearse::annotations::invalid_key",
                                format!("`{}` is not a valid annotation key", change.key.value),
                            )
                            .label(change.key.span, error.problem)
                            .help(KEY_HELP),
                        );
                    }
                    let LabelChangeKind::Set(value) = &change.kind else { continue };
                    total += change.key.value.len() + value.value.len();
                    let literal = value_variable(&value.value).is_none();
                    if on_pods && literal && change.key.value == POD_DELETION_COST && !is_deletion_cost(&value.value) {
                        context.report(
                            Diagnostic::error(
                                "rehearse::annotations::deletion_cost",
                                format!("`{}` is not a pod deletion cost", value.value),
                            )
                            .label(value.span, "the API server accepts only a 32-bit integer here")
                            .help(
                                "write a whole number from -2147483648 to 2147483647, without `+` or leading zeros; \
                                 when a replica set has pods to spare, it deletes those with the lowest cost first",
                            ),
                        );
                    }
                }
                if total > TOTAL_LIMIT {
                    context.report(
                        Diagnostic::error(
                            "rehearse::annotations::too_long",
                            format!("the step's annotations take {total} bytes"),
                        )
                        .label(
                            step.span,
                            format!("the API server refuses more than {TOTAL_LIMIT} bytes of annotations"),
                        )
                        .help("keep large data in a ConfigMap and annotate with a reference to it"),
                    );
                }
            }
            _ => {}
        }
    }
}
