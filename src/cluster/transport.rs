//! What sits between kube-rs and a real API server: a deadline on every answer, retries of what
//! is safe to retry, and a record of outages for the messages that explain a failed step.
//!
//! kube-rs sets no read timeout by default (a server that completes TLS and then never answers
//! would hold a request forever), and retries nothing but 429/503/504. Here every request must
//! see its response headers within [`RESPONSE_TIMEOUT`] (a watch's headers come at once, its
//! events later, so watches are covered too); requests that cannot do harm twice are retried
//! while the API is away, for up to [`RETRY_BUDGET`].

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use tokio::time::Instant;

/// How long a request may wait for its response headers.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to connect (TCP and TLS) before giving up on an attempt.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one request keeps retrying while the API server is away.
pub const RETRY_BUDGET: Duration = Duration::from_secs(20);

/// What the transport saw of the API server's health: the latest failure and the latest answer.
#[derive(Clone, Default)]
pub struct ApiHealth(Arc<Mutex<HealthState>>);

#[derive(Default)]
struct HealthState {
    /// When the API server last failed to answer, and how.
    failed: Option<(Instant, String)>,
    /// When it last answered (any HTTP status).
    answered: Option<Instant>,
}

impl ApiHealth {
    fn note_failure(&self, what: String) {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        state.failed = Some((Instant::now(), what));
    }

    fn note_answer(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).answered = Some(Instant::now());
    }

    /// The outage seen since `since`, if any: how the API server failed, and whether it has
    /// answered again after that.
    pub fn outage_since(&self, since: Instant) -> Option<Outage> {
        let state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (at, what) = state.failed.as_ref().filter(|(at, _)| *at >= since)?;
        Some(Outage { what: what.clone(), recovered: state.answered.is_some_and(|answered| answered > *at) })
    }

    /// Records how a watch failed (watches are retried by their own loop, not here).
    pub fn note_watch_failure(&self, what: String) {
        self.note_failure(what);
    }
}

/// An outage the transport saw.
#[derive(Debug, Clone)]
pub struct Outage {
    /// How the API server failed, in the transport's words.
    pub what: String,
    /// Whether it has answered a request since.
    pub recovered: bool,
}

/// A `tower::Service` that sends through a kube-rs client built from the kubeconfig, with the
/// deadlines and retries described above.
#[derive(Clone)]
pub struct Resilient {
    inner: kube::Client,
    health: ApiHealth,
}

impl Resilient {
    pub fn new(inner: kube::Client, health: ApiHealth) -> Resilient {
        Resilient { inner, health }
    }
}

/// Whether sending the request twice does no more than sending it once: reads, server-side
/// applies and merge patches (they state an end result), deletes (with preconditions, and a
/// repeat answers 404). A POST creates something each time, so it is retried only when it
/// never reached the server.
fn is_idempotent(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::PUT | Method::PATCH | Method::DELETE)
}

fn is_watch(request: &Request<Body>) -> bool {
    request.uri().query().is_some_and(|q| q.split('&').any(|pair| pair == "watch=true" || pair == "watch=1"))
}

/// Answers that mean "not now" rather than "no": the server is starting, overloaded, or a proxy
/// in front of it cannot reach it.
fn is_transient(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

/// Whether the error says the request never left this machine (nothing listened, or the
/// connection could not be set up), so even a POST can be sent again.
fn never_sent(error: &kube::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = source {
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && matches!(io.kind(), std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        if let Some(hyper) = error.downcast_ref::<hyper_util::client::legacy::Error>()
            && hyper.is_connect()
        {
            return true;
        }
        source = error.source();
    }
    false
}

/// Whether the error is one a retry cannot mend: the server's certificate is not one the
/// kubeconfig trusts, or the URL's scheme is not the server's. (rustls words the first; Go's
/// server answers the second in plain text.)
pub fn is_permanent(error: &kube::Error) -> bool {
    let text = describe(error);
    text.contains("invalid peer certificate") || text.contains("HTTP request to an HTTPS server")
}

/// The error's chain in one line: "connection refused" sits at the bottom of several wrappers.
/// No response within a deadline: the API server may be stopped, frozen or overloaded.
#[derive(Debug, thiserror::Error)]
#[error("the API server does not answer (no reply within {}s): is it stopped or overloaded?", .0.as_secs())]
pub struct NoReply(pub Duration);

/// A request that got no usable answer (no connection, no reply in time, a connection cut),
/// worded as the outage it is. Every message that names one is worded here.
pub fn no_answer(error: &kube::Error) -> String {
    if let kube::Error::Service(inner) = error
        && let Some(no_reply) = inner.downcast_ref::<NoReply>()
    {
        return no_reply.to_string();
    }
    let why = describe(error);
    format!("the API server does not answer: {}", why.strip_prefix("ServiceError: ").unwrap_or(&why))
}

pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The request again, when its body can be replayed.
fn replay(request: &Request<Body>) -> Option<Request<Body>> {
    let body = request.body().try_clone()?;
    let mut copy = Request::new(body);
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    *copy.extensions_mut() = request.extensions().clone();
    Some(copy)
}

impl tower::Service<Request<Body>> for Resilient {
    type Response = Response<Body>;
    type Error = kube::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, kube::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let (inner, health) = (self.inner.clone(), self.health.clone());
        Box::pin(async move {
            let give_up_at = Instant::now() + RETRY_BUDGET;
            let retries = !is_watch(&request);
            let idempotent = is_idempotent(request.method());
            let mut pause = Duration::from_millis(200);
            let mut request = request;
            loop {
                let again = if retries { replay(&request) } else { None };
                let outcome = match tokio::time::timeout(RESPONSE_TIMEOUT, inner.send(request)).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(kube::Error::Service(Box::new(NoReply(RESPONSE_TIMEOUT)))),
                };
                let retry_safe = match &outcome {
                    Ok(response) if is_transient(response.status()) => {
                        health.note_failure(format!("the API server answered {}", response.status()));
                        idempotent
                    }
                    Ok(_) => {
                        health.note_answer();
                        return outcome;
                    }
                    Err(error) => {
                        health.note_failure(describe(error));
                        (idempotent || never_sent(error)) && !is_permanent(error)
                    }
                };
                let next = again.filter(|_| retry_safe && Instant::now() + pause < give_up_at);
                match next {
                    Some(next) => {
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_secs(2));
                        request = next;
                    }
                    None => return outcome,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_worded_once_whatever_caught_it() {
        let timeout = kube::Error::Service(Box::new(NoReply(Duration::from_secs(10))));
        assert_eq!(
            no_answer(&timeout),
            "the API server does not answer (no reply within 10s): is it stopped or overloaded?"
        );
        let refused = kube::Error::Service("client error (Connect)".into());
        assert_eq!(no_answer(&refused), "the API server does not answer: client error (Connect)");
    }

    #[test]
    fn only_requests_that_do_no_harm_twice_are_idempotent() {
        assert!(is_idempotent(&Method::GET));
        assert!(is_idempotent(&Method::PATCH));
        assert!(is_idempotent(&Method::DELETE));
        assert!(!is_idempotent(&Method::POST));
    }

    #[test]
    fn watches_are_told_apart_by_their_query() {
        let watch = Request::get("/api/v1/namespaces/a/pods?watch=true&resourceVersion=5").body(Body::empty()).unwrap();
        let list = Request::get("/api/v1/namespaces/a/pods?limit=500").body(Body::empty()).unwrap();
        assert!(is_watch(&watch));
        assert!(!is_watch(&list));
    }

    #[test]
    fn transient_answers_are_the_not_now_ones() {
        assert!(is_transient(StatusCode::SERVICE_UNAVAILABLE));
        assert!(is_transient(StatusCode::TOO_MANY_REQUESTS));
        assert!(!is_transient(StatusCode::INTERNAL_SERVER_ERROR));
        assert!(!is_transient(StatusCode::UNPROCESSABLE_ENTITY));
    }

    #[test]
    fn outages_are_reported_with_whether_the_server_came_back() {
        let health = ApiHealth::default();
        let before = Instant::now();
        assert!(health.outage_since(before).is_none());
        health.note_failure("connection refused".into());
        let outage = health.outage_since(before).unwrap();
        assert_eq!(outage.what, "connection refused");
        assert!(!outage.recovered);
        health.note_answer();
        assert!(health.outage_since(before).unwrap().recovered);
    }
}
