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

/// The objects of a manifest text, read with the reader and limits `check` uses (see
/// [`crate::input::yaml_documents`]), each list unpacked into its items.
pub fn documents_from_text(text: &str) -> Result<Vec<serde_json::Value>, String> {
    let mut objects = Vec::new();
    for document in crate::input::yaml_documents(text)? {
        objects.extend(unpack_list(document)?);
    }
    Ok(objects)
}

/// A document with a top-level `items` (what `kubectl get -o yaml` prints for several objects)
/// stands for its items, as kubectl applies it: `items: null` for none, and an item with neither
/// `apiVersion` nor `kind` takes the list's, less a `List` suffix (`ConfigMapList` gives
/// `ConfigMap`). Like kubectl, a list without a kind and a list inside a list are refused.
/// `check` reports each of these at its line.
fn unpack_list(document: serde_json::Value) -> Result<Vec<serde_json::Value>, String> {
    let serde_json::Value::Object(mut fields) = document else { return Ok(vec![document]) };
    let Some(items) = fields.remove("items") else { return Ok(vec![serde_json::Value::Object(fields)]) };
    let items = match items {
        serde_json::Value::Null => Vec::new(),
        serde_json::Value::Array(items) => items,
        _ => return Err("the `items` of a list is not a list of objects".into()),
    };
    let Some(list_kind) = fields.get("kind").and_then(|kind| kind.as_str()).filter(|kind| !kind.is_empty()) else {
        return Err("a list without a `kind` is not applied (kubectl: \"Object 'Kind' is missing\")".into());
    };
    let item_kind = Some(list_kind.strip_suffix("List").unwrap_or(list_kind)).filter(|kind| !kind.is_empty());
    items
        .into_iter()
        .map(|mut item| {
            if item.get("items").is_some() {
                return Err("a list inside a list is not applied: write its items in the outer list".into());
            }
            // kubectl's test: both empty, a field that is no text counting as empty.
            let unset = |field: &str| item.get(field).and_then(|value| value.as_str()).is_none_or(str::is_empty);
            if let Some(kind) = item_kind
                && unset("apiVersion")
                && unset("kind")
                && let Some(object) = item.as_object_mut()
            {
                object.insert("kind".into(), kind.into());
                object.insert("apiVersion".into(), fields.get("apiVersion").cloned().unwrap_or_default());
            }
            Ok(item)
        })
        .collect()
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

    /// The API of a kind, by a manifest's apiVersion and kind, in the namespace.
    pub async fn api(
        &self,
        client: &Client,
        namespace: &str,
        api_version: &str,
        kind: &str,
    ) -> Result<Api<DynamicObject>, kube::Error> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let (resource, _) = self.resolve(client, &GroupVersionKind::gvk(group, version, kind)).await?;
        Ok(Api::namespaced_with(client.clone(), namespace, &resource))
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
        let (resource, capabilities) = match resources.resolve(client, &gvk).await {
            Ok(found) => found,
            Err(e) => return Err(unresolved(client, &api_version, &kind, e).await),
        };
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

/// Why discovery found no resource for a manifest's apiVersion and kind, in words that say what
/// to fix: a version the cluster serves not at all (a misspelt apiVersion, or a custom resource
/// whose definition is not there yet), or a kind it does not serve in it ("did you mean").
async fn unresolved(client: &Client, api_version: &str, kind: &str, error: kube::Error) -> StepError {
    match error {
        // A version the built-in cluster does not serve, and says why.
        kube::Error::Api(status) if status.reason == crate::cluster::sim::error::NOT_RUN => {
            StepError::from(kube::Error::Api(status))
        }
        kube::Error::Api(status) if status.code == 404 => StepError::Failed(format!(
            "the cluster serves no {api_version}: check the manifest's apiVersion (a custom resource needs its \
             CustomResourceDefinition applied first)"
        )),
        kube::Error::Discovery(kube::error::DiscoveryError::MissingKind(_)) => {
            let served = if api_version.contains('/') {
                client.list_api_group_resources(api_version).await
            } else {
                client.list_core_api_resources(api_version).await
            };
            let kinds: Vec<String> = served
                .map(|list| list.resources.into_iter().filter(|r| !r.name.contains('/')).map(|r| r.kind).collect())
                .unwrap_or_default();
            let hint = crate::diagnostic::did_you_mean(kind, kinds.iter().map(String::as_str))
                .map(|near| format!("; did you mean {near}?"))
                .unwrap_or_default();
            StepError::Failed(format!("the cluster serves {api_version} but no kind {kind} in it{hint}"))
        }
        e @ (kube::Error::Api(_) | kube::Error::Discovery(_)) => {
            StepError::Failed(format!("the cluster does not serve {api_version} {kind}: {e}"))
        }
        other => StepError::from(other),
    }
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

    #[test]
    fn unpacks_lists_as_kubectl_does() {
        let text = "apiVersion: v1\nitems:\n- {apiVersion: v1, kind: Service, metadata: {name: a}}\n\
                    - {metadata: {name: b}}\nkind: List\n---\n\
                    apiVersion: v1\nkind: ConfigMapList\nitems:\n- {metadata: {name: c}}\n- {kind: Secret, metadata: {name: d}}\n---\n\
                    kind: List\nitems: null\n---\n{apiVersion: v1, kind: ConfigMap, metadata: {name: e}}\n";
        let objects = documents_from_text(text).unwrap();
        let named = |object: &serde_json::Value| {
            let field = |f: &str| object[f].as_str().unwrap_or("-").to_string();
            format!("{} {} {}", field("apiVersion"), field("kind"), object["metadata"]["name"].as_str().unwrap())
        };
        assert_eq!(
            objects.iter().map(named).collect::<Vec<_>>(),
            ["v1 Service a", "- - b", "v1 ConfigMap c", "- Secret d", "v1 ConfigMap e"],
            "`List` gives its items no kind; a typed list does, unless the item has one"
        );
        let nested = "kind: List\nitems:\n- {kind: List, items: []}\n";
        assert_eq!(
            documents_from_text(nested).unwrap_err(),
            "a list inside a list is not applied: write its items in the outer list"
        );
        assert_eq!(
            documents_from_text("kind: List\nitems: 5\n").unwrap_err(),
            "the `items` of a list is not a list of objects"
        );
        assert!(documents_from_text("kind: List\nitems: []\n").unwrap().is_empty());
        let untyped = documents_from_text("apiVersion: v1\nkind: ConfigMap\nitems: [{metadata: {name: f}}]\n").unwrap();
        assert_eq!(untyped[0]["kind"], "ConfigMap", "kubectl trims a `List` suffix, if there is one");
        assert!(documents_from_text("items: [{apiVersion: v1, kind: ConfigMap}]\n").unwrap_err().contains("`kind`"));
    }
}
