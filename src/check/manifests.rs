//! What the checker needs to know about YAML manifests: whether they parse, which labels and
//! selectors they declare, and label values that YAML 1.1 (which Kubernetes' YAML reader follows)
//! would turn into booleans, numbers or null.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle, Tag};

use crate::model::labels::{Labels, validate_key, validate_value};
use crate::model::{Operator, Requirement, Selector};
use crate::span::{Span, Spanned};

/// A position in a YAML text: 0-based line, 0-based column in characters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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

/// One `matchExpressions` entry of a controller's selector.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct YamlExpression {
    pub key: Option<String>,
    pub operator: Option<String>,
    pub values: Vec<String>,
    pub at: YamlPosition,
}

/// What `spec.selector` holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SelectorField {
    #[default]
    Absent,
    /// `selector:` with no value, or `null`.
    Null { at: YamlPosition },
    /// A mapping: for a controller, a label selector (`matchLabels`, `matchExpressions`).
    /// `unreadable` when it holds anything a label selector cannot (a Service-style `app: rng`,
    /// an expression that is not a mapping, a mapping where a value belongs).
    Mapping { at: YamlPosition, match_labels: Vec<YamlLabel>, match_expressions: Vec<YamlExpression>, unreadable: bool },
    /// Anything else (a list, a text): the API server cannot decode it.
    Other { at: YamlPosition },
}

/// What one YAML document declares.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManifestObject {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    /// Where the value of `kind` is.
    pub kind_at: Option<YamlPosition>,
    pub name: Option<String>,
    pub labels: Vec<YamlLabel>,
    /// A Service's `spec.selector`, or a controller's `spec.selector.matchLabels`.
    pub selector: Vec<YamlLabel>,
    /// `spec.selector` as written, with positions.
    pub spec_selector: SelectorField,
    /// Where `spec:` is.
    pub spec_at: Option<YamlPosition>,
    /// Where `spec.template:` is.
    pub template_at: Option<YamlPosition>,
    /// Where `spec.template.metadata.labels:` is, when it is a mapping.
    pub template_labels_at: Option<YamlPosition>,
    /// `spec.template.metadata.labels` of a controller.
    pub template_labels: Vec<YamlLabel>,
    /// The document's root node; `None` for an empty document (nothing, or `null`), which
    /// `apply` skips.
    pub root: Option<Root>,
    /// Whether the document uses an alias (`*name`) or a merge key (`<<`): what they bring in is
    /// not followed here, so fields they may supply are not known to be missing.
    pub aliased: bool,
    /// Whether apiVersion, kind or metadata.name is written as what YAML reads as a number or a
    /// boolean (`name: 123`).
    pub identity_not_text: bool,
    /// A top-level `items`, which makes the document a list of the objects it holds.
    pub items: ItemsField,
    /// Whether this object is an item of a list.
    pub in_list: bool,
    /// Metadata the API server sets, as a manifest copied from a live cluster carries it
    /// (`uid`, `resourceVersion`, `managedFields`; not empty or null), where each is written.
    pub server_set: Vec<ServerSet>,
    /// A Service's `spec.clusterIP` and `spec.clusterIPs` addresses (not `None`), as written.
    pub cluster_ips: Vec<Written>,
    /// A Service's `spec.ports[].nodePort` numbers, as written.
    pub node_ports: Vec<Written>,
    /// Every container's `ports` entries, with the pod spec each belongs to.
    pub container_ports: Vec<ContainerPort>,
    /// The pod specs (paths from the object's root, as `spec.template.spec`) that say
    /// `hostNetwork: true`, whose container ports are host ports.
    pub host_network: Vec<String>,
    /// Each init container, in order: whether it is a sidecar (`restartPolicy: Always`), which
    /// runs beside the containers and holds its ports as they do.
    pub init_containers: Vec<bool>,
}

/// A scalar as written: its text, and where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    pub value: String,
    pub at: YamlPosition,
    /// How many characters it takes, quotes included.
    pub width: usize,
    /// Whether it is plain (not quoted): only a plain scalar can be a number.
    pub plain: bool,
}

/// One entry of a container's `ports`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerPort {
    /// The pod spec the container is in, as the path to it from the object's root.
    pub pod_spec: String,
    pub container_port: Option<Written>,
    pub host_port: Option<Written>,
    pub protocol: Option<String>,
    pub host_ip: Option<String>,
    /// For an init container's port, which of the object's init containers it is in.
    pub init_container: Option<usize>,
}

/// What an object holds that the whole cluster shares, not its namespace: the scenarios of a
/// run may race for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// A Service's cluster IP: one Service in the cluster holds an address.
    ClusterIp(String),
    /// A Service's node port: one Service in the cluster holds a port, whatever its protocol.
    NodePort(u32),
    /// A pod's host port: one pod per node holds a port and protocol on an address (an empty
    /// address, or `0.0.0.0`, is every address).
    HostPort { port: u32, protocol: String, address: String },
}

impl Claim {
    /// Whether two claims want the same thing, so only one can have it at a time.
    pub fn clashes(&self, other: &Claim) -> bool {
        match (self, other) {
            (
                Claim::HostPort { port, protocol, address },
                Claim::HostPort { port: other_port, protocol: other_protocol, address: other_address },
            ) => {
                let everywhere = |address: &str| address.is_empty() || address == "0.0.0.0";
                port == other_port
                    && protocol == other_protocol
                    && (everywhere(address) || everywhere(other_address) || address == other_address)
            }
            _ => self == other,
        }
    }

    /// The claim in words: `node port 30080`.
    pub fn describe(&self) -> String {
        match self {
            Claim::ClusterIp(address) => format!("cluster IP {address}"),
            Claim::NodePort(port) => format!("node port {port}"),
            Claim::HostPort { port, protocol, address } if address.is_empty() => format!("host port {port}/{protocol}"),
            Claim::HostPort { port, protocol, address } => format!("host port {address}:{port}/{protocol}"),
        }
    }
}

/// A field of `metadata` the API server sets, written in a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSet {
    pub field: &'static str,
    /// The value as written; empty for a list or mapping.
    pub value: String,
    /// Whether YAML reads the value as text.
    pub is_text: bool,
    pub at: YamlPosition,
    /// How many characters the value takes where it is written, quotes included.
    pub width: usize,
}

/// What a top-level `items` holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ItemsField {
    #[default]
    Absent,
    /// A list: the objects the document stands for.
    Sequence,
    /// `items:` with no value, or `null`: no objects.
    Null,
    /// Anything else, which kubectl cannot read as a list.
    Other { at: YamlPosition },
}

/// A document's root node: where it starts, and what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Root {
    pub at: YamlPosition,
    /// A mapping, as every object is; else a list or a scalar.
    pub is_mapping: bool,
}

/// Why the API server would refuse a controller for its selector (apps/v1 validation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SelectorProblem {
    /// `spec.selector` is missing or null: apps/v1 has no default selector.
    Missing,
    /// `spec.selector` has neither `matchLabels` nor `matchExpressions`.
    Empty,
    /// The selector does not match the pod template's labels; `unmet` are the requirements
    /// (in selector syntax, e.g. `tier=web`, `env notin (prod)`) the labels do not satisfy.
    Mismatch { selector: String, unmet: Vec<String> },
}

impl ManifestObject {
    /// What every object `apply` sends must have and this one lacks, or `None` when it has it
    /// all (or may, through an alias). A document that is not a mapping lacks everything.
    pub fn missing_identity(&self) -> Option<Vec<&'static str>> {
        if self.aliased || self.root.is_none() {
            return None;
        }
        let missing: Vec<&'static str> =
            [("apiVersion", &self.api_version), ("kind", &self.kind), ("metadata.name", &self.name)]
                .into_iter()
                .filter_map(|(field, value)| value.as_deref().is_none_or(str::is_empty).then_some(field))
                .collect();
        (!missing.is_empty()).then_some(missing)
    }

    /// What the object claims of the whole cluster, each where it is written: a Service's
    /// cluster IPs and node ports, a pod template's host ports (on the host's network, its
    /// container ports). A number that is no port, or 0, claims nothing (the API server refuses
    /// the one and picks for the other).
    pub fn claims(&self) -> Vec<(Claim, &Written)> {
        let mut claims = Vec::new();
        if self.kind.as_deref() == Some("Service") && self.api_version.as_deref() == Some("v1") {
            for written in &self.cluster_ips {
                let claim = Claim::ClusterIp(written.value.clone());
                if !claims.iter().any(|(c, _)| *c == claim) {
                    claims.push((claim, written));
                }
            }
            for written in &self.node_ports {
                if let Some(port) = port_number(written) {
                    claims.push((Claim::NodePort(port), written));
                }
            }
        }
        let makes_pods = matches!(
            self.kind.as_deref(),
            Some("Pod" | "Deployment" | "ReplicaSet" | "DaemonSet" | "StatefulSet" | "Job" | "CronJob")
                | Some("ReplicationController")
        );
        // An init container that is no sidecar has finished before the containers start: the
        // scheduler counts only the sidecars' ports.
        let ports = self.container_ports.iter().filter(|entry| {
            makes_pods && entry.init_container.is_none_or(|index| self.init_containers.get(index) == Some(&true))
        });
        for entry in ports {
            let on_host_network = self.host_network.contains(&entry.pod_spec);
            let host_port = entry.host_port.as_ref().and_then(|w| port_number(w).map(|port| (port, w)));
            let from_container = || {
                let written = entry.container_port.as_ref()?;
                port_number(written).map(|port| (port, written))
            };
            let Some((port, written)) = host_port.or_else(|| on_host_network.then(from_container).flatten()) else {
                continue;
            };
            let protocol = entry.protocol.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "TCP".into());
            let address = entry.host_ip.clone().unwrap_or_default();
            claims.push((Claim::HostPort { port, protocol, address }, written));
        }
        claims
    }

    /// Labels that pods created from this object carry.
    pub fn pod_labels(&self) -> impl Iterator<Item = &YamlLabel> {
        let own = if self.kind.as_deref() == Some("Pod") { &self.labels[..] } else { &[] };
        own.iter().chain(self.template_labels.iter())
    }

    /// An apps/v1 Deployment, ReplicaSet or DaemonSet: a controller whose selector the API server
    /// checks against its own pod template.
    pub fn is_apps_controller(&self) -> bool {
        self.api_version.as_deref() == Some("apps/v1")
            && matches!(self.kind.as_deref(), Some("Deployment" | "ReplicaSet" | "DaemonSet"))
    }

    /// The pod template's labels as a map (a key written twice keeps its last value, as in YAML).
    pub fn template_label_map(&self) -> Labels {
        self.template_labels.iter().map(|l| (l.key.clone(), l.value.clone())).collect()
    }

    /// What the API server would refuse about this controller's selector, if anything. Selectors
    /// it could not read (an unknown operator, `In` without values, invalid keys) are left alone:
    /// the API server reports those in other words.
    pub fn selector_problem(&self) -> Option<SelectorProblem> {
        if !self.is_apps_controller() {
            return None;
        }
        // Without a pod template the manifest cannot make the object (the API server would refuse
        // that create for all it lacks): it changes one that exists, whose stored selector and
        // template server-side apply keeps. Only what it sets is judged.
        let partial = self.template_at.is_none();
        let (match_labels, match_expressions) = match &self.spec_selector {
            SelectorField::Absent if partial => return None,
            SelectorField::Absent | SelectorField::Null { .. } => return Some(SelectorProblem::Missing),
            SelectorField::Other { .. } | SelectorField::Mapping { unreadable: true, .. } => return None,
            SelectorField::Mapping { match_labels, match_expressions, .. } => (match_labels, match_expressions),
        };
        if match_labels.is_empty() && match_expressions.is_empty() {
            return Some(SelectorProblem::Empty);
        }
        if partial {
            return None;
        }
        // `${{ name }}` is filled in when the step runs: until then, whether it matches is unknown.
        let texts = match_labels
            .iter()
            .chain(&self.template_labels)
            .flat_map(|l| [&l.key, &l.value])
            .chain(match_expressions.iter().flat_map(|e| e.key.iter().chain(&e.values)));
        if texts.into_iter().any(|text| text.contains("${{")) {
            return None;
        }
        let selector = label_selector(match_labels, match_expressions)?;
        let labels = self.template_label_map();
        let unmet: Vec<String> =
            selector.requirements.iter().filter(|r| !r.matches(&labels)).map(ToString::to_string).collect();
        (!unmet.is_empty()).then(|| SelectorProblem::Mismatch { selector: selector.to_string(), unmet })
    }

    /// The API server's own words for a selector problem (as of Kubernetes 1.34, which renders
    /// the invalid value as JSON), without the `Kind.group "name" is invalid: ` before them.
    pub fn api_message(&self, problem: &SelectorProblem) -> String {
        const MISMATCH: &str = "`selector` does not match template `labels`";
        let template_labels = || {
            if self.template_labels_at.is_some() {
                serde_json::to_string(&self.template_label_map()).unwrap_or_else(|_| "{}".into())
            } else {
                "null".to_string()
            }
        };
        let daemonset = self.kind.as_deref() == Some("DaemonSet");
        match problem {
            // A DaemonSet's missing selector matches nothing, so its template fails the match.
            SelectorProblem::Missing if daemonset => {
                format!("spec.template.metadata.labels: Invalid value: {}: {MISMATCH}", template_labels())
            }
            SelectorProblem::Missing => "spec.selector: Required value".to_string(),
            SelectorProblem::Empty => format!(
                "spec.selector: Invalid value: {{}}: empty selector is invalid for {}",
                // ReplicaSets share the Deployment's wording.
                if daemonset { "daemonset" } else { "deployment" }
            ),
            SelectorProblem::Mismatch { .. } => {
                format!("spec.template.metadata.labels: Invalid value: {}: {MISMATCH}", template_labels())
            }
        }
    }
}

/// A controller's label selector as a [`Selector`], when the API server could read it.
fn label_selector(match_labels: &[YamlLabel], match_expressions: &[YamlExpression]) -> Option<Selector> {
    let text = |value: &str| Spanned::new(value.to_string(), Span::default());
    let mut requirements = Vec::new();
    for label in match_labels {
        validate_key(&label.key).ok()?;
        validate_value(&label.value).ok()?;
        requirements.push(Requirement {
            key: text(&label.key),
            operator: Operator::Equals,
            values: vec![text(&label.value)],
            span: Span::default(),
        });
    }
    for expression in match_expressions {
        let key = expression.key.as_deref()?;
        validate_key(key).ok()?;
        let operator = match expression.operator.as_deref()? {
            "In" => Operator::In,
            "NotIn" => Operator::NotIn,
            "Exists" => Operator::Exists,
            "DoesNotExist" => Operator::DoesNotExist,
            _ => return None,
        };
        let needs_values = matches!(operator, Operator::In | Operator::NotIn);
        if needs_values == expression.values.is_empty() {
            return None;
        }
        for value in &expression.values {
            validate_value(value).ok()?;
        }
        requirements.push(Requirement {
            key: text(key),
            operator,
            values: expression.values.iter().map(|v| text(v)).collect(),
            span: Span::default(),
        });
    }
    Some(Selector { requirements, span: Span::default() })
}

/// Whether a plain scalar is YAML's null.
fn is_null(value: &str, style: ScalarStyle) -> bool {
    style == ScalarStyle::Plain && matches!(value, "" | "~" | "null" | "Null" | "NULL")
}

/// What YAML makes of a scalar that is not text, as `rehearse run` reads it: a tagged scalar
/// by its core-schema tag (`!!str 123` is text, `!!int "12"` a number), a plain one by YAML
/// 1.1's rules, a quoted one never.
fn reads_as(value: &str, style: ScalarStyle, tag: Option<&Tag>) -> Option<&'static str> {
    match tag {
        Some(tag) if tag.is_yaml_core_schema() => match tag.suffix.as_str() {
            "int" | "float" => Some("a number"),
            "bool" => Some("a boolean"),
            _ => None,
        },
        Some(_) => None,
        None => (style == ScalarStyle::Plain).then(|| yaml11_type(value)).flatten(),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum YamlProblem {
    /// The text is not YAML.
    Syntax { message: String, at: YamlPosition },
    /// YAML `rehearse run` would refuse to read: beyond its limits (an alias bomb, nesting too
    /// deep, too many nodes), or not parsed alike by its reader.
    Refused { message: String },
    /// A label (or selector, annotation) value that YAML 1.1 reads as something other than a string.
    UnquotedValue { key: String, value: String, reads_as: &'static str, at: YamlPosition },
    /// An item of a selector expression's `values` that YAML 1.1 reads as something other
    /// than a string.
    UnquotedItem { value: String, reads_as: &'static str, at: YamlPosition },
}

/// A scanned YAML text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub objects: Vec<ManifestObject>,
    pub problems: Vec<YamlProblem>,
}

/// Maps whose values Kubernetes reads as strings: an unquoted `yes` there is a boolean and rejected.
const STRING_MAPS: [&str; 5] = ["labels", "matchLabels", "selector", "nodeSelector", "annotations"];

/// YAML 1.1's booleans, compared case-folded as the run's reader compares them (`yEs` is one too).
const YAML11_TRUE: [&str; 4] = ["y", "yes", "true", "on"];
const YAML11_FALSE: [&str; 4] = ["n", "no", "false", "off"];

/// What YAML 1.1 makes of a plain scalar when Kubernetes would reject it as a string value.
/// (null is left out: it decodes to an empty string without complaint.)
fn yaml11_type(value: &str) -> Option<&'static str> {
    if YAML11_TRUE.iter().chain(&YAML11_FALSE).any(|word| value.eq_ignore_ascii_case(word)) {
        return Some("a boolean");
    }
    let digits = value.strip_prefix(['-', '+']).unwrap_or(value);
    let radix = [("0x", 16), ("0o", 8), ("0b", 2)]
        .into_iter()
        .find_map(|(prefix, radix)| digits.strip_prefix(prefix).map(|rest| (rest, radix)));
    let is_number = match radix {
        Some((rest, radix)) => grouped_digits(rest, radix),
        None => {
            grouped_digits(digits, 10)
                || digits.parse::<f64>().is_ok()
                    && digits.chars().next().is_some_and(|c| c.is_ascii_digit() || c == '.')
        }
    };
    is_number.then_some("a number")
}

/// Digits of a radix, `_` allowed between them (never first, last or doubled), as the run's
/// reader takes an integer.
fn grouped_digits(text: &str, radix: u32) -> bool {
    !text.is_empty()
        && !text.starts_with('_')
        && !text.ends_with('_')
        && !text.contains("__")
        && text.chars().all(|c| c == '_' || c.is_digit(radix))
}

enum Frame {
    Mapping { key: Option<(String, YamlPosition)> },
    Sequence,
}

/// Scans a YAML text (one or more documents). Never panics. YAML that scans but that `run`
/// would refuse to read (its reader and limits, [`crate::input::yaml_documents`]) is a problem too.
pub fn scan(text: &str) -> Manifest {
    let mut manifest = scan_events(text);
    let has_syntax_error = manifest.problems.iter().any(|p| matches!(p, YamlProblem::Syntax { .. }));
    if !has_syntax_error && let Err(message) = crate::input::yaml_documents(text) {
        manifest.problems.push(YamlProblem::Refused { message });
    }
    manifest
}

/// An object being read: a document's root, or an item of a list's `items`.
struct Scope {
    object: ManifestObject,
    /// Where its fields' paths start in `path`.
    depth: usize,
    /// How many frames are open while it is: it ends with the node that opened it.
    frames: usize,
    /// Its `items`, should it be a list.
    items: Vec<ManifestObject>,
}

impl Scope {
    fn new(depth: usize, frames: usize) -> Self {
        Scope { object: ManifestObject::default(), depth, frames, items: Vec::new() }
    }

    /// The objects it stands for: itself, or, a list, its items (see
    /// [`crate::exec::apply`]'s `unpack_list`: an item with neither `apiVersion` nor `kind`
    /// takes the list's, less a `List` suffix, so `ConfigMapList` gives `ConfigMap`). A list
    /// without a kind stays one object, which `check` reports as kubectl refuses it.
    fn objects(self) -> Vec<ManifestObject> {
        let Scope { object, mut items, .. } = self;
        let is_list = matches!(object.items, ItemsField::Sequence | ItemsField::Null);
        if !is_list || object.kind.as_deref().is_none_or(str::is_empty) {
            return if object == ManifestObject::default() { Vec::new() } else { vec![object] };
        }
        let item_kind = object.kind.as_deref().map(|kind| kind.strip_suffix("List").unwrap_or(kind));
        let item_kind = item_kind.filter(|kind| !kind.is_empty());
        for item in &mut items {
            item.in_list = true;
            let untyped =
                item.api_version.as_deref().is_none_or(str::is_empty) && item.kind.as_deref().is_none_or(str::is_empty);
            // What an alias brings the list (its apiVersion, say) is not followed: an item it
            // would type is not known to lack its type.
            item.aliased |= object.aliased && untyped;
            if let Some(kind) = item_kind
                && item.root.is_some_and(|root| root.is_mapping)
                && item.api_version.as_deref().is_none_or(str::is_empty)
                && item.kind.as_deref().is_none_or(str::is_empty)
                && !item.aliased
            {
                item.kind = Some(kind.to_string());
                item.api_version = object.api_version.clone();
            }
        }
        items
    }
}

fn scan_events(text: &str) -> Manifest {
    let mut manifest = Manifest::default();
    let mut stack: Vec<Frame> = Vec::new();
    // The keys from the document root to the current node (`-` for sequence items).
    let mut path: Vec<String> = Vec::new();
    // The document's root object, then the list item being read, if any.
    let mut scopes: Vec<Scope> = Vec::new();
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
            Event::DocumentStart(_) => scopes = vec![Scope::new(0, 0)],
            Event::DocumentEnd => {
                if let Some(root) = scopes.drain(..).next() {
                    manifest.objects.extend(root.objects());
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                // A mapping or list that is a key's value is located at its key.
                let mut node_at = at;
                if let Some(Frame::Mapping { key }) = stack.last() {
                    path.push(key.as_ref().map_or_else(String::new, |(k, _)| k.clone()));
                    if let Some((_, key_at)) = key {
                        node_at = *key_at;
                    }
                } else if matches!(stack.last(), Some(Frame::Sequence)) {
                    path.push("-".into());
                }
                let is_mapping = matches!(event, Event::MappingStart(..));
                stack.push(if is_mapping { Frame::Mapping { key: None } } else { Frame::Sequence });
                let Some(scope) = scopes.last_mut() else { continue };
                if stack.len() == 1 {
                    scope.object.root = Some(Root { at, is_mapping });
                } else if is_list_item(&path[scope.depth..]) {
                    let mut item = Scope::new(path.len(), stack.len());
                    item.object.root = Some(Root { at, is_mapping });
                    scopes.push(item);
                } else {
                    record_node(&mut scope.object, &path[scope.depth..], is_mapping, node_at);
                }
            }
            Event::MappingEnd | Event::SequenceEnd => {
                if scopes.len() > 1 && scopes.last().is_some_and(|scope| scope.frames == stack.len()) {
                    // An item that is a list itself stays one object: kubectl refuses it.
                    let item = scopes.pop().expect("checked").object;
                    scopes.last_mut().expect("checked").items.push(item);
                }
                stack.pop();
                if !stack.is_empty() {
                    path.pop();
                }
                if let Some(Frame::Mapping { key }) = stack.last_mut() {
                    *key = None;
                }
            }
            Event::Scalar(value, style, _, tag) => {
                let Some(scope) = scopes.last_mut() else { continue };
                let object = &mut scope.object;
                let relative = &path[scope.depth..];
                match stack.last_mut() {
                    Some(Frame::Mapping { key: key @ None }) => {
                        // A merge key is a plain `<<` (or one tagged `!!merge`), not a quoted one.
                        let merge = tag.as_deref().map_or(style == ScalarStyle::Plain, |t| t.suffix == "merge");
                        object.aliased |= value == "<<" && merge;
                        *key = Some((value.to_string(), at))
                    }
                    Some(Frame::Mapping { key: key @ Some(_) }) => {
                        let (name, key_at) = key.take().expect("checked Some");
                        let scalar = Scalar { value: &value, style, reads_as: reads_as(&value, style, tag.as_deref()) };
                        record_value(&mut manifest, object, relative, name, scalar, key_at, at);
                    }
                    Some(Frame::Sequence) if is_items(relative) => {
                        // An item that is no object; unlike a document, a null one is no less
                        // an item, and kubectl refuses it.
                        let root = Some(Root { at, is_mapping: false });
                        scope.items.push(ManifestObject { root, ..Default::default() });
                    }
                    Some(Frame::Sequence) => {
                        if is_expression_values(relative)
                            && let Some(reads_as) = reads_as(&value, style, tag.as_deref())
                        {
                            manifest.problems.push(YamlProblem::UnquotedItem {
                                value: value.to_string(),
                                reads_as,
                                at,
                            });
                        }
                        record_item(object, relative, &value, style, at)
                    }
                    // A document that is one scalar; a plain empty or null one is no document at all.
                    None => {
                        if !is_null(&value, style) {
                            object.root = Some(Root { at, is_mapping: false });
                        }
                    }
                }
            }
            Event::Alias(_) => {
                if let Some(scope) = scopes.last_mut() {
                    if matches!(stack.last(), Some(Frame::Sequence)) && is_items(&path[scope.depth..]) {
                        // An item brought in whole: an object, whatever it holds.
                        let root = Some(Root { at, is_mapping: true });
                        scope.items.push(ManifestObject { root, aliased: true, ..Default::default() });
                    } else {
                        scope.object.aliased = true;
                    }
                }
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

/// `key`, if it is a field of `metadata` that only the API server sets and that it refuses to
/// be sent (see [`ServerSet`]).
fn server_set_field(key: &str) -> Option<&'static str> {
    ["uid", "resourceVersion", "managedFields"].into_iter().find(|field| *field == key)
}

/// A port number as the run's YAML reader takes it (`30080`, `30_080`, `0x7580`), if it is one
/// above 0. A quoted one is text, which the API server refuses where a port belongs.
fn port_number(written: &Written) -> Option<u32> {
    let value = written.value.strip_prefix('+').unwrap_or(&written.value);
    let (digits, radix) = [("0x", 16), ("0o", 8), ("0b", 2)]
        .into_iter()
        .find_map(|(prefix, radix)| value.strip_prefix(prefix).map(|rest| (rest, radix)))
        .unwrap_or((value, 10));
    if !written.plain || !grouped_digits(digits, radix) {
        return None;
    }
    u32::from_str_radix(&digits.replace('_', ""), radix).ok().filter(|port| (1..=65_535).contains(port))
}

/// Whether `path` (from an object's root) is an entry of a container's `ports`.
fn is_container_port(path: &[&str]) -> bool {
    matches!(path, [.., containers, "-", "ports", "-"] if matches!(*containers, "containers" | "initContainers"))
}

/// A scalar as written, where it is.
fn written(value: &str, style: ScalarStyle, at: YamlPosition) -> Written {
    let quotes = if matches!(style, ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted) { 2 } else { 0 };
    Written { value: value.to_string(), at, width: value.chars().count() + quotes, plain: style == ScalarStyle::Plain }
}

/// Whether `path` (from an object's root) is an item of its `items`.
fn is_list_item(path: &[String]) -> bool {
    matches!(path, [items, item] if items == "items" && item == "-")
}

/// Whether `path` (from an object's root) is its `items`.
fn is_items(path: &[String]) -> bool {
    matches!(path, [items] if items == "items")
}

/// A mapping or a list starts at `path` (the keys down to it, `-` for list items).
fn record_node(object: &mut ManifestObject, path: &[String], is_mapping: bool, at: YamlPosition) {
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    // A list or mapping: managedFields as `kubectl get --show-managed-fields` prints it, or a
    // uid or resourceVersion that is no text.
    if let ["metadata", key] = path.as_slice()
        && let Some(field) = server_set_field(key)
    {
        object.server_set.push(ServerSet { field, value: String::new(), is_text: false, at, width: 1 });
        return;
    }
    if is_mapping && is_container_port(&path) {
        let pod_spec = path[..path.len() - 4].join(".");
        let in_init = path[path.len() - 4] == "initContainers";
        let init_container = in_init.then(|| object.init_containers.len().saturating_sub(1));
        object.container_ports.push(ContainerPort { pod_spec, init_container, ..Default::default() });
        return;
    }
    if is_mapping && matches!(path.as_slice(), [.., "initContainers", "-"]) {
        object.init_containers.push(false);
    }
    match (path.as_slice(), is_mapping) {
        (["items"], true) => object.items = ItemsField::Other { at },
        (["items"], false) => object.items = ItemsField::Sequence,
        (["spec"], _) => object.spec_at = Some(at),
        (["spec", "template"], _) => object.template_at = Some(at),
        (["spec", "template", "metadata", "labels"], true) => object.template_labels_at = Some(at),
        (["spec", "selector"], true) => {
            object.spec_selector = SelectorField::Mapping {
                at,
                match_labels: Vec::new(),
                match_expressions: Vec::new(),
                unreadable: false,
            }
        }
        (["spec", "selector"], false) => object.spec_selector = SelectorField::Other { at },
        (["spec", "selector", "matchLabels"], true)
        | (["spec", "selector", "matchExpressions"], false)
        | (["spec", "selector", "matchExpressions", "-", "values"], false) => {}
        (["spec", "selector", "matchExpressions", "-"], true) => {
            if let SelectorField::Mapping { match_expressions, .. } = &mut object.spec_selector {
                match_expressions.push(YamlExpression { at, ..Default::default() });
            }
        }
        (["spec", "selector", ..], _) => unreadable_selector(object),
        _ => {}
    }
}

/// apiVersion, kind or metadata.name as the text it is, or `None` when YAML reads it as null, a
/// boolean or a number (`name: 123` is no name to the API server, nor to `rehearse run`), noting
/// the latter for the hint to quote it.
fn identity(object: &mut ManifestObject, value: &str, style: ScalarStyle, reads_as: Option<&str>) -> Option<String> {
    object.identity_not_text |= reads_as.is_some();
    (!is_null(value, style) && reads_as.is_none()).then(|| value.to_string())
}

/// Whether `path` is the `values` of a selector expression (a Deployment's selector, an affinity
/// term's, a node selector term's, also of its `matchFields`): lists of strings.
fn is_expression_values(path: &[String]) -> bool {
    matches!(path, [.., expressions, item, values]
        if (expressions == "matchExpressions" || expressions == "matchFields") && item == "-" && values == "values")
}

/// A text item of a list at `path`.
fn record_item(object: &mut ManifestObject, path: &[String], value: &str, style: ScalarStyle, at: YamlPosition) {
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    match path.as_slice() {
        ["spec", "clusterIPs"] if is_address(value, style) => object.cluster_ips.push(written(value, style, at)),
        ["spec", "selector", "matchExpressions", "-", "values"] => {
            if let Some(expression) = last_expression(object) {
                expression.values.push(value.to_string());
            }
        }
        ["spec", "selector", ..] => unreadable_selector(object),
        _ => {}
    }
}

fn unreadable_selector(object: &mut ManifestObject) {
    if let SelectorField::Mapping { unreadable, .. } = &mut object.spec_selector {
        *unreadable = true;
    }
}

fn last_expression(object: &mut ManifestObject) -> Option<&mut YamlExpression> {
    match &mut object.spec_selector {
        SelectorField::Mapping { match_expressions, .. } => match_expressions.last_mut(),
        _ => None,
    }
}

/// A scalar value as written, and what YAML makes of it when that is not text.
struct Scalar<'a> {
    value: &'a str,
    style: ScalarStyle,
    reads_as: Option<&'static str>,
}

fn record_value(
    manifest: &mut Manifest,
    object: &mut ManifestObject,
    path: &[String],
    key: String,
    Scalar { value, style, reads_as }: Scalar,
    key_at: YamlPosition,
    value_at: YamlPosition,
) {
    let parent = path.last().map(String::as_str);
    if parent.is_some_and(|p| STRING_MAPS.contains(&p))
        && let Some(reads_as) = reads_as
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
        [] if key == "apiVersion" => object.api_version = identity(object, value, style, reads_as),
        [] if key == "kind" => {
            object.kind = identity(object, value, style, reads_as);
            object.kind_at = Some(value_at);
        }
        ["metadata"] if key == "name" => object.name = identity(object, value, style, reads_as),
        // A placeholder is judged when the step runs, as the selector checks leave it.
        ["metadata"]
            if server_set_field(&key).is_some()
                && !is_null(value, style)
                && (key == "managedFields" || !value.is_empty())
                && !value.contains("${{") =>
        {
            let field = server_set_field(&key).unwrap_or_default();
            let is_text = reads_as.is_none();
            let quotes = if matches!(style, ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted) { 2 } else { 0 };
            let width = value.chars().count() + quotes;
            object.server_set.push(ServerSet { field, value: value.to_string(), is_text, at: value_at, width });
        }
        [] if key == "items" => {
            object.items = if is_null(value, style) { ItemsField::Null } else { ItemsField::Other { at: key_at } }
        }
        ["metadata", "labels"] => object.labels.push(label()),
        ["spec"] if key == "selector" => {
            object.spec_selector = if is_null(value, style) {
                SelectorField::Null { at: key_at }
            } else {
                SelectorField::Other { at: key_at }
            };
        }
        ["spec", "selector"] => {
            object.selector.push(label());
            // A controller's selector holds only matchLabels and matchExpressions (null is empty).
            if !(matches!(key.as_str(), "matchLabels" | "matchExpressions") && is_null(value, style)) {
                unreadable_selector(object);
            }
        }
        ["spec", "selector", "matchLabels"] => {
            object.selector.push(label());
            if let SelectorField::Mapping { match_labels, .. } = &mut object.spec_selector {
                match_labels.push(label());
            }
        }
        ["spec", "selector", "matchExpressions", "-"] => match (key.as_str(), last_expression(object)) {
            ("key", Some(expression)) => expression.key = Some(value.to_string()),
            ("operator", Some(expression)) => expression.operator = Some(value.to_string()),
            ("values", _) if is_null(value, style) => {}
            _ => unreadable_selector(object),
        },
        ["spec", "selector", ..] => unreadable_selector(object),
        ["spec", "template", "metadata", "labels"] => object.template_labels.push(label()),
        ["spec"] if key == "clusterIP" && is_address(value, style) => {
            object.cluster_ips.push(written(value, style, value_at))
        }
        ["spec", "ports", "-"] if key == "nodePort" => object.node_ports.push(written(value, style, value_at)),
        port if is_container_port(port) => {
            if let Some(entry) = object.container_ports.last_mut() {
                match key.as_str() {
                    "containerPort" => entry.container_port = Some(written(value, style, value_at)),
                    "hostPort" => entry.host_port = Some(written(value, style, value_at)),
                    "protocol" => entry.protocol = Some(value.to_string()),
                    "hostIP" => entry.host_ip = Some(value.to_string()),
                    _ => {}
                }
            }
        }
        [.., "initContainers", "-"] if key == "restartPolicy" && value == "Always" => {
            if let Some(sidecar) = object.init_containers.last_mut() {
                *sidecar = true;
            }
        }
        pod_spec if key == "hostNetwork" && is_true(value, style) => object.host_network.push(pod_spec.join(".")),
        _ => {}
    }
}

/// Whether a scalar is YAML 1.1's true, as the run's reader takes it (case-folded).
fn is_true(value: &str, style: ScalarStyle) -> bool {
    style == ScalarStyle::Plain && YAML11_TRUE.iter().any(|word| value.eq_ignore_ascii_case(word))
}

/// Whether a cluster IP as written is an address the Service asks for: not empty, `None`
/// (headless) or a `${{ }}` placeholder, which is judged when the step runs.
fn is_address(value: &str, style: ScalarStyle) -> bool {
    !is_null(value, style) && !value.is_empty() && value != "None" && !value.contains("${{")
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
                Arc::new(match crate::input::read_text(path, crate::input::MANIFEST_LIMIT) {
                    Ok(text) => Ok(scan(&text)),
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
        // Regular files only: a FIFO or device in the directory is not a manifest.
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml" || e == "json"))
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_an_object_claims_of_the_whole_cluster() {
        let claims = |text: &str| -> Vec<String> {
            scan(text).objects.iter().flat_map(|o| o.claims()).map(|(claim, _)| claim.describe()).collect()
        };
        let service = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  clusterIP: 10.96.0.9\n  clusterIPs: [10.96.0.9, fd00::9]\n  ports:\n    - {port: 80, nodePort: 30_080}\n    - {port: 81, nodePort: 0}\n    - {port: 82, nodePort: \"30082\"}\n    - {port: 83, nodePort: 0x7594}\n    - port: 82\n      nodePort: ${{ port }}\n";
        assert_eq!(
            claims(service),
            ["cluster IP 10.96.0.9", "cluster IP fd00::9", "node port 30080", "node port 30100"]
        );
        // Headless, or the API server's pick: no claim; nor from a kind that is no v1 Service.
        assert!(claims("apiVersion: v1\nkind: Service\nmetadata: {name: h}\nspec: {clusterIP: None}\n").is_empty());
        assert!(
            claims("apiVersion: example.com/v1\nkind: Service\nmetadata: {name: x}\nspec: {clusterIP: 10.0.0.1}\n")
                .is_empty()
        );
        // On the host's network (said after the containers, in YAML 1.1's words), container ports
        // are host ports; elsewhere only host ports are, with their protocol and address.
        let daemonset = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: a}\nspec:\n  template:\n    spec:\n      containers:\n        - name: a\n          ports:\n            - containerPort: 9100\n            - {containerPort: 53, protocol: UDP}\n      initContainers:\n        - name: setup\n          ports: [{containerPort: 70, hostPort: 7070}]\n        - name: b\n          ports: [{containerPort: 80, hostPort: 8080, hostIP: 10.0.0.1}]\n          restartPolicy: Always\n      hostNetwork: Yes\n";
        // An init container that is no sidecar holds no port while the pod runs.
        assert_eq!(claims(daemonset), ["host port 9100/TCP", "host port 53/UDP", "host port 10.0.0.1:8080/TCP"]);
        let template = "apiVersion: v1\nkind: PodTemplate\nmetadata: {name: t}\ntemplate:\n  spec:\n    containers: [{name: t, ports: [{containerPort: 1, hostPort: 81}]}]\n";
        assert!(claims(template).is_empty(), "a kind that runs no pod claims no host port");
        let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n    - name: p\n      ports: [{containerPort: 80}, {containerPort: 81, hostPort: 81}]\n";
        assert_eq!(claims(pod), ["host port 81/TCP"]);
        let wildcard = Claim::HostPort { port: 81, protocol: "TCP".into(), address: String::new() };
        let one = Claim::HostPort { port: 81, protocol: "TCP".into(), address: "10.0.0.1".into() };
        let other = Claim::HostPort { port: 81, protocol: "TCP".into(), address: "10.0.0.2".into() };
        let udp = Claim::HostPort { port: 81, protocol: "UDP".into(), address: String::new() };
        assert!(wildcard.clashes(&one) && one.clashes(&wildcard) && one.clashes(&one));
        assert!(!one.clashes(&other) && !wildcard.clashes(&udp) && !Claim::NodePort(81).clashes(&wildcard));
    }

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
    fn knows_what_each_document_lacks_to_name_its_object() {
        let manifest = scan(concat!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
            "---\n---\n~\n",
            "---\n{}\n",
            "---\n- x\n",
            "---\nkind: Pod\nmetadata: {name: 123}\n",
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {<<: {name: b}}\n",
            "---\nkind: ConfigMap\ndata: &m {name: c}\nmetadata: *m\n",
        ));
        let all = Some(vec!["apiVersion", "kind", "metadata.name"]);
        let found: Vec<_> =
            manifest.objects.iter().map(|o| (o.root.map(|r| r.is_mapping), o.missing_identity())).collect();
        assert_eq!(
            found,
            vec![
                (Some(true), None),
                (Some(true), all.clone()),
                (Some(false), all),
                (Some(true), Some(vec!["apiVersion", "metadata.name"])),
                (Some(true), None),
                (Some(true), None),
            ],
            "empty documents are none; a merge key or an alias leaves the fields unknown"
        );
    }

    #[test]
    fn unpacks_lists_into_their_items() {
        let manifest = scan(concat!(
            "apiVersion: v1\nitems:\n",
            "- apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: web, labels: {app: web}}\n",
            "  spec: {selector: {matchLabels: {app: web}}}\n",
            "- [not, an, object]\n- {kind: List, items: []}\n- &x {metadata: {name: untyped}}\n- *x\n",
            "kind: List\n",
            "---\napiVersion: v1\nkind: ServiceList\nitems:\n- metadata: {name: svc}\n  spec: {selector: {app: web}}\n",
            "---\nkind: List\nitems: null\n---\nkind: List\nitems: {}\n---\nkind: PodList\nmetadata: {name: p}\n",
            "---\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: k}}\n",
            "---\napiVersion: v1\nkind: Secret\nitems:\n- metadata: {name: s}\n- ~\n",
        ));
        let found: Vec<_> = manifest
            .objects
            .iter()
            .map(|o| {
                let line = o.root.map(|root| root.at.line);
                (line, o.kind.as_deref(), o.name.as_deref(), o.in_list, o.items, o.missing_identity())
            })
            .collect();
        let no_type = Some(vec!["apiVersion", "kind"]);
        let no_version_or_name = Some(vec!["apiVersion", "metadata.name"]);
        let not_a_list = ItemsField::Other { at: YamlPosition { line: 22, column: 0 } };
        assert_eq!(
            found,
            vec![
                (Some(2), Some("Deployment"), Some("web"), true, ItemsField::Absent, None),
                (Some(6), None, None, true, ItemsField::Absent, Some(vec!["apiVersion", "kind", "metadata.name"])),
                (Some(7), Some("List"), None, true, ItemsField::Sequence, no_version_or_name.clone()),
                (Some(8), None, Some("untyped"), true, ItemsField::Absent, no_type),
                (Some(9), None, None, true, ItemsField::Absent, None),
                (Some(15), Some("Service"), Some("svc"), true, ItemsField::Absent, None),
                (Some(21), Some("List"), None, false, not_a_list, no_version_or_name),
                (Some(24), Some("PodList"), Some("p"), false, ItemsField::Absent, Some(vec!["apiVersion"])),
                (Some(27), None, None, false, ItemsField::Sequence, Some(vec!["apiVersion", "kind", "metadata.name"])),
                (Some(33), Some("Secret"), Some("s"), true, ItemsField::Absent, None),
                (Some(34), None, None, true, ItemsField::Absent, Some(vec!["apiVersion", "kind", "metadata.name"])),
            ],
            "each item an object at its line, typed by its list (less a `List` suffix); `items: null` is none; \
             an alias is unknown; a list without a kind stays one object; a null item is an item"
        );
        let web = &manifest.objects[0];
        assert_eq!(web.labels[0].key, "app", "an item's fields are read from the item");
        assert_eq!(web.selector[0].at.line, 5);
        assert_eq!(manifest.objects[5].api_version.as_deref(), Some("v1"), "a typed list's apiVersion");
        assert_eq!(manifest.objects[1].root.map(|root| root.is_mapping), Some(false));
    }

    #[test]
    fn finds_yaml11_booleans_and_numbers_in_selector_expression_values() {
        let manifest = scan(
            "spec:
  selector:
    matchExpressions:
      - {key: tier, operator: In, values: [yes, \"no\", web]}
  template:
    spec:
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
              - matchExpressions:
                  - key: rack
                    operator: In
                    values:
                      - 12
  ports: [80, on]
",
        );
        let found: Vec<_> = manifest
            .problems
            .iter()
            .map(|p| match p {
                YamlProblem::UnquotedItem { value, reads_as, at } => (value.as_str(), *reads_as, at.line),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(found, vec![("yes", "a boolean", 3), ("12", "a number", 14)]);
    }

    #[test]
    fn reports_syntax_errors_with_position() {
        let manifest = scan("metadata:\n  name: [unclosed\n");
        match &manifest.problems[..] {
            [YamlProblem::Syntax { at, .. }] => assert!(at.line >= 1, "{at:?}"),
            other => panic!("expected one syntax error, got {other:?}"),
        }
    }

    /// An apps/v1 controller with the given `spec.selector` text (indented under `selector:`, or
    /// `None` for no selector) and pod-template labels.
    fn controller(kind: &str, selector: Option<&str>, labels: &str) -> ManifestObject {
        let selector = selector.map(|s| format!("  selector:{s}\n")).unwrap_or_default();
        let text = format!(
            "apiVersion: apps/v1\nkind: {kind}\nmetadata:\n  name: rng\nspec:\n{selector}  template:\n    metadata:\n      labels: {labels}\n"
        );
        let manifest = scan(&text);
        assert_eq!(manifest.problems, vec![], "{text}");
        manifest.objects.into_iter().next().expect("one object")
    }

    fn mismatch(object: &ManifestObject) -> Option<Vec<String>> {
        match object.selector_problem() {
            None => None,
            Some(SelectorProblem::Mismatch { unmet, .. }) => Some(unmet),
            Some(other) => panic!("expected a mismatch or nothing, got {other:?}"),
        }
    }

    #[test]
    fn a_manifest_without_a_pod_template_is_judged_only_on_what_it_sets() {
        // An apply that changes an existing controller: server-side apply keeps its selector and
        // template. Whether it exists is the API server's to say.
        for text in [
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: rng\n  labels:\n    team: a\n",
            "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: rng\nspec:\n  minReadySeconds: 5\n",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: rng\nspec:\n  replicas: 3\n  selector:\n    matchLabels:\n      app: rng\n",
        ] {
            let object = scan(text).objects.into_iter().next().expect("one object");
            assert_eq!(object.selector_problem(), None, "{text}");
        }
        // What it does set is still judged: an empty or a null selector is refused on any write.
        let empty = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: rng\nspec:\n  selector: {}\n";
        let object = scan(empty).objects.into_iter().next().expect("one object");
        assert_eq!(object.selector_problem(), Some(SelectorProblem::Empty));
        let null = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: rng\nspec:\n  selector: null\n";
        let object = scan(null).objects.into_iter().next().expect("one object");
        assert_eq!(object.selector_problem(), Some(SelectorProblem::Missing));
    }

    #[test]
    fn match_labels_must_be_among_the_template_labels() {
        let fine = controller("Deployment", Some("\n    matchLabels:\n      app: rng"), "{app: rng, tier: web}");
        assert_eq!(fine.selector_problem(), None);
        let wrong = controller("Deployment", Some("\n    matchLabels:\n      app: rng\n      tier: web"), "{app: rng}");
        assert_eq!(
            wrong.selector_problem(),
            Some(SelectorProblem::Mismatch { selector: "app=rng,tier=web".into(), unmet: vec!["tier=web".into()] })
        );
        assert_eq!(
            wrong.api_message(&wrong.selector_problem().unwrap()),
            "spec.template.metadata.labels: Invalid value: {\"app\":\"rng\"}: `selector` does not match template `labels`"
        );
        assert_eq!(wrong.template_labels_at, Some(YamlPosition { line: 11, column: 6 }));
        assert!(matches!(wrong.spec_selector, SelectorField::Mapping { at: YamlPosition { line: 5, column: 2 }, .. }));
    }

    #[test]
    fn match_expressions_are_evaluated_like_kubernetes() {
        let labels = "{app: rng, env: dev}";
        for (expressions, unmet) in [
            ("[{key: app, operator: In, values: [rng, web]}]", None),
            ("[{key: app, operator: In, values: [web]}]", Some("app in (web)")),
            ("[{key: env, operator: NotIn, values: [prod]}]", None),
            ("[{key: missing, operator: NotIn, values: [x]}]", None),
            ("[{key: env, operator: NotIn, values: [dev, prod]}]", Some("env notin (dev,prod)")),
            ("[{key: app, operator: Exists}]", None),
            ("[{key: canary, operator: Exists}]", Some("canary")),
            ("[{key: canary, operator: DoesNotExist}]", None),
            ("[{key: env, operator: DoesNotExist, values: []}]", Some("!env")),
        ] {
            let object = controller("ReplicaSet", Some(&format!(" {{matchExpressions: {expressions}}}")), labels);
            assert_eq!(mismatch(&object), unmet.map(|u| vec![u.to_string()]), "{expressions}");
        }
        // Block style, together with matchLabels: every requirement must hold.
        let object = controller(
            "DaemonSet",
            Some(
                "\n    matchLabels: {app: rng}\n    matchExpressions:\n    - key: env\n      operator: In\n      values:\n      - prod",
            ),
            labels,
        );
        assert_eq!(mismatch(&object), Some(vec!["env in (prod)".to_string()]));
    }

    #[test]
    fn selectors_the_api_server_cannot_read_are_left_alone() {
        for selector in [
            " {matchExpressions: [{key: app, operator: Near, values: [x]}]}",
            " {matchExpressions: [{key: app, operator: In}]}",
            " {matchExpressions: [{key: app, operator: Exists, values: [x]}]}",
            " {matchExpressions: [{operator: Exists}]}",
            " {matchExpressions: [app]}",
            " {matchLabels: {app: {nested: x}}}",
            " {matchLabels: {\"bad key!\": x}}",
            " {app: other}",
            " [app]",
        ] {
            let object = controller("Deployment", Some(selector), "{app: rng}");
            assert_eq!(object.selector_problem(), None, "{selector}");
        }
        // Not apps/v1: not judged.
        let mut object = controller("Deployment", Some(" {matchLabels: {app: other}}"), "{app: rng}");
        object.api_version = Some("extensions/v1beta1".into());
        assert_eq!(object.selector_problem(), None);
    }

    #[test]
    fn missing_and_empty_selectors_in_the_api_servers_words() {
        for (kind, selector, problem, message) in [
            ("Deployment", None, SelectorProblem::Missing, "spec.selector: Required value"),
            ("ReplicaSet", Some(""), SelectorProblem::Missing, "spec.selector: Required value"),
            ("Deployment", Some(" null"), SelectorProblem::Missing, "spec.selector: Required value"),
            (
                "DaemonSet",
                None,
                SelectorProblem::Missing,
                "spec.template.metadata.labels: Invalid value: {\"app\":\"rng\"}: `selector` does not match template `labels`",
            ),
            (
                "Deployment",
                Some(" {}"),
                SelectorProblem::Empty,
                "spec.selector: Invalid value: {}: empty selector is invalid for deployment",
            ),
            (
                "ReplicaSet",
                Some(" {matchLabels: {}, matchExpressions: []}"),
                SelectorProblem::Empty,
                "spec.selector: Invalid value: {}: empty selector is invalid for deployment",
            ),
            (
                "DaemonSet",
                Some("\n    matchLabels:"),
                SelectorProblem::Empty,
                "spec.selector: Invalid value: {}: empty selector is invalid for daemonset",
            ),
        ] {
            let object = controller(kind, selector, "{app: rng}");
            assert_eq!(object.selector_problem(), Some(problem.clone()), "{kind} {selector:?}");
            assert_eq!(object.api_message(&problem), message, "{kind} {selector:?}");
        }
    }

    #[test]
    fn substituted_values_are_judged_when_the_step_runs() {
        let template = controller("Deployment", Some(" {matchLabels: {app: rng}}"), "{app: \"${{ name }}\"}");
        assert_eq!(template.selector_problem(), None);
        let selector = controller(
            "Deployment",
            Some(" {matchExpressions: [{key: track, operator: In, values: [\"${{ track }}\"]}]}"),
            "{app: rng}",
        );
        assert_eq!(selector.selector_problem(), None);
    }

    #[test]
    fn a_template_without_labels_prints_null() {
        let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: rng\nspec:\n  selector: {matchLabels: {app: rng}}\n  template:\n    spec: {}\n";
        let object = scan(text).objects.remove(0);
        let problem = object.selector_problem().expect("a mismatch");
        assert_eq!(
            object.api_message(&problem),
            "spec.template.metadata.labels: Invalid value: null: `selector` does not match template `labels`"
        );
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
            ("0o17", Some("a number")),
            ("0b101", Some("a number")),
            ("1_000", Some("a number")),
            ("1__0", None),
            ("_", None),
            ("yEs", Some("a boolean")),
            ("Yes-no", None),
            ("v1", None),
            ("rng", None),
            ("1.2.3", None),
        ] {
            assert_eq!(yaml11_type(text), expected, "{text}");
        }
    }
}
