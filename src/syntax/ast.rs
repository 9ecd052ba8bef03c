//! The typed syntax tree of a `.rollout` script. Every node carries the span it was parsed from;
//! comments and blank lines are kept so that `rehearse fmt` can reproduce them.

use std::time::Duration;

use crate::model::{Kind, LabelChange, ObjectRef, Selector};
use crate::span::{Span, Spanned};

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Script {
    pub items: Vec<FileItem>,
    pub span: Span,
}

impl Script {
    pub fn scenarios(&self) -> impl Iterator<Item = &Scenario> {
        self.items.iter().filter_map(|item| match item {
            FileItem::Scenario(s) => Some(s),
            _ => None,
        })
    }

    pub fn settings(&self) -> impl Iterator<Item = &Setting> {
        self.items.iter().filter_map(|item| match item {
            FileItem::Setting(s) => Some(s),
            _ => None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub enum FileItem {
    Blank,
    Comment(Spanned<String>),
    Setting(Setting),
    Scenario(Scenario),
}

/// Settings apply to the file (before any scenario) or to the scenario they appear in.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Setting {
    pub kind: SettingKind,
    pub comment: Option<Spanned<String>>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub enum SettingKind {
    /// Default time for each step to be satisfied.
    Timeout(Spanned<Duration>),
    /// Nodes wanted (the simulator creates them; a real cluster must have them).
    Nodes(Spanned<u32>),
    /// Directory that `apply` paths are relative to (itself relative to the script).
    BaseDir(Spanned<String>),
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Scenario {
    pub name: Spanned<String>,
    pub items: Vec<ScenarioItem>,
    /// The trailing comment on the `scenario "..." {` line.
    pub comment: Option<Spanned<String>>,
    /// The trailing comment on its closing `}` line.
    pub closing_comment: Option<Spanned<String>>,
    pub span: Span,
}

impl Scenario {
    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.items.iter().filter_map(|item| match item {
            ScenarioItem::Step(s) => Some(s),
            _ => None,
        })
    }

    pub fn settings(&self) -> impl Iterator<Item = &Setting> {
        self.items.iter().filter_map(|item| match item {
            ScenarioItem::Setting(s) => Some(s),
            _ => None,
        })
    }
}

// Steps dominate scenarios, so boxing them would only add indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub enum ScenarioItem {
    Blank,
    /// A line that did not parse (already reported); kept so later checks know it was there.
    Invalid(Span),
    Comment(Spanned<String>),
    Setting(Setting),
    Step(Step),
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Step {
    pub kind: StepKind,
    /// `within 10s`: this step's own timeout.
    pub within: Option<Spanned<Duration>>,
    pub comment: Option<Spanned<String>>,
    pub span: Span,
}

impl Step {
    /// The keyword the step starts with, as written in scripts.
    pub fn keyword(&self) -> &'static str {
        self.kind.keyword()
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub enum StepKind {
    Apply(ApplySource),
    Convert { source: ObjectRef, to: Spanned<String>, to_kind: Option<Kind> },
    Label { target: Target, changes: Vec<LabelChange> },
    Annotate { target: Target, changes: Vec<LabelChange> },
    Select { service: ObjectRef, mode: SelectMode, selector: Selector },
    Template { controller: ObjectRef, changes: Vec<LabelChange> },
    RemoveFromLb { pods: Target, service: Option<ObjectRef> },
    AddToLb { pods: Target, service: Option<ObjectRef> },
    ExpectTraffic { service: ObjectRef, expectation: TrafficExpectation },
    Expect { subject: Target, expectation: Expectation },
    Wait(WaitFor),
    Let { name: Spanned<String>, value: Binding },
    Guard { service: ObjectRef, invariant: Invariant, expect_violation: bool },
    ExpectRefused { message: Option<Spanned<String>>, step: Box<Step> },
    Delete { target: Target },
    Scale { target: ObjectRef, replicas: Count },
    Restart { target: ObjectRef },
    Pause { target: ObjectRef },
    Resume { target: ObjectRef },
    Undo { target: ObjectRef, revision: Option<Count> },
    Run { name: Spanned<String>, image: Option<Spanned<String>>, labels: Vec<LabelChange> },
    Snapshot { name: Spanned<String> },
}

impl StepKind {
    pub fn keyword(&self) -> &'static str {
        match self {
            StepKind::Apply(_) => "apply",
            StepKind::Convert { .. } => "convert",
            StepKind::Label { .. } => "label",
            StepKind::Annotate { .. } => "annotate",
            StepKind::Select { .. } => "select",
            StepKind::Template { .. } => "template",
            StepKind::RemoveFromLb { .. } => "remove-from-lb",
            StepKind::AddToLb { .. } => "add-to-lb",
            StepKind::ExpectTraffic { .. } => "expect-traffic",
            StepKind::Expect { .. } => "expect",
            StepKind::Wait(_) => "wait",
            StepKind::Let { .. } => "let",
            StepKind::Guard { .. } => "guard",
            StepKind::ExpectRefused { .. } => "expect-refused",
            StepKind::Delete { .. } => "delete",
            StepKind::Scale { .. } => "scale",
            StepKind::Restart { .. } => "restart",
            StepKind::Pause { .. } => "pause",
            StepKind::Resume { .. } => "resume",
            StepKind::Undo { .. } => "undo",
            StepKind::Run { .. } => "run",
            StepKind::Snapshot { .. } => "snapshot",
        }
    }
}

/// Every step keyword, for "did you mean".
pub const STEP_KEYWORDS: [&str; 22] = [
    "apply",
    "convert",
    "label",
    "annotate",
    "select",
    "template",
    "remove-from-lb",
    "add-to-lb",
    "expect-traffic",
    "expect",
    "wait",
    "let",
    "guard",
    "expect-refused",
    "delete",
    "scale",
    "restart",
    "pause",
    "resume",
    "undo",
    "run",
    "snapshot",
];

/// Setting keywords, for "did you mean".
pub const SETTING_KEYWORDS: [&str; 3] = ["timeout", "nodes", "base-dir"];

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub enum ApplySource {
    /// A manifest file or a directory of them, relative to the base directory.
    Path(Spanned<String>),
    /// YAML written in the script between `<<TAG` and `TAG`.
    Inline(InlineYaml),
}

/// Heredoc YAML with the closing tag's indentation removed. `line_starts[i]` is the byte offset in
/// the script where line `i` of `text` begins, so YAML errors map back to the script.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct InlineYaml {
    pub tag: String,
    /// A comment after `<<TAG` on the opening line.
    pub comment: Option<Spanned<String>>,
    pub text: String,
    pub line_starts: Vec<usize>,
    pub span: Span,
}

impl InlineYaml {
    /// The script span of a byte range of `text` (which must not cross a line end).
    pub fn script_span(&self, range: std::ops::Range<usize>) -> Span {
        let before = &self.text[..range.start];
        let line = before.matches('\n').count();
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let start = self.script_offset(line, self.text[line_start..range.start].chars().count());
        Span::new(start, start + range.len())
    }

    /// The script offset of a 0-based line and character column of `text`.
    pub fn script_offset(&self, line: usize, column: usize) -> usize {
        let Some(&start) = self.line_starts.get(line) else {
            return self.span.end;
        };
        let line_text = self.text.lines().nth(line).unwrap_or("");
        let bytes: usize = line_text.chars().take(column).map(char::len_utf8).sum();
        start + bytes
    }
}

/// The variable a label or selector value stands for: `$hash` (also written `"$hash"`) names the
/// `let` variable `hash`, whose value replaces it when the step runs. A label value can never hold
/// `$`, so no literal value reads this way.
pub fn value_variable(value: &str) -> Option<&str> {
    value.strip_prefix('$').filter(|name| super::placeholders::is_identifier(name))
}

/// What a step acts on.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub enum Target {
    /// `$victim`
    Variable(Spanned<String>),
    /// `pod/web-0`
    Object(ObjectRef),
    /// `pods app=rng` or `pods all`
    Selection(Selection),
}

impl Target {
    pub fn span(&self) -> Span {
        match self {
            Target::Variable(v) => v.span,
            Target::Object(o) => o.kind_text.span.to(o.name.span),
            Target::Selection(s) => s.span,
        }
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Selection {
    pub kind_text: Spanned<String>,
    pub kind: Option<Kind>,
    /// `None` means `all`.
    pub selector: Option<Selector>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum SelectMode {
    /// `select svc/x app=rng`: the selector becomes exactly this.
    Replace,
    /// `select svc/x += k=v`: add or change these keys.
    Extend,
    /// `select svc/x -= k`: drop these keys.
    Remove,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub enum TrafficExpectation {
    /// `-> pods app=rng`: exactly these pods receive traffic.
    Exactly(Target),
    /// `-> 25% pods track=canary`: these pods hold this share of the ready endpoints.
    Share {
        percent: Spanned<f64>,
        pods: Target,
    },
    Includes(Target),
    Excludes(Target),
    Count(Count),
    None(Span),
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub enum Expectation {
    Count(Count),
    Exists(Span),
    Absent(Span),
    Replaced(Span),
    Orphaned(Span),
    Adopted { by: Option<ObjectRef>, span: Span },
    Labels(Selector),
    RolledOut(Span),
    OnePerNode(Span),
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub enum WaitFor {
    Rollout(ObjectRef),
    Condition { target: Target, condition: Spanned<String>, status: Option<Spanned<String>> },
    Deleted(Target),
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub enum Binding {
    /// `one pod app=rng`: one of the matching pods, chosen when the step runs.
    OneOf(Selection),
    /// `label pod-template-hash of replicaset app=rng`: the label's value on the one object the
    /// target stands for, read when the step runs.
    LabelOf {
        key: Spanned<String>,
        target: Target,
    },
    /// `name of replicaset app=rng`: the name of the one object the target stands for.
    NameOf(Target),
    Object(ObjectRef),
    Text(Spanned<String>),
    Number(Spanned<u64>),
}

impl Binding {
    /// The kind of the object the variable holds: `None` for text and numbers, and for a kind
    /// rehearse does not know.
    pub fn object_kind(&self) -> Option<Kind> {
        match self {
            Binding::OneOf(selection) => selection.kind,
            Binding::Object(object) => object.kind,
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub enum Invariant {
    /// The service always has at least one ready endpoint.
    AlwaysServing(Span),
    /// The service always has at least this many ready endpoints.
    AtLeast(Count),
}

/// A number, written literally or through a `let` variable.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub enum Count {
    Literal(Spanned<u64>),
    Variable(Spanned<String>),
}

impl Count {
    pub fn span(&self) -> Span {
        match self {
            Count::Literal(n) => n.span,
            Count::Variable(v) => v.span,
        }
    }
}
