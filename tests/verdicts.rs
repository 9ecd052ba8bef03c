//! Verdicts are a function of the script and Kubernetes' rules: traffic is judged on the pods
//! behind the endpoints kube-proxy would use, refusals are told apart from failures, guards
//! judge a complete history without stalling, and timeouts say which pods were in flux.
//! Against the testbed's real API server (tests/run.sh starts it).

mod common;

use common::{rehearse, run, script};
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;

/// A Service without a selector and an EndpointSlice that rehearse's script writes itself: the
/// endpoint controller leaves such slices alone, so the script decides exactly what the slice
/// says and for how long, e.g. that it still routes to a pod that is gone.
fn manual_service(endpoints: &str) -> String {
    format!(
        r#"    apply <<YAML
apiVersion: v1
kind: Service
metadata:
  name: manual
spec:
  ports:
    - port: 80
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: manual-1
  labels:
    kubernetes.io/service-name: manual
    endpointslice.kubernetes.io/managed-by: rehearse.test
addressType: IPv4
ports:
  - port: 80
endpoints:
{endpoints}
YAML
"#
    )
}

fn endpoint(pod: &str, address: &str, ready: bool, serving: bool, terminating: bool) -> String {
    format!(
        "  - addresses: [\"{address}\"]\n    conditions: {{ready: {ready}, serving: {serving}, terminating: {terminating}}}\n    targetRef: {{kind: Pod, name: {pod}}}\n"
    )
}

/// Runs a script whose scenarios all fail (exit 1) and returns the result document of each of
/// `scenarios`, in order.
fn failing_documents(file: &str, text: &str, scenarios: &[&str]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = script(dir.path(), &format!("{file}.rollout"), text);
    let results = dir.path().join("results");
    let (code, output) = run(rehearse(&["run", path.to_str().unwrap(), "--results", results.to_str().unwrap()]));
    assert_eq!(code, 1, "{output}");
    scenarios.iter().map(|s| std::fs::read_to_string(results.join(format!("{file}__{s}.yaml"))).unwrap()).collect()
}

/// An `apply` step of DaemonSet `agent` (pods `app=agent`, one container), with one more line
/// in its pod template's spec.
fn apply_agent(pod_spec_line: &str) -> String {
    format!(
        "    apply <<YAML
        apiVersion: apps/v1
        kind: DaemonSet
        metadata:
          name: agent
        spec:
          selector:
            matchLabels:
              app: agent
          template:
            metadata:
              labels:
                app: agent
            spec:
              {pod_spec_line}
              containers:
                - name: agent
                  image: busybox:1.36
    YAML
"
    )
}

/// A scenario that deletes one pod of DaemonSet `agent` (its pods given `grace` seconds to
/// terminate), then expects the one pod left alone.
fn daemon_pod_deleted(name: &str, grace: u32) -> String {
    format!(
        "scenario {name:?} {{\n{}    wait rollout daemonset/agent\n    let victim = one pod app=agent\n    delete $victim\n    expect pods app=agent count 1 within 2s\n}}\n",
        apply_agent(&format!("terminationGracePeriodSeconds: {grace}"))
    )
}

#[test]
fn traffic_to_a_deleted_pod_still_counts_until_its_endpoint_goes() {
    let dir = tempfile::tempdir().unwrap();
    let slice = manual_service(&endpoint("canary", "10.0.0.201", true, true, false));
    let text = format!(
        "scenario \"stale endpoint\" {{\n    run canary labels app=web track=canary\n    wait pod/canary condition=Ready\n{slice}    expect-traffic service/manual -> 100% pods track=canary\n    delete pod/canary\n    wait pod/canary deleted within 45s\n    expect-traffic service/manual includes pods track=canary\n    expect-traffic service/manual excludes pods track=canary within 1s\n}}\n"
    );
    let path = script(dir.path(), "stale.rollout", &text);
    let (code, output) = run(rehearse(&["run", path.to_str().unwrap()]));
    // The pod is gone, but the slice still routes to it: kube-proxy would send it traffic, which
    // `includes` sees and `excludes` refuses.
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("service/manual sends traffic to every matching pod"), "{output}");
    assert!(
        output.contains("not satisfied within 1s: service/manual sends traffic to pod/canary (deleted)"),
        "{output}"
    );

    // The same goes for a share: the deleted canary still holds all of the traffic.
    let text = text.replace("excludes pods track=canary within 1s", "-> 0% pods track=canary within 1s");
    let path = script(dir.path(), "stale-share.rollout", &text);
    let (code, output) = run(rehearse(&["run", path.to_str().unwrap()]));
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("pod/canary (deleted) (100.0% to `pods track=canary`)"), "{output}");
}

/// An endpoint that names no pod: an address only, as a Service without a selector is often
/// given for a backend outside the cluster (a database moved in, say). kube-proxy routes to it as
/// to any endpoint, so it is counted and takes its share, but there is no pod to wait for.
fn outside_endpoint(address: &str) -> String {
    format!("  - addresses: [\"{address}\"]\n    conditions: {{ready: true}}\n")
}

#[test]
fn an_endpoint_outside_the_cluster_takes_traffic_without_a_pod() {
    let dir = tempfile::tempdir().unwrap();
    let endpoints = endpoint("inside", "10.0.0.201", true, true, false) + &outside_endpoint("192.0.2.10");
    let setup =
        format!("    run inside labels app=web\n    wait pod/inside condition=Ready\n{}", manual_service(&endpoints));
    let passing = format!(
        "scenario \"half outside\" {{\n{setup}    expect-traffic service/manual count 2\n    expect-traffic service/manual -> 50% pods app=web\n    expect-traffic service/manual includes pod/inside\n    expect-traffic service/manual excludes pods app=other\n}}\n"
    );
    let path = script(dir.path(), "outside.rollout", &passing);
    let (code, output) = run(rehearse(&["run", path.to_str().unwrap()]));
    assert_eq!(code, 0, "{output}");

    // Not every endpoint is a matching pod: the address outside takes the other half.
    let failing = format!(
        "scenario \"not only pods\" {{\n{setup}    expect-traffic service/manual -> pods app=web within 1s\n}}\n"
    );
    let documents = failing_documents("outside-exact", &failing, &["not-only-pods"]);
    assert!(
        documents[0].contains("service/manual sends traffic to address 192.0.2.10, pod/inside"),
        "{}",
        documents[0]
    );
}

#[test]
fn terminating_endpoints_serve_only_when_nothing_is_ready() {
    let dir = tempfile::tempdir().unwrap();
    let both = endpoint("old", "10.0.0.201", false, true, true) + &endpoint("new", "10.0.0.202", true, true, false);
    let only_old = endpoint("old", "10.0.0.201", false, true, true);
    let not_serving = endpoint("old", "10.0.0.201", false, false, true);
    let pods = "    run old labels app=web track=old\n    run new labels app=web track=new\n    wait pods app=web condition=Ready\n";
    let scenarios = [
        ("ready wins", both, "-> pods track=new"),
        ("fallback to serving terminating", only_old, "-> pods track=old"),
        ("terminating and not serving", not_serving, "none"),
    ];
    let text: String = scenarios
        .iter()
        .map(|(name, endpoints, expectation)| {
            format!(
                "scenario \"{name}\" {{\n{pods}{}    expect-traffic service/manual {expectation} within 5s\n}}\n\n",
                manual_service(endpoints)
            )
        })
        .collect();
    let path = script(dir.path(), "fallback.rollout", &text);
    let (code, output) = run(rehearse(&["run", "--jobs", "3", path.to_str().unwrap()]));
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("3 passed, 0 failed"), "{output}");
}

#[test]
fn a_guard_ends_with_its_scenario_even_when_another_service_changed_last() {
    let dir = tempfile::tempdir().unwrap();
    let text = "scenario \"two services\" {\n    apply \"dockercoins/rng.yaml\"\n    apply <<YAML\napiVersion: v1\nkind: Service\nmetadata:\n  name: rng-too\nspec:\n  selector:\n    app: rng\n  ports:\n    - port: 80\nYAML\n    scale deployment/rng to 3\n    wait rollout deployment/rng\n    guard service/rng always-serving\n    expect-traffic service/rng count 3\n}\n";
    let path = script(dir.path(), "two-services.rollout", text);
    let (code, output) = run(rehearse(&["run", path.to_str().unwrap()]));
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("ok   guard service/rng always-serving (line 18): never violated"), "{output}");
    // Before the fix the guard waited 10 s after the last step for a version only the other
    // watch could reach. The scenario's time beyond its steps' (which at kind's pace include
    // seconds of waiting for pods) is the guard's to account for.
    let scenario_secs: f64 = regex::Regex::new(r"PASS two services \(.*\) in ([0-9.]+)s")
        .unwrap()
        .captures(&output)
        .and_then(|c| c[1].parse().ok())
        .unwrap_or_else(|| panic!("no scenario time in:\n{output}"));
    let step_ms: f64 = regex::Regex::new(r"(?m)^  ok +\d+  .*?\s(\d+)ms  ")
        .unwrap()
        .captures_iter(&output)
        .map(|c| c[1].parse::<f64>().unwrap())
        .sum();
    let beyond_steps = scenario_secs - step_ms / 1000.0;
    assert!(beyond_steps < 5.0, "the guard stalled the scenario for {beyond_steps:.1}s:\n{output}");
}

#[test]
fn a_guard_judges_what_the_last_step_did_to_its_service() {
    // The scenario ends on the write that breaks the guard. The guard watches until the cluster
    // has come to rest after it, as a step is judged: on a cluster the endpoints follow the
    // scale a moment later, and a guard that stopped at the write passed. At the kind pace the
    // pods terminate still serving (kube-proxy's fallback) past the last step: the guard waits
    // out their grace period, so the verdict is the same at every pace.
    let text = "scenario \"emptied last\" {\n    apply \"dockercoins/rng.yaml\"\n    scale deployment/rng to 3\n    wait rollout deployment/rng\n    guard service/rng at-least 2\n    scale deployment/rng to 0\n}\n";
    let dir = tempfile::tempdir().unwrap();
    let path = script(dir.path(), "emptied-last.rollout", text);
    for (pace, code, output) in run_at_each_pace(&path) {
        assert_eq!(code, 1, "at the {pace} pace: {output}");
        let fired =
            "fired: fewer than 2 serving endpoints from the step at line 8 until the end of the scenario (as few as 0)";
        assert!(output.contains(fired), "at the {pace} pace: {output}");
    }
}

#[test]
fn a_gap_within_one_step_reads_as_during_that_step() {
    let dir = tempfile::tempdir().unwrap();
    // One step empties the slice and fills it again: the gap opens and closes within that step.
    let slice = |endpoints: &str| {
        format!(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: manual-1\n  labels:\n    kubernetes.io/service-name: manual\n    endpointslice.kubernetes.io/managed-by: rehearse.test\naddressType: IPv4\nports:\n  - port: 80\nendpoints:{endpoints}\n"
        )
    };
    let web = endpoint("web", "10.0.0.201", true, true, false);
    let text = format!(
        "scenario \"gap\" {{\n    run web labels app=web\n    wait pod/web condition=Ready\n{}    guard service/manual always-serving expect-violation\n    apply <<GAP\n{}---\n{}GAP\n    expect-traffic service/manual count 1\n}}\n",
        manual_service(&web),
        slice(" []"),
        slice(&format!("\n{web}")),
    );
    // `script` puts two lines (base-dir, a blank) before the text.
    let gap_line = text.lines().position(|l| l.contains("apply <<GAP")).unwrap() + 3;
    let path = script(dir.path(), "gap.rollout", &text);
    let json = dir.path().join("report.json");
    let (code, output) =
        run(rehearse(&["run", path.to_str().unwrap(), "--report", &format!("json={}", json.display())]));
    assert_eq!(code, 0, "{output}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let violations = &report["scenarios"][0]["guards"][0]["violations"];
    assert_eq!(violations[0], format!("no serving endpoints during the step at line {gap_line}"), "{output}");
    assert!(
        output.contains(&format!(
            "fired as expected: no serving endpoints during the step at line {gap_line}: opened when pod/web stopped serving, closed when pod/web started serving"
        )),
        "{output}"
    );
}

#[test]
fn a_guard_names_the_pods_that_closed_its_gap_not_how_many_came_in_one_endpoint_update() {
    // Three labelled pods reach the EndpointSlice in one update or in three: the controller's
    // batching on a cluster, one by one on the built-in cluster. The verdict says which pods.
    let text = "scenario \"swapped\" {\n    apply \"dockercoins/rng.yaml\"\n    scale deployment/rng to 3\n    wait rollout deployment/rng\n    guard service/rng always-serving\n    select service/rng app=rng,active=yes\n    expect-traffic service/rng none\n    label pods app=rng active=yes\n    expect-traffic service/rng count 3\n}\n";
    let [document] = failing_documents("swapped", text, &["swapped"]).try_into().unwrap();
    assert!(
        document.contains("opened when pod of replicaset/rng-{hash} stopped serving, closed when pod of replicaset/rng-{hash} started serving"),
        "{document}"
    );
    assert!(!document.contains('×'), "{document}");
}

#[test]
fn a_read_that_fails_names_objects_as_results_do_not_by_generated_names() {
    // A replica set's and a pod's names are generated, differently on each cluster and each run:
    // the failure of `let` names them by role, as every recorded result does.
    let scenario = |name: &str, read: &str| {
        format!(
            "scenario \"{name}\" {{\n    apply \"dockercoins/rng.yaml\"\n    scale deployment/rng to 2\n    wait rollout deployment/rng\n    let value = {read} within 1s\n}}\n\n"
        )
    };
    let text =
        scenario("no-label", "label missing of replicaset app=rng") + &scenario("two-names", "name of pod app=rng");
    let [no_label, two_names] = failing_documents("reads", &text, &["no-label", "two-names"]).try_into().unwrap();
    assert!(no_label.contains("replicaset/rng-{hash} has no label `missing`"), "{no_label}");
    assert!(
        two_names.contains(
            "2 pods match `pod app=rng`: 2 × pod of replicaset/rng-{hash}; narrow the selector until one matches, or name one (`pod/NAME`)"
        ),
        "{two_names}"
    );
}

#[test]
fn a_timeout_names_the_pods_still_in_flux() {
    let dir = tempfile::tempdir().unwrap();
    // A pod that no node can take stays Pending: the expectation cannot hold, and the message
    // says which pod is not ready, for how long, and what it waits for.
    let text = "scenario \"unschedulable\" {\n    apply <<YAML\napiVersion: v1\nkind: Pod\nmetadata:\n  name: nowhere\n  labels:\n    app: nowhere\nspec:\n  nodeSelector:\n    rehearse.test/no-such-node: \"true\"\n  containers:\n    - name: c\n      image: registry.k8s.io/pause:3.10\nYAML\n    wait pod/nowhere condition=Ready within 1s\n}\n";
    let path = script(dir.path(), "pending.rollout", text);
    let results = dir.path().join("results");
    let (code, output) = run(rehearse(&["run", path.to_str().unwrap(), "--results", results.to_str().unwrap()]));
    assert_eq!(code, 1, "{output}");
    // What it waits for, in the scheduler's words: recorded.
    let summary = "pods in flux:\n  - pod/nowhere not ready: waiting to be scheduled (0/3 nodes are available: 1 node(s) \
                   had untolerated taint(s), 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 \
                   nodes are available: 3 Preemption is not helpful for scheduling.)\n";
    assert!(output.contains(summary), "{output}");
    // For how long: shown, not recorded, as it differs from run to run.
    let detail = regex::Regex::new(
        r"which pods, and for how long:\n  - pod/nowhere \(pod/nowhere\) has not been ready for \d+s\n",
    )
    .unwrap();
    assert!(detail.is_match(&output), "{output}");
    let document = std::fs::read_to_string(results.join("pending__unschedulable.yaml")).unwrap();
    assert!(document.contains("pod/nowhere not ready: waiting to be scheduled (0/3 nodes are available"), "{document}");
    assert!(!document.contains("has not been ready for"), "{document}");
}

#[test]
fn a_pod_that_fits_no_node_waits_in_the_schedulers_words_preemption_included() {
    // Required anti-affinity, one pod per node: the third replica fits neither worker, and
    // evicting its siblings could make room, but none has a lower priority to be evicted for it.
    let text = r#"scenario "spread" {
    apply <<YAML
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: spread
        spec:
          replicas: 3
          selector:
            matchLabels:
              app: spread
          template:
            metadata:
              labels:
                app: spread
            spec:
              affinity:
                podAntiAffinity:
                  requiredDuringSchedulingIgnoredDuringExecution:
                    - labelSelector:
                        matchLabels:
                          app: spread
                      topologyKey: kubernetes.io/hostname
              containers:
                - name: spread
                  image: nginx:1.27
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: spread
        spec:
          selector:
            app: spread
          ports:
            - port: 80
    YAML
    expect-traffic service/spread count 2 within 60s
    wait rollout deployment/spread within 2s
}
"#;
    let [document] = <[String; 1]>::try_from(failing_documents("spread", text, &["spread"])).unwrap();
    let expected = "not satisfied within 2s: 3 of 3 updated, 2 available\n    pods in flux:\n    - pod of \
                    replicaset/spread-{hash} not ready: waiting to be scheduled (0/3 nodes are available: 1 node(s) \
                    had untolerated taint(s), 2 node(s) didn't match pod anti-affinity rules. preemption: 0/3 nodes \
                    are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for \
                    incoming pod.)\n";
    assert!(document.contains(expected), "{document}");
}

#[test]
fn a_pod_whose_claim_does_not_exist_waits_in_the_schedulers_words() {
    // Two claims missing: the scheduler names the first in the order of the volumes.
    let text = r#"scenario "claims" {
    apply <<YAML
        apiVersion: v1
        kind: Pod
        metadata:
          name: db
          labels:
            app: db
        spec:
          containers:
            - name: db
              image: postgres:17
          volumes:
            - name: data
              persistentVolumeClaim:
                claimName: data
            - name: logs
              persistentVolumeClaim:
                claimName: logs
    YAML
    wait pod/db condition=Ready within 2s
}
"#;
    let [document] = <[String; 1]>::try_from(failing_documents("claims", text, &["claims"])).unwrap();
    let expected = "pods in flux:\n    - pod/db not ready: waiting to be scheduled (0/3 nodes are available: \
                    persistentvolumeclaim \"data\" not found. not found)\n";
    assert!(document.contains(expected), "{document}");
}

#[test]
fn a_pod_whose_readiness_gate_nobody_sets_waits_for_it_by_name() {
    // Its containers are ready, its gate's condition is never set: the step names the gate.
    let text = r#"scenario "gates" {
    apply <<YAML
        apiVersion: v1
        kind: Pod
        metadata:
          name: web
        spec:
          readinessGates:
            - conditionType: example.com/load-balancer-ready
          containers:
            - name: web
              image: nginx:1.27
    YAML
    wait pod/web condition=ContainersReady within 1m
    wait pod/web condition=Ready within 2s
}
"#;
    let [document] = <[String; 1]>::try_from(failing_documents("gates", text, &["gates"])).unwrap();
    let expected = "pods in flux:\n    - pod/web not ready: waiting for readiness (phase Running; readiness gate \
                    \"example.com/load-balancer-ready\" not True)\n";
    assert!(document.contains(expected), "{document}");
}

#[test]
fn a_pod_waits_for_a_free_host_port_and_for_room_for_its_requests() {
    // The surge pod of a host-port rollout finds the port taken on both workers: eviction could
    // free it. A request larger than any node's allocatable (1k CPUs) no eviction can meet. A
    // host-network daemon set that surges finds its own node's port taken.
    let text = r#"scenario "ports" {
    apply <<YAML
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: ports
        spec:
          replicas: 2
          selector:
            matchLabels:
              app: ports
          template:
            metadata:
              labels:
                app: ports
            spec:
              terminationGracePeriodSeconds: 2
              containers:
                - name: ports
                  image: nginx:1.27
                  ports:
                    - containerPort: 18081
                      hostPort: 18081
    YAML
    wait rollout deployment/ports within 1m
    template deployment/ports version=2
    wait rollout deployment/ports within 2s
}

scenario "requests" {
    apply <<YAML
        apiVersion: v1
        kind: Pod
        metadata:
          name: huge
        spec:
          containers:
            - name: huge
              image: nginx:1.27
              resources:
                limits:
                  cpu: "1001"
                  memory: 2Ti
    YAML
    wait pod/huge condition=Ready within 2s
}

scenario "daemon" {
    apply <<YAML
        apiVersion: apps/v1
        kind: DaemonSet
        metadata:
          name: daemon
        spec:
          selector:
            matchLabels:
              app: daemon
          updateStrategy:
            rollingUpdate:
              maxSurge: 1
              maxUnavailable: 0
          template:
            metadata:
              labels:
                app: daemon
            spec:
              hostNetwork: true
              terminationGracePeriodSeconds: 2
              containers:
                - name: daemon
                  image: nginx:1.27
                  ports:
                    - containerPort: 18086
    YAML
    wait rollout daemonset/daemon within 1m
    template daemonset/daemon version=2
    wait rollout daemonset/daemon within 2s
}
"#;
    let [ports, requests, daemon] =
        <[String; 3]>::try_from(failing_documents("room", text, &["ports", "requests", "daemon"])).unwrap();
    let expected = "not satisfied within 2s: 1 of 2 updated, 2 available\n    pods in flux:\n    - pod of \
                    replicaset/ports-{hash} not ready: waiting to be scheduled (0/3 nodes are available: 1 node(s) \
                    had untolerated taint(s), 2 node(s) didn't have free ports for the requested pod ports. \
                    preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No \
                    preemption victims found for incoming pod.)\n";
    assert!(ports.contains(expected), "{ports}");
    let expected = "waiting to be scheduled (0/3 nodes are available: 1 node(s) had untolerated taint(s), 2 \
                    Insufficient cpu, 2 Insufficient memory. preemption: 0/3 nodes are available: 3 Preemption is \
                    not helpful for scheduling.)";
    assert!(requests.contains(expected), "{requests}");
    // A daemon pod is for one node: the others are never weighed (NodeAffinity's pre-filter),
    // and a host-network surge pod finds its own node's port taken by the pod it replaces.
    let expected = "waiting to be scheduled (0/3 nodes are available: 1 node(s) didn't have free ports for the \
                    requested pod ports, 2 node(s) didn't satisfy plugin(s) [NodeAffinity]. preemption: 0/3 nodes \
                    are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for \
                    scheduling.)";
    assert!(daemon.contains(expected), "{daemon}");
}

#[test]
fn a_pod_waits_while_a_hard_spread_constraint_would_be_broken() {
    // Over hostnames, the tainted control-plane node counts as an empty domain: two workers take
    // one pod each. Over zones, no testbed node has the key at all.
    let deployment = |name: &str, replicas: u32, key: &str| {
        format!(
            r#"scenario "{name}" {{
    apply <<YAML
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: {name}
        spec:
          replicas: {replicas}
          selector:
            matchLabels:
              app: {name}
          template:
            metadata:
              labels:
                app: {name}
            spec:
              topologySpreadConstraints:
                - maxSkew: 1
                  topologyKey: {key}
                  whenUnsatisfiable: DoNotSchedule
                  labelSelector:
                    matchLabels:
                      app: {name}
              containers:
                - name: {name}
                  image: nginx:1.27
    YAML
    expect pods app={name} count {replicas}
    wait rollout deployment/{name} within 3s
}}
"#
        )
    };
    let text =
        deployment("hostnames", 3, "kubernetes.io/hostname") + &deployment("zones", 1, "topology.kubernetes.io/zone");
    let [hostnames, zones] =
        <[String; 2]>::try_from(failing_documents("spread", &text, &["hostnames", "zones"])).unwrap();
    let expected = "waiting to be scheduled (0/3 nodes are available: 1 node(s) had untolerated taint(s), 2 node(s) \
                    didn't match pod topology spread constraints. preemption: 0/3 nodes are available: 1 Preemption \
                    is not helpful for scheduling, 2 No preemption victims found for incoming pod.)";
    assert!(hostnames.contains(expected), "{hostnames}");
    let expected = "waiting to be scheduled (0/3 nodes are available: 1 node(s) had untolerated taint(s), 2 node(s) \
                    didn't match pod topology spread constraints (missing required label). preemption: 0/3 nodes are \
                    available: 3 Preemption is not helpful for scheduling.)";
    assert!(zones.contains(expected), "{zones}");
}

#[test]
fn a_manifest_the_cluster_serves_no_resource_for_says_what_to_fix() {
    let scenario = |name: &str, api_version: &str, kind: &str| {
        format!(
            "scenario \"{name}\" {{\n    apply <<YAML\napiVersion: {api_version}\nkind: {kind}\nmetadata:\n  name: web\nYAML\n}}\n\n"
        )
    };
    let text = scenario("misspelt kind", "apps/v1", "Deploymnet")
        + &scenario("no such version", "apps/v2", "Deployment")
        + &scenario("no such group", "serving.knative.dev/v1", "Service");
    let documents =
        failing_documents("unserved", &text, &["misspelt-kind", "no-such-version", "no-such-group"]).join("\n");
    for expected in [
        "the cluster serves apps/v1 but no kind Deploymnet in it; did you mean Deployment?",
        "the cluster serves no apps/v2: check the manifest's apiVersion",
        "the cluster serves no serving.knative.dev/v1: check the manifest's apiVersion (a custom resource needs its \
         CustomResourceDefinition applied first)",
    ] {
        assert!(documents.contains(expected), "{expected}\n{documents}");
    }
}

#[test]
fn named_objects_exist_only_when_the_cluster_has_them() {
    let dir = tempfile::tempdir().unwrap();
    // A one-second grace period: at kind's pace a deleted pod lives until its grace period ends.
    let text = "scenario \"gone\" {\n    apply <<YAML\napiVersion: v1\nkind: Pod\nmetadata:\n  name: gone-soon\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n    - name: c\n      image: registry.k8s.io/pause:3.10\nYAML\n    expect pod/gone-soon exists\n    delete pod/gone-soon\n    wait pod/gone-soon deleted within 10s\n    expect pod/gone-soon absent\n}\n\nscenario \"never was\" {\n    run here\n    expect pod/never-was exists within 1s\n}\n";
    let path = script(dir.path(), "named.rollout", text);
    let (code, output) = run(rehearse(&["run", path.to_str().unwrap()]));
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("1 passed, 1 failed"), "{output}");
    assert!(
        output.contains("`expect pod/never-was exists within 1s`: not satisfied within 1s: `pod/never-was` is absent"),
        "{output}"
    );
}

/// A manifest copied from a live cluster names its namespace; a rehearsal applies it into the
/// scenario's own namespace all the same, where the steps after it find it.
#[test]
fn a_manifest_that_names_another_namespace_lands_in_the_scenarios_own() {
    let dir = tempfile::tempdir().unwrap();
    let text = "scenario \"elsewhere\" {\n    apply <<YAML\napiVersion: v1\nkind: Pod\nmetadata:\n  name: system-pod\n  namespace: kube-system\nspec:\n  containers:\n    - name: c\n      image: registry.k8s.io/pause:3.10\nYAML\n    expect pod/system-pod exists\n    wait pod/system-pod condition=Ready\n}\n";
    let path = script(dir.path(), "elsewhere.rollout", text);
    let (code, output) = run(rehearse(&["run", path.to_str().unwrap()]));
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("1 passed, 0 failed"), "{output}");
}

/// `one-per-node`: one on each schedulable node, never two on one; three pods over the two
/// workers put two on one of them.
#[test]
fn one_per_node_fails_when_a_node_holds_two() {
    let dir = tempfile::tempdir().unwrap();
    let text = "scenario \"crowded\" {\n    apply <<YAML\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: crowd\nspec:\n  replicas: 3\n  selector:\n    matchLabels:\n      app: crowd\n  template:\n    metadata:\n      labels:\n        app: crowd\n    spec:\n      containers:\n        - name: c\n          image: registry.k8s.io/pause:3.10\nYAML\n    wait rollout deployment/crowd within 1m\n    expect pods app=crowd one-per-node within 2s\n}\n";
    let path = script(dir.path(), "crowded.rollout", text);
    let (code, output) = run(rehearse(&["run", path.to_str().unwrap()]));
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains("`expect pods app=crowd one-per-node within 2s`: not satisfied within 2s: 3 ready pod(s) on"),
        "{output}"
    );
    assert!(output.contains("node(s), 2 schedulable node(s)"), "{output}");
}

/// kubectl's rule: deleting an object that does not exist fails (a misspelt name in a runbook
/// must not pass), a selection that matches nothing deletes nothing.
#[test]
fn deleting_what_does_not_exist_fails_unless_it_was_selected() {
    let dir = tempfile::tempdir().unwrap();
    let text = "scenario \"named\" {\n    delete deployment/nope\n}\n\nscenario \"selected\" {\n    delete pods app=none\n}\n\nscenario \"deleted twice\" {\n    apply <<YAML\napiVersion: v1\nkind: Pod\nmetadata:\n  name: twice\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n    - name: c\n      image: registry.k8s.io/pause:3.10\nYAML\n    let pod = pod/twice\n    delete $pod\n    wait $pod deleted within 10s\n    delete $pod\n}\n";
    let path = script(dir.path(), "missing.rollout", text);
    let (code, output) = run(rehearse(&["run", path.to_str().unwrap()]));
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("1 passed, 2 failed"), "{output}");
    assert!(
        output.contains("`delete deployment/nope`: the API answered 404 NotFound: deployments.apps \"nope\" not found"),
        "{output}"
    );
    assert!(output.contains("`delete $pod`: the API answered 404 NotFound: pods \"twice\" not found"), "{output}");
}

#[test]
fn a_gap_opened_by_a_delete_is_traced_to_the_delete_step() {
    let dir = tempfile::tempdir().unwrap();
    let text = "scenario \"delete\" {\n    run web labels app=web\n    run web2 labels app=web\n    apply <<YAML\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector:\n    app: web\n  ports:\n    - port: 80\nYAML\n    wait pods app=web condition=Ready\n    expect-traffic service/web count 2\n    guard service/web at-least 2 expect-violation\n    delete pod/web\n    expect-traffic service/web count 1\n}\n";
    // `script` puts two lines (base-dir, a blank) before the text.
    let delete_line = text.lines().position(|l| l.contains("delete pod/web")).unwrap() + 3;
    let path = script(dir.path(), "delete.rollout", text);
    let (code, output) = run(rehearse(&["run", path.to_str().unwrap()]));
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains(&format!(
            "fired as expected: fewer than 2 serving endpoints from the step at line {delete_line} until the end of the scenario (as few as 1): opened when pod/web stopped serving"
        )),
        "{output}"
    );
}

#[test]
fn a_service_whose_last_selector_key_is_dropped_has_no_selector() {
    // Kubernetes does not store an empty selector: the service has none, its endpoints stay as
    // they were, and remove-from-lb finds no selector to take the pod out of.
    let text = "scenario \"emptied\" {\n    apply <<YAML\napiVersion: v1\nkind: Pod\nmetadata:\n  name: one\n  labels:\n    app: one\nspec:\n  containers:\n    - name: c\n      image: registry.k8s.io/pause:3.10\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: manual\nspec:\n  selector:\n    app: one\n  ports:\n    - port: 80\nYAML\n    expect-traffic service/manual count 1\n    let victim = one pod app=one\n    select service/manual -= app\n    expect-traffic service/manual count 1\n    remove-from-lb $victim from service/manual\n}\n";
    let [document] = failing_documents("emptied", text, &["emptied"]).try_into().unwrap();
    assert!(
        document.contains("observed: \"service/manual has no selector: its endpoints stay as they were\""),
        "{document}"
    );
    assert!(
        document
            .contains("`remove-from-lb $victim from service/manual`: service/manual does not exist or has no selector"),
        "{document}"
    );
}

#[test]
fn a_step_is_judged_only_once_the_controllers_have_reacted_to_the_writes_before_it() {
    // Each expectation holds for a moment on a real cluster, between the step's write and the
    // controllers' reaction to it, and never after. It fails on every cluster and pace, with the
    // same observation: not by timing on the testbed, and not only on the built-in cluster.
    let text = "scenario \"scaled up\" {
    apply \"dockercoins/rng.yaml\"
    scale deployment/rng to 2
    wait rollout deployment/rng
    scale deployment/rng to 4
    expect pods app=rng count 2 within 2s
}

scenario \"scaled down\" {
    apply \"dockercoins/rng.yaml\"
    scale deployment/rng to 2
    wait rollout deployment/rng
    scale deployment/rng to 1
    expect pods app=rng count 2 within 2s
}

scenario \"applied\" {
    apply \"dockercoins/rng.yaml\"
    wait pods app=rng deleted within 2s
}

scenario \"released\" {
    apply \"dockercoins/rng.yaml\"
    scale deployment/rng to 2
    wait rollout deployment/rng
    let victim = one pod app=rng
    label $victim pod-template-hash-
    expect pods app=rng,pod-template-hash count 1 within 2s
}

scenario \"relabelled out of the service\" {
    run one labels app=web
    run two labels app=web
    apply <<YAML
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
    - port: 80
YAML
    expect-traffic service/web count 2
    label pod/one app-
    expect-traffic service/web includes pod/one within 2s
}

scenario \"template changed\" {
    apply \"dockercoins/rng.yaml\"
    scale deployment/rng to 2
    wait rollout deployment/rng
    template deployment/rng version=2
    expect replicasets app=rng count 1 within 2s
}

scenario \"stateful set scaled down\" {
    apply <<YAML
        apiVersion: apps/v1
        kind: StatefulSet
        metadata:
          name: db
        spec:
          serviceName: db
          replicas: 2
          selector:
            matchLabels:
              app: db
          template:
            metadata:
              labels:
                app: db
            spec:
              terminationGracePeriodSeconds: 1
              containers:
                - name: db
                  image: nginx:1.27
    YAML
    wait rollout statefulset/db within 1m
    scale statefulset/db to 1
    expect pods app=db count 2 within 2s
}

PODS_DELETED"
        .replace("PODS_DELETED", &daemon_pod_deleted("daemon pod deleted", 0));
    let documents = failing_documents(
        "reactions",
        &text,
        &[
            "scaled-up",
            "scaled-down",
            "applied",
            "released",
            "relabelled-out-of-the-service",
            "template-changed",
            "stateful-set-scaled-down",
            "daemon-pod-deleted",
        ],
    );
    let observed = [
        "not satisfied within 2s: 4 match `pods app=rng`",
        "not satisfied within 2s: 1 match `pods app=rng`",
        "not satisfied within 2s: 1 object(s) still exist",
        "not satisfied within 2s: 2 match `pods app=rng,pod-template-hash`",
        "not satisfied within 2s: service/web sends traffic to pod/two",
        "not satisfied within 2s: 2 match `replicasets app=rng`",
        "not satisfied within 2s: 1 match `pods app=db`",
        "not satisfied within 2s: 2 match `pods app=agent`",
    ];
    for (document, observed) in documents.iter().zip(observed) {
        assert!(document.contains(observed), "wanted {observed:?} in:\n{document}");
    }
}

#[test]
fn a_daemon_set_whose_pods_are_refused_is_at_rest_and_makes_them_once_it_may() {
    // The DaemonSet's status stays short of pods while its service account is missing, with no
    // condition that says why; the view confirms, by a fresh list, that no pod is on its way, and
    // by a dry-run create that the API refuses its pods, and judges the expectation rather than
    // waiting for a rest that would never come. (Were the dry run's answer misread as admitted,
    // the step would wait for the pods and fail, not at rest.)
    let text = "scenario \"refused\" {
    APPLY_AGENT
    expect pods app=agent count 0 within 5s
    apply <<YAML
        apiVersion: v1
        kind: ServiceAccount
        metadata:
          name: builder
    YAML
    wait rollout daemonset/agent within 1m
    expect pods app=agent count 2
}
"
    .replace("    APPLY_AGENT\n", &apply_agent("serviceAccountName: builder"));
    let dir = tempfile::tempdir().unwrap();
    let path = script(dir.path(), "refused.rollout", &text);
    let (code, output) = run(rehearse(&["run", path.to_str().unwrap()]));
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("0 match"), "{output}");
}

/// The paces to run a scenario at, each with the arguments that select it: on the built-in
/// cluster both, each named; on the testbed the one its nodes are marked with (testbed.sh sets
/// it, and the run cannot choose).
fn paces_under_test() -> Vec<(String, Vec<&'static str>)> {
    if std::env::var("REHEARSE_TEST_CLUSTER").is_ok_and(|c| c == "builtin") {
        return vec![("fast".to_string(), vec!["--pace", "fast"]), ("kind".to_string(), vec!["--pace", "kind"])];
    }
    let node = tokio::runtime::Runtime::new().unwrap().block_on(async {
        Api::<Node>::all(common::client().await).get("rehearse-worker").await.expect("the testbed's worker node")
    });
    let annotations = node.metadata.annotations.unwrap_or_default();
    let pace = annotations.get(rehearse::cluster::PACE_ANNOTATION).expect("testbed.sh marks its nodes with its pace");
    vec![(pace.clone(), Vec::new())]
}

#[test]
fn a_deleted_daemon_pod_is_judged_terminating_only_where_the_kubelet_keeps_its_grace_period() {
    // At the kind pace the pod terminates for its grace period and the DaemonSet waits for it to
    // go: one live pod, on every cluster. At the fast pace the kubelet removes it at once and the
    // DaemonSet replaces it: the moment it was terminating on the testbed is not one to judge.
    let text = daemon_pod_deleted("daemon pod deleted with a grace period", 30);
    let dir = tempfile::tempdir().unwrap();
    let path = script(dir.path(), "graceful.rollout", &text);
    fails_only_at_the_pace("fast", &path, "not satisfied within 2s: 2 match `pods app=agent`");
}

#[test]
fn a_deadline_passed_is_judged_only_once_the_pods_on_their_way_have_started() {
    // Scaled past its deadline, a stuck Deployment's old ReplicaSet makes two more pods: their
    // turning ready is progress, which restarts the deadline. At the kind pace they start for a
    // while; the condition they will replace is not the verdict, at any pace.
    let deployment = |version: &str, node_selector: &str| {
        format!(
            "    apply <<YAML\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 3\n  progressDeadlineSeconds: 5\n  strategy:\n    rollingUpdate: {{maxSurge: 1, maxUnavailable: 0}}\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web, version: {version}}}\n    spec:\n{node_selector}      containers:\n        - name: web\n          image: registry.k8s.io/pause:3.10\nYAML\n"
        )
    };
    // Its pods are available 8 s after they are ready: waiting for its rollout lets web's 5 s
    // deadline pass, at any pace.
    let clock = "    apply <<YAML\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: clock\nspec:\n  minReadySeconds: 8\n  selector:\n    matchLabels: {app: clock}\n  template:\n    metadata:\n      labels: {app: clock}\n    spec:\n      containers:\n        - name: clock\n          image: registry.k8s.io/pause:3.10\nYAML\n";
    let text = format!(
        "scenario \"scaled past its deadline\" {{\n{}    wait rollout deployment/web\n{}{clock}    wait rollout deployment/clock within 1m\n    scale deployment/web to 5\n    wait rollout deployment/web within 1m\n}}\n",
        deployment("v1", ""),
        deployment("v2", "      nodeSelector: {disk: nowhere}\n"),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = script(dir.path(), "deadline.rollout", &text);
    for (pace, code, output) in run_at_each_pace(&path) {
        assert_eq!(code, 1, "at the {pace} pace: {output}");
        let expected =
            "deployment/web exceeded its progress deadline (5s without progress): 1 of 5 updated, 5 available";
        assert!(output.contains(expected), "at the {pace} pace: {output}");
    }
}

#[test]
fn a_deadline_shorter_than_a_pods_start_up_is_not_the_verdict_while_the_pods_start() {
    // At the kind pace a pod is ready seconds after it is made: the 1 s deadline passes during
    // the first rollout, and each pod's readiness restarts it. The rollout completes at every
    // pace; a verdict that judged the condition while pods were still starting would fail it
    // only where pods start slowly.
    let text = "scenario \"deadline shorter than start-up\" {
    apply <<YAML
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
        spec:
          replicas: 3
          progressDeadlineSeconds: 1
          selector:
            matchLabels: {app: web}
          template:
            metadata:
              labels: {app: web}
            spec:
              containers:
                - name: web
                  image: registry.k8s.io/pause:3.10
    YAML
    wait rollout deployment/web within 1m
    expect pods app=web count 3
}
";
    let dir = tempfile::tempdir().unwrap();
    let path = script(dir.path(), "short-deadline.rollout", text);
    passes_at_each_pace(&path);
}

/// Runs `path` at each pace under test: at `failing` it must fail saying `observed`, at the other
/// it must pass. At the fast pace a deleted pod is gone at once; at the kind pace it terminates
/// until its grace period ends.
fn fails_only_at_the_pace(failing: &str, path: &std::path::Path, observed: &str) {
    for (pace, code, output) in run_at_each_pace(path) {
        if pace == failing {
            assert_eq!(code, 1, "at the {pace} pace: {output}");
            assert!(output.contains(observed), "at the {pace} pace: {output}");
        } else {
            assert_eq!(code, 0, "at the {pace} pace: {output}");
        }
    }
}

/// Runs `path` at each pace under test: it must pass at every one.
fn passes_at_each_pace(path: &std::path::Path) {
    for (pace, code, output) in run_at_each_pace(path) {
        assert_eq!(code, 0, "at the {pace} pace: {output}");
    }
}

/// (pace, exit code, output) of `rehearse run path` at each pace under test.
fn run_at_each_pace(path: &std::path::Path) -> Vec<(String, i32, String)> {
    paces_under_test()
        .into_iter()
        .map(|(pace, args)| {
            let mut command = rehearse(&["run", path.to_str().unwrap()]);
            command.args(&args);
            let (code, output) = run(command);
            (pace, code, output)
        })
        .collect()
}

#[test]
fn at_the_kind_pace_a_deleted_pod_terminates_until_its_grace_period_ends() {
    // As a kubelet keeps a pod whose process ignores SIGTERM (the runbook's services), on the
    // built-in cluster and the testbed alike: a wait as long as the grace period (as the defaults
    // are, 30 s each) fails every time, since the kubelet removes the pod a moment after the
    // period; one longer than both passes. (kwok's stock pod-delete stage removed the pod at a
    // random moment of the period, and the testbed passed the first wait.)
    let text = |within: &str| {
        format!(
            "scenario \"slow to stop\" {{\n    apply <<YAML\n        apiVersion: v1\n        kind: Pod\n        metadata: {{name: slow, labels: {{app: slow}}}}\n        spec:\n          terminationGracePeriodSeconds: 8\n          containers: [{{name: slow, image: \"slow:1\"}}]\n    YAML\n    wait pod/slow condition=Ready\n    delete pod/slow\n    wait pod/slow deleted within {within}\n}}\n"
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let as_long = script(dir.path(), "as-long.rollout", &text("8s"));
    fails_only_at_the_pace(
        "kind",
        &as_long,
        "not satisfied within 8s: 1 object(s) still exist, terminating: a deleted pod stays until its grace period ends",
    );
    let longer = script(dir.path(), "longer.rollout", &text("12s"));
    passes_at_each_pace(&longer);
}

#[test]
fn a_service_publishing_not_ready_addresses_routes_to_its_terminating_pods_as_ready() {
    // Such a Service's slices list a terminating pod ready, and kube-proxy routes to every ready
    // endpoint, beside the pods that are not terminating. At the kind pace the deleted pod
    // terminates for its long grace period (an hour): still routed.
    // At the fast pace it is gone at once.
    let pod = |name: &str| {
        format!(
            "        ---\n        apiVersion: v1\n        kind: Pod\n        metadata: {{name: {name}, labels: {{app: peers}}}}\n        spec:\n          terminationGracePeriodSeconds: 3600\n          containers: [{{name: peer, image: \"peer:1\"}}]\n"
        )
    };
    let text = format!(
        "scenario \"terminating peers\" {{\n    apply <<YAML\n        apiVersion: v1\n        kind: Service\n        metadata: {{name: peers}}\n        spec:\n          publishNotReadyAddresses: true\n          selector: {{app: peers}}\n          ports: [{{port: 80}}]\n{}{}    YAML\n    wait pods app=peers condition=Ready\n    expect-traffic service/peers count 2\n    delete pod/one\n    expect-traffic service/peers count 2 within 2s\n}}\n",
        pod("one"),
        pod("two")
    );
    let dir = tempfile::tempdir().unwrap();
    let path = script(dir.path(), "peers.rollout", &text);
    fails_only_at_the_pace("fast", &path, "not satisfied within 2s: service/peers sends traffic to pod/two");
}

#[test]
fn a_service_publishing_not_ready_addresses_routes_to_a_pod_still_starting() {
    // A pod has its IP once its sandbox exists, before its containers start: such a Service's
    // slices list it from then on, ready. At the kind pace it is routed while it still starts
    // (Ready False); at the fast pace it is ready by the time it is routed.
    let text = "scenario \"starting peer\" {
    apply <<YAML
        apiVersion: v1
        kind: Service
        metadata: {name: peers}
        spec:
          publishNotReadyAddresses: true
          selector: {app: peers}
          ports: [{port: 80}]
    YAML
    run peer labels app=peers
    expect-traffic service/peers count 1 within 30s
    wait pod/peer condition=Ready=False within 1s
}
";
    let dir = tempfile::tempdir().unwrap();
    let path = script(dir.path(), "starting-peer.rollout", text);
    fails_only_at_the_pace("fast", &path, "not satisfied within 1s: still without Ready=False: pod/peer");
}

#[test]
fn waiting_for_a_pod_its_finalizers_hold_says_that_no_wait_removes_it() {
    // At either pace the pod outlives the wait: terminating through its grace period at the kind
    // pace, stopped by its kubelet and still held at the fast pace. Only removing the finalizer
    // lets it go, which the message says rather than asking for more time.
    let label = format!("held-{}", std::process::id());
    let text = "scenario \"held\" {
    apply <<YAML
        apiVersion: v1
        kind: Pod
        metadata:
          name: held
          labels:
            verdicts: LABEL
          finalizers:
            - rehearse.dev/verdicts-hold
        spec:
          containers:
            - name: held
              image: nginx:1.27
    YAML
    wait pod/held condition=Ready
    delete pod/held
    wait pod/held deleted within 3s
}
"
    .replace("LABEL", &label);
    let dir = tempfile::tempdir().unwrap();
    let path = script(dir.path(), "held.rollout", &text);
    let _release = ReleaseHeldPods(label);
    for (pace, code, output) in run_at_each_pace(&path) {
        assert_eq!(code, 1, "at the {pace} pace: {output}");
        assert!(
            output.contains(
                "not satisfied within 3s: 1 object(s) still exist, terminating: finalizers hold a deleted pod until \
                 whoever set them removes them, which no wait brings about"
            ),
            "at the {pace} pace: {output}"
        );
    }
}

#[test]
fn a_pod_bound_to_a_node_that_does_not_exist_is_said_to_have_no_kubelet() {
    // No kubelet starts such a pod or ends its deletion; the pod garbage collector deletes it
    // about 40 s after it first finds it. The node is named for this test run (process and
    // time), so that no earlier run's quarantine of the name on the testbed hastens the collector.
    let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let node = format!("rehearse-verdicts-gone-{}-{}", std::process::id(), started.as_millis());
    let apply = format!(
        "    apply <<YAML
        apiVersion: v1
        kind: Pod
        metadata:
          name: stray
        spec:
          nodeName: {node}
          containers:
            - name: stray
              image: nginx:1.27
    YAML"
    );
    let text = format!(
        "scenario \"never starts\" {{\n{apply}\n    wait pod/stray condition=Ready within 2s\n}}\n
scenario \"never ends\" {{\n{apply}\n    delete pod/stray\n    wait pod/stray deleted within 2s\n}}\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = script(dir.path(), "missing-node.rollout", &text);
    for (pace, code, output) in run_at_each_pace(&path) {
        assert_eq!(code, 1, "at the {pace} pace: {output}");
        let expected = [
            "pod/stray not ready: bound to a node that does not exist: no kubelet starts it, and the pod garbage \
             collector deletes it about 40s after it first finds it there (it looks every 20s)"
                .to_string(),
            // How long: whole seconds since its creation, which may pass 2 on the testbed.
            "(pod/stray) has not been ready for ".to_string(),
            format!("s; its node {node} does not exist\n"),
            "not satisfied within 2s: 1 object(s) still exist, terminating on a node that does not exist: no kubelet \
             ends such a pod, and the pod garbage collector deletes it about 40s after it first finds it there (it \
             looks every 20s); give the step more time with `within`"
                .to_string(),
            "pod/stray deleted on a node that does not exist: no kubelet ends it, and the pod garbage collector \
             deletes it about 40s after it first finds it there (it looks every 20s)"
                .to_string(),
            format!("its node {node} does not exist, so no kubelet ends it"),
        ];
        for expected in expected {
            assert!(output.contains(&expected), "at the {pace} pace, missing {expected:?} in: {output}");
        }
    }
}

/// On drop, removes the finalizer from the pods labelled `verdicts=<its label>` that the test
/// above left on the testbed, so that their namespaces, deleted at the end of each run, go too.
struct ReleaseHeldPods(String);

impl Drop for ReleaseHeldPods {
    fn drop(&mut self) {
        if std::env::var("REHEARSE_TEST_CLUSTER").is_ok_and(|c| c == "builtin") {
            return;
        }
        let Ok(runtime) = tokio::runtime::Runtime::new() else { return };
        runtime.block_on(async {
            let client = common::client().await;
            let pods = Api::<k8s_openapi::api::core::v1::Pod>::all(client.clone());
            let selector = kube::api::ListParams::default().labels(&format!("verdicts={}", self.0));
            let Ok(held) = pods.list(&selector).await else { return };
            let release = kube::api::Patch::Merge(serde_json::json!({"metadata": {"finalizers": null}}));
            for pod in held.items {
                let (Some(namespace), Some(name)) = (pod.metadata.namespace, pod.metadata.name) else { continue };
                let pods = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), &namespace);
                // Gone already is as good as released.
                let _ = pods.patch(&name, &kube::api::PatchParams::default(), &release).await;
            }
        });
    }
}

#[test]
fn a_guard_on_a_service_already_below_its_minimum_fires_from_its_own_step() {
    let text = "scenario \"starts short\" {\n    apply \"dockercoins/rng.yaml\"\n    wait rollout deployment/rng\n    guard service/rng at-least 3\n    expect pods app=rng count 1\n}\n\
scenario \"starts empty\" {\n    apply \"dockercoins/rng.yaml\"\n    scale deployment/rng to 0\n    wait rollout deployment/rng\n    guard service/rng always-serving expect-violation\n    expect pods app=rng count 0\n}\n\
scenario \"no such service\" {\n    apply \"dockercoins/rng.yaml\"\n    guard service/nope always-serving\n}\n";
    let dir = tempfile::tempdir().unwrap();
    let path = script(dir.path(), "guard-start.rollout", text);
    let (code, output) = run(rehearse(&["run", path.to_str().unwrap()]));
    assert_eq!(code, 1, "{output}");
    // Line numbers count the two lines `script` puts first.
    assert!(
        output.contains("FAIL guard service/rng at-least 3 (line 6): fired: fewer than 3 serving endpoints from the step at line 6 until the end of the scenario (as few as 1)"),
        "{output}"
    );
    assert!(output.contains("PASS starts empty"), "{output}");
    assert!(
        output.contains("service/nope does not exist: a guard watches a Service the scenario has applied"),
        "{output}"
    );
}

#[test]
fn orphaned_and_adopted_hold_of_every_pod_a_selection_matches() {
    let text = "scenario \"mixed\" {\n    apply \"dockercoins/rng.yaml\"\n    scale deployment/rng to 2\n    wait rollout deployment/rng\n    run aaa labels app=rng\n    wait pod/aaa condition=Ready\n    expect pods app=rng orphaned\n}\n\
scenario \"mixed adopted\" {\n    apply \"dockercoins/rng.yaml\"\n    scale deployment/rng to 2\n    wait rollout deployment/rng\n    run aaa labels app=rng\n    wait pod/aaa condition=Ready\n    expect pods app=rng adopted\n}\n\
scenario \"all owned\" {\n    apply \"dockercoins/rng.yaml\"\n    scale deployment/rng to 2\n    wait rollout deployment/rng\n    expect pods app=rng adopted by deployment/rng\n}\n";
    let dir = tempfile::tempdir().unwrap();
    let path = script(dir.path(), "owners.rollout", text);
    let (code, output) = run(rehearse(&["run", path.to_str().unwrap()]));
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains("2 of 3 matching pods not so: pod of replicaset/rng-{hash} (controlled by a replicaset)"),
        "{output}"
    );
    assert!(output.contains("1 of 3 matching pods not so: pod/aaa (no controller)"), "{output}");
    assert!(output.contains("PASS all owned"), "{output}");
}

#[test]
fn a_condition_is_waited_for_as_kubectl_wait_compares_it_case_folded() {
    let text = "scenario \"folded\" {\n    apply \"dockercoins/rng.yaml\"\n    wait pods app=rng condition=ready within 20s\n    wait pods app=rng condition=Ready=true within 1s\n}\n";
    let dir = tempfile::tempdir().unwrap();
    let path = script(dir.path(), "folded.rollout", text);
    let (code, output) = run(rehearse(&["run", path.to_str().unwrap()]));
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("every matching pod has ready=True"), "{output}");
}
