//! `rehearse run`: check, select, run the scenarios on the library's `Suite`, report.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use rehearse::cluster::sim::Pace;
use rehearse::exec::namespace::LiveNamespaces;
use rehearse::report::document::{ScenarioResult, Status, document_name};
use rehearse::report::snapshot::SnapshotMode;
use rehearse::report::terminal::Terminal;
use rehearse::select::ScenarioEntry;
use rehearse::suite::{Cluster, Controls, Observer, RunConfig, RunOutcome};
use tokio_util::sync::CancellationToken;

use super::{NothingSelected, PaceChoice, Renderer, Report, RunArgs, exit};

/// The terminal, told of each scenario as it finishes.
struct Printer<'a> {
    terminal: &'a Terminal,
    builtin: bool,
    /// GitHub workflow annotations for failures, on stdout (under GitHub Actions, or asked for).
    annotate: bool,
}

impl Observer for Printer<'_> {
    fn started(&self, cluster: &str) {
        if self.builtin {
            say!(
                "running on the {cluster} cluster: in-process, virtual time; name a cluster with --context to use one"
            );
        } else {
            say!("running on {cluster}");
        }
    }

    fn finished(&self, result: &ScenarioResult) {
        self.terminal.scenario(result);
        if self.annotate {
            rehearse::report::github::scenario(result).iter().for_each(|line| out!("{line}"));
        }
    }
}

pub async fn run(args: RunArgs, renderer: &Renderer) -> u8 {
    // Taken over before anything else, so that a signal at any moment stops the run cleanly.
    let signals = Signals::new();
    // Nothing runs unless every script checks clean.
    let Some(suite) = super::load_suite(&args.paths, renderer, true) else {
        return exit::INVALID_INPUT;
    };
    let errors = suite.errors();
    if errors > 0 {
        say!("{errors} error(s): nothing was run");
        return exit::INVALID_INPUT;
    }
    if args.pace.is_some() && !args.builtin() {
        say!(
            "error: --pace sets the built-in cluster's pace; a real cluster keeps its own (drop --pace, or run with --cluster builtin)"
        );
        return exit::INVALID_INPUT;
    }
    if let Some(flag) = args.builtin_forced_over_a_named_cluster() {
        say!(
            "error: {flag} names a cluster, but --cluster builtin runs on the built-in one (drop {flag}, or --cluster)"
        );
        return exit::INVALID_INPUT;
    }
    let selection = args.selection.selection();
    match args.selection.nothing_selected(&suite) {
        Some(NothingSelected::Error(message)) => {
            say!("error: {message}");
            say!("  `rehearse list` shows every scenario with its file and line");
            return exit::INVALID_INPUT;
        }
        Some(NothingSelected::EmptyShard(message)) => {
            say!("{message}");
            // The reports still say so, for a CI job that collects them from every runner.
            if let Some(dir) = &args.results
                && let Err(error) = std::fs::create_dir_all(dir)
            {
                say!("error: cannot create the results directory {}: {error}", dir.display());
                return exit::INFRASTRUCTURE;
            }
            let outcome = RunOutcome {
                cluster: "none (an empty shard contacts no cluster)".into(),
                shard: selection.shard,
                results: Vec::new(),
                not_run: Vec::new(),
                left_behind: Vec::new(),
                cancelled: false,
            };
            return write_reports(&args, &outcome);
        }
        None => {}
    }
    if let Some(dir) = &args.results
        && let Some(clash) = result_document_clash(&suite.select(&selection))
    {
        say!("error: {clash} in {}", dir.display());
        say!("  rename one of the files (or scenarios), or run them with separate --results directories");
        return exit::INVALID_INPUT;
    }
    // After the checks above, which refuse a run before any results directory is made.
    if let Some(problem) = unwritable_outputs(&args) {
        say!("error: {problem}");
        say!("  give a path in a directory that exists (the run writes it when it ends)");
        return exit::INVALID_INPUT;
    }
    let snapshots = match SnapshotMode::from_env(args.update_snapshots) {
        Ok(mode) => mode,
        Err(message) => {
            say!("error: {message}");
            return exit::INVALID_INPUT;
        }
    };
    let config = RunConfig {
        cluster: if args.builtin() {
            Cluster::Builtin {
                pace: match args.pace.unwrap_or(PaceChoice::Kind) {
                    PaceChoice::Fast => Pace::Fast,
                    PaceChoice::Kind => Pace::Kind,
                },
            }
        } else {
            Cluster::Kube(args.cluster_named.connect_options())
        },
        selection,
        jobs: args.jobs.map_or_else(|| if args.builtin() { rehearse::suite::cores() } else { 1 }, usize::from),
        fail_fast: args.fail_fast,
        keep_namespaces: args.keep,
        snapshots,
        lease: args.lease,
    };

    let controls = Controls::default();
    let stopped_by = Arc::new(std::sync::atomic::AtomicU8::new(0));
    let signal =
        tokio::spawn(stop_on_signals(signals, controls.cancel.clone(), stopped_by.clone(), controls.live.clone()));
    let terminal = Terminal::detect(renderer.color);
    let live_progress = terminal.live(controls.progress.clone());
    let started = Instant::now();
    let printer = Printer { terminal: &terminal, builtin: args.builtin(), annotate: args.annotate() };
    let outcome = suite.run_with(&config, &printer, &controls).await;
    signal.abort();
    if let Some(live_progress) = live_progress {
        live_progress.abort();
        say_inline!("{}", terminal.clear_line());
    }
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(error) => {
            say!("error: {error}");
            return if error.is_invalid_input() { exit::INVALID_INPUT } else { exit::INFRASTRUCTURE };
        }
    };
    let results = &outcome.results;
    terminal.summary(results, started.elapsed());
    if !outcome.not_run.is_empty() {
        let why =
            if outcome.cancelled { "the run was interrupted" } else { "--fail-fast stopped the run after a failure" };
        say!("{} scenario(s) not run: {why}", outcome.not_run.len());
    }

    if let Some(dir) = &args.results {
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| results.iter().try_for_each(|r| std::fs::write(dir.join(r.document_name()), r.document())));
        if let Err(error) = written {
            say!("error: cannot write result documents into {}: {error}", dir.display());
            return exit::INFRASTRUCTURE;
        }
    }
    let written = write_reports(&args, &outcome);
    if written != exit::OK {
        return written;
    }
    if !outcome.left_behind.is_empty() {
        say!(
            "left behind: {} namespace(s): {}\n  each holds a lease of {}; `rehearse clean` deletes them once this run has ended (run on this\n  machine) or once the lease expires (anywhere)",
            outcome.left_behind.len(),
            outcome.left_behind.join(", "),
            rehearse::model::duration::format(config.lease)
        );
    }
    let signal = stopped_by.load(std::sync::atomic::Ordering::Acquire);
    if outcome.cancelled {
        if signal == 0 { exit::INTERRUPTED } else { 128 + signal }
    } else if results.iter().any(|r| r.status == Status::Error) {
        exit::INFRASTRUCTURE
    } else if results.iter().any(|r| r.status == Status::Failed) {
        exit::FAILED
    } else {
        exit::OK
    }
}

/// The `--report` files (JUnit, JSON) of a run; exit::OK, or the code of a report not written.
fn write_reports(args: &RunArgs, outcome: &RunOutcome) -> u8 {
    for report in &args.reports {
        let (text, path) = match report {
            Report::Junit(path) => (rehearse::report::junit::render(outcome), path),
            Report::Json(path) => (rehearse::report::json::render(outcome), path),
            // Printed as each scenario finished.
            Report::Github => continue,
        };
        if let Err(error) = std::fs::write(path, text) {
            say!("error: cannot write the report {}: {error}", path.display());
            return exit::INFRASTRUCTURE;
        }
    }
    exit::OK
}

/// A report or results path the run could not write when it ends, found before it starts: a
/// report whose directory does not exist (or is not a directory, or is the report itself), or a
/// results directory that cannot be made.
fn unwritable_outputs(args: &RunArgs) -> Option<String> {
    for report in &args.reports {
        let (Report::Junit(path) | Report::Json(path)) = report else { continue };
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if path.is_dir() {
            return Some(format!("cannot write the report {}: it is a directory", path.display()));
        }
        if !parent.is_dir() {
            return Some(format!(
                "cannot write the report {}: there is no directory {}",
                path.display(),
                parent.display()
            ));
        }
    }
    if let Some(dir) = &args.results
        && let Err(error) = std::fs::create_dir_all(dir)
    {
        return Some(format!("cannot make the results directory {}: {error}", dir.display()));
    }
    None
}

/// Two scenarios whose result documents would have the same name: scripts of one name in two
/// directories holding scenarios of one name (those of one file are refused by the checker).
fn result_document_clash(selected: &[ScenarioEntry]) -> Option<String> {
    let mut seen: std::collections::HashMap<String, &ScenarioEntry> = std::collections::HashMap::new();
    for entry in selected {
        let name = document_name(Path::new(&entry.file), &entry.scenario);
        if let Some(first) = seen.get(&name) {
            return Some(format!(
                "{}:{} and {}:{} would both write the result document {name}",
                first.file, first.line, entry.file, entry.line
            ));
        }
        seen.insert(name, entry);
    }
    None
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
    say!("{}: stopping; deleting the scenarios' namespaces (send it again to stop at once)", first.name);
    cancel.cancel();
    let second = signals.next().await;
    let left: Vec<String> = live.all().into_iter().map(|n| n.name).collect();
    if left.is_empty() {
        say!("{}: stopping at once", second.name);
    } else {
        say!(
            "{}: stopping at once; left behind: {}\n  `rehearse clean` deletes them once this run has ended (run on this machine) or\n  once their lease expires (anywhere)",
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
