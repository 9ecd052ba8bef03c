//! The Service registry's cluster IPs: every Service but an ExternalName one holds an address
//! from the service range (kind's 10.96.0.0/16, the testbed's too), one the user names or one
//! the API picks, never one another Service holds; or it is headless (`None`). Once set, it stays:
//! a re-applied Service that leaves it out keeps it, one that changes it is refused. Upstream's
//! beginCreate/beginUpdate (patchAllocatedValues, normalizeClusterIPs, the allocator) and the
//! update validation, in the API server's words.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use serde_json::{Value, json};

use super::error::{ApiError, invalid};
use super::resources::{self, Resource};
use super::store::Store;

/// The API server's `--service-cluster-ip-range` (10.96.0.0/16), as kind and the testbed set it.
const FIRST: u32 = u32::from_be_bytes([10, 96, 0, 0]);
const SIZE: u32 = 1 << 16;
/// Every cluster's `default/kubernetes` Service holds the range's first address.
const KUBERNETES_SERVICE: u32 = FIRST + 1;

fn needs_cluster_ip(service: &Value) -> bool {
    service["spec"]["type"] != "ExternalName"
}

fn cluster_ip(service: &Value) -> &str {
    service["spec"]["clusterIP"].as_str().unwrap_or_default()
}

fn cluster_ips(service: &Value) -> Vec<String> {
    let ips = service["spec"]["clusterIPs"].as_array().into_iter().flatten();
    ips.map(|ip| ip.as_str().unwrap_or_default().to_string()).collect()
}

fn set_cluster_ips(service: &mut Value, ips: &[String]) {
    if ips.is_empty() {
        if let Some(spec) = service.get_mut("spec").and_then(Value::as_object_mut) {
            spec.remove("clusterIPs");
        }
    } else {
        service["spec"]["clusterIPs"] = json!(ips);
    }
}

/// An address of the range a Service may hold (not the network's nor the broadcast address).
fn in_range(ip: Ipv4Addr) -> bool {
    let ip = u32::from(ip);
    ip > FIRST && ip < FIRST + SIZE - 1
}

/// Gives `service` (about to be stored in `namespace`, replacing `current` if there is one) its
/// cluster IP: the one it held if it leaves it out, the one it names if free and in range, or a
/// free one. Runs before validation, as the registry's allocation does.
pub fn allocate(
    store: &Store,
    resource: Resource,
    namespace: &str,
    current: Option<&Value>,
    service: &mut Value,
) -> Result<(), ApiError> {
    if resource != resources::SERVICE || !service["spec"].is_object() {
        return Ok(());
    }
    if let Some(current) = current {
        patch_allocated(current, service);
    }
    normalize(current, service);
    let name = || service["metadata"]["name"].as_str().unwrap_or_default().to_string();
    let related = ip_field_causes(current, service);
    if !related.is_empty() {
        return Err(invalid(resources::SERVICE, &name(), &related));
    }
    let families = family_causes(service);
    if !families.is_empty() {
        return Err(invalid(resources::SERVICE, service["metadata"]["name"].as_str().unwrap_or_default(), &families));
    }
    if !needs_cluster_ip(service) || current.is_some_and(needs_cluster_ip) {
        // Kept (or changed, which validation refuses), or not wanted.
        return Ok(());
    }
    let name = service["metadata"]["name"].as_str().unwrap_or_default().to_string();
    let wanted = cluster_ips(service);
    match wanted.first().map(String::as_str) {
        Some("None") => Ok(()),
        Some(ip) => {
            // An address that is not one is validation's to refuse.
            let Ok(address) = ip.parse::<Ipv4Addr>() else { return Ok(()) };
            let problem = if !in_range(address) {
                "the provided network does not match the current range".to_string()
            } else if held(store, namespace, &name).contains(&u32::from(address)) {
                "provided IP is already allocated".to_string()
            } else {
                return Ok(());
            };
            let cause =
                format!("spec.clusterIPs: Invalid value: {}: failed to allocate IP {ip}: {problem}", json!(wanted));
            Err(invalid(resources::SERVICE, &name, &[cause]))
        }
        None => {
            let taken = held(store, namespace, &name);
            // A real API server picks at random; here the highest free address, far from the
            // low end where scenarios name theirs.
            let Some(picked) = (FIRST + 1..FIRST + SIZE - 1).rev().find(|ip| !taken.contains(ip)) else {
                return Err(ApiError::internal("failed to allocate a serviceIP: range is full"));
            };
            let ip = Ipv4Addr::from(picked).to_string();
            service["spec"]["clusterIP"] = json!(ip);
            set_cluster_ips(service, &[ip]);
            Ok(())
        }
    }
}

/// The allocator's first look at the IP fields, before it allocates or asks which families the
/// cluster has (upstream's ValidateServiceClusterIPsRelatedFields, then the policy's fit to the
/// families and IPs given): clusterIP and clusterIPs in step, known and distinct families, valid
/// addresses, at most one per family, and a single-stack policy for one family only.
fn ip_field_causes(current: Option<&Value>, service: &Value) -> Vec<String> {
    let spec = &service["spec"];
    if spec["type"] == "ExternalName" {
        return Vec::new();
    }
    let (ip, ips) = (cluster_ip(service), cluster_ips(service));
    let listed = json!(ips).to_string();
    let mut causes = Vec::new();
    if !ip.is_empty() {
        if ips.is_empty() {
            causes.push("spec.clusterIPs: Required value".to_string());
        } else if ips[0] != ip {
            causes.push(format!("spec.clusterIPs: Invalid value: {listed}: first value must match `clusterIP`"));
        }
    } else if !ips.is_empty() {
        causes
            .push(format!("spec.clusterIPs: Invalid value: {listed}: must be empty when `clusterIP` is not specified"));
    }
    let families: Vec<&str> =
        spec["ipFamilies"].as_array().into_iter().flatten().map(|f| f.as_str().unwrap_or_default()).collect();
    for (index, family) in families.iter().enumerate() {
        if *family != "IPv4" && *family != "IPv6" {
            causes.push(super::validate::unsupported(&format!("spec.ipFamilies[{index}]"), family, &["IPv4", "IPv6"]));
        }
        if families[..index].contains(family) {
            causes.push(format!("spec.ipFamilies[{index}]: Duplicate value: \"{family}\""));
        }
    }
    const POLICIES: [&str; 3] = ["PreferDualStack", "RequireDualStack", "SingleStack"];
    let policy = spec["ipFamilyPolicy"].as_str();
    if let Some(policy) = policy.filter(|policy| !POLICIES.contains(policy)) {
        causes.push(super::validate::unsupported("spec.ipFamilyPolicy", policy, &POLICIES));
    }
    let mut invalid_ips = false;
    for (index, address) in ips.iter().enumerate() {
        if index == 0 && address == "None" {
            if ips.len() > 1 {
                invalid_ips = true;
                causes
                    .push(format!("spec.clusterIPs: Invalid value: {listed}: 'None' must be the first and only value"));
            }
            continue;
        }
        if address.parse::<std::net::IpAddr>().is_err() {
            invalid_ips = true;
            causes.push(format!(
                "spec.clusterIPs[{index}]: Invalid value: \"{address}\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
            ));
        }
    }
    if ips.len() > 2 {
        causes.push(format!("spec.clusterIPs: Invalid value: {listed}: may only hold up to 2 values"));
    }
    if invalid_ips {
        return causes;
    }
    // As Go reads an address: an IPv4-mapped IPv6 one is IPv4.
    let is_v6 = |address: &String| {
        address.parse::<std::net::Ipv6Addr>().is_ok_and(|address| address.to_ipv4_mapped().is_none())
    };
    if ips.len() > 1 && !(ips.iter().any(is_v6) && ips.iter().any(|a| !is_v6(a))) {
        causes.push(format!(
            "spec.clusterIPs: Invalid value: {listed}: may specify no more than one IP for each IP family"
        ));
    }
    if !ips.is_empty() && ips[0] != "None" {
        for (index, (address, family)) in ips.iter().zip(&families).enumerate() {
            let wanted = match *family {
                "IPv4" if is_v6(address) => "IPv4",
                "IPv6" if !is_v6(address) => "IPv6",
                _ => continue,
            };
            causes.push(format!(
                "spec.clusterIPs[{index}]: Invalid value: \"{address}\": expected an {wanted} value as indicated by `ipFamilies[{index}]`"
            ));
        }
    }
    if !causes.is_empty() {
        return causes;
    }
    // A policy left out is the one the Service has (on an update), RequireDualStack for a
    // headless Service without a selector, else SingleStack.
    let policy = policy
        .or_else(|| current.and_then(|current| current["spec"]["ipFamilyPolicy"].as_str()))
        .or_else(|| headless_without_selector(service).then_some("RequireDualStack"));
    if policy.is_none_or(|policy| policy == "SingleStack") {
        let single = |what: &str| {
            format!(
                "spec.ipFamilyPolicy: Invalid value: \"SingleStack\": must be 'RequireDualStack' or 'PreferDualStack' when multiple {what} are specified"
            )
        };
        if ips.len() == 2 {
            causes.push(single("cluster IPs"));
        }
        if families.len() == 2 {
            causes.push(single("IP families"));
        }
    }
    causes
}

/// A headless Service without a selector: the allocator gives it no address, whatever families.
fn headless_without_selector(service: &Value) -> bool {
    cluster_ip(service) == "None" && service["spec"]["selector"].as_object().is_none_or(|selector| selector.is_empty())
}

/// The allocator's refusals of IP families this single-stack IPv4 cluster does not have
/// (initIPFamilyFields): dual-stack demanded, or a family other than IPv4 asked for.
fn family_causes(service: &Value) -> Vec<String> {
    let spec = &service["spec"];
    let families = spec["ipFamilies"].as_array().map_or(&[][..], Vec::as_slice);
    // A family that is none is the validation of the IP fields' to refuse, which the allocator
    // runs first (ValidateServiceClusterIPsRelatedFields). A headless Service without a selector
    // is given no address, so any family it names is as good as another.
    if spec["type"] == "ExternalName"
        || headless_without_selector(service)
        || families.iter().any(|family| family != "IPv4" && family != "IPv6")
    {
        return Vec::new();
    }
    let mut causes = Vec::new();
    if spec["ipFamilyPolicy"] == "RequireDualStack" {
        causes.push(
            "spec.ipFamilyPolicy: Invalid value: \"RequireDualStack\": this cluster is not configured for dual-stack services"
                .to_string(),
        );
    }
    for (index, family) in families.iter().enumerate() {
        if family != "IPv4" {
            causes.push(format!("spec.ipFamilies[{index}]: Invalid value: {family}: not configured on this cluster"));
        }
    }
    causes
}

/// The addresses held by every Service in the cluster but this one.
fn held(store: &Store, namespace: &str, name: &str) -> BTreeSet<u32> {
    let mut held: BTreeSet<u32> = store
        .list(resources::SERVICE, None)
        .filter(|other| !(other["metadata"]["namespace"] == namespace && other["metadata"]["name"] == name))
        .filter(|other| needs_cluster_ip(other))
        .flat_map(cluster_ips)
        .filter_map(|ip| ip.parse::<Ipv4Addr>().ok().map(u32::from))
        .collect();
    held.insert(KUBERNETES_SERVICE);
    held
}

/// Upstream's patchAllocatedValues: a Service that still needs a cluster IP and leaves it out
/// keeps the one it holds, so re-applying the same manifest succeeds.
fn patch_allocated(current: &Value, service: &mut Value) {
    if !(needs_cluster_ip(current) && needs_cluster_ip(service)) {
        return;
    }
    if cluster_ip(service).is_empty() && !current["spec"]["clusterIP"].is_null() {
        service["spec"]["clusterIP"] = current["spec"]["clusterIP"].clone();
    }
    let held = cluster_ips(current);
    if cluster_ips(service).is_empty() && !held.is_empty() {
        set_cluster_ips(service, &held);
    }
}

/// Upstream's normalizeClusterIPs: keeps `clusterIPs` in step with `clusterIP` where the client
/// set only the singular field.
fn normalize(current: Option<&Value>, service: &mut Value) {
    let (ip, mut ips) = (cluster_ip(service).to_string(), cluster_ips(service));
    let Some(current) = current else {
        if !ip.is_empty() && ips.is_empty() {
            set_cluster_ips(service, &[ip]);
        }
        return;
    };
    let (old_ip, old_ips) = (cluster_ip(current), cluster_ips(current));
    if !old_ips.is_empty() && ips.is_empty() && old_ip == ip {
        ips.clone_from(&old_ips);
    }
    if old_ip != ip {
        let same = ips == old_ips;
        if !old_ip.is_empty() && ip.is_empty() {
            if same {
                ips.clear();
            }
        } else if same {
            ips = vec![ip.clone()];
        }
    }
    set_cluster_ips(service, &ips);
}

/// Upstream's validateUpgradeDowngradeClusterIPs (single-stack): the cluster IP may not change
/// once set, unless the Service is or was an ExternalName one, or stays headless.
pub fn change_causes(current: &Value, service: &Value) -> Vec<String> {
    if !needs_cluster_ip(current) || !needs_cluster_ip(service) {
        return Vec::new();
    }
    let (old, new) = (cluster_ips(current), cluster_ips(service));
    let headless = |ips: &[String]| ips.len() == 1 && ips[0] == "None";
    if headless(&old) && headless(&new) {
        return Vec::new();
    }
    // Go shows a list that was cleared as `null`.
    let shown = if new.is_empty() { "null".to_string() } else { json!(new).to_string() };
    let changed = |i: usize| format!("spec.clusterIPs[{i}]: Invalid value: {shown}: may not change once set");
    if old.len() == new.len() {
        (0..old.len()).filter(|&i| old[i] != new[i]).map(changed).collect()
    } else if new.is_empty() {
        vec![format!("spec.clusterIPs[0]: Invalid value: {shown}: primary clusterIP can not be unset")]
    } else if !old.is_empty() && old[0] != new[0] {
        vec![changed(0)]
    } else {
        Vec::new()
    }
}

/// Upstream's dropTypeDependentFields for cluster IPs: a Service switched to ExternalName lets
/// go of the address it held, unless the change also names another (which validation refuses).
pub fn drop_unneeded(resource: Resource, current: &Value, service: &mut Value) {
    if resource != resources::SERVICE || !needs_cluster_ip(current) || needs_cluster_ip(service) {
        return;
    }
    if cluster_ips(service) == cluster_ips(current)
        && let Some(spec) = service.get_mut("spec").and_then(Value::as_object_mut)
    {
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::sim::clock::Clock;

    fn service(name: &str, spec: Value) -> Value {
        json!({"metadata": {"name": name, "namespace": "ns"}, "spec": spec})
    }

    fn store() -> Store {
        let mut store = Store::new(Clock::default());
        store.create(resources::NAMESPACE, "", json!({"metadata": {"name": "ns"}})).unwrap();
        store
    }

    fn given(store: &Store, current: Option<&Value>, mut service: Value) -> Result<Value, String> {
        allocate(store, resources::SERVICE, "ns", current, &mut service).map_err(|e| e.message)?;
        Ok(service)
    }

    #[test]
    fn a_service_gets_a_free_address_and_keeps_it_when_re_applied_without_it() {
        let mut store = store();
        let first = given(&store, None, service("a", json!({"ports": [{"port": 80}]}))).unwrap();
        assert_eq!(first["spec"]["clusterIP"], "10.96.255.254");
        assert_eq!(first["spec"]["clusterIPs"], json!(["10.96.255.254"]));
        store.create(resources::SERVICE, "ns", first.clone()).unwrap();
        let second = given(&store, None, service("b", json!({"ports": [{"port": 80}]}))).unwrap();
        assert_eq!(second["spec"]["clusterIP"], "10.96.255.253", "never one another service holds");
        let again = given(&store, Some(&first), service("a", json!({"ports": [{"port": 80}]}))).unwrap();
        assert_eq!(
            (&again["spec"]["clusterIP"], &again["spec"]["clusterIPs"]),
            (&first["spec"]["clusterIP"], &first["spec"]["clusterIPs"])
        );
        let headless = given(&store, None, service("h", json!({"clusterIP": "None"}))).unwrap();
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]), "the plural follows the singular");
        let external = given(&store, None, service("e", json!({"type": "ExternalName"}))).unwrap();
        assert!(external["spec"].get("clusterIP").is_none());
    }

    #[test]
    fn a_named_address_must_be_free_and_in_range_in_the_api_servers_words() {
        let store = store();
        let refusal = |ip: &str| given(&store, None, service("b", json!({"clusterIP": ip}))).unwrap_err();
        // The testbed's API server's words (v1.37).
        assert_eq!(
            refusal("10.96.0.1"),
            "Service \"b\" is invalid: spec.clusterIPs: Invalid value: [\"10.96.0.1\"]: failed to allocate IP \
             10.96.0.1: provided IP is already allocated"
        );
        for outside in ["10.0.0.5", "10.96.0.0", "10.96.255.255"] {
            assert_eq!(
                refusal(outside),
                format!(
                    "Service \"b\" is invalid: spec.clusterIPs: Invalid value: [\"{outside}\"]: failed to allocate IP \
                     {outside}: the provided network does not match the current range"
                )
            );
        }
        assert!(given(&store, None, service("b", json!({"clusterIP": "10.96.3.4"}))).is_ok());
        // Not an address at all: the allocator's first look at the IP fields refuses it.
        assert_eq!(
            refusal("10.96.0.300"),
            "Service \"b\" is invalid: spec.clusterIPs[0]: Invalid value: \"10.96.0.300\": must be a valid IP address, \
             (e.g. 10.9.8.7 or 2001:db8::ffff)"
        );
    }

    #[test]
    fn a_cluster_ip_may_not_change_once_set_unless_through_external_name() {
        let store = store();
        let held = service("a", json!({"clusterIP": "10.96.9.9", "clusterIPs": ["10.96.9.9"]}));
        let headless = given(&store, Some(&held), service("a", json!({"clusterIP": "None"}))).unwrap();
        assert_eq!(
            change_causes(&held, &headless),
            ["spec.clusterIPs[0]: Invalid value: [\"None\"]: may not change once set"]
        );
        let was_headless = service("a", json!({"clusterIP": "None", "clusterIPs": ["None"]}));
        assert!(change_causes(&was_headless, &was_headless).is_empty());
        let mut external =
            service("a", json!({"type": "ExternalName", "clusterIP": "10.96.9.9", "clusterIPs": ["10.96.9.9"]}));
        drop_unneeded(resources::SERVICE, &held, &mut external);
        assert!(external["spec"].get("clusterIP").is_none() && external["spec"].get("clusterIPs").is_none());
        assert!(change_causes(&held, &external).is_empty());
    }
}
