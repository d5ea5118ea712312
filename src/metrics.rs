//! Prometheus metrics: what the proxy counts, with label values from the fixed words of
//! [`crate::outcome`] and [`crate::error`] only (never a path or anything a visitor sent),
//! and their text exposition for `/metrics`.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::error::UpstreamFailure;
use crate::outcome::{Identified, Skip, Source};

/// A request's method, status class and timing, once its response has been sent.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    status: &'static str,
}

/// A request's latency, by what became of its response.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IdentityLabels {
    outcome: &'static str,
    source: &'static str,
    reason: &'static str,
}

impl From<Identified> for IdentityLabels {
    fn from(identified: Identified) -> Self {
        IdentityLabels {
            outcome: identified.outcome(),
            source: identified.source().map_or("", Source::as_str),
            reason: identified.reason(),
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// What became of a response's page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PageOutcome {
    /// The widget was inserted.
    Injected,
    /// The page had its own `invent-assistant` element: it got the identity attributes
    /// (and the script if missing) instead of a second widget.
    Completed,
    /// Passed through without the widget, for this reason (`None`: the proxy's own error
    /// page, which no rule was asked about).
    Passed(Option<Skip>),
}

impl PageOutcome {
    /// The `outcome` and `reason` labels.
    fn labels(self) -> OutcomeLabels {
        let (outcome, reason) = match self {
            PageOutcome::Injected => ("injected", ""),
            PageOutcome::Completed => ("completed", "already_present"),
            PageOutcome::Passed(skip) => ("passed", skip.map_or("none", Skip::as_str)),
        };
        OutcomeLabels { outcome, reason }
    }

    /// The latency histogram's `outcome`: `injected`, `completed`, `passed`, or `error` for
    /// the proxy's own error pages (an upstream that failed, a request refused at the edge).
    fn duration_outcome(self) -> &'static str {
        match self {
            PageOutcome::Injected => "injected",
            PageOutcome::Completed => "completed",
            PageOutcome::Passed(Some(_)) => "passed",
            PageOutcome::Passed(None) => "error",
        }
    }
}

/// The latency buckets: 1 ms to 33 s, doubling.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// What one finished request adds to the metrics.
pub(crate) struct Finished<'a> {
    pub method: &'a http::Method,
    pub status: u16,
    pub seconds: f64,
    pub bytes_sent: u64,
    pub page: PageOutcome,
    pub identity: Identified,
    pub upstream_failure: Option<UpstreamFailure>,
}

/// Every metric the proxy keeps, registered once per running proxy.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<DurationLabels, Histogram, fn() -> Histogram>,
    keys_loaded: Gauge,
    bytes_sent: Counter,
    bytes_received: Counter,
    upstream_errors: Family<KindLabels, Counter>,
    upstream_retries: Counter,
    pages: Family<OutcomeLabels, Counter>,
    identity: Family<IdentityLabels, Counter>,
    open_connections: Gauge<i64, std::sync::atomic::AtomicI64>,
    reloads: Family<ResultLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("invent_proxy");
        let metrics = Metrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(duration_histogram as fn() -> Histogram),
            keys_loaded: Gauge::default(),
            bytes_sent: Counter::<u64, AtomicU64>::default(),
            bytes_received: Counter::default(),
            upstream_errors: Family::default(),
            upstream_retries: Counter::default(),
            pages: Family::default(),
            identity: Family::default(),
            open_connections: Gauge::default(),
            reloads: Family::default(),
            registry: Registry::default(),
        };
        registry.register("requests", "Requests answered, by method and status class", metrics.requests.clone());
        registry.register(
            "request_duration_seconds",
            "Time from a request's arrival to the end of its response, by what became of the response",
            metrics.duration.clone(),
        );
        registry.register("sent_bytes", "Response body bytes sent to clients", metrics.bytes_sent.clone());
        registry.register("received_bytes", "Request body bytes received from clients", metrics.bytes_received.clone());
        registry.register(
            "upstream_errors",
            "Failed exchanges with the upstream, by kind",
            metrics.upstream_errors.clone(),
        );
        registry.register(
            "upstream_retries",
            "Requests sent again on a fresh connection after a reused keep-alive connection closed under them",
            metrics.upstream_retries.clone(),
        );
        registry.register(
            "responses",
            "Responses with the widget injected, or passed through and why",
            metrics.pages.clone(),
        );
        registry.register("identity", "Identity outcomes of requests", metrics.identity.clone());
        registry.register("open_connections", "Client connections open now", metrics.open_connections.clone());
        registry.register(
            "identity_keys_loaded",
            "1 when every key set the identity sources verify with (jwks_url, key_url) has loaded, else 0",
            metrics.keys_loaded.clone(),
        );
        registry.register("config_reloads", "Config reloads, by result", metrics.reloads.clone());
        registry.register("build", "The running build", Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]));
        Metrics { registry, ..metrics }
    }

    /// Counts a finished request.
    pub(crate) fn finished(&self, request: &Finished<'_>) {
        let labels = RequestLabels { method: method_class(request.method), status: status_class(request.status) };
        self.requests.get_or_create(&labels).inc();
        let outcome = request.page.duration_outcome();
        self.duration.get_or_create(&DurationLabels { outcome }).observe(request.seconds);
        self.bytes_sent.inc_by(request.bytes_sent);
        if let Some(failure) = request.upstream_failure {
            self.upstream_errors.get_or_create(&KindLabels { kind: failure.as_str() }).inc();
        }
        self.pages.get_or_create(&request.page.labels()).inc();
        self.identity.get_or_create(&IdentityLabels::from(request.identity)).inc();
    }

    /// The counter of request body bytes received from clients.
    pub(crate) fn received_bytes(&self) -> Counter {
        self.bytes_received.clone()
    }

    /// The counter of requests sent to the upstream a second time (see `upstream::reuse`).
    pub(crate) fn upstream_retries(&self) -> &Counter {
        &self.upstream_retries
    }

    /// Counts a client connection open until the guard is dropped.
    pub(crate) fn connection_opened(&self) -> OpenConnection {
        self.open_connections.inc();
        OpenConnection(self.open_connections.clone())
    }

    /// Counts a config reload.
    pub(crate) fn reloaded(&self, ok: bool) {
        self.reloads.get_or_create(&ResultLabels { result: if ok { "success" } else { "failure" } }).inc();
    }

    /// Sets `identity_keys_loaded`, read when the metrics are scraped.
    pub(crate) fn set_keys_loaded(&self, loaded: bool) {
        self.keys_loaded.set(i64::from(loaded));
    }

    /// The Prometheus text exposition of every metric.
    pub(crate) fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// One open client connection; dropping it counts the connection closed.
pub(crate) struct OpenConnection(Gauge<i64, std::sync::atomic::AtomicI64>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn method_class(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::HEAD => "HEAD",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::PATCH => "PATCH",
        http::Method::DELETE => "DELETE",
        http::Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(method: &http::Method) -> Finished<'_> {
        Finished {
            method,
            status: 502,
            seconds: 0.003,
            bytes_sent: 120,
            page: PageOutcome::Passed(Some(Skip::Status)),
            identity: Identified::None,
            upstream_failure: Some(UpstreamFailure::Connect),
        }
    }

    #[test]
    fn a_finished_request_shows_in_the_exposition_with_fixed_labels() {
        let metrics = Metrics::new();
        let method = http::Method::from_bytes(b"BREW").unwrap();
        metrics.finished(&finished(&method));
        let text = metrics.encode();
        assert!(text.contains(r#"invent_proxy_requests_total{method="other",status="5xx"} 1"#), "{text}");
        assert!(text.contains(r#"invent_proxy_upstream_errors_total{kind="connect"} 1"#), "{text}");
        assert!(text.contains(r#"invent_proxy_responses_total{outcome="passed",reason="status"} 1"#), "{text}");
        assert!(text.contains("invent_proxy_sent_bytes_total 120"), "{text}");
        assert!(text.contains(r#"invent_proxy_request_duration_seconds_count{outcome="passed"} 1"#), "{text}");
        metrics.finished(&Finished { page: PageOutcome::Passed(None), ..finished(&method) });
        metrics.finished(&Finished { page: PageOutcome::Injected, ..finished(&method) });
        let text = metrics.encode();
        for outcome in ["passed", "error", "injected"] {
            let count = format!(r#"invent_proxy_request_duration_seconds_count{{outcome="{outcome}"}} 1"#);
            assert!(text.contains(&count), "{count} in {text}");
        }
        assert!(text.contains("invent_proxy_identity_keys_loaded 0"), "{text}");
        metrics.set_keys_loaded(true);
        assert!(metrics.encode().contains("invent_proxy_identity_keys_loaded 1"));
        assert!(!text.contains("BREW"), "a method outside the fixed set is not a label value");
        let open = metrics.connection_opened();
        assert!(metrics.encode().contains("invent_proxy_open_connections 1"));
        drop(open);
        assert!(metrics.encode().contains("invent_proxy_open_connections 0"));
    }
}
