//! A live, watch-fed view of one scenario's namespace (and the cluster's nodes). Expectations
//! re-evaluate against it after every change the API server reports, so a step completes the
//! moment the cluster satisfies it.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::admission::{self, Admissions};
use super::at_rest::Owed;
use super::namespace::OwnNamespace;
use super::pod::Pod;
use super::traffic::{self, Backend};
use crate::cluster::transport::{ApiHealth, NoReply, describe, no_answer};
use crate::model::Kind;
use crate::model::labels::Labels;

/// How long a step that timed out waits for the API server's version before calling it away.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The cluster's nodes, watched once per run and shared by every scenario's view: nodes are
/// cluster-wide, so one watch serves all namespaces.
#[derive(Clone)]
pub struct Nodes {
    store: Store<Node>,
    changes: watch::Receiver<u64>,
    freshness: Freshness,
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
        let freshness = Freshness::default();
        // Nodes are shared by every scenario's view, and the rest check does not read them.
        let watch =
            Watch { name: "nodes", bump, stable: Stable::default(), freshness: freshness.clone(), versions: None };
        let (store, drive) = reflect(Api::<Node>::all(client.clone()), Default::default(), watch, |_, _| {});
        let task = Arc::new(AbortOnDrop(tokio::spawn(drive).abort_handle()));
        let nodes = Nodes { store, changes, freshness, _task: task };
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
    /// Endpoints objects written by hand, which the mirroring controller turns into slices.
    pub endpoints: Store<Endpoints>,
    pub services: Store<Service>,
    pub replica_sets: Store<ReplicaSet>,
    pub deployments: Store<Deployment>,
    pub daemon_sets: Store<DaemonSet>,
    pub stateful_sets: Store<StatefulSet>,
    pub nodes: Store<Node>,
    departed: DepartedPods,
    newest: NewestVersions,
    changes: watch::Receiver<u64>,
    /// Taken to read while a check runs: no event is applied meanwhile.
    stable: Stable,
    /// The count of changes at which the view was last found at rest: until the next change it
    /// still is, and a step's second look costs nothing.
    found_at_rest: std::sync::Mutex<Option<u64>>,
    /// The resourceVersion through which a fresh list has shown the pods store complete, and
    /// the requests for such a list (see [`Owed::PodsUnconfirmed`]).
    pods_confirmed: Arc<AtomicU64>,
    confirm_pods: watch::Sender<u64>,
    /// The API's answers to dry-run creates of DaemonSets' pods, and the requests for one (see
    /// [`Owed::AdmissionUnjudged`]).
    daemon_pod_admissions: Admissions,
    judge_admission: watch::Sender<Option<Arc<DaemonSet>>>,
    /// Whether every watch (nodes included) is current, and the namespace still the scenario's.
    freshness: Freshness,
    node_freshness: Freshness,
    client: Client,
    health: ApiHealth,
    tasks: JoinSet<()>,
}

/// Keeps a check from seeing a store changed but its change not yet counted (events arrive on
/// other threads on a named cluster).
type Stable = Arc<std::sync::RwLock<()>>;

/// Why a wait ended without its condition holding.
#[derive(Debug)]
pub enum Unmet<N> {
    /// The condition did not hold by the deadline; the view was current, so this is a verdict.
    Pending(N),
    /// Nothing could be judged: the API server went away, a watch could not catch up, or the
    /// scenario's namespace is gone. Says which.
    Cluster(String),
}

/// Whether a view can be judged. A watch that failed is stale until it has listed everything
/// again (rehearse re-lists rather than resumes after a failure, so nothing missed while the API
/// was away can hide); a namespace deleted or replaced under the scenario is lost for good.
#[derive(Clone, Default)]
pub struct Freshness(Arc<std::sync::Mutex<FreshnessState>>);

#[derive(Default)]
struct FreshnessState {
    /// Watch name -> how it failed, while it has not listed again.
    stale: std::collections::BTreeMap<&'static str, String>,
    lost: Option<String>,
}

impl Freshness {
    fn state(&self) -> std::sync::MutexGuard<'_, FreshnessState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn mark_stale(&self, watch: &'static str, why: String) {
        self.state().stale.entry(watch).or_insert(why);
    }

    fn mark_current(&self, watch: &'static str) {
        self.state().stale.remove(watch);
    }

    fn mark_lost(&self, why: String) {
        self.state().lost.get_or_insert(why);
    }

    /// The first stale watch and how it failed.
    fn stale(&self) -> Option<String> {
        self.state().stale.iter().next().map(|(watch, why)| format!("the watch of {watch} failed ({why})"))
    }

    fn lost(&self) -> Option<String> {
        self.state().lost.clone()
    }
}

/// One watch's name, the counter it bumps after each change, and where it says it failed.
struct Watch {
    name: &'static str,
    bump: watch::Sender<u64>,
    /// Held while an event is applied and counted, so that a check sees the stores and the
    /// counter as of one moment.
    stable: Stable,
    freshness: Freshness,
    /// Where the watch notes the versions its events carry (for the kinds steps write).
    versions: Option<(NewestVersions, Watched)>,
}

/// What the view watches in the namespace that a step may write: the kinds steps name, and the
/// EndpointSlices or Endpoints an `apply` may make by hand (for a selectorless Service).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Watched {
    Kind(Kind),
    EndpointSlice,
    Endpoints,
}

impl Watched {
    const COUNT: usize = Kind::ALL.len() + 2;

    fn slot(self) -> usize {
        match self {
            Watched::Kind(kind) => Kind::ALL.iter().position(|k| *k == kind).unwrap_or(0),
            Watched::EndpointSlice => Kind::ALL.len(),
            Watched::Endpoints => Kind::ALL.len() + 1,
        }
    }
}

impl From<Kind> for Watched {
    fn from(kind: Kind) -> Watched {
        Watched::Kind(kind)
    }
}

impl std::fmt::Display for Watched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Watched::Kind(kind) => std::fmt::Display::fmt(kind, f),
            Watched::EndpointSlice => f.write_str("endpointslice"),
            Watched::Endpoints => f.write_str("endpoints"),
        }
    }
}

/// Per watched kind, the newest resourceVersion any of its events carried. Versions are one
/// ordered counter per cluster and a watch delivers its events in that order, so once a kind's
/// watch has shown version `v`, it has shown every write to that kind up to `v`: even one whose
/// object was deleted again before the store could be looked at.
#[derive(Clone, Default)]
struct NewestVersions(Arc<[std::sync::atomic::AtomicU64; Watched::COUNT]>);

impl NewestVersions {
    fn slot(&self, kind: Watched) -> &std::sync::atomic::AtomicU64 {
        &self.0[kind.slot()]
    }

    fn get(&self, kind: Watched) -> u64 {
        self.slot(kind).load(std::sync::atomic::Ordering::Acquire)
    }

    /// Called once the store has applied an event, never before: a step that finds its write's
    /// version here must find the write in the store too.
    fn note<K: Resource>(&self, kind: Watched, event: &watcher::Event<K>) {
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

/// A store fed by a watch, and the future that drives it (bumping the watch's counter after each
/// change). `before` sees every event before the store applies it, with the store as it still is.
///
/// When the watch fails (the API server went away, or answered an error), the view is marked
/// stale and the watch starts over with a full list once the API answers again: a resumed watch
/// would be current too, but a fresh list is the one way to know it, since a quiet namespace sends
/// nothing that would say so.
fn reflect<K>(
    api: Api<K>,
    config: watcher::Config,
    watch: Watch,
    mut before: impl FnMut(&watcher::Event<K>, &Store<K>) + Send + 'static,
) -> (Store<K>, impl Future<Output = ()> + Send + 'static)
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let (reader, mut writer) = reflector::store::<K>();
    let store = reader.clone();
    let drive = async move {
        let mut pause = std::time::Duration::from_millis(100);
        loop {
            let mut stream = std::pin::pin!(watcher(api.clone(), config.clone()));
            while let Some(event) = stream.next().await {
                match event {
                    Ok(event) => {
                        let _applying = watch.stable.write().unwrap_or_else(|e| e.into_inner());
                        if matches!(event, watcher::Event::InitDone) {
                            watch.freshness.mark_current(watch.name);
                            pause = std::time::Duration::from_millis(100);
                        }
                        before(&event, &store);
                        writer.apply_watcher_event(&event);
                        if let Some((newest, kind)) = &watch.versions {
                            newest.note(*kind, &event);
                        }
                        watch.bump.send_modify(|n| *n += 1);
                    }
                    Err(error) => {
                        watch.freshness.mark_stale(watch.name, describe(&error));
                        watch.bump.send_modify(|n| *n += 1);
                        break;
                    }
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(std::time::Duration::from_secs(2));
        }
    };
    (reader, drive)
}

fn feed<K>(api: Api<K>, kind: Kind, newest: &NewestVersions, watch: Watch, tasks: &mut JoinSet<()>) -> Store<K>
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let watch = Watch { versions: Some((newest.clone(), kind.into())), ..watch };
    let (store, drive) = reflect(api, Default::default(), watch, |_, _| {});
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

/// Answers each request to confirm that the pods store holds every pod change through a
/// resourceVersion: lists the pods afresh (a consistent read, at the API's latest version) and,
/// when the store holds exactly the listed pods at their listed versions, records the list's
/// version as seen through. Otherwise the watch has changes still to deliver, and a later check,
/// woken by them, asks again.
async fn confirm_pods_listed(
    api: Api<Pod>,
    pods: Store<Pod>,
    mut requests: watch::Receiver<u64>,
    confirmed: Arc<AtomicU64>,
    watch: Watch,
) {
    while requests.changed().await.is_ok() {
        let wanted = *requests.borrow_and_update();
        if confirmed.load(Ordering::Acquire) >= wanted {
            continue;
        }
        // A failed list says nothing; the watches report the API's health.
        let Ok(list) = api.list(&Default::default()).await else { continue };
        let Some(listed_at) = list.metadata.resource_version.as_deref().and_then(|v| v.parse::<u64>().ok()) else {
            continue;
        };
        let versions = |items: &mut dyn Iterator<Item = &Pod>| {
            let mut versions: Vec<(Option<String>, Option<String>)> =
                items.map(|p| (p.metadata.uid.clone(), p.metadata.resource_version.clone())).collect();
            versions.sort_unstable();
            versions
        };
        let _applying = watch.stable.write().unwrap_or_else(|e| e.into_inner());
        let held = pods.state();
        if versions(&mut list.items.iter()) == versions(&mut held.iter().map(|p| &**p)) {
            confirmed.fetch_max(listed_at, Ordering::AcqRel);
            watch.bump.send_modify(|n| *n += 1);
        }
    }
}

impl View {
    /// Starts the namespace's watches and returns once every store has its initial list.
    pub async fn start(
        client: &Client,
        namespace: &OwnNamespace,
        nodes: &Nodes,
        health: &ApiHealth,
    ) -> Result<View, kube::Error> {
        let (bump, changes) = watch::channel(0);
        let freshness = Freshness::default();
        let stable = Stable::default();
        let watch = |name| Watch {
            name,
            bump: bump.clone(),
            stable: stable.clone(),
            freshness: freshness.clone(),
            versions: None,
        };
        let mut tasks = JoinSet::new();
        // A node change wakes this view's expectations like a change in its own namespace.
        let mut node_changes = nodes.changes.clone();
        let node_bump = bump.clone();
        tasks.spawn(async move {
            while node_changes.changed().await.is_ok() {
                node_bump.send_modify(|n| *n += 1);
            }
        });
        // The namespace itself: deleted, or replaced by another of the same name, ends the
        // scenario (whatever it would write next would land in someone else's namespace).
        let own = namespace.clone();
        let lost = freshness.clone();
        let mut listed_it = false;
        let (_, drive_namespace) = reflect(
            Api::<Namespace>::all(client.clone()),
            watcher::Config::default().fields(&format!("metadata.name={}", namespace.name)),
            watch("the namespace"),
            move |event: &watcher::Event<Namespace>, _: &Store<Namespace>| {
                // A re-list that no longer shows it: deleted while the watch was away.
                match event {
                    watcher::Event::Init => listed_it = false,
                    watcher::Event::InitApply(_) => listed_it = true,
                    watcher::Event::InitDone if !listed_it => lost.mark_lost(format!(
                        "namespace {} was deleted by someone else: the scenario cannot go on",
                        own.name
                    )),
                    _ => {}
                }
                if let Some(why) = namespace_swap(&own, event) {
                    lost.mark_lost(why);
                }
            },
        );
        tasks.spawn(drive_namespace);
        let namespace = namespace.name.as_str();
        let departed = DepartedPods::default();
        let newest = NewestVersions::default();
        let mut record_departed = departed.record();
        let (pods, drive_pods) = reflect(
            Api::namespaced(client.clone(), namespace),
            Default::default(),
            Watch { versions: Some((newest.clone(), Kind::Pod.into())), ..watch("pods") },
            move |event, store| record_departed(event, store),
        );
        tasks.spawn(drive_pods);
        let pods_confirmed = Arc::new(AtomicU64::new(0));
        let (confirm_pods, requests) = watch::channel(0);
        tasks.spawn(confirm_pods_listed(
            Api::namespaced(client.clone(), namespace),
            pods.clone(),
            requests,
            pods_confirmed.clone(),
            watch("the pods list"),
        ));
        let daemon_pod_admissions = Admissions::default();
        let (judge_admission, requests) = watch::channel(None);
        let held = daemon_pod_admissions.clone();
        let answers = watch("the admission of daemon pods");
        tasks.spawn(admission::answer_requests(
            Api::namespaced(client.clone(), namespace),
            requests,
            daemon_pod_admissions.clone(),
            move |change| {
                let _applying = answers.stable.write().unwrap_or_else(|e| e.into_inner());
                change(&mut held.lock().unwrap_or_else(|e| e.into_inner()));
                answers.bump.send_modify(|n| *n += 1);
            },
        ));
        let (slices, drive_slices) = reflect(
            Api::namespaced(client.clone(), namespace),
            Default::default(),
            Watch { versions: Some((newest.clone(), Watched::EndpointSlice)), ..watch("endpointslices") },
            |_, _| {},
        );
        tasks.spawn(drive_slices);
        let (endpoints, drive_endpoints) = reflect(
            Api::namespaced(client.clone(), namespace),
            Default::default(),
            Watch { versions: Some((newest.clone(), Watched::Endpoints)), ..watch("endpoints") },
            |_, _| {},
        );
        tasks.spawn(drive_endpoints);
        let view = View {
            pods,
            slices,
            endpoints,
            services: feed(
                Api::namespaced(client.clone(), namespace),
                Kind::Service,
                &newest,
                watch("services"),
                &mut tasks,
            ),
            replica_sets: feed(
                Api::namespaced(client.clone(), namespace),
                Kind::ReplicaSet,
                &newest,
                watch("replicasets"),
                &mut tasks,
            ),
            deployments: feed(
                Api::namespaced(client.clone(), namespace),
                Kind::Deployment,
                &newest,
                watch("deployments"),
                &mut tasks,
            ),
            daemon_sets: feed(
                Api::namespaced(client.clone(), namespace),
                Kind::DaemonSet,
                &newest,
                watch("daemonsets"),
                &mut tasks,
            ),
            stateful_sets: feed(
                Api::namespaced(client.clone(), namespace),
                Kind::StatefulSet,
                &newest,
                watch("statefulsets"),
                &mut tasks,
            ),
            nodes: nodes.store.clone(),
            departed,
            newest,
            changes,
            stable,
            found_at_rest: std::sync::Mutex::new(None),
            pods_confirmed,
            confirm_pods,
            daemon_pod_admissions,
            judge_admission,
            freshness,
            node_freshness: nodes.freshness.clone(),
            client: client.clone(),
            health: health.clone(),
            tasks,
        };
        let ready = async {
            let _ = view.pods.wait_until_ready().await;
            let _ = view.slices.wait_until_ready().await;
            let _ = view.endpoints.wait_until_ready().await;
            let _ = view.services.wait_until_ready().await;
            let _ = view.replica_sets.wait_until_ready().await;
            let _ = view.deployments.wait_until_ready().await;
            let _ = view.daemon_sets.wait_until_ready().await;
            let _ = view.stateful_sets.wait_until_ready().await;
        };
        if tokio::time::timeout(std::time::Duration::from_secs(30), ready).await.is_err() {
            // Most likely the API refused the watches; say so with the API's own words.
            Api::<Pod>::namespaced(client.clone(), namespace).list(&Default::default()).await?;
        }
        Ok(view)
    }

    /// Why nothing may be judged now: a watch that has not listed again since it failed, or the
    /// scenario's namespace gone.
    pub fn not_current(&self) -> Option<String> {
        if let Some(lost) = self.freshness.lost() {
            return Some(lost);
        }
        let stale = self.freshness.stale().or_else(|| self.node_freshness.stale())?;
        Some(format!("the API server went away and the view has not caught up: {stale}; nothing was judged on it"))
    }

    /// The scenario's namespace was deleted or replaced: nothing more may be written.
    pub fn namespace_lost(&self) -> Option<String> {
        self.freshness.lost()
    }

    /// Whether a request to the API server failed (and may have been retried) since `since`.
    pub fn api_failed_since(&self, since: tokio::time::Instant) -> bool {
        self.health.outage_since(since).is_some()
    }

    /// Whether the API server answers now (a read of its version, at most 5 s), and how it failed
    /// during the wait that began at `since` if it has not answered since.
    async fn unreachable_since(&self, since: tokio::time::Instant) -> Option<String> {
        if let Some(outage) = self.health.outage_since(since).filter(|o| !o.recovered) {
            return Some(format!("the API server went away during the step: {}", outage.what));
        }
        match tokio::time::timeout(PROBE_TIMEOUT, self.client.apiserver_version()).await {
            Ok(Ok(_)) => None,
            Ok(Err(error)) => Some(no_answer(&error)),
            Err(_) => Some(NoReply(PROBE_TIMEOUT).to_string()),
        }
    }

    /// Evaluates `check` now and after every change the watches report, until it gives `Some`
    /// while the view is current, or the deadline passes. At the deadline the last `Err` is a
    /// verdict ([`Unmet::Pending`]) only if the view is current and the API server answers;
    /// otherwise it is [`Unmet::Cluster`], naming the outage.
    pub async fn wait_for<T, N>(
        &self,
        deadline: tokio::time::Instant,
        mut check: impl FnMut(&View) -> Result<T, N>,
    ) -> Result<T, Unmet<N>> {
        let started = tokio::time::Instant::now();
        let mut changes = self.changes.clone();
        let mut pending = None;
        loop {
            changes.borrow_and_update();
            if let Some(lost) = self.namespace_lost() {
                return Err(Unmet::Cluster(lost));
            }
            let verdict = {
                let _stable = self.stable.read().unwrap_or_else(|e| e.into_inner());
                check(self)
            };
            match verdict {
                Ok(done) if self.not_current().is_none() => return Ok(done),
                Ok(_) => {}
                Err(not_yet) => pending = Some(not_yet),
            }
            if tokio::time::timeout_at(deadline, changes.changed()).await.is_err() {
                if let Some(why) = self.not_current() {
                    return Err(Unmet::Cluster(why));
                }
                if let Some(why) = self.unreachable_since(started).await {
                    return Err(Unmet::Cluster(why));
                }
                return match pending {
                    Some(pending) => Err(Unmet::Pending(pending)),
                    None => {
                        let _stable = self.stable.read().unwrap_or_else(|e| e.into_inner());
                        check(self).map_err(Unmet::Pending)
                    }
                };
            }
        }
    }

    /// Whether the view has seen a write that the API stored as `version` of `kind`/`name`:
    /// the object itself at that version or later, or (numeric versions) any later event of
    /// its kind, which covers an object deleted again before anyone looked.
    pub fn has_seen(&self, kind: Watched, name: &str, version: &str) -> bool {
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
    pub fn resource_version(&self, kind: Watched, name: &str) -> Option<String> {
        fn find<K: Resource>(items: Vec<Arc<K>>, name: &str) -> Option<String> {
            items
                .iter()
                .find(|o| o.meta().name.as_deref() == Some(name))
                .and_then(|o| o.meta().resource_version.clone())
        }
        match kind {
            Watched::Kind(Kind::Pod) => find(self.pods.state(), name),
            Watched::Kind(Kind::Deployment) => find(self.deployments.state(), name),
            Watched::Kind(Kind::ReplicaSet) => find(self.replica_sets.state(), name),
            Watched::Kind(Kind::DaemonSet) => find(self.daemon_sets.state(), name),
            Watched::Kind(Kind::StatefulSet) => find(self.stateful_sets.state(), name),
            Watched::Kind(Kind::Service) => find(self.services.state(), name),
            Watched::EndpointSlice => find(self.slices.state(), name),
            Watched::Endpoints => find(self.endpoints.state(), name),
        }
    }

    /// The first reaction the control plane still owes to what the view shows, or `None` once
    /// it is at rest (see [`super::at_rest`]). For the checks of [`View::wait_for`], which see the
    /// stores and their count of changes as of one moment.
    pub fn unfinished(&self) -> Option<String> {
        let changes = *self.changes.borrow();
        let mut found_at_rest = self.found_at_rest.lock().unwrap_or_else(|e| e.into_inner());
        if *found_at_rest == Some(changes) {
            return None;
        }
        let pods_seen_through = self.newest.get(Kind::Pod.into()).max(self.pods_confirmed.load(Ordering::Acquire));
        let owed = super::at_rest::unfinished(&super::at_rest::Objects {
            pods: self.pods.state(),
            replica_sets: self.replica_sets.state(),
            deployments: self.deployments.state(),
            daemon_sets: self.daemon_sets.state(),
            stateful_sets: self.stateful_sets.state(),
            services: self.services.state(),
            slices: self.slices.state(),
            endpoints: self.endpoints.state(),
            nodes: self.nodes.state(),
            pods_seen_through,
            daemon_pod_admissions: self.daemon_pod_admissions.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        });
        match &owed {
            Some(Owed::PodsUnconfirmed { through, .. }) => {
                self.confirm_pods.send_replace(*through);
            }
            Some(Owed::AdmissionUnjudged { uid, .. }) => {
                let ds = self.daemon_sets.state().into_iter().find(|d| d.metadata.uid.as_deref() == Some(uid));
                self.judge_admission.send_replace(ds);
            }
            _ => {}
        }
        *found_at_rest = owed.is_none().then_some(changes);
        owed.map(Owed::into_message)
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

    /// The newest resourceVersion of an EndpointSlice event the view has applied: it has seen
    /// every slice change up to it.
    pub fn slices_seen_through(&self) -> u64 {
        self.newest.get(Watched::EndpointSlice)
    }

    /// The newest resourceVersion the view has applied, of any kind it watches in the namespace.
    pub fn newest_version(&self) -> u64 {
        self.newest.0.iter().map(|slot| slot.load(std::sync::atomic::Ordering::Acquire)).max().unwrap_or(0)
    }

    /// The endpoints kube-proxy sends the service's traffic to (see [`super::traffic`]).
    pub fn routed(&self, service: &str) -> Vec<Backend> {
        let slices = self.slices.state();
        traffic::routed(slices.iter().filter(|s| traffic::belongs_to(s, service)).map(|s| &**s))
    }

    /// The endpoints of the service's slices that the EndpointSlice controller manages, routed
    /// as kube-proxy would route them were they all: what the controller owes its selector.
    pub fn routed_by_controller(&self, service: &str) -> Vec<Backend> {
        let slices = self.slices.state();
        let managed = slices.iter().filter(|s| traffic::belongs_to(s, service) && traffic::managed_by_controller(s));
        traffic::routed(managed.map(|s| &**s))
    }

    /// The pod behind each endpoint, as the view last saw it: live, terminating, or gone. One
    /// pass over the pods however many endpoints there are (a service of 2,000 pods is judged
    /// after every change while it scales).
    pub fn pods_behind(&self, backends: &[Backend]) -> Vec<Option<Behind>> {
        let pods = self.pods.state();
        // Endpoints name their pod by uid (by name only when the uid is missing): each index is
        // built only when some endpoint needs it.
        let index = |key: fn(&Pod) -> Option<&str>, needed: bool| {
            let mut index: HashMap<&str, &Arc<Pod>, foldhash::fast::RandomState> = HashMap::default();
            if needed {
                for pod in &pods {
                    if let Some(key) = key(pod) {
                        index.entry(key).or_insert(pod);
                    }
                }
            }
            index
        };
        let by_uid = index(|p| p.metadata.uid.as_deref(), backends.iter().any(|b| b.pod_uid.is_some()));
        let by_name =
            index(|p| p.metadata.name.as_deref(), backends.iter().any(|b| b.names_pod && b.pod_uid.is_none()));
        backends
            .iter()
            .map(|backend| {
                if !backend.names_pod {
                    return None;
                }
                let present = match &backend.pod_uid {
                    Some(uid) => by_uid.get(uid.as_str()),
                    None => by_name.get(backend.pod_name.as_str()),
                };
                if let Some(pod) = present {
                    return Some(Behind { pod: Arc::clone(pod), gone: false });
                }
                let departed = match &backend.pod_uid {
                    Some(uid) => self.departed.get(uid),
                    None => self.departed.find_by_name(&backend.pod_name),
                };
                departed.map(|pod| Behind { pod, gone: true })
            })
            .collect()
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

/// Why a namespace event means the scenario's namespace is no longer its own, if it does.
fn namespace_swap(own: &OwnNamespace, event: &watcher::Event<Namespace>) -> Option<String> {
    match event {
        watcher::Event::Apply(namespace) | watcher::Event::InitApply(namespace) => {
            let uid = namespace.metadata.uid.as_deref().unwrap_or_default();
            if uid != own.uid {
                Some(format!(
                    "namespace {} was deleted and made again by someone else (uid {uid}, not {}): \
                     rehearse stopped rather than write into a namespace it did not make",
                    own.name, own.uid
                ))
            } else if namespace.metadata.deletion_timestamp.is_some() {
                Some(format!("namespace {} is being deleted by someone else: the scenario cannot go on", own.name))
            } else {
                None
            }
        }
        watcher::Event::Delete(_) => {
            Some(format!("namespace {} was deleted by someone else: the scenario cannot go on", own.name))
        }
        watcher::Event::Init | watcher::Event::InitDone => None,
    }
}

impl Drop for View {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

/// Whether a LabelSelector (matchLabels and matchExpressions) selects these labels.
pub fn selects(selector: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector, labels: &Labels) -> bool {
    let by_labels = selector.match_labels.iter().flatten().all(|(key, value)| labels.get(key) == Some(value));
    let by_expressions = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        let value = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    by_labels && by_expressions
}

/// Whether a Service's selector (exact labels, every one required) selects these labels.
pub fn service_selects(selector: &std::collections::BTreeMap<String, String>, labels: &Labels) -> bool {
    selector.iter().all(|(key, value)| labels.get(key) == Some(value))
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
    controller_ref(meta).map(|o| (o.kind.clone(), o.name.clone(), o.uid.clone()))
}

/// The owner reference of an object's controller, borrowed.
pub fn controller_ref(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference> {
    meta.owner_references.as_ref()?.iter().find(|o| o.controller == Some(true))
}
