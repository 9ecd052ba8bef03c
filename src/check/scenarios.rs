//! File-level checks: scenario names and settings.

use std::collections::HashMap;

use super::Context;
use crate::diagnostic::Diagnostic;
use crate::span::Span;
use crate::syntax::ast::{ScenarioItem, Script, Setting, SettingKind};

pub(super) fn check(script: &Script, context: &mut Context) {
    let mut seen: HashMap<&str, Span> = HashMap::new();
    for scenario in script.scenarios() {
        let name = scenario.name.value.as_str();
        if name.trim().is_empty() {
            // An empty span means the header did not parse, which the parser has reported.
            if !scenario.name.span.is_empty() {
                context.report(
                    Diagnostic::error("rehearse::check::empty_scenario_name", "this scenario has no name")
                        .label(scenario.name.span, "empty name")
                        .help("name the scenario after what it rehearses; the name labels its results and snapshots"),
                );
            }
        } else if let Some(first) = seen.get(name) {
            context.report(
                Diagnostic::error("rehearse::check::duplicate_scenario", format!("two scenarios are named \"{name}\""))
                    .label(scenario.name.span, "second scenario with this name")
                    .label(*first, "first one here")
                    .help("scenario names must be unique in a file: results and snapshots are keyed by them"),
            );
        } else {
            seen.insert(name, scenario.name.span);
        }
        let has_content = scenario.items.iter().any(|i| matches!(i, ScenarioItem::Step(_) | ScenarioItem::Invalid(_)));
        if !has_content && !scenario.name.value.is_empty() {
            context.report(
                Diagnostic::warning("rehearse::check::empty_scenario", format!("scenario \"{name}\" has no steps"))
                    .label(scenario.name.span, "nothing to run")
                    .help("add steps between `{` and `}`"),
            );
        }
        check_settings(scenario.settings(), context);
    }
    check_settings(script.settings(), context);
}

fn check_settings<'a>(settings: impl Iterator<Item = &'a Setting>, context: &mut Context) {
    let mut seen: HashMap<std::mem::Discriminant<SettingKind>, Span> = HashMap::new();
    for setting in settings {
        if let Some(first) = seen.insert(std::mem::discriminant(&setting.kind), setting.span) {
            context.report(
                Diagnostic::error("rehearse::check::duplicate_setting", "this setting is given twice")
                    .label(setting.span, "again here")
                    .label(first, "first here")
                    .help("keep one of them"),
            );
        }
        match &setting.kind {
            SettingKind::Nodes(n) if n.value == 0 => context.report(
                Diagnostic::error("rehearse::check::no_nodes", "a cluster needs at least one node")
                    .label(n.span, "zero nodes")
                    .help("write `nodes 2` for a control-plane node and two workers' worth of scheduling"),
            ),
            SettingKind::Timeout(t) if t.value.is_zero() => context.report(
                Diagnostic::error("rehearse::check::zero_timeout", "a timeout of zero gives no step a chance")
                    .label(t.span, "zero")
                    .help("the default is `timeout 30s`"),
            ),
            _ => {}
        }
    }
}
