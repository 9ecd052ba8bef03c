//! ConfigMaps and Secrets, as upstream's ValidateConfigMap and ValidateSecret judge them: keys a
//! file could be named by, a size limit for the whole, a key in one of a ConfigMap's two maps
//! only, and the keys a Secret's type requires. A Secret's `stringData` is already in `data`
//! here (the API server folds it in before validating; see `defaults`).

use serde_json::Value;

/// ConfigMaps and Secrets hold at most 1 MiB of values.
const MAX_SIZE: usize = 1024 * 1024;

const CONFIG_KEY: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

pub(super) fn config_map(object: &Value) -> Vec<String> {
    let mut causes = Vec::new();
    let mut size = 0;
    let binary = object["binaryData"].as_object();
    for (key, value) in object["data"].as_object().into_iter().flatten() {
        causes.extend(key_problems(key).into_iter().map(|p| format!("data[{key}]: Invalid value: \"{key}\": {p}")));
        if binary.is_some_and(|binary| binary.contains_key(key)) {
            causes.push(format!("data[{key}]: Invalid value: \"{key}\": duplicate of key present in binaryData"));
        }
        size += value.as_str().map_or(0, str::len);
    }
    for (key, value) in binary.into_iter().flatten() {
        causes
            .extend(key_problems(key).into_iter().map(|p| format!("binaryData[{key}]: Invalid value: \"{key}\": {p}")));
        size += decoded_len(value);
    }
    if size > MAX_SIZE {
        causes.push(format!(": Too long: may not be more than {MAX_SIZE} bytes"));
    }
    causes
}

pub(super) fn secret(object: &Value) -> Vec<String> {
    let mut causes = Vec::new();
    let data = object["data"].as_object();
    let mut size = 0;
    for (key, value) in data.into_iter().flatten() {
        causes.extend(key_problems(key).into_iter().map(|p| format!("data[{key}]: Invalid value: \"{key}\": {p}")));
        size += decoded_len(value);
    }
    if size > MAX_SIZE {
        causes.push(format!("data: Too long: may not be more than {MAX_SIZE} bytes"));
    }
    let has = |key: &str| data.is_some_and(|data| data.contains_key(key));
    let required = |key: &str| format!("data[{key}]: Required value");
    match object["type"].as_str().unwrap_or_default() {
        "kubernetes.io/service-account-token" => {
            let annotation = "kubernetes.io/service-account.name";
            if object["metadata"]["annotations"][annotation].as_str().is_none_or(str::is_empty) {
                causes.push(format!("metadata.annotations[{annotation}]: Required value"));
            }
        }
        "kubernetes.io/dockercfg" if !has(".dockercfg") => causes.push(required(".dockercfg")),
        "kubernetes.io/dockerconfigjson" if !has(".dockerconfigjson") => causes.push(required(".dockerconfigjson")),
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            causes.extend([required("username"), required("password")]);
        }
        "kubernetes.io/ssh-auth" if decoded_len(&object["data"]["ssh-privatekey"]) == 0 => {
            causes.push(required("ssh-privatekey"));
        }
        "kubernetes.io/tls" => {
            causes.extend(["tls.crt", "tls.key"].into_iter().filter(|key| !has(key)).map(required));
        }
        _ => {}
    }
    causes
}

/// ValidateConfigMapUpdate: once `immutable`, a ConfigMap's contents and the flag stay.
pub(super) fn config_map_change(current: &Value, object: &Value) -> Vec<String> {
    frozen(current, object, &["data", "binaryData"])
}

/// ValidateSecretUpdate: the type never changes; once `immutable`, the data and the flag stay.
pub(super) fn secret_change(current: &Value, object: &Value) -> Vec<String> {
    let mut causes = Vec::new();
    if current["type"] != object["type"] {
        causes.push(format!("type: Invalid value: {}: field is immutable", super::compact(&object["type"])));
    }
    causes.extend(frozen(current, object, &["data"]));
    causes
}

fn frozen(current: &Value, object: &Value, contents: &[&str]) -> Vec<String> {
    if current["immutable"] != true {
        return Vec::new();
    }
    let why = "Forbidden: field is immutable when `immutable` is set";
    let mut causes = Vec::new();
    if object["immutable"] != true {
        causes.push(format!("immutable: {why}"));
    }
    for field in contents {
        if current[*field] != object[*field] {
            causes.push(format!("{field}: {why}"));
        }
    }
    causes
}

/// IsConfigMapKey: at most 253 characters, of the key alphabet, and no way out of a directory.
pub(super) fn key_problems(key: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if key.len() > 253 {
        problems.push("must be no more than 253 characters".to_string());
    }
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        problems.push(CONFIG_KEY.to_string());
    }
    match key {
        "." => problems.push("must not be '.'".to_string()),
        ".." => problems.push("must not be '..'".to_string()),
        _ if key.starts_with("..") => problems.push("must not start with '..'".to_string()),
        _ => {}
    }
    problems
}

/// The size of a base64 value once decoded (the stored object holds it encoded).
fn decoded_len(value: &Value) -> usize {
    let text = value.as_str().unwrap_or_default().trim_end_matches('=');
    text.len() * 3 / 4
}
