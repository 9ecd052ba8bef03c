//! The `rehearse` command line.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use miette::{GraphicalReportHandler, GraphicalTheme, ThemeCharacters, ThemeStyles};

use rehearse::check::{CheckedFile, Checker, find_scripts_noting};
use rehearse::diagnostic::Diagnostic;
use rehearse::report::color::ColorChoice;
use rehearse::report::github;
use rehearse::syntax::format::{format, with_line_endings_of};

// Output that never panics. `eprintln!` and `println!` panic when the other end of the pipe is
// gone (`rehearse run 2>&1 | head`); a run must still clean up its namespaces and exit with its
// own code, so what cannot be written is dropped. Defined before the modules that use them.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

macro_rules! say_inline {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// The built-in cluster allocates and frees small JSON values by the million; with glibc's
/// malloc that was a fifth of a run's instructions.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its `mi_option_e`, v2). A long scenario on the built-in
/// cluster frees and allocates the same megabytes over and over (the watch change log turns over);
/// returning them to the OS 10 ms after they are freed made the kernel zero the same pages again
/// and again (about a sixth of a 30,000-step run). The process is short-lived: keep them.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc's `mi_option_arena_eager_commit` (v2). Committed up front, the arena's memory counted
/// in full against the process's resident memory (the suite: 29 MB on one thread of the built-in
/// cluster and 34 MB on two, instead of 22 and 24 MB); committed as pages are used, the same runs
/// take no longer. mimalloc reserves its first arena at the first allocation, which Rust's runtime
/// makes before `main`: hence the option is set by a constructor (ELF's `.init_array`, run before
/// the runtime starts) where there is one.
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

extern "C" fn tune_allocator() {
    // SAFETY: sets two of mimalloc's options, read whenever it would purge or take an arena, while
    // no other thread exists; no pointer.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1);
        libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
    }
}

#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static TUNE_ALLOCATOR_BEFORE_MAIN: extern "C" fn() = tune_allocator;

/// Exit codes, as documented in the README.
mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const INVALID_INPUT: u8 = 2;
    pub const INFRASTRUCTURE: u8 = 3;
    pub const INTERRUPTED: u8 = 130;
}

#[derive(Parser)]
#[command(name = "rehearse", version, about = "Rehearse Kubernetes traffic changes: checked, run, proven and recorded")]
struct Cli {
    /// When to colour output: `auto` colours a terminal unless NO_COLOR is set (CLICOLOR_FORCE=1
    /// colours a pipe too), `always`, or `never` (no escape sequences at all).
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = ColorWhen::Auto)]
    color: ColorWhen,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ColorWhen {
    Auto,
    Always,
    Never,
}

impl ColorWhen {
    fn choice(self) -> ColorChoice {
        match self {
            ColorWhen::Auto => ColorChoice::Auto,
            ColorWhen::Always => ColorChoice::Always,
            ColorWhen::Never => ColorChoice::Never,
        }
    }

    /// The last `--color WHEN` or `--color=WHEN` before `--`, read before clap parses (so that
    /// clap's own help and errors follow it too).
    fn from_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> Option<ColorWhen> {
        let mut found = None;
        let mut args = args.into_iter().skip(1);
        while let Some(arg) = args.next() {
            let Some(arg) = arg.to_str() else { continue };
            let value = match arg {
                "--" => break,
                "--color" => args.next().and_then(|v| v.into_string().ok()),
                _ => arg.strip_prefix("--color=").map(str::to_string),
            };
            if let Some(when) = value.and_then(|v| ColorWhen::from_str(&v, true).ok()) {
                found = Some(when);
            }
        }
        found
    }
}

#[derive(Subcommand)]
enum Command {
    /// Parse and check scripts without running anything.
    ///
    /// Exits 0 when no errors were found (warnings are printed but pass), 2 when any script has errors.
    Check {
        /// .rollout files, or directories searched recursively for them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Fail on warnings too.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Run scenarios: each in a fresh namespace, deleted afterwards.
    ///
    /// With no --context, --kubeconfig or KUBECONFIG, runs on the built-in cluster (in-process,
    /// virtual time). Naming a cluster connects like kubectl. Only contexts that look like
    /// throwaway clusters (kind-*, kwok-*, k3d-*, minikube) are used unless --allow-context names
    /// them. Exit codes: 0 all passed, 1 a scenario failed, 2 invalid input, 3 cluster error,
    /// 130 interrupted.
    Run(RunArgs),
    /// Delete scenario namespaces whose run died without cleaning up (killed, out of memory,
    /// machine lost).
    ///
    /// Only namespaces labelled app.kubernetes.io/managed-by=rehearse whose lease expired, or
    /// whose run's process has ended on this machine, are deleted: never one a live run still
    /// renews, never one without the label. Connects like
    /// `run` does with a named cluster. Exit codes: 0 done, 2 invalid input, 3 cluster error.
    Clean(CleanArgs),
    /// List the scenarios that `run` would run: file, line and name, in script order.
    ///
    /// Takes the same filters and --shard as `run`. Exit codes: 0 listed, 2 invalid input (a
    /// script with errors, or nothing matches).
    List(ListArgs),
    /// Rewrite scripts in the canonical layout (comments are kept).
    ///
    /// Scripts with syntax errors are left alone and reported (exit 2).
    Fmt {
        /// .rollout files, or directories searched recursively for them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Change nothing; exit 1 if a script is not in the canonical layout.
        #[arg(long)]
        check: bool,
    },
    /// Print a shell completion script for bash, zsh, fish, elvish or powershell.
    ///
    /// E.g. `rehearse completions bash > ~/.local/share/bash-completion/completions/rehearse`,
    /// `rehearse completions zsh > ~/.zfunc/_rehearse`, or
    /// `rehearse completions fish > ~/.config/fish/completions/rehearse.fish`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), of rehearse or of one of its commands.
    ///
    /// E.g. `rehearse man | man -l -`, or `rehearse man run > rehearse-run.1`.
    Man {
        /// The command whose page to print (check, run, clean, fmt, ...).
        command: Option<String>,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// .rollout files, or directories searched recursively for them.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Where to run: `builtin` (in-process, the default unless a cluster is named) or `kube`
    /// (the cluster KUBECONFIG, --kubeconfig and --context name).
    #[arg(long, value_enum, value_name = "CLUSTER")]
    cluster: Option<ClusterChoice>,
    /// The built-in cluster's pace: `kind` (containers start in seconds, deleted pods terminate
    /// over their grace period, all in virtual time) or `fast` (the testbed's instant pods).
    /// [default: kind]
    #[arg(long, value_enum, value_name = "PACE")]
    pace: Option<PaceChoice>,
    #[command(flatten)]
    cluster_named: NamedCluster,
    #[command(flatten)]
    selection: SelectArgs,
    /// After the first scenario that does not pass, start no more (those running finish; the
    /// rest are reported as not run).
    #[arg(long)]
    fail_fast: bool,
    /// Keep each scenario's namespace instead of deleting it, and print its name.
    #[arg(long)]
    keep: bool,
    /// Scenarios to run at the same time [default: the machine's cores on the built-in cluster,
    /// 1 on a named cluster].
    #[arg(long, short = 'j', value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: Option<u16>,
    /// Overwrite snapshot files with what is observed (never under CI).
    #[arg(long)]
    update_snapshots: bool,
    /// Write each scenario's deterministic result document (YAML) into this directory.
    #[arg(long, value_name = "DIR")]
    results: Option<PathBuf>,
    /// Write a report: `junit=PATH`, `json=PATH`, or `github` (annotations on stdout, which
    /// GitHub Actions shows on the failing line; on by default when GITHUB_ACTIONS=true).
    /// Repeatable.
    #[arg(long = "report", value_name = "FORMAT[=PATH]", value_parser = parse_report)]
    reports: Vec<Report>,
    /// How long each scenario namespace's lease lasts without renewal (a real cluster only).
    /// The run renews it every third of that; if the run dies without cleaning up, `rehearse
    /// clean` deletes the namespace once the lease has expired.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_lease)]
    lease: std::time::Duration,
}

fn parse_lease(text: &str) -> Result<std::time::Duration, String> {
    match rehearse::model::duration::parse(text) {
        Some(lease) if lease >= std::time::Duration::from_secs(3) => Ok(lease),
        Some(_) => Err("a lease shorter than 3s would expire between renewals".into()),
        None => Err(format!("`{text}` is not a duration: write e.g. 60s or 2m")),
    }
}

/// Which scenarios run (shared by `run` and `list`).
#[derive(clap::Args)]
struct SelectArgs {
    /// Run only scenarios whose name or FILE::NAME contains PATTERN (repeatable: any may match),
    /// like `cargo test NAME`.
    #[arg(long = "filter", value_name = "PATTERN")]
    filters: Vec<String>,
    /// --filter and --skip patterns must equal the whole name or FILE::NAME.
    #[arg(long)]
    exact: bool,
    /// Leave out scenarios whose name or FILE::NAME contains PATTERN (repeatable).
    #[arg(long = "skip", value_name = "PATTERN")]
    skips: Vec<String>,
    /// Run only shard K of N: a deterministic split of the selected scenarios (in script order,
    /// every Nth from the Kth), so N CI runners together run each scenario exactly once.
    #[arg(long, value_name = "K/N")]
    shard: Option<rehearse::Shard>,
}

impl SelectArgs {
    fn selection(&self) -> rehearse::Selection {
        rehearse::Selection {
            patterns: self.filters.clone(),
            exact: self.exact,
            skip: self.skips.clone(),
            shard: self.shard,
        }
    }

    /// Why the selection from `suite` is empty, if it is. An empty shard is not an error: a CI
    /// matrix may have more runners than a suite has scenarios.
    fn nothing_selected(&self, suite: &rehearse::Suite) -> Option<NothingSelected> {
        let selection = self.selection();
        if !suite.select(&selection).is_empty() {
            return None;
        }
        if suite.scenarios().is_empty() {
            return Some(NothingSelected::Error(
                "no scenario in the given scripts: a scenario starts with `scenario \"what it rehearses\" {`".into(),
            ));
        }
        let filtered = suite.select(&rehearse::Selection { shard: None, ..selection });
        match self.shard {
            Some(shard) if !filtered.is_empty() => Some(NothingSelected::EmptyShard(format!(
                "shard {shard} holds none of the {} selected scenario(s): a suite split over more shards than it has \
                 scenarios leaves some empty; nothing to run",
                filtered.len()
            ))),
            _ => Some(NothingSelected::Error(format!("no scenario matches the filters{}", self.describe()))),
        }
    }

    /// The filters, for a message: ` (--filter x, --shard 2/3)`.
    fn describe(&self) -> String {
        let mut parts: Vec<String> = self.filters.iter().map(|f| format!("--filter {f}")).collect();
        parts.extend(self.skips.iter().map(|s| format!("--skip {s}")));
        if self.exact {
            parts.push("--exact".into());
        }
        if let Some(shard) = self.shard {
            parts.push(format!("--shard {shard}"));
        }
        if parts.is_empty() { String::new() } else { format!(" ({})", parts.join(", ")) }
    }
}

/// Why a selection is empty.
enum NothingSelected {
    /// A mistake: no scenario at all, or none the filters take.
    Error(String),
    /// The filters take some scenarios, and this runner's shard none of them.
    EmptyShard(String),
}

#[derive(clap::Args)]
struct ListArgs {
    /// .rollout files, or directories searched recursively for them.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    selection: SelectArgs,
    /// `text` (FILE:LINE: NAME, one per line) or `json` (an array of {file, scenario, line, column}).
    #[arg(long, value_enum, default_value = "text")]
    format: ListFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ListFormat {
    Text,
    Json,
}

/// How a real cluster is named, as kubectl names it.
#[derive(clap::Args)]
struct NamedCluster {
    /// The kubeconfig to read (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// The context to use (default: the kubeconfig's current context).
    #[arg(long)]
    context: Option<String>,
    /// Allow a context that does not look like a throwaway cluster (repeatable).
    #[arg(long = "allow-context", value_name = "NAME")]
    allow_context: Vec<String>,
}

impl NamedCluster {
    fn connect_options(&self) -> rehearse::cluster::connect::ConnectOptions {
        rehearse::cluster::connect::ConnectOptions {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            allowed_contexts: self.allow_context.clone(),
        }
    }
}

#[derive(clap::Args)]
struct CleanArgs {
    #[command(flatten)]
    cluster_named: NamedCluster,
    /// Only say what would be deleted.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ClusterChoice {
    /// The built-in cluster (also `sim`).
    #[value(alias = "sim")]
    Builtin,
    /// A real cluster, named like kubectl does.
    Kube,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum PaceChoice {
    Fast,
    Kind,
}

impl RunArgs {
    /// The built-in cluster unless one is named (`--cluster kube`, --context, --kubeconfig or
    /// KUBECONFIG): rehearse never touches a real cluster nobody named.
    /// The flag that names a cluster beside an explicit `--cluster builtin`, which would ignore
    /// it. (KUBECONFIG in the environment is not one: `--cluster builtin` is how to run beside it.)
    fn builtin_forced_over_a_named_cluster(&self) -> Option<&'static str> {
        let named = &self.cluster_named;
        (self.cluster == Some(ClusterChoice::Builtin)).then_some(())?;
        if named.context.is_some() {
            Some("--context")
        } else if named.kubeconfig.is_some() {
            Some("--kubeconfig")
        } else if !named.allow_context.is_empty() {
            Some("--allow-context")
        } else {
            None
        }
    }

    fn builtin(&self) -> bool {
        match self.cluster {
            Some(choice) => choice == ClusterChoice::Builtin,
            None => {
                self.cluster_named.context.is_none()
                    && self.cluster_named.kubeconfig.is_none()
                    && std::env::var_os("KUBECONFIG").is_none()
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Report {
    Junit(PathBuf),
    Json(PathBuf),
    /// Workflow commands on stdout.
    Github,
}

fn parse_report(text: &str) -> Result<Report, String> {
    if text == "github" {
        return Ok(Report::Github);
    }
    let Some((format, path)) = text.split_once('=') else {
        return Err("expected FORMAT=PATH (e.g. junit=results.xml) or github".into());
    };
    if path.is_empty() && format != "github" {
        return Err("the report path is empty".into());
    }
    match format {
        "junit" => Ok(Report::Junit(PathBuf::from(path))),
        "json" => Ok(Report::Json(PathBuf::from(path))),
        "github" => Err("`github` takes no path: its annotations go to stdout, where GitHub Actions reads them".into()),
        other => Err(format!("unknown report format `{other}`: use junit=PATH, json=PATH or github")),
    }
}

impl RunArgs {
    /// GitHub annotations: under GitHub Actions, or asked for with `--report github`.
    fn annotate(&self) -> bool {
        github::in_github_actions() || self.reports.contains(&Report::Github)
    }
}

fn main() -> ExitCode {
    #[cfg(not(target_os = "linux"))]
    tune_allocator();
    // clap's help and errors follow --color too (its `auto` reads NO_COLOR and CLICOLOR_FORCE).
    let clap_color = match ColorWhen::from_args(std::env::args_os()) {
        Some(ColorWhen::Always) => clap::ColorChoice::Always,
        Some(ColorWhen::Never) => clap::ColorChoice::Never,
        Some(ColorWhen::Auto) | None => clap::ColorChoice::Auto,
    };
    let matches = Cli::command().color(clap_color).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    let annotate = match &cli.command {
        Command::Run(args) => args.annotate(),
        _ => github::in_github_actions(),
    };
    let renderer = Renderer::for_stderr(cli.color.choice(), annotate);
    let code = match cli.command {
        Command::Check { paths, deny_warnings } => check(&paths, deny_warnings, &renderer),
        Command::Fmt { paths, check } => fmt(&paths, check, &renderer),
        Command::List(args) => list(&args, &renderer),
        Command::Completions { shell } => {
            // Into memory first: clap_complete panics on a write error (`| head` closing the pipe).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "rehearse", &mut script);
            write_stdout(&script)
        }
        Command::Man { command } => man(command.as_deref()),
        Command::Clean(args) => match tokio::runtime::Runtime::new() {
            Ok(runtime) => runtime.block_on(clean::clean(args)),
            Err(error) => {
                say!("error: cannot start the async runtime: {error}");
                exit::INFRASTRUCTURE
            }
        },
        // The built-in cluster runs on threads of its own, each with tokio's clock paused (time
        // moves only when every task waits, to the next timer, so grace periods and timeouts
        // cost no wall time); this runtime only waits for them, signals and the live line.
        Command::Run(args) => {
            let runtime = if args.builtin() {
                rehearse::suite::leave_clusters_to_exit();
                tokio::runtime::Builder::new_current_thread().enable_all().build()
            } else {
                tokio::runtime::Runtime::new()
            };
            match runtime {
                Ok(runtime) => runtime.block_on(run::run(args, &renderer)),
                Err(error) => {
                    say!("error: cannot start the async runtime: {error}");
                    exit::INFRASTRUCTURE
                }
            }
        }
    };
    ExitCode::from(code)
}

mod clean;
mod run;

/// Prints the man page of rehearse, or of one of its commands (`rehearse-run(1)`).
fn man(command: Option<&str>) -> u8 {
    let mut cli = Cli::command();
    // Gives each command its display name (`rehearse-run`) and usage (`rehearse run`).
    cli.build();
    let page = match command {
        None => cli,
        Some(name) => match cli.find_subcommand(name) {
            Some(sub) => sub.clone(),
            None => {
                let names: Vec<&str> = cli.get_subcommands().map(|c| c.get_name()).collect();
                say!("error: no command `{name}`: rehearse has {}", names.join(", "));
                return exit::INVALID_INPUT;
            }
        },
    };
    let mut out = Vec::new();
    if let Err(error) = clap_mangen::Man::new(page).render(&mut out) {
        say!("error: cannot render the man page: {error}");
        return exit::INFRASTRUCTURE;
    }
    write_stdout(&out)
}

/// Writes generated text to stdout; a reader that stops early (`| head`) is no error.
fn write_stdout(bytes: &[u8]) -> u8 {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => exit::OK,
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => exit::OK,
        Err(error) => {
            say!("error: cannot write to stdout: {error}");
            exit::INFRASTRUCTURE
        }
    }
}

/// Renders diagnostics to stderr: unicode and colour on a terminal, plain ASCII otherwise, colour
/// as --color says. Under GitHub Actions (or `run --report github`) each also becomes an
/// annotation on stdout.
struct Renderer {
    handler: GraphicalReportHandler,
    /// --color, for the other output on stderr (the terminal reporter).
    color: ColorChoice,
    annotate: bool,
}

impl Renderer {
    fn for_stderr(color: ColorChoice, annotate: bool) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let colored = color.enabled(terminal);
        let theme = GraphicalTheme {
            characters: if terminal && colored { ThemeCharacters::unicode() } else { ThemeCharacters::ascii() },
            styles: if colored { ThemeStyles::ansi() } else { ThemeStyles::none() },
        };
        Renderer { handler: GraphicalReportHandler::new_themed(theme), color, annotate }
    }

    pub fn print(&self, diagnostic: &Diagnostic) {
        let diagnostic = &*diagnostic.for_rendering();
        let mut out = String::new();
        if self.handler.render_report(&mut out, diagnostic).is_err() {
            out = format!("{}: {}\n", diagnostic.code, diagnostic.message);
        }
        say_inline!("{out}");
        if self.annotate {
            out!("{}", github::diagnostic(diagnostic));
        }
    }
}

/// Diagnostics printed per file; the rest are counted in one line, so output stays bounded
/// however broken a file is.
const SHOWN_PER_FILE: usize = 100;

/// Prints a file's diagnostics (errors only with `errors_only`), at most [`SHOWN_PER_FILE`].
fn print_diagnostics(file: &CheckedFile, errors_only: bool, renderer: &Renderer) {
    let mut shown = file.diagnostics.iter().filter(|d| !errors_only || d.is_error());
    shown.by_ref().take(SHOWN_PER_FILE).for_each(|d| renderer.print(d));
    let (mut errors, mut warnings) = (file.omitted.errors, if errors_only { 0 } else { file.omitted.warnings });
    for diagnostic in shown {
        if diagnostic.is_error() { errors += 1 } else { warnings += 1 }
    }
    let path = rehearse::diagnostic::escape_controls_str(&file.path.display().to_string()).into_owned();
    match (errors, warnings) {
        (0, 0) => {}
        (errors, 0) => say!("... and {errors} more error(s) in {path}"),
        (0, warnings) => say!("... and {warnings} more warning(s) in {path}"),
        (errors, warnings) => say!("... and {errors} more error(s) and {warnings} more warning(s) in {path}"),
    }
}

/// The scripts under `paths`, after printing what was skipped; `None` (printed) when none can be.
fn scripts_under(paths: &[PathBuf], renderer: &Renderer) -> Option<Vec<PathBuf>> {
    let mut skipped = Vec::new();
    let found = find_scripts_noting(paths, &mut skipped);
    skipped.iter().for_each(|d| renderer.print(d));
    found.map_err(|diagnostic| renderer.print(&diagnostic)).ok()
}

/// Loads and checks the scripts under `paths`, printing what was skipped, what could not be read
/// and each script's diagnostics (errors only with `errors_only`); `None` (printed) when there is
/// nothing to load.
fn load_suite(paths: &[PathBuf], renderer: &Renderer, errors_only: bool) -> Option<rehearse::Suite> {
    let suite = rehearse::Suite::load(paths).map_err(|diagnostic| renderer.print(&diagnostic)).ok()?;
    suite.skipped().iter().for_each(|d| renderer.print(d));
    suite.files().iter().for_each(|file| print_diagnostics(file, errors_only, renderer));
    suite.unreadable().iter().for_each(|d| renderer.print(d));
    Some(suite)
}

fn check(paths: &[PathBuf], deny_warnings: bool, renderer: &Renderer) -> u8 {
    let Some(suite) = load_suite(paths, renderer, false) else {
        return exit::INVALID_INPUT;
    };
    let errors = suite.errors();
    let warnings: usize = suite.files().iter().map(CheckedFile::warnings).sum();
    let count = suite.files().len() + suite.unreadable().len();
    let files = if count == 1 { "file" } else { "files" };
    say!("checked {count} {files}: {errors} error(s), {warnings} warning(s)");
    if errors > 0 || (deny_warnings && warnings > 0) { exit::INVALID_INPUT } else { exit::OK }
}

fn list(args: &ListArgs, renderer: &Renderer) -> u8 {
    let Some(suite) = load_suite(&args.paths, renderer, true) else {
        return exit::INVALID_INPUT;
    };
    if suite.errors() > 0 {
        say!("{} error(s): fix them to list the scenarios", suite.errors());
        return exit::INVALID_INPUT;
    }
    match args.selection.nothing_selected(&suite) {
        Some(NothingSelected::Error(message)) => {
            say!("error: {message}");
            return exit::INVALID_INPUT;
        }
        Some(NothingSelected::EmptyShard(message)) => say!("{message}"),
        None => {}
    }
    let selected = suite.select(&args.selection.selection());
    match args.format {
        ListFormat::Text => {
            for entry in &selected {
                out!("{}:{}: {}", entry.file, entry.line, entry.scenario);
            }
        }
        ListFormat::Json => match serde_json::to_string_pretty(&selected) {
            Ok(json) => out!("{json}"),
            Err(error) => {
                say!("error: cannot render the list: {error}");
                return exit::INFRASTRUCTURE;
            }
        },
    }
    exit::OK
}

fn fmt(paths: &[PathBuf], check_only: bool, renderer: &Renderer) -> u8 {
    let Some(scripts) = scripts_under(paths, renderer) else {
        return exit::INVALID_INPUT;
    };
    let mut code = exit::OK;
    let mut checker = Checker::new();
    for path in &scripts {
        let source = match rehearse::input::read_text(path, rehearse::input::SCRIPT_LIMIT) {
            Ok(source) => source,
            Err(_) => {
                // Report through the checker: the same words as `check` (too large, not UTF-8, a FIFO).
                match checker.check_file(path) {
                    Ok(file) => print_diagnostics(&file, true, renderer),
                    Err(diagnostic) => renderer.print(&diagnostic),
                }
                code = exit::INVALID_INPUT;
                continue;
            }
        };
        let parsed = rehearse::parse(&source);
        if !parsed.diagnostics.is_empty() {
            // Report through the checker so the diagnostics carry the file.
            let file = checker.check_source(path, &source);
            print_diagnostics(&file, true, renderer);
            say!("{}: not formatted: fix the errors above first", path.display());
            code = exit::INVALID_INPUT;
            continue;
        }
        let formatted = with_line_endings_of(&source, format(&parsed.script));
        if formatted == source {
            continue;
        }
        if check_only {
            out!("{}: not in the canonical layout", path.display());
            if code == exit::OK {
                code = exit::FAILED;
            }
        } else if let Err(error) = std::fs::write(path, formatted) {
            say!("error: cannot write {}: {error}", path.display());
            code = exit::INVALID_INPUT;
        } else {
            out!("formatted {}", path.display());
        }
    }
    code
}
