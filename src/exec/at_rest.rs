//! Whether the control plane has finished reacting to what it has seen: the point at which a
//! step may be judged, or the next one start.
//!
//! A write sets off reactions: a Deployment scaled has its ReplicaSet scaled, which makes pods,
//! which the EndpointSlice controller lists. On a real cluster each reaction takes a moment, and a
//! state between them (the Deployment scaled, its pods not yet made) is there for a moment only:
//! an expectation that held then, or a write made then, would make the verdict depend on timing.
//! The built-in cluster runs its controllers to the end of their reactions within each write, so
//! no such state is ever seen there. The executor waits, on every cluster, until what the view
//! shows is such a state of rest before it judges or writes, so that both see the same states.
//!
//! Rest is read from the objects alone, by the controllers' own published bookkeeping: each
//! workload's status has caught up with its generation, each ReplicaSet has the pods it wants and
//! counts the pods it has and the ready ones, each Deployment has a ReplicaSet of its template, has
//! sized its ReplicaSets for its replicas, adds them up in its status and has deleted the old ones
//! beyond its revision history limit, each DaemonSet's status counts the nodes its pods are on and
//! which of them are ready, no pod or ReplicaSet waits to be adopted, released or collected, and
//! each Service's endpoints list its selected pods with their current readiness. Starting pods,
//! terminating pods and a paused or stalled rollout are at rest: nothing is left to react to until
//! time passes.
//!
//! Two things the objects cannot tell. Whether the view holds every pod change a DaemonSet's or
//! StatefulSet's controller made before it wrote a status that says it is not done: that is
//! settled by a fresh list of the pods ([`Owed::PodsUnconfirmed`]). And whether a DaemonSet
//! short of pods is refused them or has yet to make them: that is settled by asking the API to
//! admit one, in a dry run ([`Owed::AdmissionUnjudged`]).

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus, Deployment, DeploymentStatus, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Endpoints, Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::pod::Pod;
use super::rollout::{equal_ignoring_hash, identical_ignoring_hash};
use super::traffic::belongs_to;
use crate::cluster::PACE_ANNOTATION;
use crate::model::labels::Labels;
use crate::model::mirroring;

use super::view::{controller_ref, is_ready, selects, service_selects};

/// The label that marks the slices the EndpointSlice controller keeps (other slices are the user's).
/// The longest object name (a DNS subdomain), and the longest hash upstream's ComputeHash
/// writes (a 32-bit number's decimal digits).
const MAX_NAME_LENGTH: usize = 253;
const LONGEST_REVISION_HASH: usize = 10;

/// What the view holds of the kinds whose controllers react to writes.
pub struct Objects {
    pub pods: Vec<Arc<Pod>>,
    pub replica_sets: Vec<Arc<ReplicaSet>>,
    pub deployments: Vec<Arc<Deployment>>,
    pub daemon_sets: Vec<Arc<DaemonSet>>,
    pub stateful_sets: Vec<Arc<StatefulSet>>,
    pub services: Vec<Arc<Service>>,
    pub slices: Vec<Arc<EndpointSlice>>,
    /// Endpoints objects written by hand, which the mirroring controller turns into slices.
    pub endpoints: Vec<Arc<Endpoints>>,
    /// The cluster's nodes: a DaemonSet counts its pods by the node they are on.
    pub nodes: Vec<Arc<Node>>,
    /// The resourceVersion through which the view is known to hold every change of the pods.
    pub pods_seen_through: u64,
    /// What the API said, in a dry run, to a pod of a DaemonSet's template.
    pub daemon_pod_admissions: Vec<DaemonPodAdmission>,
}

/// The API's answer to a dry-run create of a pod of a DaemonSet's template, asked while the
/// DaemonSet (at resourceVersion `version`) was short of pods.
#[derive(Clone, Debug, PartialEq)]
pub struct DaemonPodAdmission {
    pub uid: String,
    pub version: u64,
    /// The API's words when it refused the pod; `None` when it admitted it.
    pub refused: Option<String>,
}

/// A controller that owns others by a label selector, as the view knows it.
struct Owner<'a> {
    kind: &'static str,
    name: &'a str,
    selector: Option<&'a LabelSelector>,
    deleting: bool,
}

impl Owner<'_> {
    fn selects(&self, meta: &ObjectMeta) -> bool {
        self.selector.is_some_and(|s| selects(s, labels(meta)))
    }

    fn text(&self) -> Named<'_> {
        Named(self.kind, self.name)
    }
}

/// `kind/name`, written only when a message needs it: the check runs before every step.
#[derive(Clone, Copy)]
struct Named<'a>(&'static str, &'a str);

impl std::fmt::Display for Named<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.0, self.1)
    }
}

/// The first reaction the control plane still owes, in words, or `None` at rest. Objects are
/// visited in name order, so the same state always gives the same answer; that order is only
/// paid for when there is something to say (the check runs before every step).
pub fn unfinished(objects: &Objects) -> Option<Owed> {
    if first_unfinished(objects, false).is_some() {
        return first_unfinished(objects, true).map(Owed::Reaction);
    }
    pods_unconfirmed(objects)
}

/// Why the view is not yet at rest.
#[derive(Debug, PartialEq)]
pub enum Owed {
    /// A reaction the control plane has yet to make, in words.
    Reaction(String),
    /// A DaemonSet's or StatefulSet's status (written at resourceVersion `through`) says it is
    /// not done (short of pods, mid-rollout, scaling), and the view may not yet show every pod
    /// change made before it: a controller writes its status after its pod writes, counted from
    /// its cache, and a pod's own event can reach the view after the status's. Only a fresh list
    /// of the pods tells that moment from a workload whose pods are refused, or whose rollout
    /// waits on time.
    PodsUnconfirmed { through: u64, why: String },
    /// A DaemonSet (uid, at resourceVersion `version`) short of pods, its pods confirmed: either
    /// the API refuses its pods (a service account or priority class missing, a namespace being
    /// deleted), and it is at rest, or its controller has yet to make them. Upstream's sync
    /// counts its status from the pods as they are once it has made its pods, not as it saw them
    /// before, so a pod removed in between leaves a status short of it, with no pod on its way,
    /// until the sync the removal set off makes the replacement. The status reads the same in
    /// both cases; only the API can say whether it would admit the pod.
    AdmissionUnjudged { uid: String, version: u64, why: String },
}

impl Owed {
    pub fn into_message(self) -> String {
        match self {
            Owed::Reaction(why) | Owed::PodsUnconfirmed { why, .. } | Owed::AdmissionUnjudged { why, .. } => why,
        }
    }
}

/// The first DaemonSet, then StatefulSet (each by name), whose status says it is not done
/// (short of pods, mid-rollout or scaling) and is newer than the pod changes the view is known to
/// hold; or the first DaemonSet short of pods whose pods the API has not been asked to admit, or
/// admits.
fn pods_unconfirmed(objects: &Objects) -> Option<Owed> {
    let daemon_sets =
        by_name(&objects.daemon_sets, |d| &d.metadata, true).into_iter().find_map(|ds| daemon_set_owes(ds, objects));
    daemon_sets.or_else(|| {
        by_name(&objects.stateful_sets, |s| &s.metadata, true).into_iter().find_map(|set| {
            let through = version_past_pods(&set.metadata, objects)?;
            let why = stateful_set_unsettled(set)?;
            Some(Owed::PodsUnconfirmed { through, why })
        })
    })
}

fn daemon_set_owes(ds: &DaemonSet, objects: &Objects) -> Option<Owed> {
    let status = ds.status.as_ref()?;
    let text = Named("daemonset", name(&ds.metadata));
    let desired = status.desired_number_scheduled;
    let short = status.current_number_scheduled < desired;
    let version = ds.metadata.resource_version.as_deref()?.parse::<u64>().ok()?;
    if ds.metadata.deletion_timestamp.is_some() {
        return None;
    }
    if version > objects.pods_seen_through {
        let why = if short {
            format!(
                "{text}'s status counts pods on {} of {desired} nodes, and the pods made before it are not yet confirmed in view",
                status.current_number_scheduled
            )
        } else if rolling_out(ds, status, &objects.pods) {
            format!(
                "{text}'s status counts updated pods on {} and available ones on {} of {desired} nodes, and the pod changes made before it are not yet confirmed in view",
                status.updated_number_scheduled.unwrap_or(0),
                status.number_available.unwrap_or(0)
            )
        } else {
            return None;
        };
        return Some(Owed::PodsUnconfirmed { through: version, why });
    }
    if !short {
        return None;
    }
    let uid = uid(&ds.metadata);
    let counted = status.current_number_scheduled;
    match objects.daemon_pod_admissions.iter().find(|a| a.uid == uid && a.version == version) {
        None => Some(Owed::AdmissionUnjudged {
            uid: uid.to_string(),
            version,
            why: format!(
                "{text}'s status counts pods on {counted} of {desired} nodes, and whether the API admits its pods is yet to be asked"
            ),
        }),
        Some(DaemonPodAdmission { refused: None, .. }) => Some(Owed::Reaction(format!(
            "{text}'s status counts pods on {counted} of {desired} nodes, and the API admits its pods (a dry run said so): its controller has yet to make them"
        ))),
        // Refused: nothing changes until something the view does not show (an account, a
        // class) does, and the controller's next try, on its own schedule, makes the pods.
        Some(DaemonPodAdmission { refused: Some(_), .. }) => None,
    }
}

/// The resourceVersion of a workload not being deleted, if it is past every pod change the view
/// is known to hold.
fn version_past_pods(meta: &ObjectMeta, objects: &Objects) -> Option<u64> {
    let version = meta.resource_version.as_deref()?.parse::<u64>().ok()?;
    (meta.deletion_timestamp.is_none() && version > objects.pods_seen_through).then_some(version)
}

/// Why a StatefulSet's status says it is not done, in words: fewer pods made, ready or updated
/// than it wants, or more pods than it wants. Its controller deletes pods (a rolling update's
/// old ones, a scale-down's extra ones) and then writes a status counted from the pods as they
/// were, which matches the view's count whether or not the view has seen the deletion.
fn stateful_set_unsettled(set: &StatefulSet) -> Option<String> {
    let status = set.status.as_ref()?;
    let wanted = set.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let ready = status.ready_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    if status.replicas == wanted && ready == wanted && updated == wanted {
        return None;
    }
    Some(format!(
        "{}'s status counts {} pods, {ready} ready and {updated} updated, of {wanted}, and the pod changes made before it are not yet confirmed in view",
        Named("statefulset", name(&set.metadata)),
        status.replicas
    ))
}

/// Whether a DaemonSet is mid-rollout: its status counts fewer updated or available pods than
/// nodes, or the view shows a node with two of its pods (a surge, whose old pod goes once the new
/// one is available). Its controller deletes old pods and then writes its status; the status
/// counts nodes, not pods, so it reads the same before and after a deletion, and only a fresh
/// list tells whether the view has seen the deletion yet.
fn rolling_out(ds: &DaemonSet, status: &DaemonSetStatus, pods: &[Arc<Pod>]) -> bool {
    let desired = status.desired_number_scheduled;
    if status.updated_number_scheduled.unwrap_or(0) < desired || status.number_available.unwrap_or(0) < desired {
        return true;
    }
    let mut nodes: Vec<&str> = pods
        .iter()
        .filter(|pod| pod.metadata.deletion_timestamp.is_none() && controlled_by(&pod.metadata, &ds.metadata))
        .filter_map(|pod| pod.target_node())
        .collect();
    let on_nodes = nodes.len();
    nodes.sort_unstable();
    nodes.dedup();
    nodes.len() < on_nodes
}

/// Owners by uid: a few per namespace, so a list is quicker than hashing every pod's owner uid.
type Owners<'a> = Vec<(&'a str, Owner<'a>)>;

fn first_unfinished(objects: &Objects, by_name_order: bool) -> Option<String> {
    let mut pod_owners: Owners<'_> = Vec::new();
    for rs in &objects.replica_sets {
        let selector = rs.spec.as_ref().map(|s| &s.selector);
        pod_owners.push((uid(&rs.metadata), owner("replicaset", &rs.metadata, selector)));
    }
    for ds in &objects.daemon_sets {
        let selector = ds.spec.as_ref().map(|s| &s.selector);
        pod_owners.push((uid(&ds.metadata), owner("daemonset", &ds.metadata, selector)));
    }
    for set in &objects.stateful_sets {
        let selector = set.spec.as_ref().map(|s| &s.selector);
        pod_owners.push((uid(&set.metadata), owner("statefulset", &set.metadata, selector)));
    }
    let mut rs_owners: Owners<'_> = Vec::new();
    for d in &objects.deployments {
        let selector = d.spec.as_ref().map(|s| &s.selector);
        rs_owners.push((uid(&d.metadata), owner("deployment", &d.metadata, selector)));
    }

    let pods = by_name(&objects.pods, |p| &p.metadata, by_name_order);
    for pod in &pods {
        if let Some(why) = removal_owed(pod, &objects.nodes) {
            return Some(why);
        }
    }
    let active_pods: Vec<&Pod> = pods.iter().copied().filter(|p| is_active(p)).collect();
    for pod in &active_pods {
        let pod_text = Named("pod", name(&pod.metadata));
        // A StatefulSet adopts only pods named as its members.
        let adopts = |o: &Owner<'_>| o.kind != "statefulset" || is_member_name(name(&pod.metadata), o.name);
        if let Some(why) =
            ownership(&pod.metadata, pod_text, &pod_owners, &["ReplicaSet", "DaemonSet", "StatefulSet"], adopts)
        {
            return Some(why);
        }
    }
    for rs in by_name(&objects.replica_sets, |r| &r.metadata, by_name_order) {
        let rs_text = Named("replicaset", name(&rs.metadata));
        if rs.metadata.deletion_timestamp.is_some() {
            // Finalizers hold it: its controller makes and deletes no pod, but still writes its
            // status, having seen the deletion (a change of its generation).
            let observed = rs.status.as_ref().and_then(|s| s.observed_generation);
            if let Some(why) = generation_unseen(rs_text, &rs.metadata, observed) {
                return Some(why);
            }
            continue;
        }
        if let Some(why) = ownership(&rs.metadata, rs_text, &rs_owners, &["Deployment"], |_| true) {
            return Some(why);
        }
        if let Some(why) =
            generation_unseen(rs_text, &rs.metadata, rs.status.as_ref().and_then(|s| s.observed_generation))
        {
            return Some(why);
        }
        let (owned, ready) = active_pods
            .iter()
            .filter(|p| controlled_by(&p.metadata, &rs.metadata))
            .fold((0, 0), |(owned, ready), p| (owned + 1, ready + i32::from(is_ready(p))));
        let status = rs.status.as_ref();
        let counted = status.map_or(0, |s| s.replicas);
        if counted != owned {
            return Some(format!("{rs_text} has yet to count its pods: its status says {counted}, it has {owned}"));
        }
        // A pod replaced leaves `replicas` unchanged, while the status still counts the old pod
        // ready until the controller counts again.
        let counted_ready = status.and_then(|s| s.ready_replicas).unwrap_or(0);
        if counted_ready != ready {
            return Some(format!(
                "{rs_text} has yet to count its ready pods: its status says {counted_ready}, it has {ready}"
            ));
        }
        let wanted = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        // A replica set whose pods are refused says so in a condition and waits to try again.
        let refused = status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "ReplicaFailure" && c.status == "True"));
        if owned != wanted && !refused {
            return Some(format!("{rs_text} has yet to make or delete pods: it has {owned} of {wanted}"));
        }
    }
    for d in by_name(&objects.deployments, |d| &d.metadata, by_name_order) {
        let d_text = Named("deployment", name(&d.metadata));
        if let Some(why) = generation_unseen(d_text, &d.metadata, d.status.as_ref().and_then(|s| s.observed_generation))
        {
            return Some(why);
        }
        // Finalizers hold it: its controller rolls nothing out, but still numbers its replica
        // sets' revisions and writes its status, the generation it saw last (checked above).
        if d.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if let Some(why) = scale_unseen(d, d_text, &objects.replica_sets) {
            return Some(why);
        }
        if let Some(why) = new_replica_set_unseen(d, d_text, &objects.replica_sets, &pods) {
            return Some(why);
        }
        let mut sums = [0; 3];
        for rs in objects.replica_sets.iter().filter(|rs| controlled_by(&rs.metadata, &d.metadata)) {
            let status = rs.status.as_ref();
            sums[0] += status.map_or(0, |s| s.replicas);
            sums[1] += status.and_then(|s| s.ready_replicas).unwrap_or(0);
            sums[2] += status.and_then(|s| s.available_replicas).unwrap_or(0);
        }
        let status = d.status.as_ref();
        let stated = [
            status.and_then(|s| s.replicas).unwrap_or(0),
            status.and_then(|s| s.ready_replicas).unwrap_or(0),
            status.and_then(|s| s.available_replicas).unwrap_or(0),
        ];
        if stated != sums {
            return Some(format!(
                "{d_text} has yet to add up its replica sets: its status says {}/{}/{} pods/ready/available, they have {}/{}/{}",
                stated[0], stated[1], stated[2], sums[0], sums[1], sums[2]
            ));
        }
        if let Some(why) = history_beyond_limit(d, d_text, &objects.replica_sets) {
            return Some(why);
        }
    }
    for ds in by_name(&objects.daemon_sets, |d| &d.metadata, by_name_order) {
        let observed = ds.status.as_ref().and_then(|s| s.observed_generation);
        // Upstream names a daemon set's revisions `<name>-<hash>`, uncut: past a name's limit
        // its sync fails before any status, and never sees a generation. Such a name has
        // nothing more coming.
        if ds.metadata.deletion_timestamp.is_some()
            || name(&ds.metadata).len() + "-".len() + LONGEST_REVISION_HASH > MAX_NAME_LENGTH
        {
            continue;
        }
        let ds_text = Named("daemonset", name(&ds.metadata));
        if let Some(why) = generation_unseen(ds_text, &ds.metadata, observed) {
            return Some(why);
        }
        if let Some(why) = daemon_pods_uncounted(ds, ds_text, &pods, &objects.nodes) {
            return Some(why);
        }
    }
    for set in by_name(&objects.stateful_sets, |s| &s.metadata, by_name_order) {
        if set.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let set_text = Named("statefulset", name(&set.metadata));
        let status = set.status.as_ref();
        if let Some(why) = generation_unseen(set_text, &set.metadata, status.and_then(|s| s.observed_generation)) {
            return Some(why);
        }
        // Upstream's computeReplicaStatus over every pod the set owns, terminating ones too: a
        // pod the kubelet has seen (it has a phase) and, of those, the running and ready ones. The
        // next pod of an ordered set is made on the status pass that counts its predecessor ready.
        let owned: Vec<&Pod> = pods.iter().copied().filter(|p| controlled_by(&p.metadata, &set.metadata)).collect();
        let created = owned.iter().filter(|p| !phase(p).is_empty()).count() as i32;
        let ready = owned.iter().filter(|p| phase(p) == "Running" && is_ready(p)).count() as i32;
        let stated = (status.map_or(0, |s| s.replicas), status.and_then(|s| s.ready_replicas).unwrap_or(0));
        if stated != (created, ready) {
            return Some(format!(
                "{set_text} has yet to count its pods: its status says {}/{} pods/ready, it has {created}/{ready}",
                stated.0, stated.1
            ));
        }
    }
    for service in by_name(&objects.services, |s| &s.metadata, by_name_order) {
        if let Some(why) = endpoints_behind(service, &pods, &objects.slices) {
            return Some(why);
        }
        if let Some(why) = mirror_behind(service, &objects.endpoints, &objects.slices) {
            return Some(why);
        }
    }
    slices_uncollected(objects, by_name_order).or_else(|| mirrored_unremoved(objects, by_name_order))
}

/// The EndpointSlices of a Service that is gone: the EndpointSlice controller makes the Service
/// their controller, so the garbage collector deletes them, a moment after the Service on a
/// cluster (within the delete on the built-in cluster). Until then they still list the pods.
/// The same for a mirrored slice, whose controller is its Endpoints object.
fn slices_uncollected(objects: &Objects, by_name_order: bool) -> Option<String> {
    let services: Vec<&str> = objects.services.iter().map(|s| uid(&s.metadata)).collect();
    let endpoints: Vec<&str> = objects.endpoints.iter().map(|e| uid(&e.metadata)).collect();
    by_name(&objects.slices, |s| &s.metadata, by_name_order).into_iter().find_map(|slice| {
        let reference = controller_ref(&slice.metadata).filter(|r| r.api_version == "v1")?;
        let (owners, owner) = match reference.kind.as_str() {
            "Service" => (&services, "service"),
            "Endpoints" => (&endpoints, "endpoints"),
            _ => return None,
        };
        (!owners.contains(&reference.uid.as_str())).then(|| {
            format!(
                "the garbage collector has yet to act on endpointslice/{}: its {owner} {} is gone",
                name(&slice.metadata),
                reference.name
            )
        })
    })
}

/// What the EndpointSlice mirroring controller still owes a Service: with no selector, its
/// mirrored slices list the endpoints of the Endpoints object of its name as the controller
/// makes them ([`crate::model::mirroring`]: each address with its readiness per port), and
/// nothing else; with a selector, or with its Endpoints gone or marked `skip-mirror`, it keeps
/// none. Compared as (address, ready) pairs, which is all that routing reads: a change of ports
/// alone is not waited for. An Endpoints object being deleted gets no new slice (its slices go
/// with it), so nothing is owed for it.
fn mirror_behind(service: &Service, endpoints: &[Arc<Endpoints>], slices: &[Arc<EndpointSlice>]) -> Option<String> {
    let service_name = name(&service.metadata);
    let has_selector = service.spec.as_ref().and_then(|s| s.selector.as_ref()).is_some_and(|s| !s.is_empty());
    let source = endpoints.iter().find(|e| name(&e.metadata) == service_name);
    if source.is_some_and(|e| e.metadata.deletion_timestamp.is_some()) {
        return None;
    }
    let source = source.map(|e| serde_json::to_value(&**e).unwrap_or_default());
    let mut wanted: Vec<(String, bool)> = source
        .filter(|e| !has_selector && mirroring::should_mirror(&e["metadata"]))
        .map(|e| {
            mirroring::mirrored_slices(&e).into_iter().flat_map(|s| s.endpoints).filter_map(|e| pair(&e)).collect()
        })
        .unwrap_or_default();
    let mut listed: Vec<(String, bool)> = slices
        .iter()
        .filter(|s| belongs_to(s, service_name) && is_mirrored(s) && s.metadata.deletion_timestamp.is_none())
        .flat_map(|s| s.endpoints.iter())
        .filter_map(|e| {
            Some((e.addresses.first()?.clone(), e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true)))
        })
        .collect();
    for pairs in [&mut wanted, &mut listed] {
        pairs.sort_unstable();
        pairs.dedup();
    }
    (wanted != listed).then(|| {
        format!(
            "service/{service_name}'s endpoints have yet to follow endpoints/{service_name} (the EndpointSlice mirroring controller's)"
        )
    })
}

/// An endpoint's first address and readiness, as a mirrored slice lists it.
fn pair(endpoint: &serde_json::Value) -> Option<(String, bool)> {
    Some((endpoint["addresses"][0].as_str()?.to_string(), endpoint["conditions"]["ready"] != false))
}

/// Mirrored slices whose Service is gone: the mirroring controller deletes them.
fn mirrored_unremoved(objects: &Objects, by_name_order: bool) -> Option<String> {
    let services: Vec<&str> = objects.services.iter().map(|s| name(&s.metadata)).collect();
    by_name(&objects.slices, |s| &s.metadata, by_name_order).into_iter().find_map(|slice| {
        let service = slice.metadata.labels.as_ref()?.get(super::traffic::SERVICE_NAME_LABEL)?;
        (is_mirrored(slice) && !services.contains(&service.as_str())).then(|| {
            format!(
                "the EndpointSlice mirroring controller has yet to delete endpointslice/{}: its service {service} is gone",
                name(&slice.metadata)
            )
        })
    })
}

fn is_mirrored(slice: &EndpointSlice) -> bool {
    slice.metadata.labels.as_ref().and_then(|l| l.get(super::traffic::MANAGED_BY)).map(String::as_str)
        == Some(mirroring::MIRRORING_CONTROLLER)
}

/// Upstream's isScalingEvent: a Deployment has yet to scale each active replica set (one with
/// replicas) whose desired-replicas annotation names another count than the Deployment's own. The
/// controller writes its status, with the new generation observed, after it scales them, and that
/// status can reach the view before the replica sets' changes do (each kind has its own watch):
/// without this rule a `scale` looks done before it has begun.
fn scale_unseen(d: &Deployment, d_text: Named<'_>, replica_sets: &[Arc<ReplicaSet>]) -> Option<String> {
    let wanted = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    replica_sets
        .iter()
        .filter(|rs| controlled_by(&rs.metadata, &d.metadata))
        .filter(|rs| rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1) > 0)
        .find_map(|rs| {
            let desired = rs.metadata.annotations.as_ref()?.get(DESIRED_REPLICAS)?.parse::<i32>().ok()?;
            (desired != wanted).then(|| {
                format!(
                    "{d_text} has yet to scale replicaset/{}: it wants {wanted} pods, the replica set was sized for {desired}",
                    name(&rs.metadata)
                )
            })
        })
}

/// Upstream's getAllReplicaSetsAndSyncRevision: a Deployment that is not paused makes a replica
/// set of its template when none of its own has it, and writes its status, with the new generation
/// observed, after: that status can reach the view before the new replica set does, and a new
/// Deployment, or a template changed, would look done before it has begun. Recreate makes it only
/// once no pod of the old replica sets is left (upstream's oldPodsRunning): until then it waits
/// on their grace periods, at rest.
fn new_replica_set_unseen(
    d: &Deployment,
    d_text: Named<'_>,
    replica_sets: &[Arc<ReplicaSet>],
    pods: &[&Pod],
) -> Option<String> {
    let spec = d.spec.as_ref()?;
    if spec.paused == Some(true) {
        return None;
    }
    let owned: Vec<&ReplicaSet> =
        replica_sets.iter().map(|rs| rs.as_ref()).filter(|rs| controlled_by(&rs.metadata, &d.metadata)).collect();
    let templates = || owned.iter().filter_map(|rs| rs.spec.as_ref()?.template.as_ref());
    // Identical copies first: then the common case costs no JSON.
    if templates().any(|t| identical_ignoring_hash(t, &spec.template))
        || templates().any(|t| equal_ignoring_hash(t, &spec.template))
    {
        return None;
    }
    let recreate = spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate");
    let old_pods_running = || {
        owned.iter().any(|rs| rs.status.as_ref().is_some_and(|s| s.replicas > 0))
            || pods
                .iter()
                .any(|pod| !finished(pod) && owned.iter().any(|rs| controlled_by(&pod.metadata, &rs.metadata)))
    };
    if recreate && old_pods_running() {
        return None;
    }
    Some(format!("{d_text} has yet to make a replica set of its template"))
}

/// The annotation by which a Deployment's controller records, on each replica set it scales, the
/// Deployment's replicas at that moment.
pub(super) const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";

/// Upstream's cleanupDeployment: once a Deployment's stored status says it is complete (or while
/// it is paused), it deletes its oldest replica sets beyond `revisionHistoryLimit` (10 unless
/// set), by revision, those fully scaled down and counted so. Until it has, an `undo` could still
/// find a revision the built-in cluster, which cleans up within the write, no longer has.
fn history_beyond_limit(d: &Deployment, d_text: Named<'_>, replica_sets: &[Arc<ReplicaSet>]) -> Option<String> {
    let spec = d.spec.as_ref()?;
    let limit = spec.revision_history_limit.unwrap_or(10);
    if limit == i32::MAX {
        return None;
    }
    let wanted = spec.replicas.unwrap_or(1);
    let status = d.status.as_ref();
    let count = |field: fn(&DeploymentStatus) -> Option<i32>| status.and_then(field).unwrap_or(0);
    let complete = count(|s| s.updated_replicas) == wanted
        && count(|s| s.replicas) == wanted
        && count(|s| s.available_replicas) == wanted
        && status.and_then(|s| s.observed_generation).unwrap_or(0) >= d.metadata.generation.unwrap_or(0);
    if !(complete || spec.paused == Some(true)) {
        return None;
    }
    let revision =
        |meta: &ObjectMeta| -> Option<i64> { meta.annotations.as_ref()?.get(REVISION_ANNOTATION)?.parse().ok() };
    let current = revision(&d.metadata);
    let mut old: Vec<&ReplicaSet> = replica_sets
        .iter()
        .map(|rs| rs.as_ref())
        .filter(|rs| controlled_by(&rs.metadata, &d.metadata) && rs.metadata.deletion_timestamp.is_none())
        .filter(|rs| revision(&rs.metadata) != current)
        .collect();
    let excess = old.len().saturating_sub(usize::try_from(limit).unwrap_or(0));
    old.sort_by(|a, b| {
        let created = |rs: &ReplicaSet| rs.metadata.creation_timestamp.as_ref().map(|t| t.0);
        revision(&a.metadata).cmp(&revision(&b.metadata)).then_with(|| created(a).cmp(&created(b)))
    });
    let deletable = old.into_iter().take(excess).find(|rs| {
        let status = rs.status.as_ref();
        status.map_or(0, |s| s.replicas) == 0
            && rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1) == 0
            && rs.metadata.generation.unwrap_or(0) <= status.and_then(|s| s.observed_generation).unwrap_or(0)
    })?;
    Some(format!(
        "{d_text} has yet to delete replicaset/{}, beyond its revisionHistoryLimit of {limit}",
        name(&deletable.metadata)
    ))
}

/// The revision a Deployment and its replica sets are annotated with.
const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

fn owner<'a>(kind: &'static str, meta: &'a ObjectMeta, selector: Option<&'a LabelSelector>) -> Owner<'a> {
    Owner { kind, name: name(meta), selector, deleting: meta.deletion_timestamp.is_some() }
}

/// What a controller still owes an object by ownership: to collect it (its controller is gone),
/// to release it (it no longer matches), or to adopt it (an orphan a controller selects).
/// `watched` are the kinds of `owners`: an owner of another kind is not the view's to judge.
fn ownership(
    meta: &ObjectMeta,
    text: Named<'_>,
    owners: &Owners<'_>,
    watched: &[&str],
    adopts: impl Fn(&Owner<'_>) -> bool,
) -> Option<String> {
    match controller_ref(meta) {
        Some(reference) => match owners.iter().find(|(uid, _)| *uid == reference.uid).map(|(_, o)| o) {
            Some(owner) if !owner.deleting && !owner.selects(meta) => {
                Some(format!("{} has yet to release {text}, which no longer matches its selector", owner.text()))
            }
            Some(_) => None,
            None if watched.contains(&reference.kind.as_str()) => Some(format!(
                "the garbage collector has yet to act on {text}: its {} {} is gone",
                reference.kind.to_ascii_lowercase(),
                reference.name
            )),
            None => None,
        },
        None => {
            let mut adopters: Vec<&Owner<'_>> =
                owners.iter().map(|(_, o)| o).filter(|o| !o.deleting && o.selects(meta) && adopts(o)).collect();
            adopters.sort_by_key(|o| (o.kind, o.name));
            adopters.first().map(|o| format!("{} has yet to adopt {text}, an orphan its selector matches", o.text()))
        }
    }
}

/// A pod deleted with no grace period (and no finalizer holding it) is the kubelet's to remove at
/// once, and so is any deleted pod on a node whose kubelet ignores grace periods (marked
/// [`PACE_ANNOTATION`] `fast`: the testbed's fast pace, and the built-in cluster's, where such a
/// pod is gone at once). Only a grace period the kubelet keeps makes terminating a state of rest.
/// (A DaemonSet or StatefulSet replaces its pod only once it is gone.) A pod its finalizers hold
/// stays; on such a node its kubelet stops it at once (it ends Failed).
fn removal_owed(pod: &Pod, nodes: &[Arc<Node>]) -> Option<String> {
    let meta = &pod.metadata;
    meta.deletion_timestamp.as_ref()?;
    let held = meta.finalizers.as_ref().is_some_and(|f| !f.is_empty());
    if held && finished(pod) {
        return None;
    }
    if !held && meta.deletion_grace_period_seconds == Some(0) {
        return Some(format!("the kubelet has yet to remove pod/{}, deleted with no grace period", name(meta)));
    }
    let node = pod.spec.as_ref()?.node_name.as_deref().filter(|n| !n.is_empty())?;
    let fast = nodes.iter().any(|n| {
        n.metadata.name.as_deref() == Some(node)
            && n.metadata.annotations.as_ref().and_then(|a| a.get(PACE_ANNOTATION)).map(String::as_str) == Some("fast")
    });
    let what = if held { "stop" } else { "remove" };
    fast.then(|| {
        format!("the kubelet of node/{node} has yet to {what} pod/{}: it plays pods at the fast pace", name(meta))
    })
}

/// Upstream's getNodesToDaemonPods, as the status counts it: the DaemonSet's pods by the node
/// they are on (or pinned to), on nodes that exist, each node's first pod (upstream's
/// podByCreationTimestampAndPhase order). Pods both finished and being deleted are left out.
fn daemon_first_pods<'a>(ds: &DaemonSet, pods: &[&'a Pod], nodes: &[Arc<Node>]) -> HashMap<&'a str, &'a Pod> {
    let mut first_by_node: HashMap<&str, &Pod> = HashMap::new();
    for &pod in pods {
        if !controlled_by(&pod.metadata, &ds.metadata) || (pod.metadata.deletion_timestamp.is_some() && finished(pod)) {
            continue;
        }
        let Some(node) =
            pod.target_node().filter(|node| nodes.iter().any(|n| n.metadata.name.as_deref() == Some(node)))
        else {
            continue;
        };
        first_by_node
            .entry(node)
            .and_modify(|first| {
                if daemon_pod_order(pod, first).is_lt() {
                    *first = pod;
                }
            })
            .or_insert(pod);
    }
    first_by_node
}

/// Whether a DaemonSet's status has yet to count its pods: the nodes they are on, and which of
/// those nodes' first pods are ready.
///
/// Each sync counts, from the pods, the nodes that have one (upstream's currentNumberScheduled,
/// and numberMisscheduled for the nodes that should not): a daemon pod deleted leaves its node
/// counted until the controller has made the replacement and counted again. A node whose pods
/// are refused stays uncounted in both, so a refusal is at rest.
///
/// Its pods can also change under a status that still counts the nodes right: after an `undo`
/// the old template's terminating pods count as ready, and once they are gone the new ones (not
/// ready yet) stand on the same nodes until the controller counts again. Readiness is judged
/// only while no node is misscheduled: upstream counts it on the nodes the DaemonSet should run
/// on, which the view cannot tell from the others.
fn daemon_pods_uncounted(ds: &DaemonSet, text: Named<'_>, pods: &[&Pod], nodes: &[Arc<Node>]) -> Option<String> {
    let first_by_node = daemon_first_pods(ds, pods, nodes);
    let status = ds.status.as_ref();
    let counted = status.map_or(0, |s| s.current_number_scheduled + s.number_misscheduled);
    if counted != first_by_node.len() as i32 {
        return Some(format!(
            "{text} has yet to count its pods' nodes: its status says {counted}, its pods are on {}",
            first_by_node.len()
        ));
    }
    let status = status.filter(|s| s.number_misscheduled == 0)?;
    let ready = first_by_node.values().filter(|pod| is_ready(pod)).count() as i32;
    (status.number_ready != ready).then(|| {
        format!(
            "{text} has yet to count its ready pods: its status says {}, {ready} of its nodes' first pods are ready",
            status.number_ready
        )
    })
}

/// Upstream's podByCreationTimestampAndPhase: scheduled pods first, then the oldest, then by name.
fn daemon_pod_order(a: &Pod, b: &Pod) -> std::cmp::Ordering {
    let unscheduled = |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_none_or(str::is_empty);
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    unscheduled(a)
        .cmp(&unscheduled(b))
        .then_with(|| created(a).cmp(&created(b)))
        .then_with(|| name(&a.metadata).cmp(name(&b.metadata)))
}

fn generation_unseen(text: Named<'_>, meta: &ObjectMeta, observed: Option<i64>) -> Option<String> {
    let generation = meta.generation.unwrap_or(0);
    let observed = observed.unwrap_or(0);
    (observed < generation)
        .then(|| format!("{text}'s controller has yet to act on its generation {generation} (it has seen {observed})"))
}

/// What the EndpointSlice controller still owes a Service: its managed slices list every
/// selected pod that has an IP, terminating ones included, ready when the pod is Ready and not
/// terminating (or the Service publishes pods that are not ready), as upstream's reconciler
/// writes them.
fn endpoints_behind(service: &Service, pods: &[&Pod], slices: &[Arc<EndpointSlice>]) -> Option<String> {
    let spec = service.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    let selector = spec.selector.as_ref().filter(|s| !s.is_empty())?;
    let publish_not_ready = spec.publish_not_ready_addresses == Some(true);
    // (pod uid, ready, terminating) of each endpoint, wanted and as listed.
    let mut wanted: Vec<(&str, bool, bool)> = Vec::new();
    for &pod in pods {
        if !has_ip(pod) || finished(pod) {
            continue;
        }
        if !service_selects(selector, labels(&pod.metadata)) {
            continue;
        }
        let terminating = pod.metadata.deletion_timestamp.is_some();
        wanted.push((uid(&pod.metadata), publish_not_ready || (is_ready(pod) && !terminating), terminating));
    }
    let service_name = name(&service.metadata);
    let mut listed: Vec<(&str, bool, bool)> = Vec::new();
    let managed = || slices.iter().filter(|s| belongs_to(s, service_name) && super::traffic::managed_by_controller(s));
    // A Service being deleted (finalizers hold it) has its slices kept up to date, but no new
    // slice is made for it: with none left, nothing more is owed.
    if service.metadata.deletion_timestamp.is_some() && managed().next().is_none() {
        return None;
    }
    for endpoint in managed().flat_map(|s| s.endpoints.iter()) {
        let Some(pod_uid) = endpoint.target_ref.as_ref().and_then(|t| t.uid.as_deref()) else { continue };
        let conditions = endpoint.conditions.as_ref();
        let ready = conditions.and_then(|c| c.ready).unwrap_or(true);
        let terminating = conditions.and_then(|c| c.terminating).unwrap_or(false);
        listed.push((pod_uid, ready, terminating));
    }
    wanted.sort_unstable();
    listed.sort_unstable();
    // A pod several slices list alike is one endpoint; listed differently, it is mid-move
    // between them, and stays twice in the list, so that it differs from what is wanted.
    listed.dedup();
    (listed != wanted).then(|| {
        let by_uid: HashMap<&str, &str> = pods.iter().map(|p| (uid(&p.metadata), name(&p.metadata))).collect();
        let differing = wanted
            .iter()
            .zip(&listed)
            .find(|(w, l)| w != l)
            .map(|(w, l)| w.0.min(l.0))
            .or_else(|| wanted.get(listed.len()).or(listed.get(wanted.len())).map(|e| e.0))
            .map(|u| by_uid.get(u).map_or_else(|| format!(" (a pod now gone, uid {u})"), |n| format!(" (pod/{n})")))
            .unwrap_or_default();
        format!("service/{service_name}'s endpoints have yet to follow its pods{differing}")
    })
}

/// Upstream's IsPodActive: not terminal and not being deleted.
fn is_active(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none() && !finished(pod)
}

/// Whether the pod has finished (Succeeded or Failed: evicted, say, or stopped by its kubelet
/// while finalizers hold it). Upstream's ShouldPodBeInEndpoints lists no finished pod, whatever
/// its restart policy.
fn finished(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

fn has_ip(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|s| s.pod_ip.as_deref()).is_some_and(|ip| !ip.is_empty())
}

fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or_default()
}

/// Whether a pod's name is that of a StatefulSet member: the set's name, a dash, an ordinal.
fn is_member_name(pod: &str, set: &str) -> bool {
    pod.rsplit_once('-').is_some_and(|(parent, ordinal)| {
        parent == set && !ordinal.is_empty() && ordinal.bytes().all(|b| b.is_ascii_digit())
    })
}

fn controlled_by(meta: &ObjectMeta, owner: &ObjectMeta) -> bool {
    controller_ref(meta).is_some_and(|r| Some(&r.uid) == owner.uid.as_ref())
}

/// The objects, in name order when `ordered`.
fn by_name<T>(objects: &[Arc<T>], meta: impl Fn(&T) -> &ObjectMeta, ordered: bool) -> Vec<&T> {
    let mut sorted: Vec<&T> = objects.iter().map(|o| &**o).collect();
    if ordered {
        sorted.sort_by(|a, b| meta(a).name.cmp(&meta(b).name));
    }
    sorted
}

fn labels(meta: &ObjectMeta) -> &Labels {
    static NONE: Labels = Labels::new();
    meta.labels.as_ref().unwrap_or(&NONE)
}

fn name(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

fn uid(meta: &ObjectMeta) -> &str {
    meta.uid.as_deref().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::super::rollout::TEMPLATE_HASH_LABEL;
    use super::*;
    use crate::exec::traffic::{ENDPOINT_SLICE_CONTROLLER, MANAGED_BY};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use serde_json::{Value, json};

    fn owed(objects: &Objects) -> Option<String> {
        unfinished(objects).map(Owed::into_message)
    }

    fn object<T: serde::de::DeserializeOwned>(value: Value) -> Arc<T> {
        Arc::new(serde_json::from_value(value).unwrap())
    }

    fn controller(kind: &str, name: &str) -> Value {
        json!([{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": format!("uid-{name}"), "controller": true}])
    }

    fn pod(name: &str, labels: Value, owner: Option<&str>, ready: bool) -> Arc<Pod> {
        let mut meta = json!({"name": name, "uid": format!("uid-{name}"), "labels": labels});
        if let Some(owner) = owner {
            meta["ownerReferences"] = controller("ReplicaSet", owner);
        }
        object(json!({
            "metadata": meta,
            "spec": {"containers": [{"name": "web"}]},
            "status": {
                "phase": "Running",
                "podIP": "10.244.1.2",
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
            },
        }))
    }

    fn pod_spec() -> Value {
        json!({"containers": [{"name": "web", "image": "web:1"}]})
    }

    /// The Deployment's template, which its replica set `web-a` has.
    fn template() -> Value {
        json!({"metadata": {"labels": {"app": "web"}}, "spec": pod_spec()})
    }

    fn replica_set(name: &str, wanted: i32, counted: i32) -> Arc<ReplicaSet> {
        object(json!({
            "metadata": {"name": name, "uid": format!("uid-{name}"), "generation": 2, "labels": {"app": "web", TEMPLATE_HASH_LABEL: "a"},
                         "ownerReferences": controller("Deployment", "web")},
            "spec": {"replicas": wanted, "selector": {"matchLabels": {"app": "web", TEMPLATE_HASH_LABEL: "a"}},
                     "template": {"metadata": {"labels": {"app": "web", TEMPLATE_HASH_LABEL: "a"}}, "spec": pod_spec()}},
            "status": {"replicas": counted, "readyReplicas": counted, "availableReplicas": counted, "observedGeneration": 2},
        }))
    }

    fn deployment(replicas: i32, observed: i64) -> Arc<Deployment> {
        object(json!({
            "metadata": {"name": "web", "uid": "uid-web", "generation": 3},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template()},
            "status": {"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas, "observedGeneration": observed},
        }))
    }

    fn service() -> Arc<Service> {
        object(json!({"metadata": {"name": "web", "uid": "uid-svc"}, "spec": {"selector": {"app": "web"}}}))
    }

    fn slice(endpoints: &[(&str, bool)]) -> Arc<EndpointSlice> {
        let endpoints: Vec<Value> = endpoints
            .iter()
            .map(|(pod, ready)| {
                json!({"addresses": ["10.244.1.2"], "conditions": {"ready": ready, "serving": ready, "terminating": false},
                       "targetRef": {"kind": "Pod", "name": pod, "uid": format!("uid-{pod}")}})
            })
            .collect();
        object(json!({
            "metadata": {"name": "web-x", "labels": {"kubernetes.io/service-name": "web", MANAGED_BY: ENDPOINT_SLICE_CONTROLLER},
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": "web", "uid": "uid-svc", "controller": true}]},
            "addressType": "IPv4",
            "endpoints": endpoints,
        }))
    }

    /// A deployment of two ready pods behind a service, its controllers done.
    fn at_rest() -> Objects {
        let labels = json!({"app": "web", TEMPLATE_HASH_LABEL: "a"});
        Objects {
            pods: vec![
                pod("web-a-1", labels.clone(), Some("web-a"), true),
                pod("web-a-2", labels, Some("web-a"), true),
            ],
            replica_sets: vec![replica_set("web-a", 2, 2)],
            deployments: vec![deployment(2, 3)],
            daemon_sets: Vec::new(),
            nodes: Vec::new(),
            pods_seen_through: 0,
            stateful_sets: Vec::new(),
            services: vec![service()],
            slices: vec![slice(&[("web-a-1", true), ("web-a-2", true)])],
            endpoints: Vec::new(),
            daemon_pod_admissions: Vec::new(),
        }
    }

    /// A pod replaced (the old one gone, its replacement not ready yet) leaves the replica set's
    /// count as it was: the status that counted the old one ready is behind until it counts again.
    #[test]
    fn a_replica_set_is_at_rest_only_once_its_status_counts_its_ready_pods() {
        let mut objects = at_rest();
        objects.pods[1] = pod("web-a-3", json!({"app": "web", TEMPLATE_HASH_LABEL: "a"}), Some("web-a"), false);
        objects.slices = vec![slice(&[("web-a-1", true), ("web-a-3", false)])];
        assert_eq!(
            owed(&objects).as_deref(),
            Some("replicaset/web-a has yet to count its ready pods: its status says 2, it has 1")
        );
        let mut counted = (*replica_set("web-a", 2, 2)).clone();
        counted.status.as_mut().unwrap().ready_replicas = Some(1);
        counted.status.as_mut().unwrap().available_replicas = Some(1);
        objects.replica_sets = vec![Arc::new(counted)];
        let mut deployment = (*deployment(2, 3)).clone();
        deployment.status.as_mut().unwrap().ready_replicas = Some(1);
        deployment.status.as_mut().unwrap().available_replicas = Some(1);
        objects.deployments = vec![Arc::new(deployment)];
        assert_eq!(owed(&objects), None);
    }

    /// A complete (or paused) Deployment owes the deletion of its oldest replica sets beyond its
    /// history limit.
    #[test]
    fn old_replica_sets_beyond_the_history_limit_are_owed_their_deletion() {
        let history = |limit: i32, old_counted: i32| {
            let mut objects = at_rest();
            objects.deployments = vec![object(json!({
                "metadata": {"name": "web", "uid": "uid-web", "generation": 3,
                             "annotations": {REVISION_ANNOTATION: "2"}},
                "spec": {"replicas": 2, "revisionHistoryLimit": limit,
                         "selector": {"matchLabels": {"app": "web"}}, "template": template()},
                "status": {"replicas": 2 + old_counted, "updatedReplicas": 2, "readyReplicas": 2 + old_counted,
                           "availableReplicas": 2 + old_counted, "observedGeneration": 3},
            }))];
            let annotated = |rs: Arc<ReplicaSet>, revision: &str| {
                let mut rs = Arc::unwrap_or_clone(rs);
                rs.metadata.annotations = Some([(REVISION_ANNOTATION.to_string(), revision.to_string())].into());
                Arc::new(rs)
            };
            let mut old = Arc::unwrap_or_clone(replica_set("web-old", 0, old_counted));
            old.metadata.name = Some("web-old".into());
            objects.replica_sets = vec![annotated(objects.replica_sets[0].clone(), "2"), annotated(Arc::new(old), "1")];
            objects
        };
        assert_eq!(
            owed(&history(0, 0)).as_deref(),
            Some("deployment/web has yet to delete replicaset/web-old, beyond its revisionHistoryLimit of 0")
        );
        assert_eq!(owed(&history(1, 0)), None, "within the limit");
        // A rollout not complete keeps its history for now, unless it is paused.
        let mut rolling = history(0, 0);
        let mut deployment = Arc::unwrap_or_clone(rolling.deployments.pop().unwrap());
        deployment.status.as_mut().unwrap().updated_replicas = Some(1);
        rolling.deployments.push(Arc::new(deployment.clone()));
        assert_eq!(owed(&rolling), None);
        deployment.spec.as_mut().unwrap().paused = Some(true);
        rolling.deployments = vec![Arc::new(deployment)];
        assert!(owed(&rolling).is_some_and(|why| why.contains("has yet to delete replicaset/web-old")));
    }

    #[test]
    fn a_settled_deployment_behind_its_service_is_at_rest() {
        assert_eq!(unfinished(&at_rest()), None);
    }

    #[test]
    fn a_spec_its_controller_has_not_seen_is_owed_a_reaction() {
        let mut objects = at_rest();
        objects.deployments = vec![deployment(2, 2)];
        assert_eq!(
            owed(&objects).as_deref(),
            Some("deployment/web's controller has yet to act on its generation 3 (it has seen 2)")
        );
    }

    #[test]
    fn a_replica_set_scaled_up_owes_pods_until_it_has_and_counts_them() {
        let mut objects = at_rest();
        objects.replica_sets = vec![replica_set("web-a", 3, 2)];
        assert_eq!(owed(&objects).as_deref(), Some("replicaset/web-a has yet to make or delete pods: it has 2 of 3"));
        // Its pods made, but its status written before they were: still reacting.
        objects.pods.push(pod("web-a-3", json!({"app": "web", TEMPLATE_HASH_LABEL: "a"}), Some("web-a"), false));
        assert_eq!(
            owed(&objects).as_deref(),
            Some("replicaset/web-a has yet to count its pods: its status says 2, it has 3")
        );
    }

    #[test]
    fn a_deployment_whose_status_lags_its_replica_sets_is_reacting() {
        let mut objects = at_rest();
        objects.deployments = vec![deployment(1, 3)];
        assert_eq!(
            owed(&objects).as_deref(),
            Some(
                "deployment/web has yet to add up its replica sets: its status says 1/1/1 pods/ready/available, they have 2/2/2"
            )
        );
    }

    #[test]
    fn a_deployment_scaled_owes_its_replica_sets_their_new_size_until_they_show_it() {
        // The Deployment's status, written once it scaled its replica set, arrives before the
        // replica set's own change: the replica set still says it was sized for 2.
        let mut objects = at_rest();
        let mut scaled = (*deployment(2, 3)).clone();
        scaled.spec.as_mut().unwrap().replicas = Some(4);
        objects.deployments = vec![Arc::new(scaled)];
        let mut sized = (*objects.replica_sets[0]).clone();
        sized.metadata.annotations = Some([(DESIRED_REPLICAS.to_string(), "2".to_string())].into());
        objects.replica_sets = vec![Arc::new(sized.clone())];
        assert_eq!(
            owed(&objects).as_deref(),
            Some("deployment/web has yet to scale replicaset/web-a: it wants 4 pods, the replica set was sized for 2")
        );
        // Scaled to zero (its pods gone and counted so), an old replica set is no longer the
        // Deployment's to size: the rest of the view is at rest, so the rule alone could object.
        sized.spec.as_mut().unwrap().replicas = Some(0);
        sized.status.as_mut().unwrap().replicas = 0;
        sized.status.as_mut().unwrap().ready_replicas = Some(0);
        sized.status.as_mut().unwrap().available_replicas = Some(0);
        objects.replica_sets = vec![Arc::new(sized)];
        objects.pods.clear();
        objects.slices = vec![slice(&[])];
        let mut emptied = (*deployment(0, 3)).clone();
        emptied.spec.as_mut().unwrap().replicas = Some(4);
        objects.deployments = vec![Arc::new(emptied)];
        assert_eq!(owed(&objects), None);
    }

    #[test]
    fn a_deployment_owes_a_replica_set_of_its_template_until_the_view_shows_one() {
        // The template changed (a new image): the Deployment's status, written once it made the
        // new replica set, arrives before the replica set does.
        let changed = |strategy: &str, paused: bool| {
            let mut d = (*deployment(2, 3)).clone();
            let spec = d.spec.as_mut().unwrap();
            spec.template.spec.as_mut().unwrap().containers[0].image = Some("web:2".into());
            spec.strategy = Some(serde_json::from_value(json!({"type": strategy})).unwrap());
            spec.paused = Some(paused);
            Arc::new(d)
        };
        let mut objects = at_rest();
        objects.deployments = vec![changed("RollingUpdate", false)];
        let owed_new = Some("deployment/web has yet to make a replica set of its template");
        assert_eq!(owed(&objects).as_deref(), owed_new);
        // A paused Deployment makes none.
        objects.deployments = vec![changed("RollingUpdate", true)];
        assert_eq!(owed(&objects), None);
        // Recreate makes it only once the old replica set's pods are gone: while they terminate,
        // it waits on their grace period.
        objects.deployments = vec![changed("Recreate", false)];
        let mut scaled_down = (*replica_set("web-a", 0, 0)).clone();
        scaled_down.status.as_mut().unwrap().ready_replicas = Some(0);
        scaled_down.status.as_mut().unwrap().available_replicas = Some(0);
        objects.replica_sets = vec![Arc::new(scaled_down)];
        let mut d = (*objects.deployments[0]).clone();
        d.status = Some(serde_json::from_value(json!({"observedGeneration": 3})).unwrap());
        objects.deployments = vec![Arc::new(d)];
        for pod in &mut objects.pods {
            let mut terminating = (**pod).clone();
            terminating.metadata.deletion_timestamp = serde_json::from_value(json!("2026-01-01T00:00:00Z")).unwrap();
            terminating.metadata.deletion_grace_period_seconds = Some(30);
            *pod = Arc::new(terminating);
        }
        objects.services.clear();
        objects.slices.clear();
        assert_eq!(owed(&objects), None, "old pods terminating");
        objects.pods.clear();
        assert_eq!(owed(&objects).as_deref(), owed_new, "old pods gone");
    }

    #[test]
    fn a_relabelled_pod_awaits_release_and_a_matching_orphan_adoption() {
        let mut objects = at_rest();
        objects.pods[0] = pod("web-a-1", json!({"app": "web"}), Some("web-a"), true);
        assert_eq!(
            owed(&objects).as_deref(),
            Some("replicaset/web-a has yet to release pod/web-a-1, which no longer matches its selector")
        );
        let mut objects = at_rest();
        objects.pods.push(pod("bare", json!({"app": "web", TEMPLATE_HASH_LABEL: "a"}), None, true));
        assert_eq!(
            owed(&objects).as_deref(),
            Some("replicaset/web-a has yet to adopt pod/bare, an orphan its selector matches")
        );
        // An orphan the selector does not match is left alone (its endpoint aside).
        let mut objects = at_rest();
        objects.pods.push(pod("bare", json!({"app": "other"}), None, true));
        assert_eq!(unfinished(&objects), None);
    }

    #[test]
    fn the_slices_of_a_deleted_service_await_the_garbage_collector() {
        let mut objects = at_rest();
        objects.services.clear();
        assert_eq!(
            owed(&objects).as_deref(),
            Some("the garbage collector has yet to act on endpointslice/web-x: its service web is gone")
        );
        // A Service made again under the same name is another object: the old slices still go.
        let mut again: Service = (*service()).clone();
        again.metadata.uid = Some("uid-svc-2".into());
        objects.services.push(Arc::new(again));
        assert!(owed(&objects).is_some_and(|why| why.contains("endpointslice/web-x")));
        // A slice an Endpoints object controls (as the mirroring controller makes them) goes
        // with the Endpoints, not the Service.
        objects.services.clear();
        let mut mirrored: EndpointSlice = (*slice(&[])).clone();
        let reference = &mut mirrored.metadata.owner_references.as_mut().unwrap()[0];
        reference.kind = "Endpoints".into();
        objects.slices = vec![Arc::new(mirrored.clone())];
        assert_eq!(
            owed(&objects).as_deref(),
            Some("the garbage collector has yet to act on endpointslice/web-x: its endpoints web is gone")
        );
        let endpoints: Endpoints =
            serde_json::from_value(json!({"metadata": {"name": "web", "uid": "uid-svc"}})).unwrap();
        objects.endpoints = vec![Arc::new(endpoints)];
        assert_eq!(owed(&objects), None);
        objects.endpoints.clear();
        // A slice no core Service or Endpoints controls is not this rule's: one of another API's
        // Service kind, one the user keeps.
        let reference = &mut mirrored.metadata.owner_references.as_mut().unwrap()[0];
        reference.kind = "Service".into();
        reference.api_version = "serving.knative.dev/v1".into();
        objects.slices = vec![Arc::new(mirrored)];
        assert_eq!(owed(&objects), None);
        let mut manual: EndpointSlice = (*slice(&[])).clone();
        manual.metadata.owner_references = None;
        manual.metadata.labels.as_mut().unwrap().remove(MANAGED_BY);
        objects.slices = vec![Arc::new(manual)];
        assert_eq!(owed(&objects), None);
    }

    #[test]
    fn a_pod_whose_replica_set_is_gone_awaits_the_garbage_collector() {
        let mut objects = at_rest();
        objects.pods[1] = pod("web-a-2", json!({"app": "web", TEMPLATE_HASH_LABEL: "a"}), Some("web-old"), true);
        objects.slices = vec![slice(&[("web-a-1", true), ("web-a-2", true)])];
        assert_eq!(
            owed(&objects).as_deref(),
            Some("the garbage collector has yet to act on pod/web-a-2: its replicaset web-old is gone")
        );
    }

    #[test]
    fn endpoints_must_list_each_selected_pod_with_its_readiness() {
        let mut objects = at_rest();
        objects.slices = vec![slice(&[("web-a-1", true)])];
        assert_eq!(
            owed(&objects).as_deref(),
            Some("service/web's endpoints have yet to follow its pods (pod/web-a-2)")
        );
        objects.slices = vec![slice(&[("web-a-1", true), ("web-a-2", false)])];
        assert!(unfinished(&objects).is_some());
        // A slice the user keeps is not the controller's to follow.
        objects.slices = vec![slice(&[("web-a-1", true), ("web-a-2", true)])];
        let mut manual: EndpointSlice = (*slice(&[])).clone();
        manual.metadata.labels.as_mut().unwrap().insert(MANAGED_BY.into(), "rehearse.test".into());
        objects.slices.push(Arc::new(manual));
        assert_eq!(unfinished(&objects), None);
    }

    /// A Service without a selector is owed mirrored slices that list its Endpoints' addresses,
    /// ready unless not ready on some port; with a selector, or `skip-mirror`, it is owed none.
    #[test]
    fn a_service_without_a_selector_is_owed_the_addresses_of_its_endpoints() {
        let mut objects = at_rest();
        let mut ext: Service = (*objects.services[0]).clone();
        ext.metadata.name = Some("ext".into());
        ext.metadata.uid = Some("uid-ext".into());
        ext.spec.as_mut().unwrap().selector = None;
        objects.services.push(Arc::new(ext.clone()));
        let endpoints: Endpoints = serde_json::from_value(json!({
            "metadata": {"name": "ext", "uid": "uid-ep"},
            "subsets": [
                {"addresses": [{"ip": "10.1.0.1"}, {"ip": "10.1.0.2"}], "ports": [{"port": 80}]},
                {"addresses": [{"ip": "10.1.0.1"}], "notReadyAddresses": [{"ip": "10.1.0.2"}], "ports": [{"port": 80}]},
            ],
        }))
        .unwrap();
        objects.endpoints = vec![Arc::new(endpoints.clone())];
        assert_eq!(
            owed(&objects).as_deref(),
            Some("service/ext's endpoints have yet to follow endpoints/ext (the EndpointSlice mirroring controller's)")
        );
        let mirrored = |listed: Value| -> Arc<EndpointSlice> {
            object(json!({
                "metadata": {"name": "ext-m", "labels": {"kubernetes.io/service-name": "ext", MANAGED_BY: mirroring::MIRRORING_CONTROLLER},
                             "ownerReferences": [{"apiVersion": "v1", "kind": "Endpoints", "name": "ext", "uid": "uid-ep", "controller": true}]},
                "addressType": "IPv4",
                "endpoints": listed,
            }))
        };
        // 10.1.0.2 is not ready on port 80 in the second subset: not ready there at all.
        let both_ready = json!([{"addresses": ["10.1.0.1"], "conditions": {"ready": true}},
                                {"addresses": ["10.1.0.2"], "conditions": {"ready": true}}]);
        objects.slices.push(mirrored(both_ready));
        assert!(owed(&objects).is_some_and(|why| why.contains("endpoints/ext")));
        let as_mirrored = json!([{"addresses": ["10.1.0.1"], "conditions": {"ready": true}},
                                 {"addresses": ["10.1.0.2"], "conditions": {"ready": false}}]);
        *objects.slices.last_mut().unwrap() = mirrored(as_mirrored);
        assert_eq!(owed(&objects), None);
        // Being deleted, the Endpoints get no new slice: nothing is owed.
        let mut deleting = endpoints.clone();
        deleting.metadata.deletion_timestamp = serde_json::from_value(json!("2026-01-01T00:00:00Z")).unwrap();
        objects.endpoints = vec![Arc::new(deleting)];
        let listed = objects.slices.pop();
        assert_eq!(owed(&objects), None);
        objects.slices.extend(listed);
        // Marked skip-mirror, or given a selector: the slices are owed their removal.
        let mut skipped = endpoints.clone();
        skipped.metadata.labels =
            Some([("endpointslice.kubernetes.io/skip-mirror".to_string(), "true".to_string())].into());
        objects.endpoints = vec![Arc::new(skipped)];
        assert!(owed(&objects).is_some_and(|why| why.contains("endpoints/ext")));
        objects.endpoints = vec![Arc::new(endpoints)];
        let mut selecting = ext;
        selecting.spec.as_mut().unwrap().selector = Some([("app".to_string(), "ext".to_string())].into());
        *objects.services.last_mut().unwrap() = Arc::new(selecting);
        assert!(owed(&objects).is_some_and(|why| why.contains("endpoints/ext")));
        // Their Service gone, the mirroring controller deletes them.
        objects.services.pop();
        assert_eq!(
            owed(&objects).as_deref(),
            Some(
                "the EndpointSlice mirroring controller has yet to delete endpointslice/ext-m: its service ext is gone"
            )
        );
        // Their Endpoints gone too, they await the garbage collector.
        objects.endpoints.clear();
        assert_eq!(
            owed(&objects).as_deref(),
            Some("the garbage collector has yet to act on endpointslice/ext-m: its endpoints ext is gone")
        );
    }

    #[test]
    fn a_service_being_deleted_is_owed_updates_to_its_slices_but_no_new_one() {
        let mut objects = at_rest();
        let mut deleting: Service = (*objects.services[0]).clone();
        deleting.metadata.deletion_timestamp = serde_json::from_value(json!("2026-01-01T00:00:00Z")).unwrap();
        objects.services = vec![Arc::new(deleting)];
        // Finalizers hold it, and its controller still updates its slice.
        objects.slices = vec![slice(&[("web-a-1", true)])];
        assert_eq!(
            owed(&objects).as_deref(),
            Some("service/web's endpoints have yet to follow its pods (pod/web-a-2)")
        );
        // With no slice left it is owed nothing: none is made for a Service being deleted.
        objects.slices = Vec::new();
        assert_eq!(unfinished(&objects), None);
    }

    #[test]
    fn a_finished_pod_is_no_endpoint_whatever_its_restart_policy() {
        // A pod that restarts always ends Failed when evicted, or when its kubelet stops it while
        // finalizers hold it: upstream lists no finished pod.
        let objects = at_rest();
        let mut failed: Pod = (*objects.pods[1]).clone();
        failed.status.get_or_insert_default().phase = Some("Failed".to_string());
        let pods = [&*objects.pods[0], &failed];
        let listed = |endpoints: &[(&str, bool)]| endpoints_behind(&objects.services[0], &pods, &[slice(endpoints)]);
        assert_eq!(listed(&[("web-a-1", true)]), None);
        assert_eq!(
            listed(&[("web-a-1", true), ("web-a-2", false)]).as_deref(),
            Some("service/web's endpoints have yet to follow its pods (pod/web-a-2)")
        );
    }

    #[test]
    fn an_ordered_statefulset_owes_its_next_pod_until_its_status_counts_the_ready_one() {
        let set = |ready: i32| -> Arc<StatefulSet> {
            object(json!({
                "metadata": {"name": "db", "uid": "uid-db", "generation": 1},
                "spec": {"selector": {"matchLabels": {"app": "db"}}, "serviceName": "db", "template": {}},
                "status": {"replicas": 1, "readyReplicas": ready, "observedGeneration": 1},
            }))
        };
        let mut db_0: Pod = (*pod("db-0", json!({"app": "db"}), None, true)).clone();
        db_0.metadata.owner_references = serde_json::from_value(controller("StatefulSet", "db")).unwrap();
        let mut objects = Objects {
            pods: vec![Arc::new(db_0)],
            replica_sets: Vec::new(),
            deployments: Vec::new(),
            daemon_sets: Vec::new(),
            nodes: Vec::new(),
            pods_seen_through: 0,
            stateful_sets: vec![set(0)],
            services: Vec::new(),
            slices: Vec::new(),
            endpoints: Vec::new(),
            daemon_pod_admissions: Vec::new(),
        };
        assert_eq!(
            owed(&objects).as_deref(),
            Some("statefulset/db has yet to count its pods: its status says 1/0 pods/ready, it has 1/1")
        );
        objects.stateful_sets = vec![set(1)];
        assert_eq!(unfinished(&objects), None);
    }

    #[test]
    fn a_stateful_set_not_done_is_at_rest_only_once_the_pod_changes_before_its_status_are_confirmed() {
        // Status written at version 12; the view holds every pod change through version 10.
        let set = |wanted: i32, counted: i32, ready: i32, updated: i32| -> StatefulSet {
            let update_revision = if updated == counted { "db-1" } else { "db-2" };
            serde_json::from_value(json!({
                "metadata": {"name": "db", "uid": "uid-db", "generation": 2, "resourceVersion": "12"},
                "spec": {"replicas": wanted, "selector": {"matchLabels": {"app": "db"}}, "serviceName": "db",
                         "template": {}},
                "status": {"replicas": counted, "readyReplicas": ready, "currentReplicas": counted - updated,
                           "updatedReplicas": updated, "currentRevision": "db-1",
                           "updateRevision": update_revision, "observedGeneration": 2},
            }))
            .unwrap()
        };
        let member = |name: &str| {
            let mut pod: Pod = (*pod(name, json!({"app": "db"}), None, true)).clone();
            pod.metadata.owner_references = serde_json::from_value(controller("StatefulSet", "db")).unwrap();
            Arc::new(pod)
        };
        let mut objects = Objects {
            pods: vec![member("db-0"), member("db-1")],
            replica_sets: Vec::new(),
            deployments: Vec::new(),
            daemon_sets: Vec::new(),
            nodes: Vec::new(),
            pods_seen_through: 10,
            stateful_sets: vec![Arc::new(set(2, 2, 2, 2))],
            services: Vec::new(),
            slices: Vec::new(),
            endpoints: Vec::new(),
            daemon_pod_admissions: Vec::new(),
        };
        assert_eq!(unfinished(&objects), None, "done: every pod made, ready and updated");
        let unconfirmed = |counted: i32, ready: i32, updated: i32, wanted: i32| {
            Some(Owed::PodsUnconfirmed {
                through: 12,
                why: format!(
                    "statefulset/db's status counts {counted} pods, {ready} ready and {updated} updated, of \
                     {wanted}, and the pod changes made before it are not yet confirmed in view"
                ),
            })
        };
        // A rolling update: the controller deleted db-1 and then wrote this status, which counts
        // the pods as they were; the view may not show the deletion yet.
        objects.stateful_sets = vec![Arc::new(set(2, 2, 2, 0))];
        assert_eq!(unfinished(&objects), unconfirmed(2, 2, 0, 2));
        // A scale down: db-1 deleted, the status counts it still.
        objects.stateful_sets = vec![Arc::new(set(1, 2, 2, 2))];
        assert_eq!(unfinished(&objects), unconfirmed(2, 2, 2, 1));
        // An ordered start: db-0 ready, db-1 made just before this status, which counts db-0 alone.
        objects.pods.pop();
        objects.stateful_sets = vec![Arc::new(set(2, 1, 1, 1))];
        assert_eq!(unfinished(&objects), unconfirmed(1, 1, 1, 2));
        // A set being deleted is left to the garbage collector.
        let mut deleted = set(2, 1, 1, 1);
        deleted.metadata.deletion_timestamp = serde_json::from_value(json!("2026-01-01T00:00:00Z")).unwrap();
        objects.stateful_sets = vec![Arc::new(deleted)];
        assert_eq!(unfinished(&objects), None);
        // A fresh list showed the pods through version 12.
        objects.stateful_sets = vec![Arc::new(set(2, 1, 1, 1))];
        objects.pods_seen_through = 12;
        assert_eq!(unfinished(&objects), None);
    }

    #[test]
    fn a_statefulset_adopts_only_pods_named_as_its_members() {
        assert!(is_member_name("db-0", "db"));
        assert!(is_member_name("db-12", "db"));
        assert!(!is_member_name("db-x", "db"));
        assert!(!is_member_name("db-", "db"));
        assert!(!is_member_name("dbx-0", "db"));
    }

    /// A daemon pod: on its node and ready, or (not yet scheduled) pinned to it by its affinity.
    fn daemon_pod(name: &str, node: &str, scheduled: bool) -> Arc<Pod> {
        let pin = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}}});
        let ready = if scheduled { "True" } else { "False" };
        object(json!({
            "metadata": {"name": name, "uid": format!("uid-{name}"), "labels": {"app": "agent"},
                         "ownerReferences": controller("DaemonSet", "agent"),
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"nodeName": if scheduled { node } else { "" }, "affinity": pin},
            "status": {"phase": if scheduled { "Running" } else { "Pending" },
                       "conditions": [{"type": "Ready", "status": ready}]},
        }))
    }

    /// `daemon_set`, its status counting `ready` of its nodes' pods ready.
    fn daemon_set_with_ready(version: u64, scheduled: i32, desired: i32, ready: i32) -> Arc<DaemonSet> {
        let mut ds = (*daemon_set(version, scheduled, desired)).clone();
        ds.status.as_mut().unwrap().number_ready = ready;
        Arc::new(ds)
    }

    fn daemon_set(version: u64, scheduled: i32, desired: i32) -> Arc<DaemonSet> {
        object(json!({
            "metadata": {"name": "agent", "uid": "uid-agent", "generation": 1, "resourceVersion": version.to_string()},
            "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": {}},
            "status": {"currentNumberScheduled": scheduled, "desiredNumberScheduled": desired,
                       "numberMisscheduled": 0, "numberReady": scheduled, "observedGeneration": 1,
                       "updatedNumberScheduled": scheduled, "numberAvailable": scheduled},
        }))
    }

    /// A daemon set with a pod on each of two workers, counted; the view holds every pod change
    /// through version 10.
    fn daemons_at_rest() -> Objects {
        let node = |name: &str| object(json!({"metadata": {"name": name}}));
        Objects {
            pods: vec![daemon_pod("agent-1", "worker", true), daemon_pod("agent-2", "worker2", true)],
            replica_sets: Vec::new(),
            deployments: Vec::new(),
            daemon_sets: vec![daemon_set(9, 2, 2)],
            nodes: vec![node("control-plane"), node("worker"), node("worker2")],
            pods_seen_through: 10,
            stateful_sets: Vec::new(),
            services: Vec::new(),
            slices: Vec::new(),
            endpoints: Vec::new(),
            daemon_pod_admissions: Vec::new(),
        }
    }

    #[test]
    fn a_daemon_set_counting_the_nodes_its_pods_are_on_is_at_rest() {
        assert_eq!(unfinished(&daemons_at_rest()), None);
        // A pod not yet scheduled counts on the node its affinity pins it to (not ready).
        let mut objects = daemons_at_rest();
        objects.pods[1] = daemon_pod("agent-2", "worker2", false);
        objects.daemon_sets = vec![daemon_set_with_ready(9, 2, 2, 1)];
        assert_eq!(unfinished(&objects), None);
    }

    /// After an `undo`, the old template's pods count as ready while they terminate; once they
    /// are gone, the new ones stand on the same nodes, not ready yet, under that status.
    #[test]
    fn a_daemon_set_is_at_rest_only_once_its_status_counts_its_nodes_first_pods_ready() {
        let mut objects = daemons_at_rest();
        objects.pods = vec![daemon_pod("agent-3", "worker", false), daemon_pod("agent-4", "worker2", false)];
        assert_eq!(
            owed(&objects).as_deref(),
            Some(
                "daemonset/agent has yet to count its ready pods: its status says 2, 0 of its nodes' first pods are ready"
            )
        );
        objects.daemon_sets = vec![daemon_set_with_ready(9, 2, 2, 0)];
        assert_eq!(unfinished(&objects), None);

        // Two pods on a node: the scheduled one counts, then the oldest, then by name.
        let mut objects = daemons_at_rest();
        let mut newer = (*daemon_pod("agent-0", "worker", false)).clone();
        newer.spec.as_mut().unwrap().node_name = Some("worker".into());
        newer.metadata.creation_timestamp = Some(Time("2026-01-01T00:00:05Z".parse().unwrap()));
        objects.pods.push(Arc::new(newer.clone()));
        assert_eq!(unfinished(&objects), None, "the older, ready pod counts");
        newer.metadata.creation_timestamp = objects.pods[0].metadata.creation_timestamp.clone();
        objects.pods[2] = Arc::new(newer);
        assert!(
            owed(&objects).is_some_and(|why| why.contains("its status says 2, 1 of its nodes' first pods are ready"))
        );
        // A node misscheduled: the view cannot tell the nodes it counts from the others.
        // (Short of a pod on a node it should run on: at rest once its pods are known refused.)
        let mut misscheduled = (*daemon_set(9, 2, 2)).clone();
        misscheduled.status.as_mut().unwrap().number_misscheduled = 1;
        misscheduled.status.as_mut().unwrap().current_number_scheduled = 1;
        objects.daemon_sets = vec![Arc::new(misscheduled)];
        objects.daemon_pod_admissions =
            vec![DaemonPodAdmission { uid: "uid-agent".to_string(), version: 9, refused: Some("refused".to_string()) }];
        assert_eq!(unfinished(&objects), None);

        // A scheduled pod comes before an older one not yet scheduled.
        let mut objects = daemons_at_rest();
        let mut older = (*daemon_pod("agent-0", "worker", false)).clone();
        older.metadata.creation_timestamp = Some(Time("2025-12-31T00:00:00Z".parse().unwrap()));
        objects.pods.push(Arc::new(older));
        assert_eq!(unfinished(&objects), None, "the scheduled, ready pod counts");
    }

    #[test]
    fn a_daemon_pod_deleted_is_owed_a_replacement_until_the_status_counts_again() {
        let mut objects = daemons_at_rest();
        objects.pods.pop();
        assert_eq!(
            owed(&objects).as_deref(),
            Some("daemonset/agent has yet to count its pods' nodes: its status says 2, its pods are on 1")
        );
        // A pod on a node that has left the cluster is not counted, there or in the status.
        objects.pods.push(daemon_pod("agent-3", "gone", true));
        assert!(owed(&objects).is_some());
    }

    #[test]
    fn a_daemon_set_short_of_pods_is_at_rest_only_once_its_pods_are_confirmed_and_refused() {
        let mut objects = daemons_at_rest();
        objects.pods.pop();
        // Written (version 12) after the last pod change the view holds: a pod made just before
        // may be on its way.
        objects.daemon_sets = vec![daemon_set(12, 1, 2)];
        assert_eq!(
            unfinished(&objects),
            Some(Owed::PodsUnconfirmed {
                through: 12,
                why: "daemonset/agent's status counts pods on 1 of 2 nodes, and the pods made before it are not yet \
                      confirmed in view"
                    .to_string()
            })
        );
        // A fresh list showed the pods complete through version 12: no pod is on its way. Either
        // the pods are refused, or a pod went while the status was being counted and the
        // controller has yet to replace it.
        objects.pods_seen_through = 12;
        assert_eq!(
            unfinished(&objects),
            Some(Owed::AdmissionUnjudged {
                uid: "uid-agent".to_string(),
                version: 12,
                why: "daemonset/agent's status counts pods on 1 of 2 nodes, and whether the API admits its pods is \
                      yet to be asked"
                    .to_string()
            })
        );
        let answer = |version: u64, refused: Option<&str>| DaemonPodAdmission {
            uid: "uid-agent".to_string(),
            version,
            refused: refused.map(str::to_string),
        };
        // An answer about the daemon set as it was before says nothing of it now.
        objects.daemon_pod_admissions = vec![answer(11, Some("error looking up service account"))];
        assert!(matches!(unfinished(&objects), Some(Owed::AdmissionUnjudged { version: 12, .. })));
        objects.daemon_pod_admissions = vec![answer(12, None)];
        assert_eq!(
            owed(&objects).as_deref(),
            Some(
                "daemonset/agent's status counts pods on 1 of 2 nodes, and the API admits its pods (a dry run said \
                 so): its controller has yet to make them"
            )
        );
        objects.daemon_pod_admissions = vec![answer(12, Some("error looking up service account"))];
        assert_eq!(unfinished(&objects), None, "refused");
        // Not short: no question to ask.
        objects.pods = daemons_at_rest().pods;
        objects.daemon_sets = vec![daemon_set(12, 2, 2)];
        objects.daemon_pod_admissions.clear();
        assert_eq!(unfinished(&objects), None);
    }

    #[test]
    fn a_daemon_set_rolling_out_is_at_rest_only_once_the_pod_changes_before_its_status_are_confirmed() {
        // Its controller deleted an old pod and then wrote its status (version 12), which reads
        // the same before and after the deletion: the view may hold the pod as it was.
        let mut objects = daemons_at_rest();
        let mut rolling = (*daemon_set(12, 2, 2)).clone();
        rolling.status.as_mut().unwrap().updated_number_scheduled = Some(1);
        objects.daemon_sets = vec![Arc::new(rolling.clone())];
        let unconfirmed = |updated: i32, available: i32| {
            Some(Owed::PodsUnconfirmed {
                through: 12,
                why: format!(
                    "daemonset/agent's status counts updated pods on {updated} and available ones on {available} of 2 \
                     nodes, and the pod changes made before it are not yet confirmed in view"
                ),
            })
        };
        assert_eq!(unfinished(&objects), unconfirmed(1, 2));
        // Every node updated, one pod not yet available.
        rolling.status.as_mut().unwrap().updated_number_scheduled = Some(2);
        rolling.status.as_mut().unwrap().number_available = Some(1);
        objects.daemon_sets = vec![Arc::new(rolling.clone())];
        assert_eq!(unfinished(&objects), unconfirmed(2, 1));
        // A surge: the status counts every node updated and available, and a node has two pods.
        rolling.status.as_mut().unwrap().number_available = Some(2);
        objects.daemon_sets = vec![Arc::new(rolling)];
        assert_eq!(unfinished(&objects), None, "done");
        objects.pods.push(daemon_pod("agent-3", "worker2", true));
        assert_eq!(unfinished(&objects), unconfirmed(2, 2));
        // A fresh list showed the pods through version 12: the old pod waits to go.
        objects.pods_seen_through = 12;
        assert_eq!(unfinished(&objects), None);
    }

    #[test]
    fn a_pod_deleted_with_no_grace_period_is_owed_its_removal() {
        let mut objects = daemons_at_rest();
        let mut deleted = (*objects.pods[1]).clone();
        deleted.metadata.deletion_timestamp = serde_json::from_value(json!("2026-01-01T00:00:00Z")).unwrap();
        deleted.metadata.deletion_grace_period_seconds = Some(0);
        objects.pods[1] = Arc::new(deleted.clone());
        assert_eq!(
            owed(&objects).as_deref(),
            Some("the kubelet has yet to remove pod/agent-2, deleted with no grace period")
        );
        // A finalizer holds it (whoever set it removes it), and a grace period makes it wait.
        deleted.metadata.finalizers = Some(vec!["example.com/hold".to_string()]);
        objects.pods[1] = Arc::new(deleted.clone());
        assert_eq!(unfinished(&objects), None);
        deleted.metadata.finalizers = None;
        deleted.metadata.deletion_grace_period_seconds = Some(30);
        objects.pods[1] = Arc::new(deleted.clone());
        assert_eq!(unfinished(&objects), None);
        // Unless its node's kubelet ignores grace periods.
        objects.nodes[2] = object(json!({"metadata": {"name": "worker2", "annotations": {PACE_ANNOTATION: "fast"}}}));
        assert_eq!(
            owed(&objects).as_deref(),
            Some("the kubelet of node/worker2 has yet to remove pod/agent-2: it plays pods at the fast pace")
        );
        // A finalizer holds the pod there: its kubelet stops it at once, and it stays, Failed.
        deleted.metadata.finalizers = Some(vec!["example.com/hold".to_string()]);
        objects.pods[1] = Arc::new(deleted.clone());
        assert_eq!(
            owed(&objects).as_deref(),
            Some("the kubelet of node/worker2 has yet to stop pod/agent-2: it plays pods at the fast pace")
        );
        deleted.status.get_or_insert_default().phase = Some("Failed".to_string());
        assert_eq!(removal_owed(&deleted, &objects.nodes), None);
    }
}
