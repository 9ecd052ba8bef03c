//! The step executor: runs one scenario's steps in order against a cluster, inside a namespace of
//! its own, with guards watching in the background, and produces a deterministic result.

mod admission;
mod apply;
mod at_rest;
pub mod describe;
mod expect;
mod guard;
pub mod lease;
pub mod liveness;
pub mod namespace;
pub mod pod;
mod rollout;
mod steps;
mod substitute;
pub mod traffic;
pub mod view;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::Client;

use crate::diagnostic::LineIndex;
use crate::report::document::{GuardResult, ScenarioResult, Status, StepResult};
use crate::report::snapshot::{SnapshotMode, SnapshotOutcome, Snapshots};
use crate::syntax::ast::{Scenario, SettingKind, Step, StepKind};
use crate::syntax::format::step_text;
use view::View;

/// The default time for a step to be satisfied.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// What a run needs besides the scenario.
#[derive(Clone)]
pub struct RunOptions {
    pub client: Client,
    /// The node watch every scenario's view shares.
    pub nodes: view::Nodes,
    /// Discovery answers, shared by every scenario's `apply`.
    pub resources: Arc<apply::Resources>,
    pub keep_namespace: bool,
    pub snapshots: SnapshotMode,
    pub progress: crate::report::progress::Progress,
    /// The cluster's "now", which its timestamps (deletion deadlines, readiness) are read against.
    pub clock: ClusterClock,
    /// What the client saw of the API server's outages (never any on the built-in cluster).
    pub health: crate::cluster::transport::ApiHealth,
    /// This run, as its namespaces record it (labels and lease).
    pub run: namespace::RunIdentity,
    /// The namespaces of this run that exist now.
    pub live: namespace::LiveNamespaces,
}

/// Where "now" comes from: the machine's clock for a real cluster, the virtual one for the
/// built-in cluster (whose timestamps start at its own epoch).
#[derive(Clone, Copy, Debug, Default)]
pub enum ClusterClock {
    #[default]
    Wall,
    Builtin(crate::cluster::sim::clock::Clock),
}

impl ClusterClock {
    pub fn now(&self) -> k8s_openapi::jiff::Timestamp {
        match self {
            ClusterClock::Wall => k8s_openapi::jiff::Timestamp::now(),
            ClusterClock::Builtin(clock) => clock.now_timestamp(),
        }
    }
}

/// A scenario with what is needed to run and report it.
pub struct ScenarioJob<'a> {
    pub path: &'a Path,
    pub source: &'a str,
    pub base_dir: PathBuf,
    pub file_timeout: Option<Duration>,
    /// The file's `nodes` setting, if any.
    pub file_nodes: Option<u32>,
    pub scenario: &'a Scenario,
}

impl ScenarioJob<'_> {
    /// The worker nodes the scenario wants: its own `nodes` setting, else its file's.
    pub fn nodes(&self) -> Option<u32> {
        scenario_nodes(self.scenario).or(self.file_nodes)
    }
}

/// A scenario's own `nodes` setting, if any.
pub fn scenario_nodes(scenario: &Scenario) -> Option<u32> {
    scenario.settings().find_map(|s| match &s.kind {
        SettingKind::Nodes(n) => Some(n.value),
        _ => None,
    })
}

/// A pod bound by `let`, with what `replaced` needs to know later.
#[derive(Clone, Debug)]
pub struct BoundPod {
    pub name: String,
    pub uid: String,
    /// The controller (kind, name, uid) that owned it when bound.
    pub controller: Option<(String, String, String)>,
    /// Uids of the pods that controller owned when the pod was bound.
    pub siblings: Vec<String>,
}

#[derive(Clone, Debug)]
pub enum Value {
    Pod(BoundPod),
    Object {
        kind: crate::model::Kind,
        name: String,
    },
    Number(u64),
    Text(String),
    /// An object's name read from the cluster (`name of`): often a generated one (a ReplicaSet's
    /// hash), so a result that prints it prints the placeholder instead.
    ReadName(String),
}

/// A step's failure: what was expected and what the cluster showed.
#[derive(Debug)]
pub enum StepError {
    /// The scenario's expectation did not hold, or the step could not do its work (exit code 1).
    Failed(String),
    /// An expectation or wait did not come true within its timeout (exit code 1). `message` says
    /// what was last observed and what the pods still in flux wait for; `detail` names those
    /// pods and how long they have waited, which differs from run to run, so it is shown and
    /// never recorded.
    TimedOut { message: String, detail: Vec<String> },
    /// The change was refused before it took effect (exit code 1, unless `expect-refused`).
    Refused { by: RefusedBy, message: String },
    /// The cluster or the API failed (exit code 3).
    Infrastructure(String),
}

/// Who refused a change: only these refusals satisfy `expect-refused`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefusedBy {
    /// The API server's validation or admission, with the HTTP code and the status reason.
    Api { code: u16, reason: String },
    /// rehearse itself, before touching the cluster (e.g. `remove-from-lb` with no label to drop).
    Rehearse,
}

impl std::fmt::Display for RefusedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RefusedBy::Api { code, reason } if reason.is_empty() => write!(f, "the API ({code})"),
            RefusedBy::Api { code, reason } => write!(f, "the API ({code} {reason})"),
            RefusedBy::Rehearse => write!(f, "rehearse, before touching the cluster"),
        }
    }
}

impl StepError {
    fn message(&self) -> String {
        match self {
            StepError::Failed(m) | StepError::Infrastructure(m) | StepError::TimedOut { message: m, .. } => m.clone(),
            StepError::Refused { by, message } => format!("refused by {by}: {message}"),
        }
    }

    /// A refusal by rehearse itself.
    pub fn refused(message: impl Into<String>) -> Self {
        StepError::Refused { by: RefusedBy::Rehearse, message: message.into() }
    }
}

impl From<kube::Error> for StepError {
    fn from(error: kube::Error) -> Self {
        match error {
            // Not a refusal of the change: the scenario's namespace is going away under it.
            kube::Error::Api(status)
                if status.code == 403
                    && status
                        .details
                        .as_ref()
                        .is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating")) =>
            {
                StepError::Infrastructure(format!(
                    "the scenario's namespace is being deleted by someone else: the scenario cannot go on ({})",
                    status.message
                ))
            }
            // Not a refusal of the change either: the kubeconfig's user may not make it (RBAC).
            // Another user could, so `expect-refused` must not take it.
            kube::Error::Api(status) if status.code == 403 && is_authorization_denial(&status.message) => {
                StepError::Infrastructure(format!(
                    "the kubeconfig's user is not allowed to do this, so the change was never judged: {}. \
                     rehearse needs a user that may create namespaces and change anything in them (kind's \
                     admin user may)",
                    status.message
                ))
            }
            // Validation (422 Invalid), malformed requests (400), admission denials (403), and a
            // write the object does not allow (409: a name in use, a uid or resourceVersion a
            // manifest names that the object here does not have): the API looked at the change
            // and said no.
            kube::Error::Api(status) if matches!(status.code, 400 | 403 | 409 | 422) => StepError::Refused {
                by: RefusedBy::Api { code: status.code, reason: status.reason.clone() },
                message: status.message,
            },
            // Server-side apply refusing the configuration itself (a field no schema declares, a
            // list entry twice, a value of the wrong type, a quantity it cannot read): a 500 in
            // HTTP terms, but an answer about the manifest, not a failure of the server.
            kube::Error::Api(status) if status.code == 500 && refuses_the_configuration(&status.message) => {
                StepError::Refused {
                    by: RefusedBy::Api { code: status.code, reason: status.reason.clone() },
                    message: status.message,
                }
            }
            // The built-in cluster cannot rehearse this scenario truthfully; its message says why
            // and where to run it instead.
            kube::Error::Api(status) if status.reason == crate::cluster::sim::error::NOT_RUN => {
                StepError::Infrastructure(status.message)
            }
            // The run began with credentials the server took: they expired or were revoked.
            kube::Error::Api(status) if status.code == 401 => StepError::Infrastructure(format!(
                "the API server no longer accepts the kubeconfig's credentials (401 Unauthorized: {}): they \
                 expired or were revoked during the run",
                status.message
            )),
            kube::Error::Api(status) if status.code == 429 || status.code >= 500 => StepError::Infrastructure(format!(
                "the API server failed ({} {}): {}",
                status.code, status.reason, status.message
            )),
            kube::Error::Api(status) => {
                StepError::Failed(format!("the API answered {} {}: {}", status.code, status.reason, status.message))
            }
            // No usable answer at all (no connection, no reply in time, a connection cut): an
            // outage, named as one whatever request it caught.
            error @ (kube::Error::Service(_) | kube::Error::HyperError(_) | kube::Error::ReadEvents(_)) => {
                StepError::Infrastructure(crate::cluster::transport::no_answer(&error))
            }
            other => StepError::Infrastructure(format!("the cluster's answer could not be used: {other}")),
        }
    }
}

/// The authorizer's 403 (`User "x" cannot patch resource "pods" in API group "" in the
/// namespace "y"`), as against an admission plugin's (`pods "x" is forbidden: error looking up
/// service account ...`), which judged the change itself.
fn is_authorization_denial(message: &str) -> bool {
    message.split("User \"").skip(1).any(|rest| {
        rest.split_once("\" cannot ").is_some_and(|(_, what)| {
            what.split_once(' ').is_some_and(|(_, on)| on.starts_with("resource \"") || on.starts_with("path \""))
        })
    })
}

/// Whether a 500's message is server-side apply's refusal of the applied configuration: it could
/// not type it against the kind's schema (structured-merge-diff's "failed to create typed patch
/// object") or convert it to the kind ("failed to convert new object"). The API server answers
/// these before validation, in these words, whatever else is wrong.
fn refuses_the_configuration(message: &str) -> bool {
    ["failed to create typed patch object (", "failed to convert new object (", "strconv.ParseUint: parsing "]
        .iter()
        .any(|prefix| message.starts_with(prefix))
}

/// Everything a step can touch while it runs.
pub struct Context<'a> {
    pub client: Client,
    pub clock: ClusterClock,
    pub resources: Arc<apply::Resources>,
    pub namespace: String,
    pub view: View,
    pub variables: HashMap<String, Value>,
    /// Labels removed by `remove-from-lb`, per pod uid, restored by `add-to-lb`.
    pub removed_from_lb: HashMap<String, Vec<(String, String)>>,
    pub base_dir: PathBuf,
    pub timeout: Duration,
    pub snapshots: &'a mut Snapshots,
    pub job_path: &'a Path,
    pub scenario_name: &'a str,
    /// Objects this scenario wrote, with the resourceVersion the API returned: the next step
    /// waits until the view has seen them, so it never judges the cluster by a state older than
    /// its own changes.
    pub written: Vec<(view::Watched, String, String)>,
    /// Every write's resourceVersion with the line of the step that made it, so a guard can
    /// name the step that caused a change it sees later on its own watch.
    pub write_log: WriteLog,
    pub current_line: usize,
    /// Objects of kinds the view does not watch that this scenario applied with finalizers of
    /// its own choosing (apiVersion, kind, name): looked up as it ends, as they may hold its
    /// namespace.
    pub applied_with_finalizers: Vec<(String, String, String)>,
    /// The newest version the view had applied when the current step began, at rest.
    pub seen_at_step_start: u64,
}

/// What a step still waits for before it starts.
enum CatchUp {
    /// A write of its scenario the view has not shown yet.
    Unseen(String),
    /// A reaction of the control plane to what the view shows.
    Reacting(String),
}

/// (resourceVersion, line of the step that wrote it), in write order.
pub type WriteLog = Arc<std::sync::Mutex<Vec<(u64, usize)>>>;

/// The line of the last step whose write the API stored at or before `version`.
pub fn step_before(log: &WriteLog, version: Option<u64>, fallback: usize) -> usize {
    let Some(version) = version else { return fallback };
    let log = log.lock().unwrap_or_else(|e| e.into_inner());
    log.iter().filter(|(rv, _)| *rv <= version).map(|(_, line)| *line).next_back().unwrap_or(fallback)
}

/// The version to log a write at. A write that deleted its object (an update that removed the
/// last finalizer) is answered with the object's previous version, though the deletion was stored
/// after everything logged and everything seen before its step began (`stored_after`): it is
/// logged just after that, so that what the deletion causes is blamed on its step.
fn logged_version(answered: u64, deleted: bool, stored_after: u64) -> u64 {
    if deleted { answered.max(stored_after + 1) } else { answered }
}

impl Context<'_> {
    /// Records a write to wait for (kinds the view does not watch are ignored).
    pub fn wrote(
        &mut self,
        kind: Option<view::Watched>,
        meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    ) {
        if let Some(version) = meta.resource_version.as_ref().and_then(|v| v.parse::<u64>().ok()) {
            let mut log = self.write_log.lock().unwrap_or_else(|e| e.into_inner());
            let deleted = meta.deletion_timestamp.is_some()
                && meta.finalizers.as_ref().is_none_or(Vec::is_empty)
                && meta.deletion_grace_period_seconds.unwrap_or(0) == 0;
            let stored_after = log.last().map_or(0, |(logged, _)| *logged).max(self.seen_at_step_start);
            log.push((logged_version(version, deleted, stored_after), self.current_line));
        }
        if let (Some(kind), Some(name), Some(version)) = (kind, &meta.name, &meta.resource_version) {
            self.written.push((kind, name.clone(), version.clone()));
        }
    }

    /// Waits until the view reflects every recorded write (read-your-writes), and then until the
    /// control plane has finished reacting to what it shows: a step starts from a state of rest,
    /// as on the built-in cluster, whose controllers finish within each write. `when` says which
    /// moment in a failure ("before this step").
    pub async fn catch_up(&mut self, when: &str) -> Result<(), StepError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let written = &mut self.written;
        let caught_up = self
            .view
            .wait_for(deadline, |view| {
                written.retain(|(kind, name, version)| !view.has_seen(*kind, name, version));
                match written.first() {
                    None => view.unfinished().map_or(Ok(()), |why| Err(CatchUp::Reacting(why))),
                    Some((kind, name, _)) => Err(CatchUp::Unseen(format!("{kind}/{name}"))),
                }
            })
            .await;
        caught_up.map_err(|unmet| match unmet {
            view::Unmet::Pending(CatchUp::Unseen(object)) => {
                StepError::Infrastructure(format!("the watch never showed this scenario's own change to {object}"))
            }
            view::Unmet::Pending(CatchUp::Reacting(why)) => StepError::TimedOut {
                message: format!(
                    "the cluster did not come to rest {when} within {}: {why}",
                    crate::model::duration::format(self.timeout)
                ),
                detail: Vec::new(),
            },
            view::Unmet::Cluster(why) => StepError::Infrastructure(why),
        })
    }

    /// Waits until the view reflects every recorded write, and no longer: whether it came to.
    async fn own_writes_seen(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        let written = &mut self.written;
        let seen = self.view.wait_for(deadline, |view| {
            written.retain(|(kind, name, version)| !view.has_seen(*kind, name, version));
            if written.is_empty() { Ok(()) } else { Err(()) }
        });
        seen.await.is_ok()
    }

    /// Pod uid → variable name, for naming bound pods in results.
    pub fn pod_variables(&self) -> HashMap<String, String> {
        self.variables
            .iter()
            .filter_map(|(name, value)| match value {
                Value::Pod(pod) => Some((pod.uid.clone(), name.clone())),
                _ => None,
            })
            .collect()
    }
}

/// How long the reads after the last step (what finalizers still hold) may take.
const END_READS: Duration = Duration::from_secs(5);

/// The failure of a scenario that a signal (or a library caller's cancel) stopped.
const INTERRUPTED: &str = "interrupted";

fn scenario_timeout(job: &ScenarioJob) -> Duration {
    job.scenario
        .settings()
        .find_map(|s| match &s.kind {
            SettingKind::Timeout(t) => Some(t.value),
            _ => None,
        })
        .or(job.file_timeout)
        .unwrap_or(DEFAULT_TIMEOUT)
}

/// Runs one scenario in a fresh namespace and always cleans up (unless asked to keep it).
pub async fn run_scenario(
    job: &ScenarioJob<'_>,
    options: &RunOptions,
    cancel: &tokio_util::sync::CancellationToken,
) -> ScenarioResult {
    let started = Instant::now();
    let mut result = ScenarioResult::new(&job.scenario.name.value, job.path);
    (result.line, result.column) = crate::diagnostic::line_column(job.source, job.scenario.span.start);
    let namespace = match namespace::create(&options.client, &job.scenario.name.value, &options.run).await {
        Ok(namespace) => namespace,
        Err(error) => {
            result.status = Status::Error;
            result.failure = Some(format!(
                "cannot create the scenario's namespace: {}",
                crate::cluster::transport::describe(&error)
            ));
            return result;
        }
    };
    options.live.insert(&namespace);
    result.namespace = namespace.name.clone();
    // The cancel is polled first, and the steps check it before each step: after a signal no step
    // starts, since the built-in cluster stops reacting and what a step read then would not be true.
    let outcome = tokio::select! {
        biased;
        () = cancel.cancelled() => Err(INTERRUPTED.to_string()),
        outcome = run_steps(job, options, &namespace, &mut result, cancel) => outcome,
    };
    // The signal may land in the very poll in which the last steps finish: those steps may have
    // read a cluster that had stopped reacting, so the scenario has no verdict either.
    let outcome = if cancel.is_cancelled() { Err(INTERRUPTED.to_string()) } else { outcome };
    if let Err(error) = outcome {
        result.status = Status::Error;
        result.failure = Some(error);
    }
    // The step a signal stopped took until now.
    for step in &mut result.steps {
        if let Some(started) = step.started.take() {
            step.elapsed = started.elapsed();
        }
    }
    options.progress.step(&job.scenario.name.value, "deleting its namespace");
    if options.keep_namespace {
        result.kept = true;
        // Kept for a person to look at: it gives up its lease, so `rehearse clean` leaves it.
        if namespace::keep(&options.client, &namespace).await.is_ok() {
            options.live.remove(&namespace);
        }
    } else {
        match namespace::delete(&options.client, &namespace).await {
            Ok(()) => options.live.remove(&namespace),
            Err(error) => {
                // Said even when a step failed first: a namespace left behind must be named.
                let leak = format!(
                    "cannot delete namespace {}: {}; it holds a lease, so `rehearse clean` deletes it once \
                     the lease expires",
                    namespace.name,
                    crate::cluster::transport::describe(&error)
                );
                result.failure = Some(match result.failure.take() {
                    Some(first) => format!("{first}\n{leak}"),
                    None => leak,
                });
                result.status = Status::Error;
            }
        }
    }
    options.progress.done(&job.scenario.name.value);
    result.duration = started.elapsed();
    result
}

async fn run_steps(
    job: &ScenarioJob<'_>,
    options: &RunOptions,
    namespace: &namespace::OwnNamespace,
    result: &mut ScenarioResult,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<(), String> {
    let view = View::start(&options.client, namespace, &options.nodes, &options.health)
        .await
        .map_err(|e| format!("cannot watch namespace {}: {e}", namespace.name))?;
    let namespace = namespace.name.as_str();
    // A real cluster cannot grow nodes for a scenario: say so up front rather than fail a step later.
    if let Some(wanted) = job.nodes() {
        let found = view.schedulable_nodes().len();
        if found < wanted as usize {
            result.status = Status::Failed;
            let mut failure = format!(
                "the scenario wants {wanted} schedulable nodes (its `nodes` setting) but the cluster has {found}"
            );
            if matches!(options.clock, ClusterClock::Builtin(_)) {
                failure.push_str(&format!(
                    "; a built-in cluster has at most {} workers (Kubernetes' limit for one cluster): \
                     run it on a larger cluster with --context",
                    crate::cluster::sim::MAX_WORKERS
                ));
            }
            result.failure = Some(failure);
            return Ok(());
        }
    }
    let mut snapshots = Snapshots::new(job.path, options.snapshots);
    let mut context = Context {
        client: options.client.clone(),
        resources: options.resources.clone(),
        clock: options.clock,
        namespace: namespace.to_string(),
        view,
        variables: HashMap::new(),
        removed_from_lb: HashMap::new(),
        base_dir: job.base_dir.clone(),
        timeout: scenario_timeout(job),
        snapshots: &mut snapshots,
        job_path: job.path,
        scenario_name: &job.scenario.name.value,
        written: Vec::new(),
        write_log: WriteLog::default(),
        applied_with_finalizers: Vec::new(),
        seen_at_step_start: 0,
        current_line: 0,
    };
    let mut guards = Vec::new();
    let steps: Vec<&Step> = job.scenario.steps().collect();
    let mut failed = false;
    // Whether waiting for the cluster to come to rest before a step failed: waiting again at the
    // end would only double the wait.
    let mut catch_up_failed = false;
    let lines = LineIndex::new(job.source);
    for step in &steps {
        let (line, column) = lines.line_column(step.span.start);
        let text = match &step.within {
            Some(within) => format!("{} within {}", step_text(step), crate::model::duration::format(within.value)),
            None => step_text(step),
        };
        if failed {
            result.steps.push(StepResult::skipped((line, column), text));
            continue;
        }
        if cancel.is_cancelled() {
            return Err(INTERRUPTED.to_string());
        }
        context.current_line = line;
        options.progress.step(&job.scenario.name.value, &format!("line {line}: {text}"));
        // Recorded as interrupted until it ends: a signal drops this future mid-step, and the
        // report then names the step it stopped.
        let in_flight = result.steps.len();
        let step_started = Instant::now();
        result.steps.push(StepResult::interrupted((line, column), text.clone(), step_started));
        let timeout = step.within.as_ref().map(|w| w.value).unwrap_or(context.timeout);
        let caught_up = context.catch_up("before this step").await;
        context.seen_at_step_start = context.view.newest_version();
        let outcome = if let Err(error) = caught_up {
            catch_up_failed = true;
            Err(error)
        } else if let StepKind::Guard { service, invariant, expect_violation } = &step.kind {
            let started = guard::start(&context, service, invariant, *expect_violation, line, timeout).await;
            started.map(|g| {
                let note = g.describe();
                guards.push((g, column));
                note
            })
        } else {
            match substitute::substitute(step, &context.variables) {
                Ok(step) => steps::run(&step, &mut context, timeout).await,
                Err(error) => Err(error),
            }
        };
        let elapsed = step_started.elapsed();
        result.steps[in_flight] = match outcome {
            Ok(observed) => {
                let observed = substitute::in_script_terms(step, &context.variables, observed);
                StepResult::passed((line, column), text, observed, elapsed)
            }
            Err(error) => {
                failed = true;
                let message = substitute::in_script_terms(step, &context.variables, error.message());
                let message = format!("{}:{line}:{column}: `{text}`: {message}", job.path.display());
                result.status = match error {
                    StepError::Failed(_) | StepError::TimedOut { .. } | StepError::Refused { .. } => Status::Failed,
                    StepError::Infrastructure(_) => Status::Error,
                };
                result.failure = Some(message.clone());
                let mut step_result = StepResult::failed((line, column), text, message, elapsed);
                // A step the cluster could not judge is an error, as its scenario is, not a failure.
                step_result.status = result.status;
                if let StepError::TimedOut { detail, .. } = error {
                    step_result.detail = detail;
                }
                step_result
            }
        };
    }
    // The guards judge the history up to the rest that follows the last step, as every step is
    // judged: a scenario that ends on the write that breaks its guard (a scale to 0) would
    // otherwise pass where the endpoints had yet to follow it, and a failed step's write would
    // reach the guard's message or not by timing. Not after an outage or a failed wait for rest,
    // which waiting would only prolong.
    let rest_after_last_step = if guards.is_empty() || catch_up_failed || result.status == Status::Error {
        Ok(())
    } else {
        match context.catch_up("after the last step").await {
            Ok(()) if result.status == Status::Passed => {
                let services: Vec<&str> = guards.iter().map(|(guard, _)| guard.service()).collect();
                guard::outlast_terminating_backends(&context, &services).await
            }
            rest => rest,
        }
    };
    // The guards watched until now; each passes or fails on what it saw.
    for (guard, column) in guards {
        let mut outcome: GuardResult = guard.finish(&context, context.timeout).await;
        outcome.column = column;
        // A history cut short can still hold a violation; it cannot prove there was none. (A
        // failed scenario's guards keep what they saw: its verdict is already given.)
        if let Err(error) = &rest_after_last_step
            && outcome.status == Status::Passed
            && !outcome.expect_violation
            && result.status == Status::Passed
        {
            outcome.status = Status::Error;
            outcome.message = Some(format!("{}: the history it judged is incomplete", error.message()));
        }
        if let Some(message) = outcome.message.as_ref().filter(|_| result.status == Status::Passed) {
            result.status = if outcome.status == Status::Error { Status::Error } else { Status::Failed };
            result.failure = Some(format!("{}:{}: {} {message}", job.path.display(), outcome.line, outcome.title()));
        }
        result.guards.push(outcome);
    }
    result.snapshots = context.snapshots.outcomes().to_vec();
    // Read once the view shows the last step's own write (an apply that removed a finalizer),
    // which takes moments; a warning is not worth a step's timeout when the API is away.
    if context.own_writes_seen(END_READS).await {
        result.held_by_finalizers = namespace::held_by_finalizers(&context.view, &context.pod_variables());
        let elsewhere = namespace::held_elsewhere(
            &context.client,
            &context.resources,
            &context.namespace,
            &context.applied_with_finalizers,
        );
        result.held_by_finalizers.extend(tokio::time::timeout(END_READS, elsewhere).await.unwrap_or_default());
    }
    let mismatch = result.snapshots.iter().any(|s| matches!(s, SnapshotOutcome::Mismatch { .. }));
    let missing = result.snapshots.iter().any(|s| matches!(s, SnapshotOutcome::Missing { .. }));
    if (mismatch || missing) && result.status == Status::Passed {
        result.status = Status::Failed;
        result.failure = Some(
            if mismatch { "a snapshot does not match its recorded file" } else { "a snapshot has no recorded file" }
                .into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deletion_answered_with_an_old_version_is_logged_as_stored_after_all_seen() {
        // Line 29 wrote at 14, and its reaction (an EndpointSlice at 15) was seen by the time
        // line 31 began; line 31 deleted an object by removing its last finalizer, answered with
        // the object's previous version (14).
        assert_eq!(logged_version(14, true, 15), 16);
        let log: WriteLog = Arc::new(std::sync::Mutex::new(vec![(10, 20), (14, 29), (16, 31)]));
        // The gap the slice at 15 opened is line 29's; what the deletion caused (17) is line 31's.
        assert_eq!(step_before(&log, Some(15), 1), 29);
        assert_eq!(step_before(&log, Some(17), 1), 31);
        assert_eq!(step_before(&log, Some(9), 1), 1);
        assert_eq!(step_before(&log, None, 1), 1);
        // Any other write is logged at the version it stored, whatever was seen since.
        assert_eq!(logged_version(20, false, 25), 20);
        assert_eq!(logged_version(30, true, 25), 30);
    }

    fn api_error(code: u16, reason: &str, message: &str) -> kube::Error {
        let status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "code": code, "reason": reason, "message": message,
        }))
        .expect("a Status");
        kube::Error::Api(Box::new(status))
    }

    #[test]
    fn an_rbac_denial_is_the_cluster_s_error_and_an_admission_denial_a_refusal() {
        let rbac = r#"pods "rng-abc" is forbidden: User "system:serviceaccount:t:nopatch" cannot patch resource "pods" in API group "" in the namespace "rehearse-x""#;
        let error = StepError::from(api_error(403, "Forbidden", rbac));
        assert!(
            matches!(&error, StepError::Infrastructure(m) if m.contains("not allowed") && m.contains(rbac)),
            "{error:?}"
        );
        let path = r#"forbidden: User "system:anonymous" cannot get path "/apis""#;
        assert!(matches!(StepError::from(api_error(403, "Forbidden", path)), StepError::Infrastructure(_)));
        let expired = StepError::from(api_error(401, "Unauthorized", "Unauthorized"));
        assert!(matches!(&expired, StepError::Infrastructure(m) if m.contains("no longer accepts")), "{expired:?}");
        let admission =
            r#"pods "web-" is forbidden: error looking up service account t/robot: serviceaccount "robot" not found"#;
        assert!(matches!(StepError::from(api_error(403, "Forbidden", admission)), StepError::Refused { .. }));
        // A user named in a refusal's own words is still a refusal.
        let quoted = r#"admission webhook "policy" denied the request: User "bob" cannot be an owner"#;
        assert!(matches!(StepError::from(api_error(403, "Forbidden", quoted)), StepError::Refused { .. }));
    }

    #[test]
    fn server_side_apply_refusing_the_configuration_is_a_refusal_and_other_500s_are_failures() {
        let typo = "failed to create typed patch object (ns/typo; /v1, Kind=Service): .spec.selectr: field not declared in schema";
        let half = "failed to convert new object (ns/half; apps/v1, Kind=Deployment) to proper version: unable to \
                    convert unstructured object to apps/v1, Kind=Deployment: cannot convert float64 to int32";
        for message in [typo, half] {
            match StepError::from(api_error(500, "", message)) {
                StepError::Refused { by, message: said } => {
                    assert_eq!(by, RefusedBy::Api { code: 500, reason: String::new() });
                    assert_eq!(said, message);
                }
                other => panic!("{other:?}"),
            }
        }
        let outage = StepError::from(api_error(500, "InternalError", "Internal error occurred: etcdserver: timeout"));
        assert!(matches!(outage, StepError::Infrastructure(_)), "{outage:?}");
        let quoted = StepError::from(api_error(500, "", &format!("while handling: {typo}")));
        assert!(matches!(quoted, StepError::Infrastructure(_)), "only the message's own start counts: {quoted:?}");
    }
}
