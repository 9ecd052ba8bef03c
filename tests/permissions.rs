//! A user the cluster does not allow a change is not a refusal of the change: on the testbed,
//! with a service account's token whose role lacks one verb, the step is the cluster's error
//! (exit 3), with or without `expect-refused`, and the namespace is still deleted.

mod common;

use common::{namespaces_left, rehearse, run, script};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

/// Deletes the cluster-scoped role, its binding and the account's namespace, however the test ends.
struct Cleanup {
    name: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop cannot await; a fresh runtime on its own thread does the deletes.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(async {
                let client = common::client().await;
                let dp = DeleteParams::default();
                let _ = Api::<ClusterRoleBinding>::all(client.clone()).delete(&name, &dp).await;
                let _ = Api::<ClusterRole>::all(client.clone()).delete(&name, &dp).await;
                let _ = Api::<Namespace>::all(client).delete(&name, &dp).await;
            })
        })
        .join();
    }
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    let strings = |items: &[&str]| Some(items.iter().map(|s| s.to_string()).collect());
    PolicyRule {
        api_groups: strings(groups),
        resources: strings(resources),
        verbs: verbs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// A kubeconfig for the testbed whose user is a service account that may do everything a
/// scenario does except patch pods.
async fn kubeconfig_without_pod_patch(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let client = common::client().await;
    let pp = PostParams::default();
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client.clone()).create(&pp, &namespace).await.unwrap();
    let account: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "nopatch"}})).unwrap();
    Api::<ServiceAccount>::namespaced(client.clone(), name).create(&pp, &account).await.unwrap();
    let everything = &["*"];
    let role = ClusterRole {
        metadata: kube::api::ObjectMeta { name: Some(name.into()), ..Default::default() },
        rules: Some(vec![
            rule(
                &["", "apps", "discovery.k8s.io", "autoscaling", "coordination.k8s.io", "events.k8s.io", "policy"],
                &[
                    "namespaces",
                    "services",
                    "endpoints",
                    "endpointslices",
                    "deployments",
                    "deployments/scale",
                    "replicasets",
                    "daemonsets",
                    "statefulsets",
                    "configmaps",
                    "secrets",
                    "nodes",
                    "events",
                    "leases",
                    "horizontalpodautoscalers",
                    "controllerrevisions",
                    "serviceaccounts",
                    "poddisruptionbudgets",
                ],
                everything,
            ),
            rule(&[""], &["pods"], &["get", "list", "watch", "create", "delete", "deletecollection"]),
        ]),
        ..Default::default()
    };
    Api::<ClusterRole>::all(client.clone()).create(&pp, &role).await.unwrap();
    let binding = ClusterRoleBinding {
        metadata: kube::api::ObjectMeta { name: Some(name.into()), ..Default::default() },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: name.into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: "nopatch".into(),
            namespace: Some(name.into()),
            ..Default::default()
        }]),
    };
    Api::<ClusterRoleBinding>::all(client.clone()).create(&pp, &binding).await.unwrap();
    let request = TokenRequest {
        spec: TokenRequestSpec { expiration_seconds: Some(600), ..Default::default() },
        ..Default::default()
    };
    let token = Api::<ServiceAccount>::namespaced(client, name)
        .create_token_request("nopatch", &pp, &request)
        .await
        .unwrap()
        .status
        .expect("a token")
        .token;

    testbed_kubeconfig_changed(dir, "nopatch.kubeconfig", |user, _| {
        user.auth_info = Some(kube::config::AuthInfo { token: Some(token.clone().into()), ..Default::default() });
    })
}

#[tokio::test]
async fn a_change_the_user_may_not_make_is_the_cluster_s_error_even_under_expect_refused() {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("rbac-test-{}", std::process::id());
    let _cleanup = Cleanup { name: name.clone() };
    let kubeconfig = kubeconfig_without_pod_patch(dir.path(), &name).await;
    for (file, step) in
        [("refused", "expect-refused label pods app=rng debug=yes"), ("plain", "label pods app=rng debug=yes")]
    {
        let text = format!(
            "scenario \"{file}\" {{\n    apply \"dockercoins/rng.yaml\"\n    wait rollout deployment/rng\n    {step}\n}}\n"
        );
        let path = script(dir.path(), &format!("{file}.rollout"), &text);
        let report = dir.path().join(format!("{file}.json"));
        let (code, output) = run(rehearse(&[
            "run",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--report",
            &format!("json={}", report.display()),
            path.to_str().unwrap(),
        ]));
        assert_eq!(code, 3, "{step}: {output}");
        assert!(output.contains("the kubeconfig's user is not allowed to do this"), "{step}: {output}");
        assert!(output.contains("cannot patch resource \"pods\""), "{step}: {output}");
        assert!(!output.contains("PASS"), "{step}: {output}");
        assert_eq!(namespaces_left(&report).await, Vec::<String>::new(), "{step}: {output}");
    }
}

/// The testbed's kubeconfig with `change` made to each of its users and clusters, written as JSON
/// (which is YAML) into `dir`.
fn testbed_kubeconfig_changed(
    dir: &std::path::Path,
    file: &str,
    change: impl Fn(&mut kube::config::NamedAuthInfo, &mut Vec<kube::config::NamedCluster>),
) -> std::path::PathBuf {
    let mut config = kube::config::Kubeconfig::read_from(common::kubeconfig()).unwrap();
    for user in &mut config.auth_infos {
        change(user, &mut config.clusters);
    }
    let path = dir.join(file);
    std::fs::write(&path, serde_json::to_string(&config).unwrap()).unwrap();
    path
}

#[test]
fn rejected_credentials_and_an_untrusted_certificate_are_said_at_once_for_what_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let text = "scenario \"ok\" {\n    apply \"dockercoins/rng.yaml\"\n}\n";
    let path = script(dir.path(), "ok.rollout", text);
    let bad_token = testbed_kubeconfig_changed(dir.path(), "token", |user, _| {
        user.auth_info =
            Some(kube::config::AuthInfo { token: Some("not-a-token".to_string().into()), ..Default::default() });
    });
    let untrusted = testbed_kubeconfig_changed(dir.path(), "ca", |_, clusters| {
        for cluster in clusters {
            if let Some(cluster) = cluster.cluster.as_mut() {
                cluster.certificate_authority_data = None;
                cluster.certificate_authority = None;
            }
        }
    });
    for (config, said) in [
        (&bad_token, "rejected the kubeconfig's credentials (401 Unauthorized)"),
        (&untrusted, "cannot be spoken to securely"),
    ] {
        let started = std::time::Instant::now();
        let (code, output) = run(rehearse(&["run", "--kubeconfig", config.to_str().unwrap(), path.to_str().unwrap()]));
        assert_eq!(code, 3, "{output}");
        assert!(output.contains(said) && output.contains("https://127.0.0.1:"), "{output}");
        assert!(!output.contains("does not answer") && !output.contains("Status {"), "{output}");
        // Not retried as an outage would be: the first contact gives up on silence after 12 s.
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}: {output}", started.elapsed());
    }
}
