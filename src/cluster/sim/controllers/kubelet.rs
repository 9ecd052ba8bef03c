//! The kubelet stand-in, at the testbed's paces. Fast: a bound pod is Running and Ready at once;
//! a deleted pod is gone at once. Kind: a bound pod is Pending (ContainerCreating, with the IP
//! its sandbox gives it) for `KIND_START` and then Running and Ready; a deleted pod keeps
//! running, still Ready (the runbook's processes ignore SIGTERM), until its grace period has
//! passed, and is gone two seconds after its deletionTimestamp. A deleted pod its finalizers
//! hold is stopped (Failed) at that moment instead, and stays.
//! Pod IPs come from each node's pod CIDR, handed out round-robin as host-local IPAM does.
//! Init containers run before the others and end at once, as kwok ends them (a sidecar,
//! `restartPolicy: Always`, keeps running); until then every container waits `PodInitializing`.
//! A pod whose ConfigMaps or Secrets are missing is held as a kubelet holds it (`pod_config`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::super::Pace;
use super::super::resources::{NODE, POD};
use super::super::store::{Store, hash_of};
use super::nodes::internal_ip;
use super::pod_config::{self, Unmet};
use super::{Tick, has_finalizers, is_deleting, is_ready, is_terminal, name, parse_time, uid, write};

/// How long a pod takes from binding to Ready at the kind pace.
pub const KIND_START: Duration = Duration::from_secs(3);
/// How many pods due Ready at one instant (in a namespace) start apart, one a pass; more start
/// in as many groups, as near equal in size as they divide.
const STARTS_APART: usize = 16;
/// Seconds after its deletionTimestamp that a deleted pod is gone at the kind pace.
const GONE_AFTER_DELETION_TIMESTAMP: i64 = 2;

#[derive(Default)]
pub struct Kubelet {
    /// Pod uid -> when it turns Ready (kind pace).
    ready_at: HashMap<(String, String), Instant>,
    /// Node name -> the last host number handed out in its pod CIDR.
    last_ip: BTreeMap<String, u8>,
    /// Namespace -> the instant its pods due Ready are starting at, and how many passes are left
    /// to start them in.
    groups_left: HashMap<String, (Instant, usize)>,
}

/// The pod IPs in use, gathered once per run of the kubelet when a pod first needs one and kept
/// current by the run's own starts and removals: gathering them for every pod it started made
/// starting thousands of pods quadratic.
#[derive(Default)]
struct IpsInUse(Option<BTreeSet<String>>);

impl IpsInUse {
    fn get(&mut self, store: &Store) -> &mut BTreeSet<String> {
        self.0.get_or_insert_with(|| {
            store.list(POD, None).filter_map(|p| p["status"]["podIP"].as_str().map(str::to_string)).collect()
        })
    }

    /// A removed pod's IP is free again.
    fn release(&mut self, pod: &Value) {
        if let (Some(in_use), Some(ip)) = (self.0.as_mut(), pod["status"]["podIP"].as_str()) {
            in_use.remove(ip);
        }
    }
}

impl Kubelet {
    pub fn run(&mut self, store: &mut Store, pace: Pace, tick: &mut Tick, namespaces: &[String]) {
        let nodes = store.list_owned(NODE, "");
        let mut ips = IpsInUse::default();
        // Timers are kept per (namespace, pod uid): pods gone from a visited namespace lose
        // theirs; other namespaces' pods keep them.
        let has_timers = !self.ready_at.is_empty();
        let seen: BTreeSet<(String, String)> = if has_timers {
            namespaces
                .iter()
                .flat_map(|ns| store.list(POD, Some(ns)).map(move |pod| (ns.clone(), uid(pod).to_string())))
                .collect()
        } else {
            BTreeSet::new()
        };
        for namespace in namespaces {
            // Only pods with something to do are taken (shared with the store, copied only to
            // be written): a running, ready pod is left alone.
            let pending: Vec<_> = store
                .list_owned(POD, namespace)
                .into_iter()
                .filter(|pod| {
                    let settled = pod["status"]["phase"] == "Running" && ready_as_gates_say(pod);
                    is_deleting(pod) || !(is_terminal(pod) || settled)
                })
                .collect();
            // At the kind pace, pods that end and pods that start at the same instant are
            // taken in two passes, the ends first, and the EndpointSlice controller publishes
            // in between: on a cluster the two are apart by chance, and a guard must see the
            // gap that order opens (upstream gives no order to break the tie by).
            let mut ended = false;
            let mut starting = Vec::new();
            for pod in pending {
                let node_name = pod["spec"]["nodeName"].as_str().unwrap_or_default();
                let index = nodes.iter().position(|n| name(n) == node_name);
                // A pod bound to a node that does not exist has no kubelet: it never starts, and
                // once deleted it waits for the pod garbage collector (podgc.rs).
                if is_deleting(&pod) && (node_name.is_empty() || index.is_some()) {
                    ended |= self.terminate(store, &mut ips, pace, tick, namespace, &pod);
                    continue;
                }
                let Some(index) = index.filter(|_| !is_deleting(&pod)) else { continue };
                let node = &nodes[index];
                // A running pod's gate condition changed: only its Ready condition follows.
                if pod["status"]["phase"] == "Running" && readiness_gates(&pod).next().is_some() {
                    update_ready(store, namespace, &pod);
                    continue;
                }
                // Containers already running keep running whatever becomes of their sources.
                let started = pod["status"]["phase"] == "Running";
                let unmet = if started { None } else { pod_config::unmet(store, namespace, &pod["spec"]) };
                match pace {
                    Pace::Fast => match unmet {
                        None => self.start(store, &mut ips, namespace, Arc::unwrap_or_clone(pod), node, index),
                        Some(unmet) => self.hold(store, &mut ips, namespace, &pod, node, index, &unmet),
                    },
                    Pace::Kind => {
                        let due = *self
                            .ready_at
                            .entry((namespace.clone(), uid(&pod).to_string()))
                            .or_insert(tick.now + KIND_START);
                        if tick.now >= due {
                            match unmet {
                                None => starting.push((pod, index)),
                                Some(unmet) => self.hold(store, &mut ips, namespace, &pod, node, index, &unmet),
                            }
                        } else {
                            if !pod["status"]["containerStatuses"].is_array() {
                                let mut pod = Arc::unwrap_or_clone(pod);
                                // The sandbox (and its IP) comes only once the volumes are mounted;
                                // a pod on the host's network has the host's address without one.
                                if unmet != Some(Unmet::Volume) || on_host_network(&pod) {
                                    self.assign_ip(store, &mut ips, &mut pod, node, index);
                                }
                                creating(store, namespace, pod, node);
                            }
                            tick.wake_at(due);
                        }
                    }
                }
            }
            // Ended pods are the kubelet's own change: it runs again at this instant, once the
            // other controllers have seen them go, and starts these then. Pods due together
            // start one a pass, in name order, for the same reason: on a cluster each pod's
            // kubelet reports it Ready on its own, and the EndpointSlice controller publishes
            // one before the next, so a guard must see a Service gain them one at a time (with
            // kube-proxy's rules, a Service's first ready pod can route less than the
            // terminating ones it replaces). Beyond `STARTS_APART` pods, they start in as many
            // groups (each pass the pods left over the passes left): a pass per pod would make
            // starting thousands quadratic.
            if starting.is_empty() {
                self.groups_left.remove(namespace);
            } else if !ended {
                let left = self.groups_left.entry(namespace.clone()).or_insert((tick.now, STARTS_APART));
                if left.0 != tick.now {
                    *left = (tick.now, STARTS_APART);
                }
                let group = starting.len().div_ceil(left.1.max(1));
                left.1 = left.1.saturating_sub(1);
                for (pod, index) in starting.into_iter().take(group) {
                    self.start(store, &mut ips, namespace, Arc::unwrap_or_clone(pod), &nodes[index], index);
                }
            }
        }
        if has_timers {
            let keep = |key: &(String, String)| seen.contains(key) || !namespaces.contains(&key.0);
            self.ready_at.retain(|key, _| keep(key));
        }
    }

    /// Whether the pod ended now (removed, or stopped while its finalizers hold it).
    fn terminate(
        &mut self,
        store: &mut Store,
        ips: &mut IpsInUse,
        pace: Pace,
        tick: &mut Tick,
        namespace: &str,
        pod: &Value,
    ) -> bool {
        let grace = pod["metadata"]["deletionGracePeriodSeconds"].as_i64().unwrap_or(0).max(0) as u64;
        // A pod no node took has nothing running to wait for.
        let unbound = pod["spec"]["nodeName"].as_str().is_none_or(str::is_empty);
        // A pod its finalizers hold stays until whoever set them lets go (the API removes it
        // then); its kubelet stops it all the same, at the moment it would have removed it.
        let held = has_finalizers(pod);
        if held && (unbound || is_terminal(pod)) {
            return false;
        }
        if !held && (unbound || pace == Pace::Fast || grace == 0) {
            store.remove(POD, namespace, name(pod));
            ips.release(pod);
            return true;
        }
        if held && pace == Pace::Fast {
            stop(store, namespace, pod);
            return true;
        }
        // The kubelet kills the process when the grace period is over, writes the pod's last
        // status, and only then is the pod deleted: a moment after its deletionTimestamp (which
        // the API writes to the whole second). Played as two seconds after it, as the testbed's
        // kind pace does (tests/testbed/kind-pod-delete.yaml), so that a step as long as the
        // grace period times out first on both, as it would on a real kubelet.
        // (Read from the timestamp each time: a pod being deleted always has one.)
        let Some(deleted_at) = pod["metadata"]["deletionTimestamp"].as_str().and_then(parse_time) else {
            return false;
        };
        let due = tick.instant_at_secs(deleted_at + GONE_AFTER_DELETION_TIMESTAMP);
        if tick.now < due {
            tick.wake_at(due);
            return false;
        }
        if held {
            stop(store, namespace, pod);
        } else {
            store.remove(POD, namespace, name(pod));
            ips.release(pod);
        }
        true
    }

    /// The pod's IP, given once its sandbox exists, before its containers start (a Service that
    /// publishes not-ready addresses routes to it from then on): the next free one in the node's
    /// pod CIDR, or, on the host's network, the host's address, as kwok and a kubelet give it
    /// (none when the node has none: such a pod is never an endpoint).
    fn assign_ip(&mut self, store: &Store, ips: &mut IpsInUse, pod: &mut Value, node: &Value, index: usize) {
        if pod["status"]["podIP"].is_string() {
            return;
        }
        let ip = if on_host_network(pod) {
            internal_ip(node).map(str::to_string)
        } else {
            Some(self.allocate_ip(store, ips, node, index))
        };
        if let Some(ip) = ip {
            if !pod["status"].is_object() {
                pod["status"] = json!({});
            }
            pod["status"]["podIP"] = ip.clone().into();
            pod["status"]["podIPs"] = json!([{"ip": ip}]);
        }
    }

    /// The next free IP in the node's pod CIDR (10.244.<index>.0/24 when it has none).
    fn allocate_ip(&mut self, store: &Store, ips: &mut IpsInUse, node: &Value, index: usize) -> String {
        let prefix = node["spec"]["podCIDR"]
            .as_str()
            .and_then(|cidr| cidr.split('/').next())
            .and_then(|base| base.rsplit_once('.').map(|(prefix, _)| prefix.to_string()))
            .unwrap_or_else(|| format!("10.244.{index}"));
        let in_use = ips.get(store);
        let last = self.last_ip.entry(name(node).to_string()).or_insert(1);
        let mut next = || {
            *last = if *last >= 254 { 2 } else { *last + 1 };
            format!("{prefix}.{last}")
        };
        // The first free one; when all 253 are taken, the last tried (as before: no pod is refused).
        let mut ip = next();
        for _ in 1..253 {
            if !in_use.contains(&ip) {
                break;
            }
            ip = next();
        }
        in_use.insert(ip.clone());
        ip
    }

    /// A pod whose ConfigMaps or Secrets are missing (`pod_config`), as a kubelet leaves it until
    /// they exist: a volume it cannot mount keeps it creating, with no sandbox and so no IP (but
    /// the host's, on the host's network); an environment it cannot make fails that container
    /// (`CreateContainerConfigError`, in the kubelet's words). An app container's failure leaves
    /// the others running; an init container's holds every container after it, waiting
    /// `PodInitializing`. Written only when that changes, so a held pod gives no controller more
    /// work. Nothing wakes it but the objects it waits for.
    #[allow(clippy::too_many_arguments)]
    fn hold(
        &mut self,
        store: &mut Store,
        ips: &mut IpsInUse,
        namespace: &str,
        pod: &Value,
        node: &Value,
        index: usize,
        unmet: &Unmet,
    ) {
        let now = store.clock.timestamp();
        let uid = uid(pod).to_string();
        let (init_statuses, statuses) = match unmet {
            Unmet::Volume => {
                if !pod["status"]["containerStatuses"].is_array() {
                    let mut pod = pod.clone();
                    if on_host_network(&pod) {
                        self.assign_ip(store, ips, &mut pod, node, index);
                    }
                    creating(store, namespace, pod, node);
                }
                return;
            }
            Unmet::Initialization(at, why) => (
                init_containers(pod, &uid, &now, Some((*at, why))),
                containers(pod, |c| not_running(c, initializing())),
            ),
            Unmet::Environment(failing) => {
                // A container already running stays so, whatever became of its sources since.
                let current = pod["status"]["containerStatuses"].as_array().cloned().unwrap_or_default();
                let already_running = |c: &Value| {
                    current.iter().find(|s| s["name"] == c["name"] && s["state"]["running"].is_object()).cloned()
                };
                let waiting_for =
                    |c: &Value| failing.iter().find(|(name, _)| c["name"] == name.as_str()).map(|(_, why)| why);
                let statuses = containers(pod, |c| match (already_running(c), waiting_for(c)) {
                    (Some(status), _) => status,
                    (None, Some(why)) => config_error(c, why),
                    (None, None) => running(&uid, c, &now),
                });
                (init_containers(pod, &uid, &now, None), statuses)
            }
        };
        let written = |statuses: &Value| -> Vec<(Value, Value, Value)> {
            statuses
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| (s["name"].clone(), s["ready"].clone(), s["state"]["waiting"]["message"].clone()))
                .collect()
        };
        let unchanged = written(&pod["status"]["containerStatuses"]) == written(&statuses)
            && written(&pod["status"]["initContainerStatuses"])
                == written(init_statuses.as_ref().unwrap_or(&Value::Null));
        if pod["status"]["phase"] == "Pending" && unchanged {
            return;
        }
        let mut pod = pod.clone();
        self.assign_ip(store, ips, &mut pod, node, index);
        host_status(&mut pod, node, &now);
        // A condition whose status stays (False while the pod was creating, True once held)
        // keeps its transition time.
        let conditions = pod["status"]["conditions"].as_array().cloned().unwrap_or_default();
        let since = |kind: &str, status: &str| {
            conditions
                .iter()
                .find(|c| c["type"] == kind && c["status"] == status)
                .map_or_else(|| now.clone().into(), |c| c["lastTransitionTime"].clone())
        };
        let condition = |kind: &str, unmet: Option<(&str, String)>| match unmet {
            None => {
                json!({"type": kind, "status": "True", "lastProbeTime": null, "lastTransitionTime": since(kind, "True")})
            }
            Some((reason, message)) => unmet_condition(kind, since(kind, "False"), reason, message),
        };
        let not_ready = unready(&pod, &init_statuses, &statuses).map(|why| ("ContainersNotReady", why));
        let not_initialized = incomplete(&pod, &init_statuses).map(|why| ("ContainersNotInitialized", why));
        let conditions = [
            condition("PodReadyToStartContainers", None),
            condition("Initialized", not_initialized),
            condition("Ready", not_ready.clone()),
            condition("ContainersReady", not_ready),
        ];
        report(store, namespace, pod, "Pending", conditions, init_statuses, statuses);
    }

    /// Running and Ready.
    fn start(
        &mut self,
        store: &mut Store,
        ips: &mut IpsInUse,
        namespace: &str,
        mut pod: Value,
        node: &Value,
        index: usize,
    ) {
        let now = store.clock.timestamp();
        self.assign_ip(store, ips, &mut pod, node, index);
        host_status(&mut pod, node, &now);
        let uid = uid(&pod).to_string();
        let init_statuses = init_containers(&pod, &uid, &now, None);
        let statuses = containers(&pod, |c| running(&uid, c, &now));
        let conditions = [
            true_condition("PodReadyToStartContainers", &now),
            true_condition("Initialized", &now),
            ready_condition(&pod, &now),
            true_condition("ContainersReady", &now),
        ];
        report(store, namespace, pod, "Running", conditions, init_statuses, statuses);
    }
}

/// What a kubelet does with a deleted pod whose finalizers hold it, when it would otherwise have
/// removed it: it kills the containers (a process that ignores SIGTERM, as the runbook's do, dies
/// of SIGKILL: exit code 137), writes the pod's last status (Failed, as a kubelet ends a deleted
/// pod; so no Service routes to it), and asks the API to delete it at once, which leaves it with
/// no grace period, still there until its finalizers are gone. The testbed's kwok plays the same
/// (tests/testbed/*-pod-stop-held.yaml).
/// (Its IP stays in its status, and in use, as long as the pod does.)
fn stop(store: &mut Store, namespace: &str, pod: &Value) {
    let now = store.clock.timestamp();
    let mut stopped = pod.clone();
    let statuses = containers(pod, |c| {
        not_running(c, json!({"terminated": {"exitCode": 137, "reason": "Error", "finishedAt": now}}))
    });
    let status = &mut stopped["status"];
    status["phase"] = "Failed".into();
    // The conditions the containers made true turn false; the others (PodScheduled, Initialized,
    // DisruptionTarget, readiness gates) stay as they are.
    let stopped_conditions = [
        json!({"type": "PodReadyToStartContainers", "status": "False", "lastProbeTime": null, "lastTransitionTime": now}),
        false_condition("Ready", &now),
        false_condition("ContainersReady", &now),
    ];
    let mut conditions: Vec<Value> = status["conditions"].as_array().cloned().unwrap_or_default();
    for condition in stopped_conditions {
        match conditions.iter_mut().find(|c| c["type"] == condition["type"]) {
            Some(slot) => *slot = condition,
            None => conditions.push(condition),
        }
    }
    status["conditions"] = conditions.into();
    status["containerStatuses"] = statuses;
    write(store, POD, namespace, stopped);
    store.mark_deleted(POD, namespace, name(pod), Some(0));
}

/// hostIP and startTime, once bound.
fn host_status(pod: &mut Value, node: &Value, now: &str) {
    if !pod["status"].is_object() {
        pod["status"] = json!({});
    }
    if let Some(host) = internal_ip(node) {
        pod["status"]["hostIP"] = host.into();
        pod["status"]["hostIPs"] = json!([{"ip": host}]);
    }
    if pod["status"]["startTime"].is_null() {
        pod["status"]["startTime"] = now.into();
    }
}

/// Pending, its containers being created: the kind pace before Ready. With init containers, every
/// container waits `PodInitializing` until they have run.
fn creating(store: &mut Store, namespace: &str, mut pod: Value, node: &Value) {
    let now = store.clock.timestamp();
    host_status(&mut pod, node, &now);
    let init_statuses = pod["spec"]["initContainers"]
        .as_array()
        .filter(|inits| !inits.is_empty())
        .map(|inits| inits.iter().map(|c| not_running(c, initializing())).collect::<Value>());
    let waiting =
        if init_statuses.is_some() { initializing() } else { json!({"waiting": {"reason": "ContainerCreating"}}) };
    let statuses = containers(&pod, |c| not_running(c, waiting.clone()));
    let initialized = match incomplete(&pod, &init_statuses) {
        Some(message) => unmet_condition("Initialized", now.clone(), "ContainersNotInitialized", message),
        None => true_condition("Initialized", &now),
    };
    let not_ready = unready(&pod, &init_statuses, &statuses).unwrap_or_default();
    let conditions = [
        json!({"type": "PodReadyToStartContainers", "status": "False", "lastProbeTime": null, "lastTransitionTime": now}),
        initialized,
        unmet_condition("Ready", now.clone(), "ContainersNotReady", not_ready.clone()),
        unmet_condition("ContainersReady", now.clone(), "ContainersNotReady", not_ready),
    ];
    report(store, namespace, pod, "Pending", conditions, init_statuses, statuses);
}

/// Writes what a kubelet reports of a pod: its phase; its four conditions, then PodScheduled as
/// the scheduler left it, then the conditions others own as they wrote them; and its containers'
/// statuses (its init containers' when it has some).
fn report(
    store: &mut Store,
    namespace: &str,
    mut pod: Value,
    phase: &str,
    conditions: [Value; 4],
    init_statuses: Option<Value>,
    statuses: Value,
) {
    let now = store.clock.timestamp();
    let status = &mut pod["status"];
    status["phase"] = phase.into();
    let scheduled = scheduled_condition(status, &now);
    let kubelets = conditions.into_iter().chain([scheduled]).collect();
    status["conditions"] = with_others(status, kubelets);
    if let Some(init_statuses) = init_statuses {
        status["initContainerStatuses"] = init_statuses;
    }
    status["containerStatuses"] = statuses;
    write(store, POD, namespace, pod);
}

fn containers(pod: &Value, status: impl Fn(&Value) -> Value) -> Value {
    pod["spec"]["containers"].as_array().into_iter().flatten().map(status).collect()
}

/// Init containers run in order, each to its end, before the app containers start; one that
/// keeps running is a sidecar (`restartPolicy: Always`). `waiting`: the one that cannot start
/// (its index, the kubelet's message), whom the ones after it wait for. None when the pod has no
/// init containers.
fn init_containers(pod: &Value, uid: &str, now: &str, waiting: Option<(usize, &str)>) -> Option<Value> {
    let inits = pod["spec"]["initContainers"].as_array().filter(|inits| !inits.is_empty())?;
    let status = |(at, container): (usize, &Value)| match waiting {
        Some((stuck, why)) if at == stuck => config_error(container, why),
        Some((stuck, _)) if at > stuck => not_running(container, initializing()),
        _ if is_sidecar(container) => running(uid, container, now),
        _ => completed(uid, container, now),
    };
    Some(inits.iter().enumerate().map(status).collect())
}

/// The condition types a pod's readiness waits for beside its containers (`readinessGates`).
fn readiness_gates(pod: &Value) -> impl Iterator<Item = &str> {
    pod["spec"]["readinessGates"].as_array().into_iter().flatten().filter_map(|gate| gate["conditionType"].as_str())
}

/// The kubelet's message for a pod whose containers are ready and some readiness gate's condition
/// is not True: someone else (a load balancer's controller) must set it, and on a cluster without
/// one nobody does, so the pod is never ready and no Service routes to it.
fn unmet_readiness_gates(pod: &Value) -> Option<String> {
    let conditions = pod["status"]["conditions"].as_array();
    let condition = |gate: &str| conditions.and_then(|c| c.iter().find(|c| c["type"] == gate));
    let unmet: Vec<String> = readiness_gates(pod)
        .filter_map(|gate| match condition(gate) {
            None => Some(format!("corresponding condition of pod readiness gate \"{gate}\" does not exist.")),
            Some(c) if c["status"] != "True" => {
                let status = c["status"].as_str().unwrap_or_default();
                Some(format!("the status of pod readiness gate \"{gate}\" is not \"True\", but {status}."))
            }
            Some(_) => None,
        })
        .collect();
    (!unmet.is_empty()).then(|| unmet.join(", "))
}

/// The Ready condition of a pod whose containers run and are ready: True unless a readiness
/// gate's condition is not, False then in the kubelet's words. Its transition time stays while
/// its status does (a gated pod's Ready is False from its creation on).
fn ready_condition(pod: &Value, now: &str) -> Value {
    let since = |status: &str| {
        super::condition(pod, "Ready")
            .filter(|c| c["status"] == status)
            .map_or_else(|| now.into(), |c| c["lastTransitionTime"].clone())
    };
    match unmet_readiness_gates(pod) {
        None => json!({"type": "Ready", "status": "True", "lastProbeTime": null, "lastTransitionTime": since("True")}),
        Some(why) => unmet_condition("Ready", since("False"), "ReadinessGatesNotReady", why),
    }
}

/// Whether a running pod's Ready condition is what its readiness gates make it (nothing else
/// changes it while the pod runs).
fn ready_as_gates_say(pod: &Value) -> bool {
    let ready = super::condition(pod, "Ready");
    match unmet_readiness_gates(pod) {
        None => is_ready(pod),
        Some(why) => ready.is_some_and(|c| c["status"] == "False" && c["message"] == why.as_str()),
    }
}

/// A running pod whose readiness gate's condition changed, written with its Ready condition
/// following it; its containers and its other conditions stay as they are.
fn update_ready(store: &mut Store, namespace: &str, pod: &Value) {
    let now = store.clock.timestamp();
    let ready = ready_condition(pod, &now);
    let mut pod = pod.clone();
    let conditions: Vec<Value> = pod["status"]["conditions"].as_array().cloned().unwrap_or_default();
    let mut conditions: Vec<Value> = conditions.into_iter().filter(|c| c["type"] != "Ready").collect();
    conditions.push(ready);
    pod["status"]["conditions"] = conditions.into();
    write(store, POD, namespace, pod);
}

/// The conditions a kubelet writes (PodScheduled as the scheduler left it); any other, such as a
/// readiness gate's or DisruptionTarget, is someone else's and stays as they wrote it.
const KUBELET_CONDITIONS: [&str; 5] =
    ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"];

/// `kubelets` (the conditions in the kubelet's order), then the pod's other conditions.
fn with_others(status: &Value, kubelets: Vec<Value>) -> Value {
    let conditions = status["conditions"].as_array().into_iter().flatten();
    let others = conditions.filter(|c| !KUBELET_CONDITIONS.iter().any(|kind| c["type"] == *kind)).cloned();
    kubelets.into_iter().chain(others).collect()
}

/// A condition that does not hold, since `since`, why in the kubelet's words.
fn unmet_condition(kind: &str, since: impl Into<Value>, reason: &str, message: String) -> Value {
    json!({
        "type": kind,
        "status": "False",
        "lastProbeTime": null,
        "lastTransitionTime": since.into(),
        "reason": reason,
        "message": message,
    })
}

/// How every container of a pod with init containers waits until they have run.
fn initializing() -> Value {
    json!({"waiting": {"reason": "PodInitializing"}})
}

/// A pod on the host's network: the kubelet reports the host's address as its IP, sandbox or not.
fn on_host_network(pod: &Value) -> bool {
    pod["spec"]["hostNetwork"] == true
}

fn is_sidecar(container: &Value) -> bool {
    container["restartPolicy"] == "Always"
}

/// The kubelet's message for an Initialized condition that is false: the init containers that have
/// not run to their end (or, for a sidecar, not started).
fn incomplete(pod: &Value, init_statuses: &Option<Value>) -> Option<String> {
    let inits = pod["spec"]["initContainers"].as_array().into_iter().flatten();
    let statuses = init_statuses.iter().filter_map(Value::as_array).flatten();
    let incomplete: Vec<&str> = inits
        .zip(statuses)
        .filter(|(container, status)| {
            if is_sidecar(container) {
                status["started"] != true
            } else {
                status["state"]["terminated"]["exitCode"] != 0
            }
        })
        .filter_map(|(_, status)| status["name"].as_str())
        .collect();
    (!incomplete.is_empty()).then(|| format!("containers with incomplete status: [{}]", incomplete.join(" ")))
}

/// The kubelet's message for a Ready condition that is false: the sidecars, then the app
/// containers, that are not ready.
fn unready(pod: &Value, init_statuses: &Option<Value>, statuses: &Value) -> Option<String> {
    let sidecars = pod["spec"]["initContainers"].as_array().into_iter().flatten().filter(|c| is_sidecar(c));
    let sidecar_statuses = init_statuses.iter().filter_map(Value::as_array).flatten();
    let unready: Vec<&str> = sidecar_statuses
        .filter(|s| sidecars.clone().any(|c| c["name"] == s["name"]))
        .chain(statuses.as_array().into_iter().flatten())
        .filter(|s| s["ready"] != true)
        .filter_map(|s| s["name"].as_str())
        .collect();
    (!unready.is_empty()).then(|| format!("containers with unready status: [{}]", unready.join(" ")))
}

/// The status of a container of the pod `uid` running (and ready) since `now`.
fn running(uid: &str, container: &Value, now: &str) -> Value {
    created(uid, container, true, json!({"running": {"startedAt": now}}))
}

/// The status of an init container of the pod `uid` that has run to its end (ready, as a kubelet
/// reports a completed init container, no longer started).
fn completed(uid: &str, container: &Value, now: &str) -> Value {
    let state = json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}});
    created(uid, container, false, state)
}

/// The status of a ready container of the pod `uid` that the runtime created, in `state`.
fn created(uid: &str, container: &Value, started: bool, state: Value) -> Value {
    json!({
        "name": container["name"],
        "image": container["image"],
        "imageID": "",
        "containerID": format!("containerd://{}", hash_of(&json!([uid, container["name"]]))),
        "ready": true,
        "started": started,
        "restartCount": 0,
        "state": state,
        "lastState": {},
    })
}

/// A container the kubelet cannot create: its environment names a source that is missing.
fn config_error(container: &Value, why: &str) -> Value {
    not_running(container, json!({"waiting": {"reason": "CreateContainerConfigError", "message": why}}))
}

/// The status of a container that is not running (yet, or any more) in `state`.
fn not_running(container: &Value, state: Value) -> Value {
    json!({
        "name": container["name"],
        "image": container["image"],
        "imageID": "",
        "ready": false,
        "started": false,
        "restartCount": 0,
        "state": state,
        "lastState": {},
    })
}

fn true_condition(kind: &str, now: &str) -> Value {
    json!({"type": kind, "status": "True", "lastProbeTime": null, "lastTransitionTime": now})
}

/// A condition a stopped pod's containers no longer meet.
fn false_condition(kind: &str, now: &str) -> Value {
    json!({"type": kind, "status": "False", "lastProbeTime": null, "lastTransitionTime": now, "reason": "PodCompleted"})
}

/// The PodScheduled condition the binding wrote, kept as it is.
fn scheduled_condition(status: &Value, now: &str) -> Value {
    status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "PodScheduled"))
        .cloned()
        .unwrap_or_else(|| true_condition("PodScheduled", now))
}
