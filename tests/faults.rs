//! Faults on the testbed: signals, SIGKILL and `rehearse clean`, a namespace replaced under a
//! run, the API server killed, frozen and silent. These stop or freeze the shared API server, so
//! the tests of this file take turns (the other test binaries run before or after, never during).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{finish, namespaces_left, rehearse, run, script, signal, start_waiting, unique};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, PostParams};

/// One fault at a time: they share the testbed's API server.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn testbed(args: &[&str]) {
    let status = Command::new("bash").arg("tests/testbed/testbed.sh").args(args).status().unwrap();
    assert!(status.success(), "testbed.sh {args:?}");
}

/// Thaws the API server when a test that froze it ends, however it ends.
struct Thaw;

impl Drop for Thaw {
    fn drop(&mut self) {
        let _ = Command::new("bash").args(["tests/testbed/testbed.sh", "apiserver", "thaw"]).status();
    }
}

/// Whether the namespace is gone or being deleted.
async fn deleted(name: &str) -> bool {
    let namespace = Api::<Namespace>::all(common::client().await).get_opt(name).await.unwrap();
    namespace.is_none_or(|n| n.metadata.deletion_timestamp.is_some())
}

#[tokio::test]
async fn sigterm_and_sighup_stop_the_run_like_ctrl_c_and_delete_its_namespace() {
    let _turn = TURN.lock().await;
    for (name, code) in [("TERM", 143), ("HUP", 129)] {
        let dir = tempfile::tempdir().unwrap();
        let (child, namespace, json) = start_waiting(dir.path(), &[]).await;
        signal(&child, name);
        let (status, text) = finish(child).await;
        assert_eq!(status, Some(code), "SIG{name}: {text}");
        assert!(text.contains(&format!("SIG{name}: stopping; deleting the scenarios' namespaces")), "{text}");
        assert!(deleted(&namespace).await, "SIG{name} left namespace {namespace}");
        assert!(namespaces_left(&json).await.is_empty());
    }
}

/// A namespace labelled as rehearse's, holding a lease renewed `renewed_ago` ago for `seconds`,
/// by `holder`, and by `process` if given.
async fn leased_namespace(name: &str, holder: &str, renewed_ago: u64, seconds: u64, process: Option<String>) {
    let renewed =
        k8s_openapi::jiff::Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_secs(renewed_ago as i64);
    let mut annotations = serde_json::json!({
        "rehearse.dev/lease-holder": holder,
        "rehearse.dev/lease-renewed": renewed.to_string(),
        "rehearse.dev/lease-seconds": seconds.to_string(),
    });
    if let Some(process) = process {
        annotations["rehearse.dev/lease-process"] = process.into();
    }
    let namespace: Namespace = serde_json::from_value(serde_json::json!({"metadata": {
        "name": name,
        "labels": {"app.kubernetes.io/managed-by": "rehearse", "rehearse.dev/run": "otherrun"},
        "annotations": annotations,
    }}))
    .unwrap();
    Api::<Namespace>::all(common::client().await).create(&PostParams::default(), &namespace).await.unwrap();
}

#[tokio::test]
async fn clean_reclaims_a_killed_run_of_this_machine_at_once_and_others_once_their_lease_expired() {
    let _turn = TURN.lock().await;
    let client = common::client().await;
    let namespaces = Api::<Namespace>::all(client.clone());
    // Never to be touched: a namespace without rehearse's label; one whose lease a run on another
    // machine holds (made up: renewed just now for an hour); one a live process of this machine
    // holds (this test's own).
    let unlabelled = common::TestNamespace::new(&client, "not-rehearse").await;
    let held_elsewhere = format!("rehearse-held-{}", std::process::id());
    leased_namespace(&held_elsewhere, "elsewhere/1", 0, 3600, None).await;
    let held_here = format!("rehearse-held-here-{}", std::process::id());
    let this_test = rehearse::exec::liveness::this_process().expect("Linux's /proc names this process");
    leased_namespace(&held_here, "here/1", 0, 3600, Some(this_test)).await;
    // Reclaimable by its lease: renewed an hour ago for 3 s, by a run on another machine.
    let expired_elsewhere = format!("rehearse-expired-{}", std::process::id());
    leased_namespace(&expired_elsewhere, "elsewhere/2", 3600, 3, None).await;

    let dir = tempfile::tempdir().unwrap();
    let (child, killed, _) = start_waiting(dir.path(), &[]).await;
    signal(&child, "KILL");
    let (status, _) = finish(child).await;
    assert_eq!(status, None, "killed by a signal");
    assert!(!deleted(&killed).await, "nothing could clean up after SIGKILL");

    // Its lease (60 s) still holds, but its process is gone from this machine: reclaimable at once.
    let (code, text) = run(rehearse(&["clean", "--dry-run"]));
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(&format!("would delete {killed}: run")), "{text}");
    assert!(!deleted(&killed).await, "--dry-run deletes nothing");

    let (code, text) = run(rehearse(&["clean"]));
    assert_eq!(code, 0, "{text}");
    let reclaimed = regex::Regex::new(&format!(
        r"deleted {killed}: run \S+ \(\S+/\d+\) no longer runs on this machine, though its lease still holds"
    ))
    .unwrap();
    assert!(reclaimed.is_match(&text), "{text}");
    assert!(
        text.contains(&format!("deleted {expired_elsewhere}: run otherrun (elsewhere/2) stopped renewing")),
        "{text}"
    );
    assert!(text.contains(&format!("kept {held_elsewhere}: in use by run otherrun (elsewhere/1)")), "{text}");
    assert!(text.contains(&format!("kept {held_here}: in use by run otherrun (here/1)")), "{text}");
    assert!(!text.contains(&unlabelled.name), "an unlabelled namespace is not even looked at: {text}");
    assert!(deleted(&killed).await);
    assert!(deleted(&expired_elsewhere).await);
    assert!(!deleted(&held_elsewhere).await, "a namespace with a live lease was deleted");
    assert!(!deleted(&held_here).await, "a namespace of a live process of this machine was deleted");
    assert!(!deleted(&unlabelled.name).await, "a namespace without the label was deleted");
    for name in [held_elsewhere, held_here] {
        namespaces.delete(&name, &DeleteParams::background()).await.unwrap();
    }
}

#[tokio::test]
async fn a_namespace_deleted_and_made_again_under_a_run_stops_it_and_is_left_alone() {
    let _turn = TURN.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let (child, name, _) = start_waiting(dir.path(), &[]).await;
    let namespaces = Api::<Namespace>::all(common::client().await);
    namespaces.delete(&name, &DeleteParams::foreground()).await.unwrap();
    // Made again by someone else as soon as the name is free.
    rehearse::cluster::until(
        namespaces.clone(),
        kube::runtime::watcher::Config::default().fields(&format!("metadata.name={name}")),
        Duration::from_secs(60),
        |all| all.is_empty().then_some(()),
    )
    .await
    .expect("the namespace is deleted");
    let foreign: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    namespaces.create(&PostParams::default(), &foreign).await.unwrap();
    let (status, text) = finish(child).await;
    assert_eq!(status, Some(3), "{text}");
    assert!(text.contains(&format!("namespace {name} ")) && text.contains("by someone else"), "{text}");
    let still = namespaces.get(&name).await.unwrap();
    assert!(still.metadata.deletion_timestamp.is_none(), "rehearse deleted a namespace it did not make");
    namespaces.delete(&name, &DeleteParams::background()).await.unwrap();
}

#[tokio::test]
async fn an_api_server_restart_during_a_run_is_ridden_out_and_leaks_nothing() {
    let _turn = TURN.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let child = rehearse(&["run", "--jobs", "4", "scenarios", "--report", &format!("json={}", json.display())])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Scenarios in flight and scenarios not yet started both meet the outage (about 3 s).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    testbed(&["apiserver", "restart"]);
    let (status, text) = finish(child).await;
    // Each scenario either passed or failed as an outage (exit 3) that says so; none failed as
    // an unmet expectation, and none left its namespace behind.
    assert!(matches!(status, Some(0) | Some(3)), "{text}");
    assert!(!text.contains("not satisfied within"), "an outage was reported as an unmet expectation: {text}");
    if status == Some(3) {
        assert!(text.contains("API server"), "{text}");
    }
    assert!(namespaces_left(&json).await.is_empty(), "{text}");
}

#[tokio::test]
async fn a_frozen_api_server_fails_the_step_as_an_outage_and_a_second_signal_stops_at_once() {
    let _turn = TURN.lock().await;
    // A step waiting while the API server is frozen ends as an outage, not an unmet expectation.
    let dir = tempfile::tempdir().unwrap();
    let scenario = unique("short");
    let prefix = format!("rehearse-{}-", scenario.replace(' ', "-"));
    let text = format!(
        "scenario {scenario:?} {{\n    apply \"dockercoins/rng.yaml\"\n    expect pods app=never count 1 within 3s\n}}\n"
    );
    let path = script(dir.path(), "short.rollout", &text);
    let child =
        rehearse(&["run", path.to_str().unwrap()]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let client = common::client().await;
    rehearse::cluster::until(
        Api::<k8s_openapi::api::apps::v1::Deployment>::all(client),
        kube::runtime::watcher::Config::default(),
        Duration::from_secs(30),
        |all| all.iter().any(|d| d.metadata.namespace.as_deref().is_some_and(|n| n.starts_with(&prefix))).then_some(()),
    )
    .await
    .expect("the scenario started");
    // Frozen until the run has ended, whichever request the freeze caught (the apply's last
    // write, the step's wait, the namespace's delete): each ends as an outage.
    let thaw = Thaw;
    testbed(&["apiserver", "freeze"]);
    let (status, text) = finish(child).await;
    drop(thaw);
    assert_eq!(status, Some(3), "{text}");
    assert!(text.contains("the API server does not answer"), "{text}");
    assert!(!text.contains("not satisfied within"), "an outage was reported as an unmet expectation: {text}");
    // The namespace could not be deleted while frozen: named, and reclaimable by its lease.
    let left = regex::Regex::new(r"left behind: 1 namespace\(s\): (\S+)").unwrap();
    let namespace = left.captures(&text).unwrap_or_else(|| panic!("names what it left: {text}"))[1].to_string();
    assert!(namespace.starts_with(&prefix), "{text}");
    Api::<Namespace>::all(common::client().await).delete(&namespace, &DeleteParams::background()).await.unwrap();

    // Ctrl-C with the API frozen: the first starts the cleanup (which cannot finish), the
    // second stops at once and names the namespace left behind.
    let (child, namespace, _) = start_waiting(dir.path(), &["--lease", "3s"]).await;
    let thaw = Thaw;
    testbed(&["apiserver", "freeze"]);
    signal(&child, "INT");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = Instant::now();
    signal(&child, "INT");
    let (status, text) = finish(child).await;
    assert!(second.elapsed() < Duration::from_secs(3), "the second signal stopped it at once");
    assert_eq!(status, Some(130), "{text}");
    assert!(text.contains(&format!("left behind: {namespace}")), "{text}");
    drop(thaw);
    // Its run has ended: `clean` would reclaim it at once; deleted here to leave nothing behind.
    Api::<Namespace>::all(common::client().await).delete(&namespace, &DeleteParams::background()).await.unwrap();
}

#[tokio::test]
async fn a_server_that_never_answers_is_an_outage_within_15_seconds() {
    let _turn = TURN.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let path = script(dir.path(), "ok.rollout", "scenario \"ok\" {\n    apply \"dockercoins/rng.yaml\"\n}\n");
    // Accepts connections and never says a word (not even TLS).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming() {
            held.push(stream);
        }
    });
    let mut servers = vec![format!("https://127.0.0.1:{silent_port}")];
    // Completes TLS with the testbed's own certificate, then never answers HTTP.
    let pki = common::kubeconfig().parent().unwrap().join("pki");
    let tls_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut tls = Command::new("openssl")
        .args(["s_server", "-accept", &format!("127.0.0.1:{tls_port}")])
        .arg("-cert")
        .arg(pki.join("apiserver.crt"))
        .arg("-key")
        .arg(pki.join("apiserver.key"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl (installed by .ci/run)");
    // It prints ACCEPT once it listens.
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(tls.stdout.take().unwrap()));
    assert!(lines.any(|line| line.is_ok_and(|l| l.contains("ACCEPT"))), "openssl s_server did not start");
    std::thread::spawn(move || lines.for_each(drop));
    servers.push(format!("https://127.0.0.1:{tls_port}"));
    let server_line = regex::Regex::new(r"server: \S+").unwrap();
    let text = std::fs::read_to_string(common::kubeconfig()).unwrap();
    for server in servers {
        let config = server_line.replace_all(&text, format!("server: {server}").as_str());
        let kubeconfig = dir.path().join("silent.kubeconfig");
        std::fs::write(&kubeconfig, config.as_ref()).unwrap();
        let started = Instant::now();
        let (code, output) = run(rehearse(&["run", path.to_str().unwrap()]).env("KUBECONFIG", &kubeconfig));
        assert_eq!(code, 3, "{server}: {output}");
        assert!(output.contains("does not answer"), "{output}");
        assert!(started.elapsed() < Duration::from_secs(15), "{server}: {:?}", started.elapsed());
    }
    let _ = tls.kill();
    let _ = tls.wait();
}
