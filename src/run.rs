//! `rehearse run`: check, connect, run scenarios (in parallel with --jobs), report.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use rehearse::check::{CheckedFile, Checker};
use rehearse::cluster::connect::connect;
use rehearse::cluster::sim::Pace;
use rehearse::cluster::sim::api::SimCluster;
use rehearse::exec::namespace::{LiveNamespaces, RunIdentity};
use rehearse::exec::view::Nodes;
use rehearse::exec::{RunOptions, ScenarioJob, run_scenario};
use rehearse::report::document::{ScenarioResult, Status};
use rehearse::report::progress::Progress;
use rehearse::report::snapshot::SnapshotMode;
use rehearse::report::terminal::Terminal;
use rehearse::syntax::ast::SettingKind;
use tokio_util::sync::CancellationToken;

use super::{PaceChoice, Renderer, Report, RunArgs, exit};

pub async fn run(args: RunArgs, renderer: &Renderer) -> u8 {
    // Taken over before anything else, so that a signal at any moment stops the run cleanly.
    let signals = Signals::new();
    // Nothing runs unless every script checks clean.
    let Some(scripts) = super::scripts_under(&args.paths, renderer) else {
        return exit::INVALID_INPUT;
    };
    let mut checker = Checker::new();
    let mut files: Vec<CheckedFile> = Vec::new();
    let mut errors = 0;
    for path in &scripts {
        match checker.check_file(path) {
            Ok(file) => {
                errors += file.errors();
                super::print_diagnostics(&file, true, renderer);
                files.push(file);
            }
            Err(diagnostic) => {
                errors += 1;
                renderer.print(&diagnostic);
            }
        }
    }
    if errors > 0 {
        eprintln!("{errors} error(s): nothing was run");
        return exit::INVALID_INPUT;
    }

    let snapshots = if args.update_snapshots { SnapshotMode::Update } else { SnapshotMode::Check };
    let progress = Progress::default();
    if args.pace.is_some() && !args.builtin() {
        eprintln!(
            "error: --pace sets the built-in cluster's pace; a real cluster keeps its own (drop --pace, or run with --cluster builtin)"
        );
        return exit::INVALID_INPUT;
    }
    let run = RunIdentity::new(args.lease);
    let live = LiveNamespaces::default();
    let clusters = if args.builtin() {
        builtin_clusters(&files, args.pace.unwrap_or(PaceChoice::Kind), snapshots, &progress, (&run, &live)).await
    } else {
        match real_cluster(&args, snapshots, &progress, (&run, &live)).await {
            Ok(cluster) => cluster,
            Err(code) => return code,
        }
    };
    let jobs: Vec<ScenarioJob> = files
        .iter()
        .flat_map(|file| {
            let file_timeout = file.script.settings().find_map(|s| match &s.kind {
                SettingKind::Timeout(t) => Some(t.value),
                _ => None,
            });
            let file_nodes = file.script.settings().find_map(|s| match &s.kind {
                SettingKind::Nodes(n) => Some(n.value),
                _ => None,
            });
            let base_dir = file.base_dir();
            file.script.scenarios().map(move |scenario| ScenarioJob {
                path: &file.path,
                source: &file.source,
                base_dir: base_dir.clone(),
                file_timeout,
                file_nodes,
                scenario,
            })
        })
        .collect();

    let cancel = CancellationToken::new();
    let stopped_by = Arc::new(std::sync::atomic::AtomicU8::new(0));
    let signal = tokio::spawn(stop_on_signals(signals, cancel.clone(), stopped_by.clone(), live.clone()));
    let terminal = Terminal::detect(renderer.color);
    let annotate = args.annotate();
    let live_progress = terminal.live(progress.clone());
    let started = Instant::now();
    let mut results: Vec<ScenarioResult> = futures::stream::iter(jobs.iter())
        .map(|job| {
            let (run_options, cancel) = (clusters.for_job(job), &cancel);
            async move { run_scenario(job, run_options, cancel).await }
        })
        .buffer_unordered(usize::from(args.jobs))
        .inspect(|result| {
            terminal.scenario(result);
            if annotate {
                rehearse::report::github::scenario(result).iter().for_each(|line| println!("{line}"));
            }
        })
        .collect()
        .await;
    signal.abort();
    if let Some(live_progress) = live_progress {
        live_progress.abort();
        eprint!("{}", terminal.clear_line());
    }
    // Reports list scenarios in script order, whatever order they finished in.
    results.sort_by(|a, b| (a.file.as_str(), &a.scenario).cmp(&(b.file.as_str(), &b.scenario)));
    terminal.summary(&results, started.elapsed());

    if let Some(dir) = &args.results {
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| results.iter().try_for_each(|r| std::fs::write(dir.join(r.document_name()), r.document())));
        if let Err(error) = written {
            eprintln!("error: cannot write result documents into {}: {error}", dir.display());
            return exit::INFRASTRUCTURE;
        }
    }
    for report in &args.reports {
        let (text, path) = match report {
            Report::Junit(path) => (rehearse::report::junit::render(&results, &clusters.name), path),
            Report::Json(path) => (rehearse::report::json::render(&results, &clusters.name), path),
            // Printed as each scenario finished.
            Report::Github => continue,
        };
        if let Err(error) = std::fs::write(path, text) {
            eprintln!("error: cannot write the report {}: {error}", path.display());
            return exit::INFRASTRUCTURE;
        }
    }
    let left = live.all();
    if !left.is_empty() {
        let names: Vec<&str> = left.iter().map(|n| n.name.as_str()).collect();
        eprintln!(
            "left behind: {} namespace(s): {}\n  each holds a lease of {}; `rehearse clean` deletes them once it expires",
            left.len(),
            names.join(", "),
            rehearse::model::duration::format(run.lease)
        );
    }
    let signal = stopped_by.load(std::sync::atomic::Ordering::Acquire);
    if cancel.is_cancelled() {
        if signal == 0 { exit::INTERRUPTED } else { 128 + signal }
    } else if results.iter().any(|r| r.status == Status::Error) {
        exit::INFRASTRUCTURE
    } else if results.iter().any(|r| r.status == Status::Failed) {
        exit::FAILED
    } else {
        exit::OK
    }
}

/// Where the scenarios run: one cluster, or (built-in) one per worker-node count the scripts ask
/// for with `nodes N`.
struct Clusters {
    /// What reports and the terminal call it: `built-in (kind pace)` or `context kind-demo`.
    name: String,
    by_workers: BTreeMap<u32, RunOptions>,
    /// The lease renewal, for as long as the run goes on.
    _renewal: Option<AbortOnDrop>,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Worker nodes of the built-in cluster when a script does not say (`nodes N`): the testbed's.
const DEFAULT_WORKERS: u32 = 2;

impl Clusters {
    fn for_job(&self, job: &ScenarioJob<'_>) -> &RunOptions {
        let workers = job.file_nodes.unwrap_or(DEFAULT_WORKERS);
        self.by_workers.get(&workers).or_else(|| self.by_workers.values().next()).expect("at least one cluster")
    }
}

/// Built-in clusters for the scripts: the testbed's node set (a tainted control-plane node and two
/// workers), or as many workers as a script's `nodes N` asks for.
async fn builtin_clusters(
    files: &[CheckedFile],
    pace: PaceChoice,
    snapshots: SnapshotMode,
    progress: &Progress,
    (run, live): (&RunIdentity, &LiveNamespaces),
) -> Clusters {
    let pace = match pace {
        PaceChoice::Fast => Pace::Fast,
        PaceChoice::Kind => Pace::Kind,
    };
    let mut workers: Vec<u32> = files
        .iter()
        .map(|file| {
            file.script
                .settings()
                .find_map(|s| match &s.kind {
                    SettingKind::Nodes(n) => Some(n.value),
                    _ => None,
                })
                .unwrap_or(DEFAULT_WORKERS)
        })
        .collect();
    workers.sort_unstable();
    workers.dedup();
    let mut by_workers = BTreeMap::new();
    for count in workers {
        let cluster = SimCluster::start(count as usize, pace);
        let client = cluster.client();
        let clock = rehearse::exec::ClusterClock::Builtin(cluster.clock());
        let nodes = Nodes::start(&client).await.expect("the built-in cluster serves its nodes");
        by_workers.insert(
            count,
            RunOptions {
                client,
                nodes,
                resources: Default::default(),
                keep_namespace: false,
                snapshots,
                progress: progress.clone(),
                clock,
                health: Default::default(),
                run: run.clone(),
                live: live.clone(),
            },
        );
    }
    let name = format!("built-in ({} pace)", if pace == Pace::Kind { "kind" } else { "fast" });
    eprintln!("running on the {name} cluster: in-process, virtual time; name a cluster with --context to use one");
    Clusters { name, by_workers, _renewal: None }
}

/// How long `run` waits for a named cluster's first answer before it gives up (exit 3).
const FIRST_ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(12);

/// The cluster the user named, connected like kubectl; Err is the exit code.
async fn real_cluster(
    args: &RunArgs,
    snapshots: SnapshotMode,
    progress: &Progress,
    (run, live): (&RunIdentity, &LiveNamespaces),
) -> Result<Clusters, u8> {
    let options = args.cluster_named.connect_options();
    let connection = match connect(&options).await {
        Ok(connection) => connection,
        Err(error) => {
            eprintln!("error: {error}");
            return Err(if error.is_invalid_input() { exit::INVALID_INPUT } else { exit::INFRASTRUCTURE });
        }
    };
    // A first answer, quickly: whether nothing listens, or something listens and never answers,
    // the user hears within seconds (the transport retries requests for longer during a run).
    let asked = tokio::time::Instant::now();
    let first_answer = tokio::time::timeout(FIRST_ANSWER_TIMEOUT, connection.client.apiserver_version()).await;
    let silent = match first_answer {
        Ok(Ok(_)) => None,
        Ok(Err(error)) => Some(rehearse::cluster::transport::describe(&error)),
        // Still retrying: say how the attempts failed (nothing listening, or no answer).
        Err(_) => Some(match connection.health.outage_since(asked) {
            Some(outage) => format!("{} (tried for {}s)", outage.what, FIRST_ANSWER_TIMEOUT.as_secs()),
            None => format!("no answer within {}s", FIRST_ANSWER_TIMEOUT.as_secs()),
        }),
    };
    if let Some(why) = silent {
        eprintln!(
            "error: the cluster of context `{}` does not answer: {why}\n  is it running? (for the testbed: tests/testbed/testbed.sh up)",
            connection.context
        );
        return Err(exit::INFRASTRUCTURE);
    }
    eprintln!("running on context `{}`", connection.context);

    let nodes = match Nodes::start(&connection.client).await {
        Ok(nodes) => nodes,
        Err(error) => {
            eprintln!(
                "error: cannot watch the nodes of context `{}`: {error}\n  rehearse needs to list and watch nodes (for `nodes` settings and one-per-node expectations)",
                connection.context
            );
            return Err(exit::INFRASTRUCTURE);
        }
    };
    let run_options = RunOptions {
        client: connection.client.clone(),
        nodes,
        resources: Default::default(),
        keep_namespace: args.keep,
        snapshots,
        progress: progress.clone(),
        clock: rehearse::exec::ClusterClock::Wall,
        health: connection.health.clone(),
        run: run.clone(),
        live: live.clone(),
    };
    // The lease of every namespace this run makes, renewed while the run lives. (The built-in
    // cluster ends with the process, so its namespaces need none.)
    let renewal =
        tokio::spawn(rehearse::exec::lease::renew_forever(connection.client.clone(), run.clone(), live.clone()));
    Ok(Clusters {
        name: format!("context {}", connection.context),
        by_workers: BTreeMap::from([(DEFAULT_WORKERS, run_options)]),
        _renewal: Some(AbortOnDrop(renewal)),
    })
}

/// SIGINT, SIGTERM (what CI systems send to cancel a job) and SIGHUP (a closed terminal) all stop
/// the run the same way: the scenarios stop and their namespaces are deleted. A second signal
/// stops at once, naming the namespaces still there (their leases let `rehearse clean` reclaim
/// them). The first signal's number is stored for the exit code (128 + n, as shells report it).
async fn stop_on_signals(
    signals: std::io::Result<Signals>,
    cancel: CancellationToken,
    stopped_by: Arc<std::sync::atomic::AtomicU8>,
    live: LiveNamespaces,
) {
    let Ok(mut signals) = signals else {
        // Without handlers the default actions apply: the run still stops, without cleanup.
        return;
    };
    let first = signals.next().await;
    stopped_by.store(first.number, std::sync::atomic::Ordering::Release);
    eprintln!("{}: stopping; deleting the scenarios' namespaces (send it again to stop at once)", first.name);
    cancel.cancel();
    let second = signals.next().await;
    let left: Vec<String> = live.all().into_iter().map(|n| n.name).collect();
    if left.is_empty() {
        eprintln!("{}: stopping at once", second.name);
    } else {
        eprintln!(
            "{}: stopping at once; left behind: {}\n  `rehearse clean` deletes them once their lease expires",
            second.name,
            left.join(", ")
        );
    }
    std::process::exit(i32::from(128 + first.number));
}

/// A signal that stops a run: its name and number.
#[derive(Clone, Copy)]
struct StopSignal {
    name: &'static str,
    number: u8,
}

struct Signals {
    #[cfg(unix)]
    streams: [(StopSignal, tokio::signal::unix::Signal); 3],
}

impl Signals {
    #[cfg(unix)]
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            streams: [
                (StopSignal { name: "SIGINT", number: 2 }, signal(SignalKind::interrupt())?),
                (StopSignal { name: "SIGTERM", number: 15 }, signal(SignalKind::terminate())?),
                (StopSignal { name: "SIGHUP", number: 1 }, signal(SignalKind::hangup())?),
            ],
        })
    }

    #[cfg(unix)]
    async fn next(&mut self) -> StopSignal {
        let [(int, int_stream), (term, term_stream), (hup, hup_stream)] = &mut self.streams;
        tokio::select! {
            _ = int_stream.recv() => *int,
            _ = term_stream.recv() => *term,
            _ = hup_stream.recv() => *hup,
        }
    }

    #[cfg(not(unix))]
    fn new() -> std::io::Result<Signals> {
        Ok(Signals {})
    }

    #[cfg(not(unix))]
    async fn next(&mut self) -> StopSignal {
        let _ = tokio::signal::ctrl_c().await;
        StopSignal { name: "Ctrl-C", number: 2 }
    }
}
