//! Choosing what runs: name filters (a substring, like `cargo test NAME`, or `--exact`), skips,
//! and shards (`--shard K/N`), a deterministic split so that N CI runners, each with a cluster of
//! its own, together run every selected scenario exactly once.

use std::fmt;
use std::str::FromStr;

/// One scenario of a suite, where it is written.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ScenarioEntry {
    /// The script's path, as given (or as found under a given directory).
    pub file: String,
    /// The scenario's name.
    pub scenario: String,
    /// Where its `scenario` keyword is, 1-based.
    pub line: usize,
    pub column: usize,
}

impl ScenarioEntry {
    /// The name filters match: `FILE::SCENARIO`, so a filter may name a file, a scenario or both.
    pub fn id(&self) -> String {
        format!("{}::{}", self.file, self.scenario)
    }
}

/// Which scenarios run: those matching any pattern (all when there is none), minus those matching
/// a skip, then this runner's shard of what is left.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// A scenario runs if its name or `FILE::NAME` contains one of these (equals one, with `exact`).
    pub patterns: Vec<String>,
    /// Patterns must match the whole name or the whole `FILE::NAME`.
    pub exact: bool,
    /// Scenarios whose name or `FILE::NAME` contains one of these do not run (equals one, with `exact`).
    pub skip: Vec<String>,
    pub shard: Option<Shard>,
}

impl Selection {
    fn matches(&self, pattern: &str, entry: &ScenarioEntry) -> bool {
        if self.exact { entry.scenario == pattern || entry.id() == pattern } else { entry.id().contains(pattern) }
    }

    /// Whether the filters (not the shard) let `entry` run.
    pub fn admits(&self, entry: &ScenarioEntry) -> bool {
        let wanted = self.patterns.is_empty() || self.patterns.iter().any(|p| self.matches(p, entry));
        wanted && !self.skip.iter().any(|p| self.matches(p, entry))
    }

    /// The indices (into `entries`, in order) of the scenarios this runner runs. The shard is
    /// taken after filtering, so runners with the same filters split the same list.
    pub fn apply(&self, entries: &[ScenarioEntry]) -> Vec<usize> {
        let admitted = entries.iter().enumerate().filter(|(_, e)| self.admits(e)).map(|(i, _)| i);
        match self.shard {
            None => admitted.collect(),
            Some(shard) => admitted.enumerate().filter(|(n, _)| shard.takes(*n)).map(|(_, i)| i).collect(),
        }
    }
}

/// Runner K of N (1-based): it takes the scenarios at positions K-1, K-1+N, K-1+2N, ... of the
/// selected list, in script order. Every runner computes the same list, so the shards are
/// disjoint, their union is the whole list, and their sizes differ by at most one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub total: u32,
}

impl Shard {
    pub fn takes(&self, position: usize) -> bool {
        position % self.total as usize == (self.index - 1) as usize
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.total)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Shard, String> {
        let usage = || format!("`{text}` is not a shard: write K/N, e.g. 1/3 for the first of three runners");
        let (index, total) = text.split_once('/').ok_or_else(usage)?;
        let index: u32 = index.trim().parse().map_err(|_| usage())?;
        let total: u32 = total.trim().parse().map_err(|_| usage())?;
        if total == 0 {
            return Err("a suite cannot be split into 0 shards: N is at least 1".into());
        }
        if index == 0 || index > total {
            return Err(format!("shard {index} of {total} does not exist: K counts from 1 to {total}"));
        }
        Ok(Shard { index, total })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(file: &str, scenario: &str) -> ScenarioEntry {
        ScenarioEntry { file: file.into(), scenario: scenario.into(), line: 1, column: 1 }
    }

    fn suite() -> Vec<ScenarioEntry> {
        vec![
            entry("a.rollout", "canary at a quarter"),
            entry("a.rollout", "canary rolled back"),
            entry("b.rollout", "blue green"),
            entry("b.rollout", "canary"),
            entry("c.rollout", "drain a node"),
        ]
    }

    #[test]
    fn substring_filters_match_the_name_or_the_file() {
        let s = Selection { patterns: vec!["canary".into()], ..Default::default() };
        assert_eq!(s.apply(&suite()), [0, 1, 3]);
        let s = Selection { patterns: vec!["b.rollout".into()], ..Default::default() };
        assert_eq!(s.apply(&suite()), [2, 3]);
        let s = Selection { patterns: vec!["green".into(), "drain".into()], ..Default::default() };
        assert_eq!(s.apply(&suite()), [2, 4]);
        assert_eq!(Selection::default().apply(&suite()), [0, 1, 2, 3, 4]);
    }

    #[test]
    fn exact_filters_match_a_whole_name_or_id() {
        let s = Selection { patterns: vec!["canary".into()], exact: true, ..Default::default() };
        assert_eq!(s.apply(&suite()), [3]);
        let s = Selection { patterns: vec!["a.rollout::canary rolled back".into()], exact: true, ..Default::default() };
        assert_eq!(s.apply(&suite()), [1]);
        let s = Selection { patterns: vec!["canary rolled".into()], exact: true, ..Default::default() };
        assert!(s.apply(&suite()).is_empty());
    }

    #[test]
    fn skips_remove_what_they_match() {
        let s = Selection { patterns: vec!["canary".into()], skip: vec!["rolled".into()], ..Default::default() };
        assert_eq!(s.apply(&suite()), [0, 3]);
    }

    #[test]
    fn shards_are_disjoint_cover_the_selection_and_are_balanced() {
        let entries: Vec<ScenarioEntry> = (0..23).map(|i| entry("f.rollout", &format!("s{i}"))).collect();
        for total in 1..=7 {
            let mut seen = Vec::new();
            let mut sizes = Vec::new();
            for index in 1..=total {
                let s = Selection { shard: Some(Shard { index, total }), ..Default::default() };
                let taken = s.apply(&entries);
                assert_eq!(taken, s.apply(&entries), "stable");
                sizes.push(taken.len());
                seen.extend(taken);
            }
            seen.sort_unstable();
            assert_eq!(seen, (0..23).collect::<Vec<_>>(), "{total} shards: every scenario once");
            assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1, "{sizes:?}");
        }
    }

    #[test]
    fn shards_split_what_the_filters_selected() {
        let s = |index| Selection {
            patterns: vec!["canary".into()],
            shard: Some(Shard { index, total: 2 }),
            ..Default::default()
        };
        assert_eq!(s(1).apply(&suite()), [0, 3]);
        assert_eq!(s(2).apply(&suite()), [1]);
    }

    #[test]
    fn shard_syntax() {
        assert_eq!("2/3".parse::<Shard>(), Ok(Shard { index: 2, total: 3 }));
        assert_eq!(Shard { index: 2, total: 3 }.to_string(), "2/3");
        assert!("0/3".parse::<Shard>().unwrap_err().contains("counts from 1 to 3"));
        assert!("4/3".parse::<Shard>().unwrap_err().contains("does not exist"));
        assert!("1/0".parse::<Shard>().unwrap_err().contains("0 shards"));
        assert!("1".parse::<Shard>().unwrap_err().contains("write K/N"));
        assert!("a/b".parse::<Shard>().unwrap_err().contains("write K/N"));
    }
}
