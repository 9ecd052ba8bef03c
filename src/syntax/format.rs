//! The canonical layout of a script (`rehearse fmt`): four-space indentation, one space between
//! tokens, selectors without spaces, comments kept (two spaces before a trailing one), runs of
//! blank lines collapsed to one. Spellings are kept as written (`deploy/rng` stays `deploy/rng`).

use std::fmt::Write as _;

use super::ast::*;
use crate::model::duration;
use crate::model::labels::quote_if_needed;
use crate::model::{LabelChange, LabelChangeKind, ObjectRef, Operator, Selector};
use crate::span::Spanned;

const INDENT: &str = "    ";

/// Formats a whole script.
pub fn format(script: &Script) -> String {
    let mut out = Lines::default();
    for item in &script.items {
        match item {
            FileItem::Blank => out.blank(),
            FileItem::Comment(c) => out.line("", &c.value),
            FileItem::Setting(s) => out.line("", &with_comment(setting(s), &s.comment)),
            FileItem::Scenario(s) => scenario(s, &mut out),
        }
    }
    out.finish()
}

/// `formatted` (which ends its lines with `\n`) with the line endings of `source`: a script
/// written with CRLF (on Windows) stays CRLF, so formatting it changes only its layout.
pub fn with_line_endings_of(source: &str, formatted: String) -> String {
    let first_line_end = source.find('\n');
    if first_line_end.is_some_and(|end| source[..end].ends_with('\r')) {
        formatted.replace('\n', "\r\n")
    } else {
        formatted
    }
}

/// Output lines, collapsing blank runs and dropping blanks at the start and end of a block.
#[derive(Default)]
struct Lines {
    text: String,
    pending_blank: bool,
    at_block_start: bool,
}

impl Lines {
    fn blank(&mut self) {
        self.pending_blank = !self.text.is_empty() && !self.at_block_start;
    }

    fn line(&mut self, indent: &str, text: &str) {
        if self.pending_blank {
            self.text.push('\n');
            self.pending_blank = false;
        }
        self.at_block_start = false;
        let _ = writeln!(self.text, "{indent}{text}");
    }

    fn open_block(&mut self) {
        self.at_block_start = true;
    }

    fn close_block(&mut self) {
        self.pending_blank = false;
        self.at_block_start = false;
    }

    fn finish(self) -> String {
        self.text
    }
}

fn with_comment(text: String, comment: &Option<Spanned<String>>) -> String {
    match comment {
        Some(c) => format!("{text}  {}", c.value),
        None => text,
    }
}

fn scenario(scenario: &Scenario, out: &mut Lines) {
    let head = format!("scenario {} {{", string(&scenario.name.value));
    out.line("", &with_comment(head, &scenario.comment));
    out.open_block();
    for item in &scenario.items {
        match item {
            ScenarioItem::Blank | ScenarioItem::Invalid(_) => out.blank(),
            ScenarioItem::Comment(c) => out.line(INDENT, &c.value),
            ScenarioItem::Setting(s) => out.line(INDENT, &with_comment(setting(s), &s.comment)),
            ScenarioItem::Step(s) => step_lines(s, out),
        }
    }
    out.close_block();
    out.line("", &with_comment("}".to_string(), &scenario.closing_comment));
}

fn setting(setting: &Setting) -> String {
    match &setting.kind {
        SettingKind::Timeout(t) => format!("timeout {}", duration::format(t.value)),
        SettingKind::Nodes(n) => format!("nodes {}", n.value),
        SettingKind::BaseDir(d) => format!("base-dir {}", string(&d.value)),
    }
}

fn step_lines(step: &Step, out: &mut Lines) {
    let mut text = step_text(step);
    if let Some(within) = &step.within {
        let _ = write!(text, " within {}", duration::format(within.value));
    }
    // A heredoc's body and closing tag follow on their own lines; the step's comment goes after the tag.
    match inline_yaml(step) {
        Some(yaml) => {
            let opener = with_comment(step_text(step), &yaml.comment);
            out.line(INDENT, &opener);
            for line in yaml.text.lines() {
                if line.trim().is_empty() {
                    out.text.push('\n');
                } else {
                    let _ = writeln!(out.text, "{INDENT}{INDENT}{line}");
                }
            }
            out.line(INDENT, &with_comment(yaml.tag.clone(), &step.comment));
        }
        None => out.line(INDENT, &with_comment(text, &step.comment)),
    }
}

fn inline_yaml(step: &Step) -> Option<&InlineYaml> {
    match &step.kind {
        StepKind::Apply(ApplySource::Inline(yaml)) => Some(yaml),
        StepKind::ExpectRefused { step, .. } => inline_yaml(step),
        _ => None,
    }
}

/// The step on one line; a heredoc prints as its opener only.
pub fn step_text(step: &Step) -> String {
    match &step.kind {
        StepKind::Apply(ApplySource::Path(p)) => format!("apply {}", string(&p.value)),
        StepKind::Apply(ApplySource::Inline(yaml)) => format!("apply <<{}", yaml.tag),
        StepKind::Convert { source, to, .. } => {
            format!("convert {} to {}", object(source), to.value)
        }
        StepKind::Label { target: t, changes: c } => format!("label {} {}", target(t), changes(c)),
        StepKind::Annotate { target: t, changes: c } => format!("annotate {} {}", target(t), changes(c)),
        StepKind::Select { service, mode, selector: s } => {
            let op = match mode {
                SelectMode::Replace => "",
                SelectMode::Extend => "+= ",
                SelectMode::Remove => "-= ",
            };
            format!("select {} {op}{}", object(service), selector(s))
        }
        StepKind::Template { controller, changes: c } => format!("template {} {}", object(controller), changes(c)),
        StepKind::RemoveFromLb { pods, service } => {
            let from = service.as_ref().map(|s| format!(" from {}", object(s))).unwrap_or_default();
            format!("remove-from-lb {}{from}", target(pods))
        }
        StepKind::AddToLb { pods, service } => {
            let to = service.as_ref().map(|s| format!(" to {}", object(s))).unwrap_or_default();
            format!("add-to-lb {}{to}", target(pods))
        }
        StepKind::ExpectTraffic { service, expectation } => {
            let what = match expectation {
                TrafficExpectation::Exactly(t) => format!("-> {}", target(t)),
                TrafficExpectation::Share { percent, pods } => {
                    format!("-> {}% {}", percent.value, target(pods))
                }
                TrafficExpectation::Includes(t) => format!("includes {}", target(t)),
                TrafficExpectation::Excludes(t) => format!("excludes {}", target(t)),
                TrafficExpectation::Count(c) => format!("count {}", count(c)),
                TrafficExpectation::None(_) => "none".to_string(),
            };
            format!("expect-traffic {} {what}", object(service))
        }
        StepKind::Expect { subject, expectation } => {
            let what = match expectation {
                Expectation::Count(c) => format!("count {}", count(c)),
                Expectation::Exists(_) => "exists".into(),
                Expectation::Absent(_) => "absent".into(),
                Expectation::Replaced(_) => "replaced".into(),
                Expectation::Orphaned(_) => "orphaned".into(),
                Expectation::Adopted { by: None, .. } => "adopted".into(),
                Expectation::Adopted { by: Some(owner), .. } => format!("adopted by {}", object(owner)),
                Expectation::Labels(s) => format!("labels {}", selector(s)),
                Expectation::RolledOut(_) => "rolled-out".into(),
                Expectation::OnePerNode(_) => "one-per-node".into(),
            };
            format!("expect {} {what}", target(subject))
        }
        StepKind::Wait(WaitFor::Rollout(r)) => format!("wait rollout {}", object(r)),
        StepKind::Wait(WaitFor::Condition { target: t, condition, status }) => {
            let status = status.as_ref().map(|s| format!("={}", s.value)).unwrap_or_default();
            format!("wait {} condition={}{status}", target(t), condition.value)
        }
        StepKind::Wait(WaitFor::Deleted(t)) => format!("wait {} deleted", target(t)),
        StepKind::Let { name, value } => {
            let value = match value {
                Binding::OneOf(s) => format!("one {}", selection(s)),
                Binding::LabelOf { key, target: t } => format!("label {} of {}", key.value, target(t)),
                Binding::NameOf(t) => format!("name of {}", target(t)),
                Binding::Object(o) => object(o),
                Binding::Text(t) => string(&t.value),
                Binding::Number(n) => n.value.to_string(),
            };
            format!("let {} = {value}", name.value)
        }
        StepKind::Guard { service, invariant, expect_violation } => {
            let invariant = match invariant {
                Invariant::AlwaysServing(_) => "always-serving".to_string(),
                Invariant::AtLeast(c) => format!("at-least {}", count(c)),
            };
            let violation = if *expect_violation { " expect-violation" } else { "" };
            format!("guard {} {invariant}{violation}", object(service))
        }
        StepKind::ExpectRefused { message, step } => {
            let message = message.as_ref().map(|m| format!("{} ", string(&m.value))).unwrap_or_default();
            format!("expect-refused {message}{}", step_text(step))
        }
        StepKind::Delete { target: t } => format!("delete {}", target(t)),
        StepKind::Scale { target, replicas } => {
            format!("scale {} to {}", object(target), count(replicas))
        }
        StepKind::Restart { target } => format!("restart {}", object(target)),
        StepKind::Pause { target } => format!("pause {}", object(target)),
        StepKind::Resume { target } => format!("resume {}", object(target)),
        StepKind::Undo { target, revision } => match revision {
            Some(revision) => format!("undo {} to revision {}", object(target), count(revision)),
            None => format!("undo {}", object(target)),
        },
        StepKind::Run { name, image, labels } => {
            let mut text = format!("run {}", name.value);
            if let Some(image) = image {
                let _ = write!(text, " image {}", string(&image.value));
            }
            if !labels.is_empty() {
                let _ = write!(text, " labels {}", changes(labels));
            }
            text
        }
        StepKind::Snapshot { name } => format!("snapshot {}", string(&name.value)),
    }
}

pub fn string(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n").replace('\t', "\\t");
    format!("\"{escaped}\"")
}

fn object(object: &ObjectRef) -> String {
    object.to_string()
}

fn selection(selection: &Selection) -> String {
    match &selection.selector {
        Some(s) => format!("{} {}", selection.kind_text.value, selector(s)),
        None => format!("{} all", selection.kind_text.value),
    }
}

pub fn target(target: &Target) -> String {
    match target {
        Target::Variable(v) => format!("${}", v.value),
        Target::Object(o) => object(o),
        Target::Selection(s) => selection(s),
    }
}

/// A label or selector value: bare unless it could not be read back that way; a variable (`$hash`)
/// always bare, however it was written.
fn value(value: &Spanned<String>) -> String {
    match value_variable(&value.value) {
        Some(_) => value.value.clone(),
        None => quote_if_needed(&value.value),
    }
}

pub fn selector(selector: &Selector) -> String {
    let requirements: Vec<String> = selector
        .requirements
        .iter()
        .map(|r| {
            let key = &r.key.value;
            let values = || r.values.iter().map(value).collect::<Vec<_>>().join(",");
            match r.operator {
                Operator::Equals => format!("{key}={}", values()),
                Operator::NotEquals => format!("{key}!={}", values()),
                Operator::In => format!("{key} in ({})", values()),
                Operator::NotIn => format!("{key} notin ({})", values()),
                Operator::Exists => key.clone(),
                Operator::DoesNotExist => format!("!{key}"),
            }
        })
        .collect();
    requirements.join(",")
}

fn changes(changes: &[LabelChange]) -> String {
    let changes: Vec<String> = changes
        .iter()
        .map(|c| match &c.kind {
            LabelChangeKind::Set(v) => format!("{}={}", c.key.value, value(v)),
            LabelChangeKind::Remove => format!("{}-", c.key.value),
        })
        .collect();
    changes.join(" ")
}

fn count(count: &Count) -> String {
    match count {
        Count::Literal(n) => n.value.to_string(),
        Count::Variable(v) => format!("${}", v.value),
    }
}
