//! Read-only walks over a step's operands, so each check looks at "every selector" or "every
//! target" without matching on every step kind itself.

use super::ast::*;
use crate::model::{LabelChange, LabelChangeKind, ObjectRef, Selector};
use crate::span::Spanned;

impl Scenario {
    /// Every step in order, with a step wrapped by `expect-refused` right after its wrapper.
    pub fn all_steps(&self) -> Vec<&Step> {
        let mut steps = Vec::new();
        for step in self.steps() {
            steps.push(step);
            if let StepKind::ExpectRefused { step: inner, .. } = &step.kind {
                steps.push(inner);
            }
        }
        steps
    }
}

impl Target {
    pub fn selection(&self) -> Option<&Selection> {
        match self {
            Target::Selection(s) => Some(s),
            _ => None,
        }
    }
}

impl Step {
    /// The targets this step acts on or inspects (not those of a wrapped step).
    pub fn targets(&self) -> Vec<&Target> {
        match &self.kind {
            StepKind::Label { target, .. } | StepKind::Annotate { target, .. } | StepKind::Delete { target } => {
                vec![target]
            }
            StepKind::RemoveFromLb { pods, .. } | StepKind::AddToLb { pods, .. } => vec![pods],
            StepKind::ExpectTraffic { expectation, .. } => match expectation {
                TrafficExpectation::Exactly(t) | TrafficExpectation::Includes(t) | TrafficExpectation::Excludes(t) => {
                    vec![t]
                }
                TrafficExpectation::Share { pods, .. } => vec![pods],
                TrafficExpectation::Count(_) | TrafficExpectation::None(_) => vec![],
            },
            StepKind::Expect { subject, .. } => vec![subject],
            StepKind::Wait(WaitFor::Condition { target, .. } | WaitFor::Deleted(target)) => {
                vec![target]
            }
            StepKind::Let { value: Binding::LabelOf { target, .. } | Binding::NameOf(target), .. } => vec![target],
            _ => vec![],
        }
    }

    /// Counts that may name a variable.
    pub fn counts(&self) -> Vec<&Count> {
        match &self.kind {
            StepKind::ExpectTraffic { expectation: TrafficExpectation::Count(c), .. }
            | StepKind::Expect { expectation: Expectation::Count(c), .. }
            | StepKind::Guard { invariant: Invariant::AtLeast(c), .. }
            | StepKind::Scale { replicas: c, .. }
            | StepKind::Undo { revision: Some(c), .. } => vec![c],
            _ => vec![],
        }
    }

    /// Every `kind/name` reference, including those inside targets.
    pub fn object_refs(&self) -> Vec<&ObjectRef> {
        let mut refs: Vec<&ObjectRef> = match &self.kind {
            StepKind::Convert { source, .. } => vec![source],
            StepKind::Select { service, .. }
            | StepKind::ExpectTraffic { service, .. }
            | StepKind::Guard { service, .. } => vec![service],
            StepKind::Template { controller, .. } => vec![controller],
            StepKind::RemoveFromLb { service: Some(s), .. } | StepKind::AddToLb { service: Some(s), .. } => vec![s],
            StepKind::Expect { expectation: Expectation::Adopted { by: Some(owner), .. }, .. } => vec![owner],
            StepKind::Wait(WaitFor::Rollout(r))
            | StepKind::Scale { target: r, .. }
            | StepKind::Restart { target: r }
            | StepKind::Pause { target: r }
            | StepKind::Resume { target: r }
            | StepKind::Undo { target: r, .. } => {
                vec![r]
            }
            StepKind::Let { value: Binding::Object(r), .. } => vec![r],
            _ => vec![],
        };
        refs.extend(self.targets().into_iter().filter_map(|t| match t {
            Target::Object(o) => Some(o),
            _ => None,
        }));
        refs
    }

    /// Every `kind selector` selection, including `let x = one pod ...`.
    pub fn selections(&self) -> Vec<&Selection> {
        let mut selections: Vec<&Selection> = self.targets().into_iter().filter_map(Target::selection).collect();
        if let StepKind::Let { value: Binding::OneOf(s), .. } = &self.kind {
            selections.push(s);
        }
        selections
    }

    /// Every selector written in the step.
    pub fn selectors(&self) -> Vec<&Selector> {
        let mut selectors: Vec<&Selector> = self.selections().into_iter().filter_map(|s| s.selector.as_ref()).collect();
        match &self.kind {
            StepKind::Select { selector, .. } | StepKind::Expect { expectation: Expectation::Labels(selector), .. } => {
                selectors.push(selector)
            }
            _ => {}
        }
        selectors
    }

    /// Every label change written in the step.
    pub fn label_changes(&self) -> &[LabelChange] {
        match &self.kind {
            StepKind::Label { changes, .. } | StepKind::Template { changes, .. } => changes,
            StepKind::Run { labels, .. } => labels,
            _ => &[],
        }
    }

    /// Every annotation change written in the step (`annotate`): label syntax, but not label values.
    pub fn annotation_changes(&self) -> &[LabelChange] {
        match &self.kind {
            StepKind::Annotate { changes, .. } => changes,
            _ => &[],
        }
    }

    /// The values of the step's annotation changes, to substitute variables in.
    pub fn annotation_values_mut(&mut self) -> Vec<&mut Spanned<String>> {
        match &mut self.kind {
            StepKind::Annotate { changes, .. } => changes
                .iter_mut()
                .filter_map(|c| match &mut c.kind {
                    LabelChangeKind::Set(value) => Some(value),
                    LabelChangeKind::Remove => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Every label value written in the step, to substitute variables in: the values of its label
    /// changes and of its selectors, including those in targets (not those of a wrapped step).
    /// The same values as [`Step::label_changes`] and [`Step::selectors`] show; every step kind is
    /// named, so a new one must decide.
    pub fn label_values_mut(&mut self) -> Vec<&mut Spanned<String>> {
        fn selector<'a>(selector: &'a mut Selector, values: &mut Vec<&'a mut Spanned<String>>) {
            for requirement in &mut selector.requirements {
                values.extend(requirement.values.iter_mut());
            }
        }
        fn selection<'a>(selection: &'a mut Selection, values: &mut Vec<&'a mut Spanned<String>>) {
            if let Some(s) = &mut selection.selector {
                selector(s, values);
            }
        }
        fn target<'a>(target: &'a mut Target, values: &mut Vec<&'a mut Spanned<String>>) {
            if let Target::Selection(s) = target {
                selection(s, values);
            }
        }
        fn changes<'a>(changes: &'a mut [LabelChange], values: &mut Vec<&'a mut Spanned<String>>) {
            for change in changes {
                if let LabelChangeKind::Set(value) = &mut change.kind {
                    values.push(value);
                }
            }
        }
        let mut values = Vec::new();
        match &mut self.kind {
            StepKind::Label { target: t, changes: c } => {
                target(t, &mut values);
                changes(c, &mut values);
            }
            StepKind::Annotate { target: t, .. } => target(t, &mut values),
            StepKind::Select { selector: s, .. } => selector(s, &mut values),
            StepKind::Template { changes: c, .. } | StepKind::Run { labels: c, .. } => changes(c, &mut values),
            StepKind::RemoveFromLb { pods, .. } | StepKind::AddToLb { pods, .. } => target(pods, &mut values),
            StepKind::ExpectTraffic { expectation, .. } => match expectation {
                TrafficExpectation::Exactly(t)
                | TrafficExpectation::Includes(t)
                | TrafficExpectation::Excludes(t)
                | TrafficExpectation::Share { pods: t, .. } => target(t, &mut values),
                TrafficExpectation::Count(_) | TrafficExpectation::None(_) => {}
            },
            StepKind::Expect { subject, expectation } => {
                target(subject, &mut values);
                if let Expectation::Labels(s) = expectation {
                    selector(s, &mut values);
                }
            }
            StepKind::Wait(WaitFor::Condition { target: t, .. } | WaitFor::Deleted(t)) => target(t, &mut values),
            StepKind::Let { value, .. } => match value {
                Binding::OneOf(s) => selection(s, &mut values),
                Binding::LabelOf { target: t, .. } | Binding::NameOf(t) => target(t, &mut values),
                Binding::Object(_) | Binding::Text(_) | Binding::Number(_) => {}
            },
            StepKind::Delete { target: t } => target(t, &mut values),
            StepKind::Apply(_)
            | StepKind::Convert { .. }
            | StepKind::Wait(WaitFor::Rollout(_))
            | StepKind::Guard { .. }
            | StepKind::ExpectRefused { .. }
            | StepKind::Scale { .. }
            | StepKind::Restart { .. }
            | StepKind::Pause { .. }
            | StepKind::Resume { .. }
            | StepKind::Undo { .. }
            | StepKind::Snapshot { .. } => {}
        }
        values
    }
}

#[cfg(test)]
mod tests {
    use crate::model::LabelChangeKind;

    /// The mutable walk sees exactly the values the read-only walks show, for every step form.
    #[test]
    fn label_values_mut_agrees_with_the_read_only_walks() {
        let parsed = crate::syntax::parse(include_str!("../../tests/fixtures/ok/every-step.rollout"));
        assert!(parsed.diagnostics.is_empty());
        let scenario = parsed.script.scenarios().next().expect("a scenario");
        for step in scenario.all_steps() {
            let mut read: Vec<String> = step
                .label_changes()
                .iter()
                .filter_map(|c| match &c.kind {
                    LabelChangeKind::Set(v) => Some(v.value.clone()),
                    LabelChangeKind::Remove => None,
                })
                .collect();
            read.extend(
                step.selectors().iter().flat_map(|s| &s.requirements).flat_map(|r| &r.values).map(|v| v.value.clone()),
            );
            let mut owned = step.clone();
            let mut walked: Vec<String> = owned.label_values_mut().into_iter().map(|v| v.value.clone()).collect();
            read.sort();
            walked.sort();
            assert_eq!(walked, read, "{}", crate::syntax::format::step_text(step));
        }
    }
}
