//! Kubernetes label selectors (`app=rng,tier!=db`, `env in (a,b)`, `!canary`): matching,
//! canonical printing, and finding selectors that can never match anything.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use super::labels::{Labels, quote_if_needed};
use crate::span::{Span, Spanned};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    Equals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

/// One comma-separated part of a selector.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Requirement {
    pub key: Spanned<String>,
    pub operator: Operator,
    pub values: Vec<Spanned<String>>,
    pub span: Span,
}

impl Requirement {
    pub fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.key.value);
        let listed = |v: &String| self.values.iter().any(|x| &x.value == v);
        match self.operator {
            Operator::Equals | Operator::In => value.is_some_and(listed),
            Operator::NotEquals | Operator::NotIn => !value.is_some_and(listed),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = &self.key.value;
        let values = || self.values.iter().map(|v| quote_if_needed(&v.value)).collect::<Vec<_>>().join(",");
        match self.operator {
            Operator::Equals => write!(f, "{key}={}", values()),
            Operator::NotEquals => write!(f, "{key}!={}", values()),
            Operator::In => write!(f, "{key} in ({})", values()),
            Operator::NotIn => write!(f, "{key} notin ({})", values()),
            Operator::Exists => write!(f, "{key}"),
            Operator::DoesNotExist => write!(f, "!{key}"),
        }
    }
}

/// All requirements must hold (a comma means AND).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Selector {
    pub requirements: Vec<Requirement>,
    pub span: Span,
}

/// Two requirements that together can never match a pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub key: String,
    pub first: Span,
    pub second: Span,
    pub reason: String,
}

impl Selector {
    pub fn matches(&self, labels: &Labels) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Keys this selector looks at, in order of appearance.
    pub fn keys(&self) -> impl Iterator<Item = &Spanned<String>> {
        self.requirements.iter().map(|r| &r.key)
    }

    /// Whether every requirement is `key=value`, as a Service's selector must be.
    pub fn is_equality_only(&self) -> bool {
        self.requirements.iter().all(|r| r.operator == Operator::Equals)
    }

    /// The selector as a label map, for equality-only selectors (Service selectors, matchLabels).
    pub fn as_labels(&self) -> Option<Labels> {
        self.is_equality_only()
            .then(|| self.requirements.iter().map(|r| (r.key.value.clone(), r.values[0].value.clone())).collect())
    }

    /// The first pair of requirements that no set of labels can satisfy together, if any.
    pub fn conflict(&self) -> Option<Conflict> {
        // Requirements grouped by key in one pass, keys in order of first appearance: a selector
        // of 100,000 distinct keys must not cost 100,000 scans of itself.
        let mut by_key: Vec<Vec<&Requirement>> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for requirement in &self.requirements {
            let slot = *index.entry(requirement.key.value.as_str()).or_insert_with(|| {
                by_key.push(Vec::new());
                by_key.len() - 1
            });
            by_key[slot].push(requirement);
        }
        by_key.into_iter().find_map(|on_key| Self::conflict_on(&on_key))
    }

    /// The first conflict among the requirements on one key (all of them, in order).
    fn conflict_on(on_key: &[&Requirement]) -> Option<Conflict> {
        let key = on_key.first()?.key.value.as_str();
        let first = on_key[0].span;
        let mut allowed: Option<BTreeSet<&str>> = None;
        let mut forbidden: BTreeSet<&str> = BTreeSet::new();
        let mut must_exist = false;
        let mut must_not_exist = false;
        for requirement in on_key.iter().copied() {
            let values: BTreeSet<&str> = requirement.values.iter().map(|v| v.value.as_str()).collect();
            match requirement.operator {
                Operator::Equals | Operator::In => {
                    must_exist = true;
                    allowed = Some(match allowed {
                        Some(previous) => previous.intersection(&values).copied().collect(),
                        None => values,
                    });
                }
                Operator::NotEquals | Operator::NotIn => forbidden.extend(values),
                Operator::Exists => must_exist = true,
                Operator::DoesNotExist => must_not_exist = true,
            }
            let reason = if must_exist && must_not_exist {
                Some(format!("`{key}` is required both to be present and to be absent"))
            } else if allowed.as_ref().is_some_and(|a| a.is_empty()) {
                Some(format!("no single value of `{key}` satisfies both"))
            } else if allowed.as_ref().is_some_and(|a| a.is_subset(&forbidden)) {
                Some(format!("every value allowed for `{key}` is also excluded"))
            } else {
                None
            };
            if let Some(reason) = reason {
                return Some(Conflict { key: key.to_string(), first, second: requirement.span, reason });
            }
        }
        None
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, requirement) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{requirement}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requirement(key: &str, operator: Operator, values: &[&str], at: usize) -> Requirement {
        let span = Span::new(at, at + 1);
        Requirement {
            key: Spanned::new(key.to_string(), span),
            operator,
            values: values.iter().map(|v| Spanned::new(v.to_string(), span)).collect(),
            span,
        }
    }

    fn selector(requirements: Vec<Requirement>) -> Selector {
        Selector { requirements, span: Span::default() }
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn matches_like_kubernetes() {
        use Operator::*;
        let pod = labels(&[("app", "rng"), ("tier", "web")]);
        let cases = [
            (requirement("app", Equals, &["rng"], 0), true),
            (requirement("app", Equals, &["web"], 0), false),
            (requirement("app", NotEquals, &["web"], 0), true),
            (requirement("missing", NotEquals, &["x"], 0), true),
            (requirement("tier", In, &["db", "web"], 0), true),
            (requirement("tier", NotIn, &["db", "web"], 0), false),
            (requirement("missing", NotIn, &["x"], 0), true),
            (requirement("app", Exists, &[], 0), true),
            (requirement("canary", DoesNotExist, &[], 0), true),
            (requirement("app", DoesNotExist, &[], 0), false),
        ];
        for (requirement, expected) in cases {
            assert_eq!(requirement.matches(&pod), expected, "{requirement}");
        }
    }

    #[test]
    fn prints_canonically() {
        use Operator::*;
        let s = selector(vec![
            requirement("app", Equals, &["rng"], 0),
            requirement("env", In, &["a", "b"], 0),
            requirement("canary", DoesNotExist, &[], 0),
        ]);
        assert_eq!(s.to_string(), "app=rng,env in (a,b),!canary");
    }

    #[test]
    fn finds_selectors_that_never_match() {
        use Operator::*;
        let never = [
            vec![requirement("app", Equals, &["a"], 0), requirement("app", Equals, &["b"], 5)],
            vec![requirement("app", Equals, &["a"], 0), requirement("app", NotEquals, &["a"], 5)],
            vec![requirement("app", Exists, &[], 0), requirement("app", DoesNotExist, &[], 5)],
            vec![requirement("app", In, &["a", "b"], 0), requirement("app", NotIn, &["a", "b"], 5)],
            vec![requirement("app", In, &[], 0)],
            vec![
                requirement("x", Exists, &[], 9),
                requirement("app", In, &["a"], 0),
                requirement("app", Equals, &["b"], 5),
            ],
        ];
        for requirements in never {
            let s = selector(requirements);
            let conflict = s.conflict().unwrap_or_else(|| panic!("{s} should never match"));
            assert_eq!(conflict.key, "app");
        }
        let fine = [
            vec![requirement("app", Equals, &["a"], 0), requirement("tier", Equals, &["b"], 5)],
            vec![requirement("app", In, &["a", "b"], 0), requirement("app", NotEquals, &["a"], 5)],
            vec![requirement("app", NotEquals, &["a"], 0), requirement("app", DoesNotExist, &[], 5)],
        ];
        for requirements in fine {
            let s = selector(requirements);
            assert_eq!(s.conflict(), None, "{s}");
        }
    }

    #[test]
    fn reports_where_the_conflict_starts_and_ends() {
        use Operator::*;
        let s = selector(vec![requirement("app", Equals, &["a"], 0), requirement("app", Equals, &["b"], 8)]);
        let conflict = s.conflict().unwrap();
        assert_eq!((conflict.first.start, conflict.second.start), (0, 8));
    }
}
