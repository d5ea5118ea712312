//! The lol_html side of a rewrite: what one page's rewrite needs, what it has seen, and
//! the handlers that insert the widget exactly once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use lol_html::html_content::{ContentType, DocumentEnd, EndTag};
use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::LazyLock;

use lol_html::send::{Element, ElementContentHandlers, Settings};
use lol_html::{MemorySettings, Selector, end, end_tag};

use crate::charset::Decoding;
use crate::widget::{Position, Syntax, Visitor, Widget, escape_attribute, identity_attributes};

/// lol_html's default memory budget per page (`limits.rewriter_max_memory`). A page that
/// needs more (a pathological tag or attribute megabytes long) is not rewritten: it passes
/// through unchanged, never truncated.
pub const REWRITER_MAX_MEMORY: usize = 1024 * 1024;

/// What one page's rewrite needs: the widget, the visitor, where to put it.
#[derive(Debug, Clone)]
pub struct Injection {
    pub widget: Arc<Widget>,
    pub visitor: Option<Arc<Visitor>>,
    pub position: Position,
    pub syntax: Syntax,
    /// The `Content-Type` charset, if the header gave one.
    pub encoding: Option<&'static encoding_rs::Encoding>,
    /// The script nonce of the response's `Content-Security-Policy` header.
    pub nonce: Option<String>,
    /// lol_html's memory budget for this page.
    pub max_memory: usize,
}

/// What the rewriter has seen and done on one page. Handlers run one at a time on the
/// body's task; atomics only make the shared state `Send`.
#[derive(Debug, Default)]
pub(super) struct PageState {
    /// A doctype, `<html>` or `<body>` was seen: the body is a whole page.
    pub(super) page: AtomicBool,
    /// The page has its own `invent-assistant` element.
    pub(super) has_element: AtomicBool,
    /// The page loads the widget's script itself.
    pub(super) has_script: AtomicBool,
    /// The widget was inserted (at most once).
    pub(super) injected: AtomicBool,
    pub(super) added_element: AtomicBool,
    pub(super) added_script: AtomicBool,
    /// The rewriter failed at the very end; what it had not processed went out as-is.
    pub(super) bailed_out: AtomicBool,
    /// The script nonce of a `<meta http-equiv="Content-Security-Policy">` in the page.
    pub(super) meta_nonce: Mutex<Option<String>>,
    /// What went into the page and where, once it has.
    pub(super) inserted: Mutex<Option<Inserted>>,
    /// The page's own `invent-assistant` start tag, as it went out.
    pub(super) own_element: Mutex<Option<String>>,
}

/// Where in a page the widget's markup went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Before `</head>` (`inject.position: head_end`).
    BeforeHeadEnd,
    /// Before `</body>`.
    BeforeBodyEnd,
    /// At the end of a page that never closed its `<body>` (or `<head>`, for `head_end`).
    DocumentEnd,
}

/// Where a script nonce came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceSource {
    /// The response's `Content-Security-Policy` header.
    Header,
    /// A `<meta http-equiv="Content-Security-Policy">` in the page.
    Meta,
}

/// What the rewriter put into a page, for a caller that explains it (`explain`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inserted {
    pub place: Place,
    /// The markup inserted there: the element unless the page has its own, the script tag
    /// unless the page loads the widget's script itself (empty when it has both).
    pub markup: String,
    /// The nonce on the inserted script tag, and where it was found.
    pub nonce: Option<(String, NonceSource)>,
    /// The page's own `invent-assistant` start tag as it went out (with the identity
    /// attributes), when the page has one.
    pub own_element: Option<String>,
}

/// The markup due at some place in the page, and the nonce its script tag carries.
struct Due {
    markup: String,
    nonce: Option<(String, NonceSource)>,
}

/// Inserts `due` with `insert`, then notes it in `state` as inserted at `place`.
fn insert_due(state: &PageState, place: Place, due: Due, insert: impl FnOnce(&str)) {
    insert(&due.markup);
    let inserted = Inserted { place, markup: due.markup, nonce: due.nonce, own_element: None };
    *state.inserted.lock().unwrap_or_else(PoisonError::into_inner) = Some(inserted);
}

impl PageState {
    pub(super) fn flag(flag: &AtomicBool) -> bool {
        flag.load(Ordering::Relaxed)
    }

    pub(super) fn set(flag: &AtomicBool) {
        flag.store(true, Ordering::Relaxed);
    }

    /// The widget's markup if it is due now, marking it inserted.
    fn take_markup(&self, injection: &Injection) -> Option<Due> {
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
        let meta_nonce = self.meta_nonce.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let nonce = match (&injection.nonce, meta_nonce) {
            _ if !script => None,
            (Some(header), _) => Some((header.clone(), NonceSource::Header)),
            (None, meta) => meta.map(|meta| (meta, NonceSource::Meta)),
        };
        let nonce_value = nonce.as_ref().map(|(value, _)| value.as_str());
        let markup =
            injection.widget.markup(injection.visitor.as_deref(), injection.syntax, nonce_value, element, script);
        Some(Due { markup, nonce })
    }

    /// What went into the page so far, with the page's own element.
    pub(super) fn inserted(&self) -> Option<Inserted> {
        let mut inserted = self.inserted.lock().unwrap_or_else(PoisonError::into_inner).clone()?;
        inserted.own_element = self.own_element.lock().unwrap_or_else(PoisonError::into_inner).clone();
        Some(inserted)
    }
}

/// The elements the rewriter watches, parsed once (see [`selectors_ready`]).
struct Selectors {
    html: Selector,
    head: Selector,
    body: Selector,
    widget: Selector,
    meta: Selector,
    script: Selector,
}

static SELECTORS: LazyLock<Selectors> = LazyLock::new(|| {
    // Constant, valid CSS: a test parses them, so this cannot fail at run time.
    let parse = |css: &str| css.parse::<Selector>().unwrap_or_else(|e| panic!("selector {css:?}: {e}"));
    Selectors {
        html: parse("html"),
        head: parse("head"),
        body: parse("body"),
        widget: parse("invent-assistant"),
        meta: parse("meta[http-equiv]"),
        script: parse("script[src]"),
    }
});

/// Parses the selectors now, at start-up, rather than on the first page.
pub fn selectors_ready() {
    LazyLock::force(&SELECTORS);
}

/// An element handler on a pre-parsed selector.
fn on(
    selector: &'static Selector,
    handler: impl FnMut(&mut Element<'_, '_>) -> lol_html::HandlerResult + Send + 'static,
) -> (Cow<'static, Selector>, ElementContentHandlers<'static>) {
    (Cow::Borrowed(selector), ElementContentHandlers::default().element(handler))
}

/// The lol_html handlers for one page.
pub(super) fn settings(
    injection: Arc<Injection>,
    state: Arc<PageState>,
    decoding: Decoding,
) -> Settings<'static, 'static> {
    let max_memory = injection.max_memory;
    let mark_page = |state: &Arc<PageState>| {
        let state = Arc::clone(state);
        move |_: &mut Element<'_, '_>| {
            PageState::set(&state.page);
            Ok(())
        }
    };
    // A doctype is spotted in the first bytes instead (`doctype.rs`): a doctype handler
    // would make lol_html tokenize every tag in full.
    Settings::new_send()
        .append_element_content_handler(on(&SELECTORS.html, mark_page(&state)))
        .append_element_content_handler(on(&SELECTORS.head, on_head(Arc::clone(&injection), Arc::clone(&state))))
        .append_element_content_handler(on(&SELECTORS.body, on_body(Arc::clone(&injection), Arc::clone(&state))))
        .append_element_content_handler(on(
            &SELECTORS.widget,
            on_existing_element(Arc::clone(&injection), Arc::clone(&state)),
        ))
        .append_element_content_handler(on(&SELECTORS.meta, on_meta(Arc::clone(&state))))
        .append_element_content_handler(on(&SELECTORS.script, on_script(Arc::clone(&injection), Arc::clone(&state))))
        .append_document_content_handler(end!(move |end: &mut DocumentEnd<'_>| {
            if let Some(due) = state.take_markup(&injection) {
                insert_due(&state, Place::DocumentEnd, due, |markup| end.append(markup, ContentType::Html));
            }
            Ok(())
        }))
        .with_encoding(decoding.encoding)
        .with_adjust_charset_on_meta_tag(decoding.follow_meta)
        // Never abort a page over markup that is merely ambiguous to a streaming parser:
        // the widget's placement does not depend on it.
        .with_strict(false)
        // Fail open: on any error, flush what was not processed as-is instead of truncating.
        .with_graceful_bail_out_on_content_handler_error(true)
        .with_memory_settings(
            MemorySettings::new()
                .with_max_allowed_memory_usage(max_memory)
                .with_graceful_bail_out_on_memory_limit_exceeded(true),
        )
}

/// Inserts the widget before an end tag (`</head>` or `</body>`: `place`) if it is due.
fn insert_before_end_tag(
    el: &mut Element<'_, '_>,
    (injection, state): (Arc<Injection>, Arc<PageState>),
    place: Place,
) -> lol_html::HandlerResult {
    if !el.can_have_content() {
        return Ok(());
    }
    el.on_end_tag(end_tag!(move |end: &mut EndTag<'_>| {
        if let Some(due) = state.take_markup(&injection) {
            insert_due(&state, place, due, |markup| end.before(markup, ContentType::Html));
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
            insert_before_end_tag(el, (Arc::clone(&injection), Arc::clone(&state)), Place::BeforeHeadEnd)?;
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
        insert_before_end_tag(el, (Arc::clone(&injection), Arc::clone(&state)), Place::BeforeBodyEnd)
    }
}

/// The page's own `invent-assistant`: it gets the identity attributes, or, if the widget
/// was already inserted above it, it goes (exactly one widget per page).
///
/// It may stream by before the body shows it is a page (no doctype, `<body>` later): it is
/// the page's widget all the same, and gets what it would get on a page, since it cannot
/// wait. A body that turns out not to be a page within the sniff goes out as the
/// upstream's bytes anyway; after it (the upstream paused), the response already has a
/// page's head.
fn on_existing_element(
    injection: Arc<Injection>,
    state: Arc<PageState>,
) -> impl FnMut(&mut Element<'_, '_>) -> lol_html::HandlerResult + Send + 'static {
    move |el| {
        // Set only once the widget went in, which takes a page.
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
        for (name, value) in identity_attributes(injection.visitor.as_deref()) {
            set_escaped(el, name, value)?;
        }
        *state.own_element.lock().unwrap_or_else(PoisonError::into_inner) = Some(start_tag(el));
        Ok(())
    }
}

/// An element's start tag as it goes out, attribute values as the page writes them.
fn start_tag(el: &Element<'_, '_>) -> String {
    let mut tag = format!("<{}", el.tag_name());
    for attribute in el.attributes() {
        let _ = write!(tag, " {}=\"{}\"", attribute.name(), attribute.value());
    }
    tag.push('>');
    tag
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

/// A `<meta http-equiv="Content-Security-Policy">`: its script nonce, for the widget's
/// script (a `Report-Only` policy cannot be set by `<meta>`).
fn on_meta(state: Arc<PageState>) -> impl FnMut(&mut Element<'_, '_>) -> lol_html::HandlerResult + Send + 'static {
    move |el| {
        let is_policy =
            el.get_attribute("http-equiv").is_some_and(|v| v.trim().eq_ignore_ascii_case("content-security-policy"));
        let nonce = el
            .get_attribute("content")
            .filter(|_| is_policy)
            .and_then(|policy| policy.split(',').find_map(crate::csp::policy_script_nonce));
        if let Some(nonce) = nonce {
            state.meta_nonce.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert(nonce);
        }
        Ok(())
    }
}

fn set_escaped(el: &mut Element<'_, '_>, name: &str, value: &str) -> lol_html::HandlerResult {
    let mut escaped = String::with_capacity(value.len());
    escape_attribute(&mut escaped, value);
    el.set_attribute(name, &escaped)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_selectors_parse() {
        super::selectors_ready();
    }
}
