//! Waiting for a condition over a set of objects, driven by a watch: the condition is evaluated
//! on the complete list after every change, so a step completes the moment the cluster satisfies
//! it. No polling, no sleeps.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Lookup};
use kube::runtime::watcher::{self, Event};
use serde::de::DeserializeOwned;

/// Why a wait ended without the condition holding.
#[derive(Debug, thiserror::Error)]
pub enum WaitError<K> {
    /// The condition did not hold within the timeout; `last` is what was observed last.
    #[error("timed out")]
    TimedOut { last: Vec<Arc<K>> },
    /// The API refused the watch (permissions, a missing resource type) or the connection failed.
    #[error("watch failed: {0}")]
    Watch(#[from] watcher::Error),
}

/// Watches the objects `api` and `config` select and returns the first `Some` that `check` gives
/// for the complete current list (after the initial list, then after every change).
pub async fn until<K, T>(
    api: Api<K>,
    config: watcher::Config,
    timeout: Duration,
    mut check: impl FnMut(&[Arc<K>]) -> Option<T>,
) -> Result<T, WaitError<K>>
where
    K: kube::Resource + Lookup + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    <K as Lookup>::DynamicType: Default + Eq + std::hash::Hash + Clone,
    <K as kube::Resource>::DynamicType: Default,
{
    let (reader, writer) = reflector::store::<K>();
    let stream = reflector::reflector(writer, watcher::watcher(api, config).default_backoff());
    let mut stream = std::pin::pin!(stream);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut listed = false;
    loop {
        let next = tokio::time::timeout_at(deadline, stream.next()).await;
        match next {
            Err(_elapsed) => {
                return Err(WaitError::TimedOut { last: reader.state() });
            }
            Ok(None) => {
                return Err(WaitError::TimedOut { last: reader.state() });
            }
            Ok(Some(Err(error))) => {
                if is_permanent(&error) {
                    return Err(WaitError::Watch(error));
                }
            }
            Ok(Some(Ok(event))) => {
                if matches!(event, Event::InitDone) {
                    listed = true;
                }
                let settled = listed && !matches!(event, Event::Init | Event::InitApply(_));
                if settled && let Some(found) = check(&reader.state()) {
                    return Ok(found);
                }
            }
        }
    }
}

/// Errors a retry will not fix: the API said no.
fn is_permanent(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status)) => {
            matches!(status.code, 400 | 401 | 403 | 404)
        }
        _ => false,
    }
}
