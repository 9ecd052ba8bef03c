//! The built-in cluster, through the binary as a user meets it: the default when no cluster is
//! named, what the reports say, virtual time, failing fast, and the refusals scenarios meet.
//! Parity with the testbed (the same result bytes for every scenario) is checked by tests/run.sh,
//! which runs the suite on all four cluster/pace pairs.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{run, script};

/// `rehearse ARGS` with no cluster named: no KUBECONFIG, so the built-in cluster.
fn builtin(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rehearse"));
    command.args(args).env_remove("KUBECONFIG").env("CI", "1").env("NO_COLOR", "1");
    command
}

#[test]
fn the_runbook_suite_passes_on_the_builtin_cluster_at_both_paces() {
    for pace in ["kind", "fast"] {
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("report.json");
        let (code, output) =
            run(builtin(&["run", "--pace", pace, "--report", &format!("json={}", report.display()), "scenarios"]));
        assert_eq!(code, 0, "{pace}: {output}");
        assert!(output.contains(&format!("running on the built-in ({pace} pace) cluster")), "{output}");
        let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        assert_eq!(report["cluster"], format!("built-in ({pace} pace)"));
        assert_eq!(report["failed"], 0);
    }
}

/// `nodes N` gives the built-in cluster N workers, for the scenario that says so or (at the top of
/// a file) for every scenario of the file that does not say otherwise. A DaemonSet counts them.
#[test]
fn nodes_makes_as_many_workers_for_a_scenario_or_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = |name: &str, own: Option<u32>, workers: u32| {
        let setting = own.map(|n| format!("    nodes {n}\n")).unwrap_or_default();
        format!(
            "scenario \"{name}\" {{\n{setting}    apply <<YAML\napiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: agent\nspec:\n  selector:\n    matchLabels:\n      app: agent\n  template:\n    metadata:\n      labels:\n        app: agent\n    spec:\n      containers:\n        - name: agent\n          image: agent:1\nYAML\n    expect pods app=agent count {workers}\n}}\n\n"
        )
    };
    let text = format!(
        "nodes 4\n\n{}{}{}",
        scenario("the file's", None, 4),
        scenario("its own", Some(3), 3),
        scenario("fewer", Some(1), 1)
    );
    let path = script(dir.path(), "nodes.rollout", &text);
    let (code, output) = run(builtin(&["run", path.to_str().unwrap()]));
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("3 passed"), "{output}");
}

/// More workers than a built-in cluster has (Kubernetes' limit for one cluster): the scenario
/// fails up front, as on a real cluster too small, and says where to run it instead.
#[test]
fn nodes_beyond_a_built_in_clusters_limit_fail_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let text = "scenario \"crowd\" {\n    nodes 5001\n    apply \"dockercoins/rng.yaml\"\n}\n\nscenario \"fine\" {\n    apply \"dockercoins/rng.yaml\"\n}\n";
    let path = script(dir.path(), "crowd.rollout", text);
    let (code, output) = run(builtin(&["run", path.to_str().unwrap()]));
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("1 passed, 1 failed"), "{output}");
    assert!(
        output.contains("wants 5001 schedulable nodes (its `nodes` setting) but the cluster has 2; a built-in cluster has at most 5000 workers"),
        "{output}"
    );
}

/// More replicas in one scenario than a built-in cluster runs: the write stops the scenario (exit
/// code 3, not a refusal that `expect-refused` could take) and says where to run it instead; the
/// scenario beside it is not affected.
#[test]
fn replicas_beyond_a_built_in_clusters_limit_stop_the_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let text = "scenario \"crowd\" {\n    apply \"dockercoins/rng.yaml\"\n    expect-refused scale deployment/rng to 2147483647\n}\n\nscenario \"fine\" {\n    apply \"dockercoins/rng.yaml\"\n    scale deployment/rng to 3\n    expect pods app=rng count 3\n}\n";
    let path = script(dir.path(), "crowd.rollout", text);
    let started = Instant::now();
    let (code, output) = run(builtin(&["run", path.to_str().unwrap()]));
    assert_eq!(code, 3, "{output}");
    assert!(output.contains("1 passed, 0 failed, 1 errored"), "{output}");
    assert!(
        output.contains("the built-in cluster runs at most 10000 replicas in one scenario (the spec.replicas of its Deployments, its StatefulSets and the ReplicaSets no Deployment owns, each at least the minReplicas of an autoscaler that scales it); deployment/rng would make it 2147483647: run this scenario on a cluster (--context, --kubeconfig or KUBECONFIG)"),
        "{output}"
    );
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
}

/// Each scenario runs on a built-in cluster of its own: at the kind pace a scenario's pods stay
/// in their grace period after it ends, and on a cluster it shared with the next scenario on its
/// thread they held the nodes' room, so the next one passed at `--jobs 2` and failed at 1.
#[test]
fn a_scenario_never_meets_what_another_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = |name: &str| {
        format!(
            "scenario \"{name}\" {{\n    apply <<YAML\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: fill\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {{app: fill}}\n  template:\n    metadata:\n      labels: {{app: fill}}\n    spec:\n      containers:\n        - name: c\n          image: registry.k8s.io/pause:3.10\n          resources:\n            requests: {{cpu: \"600\"}}\nYAML\n    wait rollout deployment/fill\n}}\n\n"
        )
    };
    let path = script(dir.path(), "fill.rollout", &(scenario("first") + &scenario("second")));
    for jobs in ["1", "2"] {
        let (code, output) = run(builtin(&["run", "--pace", "kind", "--jobs", jobs, path.to_str().unwrap()]));
        assert_eq!(code, 0, "--jobs {jobs}: {output}");
        assert!(output.contains("2 passed, 0 failed"), "--jobs {jobs}: {output}");
    }
}

/// A finalizer nobody removes keeps a scenario's namespace Terminating on a real cluster: the run
/// names what holds it, and only finalizers Kubernetes' own controllers would not remove.
#[test]
fn a_finalizer_left_set_at_the_end_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let service = |finalizers: &str| {
        format!(
            "    apply <<YAML\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  finalizers: {finalizers}\nspec:\n  selector: {{app: web}}\n  ports:\n    - port: 80\nYAML\n"
        )
    };
    // A kind the run does not watch is looked up as the scenario ends.
    let config = |finalizers: &str| {
        format!(
            "    apply <<YAML\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  finalizers: {finalizers}\nYAML\n"
        )
    };
    let text = format!(
        "scenario \"left\" {{\n{}{}}}\n\nscenario \"removed\" {{\n{}{}{}{}}}\n",
        service("[example.com/hold, service.kubernetes.io/load-balancer-cleanup]"),
        config("[example.com/keep]"),
        service("[example.com/hold]"),
        config("[example.com/keep]"),
        service("[]"),
        config("[]"),
    );
    let path = script(dir.path(), "held.rollout", &text);
    let report = dir.path().join("report.json");
    let (code, output) = run(builtin(&[
        "run",
        "--jobs",
        "1",
        "--report",
        &format!("json={}", report.display()),
        path.to_str().unwrap(),
    ]));
    assert_eq!(code, 0, "a warning, not a verdict: {output}");
    let warning = "warning: finalizers still hold service/web (example.com/hold), configmap/settings (example.com/keep) as the scenario ends: on a real cluster its namespace stays Terminating";
    assert_eq!(output.matches(warning).count(), 1, "{output}");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
    let held: std::collections::BTreeMap<_, _> = json["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["scenario"].as_str().unwrap().to_string(), s["held_by_finalizers"].clone()))
        .collect();
    assert_eq!(
        held["left"],
        serde_json::json!(["service/web (example.com/hold)", "configmap/settings (example.com/keep)"])
    );
    assert_eq!(held["removed"], serde_json::Value::Null);
}

#[test]
fn the_junit_report_says_which_cluster_ran() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(dir.path(), "ok.rollout", "scenario \"ok\" {\n    apply \"dockercoins/rng.yaml\"\n}\n");
    let junit = dir.path().join("junit.xml");
    let (code, output) =
        run(builtin(&["run", "--report", &format!("junit={}", junit.display()), path.to_str().unwrap()]));
    assert_eq!(code, 0, "{output}");
    let xml = std::fs::read_to_string(junit).unwrap();
    assert!(xml.contains(r#"<property name="cluster" value="built-in (kind pace)"/>"#), "{xml}");
}

#[test]
fn grace_periods_and_timeouts_pass_in_virtual_time() {
    let dir = tempfile::tempdir().unwrap();
    // At the kind pace each old pod terminates for its 30 s grace period: minutes of cluster time.
    let path = script(
        dir.path(),
        "slow.rollout",
        "scenario \"rollout over grace periods\" {\n    apply \"dockercoins/rng.yaml\"\n    scale deployment/rng to 4\n    wait rollout deployment/rng\n    template deployment/rng version=2\n    wait rollout deployment/rng within 10m\n    expect pods app=rng,version=2 count 4\n    expect-traffic service/rng -> pods version=2\n}\n",
    );
    let started = Instant::now();
    let (code, output) = run(builtin(&["run", path.to_str().unwrap()]));
    assert_eq!(code, 0, "{output}");
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
}

/// A service whose selected pods are all terminating still sends them traffic (kube-proxy falls
/// back to terminating endpoints that serve), so a snapshot, which records a settled service, waits
/// out their grace period at the kind pace. Given too little time it says that, not that the
/// endpoint controller is behind; at the fast pace the pods are gone at once.
#[test]
fn a_snapshot_waiting_out_terminating_pods_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let emptied = |within: &str| {
        format!(
            "scenario \"emptied\" {{\n    apply \"dockercoins/rng.yaml\"\n    scale deployment/rng to 2\n    wait rollout deployment/rng\n    scale deployment/rng to 0\n    snapshot \"emptied\" {within}\n}}\n"
        )
    };
    // Outside CI, so that the first run to reach a snapshot records it.
    let run_at = |pace: &str, path: &std::path::Path| {
        let mut command = builtin(&["run", "--pace", pace, path.to_str().unwrap()]);
        command.env_remove("CI");
        run(command)
    };
    let short = script(dir.path(), "short.rollout", &emptied("within 10s"));
    let (code, output) = run_at("kind", &short);
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains(
            "the cluster did not settle within 10s: service/rng still sends traffic to terminating pods: no pod it \
             selects is ready, so kube-proxy falls back to the terminating ones that still serve until their grace \
             period ends; give the step more time with `within`"
        ),
        "{output}"
    );
    assert!(output.contains("terminating: its grace period is 30s"), "{output}");
    assert!(!output.contains("behind or stuck"), "{output}");
    let (code, output) = run_at("fast", &short);
    assert_eq!(code, 0, "at the fast pace: {output}");
    // Their 30 s grace period allowed, the snapshot records the service with no traffic.
    let long = script(dir.path(), "long.rollout", &emptied("within 45s"));
    let (code, output) = run_at("kind", &long);
    assert_eq!(code, 0, "{output}");
}

/// At the kind pace a deleted pod terminates for its whole grace period (30 s by default, which
/// equals a step's default timeout): a wait for it to go that allows less fails, and says why.
#[test]
fn a_wait_for_a_deleted_pod_names_its_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let deleted = |within: &str| {
        format!(
            "scenario \"deleted\" {{\n    apply \"dockercoins/rng.yaml\"\n    wait rollout deployment/rng\n    let victim = one pod app=rng\n    delete $victim\n    wait $victim deleted{within}\n    expect $victim replaced\n}}\n"
        )
    };
    let path = script(dir.path(), "shorter.rollout", &deleted(" within 20s"));
    let (code, output) = run(builtin(&["run", "--pace", "kind", path.to_str().unwrap()]));
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains(
            "`wait $victim deleted within 20s`: not satisfied within 20s: 1 object(s) still exist, terminating: a \
             deleted pod stays until its grace period ends; give the step more time with `within`"
        ),
        "{output}"
    );
    assert!(output.contains("$victim terminating: its grace period is 30s"), "{output}");
    let path = script(dir.path(), "longer.rollout", &deleted(" within 45s"));
    let (code, output) = run(builtin(&["run", "--pace", "kind", path.to_str().unwrap()]));
    assert_eq!(code, 0, "{output}");
}

#[test]
fn an_expectation_that_cannot_come_true_fails_at_once_with_the_timeout_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(
        dir.path(),
        "never.rollout",
        "scenario \"never\" {\n    apply \"dockercoins/rng.yaml\"\n    wait rollout deployment/rng\n    expect pods app=rng count 5 within 10m\n}\n",
    );
    let started = Instant::now();
    let (code, output) = run(builtin(&["run", path.to_str().unwrap()]));
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("not satisfied within 10m"), "{output}");
    // Ten minutes of cluster time, no wall time to speak of.
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
}

#[test]
fn the_api_servers_refusals_read_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(
        dir.path(),
        "refused.rollout",
        "scenario \"refused\" {\n    apply \"dockercoins/rng.yaml\"\n    wait rollout deployment/rng\n    expect-refused \"does not match template\" template deployment/rng app=other\n    expect-refused \"not found\" template deployment/rgn app=rng\n}\n",
    );
    let (code, output) = run(builtin(&["run", path.to_str().unwrap()]));
    // `not found` is not a refusal: the second step fails, as on a real cluster.
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("refused by the API (422 Invalid)"), "{output}");
    assert!(output.contains("deployments.apps \"rgn\" not found"), "{output}");
}

#[test]
fn naming_a_cluster_never_falls_back_to_the_builtin_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(dir.path(), "ok.rollout", "scenario \"ok\" {\n    apply \"dockercoins/rng.yaml\"\n}\n");
    let (code, output) =
        run(builtin(&["run", "--cluster", "kube", "--kubeconfig", "/nonexistent", path.to_str().unwrap()]));
    assert_eq!(code, 2, "{output}");
    assert!(!output.contains("built-in"), "{output}");
}

/// Server-side apply's own refusals (a 500 before validation: a configuration it cannot type or
/// merge, or convert to the kind), each its own run, in the same words on both clusters; the
/// testbed's API server is the reference.
#[test]
fn a_configuration_server_side_apply_cannot_type_or_merge_is_refused_in_the_same_words_on_both_clusters() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        // `selectr` is a typo no schema declares, refused whatever the field validation asked for.
        (
            "typo",
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: typo\nspec:\n  selectr:\n    app: web\n  ports:\n    - port: 80\n",
            "failed to create typed patch object (NAMESPACE/typo; /v1, Kind=Service): .spec.selectr: field not declared in schema",
        ),
        // A copied container keeps its name: the list is keyed by name and cannot hold it twice.
        (
            "twins",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: twins\nspec:\n  selector:\n    matchLabels:\n      app: twins\n  template:\n    metadata:\n      labels:\n        app: twins\n    spec:\n      containers:\n        - name: web\n          image: nginx\n        - name: web\n          image: nginx:2\n",
            "failed to create typed patch object (NAMESPACE/twins; apps/v1, Kind=Deployment): .spec.template.spec.containers: duplicate entries for key [name=\"web\"]",
        ),
        // Ports are keyed by port and protocol, TCP when left out.
        (
            "ports",
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: ports\nspec:\n  selector:\n    app: web\n  ports:\n    - port: 80\n      name: a\n    - port: 80\n      name: b\n",
            "failed to create typed patch object (NAMESPACE/ports; /v1, Kind=Service): .spec.ports: duplicate entries for key [port=80,protocol=\"TCP\"]",
        ),
        // YAML reads 8080 as a number, where an environment variable's value is text.
        (
            "env",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: env\nspec:\n  selector:\n    matchLabels:\n      app: env\n  template:\n    metadata:\n      labels:\n        app: env\n    spec:\n      containers:\n        - name: web\n          image: nginx\n          env:\n            - name: PORT\n              value: 8080\n",
            "failed to create typed patch object (NAMESPACE/env; apps/v1, Kind=Deployment): .spec.template.spec.containers[name=\"web\"].env[name=\"PORT\"].value: expected string, got &value.valueUnstructured{Value:8080}",
        ),
        // A number, but not a whole one: only the conversion to the kind refuses it.
        (
            "half",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: half\nspec:\n  replicas: 1.5\n  selector:\n    matchLabels:\n      app: half\n  template:\n    metadata:\n      labels:\n        app: half\n    spec:\n      containers:\n        - name: web\n          image: nginx\n",
            "failed to convert new object (NAMESPACE/half; apps/v1, Kind=Deployment) to proper version: unable to convert unstructured object to apps/v1, Kind=Deployment: cannot convert float64 to int32",
        ),
    ];
    for (name, manifest, expected) in cases {
        let body: String = manifest.lines().map(|line| format!("        {line}\n")).collect();
        let path = script(
            dir.path(),
            &format!("{name}.rollout"),
            &format!("scenario \"{name}\" {{\n    apply <<YAML\n{body}    YAML\n}}\n"),
        );
        let message = |output: &str| {
            let line = output.lines().find(|l| l.contains("refused by the API")).unwrap_or_default();
            let from = line.find("refused by the API").unwrap_or(0);
            // The namespace is generated per run.
            let pattern = regex::Regex::new(&format!(r"\([a-z0-9-]+/{name};")).unwrap();
            pattern.replace(&line[from..], format!("(NAMESPACE/{name};")).into_owned()
        };
        // A 500, but the API server's answer about the manifest: a refusal (exit 1) on either
        // cluster, not an outage.
        let (code, on_builtin) = run(builtin(&["run", path.to_str().unwrap()]));
        assert_eq!(code, 1, "{on_builtin}");
        let expected = format!("refused by the API (500): {expected}");
        assert!(message(&on_builtin).starts_with(&expected), "{on_builtin}");
        let (code, on_testbed) = run(common::rehearse(&["run", path.to_str().unwrap()]));
        assert_eq!(code, 1, "{on_testbed}");
        assert_eq!(message(&on_builtin), message(&on_testbed), "built-in:\n{on_builtin}\ntestbed:\n{on_testbed}");
        // So a scenario can assert it, by the words that say what is wrong.
        let words = expected.rsplit(": ").next().unwrap();
        let refused = script(
            dir.path(),
            &format!("{name}-refused.rollout"),
            &format!("scenario \"{name}\" {{\n    expect-refused {words:?} apply <<YAML\n{body}    YAML\n}}\n"),
        );
        for command in
            [builtin(&["run", refused.to_str().unwrap()]), common::rehearse(&["run", refused.to_str().unwrap()])]
        {
            let (code, output) = run(command);
            assert_eq!(code, 0, "{output}");
        }
    }
}

#[test]
fn an_unreadable_quantity_is_refused_before_validation_with_the_same_document_on_both_clusters() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(
        dir.path(),
        "quantity.rollout",
        "scenario \"unreadable\" {\n    apply <<YAML\napiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\nspec:\n  containers:\n    - name: web\n      image: nginx\n      resources:\n        requests:\n          cpu: abc\nYAML\n}\n",
    );
    let document = |command: Command, results: &str| {
        let results = dir.path().join(results);
        let mut command = command;
        command.args(["run", path.to_str().unwrap(), "--results", results.to_str().unwrap()]);
        let (code, output) = run(command);
        // The API server cannot even decode it: a 500 to server-side apply, refusing it (exit 1).
        assert_eq!(code, 1, "{output}");
        std::fs::read_to_string(results.join("quantity__unreadable.yaml")).unwrap()
    };
    let on_builtin = document(builtin(&[]), "builtin");
    let expected = "failed to convert new object ({namespace}/bad; /v1, Kind=Pod) to proper version: unable to convert \
                    unstructured object to /v1, Kind=Pod: quantities must match the regular expression";
    assert!(on_builtin.contains(expected), "{on_builtin}");
    assert_eq!(on_builtin, document(common::rehearse(&[]), "testbed"));
}

/// Asserts that a run on the built-in cluster stopped its scenario as one it cannot rehearse:
/// exit 3, the `apply` step an error (not a failure), a message saying where to run it instead,
/// and each of `says`.
fn assert_stopped_untrusted(code: i32, output: &str, says: &[&str]) {
    assert_eq!(code, 3, "{output}");
    assert!(output.contains("run it on a cluster (--context, --kubeconfig or KUBECONFIG)"), "{output}");
    assert!(output.lines().any(|l| l.trim_start().starts_with("ERR ") && l.contains("apply <<YAML")), "{output}");
    for said in says {
        assert!(output.contains(said), "{said}: {output}");
    }
}

/// A Job, whose controller the built-in cluster does not run; `refused` wraps its apply in
/// `expect-refused`.
fn job_scenario(refused: bool) -> String {
    let apply = if refused { "expect-refused apply" } else { "apply" };
    format!(
        "scenario \"batch\" {{\n    {apply} <<YAML\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: work\nspec:\n  template:\n    metadata:\n      labels:\n        app: work\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: work\n          image: busybox\nYAML\n    expect pods app=work count 1\n}}\n"
    )
}

#[test]
fn a_kind_whose_pods_the_builtin_cluster_would_not_start_stops_the_scenario_instead_of_deciding_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(dir.path(), "batch.rollout", &job_scenario(false));
    // On a cluster the Job's pod starts and the scenario passes...
    let (code, on_testbed) = run(common::rehearse(&["run", path.to_str().unwrap()]));
    assert_eq!(code, 0, "{on_testbed}");
    // ...so the built-in cluster, which would start none, must not give a verdict: it stops
    // with an infrastructure error (exit 3) that says where to run the scenario instead.
    // The step could not be judged: an error, like its scenario, not a failure.
    let (code, on_builtin) = run(builtin(&["run", path.to_str().unwrap()]));
    assert_stopped_untrusted(
        code,
        &on_builtin,
        &["the built-in cluster does not run the Job controller", "job/work would start pods"],
    );
    // It is not a refusal of the object: `expect-refused` does not take it.
    let path = script(dir.path(), "refused.rollout", &job_scenario(true));
    let (code, on_builtin) = run(builtin(&["run", path.to_str().unwrap()]));
    assert_eq!(code, 3, "{on_builtin}");
    assert!(!on_builtin.contains("refused by the API"), "{on_builtin}");
}

/// A StatefulSet with a volume claim template: its pods wait for their PersistentVolumeClaims,
/// which the built-in cluster does not model, so it stops the scenario as for a Job.
#[test]
fn a_stateful_set_with_volume_claims_stops_the_scenario_on_the_builtin_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let text = "scenario \"claims\" {\n    apply <<YAML\napiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: db\nspec:\n  serviceName: db\n  selector:\n    matchLabels:\n      app: db\n  template:\n    metadata:\n      labels:\n        app: db\n    spec:\n      containers:\n        - name: db\n          image: postgres\n          volumeMounts:\n            - name: data\n              mountPath: /data\n  volumeClaimTemplates:\n    - metadata:\n        name: data\n      spec:\n        accessModes: [ReadWriteOnce]\n        resources:\n          requests:\n            storage: 1Gi\nYAML\n    expect pods app=db count 1\n}\n";
    let path = script(dir.path(), "claims.rollout", text);
    let (code, on_builtin) = run(builtin(&["run", path.to_str().unwrap()]));
    assert_stopped_untrusted(
        code,
        &on_builtin,
        &["the built-in cluster does not model PersistentVolumeClaims", "statefulset/db has volumeClaimTemplates"],
    );
}

/// A pod that mounts a claim that exists waits until the claim is bound, which depends on the
/// cluster's storage: the testbed has no provisioner and never binds it, kind's binds it at once.
/// The built-in cluster, which models neither, stops the scenario, whichever of the pod and the
/// claim comes first. (A claim that does not exist is judged alike everywhere:
/// tests/parity/volume-claims.rollout.)
#[test]
fn a_pod_that_mounts_an_existing_claim_stops_the_scenario_on_the_builtin_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let claim = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data\nspec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 1Gi\n";
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: db\n  labels:\n    app: db\nspec:\n  containers:\n    - name: db\n      image: postgres\n  volumes:\n    - name: data\n      persistentVolumeClaim:\n        claimName: data\n";
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  selector:\n    matchLabels:\n      app: api\n  template:\n    metadata:\n      labels:\n        app: api\n    spec:\n      containers:\n        - name: api\n          image: nginx\n      volumes:\n        - name: data\n          persistentVolumeClaim:\n            claimName: data\n";
    let scenario = |first: &str, second: &str| {
        format!(
            "scenario \"claims\" {{\n    apply <<YAML\n{first}YAML\n    apply <<YAML\n{second}YAML\n    expect pods app=db count 1\n}}\n"
        )
    };
    // The claim first: the pod that would mount it is the write that stops the scenario.
    let path = script(dir.path(), "claim-first.rollout", &scenario(claim, pod));
    let (code, on_builtin) = run(builtin(&["run", path.to_str().unwrap()]));
    let not_modelled = "the built-in cluster does not model PersistentVolumeClaims";
    assert_stopped_untrusted(code, &on_builtin, &[not_modelled, "pod/db mounts persistentvolumeclaim/data"]);
    // The controller first, then the claim: the claim's write stops it.
    let path = script(dir.path(), "claim-last.rollout", &scenario(deployment, claim));
    let (code, on_builtin) = run(builtin(&["run", path.to_str().unwrap()]));
    assert_stopped_untrusted(code, &on_builtin, &[not_modelled, "deployment/api mounts persistentvolumeclaim/data"]);
    // A template changed to mount it, after both exist.
    let plain = deployment.split("      volumes:").next().unwrap();
    let path = script(dir.path(), "template.rollout", &scenario(&format!("{claim}---\n{plain}"), deployment));
    let (code, on_builtin) = run(builtin(&["run", path.to_str().unwrap()]));
    assert_stopped_untrusted(code, &on_builtin, &[not_modelled, "deployment/api mounts persistentvolumeclaim/data"]);
    // Why: on the testbed the claim is never bound, and the pod waits in the scheduler's words
    // (on kind it would run).
    let text = format!(
        "scenario \"claims\" {{\n    apply <<YAML\n{claim}---\n{pod}---\napiVersion: v1\nkind: Service\nmetadata:\n  name: db\nspec:\n  selector:\n    app: db\n  ports:\n    - port: 5432\nYAML\n    expect-traffic service/db count 1 within 2s\n}}\n"
    );
    let path = script(dir.path(), "testbed.rollout", &text);
    let (code, on_testbed) = run(common::rehearse(&["run", path.to_str().unwrap()]));
    assert_eq!(code, 1, "{on_testbed}");
    assert!(on_testbed.contains("pod has unbound immediate PersistentVolumeClaims"), "{on_testbed}");
}

/// A pod whose ConfigMap or Secret is missing: a real kubelet mounts no volume it lacks (the pod
/// stays creating) and makes no environment from one (that container fails,
/// CreateContainerConfigError), until it exists. The built-in cluster holds such pods the same
/// way at both paces, says why in the kubelet's words, and starts them once the objects exist.
/// (The testbed's kwok mounts nothing and starts them at once: docs/testbed.md.)
#[test]
fn pods_wait_for_the_config_maps_and_secrets_they_need_on_the_builtin_cluster() {
    assert_held_until_the_config_map_exists(
        HELD_UNTIL_CONFIG,
        "web: CreateContainerConfigError: configmap \"settings\" not found",
    );
}

/// An init container whose environment names a missing ConfigMap: a real kubelet runs the init
/// containers before the app containers, so that one fails (kubectl shows
/// Init:CreateContainerConfigError) and no container after it starts. The built-in cluster holds
/// the pods the same way at both paces, names the init container, and starts them once the
/// ConfigMap exists.
#[test]
fn an_init_container_holds_its_pod_until_its_config_map_exists_on_the_builtin_cluster() {
    assert_held_until_the_config_map_exists(
        HELD_BY_INIT_CONTAINER,
        "init container migrate: CreateContainerConfigError: configmap \"settings\" not found",
    );
}

/// At both paces on the built-in cluster: `held` (two pods of deployment/web that need the
/// ConfigMap `settings`, which a later step applies) passes; cut before that step, the pods never
/// serve and the timed-out step says why in the kubelet's words, `waiting`.
fn assert_held_until_the_config_map_exists(held: &str, waiting: &str) {
    let dir = tempfile::tempdir().unwrap();
    let held_path = script(dir.path(), "held.rollout", held);
    let cut = held.find("    apply <<YAML\n        apiVersion: v1\n        kind: ConfigMap").unwrap();
    let never_made = format!("{}    expect-traffic service/web count 2 within 5s\n}}\n", &held[..cut]);
    let failing = script(dir.path(), "failing.rollout", &never_made);
    let expected =
        format!("2 × pod of replicaset/web-{{hash}} not ready: waiting for readiness (phase Pending; {waiting})");
    for pace in ["kind", "fast"] {
        let (code, out) = run(builtin(&["run", "--pace", pace, held_path.to_str().unwrap()]));
        assert_eq!(code, 0, "{pace}: {out}");
        let (code, out) = run(builtin(&["run", "--pace", pace, failing.to_str().unwrap()]));
        assert_eq!(code, 1, "{pace}: {out}");
        assert!(out.contains(&expected), "{pace}: {out}");
    }
}

/// Two pods of a Deployment whose second init container reads a ConfigMap's key: no traffic
/// until it exists, then both serve.
const HELD_BY_INIT_CONTAINER: &str = r#"scenario "init" {
    apply <<YAML
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
        spec:
          replicas: 2
          selector:
            matchLabels:
              app: web
          template:
            metadata:
              labels:
                app: web
            spec:
              initContainers:
                - name: proxy
                  image: envoy
                  restartPolicy: Always
                - name: migrate
                  image: tool
                  env:
                    - name: MODE
                      valueFrom:
                        configMapKeyRef:
                          name: settings
                          key: mode
              containers:
                - name: web
                  image: nginx:1.27
        ---
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
    expect pods app=web count 2
    expect-traffic service/web none
    apply <<YAML
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: settings
        data:
          mode: fast
    YAML
    wait rollout deployment/web
    expect-traffic service/web count 2
}
"#;

/// Two pods of a Deployment, each needing a Secret as a volume and a ConfigMap's key in its
/// environment: no traffic until both exist, then both serve.
const HELD_UNTIL_CONFIG: &str = r#"scenario "config" {
    apply <<YAML
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
        spec:
          replicas: 2
          selector:
            matchLabels:
              app: web
          template:
            metadata:
              labels:
                app: web
            spec:
              containers:
                - name: web
                  image: nginx:1.27
                  env:
                    - name: MODE
                      valueFrom:
                        configMapKeyRef:
                          name: settings
                          key: mode
                - name: sidecar
                  image: envoy
              volumes:
                - name: certs
                  secret:
                    secretName: certs
        ---
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
    expect pods app=web count 2
    expect-traffic service/web none
    apply <<YAML
        apiVersion: v1
        kind: Secret
        metadata:
          name: certs
        stringData:
          tls.crt: x
    YAML
    expect-traffic service/web none
    apply <<YAML
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: settings
        data:
          mode: fast
    YAML
    wait rollout deployment/web
    expect-traffic service/web count 2
}
"#;

/// An autoscaling/v1 HorizontalPodAutoscaler: a cluster serves the version (and the autoscaler
/// scales its target), the built-in cluster serves only autoscaling/v2, so it stops the scenario
/// and says how to write the manifest instead.
#[test]
fn an_autoscaling_v1_autoscaler_stops_the_scenario_on_the_builtin_cluster_and_says_how_to_write_it() {
    let dir = tempfile::tempdir().unwrap();
    let text = "scenario \"v1\" {\n    apply <<YAML\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n        - name: web\n          image: nginx\n---\napiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: web\nspec:\n  scaleTargetRef:\n    apiVersion: apps/v1\n    kind: Deployment\n    name: web\n  minReplicas: 2\n  maxReplicas: 3\n  targetCPUUtilizationPercentage: 50\nYAML\n    expect pods app=web count 2\n}\n";
    let path = script(dir.path(), "v1.rollout", text);
    let (code, on_testbed) = run(common::rehearse(&["run", path.to_str().unwrap()]));
    assert_eq!(code, 0, "{on_testbed}");
    let (code, on_builtin) = run(builtin(&["run", path.to_str().unwrap()]));
    assert_eq!(code, 3, "{on_builtin}");
    assert!(on_builtin.contains("serves HorizontalPodAutoscalers as autoscaling/v2 only"), "{on_builtin}");
    assert!(on_builtin.contains("`targetCPUUtilizationPercentage: N` is `metrics:"), "{on_builtin}");
    assert!(
        on_builtin.contains("run the scenario on a cluster (--context, --kubeconfig or KUBECONFIG)"),
        "{on_builtin}"
    );
}

/// Runs the script at `path` on the testbed and on the built-in cluster: on both it fails (exit 1)
/// with exactly the `expected` failure lines (from the file name on), and on the testbed well
/// before the scenarios' 2 minute timeouts.
fn fails_at_once_alike(path: &std::path::Path, expected: &[&str]) {
    let file = format!("{}:", path.file_name().unwrap().to_str().unwrap());
    let failures = |output: &str| -> Vec<String> {
        output
            .lines()
            .filter(|l| l.contains("FAIL "))
            .filter_map(|l| l.find(&file).map(|at| l[at..].to_string()))
            .collect()
    };
    let started = Instant::now();
    let (code, on_testbed) = run(common::rehearse(&["run", path.to_str().unwrap()]));
    assert_eq!(code, 1, "{on_testbed}");
    assert!(started.elapsed() < Duration::from_secs(100), "waited out the timeouts: {on_testbed}");
    let (code, on_builtin) = run(builtin(&["run", path.to_str().unwrap()]));
    assert_eq!(code, 1, "{on_builtin}");
    assert_eq!(failures(&on_builtin), expected, "{on_builtin}");
    assert_eq!(failures(&on_testbed), expected, "{on_testbed}");
}

#[test]
fn a_rollout_past_its_progress_deadline_fails_at_once_with_the_same_words_on_both_clusters() {
    let dir = tempfile::tempdir().unwrap();
    // No node carries `disk: ssd`: the pods never schedule, and after 5 s without progress the
    // Deployment controller gives up (Progressing=False, ProgressDeadlineExceeded), as
    // `kubectl rollout status` reports. Neither the wait nor the snapshot waits out its timeout.
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  progressDeadlineSeconds: 5\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      nodeSelector:\n        disk: ssd\n      containers:\n        - name: web\n          image: nginx\n";
    let path = script(
        dir.path(),
        "stalled.rollout",
        &format!(
            "scenario \"wait\" {{\n    apply <<YAML\n{deployment}YAML\n    wait rollout deployment/web within 2m\n}}\n\nscenario \"snapshot\" {{\n    apply <<YAML\n{deployment}YAML\n    expect pods app=web count 2\n    snapshot \"stalled\" within 2m\n}}\n"
        ),
    );
    fails_at_once_alike(
        &path,
        &[
            "stalled.rollout:26:5: `wait rollout deployment/web within 2m`: deployment/web exceeded its progress deadline (5s without progress): 2 of 2 updated, 0 available",
            "stalled.rollout:53:5: `snapshot \"stalled\" within 2m`: the cluster will not settle: deployment/web exceeded its progress deadline (5s without progress): 2 of 2 updated, 0 available",
        ],
    );
}

#[test]
fn a_rollout_that_waits_for_the_user_fails_a_wait_at_once_with_the_same_words_on_both_clusters() {
    let dir = tempfile::tempdir().unwrap();
    // A paused Deployment and an OnDelete DaemonSet take a new template but roll it out only when
    // the user resumes or deletes: nothing in a scenario does so while a step waits.
    let deployment = |paused: bool, version: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  paused: {paused}\n  replicas: 2\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n        version: \"{version}\"\n    spec:\n      containers:\n        - name: web\n          image: nginx\n"
        )
    };
    let daemon_set = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: agent\nspec:\n  updateStrategy:\n    type: OnDelete\n  selector:\n    matchLabels:\n      app: agent\n  template:\n    metadata:\n      labels:\n        app: agent\n    spec:\n      containers:\n        - name: agent\n          image: nginx\n";
    let path = script(
        dir.path(),
        "held.rollout",
        &format!(
            "scenario \"paused\" {{\n    apply <<YAML\n{}YAML\n    wait rollout deployment/web\n    apply <<YAML\n{}YAML\n    wait rollout deployment/web within 2m\n}}\n\nscenario \"on delete\" {{\n    apply <<YAML\n{daemon_set}YAML\n    wait rollout daemonset/agent\n    template daemonset/agent version=2\n    expect daemonset/agent rolled-out within 2m\n}}\n",
            deployment(false, "1"),
            deployment(true, "2"),
        ),
    );
    fails_at_once_alike(
        &path,
        &[
            "held.rollout:47:5: `wait rollout deployment/web within 2m`: deployment/web is paused: its template rolls out once it is resumed: 0 of 2 updated, 2 available",
            "held.rollout:73:5: `expect daemonset/agent rolled-out within 2m`: daemonset/agent updates a node's pod only once that pod is deleted (updateStrategy OnDelete): 0 of 2 updated, 2 available",
        ],
    );
}

/// Ctrl-C in the middle of a write that makes thousands of pods: the built-in cluster makes them
/// within the write, in rounds of 500, and stops between two rounds, so the run ends interrupted
/// (exit 130) in about a round's time, not once all 10,000 are made (seconds later).
#[test]
fn ctrl_c_during_a_scale_to_thousands_of_pods_stops_the_run_within_a_round() {
    use std::io::{BufRead, Read};
    let dir = tempfile::tempdir().unwrap();
    let path = script(
        dir.path(),
        "big.rollout",
        "scenario \"big\" {\n    nodes 101\n    apply \"dockercoins/rng.yaml\"\n    scale deployment/rng to 10000\n    wait rollout deployment/rng within 10m\n}\n",
    );
    let mut child = builtin(&["run", "--pace", "kind", path.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut terminal = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut header = String::new();
    terminal.read_line(&mut header).unwrap();
    assert!(header.contains("built-in (kind pace)"), "{header}");
    // The scale starts milliseconds after the header and its write lasts seconds in a test
    // build: a signal a second later lands within it. The output can only show that the scale
    // was reached and the rollout never finished; the bound on the time below is what fails
    // when the write runs on to its end (4.7 s after the signal without the rounds' check).
    std::thread::sleep(Duration::from_secs(1));
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let signalled = Instant::now();
    let status = child.wait().unwrap();
    let stopped_in = signalled.elapsed();
    let mut rest = String::new();
    terminal.read_to_string(&mut rest).unwrap();
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(rest.contains("interrupted"), "{rest}");
    assert!(
        rest.contains("scale deployment/rng to 10000") && !rest.contains("wait rollout"),
        "the scale reached, the rollout not finished: {rest}"
    );
    eprintln!("stopped {stopped_in:?} after the signal");
    assert!(stopped_in < Duration::from_secs(3), "stopped {stopped_in:?} after the signal: {rest}");
}
