//! The control plane of the built-in cluster: the controller-manager's Deployment, ReplicaSet,
//! DaemonSet, StatefulSet, EndpointSlice, EndpointSlice mirroring, HorizontalPodAutoscaler,
//! garbage-collector, pod garbage-collector and namespace controllers, the scheduler, and a kubelet stand-in. Each
//! follows the upstream controller's rules (which pods it adopts, which it deletes first, when a
//! rollout may go on, what its status says), run synchronously: after every accepted write the
//! controllers run in turn until none writes any more.
//!
//! Everything here is deterministic: objects are visited in store order, names come from
//! `Store::random_suffix`, hashes from `store::hash_of`, and every delay is fixed.

mod autoscaler;
mod daemonset;
mod demand;
mod deployment;
mod endpointslice;
mod endpointslice_mirroring;
mod gc;
mod kubelet;
mod nodes;
mod pod_config;
mod podgc;
mod replicaset;
mod scheduler;
mod statefulset;
#[cfg(test)]
mod tests;

use std::cmp::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::time::Instant;

pub use autoscaler::scales;
pub use nodes::add_daemon_tolerations;
pub use nodes::default_nodes;

use super::Pace;
use super::resources::Resource;
use super::store::{Store, Stored};

/// How many rounds of all controllers one reconcile may take before it gives up: a loop that
/// long means two controllers fight over an object.
const MAX_ROUNDS: usize = 10_000;

/// One controller of the control plane, in the order a round runs them.
#[derive(Clone, Copy, Debug)]
enum Controller {
    GarbageCollector,
    PodGarbageCollector,
    Autoscaler,
    Deployment,
    ReplicaSet,
    DaemonSet,
    StatefulSet,
    Scheduler,
    Kubelet,
    EndpointSlice,
    EndpointSliceMirroring,
}

impl Controller {
    const IN_ORDER: [Controller; CONTROLLERS] = [
        Controller::GarbageCollector,
        Controller::PodGarbageCollector,
        Controller::Autoscaler,
        Controller::Deployment,
        Controller::ReplicaSet,
        Controller::DaemonSet,
        Controller::StatefulSet,
        Controller::Scheduler,
        Controller::Kubelet,
        Controller::EndpointSlice,
        Controller::EndpointSliceMirroring,
    ];

    /// The version of the last change in `namespace` that can give the controller work;
    /// `backing_off`: a ReplicaSet, DaemonSet or StatefulSet there is backing off from a
    /// refused pod.
    fn last_change(self, store: &Store, namespace: &str, backing_off: bool) -> u64 {
        match self {
            // It reads every kind, but only removals, deletions and changed owner references
            // can leave a reference dangling or a deletion to finish.
            Controller::GarbageCollector => store.last_owner_change(namespace),
            // They never read labels or annotations: a change to those alone gives them nothing to do.
            Controller::Kubelet | Controller::PodGarbageCollector => {
                store.last_state_change_of(namespace, self.reads(store, namespace))
            }
            // They read a pod's labels only to select it (and for the hash labels they write):
            // a relabelling that moves no pod into or out of a selection gives them nothing.
            // Unless one of them in the namespace is backing off: any change to a pod is an
            // event for the pod's controller, which then tries again at once (the others, woken
            // too, find nothing to do).
            Controller::ReplicaSet | Controller::DaemonSet | Controller::StatefulSet if backing_off => {
                store.last_change_of(namespace, self.reads(store, namespace))
            }
            Controller::ReplicaSet | Controller::DaemonSet | Controller::StatefulSet | Controller::EndpointSlice => {
                store.last_selection_change_of(namespace, self.reads(store, namespace))
            }
            other => store.last_change_of(namespace, other.reads(store, namespace)),
        }
    }

    /// The kinds whose objects the controller reads in `namespace` (as its informers would
    /// watch them): a change to anything else cannot give it work.
    fn reads(self, store: &Store, namespace: &str) -> &'static [Resource] {
        use super::resources::*;
        match self {
            Controller::GarbageCollector => ALL,
            // It reads its targets only when its timer is due (it does not watch them).
            Controller::Autoscaler => &[HORIZONTAL_POD_AUTOSCALER],
            // Pods matter to a Deployment only while a Recreate rollout waits for the old ones to
            // go (upstream's pod handler enqueues only those); the rest it reads from its
            // ReplicaSets' status.
            Controller::Deployment if deployment::any_recreate(store, namespace) => &[DEPLOYMENT, REPLICA_SET, POD],
            Controller::Deployment => &[DEPLOYMENT, REPLICA_SET],
            Controller::ReplicaSet => &[REPLICA_SET, POD],
            Controller::DaemonSet => &[DAEMON_SET, CONTROLLER_REVISION, POD, NODE],
            // Pods and revisions matter only where a StatefulSet is.
            Controller::StatefulSet if store.list(STATEFUL_SET, Some(namespace)).next().is_none() => &[STATEFUL_SET],
            Controller::StatefulSet => &[STATEFUL_SET, CONTROLLER_REVISION, POD],
            Controller::Scheduler | Controller::PodGarbageCollector => &[POD, NODE],
            // The ConfigMaps and Secrets its pods' volumes and environment name (`pod_config`).
            Controller::Kubelet => &[POD, NODE, CONFIG_MAP, SECRET],
            Controller::EndpointSlice => &[SERVICE, ENDPOINT_SLICE, POD, NODE],
            Controller::EndpointSliceMirroring => &[SERVICE, ENDPOINTS, ENDPOINT_SLICE],
        }
    }
}

const CONTROLLERS: usize = 11;

/// What the controllers remember of one namespace, per controller (indexed as `IN_ORDER`).
#[derive(Default)]
struct Visits {
    /// The store's version when the controller last went through the namespace: if nothing it
    /// reads has changed there since, it has nothing new to do (unless its timer is due).
    at: [Option<u64>; CONTROLLERS],
    /// The earliest time the controller asked to be woken there.
    due: [Option<Instant>; CONTROLLERS],
    /// Whether its due timer was already served in this call of `reconcile`.
    woken: [bool; CONTROLLERS],
}

impl Visits {
    /// Whether nothing in the namespace can have work: no change since every controller's last
    /// visit, and no timer left to serve at `now`.
    fn settled(&self, last_change: u64, now: Instant) -> bool {
        let seen = self.at.iter().all(|at| at.is_some_and(|at| at >= last_change));
        seen && (0..CONTROLLERS).all(|i| self.woken[i] || self.due[i].is_none_or(|due| due > now))
    }
}

/// The controllers, with the little state the kubelet stand-in keeps between calls (when each pod
/// turns Ready, when each terminating pod is gone, which pod IP each node hands out next).
pub struct Controllers {
    pace: Pace,
    kubelet: kubelet::Kubelet,
    endpoint_slices: endpointslice::EndpointSlices,
    autoscalers: autoscaler::Autoscalers,
    pod_gc: podgc::PodGc,
    backoff: Backoff,
    visits: std::collections::HashMap<String, Visits, foldhash::fast::RandomState>,
    /// Asked before each round: whether the run that uses this cluster was interrupted.
    interrupted: Option<Box<dyn Fn() -> bool + Send>>,
}

impl Controllers {
    pub fn new(pace: Pace) -> Controllers {
        Controllers {
            pace,
            kubelet: kubelet::Kubelet::default(),
            endpoint_slices: Default::default(),
            autoscalers: Default::default(),
            pod_gc: Default::default(),
            backoff: Default::default(),
            visits: Default::default(),
            interrupted: None,
        }
    }

    /// Has every later reconcile stop between two rounds once `interrupted` says so, its work
    /// left unfinished: a write that sets off thousands of pods (20 rounds of up to 500 for
    /// 10,000) then gives its thread back within a round of a Ctrl-C, not seconds later. The
    /// cluster's state is no longer Kubernetes' once that happens, so only a run that is
    /// ending (and uses the cluster no more) may say so.
    pub fn stop_when(&mut self, interrupted: impl Fn() -> bool + Send + 'static) {
        self.interrupted = Some(Box::new(interrupted));
    }

    /// The objects whose `spec.replicas` an autoscaler wrote since the last call, as (resource,
    /// namespace, name). Upstream the autoscaler updates the scale subresource, and an update
    /// takes the fields it changes from every other field manager: a later apply that leaves
    /// `replicas` out must keep the autoscaler's count, not drop it.
    pub fn take_rescaled(&mut self) -> Vec<(super::resources::Resource, String, String)> {
        self.autoscalers.take_rescaled()
    }

    /// Runs every controller over every namespace that changed (or whose timer is due) until
    /// none writes any more. Returns the earliest instant at which something is due (a pod
    /// turning Ready at the kind pace, a grace period ending, a pod becoming available after
    /// minReadySeconds, a progress deadline), so the caller can sleep until then and call again.
    ///
    /// A controller runs in a namespace only when something it reads changed there since it last
    /// ran (its own writes included, as its informers would tell it) or its timer is due: the
    /// others would find nothing to do, and skipping them is most of the built-in cluster's speed.
    pub fn reconcile(&mut self, store: &mut Store) -> Option<Instant> {
        // A due timer wakes a controller once per call, so a timer set for "now" by a controller
        // with nothing to do cannot spin.
        self.visits.values_mut().for_each(|v| v.woken = [false; CONTROLLERS]);
        self.backoff.forget_gone(store);
        for _ in 0..MAX_ROUNDS {
            if self.interrupted.as_ref().is_some_and(|interrupted| interrupted()) {
                return None;
            }
            let now = store.clock.now();
            let namespaces = store.namespaces();
            self.visits.retain(|ns, _| namespaces.binary_search(ns).is_ok());
            self.autoscalers.retain(&namespaces);
            self.pod_gc.retain(&namespaces);
            let mut ran = false;
            for namespace in namespaces.iter() {
                if self.visits.get(namespace).is_some_and(|v| v.settled(store.last_change_for(namespace), now)) {
                    continue;
                }
                // Taken out while its controllers run (the kubelet's state is borrowed meanwhile).
                let mut visits = self.visits.remove(namespace).unwrap_or_default();
                let mut tick: Option<Tick> = None;
                for (i, controller) in Controller::IN_ORDER.into_iter().enumerate() {
                    let changed = visits.at[i].is_none_or(|at| {
                        let backing_off = matches!(
                            controller,
                            Controller::ReplicaSet | Controller::DaemonSet | Controller::StatefulSet
                        ) && self.backoff.backs_off_in(store, namespace);
                        controller.last_change(store, namespace, backing_off) > at
                    });
                    let timer = !changed && !visits.woken[i] && visits.due[i].is_some_and(|due| due <= now);
                    if !(changed || timer) {
                        // Nothing it reads changed: as good as a visit now, which keeps the
                        // namespace's `settled` check true until something it reads does.
                        visits.at[i] = Some(store.resource_version());
                        continue;
                    }
                    visits.woken[i] |= timer;
                    ran = true;
                    let visited_at = store.resource_version();
                    // "Now" is the same for every controller of one pass over a namespace.
                    let tick = tick.get_or_insert_with(|| Tick::new(store));
                    tick.wake = None;
                    self.run_one(controller, store, tick, namespace);
                    visits.due[i] = tick.wake;
                    visits.at[i] = Some(visited_at);
                }
                self.visits.insert(namespace.clone(), visits);
            }
            if !ran {
                // A timer already served at this instant cannot ask for this instant again:
                // returning it would have the caller re-run the controllers without end.
                return self.visits.values().flat_map(|v| v.due).flatten().filter(|due| *due > now).min();
            }
        }
        debug_assert!(false, "the controllers did not settle within {MAX_ROUNDS} rounds");
        None
    }

    fn run_one(&mut self, controller: Controller, store: &mut Store, tick: &mut Tick, namespace: &String) {
        let one = std::slice::from_ref(namespace);
        match controller {
            Controller::GarbageCollector => gc::run(store, one),
            Controller::PodGarbageCollector => self.pod_gc.run(store, tick, namespace),
            Controller::Autoscaler => self.autoscalers.run(store, tick, namespace),
            Controller::Deployment => deployment::run(store, tick, one),
            Controller::ReplicaSet => replicaset::run(store, tick, one, &mut self.backoff),
            Controller::DaemonSet => daemonset::run(store, tick, one, &mut self.backoff),
            Controller::StatefulSet => statefulset::run(store, tick, one, &mut self.backoff),
            Controller::Scheduler => scheduler::run(store, one),
            Controller::Kubelet => self.kubelet.run(store, self.pace, tick, one),
            Controller::EndpointSlice => self.endpoint_slices.run(store, one),
            Controller::EndpointSliceMirroring => endpointslice_mirroring::run(store, one),
        }
    }
}

/// "Now" for one round of the controllers, and the earliest time something asked to be woken.
pub(crate) struct Tick {
    now: Instant,
    /// Wall-clock seconds as the API's timestamps show them (whole seconds).
    now_secs: i64,
    /// How far into the current second `now` is.
    subsec: Duration,
    wake: Option<Instant>,
}

impl Tick {
    fn new(store: &Store) -> Tick {
        let elapsed = store.clock.elapsed();
        Tick {
            now: store.clock.now(),
            now_secs: store.clock.now_secs(),
            subsec: elapsed - Duration::from_secs(elapsed.as_secs()),
            wake: None,
        }
    }

    fn wake_at(&mut self, at: Instant) {
        self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
    }

    /// Asks to be woken when the wall clock reaches `secs` (a timestamp's seconds).
    fn wake_at_secs(&mut self, secs: i64) {
        let at = self.instant_at_secs(secs);
        self.wake_at(at);
    }

    /// When the wall clock reaches `secs` (a timestamp's seconds); now if it has.
    fn instant_at_secs(&self, secs: i64) -> Instant {
        if secs <= self.now_secs {
            self.now
        } else {
            let ahead = Duration::from_secs((secs - self.now_secs) as u64);
            self.now.checked_sub(self.subsec).unwrap_or(self.now) + ahead
        }
    }

    /// "Now" as the API writes timestamps (RFC 3339, whole seconds).
    fn timestamp(&self) -> String {
        k8s_openapi::jiff::Timestamp::from_second(self.now_secs).map(|t| t.to_string()).unwrap_or_default()
    }

    /// Nanoseconds since the Unix epoch, for ranking pods by age on a logarithmic scale.
    fn now_nanos(&self) -> f64 {
        self.now_secs as f64 * 1e9 + self.subsec.as_nanos() as f64
    }
}

/// Seconds since the Unix epoch of an RFC 3339 timestamp.
fn parse_time(timestamp: &str) -> Option<i64> {
    timestamp.parse::<k8s_openapi::jiff::Timestamp>().ok().map(|t| t.as_second())
}

// ---- metadata ----

fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

fn uid(object: &Value) -> &str {
    object["metadata"]["uid"].as_str().unwrap_or_default()
}

fn creation(object: &Value) -> Option<i64> {
    object["metadata"]["creationTimestamp"].as_str().and_then(parse_time)
}

fn is_deleting(object: &Value) -> bool {
    object["metadata"]["deletionTimestamp"].is_string()
}

pub(super) fn has_finalizers(object: &Value) -> bool {
    object["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty())
}

fn label<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object["metadata"]["labels"][key].as_str()
}

fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object["metadata"]["annotations"][key].as_str()
}

fn set_annotation(object: &mut Value, key: &str, value: String) {
    if !object["metadata"]["annotations"].is_object() {
        object["metadata"]["annotations"] = json!({});
    }
    object["metadata"]["annotations"][key] = value.into();
}

/// `spec.replicas`, defaulted to 1 as the API server does.
fn spec_replicas(object: &Value) -> i64 {
    object["spec"]["replicas"].as_i64().unwrap_or(1)
}

/// Orders by creationTimestamp, oldest first, then by name (upstream's ...ByCreationTimestamp).
fn by_creation(a: &Value, b: &Value) -> Ordering {
    creation(a).cmp(&creation(b)).then_with(|| name(a).cmp(name(b)))
}

/// The ownerReference a controller puts on what it controls.
fn controller_ref(owner: &Value, api_version: &str, kind: &str) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": kind,
        "name": name(owner),
        "uid": uid(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// The ownerReference with `controller: true`, if any.
pub(super) fn controller_of(object: &Value) -> Option<&Value> {
    object["metadata"]["ownerReferences"].as_array()?.iter().find(|r| r["controller"].as_bool() == Some(true))
}

fn controlled_by(object: &Value, owner_uid: &str) -> bool {
    controller_of(object).is_some_and(|r| r["uid"].as_str() == Some(owner_uid))
}

/// Whether a LabelSelector selects these labels; a missing selector selects nothing.
fn selects(selector: &Value, labels: &Value) -> bool {
    selector.is_object() && super::validate::selects(selector, labels)
}

/// Whether a map selector (a Service's, a nodeSelector) selects these labels; every key must be
/// there with the same value.
fn map_selects(selector: &Map<String, Value>, labels: &Value) -> bool {
    selector.iter().all(|(k, v)| labels.get(k).is_some_and(|l| l == v))
}

/// Upstream's ClaimObjects: of `candidates`, the objects `controller` owns once it has adopted
/// the orphans its selector matches and released what it owns but no longer matches. Adoption
/// and release are writes.
fn claim(
    store: &mut Store,
    resource: Resource,
    namespace: &str,
    controller: &Value,
    reference: Value,
    candidates: Vec<Stored>,
) -> Vec<Arc<Value>> {
    let selector = &controller["spec"]["selector"];
    let controller_uid = uid(controller);
    let mut owned = Vec::new();
    for Stored { object, facts } in candidates {
        let matches = selects(selector, &facts.labels);
        match facts.controller_uid.as_deref() {
            Some(uid) if uid != controller_uid => {}
            // Kept as it is: shared with the store, not copied.
            Some(_) if matches => owned.push(object),
            Some(_) => {
                if !is_deleting(controller) {
                    let mut object = Arc::unwrap_or_clone(object);
                    remove_owner(&mut object, controller_uid);
                    write(store, resource, namespace, object);
                }
            }
            None => {
                if matches && !is_deleting(controller) && !facts.deleting {
                    let mut object = Arc::unwrap_or_clone(object);
                    let refs = &mut object["metadata"]["ownerReferences"];
                    if !refs.is_array() {
                        *refs = json!([]);
                    }
                    refs.as_array_mut().expect("an array").push(reference.clone());
                    owned.extend(write(store, resource, namespace, object));
                }
            }
        }
    }
    owned
}

fn remove_owner(object: &mut Value, owner_uid: &str) {
    let metadata = object["metadata"].as_object_mut().expect("metadata is an object");
    if let Some(refs) = metadata.get_mut("ownerReferences").and_then(Value::as_array_mut) {
        refs.retain(|r| r["uid"].as_str() != Some(owner_uid));
        if refs.is_empty() {
            metadata.remove("ownerReferences");
        }
    }
}

/// Creates a controller's pod as the API server would: defaulted first (a container's limits as
/// its requests, host ports on the host's network), its label keys merged into its selectors
/// (crate::cluster::sim::label_keys), then admitted, named from its generateName,
/// and validated (a StatefulSet of a long name makes identity labels over 63 bytes).
/// `Err(Some(why))`: admission or validation refused it (the controller backs off and retries,
/// see [`Backoff`]); `Err(None)`: it cannot be (the namespace is being deleted).
fn create_pod(store: &mut Store, namespace: &str, mut pod: Value) -> Result<(), Option<String>> {
    super::defaults::apply(super::resources::POD, &mut pod);
    super::label_keys::merge_into_selectors(&mut pod);
    admit_pod(store, namespace, &mut pod).map_err(Some)?;
    pod["status"] = new_pod_status(store, &pod);
    if pod["metadata"]["name"].as_str().is_none_or(str::is_empty)
        && let Some(prefix) = pod["metadata"]["generateName"].as_str().filter(|p| !p.is_empty())
    {
        pod["metadata"]["name"] = store.generate_name(prefix).into();
    }
    super::validate::create(super::resources::POD, &pod).map_err(|refused| Some(refused.message))?;
    store.create(super::resources::POD, namespace, pod).map(|_| ()).map_err(|_| None)
}

/// Creates `pods` in order until one is refused (upstream's slow start stops at a batch with a
/// failure) or the namespace goes: how the creations went.
fn create_pods(store: &mut Store, namespace: &str, pods: impl IntoIterator<Item = Value>) -> Creations {
    for pod in pods {
        match create_pod(store, namespace, pod) {
            Ok(()) => {}
            Err(Some(why)) => return Creations::Refused(why),
            Err(None) => break, // the namespace is being deleted
        }
    }
    Creations::Done
}

/// The admission plugins a new pod meets, in their order: ServiceAccount (refuses a service
/// account its namespace does not have; `default` always exists, the service account controller
/// makes it in every namespace), then Priority (refuses a priority class the cluster does not
/// have, the built-in cluster having only the two every cluster has and serving no PriorityClass
/// kind, and a stated priority or preemption policy other than the class's; writes both into the
/// pod), then RuntimeClass (there is none to name). Refused: the API's words.
pub fn admit_pod(store: &Store, namespace: &str, pod: &mut Value) -> Result<(), String> {
    let priority = admitted_priority(store, namespace, pod)?;
    if let Some(spec) = pod["spec"].as_object_mut() {
        spec.insert("priority".into(), priority.into());
        spec.insert("preemptionPolicy".into(), PREEMPTION_POLICY.into());
    }
    Ok(())
}

/// The classes every cluster has, with their values.
const BUILT_IN_PRIORITY_CLASSES: &[(&str, i64)] =
    &[("system-cluster-critical", 2_000_000_000), ("system-node-critical", 2_000_001_000)];

/// The preemption policy of both built-in classes, and of a pod without a class.
const PREEMPTION_POLICY: &str = "PreemptLowerPriority";

/// A pod's priority from the class it names: 0 without one (there is no global default class),
/// `None` for a class the cluster does not have.
fn priority_of_class(class: Option<&str>) -> Option<i64> {
    match class.filter(|c| !c.is_empty()) {
        None => Some(0),
        Some(class) => BUILT_IN_PRIORITY_CLASSES.iter().find(|(name, _)| *name == class).map(|(_, value)| *value),
    }
}

/// An update leaves a pod the priority and preemption policy admission wrote at its creation
/// when it does not state them (upstream's Priority plugin on update); validation refuses any
/// other change of them.
pub fn keep_admitted_priority(current: &Value, pod: &mut Value) {
    for field in ["priority", "preemptionPolicy"] {
        if pod["spec"].get(field).is_none_or(Value::is_null)
            && let Some(admitted) = current["spec"].get(field).filter(|v| !v.is_null())
            && let Some(spec) = pod["spec"].as_object_mut()
        {
            spec.insert(field.into(), admitted.clone());
        }
    }
}

/// The priority the plugins admit a new pod with, or their refusal.
fn admitted_priority(store: &Store, namespace: &str, pod: &Value) -> Result<i64, String> {
    let metadata = &pod["metadata"];
    let pod_name = metadata["name"].as_str().filter(|n| !n.is_empty()).or_else(|| metadata["generateName"].as_str());
    let forbidden = |why: String| Err(format!("pods \"{}\" is forbidden: {why}", pod_name.unwrap_or_default()));
    let spec = &pod["spec"];
    let named = spec["serviceAccountName"].as_str().filter(|s| !s.is_empty());
    if let Some(account) =
        named.or_else(|| spec["serviceAccount"].as_str()).filter(|s| !s.is_empty() && *s != "default")
        && store.get(super::resources::SERVICE_ACCOUNT, namespace, account).is_none()
    {
        return forbidden(format!(
            "error looking up service account {namespace}/{account}: serviceaccount \"{account}\" not found"
        ));
    }
    // A pod may state only the priority and preemption policy its class gives.
    let class = spec["priorityClassName"].as_str();
    let Some(priority) = priority_of_class(class) else {
        return forbidden(format!("no PriorityClass with name {} was found", class.unwrap_or_default()));
    };
    if let Some(stated) = spec["priority"].as_i64()
        && stated != priority
    {
        return forbidden(format!(
            "the integer value of priority ({stated}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name"
        ));
    }
    if let Some(stated) = spec["preemptionPolicy"].as_str()
        && stated != PREEMPTION_POLICY
    {
        return forbidden(format!(
            "the string value of PreemptionPolicy ({stated}) must not be provided in pod spec; priority admission controller computed {PREEMPTION_POLICY} from the given PriorityClass name"
        ));
    }
    // The RuntimeClass plugin: the built-in cluster has no RuntimeClass (a cluster-scoped kind).
    if let Some(runtime) = spec["runtimeClassName"].as_str() {
        return forbidden(format!("pod rejected: RuntimeClass \"{runtime}\" not found"));
    }
    Ok(priority)
}

/// Upstream's work queue rate limiter for a controller whose sync failed (a pod admission
/// refused): the object is synced again after 5 ms, then 10, 20, ... doubling up to 1000 s; a
/// sync that succeeds forgets it. Keyed by the controller object's uid.
///
/// The delay holds back only the retry the failure queued. An event for the object queues it
/// again at once, as upstream's informer handlers add it without the rate limiter: a change to
/// it (its own status write after the failure included), to a pod it controls or an orphan its
/// selector matches, and for a DaemonSet a node it should now run on or leave. That sync tries
/// its creations, and a refusal counts as one more failure.
#[derive(Default)]
pub struct Backoff {
    failed: std::collections::HashMap<String, (u32, Instant, Seen), foldhash::fast::RandomState>,
}

/// What a sync read before it wrote anything, as far as upstream's informers would deliver a
/// change of it as an event: the object's resourceVersion, its pods' number and versions (its
/// own and the orphans it could adopt), and what else its controller is told of (`other`: for a
/// DaemonSet, which nodes it should run on).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seen {
    object: u64,
    pods: usize,
    pod_versions: u64,
    other: u64,
}

impl Seen {
    pub(crate) fn of<'a>(object: &Value, pods: impl IntoIterator<Item = &'a Value>, other: u64) -> Seen {
        let (mut count, mut versions) = (0, 0u64);
        for pod in pods {
            count += 1;
            // Versions only grow, so any pod made, changed or gone changes the sum.
            versions = versions.wrapping_add(resource_version(pod));
        }
        Seen { object: resource_version(object), pods: count, pod_versions: versions, other }
    }
}

/// Whether a change to a pod is an event for the controller `owner`: the pod is its own, or an
/// orphan its selector matches (upstream's getPodReplicaSets and its kin).
fn watched_by(pod: &super::facts::Facts, owner: &Value) -> bool {
    match pod.controller_uid.as_deref() {
        Some(controller) => controller == uid(owner),
        None => selects(&owner["spec"]["selector"], &pod.labels),
    }
}

fn resource_version(object: &Value) -> u64 {
    object["metadata"]["resourceVersion"].as_str().and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// How one sync's pod creations went.
pub(crate) enum Creations {
    /// Made every pod it wanted (or wanted none).
    Done,
    /// Admission refused a pod: the API's words.
    Refused(String),
    /// Still backing off from a refusal: nothing tried.
    Waiting,
}

impl Backoff {
    /// Whether the object may try its creations now: its retry is due, or something it reads
    /// changed since it last tried; if not, asks to be woken when it may.
    fn may_try(&self, uid: &str, seen: Seen, tick: &mut Tick) -> bool {
        match self.failed.get(uid) {
            Some((_, at, tried_on)) if *at > tick.now && *tried_on == seen => {
                tick.wake_at(*at);
                false
            }
            _ => true,
        }
    }

    /// Whether an object in `namespace` is backing off.
    fn backs_off_in(&self, store: &Store, namespace: &str) -> bool {
        use super::resources::{DAEMON_SET, REPLICA_SET, STATEFUL_SET};
        !self.failed.is_empty()
            && [REPLICA_SET, DAEMON_SET, STATEFUL_SET]
                .into_iter()
                .flat_map(|kind| store.list(kind, Some(namespace)))
                .any(|object| self.failed.contains_key(uid(object)))
    }

    /// Forgets the objects that are gone, as upstream's queue forgets a key whose sync finds no
    /// object (which a deleted one gets at once).
    fn forget_gone(&mut self, store: &Store) {
        use super::resources::{DAEMON_SET, REPLICA_SET, STATEFUL_SET};
        if self.failed.is_empty() {
            return;
        }
        let live: std::collections::HashSet<&str> = [REPLICA_SET, DAEMON_SET, STATEFUL_SET]
            .into_iter()
            .flat_map(|kind| store.list(kind, None))
            .map(uid)
            .collect();
        self.failed.retain(|failed, _| live.contains(failed.as_str()));
    }

    /// Notes how the object's creations went, tried on what `seen` holds: a refusal backs it off
    /// further, a success forgets it.
    fn record(&mut self, uid: &str, seen: Seen, creations: &Creations, tick: &mut Tick) {
        match creations {
            Creations::Done => {
                self.failed.remove(uid);
            }
            Creations::Refused(_) => {
                let (failures, pending) = match self.failed.get(uid) {
                    Some((failures, at, _)) => (*failures, Some(*at).filter(|at| *at > tick.now)),
                    None => (0, None),
                };
                let delay =
                    Duration::from_millis(5).saturating_mul(1 << failures.min(20)).min(Duration::from_secs(1000));
                // A retry already queued stays: the delaying queue keeps an item's earliest time,
                // and a sync an event brought forward fails without putting it off (the doubled
                // delay from now never falls before it).
                let at = pending.unwrap_or(tick.now + delay);
                self.failed.insert(uid.to_string(), (failures + 1, at, seen));
                tick.wake_at(at);
            }
            Creations::Waiting => {}
        }
    }
}

fn write(store: &mut Store, resource: Resource, namespace: &str, object: Value) -> Option<Arc<Value>> {
    match store.update(resource, namespace, object) {
        Ok(stored) => Some(stored),
        Err(error) => {
            // Only a missing object is refused here: its controller learns so on its next pass.
            debug_assert!(false, "a controller's write was refused: {}", error.message);
            None
        }
    }
}

/// Writes a controller's `status` onto its object as stored now, when it differs from the status
/// `object` (the controller's copy) had: an unchanged status is no write, as upstream's.
fn write_status(store: &mut Store, resource: Resource, namespace: &str, object: &Value, status: Value) {
    if object["status"] != status {
        let mut current = store.get(resource, namespace, name(object)).cloned().unwrap_or_else(|| object.clone());
        current["status"] = status;
        write(store, resource, namespace, current);
    }
}

/// Deletes as the API does with default options: pods get their grace period (the kubelet
/// removes them), objects with finalizers are marked, everything else goes at once.
fn delete(store: &mut Store, resource: Resource, namespace: &str, object: &Value) {
    if is_deleting(object) {
        return;
    }
    if resource == super::resources::POD {
        store.mark_deleted(resource, namespace, name(object), Some(grace_period(object, None)));
    } else if has_finalizers(object) {
        store.mark_deleted(resource, namespace, name(object), Some(0));
    } else {
        store.remove(resource, namespace, name(object));
    }
}

// ---- pods ----

/// The grace period a delete gives a pod, as the pod strategy's CheckGracefulDelete: the one the
/// delete asks for, else the pod's own (30 s unless its spec says); none for a pod no node took or
/// one already finished, which has nothing left to stop.
pub fn grace_period(pod: &Value, asked: Option<i64>) -> i64 {
    if pod["spec"]["nodeName"].as_str().is_none_or(str::is_empty) || is_terminal(pod) {
        return 0;
    }
    asked.or_else(|| pod["spec"]["terminationGracePeriodSeconds"].as_i64()).unwrap_or(30)
}

fn phase(pod: &Value) -> &str {
    pod["status"]["phase"].as_str().unwrap_or_default()
}

fn is_terminal(pod: &Value) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// Upstream's IsPodActive: not terminal and not being deleted.
fn is_active(pod: &Value) -> bool {
    !is_terminal(pod) && !is_deleting(pod)
}

fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    object["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == kind)
}

fn is_ready(pod: &Value) -> bool {
    condition(pod, "Ready").is_some_and(|c| c["status"] == "True")
}

/// When the pod's Ready condition last turned True.
fn ready_since(pod: &Value) -> Option<i64> {
    condition(pod, "Ready").filter(|c| c["status"] == "True")?["lastTransitionTime"].as_str().and_then(parse_time)
}

/// Upstream's IsPodAvailable: Ready for at least `min_ready` seconds. When it is not yet, asks to
/// be woken when it will be.
fn is_available(pod: &Value, min_ready: i64, tick: &mut Tick) -> bool {
    is_ready(pod) && ready_long_enough(pod, min_ready, tick)
}

/// `is_available` for a pod known to be Ready.
fn ready_long_enough(pod: &Value, min_ready: i64, tick: &mut Tick) -> bool {
    if min_ready <= 0 {
        return true;
    }
    let Some(since) = ready_since(pod) else { return false };
    if since + min_ready <= tick.now_secs {
        return true;
    }
    tick.wake_at_secs(since + min_ready);
    false
}

/// A pod from a controller's template, with the defaults the API server gives every pod.
fn pod_from_template(template: &Value, generate_name: String, owner: Value) -> Value {
    let mut metadata = json!({
        "generateName": generate_name,
        "labels": template["metadata"]["labels"].as_object().cloned().unwrap_or_default(),
        "ownerReferences": [owner],
    });
    for key in ["annotations", "finalizers"] {
        if let Some(value) = template["metadata"].get(key).filter(|v| !v.is_null()) {
            metadata[key] = value.clone();
        }
    }
    let mut spec = template["spec"].clone();
    if !spec.is_object() {
        spec = json!({});
    }
    for (key, default) in [
        ("restartPolicy", json!("Always")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
    ] {
        if spec[key].is_null() {
            spec[key] = default;
        }
    }
    json!({"metadata": metadata, "spec": spec})
}

/// The status the API server gives a new pod, whatever was sent (upstream's PrepareForCreate):
/// Pending, with its QoS class, and for a pod with scheduling gates the PodScheduled condition
/// that says it waits for them.
pub fn new_pod_status(store: &Store, pod: &Value) -> Value {
    let mut status = json!({"phase": "Pending"});
    if pod["spec"]["schedulingGates"].as_array().is_some_and(|gates| !gates.is_empty()) {
        let gated = scheduler::pod_scheduled_condition("False", Some(scheduler::GATED), &store.clock.timestamp());
        status["conditions"] = json!([gated]);
    }
    status["qosClass"] = qos_class(&pod["spec"]).into();
    status
}

/// The pod's QoS class, as the API server computes it on create.
fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> =
        ["initContainers", "containers"].iter().flat_map(|k| spec[*k].as_array().into_iter().flatten()).collect();
    let set = |c: &Value, kind: &str, resource: &str| !c["resources"][kind][resource].is_null();
    let any = containers.iter().any(|c| ["cpu", "memory"].iter().any(|r| set(c, "requests", r) || set(c, "limits", r)));
    if !any {
        return "BestEffort";
    }
    let guaranteed = containers.iter().all(|c| {
        ["cpu", "memory"].iter().all(|r| {
            set(c, "limits", r)
                && (!set(c, "requests", r) || c["resources"]["requests"][r] == c["resources"]["limits"][r])
        })
    });
    if guaranteed { "Guaranteed" } else { "Burstable" }
}

/// An intOrString such as maxSurge against `total`: a number, or a percentage rounded up or down.
fn int_or_percent(value: &Value, total: i64, round_up: bool) -> i64 {
    match value {
        Value::Number(n) => n.as_i64().unwrap_or_default(),
        Value::String(s) => match s.strip_suffix('%').map(str::parse::<i64>) {
            Some(Ok(percent)) => {
                let scaled = percent * total;
                if round_up { (scaled + 99).div_euclid(100) } else { scaled.div_euclid(100) }
            }
            _ => s.parse().unwrap_or_default(),
        },
        _ => 0,
    }
}

/// A status with the zero counts left out, as the API's `omitempty` fields are.
fn counts(fields: &[(&str, i64)], always: &[&str]) -> Map<String, Value> {
    fields
        .iter()
        .filter(|(key, value)| *value != 0 || always.contains(key))
        .map(|(key, value)| (key.to_string(), (*value).into()))
        .collect()
}
