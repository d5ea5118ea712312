//! The lol_html side of a body: creating the rewriter once the page's encoding is known,
//! feeding it page bytes, and ending it — or letting bytes through once it has given up.

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use lol_html::send::HtmlRewriter;
use tracing::debug;

use super::{RewriteBody, Stage};
use crate::charset;
use crate::handlers::{Injection, PageState, settings};
use crate::output::{Output, Sink, lock};
use crate::skim::{Route, Skimmer};

impl<B> RewriteBody<B> {
    /// Creates the rewriter for the page's encoding and feeds it `first_bytes`; or, for an
    /// encoding it cannot handle, lets the page through as it is.
    pub(super) fn start(&mut self, injection: Arc<Injection>, first_bytes: &Bytes) {
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
                lock(&self.output).share(first_bytes.clone());
            }
        }
    }

    /// Page bytes to the rewriter, or straight to the output once it has given up.
    pub(super) fn feed(&mut self, page_bytes: &Bytes) {
        self.page_bytes += page_bytes.len() as u64;
        match self.stage {
            Stage::PassingThrough => lock(&self.output).share(page_bytes.clone()),
            Stage::Finished => {}
            _ => self.write(page_bytes),
        }
    }

    /// Feeds one chunk to the rewriter, leaving its output in the buffer. On a rewriter
    /// error lol_html has already flushed the unprocessed input as-is; the rest passes
    /// through.
    fn write(&mut self, data: &Bytes) {
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
            return self.start(injection, &Bytes::from(prefix));
        }
        if self.doctype.scan(data) == Some(true) {
            PageState::set(&self.state.page);
        }
        self.through_lanes(Some(data), |skim, lanes| match skim {
            Some(skim) => skim.route(data, lanes),
            None => lanes.feed(data),
        });
    }

    /// Runs `send` with the page's two lanes, while the rewriter has not given up; once it
    /// has, the rest of the page passes through.
    /// `source` is the upstream chunk being routed, if any: long pieces of it are not copied.
    fn through_lanes(&mut self, source: Option<&Bytes>, send: impl FnOnce(Option<&mut Skimmer>, &mut Lanes<'_>)) {
        let Stage::Rewriting(rewriter) = &mut self.stage else { return };
        let mut lanes = Lanes { rewriter, output: &self.output, source, failed: false };
        send(self.skim.as_deref_mut(), &mut lanes);
        if lanes.failed {
            // Remembered past the end of the page, for the access line and the metrics.
            PageState::set(&self.state.bailed_out);
            self.stage = Stage::PassingThrough;
        }
    }

    /// Ends the rewrite, leaving the rewriter's last bytes in the buffer.
    pub(super) fn end(&mut self) {
        if matches!(self.stage, Stage::AwaitingFirstBytes { .. })
            && let Stage::AwaitingFirstBytes { injection, prefix } =
                std::mem::replace(&mut self.stage, Stage::PassingThrough)
        {
            self.start(injection, &Bytes::from(prefix));
        }
        self.through_lanes(None, |skim, lanes| {
            if let Some(skim) = skim {
                skim.finish(lanes);
            }
        });
        if let Stage::Rewriting(rewriter) = std::mem::replace(&mut self.stage, Stage::Finished)
            && let Err(error) = rewriter.end()
        {
            debug!(%error, "rewriter gave up at the end of the page");
            PageState::set(&self.state.bailed_out);
        }
        self.stage = Stage::Finished;
    }
}

/// The two ways a page's bytes go: through lol_html, or straight to the output. Once
/// lol_html has given up, everything goes straight to the output.
struct Lanes<'a> {
    rewriter: &'a mut HtmlRewriter<'static, Sink>,
    output: &'a Mutex<Output>,
    source: Option<&'a Bytes>,
    failed: bool,
}

impl Lanes<'_> {
    fn output(&self) -> MutexGuard<'_, Output> {
        lock(self.output)
    }

    /// On a rewriter error lol_html has already flushed the unprocessed input as-is.
    fn write(&mut self, bytes: &[u8]) {
        if let Err(error) = self.rewriter.write(bytes) {
            debug!(%error, "rewriter gave up; the rest of the page passes through unchanged");
            self.failed = true;
        }
    }
}

impl Route for Lanes<'_> {
    fn pass(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.output().pass(self.source, bytes);
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        if self.failed {
            self.pass(bytes);
        } else if !bytes.is_empty() {
            self.write(bytes);
        }
    }

    fn feed_unseen(&mut self, bytes: &[u8]) {
        if self.failed || bytes.is_empty() {
            return;
        }
        let before = self.output().tail().len();
        self.write(bytes);
        let mut output = self.output();
        debug_assert_eq!(output.tail().get(before..), Some(bytes), "lol_html changed unseen start tags");
        output.truncate_tail(before);
    }
}
