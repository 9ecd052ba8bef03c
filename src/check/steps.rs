//! Steps that could never do what they say: a traffic share over 100%, no time to be satisfied,
//! a guard that cannot fire, a refusal expected of a step that only reads.

use super::Context;
use crate::diagnostic::Diagnostic;
use crate::syntax::ast::{Count, Invariant, Scenario, Step, StepKind, TrafficExpectation};

pub(super) fn check(scenario: &Scenario, context: &mut Context) {
    for step in scenario.all_steps() {
        if let Some(within) = step.within.as_ref().filter(|w| w.value.is_zero()) {
            context.report(
                Diagnostic::error("rehearse::check::zero_timeout", "a step given no time can never be satisfied")
                    .label(within.span, "zero")
                    .help("drop `within` for the scenario's timeout (30s unless set), or give the step time"),
            );
        }
        match &step.kind {
            StepKind::ExpectTraffic { expectation: TrafficExpectation::Share { percent, .. }, .. }
                if percent.value > 100.0 =>
            {
                context.report(
                    Diagnostic::error("rehearse::check::share_range", "a share of the traffic is at most 100%")
                        .label(percent.span, "more than all of it")
                        .help("`-> 100% pods ...` says the pods take all of it; `-> pods ...` says exactly they do"),
                );
            }
            StepKind::Guard { invariant: Invariant::AtLeast(Count::Literal(count)), .. } if count.value == 0 => {
                context.report(
                    Diagnostic::warning("rehearse::check::guard_never_fires", "at least 0 endpoints always holds")
                        .label(count.span, "zero")
                        .help("`always-serving` guards against the Service going empty; `at-least N` against fewer than N"),
                );
            }
            StepKind::ExpectRefused { step: inner, .. } if only_reads(inner) => {
                context.report(
                    Diagnostic::error(
                        "rehearse::check::refusal_of_a_read",
                        format!("`{}` only reads the cluster: nothing can refuse it", inner.keyword()),
                    )
                    .label(inner.span, "reads, writes nothing")
                    .help(
                        "`expect-refused` wraps a step that changes the cluster (apply, label, select, template, \
                         scale, delete, ...); to say something must not hold, expect what holds instead",
                    ),
                );
            }
            _ => {}
        }
    }
}

/// Steps that send the API server nothing to accept or refuse.
fn only_reads(step: &Step) -> bool {
    matches!(
        step.kind,
        StepKind::ExpectTraffic { .. }
            | StepKind::Expect { .. }
            | StepKind::Wait(_)
            | StepKind::Let { .. }
            | StepKind::Guard { .. }
            | StepKind::Snapshot { .. }
    )
}
