//! A NetworkPolicy's spec, as upstream's ValidateNetworkPolicySpec judges it: its pod selector;
//! each ingress and egress rule's ports (a known protocol, a port by number in range or by IANA
//! name, an end port only after a numeric port and not below it) and peers (a pod or namespace
//! selector, or an IP block alone: a CIDR and exceptions strictly inside it); at most two policy
//! types, each known. A missing CIDR is reported last, as the API's declarative validation
//! lists it after the hand-written checks.

use std::net::IpAddr;

use serde_json::Value;

use crate::model::ip::parse_lenient;

use super::{compact, invalid_value, items, port_name_problems, selector_syntax, text, unsupported};

const PROTOCOLS: [&str; 3] = ["TCP", "UDP", "SCTP"];
const POLICY_TYPES: [&str; 2] = ["Ingress", "Egress"];
const NOT_A_CIDR: &str = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";

pub(super) fn spec(object: &Value) -> Vec<String> {
    let spec = &object["spec"];
    let mut causes = Vec::new();
    // The declarative validation's causes, which follow every hand-written one.
    let mut last = Vec::new();
    if spec["podSelector"].is_object() {
        causes.extend(selector_syntax(&spec["podSelector"], "spec.podSelector"));
    }
    for (direction, peers) in [("ingress", "from"), ("egress", "to")] {
        for (i, rule) in items(&spec[direction]).iter().enumerate() {
            let path = format!("spec.{direction}[{i}]");
            for (j, port) in items(&rule["ports"]).iter().enumerate() {
                causes.extend(port_problems(port, &format!("{path}.ports[{j}]")));
            }
            for (j, peer) in items(&rule[peers]).iter().enumerate() {
                causes.extend(peer_problems(peer, &format!("{path}.{peers}[{j}]"), &mut last));
            }
        }
    }
    let types = items(&spec["policyTypes"]);
    if types.len() > POLICY_TYPES.len() {
        causes.push(format!(
            "spec.policyTypes: Invalid value: {}: may not specify more than two policyTypes",
            compact(&spec["policyTypes"])
        ));
    } else {
        for (i, policy_type) in types.iter().enumerate() {
            let policy_type = text(policy_type);
            if !POLICY_TYPES.contains(&policy_type) {
                causes.push(unsupported(&format!("spec.policyTypes[{i}]"), policy_type, &POLICY_TYPES));
            }
        }
    }
    causes.extend(last);
    causes
}

/// ValidateNetworkPolicyPort.
fn port_problems(port: &Value, path: &str) -> Vec<String> {
    let mut causes = Vec::new();
    if let Some(protocol) = port["protocol"].as_str()
        && !PROTOCOLS.contains(&protocol)
    {
        causes.push(unsupported(&format!("{path}.protocol"), protocol, &PROTOCOLS));
    }
    let end_port = port["endPort"].as_i64();
    let out_of_range = |field: &str, number: i64| {
        (!(1..=65535).contains(&number))
            .then(|| format!("{path}.{field}: Invalid value: {number}: must be between 1 and 65535, inclusive"))
    };
    match &port["port"] {
        Value::Number(number) => {
            let number = number.as_i64().unwrap_or_default();
            causes.extend(out_of_range("port", number));
            if let Some(end) = end_port {
                if end < number {
                    causes
                        .push(format!("{path}.endPort: Invalid value: {end}: must be greater than or equal to `port`"));
                }
                causes.extend(out_of_range("endPort", end));
            }
        }
        Value::String(name) => {
            if let Some(end) = end_port {
                causes.push(format!(
                    "{path}.endPort: Invalid value: {end}: may not be specified when `port` is non-numeric"
                ));
            }
            for problem in port_name_problems(name) {
                causes.push(format!("{path}.port: Invalid value: \"{name}\": {problem}"));
            }
        }
        _ => {
            if let Some(end) = end_port {
                causes.push(format!(
                    "{path}.endPort: Invalid value: {end}: may not be specified when `port` is not specified"
                ));
            }
        }
    }
    causes
}

/// ValidateNetworkPolicyPeer: at least one peer, and an IP block only alone.
fn peer_problems(peer: &Value, path: &str, last: &mut Vec<String>) -> Vec<String> {
    let mut causes = Vec::new();
    let mut peers = 0;
    for selector in ["podSelector", "namespaceSelector"] {
        if peer[selector].is_object() {
            peers += 1;
            causes.extend(selector_syntax(&peer[selector], &format!("{path}.{selector}")));
        }
    }
    let block = &peer["ipBlock"];
    if !block.is_null() {
        peers += 1;
        causes.extend(ip_block(block, &format!("{path}.ipBlock"), last));
    }
    if peers == 0 {
        causes.push(format!("{path}: Required value: must specify a peer"));
    } else if peers > 1 && !block.is_null() {
        causes.push(format!("{path}: Forbidden: may not specify both ipBlock and another peer"));
    }
    causes
}

/// ValidateIPBlock: a CIDR, then each exception a CIDR strictly inside it. Containment is
/// judged on the networks as Go's lenient parser reads them, so a CIDR refused for its form
/// (leading zeros, bits past the prefix) still has its exceptions judged.
fn ip_block(block: &Value, path: &str, last: &mut Vec<String>) -> Vec<String> {
    let cidr = text(&block["cidr"]);
    if cidr.is_empty() {
        last.push(format!("{path}.cidr: Required value"));
        return Vec::new();
    }
    let mut causes: Vec<String> =
        cidr_problem(cidr).map(|p| invalid_value(&format!("{path}.cidr"), cidr, p)).into_iter().collect();
    let Some(network) = Network::lenient(cidr) else { return causes };
    for (i, except) in items(&block["except"]).iter().enumerate() {
        let except = text(except);
        let at = format!("{path}.except[{i}]");
        causes.extend(cidr_problem(except).map(|p| invalid_value(&at, except, p)));
        let Some(inner) = Network::lenient(except) else { continue };
        if !network.contains(&inner.address) || network.bits >= inner.bits {
            causes.push(invalid_value(&at, except, "must be a strict subset of `cidr`"));
        }
    }
    causes
}

/// IsValidCIDR: what a new CIDR may not be (netip.ParsePrefix's form, then what it must not
/// hold); one Go's lenient parser reads is refused for its leading zeros.
fn cidr_problem(text: &str) -> Option<&'static str> {
    let Some(strict) = Network::strict(text) else {
        return Some(if Network::lenient(text).is_some() {
            "must not have leading 0s in IP or prefix length"
        } else {
            NOT_A_CIDR
        });
    };
    match strict.address {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => Some("must not have an IPv4-mapped IPv6 address"),
        address if Network::masked(address, strict.bits) != address => {
            Some("must not have bits set beyond the prefix length")
        }
        _ => None,
    }
}

/// A CIDR as written: its address and prefix length.
struct Network {
    address: IpAddr,
    bits: u32,
}

impl Network {
    /// netip.ParsePrefix: an address Go's current parser reads, a prefix length in decimal
    /// without leading zeros.
    fn strict(text: &str) -> Option<Network> {
        let (address, bits) = text.split_once('/')?;
        if bits.len() > 1 && bits.starts_with('0') {
            return None;
        }
        Network::new(address.parse().ok()?, bits)
    }

    /// netutils.ParseCIDRSloppy, Go's legacy parser: leading zeros allowed in the address and
    /// the prefix length; the address masked to the network's.
    fn lenient(text: &str) -> Option<Network> {
        let (address, bits) = text.split_once('/')?;
        let address = parse_lenient(address)?;
        let network = Network::new(address, bits)?;
        Some(Network { address: Network::masked(network.address, network.bits), bits: network.bits })
    }

    fn new(address: IpAddr, bits: &str) -> Option<Network> {
        if bits.is_empty() || !bits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let bits: u32 = bits.parse().ok()?;
        let most = if address.is_ipv4() { 32 } else { 128 };
        (bits <= most).then_some(Network { address, bits })
    }

    fn masked(address: IpAddr, bits: u32) -> IpAddr {
        match address {
            IpAddr::V4(v4) => IpAddr::V4((u32::from(v4) & u32::MAX.checked_shl(32 - bits).unwrap_or(0)).into()),
            IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & u128::MAX.checked_shl(128 - bits).unwrap_or(0)).into()),
        }
    }

    /// Go's IPNet.Contains: an IPv4-mapped network or address is compared as IPv4 (the
    /// network's mask then its last 32 bits); IPv4 and IPv6 never contain each other.
    fn contains(&self, address: &IpAddr) -> bool {
        let as_v4 = |address: &IpAddr| match address {
            IpAddr::V4(v4) => Some(u32::from(*v4)),
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(u32::from),
        };
        match (as_v4(&self.address), as_v4(address)) {
            (Some(network), Some(address)) => {
                let bits = if self.address.is_ipv4() { self.bits } else { self.bits.saturating_sub(96) };
                let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
                network & mask == address & mask
            }
            (None, None) => {
                let (IpAddr::V6(network), IpAddr::V6(address)) = (self.address, *address) else { return false };
                let mask = u128::MAX.checked_shl(128 - self.bits).unwrap_or(0);
                u128::from(network) & mask == u128::from(address) & mask
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Specs and the testbed's answers to them (v1.37, `kubectl apply --dry-run=server`), every
    /// cause in its words and order; none for a spec it takes.
    const CASES: &[(&str, &[&str])] = &[
        // bad
        (
            r#"{"podSelector":{"matchLabels":{"bad key!":"x"},"matchExpressions":[{"key":"app","operator":"In"}]},"ingress":[{"ports":[{"protocol":"ICMP","port":0,"endPort":-5},{"port":"http","endPort":90},{"endPort":90},{"port":"Bad_Name"},{"port":80,"endPort":70}],"from":[{},{"podSelector":{},"ipBlock":{"cidr":"10.0.0.0/8"}},{"ipBlock":{"cidr":""}},{"ipBlock":{"cidr":"10.0.0.0/33","except":["10.1.0.0/16"]}},{"ipBlock":{"cidr":"10.0.0.0/8","except":["10.1.0.0/16","11.0.0.0/16","10.0.0.0/8","x","10.1.2.3/16","010.1.0.0/16"]}},{"namespaceSelector":{"matchLabels":{"a":"b c"}}}]}],"egress":[{"to":[{"ipBlock":{"cidr":"10.1.2.3/8"}},{"ipBlock":{"cidr":"fd00::/200"}},{"ipBlock":{"cidr":"fd00::/8","except":["fd00:1::/32","10.0.0.0/8"]}}]}],"policyTypes":["Ingress","Sideways"]}"#,
            &[
                r#"spec.podSelector.matchLabels: Invalid value: "bad key!": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"#,
                r#"spec.podSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"#,
                r#"spec.ingress[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP""#,
                r#"spec.ingress[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"#,
                r#"spec.ingress[0].ports[0].endPort: Invalid value: -5: must be greater than or equal to `port`"#,
                r#"spec.ingress[0].ports[0].endPort: Invalid value: -5: must be between 1 and 65535, inclusive"#,
                r#"spec.ingress[0].ports[1].endPort: Invalid value: 90: may not be specified when `port` is non-numeric"#,
                r#"spec.ingress[0].ports[2].endPort: Invalid value: 90: may not be specified when `port` is not specified"#,
                r#"spec.ingress[0].ports[3].port: Invalid value: "Bad_Name": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"#,
                r#"spec.ingress[0].ports[4].endPort: Invalid value: 70: must be greater than or equal to `port`"#,
                r#"spec.ingress[0].from[0]: Required value: must specify a peer"#,
                r#"spec.ingress[0].from[1]: Forbidden: may not specify both ipBlock and another peer"#,
                r#"spec.ingress[0].from[3].ipBlock.cidr: Invalid value: "10.0.0.0/33": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"#,
                r#"spec.ingress[0].from[4].ipBlock.except[1]: Invalid value: "11.0.0.0/16": must be a strict subset of `cidr`"#,
                r#"spec.ingress[0].from[4].ipBlock.except[2]: Invalid value: "10.0.0.0/8": must be a strict subset of `cidr`"#,
                r#"spec.ingress[0].from[4].ipBlock.except[3]: Invalid value: "x": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"#,
                r#"spec.ingress[0].from[4].ipBlock.except[4]: Invalid value: "10.1.2.3/16": must not have bits set beyond the prefix length"#,
                r#"spec.ingress[0].from[4].ipBlock.except[5]: Invalid value: "010.1.0.0/16": must not have leading 0s in IP or prefix length"#,
                r#"spec.ingress[0].from[5].namespaceSelector.matchLabels: Invalid value: "b c": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"#,
                r#"spec.egress[0].to[0].ipBlock.cidr: Invalid value: "10.1.2.3/8": must not have bits set beyond the prefix length"#,
                r#"spec.egress[0].to[1].ipBlock.cidr: Invalid value: "fd00::/200": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"#,
                r#"spec.egress[0].to[2].ipBlock.except[1]: Invalid value: "10.0.0.0/8": must be a strict subset of `cidr`"#,
                r#"spec.policyTypes[1]: Unsupported value: "Sideways": supported values: "Ingress", "Egress""#,
                r#"spec.ingress[0].from[2].ipBlock.cidr: Required value"#,
            ],
        ),
        // more
        (
            r#"{"podSelector":{},"egress":[{"to":[{"ipBlock":{"cidr":"10.0.0.0/08"}},{"ipBlock":{"cidr":"::ffff:10.0.0.0/104","except":["::ffff:10.1.0.0/112"]}},{"ipBlock":{"cidr":"FD00:0::/16","except":["fd00:1::/32"]}},{"ipBlock":{"cidr":"10.0.0.0/8","except":["10.0.0.0/8 ","10.0.0.0","fe80::1%eth0/64","10.0.0.0/+16","10.01.0.0/16","10.1.0.0/016","10.0.0.0/32"]}},{"ipBlock":{"cidr":"0.0.0.0/0","except":["1.2.3.0/24"]}},{"ipBlock":{"cidr":"010.0.0.0/8","except":["10.1.0.0/16","11.0.0.0/16"]}},{"ipBlock":{"cidr":"10.1.2.3/8","except":["10.0.0.0/16","10.0.0.0/4"]}}],"ports":[{"port":65536,"endPort":65536},{"protocol":"tcp"}]}]}"#,
            &[
                r#"spec.egress[0].ports[0].port: Invalid value: 65536: must be between 1 and 65535, inclusive"#,
                r#"spec.egress[0].ports[0].endPort: Invalid value: 65536: must be between 1 and 65535, inclusive"#,
                r#"spec.egress[0].ports[1].protocol: Unsupported value: "tcp": supported values: "TCP", "UDP", "SCTP""#,
                r#"spec.egress[0].to[0].ipBlock.cidr: Invalid value: "10.0.0.0/08": must not have leading 0s in IP or prefix length"#,
                r#"spec.egress[0].to[1].ipBlock.cidr: Invalid value: "::ffff:10.0.0.0/104": must not have an IPv4-mapped IPv6 address"#,
                r#"spec.egress[0].to[1].ipBlock.except[0]: Invalid value: "::ffff:10.1.0.0/112": must not have an IPv4-mapped IPv6 address"#,
                r#"spec.egress[0].to[3].ipBlock.except[0]: Invalid value: "10.0.0.0/8 ": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"#,
                r#"spec.egress[0].to[3].ipBlock.except[1]: Invalid value: "10.0.0.0": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"#,
                r#"spec.egress[0].to[3].ipBlock.except[2]: Invalid value: "fe80::1%eth0/64": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"#,
                r#"spec.egress[0].to[3].ipBlock.except[3]: Invalid value: "10.0.0.0/+16": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"#,
                r#"spec.egress[0].to[3].ipBlock.except[4]: Invalid value: "10.01.0.0/16": must not have leading 0s in IP or prefix length"#,
                r#"spec.egress[0].to[3].ipBlock.except[5]: Invalid value: "10.1.0.0/016": must not have leading 0s in IP or prefix length"#,
                r#"spec.egress[0].to[5].ipBlock.cidr: Invalid value: "010.0.0.0/8": must not have leading 0s in IP or prefix length"#,
                r#"spec.egress[0].to[5].ipBlock.except[1]: Invalid value: "11.0.0.0/16": must be a strict subset of `cidr`"#,
                r#"spec.egress[0].to[6].ipBlock.cidr: Invalid value: "10.1.2.3/8": must not have bits set beyond the prefix length"#,
                r#"spec.egress[0].to[6].ipBlock.except[1]: Invalid value: "10.0.0.0/4": must not have bits set beyond the prefix length"#,
                r#"spec.egress[0].to[6].ipBlock.except[1]: Invalid value: "10.0.0.0/4": must be a strict subset of `cidr`"#,
            ],
        ),
        // three
        (
            r#"{"podSelector":{},"policyTypes":["Ingress","Egress","Ingress"]}"#,
            &[
                r#"spec.policyTypes: Invalid value: ["Ingress","Egress","Ingress"]: may not specify more than two policyTypes"#,
            ],
        ),
        // dup
        (r#"{"podSelector":{},"ingress":[{},{"from":[]}],"policyTypes":["Ingress","Ingress"]}"#, &[]),
        // noselector
        (r#"{"policyTypes":["Ingress"]}"#, &[]),
        // ok
        (r#"{"ingress":[{"ports":[{"port":80}],"from":[{"ipBlock":{"cidr":"10.0.0.0/8"}}]}],"egress":[{}]}"#, &[]),
    ];

    #[test]
    fn a_network_policy_is_judged_in_the_api_servers_words_and_order() {
        for (written, answer) in CASES {
            let object = serde_json::json!({"spec": serde_json::from_str::<Value>(written).unwrap()});
            assert_eq!(spec(&object), *answer, "{written}");
        }
    }
}
