//! Semantic checks: everything that can be known to be wrong before a scenario runs. Each check
//! lives in its own module and adds diagnostics; none stops the others, so one run reports all.

mod annotations;
mod claims;
mod kinds;
mod labels;
pub mod manifests;
mod scenarios;
mod steps;
mod traffic;
mod variables;
mod yaml;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diagnostic::{Diagnostic, Diagnostics, Omitted, Severity, SourceFile};
use crate::input::{ReadError, SCRIPT_LIMIT, read_text};
use crate::syntax::ast::{Script, SettingKind};
use crate::syntax::parse;
use manifests::ManifestCache;

/// A script after parsing and checking.
#[derive(Debug)]
pub struct CheckedFile {
    pub path: PathBuf,
    pub source: Arc<str>,
    pub script: Script,
    /// Sorted by position; each carries the file's source for rendering. At most
    /// [`KEPT_PER_FILE`](crate::diagnostic::KEPT_PER_FILE): the rest are counted in `omitted`.
    pub diagnostics: Vec<Diagnostic>,
    pub omitted: Omitted,
}

impl CheckedFile {
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Error).count() + self.omitted.errors
    }

    pub fn warnings(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Warning).count() + self.omitted.warnings
    }

    /// The directory `apply` paths are relative to: the script's own, moved by a `base-dir` setting.
    pub fn base_dir(&self) -> PathBuf {
        base_dir(&self.path, &self.script)
    }
}

fn base_dir(path: &Path, script: &Script) -> PathBuf {
    let script_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    script
        .settings()
        .find_map(|s| match &s.kind {
            SettingKind::BaseDir(dir) => Some(script_dir.join(&dir.value)),
            _ => None,
        })
        .unwrap_or(script_dir)
}

/// Checks many scripts, reading each referenced manifest once.
#[derive(Default)]
pub struct Checker {
    manifests: ManifestCache,
    /// What the scenarios checked so far claim of the cluster they share.
    claims: claims::ClusterClaims,
}

impl Checker {
    pub fn new() -> Self {
        Checker::default()
    }

    /// Parses and checks one script's text; `path` names it in diagnostics and anchors `apply` paths.
    pub fn check_source(&mut self, path: &Path, source: &str) -> CheckedFile {
        let parsed = parse(source);
        let script = parsed.script;
        let base_dir = base_dir(path, &script);
        let mut context = Context { base_dir, manifests: &mut self.manifests, diagnostics: Diagnostics::default() };
        scenarios::check(&script, source, &mut context);
        let lines = crate::diagnostic::LineIndex::new(source);
        // Read once per script: the claims check names each scenario by it.
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        for scenario in script.scenarios() {
            let facts = yaml::check(scenario, &mut context);
            claims::check(path, &canonical, &lines, scenario, &facts, &mut self.claims, &mut context);
            variables::check(scenario, &mut context);
            kinds::check(scenario, &mut context);
            labels::check(scenario, &mut context);
            annotations::check(scenario, &mut context);
            steps::check(scenario, &mut context);
            traffic::check(scenario, &facts, &mut context);
        }
        // Syntax errors first among those at the same position.
        let (checked, checked_omitted) = context.diagnostics.finish();
        let mut all = Diagnostics::default();
        all.extend(parsed.diagnostics);
        all.extend(checked);
        all.add_omitted(parsed.omitted);
        all.add_omitted(checked_omitted);
        let (diagnostics, omitted) = all.finish();
        let source: Arc<str> = Arc::from(source);
        let named = Arc::new(SourceFile::new(path.display().to_string(), source.clone()));
        let diagnostics = diagnostics.into_iter().map(|d| d.with_source(named.clone())).collect();
        CheckedFile { path: path.to_path_buf(), source, script, diagnostics, omitted }
    }

    /// Reads and checks one script file.
    pub fn check_file(&mut self, path: &Path) -> Result<CheckedFile, Diagnostic> {
        match read_text(path, SCRIPT_LIMIT) {
            Ok(text) => Ok(self.check_source(path, &text)),
            Err(ReadError::NotUtf8 { valid_up_to: at, bytes }) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let source = Arc::new(SourceFile::new(path.display().to_string(), Arc::<str>::from(text)));
                let diagnostic = Diagnostic::error("rehearse::io::not_utf8", "this script is not UTF-8 text")
                    .label(crate::span::Span::new(at, at + 1), "invalid UTF-8 here")
                    .help("save the script as UTF-8");
                Ok(CheckedFile {
                    path: path.to_path_buf(),
                    source: Arc::from(""),
                    script: Script { items: Vec::new(), span: Default::default() },
                    diagnostics: vec![diagnostic.with_source(source)],
                    omitted: Omitted::default(),
                })
            }
            Err(error) => Err(read_error(path, &error)),
        }
    }
}

fn read_error(path: &Path, error: &ReadError) -> Diagnostic {
    let help = match error {
        ReadError::TooLarge { limit } => {
            format!("scripts are read up to {} MiB: split the scenarios over several files", limit >> 20)
        }
        _ => "check the path; `rehearse check` takes .rollout files and directories that hold them".to_string(),
    };
    Diagnostic::error(error.code(), format!("cannot read {}: {error}", path.display())).help(help)
}

/// Checks one script's text (see [`Checker::check_source`]).
pub fn check_source(path: &Path, source: &str) -> CheckedFile {
    Checker::new().check_source(path, source)
}

/// Every `.rollout` file under the given paths (files as given, directories recursively), sorted.
pub fn find_scripts(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Diagnostic> {
    find_scripts_noting(paths, &mut Vec::new())
}

/// [`find_scripts`], noting in `skipped` (as warnings) what a directory held but was not taken:
/// symlink loops, a file reached twice, FIFOs and devices. Each real file is found once.
pub fn find_scripts_noting(paths: &[PathBuf], skipped: &mut Vec<Diagnostic>) -> Result<Vec<PathBuf>, Diagnostic> {
    let mut problems = Vec::new();
    let found = find_every_script(paths, skipped, &mut problems);
    problems.into_iter().next().map_or(Ok(found), Err)
}

/// [`find_scripts_noting`], going on past a path that leads to no script (missing, an empty or
/// unreadable directory): each such path is noted in `problems`, and the others are searched,
/// so that `check` reports every problem of a run at once.
pub fn find_every_script(
    paths: &[PathBuf],
    skipped: &mut Vec<Diagnostic>,
    problems: &mut Vec<Diagnostic>,
) -> Vec<PathBuf> {
    let mut walk = Walk { found: Vec::new(), seen: HashSet::new(), skipped };
    for path in paths {
        if path.is_dir() {
            let before = walk.found.len();
            if let Err(error) = walk.directory(path) {
                problems.push(read_error(path, &ReadError::Io(error)));
            } else if walk.found.len() == before {
                problems.push(
                    Diagnostic::error(
                        "rehearse::io::no_scripts",
                        format!("{} holds no .rollout files", path.display()),
                    )
                    .help("give .rollout files, or directories that hold them (searched recursively)"),
                );
            }
        } else {
            match std::fs::metadata(path) {
                // Named directly: taken as given; reading it says what is wrong with it (a FIFO, a device).
                Ok(_) => walk.found.push(path.clone()),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => problems.push(
                    Diagnostic::error("rehearse::io::missing", format!("{} does not exist", path.display()))
                        .help("give .rollout files or directories that contain them"),
                ),
                // A symlink loop, a directory on the way that may not be searched: said as it is.
                Err(error) => problems.push(read_error(path, &ReadError::Io(error))),
            }
        }
    }
    walk.found
}

struct Walk<'a> {
    found: Vec<PathBuf>,
    /// Canonical paths of the directories and files taken, so a symlink loop ends and a file
    /// reached through two links is checked once.
    seen: HashSet<PathBuf>,
    skipped: &'a mut Vec<Diagnostic>,
}

impl Walk<'_> {
    fn skip(&mut self, path: &Path, why: String) {
        self.skipped.push(
            Diagnostic::warning("rehearse::io::skipped", format!("skipped {}: {why}", path.display()))
                .help("only regular .rollout files are checked, each once"),
        );
    }

    /// Whether `path` (a directory or file) is met for the first time, by its canonical path.
    fn first_visit(&mut self, path: &Path) -> Result<bool, (PathBuf, std::io::Error)> {
        let real = std::fs::canonicalize(path).map_err(|e| (path.to_path_buf(), e))?;
        Ok(self.seen.insert(real))
    }

    fn directory(&mut self, dir: &Path) -> std::io::Result<()> {
        match self.first_visit(dir) {
            Ok(true) => {}
            Ok(false) => {
                self.skip(dir, "a directory already searched (a symlink loop or a second link to it)".into());
                return Ok(());
            }
            Err((path, error)) => {
                self.skip(&path, error.to_string());
                return Ok(());
            }
        }
        let mut entries: Vec<PathBuf> =
            std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
        entries.sort();
        for entry in entries {
            let metadata = match std::fs::metadata(&entry) {
                Ok(metadata) => metadata,
                // A dangling symlink is nothing to check.
                Err(_) => continue,
            };
            if metadata.is_dir() {
                self.directory(&entry)?;
            } else if entry.extension().is_some_and(|e| e == "rollout") {
                if let Some(what) = crate::input::not_a_file(&metadata) {
                    self.skip(&entry, format!("it is {what}, not a regular file"));
                    continue;
                }
                match self.first_visit(&entry) {
                    Ok(true) => self.found.push(entry),
                    Ok(false) => self.skip(&entry, "the same file as one already found".into()),
                    Err((path, error)) => self.skip(&path, error.to_string()),
                }
            }
        }
        Ok(())
    }
}

/// Checks every script under the paths. Errors reading a path come back as diagnostics too.
pub fn check_path(paths: &[PathBuf]) -> Result<Vec<CheckedFile>, Diagnostic> {
    let mut checker = Checker::new();
    find_scripts(paths)?.iter().map(|p| checker.check_file(p)).collect()
}

/// What the checks of one file share.
pub(crate) struct Context<'a> {
    pub base_dir: PathBuf,
    pub manifests: &'a mut ManifestCache,
    pub diagnostics: Diagnostics,
}

impl Context<'_> {
    pub fn report(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }
}
