//! When to inject, and what: the request and response rules of the spec's "What gets
//! rewritten", the widget's markup, and the header changes of a rewritten response.

use std::fmt;
use std::fmt::Write as _;

use http::header::{self, HeaderMap};
use http::{Method, StatusCode};

use crate::config;
use crate::headers;
use crate::identity::Visitor;

/// Why a response passed through without the widget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    Method,
    Path,
    NotNavigation,
    Status,
    NotHtml,
    Encoding,
    Charset,
    /// The body had no doctype, `<html>` or `<body>`: a fragment.
    Fragment,
    /// The rewriter gave up (e.g. its memory cap); the page passed through as the upstream
    /// sent it.
    RewriteFailed,
}

impl Skip {
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::Method => "method",
            Skip::Path => "path",
            Skip::NotNavigation => "not_navigation",
            Skip::Status => "status",
            Skip::NotHtml => "not_html",
            Skip::Encoding => "encoding",
            Skip::Charset => "charset",
            Skip::Fragment => "fragment",
            Skip::RewriteFailed => "rewrite_failed",
        }
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The request rules: `GET`, a path in `include_paths` and not in `exclude_paths`, and a
/// top-level navigation.
pub fn request_qualifies(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    rules: &config::Inject,
) -> Result<(), Skip> {
    if method != Method::GET {
        return Err(Skip::Method);
    }
    if !rules.include_paths.matches(path) || rules.exclude_paths.matches(path) {
        return Err(Skip::Path);
    }
    if !headers::is_navigation(headers) {
        return Err(Skip::NotNavigation);
    }
    Ok(())
}

/// The response rules: `200`, an HTML media type, an encoding and charset the rewriter
/// handles. Whether the body is a whole page is decided while it streams.
pub fn response_qualifies(status: StatusCode, headers: &HeaderMap) -> Result<(), Skip> {
    if status != StatusCode::OK {
        return Err(Skip::Status);
    }
    let Some((media_type, charset)) = headers::media_type(headers) else {
        return Err(Skip::NotHtml);
    };
    if media_type != "text/html" && media_type != "application/xhtml+xml" {
        return Err(Skip::NotHtml);
    }
    let encoded = headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .any(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
    if encoded {
        return Err(Skip::Encoding);
    }
    match charset.as_deref() {
        None | Some("utf-8" | "utf8" | "us-ascii" | "ascii") => Ok(()),
        Some(_) => Err(Skip::Charset),
    }
}

/// Header changes of a response whose body is rewritten (spec: "Headers of a rewritten
/// response"). `varies_by_cookie`: identity is configured, so the page depends on the
/// cookie; `personalised`: identity attributes may be added, so shared caches must not
/// store it.
pub fn rewrite_headers(headers: &mut HeaderMap, varies_by_cookie: bool, personalised: bool) {
    headers.remove(header::CONTENT_LENGTH);
    headers.remove("content-md5");
    headers.remove(header::ACCEPT_RANGES);
    headers::weaken_etag(headers);
    if varies_by_cookie {
        headers::add_vary(headers, "Cookie");
    }
    if personalised {
        headers::make_private(headers);
    }
}

/// Header changes of a `304 Not Modified` for a request whose `200` would be rewritten:
/// its validators and `Vary` must describe the rewritten page the client has cached, or a
/// strong ETag would let a range request splice upstream bytes into it.
pub fn not_modified_headers(headers: &mut HeaderMap, varies_by_cookie: bool) {
    headers::weaken_etag(headers);
    if varies_by_cookie {
        headers::add_vary(headers, "Cookie");
    }
}

/// The widget's markup, with the parts that never change rendered once at start-up.
#[derive(Debug, Clone)]
pub struct Widget {
    /// `<invent-assistant assistant-id=".." theme-..=".."` without its closing `>`.
    element_open: String,
    script_tag: String,
    script_url: String,
    assistant_id: String,
}

impl Widget {
    pub fn new(assistant: &config::Assistant) -> Self {
        let mut element_open = String::from("<invent-assistant");
        push_attribute(&mut element_open, "assistant-id", &assistant.id);
        let theme = &assistant.theme;
        if let Some(appearance) = theme.appearance {
            push_attribute(
                &mut element_open,
                "theme-appearance",
                &appearance.to_string(),
            );
        }
        if let Some(color) = &theme.button_background_color {
            push_attribute(&mut element_open, "theme-button-background-color", color);
        }
        if let Some(color) = &theme.button_color {
            push_attribute(&mut element_open, "theme-button-color", color);
        }
        let mut script_tag = String::from("<script type=\"text/javascript\"");
        push_attribute(&mut script_tag, "src", &assistant.script_url);
        script_tag.push_str(" async defer></script>");
        Widget {
            element_open,
            script_tag,
            script_url: assistant.script_url.clone(),
            assistant_id: assistant.id.clone(),
        }
    }

    /// The configured assistant id, for a page's own element that lacks one.
    pub fn assistant_id(&self) -> &str {
        &self.assistant_id
    }

    /// The URL of the widget's script, to recognise a page that already loads it.
    pub fn script_url(&self) -> &str {
        &self.script_url
    }

    /// The markup to insert: the element (unless the page has one) and the script tag
    /// (unless the page loads it already).
    pub fn markup(&self, visitor: Option<&Visitor>, element: bool, script: bool) -> String {
        let mut out = String::with_capacity(self.element_open.len() + self.script_tag.len() + 256);
        if element {
            out.push_str(&self.element_open);
            for (name, value) in identity_attributes(visitor) {
                push_attribute(&mut out, name, value);
            }
            out.push_str("></invent-assistant>");
        }
        if script {
            out.push_str(&self.script_tag);
        }
        out
    }
}

/// The identity attributes of a visitor, in the order the widget documents them.
pub fn identity_attributes(visitor: Option<&Visitor>) -> Vec<(&'static str, &str)> {
    let Some(v) = visitor else { return Vec::new() };
    let mut attributes = vec![
        ("user-id", v.user_id.as_str()),
        ("user-hash", v.user_hash.as_str()),
    ];
    if let Some(name) = &v.user_name {
        attributes.push(("user-name", name));
    }
    if let Some(avatar) = &v.user_avatar {
        attributes.push(("user-avatar", avatar));
    }
    attributes
}

fn push_attribute(out: &mut String, name: &str, value: &str) {
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    escape_attribute(out, value);
    out.push('"');
}

/// Escapes an attribute value for a double-quoted attribute. Non-ASCII characters become
/// numeric character references, so the markup is plain ASCII and reads the same in any
/// ASCII-compatible page encoding.
pub fn escape_attribute(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => {
                let _ = write!(out, "&#x{:x};", c as u32);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(n, v)| {
                (
                    header::HeaderName::from_static(n),
                    HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn attribute_values_cannot_break_out() {
        let mut out = String::new();
        escape_attribute(&mut out, "\"><script>alert('x')</script>&");
        assert_eq!(
            out,
            "&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;"
        );
        let mut out = String::new();
        escape_attribute(&mut out, "Zoë 日本\n");
        assert_eq!(out, "Zo&#xeb; &#x65e5;&#x672c;&#xa;");
    }

    #[test]
    fn only_plain_utf8_html_200s_qualify() {
        let html = headers(&[("content-type", "text/html; charset=utf-8")]);
        assert_eq!(response_qualifies(StatusCode::OK, &html), Ok(()));
        assert_eq!(
            response_qualifies(StatusCode::NOT_FOUND, &html),
            Err(Skip::Status)
        );
        let xhtml = headers(&[("content-type", "application/xhtml+xml")]);
        assert_eq!(response_qualifies(StatusCode::OK, &xhtml), Ok(()));
        let json = headers(&[("content-type", "application/json")]);
        assert_eq!(
            response_qualifies(StatusCode::OK, &json),
            Err(Skip::NotHtml)
        );
        let gzip = headers(&[("content-type", "text/html"), ("content-encoding", "gzip")]);
        assert_eq!(
            response_qualifies(StatusCode::OK, &gzip),
            Err(Skip::Encoding)
        );
        let latin = headers(&[("content-type", "text/html; charset=windows-1252")]);
        assert_eq!(
            response_qualifies(StatusCode::OK, &latin),
            Err(Skip::Charset)
        );
        assert_eq!(
            response_qualifies(StatusCode::OK, &HeaderMap::new()),
            Err(Skip::NotHtml)
        );
    }

    #[test]
    fn rewritten_headers_drop_length_and_turn_private() {
        let mut h = headers(&[
            ("content-length", "10"),
            ("etag", "\"abc\""),
            ("content-md5", "x"),
            ("cache-control", "public, max-age=300"),
        ]);
        rewrite_headers(&mut h, true, true);
        assert!(!h.contains_key("content-length") && !h.contains_key("content-md5"));
        assert_eq!(h["etag"], "W/\"abc\"");
        assert_eq!(h["cache-control"], "private, max-age=300");
        assert_eq!(h["vary"], "Cookie");
    }
}
