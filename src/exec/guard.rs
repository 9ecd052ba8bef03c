//! `guard`: a watch of a Service's EndpointSlices from its step to the end of the scenario. Every
//! change is judged in order (its own watch, not the shared view, so no transient state is
//! coalesced away) by kube-proxy's rules (see [`super::traffic`]): intervals with fewer serving
//! endpoints than required are recorded with the steps that opened and closed them, and with the
//! pods whose endpoints left and came back.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector;
use kube::runtime::watcher::{self, Event};
use tokio::sync::{oneshot, watch};

use super::traffic::{self, Backend};
use super::{Context, StepError};
use crate::model::ObjectRef;
use crate::report::document::{GuardResult, Status};
use crate::syntax::ast::{Count, Invariant};

pub struct Guard {
    about: About,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<History>,
    /// The highest resourceVersion of a slice the guard has judged.
    processed: watch::Receiver<u64>,
    /// The service's slices as the guard's watch holds them.
    slices: reflector::Store<EndpointSlice>,
}

/// What a guard watches for, as written in its step.
struct About {
    service: String,
    invariant: String,
    minimum: usize,
    expect_violation: bool,
    line: usize,
}

/// What the guard's watch saw.
#[derive(Debug, Default)]
struct History {
    violations: Vec<Violation>,
    /// Times the watch had to list the slices again (its resource version expired): changes in
    /// between were never seen, so the guard cannot vouch for those intervals.
    relists: usize,
}

/// An interval below the minimum, by the resourceVersions of the slice changes that opened and
/// closed it. The steps are found from those versions once the scenario's write log is complete:
/// the guard may see a change before the step that caused it has logged its write.
#[derive(Debug, Clone)]
struct Violation {
    opened_by: Option<u64>,
    closed: bool,
    closed_by: Option<u64>,
    lowest: usize,
    /// Routed just before the interval opened, and no longer routed when it did.
    left: Vec<Backend>,
    /// Routed when the interval closed, and not routed while it was open.
    arrived: Vec<Backend>,
}

/// Intervals below the minimum as a result tells them: by the lines of the steps that opened and
/// closed them (`None`: still open at the end).
#[derive(Debug, PartialEq)]
struct Told<'a> {
    opened: usize,
    closed: Option<usize>,
    lowest: usize,
    left: &'a [Backend],
    arrived: &'a [Backend],
}

/// The violations, with one that the step closing the one before it opened told as part of it:
/// from the first's opening to the last's closing (or the end), as low as the lowest, opened by
/// the first's leaving pods and closed by the last's arriving ones. How many dips one step makes,
/// and whether a close and the next opening by the same step are apart, is the controllers'
/// timing (a cluster's EndpointSlice controller batches the changes of a rolling update that the
/// built-in cluster publishes one by one), not the script's.
fn merged_by_steps(violations: &[Violation], step: impl Fn(Option<u64>) -> usize) -> Vec<Told<'_>> {
    let mut told: Vec<Told<'_>> = Vec::new();
    for v in violations {
        let next = Told {
            opened: step(v.opened_by),
            closed: v.closed.then(|| step(v.closed_by)),
            lowest: v.lowest,
            left: &v.left,
            arrived: &v.arrived,
        };
        match told.last_mut() {
            Some(last) if last.closed == Some(next.opened) => {
                last.lowest = last.lowest.min(next.lowest);
                last.closed = next.closed;
                last.arrived = next.arrived;
            }
            _ => told.push(next),
        }
    }
    told
}

/// Judges each change of the service's slices as it comes: the guard's whole state machine.
struct Judge {
    minimum: usize,
    routed: Vec<Backend>,
    history: History,
}

impl Judge {
    /// Judges the routing after a change the API stored at `version`.
    fn observe(&mut self, routed: Vec<Backend>, version: Option<u64>) {
        let serving = routed.len();
        match self.history.violations.last_mut() {
            Some(open) if !open.closed => {
                open.lowest = open.lowest.min(serving);
                if serving >= self.minimum {
                    open.closed = true;
                    open.closed_by = version;
                    open.arrived = routed.iter().filter(|b| !self.routed.contains(b)).cloned().collect();
                }
            }
            _ if serving < self.minimum => self.history.violations.push(Violation {
                opened_by: version,
                closed: false,
                closed_by: None,
                lowest: serving,
                left: self.routed.iter().filter(|b| !routed.contains(b)).cloned().collect(),
                arrived: Vec::new(),
            }),
            _ => {}
        }
        self.routed = routed;
    }
}

pub async fn start(
    context: &Context<'_>,
    service: &ObjectRef,
    invariant: &Invariant,
    expect_violation: bool,
    line: usize,
    timeout: Duration,
) -> Result<Guard, StepError> {
    let minimum = match invariant {
        Invariant::AlwaysServing(_) => 1,
        Invariant::AtLeast(Count::Literal(n)) => n.value as usize,
        Invariant::AtLeast(Count::Variable(v)) => match context.variables.get(&v.value) {
            Some(super::Value::Number(n)) => *n as usize,
            _ => return Err(StepError::Failed(format!("`${}` does not hold a number", v.value))),
        },
    };
    let name = service.name.value.clone();
    // Judge from a settled start: right after `wait rollout` the pods are ready but the endpoint
    // controller may not have published them yet, and that lag is not the script's gap.
    super::expect::settle(context, timeout, Some(&name)).await?;
    if context.view.service(&name).is_none() {
        return Err(StepError::Failed(format!(
            "service/{name} does not exist: a guard watches a Service the scenario has applied"
        )));
    }
    let api: Api<EndpointSlice> = Api::namespaced(context.client.clone(), &context.namespace);
    let config = watcher::Config::default().labels(&format!("{}={name}", traffic::SERVICE_NAME_LABEL));
    let (reader, writer) = reflector::store::<EndpointSlice>();
    let guard_slices = reader.clone();
    let stream = reflector::reflector(writer, watcher::watcher(api, config).default_backoff());
    let (stop, mut stopped) = oneshot::channel::<()>();
    let (listed_tx, listed_rx) = oneshot::channel::<()>();
    let (processed_tx, processed) = watch::channel(0u64);
    let mut judge = Judge { minimum, routed: Vec::new(), history: History::default() };
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        let mut listed = Some(listed_tx);
        loop {
            let event = tokio::select! {
                _ = &mut stopped => break,
                event = stream.next() => event,
            };
            // Errors are retried by the watcher's backoff; it resumes where it stopped.
            let Some(event) = event else { break };
            let Ok(event) = event else { continue };
            let version = match &event {
                Event::Apply(slice) | Event::Delete(slice) | Event::InitApply(slice) => {
                    slice.metadata.resource_version.as_deref().and_then(|v| v.parse::<u64>().ok())
                }
                Event::Init | Event::InitDone => None,
            };
            if let Some(version) = version {
                processed_tx.send_modify(|seen| *seen = (*seen).max(version));
            }
            let routed = || traffic::routed(reader.state().iter().map(|s| &**s));
            match event {
                Event::Init | Event::InitApply(_) => {}
                Event::InitDone => match listed.take() {
                    // The first list is the settled start: a service already below the
                    // minimum there breaks the invariant from the guard's own step on.
                    Some(tx) => {
                        judge.observe(routed(), None);
                        let _ = tx.send(());
                    }
                    None => {
                        judge.history.relists += 1;
                        judge.observe(routed(), None);
                    }
                },
                Event::Apply(_) | Event::Delete(_) => judge.observe(routed(), version),
            }
        }
        judge.history
    });
    // The guard starts watching before the next step runs.
    if tokio::time::timeout(timeout, listed_rx).await.is_err() {
        return Err(StepError::Infrastructure(format!(
            "the guard could not list service/{name}'s EndpointSlices within {}",
            crate::model::duration::format(timeout)
        )));
    }
    let invariant = match invariant {
        Invariant::AlwaysServing(_) => "always-serving".to_string(),
        Invariant::AtLeast(_) => format!("at-least {minimum}"),
    };
    let about = About { service: name, invariant, minimum, expect_violation, line };
    Ok(Guard { about, stop, task, processed, slices: guard_slices })
}

/// Guarded Services that route only to terminating pods (kube-proxy's fallback when none is
/// ready) empty once those pods' grace period ends, with no step left to wait for it; at the
/// fast pace they are gone at once. So the guards judge that end too, whatever the pace: the
/// wait is until none of them routes to a terminating pod, for as long as the longest grace
/// period among those pods and then the scenario's timeout.
pub async fn outlast_terminating_backends(context: &Context<'_>, services: &[&str]) -> Result<(), StepError> {
    let view = &context.view;
    let routes_only_terminating = |service: &str| {
        let routed = view.routed(service);
        (!routed.is_empty() && routed.iter().all(|backend| backend.terminating)).then_some(routed)
    };
    let held: Vec<(&str, Vec<Backend>)> =
        services.iter().filter_map(|service| Some((*service, routes_only_terminating(service)?))).collect();
    if held.is_empty() {
        return Ok(());
    }
    let grace = held
        .iter()
        .flat_map(|(_, routed)| view.pods_behind(routed))
        .flatten()
        .filter_map(|behind| behind.pod.metadata.deletion_grace_period_seconds)
        .max()
        .unwrap_or(0);
    let bound = context.timeout + Duration::from_secs(u64::try_from(grace).unwrap_or(0));
    let deadline = tokio::time::Instant::now() + bound;
    let still_terminating = |view: &super::view::View| {
        let waiting = held.iter().find(|(service, _)| view.routed(service).iter().any(|backend| backend.terminating));
        waiting.map_or(Ok(()), |(service, _)| Err(*service))
    };
    match view.wait_for(deadline, still_terminating).await {
        Ok(()) => Ok(()),
        Err(super::view::Unmet::Pending(service)) => Err(StepError::TimedOut {
            message: format!(
                "as the scenario ends, service/{service} still routes to terminating pods after their grace period \
                 ({grace}s) and the scenario's timeout ({})",
                crate::model::duration::format(context.timeout)
            ),
            detail: Vec::new(),
        }),
        Err(super::view::Unmet::Cluster(why)) => Err(StepError::Infrastructure(why)),
    }
}

impl Guard {
    /// The Service the guard watches.
    pub fn service(&self) -> &str {
        &self.about.service
    }

    pub fn describe(&self) -> String {
        format!("watching service/{} ({})", self.about.service, self.about.invariant)
    }

    /// Stops watching and judges what was seen. The guard first catches up with the newest
    /// version of the service's slices that the scenario's view holds, so it judges the same
    /// history; if it cannot within `timeout`, or its watch lost changes, it says so rather
    /// than pass on an incomplete history.
    pub async fn finish(self, context: &Context<'_>, timeout: Duration) -> GuardResult {
        let Guard { about, stop, task, mut processed, slices: guard_slices } = self;
        let newest = context
            .view
            .slices
            .state()
            .iter()
            .filter(|s| traffic::belongs_to(s, &about.service))
            .filter_map(|s| s.metadata.resource_version.as_deref()?.parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        // Caught up: it has seen the newest version of the slices the view holds, and holds none
        // the view has seen leave the Service (a slice it still holds, of a version the view has
        // passed, that the view no longer has as the Service's: deleted, or relabelled for
        // another Service, which the guard's watch by label is told as a deletion). Once the
        // Service is deleted, its slices are gone, and only the second says whether the guard has
        // seen the changes before they went.
        let gone_from_view = |slice: &EndpointSlice| {
            let version = slice.metadata.resource_version.as_deref().and_then(|v| v.parse::<u64>().ok());
            let held = |s: &Arc<EndpointSlice>| {
                s.metadata.name == slice.metadata.name && traffic::belongs_to(s, &about.service)
            };
            version.is_some_and(|v| v <= context.view.slices_seen_through())
                && !context.view.slices.state().iter().any(held)
        };
        let behind = || guard_slices.state().iter().any(|s| gone_from_view(s));
        let caught_up =
            matches!(tokio::time::timeout(timeout, processed.wait_for(|v| *v >= newest && !behind())).await, Ok(Ok(_)));
        let _ = stop.send(());
        let history = match task.await {
            Ok(history) => history,
            Err(error) => {
                return about.result(Vec::new(), Status::Error, Some(format!("its watch task failed: {error}")));
            }
        };
        if !caught_up {
            let message = format!(
                "its watch never reached the service's newest EndpointSlice change (version {newest}) within {}: \
                 the history it judged is incomplete",
                crate::model::duration::format(timeout)
            );
            return about.result(Vec::new(), Status::Error, Some(message));
        }
        if history.relists > 0 {
            let message = format!(
                "the API server broke its watch {} time(s) (a restart or an outage: the guard had to list the \
                 service's EndpointSlices again), so changes in between were never seen: the history it judged is \
                 incomplete",
                history.relists
            );
            return about.result(Vec::new(), Status::Error, Some(message));
        }
        let variables = context.pod_variables();
        // Which pods, not how many: how many change in one EndpointSlice update is the
        // controller's batching on a cluster (three labelled pods arrive in one update or three).
        let name_pods = |backends: &[Backend]| {
            let behind = context.view.pods_behind(backends);
            super::describe::distinct(backends.iter().zip(behind).map(|(b, behind)| match behind {
                Some(behind) => super::describe::pod(&behind.pod, &variables),
                None => b.named(),
            }))
        };
        let what = if about.minimum == 1 {
            "no serving endpoints".to_string()
        } else {
            format!("fewer than {} serving endpoints", about.minimum)
        };
        // The recorded form holds only the steps, which do not depend on timing; the details
        // (which pods, how low) go into the message.
        let step = |version| super::step_before(&context.write_log, version, about.line);
        let violations: Vec<(String, String)> = merged_by_steps(&history.violations, step)
            .into_iter()
            .map(|v| {
                let when = match v.closed {
                    Some(closed) if closed == v.opened => format!("during the step at line {closed}"),
                    Some(closed) => format!("from the step at line {} until the step at line {closed}", v.opened),
                    None => format!("from the step at line {} until the end of the scenario", v.opened),
                };
                let mut details = format!("{what} {when}");
                if about.minimum > 1 {
                    details.push_str(&format!(" (as few as {})", v.lowest));
                }
                if !v.left.is_empty() {
                    details.push_str(&format!(": opened when {} stopped serving", name_pods(v.left)));
                }
                if v.closed.is_some() {
                    let arrived = if v.arrived.is_empty() { "endpoints".to_string() } else { name_pods(v.arrived) };
                    details.push_str(&format!(", closed when {arrived} started serving"));
                }
                (format!("{what} {when}"), details)
            })
            .collect();
        let (recorded, details): (Vec<String>, Vec<String>) = violations.into_iter().unzip();
        let (status, message) = match (recorded.is_empty(), about.expect_violation) {
            (true, false) => (Status::Passed, None),
            (false, true) => (Status::Passed, None),
            (false, false) => (Status::Failed, Some(format!("fired: {}", details.join("; ")))),
            (true, true) => (
                Status::Failed,
                Some(format!(
                    "was expected to fire, but the service always had {} serving endpoint(s) or more",
                    about.minimum
                )),
            ),
        };
        let mut result = about.result(recorded, status, message);
        result.details = details;
        result
    }
}

impl About {
    fn result(&self, violations: Vec<String>, status: Status, message: Option<String>) -> GuardResult {
        GuardResult {
            service: format!("service/{}", self.service),
            invariant: self.invariant.clone(),
            line: self.line,
            column: 0,
            expect_violation: self.expect_violation,
            violations,
            status,
            message,
            details: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(name: &str) -> Backend {
        Backend { pod_name: name.into(), pod_uid: Some(format!("uid-{name}")), names_pod: true, terminating: false }
    }

    fn judge(minimum: usize) -> Judge {
        Judge { minimum, routed: vec![backend("a"), backend("b")], history: History::default() }
    }

    #[test]
    fn a_gap_is_opened_and_closed_by_the_changes_that_caused_it() {
        let mut judge = judge(1);
        judge.observe(vec![], Some(11));
        judge.observe(vec![backend("c")], Some(21));
        let [gap] = judge.history.violations.as_slice() else { panic!("one gap expected") };
        assert_eq!((gap.opened_by, gap.closed, gap.closed_by, gap.lowest), (Some(11), true, Some(21), 0));
        assert_eq!(gap.left, [backend("a"), backend("b")]);
        assert_eq!(gap.arrived, [backend("c")]);
    }

    #[test]
    fn dips_that_follow_on_at_one_step_are_told_as_one() {
        // A rolling update at line 40 that dips below 3 three times, then a dip from line 41 to
        // 42 and one that line 42 opens again, until 43, then one left open by line 44: versions
        // map to the lines of the writes before them.
        let mut judge =
            Judge { minimum: 3, routed: vec![backend("a"), backend("b"), backend("c")], history: History::default() };
        judge.observe(vec![backend("b"), backend("c")], Some(401));
        judge.observe(vec![backend("b"), backend("c"), backend("d")], Some(402));
        judge.observe(vec![backend("c"), backend("d")], Some(403));
        judge.observe(vec![backend("d")], Some(404));
        judge.observe(vec![backend("c"), backend("d"), backend("e")], Some(405));
        judge.observe(vec![backend("d"), backend("e")], Some(406));
        judge.observe(vec![backend("d"), backend("e"), backend("f")], Some(407));
        judge.observe(vec![backend("e"), backend("f")], Some(411));
        judge.observe(vec![backend("d"), backend("e"), backend("f")], Some(421));
        judge.observe(vec![backend("e"), backend("f")], Some(422));
        judge.observe(vec![backend("d"), backend("e"), backend("f")], Some(431));
        judge.observe(vec![backend("f")], Some(441));
        assert_eq!(judge.history.violations.len(), 6);
        let told = merged_by_steps(&judge.history.violations, |v| 40 + (v.unwrap() % 400 / 10) as usize);
        let expected = [
            Told { opened: 40, closed: Some(40), lowest: 1, left: &[backend("a")], arrived: &[backend("f")] },
            Told { opened: 41, closed: Some(43), lowest: 2, left: &[backend("d")], arrived: &[backend("d")] },
            Told { opened: 44, closed: None, lowest: 1, left: &[backend("d"), backend("e")], arrived: &[] },
        ];
        assert_eq!(told, expected);
    }

    #[test]
    fn shrinking_above_the_minimum_is_no_violation() {
        let mut judge = judge(1);
        judge.observe(vec![backend("a")], Some(11));
        assert!(judge.history.violations.is_empty());
        judge.observe(vec![], Some(12));
        assert_eq!(judge.history.violations.len(), 1);
        assert_eq!(judge.history.violations[0].left, [backend("a")]);
        assert!(!judge.history.violations[0].closed);
    }

    #[test]
    fn at_least_tracks_the_lowest_count() {
        let mut judge = judge(2);
        judge.observe(vec![backend("a")], Some(11));
        judge.observe(vec![], Some(12));
        judge.observe(vec![backend("a"), backend("c")], Some(13));
        let [gap] = judge.history.violations.as_slice() else { panic!("one interval expected") };
        assert_eq!((gap.lowest, gap.closed_by), (0, Some(13)));
    }
}
