//! pest parse tree → typed AST. Nothing of pest leaves this module: callers get a [`Script`] and
//! diagnostics. Broken lines are recovered (see the grammar's header), so one parse reports every
//! syntax error in the file and still yields the AST of everything else.

use pest::Parser as _;
use pest::iterators::Pair;

use super::ast::*;
use super::expected;
use crate::diagnostic::{Diagnostic, Diagnostics, Omitted, did_you_mean};
use crate::model::duration;
use crate::model::{Kind, LabelChange, LabelChangeKind, ObjectRef, Operator, Requirement, Selector};
use crate::span::{Span, Spanned};

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/rollout.pest"]
pub(crate) struct RolloutParser;

/// The result of parsing: the AST of everything that parsed, and the syntax errors.
#[derive(Debug)]
pub struct Parsed {
    pub script: Script,
    /// The first [`KEPT_PER_FILE`](crate::diagnostic::KEPT_PER_FILE) syntax errors, by position.
    pub diagnostics: Vec<Diagnostic>,
    /// Syntax errors beyond those.
    pub omitted: Omitted,
}

/// Parses a whole script. Never panics; always returns an AST (possibly partial).
///
/// The file is parsed one top-level item (line, setting or scenario) at a time, so pest's token
/// queue holds one item, not the whole file: memory stays proportional to the AST.
pub fn parse(source: &str) -> Parsed {
    let mut builder =
        Builder { source, base: 0, diagnostics: Diagnostics::default(), unclosed: None, heredoc_ran_to_the_end: false };
    let script = builder.script();
    let (diagnostics, omitted) = builder.diagnostics.finish();
    Parsed { script, diagnostics, omitted }
}

struct Builder<'s> {
    source: &'s str,
    /// Where the text pest is parsing starts in `source`: pairs' positions are relative to it.
    base: usize,
    diagnostics: Diagnostics,
    /// Set by `scenario` when the scenario it read has no closing `}`.
    unclosed: Option<Span>,
    /// Set when inline YAML is never closed: it runs to the end of the file, taking any `}`
    /// with it, so an unclosed scenario there is its doing and not reported again.
    heredoc_ran_to_the_end: bool,
}

/// The word a line starts with (what would be a step keyword), and its span.
fn first_word(text: &str, offset: usize) -> Option<(String, Span)> {
    let trimmed = text.trim_start_matches([' ', '\t']);
    let start = offset + (text.len() - trimmed.len());
    let word: String = trimmed.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
    (!word.is_empty()).then(|| {
        let span = Span::new(start, start + word.len());
        (word, span)
    })
}

impl<'s> Builder<'s> {
    /// Where a pair starts in the whole source.
    fn start_of(&self, pair: &Pair<'_, Rule>) -> usize {
        self.base + pair.as_span().start()
    }

    /// The pair's span without the trailing blanks that pest's implicit whitespace leaves in it.
    fn span_of(&self, pair: &Pair<'_, Rule>) -> Span {
        let start = self.start_of(pair);
        Span::new(start, start + pair.as_str().trim_end_matches([' ', '\t']).len())
    }

    fn spanned_text(&self, pair: &Pair<'_, Rule>) -> Spanned<String> {
        Spanned::new(pair.as_str().to_string(), self.span_of(pair))
    }

    fn script(&mut self) -> Script {
        let source = self.source;
        let span = Span::new(0, source.trim_end_matches([' ', '\t']).len());
        let mut items = Vec::new();
        // The first of consecutive unclosed scenarios, and how many follow it.
        let mut unclosed_run: Option<(Span, usize)> = None;
        while self.base < source.len() {
            let item = match RolloutParser::parse(Rule::next_item, &source[self.base..]) {
                Ok(mut pairs) => match pairs.next() {
                    Some(item) if !item.as_str().is_empty() => item,
                    // Every non-empty text is some item (a bad line at worst); stop rather than loop.
                    _ => break,
                },
                Err(error) => {
                    // Recovery makes this unreachable in practice; keep a clear error if it ever happens.
                    self.diagnostics.push(expected::describe(source, self.base, &error));
                    break;
                }
            };
            let next = self.base + item.as_span().end();
            if item.as_rule() == Rule::scenario_open {
                // Reads on to the scenario's end, and leaves `self.base` there.
                items.push(FileItem::Scenario(self.scenario(item, next)));
                match (self.unclosed.take(), &mut unclosed_run) {
                    (Some(_), Some((_, following))) => *following += 1,
                    (Some(opened), None) => unclosed_run = Some((opened, 0)),
                    (None, _) => self.report_unclosed(unclosed_run.take()),
                }
                continue;
            } else {
                self.report_unclosed(unclosed_run.take());
                match item.as_rule() {
                    Rule::blank_line => items.push(FileItem::Blank),
                    Rule::comment_line => items.push(FileItem::Comment(self.comment_of(item))),
                    Rule::setting_line => items.push(FileItem::Setting(self.setting_line(item))),
                    Rule::bad_line => self.bad_line(&item, false),
                    _ => {}
                }
            }
            self.base = next;
        }
        self.report_unclosed(unclosed_run);
        Script { items, span }
    }

    /// One error for a run of unclosed scenarios: 10,000 `scenario "s" {` lines are one mistake.
    fn report_unclosed(&mut self, run: Option<(Span, usize)>) {
        let Some((opened, following)) = run else { return };
        let message = match following {
            0 => "this scenario is never closed".to_string(),
            1 => "this scenario is never closed, nor is the one after it".to_string(),
            n => format!("this scenario is never closed, nor are the {n} after it"),
        };
        let help = if following == 0 {
            "add a line with `}` after the scenario's last step"
        } else {
            "scenarios do not nest: end each with a line holding `}` before the next `scenario`"
        };
        self.diagnostics.push(
            Diagnostic::error("rehearse::syntax::unclosed_scenario", message).label(opened, "opened here").help(help),
        );
    }

    fn comment_of(&mut self, pair: Pair<'s, Rule>) -> Spanned<String> {
        let comment = pair.into_inner().find(|p| p.as_rule() == Rule::comment).expect("comment line has a comment");
        self.spanned_text(&comment)
    }

    /// The comment inside an `eol` pair, if any.
    fn eol_comment(&mut self, pair: Pair<'s, Rule>) -> Option<Spanned<String>> {
        pair.into_inner().find(|p| p.as_rule() == Rule::comment).map(|c| self.spanned_text(&c))
    }

    /// A scenario, from its opening line (`open`, which ends at `end`) to its close, read one
    /// item at a time like the file; leaves `self.base` where the scenario ends.
    fn scenario(&mut self, open: Pair<'s, Rule>, mut end: usize) -> Scenario {
        let start = self.start_of(&open);
        let mut inner = open.into_inner();
        let keyword = inner.next().expect("scenario keyword");
        let keyword_start = self.start_of(&keyword);
        let head = inner.next().expect("scenario head");
        let (name, comment) = if head.as_rule() == Rule::scenario_head {
            let mut head = head.into_inner();
            let name = self.string(head.next().expect("scenario name"));
            let comment = self.eol_comment(head.next().expect("eol"));
            (name, comment)
        } else {
            let text = head.as_str().trim_end();
            let at = self.span_of(&head);
            self.diagnostics.push(
                Diagnostic::error("rehearse::syntax::scenario_header", "a scenario needs a quoted name and `{`")
                    .label(Span::new(self.start_of(&keyword), at.start + text.len()), "expected `scenario \"name\" {`")
                    .help("write the header as `scenario \"what this rehearses\" {` and close it with `}` on its own line"),
            );
            (Spanned::new(String::new(), Span::new(at.start, at.start)), None)
        };
        let source = self.source;
        let mut items = Vec::new();
        let mut closing_comment = None;
        loop {
            self.base = end;
            let item = match RolloutParser::parse(Rule::next_scenario_item, &source[end..]) {
                Ok(mut pairs) => match pairs.next() {
                    Some(item) => item,
                    None => break,
                },
                Err(error) => {
                    // Recovery makes this unreachable in practice; keep a clear error if it ever happens.
                    self.diagnostics.push(expected::describe(source, end, &error));
                    break;
                }
            };
            end += item.as_span().end();
            match item.as_rule() {
                Rule::blank_line => items.push(ScenarioItem::Blank),
                Rule::comment_line => items.push(ScenarioItem::Comment(self.comment_of(item))),
                Rule::setting_line => items.push(ScenarioItem::Setting(self.setting_line(item))),
                Rule::step_line => {
                    let span = self.span_of(&item);
                    // A step that could not be built (its error reported) still makes the
                    // scenario one with content: no "has no steps" beside that error.
                    items.push(self.step_line(item).map_or(ScenarioItem::Invalid(span), ScenarioItem::Step));
                }
                Rule::bad_line => {
                    items.push(ScenarioItem::Invalid(self.span_of(&item)));
                    self.bad_line(&item, true);
                }
                Rule::scenario_close => {
                    let closing_line = item.clone().into_inner().find(|p| p.as_rule() == Rule::closing_line);
                    if let Some(eol) =
                        closing_line.and_then(|line| line.into_inner().find(|p| p.as_rule() == Rule::eol))
                    {
                        closing_comment = self.eol_comment(eol);
                    }
                    if item.as_str().is_empty() && !self.heredoc_ran_to_the_end {
                        // Reported by `script`, which folds a run of unclosed scenarios into one error.
                        self.unclosed = Some(Span::new(keyword_start, name.span.end));
                    }
                    break;
                }
                // Every other item takes at least one character; stop rather than loop.
                _ if item.as_str().is_empty() => break,
                _ => {}
            }
        }
        self.base = end;
        let span = Span::new(start, start + source[start..end].trim_end_matches([' ', '\t']).len());
        Scenario { name, items, comment, closing_comment, span }
    }

    fn setting_line(&mut self, pair: Pair<'s, Rule>) -> Setting {
        let span = self.span_of(&pair);
        let mut inner = pair.into_inner();
        let setting = inner.next().expect("setting").into_inner().next().expect("setting kind");
        let comment = self.eol_comment(inner.next().expect("eol"));
        let value = setting.into_inner().nth(1).expect("setting value");
        let kind = match value.as_rule() {
            Rule::duration => SettingKind::Timeout(self.duration(value)),
            Rule::integer => {
                let n = self.integer(value);
                let nodes = u32::try_from(n.value).unwrap_or(u32::MAX);
                SettingKind::Nodes(Spanned::new(nodes, n.span))
            }
            _ => SettingKind::BaseDir(self.string(value)),
        };
        Setting { kind, comment, span }
    }

    fn step_line(&mut self, pair: Pair<'s, Rule>) -> Option<Step> {
        let span = self.span_of(&pair);
        let mut within = None;
        let mut comment = None;
        let mut kind = None;
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::step => kind = self.step(part.into_inner().next().expect("step kind")),
                Rule::within => within = Some(self.duration(part.into_inner().nth(1).expect("within duration"))),
                Rule::eol => comment = self.eol_comment(part),
                _ => {}
            }
        }
        let end = comment.as_ref().map_or(span.end, |c| c.span.start);
        let span = Span::new(span.start, span.start + self.source[span.start..end].trim_end().len());
        Some(Step { kind: kind?, within, comment, span })
    }

    fn step(&mut self, pair: Pair<'s, Rule>) -> Option<StepKind> {
        let rule = pair.as_rule();
        let span = self.span_of(&pair);
        // Operands after the keyword.
        let mut args = pair.into_inner();
        args.next(); // the step's keyword
        let kind = match rule {
            Rule::apply => {
                let source = args.next()?;
                StepKind::Apply(match source.as_rule() {
                    Rule::heredoc => ApplySource::Inline(self.heredoc(source)?),
                    _ => ApplySource::Path(self.string(source)),
                })
            }
            Rule::convert => {
                let source = self.object_ref(args.next()?);
                args.next(); // `to`
                let to = self.spanned_text(&args.next()?);
                let to_kind = Kind::parse(&to.value);
                StepKind::Convert { source, to, to_kind }
            }
            Rule::label => {
                let target = self.target(args.next()?);
                StepKind::Label { target, changes: args.map(|c| self.label_change(c)).collect() }
            }
            Rule::annotate => {
                let target = self.target(args.next()?);
                StepKind::Annotate { target, changes: args.map(|c| self.label_change(c)).collect() }
            }
            Rule::select => {
                let service = self.object_ref(args.next()?);
                let mut next = args.next()?;
                let mode = if next.as_rule() == Rule::select_op {
                    let mode = if next.as_str() == "+=" { SelectMode::Extend } else { SelectMode::Remove };
                    next = args.next()?;
                    mode
                } else {
                    SelectMode::Replace
                };
                StepKind::Select { service, mode, selector: self.selector(next) }
            }
            Rule::template => {
                let controller = self.object_ref(args.next()?);
                StepKind::Template { controller, changes: args.map(|c| self.label_change(c)).collect() }
            }
            Rule::remove_from_lb | Rule::add_to_lb => {
                let pods = self.target(args.next()?);
                let service = args.nth(1).map(|s| self.object_ref(s));
                if rule == Rule::remove_from_lb {
                    StepKind::RemoveFromLb { pods, service }
                } else {
                    StepKind::AddToLb { pods, service }
                }
            }
            Rule::expect_traffic => {
                let service = self.object_ref(args.next()?);
                let expectation = self.traffic_expectation(args.next()?);
                StepKind::ExpectTraffic { service, expectation }
            }
            Rule::expect => {
                let subject = self.target(args.next()?);
                let expectation = self.expectation(args.next()?);
                StepKind::Expect { subject, expectation }
            }
            Rule::wait => {
                let what = args.next()?;
                let mut inner = what.clone().into_inner();
                StepKind::Wait(match what.as_rule() {
                    Rule::wait_rollout => WaitFor::Rollout(self.object_ref(inner.nth(1)?)),
                    Rule::wait_condition => {
                        let target = self.target(inner.next()?);
                        let mut condition = inner.next()?.into_inner();
                        let name = self.spanned_text(&condition.next()?);
                        let status = condition.next().map(|s| self.spanned_text(&s));
                        WaitFor::Condition { target, condition: name, status }
                    }
                    _ => WaitFor::Deleted(self.target(inner.next()?)),
                })
            }
            Rule::let_binding => {
                let name = self.spanned_text(&args.next()?);
                let value = args.next()?;
                let value = match value.as_rule() {
                    Rule::one_of => Binding::OneOf(self.selection(value.into_inner().nth(1)?)),
                    Rule::label_of => {
                        let mut inner = value.into_inner();
                        let key = self.spanned_text(&inner.nth(1)?);
                        Binding::LabelOf { key, target: self.target(inner.nth(1)?) }
                    }
                    Rule::name_of => Binding::NameOf(self.target(value.into_inner().nth(2)?)),
                    Rule::object_ref => Binding::Object(self.object_ref(value)),
                    Rule::string => Binding::Text(self.string(value)),
                    _ => Binding::Number(self.integer(value)),
                };
                StepKind::Let { name, value }
            }
            Rule::guard => {
                let service = self.object_ref(args.next()?);
                let invariant = args.next()?;
                let invariant = match invariant.as_rule() {
                    Rule::always_serving => Invariant::AlwaysServing(self.span_of(&invariant)),
                    _ => Invariant::AtLeast(self.count(invariant.into_inner().nth(1)?)),
                };
                StepKind::Guard { service, invariant, expect_violation: args.next().is_some() }
            }
            Rule::expect_refused => {
                let mut next = args.next()?;
                let message = if next.as_rule() == Rule::string {
                    let message = self.string(next);
                    next = args.next()?;
                    Some(message)
                } else {
                    None
                };
                let inner_span = self.span_of(&next);
                let kind = self.step(next)?;
                let step = Step { kind, within: None, comment: None, span: inner_span };
                StepKind::ExpectRefused { message, step: Box::new(step) }
            }
            Rule::delete => StepKind::Delete { target: self.target(args.next()?) },
            Rule::restart => StepKind::Restart { target: self.object_ref(args.next()?) },
            Rule::pause => StepKind::Pause { target: self.object_ref(args.next()?) },
            Rule::resume => StepKind::Resume { target: self.object_ref(args.next()?) },
            Rule::undo => {
                let target = self.object_ref(args.next()?);
                let revision = args.nth(2).map(|count| self.count(count));
                StepKind::Undo { target, revision }
            }
            Rule::scale => {
                let target = self.object_ref(args.next()?);
                let replicas = self.count(args.nth(1)?);
                StepKind::Scale { target, replicas }
            }
            Rule::run => {
                let name = self.spanned_text(&args.next()?);
                let mut image = None;
                let mut labels = Vec::new();
                for option in args {
                    let rule = option.as_rule();
                    let mut inner = option.into_inner();
                    inner.next(); // keyword
                    if rule == Rule::run_image {
                        image = Some(self.string(inner.next()?));
                    } else {
                        labels.extend(inner.map(|c| self.label_change(c)));
                    }
                }
                StepKind::Run { name, image, labels }
            }
            Rule::snapshot => StepKind::Snapshot { name: self.string(args.next()?) },
            _ => {
                self.diagnostics.push(
                    Diagnostic::error("rehearse::syntax::internal", "this step could not be read")
                        .label(span, "here")
                        .help("please report this script: the grammar accepted a step the parser does not know"),
                );
                return None;
            }
        };
        Some(kind)
    }

    fn traffic_expectation(&mut self, pair: Pair<'s, Rule>) -> TrafficExpectation {
        let rule = pair.as_rule();
        let span = self.span_of(&pair);
        let mut inner = operands(pair);
        match rule {
            Rule::traffic_share => {
                let percent = inner.next().expect("percent");
                let value = percent.as_str().trim_end_matches('%').parse().unwrap_or(0.0);
                let percent = Spanned::new(value, self.span_of(&percent));
                TrafficExpectation::Share { percent, pods: self.target(inner.next().expect("pods")) }
            }
            Rule::traffic_exact => TrafficExpectation::Exactly(self.target(inner.next().expect("pods"))),
            Rule::traffic_includes => TrafficExpectation::Includes(self.target(inner.next().expect("pod"))),
            Rule::traffic_excludes => TrafficExpectation::Excludes(self.target(inner.next().expect("pod"))),
            Rule::traffic_count => TrafficExpectation::Count(self.count(inner.next().expect("count"))),
            _ => TrafficExpectation::None(span),
        }
    }

    fn expectation(&mut self, pair: Pair<'s, Rule>) -> Expectation {
        let rule = pair.as_rule();
        let span = self.span_of(&pair);
        let mut inner = operands(pair);
        match rule {
            Rule::expect_count => Expectation::Count(self.count(inner.next().expect("count"))),
            Rule::expect_exists => Expectation::Exists(span),
            Rule::expect_absent => Expectation::Absent(span),
            Rule::expect_replaced => Expectation::Replaced(span),
            Rule::expect_orphaned => Expectation::Orphaned(span),
            Rule::expect_adopted => Expectation::Adopted { by: inner.next().map(|o| self.object_ref(o)), span },
            Rule::expect_labels => Expectation::Labels(self.selector(inner.next().expect("selector"))),
            Rule::expect_rolled_out => Expectation::RolledOut(span),
            _ => Expectation::OnePerNode(span),
        }
    }

    fn target(&mut self, pair: Pair<'s, Rule>) -> Target {
        let inner = pair.into_inner().next().expect("target kind");
        match inner.as_rule() {
            Rule::variable => Target::Variable(self.variable(inner)),
            Rule::object_ref => Target::Object(self.object_ref(inner)),
            _ => Target::Selection(self.selection(inner)),
        }
    }

    fn selection(&mut self, pair: Pair<'s, Rule>) -> Selection {
        let span = self.span_of(&pair);
        let mut inner = pair.into_inner();
        let kind_text = self.spanned_text(&inner.next().expect("kind"));
        let kind = Kind::parse(&kind_text.value);
        let selector = inner.find(|p| p.as_rule() == Rule::selector).map(|s| self.selector(s));
        Selection { kind_text, kind, selector, span }
    }

    fn variable(&mut self, pair: Pair<'s, Rule>) -> Spanned<String> {
        let span = self.span_of(&pair);
        Spanned::new(pair.as_str()[1..].to_string(), span)
    }

    fn object_ref(&mut self, pair: Pair<'s, Rule>) -> ObjectRef {
        let mut inner = pair.into_inner();
        let kind_text = self.spanned_text(&inner.next().expect("kind"));
        let name = self.spanned_text(&inner.next().expect("name"));
        let kind = Kind::parse(&kind_text.value);
        ObjectRef { kind_text, kind, name }
    }

    fn count(&mut self, pair: Pair<'s, Rule>) -> Count {
        let inner = pair.into_inner().next().expect("count value");
        match inner.as_rule() {
            Rule::variable => Count::Variable(self.variable(inner)),
            _ => Count::Literal(self.integer(inner)),
        }
    }

    fn integer(&mut self, pair: Pair<'s, Rule>) -> Spanned<u64> {
        let span = self.span_of(&pair);
        let value = pair.as_str().parse().unwrap_or_else(|_| {
            self.diagnostics.push(
                Diagnostic::error("rehearse::syntax::number_too_large", "this number is too large")
                    .label(span, "does not fit in 64 bits")
                    .help("counts and node numbers are small whole numbers"),
            );
            0
        });
        Spanned::new(value, span)
    }

    fn duration(&mut self, pair: Pair<'s, Rule>) -> Spanned<std::time::Duration> {
        let span = self.span_of(&pair);
        let value = duration::parse(pair.as_str()).filter(|d| *d <= duration::LONGEST);
        let value = value.unwrap_or_else(|| {
            self.diagnostics.push(
                Diagnostic::error("rehearse::syntax::duration_too_large", "this duration is too large")
                    .label(span, "longer than a day")
                    .help("a step or a scenario's timeout waits at most 24h; write e.g. `30s`, `2m` or `1h30m`"),
            );
            // Not zero: the mistake is reported once, not again as a timeout of zero.
            duration::LONGEST
        });
        Spanned::new(value, span)
    }

    fn string(&mut self, pair: Pair<'s, Rule>) -> Spanned<String> {
        let span = self.span_of(&pair);
        let raw = pair.into_inner().next().map_or("", |p| p.as_str());
        let mut value = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                value.push(c);
                continue;
            }
            match chars.next() {
                Some('n') => value.push('\n'),
                Some('t') => value.push('\t'),
                Some(other) => value.push(other),
                None => {}
            }
        }
        Spanned::new(value, span)
    }

    fn label_value(&mut self, pair: Pair<'s, Rule>) -> Spanned<String> {
        let span = self.span_of(&pair);
        match pair.into_inner().next() {
            Some(inner) if inner.as_rule() == Rule::string => self.string(inner),
            // `$name` is kept as written; exec/substitute.rs replaces it when the step runs.
            Some(inner) => self.spanned_text(&inner),
            None => Spanned::new(String::new(), span),
        }
    }

    fn label_change(&mut self, pair: Pair<'s, Rule>) -> LabelChange {
        let change = pair.into_inner().next().expect("assignment or removal");
        let is_assignment = change.as_rule() == Rule::assignment;
        let mut inner = change.into_inner();
        let key = self.spanned_text(&inner.next().expect("key"));
        let kind = if is_assignment {
            LabelChangeKind::Set(self.label_value(inner.next().expect("value")))
        } else {
            LabelChangeKind::Remove
        };
        LabelChange { key, kind }
    }

    fn selector(&mut self, pair: Pair<'s, Rule>) -> Selector {
        let span = self.span_of(&pair);
        let requirements = pair.into_inner().map(|r| self.requirement(r)).collect();
        Selector { requirements, span }
    }

    fn requirement(&mut self, pair: Pair<'s, Rule>) -> Requirement {
        let rule = pair.as_rule();
        let span = self.span_of(&pair);
        let mut inner = pair.into_inner();
        let key = self.spanned_text(&inner.next().expect("key"));
        let (operator, values) = match rule {
            Rule::set_requirement => {
                let operator =
                    if inner.next().expect("operator").as_str() == "in" { Operator::In } else { Operator::NotIn };
                (operator, inner.map(|v| self.label_value(v)).collect())
            }
            Rule::equality => {
                let operator = if inner.next().expect("operator").as_str() == "!=" {
                    Operator::NotEquals
                } else {
                    Operator::Equals
                };
                (operator, vec![self.label_value(inner.next().expect("value"))])
            }
            Rule::not_exists => (Operator::DoesNotExist, Vec::new()),
            _ => (Operator::Exists, Vec::new()),
        };
        Requirement { key, operator, values, span }
    }

    fn heredoc(&mut self, pair: Pair<'s, Rule>) -> Option<InlineYaml> {
        let span = self.span_of(&pair);
        let mut tag = String::new();
        let mut comment = None;
        let mut body = None;
        let mut close = None;
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::heredoc_tag => tag = part.as_str().to_string(),
                Rule::comment => comment = Some(self.spanned_text(&part)),
                Rule::heredoc_body => body = Some(part),
                Rule::heredoc_close => close = Some(part),
                _ => {}
            }
        }
        let (body, close) = (body?, close?);
        if close.as_str().is_empty() {
            self.heredoc_ran_to_the_end = true;
            self.diagnostics.push(
                Diagnostic::error(
                    "rehearse::syntax::unterminated_heredoc",
                    format!("inline YAML `<<{tag}` is never closed"),
                )
                .label(Span::new(span.start, span.start + 2 + tag.len()), "opened here")
                .help(format!("end the YAML with a line holding only `{tag}`")),
            );
            return None;
        }
        // Remove the indentation all non-blank lines share, so YAML can be indented with the script.
        let body_text = body.as_str();
        let indent = body_text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| &l[..l.len() - l.trim_start_matches([' ', '\t']).len()])
            .reduce(|common, next| {
                let shared = common.bytes().zip(next.bytes()).take_while(|(a, b)| a == b).count();
                &common[..shared]
            })
            .unwrap_or("");
        let mut text = String::with_capacity(body_text.len());
        let mut line_starts = Vec::new();
        let mut offset = self.start_of(&body);
        for line in body_text.split_inclusive('\n') {
            let content = line.trim_end_matches(['\n', '\r']);
            let rest = content.strip_prefix(indent).unwrap_or("");
            line_starts.push(offset + (content.len() - rest.len()));
            text.push_str(rest);
            text.push('\n');
            offset += line.len();
        }
        Some(InlineYaml { tag, comment, text, line_starts, span })
    }

    /// A line that is not a valid statement: say precisely what is wrong with it.
    fn bad_line(&mut self, pair: &Pair<'s, Rule>, in_scenario: bool) {
        let start = self.start_of(pair);
        let text = pair.as_str();
        let line_end = text.find('\n').map_or(text.len(), |i| i);
        let line_span = Span::new(start, start + text[..line_end].trim_end().len());
        let Some((word, word_span)) = first_word(text, start) else {
            let shown = text[..line_end].trim();
            self.diagnostics.push(
                Diagnostic::error("rehearse::syntax::unexpected", format!("unexpected `{shown}`"))
                    .label(line_span, "not a step, a setting or a comment")
                    .help("each line holds one step, setting or `# comment`"),
            );
            return;
        };
        let is_step = STEP_KEYWORDS.contains(&word.as_str());
        let is_setting = SETTING_KEYWORDS.contains(&word.as_str());
        if is_step && !in_scenario {
            self.diagnostics.push(
                Diagnostic::error(
                    "rehearse::syntax::step_outside_scenario",
                    format!("`{word}` must be inside a scenario"),
                )
                .label(line_span, "a step outside any scenario")
                .help("put steps between `scenario \"name\" {` and `}`"),
            );
            return;
        }
        if is_step || is_setting {
            let lone = RolloutParser::parse(Rule::lone_step, &self.source[start..]);
            let diagnostic = match lone {
                Err(error) => expected::describe(self.source, start, &error),
                Ok(_) => Diagnostic::error("rehearse::syntax::unexpected", format!("`{word}` is not allowed here"))
                    .label(line_span, "here")
                    .help("settings and steps go inside a scenario; settings may also start the file"),
            };
            self.diagnostics.push(diagnostic);
            return;
        }
        let candidates = STEP_KEYWORDS.iter().chain(SETTING_KEYWORDS.iter()).copied();
        let mut diagnostic = Diagnostic::error("rehearse::syntax::unknown_step", format!("unknown step `{word}`"))
            .label(word_span, "not a step or a setting");
        diagnostic = match did_you_mean(&word, candidates) {
            Some(suggestion) => diagnostic.help(format!("did you mean `{suggestion}`?")),
            None => diagnostic.help(format!("the steps are: {}", STEP_KEYWORDS.join(", "))),
        };
        self.diagnostics.push(diagnostic);
    }
}

/// The operands of an expectation (percent, target, count, object, selector), without its keywords.
fn operands<'s>(pair: Pair<'s, Rule>) -> impl Iterator<Item = Pair<'s, Rule>> {
    pair.into_inner().filter(|p| {
        matches!(p.as_rule(), Rule::percent | Rule::target | Rule::count | Rule::object_ref | Rule::selector)
    })
}
