//! The API's refusals, as `metav1.Status` bodies with the API server's own wording, so that
//! `expect-refused "text"` and the messages users read are the same on both backends.

use serde_json::{Value, json};

use super::resources::Resource;

/// The reason of `ApiError::controller_not_run`, which the executor tells from an outage.
pub const NOT_RUN: &str = "NotRunByBuiltinCluster";

/// Marks an error sent as plain text (whose body carries no reason).
const PLAIN_TEXT: &str = "PlainText";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { code, reason, message: message.into() }
    }

    pub fn not_found(resource: Resource, name: &str) -> ApiError {
        ApiError::new(404, "NotFound", format!("{} \"{name}\" not found", qualified(resource)))
    }

    pub fn already_exists(resource: Resource, name: &str) -> ApiError {
        ApiError::new(409, "AlreadyExists", format!("{} \"{name}\" already exists", qualified(resource)))
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(409, "Conflict", message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(403, "Forbidden", message)
    }

    /// What server-side apply answers when the applied configuration does not fit the kind's
    /// schema (a field it does not declare, entries of an associative list sharing a key): a 500,
    /// in structured-merge-diff's words, each problem on a line of its own when there are several,
    /// without a reason (as the API server sends it).
    pub fn untyped_patch(resource: Resource, namespace: &str, name: &str, problems: &[String]) -> ApiError {
        let (object, group_version) = object_and_group_version(resource, namespace, name);
        let problems = match problems {
            [one] => one.clone(),
            several => format!("errors:\n  {}", several.join("\n  ")),
        };
        ApiError::new(
            500,
            "",
            format!(
                "failed to create typed patch object ({object}; {group_version}, Kind={}): {problems}",
                resource.kind
            ),
        )
    }

    /// A create or replace whose body does not decode into the kind's types.
    pub fn undecodable(resource: Resource, why: &str) -> ApiError {
        let kind = resource.kind;
        ApiError::bad_request(format!(
            "{kind} in version \"{}\" cannot be handled as a {kind}: {why}",
            resource.version
        ))
    }

    /// A server-side apply whose merged object does not convert into the kind's types (a 500
    /// without a reason, as the API server sends it).
    pub fn unconvertible(resource: Resource, namespace: &str, name: &str, why: &str) -> ApiError {
        let (object, group_version) = object_and_group_version(resource, namespace, name);
        let kind = resource.kind;
        ApiError::new(
            500,
            "",
            format!(
                "failed to convert new object ({object}; {group_version}, Kind={kind}) to proper version: unable to \
                 convert unstructured object to {group_version}, Kind={kind}: {why}"
            ),
        )
    }

    /// A 422 about the request rather than about an object's fields (a JSON patch operation that
    /// does not apply).
    pub fn invalid_request(message: impl Into<String>) -> ApiError {
        ApiError::new(422, "Invalid", message)
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }

    /// A 500 as apierrors.NewInternalError words it.
    pub fn internal(why: &str) -> ApiError {
        ApiError::new(500, "InternalError", format!("Internal error occurred: {why}"))
    }

    pub fn unsupported_media_type(content_type: &str) -> ApiError {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {content_type})"
            ),
        )
    }

    /// A dry run other than a create's with `dryRun=All`, which is all the built-in cluster serves.
    pub fn dry_run_not_served() -> ApiError {
        ApiError::new(
            400,
            "BadRequest",
            "the built-in cluster serves a dry run (dryRun=All) of a create only: run the request on a real cluster",
        )
    }

    pub fn method_not_allowed() -> ApiError {
        ApiError::new(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
    }

    /// What the API server's mux answers for a group or version it does not serve at all: not a
    /// Status, but Go's plain-text "404 page not found" (see [`ApiError::is_plain_text`]).
    pub fn page_not_found() -> ApiError {
        ApiError::new(404, PLAIN_TEXT, "404 page not found")
    }

    /// Whether the error is sent as plain text rather than as a `metav1.Status`.
    pub fn is_plain_text(&self) -> bool {
        self.reason == PLAIN_TEXT
    }

    /// What Go's HTTP server answers, in plain text, for a URL it cannot parse (a name holding
    /// a `%` that starts no escape): the request never reaches the API server's handlers.
    pub fn unparsable_url() -> ApiError {
        ApiError::new(400, PLAIN_TEXT, "400 Bad Request")
    }

    /// A path under a served kind that names nothing (`.../roles/a/b`: a name with a slash).
    pub fn no_route() -> ApiError {
        ApiError::new(404, "NotFound", "the server could not find the requested resource")
    }

    /// A name no object can have in a URL path (`.` or `..`), refused before anything is read.
    pub fn invalid_name_parameter(name: &str) -> ApiError {
        ApiError::bad_request(format!("Name parameter invalid: \"{name}\": may not be '{name}'"))
    }

    /// What the built-in cluster answers to the creation of a kind in
    /// `resources::CONTROLLER_NOT_RUN`: not a refusal of the object (a cluster would take it),
    /// but a scenario it cannot rehearse truthfully. 501, so that no `expect-refused` takes it.
    pub fn controller_not_run(resource: Resource, name: &str) -> ApiError {
        ApiError::untrustworthy(format!(
            "the built-in cluster does not run the {kind} controller: on a real cluster {lower}/{name} would start pods, here none would",
            kind = resource.kind,
            lower = resource.kind.to_ascii_lowercase(),
        ))
    }

    /// A scenario the built-in cluster cannot rehearse truthfully, for the reason `why`: 501 with
    /// the `NOT_RUN` reason, which the executor reports as an error (exit 3), not a refusal.
    fn untrustworthy(why: String) -> ApiError {
        ApiError::new(
            501,
            NOT_RUN,
            format!(
                "{why}, so no verdict of this scenario could be trusted; run it on a cluster (--context, --kubeconfig or KUBECONFIG)"
            ),
        )
    }

    /// What the built-in cluster answers to discovery of autoscaling/v1: a cluster serves it
    /// (converting to and from autoscaling/v2), the built-in one serves only autoscaling/v2. Like
    /// `controller_not_run`, a scenario it cannot rehearse as written, not a refusal.
    pub fn autoscaling_v1_not_served() -> ApiError {
        ApiError::new(
            501,
            NOT_RUN,
            "the built-in cluster serves HorizontalPodAutoscalers as autoscaling/v2 only (a cluster serves autoscaling/v1 too): write the manifest as autoscaling/v2, where `targetCPUUtilizationPercentage: N` is `metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: N}}}]`, or run the scenario on a cluster (--context, --kubeconfig or KUBECONFIG)",
        )
    }

    /// What the built-in cluster answers to the creation of a kind in
    /// `resources::ADMISSION_NOT_RUN`: like `controller_not_run`, a scenario it cannot rehearse.
    pub fn admission_not_run(resource: Resource, name: &str) -> ApiError {
        ApiError::untrustworthy(format!(
            "the built-in cluster does not enforce {kind}s: on a real cluster {lower}/{name} would change or refuse this namespace's pods, here it would not",
            kind = resource.kind,
            lower = resource.kind.to_ascii_lowercase(),
        ))
    }

    /// What the built-in cluster answers to a StatefulSet with volumeClaimTemplates: like
    /// `controller_not_run`, a scenario it cannot rehearse, not a refusal.
    pub fn claims_not_modelled(resource: Resource, name: &str) -> ApiError {
        ApiError::untrustworthy(format!(
            "the built-in cluster does not model PersistentVolumeClaims: {lower}/{name} has volumeClaimTemplates, and its pods would wait for their claims to be bound on a real cluster",
            lower = resource.kind.to_ascii_lowercase(),
        ))
    }

    /// What the built-in cluster answers to a write that would have a pod of `resource`/`name`
    /// (or its pods) mount the existing `claim`, from either side: like `claims_not_modelled`.
    pub fn claim_not_modelled(resource: Resource, name: &str, claim: &str) -> ApiError {
        ApiError::untrustworthy(format!(
            "the built-in cluster does not model PersistentVolumeClaims: {lower}/{name} mounts persistentvolumeclaim/{claim}, and on a real cluster its pods wait until the claim is bound, which depends on the cluster's storage (kind's provisioner binds it, a cluster without one never does)",
            lower = resource.kind.to_ascii_lowercase(),
        ))
    }

    /// What the built-in cluster answers to a pod spec with an ephemeral volume, whose claim a
    /// real cluster makes and binds before the pod may start: like `claims_not_modelled`.
    pub fn ephemeral_volume_not_modelled(resource: Resource, name: &str) -> ApiError {
        ApiError::untrustworthy(format!(
            "the built-in cluster does not model PersistentVolumeClaims: {lower}/{name} has an ephemeral volume, whose claim a real cluster makes and binds before its pods start",
            lower = resource.kind.to_ascii_lowercase(),
        ))
    }

    /// What the built-in cluster answers to a write that would take a namespace's Deployments'
    /// and ReplicaSets' replicas beyond `MAX_REPLICAS`: like `controller_not_run`, not a refusal (a
    /// cluster would take it) but a scenario it cannot rehearse.
    pub fn beyond_replica_limit(resource: Resource, name: &str, total: i64) -> ApiError {
        ApiError::new(
            501,
            NOT_RUN,
            format!(
                "the built-in cluster runs at most {max} replicas in one scenario (the spec.replicas of its Deployments, its StatefulSets and the ReplicaSets no Deployment owns, each at least the minReplicas of an autoscaler that scales it); {lower}/{name} would make it {total}: run this scenario on a cluster (--context, --kubeconfig or KUBECONFIG)",
                max = super::MAX_REPLICAS,
                lower = resource.kind.to_ascii_lowercase(),
            ),
        )
    }

    /// A resourceVersion Go's strconv.ParseUint refuses (`why`, in its words): a 500 without a
    /// reason, as the API server sends it.
    pub fn unparsable_resource_version(resource_version: &str, why: &str) -> ApiError {
        ApiError::new(500, "", format!("strconv.ParseUint: parsing {resource_version:?}: {why}"))
    }

    /// An apply naming by its uid an object that does not exist (upstream's patcher).
    pub fn uid_mismatch(resource: Resource, name: &str, uid: &str) -> ApiError {
        ApiError::conflict(format!(
            "Operation cannot be fulfilled on {} \"{name}\": uid mismatch: the provided object specified uid {uid}, and no existing object was found",
            qualified(resource)
        ))
    }

    /// A write whose resourceVersion is not the stored one's (upstream's OptimisticLockErrorMsg).
    pub fn modified(resource: Resource, name: &str) -> ApiError {
        ApiError::conflict(format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            qualified(resource)
        ))
    }

    pub fn gone(resource_version: u64) -> ApiError {
        ApiError::new(410, "Expired", format!("too old resource version: {resource_version}"))
    }

    pub fn invalid_name_required(resource: Resource) -> ApiError {
        invalid(resource, "", &["metadata.name: Required value: name or generateName is required".to_string()])
    }

    /// The body the API server sends with the error.
    pub fn status(&self) -> Value {
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        })
    }
}

/// How the API server's conversion errors name an object and its kind's version:
/// `(ns/name, apps/v1)`, or `(name, /v1)` for a cluster-scoped object of the core group.
fn object_and_group_version(resource: Resource, namespace: &str, name: &str) -> (String, String) {
    let object = if resource.namespaced { format!("{namespace}/{name}") } else { name.to_string() };
    let group_version = format!("{}/{}", resource.group, resource.version);
    (object, group_version)
}

/// `Deployment.apps "rng" is invalid: <cause>` or, for several, `[<cause>, <cause>]`: the
/// registry's wording of validation errors (HTTP 422).
pub fn invalid(resource: Resource, name: &str, causes: &[String]) -> ApiError {
    let kind = if resource.group.is_empty() {
        resource.kind.to_string()
    } else {
        format!("{}.{}", resource.kind, resource.group)
    };
    let causes = match causes {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    };
    ApiError::new(422, "Invalid", format!("{kind} \"{name}\" is invalid: {causes}"))
}

/// `deployments.apps` or `pods`: how the API names a resource in messages.
pub fn qualified(resource: Resource) -> String {
    if resource.group.is_empty() {
        resource.plural.to_string()
    } else {
        format!("{}.{}", resource.plural, resource.group)
    }
}
