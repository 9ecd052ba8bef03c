//! An EndpointSlice written by hand (the EndpointSlice controller's own are right by making), as
//! the API server judges it: its ports (names, protocols, app protocols), then each endpoint's
//! addresses for the slice's address type, node name and hostname; then the checks its
//! declarative validation adds after those, in its order: a known address type, and at least one
//! address per endpoint.

use std::net::IpAddr;

use serde_json::Value;

use super::{dns_label_causes, dns_label_problems, invalid_value, label_key_problems, subdomain_problems, unsupported};
use crate::model::ip::parse_lenient;

const ADDRESS_TYPES: [&str; 3] = ["FQDN", "IPv4", "IPv6"];
const PROTOCOLS: [&str; 3] = ["SCTP", "TCP", "UDP"];

pub(super) fn slice(object: &Value) -> Vec<String> {
    let mut causes = ports(&object["ports"]);
    let address_type = object["addressType"].as_str().unwrap_or_default();
    let endpoints = object["endpoints"].as_array().map(Vec::as_slice).unwrap_or_default();
    for (index, endpoint) in endpoints.iter().enumerate() {
        let path = format!("endpoints[{index}]");
        for (at, address) in endpoint["addresses"].as_array().into_iter().flatten().enumerate() {
            let address = address.as_str().unwrap_or_default();
            causes.extend(address_causes(&format!("{path}.addresses"), at, address, address_type));
        }
        if let Some(node) = endpoint["nodeName"].as_str() {
            let node_path = format!("{path}.nodeName");
            causes.extend(
                subdomain_problems(node, "characters").into_iter().map(|p| invalid_value(&node_path, node, &p)),
            );
        }
        if let Some(hostname) = endpoint["hostname"].as_str() {
            causes.extend(dns_label_causes(&format!("{path}.hostname"), hostname));
        }
    }
    match address_type {
        "" => causes.push("addressType: Required value".to_string()),
        known if ADDRESS_TYPES.contains(&known) => {}
        unknown => causes.push(unsupported("addressType", unknown, &ADDRESS_TYPES)),
    }
    for (index, endpoint) in endpoints.iter().enumerate() {
        if endpoint["addresses"].as_array().is_none_or(Vec::is_empty) {
            causes.push(format!("endpoints[{index}].addresses: Required value"));
        }
    }
    causes
}

/// What may not change: the address type (declarative validation, which names no value).
pub(super) fn change(current: &Value, object: &Value) -> Vec<String> {
    (current["addressType"] != object["addressType"])
        .then(|| "addressType: Invalid value: null: field is immutable".to_string())
        .into_iter()
        .collect()
}

fn ports(ports: &Value) -> Vec<String> {
    let mut causes = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for (index, port) in ports.as_array().into_iter().flatten().enumerate() {
        let path = format!("ports[{index}]");
        // Defaulted: a port without a name has the empty one, without a protocol TCP.
        let name = port["name"].as_str().unwrap_or_default();
        if !name.is_empty() {
            causes.extend(dns_label_causes(&format!("{path}.name"), name));
        }
        if !names.insert(name) {
            causes.push(format!("{path}.name: Duplicate value: \"{name}\""));
        }
        let protocol = port["protocol"].as_str().unwrap_or("TCP");
        if !PROTOCOLS.contains(&protocol) {
            causes.push(unsupported(&format!("{path}.protocol"), protocol, &PROTOCOLS));
        }
        if let Some(app_protocol) = port["appProtocol"].as_str() {
            let app_path = format!("{path}.appProtocol");
            causes.extend(
                label_key_problems(app_protocol).into_iter().map(|p| invalid_value(&app_path, app_protocol, &p)),
            );
        }
    }
    causes
}

/// One address, `at` in the list at `path`: an IP address of the slice's family and not a
/// special one, or a fully qualified domain name. An address type the API does not know is not
/// judged here (its own cause says so).
fn address_causes(path: &str, at: usize, address: &str, address_type: &str) -> Vec<String> {
    let indexed = format!("{path}[{at}]");
    match address_type {
        "IPv4" | "IPv6" => {
            let ip = match parse_ip(address) {
                Ok(ip) => ip,
                Err(problem) => return vec![invalid_value(&indexed, address, &problem)],
            };
            let mut causes = Vec::new();
            // Upstream names the list, not the entry, for the wrong family.
            match (address_type, ip) {
                ("IPv4", IpAddr::V6(_)) => causes.push(invalid_value(path, address, "must be an IPv4 address")),
                ("IPv6", IpAddr::V4(_)) => causes.push(invalid_value(path, address, "must be an IPv6 address")),
                _ => {}
            }
            causes.extend(special_ip(ip, address).map(|problem| invalid_value(&indexed, address, &problem)));
            causes
        }
        "FQDN" => fqdn_causes(&indexed, address),
        _ => Vec::new(),
    }
}

/// An IP address as the API server reads one in a new object: never one that only Go's legacy
/// parser reads (leading zeros in an IPv4 part or an IPv6 group), nor an IPv4 address written as
/// IPv6, nor an IPv6 address in any but its canonical form.
fn parse_ip(text: &str) -> Result<IpAddr, String> {
    match text.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_some() => {
            Err("must not be an IPv4-mapped IPv6 address".to_string())
        }
        // RFC 5952's form, which Rust writes: lower case, zeros compressed once, the longest run.
        Ok(ip) if ip.to_string() != text => Err(format!("must be in canonical form (\"{ip}\")")),
        Ok(ip) => Ok(ip),
        Err(_) if parse_lenient(text).is_some() => Err("must not have leading 0s".to_string()),
        Err(_) => Err("must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)".to_string()),
    }
}

/// ValidateNonSpecialIP: an endpoint cannot be an unspecified, loopback or link-local address.
pub(super) fn special_ip(ip: IpAddr, written: &str) -> Option<String> {
    let (link_local, link_local_multicast) = match ip {
        IpAddr::V4(v4) => (v4.is_link_local(), v4.octets()[..3] == [224, 0, 0]),
        // Go's IsLinkLocalMulticast: any ffX2::/16 (the flags are not looked at).
        IpAddr::V6(v6) => ((v6.segments()[0] & 0xffc0) == 0xfe80, (v6.segments()[0] & 0xff0f) == 0xff02),
    };
    if ip.is_unspecified() {
        Some(format!("may not be unspecified ({written})"))
    } else if ip.is_loopback() {
        Some("may not be in the loopback range (127.0.0.0/8, ::1/128)".to_string())
    } else if link_local {
        Some("may not be in the link-local range (169.254.0.0/16, fe80::/10)".to_string())
    } else if link_local_multicast {
        Some("may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)".to_string())
    } else {
        None
    }
}

/// IsFullyQualifiedDomainName at `path`: required; then, a trailing dot dropped, a subdomain of
/// at least two labels, each a DNS label. Its first problem only, naming the name as judged (or
/// the label at fault).
fn fqdn_causes(path: &str, name: &str) -> Vec<String> {
    if name.is_empty() {
        return vec![format!("{path}: Required value")];
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    let problems = subdomain_problems(name, "characters");
    if !problems.is_empty() {
        return vec![invalid_value(path, name, &problems.join(","))];
    }
    if !name.contains('.') {
        return vec![invalid_value(path, name, "should be a domain with at least two segments separated by dots")];
    }
    name.split('.')
        .find_map(|label| {
            let problems = dns_label_problems(label);
            (!problems.is_empty()).then(|| vec![invalid_value(path, label, &problems.join(","))])
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::SUBDOMAIN;
    use super::*;

    #[test]
    fn a_hand_made_slice_is_judged_in_the_api_servers_words_and_order() {
        let written = json!({
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": ["10.0.0.300", "127.0.0.1", "0.0.0.0", "169.254.1.1", "224.0.0.5", "::1", "010.1.1.1"]},
                {"addresses": []},
                {"addresses": ["10.1.1.1"], "nodeName": "Bad_Node", "hostname": "a.b"},
            ],
            "ports": [{"name": "web", "port": 80}, {"name": "web", "port": 81, "protocol": "SCTPX"}],
        });
        // The testbed's words and order (v1.37).
        assert_eq!(
            slice(&written),
            [
                "ports[1].name: Duplicate value: \"web\"".to_string(),
                "ports[1].protocol: Unsupported value: \"SCTPX\": supported values: \"SCTP\", \"TCP\", \"UDP\"".into(),
                "endpoints[0].addresses[0]: Invalid value: \"10.0.0.300\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)".into(),
                "endpoints[0].addresses[1]: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)".into(),
                "endpoints[0].addresses[2]: Invalid value: \"0.0.0.0\": may not be unspecified (0.0.0.0)".into(),
                "endpoints[0].addresses[3]: Invalid value: \"169.254.1.1\": may not be in the link-local range (169.254.0.0/16, fe80::/10)".into(),
                "endpoints[0].addresses[4]: Invalid value: \"224.0.0.5\": may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)".into(),
                "endpoints[0].addresses: Invalid value: \"::1\": must be an IPv4 address".into(),
                "endpoints[0].addresses[5]: Invalid value: \"::1\": may not be in the loopback range (127.0.0.0/8, ::1/128)".into(),
                "endpoints[0].addresses[6]: Invalid value: \"010.1.1.1\": must not have leading 0s".into(),
                format!("endpoints[2].nodeName: Invalid value: \"Bad_Node\": {SUBDOMAIN}"),
                "endpoints[2].hostname: Invalid value: \"a.b\": must not contain dots".into(),
                "endpoints[1].addresses: Required value".into(),
            ]
        );
        let names =
            json!({"addressType": "FQDN", "endpoints": [{"addresses": ["example.com", "a", "::ffff:1.2.3.4"]}]});
        assert_eq!(
            slice(&names),
            [
                "endpoints[0].addresses[1]: Invalid value: \"a\": should be a domain with at least two segments separated by dots".to_string(),
                format!("endpoints[0].addresses[2]: Invalid value: \"::ffff:1.2.3.4\": {SUBDOMAIN}"),
            ]
        );
        let mapped =
            json!({"addressType": "IPv6", "endpoints": [{"addresses": ["::ffff:1.2.3.4", "2001:db8::1", "fe80::1"]}]});
        assert_eq!(
            slice(&mapped),
            [
                "endpoints[0].addresses[0]: Invalid value: \"::ffff:1.2.3.4\": must not be an IPv4-mapped IPv6 address",
                "endpoints[0].addresses[2]: Invalid value: \"fe80::1\": may not be in the link-local range (169.254.0.0/16, fe80::/10)",
            ]
        );
        // What only Go's legacy parser reads, anywhere in the address; a zone or a blank it does not.
        let legacy =
            json!({"addressType": "IPv4", "endpoints": [{"addresses": ["0001.2.3.4", "1.2.3.4 ", "1.2.3.x"]}]});
        assert_eq!(
            slice(&legacy),
            [
                "endpoints[0].addresses[0]: Invalid value: \"0001.2.3.4\": must not have leading 0s",
                "endpoints[0].addresses[1]: Invalid value: \"1.2.3.4 \": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                "endpoints[0].addresses[2]: Invalid value: \"1.2.3.x\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            ]
        );
        let legacy6 = json!({"addressType": "IPv6",
            "endpoints": [{"addresses": ["00001::1", "::010.1.1.1", "fe80::1%eth0", "0::0", "ff12::1", "ff05::1"]}]});
        assert_eq!(
            slice(&legacy6),
            [
                "endpoints[0].addresses[0]: Invalid value: \"00001::1\": must not have leading 0s",
                "endpoints[0].addresses[1]: Invalid value: \"::010.1.1.1\": must not have leading 0s",
                "endpoints[0].addresses[2]: Invalid value: \"fe80::1%eth0\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                "endpoints[0].addresses[3]: Invalid value: \"0::0\": must be in canonical form (\"::\")",
                "endpoints[0].addresses[4]: Invalid value: \"ff12::1\": may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
            ]
        );
        let long_label = "a".repeat(64);
        let names = json!({"addressType": "FQDN",
            "endpoints": [{"addresses": ["", "Bad_fqdn.", "example.com.", format!("{long_label}.com")]}]});
        assert_eq!(
            slice(&names),
            [
                "endpoints[0].addresses[0]: Required value".to_string(),
                format!("endpoints[0].addresses[1]: Invalid value: \"Bad_fqdn\": {SUBDOMAIN}"),
                format!(
                    "endpoints[0].addresses[3]: Invalid value: \"{long_label}\": must be no more than 63 characters"
                ),
            ]
        );
        let unknown = json!({"addressType": "IPv5", "endpoints": [{"addresses": ["x"]}]});

        assert_eq!(
            slice(&unknown),
            ["addressType: Unsupported value: \"IPv5\": supported values: \"FQDN\", \"IPv4\", \"IPv6\""]
        );
    }

    #[test]
    fn a_slices_address_type_may_not_change() {
        let (ipv4, ipv6) = (json!({"addressType": "IPv4"}), json!({"addressType": "IPv6"}));
        assert!(change(&ipv4, &ipv4).is_empty());
        assert_eq!(change(&ipv4, &ipv6), ["addressType: Invalid value: null: field is immutable"]);
    }
}
