//! What the pipeline decided for one request, handed to a caller that asked for it
//! (`invent-proxy explain`): the access line's facts — site, skip, identity, failure, page
//! outcome — with the response head before and after the proxy and what the rewriter put
//! into the page. It is filled in by the same code that serves every request, so it
//! cannot tell another story than the access line.

use http::{HeaderMap, StatusCode};
use invent_rewrite::Inserted;
use tokio::sync::oneshot;

use crate::error::ErrorKind;
use crate::metrics::PageOutcome;
use crate::outcome::{Identified, Skip};

/// How the request's site was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Routed {
    /// The config has one site, without hosts: it serves every host.
    Only,
    /// One of the site's `hosts` names the request's host.
    Host,
    /// No site lists the host: it went to `default_site`.
    Default,
}

/// Which rules a skip came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// The request rules (method, path, navigation), decided before anything was sent.
    Request,
    /// The response rules (status, media type, coding, charset, …), on the upstream's head.
    Response,
    /// The body, as it streamed: a fragment, a charset from a BOM, the rewriter giving up.
    Page,
}

/// What the response body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The upstream's body, untouched.
    Passthrough,
    /// The upstream's body through the rewriter.
    Rewritten,
    /// The proxy's own error page, in place of the upstream's response.
    OwnPage,
}

/// A failure of the request, as its access line has it.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub kind: ErrorKind,
    /// The error and its causes, on one line (no header value, no secret).
    pub message: String,
    /// The upstream is to blame.
    pub upstream: bool,
}

/// What the pipeline decided for one request.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    /// The index in the config's `sites` of the site that served it, and how it was
    /// chosen; `None`: refused before any site took it (a host no site serves).
    pub site: Option<(usize, Routed)>,
    /// The upstream's response head as it arrived (hop-by-hop fields out); `None` when
    /// nothing came back.
    pub upstream: Option<(StatusCode, HeaderMap)>,
    /// The response head the client gets, as the proxy made it (the connection's own
    /// framing fields aside).
    pub response: (StatusCode, HeaderMap),
    pub answer: Answer,
    /// Why the page got no widget, and which rules said so.
    pub skip: Option<(Skip, Stage)>,
    pub identified: Identified,
    pub page: PageOutcome,
    /// What the rewriter inserted, where, with which nonce.
    pub inserted: Option<Inserted>,
    pub failure: Option<Failure>,
}

/// Where one request's [`Record`] goes, once it is complete: when the response head is
/// out for a body that passes through, when the body ends (or is dropped) for one that is
/// rewritten.
#[derive(Debug)]
pub(crate) struct Recorder {
    sender: oneshot::Sender<Record>,
    site: Option<(usize, Routed)>,
    upstream: Option<(StatusCode, HeaderMap)>,
    response: Option<(StatusCode, HeaderMap, Answer)>,
    stage: Option<Stage>,
}

impl Recorder {
    /// A recorder and the receiver its record arrives on.
    pub(crate) fn new() -> (Recorder, oneshot::Receiver<Record>) {
        let (sender, receiver) = oneshot::channel();
        (Recorder { sender, site: None, upstream: None, response: None, stage: None }, receiver)
    }

    pub(super) fn routed(&mut self, index: usize, how: Routed) {
        self.site = Some((index, how));
    }

    pub(super) fn upstream_head(&mut self, status: StatusCode, headers: &HeaderMap) {
        self.upstream = Some((status, headers.clone()));
    }

    pub(super) fn response_head(&mut self, status: StatusCode, headers: &HeaderMap, answer: Answer) {
        self.response = Some((status, headers.clone(), answer));
    }

    /// Notes which rules the request's skip came from.
    pub(super) fn skipped_at(&mut self, stage: Stage) {
        self.stage.get_or_insert(stage);
    }

    /// Sends the record: what the recorder noted along the way, and `facts`. A skip no
    /// rule was noted for came from the page.
    pub(super) fn finish(self, facts: Facts) {
        let Facts { skip, identified, page, inserted, failure } = facts;
        let skip = skip.map(|skip| (skip, self.stage.unwrap_or(Stage::Page)));
        let (site, upstream) = (self.site, self.upstream);
        // Noted before the head went out, which comes before either time the record is sent.
        let (status, headers, answer) =
            self.response.unwrap_or_else(|| (StatusCode::INTERNAL_SERVER_ERROR, HeaderMap::new(), Answer::OwnPage));
        let response = (status, headers);
        let record = Record { site, upstream, response, answer, skip, identified, page, inserted, failure };
        // The caller may have given up waiting: nothing to do then.
        let _ = self.sender.send(record);
    }
}

/// What the request's context knows when the record is complete.
pub(super) struct Facts {
    pub skip: Option<Skip>,
    pub identified: Identified,
    pub page: PageOutcome,
    pub inserted: Option<Inserted>,
    pub failure: Option<Failure>,
}
