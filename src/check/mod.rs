//! Semantic checks: everything that can be known to be wrong before a scenario runs. Each check
//! lives in its own module and adds diagnostics; none stops the others, so one run reports all.

mod kinds;
mod labels;
pub mod manifests;
mod scenarios;
mod traffic;
mod variables;
mod yaml;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diagnostic::{Diagnostic, Severity, SourceFile};
use crate::syntax::ast::{Script, SettingKind};
use crate::syntax::parse;
use manifests::ManifestCache;

/// A script after parsing and checking.
#[derive(Debug)]
pub struct CheckedFile {
    pub path: PathBuf,
    pub source: Arc<str>,
    pub script: Script,
    /// Sorted by position; each carries the file's source for rendering.
    pub diagnostics: Vec<Diagnostic>,
}

impl CheckedFile {
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Error).count()
    }

    pub fn warnings(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Warning).count()
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
}

impl Checker {
    pub fn new() -> Self {
        Checker::default()
    }

    /// Parses and checks one script's text; `path` names it in diagnostics and anchors `apply` paths.
    pub fn check_source(&mut self, path: &Path, source: &str) -> CheckedFile {
        let parsed = parse(source);
        let mut diagnostics = parsed.diagnostics;
        let script = parsed.script;
        let base_dir = base_dir(path, &script);
        let mut context = Context { base_dir, manifests: &mut self.manifests, diagnostics: Vec::new() };
        scenarios::check(&script, &mut context);
        for scenario in script.scenarios() {
            let facts = yaml::check(scenario, &mut context);
            variables::check(scenario, &mut context);
            kinds::check(scenario, &mut context);
            labels::check(scenario, &mut context);
            traffic::check(scenario, &facts, &mut context);
        }
        diagnostics.append(&mut context.diagnostics);
        diagnostics.sort_by_key(|d| (d.primary_span().start, d.primary_span().end));
        let source: Arc<str> = Arc::from(source);
        let named = Arc::new(SourceFile::new(path.display().to_string(), source.clone()));
        let diagnostics = diagnostics.into_iter().map(|d| d.with_source(named.clone())).collect();
        CheckedFile { path: path.to_path_buf(), source, script, diagnostics }
    }

    /// Reads and checks one script file.
    pub fn check_file(&mut self, path: &Path) -> Result<CheckedFile, Diagnostic> {
        let bytes = std::fs::read(path).map_err(|error| read_error(path, &error))?;
        match String::from_utf8(bytes) {
            Ok(text) => Ok(self.check_source(path, &text)),
            Err(error) => {
                let at = error.utf8_error().valid_up_to();
                let text = String::from_utf8_lossy(error.as_bytes()).into_owned();
                let source = Arc::new(SourceFile::new(path.display().to_string(), Arc::<str>::from(text)));
                let diagnostic = Diagnostic::error("rehearse::io::not_utf8", "this script is not UTF-8 text")
                    .label(crate::span::Span::new(at, at + 1), "invalid UTF-8 here")
                    .help("save the script as UTF-8");
                Ok(CheckedFile {
                    path: path.to_path_buf(),
                    source: Arc::from(""),
                    script: Script { items: Vec::new(), span: Default::default() },
                    diagnostics: vec![diagnostic.with_source(source)],
                })
            }
        }
    }
}

fn read_error(path: &Path, error: &std::io::Error) -> Diagnostic {
    Diagnostic::error("rehearse::io::read", format!("cannot read {}: {error}", path.display()))
        .help("check the path; `rehearse check` takes .rollout files and directories that hold them")
}

/// Checks one script's text (see [`Checker::check_source`]).
pub fn check_source(path: &Path, source: &str) -> CheckedFile {
    Checker::new().check_source(path, source)
}

/// Every `.rollout` file under the given paths (files as given, directories recursively), sorted.
pub fn find_scripts(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Diagnostic> {
    let mut found = Vec::new();
    for path in paths {
        if path.is_dir() {
            collect_scripts(path, &mut found).map_err(|e| read_error(path, &e))?;
        } else if path.exists() {
            found.push(path.clone());
        } else {
            return Err(Diagnostic::error("rehearse::io::missing", format!("{} does not exist", path.display()))
                .help("give .rollout files or directories that contain them"));
        }
    }
    Ok(found)
}

fn collect_scripts(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            collect_scripts(&entry, found)?;
        } else if entry.extension().is_some_and(|e| e == "rollout") {
            found.push(entry);
        }
    }
    Ok(())
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
    pub diagnostics: Vec<Diagnostic>,
}

impl Context<'_> {
    pub fn report(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }
}
