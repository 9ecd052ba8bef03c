//! The rollout verbs, as kubectl's `rollout` commands do them: `restart`, `pause`, `resume` and
//! `undo`. kubectl's own refusals (a paused Deployment, no such revision) are made here, before
//! anything is sent, so `expect-refused` accepts them.

use std::collections::BTreeMap;
use std::sync::Arc;

use json_patch::PatchOperation;
use json_patch::jsonptr::Pointer;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams, Patch};

use super::steps::{count, merge_patch, patch_object};
use super::{Context, RefusedBy, StepError};
use crate::model::{Kind, ObjectRef};
use crate::syntax::ast::Count;

/// The annotation `kubectl rollout restart` stamps on a pod template with the time: the template
/// changes, so its controller rolls every pod out again.
const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// `kubectl rollout restart`: refused for a paused Deployment, as kubectl refuses it; otherwise
/// the template is stamped with the cluster's time, to the second as kubectl writes it.
pub(super) async fn restart(context: &mut Context<'_>, target: &ObjectRef) -> Result<String, StepError> {
    let kind = target.kind.unwrap_or(Kind::Deployment);
    let name = &target.name.value;
    let state = rollout_state(context, kind, name);
    if state.as_ref().is_some_and(|s| s.paused) {
        return Err(StepError::Refused {
            by: RefusedBy::Rehearse,
            message: format!("{target}: can't restart paused deployment (run rollout resume first)"),
        });
    }
    let at = restart_stamp(context.clock.now(), state.and_then(|s| s.stamped));
    let patch =
        serde_json::json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at.to_string()}}}}});
    merge_patch(context, kind, name, &patch).await?;
    Ok(format!("restarted {target}"))
}

/// `kubectl rollout pause` and `resume` of a Deployment: refused, as kubectl refuses them, when
/// the Deployment already is as asked.
pub(super) async fn set_paused(
    context: &mut Context<'_>,
    target: &ObjectRef,
    pause: bool,
) -> Result<String, StepError> {
    let name = &target.name.value;
    if rollout_state(context, Kind::Deployment, name).is_some_and(|s| s.paused == pause) {
        let is = if pause { "is already paused" } else { "is not paused" };
        return Err(StepError::Refused { by: RefusedBy::Rehearse, message: format!("{target} {is}") });
    }
    merge_patch(context, Kind::Deployment, name, &serde_json::json!({"spec": {"paused": pause}})).await?;
    Ok(format!("{} {target}", if pause { "paused" } else { "resumed" }))
}

/// The revision a Deployment's controller writes on each of its ReplicaSets.
const REVISION: &str = "deployment.kubernetes.io/revision";

/// The annotations a rollback keeps from the Deployment instead of taking them from the
/// ReplicaSet it rolls back to (kubectl's annotationsToSkip).
const KEPT_BY_A_ROLLBACK: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    super::at_rest::DESIRED_REPLICAS,
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
];

/// `kubectl rollout undo [--to-revision=N]` of a Deployment, DaemonSet or StatefulSet.
pub(super) async fn undo(
    context: &mut Context<'_>,
    target: &ObjectRef,
    revision: Option<&Count>,
) -> Result<String, StepError> {
    let wanted = revision.map(|c| count(context, c)).transpose()?.unwrap_or(0);
    match target.kind.unwrap_or(Kind::Deployment) {
        Kind::DaemonSet => undo_from_history::<DaemonSet>(context, target, wanted).await,
        Kind::StatefulSet => undo_from_history::<StatefulSet>(context, target, wanted).await,
        _ => undo_deployment(context, target, wanted).await,
    }
}

/// A Deployment's undo: it takes the template of the ReplicaSet of that revision (the one
/// before the newest when none is named), without its pod-template-hash, and that ReplicaSet's
/// annotations. Refused as kubectl refuses it: no such revision, no history, a paused
/// Deployment; a template that already is that revision's is left alone.
async fn undo_deployment(context: &mut Context<'_>, target: &ObjectRef, wanted: u64) -> Result<String, StepError> {
    let name = &target.name.value;
    let deployment = match find(context.view.deployments.state(), name) {
        Some(deployment) => deployment,
        None => Arc::new(Api::<Deployment>::namespaced(context.client.clone(), &context.namespace).get(name).await?),
    };
    let refuse = |message: String| StepError::Refused { by: RefusedBy::Rehearse, message };
    let replica_sets = context.view.replica_sets.state();
    let owned = replica_sets.iter().filter(|rs| {
        super::view::controller_ref(&rs.metadata).map(|o| o.uid.as_str()) == deployment.metadata.uid.as_deref()
    });
    let revisions: Vec<(u64, &ReplicaSet)> = owned
        .filter_map(|rs| Some((rs.metadata.annotations.as_ref()?.get(REVISION)?.parse().ok()?, rs.as_ref())))
        .collect();
    let (revision, replica_set) = if wanted > 0 {
        revisions
            .iter()
            .find(|(revision, _)| *revision == wanted)
            .copied()
            .ok_or_else(|| refuse(format!("unable to find specified revision {wanted} in history")))?
    } else {
        let mut newest_first = revisions.clone();
        newest_first.sort_by_key(|(revision, _)| std::cmp::Reverse(*revision));
        newest_first
            .get(1)
            .copied()
            .ok_or_else(|| refuse(format!("no rollout history found for deployment \"{name}\"")))?
    };
    let spec = deployment.spec.as_ref();
    if spec.and_then(|s| s.paused) == Some(true) {
        return Err(refuse(
            "you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume' and try again"
                .into(),
        ));
    }
    let revision_template = replica_set.spec.as_ref().and_then(|s| s.template.clone()).unwrap_or_default();
    if spec.is_some_and(|s| equal_ignoring_hash(&revision_template, &s.template)) {
        return Ok(format!("{target} skipped rollback (current template already matches revision {revision})"));
    }
    let kept =
        deployment.metadata.annotations.iter().flatten().filter(|(key, _)| KEPT_BY_A_ROLLBACK.contains(&key.as_str()));
    let taken = replica_set
        .metadata
        .annotations
        .iter()
        .flatten()
        .filter(|(key, _)| !KEPT_BY_A_ROLLBACK.contains(&key.as_str()));
    let annotations: BTreeMap<&String, &String> = kept.chain(taken).collect();
    let patch = json_patch::Patch(vec![
        replace("/spec/template", without_hash(&revision_template)),
        replace("/metadata/annotations", serde_json::json!(annotations)),
    ]);
    patch_object(context, Kind::Deployment, name, &Patch::<serde_json::Value>::Json(patch)).await?;
    Ok(format!("rolled back {target} to revision {revision}"))
}

/// A DaemonSet's or StatefulSet's undo, as kubectl's DaemonSetRollbacker and
/// StatefulSetRollbacker do it: the ControllerRevisions the controller owns are its history;
/// the one of that revision (the one before the newest when none is named) holds the template
/// to restore. kubectl sends that revision's data, a strategic merge patch that replaces
/// `spec.template` whole (`$patch: replace`); one JSON patch replacing `/spec/template` does the
/// same, and the built-in cluster speaks it as the API server does.
async fn undo_from_history<K>(context: &mut Context<'_>, target: &ObjectRef, wanted: u64) -> Result<String, StepError>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let name = &target.name.value;
    let refuse = |message: String| StepError::Refused { by: RefusedBy::Rehearse, message };
    let controller = Api::<K>::namespaced(context.client.clone(), &context.namespace).get(name).await?;
    let uid = controller.meta().uid.clone();
    let listed = Api::<ControllerRevision>::namespaced(context.client.clone(), &context.namespace)
        .list(&ListParams::default())
        .await?;
    let mut history: Vec<ControllerRevision> = listed
        .items
        .into_iter()
        .filter(|r| super::view::controller_ref(&r.metadata).map(|o| o.uid.as_str()) == uid.as_deref())
        .collect();
    history.sort_by_key(|r| r.revision);
    let chosen = if wanted > 0 {
        history.iter().find(|r| u64::try_from(r.revision).ok() == Some(wanted))
    } else if history.len() <= 1 {
        return Err(refuse("no last revision to roll back to".into()));
    } else {
        history.get(history.len() - 2)
    };
    let chosen = chosen.ok_or_else(|| refuse(format!("unable to find specified revision {wanted} in history")))?;
    let mut restored = chosen.data.as_ref().map(|d| d.0["spec"]["template"].clone()).unwrap_or_default();
    if let Some(fields) = restored.as_object_mut() {
        fields.remove("$patch");
    }
    let current = serde_json::to_value(&controller).unwrap_or_default()["spec"]["template"].take();
    if semantically_equal(&restored, &current) {
        return Ok(format!(
            "{target} skipped rollback (current template already matches revision {})",
            chosen.revision
        ));
    }
    let patch = json_patch::Patch(vec![replace("/spec/template", restored)]);
    let kind = target.kind.unwrap_or(Kind::DaemonSet);
    patch_object(context, kind, name, &Patch::<serde_json::Value>::Json(patch)).await?;
    Ok(format!("rolled back {target} to revision {}", chosen.revision))
}

/// A JSON patch operation that replaces the value at `path`.
fn replace(path: &'static str, value: serde_json::Value) -> PatchOperation {
    PatchOperation::Replace(json_patch::ReplaceOperation { path: Pointer::from_static(path).to_buf(), value })
}

/// The label by which a Deployment's controller tells its replica sets' pods apart.
pub(super) const TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

/// Upstream's EqualIgnoreHash, by which the Deployment controller finds the replica set of its
/// template and kubectl's undo finds nothing to do: two pod templates equal but for the
/// pod-template-hash label the controller adds to its copies, a field left empty and one left out
/// alike.
pub(super) fn equal_ignoring_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    identical_ignoring_hash(a, b) || semantically_equal(&without_hash(a), &without_hash(b))
}

/// Templates identical but for the pod-template-hash label: the common case of
/// [`equal_ignoring_hash`], answered without JSON (the rest check asks before every step).
pub(super) fn identical_ignoring_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    fn labels(meta: Option<&ObjectMeta>) -> impl Iterator<Item = (&String, &String)> {
        meta.and_then(|m| m.labels.as_ref()).into_iter().flatten().filter(|(key, _)| *key != TEMPLATE_HASH_LABEL)
    }
    let unlabelled = |meta: Option<&ObjectMeta>| ObjectMeta { labels: None, ..meta.cloned().unwrap_or_default() };
    let (a_meta, b_meta) = (a.metadata.as_ref(), b.metadata.as_ref());
    a.spec == b.spec && labels(a_meta).eq(labels(b_meta)) && unlabelled(a_meta) == unlabelled(b_meta)
}

/// A template as JSON, less its pod-template-hash label.
fn without_hash(template: &PodTemplateSpec) -> serde_json::Value {
    let mut template = serde_json::to_value(template).unwrap_or_default();
    if let Some(labels) = template.pointer_mut("/metadata/labels").and_then(serde_json::Value::as_object_mut) {
        labels.remove(TEMPLATE_HASH_LABEL);
    }
    template
}

/// Equal as the API machinery's semantic equality has it: an empty list or map is the same as
/// none.
fn semantically_equal(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    fn is_empty(value: &serde_json::Value) -> bool {
        match value {
            serde_json::Value::Null => true,
            serde_json::Value::Array(items) => items.is_empty(),
            serde_json::Value::Object(members) => members.is_empty(),
            _ => false,
        }
    }
    match (a, b) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            keys.into_iter().all(|key| match (a.get(key), b.get(key)) {
                (Some(x), Some(y)) => semantically_equal(x, y),
                (Some(only), None) | (None, Some(only)) => is_empty(only),
                (None, None) => true,
            })
        }
        (serde_json::Value::Array(a), serde_json::Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| semantically_equal(x, y))
        }
        _ => a == b || (is_empty(a) && is_empty(b)),
    }
}

/// The time a restart stamps: now, to the second as kubectl writes it, or, if the last restart's
/// stamp is not before that (two restarts within one second would stamp the same time, and the
/// second would change nothing), a second after the last one, so every restart rolls out.
fn restart_stamp(
    now: k8s_openapi::jiff::Timestamp,
    last: Option<k8s_openapi::jiff::Timestamp>,
) -> k8s_openapi::jiff::Timestamp {
    let now = k8s_openapi::jiff::Timestamp::from_second(now.as_second()).unwrap_or(now);
    match last.and_then(|last| last.checked_add(k8s_openapi::jiff::SignedDuration::from_secs(1)).ok()) {
        Some(after_last) if after_last > now => after_last,
        _ => now,
    }
}

/// The object of that name among a kind's objects in the view.
fn find<K: kube::Resource>(items: Vec<Arc<K>>, name: &str) -> Option<Arc<K>> {
    items.into_iter().find(|o| o.meta().name.as_deref() == Some(name))
}

/// What a rollout verb reads of its controller in the view: whether it is paused (a
/// Deployment), and when its template was last stamped by a restart. `None` when the view
/// holds no such controller: the request then goes out, and the API server answers 404.
struct RolloutState {
    paused: bool,
    stamped: Option<k8s_openapi::jiff::Timestamp>,
}

fn rollout_state(context: &Context<'_>, kind: Kind, name: &str) -> Option<RolloutState> {
    use k8s_openapi::api::core::v1::PodTemplateSpec;
    fn stamp(template: Option<&PodTemplateSpec>) -> Option<k8s_openapi::jiff::Timestamp> {
        template?.metadata.as_ref()?.annotations.as_ref()?.get(RESTARTED_AT)?.parse().ok()
    }
    let (paused, template) = match kind {
        Kind::Deployment => {
            let deployment = find(context.view.deployments.state(), name)?;
            let spec = deployment.spec.as_ref();
            (spec.and_then(|s| s.paused) == Some(true), stamp(spec.map(|s| &s.template)))
        }
        Kind::DaemonSet => {
            (false, stamp(find(context.view.daemon_sets.state(), name)?.spec.as_ref().map(|s| &s.template)))
        }
        Kind::StatefulSet => {
            (false, stamp(find(context.view.stateful_sets.state(), name)?.spec.as_ref().map(|s| &s.template)))
        }
        _ => return None,
    };
    Some(RolloutState { paused, stamped: template })
}

#[cfg(test)]
mod tests {
    use super::{equal_ignoring_hash, identical_ignoring_hash, restart_stamp, semantically_equal};
    use serde_json::json;

    #[test]
    fn templates_are_equal_as_the_api_machinery_compares_them() {
        let template = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}});
        let with_empties = json!({
            "metadata": {"labels": {"app": "web"}, "annotations": {}},
            "spec": {"containers": [{"name": "web", "image": "nginx", "ports": []}], "volumes": null}
        });
        assert!(semantically_equal(&template, &with_empties));
        assert!(semantically_equal(&with_empties, &template));
        let other_image = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "httpd"}]}});
        assert!(!semantically_equal(&template, &other_image));
        let extra_label = json!({"metadata": {"labels": {"app": "web", "v": "2"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}});
        assert!(!semantically_equal(&template, &extra_label));
        let two_containers = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}, {"name": "b", "image": "b"}]}});
        assert!(!semantically_equal(&template, &two_containers));
        assert!(!semantically_equal(&json!(0), &json!(null)));
    }

    #[test]
    fn a_replica_sets_template_is_its_deployments_but_for_the_hash_label_and_empty_fields() {
        let template = |value: serde_json::Value| serde_json::from_value(value).unwrap();
        let deployments =
            template(json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web"}]}}));
        let copy = template(json!({
            "metadata": {"labels": {"app": "web", "pod-template-hash": "7d9f8c"}},
            "spec": {"containers": [{"name": "web"}]}
        }));
        assert!(identical_ignoring_hash(&copy, &deployments));
        assert!(equal_ignoring_hash(&copy, &deployments));
        // Told apart only by an empty field: the same template, but not identical.
        let with_empties = template(json!({
            "metadata": {"labels": {"app": "web", "pod-template-hash": "7d9f8c"}, "annotations": {}},
            "spec": {"containers": [{"name": "web", "ports": []}]}
        }));
        assert!(!identical_ignoring_hash(&with_empties, &deployments));
        assert!(equal_ignoring_hash(&with_empties, &deployments));
        let relabelled = template(
            json!({"metadata": {"labels": {"app": "web", "v": "2"}}, "spec": {"containers": [{"name": "web"}]}}),
        );
        assert!(!equal_ignoring_hash(&relabelled, &deployments));
        let other_image = template(
            json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "b"}]}}),
        );
        assert!(!equal_ignoring_hash(&other_image, &deployments));
    }

    #[test]
    fn a_restart_stamps_the_second_or_one_after_the_last_stamp() {
        let at = |text: &str| text.parse::<k8s_openapi::jiff::Timestamp>().unwrap();
        // kubectl writes whole seconds.
        assert_eq!(restart_stamp(at("2026-12-04T09:10:11.75Z"), None), at("2026-12-04T09:10:11Z"));
        assert_eq!(
            restart_stamp(at("2026-12-04T09:10:11.75Z"), Some(at("2026-12-04T09:00:00Z"))),
            at("2026-12-04T09:10:11Z")
        );
        // A second restart in the same second, or after a stamp ahead of this clock (another
        // machine's, or kubectl's local time with its offset), still changes the template.
        assert_eq!(
            restart_stamp(at("2026-12-04T09:10:11.75Z"), Some(at("2026-12-04T09:10:11Z"))),
            at("2026-12-04T09:10:12Z")
        );
        assert_eq!(
            restart_stamp(at("2026-12-04T09:10:11Z"), Some(at("2026-12-04T10:10:20+01:00"))),
            at("2026-12-04T09:10:21Z")
        );
        assert_eq!(
            restart_stamp(at("2026-12-04T09:10:11Z"), Some(at("2026-12-04T09:10:10Z"))),
            at("2026-12-04T09:10:11Z")
        );
    }
}
