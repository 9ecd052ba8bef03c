//! Leases on scenario namespaces: a running `rehearse run` renews them; `rehearse clean`
//! reclaims namespaces whose run died without cleaning up (SIGKILL, an OOM kill, a lost machine).
//!
//! The lease lives in the namespace's own annotations rather than in a Lease object inside it, so
//! that it is created with the namespace in one write, and so that `clean` can delete a namespace
//! on the condition that nobody renewed it since it was judged expired (a delete precondition
//! on the namespace's resourceVersion).

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, Preconditions};

use super::liveness::Liveness;
use super::namespace::{
    DURATION_ANNOTATION, HOLDER_ANNOTATION, KEPT_ANNOTATION, LiveNamespaces, OWNER_LABEL, OWNER_VALUE,
    PROCESS_ANNOTATION, RENEWED_ANNOTATION, RUN_LABEL, RunIdentity,
};

/// Renews the lease of every live namespace of this run, every third of the lease, until
/// dropped. A renewal that fails is tried again at the next round; the namespace's own watch
/// (see [`super::view`]) notices if it was deleted or replaced.
pub async fn renew_forever(client: Client, run: RunIdentity, live: LiveNamespaces) {
    let api = Api::<Namespace>::all(client);
    let mut every = tokio::time::interval(run.lease / 3);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        every.tick().await;
        for namespace in live.all() {
            // The uid in the patch makes the API refuse (422, uid immutable) to touch a namespace
            // of the same name that is not this run's.
            let patch = serde_json::json!({
                "metadata": {"uid": namespace.uid, "annotations": run.lease_annotations()}
            });
            let _ = api.patch(&namespace.name, &PatchParams::default(), &Patch::Merge(&patch)).await;
        }
    }
}

/// What `clean` found a namespace to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseState {
    /// The lease is current: a run is (or was, less than a lease ago) using it.
    Held { holder: String, run: String, expires_in: Duration },
    /// The lease expired: its run is gone.
    Expired { holder: String, run: String, expired_for: Duration },
    /// The lease holds, but its run's process, on the machine `clean` runs on, has ended.
    Abandoned { holder: String, run: String },
    /// Labelled as rehearse's but with no readable lease: left for a person to judge.
    NoLease,
    /// Kept by `rehearse run --keep` for a person to look at.
    Kept,
    /// Being deleted already.
    Terminating,
}

/// Judges a namespace's lease at `now`, asking `liveness` about the process it names.
pub fn lease_state(namespace: &Namespace, now: Timestamp, liveness: impl Fn(&str) -> Liveness) -> LeaseState {
    if namespace.metadata.deletion_timestamp.is_some() {
        return LeaseState::Terminating;
    }
    let annotations = namespace.metadata.annotations.clone().unwrap_or_default();
    if annotations.contains_key(KEPT_ANNOTATION) {
        return LeaseState::Kept;
    }
    let run = namespace.metadata.labels.as_ref().and_then(|l| l.get(RUN_LABEL)).cloned().unwrap_or_default();
    let holder = annotations.get(HOLDER_ANNOTATION).cloned().unwrap_or_default();
    let renewed = annotations.get(RENEWED_ANNOTATION).and_then(|t| t.parse::<Timestamp>().ok());
    let seconds = annotations.get(DURATION_ANNOTATION).and_then(|s| s.parse::<u64>().ok());
    let (Some(renewed), Some(seconds)) = (renewed, seconds) else { return LeaseState::NoLease };
    let age = now.duration_since(renewed);
    let lease = k8s_openapi::jiff::SignedDuration::from_secs(seconds as i64);
    if age < lease {
        if annotations.get(PROCESS_ANNOTATION).is_some_and(|process| liveness(process) == Liveness::Gone) {
            return LeaseState::Abandoned { holder, run };
        }
        let left = (lease - age).unsigned_abs();
        LeaseState::Held { holder, run, expires_in: left }
    } else {
        LeaseState::Expired { holder, run, expired_for: (age - lease).unsigned_abs() }
    }
}

/// One namespace `clean` looked at, and what it did.
#[derive(Debug, Clone)]
pub struct Cleaned {
    pub name: String,
    pub state: LeaseState,
    pub outcome: CleanOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CleanOutcome {
    Deleted,
    /// Expired, but `--dry-run`.
    WouldDelete,
    Kept,
    /// Renewed or changed between the look and the delete: left alone.
    ChangedMeanwhile,
    Failed(String),
}

/// Deletes the namespaces labelled as rehearse's whose lease expired or whose run's process is
/// known to have ended, each on the condition that
/// it is still the very namespace (uid) in the very state (resourceVersion) that was judged.
/// Namespaces without the label are never listed, so never touched.
pub async fn clean(client: &Client, dry_run: bool) -> Result<Vec<Cleaned>, kube::Error> {
    let api = Api::<Namespace>::all(client.clone());
    let listed = api.list(&ListParams::default().labels(&format!("{OWNER_LABEL}={OWNER_VALUE}"))).await?;
    let now = Timestamp::now();
    let mut report = Vec::new();
    for namespace in listed.items {
        let name = namespace.metadata.name.clone().unwrap_or_default();
        let state = lease_state(&namespace, now, super::liveness::of);
        let outcome = match &state {
            LeaseState::Expired { .. } | LeaseState::Abandoned { .. } if dry_run => CleanOutcome::WouldDelete,
            LeaseState::Expired { .. } | LeaseState::Abandoned { .. } => {
                let params = DeleteParams {
                    preconditions: Some(Preconditions {
                        uid: namespace.metadata.uid.clone(),
                        resource_version: namespace.metadata.resource_version.clone(),
                    }),
                    ..DeleteParams::background()
                };
                match api.delete(&name, &params).await {
                    Ok(_) => CleanOutcome::Deleted,
                    Err(kube::Error::Api(status)) if status.code == 409 || status.code == 404 => {
                        CleanOutcome::ChangedMeanwhile
                    }
                    Err(error) => CleanOutcome::Failed(crate::cluster::transport::describe(&error)),
                }
            }
            _ => CleanOutcome::Kept,
        };
        report.push(Cleaned { name, state, outcome });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn namespace(annotations: serde_json::Value, terminating: bool) -> Namespace {
        let mut value = serde_json::json!({
            "metadata": {"name": "rehearse-x", "labels": {RUN_LABEL: "run1"}, "annotations": annotations}
        });
        if terminating {
            value["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z".into();
        }
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_lease_holds_for_its_duration_after_the_last_renewal() {
        let now: Timestamp = "2026-01-01T00:01:00Z".parse().unwrap();
        let lease = |renewed: &str| {
            namespace(
                serde_json::json!({HOLDER_ANNOTATION: "h/1", RENEWED_ANNOTATION: renewed, DURATION_ANNOTATION: "60"}),
                false,
            )
        };
        assert_eq!(
            lease_state(&lease("2026-01-01T00:00:30Z"), now, unknown),
            LeaseState::Held { holder: "h/1".into(), run: "run1".into(), expires_in: Duration::from_secs(30) }
        );
        assert_eq!(
            lease_state(&lease("2026-01-01T00:00:00Z"), now, unknown),
            LeaseState::Expired { holder: "h/1".into(), run: "run1".into(), expired_for: Duration::ZERO }
        );
        assert!(matches!(lease_state(&lease("2025-12-31T23:00:00Z"), now, unknown), LeaseState::Expired { .. }));
    }

    fn unknown(_: &str) -> Liveness {
        Liveness::Unknown
    }

    #[test]
    fn a_held_lease_whose_process_has_ended_here_is_abandoned_and_only_then() {
        let now: Timestamp = "2026-01-01T00:01:00Z".parse().unwrap();
        let lease = |renewed: &str| {
            let annotations = serde_json::json!({HOLDER_ANNOTATION: "h/1", RENEWED_ANNOTATION: renewed,
                DURATION_ANNOTATION: "60", PROCESS_ANNOTATION: "boot/4026531836/1/77"});
            namespace(annotations, false)
        };
        let asked = std::cell::RefCell::new(Vec::new());
        let gone = |process: &str| {
            asked.borrow_mut().push(process.to_string());
            Liveness::Gone
        };
        assert_eq!(
            lease_state(&lease("2026-01-01T00:00:30Z"), now, gone),
            LeaseState::Abandoned { holder: "h/1".into(), run: "run1".into() }
        );
        assert_eq!(asked.borrow().as_slice(), ["boot/4026531836/1/77"]);
        assert!(matches!(
            lease_state(&lease("2026-01-01T00:00:30Z"), now, |_| Liveness::Running),
            LeaseState::Held { .. }
        ));
        assert!(matches!(lease_state(&lease("2026-01-01T00:00:30Z"), now, unknown), LeaseState::Held { .. }));
        // Expired is expired, whatever the process.
        assert!(matches!(lease_state(&lease("2026-01-01T00:00:00Z"), now, gone), LeaseState::Expired { .. }));
        // No process recorded (a run where /proc could not tell): the lease alone decides.
        let without = namespace(
            serde_json::json!({HOLDER_ANNOTATION: "h/1", RENEWED_ANNOTATION: "2026-01-01T00:00:30Z", DURATION_ANNOTATION: "60"}),
            false,
        );
        assert!(matches!(lease_state(&without, now, gone), LeaseState::Held { .. }));
    }

    #[test]
    fn no_readable_lease_and_terminating_namespaces_are_not_expired() {
        let now = Timestamp::now();
        assert_eq!(lease_state(&namespace(serde_json::json!({}), false), now, unknown), LeaseState::NoLease);
        let garbled = serde_json::json!({RENEWED_ANNOTATION: "yesterday", DURATION_ANNOTATION: "60"});
        assert_eq!(lease_state(&namespace(garbled, false), now, unknown), LeaseState::NoLease);
        assert_eq!(lease_state(&namespace(serde_json::json!({}), true), now, unknown), LeaseState::Terminating);
        let kept = serde_json::json!({KEPT_ANNOTATION: "kept"});
        assert_eq!(lease_state(&namespace(kept, false), now, unknown), LeaseState::Kept);
    }
}
