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
use lol_html::{OutputSink, doctype, element, end, end_tag};

use crate::config::Position;
use crate::identity::Visitor;
use crate::inject::{self, Widget};

/// The error of a body on the request path: whatever the upstream body failed with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What one page's rewrite needs: the widget, the visitor, where to put it.
#[derive(Debug, Clone)]
pub struct Injection {
    pub widget: Arc<Widget>,
    pub visitor: Option<Visitor>,
    pub position: Position,
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
        Some(
            injection
                .widget
                .markup(injection.visitor.as_ref(), element, script),
        )
    }
}

/// Collects the rewriter's output until the body hands it on.
struct Sink(Arc<Mutex<BytesMut>>);

impl OutputSink for Sink {
    fn handle_chunk(&mut self, chunk: &[u8]) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(chunk);
    }
}

/// A body that rewrites an HTML page from `upstream` as it streams.
pub struct RewriteBody<B> {
    upstream: B,
    rewriter: Option<HtmlRewriter<'static, Sink>>,
    output: Arc<Mutex<BytesMut>>,
    state: Arc<PageState>,
    trailers: Option<HeaderMap>,
}

impl<B> RewriteBody<B> {
    pub fn new(upstream: B, injection: Injection) -> Self {
        let output = Arc::new(Mutex::new(BytesMut::with_capacity(16 * 1024)));
        let state = Arc::new(PageState::default());
        let settings = settings(Arc::new(injection), Arc::clone(&state));
        let rewriter = HtmlRewriter::new(settings, Sink(Arc::clone(&output)));
        RewriteBody {
            upstream,
            rewriter: Some(rewriter),
            output,
            state,
            trailers: None,
        }
    }

    /// Whether the widget went into the page (so far).
    pub fn injected(&self) -> bool {
        PageState::flag(&self.state.injected)
    }

    fn take_output(&self) -> Bytes {
        self.output
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .split()
            .freeze()
    }

    fn finish(&mut self) -> Result<Option<Frame<Bytes>>, BoxError> {
        if let Some(rewriter) = self.rewriter.take() {
            rewriter.end()?;
        }
        let rest = self.take_output();
        if !rest.is_empty() {
            return Ok(Some(Frame::data(rest)));
        }
        Ok(self.trailers.take().map(Frame::trailers))
    }
}

impl<B> Body for RewriteBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            let Some(rewriter) = this.rewriter.as_mut() else {
                // The page is done; only held-back trailers may remain.
                return Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))));
            };
            let frame = match ready!(Pin::new(&mut this.upstream).poll_frame(cx)) {
                None => return Poll::Ready(this.finish().transpose()),
                Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                Some(Ok(frame)) => frame,
            };
            match frame.into_data() {
                Ok(data) => {
                    if let Err(e) = rewriter.write(&data) {
                        return Poll::Ready(Some(Err(e.into())));
                    }
                    let out = this.take_output();
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(out))));
                    }
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        this.trailers = Some(trailers);
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.rewriter.is_none() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
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
        .append_element_content_handler(element!(
            "head",
            on_head(Arc::clone(&injection), Arc::clone(&state))
        ))
        .append_element_content_handler(element!(
            "body",
            on_body(Arc::clone(&injection), Arc::clone(&state))
        ))
        .append_element_content_handler(element!(
            "invent-assistant",
            on_existing_element(Arc::clone(&injection), Arc::clone(&state))
        ))
        .append_element_content_handler(element!(
            "script[src]",
            on_script(Arc::clone(&injection), Arc::clone(&state))
        ))
        .append_document_content_handler(end!(move |end: &mut DocumentEnd<'_>| {
            if let Some(markup) = state.take_markup(&injection) {
                end.append(&markup, ContentType::Html);
            }
            Ok(())
        }))
        // Never abort a page over markup that is merely ambiguous to a streaming parser:
        // the widget's placement does not depend on it.
        .with_strict(false)
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
        if el.get_attribute("src").as_deref() != Some(injection.widget.script_url()) {
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
