//! The testbed runs real controllers: these are the runbook's facts, observed through kube-rs on
//! the real API server with kwok's fake nodes. Needs `tests/testbed/testbed.sh up`.

mod common;

use std::sync::Arc;

use common::{TIMEOUT, TestNamespace};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use rehearse::cluster::until;

fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "registry.k8s.io/pause:3.10"}]}
            }
        }
    }))
    .unwrap()
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        && pod.metadata.deletion_timestamp.is_none()
}

/// Waits until `count` pods matching `selector` are Ready; returns them.
async fn ready_pods(pods: &Api<Pod>, selector: &str, count: usize) -> Vec<Arc<Pod>> {
    until(pods.clone(), watcher::Config::default().labels(selector), TIMEOUT, |all| {
        let ready: Vec<Arc<Pod>> = all.iter().filter(|p| is_ready(p)).cloned().collect();
        (ready.len() == count).then_some(ready)
    })
    .await
    .unwrap_or_else(|e| panic!("{count} ready pods with {selector}: {e:?}"))
}

#[tokio::test]
async fn nodes_look_like_a_kind_cluster() {
    let client = common::client().await;
    let nodes = Api::<Node>::all(client).list(&ListParams::default()).await.unwrap();
    let mut names: Vec<String> = nodes.items.iter().filter_map(|n| n.metadata.name.clone()).collect();
    names.sort();
    assert_eq!(names, ["rehearse-control-plane", "rehearse-worker", "rehearse-worker2"]);
    let control_plane =
        nodes.items.iter().find(|n| n.metadata.name.as_deref() == Some("rehearse-control-plane")).unwrap();
    let taints = control_plane.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
    assert!(taints.iter().any(|t| t.key == "node-role.kubernetes.io/control-plane" && t.effect == "NoSchedule"));
}

#[tokio::test]
async fn a_deployment_makes_a_replicaset_with_pod_template_hash_and_ready_pods() {
    let client = common::client().await;
    let ns = TestNamespace::new(&client, "smoke-deploy").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    deployments.create(&PostParams::default(), &deployment("rng", 3)).await.unwrap();

    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns.name);
    let rs = until(replica_sets, watcher::Config::default(), TIMEOUT, |all| all.first().cloned()).await.unwrap();
    let match_labels = rs.spec.as_ref().unwrap().selector.match_labels.clone().unwrap();
    assert_eq!(match_labels.get("app").map(String::as_str), Some("rng"));
    assert!(match_labels.contains_key("pod-template-hash"), "{match_labels:?}");

    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    let ready = ready_pods(&pods, "app=rng", 3).await;
    for pod in ready {
        let node = pod.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap();
        assert_ne!(node, "rehearse-control-plane", "the tainted control plane must not run pods");
    }
}

#[tokio::test]
async fn a_daemonset_gets_one_pod_per_schedulable_node() {
    let client = common::client().await;
    let ns = TestNamespace::new(&client, "smoke-ds").await;
    let mut daemonset: serde_json::Value = serde_json::to_value(deployment("rng", 1)).unwrap();
    daemonset["spec"].as_object_mut().unwrap().remove("replicas");
    daemonset["kind"] = "DaemonSet".into();
    let daemonset: DaemonSet = serde_json::from_value(daemonset).unwrap();
    Api::<DaemonSet>::namespaced(client.clone(), &ns.name).create(&PostParams::default(), &daemonset).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    let ready = ready_pods(&pods, "app=rng", 2).await;
    let mut nodes: Vec<String> = ready.iter().filter_map(|p| p.spec.as_ref()?.node_name.clone()).collect();
    nodes.sort();
    assert_eq!(nodes, ["rehearse-worker", "rehearse-worker2"]);
}

#[tokio::test]
async fn endpoint_slices_follow_ready_pods_and_label_changes() {
    let client = common::client().await;
    let ns = TestNamespace::new(&client, "smoke-eps").await;
    Api::<Deployment>::namespaced(client.clone(), &ns.name)
        .create(&PostParams::default(), &deployment("rng", 3))
        .await
        .unwrap();
    let service: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "rng"},
        "spec": {"selector": {"app": "rng"}, "ports": [{"port": 80}]}
    }))
    .unwrap();
    Api::<Service>::namespaced(client.clone(), &ns.name).create(&PostParams::default(), &service).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    let ready = ready_pods(&pods, "app=rng", 3).await;

    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), &ns.name);
    let by_service = watcher::Config::default().labels("kubernetes.io/service-name=rng");
    let endpoint_pods = |all: &[Arc<EndpointSlice>]| -> Vec<String> {
        let mut names: Vec<String> = all
            .iter()
            .flat_map(|s| s.endpoints.iter())
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
            .filter_map(|e| e.target_ref.as_ref()?.name.clone())
            .collect();
        names.sort();
        names
    };
    let mut expected: Vec<String> = ready.iter().filter_map(|p| p.metadata.name.clone()).collect();
    expected.sort();
    let want = expected.clone();
    until(slices.clone(), by_service.clone(), TIMEOUT, |all| (endpoint_pods(all) == want).then_some(()))
        .await
        .expect("the slices list exactly the three ready pods");

    // Narrow the selector: no pod has active=yes, so no endpoints.
    let patch = serde_json::json!({"spec": {"selector": {"app": "rng", "active": "yes"}}});
    Api::<Service>::namespaced(client.clone(), &ns.name)
        .patch("rng", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    until(slices.clone(), by_service.clone(), TIMEOUT, |all| endpoint_pods(all).is_empty().then_some(()))
        .await
        .expect("no endpoints once the selector needs active=yes");

    // Label one pod: it alone comes back.
    let chosen = expected[0].clone();
    let label = serde_json::json!({"metadata": {"labels": {"active": "yes"}}});
    pods.patch(&chosen, &PatchParams::default(), &Patch::Merge(&label)).await.unwrap();
    let want = vec![chosen.clone()];
    until(slices, by_service, TIMEOUT, |all| (endpoint_pods(all) == want).then_some(()))
        .await
        .expect("only the labelled pod is an endpoint");
}

#[tokio::test]
async fn removing_a_selected_label_orphans_the_pod_and_adding_it_back_gets_it_adopted() {
    let client = common::client().await;
    let ns = TestNamespace::new(&client, "smoke-orphan").await;
    Api::<Deployment>::namespaced(client.clone(), &ns.name)
        .create(&PostParams::default(), &deployment("rng", 3))
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    let ready = ready_pods(&pods, "app=rng", 3).await;
    let victim = ready[0].metadata.name.clone().unwrap();
    let victim_labels = ready[0].metadata.labels.clone().unwrap();

    // Release it: the replica set no longer selects it and makes a replacement.
    let unlabel = serde_json::json!({"metadata": {"labels": {"app": null}}});
    pods.patch(&victim, &PatchParams::default(), &Patch::Merge(&unlabel)).await.unwrap();
    let name = victim.clone();
    until(pods.clone(), watcher::Config::default(), TIMEOUT, |all| {
        let orphan = all.iter().find(|p| p.metadata.name.as_ref() == Some(&name))?;
        let released = orphan.metadata.owner_references.as_ref().is_none_or(|o| o.is_empty());
        let replacements = all.iter().filter(|p| p.metadata.name.as_ref() != Some(&name) && is_ready(p)).count();
        (released && replacements == 3).then_some(())
    })
    .await
    .expect("the victim is orphaned and three other pods are ready");

    // A bare pod with the replica set's labels is adopted, and the replica set trims back to 3.
    let relabel = serde_json::json!({"metadata": {"labels": {"app": "rng"}}});
    pods.patch(&victim, &PatchParams::default(), &Patch::Merge(&relabel)).await.unwrap();
    let hash = victim_labels.get("pod-template-hash").unwrap().clone();
    let selector = format!("app=rng,pod-template-hash={hash}");
    until(pods.clone(), watcher::Config::default().labels(&selector), TIMEOUT, |all| {
        let live: Vec<_> = all.iter().filter(|p| p.metadata.deletion_timestamp.is_none()).collect();
        let all_owned = live.iter().all(|p| p.metadata.owner_references.as_ref().is_some_and(|o| !o.is_empty()));
        (live.len() == 3 && all_owned).then_some(())
    })
    .await
    .expect("back to three owned pods");
}
