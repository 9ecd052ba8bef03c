//! Read-only walks over a step's operands, so each check looks at "every selector" or "every
//! target" without matching on every step kind itself.

use super::ast::*;
use crate::model::{LabelChange, ObjectRef, Selector};

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
            StepKind::Label { target, .. } | StepKind::Delete { target } => vec![target],
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
            _ => vec![],
        }
    }

    /// Counts that may name a variable.
    pub fn counts(&self) -> Vec<&Count> {
        match &self.kind {
            StepKind::ExpectTraffic { expectation: TrafficExpectation::Count(c), .. }
            | StepKind::Expect { expectation: Expectation::Count(c), .. }
            | StepKind::Guard { invariant: Invariant::AtLeast(c), .. }
            | StepKind::Scale { replicas: c, .. } => vec![c],
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
            StepKind::Wait(WaitFor::Rollout(r)) | StepKind::Scale { target: r, .. } => vec![r],
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
}
