//! Steps that change the cluster, and dispatch to the expectations.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use json_patch::jsonptr::Pointer;
use json_patch::{AddOperation, PatchOperation};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod as PodManifest, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, PartialObjectMeta, Patch, PatchParams, PostParams};

use super::apply::{FIELD_MANAGER, apply_all, daemonset_from_deployment, documents_from_path, documents_from_text};
use super::describe;
use super::expect;
use super::pod::Pod;
use super::rollout;
use super::view::{Watched, controller_of, labels_of, selects};
use super::{BoundPod, Context, StepError, Value};
use crate::model::labels::Labels;
use crate::model::{Kind, LabelChange, LabelChangeKind, ObjectRef, Selector};
use crate::syntax::ast::{ApplySource, Binding, Count, SelectMode, Step, StepKind, Target};

/// Labels as (key, value) pairs, in order.
type LabelPairs = Vec<(String, String)>;

/// Runs one step; returns what was observed, for the result document.
pub async fn run(step: &Step, context: &mut Context<'_>, timeout: Duration) -> Result<String, StepError> {
    match &step.kind {
        StepKind::Apply(source) => {
            let documents = match source {
                ApplySource::Path(path) => documents_from_path(&context.base_dir.join(&path.value))?,
                ApplySource::Inline(yaml) => documents_from_text(&yaml.text).map_err(StepError::Failed)?,
            };
            let applied = apply_all(&context.client, &context.resources, &context.namespace, documents).await?;
            let names: Vec<String> = applied
                .iter()
                .map(|o| {
                    o.types.as_ref().map_or(String::new(), |t| {
                        format!("{}/{}", t.kind.to_ascii_lowercase(), o.metadata.name.clone().unwrap_or_default())
                    })
                })
                .collect();
            for object in &applied {
                let kind = object.types.as_ref().and_then(|t| match (t.api_version.as_str(), t.kind.as_str()) {
                    ("discovery.k8s.io/v1", "EndpointSlice") => Some(Watched::EndpointSlice),
                    ("v1", "Endpoints") => Some(Watched::Endpoints),
                    (api_version, kind) => Kind::from_api_type(api_version, kind).map(Watched::Kind),
                });
                if kind.is_none()
                    && let Some(types) = &object.types
                    && super::namespace::foreign_finalizers(&object.metadata).is_some()
                {
                    let applied = (
                        types.api_version.clone(),
                        types.kind.clone(),
                        object.metadata.name.clone().unwrap_or_default(),
                    );
                    if !context.applied_with_finalizers.contains(&applied) {
                        context.applied_with_finalizers.push(applied);
                    }
                }
                context.wrote(kind, &object.metadata);
            }
            Ok(format!("applied {}", names.join(", ")))
        }
        StepKind::Convert { source, .. } => {
            let api = Api::<Deployment>::namespaced(context.client.clone(), &context.namespace);
            let deployment = api.get(&source.name.value).await?;
            let daemonset = daemonset_from_deployment(&serde_json::to_value(&deployment).unwrap_or_default());
            let ds_api = Api::<DaemonSet>::namespaced(context.client.clone(), &context.namespace);
            let created = ds_api
                .patch(&source.name.value, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&daemonset))
                .await?;
            context.wrote(Some(Kind::DaemonSet.into()), &created.metadata);
            Ok(format!("created daemonset/{} from deployment/{}", source.name.value, source.name.value))
        }
        StepKind::Label { target, changes } => patch_metadata(context, target, "labels", changes).await,
        StepKind::Annotate { target, changes } => patch_metadata(context, target, "annotations", changes).await,
        StepKind::Select { service, mode, selector } => select(context, service, *mode, selector).await,
        StepKind::Template { controller, changes } => template(context, controller, changes).await,
        StepKind::RemoveFromLb { pods, service } => remove_from_lb(context, pods, service.as_ref()).await,
        StepKind::AddToLb { pods, service } => add_to_lb(context, pods, service.as_ref()).await,
        StepKind::Let { name, value } => bind(context, &name.value, value, timeout).await,
        StepKind::Delete { target } => delete(context, target).await,
        StepKind::Scale { target, replicas } => {
            let replicas = count(context, replicas)?;
            let patch = serde_json::json!({"spec": {"replicas": replicas}});
            merge_patch(context, target.kind.unwrap_or(Kind::Deployment), &target.name.value, &patch).await?;
            Ok(format!("scaled {target} to {replicas}"))
        }
        StepKind::Restart { target } => rollout::restart(context, target).await,
        StepKind::Pause { target } => rollout::set_paused(context, target, true).await,
        StepKind::Resume { target } => rollout::set_paused(context, target, false).await,
        StepKind::Undo { target, revision } => rollout::undo(context, target, revision.as_ref()).await,
        StepKind::Run { name, image, labels } => {
            let mut pod_labels: Labels = Labels::new();
            labels.iter().for_each(|c| c.apply_to(&mut pod_labels));
            if labels.is_empty() {
                pod_labels.insert("run".into(), name.value.clone());
            }
            let image = image.as_ref().map_or("registry.k8s.io/pause:3.10", |i| i.value.as_str());
            let pod: PodManifest = serde_json::from_value(serde_json::json!({
                "metadata": {"name": name.value, "labels": pod_labels},
                "spec": {"restartPolicy": "Never", "containers": [{"name": name.value, "image": image}]}
            }))
            .map_err(|e| StepError::Failed(format!("cannot build the pod: {e}")))?;
            let created = Api::<PodManifest>::namespaced(context.client.clone(), &context.namespace)
                .create(&PostParams::default(), &pod)
                .await?;
            context.wrote(Some(Kind::Pod.into()), &created.metadata);
            Ok(format!("started pod/{} with {}", name.value, describe::labels(&pod_labels)))
        }
        StepKind::Snapshot { name } => {
            expect::settle(context, timeout, None).await?;
            let body = expect::snapshot_body(context);
            let outcome = context.snapshots.record(context.scenario_name, &name.value, &body);
            Ok(outcome)
        }
        StepKind::ExpectRefused { message, step } => match Box::pin(run(step, context, timeout)).await {
            Ok(_) => Err(StepError::Failed("the step was accepted; it was expected to be refused".into())),
            Err(StepError::Refused { by, message: refusal }) => match message {
                Some(wanted) if !refusal.contains(&wanted.value) => Err(StepError::Failed(format!(
                    "refused by {by}, but not with a message containing \"{}\": {refusal}",
                    wanted.value
                ))),
                _ => Ok(format!("refused by {by}: {}", normalise_refusal(&refusal))),
            },
            Err(StepError::Failed(failure)) => Err(StepError::Failed(format!(
                "the step failed without being refused (only the API's validation or admission, or rehearse \
                 before touching the cluster, refuse a step): {failure}"
            ))),
            Err(other) => Err(other),
        },
        StepKind::ExpectTraffic { .. } | StepKind::Expect { .. } | StepKind::Wait(_) => {
            expect::run(step, context, timeout).await
        }
        StepKind::Guard { .. } => Ok(String::new()), // started by the scenario loop
    }
}

/// API messages carry generated names and hashes (`Pod "web-5c59-8tl8c" is invalid: ...`); keep
/// the part a reader needs, deterministically: the cause, from the field it names on (several
/// causes come as one bracketed list).
///
/// A pod update the API server refuses for changing a field that may not change ends in a dump
/// of the difference between its internal types (`\n@@ -100,7 +100,15 @@ ...`): not the script's
/// words, and not the same between Kubernetes versions (nor on the built-in cluster, which sends
/// none); the line before it is the verdict, and is kept.
fn normalise_refusal(message: &str) -> String {
    let message = message.split_once("\n@@ ").map_or(message, |(verdict, _)| verdict);
    let causes = [": spec.", ": metadata.", ": [spec.", ": [metadata."];
    match causes.iter().filter_map(|field| message.find(field)).min() {
        Some(i) => message[i + 2..].to_string(),
        None => message.to_string(),
    }
}

pub fn api_for(context: &Context<'_>, kind: Kind) -> Api<DynamicObject> {
    Api::namespaced_with(context.client.clone(), &context.namespace, &api_resource(kind))
}

fn api_resource(kind: Kind) -> ApiResource {
    match kind {
        Kind::Pod => ApiResource::erase::<Pod>(&()),
        Kind::Deployment => ApiResource::erase::<Deployment>(&()),
        Kind::ReplicaSet => ApiResource::erase::<ReplicaSet>(&()),
        Kind::DaemonSet => ApiResource::erase::<DaemonSet>(&()),
        Kind::StatefulSet => ApiResource::erase::<StatefulSet>(&()),
        Kind::Service => ApiResource::erase::<Service>(&()),
    }
}

pub fn count(context: &Context<'_>, count: &Count) -> Result<u64, StepError> {
    match count {
        Count::Literal(n) => Ok(n.value),
        Count::Variable(v) => match context.variables.get(&v.value) {
            Some(Value::Number(n)) => Ok(*n),
            _ => Err(StepError::Failed(format!("`${}` does not hold a number", v.value))),
        },
    }
}

/// The named objects a target stands for now: (kind, name).
pub fn resolve(context: &Context<'_>, target: &Target) -> Result<Vec<(Kind, String)>, StepError> {
    match target {
        Target::Variable(v) => match context.variables.get(&v.value) {
            Some(Value::Pod(pod)) => Ok(vec![(Kind::Pod, pod.name.clone())]),
            Some(Value::Object { kind, name }) => Ok(vec![(*kind, name.clone())]),
            _ => Err(StepError::Failed(format!("`${}` does not hold an object", v.value))),
        },
        Target::Object(o) => Ok(vec![(o.kind.unwrap_or(Kind::Pod), o.name.value.clone())]),
        Target::Selection(s) => {
            let kind = s.kind.unwrap_or(Kind::Pod);
            let names = objects_of(context, kind)
                .into_iter()
                .filter(|(_, labels)| s.selector.as_ref().is_none_or(|sel| sel.matches(labels)))
                .map(|(name, _)| (kind, name))
                .collect();
            Ok(names)
        }
    }
}

/// Live objects of a kind in the scenario's namespace, with their labels, sorted by name.
pub fn objects_of(context: &Context<'_>, kind: Kind) -> Vec<(String, Labels)> {
    objects_in(context, kind, false)
}

/// Objects of a kind in the scenario's namespace, with those being deleted if asked, sorted.
pub fn objects_in(context: &Context<'_>, kind: Kind, with_terminating: bool) -> Vec<(String, Labels)> {
    let collect = |metas: Vec<&k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>| {
        let mut out: Vec<(String, Labels)> = metas
            .into_iter()
            .filter(|meta| with_terminating || meta.deletion_timestamp.is_none())
            .map(|meta| (meta.name.clone().unwrap_or_default(), labels_of(meta)))
            .collect();
        out.sort();
        out
    };
    fn metas<K: kube::Resource>(items: &[Arc<K>]) -> Vec<&k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta> {
        items.iter().map(|o| o.meta()).collect()
    }
    let view = &context.view;
    match kind {
        Kind::Pod => collect(metas(&view.pods.state())),
        Kind::Deployment => collect(metas(&view.deployments.state())),
        Kind::ReplicaSet => collect(metas(&view.replica_sets.state())),
        Kind::DaemonSet => collect(metas(&view.daemon_sets.state())),
        Kind::StatefulSet => collect(metas(&view.stateful_sets.state())),
        Kind::Service => collect(metas(&view.services.state())),
    }
}

/// How many objects a target stands for that exist now (`with_terminating`: counting those
/// being deleted). A named object counts only if the cluster has it.
pub fn present(context: &Context<'_>, target: &Target, with_terminating: bool) -> Result<usize, StepError> {
    let named =
        |kind: Kind, name: &str| objects_in(context, kind, with_terminating).iter().filter(|(n, _)| n == name).count();
    match target {
        Target::Variable(v) => match context.variables.get(&v.value) {
            Some(Value::Pod(bound)) => Ok(context
                .view
                .pods
                .state()
                .iter()
                .filter(|p| p.metadata.uid.as_ref() == Some(&bound.uid))
                .filter(|p| with_terminating || p.metadata.deletion_timestamp.is_none())
                .count()),
            Some(Value::Object { kind, name }) => Ok(named(*kind, name)),
            _ => Err(StepError::Failed(format!("`${}` does not hold an object", v.value))),
        },
        Target::Object(o) => Ok(named(o.kind.unwrap_or(Kind::Pod), &o.name.value)),
        Target::Selection(s) => {
            let kind = s.kind.unwrap_or(Kind::Pod);
            Ok(objects_in(context, kind, with_terminating)
                .iter()
                .filter(|(_, labels)| s.selector.as_ref().is_none_or(|sel| sel.matches(labels)))
                .count())
        }
    }
}

/// A merge patch of `metadata.<field>` (labels or annotations): `null` removes a key.
fn metadata_patch(field: &str, changes: &[LabelChange]) -> serde_json::Value {
    let entries: serde_json::Map<String, serde_json::Value> = changes
        .iter()
        .map(|c| {
            let value = match &c.kind {
                LabelChangeKind::Set(v) => serde_json::Value::String(v.value.clone()),
                LabelChangeKind::Remove => serde_json::Value::Null,
            };
            (c.key.value.clone(), value)
        })
        .collect();
    serde_json::json!({"metadata": {field: entries}})
}

/// `label` and `annotate`: one merge patch of `metadata.<field>` on every object the target
/// names. The changes are in the step's own text (values a variable held may differ between
/// runs), so the summary only counts.
async fn patch_metadata(
    context: &mut Context<'_>,
    target: &Target,
    field: &str,
    changes: &[LabelChange],
) -> Result<String, StepError> {
    let objects = resolve(context, target)?;
    if objects.is_empty() {
        return Err(StepError::Failed(format!("no object matches `{}`", crate::syntax::format::target(target))));
    }
    let patch = metadata_patch(field, changes);
    for (kind, name) in &objects {
        merge_patch(context, *kind, name, &patch).await?;
    }
    let what = objects.first().map(|(k, _)| k.name()).unwrap_or("object");
    let done = if field == "labels" { "labelled" } else { "annotated" };
    Ok(format!("{done} {} {what}(s)", objects.len()))
}

async fn select(
    context: &mut Context<'_>,
    service: &ObjectRef,
    mode: SelectMode,
    selector: &Selector,
) -> Result<String, StepError> {
    let pairs = selector.requirements.iter().map(|requirement| {
        let value = requirement.values.first().map(|v| v.value.clone()).unwrap_or_default();
        (requirement.key.value.clone(), value)
    });
    // One request each, applied by the API server to the selector as it is then: a read
    // followed by a write could undo a change made in between.
    let patch: Patch<serde_json::Value> = match mode {
        // A JSON patch `add` sets the whole member, keys the new selector lacks dropped.
        SelectMode::Replace => {
            const SELECTOR: &Pointer = Pointer::from_static("/spec/selector");
            let value = serde_json::json!(pairs.collect::<Labels>());
            Patch::Json(json_patch::Patch(vec![PatchOperation::Add(AddOperation { path: SELECTOR.to_buf(), value })]))
        }
        SelectMode::Extend => Patch::Merge(serde_json::json!({"spec": {"selector": pairs.collect::<Labels>()}})),
        SelectMode::Remove => {
            let dropped: serde_json::Map<String, serde_json::Value> =
                pairs.map(|(key, _)| (key, serde_json::Value::Null)).collect();
            Patch::Merge(serde_json::json!({"spec": {"selector": dropped}}))
        }
    };
    // Read back as `SelectedService`: the version and the selector, the rest of the Service
    // skipped rather than decoded.
    let path = <Service as kube::Resource>::url_path(&(), Some(&context.namespace));
    let request = kube::core::Request::new(path)
        .patch(&service.name.value, &PatchParams::default(), &patch)
        .map_err(|e| StepError::Infrastructure(format!("cannot build the request: {e}")))?;
    let patched: SelectedService = context.client.request(request).await?;
    context.wrote(Some(Kind::Service.into()), &patched.metadata);
    let now: Labels = patched.spec.selector.unwrap_or_default();
    if now.is_empty() {
        // Kubernetes' endpoint controller leaves a service without a selector alone.
        return Ok(format!("{service} has no selector: its endpoints stay as they were"));
    }
    Ok(format!("{service} selects {}", describe::labels(&now)))
}

/// What `select` reads of the Service it patched.
#[derive(serde::Deserialize)]
struct SelectedService {
    metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    #[serde(default)]
    spec: SelectorSpec,
}

#[derive(Default, serde::Deserialize)]
struct SelectorSpec {
    selector: Option<Labels>,
}

async fn template(
    context: &mut Context<'_>,
    controller: &ObjectRef,
    changes: &[LabelChange],
) -> Result<String, StepError> {
    let patch = serde_json::json!({"spec": {"template": metadata_patch("labels", changes)}});
    merge_patch(context, controller.kind.unwrap_or(Kind::Deployment), &controller.name.value, &patch).await?;
    let changes: Vec<String> = changes.iter().map(ToString::to_string).collect();
    Ok(format!("{controller} template {}", changes.join(" ")))
}

/// The live pods a target stands for.
fn pods_of(context: &Context<'_>, target: &Target) -> Result<Vec<Arc<Pod>>, StepError> {
    let names = resolve(context, target)?;
    let pods = context.view.live_pods();
    Ok(names
        .iter()
        .filter_map(|(_, name)| pods.iter().find(|p| p.metadata.name.as_ref() == Some(name)).cloned())
        .collect())
}

/// The live pods a target stands for; an error if there are none.
fn some_pods_of(context: &Context<'_>, target: &Target) -> Result<Vec<Arc<Pod>>, StepError> {
    let pods = pods_of(context, target)?;
    if pods.is_empty() {
        return Err(StepError::Failed(format!("no live pod matches `{}`", crate::syntax::format::target(target))));
    }
    Ok(pods)
}

/// Merge-patches a pod's labels (`null` removes a key) and records the write.
async fn patch_pod_labels(context: &mut Context<'_>, pod: &str, labels: serde_json::Value) -> Result<(), StepError> {
    merge_patch(context, Kind::Pod, pod, &serde_json::json!({"metadata": {"labels": labels}})).await
}

/// Merge-patches one object and records the write.
pub(super) async fn merge_patch(
    context: &mut Context<'_>,
    kind: Kind,
    name: &str,
    patch: &serde_json::Value,
) -> Result<(), StepError> {
    patch_object(context, kind, name, &Patch::Merge(patch)).await
}

/// Patches one object and records the write. Only its metadata comes back (the API server's
/// PartialObjectMetadata): all a write needs to know is the version it made.
pub(super) async fn patch_object<P: serde::Serialize + std::fmt::Debug>(
    context: &mut Context<'_>,
    kind: Kind,
    name: &str,
    patch: &Patch<P>,
) -> Result<(), StepError> {
    let api: Api<PartialObjectMeta<DynamicObject>> =
        Api::namespaced_with(context.client.clone(), &context.namespace, &api_resource(kind));
    let patched = api.patch(name, &PatchParams::default(), patch).await?;
    context.wrote(Some(kind.into()), &patched.metadata);
    Ok(())
}

/// The pod's controller, named as results record it, and the selector it holds its pods by (none
/// for a controller the view does not watch).
fn pod_controller(context: &Context<'_>, pod: &Pod) -> Option<(String, Option<LabelSelector>)> {
    let (kind, name, _) = controller_of(&pod.metadata)?;
    let selector = match kind.as_str() {
        "ReplicaSet" => context
            .view
            .replica_sets
            .state()
            .iter()
            .find(|r| r.metadata.name.as_ref() == Some(&name))?
            .spec
            .as_ref()?
            .selector
            .clone(),
        "DaemonSet" => context
            .view
            .daemon_sets
            .state()
            .iter()
            .find(|d| d.metadata.name.as_ref() == Some(&name))?
            .spec
            .as_ref()?
            .selector
            .clone(),
        "StatefulSet" => context
            .view
            .stateful_sets
            .state()
            .iter()
            .find(|s| s.metadata.name.as_ref() == Some(&name))?
            .spec
            .as_ref()?
            .selector
            .clone(),
        _ => return Some((format!("{}/{name}", kind.to_ascii_lowercase()), None)),
    };
    // Named without its generated hash: the refusal is recorded in results.
    let pod_labels = pod.metadata.labels.clone().unwrap_or_default();
    let hash = ["pod-template-hash", "controller-revision-hash"].iter().find_map(|k| pod_labels.get(*k));
    let name = super::describe::normalise_name(&name, hash.map(String::as_str));
    Some((format!("{}/{name}", kind.to_ascii_lowercase()), Some(selector)))
}

/// Services whose selector matches the pod (or the one named).
fn services_for(
    context: &Context<'_>,
    pod: &Pod,
    named: Option<&ObjectRef>,
) -> Result<Vec<(String, Labels)>, StepError> {
    let labels = labels_of(&pod.metadata);
    let mut services: Vec<(String, Labels)> = context
        .view
        .services
        .state()
        .iter()
        .filter_map(|s| Some((s.metadata.name.clone()?, s.spec.as_ref()?.selector.clone()?)))
        .filter(|(name, selector)| match named {
            Some(n) => &n.name.value == name,
            None => !selector.is_empty() && super::view::service_selects(selector, &labels),
        })
        .collect();
    services.sort();
    if let Some(n) = named
        && services.is_empty()
    {
        return Err(StepError::Failed(format!("{n} does not exist or has no selector")));
    }
    Ok(services)
}

async fn remove_from_lb(
    context: &mut Context<'_>,
    target: &Target,
    service: Option<&ObjectRef>,
) -> Result<String, StepError> {
    let pods = some_pods_of(context, target)?;
    // Decide every label first, so nothing is touched when one pod cannot be taken out.
    let mut plan: Vec<(Arc<Pod>, LabelPairs)> = Vec::new();
    for pod in &pods {
        let services = services_for(context, pod, service)?;
        if services.is_empty() {
            let pod_name = super::describe::pod(pod, &context.pod_variables());
            return Err(StepError::refused(format!("{pod_name} is behind no Service; nothing to take it out of")));
        }
        let (controller, controller_selector) = pod_controller(context, pod).unwrap_or_default();
        let labels = labels_of(&pod.metadata);
        if let (Some(named), [(_, selector)]) = (service, services.as_slice())
            && !super::view::service_selects(selector, &labels)
        {
            let pod_name = super::describe::pod(pod, &context.pod_variables());
            return Err(StepError::refused(format!(
                "{pod_name} is not behind {named}: its selector {} does not match the pod's labels",
                describe::labels(selector)
            )));
        }
        // A key may go when the controller still selects the pod without it. Dropping a key its
        // matchLabels or an `In`/`Exists` expression needs would release the pod, and the
        // controller would replace it; a `NotIn` or `DoesNotExist` key holds the pod either way.
        let controller_keeps_pod_without = |key: &str| {
            controller_selector.as_ref().is_none_or(|selector| {
                let mut rest = labels.clone();
                rest.remove(key);
                selects(selector, &rest)
            })
        };
        let mut removals = Vec::new();
        for (service_name, selector) in services {
            let candidate = selector.keys().find(|k| labels.contains_key(*k) && controller_keeps_pod_without(k));
            match candidate {
                Some(key) => removals.push((key.clone(), labels[key].clone())),
                None => {
                    let keys: Vec<String> = selector.keys().map(|k| format!("`{k}`")).collect();
                    return Err(StepError::refused(format!(
                        "service/{service_name} selects only {}, which {controller} also selects: removing one \
                         would make the controller replace the pod. Extend the Service's selector first: label the \
                         pods (e.g. `label pods app=... active=yes`), then `select service/{service_name} += active=yes`",
                        keys.join(", ")
                    )));
                }
            }
        }
        removals.sort();
        removals.dedup();
        plan.push((pod.clone(), removals));
    }
    let mut described = Vec::new();
    for (pod, removals) in plan {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let labels: serde_json::Map<String, serde_json::Value> =
            removals.iter().map(|(k, _)| (k.clone(), serde_json::Value::Null)).collect();
        patch_pod_labels(context, &name, serde_json::json!(labels)).await?;
        described.push(format!(
            "removed {} from {}",
            removals.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(","),
            describe::pod(&pod, &context.pod_variables())
        ));
        context.removed_from_lb.insert(pod.metadata.uid.clone().unwrap_or_default(), removals);
    }
    Ok(described.join("; "))
}

async fn add_to_lb(
    context: &mut Context<'_>,
    target: &Target,
    service: Option<&ObjectRef>,
) -> Result<String, StepError> {
    let pods = some_pods_of(context, target)?;
    // Decide every pod's labels first, so nothing is touched when one pod cannot be put back.
    let mut plan: Vec<(Arc<Pod>, BTreeMap<String, String>)> = Vec::new();
    for pod in pods {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let restore: BTreeMap<String, String> = match (context.removed_from_lb.get(&uid), service) {
            (Some(removed), None) => removed.iter().cloned().collect(),
            _ => {
                // Not taken out by remove-from-lb: give it what the named Service's selector lacks.
                let Some(named) = service else {
                    return Err(StepError::refused(format!(
                        "{} was not taken out with remove-from-lb; name the Service: `add-to-lb ... to service/NAME`",
                        describe::pod(&pod, &context.pod_variables())
                    )));
                };
                let labels = labels_of(&pod.metadata);
                let selector = services_for(context, &pod, Some(named))?.remove(0).1;
                selector.into_iter().filter(|(k, v)| labels.get(k) != Some(v)).collect()
            }
        };
        // Labels that take the pod from its controller would have it replaced, not served.
        if let Some((controller, Some(selector))) = pod_controller(context, &pod) {
            let mut labels = labels_of(&pod.metadata);
            labels.extend(restore.clone());
            if !selects(&selector, &labels) {
                return Err(StepError::refused(format!(
                    "setting {} on {} would take it from {controller}, whose selector no longer matches it: the \
                     controller would replace the pod. Give the Service a key the controller does not select",
                    describe::labels(&restore),
                    describe::pod(&pod, &context.pod_variables())
                )));
            }
        }
        plan.push((pod, restore));
    }
    let mut described = Vec::new();
    for (pod, restore) in plan {
        let name = pod.metadata.name.clone().unwrap_or_default();
        patch_pod_labels(context, &name, serde_json::json!(restore)).await?;
        context.removed_from_lb.remove(pod.metadata.uid.as_deref().unwrap_or_default());
        described.push(format!(
            "restored {} on {}",
            describe::labels(&restore),
            describe::pod(&pod, &context.pod_variables())
        ));
    }
    Ok(described.join("; "))
}

async fn bind(context: &mut Context<'_>, name: &str, value: &Binding, timeout: Duration) -> Result<String, StepError> {
    let value = match value {
        Binding::Number(n) => Value::Number(n.value),
        Binding::Text(t) => Value::Text(t.value.clone()),
        Binding::LabelOf { key, target } => {
            let (value, note) = read(context, Read::Label(&key.value), target, timeout).await?;
            context.variables.insert(name.to_string(), Value::Text(value));
            return Ok(format!("${name} = {note}"));
        }
        Binding::NameOf(target) => {
            let (value, note) = read(context, Read::Name, target, timeout).await?;
            context.variables.insert(name.to_string(), Value::ReadName(value));
            return Ok(format!("${name} = {note}"));
        }
        Binding::Object(o) if o.kind != Some(Kind::Pod) => {
            Value::Object { kind: o.kind.unwrap_or(Kind::Pod), name: o.name.value.clone() }
        }
        Binding::Object(o) => {
            let pods = context.view.live_pods();
            let pod = pods
                .iter()
                .find(|p| p.metadata.name.as_ref() == Some(&o.name.value))
                .ok_or_else(|| StepError::Failed(format!("{o} does not exist")))?;
            Value::Pod(bound(context, pod))
        }
        Binding::OneOf(selection) => {
            // The first ready pod by name: a deterministic choice among equals. Waited for, as
            // an expectation is: the view may show a Service's endpoint ready before the pod.
            let deadline = tokio::time::Instant::now() + timeout;
            let found = context
                .view
                .wait_for(deadline, |view| {
                    view.live_pods()
                        .into_iter()
                        .filter(|p| selection.selector.as_ref().is_none_or(|s| s.matches(&labels_of(&p.metadata))))
                        .find(|p| super::view::is_ready(p))
                        .filter(|_| view.unfinished().is_none())
                        .ok_or(())
                })
                .await;
            match found {
                Ok(pod) => Value::Pod(bound(context, &pod)),
                Err(super::view::Unmet::Pending(())) => {
                    return Err(StepError::Failed(format!(
                        "no ready pod matches `one {}` within {}",
                        selection_text(selection),
                        crate::model::duration::format(timeout)
                    )));
                }
                Err(super::view::Unmet::Cluster(why)) => return Err(StepError::Infrastructure(why)),
            }
        }
    };
    let note = match &value {
        Value::Pod(_) => "a pod".to_string(),
        Value::Object { kind, name } => format!("{kind}/{name}"),
        Value::Number(n) => n.to_string(),
        Value::Text(t) | Value::ReadName(t) => format!("{t:?}"),
    };
    context.variables.insert(name.to_string(), value);
    Ok(format!("${name} = {note}"))
}

/// What `let` reads from an object.
enum Read<'a> {
    /// `label KEY of TARGET`
    Label(&'a str),
    /// `name of TARGET`
    Name,
}

/// One live object a target stands for.
struct Found {
    kind: Kind,
    name: String,
    labels: Labels,
}

/// Reads a label or the name of the one object a target stands for, watch-driven: waits until
/// exactly one live object matches (for a label: until every match carries the same value) up to
/// the step's timeout. Returns the value and a note for the result that holds no generated name.
async fn read(
    context: &Context<'_>,
    read: Read<'_>,
    target: &Target,
    timeout: Duration,
) -> Result<(String, String), StepError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let outcome = context
        .view
        .wait_for(deadline, |view| match read_now(context, &read, target) {
            Ok(Ok(done)) => match view.unfinished() {
                None => Ok(Ok(done)),
                Some(why) => Err(format!("it was there only while {why}")),
            },
            Ok(Err(pending)) => Err(pending),
            Err(error) => Ok(Err(error)),
        })
        .await;
    match outcome {
        Ok(done) => done,
        Err(super::view::Unmet::Pending(last)) => Err(StepError::Failed(format!(
            "nothing to read within {}: {last}",
            crate::model::duration::format(timeout)
        ))),
        Err(super::view::Unmet::Cluster(why)) => Err(StepError::Infrastructure(why)),
    }
}

/// `Ok(Ok((value, note)))` once the read is unambiguous, `Ok(Err(why not yet))` before.
fn read_now(
    context: &Context<'_>,
    read: &Read<'_>,
    target: &Target,
) -> Result<Result<(String, String), String>, StepError> {
    let target_text = crate::syntax::format::target(target);
    let wanted = resolve(context, target)?;
    let Some(kind) = wanted.first().map(|(kind, _)| *kind) else {
        return Ok(Err(nothing_matches(target, &target_text)));
    };
    let found: Vec<Found> = objects_of(context, kind)
        .into_iter()
        .filter(|(name, _)| wanted.iter().any(|(_, wanted)| wanted == name))
        .map(|(name, labels)| Found { kind, name, labels })
        .collect();
    let plural = kind.spellings()[1];
    // Objects are named as results name them (`replicaset/web-{hash}`, `pod of ...`): a
    // generated name differs from run to run and from one cluster to another.
    let narrow = format!("narrow the selector until one matches, or name one (`{kind}/NAME`)");
    match (read, found.as_slice()) {
        (_, []) => Ok(Err(nothing_matches(target, &target_text))),
        (Read::Name, [one]) => Ok(Ok((one.name.clone(), format!("the name of {}", described(context, one))))),
        (Read::Name, several) => {
            let names = describe::tally(several.iter().map(|f| described(context, f)));
            Ok(Err(format!("{} {plural} match `{target_text}`: {names}; {narrow}", several.len())))
        }
        (Read::Label(key), found) => {
            let values: Vec<Option<&String>> = found.iter().map(|f| f.labels.get(*key)).collect();
            match (found, values.as_slice()) {
                ([one], [None]) => Ok(Err(format!("{} has no label `{key}`", described(context, one)))),
                (_, [Some(first), rest @ ..]) if rest.iter().all(|v| v == &Some(*first)) => {
                    let shown = describe::labels(&Labels::from([(key.to_string(), first.to_string())]));
                    let on = match found {
                        [one] => described(context, one),
                        several => format!("{} {plural} matching `{target_text}`", several.len()),
                    };
                    Ok(Ok((first.to_string(), format!("{shown} on {on}"))))
                }
                _ => {
                    let each = describe::tally(found.iter().zip(&values).map(|(f, v)| match v {
                        Some(v) => format!(
                            "{} has {}",
                            described(context, f),
                            describe::labels(&Labels::from([(key.to_string(), v.to_string())]))
                        ),
                        None => format!("{} has no {key}", described(context, f)),
                    }));
                    Ok(Err(format!(
                        "{} {plural} match `{target_text}` and their `{key}` differs ({each}); {narrow}",
                        found.len()
                    )))
                }
            }
        }
    }
}

fn nothing_matches(target: &Target, target_text: &str) -> String {
    match target {
        Target::Selection(s) => {
            format!("no {} matches `{target_text}`", s.kind.unwrap_or(Kind::Pod).name())
        }
        _ => format!("`{target_text}` does not exist"),
    }
}

/// An object as results name it: by role for pods, with generated hashes normalised.
fn described(context: &Context<'_>, found: &Found) -> String {
    if found.kind == Kind::Pod
        && let Some(pod) = context.view.live_pods().iter().find(|p| p.metadata.name.as_ref() == Some(&found.name))
    {
        return describe::pod(pod, &context.pod_variables());
    }
    let hash = found.labels.get("pod-template-hash").map(String::as_str);
    format!("{}/{}", found.kind, describe::normalise_name(&found.name, hash))
}

fn selection_text(selection: &crate::syntax::ast::Selection) -> String {
    match &selection.selector {
        Some(s) => format!("{} {s}", selection.kind_text.value),
        None => format!("{} all", selection.kind_text.value),
    }
}

fn bound(context: &Context<'_>, pod: &Pod) -> BoundPod {
    let controller = controller_of(&pod.metadata);
    let siblings = controller
        .as_ref()
        .map(|(_, _, uid)| {
            context
                .view
                .live_pods()
                .iter()
                .filter(|p| controller_of(&p.metadata).is_some_and(|(_, _, u)| &u == uid))
                .filter_map(|p| p.metadata.uid.clone())
                .collect()
        })
        .unwrap_or_default();
    BoundPod {
        name: pod.metadata.name.clone().unwrap_or_default(),
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        controller,
        siblings,
    }
}

/// `delete`, by kubectl's rule: an object named (or a variable's) that does not exist fails the
/// step, while one a selection listed may have gone since, which is what was asked. A 404 after
/// the API server failed mid-request may answer the retry of a delete that was done, so it counts.
async fn delete(context: &mut Context<'_>, target: &Target) -> Result<String, StepError> {
    let objects = resolve(context, target)?;
    let selected = matches!(target, Target::Selection(_));
    for (kind, name) in &objects {
        let sent = tokio::time::Instant::now();
        match api_for(context, *kind).delete(name, &DeleteParams::background()).await {
            // The object as deleted or marked for deletion, at the version of that write: the
            // write a guard's violation is traced to, and that later steps wait to see.
            Ok(answer) => {
                if let Some(deleted) = answer.left() {
                    context.wrote(Some((*kind).into()), &deleted.metadata);
                }
            }
            Err(kube::Error::Api(status))
                if status.code == 404 && (selected || context.view.api_failed_since(sent)) => {}
            Err(other) => return Err(other.into()),
        }
    }
    Ok(format!("deleted {} object(s)", objects.len()))
}

#[cfg(test)]
mod tests {
    use super::normalise_refusal;

    #[test]
    fn refusals_keep_the_cause_not_the_generated_name() {
        let cost = "Pod \"web-5c5958f8bf-8tl8c\" is invalid: metadata.annotations[controller.kubernetes.io/pod-deletion-cost]: Invalid value: \"high\": must be a 32bit integer";
        assert_eq!(
            normalise_refusal(cost),
            "metadata.annotations[controller.kubernetes.io/pod-deletion-cost]: Invalid value: \"high\": must be a 32bit integer"
        );
        let template = "Deployment.apps \"rng\" is invalid: spec.template.metadata.labels: Invalid value: {}: x";
        assert_eq!(normalise_refusal(template), "spec.template.metadata.labels: Invalid value: {}: x");
        assert_eq!(normalise_refusal("namespaces \"x\" not found"), "namespaces \"x\" not found");
        let several = "Pod \"web-8tl8c\" is invalid: [spec.containers[0].resources.limits[example.com/x]: Invalid value: \
                       \"500m\": must be an integer, spec.containers[0].resources.requests[example.com/x]: Invalid value: \
                       \"500m\": must be an integer]";
        assert_eq!(normalise_refusal(several), several.split_once("is invalid: ").unwrap().1);
    }

    #[test]
    fn the_api_servers_dump_of_a_pod_spec_difference_is_cut_and_its_verdict_kept() {
        let refusal = "Pod \"p\" is invalid: spec: Forbidden: pod updates may not change fields other than `x`\n@@ -1 +1 @@\n-a\n+b";
        assert_eq!(
            normalise_refusal(refusal),
            "Pod \"p\" is invalid: spec: Forbidden: pod updates may not change fields other than `x`"
        );
        let several_lines = "failed to create typed patch object: errors:\n  .spec.a: x\n  .spec.b: y";
        assert_eq!(normalise_refusal(several_lines), several_lines);
    }
}
