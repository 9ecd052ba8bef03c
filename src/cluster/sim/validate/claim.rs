//! A PersistentVolumeClaim's spec, as upstream's ValidatePersistentVolumeClaimSpec judges it: at
//! least one known access mode (ReadWriteOncePod alone), a well-formed selector, a storage
//! request above zero, a storage class that is a DNS subdomain and a known volume mode. Not
//! judged: data sources (the registry rewrites them first) and what an update may change.

use serde_json::Value;

use super::super::quantity::Quantity;
use super::{invalid_value, items, selector_syntax, subdomain_problems, text, unsupported};

const ACCESS_MODES: [&str; 4] = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"];
const VOLUME_MODES: [&str; 2] = ["Block", "Filesystem"];

pub(super) fn spec(object: &Value) -> Vec<String> {
    let spec = &object["spec"];
    let mut causes = Vec::new();
    let modes = items(&spec["accessModes"]);
    if modes.is_empty() {
        causes.push("spec.accessModes: Required value: at least 1 access mode is required".to_string());
    }
    if spec["selector"].is_object() {
        causes.extend(selector_syntax(&spec["selector"], "spec.selector"));
    }
    let (mut once_pod, mut others) = (false, false);
    for mode in modes.iter().map(text) {
        if !ACCESS_MODES.contains(&mode) {
            causes.push(unsupported("spec.accessModes", mode, &ACCESS_MODES));
        } else if mode == "ReadWriteOncePod" {
            once_pod = true;
        } else {
            others = true;
        }
    }
    if once_pod && others {
        causes.push("spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes".to_string());
    }
    let storage = &spec["resources"]["requests"]["storage"];
    match Quantity::from_json(storage) {
        None => causes.push("spec.resources[storage]: Required value".to_string()),
        Some(quantity) if !quantity.is_positive() => {
            causes.push(invalid_value("spec.resources[storage]", &quantity.to_string(), "must be greater than zero"))
        }
        Some(_) => {}
    }
    if let Some(class) = spec["storageClassName"].as_str().filter(|c| !c.is_empty()) {
        let path = "spec.storageClassName";
        causes.extend(subdomain_problems(class, "characters").into_iter().map(|p| invalid_value(path, class, &p)));
    }
    if let Some(mode) = spec["volumeMode"].as_str()
        && !VOLUME_MODES.contains(&mode)
    {
        causes.push(unsupported("spec.volumeMode", mode, &VOLUME_MODES));
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
            r#"{"storageClassName":"standard"}"#,
            &[
                r#"spec.accessModes: Required value: at least 1 access mode is required"#,
                r#"spec.resources[storage]: Required value"#,
            ],
        ),
        // bad
        (
            r#"{"accessModes":["ReadWriteMany","Sideways"],"volumeMode":"Block2","resources":{"requests":{"storage":"-1Gi","cpu":1},"limits":{"storage":"1Gi"}},"selector":{"matchLabels":{"bad key":"x"}},"dataSource":{"kind":"","name":""}}"#,
            &[
                r#"spec.selector.matchLabels: Invalid value: "bad key": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"#,
                r#"spec.accessModes: Unsupported value: "Sideways": supported values: "ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod""#,
                r#"spec.resources[storage]: Invalid value: "-1Gi": must be greater than zero"#,
                r#"spec.volumeMode: Unsupported value: "Block2": supported values: "Block", "Filesystem""#,
            ],
        ),
        // more
        (
            r#"{"accessModes":["ReadWriteOncePod","ReadWriteOnce"],"resources":{"requests":{"storage":0}}}"#,
            &[
                r#"spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes"#,
                r#"spec.resources[storage]: Invalid value: "0": must be greater than zero"#,
            ],
        ),
        // class
        (
            r#"{"accessModes":["ReadWriteOnce","ReadOnlyMany"],"storageClassName":"Bad_Class","resources":{"requests":{"storage":"1.5Gi"}}}"#,
            &[
                r#"spec.storageClassName: Invalid value: "Bad_Class": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#,
            ],
        ),
        // neg
        (
            r#"{"accessModes":["ReadWriteOncePod"],"resources":{"requests":{"storage":"-1.5Gi"}}}"#,
            &[r#"spec.resources[storage]: Invalid value: "-1536Mi": must be greater than zero"#],
        ),
        // ok
        (r#"{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}}"#, &[]),
    ];

    #[test]
    fn a_claim_is_judged_in_the_api_servers_words_and_order() {
        for (written, answer) in CASES {
            let object = serde_json::json!({"spec": serde_json::from_str::<Value>(written).unwrap()});
            assert_eq!(spec(&object), *answer, "{written}");
        }
    }
}
