//! One request's context, from its arrival to its access line: who sent it, why its page
//! gets no widget, who the visitor is, and what failed. It is filled in along the
//! pipeline, travels with the response body, and is written out once — the access line
//! and the metrics — when the body ends or is dropped.
//!
//! The access line carries the request path without its query string and never a header
//! value, so cookies, tokens and secrets cannot reach the log.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::{HeaderValue, Method};

use super::record::{self, Answer, Facts, Recorder, Stage};
use crate::error::{Blame, ClientBodyFailure, ErrorKind, ProxyError, UpstreamFailure, error_chain};
use crate::metrics::{Finished, Metrics, PageOutcome};
use crate::outcome::{Identified, Skip};
use crate::telemetry::ACCESS_TARGET;

/// Who is on the other end of a connection, and whether it came over TLS.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer {
    pub addr: SocketAddr,
    pub tls: bool,
}

impl Peer {
    /// The scheme the client used: `X-Forwarded-Proto` for it.
    pub(crate) fn proto(self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }
}

/// A failure of the request, kept for its access line.
#[derive(Debug)]
struct Failure {
    kind: ErrorKind,
    /// The error and its causes, on one line.
    message: String,
    upstream: Option<UpstreamFailure>,
    blame: Blame,
}

/// What one request did, gathered along the pipeline.
#[derive(Debug)]
pub(super) struct Context {
    started: Instant,
    method: Method,
    path: String,
    peer: Peer,
    /// The request's `X-Request-Id`, as sent upstream and returned.
    request_id: HeaderValue,
    pub(super) status: u16,
    pub(super) identified: Identified,
    /// Why the response got no widget, once known from the request or its head.
    pub(super) skip: Option<Skip>,
    failure: Option<Failure>,
    /// Set if the client's request body failed: a broken exchange is then the client's.
    pub(super) client_body: ClientBodyFailure,
    metrics: Arc<Metrics>,
    /// Where the request's [`record::Record`] goes, for a caller that asked (`explain`);
    /// sent once, and then gone.
    recorder: Option<Box<Recorder>>,
}

impl Context {
    pub(super) fn start(
        (method, path): (&Method, &str),
        peer: Peer,
        request_id: HeaderValue,
        (metrics, recorder): (Arc<Metrics>, Option<Recorder>),
    ) -> Self {
        Context {
            started: Instant::now(),
            method: method.clone(),
            path: path.to_owned(),
            peer,
            request_id,
            status: 0,
            identified: Identified::None,
            skip: None,
            failure: None,
            client_body: ClientBodyFailure::default(),
            metrics,
            recorder: recorder.map(Box::new),
        }
    }

    /// The request's id, for the response.
    pub(super) fn request_id(&self) -> &HeaderValue {
        &self.request_id
    }

    /// Notes the request's failure (the first one counts); it is logged once, on the
    /// access line.
    pub(super) fn failed(&mut self, error: &ProxyError) {
        if self.failure.is_none() {
            let message = error_chain(error);
            let (upstream, blame) = (error.upstream_failure(), error.blame());
            self.failure = Some(Failure { kind: error.kind(), message, upstream, blame });
        }
    }

    /// Notes why the response gets no widget, and which rules said so.
    pub(super) fn skipped(&mut self, skip: Skip, stage: Stage) {
        self.skip = Some(skip);
        if let Some(recorder) = &mut self.recorder {
            recorder.skipped_at(stage);
        }
    }

    /// Whether a caller asked for the request's record.
    pub(super) fn recording(&self) -> bool {
        self.recorder.is_some()
    }

    /// For the record: the upstream's response head, as it arrived.
    pub(super) fn upstream_head(&mut self, status: http::StatusCode, headers: &http::HeaderMap) {
        if let Some(recorder) = &mut self.recorder {
            recorder.upstream_head(status, headers);
        }
    }

    /// For the record: the response head as the client gets it. A body that is not
    /// rewritten has nothing more to tell, so its record is sent now.
    pub(super) fn head_out(&mut self, status: http::StatusCode, headers: &http::HeaderMap, answer: Answer) {
        let Some(recorder) = &mut self.recorder else { return };
        recorder.response_head(status, headers, answer);
        if answer != Answer::Rewritten {
            self.send_record(PageOutcome::Passed(self.skip), None);
        }
    }

    /// Sends the record, if a caller asked for it and it has not been sent.
    pub(super) fn send_record(&mut self, page: PageOutcome, inserted: Option<invent_rewrite::Inserted>) {
        let Some(recorder) = self.recorder.take() else { return };
        let failure = self.failure.as_ref().map(|f| record::Failure {
            kind: f.kind,
            message: f.message.clone(),
            upstream: f.blame == Blame::Upstream,
        });
        let identified = self.identified;
        recorder.finish(Facts { skip: self.skip, identified, page, inserted, failure });
    }

    /// Writes the access line and counts the request in the metrics. `complete`: the whole
    /// body reached the client.
    pub(super) fn emit(&self, bytes: u64, page: PageOutcome, complete: bool) {
        let seconds = self.started.elapsed().as_secs_f64();
        self.metrics.finished(&Finished {
            method: &self.method,
            status: self.status,
            seconds,
            bytes_sent: bytes,
            page,
            identity: self.identified,
            upstream_failure: self.failure.as_ref().and_then(|f| f.upstream),
        });
        let injected = matches!(page, PageOutcome::Injected | PageOutcome::Completed);
        let source = self.identified.source().map_or("-", crate::outcome::Source::as_str);
        macro_rules! access {
            ($level:ident $(, $field:ident = $value:expr)*) => {
                tracing::$level!(
                    target: ACCESS_TARGET,
                    method = %self.method,
                    path = %self.path,
                    status = self.status,
                    bytes,
                    duration_ms = format_args!("{:.1}", seconds * 1000.0),
                    injected,
                    skip = %OrDash(self.skip),
                    identity = %self.identified,
                    identity_source = %source,
                    complete,
                    peer = %self.peer.addr,
                    request_id = %self.request_id.to_str().unwrap_or("-"),
                    $($field = $value,)*
                )
            };
        }
        match &self.failure {
            Some(failure) => access!(warn, error_kind = failure.kind.as_str(), error = failure.message.as_str()),
            None if self.status >= 500 => access!(warn),
            None => access!(info),
        }
    }
}

/// An optional field of the access line: its value, or `-`. Written only if the line is
/// (a `String` made up front cost every request an allocation, logged or not).
struct OrDash<T>(Option<T>);

impl<T: std::fmt::Display> std::fmt::Display for OrDash<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(value) => value.fmt(f),
            None => f.write_str("-"),
        }
    }
}
