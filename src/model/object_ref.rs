//! Object kinds and kubectl-style references (`deploy/rng`, `svc/rng`, `po/web-0`).

use std::fmt;

use crate::span::Spanned;

/// The kinds a script can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Kind {
    Pod,
    Deployment,
    ReplicaSet,
    DaemonSet,
    StatefulSet,
    Service,
}

impl Kind {
    pub const ALL: [Kind; 6] =
        [Kind::Pod, Kind::Deployment, Kind::ReplicaSet, Kind::DaemonSet, Kind::StatefulSet, Kind::Service];

    /// Every spelling kubectl accepts for the kind: singular, plural, short name, with group.
    pub fn spellings(self) -> &'static [&'static str] {
        match self {
            Kind::Pod => &["pod", "pods", "po"],
            Kind::Deployment => &["deployment", "deployments", "deploy", "deployment.apps", "deployments.apps"],
            Kind::ReplicaSet => &["replicaset", "replicasets", "rs", "replicaset.apps", "replicasets.apps"],
            Kind::DaemonSet => &["daemonset", "daemonsets", "ds", "daemonset.apps", "daemonsets.apps"],
            Kind::StatefulSet => &["statefulset", "statefulsets", "sts", "statefulset.apps", "statefulsets.apps"],
            Kind::Service => &["service", "services", "svc"],
        }
    }

    /// Reads a kind as kubectl would (case-insensitive).
    pub fn parse(text: &str) -> Option<Kind> {
        let lower = text.to_ascii_lowercase();
        Kind::ALL.into_iter().find(|kind| kind.spellings().contains(&lower.as_str()))
    }

    /// Every accepted spelling, for "did you mean".
    pub fn all_spellings() -> impl Iterator<Item = &'static str> {
        Kind::ALL.into_iter().flat_map(|kind| kind.spellings().iter().copied())
    }

    /// The canonical lowercase singular name, as written in canonical scripts.
    pub fn name(self) -> &'static str {
        self.spellings()[0]
    }

    /// The API kind, as in manifests.
    pub fn api_kind(self) -> &'static str {
        match self {
            Kind::Pod => "Pod",
            Kind::Deployment => "Deployment",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::DaemonSet => "DaemonSet",
            Kind::StatefulSet => "StatefulSet",
            Kind::Service => "Service",
        }
    }

    /// The API version its objects are served at.
    pub fn api_version(self) -> &'static str {
        match self {
            Kind::Pod | Kind::Service => "v1",
            Kind::Deployment | Kind::ReplicaSet | Kind::DaemonSet | Kind::StatefulSet => "apps/v1",
        }
    }

    /// The kind of an object by its `apiVersion` and `kind`: a custom resource of another group
    /// that happens to be called `Service` (Knative's) is none of these.
    pub fn from_api_type(api_version: &str, kind: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.api_kind() == kind && k.api_version() == api_version)
    }

    /// Kinds that own pods through a pod template.
    pub fn is_controller(self) -> bool {
        matches!(self, Kind::Deployment | Kind::ReplicaSet | Kind::DaemonSet | Kind::StatefulSet)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `kind/name`, keeping the kind as written (for faithful formatting and precise errors) beside
/// the kind it resolved to (`None` when unknown: the checker reports it).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ObjectRef {
    pub kind_text: Spanned<String>,
    pub kind: Option<Kind>,
    pub name: Spanned<String>,
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind_text.value, self.name.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kubectl_spellings() {
        assert_eq!(Kind::parse("deploy"), Some(Kind::Deployment));
        assert_eq!(Kind::parse("Deployments.apps"), Some(Kind::Deployment));
        assert_eq!(Kind::parse("svc"), Some(Kind::Service));
        assert_eq!(Kind::parse("ds"), Some(Kind::DaemonSet));
        assert_eq!(Kind::parse("rs"), Some(Kind::ReplicaSet));
        assert_eq!(Kind::parse("po"), Some(Kind::Pod));
        assert_eq!(Kind::parse("deamonset"), None);
        assert_eq!(Kind::from_api_type("apps/v1", "DaemonSet"), Some(Kind::DaemonSet));
        assert_eq!(Kind::parse("sts"), Some(Kind::StatefulSet));
        assert_eq!(Kind::parse("StatefulSets.apps"), Some(Kind::StatefulSet));
        assert_eq!(Kind::from_api_type("apps/v1", "StatefulSet"), Some(Kind::StatefulSet));
    }

    #[test]
    fn an_object_is_one_of_these_kinds_only_in_its_own_api_group() {
        assert_eq!(Kind::from_api_type("v1", "Service"), Some(Kind::Service));
        assert_eq!(Kind::from_api_type("v1", "Pod"), Some(Kind::Pod));
        assert_eq!(Kind::from_api_type("apps/v1", "Deployment"), Some(Kind::Deployment));
        // Knative's Service, a custom resource: the view watches no such objects.
        assert_eq!(Kind::from_api_type("serving.knative.dev/v1", "Service"), None);
        assert_eq!(Kind::from_api_type("v1", "Deployment"), None);
    }
}
