//! File-level checks: scenario names and settings.

use std::collections::HashMap;

use super::Context;
use crate::diagnostic::Diagnostic;
use crate::model::file_name::slug;
use crate::span::{Span, Spanned};
use crate::syntax::ast::{ScenarioItem, Script, Setting, SettingKind, StepKind};

pub(super) fn check(script: &Script, source: &str, context: &mut Context) {
    // Each name's first scenario, and the second (reported once, with how many more share it).
    let mut seen: HashMap<&str, (Span, Option<Span>, usize)> = HashMap::new();
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
        } else if let Some((_, second, more)) = seen.get_mut(name) {
            match second {
                None => *second = Some(scenario.name.span),
                Some(_) => *more += 1,
            }
        } else {
            seen.insert(name, (scenario.name.span, None, 0));
        }
        let has_content = scenario.items.iter().any(|i| matches!(i, ScenarioItem::Step(_) | ScenarioItem::Invalid(_)));
        // An unclosed scenario is reported by the parser; "no steps" would only repeat it.
        if !has_content && !scenario.name.value.is_empty() && is_closed(scenario, source) {
            context.report(
                Diagnostic::warning("rehearse::check::empty_scenario", format!("scenario \"{name}\" has no steps"))
                    .label(scenario.name.span, "nothing to run")
                    .help("add steps between `{` and `}`"),
            );
        }
        check_settings(scenario.settings(), context);
    }
    let mut duplicates: Vec<_> =
        seen.into_iter().filter_map(|(name, (first, second, more))| Some((second?, first, more, name))).collect();
    duplicates.sort_by_key(|(second, ..)| second.start);
    for (second, first, more, name) in duplicates {
        let message = match more {
            0 => format!("two scenarios are named \"{name}\""),
            more => format!("{} scenarios are named \"{name}\"", more + 2),
        };
        context.report(
            Diagnostic::error("rehearse::check::duplicate_scenario", message)
                .label(second, "second scenario with this name")
                .label(first, "first one here")
                .help("scenario names must be unique in a file: results and snapshots are keyed by them"),
        );
    }
    check_file_names(script, context);
    check_settings(script.settings(), context);
}

/// Names that differ but are filed the same (see [`slug`]): two scenarios whose result documents
/// and snapshot files would overwrite each other, or two snapshots of a scenario one file.
fn check_file_names(script: &Script, context: &mut Context) {
    let mut scenarios: HashMap<String, &Spanned<String>> = HashMap::new();
    for scenario in script.scenarios() {
        let name = &scenario.name;
        if name.value.trim().is_empty() {
            continue;
        }
        let filed_as = slug(&name.value, '-');
        match scenarios.get(&filed_as) {
            // The same name twice is a duplicate, reported as one.
            Some(first) if first.value == name.value => {}
            Some(first) => context.report(
                Diagnostic::error(
                    "rehearse::check::scenario_file_clash",
                    format!("scenarios \"{}\" and \"{}\" would share their files", first.value, name.value),
                )
                .label(name.span, format!("filed as `{filed_as}`, as the first one is"))
                .label(first.span, "first one here")
                .help(FILED_BY_LETTERS_AND_DIGITS),
            ),
            None => {
                scenarios.insert(filed_as, name);
            }
        }
        let mut snapshots: HashMap<String, &Spanned<String>> = HashMap::new();
        for step in scenario.all_steps() {
            let StepKind::Snapshot { name } = &step.kind else { continue };
            let filed_as = slug(&name.value, '_');
            match snapshots.get(&filed_as) {
                Some(first) => {
                    let message = if first.value == name.value {
                        format!("two snapshots of this scenario are named \"{}\"", name.value)
                    } else {
                        format!("snapshots \"{}\" and \"{}\" would share their file", first.value, name.value)
                    };
                    context.report(
                        Diagnostic::error("rehearse::check::duplicate_snapshot", message)
                            .label(name.span, "second snapshot with this file")
                            .label(first.span, "first one here")
                            .help(FILED_BY_LETTERS_AND_DIGITS),
                    );
                }
                None => {
                    snapshots.insert(filed_as, name);
                }
            }
        }
    }
}

const FILED_BY_LETTERS_AND_DIGITS: &str = "results and snapshot files are named by a name's letters and digits, in lower \
     case: give each one a name of its own";

/// Whether the scenario ends with its `}` line (its span's last line starts with `}`).
fn is_closed(scenario: &crate::syntax::ast::Scenario, source: &str) -> bool {
    let text = source.get(scenario.span.start..scenario.span.end).unwrap_or_default();
    text.trim_end().lines().next_back().is_some_and(|line| line.trim_start().starts_with('}'))
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
