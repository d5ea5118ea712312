//! The upstream side: a pooled keep-alive client, and the request as the upstream sees it
//! (origin-form URI, `Host`, `X-Forwarded-*`, no hop-by-hop headers).

use http::header::{self, HeaderValue};
use http::{Request, Response, Uri, Version};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, Error as LegacyError};
use prometheus_client::metrics::counter::Counter;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::watch;

use crate::config::{self, HostHeader};
use crate::error::{ClientBodyFailure, ProxyError};
use crate::headers;
use crate::metrics::UpstreamFailure;
use crate::proxy::Peer;
use crate::reuse::{self, Counting};
use crate::upgrade;
use crate::workers::PerWorker;

type Pool = Client<HttpsConnector<Counting<HttpConnector>>, UploadBody>;

/// Large reads: a fifth less CPU per byte than small ones (the kernel's cost is per
/// write, and a chunk read is a chunk written), for four times the memory.
const LARGE_READS: usize = 64 * 1024;

/// Up to this many responses in flight, upstream connections read in large chunks; beyond
/// it, in small ones. A chunk rests in up to three places (the read buffer, the body
/// channel, the client's write queue), so large reads cost at most this × 3 × 64 KiB
/// (12 MB), and under a flood a connection holds about 100 KB, as nginx's 8 × 4 KiB
/// `proxy_buffers` and HAProxy's 16 KiB buffers keep it bounded.
const LARGE_READS_WHILE_UNDER: usize = 64;

/// The keep-alive pools every request to the upstream goes through, one per read size and
/// per worker (a worker reuses the connections it reads itself), and the count of
/// responses in flight that chooses between the sizes.
pub struct UpstreamClient {
    pools: PerWorker<Pools>,
    in_flight: Arc<AtomicUsize>,
}

struct Pools {
    large_reads: Pool,
    small_reads: Pool,
}

impl UpstreamClient {
    /// Counts one response in flight until the returned guard is dropped.
    pub fn response_started(&self) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(&self.in_flight))
    }

    fn pool(&self) -> &Pool {
        let pools = self.pools.get();
        match self.in_flight.load(Ordering::Relaxed) {
            n if n <= LARGE_READS_WHILE_UNDER => &pools.large_reads,
            _ => &pools.small_reads,
        }
    }
}

/// One response in flight, from its request's arrival until its body ends or is dropped.
pub struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Builds the client: keep-alive pooling, `connect_timeout`, and for an `https://`
/// upstream TLS verified against the system's roots, or `upstream.tls.ca_file`'s CAs, for
/// the URL's host or `upstream.tls.server_name`.
/// One pool pair per worker of `workers`.
pub fn client(upstream: &config::Upstream, workers: usize) -> std::io::Result<UpstreamClient> {
    let tcp = Counting(crate::fetch::http_connector(upstream.connect_timeout));
    let connector = connector_over(upstream, tcp)?;
    let pools = PerWorker::new(workers, || Pools {
        large_reads: crate::fetch::pooled(connector.clone(), LARGE_READS),
        small_reads: crate::fetch::pooled(connector.clone(), crate::fetch::SMALL_READS),
    });
    Ok(UpstreamClient { pools, in_flight: Arc::default() })
}

/// How connections to the upstream are made: `connect_timeout`, and TLS verified as
/// [`client`] says. Lookups on the upstream connect the same way.
pub fn connector(upstream: &config::Upstream) -> std::io::Result<HttpsConnector<HttpConnector>> {
    connector_over(upstream, crate::fetch::http_connector(upstream.connect_timeout))
}

/// [`connector`] over `tcp`'s connections.
fn connector_over<T>(upstream: &config::Upstream, tcp: T) -> std::io::Result<HttpsConnector<T>> {
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match (&upstream.tls.ca_certs, upstream.url.scheme == http::uri::Scheme::HTTPS) {
        (Some(ca_certs), _) => builder.with_tls_config(tls_config(ca_certs)?),
        (None, true) => builder.with_native_roots()?,
        // Plain http: no trust store is read, so a host without one still runs.
        (None, false) => builder.with_tls_config(tls_config(&[])?),
    };
    let mut builder = builder.https_or_http();
    if let Some(name) = &upstream.tls.server_name {
        builder = builder.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name.clone()));
    }
    Ok(builder.enable_http1().wrap_connector(tcp))
}

/// A client TLS configuration trusting exactly `ca_certs`.
pub(crate) fn tls_config(
    ca_certs: &[rustls::pki_types::CertificateDer<'static>],
) -> std::io::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in ca_certs {
        roots.add(cert.clone()).map_err(std::io::Error::other)?;
    }
    Ok(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth())
}

/// Turns the client's request into the upstream's: same method, path, query, headers
/// and streamed body, addressed to the upstream.
pub fn prepare(
    (req, failure): (Request<Incoming>, ClientBodyFailure),
    peer: Peer,
    (trusted_peer, underscores): (bool, bool),
    upstream: &config::Upstream,
) -> Result<Request<UploadBody>, ProxyError> {
    let (mut parts, body) = req.into_parts();
    if parts.method == http::Method::CONNECT {
        return Err(ProxyError::BadRequest("CONNECT is not supported by a reverse proxy"));
    }
    let client_host = headers::client_host(&parts.headers, &parts.uri);
    if parts.version == Version::HTTP_2 {
        join_cookie_headers(&mut parts.headers);
    }
    let upgrade = upgrade::requested_protocol(&parts.headers);
    headers::remove_hop_by_hop(&mut parts.headers);
    if !underscores {
        headers::remove_underscored(&mut parts.headers);
    }
    if let Some(protocol) = upgrade {
        upgrade::restore_headers(&mut parts.headers, protocol);
    }
    let proto = if peer.tls { "https" } else { "http" };
    headers::set_forwarded(&mut parts.headers, peer.addr.ip(), proto, client_host.as_ref(), trusted_peer);
    let host = match (upstream.host_header, client_host) {
        (HostHeader::Preserve, Some(client_host)) => client_host,
        _ => upstream.url.host.clone(),
    };
    parts.headers.insert(header::HOST, host);
    let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    parts.uri = Uri::builder()
        .scheme(upstream.url.scheme.clone())
        .authority(upstream.url.authority.clone())
        .path_and_query(path_and_query)
        .build()
        .map_err(|_| ProxyError::BadRequest("request target cannot be forwarded"))?;
    parts.version = Version::HTTP_11;
    Ok(Request::from_parts(parts, UploadBody::new(body, failure)))
}

/// HTTP/2 clients may split `Cookie` over several fields; an HTTP/1.1 upstream needs one
/// (RFC 9113 §8.2.3).
fn join_cookie_headers(headers: &mut http::HeaderMap) {
    let cookies: Vec<&[u8]> = headers.get_all(header::COOKIE).iter().map(HeaderValue::as_bytes).collect();
    if cookies.len() < 2 {
        return;
    }
    let joined = cookies.join(&b"; "[..]);
    if let Ok(value) = HeaderValue::from_bytes(&joined) {
        headers.insert(header::COOKIE, value);
    }
}

/// Sends the request and waits for the response head. A request the upstream closed a
/// reused keep-alive connection under — before answering a single byte — is sent again if
/// it is safe and has no body ([`reuse`]), on another pooled connection or a new one:
/// again while the tries keep failing that way (each takes a dead connection out of the
/// pool), at most [`MAX_REPLAYS`] times, all within the one `response_timeout`. A new
/// connection that fails is the upstream's failure, and is not tried again. `retried`
/// counts the tries after the first.
pub async fn send(
    client: &UpstreamClient,
    req: Request<UploadBody>,
    upstream: &config::Upstream,
    retried: &Counter,
) -> Result<Response<Incoming>, ProxyError> {
    let limit = upstream.response_timeout;
    let started = tokio::time::Instant::now();
    let replay = reuse::replayable(&req).then(|| replay_of(&req));
    let mut result = exchange(client, req, limit).await?;
    for _ in 0..MAX_REPLAYS {
        let (Err(error), Some(replay)) = (&result, &replay) else { break };
        if !reuse::closed_under_on_reuse(error) || crate::error::classify(error) != UpstreamFailure::Reset {
            break;
        }
        let left = limit.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Err(ProxyError::UpstreamTimeout(limit));
        }
        let error = crate::error::error_chain(error);
        tracing::debug!(%error, "a reused upstream connection was closed under the request; sending it again");
        retried.inc();
        result = exchange(client, replay_of(replay), left).await.map_err(|_| ProxyError::UpstreamTimeout(limit))?;
    }
    head_received(result)
}

/// How many times one request is sent again after failing on reused connections.
const MAX_REPLAYS: usize = 4;

/// A copy of a request without a body, to send again.
fn replay_of(req: &Request<UploadBody>) -> Request<UploadBody> {
    let mut replay = Request::new(UploadBody::empty());
    *replay.method_mut() = req.method().clone();
    *replay.uri_mut() = req.uri().clone();
    *replay.version_mut() = req.version();
    *replay.headers_mut() = req.headers().clone();
    replay
}

/// One try: the request sent on a pooled connection, and its response head or the
/// client's error. While the request body is going up, `limit` runs only while the
/// upstream is not taking it (a stalled upstream), never while the client is slow to send
/// it; once it is sent, from then.
async fn exchange(
    client: &UpstreamClient,
    mut req: Request<UploadBody>,
    limit: Duration,
) -> Result<Result<Response<Incoming>, LegacyError>, ProxyError> {
    let progress = req.body_mut().progress.take();
    let mut request = std::pin::pin!(client.pool().request(req));
    if let Some(mut progress) = progress {
        loop {
            let upstream_to_move = *progress.borrow_and_update() == Upload::WaitingForUpstream;
            tokio::select! {
                result = &mut request => return Ok(result),
                changed = progress.changed() => if changed.is_err() || *progress.borrow() == Upload::Done { break },
                () = tokio::time::sleep(limit), if upstream_to_move => return Err(ProxyError::UpstreamTimeout(limit)),
            }
        }
    }
    tokio::time::timeout(limit, request).await.map_err(|_| ProxyError::UpstreamTimeout(limit))
}

fn head_received(result: Result<Response<Incoming>, LegacyError>) -> Result<Response<Incoming>, ProxyError> {
    match result {
        Err(e) if e.is_connect() => Err(ProxyError::UpstreamConnect(e.into())),
        Err(e) => Err(ProxyError::Upstream(e.into())),
        Ok(response) => {
            reuse::carried(&response);
            checked_head(response)
        }
    }
}

/// The response head as the client may see it: not too large, hop-by-hop fields out.
fn checked_head(mut response: Response<Incoming>) -> Result<Response<Incoming>, ProxyError> {
    if head_size(&response) > crate::fetch::SMALL_READS {
        return Err(ProxyError::Upstream(
            format!("the response head is larger than {} bytes", crate::fetch::SMALL_READS).into(),
        ));
    }
    let upgrade = (response.status() == http::StatusCode::SWITCHING_PROTOCOLS)
        .then(|| upgrade::requested_protocol(response.headers()))
        .flatten();
    headers::remove_hop_by_hop(response.headers_mut());
    if let Some(protocol) = upgrade {
        upgrade::restore_headers(response.headers_mut(), protocol);
    }
    Ok(response)
}

/// About how many bytes the response head took on the wire. The limit on it is the small
/// read buffer's, whichever pool the response came through: the same under any load.
fn head_size(response: &Response<Incoming>) -> usize {
    let fields: usize = response.headers().iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum();
    fields + "HTTP/1.1 200 OK\r\n\r\n".len()
}

/// Where an upload stands, for [`send`]'s timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upload {
    /// The upstream asked for more and the client has not sent it yet.
    WaitingForClient,
    /// A chunk went to the upstream, which has not asked for the next one yet.
    WaitingForUpstream,
    Done,
}

/// The client's request body on its way to the upstream, streamed as it arrives. It
/// tells [`send`] which side it is waiting on.
pub struct UploadBody {
    /// `None` for a request sent again without its (empty) body.
    inner: Option<Incoming>,
    /// Taken by [`send`] to watch the upload; `None` for a body with nothing to send.
    progress: Option<watch::Receiver<Upload>>,
    report: Option<watch::Sender<Upload>>,
    /// Counts the bytes received from the client, if set.
    received: Option<prometheus_client::metrics::counter::Counter>,
    /// Where a failure of the client's body is noted.
    failure: ClientBodyFailure,
}

impl UploadBody {
    /// Counts the body's bytes into `counter` as they arrive from the client.
    pub fn count_into(&mut self, counter: prometheus_client::metrics::counter::Counter) {
        self.received = Some(counter);
    }

    fn new(inner: Incoming, failure: ClientBodyFailure) -> Self {
        if inner.is_end_stream() {
            return UploadBody { inner: Some(inner), progress: None, report: None, received: None, failure };
        }
        let (report, progress) = watch::channel(Upload::WaitingForUpstream);
        UploadBody { inner: Some(inner), progress: Some(progress), report: Some(report), received: None, failure }
    }

    fn empty() -> Self {
        UploadBody { inner: None, progress: None, report: None, received: None, failure: ClientBodyFailure::default() }
    }

    fn report(&self, state: Upload) {
        if let Some(report) = &self.report {
            report.send_if_modified(|current| std::mem::replace(current, state) != state);
        }
    }
}

impl Body for UploadBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let Some(inner) = self.inner.as_mut() else { return Poll::Ready(None) };
        let Poll::Ready(frame) = Pin::new(inner).poll_frame(cx) else {
            self.report(Upload::WaitingForClient);
            return Poll::Pending;
        };
        match &frame {
            Some(Ok(frame)) => {
                if let Some(counter) = &self.received {
                    counter.inc_by(frame.data_ref().map_or(0, |data| data.len() as u64));
                }
            }
            Some(Err(error)) => self.failure.set(error),
            None => {}
        }
        if !matches!(frame, Some(Ok(_))) || self.is_end_stream() {
            self.report(Upload::Done);
            self.report = None;
        } else {
            self.report(Upload::WaitingForUpstream);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Incoming::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.as_ref().map_or_else(|| SizeHint::with_exact(0), Incoming::size_hint)
    }
}
