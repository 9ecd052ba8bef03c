//! A live, watch-fed view of one scenario's namespace (and the cluster's nodes). Expectations
//! re-evaluate against it after every change the API server reports, so a step completes the
//! moment the cluster satisfies it.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::traffic::{self, Backend};
use crate::model::Kind;
use crate::model::labels::Labels;

/// The cluster's nodes, watched once per run and shared by every scenario's view: nodes are
/// cluster-wide, so one watch serves all namespaces.
#[derive(Clone)]
pub struct Nodes {
    store: Store<Node>,
    changes: watch::Receiver<u64>,
    _task: Arc<AbortOnDrop>,
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Nodes {
    /// Starts the node watch and returns once it holds the initial list.
    pub async fn start(client: &Client) -> Result<Nodes, kube::Error> {
        let (bump, changes) = watch::channel(0);
        let (store, drive) = reflect(Api::<Node>::all(client.clone()), bump, |_, _| {});
        let task = Arc::new(AbortOnDrop(tokio::spawn(drive).abort_handle()));
        let nodes = Nodes { store, changes, _task: task };
        if tokio::time::timeout(std::time::Duration::from_secs(30), nodes.store.wait_until_ready()).await.is_err() {
            Api::<Node>::all(client.clone()).list(&Default::default()).await?;
        }
        Ok(nodes)
    }
}

/// Stores for every kind the steps look at, and a counter bumped after each change.
pub struct View {
    pub pods: Store<Pod>,
    pub slices: Store<EndpointSlice>,
    pub services: Store<Service>,
    pub replica_sets: Store<ReplicaSet>,
    pub deployments: Store<Deployment>,
    pub daemon_sets: Store<DaemonSet>,
    pub nodes: Store<Node>,
    departed: DepartedPods,
    newest: NewestVersions,
    changes: watch::Receiver<u64>,
    tasks: JoinSet<()>,
}

/// Per watched kind, the newest resourceVersion any of its events carried. Versions are one
/// ordered counter per cluster and a watch delivers its events in that order, so once a kind's
/// watch has shown version `v`, it has shown every write to that kind up to `v`: even one whose
/// object was deleted again before the store could be looked at.
#[derive(Clone, Default)]
struct NewestVersions(Arc<[std::sync::atomic::AtomicU64; Kind::ALL.len()]>);

impl NewestVersions {
    fn slot(&self, kind: Kind) -> &std::sync::atomic::AtomicU64 {
        &self.0[Kind::ALL.iter().position(|k| *k == kind).unwrap_or(0)]
    }

    fn get(&self, kind: Kind) -> u64 {
        self.slot(kind).load(std::sync::atomic::Ordering::Acquire)
    }

    /// Called before the store applies an event (so a waiter woken after it sees both).
    fn note<K: Resource>(&self, kind: Kind, event: &watcher::Event<K>) {
        let version = match event {
            watcher::Event::Apply(o) | watcher::Event::Delete(o) | watcher::Event::InitApply(o) => {
                o.meta().resource_version.as_deref().and_then(|v| v.parse::<u64>().ok())
            }
            watcher::Event::Init | watcher::Event::InitDone => None,
        };
        if let Some(version) = version {
            self.slot(kind).fetch_max(version, std::sync::atomic::Ordering::AcqRel);
        }
    }
}

/// A store fed by a watch, and the future that drives it (bumping `bump` after each change).
/// `before` sees every event before the store applies it, with the store as it still is.
fn reflect<K>(
    api: Api<K>,
    bump: watch::Sender<u64>,
    mut before: impl FnMut(&watcher::Event<K>, &Store<K>) + Send + 'static,
) -> (Store<K>, impl Future<Output = ()> + Send + 'static)
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let (reader, mut writer) = reflector::store::<K>();
    let store = reader.clone();
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    let drive = async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            if let Ok(event) = event {
                before(&event, &store);
                writer.apply_watcher_event(&event);
                bump.send_modify(|n| *n += 1);
            }
        }
    };
    (reader, drive)
}

fn feed<K>(
    api: Api<K>,
    kind: Kind,
    newest: &NewestVersions,
    bump: watch::Sender<u64>,
    tasks: &mut JoinSet<()>,
) -> Store<K>
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let newest = newest.clone();
    let (store, drive) = reflect(api, bump, move |event, _| newest.note(kind, event));
    tasks.spawn(drive);
    store
}

/// The pod behind an endpoint; `gone` when it no longer exists (the endpoint is stale).
pub struct Behind {
    pub pod: Arc<Pod>,
    pub gone: bool,
}

/// Pods that left the namespace, by uid, as last seen: a stale EndpointSlice can still route to
/// them, and results name them by role like any other pod.
#[derive(Clone, Default)]
pub struct DepartedPods(Arc<std::sync::Mutex<HashMap<String, Arc<Pod>>>>);

impl DepartedPods {
    fn get(&self, uid: &str) -> Option<Arc<Pod>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).get(uid).cloned()
    }

    fn find_by_name(&self, name: &str) -> Option<Arc<Pod>> {
        let departed = self.0.lock().unwrap_or_else(|e| e.into_inner());
        departed.values().find(|p| p.metadata.name.as_deref() == Some(name)).cloned()
    }

    /// Remembers deleted pods, and pods that a re-list no longer shows (their delete event was
    /// missed while the watch reconnected), before the store forgets them.
    fn record(&self) -> impl FnMut(&watcher::Event<Pod>, &Store<Pod>) + Send + 'static {
        let departed = self.clone();
        let mut relisted: Option<std::collections::HashSet<String>> = None;
        move |event, store| {
            let mut remember = |pod: Arc<Pod>| {
                if let Some(uid) = pod.metadata.uid.clone() {
                    departed.0.lock().unwrap_or_else(|e| e.into_inner()).insert(uid, pod);
                }
            };
            match event {
                watcher::Event::Delete(pod) => remember(Arc::new(pod.clone())),
                watcher::Event::Init => relisted = Some(Default::default()),
                watcher::Event::InitApply(pod) => {
                    if let (Some(seen), Some(uid)) = (relisted.as_mut(), pod.metadata.uid.clone()) {
                        seen.insert(uid);
                    }
                }
                watcher::Event::InitDone => {
                    let seen = relisted.take().unwrap_or_default();
                    store
                        .state()
                        .into_iter()
                        .filter(|p| p.metadata.uid.as_ref().is_some_and(|uid| !seen.contains(uid)))
                        .for_each(&mut remember);
                }
                watcher::Event::Apply(_) => {}
            }
        }
    }
}

impl View {
    /// Starts the namespace's watches and returns once every store has its initial list.
    pub async fn start(client: &Client, namespace: &str, nodes: &Nodes) -> Result<View, kube::Error> {
        let (bump, changes) = watch::channel(0);
        let mut tasks = JoinSet::new();
        // A node change wakes this view's expectations like a change in its own namespace.
        let mut node_changes = nodes.changes.clone();
        let node_bump = bump.clone();
        tasks.spawn(async move {
            while node_changes.changed().await.is_ok() {
                node_bump.send_modify(|n| *n += 1);
            }
        });
        let departed = DepartedPods::default();
        let newest = NewestVersions::default();
        let mut record_departed = departed.record();
        let newest_pods = newest.clone();
        let (pods, drive_pods) =
            reflect(Api::namespaced(client.clone(), namespace), bump.clone(), move |event, store| {
                newest_pods.note(Kind::Pod, event);
                record_departed(event, store);
            });
        tasks.spawn(drive_pods);
        // EndpointSlices are not a kind steps write, so they need no version bookkeeping.
        let (slices, drive_slices) = reflect(Api::namespaced(client.clone(), namespace), bump.clone(), |_, _| {});
        tasks.spawn(drive_slices);
        let view = View {
            pods,
            slices,
            services: feed(
                Api::namespaced(client.clone(), namespace),
                Kind::Service,
                &newest,
                bump.clone(),
                &mut tasks,
            ),
            replica_sets: feed(
                Api::namespaced(client.clone(), namespace),
                Kind::ReplicaSet,
                &newest,
                bump.clone(),
                &mut tasks,
            ),
            deployments: feed(
                Api::namespaced(client.clone(), namespace),
                Kind::Deployment,
                &newest,
                bump.clone(),
                &mut tasks,
            ),
            daemon_sets: feed(
                Api::namespaced(client.clone(), namespace),
                Kind::DaemonSet,
                &newest,
                bump.clone(),
                &mut tasks,
            ),
            nodes: nodes.store.clone(),
            departed,
            newest,
            changes,
            tasks,
        };
        let ready = async {
            let _ = view.pods.wait_until_ready().await;
            let _ = view.slices.wait_until_ready().await;
            let _ = view.services.wait_until_ready().await;
            let _ = view.replica_sets.wait_until_ready().await;
            let _ = view.deployments.wait_until_ready().await;
            let _ = view.daemon_sets.wait_until_ready().await;
        };
        if tokio::time::timeout(std::time::Duration::from_secs(30), ready).await.is_err() {
            // Most likely the API refused the watches; say so with the API's own words.
            Api::<Pod>::namespaced(client.clone(), namespace).list(&Default::default()).await?;
        }
        Ok(view)
    }

    /// Evaluates `check` now and after every change the watches report, until it gives `Some`
    /// or the deadline passes (`Err` with the last `None`-time evaluation's note).
    pub async fn wait_for<T, N>(
        &self,
        deadline: tokio::time::Instant,
        mut check: impl FnMut(&View) -> Result<T, N>,
    ) -> Result<T, N> {
        let mut changes = self.changes.clone();
        loop {
            changes.borrow_and_update();
            let pending = match check(self) {
                Ok(done) => return Ok(done),
                Err(pending) => pending,
            };
            if tokio::time::timeout_at(deadline, changes.changed()).await.is_err() {
                return Err(pending);
            }
        }
    }

    /// Whether the view has seen a write that the API stored as `version` of `kind`/`name`:
    /// the object itself at that version or later, or (numeric versions) any later event of
    /// its kind, which covers an object deleted again before anyone looked.
    pub fn has_seen(&self, kind: Kind, name: &str, version: &str) -> bool {
        if let Ok(wanted) = version.parse::<u64>()
            && self.newest.get(kind) >= wanted
        {
            return true;
        }
        self.resource_version(kind, name).is_some_and(|seen| match (seen.parse::<u64>(), version.parse::<u64>()) {
            (Ok(seen), Ok(wanted)) => seen >= wanted,
            _ => seen == version,
        })
    }

    /// The resourceVersion the view holds for an object, if it holds the object.
    pub fn resource_version(&self, kind: Kind, name: &str) -> Option<String> {
        fn find<K: Resource>(items: Vec<Arc<K>>, name: &str) -> Option<String> {
            items
                .iter()
                .find(|o| o.meta().name.as_deref() == Some(name))
                .and_then(|o| o.meta().resource_version.clone())
        }
        match kind {
            Kind::Pod => find(self.pods.state(), name),
            Kind::Deployment => find(self.deployments.state(), name),
            Kind::ReplicaSet => find(self.replica_sets.state(), name),
            Kind::DaemonSet => find(self.daemon_sets.state(), name),
            Kind::Service => find(self.services.state(), name),
        }
    }

    /// Live pods (not being deleted), sorted by name.
    pub fn live_pods(&self) -> Vec<Arc<Pod>> {
        let mut pods: Vec<Arc<Pod>> =
            self.pods.state().into_iter().filter(|p| p.metadata.deletion_timestamp.is_none()).collect();
        pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        pods
    }

    pub fn service(&self, name: &str) -> Option<Arc<Service>> {
        self.services.state().into_iter().find(|s| s.metadata.name.as_deref() == Some(name))
    }

    /// The endpoints kube-proxy sends the service's traffic to (see [`super::traffic`]).
    pub fn routed(&self, service: &str) -> Vec<Backend> {
        let slices = self.slices.state();
        traffic::routed(slices.iter().filter(|s| traffic::belongs_to(s, service)).map(|s| &**s))
    }

    /// The pod behind an endpoint, as the view last saw it: live, terminating, or gone.
    pub fn pod_behind(&self, backend: &Backend) -> Option<Behind> {
        let pods = self.pods.state();
        let present = pods.iter().find(|p| match &backend.pod_uid {
            Some(uid) => p.metadata.uid.as_ref() == Some(uid),
            None => p.metadata.name.as_deref() == Some(&backend.pod_name),
        });
        if let Some(pod) = present {
            return Some(Behind { pod: pod.clone(), gone: false });
        }
        let departed = match &backend.pod_uid {
            Some(uid) => self.departed.get(uid),
            None => self.departed.find_by_name(&backend.pod_name),
        };
        departed.map(|pod| Behind { pod, gone: true })
    }

    /// Nodes a DaemonSet pod without tolerations lands on: no NoSchedule/NoExecute taint, schedulable.
    pub fn schedulable_nodes(&self) -> Vec<String> {
        let mut nodes: Vec<String> = self
            .nodes
            .state()
            .iter()
            .filter(|n| {
                let spec = n.spec.clone().unwrap_or_default();
                !spec.unschedulable.unwrap_or(false)
                    && spec
                        .taints
                        .unwrap_or_default()
                        .iter()
                        .all(|t| t.effect != "NoSchedule" && t.effect != "NoExecute")
            })
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        nodes.sort();
        nodes
    }
}

impl Drop for View {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

pub fn labels_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Labels {
    meta.labels.clone().unwrap_or_default()
}

pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The controller owning an object, as (kind, name, uid).
pub fn controller_of(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Option<(String, String, String)> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true))
        .map(|o| (o.kind.clone(), o.name.clone(), o.uid.clone()))
}
