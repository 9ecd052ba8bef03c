//! Connecting like kubectl: `KUBECONFIG` or `--kubeconfig`, the current context or `--context`.
//! Scenarios change the cluster, so only contexts that look like throwaway clusters are accepted
//! unless named with `--allow-context`.

use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Client, Config};

use super::transport::{self, ApiHealth};

/// Context name prefixes of clusters made to be thrown away.
const THROWAWAY_PREFIXES: [&str; 3] = ["kind-", "kwok-", "k3d-"];
/// minikube names its context after its profile, `minikube` unless one is given.
const THROWAWAY_NAMES: [&str; 1] = ["minikube"];

#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub allowed_contexts: Vec<String>,
}

/// Where to find the testbed's kubeconfig, for messages about a missing one.
const TESTBED_HINT: &str = "the testbed writes one to ~/.cache/rehearse-testbed/run/kubeconfig when \
                            started with `bash tests/testbed/testbed.sh up`";

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The kubeconfig file named (or the default one) does not exist.
    #[error(
        "cannot read the kubeconfig {}: there is no such file ({named_by})\n  \
         point --kubeconfig or KUBECONFIG at an existing kubeconfig ({TESTBED_HINT})",
        path.display()
    )]
    KubeconfigMissing { path: PathBuf, named_by: &'static str },
    /// A kubeconfig that exists but cannot be read or parsed.
    #[error(
        "cannot read the kubeconfig{}: {source}\n  fix it, or point --kubeconfig or KUBECONFIG at another kubeconfig",
        path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default()
    )]
    Kubeconfig { path: Option<PathBuf>, source: kube::config::KubeconfigError },
    /// The chosen context, its cluster or its user cannot be loaded (missing, bad URL, certificates).
    #[error(
        "the kubeconfig's entries for context `{context}` are not usable: {source}\n  \
         fix the kubeconfig, or name another context with --context"
    )]
    Config { context: String, source: kube::config::KubeconfigError },
    #[error("{kubeconfig} has no current context; name one with --context")]
    NoContext { kubeconfig: String },
    /// `--context` (or the current context) names a context the kubeconfig does not have.
    #[error(
        "{kubeconfig} has no context `{context}`; it has: {}\n  name one of those with --context",
        if known.is_empty() { "none".to_string() } else { known.join(", ") }
    )]
    UnknownContext { context: String, kubeconfig: String, known: Vec<String> },
    #[error(
        "refusing to run against context `{0}`: it does not look like a throwaway cluster \
         (kind-*, kwok-*, k3d-*, minikube). Scenarios create and delete objects; if this cluster \
         is meant for that, pass --allow-context {0}"
    )]
    NotThrowaway(String),
    /// The client could not be built from a usable configuration.
    #[error("cannot build a client for context `{context}`: {source}")]
    Client { context: String, source: Box<dyn std::error::Error + Send + Sync> },
}

impl ConnectError {
    /// Whether the user's input is at fault (a missing or broken kubeconfig, a context that is
    /// not there or refused): exit 2. Otherwise the cluster or the machine is (exit 3).
    pub fn is_invalid_input(&self) -> bool {
        match self {
            ConnectError::KubeconfigMissing { .. }
            | ConnectError::Kubeconfig { .. }
            | ConnectError::Config { .. }
            | ConnectError::NoContext { .. }
            | ConnectError::UnknownContext { .. }
            | ConnectError::NotThrowaway(_) => true,
            ConnectError::Client { .. } => false,
        }
    }
}

/// Why the kubeconfig could not be read: a file that is not there says which, and who named it.
fn kubeconfig_error(options: &ConnectOptions, source: KubeconfigError) -> ConnectError {
    let env = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty());
    let named_by = if options.kubeconfig.is_some() {
        "named by --kubeconfig"
    } else if env.is_some() {
        "named by KUBECONFIG"
    } else {
        "the default path when neither --kubeconfig nor KUBECONFIG is given"
    };
    match source {
        KubeconfigError::ReadConfig(error, path) if error.kind() == std::io::ErrorKind::NotFound => {
            ConnectError::KubeconfigMissing { path, named_by }
        }
        KubeconfigError::ReadConfig(error, path) => {
            ConnectError::Kubeconfig { path: Some(path.clone()), source: KubeconfigError::ReadConfig(error, path) }
        }
        source => {
            let path = options.kubeconfig.clone().or_else(|| env.map(PathBuf::from));
            ConnectError::Kubeconfig { path, source }
        }
    }
}

/// The kubeconfig as kubectl reads it: `--kubeconfig`, else the files KUBECONFIG lists, merged
/// (those of a list that do not exist skipped, so long as one does), else ~/.kube/config.
fn read_kubeconfig(options: &ConnectOptions) -> Result<Kubeconfig, ConnectError> {
    if let Some(path) = &options.kubeconfig {
        return Kubeconfig::read_from(path).map_err(|source| kubeconfig_error(options, source));
    }
    let listed: Vec<PathBuf> = std::env::var_os("KUBECONFIG")
        .map(|value| std::env::split_paths(&value).filter(|p| !p.as_os_str().is_empty()).collect())
        .unwrap_or_default();
    let existing: Vec<&PathBuf> = listed.iter().filter(|path| path.exists()).collect();
    if listed.len() > 1 && !existing.is_empty() {
        return existing
            .into_iter()
            .try_fold(Kubeconfig::default(), |merged, path| Kubeconfig::read_from(path).and_then(|c| merged.merge(c)))
            .map_err(|source| kubeconfig_error(options, source));
    }
    Kubeconfig::read().map_err(|source| kubeconfig_error(options, source))
}

/// Which kubeconfig was read, for messages about its contents.
fn kubeconfig_source(options: &ConnectOptions) -> String {
    match (&options.kubeconfig, std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty())) {
        (Some(path), _) => format!("the kubeconfig {}", path.display()),
        (None, Some(list)) => format!("the kubeconfig {} (KUBECONFIG)", list.to_string_lossy()),
        (None, None) => "the kubeconfig ~/.kube/config".to_string(),
    }
}

/// A client and the context it was made from.
#[derive(Clone)]
pub struct Connection {
    pub client: Client,
    pub context: String,
    /// The API server's URL, for messages about it.
    pub server: String,
    /// What the client saw of the API server's outages.
    pub health: ApiHealth,
}

pub fn is_throwaway(context: &str, allowed: &[String]) -> bool {
    THROWAWAY_PREFIXES.iter().any(|p| context.starts_with(p))
        || THROWAWAY_NAMES.contains(&context)
        || allowed.iter().any(|a| a == context)
}

/// Reads the kubeconfig, picks the context, refuses non-throwaway ones, and builds a client.
pub async fn connect(options: &ConnectOptions) -> Result<Connection, ConnectError> {
    let kubeconfig = read_kubeconfig(options)?;
    let context = options
        .context
        .clone()
        .or_else(|| kubeconfig.current_context.clone())
        .ok_or_else(|| ConnectError::NoContext { kubeconfig: kubeconfig_source(options) })?;
    if !kubeconfig.contexts.iter().any(|c| c.name == context) {
        let known = kubeconfig.contexts.iter().map(|c| c.name.clone()).collect();
        return Err(ConnectError::UnknownContext { context, kubeconfig: kubeconfig_source(options), known });
    }
    if !is_throwaway(&context, &options.allowed_contexts) {
        return Err(ConnectError::NotThrowaway(context));
    }
    let kube_options = KubeConfigOptions { context: Some(context.clone()), ..Default::default() };
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &kube_options)
        .await
        .map_err(|source| ConnectError::Config { context: context.clone(), source })?;
    config.connect_timeout = Some(transport::CONNECT_TIMEOUT);
    let server = config.cluster_url.to_string();
    let default_namespace = config.default_namespace.clone();
    let base =
        Client::try_from(config).map_err(|e| ConnectError::Client { context: context.clone(), source: Box::new(e) })?;
    let health = ApiHealth::default();
    let client = Client::new(transport::Resilient::new(base, health.clone()), default_namespace);
    Ok(Connection { client, context, server, health })
}

#[cfg(test)]
mod tests {
    use super::is_throwaway;

    #[test]
    fn only_throwaway_contexts_unless_allowed() {
        assert!(is_throwaway("kind-dev", &[]));
        assert!(is_throwaway("kwok-rehearse", &[]));
        assert!(is_throwaway("k3d-x", &[]));
        assert!(is_throwaway("minikube", &[]));
        assert!(!is_throwaway("minikube-prod", &[]), "a profile's context is named after the profile alone");
        assert!(!is_throwaway("prod-eu-1", &[]));
        assert!(is_throwaway("staging", &["staging".to_string()]));
    }
}
