//! Label keys, values and changes, validated by Kubernetes' rules
//! (k8s.io/apimachinery's IsQualifiedName and IsValidLabelValue).

use std::collections::BTreeMap;
use std::fmt;

use crate::span::Spanned;

/// A set of labels, ordered so that everything printed from it is deterministic.
pub type Labels = BTreeMap<String, String>;

/// Why a label key or value is not valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelError {
    pub problem: String,
    pub help: &'static str,
}

const NAME_HELP: &str = "a label name is at most 63 characters: letters, digits, `-`, `_` and `.`, \
starting and ending with a letter or digit; an optional prefix is a DNS subdomain followed by `/`";
const VALUE_HELP: &str = "a label value is empty or at most 63 characters: letters, digits, `-`, `_` \
and `.`, starting and ending with a letter or digit";

fn error(problem: impl Into<String>, help: &'static str) -> LabelError {
    LabelError { problem: problem.into(), help }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// The `name` part of a qualified name, and label values (which may also be empty).
fn check_name(text: &str, what: &str, help: &'static str) -> Result<(), LabelError> {
    if text.len() > 63 {
        return Err(error(format!("{what} is {} characters long; the limit is 63", text.len()), help));
    }
    if let Some(c) = text.chars().find(|c| !is_name_char(*c)) {
        return Err(error(format!("{what} contains `{c}`, which is not allowed"), help));
    }
    let first_last = [text.chars().next(), text.chars().last()];
    if first_last.iter().flatten().any(|c| !c.is_ascii_alphanumeric()) {
        return Err(error(format!("{what} must start and end with a letter or digit"), help));
    }
    Ok(())
}

fn check_dns_subdomain(prefix: &str) -> Result<(), LabelError> {
    const HELP: &str = "a key prefix is a DNS subdomain such as `example.com`: lowercase letters, \
digits, `-` and `.`, at most 253 characters";
    if prefix.is_empty() {
        return Err(error("the key's prefix before `/` is empty", HELP));
    }
    if prefix.len() > 253 {
        return Err(error(format!("the key's prefix is {} characters long; the limit is 253", prefix.len()), HELP));
    }
    for part in prefix.split('.') {
        let ok = !part.is_empty()
            && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !part.starts_with('-')
            && !part.ends_with('-');
        if !ok {
            return Err(error(format!("the key's prefix `{prefix}` is not a DNS subdomain"), HELP));
        }
    }
    Ok(())
}

/// Checks a label key: `[prefix/]name`.
pub fn validate_key(key: &str) -> Result<(), LabelError> {
    if key.is_empty() {
        return Err(error("the label key is empty", NAME_HELP));
    }
    let name = match key.split_once('/') {
        Some((prefix, name)) => {
            check_dns_subdomain(prefix)?;
            if name.contains('/') {
                return Err(error("a label key has at most one `/`", NAME_HELP));
            }
            name
        }
        None => key,
    };
    if name.is_empty() {
        return Err(error("the key's name after `/` is empty", NAME_HELP));
    }
    check_name(name, "the key's name", NAME_HELP)
}

/// Checks a label value (empty is allowed).
pub fn validate_value(value: &str) -> Result<(), LabelError> {
    check_name(value, "the label value", VALUE_HELP)
}

/// What a label change does to one key.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelChangeKind {
    /// `key=value`: add the label or overwrite its value.
    Set(Spanned<String>),
    /// `key-`: remove the label if present.
    Remove,
}

/// One label change, in kubectl's syntax: `key=value` or `key-`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LabelChange {
    pub key: Spanned<String>,
    pub kind: LabelChangeKind,
}

impl LabelChange {
    pub fn value(&self) -> Option<&str> {
        match &self.kind {
            LabelChangeKind::Set(value) => Some(value.value.as_str()),
            LabelChangeKind::Remove => None,
        }
    }

    /// Applies the change to a label set.
    pub fn apply_to(&self, labels: &mut Labels) {
        match &self.kind {
            LabelChangeKind::Set(value) => {
                labels.insert(self.key.value.clone(), value.value.clone());
            }
            LabelChangeKind::Remove => {
                labels.remove(&self.key.value);
            }
        }
    }
}

impl fmt::Display for LabelChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            LabelChangeKind::Set(value) => {
                write!(f, "{}={}", self.key.value, quote_if_needed(&value.value))
            }
            LabelChangeKind::Remove => write!(f, "{}-", self.key.value),
        }
    }
}

/// Label values print bare unless they could not be read back that way.
pub fn quote_if_needed(value: &str) -> String {
    if value.chars().all(is_name_char) {
        value.to_string()
    } else {
        format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_kubernetes_keys() {
        for key in ["app", "app.kubernetes.io/name", "pod-template-hash", "a", "A_b.c-9", "k8s.io/x"] {
            assert_eq!(validate_key(key), Ok(()), "{key}");
        }
    }

    #[test]
    fn rejects_bad_keys_with_the_reason() {
        let cases = [
            ("", "empty"),
            ("enabled-", "start and end"),
            ("-x", "start and end"),
            ("a/b/c", "at most one"),
            ("Example.com/x", "DNS subdomain"),
            ("/x", "prefix before"),
            ("x/", "after `/` is empty"),
            ("sp ace", "contains ` `"),
        ];
        for (key, reason) in cases {
            let err = validate_key(key).expect_err(key);
            assert!(err.problem.contains(reason), "{key}: {}", err.problem);
        }
        let long = "a".repeat(64);
        assert!(validate_key(&long).unwrap_err().problem.contains("64 characters"));
        assert_eq!(validate_key(&"a".repeat(63)), Ok(()));
    }

    #[test]
    fn values_may_be_empty_but_not_malformed() {
        assert_eq!(validate_value(""), Ok(()));
        assert_eq!(validate_value("yes"), Ok(()));
        assert!(validate_value("a b").is_err());
        assert!(validate_value("x.").is_err());
        assert!(validate_value(&"v".repeat(64)).is_err());
    }

    #[test]
    fn changes_set_and_remove() {
        let span = crate::span::Span::default();
        let mut labels = Labels::from([("app".into(), "rng".into()), ("enabled".into(), "yes".into())]);
        let set = LabelChange {
            key: Spanned::new("active".into(), span),
            kind: LabelChangeKind::Set(Spanned::new("yes".into(), span)),
        };
        let remove = LabelChange { key: Spanned::new("enabled".into(), span), kind: LabelChangeKind::Remove };
        set.apply_to(&mut labels);
        remove.apply_to(&mut labels);
        assert_eq!(labels, Labels::from([("active".into(), "yes".into()), ("app".into(), "rng".into())]));
        assert_eq!(set.to_string(), "active=yes");
        assert_eq!(remove.to_string(), "enabled-");
    }
}
