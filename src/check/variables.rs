//! Variables: defined before use, used at all, and used as what they hold.

use std::collections::HashMap;

use super::Context;
use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::model::{Kind, LabelChangeKind};
use crate::span::{Span, Spanned};
use crate::syntax::ast::{ApplySource, Binding, Count, Scenario, Step, StepKind, Target, value_variable};
use crate::syntax::placeholders::{Piece, pieces};

/// What a `let` binds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Holds {
    /// An object of a kind (a pod for `one pod ...`); `None` if the kind is unknown.
    Object(Option<Kind>),
    Text,
    Number,
}

impl Holds {
    fn describe(self) -> String {
        match self {
            Holds::Object(Some(kind)) => format!("a {kind}"),
            Holds::Object(None) => "an object".into(),
            Holds::Text => "text".into(),
            Holds::Number => "a number".into(),
        }
    }
}

struct Variable {
    defined: Span,
    holds: Holds,
    used: bool,
}

pub(super) fn check(scenario: &Scenario, context: &mut Context) {
    // Every definition, to tell "used before its definition" from "never defined".
    let mut later: HashMap<&str, Span> = HashMap::new();
    for step in scenario.all_steps() {
        if let StepKind::Let { name, .. } = &step.kind {
            later.entry(name.value.as_str()).or_insert(name.span);
        }
    }
    let mut defined: HashMap<&str, Variable> = HashMap::new();
    for step in scenario.all_steps() {
        for target in step.targets() {
            if let Target::Variable(name) = target {
                use_variable(name, &[Holds::Object(None)], &mut defined, &later, context);
            }
        }
        for count in step.counts() {
            if let Count::Variable(name) = count {
                use_variable(name, &[Holds::Number], &mut defined, &later, context);
            }
        }
        // `$x` as a label or selector value, `${{ x }}` in inline YAML: any value substitutes as text.
        for name in substituted(step, context) {
            use_variable(&name, ANY, &mut defined, &later, context);
        }
        if let StepKind::Let { name, value } = &step.kind {
            let holds = match value {
                Binding::OneOf(_) | Binding::Object(_) => Holds::Object(value.object_kind()),
                Binding::LabelOf { .. } | Binding::NameOf(_) | Binding::Text(_) => Holds::Text,
                Binding::Number(_) => Holds::Number,
            };
            if let Some(first) = defined.get(name.value.as_str()) {
                context.report(
                    Diagnostic::error(
                        "rehearse::check::duplicate_variable",
                        format!("`${}` is defined twice", name.value),
                    )
                    .label(name.span, "defined again here")
                    .label(first.defined, "first defined here")
                    .help("give the second one its own name"),
                );
                continue;
            }
            defined.insert(&name.value, Variable { defined: name.span, holds, used: false });
        }
    }
    let mut unused: Vec<(&str, Span)> =
        defined.iter().filter(|(_, v)| !v.used).map(|(name, v)| (*name, v.defined)).collect();
    unused.sort_by_key(|(_, span)| span.start);
    for (name, span) in unused {
        context.report(
            Diagnostic::warning("rehearse::check::unused_variable", format!("`${name}` is never used"))
                .label(span, "defined here")
                .help("use it in a later step, or remove the `let`"),
        );
    }
}

/// What can be substituted as text: every kind of value (an object by its name).
const ANY: &[Holds] = &[Holds::Object(None), Holds::Text, Holds::Number];

/// The variables a step substitutes as text: `$x` label and selector values, and `${{ x }}` in
/// its inline YAML (reporting a `${{` that names no variable).
fn substituted(step: &Step, context: &mut Context) -> Vec<Spanned<String>> {
    let values = step.label_changes().iter().chain(step.annotation_changes()).filter_map(|c| match &c.kind {
        LabelChangeKind::Set(value) => Some(value),
        LabelChangeKind::Remove => None,
    });
    let selector_values = step.selectors().into_iter().flat_map(|s| s.requirements.iter().flat_map(|r| &r.values));
    let mut names: Vec<Spanned<String>> = values
        .chain(selector_values)
        .filter_map(|v| value_variable(&v.value).map(|name| Spanned::new(name.to_string(), v.span)))
        .collect();
    if let StepKind::Apply(ApplySource::Inline(yaml)) = &step.kind {
        for piece in pieces(&yaml.text) {
            match piece {
                Piece::Variable { name, range } => names.push(Spanned::new(name.to_string(), yaml.script_span(range))),
                Piece::Malformed { range } => {
                    let written = &yaml.text[range.clone()];
                    context.report(
                        Diagnostic::error(
                            "rehearse::check::placeholder",
                            format!("`{written}` does not name a variable"),
                        )
                        .label(yaml.script_span(range), "`${{` starts a variable in inline YAML")
                        .help("write `${{ name }}` for a variable bound with `let`, or `$${{` to keep `${{` as it is"),
                    );
                }
                Piece::Text(_) => {}
            }
        }
    }
    names
}

/// A `let` value of what a use needs, for the help of an undefined variable.
fn example_binding(allowed: &[Holds]) -> &'static str {
    match allowed {
        [Holds::Number] => "3",
        [Holds::Object(_)] => "one pod app=web",
        _ => "\"canary\"",
    }
}

fn use_variable(
    name: &Spanned<String>,
    allowed: &[Holds],
    defined: &mut HashMap<&str, Variable>,
    later: &HashMap<&str, Span>,
    context: &mut Context,
) {
    let Some(variable) = defined.get_mut(name.value.as_str()) else {
        let diagnostic =
            Diagnostic::error("rehearse::check::undefined_variable", format!("`${}` is not defined", name.value))
                .label(name.span, "used here");
        let diagnostic = if let Some(definition) = later.get(name.value.as_str()) {
            diagnostic.label(*definition, "defined only later, here").help("move the `let` before its first use")
        } else if let Some(suggestion) = did_you_mean(&name.value, later.keys().copied()) {
            diagnostic.help(format!("did you mean `${suggestion}`?"))
        } else {
            diagnostic.help(format!("define it first, e.g. `let {} = {}`", name.value, example_binding(allowed)))
        };
        context.report(diagnostic);
        return;
    };
    variable.used = true;
    let fits = allowed.iter().any(|a| match (a, variable.holds) {
        (Holds::Object(None), Holds::Object(_)) => true,
        (a, holds) => *a == holds,
    });
    if !fits {
        let wanted = allowed.iter().map(|a| a.describe()).collect::<Vec<_>>().join(" or ");
        context.report(
            Diagnostic::error(
                "rehearse::check::variable_type",
                format!("`${}` holds {}, but {wanted} is needed here", name.value, variable.holds.describe()),
            )
            .label(name.span, format!("needs {wanted}"))
            .label(variable.defined, format!("holds {}", variable.holds.describe()))
            .help("use a variable bound with `let name = one pod <selector>` or `let name = pod/<name>` for objects, and `let n = 3` for numbers"),
        );
    }
}
