//! A suite of scripts, loaded, checked, selected and run: what `rehearse run` does, without the
//! terminal, for the binary and for other Rust projects' tests alike.
//!
//! ```no_run
//! use rehearse::suite::{RunConfig, Suite};
//!
//! let suite = Suite::load(&["scenarios"]).expect("the scripts can be read");
//! assert_eq!(suite.errors(), 0, "the scripts check clean");
//! let outcome = suite.run(&RunConfig::default()).expect("the built-in cluster runs");
//! assert!(outcome.passed(), "{:?}", outcome.failures().collect::<Vec<_>>());
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::check::{CheckedFile, Checker, find_every_script};
use crate::cluster::connect::{ConnectError, ConnectOptions, connect};
pub use crate::cluster::sim::Pace;
use crate::cluster::sim::api::SimCluster;
use crate::diagnostic::{Diagnostic, LineIndex};
use crate::exec::namespace::{LiveNamespaces, RunIdentity};
use crate::exec::view::Nodes;
use crate::exec::{ClusterClock, RunOptions, ScenarioJob, run_scenario};
use crate::report::document::{ScenarioResult, Status};
use crate::report::progress::Progress;
use crate::report::snapshot::SnapshotMode;
use crate::select::{ScenarioEntry, Selection, Shard};
use crate::syntax::ast::SettingKind;

/// Scripts read and checked. Loading never runs anything; [`Suite::errors`] says whether the
/// scripts may run.
#[derive(Debug)]
pub struct Suite {
    /// Shared with the built-in cluster's worker threads while a run goes on.
    files: Arc<Vec<CheckedFile>>,
    /// Scripts that could not be read at all (each a diagnostic naming the file).
    unreadable: Vec<Diagnostic>,
    /// What directories held but was not taken (symlink loops, FIFOs): warnings.
    skipped: Vec<Diagnostic>,
}

impl Suite {
    /// Finds the `.rollout` scripts under `paths` (files, or directories searched recursively)
    /// and checks each. A path that does not exist, or a directory that holds no script, is one
    /// of [`Suite::unreadable`], counted in [`Suite::errors`] beside the scripts' own problems.
    pub fn load<P: AsRef<Path>>(paths: &[P]) -> Result<Suite, Diagnostic> {
        let paths: Vec<PathBuf> = paths.iter().map(|p| p.as_ref().to_path_buf()).collect();
        let mut skipped = Vec::new();
        // A path that leads to no script is reported with the scripts' own problems, not alone.
        let mut unreadable = Vec::new();
        let scripts = find_every_script(&paths, &mut skipped, &mut unreadable);
        let mut checker = Checker::new();
        let mut files = Vec::new();
        for path in &scripts {
            match checker.check_file(path) {
                Ok(file) => files.push(file),
                Err(diagnostic) => unreadable.push(diagnostic),
            }
        }
        Ok(Suite { files: Arc::new(files), unreadable, skipped })
    }

    /// The scripts that could be read, in the order they were found.
    pub fn files(&self) -> &[CheckedFile] {
        &self.files
    }

    /// Scripts that could not be read (too large, not a file, not there).
    pub fn unreadable(&self) -> &[Diagnostic] {
        &self.unreadable
    }

    /// Paths found under a directory but not taken, as warnings (symlink loops, FIFOs, a file
    /// reached twice).
    pub fn skipped(&self) -> &[Diagnostic] {
        &self.skipped
    }

    /// Errors in all scripts (counted ones included) and unreadable scripts. Nothing runs unless
    /// this is 0.
    pub fn errors(&self) -> usize {
        self.files.iter().map(CheckedFile::errors).sum::<usize>() + self.unreadable.len()
    }

    /// Every scenario, in script order.
    pub fn scenarios(&self) -> Vec<ScenarioEntry> {
        scenarios(&self.files)
    }

    /// The scenarios `selection` lets run, in script order.
    pub fn select(&self, selection: &Selection) -> Vec<ScenarioEntry> {
        let all = self.scenarios();
        selection.apply(&all).into_iter().map(|i| all[i].clone()).collect()
    }

    /// The scenarios `selection` lets run, each with its job, in script order.
    fn jobs(&self, selection: &Selection) -> Vec<(ScenarioEntry, ScenarioJob<'_>)> {
        jobs(&self.files, selection)
    }
}

/// Every scenario of `files`, in script order.
fn scenarios(files: &[CheckedFile]) -> Vec<ScenarioEntry> {
    files
        .iter()
        .flat_map(|file| {
            // One index per file: a scan from the start per scenario would be quadratic in a
            // large script of many scenarios.
            let lines = LineIndex::new(&file.source);
            file.script.scenarios().map(move |scenario| {
                let (line, column) = lines.line_column(scenario.span.start);
                ScenarioEntry {
                    file: file.path.display().to_string(),
                    scenario: scenario.name.value.clone(),
                    line,
                    column,
                }
            })
        })
        .collect()
}

/// The scenarios of `files` that `selection` lets run, each with its job, in script order.
fn jobs<'a>(files: &'a [CheckedFile], selection: &Selection) -> Vec<(ScenarioEntry, ScenarioJob<'a>)> {
    let entries = scenarios(files);
    let chosen = selection.apply(&entries);
    let jobs = files.iter().flat_map(|file| {
        let file_timeout = file.script.settings().find_map(|s| match &s.kind {
            SettingKind::Timeout(t) => Some(t.value),
            _ => None,
        });
        let file_nodes = file_nodes(file);
        let base_dir = file.base_dir();
        file.script.scenarios().map(move |scenario| ScenarioJob {
            path: &file.path,
            source: &file.source,
            base_dir: base_dir.clone(),
            file_timeout,
            file_nodes,
            scenario,
        })
    });
    // Both lists are every scenario in script order, so they pair up one to one.
    let mut all: Vec<Option<(ScenarioEntry, ScenarioJob<'a>)>> = entries.into_iter().zip(jobs).map(Some).collect();
    chosen.into_iter().filter_map(|i| all[i].take()).collect()
}

fn file_nodes(file: &CheckedFile) -> Option<u32> {
    file.script.settings().find_map(|s| match &s.kind {
        SettingKind::Nodes(n) => Some(n.value),
        _ => None,
    })
}

/// Where scenarios run.
#[derive(Clone, Debug)]
pub enum Cluster {
    /// In-process, in virtual time: no cluster, no containers.
    Builtin { pace: Pace },
    /// A real cluster, named as kubectl names it. Only contexts that look like throwaway clusters
    /// (kind-*, kwok-*, k3d-*, minikube) are used unless `allowed_contexts` names them.
    Kube(ConnectOptions),
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster::Builtin { pace: Pace::Kind }
    }
}

/// How to run a suite.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub cluster: Cluster,
    pub selection: Selection,
    /// Scenarios run at the same time (at least 1).
    pub jobs: usize,
    /// After the first scenario that does not pass, start no more (those running finish).
    pub fail_fast: bool,
    /// Keep each scenario's namespace instead of deleting it (a real cluster only).
    pub keep_namespaces: bool,
    pub snapshots: SnapshotMode,
    /// How long a namespace's lease lasts without renewal (a real cluster only).
    pub lease: Duration,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            cluster: Cluster::default(),
            selection: Selection::default(),
            jobs: 1,
            fail_fast: false,
            keep_namespaces: false,
            snapshots: SnapshotMode::Check,
            lease: Duration::from_secs(60),
        }
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct RunOutcome {
    /// Where it ran: `built-in (kind pace)` or `context kind-demo`.
    pub cluster: String,
    pub shard: Option<Shard>,
    /// Every scenario that ran, in script order.
    pub results: Vec<ScenarioResult>,
    /// Selected scenarios not started: `fail_fast` after a failure, or the run was cancelled.
    pub not_run: Vec<ScenarioEntry>,
    /// Namespaces the run could not delete (each holds a lease for `rehearse clean`).
    pub left_behind: Vec<String>,
    /// The run was cancelled before it finished.
    pub cancelled: bool,
}

impl RunOutcome {
    /// Every scenario passed and none was left out.
    pub fn passed(&self) -> bool {
        !self.cancelled && self.not_run.is_empty() && self.results.iter().all(|r| r.status == Status::Passed)
    }

    /// Scenarios that did not pass, with why.
    pub fn failures(&self) -> impl Iterator<Item = (&str, &str)> {
        self.results
            .iter()
            .filter(|r| r.status != Status::Passed)
            .map(|r| (r.scenario.as_str(), r.failure.as_deref().unwrap_or("did not pass")))
    }
}

/// Why a suite did not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0} error(s) in the scripts: nothing was run")]
    InvalidScripts(usize),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(
        "the cluster of context `{context}` ({server}) does not answer: {why}\n  is it running? (for the testbed: tests/testbed/testbed.sh up)"
    )]
    Silent { context: String, server: String, why: String },
    /// The API server answered the first request, but not with what rehearse needs.
    #[error("the cluster of context `{context}` ({server}) {why}\n  {hint}")]
    Unusable { context: String, server: String, why: String, hint: String },
    #[error(
        "cannot watch the nodes of context `{context}`: {error}\n  rehearse needs to list and watch nodes (for `nodes` settings and one-per-node expectations)"
    )]
    Nodes { context: String, error: String },
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

impl RunError {
    /// The user's input is wrong (scripts, kubeconfig, context), as opposed to the cluster.
    pub fn is_invalid_input(&self) -> bool {
        match self {
            RunError::InvalidScripts(_) => true,
            RunError::Connect(error) => error.is_invalid_input(),
            _ => false,
        }
    }
}

/// Told what happens during a run, as it happens (the terminal reporter is one).
pub trait Observer: Sync {
    /// The cluster is ready and scenarios start.
    fn started(&self, _cluster: &str) {}
    /// A scenario finished.
    fn finished(&self, _result: &ScenarioResult) {}
}

impl Observer for () {}

/// What a run shares with whoever started it: cancel it, watch its steps, see its namespaces.
#[derive(Clone, Default)]
pub struct Controls {
    /// Cancelling stops the scenarios; their namespaces are still deleted.
    pub cancel: CancellationToken,
    /// The steps running now.
    pub progress: Progress,
    /// The run's namespaces that exist now.
    pub live: LiveNamespaces,
}

impl Suite {
    /// Runs the selected scenarios and waits for them, on a runtime of its own (on its own thread,
    /// so it may be called from inside another runtime, e.g. a `#[tokio::test]`).
    pub fn run(&self, config: &RunConfig) -> Result<RunOutcome, RunError> {
        std::thread::scope(|scope| {
            // Made, used and dropped on this thread: a runtime may not be dropped inside another.
            let run = scope.spawn(|| {
                let runtime = match config.cluster {
                    // The built-in cluster runs on worker threads of its own (see `run_with`).
                    Cluster::Builtin { .. } => tokio::runtime::Builder::new_current_thread().enable_all().build(),
                    Cluster::Kube(_) => tokio::runtime::Runtime::new(),
                }
                .map_err(RunError::Runtime)?;
                runtime.block_on(self.run_with(config, &(), &Controls::default()))
            });
            run.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Runs the selected scenarios, on the current runtime for a real cluster. The built-in
    /// cluster runs on threads of its own, each with a runtime whose clock is paused (see
    /// [`builtin_runtime`]), so the current runtime may be any, and should not be paused itself.
    pub async fn run_with(
        &self,
        config: &RunConfig,
        observer: &dyn Observer,
        controls: &Controls,
    ) -> Result<RunOutcome, RunError> {
        let errors = self.errors();
        if errors > 0 {
            return Err(RunError::InvalidScripts(errors));
        }
        let run = RunIdentity::new(config.lease);
        let (cluster, mut outcomes) = match &config.cluster {
            Cluster::Builtin { pace } => self.run_builtin(*pace, config, observer, controls, &run).await?,
            Cluster::Kube(options) => self.run_on_cluster(options, config, observer, controls, &run).await?,
        };
        // Reports list scenarios in script order, whatever order they finished in.
        outcomes.sort_by_key(|(index, _)| *index);
        let entries = self.select(&config.selection);
        let mut results: Vec<ScenarioResult> = Vec::new();
        let mut not_run = Vec::new();
        for (index, result) in outcomes {
            match result {
                Some(result) => results.push(result),
                None => not_run.push(entries[index].clone()),
            }
        }
        Ok(RunOutcome {
            cluster,
            shard: config.selection.shard,
            results,
            not_run,
            left_behind: controls.live.all().into_iter().map(|n| n.name).collect(),
            cancelled: controls.cancel.is_cancelled(),
        })
    }

    /// The scenarios on the named cluster, `config.jobs` at a time.
    async fn run_on_cluster(
        &self,
        options: &ConnectOptions,
        config: &RunConfig,
        observer: &dyn Observer,
        controls: &Controls,
        run: &RunIdentity,
    ) -> Result<(String, Vec<Outcome>), RunError> {
        let jobs = self.jobs(&config.selection);
        // A signal while the cluster is still being reached (it may take seconds to answer, or
        // never) stops the run there: nothing has been made on it yet.
        let cluster = tokio::select! {
            cluster = real_cluster(options, config, controls, run) => cluster?,
            () = controls.cancel.cancelled() => {
                let not_run = (0..jobs.len()).map(|index| (index, None)).collect();
                return Ok(("a named cluster, interrupted before it answered".into(), not_run));
            }
        };
        observer.started(&cluster.name);
        let stop = AtomicBool::new(false);
        let mut finished = futures::stream::iter(jobs.iter().enumerate())
            .map(|(index, (_, job))| {
                let options = std::future::ready(&cluster.options);
                run_unless_stopped(index, job, options, &stop, &controls.cancel)
            })
            .buffer_unordered(config.jobs.max(1));
        let mut in_order = InScriptOrder::default();
        while let Some((index, result)) = finished.next().await {
            // At once, not in script order: a failure stops the scenarios not yet started.
            stop_after_failure(config.fail_fast, result.as_ref(), &stop);
            in_order.add(index, result, observer);
        }
        // Ends the lease renewal: every scenario has finished.
        Ok((cluster.name, in_order.outcomes()))
    }

    /// The scenarios on built-in clusters, `config.jobs` at a time, spread over up to as many
    /// threads as the machine has cores: scenarios share nothing but the run, so each thread
    /// takes the next scenario not yet taken and runs it on clusters of its own, in a runtime of
    /// its own whose clock is paused. The results come back here, to the observer.
    async fn run_builtin(
        &self,
        pace: Pace,
        config: &RunConfig,
        observer: &dyn Observer,
        controls: &Controls,
        run: &RunIdentity,
    ) -> Result<(String, Vec<Outcome>), RunError> {
        let name = builtin_name(pace);
        observer.started(&name);
        let jobs = config.jobs.max(1);
        let threads = jobs.min(cores()).min(self.select(&config.selection).len()).max(1);
        let shared =
            Arc::new(SharedRun { files: self.files.clone(), next: AtomicUsize::new(0), stop: AtomicBool::new(false) });
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
        let mut workers = Vec::new();
        for n in 0..threads {
            let worker = BuiltinWorker {
                shared: shared.clone(),
                selection: config.selection.clone(),
                pace,
                fail_fast: config.fail_fast,
                snapshots: config.snapshots,
                concurrency: jobs.div_ceil(threads),
                controls: controls.clone(),
                run: run.clone(),
                results: sender.clone(),
            };
            // The main thread's stack, not a spawned thread's 2 MiB: manifests are parsed here.
            let thread = std::thread::Builder::new().name(format!("rehearse-builtin-{n}")).stack_size(8 << 20);
            match thread.spawn(move || worker.run()) {
                Ok(handle) => workers.push(handle),
                // The threads already started take every scenario.
                Err(_) if n > 0 => break,
                Err(error) => return Err(RunError::Runtime(error)),
            }
        }
        drop(sender);
        // Threads take scenarios in script order, so a result waits at most for the scenarios
        // taken before it (milliseconds here).
        let mut in_order = InScriptOrder::default();
        while let Some((index, result)) = receiver.recv().await {
            in_order.add(index, result, observer);
        }
        // Only a thread that panicked leaves a gap; its panic is raised below.
        let outcomes = in_order.outcomes();
        for worker in workers {
            match worker.join() {
                Ok(result) => result?,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        Ok((name, outcomes))
    }
}

/// Runs one selected scenario on the cluster `options` gives, unless the run stopped before it
/// could start: after a failure (fail-fast) or a cancel, the scenarios not yet started are left
/// out, not run and failed.
async fn run_unless_stopped<O: std::borrow::Borrow<RunOptions>>(
    index: usize,
    job: &ScenarioJob<'_>,
    options: impl std::future::Future<Output = O>,
    stop: &AtomicBool,
    cancel: &CancellationToken,
) -> Outcome {
    if stop.load(Ordering::Acquire) || cancel.is_cancelled() {
        return (index, None);
    }
    (index, Some(run_scenario(job, options.await.borrow(), cancel).await))
}

/// Under fail-fast, a scenario that did not pass stops the run from starting any more.
fn stop_after_failure(fail_fast: bool, result: Option<&ScenarioResult>, stop: &AtomicBool) {
    if fail_fast && result.is_some_and(|r| r.status != Status::Passed) {
        stop.store(true, Ordering::Release);
    }
}

/// A selected scenario's place in the selection, and its result (none when it was left out).
type Outcome = (usize, Option<ScenarioResult>);

/// Results as scenarios end, told to the observer in script order whichever ends first, so the
/// terminal's output is the same from run to run, at any `--jobs`, on any cluster: a result waits
/// for the scenarios before it (on a real cluster the progress line shows what runs meanwhile).
#[derive(Default)]
struct InScriptOrder {
    told: Vec<Outcome>,
    waiting: BTreeMap<usize, Option<ScenarioResult>>,
}

impl InScriptOrder {
    fn add(&mut self, index: usize, result: Option<ScenarioResult>, observer: &dyn Observer) {
        self.waiting.insert(index, result);
        while let Some(result) = self.waiting.remove(&self.told.len()) {
            if let Some(result) = &result {
                observer.finished(result);
            }
            self.told.push((self.told.len(), result));
        }
    }

    /// Every outcome, told or not (one is left waiting only when a scenario before it never
    /// came back).
    fn outcomes(mut self) -> Vec<Outcome> {
        self.told.extend(self.waiting);
        self.told
    }
}

/// Set by [`leave_clusters_to_exit`].
static LEAVE_CLUSTERS_TO_EXIT: AtomicBool = AtomicBool::new(false);

/// For a process that exits when its run ends (the `rehearse` binary): the built-in clusters'
/// memory goes back with the process instead of being freed object by object when each thread's
/// scenarios are done (3% of the suite's instructions; seconds after a scenario of 10,000 pods).
pub fn leave_clusters_to_exit() {
    LEAVE_CLUSTERS_TO_EXIT.store(true, Ordering::Relaxed);
}

/// What the built-in cluster's worker threads share.
struct SharedRun {
    files: Arc<Vec<CheckedFile>>,
    /// The next selected scenario no thread has taken.
    next: AtomicUsize,
    /// Set after a failure under fail-fast: start no more.
    stop: AtomicBool,
}

/// One thread of a run on the built-in cluster.
struct BuiltinWorker {
    shared: Arc<SharedRun>,
    selection: Selection,
    pace: Pace,
    fail_fast: bool,
    snapshots: SnapshotMode,
    /// Scenarios this thread runs at the same time.
    concurrency: usize,
    controls: Controls,
    run: RunIdentity,
    results: tokio::sync::mpsc::UnboundedSender<Outcome>,
}

impl BuiltinWorker {
    fn run(self) -> Result<(), RunError> {
        // Made, used and dropped on this thread, with every cluster it made.
        let runtime = builtin_runtime().map_err(RunError::Runtime)?;
        runtime.block_on(self.drive());
        if LEAVE_CLUSTERS_TO_EXIT.load(Ordering::Relaxed) {
            std::mem::forget(runtime);
        }
        Ok(())
    }

    async fn drive(self) {
        let jobs = jobs(&self.shared.files, &self.selection);
        let clusters =
            BuiltinClusters { pace: self.pace, snapshots: self.snapshots, controls: &self.controls, run: &self.run };
        let (shared, cancel) = (&self.shared, &self.controls.cancel);
        // Taken one by one as this thread has room, so a thread held by a long scenario leaves
        // the rest to the others.
        let taken = std::iter::from_fn(|| Some(shared.next.fetch_add(1, Ordering::AcqRel)).filter(|i| *i < jobs.len()));
        futures::stream::iter(taken)
            .map(|index| {
                let job = &jobs[index].1;
                run_unless_stopped(index, job, clusters.for_job(job), &shared.stop, cancel)
            })
            .buffer_unordered(self.concurrency.max(1))
            .for_each(|(index, result)| {
                stop_after_failure(self.fail_fast, result.as_ref(), &shared.stop);
                // The receiver lives until every thread is done.
                let _ = self.results.send((index, result));
                std::future::ready(())
            })
            .await;
    }
}

/// The cores this process may use: the most threads a run on the built-in cluster uses.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The runtime each thread of the built-in cluster runs on: one thread, its clock paused, so
/// time moves only when every task waits, straight to the next timer (grace periods and timeouts
/// cost no wall time).
pub fn builtin_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build()
}

/// The named cluster: one for every scenario.
struct RealCluster {
    name: String,
    options: RunOptions,
    /// The lease renewal, for as long as the run goes on.
    _renewal: AbortOnDrop,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Worker nodes of the built-in cluster when a script does not say (`nodes N`): the testbed's.
const DEFAULT_WORKERS: u32 = 2;

/// The workers of the built-in cluster a scenario runs on: its `nodes N` (or its file's), the
/// testbed's two when it says nothing, and two as well when it asks for more than a built-in
/// cluster has (it then fails up front, as on a cluster too small).
fn builtin_workers(job: &ScenarioJob<'_>) -> u32 {
    job.nodes().filter(|n| *n <= crate::cluster::sim::MAX_WORKERS).unwrap_or(DEFAULT_WORKERS)
}

fn builtin_name(pace: Pace) -> String {
    format!("built-in ({} pace)", if pace == Pace::Kind { "kind" } else { "fast" })
}

/// One thread's built-in clusters: one for each scenario, started when it starts and dropped
/// when it ends, with the testbed's node set (a tainted control-plane node and two workers) or as
/// many workers as its `nodes N` (or its file's) asks for. A scenario never meets what another
/// left behind (pods still in their grace period, holding a node's room or a port), so its
/// result is the same at any `--jobs` and in any order.
struct BuiltinClusters<'a> {
    pace: Pace,
    snapshots: SnapshotMode,
    controls: &'a Controls,
    run: &'a RunIdentity,
}

impl BuiltinClusters<'_> {
    async fn for_job(&self, job: &ScenarioJob<'_>) -> RunOptions {
        self.start(builtin_workers(job)).await
    }

    async fn start(&self, workers: u32) -> RunOptions {
        let cluster = SimCluster::start(workers as usize, self.pace);
        // Ctrl-C (a cancel) ends the run: a write that makes thousands of pods need not finish.
        let cancel = self.controls.cancel.clone();
        cluster.stop_reacting_when(move || cancel.is_cancelled());
        let client = cluster.client();
        let clock = ClusterClock::Builtin(cluster.clock());
        let nodes = Nodes::start(&client).await.expect("the built-in cluster serves its nodes");
        RunOptions {
            client,
            nodes,
            resources: Default::default(),
            keep_namespace: false,
            snapshots: self.snapshots,
            progress: self.controls.progress.clone(),
            clock,
            health: Default::default(),
            run: self.run.clone(),
            live: self.controls.live.clone(),
        }
    }
}

/// A first answer that says the cluster is there but will not serve this kubeconfig: what it
/// said, and what to do. `None` for an API server that is away (the caller words that).
fn unusable_answer(error: &kube::Error) -> Option<(String, String)> {
    let fix_credentials = "refresh the kubeconfig's credentials (for kind: kind export kubeconfig --name NAME), \
                           or name another context with --context";
    match error {
        kube::Error::Api(status) if status.code == 401 => Some((
            format!("rejected the kubeconfig's credentials (401 Unauthorized): {}", status.message),
            fix_credentials.to_string(),
        )),
        kube::Error::Api(status) => Some((
            format!("refused rehearse's first request ({} {}): {}", status.code, status.reason, status.message),
            "rehearse needs a user that may read the cluster, create namespaces and change anything in them"
                .to_string(),
        )),
        error if crate::cluster::transport::is_permanent(error) => Some((
            format!("cannot be spoken to securely: {}", crate::cluster::transport::describe(error)),
            "the kubeconfig's certificate authority or server URL does not match the cluster: export the \
             kubeconfig again, or name another context with --context"
                .to_string(),
        )),
        _ => None,
    }
}

/// How long a run waits for a named cluster's first answer before it gives up.
const FIRST_ANSWER_TIMEOUT: Duration = Duration::from_secs(12);

/// The cluster the user named, connected like kubectl.
async fn real_cluster(
    options: &ConnectOptions,
    config: &RunConfig,
    controls: &Controls,
    run: &RunIdentity,
) -> Result<RealCluster, RunError> {
    let connection = connect(options).await?;
    // A first answer, quickly: whether nothing listens, or something listens and never answers,
    // the user hears within seconds (the transport retries requests for longer during a run).
    let asked = tokio::time::Instant::now();
    let first_answer = tokio::time::timeout(FIRST_ANSWER_TIMEOUT, connection.client.apiserver_version()).await;
    let silent = match first_answer {
        Ok(Ok(_)) => None,
        Ok(Err(error)) => {
            if let Some((why, hint)) = unusable_answer(&error) {
                let (context, server) = (connection.context, connection.server);
                return Err(RunError::Unusable { context, server, why, hint });
            }
            Some(crate::cluster::transport::describe(&error))
        }
        // Still retrying: say how the attempts failed (nothing listening, or no answer).
        Err(_) => Some(match connection.health.outage_since(asked) {
            Some(outage) => format!("{} (tried for {}s)", outage.what, FIRST_ANSWER_TIMEOUT.as_secs()),
            None => format!("no answer within {}s", FIRST_ANSWER_TIMEOUT.as_secs()),
        }),
    };
    if let Some(why) = silent {
        return Err(RunError::Silent { context: connection.context, server: connection.server, why });
    }
    let nodes = Nodes::start(&connection.client)
        .await
        .map_err(|error| RunError::Nodes { context: connection.context.clone(), error: error.to_string() })?;
    let run_options = RunOptions {
        client: connection.client.clone(),
        nodes,
        resources: Default::default(),
        keep_namespace: config.keep_namespaces,
        snapshots: config.snapshots,
        progress: controls.progress.clone(),
        clock: ClusterClock::Wall,
        health: connection.health.clone(),
        run: run.clone(),
        live: controls.live.clone(),
    };
    // The lease of every namespace this run makes, renewed while the run lives. (The built-in
    // cluster ends with the process, so its namespaces need none.)
    let renewal =
        tokio::spawn(crate::exec::lease::renew_forever(connection.client.clone(), run.clone(), controls.live.clone()));
    Ok(RealCluster {
        name: format!("context {}", connection.context),
        options: run_options,
        _renewal: AbortOnDrop(renewal),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Results reach the observer in script order whatever order the scenarios end in, the
    /// ones left out included in the outcomes but not told.
    #[test]
    fn results_are_told_in_script_order_whichever_ends_first() {
        struct Told(std::sync::Mutex<Vec<String>>);
        impl Observer for Told {
            fn finished(&self, result: &ScenarioResult) {
                self.0.lock().unwrap().push(result.scenario.clone());
            }
        }
        let told = Told(Default::default());
        let result = |name: &str| Some(ScenarioResult::new(name, Path::new("a.rollout")));
        let mut in_order = InScriptOrder::default();
        in_order.add(2, result("c"), &told);
        in_order.add(1, None, &told);
        assert!(told.0.lock().unwrap().is_empty(), "waits for the first");
        in_order.add(0, result("a"), &told);
        assert_eq!(*told.0.lock().unwrap(), ["a", "c"]);
        in_order.add(4, result("e"), &told);
        let outcomes = in_order.outcomes();
        let indices: Vec<usize> = outcomes.iter().map(|(index, _)| *index).collect();
        assert_eq!(indices, [0, 1, 2, 4], "one that never came back leaves a gap");
        assert_eq!(*told.0.lock().unwrap(), ["a", "c"], "a result after the gap is kept, not told");
    }
}
