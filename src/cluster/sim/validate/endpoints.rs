//! An Endpoints object written by hand (for a Service without a selector), as upstream's
//! validateEndpointSubsets judges it: each subset lists an address; each address an IP as the
//! legacy IP fields take one (Go's lenient parser, but no leading zeros or IPv4-mapped form) that
//! is not a special one, a DNS label as hostname and a DNS subdomain as node name; each port
//! named when the subset has several (a DNS label), in range, of a known protocol, with a
//! qualified name as app protocol.

use std::net::IpAddr;

use serde_json::Value;

use super::endpoint_slice::special_ip;
use super::{dns_label_causes, invalid_value, items, label_key_problems, subdomain_problems, text, unsupported};
use crate::model::ip::parse_lenient;

const PROTOCOLS: [&str; 3] = ["SCTP", "TCP", "UDP"];

pub(super) fn subsets(object: &Value) -> Vec<String> {
    let mut causes = Vec::new();
    for (i, subset) in items(&object["subsets"]).iter().enumerate() {
        let path = format!("subsets[{i}]");
        let (ready, not_ready) = (items(&subset["addresses"]), items(&subset["notReadyAddresses"]));
        if ready.is_empty() && not_ready.is_empty() {
            causes.push(format!("{path}: Required value: must specify `addresses` or `notReadyAddresses`"));
        }
        for (field, addresses) in [("addresses", ready), ("notReadyAddresses", not_ready)] {
            for (j, address) in addresses.iter().enumerate() {
                causes.extend(address_causes(address, &format!("{path}.{field}[{j}]")));
            }
        }
        let ports = items(&subset["ports"]);
        for (j, port) in ports.iter().enumerate() {
            causes.extend(port_causes(port, ports.len() > 1, &format!("{path}.ports[{j}]")));
        }
    }
    causes
}

/// validateEndpointAddress: the IP as a legacy field takes it, the hostname, the node name, then
/// ValidateNonSpecialIP (which says again, more briefly, that what is no IP is none).
fn address_causes(address: &Value, path: &str) -> Vec<String> {
    let ip = text(&address["ip"]);
    let at = format!("{path}.ip");
    let mut causes = Vec::new();
    let lenient = parse_lenient(ip);
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_some() => {
            causes.push(invalid_value(&at, ip, "must not be an IPv4-mapped IPv6 address"))
        }
        Ok(_) => {}
        Err(_) if lenient.is_some() => causes.push(invalid_value(&at, ip, "must not have leading 0s")),
        Err(_) => causes.push(invalid_value(&at, ip, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")),
    }
    if let Some(hostname) = address["hostname"].as_str().filter(|h| !h.is_empty()) {
        causes.extend(dns_label_causes(&format!("{path}.hostname"), hostname));
    }
    if let Some(node) = address["nodeName"].as_str() {
        let node_path = format!("{path}.nodeName");
        causes.extend(subdomain_problems(node, "characters").into_iter().map(|p| invalid_value(&node_path, node, &p)));
    }
    match lenient {
        // Go reads an IPv4-mapped address as the IPv4 one.
        Some(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_some() => {
            let v4 = v6.to_ipv4_mapped().expect("checked");
            causes.extend(special_ip(IpAddr::V4(v4), ip).map(|p| invalid_value(&at, ip, &p)));
        }
        Some(parsed) => causes.extend(special_ip(parsed, ip).map(|p| invalid_value(&at, ip, &p))),
        None => causes.push(invalid_value(&at, ip, "must be a valid IP address")),
    }
    causes
}

/// validateEndpointPort: a name when the subset has several ports, a DNS label when given; the
/// number in range; a known protocol (TCP when left out); a qualified name as app protocol.
fn port_causes(port: &Value, name_required: bool, path: &str) -> Vec<String> {
    let mut causes = Vec::new();
    let name = text(&port["name"]);
    if name.is_empty() && name_required {
        causes.push(format!("{path}.name: Required value"));
    } else if !name.is_empty() {
        causes.extend(dns_label_causes(&format!("{path}.name"), name));
    }
    let number = port["port"].as_i64().unwrap_or_default();
    if !(1..=65535).contains(&number) {
        causes.push(format!("{path}.port: Invalid value: {number}: must be between 1 and 65535, inclusive"));
    }
    let protocol = port["protocol"].as_str().filter(|p| !p.is_empty()).unwrap_or("TCP");
    if !PROTOCOLS.contains(&protocol) {
        causes.push(unsupported(&format!("{path}.protocol"), protocol, &PROTOCOLS));
    }
    if let Some(app_protocol) = port["appProtocol"].as_str() {
        let at = format!("{path}.appProtocol");
        causes.extend(label_key_problems(app_protocol).into_iter().map(|p| invalid_value(&at, app_protocol, &p)));
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Subsets and the testbed's answers to them (v1.37, `kubectl apply --dry-run=server`), every
    /// cause in its words and order; none for subsets it takes.
    const CASES: &[(&str, &[&str])] = &[
        // bad
        (
            r#"[{"addresses":[{"ip":"not-an-ip","hostname":"Bad_Host","nodeName":"Bad_Node"},{"ip":"127.0.0.1"},{"ip":"169.254.1.1"},{"ip":"224.0.0.5"},{"ip":"0.0.0.0"},{"ip":"010.1.1.1"},{"ip":"::1"},{"ip":"fd00::0001"},{"ip":""}],"notReadyAddresses":[{"ip":"10.0.0.300"}],"ports":[{"port":0,"name":"Bad_Name","protocol":"ICMP"},{"port":80,"name":"Bad_Name"},{"port":70000}]},{"ports":[{"port":80}]},{"addresses":[{"ip":"10.0.0.1","targetRef":{"kind":"Pod","name":"x"}}]}]"#,
            &[
                r#"subsets[0].addresses[0].ip: Invalid value: "not-an-ip": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"#,
                r#"subsets[0].addresses[0].hostname: Invalid value: "Bad_Host": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"#,
                r#"subsets[0].addresses[0].nodeName: Invalid value: "Bad_Node": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#,
                r#"subsets[0].addresses[0].ip: Invalid value: "not-an-ip": must be a valid IP address"#,
                r#"subsets[0].addresses[1].ip: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)"#,
                r#"subsets[0].addresses[2].ip: Invalid value: "169.254.1.1": may not be in the link-local range (169.254.0.0/16, fe80::/10)"#,
                r#"subsets[0].addresses[3].ip: Invalid value: "224.0.0.5": may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"#,
                r#"subsets[0].addresses[4].ip: Invalid value: "0.0.0.0": may not be unspecified (0.0.0.0)"#,
                r#"subsets[0].addresses[5].ip: Invalid value: "010.1.1.1": must not have leading 0s"#,
                r#"subsets[0].addresses[6].ip: Invalid value: "::1": may not be in the loopback range (127.0.0.0/8, ::1/128)"#,
                r#"subsets[0].addresses[8].ip: Invalid value: "": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"#,
                r#"subsets[0].addresses[8].ip: Invalid value: "": must be a valid IP address"#,
                r#"subsets[0].notReadyAddresses[0].ip: Invalid value: "10.0.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"#,
                r#"subsets[0].notReadyAddresses[0].ip: Invalid value: "10.0.0.300": must be a valid IP address"#,
                r#"subsets[0].ports[0].name: Invalid value: "Bad_Name": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"#,
                r#"subsets[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"#,
                r#"subsets[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP""#,
                r#"subsets[0].ports[1].name: Invalid value: "Bad_Name": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"#,
                r#"subsets[0].ports[2].name: Required value"#,
                r#"subsets[0].ports[2].port: Invalid value: 70000: must be between 1 and 65535, inclusive"#,
                r#"subsets[1]: Required value: must specify `addresses` or `notReadyAddresses`"#,
            ],
        ),
        // more
        (
            r#"[{"addresses":[{"ip":"10.0.0.1"}],"ports":[{"port":80,"name":"a"},{"port":81}]},{"addresses":[{"ip":"10.0.0.2"}],"ports":[{"port":80,"appProtocol":"bad proto!"}]}]"#,
            &[
                r#"subsets[0].ports[1].name: Required value"#,
                r#"subsets[1].ports[0].appProtocol: Invalid value: "bad proto!": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"#,
            ],
        ),
        // extra
        (
            r#"[{"addresses":[{"ip":"::ffff:1.2.3.4"},{"ip":"0127.0.0.1"},{"ip":"fd00::0001"},{"ip":"fe80::1","hostname":"a.b"}],"notReadyAddresses":[{"ip":"10.0.0.1","nodeName":"worker-1"}],"ports":[{"port":80,"protocol":""}]}]"#,
            &[
                r#"subsets[0].addresses[0].ip: Invalid value: "::ffff:1.2.3.4": must not be an IPv4-mapped IPv6 address"#,
                r#"subsets[0].addresses[1].ip: Invalid value: "0127.0.0.1": must not have leading 0s"#,
                r#"subsets[0].addresses[1].ip: Invalid value: "0127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)"#,
                r#"subsets[0].addresses[3].hostname: Invalid value: "a.b": must not contain dots"#,
                r#"subsets[0].addresses[3].ip: Invalid value: "fe80::1": may not be in the link-local range (169.254.0.0/16, fe80::/10)"#,
            ],
        ),
        // ok
        (r#"[{"addresses":[{"ip":"10.0.0.1"}],"ports":[{"port":80}]}]"#, &[]),
    ];

    #[test]
    fn endpoints_are_judged_in_the_api_servers_words_and_order() {
        for (written, answer) in CASES {
            let object = serde_json::json!({"subsets": serde_json::from_str::<Value>(written).unwrap()});
            assert_eq!(subsets(&object), *answer, "{written}");
        }
    }
}
