//! `snapshot` steps: insta-format `.snap` files in `snapshots/` beside the script, so
//! `cargo insta review` users can read them. Compared on later runs; a mismatch writes `.snap.new`
//! and reports a unified diff. Nothing is written when the `CI` environment variable is set.

use std::path::{Path, PathBuf};

use similar::TextDiff;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotMode {
    /// Compare with existing files; create missing ones (not under CI).
    Check,
    /// Overwrite every snapshot with what was observed (not under CI).
    Update,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotOutcome {
    Matched {
        path: PathBuf,
    },
    Created {
        path: PathBuf,
    },
    Updated {
        path: PathBuf,
    },
    /// Differs from the file; `diff` is unified, `new` is where the observation was written (not under CI).
    Mismatch {
        path: PathBuf,
        diff: String,
        new: Option<PathBuf>,
    },
    /// No file yet, and CI forbids creating one.
    Missing {
        path: PathBuf,
    },
}

pub struct Snapshots {
    dir: PathBuf,
    stem: String,
    source: String,
    mode: SnapshotMode,
    in_ci: bool,
    outcomes: Vec<SnapshotOutcome>,
}

/// A file-name-safe slug.
fn slug(text: &str) -> String {
    let mut out: String =
        text.to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    while out.contains("__") {
        out = out.replace("__", "_");
    }
    out.trim_matches('_').to_string()
}

impl Snapshots {
    pub fn new(script: &Path, mode: SnapshotMode) -> Self {
        let in_ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0");
        Snapshots::with_ci(script, mode, in_ci)
    }

    pub fn with_ci(script: &Path, mode: SnapshotMode, in_ci: bool) -> Self {
        Snapshots {
            dir: script.parent().unwrap_or(Path::new(".")).join("snapshots"),
            stem: script.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
            source: script.display().to_string(),
            mode,
            in_ci,
            outcomes: Vec::new(),
        }
    }

    pub fn outcomes(&self) -> &[SnapshotOutcome] {
        &self.outcomes
    }

    pub fn path_for(&self, scenario: &str, name: &str) -> PathBuf {
        self.dir.join(format!("{}__{}__{}.snap", self.stem, slug(scenario), slug(name)))
    }

    fn file_text(&self, scenario: &str, name: &str, body: &str) -> String {
        let expression = format!("{scenario} / {name}").replace('\\', "\\\\").replace('"', "\\\"");
        format!("---\nsource: {}\nexpression: \"{expression}\"\n---\n{body}", self.source)
    }

    /// Compares or records one snapshot; returns a line for the result document.
    pub fn record(&mut self, scenario: &str, name: &str, body: &str) -> String {
        let path = self.path_for(scenario, name);
        let text = self.file_text(scenario, name, body);
        let existing = std::fs::read_to_string(&path).ok();
        let outcome = match (existing, self.mode) {
            (Some(old), _) if body_of(&old) == body => SnapshotOutcome::Matched { path },
            (None, _) if self.in_ci => SnapshotOutcome::Missing { path },
            (_, SnapshotMode::Update) | (None, SnapshotMode::Check) if !self.in_ci => {
                let created = !path.exists();
                let _ = std::fs::create_dir_all(&self.dir);
                match std::fs::write(&path, &text) {
                    Ok(()) if created => SnapshotOutcome::Created { path },
                    Ok(()) => SnapshotOutcome::Updated { path },
                    Err(_) => SnapshotOutcome::Missing { path },
                }
            }
            (Some(old), _) => {
                let diff = TextDiff::from_lines(body_of(&old), body)
                    .unified_diff()
                    .context_radius(3)
                    .header(&path.display().to_string(), "observed")
                    .to_string();
                let new = (!self.in_ci).then(|| path.with_extension("snap.new"));
                if let Some(new) = &new {
                    let _ = std::fs::write(new, &text);
                }
                SnapshotOutcome::Mismatch { path, diff, new }
            }
            (None, _) => SnapshotOutcome::Missing { path },
        };
        let line = match &outcome {
            SnapshotOutcome::Matched { .. } => format!("snapshot \"{name}\" matches"),
            SnapshotOutcome::Created { .. } => format!("snapshot \"{name}\" recorded"),
            SnapshotOutcome::Updated { .. } => format!("snapshot \"{name}\" updated"),
            SnapshotOutcome::Mismatch { .. } => format!("snapshot \"{name}\" differs"),
            SnapshotOutcome::Missing { .. } => format!("snapshot \"{name}\" has no recorded file"),
        };
        self.outcomes.push(outcome);
        line
    }
}

/// The body of an insta `.snap` file: everything after the second `---` line.
fn body_of(file: &str) -> &str {
    let mut rest = file;
    for _ in 0..2 {
        match rest.find("---\n") {
            Some(i) => rest = &rest[i + 4..],
            None => return file,
        }
    }
    rest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_compares_and_reports_mismatches() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("plan.rollout");
        let mut first = Snapshots::with_ci(&script, SnapshotMode::Check, false);
        assert_eq!(first.record("A scenario", "after", "x: 1\n"), "snapshot \"after\" recorded");
        let path = first.path_for("A scenario", "after");
        assert_eq!(path.file_name().unwrap(), "plan__a_scenario__after.snap");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("---\nsource: "), "{text}");
        assert!(text.ends_with("---\nx: 1\n"), "{text}");

        let mut again = Snapshots::with_ci(&script, SnapshotMode::Check, false);
        assert_eq!(again.record("A scenario", "after", "x: 1\n"), "snapshot \"after\" matches");
        assert_eq!(again.record("A scenario", "after", "x: 2\n"), "snapshot \"after\" differs");
        match &again.outcomes()[1] {
            SnapshotOutcome::Mismatch { diff, new: Some(new), .. } => {
                assert!(diff.contains("-x: 1") && diff.contains("+x: 2"), "{diff}");
                assert!(new.to_string_lossy().ends_with(".snap.new"));
                assert!(new.exists());
            }
            other => panic!("{other:?}"),
        }

        let mut update = Snapshots::with_ci(&script, SnapshotMode::Update, false);
        assert_eq!(update.record("A scenario", "after", "x: 2\n"), "snapshot \"after\" updated");
        assert!(std::fs::read_to_string(&path).unwrap().ends_with("x: 2\n"));
    }

    #[test]
    fn writes_nothing_under_ci() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("plan.rollout");
        let mut ci = Snapshots::with_ci(&script, SnapshotMode::Update, true);
        assert_eq!(ci.record("s", "n", "x\n"), "snapshot \"n\" has no recorded file");
        assert!(!dir.path().join("snapshots").exists());
        std::fs::create_dir_all(dir.path().join("snapshots")).unwrap();
        std::fs::write(ci.path_for("s", "n"), "---\nsource: x\n---\nold\n").unwrap();
        assert_eq!(ci.record("s", "n", "new\n"), "snapshot \"n\" differs");
        assert_eq!(std::fs::read_dir(dir.path().join("snapshots")).unwrap().count(), 1, "no .snap.new under CI");
    }
}
