//! `apply` and `convert`: server-side apply with one field manager, into the scenario's namespace.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::{ApiCapabilities, Scope, pinned_kind};

use super::StepError;
use crate::check::manifests::manifest_files;

pub const FIELD_MANAGER: &str = "rehearse";

/// Reads the YAML documents of a file, a directory of files, or inline text.
pub fn documents_from_path(path: &Path) -> Result<Vec<serde_json::Value>, StepError> {
    let files = manifest_files(path).map_err(|e| StepError::Failed(format!("cannot read {}: {e}", path.display())))?;
    let mut documents = Vec::new();
    for file in files {
        let text = crate::input::read_text(&file, crate::input::MANIFEST_LIMIT)
            .map_err(|e| StepError::Failed(format!("cannot read {}: {e}", file.display())))?;
        documents
            .extend(documents_from_text(&text).map_err(|e| StepError::Failed(format!("{}: {e}", file.display())))?);
    }
    Ok(documents)
}

/// The same reader and limits `check` uses (see [`crate::input::yaml_documents`]).
pub fn documents_from_text(text: &str) -> Result<Vec<serde_json::Value>, String> {
    crate::input::yaml_documents(text)
}

/// What discovery said of each kind, asked once per run rather than once per manifest.
#[derive(Default)]
pub struct Resources(Mutex<HashMap<GroupVersionKind, (ApiResource, ApiCapabilities)>>);

impl Resources {
    async fn resolve(
        &self,
        client: &Client,
        gvk: &GroupVersionKind,
    ) -> Result<(ApiResource, ApiCapabilities), kube::Error> {
        if let Some(found) = self.0.lock().unwrap_or_else(|e| e.into_inner()).get(gvk) {
            return Ok(found.clone());
        }
        let found = pinned_kind(client, gvk).await?;
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(gvk.clone(), found.clone());
        Ok(found)
    }
}

/// Applies each document into the namespace; returns the objects as the API stored them.
pub async fn apply_all(
    client: &Client,
    resources: &Resources,
    namespace: &str,
    documents: Vec<serde_json::Value>,
) -> Result<Vec<DynamicObject>, StepError> {
    if documents.is_empty() {
        // kubectl's "no objects passed to apply"; `check` reports it with the place.
        return Err(StepError::Failed("no objects to apply".into()));
    }
    let mut applied = Vec::new();
    for mut document in documents {
        let api_version = document["apiVersion"].as_str().unwrap_or_default().to_string();
        let kind = document["kind"].as_str().unwrap_or_default().to_string();
        let name = document["metadata"]["name"].as_str().unwrap_or_default().to_string();
        if api_version.is_empty() || kind.is_empty() || name.is_empty() {
            return Err(StepError::Failed("a manifest needs apiVersion, kind and metadata.name".into()));
        }
        let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
        let gvk = GroupVersionKind::gvk(group, version, &kind);
        let (resource, capabilities) = resources.resolve(client, &gvk).await.map_err(|e| match e {
            // A version the built-in cluster does not serve, and says why.
            kube::Error::Api(status) if status.reason == crate::cluster::sim::error::NOT_RUN => {
                StepError::from(kube::Error::Api(status))
            }
            kube::Error::Api(_) | kube::Error::Discovery(_) => {
                StepError::Failed(format!("the cluster does not serve {api_version} {kind}: {e}"))
            }
            other => StepError::from(other),
        })?;
        if capabilities.scope != Scope::Namespaced {
            return Err(StepError::refused(format!(
                "{kind}/{name} is cluster-scoped; a scenario changes only its own namespace"
            )));
        }
        document["metadata"]["namespace"] = namespace.into();
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
        applied.push(api.patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&document)).await?);
    }
    Ok(applied)
}

/// The runbook's recipe: the Deployment as a DaemonSet, without replicas, strategy,
/// progressDeadlineSeconds, status and server-set metadata.
pub fn daemonset_from_deployment(deployment: &serde_json::Value) -> serde_json::Value {
    let metadata = &deployment["metadata"];
    let mut spec = deployment["spec"].clone();
    if let Some(spec) = spec.as_object_mut() {
        for field in ["replicas", "strategy", "progressDeadlineSeconds", "paused"] {
            spec.remove(field);
        }
    }
    let mut new_metadata = serde_json::json!({"name": metadata["name"]});
    if let Some(labels) = metadata.get("labels") {
        new_metadata["labels"] = labels.clone();
    }
    serde_json::json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": new_metadata, "spec": spec})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_like_the_runbook() {
        let deployment = serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "rng", "labels": {"app": "rng"}, "uid": "x", "resourceVersion": "5",
                         "annotations": {"deployment.kubernetes.io/revision": "1"}},
            "spec": {"replicas": 3, "strategy": {"type": "RollingUpdate"}, "progressDeadlineSeconds": 600,
                     "selector": {"matchLabels": {"app": "rng"}}, "template": {"metadata": {"labels": {"app": "rng"}}}},
            "status": {"replicas": 3}
        });
        let daemonset = daemonset_from_deployment(&deployment);
        assert_eq!(
            daemonset,
            serde_json::json!({
                "apiVersion": "apps/v1", "kind": "DaemonSet",
                "metadata": {"name": "rng", "labels": {"app": "rng"}},
                "spec": {"selector": {"matchLabels": {"app": "rng"}}, "template": {"metadata": {"labels": {"app": "rng"}}}}
            })
        );
    }

    #[test]
    fn reads_multi_document_yaml() {
        let docs = documents_from_text("kind: A\n---\nkind: B\nmetadata: {labels: {x: \"yes\"}}\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1]["metadata"]["labels"]["x"], "yes");
        assert!(documents_from_text("a: [").is_err());
    }
}
