//! The DaemonSet controller, after upstream's pkg/controller/daemon: one pod per node that should
//! run it (nodeSelector, required node affinity, taints against the template's tolerations plus
//! the daemon tolerations), ControllerRevisions named by controller-revision-hash, RollingUpdate
//! with maxUnavailable (a node gets its new pod only once its old one is gone) or with maxSurge
//! (the new pod starts beside the old one, which goes once the new one is ready), OnDelete, and
//! the status `kubectl rollout status` reads. Pods are pinned to their node by node affinity on
//! `metadata.name` and bound by the scheduler, as upstream does.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde_json::{Value, json};

use super::super::resources::{CONTROLLER_REVISION, DAEMON_SET, NODE, POD};
use super::super::store::{Store, hash_of};
use super::nodes::{add_daemon_tolerations, matches_affinity, untolerated_taint};
use super::{
    Backoff, Creations, Seen, Tick, by_creation, claim, controlled_by, controller_ref, counts, delete, is_available,
    is_deleting, is_ready, is_terminal, label, name, pod_from_template, uid, watched_by, write,
};

const HASH_LABEL: &str = "controller-revision-hash";
const GENERATION_LABEL: &str = "pod-template-generation";
const TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

pub fn run(store: &mut Store, tick: &mut Tick, namespaces: &[String], backoff: &mut Backoff) {
    // Most namespaces have no daemon set: then the nodes are not worth copying.
    if namespaces.iter().all(|ns| store.list(DAEMON_SET, Some(ns)).next().is_none()) {
        return;
    }
    let nodes: Vec<Value> = store.list(NODE, None).cloned().collect();
    for namespace in namespaces {
        for ds in store.list_owned(DAEMON_SET, namespace) {
            if !is_deleting(&ds) {
                sync(store, tick, namespace, &ds, &nodes, backoff);
            }
        }
    }
}

/// The template generation: the registry's annotation when there is one, else the generation.
fn template_generation(ds: &Value) -> (String, bool) {
    match super::annotation(ds, TEMPLATE_GENERATION) {
        Some(generation) => (generation.to_string(), true),
        None => (ds["metadata"]["generation"].as_i64().unwrap_or(1).to_string(), false),
    }
}

/// Upstream's IsPodUpdated: the pod carries the current hash (or template generation).
fn is_updated(ds: &Value, pod: &Value, hash: &str) -> bool {
    let (generation, from_registry) = template_generation(ds);
    label(pod, HASH_LABEL) == Some(hash) || (from_registry && label(pod, GENERATION_LABEL) == Some(generation.as_str()))
}

/// The template as its pods get it, for the node rules: the daemon tolerations added.
fn pod_spec(ds: &Value) -> Value {
    let mut spec = ds["spec"]["template"]["spec"].clone();
    if !spec.is_object() {
        spec = json!({});
    }
    add_daemon_tolerations(&mut spec);
    spec
}

/// Upstream's NodeShouldRunDaemonPod: (should run, should continue running).
fn should_run(spec: &Value, node: &Value) -> (bool, bool) {
    let fits_name = spec["nodeName"].as_str().is_none_or(|n| n.is_empty() || n == name(node));
    let fits = fits_name && matches_affinity(spec, node);
    let schedule = untolerated_taint(spec, node, &["NoSchedule", "NoExecute"]).is_none();
    let execute = untolerated_taint(spec, node, &["NoExecute"]).is_none();
    (fits && schedule, fits && execute)
}

/// The node a daemon pod is for: its nodeName, or the node its affinity pins it to.
fn target_node(pod: &Value) -> Option<String> {
    if let Some(node) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
        return Some(node.to_string());
    }
    let terms =
        pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
            .as_array()?;
    // Upstream's GetTargetNodeName: the first pin by name decides; to several nodes, it names none.
    let pin = terms
        .iter()
        .flat_map(|t| t["matchFields"].as_array().into_iter().flatten())
        .find(|f| f["key"] == "metadata.name" && f["operator"] == "In")?;
    match pin["values"].as_array().map(Vec::as_slice) {
        Some([node]) => node.as_str().map(str::to_string),
        _ => None,
    }
}

/// Upstream's podByCreationTimestampAndPhase: scheduled first, then oldest, then by name.
fn oldest_scheduled_first(a: &Value, b: &Value) -> std::cmp::Ordering {
    let unscheduled = |p: &Value| p["spec"]["nodeName"].as_str().is_none_or(str::is_empty);
    unscheduled(a).cmp(&unscheduled(b)).then_with(|| by_creation(a, b))
}

fn sync(store: &mut Store, tick: &mut Tick, namespace: &str, ds: &Value, nodes: &[Value], backoff: &mut Backoff) {
    let hash = hash_of(&ds["spec"]["template"]);
    if name(ds).len() + 1 + hash.len() > 253 {
        // Upstream names the revision `<daemon set>-<hash>` uncut: over 253 characters the API
        // refuses it, and the sync fails there every time, before any pod or status.
        return;
    }
    sync_history(store, namespace, ds, &hash);
    let spec = pod_spec(ds);
    let ds_uid = uid(ds);
    let pods = store.list_stored(POD, namespace);
    // Upstream's node handlers queue the daemon set when a node is added that it should run on,
    // or changes whether it should run or keep running there.
    let mut on_nodes = std::hash::DefaultHasher::new();
    for node in nodes {
        (name(node), should_run(&spec, node)).hash(&mut on_nodes);
    }
    let pods_seen = pods.iter().filter(|p| watched_by(&p.facts, ds)).map(|p| &*p.object);
    let seen = Seen::of(ds, pods_seen, on_nodes.finish());
    let candidates = pods.into_iter().filter(|p| p.facts.claimable_by(ds_uid)).collect();
    let owned = claim(store, POD, namespace, ds, controller_ref(ds, "apps/v1", "DaemonSet"), candidates);
    let by_node = pods_by_node(&owned);
    let surge = allows_surge(ds);
    let min_ready = ds["spec"]["minReadySeconds"].as_i64().unwrap_or(0);

    // manage: create where missing, delete what should not run (or runs twice).
    let mut create = Vec::new();
    let mut remove: Vec<&Value> = Vec::new();
    for node in nodes {
        let (run, keep) = should_run(&spec, node);
        let pods = by_node.get(name(node));
        match pods {
            None if run => create.push(name(node).to_string()),
            Some(pods) if keep => {
                let mut running: Vec<&Value> = Vec::new();
                for pod in live(pods) {
                    if is_terminal(pod) {
                        remove.push(pod);
                    } else {
                        running.push(pod);
                    }
                }
                running.sort_by(|a, b| oldest_scheduled_first(a, b));
                if surge && run && running.is_empty() {
                    // Surging: a node keeps one pod not being deleted, so a deleted pod is
                    // replaced at once, not after its grace period.
                    create.push(name(node).to_string());
                }
                remove.extend(surplus(running, &hash, surge, min_ready, tick));
            }
            Some(pods) if !keep => remove.extend(live(pods)),
            _ => {}
        }
    }
    // Pods meant for a node that does not exist, not yet bound to it (upstream's
    // getUnscheduledPodsWithoutNode): no scheduler will place them. One bound there is left to
    // the pod garbage collector.
    for (node, pods) in &by_node {
        if !nodes.iter().any(|n| name(n) == node) {
            remove.extend(live(pods).filter(|pod| pod["spec"]["nodeName"].as_str().is_none_or(str::is_empty)));
        }
    }
    let managed = !create.is_empty() || !remove.is_empty();
    for pod in remove {
        delete(store, POD, namespace, pod);
    }
    let mut creations = if !create.is_empty() && !backoff.may_try(ds_uid, seen, tick) {
        Creations::Waiting
    } else {
        super::create_pods(store, namespace, create.iter().map(|node| new_pod(ds, &hash, node)))
    };
    // Upstream waits for its creations and deletions to be observed before rolling on.
    if !managed && ds["spec"]["updateStrategy"]["type"].as_str() != Some("OnDelete") {
        let rollout = Rollout {
            namespace,
            ds,
            hash: &hash,
            by_node: &by_node,
            nodes,
            budget: Budget::of(ds, nodes, &spec),
            min_ready,
        };
        if !surge {
            rollout.rolling(store, tick);
        } else if backoff.may_try(ds_uid, seen, tick) {
            creations = rollout.surging(store, tick);
        } else {
            creations = Creations::Waiting;
        }
    }
    backoff.record(ds_uid, seen, &creations, tick);
    // Upstream's updateDaemonSet returns at a failed manage or rolling update (here: a pod
    // refused, or a surge pass failed on a node that does not exist) before cleanupHistory, and
    // one still backing off is not synced at all; here its sync goes on, without the creations
    // and without the cleanup.
    if matches!(creations, Creations::Done) {
        cleanup_history(store, namespace, ds, &hash);
    }
    update_status(store, tick, namespace, ds, &hash, nodes, &spec);
}

fn pods_by_node(pods: &[Arc<Value>]) -> BTreeMap<String, Vec<Arc<Value>>> {
    let mut by_node: BTreeMap<String, Vec<Arc<Value>>> = BTreeMap::new();
    for pod in pods {
        if is_terminal(pod) && is_deleting(pod) {
            continue;
        }
        if let Some(node) = target_node(pod) {
            by_node.entry(node).or_default().push(pod.clone());
        }
    }
    by_node
}

fn new_pod(ds: &Value, hash: &str, node: &str) -> Value {
    let mut template = ds["spec"]["template"].clone();
    template["metadata"]["labels"][HASH_LABEL] = hash.into();
    template["metadata"]["labels"][GENERATION_LABEL] = template_generation(ds).0.into();
    let mut pod = pod_from_template(&template, format!("{}-", name(ds)), controller_ref(ds, "apps/v1", "DaemonSet"));
    add_daemon_tolerations(&mut pod["spec"]);
    // Upstream's ReplaceDaemonSetPodNodeNameNodeAffinity: the required terms become one term
    // pinning the pod to its node.
    let pin = json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]);
    let affinity = &mut pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"];
    affinity["nodeSelectorTerms"] = pin;
    pod
}

/// The pods to delete of those running on a node that should keep its daemon pod, oldest
/// (scheduled) first. Without surge only the oldest stays. With it (upstream's
/// podsShouldBeOnNode) the oldest pod of the current revision and the oldest of an older one may
/// both stay, the old one only while it is ready and its successor is not available yet
/// (ready for minReadySeconds).
fn surplus<'a>(running: Vec<&'a Value>, hash: &str, surge: bool, min_ready: i64, tick: &mut Tick) -> Vec<&'a Value> {
    if !surge {
        return running.into_iter().skip(1).collect();
    }
    let (mut current, mut older): (Option<&Value>, Option<&Value>) = (None, None);
    let mut remove = Vec::new();
    for pod in running {
        let slot = if label(pod, HASH_LABEL) == Some(hash) { &mut current } else { &mut older };
        match slot {
            None => *slot = Some(pod),
            Some(_) => remove.push(pod),
        }
    }
    if let (Some(current), Some(older)) = (current, older)
        && (!is_ready(older) || is_available(current, min_ready, tick))
    {
        remove.push(older);
    }
    remove
}

/// Upstream's AllowsSurge: a RollingUpdate whose maxSurge is not zero.
fn allows_surge(ds: &Value) -> bool {
    let strategy = &ds["spec"]["updateStrategy"];
    strategy["type"].as_str().is_none_or(|t| t == "RollingUpdate")
        && strategy["rollingUpdate"].get("maxSurge").is_some_and(|surge| super::int_or_percent(surge, 1, true) != 0)
}

/// How far a rolling update may go (upstream's updatedDesiredNodeCounts): maxSurge and
/// maxUnavailable against the nodes that should run the pod, percentages rounded up; when both
/// come to 0, one node at a time may be without its pod.
#[derive(Clone, Copy)]
struct Budget {
    desired: i64,
    surge: i64,
    unavailable: i64,
}

impl Budget {
    fn of(ds: &Value, nodes: &[Value], spec: &Value) -> Budget {
        let desired = nodes.iter().filter(|node| should_run(spec, node).0).count() as i64;
        let rolling = &ds["spec"]["updateStrategy"]["rollingUpdate"];
        let setting = |key: &str, default: i64| {
            rolling.get(key).filter(|v| !v.is_null()).map_or(default, |v| super::int_or_percent(v, desired, true))
        };
        let surge = setting("maxSurge", 0);
        let mut unavailable = setting("maxUnavailable", 1);
        if desired > 0 && surge == 0 && unavailable == 0 {
            unavailable = 1;
        }
        Budget { desired, surge, unavailable }
    }
}

/// Upstream's findUpdatedPodsOnNode: the node's live pod of the current revision and its live
/// pod of an older one, or None when it has two of either (the manage pass deals with those).
fn new_and_old<'a>(ds: &Value, pods: &'a [Arc<Value>], hash: &str) -> Option<(Option<&'a Value>, Option<&'a Value>)> {
    let (mut new, mut old) = (None, None);
    for pod in live(pods) {
        let slot = if is_updated(ds, pod, hash) { &mut new } else { &mut old };
        if slot.replace(pod).is_some() {
            return None;
        }
    }
    Some((new, old))
}

/// One rolling-update pass over a DaemonSet's pods, node by node.
struct Rollout<'a> {
    namespace: &'a str,
    ds: &'a Value,
    hash: &'a str,
    by_node: &'a BTreeMap<String, Vec<Arc<Value>>>,
    nodes: &'a [Value],
    budget: Budget,
    min_ready: i64,
}

impl Rollout<'_> {
    /// Upstream's rollingUpdate with maxSurge 0: old pods are deleted while fewer than
    /// maxUnavailable nodes are without an available up-to-date pod; unavailable old pods always,
    /// each counted against maxUnavailable.
    fn rolling(&self, store: &mut Store, tick: &mut Tick) {
        let (ds, hash, budget, min_ready) = (self.ds, self.hash, self.budget, self.min_ready);
        let mut unavailable = 0;
        let mut replace_now: Vec<&Value> = Vec::new();
        let mut candidates: Vec<&Value> = Vec::new();
        for pods in self.by_node.values() {
            let Some((new, old)) = new_and_old(ds, pods, hash) else {
                unavailable += 1;
                continue;
            };
            match (new, old) {
                (None, None) | (Some(_), Some(_)) => unavailable += 1,
                (Some(new), None) => {
                    if !is_available(new, min_ready, tick) {
                        unavailable += 1;
                    }
                }
                (None, Some(old)) => {
                    if !is_available(old, min_ready, tick) {
                        replace_now.push(old);
                        unavailable += 1;
                    } else if unavailable < budget.unavailable {
                        candidates.push(old);
                    }
                }
            }
        }
        let room = (budget.unavailable - unavailable).clamp(0, candidates.len() as i64) as usize;
        for pod in replace_now.into_iter().chain(candidates.into_iter().take(room)) {
            delete(store, POD, self.namespace, pod);
        }
    }

    /// Upstream's rollingUpdate with maxSurge: a node whose old pod is unavailable gets its new pod
    /// at once, up to maxSurge nodes with an available old pod get theirs beside it, and an old pod
    /// goes once the new one on its node is available. An available old pod on a node that should
    /// no longer run the daemon goes only while more pods are available than nodes want one. (Which
    /// nodes surge first is up to map order upstream; here it is node-name order.) An old pod
    /// with no new one beside it, on a node that does not exist, fails the whole pass before it
    /// creates or deletes anything, as upstream's lookup of that node does; the sync is then
    /// retried as a failed one until that pod is deleted (by the pod garbage collector, unless
    /// someone deletes it first). Returns how its creations went.
    fn surging(&self, store: &mut Store, tick: &mut Tick) -> Creations {
        let (ds, hash, budget, min_ready) = (self.ds, self.hash, self.budget, self.min_ready);
        let spec = pod_spec(ds);
        let should_run_on =
            |node: &str| self.nodes.iter().find(|n| name(n) == node).is_some_and(|n| should_run(&spec, n).0);
        let (mut surging, mut available) = (0, 0);
        let mut delete_now: Vec<&Value> = Vec::new();
        let mut off_node: Vec<&Value> = Vec::new();
        let mut replace_now: Vec<&str> = Vec::new();
        let mut candidates: Vec<&str> = Vec::new();
        for (node, pods) in self.by_node {
            let Some((new, old)) = new_and_old(ds, pods, hash) else {
                surging += 1;
                continue;
            };
            // Each pod's availability read once (it may also ask for a wake-up).
            let new_available = new.is_some_and(|pod| is_available(pod, min_ready, tick));
            let old_available = old.is_some_and(|pod| is_available(pod, min_ready, tick));
            // A node counts as available by its old pod when it has one, else by its new one.
            if (old.is_some() && old_available) || (old.is_none() && new_available) {
                available += 1;
            }
            match (new, old) {
                (_, None) => {}
                (None, Some(_)) if !self.nodes.iter().any(|n| name(n) == node) => {
                    return Creations::Refused(format!(
                        "couldn't get node for nodeName {node:?}: node {node:?} not found"
                    ));
                }
                (None, Some(old)) => match (old_available, should_run_on(node)) {
                    (false, false) => delete_now.push(old),
                    (false, true) => replace_now.push(node),
                    (true, false) => off_node.push(old),
                    (true, true) if surging < budget.surge => candidates.push(node),
                    (true, true) => {}
                },
                (Some(_), Some(old)) => {
                    if new_available {
                        delete_now.push(old);
                    } else {
                        surging += 1;
                    }
                }
            }
        }
        let deletable = (available - budget.desired).clamp(0, off_node.len() as i64) as usize;
        delete_now.extend(off_node.into_iter().take(deletable));
        let room = (budget.surge - surging).clamp(0, candidates.len() as i64) as usize;
        // Creations before deletions, as upstream's syncNodes.
        let surged = replace_now.into_iter().chain(candidates.into_iter().take(room));
        let creations = super::create_pods(store, self.namespace, surged.map(|node| new_pod(ds, hash, node)));
        for pod in delete_now {
            delete(store, POD, self.namespace, pod);
        }
        creations
    }
}

/// The ControllerRevision of the current template (`<ds>-<hash>`), created or moved to the
/// newest revision number.
fn sync_history(store: &mut Store, namespace: &str, ds: &Value, hash: &str) {
    let owned: Vec<Value> =
        store.list(CONTROLLER_REVISION, Some(namespace)).filter(|r| controlled_by(r, uid(ds))).cloned().collect();
    let max = owned.iter().filter_map(|r| r["revision"].as_i64()).max().unwrap_or(0);
    let revision_name = format!("{}-{hash}", name(ds));
    match owned.into_iter().find(|r| name(r) == revision_name) {
        Some(mut current) => {
            if current["revision"].as_i64().unwrap_or(0) < max {
                current["revision"] = (max + 1).into();
                write(store, CONTROLLER_REVISION, namespace, current);
            }
        }
        None => {
            let mut labels = ds["spec"]["template"]["metadata"]["labels"].clone();
            if !labels.is_object() {
                labels = json!({});
            }
            labels[HASH_LABEL] = hash.into();
            let mut template = ds["spec"]["template"].clone();
            template["$patch"] = "replace".into();
            let mut revision = json!({
                "metadata": {
                    "name": revision_name,
                    "labels": labels,
                    "ownerReferences": [controller_ref(ds, "apps/v1", "DaemonSet")],
                },
                "data": {"spec": {"template": template}},
                "revision": max + 1,
            });
            if let Some(generation) = super::annotation(ds, TEMPLATE_GENERATION) {
                revision["metadata"]["annotations"] = json!({TEMPLATE_GENERATION: generation});
            }
            // A name taken by someone else's revision: upstream bumps collisionCount; here the
            // hash is of the template alone, so the revision is simply not recorded.
            let _ = store.create(CONTROLLER_REVISION, namespace, revision);
        }
    }
}

/// Upstream's cleanupHistory: old revisions no live pod uses, beyond revisionHistoryLimit,
/// lowest first.
fn cleanup_history(store: &mut Store, namespace: &str, ds: &Value, hash: &str) {
    let limit = ds["spec"]["revisionHistoryLimit"].as_i64().unwrap_or(10);
    let live: Vec<String> = store
        .list(POD, Some(namespace))
        .filter(|p| controlled_by(p, uid(ds)))
        .filter_map(|p| label(p, HASH_LABEL).map(str::to_string))
        .collect();
    let mut old: Vec<Value> = store
        .list(CONTROLLER_REVISION, Some(namespace))
        .filter(|r| controlled_by(r, uid(ds)))
        .filter(|r| {
            let h = label(r, HASH_LABEL).unwrap_or_default();
            h != hash && !live.iter().any(|l| l == h)
        })
        .cloned()
        .collect();
    let excess = old.len() as i64 - limit;
    if excess <= 0 {
        return;
    }
    old.sort_by_key(|r| r["revision"].as_i64().unwrap_or(0));
    for revision in old.into_iter().take(excess as usize) {
        delete(store, CONTROLLER_REVISION, namespace, &revision);
    }
}

fn update_status(
    store: &mut Store,
    tick: &mut Tick,
    namespace: &str,
    ds: &Value,
    hash: &str,
    nodes: &[Value],
    spec: &Value,
) {
    let owned: Vec<Arc<Value>> =
        store.list_owned(POD, namespace).into_iter().filter(|p| controlled_by(p, uid(ds))).collect();
    let by_node = pods_by_node(&owned);
    let min_ready = ds["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    let (mut desired, mut scheduled, mut misscheduled, mut ready, mut available, mut updated) = (0, 0, 0, 0, 0, 0);
    for node in nodes {
        let pods = by_node.get(name(node)).filter(|p| !p.is_empty());
        if !should_run(spec, node).0 {
            misscheduled += i64::from(pods.is_some());
            continue;
        }
        desired += 1;
        let Some(pods) = pods else { continue };
        scheduled += 1;
        let mut pods: Vec<&Value> = pods.iter().map(|p| &**p).collect();
        pods.sort_by(|a, b| oldest_scheduled_first(a, b));
        let pod = pods[0];
        if is_ready(pod) {
            ready += 1;
            available += i64::from(is_available(pod, min_ready, tick));
        }
        updated += i64::from(is_updated(ds, pod, hash));
    }
    let mut status = counts(
        &[
            ("currentNumberScheduled", scheduled),
            ("numberMisscheduled", misscheduled),
            ("desiredNumberScheduled", desired),
            ("numberReady", ready),
            ("observedGeneration", ds["metadata"]["generation"].as_i64().unwrap_or(1)),
            ("updatedNumberScheduled", updated),
            ("numberAvailable", available),
            ("numberUnavailable", desired - available),
        ],
        &["currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady"],
    );
    for kept in ["collisionCount", "conditions"] {
        if let Some(value) = ds["status"].get(kept) {
            status.insert(kept.into(), value.clone());
        }
    }
    super::write_status(store, DAEMON_SET, namespace, ds, Value::Object(status));
}

/// The pods not being deleted, borrowed from the shared list.
fn live(pods: &[Arc<Value>]) -> impl Iterator<Item = &Value> {
    pods.iter().map(|pod| &**pod).filter(|pod| !is_deleting(pod))
}
