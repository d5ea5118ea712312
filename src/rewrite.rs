//! The streaming rewrite: an HTTP body that feeds the upstream's bytes through lol_html
//! and yields the page with the widget, chunk by chunk, never holding the whole page.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use lol_html::html_content::{ContentType, DocumentEnd, EndTag};
use lol_html::send::{Element, HtmlRewriter, Settings};
use lol_html::{MemorySettings, OutputSink, doctype, element, end, end_tag};
use tracing::debug;

use crate::config::Position;
use crate::identity::Visitor;
use crate::inject::{self, Syntax, Widget};

/// The error of a body on the request path: whatever the upstream body failed with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What one page's rewrite needs: the widget, the visitor, where to put it.
#[derive(Debug, Clone)]
pub struct Injection {
    pub widget: Arc<Widget>,
    pub visitor: Option<Visitor>,
    pub position: Position,
    pub syntax: Syntax,
}

/// What the rewriter has seen and done on one page. Handlers run one at a time on the
/// body's task; atomics only make the shared state `Send`.
#[derive(Debug, Default)]
struct PageState {
    /// A doctype, `<html>` or `<body>` was seen: the body is a whole page.
    page: AtomicBool,
    /// The page has its own `invent-assistant` element.
    has_element: AtomicBool,
    /// The page loads the widget's script itself.
    has_script: AtomicBool,
    /// The widget was inserted (at most once).
    injected: AtomicBool,
    added_element: AtomicBool,
    added_script: AtomicBool,
    /// The rewriter failed at the very end; what it had not processed went out as-is.
    bailed_out: AtomicBool,
}

impl PageState {
    fn flag(flag: &AtomicBool) -> bool {
        flag.load(Ordering::Relaxed)
    }

    fn set(flag: &AtomicBool) {
        flag.store(true, Ordering::Relaxed);
    }

    /// The widget's markup if it is due now, marking it inserted.
    fn take_markup(&self, injection: &Injection) -> Option<String> {
        if !Self::flag(&self.page) || self.injected.swap(true, Ordering::Relaxed) {
            return None;
        }
        let element = !Self::flag(&self.has_element);
        let script = !Self::flag(&self.has_script);
        if element {
            Self::set(&self.added_element);
        }
        if script {
            Self::set(&self.added_script);
        }
        Some(injection.widget.markup(injection.visitor.as_ref(), injection.syntax, element, script))
    }
}

/// Collects the rewriter's output until the body hands it on.
struct Sink(Arc<Mutex<BytesMut>>);

impl OutputSink for Sink {
    fn handle_chunk(&mut self, chunk: &[u8]) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(chunk);
    }
}

/// lol_html's memory budget per page. A page that needs more (a pathological tag or
/// attribute megabytes long) is not rewritten: it passes through unchanged, never truncated.
pub const REWRITER_MAX_MEMORY: usize = 1024 * 1024;

/// Where a page's rewrite stands.
enum Stage {
    Rewriting(Box<HtmlRewriter<'static, Sink>>),
    /// The rewriter gave up (memory cap, or any error): the rest streams as it comes.
    PassingThrough,
    Finished,
}

/// A body that rewrites an HTML page from `upstream` as it streams.
pub struct RewriteBody<B> {
    upstream: B,
    stage: Stage,
    output: Arc<Mutex<BytesMut>>,
    state: Arc<PageState>,
    /// Upstream trailers, held until the rewriter's last bytes are out.
    trailers: Option<HeaderMap>,
}

impl<B> RewriteBody<B> {
    pub fn new(upstream: B, injection: Injection) -> Self {
        let output = Arc::new(Mutex::new(BytesMut::with_capacity(16 * 1024)));
        let state = Arc::new(PageState::default());
        let settings = settings(Arc::new(injection), Arc::clone(&state));
        let rewriter = HtmlRewriter::new(settings, Sink(Arc::clone(&output)));
        RewriteBody { upstream, stage: Stage::Rewriting(Box::new(rewriter)), output, state, trailers: None }
    }

    /// Whether the widget went into the page (so far).
    pub fn injected(&self) -> bool {
        PageState::flag(&self.state.injected)
    }

    /// Whether the rewriter gave up and the page passed through unchanged from some point.
    pub fn bailed_out(&self) -> bool {
        matches!(self.stage, Stage::PassingThrough) || PageState::flag(&self.state.bailed_out)
    }

    fn take_output(&self) -> Bytes {
        self.output.lock().unwrap_or_else(PoisonError::into_inner).split().freeze()
    }

    /// Feeds one chunk to the rewriter and returns what it produced. On a rewriter error
    /// lol_html has already flushed the unprocessed input as-is; the rest passes through.
    fn rewrite(&mut self, data: &[u8]) -> Bytes {
        if let Stage::Rewriting(rewriter) = &mut self.stage
            && let Err(error) = rewriter.write(data)
        {
            debug!(%error, "rewriter gave up; the rest of the page passes through unchanged");
            self.stage = Stage::PassingThrough;
        }
        self.take_output()
    }

    /// Ends the rewrite: the rewriter's last bytes, then any trailers.
    fn finish(&mut self) -> Option<Frame<Bytes>> {
        if let Stage::Rewriting(rewriter) = std::mem::replace(&mut self.stage, Stage::Finished)
            && let Err(error) = rewriter.end()
        {
            debug!(%error, "rewriter gave up at the end of the page");
            PageState::set(&self.state.bailed_out);
        }
        let rest = self.take_output();
        if rest.is_empty() { self.trailers.take().map(Frame::trailers) } else { Some(Frame::data(rest)) }
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
            if let Stage::Finished = this.stage {
                return Poll::Ready(this.finish().map(Ok));
            }
            let frame = match ready!(Pin::new(&mut this.upstream).poll_frame(cx)) {
                None => return Poll::Ready(this.finish().map(Ok)),
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
            let out = match this.stage {
                Stage::Rewriting(_) => this.rewrite(&data),
                _ => data,
            };
            if !out.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(out))));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.stage, Stage::Finished) && self.trailers.is_none() && self.output_is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

impl<B> RewriteBody<B> {
    fn output_is_empty(&self) -> bool {
        self.output.lock().unwrap_or_else(PoisonError::into_inner).is_empty()
    }
}

/// The lol_html handlers for one page.
fn settings(injection: Arc<Injection>, state: Arc<PageState>) -> Settings<'static, 'static> {
    let mark_page = |state: &Arc<PageState>| {
        let state = Arc::clone(state);
        move |_: &mut Element<'_, '_>| {
            PageState::set(&state.page);
            Ok(())
        }
    };
    let doctype_state = Arc::clone(&state);
    Settings::new_send()
        .append_document_content_handler(doctype!(move |_| {
            PageState::set(&doctype_state.page);
            Ok(())
        }))
        .append_element_content_handler(element!("html", mark_page(&state)))
        .append_element_content_handler(element!("head", on_head(Arc::clone(&injection), Arc::clone(&state))))
        .append_element_content_handler(element!("body", on_body(Arc::clone(&injection), Arc::clone(&state))))
        .append_element_content_handler(element!(
            "invent-assistant",
            on_existing_element(Arc::clone(&injection), Arc::clone(&state))
        ))
        .append_element_content_handler(element!("script[src]", on_script(Arc::clone(&injection), Arc::clone(&state))))
        .append_document_content_handler(end!(move |end: &mut DocumentEnd<'_>| {
            if let Some(markup) = state.take_markup(&injection) {
                end.append(&markup, ContentType::Html);
            }
            Ok(())
        }))
        // Never abort a page over markup that is merely ambiguous to a streaming parser:
        // the widget's placement does not depend on it.
        .with_strict(false)
        // Fail open: on any error, flush what was not processed as-is instead of truncating.
        .with_graceful_bail_out_on_content_handler_error(true)
        .with_memory_settings(
            MemorySettings::new()
                .with_max_allowed_memory_usage(REWRITER_MAX_MEMORY)
                .with_graceful_bail_out_on_memory_limit_exceeded(true),
        )
}

/// Inserts the widget before an end tag (`</head>` or `</body>`) if it is due.
fn insert_before_end_tag(
    el: &mut Element<'_, '_>,
    injection: Arc<Injection>,
    state: Arc<PageState>,
) -> lol_html::HandlerResult {
    if !el.can_have_content() {
        return Ok(());
    }
    el.on_end_tag(end_tag!(move |end: &mut EndTag<'_>| {
        if let Some(markup) = state.take_markup(&injection) {
            end.before(&markup, ContentType::Html);
        }
        Ok(())
    }))
}

fn on_head(
    injection: Arc<Injection>,
    state: Arc<PageState>,
) -> impl FnMut(&mut Element<'_, '_>) -> lol_html::HandlerResult + Send + 'static {
    move |el| {
        if injection.position == Position::HeadEnd {
            insert_before_end_tag(el, Arc::clone(&injection), Arc::clone(&state))?;
        }
        Ok(())
    }
}

fn on_body(
    injection: Arc<Injection>,
    state: Arc<PageState>,
) -> impl FnMut(&mut Element<'_, '_>) -> lol_html::HandlerResult + Send + 'static {
    move |el| {
        PageState::set(&state.page);
        // Also the fallback for `head_end` when the page has no `</head>`.
        insert_before_end_tag(el, Arc::clone(&injection), Arc::clone(&state))
    }
}

/// The page's own `invent-assistant`: it gets the identity attributes, or, if the widget
/// was already inserted above it, it goes (exactly one widget per page).
fn on_existing_element(
    injection: Arc<Injection>,
    state: Arc<PageState>,
) -> impl FnMut(&mut Element<'_, '_>) -> lol_html::HandlerResult + Send + 'static {
    move |el| {
        if !PageState::flag(&state.page) {
            return Ok(());
        }
        if PageState::flag(&state.added_element) {
            el.remove();
            return Ok(());
        }
        if state.has_element.swap(true, Ordering::Relaxed) {
            return Ok(());
        }
        if !el.has_attribute("assistant-id") {
            set_escaped(el, "assistant-id", injection.widget.assistant_id())?;
        }
        for (name, value) in inject::identity_attributes(injection.visitor.as_ref()) {
            set_escaped(el, name, value)?;
        }
        Ok(())
    }
}

/// A `<script src>` for the widget's own script: noted so it is not added twice, or
/// removed if the widget's script was already inserted above it.
fn on_script(
    injection: Arc<Injection>,
    state: Arc<PageState>,
) -> impl FnMut(&mut Element<'_, '_>) -> lol_html::HandlerResult + Send + 'static {
    move |el| {
        if !el.get_attribute("src").is_some_and(|src| injection.widget.is_widget_script(&src)) {
            return Ok(());
        }
        if PageState::flag(&state.added_script) {
            el.remove();
        } else {
            PageState::set(&state.has_script);
        }
        Ok(())
    }
}

fn set_escaped(el: &mut Element<'_, '_>, name: &str, value: &str) -> lol_html::HandlerResult {
    let mut escaped = String::with_capacity(value.len());
    inject::escape_attribute(&mut escaped, value);
    el.set_attribute(name, &escaped)?;
    Ok(())
}
