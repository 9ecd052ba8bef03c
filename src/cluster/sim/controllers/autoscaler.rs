//! The HorizontalPodAutoscaler controller (upstream's pkg/controller/podautoscaler), as it runs
//! on a cluster without a metrics API, like the testbed and a fresh kind cluster: an autoscaler
//! is synced when it is created and every 15 s after (the controller manager's
//! `--horizontal-pod-autoscaler-sync-period`; a change to it or to its target does not hasten
//! that); a target scaled above `maxReplicas` or below `minReplicas` is scaled back to the bound;
//! within them the metrics cannot be read, so nothing changes and the status says why. A target
//! at 0 replicas is left alone ("scaling is disabled").
//!
//! That is the part a runbook meets: `kubectl scale` on a Deployment an autoscaler owns is undone
//! within 15 s, and the pods it removed or added in between are real.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::{Tick, condition, spec_replicas, uid, write, write_status};
use crate::cluster::sim::resources::{self, Resource};
use crate::cluster::sim::store::Store;

/// How often an autoscaler is synced (the controller manager's default).
const SYNC_PERIOD: Duration = Duration::from_secs(15);

/// When each autoscaler (by uid) is next synced, per namespace.
#[derive(Default)]
pub struct Autoscalers {
    next_sync: HashMap<String, BTreeMap<String, Instant>>,
    /// The targets whose `spec.replicas` an autoscaler wrote since they were last taken: the
    /// write takes the field from the applier (see [`super::Controllers::take_rescaled`]).
    rescaled: Vec<(Resource, String, String)>,
}

impl Autoscalers {
    pub fn run(&mut self, store: &mut Store, tick: &mut Tick, namespace: &str) {
        let autoscalers: Vec<Value> =
            store.list(resources::HORIZONTAL_POD_AUTOSCALER, Some(namespace)).cloned().collect();
        let previous = self.next_sync.remove(namespace).unwrap_or_default();
        let mut next_sync = BTreeMap::new();
        for autoscaler in autoscalers {
            // A new autoscaler is synced at once (upstream queues it without delay).
            let due = previous.get(uid(&autoscaler)).copied().unwrap_or(tick.now);
            let next = if due <= tick.now {
                if let Some((resource, name)) = sync(store, tick, namespace, &autoscaler) {
                    self.rescaled.push((resource, namespace.to_string(), name));
                }
                tick.now + SYNC_PERIOD
            } else {
                due
            };
            tick.wake_at(next);
            next_sync.insert(uid(&autoscaler).to_string(), next);
        }
        if !next_sync.is_empty() {
            self.next_sync.insert(namespace.to_string(), next_sync);
        }
    }

    /// The targets rescaled since the last call.
    pub fn take_rescaled(&mut self) -> Vec<(Resource, String, String)> {
        std::mem::take(&mut self.rescaled)
    }

    /// Forgets the namespaces that are gone.
    pub fn retain(&mut self, namespaces: &[String]) {
        self.next_sync.retain(|namespace, _| namespaces.contains(namespace));
    }
}

/// Upstream's reconcileAutoscaler, without metrics: the target it rescaled, if it did.
fn sync(store: &mut Store, tick: &Tick, namespace: &str, autoscaler: &Value) -> Option<(Resource, String)> {
    let mut status = match &autoscaler["status"] {
        Value::Object(status) => Value::Object(status.clone()),
        _ => json!({}),
    };
    let target = &autoscaler["spec"]["scaleTargetRef"];
    let scaled = match scalable(store, namespace, target) {
        Ok(scaled) => scaled,
        Err(why) => {
            let message = format!("the HPA controller was unable to get the target's current scale: {why}");
            set_condition(&mut status, tick, "AbleToScale", "False", "FailedGetScale", &message);
            write_status(store, resources::HORIZONTAL_POD_AUTOSCALER, namespace, autoscaler, status);
            return None;
        }
    };
    let message = "the HPA controller was able to get the target's current scale";
    set_condition(&mut status, tick, "AbleToScale", "True", "SucceededGetScale", message);
    let (resource, current) = (scaled.0, spec_replicas(&scaled.1));
    let spec = &autoscaler["spec"];
    let min = spec["minReplicas"].as_i64().unwrap_or(1);
    let max = spec["maxReplicas"].as_i64().unwrap_or(0);
    let metrics = spec["metrics"].as_array().map(Vec::as_slice).unwrap_or_default();
    let scaled_to_zero = condition(autoscaler, "ScaledToZero").is_some_and(|c| c["status"] == "True");
    let can_wake = metrics.iter().any(|m| m["type"] == "Object" || m["type"] == "External");
    // A target at zero stays there unless the autoscaler scaled it there itself and can wake it.
    let wakes_from_zero = scaled_to_zero && (min != 0 || can_wake);
    let desired = if current == 0 && !wakes_from_zero {
        let message = "scaling is disabled since the replica count of the target is zero";
        set_condition(&mut status, tick, "ScalingActive", "False", "ScalingDisabled", message);
        None
    } else if current > max && current != 0 {
        Some(max)
    } else if current < min && current != 0 {
        Some(min)
    } else {
        // The metrics cannot be read: the status says so and nothing is scaled.
        let (reason, message) = unreadable_metric(metrics.first());
        set_condition(&mut status, tick, "ScalingActive", "False", reason, &message);
        let failed_reads = Value::Array(vec![json!({"type": ""}); metrics.len()]);
        let desired = status["desiredReplicas"].as_i64().unwrap_or(0);
        set_status(&mut status, autoscaler, current, desired, failed_reads, None);
        write_status(store, resources::HORIZONTAL_POD_AUTOSCALER, namespace, autoscaler, status);
        return None;
    };
    let mut rescaled = None;
    match desired {
        Some(desired) => {
            let mut target = scaled.1;
            target["spec"]["replicas"] = desired.into();
            rescaled = target["metadata"]["name"].as_str().map(|name| (resource, name.to_string()));
            write(store, resource, namespace, target);
            let message = format!("the HPA controller was able to update the target scale to {desired}");
            set_condition(&mut status, tick, "AbleToScale", "True", "SucceededRescale", &message);
            let (state, reason, message) = if current > 0 && desired == 0 && min == 0 && can_wake {
                ("True", "ScaledToZero", "the HPA controller scaled the workload to zero")
            } else {
                ("False", "NotScaledToZero", "the HPA controller did not scale the workload to zero")
            };
            set_condition(&mut status, tick, "ScaledToZero", state, reason, message);
            set_status(&mut status, autoscaler, current, desired, Value::Null, Some(tick));
        }
        None => set_status(&mut status, autoscaler, current, current, Value::Null, None),
    }
    write_status(store, resources::HORIZONTAL_POD_AUTOSCALER, namespace, autoscaler, status);
    rescaled
}

/// Whether `autoscaler` scales the object `name` of `resource`.
pub fn scales(autoscaler: &Value, resource: Resource, name: &str) -> bool {
    let target = &autoscaler["spec"]["scaleTargetRef"];
    group_of(target) == resource.group && target["kind"] == resource.kind && target["name"] == name
}

/// The API group of a target reference's apiVersion (`apps/v1` → `apps`, `v1` → the core group).
fn group_of(target: &Value) -> &str {
    target["apiVersion"].as_str().and_then(|v| v.split_once('/')).map_or("", |(group, _)| group)
}

/// The target as its scale subresource reads it: the kinds this cluster can scale (Deployment,
/// ReplicaSet, StatefulSet), or why not, in the API's words.
fn scalable(store: &Store, namespace: &str, target: &Value) -> Result<(Resource, Value), String> {
    let group = group_of(target);
    let kind = target["kind"].as_str().unwrap_or_default();
    let name = target["name"].as_str().unwrap_or_default();
    let resource = resources::ALL.iter().copied().find(|r| r.group == group && r.kind == kind);
    let Some(resource) = resource else {
        return Err(format!("no matches for kind \"{kind}\" in group \"{group}\""));
    };
    if ![resources::DEPLOYMENT, resources::REPLICA_SET, resources::STATEFUL_SET].contains(&resource) {
        return Err("the server could not find the requested resource".to_string());
    }
    match store.get(resource, namespace, name) {
        Some(object) => Ok((resource, object.clone())),
        None => Err(format!("{}.{} \"{name}\" not found", resource.plural, resource.group)),
    }
}

/// Why the first metric cannot be read, as the condition says it (the testbed has no metrics
/// API, nor has a fresh kind cluster).
fn unreadable_metric(metric: Option<&Value>) -> (&'static str, String) {
    const NO_RESOURCE_METRICS: &str = "unable to fetch metrics from resource metrics API: the server could not find the requested resource (get pods.metrics.k8s.io)";
    let metric = metric.unwrap_or(&Value::Null);
    let (reason, why) = match metric["type"].as_str().unwrap_or_default() {
        kind @ ("Resource" | "ContainerResource") => {
            let source = if kind == "Resource" { &metric["resource"] } else { &metric["containerResource"] };
            let resource = source["name"].as_str().unwrap_or_default();
            let what = if source["target"]["averageValue"].is_null() { "utilization" } else { "usage" };
            let reason =
                if kind == "Resource" { "FailedGetResourceMetric" } else { "FailedGetContainerResourceMetric" };
            (
                reason,
                format!(
                    "failed to get {resource} {what}: unable to get metrics for resource {resource}: {NO_RESOURCE_METRICS}"
                ),
            )
        }
        "Pods" => ("FailedGetPodsMetric", "no custom metrics API (custom.metrics.k8s.io) registered".to_string()),
        "Object" => ("FailedGetObjectMetric", "no custom metrics API (custom.metrics.k8s.io) registered".to_string()),
        _ => ("FailedGetExternalMetric", "no external metrics API (external.metrics.k8s.io) registered".to_string()),
    };
    (reason, format!("the HPA was unable to compute the replica count: {why}"))
}

/// Upstream's setStatus: replicas now and wanted, what was read of each metric (`read`: an
/// empty entry per metric when the reads failed, null when none was tried), the conditions, the
/// generation seen, and when it last scaled.
fn set_status(
    status: &mut Value,
    autoscaler: &Value,
    current: i64,
    desired: i64,
    read: Value,
    rescaled: Option<&Tick>,
) {
    status["currentMetrics"] = read;
    set_counts(status, current, desired);
    status["observedGeneration"] = autoscaler["metadata"]["generation"].clone();
    if let Some(tick) = rescaled {
        status["lastScaleTime"] = tick.timestamp().into();
    }
}

fn set_counts(status: &mut Value, current: i64, desired: i64) {
    let Some(fields) = status.as_object_mut() else { return };
    // currentReplicas is omitted when 0; desiredReplicas is always written.
    if current == 0 {
        fields.remove("currentReplicas");
    } else {
        fields.insert("currentReplicas".into(), current.into());
    }
    fields.insert("desiredReplicas".into(), desired.into());
}

/// Upstream's setConditionInList: a new condition goes last; the transition time moves only when
/// the status does; reason and message are always the latest.
fn set_condition(status: &mut Value, tick: &Tick, kind: &str, state: &str, reason: &str, message: &str) {
    if !status["conditions"].is_array() {
        status["conditions"] = json!([]);
    }
    let Some(conditions) = status["conditions"].as_array_mut() else { return };
    let index = match conditions.iter().position(|c| c["type"] == kind) {
        Some(index) => index,
        None => {
            conditions.push(json!({"type": kind, "status": ""}));
            conditions.len() - 1
        }
    };
    let condition = &mut conditions[index];
    if condition["status"] != state {
        condition["lastTransitionTime"] = tick.timestamp().into();
    }
    condition["status"] = state.into();
    condition["reason"] = reason.into();
    condition["message"] = message.into();
}
