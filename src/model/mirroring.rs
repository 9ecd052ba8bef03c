//! How the EndpointSlice mirroring controller reads an Endpoints object written by hand for a
//! Service without a selector: which objects it mirrors, and the slices it makes of one. Shared
//! by the built-in cluster's controller, which writes the slices, and the executor's rest check,
//! which waits for them on every cluster.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Value, json};

/// The `endpointslice.kubernetes.io/managed-by` value of the slices the controller keeps.
pub const MIRRORING_CONTROLLER: &str = "endpointslicemirroring-controller.k8s.io";
/// The label that keeps an Endpoints object from being mirrored (when "true").
const SKIP_MIRROR: &str = "endpointslice.kubernetes.io/skip-mirror";
/// The annotation of a leader-election record held in an Endpoints object: never mirrored.
const LEADER: &str = "control-plane.alpha.kubernetes.io/leader";
/// kube-controller-manager's `--mirroring-max-endpoints-per-subset` default.
const MAX_ENDPOINTS_PER_SUBSET: usize = 1000;

/// Upstream's shouldMirror, given the object's metadata: not marked skip-mirror, and not a
/// leader-election record.
pub fn should_mirror(metadata: &Value) -> bool {
    metadata["labels"][SKIP_MIRROR] != "true" && metadata["annotations"].get(LEADER).is_none()
}

/// What one mirrored slice lists.
#[derive(Debug, PartialEq)]
pub struct MirroredSlice {
    /// The ports as a slice lists them (`null` for none).
    pub ports: Value,
    pub address_type: &'static str,
    pub endpoints: Vec<Value>,
}

/// The slices the controller makes of an Endpoints object (its JSON): the subsets repacked as
/// upstream's RepackSubsets does (each address, told apart by IP and the uid it names, with the
/// ports it serves, not ready on a port if any subset lists it not ready there; the ports whose
/// addresses are the same then share a subset), and each subset's addresses, ready ones first
/// and at most 1,000, split by address type. An address is written in its canonical form, as
/// upstream parses and writes it again; one that is no IP is left out.
pub fn mirrored_slices(endpoints: &Value) -> Vec<MirroredSlice> {
    let mut slices: Vec<MirroredSlice> = Vec::new();
    for (ports, addresses) in repack(endpoints) {
        let ready = addresses.iter().filter(|(_, ready)| *ready);
        let not_ready = addresses.iter().filter(|(_, ready)| !*ready);
        let mut added = 0;
        for (address, ready) in ready.chain(not_ready) {
            if added == MAX_ENDPOINTS_PER_SUBSET {
                break;
            }
            let Some(ip) = super::ip::parse_lenient(address["ip"].as_str().unwrap_or_default()) else { continue };
            added += 1;
            let address_type = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
            let endpoint = endpoint(address, ip, *ready);
            match slices.iter_mut().find(|s| s.ports == ports && s.address_type == address_type) {
                Some(slice) => slice.endpoints.push(endpoint),
                None => slices.push(MirroredSlice { ports: ports.clone(), address_type, endpoints: vec![endpoint] }),
            }
        }
    }
    slices
}

/// A port list compared as a set: the same ports in another order are the same port set.
pub fn port_set(ports: &Value) -> Value {
    let mut ports: Vec<Value> = ports.as_array().cloned().unwrap_or_default();
    ports.sort_by_key(|p| p.to_string());
    Value::Array(ports)
}

/// Upstream's addressToEndpoint.
fn endpoint(address: &Value, ip: IpAddr, ready: bool) -> Value {
    let mut endpoint = json!({"addresses": [ip.to_string()], "conditions": {"ready": ready}});
    if !address["targetRef"].is_null() {
        endpoint["targetRef"] = address["targetRef"].clone();
    }
    if let Some(node) = address["nodeName"].as_str() {
        endpoint["nodeName"] = node.into();
    }
    if let Some(hostname) = address["hostname"].as_str().filter(|h| !h.is_empty()) {
        endpoint["hostname"] = hostname.into();
    }
    endpoint
}

/// An address of a subset, and whether it is ready.
type Addresses = Vec<(Value, bool)>;

/// Upstream's RepackSubsets. Subsets come out sorted by their ports, addresses by IP; an
/// address is kept as first written, whichever port it was seen with.
fn repack(endpoints: &Value) -> Vec<(Value, Addresses)> {
    type AddressKey = (String, String);
    let mut first_written: BTreeMap<AddressKey, Value> = BTreeMap::new();
    let mut by_port: Vec<(Value, BTreeMap<AddressKey, bool>)> = Vec::new();
    for subset in endpoints["subsets"].as_array().into_iter().flatten() {
        let ports: Vec<Value> = subset["ports"].as_array().cloned().unwrap_or_default();
        // A subset without ports keeps its addresses, under no port.
        let ports = if ports.is_empty() { vec![Value::Null] } else { ports };
        for port in ports {
            let index = by_port.iter().position(|(p, _)| *p == port).unwrap_or_else(|| {
                by_port.push((port, BTreeMap::new()));
                by_port.len() - 1
            });
            for (field, ready) in [("addresses", true), ("notReadyAddresses", false)] {
                for address in subset[field].as_array().into_iter().flatten() {
                    let key = (
                        address["ip"].as_str().unwrap_or_default().to_string(),
                        address["targetRef"]["uid"].as_str().unwrap_or_default().to_string(),
                    );
                    first_written.entry(key.clone()).or_insert_with(|| address.clone());
                    *by_port[index].1.entry(key).or_insert(ready) &= ready;
                }
            }
        }
    }
    let mut subsets: Vec<(Vec<Value>, BTreeMap<AddressKey, bool>)> = Vec::new();
    for (port, addresses) in by_port {
        let port = (!port.is_null()).then_some(port);
        match subsets.iter_mut().find(|(_, a)| *a == addresses) {
            Some((ports, _)) => ports.extend(port),
            None => subsets.push((port.into_iter().collect(), addresses)),
        }
    }
    let mut repacked: Vec<(Value, Addresses)> = subsets
        .into_iter()
        .map(|(ports, addresses)| {
            let addresses = addresses.into_iter().map(|(key, ready)| (first_written[&key].clone(), ready)).collect();
            (slice_ports(ports), addresses)
        })
        .collect();
    repacked.sort_by_key(|(ports, _)| port_set(ports).to_string());
    repacked
}

/// Endpoints ports as a slice lists them (the name written even when empty, TCP by default).
fn slice_ports(ports: Vec<Value>) -> Value {
    if ports.is_empty() {
        return Value::Null;
    }
    let ports = ports.into_iter().map(|port| {
        let mut written = json!({
            "name": port["name"].as_str().unwrap_or_default(),
            "port": port["port"],
            "protocol": port["protocol"].as_str().filter(|p| !p.is_empty()).unwrap_or("TCP"),
        });
        if let Some(app) = port.get("appProtocol").filter(|a| !a.is_null()) {
            written["appProtocol"] = app.clone();
        }
        written
    });
    Value::Array(ports.collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two subsets with the same addresses share a slice; an address not ready on a port in one
    /// subset is not ready there; IPv6 apart, written canonically; at most 1,000 of a subset.
    #[test]
    fn endpoints_are_repacked_into_slices_as_upstream_repacks_them() {
        let endpoints = json!({"subsets": [
            {"addresses": [{"ip": "10.0.0.2"}, {"ip": "10.0.0.1"}], "ports": [{"port": 80}]},
            {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"name": "b", "port": 81}]},
            {"addresses": [{"ip": "FD00::0001"}], "notReadyAddresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]},
        ]});
        let summary: Vec<String> = mirrored_slices(&endpoints)
            .iter()
            .map(|s| {
                let listed: Vec<String> =
                    s.endpoints.iter().map(|e| format!("{} {}", e["addresses"][0], e["conditions"]["ready"])).collect();
                format!("{} {}: {}", s.ports, s.address_type, listed.join(", "))
            })
            .collect();
        assert_eq!(
            summary,
            [
                r#"[{"name":"","port":80,"protocol":"TCP"}] IPv4: "10.0.0.2" true, "10.0.0.1" false"#,
                r#"[{"name":"","port":80,"protocol":"TCP"}] IPv6: "fd00::1" true"#,
                r#"[{"name":"b","port":81,"protocol":"TCP"}] IPv4: "10.0.0.1" true, "10.0.0.2" true"#,
            ]
        );
        let many: Vec<Value> = (0..1200).map(|i| json!({"ip": format!("10.1.{}.{}", i / 256, i % 256)})).collect();
        let capped = mirrored_slices(&json!({"subsets": [{"addresses": many, "ports": [{"port": 80}]}]}));
        assert_eq!(capped.iter().map(|s| s.endpoints.len()).sum::<usize>(), 1000);
        assert!(should_mirror(&json!({"labels": {"a": "b"}})));
        assert!(!should_mirror(&json!({"labels": {SKIP_MIRROR: "true"}})));
        assert!(!should_mirror(&json!({"annotations": {LEADER: "{}"}})));
    }
}
