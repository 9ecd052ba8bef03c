//! Expectations and waits: evaluated against the live view after every change until they hold
//! or their timeout passes; a failure says what was expected and what was last observed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

use super::describe;
use super::steps::{objects_of, resolve};
use super::view::{controller_of, is_ready, labels_of};
use super::{Context, StepError, Value};
use crate::model::{Kind, ObjectRef};
use crate::syntax::ast::{Count, Expectation, Step, StepKind, Target, TrafficExpectation, WaitFor};

/// `Ok(observed)` when the expectation holds, `Err(observed)` while it does not yet.
type Verdict = Result<String, String>;

pub async fn run(step: &Step, context: &mut Context<'_>, timeout: Duration) -> Result<String, StepError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let context = &*context;
    let outcome = context
        .view
        .wait_for(deadline, |_| match evaluate(step, context) {
            Ok(Ok(observed)) => Ok(Ok(observed)),
            Ok(Err(pending)) => Err(pending),
            Err(error) => Ok(Err(error)),
        })
        .await;
    match outcome {
        Ok(done) => done,
        Err(last) => {
            Err(StepError::Failed(format!("not satisfied within {}: {last}", crate::model::duration::format(timeout))))
        }
    }
}

fn evaluate(step: &Step, context: &Context<'_>) -> Result<Verdict, StepError> {
    match &step.kind {
        StepKind::ExpectTraffic { service, expectation } => traffic(context, service, expectation),
        StepKind::Expect { subject, expectation } => expect(context, subject, expectation),
        StepKind::Wait(WaitFor::Rollout(target)) => Ok(rolled_out(context, target)),
        StepKind::Wait(WaitFor::Condition { target, condition, status }) => {
            let status = status.as_ref().map_or("True", |s| s.value.as_str());
            let pods = pods(context, target)?;
            if pods.is_empty() {
                return Ok(Err(format!("no pod matches `{}`", crate::syntax::format::target(target))));
            }
            let waiting: Vec<String> = pods
                .iter()
                .filter(|p| {
                    !p.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| c.iter().any(|c| c.type_ == condition.value && c.status == status))
                })
                .map(|p| p.metadata.name.clone().unwrap_or_default())
                .collect();
            Ok(if waiting.is_empty() {
                Ok(format!("{} pod(s) have {}={status}", pods.len(), condition.value))
            } else {
                Err(format!("still without {}={status}: {}", condition.value, waiting.join(", ")))
            })
        }
        StepKind::Wait(WaitFor::Deleted(target)) => {
            let left = match target {
                Target::Variable(v) => match context.variables.get(&v.value) {
                    Some(Value::Pod(bound)) => {
                        context.view.pods.state().iter().filter(|p| p.metadata.uid.as_ref() == Some(&bound.uid)).count()
                    }
                    _ => resolve(context, target)?.len(),
                },
                _ => resolve(context, target)?.len(),
            };
            Ok(if left == 0 { Ok("gone".into()) } else { Err(format!("{left} object(s) still exist")) })
        }
        _ => Ok(Ok(String::new())),
    }
}

/// Live pods a target stands for (a bound pod by its uid, so a same-named successor does not count).
fn pods(context: &Context<'_>, target: &Target) -> Result<Vec<std::sync::Arc<Pod>>, StepError> {
    let live = context.view.live_pods();
    if let Target::Variable(v) = target
        && let Some(Value::Pod(bound)) = context.variables.get(&v.value)
    {
        return Ok(live.into_iter().filter(|p| p.metadata.uid.as_ref() == Some(&bound.uid)).collect());
    }
    let names: BTreeSet<String> = resolve(context, target)?.into_iter().map(|(_, n)| n).collect();
    Ok(live.into_iter().filter(|p| p.metadata.name.as_ref().is_some_and(|n| names.contains(n))).collect())
}

fn count(context: &Context<'_>, count: &Count) -> Result<u64, StepError> {
    super::steps::count(context, count)
}

/// How endpoint pods are named in results.
fn describe_pods(context: &Context<'_>, names: &[String]) -> String {
    let pods = context.view.pods.state();
    let variables = context.pod_variables();
    describe::tally(names.iter().map(|name| match pods.iter().find(|p| p.metadata.name.as_ref() == Some(name)) {
        Some(pod) => describe::pod(pod, &variables),
        None => format!("pod/{name}"),
    }))
}

fn traffic(context: &Context<'_>, service: &ObjectRef, expectation: &TrafficExpectation) -> Result<Verdict, StepError> {
    let name = &service.name.value;
    if context.view.service(name).is_none() {
        return Ok(Err(format!("{service} does not exist")));
    }
    let endpoints = context.view.ready_endpoints(name);
    let observed = format!("{service} sends traffic to {}", describe_pods(context, &endpoints));
    let serving: BTreeSet<&String> = endpoints.iter().collect();
    let names_of = |target: &Target| -> Result<BTreeSet<String>, StepError> {
        Ok(pods(context, target)?.iter().filter_map(|p| p.metadata.name.clone()).collect())
    };
    let target_text = |target: &Target| crate::syntax::format::target(target);
    let holds = match expectation {
        TrafficExpectation::Exactly(target) => {
            let wanted = names_of(target)?;
            if wanted.is_empty() {
                return Ok(Err(format!("no pod matches `{}`; {observed}", target_text(target))));
            }
            wanted.iter().collect::<BTreeSet<_>>() == serving
        }
        TrafficExpectation::Share { percent, pods: target } => {
            let wanted = names_of(target)?;
            let share =
                endpoints.iter().filter(|e| wanted.contains(*e)).count() as f64 * 100.0 / endpoints.len().max(1) as f64;
            let holds = !endpoints.is_empty() && (share - percent.value).abs() < 0.5;
            let observed = format!("{observed} ({share:.1}% to {})", target_text(target));
            return Ok(if holds { Ok(observed) } else { Err(observed) });
        }
        TrafficExpectation::Includes(target) => {
            let wanted = names_of(target)?;
            !wanted.is_empty() && wanted.iter().all(|n| serving.contains(n))
        }
        TrafficExpectation::Excludes(target) => names_of(target)?.iter().all(|n| !serving.contains(n)),
        TrafficExpectation::Count(n) => endpoints.len() as u64 == count(context, n)?,
        TrafficExpectation::None(_) => endpoints.is_empty(),
    };
    Ok(if holds { Ok(observed) } else { Err(observed) })
}

fn expect(context: &Context<'_>, subject: &Target, expectation: &Expectation) -> Result<Verdict, StepError> {
    let subject_text = crate::syntax::format::target(subject);
    match expectation {
        Expectation::Count(n) => {
            let wanted = count(context, n)?;
            let found = resolve(context, subject)?.len() as u64;
            let observed = format!("{found} match `{subject_text}`");
            Ok(if found == wanted { Ok(observed) } else { Err(observed) })
        }
        Expectation::Exists(_) | Expectation::Absent(_) => {
            let found = match subject {
                Target::Variable(_) => pods(context, subject)?.len(),
                _ => resolve(context, subject)?.len(),
            };
            let wanted = matches!(expectation, Expectation::Exists(_));
            let observed = if found > 0 { "exists" } else { "absent" }.to_string();
            Ok(if (found > 0) == wanted { Ok(observed) } else { Err(format!("`{subject_text}` is {observed}")) })
        }
        Expectation::Replaced(_) => {
            let Some(Value::Pod(bound)) = variable(context, subject) else {
                return Err(StepError::Failed("`replaced` needs a pod bound with `let`".into()));
            };
            let Some((kind, _, uid)) = bound.controller.clone() else {
                return Err(StepError::Failed(format!("`{subject_text}` had no controller to replace it")));
            };
            let live = context.view.live_pods();
            let still_owned = live.iter().any(|p| {
                p.metadata.uid.as_ref() == Some(&bound.uid) && controller_of(&p.metadata).is_some_and(|c| c.2 == uid)
            });
            let newcomers = live
                .iter()
                .filter(|p| controller_of(&p.metadata).is_some_and(|c| c.2 == uid))
                .filter(|p| p.metadata.uid.as_ref().is_some_and(|u| !bound.siblings.contains(u)))
                .count();
            let observed = format!("its {} made {newcomers} new pod(s)", kind.to_ascii_lowercase());
            Ok(if !still_owned && newcomers > 0 {
                Ok(format!("replaced: {} made a new pod", kind.to_ascii_lowercase()))
            } else {
                Err(observed)
            })
        }
        Expectation::Orphaned(_) | Expectation::Adopted { .. } => {
            let found = pods(context, subject)?;
            let Some(pod) = found.first() else {
                return Ok(Err(format!("`{subject_text}` does not exist")));
            };
            let controller = controller_of(&pod.metadata);
            let holds = match expectation {
                Expectation::Orphaned(_) => controller.is_none(),
                Expectation::Adopted { by: None, .. } => controller.is_some(),
                Expectation::Adopted { by: Some(owner), .. } => {
                    controller.as_ref().is_some_and(|(kind, name, _)| owned_by(context, kind, name, owner))
                }
                _ => false,
            };
            let observed = match &controller {
                Some((kind, _, _)) => format!("controlled by a {}", kind.to_ascii_lowercase()),
                None => "no controller".into(),
            };
            Ok(if holds { Ok(observed) } else { Err(observed) })
        }
        Expectation::Labels(selector) => {
            let objects = resolve(context, subject)?;
            if objects.is_empty() {
                return Ok(Err(format!("nothing matches `{subject_text}`")));
            }
            let all = objects_of(context, objects[0].0);
            let mismatched: Vec<String> = objects
                .iter()
                .filter_map(|(_, name)| {
                    let labels = all.iter().find(|(n, _)| n == name).map(|(_, l)| l.clone()).unwrap_or_default();
                    (!selector.matches(&labels)).then(|| describe::labels(&labels))
                })
                .collect();
            Ok(if mismatched.is_empty() {
                Ok(format!("labels match {selector}"))
            } else {
                Err(format!("labels are {}", mismatched.join("; ")))
            })
        }
        Expectation::RolledOut(_) => match subject {
            Target::Object(object) => Ok(rolled_out(context, object)),
            _ => Err(StepError::Failed("`rolled-out` needs a deployment or daemonset".into())),
        },
        Expectation::OnePerNode(_) => {
            let found = pods(context, subject)?;
            let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
            let mut unready = 0;
            for pod in &found {
                let node =
                    pod.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_else(|| "(unscheduled)".into());
                *per_node.entry(node).or_default() += 1;
                unready += usize::from(!is_ready(pod));
            }
            let nodes = context.view.schedulable_nodes();
            let holds =
                unready == 0 && per_node.len() == nodes.len() && nodes.iter().all(|n| per_node.get(n) == Some(&1));
            let observed = format!(
                "{} ready pod(s) on {} node(s), {} schedulable node(s)",
                found.len() - unready,
                per_node.len(),
                nodes.len()
            );
            Ok(if holds {
                Ok(format!("one ready pod on each of {} schedulable nodes", nodes.len()))
            } else {
                Err(observed)
            })
        }
    }
}

fn variable<'c>(context: &'c Context<'_>, target: &Target) -> Option<&'c Value> {
    match target {
        Target::Variable(v) => context.variables.get(&v.value),
        _ => None,
    }
}

/// Whether the controller (kind, name) is `owner` or is itself controlled by it.
fn owned_by(context: &Context<'_>, kind: &str, name: &str, owner: &ObjectRef) -> bool {
    if owner.kind.map(|k| k.api_kind()) == Some(kind) && owner.name.value == name {
        return true;
    }
    if kind == "ReplicaSet" {
        return context.view.replica_sets.state().iter().any(|rs| {
            rs.metadata.name.as_deref() == Some(name)
                && controller_of(&rs.metadata).is_some_and(|(k, n, _)| {
                    owner.kind.map(|o| o.api_kind()) == Some(k.as_str()) && n == owner.name.value
                })
        });
    }
    false
}

fn rolled_out(context: &Context<'_>, target: &ObjectRef) -> Verdict {
    let name = &target.name.value;
    match target.kind {
        Some(Kind::Deployment) => {
            let Some(d) = context.view.deployments.state().into_iter().find(|d| d.metadata.name.as_ref() == Some(name))
            else {
                return Err(format!("{target} does not exist"));
            };
            let wanted = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let status = d.status.clone().unwrap_or_default();
            let current = status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0);
            let done = current
                && status.updated_replicas.unwrap_or(0) == wanted
                && status.replicas.unwrap_or(0) == wanted
                && status.available_replicas.unwrap_or(0) == wanted;
            let observed = format!(
                "{} of {wanted} updated, {} available",
                status.updated_replicas.unwrap_or(0),
                status.available_replicas.unwrap_or(0)
            );
            if done { Ok(format!("rolled out: {wanted} available")) } else { Err(observed) }
        }
        Some(Kind::DaemonSet) => {
            let Some(d) = context.view.daemon_sets.state().into_iter().find(|d| d.metadata.name.as_ref() == Some(name))
            else {
                return Err(format!("{target} does not exist"));
            };
            let status = d.status.clone().unwrap_or_default();
            let current = status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0);
            let desired = status.desired_number_scheduled;
            let done = current
                && desired > 0
                && status.updated_number_scheduled.unwrap_or(0) == desired
                && status.number_available.unwrap_or(0) == desired
                && status.number_ready == desired;
            let observed = format!(
                "{} of {desired} updated, {} available",
                status.updated_number_scheduled.unwrap_or(0),
                status.number_available.unwrap_or(0)
            );
            if done { Ok(format!("rolled out: {desired} available")) } else { Err(observed) }
        }
        _ => Err(format!("{target} has no rollout")),
    }
}

/// Waits until the ready endpoints of every Service (or of `only` that one) are exactly the ready
/// pods its selector matches: the endpoint controller lags the pods (by its batching, or a retry),
/// so a snapshot records, and a guard starts from, a settled state rather than one in flux.
pub async fn settle(context: &Context<'_>, timeout: Duration, only: Option<&str>) -> Result<(), StepError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let unsettled = |view: &super::view::View| {
        let service = view.services.state().iter().find_map(|service| {
            let name = service.metadata.name.clone().filter(|name| only.is_none_or(|only| only == name))?;
            let selector = service.spec.as_ref()?.selector.clone().filter(|s| !s.is_empty())?;
            let mut expected: Vec<String> = view
                .live_pods()
                .iter()
                .filter(|p| is_ready(p) && selector.iter().all(|(k, v)| labels_of(&p.metadata).get(k) == Some(v)))
                .filter_map(|p| p.metadata.name.clone())
                .collect();
            expected.sort();
            (view.ready_endpoints(&name) != expected).then_some(name)
        });
        match service {
            Some(service) => Err(service),
            None => Ok(()),
        }
    };
    context.view.wait_for(deadline, unsettled).await.map_err(|service| {
        StepError::Failed(format!(
            "service/{service}'s ready endpoints never matched the ready pods its selector picks: the endpoint controller is behind or stuck"
        ))
    })
}

/// The observed state recorded by `snapshot`: services and where their traffic goes, pods by
/// role and labels, controllers' readiness. Deterministic across runs and clusters.
pub fn snapshot_body(context: &Context<'_>) -> String {
    let mut out = String::new();
    let variables = context.pod_variables();
    let _ = writeln!(out, "services:");
    let mut services = context.view.services.state();
    services.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    for service in services {
        let name = service.metadata.name.clone().unwrap_or_default();
        let selector = service.spec.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default();
        let endpoints = context.view.ready_endpoints(&name);
        let _ = writeln!(out, "  service/{name}:");
        let _ = writeln!(out, "    selector: {}", describe::labels(&selector));
        let _ = writeln!(out, "    traffic: {}", describe_pods(context, &endpoints));
    }
    let _ = writeln!(out, "pods:");
    let mut pods: BTreeMap<String, usize> = BTreeMap::new();
    for pod in context.view.live_pods() {
        let ready = if is_ready(&pod) { "ready" } else { "not ready" };
        let line =
            format!("{} [{}] {ready}", describe::pod(&pod, &variables), describe::labels(&labels_of(&pod.metadata)));
        *pods.entry(line).or_default() += 1;
    }
    for (line, n) in pods {
        let _ = writeln!(out, "  - {n} × {line}");
    }
    let _ = writeln!(out, "controllers:");
    let mut deployments = context.view.deployments.state();
    deployments.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    // Wanted counts only: availability is in the pods above, and controllers' status fields lag.
    for d in deployments {
        let wanted = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let _ = writeln!(out, "  deployment/{}: {wanted} replicas", d.metadata.name.clone().unwrap_or_default());
    }
    let mut daemon_sets = context.view.daemon_sets.state();
    daemon_sets.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    for d in daemon_sets {
        let _ = writeln!(out, "  daemonset/{}", d.metadata.name.clone().unwrap_or_default());
    }
    out
}
