//! What the checker needs to know about YAML manifests: whether they parse, which labels and
//! selectors they declare, and label values that YAML 1.1 (which Kubernetes' YAML reader follows)
//! would turn into booleans, numbers or null.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle};

/// A position in a YAML text: 0-based line, 0-based column in characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct YamlPosition {
    pub line: usize,
    pub column: usize,
}

/// One `key: value` of a label map (or selector) in a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YamlLabel {
    pub key: String,
    pub value: String,
    pub at: YamlPosition,
}

/// What one YAML document declares.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManifestObject {
    pub kind: Option<String>,
    pub name: Option<String>,
    pub labels: Vec<YamlLabel>,
    /// A Service's `spec.selector`, or a controller's `spec.selector.matchLabels`.
    pub selector: Vec<YamlLabel>,
    /// `spec.template.metadata.labels` of a controller.
    pub template_labels: Vec<YamlLabel>,
}

impl ManifestObject {
    /// Labels that pods created from this object carry.
    pub fn pod_labels(&self) -> impl Iterator<Item = &YamlLabel> {
        let own = if self.kind.as_deref() == Some("Pod") { &self.labels[..] } else { &[] };
        own.iter().chain(self.template_labels.iter())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum YamlProblem {
    /// The text is not YAML.
    Syntax { message: String, at: YamlPosition },
    /// A label (or selector, annotation) value that YAML 1.1 reads as something other than a string.
    UnquotedValue { key: String, value: String, reads_as: &'static str, at: YamlPosition },
}

/// A scanned YAML text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub objects: Vec<ManifestObject>,
    pub problems: Vec<YamlProblem>,
}

/// Maps whose values Kubernetes reads as strings: an unquoted `yes` there is a boolean and rejected.
const STRING_MAPS: [&str; 5] = ["labels", "matchLabels", "selector", "nodeSelector", "annotations"];

/// What YAML 1.1 makes of a plain scalar when Kubernetes would reject it as a string value.
/// (null is left out: it decodes to an empty string without complaint.)
fn yaml11_type(value: &str) -> Option<&'static str> {
    const BOOLS: [&str; 22] = [
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE",
        "on", "On", "ON", "off", "Off", "OFF",
    ];
    if BOOLS.contains(&value) {
        return Some("a boolean");
    }
    let digits = value.strip_prefix(['-', '+']).unwrap_or(value);
    let is_number = !digits.is_empty()
        && (digits.chars().all(|c| c.is_ascii_digit() || c == '_')
            || digits.parse::<f64>().is_ok() && digits.chars().next().is_some_and(|c| c.is_ascii_digit() || c == '.')
            || digits.strip_prefix("0x").is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit())));
    is_number.then_some("a number")
}

enum Frame {
    Mapping { key: Option<(String, YamlPosition)> },
    Sequence,
}

/// Scans a YAML text (one or more documents). Never panics.
pub fn scan(text: &str) -> Manifest {
    let mut manifest = Manifest::default();
    let mut stack: Vec<Frame> = Vec::new();
    // The keys from the document root to the current node (`-` for sequence items).
    let mut path: Vec<String> = Vec::new();
    let mut object = ManifestObject::default();
    let mut in_document = false;
    for event in Parser::new_from_str(text) {
        let (event, span) = match event {
            Ok(ok) => ok,
            Err(error) => {
                let at = YamlPosition { line: error.marker().line().saturating_sub(1), column: error.marker().col() };
                manifest.problems.push(YamlProblem::Syntax { message: error.info().to_string(), at });
                return manifest;
            }
        };
        let at = YamlPosition { line: span.start.line().saturating_sub(1), column: span.start.col() };
        match event {
            Event::DocumentStart(_) => {
                object = ManifestObject::default();
                in_document = true;
            }
            Event::DocumentEnd => {
                if in_document && object != ManifestObject::default() {
                    manifest.objects.push(std::mem::take(&mut object));
                }
                in_document = false;
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                if let Some(Frame::Mapping { key }) = stack.last() {
                    path.push(key.as_ref().map_or_else(String::new, |(k, _)| k.clone()));
                } else if matches!(stack.last(), Some(Frame::Sequence)) {
                    path.push("-".into());
                }
                stack.push(if matches!(event, Event::MappingStart(..)) {
                    Frame::Mapping { key: None }
                } else {
                    Frame::Sequence
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                if !stack.is_empty() {
                    path.pop();
                }
                if let Some(Frame::Mapping { key }) = stack.last_mut() {
                    *key = None;
                }
            }
            Event::Scalar(value, style, ..) => match stack.last_mut() {
                Some(Frame::Mapping { key: key @ None }) => *key = Some((value.to_string(), at)),
                Some(Frame::Mapping { key: key @ Some(_) }) => {
                    let (name, key_at) = key.take().expect("checked Some");
                    record_value(&mut manifest, &mut object, &path, name, &value, style, key_at, at);
                }
                _ => {}
            },
            Event::Alias(_) => {
                if let Some(Frame::Mapping { key }) = stack.last_mut() {
                    if key.is_some() {
                        *key = None;
                    } else {
                        *key = Some((String::new(), at));
                    }
                }
            }
            _ => {}
        }
    }
    manifest
}

#[allow(clippy::too_many_arguments)]
fn record_value(
    manifest: &mut Manifest,
    object: &mut ManifestObject,
    path: &[String],
    key: String,
    value: &str,
    style: ScalarStyle,
    key_at: YamlPosition,
    value_at: YamlPosition,
) {
    let parent = path.last().map(String::as_str);
    if style == ScalarStyle::Plain
        && parent.is_some_and(|p| STRING_MAPS.contains(&p))
        && let Some(reads_as) = yaml11_type(value)
    {
        manifest.problems.push(YamlProblem::UnquotedValue {
            key: key.clone(),
            value: value.to_string(),
            reads_as,
            at: value_at,
        });
    }
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    let label = || YamlLabel { key: key.clone(), value: value.to_string(), at: key_at };
    match path.as_slice() {
        [] if key == "kind" => object.kind = Some(value.to_string()),
        ["metadata"] if key == "name" => object.name = Some(value.to_string()),
        ["metadata", "labels"] => object.labels.push(label()),
        ["spec", "selector"] | ["spec", "selector", "matchLabels"] => object.selector.push(label()),
        ["spec", "template", "metadata", "labels"] => object.template_labels.push(label()),
        _ => {}
    }
}

/// Manifest files read once per run, however many scripts apply them.
#[derive(Default)]
pub struct ManifestCache {
    files: HashMap<PathBuf, Arc<Result<Manifest, String>>>,
}

impl ManifestCache {
    /// The scanned manifest at `path`, or why it could not be read.
    pub fn load(&mut self, path: &Path) -> Arc<Result<Manifest, String>> {
        self.files
            .entry(path.to_path_buf())
            .or_insert_with(|| {
                Arc::new(match std::fs::read(path) {
                    Ok(bytes) => match String::from_utf8(bytes) {
                        Ok(text) => Ok(scan(&text)),
                        Err(_) => Err("it is not UTF-8 text".to_string()),
                    },
                    Err(error) => Err(error.to_string()),
                })
            })
            .clone()
    }
}

/// The manifest files an `apply` path names: the file itself, or a directory's `.yaml`, `.yml`
/// and `.json` files in name order (not recursive, like `kubectl apply -f DIR`).
pub fn manifest_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        std::fs::metadata(path)?;
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml" || e == "json"))
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_labels_selectors_and_template_labels() {
        let manifest = scan(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: rng\n  labels:\n    app: rng\nspec:\n  selector:\n    matchLabels:\n      app: rng\n  template:\n    metadata:\n      labels:\n        app: rng\n        enabled: \"yes\"\n---\nkind: Service\nmetadata:\n  name: rng\nspec:\n  selector:\n    app: rng\n",
        );
        assert_eq!(manifest.problems, vec![]);
        assert_eq!(manifest.objects.len(), 2);
        let deployment = &manifest.objects[0];
        assert_eq!(deployment.kind.as_deref(), Some("Deployment"));
        assert_eq!(deployment.name.as_deref(), Some("rng"));
        assert_eq!(deployment.selector[0].key, "app");
        let template: Vec<_> = deployment.template_labels.iter().map(|l| (l.key.as_str(), l.value.as_str())).collect();
        assert_eq!(template, vec![("app", "rng"), ("enabled", "yes")]);
        assert_eq!(manifest.objects[1].selector[0].at, YamlPosition { line: 21, column: 4 });
    }

    #[test]
    fn finds_yaml11_booleans_and_numbers_in_label_maps_only() {
        let manifest = scan(
            "metadata:\n  labels:\n    enabled: yes\n    version: 2\n    ok: \"yes\"\nspec:\n  replicas: 3\n  paused: no\n",
        );
        let found: Vec<_> = manifest
            .problems
            .iter()
            .map(|p| match p {
                YamlProblem::UnquotedValue { key, reads_as, at, .. } => (key.as_str(), *reads_as, at.line),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(found, vec![("enabled", "a boolean", 2), ("version", "a number", 3)]);
    }

    #[test]
    fn reports_syntax_errors_with_position() {
        let manifest = scan("metadata:\n  name: [unclosed\n");
        match &manifest.problems[..] {
            [YamlProblem::Syntax { at, .. }] => assert!(at.line >= 1, "{at:?}"),
            other => panic!("expected one syntax error, got {other:?}"),
        }
    }

    #[test]
    fn yaml11_types() {
        for (text, expected) in [
            ("yes", Some("a boolean")),
            ("Off", Some("a boolean")),
            ("~", None),
            ("12", Some("a number")),
            ("1.5", Some("a number")),
            ("0x1f", Some("a number")),
            ("v1", None),
            ("rng", None),
            ("1.2.3", None),
        ] {
            assert_eq!(yaml11_type(text), expected, "{text}");
        }
    }
}
