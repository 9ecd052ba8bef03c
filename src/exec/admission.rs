//! Whether the API admits a DaemonSet's pods, asked in a dry run: the one fact of rest that no
//! object shows (see [`super::at_rest::Owed::AdmissionUnjudged`]). The view asks while a
//! DaemonSet is short of pods with none on their way, and keeps the answers here.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::watch;

use super::at_rest::DaemonPodAdmission;
use crate::cluster::sim::controllers::add_daemon_tolerations;

/// How long one dry run may take before it is asked again.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// The pause before asking again after no answer, doubled each time up to the last.
const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(5);
/// How long an "admitted" answer stands before it is asked again, doubled for each answer about
/// the same version of the DaemonSet up to the last. Admitted, the pods are owed, and their
/// controller makes them within moments; should admission have changed its mind since (the
/// service account deleted), asking again lets the DaemonSet come to rest. Admission that judges
/// the controller's pod otherwise than the one asked for (by what it lacks, below) keeps it owed,
/// and the step fails at its timeout saying so.
const FIRST_ADMITTED_FOR: Duration = Duration::from_secs(1);
const LAST_ADMITTED_FOR: Duration = Duration::from_secs(8);

/// The answers the view holds, the latest for each DaemonSet.
pub type Admissions = Arc<Mutex<Vec<DaemonPodAdmission>>>;

/// Answers each request (the DaemonSet as the view holds it) until the view is dropped: asks the
/// API, records the answer through `publish` (which changes the answers as one change of the
/// view), and drops an admitted answer once it has stood for its while, so that a later check asks
/// again. An answer already held for the DaemonSet's version is not asked again.
pub async fn answer_requests(
    api: Api<Pod>,
    mut requests: watch::Receiver<Option<Arc<DaemonSet>>>,
    admissions: Admissions,
    publish: impl Fn(&dyn Fn(&mut Vec<DaemonPodAdmission>)) + Send + 'static,
) {
    // The DaemonSets whose admitted answers are to be dropped, and when.
    let mut rechecks: Vec<(String, tokio::time::Instant)> = Vec::new();
    // The while the last admitted answer stood, and for which version of which DaemonSet.
    let mut admitted_for: Option<(String, u64, Duration)> = None;
    loop {
        let due = rechecks.iter().map(|(_, at)| *at).min();
        tokio::select! {
            changed = requests.changed() => if changed.is_err() { return },
            () = sleep_until(due), if due.is_some() => {
                let now = tokio::time::Instant::now();
                let (done, waiting) = std::mem::take(&mut rechecks).into_iter().partition(|(_, at)| *at <= now);
                rechecks = waiting;
                let done: Vec<(String, tokio::time::Instant)> = done;
                let stale = |a: &DaemonPodAdmission| a.refused.is_none() && done.iter().any(|(uid, _)| *uid == a.uid);
                if admissions.lock().unwrap_or_else(|e| e.into_inner()).iter().any(stale) {
                    publish(&|held| held.retain(|a| !stale(a)));
                }
                continue;
            }
        }
        let Some(ds) = requests.borrow_and_update().clone() else { continue };
        let (Some(uid), Some(version)) =
            (ds.metadata.uid.clone(), ds.metadata.resource_version.as_deref().and_then(|v| v.parse::<u64>().ok()))
        else {
            continue;
        };
        let asked = |held: &[DaemonPodAdmission]| held.iter().any(|a| a.uid == uid && a.version == version);
        if asked(&admissions.lock().unwrap_or_else(|e| e.into_inner())) {
            continue;
        }
        let Some(refused) = ask(&api, &ds, &mut requests).await else { continue };
        if refused.is_none() {
            let stood = match &admitted_for {
                Some((same, at, stood)) if *same == uid && *at == version => (*stood * 2).min(LAST_ADMITTED_FOR),
                _ => FIRST_ADMITTED_FOR,
            };
            admitted_for = Some((uid.clone(), version, stood));
            rechecks.retain(|(other, _)| *other != uid);
            rechecks.push((uid.clone(), tokio::time::Instant::now() + stood));
        }
        let answer = DaemonPodAdmission { uid, version, refused };
        publish(&|held| {
            held.retain(|a| a.uid != answer.uid);
            held.push(answer.clone());
        });
    }
}

async fn sleep_until(due: Option<tokio::time::Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

/// The API's answer to a dry-run create of a pod of `asked_for`: `None` inside when it admits the
/// pod, its words when it refuses it. Without an answer (the connection lost, the API overloaded
/// or away) it asks again, after a pause that grows, until it has one or a newer request comes
/// (`None`).
async fn ask(
    api: &Api<Pod>,
    asked_for: &DaemonSet,
    requests: &mut watch::Receiver<Option<Arc<DaemonSet>>>,
) -> Option<Option<String>> {
    let pod = pod_of(asked_for);
    let dry_run = PostParams { dry_run: true, field_manager: None };
    let mut pause = FIRST_RETRY;
    loop {
        match tokio::time::timeout(ANSWER_TIMEOUT, api.create(&dry_run, &pod)).await {
            Ok(Ok(_)) => return Some(None),
            Ok(Err(kube::Error::Api(status))) if !no_answer(status.code) => return Some(Some(status.message)),
            _ => {}
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(LAST_RETRY);
        // The view repeats its request at every change it sees; only another DaemonSet, or
        // another version, supersedes this one.
        let superseded = match requests.has_changed() {
            Ok(false) => false,
            Ok(true) => {
                requests.borrow().as_deref().map(|d| (&d.metadata.uid, &d.metadata.resource_version))
                    != Some((&asked_for.metadata.uid, &asked_for.metadata.resource_version))
            }
            Err(_) => true,
        };
        if superseded {
            return None;
        }
    }
}

/// A status code that answers for the API's state or the caller's credentials, not for the pod:
/// unauthenticated (a token expired, renewed by the next request), too many requests, the API or
/// its storage away or too slow. Any other refusal is the answer, an authorizer's included: a
/// user who may not create pods cannot learn more, and rehearse judges the DaemonSet by its status
/// alone, as it did before it asked.
fn no_answer(code: u16) -> bool {
    matches!(code, 401 | 429 | 502 | 503 | 504)
}

/// A pod of the DaemonSet's template as its controller makes one (upstream's CreatePodTemplate):
/// the template's labels with the template generation, its annotations and finalizers, and the
/// daemon tolerations added. It lacks what the view cannot know or need not claim: the
/// `controller-revision-hash` label, the owner reference (which would need the permission to
/// block the DaemonSet's deletion) and the pin to a node; and it is asked for by the user, not by
/// the controller's account. Admission that judges those may answer the controller otherwise.
fn pod_of(ds: &DaemonSet) -> Pod {
    let template = ds.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    let meta = template.metadata.unwrap_or_default();
    let mut labels = meta.labels.unwrap_or_default();
    let generation = ds
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("deprecated.daemonset.template.generation").cloned())
        .or_else(|| ds.metadata.generation.map(|g| g.to_string()));
    if let Some(generation) = generation {
        labels.insert("pod-template-generation".to_string(), generation);
    }
    let mut spec = template.spec.unwrap_or_default();
    // Upstream's AddOrUpdateDaemonPodTolerations, kept once, where the built-in cluster's
    // DaemonSet controller uses it.
    if let Ok(mut value) = serde_json::to_value(&spec) {
        add_daemon_tolerations(&mut value);
        spec = serde_json::from_value(value).unwrap_or(spec);
    }
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", ds.metadata.name.as_deref().unwrap_or_default())),
            labels: Some(labels),
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use kube::api::PostParams;
    use serde_json::json;

    use super::*;
    use crate::cluster::sim::Pace;
    use crate::cluster::sim::api::SimCluster;

    fn daemon_set(account: &str) -> DaemonSet {
        serde_json::from_value(json!({
            "metadata": {"name": "agent"},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": {
                    "metadata": {"labels": {"app": "agent"}, "finalizers": ["example.com/hold"]},
                    "spec": {"serviceAccountName": account, "hostNetwork": true,
                             "tolerations": [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule",
                                              "operator": "Equal", "value": "x"}],
                             "containers": [{"name": "agent", "image": "agent:1"}]},
                },
            },
        }))
        .unwrap()
    }

    #[test]
    fn a_daemon_pod_is_asked_for_as_its_controller_makes_it() {
        let mut ds = daemon_set("agent");
        ds.metadata.generation = Some(3);
        let pod = pod_of(&ds);
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("agent-"));
        let labels = pod.metadata.labels.unwrap();
        assert_eq!(labels.get("pod-template-generation").map(String::as_str), Some("3"));
        assert_eq!(labels.get("app").map(String::as_str), Some("agent"));
        assert_eq!(pod.metadata.finalizers, Some(vec!["example.com/hold".to_string()]));
        let spec = pod.spec.unwrap();
        assert_eq!(spec.service_account_name.as_deref(), Some("agent"));
        let tolerated: Vec<(String, String, String)> = spec
            .tolerations
            .unwrap()
            .into_iter()
            .map(|t| (t.key.unwrap(), t.effect.unwrap(), t.operator.unwrap()))
            .collect();
        assert_eq!(
            tolerated.len(),
            8,
            "the template's, the six daemon tolerations, and one for the host's network: {tolerated:?}"
        );
        // The template's own for that key and effect, but for a value, is not the same toleration.
        let unschedulable: Vec<&str> =
            tolerated.iter().filter(|t| t.0 == "node.kubernetes.io/unschedulable").map(|t| t.2.as_str()).collect();
        assert_eq!(unschedulable, ["Equal", "Exists"]);
        // The registry's annotation, when there is one, names the template generation.
        ds.metadata.annotations =
            Some([("deprecated.daemonset.template.generation".to_string(), "7".to_string())].into());
        assert_eq!(pod_of(&ds).metadata.labels.unwrap()["pod-template-generation"], "7");
    }

    /// Starts the task on a built-in cluster; returns the request sender, the answers and a
    /// receiver of the task's publications.
    fn start(
        client: kube::Client,
    ) -> (watch::Sender<Option<Arc<DaemonSet>>>, Admissions, tokio::sync::mpsc::UnboundedReceiver<()>) {
        let (requests, receiver) = watch::channel(None);
        let admissions = Admissions::default();
        let (published, publications) = tokio::sync::mpsc::unbounded_channel();
        let held = admissions.clone();
        tokio::spawn(answer_requests(
            Api::namespaced(client, "default"),
            receiver,
            admissions.clone(),
            move |change| {
                change(&mut held.lock().unwrap());
                let _ = published.send(());
            },
        ));
        (requests, admissions, publications)
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_stands_for_its_version_and_an_admission_is_asked_again_after_a_while() {
        let client = SimCluster::start(2, Pace::Fast).client();
        let created = Api::<DaemonSet>::namespaced(client.clone(), "default")
            .create(&PostParams::default(), &daemon_set("agent"))
            .await
            .unwrap();
        let (requests, admissions, mut publications) = start(client.clone());
        let answers = || admissions.lock().unwrap().clone();

        requests.send_replace(Some(Arc::new(created.clone())));
        publications.recv().await.unwrap();
        let version: u64 = created.metadata.resource_version.as_deref().unwrap().parse().unwrap();
        let refused = answers();
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].version, version);
        assert!(
            refused[0]
                .refused
                .as_deref()
                .is_some_and(|why| why.contains("error looking up service account default/agent")),
            "{refused:?}"
        );

        // The account made: the same version is not asked again, and the refusal stands.
        let account = serde_json::from_value(json!({"metadata": {"name": "agent"}})).unwrap();
        Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(client.clone(), "default")
            .create(&PostParams::default(), &account)
            .await
            .unwrap();
        requests.send_replace(Some(Arc::new(created.clone())));
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(publications.try_recv().is_err(), "not asked again");
        assert_eq!(answers(), refused);

        // A newer version is asked about: admitted now, and the answer replaces the refusal.
        let mut newer = created.clone();
        newer.metadata.resource_version = Some((version + 1).to_string());
        requests.send_replace(Some(Arc::new(newer.clone())));
        publications.recv().await.unwrap();
        let admitted = answers();
        assert_eq!(
            admitted,
            vec![DaemonPodAdmission { uid: refused[0].uid.clone(), version: version + 1, refused: None }]
        );
        // It stands for a second, then goes, so that the view asks again.
        let asked = tokio::time::Instant::now();
        publications.recv().await.unwrap();
        assert_eq!(asked.elapsed(), FIRST_ADMITTED_FOR);
        assert!(answers().is_empty());
        // Asked again about the same version, and admitted again: it stands twice as long.
        requests.send_replace(Some(Arc::new(newer)));
        publications.recv().await.unwrap();
        let asked = tokio::time::Instant::now();
        publications.recv().await.unwrap();
        assert_eq!(asked.elapsed(), FIRST_ADMITTED_FOR * 2);
    }

    #[test]
    fn only_an_overloaded_or_absent_api_gives_no_answer() {
        for code in [401, 429, 502, 503, 504] {
            assert!(no_answer(code), "{code}");
        }
        // Admission's refusals (403, 422), a webhook's failure (500), a name in use (409).
        for code in [400, 403, 409, 422, 500] {
            assert!(!no_answer(code), "{code}");
        }
    }
}
