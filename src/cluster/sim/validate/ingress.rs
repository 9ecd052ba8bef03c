//! An Ingress's spec, as upstream's ValidateIngressSpec judges it: a default backend or rules;
//! each backend a Service (a DNS label, a port by name or number, not both) or a typed resource,
//! never both; rule hosts that are DNS names (a wildcard only as `*.` in front), not IP
//! addresses; each HTTP path with a known type and, for `Exact` and `Prefix`, an absolute path
//! free of sequences a proxy would read differently; TLS hosts and secret names; the class name.

use serde_json::Value;

use crate::model::ip::parse_lenient;

use super::{
    compact, dns_label_problems, invalid_value, is_subdomain_pattern, items, path_segment_problems, port_name_problems,
    subdomain_problems, text, unsupported,
};

/// Upstream's invalidPathSequences and invalidPathSuffixes, in its order.
const BAD_SEQUENCES: [&str; 5] = ["//", "/./", "/../", "%2f", "%2F"];
const BAD_SUFFIXES: [&str; 2] = ["/..", "/."];
const PATH_TYPES: [&str; 3] = ["Exact", "ImplementationSpecific", "Prefix"];

pub(super) fn spec(object: &Value) -> Vec<String> {
    let spec = &object["spec"];
    let rules = items(&spec["rules"]);
    let mut causes = Vec::new();
    if rules.is_empty() && spec["defaultBackend"].is_null() {
        let written = if spec["rules"].is_null() { "null".to_string() } else { compact(&spec["rules"]) };
        causes.push(format!("spec: Invalid value: {written}: either `defaultBackend` or `rules` must be specified"));
    }
    if !spec["defaultBackend"].is_null() {
        causes.extend(backend(&spec["defaultBackend"], "spec.defaultBackend"));
    }
    for (i, rule) in rules.iter().enumerate() {
        let path = format!("spec.rules[{i}]");
        causes.extend(rule_host(text(&rule["host"]), &format!("{path}.host")));
        if !rule["http"].is_null() {
            causes.extend(http_paths(&rule["http"], &format!("{path}.http")));
        }
    }
    for (i, tls) in items(&spec["tls"]).iter().enumerate() {
        for (j, host) in items(&tls["hosts"]).iter().enumerate() {
            let host = text(host);
            causes.extend(
                host_problems(host).into_iter().map(|p| invalid_value(&format!("spec.tls[{i}].hosts[{j}]"), host, &p)),
            );
        }
        let secret = text(&tls["secretName"]);
        if !secret.is_empty() {
            let path = format!("spec.tls[{i}].secretName");
            causes
                .extend(subdomain_problems(secret, "characters").into_iter().map(|p| invalid_value(&path, secret, &p)));
        }
    }
    if let Some(class) = spec["ingressClassName"].as_str() {
        let path = "spec.ingressClassName";
        causes.extend(subdomain_problems(class, "characters").into_iter().map(|p| invalid_value(path, class, &p)));
    }
    causes
}

/// A rule's host: a DNS name, never an IP address (as Go's lenient parser reads one).
fn rule_host(host: &str, path: &str) -> Vec<String> {
    if host.is_empty() {
        return Vec::new();
    }
    let mut causes = Vec::new();
    if is_ip_address(host) {
        causes.push(invalid_value(path, host, "must be a DNS name, not an IP address"));
    }
    causes.extend(host_problems(host).into_iter().map(|p| invalid_value(path, host, &p)));
    causes
}

/// IsWildcardDNS1123Subdomain for a host with a `*`, IsDNS1123Subdomain for any other. The
/// wildcard's pattern says nothing of length: a host too long is told only that.
fn host_problems(host: &str) -> Vec<String> {
    if !host.contains('*') {
        return subdomain_problems(host, "characters");
    }
    let mut problems = Vec::new();
    if host.len() > 253 {
        problems.push("must be no more than 253 characters".to_string());
    }
    if !host.strip_prefix("*.").is_some_and(is_subdomain_pattern) {
        problems.push(WILDCARD.to_string());
    }
    problems
}

const WILDCARD: &str = "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/// netutils.ParseIPSloppy: an address Go's current parser reads, or its legacy one, which
/// allows leading zeros.
fn is_ip_address(host: &str) -> bool {
    parse_lenient(host).is_some()
}

fn http_paths(http: &Value, path: &str) -> Vec<String> {
    let paths = items(&http["paths"]);
    if paths.is_empty() {
        return vec![format!("{path}.paths: Required value")];
    }
    paths.iter().enumerate().flat_map(|(i, entry)| http_path(entry, &format!("{path}.paths[{i}]"))).collect()
}

/// validateHTTPIngressPath: a path type first (without one nothing else is judged), the path
/// as that type takes it, then the backend.
fn http_path(entry: &Value, path: &str) -> Vec<String> {
    let Some(path_type) = entry["pathType"].as_str() else {
        return vec![format!("{path}.pathType: Required value: pathType must be specified")];
    };
    let written = text(&entry["path"]);
    let at = format!("{path}.path");
    let mut causes = Vec::new();
    match path_type {
        "Exact" | "Prefix" => {
            if !written.starts_with('/') {
                causes.push(invalid_value(&at, written, "must be an absolute path"));
            }
            for sequence in BAD_SEQUENCES.iter().filter(|s| written.contains(**s)) {
                causes.push(invalid_value(&at, written, &format!("must not contain '{sequence}'")));
            }
            for suffix in BAD_SUFFIXES.iter().filter(|s| written.ends_with(**s)) {
                causes.push(invalid_value(&at, written, &format!("cannot end with '{suffix}'")));
            }
        }
        "ImplementationSpecific" => {
            if !written.is_empty() && !written.starts_with('/') {
                causes.push(invalid_value(&at, written, "must be an absolute path"));
            }
        }
        other => causes.push(unsupported(&format!("{path}.pathType"), other, &PATH_TYPES)),
    }
    causes.extend(backend(&entry["backend"], &format!("{path}.backend")));
    causes
}

/// validateIngressBackend: a Service or a typed resource, exactly one.
fn backend(backend: &Value, path: &str) -> Vec<String> {
    let (resource, service) = (&backend["resource"], &backend["service"]);
    match (resource.is_null(), service.is_null()) {
        (false, false) => vec![invalid_value(path, "", "cannot set both resource and service backends")],
        (false, true) => typed_reference(resource, &format!("{path}.resource")),
        (true, false) => service_backend(service, path),
        (true, true) => vec![invalid_value(path, "", "resource or service backend is required")],
    }
}

fn service_backend(service: &Value, path: &str) -> Vec<String> {
    let mut causes = Vec::new();
    let name = text(&service["name"]);
    let at = format!("{path}.service.name");
    if name.is_empty() {
        causes.push(format!("{at}: Required value"));
    } else {
        causes.extend(dns_label_problems(name).iter().map(|p| invalid_value(&at, name, p)));
    }
    let port_name = text(&service["port"]["name"]);
    // A number of 0 is none, as the API's Go struct reads it.
    let port_number = service["port"]["number"].as_i64().unwrap_or_default();
    match (port_name.is_empty(), port_number == 0) {
        (false, false) => causes.push(invalid_value(path, "", "cannot set both port name & port number")),
        (false, true) => {
            let at = format!("{path}.service.port.name");
            causes.extend(port_name_problems(port_name).into_iter().map(|p| invalid_value(&at, port_name, p)));
        }
        (true, false) if !(1..=65535).contains(&port_number) => causes.push(format!(
            "{path}.service.port.number: Invalid value: {port_number}: must be between 1 and 65535, inclusive"
        )),
        (true, false) => {}
        (true, true) => causes.push(format!("{path}: Required value: port name or number is required")),
    }
    causes
}

/// validateIngressTypedLocalObjectReference: an API group (when given) that is a DNS subdomain,
/// and a kind and a name that are path segments.
fn typed_reference(reference: &Value, path: &str) -> Vec<String> {
    let mut causes = Vec::new();
    if let Some(group) = reference["apiGroup"].as_str() {
        let at = format!("{path}.apiGroup");
        causes.extend(subdomain_problems(group, "characters").into_iter().map(|p| invalid_value(&at, group, &p)));
    }
    for field in ["kind", "name"] {
        let value = text(&reference[field]);
        let at = format!("{path}.{field}");
        if value.is_empty() {
            causes.push(format!("{at}: Required value"));
        }
        causes.extend(path_segment_problems(value).into_iter().map(|p| invalid_value(&at, value, &p)));
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Specs and the testbed's answers to them (v1.37, `kubectl apply --dry-run=server`), every
    /// cause in its words and order; none for a spec it takes.
    const CASES: &[(&str, &[&str])] = &[
        // empty
        (
            r#"{"ingressClassName":"nginx"}"#,
            &[r#"spec: Invalid value: null: either `defaultBackend` or `rules` must be specified"#],
        ),
        // nopathtype
        (
            r#"{"rules":[{"host":"10.0.0.1","http":{"paths":[{"path":"/x","backend":{"service":{"name":"web","port":{"number":80}}}}]}}]}"#,
            &[
                r#"spec.rules[0].host: Invalid value: "10.0.0.1": must be a DNS name, not an IP address"#,
                r#"spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"#,
            ],
        ),
        // many
        (
            r#"{"rules":[{"host":"*.Example.com","http":{"paths":[{"path":"x//y/.","pathType":"Prefix","backend":{"service":{"name":"Web","port":{"number":0}}}},{"path":"x","pathType":"ImplementationSpecific","backend":{"service":{"name":"web","port":{"name":"http","number":80}}}},{"path":"/a","pathType":"Regex","backend":{}},{"path":"/a%2f/../","pathType":"Exact","backend":{"service":{"name":"web","port":{}}}}]}}]}"#,
            &[
                r#"spec.rules[0].host: Invalid value: "*.Example.com": a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\*\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#,
                r#"spec.rules[0].http.paths[0].path: Invalid value: "x//y/.": must be an absolute path"#,
                r#"spec.rules[0].http.paths[0].path: Invalid value: "x//y/.": must not contain '//'"#,
                r#"spec.rules[0].http.paths[0].path: Invalid value: "x//y/.": cannot end with '/.'"#,
                r#"spec.rules[0].http.paths[0].backend.service.name: Invalid value: "Web": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"#,
                r#"spec.rules[0].http.paths[0].backend: Required value: port name or number is required"#,
                r#"spec.rules[0].http.paths[1].path: Invalid value: "x": must be an absolute path"#,
                r#"spec.rules[0].http.paths[1].backend: Invalid value: "": cannot set both port name & port number"#,
                r#"spec.rules[0].http.paths[2].pathType: Unsupported value: "Regex": supported values: "Exact", "ImplementationSpecific", "Prefix""#,
                r#"spec.rules[0].http.paths[2].backend: Invalid value: "": resource or service backend is required"#,
                r#"spec.rules[0].http.paths[3].path: Invalid value: "/a%2f/../": must not contain '/../'"#,
                r#"spec.rules[0].http.paths[3].path: Invalid value: "/a%2f/../": must not contain '%2f'"#,
                r#"spec.rules[0].http.paths[3].backend: Required value: port name or number is required"#,
            ],
        ),
        // tls
        (
            r#"{"defaultBackend":{"resource":{"kind":"Bucket","name":"b"},"service":{"name":"web","port":{"name":"Http_x"}}},"tls":[{"hosts":["*.*.x","a_b"],"secretName":"Bad_Secret"}],"rules":[{"http":{"paths":[]}},{"host":"*"}]}"#,
            &[
                r#"spec.defaultBackend: Invalid value: "": cannot set both resource and service backends"#,
                r#"spec.rules[0].http.paths: Required value"#,
                r#"spec.rules[1].host: Invalid value: "*": a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\*\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#,
                r#"spec.tls[0].hosts[0]: Invalid value: "*.*.x": a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\*\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#,
                r#"spec.tls[0].hosts[1]: Invalid value: "a_b": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#,
                r#"spec.tls[0].secretName: Invalid value: "Bad_Secret": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#,
            ],
        ),
        // more
        (
            r#"{"ingressClassName":"Nginx_1","defaultBackend":{"service":{"name":"web-","port":{"number":70000}}},"tls":[{},{"hosts":["ok.example.com"]}],"rules":[{"host":"Upper.Example.com","http":{"paths":[{"pathType":"Prefix","backend":{"resource":{"kind":"","name":""}}},{"pathType":"ImplementationSpecific","backend":{"resource":{"apiGroup":"bad group","kind":"Bu/cket","name":"x/y"}}},{"pathType":"Exact","path":"/a/","backend":{"service":{"port":{"name":"Http_x"}}}}]}},{"host":"010.1.2.3"},{"host":"::1"}]}"#,
            &[
                r#"spec.defaultBackend.service.name: Invalid value: "web-": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"#,
                r#"spec.defaultBackend.service.port.number: Invalid value: 70000: must be between 1 and 65535, inclusive"#,
                r#"spec.rules[0].host: Invalid value: "Upper.Example.com": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#,
                r#"spec.rules[0].http.paths[0].path: Invalid value: "": must be an absolute path"#,
                r#"spec.rules[0].http.paths[0].backend.resource.kind: Required value"#,
                r#"spec.rules[0].http.paths[0].backend.resource.name: Required value"#,
                r#"spec.rules[0].http.paths[1].backend.resource.apiGroup: Invalid value: "bad group": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#,
                r#"spec.rules[0].http.paths[1].backend.resource.kind: Invalid value: "Bu/cket": may not contain '/'"#,
                r#"spec.rules[0].http.paths[1].backend.resource.name: Invalid value: "x/y": may not contain '/'"#,
                r#"spec.rules[0].http.paths[2].backend.service.name: Required value"#,
                r#"spec.rules[0].http.paths[2].backend.service.port.name: Invalid value: "Http_x": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"#,
                r#"spec.rules[1].host: Invalid value: "010.1.2.3": must be a DNS name, not an IP address"#,
                r#"spec.rules[2].host: Invalid value: "::1": must be a DNS name, not an IP address"#,
                r#"spec.rules[2].host: Invalid value: "::1": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#,
                r#"spec.ingressClassName: Invalid value: "Nginx_1": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#,
            ],
        ),
        // more2
        (
            r#"{"defaultBackend":{"service":{"name":"web","port":{"name":"toolongportname-x"}}},"rules":[{"host":"a.b","http":{"paths":[{"path":"/","pathType":"Prefix","backend":{"service":{"name":"0web","port":{"number":-1}}}},{"path":"/.","pathType":"Prefix","backend":{"service":{"name":"web","port":{"name":"1234"}}}},{"path":"/x/./y","pathType":"Prefix","backend":{"service":{"name":"web","port":{"name":"a--b"}}}}]}}]}"#,
            &[
                r#"spec.defaultBackend.service.port.name: Invalid value: "toolongportname-x": must be no more than 15 characters"#,
                r#"spec.rules[0].http.paths[0].backend.service.port.number: Invalid value: -1: must be between 1 and 65535, inclusive"#,
                r#"spec.rules[0].http.paths[1].path: Invalid value: "/.": cannot end with '/.'"#,
                r#"spec.rules[0].http.paths[1].backend.service.port.name: Invalid value: "1234": must contain at least one letter (a-z)"#,
                r#"spec.rules[0].http.paths[2].path: Invalid value: "/x/./y": must not contain '/./'"#,
                r#"spec.rules[0].http.paths[2].backend.service.port.name: Invalid value: "a--b": must not contain consecutive hyphens"#,
            ],
        ),
        // wild
        (
            r#"{"rules":[{"host":"*.example.com","http":{"paths":[{"path":"/a b{}","pathType":"Exact","backend":{"resource":{"kind":"..","name":"a%b"}}},{"path":"/ok","pathType":"Prefix","backend":{"resource":{"kind":".","name":"%","apiGroup":""}}},{"path":"/%2F","pathType":"Prefix","backend":{"service":{"name":"a.b","port":{"number":80}}}}]}},{"host":"x.example.com"},{}]}"#,
            &[
                r#"spec.rules[0].http.paths[0].backend.resource.kind: Invalid value: "..": may not be '..'"#,
                r#"spec.rules[0].http.paths[0].backend.resource.name: Invalid value: "a%b": may not contain '%'"#,
                r#"spec.rules[0].http.paths[1].backend.resource.apiGroup: Invalid value: "": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#,
                r#"spec.rules[0].http.paths[1].backend.resource.kind: Invalid value: ".": may not be '.'"#,
                r#"spec.rules[0].http.paths[1].backend.resource.name: Invalid value: "%": may not contain '%'"#,
                r#"spec.rules[0].http.paths[2].path: Invalid value: "/%2F": must not contain '%2F'"#,
                r#"spec.rules[0].http.paths[2].backend.service.name: Invalid value: "a.b": must not contain dots"#,
            ],
        ),
        // emptyhttp
        (r#"{"rules":[{"http":{}}]}"#, &[r#"spec.rules[0].http.paths: Required value"#]),
        // emptydb
        (
            r#"{"defaultBackend":{}}"#,
            &[r#"spec.defaultBackend: Invalid value: "": resource or service backend is required"#],
        ),
        // ok
        (
            r#"{"defaultBackend":{"service":{"name":"web","port":{"number":80}}},"tls":[{"hosts":["*.example.com","123"],"secretName":""}]}"#,
            &[],
        ),
    ];

    #[test]
    fn an_ingress_is_judged_in_the_api_servers_words_and_order() {
        for (written, answer) in CASES {
            let object = serde_json::json!({"spec": serde_json::from_str::<Value>(written).unwrap()});
            assert_eq!(spec(&object), *answer, "{written}");
        }
    }

    #[test]
    fn a_wildcard_host_too_long_is_told_only_its_length() {
        // The testbed's answer for `*.` and five labels of 60 characters (306 in all).
        let host = format!("*.{}", vec!["a".repeat(60); 5].join("."));
        let object = serde_json::json!({"spec": {"rules": [{"host": host, "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "s", "port": {"number": 80}}}}]}}]}});
        assert_eq!(
            spec(&object),
            [format!("spec.rules[0].host: Invalid value: \"{host}\": must be no more than 253 characters")]
        );
    }
}
