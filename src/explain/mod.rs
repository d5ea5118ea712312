//! `invent-proxy explain`: one request through the configured pipeline to the real
//! upstream, without listening, and what the pipeline decided — in the words an operator
//! needs when the bubble does not appear.
//!
//! Nothing here decides anything: the request ([`target`]) is served by the same
//! [`Sites`] a running proxy serves with, over an in-memory connection instead of a
//! socket, and the pipeline tells what it decided in a [`Record`] (the access line's facts,
//! the response heads before and after, what the rewriter inserted); [`report`] puts that
//! into words.

mod report;
mod target;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use http_body_util::BodyExt;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

pub use target::{Target, TargetError};

use crate::config::Config;
use crate::error::ErrorKind;
use crate::metrics::PageOutcome;
use crate::pipeline::{Peer, Record, Recorder, SiteError, Sites};

/// What the request came to, for the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The page gets the widget: inserted, or the page's own `invent-assistant` completed.
    Widget,
    /// The response goes out without the widget; the report says why.
    NoWidget,
    /// The request failed: the upstream could not be reached, did not answer in time or
    /// broke off, or the proxy failed (the visitor gets a 502/504 page).
    Failed,
}

impl Verdict {
    /// `explain`'s exit status: 0 the widget, 1 no widget, 3 the request failed (2 is for
    /// what stops `explain` itself: the command line, the config, a site's set-up).
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Widget => 0,
            Verdict::NoWidget => 1,
            Verdict::Failed => 3,
        }
    }
}

/// The report and what it comes to.
#[derive(Debug)]
pub struct Explanation {
    pub report: String,
    pub verdict: Verdict,
    /// Why the request failed, on one line, when it did ([`Verdict::Failed`]).
    pub error: Option<String>,
}

/// Why `explain` could not run the request at all.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// A site could not be set up (a `jwks_url` that does not load, a trust store).
    #[error(transparent)]
    Site(#[from] SiteError),
    /// The in-memory exchange with the pipeline broke: a bug, not the site's doing.
    #[error("the request could not be run through the pipeline: {0}")]
    Exchange(String),
}

/// The peer the request comes from: the proxy's own host, as for an operator on it.
const PEER: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// Builds `config`'s sites as `run` would, sends `target` through them to the upstream,
/// and explains what became of it.
pub async fn explain(config: Config, target: &Target) -> Result<Explanation, ExplainError> {
    let sites = Arc::new(Sites::start(config.clone(), Arc::default()).await?);
    let peer = Peer { addr: PEER, tls: target.https };
    let record = exchange(Arc::clone(&sites), target, peer).await?;
    let verdict = verdict(&record);
    let report = report::Report { config: &config, sites: &sites, target, peer, record: &record, verdict };
    let error = record.failure.as_ref().filter(|_| verdict == Verdict::Failed).map(|failure| failure.message.clone());
    Ok(Explanation { report: report.to_string(), verdict, error })
}

fn verdict(record: &Record) -> Verdict {
    if record.failure.as_ref().is_some_and(|failure| failure.upstream || failure.kind == ErrorKind::Internal) {
        return Verdict::Failed;
    }
    match record.page {
        PageOutcome::Injected | PageOutcome::Completed => Verdict::Widget,
        PageOutcome::Passed(_) => Verdict::NoWidget,
    }
}

/// Serves `target` on one in-memory HTTP/1.1 connection with `sites`, as the listener
/// serves a client's, and returns the pipeline's record. A page being rewritten is read to
/// its end (the record comes when its body ends); a response that passes through is not
/// read at all (its record comes with its head): an endless stream cannot hold it up.
async fn exchange(sites: Arc<Sites>, target: &Target, peer: Peer) -> Result<Record, ExplainError> {
    let broken = |error: &dyn std::fmt::Display| ExplainError::Exchange(error.to_string());
    let (recorder, mut record) = Recorder::new();
    let recorder = Arc::new(Mutex::new(Some(recorder)));
    let service = service_fn(move |req| {
        let (sites, recorder) = (Arc::clone(&sites), recorder.lock().unwrap_or_else(PoisonError::into_inner).take());
        async move {
            let response = match recorder {
                Some(recorder) => sites.handle_recorded(req, peer, recorder).await,
                None => sites.handle(req, peer, false).await,
            };
            Ok::<_, Infallible>(response)
        }
    });
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let server =
        tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(server_io), service));
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(client_io)).await.map_err(|e| broken(&e))?;
    let client = tokio::spawn(connection);
    let request = target.request().map_err(|e| broken(&e))?;
    // Read until the body ends or breaks (an upstream that broke off mid-page): either way
    // the record says what happened.
    let read_to_end = async {
        let Ok(response) = sender.send_request(request).await else { return };
        let mut body = response.into_body();
        while let Some(Ok(_)) = body.frame().await {}
    };
    let received = tokio::select! {
        record = &mut record => Some(record),
        () = read_to_end => None,
    };
    // The connection goes, and with it anything of the response still held.
    client.abort();
    let record = match received {
        Some(record) => record,
        None => record.await,
    };
    server.abort();
    record.map_err(|_| ExplainError::Exchange("the pipeline sent no record of the request".to_owned()))
}
