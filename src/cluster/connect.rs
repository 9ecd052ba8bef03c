//! Connecting like kubectl: `KUBECONFIG` or `--kubeconfig`, the current context or `--context`.
//! Scenarios change the cluster, so only contexts that look like throwaway clusters are accepted
//! unless named with `--allow-context`.

use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// Context name prefixes of clusters made to be thrown away.
const THROWAWAY_PREFIXES: [&str; 4] = ["kind-", "kwok-", "k3d-", "minikube"];

#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub allowed_contexts: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot read the kubeconfig{}: {source}", path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    Kubeconfig { path: Option<PathBuf>, source: kube::config::KubeconfigError },
    #[error("the kubeconfig has no current context; name one with --context")]
    NoContext,
    #[error(
        "refusing to run against context `{0}`: it does not look like a throwaway cluster \
         (kind-*, kwok-*, k3d-*, minikube). Scenarios create and delete objects; if this cluster \
         is meant for that, pass --allow-context {0}"
    )]
    NotThrowaway(String),
    #[error("cannot build a client for context `{context}`: {source}")]
    Client { context: String, source: Box<dyn std::error::Error + Send + Sync> },
}

/// A client and the context it was made from.
#[derive(Clone)]
pub struct Connection {
    pub client: Client,
    pub context: String,
}

pub fn is_throwaway(context: &str, allowed: &[String]) -> bool {
    THROWAWAY_PREFIXES.iter().any(|p| context.starts_with(p)) || allowed.iter().any(|a| a == context)
}

/// Reads the kubeconfig, picks the context, refuses non-throwaway ones, and builds a client.
pub async fn connect(options: &ConnectOptions) -> Result<Connection, ConnectError> {
    let kubeconfig = match &options.kubeconfig {
        Some(path) => Kubeconfig::read_from(path),
        None => Kubeconfig::read(),
    }
    .map_err(|source| ConnectError::Kubeconfig { path: options.kubeconfig.clone(), source })?;
    let context =
        options.context.clone().or_else(|| kubeconfig.current_context.clone()).ok_or(ConnectError::NoContext)?;
    if !is_throwaway(&context, &options.allowed_contexts) {
        return Err(ConnectError::NotThrowaway(context));
    }
    let kube_options = KubeConfigOptions { context: Some(context.clone()), ..Default::default() };
    let config = Config::from_custom_kubeconfig(kubeconfig, &kube_options)
        .await
        .map_err(|e| ConnectError::Client { context: context.clone(), source: Box::new(e) })?;
    let client =
        Client::try_from(config).map_err(|e| ConnectError::Client { context: context.clone(), source: Box::new(e) })?;
    Ok(Connection { client, context })
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
        assert!(!is_throwaway("prod-eu-1", &[]));
        assert!(is_throwaway("staging", &["staging".to_string()]));
    }
}
