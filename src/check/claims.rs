//! What the scenarios of a run share: the cluster. Its node ports and cluster IPs are held by
//! one Service at a time, and its nodes' host ports by one pod per node, whatever the
//! namespace; the scenarios of a run may run at the same time, and a scenario's namespace goes
//! some seconds after it ends. Two scenarios that claim the same one race for it, so which one
//! gets it (and which fails, or waits) would depend on timing, not on the script. The built-in
//! cluster gives each scenario a cluster of its own and could not show the race: it is refused
//! up front, on every cluster alike.

use std::path::{Path, PathBuf};

use super::Context;
use super::manifests::Claim;
use super::yaml::{Declared, Origin};
use crate::diagnostic::{Diagnostic, LineIndex};
use crate::syntax::ast::Scenario;

/// The claims of the scenarios checked so far, in the order they were met.
#[derive(Default)]
pub(super) struct ClusterClaims(Vec<(Claim, Claimant)>);

/// A scenario that claims something, and where.
struct Claimant {
    /// The script (its canonical path, however it was named) and the scenario's name, which
    /// together name it.
    scenario: (PathBuf, String),
    /// The script as it was named.
    script: String,
    /// Where the claim is written: `script.rollout:12:21` or `manifest.yaml:9:13`.
    place: String,
}

/// Reports every claim of `scenario` that an earlier scenario (in this script or an earlier one
/// checked with it) has made too, and records the rest. `canonical` is the script's canonical
/// path, which names it however it was named.
pub(super) fn check(
    path: &Path,
    canonical: &Path,
    lines: &LineIndex,
    scenario: &Scenario,
    declared: &[Declared],
    claims: &mut ClusterClaims,
    context: &mut Context,
) {
    let own = (canonical.to_path_buf(), scenario.name.value.clone());
    for Declared { origin, object } in declared {
        for (claim, written) in object.claims() {
            let (span, place) = origin.locate(written.at, written.width);
            let earlier = claims.0.iter().find(|(other, claimant)| claimant.scenario != own && other.clashes(&claim));
            if let Some((other, claimant)) = earlier {
                let name = &claimant.scenario.1;
                let what = claim.describe();
                let theirs = if *other == claim { String::new() } else { format!(" as {}", other.describe()) };
                let at = if claimant.place == place {
                    format!("which applies this manifest as well (in {})", claimant.script)
                } else {
                    format!("at {}", claimant.place)
                };
                context.report(
                    Diagnostic::error(
                        "rehearse::manifest::shared_claim",
                        format!("{place}: {what} is claimed by scenario \"{name}\" too{theirs}, {at}"),
                    )
                    .label(span, format!("{what}, held cluster-wide"))
                    .help(
                        "the scenarios of a run share the cluster and may run at the same time, so which one \
                         gets it would depend on timing: give each scenario its own (a host port, say), or \
                         leave a node port or cluster IP out for the cluster to pick",
                    ),
                );
                continue;
            }
            if claims.0.iter().any(|(other, claimant)| claimant.scenario == own && *other == claim) {
                continue;
            }
            let place = match origin.as_ref() {
                Origin::Inline(_) => {
                    let (line, column) = lines.line_column(span.start);
                    format!("{}:{line}:{column}", path.display())
                }
                Origin::File { .. } => place,
            };
            claims.0.push((claim, Claimant { scenario: own.clone(), script: path.display().to_string(), place }));
        }
    }
}
