//! Each scenario runs in a namespace it creates and labels as its own, and deletes afterwards.
//! rehearse never deletes a namespace it did not create (it deletes by uid).
//!
//! A run that is killed outright (SIGKILL, an OOM kill, a lost machine) cannot clean up, so each
//! namespace also records which run made it and holds a lease that the run renews: `rehearse
//! clean` ([`super::lease`]) reclaims only namespaces labelled as rehearse's whose lease expired
//! or whose run's process has ended on the machine it runs on.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};

/// The label that marks a namespace as made by rehearse.
pub const OWNER_LABEL: &str = "app.kubernetes.io/managed-by";
pub const OWNER_VALUE: &str = "rehearse";
/// The label naming the run that made the namespace.
pub const RUN_LABEL: &str = "rehearse.dev/run";
/// Who holds the namespace's lease: host and process of the run.
pub const HOLDER_ANNOTATION: &str = "rehearse.dev/lease-holder";
/// When the run last renewed the lease (RFC 3339, the run's clock).
pub const RENEWED_ANNOTATION: &str = "rehearse.dev/lease-renewed";
/// How long the lease lasts after each renewal, in seconds.
pub const DURATION_ANNOTATION: &str = "rehearse.dev/lease-seconds";
/// The run's process, as [`super::liveness`] names it: on the run's own machine, `clean` knows
/// at once that a killed run is gone.
pub const PROCESS_ANNOTATION: &str = "rehearse.dev/lease-process";

/// Set on a namespace kept by `--keep`, which holds no lease.
pub const KEPT_ANNOTATION: &str = "rehearse.dev/kept";

/// The default lease: renewed every third of it, so two renewals can fail before it expires.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// How long creating a scenario's namespace keeps trying while the API server is away.
const CREATE_BUDGET: Duration = Duration::from_secs(30);

/// This run of rehearse, as the namespaces it makes record it.
#[derive(Clone, Debug)]
pub struct RunIdentity {
    /// A random id, the value of [`RUN_LABEL`].
    pub id: String,
    /// `host/pid`, so a person reading a namespace knows where its run lives.
    pub holder: String,
    /// The process, as [`PROCESS_ANNOTATION`] records it; None where it cannot be told.
    pub process: Option<String>,
    pub lease: Duration,
}

impl RunIdentity {
    pub fn new(lease: Duration) -> RunIdentity {
        let host = hostname::get().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "unknown-host".into());
        RunIdentity {
            id: format!("{:08x}{:04x}", rand_u32(), rand_u32() & 0xffff),
            holder: format!("{host}/{}", std::process::id()),
            process: super::liveness::this_process(),
            lease,
        }
    }

    /// The lease annotations as of now.
    pub fn lease_annotations(&self) -> serde_json::Value {
        let mut annotations = serde_json::json!({
            HOLDER_ANNOTATION: self.holder,
            RENEWED_ANNOTATION: k8s_openapi::jiff::Timestamp::now().to_string(),
            DURATION_ANNOTATION: self.lease.as_secs().to_string(),
        });
        if let Some(process) = &self.process {
            annotations[PROCESS_ANNOTATION] = process.as_str().into();
        }
        annotations
    }
}

/// A DNS label made from the scenario name, with a random suffix so parallel runs never collide.
pub fn name_for(scenario: &str) -> String {
    let mut slug: String =
        scenario.to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    while slug.contains("--") {
        slug = slug.replace("--", "-");
    }
    let slug: String = slug.trim_matches('-').chars().take(40).collect();
    let slug = slug.trim_end_matches('-');
    let suffix: u32 = rand_u32();
    format!("rehearse-{}{:08x}", if slug.is_empty() { String::new() } else { format!("{slug}-") }, suffix)
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher
        .write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    hasher.finish() as u32
}

/// A namespace rehearse created: its name, and the uid that tells it apart from any namespace
/// given the same name later.
#[derive(Clone, Debug)]
pub struct OwnNamespace {
    pub name: String,
    pub uid: String,
}

/// The namespaces of this run that exist right now (created, not yet deleted): what a lease
/// renewal touches, and what an interrupted run names as left behind.
#[derive(Clone, Default)]
pub struct LiveNamespaces(Arc<Mutex<BTreeMap<String, OwnNamespace>>>);

impl LiveNamespaces {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, OwnNamespace>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn insert(&self, namespace: &OwnNamespace) {
        self.lock().insert(namespace.name.clone(), namespace.clone());
    }

    pub fn remove(&self, namespace: &OwnNamespace) {
        self.lock().remove(&namespace.name);
    }

    pub fn all(&self) -> Vec<OwnNamespace> {
        self.lock().values().cloned().collect()
    }
}

/// Whether an error means the API server is away or failing (worth trying again) rather than
/// refusing the request.
fn is_outage(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code == 429 || status.code >= 500,
        _ => true,
    }
}

/// Creates the scenario's namespace, labelled with the run and holding its lease. While the API
/// server is away it keeps trying (for up to 30 s); a create whose answer was lost and that
/// did happen is recognised by its run label and taken as done.
pub async fn create(client: &Client, scenario: &str, run: &RunIdentity) -> Result<OwnNamespace, kube::Error> {
    let name = name_for(scenario);
    let namespace: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": name,
            "labels": {OWNER_LABEL: OWNER_VALUE, RUN_LABEL: run.id},
            "annotations": run.lease_annotations(),
        }
    }))
    .expect("a valid namespace");
    let api = Api::<Namespace>::all(client.clone());
    let give_up_at = tokio::time::Instant::now() + CREATE_BUDGET;
    let mut pause = Duration::from_millis(250);
    loop {
        let error = match api.create(&PostParams::default(), &namespace).await {
            Ok(created) => return Ok(OwnNamespace { name, uid: created.metadata.uid.unwrap_or_default() }),
            Err(error) => error,
        };
        match &error {
            kube::Error::Api(status) if status.code == 409 => {
                // An earlier attempt got through and its answer was lost: ours if it has our run.
                if let Some(existing) = api.get_opt(&name).await?
                    && existing.metadata.labels.as_ref().and_then(|l| l.get(RUN_LABEL)) == Some(&run.id)
                {
                    return Ok(OwnNamespace { name, uid: existing.metadata.uid.unwrap_or_default() });
                }
                return Err(error);
            }
            error if is_outage(error) && tokio::time::Instant::now() + pause < give_up_at => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(4));
            }
            _ => return Err(error),
        }
    }
}

/// Marks a namespace kept by `--keep`: its lease is removed (so `rehearse clean` never deletes
/// it) and [`KEPT_ANNOTATION`] says why.
pub async fn keep(client: &Client, namespace: &OwnNamespace) -> Result<(), kube::Error> {
    let patch = serde_json::json!({"metadata": {"uid": namespace.uid, "annotations": {
        KEPT_ANNOTATION: "kept by `rehearse run --keep`; delete it with kubectl when done",
        HOLDER_ANNOTATION: null, RENEWED_ANNOTATION: null, DURATION_ANNOTATION: null, PROCESS_ANNOTATION: null,
    }}});
    let api = Api::<Namespace>::all(client.clone());
    api.patch(&namespace.name, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch)).await.map(|_| ())
}

/// Deletes the namespace rehearse created, and only that one: the uid precondition makes the API
/// refuse to delete any other namespace that has the same name by now. Gone already is fine.
/// (The transport retries the delete while the API server is away.)
pub async fn delete(client: &Client, namespace: &OwnNamespace) -> Result<(), kube::Error> {
    let params = DeleteParams {
        preconditions: Some(Preconditions { uid: Some(namespace.uid.clone()), resource_version: None }),
        ..DeleteParams::background()
    };
    match Api::<Namespace>::all(client.clone()).delete(&namespace.name, &params).await {
        Ok(_) => Ok(()),
        // 404: gone already; 409: the name now belongs to a namespace rehearse did not make.
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => Ok(()),
        Err(error) => Err(error),
    }
}

/// The objects whose finalizers will hold the namespace once it is deleted, as `kind/name
/// (finalizers)` sorted, then the pods by role: those set by someone other than Kubernetes,
/// whose own controllers remove theirs as the namespace empties. Read from the view as the last step left
/// it; said, not acted on: a finalizer is its setter's to remove.
pub fn held_by_finalizers(
    view: &super::view::View,
    variables: &std::collections::HashMap<String, String>,
) -> Vec<String> {
    use kube::Resource;
    fn held<K: Resource>(kind: &str, objects: Vec<Arc<K>>) -> impl Iterator<Item = String> {
        let kind = kind.to_string();
        objects.into_iter().filter_map(move |object| held_entry(&kind, object.meta()))
    }
    // Pods by their role, counted (`2 × pod of replicaset/web-{hash} (example.com/hold)`): a
    // template's finalizer holds every pod made from it, under generated names.
    let pods = view.pods.state().into_iter().filter_map(|pod| {
        let foreign = foreign_finalizers(&pod.metadata)?;
        Some(format!("{} ({foreign})", super::describe::pod(&pod, variables)))
    });
    let mut found: Vec<String> = held("deployment", view.deployments.state())
        .chain(held("daemonset", view.daemon_sets.state()))
        .chain(held("statefulset", view.stateful_sets.state()))
        .chain(held("replicaset", view.replica_sets.state()))
        .chain(held("service", view.services.state()))
        .chain(held("endpointslice", view.slices.state()))
        .collect();
    found.sort();
    found.extend(super::describe::counted(pods));
    found
}

/// The objects of other kinds (a ConfigMap, a Job) the scenario applied with finalizers of its
/// own, as they are now: the view does not watch them, so each is looked up. One that cannot be
/// looked up is left out: this is a warning, and the namespace's deletion says the rest.
pub async fn held_elsewhere(
    client: &Client,
    resources: &super::apply::Resources,
    namespace: &str,
    applied: &[(String, String, String)],
) -> Vec<String> {
    let mut found = Vec::new();
    for (api_version, kind, name) in applied {
        let Ok(api) = resources.api(client, namespace, api_version, kind).await else { continue };
        if let Ok(Some(object)) = api.get_opt(name).await
            && let Some(entry) = held_entry(&kind.to_ascii_lowercase(), &object.metadata)
        {
            found.push(entry);
        }
    }
    found.sort();
    found
}

/// `kind/name (finalizers)` when the object carries finalizers Kubernetes would not remove.
fn held_entry(kind: &str, meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<String> {
    let foreign = foreign_finalizers(meta)?;
    Some(format!("{kind}/{} ({foreign})", meta.name.as_deref().unwrap_or("")))
}

/// The object's finalizers that Kubernetes' own controllers would not remove, comma-separated.
pub fn foreign_finalizers(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<String> {
    let foreign: Vec<&str> =
        meta.finalizers.iter().flatten().map(String::as_str).filter(|f| !is_kubernetes_own(f)).collect();
    (!foreign.is_empty()).then(|| foreign.join(", "))
}

/// Whether a finalizer is one Kubernetes' own controllers set and remove: the garbage
/// collector's (`orphan`, `foregroundDeletion`) or one in a `kubernetes.io` or `k8s.io` domain.
/// Another name without a domain (`hold`, or `kubernetes`, which only a namespace's spec gives a
/// meaning) is removed by nobody.
fn is_kubernetes_own(finalizer: &str) -> bool {
    let Some((domain, _)) = finalizer.split_once('/') else {
        return matches!(finalizer, "orphan" | "foregroundDeletion");
    };
    ["kubernetes.io", "k8s.io"].iter().any(|own| domain == *own || domain.ends_with(&format!(".{own}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_names_are_dns_labels() {
        let name = name_for("Remove a pod from the load balancer!! (again)");
        assert!(name.starts_with("rehearse-remove-a-pod-from-the-load-balancer-"), "{name}");
        assert!(name.len() <= 63);
        assert!(name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
        assert_ne!(name_for("x"), name_for("x"));
        assert!(name_for("").starts_with("rehearse-"));
    }

    #[test]
    fn a_run_names_its_host_and_process_and_a_label_safe_id() {
        let run = RunIdentity::new(Duration::from_secs(60));
        assert!(run.holder.ends_with(&format!("/{}", std::process::id())), "{}", run.holder);
        assert_eq!(run.id.len(), 12);
        assert!(run.id.chars().all(|c| c.is_ascii_hexdigit()));
        let annotations = run.lease_annotations();
        assert_eq!(annotations[DURATION_ANNOTATION], "60");
        #[cfg(target_os = "linux")]
        assert_eq!(annotations[PROCESS_ANNOTATION], run.process.expect("Linux's /proc names this process"));
        assert!(annotations[RENEWED_ANNOTATION].as_str().unwrap().parse::<k8s_openapi::jiff::Timestamp>().is_ok());
    }

    #[test]
    fn only_a_finalizer_kubernetes_does_not_remove_holds_a_namespace() {
        for own in ["orphan", "foregroundDeletion", "kubernetes.io/pvc-protection"] {
            assert!(is_kubernetes_own(own), "{own}");
        }
        for own in ["batch.kubernetes.io/job-tracking", "service.kubernetes.io/load-balancer-cleanup", "x.k8s.io/y"] {
            assert!(is_kubernetes_own(own), "{own}");
        }
        for foreign in ["example.com/hold", "notkubernetes.io/x", "kubernetes.io.example.com/x", "hold", "kubernetes"] {
            assert!(!is_kubernetes_own(foreign), "{foreign}");
        }
    }
}
