//! The built-in cluster's etcd and registry in one: objects as the API serves them (JSON), one
//! global resourceVersion counter, uids, generations, and the ordered log of changes that watches
//! replay. Everything that writes (the API, the controllers) goes through here, so every change
//! is one watch event in one order.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::clock::Clock;
use super::error::ApiError;
use super::facts::Facts;
use super::resources::{self, Resource};

/// What a watch event says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    Added,
    Modified,
    Deleted,
}

impl ChangeType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Added => "ADDED",
            ChangeType::Modified => "MODIFIED",
            ChangeType::Deleted => "DELETED",
        }
    }
}

/// One change, as a watch delivers it.
#[derive(Debug, Clone)]
pub struct Change {
    pub resource_version: u64,
    pub resource: Resource,
    pub namespace: String,
    pub change: ChangeType,
    /// What a watch's selectors read: the object's `metadata` name, namespace and labels.
    pub selectable: Value,
    /// The object as it was, in JSON, serialised once for every watch that delivers it. The log
    /// keeps text, not the object: 10,000 object trees held ~150 MB, their text a fraction.
    pub json: Bytes,
    /// For a modification that changed the object's labels, the object as it was before: a watch
    /// filtered by labels tells the object moving out of its selection as DELETED and moving in as
    /// ADDED, as the API server's watch cache does.
    pub before_relabel: Option<BeforeRelabel>,
}

/// An object before a change of its labels, as [`Change::before_relabel`] keeps it.
#[derive(Debug, Clone)]
pub struct BeforeRelabel {
    /// What a watch's selectors read of the object before the change.
    pub selectable: Value,
    /// The object before the change, in JSON.
    pub json: Bytes,
}

#[cfg(test)]
impl Change {
    /// The object as it was after this change (tests replay the log).
    pub fn object(&self) -> Value {
        serde_json::from_slice(&self.json).expect("the log holds JSON it wrote")
    }
}

/// How many of the latest changes the log keeps for watches that resume (older
/// resourceVersions get 410 Gone and the watcher re-lists, as with etcd's compaction), however
/// far the open watches have read.
const LOG_RETAINED: usize = 1_000;

/// The most changes the log holds: past this, even a change an open watch has not read yet is
/// dropped, and that watch ends with 410 Gone. Between two reads of a watch only one write and
/// the controllers' reaction to it happen, so only a write that sets off thousands of changes
/// (a scale to thousands of replicas) comes near it.
const LOG_CAPACITY: usize = 10_000;

type Key = (Resource, String, String);

/// Which controllers a change can concern, by what it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// More than labels and annotations: any that read its kind.
    State,
    /// Only labels or annotations: not those that never read them.
    LabelsOnly,
    /// Only a pod's labels, moving it into or out of no selection: neither those that read
    /// labels only to select pods.
    NoSelection,
}

/// An object as stored, with what the controllers read of it, read once when it was written.
#[derive(Clone)]
pub struct Stored {
    pub object: Arc<Value>,
    pub facts: Arc<Facts>,
}

/// Namespace (or kind) -> the version of the last change of some sort there. Looked up on every
/// pass of the controllers: hashed with foldhash, not SipHash.
type Versions<K, V = u64> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

pub struct Store {
    /// Shared with the change log and with controllers' snapshots of a namespace: a write
    /// replaces an object, it never changes one in place.
    objects: BTreeMap<Key, Stored>,
    resource_version: u64,
    log: VecDeque<Change>,
    /// Open watch -> its kind and the resourceVersion it has read up to: the log keeps what they
    /// have not read.
    cursors: BTreeMap<u64, (Resource, u64)>,
    next_cursor: u64,
    /// Counter behind uids and generated names: deterministic, so two runs name things alike.
    serial: u64,
    /// Namespace -> the version of the last change in it (a change to the Namespace object
    /// counts as one in it), so the controllers revisit only namespaces that changed...
    namespace_versions: Versions<String>,
    /// ... and, within one, kind -> the version of the last change to an object of that kind,
    /// so each controller runs only where something it reads changed.
    kind_versions: Versions<String, Versions<Resource>>,
    /// The same, counting only changes to more than an object's labels and annotations (which
    /// the kubelet, for one, never reads)...
    state_versions: Versions<String, Versions<Resource>>,
    /// ... and not counting a pod's relabelling that moves it into or out of no selection in its
    /// namespace (see [`Store::moves_no_selection`]): the controllers that read pods' labels only
    /// to select them find nothing new in one.
    selection_versions: Versions<String, Versions<Resource>>,
    /// The Namespaces' names, in order, kept as they are created and removed.
    namespace_names: Arc<[String]>,
    /// Namespace -> the version of the last change to the Namespace object itself (its deletion
    /// concerns every controller).
    namespace_object_versions: Versions<String>,
    /// The version of the last change to a cluster-scoped object other than a namespace (a
    /// node): every namespace may depend on it.
    cluster_version: u64,
    /// The same, not counting changes to labels and annotations only.
    cluster_state_version: u64,
    /// Namespace -> the version of the last change that can give the garbage collector work
    /// there: an object removed, one being deleted, or one whose owner references changed.
    owner_versions: Versions<String>,
    /// The same for cluster-scoped objects (an owner of anything, anywhere).
    cluster_owner_version: u64,
    /// Where each change's JSON is written before it is copied to the log at its own size: one
    /// buffer, kept at the largest change's size, instead of a new one grown by doubling for
    /// every write.
    scratch: Vec<u8>,
    pub clock: Clock,
}

impl Store {
    pub fn new(clock: Clock) -> Store {
        Store {
            objects: BTreeMap::new(),
            resource_version: 0,
            log: VecDeque::new(),
            cursors: BTreeMap::new(),
            next_cursor: 0,
            serial: 0,
            namespace_versions: Default::default(),
            kind_versions: Default::default(),
            state_versions: Default::default(),
            selection_versions: Default::default(),
            namespace_names: Arc::new([]),
            namespace_object_versions: Default::default(),
            cluster_version: 0,
            cluster_state_version: 0,
            owner_versions: Default::default(),
            cluster_owner_version: 0,
            scratch: Vec::new(),
            clock,
        }
    }

    /// A store at the default clock with the namespaces `names`, for unit tests.
    #[cfg(test)]
    pub fn with_namespaces(names: &[&str]) -> Store {
        let mut store = Store::new(super::clock::Clock::default());
        for name in names {
            store.create(resources::NAMESPACE, "", serde_json::json!({"metadata": {"name": name}})).unwrap();
        }
        store
    }

    /// The version of the last change in `namespace` that a controller reading `kinds` must see:
    /// to an object of one of those kinds there, to the Namespace itself, or (when it reads a
    /// cluster-scoped kind such as nodes) to a cluster-scoped object.
    pub fn last_change_of(&self, namespace: &str, kinds: &[Resource]) -> u64 {
        self.last_of(&self.kind_versions, self.cluster_version, namespace, kinds)
    }

    /// `last_change_of`, not counting changes to an object's labels or annotations only.
    pub fn last_state_change_of(&self, namespace: &str, kinds: &[Resource]) -> u64 {
        self.last_of(&self.state_versions, self.cluster_state_version, namespace, kinds)
    }

    /// `last_change_of`, not counting a pod's labels changed in a way that moves it into or out
    /// of no selection.
    pub fn last_selection_change_of(&self, namespace: &str, kinds: &[Resource]) -> u64 {
        self.last_of(&self.selection_versions, self.cluster_version, namespace, kinds)
    }

    fn last_of(
        &self,
        versions: &Versions<String, Versions<Resource>>,
        cluster: u64,
        namespace: &str,
        kinds: &[Resource],
    ) -> u64 {
        let mut last = self.namespace_object_versions.get(namespace).copied().unwrap_or(0);
        let in_namespace = versions.get(namespace);
        for resource in kinds {
            let version = if resource.namespaced {
                in_namespace.and_then(|kinds| kinds.get(resource)).copied().unwrap_or(0)
            } else {
                cluster
            };
            last = last.max(version);
        }
        last
    }

    /// The version of the last change in `namespace` that can give the garbage collector work:
    /// to owner references, a deletion or a removal there or of a cluster-scoped object, or to
    /// the Namespace itself. Nothing else can leave an owner reference dangling or a deletion to
    /// finish.
    pub fn last_owner_change(&self, namespace: &str) -> u64 {
        let in_namespace = self.owner_versions.get(namespace).copied().unwrap_or(0);
        let namespace_object = self.namespace_object_versions.get(namespace).copied().unwrap_or(0);
        in_namespace.max(namespace_object).max(self.cluster_owner_version)
    }

    /// The version of the last change that can matter to any of `namespace`'s controllers: one
    /// in the namespace, or one to a cluster-scoped object such as a node.
    pub fn last_change_for(&self, namespace: &str) -> u64 {
        self.namespace_versions.get(namespace).copied().unwrap_or(0).max(self.cluster_version)
    }

    pub fn resource_version(&self) -> u64 {
        self.resource_version
    }

    pub fn get(&self, resource: Resource, namespace: &str, name: &str) -> Option<&Value> {
        self.objects.get(&(resource, scope(resource, namespace), name.to_string())).map(|stored| &*stored.object)
    }

    /// The object as stored, shared (a write replaces it; it is never changed in place).
    pub fn get_shared(&self, resource: Resource, namespace: &str, name: &str) -> Option<Arc<Value>> {
        self.objects.get(&(resource, scope(resource, namespace), name.to_string())).map(|stored| stored.object.clone())
    }

    /// Objects of one kind, in one namespace or (None) in all, ordered by namespace and name.
    pub fn list<'a>(&'a self, resource: Resource, namespace: Option<&'a str>) -> impl Iterator<Item = &'a Value> + 'a {
        // Keys sort by kind, then namespace: one namespace's objects are one contiguous range.
        let start = scope(resource, namespace.unwrap_or_default());
        self.objects
            .range((resource, start, String::new())..)
            .take_while(move |((r, ns, _), _)| *r == resource && namespace.is_none_or(|wanted| wanted == ns))
            .map(|(_, stored)| &*stored.object)
    }

    /// `list` of one namespace, each object with its facts.
    pub fn list_with_facts<'a>(
        &'a self,
        resource: Resource,
        namespace: &'a str,
    ) -> impl Iterator<Item = (&'a Value, &'a Facts)> + 'a {
        self.range(resource, namespace).map(|stored| (&*stored.object, &*stored.facts))
    }

    /// `list_owned`, each object with its facts.
    pub fn list_stored(&self, resource: Resource, namespace: &str) -> Vec<Stored> {
        self.range(resource, namespace).cloned().collect()
    }

    fn range<'a>(&'a self, resource: Resource, namespace: &'a str) -> impl Iterator<Item = &'a Stored> + 'a {
        self.objects
            .range((resource, scope(resource, namespace), String::new())..)
            .take_while(move |((r, ns, _), _)| *r == resource && ns == namespace)
            .map(|(_, stored)| stored)
    }

    /// The objects of one kind in one namespace as they are now, for controllers that write while
    /// they walk (shared, not copied).
    pub fn list_owned(&self, resource: Resource, namespace: &str) -> Vec<Arc<Value>> {
        self.range(resource, namespace).map(|stored| stored.object.clone()).collect()
    }

    /// Namespaces that exist, by name (shared: the controllers ask after every write).
    pub fn namespaces(&self) -> Arc<[String]> {
        self.namespace_names.clone()
    }

    /// Changes after `resource_version`, or Err when the log no longer reaches back that far.
    pub fn changes_since(&self, resource_version: u64) -> Result<impl Iterator<Item = &Change>, ApiError> {
        if let Some(oldest) = self.log.front()
            && resource_version + 1 < oldest.resource_version
        {
            return Err(ApiError::gone(resource_version));
        }
        // The log is in resourceVersion order: every watch looks here after every write, so
        // it finds where to start instead of walking the whole log.
        let start = self.log.partition_point(|c| c.resource_version <= resource_version);
        Ok(self.log.range(start..))
    }

    /// Registers an open watch that has read up to `resource_version`; the log keeps every later
    /// change until the watch reads it (see `LOG_CAPACITY`). Returns the watch's cursor.
    pub fn open_cursor(&mut self, resource: Resource, resource_version: u64) -> u64 {
        self.next_cursor += 1;
        self.cursors.insert(self.next_cursor, (resource, resource_version));
        self.next_cursor
    }

    /// Notes that the watch with `cursor` has read up to `resource_version`.
    pub fn advance_cursor(&mut self, cursor: u64, resource_version: u64) {
        if let Some((_, read)) = self.cursors.get_mut(&cursor) {
            *read = resource_version;
        }
        self.trim_log();
    }

    /// Moves to the newest version every watch that had read up to `since` and whose kind is
    /// not in `changed`: it is not woken for the changes since, none of which it would deliver,
    /// and must not hold them in the log.
    pub fn pass_over(&mut self, since: u64, changed: &[Resource]) {
        let newest = self.resource_version;
        for (resource, read) in self.cursors.values_mut() {
            if *read >= since && !changed.contains(resource) {
                *read = newest;
            }
        }
        self.trim_log();
    }

    /// How many watches are open.
    #[cfg(test)]
    pub fn open_cursors(&self) -> usize {
        self.cursors.len()
    }

    /// Forgets a watch that ended.
    pub fn close_cursor(&mut self, cursor: u64) {
        self.cursors.remove(&cursor);
        self.trim_log();
    }

    /// Drops the changes that every open watch has read, down to the last `LOG_RETAINED`, and
    /// anything beyond `LOG_CAPACITY`. A log that kept 10,000 objects' text whether or not anyone
    /// would read it again held ~50 MB, and filling it cost a long run a sixth of its time.
    fn trim_log(&mut self) {
        let read_by_all = self.cursors.values().map(|(_, read)| *read).min().unwrap_or(u64::MAX);
        while let Some(oldest) = self.log.front() {
            let unread = oldest.resource_version > read_by_all;
            if self.log.len() <= LOG_RETAINED || (unread && self.log.len() <= LOG_CAPACITY) {
                break;
            }
            self.log.pop_front();
        }
    }

    /// A fresh uid: the format of Kubernetes' (UUID v4 layout), from a counter that counts
    /// down. Where the ReplicaSet controller's time rules cannot tell two pods apart it falls back
    /// to comparing uids (random on a real cluster); counting down makes that fall on the newer
    /// pod, the one its time rules pick whenever the clocks do tell them apart.
    pub fn new_uid(&mut self) -> String {
        self.serial += 1;
        let n = 0xff_ffff_ffff_ffffu64 - self.serial;
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            0x5e11_0000u32,
            (n >> 48) & 0xffff,
            (n >> 36) & 0xfff,
            (n >> 24) & 0xfff,
            n & 0xff_ffff_ffff
        )
    }

    /// Five characters from the alphabet `generateName` uses, deterministic per call.
    pub fn random_suffix(&mut self) -> String {
        self.serial += 1;
        suffix(self.serial.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 20, 5)
    }

    /// A name from a `generateName` prefix, as the registry's name generator makes it: the prefix
    /// cut to 58 bytes, so that with the five random characters it fits a DNS label.
    pub fn generate_name(&mut self, prefix: &str) -> String {
        const MAX_PREFIX: usize = 63 - 5;
        let mut end = prefix.len().min(MAX_PREFIX);
        while !prefix.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}{}", &prefix[..end], self.random_suffix())
    }

    /// Whether `object` may be created in `namespace`, short of what creating it makes: the
    /// namespace exists and is not being deleted, and the object has a name not in use, or a
    /// prefix to generate one from.
    pub fn may_create(&self, resource: Resource, namespace: &str, object: &Value) -> Result<(), ApiError> {
        let namespace = scope(resource, namespace);
        if resource.namespaced {
            match self.get(resources::NAMESPACE, "", &namespace) {
                None => return Err(ApiError::not_found(resources::NAMESPACE, &namespace)),
                Some(ns) if ns["metadata"]["deletionTimestamp"].is_string() => {
                    return Err(ApiError::forbidden(format!(
                        "unable to create new content in namespace {namespace} because it is being terminated"
                    )));
                }
                Some(_) => {}
            }
        }
        match name_of(object) {
            Some(name) if !name.is_empty() => match self.objects.contains_key(&(resource, namespace, name.to_string()))
            {
                true => Err(ApiError::already_exists(resource, name)),
                false => Ok(()),
            },
            _ => match object["metadata"]["generateName"].as_str() {
                Some(prefix) if !prefix.is_empty() => Ok(()),
                _ => Err(ApiError::invalid_name_required(resource)),
            },
        }
    }

    /// Creates an object as the registry does: name (or generateName), uid, resourceVersion,
    /// creationTimestamp, generation; refuses what [`Store::may_create`] refuses.
    pub fn create(&mut self, resource: Resource, namespace: &str, mut object: Value) -> Result<Arc<Value>, ApiError> {
        omit_empty_string_maps(resource, &mut object);
        let namespace = scope(resource, namespace);
        self.may_create(resource, &namespace, &object)?;
        if !object["metadata"].is_object() {
            object["metadata"] = json!({});
        }
        let name = match name_of(&object) {
            Some(name) if !name.is_empty() => name.to_string(),
            _ => self.generate_name(object["metadata"]["generateName"].as_str().unwrap_or_default()),
        };
        let key = (resource, namespace.clone(), name.clone());
        if self.objects.contains_key(&key) {
            return Err(ApiError::already_exists(resource, &name));
        }
        object["apiVersion"] = resource.api_version().into();
        object["kind"] = resource.kind.into();
        let uid = self.new_uid();
        let created = self.clock.timestamp();
        let metadata = object["metadata"].as_object_mut().expect("metadata is an object");
        metadata.insert("name".into(), name.into());
        if resource.namespaced {
            metadata.insert("namespace".into(), namespace.clone().into());
        } else {
            metadata.remove("namespace");
        }
        metadata.insert("uid".into(), uid.into());
        metadata.insert("creationTimestamp".into(), created.into());
        metadata.remove("resourceVersion");
        metadata.remove("deletionTimestamp");
        if has_generation(resource) {
            metadata.insert("generation".into(), 1.into());
        }
        Ok(self.commit(key, object, ChangeType::Added))
    }

    /// Replaces an object (spec, status, metadata alike), keeping what the server owns: uid,
    /// creationTimestamp; bumps generation when the spec changed. An object being deleted whose
    /// finalizers are gone is removed.
    pub fn update(&mut self, resource: Resource, namespace: &str, mut object: Value) -> Result<Arc<Value>, ApiError> {
        omit_empty_string_maps(resource, &mut object);
        let namespace = scope(resource, namespace);
        let name = name_of(&object).unwrap_or_default().to_string();
        let key = (resource, namespace, name.clone());
        let Some(current) = self.objects.get(&key).map(|stored| &stored.object) else {
            return Err(ApiError::not_found(resource, &name));
        };
        if **current == object {
            return Ok(current.clone());
        }
        object["apiVersion"] = resource.api_version().into();
        object["kind"] = resource.kind.into();
        for kept in ["uid", "creationTimestamp", "namespace", "deletionTimestamp", "deletionGracePeriodSeconds"] {
            keep_stored(&mut object, current, &["metadata", kept]);
        }
        if has_generation(resource) {
            let generation = current["metadata"]["generation"].as_i64().unwrap_or(1);
            let changed = current.get("spec") != object.get("spec");
            object["metadata"]["generation"] = (generation + i64::from(changed)).into();
        }
        if **current == object {
            return Ok(current.clone());
        }
        // Removed once its finalizers are gone, unless a grace period still runs (the kubelet
        // removes a pod then): the registry's ShouldDeleteDuringUpdate; a namespace also waits
        // for the namespace controller's own (`spec.finalizers`), removed once it is empty.
        let finalized = object["metadata"]["deletionTimestamp"].is_string()
            && object["metadata"]["finalizers"].as_array().is_none_or(Vec::is_empty)
            && object["metadata"]["deletionGracePeriodSeconds"].as_i64().unwrap_or(0) == 0
            && (resource != resources::NAMESPACE || object["spec"]["finalizers"].as_array().is_none_or(Vec::is_empty));
        if finalized {
            // The write is a deletion, which the API server answers with the object as written
            // but at the version stored before (the registry's deleteWithoutFinalizers): the
            // deletion's own version is only in the watch's DELETED event.
            let previous = current["metadata"]["resourceVersion"].clone();
            let mut answer = object;
            answer["metadata"]["resourceVersion"] = previous;
            self.remove(resource, &key.1, &name);
            return Ok(Arc::new(answer));
        }
        Ok(self.commit(key, object, ChangeType::Modified))
    }

    /// Marks an object as being deleted (deletionTimestamp, and the grace period for pods): the
    /// object stays until whoever finalizes it (the kubelet, the namespace controller) removes it.
    pub fn mark_deleted(
        &mut self,
        resource: Resource,
        namespace: &str,
        name: &str,
        grace: Option<i64>,
    ) -> Option<Arc<Value>> {
        let current = self.get_shared(resource, namespace, name)?;
        if let Some(deleted_at) = current["metadata"]["deletionTimestamp"].as_str() {
            // Already being deleted: a delete may only shorten the grace period, which moves the
            // deletionTimestamp back by the difference, though never before now (where a graceful
            // delete keeps a period of 1 s): the API server's BeforeDelete.
            let period = current["metadata"]["deletionGracePeriodSeconds"].as_i64().unwrap_or(0);
            let (Some(mut shorter), Ok(deleted_at)) = (grace, deleted_at.parse::<Timestamp>()) else {
                return Some(current);
            };
            if period == 0 || shorter >= period {
                return Some(current);
            }
            let mut moved =
                super::clock::moved_by(super::clock::moved_by(deleted_at.as_second(), period.wrapping_neg()), shorter);
            if moved < self.clock.now_secs() {
                moved = self.clock.now_secs();
                if shorter != 0 {
                    shorter = 1;
                }
            }
            let mut object = Arc::unwrap_or_clone(current);
            let moved = Timestamp::from_second(moved).unwrap_or(deleted_at);
            object["metadata"]["deletionTimestamp"] = moved.to_string().into();
            object["metadata"]["deletionGracePeriodSeconds"] = shorter.into();
            let key = (resource, scope(resource, namespace), name.to_string());
            return Some(self.commit(key, object, ChangeType::Modified));
        }
        // A pod deleted with no grace period and no finalizer goes at once (the registry's
        // errDeleteNow), kubelet or none.
        if grace == Some(0) && current["metadata"]["finalizers"].as_array().is_none_or(Vec::is_empty) {
            return self.remove(resource, namespace, name);
        }
        let mut object = Arc::unwrap_or_clone(current);
        object["metadata"]["deletionTimestamp"] = self.clock.timestamp_after(grace.unwrap_or(0)).into();
        if let Some(grace) = grace {
            object["metadata"]["deletionGracePeriodSeconds"] = grace.into();
        }
        if has_generation(resource) {
            let generation = object["metadata"]["generation"].as_i64().unwrap_or(1);
            object["metadata"]["generation"] = (generation + 1).into();
        }
        let key = (resource, scope(resource, namespace), name.to_string());
        Some(self.commit(key, object, ChangeType::Modified))
    }

    /// Removes an object for good (a DELETED event); returns it as it last was.
    pub fn remove(&mut self, resource: Resource, namespace: &str, name: &str) -> Option<Arc<Value>> {
        let key = (resource, scope(resource, namespace), name.to_string());
        let mut object = Arc::unwrap_or_clone(self.objects.remove(&key)?.object);
        self.resource_version += 1;
        object["metadata"]["resourceVersion"] = self.resource_version.to_string().into();
        let shared = Arc::new(object);
        self.note_owner_change(&key);
        self.record(key, shared.clone(), None, ChangeType::Deleted, Reach::State);
        Some(shared)
    }

    fn commit(&mut self, key: Key, mut object: Value, change: ChangeType) -> Arc<Value> {
        self.resource_version += 1;
        object["metadata"]["resourceVersion"] = self.resource_version.to_string().into();
        let shared = Arc::new(object);
        let facts = Arc::new(Facts::of(key.0, &shared));
        let previous = self.objects.insert(key.clone(), Stored { object: shared.clone(), facts }).map(|p| p.object);
        if is_being_deleted(&shared) || previous.as_deref().and_then(owner_references) != owner_references(&shared) {
            self.note_owner_change(&key);
        }
        let reach = match previous.as_deref() {
            Some(previous) if only_labels_differ(previous, &shared) => {
                if key.0 == resources::POD && self.moves_no_selection(&key.1, previous, &shared) {
                    Reach::NoSelection
                } else {
                    Reach::LabelsOnly
                }
            }
            _ => Reach::State,
        };
        self.record(key, shared.clone(), previous.as_deref(), change, reach);
        shared
    }

    /// Whether a pod relabelled from `before` to `after` (its annotations unchanged) stays in
    /// and out of the same selections in `namespace`, known without evaluating one: no label
    /// that changed is a key of any workload's selector or template labels or of any Service's
    /// selector, nor a label the controllers write themselves (the template hash and
    /// generation). Those are all that the ReplicaSet, DaemonSet, StatefulSet and EndpointSlice
    /// controllers read of a pod's labels (the scheduler also reads them for affinity, and keeps
    /// seeing every change).
    fn moves_no_selection(&self, namespace: &str, before: &Value, after: &Value) -> bool {
        const CONTROLLER_LABELS: [&str; 3] =
            ["pod-template-hash", "controller-revision-hash", "pod-template-generation"];
        let (before, after) = (&before["metadata"], &after["metadata"]);
        if before.get("annotations") != after.get("annotations") {
            return false;
        }
        let (before, after) = (before["labels"].as_object(), after["labels"].as_object());
        let differs = |key: &str| before.and_then(|l| l.get(key)) != after.and_then(|l| l.get(key));
        let keys = before.into_iter().chain(after).flat_map(|labels| labels.keys().map(String::as_str));
        let changed: Vec<&str> = keys.filter(|key| differs(key)).collect();
        if changed.iter().any(|key| CONTROLLER_LABELS.contains(key)) {
            return false;
        }
        super::facts::SELECTING
            .into_iter()
            .flat_map(|kind| self.range(kind, namespace))
            .all(|stored| !stored.facts.selects_on_any(&changed))
    }

    /// Marks the change being committed (its version already counted) as one for the collector.
    fn note_owner_change(&mut self, (resource, namespace, _): &Key) {
        let version = self.resource_version;
        if resource.namespaced {
            self.owner_versions.insert(namespace.clone(), version);
        } else {
            self.cluster_owner_version = version;
        }
    }

    /// Logs a change, and notes its version for the controllers that read its kind, as far as
    /// it reaches. `previous` is the object before a modification.
    fn record(
        &mut self,
        (resource, namespace, name): Key,
        object: Arc<Value>,
        previous: Option<&Value>,
        change: ChangeType,
        reach: Reach,
    ) {
        if resource == resources::NAMESPACE {
            let known = self.namespace_names.binary_search(&name);
            match (change, known) {
                (ChangeType::Deleted, Ok(at)) => {
                    let mut names = self.namespace_names.to_vec();
                    names.remove(at);
                    self.namespace_names = names.into();
                }
                (ChangeType::Added | ChangeType::Modified, Err(at)) => {
                    let mut names = self.namespace_names.to_vec();
                    names.insert(at, name.clone());
                    self.namespace_names = names.into();
                }
                _ => {}
            }
            if change == ChangeType::Deleted {
                self.namespace_versions.remove(&name);
                self.kind_versions.remove(&name);
                self.state_versions.remove(&name);
                self.selection_versions.remove(&name);
                self.namespace_object_versions.remove(&name);
                self.owner_versions.remove(&name);
            } else {
                self.namespace_versions.insert(name.clone(), self.resource_version);
                self.namespace_object_versions.insert(name.clone(), self.resource_version);
            }
        } else if resource.namespaced {
            self.namespace_versions.insert(namespace.clone(), self.resource_version);
            self.kind_versions.entry(namespace.clone()).or_default().insert(resource, self.resource_version);
            if reach == Reach::State {
                self.state_versions.entry(namespace.clone()).or_default().insert(resource, self.resource_version);
            }
            if reach != Reach::NoSelection {
                self.selection_versions.entry(namespace.clone()).or_default().insert(resource, self.resource_version);
            }
        } else {
            self.cluster_version = self.resource_version;
            if reach == Reach::State {
                self.cluster_state_version = self.resource_version;
            }
        }
        let before_relabel = previous
            .filter(|previous| previous["metadata"].get("labels") != object["metadata"].get("labels"))
            .map(|previous| BeforeRelabel {
                selectable: selectable_of(previous),
                json: self.logged_json(previous).unwrap_or_else(|| self.serialised(previous)),
            });
        let selectable = selectable_of(&object);
        let json = self.serialised(&object);
        self.log.push_back(Change {
            resource_version: self.resource_version,
            resource,
            namespace,
            change,
            selectable,
            json,
            before_relabel,
        });
        self.trim_log();
    }

    /// A stored object's text, as the change that stored it left it in the log, if the log still
    /// holds that change: found by the object's resourceVersion, each version being one change.
    fn logged_json(&self, object: &Value) -> Option<Bytes> {
        let version = object["metadata"]["resourceVersion"].as_str()?.parse::<u64>().ok()?;
        let at = self.log.partition_point(|change| change.resource_version < version);
        self.log.get(at).filter(|change| change.resource_version == version).map(|change| change.json.clone())
    }

    /// An object's JSON text, written through the store's scratch buffer.
    fn serialised(&mut self, object: &Value) -> Bytes {
        self.scratch.clear();
        serde_json::to_writer(&mut self.scratch, object).expect("JSON values serialise");
        Bytes::copy_from_slice(&self.scratch)
    }
}

/// What a watch's selectors read of an object: its `metadata` name, namespace and labels.
fn selectable_of(object: &Value) -> Value {
    let metadata = &object["metadata"];
    let mut selected = serde_json::Map::new();
    for field in ["name", "namespace", "labels"] {
        if let Some(value) = metadata.get(field) {
            selected.insert(field.to_string(), value.clone());
        }
    }
    json!({ "metadata": selected })
}

/// The string maps a runbook empties, which the API's Go types mark `omitempty`: the API server
/// validates them empty (its messages show `{}`), then stores them not at all. A merge patch that
/// drops a Service's last selector key leaves it with no selector, which the endpoint controller
/// and `remove-from-lb` read as "no selector", not as one that selects nothing.
fn omit_empty_string_maps(resource: Resource, object: &mut Value) {
    const EVERY_KIND: &[&[&str]] = &[&["metadata", "labels"], &["metadata", "annotations"]];
    const SERVICE: &[&[&str]] = &[&["spec", "selector"]];
    const POD: &[&[&str]] = &[&["spec", "nodeSelector"]];
    const TEMPLATED: &[&[&str]] = &[
        &["spec", "template", "metadata", "labels"],
        &["spec", "template", "metadata", "annotations"],
        &["spec", "template", "spec", "nodeSelector"],
    ];
    let of_the_kind = if resource == resources::SERVICE {
        SERVICE
    } else if resource == resources::POD {
        POD
    } else if [resources::DEPLOYMENT, resources::REPLICA_SET, resources::DAEMON_SET].contains(&resource) {
        TEMPLATED
    } else {
        &[]
    };
    for path in EVERY_KIND.iter().chain(of_the_kind) {
        let Some((last, parent)) = path.split_last() else { continue };
        let parent = parent.iter().try_fold(&mut *object, |value, key| value.get_mut(*key));
        if let Some(Value::Object(parent)) = parent
            && parent.get(*last).and_then(Value::as_object).is_some_and(serde_json::Map::is_empty)
        {
            parent.remove(*last);
        }
    }
}

/// Whether two versions of an object differ in their labels or annotations only (their
/// resourceVersions aside).
fn only_labels_differ(previous: &Value, next: &Value) -> bool {
    let (Some(previous), Some(next)) = (previous.as_object(), next.as_object()) else { return false };
    let aside = |key: &str| matches!(key, "labels" | "annotations" | "resourceVersion");
    let same_metadata =
        match (previous.get("metadata").and_then(Value::as_object), next.get("metadata").and_then(Value::as_object)) {
            (Some(a), Some(b)) => a.iter().filter(|(k, _)| !aside(k)).eq(b.iter().filter(|(k, _)| !aside(k))),
            _ => false,
        };
    same_metadata && previous.iter().filter(|(k, _)| *k != "metadata").eq(next.iter().filter(|(k, _)| *k != "metadata"))
}

fn owner_references(object: &Value) -> Option<&Value> {
    object["metadata"].get("ownerReferences")
}

fn is_being_deleted(object: &Value) -> bool {
    object["metadata"]["deletionTimestamp"].is_string()
}

/// The namespace part of a key: empty for cluster-scoped kinds.
fn scope(resource: Resource, namespace: &str) -> String {
    if resource.namespaced { namespace.to_string() } else { String::new() }
}

/// Kinds whose registry keeps metadata.generation (spec changes bump it).
fn has_generation(resource: Resource) -> bool {
    matches!(resource.group, "apps" | "batch" | "policy" | "autoscaling")
}

/// Sets the field at `path` in `object` to what `stored` (the object as stored) holds there, or
/// removes it when `stored` has none: a field that only the server changes, kept on a write as a
/// registry's PrepareForUpdate keeps it. Parents missing on the way are made when there is a value
/// to keep (a typed object always has them); a parent that is not an object is left as it is, for
/// validation to refuse.
pub fn keep_stored(object: &mut Value, stored: &Value, path: &[&str]) {
    let Some((field, parents)) = path.split_last() else { return };
    match path.iter().try_fold(stored, |value, key| value.get(key)) {
        Some(kept) => {
            let mut parent = object;
            for key in parents {
                let Some(fields) = fields_made(parent) else { return };
                parent = fields.entry(*key).or_insert(Value::Null);
            }
            if let Some(fields) = fields_made(parent) {
                fields.insert((*field).to_string(), kept.clone());
            }
        }
        None => {
            let parent = parents.iter().try_fold(object, |value, key| value.get_mut(key));
            if let Some(fields) = parent.and_then(Value::as_object_mut) {
                fields.remove(*field);
            }
        }
    }
}

/// The fields of an object, a null made an empty object first; `None` for any other value.
fn fields_made(value: &mut Value) -> Option<&mut Map<String, Value>> {
    if value.is_null() {
        *value = Value::Object(Map::new());
    }
    value.as_object_mut()
}

pub fn name_of(object: &Value) -> Option<&str> {
    object["metadata"]["name"].as_str()
}

/// The characters Kubernetes uses for generated names and hashes (no vowels, no look-alikes).
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `length` characters of `ALPHABET` from `value`.
pub fn suffix(mut value: u64, length: usize) -> String {
    let mut out = String::with_capacity(length);
    for _ in 0..length {
        out.push(ALPHABET[(value % ALPHABET.len() as u64) as usize] as char);
        value /= ALPHABET.len() as u64;
    }
    out
}

/// A stable hash of a JSON value (FNV-1a over its serialisation), for pod-template-hash and
/// controller-revision-hash: the same template always gets the same hash.
pub fn hash_of(value: &Value) -> String {
    /// FNV-1a over the bytes serde_json writes, hashed as they are written (no string built).
    struct Fnv(u64);
    impl std::io::Write for Fnv {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            for byte in bytes {
                self.0 ^= u64::from(*byte);
                self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
            }
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut hash = Fnv(0xcbf2_9ce4_8422_2325);
    serde_json::to_writer(&mut hash, value).expect("a JSON value always serializes");
    suffix(hash.0, 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_field_takes_the_stored_value_or_goes_when_the_stored_object_has_none() {
        let stored = json!({"spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
        let mut sent = json!({"spec": {"finalizers": [], "other": 1}, "status": {"phase": "Gone"}});
        keep_stored(&mut sent, &stored, &["spec", "finalizers"]);
        keep_stored(&mut sent, &stored, &["status"]);
        assert_eq!(sent, json!({"spec": {"finalizers": ["kubernetes"], "other": 1}, "status": {"phase": "Active"}}));

        // A parent missing from the sent object is made when there is a value to keep...
        let mut bare = json!({"metadata": {"name": "a"}});
        keep_stored(&mut bare, &stored, &["spec", "finalizers"]);
        assert_eq!(bare["spec"], json!({"finalizers": ["kubernetes"]}));

        // ...and not made to remove one: no `spec: null` appears.
        let mut bare = json!({"metadata": {"name": "a"}});
        keep_stored(&mut bare, &json!({}), &["spec", "finalizers"]);
        keep_stored(&mut bare, &json!({}), &["status"]);
        assert_eq!(bare, json!({"metadata": {"name": "a"}}));

        // A field the stored object lacks is removed from the sent one.
        let mut sent = json!({"spec": {"finalizers": ["x"], "other": 1}});
        keep_stored(&mut sent, &json!({"spec": {}}), &["spec", "finalizers"]);
        assert_eq!(sent, json!({"spec": {"other": 1}}));

        // A parent that is not an object is left for validation to refuse, not a panic.
        let mut odd = json!({"spec": "x"});
        keep_stored(&mut odd, &stored, &["spec", "finalizers"]);
        assert_eq!(odd, json!({"spec": "x"}));
    }

    #[test]
    fn empty_string_maps_are_not_stored_and_empty_objects_elsewhere_are() {
        let mut service = json!({
            "metadata": {"name": "web", "labels": {}, "annotations": {"a": "b"}},
            "spec": {"selector": {}, "ports": [{"port": 80}]},
        });
        omit_empty_string_maps(resources::SERVICE, &mut service);
        assert_eq!(service["metadata"], json!({"name": "web", "annotations": {"a": "b"}}));
        assert!(service["spec"].get("selector").is_none(), "{service}");
        let mut deployment = json!({"metadata": {"name": "web"}, "spec": {"template": {
            "metadata": {"labels": {"app": "web"}, "annotations": {}},
            "spec": {"nodeSelector": {}, "volumes": [{"name": "tmp", "emptyDir": {}}], "containers": []},
        }}});
        omit_empty_string_maps(resources::DEPLOYMENT, &mut deployment);
        let template = &deployment["spec"]["template"];
        assert_eq!(template["metadata"], json!({"labels": {"app": "web"}}));
        assert!(template["spec"].get("nodeSelector").is_none(), "{template}");
        // An empty struct is a value of its own (a volume's source), not an empty map.
        assert_eq!(template["spec"]["volumes"], json!([{"name": "tmp", "emptyDir": {}}]));
    }

    fn store() -> Store {
        let mut store = Store::new(Clock::default());
        store.create(resources::NAMESPACE, "", json!({"metadata": {"name": "ns"}})).unwrap();
        store
    }

    #[test]
    fn every_write_is_one_change_in_order() {
        let mut store = store();
        let pod = store.create(resources::POD, "ns", json!({"metadata": {"generateName": "web-"}})).unwrap();
        let name = name_of(&pod).unwrap().to_string();
        assert!(name.starts_with("web-") && name.len() == 9, "{name}");
        let mut changed = (*pod).clone();
        changed["metadata"]["labels"] = json!({"app": "web"});
        store.update(resources::POD, "ns", changed).unwrap();
        store.remove(resources::POD, "ns", &name).unwrap();
        let changes: Vec<_> = store.changes_since(1).unwrap().map(|c| (c.resource_version, c.change)).collect();
        assert_eq!(changes, [(2, ChangeType::Added), (3, ChangeType::Modified), (4, ChangeType::Deleted)]);
        // A watch resuming mid-log gets exactly what came after its version.
        let versions = |since| store.changes_since(since).unwrap().map(|c| c.resource_version).collect::<Vec<_>>();
        assert_eq!(versions(3), [4]);
        assert_eq!(versions(4), Vec::<u64>::new());
    }

    #[test]
    fn a_generated_name_cuts_its_prefix_to_fit_a_dns_label() {
        let mut store = store();
        let long = "w".repeat(100) + "-";
        let pod = store.create(resources::POD, "ns", json!({"metadata": {"generateName": long}})).unwrap();
        let name = name_of(&pod).unwrap();
        assert_eq!(name.len(), 63, "{name}");
        assert!(name.starts_with(&"w".repeat(58)) && !name[..58].contains('-'), "{name}");
        // A prefix cut inside a character keeps the whole characters before it.
        let name = store.generate_name(&format!("a{}", "é".repeat(40)));
        assert_eq!(name.chars().count(), 1 + 28 + 5, "{name}");
    }

    #[test]
    fn changes_are_tracked_per_namespace_and_kind_for_the_controllers() {
        let mut store = store();
        store.create(resources::NAMESPACE, "", json!({"metadata": {"name": "other"}})).unwrap();
        let before = store.resource_version();
        store.create(resources::SERVICE, "ns", json!({"metadata": {"name": "web"}})).unwrap();
        let service = store.resource_version();
        // A controller that reads only pods has nothing new; one that reads services has.
        assert!(store.last_change_of("ns", &[resources::POD]) <= before);
        assert_eq!(store.last_change_of("ns", &[resources::POD, resources::SERVICE]), service);
        assert!(store.last_change_of("other", &[resources::SERVICE]) <= before);
        assert_eq!(store.last_change_for("ns"), service);
        // Nodes are cluster-scoped: every namespace's node readers see them.
        store.create(resources::NODE, "", json!({"metadata": {"name": "n1"}})).unwrap();
        let node = store.resource_version();
        assert_eq!(store.last_change_of("other", &[resources::POD, resources::NODE]), node);
        assert!(store.last_change_of("other", &[resources::POD]) < node);
        // The namespaces the controllers visit, in order, as they come and go.
        assert_eq!(*store.namespaces(), ["ns", "other"]);
        store.create(resources::NAMESPACE, "", json!({"metadata": {"name": "a"}})).unwrap();
        store.mark_deleted(resources::NAMESPACE, "", "ns", None);
        assert_eq!(*store.namespaces(), ["a", "ns", "other"], "a namespace being deleted is still there");
        store.remove(resources::NAMESPACE, "", "ns");
        assert_eq!(*store.namespaces(), ["a", "other"]);
    }

    #[test]
    fn a_change_to_labels_or_annotations_alone_is_not_a_change_of_state() {
        let mut store = store();
        let pod = store.create(resources::POD, "ns", json!({"metadata": {"name": "p"}, "spec": {}})).unwrap();
        let created = store.resource_version();
        assert_eq!(store.last_state_change_of("ns", &[resources::POD]), created);
        let mut labelled = (*pod).clone();
        labelled["metadata"]["labels"] = json!({"app": "web"});
        labelled["metadata"]["annotations"] = json!({"note": "x"});
        let labelled = store.update(resources::POD, "ns", labelled).unwrap();
        assert_eq!(store.last_change_of("ns", &[resources::POD]), store.resource_version());
        assert_eq!(store.last_state_change_of("ns", &[resources::POD]), created, "labels and annotations only");
        for (path, value) in [("spec", json!({"nodeName": "n1"})), ("status", json!({"phase": "Running"}))] {
            let mut changed = (*store.get_shared(resources::POD, "ns", "p").unwrap()).clone();
            changed[path] = value;
            store.update(resources::POD, "ns", changed).unwrap();
            assert_eq!(store.last_state_change_of("ns", &[resources::POD]), store.resource_version(), "{path}");
        }
        let mut finalizing = (*labelled).clone();
        finalizing["metadata"]["finalizers"] = json!(["x"]);
        assert!(!only_labels_differ(&labelled, &finalizing), "other metadata is state");
        store.remove(resources::POD, "ns", "p").unwrap();
        assert_eq!(store.last_state_change_of("ns", &[resources::POD]), store.resource_version(), "a removal");
    }

    #[test]
    fn a_relabelling_that_moves_a_pod_into_or_out_of_no_selection_is_not_a_change_of_selection() {
        let mut store = store();
        let selector = json!({"matchLabels": {"app": "web"}});
        let template = json!({"metadata": {"labels": {"app": "web", "tier": "front"}}});
        store
            .create(
                resources::REPLICA_SET,
                "ns",
                json!({"metadata": {"name": "rs"}, "spec": {"selector": selector, "template": template}}),
            )
            .unwrap();
        store
            .create(
                resources::SERVICE,
                "ns",
                json!({"metadata": {"name": "svc"}, "spec": {"selector": {"role": "api"}}}),
            )
            .unwrap();
        let expressions = json!({"matchExpressions": [{"key": "zone", "operator": "Exists"}]});
        store
            .create(resources::DAEMON_SET, "ns", json!({"metadata": {"name": "ds"}, "spec": {"selector": expressions}}))
            .unwrap();
        let labels = json!({"app": "web", "tier": "front", "role": "api", "pod-template-hash": "h1"});
        store.create(resources::POD, "ns", json!({"metadata": {"name": "p", "labels": labels}, "spec": {}})).unwrap();
        let relabel = |store: &mut Store, change: &dyn Fn(&mut Value)| {
            let mut pod = (*store.get_shared(resources::POD, "ns", "p").unwrap()).clone();
            change(&mut pod["metadata"]);
            store.update(resources::POD, "ns", pod).unwrap();
            store.last_selection_change_of("ns", &[resources::POD]) == store.resource_version()
        };
        let before = store.last_selection_change_of("ns", &[resources::POD]);
        assert!(!relabel(&mut store, &|m| m["labels"]["round"] = "a".into()), "a label no selector reads");
        assert!(!relabel(&mut store, &|m| m["labels"]["round"] = "b".into()), "changed again");
        assert_eq!(store.last_selection_change_of("ns", &[resources::POD]), before);
        assert_eq!(store.last_change_of("ns", &[resources::POD]), store.resource_version(), "still a change");
        for (what, change) in [
            (
                "out of the ReplicaSet's selector",
                &(|m: &mut Value| m["labels"]["app"] = "db".into()) as &dyn Fn(&mut Value),
            ),
            ("back in", &|m: &mut Value| m["labels"]["app"] = "web".into()),
            ("out of its template's labels", &|m: &mut Value| m["labels"]["tier"] = "back".into()),
            ("out of the Service's selector", &|m: &mut Value| m["labels"]["role"] = "batch".into()),
            ("into the DaemonSet's selector", &|m: &mut Value| m["labels"]["zone"] = "a".into()),
            ("a hash label the controllers write", &|m: &mut Value| m["labels"]["pod-template-hash"] = "h2".into()),
            ("an annotation", &|m: &mut Value| {
                m["annotations"] = json!({"controller.kubernetes.io/pod-deletion-cost": "5"})
            }),
            ("a label with an annotation", &|m: &mut Value| {
                m["labels"]["round"] = "c".into();
                m["annotations"]["note"] = "x".into();
            }),
        ] {
            assert!(relabel(&mut store, change), "{what}");
        }
        let mut moved = (*store.get_shared(resources::POD, "ns", "p").unwrap()).clone();
        moved["spec"]["nodeName"] = "n1".into();
        store.update(resources::POD, "ns", moved).unwrap();
        assert_eq!(store.last_selection_change_of("ns", &[resources::POD]), store.resource_version(), "state");
    }

    #[test]
    fn the_log_keeps_what_an_open_watch_has_not_read_and_drops_the_rest() {
        let mut store = store();
        store.create(resources::POD, "ns", json!({"metadata": {"name": "p"}})).unwrap();
        let relabel = |store: &mut Store, times: usize| {
            for i in 0..times {
                let mut pod = (*store.get_shared(resources::POD, "ns", "p").unwrap()).clone();
                pod["metadata"]["labels"] = json!({"round": i.to_string()});
                store.update(resources::POD, "ns", pod).unwrap();
            }
        };
        let watch = store.open_cursor(resources::POD, store.resource_version());
        let opened_at = store.resource_version();
        relabel(&mut store, LOG_RETAINED * 2);
        // Nothing the open watch has not read is gone: it resumes where it was.
        assert_eq!(store.changes_since(opened_at).unwrap().count(), LOG_RETAINED * 2);
        store.advance_cursor(watch, store.resource_version());
        assert_eq!(store.log.len(), LOG_RETAINED, "read by every watch: only the latest are kept");
        assert!(store.changes_since(opened_at).is_err(), "a resume from before them is 410 Gone");
        // However far behind a watch is, the log never holds more than its capacity.
        relabel(&mut store, LOG_CAPACITY + 10);
        assert_eq!(store.log.len(), LOG_CAPACITY);
        store.close_cursor(watch);
        assert_eq!(store.log.len(), LOG_RETAINED, "a watch that ended holds nothing back");
    }

    #[test]
    fn a_change_of_labels_keeps_the_object_as_it_was_before_from_the_log_or_written_anew() {
        let mut store = store();
        let relabel = |store: &mut Store, name: &str, labels: Value| {
            let mut object = (*store.get_shared(resources::CONFIG_MAP, "ns", name).unwrap()).clone();
            object["metadata"]["labels"] = labels;
            store.update(resources::CONFIG_MAP, "ns", object).unwrap();
            store.log.back().unwrap().clone()
        };
        let before = |change: &Change| -> Value {
            serde_json::from_slice(&change.before_relabel.as_ref().expect("labels changed").json).unwrap()
        };
        // Deleted and made again under the same name: the object before is the new one.
        store.create(resources::CONFIG_MAP, "ns", json!({"metadata": {"name": "x", "labels": {"v": "a"}}})).unwrap();
        store.remove(resources::CONFIG_MAP, "ns", "x");
        let again = json!({"metadata": {"name": "x", "labels": {"v": "b"}, "annotations": {"made": "again"}}});
        let made = store.create(resources::CONFIG_MAP, "ns", again).unwrap();
        let change = relabel(&mut store, "x", json!({"v": "c"}));
        assert_eq!(before(&change), *made, "the object as the log holds it");
        assert_eq!(change.before_relabel.unwrap().selectable["metadata"]["labels"], json!({"v": "b"}));
        // Its change gone from the log, the object is written anew, the same.
        store.create(resources::CONFIG_MAP, "ns", json!({"metadata": {"name": "other"}})).unwrap();
        for i in 0..=LOG_RETAINED {
            relabel(&mut store, "other", json!({"round": i.to_string()}));
        }
        let stored = store.get_shared(resources::CONFIG_MAP, "ns", "x").unwrap();
        let version: u64 = stored["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap();
        assert!(store.log.iter().all(|c| c.resource_version != version), "the change is gone from the log");
        let change = relabel(&mut store, "x", json!({"v": "d"}));
        assert_eq!(before(&change), *stored);
        // A change that leaves the labels alone keeps nothing.
        let mut noted = (*store.get_shared(resources::CONFIG_MAP, "ns", "x").unwrap()).clone();
        noted["metadata"]["annotations"] = json!({"note": "n"});
        store.update(resources::CONFIG_MAP, "ns", noted).unwrap();
        assert!(store.log.back().unwrap().before_relabel.is_none());
    }

    #[test]
    fn a_watch_passed_over_for_other_kinds_holds_none_of_their_changes_in_the_log() {
        let mut store = store();
        store.create(resources::POD, "ns", json!({"metadata": {"name": "p"}})).unwrap();
        let node_watch = store.open_cursor(resources::NODE, store.resource_version());
        let pod_watch = store.open_cursor(resources::POD, store.resource_version());
        for i in 0..LOG_RETAINED * 2 {
            let since = store.resource_version();
            let mut pod = (*store.get_shared(resources::POD, "ns", "p").unwrap()).clone();
            pod["metadata"]["labels"] = json!({"round": i.to_string()});
            store.update(resources::POD, "ns", pod).unwrap();
            store.pass_over(since, &[resources::POD]);
        }
        assert_eq!(store.log.len(), LOG_RETAINED * 2, "the pod watch has read none of them");
        store.advance_cursor(pod_watch, store.resource_version());
        assert_eq!(store.log.len(), LOG_RETAINED, "the node watch, passed over, holds nothing back");
        // A watch behind on its own kind is not moved: it is woken, and reads them itself.
        let since = store.resource_version();
        store.create(resources::NODE, "", json!({"metadata": {"name": "n1"}})).unwrap();
        store.pass_over(since, &[resources::NODE]);
        assert_eq!(store.cursors[&node_watch].1, since);
        assert_eq!(store.changes_since(since).unwrap().count(), 1);
    }

    #[test]
    fn only_owner_references_deletions_and_removals_concern_the_garbage_collector() {
        let mut store = store();
        let owner = store.create(resources::REPLICA_SET, "ns", json!({"metadata": {"name": "rs"}})).unwrap();
        let start = store.last_owner_change("ns");
        let pod = store.create(resources::POD, "ns", json!({"metadata": {"name": "p"}})).unwrap();
        assert_eq!(store.last_owner_change("ns"), start, "created with no owner");
        let mut labelled = (*pod).clone();
        labelled["metadata"]["labels"] = json!({"app": "web"});
        let labelled = store.update(resources::POD, "ns", labelled).unwrap();
        assert_eq!(store.last_owner_change("ns"), start, "a label");
        let mut owned = (*labelled).clone();
        owned["metadata"]["ownerReferences"] = json!([{"uid": owner["metadata"]["uid"], "controller": true}]);
        store.update(resources::POD, "ns", owned).unwrap();
        let adopted = store.resource_version();
        assert_eq!(store.last_owner_change("ns"), adopted, "an owner reference added");
        store.mark_deleted(resources::POD, "ns", "p", Some(30)).unwrap();
        assert_eq!(store.last_owner_change("ns"), store.resource_version(), "a deletion");
        let marked = store.resource_version();
        store.remove(resources::REPLICA_SET, "ns", "rs").unwrap();
        assert!(store.last_owner_change("ns") > marked, "a removal");
        store.create(resources::NODE, "", json!({"metadata": {"name": "n1"}})).unwrap();
        let before_node_removal = store.last_owner_change("ns");
        store.remove(resources::NODE, "", "n1").unwrap();
        assert!(store.last_owner_change("ns") > before_node_removal, "a cluster-scoped owner removed");
    }

    #[test]
    fn names_in_use_and_missing_namespaces_are_refused() {
        let mut store = store();
        store.create(resources::SERVICE, "ns", json!({"metadata": {"name": "web"}})).unwrap();
        let again = store.create(resources::SERVICE, "ns", json!({"metadata": {"name": "web"}})).unwrap_err();
        assert_eq!(again.message, "services \"web\" already exists");
        let elsewhere = store.create(resources::SERVICE, "other", json!({"metadata": {"name": "web"}})).unwrap_err();
        assert_eq!(elsewhere.code, 404);
    }

    #[test]
    fn a_spec_change_bumps_the_generation_and_a_status_change_does_not() {
        let mut store = store();
        let created = store
            .create(resources::DEPLOYMENT, "ns", json!({"metadata": {"name": "d"}, "spec": {"replicas": 1}}))
            .unwrap();
        let mut status = (*created).clone();
        status["status"] = json!({"replicas": 1});
        let status = store.update(resources::DEPLOYMENT, "ns", status).unwrap();
        assert_eq!(status["metadata"]["generation"], 1);
        let mut spec = (*status).clone();
        spec["spec"]["replicas"] = 2.into();
        assert_eq!(store.update(resources::DEPLOYMENT, "ns", spec).unwrap()["metadata"]["generation"], 2);
    }

    #[test]
    fn hashes_are_stable_and_differ_by_template() {
        let a = hash_of(&json!({"labels": {"app": "rng"}}));
        assert_eq!(a, hash_of(&json!({"labels": {"app": "rng"}})));
        assert_ne!(a, hash_of(&json!({"labels": {"app": "rng", "x": "y"}})));
        assert_eq!(a.len(), 10);
    }

    #[test]
    fn a_second_delete_may_only_shorten_the_grace_period() {
        let mut store = store();
        store.create(resources::POD, "ns", json!({"metadata": {"name": "p", "finalizers": ["x"]}})).unwrap();
        let first = store.mark_deleted(resources::POD, "ns", "p", Some(30)).unwrap();
        let deleted_at =
            |pod: &Value| pod["metadata"]["deletionTimestamp"].as_str().unwrap().parse::<Timestamp>().unwrap();
        let version = store.resource_version();
        // A longer or equal grace period changes nothing.
        store.mark_deleted(resources::POD, "ns", "p", Some(30)).unwrap();
        store.mark_deleted(resources::POD, "ns", "p", Some(60)).unwrap();
        assert_eq!(store.resource_version(), version);
        // A shorter one moves the deletionTimestamp back by the difference.
        let shortened = store.mark_deleted(resources::POD, "ns", "p", Some(0)).unwrap();
        assert_eq!(shortened["metadata"]["deletionGracePeriodSeconds"], 0);
        assert_eq!(deleted_at(&shortened).as_second(), deleted_at(&first).as_second() - 30);
        // None is shorter than none.
        let version = store.resource_version();
        store.mark_deleted(resources::POD, "ns", "p", Some(0)).unwrap();
        assert_eq!(store.resource_version(), version);
        // With no grace period left, the finalizer's removal removes the pod.
        let mut released = (*shortened).clone();
        released["metadata"]["finalizers"] = json!([]);
        store.update(resources::POD, "ns", released).unwrap();
        assert!(store.get(resources::POD, "ns", "p").is_none());
    }

    #[test]
    fn a_finalizer_removed_while_a_grace_period_runs_leaves_the_pod_to_its_kubelet() {
        let mut store = store();
        store.create(resources::POD, "ns", json!({"metadata": {"name": "p", "finalizers": ["x"]}})).unwrap();
        let deleted = store.mark_deleted(resources::POD, "ns", "p", Some(30)).unwrap();
        let mut released = (*deleted).clone();
        released["metadata"]["finalizers"] = json!([]);
        store.update(resources::POD, "ns", released).unwrap();
        assert!(store.get(resources::POD, "ns", "p").is_some());
        // A pod deleted with no grace period and no finalizer goes at once.
        store.create(resources::POD, "ns", json!({"metadata": {"name": "q"}})).unwrap();
        store.mark_deleted(resources::POD, "ns", "q", Some(0)).unwrap();
        assert!(store.get(resources::POD, "ns", "q").is_none());
    }
}
