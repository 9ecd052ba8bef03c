//! `snapshot` steps: insta-format `.snap` files in `snapshots/` beside the script, so that
//! `cargo insta review` and `cargo insta accept` review and accept rehearse's pending `.snap.new`
//! files as they do a Rust project's. Compared on later runs; a mismatch reports a unified diff.
//! What is written follows insta's update modes (`INSTA_UPDATE`); nothing is written under CI.

use std::path::{Path, PathBuf};

use similar::TextDiff;

use crate::model::file_name::slug;

/// What a run may write, as insta's `INSTA_UPDATE` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotMode {
    /// rehearse's default (insta's `unseen`): record a missing snapshot as `.snap`; write a
    /// differing observation beside its file as `.snap.new`, for review.
    Check,
    /// `always` (`--update-snapshots`): overwrite every snapshot with what was observed.
    Update,
    /// `new`: every missing or differing observation goes to `.snap.new`, for review.
    New,
    /// `no`: write nothing; a missing or differing snapshot fails.
    No,
}

impl SnapshotMode {
    /// The mode `--update-snapshots` (always) or else `INSTA_UPDATE` asks for: `auto` or unset is
    /// the default, `always`/`1`, `new`, `unseen`, `no`/`0` as in insta. Err names a value insta
    /// would not take.
    pub fn from_env(update_flag: bool) -> Result<SnapshotMode, String> {
        if update_flag {
            return Ok(SnapshotMode::Update);
        }
        let value = std::env::var("INSTA_UPDATE").unwrap_or_default();
        match value.as_str() {
            "" | "auto" | "unseen" => Ok(SnapshotMode::Check),
            "always" | "1" => Ok(SnapshotMode::Update),
            "new" => Ok(SnapshotMode::New),
            "no" | "0" => Ok(SnapshotMode::No),
            other => Err(format!("INSTA_UPDATE={other} is not an update mode: use auto, always, new, unseen or no")),
        }
    }
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
    /// Differs from the file; `diff` is unified, `new` is where the observation was written
    /// (`.snap.new`, when the mode and CI allow).
    Mismatch {
        path: PathBuf,
        diff: String,
        new: Option<PathBuf>,
    },
    /// No file yet, and none was created (CI, or mode `new` or `no`); `new` as above.
    Missing {
        path: PathBuf,
        new: Option<PathBuf>,
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
        self.dir.join(format!("{}__{}__{}.snap", self.stem, slug(scenario, '_'), slug(name, '_')))
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
        // CI writes nothing, whatever the mode: a pipeline's checkout is not where review happens.
        let mode = if self.in_ci { SnapshotMode::No } else { self.mode };
        let pending = path.with_extension("snap.new");
        let write_pending = |dir: &Path| {
            let _ = std::fs::create_dir_all(dir);
            std::fs::write(&pending, &text).is_ok().then(|| pending.clone())
        };
        let outcome = match (existing, mode) {
            (Some(old), _) if body_of(&old) == body => {
                // Nothing pending for a snapshot that matches: an earlier run's `.snap.new` is stale.
                if mode != SnapshotMode::No {
                    let _ = std::fs::remove_file(&pending);
                }
                SnapshotOutcome::Matched { path }
            }
            (existing, SnapshotMode::Update) | (existing @ None, SnapshotMode::Check) => {
                let created = existing.is_none();
                let _ = std::fs::create_dir_all(&self.dir);
                match std::fs::write(&path, &text) {
                    Ok(()) => {
                        let _ = std::fs::remove_file(&pending);
                        if created { SnapshotOutcome::Created { path } } else { SnapshotOutcome::Updated { path } }
                    }
                    Err(_) => SnapshotOutcome::Missing { path, new: None },
                }
            }
            (None, SnapshotMode::New) => SnapshotOutcome::Missing { new: write_pending(&self.dir), path },
            (None, _) => SnapshotOutcome::Missing { path, new: None },
            (Some(old), mode) => {
                let diff = TextDiff::from_lines(body_of(&old), body)
                    .unified_diff()
                    .context_radius(3)
                    .header(&path.display().to_string(), "observed")
                    .to_string();
                let new = if mode == SnapshotMode::No { None } else { write_pending(&self.dir) };
                SnapshotOutcome::Mismatch { path, diff, new }
            }
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
    fn update_modes_as_insta_names_them() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("plan.rollout");
        // new: a missing snapshot goes to .snap.new for review, not to .snap.
        let mut new = Snapshots::with_ci(&script, SnapshotMode::New, false);
        assert_eq!(new.record("s", "n", "x: 1\n"), "snapshot \"n\" has no recorded file");
        let path = new.path_for("s", "n");
        let pending = path.with_extension("snap.new");
        assert!(!path.exists() && pending.exists());
        // Accepting it (what `cargo insta accept` does: rename) makes the next run match, and a
        // matching run leaves no stale .snap.new behind.
        std::fs::rename(&pending, &path).unwrap();
        let mut again = Snapshots::with_ci(&script, SnapshotMode::New, false);
        assert_eq!(again.record("s", "n", "x: 1\n"), "snapshot \"n\" matches");
        assert_eq!(again.record("s", "n", "x: 2\n"), "snapshot \"n\" differs");
        assert!(pending.exists());
        assert_eq!(
            Snapshots::with_ci(&script, SnapshotMode::Check, false).record("s", "n", "x: 1\n"),
            "snapshot \"n\" matches"
        );
        assert!(!pending.exists(), "stale .snap.new removed");

        // no: nothing written, neither a missing snapshot nor a differing one.
        let mut no = Snapshots::with_ci(&script, SnapshotMode::No, false);
        assert_eq!(no.record("s", "other", "y\n"), "snapshot \"other\" has no recorded file");
        assert_eq!(no.record("s", "n", "x: 3\n"), "snapshot \"n\" differs");
        assert_eq!(std::fs::read_dir(dir.path().join("snapshots")).unwrap().count(), 1);
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
