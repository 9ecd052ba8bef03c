//! `apply` steps: the manifests exist, parse, quote label values that YAML 1.1 would read as
//! booleans or numbers, and give each apps/v1 controller a selector that matches its own pod
//! template. Returns what the manifests declare, for the traffic checks.

use std::path::{Path, PathBuf};

use super::Context;
use super::manifests::{
    ItemsField, Manifest, ManifestObject, Root, SelectorField, SelectorProblem, ServerSet, YamlPosition, YamlProblem,
    manifest_files, scan,
};
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
    // An apply under `expect-refused` is meant to be refused: a selector the API server refuses
    // is what it asserts, not a mistake to report.
    let applies = scenario.steps().filter_map(|step| match &step.kind {
        StepKind::Apply(source) => Some((source, false)),
        StepKind::ExpectRefused { step: inner, .. } => match &inner.kind {
            StepKind::Apply(source) => Some((source, true)),
            _ => None,
        },
        _ => None,
    });
    for (source, meant_to_be_refused) in applies {
        let context = &mut *context;
        let collect = |manifest: &Manifest, origin, declared: &mut Vec<Declared<'a>>, context: &mut Context| {
            collect(manifest, origin, declared, context, meant_to_be_refused)
        };
        match source {
            ApplySource::Inline(yaml) => {
                let origin = std::rc::Rc::new(Origin::Inline(yaml));
                let manifest = scan(&yaml.text);
                if manifest.objects.is_empty() && manifest.problems.is_empty() {
                    context.report(nothing_to_apply(yaml.span, "inline YAML"));
                }
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
                // Empty files among others are skipped, as kubectl skips them; all empty is an error.
                let mut nothing = !files.is_empty();
                for file in files {
                    let loaded = context.manifests.load(&file);
                    let origin = std::rc::Rc::new(Origin::File { path: file.clone(), apply: path.span });
                    match loaded.as_ref() {
                        Ok(manifest) => {
                            nothing &= manifest.objects.is_empty() && manifest.problems.is_empty();
                            collect(manifest, origin, &mut declared, context)
                        }
                        Err(error) => {
                            nothing = false;
                            context.report(
                                Diagnostic::error(
                                    "rehearse::manifest::unreadable",
                                    format!("cannot read {}: {error}", file.display()),
                                )
                                .label(path.span, "applied here")
                                .help("check the file's permissions and encoding"),
                            )
                        }
                    }
                }
                if nothing {
                    context.report(nothing_to_apply(path.span, &resolved.display().to_string()));
                }
            }
        }
    }
    declared
}

fn missing(resolved: &Path, base_dir: &Path, span: Span, error: &std::io::Error) -> Diagnostic {
    // A symlink loop or a directory that may not be searched is there, but cannot be read.
    let (code, label) = match error.kind() {
        std::io::ErrorKind::NotFound => ("rehearse::manifest::missing", "no such manifest"),
        _ => ("rehearse::manifest::unreadable", "cannot be read"),
    };
    Diagnostic::error(code, format!("cannot read {}: {error}", resolved.display())).label(span, label).help(format!(
        "apply paths are relative to {} (the script's directory, or its `base-dir` setting)",
        if base_dir.as_os_str().is_empty() { Path::new(".") } else { base_dir }.display()
    ))
}

fn collect<'a>(
    manifest: &Manifest,
    origin: std::rc::Rc<Origin<'a>>,
    declared: &mut Vec<Declared<'a>>,
    context: &mut Context,
    meant_to_be_refused: bool,
) {
    for problem in &manifest.problems {
        let diagnostic = match problem {
            YamlProblem::Syntax { message, at } => {
                let (span, place) = origin.locate(*at, 1);
                Diagnostic::error("rehearse::yaml::syntax", format!("{place}: the YAML does not parse: {message}"))
                    .label(span, message.clone())
                    .help("fix the YAML; Kubernetes manifests are YAML mappings separated by `---`")
            }
            YamlProblem::Refused { message } => {
                let (span, place) = origin.locate(YamlPosition::default(), 1);
                let span = match origin.as_ref() {
                    Origin::Inline(yaml) => yaml.span,
                    Origin::File { .. } => span,
                };
                Diagnostic::error("rehearse::yaml::refused", format!("{place}: `rehearse run` would refuse this YAML: {message}"))
                    .label(span, "this manifest")
                    .help("manifests are read with limits (64 levels of nesting, 250,000 nodes, 50,000 aliases, 1,024 documents): keep them to what the API server takes")
            }
            YamlProblem::UnquotedItem { value, reads_as, at } => {
                let (span, place) = origin.locate(*at, value.len());
                Diagnostic::error(
                    "rehearse::yaml::unquoted_selector_value",
                    format!("{place}: `{value}` is {reads_as} in YAML, not the text a selector's `values` hold"),
                )
                .label(span, format!("YAML reads `{value}` as {reads_as}"))
                .help(format!("quote it: `\"{value}\"` (the API server refuses {reads_as} in `values`)"))
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
        if let Some(root) = object.root
            && let Some(diagnostic) = unsendable(&origin, object, root)
        {
            context.report(diagnostic);
        }
    }
    // What a refused apply declares never reaches the cluster: its labels put nothing on a pod,
    // its selectors route nothing, so the other checks do not see it.
    if meant_to_be_refused {
        return;
    }
    for object in &manifest.objects {
        for field in &object.server_set {
            if let Some(diagnostic) = server_set(&origin, field) {
                context.report(diagnostic);
            }
        }
        if let Some(problem) = object.selector_problem() {
            context.report(selector_diagnostic(&origin, object, &problem));
        }
        declared.push(Declared { origin: origin.clone(), object: object.clone() });
    }
}

/// An `apply` of manifests that hold no object: kubectl refuses it ("no objects passed to apply").
fn nothing_to_apply(span: Span, place: &str) -> Diagnostic {
    Diagnostic::error("rehearse::manifest::no_objects", format!("{place}: no objects to apply"))
        .label(span, "holds no object, only comments, empty documents or empty lists")
        .help("give `apply` at least one object, or remove the step")
}

/// A document `apply` cannot send: not a mapping, a list it cannot unpack, or without what
/// names the object.
fn unsendable(origin: &Origin, object: &ManifestObject, root: Root) -> Option<Diagnostic> {
    let (span, place) = origin.locate(root.at, 1);
    let diagnostic = |message: String, label: &str| {
        Diagnostic::error("rehearse::manifest::incomplete", format!("{place}: {message}")).label(span, label)
    };
    let what = if object.in_list { "item" } else { "document" };
    if !root.is_mapping {
        return Some(diagnostic(format!("this {what} is not an object"), "not a mapping").help(IDENTITY));
    }
    if let ItemsField::Other { at } = object.items {
        let (span, place) = origin.locate(at, "items".len());
        return Some(
            Diagnostic::error("rehearse::manifest::incomplete", format!("{place}: `items` is not a list of objects"))
                .label(span, "not a list")
                .help("write each object as an item of `items` (`- apiVersion: ...`), or as a document of its own"),
        );
    }
    if object.items != ItemsField::Absent
        && object.kind.as_deref().is_none_or(str::is_empty)
        && !object.aliased
        && !object.in_list
    {
        // kubectl reads a list's kind before its items ("Object 'Kind' is missing").
        return Some(diagnostic("this list has no `kind`".into(), "no `kind`").help(
            "give the list its kind (`kind: List`, or a typed list such as `ConfigMapList`), or write each item \
             as a document of its own",
        ));
    }
    if object.in_list && object.items != ItemsField::Absent {
        // kubectl unpacks one list, not a list in it.
        return Some(
            diagnostic("a list inside a list is not applied".into(), "a list in `items`")
                .help("write its items in the outer list's `items`"),
        );
    }
    if !object.aliased
        && object.items == ItemsField::Absent
        && object.kind.as_deref().is_some_and(|kind| kind.ends_with("List"))
    {
        let kind = object.kind.as_deref().unwrap_or_default();
        let (span, place) = object.kind_at.map_or((span, place.clone()), |at| origin.locate(at, kind.chars().count()));
        return Some(
            Diagnostic::error("rehearse::manifest::incomplete", format!("{place}: this {kind} has no `items`"))
                .label(span, "a list kind, without `items`")
                .help("write the objects as the list's `items`, or each as a document of its own after `---`"),
        );
    }
    let missing = object.missing_identity()?;
    let missing = match missing.iter().map(|field| format!("`{field}`")).collect::<Vec<_>>().as_slice() {
        [rest @ .., last] if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        all => all.join(""),
    };
    let help = if object.identity_not_text {
        format!("{IDENTITY}; quote one that YAML reads as a number or a boolean (`name: \"123\"`)")
    } else {
        IDENTITY.to_string()
    };
    Some(diagnostic(format!("this object has no {missing}"), &format!("no {missing}")).help(help))
}

/// Metadata the API server sets that it refuses in an apply into the scenario's namespace: a uid
/// (no object there has it), managedFields, a resourceVersion that is no number. A manifest
/// copied with `kubectl get -o yaml` carries them; a version that is a number is ignored by the
/// apply that creates the object and refused by any later one, which the run reports.
fn server_set(origin: &Origin, field: &ServerSet) -> Option<Diagnostic> {
    let (span, place) = origin.locate(field.at, field.width);
    let (message, refusal) = match field.field {
        "managedFields" => ("is set", "400 \"metadata.managedFields must be nil\""),
        // A number or a boolean where text belongs fails server-side apply's typing first.
        _ if !field.is_text => ("is not text", "500 \"failed to create typed patch object\""),
        "uid" => ("is the uid of an object elsewhere", "409 \"uid mismatch\""),
        _ if crate::model::resource_version::parse(&field.value).is_ok() => return None,
        _ => ("is no version the API server reads", "500 \"strconv.ParseUint\""),
    };
    let name = field.field;
    Some(
        Diagnostic::error("rehearse::manifest::server_set", format!("{place}: `metadata.{name}` {message}"))
            .label(span, "set by the API server, not by a manifest")
            .help(format!(
                "remove `{name}` (the API server refuses it: {refusal}), and with it what else the API server \
                 set in a manifest copied from a live cluster (`uid`, `resourceVersion`, `creationTimestamp`, \
                 `status`)"
            )),
    )
}

/// What every object `apply` sends has, as kubectl needs it.
const IDENTITY: &str = "every object `apply` sends is a mapping with `apiVersion`, `kind` and `metadata.name`";

/// A controller the API server would refuse for its selector, in the API server's own words.
fn selector_diagnostic(origin: &Origin, object: &ManifestObject, problem: &SelectorProblem) -> Diagnostic {
    let kind = object.kind.as_deref().unwrap_or_default();
    let refused = match &object.name {
        Some(name) => format!("{kind}.apps {name:?} is invalid: {}", object.api_message(problem)),
        None => format!("this {kind}.apps is invalid: {}", object.api_message(problem)),
    };
    let selector_at = match &object.spec_selector {
        SelectorField::Absent => None,
        SelectorField::Null { at } | SelectorField::Mapping { at, .. } | SelectorField::Other { at } => Some(*at),
    };
    // Where to point when the field itself is missing: its parent, else the object's kind.
    let (parent_at, parent_len) = match (object.spec_at, object.kind_at) {
        (Some(at), _) => (at, "spec".len()),
        (None, Some(at)) => (at, kind.len()),
        (None, None) => (YamlPosition { line: 0, column: 0 }, 1),
    };
    let template_labels = object.template_label_map();
    let example = if template_labels.is_empty() {
        "`matchLabels: {app: NAME}`, and the same labels in `spec.template.metadata.labels`".to_string()
    } else {
        let pairs: Vec<String> = template_labels.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        format!("`matchLabels: {{{}}}` (the pod template's labels)", pairs.join(", "))
    };
    match problem {
        SelectorProblem::Missing => {
            let (span, place) = match selector_at {
                Some(at) => origin.locate(at, "selector".len()),
                None => origin.locate(parent_at, parent_len),
            };
            Diagnostic::error("rehearse::manifest::empty_selector", format!("{place}: {refused}"))
                .label(span, format!("this {kind} has no `spec.selector`"))
                .help(format!("apps/v1 gives a {kind} no default selector: add `spec.selector` with {example}"))
        }
        SelectorProblem::Empty => {
            let (span, place) = origin.locate(selector_at.unwrap_or(parent_at), "selector".len());
            Diagnostic::error("rehearse::manifest::empty_selector", format!("{place}: {refused}"))
                .label(span, "`spec.selector` has neither `matchLabels` nor `matchExpressions`")
                .help(format!(
                    "an empty selector would select every pod in the namespace, so the API server refuses it: \
                     give it {example}"
                ))
        }
        SelectorProblem::Mismatch { selector, unmet } => {
            let (span, place) = match (object.template_labels_at, object.template_at) {
                (Some(at), _) => origin.locate(at, "labels".len()),
                (None, Some(at)) => origin.locate(at, "template".len()),
                (None, None) => origin.locate(selector_at.unwrap_or(parent_at), "selector".len()),
            };
            let unmet = unmet.iter().map(|r| format!("`{r}`")).collect::<Vec<_>>().join(", ");
            let mut diagnostic =
                Diagnostic::error("rehearse::manifest::selector_mismatch", format!("{place}: {refused}"))
                    .label(span, format!("the pod template's labels do not satisfy {unmet}"))
                    .help(format!(
                        "a {kind} must select the pods it creates: make `spec.template.metadata.labels` \
                         satisfy {unmet}, or change the selector"
                    ));
            if let Some(at) = selector_at {
                let (selector_span, _) = origin.locate(at, "selector".len());
                if selector_span != span {
                    diagnostic = diagnostic.label(selector_span, format!("selects `{selector}`"));
                }
            }
            diagnostic
        }
    }
}
