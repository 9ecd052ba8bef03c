//! `rehearse run`: check, connect, run scenarios (in parallel with --jobs), report.

use std::collections::BTreeMap;
use std::time::Instant;

use futures::StreamExt;
use rehearse::check::{CheckedFile, Checker};
use rehearse::cluster::connect::{ConnectOptions, connect};
use rehearse::cluster::sim::Pace;
use rehearse::cluster::sim::api::SimCluster;
use rehearse::exec::view::Nodes;
use rehearse::exec::{RunOptions, ScenarioJob, run_scenario};
use rehearse::report::document::{ScenarioResult, Status};
use rehearse::report::progress::Progress;
use rehearse::report::snapshot::SnapshotMode;
use rehearse::report::terminal::Terminal;
use rehearse::syntax::ast::SettingKind;
use tokio_util::sync::CancellationToken;

use super::{PaceChoice, Renderer, ReportFormat, RunArgs, exit};

pub async fn run(args: RunArgs, renderer: &Renderer) -> u8 {
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
    let clusters = if args.builtin() {
        builtin_clusters(&files, args.pace.unwrap_or(PaceChoice::Kind), snapshots, &progress).await
    } else {
        match real_cluster(&args, snapshots, &progress).await {
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
    let interrupt = cancel.clone();
    let signal = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted: cleaning up the scenarios' namespaces");
            interrupt.cancel();
        }
    });
    let terminal = Terminal::detect();
    let live = terminal.live(progress.clone());
    let started = Instant::now();
    let mut results: Vec<ScenarioResult> = futures::stream::iter(jobs.iter())
        .map(|job| {
            let (run_options, cancel) = (clusters.for_job(job), &cancel);
            async move { run_scenario(job, run_options, cancel).await }
        })
        .buffer_unordered(usize::from(args.jobs))
        .inspect(|result| terminal.scenario(result))
        .collect()
        .await;
    signal.abort();
    if let Some(live) = live {
        live.abort();
        eprint!("\r\x1b[2K");
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
    for (format, path) in &args.reports {
        let text = match format {
            ReportFormat::Junit => rehearse::report::junit::render(&results, &clusters.name),
            ReportFormat::Json => rehearse::report::json::render(&results, &clusters.name),
        };
        if let Err(error) = std::fs::write(path, text) {
            eprintln!("error: cannot write the report {}: {error}", path.display());
            return exit::INFRASTRUCTURE;
        }
    }
    if cancel.is_cancelled() {
        exit::INTERRUPTED
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
            },
        );
    }
    let name = format!("built-in ({} pace)", if pace == Pace::Kind { "kind" } else { "fast" });
    eprintln!("running on the {name} cluster: in-process, virtual time; name a cluster with --context to use one");
    Clusters { name, by_workers }
}

/// The cluster the user named, connected like kubectl; Err is the exit code.
async fn real_cluster(args: &RunArgs, snapshots: SnapshotMode, progress: &Progress) -> Result<Clusters, u8> {
    let options = ConnectOptions {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        allowed_contexts: args.allow_context.clone(),
    };
    let connection = match connect(&options).await {
        Ok(connection) => connection,
        Err(error) => {
            eprintln!("error: {error}");
            return Err(if error.is_invalid_input() { exit::INVALID_INPUT } else { exit::INFRASTRUCTURE });
        }
    };
    if let Err(error) = connection.client.apiserver_version().await {
        eprintln!(
            "error: the cluster of context `{}` does not answer: {error}\n  is it running? (for the testbed: tests/testbed/testbed.sh up)",
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
    };
    Ok(Clusters {
        name: format!("context {}", connection.context),
        by_workers: BTreeMap::from([(DEFAULT_WORKERS, run_options)]),
    })
}
