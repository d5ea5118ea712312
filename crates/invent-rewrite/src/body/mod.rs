//! The streaming rewrite: an HTTP body that feeds the upstream's bytes through lol_html
//! and yields the page with the widget, chunk by chunk, never holding the whole page.
//!
//! Before the response head goes out, [`RewriteBody::sniff`] reads just far enough to
//! know whether the body is a whole page: a page gets the rewritten head and body; a
//! fragment keeps the upstream's head and bytes exactly. It never holds the head back
//! longer than [`SNIFF_DEADLINE`].

mod stages;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use lol_html::send::HtmlRewriter;

use crate::handlers::{Injection, Inserted, PageState};
use crate::output::{SharedOutput, Sink, lock};
use crate::transcode::{Decode, Encode, Transcode};
use crate::{doctype, skim};

/// The error of a body on the request path: whatever the upstream body failed with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How much of a body is read, at most, to find out whether it is a whole page before
/// the response head is sent, counted in page bytes (decoded, if the page is compressed).
/// Pages show a doctype or `<html>` in their first bytes.
pub const SNIFF_LIMIT: usize = 64 * 1024;

/// How many compressed bytes are read, at most, while their first [`SNIFF_LIMIT`] decoded
/// bytes are still to come. Compressed bytes can decode to nothing at all (brotli metadata,
/// a gzip header's comment): this bounds what is held. A first read past it is decoded
/// all the same, before it is judged.
pub const SNIFF_RAW_LIMIT: usize = 4 * SNIFF_LIMIT;

/// How long [`RewriteBody::sniff`] may hold the response head back while the body is
/// still unclear. Whole pages show themselves in their first bytes, well before this.
pub const SNIFF_DEADLINE: std::time::Duration = std::time::Duration::from_millis(100);

/// What the first bytes of a body showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// A doctype, `<html>` or `<body>`: the page is rewritten.
    Page,
    /// None within [`SNIFF_LIMIT`] page bytes ([`SNIFF_RAW_LIMIT`] compressed ones) or the
    /// whole body: it passes through untouched.
    NotPage,
    /// The upstream paused before it was clear: the head goes out as a page's, and the
    /// body is still rewritten (a fragment's bytes come out unchanged, but for the
    /// identity attributes on an `invent-assistant` of its own).
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
    /// What the page has produced, not yet moved to `pending`.
    output: SharedOutput,
    state: Arc<PageState>,
    /// Bytes ready to send, in order (encoded, if the client gets the page compressed).
    pending: VecDeque<Bytes>,
    /// The page's encoding, when the rewriter cannot handle it (UTF-16 by its BOM).
    refused_charset: Option<&'static str>,
    /// Upstream trailers, held until the rewriter's last bytes are out.
    trailers: Option<HeaderMap>,
    /// Decodes a compressed page before it is rewritten, and encodes the rewritten page
    /// for a client that accepts the page's coding.
    codec: Transcode,
    /// The codec decodes, and its input has not ended yet.
    decoding: bool,
    /// The codec encodes, and has not ended the encoded page yet.
    encoding: bool,
    /// Compressed bytes received but not decoded yet: decoding goes in bounded steps.
    remainder: Bytes,
    /// The upstream body has ended (what remains is in `remainder` or the decoder).
    input_ended: bool,
    /// Bytes received from the upstream so far.
    received: u64,
    /// Page bytes taken so far (decoded, if the page is compressed).
    page_bytes: u64,
    /// Whether the page opens with a doctype, until that is clear.
    doctype: doctype::DoctypeScan,
    /// The fast path: which bytes lol_html must see. `None`: it sees them all.
    skim: Option<Box<skim::Skimmer>>,
}

/// What one unit of work did.
enum Pump {
    /// Bytes were processed; there may be output to send.
    Worked,
    /// Nothing more to do until the upstream sends more.
    NeedInput,
    /// The upstream body has ended and everything has been processed.
    Done,
}

impl<B> RewriteBody<B> {
    pub fn new(upstream: B, injection: Injection, transcode: Transcode) -> Self {
        let mut body = RewriteBody {
            upstream,
            stage: Stage::PassingThrough,
            output: SharedOutput::default(),
            state: Arc::new(PageState::default()),
            pending: VecDeque::new(),
            refused_charset: None,
            trailers: None,
            decoding: !matches!(transcode, Transcode::Identity),
            encoding: matches!(transcode, Transcode::Recode(_)),
            codec: transcode,
            remainder: Bytes::new(),
            input_ended: false,
            received: 0,
            page_bytes: 0,
            doctype: doctype::DoctypeScan::default(),
            skim: Some(Box::default()),
        };
        let injection = Arc::new(injection);
        match injection.encoding {
            Some(_) => body.start(injection, &Bytes::new()),
            None => body.stage = Stage::AwaitingFirstBytes { injection, prefix: Vec::new() },
        }
        body
    }

    /// Sends every byte of the page through lol_html, without the fast path: the oracle
    /// the fast path is tested and measured against.
    #[must_use]
    pub fn without_fast_path(mut self) -> Self {
        self.skim = None;
        self
    }

    /// The charset the rewriter could not handle, if that is why the page passed through.
    pub fn refused_charset(&self) -> Option<&'static str> {
        self.refused_charset
    }

    /// Whether the widget went into the page (so far).
    pub fn injected(&self) -> bool {
        PageState::flag(&self.state.injected)
    }

    /// Whether the page had its own `invent-assistant`, which got the identity attributes
    /// in place of a second widget.
    pub fn completed_own_widget(&self) -> bool {
        self.injected() && PageState::flag(&self.state.has_element) && !PageState::flag(&self.state.added_element)
    }

    /// What the widget's insertion put into the page and where, once it has (see
    /// [`Inserted`]), with the page's own `invent-assistant` if it has one.
    pub fn inserted(&self) -> Option<Inserted> {
        self.state.inserted()
    }

    /// How many bytes the upstream has sent so far (the output may lag behind them: the
    /// rewriter holds a tag until it ends).
    pub fn received(&self) -> u64 {
        self.received
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
        let done = matches!(self.stage, Stage::Finished) && self.trailers.is_none() && !self.encoding;
        done.then(|| self.pending.iter().map(|b| b.len() as u64).sum())
    }

    /// Moves the output so far to the bytes to send, encoded if the client gets the page
    /// compressed.
    fn queue_output(&mut self) -> Result<(), BoxError> {
        let parts = lock(&self.output).take();
        if parts.is_empty() {
            return Ok(());
        }
        match encoder_of(&mut self.codec, self.encoding) {
            Some(encoder) => encoder.push(parts, &mut self.pending)?,
            None => self.pending.extend(parts),
        }
        Ok(())
    }

    /// Moves the last output to the bytes to send, with the end of the encoded stream.
    fn queue_final(&mut self) -> Result<(), BoxError> {
        let Some(encoder) = encoder_of(&mut self.codec, self.encoding) else { return self.queue_output() };
        let parts = lock(&self.output).take();
        encoder.finish(parts, &mut self.pending)?;
        self.encoding = false;
        Ok(())
    }

    /// The upstream paused: what the page has produced goes out decodable.
    fn flush_encoded(&mut self) -> Result<(), BoxError> {
        if let Some(encoder) = encoder_of(&mut self.codec, self.encoding) {
            encoder.flush(&mut self.pending)?;
        }
        Ok(())
    }

    /// The next bytes ready to send.
    fn next_pending(&mut self) -> Option<Bytes> {
        std::iter::from_fn(|| self.pending.pop_front()).find(|bytes| !bytes.is_empty())
    }

    /// Takes an upstream chunk: kept for bounded decoding if compressed, else fed on.
    fn accept(&mut self, data: Bytes) {
        if self.decoding {
            self.remainder = data;
        } else {
            self.feed(&data);
        }
    }

    /// Does one bounded unit of work on what the upstream has sent: a decoding step of at
    /// most a bounded step's worth of bytes ([`Decode::step`]), or the end of the page.
    fn pump(&mut self) -> Result<Pump, BoxError> {
        if let Some(decoder) = decoder_of(&mut self.codec, self.decoding) {
            if self.remainder.is_empty() && !self.input_ended {
                return Ok(Pump::NeedInput);
            }
            let (used, decoded) = decoder.step(&self.remainder)?;
            self.remainder = self.remainder.slice(used..);
            if used > 0 || !decoded.is_empty() {
                self.feed(&decoded);
                return Ok(Pump::Worked);
            }
            // The input has ended and the decoder holds nothing more.
            decoder.finish()?;
            self.decoding = false;
        }
        if !self.input_ended {
            return Ok(Pump::NeedInput);
        }
        if !matches!(self.stage, Stage::Finished) {
            self.end();
        }
        Ok(Pump::Done)
    }

    /// The next frame once everything has been processed: the last bytes (with the end of
    /// the encoded stream), then any trailers.
    fn finish(&mut self) -> Result<Option<Frame<Bytes>>, BoxError> {
        self.queue_final()?;
        Ok(match self.next_pending() {
            Some(bytes) => Some(Frame::data(bytes)),
            None => self.trailers.take().map(Frame::trailers),
        })
    }
}

/// The codec's decoder, while it `decoding`.
fn decoder_of(codec: &mut Transcode, decoding: bool) -> Option<&mut dyn Decode> {
    match codec {
        Transcode::Decode(decoder) if decoding => Some(decoder.as_mut()),
        Transcode::Recode(codec) if decoding => Some(codec.as_mut()),
        _ => None,
    }
}

/// The codec's encoder, while it is `encoding`.
fn encoder_of(codec: &mut Transcode, encoding: bool) -> Option<&mut dyn Encode> {
    match codec {
        Transcode::Recode(codec) if encoding => Some(codec.as_mut()),
        _ => None,
    }
}

impl<B> RewriteBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    /// Reads until the body shows it is a whole page, or [`SNIFF_LIMIT`] page bytes (or
    /// [`SNIFF_RAW_LIMIT`] compressed ones) or its end show it is not; a body announced as
    /// at most [`SNIFF_LIMIT`] bytes is read whole (while it decodes to no more than
    /// that). It never waits past [`SNIFF_DEADLINE`]: an upstream that pauses before it is
    /// clear gets its head sent as a page's. Call before sending the response head; an
    /// error means the upstream failed before the client received anything.
    pub async fn sniff(&mut self) -> Result<Sniffed, BoxError> {
        let deadline = tokio::time::Instant::now() + SNIFF_DEADLINE;
        let mut raw: Vec<Bytes> = Vec::new();
        let mut read = 0;
        // An upstream that announced a small length usually has the whole body at hand:
        // reading it all gives the client an exact Content-Length instead of chunks.
        let small = self.upstream.size_hint().exact().is_some_and(|len| len <= SNIFF_LIMIT as u64);
        let unclear = |body: &Self| !body.is_page() && body.page_bytes < SNIFF_LIMIT as u64;
        let buffered = |body: &Self| lock(&body.output).len();
        // The output held back is bounded too: a small compressed body may decode to much
        // more (twice the window leaves room for a whole small page and its widget).
        while (small || unclear(self)) && buffered(self) <= 2 * SNIFF_LIMIT {
            // What was read is decoded (a step at a time) before more is read.
            match self.pump()? {
                Pump::Worked => continue,
                Pump::Done => break,
                Pump::NeedInput if !small && read >= SNIFF_RAW_LIMIT => break,
                Pump::NeedInput => {}
            }
            let Ok(frame) = tokio::time::timeout_at(deadline, self.upstream.frame()).await else {
                // Still unclear, or still arriving: stop holding the head back.
                self.queue_output()?;
                return Ok(if self.is_page() { Sniffed::Page } else { Sniffed::Undecided });
            };
            match frame {
                None => self.input_ended = true,
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        read += data.len();
                        self.received += data.len() as u64;
                        raw.push(data.clone());
                        self.accept(data);
                    }
                    Err(frame) => self.trailers = frame.into_trailers().ok(),
                },
            }
        }
        if self.is_page() {
            let done = matches!(self.stage, Stage::Finished) && !self.decoding;
            if done {
                self.queue_final()?
            } else {
                self.queue_output()?
            };
            return Ok(Sniffed::Page);
        }
        // Not a page: what was read goes out exactly as it came (still compressed, if it
        // was), and the rest unparsed.
        lock(&self.output).clear();
        self.codec = Transcode::Identity;
        self.decoding = false;
        self.encoding = false;
        self.remainder = Bytes::new();
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
        loop {
            if let Some(bytes) = this.next_pending() {
                return Poll::Ready(Some(Ok(Frame::data(bytes))));
            }
            match this.pump() {
                Err(e) => return Poll::Ready(Some(Err(e))),
                Ok(Pump::Done) => return Poll::Ready(this.finish().transpose()),
                Ok(Pump::Worked) => match this.queue_output() {
                    Err(e) => return Poll::Ready(Some(Err(e))),
                    Ok(()) => continue,
                },
                Ok(Pump::NeedInput) => {}
            }
            let Poll::Ready(frame) = Pin::new(&mut this.upstream).poll_frame(cx) else {
                // The upstream paused: the client gets what it can decode of the page so far.
                if let Err(e) = this.flush_encoded() {
                    return Poll::Ready(Some(Err(e)));
                }
                return match this.next_pending() {
                    Some(bytes) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
                    None => Poll::Pending,
                };
            };
            let data = match frame {
                None => {
                    this.input_ended = true;
                    continue;
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => data,
                    Err(frame) => {
                        this.trailers = frame.into_trailers().ok();
                        continue;
                    }
                },
            };
            this.received += data.len() as u64;
            // Passing through with nothing to decode or encode: the chunk as it is.
            if matches!(this.stage, Stage::PassingThrough) && !this.decoding && !this.encoding {
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            this.accept(data);
            if let Err(e) = this.queue_output() {
                return Poll::Ready(Some(Err(e)));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.stage, Stage::Finished)
            && !self.decoding
            && !self.encoding
            && self.pending.iter().all(Bytes::is_empty)
            && self.trailers.is_none()
            && lock(&self.output).is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        match self.complete_len() {
            Some(len) if lock(&self.output).is_empty() => SizeHint::with_exact(len),
            _ => SizeHint::default(),
        }
    }
}
