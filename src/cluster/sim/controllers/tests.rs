//! The controllers against the testbed's rules, on a store driven in virtual time.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::{Instant, sleep_until};

use super::super::Pace;
use super::super::clock::Clock;
use super::super::resources::{
    self, CONTROLLER_REVISION, DAEMON_SET, DEPLOYMENT, ENDPOINT_SLICE, NAMESPACE, POD, REPLICA_SET, Resource, SERVICE,
    STATEFUL_SET,
};
use super::super::store::{ChangeType, Store};
use super::{Controllers, default_nodes, is_deleting, is_ready, label, name, parse_time, phase};

const NS: &str = "ns";

struct Cluster {
    store: Store,
    controllers: Controllers,
}

impl Cluster {
    fn new(pace: Pace) -> Cluster {
        let mut store = Store::new(Clock::default());
        for node in default_nodes(2, pace) {
            store.create(resources::NODE, "", node).unwrap();
        }
        store.create(NAMESPACE, "", json!({"metadata": {"name": NS}})).unwrap();
        Cluster { store, controllers: Controllers::new(pace) }
    }

    fn create(&mut self, resource: Resource, object: Value) -> Value {
        let created = self.store.create(resource, NS, object).unwrap();
        self.controllers.reconcile(&mut self.store);
        (*created).clone()
    }

    fn get(&self, resource: Resource, name: &str) -> Value {
        self.store.get(resource, NS, name).cloned().unwrap_or_else(|| panic!("{name} is missing"))
    }

    /// Applies a change to an object as a client's update would, then lets the controllers run.
    fn change(&mut self, resource: Resource, name: &str, edit: impl FnOnce(&mut Value)) {
        let mut object = self.get(resource, name);
        edit(&mut object);
        self.store.update(resource, NS, object).unwrap();
        self.controllers.reconcile(&mut self.store);
    }

    fn list(&self, resource: Resource) -> Vec<Value> {
        self.store.list(resource, Some(NS)).cloned().collect()
    }

    fn pods(&self) -> Vec<Value> {
        self.list(POD)
    }

    /// Lets `seconds` of virtual time pass, running the controllers whenever they asked to be.
    async fn wait(&mut self, seconds: u64) {
        let end = Instant::now() + Duration::from_secs(seconds);
        for _ in 0..10_000 {
            match self.controllers.reconcile(&mut self.store) {
                Some(due) if due <= end => sleep_until(due).await,
                _ => {
                    sleep_until(end).await;
                    self.controllers.reconcile(&mut self.store);
                    return;
                }
            }
        }
        panic!("the controllers kept asking to be woken");
    }

    /// Replays the change log from `since`, calling `check` with the objects of one kind as they
    /// were after each change to that kind.
    fn replay(&self, since: u64, resource: Resource, mut check: impl FnMut(&BTreeMap<String, Value>)) {
        let mut objects: BTreeMap<String, Value> = BTreeMap::new();
        for change in self.store.changes_since(0).unwrap() {
            if change.resource != resource || change.namespace != NS {
                continue;
            }
            let object = change.object();
            let key = name(&object).to_string();
            match change.change {
                ChangeType::Deleted => {
                    objects.remove(&key);
                }
                _ => {
                    objects.insert(key, object);
                }
            }
            if change.resource_version > since {
                check(&objects);
            }
        }
    }
}

fn deployment(name: &str, replicas: i64, version: &str) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": name, "image": format!("{name}:{version}")}]},
            },
        },
    })
}

fn condition<'a>(object: &'a Value, kind: &str) -> &'a Value {
    object["status"]["conditions"].as_array().and_then(|c| c.iter().find(|c| c["type"] == kind)).unwrap_or(&Value::Null)
}

fn image(pod: &Value) -> &str {
    pod["spec"]["containers"][0]["image"].as_str().unwrap_or_default()
}

#[tokio::test(start_paused = true)]
async fn a_deployment_creates_its_replica_set_and_pods_and_reports_rolled_out() {
    let mut cluster = Cluster::new(Pace::Fast);
    let created = cluster.create(DEPLOYMENT, deployment("web", 3, "v1"));

    let sets = cluster.list(REPLICA_SET);
    assert_eq!(sets.len(), 1);
    let rs = &sets[0];
    let hash = label(rs, "pod-template-hash").unwrap();
    assert_eq!(name(rs), format!("web-{hash}"));
    assert_eq!(rs["spec"]["selector"]["matchLabels"], json!({"app": "web", "pod-template-hash": hash}));
    assert_eq!(rs["spec"]["template"]["metadata"]["labels"], json!({"app": "web", "pod-template-hash": hash}));
    assert_eq!(rs["metadata"]["ownerReferences"][0]["uid"], created["metadata"]["uid"]);
    assert_eq!(rs["metadata"]["ownerReferences"][0]["controller"], true);
    assert_eq!(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "1");
    assert_eq!(rs["status"]["readyReplicas"], 3);

    let pods = cluster.pods();
    assert_eq!(pods.len(), 3);
    for pod in &pods {
        assert!(name(pod).starts_with(&format!("web-{hash}-")), "{}", name(pod));
        assert_eq!(pod["status"]["phase"], "Running");
        assert!(is_ready(pod));
        assert_ne!(pod["spec"]["nodeName"], "rehearse-control-plane");
        assert_eq!(pod["spec"]["terminationGracePeriodSeconds"], 30);
        assert!(pod["status"]["podIP"].as_str().unwrap().starts_with("10.244."));
    }
    // Spread: the fewest pods first, ties by node name.
    let on_worker = pods.iter().filter(|p| p["spec"]["nodeName"] == "rehearse-worker").count();
    assert_eq!(on_worker, 2);

    let d = cluster.get(DEPLOYMENT, "web");
    let status = &d["status"];
    assert_eq!((status["replicas"].clone(), status["updatedReplicas"].clone()), (json!(3), json!(3)));
    assert_eq!((status["readyReplicas"].clone(), status["availableReplicas"].clone()), (json!(3), json!(3)));
    assert_eq!(status["observedGeneration"], 1);
    assert!(status.get("unavailableReplicas").is_none());
    assert_eq!(condition(&d, "Available")["status"], "True");
    assert_eq!(condition(&d, "Available")["reason"], "MinimumReplicasAvailable");
    assert_eq!(condition(&d, "Progressing")["reason"], "NewReplicaSetAvailable");
    assert_eq!(
        condition(&d, "Progressing")["message"],
        format!("ReplicaSet \"web-{hash}\" has successfully progressed.")
    );
    assert_eq!(d["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "1");

    // Settled: another pass writes nothing.
    let version = cluster.store.resource_version();
    assert_eq!(cluster.controllers.reconcile(&mut cluster.store), None);
    assert_eq!(cluster.store.resource_version(), version);
}

#[tokio::test(start_paused = true)]
async fn a_template_change_rolls_over_within_max_surge_and_max_unavailable() {
    let mut cluster = Cluster::new(Pace::Kind);
    cluster.create(DEPLOYMENT, deployment("web", 4, "v1"));
    cluster.wait(10).await;
    assert_eq!(cluster.get(DEPLOYMENT, "web")["status"]["availableReplicas"], 4);
    let since = cluster.store.resource_version();

    cluster.change(DEPLOYMENT, "web", |d| d["spec"]["template"]["spec"]["containers"][0]["image"] = "web:v2".into());
    cluster.wait(200).await;

    // 25% of 4: maxSurge 1, maxUnavailable 1.
    cluster.replay(since, REPLICA_SET, |sets| {
        let total: i64 = sets.values().map(|rs| rs["spec"]["replicas"].as_i64().unwrap()).sum();
        assert!(total <= 5, "{total} replicas wanted at once");
    });
    let mut max_live = 0;
    cluster.replay(since, POD, |pods| {
        let serving = pods.values().filter(|p| is_ready(p) && !is_deleting(p)).count();
        assert!(serving >= 3, "only {serving} pods ready");
        let live = pods.values().filter(|p| !is_deleting(p)).count();
        max_live = max_live.max(live);
    });
    assert_eq!(max_live, 5);

    let pods = cluster.pods();
    assert_eq!(pods.len(), 4);
    assert!(pods.iter().all(|p| image(p) == "web:v2" && is_ready(p)));
    let d = cluster.get(DEPLOYMENT, "web");
    assert_eq!(d["status"]["updatedReplicas"], 4);
    assert_eq!(d["status"]["availableReplicas"], 4);
    assert_eq!(d["status"]["observedGeneration"], 2);
    assert_eq!(condition(&d, "Progressing")["reason"], "NewReplicaSetAvailable");
    assert_eq!(d["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "2");
    // The old ReplicaSet stays, scaled to 0, as revision history.
    let sets = cluster.list(REPLICA_SET);
    assert_eq!(sets.len(), 2);
    assert_eq!(sets.iter().map(|rs| rs["spec"]["replicas"].as_i64().unwrap()).sum::<i64>(), 4);
}

#[tokio::test(start_paused = true)]
async fn recreate_stops_every_old_pod_before_starting_new_ones() {
    let mut cluster = Cluster::new(Pace::Kind);
    let mut d = deployment("web", 2, "v1");
    d["spec"]["strategy"] = json!({"type": "Recreate"});
    cluster.create(DEPLOYMENT, d);
    cluster.wait(10).await;
    let since = cluster.store.resource_version();

    cluster.change(DEPLOYMENT, "web", |d| d["spec"]["template"]["spec"]["containers"][0]["image"] = "web:v2".into());
    cluster.wait(5).await;
    // Old pods terminate for their whole grace period; no new pod meanwhile.
    assert!(cluster.pods().iter().all(|p| image(p) == "web:v1" && is_deleting(p)));
    cluster.wait(60).await;

    cluster.replay(since, POD, |pods| {
        let old = pods.values().any(|p| image(p) == "web:v1");
        let new = pods.values().any(|p| image(p) == "web:v2");
        assert!(!(old && new), "old and new pods at once");
    });
    let pods = cluster.pods();
    assert_eq!(pods.len(), 2);
    assert!(pods.iter().all(|p| image(p) == "web:v2" && is_ready(p)));
    assert_eq!(cluster.get(DEPLOYMENT, "web")["status"]["availableReplicas"], 2);
}

fn replica_set(name: &str, replicas: i64) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": name, "image": "img"}]},
            },
        },
    })
}

fn bare_pod(name: &str, app: &str) -> Value {
    json!({
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "image": "img"}]},
    })
}

#[tokio::test(start_paused = true)]
async fn a_replica_set_adopts_a_matching_bare_pod_and_deletes_the_surplus_in_order() {
    let mut cluster = Cluster::new(Pace::Fast);
    // An old pod no scheduler will bind: unassigned pods go first, however old.
    let mut unbound = bare_pod("unbound", "web");
    unbound["spec"]["schedulerName"] = "elsewhere".into();
    cluster.create(POD, unbound);
    cluster.wait(100).await;
    let rs = cluster.create(REPLICA_SET, replica_set("web", 3));
    let owned = |c: &Cluster| {
        c.pods().into_iter().filter(|p| !is_deleting(p) && super::controlled_by(p, super::uid(&rs))).count()
    };
    // Adopted: it counts as one of the 3.
    assert_eq!(cluster.get(POD, "unbound")["metadata"]["ownerReferences"][0]["uid"], rs["metadata"]["uid"]);
    assert_eq!(owned(&cluster), 3);
    assert_eq!(cluster.pods().len(), 3);
    // Scaled down by one: the unassigned pod goes first, though it is the oldest.
    cluster.change(REPLICA_SET, "web", |rs| rs["spec"]["replicas"] = 2.into());
    assert!(cluster.store.get(POD, NS, "unbound").is_none());
    assert_eq!(owned(&cluster), 2);

    cluster.wait(300).await;
    // A bare pod matching the selector: adopted, and as the pod ready for the least time, the
    // one deleted.
    let since = cluster.store.resource_version();
    cluster.create(POD, bare_pod("bare", "web"));
    let mut adopted = false;
    cluster.replay(since, POD, |pods| {
        adopted |=
            pods.get("bare").is_some_and(|p| p["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]);
    });
    assert!(adopted);
    assert!(cluster.store.get(POD, NS, "bare").is_none(), "deleted (and gone at the fast pace)");
    assert_eq!(owned(&cluster), 2);
    assert_eq!(cluster.get(REPLICA_SET, "web")["status"]["replicas"], 2);

    // Scaled up and down again: the pod ready for the least time goes (the one on the doubled-up
    // node; no rank by node for a ReplicaSet without a controller).
    cluster.change(REPLICA_SET, "web", |rs| rs["spec"]["replicas"] = 3.into());
    cluster.wait(300).await;
    cluster.change(REPLICA_SET, "web", |rs| rs["spec"]["replicas"] = 2.into());
    let mut nodes: Vec<String> = cluster
        .pods()
        .iter()
        .filter(|p| !is_deleting(p))
        .map(|p| p["spec"]["nodeName"].as_str().unwrap().to_string())
        .collect();
    nodes.sort();
    assert_eq!(nodes, ["rehearse-worker", "rehearse-worker2"]);
}

#[tokio::test(start_paused = true)]
async fn a_replica_set_without_a_controller_ranks_no_pod_by_its_node() {
    // Upstream's getReplicaSetsWithSameController finds nothing for a ReplicaSet no Deployment
    // owns, so every pod's rank is 0 and the pod ready for the least time goes first, though
    // the other node holds two.
    let mut cluster = Cluster::new(Pace::Fast);
    let mut rs = replica_set("web", 2);
    rs["spec"]["template"]["spec"]["nodeSelector"] = json!({"kubernetes.io/hostname": "rehearse-worker"});
    cluster.create(REPLICA_SET, rs);
    cluster.wait(300).await;
    cluster.change(REPLICA_SET, "web", |rs| {
        rs["spec"]["replicas"] = 3.into();
        rs["spec"]["template"]["spec"]["nodeSelector"] = json!({"kubernetes.io/hostname": "rehearse-worker2"});
    });
    cluster.wait(300).await;
    cluster.change(REPLICA_SET, "web", |rs| rs["spec"]["replicas"] = 2.into());
    let nodes: Vec<String> = cluster
        .pods()
        .iter()
        .filter(|p| !is_deleting(p))
        .map(|p| p["spec"]["nodeName"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(nodes, ["rehearse-worker", "rehearse-worker"]);
}

#[tokio::test(start_paused = true)]
async fn pods_started_together_get_distinct_ips_and_a_freed_ip_is_handed_out_again() {
    let ips = |c: &Cluster| -> Vec<String> {
        c.pods().iter().filter_map(|p| p["status"]["podIP"].as_str().map(String::from)).collect()
    };
    // At the kind pace a pod has its IP while its containers are still created.
    let mut creating = Cluster::new(Pace::Kind);
    creating.create(REPLICA_SET, replica_set("web", 200));
    assert!(creating.pods().iter().all(|p| p["status"]["phase"] == "Pending"));
    let given = ips(&creating);
    assert_eq!(given.len(), 200);
    assert_eq!(given.iter().collect::<std::collections::BTreeSet<_>>().len(), 200, "no IP twice");

    let mut cluster = Cluster::new(Pace::Fast);
    cluster.create(REPLICA_SET, replica_set("web", 200));
    let started = ips(&cluster);
    assert_eq!(started.len(), 200);
    assert_eq!(started.iter().collect::<std::collections::BTreeSet<_>>().len(), 200, "no IP twice");
    // Deleted and replaced 300 times: each node's range wraps round, and no replacement takes an
    // address a live pod holds.
    for _ in 0..300 {
        let victim = name(&cluster.pods()[0]).to_string();
        let pod = cluster.get(POD, &victim);
        super::delete(&mut cluster.store, POD, NS, &pod);
        cluster.controllers.reconcile(&mut cluster.store);
    }
    let now = ips(&cluster);
    assert_eq!(now.len(), 200);
    assert_eq!(now.iter().collect::<std::collections::BTreeSet<_>>().len(), 200, "no IP twice");
}

#[tokio::test(start_paused = true)]
async fn a_relabelled_pod_is_released_and_replaced() {
    let mut cluster = Cluster::new(Pace::Fast);
    cluster.create(REPLICA_SET, replica_set("web", 2));
    let victim = name(&cluster.pods()[0]).to_string();
    cluster.change(POD, &victim, |p| p["metadata"]["labels"]["app"] = "debug".into());

    let released = cluster.get(POD, &victim);
    assert!(released["metadata"].get("ownerReferences").is_none(), "{released}");
    assert!(!is_deleting(&released));
    let pods = cluster.pods();
    assert_eq!(pods.len(), 3);
    assert_eq!(pods.iter().filter(|p| label(p, "app") == Some("web") && is_ready(p)).count(), 2);
}

fn daemon_set(name: &str, version: &str) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": name, "image": format!("{name}:{version}")}]},
            },
        },
    })
}

#[tokio::test(start_paused = true)]
async fn a_daemon_set_runs_one_pod_per_worker_and_rolls_one_node_at_a_time() {
    let mut cluster = Cluster::new(Pace::Kind);
    cluster.create(DAEMON_SET, daemon_set("agent", "v1"));
    cluster.wait(10).await;
    let mut nodes: Vec<String> =
        cluster.pods().iter().map(|p| p["spec"]["nodeName"].as_str().unwrap().into()).collect();
    nodes.sort();
    assert_eq!(nodes, ["rehearse-worker", "rehearse-worker2"]);
    let pod = &cluster.pods()[0];
    assert!(label(pod, "controller-revision-hash").is_some());
    assert_eq!(label(pod, "pod-template-generation"), Some("1"));
    assert!(
        pod["spec"]["tolerations"].as_array().unwrap().iter().any(|t| t["key"] == "node.kubernetes.io/unschedulable")
    );
    assert_eq!(cluster.list(CONTROLLER_REVISION).len(), 1);
    let ds = cluster.get(DAEMON_SET, "agent");
    let status = &ds["status"];
    assert_eq!((status["desiredNumberScheduled"].clone(), status["numberReady"].clone()), (json!(2), json!(2)));
    assert_eq!((status["updatedNumberScheduled"].clone(), status["numberAvailable"].clone()), (json!(2), json!(2)));

    let since = cluster.store.resource_version();
    cluster
        .change(DAEMON_SET, "agent", |ds| ds["spec"]["template"]["spec"]["containers"][0]["image"] = "agent:v2".into());
    cluster.wait(120).await;
    cluster.replay(since, POD, |pods| {
        let mut per_node: BTreeMap<&str, usize> = BTreeMap::new();
        for pod in pods.values() {
            *per_node.entry(pod["spec"]["nodeName"].as_str().unwrap_or_default()).or_default() += 1;
        }
        assert!(per_node.values().all(|n| *n <= 1), "two pods on a node (maxSurge 0): {per_node:?}");
        let serving = pods.values().filter(|p| is_ready(p) && !is_deleting(p)).count();
        assert!(serving >= 1, "more than maxUnavailable nodes without a serving pod");
    });
    let pods = cluster.pods();
    assert_eq!(pods.len(), 2);
    assert!(pods.iter().all(|p| image(p) == "agent:v2" && is_ready(p)));
    assert_eq!(cluster.get(DAEMON_SET, "agent")["status"]["updatedNumberScheduled"], 2);
    assert_eq!(cluster.list(CONTROLLER_REVISION).len(), 2);

    // Tolerating the control-plane taint adds its node.
    cluster.change(DAEMON_SET, "agent", |ds| {
        ds["spec"]["template"]["spec"]["tolerations"] =
            json!([{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}]);
    });
    cluster.wait(200).await;
    let mut nodes: Vec<String> =
        cluster.pods().iter().map(|p| p["spec"]["nodeName"].as_str().unwrap().into()).collect();
    nodes.sort();
    assert_eq!(nodes, ["rehearse-control-plane", "rehearse-worker", "rehearse-worker2"]);
    assert_eq!(cluster.get(DAEMON_SET, "agent")["status"]["numberAvailable"], 3);
}

/// A DaemonSet adopts matching pods whatever their node. Of those meant for a node that does not
/// exist it deletes only the unscheduled ones (upstream's getUnscheduledPodsWithoutNode): one
/// bound there is left to the pod garbage collector, and the status counts the nodes that exist.
#[tokio::test(start_paused = true)]
async fn a_daemon_set_deletes_its_unscheduled_pods_for_a_missing_node_and_leaves_bound_ones() {
    let mut cluster = Cluster::new(Pace::Fast);
    let stray = |name: &str, spec: Value| {
        let mut spec = spec;
        spec["containers"] = json!([{"name": "agent", "image": "agent:v1"}]);
        json!({"metadata": {"name": name, "labels": {"app": "agent"}}, "spec": spec})
    };
    let pin = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["gone"]}]}
    ]}}});
    cluster.create(POD, stray("bound", json!({"nodeName": "gone"})));
    cluster.create(POD, stray("pinned", json!({"affinity": pin})));
    let mut ds = daemon_set("agent", "v1");
    ds["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
    cluster.create(DAEMON_SET, ds);
    cluster.wait(10).await;

    let bound = cluster.get(POD, "bound");
    assert_eq!(bound["metadata"]["ownerReferences"][0]["name"], "agent", "adopted: {bound}");
    assert!(!is_deleting(&bound), "left to the pod garbage collector: {bound}");
    assert!(cluster.store.get(POD, NS, "pinned").is_none(), "no scheduler places it, so it is deleted");
    assert_eq!(cluster.pods().len(), 3, "a pod on each worker, and the bound stray");
    let status = &cluster.get(DAEMON_SET, "agent")["status"];
    assert_eq!(
        (status["desiredNumberScheduled"].clone(), status["currentNumberScheduled"].clone()),
        (json!(2), json!(2))
    );
}

/// maxSurge 0, maxUnavailable 1: an old pod that is not available is replaced at once and
/// counts against maxUnavailable, so no available old pod goes in the same pass (upstream's
/// rollingUpdate). Here the first change's new pod is not yet available (minReadySeconds) when a
/// second change makes it old (tests/parity/daemonset-rollouts.rollout).
#[tokio::test(start_paused = true)]
async fn a_rolling_update_counts_an_unavailable_old_pod_it_replaces_against_max_unavailable() {
    let mut cluster = Cluster::new(Pace::Fast);
    let mut ds = daemon_set("agent", "v1");
    ds["spec"]["minReadySeconds"] = json!(5);
    cluster.create(DAEMON_SET, ds);
    cluster.wait(10).await;
    cluster
        .change(DAEMON_SET, "agent", |ds| ds["spec"]["template"]["spec"]["containers"][0]["image"] = "agent:v2".into());
    cluster.wait(1).await;
    let images = |cluster: &Cluster| {
        let mut images: Vec<String> =
            cluster.pods().iter().filter(|p| !is_deleting(p)).map(|p| image(p).to_string()).collect();
        images.sort();
        images
    };
    assert_eq!(images(&cluster), ["agent:v1", "agent:v2"], "one node at a time");
    cluster
        .change(DAEMON_SET, "agent", |ds| ds["spec"]["template"]["spec"]["containers"][0]["image"] = "agent:v3".into());
    cluster.wait(1).await;
    assert_eq!(images(&cluster), ["agent:v1", "agent:v3"], "the v1 pod stays until the v3 one is available");
    cluster.wait(30).await;
    assert_eq!(images(&cluster), ["agent:v3", "agent:v3"]);
}

/// maxSurge 1: an old pod with no new one beside it, bound to a node that does not exist, fails
/// the whole surge pass (upstream looks the node up), so nothing surges until the pod garbage
/// collector has deleted that pod.
#[tokio::test(start_paused = true)]
async fn a_surging_rollout_waits_while_an_old_pod_is_bound_to_a_node_that_does_not_exist() {
    let mut cluster = Cluster::new(Pace::Fast);
    let mut ds = daemon_set("agent", "v1");
    ds["spec"]["updateStrategy"] =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}});
    cluster.create(DAEMON_SET, ds);
    cluster.wait(1).await;
    let mut stray = bare_pod("stray", "agent");
    stray["spec"]["nodeName"] = "gone".into();
    cluster.create(POD, stray);
    cluster.wait(1).await;
    assert_eq!(cluster.get(POD, "stray")["metadata"]["ownerReferences"][0]["name"], "agent");
    cluster
        .change(DAEMON_SET, "agent", |ds| ds["spec"]["template"]["spec"]["containers"][0]["image"] = "agent:v2".into());
    cluster.wait(20).await;
    let updated = |cluster: &Cluster| cluster.pods().iter().filter(|p| image(p) == "agent:v2").count();
    assert_eq!(updated(&cluster), 0, "no surge while the stray is there");
    assert!(!is_deleting(&cluster.get(POD, "stray")));
    cluster.wait(60).await;
    assert!(cluster.store.get(POD, NS, "stray").is_none(), "deleted by the pod garbage collector");
    assert_eq!(updated(&cluster), 2, "then the rollout goes on");
    assert_eq!(cluster.pods().len(), 2);
}

/// maxSurge 1, maxUnavailable 0 (the testbed's kube-controller-manager does the same; see
/// tests/parity/daemonset-surge.rollout): one node at a time gets its new pod beside the old one,
/// and the old one goes only once the new one is ready, so every node always has a serving pod.
#[tokio::test(start_paused = true)]
async fn a_daemon_set_with_max_surge_starts_each_new_pod_beside_the_old_one() {
    let mut cluster = Cluster::new(Pace::Kind);
    let mut ds = daemon_set("agent", "v1");
    ds["spec"]["updateStrategy"] =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}});
    cluster.create(DAEMON_SET, ds);
    cluster.wait(10).await;
    assert_eq!(cluster.get(DAEMON_SET, "agent")["status"]["numberAvailable"], 2);

    let since = cluster.store.resource_version();
    cluster
        .change(DAEMON_SET, "agent", |ds| ds["spec"]["template"]["spec"]["containers"][0]["image"] = "agent:v2".into());
    cluster.wait(120).await;
    let mut most_surging = 0;
    cluster.replay(since, POD, |pods| {
        let mut live_per_node: BTreeMap<&str, usize> = BTreeMap::new();
        for pod in pods.values().filter(|p| !is_deleting(p)) {
            *live_per_node.entry(pod["spec"]["nodeName"].as_str().unwrap_or_default()).or_default() += 1;
        }
        assert!(live_per_node.values().all(|n| *n <= 2), "more than an old and a new pod on a node: {live_per_node:?}");
        let surging = live_per_node.values().filter(|n| **n == 2).count();
        assert!(surging <= 1, "more than maxSurge nodes surging at once: {live_per_node:?}");
        most_surging = most_surging.max(surging);
        let serving: Vec<&str> = pods
            .values()
            .filter(|p| is_ready(p) && !is_deleting(p))
            .map(|p| p["spec"]["nodeName"].as_str().unwrap_or_default())
            .collect();
        assert!(
            ["rehearse-worker", "rehearse-worker2"].iter().all(|node| serving.contains(node)),
            "a node without a serving pod (maxUnavailable 0): {serving:?}"
        );
    });
    assert_eq!(most_surging, 1, "no node ever ran its new pod beside the old one");
    let pods = cluster.pods();
    assert_eq!(pods.len(), 2);
    assert!(pods.iter().all(|p| image(p) == "agent:v2" && is_ready(p)));
    let status = &cluster.get(DAEMON_SET, "agent")["status"];
    assert_eq!((status["updatedNumberScheduled"].clone(), status["numberAvailable"].clone()), (json!(2), json!(2)));
}

fn service(name: &str, app: &str) -> Value {
    json!({
        "metadata": {"name": name, "labels": {"team": "a"}},
        "spec": {"selector": {"app": app}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    })
}

#[tokio::test(start_paused = true)]
async fn endpoint_slices_follow_pods_at_the_kind_pace() {
    let mut cluster = Cluster::new(Pace::Kind);
    let svc = cluster.create(SERVICE, service("web", "web"));
    // No pod yet: the placeholder, as the API server stores it: empty lists written as null.
    let placeholder = &cluster.list(ENDPOINT_SLICE)[0];
    assert_eq!((&placeholder["endpoints"], &placeholder["ports"]), (&Value::Null, &Value::Null));
    assert!(placeholder.as_object().unwrap().contains_key("ports"));
    cluster.create(DEPLOYMENT, deployment("web", 1, "v1"));
    let slices = cluster.list(ENDPOINT_SLICE);
    assert_eq!(slices.len(), 1);
    let slice = &slices[0];
    assert!(name(slice).starts_with("web-") && name(slice).len() == 9, "{}", name(slice));
    assert_eq!(
        slice["metadata"]["labels"],
        json!({"team": "a", "kubernetes.io/service-name": "web", "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"})
    );
    assert_eq!(slice["metadata"]["ownerReferences"][0]["uid"], svc["metadata"]["uid"]);
    // The pod has its IP while its containers are created: listed, not ready.
    let pod = &cluster.pods()[0];
    assert_eq!(pod["status"]["phase"], "Pending");
    assert_eq!(
        slice["endpoints"],
        json!([{
            "addresses": [pod["status"]["podIP"]],
            "conditions": {"ready": false, "serving": false, "terminating": false},
            "nodeName": pod["spec"]["nodeName"],
            "targetRef": {"kind": "Pod", "namespace": NS, "name": name(pod), "uid": pod["metadata"]["uid"]},
        }])
    );

    cluster.wait(3).await;
    let slice = &cluster.list(ENDPOINT_SLICE)[0];
    let pod = &cluster.pods()[0];
    assert_eq!(slice["ports"], json!([{"name": "http", "protocol": "TCP", "port": 8080}]));
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(
        slice["endpoints"],
        json!([{
            "addresses": [pod["status"]["podIP"]],
            "conditions": {"ready": true, "serving": true, "terminating": false},
            "nodeName": pod["spec"]["nodeName"],
            "targetRef": {"kind": "Pod", "namespace": NS, "name": name(pod), "uid": pod["metadata"]["uid"]},
        }])
    );

    // Deleted: terminating but still serving for its grace period, beside its replacement.
    let old = name(pod).to_string();
    cluster.store.mark_deleted(POD, NS, &old, Some(30));
    cluster.wait(5).await;
    let slice = &cluster.list(ENDPOINT_SLICE)[0];
    let endpoints = slice["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 2);
    let of = |pod: &str| endpoints.iter().find(|e| e["targetRef"]["name"] == pod).unwrap()["conditions"].clone();
    assert_eq!(of(&old), json!({"ready": false, "serving": true, "terminating": true}));
    let new = cluster.pods().into_iter().find(|p| !is_deleting(p)).unwrap();
    assert_eq!(of(name(&new)), json!({"ready": true, "serving": true, "terminating": false}));
    cluster.wait(30).await;
    assert!(cluster.store.get(POD, NS, &old).is_none());
    assert_eq!(cluster.list(ENDPOINT_SLICE)[0]["endpoints"].as_array().unwrap().len(), 1);
    assert_eq!(cluster.list(ENDPOINT_SLICE).len(), 1);

    // A Service deleted takes its slice with it.
    cluster.store.remove(SERVICE, NS, "web");
    cluster.controllers.reconcile(&mut cluster.store);
    assert!(cluster.list(ENDPOINT_SLICE).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_port_a_pod_does_not_declare_is_left_out_of_its_endpoint_not_the_pod_out_of_the_service() {
    let mut cluster = Cluster::new(Pace::Fast);
    let mut svc = service("web", "web");
    svc["spec"]["ports"] = json!([
        {"name": "numbered", "port": 80, "targetPort": 8080},
        {"name": "named", "port": 81, "targetPort": "metrics"},
    ]);
    cluster.create(SERVICE, svc);
    cluster.create(DEPLOYMENT, deployment("web", 2, "v1"));
    let slices = cluster.list(ENDPOINT_SLICE);
    assert_eq!(slices.len(), 1);
    assert_eq!(slices[0]["ports"], json!([{"name": "numbered", "protocol": "TCP", "port": 8080}]));
    assert_eq!(slices[0]["endpoints"].as_array().unwrap().len(), 2);

    // With no port left, the pods are still listed, in a slice whose ports are null.
    cluster.change(SERVICE, "web", |s| s["spec"]["ports"] = json!([{"port": 81, "targetPort": "metrics"}]));
    let slices = cluster.list(ENDPOINT_SLICE);
    assert_eq!(slices.len(), 1);
    assert_eq!(slices[0]["ports"], Value::Null);
    assert_eq!(slices[0]["endpoints"].as_array().unwrap().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn endpoint_slices_are_rewritten_only_when_what_they_show_changes() {
    let mut cluster = Cluster::new(Pace::Fast);
    cluster.create(SERVICE, service("web", "web"));
    cluster.create(DEPLOYMENT, deployment("web", 2, "v1"));
    let version = |c: &Cluster| c.list(ENDPOINT_SLICE)[0]["metadata"]["resourceVersion"].clone();
    let addresses = |c: &Cluster| c.list(ENDPOINT_SLICE)[0]["endpoints"].as_array().unwrap().len();
    assert_eq!(addresses(&cluster), 2);
    let before = version(&cluster);
    let pod = name(&cluster.pods()[0]).to_string();

    // A label the selector does not read: the slice is not written.
    cluster.change(POD, &pod, |p| p["metadata"]["labels"]["round"] = "a".into());
    assert_eq!(version(&cluster), before);

    // A label it reads: the pod leaves the slice (and its replacement joins).
    cluster.change(POD, &pod, |p| p["metadata"]["labels"]["app"] = "debug".into());
    let slice = &cluster.list(ENDPOINT_SLICE)[0];
    assert_ne!(slice["metadata"]["resourceVersion"], before);
    assert!(slice["endpoints"].as_array().unwrap().iter().all(|e| e["targetRef"]["name"] != pod.as_str()));
    assert_eq!(addresses(&cluster), 2);

    // Someone else's edit of the slice is undone, though nothing the slice shows changed.
    let slice = name(&cluster.list(ENDPOINT_SLICE)[0]).to_string();
    cluster.change(ENDPOINT_SLICE, &slice, |s| s["endpoints"] = json!([]));
    assert_eq!(addresses(&cluster), 2);

    // A service changed: its new selector is served at once.
    cluster.change(SERVICE, "web", |s| s["spec"]["selector"]["app"] = "debug".into());
    let endpoints = cluster.list(ENDPOINT_SLICE)[0]["endpoints"].clone();
    assert_eq!(endpoints.as_array().unwrap().len(), 1);
    assert_eq!(endpoints[0]["targetRef"]["name"], pod.as_str());
}

#[tokio::test(start_paused = true)]
async fn a_service_being_deleted_has_its_slices_updated_but_gets_no_new_one() {
    let mut cluster = Cluster::new(Pace::Fast);
    let mut held = service("web", "web");
    held["metadata"]["finalizers"] = json!(["example.com/hold"]);
    cluster.create(SERVICE, held);
    cluster.create(DEPLOYMENT, deployment("web", 2, "v1"));
    cluster.store.mark_deleted(SERVICE, NS, "web", Some(0));
    cluster.controllers.reconcile(&mut cluster.store);
    assert!(is_deleting(&cluster.get(SERVICE, "web")));
    let endpoints = |c: &Cluster| {
        c.list(ENDPOINT_SLICE).iter().map(|s| s["endpoints"].as_array().map_or(0, Vec::len)).sum::<usize>()
    };
    assert_eq!(endpoints(&cluster), 2);

    // A pod relabelled out of the selection leaves the slice, and its replacement joins it.
    let pod = name(&cluster.pods()[0]).to_string();
    cluster.change(POD, &pod, |p| p["metadata"]["labels"]["app"] = "debug".into());
    let slice = &cluster.list(ENDPOINT_SLICE)[0];
    assert!(slice["endpoints"].as_array().unwrap().iter().all(|e| e["targetRef"]["name"] != pod.as_str()));
    assert_eq!(endpoints(&cluster), 2);

    // Its slice gone, none is made in its place (the collector would race to delete it).
    let slice = name(slice).to_string();
    cluster.store.remove(ENDPOINT_SLICE, NS, &slice);
    cluster.controllers.reconcile(&mut cluster.store);
    assert!(cluster.list(ENDPOINT_SLICE).is_empty());
}

/// Each pod's endpoint across a service's slices, by pod name; a pod listed twice is a failure.
fn endpoints_by_pod(slices: &[&Value]) -> BTreeMap<String, Value> {
    let mut by_pod = BTreeMap::new();
    for endpoint in slices.iter().flat_map(|s| s["endpoints"].as_array().into_iter().flatten()) {
        let pod = endpoint["targetRef"]["name"].as_str().unwrap().to_string();
        assert!(by_pod.insert(pod.clone(), endpoint.clone()).is_none(), "{pod} is listed twice");
    }
    by_pod
}

#[tokio::test(start_paused = true)]
async fn a_service_of_hundreds_of_pods_is_sliced_by_a_hundred_and_slices_change_in_place() {
    let mut cluster = Cluster::new(Pace::Fast);
    cluster.create(SERVICE, service("web", "web"));
    cluster.create(DEPLOYMENT, deployment("web", 210, "v1"));
    cluster.wait(5).await;
    let slices = cluster.list(ENDPOINT_SLICE);
    let mut sizes: Vec<usize> = slices.iter().map(|s| s["endpoints"].as_array().unwrap().len()).collect();
    sizes.sort();
    // Two workers hold 110 pods each.
    assert_eq!(sizes, [10, 100, 100], "as upstream: full slices of 100, the rest in one");
    assert_eq!(endpoints_by_pod(&slices.iter().collect::<Vec<_>>()).len(), 210);
    let names = |c: &Cluster| c.list(ENDPOINT_SLICE).iter().map(|s| name(s).to_string()).collect::<Vec<_>>();
    let before = names(&cluster);

    // Scaled down: each surplus pod leaves the slice it is in; nothing is moved or created.
    let listed: BTreeMap<String, String> = slices
        .iter()
        .flat_map(|s| {
            let slice = name(s).to_string();
            s["endpoints"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |e| (e["targetRef"]["name"].as_str().unwrap().to_string(), slice.clone()))
        })
        .collect();
    cluster.change(DEPLOYMENT, "web", |d| d["spec"]["replicas"] = 150.into());
    cluster.wait(60).await;
    let after = cluster.list(ENDPOINT_SLICE);
    assert!(names(&cluster).iter().all(|n| before.contains(n)), "{:?} then {:?}", before, names(&cluster));
    for slice in &after {
        for endpoint in slice["endpoints"].as_array().into_iter().flatten() {
            assert_eq!(
                listed[endpoint["targetRef"]["name"].as_str().unwrap()],
                name(slice),
                "an endpoint stays in its slice"
            );
        }
    }
    assert_eq!(endpoints_by_pod(&after.iter().collect::<Vec<_>>()).len(), 150);

    // A rolling update replaces every endpoint: at every change of a slice, as a watch shows it,
    // no slice lists more than 100 and the ready endpoints are as many as maxUnavailable keeps.
    let mut seen: BTreeMap<String, Value> = after.iter().map(|s| (name(s).to_string(), s.clone())).collect();
    let mut since = cluster.store.resource_version();
    cluster.change(DEPLOYMENT, "web", |d| d["spec"]["template"]["metadata"]["labels"]["version"] = "v2".into());
    let mut states = 0;
    // A second at a time, so that the change log still holds every change since the last look.
    for _ in 0..600 {
        for change in cluster.store.changes_since(since).unwrap() {
            since = change.resource_version;
            if change.resource != ENDPOINT_SLICE {
                continue;
            }
            let object = change.object();
            match change.change {
                ChangeType::Deleted => seen.remove(name(&object)),
                _ => seen.insert(name(&object).to_string(), object),
            };
            states += 1;
            assert!(seen.values().all(|s| s["endpoints"].as_array().map_or(0, Vec::len) <= 100));
            let ready = endpoints_by_pod(&seen.values().collect::<Vec<_>>())
                .values()
                .filter(|e| e["conditions"]["ready"] == true)
                .count();
            assert!(ready >= 150 - 37, "maxUnavailable 25% of 150 rounds down to 37: {ready} ready");
        }
        cluster.wait(1).await;
    }
    assert!(states > 3, "{states}");
    let slices = cluster.list(ENDPOINT_SLICE);
    let endpoints = endpoints_by_pod(&slices.iter().collect::<Vec<_>>());
    assert_eq!(endpoints.len(), 150);
    let pods = cluster.pods();
    assert!(pods.iter().all(|p| p["metadata"]["labels"]["version"] == "v2" && endpoints.contains_key(name(p))));
    assert!(
        slices.len() <= 3 && slices.iter().all(|s| s["endpoints"].as_array().unwrap().len() <= 100),
        "{}",
        slices.len()
    );
}

#[tokio::test(start_paused = true)]
async fn the_garbage_collector_deletes_dependents() {
    let mut cluster = Cluster::new(Pace::Kind);
    cluster.create(DEPLOYMENT, deployment("web", 2, "v1"));
    cluster.wait(5).await;
    cluster.store.remove(DEPLOYMENT, NS, "web");
    cluster.controllers.reconcile(&mut cluster.store);
    assert!(cluster.list(REPLICA_SET).is_empty());
    let pods = cluster.pods();
    assert_eq!(pods.len(), 2);
    assert!(pods.iter().all(|p| is_deleting(p) && p["metadata"]["deletionGracePeriodSeconds"] == 30));
    // Gone two seconds after the deletionTimestamp, as the kubelet has it.
    cluster.wait(31).await;
    assert_eq!(cluster.pods().len(), 2, "still there a second after the grace period");
    cluster.wait(1).await;
    assert!(cluster.pods().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_deleted_namespace_is_emptied_then_removed() {
    let mut cluster = Cluster::new(Pace::Kind);
    cluster.create(DEPLOYMENT, deployment("web", 2, "v1"));
    cluster.create(SERVICE, service("web", "web"));
    cluster.wait(5).await;
    cluster.store.mark_deleted(NAMESPACE, "", NS, None);
    cluster.controllers.reconcile(&mut cluster.store);
    assert!(cluster.list(DEPLOYMENT).is_empty() && cluster.list(SERVICE).is_empty());
    assert!(cluster.pods().iter().all(is_deleting));
    assert!(cluster.store.get(NAMESPACE, "", NS).is_some(), "the pods are still terminating");
    cluster.wait(32).await;
    assert!(cluster.pods().is_empty());
    assert!(cluster.store.get(NAMESPACE, "", NS).is_none());
}

#[tokio::test(start_paused = true)]
async fn a_pod_no_node_takes_stays_pending_with_the_schedulers_reasons() {
    let mut cluster = Cluster::new(Pace::Fast);
    let mut pod = bare_pod("nowhere", "nowhere");
    pod["spec"]["nodeSelector"] = json!({"rehearse.test/no-such-node": "true"});
    cluster.create(POD, pod);
    let pod = cluster.get(POD, "nowhere");
    assert_eq!(pod["status"]["phase"], "Pending");
    let scheduled = condition(&pod, "PodScheduled");
    assert_eq!((scheduled["status"].as_str(), scheduled["reason"].as_str()), (Some("False"), Some("Unschedulable")));
    assert_eq!(
        scheduled["message"],
        "0/3 nodes are available: 1 node(s) had untolerated taint(s), 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: \
         3 Preemption is not helpful for scheduling."
    );
}

#[tokio::test(start_paused = true)]
async fn scaling_during_a_rollout_is_proportional() {
    let mut cluster = Cluster::new(Pace::Kind);
    let mut d = deployment("web", 10, "v1");
    d["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}});
    cluster.create(DEPLOYMENT, d);
    cluster.wait(10).await;
    // A new template whose pods never get a node: the rollout stalls at 13 = 10 + maxSurge.
    cluster.change(DEPLOYMENT, "web", |d| {
        d["spec"]["template"]["spec"]["nodeSelector"] = json!({"nowhere": "true"});
    });
    let sizes = |c: &Cluster| {
        let mut sizes: Vec<i64> =
            c.list(REPLICA_SET).iter().map(|rs| rs["spec"]["replicas"].as_i64().unwrap()).collect();
        sizes.sort();
        sizes
    };
    assert_eq!(sizes(&cluster), [5, 8]);
    cluster.change(DEPLOYMENT, "web", |d| d["spec"]["replicas"] = 20.into());
    // 13 -> 23 (20 + 3): 10 more, shared 5:8 between the two ReplicaSets.
    assert_eq!(sizes(&cluster).iter().sum::<i64>(), 23);
    assert_eq!(sizes(&cluster), [9, 14]);
}

#[tokio::test(start_paused = true)]
async fn a_pod_on_the_hosts_network_has_its_nodes_address_and_holds_its_ports_there() {
    let mut cluster = Cluster::new(Pace::Fast);
    let mut web = deployment("web", 3, "v1");
    web["spec"]["template"]["spec"]["hostNetwork"] = json!(true);
    web["spec"]["template"]["spec"]["containers"][0]["ports"] = json!([{"containerPort": 8080}]);
    cluster.create(DEPLOYMENT, web);
    let pods = cluster.pods();
    assert_eq!(pods.len(), 3);
    let running: Vec<&Value> = pods.iter().filter(|p| is_ready(p)).collect();
    // The API defaults the port to a host port on each pod: one such pod per worker.
    for pod in &pods {
        assert_eq!(pod["spec"]["containers"][0]["ports"][0]["hostPort"], 8080);
    }
    assert_eq!(running.len(), 2, "a third pod finds the port taken on both workers");
    for pod in running {
        let node = cluster.store.get(resources::NODE, "", pod["spec"]["nodeName"].as_str().unwrap()).unwrap();
        let address = super::nodes::internal_ip(node).unwrap();
        assert_eq!(pod["status"]["podIP"], address);
        assert_eq!(pod["status"]["hostIP"], address);
    }
}

/// A StatefulSet as the API stores it: its defaults (OrderedReady, RollingUpdate with partition 0
/// and maxUnavailable 1) filled in.
fn stateful_set(name: &str, replicas: i64, version: &str) -> Value {
    let mut set = json!({
        "metadata": {"name": name},
        "spec": {
            "serviceName": name,
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": name, "image": format!("{name}:{version}")}]},
            },
        },
    });
    super::super::defaults::apply(STATEFUL_SET, &mut set);
    set
}

#[tokio::test(start_paused = true)]
async fn a_stateful_set_starts_its_pods_one_at_a_time_in_ordinal_order() {
    let mut cluster = Cluster::new(Pace::Kind);
    let start = cluster.store.resource_version();
    cluster.create(STATEFUL_SET, stateful_set("db", 3, "v1"));
    assert_eq!(cluster.pods().len(), 1, "db-1 waits for db-0 to be Running and Ready");
    cluster.wait(60).await;
    let mut seen = Vec::new();
    cluster.replay(start, POD, |pods| {
        for (name, _) in pods.iter().filter(|(name, _)| !seen.contains(*name)) {
            let ordinal: usize = name.trim_start_matches("db-").parse().unwrap();
            for earlier in 0..ordinal {
                assert!(is_ready(&pods[&format!("db-{earlier}")]), "{name} made before db-{earlier} was ready");
            }
        }
        seen = pods.keys().cloned().collect();
    });
    let pods = cluster.pods();
    assert_eq!(pods.iter().map(name).collect::<Vec<_>>(), ["db-0", "db-1", "db-2"]);
    let set = cluster.get(STATEFUL_SET, "db");
    let revision = set["status"]["updateRevision"].as_str().unwrap();
    for (ordinal, pod) in pods.iter().enumerate() {
        assert!(is_ready(pod));
        assert_eq!(label(pod, "statefulset.kubernetes.io/pod-name"), Some(name(pod)));
        assert_eq!(label(pod, "apps.kubernetes.io/pod-index"), Some(ordinal.to_string().as_str()));
        assert_eq!(label(pod, "controller-revision-hash"), Some(revision));
        assert_eq!(
            (pod["spec"]["hostname"].as_str(), pod["spec"]["subdomain"].as_str()),
            (Some(name(pod)), Some("db"))
        );
    }
    assert_eq!(set["status"]["currentRevision"], revision);
    assert_eq!((set["status"]["replicas"].as_i64(), set["status"]["readyReplicas"].as_i64()), (Some(3), Some(3)));
    assert_eq!(cluster.list(CONTROLLER_REVISION).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_stateful_set_rolls_from_the_highest_ordinal_down_to_its_partition_one_pod_at_a_time() {
    let mut cluster = Cluster::new(Pace::Kind);
    cluster.create(STATEFUL_SET, stateful_set("db", 4, "v1"));
    cluster.wait(60).await;
    let start = cluster.store.resource_version();
    cluster.change(STATEFUL_SET, "db", |set| {
        set["spec"]["template"]["spec"]["containers"][0]["image"] = "db:v2".into();
        set["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = 1.into();
    });
    cluster.wait(120).await;
    let mut order = Vec::new();
    cluster.replay(start, POD, |pods| {
        let unavailable = 4 - pods.values().filter(|p| is_ready(p) && !is_deleting(p)).count();
        assert!(unavailable <= 1, "maxUnavailable is 1: {unavailable} unavailable");
        for (name, pod) in pods {
            if is_deleting(pod) && !order.contains(name) {
                order.push(name.clone());
            }
        }
    });
    assert_eq!(order, ["db-3", "db-2", "db-1"], "db-0 is below the partition");
    let pods = cluster.pods();
    assert_eq!(pods.iter().map(image).collect::<Vec<_>>(), ["db:v1", "db:v2", "db:v2", "db:v2"]);
    let set = cluster.get(STATEFUL_SET, "db");
    assert_ne!(set["status"]["currentRevision"], set["status"]["updateRevision"]);
    assert_eq!(set["status"]["updatedReplicas"], 3);
    assert_eq!(cluster.list(CONTROLLER_REVISION).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_stateful_set_scales_down_from_the_highest_ordinal_and_a_parallel_one_all_at_once() {
    let mut cluster = Cluster::new(Pace::Kind);
    cluster.create(STATEFUL_SET, stateful_set("db", 3, "v1"));
    cluster.wait(60).await;
    cluster.change(STATEFUL_SET, "db", |set| set["spec"]["replicas"] = 1.into());
    let deleting: Vec<String> = cluster.pods().iter().filter(|p| is_deleting(p)).map(|p| name(p).into()).collect();
    assert_eq!(deleting, ["db-2"], "one at a time, from the top");
    cluster.wait(64).await;
    assert_eq!(cluster.pods().iter().map(name).collect::<Vec<_>>(), ["db-0"]);

    let mut parallel = stateful_set("q", 3, "v1");
    parallel["spec"]["podManagementPolicy"] = "Parallel".into();
    cluster.create(STATEFUL_SET, parallel);
    assert_eq!(cluster.pods().iter().filter(|p| label(p, "app") == Some("q")).count(), 3, "all at once");
    cluster.wait(60).await;
    cluster.change(STATEFUL_SET, "q", |set| set["spec"]["replicas"] = 0.into());
    let q = cluster.pods().into_iter().filter(|p| label(p, "app") == Some("q")).collect::<Vec<_>>();
    assert!(q.len() == 3 && q.iter().all(is_deleting), "all at once");
}

#[tokio::test(start_paused = true)]
async fn a_pod_released_from_a_stateful_set_keeps_its_name_until_it_matches_again() {
    let mut cluster = Cluster::new(Pace::Fast);
    cluster.create(STATEFUL_SET, stateful_set("db", 2, "v1"));
    cluster.change(POD, "db-1", |pod| {
        pod["metadata"]["labels"].as_object_mut().unwrap().remove("app");
    });
    let released = cluster.get(POD, "db-1");
    assert!(released["metadata"]["ownerReferences"].is_null(), "released: {released}");
    // The name is taken: no replacement can be made.
    assert_eq!(cluster.pods().len(), 2);
    assert_eq!(cluster.get(STATEFUL_SET, "db")["status"]["replicas"], 1);
    cluster.change(POD, "db-1", |pod| pod["metadata"]["labels"]["app"] = "db".into());
    let adopted = cluster.get(POD, "db-1");
    assert_eq!(adopted["metadata"]["ownerReferences"][0]["kind"], "StatefulSet");
    assert_eq!(cluster.get(STATEFUL_SET, "db")["status"]["replicas"], 2);
}

fn autoscaler(target_kind: &str, target: &str, min: i64, max: i64) -> Value {
    let mut autoscaler = json!({
        "metadata": {"name": "scaler"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": target_kind, "name": target},
            "minReplicas": min,
            "maxReplicas": max,
        },
    });
    super::super::defaults::apply(resources::HORIZONTAL_POD_AUTOSCALER, &mut autoscaler);
    autoscaler
}

#[tokio::test(start_paused = true)]
async fn an_autoscaler_syncs_when_created_then_every_15_seconds() {
    let mut cluster = Cluster::new(Pace::Fast);
    cluster.create(DEPLOYMENT, deployment("web", 1, "v1"));
    cluster.create(resources::HORIZONTAL_POD_AUTOSCALER, autoscaler("Deployment", "web", 2, 3));
    // Synced at once: below minReplicas.
    assert_eq!(cluster.get(DEPLOYMENT, "web")["spec"]["replicas"], 2);
    let scaler = cluster.get(resources::HORIZONTAL_POD_AUTOSCALER, "scaler");
    assert_eq!(condition(&scaler, "AbleToScale")["reason"], "SucceededRescale");
    assert_eq!(condition(&scaler, "ScaledToZero")["reason"], "NotScaledToZero");
    assert_eq!((&scaler["status"]["currentReplicas"], &scaler["status"]["desiredReplicas"]), (&json!(1), &json!(2)));
    assert!(scaler["status"]["lastScaleTime"].is_string());

    // A scale beyond maxReplicas holds until the next sync, 15 s after the first; it does not
    // hasten it.
    cluster.change(DEPLOYMENT, "web", |d| d["spec"]["replicas"] = 5.into());
    cluster.wait(14).await;
    assert_eq!(cluster.get(DEPLOYMENT, "web")["spec"]["replicas"], 5);
    assert_eq!(cluster.pods().iter().filter(|p| !is_deleting(p)).count(), 5);
    cluster.wait(1).await;
    assert_eq!(cluster.get(DEPLOYMENT, "web")["spec"]["replicas"], 3);
    assert_eq!(cluster.get(resources::HORIZONTAL_POD_AUTOSCALER, "scaler")["status"]["currentReplicas"], 5);

    // Within the bounds the metrics cannot be read: nothing changes, and the status says why.
    cluster.wait(15).await;
    let scaler = cluster.get(resources::HORIZONTAL_POD_AUTOSCALER, "scaler");
    let active = condition(&scaler, "ScalingActive");
    assert_eq!((&active["status"], &active["reason"]), (&json!("False"), &json!("FailedGetResourceMetric")));
    assert!(active["message"].as_str().unwrap().contains("failed to get cpu utilization"), "{active}");
    assert_eq!(scaler["status"]["currentMetrics"], json!([{"type": ""}]));
    assert_eq!((&scaler["status"]["currentReplicas"], &scaler["status"]["desiredReplicas"]), (&json!(3), &json!(3)));
    assert_eq!(cluster.get(DEPLOYMENT, "web")["spec"]["replicas"], 3);
}

#[tokio::test(start_paused = true)]
async fn an_autoscaler_leaves_a_target_at_zero_alone() {
    let mut cluster = Cluster::new(Pace::Fast);
    cluster.create(DEPLOYMENT, deployment("web", 0, "v1"));
    cluster.create(resources::HORIZONTAL_POD_AUTOSCALER, autoscaler("Deployment", "web", 2, 3));
    cluster.wait(60).await;
    assert_eq!(cluster.get(DEPLOYMENT, "web")["spec"]["replicas"], 0);
    assert!(cluster.pods().is_empty());
    let scaler = cluster.get(resources::HORIZONTAL_POD_AUTOSCALER, "scaler");
    assert_eq!(condition(&scaler, "ScalingActive")["reason"], "ScalingDisabled");
    assert_eq!(scaler["status"]["desiredReplicas"], 0);
    assert!(scaler["status"].get("currentReplicas").is_none(), "{}", scaler["status"]);
}

#[tokio::test(start_paused = true)]
async fn an_autoscaler_says_why_it_cannot_scale_its_target() {
    for (kind, target, why) in [
        ("Deployment", "gone", "deployments.apps \"gone\" not found"),
        ("DaemonSet", "web", "the server could not find the requested resource"),
        ("Widget", "web", "no matches for kind \"Widget\" in group \"apps\""),
    ] {
        let mut cluster = Cluster::new(Pace::Fast);
        cluster.create(DAEMON_SET, deployment("web", 1, "v1"));
        cluster.create(resources::HORIZONTAL_POD_AUTOSCALER, autoscaler(kind, target, 1, 3));
        let scaler = cluster.get(resources::HORIZONTAL_POD_AUTOSCALER, "scaler");
        let able = condition(&scaler, "AbleToScale");
        assert_eq!((&able["status"], &able["reason"]), (&json!("False"), &json!("FailedGetScale")), "{kind}");
        let message = format!("the HPA controller was unable to get the target's current scale: {why}");
        assert_eq!(able["message"], message, "{kind}");
    }
}

/// A replica set `web` of `replicas` pods that run as the service account `builder`.
fn web_naming_builder(replicas: i64) -> Value {
    let mut rs = deployment("web", replicas, "v1");
    rs["spec"]["template"]["spec"]["serviceAccountName"] = "builder".into();
    rs
}

/// The failures the replica set `web` has backed off from, and when it is to try again.
fn backoff_of_web(cluster: &Cluster) -> (u32, Instant) {
    let uid = cluster.get(REPLICA_SET, "web")["metadata"]["uid"].as_str().unwrap().to_string();
    let (failures, at, _) = cluster.controllers.backoff.failed[&uid];
    (failures, at)
}

#[tokio::test(start_paused = true)]
async fn a_replica_set_whose_pods_name_a_missing_service_account_backs_off_until_it_exists() {
    let mut cluster = Cluster::new(Pace::Fast);
    cluster.create(REPLICA_SET, web_naming_builder(2));
    assert!(cluster.pods().is_empty());
    let failure = condition(&cluster.get(REPLICA_SET, "web"), "ReplicaFailure").clone();
    assert_eq!((&failure["status"], &failure["reason"]), (&json!("True"), &json!("FailedCreate")));
    let refusal =
        "pods \"web-\" is forbidden: error looking up service account ns/builder: serviceaccount \"builder\" not found";
    assert_eq!(failure["message"], refusal);

    // Tried twice at once (the second for the event of its own status write), then at 5 ms,
    // 25 ms, 65 ms, ... (the delay doubling): the account made at 10 s is found by the try at
    // 10.225 s, not at once.
    cluster.wait(10).await;
    cluster.create(resources::SERVICE_ACCOUNT, json!({"metadata": {"name": "builder"}}));
    assert!(cluster.pods().is_empty());
    cluster.wait(1).await;
    assert_eq!(cluster.pods().len(), 2);
    assert!(condition(&cluster.get(REPLICA_SET, "web"), "ReplicaFailure").is_null());
}

#[tokio::test(start_paused = true)]
async fn a_change_to_a_replica_set_backing_off_has_it_try_again_at_once() {
    let mut cluster = Cluster::new(Pace::Fast);
    cluster.create(REPLICA_SET, web_naming_builder(2));
    let failures = |cluster: &Cluster| backoff_of_web(cluster).0;
    // Its own status write (the ReplicaFailure condition) is an event: a second try at once.
    assert_eq!(failures(&cluster), 2);
    cluster.wait(10).await;
    let (tries, next) = backoff_of_web(&cluster);
    // A change to the replica set (a label, say) is an event: it tries at once. Refused again,
    // it counts one more failure but does not put off the retry already queued.
    cluster.change(REPLICA_SET, "web", |rs| rs["metadata"]["labels"]["touched"] = "once".into());
    assert_eq!(backoff_of_web(&cluster), (tries + 1, next));
    // The account made is no event for the replica set: it waits for its retry.
    cluster.create(resources::SERVICE_ACCOUNT, json!({"metadata": {"name": "builder"}}));
    assert!(cluster.pods().is_empty());
    // Another change, and it tries at once and finds the account.
    cluster.change(REPLICA_SET, "web", |rs| rs["metadata"]["labels"]["touched"] = "twice".into());
    assert_eq!(cluster.pods().len(), 2);
    assert!(cluster.controllers.backoff.failed.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_change_to_a_pod_of_a_replica_set_backing_off_has_it_try_again_at_once() {
    let mut cluster = Cluster::new(Pace::Fast);
    cluster.create(resources::SERVICE_ACCOUNT, json!({"metadata": {"name": "builder"}}));
    cluster.create(REPLICA_SET, web_naming_builder(1));
    let pod = cluster.pods()[0]["metadata"]["name"].as_str().unwrap().to_string();
    cluster.store.remove(resources::SERVICE_ACCOUNT, NS, "builder");
    cluster.change(REPLICA_SET, "web", |rs| rs["spec"]["replicas"] = 2.into());
    let failures = |cluster: &Cluster| backoff_of_web(cluster).0;
    cluster.wait(10).await;
    let tries = failures(&cluster);
    // A change to its pod (an annotation) is an event for it: one more try, at once.
    cluster.change(POD, &pod, |pod| pod["metadata"]["annotations"]["touched"] = "yes".into());
    assert_eq!(failures(&cluster), tries + 1);
    assert_eq!(cluster.pods().len(), 1);
    // So is a label no selector reads, which the controllers otherwise pass over: with the
    // account back, the try it brings makes the second pod.
    cluster.create(resources::SERVICE_ACCOUNT, json!({"metadata": {"name": "builder"}}));
    assert_eq!(cluster.pods().len(), 1);
    cluster.change(POD, &pod, |pod| pod["metadata"]["labels"]["unread"] = "yes".into());
    assert_eq!(cluster.pods().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_change_to_a_pod_of_a_daemon_set_backing_off_has_it_try_again_at_once() {
    let mut cluster = Cluster::new(Pace::Fast);
    let account = || json!({"metadata": {"name": "builder"}});
    cluster.create(resources::SERVICE_ACCOUNT, account());
    let mut ds = daemon_set("agent", "v1");
    ds["spec"]["template"]["spec"]["serviceAccountName"] = "builder".into();
    cluster.create(DAEMON_SET, ds);
    cluster.wait(5).await;
    let names: Vec<String> = cluster.pods().iter().map(|p| name(p).to_string()).collect();
    assert_eq!(names.len(), 2);
    // One node's pod gone while the account is missing: its replacement is refused.
    cluster.store.remove(resources::SERVICE_ACCOUNT, NS, "builder");
    cluster.store.remove(POD, NS, &names[0]);
    cluster.controllers.reconcile(&mut cluster.store);
    assert_eq!(cluster.pods().len(), 1);
    let uid = cluster.get(DAEMON_SET, "agent")["metadata"]["uid"].as_str().unwrap().to_string();
    assert!(cluster.controllers.backoff.failed.contains_key(&uid));
    // The account made is no event for the daemon set; a label on its other pod that no selector
    // reads is, and the try it brings makes the replacement.
    cluster.create(resources::SERVICE_ACCOUNT, account());
    assert_eq!(cluster.pods().len(), 1);
    cluster.change(POD, &names[1], |pod| pod["metadata"]["labels"]["unread"] = "yes".into());
    assert_eq!(cluster.pods().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_replica_set_deleted_while_backing_off_is_forgotten() {
    let mut cluster = Cluster::new(Pace::Fast);
    cluster.create(REPLICA_SET, web_naming_builder(2));
    let uid = cluster.get(REPLICA_SET, "web")["metadata"]["uid"].as_str().unwrap().to_string();
    assert!(cluster.controllers.backoff.failed.contains_key(&uid));
    cluster.wait(1).await;
    cluster.store.remove(REPLICA_SET, NS, "web");
    cluster.controllers.reconcile(&mut cluster.store);
    assert!(cluster.controllers.backoff.failed.is_empty());
}

/// Upstream's updateDaemonSet returns when manage fails, before cleanupHistory: a revision no pod
/// uses stays while a refused pod keeps the sync failing, and goes once a sync succeeds.
#[tokio::test(start_paused = true)]
async fn a_daemon_set_whose_pods_are_refused_keeps_its_old_revisions() {
    let mut cluster = Cluster::new(Pace::Fast);
    cluster.create(resources::SERVICE_ACCOUNT, json!({"metadata": {"name": "builder"}}));
    let mut ds = daemon_set("agent", "v1");
    ds["spec"]["revisionHistoryLimit"] = 0.into();
    ds["spec"]["template"]["spec"]["serviceAccountName"] = "builder".into();
    cluster.create(DAEMON_SET, ds);
    cluster.wait(10).await;
    assert_eq!(cluster.pods().len(), 2);
    let revisions = |cluster: &Cluster| {
        let mut images: Vec<String> = cluster
            .list(CONTROLLER_REVISION)
            .iter()
            .map(|r| r["data"]["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap().to_string())
            .collect();
        images.sort();
        images
    };
    let set_image = |version: &'static str| {
        move |ds: &mut Value| {
            ds["spec"]["template"]["spec"]["containers"][0]["image"] = format!("agent:{version}").into()
        }
    };

    // v2 replaces one node's pod, and its new pod is refused: that node has none.
    cluster.store.remove(resources::SERVICE_ACCOUNT, NS, "builder");
    cluster.change(DAEMON_SET, "agent", set_image("v2"));
    cluster.wait(60).await;
    assert_eq!(cluster.pods().len(), 1);
    // v3 while the sync keeps failing: v2, which no pod uses, is kept (v1 runs on a node).
    cluster.change(DAEMON_SET, "agent", set_image("v3"));
    cluster.wait(60).await;
    assert_eq!(revisions(&cluster), ["agent:v1", "agent:v2", "agent:v3"]);

    // Once the account is back (and a change brings the retry at once) the syncs succeed, and
    // the revisions beyond the limit go.
    cluster.create(resources::SERVICE_ACCOUNT, json!({"metadata": {"name": "builder"}}));
    cluster.change(DAEMON_SET, "agent", |ds| ds["metadata"]["labels"]["retry"] = "now".into());
    cluster.wait(120).await;
    assert!(cluster.pods().iter().all(|p| image(p) == "agent:v3" && is_ready(p)));
    assert_eq!(cluster.pods().len(), 2);
    assert_eq!(revisions(&cluster), ["agent:v3"]);
}

#[tokio::test(start_paused = true)]
async fn an_interrupted_run_stops_the_reaction_to_a_write_between_rounds() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let mut whole = Cluster::new(Pace::Fast);
    whole.create(REPLICA_SET, replica_set("web", 600));
    // Upstream's burst: 500 pods a sync, so the last 100 come in a second round.
    assert_eq!(whole.pods().len(), 600);

    let mut cut = Cluster::new(Pace::Fast);
    // Interrupted from the second round on.
    let rounds = AtomicUsize::new(0);
    cut.controllers.stop_when(move || rounds.fetch_add(1, Ordering::Relaxed) >= 1);
    cut.create(REPLICA_SET, replica_set("web", 600));
    assert_eq!(cut.pods().len(), 500, "stopped after the round that made the first 500");
    cut.change(REPLICA_SET, "web", |rs| rs["spec"]["replicas"] = 700.into());
    assert_eq!(cut.pods().len(), 500, "no round at all once interrupted");
}

/// Upstream's pod garbage collector passes every 20 s (here from the cluster's start) and deletes
/// a pod on a missing node at the first pass 40 s after the pass that quarantined the node: a
/// pod bound at 5 s is quarantined at 20 s and gone at 60 s, marked Failed first; one bound to a
/// node that exists is left alone, and a deleted orphan waits for the collector too.
#[tokio::test(start_paused = true)]
async fn a_pod_on_a_node_that_does_not_exist_is_deleted_after_the_quarantine() {
    let mut cluster = Cluster::new(Pace::Kind);
    let started = Instant::now();
    cluster.wait(5).await;
    let pod = |name: &str, node: &str| json!({"metadata": {"name": name}, "spec": {"nodeName": node, "containers": [{"name": "web", "image": "nginx"}]}});
    let since = cluster.store.resource_version();
    cluster.create(POD, pod("orphan", "gone"));
    cluster.create(POD, pod("deleted-orphan", "gone"));
    cluster.create(POD, pod("placed", "rehearse-worker"));
    cluster.store.mark_deleted(POD, NS, "deleted-orphan", Some(30));
    cluster.wait(50).await; // to 55 s: still in quarantine, the deletion never finished
    assert_eq!(cluster.pods().len(), 3);
    assert!(is_deleting(&cluster.get(POD, "deleted-orphan")));
    assert!(!is_ready(&cluster.get(POD, "orphan")));
    cluster.wait(5).await; // 60 s: the third pass
    let names: Vec<String> = cluster.pods().iter().map(|p| name(p).to_string()).collect();
    assert_eq!(names, ["placed"], "at {:?}", started.elapsed());
    let mut failed_first = false;
    cluster.replay(since, POD, |pods| {
        if let Some(orphan) = pods.get("orphan") {
            failed_first |= orphan["status"]["phase"] == "Failed"
                && orphan["status"]["conditions"].as_array().is_some_and(|c| {
                    c.iter().any(|c| c["type"] == "DisruptionTarget" && c["reason"] == "DeletionByPodGC")
                });
        }
    });
    assert!(failed_first, "the orphan is marked Failed by the collector before it is deleted");
}

#[tokio::test(start_paused = true)]
async fn a_pod_its_finalizers_hold_is_stopped_when_its_kubelet_would_remove_it_and_stays() {
    for pace in [Pace::Kind, Pace::Fast] {
        let mut cluster = Cluster::new(pace);
        cluster.create(SERVICE, service("web", "web"));
        let mut pod = bare_pod("web", "web");
        pod["metadata"]["finalizers"] = json!(["example.com/hold"]);
        pod["spec"]["terminationGracePeriodSeconds"] = json!(10);
        cluster.create(POD, pod);
        cluster.wait(5).await;
        let serving = |cluster: &Cluster| -> Vec<Value> {
            let slices = cluster.list(ENDPOINT_SLICE);
            slices[0]["endpoints"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| e["conditions"]["serving"].clone())
                .collect()
        };
        assert_eq!(serving(&cluster), [json!(true)], "{pace:?}");

        let deleted = cluster.store.mark_deleted(POD, NS, "web", Some(10)).unwrap();
        let deleted_at = deleted["metadata"]["deletionTimestamp"].as_str().and_then(parse_time).unwrap();
        cluster.controllers.reconcile(&mut cluster.store);
        if pace == Pace::Kind {
            // It runs, and serves, for its grace period, as any deleted pod does.
            cluster.wait(10).await;
            assert_eq!(phase(&cluster.get(POD, "web")), "Running");
            assert_eq!(serving(&cluster), [json!(true)]);
            cluster.wait(3).await;
        }
        // Then its kubelet has stopped it: Failed, not ready, no longer an endpoint, and deleted
        // again with no grace period (its deletionTimestamp moved back to the delete's time).
        let stopped = cluster.get(POD, "web");
        assert_eq!(phase(&stopped), "Failed", "{pace:?}");
        assert!(!is_ready(&stopped));
        assert_eq!(stopped["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"], 137);
        assert_eq!(stopped["metadata"]["deletionGracePeriodSeconds"], 0);
        // (Never before the moment of that delete: at the kind pace, two seconds past the first
        // deletionTimestamp.)
        let expected = if pace == Pace::Kind { deleted_at + 2 } else { deleted_at - 10 };
        assert_eq!(stopped["metadata"]["deletionTimestamp"].as_str().and_then(parse_time), Some(expected), "{pace:?}");
        assert!(serving(&cluster).is_empty(), "{pace:?}");
        // It stays until its finalizer is gone; then the API removes it.
        cluster.wait(60).await;
        cluster.change(POD, "web", |pod| pod["metadata"]["finalizers"] = json!([]));
        assert!(cluster.store.get(POD, NS, "web").is_none(), "{pace:?}");
    }
}

/// The pods the namespace's slices list ready, in name order, after each change to them since
/// `since`: each state once, for as long as it lasted.
fn ready_as_the_slices_went(cluster: &Cluster, since: u64) -> Vec<Vec<String>> {
    let mut states: Vec<Vec<String>> = Vec::new();
    cluster.replay(since, ENDPOINT_SLICE, |slices| {
        let endpoints = slices.values().flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default());
        let mut ready: Vec<String> = endpoints
            .filter(|e| e["conditions"]["ready"] == true)
            .map(|e| e["targetRef"]["name"].as_str().unwrap_or_default().to_string())
            .collect();
        ready.sort();
        if states.last() != Some(&ready) {
            states.push(ready);
        }
    });
    states
}

#[tokio::test(start_paused = true)]
async fn pods_that_turn_ready_at_one_instant_join_their_service_one_at_a_time() {
    // Three pods made together at the kind pace are due Ready at the same instant. On a cluster
    // each one's kubelet reports it on its own and the Service gains them one by one; a guard
    // counting on them arriving together must see the counts in between.
    let mut cluster = Cluster::new(Pace::Kind);
    cluster.create(SERVICE, service("web", "web"));
    let since = cluster.store.resource_version();
    cluster.create(DEPLOYMENT, deployment("web", 3, "v1"));
    cluster.wait(5).await;
    assert!(cluster.pods().iter().all(is_ready), "all three started");
    // One at a time, in name order.
    let mut names: Vec<String> = cluster.pods().iter().map(|p| name(p).to_string()).collect();
    names.sort();
    let expected: Vec<Vec<String>> = (0..=3).map(|joined| names[..joined].to_vec()).collect();
    assert_eq!(ready_as_the_slices_went(&cluster, since), expected);
}

#[tokio::test(start_paused = true)]
async fn many_pods_that_turn_ready_at_one_instant_join_their_service_in_a_bounded_number_of_groups() {
    // A pass of every controller per pod would make starting thousands quadratic: 40 pods due
    // together start in 16 groups, 8 of 3 pods and 8 of 2.
    let mut cluster = Cluster::new(Pace::Kind);
    cluster.create(SERVICE, service("web", "web"));
    let since = cluster.store.resource_version();
    cluster.create(DEPLOYMENT, deployment("web", 40, "v1"));
    cluster.wait(5).await;
    let counts: Vec<usize> = ready_as_the_slices_went(&cluster, since).iter().map(Vec::len).collect();
    let expected: Vec<usize> = (0..=8).map(|group| group * 3).chain((1..=8).map(|group| 24 + group * 2)).collect();
    assert_eq!(counts, expected, "ready endpoints as the slice went");
}

#[tokio::test(start_paused = true)]
async fn a_pod_that_ends_as_its_replacement_starts_leaves_its_service_empty_for_a_moment() {
    // Deleted at a whole second with a 1 s grace period, the pod is gone 3 s later, the moment
    // its replacement, made at once, turns ready. Which comes first is chance on a cluster; a
    // guard must see the gap the end opens, so the slice is published in between.
    let mut cluster = Cluster::new(Pace::Kind);
    cluster.create(SERVICE, service("web", "web"));
    cluster.create(DEPLOYMENT, deployment("web", 1, "v1"));
    cluster.wait(5).await;
    let old = name(&cluster.pods()[0]).to_string();
    let since = cluster.store.resource_version();
    let subsec = cluster.store.clock.elapsed().subsec_nanos();
    assert_eq!(subsec, 0, "the deletion is at a whole second");
    cluster.store.mark_deleted(POD, NS, &old, Some(1));
    cluster.wait(5).await;
    let serving = |slices: &BTreeMap<String, Value>| -> Vec<String> {
        let endpoints = slices.values().flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default());
        endpoints
            .filter(|e| e["conditions"]["serving"] == true)
            .map(|e| e["targetRef"]["name"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let mut states: Vec<Vec<String>> = Vec::new();
    cluster.replay(since, ENDPOINT_SLICE, |slices| {
        let now = serving(slices);
        if states.last() != Some(&now) {
            states.push(now);
        }
    });
    let new = cluster.pods().iter().map(|p| name(p).to_string()).find(|n| *n != old).unwrap();
    assert_eq!(states, [vec![old.clone()], vec![], vec![new]], "serving endpoints as the slice went");
}

/// The slices of a Service without a selector, as the testbed's mirroring controller wrote them
/// for the same Endpoints (v1.37): ports that share their addresses share a slice, an address
/// not ready on a port is not ready there, IPv6 apart; the Endpoints' labels and annotations
/// carried over, the Endpoints the owner. Then `skip-mirror` takes them away, an address is
/// written canonically, an ExternalName Service is mirrored too, deleting the Service deletes
/// them, and a selector hands the Service to the EndpointSlice controller.
#[test]
fn a_service_without_a_selector_gets_slices_mirrored_from_its_endpoints() {
    let mut cluster = Cluster::new(Pace::Fast);
    cluster.create(SERVICE, json!({"metadata": {"name": "ext"}, "spec": {"ports": [{"port": 80}]}}));
    let two = json!({"ip": "10.1.0.2", "hostname": "two", "nodeName": "worker-1"});
    let endpoints = cluster.create(
        resources::ENDPOINTS,
        json!({
            "metadata": {"name": "ext", "labels": {"team": "a"}, "annotations": {"note": "kept"}},
            "subsets": [
                {
                    "addresses": [two, {"ip": "10.1.0.1"}],
                    "notReadyAddresses": [{"ip": "10.1.0.3"}],
                    "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                },
                {
                    "addresses": [{"ip": "10.1.0.1"}, two],
                    "notReadyAddresses": [{"ip": "10.1.0.3"}],
                    "ports": [{"appProtocol": "https", "name": "https", "port": 8443, "protocol": "TCP"}],
                },
                {
                    "addresses": [{"ip": "fd00::1"}, {"ip": "10.1.0.9"}],
                    "notReadyAddresses": [{"ip": "10.1.0.1"}],
                    "ports": [{"port": 9090, "protocol": "UDP"}],
                },
            ],
        }),
    );
    let mirrored = |cluster: &Cluster| -> Vec<Value> {
        let mut slices: Vec<Value> = cluster
            .list(ENDPOINT_SLICE)
            .into_iter()
            .map(|s| {
                let m = &s["metadata"];
                json!({"generateName": m["generateName"], "labels": m["labels"], "annotations": m["annotations"],
                    "owner": m["ownerReferences"], "addressType": s["addressType"], "endpoints": s["endpoints"],
                    "ports": s["ports"]})
            })
            .collect();
        slices.sort_by_key(|s| s.to_string());
        slices
    };
    let labels = json!({"endpointslice.kubernetes.io/managed-by": "endpointslicemirroring-controller.k8s.io",
        "kubernetes.io/service-name": "ext", "team": "a"});
    let owner = json!([{"apiVersion": "v1", "blockOwnerDeletion": true, "controller": true, "kind": "Endpoints",
        "name": "ext", "uid": endpoints["metadata"]["uid"]}]);
    let slice = |address_type: &str, endpoints: Value, ports: Value| {
        json!({"generateName": "ext-", "labels": labels, "annotations": {"note": "kept"}, "owner": owner,
            "addressType": address_type, "endpoints": endpoints, "ports": ports})
    };
    let mut expected = vec![
        slice(
            "IPv6",
            json!([{"addresses": ["fd00::1"], "conditions": {"ready": true}}]),
            json!([{"name": "", "port": 9090, "protocol": "UDP"}]),
        ),
        slice(
            "IPv4",
            json!([{"addresses": ["10.1.0.9"], "conditions": {"ready": true}},
                {"addresses": ["10.1.0.1"], "conditions": {"ready": false}}]),
            json!([{"name": "", "port": 9090, "protocol": "UDP"}]),
        ),
        slice(
            "IPv4",
            json!([{"addresses": ["10.1.0.1"], "conditions": {"ready": true}},
                {"addresses": ["10.1.0.2"], "conditions": {"ready": true}, "hostname": "two", "nodeName": "worker-1"},
                {"addresses": ["10.1.0.3"], "conditions": {"ready": false}}]),
            json!([{"name": "http", "port": 8080, "protocol": "TCP"},
                {"appProtocol": "https", "name": "https", "port": 8443, "protocol": "TCP"}]),
        ),
    ];
    expected.sort_by_key(|s| s.to_string());
    assert_eq!(mirrored(&cluster), expected);

    // Fewer addresses: the slices are updated in place, not replaced.
    let names: Vec<String> = cluster.list(ENDPOINT_SLICE).iter().map(|s| name(s).to_string()).collect();
    cluster.change(resources::ENDPOINTS, "ext", |e| {
        e["subsets"] = json!([{"addresses": [{"ip": "10.1.0.1"}], "ports": [{"name": "http", "port": 8080}]}]);
    });
    let slices = cluster.list(ENDPOINT_SLICE);
    assert_eq!(slices.len(), 1, "one port set and family left: {slices:?}");
    assert!(names.contains(&name(&slices[0]).to_string()), "a slice kept under its name");
    assert_eq!(slices[0]["endpoints"], json!([{"addresses": ["10.1.0.1"], "conditions": {"ready": true}}]));

    cluster.change(resources::ENDPOINTS, "ext", |e| {
        e["metadata"]["labels"]["endpointslice.kubernetes.io/skip-mirror"] = "true".into();
    });
    assert!(cluster.list(ENDPOINT_SLICE).is_empty(), "skip-mirror takes them away");
    cluster.change(resources::ENDPOINTS, "ext", |e| {
        e["metadata"]["labels"].as_object_mut().unwrap().remove("endpointslice.kubernetes.io/skip-mirror");
    });
    assert_eq!(cluster.list(ENDPOINT_SLICE).len(), 1, "mirrored again");
    // Written in canonical form, as upstream parses and writes each address again.
    cluster.change(resources::ENDPOINTS, "ext", |e| {
        e["subsets"] = json!([{"addresses": [{"ip": "FD00::0001"}], "ports": [{"name": "http", "port": 8080}]}]);
    });
    let slices = cluster.list(ENDPOINT_SLICE);
    assert_eq!(slices.len(), 1, "one IPv6 slice: {slices:?}");
    assert_eq!(slices[0]["addressType"], "IPv6");
    assert_eq!(slices[0]["endpoints"][0]["addresses"], json!(["fd00::1"]));
    assert!(!names.contains(&name(&slices[0]).to_string()), "an IPv4 slice is never reused for IPv6");
    // An ExternalName Service is mirrored like any other without a selector, as upstream does.
    cluster.change(SERVICE, "ext", |s| {
        s["spec"] = json!({"type": "ExternalName", "externalName": "db.example.com"});
    });
    assert_eq!(cluster.list(ENDPOINT_SLICE).len(), 1, "still mirrored");
    // The Service deleted, its mirrored slices go; made again, it has them again.
    let service = cluster.get(SERVICE, "ext");
    cluster.store.remove(SERVICE, NS, "ext");
    cluster.controllers.reconcile(&mut cluster.store);
    assert!(cluster.list(ENDPOINT_SLICE).is_empty(), "the Service gone, so are its mirrored slices");
    let mut again = service.clone();
    again["metadata"] = json!({"name": "ext"});
    cluster.create(SERVICE, again);
    assert_eq!(cluster.list(ENDPOINT_SLICE).len(), 1, "made again, mirrored again");
    cluster.change(SERVICE, "ext", |s| s["spec"] = json!({"ports": [{"port": 80}], "selector": {"app": "web"}}));
    let managers: Vec<Value> = cluster
        .list(ENDPOINT_SLICE)
        .iter()
        .map(|s| s["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"].clone())
        .collect();
    assert_eq!(
        managers,
        [json!("endpointslice-controller.k8s.io")],
        "a selector hands the Service to the other controller"
    );
}

/// Init containers run before the app containers: one whose environment names a missing
/// ConfigMap waits in the kubelet's words, and so does every container after it, until it exists.
#[tokio::test(start_paused = true)]
async fn an_init_container_without_its_config_map_holds_the_pod_until_it_exists() {
    let statuses = |pod: &Value, field: &str| -> Vec<(String, Value)> {
        let statuses = pod["status"][field].as_array().cloned().unwrap_or_default();
        statuses.iter().map(|s| (s["name"].as_str().unwrap_or_default().to_string(), s["state"].clone())).collect()
    };
    let message = |pod: &Value, kind: &str| condition(pod, kind)["message"].clone();
    for pace in [Pace::Fast, Pace::Kind] {
        let mut cluster = Cluster::new(pace);
        let mut pod = bare_pod("web", "web");
        pod["spec"]["initContainers"] = json!([
            {"name": "proxy", "image": "envoy", "restartPolicy": "Always"},
            {"name": "migrate", "image": "tool", "env": [
                {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}},
            ]},
            {"name": "warm", "image": "tool"},
        ]);
        cluster.create(POD, pod);
        if pace == Pace::Kind {
            // While its sandbox is made, every container waits for the init containers.
            let pod = cluster.get(POD, "web");
            let initializing = json!({"waiting": {"reason": "PodInitializing"}});
            let init = statuses(&pod, "initContainerStatuses");
            assert_eq!(init.len(), 3, "{init:?}");
            assert!(init.iter().all(|(_, state)| *state == initializing));
            assert_eq!(statuses(&pod, "containerStatuses"), [("c".to_string(), initializing)]);
            assert_eq!(message(&pod, "Initialized"), "containers with incomplete status: [proxy migrate warm]");
            assert_eq!(message(&pod, "Ready"), "containers with unready status: [proxy c]");
        }
        cluster.wait(30).await;
        let pod = cluster.get(POD, "web");
        assert_eq!(phase(&pod), "Pending", "{pace:?}");
        assert!(pod["status"]["podIP"].is_string(), "{pace:?}: the sandbox is made");
        let init = statuses(&pod, "initContainerStatuses");
        assert_eq!(init.len(), 3, "{init:?}");
        assert!(init[0].1["running"].is_object(), "{pace:?}: the sidecar runs: {init:?}");
        assert_eq!(
            init[1].1,
            json!({"waiting": {"reason": "CreateContainerConfigError", "message": "configmap \"settings\" not found"}})
        );
        assert_eq!(init[2].1, json!({"waiting": {"reason": "PodInitializing"}}));
        assert_eq!(
            statuses(&pod, "containerStatuses"),
            [("c".to_string(), json!({"waiting": {"reason": "PodInitializing"}}))]
        );
        assert_eq!(message(&pod, "Initialized"), "containers with incomplete status: [migrate warm]");
        assert_eq!(message(&pod, "Ready"), "containers with unready status: [c]");
        // Held, it is not written again.
        let version = cluster.store.resource_version();
        cluster.wait(30).await;
        assert_eq!(cluster.store.resource_version(), version, "{pace:?}");

        cluster.create(resources::CONFIG_MAP, json!({"metadata": {"name": "settings"}, "data": {"mode": "fast"}}));
        cluster.wait(30).await;
        let pod = cluster.get(POD, "web");
        assert!(is_ready(&pod), "{pace:?}: {pod}");
        let init = statuses(&pod, "initContainerStatuses");
        assert_eq!(init.len(), 3, "{init:?}");
        assert!(init[0].1["running"].is_object());
        for (_, state) in &init[1..] {
            assert_eq!(state["terminated"]["reason"], "Completed");
            assert_eq!(state["terminated"]["exitCode"], 0);
        }
        assert_eq!(condition(&pod, "Initialized")["status"], "True");
    }
}

/// A pod whose volume cannot be mounted has no sandbox and so no IP, unless it is on the host's
/// network: the kubelet then reports the host's address at once, as for any such pod.
#[tokio::test(start_paused = true)]
async fn a_pod_held_by_its_volume_has_an_ip_only_on_the_hosts_network() {
    for pace in [Pace::Fast, Pace::Kind] {
        let mut cluster = Cluster::new(pace);
        for (name, host_network) in [("own", false), ("host", true)] {
            let mut pod = bare_pod(name, "web");
            pod["spec"]["hostNetwork"] = host_network.into();
            pod["spec"]["volumes"] = json!([{"name": "certs", "secret": {"secretName": "certs"}}]);
            cluster.create(POD, pod);
        }
        cluster.wait(30).await;
        let own = cluster.get(POD, "own");
        let host = cluster.get(POD, "host");
        for pod in [&own, &host] {
            assert_eq!(phase(pod), "Pending", "{pace:?}");
            assert_eq!(pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"], "ContainerCreating");
        }
        assert!(own["status"]["podIP"].is_null(), "{pace:?}: {own}");
        assert!(host["status"]["podIP"].is_string(), "{pace:?}: {host}");
        assert_eq!(host["status"]["podIP"], host["status"]["hostIP"], "{pace:?}");
    }
}

/// A pod with a readiness gate runs, its containers ready, and is not Ready until the gate's
/// condition is True: the kubelet does not set it, and is not woken again while it is unset.
#[tokio::test(start_paused = true)]
async fn a_pod_with_a_readiness_gate_is_ready_only_when_its_condition_is_true() {
    for pace in [Pace::Fast, Pace::Kind] {
        let mut cluster = Cluster::new(pace);
        let mut pod = bare_pod("web", "web");
        pod["spec"]["readinessGates"] =
            json!([{"conditionType": "example.com/lb"}, {"conditionType": "example.com/dns"}]);
        cluster.create(POD, pod);
        cluster.wait(30).await;
        let pod = cluster.get(POD, "web");
        assert_eq!(phase(&pod), "Running", "{pace:?}");
        assert!(!is_ready(&pod), "{pace:?}");
        assert_eq!(condition(&pod, "ContainersReady")["status"], "True");
        assert_eq!(condition(&pod, "Ready")["reason"], "ReadinessGatesNotReady");
        assert_eq!(
            condition(&pod, "Ready")["message"],
            "corresponding condition of pod readiness gate \"example.com/lb\" does not exist., corresponding \
             condition of pod readiness gate \"example.com/dns\" does not exist."
        );
        let version = cluster.store.resource_version();
        cluster.wait(30).await;
        assert_eq!(cluster.store.resource_version(), version, "{pace:?}: the kubelet keeps writing it");

        let started = pod["status"]["containerStatuses"].clone();
        let set_gate = |cluster: &mut Cluster, gate: &str, status: &str| {
            cluster.change(POD, "web", |pod| {
                let conditions = pod["status"]["conditions"].as_array_mut().unwrap();
                conditions.retain(|c| c["type"] != gate);
                conditions.push(json!({"type": gate, "status": status}));
            });
        };
        // Someone sets one gate True and the other False: still not Ready, in other words, and
        // the gates' conditions stay as written.
        set_gate(&mut cluster, "example.com/lb", "True");
        set_gate(&mut cluster, "example.com/dns", "False");
        cluster.wait(1).await;
        let pod = cluster.get(POD, "web");
        assert!(!is_ready(&pod));
        assert_eq!(
            condition(&pod, "Ready")["message"],
            "the status of pod readiness gate \"example.com/dns\" is not \"True\", but False."
        );
        assert_eq!(condition(&pod, "example.com/lb")["status"], "True");
        // Both True: Ready, its containers left as they were.
        set_gate(&mut cluster, "example.com/dns", "True");
        cluster.wait(1).await;
        let pod = cluster.get(POD, "web");
        assert!(is_ready(&pod), "{pace:?}: {pod}");
        assert_eq!(condition(&pod, "example.com/dns")["status"], "True");
        assert_eq!(pod["status"]["containerStatuses"], started, "{pace:?}: the containers restarted");
        assert_eq!(condition(&pod, "ContainersReady")["status"], "True");
        // A gate turned False again: not Ready again.
        set_gate(&mut cluster, "example.com/lb", "False");
        cluster.wait(1).await;
        let pod = cluster.get(POD, "web");
        assert!(!is_ready(&pod), "{pace:?}: {pod}");
        assert_eq!(condition(&pod, "Ready")["reason"], "ReadinessGatesNotReady");
        let version = cluster.store.resource_version();
        cluster.wait(30).await;
        assert_eq!(cluster.store.resource_version(), version, "{pace:?}: the kubelet keeps writing it");
    }
}
