//! Problems found in a script, with the span they point at. Rendering is separate: the library
//! only implements `miette::Diagnostic`; the binary picks the graphical or plain renderer.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock};

use miette::{LabeledSpan, MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents};

use crate::span::Span;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// Messages, labels and help longer than this (in bytes) are cut in the middle.
pub const LONGEST_SHOWN_TEXT: usize = 1_000;

/// Lines longer than this (in bytes) are not shown in a diagnostic's snippet.
pub const LONGEST_SHOWN_LINE: usize = 1_000;

/// One labelled location in the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub text: String,
}

/// A problem with a stable code (`rehearse::group::name`), a primary label, optional secondary
/// labels and help. The file it belongs to is attached by [`Diagnostic::with_source`].
#[derive(Clone)]
pub struct Diagnostic {
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    pub labels: Vec<Label>,
    pub help: Option<String>,
    // Shared by every diagnostic of a file, and keeps `Diagnostic` small.
    source: Option<Arc<SourceFile>>,
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: Severity::Error,
            message: shown_text(message.into()),
            labels: Vec::new(),
            help: None,
            source: None,
        }
    }

    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(code, message) }
    }

    pub fn label(mut self, span: Span, text: impl Into<String>) -> Self {
        self.labels.push(Label { span, text: shown_text(text.into()) });
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(shown_text(help.into()));
        self
    }

    pub fn with_source(mut self, source: Arc<SourceFile>) -> Self {
        self.source = Some(source);
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The primary span (the first label), used to order diagnostics by position.
    pub fn primary_span(&self) -> Span {
        self.labels.first().map(|l| l.span).unwrap_or_default()
    }

    /// `file:line:column` of the primary label, when a source is attached.
    pub fn location(&self) -> Option<String> {
        let (file, line, column) = self.position()?;
        Some(format!("{file}:{line}:{column}"))
    }

    /// The diagnostic as it should be rendered: itself, or, when a line its snippet would show is
    /// longer than [`LONGEST_SHOWN_LINE`] (a generated or hostile file may hold megabytes on one
    /// line, printed whole for every problem on it), one without the snippet that says where and
    /// what its labels say in words.
    pub fn for_rendering(&self) -> Cow<'_, Diagnostic> {
        let Some(source) = &self.source else { return Cow::Borrowed(self) };
        let Some(longest) = self.labels.iter().filter_map(|label| source.long_line_near(label.span)).max() else {
            return Cow::Borrowed(self);
        };
        let mut words: Vec<String> = self
            .labels
            .iter()
            .filter(|label| !label.text.is_empty())
            .map(|label| {
                let (line, column) = source.line_column(label.span.start);
                format!("{line}:{column}: {}", label.text)
            })
            .collect();
        words.push(format!("(the source is not shown: a line there is {longest} bytes long)"));
        words.extend(self.help.clone());
        Cow::Owned(Diagnostic {
            message: format!("{}: {}", self.location().unwrap_or_default(), self.message),
            labels: Vec::new(),
            help: Some(words.join("\n")),
            source: None,
            ..self.clone()
        })
    }

    /// The file, 1-based line and column of the primary label, when a source is attached.
    pub fn position(&self) -> Option<(&str, usize, usize)> {
        let source = self.source.as_ref()?;
        let (line, column) = source.line_column(self.primary_span().start);
        Some((source.name(), line, column))
    }
}

/// Control characters that must not reach a terminal as they are (ESC starts escape sequences,
/// CR overwrites the line, bidirectional overrides reorder it), as visible stand-ins: U+2400's
/// "control pictures" for C0 and DEL, U+FFFD for the rest. Newlines and tabs are kept.
fn visible(c: char) -> Option<char> {
    match c {
        '\n' | '\t' => None,
        '\0'..='\x1f' => char::from_u32(0x2400 + c as u32),
        '\x7f' => Some('\u{2421}'),
        '\u{80}'..='\u{9f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => Some('\u{fffd}'),
        _ => None,
    }
}

/// `text` with control characters made visible (see `visible`); borrowed when it has none.
pub fn escape_controls_str(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| visible(c).is_some()) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.chars().map(|c| visible(c).unwrap_or(c)).collect())
}

/// A diagnostic's text as shown: controls made visible, and a text longer than
/// [`LONGEST_SHOWN_TEXT`] (one quoting a megabyte key) cut in the middle, saying how much.
fn shown_text(text: String) -> String {
    let text = escape_controls(text);
    if text.len() <= LONGEST_SHOWN_TEXT {
        return text;
    }
    let boundary = |mut at: usize| {
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        at
    };
    let head = boundary(LONGEST_SHOWN_TEXT * 3 / 4);
    let tail = boundary(text.len() - LONGEST_SHOWN_TEXT / 4);
    format!("{} … ({} bytes not shown) … {}", &text[..head], tail - head, &text[tail..])
}

fn escape_controls(text: String) -> String {
    match escape_controls_str(&text) {
        Cow::Borrowed(_) => text,
        Cow::Owned(escaped) => escaped,
    }
}

/// A script's text as diagnostics render it: named, with its line starts indexed once (miette's
/// own `str` source scans from the start of the text for every snippet, so thousands of
/// diagnostics in a large file would cost time quadratic in its size), and with control
/// characters shown visibly rather than sent to the terminal.
pub struct SourceFile {
    name: String,
    text: Arc<str>,
    language: &'static str,
    /// Line starts of `text`, for `location`.
    lines: OnceLock<Vec<usize>>,
    shown: OnceLock<Shown>,
}

/// The text as rendered: `text` itself, or a copy with control characters replaced.
struct Shown {
    escaped: Option<String>,
    /// Where the copy grew: (offset in `text` just after a replaced character, bytes added so far).
    growth: Vec<(usize, usize)>,
    line_starts: Vec<usize>,
}

fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect()
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: Arc<str>) -> SourceFile {
        SourceFile {
            name: escape_controls(name.into()),
            text,
            language: "rollout",
            lines: OnceLock::new(),
            shown: OnceLock::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// 1-based line and column (in characters) of a byte offset, as [`line_column`].
    pub fn line_column(&self, offset: usize) -> (usize, usize) {
        let starts = self.lines.get_or_init(|| line_starts(&self.text));
        LineIndex { text: &self.text, starts: Cow::Borrowed(starts) }.line_column(offset)
    }

    fn shown(&self) -> &Shown {
        self.shown.get_or_init(|| {
            let text: &str = &self.text;
            if !text.chars().any(|c| visible(c).is_some() || c == '\r') {
                return Shown { escaped: None, growth: Vec::new(), line_starts: line_starts(text) };
            }
            let mut escaped = String::with_capacity(text.len() + 16);
            let mut growth = Vec::new();
            let mut chars = text.char_indices().peekable();
            while let Some((at, c)) = chars.next() {
                // CR before LF ends a line; alone it would move the cursor back over the line.
                let replacement = match c {
                    '\r' if chars.peek().is_some_and(|(_, next)| *next == '\n') => None,
                    c => visible(c),
                };
                match replacement {
                    Some(shown) => {
                        escaped.push(shown);
                        let added = escaped.len() - (at + c.len_utf8());
                        growth.push((at + c.len_utf8(), added));
                    }
                    None => escaped.push(c),
                }
            }
            let line_starts = line_starts(&escaped);
            Shown { escaped: Some(escaped), growth, line_starts }
        })
    }

    /// The length of the longest line a snippet of `span` would show (its lines and one on each
    /// side, miette's context), when it is longer than [`LONGEST_SHOWN_LINE`].
    fn long_line_near(&self, span: Span) -> Option<usize> {
        let starts = self.lines.get_or_init(|| line_starts(&self.text));
        let line_of = |offset: usize| starts.partition_point(|start| *start <= offset).saturating_sub(1);
        let first = line_of(span.start).saturating_sub(1);
        let last = (line_of(span.end.max(span.start)) + 1).min(starts.len() - 1);
        (first..=last)
            .map(|line| starts.get(line + 1).copied().unwrap_or(self.text.len()) - starts[line])
            .filter(|length| *length > LONGEST_SHOWN_LINE)
            .max()
    }

    /// A byte offset of `text` in the rendered text.
    fn shown_offset(&self, offset: usize) -> usize {
        let growth = &self.shown().growth;
        match growth.partition_point(|(after, _)| *after <= offset) {
            0 => offset,
            i => offset + growth[i - 1].1,
        }
    }

    /// A span of `text` as a span of the rendered text.
    fn shown_span(&self, span: Span) -> SourceSpan {
        let start = self.shown_offset(span.start);
        let end = self.shown_offset(span.end.max(span.start));
        SourceSpan::new(start.into(), end - start)
    }
}

impl SourceCode for SourceFile {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let shown = self.shown();
        let text: &str = shown.escaped.as_deref().unwrap_or(&self.text);
        let starts = &shown.line_starts;
        if span.offset() + span.len() > text.len() {
            return Err(MietteError::OutOfBounds);
        }
        // Hand miette only the lines around the span (a few more than it shows: it decides what
        // to show itself), then put the offsets and line numbers back.
        let line_of = |offset: usize| starts.partition_point(|start| *start <= offset) - 1;
        let first_line = line_of(span.offset()).saturating_sub(context_lines_before + 1);
        let last_line = line_of(span.offset() + span.len().saturating_sub(1)) + context_lines_after + 3;
        let from = starts[first_line];
        let to = starts.get(last_line).copied().unwrap_or(text.len());
        let local = SourceSpan::new((span.offset() - from).into(), span.len());
        let inner = text[from..to].read_span(&local, context_lines_before, context_lines_after)?;
        let contents = MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            SourceSpan::new((inner.span().offset() + from).into(), inner.span().len()),
            inner.line() + first_line,
            inner.column(),
            inner.line_count() + first_line,
        )
        .with_language(self.language);
        Ok(Box::new(contents))
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Line starts of a text, for turning many offsets into (line, column) without rescanning the
/// text each time (a scenario of thousands of steps asks once per step).
pub struct LineIndex<'a> {
    text: &'a str,
    starts: Cow<'a, [usize]>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> LineIndex<'a> {
        LineIndex { text, starts: Cow::Owned(line_starts(text)) }
    }

    /// The same as [`line_column`], 1-based.
    pub fn line_column(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|start| *start <= offset);
        let line_start = self.starts[line - 1];
        (line, self.text[line_start..offset].chars().count() + 1)
    }
}

/// Diagnostics kept per file: the first by position. The rest are only counted, so a file of a
/// million broken lines costs a count, not a million rendered messages in memory.
pub const KEPT_PER_FILE: usize = 1000;

/// How many diagnostics were counted but not kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Omitted {
    pub errors: usize,
    pub warnings: usize,
}

impl Omitted {
    pub fn total(&self) -> usize {
        self.errors + self.warnings
    }
}

/// The diagnostics of one file: keeps the first [`KEPT_PER_FILE`] by position (ties in the
/// order reported), counts the others exactly.
#[derive(Debug, Default)]
pub struct Diagnostics {
    kept: Vec<Diagnostic>,
    omitted: Omitted,
}

impl Diagnostics {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.kept.push(diagnostic);
        // Trimming at twice the bound keeps the cost per diagnostic logarithmic.
        if self.kept.len() >= 2 * KEPT_PER_FILE {
            self.trim();
        }
    }

    pub fn extend(&mut self, diagnostics: impl IntoIterator<Item = Diagnostic>) {
        diagnostics.into_iter().for_each(|d| self.push(d));
    }

    /// Counts diagnostics someone else left out.
    pub fn add_omitted(&mut self, omitted: Omitted) {
        self.omitted.errors += omitted.errors;
        self.omitted.warnings += omitted.warnings;
    }

    fn trim(&mut self) {
        self.kept.sort_by_key(|d| (d.primary_span().start, d.primary_span().end));
        if self.kept.len() > KEPT_PER_FILE {
            for dropped in self.kept.drain(KEPT_PER_FILE..) {
                match dropped.severity {
                    Severity::Error => self.omitted.errors += 1,
                    Severity::Warning => self.omitted.warnings += 1,
                }
            }
        }
    }

    /// The kept diagnostics, sorted by position, and the count of the others.
    pub fn finish(mut self) -> (Vec<Diagnostic>, Omitted) {
        self.trim();
        (self.kept, self.omitted)
    }
}

impl fmt::Debug for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Diagnostic")
            .field("code", &self.code)
            .field("severity", &self.severity)
            .field("message", &self.message)
            .field("labels", &self.labels)
            .field("help", &self.help)
            .finish()
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_deref().map(|s| s as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() || self.source.is_none() {
            return None;
        }
        let source = self.source.as_deref()?;
        Some(Box::new(self.labels.iter().enumerate().map(move |(i, label)| {
            let text = (!label.text.is_empty()).then(|| label.text.clone());
            // Offsets into the rendered text, where control characters take more bytes.
            let span = source.shown_span(label.span);
            if i == 0 { LabeledSpan::new_primary_with_span(text, span) } else { LabeledSpan::new_with_span(text, span) }
        })))
    }
}

/// "did you mean" for a misspelt word: the closest candidate within a small edit distance.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        // Cheap length filter first: a 10 MB "word" must not cost an edit-distance matrix.
        .filter(|c| c.len().abs_diff(word.len()) <= 3)
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(distance, c)| *distance > 0 && *distance <= (c.len().max(word.len()) / 3).clamp(1, 3))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_huge_line_or_text_is_not_printed_whole() {
        use std::sync::Arc;

        use super::{Diagnostic, LONGEST_SHOWN_TEXT, SourceFile};
        use crate::span::Span;
        let key = "k".repeat(100_000);
        let text: Arc<str> = format!("scenario \"x\" {{\n    label pods {key}=v\n}}\n").into();
        let source = Arc::new(SourceFile::new("x.rollout", text));
        let diagnostic =
            Diagnostic::error("rehearse::labels::invalid_key", format!("`{key}` is not a valid label key"))
                .label(Span { start: 30, end: 30 + key.len() }, "too long")
                .help("at most 63 characters")
                .with_source(source.clone());
        assert!(diagnostic.message.len() < LONGEST_SHOWN_TEXT + 100, "cut in the middle");
        assert!(
            diagnostic.message.contains("bytes not shown")
                && diagnostic.message.ends_with("` is not a valid label key")
        );
        let shown = diagnostic.for_rendering();
        assert!(shown.source.is_none() && shown.labels.is_empty(), "no snippet of a 100 kB line");
        assert!(shown.message.starts_with("x.rollout:2:16: `kkk"), "{}", &shown.message[..40]);
        let help = shown.help.as_deref().unwrap();
        assert!(help.starts_with("2:16: too long\n(the source is not shown: a line there is 100"), "{help}");
        assert!(help.ends_with("at most 63 characters"), "{help}");
        // Short lines keep their snippet.
        let short = Diagnostic::error("c", "m").label(Span { start: 0, end: 8 }, "l").with_source(source.clone());
        let short_text: Arc<str> = "scenario \"x\" {\n}\n".into();
        let short = Diagnostic { source: Some(Arc::new(SourceFile::new("y", short_text))), ..short };
        assert!(matches!(short.for_rendering(), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn the_line_index_agrees_with_line_column() {
        let text = "ab\n\ncé d\nlast";
        let index = super::LineIndex::new(text);
        for offset in 0..=text.len() + 2 {
            assert_eq!(index.line_column(offset), super::line_column(text, offset), "offset {offset}");
        }
    }

    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let text = "ab\ncdé f\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 3), (2, 1));
        assert_eq!(line_column(text, text.find('f').unwrap()), (2, 5));
    }

    #[test]
    fn suggests_close_words_only() {
        let steps = ["label", "select", "template"];
        assert_eq!(did_you_mean("lable", steps), Some("label"));
        assert_eq!(did_you_mean("selct", steps), Some("select"));
        assert_eq!(did_you_mean("frobnicate", steps), None);
        assert_eq!(did_you_mean("label", steps), None);
    }
}
