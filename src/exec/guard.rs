//! `guard`: a watch of a Service's EndpointSlices from its step to the end of the scenario. Every
//! change is evaluated in order (its own watch, not the shared view, so no transient state is
//! coalesced away); intervals below the required number of ready endpoints are recorded with the
//! steps that opened and closed them.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector;
use kube::runtime::watcher::{self, Event};
use tokio::sync::oneshot;

use super::{Context, StepError};
use crate::model::ObjectRef;
use crate::report::document::{GuardResult, Status};
use crate::syntax::ast::{Count, Invariant};

pub struct Guard {
    service: String,
    invariant: String,
    minimum: usize,
    expect_violation: bool,
    line: usize,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Vec<Violation>>,
    /// The highest resourceVersion of a slice the guard has judged.
    processed: tokio::sync::watch::Receiver<u64>,
}

#[derive(Debug, Clone)]
struct Violation {
    opened_at_line: usize,
    closed_at_line: Option<usize>,
    lowest: usize,
}

fn ready_count(slices: &[Arc<EndpointSlice>]) -> usize {
    slices
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(false))
        .count()
}

pub async fn start(
    context: &Context<'_>,
    service: &ObjectRef,
    invariant: &Invariant,
    expect_violation: bool,
    line: usize,
    timeout: std::time::Duration,
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
    let api: Api<EndpointSlice> = Api::namespaced(context.client.clone(), &context.namespace);
    let config = watcher::Config::default().labels(&format!("kubernetes.io/service-name={name}"));
    let (reader, writer) = reflector::store::<EndpointSlice>();
    let stream = reflector::reflector(writer, watcher::watcher(api, config).default_backoff());
    let (stop, mut stopped) = oneshot::channel::<()>();
    let (listed_tx, listed_rx) = oneshot::channel::<()>();
    let write_log = context.write_log.clone();
    let (processed_tx, processed) = tokio::sync::watch::channel(0u64);
    let guard_line = line;
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        let mut violations: Vec<Violation> = Vec::new();
        let mut listed = Some(listed_tx);
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                event = stream.next() => {
                    let Some(Ok(event)) = event else { if event.is_none() { break } else { continue } };
                    if matches!(event, Event::Init | Event::InitApply(_)) {
                        continue;
                    }
                    if let Some(tx) = listed.take() {
                        let _ = tx.send(());
                    }
                    let ready = ready_count(&reader.state());
                    // The step whose write the API stored last before this change caused it.
                    let version = match &event {
                        Event::Apply(slice) | Event::Delete(slice) => slice.metadata.resource_version.clone(),
                        _ => None,
                    };
                    let line = super::step_before(&write_log, version.as_deref(), guard_line);
                    if let Some(version) = version.as_deref().and_then(|v| v.parse::<u64>().ok()) {
                        processed_tx.send_modify(|seen| *seen = (*seen).max(version));
                    }
                    match violations.last_mut() {
                        Some(open) if open.closed_at_line.is_none() => {
                            open.lowest = open.lowest.min(ready);
                            if ready >= minimum {
                                open.closed_at_line = Some(line);
                            }
                        }
                        _ if ready < minimum => violations.push(Violation { opened_at_line: line, closed_at_line: None, lowest: ready }),
                        _ => {}
                    }
                }
            }
        }
        violations
    });
    // The guard starts watching before the next step runs.
    let _ = tokio::time::timeout(timeout, listed_rx).await;
    let invariant = match invariant {
        Invariant::AlwaysServing(_) => "always-serving".to_string(),
        Invariant::AtLeast(_) => format!("at-least {minimum}"),
    };
    Ok(Guard { service: name, invariant, minimum, expect_violation, line, stop, task, processed })
}

impl Guard {
    pub fn describe(&self) -> String {
        format!("watching service/{} ({})", self.service, self.invariant)
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    /// Stops watching and judges what was seen. `seen_by_view` is the newest slice version the
    /// scenario's view holds: the guard first catches up to it, so it judges the same history.
    pub async fn finish(mut self, seen_by_view: u64) -> GuardResult {
        let caught_up = self.processed.wait_for(|v| *v >= seen_by_view);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), caught_up).await;
        let _ = self.stop.send(());
        let violations = self.task.await.unwrap_or_default();
        let described: Vec<String> = violations
            .iter()
            .map(|v| {
                let end =
                    v.closed_at_line.map_or("the end of the scenario".to_string(), |l| format!("the step at line {l}"));
                let what = if self.minimum == 1 {
                    "no ready endpoints".to_string()
                } else {
                    format!("{} ready endpoints (fewer than {})", v.lowest, self.minimum)
                };
                format!("{what} from the step at line {} until {end}", v.opened_at_line)
            })
            .collect();
        let fired = !violations.is_empty();
        let (status, message) = match (fired, self.expect_violation) {
            (false, false) | (true, true) => (Status::Passed, None),
            (true, false) => (
                Status::Failed,
                Some(format!(
                    "guard service/{} {} (line {}) fired: {}",
                    self.service,
                    self.invariant,
                    self.line,
                    described.join("; ")
                )),
            ),
            (false, true) => (
                Status::Failed,
                Some(format!(
                    "guard service/{} {} (line {}) was expected to fire, but the service always had {} ready endpoint(s) or more",
                    self.service, self.invariant, self.line, self.minimum
                )),
            ),
        };
        GuardResult {
            service: format!("service/{}", self.service),
            invariant: self.invariant,
            line: self.line,
            expect_violation: self.expect_violation,
            violations: described,
            status,
            message,
        }
    }
}
