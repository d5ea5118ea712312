//! `identity.lookup.select`: the visitor read out of an HTML page the app already renders
//! (an account page, a profile), streamed through lol_html — the first element each CSS
//! selector matches gives its value: an attribute, or its text — with character
//! references decoded as a browser decodes them, at most [`MAX_PAGE_BYTES`] of it read.

use std::borrow::Cow;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::BodyExt;
use lol_html::html_content::{EndTag, TextChunk};
use lol_html::send::{Element, ElementContentHandlers, HtmlRewriter, Settings};
use lol_html::{AsciiCompatibleEncoding, Selector, end_tag};

use crate::config::{Pick, Selection};
use crate::headers;

/// How much of the page is read: the identity is near the top of any account page.
pub(super) const MAX_PAGE_BYTES: usize = 1024 * 1024;

/// The longest text kept of an element: more than any name or id the widget takes.
const MAX_TEXT_BYTES: usize = 16 * 1024;

/// Where one pick stands while the page streams.
#[derive(Debug, Default)]
enum Read {
    /// No element matched yet.
    #[default]
    Waiting,
    /// In the first matching element: its text so far.
    Text(String),
    /// Read: the value, if its element had one.
    Done(Option<String>),
}

impl Read {
    fn value(self) -> Option<String> {
        match self {
            Read::Waiting => None,
            Read::Text(text) | Read::Done(Some(text)) => Some(text),
            Read::Done(None) => None,
        }
    }
}

/// The values the selection's picks read, decoded and trimmed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Picked {
    pub(super) user_id: Option<String>,
    pub(super) user_name: Option<String>,
    pub(super) user_avatar: Option<String>,
}

/// Whether a response is an HTML page: its media type says so (none is not HTML).
pub(super) fn is_html(headers: &HeaderMap) -> bool {
    headers::media_type(headers).is_some_and(|(media, _)| media == "text/html" || media == "application/xhtml+xml")
}

/// Reads `selection` out of the page `body`, at most [`MAX_PAGE_BYTES`] of it; an error if
/// the body broke off while it was read.
pub(super) async fn read<B>(headers: &HeaderMap, body: B, selection: &Selection) -> Result<Picked, B::Error>
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
    let picks = [Some(&selection.user_id), selection.user_name.as_ref(), selection.user_avatar.as_ref()];
    let states: [Arc<Mutex<Read>>; 3] = Default::default();
    let mut settings = Settings::new_send();
    for (pick, state) in picks.iter().zip(&states) {
        if let Some(pick) = pick {
            settings = with_pick(settings, pick, Arc::clone(state));
        }
    }
    let charset = headers::media_type(headers).and_then(|(_, charset)| charset);
    let encoding = charset.and_then(|label| encoding_rs::Encoding::for_label_no_replacement(label.as_bytes()));
    let encoding = encoding.and_then(AsciiCompatibleEncoding::new);
    let settings = match encoding {
        Some(encoding) => settings.with_encoding(encoding),
        None => settings.with_adjust_charset_on_meta_tag(true),
    };
    let mut rewriter = HtmlRewriter::new(settings, |_: &[u8]| {});
    let mut body = body;
    let mut read = 0;
    let all_done = || states.iter().zip(&picks).all(|(s, p)| p.is_none() || matches!(*lock(s), Read::Done(_)));
    while read < MAX_PAGE_BYTES && !all_done() {
        let Some(frame) = body.frame().await else { break };
        let Ok(data) = frame?.into_data() else { continue };
        let data = &data[..data.len().min(MAX_PAGE_BYTES - read)];
        read += data.len();
        if rewriter.write(data).is_err() {
            break;
        }
    }
    drop(rewriter);
    let [id, name, avatar] = states.map(|state| std::mem::take(&mut *lock(&state)).value());
    let attribute = |pick: Option<&Pick>| pick.is_some_and(|p| p.attribute.is_some());
    Ok(Picked {
        user_id: id.map(|v| decoded(&v, attribute(picks[0]))),
        user_name: name.map(|v| decoded(&v, attribute(picks[1]))),
        user_avatar: avatar.map(|v| decoded(&v, attribute(picks[2]))),
    })
}

fn lock(state: &Mutex<Read>) -> std::sync::MutexGuard<'_, Read> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A value with its character references decoded (by the rules of an attribute value or
/// of text) and its surrounding white space trimmed.
fn decoded(raw: &str, attribute: bool) -> String {
    let text: Cow<'_, str> = if attribute { htmlize::unescape_attribute(raw) } else { htmlize::unescape(raw) };
    text.trim().to_owned()
}

/// Adds the handlers of one pick: the first matching element gives its attribute, or
/// the text it holds until its end tag.
fn with_pick(settings: Settings<'static, 'static>, pick: &Pick, state: Arc<Mutex<Read>>) -> Settings<'static, 'static> {
    // The selector was parsed when the config was loaded.
    let Ok(selector) = pick.css.parse::<Selector>() else { return settings };
    let attribute = pick.attribute.clone();
    let text_state = Arc::clone(&state);
    let mut handlers = ElementContentHandlers::default().element(move |el: &mut Element<'_, '_>| {
        let mut read = lock(&state);
        if !matches!(*read, Read::Waiting) {
            return Ok(());
        }
        match &attribute {
            Some(name) => *read = Read::Done(el.get_attribute(name)),
            None if !el.can_have_content() => *read = Read::Done(None),
            None => {
                *read = Read::Text(String::new());
                let state = Arc::clone(&state);
                el.on_end_tag(end_tag!(move |_: &mut EndTag<'_>| {
                    let mut read = lock(&state);
                    if let Read::Text(text) = &mut *read {
                        *read = Read::Done(Some(std::mem::take(text)));
                    }
                    Ok(())
                }))?;
            }
        }
        Ok(())
    });
    if pick.attribute.is_none() {
        handlers = handlers.text(move |chunk: &mut TextChunk<'_>| {
            if let Read::Text(text) = &mut *lock(&text_state)
                && text.len() < MAX_TEXT_BYTES
            {
                text.push_str(chunk.as_str());
            }
            Ok(())
        });
    }
    settings.append_element_content_handler((Cow::Owned(selector), handlers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;

    fn selection(id: (&str, Option<&str>), name: Option<&str>) -> Selection {
        let pick = |css: &str, attribute: Option<&str>| Pick { css: css.into(), attribute: attribute.map(Into::into) };
        Selection { user_id: pick(id.0, id.1), user_name: name.map(|css| pick(css, None)), user_avatar: None }
    }

    async fn picked(page: &'static str, selection: &Selection) -> Picked {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, "text/html; charset=utf-8".parse().unwrap());
        read(&headers, Full::new(Bytes::from_static(page.as_bytes())), selection).await.unwrap()
    }

    #[tokio::test]
    async fn the_first_match_gives_its_attribute_or_its_text_decoded() {
        let page = "<html><body><div id=account><span data-user-id=\"u&amp;7\">x</span>\
                    <span data-user-id=\"second\"></span><p class=name> Zo&euml; <b>&lt;Z&gt;</b>\n</p></div>";
        let found = picked(page, &selection(("#account [data-user-id]", Some("data-user-id")), Some(".name"))).await;
        assert_eq!(found.user_id.as_deref(), Some("u&7"));
        assert_eq!(found.user_name.as_deref(), Some("Zoë <Z>"));
    }

    #[tokio::test]
    async fn an_element_that_is_not_there_gives_nothing() {
        let found = picked("<html><body><p>Sign in</p>", &selection(("#me", Some("data-id")), Some(".name"))).await;
        assert_eq!(found, Picked::default());
        let without = picked("<div id=me>", &selection(("#me", Some("data-id")), None)).await;
        assert_eq!(without.user_id, None, "the first match decides, even without the attribute");
    }

    #[test]
    fn only_html_media_types_are_pages() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(http::header::CONTENT_TYPE, value.parse().unwrap());
            is_html(&headers)
        };
        assert!(with("text/html; charset=utf-8") && with("application/xhtml+xml"));
        assert!(!with("application/json") && !is_html(&HeaderMap::new()));
    }
}
