//! `rehearse run` end to end, as a user runs it, against the testbed's real API server.
//! Needs `tests/testbed/testbed.sh up` (tests/run.sh does it).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams};

use common::{finish, namespaces_left, rehearse, run, script, signal, start_waiting};

#[tokio::test]
async fn the_runbook_scenarios_pass_in_parallel_with_reports() {
    let dir = tempfile::tempdir().unwrap();
    let (junit, json) = (dir.path().join("junit.xml"), dir.path().join("report.json"));
    let (code, output) = run(rehearse(&[
        "run",
        "--jobs",
        "4",
        "scenarios",
        "--report",
        &format!("junit={}", junit.display()),
        "--report",
        &format!("json={}", json.display()),
    ]));
    assert_eq!(code, 0, "{output}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["passed"], 12, "{output}");
    assert_eq!(report["failed"], 0);
    let swapped = report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["file"].as_str().unwrap().contains("05-swapped"))
        .unwrap();
    assert_eq!(
        swapped["guards"][0]["violations"][0],
        "no serving endpoints from the step at line 11 until the step at line 13"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), 12, "{xml}");
    assert!(!xml.contains("<failure"), "{xml}");
    assert!(namespaces_left(&json).await.is_empty());
}

#[tokio::test]
async fn result_documents_are_the_same_bytes_on_every_run() {
    // The whole suite, in parallel (where timing varies most), three times.
    let dir = tempfile::tempdir().unwrap();
    let runs: Vec<PathBuf> = (1..=3).map(|n| dir.path().join(n.to_string())).collect();
    for out in &runs {
        let (code, output) = run(rehearse(&["run", "--jobs", "4", "scenarios", "--results", out.to_str().unwrap()]));
        assert_eq!(code, 0, "{output}");
    }
    let mut names: Vec<_> = std::fs::read_dir(&runs[0]).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names.len(), 12);
    for name in names {
        let first = std::fs::read_to_string(runs[0].join(&name)).unwrap();
        assert!(!first.contains("rehearse-"), "a namespace name leaked into {name:?}:\n{first}");
        for other in &runs[1..] {
            let text = std::fs::read_to_string(other.join(&name)).unwrap();
            let diff = similar::TextDiff::from_lines(&first, &text).unified_diff().to_string();
            assert!(diff.is_empty(), "{name:?} differs between runs:\n{diff}");
        }
    }
}

#[tokio::test]
async fn an_unmet_expectation_fails_at_its_timeout_with_expected_and_observed() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(
        dir.path(),
        "timeout.rollout",
        "scenario \"too many\" {\n    apply \"dockercoins/rng.yaml\"\n    expect pods app=rng count 5 within 1s\n    snapshot \"never reached\"\n}\n",
    );
    let (json, junit) = (dir.path().join("report.json"), dir.path().join("junit.xml"));
    let started = Instant::now();
    let (code, output) = run(rehearse(&[
        "run",
        path.to_str().unwrap(),
        "--report",
        &format!("json={}", json.display()),
        "--report",
        &format!("junit={}", junit.display()),
    ]));
    assert_eq!(code, 1, "{output}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<failure message=") && xml.contains("not satisfied within 1s"), "{xml}");
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
    assert!(output.contains("timeout.rollout:5:5: `expect pods app=rng count 5 within 1s`: not satisfied within 1s: 1 match `pods app=rng`"), "{output}");
    assert!(output.contains("skip"), "later steps are skipped: {output}");
    assert!(namespaces_left(&json).await.is_empty(), "the namespace is deleted after a failure");
}

#[tokio::test]
async fn refused_api_calls_fail_the_step_and_expect_refused_needs_a_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let refused = script(
        dir.path(),
        "refused.rollout",
        "scenario \"refused\" {\n    apply \"dockercoins/rng.yaml\"\n    template deployment/rng app-\n}\n",
    );
    let (code, output) = run(rehearse(&["run", refused.to_str().unwrap()]));
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains("refused by the API (422 Invalid)") && output.contains("does not match template"),
        "{output}"
    );

    let accepted = script(
        dir.path(),
        "accepted.rollout",
        "scenario \"accepted\" {\n    apply \"dockercoins/rng.yaml\"\n    expect-refused template deployment/rng tier=web\n}\n",
    );
    let (code, output) = run(rehearse(&["run", accepted.to_str().unwrap()]));
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("the step was accepted; it was expected to be refused"), "{output}");

    // Only a refusal counts: a missing object is a failure, not a refusal. (A step that only
    // reads, such as `expect`, cannot be refused: the checker says so before anything runs.)
    let not_refusals = script(
        dir.path(),
        "not-refusals.rollout",
        "scenario \"missing\" {\n    apply \"dockercoins/rng.yaml\"\n    expect-refused template deployment/rgn app-\n}\n\nscenario \"deleted\" {\n    expect-refused delete pod/never-was\n}\n",
    );
    let (code, output) = run(rehearse(&["run", not_refusals.to_str().unwrap()]));
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("0 passed, 2 failed"), "{output}");
    assert!(output.contains("failed without being refused") && output.contains("\"rgn\" not found"), "{output}");
    assert!(output.contains("failed without being refused") && output.contains("\"never-was\" not found"), "{output}");
}

#[tokio::test]
async fn the_swapped_order_fires_an_unexpected_guard() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(
        dir.path(),
        "swapped.rollout",
        "scenario \"swapped\" {\n    apply \"dockercoins/rng.yaml\"\n    wait rollout deployment/rng\n    guard service/rng always-serving\n    select service/rng app=rng,active=yes\n    expect-traffic service/rng none\n    label pods app=rng active=yes\n    expect-traffic service/rng count 1\n}\n",
    );
    let (code, output) = run(rehearse(&["run", path.to_str().unwrap()]));
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains("guard service/rng always-serving (line 6): fired: no serving endpoints from the step at line 7 until the step at line 9: opened when pod of replicaset/rng-{hash} stopped serving, closed when pod of replicaset/rng-{hash} started serving"),
        "{output}"
    );
    assert_eq!(output.matches("fired: no serving endpoints").count(), 1, "the failure is printed once: {output}");
}

#[tokio::test]
async fn remove_from_lb_refuses_when_only_the_controller_key_is_selected() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(
        dir.path(),
        "lb.rollout",
        "scenario \"no spare label\" {\n    apply \"dockercoins/rng.yaml\"\n    wait rollout deployment/rng\n    let victim = one pod app=rng\n    remove-from-lb $victim\n}\n",
    );
    let (code, output) = run(rehearse(&["run", path.to_str().unwrap()]));
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains(
            "refused by rehearse, before touching the cluster: service/rng selects only `app`, which replicaset/"
        ),
        "{output}"
    );
    assert!(output.contains("Extend the Service's selector first"), "{output}");
}

#[tokio::test]
async fn the_load_balancer_steps_refuse_a_service_that_does_not_select_the_pod_or_labels_its_controller_needs() {
    let dir = tempfile::tempdir().unwrap();
    let other = "    apply <<YAML\napiVersion: v1\nkind: Service\nmetadata:\n  name: other\nspec:\n  selector:\n    app: web\n  ports:\n    - port: 80\nYAML\n";
    let text = format!(
        "scenario \"remove from another\" {{\n    apply \"dockercoins/rng.yaml\"\n    wait rollout deployment/rng\n    label pods app=rng active=yes\n{other}    let victim = one pod app=rng\n    remove-from-lb $victim from service/other\n}}\n\
scenario \"add to another\" {{\n    apply \"dockercoins/rng.yaml\"\n    wait rollout deployment/rng\n{other}    let victim = one pod app=rng\n    add-to-lb $victim to service/other\n}}\n\
scenario \"all or nothing\" {{\n    apply \"dockercoins/rng.yaml\"\n    wait rollout deployment/rng\n{other}    run aaa labels app=rng\n    expect-refused add-to-lb pods app=rng to service/other\n    expect pod/aaa labels app=rng\n}}\n"
    );
    let path = script(dir.path(), "lb-other.rollout", &text);
    let (code, output) = run(rehearse(&["run", path.to_str().unwrap()]));
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains("refused by rehearse, before touching the cluster: $victim is not behind service/other: its selector app=web does not match the pod's labels"),
        "{output}"
    );
    assert!(
        output.contains("refused by rehearse, before touching the cluster: setting app=web on $victim would take it from replicaset/rng-{hash}"),
        "{output}"
    );
    assert!(!output.contains("removed active") && !output.contains("restored app=web"), "{output}");
    // The bare pod sorts first and may take the label; the step is refused for the other, and
    // refused before touching either.
    assert!(output.contains("PASS all or nothing"), "{output}");
}

#[tokio::test]
async fn snapshots_are_created_compared_and_updated_but_never_written_under_ci() {
    let dir = tempfile::tempdir().unwrap();
    let text = |replicas: u32| {
        format!(
            "scenario \"snap\" {{\n    apply \"dockercoins/rng.yaml\"\n    scale deployment/rng to {replicas}\n    wait rollout deployment/rng\n    snapshot \"state\"\n}}\n"
        )
    };
    let path = script(dir.path(), "snap.rollout", &text(2));
    let path_arg = path.to_str().unwrap();
    let snap = dir.path().join("snapshots/snap__snap__state.snap");

    // Under CI a missing snapshot fails and nothing is written.
    let (code, output) = run(rehearse(&["run", path_arg]));
    assert_eq!(code, 1, "{output}");
    assert!(!dir.path().join("snapshots").exists());

    // Locally it is created, then matched.
    let (code, output) = run(rehearse(&["run", path_arg]).env_remove("CI"));
    assert_eq!(code, 0, "{output}");
    assert!(std::fs::read_to_string(&snap).unwrap().contains("traffic: 2 × pod of replicaset/rng-{hash}"));
    let (code, output) = run(rehearse(&["run", path_arg]));
    assert_eq!(code, 0, "{output}");

    // A changed scenario mismatches: a diff is printed and .snap.new written (not under CI).
    let path = script(dir.path(), "snap.rollout", &text(3));
    let (code, output) = run(rehearse(&["run", path_arg]).env_remove("CI"));
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("-    traffic: 2 × pod of replicaset/rng-{hash}"), "{output}");
    assert!(output.contains("+    traffic: 3 × pod of replicaset/rng-{hash}"), "{output}");
    assert!(snap.with_extension("snap.new").exists());

    // An explicit update rewrites it.
    let (code, output) = run(rehearse(&["run", "--update-snapshots", path.to_str().unwrap()]).env_remove("CI"));
    assert_eq!(code, 0, "{output}");
    assert!(std::fs::read_to_string(&snap).unwrap().contains("traffic: 3 × pod"));
}

#[tokio::test]
async fn keep_leaves_the_namespace_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(dir.path(), "keep.rollout", "scenario \"keep\" {\n    apply \"dockercoins/rng.yaml\"\n}\n");
    let json = dir.path().join("report.json");
    let (code, output) =
        run(rehearse(&["run", "--keep", path.to_str().unwrap(), "--report", &format!("json={}", json.display())]));
    assert_eq!(code, 0, "{output}");
    let left = namespaces_left(&json).await;
    assert_eq!(left.len(), 1);
    assert!(output.contains(&format!("kept namespace {}", left[0])), "{output}");
    Api::<Namespace>::all(common::client().await).delete(&left[0], &DeleteParams::background()).await.unwrap();
}

#[tokio::test]
async fn cleanup_deletes_only_the_namespace_it_created() {
    let client = common::client().await;
    let namespaces = Api::<Namespace>::all(client.clone());
    // A namespace of the same name that rehearse did not create (another uid) is left alone.
    let foreign = common::TestNamespace::new(&client, "not-rehearse").await;
    let impostor = rehearse::exec::namespace::OwnNamespace { name: foreign.name.clone(), uid: "another-uid".into() };
    rehearse::exec::namespace::delete(&client, &impostor).await.unwrap();
    let still = namespaces.get(&foreign.name).await.unwrap();
    assert!(still.metadata.deletion_timestamp.is_none(), "a namespace rehearse did not create was deleted");
    // Its own is deleted, and deleting it again (gone or terminating) is not an error.
    let own = rehearse::exec::namespace::create(
        &client,
        "cleanup test",
        &rehearse::exec::namespace::RunIdentity::new(rehearse::exec::namespace::DEFAULT_LEASE),
    )
    .await
    .unwrap();
    rehearse::exec::namespace::delete(&client, &own).await.unwrap();
    let terminating = namespaces.get_opt(&own.name).await.unwrap();
    assert!(terminating.is_none_or(|n| n.metadata.deletion_timestamp.is_some()));
    rehearse::exec::namespace::delete(&client, &own).await.unwrap();
}

#[tokio::test]
async fn ctrl_c_stops_the_run_and_deletes_the_namespace() {
    let dir = tempfile::tempdir().unwrap();
    // Returns once the scenario's Deployment exists: the run is inside its long step.
    let (child, _, json) = start_waiting(dir.path(), &[]).await;
    // The step waits for 5 minutes: a moment in it, its time is more than nothing.
    tokio::time::sleep(Duration::from_millis(200)).await;
    signal(&child, "INT");
    let started = Instant::now();
    let (status, text) = finish(child).await;
    assert_eq!(status, Some(130), "{text}");
    assert!(started.elapsed() < Duration::from_secs(10), "stopped promptly: {:?}", started.elapsed());
    // The stopped step is reported with the time it ran until the signal.
    let stopped = text.lines().find(|l| l.contains("expect pods app=never") && l.contains("interrupted"));
    let took = stopped.and_then(|l| l.split("ms").next()?.split_whitespace().last()?.parse::<u64>().ok());
    assert!(took.is_some_and(|ms| ms >= 100), "{text}");
    assert!(namespaces_left(&json).await.is_empty(), "the namespace is deleted after Ctrl-C");
}

fn kubeconfig_with_context(dir: &Path, context: &str, server: Option<&str>) -> PathBuf {
    let original = std::fs::read_to_string(common::kubeconfig()).unwrap();
    let mut text = original.replace("kwok-rehearse", context);
    if let Some(server) = server {
        let re = regex::Regex::new(r"server: \S+").unwrap();
        text = re.replace_all(&text, format!("server: {server}").as_str()).into_owned();
    }
    let path = dir.join(format!("{context}.kubeconfig"));
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn contexts_that_are_not_throwaway_are_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let config = kubeconfig_with_context(dir.path(), "prod-eu", None);
    let path = script(dir.path(), "ok.rollout", "scenario \"ok\" {\n    apply \"dockercoins/rng.yaml\"\n}\n");
    let (code, output) = run(rehearse(&["run", path.to_str().unwrap()]).env("KUBECONFIG", &config));
    assert_eq!(code, 2, "{output}");
    assert!(
        output.contains("refusing to run against context `prod-eu`") && output.contains("--allow-context prod-eu"),
        "{output}"
    );
    let (code, output) =
        run(rehearse(&["run", "--allow-context", "prod-eu", path.to_str().unwrap()]).env("KUBECONFIG", &config));
    assert_eq!(code, 0, "{output}");
}

#[tokio::test]
async fn an_unreachable_cluster_is_an_infrastructure_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = kubeconfig_with_context(dir.path(), "kind-gone", Some("https://127.0.0.1:1"));
    let path = script(dir.path(), "ok.rollout", "scenario \"ok\" {\n    apply \"dockercoins/rng.yaml\"\n}\n");
    let started = Instant::now();
    let (code, output) = run(rehearse(&["run", path.to_str().unwrap()]).env("KUBECONFIG", &config));
    assert_eq!(code, 3, "{output}");
    assert!(output.contains("does not answer"), "{output}");
    assert!(started.elapsed() < Duration::from_secs(30));
    // A kubeconfig that is not there is the user's input to fix, not an outage.
    let (code, output) = run(rehearse(&["run", path.to_str().unwrap()]).env("KUBECONFIG", dir.path().join("missing")));
    assert_eq!(code, 2, "{output}");
    assert!(output.contains("cannot read the kubeconfig"), "{output}");
}

#[tokio::test]
async fn a_scenario_wanting_more_nodes_than_the_cluster_has_fails_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let path =
        script(dir.path(), "nodes.rollout", "nodes 5\n\nscenario \"big\" {\n    apply \"dockercoins/rng.yaml\"\n}\n");
    let (code, output) = run(rehearse(&["run", path.to_str().unwrap()]));
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("wants 5 schedulable nodes (its `nodes` setting) but the cluster has 2"), "{output}");
}

#[tokio::test]
async fn invalid_scripts_run_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(dir.path(), "bad.rollout", "scenario \"bad\" {\n    lable pods app=rng x=y\n}\n");
    let (code, output) = run(rehearse(&["run", path.to_str().unwrap()]));
    assert_eq!(code, 2, "{output}");
    assert!(output.contains("did you mean `label`?") && output.contains("nothing was run"), "{output}");
}
