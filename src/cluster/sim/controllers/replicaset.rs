//! The ReplicaSet controller: claims the pods its selector matches (adopting orphans, releasing
//! pods relabelled away), creates pods from its template while it has fewer active pods than
//! replicas, deletes the surplus in upstream's order (ActivePodsWithRanks), and reports status.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::super::resources::{POD, REPLICA_SET};
use super::super::store::Store;
use super::{
    Backoff, Creations, Seen, Tick, claim, controlled_by, controller_of, controller_ref, counts, delete, is_active,
    is_ready, name, phase, pod_from_template, ready_long_enough, ready_since, selects, spec_replicas, uid, watched_by,
};
use crate::model::annotations::POD_DELETION_COST;

/// Upstream's burstReplicas: at most this many creations or deletions per sync.
const BURST: i64 = 500;

pub fn run(store: &mut Store, tick: &mut Tick, namespaces: &[String], backoff: &mut Backoff) {
    for namespace in namespaces {
        for rs in store.list_owned(REPLICA_SET, namespace) {
            sync(store, tick, namespace, &rs, backoff);
        }
    }
}

fn sync(store: &mut Store, tick: &mut Tick, namespace: &str, rs: &Value, backoff: &mut Backoff) {
    let rs_uid = uid(rs);
    let pods = store.list_stored(POD, namespace);
    let seen = Seen::of(rs, pods.iter().filter(|p| watched_by(&p.facts, rs)).map(|p| &*p.object), 0);
    let active = pods.into_iter().filter(|p| p.facts.claimable_by(rs_uid) && p.facts.is_active()).collect();
    let reference = controller_ref(rs, "apps/v1", "ReplicaSet");
    let owned = claim(store, POD, namespace, rs, reference.clone(), active);
    let mut creations = Creations::Done;
    if !super::is_deleting(rs) {
        let diff = owned.len() as i64 - spec_replicas(rs);
        if diff < 0 && !backoff.may_try(rs_uid, seen, tick) {
            creations = Creations::Waiting;
        } else if diff < 0 {
            let pods = (0..(-diff).min(BURST))
                .map(|_| pod_from_template(&rs["spec"]["template"], format!("{}-", name(rs)), reference.clone()));
            creations = super::create_pods(store, namespace, pods);
        } else if diff > 0 {
            let owned = owned.into_iter().map(Arc::unwrap_or_clone).collect();
            for pod in pods_to_delete(store, tick, namespace, rs, owned, diff.min(BURST) as usize) {
                delete(store, POD, namespace, &pod);
            }
        }
    }
    backoff.record(rs_uid, seen, &creations, tick);
    update_status(store, tick, namespace, rs, &creations);
}

/// Upstream's calculateStatus. `creations`: how this sync's went, which the ReplicaFailure
/// condition reports (set by a refusal, kept while backing off, gone once all went well).
fn update_status(store: &mut Store, tick: &mut Tick, namespace: &str, rs: &Value, creations: &Creations) {
    let rs_uid = uid(rs);
    let template_labels = rs["spec"]["template"]["metadata"]["labels"].as_object();
    let min_ready = rs["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    // One pass over the pods' facts, no JSON read but a Ready pod's time under minReadySeconds:
    // this runs after every write to a pod.
    let (mut replicas, mut fully_labeled, mut ready, mut available) = (0, 0, 0, 0);
    let pods = store.list_with_facts(POD, namespace).filter(|(_, f)| f.controlled_by(rs_uid) && f.is_active());
    for (pod, facts) in pods {
        replicas += 1;
        fully_labeled += i64::from(template_labels.is_none_or(|t| super::map_selects(t, &facts.labels)));
        if facts.ready {
            ready += 1;
            available += i64::from(ready_long_enough(pod, min_ready, tick));
        }
    }
    let mut status = counts(
        &[
            ("replicas", replicas),
            ("fullyLabeledReplicas", fully_labeled),
            ("readyReplicas", ready),
            ("availableReplicas", available),
            ("observedGeneration", rs["metadata"]["generation"].as_i64().unwrap_or(1)),
        ],
        &["replicas"],
    );
    let mut conditions = rs["status"]["conditions"].as_array().cloned().unwrap_or_default();
    let failing = conditions.iter().any(|c| c["type"] == "ReplicaFailure");
    match creations {
        Creations::Refused(why) if !failing => {
            let now = tick.timestamp();
            conditions.push(json!({
                "type": "ReplicaFailure",
                "status": "True",
                "lastTransitionTime": now,
                "reason": "FailedCreate",
                "message": why,
            }));
        }
        Creations::Done => conditions.retain(|c| c["type"] != "ReplicaFailure"),
        _ => {}
    }
    if !conditions.is_empty() {
        status.insert("conditions".into(), Value::Array(conditions));
    }
    super::write_status(store, REPLICA_SET, namespace, rs, Value::Object(status));
}

/// Upstream's getPodsToDelete: the first `count` of the owned pods in ActivePodsWithRanks order,
/// where a pod's rank is how many active pods related to it (see below) share its node.
fn pods_to_delete(
    store: &Store,
    tick: &Tick,
    namespace: &str,
    rs: &Value,
    pods: Vec<Value>,
    count: usize,
) -> Vec<Value> {
    if count >= pods.len() {
        return pods;
    }
    // Upstream's getIndirectlyRelatedPods: the pods that the selector of any ReplicaSet with the
    // same controller selects. A ReplicaSet without a controller has none: every rank is 0.
    let siblings: Vec<&Value> = match controller_of(rs).and_then(|r| r["uid"].as_str()) {
        Some(owner) => store.list(REPLICA_SET, Some(namespace)).filter(|other| controlled_by(other, owner)).collect(),
        None => Vec::new(),
    };
    let mut on_node: BTreeMap<&str, usize> = BTreeMap::new();
    for pod in store.list(POD, Some(namespace)) {
        let related = siblings.iter().any(|sibling| selects(&sibling["spec"]["selector"], &pod["metadata"]["labels"]));
        if related && is_active(pod) {
            *on_node.entry(pod["spec"]["nodeName"].as_str().unwrap_or_default()).or_default() += 1;
        }
    }
    let rank = |pod: &Value| on_node.get(pod["spec"]["nodeName"].as_str().unwrap_or_default()).copied().unwrap_or(0);
    let mut ranked: Vec<(usize, Value)> = pods.into_iter().map(|p| (rank(&p), p)).collect();
    let now = tick.now_nanos();
    insertion_sort(&mut ranked, |a, b| delete_order(a, b, now));
    ranked.into_iter().take(count).map(|(_, pod)| pod).collect()
}

/// A stable insertion sort: the comparison below (upstream's, with its logarithmic age buckets
/// and uid tie-breaks) is not a strict total order, which `sort_by` may refuse.
fn insertion_sort<T>(items: &mut [T], less: impl Fn(&T, &T) -> Ordering) {
    for i in 1..items.len() {
        let mut j = i;
        while j > 0 && less(&items[j], &items[j - 1]) == Ordering::Less {
            items.swap(j, j - 1);
            j -= 1;
        }
    }
}

/// Upstream's ActivePodsWithRanks.Less (with LogarithmicScaleDown and PodDeletionCost, both on by
/// default): Less means "delete first".
fn delete_order((rank_a, a): &(usize, Value), (rank_b, b): &(usize, Value), now: f64) -> Ordering {
    let node = |p: &Value| p["spec"]["nodeName"].as_str().unwrap_or_default().is_empty();
    // 1. Unassigned before assigned.
    if node(a) != node(b) {
        return if node(a) { Ordering::Less } else { Ordering::Greater };
    }
    // 2. Pending before Unknown before Running.
    let ordinal = |p: &Value| match phase(p) {
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    };
    let by_phase = ordinal(a).cmp(&ordinal(b));
    if by_phase != Ordering::Equal {
        return by_phase;
    }
    // 3. Not ready before ready.
    if is_ready(a) != is_ready(b) {
        return if is_ready(a) { Ordering::Greater } else { Ordering::Less };
    }
    // 4. Lower pod-deletion-cost first.
    let cost = |p: &Value| {
        p["metadata"]["annotations"][POD_DELETION_COST].as_str().and_then(|c| c.parse::<i32>().ok()).unwrap_or(0)
    };
    if cost(a) != cost(b) {
        return cost(a).cmp(&cost(b));
    }
    // 5. More pods of the same owner on the node first.
    if rank_a != rank_b {
        return rank_b.cmp(rank_a);
    }
    // 6. Ready for less time first.
    if is_ready(a) && is_ready(b) {
        let (since_a, since_b) = (ready_since(a), ready_since(b));
        if since_a != since_b {
            return newer_first(since_a, since_b, now, a, b);
        }
    }
    // 7. More container restarts first.
    let restarts = |p: &Value| {
        p["status"]["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["restartCount"].as_i64())
            .max()
            .unwrap_or(0)
    };
    if restarts(a) != restarts(b) {
        return restarts(b).cmp(&restarts(a));
    }
    // 8. Created more recently first.
    let (created_a, created_b) = (super::creation(a), super::creation(b));
    if created_a != created_b {
        return newer_first(created_a, created_b, now, a, b);
    }
    uid(a).cmp(uid(b))
}

/// Newer (or unknown) time first, comparing on a log2 scale of age; equal buckets by uid.
fn newer_first(a: Option<i64>, b: Option<i64>, now: f64, pod_a: &Value, pod_b: &Value) -> Ordering {
    let (Some(a), Some(b)) = (a, b) else {
        return if a.is_none() { Ordering::Less } else { Ordering::Greater };
    };
    let bucket = |t: i64| {
        let age = now - t as f64 * 1e9;
        if age > 0.0 { age.log2().floor() as i64 } else { -1 }
    };
    match bucket(a).cmp(&bucket(b)) {
        Ordering::Equal => uid(pod_a).cmp(uid(pod_b)),
        other => other,
    }
}
