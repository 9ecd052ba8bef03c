//! An EndpointSlice written by hand (the EndpointSlice controller's own are right by making), as
//! the API server judges it: its ports (names, protocols, app protocols), then each endpoint's
//! addresses for the slice's address type, node name and hostname; then the checks its
//! declarative validation adds after those, in its order: a known address type, and at least one
//! address an endpoint.

use std::net::IpAddr;

use serde_json::Value;

use super::{dns_label_causes, label_key_problems, subdomain_problems, unsupported};

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
            causes.extend(subdomain_problems(node, "bytes").into_iter().map(|p| invalid(&node_path, node, &p)));
        }
        if let Some(hostname) = endpoint["hostname"].as_str() {
            causes.extend(dns_label_causes(&format!("{path}.hostname"), hostname));
        }
    }
    if !address_type.is_empty() && !ADDRESS_TYPES.contains(&address_type) {
        causes.push(unsupported("addressType", address_type, &ADDRESS_TYPES));
    } else if address_type.is_empty() {
        causes.push("addressType: Required value".to_string());
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
            causes.extend(label_key_problems(app_protocol).into_iter().map(|p| invalid(&app_path, app_protocol, &p)));
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
                Err(problem) => return vec![invalid(&indexed, address, problem)],
            };
            let mut causes = Vec::new();
            // Upstream names the list, not the entry, for the wrong family.
            match (address_type, ip) {
                ("IPv4", IpAddr::V6(_)) => causes.push(invalid(path, address, "must be an IPv4 address")),
                ("IPv6", IpAddr::V4(_)) => causes.push(invalid(path, address, "must be an IPv6 address")),
                _ => {}
            }
            causes.extend(special_ip(ip).map(|problem| invalid(&indexed, address, &problem)));
            causes
        }
        "FQDN" => fqdn_problems(address).into_iter().map(|problem| invalid(&indexed, address, &problem)).collect(),
        _ => Vec::new(),
    }
}

fn invalid(path: &str, value: &str, problem: &str) -> String {
    format!("{path}: Invalid value: \"{value}\": {problem}")
}

/// An IP address as the API server reads one in a new object: never with leading zeros in an
/// IPv4 part (which Go's legacy parser would read), nor an IPv4 address written as IPv6.
fn parse_ip(text: &str) -> Result<IpAddr, &'static str> {
    const INVALID: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";
    match text.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_some() => Err("must not be an IPv4-mapped IPv6 address"),
        Ok(ip) => Ok(ip),
        Err(_) => {
            let parts: Vec<&str> = text.split('.').collect();
            let octet = |p: &&str| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit());
            let zero_led = parts.len() == 4
                && parts.iter().all(|p| octet(p) && p.parse::<u16>().is_ok_and(|n| n <= 255))
                && parts.iter().any(|p| p.len() > 1 && p.starts_with('0'));
            Err(if zero_led { "must not have leading 0s" } else { INVALID })
        }
    }
}

/// ValidateNonSpecialIP: an endpoint cannot be an unspecified, loopback or link-local address.
fn special_ip(ip: IpAddr) -> Option<String> {
    let unspecified = match ip {
        IpAddr::V4(_) => "0.0.0.0",
        IpAddr::V6(_) => "::",
    };
    let (link_local, link_local_multicast) = match ip {
        IpAddr::V4(v4) => (v4.is_link_local(), v4.octets()[..3] == [224, 0, 0]),
        IpAddr::V6(v6) => ((v6.segments()[0] & 0xffc0) == 0xfe80, v6.segments()[0] == 0xff02),
    };
    if ip.is_unspecified() {
        Some(format!("may not be unspecified ({unspecified})"))
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

/// IsFullyQualifiedDomainName: a subdomain (a trailing dot allowed) of at least two labels.
fn fqdn_problems(name: &str) -> Vec<String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return vec!["Required value".to_string()];
    }
    let problems = subdomain_problems(name, "bytes");
    if !problems.is_empty() {
        return vec![problems.join(",")];
    }
    if !name.contains('.') {
        return vec!["should be a domain with at least two segments separated by dots".to_string()];
    }
    Vec::new()
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
        let unknown = json!({"addressType": "IPv5", "endpoints": [{"addresses": ["x"]}]});
        assert_eq!(
            slice(&unknown),
            ["addressType: Unsupported value: \"IPv5\": supported values: \"FQDN\", \"IPv4\", \"IPv6\""]
        );
    }
}
