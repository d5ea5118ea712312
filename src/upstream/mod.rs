//! The upstream side: the keep-alive client every request goes through, sending again
//! what an upstream closed a reused connection under ([`reuse`]), and the response head
//! as the client may see it. The request as the upstream sees it is [`request`]'s; how
//! connections are made, [`connect`]'s (the proxy's own small fetches use them too,
//! [`fetch`]).

mod connect;
pub(crate) mod fetch;
mod request;
mod reuse;

pub(crate) use connect::connector;
pub(crate) use request::{Forwarding, UploadBody, prepare};

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, Error as LegacyError};
use prometheus_client::metrics::counter::Counter;

use crate::config;
use crate::error::{ProxyError, UpstreamFailure};
use crate::headers;
use crate::per_worker::PerWorker;
use request::Upload;
use reuse::Counting;

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
pub(crate) struct UpstreamClient {
    pools: PerWorker<Pools>,
    in_flight: Arc<AtomicUsize>,
}

struct Pools {
    large_reads: Pool,
    small_reads: Pool,
}

impl UpstreamClient {
    /// Counts one response in flight until the returned guard is dropped.
    pub(crate) fn response_started(&self) -> InFlight {
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
pub(crate) struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Builds the client: keep-alive pooling, `connect_timeout`, and for an `https://`
/// upstream TLS verified against the system's roots, or `upstream.tls.ca_file`'s CAs, for
/// the URL's host or `upstream.tls.server_name`.
/// One pool pair per worker of `workers`.
pub(crate) fn client(upstream: &config::Upstream, workers: usize) -> std::io::Result<UpstreamClient> {
    let tcp = Counting(connect::http_connector(upstream.connect_timeout));
    let connector = connect::connector_over(upstream, tcp)?;
    let pools = PerWorker::new(workers, || Pools {
        large_reads: connect::pooled(connector.clone(), LARGE_READS),
        small_reads: connect::pooled(connector.clone(), connect::SMALL_READS),
    });
    Ok(UpstreamClient { pools, in_flight: Arc::default() })
}

/// Sends the request and waits for the response head. A request the upstream closed a
/// reused keep-alive connection under — before answering a single byte — is sent again if
/// it is safe and has no body ([`reuse`]), on another pooled connection or a new one:
/// again while the tries keep failing that way (each takes a dead connection out of the
/// pool), at most [`MAX_REPLAYS`] times, all within the one `response_timeout`. A new
/// connection that fails is the upstream's failure, and is not tried again. `retried`
/// counts the tries after the first.
pub(crate) async fn send(
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
    if head_size(&response) > connect::SMALL_READS {
        return Err(ProxyError::Upstream(
            format!("the response head is larger than {} bytes", connect::SMALL_READS).into(),
        ));
    }
    let upgrade = (response.status() == http::StatusCode::SWITCHING_PROTOCOLS)
        .then(|| headers::upgrade_protocol(response.headers()))
        .flatten();
    headers::remove_hop_by_hop(response.headers_mut());
    if let Some(protocol) = upgrade {
        headers::restore_upgrade(response.headers_mut(), protocol);
    }
    Ok(response)
}

/// About how many bytes the response head took on the wire. The limit on it is the small
/// read buffer's, whichever pool the response came through: the same under any load.
fn head_size(response: &Response<Incoming>) -> usize {
    let fields: usize = response.headers().iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum();
    fields + "HTTP/1.1 200 OK\r\n\r\n".len()
}
