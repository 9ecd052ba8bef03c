//! The kinds the built-in cluster serves, as its discovery documents list them. Objects of every
//! kind here are stored and watched; only some have controllers (see `controllers`). A kind not
//! listed is not served, as on an API server without that CRD.

/// One served kind: where it lives in the API and whether it is namespaced. Two resources are
/// the same when their group and plural are: the store's keys compare them constantly, so the
/// comparison looks at nothing else.
#[derive(Debug, Clone, Copy)]
pub struct Resource {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
}

impl PartialEq for Resource {
    fn eq(&self, other: &Self) -> bool {
        self.plural == other.plural && self.group == other.group
    }
}

impl Eq for Resource {}

impl std::hash::Hash for Resource {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.group, self.plural).hash(state);
    }
}

impl PartialOrd for Resource {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Resource {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.plural, self.group).cmp(&(other.plural, other.group))
    }
}

impl Resource {
    /// `v1` or `apps/v1`, as in an object's `apiVersion`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_string() } else { format!("{}/{}", self.group, self.version) }
    }
}

const fn kind(
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
) -> Resource {
    Resource { group, version: "v1", kind, plural, namespaced, short_names }
}

pub const NAMESPACE: Resource = kind("", "Namespace", "namespaces", false, &["ns"]);
pub const NODE: Resource = kind("", "Node", "nodes", false, &["no"]);
pub const POD: Resource = kind("", "Pod", "pods", true, &["po"]);
pub const SERVICE: Resource = kind("", "Service", "services", true, &["svc"]);
pub const CONFIG_MAP: Resource = kind("", "ConfigMap", "configmaps", true, &["cm"]);
pub const SECRET: Resource = kind("", "Secret", "secrets", true, &[]);
pub const SERVICE_ACCOUNT: Resource = kind("", "ServiceAccount", "serviceaccounts", true, &["sa"]);
pub const DEPLOYMENT: Resource = kind("apps", "Deployment", "deployments", true, &["deploy"]);
pub const REPLICA_SET: Resource = kind("apps", "ReplicaSet", "replicasets", true, &["rs"]);
pub const DAEMON_SET: Resource = kind("apps", "DaemonSet", "daemonsets", true, &["ds"]);
pub const CONTROLLER_REVISION: Resource = kind("apps", "ControllerRevision", "controllerrevisions", true, &[]);
pub const ENDPOINTS: Resource = kind("", "Endpoints", "endpoints", true, &["ep"]);
pub const ENDPOINT_SLICE: Resource = kind("discovery.k8s.io", "EndpointSlice", "endpointslices", true, &[]);

pub const STATEFUL_SET: Resource = kind("apps", "StatefulSet", "statefulsets", true, &["sts"]);
pub const POD_DISRUPTION_BUDGET: Resource =
    kind("policy", "PodDisruptionBudget", "poddisruptionbudgets", true, &["pdb"]);
pub const REPLICATION_CONTROLLER: Resource = kind("", "ReplicationController", "replicationcontrollers", true, &["rc"]);
pub const PERSISTENT_VOLUME_CLAIM: Resource =
    kind("", "PersistentVolumeClaim", "persistentvolumeclaims", true, &["pvc"]);
pub const INGRESS: Resource = kind("networking.k8s.io", "Ingress", "ingresses", true, &["ing"]);
pub const NETWORK_POLICY: Resource = kind("networking.k8s.io", "NetworkPolicy", "networkpolicies", true, &["netpol"]);
pub const LIMIT_RANGE: Resource = kind("", "LimitRange", "limitranges", true, &["limits"]);
pub const RESOURCE_QUOTA: Resource = kind("", "ResourceQuota", "resourcequotas", true, &["quota"]);
pub const ROLE: Resource = kind("rbac.authorization.k8s.io", "Role", "roles", true, &[]);
pub const ROLE_BINDING: Resource = kind("rbac.authorization.k8s.io", "RoleBinding", "rolebindings", true, &[]);
pub const JOB: Resource = kind("batch", "Job", "jobs", true, &[]);
pub const CRON_JOB: Resource = kind("batch", "CronJob", "cronjobs", true, &["cj"]);
/// Served as autoscaling/v2 only: the version kubectl and current manifests write.
pub const HORIZONTAL_POD_AUTOSCALER: Resource = Resource {
    group: "autoscaling",
    version: "v2",
    kind: "HorizontalPodAutoscaler",
    plural: "horizontalpodautoscalers",
    namespaced: true,
    short_names: &["hpa"],
};

/// Kinds whose controllers start pods on a real cluster but do not run here. Storing one
/// silently would let a scenario pass or fail for want of pods a cluster would have started,
/// so the built-in cluster will not create one (see `ApiError::controller_not_run`).
pub const CONTROLLER_NOT_RUN: &[Resource] = &[JOB, CRON_JOB, REPLICATION_CONTROLLER];

/// Kinds whose admission plugins change or refuse a namespace's pods on a real cluster
/// (LimitRanger, ResourceQuota), which the built-in cluster does not run: the same reasoning as
/// for `CONTROLLER_NOT_RUN` (see `ApiError::admission_not_run`).
pub const ADMISSION_NOT_RUN: &[Resource] = &[LIMIT_RANGE, RESOURCE_QUOTA];

/// Every served kind, grouped by API group in discovery order.
pub const ALL: &[Resource] = &[
    NAMESPACE,
    NODE,
    POD,
    SERVICE,
    CONFIG_MAP,
    SECRET,
    SERVICE_ACCOUNT,
    ENDPOINTS,
    PERSISTENT_VOLUME_CLAIM,
    REPLICATION_CONTROLLER,
    LIMIT_RANGE,
    RESOURCE_QUOTA,
    DEPLOYMENT,
    REPLICA_SET,
    DAEMON_SET,
    STATEFUL_SET,
    CONTROLLER_REVISION,
    ENDPOINT_SLICE,
    HORIZONTAL_POD_AUTOSCALER,
    JOB,
    CRON_JOB,
    POD_DISRUPTION_BUDGET,
    INGRESS,
    NETWORK_POLICY,
    kind("networking.k8s.io", "IngressClass", "ingressclasses", false, &[]),
    kind("coordination.k8s.io", "Lease", "leases", true, &[]),
    ROLE,
    ROLE_BINDING,
    // Cluster-scoped kinds a manifest holds beside an application's: served so that discovery
    // answers as a cluster's does (no scenario creates one: rehearse refuses a cluster-scoped
    // object before it reaches any cluster), none of their objects kept.
    kind("rbac.authorization.k8s.io", "ClusterRole", "clusterroles", false, &[]),
    kind("rbac.authorization.k8s.io", "ClusterRoleBinding", "clusterrolebindings", false, &[]),
    kind("scheduling.k8s.io", "PriorityClass", "priorityclasses", false, &["pc"]),
    kind("storage.k8s.io", "StorageClass", "storageclasses", false, &["sc"]),
    kind("apiextensions.k8s.io", "CustomResourceDefinition", "customresourcedefinitions", false, &["crd", "crds"]),
];

/// The groups served, in discovery order (the core group "" first).
pub fn groups() -> Vec<&'static str> {
    let mut groups: Vec<&'static str> = Vec::new();
    for resource in ALL {
        if !groups.contains(&resource.group) {
            groups.push(resource.group);
        }
    }
    groups
}

pub fn by_plural(group: &str, version: &str, plural: &str) -> Option<Resource> {
    ALL.iter().copied().find(|r| r.group == group && r.version == version && r.plural == plural)
}

pub fn by_kind(api_version: &str, kind: &str) -> Option<Resource> {
    ALL.iter().copied().find(|r| r.api_version() == api_version && r.kind == kind)
}
