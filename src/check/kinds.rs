//! Kinds and names: every kind is one rehearse knows, and each step gets the kind it works on.

use std::collections::HashMap;

use super::Context;
use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::model::{Kind, ObjectRef};
use crate::span::{Span, Spanned};
use crate::syntax::ast::{
    Binding, Count, Expectation, Scenario, Selection, Step, StepKind, Target, TrafficExpectation, WaitFor,
};

const CONTROLLERS: &[Kind] = &[Kind::Deployment, Kind::ReplicaSet, Kind::DaemonSet, Kind::StatefulSet];
const ROLLOUTS: &[Kind] = &[Kind::Deployment, Kind::DaemonSet, Kind::StatefulSet];
const SERVICE: &[Kind] = &[Kind::Service];
const PODS: &[Kind] = &[Kind::Pod];

pub(super) fn check(scenario: &Scenario, context: &mut Context) {
    // Only a variable bound before a step counts in it: a use before the `let` is the variable
    // checks' to report.
    let mut variables = Variables::new();
    for step in scenario.all_steps() {
        for object in step.object_refs() {
            known_kind(&object.kind_text, object.kind, context);
            check_name(&object.name, context);
        }
        for selection in step.selections() {
            known_kind(&selection.kind_text, selection.kind, context);
        }
        check_roles(step, &variables, context);
        bind(step, &mut variables);
    }
}

/// The kind of object each variable holds where its `let` names one (`let d = deployment/web`),
/// and where it is bound; a variable bound twice (reported by the variable checks) keeps its first.
pub(super) type Variables<'a> = HashMap<&'a str, (Kind, Span)>;

/// Every variable of the scenario that holds an object of a known kind.
pub(super) fn variable_kinds(scenario: &Scenario) -> Variables<'_> {
    let mut variables = Variables::new();
    for step in scenario.all_steps() {
        bind(step, &mut variables);
    }
    variables
}

fn bind<'a>(step: &'a Step, variables: &mut Variables<'a>) {
    if let StepKind::Let { name, value } = &step.kind
        && let Some(kind) = value.object_kind()
    {
        variables.entry(name.value.as_str()).or_insert((kind, name.span));
    }
}

fn known_kind(text: &Spanned<String>, kind: Option<Kind>, context: &mut Context) {
    if kind.is_some() {
        return;
    }
    let diagnostic = Diagnostic::error("rehearse::check::unknown_kind", format!("unknown kind `{}`", text.value))
        .label(text.span, "not a kind rehearse knows");
    context.report(match did_you_mean(&text.value.to_ascii_lowercase(), Kind::all_spellings()) {
        Some(suggestion) => diagnostic.help(format!("did you mean `{suggestion}`?")),
        None => diagnostic
            .help("the kinds are pod (po), deployment (deploy), replicaset (rs), daemonset (ds), statefulset (sts) and service (svc)"),
    });
}

/// Object names are DNS subdomains: lowercase letters, digits, `-` and `.`, at most 253 characters.
fn check_name(name: &Spanned<String>, context: &mut Context) {
    let text = &name.value;
    let valid = text.len() <= 253
        && text.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && text.starts_with(|c: char| c.is_ascii_alphanumeric())
        && text.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !valid {
        context.report(
            Diagnostic::error("rehearse::check::invalid_name", format!("`{text}` is not a valid object name"))
                .label(name.span, "not a DNS subdomain")
                .help(
                    "object names use lowercase letters, digits, `-` and `.`, and start and end with a letter or digit",
                ),
        );
    }
}

/// Reports an object of the wrong kind for its place in a step.
fn expect_kind(kind: Option<Kind>, span: Span, allowed: &[Kind], role: &str, context: &mut Context) {
    if let Some((kind, diagnostic)) = wrong_kind(kind, allowed, role) {
        context.report(diagnostic.label(span, format!("a {kind}")));
    }
}

/// The error, without its labels, for an object of a kind its place does not take.
fn wrong_kind(kind: Option<Kind>, allowed: &[Kind], role: &str) -> Option<(Kind, Diagnostic)> {
    let kind = kind?; // unknown kinds are reported once, by known_kind
    if allowed.contains(&kind) {
        return None;
    }
    let names = match allowed.iter().map(|k| k.name()).collect::<Vec<_>>().as_slice() {
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
        [] => String::new(),
    };
    let diagnostic =
        Diagnostic::error("rehearse::check::wrong_kind", format!("{role} must be a {names}, not a {kind}"))
            .help(format!("name a {names} here"));
    Some((kind, diagnostic))
}

/// `spec.replicas` is an int32: the API server refuses more (`json: cannot unmarshal number ...
/// of type int32`) on any cluster.
fn replicas_in_range(replicas: &Count, context: &mut Context) {
    if let Count::Literal(n) = replicas
        && n.value > i32::MAX as u64
    {
        context.report(
            Diagnostic::error(
                "rehearse::check::replicas_range",
                format!("no Kubernetes object has {} replicas", n.value),
            )
            .label(n.span, "more than an int32 holds")
            .help(format!("spec.replicas is a 32-bit integer: at most {}", i32::MAX)),
        );
    }
}

fn object(object: &ObjectRef, allowed: &[Kind], role: &str, context: &mut Context) {
    expect_kind(object.kind, object.kind_text.span.to(object.name.span), allowed, role, context);
}

fn selection(selection: &Selection, allowed: &[Kind], role: &str, context: &mut Context) {
    expect_kind(selection.kind, selection.kind_text.span, allowed, role, context);
}

/// A variable in a place that takes only some kinds: the kind its `let` bound (text and numbers
/// are the variable checks' to report).
fn variable(name: &Spanned<String>, variables: &Variables, allowed: &[Kind], role: &str, context: &mut Context) {
    let Some((kind, bound)) = variables.get(name.value.as_str()) else { return };
    if let Some((kind, diagnostic)) = wrong_kind(Some(*kind), allowed, role) {
        context.report(diagnostic.label(name.span, format!("holds a {kind}")).label(*bound, "bound here"));
    }
}

/// Pods, however they are named.
fn pods(target: &Target, variables: &Variables, role: &str, context: &mut Context) {
    match target {
        Target::Object(o) => object(o, PODS, role, context),
        Target::Selection(s) => selection(s, PODS, role, context),
        Target::Variable(name) => variable(name, variables, PODS, role, context),
    }
}

fn check_roles(step: &Step, variables: &Variables, context: &mut Context) {
    match &step.kind {
        StepKind::Convert { source, to, to_kind } => {
            object(source, &[Kind::Deployment], "what `convert` reads", context);
            if *to_kind != Some(Kind::DaemonSet) {
                context.report(
                    Diagnostic::error("rehearse::check::convert_target", format!("cannot convert to `{}`", to.value))
                        .label(to.span, "not `daemonset`")
                        .help("`convert deployment/NAME to daemonset` is the conversion rehearse knows (the runbook's recipe)"),
                );
            }
        }
        StepKind::Select { service, .. } => object(service, SERVICE, "what `select` changes", context),
        StepKind::Template { controller, .. } => object(controller, CONTROLLERS, "what `template` changes", context),
        StepKind::RemoveFromLb { pods: p, service } | StepKind::AddToLb { pods: p, service } => {
            pods(p, variables, "what leaves or joins a load balancer", context);
            if let Some(service) = service {
                object(service, SERVICE, "the load balancer", context);
            }
        }
        StepKind::ExpectTraffic { service, expectation } => {
            object(service, SERVICE, "what `expect-traffic` watches", context);
            match expectation {
                TrafficExpectation::Exactly(t)
                | TrafficExpectation::Includes(t)
                | TrafficExpectation::Excludes(t)
                | TrafficExpectation::Share { pods: t, .. } => pods(t, variables, "what receives traffic", context),
                _ => {}
            }
        }
        StepKind::Guard { service, .. } => object(service, SERVICE, "what a guard watches", context),
        StepKind::Expect { subject, expectation } => match expectation {
            Expectation::Replaced(_)
            | Expectation::Orphaned(_)
            | Expectation::Adopted { .. }
            | Expectation::OnePerNode(_) => {
                pods(subject, variables, "the subject of this expectation", context);
                if let Expectation::Adopted { by: Some(owner), .. } = expectation {
                    object(owner, CONTROLLERS, "an owner", context);
                }
            }
            Expectation::RolledOut(_) => match subject {
                Target::Object(o) => object(o, ROLLOUTS, "what rolls out", context),
                Target::Selection(s) => context.report(
                    Diagnostic::error(
                        "rehearse::check::wrong_kind",
                        "what rolls out must be one named deployment, daemonset or statefulset, not a selection",
                    )
                    .label(s.span, "a selection")
                    .help("name the object: `expect deployment/NAME rolled-out`"),
                ),
                Target::Variable(name) => variable(name, variables, ROLLOUTS, "what rolls out", context),
            },
            _ => {}
        },
        StepKind::Wait(WaitFor::Rollout(target)) => object(target, ROLLOUTS, "what rolls out", context),
        StepKind::Wait(WaitFor::Condition { target, .. }) => {
            pods(target, variables, "what `wait ... condition=` waits for", context)
        }
        StepKind::Restart { target } => object(target, ROLLOUTS, "what `restart` rolls out again", context),
        StepKind::Pause { target } | StepKind::Resume { target } => {
            object(target, &[Kind::Deployment], "what `pause` and `resume` hold and release", context)
        }
        StepKind::Undo { target, .. } => object(target, ROLLOUTS, "what `undo` rolls back", context),
        StepKind::Scale { target, replicas } => {
            object(target, &[Kind::Deployment, Kind::ReplicaSet, Kind::StatefulSet], "what `scale` changes", context);
            replicas_in_range(replicas, context);
        }
        StepKind::Let { value: Binding::OneOf(s), .. } => selection(s, PODS, "`one` picks", context),
        StepKind::Run { name, .. } => check_name(name, context),
        _ => {}
    }
}
