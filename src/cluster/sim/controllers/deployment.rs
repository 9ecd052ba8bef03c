//! The Deployment controller, after upstream's pkg/controller/deployment: one ReplicaSet per pod
//! template (`<deployment>-<pod-template-hash>`), rolled over by the RollingUpdate rules
//! (maxSurge up, maxUnavailable down, unhealthy old pods first) or by Recreate (all old pods
//! gone before the new ones start), proportional scaling during a rollout, revision history, and
//! the status `kubectl rollout status` reads.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::super::resources::{DEPLOYMENT, POD, REPLICA_SET};
use super::super::store::{Store, hash_of};
use super::{
    Tick, by_creation, claim, controlled_by, controller_ref, counts, is_deleting, is_terminal, name, parse_time,
    spec_replicas, uid, write,
};

const HASH_LABEL: &str = "pod-template-hash";
const REVISION: &str = "deployment.kubernetes.io/revision";
const DESIRED: &str = "deployment.kubernetes.io/desired-replicas";
const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// Deployment annotations that are not copied to its ReplicaSets.
const NOT_COPIED: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    DESIRED,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

pub fn run(store: &mut Store, tick: &mut Tick, namespaces: &[String]) {
    for namespace in namespaces {
        for deployment in store.list_owned(DEPLOYMENT, namespace) {
            let mut d = Deployment { store, tick, namespace, d: (*deployment).clone() };
            d.sync();
            let synced = d.d;
            if synced != *deployment {
                write(store, DEPLOYMENT, namespace, synced);
            }
        }
    }
}

/// Whether a Deployment in `namespace` rolls out by Recreate (and so waits on pods).
pub(super) fn any_recreate(store: &Store, namespace: &str) -> bool {
    store.list(DEPLOYMENT, Some(namespace)).any(|d| d["spec"]["strategy"]["type"] == "Recreate")
}

/// One sync of one Deployment; `d` is the working copy, written once at the end.
struct Deployment<'a> {
    store: &'a mut Store,
    tick: &'a mut Tick,
    namespace: &'a str,
    d: Value,
}

fn rs_replicas(rs: &Value) -> i64 {
    spec_replicas(rs)
}

fn status(rs: &Value, field: &str) -> i64 {
    rs["status"][field].as_i64().unwrap_or(0)
}

fn revision(rs: &Value) -> i64 {
    super::annotation(rs, REVISION).and_then(|r| r.parse().ok()).unwrap_or(0)
}

/// Templates equal but for the pod-template-hash label (upstream's EqualIgnoreHash).
fn equal_ignoring_hash(a: &Value, b: &Value) -> bool {
    // Compared in place (no copies): this runs for every ReplicaSet on every sync.
    fn labels_equal(a: Option<&Value>, b: Option<&Value>) -> bool {
        match (as_map(a), as_map(b)) {
            (Some(a), Some(b)) => equal_except(a, b, HASH_LABEL, |_, _| true),
            _ => a == b,
        }
    }
    fn metadata_equal(a: Option<&Value>, b: Option<&Value>) -> bool {
        match (as_map(a), as_map(b)) {
            (Some(a), Some(b)) => equal_except(a, b, "labels", labels_equal),
            _ => a == b,
        }
    }
    match (a.as_object(), b.as_object()) {
        (Some(a), Some(b)) => equal_except(a, b, "metadata", metadata_equal),
        _ => a == b,
    }
}

/// A missing map reads as an empty one; anything but a map as None.
fn as_map(value: Option<&Value>) -> Option<&Map<String, Value>> {
    static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
    match value {
        None => Some(&EMPTY),
        Some(value) => value.as_object(),
    }
}

/// Whether two maps hold the same entries apart from `key`, and `key`'s values pass `same`.
fn equal_except(
    a: &Map<String, Value>,
    b: &Map<String, Value>,
    key: &str,
    same: impl Fn(Option<&Value>, Option<&Value>) -> bool,
) -> bool {
    let others = |m: &Map<String, Value>| m.len() - usize::from(m.contains_key(key));
    others(a) == others(b)
        && a.iter().filter(|(k, _)| *k != key).all(|(k, v)| b.get(k) == Some(v))
        && same(a.get(key), b.get(key))
}

fn sum(rss: &[Value], field: impl Fn(&Value) -> i64) -> i64 {
    rss.iter().map(field).sum()
}

fn is_active(rs: &Value) -> bool {
    rs_replicas(rs) > 0
}

impl Deployment<'_> {
    fn replicas(&self) -> i64 {
        spec_replicas(&self.d)
    }

    fn rolling(&self) -> bool {
        self.d["spec"]["strategy"]["type"].as_str() != Some("Recreate")
    }

    /// maxSurge and maxUnavailable resolved against replicas (upstream's ResolveFenceposts).
    fn fenceposts(&self) -> (i64, i64) {
        let rolling = &self.d["spec"]["strategy"]["rollingUpdate"];
        let default = json!("25%");
        let surge = rolling.get("maxSurge").filter(|v| !v.is_null()).unwrap_or(&default);
        let unavailable = rolling.get("maxUnavailable").filter(|v| !v.is_null()).unwrap_or(&default);
        let surge = super::int_or_percent(surge, self.replicas(), true);
        let unavailable = super::int_or_percent(unavailable, self.replicas(), false);
        if surge == 0 && unavailable == 0 { (0, 1) } else { (surge, unavailable) }
    }

    fn max_surge(&self) -> i64 {
        if self.rolling() { self.fenceposts().0 } else { 0 }
    }

    fn max_unavailable(&self) -> i64 {
        if !self.rolling() || self.replicas() == 0 {
            return 0;
        }
        self.fenceposts().1.min(self.replicas())
    }

    fn progress_deadline(&self) -> Option<i64> {
        match self.d["spec"]["progressDeadlineSeconds"].as_i64() {
            Some(seconds) if seconds == i64::from(i32::MAX) => None,
            Some(seconds) => Some(seconds),
            None => Some(600),
        }
    }

    fn sync(&mut self) {
        let selector = &self.d["spec"]["selector"];
        let empty = |k: &str| {
            selector[k].as_object().is_none_or(Map::is_empty) && selector[k].as_array().is_none_or(Vec::is_empty)
        };
        if empty("matchLabels") && empty("matchExpressions") {
            // Selects every pod: upstream refuses to act on it.
            self.d["status"]["observedGeneration"] = self.d["metadata"]["generation"].clone();
            return;
        }
        let candidates = self.store.list_stored(REPLICA_SET, self.namespace);
        let reference = controller_ref(&self.d, "apps/v1", "Deployment");
        let claimed = claim(self.store, REPLICA_SET, self.namespace, &self.d, reference, candidates);
        let mut rss: Vec<Value> = claimed.into_iter().map(Arc::unwrap_or_clone).collect();
        rss.sort_by(by_creation);
        if is_deleting(&self.d) {
            let (new, old) = self.new_and_old(&rss, false);
            return self.sync_status(new.as_ref(), &old);
        }
        self.paused_conditions();
        if self.d["spec"]["paused"].as_bool() == Some(true) {
            return self.scale_and_status(&rss);
        }
        if self.is_scaling_event(&rss) {
            return self.scale_and_status(&rss);
        }
        if self.rolling() { self.rollout_rolling(&rss) } else { self.rollout_recreate(&rss) }
    }

    /// Re-reads ReplicaSets after writes.
    fn fresh(&self, rss: &[Value]) -> Vec<Value> {
        rss.iter().filter_map(|rs| self.store.get(REPLICA_SET, self.namespace, name(rs)).cloned()).collect()
    }

    fn template_hash(&self) -> String {
        let template = &self.d["spec"]["template"];
        match self.d["status"]["collisionCount"].as_i64().filter(|c| *c > 0) {
            None => hash_of(template),
            Some(collisions) => hash_of(&json!([template, collisions])),
        }
    }

    /// Upstream's getAllReplicaSetsAndSyncRevision: the new ReplicaSet (created when `create` and
    /// missing) and the old ones, with the revision annotations brought up to date.
    fn new_and_old(&mut self, rss: &[Value], create: bool) -> (Option<Value>, Vec<Value>) {
        let template = self.d["spec"]["template"].clone();
        let existing = rss.iter().find(|rs| equal_ignoring_hash(&rs["spec"]["template"], &template)).cloned();
        let old: Vec<Value> =
            rss.iter().filter(|rs| existing.as_ref().is_none_or(|n| uid(n) != uid(rs))).cloned().collect();
        let new_revision = old.iter().map(revision).max().unwrap_or(0) + 1;
        let new = match existing {
            Some(rs) => Some(self.sync_existing_new(rs, new_revision)),
            None if create => self.create_new(&old, new_revision),
            None => None,
        };
        (new, old)
    }

    fn copy_annotations(&self, rs: &mut Value) -> bool {
        let mut changed = false;
        if let Some(annotations) = self.d["metadata"]["annotations"].as_object() {
            for (key, value) in annotations.iter().filter(|(k, _)| !NOT_COPIED.contains(&k.as_str())) {
                if rs["metadata"]["annotations"][key] != *value {
                    super::set_annotation(rs, key, value.as_str().unwrap_or_default().to_string());
                    changed = true;
                }
            }
        }
        changed
    }

    fn sync_existing_new(&mut self, rs: Value, new_revision: i64) -> Value {
        let mut updated = rs.clone();
        let mut changed = self.copy_annotations(&mut updated);
        if revision(&updated) < new_revision {
            super::set_annotation(&mut updated, REVISION, new_revision.to_string());
            changed = true;
        }
        let min_ready = self.d["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
        if updated["spec"]["minReadySeconds"].as_i64().unwrap_or(0) != min_ready {
            updated["spec"]["minReadySeconds"] = min_ready.into();
            changed = true;
        }
        let rs = if changed {
            write(self.store, REPLICA_SET, self.namespace, updated).map_or(rs, Arc::unwrap_or_clone)
        } else {
            rs
        };
        let rs_revision = super::annotation(&rs, REVISION).unwrap_or_default().to_string();
        if super::annotation(&self.d, REVISION) != Some(rs_revision.as_str()) {
            super::set_annotation(&mut self.d, REVISION, rs_revision);
        }
        if self.progress_deadline().is_some() && super::condition(&self.d, "Progressing").is_none() {
            let message = format!("Found new replica set \"{}\"", name(&rs));
            self.set_condition("Progressing", "True", "FoundNewReplicaSet", &message);
        }
        rs
    }

    fn create_new(&mut self, old: &[Value], new_revision: i64) -> Option<Value> {
        let hash = self.template_hash();
        let rs_name = replica_set_name(name(&self.d), &hash);
        let mut template = self.d["spec"]["template"].clone();
        template["metadata"]["labels"][HASH_LABEL] = hash.clone().into();
        let mut selector = self.d["spec"]["selector"].clone();
        selector["matchLabels"][HASH_LABEL] = hash.into();
        let mut rs = json!({
            "metadata": {
                "name": rs_name,
                "labels": template["metadata"]["labels"].clone(),
                "ownerReferences": [controller_ref(&self.d, "apps/v1", "Deployment")],
            },
            "spec": {
                "replicas": 0,
                "minReadySeconds": self.d["spec"]["minReadySeconds"].as_i64().unwrap_or(0),
                "selector": selector,
                "template": template,
            },
        });
        self.copy_annotations(&mut rs);
        super::set_annotation(&mut rs, REVISION, new_revision.to_string());
        super::set_annotation(&mut rs, DESIRED, self.replicas().to_string());
        super::set_annotation(&mut rs, MAX_REPLICAS, (self.replicas() + self.max_surge()).to_string());
        let mut all = old.to_vec();
        all.push(rs.clone());
        rs["spec"]["replicas"] = self.new_rs_replicas(&all, &rs).into();
        match self.store.create(REPLICA_SET, self.namespace, rs) {
            Ok(created) => {
                super::set_annotation(&mut self.d, REVISION, new_revision.to_string());
                if self.progress_deadline().is_some() {
                    let message = format!("Created new replica set \"{}\"", name(&created));
                    self.set_condition("Progressing", "True", "NewReplicaSetCreated", &message);
                }
                Some(Arc::unwrap_or_clone(created))
            }
            Err(error) if error.code == 409 => {
                // A ReplicaSet of that name that is not ours: hash again with a collision count.
                let collisions = self.d["status"]["collisionCount"].as_i64().unwrap_or(0);
                self.d["status"]["collisionCount"] = (collisions + 1).into();
                None
            }
            Err(_) => None, // the namespace is being deleted
        }
    }

    /// Upstream's NewRSNewReplicas.
    fn new_rs_replicas(&self, all: &[Value], new: &Value) -> i64 {
        if !self.rolling() {
            return self.replicas();
        }
        let current = sum(all, rs_replicas);
        let max_total = self.replicas() + self.max_surge();
        if current >= max_total {
            return rs_replicas(new);
        }
        let up = (max_total - current).min(self.replicas() - rs_replicas(new));
        rs_replicas(new) + up
    }

    /// Sets spec.replicas; with `annotate`, also the desired/max-replicas annotations (upstream's
    /// scaleReplicaSet). Returns whether anything was written.
    fn scale(&mut self, rs: &Value, replicas: i64, annotate: bool) -> bool {
        let mut updated = rs.clone();
        updated["spec"]["replicas"] = replicas.into();
        if annotate || rs_replicas(rs) != replicas {
            super::set_annotation(&mut updated, DESIRED, self.replicas().to_string());
            super::set_annotation(&mut updated, MAX_REPLICAS, (self.replicas() + self.max_surge()).to_string());
        }
        if updated == *rs {
            return false;
        }
        write(self.store, REPLICA_SET, self.namespace, updated);
        true
    }

    /// Upstream's isScalingEvent: an active ReplicaSet (the new one, or an old one when the
    /// template changed in the same write) was sized for other replicas. The scale comes first,
    /// the rollout of a new template after it.
    fn is_scaling_event(&mut self, rss: &[Value]) -> bool {
        let (new, old) = self.new_and_old(rss, false);
        let replicas = self.replicas().to_string();
        old.iter()
            .chain(new.as_ref())
            .filter(|rs| is_active(rs))
            .any(|rs| super::annotation(rs, DESIRED).is_some_and(|desired| desired != replicas))
    }

    /// Upstream's sync: scale (proportionally during a rollout), clean up when paused, status.
    fn scale_and_status(&mut self, rss: &[Value]) {
        let (new, old) = self.new_and_old(rss, false);
        self.proportional_scale(new.as_ref(), &old);
        let old = self.fresh(&old);
        let new = new.and_then(|n| self.fresh(&[n]).pop());
        if self.d["spec"]["paused"].as_bool() == Some(true) {
            self.cleanup(&old);
        }
        self.sync_status(new.as_ref(), &old);
    }

    fn proportional_scale(&mut self, new: Option<&Value>, old: &[Value]) {
        let mut newest_first = old.to_vec();
        newest_first.sort_by(|a, b| by_creation(b, a));
        let mut all: Vec<Value> = newest_first.clone();
        all.extend(new.cloned());
        let active: Vec<Value> = all.iter().filter(|rs| is_active(rs)).cloned().collect();
        let replicas = self.replicas();
        if active.len() <= 1 {
            let target = active.first().cloned().or_else(|| new.cloned()).or_else(|| newest_first.first().cloned());
            if let Some(rs) = target
                && rs_replicas(&rs) != replicas
            {
                self.scale(&rs, replicas, true);
            }
            return;
        }
        let saturated = new.is_some_and(|n| {
            rs_replicas(n) == replicas
                && super::annotation(n, DESIRED) == Some(replicas.to_string().as_str())
                && status(n, "availableReplicas") == replicas
        });
        if saturated {
            for rs in old.iter().filter(|rs| is_active(rs)) {
                self.scale(rs, 0, true);
            }
            return;
        }
        if !self.rolling() {
            return;
        }
        let allowed = if replicas > 0 { replicas + self.max_surge() } else { 0 };
        let to_add = allowed - sum(&active, rs_replicas);
        let mut ordered = active;
        // Larger first; between equals, newer first when scaling up and older first down.
        ordered.sort_by(|a, b| {
            let tie = if to_add > 0 { by_creation(b, a) } else { by_creation(a, b) };
            rs_replicas(b).cmp(&rs_replicas(a)).then(tie)
        });
        let mut added = 0;
        let mut sizes = Vec::new();
        for rs in &ordered {
            let proportion = if to_add == 0 { 0 } else { self.proportion(rs, to_add, added) };
            sizes.push(rs_replicas(rs) + proportion);
            added += proportion;
        }
        if to_add != 0
            && let Some(first) = sizes.first_mut()
        {
            *first = (*first + to_add - added).max(0);
        }
        for (rs, size) in ordered.iter().zip(sizes) {
            self.scale(rs, size, true);
        }
    }

    /// Upstream's GetReplicaSetProportion.
    fn proportion(&self, rs: &Value, to_add: i64, added: i64) -> i64 {
        if rs_replicas(rs) == 0 || to_add == added {
            return 0;
        }
        let fraction = if self.replicas() == 0 {
            -rs_replicas(rs)
        } else {
            let max_now = self.replicas() + self.max_surge();
            let before = super::annotation(rs, MAX_REPLICAS)
                .and_then(|m| m.parse::<i64>().ok())
                .filter(|m| *m != 0)
                .unwrap_or_else(|| self.d["status"]["replicas"].as_i64().unwrap_or(0));
            if before == 0 {
                0
            } else {
                ((rs_replicas(rs) * max_now) as f64 / before as f64).round() as i64 - rs_replicas(rs)
            }
        };
        let allowed = to_add - added;
        if to_add > 0 { fraction.min(allowed) } else { fraction.max(allowed) }
    }

    fn rollout_rolling(&mut self, rss: &[Value]) {
        let (new, old) = self.new_and_old(rss, true);
        let Some(new) = new else {
            return self.sync_rollout_status(None, &old);
        };
        let mut all = old.clone();
        all.push(new.clone());
        let progressed = self.reconcile_new(&all, &new) || {
            let old = self.fresh(&old);
            let new = self.fresh(std::slice::from_ref(&new)).pop().unwrap_or(new.clone());
            self.reconcile_old(&old, &new)
        };
        let old = self.fresh(&old);
        let new = self.fresh(&[new]).pop();
        if !progressed && self.complete(&self.d["status"]) {
            self.cleanup(&old);
        }
        self.sync_rollout_status(new.as_ref(), &old);
    }

    /// Upstream's reconcileNewReplicaSet.
    fn reconcile_new(&mut self, all: &[Value], new: &Value) -> bool {
        let replicas = self.replicas();
        match rs_replicas(new).cmp(&replicas) {
            std::cmp::Ordering::Equal => false,
            std::cmp::Ordering::Greater => self.scale(new, replicas, false),
            std::cmp::Ordering::Less => {
                let count = self.new_rs_replicas(all, new);
                count != rs_replicas(new) && self.scale(new, count, false)
            }
        }
    }

    /// Upstream's reconcileOldReplicaSets: unhealthy old pods first, then as many as
    /// maxUnavailable allows, oldest ReplicaSets first.
    fn reconcile_old(&mut self, old: &[Value], new: &Value) -> bool {
        let active_old: Vec<Value> = old.iter().filter(|rs| is_active(rs)).cloned().collect();
        if sum(&active_old, rs_replicas) == 0 {
            return false;
        }
        let all_pods = sum(&active_old, rs_replicas) + rs_replicas(new);
        let min_available = self.replicas() - self.max_unavailable();
        let new_unavailable = rs_replicas(new) - status(new, "availableReplicas");
        let max_scaled_down = all_pods - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return false;
        }
        // cleanupUnhealthyReplicas
        let mut cleaned = 0;
        let mut sorted = active_old;
        sorted.sort_by(by_creation);
        for rs in &sorted {
            if cleaned >= max_scaled_down {
                break;
            }
            let unhealthy = rs_replicas(rs) - status(rs, "availableReplicas");
            if rs_replicas(rs) == 0 || unhealthy <= 0 {
                continue;
            }
            let down = (max_scaled_down - cleaned).min(unhealthy);
            self.scale(rs, rs_replicas(rs) - down, false);
            cleaned += down;
        }
        // scaleDownOldReplicaSetsForRollingUpdate
        let sorted = self.fresh(&sorted);
        let new = self.fresh(std::slice::from_ref(new)).pop().unwrap_or_else(|| new.clone());
        let available = sum(&sorted, |rs| status(rs, "availableReplicas")) + status(&new, "availableReplicas");
        let mut scaled = 0;
        if available > min_available {
            let total = available - min_available;
            for rs in &sorted {
                if scaled >= total {
                    break;
                }
                if rs_replicas(rs) == 0 {
                    continue;
                }
                let down = rs_replicas(rs).min(total - scaled);
                self.scale(rs, rs_replicas(rs) - down, false);
                scaled += down;
            }
        }
        cleaned + scaled > 0
    }

    fn rollout_recreate(&mut self, rss: &[Value]) {
        let (new, old) = self.new_and_old(rss, false);
        let mut scaled_down = false;
        for rs in old.iter().filter(|rs| is_active(rs)) {
            scaled_down |= self.scale(rs, 0, false);
        }
        if scaled_down {
            let old = self.fresh(&old);
            return self.sync_rollout_status(new.as_ref(), &old);
        }
        if self.old_pods_running(new.as_ref(), &old) {
            return self.sync_rollout_status(new.as_ref(), &old);
        }
        let new = match new {
            Some(new) => Some(new),
            None => self.new_and_old(rss, true).0,
        };
        if let Some(rs) = &new
            && rs_replicas(rs) != self.replicas()
        {
            self.scale(rs, self.replicas(), false);
        }
        let old = self.fresh(&old);
        let new = new.and_then(|n| self.fresh(&[n]).pop());
        if self.complete(&self.d["status"]) {
            self.cleanup(&old);
        }
        self.sync_rollout_status(new.as_ref(), &old);
    }

    /// Whether any pod of an old ReplicaSet is still there (terminating ones included).
    fn old_pods_running(&self, new: Option<&Value>, old: &[Value]) -> bool {
        if sum(old, |rs| status(rs, "replicas")) > 0 {
            return true;
        }
        let old_uids: Vec<&str> = old.iter().map(uid).filter(|u| new.is_none_or(|n| uid(n) != *u)).collect();
        self.store
            .list(POD, Some(self.namespace))
            .any(|pod| !is_terminal(pod) && old_uids.iter().any(|u| controlled_by(pod, u)))
    }

    /// Upstream's cleanupDeployment: old ReplicaSets beyond revisionHistoryLimit, fully scaled
    /// down, lowest revision first.
    fn cleanup(&mut self, old: &[Value]) {
        let limit = self.d["spec"]["revisionHistoryLimit"].as_i64().unwrap_or(10);
        let mut cleanable: Vec<&Value> = old.iter().filter(|rs| !is_deleting(rs)).collect();
        let excess = cleanable.len() as i64 - limit;
        if excess <= 0 {
            return;
        }
        cleanable.sort_by(|a, b| revision(a).cmp(&revision(b)).then_with(|| by_creation(a, b)));
        for rs in cleanable.into_iter().take(excess as usize) {
            let observed = rs["status"]["observedGeneration"].as_i64().unwrap_or(0);
            let generation = rs["metadata"]["generation"].as_i64().unwrap_or(1);
            if status(rs, "replicas") != 0 || rs_replicas(rs) != 0 || generation > observed {
                continue;
            }
            super::delete(self.store, REPLICA_SET, self.namespace, rs);
        }
    }

    /// Upstream's DeploymentComplete.
    fn complete(&self, status: &Value) -> bool {
        let field = |f: &str| status[f].as_i64().unwrap_or(0);
        let replicas = self.replicas();
        field("updatedReplicas") == replicas
            && field("replicas") == replicas
            && field("availableReplicas") == replicas
            && field("observedGeneration") >= self.d["metadata"]["generation"].as_i64().unwrap_or(1)
    }

    /// Upstream's calculateStatus: the counts and the Available condition.
    fn calculate_status(&mut self, new: Option<&Value>, old: &[Value]) -> Value {
        let mut all = old.to_vec();
        all.extend(new.cloned());
        let available = sum(&all, |rs| status(rs, "availableReplicas"));
        let unavailable = (sum(&all, rs_replicas) - available).max(0);
        let mut status = counts(
            &[
                ("observedGeneration", self.d["metadata"]["generation"].as_i64().unwrap_or(1)),
                ("replicas", sum(&all, |rs| status(rs, "replicas"))),
                ("updatedReplicas", new.map_or(0, |n| status(n, "replicas"))),
                ("readyReplicas", sum(&all, |rs| status(rs, "readyReplicas"))),
                ("availableReplicas", available),
                ("unavailableReplicas", unavailable),
            ],
            &[],
        );
        if let Some(collisions) = self.d["status"].get("collisionCount") {
            status.insert("collisionCount".into(), collisions.clone());
        }
        if let Some(conditions) = self.d["status"].get("conditions") {
            status.insert("conditions".into(), conditions.clone());
        }
        let mut status = Value::Object(status);
        if available >= self.replicas() - self.max_unavailable() {
            set_condition(
                &mut status,
                self.tick,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
            );
        } else {
            set_condition(
                &mut status,
                self.tick,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            );
        }
        status
    }

    fn sync_status(&mut self, new: Option<&Value>, old: &[Value]) {
        self.d["status"] = self.calculate_status(new, old);
    }

    /// Upstream's syncRolloutStatus: the counts, Available, and Progressing with its deadline.
    fn sync_rollout_status(&mut self, new: Option<&Value>, old: &[Value]) {
        let mut status = self.calculate_status(new, old);
        let Some(deadline) = self.progress_deadline() else {
            remove_condition(&mut status, "Progressing");
            self.d["status"] = status;
            return;
        };
        let current = super::condition(&self.d, "Progressing").cloned();
        let complete_before = status["replicas"] == status["updatedReplicas"]
            && current.as_ref().is_some_and(|c| c["reason"] == "NewReplicaSetAvailable");
        let subject = match new {
            Some(rs) => format!("ReplicaSet \"{}\"", name(rs)),
            None => format!("Deployment \"{}\"", name(&self.d)),
        };
        if !complete_before {
            if self.complete(&status) {
                let message = format!("{subject} has successfully progressed.");
                set_condition(&mut status, self.tick, "Progressing", "True", "NewReplicaSetAvailable", &message);
            } else if self.progressing(&status) {
                let message = format!("{subject} is progressing.");
                let mut condition = new_condition(self.tick, "Progressing", "True", "ReplicaSetUpdated", &message);
                if let Some(current) = current.as_ref().filter(|c| c["status"] == "True") {
                    condition["lastTransitionTime"] = current["lastTransitionTime"].clone();
                }
                remove_condition(&mut status, "Progressing");
                push_condition(&mut status, condition);
            } else if self.timed_out(current.as_ref(), deadline) {
                let message = format!("{subject} has timed out progressing.");
                set_condition(&mut status, self.tick, "Progressing", "False", "ProgressDeadlineExceeded", &message);
            }
        }
        self.d["status"] = status;
    }

    /// Upstream's DeploymentProgressing: more updated, fewer old, more ready or more available.
    fn progressing(&self, status: &Value) -> bool {
        let old = |f: &str| self.d["status"][f].as_i64().unwrap_or(0);
        let new = |f: &str| status[f].as_i64().unwrap_or(0);
        new("updatedReplicas") > old("updatedReplicas")
            || new("replicas") - new("updatedReplicas") < old("replicas") - old("updatedReplicas")
            || new("readyReplicas") > old("readyReplicas")
            || new("availableReplicas") > old("availableReplicas")
    }

    /// Upstream's DeploymentTimedOut; when not yet, asks to be woken at the deadline.
    fn timed_out(&mut self, current: Option<&Value>, deadline: i64) -> bool {
        let Some(current) = current else { return false };
        match current["reason"].as_str() {
            Some("ProgressDeadlineExceeded") => return true,
            Some("NewReplicaSetAvailable") => return false,
            _ => {}
        }
        let Some(from) = current["lastUpdateTime"].as_str().and_then(parse_time) else { return false };
        // Timed out once from + deadline is strictly before now (timestamps are whole seconds).
        if from + deadline < self.tick.now_secs {
            return true;
        }
        self.tick.wake_at_secs(from + deadline + 1);
        false
    }

    /// Upstream's checkPausedConditions: Progressing Unknown while paused, and on resume.
    fn paused_conditions(&mut self) {
        if self.progress_deadline().is_none() {
            return;
        }
        let paused = self.d["spec"]["paused"].as_bool() == Some(true);
        let reason = super::condition(&self.d, "Progressing").and_then(|c| c["reason"].as_str()).unwrap_or_default();
        if paused && reason != "DeploymentPaused" {
            self.set_condition("Progressing", "Unknown", "DeploymentPaused", "Deployment is paused");
        } else if !paused && reason == "DeploymentPaused" {
            self.set_condition("Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed");
        }
    }

    fn set_condition(&mut self, kind: &str, status: &str, reason: &str, message: &str) {
        if !self.d["status"].is_object() {
            self.d["status"] = json!({});
        }
        set_condition(&mut self.d["status"], self.tick, kind, status, reason, message);
    }
}

fn new_condition(tick: &Tick, kind: &str, status: &str, reason: &str, message: &str) -> Value {
    let now = tick.timestamp();
    json!({
        "type": kind,
        "status": status,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    })
}

/// Upstream's SetDeploymentCondition: nothing changes when status and reason are the same; the
/// transition time stays when only the reason changes.
fn set_condition(status: &mut Value, tick: &Tick, kind: &str, state: &str, reason: &str, message: &str) {
    let current = status["conditions"].as_array().and_then(|c| c.iter().find(|c| c["type"] == kind)).cloned();
    if current.as_ref().is_some_and(|c| c["status"] == state && c["reason"] == reason) {
        return;
    }
    let mut condition = new_condition(tick, kind, state, reason, message);
    if let Some(current) = current.filter(|c| c["status"] == state) {
        condition["lastTransitionTime"] = current["lastTransitionTime"].clone();
    }
    remove_condition(status, kind);
    push_condition(status, condition);
}

fn remove_condition(status: &mut Value, kind: &str) {
    if let Some(conditions) = status.get_mut("conditions").and_then(Value::as_array_mut) {
        conditions.retain(|c| c["type"] != kind);
    }
}

fn push_condition(status: &mut Value, condition: Value) {
    if !status["conditions"].is_array() {
        status["conditions"] = json!([]);
    }
    status["conditions"].as_array_mut().expect("an array").push(condition);
}

/// Upstream's generateReplicaSetName: `<deployment>-<hash>`, the deployment's name cut so that
/// the whole stays a valid object name (253 characters).
fn replica_set_name(deployment: &str, hash: &str) -> String {
    let room = 253 - 1 - hash.len();
    let prefix = if deployment.len() > room { &deployment[..room] } else { deployment };
    format!("{prefix}-{hash}")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{equal_ignoring_hash, replica_set_name};

    #[test]
    fn a_replica_set_name_cuts_the_deployment_name_to_fit() {
        assert_eq!(replica_set_name("web", "5d8f9c7b4x"), "web-5d8f9c7b4x");
        let long = "w".repeat(250);
        let name = replica_set_name(&long, "5d8f9c7b4x");
        assert_eq!(name.len(), 253);
        assert_eq!(name, format!("{}-5d8f9c7b4x", "w".repeat(242)));
    }

    #[test]
    fn templates_compare_without_their_hash_label() {
        let template = |labels: serde_json::Value| json!({"metadata": {"labels": labels}, "spec": {"x": 1}});
        let plain = template(json!({"app": "web"}));
        assert!(equal_ignoring_hash(&plain, &template(json!({"app": "web", "pod-template-hash": "abc"}))));
        assert!(!equal_ignoring_hash(&plain, &template(json!({"app": "api"}))));
        assert!(!equal_ignoring_hash(&plain, &template(json!({"app": "web", "tier": "x"}))));
        // Labels that are only the hash, empty labels and no metadata are all "no labels".
        let bare = json!({"spec": {"x": 1}});
        assert!(equal_ignoring_hash(&bare, &template(json!({"pod-template-hash": "abc"}))));
        assert!(equal_ignoring_hash(&bare, &json!({"metadata": {}, "spec": {"x": 1}})));
        assert!(!equal_ignoring_hash(&bare, &json!({"metadata": {"annotations": {"a": "b"}}, "spec": {"x": 1}})));
        assert!(!equal_ignoring_hash(&bare, &json!({"spec": {"x": 2}})));
        assert!(!equal_ignoring_hash(&bare, &json!({"spec": {"x": 1}, "extra": true})));
    }
}
