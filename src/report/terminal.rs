//! Progress for people: one line per step as it finishes, a live "running" line with elapsed
//! time on a terminal, and a summary.

use std::io::{IsTerminal, Write};

use owo_colors::{OwoColorize, Style};

use super::color::ColorChoice;
use super::document::{ScenarioResult, Status};
use super::progress::Progress;
use super::snapshot::SnapshotOutcome;

pub struct Terminal {
    /// stderr is a terminal: redraw a live line.
    pub interactive: bool,
    /// Colour the marks; when off, no escape sequence at all is written.
    pub color: bool,
}

/// The width the live line is cut to, in characters.
const LIVE_WIDTH: usize = 150;

impl Terminal {
    pub fn detect(color: ColorChoice) -> Self {
        let interactive = std::io::stderr().is_terminal();
        Terminal { interactive, color: color.enabled(interactive) }
    }

    /// What erases the live line: an ANSI "erase line" when escapes are allowed, else spaces.
    pub fn clear_line(&self) -> String {
        if self.color { "\r\x1b[2K".to_string() } else { format!("\r{:LIVE_WIDTH$}\r", "") }
    }

    /// `text` in `style` when colour is on.
    fn paint(&self, text: &str, style: Style) -> String {
        if self.color { text.style(style).to_string() } else { text.to_string() }
    }

    /// A scenario's mark: PASS green, FAIL red, ERROR bold red, SKIP yellow (when colour is on).
    pub fn mark(&self, status: Status) -> String {
        match status {
            Status::Passed => self.paint("PASS", Style::new().green()),
            Status::Failed => self.paint("FAIL", Style::new().red()),
            Status::Error => self.paint("ERROR", Style::new().red().bold()),
            Status::Skipped => self.paint("SKIP", Style::new().yellow()),
        }
    }

    /// A step's or guard's mark, four characters wide: a step that could not be judged (the
    /// cluster failed it, or the run was interrupted while it ran) is an error, not a failure.
    fn step_mark(&self, status: Status) -> String {
        match status {
            Status::Passed => self.paint("ok  ", Style::new().green()),
            Status::Failed => self.paint("FAIL", Style::new().red()),
            Status::Error => self.paint("ERR ", Style::new().red().bold()),
            Status::Skipped => self.paint("skip", Style::new().yellow()),
        }
    }

    /// On a terminal, redraws one line with the running steps and their elapsed time every 100 ms
    /// until the returned task is aborted. Elsewhere, does nothing: plain lines only.
    pub fn live(&self, progress: Progress) -> Option<tokio::task::JoinHandle<()>> {
        if !self.interactive {
            return None;
        }
        let (clear, color) = (self.clear_line(), self.color);
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
            loop {
                tick.tick().await;
                let running = progress.running();
                let Some((scenario, step, elapsed)) = running.first() else { continue };
                let more = if running.len() > 1 { format!(" (+{} more)", running.len() - 1) } else { String::new() };
                let mut line = format!("running {scenario} › {step} {:.1}s{more}", elapsed.as_secs_f64());
                line.truncate(line.char_indices().nth(LIVE_WIDTH).map_or(line.len(), |(i, _)| i));
                if color {
                    line = line.dimmed().to_string();
                }
                let mut out = std::io::stderr().lock();
                let _ = write!(out, "{clear}{line}");
                let _ = out.flush();
            }
        }))
    }

    /// Prints a finished scenario with its steps and anything to review.
    pub fn scenario(&self, result: &ScenarioResult) {
        // stderr is unbuffered: one write per line would be one system call per step.
        let mut out = std::io::BufWriter::new(std::io::stderr().lock());
        if self.interactive {
            let _ = write!(out, "{}", self.clear_line());
        }
        let mark = self.mark(result.status);
        let _ = writeln!(out, "{mark} {} ({}) in {:.1}s", result.scenario, result.file, result.duration.as_secs_f64());
        for step in &result.steps {
            let status = self.step_mark(step.status);
            let detail = step.message.as_deref().or(step.observed.as_deref()).unwrap_or("");
            let _ = writeln!(
                out,
                "  {status} {:>4}  {:<52} {:>6}ms  {detail}",
                step.line,
                step.step,
                step.elapsed.as_millis()
            );
            if !step.detail.is_empty() {
                let _ = writeln!(out, "  which pods, and for how long:\n  - {}", step.detail.join("\n  - "));
            }
        }
        for guard in &result.guards {
            let status = self.step_mark(if guard.status == Status::Passed { Status::Passed } else { Status::Failed });
            let what = guard.message.clone().unwrap_or_else(|| match guard.details.as_slice() {
                [] => "never violated".into(),
                seen => format!("fired as expected: {}", seen.join("; ")),
            });
            let _ = writeln!(out, "  {status} {}: {what}", guard.title());
        }
        let mut pending = false;
        for snapshot in &result.snapshots {
            if let SnapshotOutcome::Mismatch { diff, new, .. } = snapshot {
                let _ = writeln!(out, "{diff}");
                if let Some(new) = new {
                    let _ = writeln!(out, "  new observation written to {}", new.display());
                }
            }
            if let SnapshotOutcome::Mismatch { new: Some(_), .. } | SnapshotOutcome::Missing { new: Some(_), .. } =
                snapshot
            {
                pending = true;
            }
            match snapshot {
                SnapshotOutcome::Missing { path, new: Some(new) } => {
                    let _ = writeln!(
                        out,
                        "  no snapshot file {}; observation written to {}",
                        path.display(),
                        new.display()
                    );
                }
                SnapshotOutcome::Missing { path, new: None } => {
                    let _ = writeln!(
                        out,
                        "  no snapshot file {} (nothing is written under CI or with INSTA_UPDATE=no)",
                        path.display()
                    );
                }
                _ => {}
            }
        }
        if pending {
            let _ = writeln!(out, "  review with `cargo insta review`, or accept with `cargo insta accept`");
        }
        if let Some(failure) = unshown_failure(result) {
            let _ = writeln!(out, "  {failure}");
        }
        if result.kept {
            let _ = writeln!(out, "  kept namespace {} (--keep)", result.namespace);
        } else if !result.held_by_finalizers.is_empty() {
            let _ = writeln!(
                out,
                "  warning: finalizers still hold {} as the scenario ends: on a real cluster its namespace stays \
                 Terminating until whoever set them removes them; remove them before the end (an apply without them)",
                result.held_by_finalizers.join(", ")
            );
        }
    }

    pub fn summary(&self, results: &[ScenarioResult], elapsed: std::time::Duration) {
        let _ = writeln!(std::io::stderr(), "{}", summary_line(results, elapsed));
    }
}

/// What the scenario's failure adds to its step and guard lines: nothing when one of them shows
/// it already; what follows when it goes on after a step's message (a namespace that could not
/// be deleted after the step failed); otherwise all of it.
fn unshown_failure(result: &ScenarioResult) -> Option<&str> {
    let failure = result.failure.as_deref()?;
    let step_messages = || result.steps.iter().filter_map(|s| s.message.as_deref());
    if step_messages().any(|m| m == failure)
        || result.guards.iter().any(|g| g.message.as_ref().is_some_and(|m| failure.ends_with(m.as_str())))
    {
        return None;
    }
    Some(step_messages().find_map(|m| failure.strip_prefix(m)?.strip_prefix('\n')).unwrap_or(failure))
}

/// `2 passed, 1 failed (3 scenarios in 0.4s)`; scenarios that the cluster failed or that never
/// ran are counted apart, when there are any, since neither is a verdict on the script.
fn summary_line(results: &[ScenarioResult], elapsed: std::time::Duration) -> String {
    let count = |status: Status| results.iter().filter(|r| r.status == status).count();
    let mut counts = format!("{} passed, {} failed", count(Status::Passed), count(Status::Failed));
    for (status, what) in [(Status::Error, "errored"), (Status::Skipped, "not run")] {
        let n = count(status);
        if n > 0 {
            counts.push_str(&format!(", {n} {what}"));
        }
    }
    format!("{counts} ({} scenarios in {:.1}s)", results.len(), elapsed.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::{ScenarioResult, Status, Terminal, summary_line, unshown_failure};
    use crate::report::document::StepResult;

    #[test]
    fn a_step_that_could_not_be_judged_is_marked_apart_from_one_that_failed() {
        let terminal = Terminal { interactive: false, color: false };
        let marks: Vec<String> =
            [Status::Passed, Status::Failed, Status::Error, Status::Skipped].map(|s| terminal.step_mark(s)).into();
        assert_eq!(marks, ["ok  ", "FAIL", "ERR ", "skip"]);
    }

    #[test]
    fn the_summary_counts_errors_and_scenarios_not_run_apart_from_failures() {
        let result = |status: Status| {
            let mut result = ScenarioResult::new("s", std::path::Path::new("s.rollout"));
            result.status = status;
            result
        };
        let elapsed = std::time::Duration::from_millis(400);
        let mixed = [Status::Passed, Status::Failed, Status::Error, Status::Skipped, Status::Skipped].map(result);
        assert_eq!(summary_line(&mixed, elapsed), "1 passed, 1 failed, 1 errored, 2 not run (5 scenarios in 0.4s)");
        let plain = [Status::Passed, Status::Failed].map(result);
        assert_eq!(summary_line(&plain, elapsed), "1 passed, 1 failed (2 scenarios in 0.4s)");
    }

    #[test]
    fn a_failure_shown_on_its_step_line_is_not_repeated_but_what_follows_it_is() {
        let mut result = ScenarioResult::new("s", std::path::Path::new("s.rollout"));
        let step_message = "s.rollout:3:5: `expect pods app=x count 1`: the API server went away";
        result.steps.push(StepResult::failed(
            (3, 5),
            "expect pods app=x count 1".into(),
            step_message.into(),
            Default::default(),
        ));
        result.failure = Some(step_message.into());
        assert_eq!(unshown_failure(&result), None);
        result.failure = Some(format!("{step_message}\ncannot delete namespace rehearse-s-1: no answer"));
        assert_eq!(unshown_failure(&result), Some("cannot delete namespace rehearse-s-1: no answer"));
        result.failure = Some("a snapshot does not match its recorded file".into());
        assert_eq!(unshown_failure(&result), Some("a snapshot does not match its recorded file"));
    }
}
