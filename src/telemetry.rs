//! Logs: `tracing` set-up, and the one access line each request leaves behind.
//!
//! The access line carries the request path without its query string and never a header
//! value, so cookies, tokens and secrets cannot reach the log.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::Method;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use crate::identity::Outcome;
use crate::inject::Skip;
use crate::metrics::{Finished, Metrics, PageOutcome, UpstreamFailure};

/// The `tracing` target of access lines, for filtering (`RUST_LOG=access=off`).
pub const ACCESS_TARGET: &str = "access";

/// Installs the global subscriber: `log.format`, and `RUST_LOG` if set, else `log.level`.
pub fn init(log: &crate::config::Log) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&log.level));
    // A second call (tests run the proxy more than once) keeps the first subscriber.
    let _ = match log.format {
        LogFormat::Text => {
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
            tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).try_init()
        }
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_env_filter(filter)
            .try_init(),
    };
}

/// What one request did, gathered along the pipeline and written once when its response
/// body ends or is dropped.
#[derive(Debug)]
pub struct AccessLog {
    started: Instant,
    method: Method,
    path: String,
    peer: SocketAddr,
    pub status: u16,
    pub identity: Outcome,
    /// Why the widget was not injected, once known.
    pub skip: Option<Skip>,
    /// The page had its own widget element, which the proxy completed.
    pub own_widget: bool,
    /// The failure behind an error response or a broken body, already rendered.
    pub error: Option<(&'static str, String)>,
    /// The request's `X-Request-Id`, as sent upstream and returned.
    pub request_id: String,
    /// How the exchange with the upstream failed, if it did.
    pub upstream_failure: Option<UpstreamFailure>,
    /// Set if the client's request body failed: a broken response is then the client's.
    pub client_body: crate::error::ClientBodyFailure,
    metrics: Arc<Metrics>,
}

impl AccessLog {
    pub fn start(method: &Method, path: &str, peer: SocketAddr, metrics: Arc<Metrics>) -> Self {
        AccessLog {
            started: Instant::now(),
            method: method.clone(),
            path: path.to_owned(),
            peer,
            status: 0,
            identity: Outcome::None,
            skip: None,
            own_widget: false,
            error: None,
            upstream_failure: None,
            client_body: crate::error::ClientBodyFailure::default(),
            request_id: String::new(),
            metrics,
        }
    }

    /// Writes the access line and counts the request in the metrics. `complete`: the whole
    /// body reached the client.
    pub fn emit(&self, bytes: u64, injected: bool, complete: bool) {
        let seconds = self.started.elapsed().as_secs_f64();
        self.metrics.finished(&Finished {
            method: &self.method,
            status: self.status,
            seconds,
            bytes_sent: bytes,
            page: match (injected, self.own_widget) {
                (true, false) => PageOutcome::Injected,
                (true, true) => PageOutcome::Completed,
                (false, _) => PageOutcome::Passed(self.skip.map_or("none", Skip::as_str)),
            },
            identity: self.identity.labels(),
            upstream_failure: self.upstream_failure,
        });
        let duration_ms = seconds * 1000.0;
        let skip = self.skip.map_or_else(|| "-".to_owned(), |s| s.to_string());
        macro_rules! access {
            ($level:ident $(, $field:ident = $value:expr)*) => {
                tracing::$level!(
                    target: ACCESS_TARGET,
                    method = %self.method,
                    path = %self.path,
                    status = self.status,
                    bytes,
                    duration_ms = format_args!("{duration_ms:.1}"),
                    injected,
                    skip,
                    identity = %self.identity,
                    complete,
                    peer = %self.peer,
                    request_id = %self.request_id,
                    $($field = $value,)*
                )
            };
        }
        match &self.error {
            Some((kind, message)) => access!(warn, error_kind = *kind, error = message.as_str()),
            None if self.status >= 500 => access!(warn),
            None => access!(info),
        }
    }
}
