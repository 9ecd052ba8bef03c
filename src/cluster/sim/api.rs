//! Kubernetes' HTTP API, served in-process: `kube::Client` sends its requests here instead of over
//! a socket, so the executor's code (discovery, server-side apply, patches, list-then-watch
//! reflectors) is the same on the built-in cluster as on a real one. Nothing listens anywhere.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc, watch};

use super::controllers::{self, Controllers};
use super::error::ApiError;
use super::resources::{self, Resource};
use super::store::{self, Change, ChangeType, Store};
use super::typed_patch::Refusal;
use super::{Pace, claims, cluster_ips, node_ports, validate};

pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// The field manager whose applied configuration server-side apply remembers, per object.
type AppliedKey = (Resource, String, String);

/// An applied configuration and the uid of the object it was applied to: it stays with that object
/// while the object exists, being deleted included (a pod its finalizers hold), as managedFields
/// do, and means nothing to an object made again under the same name.
struct Applied {
    uid: String,
    config: Value,
}

struct State {
    store: Store,
    controllers: Controllers,
    /// What each object's last server-side apply set, so a later apply can drop what it no longer
    /// sets (the part of managedFields a single field manager needs).
    applied: BTreeMap<AppliedKey, Applied>,
    /// When the controllers next have something due (a pod turning Ready, a grace period ending).
    next_due: Option<tokio::time::Instant>,
    wakes: Wakes,
}

/// What wakes the open watches: one channel a kind, so a change wakes only the watches of its
/// kind (a pod's label change used to wake every watch of every kind, each to find nothing).
#[derive(Default)]
struct Wakes {
    by_resource: BTreeMap<Resource, watch::Sender<u64>>,
    /// The resourceVersion up to which the watches have been woken.
    woken_to: u64,
}

impl Wakes {
    fn subscribe(&mut self, resource: Resource) -> watch::Receiver<u64> {
        self.by_resource.retain(|_, sender| sender.receiver_count() > 0);
        self.by_resource.entry(resource).or_insert_with(|| watch::channel(0).0).subscribe()
    }

    /// Wakes the watches of every kind that changed since the last call; the others' places in
    /// the log move past those changes, as if they had been woken and found nothing.
    fn wake(&mut self, store: &mut Store) {
        let version = store.resource_version();
        if version == self.woken_to {
            return;
        }
        let mut changed: Vec<Resource> = Vec::new();
        match store.changes_since(self.woken_to) {
            Ok(changes) => {
                for change in changes {
                    if !changed.contains(&change.resource) {
                        changed.push(change.resource);
                    }
                }
            }
            // More changes than the log holds: every watch looks (and finds it must re-list).
            Err(_) => changed.extend(self.by_resource.keys().copied()),
        }
        for resource in &changed {
            if let Some(sender) = self.by_resource.get(resource) {
                sender.send_replace(version);
            }
        }
        store.pass_over(self.woken_to, &changed);
        self.woken_to = version;
    }
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the timer task when something new is due.
    timers: Arc<Notify>,
}

/// The built-in cluster, as a `tower::Service` for `kube::Client::new`.
#[derive(Clone)]
pub struct SimCluster {
    shared: Arc<Shared>,
}

impl SimCluster {
    /// A cluster with the testbed's nodes (a tainted control-plane node and `workers` workers).
    /// Must be called inside the (paused-clock) runtime that will run it: it starts the timer
    /// task that moves pods along their lifecycle.
    pub fn start(workers: usize, pace: Pace) -> SimCluster {
        let mut store = Store::new(super::clock::Clock::default());
        for node in controllers::default_nodes(workers, pace) {
            store.create(resources::NODE, "", node).expect("the default nodes are valid");
        }
        for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let mut namespace = json!({"metadata": {"name": name}});
            prepare_for_create(&store, resources::NAMESPACE, &mut namespace);
            store.create(resources::NAMESPACE, "", namespace).expect("the system namespaces are valid");
        }
        let wakes = Wakes { woken_to: store.resource_version(), ..Wakes::default() };
        let state =
            State { store, controllers: Controllers::new(pace), applied: BTreeMap::new(), next_due: None, wakes };
        let timers = Arc::new(Notify::new());
        let shared = Arc::new(Shared { state: Mutex::new(state), timers: timers.clone() });
        tokio::spawn(run_timers(Arc::downgrade(&shared), timers));
        SimCluster { shared }
    }

    /// The cluster's clock, which its timestamps are read against.
    pub fn clock(&self) -> super::clock::Clock {
        lock(&self.shared).store.clock
    }

    /// Stops the controllers' reaction to a write between two of its rounds once `interrupted`
    /// says so (see [`Controllers::stop_when`]): for a run that is ending.
    pub fn stop_reacting_when(&self, interrupted: impl Fn() -> bool + Send + 'static) {
        lock(&self.shared).controllers.stop_when(interrupted);
    }

    /// A client for this cluster, as kube-rs builds one for a real API server.
    pub fn client(&self) -> kube::Client {
        kube::Client::new(self.clone(), "default")
    }
}

/// Runs the controllers whenever something they scheduled is due; ends with the cluster.
async fn run_timers(shared: std::sync::Weak<Shared>, wake: Arc<Notify>) {
    loop {
        // Registered before reading the due time, so a wake-up in between is not lost.
        let notified = wake.notified();
        let due = {
            let Some(shared) = shared.upgrade() else { return };
            let mut state = lock(&shared);
            match state.next_due {
                Some(due) if due <= tokio::time::Instant::now() => {
                    settle(&mut state);
                    continue;
                }
                due => due,
            }
        };
        match due {
            Some(due) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => {}
                    _ = notified => {}
                }
            }
            None => notified.await,
        }
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Lets the controllers react to what changed, then wakes the watches of what did (a write
/// that changed nothing, as a patch to the values an object already has, wakes no one). An
/// autoscaler's write of `replicas` takes the field from the applier, as any other write does
/// (`update_by_another_manager`).
fn settle(state: &mut State) {
    state.next_due = state.controllers.reconcile(&mut state.store);
    for key in state.controllers.take_rescaled() {
        if let Some(spec) = state
            .applied
            .get_mut(&key)
            .and_then(|applied| applied.config.get_mut("spec"))
            .and_then(Value::as_object_mut)
        {
            spec.remove("replicas");
        }
    }
    state.wakes.wake(&mut state.store);
}

impl tower::Service<Request<kube::client::Body>> for SimCluster {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<kube::client::Body>) -> Self::Future {
        let shared = self.shared.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let body = match body.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(error) => {
                    return Ok(error_response(&ApiError::bad_request(format!("cannot read the body: {error}"))));
                }
            };
            let content_type =
                parts.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            let metadata_only = parts
                .headers
                .get(http::header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|accept| accept.split(';').any(|p| p.trim() == "as=PartialObjectMetadata"));
            let call = Call {
                method: parts.method,
                path: parts.uri.path().to_string(),
                query: parse_query(parts.uri.query().unwrap_or("")),
                content_type,
                body,
            };
            Ok(match serve(&shared, call) {
                // The client asked for the object's metadata only, as the API server serves it.
                Ok(Reply::Json(code, value)) if metadata_only && value["metadata"].is_object() => {
                    json_response(code, &PartialObjectMetadata::of(&value["metadata"]))
                }
                Ok(Reply::Json(code, value)) => json_response(code, &*value),
                Ok(Reply::Watch(stream)) => stream,
                Err(error) => error_response(&error),
            })
        })
    }
}

struct Call {
    method: Method,
    path: String,
    query: BTreeMap<String, String>,
    content_type: String,
    body: Bytes,
}

enum Reply {
    /// An object as stored (shared with the store), or any other JSON answer.
    Json(StatusCode, Arc<Value>),
    Watch(Response<Body>),
}

/// Where a request points: a kind, maybe a namespace, maybe a name and subresource.
struct Target {
    resource: Resource,
    namespace: String,
    name: Option<String>,
    /// The request names the object's `status` subresource.
    status: bool,
}

fn serve(shared: &Arc<Shared>, call: Call) -> Result<Reply, ApiError> {
    let segments: Vec<&str> = call.path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        ["version"] => return Ok(Reply::Json(StatusCode::OK, Arc::new(version()))),
        ["api"] => {
            return Ok(Reply::Json(StatusCode::OK, Arc::new(json!({"kind": "APIVersions", "versions": ["v1"]}))));
        }
        ["apis"] => return Ok(Reply::Json(StatusCode::OK, Arc::new(group_list()))),
        ["api", "v1"] => return Ok(Reply::Json(StatusCode::OK, Arc::new(resource_list("", "v1")))),
        ["apis", "autoscaling", "v1", ..] => return Err(ApiError::autoscaling_v1_not_served()),
        ["apis", group, version] if serves(group, version) => {
            return Ok(Reply::Json(StatusCode::OK, Arc::new(resource_list(group, version))));
        }
        // A group served in other versions answers a Status; one not served at all, Go's mux.
        ["apis", group, version, ..] if !serves(group, version) => {
            return Err(if resources::groups().contains(group) {
                ApiError::no_route()
            } else {
                ApiError::page_not_found()
            });
        }
        ["api", version, ..] if *version != "v1" => return Err(ApiError::no_route()),
        _ => {}
    }
    if segments.iter().any(|segment| holds_bad_escape(segment)) {
        return Err(ApiError::unparsable_url());
    }
    let target = route(&segments).ok_or_else(ApiError::no_route)?;
    if let Some(name) = &target.name
        && (name == "." || name == "..")
    {
        return Err(ApiError::invalid_name_parameter(name));
    }
    let watching = matches!(call.query.get("watch").map(String::as_str), Some("true" | "1"));
    match (&call.method, &target.name) {
        (&Method::GET, None) if watching => watch_stream(shared, &target, &call.query),
        (&Method::GET, None) => {
            Ok(Reply::Json(StatusCode::OK, Arc::new(list(&lock(shared).store, &target, &call.query)?)))
        }
        (&Method::GET, Some(name)) => {
            let object = lock(shared).store.get_shared(target.resource, &target.namespace, name);
            Ok(Reply::Json(StatusCode::OK, object.ok_or_else(|| ApiError::not_found(target.resource, name))?))
        }
        // Only a create's dry run is served: the executor asks no other, and a dry run served
        // as a write would change what it should not.
        _ if call.method != Method::GET
            && call.query.get("dryRun").is_some_and(|d| d != "All" || call.method != Method::POST) =>
        {
            Err(ApiError::dry_run_not_served())
        }
        (&Method::POST, None) if call.query.contains_key("dryRun") => {
            let object = parse_json(&call.body)?;
            let object = admitted(&lock(shared).store, &target, object)?;
            Ok(Reply::Json(StatusCode::CREATED, Arc::new(object)))
        }
        (&Method::POST, None) => {
            let object = parse_json(&call.body)?;
            write(shared, |state| create(state, &target, object)).map(|o| Reply::Json(StatusCode::CREATED, o))
        }
        (&Method::PUT, Some(name)) => {
            let object = parse_json(&call.body)?;
            write(shared, |state| replace(state, &target, name, object)).map(|o| Reply::Json(StatusCode::OK, o))
        }
        (&Method::PATCH, Some(name)) => {
            let body = parse_json(&call.body)?;
            let content_type = call.content_type.split(';').next().unwrap_or("").trim().to_string();
            write(shared, |state| match content_type.as_str() {
                "application/apply-patch+yaml" => apply(state, &target, name, body),
                // A strategic merge patch merges lists by key and obeys `$patch` directives; read
                // as a merge patch it would replace lists whole, a wrong object stored. The
                // executor never sends one (undo sends a JSON patch), so it is refused as the
                // API server refuses it for a kind without a strategy.
                "application/merge-patch+json" => merge_patch(state, &target, name, &body),
                "application/json-patch+json" => json_patch(state, &target, name, body),
                other => Err(ApiError::unsupported_media_type(other)),
            })
            .map(|o| Reply::Json(StatusCode::OK, o))
        }
        (&Method::DELETE, Some(name)) => {
            let options = if call.body.is_empty() { json!({}) } else { parse_json(&call.body)? };
            write(shared, |state| delete(state, &target, name, &options)).map(|o| Reply::Json(StatusCode::OK, o))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// Runs a write, then the controllers, then wakes the watches and the timer task.
fn write(
    shared: &Shared,
    change: impl FnOnce(&mut State) -> Result<Arc<Value>, ApiError>,
) -> Result<Arc<Value>, ApiError> {
    let mut state = lock(shared);
    let before = state.next_due;
    let written = change(&mut state)?;
    settle(&mut state);
    if state.next_due.is_some() && state.next_due != before {
        shared.timers.notify_one();
    }
    // What the API returns is the object as stored after the write; the controllers may have
    // changed it since (a status), as on a real cluster, so the write's own version is returned.
    Ok(written)
}

/// `/api/v1/...` or `/apis/GROUP/VERSION/...`, then `[namespaces/NS/]PLURAL[/NAME]`.
fn route(segments: &[&str]) -> Option<Target> {
    let (group, version, rest) = match segments {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", namespace, plural, rest @ ..] if resources::by_plural(group, version, plural).is_some() => {
            (namespace.to_string(), std::iter::once(*plural).chain(rest.iter().copied()).collect::<Vec<_>>())
        }
        _ => (String::new(), rest.to_vec()),
    };
    let resource = resources::by_plural(group, version, rest.first()?)?;
    let (name, status) = match rest.as_slice() {
        [_] => (None, false),
        [_, name] => (Some(name.to_string()), false),
        [_, name, "status"] => (Some(name.to_string()), true),
        _ => return None,
    };
    if resource.namespaced && namespace.is_empty() && name.is_some() {
        return None;
    }
    Some(Target { resource, namespace, name, status })
}

fn create(state: &mut State, target: &Target, object: Value) -> Result<Arc<Value>, ApiError> {
    let object = admitted(&state.store, target, object)?;
    state.store.create(target.resource, &target.namespace, object)
}

/// A new object as it would be stored, or why the API refuses it: everything a create does short
/// of storing it, which is all a dry run does.
fn admitted(store: &Store, target: &Target, mut object: Value) -> Result<Value, ApiError> {
    check_kind(target.resource, &object)?;
    decodable(target.resource, &object)?;
    drop_sent_status(target, &mut object);
    if target.resource.namespaced {
        object["metadata"]["namespace"] = target.namespace.clone().into();
    }
    super::defaults::apply(target.resource, &mut object);
    begin_write(store, target, None, &mut object)?;
    admit(store, target, &mut object)?;
    prepare_for_create(store, target.resource, &mut object);
    validate::create(target.resource, &object)?;
    refuse_without_its_controller(target.resource, &object)?;
    claims::refuse_unmodelled(store, target.resource, &target.namespace, &object)?;
    within_replica_limit(store, target, &object)?;
    store.may_create(target.resource, &target.namespace, &object)?;
    Ok(object)
}

/// What a new object meets before validation: for a pod, the registry's merge of its label keys
/// into its selectors, then the admission plugins (the lookups of the service account and the
/// priority class it names, and the priority that class gives).
fn admit(store: &Store, target: &Target, object: &mut Value) -> Result<(), ApiError> {
    if target.resource != resources::POD {
        return Ok(());
    }
    super::label_keys::merge_into_selectors(object);
    controllers::admit_pod(store, &target.namespace, object).map_err(ApiError::forbidden)
}

/// The status the registry gives a new object, whatever the writer sent (upstream's
/// PrepareForCreate): a pod is Pending with its QoS class, and a gated one says it waits for its
/// gates; a namespace is Active and carries the `kubernetes` finalizer its controller removes.
fn prepare_for_create(store: &Store, resource: Resource, object: &mut Value) {
    count_template_generation(resource, None, object);
    if resource == resources::POD {
        object["status"] = controllers::new_pod_status(store, object);
    } else if resource == resources::NAMESPACE {
        object["status"] = json!({"phase": "Active"});
        let finalizers = &mut object["spec"]["finalizers"];
        if !finalizers.as_array().is_some_and(|f| f.iter().any(|f| f == "kubernetes")) {
            match finalizers.as_array_mut() {
                Some(finalizers) => finalizers.push("kubernetes".into()),
                None => *finalizers = json!(["kubernetes"]),
            }
        }
    }
}

/// A DaemonSet's template generation, which the API server keeps beside `generation` and shows
/// in apps/v1 as an annotation: 1 on create (or what the creator set, if more), then one more on
/// each change of the template, whatever a writer sends. Its controller labels its pods with it
/// (`pod-template-generation`), so a change of the spec outside the template must not count.
fn count_template_generation(resource: Resource, current: Option<&Value>, object: &mut Value) {
    const TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";
    if resource != resources::DAEMON_SET {
        return;
    }
    let of = |ds: &Value| ds["metadata"]["annotations"][TEMPLATE_GENERATION].as_str()?.parse::<i64>().ok();
    let generation = match current {
        None => of(object).filter(|generation| *generation >= 1).unwrap_or(1),
        Some(current) => {
            of(current).unwrap_or(1) + i64::from(current["spec"]["template"] != object["spec"]["template"])
        }
    };
    object["metadata"]["annotations"][TEMPLATE_GENERATION] = generation.to_string().into();
}

/// A body the API server could not decode into the kind's types is refused before anything else.
fn decodable(resource: Resource, object: &Value) -> Result<(), ApiError> {
    if let Some(why) = super::schema::type_error(resource, object) {
        return Err(ApiError::undecodable(resource, &why));
    }
    if super::schema::holds_unreadable_quantity(resource, object) {
        return Err(ApiError::undecodable(resource, super::quantity::FORMAT_ERROR));
    }
    Ok(())
}

/// After validation, as the API server would have accepted the object: only a valid object of
/// a kind whose controller does not run here is turned away.
fn refuse_without_its_controller(resource: Resource, object: &Value) -> Result<(), ApiError> {
    let metadata = &object["metadata"];
    let name = || metadata["name"].as_str().or_else(|| metadata["generateName"].as_str()).unwrap_or_default();
    if resources::CONTROLLER_NOT_RUN.contains(&resource) {
        return Err(ApiError::controller_not_run(resource, name()));
    }
    if resources::ADMISSION_NOT_RUN.contains(&resource) {
        return Err(ApiError::admission_not_run(resource, name()));
    }
    let claims = object["spec"]["volumeClaimTemplates"].as_array().is_some_and(|t| !t.is_empty());
    if resource == resources::STATEFUL_SET && claims {
        return Err(ApiError::claims_not_modelled(resource, name()));
    }
    Ok(())
}

/// A valid write that would take the replicas of a namespace's Deployments, StatefulSets and
/// ReplicaSets no Deployment owns beyond `MAX_REPLICAS` in all is turned away (see there why);
/// an owned ReplicaSet written directly is held to the limit on its own. A target of a
/// HorizontalPodAutoscaler counts at least its `minReplicas` (the autoscaler will scale it
/// there), so an autoscaler is held to the limit too. Per namespace, so that a scenario's verdict
/// does not hang on the scenarios that run beside it.
fn within_replica_limit(store: &Store, target: &Target, object: &Value) -> Result<(), ApiError> {
    const LIMITED: [Resource; 3] = [resources::DEPLOYMENT, resources::REPLICA_SET, resources::STATEFUL_SET];
    let autoscaler = target.resource == resources::HORIZONTAL_POD_AUTOSCALER;
    if !LIMITED.contains(&target.resource) && !autoscaler {
        return Ok(());
    }
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let written = |resource: Resource, other: &Value| {
        resource == target.resource && other["metadata"]["name"].as_str() == Some(name)
    };
    // The namespace's autoscalers as they will be after the write.
    let stored = store.list(resources::HORIZONTAL_POD_AUTOSCALER, Some(&target.namespace));
    let autoscalers: Vec<&Value> = stored
        .filter(|other| !written(resources::HORIZONTAL_POD_AUTOSCALER, other))
        .chain(autoscaler.then_some(object))
        .collect();
    let counted = |resource: Resource, object: &Value| {
        let owned_by_a_deployment =
            controllers::controller_of(object).is_some_and(|owner| owner["kind"] == "Deployment");
        resource != resources::REPLICA_SET || !owned_by_a_deployment
    };
    // An unset spec.replicas is 1 (the API's default); an autoscaler leaves a target at 0 alone.
    let replicas = |resource: Resource, object: &Value| {
        let replicas = object["spec"]["replicas"].as_i64().unwrap_or(1).max(0);
        let floor = autoscalers
            .iter()
            .filter(|a| controllers::scales(a, resource, object["metadata"]["name"].as_str().unwrap_or_default()))
            .map(|a| a["spec"]["minReplicas"].as_i64().unwrap_or(1))
            .max()
            .unwrap_or(0);
        if replicas == 0 { 0 } else { replicas.max(floor) }
    };
    let own = if autoscaler { 0 } else { replicas(target.resource, object) };
    let mut total = if !autoscaler && counted(target.resource, object) { own } else { 0 };
    for resource in LIMITED {
        total += store
            .list(resource, Some(&target.namespace))
            .filter(|other| counted(resource, other))
            .filter(|other| autoscaler || !written(resource, other))
            .map(|other| replicas(resource, other))
            .sum::<i64>();
    }
    if own.max(total) > super::MAX_REPLICAS {
        return Err(ApiError::beyond_replica_limit(target.resource, name, own.max(total)));
    }
    Ok(())
}

fn replace(state: &mut State, target: &Target, name: &str, object: Value) -> Result<Arc<Value>, ApiError> {
    check_kind(target.resource, &object)?;
    decodable(target.resource, &object)?;
    let current = existing(state, target, name)?;
    if let Some(expected) = object["metadata"]["resourceVersion"].as_str()
        && current["metadata"]["resourceVersion"].as_str() != Some(expected)
    {
        return Err(ApiError::modified(target.resource, name));
    }
    update_by_another_manager(state, target, &current, object)
}

fn merge_patch(state: &mut State, target: &Target, name: &str, patch: &Value) -> Result<Arc<Value>, ApiError> {
    let current = existing(state, target, name)?;
    let mut patched = (*current).clone();
    merge(&mut patched, patch);
    update_by_another_manager(state, target, &current, patched)
}

fn json_patch(state: &mut State, target: &Target, name: &str, operations: Value) -> Result<Arc<Value>, ApiError> {
    let current = existing(state, target, name)?;
    let patched = super::json_patch::apply(&current, operations)?;
    update_by_another_manager(state, target, &current, patched)
}

/// A write that is not rehearse's server-side apply (a `scale`, `label` or `select` step): it
/// takes the fields it changes from the applier, as an update takes them from every other field
/// manager upstream (structured-merge-diff's Updater.Update, forced). A later apply that leaves
/// such a field out then leaves it as it is, instead of dropping it.
fn update_by_another_manager(
    state: &mut State,
    target: &Target,
    current: &Value,
    object: Value,
) -> Result<Arc<Value>, ApiError> {
    let written = update(state, target, current, object)?;
    let name = current["metadata"]["name"].as_str().unwrap_or_default().to_string();
    if let Some(owned) = state.applied.get_mut(&(target.resource, target.namespace.clone(), name)) {
        disown_changed(&mut owned.config, current, &written, &mut Vec::new(), atomic_fields(target.resource));
    }
    Ok(written)
}

/// Removes from `owned` (an applied configuration) the fields that differ between `before` and
/// `after`. A map whose every field is taken is no longer the applier's; an atomic one is taken
/// whole, as are lists, which the applier sets whole.
fn disown_changed(owned: &mut Value, before: &Value, after: &Value, at: &mut Vec<String>, atomic: &[&[&str]]) {
    let Some(fields) = owned.as_object_mut() else { return };
    fields.retain(|key, owned| {
        let (was, now) = (before.get(key), after.get(key));
        if was == now {
            return true;
        }
        at.push(key.clone());
        let keep = match (was, now) {
            (Some(was), Some(now)) if owned.is_object() && now.is_object() && !is_atomic(at, atomic) => {
                disown_changed(owned, was, now, at, atomic);
                owned.as_object().is_some_and(|fields| !fields.is_empty())
            }
            _ => false,
        };
        at.pop();
        keep
    });
}

/// The fields server-side apply sets whole, never key by key (`+mapType=atomic` and
/// `+structType=atomic` in the API's types): a Service's selector and a pod's node selector
/// (string maps), a workload's or disruption budget's label selector (a LabelSelector).
fn atomic_fields(resource: Resource) -> &'static [&'static [&'static str]] {
    const SELECTOR: &[&str] = &["spec", "selector"];
    const NODE_SELECTOR: &[&str] = &["spec", "nodeSelector"];
    const TEMPLATE_NODE_SELECTOR: &[&str] = &["spec", "template", "spec", "nodeSelector"];
    use resources::{DAEMON_SET, DEPLOYMENT, POD, POD_DISRUPTION_BUDGET, REPLICA_SET, SERVICE, STATEFUL_SET};
    if [SERVICE, POD_DISRUPTION_BUDGET].contains(&resource) {
        &[SELECTOR]
    } else if resource == POD {
        &[NODE_SELECTOR]
    } else if [DEPLOYMENT, REPLICA_SET, DAEMON_SET, STATEFUL_SET].contains(&resource) {
        &[SELECTOR, TEMPLATE_NODE_SELECTOR]
    } else {
        &[]
    }
}

fn is_atomic(at: &[String], atomic: &[&[&str]]) -> bool {
    atomic.iter().any(|path| path.len() == at.len() && path.iter().zip(at).all(|(a, b)| *a == b))
}

/// Sets each atomic field the applied configuration holds whole, as it is applied.
fn replace_atomic_fields(resource: Resource, merged: &mut Value, applied: &Value) {
    for path in atomic_fields(resource) {
        let Some(value) = path.iter().try_fold(applied, |value, field| value.get(*field)) else { continue };
        let Some(slot) = path.iter().try_fold(&mut *merged, |value, field| value.get_mut(*field)) else { continue };
        *slot = value.clone();
    }
}

/// Server-side apply for one field manager: creates the object, or sets what the applied
/// configuration sets and drops what the previous apply set and this one no longer does.
fn apply(state: &mut State, target: &Target, name: &str, mut applied: Value) -> Result<Arc<Value>, ApiError> {
    check_kind(target.resource, &applied)?;
    if applied["metadata"]["name"].as_str() != Some(name) {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            applied["metadata"]["name"].as_str().unwrap_or_default()
        )));
    }
    // What the applier owns is kept apart from the object (see `Applied`): the API server
    // refuses to be sent it, as `kubectl get -o yaml --show-managed-fields` prints it.
    if !applied["metadata"]["managedFields"].is_null() {
        return Err(ApiError::bad_request("metadata.managedFields must be nil"));
    }
    if let Some(problem) = super::schema::null_finalizer(&applied) {
        return Err(ApiError::untyped_patch(target.resource, &target.namespace, name, &[problem]));
    }
    match super::typed_patch::check(target.resource, &mut applied) {
        Some(Refusal::Typed(problem)) => {
            return Err(ApiError::untyped_patch(target.resource, &target.namespace, name, &[problem]));
        }
        Some(Refusal::Unconvertible(why)) => {
            return Err(ApiError::unconvertible(target.resource, &target.namespace, name, &why));
        }
        None => {}
    }
    if let Some(path) = super::schema::undeclared_field(target.resource, &applied) {
        let problem = format!("{path}: field not declared in schema");
        return Err(ApiError::untyped_patch(target.resource, &target.namespace, name, &[problem]));
    }
    let duplicates = super::schema::duplicate_entries(target.resource, &applied);
    if !duplicates.is_empty() {
        return Err(ApiError::untyped_patch(target.resource, &target.namespace, name, &duplicates));
    }
    if super::schema::holds_unreadable_quantity(target.resource, &applied) {
        let why = super::quantity::FORMAT_ERROR;
        return Err(ApiError::unconvertible(target.resource, &target.namespace, name, why));
    }
    // Checked against the schema, then set aside, as upstream's reset fields are: neither stored
    // nor owned by the applier.
    drop_sent_status(target, &mut applied);
    if target.resource.namespaced {
        applied["metadata"]["namespace"] = target.namespace.clone().into();
    }
    let key = (target.resource, target.namespace.clone(), name.to_string());
    let current = state.store.get_shared(target.resource, &target.namespace, name);
    // A manifest copied from a live cluster names the object there by its uid and version:
    // upstream's patcher and registry hold them to the object here (see also validate::update).
    if current.is_none()
        && let Some(uid) = applied["metadata"]["uid"].as_str().filter(|uid| !uid.is_empty())
    {
        return Err(ApiError::uid_mismatch(target.resource, name, uid));
    }
    if let Some(version) = applied["metadata"]["resourceVersion"].as_str().filter(|v| !v.is_empty()) {
        let parsed = crate::model::resource_version::parse(version)
            .map_err(|why| ApiError::unparsable_resource_version(version, why))?;
        // Version 0 asks for no version: an unconditional update, as is a create's.
        if let Some(current) = &current
            && parsed != 0
            && current["metadata"]["resourceVersion"].as_str().and_then(|v| v.parse().ok()) != Some(parsed)
        {
            return Err(ApiError::modified(target.resource, name));
        }
    }
    // Checked: the version is the stored one or none, so it is no part of the change (upstream
    // puts the stored one in its place), nor of what the applier owns.
    if let Some(metadata) = applied["metadata"].as_object_mut() {
        metadata.remove("resourceVersion");
    }
    let result = match current {
        None => {
            // The applied configuration is remembered as sent; the object is stored defaulted.
            let mut object = applied.clone();
            super::defaults::apply(target.resource, &mut object);
            begin_write(&state.store, target, None, &mut object)?;
            admit(&state.store, target, &mut object)?;
            prepare_for_create(&state.store, target.resource, &mut object);
            validate::create(target.resource, &object)?;
            refuse_without_its_controller(target.resource, &object)?;
            claims::refuse_unmodelled(&state.store, target.resource, &target.namespace, &object)?;
            within_replica_limit(&state.store, target, &object)?;
            state.store.create(target.resource, &target.namespace, object)?
        }
        Some(current) => {
            let mut merged = (*current).clone();
            let uid = current["metadata"]["uid"].as_str().unwrap_or_default();
            if let Some(previous) = state.applied.get(&key).filter(|previous| previous.uid == uid) {
                drop_unset(&mut merged, &previous.config, &applied);
            }
            merge(&mut merged, &applied);
            replace_atomic_fields(target.resource, &mut merged, &applied);
            update(state, target, &current, merged)?
        }
    };
    let uid = result["metadata"]["uid"].as_str().unwrap_or_default().to_string();
    state.applied.insert(key, Applied { uid, config: applied });
    Ok(result)
}

/// What the registry does to a defaulted object before validation (upstream's BeginCreate and
/// BeginUpdate, then PrepareForUpdate's dropTypeDependentFields): a Service's cluster IP and node
/// ports are allocated, or kept; on an update, the fields its new type does not allow are dropped.
fn begin_write(store: &Store, target: &Target, current: Option<&Value>, object: &mut Value) -> Result<(), ApiError> {
    cluster_ips::allocate(store, target.resource, &target.namespace, current, object)?;
    node_ports::allocate(store, target.resource, &target.namespace, current, object)?;
    if let Some(current) = current {
        cluster_ips::drop_unneeded(target.resource, current, object);
        node_ports::drop_unneeded(target.resource, current, object);
        super::defaults::drop_type_dependent(target.resource, current, object);
    }
    Ok(())
}

fn update(state: &mut State, target: &Target, current: &Value, mut object: Value) -> Result<Arc<Value>, ApiError> {
    object["metadata"]["name"] = current["metadata"]["name"].clone();
    // A write that leaves the status as it read it (a label patch, an apply, a PUT of a read
    // object) holds the stored one already: compared, not copied.
    if status_kept_on_update(target) && object.get("status") != current.get("status") {
        store::keep_stored(&mut object, current, &["status"]);
    }
    if target.resource == resources::NAMESPACE && !target.status {
        // Only the namespace controller changes these, once the namespace is empty.
        store::keep_stored(&mut object, current, &["spec", "finalizers"]);
    }
    if target.resource.namespaced {
        object["metadata"]["namespace"] = target.namespace.clone().into();
    }
    if object == *current {
        // A change that changes nothing (a `select` of the selector the Service has): what is
        // stored was defaulted, allocated and validated already, so the store returns it as it is.
        return state.store.update(target.resource, &target.namespace, object);
    }
    super::defaults::apply(target.resource, &mut object);
    if target.resource == resources::POD {
        controllers::keep_admitted_priority(current, &mut object);
    }
    begin_write(&state.store, target, Some(current), &mut object)?;
    count_template_generation(target.resource, Some(current), &mut object);
    validate::update(target.resource, current, &object)?;
    // Only a controller's template can come to mount a claim: a pod's volumes never change, and
    // a claim's own update mounts nothing.
    if target.resource != resources::POD && target.resource != resources::PERSISTENT_VOLUME_CLAIM {
        claims::refuse_unmodelled(&state.store, target.resource, &target.namespace, &object)?;
    }
    within_replica_limit(&state.store, target, &object)?;
    state.store.update(target.resource, &target.namespace, object)
}

fn delete(state: &mut State, target: &Target, name: &str, options: &Value) -> Result<Arc<Value>, ApiError> {
    let mut current = existing(state, target, name)?;
    if let Some(uid) = options["preconditions"]["uid"].as_str()
        && current["metadata"]["uid"].as_str() != Some(uid)
    {
        return Err(ApiError::conflict(format!(
            "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
            current["metadata"]["uid"].as_str().unwrap_or_default()
        )));
    }
    if let Some(finalizers) = collector_finalizers(&current, options["propagationPolicy"].as_str()) {
        let mut changed = Arc::unwrap_or_clone(current);
        match changed["metadata"].as_object_mut() {
            Some(metadata) if finalizers.is_empty() => drop(metadata.remove("finalizers")),
            _ => changed["metadata"]["finalizers"] = finalizers.into(),
        }
        current = state.store.update(target.resource, &target.namespace, changed)?;
        if state.store.get(target.resource, &target.namespace, name).is_none() {
            return Ok(current);
        }
    }
    if target.resource == resources::POD {
        let asked = options["gracePeriodSeconds"].as_i64();
        // A pod already being deleted keeps its period unless the delete asks for a shorter one.
        let grace = if current["metadata"]["deletionTimestamp"].is_string() {
            asked
        } else {
            Some(controllers::grace_period(&current, asked))
        };
        return Ok(state.store.mark_deleted(target.resource, &target.namespace, name, grace).unwrap_or(current));
    }
    if target.resource == resources::NAMESPACE {
        let mut marked = state.store.mark_deleted(target.resource, "", name, None).unwrap_or(current);
        if marked["status"]["phase"] != "Terminating" {
            let mut terminating = Arc::unwrap_or_clone(marked);
            terminating["status"]["phase"] = "Terminating".into();
            marked = state.store.update(target.resource, "", terminating)?;
        }
        return Ok(marked);
    }
    // Finalizers hold any other object: it is only marked (deleted now, with no grace period) and
    // goes when the last is removed: the registry's updateForGracefulDeletionAndFinalizers.
    if controllers::has_finalizers(&current) {
        return Ok(state.store.mark_deleted(target.resource, &target.namespace, name, Some(0)).unwrap_or(current));
    }
    Ok(state.store.remove(target.resource, &target.namespace, name).unwrap_or(current))
}

/// The garbage collector's finalizers as the delete's propagation policy sets them, when that
/// changes them: Background drops `orphan` and `foregroundDeletion` whatever the object carried,
/// Orphan and Foreground set their own (and drop the other); with no policy they stay as they
/// are. Upstream's deletionFinalizersForGarbageCollection.
fn collector_finalizers(object: &Value, policy: Option<&str>) -> Option<Vec<Value>> {
    const ORPHAN: &str = "orphan";
    const FOREGROUND: &str = "foregroundDeletion";
    let finalizers: Vec<Value> = object["metadata"]["finalizers"].as_array().cloned().unwrap_or_default();
    let has = |f: &str| finalizers.iter().any(|x| x == f);
    let orphan = policy.map_or_else(|| has(ORPHAN), |p| p == "Orphan");
    let foreground = policy.map_or_else(|| has(FOREGROUND), |p| p == "Foreground");
    let mut wanted: Vec<Value> = finalizers.iter().filter(|f| *f != ORPHAN && *f != FOREGROUND).cloned().collect();
    if orphan {
        wanted.push(ORPHAN.into());
    }
    if foreground {
        wanted.push(FOREGROUND.into());
    }
    let set = |list: &[Value]| {
        list.iter().filter_map(Value::as_str).map(String::from).collect::<std::collections::BTreeSet<String>>()
    };
    (set(&wanted) != set(&finalizers)).then_some(wanted)
}

fn existing(state: &State, target: &Target, name: &str) -> Result<Arc<Value>, ApiError> {
    state
        .store
        .get_shared(target.resource, &target.namespace, name)
        .ok_or_else(|| ApiError::not_found(target.resource, name))
}

/// Whether the status sent with this write is not the writer's to set: for a kind whose status
/// its controllers (or kubelet) write, the registry clears it on create and keeps the stored one
/// on any write to the object itself (upstream's PrepareForCreate and PrepareForUpdate); only the
/// `status` subresource changes it.
fn status_is_the_servers(target: &Target) -> bool {
    use resources::{
        DAEMON_SET, DEPLOYMENT, HORIZONTAL_POD_AUTOSCALER, INGRESS, NAMESPACE, PERSISTENT_VOLUME_CLAIM, POD,
        POD_DISRUPTION_BUDGET, REPLICA_SET, SERVICE, STATEFUL_SET,
    };
    const CLEARED: [Resource; 11] = [
        POD,
        NAMESPACE,
        SERVICE,
        PERSISTENT_VOLUME_CLAIM,
        DEPLOYMENT,
        REPLICA_SET,
        DAEMON_SET,
        STATEFUL_SET,
        POD_DISRUPTION_BUDGET,
        HORIZONTAL_POD_AUTOSCALER,
        INGRESS,
    ];
    !target.status && CLEARED.contains(&target.resource)
}

/// Whether a write to the object itself keeps the status stored: a node's too, which (unlike the
/// others) may be sent with the node on create, as its kubelet registers it.
fn status_kept_on_update(target: &Target) -> bool {
    status_is_the_servers(target) || (!target.status && target.resource == resources::NODE)
}

/// Drops the status a create (or an apply) sends when it is not the writer's to set.
fn drop_sent_status(target: &Target, object: &mut Value) {
    if status_is_the_servers(target)
        && let Some(fields) = object.as_object_mut()
    {
        fields.remove("status");
    }
}

/// A body whose apiVersion and kind name another kind than the URL is refused, as the API does.
fn check_kind(resource: Resource, object: &Value) -> Result<(), ApiError> {
    let kind = object["kind"].as_str().unwrap_or(resource.kind);
    let api_version = object["apiVersion"].as_str().map(str::to_string).unwrap_or_else(|| resource.api_version());
    if kind != resource.kind || api_version != resource.api_version() {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            resource.api_version()
        )));
    }
    Ok(())
}

/// JSON merge patch (RFC 7386): objects merge key by key, `null` deletes, anything else replaces.
pub fn merge(target: &mut Value, patch: &Value) {
    let Some(patch) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let fields = target.as_object_mut().expect("made an object above");
    for (key, value) in patch {
        if value.is_null() {
            fields.remove(key);
        } else {
            merge(fields.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// Removes from `object` the fields `previous` set and `applied` no longer sets.
fn drop_unset(object: &mut Value, previous: &Value, applied: &Value) {
    let (Some(previous), Some(fields)) = (previous.as_object(), object.as_object_mut()) else { return };
    for (key, was) in previous {
        match applied.get(key) {
            None => {
                fields.remove(key);
            }
            Some(now) if was.is_object() && now.is_object() => {
                if let Some(child) = fields.get_mut(key) {
                    drop_unset(child, was, now);
                }
            }
            Some(_) => {}
        }
    }
}

fn list(store: &Store, target: &Target, query: &BTreeMap<String, String>) -> Result<Value, ApiError> {
    let selector = LabelSelector::parse(query.get("labelSelector").map(String::as_str).unwrap_or(""))?;
    let fields = FieldSelector::parse(query.get("fieldSelector").map(String::as_str).unwrap_or(""))?;
    let namespace = target.resource.namespaced.then_some(target.namespace.as_str()).filter(|ns| !ns.is_empty());
    let items: Vec<Value> =
        store.list(target.resource, namespace).filter(|o| selector.matches(o) && fields.matches(o)).cloned().collect();
    Ok(json!({
        "apiVersion": target.resource.api_version(),
        "kind": format!("{}List", target.resource.kind),
        "metadata": {"resourceVersion": store.resource_version().to_string()},
        "items": items,
    }))
}

/// A watch: the changes after the given resourceVersion (or, without one, the current objects as
/// ADDED first), then every matching change as it happens, one JSON event per line.
fn watch_stream(shared: &Arc<Shared>, target: &Target, query: &BTreeMap<String, String>) -> Result<Reply, ApiError> {
    let selector = LabelSelector::parse(query.get("labelSelector").map(String::as_str).unwrap_or(""))?;
    let fields = FieldSelector::parse(query.get("fieldSelector").map(String::as_str).unwrap_or(""))?;
    let resource = target.resource;
    let namespace = (resource.namespaced && !target.namespace.is_empty()).then(|| target.namespace.clone());
    let matches = move |object: &Value| selector.matches(object) && fields.matches(object);
    let since: Option<u64> =
        query.get("resourceVersion").filter(|v| !v.is_empty() && *v != "0").and_then(|v| v.parse().ok());
    let (sender, receiver) = mpsc::channel::<Result<http_body::Frame<Bytes>, Infallible>>(256);
    let mut first = Vec::new();
    let (mut last_seen, cursor, mut changed) = {
        let mut state = lock(shared);
        let last_seen = match since {
            Some(since) => {
                let _ = state.store.changes_since(since)?;
                since
            }
            None => {
                let store = &state.store;
                for object in store.list(resource, namespace.as_deref()).filter(|o| matches(o)) {
                    first.push(event_line("ADDED", object));
                }
                store.resource_version()
            }
        };
        // Subscribed under the same lock as the read, so no change falls between the two.
        let changed = state.wakes.subscribe(resource);
        (last_seen, state.store.open_cursor(resource, last_seen), changed)
    };
    let weak = Arc::downgrade(shared);
    tokio::spawn(async move {
        let _cursor = OpenCursor { shared: weak.clone(), cursor };
        for line in first {
            if sender.send(Ok(http_body::Frame::data(line))).await.is_err() {
                return;
            }
        }
        loop {
            let lines: Result<Vec<Bytes>, ApiError> = {
                let Some(shared) = weak.upgrade() else { return };
                let mut state = lock(&shared);
                let lines = state.store.changes_since(last_seen).map(|changes| {
                    changes
                        .filter(|c| c.resource == resource && namespace.as_ref().is_none_or(|ns| *ns == c.namespace))
                        .filter_map(|c| watched_event(c, &matches))
                        .collect()
                });
                last_seen = state.store.resource_version();
                state.store.advance_cursor(cursor, last_seen);
                lines
            };
            // Past the log's end the watch ends with 410 Gone, and the watcher re-lists.
            let lines = match lines {
                Ok(lines) => lines,
                Err(gone) => {
                    let line = event_line("ERROR", &gone.status());
                    let _ = sender.send(Ok(http_body::Frame::data(line))).await;
                    return;
                }
            };
            for line in lines {
                if sender.send(Ok(http_body::Frame::data(line))).await.is_err() {
                    return;
                }
            }
            tokio::select! {
                result = changed.changed() => if result.is_err() { return },
                _ = sender.closed() => return,
            }
        }
    });
    let body = StreamBody::new(tokio_stream_from(receiver));
    let response = Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(UnsyncBoxBody::new(body))
        .expect("a valid response");
    Ok(Reply::Watch(response))
}

/// The event a watch whose selectors are `matches` sends of a change, if any. As the API server's
/// watch cache does, it judges the object before a change of its labels too: an object that moves
/// out of the watch's selection is DELETED (as it was before, at the change's version), one that
/// moves in is ADDED.
fn watched_event(change: &Change, matches: impl Fn(&Value) -> bool) -> Option<Bytes> {
    let now = matches(&change.selectable);
    let before = change.before_relabel.as_ref().map_or(now, |before| matches(&before.selectable));
    match (now, before) {
        (true, true) => Some(event_line_of_json(change.change.as_str(), &change.json)),
        (true, false) => Some(event_line_of_json(ChangeType::Added.as_str(), &change.json)),
        (false, true) => {
            let before = change.before_relabel.as_ref()?;
            let mut object: Value = serde_json::from_slice(&before.json).ok()?;
            object["metadata"]["resourceVersion"] = change.resource_version.to_string().into();
            Some(event_line(ChangeType::Deleted.as_str(), &object))
        }
        (false, false) => None,
    }
}

/// A watch's place in the store's log, given up when the watch ends (however its task ends).
struct OpenCursor {
    shared: std::sync::Weak<Shared>,
    cursor: u64,
}

impl Drop for OpenCursor {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            lock(&shared).store.close_cursor(self.cursor);
        }
    }
}

fn tokio_stream_from<T: Send + 'static>(mut receiver: mpsc::Receiver<T>) -> impl futures::Stream<Item = T> + Send {
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

/// One watch event as the API server writes it: "type" before "object". A client can then read
/// the object straight into its type, where the other order makes it buffer the whole object
/// first; and the object is serialised where it lies, not copied into a new value.
#[derive(serde::Serialize)]
struct WatchEvent<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    object: &'a Value,
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    line_of(&WatchEvent { kind, object })
}

/// [`event_line`] of an object already in JSON: the same bytes, without serialising it again.
fn event_line_of_json(kind: &str, object: &[u8]) -> Bytes {
    let mut line = Vec::with_capacity(object.len() + kind.len() + 24);
    line.extend_from_slice(b"{\"type\":\"");
    line.extend_from_slice(kind.as_bytes());
    line.extend_from_slice(b"\",\"object\":");
    line.extend_from_slice(object);
    line.extend_from_slice(b"}\n");
    Bytes::from(line)
}

fn line_of(value: &impl serde::Serialize) -> Bytes {
    let mut line = serde_json::to_vec(value).expect("JSON values serialise");
    line.push(b'\n');
    Bytes::from(line)
}

fn parse_json(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))
}

fn parse_query(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

/// Percent-decoding of a query component (`+` is a space).
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&text[i + 1..i + 3], 16) {
                Ok(byte) => {
                    out.push(byte);
                    i += 3;
                    continue;
                }
                Err(_) => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A label selector as the API reads it from a query: `k=v`, `k==v`, `k!=v`, `k`, `!k`,
/// `k in (a,b)`, `k notin (a,b)`, comma-separated.
struct LabelSelector(Vec<(String, LabelTest)>);

enum LabelTest {
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    Absent,
}

impl LabelSelector {
    fn parse(text: &str) -> Result<LabelSelector, ApiError> {
        let mut terms = Vec::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            // A term ends at the first comma outside parentheses.
            let mut depth = 0;
            let end = rest
                .char_indices()
                .find(|(_, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    *c == ',' && depth == 0
                })
                .map_or(rest.len(), |(i, _)| i);
            terms.push(Self::term(rest[..end].trim(), text)?);
            rest = rest[end..].trim_start_matches(',').trim();
        }
        Ok(LabelSelector(terms))
    }

    fn term(term: &str, whole: &str) -> Result<(String, LabelTest), ApiError> {
        let invalid = || ApiError::bad_request(format!("unable to parse requirement: invalid label selector: {whole}"));
        let values = |list: &str| -> Result<Vec<String>, ApiError> {
            let inner = list.trim().strip_prefix('(').and_then(|l| l.strip_suffix(')')).ok_or_else(invalid)?;
            Ok(inner.split(',').map(|v| v.trim().to_string()).collect())
        };
        if let Some(key) = term.strip_prefix('!') {
            return Ok((key.trim().to_string(), LabelTest::Absent));
        }
        if let Some((key, value)) = term.split_once("!=") {
            return Ok((key.trim().to_string(), LabelTest::NotIn(vec![value.trim().to_string()])));
        }
        if let Some((key, value)) = term.split_once("==").or_else(|| term.split_once('=')) {
            return Ok((key.trim().to_string(), LabelTest::In(vec![value.trim().to_string()])));
        }
        if let Some((key, list)) = term.split_once(" notin ") {
            return Ok((key.trim().to_string(), LabelTest::NotIn(values(list)?)));
        }
        if let Some((key, list)) = term.split_once(" in ") {
            return Ok((key.trim().to_string(), LabelTest::In(values(list)?)));
        }
        if term.contains(char::is_whitespace) || term.is_empty() {
            return Err(invalid());
        }
        Ok((term.to_string(), LabelTest::Exists))
    }

    fn matches(&self, object: &Value) -> bool {
        let labels = &object["metadata"]["labels"];
        self.0.iter().all(|(key, test)| {
            let value = labels.get(key).and_then(Value::as_str);
            match test {
                LabelTest::In(values) => value.is_some_and(|v| values.iter().any(|w| w == v)),
                LabelTest::NotIn(values) => value.is_none_or(|v| values.iter().all(|w| w != v)),
                LabelTest::Exists => value.is_some(),
                LabelTest::Absent => value.is_none(),
            }
        })
    }
}

/// The field selectors every kind supports: `metadata.name` and `metadata.namespace`.
struct FieldSelector(Vec<(&'static str, bool, String)>);

impl FieldSelector {
    fn parse(text: &str) -> Result<FieldSelector, ApiError> {
        let mut terms = Vec::new();
        for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, equal, value) = match term.split_once("!=") {
                Some((field, value)) => (field, false, value),
                None => {
                    let (field, value) = term
                        .split_once("==")
                        .or_else(|| term.split_once('='))
                        .ok_or_else(|| ApiError::bad_request(format!("invalid field selector: {term}")))?;
                    (field, true, value)
                }
            };
            let field = match field.trim() {
                "metadata.name" => "name",
                "metadata.namespace" => "namespace",
                other => {
                    return Err(ApiError::bad_request(format!("field label not supported: {other}")));
                }
            };
            terms.push((field, equal, value.trim().to_string()));
        }
        Ok(FieldSelector(terms))
    }

    fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(field, equal, value)| (object["metadata"][*field].as_str() == Some(value)) == *equal)
    }
}

fn version() -> Value {
    json!({
        "major": "1",
        "minor": "37",
        "gitVersion": "v1.37.2+rehearse-builtin",
        "platform": "builtin",
    })
}

fn group_list() -> Value {
    let groups: Vec<Value> = resources::groups()
        .into_iter()
        .filter(|g| !g.is_empty())
        .map(|group| {
            let served = resources::ALL.iter().find(|r| r.group == group).map_or("v1", |r| r.version);
            let version = json!({"groupVersion": format!("{group}/{served}"), "version": served});
            json!({"name": group, "versions": [version.clone()], "preferredVersion": version})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn resource_list(group: &str, version: &str) -> Value {
    let mut listed = Vec::new();
    for resource in resources::ALL.iter().filter(|r| r.group == group && r.version == version) {
        listed.push(json!({
            "name": resource.plural,
            "singularName": resource.kind.to_ascii_lowercase(),
            "namespaced": resource.namespaced,
            "kind": resource.kind,
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
            "shortNames": resource.short_names,
        }));
    }
    let group_version = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": listed})
}

/// Whether any served kind belongs to this API group and version.
/// A `%` not followed by two hex digits: a URL Go will not parse.
fn holds_bad_escape(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    bytes
        .iter()
        .enumerate()
        .any(|(i, b)| *b == b'%' && !bytes.get(i + 1..i + 3).is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)))
}

fn serves(group: &str, version: &str) -> bool {
    resources::ALL.iter().any(|r| r.group == group && r.version == version)
}

/// The metadata-only form of an object, written from the stored object's metadata as it is.
#[derive(serde::Serialize)]
struct PartialObjectMetadata<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    metadata: &'a Value,
}

impl<'a> PartialObjectMetadata<'a> {
    fn of(metadata: &'a Value) -> Self {
        PartialObjectMetadata { api_version: "meta.k8s.io/v1", kind: "PartialObjectMetadata", metadata }
    }
}

fn json_response(code: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    // Room at once for a metadata-only answer, which is what most of the executor's writes ask back.
    let mut body = Vec::with_capacity(1024);
    serde_json::to_writer(&mut body, value).expect("JSON values serialise");
    response(code, "application/json", body)
}

fn response(code: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Body> {
    let body = Full::new(Bytes::from(body));
    Response::builder()
        .status(code)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(UnsyncBoxBody::new(body.map_err(|never| match never {})))
        .expect("a valid response")
}

fn error_response(error: &ApiError) -> Response<Body> {
    let code = StatusCode::from_u16(error.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if error.is_plain_text() {
        return response(code, "text/plain; charset=utf-8", format!("{}\n", error.message).into_bytes());
    }
    json_response(code, &error.status())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, DynamicObject, PartialObjectMeta, Patch, PatchParams, PostParams};
    use kube::core::ApiResource;
    use serde_json::json;

    use super::SimCluster;
    use crate::cluster::sim::Pace;

    /// Creates pod `web` (labelled app=web, one container) in `default`; the pods' API.
    async fn create_web_pod(client: kube::Client) -> Api<Pod> {
        create_web_pod_in(client, "default").await
    }

    async fn create_web_pod_in(client: kube::Client, namespace: &str) -> Api<Pod> {
        let pods: Api<Pod> = Api::namespaced(client, namespace);
        let pod = serde_json::from_value(json!({
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "web:1"}]},
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
        pods
    }

    #[tokio::test(start_paused = true)]
    async fn the_replica_limit_counts_one_namespace_and_each_deployment_once() {
        use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
        use kube::api::ListParams;

        let client = SimCluster::start(2, Pace::Fast).client();
        // A paused Deployment makes no ReplicaSet (and no pod), so thousands of replicas cost nothing.
        let deployment = |name: &str, replicas: i64, paused: bool| -> Deployment {
            serde_json::from_value(json!({
                "metadata": {"name": name},
                "spec": {
                    "replicas": replicas,
                    "paused": paused,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "c:1"}]}},
                },
            }))
            .unwrap()
        };
        let default: Api<Deployment> = Api::namespaced(client.clone(), "default");
        default.create(&PostParams::default(), &deployment("a", 3, false)).await.unwrap();
        let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
        assert_eq!(replica_sets.list(&ListParams::default()).await.unwrap().items.len(), 1);
        // Up to the limit: the ReplicaSet of `a` (3 replicas too) is not counted again.
        default.create(&PostParams::default(), &deployment("b", 9_997, true)).await.unwrap();
        assert_eq!(replica_sets.list(&ListParams::default()).await.unwrap().items.len(), 1);

        let beyond = default.create(&PostParams::default(), &deployment("c", 1, true)).await.unwrap_err();
        let kube::Error::Api(status) = beyond else { panic!("{beyond}") };
        assert_eq!((status.code, status.reason.as_str()), (501, super::super::error::NOT_RUN));
        assert!(status.message.contains("deployment/c would make it 10001"), "{}", status.message);
        let scale = Patch::Merge(json!({"spec": {"replicas": 9_998}}));
        let refused = default.patch("b", &PatchParams::default(), &scale).await.unwrap_err().to_string();
        assert!(refused.contains("deployment/b would make it 10001"), "{refused}");
        assert_eq!(
            default.get("b").await.unwrap().spec.unwrap().replicas,
            Some(9_997),
            "a refused write changes nothing"
        );

        // Another namespace (another scenario) has a limit of its own.
        let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
        let other = serde_json::from_value(json!({"metadata": {"name": "other"}})).unwrap();
        namespaces.create(&PostParams::default(), &other).await.unwrap();
        let other: Api<Deployment> = Api::namespaced(client.clone(), "other");
        other.create(&PostParams::default(), &deployment("d", 10_000, true)).await.unwrap();

        // An autoscaler's minReplicas counts for its target, whichever is written last.
        use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
        let autoscaler = |target: &str, min: i64| -> HorizontalPodAutoscaler {
            serde_json::from_value(json!({
                "metadata": {"name": format!("{target}-scaler")},
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                    "minReplicas": min,
                    "maxReplicas": min.max(1),
                },
            }))
            .unwrap()
        };
        let autoscalers: Api<HorizontalPodAutoscaler> = Api::namespaced(client, "default");
        let beyond = autoscalers.create(&PostParams::default(), &autoscaler("a", 4)).await.unwrap_err().to_string();
        assert!(beyond.contains("horizontalpodautoscaler/a-scaler would make it 10001"), "{beyond}");
        autoscalers.create(&PostParams::default(), &autoscaler("a", 3)).await.unwrap();
        let refused = default.patch("a", &PatchParams::default(), &scale).await.unwrap_err().to_string();
        assert!(refused.contains("deployment/a would make it"), "{refused}");
        // At 0 replicas the autoscaler leaves its target alone: it counts for nothing.
        let at_zero = Patch::Merge(json!({"spec": {"replicas": 0}}));
        default.patch("a", &PatchParams::default(), &at_zero).await.unwrap();
        default.create(&PostParams::default(), &deployment("e", 3, true)).await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_status_sent_with_the_object_is_not_stored_and_one_sent_to_its_subresource_is() {
        let client = SimCluster::start(2, Pace::Fast).client();
        let pods: Api<Pod> = Api::namespaced(client, "default");
        let sent = |message: &str| json!({"phase": "Failed", "message": message});
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web"},
            "spec": {"containers": [{"name": "web", "image": "nginx"}]},
            "status": sent("on create"),
        }))
        .unwrap();
        let message = |pod: &Pod| pod.status.as_ref().and_then(|s| s.message.clone());
        let phase = |pod: &Pod| pod.status.as_ref().and_then(|s| s.phase.clone());
        pods.create(&PostParams::default(), &pod).await.unwrap();
        let created = pods.get("web").await.unwrap();
        assert_eq!((phase(&created), message(&created)), (Some("Running".into()), None), "cleared, then the kubelet's");

        let patch = Patch::Merge(json!({"status": sent("by a merge patch")}));
        pods.patch("web", &PatchParams::default(), &patch).await.unwrap();
        let mut applied = serde_json::to_value(&pod).unwrap();
        applied["status"] = sent("by an apply");
        pods.patch("web", &PatchParams::apply("test"), &Patch::Apply(applied)).await.unwrap();
        let kept = pods.get("web").await.unwrap();
        assert_eq!((phase(&kept), message(&kept)), (Some("Running".into()), None), "kept as stored");

        pods.patch_status("web", &PatchParams::default(), &Patch::Merge(json!({"status": {"message": "mine"}})))
            .await
            .unwrap();
        assert_eq!(message(&pods.get("web").await.unwrap()), Some("mine".into()), "the subresource writes it");
    }

    /// The same for kinds no controller here writes the status of: a claim's and an ingress's.
    #[tokio::test(start_paused = true)]
    async fn a_claim_or_an_ingress_created_with_a_status_is_stored_without_it() {
        use k8s_openapi::api::core::v1::PersistentVolumeClaim;
        use k8s_openapi::api::networking::v1::Ingress;

        let client = SimCluster::start(2, Pace::Fast).client();
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
        let claim: PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": "Bound"},
        }))
        .unwrap();
        claims.create(&PostParams::default(), &claim).await.unwrap();
        let stored = claims.get("data").await.unwrap();
        assert!(stored.status.and_then(|s| s.phase).is_none(), "no phase sent by the client");

        let ingresses: Api<Ingress> = Api::namespaced(client, "default");
        let ingress: Ingress = serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}},
            "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}},
        }))
        .unwrap();
        ingresses.create(&PostParams::default(), &ingress).await.unwrap();
        let stored = ingresses.get("web").await.unwrap();
        let addresses = stored.status.and_then(|s| s.load_balancer).and_then(|lb| lb.ingress);
        assert!(addresses.is_none(), "no address sent by the client: {addresses:?}");
    }

    /// A namespace deleted through the API stays, Terminating, while anything is left in it: its
    /// `kubernetes` finalizer holds it until the namespace controller has emptied it.
    #[tokio::test(start_paused = true)]
    async fn a_deleted_namespace_stays_terminating_until_it_is_empty() {
        use k8s_openapi::api::core::v1::Namespace;

        let client = SimCluster::start(2, Pace::Kind).client();
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": "doomed"}})).unwrap();
        namespaces.create(&PostParams::default(), &namespace).await.unwrap();
        let pods = create_web_pod_in(client, "doomed").await;
        namespaces.delete("doomed", &Default::default()).await.unwrap();
        let phase = |n: Namespace| n.status.and_then(|s| s.phase);
        assert_eq!(
            phase(namespaces.get("doomed").await.unwrap()),
            Some("Terminating".into()),
            "its pod is still there"
        );
        assert!(pods.get("web").await.unwrap().metadata.deletion_timestamp.is_some(), "and being deleted");
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        assert!(pods.get_opt("web").await.unwrap().is_none(), "the pod's grace period is over");
        assert!(namespaces.get_opt("doomed").await.unwrap().is_none(), "then the namespace goes");
    }

    /// What the registry gives a new pod and a new namespace, whatever was sent, as the testbed's
    /// API server answers the same requests: a pod Pending with its QoS class (and, gated, the
    /// condition saying so); a namespace Active with the `kubernetes` finalizer, created by a POST
    /// or an apply alike, whose status and finalizers a later write leaves as they are.
    #[tokio::test(start_paused = true)]
    async fn a_new_pod_or_namespace_gets_the_status_the_registry_gives_it() {
        use k8s_openapi::api::core::v1::{Namespace, Node};

        let client = SimCluster::start(2, Pace::Fast).client();
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        let gated: Pod = serde_json::from_value(json!({
            "metadata": {"name": "gated"},
            "spec": {
                "schedulingGates": [{"name": "example.com/wait"}],
                "containers": [{"name": "c", "image": "nginx", "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}}}],
            },
            "status": {"phase": "Failed"},
        }))
        .unwrap();
        let created = pods.create(&PostParams::default(), &gated).await.unwrap();
        let status = serde_json::to_value(created.status).unwrap();
        let condition = &status["conditions"][0];
        assert_eq!(
            (&status["phase"], &status["qosClass"], &condition["type"], &condition["status"], &condition["reason"]),
            (
                &json!("Pending"),
                &json!("Guaranteed"),
                &json!("PodScheduled"),
                &json!("False"),
                &json!("SchedulingGated")
            ),
            "the create's own reply: {status}"
        );
        assert_eq!(condition["message"], "Scheduling is blocked due to non-empty scheduling gates");

        let namespaces: Api<Namespace> = Api::all(client.clone());
        let posted: Namespace = serde_json::from_value(json!({
            "metadata": {"name": "posted"},
            "spec": {"finalizers": ["other.io/x"]},
            "status": {"phase": "Terminating"},
        }))
        .unwrap();
        let posted = serde_json::to_value(namespaces.create(&PostParams::default(), &posted).await.unwrap()).unwrap();
        assert_eq!(
            (&posted["spec"], &posted["status"]),
            (&json!({"finalizers": ["other.io/x", "kubernetes"]}), &json!({"phase": "Active"}))
        );
        let applied = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "applied"}});
        let applied = namespaces.patch("applied", &PatchParams::apply("test"), &Patch::Apply(applied)).await.unwrap();
        let applied = serde_json::to_value(applied).unwrap();
        assert_eq!(
            (&applied["spec"], &applied["status"]),
            (&json!({"finalizers": ["kubernetes"]}), &json!({"phase": "Active"}))
        );
        let change = json!({"spec": {"finalizers": []}, "status": {"phase": "Terminating"}});
        let patched = namespaces.patch("applied", &PatchParams::default(), &Patch::Merge(change)).await.unwrap();
        let patched = serde_json::to_value(patched).unwrap();
        assert_eq!((&patched["spec"], &patched["status"]), (&applied["spec"], &applied["status"]), "kept");

        let nodes: Api<Node> = Api::all(client);
        let node = nodes.list(&Default::default()).await.unwrap().items.remove(0);
        let name = node.metadata.name.clone().unwrap();
        let change = json!({"metadata": {"labels": {"mine": "yes"}}, "status": {"conditions": []}});
        let patched = nodes.patch(&name, &PatchParams::default(), &Patch::Merge(change)).await.unwrap();
        assert_eq!(patched.metadata.labels.unwrap()["mine"], "yes");
        assert_eq!(patched.status, node.status, "a node's status is its kubelet's");
    }

    #[tokio::test(start_paused = true)]
    async fn a_dry_run_create_is_admitted_or_refused_as_a_create_and_stores_nothing() {
        use kube::api::ListParams;

        let client = SimCluster::start(2, Pace::Fast).client();
        let pods: Api<Pod> = Api::namespaced(client, "default");
        let dry_run = PostParams { dry_run: true, field_manager: None };
        let pod = |account: Option<&str>| -> Pod {
            serde_json::from_value(json!({
                "metadata": {"generateName": "agent-", "labels": {"app": "agent"}},
                "spec": {"serviceAccountName": account, "containers": [{"name": "agent", "image": "agent:1"}]},
            }))
            .unwrap()
        };
        let before = pods.list(&ListParams::default()).await.unwrap().metadata.resource_version;
        pods.create(&dry_run, &pod(None)).await.expect("admitted");
        let refused = pods.create(&dry_run, &pod(Some("builder"))).await.expect_err("no such account");
        assert!(refused.to_string().contains("error looking up service account default/builder"), "{refused}");
        // The same refusal as a real create's.
        let created = pods.create(&PostParams::default(), &pod(Some("builder"))).await.expect_err("no such account");
        assert_eq!(created.to_string(), refused.to_string());
        let after = pods.list(&ListParams::default()).await.unwrap();
        assert!(after.items.is_empty(), "a dry run stores nothing");
        assert_eq!(after.metadata.resource_version, before, "nor moves the version");

        // Validation, and a name in use, refuse it as they refuse a create.
        let no_containers: Pod = serde_json::from_value(json!({"metadata": {"name": "empty"}, "spec": {}})).unwrap();
        let invalid = pods.create(&dry_run, &no_containers).await.expect_err("no containers");
        assert!(matches!(&invalid, kube::Error::Api(s) if s.code == 422), "{invalid}");
        let mut named = pod(None);
        named.metadata.name = Some("agent-a".to_string());
        pods.create(&PostParams::default(), &named).await.unwrap();
        let in_use = pods.create(&dry_run, &named).await.expect_err("name in use");
        assert!(matches!(&in_use, kube::Error::Api(s) if s.code == 409), "{in_use}");
        // No other dry run is served: it would be a write.
        let patch = kube::api::Patch::Merge(json!({"metadata": {"labels": {"dry": "run"}}}));
        let params = kube::api::PatchParams { dry_run: true, ..Default::default() };
        let patched = pods.patch("agent-a", &params, &patch).await.expect_err("not served");
        assert!(matches!(&patched, kube::Error::Api(s) if s.code == 400), "{patched}");
        assert!(!pods.get("agent-a").await.unwrap().metadata.labels.unwrap().contains_key("dry"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_that_changes_nothing_keeps_the_stored_object_and_version() {
        use k8s_openapi::api::core::v1::Service;

        let client = SimCluster::start(2, Pace::Fast).client();
        let services: Api<Service> = Api::namespaced(client, "default");
        let service = serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
        }))
        .unwrap();
        let created = services.create(&PostParams::default(), &service).await.unwrap();
        let same_selector = Patch::Merge(json!({"spec": {"selector": {"app": "web"}}}));
        let unchanged = services.patch("web", &PatchParams::default(), &same_selector).await.unwrap();
        assert_eq!(unchanged, created, "the object as stored: same version, defaults and cluster IP");
        // The object as it is, sent back whole, is no change either.
        let replaced = services.replace("web", &PostParams::default(), &created).await.unwrap();
        assert_eq!(replaced, created);
        // A real change still goes through defaults, validation and a new version.
        let other_selector = Patch::Merge(json!({"spec": {"selector": {"app": "other"}}}));
        let changed = services.patch("web", &PatchParams::default(), &other_selector).await.unwrap();
        assert_ne!(changed.metadata.resource_version, created.metadata.resource_version);
        assert_eq!(changed.spec.as_ref().unwrap().cluster_ip, created.spec.as_ref().unwrap().cluster_ip);
        let refused = Patch::Merge(json!({"spec": {"ports": [{"port": 0}]}}));
        assert!(services.patch("web", &PatchParams::default(), &refused).await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn an_apply_keeps_its_fields_while_its_object_is_deleted_and_not_after() {
        use kube::api::DeleteParams;

        let client = SimCluster::start(2, Pace::Fast).client();
        let pods: Api<Pod> = Api::namespaced(client, "default");
        let apply = PatchParams::apply("rehearse");
        let pod = |finalizers: serde_json::Value, labels: serde_json::Value| {
            Patch::Apply(json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "web", "labels": labels, "finalizers": finalizers},
                "spec": {"containers": [{"name": "web", "image": "web:1"}]},
            }))
        };
        pods.patch("web", &apply, &pod(json!(["example.com/hold"]), json!({"app": "web"}))).await.unwrap();
        pods.delete("web", &DeleteParams::default()).await.unwrap();
        let held = pods.get("web").await.unwrap();
        assert!(held.metadata.deletion_timestamp.is_some());
        // Applied again without the finalizer it set: the finalizer goes, and so does the pod.
        pods.patch("web", &apply, &pod(json!(null), json!({"app": "web"}))).await.unwrap();
        assert!(pods.get_opt("web").await.unwrap().is_none());
        // A pod made again under the name owes nothing to the first one's apply: a label set by
        // another writer stays when an apply that never set it leaves it out.
        pods.patch("web", &apply, &pod(json!(null), json!({"app": "web", "tier": "front"}))).await.unwrap();
        pods.delete("web", &DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::default() }).await.unwrap();
        let made_again = serde_json::from_value(json!({
            "metadata": {"name": "web", "labels": {"app": "web", "tier": "back"}},
            "spec": {"containers": [{"name": "web", "image": "web:1"}]},
        }))
        .unwrap();
        pods.create(&PostParams::default(), &made_again).await.unwrap();
        let applied = pods.patch("web", &apply, &pod(json!(null), json!({"app": "web"}))).await.unwrap();
        assert_eq!(applied.metadata.labels.unwrap().get("tier").map(String::as_str), Some("back"));
    }

    #[tokio::test(start_paused = true)]
    async fn an_object_its_finalizers_hold_is_marked_when_deleted_and_goes_with_the_last() {
        use kube::api::DeleteParams;

        let client = SimCluster::start(2, Pace::Fast).client();
        let services: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(client.clone(), "default");
        let service = |finalizers: serde_json::Value| {
            serde_json::from_value(json!({
                "metadata": {"name": "web", "finalizers": finalizers},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
            }))
            .unwrap()
        };
        let created = services.create(&PostParams::default(), &service(json!(["example.com/hold"]))).await.unwrap();
        services.delete("web", &DeleteParams::default()).await.unwrap();
        // Marked as the registry marks an object with no graceful strategy: now, no grace period.
        let held = services.get("web").await.unwrap();
        assert!(held.metadata.deletion_timestamp.is_some());
        assert_eq!(held.metadata.deletion_grace_period_seconds, Some(0));
        assert_eq!(held.metadata.uid, created.metadata.uid);
        // A second delete changes nothing.
        services.delete("web", &DeleteParams::default()).await.unwrap();
        assert_eq!(services.get("web").await.unwrap().metadata.resource_version, held.metadata.resource_version);
        // The last finalizer removed, the object goes in the same write.
        let released = Patch::Merge(json!({"metadata": {"finalizers": null}}));
        let answer = services.patch("web", &PatchParams::default(), &released).await.unwrap();
        assert!(services.get_opt("web").await.unwrap().is_none());
        // Answered with the object as written, at the version stored before the deletion.
        assert_eq!(answer.metadata.resource_version, held.metadata.resource_version);
        assert_eq!(answer.metadata.finalizers, None);
        // A kind with a generation counts the deletion as a change of it, as upstream's markAsDeleting.
        let deployments: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client, "default");
        let deployment = serde_json::from_value(json!({
            "metadata": {"name": "web", "finalizers": ["example.com/hold"]},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "web:1"}]}},
            },
        }))
        .unwrap();
        deployments.create(&PostParams::default(), &deployment).await.unwrap();
        deployments.delete("web", &DeleteParams::default()).await.unwrap();
        let held = deployments.get("web").await.unwrap();
        assert_eq!((held.metadata.generation, held.metadata.deletion_grace_period_seconds), (Some(2), Some(0)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_version_not_served_is_answered_as_the_api_server_answers_it() {
        let client = SimCluster::start(2, Pace::Fast).client();
        // A group served in other versions (and the core group) answers a Status; a group not
        // served at all, Go's mux in plain text.
        for (path, status_kind) in [
            ("/apis/apps/v2/namespaces/default/deployments", Some("NotFound")),
            ("/api/v2/namespaces/default/pods", Some("NotFound")),
            ("/apis/serving.knative.dev/v1", None),
        ] {
            let request = http::Request::get(path).body(Vec::new()).unwrap();
            let answer = client.request_text(request).await.unwrap_err();
            let kube::Error::Api(status) = answer else { panic!("{path}: {answer}") };
            assert_eq!(status.code, 404, "{path}");
            match status_kind {
                Some(reason) => {
                    assert_eq!(status.reason, reason, "{path}");
                    assert_eq!(status.message, "the server could not find the requested resource", "{path}");
                }
                None => assert_eq!(status.message, "404 page not found", "{path}"),
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_strategic_merge_patch_is_refused_not_read_as_a_merge_patch() {
        let client = SimCluster::start(2, Pace::Fast).client();
        let pods = create_web_pod(client).await;
        let containers = json!({"spec": {"containers": [{"name": "sidecar", "image": "sidecar:1"}]}});
        let refused = pods.patch("web", &PatchParams::default(), &Patch::Strategic(containers)).await.unwrap_err();
        assert!(refused.to_string().contains("the body of the request was in an unknown format"), "{refused}");
        // Read as a merge patch it would have replaced the pod's containers with the sidecar.
        let stored = pods.get("web").await.unwrap();
        assert_eq!(stored.spec.unwrap().containers[0].image.as_deref(), Some("web:1"));
    }

    #[test]
    fn a_logged_change_makes_the_same_watch_line_as_its_object() {
        let object =
            json!({"metadata": {"name": "web", "labels": {"app": "web \"1\""}}, "spec": {"n": [1, 2.5, null]}});
        let text = serde_json::to_vec(&object).unwrap();
        for kind in ["ADDED", "MODIFIED", "DELETED"] {
            assert_eq!(super::event_line_of_json(kind, &text), super::event_line(kind, &object));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_asks_for_metadata_only_gets_partial_object_metadata() {
        let client = SimCluster::start(2, Pace::Fast).client();
        let pods = create_web_pod(client.clone()).await;

        let resource = ApiResource::erase::<Pod>(&());
        let metadata: Api<PartialObjectMeta<DynamicObject>> =
            Api::namespaced_with(client.clone(), "default", &resource);
        let patch = Patch::Merge(json!({"metadata": {"labels": {"round": "a"}}}));
        let patched = metadata.patch("web", &PatchParams::default(), &patch).await.unwrap();
        let types = patched.types.expect("the answer names its kind");
        assert_eq!((types.api_version.as_str(), types.kind.as_str()), ("meta.k8s.io/v1", "PartialObjectMetadata"));
        assert_eq!(patched.metadata.labels.unwrap()["round"], "a");

        // The write happened in full, and an ordinary read still gets the whole object.
        let stored = pods.get("web").await.unwrap();
        assert_eq!(stored.metadata.resource_version, patched.metadata.resource_version);
        assert_eq!(stored.spec.unwrap().containers[0].image.as_deref(), Some("web:1"));
    }

    #[test]
    fn the_metadata_only_answer_has_the_bytes_of_the_same_json_object() {
        let metadata = json!({
            "name": "web", "namespace": "default", "labels": {"app": "web", "round": "a"},
            "ownerReferences": [{"kind": "ReplicaSet", "name": "web-1", "uid": "u-1", "controller": true}],
            "annotations": {"note": "<a & b>\n\"quoted\""}, "generation": 3,
        });
        let as_object = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata});
        assert_eq!(
            String::from_utf8(serde_json::to_vec(&super::PartialObjectMetadata::of(&metadata)).unwrap()).unwrap(),
            String::from_utf8(serde_json::to_vec(&as_object).unwrap()).unwrap()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_watch_holds_the_log_back_only_while_it_is_open() {
        use http_body_util::BodyExt;
        use tower::ServiceExt;

        let sim = SimCluster::start(2, Pace::Fast);
        let cursors = |sim: &SimCluster| super::lock(&sim.shared).store.open_cursors();
        let request =
            http::Request::get("/api/v1/namespaces/default/pods?watch=true").body(kube::client::Body::empty()).unwrap();
        let mut body = sim.clone().oneshot(request).await.unwrap().into_body();
        assert_eq!(cursors(&sim), 1, "an open watch has its place in the log");
        let pods = create_web_pod(sim.client()).await;
        body.frame().await.expect("an event").unwrap();
        drop(body);
        // The watch's task sees its client gone at its next wake-up (here: the next write).
        pods.delete("web", &Default::default()).await.unwrap();
        for _ in 0..10 {
            if cursors(&sim) == 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(cursors(&sim), 0, "a watch that ended gives its place up");
    }

    #[tokio::test(start_paused = true)]
    async fn a_watch_event_names_its_type_before_its_object_as_the_api_server_does() {
        use http_body_util::BodyExt;
        use tower::ServiceExt;

        let sim = SimCluster::start(2, Pace::Fast);
        create_web_pod(sim.client()).await;

        let request =
            http::Request::get("/api/v1/namespaces/default/pods?watch=true").body(kube::client::Body::empty()).unwrap();
        let mut body = sim.oneshot(request).await.unwrap().into_body();
        let frame = body.frame().await.expect("an event").unwrap().into_data().unwrap();
        let line = std::str::from_utf8(&frame).unwrap();
        assert!(line.starts_with(r#"{"type":"ADDED","object":{"#), "{line}");
        assert!(line.ends_with("}\n"), "{line}");
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(event["object"]["metadata"]["name"], "web");
    }

    #[tokio::test(start_paused = true)]
    async fn a_watch_by_labels_sees_an_object_move_out_of_its_selection_as_deleted_and_in_as_added() {
        use http_body_util::BodyExt;
        use k8s_openapi::api::core::v1::ConfigMap;
        use tower::ServiceExt;

        let sim = SimCluster::start(2, Pace::Fast);
        let maps: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
        let request = http::Request::get("/api/v1/namespaces/default/configmaps?watch=true&labelSelector=app%3Dweb")
            .body(kube::client::Body::empty())
            .unwrap();
        let mut body = sim.clone().oneshot(request).await.unwrap().into_body();
        let mut next_event = async || {
            let frame = tokio::time::timeout(std::time::Duration::from_secs(5), body.frame()).await;
            let frame = frame.expect("an event within 5 s").expect("an event").unwrap().into_data().unwrap();
            serde_json::from_slice::<serde_json::Value>(&frame).unwrap()
        };
        let labels = |app: &str| Patch::Merge(json!({"metadata": {"labels": {"app": app}}}));
        let version = |map: ConfigMap| map.metadata.resource_version.unwrap();

        let map = serde_json::from_value(json!({"metadata": {"name": "web", "labels": {"app": "web"}}})).unwrap();
        let created = version(maps.create(&PostParams::default(), &map).await.unwrap());
        let added = next_event().await;
        assert_eq!(
            (added["type"].as_str(), added["object"]["metadata"]["resourceVersion"].as_str()),
            (Some("ADDED"), Some(created.as_str()))
        );

        // Moved out: DELETED, the object as it was before, at the version of the change.
        let moved_out = version(maps.patch("web", &PatchParams::default(), &labels("other")).await.unwrap());
        let deleted = next_event().await;
        assert_eq!(deleted["type"], "DELETED");
        assert_eq!(deleted["object"]["metadata"]["labels"], json!({"app": "web"}));
        assert_eq!(deleted["object"]["metadata"]["resourceVersion"].as_str(), Some(moved_out.as_str()));

        // Changes out of the selection are not sent; moved back in, the object is ADDED.
        let note = Patch::Merge(json!({"metadata": {"annotations": {"note": "away"}}}));
        maps.patch("web", &PatchParams::default(), &note).await.unwrap();
        let moved_in = version(maps.patch("web", &PatchParams::default(), &labels("web")).await.unwrap());
        let added = next_event().await;
        assert_eq!(
            (added["type"].as_str(), added["object"]["metadata"]["resourceVersion"].as_str()),
            (Some("ADDED"), Some(moved_in.as_str()))
        );
        assert_eq!(added["object"]["metadata"]["annotations"]["note"], "away");

        // A change of labels that keeps it selected is a modification.
        let tier = Patch::Merge(json!({"metadata": {"labels": {"tier": "front"}}}));
        maps.patch("web", &PatchParams::default(), &tier).await.unwrap();
        assert_eq!(next_event().await["type"], "MODIFIED");
        maps.delete("web", &Default::default()).await.unwrap();
        assert_eq!(next_event().await["type"], "DELETED");
    }

    #[tokio::test(start_paused = true)]
    async fn a_kind_that_starts_or_changes_pods_on_a_cluster_but_not_here_is_not_created() {
        let client = SimCluster::start(2, Pace::Fast).client();
        let template = json!({
            "metadata": {"labels": {"app": "batch"}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "batch", "image": "batch:1"}]},
        });
        let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"}, "spec": {"template": template}});
        let cron = json!({
            "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly"},
            "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": template}}},
        });
        let rc = json!({
            "apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "old"},
            "spec": {"replicas": 1, "selector": {"app": "batch"}, "template": template},
        });
        let limits = json!({
            "apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "limits"},
            "spec": {"limits": [{"type": "Container", "default": {"cpu": "1"}}]},
        });
        let quota = json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "quota"}, "spec": {"hard": {"pods": "1"}}});
        let cases = [
            ("batch", "jobs", job, "does not run the Job controller"),
            ("batch", "cronjobs", cron, "does not run the CronJob controller"),
            ("", "replicationcontrollers", rc, "does not run the ReplicationController controller"),
            ("", "limitranges", limits, "does not enforce LimitRanges"),
            ("", "resourcequotas", quota, "does not enforce ResourceQuotas"),
        ];
        for (group, plural, object, why) in cases {
            let resource = ApiResource::from_gvk_with_plural(
                &kube::core::GroupVersionKind::gvk(group, "v1", object["kind"].as_str().unwrap()),
                plural,
            );
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &resource);
            let name = object["metadata"]["name"].as_str().unwrap();
            let typed: DynamicObject = serde_json::from_value(object.clone()).unwrap();
            // By create and by server-side apply alike.
            let created = api.create(&PostParams::default(), &typed).await;
            let applied = api.patch(name, &PatchParams::apply("rehearse"), &Patch::Apply(&object)).await;
            for answer in [created.map(|_| ()), applied.map(|_| ())] {
                let Err(kube::Error::Api(status)) = answer else { panic!("{plural}: {answer:?}") };
                assert_eq!((status.code, status.reason.as_str()), (501, crate::cluster::sim::error::NOT_RUN));
                assert!(status.message.contains(why), "{}", status.message);
            }
            assert!(api.list(&Default::default()).await.unwrap().items.is_empty(), "{plural} stored");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_json_patch_is_applied_whole_or_refused_whole_as_the_api_server_does() {
        let pods = create_web_pod(SimCluster::start(2, Pace::Fast).client()).await;
        let patch = |operations: serde_json::Value| Patch::<()>::Json(serde_json::from_value(operations).unwrap());
        let patched = pods
            .patch(
                "web",
                &PatchParams::default(),
                &patch(json!([
                    {"op": "add", "path": "/metadata/labels", "value": {"track": "blue"}},
                    {"op": "replace", "path": "/metadata/annotations", "value": {"note": "a"}},
                ])),
            )
            .await
            .unwrap();
        assert_eq!(patched.metadata.labels, Some([("track".to_string(), "blue".to_string())].into()));
        assert_eq!(patched.metadata.annotations, Some([("note".to_string(), "a".to_string())].into()));
        // The testbed's words (v1.37) for an operation that does not apply; the first operation,
        // which would, is not applied either.
        let refused = pods
            .patch(
                "web",
                &PatchParams::default(),
                &patch(json!([
                    {"op": "add", "path": "/metadata/labels/track", "value": "green"},
                    {"op": "remove", "path": "/metadata/labels/missing"},
                ])),
            )
            .await;
        match refused {
            Err(kube::Error::Api(status)) => {
                assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
                assert_eq!(status.message, "the server rejected our request due to an error in our request");
            }
            other => panic!("{other:?}"),
        }
        let now = pods.get("web").await.unwrap();
        assert_eq!(now.metadata.labels, Some([("track".to_string(), "blue".to_string())].into()));
        assert_eq!(now.metadata.resource_version, patched.metadata.resource_version);
    }

    #[tokio::test(start_paused = true)]
    async fn a_quantity_the_api_cannot_read_is_refused_before_validation_in_its_words() {
        let client = SimCluster::start(2, Pace::Fast).client();
        let api: Api<DynamicObject> =
            Api::namespaced_with(client, "default", &ApiResource::erase::<k8s_openapi::api::core::v1::Pod>(&()));
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad"}, "spec": {"containers": [
            {"name": "web", "image": "nginx", "resources": {"requests": {"cpu": "abc"}}}
        ]}});
        let typed: DynamicObject = serde_json::from_value(pod.clone()).unwrap();
        let refusal = |answer: Result<DynamicObject, kube::Error>| match answer {
            Err(kube::Error::Api(status)) => (status.code, status.message),
            other => panic!("{other:?}"),
        };
        // The testbed's API server's words (v1.37): a create cannot decode the body; a
        // server-side apply cannot convert the merged object.
        let (code, message) = refusal(api.create(&PostParams::default(), &typed).await);
        assert_eq!(code, 400);
        assert_eq!(
            message,
            format!(
                "Pod in version \"v1\" cannot be handled as a Pod: {}",
                crate::cluster::sim::quantity::FORMAT_ERROR
            )
        );
        let (code, message) = refusal(api.patch("bad", &PatchParams::apply("rehearse"), &Patch::Apply(&pod)).await);
        assert_eq!(code, 500);
        assert!(
            message.starts_with(
                "failed to convert new object (default/bad; /v1, Kind=Pod) to proper version: unable to convert \
                 unstructured object to /v1, Kind=Pod: quantities must match the regular expression"
            ),
            "{message}"
        );
        assert!(api.list(&Default::default()).await.unwrap().items.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_does_not_fit_its_kinds_types_is_refused_before_anything_reads_it() {
        // Defaulting, node port allocation and the controllers read these shapes; a container
        // or a port that is not an object once panicked there.
        let client = SimCluster::start(2, Pace::Fast).client();
        for (resource, object) in [
            (
                ApiResource::erase::<k8s_openapi::api::core::v1::Pod>(&()),
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "odd"},
                       "spec": {"hostNetwork": true, "containers": [1]}}),
            ),
            (
                ApiResource::erase::<k8s_openapi::api::core::v1::Service>(&()),
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "odd"},
                       "spec": {"type": "NodePort", "ports": [1]}}),
            ),
        ] {
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &resource);
            let typed: DynamicObject = serde_json::from_value(object.clone()).unwrap();
            let code = |answer: Result<DynamicObject, kube::Error>| match answer {
                Err(kube::Error::Api(status)) => status.code,
                other => panic!("{other:?}"),
            };
            // As the testbed answers: a create cannot decode it (400), server-side apply cannot
            // convert it (500); the testbed's words name the field its own way.
            assert_eq!(code(api.create(&PostParams::default(), &typed).await), 400);
            assert_eq!(code(api.patch("odd", &PatchParams::apply("rehearse"), &Patch::Apply(&object)).await), 500);
            assert!(api.list(&Default::default()).await.unwrap().items.is_empty());
        }
    }
}
