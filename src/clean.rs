//! `rehearse clean`: reclaim the namespaces of runs that died without cleaning up.

use rehearse::cluster::connect::connect;
use rehearse::cluster::transport::describe;
use rehearse::exec::lease::{CleanOutcome, LeaseState};
use rehearse::model::duration::format;

use super::{CleanArgs, exit};

pub async fn clean(args: CleanArgs) -> u8 {
    let options = args.cluster_named.connect_options();
    let connection = match connect(&options).await {
        Ok(connection) => connection,
        Err(error) => {
            say!("error: {error}");
            return if error.is_invalid_input() { exit::INVALID_INPUT } else { exit::INFRASTRUCTURE };
        }
    };
    let report = match rehearse::exec::lease::clean(&connection.client, args.dry_run).await {
        Ok(report) => report,
        Err(error) => {
            say!(
                "error: cannot list the namespaces of context `{}`: {}\n  is the cluster running, and may you list namespaces?",
                connection.context,
                describe(&error)
            );
            return exit::INFRASTRUCTURE;
        }
    };
    let (mut deleted, mut kept, mut failed) = (0, 0, 0);
    for cleaned in &report {
        let why = match &cleaned.state {
            LeaseState::Held { holder, run, expires_in } => {
                format!("in use by run {run} ({holder}): its lease holds for {} more", seconds(*expires_in))
            }
            LeaseState::Expired { holder, run, expired_for } => {
                format!("run {run} ({holder}) stopped renewing its lease {} ago", seconds(*expired_for))
            }
            LeaseState::Abandoned { holder, run } => {
                format!("run {run} ({holder}) no longer runs on this machine, though its lease still holds")
            }
            LeaseState::NoLease => {
                "labelled as rehearse's but holds no lease: delete it yourself if no run uses it".into()
            }
            LeaseState::Terminating => "being deleted already".into(),
            LeaseState::Kept => "kept by `rehearse run --keep`: delete it yourself when done".into(),
        };
        let action = match &cleaned.outcome {
            CleanOutcome::Deleted => {
                deleted += 1;
                "deleted".to_string()
            }
            CleanOutcome::WouldDelete => {
                deleted += 1;
                "would delete".to_string()
            }
            CleanOutcome::Kept => {
                kept += 1;
                "kept".to_string()
            }
            CleanOutcome::ChangedMeanwhile => {
                kept += 1;
                "kept (renewed or changed while cleaning)".to_string()
            }
            CleanOutcome::Failed(error) => {
                failed += 1;
                format!("could not delete ({error})")
            }
        };
        out!("{action} {}: {why}", cleaned.name);
    }
    let verb = if args.dry_run { "would delete" } else { "deleted" };
    say!(
        "context `{}`: {verb} {deleted}, kept {kept}{} of {} rehearse namespace(s)",
        connection.context,
        if failed > 0 { format!(", failed {failed}") } else { String::new() },
        report.len()
    );
    if failed > 0 { exit::INFRASTRUCTURE } else { exit::OK }
}

/// A lease's time in whole seconds (at least one): milliseconds would only be noise here.
fn seconds(duration: std::time::Duration) -> String {
    format(std::time::Duration::from_secs(duration.as_secs().max(1)))
}
