//! `apply` steps: the manifests exist, parse, and quote label values that YAML 1.1 would read as
//! booleans or numbers. Returns what the manifests declare, for the traffic checks.

use std::path::{Path, PathBuf};

use super::Context;
use super::manifests::{Manifest, ManifestObject, YamlPosition, YamlProblem, manifest_files, scan};
use crate::diagnostic::Diagnostic;
use crate::span::Span;
use crate::syntax::ast::{ApplySource, InlineYaml, Scenario, StepKind};

/// Where a manifest came from, to point diagnostics at the script.
pub(super) enum Origin<'a> {
    Inline(&'a InlineYaml),
    File { path: PathBuf, apply: Span },
}

impl Origin<'_> {
    /// The script span for a YAML position and a short description of where it is.
    pub fn locate(&self, at: YamlPosition, len: usize) -> (Span, String) {
        match self {
            Origin::Inline(yaml) => {
                let start = yaml.script_offset(at.line, at.column);
                (Span::new(start, start + len), "inline YAML".to_string())
            }
            Origin::File { path, apply } => (*apply, format!("{}:{}:{}", path.display(), at.line + 1, at.column + 1)),
        }
    }
}

/// One object a scenario's manifests declare.
pub(super) struct Declared<'a> {
    pub origin: std::rc::Rc<Origin<'a>>,
    pub object: ManifestObject,
}

pub(super) fn check<'a>(scenario: &'a Scenario, context: &mut Context) -> Vec<Declared<'a>> {
    let mut declared = Vec::new();
    for step in scenario.all_steps() {
        let StepKind::Apply(source) = &step.kind else {
            continue;
        };
        match source {
            ApplySource::Inline(yaml) => {
                let origin = std::rc::Rc::new(Origin::Inline(yaml));
                let manifest = scan(&yaml.text);
                collect(&manifest, origin, &mut declared, context);
            }
            ApplySource::Path(path) => {
                let resolved = context.base_dir.join(&path.value);
                let files = match manifest_files(&resolved) {
                    Ok(files) => files,
                    Err(error) => {
                        context.report(missing(&resolved, &context.base_dir, path.span, &error));
                        continue;
                    }
                };
                if files.is_empty() {
                    context.report(
                        Diagnostic::error(
                            "rehearse::manifest::empty_directory",
                            format!("{} holds no manifests", resolved.display()),
                        )
                        .label(path.span, "no .yaml, .yml or .json files here")
                        .help("point `apply` at a manifest file or a directory of them"),
                    );
                }
                for file in files {
                    let loaded = context.manifests.load(&file);
                    let origin = std::rc::Rc::new(Origin::File { path: file.clone(), apply: path.span });
                    match loaded.as_ref() {
                        Ok(manifest) => collect(manifest, origin, &mut declared, context),
                        Err(error) => context.report(
                            Diagnostic::error(
                                "rehearse::manifest::unreadable",
                                format!("cannot read {}: {error}", file.display()),
                            )
                            .label(path.span, "applied here")
                            .help("check the file's permissions and encoding"),
                        ),
                    }
                }
            }
        }
    }
    declared
}

fn missing(resolved: &Path, base_dir: &Path, span: Span, error: &std::io::Error) -> Diagnostic {
    Diagnostic::error("rehearse::manifest::missing", format!("cannot read {}: {error}", resolved.display()))
        .label(span, "no such manifest")
        .help(format!(
            "apply paths are relative to {} (the script's directory, or its `base-dir` setting)",
            if base_dir.as_os_str().is_empty() { Path::new(".") } else { base_dir }.display()
        ))
}

fn collect<'a>(
    manifest: &Manifest,
    origin: std::rc::Rc<Origin<'a>>,
    declared: &mut Vec<Declared<'a>>,
    context: &mut Context,
) {
    for problem in &manifest.problems {
        let diagnostic = match problem {
            YamlProblem::Syntax { message, at } => {
                let (span, place) = origin.locate(*at, 1);
                Diagnostic::error("rehearse::yaml::syntax", format!("{place}: the YAML does not parse: {message}"))
                    .label(span, message.clone())
                    .help("fix the YAML; Kubernetes manifests are YAML mappings separated by `---`")
            }
            YamlProblem::UnquotedValue { key, value, reads_as, at } => {
                let (span, place) = origin.locate(*at, value.len());
                Diagnostic::error(
                    "rehearse::yaml::unquoted_label_value",
                    format!("{place}: the value of `{key}` is {reads_as} in YAML, not the text `{value}`"),
                )
                .label(span, format!("YAML reads `{value}` as {reads_as}"))
                .help(format!(
                    "quote it: `{key}: \"{value}\"` (Kubernetes rejects {reads_as} where a label value belongs)"
                ))
            }
        };
        context.report(diagnostic);
    }
    for object in &manifest.objects {
        declared.push(Declared { origin: origin.clone(), object: object.clone() });
    }
}
