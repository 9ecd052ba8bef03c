//! Expectations and waits: evaluated against the live view after every change until they hold
//! or their timeout passes; a failure says what was expected and what was last observed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::describe;
use super::pod::Pod;
use super::steps::{objects_of, present, resolve};
use super::traffic::Backend;
use super::view::{Unmet, controller_of, controller_ref, is_ready, labels_of, selects};
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
        .wait_for(deadline, |view| match evaluate(step, context) {
            // Judged only at rest: a state the controllers are still reacting to is there for a
            // moment on a real cluster, and never on the built-in one.
            Ok(Ok(observed)) => match view.unfinished() {
                None => Ok(Ok(observed)),
                Some(why) => Err(format!("it held only while {why}")),
            },
            Ok(Err(pending)) => Err(pending),
            Err(error) => Ok(Err(error)),
        })
        .await;
    match outcome {
        Ok(done) => done,
        Err(Unmet::Pending(last)) => {
            let message = format!("not satisfied within {}: {last}", crate::model::duration::format(timeout));
            Err(timed_out(context, message, timeout))
        }
        Err(Unmet::Cluster(why)) => Err(StepError::Infrastructure(why)),
    }
}

/// A step that timed out after `timeout`: `message`, then what the pods still starting or
/// terminating wait for.
fn timed_out(context: &Context<'_>, mut message: String, timeout: Duration) -> StepError {
    let in_flux = describe::PodsInFlux::of(
        &context.view.pods.state(),
        &context.view.nodes.state(),
        &context.pod_variables(),
        context.clock.now(),
    );
    if !in_flux.is_empty() {
        message.push_str(&format!("\n  pods in flux:\n  - {}", in_flux.summary().join("\n  - ")));
    }
    let mut detail = in_flux.detail();
    detail.extend(in_flux.started_late(timeout));
    StepError::TimedOut { message, detail }
}

/// Whether `matching` of `routed` endpoints are `percent` of them. A share is written in whole
/// percent (1 of 3 is 33%), but 0% and 100% claim none and all: 1 endpoint of 201 is not 0%.
fn share_holds(matching: usize, routed: usize, percent: f64) -> bool {
    if routed == 0 {
        return false;
    }
    if percent == 0.0 {
        return matching == 0;
    }
    if percent == 100.0 {
        return matching == routed;
    }
    (matching as f64 * 100.0 / routed as f64 - percent).abs() < 0.5
}

fn evaluate(step: &Step, context: &Context<'_>) -> Result<Verdict, StepError> {
    match &step.kind {
        StepKind::ExpectTraffic { service, expectation } => traffic(context, service, expectation),
        StepKind::Expect { subject, expectation } => expect(context, subject, expectation),
        StepKind::Wait(WaitFor::Rollout(target)) => rolled_out(context, target.kind, &target.name.value),
        StepKind::Wait(WaitFor::Condition { target, condition, status }) => {
            let status = status.as_ref().map_or("True", |s| s.value.as_str());
            let pods = pods(context, target)?;
            if pods.is_empty() {
                return Ok(Err(format!("no pod matches `{}`", crate::syntax::format::target(target))));
            }
            let variables = context.pod_variables();
            let waiting: Vec<_> = pods
                .iter()
                .filter(|p| {
                    !p.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        // As `kubectl wait --for=condition=` compares them: case-folded.
                        .is_some_and(|c| {
                            c.iter().any(|c| {
                                c.type_.eq_ignore_ascii_case(&condition.value) && c.status.eq_ignore_ascii_case(status)
                            })
                        })
                })
                .collect();
            Ok(if waiting.is_empty() {
                Ok(format!("every matching pod has {}={status}", condition.value))
            } else {
                // By role, not generated name: the message is recorded.
                let waiting = describe::distinct(waiting.iter().map(|p| describe::pod(p, &variables)));
                Err(format!("still without {}={status}: {waiting}", condition.value))
            })
        }
        StepKind::Wait(WaitFor::Deleted(target)) => {
            // Gone means gone: an object still terminating is not deleted yet.
            let left = present(context, target, true)?;
            if left == 0 {
                return Ok(Ok("gone".into()));
            }
            // Only when every object left is on its way out may more time be all the step needs.
            let all_terminating = present(context, target, false)? == 0;
            Ok(Err(if !all_terminating {
                format!("{left} object(s) still exist")
            } else if targets_pods(context, target) && deleting_pod(context, target, held) {
                format!(
                    "{left} object(s) still exist, terminating: finalizers hold a deleted pod until whoever set them \
                     removes them, which no wait brings about"
                )
            } else if targets_pods(context, target) && deleting_pod(context, target, |p| on_missing_node(context, p)) {
                format!(
                    "{left} object(s) still exist, terminating on a node that does not exist: no kubelet ends such a \
                     pod, and {}; give the step more time with `within`",
                    describe::COLLECTED
                )
            } else if targets_pods(context, target) {
                format!(
                    "{left} object(s) still exist, terminating: a deleted pod stays until its grace period ends; give \
                     the step more time with `within`"
                )
            } else {
                format!("{left} object(s) still exist, being deleted")
            }))
        }
        _ => Ok(Ok(String::new())),
    }
}

/// Whether a target stands for pods (a bare name or selection names pods unless it says a kind).
fn targets_pods(context: &Context<'_>, target: &Target) -> bool {
    match target {
        Target::Variable(v) => {
            matches!(context.variables.get(&v.value), Some(Value::Pod(_) | Value::Object { kind: Kind::Pod, .. }))
        }
        Target::Object(o) => o.kind.unwrap_or(Kind::Pod) == Kind::Pod,
        Target::Selection(s) => s.kind.unwrap_or(Kind::Pod) == Kind::Pod,
    }
}

/// Whether finalizers hold the pod.
fn held(pod: &Pod) -> bool {
    pod.metadata.finalizers.as_ref().is_some_and(|f| !f.is_empty())
}

/// Whether a pod is bound to a node the view does not hold (none is taken for missing while the
/// view holds no node at all).
fn on_missing_node(context: &Context<'_>, pod: &Pod) -> bool {
    let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).filter(|n| !n.is_empty()) else {
        return false;
    };
    let nodes = context.view.nodes.state();
    !nodes.is_empty() && !nodes.iter().any(|n| n.metadata.name.as_deref() == Some(node))
}

/// Whether a pod the target stands for is being deleted and `such` holds for it.
fn deleting_pod(context: &Context<'_>, target: &Target, such: impl Fn(&Pod) -> bool) -> bool {
    let stands_for = |p: &Pod| match target {
        Target::Variable(v) => match context.variables.get(&v.value) {
            Some(Value::Pod(bound)) => p.metadata.uid.as_ref() == Some(&bound.uid),
            Some(Value::Object { name, .. }) => p.metadata.name.as_ref() == Some(name),
            _ => false,
        },
        Target::Object(o) => p.metadata.name.as_ref() == Some(&o.name.value),
        Target::Selection(s) => s.selector.as_ref().is_none_or(|sel| sel.matches(&labels_of(&p.metadata))),
    };
    context.view.pods.state().iter().any(|p| p.metadata.deletion_timestamp.is_some() && such(p) && stands_for(p))
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

/// How the pods behind a service's endpoints are named in results: by role, and by state when
/// the pod is terminating or already gone (a stale endpoint).
fn describe_backends(context: &Context<'_>, backends: &[Backend]) -> String {
    let variables = context.pod_variables();
    let behind = context.view.pods_behind(backends);
    describe::tally(backends.iter().zip(behind).map(|(backend, behind)| match behind {
        Some(behind) => {
            let name = describe::pod(&behind.pod, &variables);
            if behind.gone {
                format!("{name} (deleted)")
            } else if behind.pod.metadata.deletion_timestamp.is_some() || backend.terminating {
                format!("{name} (terminating)")
            } else {
                name
            }
        }
        None if backend.names_pod => format!("{} (never seen)", backend.named()),
        None => backend.named(),
    }))
}

/// Which pods a traffic expectation's target stands for, decided on each pod itself so that the
/// pods behind endpoints are judged whatever state they are in (live, terminating or deleted).
enum PodFilter {
    Uid(String),
    Name(String),
    Selector(Option<crate::model::Selector>),
}

impl PodFilter {
    fn of(context: &Context<'_>, target: &Target) -> Result<PodFilter, StepError> {
        let not_pods = || {
            StepError::Failed(format!(
                "`{}` is not a pod; expect-traffic judges the pods behind a service's endpoints",
                crate::syntax::format::target(target)
            ))
        };
        match target {
            Target::Variable(v) => match context.variables.get(&v.value) {
                Some(Value::Pod(bound)) => Ok(PodFilter::Uid(bound.uid.clone())),
                Some(Value::Object { kind: Kind::Pod, name }) => Ok(PodFilter::Name(name.clone())),
                _ => Err(not_pods()),
            },
            Target::Object(o) if o.kind.is_none_or(|k| k == Kind::Pod) => Ok(PodFilter::Name(o.name.value.clone())),
            Target::Selection(s) if s.kind.is_none_or(|k| k == Kind::Pod) => {
                Ok(PodFilter::Selector(s.selector.clone()))
            }
            _ => Err(not_pods()),
        }
    }

    fn matches(&self, pod: &Pod) -> bool {
        match self {
            PodFilter::Uid(uid) => pod.metadata.uid.as_ref() == Some(uid),
            PodFilter::Name(name) => pod.metadata.name.as_ref() == Some(name),
            PodFilter::Selector(selector) => selector.as_ref().is_none_or(|s| s.matches(&labels_of(&pod.metadata))),
        }
    }
}

/// Judges where a service's traffic goes. A passing verdict restates what was asserted, so the
/// result is the same whichever moment the cluster first satisfied it; a pending one shows the
/// whole observed routing, for the failure message.
fn traffic(context: &Context<'_>, service: &ObjectRef, expectation: &TrafficExpectation) -> Result<Verdict, StepError> {
    let name = &service.name.value;
    if context.view.service(name).is_none() {
        return Ok(Err(format!("{service} does not exist")));
    }
    let backends = context.view.routed(name);
    // Described only for a pending verdict: a passing one does not show it.
    let observed = || format!("{service} sends traffic to {}", describe_backends(context, &backends));
    // The pods behind the endpoints; one never seen (its events not yet arrived) cannot be judged.
    // An endpoint that names no pod has none to wait for: it takes its share, and no pod's.
    let mut behind: Vec<std::sync::Arc<Pod>> = Vec::new();
    for (backend, found) in backends.iter().zip(context.view.pods_behind(&backends)) {
        match found {
            Some(found) => behind.push(found.pod),
            None if backend.names_pod => return Ok(Err(observed())),
            None => {}
        }
    }
    let to_addresses = backends.iter().any(|b| !b.names_pod);
    let uid_of = |pod: &Pod| pod.metadata.uid.clone().unwrap_or_default();
    let routed_uids: BTreeSet<String> = behind.iter().map(|p| uid_of(p)).collect();
    let target_text = |target: &Target| crate::syntax::format::target(target);
    let (holds, assertion) = match expectation {
        TrafficExpectation::Exactly(target) => {
            let filter = PodFilter::of(context, target)?;
            let wanted: BTreeSet<String> =
                context.view.live_pods().iter().filter(|p| filter.matches(p)).map(|p| uid_of(p)).collect();
            if wanted.is_empty() {
                return Ok(Err(format!("no live pod matches `{}`; {}", target_text(target), observed())));
            }
            (wanted == routed_uids && !to_addresses, format!("{service} sends traffic to exactly the matching pods"))
        }
        TrafficExpectation::Share { percent, pods: target } => {
            let filter = PodFilter::of(context, target)?;
            let matching = behind.iter().filter(|p| filter.matches(p)).count();
            let share = matching as f64 * 100.0 / backends.len().max(1) as f64;
            let holds = share_holds(matching, backends.len(), percent.value);
            if !holds {
                return Ok(Err(format!("{} ({share:.1}% to `{}`)", observed(), target_text(target))));
            }
            (true, format!("{service} sends {}% of its traffic to the matching pods", percent.value))
        }
        TrafficExpectation::Includes(target) => {
            let filter = PodFilter::of(context, target)?;
            let wanted: Vec<String> =
                context.view.live_pods().iter().filter(|p| filter.matches(p)).map(|p| uid_of(p)).collect();
            // Every live matching pod is routed to. With none live, the traffic still includes a
            // matching pod it reaches, whatever its state (a terminating pod kube-proxy falls back
            // to), as `excludes` judges it.
            let holds = wanted.iter().all(|uid| routed_uids.contains(uid)) && behind.iter().any(|p| filter.matches(p));
            (holds, format!("{service} sends traffic to every matching pod"))
        }
        TrafficExpectation::Excludes(target) => {
            let filter = PodFilter::of(context, target)?;
            (!behind.iter().any(|p| filter.matches(p)), format!("{service} sends no traffic to the matching pods"))
        }
        TrafficExpectation::Count(n) => {
            let wanted = count(context, n)?;
            // Endpoints outside the cluster (a hand-made slice's addresses) are counted, and said.
            let addresses = backends.iter().filter(|b| !b.names_pod).count();
            let what = match addresses {
                0 => format!("{wanted} pod(s)"),
                _ => format!("{wanted} endpoint(s): {} pod(s) and {addresses} address(es)", backends.len() - addresses),
            };
            (backends.len() as u64 == wanted, format!("{service} sends traffic to {what}"))
        }
        TrafficExpectation::None(_) => (backends.is_empty(), format!("{service} sends traffic nowhere")),
    };
    Ok(if holds { Ok(assertion) } else { Err(observed()) })
}

fn expect(context: &Context<'_>, subject: &Target, expectation: &Expectation) -> Result<Verdict, StepError> {
    let subject_text = crate::syntax::format::target(subject);
    match expectation {
        Expectation::Count(n) => {
            let wanted = count(context, n)?;
            let found = resolve(context, subject)?.len() as u64;
            Ok(if found == wanted {
                Ok(format!("{found} match"))
            } else {
                Err(format!("{found} match `{subject_text}`"))
            })
        }
        Expectation::Exists(_) | Expectation::Absent(_) => {
            let found = present(context, subject, false)?;
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
            // Every pod the subject stands for: `expect pods app=rng orphaned` claims it of each.
            let found = pods(context, subject)?;
            if found.is_empty() {
                return Ok(Err(format!("`{subject_text}` does not exist")));
            }
            let holds_for = |pod: &Pod| {
                let controller = controller_of(&pod.metadata);
                match expectation {
                    Expectation::Orphaned(_) => controller.is_none(),
                    Expectation::Adopted { by: None, .. } => controller.is_some(),
                    Expectation::Adopted { by: Some(owner), .. } => {
                        controller.as_ref().is_some_and(|(kind, name, _)| {
                            owned_by(&context.view, kind, name, owner.kind, &owner.name.value)
                        })
                    }
                    _ => false,
                }
            };
            let observed = |pod: &Pod| match controller_of(&pod.metadata) {
                Some((kind, _, _)) => format!("controlled by a {}", kind.to_ascii_lowercase()),
                None => "no controller".into(),
            };
            let failing: Vec<_> = found.iter().filter(|pod| !holds_for(pod)).collect();
            let variables = context.pod_variables();
            Ok(match (failing.as_slice(), found.len()) {
                // Every pod's, each once: which pod sorts first by its generated name is chance.
                ([], _) => Ok(describe::distinct(found.iter().map(|pod| observed(pod)))),
                ([pod], 1) => Err(observed(pod)),
                _ => Err(format!(
                    "{} of {} matching pods not so: {}",
                    failing.len(),
                    found.len(),
                    describe::distinct(failing.iter().map(|pod| format!(
                        "{} ({})",
                        describe::pod(pod, &variables),
                        observed(pod)
                    )))
                )),
            })
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
                Ok("labels match".to_string())
            } else {
                Err(format!("labels are {}", mismatched.join("; ")))
            })
        }
        Expectation::RolledOut(_) => match subject {
            Target::Object(object) => rolled_out(context, object.kind, &object.name.value),
            Target::Variable(_) => match super::steps::resolve(context, subject)?.as_slice() {
                [(kind, name)] => rolled_out(context, Some(*kind), name),
                _ => Err(StepError::Failed(format!(
                    "`{}` does not hold one object",
                    crate::syntax::format::target(subject)
                ))),
            },
            Target::Selection(_) => {
                Err(StepError::Failed("`rolled-out` needs one named deployment, daemonset or statefulset".into()))
            }
        },
        Expectation::OnePerNode(_) => {
            let found = pods(context, subject)?;
            let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
            let mut unready = 0;
            for pod in &found {
                let node = pod.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_else(|| UNSCHEDULED.into());
                *per_node.entry(node).or_default() += 1;
                unready += usize::from(!is_ready(pod));
            }
            // One on every schedulable node, and never two on a node: a pod that tolerates a
            // tainted node (a DaemonSet's on the control plane) may be there too.
            let nodes = context.view.schedulable_nodes();
            let elsewhere = per_node.keys().filter(|node| !nodes.contains(node)).count();
            let holds = unready == 0
                && !per_node.contains_key(UNSCHEDULED)
                && per_node.values().all(|count| *count == 1)
                && nodes.iter().all(|node| per_node.contains_key(node));
            let observed = format!(
                "{} ready pod(s) on {} node(s), {} schedulable node(s)",
                found.len() - unready,
                per_node.len(),
                nodes.len()
            );
            Ok(match (holds, elsewhere) {
                (false, _) => Err(observed),
                (true, 0) => Ok(format!("one ready pod on each of {} schedulable nodes", nodes.len())),
                (true, _) => Ok(format!(
                    "one ready pod on each of {} schedulable nodes, and on {elsewhere} tainted or cordoned node(s)",
                    nodes.len()
                )),
            })
        }
    }
}

/// Where `one-per-node` counts a pod no node has taken (not a valid node name).
const UNSCHEDULED: &str = "(unscheduled)";

fn variable<'c>(context: &'c Context<'_>, target: &Target) -> Option<&'c Value> {
    match target {
        Target::Variable(v) => context.variables.get(&v.value),
        _ => None,
    }
}

/// Whether the controller (kind, name) is the owner (`owner_kind`/`owner`) or is itself
/// controlled by it (a Deployment's ReplicaSet).
fn owned_by(view: &super::view::View, kind: &str, name: &str, owner_kind: Option<Kind>, owner: &str) -> bool {
    let owner_kind = owner_kind.map(|k| k.api_kind());
    if owner_kind == Some(kind) && owner == name {
        return true;
    }
    kind == "ReplicaSet"
        && view.replica_sets.state().iter().any(|rs| {
            rs.metadata.name.as_deref() == Some(name)
                && controller_ref(&rs.metadata).is_some_and(|c| owner_kind == Some(c.kind.as_str()) && c.name == owner)
        })
}

fn rolled_out(context: &Context<'_>, kind: Option<Kind>, name: &str) -> Result<Verdict, StepError> {
    match rollout(&context.view, kind, name) {
        Rollout::Done(observed) => Ok(Ok(observed)),
        Rollout::Rolling(observed) => Ok(Err(observed)),
        // Nothing in a scenario can resume it while a step waits: waiting could only time out.
        Rollout::Held(why) | Rollout::Stalled(why) => Err(stalled(context, why)),
    }
}

/// How far a Deployment or DaemonSet has rolled out.
enum Rollout {
    /// Its controller saw the current spec and every wanted pod is updated and available.
    Done(String),
    /// Not yet: what was observed.
    Rolling(String),
    /// As far as it will go on its own: every wanted pod is available, and the update waits for
    /// the user (a paused Deployment, an OnDelete DaemonSet whose old pods nobody deleted).
    Held(String),
    /// It will not finish: the Deployment controller gave up on it, as `kubectl rollout status`
    /// reports (its Progressing condition says ProgressDeadlineExceeded).
    Stalled(String),
}

/// Where a Deployment or DaemonSet's rollout stands, from its status as its controller wrote it.
fn rollout(view: &super::view::View, kind: Option<Kind>, name: &str) -> Rollout {
    let target = format!("{}/{name}", kind.map_or("object", |k| k.name()));
    match kind {
        Some(Kind::Deployment) => {
            let Some(d) = view.deployments.state().into_iter().find(|d| d.metadata.name.as_deref() == Some(name))
            else {
                return Rollout::Rolling(format!("{target} does not exist"));
            };
            let spec = d.spec.as_ref();
            let wanted = spec.and_then(|s| s.replicas).unwrap_or(1);
            let status = d.status.clone().unwrap_or_default();
            let current = status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0);
            let scaled =
                current && status.replicas.unwrap_or(0) == wanted && status.available_replicas.unwrap_or(0) == wanted;
            let observed = format!(
                "{} of {wanted} updated, {} available",
                status.updated_replicas.unwrap_or(0),
                status.available_replicas.unwrap_or(0)
            );
            // A pod on its way to ready is progress to come, which restarts the deadline: the
            // condition is judged once none is left, as at a pace where pods start at once. That
            // holds for a pod made before the controller gave up too: at kind's pace a pod takes
            // seconds to start, and a deadline shorter than that passes while it starts, only to
            // be restarted when it is ready. (One stuck creating on a real cluster then holds the
            // verdict until the step's timeout, which fails the step as the stall would have.)
            // And only at rest: a pod just turned ready is no longer on its way, but until its
            // replica set and the Deployment have counted it the condition is the one it ends.
            let deadline_passed = status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded"))
                && !pods_on_their_way(view, Kind::Deployment, name)
                && view.unfinished().is_none();
            if scaled && status.updated_replicas.unwrap_or(0) == wanted {
                Rollout::Done(format!("rolled out: {wanted} available"))
            } else if current && deadline_passed {
                let seconds = spec.and_then(|s| s.progress_deadline_seconds).unwrap_or(600);
                Rollout::Stalled(format!(
                    "{target} exceeded its progress deadline ({seconds}s without progress): {observed}"
                ))
            } else if scaled
                && spec.and_then(|s| s.paused).unwrap_or(false)
                && pods_bear_out(view, Kind::Deployment, name, wanted)
            {
                Rollout::Held(format!("{target} is paused: its template rolls out once it is resumed: {observed}"))
            } else {
                Rollout::Rolling(observed)
            }
        }
        Some(Kind::DaemonSet) => {
            let Some(d) = view.daemon_sets.state().into_iter().find(|d| d.metadata.name.as_deref() == Some(name))
            else {
                return Rollout::Rolling(format!("{target} does not exist"));
            };
            let status = d.status.clone().unwrap_or_default();
            let current = status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0);
            // No node to run on is a finished rollout too, as kubectl reads it.
            let desired = status.desired_number_scheduled;
            let available =
                current && status.number_available.unwrap_or(0) == desired && status.number_ready == desired;
            let observed = format!(
                "{} of {desired} updated, {} available",
                status.updated_number_scheduled.unwrap_or(0),
                status.number_available.unwrap_or(0)
            );
            let on_delete = d.spec.as_ref().and_then(|s| s.update_strategy.as_ref()).and_then(|u| u.type_.as_deref())
                == Some("OnDelete");
            if available && status.updated_number_scheduled.unwrap_or(0) == desired {
                Rollout::Done(format!("rolled out: {desired} available"))
            } else if available && on_delete && pods_bear_out(view, Kind::DaemonSet, name, desired) {
                Rollout::Held(format!(
                    "{target} updates a node's pod only once that pod is deleted (updateStrategy OnDelete): {observed}"
                ))
            } else {
                Rollout::Rolling(observed)
            }
        }
        Some(Kind::StatefulSet) => {
            let Some(s) = view.stateful_sets.state().into_iter().find(|s| s.metadata.name.as_deref() == Some(name))
            else {
                return Rollout::Rolling(format!("{target} does not exist"));
            };
            let spec = s.spec.as_ref();
            let wanted = spec.and_then(|s| s.replicas).unwrap_or(1);
            let status = s.status.clone().unwrap_or_default();
            let current = status.observed_generation.unwrap_or(0) >= s.metadata.generation.unwrap_or(0);
            let strategy = spec.and_then(|s| s.update_strategy.as_ref());
            let partition = strategy
                .and_then(|u| u.rolling_update.as_ref())
                .and_then(|r| r.partition)
                .unwrap_or(0)
                .clamp(0, wanted);
            let (updated, ready) = (status.updated_replicas.unwrap_or(0), status.ready_replicas.unwrap_or(0));
            let observed = format!("{updated} of {} updated, {ready} ready", wanted - partition);
            // As `kubectl rollout status` reads it (the pods below the partition keep their
            // revision), and borne out by the pods: its status counts a terminating pod as ready.
            let ready_now = current && ready >= wanted && pods_bear_out(view, Kind::StatefulSet, name, wanted);
            if strategy.and_then(|u| u.type_.as_deref()) == Some("OnDelete") {
                if ready_now {
                    Rollout::Held(format!(
                        "{target} updates a pod only once that pod is deleted (updateStrategy OnDelete): {observed}"
                    ))
                } else {
                    Rollout::Rolling(observed)
                }
            } else if ready_now && updated >= wanted - partition {
                Rollout::Done(format!("rolled out: {wanted} ready"))
            } else if let Some(holder) = name_held(view, &s) {
                Rollout::Held(format!(
                    "{target} cannot make its pod {holder}: a pod it does not own holds the name, and its labels no \
                     longer match the selector (relabel or delete pod/{holder}): {observed}"
                ))
            } else {
                Rollout::Rolling(observed)
            }
        }
        _ => Rollout::Rolling(format!("{target} has no rollout")),
    }
}

/// The name of a pod the StatefulSet wants that a live pod it does not own and will not adopt
/// (its labels do not match the selector) holds: the set cannot make that pod until it is gone.
fn name_held(view: &super::view::View, set: &StatefulSet) -> Option<String> {
    let set_name = set.metadata.name.as_deref()?;
    let spec = set.spec.as_ref()?;
    let start = spec.ordinals.as_ref().and_then(|o| o.start).unwrap_or(0);
    let wanted =
        (start..start + spec.replicas.unwrap_or(1)).map(|ordinal| format!("{set_name}-{ordinal}")).collect::<Vec<_>>();
    view.live_pods().iter().find_map(|pod| {
        let name = pod.metadata.name.as_ref()?;
        let owned = controller_ref(&pod.metadata).is_some_and(|c| c.kind == "StatefulSet" && c.name == set_name);
        (wanted.contains(name) && !owned && !selects(&spec.selector, &labels_of(&pod.metadata))).then(|| name.clone())
    })
}

/// Whether the controller's own pods bear out a status that says all `wanted` are available:
/// there are that many live pods it controls (through its ReplicaSets, for a Deployment), every
/// one ready. A status lags a pod deleted a moment ago; the pods in the view do not.
fn pods_bear_out(view: &super::view::View, kind: Kind, name: &str, wanted: i32) -> bool {
    let controls =
        |pod: &Pod| controller_ref(&pod.metadata).is_some_and(|c| owned_by(view, &c.kind, &c.name, Some(kind), name));
    let pods: Vec<_> = view.live_pods().into_iter().filter(|pod| controls(pod)).collect();
    pods.len() == usize::try_from(wanted).unwrap_or(0) && pods.iter().all(|pod| is_ready(pod))
}

/// A rollout that will not finish on its own: `why`, then what the pods still starting wait for.
fn stalled(context: &Context<'_>, mut why: String) -> StepError {
    let in_flux = describe::PodsInFlux::of(
        &context.view.pods.state(),
        &context.view.nodes.state(),
        &context.pod_variables(),
        context.clock.now(),
    );
    if !in_flux.is_empty() {
        why.push_str(&format!("\n  pods in flux:\n  - {}", in_flux.summary().join("\n  - ")));
    }
    StepError::Failed(why)
}

/// Waits until the cluster has settled, so that what is recorded next does not depend on the
/// moment: the endpoints of every Service (or of `only` that one) route to exactly the ready pods
/// its selector matches (the endpoint controller lags the pods, by its batching or a retry), and,
/// for a whole snapshot, every Deployment and DaemonSet has rolled out (or gone as far as it will
/// until the user acts: paused, or OnDelete). A guard starts from the first; a snapshot records
/// only after both, so it reads the same at every pace. A rollout past its progress deadline
/// will not settle: that fails at once, once none of its pods is on its way to ready. A Service
/// whose selected pods are all terminating routes to them until they go (kube-proxy's fallback),
/// so it settles only once their grace period ends.
pub async fn settle(context: &Context<'_>, timeout: Duration, only: Option<&str>) -> Result<(), StepError> {
    let deadline = tokio::time::Instant::now() + timeout;
    // Ok(None) once settled, Ok(Some(why)) when it never will, Err(why) while it has not yet.
    let unsettled = |view: &super::view::View| -> Result<Option<String>, String> {
        for service in view.services.state() {
            let Some(name) = service.metadata.name.clone().filter(|name| only.is_none_or(|only| only == name)) else {
                continue;
            };
            // No endpoints are kept for an ExternalName Service, whatever its selector says.
            let spec = service.spec.as_ref().filter(|s| s.type_.as_deref() != Some("ExternalName"));
            let Some(selector) = spec.and_then(|s| s.selector.clone()).filter(|s| !s.is_empty()) else {
                continue;
            };
            let expected: BTreeSet<Option<String>> = view
                .live_pods()
                .iter()
                .filter(|p| is_ready(p) && super::view::service_selects(&selector, &labels_of(&p.metadata)))
                .map(|p| p.metadata.uid.clone())
                .collect();
            // What the endpoint controller publishes: a slice made by hand beside it is the
            // user's, not something to wait for.
            let backends = view.routed_by_controller(&name);
            let routed: BTreeSet<Option<String>> = backends.iter().map(|b| b.pod_uid.clone()).collect();
            if routed != expected {
                let publishes_not_ready = spec.and_then(|s| s.publish_not_ready_addresses) == Some(true);
                return Err(unsettled_endpoints(
                    &name,
                    &selector,
                    publishes_not_ready,
                    &expected,
                    &backends,
                    &view.pods_behind(&backends),
                ));
            }
        }
        if only.is_some() {
            return Ok(None);
        }
        // One being deleted (finalizers hold it) has gone as far as it will: its controller no
        // longer rolls it out.
        let live = |meta: &ObjectMeta| meta.deletion_timestamp.is_none().then(|| meta.name.clone().unwrap_or_default());
        let controllers = view
            .deployments
            .state()
            .iter()
            .filter_map(|d| Some((Kind::Deployment, live(&d.metadata)?)))
            .chain(view.daemon_sets.state().iter().filter_map(|d| Some((Kind::DaemonSet, live(&d.metadata)?))))
            .chain(view.stateful_sets.state().iter().filter_map(|s| Some((Kind::StatefulSet, live(&s.metadata)?))))
            .collect::<Vec<_>>();
        for (kind, name) in controllers {
            match rollout(view, Some(kind), &name) {
                Rollout::Done(_) | Rollout::Held(_) => {}
                Rollout::Rolling(observed) => {
                    return Err(format!("{kind}/{name} never finished rolling out: {observed}"));
                }
                Rollout::Stalled(why) => return Ok(Some(why)),
            }
        }
        // A pod on a working node turns ready by itself, and a snapshot records whether it is:
        // one still starting (a bare pod just `run`, which no rollout waits for) would be
        // recorded ready or not by the moment, and by the pace.
        if let Some(pod) = starting_pod(view) {
            return Err(format!("pod/{pod} has not started yet"));
        }
        // Recorded at rest, as steps are judged: no reaction pending between the rollouts'
        // last change and the record.
        match view.unfinished() {
            Some(why) => Err(format!("the controllers never came to rest: {why}")),
            None => Ok(None),
        }
    };
    match context.view.wait_for(deadline, unsettled).await {
        Ok(None) => Ok(()),
        Ok(Some(stalled_rollout)) => Err(stalled(context, format!("the cluster will not settle: {stalled_rollout}"))),
        Err(Unmet::Pending(why)) => Err(timed_out(
            context,
            format!("the cluster did not settle within {}: {why}", crate::model::duration::format(timeout)),
            timeout,
        )),
        Err(Unmet::Cluster(why)) => Err(StepError::Infrastructure(why)),
    }
}

/// The first (by name) live pod still on its way to ready, waiting for no readiness gate:
/// bound to a Ready node and not yet started (Pending, its containers being created, none
/// restarted), or not yet judged by the cluster's scheduler (which binds it, or says
/// PodScheduled False). A pod the scheduler cannot place, another scheduler's, one on a node that
/// is gone or not Ready, one whose image cannot be pulled or whose containers crash, or one that
/// runs but fails its readiness probe stays as it is: none of them will be ready by itself.
fn starting_pod(view: &super::view::View) -> Option<String> {
    let nodes = view.nodes.state();
    let live = view.live_pods();
    live.iter().filter(|pod| on_its_way_to_ready(pod, &nodes)).filter_map(|pod| pod.metadata.name.clone()).min()
}

/// Whether some live pod the controller controls (through its ReplicaSets, for a Deployment) is
/// on its way to ready (see [`starting_pod`]).
fn pods_on_their_way(view: &super::view::View, kind: Kind, name: &str) -> bool {
    let nodes = view.nodes.state();
    let controls =
        |pod: &Pod| controller_ref(&pod.metadata).is_some_and(|c| owned_by(view, &c.kind, &c.name, Some(kind), name));
    view.live_pods().iter().any(|pod| controls(pod) && on_its_way_to_ready(pod, &nodes))
}

/// Whether a pod waiting for no readiness gate will turn ready by itself: see [`starting_pod`].
fn on_its_way_to_ready(pod: &Pod, nodes: &[std::sync::Arc<k8s_openapi::api::core::v1::Node>]) -> bool {
    let node_ready = |name: &str| {
        nodes.iter().any(|node| {
            node.metadata.name.as_deref() == Some(name)
                && node
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|conditions| conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
    };
    let being_created = |status: &super::pod::ContainerStatus| {
        let reason = status.state.as_ref().and_then(|s| s.waiting.as_ref()).and_then(|w| w.reason.as_deref());
        status.restart_count == 0 && reason.is_none_or(|r| matches!(r, "ContainerCreating" | "PodInitializing"))
    };
    let Some(spec) = pod.spec.as_ref() else { return false };
    let status = pod.status.as_ref();
    if spec.readiness_gates.as_ref().is_some_and(|gates| !gates.is_empty()) || is_ready(pod) {
        return false;
    }
    match spec.node_name.as_deref().filter(|name| !name.is_empty()) {
        Some(node) => {
            let containers = status
                .into_iter()
                .flat_map(|s| s.container_statuses.iter().chain(&s.init_container_statuses).flatten());
            status.and_then(|s| s.phase.as_deref()).is_none_or(|phase| phase == "Pending")
                && containers.into_iter().all(being_created)
                && node_ready(node)
        }
        None => {
            let judged = status
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|conditions| conditions.iter().any(|c| c.type_ == "PodScheduled"));
            spec.scheduler_name.as_deref().is_none_or(|name| name == "default-scheduler") && !judged
        }
    }
}

/// Why a Service's routed endpoints (`backends`, with the pod behind each) are not the `expected`
/// ones, the ready pods its `selector` picks. Routed pods that are being deleted, still there and
/// still selected are not a lagging controller's: they stay until their grace period ends, routed
/// as kube-proxy's fallback when none of the pods is ready (if they still serve), or listed ready
/// by a Service that publishes not-ready addresses.
fn unsettled_endpoints(
    name: &str,
    selector: &BTreeMap<String, String>,
    publishes_not_ready: bool,
    expected: &BTreeSet<Option<String>>,
    backends: &[Backend],
    behind: &[Option<super::view::Behind>],
) -> String {
    let terminating = |behind: &Option<super::view::Behind>| {
        behind.as_ref().is_some_and(|behind| {
            !behind.gone
                && behind.pod.metadata.deletion_timestamp.is_some()
                && (publishes_not_ready || is_ready(&behind.pod))
                && super::view::service_selects(selector, &labels_of(&behind.pod.metadata))
        })
    };
    let mut extra = backends.iter().zip(behind).filter(|(backend, _)| !expected.contains(&backend.pod_uid)).peekable();
    // A set: while a Service of thousands of pods scales, this runs after every change.
    let routed: BTreeSet<&Option<String>> = backends.iter().map(|b| &b.pod_uid).collect();
    let routes_every_expected = expected.iter().all(|uid| routed.contains(uid));
    let only_terminating_extra =
        routes_every_expected && extra.peek().is_some() && extra.all(|(_, behind)| terminating(behind));
    if only_terminating_extra && publishes_not_ready {
        format!(
            "service/{name} still sends traffic to terminating pods: it publishes not-ready addresses, so its \
             endpoints list them ready until their grace period ends; give the step more time with `within`"
        )
    } else if only_terminating_extra && expected.is_empty() && backends.iter().all(|b| b.terminating) {
        format!(
            "service/{name} still sends traffic to terminating pods: no pod it selects is ready, so kube-proxy \
             falls back to the terminating ones that still serve until their grace period ends; give the step more \
             time with `within`"
        )
    } else {
        format!(
            "service/{name}'s endpoints never matched the ready pods its selector picks: the endpoint controller is \
             behind or stuck"
        )
    }
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
        let _ = writeln!(out, "  service/{name}:");
        let _ = writeln!(out, "    selector: {}", describe::labels(&selector));
        let _ = writeln!(out, "    traffic: {}", describe_backends(context, &context.view.routed(&name)));
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
    let mut stateful_sets = context.view.stateful_sets.state();
    stateful_sets.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    for s in stateful_sets {
        let wanted = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let _ = writeln!(out, "  statefulset/{}: {wanted} replicas", s.metadata.name.clone().unwrap_or_default());
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::super::view::Behind;
    use super::*;

    #[test]
    fn a_share_holds_to_the_whole_percent_and_none_and_all_exactly() {
        assert!(share_holds(1, 3, 33.0) && share_holds(2, 3, 67.0) && share_holds(1, 4, 25.0));
        assert!(!share_holds(1, 5, 25.0), "1 of 5 is 20%");
        assert!(share_holds(0, 201, 0.0) && !share_holds(1, 201, 0.0), "1 of 201 rounds to 0% but is not none");
        assert!(share_holds(201, 201, 100.0) && !share_holds(200, 201, 100.0));
        assert!(!share_holds(0, 0, 0.0), "a service routing nowhere sends no share anywhere");
    }

    fn pod(app: &str, deleting: bool, ready: bool) -> Arc<Pod> {
        let mut metadata = json!({"name": "a", "uid": "uid-a", "labels": {"app": app}});
        if deleting {
            metadata["deletionTimestamp"] = json!("2026-01-01T00:00:30Z");
        }
        let ready = if ready { "True" } else { "False" };
        Arc::new(
            serde_json::from_value(
                json!({"metadata": metadata, "status": {"conditions": [{"type": "Ready", "status": ready}]}}),
            )
            .unwrap(),
        )
    }

    /// The message for a service routing to pod `a` (as a fallback when `terminating`), beside
    /// pod `b` ready and expected when not `none_ready`.
    fn message(none_ready: bool, terminating: bool, behind: Option<Behind>) -> String {
        let selector = BTreeMap::from([("app".to_string(), "rng".to_string())]);
        let backend = |pod: &str, terminating| Backend {
            pod_name: pod.into(),
            pod_uid: Some(format!("uid-{pod}")),
            names_pod: true,
            terminating,
        };
        let expected: BTreeSet<Option<String>> =
            if none_ready { BTreeSet::new() } else { BTreeSet::from([Some("uid-b".to_string())]) };
        let backends = [backend("a", terminating)];
        unsettled_endpoints("rng", &selector, false, &expected, &backends, &[behind])
    }

    #[test]
    fn a_service_left_with_terminating_pods_is_told_from_a_lagging_endpoint_controller() {
        let behind =
            |app: &str, deleting: bool, ready: bool, gone: bool| Some(Behind { pod: pod(app, deleting, ready), gone });
        let falls_back = message(true, true, behind("rng", true, true, false));
        assert!(falls_back.starts_with("service/rng still sends traffic to terminating pods"), "{falls_back}");
        // Anything the slice says that the pods do not bear out is the controller's lag.
        let lagging = [
            ("a ready pod it does not list", message(false, true, behind("rng", true, true, false))),
            ("an endpoint still ready", message(true, false, behind("rng", true, true, false))),
            ("a pod already gone", message(true, true, behind("rng", true, true, true))),
            ("a pod the view never held", message(true, true, None)),
            ("a pod not being deleted", message(true, true, behind("rng", false, true, false))),
            ("a pod no longer ready", message(true, true, behind("rng", true, false, false))),
            ("a pod no longer selected", message(true, true, behind("web", true, true, false))),
        ];
        for (case, message) in lagging {
            assert!(message.ends_with("the endpoint controller is behind or stuck"), "{case}: {message}");
        }
    }

    #[test]
    fn a_service_publishing_not_ready_addresses_lists_its_terminating_pods_ready() {
        let selector = BTreeMap::from([("app".to_string(), "peers".to_string())]);
        let pod = |name: &str, deleting: bool| {
            let mut pod = (*pod("peers", deleting, false)).clone();
            pod.metadata.name = Some(name.into());
            pod.metadata.uid = Some(format!("uid-{name}"));
            Arc::new(pod)
        };
        let backend = |name: &str| Backend {
            pod_name: name.into(),
            pod_uid: Some(format!("uid-{name}")),
            names_pod: true,
            terminating: false,
        };
        // `b` is live (expected once ready, say), `a` is being deleted and listed ready.
        let expected = BTreeSet::from([Some("uid-b".to_string())]);
        let behind =
            [Some(Behind { pod: pod("a", true), gone: false }), Some(Behind { pod: pod("b", false), gone: false })];
        let listed = unsettled_endpoints("peers", &selector, true, &expected, &[backend("a"), backend("b")], &behind);
        assert!(listed.contains("it publishes not-ready addresses, so its endpoints list them ready"), "{listed}");
        // A live pod it lists but does not route is not that.
        let missing = unsettled_endpoints("peers", &selector, true, &expected, &[backend("a")], &behind[..1]);
        assert!(missing.ends_with("behind or stuck"), "{missing}");
    }
}
