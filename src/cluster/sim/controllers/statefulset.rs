//! The StatefulSet controller, after upstream's pkg/controller/statefulset: pods named
//! `<set>-<ordinal>` with a stable identity (the pod-name and pod-index labels, hostname and the
//! governing service as subdomain); OrderedReady creates them one at a time in ordinal order, each
//! once its predecessors are Running and available, and scales down from the highest ordinal,
//! one at a time; Parallel creates and deletes them all at once. ControllerRevisions record each
//! template (`<set>-<hash>`, the name every pod carries in controller-revision-hash); a
//! RollingUpdate replaces pods from the highest ordinal down to the partition, at most
//! maxUnavailable at a time (the MaxUnavailableStatefulSet feature, on by default); OnDelete
//! leaves them until they are deleted. The status is the one `kubectl rollout status` reads.
//! Volume claim templates are not modelled: the API refuses such a set before it gets here.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::super::resources::{CONTROLLER_REVISION, POD, STATEFUL_SET};
use super::super::store::{Store, hash_of};
use super::{
    Backoff, Creations, Seen, Tick, claim, controlled_by, controller_of, controller_ref, counts, delete, is_available,
    is_deleting, is_ready, is_terminal, label, name, phase, pod_from_template, spec_replicas, uid, write,
};

/// The pod label naming the revision a pod was made from (the revision's name, not its hash).
const REVISION_LABEL: &str = "controller-revision-hash";
/// The label a ControllerRevision carries its hash in.
const HASH_LABEL: &str = "controller.kubernetes.io/hash";
const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

pub fn run(store: &mut Store, tick: &mut Tick, namespaces: &[String], backoff: &mut Backoff) {
    for namespace in namespaces {
        for set in store.list_owned(STATEFUL_SET, namespace) {
            sync(store, tick, namespace, &set, backoff);
        }
    }
}

/// The parent name and ordinal a pod's name gives (`web-2` → `web`, 2), as upstream's
/// getParentNameAndOrdinal reads it.
fn parent_and_ordinal(pod_name: &str) -> Option<(&str, i64)> {
    let (parent, ordinal) = pod_name.rsplit_once('-')?;
    if ordinal.is_empty() || !ordinal.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((parent, ordinal.parse::<i32>().ok()?.into()))
}

fn ordinal(pod: &Value) -> Option<i64> {
    parent_and_ordinal(name(pod)).map(|(_, ordinal)| ordinal)
}

fn is_member(set: &Value, pod_name: &str) -> bool {
    parent_and_ordinal(pod_name).is_some_and(|(parent, _)| parent == name(set))
}

fn start_ordinal(set: &Value) -> i64 {
    set["spec"]["ordinals"]["start"].as_i64().unwrap_or(0)
}

fn revision_of(pod: &Value) -> &str {
    label(pod, REVISION_LABEL).unwrap_or_default()
}

fn min_ready(set: &Value) -> i64 {
    set["spec"]["minReadySeconds"].as_i64().unwrap_or(0)
}

fn is_parallel(set: &Value) -> bool {
    set["spec"]["podManagementPolicy"] == "Parallel"
}

fn is_created(pod: &Value) -> bool {
    !phase(pod).is_empty()
}

fn is_running_and_ready(pod: &Value) -> bool {
    phase(pod) == "Running" && is_ready(pod)
}

/// Upstream's isUnavailable: not available, or terminating.
fn is_unavailable(pod: &Value, min_ready: i64, tick: &mut Tick) -> bool {
    !is_available(pod, min_ready, tick) || is_deleting(pod)
}

/// One revision of the set's template, as upstream's newRevision records it: the template to
/// restore, under the name `<set>-<hash>`.
struct Revision {
    name: String,
    hash: String,
    data: Value,
}

impl Revision {
    fn of(set: &Value) -> Revision {
        let mut template = set["spec"]["template"].clone();
        if !template.is_object() {
            template = json!({});
        }
        template["$patch"] = "replace".into();
        let data = json!({"spec": {"template": template}});
        let hash = hash_of(&data);
        Revision { name: format!("{}-{hash}", name(set)), hash, data }
    }
}

/// The template a revision restores.
fn template_of(revision: &Value) -> Value {
    let mut template = revision["data"]["spec"]["template"].clone();
    if let Some(fields) = template.as_object_mut() {
        fields.remove("$patch");
    }
    template
}

fn sync(store: &mut Store, tick: &mut Tick, namespace: &str, set: &Value, backoff: &mut Backoff) {
    let set_uid = uid(set);
    let revisions = adopt_revisions(store, namespace, set);
    // Its own pods and the orphans named as its members (upstream's isMemberOf filter).
    let candidates = store
        .list_stored(POD, namespace)
        .into_iter()
        .filter(|p| p.facts.controlled_by(set_uid) || (p.facts.claimable_by(set_uid) && is_member(set, &p.facts.name)))
        .collect::<Vec<_>>();
    let seen = Seen::of(set, candidates.iter().map(|p| &*p.object), 0);
    let pods = claim(store, POD, namespace, set, controller_ref(set, "apps/v1", "StatefulSet"), candidates);
    let Some((current, update)) = revisions_of(store, namespace, set, &revisions) else { return };
    let mut status = Status::new(&current, &update);
    let pass = Update::new(set, &pods, &current, &update);
    // After a refused pod upstream's sync fails, and the set is synced again as the work queue
    // backs off, or at once on an event for it.
    let creations = if backoff.may_try(set_uid, seen, tick) {
        pass.run(store, tick, namespace, &mut status)
    } else {
        Creations::Waiting
    };
    backoff.record(set_uid, seen, &creations, tick);
    status.count(set, tick, &current, &update, pass.listed());
    status.write(store, namespace, set);
    truncate_history(store, namespace, set, &pods, &current, &update);
}

/// The ControllerRevisions the set's selector matches that are its own or no one's, the orphans
/// adopted, sorted by revision number (upstream's ListRevisions and adoptOrphanRevisions).
fn adopt_revisions(store: &mut Store, namespace: &str, set: &Value) -> Vec<Value> {
    let selector = &set["spec"]["selector"];
    let mut revisions: Vec<Value> = store
        .list(CONTROLLER_REVISION, Some(namespace))
        .filter(|r| super::selects(selector, &r["metadata"]["labels"]))
        .filter(|r| controller_of(r).is_none_or(|owner| owner["uid"].as_str() == Some(uid(set))))
        .cloned()
        .collect();
    if !is_deleting(set) {
        for revision in revisions.iter_mut().filter(|r| controller_of(r).is_none()) {
            let mut adopted = revision.clone();
            let refs = &mut adopted["metadata"]["ownerReferences"];
            if !refs.is_array() {
                *refs = json!([]);
            }
            refs.as_array_mut().expect("an array").push(controller_ref(set, "apps/v1", "StatefulSet"));
            if let Some(stored) = write(store, CONTROLLER_REVISION, namespace, adopted) {
                *revision = Arc::unwrap_or_clone(stored);
            }
        }
    }
    revisions.sort_by(|a, b| revision_number(a).cmp(&revision_number(b)).then_with(|| super::by_creation(a, b)));
    revisions
}

fn revision_number(revision: &Value) -> i64 {
    revision["revision"].as_i64().unwrap_or(0)
}

/// The current and update revisions (upstream's getStatefulSetRevisions): the update revision is
/// the one recording today's template, made or renumbered as the newest when it is not the
/// newest already; the current one is the one the status names, else the update revision.
fn revisions_of(store: &mut Store, namespace: &str, set: &Value, revisions: &[Value]) -> Option<(Value, Value)> {
    let proposed = Revision::of(set);
    let next = revisions.last().map_or(1, |r| revision_number(r) + 1);
    let equal = revisions.iter().rev().find(|r| r["data"] == proposed.data);
    let update = match equal {
        Some(equal) if revisions.last().is_some_and(|last| name(last) == name(equal)) => equal.clone(),
        Some(equal) => {
            let mut renumbered = equal.clone();
            renumbered["revision"] = next.into();
            Arc::unwrap_or_clone(write(store, CONTROLLER_REVISION, namespace, renumbered)?)
        }
        None => {
            let mut labels = set["spec"]["template"]["metadata"]["labels"].clone();
            if !labels.is_object() {
                labels = json!({});
            }
            labels[HASH_LABEL] = proposed.hash.clone().into();
            let mut metadata = json!({
                "name": proposed.name,
                "labels": labels,
                "ownerReferences": [controller_ref(set, "apps/v1", "StatefulSet")],
            });
            if let Some(annotations) = set["metadata"]["annotations"].as_object().filter(|a| !a.is_empty()) {
                metadata["annotations"] = Value::Object(annotations.clone());
            }
            let revision = json!({"metadata": metadata, "data": proposed.data, "revision": next});
            // A name taken by a revision of another template: upstream bumps collisionCount and
            // tries another name; here the hash covers the template alone, so the sync waits.
            Arc::unwrap_or_clone(store.create(CONTROLLER_REVISION, namespace, revision).ok()?)
        }
    };
    let current_name = set["status"]["currentRevision"].as_str().unwrap_or_default();
    let current = revisions.iter().find(|r| name(r) == current_name).cloned().unwrap_or_else(|| update.clone());
    Some((current, update))
}

/// Upstream's truncateHistory: revisions no pod, nor the status, uses, beyond
/// revisionHistoryLimit, lowest first.
fn truncate_history(
    store: &mut Store,
    namespace: &str,
    set: &Value,
    pods: &[Arc<Value>],
    current: &Value,
    update: &Value,
) {
    let limit = set["spec"]["revisionHistoryLimit"].as_i64().unwrap_or(10);
    let live = |revision: &Value| {
        let revision_name = name(revision);
        revision_name == name(current)
            || revision_name == name(update)
            || pods.iter().any(|p| revision_of(p) == revision_name)
    };
    // Read again: this sync may have made or renumbered one.
    let mut history: Vec<Value> = store
        .list(CONTROLLER_REVISION, Some(namespace))
        .filter(|r| controlled_by(r, uid(set)) && !live(r))
        .cloned()
        .collect();
    let excess = history.len() as i64 - limit;
    if limit < 0 || excess <= 0 {
        return;
    }
    history.sort_by(|a, b| revision_number(a).cmp(&revision_number(b)).then_with(|| super::by_creation(a, b)));
    for revision in history.into_iter().take(excess as usize) {
        delete(store, CONTROLLER_REVISION, namespace, &revision);
    }
}

/// One pass of upstream's updateStatefulSet over the set's pods.
struct Update<'a> {
    set: &'a Value,
    current: &'a Value,
    update: &'a Value,
    /// The pods for ordinals start..start+replicas (None where there is none yet).
    replicas: Vec<Option<Arc<Value>>>,
    /// The pods with an ordinal outside that range, highest first.
    condemned: Vec<Arc<Value>>,
    monotonic: bool,
    min_ready: i64,
}

impl<'a> Update<'a> {
    fn new(set: &'a Value, pods: &[Arc<Value>], current: &'a Value, update: &'a Value) -> Update<'a> {
        let start = start_ordinal(set);
        let count = spec_replicas(set).max(0);
        let mut replicas: Vec<Option<Arc<Value>>> = vec![None; count as usize];
        let mut condemned = Vec::new();
        for pod in pods {
            let Some(ordinal) = ordinal(pod) else { continue };
            if (start..start + count).contains(&ordinal) {
                replicas[(ordinal - start) as usize] = Some(pod.clone());
            } else {
                condemned.push(pod.clone());
            }
        }
        condemned.sort_by_key(|pod| std::cmp::Reverse(ordinal(pod)));
        Update { set, current, update, replicas, condemned, monotonic: !is_parallel(set), min_ready: min_ready(set) }
    }

    /// The pods the status counts, as they were listed: a pod created in this pass is not
    /// counted, one deleted in it still is (as upstream's status of the same sync).
    fn listed(&self) -> impl Iterator<Item = &Value> {
        self.replicas.iter().flatten().chain(&self.condemned).map(|pod| &**pod)
    }

    /// Creates, fixes and deletes pods as upstream does in one sync; says how its creations went
    /// (a refused pod ends the sync).
    fn run(&self, store: &mut Store, tick: &mut Tick, namespace: &str, status: &mut Status) -> Creations {
        if is_deleting(self.set) {
            return Creations::Done;
        }
        // The first pod, by ordinal, that is unavailable: the one a monotonic scale-down may take.
        let first_unavailable = self
            .replicas
            .iter()
            .map(|p| p.as_deref())
            .chain(self.condemned.iter().rev().map(|p| Some(&**p)))
            .find(|pod| pod.is_none_or(|pod| is_unavailable(pod, self.min_ready, tick)))
            .map(|pod| pod.map(name).unwrap_or_default().to_string());
        for index in 0..self.replicas.len() {
            match self.process_replica(store, tick, namespace, index) {
                Err(why) => return Creations::Refused(why),
                Ok(wait) if wait && self.monotonic => return Creations::Done,
                Ok(_) => {}
            }
        }
        for index in 0..self.condemned.len() {
            if self.process_condemned(store, tick, namespace, index, first_unavailable.as_deref()) && self.monotonic {
                return Creations::Done;
            }
        }
        let strategy = self.set["spec"]["updateStrategy"]["type"].as_str().unwrap_or("RollingUpdate");
        if strategy == "RollingUpdate" {
            self.roll(store, tick, namespace, status);
        }
        Creations::Done
    }

    /// Upstream's processReplica for one ordinal: true when a monotonic set must wait; the
    /// admission's words when it refused the pod.
    fn process_replica(
        &self,
        store: &mut Store,
        tick: &mut Tick,
        namespace: &str,
        index: usize,
    ) -> Result<bool, String> {
        let ordinal = start_ordinal(self.set) + index as i64;
        let Some(pod) = self.replicas[index].as_deref() else {
            let pod = self.new_pod(ordinal);
            // A name still held by a pod it does not own (an orphan that no longer matches)
            // cannot be taken: upstream's create fails and is retried, here the next sync does.
            return match super::create_pod(store, namespace, pod) {
                Err(Some(why)) => Err(why),
                _ => Ok(true),
            };
        };
        if is_terminal(pod) {
            delete(store, POD, namespace, pod);
            return Ok(true);
        }
        // A monotonic set waits for each pod to be Running and available before the next.
        if self.monotonic
            && (is_deleting(pod) || !is_running_and_ready(pod) || !is_available(pod, self.min_ready, tick))
        {
            return Ok(true);
        }
        if !identity_matches(self.set, pod, namespace) {
            let mut fixed = pod.clone();
            set_identity(self.set, &mut fixed, ordinal);
            write(store, POD, namespace, fixed);
        }
        Ok(false)
    }

    /// Upstream's processCondemned for one pod above the range; true when a monotonic set must wait.
    fn process_condemned(
        &self,
        store: &mut Store,
        tick: &mut Tick,
        namespace: &str,
        index: usize,
        first_unavailable: Option<&str>,
    ) -> bool {
        let pod = &*self.condemned[index];
        if is_deleting(pod) {
            return true;
        }
        let first = first_unavailable == Some(name(pod));
        if self.monotonic && !first && (!is_running_and_ready(pod) || !is_available(pod, self.min_ready, tick)) {
            return true;
        }
        delete(store, POD, namespace, pod);
        true
    }

    /// Upstream's updateStatefulSetAfterInvariantEstablished: from the highest ordinal down to the
    /// partition, pods of an older revision are deleted (to come back at the update revision)
    /// while fewer than maxUnavailable pods of the set are unavailable.
    fn roll(&self, store: &mut Store, tick: &mut Tick, namespace: &str, status: &mut Status) {
        let rolling = &self.set["spec"]["updateStrategy"]["rollingUpdate"];
        let partition = rolling["partition"].as_i64().unwrap_or(0).max(0) as usize;
        let count = self.replicas.len() as i64;
        let max_unavailable = rolling
            .get("maxUnavailable")
            .filter(|v| !v.is_null())
            .map_or(1, |v| super::int_or_percent(v, count, false).max(1));
        let update_name = name(self.update);
        let old = |pod: &Value| revision_of(pod) != update_name;
        let (mut unavailable, mut unavailable_old) = (0, 0);
        for (index, pod) in self.replicas.iter().enumerate().rev() {
            let Some(pod) = pod.as_deref() else {
                // Created in this sync: unavailable, and of an older revision when it was made
                // from the current one (below the partition).
                unavailable += 1;
                let made_old =
                    self.made_from_current(start_ordinal(self.set) + index as i64) && name(self.current) != update_name;
                unavailable_old += i64::from(!self.monotonic && made_old);
                continue;
            };
            if is_unavailable(pod, self.min_ready, tick) {
                unavailable += 1;
                if !self.monotonic && old(pod) && !is_deleting(pod) {
                    unavailable_old += 1;
                }
            }
        }
        if unavailable >= max_unavailable && unavailable_old == 0 {
            return;
        }
        let pods = || {
            self.replicas.iter().enumerate().rev().filter(|(i, _)| *i >= partition).filter_map(|(_, p)| p.as_deref())
        };
        if self.monotonic {
            let mut room = max_unavailable - unavailable;
            for pod in pods() {
                if room <= 0 {
                    break;
                }
                if old(pod) && !is_deleting(pod) {
                    delete(store, POD, namespace, pod);
                    status.current_replicas -= 1;
                    room -= 1;
                }
            }
            return;
        }
        // Parallel: first the old pods that are unavailable anyway, then available ones while the
        // budget lasts.
        for pod in pods() {
            if old(pod) && !is_deleting(pod) && !is_available(pod, self.min_ready, tick) {
                delete(store, POD, namespace, pod);
                status.current_replicas -= 1;
            }
        }
        let mut room = max_unavailable - unavailable;
        for pod in pods() {
            if room <= 0 {
                break;
            }
            if old(pod) && !is_unavailable(pod, self.min_ready, tick) {
                delete(store, POD, namespace, pod);
                status.current_replicas -= 1;
                room -= 1;
            }
        }
    }

    /// Whether a new pod for `ordinal` is made from the current revision (upstream's
    /// newVersionedStatefulSetPod, its operator precedence and all: the partition counts whatever
    /// the strategy).
    fn made_from_current(&self, ordinal: i64) -> bool {
        let strategy = &self.set["spec"]["updateStrategy"];
        let rolling = &strategy["rollingUpdate"];
        let start = start_ordinal(self.set);
        let current_replicas = self.set["status"]["currentReplicas"].as_i64().unwrap_or(0);
        let rolls = strategy["type"].as_str().unwrap_or("RollingUpdate") == "RollingUpdate";
        (rolls && rolling.is_null() && ordinal < start + current_replicas)
            || (rolling.is_object() && ordinal < start + rolling["partition"].as_i64().unwrap_or(0))
    }

    /// Upstream's newVersionedStatefulSetPod: below the partition a pod is made from the current
    /// revision, from the update revision elsewhere.
    fn new_pod(&self, ordinal: i64) -> Value {
        let revision = if self.made_from_current(ordinal) { self.current } else { self.update };
        let template = template_of(revision);
        let mut pod = pod_from_template(
            &template,
            format!("{}-", name(self.set)),
            controller_ref(self.set, "apps/v1", "StatefulSet"),
        );
        set_identity(self.set, &mut pod, ordinal);
        pod["spec"]["hostname"] = pod["metadata"]["name"].clone();
        if let Some(service) = self.set["spec"]["serviceName"].as_str().filter(|s| !s.is_empty()) {
            pod["spec"]["subdomain"] = service.into();
        }
        pod["metadata"]["labels"][REVISION_LABEL] = name(revision).into();
        pod
    }
}

/// Upstream's identityMatches.
fn identity_matches(set: &Value, pod: &Value, namespace: &str) -> bool {
    let pod_name = name(pod);
    is_member(set, pod_name)
        && pod["metadata"]["namespace"].as_str().is_none_or(|ns| ns == namespace)
        && label(pod, POD_NAME_LABEL) == Some(pod_name)
}

/// Upstream's updateIdentity: the name and the two identity labels.
fn set_identity(set: &Value, pod: &mut Value, ordinal: i64) {
    let pod_name = format!("{}-{ordinal}", name(set));
    if !pod["metadata"]["labels"].is_object() {
        pod["metadata"]["labels"] = json!({});
    }
    pod["metadata"]["labels"][POD_NAME_LABEL] = pod_name.clone().into();
    pod["metadata"]["labels"][POD_INDEX_LABEL] = ordinal.to_string().into();
    pod["metadata"]["name"] = pod_name.into();
}

/// The status upstream's updateStatefulSet computes and updateStatefulSetStatus writes.
struct Status {
    replicas: i64,
    ready_replicas: i64,
    available_replicas: i64,
    current_replicas: i64,
    updated_replicas: i64,
    current_revision: String,
    update_revision: String,
}

impl Status {
    fn new(current: &Value, update: &Value) -> Status {
        Status {
            replicas: 0,
            ready_replicas: 0,
            available_replicas: 0,
            current_replicas: 0,
            updated_replicas: 0,
            current_revision: name(current).to_string(),
            update_revision: name(update).to_string(),
        }
    }

    /// Upstream's computeReplicaStatus over the pods as listed, keeping what the update took off
    /// current_replicas.
    fn count<'p>(
        &mut self,
        set: &Value,
        tick: &mut Tick,
        current: &Value,
        update: &Value,
        pods: impl Iterator<Item = &'p Value>,
    ) {
        let min_ready = min_ready(set);
        let taken = self.current_replicas;
        *self = Status::new(current, update);
        for pod in pods {
            if is_created(pod) {
                self.replicas += 1;
            }
            if is_running_and_ready(pod) {
                self.ready_replicas += 1;
                self.available_replicas += i64::from(is_available(pod, min_ready, tick));
            }
            if is_created(pod) && !is_deleting(pod) {
                self.current_replicas += i64::from(revision_of(pod) == name(current));
                self.updated_replicas += i64::from(revision_of(pod) == name(update));
            }
        }
        self.current_replicas += taken;
    }

    /// Upstream's completeUpdate, then the status written when it differs from the stored one.
    fn write(mut self, store: &mut Store, namespace: &str, set: &Value) {
        let wanted = spec_replicas(set);
        if self.updated_replicas == wanted && self.ready_replicas == wanted && self.replicas == wanted {
            self.current_replicas = self.updated_replicas;
            self.current_revision = self.update_revision.clone();
        }
        let mut status: Map<String, Value> = counts(
            &[
                ("observedGeneration", set["metadata"]["generation"].as_i64().unwrap_or(1)),
                ("replicas", self.replicas),
                ("readyReplicas", self.ready_replicas),
                ("currentReplicas", self.current_replicas),
                ("updatedReplicas", self.updated_replicas),
                ("availableReplicas", self.available_replicas),
                ("collisionCount", 0),
            ],
            &["replicas", "availableReplicas", "collisionCount"],
        );
        for (key, value) in [("currentRevision", self.current_revision), ("updateRevision", self.update_revision)] {
            if !value.is_empty() {
                status.insert(key.into(), value.into());
            }
        }
        if let Some(conditions) = set["status"].get("conditions") {
            status.insert("conditions".into(), conditions.clone());
        }
        super::write_status(store, STATEFUL_SET, namespace, set, Value::Object(status));
    }
}

#[cfg(test)]
mod tests {
    use super::parent_and_ordinal;

    #[test]
    fn a_pods_parent_and_ordinal_come_from_its_name() {
        assert_eq!(parent_and_ordinal("web-0"), Some(("web", 0)));
        assert_eq!(parent_and_ordinal("my-db-12"), Some(("my-db", 12)));
        assert_eq!(parent_and_ordinal("web"), None);
        assert_eq!(parent_and_ordinal("web-"), None);
        assert_eq!(parent_and_ordinal("web-x1"), None);
        assert_eq!(parent_and_ordinal("web-99999999999"), None, "beyond an int32 is no ordinal");
    }
}
