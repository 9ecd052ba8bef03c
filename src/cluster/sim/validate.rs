//! The API server's validation that scenarios meet, in its own words: object names, label keys
//! and values, a Service's selector, ports and fields, the apps/v1 controllers' counts and
//! selector rules (required, well formed, not empty, matching the pod template, immutable once
//! created), how a Deployment or a DaemonSet rolls, a StatefulSet's spec
//! (`validate/stateful_set.rs`) and a pod's spec (`validate/pod.rs`).

use serde_json::Value;

use super::error::{ApiError, invalid};
use super::resources::{self, Resource};
use crate::model::annotations::{POD_DELETION_COST, TOTAL_LIMIT, is_deletion_cost};

mod autoscaler;
mod claim;
mod config;
mod disruption_budget;
mod endpoint_slice;
mod endpoints;
mod ingress;
mod network_policy;
mod pod;
mod rbac;
mod scheduling;
mod stateful_set;

const MISMATCH: &str = "`selector` does not match template `labels`";

/// Validation of a new object.
pub fn create(resource: Resource, object: &Value) -> Result<(), ApiError> {
    let mut causes = metadata(resource, object);
    causes.extend(kind_spec(resource, object, None));
    if resource == resources::POD
        && !text(&object["spec"]["nodeName"]).is_empty()
        && !items(&object["spec"]["schedulingGates"]).is_empty()
    {
        causes.push("spec.nodeName: Forbidden: cannot be set until all schedulingGates have been cleared".into());
    }
    finish(resource, object, causes)
}

/// Validation of a change: everything a new object must satisfy, and what may not change.
pub fn update(resource: Resource, current: &Value, object: &Value) -> Result<(), ApiError> {
    let mut causes = metadata(resource, object);
    causes.extend(immutable_metadata(current, object));
    if resource == resources::SERVICE {
        causes.extend(super::cluster_ips::change_causes(current, object));
        causes.extend(load_balancer_class_change(current, object));
    }
    let selector_changed = is_apps_controller(resource) && current["spec"]["selector"] != object["spec"]["selector"];
    let immutable =
        || format!("spec.selector: Invalid value: {}: field is immutable", selector_as_go(&object["spec"]["selector"]));
    // A DaemonSet's update checks come before its spec's; the others' after.
    if selector_changed && resource == resources::DAEMON_SET {
        causes.push(immutable());
    }
    // The kind's checks read only its content (the spec; a ConfigMap's or Secret's data and
    // type; a Role's rules; a binding's role and subjects), and the stored one passed them when
    // it was written: a change that leaves it alone (a label, an annotation) cannot fail them.
    let content: &[&str] = if resource == resources::CONFIG_MAP || resource == resources::SECRET {
        &["data", "binaryData", "type"]
    } else if resource == resources::ROLE {
        &["rules"]
    } else if resource == resources::ROLE_BINDING {
        &["roleRef", "subjects"]
    } else if resource == resources::ENDPOINT_SLICE {
        &["addressType", "endpoints", "ports"]
    } else if resource == resources::ENDPOINTS {
        &["subsets"]
    } else {
        &["spec"]
    };
    let content_changed = content.iter().any(|field| current.get(field) != object.get(field));
    if resource == resources::CONFIG_MAP {
        causes.extend(config::config_map_change(current, object));
    } else if resource == resources::SECRET {
        causes.extend(config::secret_change(current, object));
    }
    if content_changed {
        causes.extend(kind_spec(resource, object, Some(current)));
    }
    if resource == resources::POD && content_changed {
        causes.extend(pod::change(current, object));
    }
    if resource == resources::ROLE_BINDING {
        causes.extend(rbac::role_binding_change(current, object));
    }
    if resource == resources::ENDPOINT_SLICE {
        causes.extend(endpoint_slice::change(current, object));
    }
    if resource == resources::STATEFUL_SET {
        causes.extend(stateful_set::immutable(current, object));
    } else if selector_changed && resource != resources::DAEMON_SET {
        causes.push(immutable());
    }
    finish(resource, object, causes)
}

/// The checks of the object's own kind, after its metadata; they read only its spec.
/// `current`: the object as stored, on a change.
fn kind_spec(resource: Resource, object: &Value, current: Option<&Value>) -> Vec<String> {
    if resource == resources::SERVICE {
        let mut causes = label_map("spec.selector", &object["spec"]["selector"]);
        causes.extend(service_ports(resource, object));
        causes.extend(service_cluster_ips(resource, object));
        causes.extend(service_fields(resource, object));
        causes
    } else if is_apps_controller(resource) {
        controller_spec(resource, object)
    } else if resource == resources::HORIZONTAL_POD_AUTOSCALER {
        autoscaler::spec(object, current)
    } else if resource == resources::CONFIG_MAP {
        config::config_map(object)
    } else if resource == resources::SECRET {
        config::secret(object)
    } else if resource == resources::POD_DISRUPTION_BUDGET {
        disruption_budget::spec(object)
    } else if resource == resources::ENDPOINT_SLICE {
        endpoint_slice::slice(object)
    } else if resource == resources::ENDPOINTS {
        endpoints::subsets(object)
    } else if resource == resources::PERSISTENT_VOLUME_CLAIM {
        claim::spec(object)
    } else if resource == resources::INGRESS {
        ingress::spec(object)
    } else if resource == resources::NETWORK_POLICY {
        network_policy::spec(object)
    } else if resource == resources::ROLE {
        rbac::role(object)
    } else if resource == resources::ROLE_BINDING {
        rbac::role_binding(object)
    } else if let Some((spec, path)) = super::schema::pod_spec(resource, object) {
        pod::spec(spec, path, resource == resources::POD)
    } else {
        Vec::new()
    }
}

fn finish(resource: Resource, object: &Value, mut causes: Vec<String>) -> Result<(), ApiError> {
    if causes.is_empty() {
        return Ok(());
    }
    // The API server's error list drops a cause said twice (an update check and the same check
    // of the new object), keeping the first.
    let mut seen = std::collections::HashSet::new();
    causes.retain(|cause| seen.insert(cause.clone()));
    Err(invalid(resource, object["metadata"]["name"].as_str().unwrap_or_default(), &causes))
}

/// The stored metadata an update may not change (upstream's ValidateObjectMetaUpdate), once
/// BeforeUpdate has put back what a writer may leave out or may not touch: an empty uid, the
/// creation timestamp, a deletion timestamp or grace period already set. What is left is a
/// manifest's own uid, deletionTimestamp or deletionGracePeriodSeconds, as one copied from a
/// live cluster carries.
fn immutable_metadata(current: &Value, object: &Value) -> Vec<String> {
    let (stored, written) = (&current["metadata"], &object["metadata"]);
    let mut causes = Vec::new();
    // Nothing may take up an object being deleted: upstream's ValidateNoNewFinalizers, whose
    // message lists the new ones sorted, as Go's %#v writes a []string.
    if stored["deletionTimestamp"].is_string() {
        let names = |meta: &Value| -> std::collections::BTreeSet<String> {
            meta["finalizers"].as_array().into_iter().flatten().filter_map(|f| f.as_str().map(String::from)).collect()
        };
        let old = names(stored);
        let new: Vec<String> =
            names(written).into_iter().filter(|f| !old.contains(f)).map(|f| format!("{f:?}")).collect();
        if !new.is_empty() {
            causes.push(format!(
                "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                new.join(", ")
            ));
        }
    }
    let immutable =
        |field: &str, value: &Value| format!("metadata.{field}: Invalid value: {}: field is immutable", compact(value));
    let uid = &written["uid"];
    if uid.as_str().is_some_and(|uid| !uid.is_empty()) && *uid != stored["uid"] {
        causes.push(immutable("uid", uid));
    }
    let deletion = &written["deletionTimestamp"];
    if stored["deletionTimestamp"].is_null() && !deletion.is_null() {
        causes.push(immutable("deletionTimestamp", deletion));
    }
    let grace = &written["deletionGracePeriodSeconds"];
    if !grace.is_null() && *grace != stored["deletionGracePeriodSeconds"] {
        causes.push(immutable("deletionGracePeriodSeconds", grace));
    }
    causes
}

fn metadata(resource: Resource, object: &Value) -> Vec<String> {
    let mut causes = Vec::new();
    if let Some(name) = object["metadata"]["name"].as_str() {
        for problem in name_problems(resource, name) {
            causes.push(format!("metadata.name: Invalid value: \"{name}\": {problem}"));
        }
    }
    causes.extend(label_map("metadata.labels", &object["metadata"]["labels"]));
    causes.extend(annotations(resource, &object["metadata"]["annotations"]));
    causes.extend(finalizers(&object["metadata"]["finalizers"]));
    causes
}

/// The finalizers' names (upstream's ValidateFinalizers, then the core API's own check of each
/// by its index): qualified names, not both of the collector's, and one without a domain only
/// if Kubernetes itself defines it.
fn finalizers(finalizers: &Value) -> Vec<String> {
    const STANDARD: [&str; 3] = ["kubernetes", "orphan", "foregroundDeletion"];
    let Some(list) = finalizers.as_array() else { return Vec::new() };
    // Decoded as Go decodes a []string: `null` is "". (Other values fail decoding before this.)
    let names: Vec<&str> = list.iter().map(|name| name.as_str().unwrap_or_default()).collect();
    let mut causes = Vec::new();
    for name in &names {
        for problem in label_key_problems(name) {
            causes.push(format!("metadata.finalizers: Invalid value: \"{name}\": {problem}"));
        }
    }
    if names.contains(&"orphan") && names.contains(&"foregroundDeletion") {
        causes.push(format!(
            "metadata.finalizers: Invalid value: {}: finalizer orphan and foregroundDeletion cannot be both set",
            compact(finalizers)
        ));
    }
    for (index, name) in names.iter().enumerate() {
        if !name.contains('/') && !STANDARD.contains(name) {
            causes.push(format!(
                "metadata.finalizers[{index}]: Invalid value: \"{name}\": name is neither a standard finalizer name nor is it fully qualified"
            ));
        }
    }
    causes
}

/// A Service's cluster IPs: addresses, or `None` (headless) where the type allows it.
fn service_cluster_ips(resource: Resource, object: &Value) -> Vec<String> {
    if resource != resources::SERVICE {
        return Vec::new();
    }
    let kind = object["spec"]["type"].as_str().unwrap_or("ClusterIP");
    if kind == "ExternalName" {
        let set = object["spec"]["clusterIPs"].as_array().is_some_and(|ips| !ips.is_empty());
        return set
            .then(|| "spec.clusterIPs: Forbidden: may not be set for ExternalName services".to_string())
            .into_iter()
            .collect();
    }
    let ips = object["spec"]["clusterIPs"].as_array().into_iter().flatten().enumerate();
    ips.filter_map(|(i, ip)| {
        let text = ip.as_str().unwrap_or_default();
        let problem = match text {
            "None" if i == 0 && matches!(kind, "NodePort" | "LoadBalancer") => {
                format!("may not be set to 'None' for {kind} services")
            }
            "None" if i == 0 => return None,
            _ if text.parse::<std::net::IpAddr>().is_ok() => return None,
            _ => return invalid_ip(&format!("spec.clusterIPs[{i}]"), text),
        };
        Some(format!("spec.clusterIPs[{i}]: Invalid value: \"{text}\": {problem}"))
    })
    .collect()
}

/// The API server's refusal of a legacy IP field (a cluster or external IP, a nameserver, a host
/// alias) that holds no IP address.
fn invalid_ip(path: &str, ip: &str) -> Option<String> {
    ip.parse::<std::net::IpAddr>().is_err().then(|| {
        format!("{path}: Invalid value: \"{ip}\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")
    })
}

/// `field: Invalid value: "x": problem`, for a text value.
fn invalid_value(path: &str, value: &str, problem: &str) -> String {
    format!("{path}: Invalid value: \"{value}\": {problem}")
}

/// `field: Unsupported value: "x": supported values: "a", "b"`, as the API server words it.
pub(super) fn unsupported(path: &str, value: &str, supported: &[&str]) -> String {
    let supported: Vec<String> = supported.iter().map(|v| format!("\"{v}\"")).collect();
    format!("{path}: Unsupported value: \"{value}\": supported values: {}", supported.join(", "))
}

/// The rest of a Service's spec, in the order upstream's validateService judges it: the
/// ExternalName target, session affinity, IP families, external IPs, the type, the fields only
/// some types may set, and the traffic policies. Fields the API defaults are judged only when set.
fn service_fields(resource: Resource, object: &Value) -> Vec<String> {
    if resource != resources::SERVICE {
        return Vec::new();
    }
    let spec = &object["spec"];
    let text = |field: &str| spec[field].as_str();
    let kind = text("type").unwrap_or("ClusterIP");
    let mut causes = Vec::new();
    if kind == "ExternalName" {
        for field in ["ipFamilies", "ipFamilyPolicy"] {
            if !spec[field].is_null() {
                causes.push(format!("spec.{field}: Forbidden: may not be set for ExternalName services"));
            }
        }
        match text("externalName").map(|name| name.trim_end_matches('.')) {
            None | Some("") => causes.push("spec.externalName: Required value".to_string()),
            Some(name) if !is_subdomain(name) => {
                causes.push(format!("spec.externalName: Invalid value: \"{name}\": {SUBDOMAIN}"));
            }
            Some(_) => {}
        }
    }
    match text("sessionAffinity") {
        // With `None` the API drops any sessionAffinityConfig first (defaults.rs).
        Some(affinity @ ("ClientIP" | "None")) => {
            let timeout = &spec["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"];
            if affinity == "ClientIP" && timeout.as_i64().is_some_and(|t| t <= 0 || t > 86400) {
                causes.push(format!(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: {timeout}: must be greater than 0 and less than 86400"
                ));
            }
        }
        Some(other) => causes.push(unsupported("spec.sessionAffinity", other, &["ClientIP", "None"])),
        None => {}
    }
    if let Some(policy) = text("ipFamilyPolicy")
        && !["PreferDualStack", "RequireDualStack", "SingleStack"].contains(&policy)
    {
        causes.push(unsupported(
            "spec.ipFamilyPolicy",
            policy,
            &["PreferDualStack", "RequireDualStack", "SingleStack"],
        ));
    }
    for (i, family) in spec["ipFamilies"].as_array().into_iter().flatten().enumerate() {
        let family = family.as_str().unwrap_or_default();
        if family != "IPv4" && family != "IPv6" {
            causes.push(unsupported(&format!("spec.ipFamilies[{i}]"), family, &["IPv4", "IPv6"]));
        }
    }
    for (i, ip) in spec["externalIPs"].as_array().into_iter().flatten().enumerate() {
        causes.extend(invalid_ip(&format!("spec.externalIPs[{i}]"), ip.as_str().unwrap_or_default()));
    }
    const TYPES: [&str; 4] = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
    if !TYPES.contains(&kind) {
        causes.push(unsupported("spec.type", kind, &TYPES));
    }
    let load_balancer = kind == "LoadBalancer";
    let only_load_balancer =
        |field: &str| format!("{field}: Forbidden: may only be used when `type` is 'LoadBalancer'");
    if let Some(ranges) = spec["loadBalancerSourceRanges"].as_array().filter(|r| !r.is_empty()) {
        if !load_balancer {
            causes.push(only_load_balancer("spec.LoadBalancerSourceRanges"));
        }
        for (i, range) in ranges.iter().enumerate() {
            let range = range.as_str().unwrap_or_default().trim();
            if !is_cidr(range) {
                causes.push(format!(
                    "spec.LoadBalancerSourceRanges[{i}]: Invalid value: \"{range}\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
                ));
            }
        }
    }
    if !spec["allocateLoadBalancerNodePorts"].is_null() && !load_balancer {
        causes.push(only_load_balancer("spec.allocateLoadBalancerNodePorts"));
    }
    if !spec["loadBalancerClass"].is_null() && !load_balancer {
        causes.push(only_load_balancer("spec.loadBalancerClass"));
    }
    let externally_accessible = load_balancer
        || kind == "NodePort"
        || (kind == "ClusterIP" && spec["externalIPs"].as_array().is_some_and(|ips| !ips.is_empty()));
    match text("externalTrafficPolicy").filter(|policy| !policy.is_empty()) {
        Some(policy) if !externally_accessible => causes.push(format!(
            "spec.externalTrafficPolicy: Invalid value: \"{policy}\": may only be set for externally-accessible services"
        )),
        Some(policy) if policy != "Cluster" && policy != "Local" => {
            causes.push(unsupported("spec.externalTrafficPolicy", policy, &["Cluster", "Local"]));
        }
        _ => {}
    }
    let needs_health_check = load_balancer && text("externalTrafficPolicy") == Some("Local");
    if let Some(port) = spec["healthCheckNodePort"].as_i64().filter(|port| *port != 0)
        && !needs_health_check
    {
        causes.push(format!(
            "spec.healthCheckNodePort: Invalid value: {port}: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"
        ));
    }
    if let Some(policy) = text("internalTrafficPolicy")
        && policy != "Cluster"
        && policy != "Local"
    {
        causes.push(unsupported("spec.internalTrafficPolicy", policy, &["Cluster", "Local"]));
    }
    const DISTRIBUTIONS: [&str; 3] = ["PreferClose", "PreferSameZone", "PreferSameNode"];
    if let Some(distribution) = text("trafficDistribution")
        && !DISTRIBUTIONS.contains(&distribution)
    {
        causes.push(unsupported("spec.trafficDistribution", distribution, &DISTRIBUTIONS));
    }
    causes
}

/// Upstream's validateLoadBalancerClassField on an update: a load balancer's class may not
/// change, and a Service that is no longer one may not name a class (said here first, before the
/// checks of the new object).
fn load_balancer_class_change(current: &Value, service: &Value) -> Vec<String> {
    let class = &service["spec"]["loadBalancerClass"];
    let is_load_balancer = |service: &Value| service["spec"]["type"] == "LoadBalancer";
    if is_load_balancer(current) && is_load_balancer(service) && current["spec"]["loadBalancerClass"] != *class {
        return vec![format!("spec.loadBalancerClass: Invalid value: {}: may not change once set", compact(class))];
    }
    if !is_load_balancer(service) && !class.is_null() {
        return vec!["spec.loadBalancerClass: Forbidden: may only be used when `type` is 'LoadBalancer'".to_string()];
    }
    Vec::new()
}

/// An IP network in CIDR notation (`10.0.0.0/8`, `2001:db8::/64`).
fn is_cidr(text: &str) -> bool {
    let Some((address, bits)) = text.split_once('/') else { return false };
    let Ok(bits) = bits.parse::<u8>() else { return false };
    match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => bits <= 32,
        Ok(std::net::IpAddr::V6(_)) => bits <= 128,
        Err(_) => false,
    }
}

fn is_apps_controller(resource: Resource) -> bool {
    [resources::DEPLOYMENT, resources::REPLICA_SET, resources::DAEMON_SET, resources::STATEFUL_SET].contains(&resource)
}

/// ValidateDeploymentSpec, ValidateReplicaSetSpec and ValidateDaemonSetSpec, in their orders: the
/// counts, the selector (required, well formed, not empty, matching the pod template), the pod
/// template (a Deployment's or ReplicaSet's only when its selector could be read), how it rolls.
fn controller_spec(resource: Resource, object: &Value) -> Vec<String> {
    if resource == resources::STATEFUL_SET {
        return stateful_set::spec(object);
    }
    let spec = &object["spec"];
    let daemon_set = resource == resources::DAEMON_SET;
    let mut causes = Vec::new();
    if !daemon_set {
        causes.extend(nonnegative(&spec["replicas"], "spec.replicas"));
    }
    if resource == resources::REPLICA_SET {
        causes.extend(nonnegative(&spec["minReadySeconds"], "spec.minReadySeconds"));
    }
    let selector = &spec["selector"];
    let syntax = selector_syntax(selector, "spec.selector");
    let readable = syntax.is_empty();
    let empty = is_empty_selector(selector);
    let template_labels = &spec["template"]["metadata"]["labels"];
    // A missing selector selects nothing, an empty one everything (and is refused on its own).
    let mismatch = readable && !empty && !(selector.is_object() && selects(selector, template_labels));
    let mut mismatch = mismatch
        .then(|| format!("spec.template.metadata.labels: Invalid value: {}: {MISMATCH}", compact(template_labels)));
    if selector.is_null() && !daemon_set {
        causes.push("spec.selector: Required value".to_string());
    }
    causes.extend(syntax);
    // A DaemonSet's mismatch comes before the empty-selector check, the others' with the template.
    if daemon_set {
        causes.extend(mismatch.take());
    }
    if empty {
        // ReplicaSets share the Deployment's wording.
        let kind = if daemon_set { "daemonset" } else { "deployment" };
        causes.push(format!("spec.selector: Invalid value: {{}}: empty selector is invalid for {kind}"));
    }
    if !readable && !daemon_set {
        causes.push(format!("spec.selector: Invalid value: {}: invalid label selector", selector_as_go(selector)));
    }
    if readable || daemon_set {
        causes.extend(mismatch);
        let pod_spec = &spec["template"]["spec"];
        causes.extend(label_map("spec.template.labels", template_labels));
        causes.extend(pod::spec(pod_spec, "spec.template.spec", false));
        causes.extend(pod::template_restart_policy(pod_spec, "spec.template.spec"));
        if !pod_spec["activeDeadlineSeconds"].is_null() {
            // Deployments share the ReplicaSet's template validation, and its words.
            let kind = if daemon_set { "DaemonSet" } else { "ReplicaSet" };
            causes.push(format!(
                "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in {kind} is not Supported"
            ));
        }
    }
    if daemon_set {
        causes.extend(nonnegative(&spec["minReadySeconds"], "spec.minReadySeconds"));
        causes.extend(update_strategy(resource, object));
        causes.extend(nonnegative(&spec["revisionHistoryLimit"], "spec.revisionHistoryLimit"));
    } else if resource == resources::DEPLOYMENT {
        causes.extend(update_strategy(resource, object));
        causes.extend(nonnegative(&spec["minReadySeconds"], "spec.minReadySeconds"));
        causes.extend(nonnegative(&spec["revisionHistoryLimit"], "spec.revisionHistoryLimit"));
        if let Some(deadline) = spec["progressDeadlineSeconds"].as_i64() {
            causes.extend(nonnegative(&spec["progressDeadlineSeconds"], "spec.progressDeadlineSeconds"));
            if deadline <= spec["minReadySeconds"].as_i64().unwrap_or(0) {
                causes.push(format!(
                    "spec.progressDeadlineSeconds: Invalid value: {deadline}: must be greater than minReadySeconds"
                ));
            }
        }
    }
    causes
}

/// A LabelSelector with neither matchLabels nor matchExpressions (it selects everything).
fn is_empty_selector(selector: &Value) -> bool {
    selector.is_object()
        && selector["matchLabels"].as_object().is_none_or(|m| m.is_empty())
        && selector["matchExpressions"].as_array().is_none_or(|e| e.is_empty())
}

/// ValidateLabelSelector: label keys and values, and each expression's operator and values.
fn selector_syntax(selector: &Value, path: &str) -> Vec<String> {
    let mut causes = label_map(&format!("{path}.matchLabels"), &selector["matchLabels"]);
    for (index, expression) in items(&selector["matchExpressions"]).iter().enumerate() {
        causes.extend(requirement(expression, &format!("{path}.matchExpressions[{index}]"), Requirement::Label));
    }
    causes
}

/// Whose expression a requirement is: a label selector's, or a node selector's, which may also
/// compare numbers (`Gt`, `Lt`) and has its values judged as label values only where told (a
/// preferred node affinity term may name any).
#[derive(Clone, Copy)]
enum Requirement {
    Label,
    Node { values_are_labels: bool },
}

/// ValidateLabelSelectorRequirement and ValidateNodeSelectorRequirement: the operator and how
/// many values it takes, the key, then the values.
fn requirement(expression: &Value, path: &str, kind: Requirement) -> Vec<String> {
    let mut causes = Vec::new();
    let values = items(&expression["values"]);
    let operator = text(&expression["operator"]);
    let numeric = matches!(kind, Requirement::Node { .. });
    match operator {
        "In" | "NotIn" if values.is_empty() => {
            causes.push(format!("{path}.values: Required value: must be specified when `operator` is 'In' or 'NotIn'"))
        }
        "Exists" | "DoesNotExist" if !values.is_empty() => causes.push(format!(
            "{path}.values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
        )),
        "Gt" | "Lt" if numeric && values.len() != 1 => causes.push(format!(
            "{path}.values: Required value: must be specified single value when `operator` is 'Lt' or 'Gt'"
        )),
        "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
        "Gt" | "Lt" if numeric => {}
        _ => causes.push(format!("{path}.operator: Invalid value: \"{operator}\": not a valid selector operator")),
    }
    let key = text(&expression["key"]);
    for problem in label_key_problems(key) {
        causes.push(format!("{path}.key: Invalid value: \"{key}\": {problem}"));
    }
    if !matches!(kind, Requirement::Node { values_are_labels: false }) {
        for (value_index, value) in values.iter().enumerate() {
            let value = text(value);
            for problem in label_value_problems(value) {
                causes.push(format!("{path}.values[{value_index}]: Invalid value: \"{value}\": {problem}"));
            }
        }
    }
    causes
}

/// The items of a JSON list; none for anything else.
fn items(list: &Value) -> &[Value] {
    list.as_array().map_or(&[], Vec::as_slice)
}

/// A JSON string's text; empty for anything else.
fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// Whether a LabelSelector (matchLabels and matchExpressions) selects these labels.
pub fn selects(selector: &Value, labels: &Value) -> bool {
    let label = |key: &str| labels.get(key).and_then(Value::as_str);
    let by_labels = selector["matchLabels"]
        .as_object()
        .is_none_or(|wanted| wanted.iter().all(|(k, v)| label(k).is_some() && label(k) == v.as_str()));
    let by_expressions = selector["matchExpressions"].as_array().is_none_or(|expressions| {
        expressions.iter().all(|e| {
            let key = e["key"].as_str().unwrap_or_default();
            let values: Vec<&str> = e["values"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            match e["operator"].as_str() {
                Some("In") => label(key).is_some_and(|v| values.contains(&v)),
                Some("NotIn") => label(key).is_none_or(|v| !values.contains(&v)),
                Some("Exists") => label(key).is_some(),
                Some("DoesNotExist") => label(key).is_none(),
                _ => false,
            }
        })
    });
    by_labels && by_expressions
}

/// How a Deployment (`spec.strategy`) or a DaemonSet (`spec.updateStrategy`) rolls, as upstream's
/// ValidateDeploymentStrategy and ValidateDaemonSetUpdateStrategy judge it once the defaults are
/// in (see `defaults`): a known type, and for a rolling one counts of at least 0 or percentages.
/// A Deployment may not leave both maxSurge and maxUnavailable at 0, nor give Recreate a
/// `rollingUpdate`; a DaemonSet must set exactly one of the two (so `maxSurge: 1` alone, beside
/// the default maxUnavailable of 1, is refused).
fn update_strategy(resource: Resource, object: &Value) -> Vec<String> {
    let Some((field, default_unavailable, default_surge)) = super::defaults::rollout(resource) else {
        return Vec::new();
    };
    let daemon_set = resource == resources::DAEMON_SET;
    let types = if daemon_set { ["RollingUpdate", "OnDelete"] } else { ["Recreate", "RollingUpdate"] };
    let strategy = &object["spec"][field];
    let kind = strategy["type"].as_str().unwrap_or("RollingUpdate");
    let rolling = &strategy["rollingUpdate"];
    let path = format!("spec.{field}");
    if !types.contains(&kind) {
        // The API prints its internal form of the strategy, Go field names and all.
        let settings = if rolling.is_object() {
            let count = |key: &str| compact(rolling.get(key).filter(|v| !v.is_null()).unwrap_or(&Value::from(0)));
            format!("{{\"MaxUnavailable\":{},\"MaxSurge\":{}}}", count("maxUnavailable"), count("maxSurge"))
        } else {
            "null".to_string()
        };
        let supported: Vec<String> = types.iter().map(|t| format!("\"{t}\"")).collect();
        return vec![format!(
            "{path}: Unsupported value: {{\"Type\":{},\"RollingUpdate\":{settings}}}: supported values: {}",
            compact(&kind.into()),
            supported.join(", ")
        )];
    }
    if kind == "Recreate" && !rolling.is_null() {
        return vec![format!(
            "{path}.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"
        )];
    }
    if kind != "RollingUpdate" {
        return Vec::new();
    }
    let setting = |key: &str, default: Value| {
        let value = rolling.get(key).filter(|v| !v.is_null()).cloned().unwrap_or(default);
        (format!("{path}.rollingUpdate.{key}"), value)
    };
    let (unavailable_path, unavailable) = setting("maxUnavailable", default_unavailable);
    let (surge_path, surge) = setting("maxSurge", default_surge);
    let mut causes = Vec::new();
    for (path, value) in [(&unavailable_path, &unavailable), (&surge_path, &surge)] {
        causes.extend(int_or_percent_problem(path, value));
    }
    // Upstream's getIntOrPercentValue: a string that is no valid percentage is read as a
    // number (IntValue's Atoi: "1" is 1), and as 0 when it is not one either.
    let amount = |value: &Value| match value {
        Value::String(s) => percent(s).unwrap_or_else(|| atoi(s)),
        other => other.as_i64().unwrap_or(0),
    };
    let (unavailable_set, surge_set) = (amount(&unavailable) != 0, amount(&surge) != 0);
    if daemon_set {
        causes.extend(not_over_100_percent(&unavailable_path, &unavailable));
        causes.extend(not_over_100_percent(&surge_path, &surge));
        match (unavailable_set, surge_set) {
            (true, true) => causes.push(format!(
                "{surge_path}: Invalid value: {}: may not be set when maxUnavailable is non-zero",
                compact(&surge)
            )),
            (false, false) => {
                causes.push(format!("{unavailable_path}: Required value: cannot be 0 when maxSurge is 0"))
            }
            _ => {}
        }
    } else {
        if !unavailable_set && !surge_set {
            causes.push(format!(
                "{unavailable_path}: Invalid value: {}: may not be 0 when `maxSurge` is 0",
                compact(&unavailable)
            ));
        }
        causes.extend(not_over_100_percent(&unavailable_path, &unavailable));
    }
    causes
}

fn service_ports(resource: Resource, object: &Value) -> Vec<String> {
    if resource != resources::SERVICE {
        return Vec::new();
    }
    let spec = &object["spec"];
    let ports: &[Value] = spec["ports"].as_array().map_or(&[], Vec::as_slice);
    if ports.is_empty() {
        let exempt = spec["clusterIP"] == "None" || spec["type"] == "ExternalName";
        return if exempt { Vec::new() } else { vec!["spec.ports: Required value".to_string()] };
    }
    let mut causes = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    let in_range = |n: i64| (1..=65535).contains(&n);
    for (i, port) in ports.iter().enumerate() {
        let path = format!("spec.ports[{i}]");
        let name = port["name"].as_str().unwrap_or_default();
        if name.is_empty() {
            if ports.len() > 1 {
                causes.push(format!("{path}.name: Required value"));
            }
        } else if !is_dns_label(name) {
            causes.extend(dns_label_causes(&format!("{path}.name"), name));
        } else if names.contains(&name) {
            causes.push(format!("{path}.name: Duplicate value: \"{name}\""));
        } else {
            names.push(name);
        }
        let number = port["port"].as_i64().unwrap_or(0);
        if !in_range(number) {
            causes.push(format!("{path}.port: Invalid value: {number}: must be between 1 and 65535, inclusive"));
        }
        let protocol = port["protocol"].as_str().unwrap_or("TCP");
        if !["TCP", "UDP", "SCTP"].contains(&protocol) {
            causes.push(format!(
                "{path}.protocol: Unsupported value: \"{protocol}\": supported values: \"SCTP\", \"TCP\", \"UDP\""
            ));
        }
        match &port["targetPort"] {
            Value::String(target) => {
                for problem in port_name_problems(target) {
                    causes.push(format!("{path}.targetPort: Invalid value: \"{target}\": {problem}"));
                }
            }
            other => {
                let target = other.as_i64().filter(|n| *n != 0).unwrap_or(number);
                if !in_range(target) {
                    causes.push(format!(
                        "{path}.targetPort: Invalid value: {target}: must be between 1 and 65535, inclusive"
                    ));
                }
            }
        }
        if let Some(protocol) = port["appProtocol"].as_str() {
            for problem in label_key_problems(protocol) {
                causes.push(format!("{path}.appProtocol: Invalid value: \"{protocol}\": {problem}"));
            }
        }
    }
    let node_port = |p: &Value| p["nodePort"].as_i64().unwrap_or(0);
    if spec["type"].as_str().is_none_or(|t| t == "ClusterIP") {
        for (i, _) in ports.iter().enumerate().filter(|(_, p)| node_port(p) != 0) {
            causes.push(format!("spec.ports[{i}].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"));
        }
    }
    // One node port per protocol (TCP and UDP may share a number).
    for (j, port) in ports.iter().enumerate().filter(|(_, p)| node_port(p) != 0) {
        let protocol = |p: &Value| p["protocol"].as_str().unwrap_or("TCP").to_string();
        if ports[..j].iter().any(|earlier| node_port(earlier) == node_port(port) && protocol(earlier) == protocol(port))
        {
            causes.push(format!("spec.ports[{j}].nodePort: Duplicate value: {}", node_port(port)));
        }
    }
    // The same port and protocol twice: the API prints its internal form of the port.
    for (j, port) in ports.iter().enumerate() {
        let key = |p: &Value| (p["port"].as_i64().unwrap_or(0), p["protocol"].as_str().unwrap_or("TCP").to_string());
        if ports[..j].iter().any(|earlier| key(earlier) == key(port)) {
            let (number, protocol) = key(port);
            causes.push(format!(
                "spec.ports[{j}]: Duplicate value: {{\"Name\":\"\",\"Protocol\":\"{protocol}\",\"AppProtocol\":null,\"Port\":{number},\"TargetPort\":0,\"NodePort\":0}}"
            ));
        }
    }
    causes
}

/// Upstream's IsValidPortName (an IANA service name), every problem it finds, in its order.
fn port_name_problems(name: &str) -> Vec<&'static str> {
    let mut problems = Vec::new();
    if name.len() > 15 {
        problems.push("must be no more than 15 characters");
    }
    if !name.bytes().all(|b| b == b'-' || b.is_ascii_lowercase() || b.is_ascii_digit()) {
        problems.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
    }
    if name.contains("--") {
        problems.push("must not contain consecutive hyphens");
    }
    if name.starts_with('-') || name.ends_with('-') {
        problems.push("must not begin or end with a hyphen");
    }
    if !name.bytes().any(|b| b.is_ascii_lowercase()) {
        problems.push("must contain at least one letter (a-z)");
    }
    problems
}

/// ValidatePositiveIntOrPercent: a count of at least 0, or a well-formed percentage.
fn int_or_percent_problem(path: &str, value: &Value) -> Option<String> {
    match value {
        Value::Number(n) if n.as_i64().is_some_and(|n| n < 0) => {
            Some(format!("{path}: Invalid value: {}: must be greater than or equal to 0", compact(value)))
        }
        Value::String(s) if percent(s).is_none() => {
            Some(format!("{path}: Invalid value: {}: {PERCENT}", compact(value)))
        }
        _ => None,
    }
}

/// IsNotMoreThan100Percent: a percentage of at most 100%.
fn not_over_100_percent(path: &str, value: &Value) -> Option<String> {
    value
        .as_str()
        .and_then(percent)
        .is_some_and(|p| p > 100)
        .then(|| format!("{path}: Invalid value: {}: must not be greater than 100%", compact(value)))
}

/// The number of a percentage such as `25%` (digits, then `%`); a number too long to hold is
/// more than 100 all the same.
/// Go's strconv.Atoi as IntValue uses it: a number out of range is clamped, anything else is 0.
fn atoi(text: &str) -> i64 {
    match text.parse::<i64>() {
        Ok(n) => n,
        Err(error) if *error.kind() == std::num::IntErrorKind::PosOverflow => i64::MAX,
        Err(error) if *error.kind() == std::num::IntErrorKind::NegOverflow => i64::MIN,
        Err(_) => 0,
    }
}

fn percent(text: &str) -> Option<i64> {
    let digits = text.strip_suffix('%').filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))?;
    Some(digits.parse().unwrap_or(i64::MAX))
}

/// `field: Invalid value: n: must be greater than or equal to 0` for a negative number.
fn nonnegative(value: &Value, path: &str) -> Option<String> {
    value.as_i64().filter(|n| *n < 0).map(|n| format!("{path}: Invalid value: {n}: must be greater than or equal to 0"))
}

/// JSON as the API server prints an invalid value (compact, keys sorted).
fn compact(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

/// A LabelSelector as the API server prints it in a message: Go's JSON of its struct, so
/// `matchLabels` before `matchExpressions`, and empty lists and maps left out.
fn selector_as_go(selector: &Value) -> String {
    // A selector left out is a nil pointer, which Go's JSON writes as `null`.
    if selector.is_null() {
        return "null".to_string();
    }
    let mut fields = Vec::new();
    if let Some(labels) = selector["matchLabels"].as_object().filter(|labels| !labels.is_empty()) {
        fields.push(format!("\"matchLabels\":{}", compact(&Value::Object(labels.clone()))));
    }
    if let Some(expressions) = selector["matchExpressions"].as_array().filter(|list| !list.is_empty()) {
        let expressions: Vec<String> = expressions
            .iter()
            .map(|expression| {
                let text = |field: &str| compact(&Value::from(expression[field].as_str().unwrap_or_default()));
                let mut requirement = format!("{{\"key\":{},\"operator\":{}", text("key"), text("operator"));
                if let Some(values) = expression["values"].as_array().filter(|values| !values.is_empty()) {
                    requirement.push_str(&format!(",\"values\":{}", compact(&Value::Array(values.clone()))));
                }
                requirement + "}"
            })
            .collect();
        fields.push(format!("\"matchExpressions\":[{}]", expressions.join(",")));
    }
    format!("{{{}}}", fields.join(","))
}

const SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS_LABEL: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const NAME_PART: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const PERCENT: &str = "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')";
const LABEL_VALUE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

/// What is wrong with an object's name, in the API server's words (one cause each): Services and
/// StatefulSets and namespaces take DNS labels (Services since RelaxedServiceNameValidation, on by
/// default), every other kind a DNS subdomain. Names are judged by the older validators, whose
/// length limit counts "characters".
fn name_problems(resource: Resource, name: &str) -> Vec<String> {
    if resource == resources::ROLE || resource == resources::ROLE_BINDING {
        return path_segment_problems(name);
    }
    if resource == resources::SERVICE || resource == resources::NAMESPACE || resource == resources::STATEFUL_SET {
        return dns_label_problems(name);
    }
    subdomain_problems(name, "characters")
}

/// IsPathSegmentName: what a name that goes into a URL path may not be or hold.
pub(super) fn path_segment_problems(name: &str) -> Vec<String> {
    if name == "." || name == ".." {
        return vec![format!("may not be '{name}'")];
    }
    ["/", "%"].iter().filter(|bad| name.contains(**bad)).map(|bad| format!("may not contain '{bad}'")).collect()
}

/// IsDNS1123Subdomain: too long, and not the pattern; `unit` is how the validator counts.
pub(super) fn subdomain_problems(value: &str, unit: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if value.len() > 253 {
        problems.push(format!("must be no more than 253 {unit}"));
    }
    if !is_subdomain_pattern(value) {
        problems.push(SUBDOMAIN.to_string());
    }
    problems
}

/// IsDNS1123Label: too long, and not the pattern (a subdomain can only have failed by its dots).
fn dns_label_problems(value: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if value.len() > 63 {
        problems.push("must be no more than 63 characters".to_string());
    }
    if !is_dns_label_pattern(value) {
        problems.push(if is_subdomain_pattern(value) { "must not contain dots" } else { DNS_LABEL }.to_string());
    }
    problems
}

/// A field that must be a DNS label, as ValidateDNS1123Label reports it: one cause a problem.
fn dns_label_causes(path: &str, value: &str) -> Vec<String> {
    dns_label_problems(value)
        .into_iter()
        .map(|problem| format!("{path}: Invalid value: \"{value}\": {problem}"))
        .collect()
}

fn label_map(path: &str, labels: &Value) -> Vec<String> {
    let Some(labels) = labels.as_object() else { return Vec::new() };
    let mut causes = Vec::new();
    for (key, value) in labels {
        for problem in label_key_problems(key) {
            causes.push(format!("{path}: Invalid value: \"{key}\": {problem}"));
        }
        for problem in label_value_problems(value.as_str().unwrap_or_default()) {
            causes.push(format!("{path}: Invalid value: \"{}\": {problem}", value.as_str().unwrap_or_default()));
        }
    }
    causes
}

/// Keys are label keys; all keys and values together fit in 256 KiB; a pod's deletion cost is an
/// int32.
fn annotations(resource: Resource, annotations: &Value) -> Vec<String> {
    let Some(annotations) = annotations.as_object() else { return Vec::new() };
    let mut causes = Vec::new();
    let mut total = 0;
    for (key, value) in annotations {
        // The label key rule, except that case does not matter.
        for problem in label_key_problems(&key.to_lowercase()) {
            causes.push(format!("metadata.annotations: Invalid value: \"{key}\": {problem}"));
        }
        total += key.len() + value.as_str().map_or(0, str::len);
    }
    if total > TOTAL_LIMIT {
        causes.push(format!("metadata.annotations: Too long: may not be more than {TOTAL_LIMIT} bytes"));
    }
    if resource == resources::POD
        && let Some(cost) = annotations.get(POD_DELETION_COST).and_then(Value::as_str)
        && !is_deletion_cost(cost)
    {
        causes.push(format!(
            "metadata.annotations[{POD_DELETION_COST}]: Invalid value: \"{cost}\": must be a 32bit integer"
        ));
    }
    causes
}

/// IsLabelKey (also annotation keys and other qualified names): an optional DNS subdomain prefix
/// and `/`, then a name part; each problem one message. The newer validators count "bytes".
pub(super) fn label_key_problems(key: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let name = match key.split_once('/') {
        None => key,
        Some((prefix, name)) if !name.contains('/') => {
            if prefix.is_empty() {
                problems.push("prefix part must be non-empty".to_string());
            } else {
                problems.extend(subdomain_problems(prefix, "bytes").into_iter().map(|p| format!("prefix part {p}")));
            }
            name
        }
        Some(_) => {
            return vec![format!(
                "a valid label key {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                NAME_PART.trim_start_matches("name part ")
            )];
        }
    };
    if name.is_empty() {
        problems.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        problems.push("name part must be no more than 63 bytes".to_string());
    }
    if !is_label_value_pattern(name) || name.is_empty() {
        problems.push(NAME_PART.to_string());
    }
    problems
}

/// IsLabelValue: at most 63 bytes, and the pattern (which the empty value fits).
pub(super) fn label_value_problems(value: &str) -> Vec<&'static str> {
    let mut problems = Vec::new();
    if value.len() > 63 {
        problems.push("must be no more than 63 bytes");
    }
    if !is_label_value_pattern(value) {
        problems.push(LABEL_VALUE);
    }
    problems
}

/// Alphanumerics, `-`, `_` and `.`, alphanumeric at both ends; or nothing.
fn is_label_value_pattern(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.is_empty()
        || (bytes[0].is_ascii_alphanumeric()
            && bytes[bytes.len() - 1].is_ascii_alphanumeric()
            && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')))
}

fn is_dns_label(name: &str) -> bool {
    name.len() <= 63 && is_dns_label_pattern(name)
}

/// The DNS label pattern (lower case alphanumerics and `-`, alphanumeric at both ends), whatever
/// the length.
fn is_dns_label_pattern(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

fn is_subdomain(name: &str) -> bool {
    name.len() <= 253 && is_subdomain_pattern(name)
}

/// DNS labels joined by dots, whatever the lengths.
pub(super) fn is_subdomain_pattern(name: &str) -> bool {
    name.split('.').all(is_dns_label_pattern)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A pod spec of one container, as the API requires.
    static CONTAINER: std::sync::LazyLock<Value> =
        std::sync::LazyLock::new(|| json!({"containers": [{"name": "web", "image": "nginx"}]}));

    #[test]
    fn a_finalizer_without_a_domain_must_be_one_kubernetes_defines() {
        let causes = |names: Value| finalizers(&names);
        assert!(causes(json!(["kubernetes", "orphan", "orphan", "example.com/hold"])).is_empty());
        // The testbed's words (v1.37), its qualified-name checks first, then one per index.
        assert_eq!(
            causes(json!(["example.com/a", "hold"])),
            [
                "metadata.finalizers[1]: Invalid value: \"hold\": name is neither a standard finalizer name nor is it fully qualified"
            ]
        );
        assert_eq!(
            causes(json!(["/hold", "orphan", "foregroundDeletion"])),
            [
                "metadata.finalizers: Invalid value: \"/hold\": prefix part must be non-empty",
                "metadata.finalizers: Invalid value: [\"/hold\",\"orphan\",\"foregroundDeletion\"]: finalizer orphan and foregroundDeletion cannot be both set",
            ]
        );
    }

    fn deployment(selector: Value, labels: Value) -> Value {
        json!({"metadata": {"name": "rng"}, "spec": {"selector": selector, "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}})
    }

    /// A controller named `d` whose `spec.<field>` is `strategy`, defaulted as a write is.
    fn rolling(resource: Resource, field: &str, strategy: Value) -> Value {
        let mut object = deployment(json!({"matchLabels": {"app": "d"}}), json!({"app": "d"}));
        object["metadata"]["name"] = "d".into();
        object["spec"][field] = strategy;
        super::super::defaults::apply(resource, &mut object);
        object
    }

    /// What the API says to creating it: "accepted", or the causes of its refusal.
    fn strategy_verdict(resource: Resource, field: &str, strategy: Value) -> String {
        match create(resource, &rolling(resource, field, strategy)) {
            Ok(()) => "accepted".to_string(),
            Err(error) => {
                error.message.split_once(" is invalid: ").map_or(error.message.clone(), |(_, c)| c.to_string())
            }
        }
    }

    #[test]
    fn a_template_its_selector_misses_is_refused_in_the_api_servers_words() {
        let error =
            create(resources::DEPLOYMENT, &deployment(json!({"matchLabels": {"app": "rng"}}), json!({"app": "other"})))
                .unwrap_err();
        assert_eq!(error.code, 422);
        assert_eq!(
            error.message,
            "Deployment.apps \"rng\" is invalid: spec.template.metadata.labels: Invalid value: {\"app\":\"other\"}: `selector` does not match template `labels`"
        );
        let expressions = json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["rng", "web"]}]});
        assert!(create(resources::DEPLOYMENT, &deployment(expressions, json!({"app": "web"}))).is_ok());
    }

    #[test]
    fn a_controllers_selector_is_immutable() {
        let current = deployment(json!({"matchLabels": {"app": "rng"}}), json!({"app": "rng", "x": "y"}));
        let changed = deployment(json!({"matchLabels": {"app": "rng", "x": "y"}}), json!({"app": "rng", "x": "y"}));
        assert_eq!(
            update(resources::DEPLOYMENT, &current, &changed).unwrap_err().message,
            "Deployment.apps \"rng\" is invalid: spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"rng\",\"x\":\"y\"}}: field is immutable"
        );
    }

    #[test]
    fn a_change_is_judged_on_the_spec_only_when_it_changes_the_spec() {
        let current = json!({"metadata": {"name": "p", "labels": {"app": "web"}}, "spec": CONTAINER.clone()});
        let mut labelled = current.clone();
        labelled["metadata"]["labels"]["round"] = json!("a");
        assert!(update(resources::POD, &current, &labelled).is_ok());
        labelled["metadata"]["labels"]["round"] = json!("-bad");
        assert!(update(resources::POD, &current, &labelled).unwrap_err().message.contains("metadata.labels"));
        let mut changed = current.clone();
        changed["spec"]["containers"][0]["image"] = json!("");
        assert_eq!(
            update(resources::POD, &current, &changed).unwrap_err().message,
            "Pod \"p\" is invalid: spec.containers[0].image: Required value"
        );
    }

    #[test]
    fn names_and_labels_follow_the_api_servers_syntax() {
        let bad_name = json!({"metadata": {"name": "Bad"}});
        assert!(
            create(resources::DEPLOYMENT, &bad_name).unwrap_err().message.contains("a lowercase RFC 1123 subdomain")
        );
        let bad_value = json!({"metadata": {"name": "rng", "labels": {"ok": "bad value!"}}, "spec": CONTAINER.clone()});
        assert!(create(resources::POD, &bad_value).unwrap_err().message.starts_with(
            "Pod \"rng\" is invalid: metadata.labels: Invalid value: \"bad value!\": a valid label must be an empty string"
        ));
        let bad_selector = json!({"metadata": {"name": "rng"}, "spec": {"selector": {"app": "-x"}}});
        assert!(
            create(resources::SERVICE, &bad_selector)
                .unwrap_err()
                .message
                .contains("spec.selector: Invalid value: \"-x\"")
        );
        assert!(
            create(
                resources::POD,
                &json!({"metadata": {"name": "p", "labels": {"example.com/app": "x"}}, "spec": CONTAINER.clone()})
            )
            .is_ok()
        );
    }

    #[test]
    fn annotations_are_refused_in_the_api_servers_words() {
        let pod = |annotations: Value| json!({"metadata": {"name": "p", "annotations": annotations}, "spec": CONTAINER.clone()});
        let refused = |resource, annotations| create(resource, &pod(annotations)).unwrap_err().message;
        assert_eq!(
            refused(resources::POD, json!({"controller.kubernetes.io/pod-deletion-cost": "007"})),
            "Pod \"p\" is invalid: metadata.annotations[controller.kubernetes.io/pod-deletion-cost]: Invalid value: \
             \"007\": must be a 32bit integer"
        );
        // Only a pod's cost is judged.
        let mut service = pod(json!({"controller.kubernetes.io/pod-deletion-cost": "high"}));
        service["spec"] = json!({"ports": [{"port": 80}]});
        assert!(create(resources::SERVICE, &service).is_ok());
        assert!(
            create(
                resources::POD,
                &pod(json!({"controller.kubernetes.io/pod-deletion-cost": "-0", "note": "any text"}))
            )
            .is_ok()
        );
        assert!(refused(resources::POD, json!({"bad key": "1"})).contains(
            "metadata.annotations: Invalid value: \"bad key\": name part must consist of alphanumeric characters"
        ));
        let big = "x".repeat(TOTAL_LIMIT);
        assert!(
            refused(resources::POD, json!({ "big": big }))
                .ends_with("metadata.annotations: Too long: may not be more than 262144 bytes")
        );
    }

    /// The messages kube-apiserver v1.37 gives for the same settings (checked on the testbed
    /// with `kubectl apply --dry-run=server`).
    #[test]
    fn a_daemon_sets_rolling_update_surges_or_leaves_nodes_unavailable_never_both() {
        let verdict = |strategy: Value| strategy_verdict(resources::DAEMON_SET, "updateStrategy", strategy);
        let path = "spec.updateStrategy.rollingUpdate";
        let percent = "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')";
        for accepted in [
            json!(null),
            json!({"type": "RollingUpdate"}),
            json!({"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}),
            json!({"rollingUpdate": {"maxSurge": "10%", "maxUnavailable": 0}}),
            json!({"rollingUpdate": {"maxUnavailable": "100%"}}),
            // OnDelete never rolls: its rollingUpdate is not looked at.
            json!({"type": "OnDelete", "rollingUpdate": {"maxSurge": 1}}),
        ] {
            assert_eq!(verdict(accepted.clone()), "accepted", "{accepted}");
        }
        assert_eq!(
            verdict(json!({"rollingUpdate": {"maxSurge": 1}})),
            format!("{path}.maxSurge: Invalid value: 1: may not be set when maxUnavailable is non-zero")
        );
        assert_eq!(
            verdict(json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2, "maxUnavailable": 1}})),
            format!("{path}.maxSurge: Invalid value: 2: may not be set when maxUnavailable is non-zero")
        );
        assert_eq!(
            verdict(json!({"rollingUpdate": {"maxSurge": "0%", "maxUnavailable": 0}})),
            format!("{path}.maxUnavailable: Required value: cannot be 0 when maxSurge is 0")
        );
        assert_eq!(
            verdict(json!({"rollingUpdate": {"maxSurge": -1, "maxUnavailable": 0}})),
            format!("{path}.maxSurge: Invalid value: -1: must be greater than or equal to 0")
        );
        assert_eq!(
            verdict(json!({"rollingUpdate": {"maxSurge": "abc", "maxUnavailable": 0}})),
            format!(
                "[{path}.maxSurge: Invalid value: \"abc\": {percent}, {path}.maxUnavailable: Required value: cannot be 0 when maxSurge is 0]"
            )
        );
        assert_eq!(
            // "5" is read as 5 beside its refusal (Atoi), so maxSurge is not 0: one cause.
            verdict(json!({"rollingUpdate": {"maxSurge": "5", "maxUnavailable": 0}})),
            format!("{path}.maxSurge: Invalid value: \"5\": {percent}")
        );
        assert_eq!(
            verdict(json!({"rollingUpdate": {"maxUnavailable": "150%"}})),
            format!("{path}.maxUnavailable: Invalid value: \"150%\": must not be greater than 100%")
        );
        // A change is held to the same rules.
        let before = rolling(resources::DAEMON_SET, "updateStrategy", json!(null));
        let after = rolling(resources::DAEMON_SET, "updateStrategy", json!({"rollingUpdate": {"maxSurge": 1}}));
        assert!(update(resources::DAEMON_SET, &before, &after).is_err());
        assert!(create(resources::DEPLOYMENT, &after).is_ok(), "a Deployment's updateStrategy is not a DaemonSet's");
    }

    /// kube-apiserver v1.37's messages for the same Deployment strategies (checked on the testbed
    /// with `kubectl apply --dry-run=server`; the merge patch of `type: Recreate` onto a defaulted
    /// Deployment with `kubectl patch`).
    #[test]
    fn a_deployments_strategy_is_judged_in_the_api_servers_words() {
        let verdict = |strategy: Value| strategy_verdict(resources::DEPLOYMENT, "strategy", strategy);
        let path = "spec.strategy.rollingUpdate";
        for accepted in [
            json!(null),
            json!({"type": "Recreate"}),
            json!({"type": "Recreate", "rollingUpdate": null}),
            json!({"rollingUpdate": {"maxSurge": 0}}),
            json!({"rollingUpdate": {"maxSurge": "150%", "maxUnavailable": "0%"}}),
        ] {
            assert_eq!(verdict(accepted.clone()), "accepted", "{accepted}");
        }
        assert_eq!(
            verdict(json!({"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}})),
            format!("{path}.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0")
        );
        assert_eq!(
            verdict(json!({"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}})),
            format!("{path}.maxUnavailable: Invalid value: \"0%\": may not be 0 when `maxSurge` is 0")
        );
        assert_eq!(
            verdict(json!({"rollingUpdate": {"maxSurge": -1}})),
            format!("{path}.maxSurge: Invalid value: -1: must be greater than or equal to 0")
        );
        assert_eq!(
            verdict(json!({"rollingUpdate": {"maxUnavailable": "200%"}})),
            format!("{path}.maxUnavailable: Invalid value: \"200%\": must not be greater than 100%")
        );
        assert!(verdict(json!({"rollingUpdate": {"maxSurge": "abc", "maxUnavailable": 0}})).starts_with(&format!(
            "[{path}.maxSurge: Invalid value: \"abc\": a valid percent string must be a numeric string followed by an ending '%'"
        )));
        assert_eq!(
            verdict(json!({"type": "Recreate", "rollingUpdate": {"maxSurge": 1}})),
            format!("{path}: Forbidden: may not be specified when strategy `type` is 'Recreate'")
        );
        assert_eq!(
            verdict(json!({"type": "Foo"})),
            "spec.strategy: Unsupported value: {\"Type\":\"Foo\",\"RollingUpdate\":null}: supported values: \"Recreate\", \"RollingUpdate\""
        );
        assert_eq!(
            verdict(json!({"type": "Foo", "rollingUpdate": {"maxSurge": 1}})),
            "spec.strategy: Unsupported value: {\"Type\":\"Foo\",\"RollingUpdate\":{\"MaxUnavailable\":0,\"MaxSurge\":1}}: supported values: \"Recreate\", \"RollingUpdate\""
        );

        // Switching a Deployment created without a strategy to Recreate keeps the rollingUpdate
        // it was given by default: refused, until the change clears it.
        let current = rolling(resources::DEPLOYMENT, "strategy", json!(null));
        let mut recreate = current.clone();
        recreate["spec"]["strategy"]["type"] = "Recreate".into();
        super::super::defaults::apply(resources::DEPLOYMENT, &mut recreate);
        let refused = update(resources::DEPLOYMENT, &current, &recreate).unwrap_err().message;
        assert!(refused.ends_with("may not be specified when strategy `type` is 'Recreate'"), "{refused}");
        recreate["spec"]["strategy"].as_object_mut().unwrap().remove("rollingUpdate");
        assert!(update(resources::DEPLOYMENT, &current, &recreate).is_ok());
    }

    #[test]
    fn an_unknown_daemon_set_update_strategy_is_named_with_the_supported_ones() {
        assert_eq!(
            strategy_verdict(resources::DAEMON_SET, "updateStrategy", json!({"type": "Recreate"})),
            "spec.updateStrategy: Unsupported value: {\"Type\":\"Recreate\",\"RollingUpdate\":null}: supported values: \"RollingUpdate\", \"OnDelete\""
        );
    }

    /// kube-apiserver v1.37's messages for the same Service specs (`kubectl apply --dry-run=server`
    /// on the testbed).
    #[test]
    fn a_services_ports_are_judged_in_the_api_servers_words() {
        let verdict = |spec: Value| {
            let service = json!({"metadata": {"name": "s"}, "spec": spec});
            match create(resources::SERVICE, &service) {
                Ok(()) => "accepted".to_string(),
                Err(error) => error.message.trim_start_matches("Service \"s\" is invalid: ").to_string(),
            }
        };
        for accepted in [
            json!({"selector": {"app": "x"}, "ports": [{"port": 80}]}),
            json!({"selector": {"app": "x"}, "clusterIP": "None"}),
            json!({"type": "ExternalName", "externalName": "foo.example.com"}),
            json!({"selector": {"app": "x"}, "ports": [{"port": 80, "targetPort": 0}]}),
            json!({"ports": [{"name": "http", "port": 80, "targetPort": "http"}, {"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53}]}),
        ] {
            assert_eq!(verdict(accepted.clone()), "accepted", "{accepted}");
        }
        assert_eq!(verdict(json!({"selector": {"app": "x"}})), "spec.ports: Required value");
        assert_eq!(
            verdict(json!({"ports": [{"port": 80}, {"port": 81}]})),
            "[spec.ports[0].name: Required value, spec.ports[1].name: Required value]"
        );
        assert_eq!(
            verdict(json!({"ports": [{"name": "a", "port": 80}, {"name": "a", "port": 81}]})),
            "spec.ports[1].name: Duplicate value: \"a\""
        );
        assert!(
            verdict(json!({"ports": [{"name": "Http", "port": 80}]}))
                .starts_with("spec.ports[0].name: Invalid value: \"Http\": a lowercase RFC 1123 label must consist of")
        );
        assert_eq!(
            verdict(json!({"ports": [{"port": 0}]})),
            "[spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive, spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive]"
        );
        assert_eq!(
            verdict(json!({"ports": [{"port": 80, "protocol": "HTTP"}]})),
            "spec.ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\""
        );
        for (target, problem) in [
            ("Http_Port", "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"),
            ("a-very-long-port-name", "must be no more than 15 characters"),
            ("123", "must contain at least one letter (a-z)"),
            ("a--b", "must not contain consecutive hyphens"),
            ("-ab", "must not begin or end with a hyphen"),
        ] {
            assert_eq!(
                verdict(json!({"ports": [{"port": 80, "targetPort": target}]})),
                format!("spec.ports[0].targetPort: Invalid value: \"{target}\": {problem}")
            );
        }
        // The testbed's words for node ports on a ClusterIP Service (NodePort Services meet the
        // registry's allocator first: node_ports.rs).
        assert_eq!(
            verdict(json!({"ports": [
                {"name": "a", "port": 80, "nodePort": 31090},
                {"name": "b", "port": 81, "nodePort": 31090},
                {"name": "c", "port": 82, "nodePort": 31090, "protocol": "UDP"},
            ]})),
            "[spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP', spec.ports[1].nodePort: \
             Forbidden: may not be used when `type` is 'ClusterIP', spec.ports[2].nodePort: Forbidden: may not be used \
             when `type` is 'ClusterIP', spec.ports[1].nodePort: Duplicate value: 31090]"
        );
        assert_eq!(
            verdict(json!({"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80}]})),
            "spec.ports[1]: Duplicate value: {\"Name\":\"\",\"Protocol\":\"TCP\",\"AppProtocol\":null,\"Port\":80,\"TargetPort\":0,\"NodePort\":0}"
        );
        // The testbed's words for cluster IPs the Service's type does not allow, or that are not
        // addresses (those out of range meet the registry's allocator first: cluster_ips.rs).
        assert_eq!(
            verdict(json!({"type": "ExternalName", "externalName": "a.example.com", "clusterIPs": ["None"]})),
            "spec.clusterIPs: Forbidden: may not be set for ExternalName services"
        );
        assert_eq!(
            verdict(json!({"type": "LoadBalancer", "ports": [{"port": 80}], "clusterIPs": ["None"]})),
            "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for LoadBalancer services"
        );
        assert_eq!(
            verdict(json!({"ports": [{"port": 80}], "clusterIPs": ["10.96.0.300"]})),
            "spec.clusterIPs[0]: Invalid value: \"10.96.0.300\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
        );
        assert_eq!(verdict(json!({"ports": [{"port": 80}], "clusterIPs": ["None"]})), "accepted", "headless");
        // The testbed's words for the rest of a Service's spec (v1.37).
        for (spec, words) in [
            (
                json!({"type": "Nodeport", "ports": [{"port": 80}]}),
                "spec.type: Unsupported value: \"Nodeport\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
            ),
            (
                json!({"externalTrafficPolicy": "Local", "ports": [{"port": 80}]}),
                "spec.externalTrafficPolicy: Invalid value: \"Local\": may only be set for externally-accessible services",
            ),
            (
                json!({"type": "NodePort", "externalTrafficPolicy": "Nearest", "ports": [{"port": 80}]}),
                "spec.externalTrafficPolicy: Unsupported value: \"Nearest\": supported values: \"Cluster\", \"Local\"",
            ),
            (
                json!({"internalTrafficPolicy": "Node", "ports": [{"port": 80}]}),
                "spec.internalTrafficPolicy: Unsupported value: \"Node\": supported values: \"Cluster\", \"Local\"",
            ),
            (
                json!({"sessionAffinity": "Sticky", "ports": [{"port": 80}]}),
                "spec.sessionAffinity: Unsupported value: \"Sticky\": supported values: \"ClientIP\", \"None\"",
            ),
            (
                json!({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}}, "ports": [{"port": 80}]}),
                "spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 0: must be greater than 0 and less than 86400",
            ),
            (json!({"type": "ExternalName"}), "spec.externalName: Required value"),
            (
                json!({"type": "ExternalName", "externalName": "db host"}),
                &format!("spec.externalName: Invalid value: \"db host\": {SUBDOMAIN}"),
            ),
            (
                json!({"loadBalancerClass": "example.com/lb", "ports": [{"port": 80}]}),
                "spec.loadBalancerClass: Forbidden: may only be used when `type` is 'LoadBalancer'",
            ),
            (
                json!({"healthCheckNodePort": 31000, "ports": [{"port": 80}]}),
                "spec.healthCheckNodePort: Invalid value: 31000: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ),
            (
                json!({"externalIPs": ["not-an-ip"], "ports": [{"port": 80}]}),
                "spec.externalIPs[0]: Invalid value: \"not-an-ip\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            ),
            (
                json!({"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/33"], "ports": [{"port": 80}]}),
                "spec.LoadBalancerSourceRanges[0]: Invalid value: \"10.0.0.0/33\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            ),
            (
                json!({"trafficDistribution": "Nearby", "ports": [{"port": 80}]}),
                "spec.trafficDistribution: Unsupported value: \"Nearby\": supported values: \"PreferClose\", \"PreferSameZone\", \"PreferSameNode\"",
            ),
            (
                json!({"ipFamilyPolicy": "DualStack", "ports": [{"port": 80}]}),
                "spec.ipFamilyPolicy: Unsupported value: \"DualStack\": supported values: \"PreferDualStack\", \"RequireDualStack\", \"SingleStack\"",
            ),
            (
                json!({"ports": [{"port": 80, "appProtocol": "bad proto!"}]}),
                &format!("spec.ports[0].appProtocol: Invalid value: \"bad proto!\": {NAME_PART}"),
            ),
        ] {
            assert_eq!(verdict(spec.clone()), words, "{spec}");
        }
        for accepted in [
            json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "healthCheckNodePort": 31000, "loadBalancerClass": "example.com/lb", "loadBalancerSourceRanges": ["10.0.0.0/8", " 2001:db8::/64 "], "ports": [{"port": 80}]}),
            json!({"externalIPs": ["203.0.113.7"], "externalTrafficPolicy": "Local", "ports": [{"port": 80}]}),
            json!({"type": "ExternalName", "externalName": "db.example.com."}),
        ] {
            assert_eq!(verdict(accepted.clone()), "accepted", "{accepted}");
        }
    }

    #[test]
    fn on_the_hosts_network_a_host_port_must_be_the_container_port() {
        let spec = json!({"hostNetwork": true,
            "initContainers": [{"name": "i", "image": "x", "ports": [{"containerPort": 70, "hostPort": 71}]}],
            "containers": [{"name": "c", "image": "x",
                "ports": [{"containerPort": 80}, {"containerPort": 81, "hostPort": 82}],
                "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}},
            }],
        });
        let mut pod = json!({"metadata": {"name": "p"}, "spec": spec.clone()});
        super::super::defaults::apply(resources::POD, &mut pod);
        // The testbed's API server's words (v1.37): resources first, init containers not judged.
        assert_eq!(
            create(resources::POD, &pod).unwrap_err().message,
            "Pod \"p\" is invalid: [spec.containers[0].resources.requests: Invalid value: \"2\": must be less than \
             or equal to cpu limit of 1, spec.containers[0].ports[1].hostPort: Invalid value: 82: must match \
             `containerPort` when `hostNetwork` is true]"
        );
        let mut deployment = json!({"metadata": {"name": "d"}, "spec": {
            "selector": {"matchLabels": {"app": "d"}},
            "template": {"metadata": {"labels": {"app": "d"}}, "spec": spec},
        }});
        deployment["spec"]["template"]["spec"]["containers"][0]["resources"] = json!({});
        assert_eq!(
            create(resources::DEPLOYMENT, &deployment).unwrap_err().message,
            "Deployment.apps \"d\" is invalid: spec.template.spec.containers[0].ports[1].hostPort: Invalid value: \
             82: must match `containerPort` when `hostNetwork` is true",
            "a template may leave it 0"
        );
        deployment["spec"]["template"]["spec"]["hostNetwork"] = json!(false);
        assert!(create(resources::DEPLOYMENT, &deployment).is_ok());
    }

    #[test]
    fn resource_requirements_are_judged_in_the_api_servers_words() {
        let pod = |resources: Value| {
            let mut pod = json!({"metadata": {"name": "q"}, "spec": {"containers": [{"name": "c", "image": "x", "resources": resources}]}});
            super::super::defaults::apply(resources::POD, &mut pod);
            match create(resources::POD, &pod) {
                Ok(()) => "accepted".to_string(),
                Err(error) => error.message,
            }
        };
        // The testbed's API server's words (v1.37).
        assert_eq!(pod(json!({"requests": {"cpu": "500m"}, "limits": {"cpu": 1}})), "accepted");
        assert_eq!(
            pod(json!({"requests": {"cpu": "2"}, "limits": {"cpu": "1.5"}})),
            "Pod \"q\" is invalid: spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or \
             equal to cpu limit of 1500m"
        );
        assert_eq!(
            pod(json!({"requests": {"memory": "-0.5Gi"}})),
            "Pod \"q\" is invalid: spec.containers[0].resources.requests[memory]: Invalid value: \"-512Mi\": must be \
             greater than or equal to 0"
        );
        assert_eq!(
            pod(json!({"requests": {"example.com/dongle": 1}, "limits": {"example.com/dongle": 2}})),
            "Pod \"q\" is invalid: spec.containers[0].resources.requests: Invalid value: \"1\": must be equal to \
             example.com/dongle limit of 2"
        );
        assert_eq!(
            pod(json!({"requests": {"example.com/dongle": 1}})),
            "Pod \"q\" is invalid: spec.containers[0].resources.limits: Required value: Limit must be set for non \
             overcommitable resources"
        );
        // The limit is the request too (defaulted before validation), so both are judged.
        assert_eq!(
            pod(json!({"limits": {"example.com/dongle": "500m"}})),
            "Pod \"q\" is invalid: [spec.containers[0].resources.limits[example.com/dongle]: Invalid value: \
             \"500m\": must be an integer, spec.containers[0].resources.requests[example.com/dongle]: Invalid value: \
             \"500m\": must be an integer]"
        );
        let template = json!({"metadata": {"name": "q"}, "spec": {
            "selector": {"matchLabels": {"app": "q"}},
            "template": {"metadata": {"labels": {"app": "q"}}, "spec": {"containers": [{"name": "c", "image": "x"}], "initContainers": [
                {"name": "i", "image": "x", "resources": {"requests": {"cpu": "-1"}}}
            ]}},
        }});
        assert_eq!(
            create(resources::DEPLOYMENT, &template).unwrap_err().message,
            "Deployment.apps \"q\" is invalid: spec.template.spec.initContainers[0].resources.requests[cpu]: Invalid \
             value: \"-1\": must be greater than or equal to 0"
        );
        assert!(super::super::schema::holds_unreadable_quantity(
            resources::DEPLOYMENT,
            &json!({"spec": {"template": {"spec": {"containers": [{"resources": {"limits": {"cpu": "abc"}}}]}}}})
        ));
        assert!(!super::super::schema::holds_unreadable_quantity(resources::DEPLOYMENT, &template));
    }

    #[test]
    fn lengths_and_patterns_are_separate_problems_counted_as_upstream_counts_them() {
        let long = "a".repeat(260);
        assert_eq!(name_problems(resources::DEPLOYMENT, &long), ["must be no more than 253 characters"]);
        assert_eq!(name_problems(resources::DEPLOYMENT, "Web"), [SUBDOMAIN]);
        assert_eq!(name_problems(resources::SERVICE, "web.v1"), ["must not contain dots"]);
        assert!(name_problems(resources::SERVICE, "1web").is_empty(), "relaxed service names");
        assert_eq!(label_key_problems(&"k".repeat(64)), ["name part must be no more than 63 bytes"]);
        assert_eq!(label_key_problems(""), ["name part must be non-empty", NAME_PART]);
        assert_eq!(label_key_problems("/x"), ["prefix part must be non-empty"]);
        assert!(label_key_problems("a/b/c")[0].starts_with("a valid label key must consist"));
        assert_eq!(label_value_problems(&"v".repeat(64)), ["must be no more than 63 bytes"]);
        assert_eq!(
            label_value_problems(&format!("-{}", "v".repeat(63))),
            ["must be no more than 63 bytes", LABEL_VALUE]
        );
        assert!(label_value_problems("").is_empty());
    }

    #[test]
    fn an_invalid_selector_is_printed_as_go_prints_the_struct() {
        let selector = json!({"matchExpressions": [{"key": "app", "operator": "In", "values": []}], "matchLabels": {"app": "web"}});
        assert_eq!(
            selector_as_go(&selector),
            r#"{"matchLabels":{"app":"web"},"matchExpressions":[{"key":"app","operator":"In"}]}"#
        );
        assert_eq!(selector_as_go(&json!({})), "{}");
        assert_eq!(selector_as_go(&Value::Null), "null", "a selector left out is Go's nil pointer");
    }

    #[test]
    fn configmaps_secrets_and_budgets_are_judged_in_the_api_servers_words() {
        let map = json!({"metadata": {"name": "c"}, "data": {"a/b": "x", "..up": "y", "both": "z"}, "binaryData": {"both": "eA=="}});
        let message = create(resources::CONFIG_MAP, &map).unwrap_err().message;
        assert!(message.contains("data[a/b]: Invalid value: \"a/b\": a valid config key"), "{message}");
        assert!(message.contains("data[..up]: Invalid value: \"..up\": must not start with '..'"), "{message}");
        assert!(message.contains("data[both]: Invalid value: \"both\": duplicate of key present in binaryData"));
        let tls = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}});
        assert!(create(resources::SECRET, &tls).unwrap_err().message.ends_with("data[tls.key]: Required value"));
        let frozen = json!({"metadata": {"name": "c"}, "immutable": true, "data": {"a": "1"}});
        let thawed = json!({"metadata": {"name": "c"}, "data": {"a": "2"}});
        let message = update(resources::CONFIG_MAP, &frozen, &thawed).unwrap_err().message;
        assert!(message.contains("immutable: Forbidden") && message.contains("data: Forbidden"), "{message}");
        let both = json!({"metadata": {"name": "b"}, "spec": {"minAvailable": 1, "maxUnavailable": "10%"}});
        assert!(create(resources::POD_DISRUPTION_BUDGET, &both).unwrap_err().message.ends_with(
            r#"spec: Invalid value: {"MinAvailable":1,"Selector":null,"MaxUnavailable":"10%","UnhealthyPodEvictionPolicy":null}: minAvailable and maxUnavailable cannot be both set"#
        ));
    }
}
