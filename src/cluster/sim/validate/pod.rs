//! A pod's spec, as upstream's ValidatePodSpec judges a Pod or a controller's pod template, in
//! its order: volumes, containers (each one's name, image, ports, environment, mounts, pull
//! policy and resources, then its probes), init containers, the host network's ports, restart
//! and DNS policies, the node selector, affinity and topology spread (validate/scheduling.rs)
//! around the DNS config, and tolerations. Defaulting runs before upstream's validation, so an
//! empty or missing field the API defaults (a port's protocol, a pull policy, a probe's counts)
//! is taken as its default here.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::super::quantity::Quantity;
use super::super::store::keep_stored;
use super::{
    compact, invalid_ip, items, label_key_problems, label_map, nonnegative, port_name_problems, text, unsupported,
};

/// The pod spec at `path` (`spec` for a Pod, `spec.template.spec` for a template).
pub(super) fn spec(spec: &Value, path: &str, is_pod: bool) -> Vec<String> {
    let (volumes, mut causes) = volumes(&spec["volumes"], &format!("{path}.volumes"));
    causes.extend(containers(spec, path, &volumes));
    causes.extend(init_containers(spec, path, &volumes));
    causes.extend(host_network_ports(spec, path, is_pod));
    causes.extend(one_of(&spec["restartPolicy"], &format!("{path}.restartPolicy"), &["Always", "OnFailure", "Never"]));
    causes.extend(one_of(
        &spec["dnsPolicy"],
        &format!("{path}.dnsPolicy"),
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
    ));
    causes.extend(label_map(&format!("{path}.nodeSelector"), &spec["nodeSelector"]));
    if spec["shareProcessNamespace"] == true && spec["hostPID"] == true {
        causes.push(format!(
            "{path}.shareProcessNamespace: Invalid value: true: ShareProcessNamespace and HostPID cannot both be enabled"
        ));
    }
    causes.extend(super::scheduling::affinity(spec, path));
    match dns_config(spec, path) {
        Some(missing) => causes.push(missing),
        None => {
            causes.extend(addresses(&spec["dnsConfig"]["nameservers"], None, &format!("{path}.dnsConfig.nameservers")))
        }
    }
    causes.extend(scheduling_gates(&spec["schedulingGates"], &format!("{path}.schedulingGates")));
    causes.extend(super::scheduling::topology_spread(spec, path));
    causes.extend(subdomain(text(&spec["serviceAccountName"]), &format!("{path}.serviceAccountName")));
    causes.extend(subdomain(text(&spec["nodeName"]), &format!("{path}.nodeName")));
    if let Some(deadline) = spec["activeDeadlineSeconds"].as_i64()
        && !(1..=i64::from(i32::MAX)).contains(&deadline)
    {
        causes.push(format!(
            "{path}.activeDeadlineSeconds: Invalid value: {deadline}: must be between 1 and 2147483647, inclusive"
        ));
    }
    for field in ["hostname", "subdomain"] {
        let name = text(&spec[field]);
        if !name.is_empty() {
            causes.extend(dns_label(name, &format!("{path}.{field}")));
        }
    }
    causes.extend(tolerations(&spec["tolerations"], &format!("{path}.tolerations")));
    causes.extend(addresses(&spec["hostAliases"], Some("ip"), &format!("{path}.hostAliases")));
    causes.extend(subdomain(text(&spec["priorityClassName"]), &format!("{path}.priorityClassName")));
    if spec["os"].is_object() {
        match text(&spec["os"]["name"]) {
            "" => causes.push(format!("{path}.os.name: Required value")),
            "linux" | "windows" => {}
            other => causes.push(unsupported(&format!("{path}.os"), other, &["linux", "windows"])),
        }
    }
    if is_pod {
        // validateContainersOnlyForPod: a template keeps such an image for backward compatibility.
        for field in ["containers", "initContainers"] {
            for (index, container) in items(&spec[field]).iter().enumerate() {
                let image = container["image"].as_str().unwrap_or_default();
                if image.trim() != image {
                    causes.push(format!(
                        "{path}.{field}[{index}].image: Invalid value: \"{image}\": must not have leading or trailing whitespace"
                    ));
                }
            }
        }
    }
    causes
}

/// With `dnsPolicy: None` the pod's resolver comes from `dnsConfig` alone, which must name a
/// nameserver (upstream's validatePodDNSConfig; the config's own fields are not judged here).
fn dns_config(spec: &Value, path: &str) -> Option<String> {
    if spec["dnsPolicy"] != "None" {
        return None;
    }
    if spec["dnsConfig"].is_null() {
        return Some(format!("{path}.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"));
    }
    items(&spec["dnsConfig"]["nameservers"]).is_empty().then(|| {
        format!(
            "{path}.dnsConfig.nameservers: Required value: must provide at least one DNS nameserver when `dnsPolicy` is None"
        )
    })
}

/// Each listed address that is not an IP address: the items of `list` (nameservers), or their
/// `field` (a host alias's `ip`).
fn addresses<'a>(list: &'a Value, field: Option<&'a str>, path: &'a str) -> impl Iterator<Item = String> + 'a {
    items(list).iter().enumerate().filter_map(move |(i, entry)| match field {
        None => invalid_ip(&format!("{path}[{i}]"), text(entry)),
        Some(field) => invalid_ip(&format!("{path}[{i}].{field}"), text(&entry[field])),
    })
}

/// ValidatePodUpdate's rules for a pod's spec once it exists: no container added or removed;
/// an active deadline only shortened; tolerations only added; and nothing else changed but
/// images (and a negative grace period set to 1). The API server appends a dump of its internal
/// types' difference to that last refusal, which the built-in cluster leaves out (it is not the
/// same dump; rehearse's reports cut it from both, see `exec::steps::normalise_refusal`).
pub(super) fn change(current: &Value, object: &Value) -> Vec<String> {
    let (old, new) = (&current["spec"], &object["spec"]);
    for field in ["containers", "initContainers"] {
        if items(&old[field]).len() != items(&new[field]).len() {
            return vec![format!("spec.{field}: Forbidden: pod updates may not add or remove containers")];
        }
    }
    let mut causes = Vec::new();
    match (old["activeDeadlineSeconds"].as_i64(), new["activeDeadlineSeconds"].as_i64()) {
        (_, Some(deadline)) if !(0..=i64::from(i32::MAX)).contains(&deadline) => {
            return vec![format!(
                "spec.activeDeadlineSeconds: Invalid value: {deadline}: must be between 0 and 2147483647, inclusive"
            )];
        }
        (Some(before), Some(deadline)) if before < deadline => {
            return vec![format!(
                "spec.activeDeadlineSeconds: Invalid value: {deadline}: must be less than or equal to previous value"
            )];
        }
        (Some(_), None) => causes.push(
            "spec.activeDeadlineSeconds: Invalid value: \"null\": must not update from a positive integer to nil value"
                .to_string(),
        ),
        _ => {}
    }
    let kept = items(&old["tolerations"])
        .iter()
        .all(|before| items(&new["tolerations"]).iter().any(|after| without_seconds(before) == without_seconds(after)));
    if !kept {
        causes.push(
            "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"
                .to_string(),
        );
    }
    causes.extend(added_scheduling_gates(&new["schedulingGates"], &old["schedulingGates"]));
    let mut munged = munged(new, old);
    if !items(&old["schedulingGates"]).is_empty() {
        causes.extend(gated_node_selector(&mut munged, old));
        causes.extend(gated_node_affinity(&mut munged, old));
    }
    if munged != *old {
        causes.push(format!("spec: Forbidden: pod updates may not change fields other than {UPDATABLE}"));
    }
    causes
}

/// validateSchedulingGates: each gate a qualified name, none twice.
fn scheduling_gates(gates: &Value, path: &str) -> Vec<String> {
    let gates = items(gates);
    let mut causes = Vec::new();
    for (index, gate) in gates.iter().enumerate() {
        let name = text(&gate["name"]);
        for problem in super::label_key_problems(name) {
            causes.push(format!("{path}[{index}]: Invalid value: \"{name}\": {problem}"));
        }
        if gates[..index].iter().any(|earlier| earlier["name"] == gate["name"]) {
            causes.push(format!("{path}[{index}]: Duplicate value: \"{name}\""));
        }
    }
    causes
}

/// Scheduling gates may only be removed once a pod exists (validateOnlyDeletedSchedulingGates):
/// each gate the pod did not have is refused once, at the last index it appears at. Upstream
/// lists two or more such gates in a map's random order; here they come in the list's order.
fn added_scheduling_gates(new: &Value, old: &Value) -> Vec<String> {
    let had = |name: &Value| items(old).iter().any(|gate| gate["name"] == *name);
    let gates = items(new);
    let last = |index: usize, name: &Value| gates[index + 1..].iter().all(|later| later["name"] != *name);
    gates
        .iter()
        .enumerate()
        .filter(|(index, gate)| !had(&gate["name"]) && last(*index, &gate["name"]))
        .map(|(index, gate)| {
            format!(
                "spec.schedulingGates[{index}].name: Forbidden: only deletion is allowed, but found new scheduling gate '{}'",
                text(&gate["name"])
            )
        })
        .collect()
}

/// A pod still gated may gain node selector entries (so that whatever holds the gate can say
/// where the pod goes before it lifts it), but not lose or change one: the API server's words,
/// with the whole new selector as JSON. What is allowed is taken as the old value.
fn gated_node_selector(munged: &mut Value, old: &Value) -> Option<String> {
    let (new_selector, old_selector) = (&munged["nodeSelector"], &old["nodeSelector"]);
    // An empty map is no selector to the API (its DeepEqual), but the new one is taken as the old
    // either way, as upstream munges it.
    let changed = string_map(new_selector) != string_map(old_selector);
    let kept = string_map(old_selector).iter().all(|(key, value)| new_selector.get(key) == Some(value));
    let refusal = (changed && !kept).then(|| {
        format!(
            "spec.nodeSelector: Invalid value: {}: only additions to spec.nodeSelector are allowed (no mutations or deletions)",
            go_json(new_selector)
        )
    });
    keep_stored(munged, old, &["nodeSelector"]);
    refusal
}

/// A pod still gated may narrow its required node affinity (validateNodeAffinityMutation): set
/// one if it had none or no terms, else keep each term and only add requirements to it. The
/// refusals show the terms as the API server's internal types print them.
fn gated_node_affinity(munged: &mut Value, old: &Value) -> Vec<String> {
    let old_affinity = &old["affinity"]["nodeAffinity"];
    let new_affinity = &munged["affinity"]["nodeAffinity"];
    // A node affinity `{}` is not none to the API (a pointer to an empty struct): it is judged,
    // passes, and is munged like any other.
    if new_affinity == old_affinity {
        return Vec::new();
    }
    let path = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms";
    let required = "requiredDuringSchedulingIgnoredDuringExecution";
    let old_terms = items(&old_affinity[required]["nodeSelectorTerms"]);
    let new_terms = items(&new_affinity[required]["nodeSelectorTerms"]);
    let mut refusals = Vec::new();
    if !old_affinity[required].is_null() {
        if !old_terms.is_empty() && old_terms.len() != new_terms.len() {
            refusals.push(format!(
                "{path}: Invalid value: {}: no additions/deletions to non-empty NodeSelectorTerms list are allowed",
                go_json(&internal_terms(&new_affinity[required]["nodeSelectorTerms"]))
            ));
        } else {
            for (index, (old_term, new_term)) in old_terms.iter().zip(new_terms).enumerate() {
                if !only_additions(new_term, old_term) {
                    refusals.push(format!(
                        "{path}[{index}]: Invalid value: {}: only additions are allowed (no mutations or deletions)",
                        go_json(&internal_term(new_term))
                    ));
                }
            }
        }
    }
    // Upstream's munging: the old node affinity in place of the new, and no affinity at all where
    // the pod had none and the new one held only a node affinity.
    let had_affinity = !old["affinity"].is_null();
    match munged.get_mut("affinity").and_then(Value::as_object_mut) {
        Some(affinity) => {
            match old_affinity {
                Value::Null => affinity.remove("nodeAffinity"),
                kept => affinity.insert("nodeAffinity".into(), kept.clone()),
            };
            let only_node =
                ["podAffinity", "podAntiAffinity"].iter().all(|k| affinity.get(*k).is_none_or(Value::is_null));
            if !had_affinity
                && only_node
                && let Some(spec) = munged.as_object_mut()
            {
                spec.remove("affinity");
            }
        }
        None if !old_affinity.is_null() => munged["affinity"] = json!({"nodeAffinity": old_affinity}),
        None => {}
    }
    refusals
}

/// validateNodeSelectorTermHasOnlyAdditions: an empty term stays empty; otherwise each list of
/// requirements keeps its old entries, in order, at its head.
fn only_additions(new: &Value, old: &Value) -> bool {
    let lists = ["matchExpressions", "matchFields"];
    if lists.iter().all(|l| items(&old[*l]).is_empty()) && lists.iter().any(|l| !items(&new[*l]).is_empty()) {
        return false;
    }
    lists.iter().all(|list| {
        let (old, new) = (items(&old[*list]), items(&new[*list]));
        new.len() >= old.len() && old.iter().zip(new).all(|(old, new)| same_requirement(old, new))
    })
}

fn same_requirement(old: &Value, new: &Value) -> bool {
    old["key"] == new["key"] && old["operator"] == new["operator"] && items(&old["values"]) == items(&new["values"])
}

/// Terms as Go's encoding/json prints the API server's internal types, which carry no JSON names:
/// a list sent empty is `[]`, one not sent `null`.
fn internal_terms(terms: &Value) -> Value {
    match terms.as_array() {
        Some(terms) => terms.iter().map(internal_term).collect(),
        None => Value::Null,
    }
}

fn internal_term(term: &Value) -> Value {
    let requirements = |list: &Value| -> Value {
        let Some(list) = list.as_array() else { return Value::Null };
        list.iter()
            .map(|r| {
                let values = if r["values"].is_array() { r["values"].clone() } else { Value::Null };
                json!({"Key": r["key"], "Operator": r["operator"], "Values": values})
            })
            .collect()
    };
    json!({"MatchExpressions": requirements(&term["matchExpressions"]), "MatchFields": requirements(&term["matchFields"])})
}

/// JSON as Go's encoding/json writes it in a message: keys sorted (serde_json's map is sorted),
/// and `<`, `>` and `&` escaped for HTML.
fn go_json(value: &Value) -> String {
    value.to_string().replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026")
}

fn string_map(value: &Value) -> serde_json::Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

const UPDATABLE: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

fn without_seconds(toleration: &Value) -> Value {
    let mut toleration = toleration.clone();
    if let Some(fields) = toleration.as_object_mut() {
        fields.remove("tolerationSeconds");
    }
    toleration
}

/// The new spec with what may change taken from the old one.
fn munged(new: &Value, old: &Value) -> Value {
    let mut spec = new.clone();
    for field in ["containers", "initContainers"] {
        if let Some(containers) = spec.get_mut(field).and_then(Value::as_array_mut) {
            for (index, container) in containers.iter_mut().enumerate() {
                container["image"] = old[field][index]["image"].clone();
            }
        }
    }
    for field in ["activeDeadlineSeconds", "tolerations", "schedulingGates"] {
        keep_stored(&mut spec, old, &[field]);
    }
    let Some(fields) = spec.as_object_mut() else { return spec };
    if old["terminationGracePeriodSeconds"].as_i64().is_some_and(|g| g < 0)
        && fields.get("terminationGracePeriodSeconds") == Some(&Value::from(1))
    {
        fields.insert("terminationGracePeriodSeconds".into(), old["terminationGracePeriodSeconds"].clone());
    }
    spec
}

/// The template of an apps/v1 controller runs its pods for good: `Always` is its only restart
/// policy (the default).
pub(super) fn template_restart_policy(spec: &Value, path: &str) -> Option<String> {
    let policy = text(&spec["restartPolicy"]);
    (!policy.is_empty() && policy != "Always")
        .then(|| format!("{path}.restartPolicy: Unsupported value: \"{policy}\": supported values: \"Always\""))
}

/// A field the API defaults when empty, so only a value outside the list is refused.
fn one_of(value: &Value, path: &str, supported: &[&str]) -> Option<String> {
    let value = text(value);
    (!value.is_empty() && !supported.contains(&value)).then(|| super::unsupported(path, value, supported))
}

/// ValidateDNS1123Label, every problem in its order.
fn dns_label(name: &str, path: &str) -> Vec<String> {
    super::dns_label_problems(name)
        .into_iter()
        .map(|problem| format!("{path}: Invalid value: \"{name}\": {problem}"))
        .collect()
}

/// A name that must be a DNS subdomain (a node, a service account, a priority class), when given.
fn subdomain(name: &str, path: &str) -> Vec<String> {
    if name.is_empty() {
        return Vec::new();
    }
    super::subdomain_problems(name, "characters")
        .into_iter()
        .map(|problem| format!("{path}: Invalid value: \"{name}\": {problem}"))
        .collect()
}

/// ValidateVolumes: each volume names one source and has a unique DNS label for a name. Only a
/// volume without problems can be mounted (the names are returned).
fn volumes(list: &Value, path: &str) -> (BTreeSet<String>, Vec<String>) {
    let mut names = BTreeSet::new();
    let mut causes = Vec::new();
    for (index, volume) in items(list).iter().enumerate() {
        let path = format!("{path}[{index}]");
        let mut problems = Vec::new();
        let sources = volume.as_object().map_or(0, |v| v.keys().filter(|k| *k != "name").count());
        if sources == 0 {
            problems.push(format!("{path}: Required value: must specify a volume type"));
        }
        let name = text(&volume["name"]);
        if name.is_empty() {
            problems.push(format!("{path}.name: Required value"));
        } else {
            problems.extend(dns_label(name, &format!("{path}.name")));
        }
        if names.contains(name) {
            problems.push(format!("{path}.name: Duplicate value: \"{name}\""));
        }
        if problems.is_empty() {
            names.insert(name.to_string());
        }
        causes.extend(problems);
    }
    (names, causes)
}

/// validateContainers: at least one; each judged on its own (validateContainerCommon), its name
/// unique, its probes; then host ports across them all.
fn containers(spec: &Value, path: &str, volumes: &BTreeSet<String>) -> Vec<String> {
    let path = format!("{path}.containers");
    let containers = items(&spec["containers"]);
    if containers.is_empty() {
        return vec![format!("{path}: Required value")];
    }
    let mut causes = Vec::new();
    let mut names = BTreeSet::new();
    for (index, container) in containers.iter().enumerate() {
        let path = format!("{path}[{index}]");
        causes.extend(container_common(container, &path, volumes));
        let name = text(&container["name"]);
        if !names.insert(name) {
            causes.push(format!("{path}.name: Duplicate value: \"{name}\""));
        }
        for (probe, kind) in [
            ("livenessProbe", ProbeKind::Liveness),
            ("readinessProbe", ProbeKind::Readiness),
            ("startupProbe", ProbeKind::Startup),
        ] {
            causes.extend(self::probe(&container[probe], &format!("{path}.{probe}"), kind));
        }
    }
    causes.extend(host_port_conflicts(containers, &path));
    causes
}

/// validateInitContainers: as a container, its name unique among all containers, host ports
/// unique within it, and no probe unless it restarts (a sidecar).
fn init_containers(spec: &Value, path: &str, volumes: &BTreeSet<String>) -> Vec<String> {
    let path = format!("{path}.initContainers");
    let mut names: BTreeSet<&str> = items(&spec["containers"]).iter().map(|c| text(&c["name"])).collect();
    let mut causes = Vec::new();
    for (index, container) in items(&spec["initContainers"]).iter().enumerate() {
        let item = format!("{path}[{index}]");
        causes.extend(container_common(container, &item, volumes));
        let name = text(&container["name"]);
        if !names.insert(name) {
            causes.push(format!("{item}.name: Duplicate value: \"{name}\""));
        }
        causes.extend(host_port_conflicts(std::slice::from_ref(container), &path));
        let sidecar = container["restartPolicy"] == "Always";
        for (probe, kind) in [
            ("lifecycle", ProbeKind::Liveness),
            ("livenessProbe", ProbeKind::Liveness),
            ("readinessProbe", ProbeKind::Readiness),
            ("startupProbe", ProbeKind::Startup),
        ] {
            if container[probe].is_null() {
                continue;
            }
            if !sidecar {
                causes.push(format!(
                    "{item}.{probe}: Forbidden: may not be set for init containers without restartPolicy=Always"
                ));
            } else if probe != "lifecycle" {
                causes.extend(self::probe(&container[probe], &format!("{item}.{probe}"), kind));
            }
        }
    }
    causes
}

/// validateContainerCommon, as far as the built-in cluster reads a container.
fn container_common(container: &Value, path: &str, volumes: &BTreeSet<String>) -> Vec<String> {
    let mut causes = Vec::new();
    let name = text(&container["name"]);
    if name.is_empty() {
        causes.push(format!("{path}.name: Required value"));
    } else {
        causes.extend(dns_label(name, &format!("{path}.name")));
    }
    if text(&container["image"]).is_empty() {
        causes.push(format!("{path}.image: Required value"));
    }
    causes.extend(one_of(
        &container["terminationMessagePolicy"],
        &format!("{path}.terminationMessagePolicy"),
        &["File", "FallbackToLogsOnError"],
    ));
    causes.extend(container_ports(&container["ports"], &format!("{path}.ports")));
    causes.extend(environment(&container["env"], &format!("{path}.env")));
    causes.extend(environment_from(&container["envFrom"], &format!("{path}.envFrom")));
    causes.extend(volume_mounts(&container["volumeMounts"], volumes, &format!("{path}.volumeMounts")));
    causes.extend(one_of(
        &container["imagePullPolicy"],
        &format!("{path}.imagePullPolicy"),
        &["Always", "IfNotPresent", "Never"],
    ));
    causes.extend(requirements(&format!("{path}.resources"), &container["resources"]));
    causes
}

/// validateContainerPorts: a name is an IANA service name, unique; a container port is given and
/// in range, a host port in range; a known protocol (TCP when left out).
fn container_ports(list: &Value, path: &str) -> Vec<String> {
    let mut causes = Vec::new();
    let mut names = BTreeSet::new();
    for (index, port) in items(list).iter().enumerate() {
        let path = format!("{path}[{index}]");
        let name = text(&port["name"]);
        if !name.is_empty() {
            let problems = port_name_problems(name);
            if !problems.is_empty() {
                causes.extend(problems.iter().map(|p| format!("{path}.name: Invalid value: \"{name}\": {p}")));
            } else if !names.insert(name) {
                causes.push(format!("{path}.name: Duplicate value: \"{name}\""));
            }
        }
        match port["containerPort"].as_i64().unwrap_or(0) {
            0 => causes.push(format!("{path}.containerPort: Required value")),
            number => causes.extend(port_number(number, &format!("{path}.containerPort"))),
        }
        match port["hostPort"].as_i64().unwrap_or(0) {
            0 => {}
            number => causes.extend(port_number(number, &format!("{path}.hostPort"))),
        }
        causes.extend(one_of(&port["protocol"], &format!("{path}.protocol"), &["SCTP", "TCP", "UDP"]));
    }
    causes
}

fn port_number(number: i64, path: &str) -> Option<String> {
    (!(1..=65535).contains(&number))
        .then(|| format!("{path}: Invalid value: {number}: must be between 1 and 65535, inclusive"))
}

/// ValidatePortNumOrName: a probe's port, a number in range or a port's name.
fn port_number_or_name(port: &Value, path: &str) -> Vec<String> {
    match port {
        Value::String(name) => {
            port_name_problems(name).iter().map(|p| format!("{path}: Invalid value: \"{name}\": {p}")).collect()
        }
        other => port_number(other.as_i64().unwrap_or(0), path).into_iter().collect(),
    }
}

/// AccumulateUniqueHostPorts: a host port (with its protocol and address) is bound once.
fn host_port_conflicts(containers: &[Value], path: &str) -> Vec<String> {
    let mut bound = BTreeSet::new();
    let mut causes = Vec::new();
    for (index, container) in containers.iter().enumerate() {
        for (port_index, port) in items(&container["ports"]).iter().enumerate() {
            let host_port = port["hostPort"].as_i64().unwrap_or(0);
            if host_port == 0 {
                continue;
            }
            let protocol = Some(text(&port["protocol"])).filter(|p| !p.is_empty()).unwrap_or("TCP");
            let key = format!("{protocol}/{}/{host_port}", text(&port["hostIP"]));
            if !bound.insert(key.clone()) {
                causes.push(format!("{path}[{index}].ports[{port_index}].hostPort: Duplicate value: \"{key}\""));
            }
        }
    }
    causes
}

/// ValidateEnv with relaxed names (the default since Kubernetes 1.34): any printable ASCII but `=`.
fn environment(list: &Value, path: &str) -> Vec<String> {
    let mut causes = Vec::new();
    for (index, variable) in items(list).iter().enumerate() {
        let name = text(&variable["name"]);
        if name.is_empty() {
            causes.push(format!("{path}[{index}].name: Required value"));
        } else if !is_env_name(name) {
            causes.push(format!("{path}[{index}].name: Invalid value: \"{name}\": {ENV_NAME}"));
        }
        causes.extend(value_from(variable, &format!("{path}[{index}].valueFrom")));
    }
    causes
}

const ENV_NAME: &str =
    "a valid environment variable name must consist only of printable ASCII characters other than '='";

/// IsRelaxedEnvVarName: printable ASCII but `=`.
fn is_env_name(name: &str) -> bool {
    name.bytes().all(|b| b.is_ascii_graphic() || b == b' ') && !name.contains('=')
}

/// validateEnvVarValueFrom: exactly one source, not beside a value; each source well formed.
fn value_from(variable: &Value, path: &str) -> Vec<String> {
    let from = &variable["valueFrom"];
    if from.is_null() {
        return Vec::new();
    }
    let mut causes = Vec::new();
    let mut sources = 0;
    if from["fieldRef"].is_object() {
        sources += 1;
        causes.extend(field_ref(&from["fieldRef"], &format!("{path}.fieldRef")));
    }
    if from["resourceFieldRef"].is_object() {
        sources += 1;
        let resource = text(&from["resourceFieldRef"]["resource"]);
        if resource.is_empty() {
            causes.push(format!("{path}.resourceFieldRef.resource: Required value"));
        } else if !CONTAINER_RESOURCE_FIELDS.contains(&resource)
            && !resource.starts_with("limits.hugepages-")
            && !resource.starts_with("requests.hugepages-")
        {
            causes.push(unsupported(&format!("{path}.resourceFieldRef.resource"), resource, CONTAINER_RESOURCE_FIELDS));
        }
    }
    for source in ["configMapKeyRef", "secretKeyRef"] {
        let selector = &from[source];
        if !selector.is_object() {
            continue;
        }
        sources += 1;
        let name = text(&selector["name"]);
        for problem in super::subdomain_problems(name, "characters") {
            causes.push(format!("{path}.{source}.name: Invalid value: \"{name}\": {problem}"));
        }
        let key = text(&selector["key"]);
        if key.is_empty() {
            causes.push(format!("{path}.{source}.key: Required value"));
        } else {
            for problem in super::config::key_problems(key) {
                causes.push(format!("{path}.{source}.key: Invalid value: \"{key}\": {problem}"));
            }
        }
    }
    if sources == 0 {
        causes.push(format!(
            "{path}: Invalid value: \"\": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"
        ));
    } else if !text(&variable["value"]).is_empty() {
        causes.push(format!("{path}: Invalid value: \"\": may not be specified when `value` is not empty"));
    } else if sources > 1 {
        causes.push(format!("{path}: Invalid value: \"\": may not have more than one field specified at a time"));
    }
    causes
}

/// The fields of a pod the downward API hands to an environment variable.
const ENV_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

/// The fields of a pod the downward API knows at all (ConvertDownwardAPIFieldLabel).
const POD_FIELDS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.serviceAccountName",
    "spec.schedulerName",
    "status.phase",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

const CONTAINER_RESOURCE_FIELDS: &[&str] = &[
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

/// validateObjectFieldSelector for an environment variable (apiVersion defaults to v1).
fn field_ref(selector: &Value, path: &str) -> Vec<String> {
    let version = selector["apiVersion"].as_str().unwrap_or("v1");
    let field = text(&selector["fieldPath"]);
    if field.is_empty() {
        return vec![format!("{path}.fieldPath: Required value")];
    }
    let not_converted =
        |why: String| vec![format!("{path}.fieldPath: Invalid value: \"{field}\": error converting fieldPath: {why}")];
    if version != "v1" {
        return not_converted(format!("unsupported pod version: {version}"));
    }
    // `metadata.labels['key']`: a label or an annotation by its key.
    if let Some((base, subscript)) = field.strip_suffix("']").and_then(|f| f.split_once("['")) {
        return match base {
            "metadata.annotations" | "metadata.labels" => {
                let key = if base == "metadata.annotations" { subscript.to_lowercase() } else { subscript.to_string() };
                label_key_problems(&key)
                    .into_iter()
                    .map(|problem| format!("{path}: Invalid value: \"{key}\": {problem}"))
                    .collect()
            }
            _ => not_converted(format!("field label does not support subscript: {field}")),
        };
    }
    let field = if field == "spec.host" { "spec.nodeName" } else { field };
    if !POD_FIELDS.contains(&field) {
        return not_converted(format!("field label not supported: {field}"));
    }
    if !ENV_FIELDS.contains(&field) {
        return vec![unsupported(&format!("{path}.fieldPath"), field, ENV_FIELDS)];
    }
    Vec::new()
}

/// ValidateEnvFrom: a prefix that makes valid names, and one source, named.
fn environment_from(list: &Value, path: &str) -> Vec<String> {
    let mut causes = Vec::new();
    for (index, source) in items(list).iter().enumerate() {
        let prefix = text(&source["prefix"]);
        if !prefix.is_empty() && !is_env_name(prefix) {
            causes.push(format!("{path}[{index}].prefix: Invalid value: \"{prefix}\": {ENV_NAME}"));
        }
        let mut sources = 0;
        for reference in ["configMapRef", "secretRef"] {
            if !source[reference].is_object() {
                continue;
            }
            sources += 1;
            let name = text(&source[reference]["name"]);
            if name.is_empty() {
                causes.push(format!("{path}[{index}].{reference}.name: Required value"));
            } else {
                for problem in super::subdomain_problems(name, "characters") {
                    causes.push(format!("{path}[{index}].{reference}.name: Invalid value: \"{name}\": {problem}"));
                }
            }
        }
        match sources {
            0 => {
                causes.push(format!("{path}: Invalid value: \"\": must specify one of: `configMapRef` or `secretRef`"))
            }
            1 => {}
            _ => causes
                .push(format!("{path}: Invalid value: \"\": may not have more than one field specified at a time")),
        }
    }
    causes
}

/// ValidateVolumeMounts: a mount names a volume of the pod and a path of its own.
fn volume_mounts(list: &Value, volumes: &BTreeSet<String>, path: &str) -> Vec<String> {
    let mut causes = Vec::new();
    let mut paths = BTreeSet::new();
    for (index, mount) in items(list).iter().enumerate() {
        let path = format!("{path}[{index}]");
        let name = text(&mount["name"]);
        if name.is_empty() {
            causes.push(format!("{path}.name: Required value"));
        }
        if !volumes.contains(name) {
            causes.push(format!("{path}.name: Not found: \"{name}\""));
        }
        let mount_path = text(&mount["mountPath"]);
        if mount_path.is_empty() {
            causes.push(format!("{path}.mountPath: Required value"));
        }
        if !paths.insert(mount_path) {
            causes.push(format!("{path}.mountPath: Invalid value: \"{mount_path}\": must be unique"));
        }
    }
    causes
}

#[derive(Clone, Copy, PartialEq)]
enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

/// validateProbe and its kind's rules: one handler, counts not negative (0 is defaulted), a
/// liveness or startup probe succeeds once, a readiness probe has no grace period of its own.
fn probe(probe: &Value, path: &str, kind: ProbeKind) -> Vec<String> {
    if probe.is_null() {
        return Vec::new();
    }
    let mut causes = handler(probe, path);
    for field in ["initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"] {
        causes.extend(nonnegative(&probe[field], &format!("{path}.{field}")));
    }
    let grace = &probe["terminationGracePeriodSeconds"];
    if let Some(grace) = grace.as_i64().filter(|g| *g <= 0) {
        causes.push(format!("{path}.terminationGracePeriodSeconds: Invalid value: {grace}: must be greater than 0"));
    }
    let successes = probe["successThreshold"].as_i64().filter(|n| *n != 0).unwrap_or(1);
    match kind {
        ProbeKind::Liveness | ProbeKind::Startup if successes != 1 => {
            causes.push(format!("{path}.successThreshold: Invalid value: {successes}: must be 1"));
        }
        ProbeKind::Readiness if !grace.is_null() => causes.push(format!(
            "{path}.terminationGracePeriodSeconds: Invalid value: {}: must not be set for readinessProbes",
            compact(grace)
        )),
        _ => {}
    }
    causes
}

/// validateHandler: exactly one of exec, httpGet, tcpSocket, grpc, each well formed.
fn handler(probe: &Value, path: &str) -> Vec<String> {
    let mut causes = Vec::new();
    let mut handlers = 0;
    for kind in ["exec", "httpGet", "tcpSocket", "grpc"] {
        let action = &probe[kind];
        if action.is_null() {
            continue;
        }
        let path = format!("{path}.{kind}");
        if handlers > 0 {
            causes.push(format!("{path}: Forbidden: may not specify more than 1 handler type"));
            continue;
        }
        handlers += 1;
        match kind {
            "exec" if items(&action["command"]).is_empty() => causes.push(format!("{path}.command: Required value")),
            "httpGet" => {
                causes.extend(port_number_or_name(&action["port"], &format!("{path}.port")));
                causes.extend(one_of(&action["scheme"], &format!("{path}.scheme"), &["HTTP", "HTTPS"]));
            }
            "tcpSocket" | "grpc" => causes.extend(port_number_or_name(&action["port"], &format!("{path}.port"))),
            _ => {}
        }
    }
    if handlers == 0 {
        causes.push(format!("{path}: Required value: must specify a handler type"));
    }
    causes
}

/// ValidateTolerations: a label key; an empty key only with `Exists`; a toleration time only for
/// `NoExecute`; `Exists` without a value, `Equal` with a label value; a known effect.
fn tolerations(list: &Value, path: &str) -> Vec<String> {
    let mut causes = Vec::new();
    for (index, toleration) in items(list).iter().enumerate() {
        let path = format!("{path}[{index}]");
        let (key, operator) = (text(&toleration["key"]), text(&toleration["operator"]));
        let (value, effect) = (text(&toleration["value"]), text(&toleration["effect"]));
        if !key.is_empty() {
            for problem in label_key_problems(key) {
                causes.push(format!("{path}.key: Invalid value: \"{key}\": {problem}"));
            }
        }
        if key.is_empty() && operator != "Exists" {
            causes.push(format!(
                "{path}.operator: Invalid value: \"{operator}\": operator must be Exists when `key` is empty, which means \"match all values and all keys\""
            ));
        }
        if !toleration["tolerationSeconds"].is_null() && effect != "NoExecute" {
            causes.push(format!(
                "{path}.effect: Invalid value: \"{effect}\": effect must be 'NoExecute' when `tolerationSeconds` is set"
            ));
        }
        match operator {
            // Upstream joins this value's problems into one message.
            "Equal" | "" if !super::label_value_problems(value).is_empty() => {
                let problems = super::label_value_problems(value).join(";");
                causes.push(format!("{path}.operator: Invalid value: \"{value}\": {problems}"));
            }
            "Equal" | "" => {}
            "Exists" if !value.is_empty() => causes.push(format!(
                "{path}.operator: Invalid value: \"{value}\": value must be empty when `operator` is 'Exists'"
            )),
            "Exists" => {}
            // Numeric comparisons are behind a feature gate the testbed leaves off.
            "Lt" | "Gt" => {
                causes.push(super::unsupported(&format!("{path}.operator"), operator, &["Equal", "Exists", "Lt", "Gt"]))
            }
            _ => causes.push(super::unsupported(&format!("{path}.operator"), operator, &["Equal", "Exists"])),
        }
        if !effect.is_empty() {
            causes.extend(one_of(
                &toleration["effect"],
                &format!("{path}.effect"),
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
    }
    causes
}

/// validatePodHostNetworkDeps: on the host's network a container's host port is its container
/// port. A Pod's must equal it (defaulting has filled in a missing one); a template may leave it
/// 0, since its pods get it defaulted, but may not give another.
fn host_network_ports(spec: &Value, path: &str, is_pod: bool) -> Vec<String> {
    if spec["hostNetwork"] != true {
        return Vec::new();
    }
    let mut causes = Vec::new();
    for (index, container) in items(&spec["containers"]).iter().enumerate() {
        for (port_index, port) in items(&container["ports"]).iter().enumerate() {
            let host_port = port["hostPort"].as_i64().unwrap_or(0);
            if (is_pod || host_port != 0) && Some(host_port) != port["containerPort"].as_i64() {
                causes.push(format!(
                    "{path}.containers[{index}].ports[{port_index}].hostPort: Invalid value: {host_port}: must match `containerPort` when `hostNetwork` is true"
                ));
            }
        }
    }
    causes
}

/// ValidateContainerResourceRequirements: no negative quantity, a whole number of an extended
/// resource, and a request no larger than its limit; an extended resource
/// (`example.com/dongle`) cannot be overcommitted, so its request must equal a limit, which must
/// be set.
fn requirements(path: &str, resources: &Value) -> Vec<String> {
    // Unreadable quantities never get this far (the body is refused undecoded).
    let quantities = |list: &Value| -> BTreeMap<String, Quantity> {
        let Some(list) = list.as_object() else { return BTreeMap::new() };
        list.iter().filter_map(|(name, q)| Some((name.clone(), Quantity::from_json(q)?))).collect()
    };
    let (limits, requests) = (quantities(&resources["limits"]), quantities(&resources["requests"]));
    let mut causes = Vec::new();
    for (name, limit) in &limits {
        causes.extend(resource_name(&format!("{path}.limits[{name}]"), name));
        causes.extend(quantity_value(&format!("{path}.limits[{name}]"), name, limit));
    }
    for (name, request) in &requests {
        causes.extend(resource_name(&format!("{path}.requests[{name}]"), name));
        causes.extend(quantity_value(&format!("{path}.requests[{name}]"), name, request));
        let overcommit = is_native_resource(name) && !name.starts_with("hugepages-");
        match limits.get(name) {
            Some(limit) if !overcommit && request != limit => causes.push(format!(
                "{path}.requests: Invalid value: \"{request}\": must be equal to {name} limit of {limit}"
            )),
            Some(limit) if request > limit => causes.push(format!(
                "{path}.requests: Invalid value: \"{request}\": must be less than or equal to {name} limit of {limit}"
            )),
            None if !overcommit => causes
                .push(format!("{path}.limits: Required value: Limit must be set for non overcommitable resources")),
            _ => {}
        }
    }
    causes
}

/// ValidateResourceQuantityValue: never negative, and whole for the resources counted in units
/// (extended resources).
fn quantity_value(path: &str, name: &str, quantity: &Quantity) -> Vec<String> {
    let mut causes = Vec::new();
    if quantity.is_negative() {
        causes.push(format!("{path}: Invalid value: \"{quantity}\": must be greater than or equal to 0"));
    }
    if !is_native_resource(name) && quantity.milli() % 1000 != 0 {
        causes.push(format!("{path}: Invalid value: \"{quantity}\": must be an integer"));
    }
    causes
}

/// ValidateContainerResourceName: a qualified name; unprefixed, one of the standard resources a
/// container may ask for; prefixed by another domain, an extended resource's name.
fn resource_name(path: &str, name: &str) -> Vec<String> {
    let invalid = |problem: &str| format!("{path}: Invalid value: \"{name}\": {problem}");
    let mut causes: Vec<String> = label_key_problems(name).iter().map(|problem| invalid(problem)).collect();
    let unprefixed = !name.contains('/');
    if causes.is_empty() && unprefixed && !is_standard_resource(name) {
        causes.push(invalid("must be a standard resource type or fully qualified"));
    }
    let for_containers = matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-");
    if unprefixed && !for_containers {
        causes.push(invalid("must be a standard resource for containers"));
    } else if !unprefixed && !is_native_resource(name) && !is_extended_resource(name) {
        causes.push(invalid("doesn't follow extended resource name standard"));
    }
    causes
}

/// IsStandardResourceName: what quotas and requests know by an unprefixed name.
fn is_standard_resource(name: &str) -> bool {
    const STANDARD: &[&str] = &[
        "cpu",
        "memory",
        "ephemeral-storage",
        "requests.cpu",
        "requests.memory",
        "requests.ephemeral-storage",
        "limits.cpu",
        "limits.memory",
        "limits.ephemeral-storage",
        "pods",
        "resourcequotas",
        "services",
        "replicationcontrollers",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "storage",
        "requests.storage",
        "services.nodeports",
        "services.loadbalancers",
    ];
    // Huge pages by their size too: the API server takes `hugepages-2Mi` in a container.
    STANDARD.contains(&name)
        || ["hugepages-", "requests.hugepages-", "limits.hugepages-"].iter().any(|p| name.starts_with(p))
}

/// IsExtendedResourceName: outside Kubernetes' own domain, and a qualified name once quota's
/// `requests.` is put before it.
fn is_extended_resource(name: &str) -> bool {
    !is_native_resource(name)
        && !name.starts_with("requests.")
        && label_key_problems(&format!("requests.{name}")).is_empty()
}

/// A resource Kubernetes itself defines: unprefixed, or in the `kubernetes.io/` namespace.
fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{ENV_FIELDS, UPDATABLE, change, environment, resource_name, spec};

    #[test]
    fn a_gated_pod_may_gain_node_selector_entries_and_node_affinity_requirements_only() {
        let pod = |gated: bool, selector: serde_json::Value, affinity: serde_json::Value| {
            let mut spec = json!({"containers": [{"name": "web", "image": "nginx"}], "nodeSelector": selector});
            if gated {
                spec["schedulingGates"] = json!([{"name": "example.com/wait"}]);
            }
            if !affinity.is_null() {
                spec["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": affinity}}});
            }
            json!({"spec": spec})
        };
        let term = |expressions: serde_json::Value| json!([{"matchExpressions": expressions}]);
        let os = json!({"key": "os", "operator": "In", "values": ["linux"]});
        let arch = json!({"key": "arch", "operator": "Exists"});
        let before = pod(true, json!({"a": "1"}), term(json!([os])));
        let added = pod(true, json!({"a": "1", "b": "2"}), term(json!([os, arch])));
        assert!(change(&before, &added).is_empty(), "additions to both");
        assert!(change(&pod(true, json!(null), json!(null)), &added).is_empty(), "both set where there was none");
        assert_eq!(
            change(&before, &pod(true, json!({"a": "2"}), term(json!([arch])))),
            [
                "spec.nodeSelector: Invalid value: {\"a\":\"2\"}: only additions to spec.nodeSelector are allowed (no mutations or deletions)",
                "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]: Invalid value: {\"MatchExpressions\":[{\"Key\":\"arch\",\"Operator\":\"Exists\",\"Values\":null}],\"MatchFields\":null}: only additions are allowed (no mutations or deletions)",
            ]
        );
        let removed = change(&before, &pod(true, json!(null), json!(null)));
        assert_eq!(removed.len(), 2, "a removed selector and affinity: {removed:?}");
        assert!(removed[0].starts_with("spec.nodeSelector: Invalid value: null:"), "{removed:?}");
        assert!(removed[1].contains("nodeSelectorTerms: Invalid value: null: no additions/deletions"), "{removed:?}");
        let ungated =
            change(&pod(false, json!({"a": "1"}), json!(null)), &pod(false, json!({"a": "1", "b": "2"}), json!(null)));
        assert_eq!(ungated, [format!("spec: Forbidden: pod updates may not change fields other than {UPDATABLE}")]);
    }

    #[test]
    fn scheduling_gates_may_be_removed_but_not_added() {
        let pod = |gates: &[&str]| {
            let gates: Vec<_> = gates.iter().map(|name| json!({"name": name})).collect();
            json!({"spec": {"schedulingGates": gates, "containers": [{"name": "web", "image": "nginx"}]}})
        };
        let gated = pod(&["example.com/a", "example.com/b"]);
        assert!(change(&gated, &pod(&["example.com/b"])).is_empty(), "one removed");
        assert!(change(&gated, &pod(&[])).is_empty(), "all removed");
        assert_eq!(
            change(&gated, &pod(&["example.com/c", "example.com/a", "example.com/d"])),
            [
                "spec.schedulingGates[0].name: Forbidden: only deletion is allowed, but found new scheduling gate 'example.com/c'",
                "spec.schedulingGates[2].name: Forbidden: only deletion is allowed, but found new scheduling gate 'example.com/d'",
            ],
            "each added gate at its index, and nothing else: the gates are munged away"
        );
        assert_eq!(change(&pod(&[]), &pod(&["example.com/a"])).len(), 1, "none may come back");
        assert_eq!(
            change(&gated, &pod(&["example.com/c", "example.com/c"])),
            [
                "spec.schedulingGates[1].name: Forbidden: only deletion is allowed, but found new scheduling gate 'example.com/c'"
            ],
            "a gate added twice is refused once, at its last index"
        );
        assert_eq!(
            spec(&pod(&["example.com/a", "Bad Gate", "example.com/a"])["spec"], "spec", true),
            [
                "spec.schedulingGates[1]: Invalid value: \"Bad Gate\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
                "spec.schedulingGates[2]: Duplicate value: \"example.com/a\"",
            ],
            "on create, each gate a qualified name, none twice"
        );
    }

    #[test]
    fn a_containers_problems_are_listed_in_the_api_servers_order_and_words() {
        let template = json!({
            "dnsPolicy": "Nope",
            "volumes": [{"name": "cache", "emptyDir": {}}, {"name": "bare"}],
            "containers": [
                {"name": "Web", "ports": [{"containerPort": 0, "protocol": "tcp"}],
                 "volumeMounts": [{"name": "bare", "mountPath": "/b"}], "imagePullPolicy": "always"},
                {"name": "Web", "image": "nginx", "readinessProbe": {"periodSeconds": -1}},
            ],
        });
        // The testbed's words (v1.37), in its order: volumes, each container (its own checks, then
        // its name's uniqueness, then its probes), then the pod's policies.
        assert_eq!(
            spec(&template, "spec.template.spec", false),
            [
                "spec.template.spec.volumes[1]: Required value: must specify a volume type",
                "spec.template.spec.containers[0].name: Invalid value: \"Web\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
                "spec.template.spec.containers[0].image: Required value",
                "spec.template.spec.containers[0].ports[0].containerPort: Required value",
                "spec.template.spec.containers[0].ports[0].protocol: Unsupported value: \"tcp\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                "spec.template.spec.containers[0].volumeMounts[0].name: Not found: \"bare\"",
                "spec.template.spec.containers[0].imagePullPolicy: Unsupported value: \"always\": supported values: \"Always\", \"IfNotPresent\", \"Never\"",
                "spec.template.spec.containers[1].name: Invalid value: \"Web\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
                "spec.template.spec.containers[1].name: Duplicate value: \"Web\"",
                "spec.template.spec.containers[1].readinessProbe: Required value: must specify a handler type",
                "spec.template.spec.containers[1].readinessProbe.periodSeconds: Invalid value: -1: must be greater than or equal to 0",
                "spec.template.spec.dnsPolicy: Unsupported value: \"Nope\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"",
            ]
        );
    }

    #[test]
    fn fields_the_api_defaults_pass_empty_and_a_pods_own_rules_apply_to_pods_only() {
        let defaults = json!({
            "restartPolicy": "", "dnsPolicy": "",
            "containers": [{"name": "web", "image": " nginx", "imagePullPolicy": "",
                "ports": [{"containerPort": 80, "protocol": ""}],
                "livenessProbe": {"tcpSocket": {"port": "http"}, "successThreshold": 0, "failureThreshold": 0}}],
        });
        assert_eq!(spec(&defaults, "spec.template.spec", false), Vec::<String>::new());
        assert_eq!(
            spec(&defaults, "spec", true),
            ["spec.containers[0].image: Invalid value: \" nginx\": must not have leading or trailing whitespace"]
        );
    }

    #[test]
    fn init_containers_and_tolerations_are_judged_in_the_api_servers_words() {
        let pod = json!({
            "containers": [{"name": "web", "image": "nginx"}],
            "initContainers": [
                {"name": "setup", "image": "busybox"},
                {"name": "web", "image": "busybox", "readinessProbe": {"exec": {"command": ["true"]}},
                 "ports": [{"containerPort": 80, "hostPort": 9000}, {"containerPort": 81, "hostPort": 9000}]},
            ],
            "tolerations": [{"operator": "Equal", "value": "x"}, {"key": "k", "operator": "Exists", "value": "v"},
                {"key": "k", "effect": "NoSchedul", "tolerationSeconds": 5}],
        });
        assert_eq!(
            spec(&pod, "spec", true),
            [
                "spec.initContainers[1].name: Duplicate value: \"web\"",
                // Upstream judges each init container's host ports alone, so its index reads 0.
                "spec.initContainers[0].ports[1].hostPort: Duplicate value: \"TCP//9000\"",
                "spec.initContainers[1].readinessProbe: Forbidden: may not be set for init containers without restartPolicy=Always",
                "spec.tolerations[0].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
                "spec.tolerations[1].operator: Invalid value: \"v\": value must be empty when `operator` is 'Exists'",
                "spec.tolerations[2].effect: Invalid value: \"NoSchedul\": effect must be 'NoExecute' when `tolerationSeconds` is set",
                "spec.tolerations[2].effect: Unsupported value: \"NoSchedul\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
            ]
        );
    }

    #[test]
    fn a_running_pod_changes_only_its_images_deadline_and_added_tolerations() {
        let pod = |spec: serde_json::Value| json!({"metadata": {"name": "p"}, "spec": spec});
        let current = pod(json!({"containers": [{"name": "c", "image": "a"}], "activeDeadlineSeconds": 60,
            "tolerations": [{"key": "x", "operator": "Exists"}]}));
        let images = pod(json!({"containers": [{"name": "c", "image": "b"}], "activeDeadlineSeconds": 30,
            "tolerations": [{"key": "x", "operator": "Exists"}, {"key": "y", "operator": "Exists"}]}));
        assert_eq!(change(&current, &images), Vec::<String>::new());
        let added = pod(json!({"containers": [{"name": "c", "image": "a"}, {"name": "d", "image": "a"}]}));
        assert_eq!(
            change(&current, &added),
            ["spec.containers: Forbidden: pod updates may not add or remove containers"]
        );
        let longer = pod(json!({"containers": [{"name": "c", "image": "a"}], "activeDeadlineSeconds": 90,
            "tolerations": [{"key": "x", "operator": "Exists"}]}));
        assert_eq!(
            change(&current, &longer),
            ["spec.activeDeadlineSeconds: Invalid value: 90: must be less than or equal to previous value"]
        );
        let moved = pod(json!({"containers": [{"name": "c", "image": "a"}], "activeDeadlineSeconds": 60,
            "tolerations": [{"key": "x", "operator": "Exists"}], "nodeName": "elsewhere"}));
        assert_eq!(
            change(&current, &moved),
            [format!("spec: Forbidden: pod updates may not change fields other than {UPDATABLE}")]
        );
        let dropped = pod(json!({"containers": [{"name": "c", "image": "a"}], "activeDeadlineSeconds": 60}));
        assert_eq!(
            change(&current, &dropped),
            ["spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"]
        );
    }

    #[test]
    fn environment_sources_and_resource_names_are_judged_in_the_api_servers_words() {
        let env = json!([{"name": "A", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "spec.restartPolicy"}}},
            {"name": "C", "valueFrom": {"secretKeyRef": {"name": "s"}}}]);
        assert_eq!(
            environment(&env, "env"),
            [
                "env[0].valueFrom: Invalid value: \"\": may not be specified when `value` is not empty".to_string(),
                format!(
                    "env[1].valueFrom.fieldRef.fieldPath: Unsupported value: \"spec.restartPolicy\": supported values: {}",
                    ENV_FIELDS.iter().map(|f| format!("\"{f}\"")).collect::<Vec<_>>().join(", ")
                ),
                "env[2].valueFrom.secretKeyRef.key: Required value".to_string(),
            ]
        );
        assert_eq!(
            resource_name("r", "gpu"),
            [
                "r: Invalid value: \"gpu\": must be a standard resource type or fully qualified",
                "r: Invalid value: \"gpu\": must be a standard resource for containers"
            ]
        );
        assert!(resource_name("r", "example.com/gpu").is_empty());
        assert!(resource_name("r", "hugepages-2Mi").is_empty());
    }
}
