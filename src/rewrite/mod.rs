//! The streaming rewrite: an HTTP body that feeds the upstream's bytes through lol_html
//! and yields the page with the widget, chunk by chunk, never holding the whole page.
//!
//! Before the response head goes out, [`RewriteBody::sniff`] reads just far enough to
//! know whether the body is a whole page: a page gets the rewritten head and body; a
//! fragment keeps the upstream's head and bytes exactly. It never holds the head back
//! longer than [`SNIFF_DEADLINE`].

mod charset;
mod handlers;

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use lol_html::send::HtmlRewriter;
use tracing::debug;

pub use handlers::{Injection, REWRITER_MAX_MEMORY};

use crate::codec::{Decoder, Encoder};
use handlers::{PageState, Sink, settings};

/// The error of a body on the request path: whatever the upstream body failed with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How much of a body is read, at most, to find out whether it is a whole page before
/// the response head is sent. Pages show a doctype or `<html>` in their first bytes.
pub const SNIFF_LIMIT: usize = 64 * 1024;

/// How long [`RewriteBody::sniff`] may hold the response head back while the body is
/// still unclear. Whole pages show themselves in their first bytes, well before this.
pub const SNIFF_DEADLINE: std::time::Duration = std::time::Duration::from_millis(100);

/// What the first bytes of a body showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// A doctype, `<html>` or `<body>`: the page is rewritten.
    Page,
    /// None within [`SNIFF_LIMIT`] or the whole body: it passes through untouched.
    NotPage,
    /// The upstream paused before it was clear: the head goes out as a page's, and the
    /// body is still rewritten (a fragment's bytes come out unchanged).
    Undecided,
}

/// Where a page's rewrite stands.
enum Stage {
    /// No charset in the header: the first bytes (a BOM?) decide how to read the page.
    AwaitingFirstBytes {
        injection: Arc<Injection>,
        prefix: Vec<u8>,
    },
    Rewriting(Box<HtmlRewriter<'static, Sink>>),
    /// Not a page, or the rewriter gave up (memory cap, any error): bytes flow as they come.
    PassingThrough,
    Finished,
}

/// A body that rewrites an HTML page from `upstream` as it streams.
pub struct RewriteBody<B> {
    upstream: B,
    stage: Stage,
    output: Arc<Mutex<BytesMut>>,
    state: Arc<PageState>,
    /// Bytes decided while sniffing, sent before anything else.
    pending: VecDeque<Bytes>,
    /// The page's encoding, when the rewriter cannot handle it (UTF-16 by its BOM).
    refused_charset: Option<&'static str>,
    /// Upstream trailers, held until the rewriter's last bytes are out.
    trailers: Option<HeaderMap>,
    /// Decodes a compressed page before it is rewritten.
    decoder: Option<Decoder>,
    /// Encodes the rewritten page for a client that accepts the page's coding.
    encoder: Option<Encoder>,
}

/// How a compressed page is read and sent on: decoded, and encoded again if the client
/// accepts the coding (else sent as identity). The default passes bytes as they are.
#[derive(Default)]
pub struct Transcode {
    pub decoder: Option<Decoder>,
    pub encoder: Option<Encoder>,
}

impl<B> RewriteBody<B> {
    pub fn new(upstream: B, injection: Injection, transcode: Transcode) -> Self {
        let mut body = RewriteBody {
            upstream,
            stage: Stage::PassingThrough,
            output: Arc::new(Mutex::new(BytesMut::with_capacity(16 * 1024))),
            state: Arc::new(PageState::default()),
            pending: VecDeque::new(),
            refused_charset: None,
            trailers: None,
            decoder: transcode.decoder,
            encoder: transcode.encoder,
        };
        let injection = Arc::new(injection);
        match injection.encoding {
            Some(_) => body.start(injection, &[]),
            None => body.stage = Stage::AwaitingFirstBytes { injection, prefix: Vec::new() },
        }
        body
    }

    /// The charset the rewriter could not handle, if that is why the page passed through.
    pub fn refused_charset(&self) -> Option<&'static str> {
        self.refused_charset
    }

    /// Creates the rewriter for the page's encoding and feeds it `first_bytes`; or, for an
    /// encoding it cannot handle, lets the page through as it is.
    fn start(&mut self, injection: Arc<Injection>, first_bytes: &[u8]) {
        match charset::choose(injection.encoding, first_bytes) {
            Ok(decoding) => {
                let settings = settings(injection, Arc::clone(&self.state), decoding);
                let rewriter = HtmlRewriter::new(settings, Sink(Arc::clone(&self.output)));
                self.stage = Stage::Rewriting(Box::new(rewriter));
                self.write(first_bytes);
            }
            Err(charset) => {
                debug!(charset, "the page's encoding cannot be rewritten; it passes through");
                self.refused_charset = Some(charset);
                self.stage = Stage::PassingThrough;
                self.output.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(first_bytes);
            }
        }
    }

    /// Whether the widget went into the page (so far).
    pub fn injected(&self) -> bool {
        PageState::flag(&self.state.injected)
    }

    /// Whether the body turned out to be a whole page (so far).
    pub fn is_page(&self) -> bool {
        PageState::flag(&self.state.page)
    }

    /// Whether the rewriter gave up and the page passed through unchanged from some point.
    pub fn bailed_out(&self) -> bool {
        self.is_page() && matches!(self.stage, Stage::PassingThrough) || PageState::flag(&self.state.bailed_out)
    }

    /// The exact length of the body, when sniffing already read all of it.
    pub fn complete_len(&self) -> Option<u64> {
        let done = matches!(self.stage, Stage::Finished) && self.trailers.is_none() && self.encoder.is_none();
        done.then(|| self.pending.iter().map(|b| b.len() as u64).sum())
    }

    fn take_output(&self) -> Bytes {
        self.output.lock().unwrap_or_else(PoisonError::into_inner).split().freeze()
    }

    /// Upstream bytes as page bytes: decoded, if the page is compressed. An error is
    /// corrupt compressed input.
    fn decode(&mut self, data: Bytes) -> Result<Bytes, BoxError> {
        match &mut self.decoder {
            Some(decoder) => Ok(decoder.push(&data)?),
            None => Ok(data),
        }
    }

    /// The output so far, encoded if the client gets the page compressed.
    fn take_encoded(&mut self) -> Result<Bytes, BoxError> {
        let out = self.take_output();
        match &mut self.encoder {
            Some(encoder) => Ok(encoder.push(&out)?),
            None => Ok(out),
        }
    }

    /// The last output, with the end of the encoded stream.
    fn take_final(&mut self) -> Result<Bytes, BoxError> {
        let out = self.take_output();
        match self.encoder.take() {
            Some(encoder) => Ok(encoder.finish(&out)?),
            None => Ok(out),
        }
    }

    /// Page bytes to the rewriter, or straight to the output once it has given up.
    fn feed(&mut self, page_bytes: &[u8]) {
        match self.stage {
            Stage::PassingThrough => {
                self.output.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(page_bytes);
            }
            Stage::Finished => {}
            _ => self.write(page_bytes),
        }
    }

    /// The end of the upstream body: the decoder's last bytes, then the rewriter's end.
    fn end_input(&mut self) -> Result<(), BoxError> {
        if let Some(decoder) = self.decoder.take() {
            let tail = decoder.finish()?;
            self.feed(&tail);
        }
        self.end();
        Ok(())
    }

    /// Feeds one chunk to the rewriter, leaving its output in the buffer. On a rewriter
    /// error lol_html has already flushed the unprocessed input as-is; the rest passes
    /// through.
    fn write(&mut self, data: &[u8]) {
        if let Stage::AwaitingFirstBytes { prefix, .. } = &mut self.stage {
            if prefix.len() + data.len() < charset::BOM_LENGTH {
                prefix.extend_from_slice(data);
                return;
            }
            let Stage::AwaitingFirstBytes { injection, mut prefix } =
                std::mem::replace(&mut self.stage, Stage::PassingThrough)
            else {
                return;
            };
            if prefix.is_empty() {
                return self.start(injection, data);
            }
            prefix.extend_from_slice(data);
            return self.start(injection, &prefix);
        }
        if let Stage::Rewriting(rewriter) = &mut self.stage
            && let Err(error) = rewriter.write(data)
        {
            debug!(%error, "rewriter gave up; the rest of the page passes through unchanged");
            self.stage = Stage::PassingThrough;
        }
    }

    /// Ends the rewrite, leaving the rewriter's last bytes in the buffer.
    fn end(&mut self) {
        if matches!(self.stage, Stage::AwaitingFirstBytes { .. })
            && let Stage::AwaitingFirstBytes { injection, prefix } =
                std::mem::replace(&mut self.stage, Stage::PassingThrough)
        {
            self.start(injection, &prefix);
        }
        if let Stage::Rewriting(rewriter) = std::mem::replace(&mut self.stage, Stage::Finished)
            && let Err(error) = rewriter.end()
        {
            debug!(%error, "rewriter gave up at the end of the page");
            PageState::set(&self.state.bailed_out);
        }
        self.stage = Stage::Finished;
    }

    /// The next frame once the upstream body has ended: the last bytes, then any trailers.
    fn finish(&mut self) -> Result<Option<Frame<Bytes>>, BoxError> {
        self.end_input()?;
        let rest = self.take_final()?;
        Ok(if rest.is_empty() { self.trailers.take().map(Frame::trailers) } else { Some(Frame::data(rest)) })
    }
}

impl<B> RewriteBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    /// Reads until the body shows it is a whole page, or [`SNIFF_LIMIT`] bytes or its end
    /// show it is not; a body announced as at most [`SNIFF_LIMIT`] bytes is read whole. It
    /// never waits past [`SNIFF_DEADLINE`]: an upstream that pauses before it is clear gets
    /// its head sent as a page's. Call before sending the response head; an error means
    /// the upstream failed before the client received anything.
    pub async fn sniff(&mut self) -> Result<Sniffed, BoxError> {
        let deadline = tokio::time::Instant::now() + SNIFF_DEADLINE;
        let mut raw: Vec<Bytes> = Vec::new();
        let mut read = 0;
        // An upstream that announced a small length usually has the whole body at hand:
        // reading it all gives the client an exact Content-Length instead of chunks.
        let small = self.upstream.size_hint().exact().is_some_and(|len| len <= SNIFF_LIMIT as u64);
        while !matches!(self.stage, Stage::Finished) && (small || (!self.is_page() && read < SNIFF_LIMIT)) {
            let Ok(frame) = tokio::time::timeout_at(deadline, self.upstream.frame()).await else {
                // Still unclear, or still arriving: stop holding the head back.
                let out = self.take_encoded()?;
                self.pending.push_back(out);
                return Ok(if self.is_page() { Sniffed::Page } else { Sniffed::Undecided });
            };
            match frame {
                None => self.end_input()?,
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        read += data.len();
                        raw.push(data.clone());
                        let page_bytes = self.decode(data)?;
                        self.feed(&page_bytes);
                    }
                    Err(frame) => self.trailers = frame.into_trailers().ok(),
                },
            }
        }
        if self.is_page() {
            let out = if matches!(self.stage, Stage::Finished) { self.take_final()? } else { self.take_encoded()? };
            self.pending.push_back(out);
            return Ok(Sniffed::Page);
        }
        // Not a page: what was read goes out exactly as it came (still compressed, if it
        // was), and the rest unparsed.
        self.output.lock().unwrap_or_else(PoisonError::into_inner).clear();
        self.decoder = None;
        self.encoder = None;
        if !matches!(self.stage, Stage::Finished) {
            self.stage = Stage::PassingThrough;
        }
        self.pending.extend(raw);
        Ok(Sniffed::NotPage)
    }
}

impl<B> Body for RewriteBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        while let Some(bytes) = this.pending.pop_front() {
            if !bytes.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(bytes))));
            }
        }
        loop {
            if let Stage::Finished = this.stage {
                return Poll::Ready(this.finish().transpose());
            }
            let frame = match ready!(Pin::new(&mut this.upstream).poll_frame(cx)) {
                None => return Poll::Ready(this.finish().transpose()),
                Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                Some(Ok(frame)) => frame,
            };
            let data = match frame.into_data() {
                Ok(data) => data,
                Err(frame) => {
                    this.trailers = frame.into_trailers().ok();
                    continue;
                }
            };
            let out = match (&this.stage, &this.decoder, &this.encoder) {
                (Stage::PassingThrough, None, None) => data,
                _ => match this.decode(data) {
                    Ok(page_bytes) => {
                        this.feed(&page_bytes);
                        match this.take_encoded() {
                            Ok(out) => out,
                            Err(e) => return Poll::Ready(Some(Err(e))),
                        }
                    }
                    Err(e) => return Poll::Ready(Some(Err(e))),
                },
            };
            if !out.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(out))));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.stage, Stage::Finished)
            && self.encoder.is_none()
            && self.pending.iter().all(Bytes::is_empty)
            && self.trailers.is_none()
            && self.output.lock().unwrap_or_else(PoisonError::into_inner).is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        match self.complete_len() {
            Some(len) if self.output.lock().unwrap_or_else(PoisonError::into_inner).is_empty() => {
                SizeHint::with_exact(len)
            }
            _ => SizeHint::default(),
        }
    }
}
