//! When to inject: the request and response rules of the spec's "What gets rewritten",
//! and the header changes of a rewritten response.

use std::borrow::Cow;

use encoding_rs::Encoding;
use http::header::{self, HeaderMap};
use http::{Method, StatusCode};

use invent_rewrite::Syntax;

use crate::codec::Coding;
use crate::config;
use crate::headers;
use crate::outcome::Skip;

/// The request rules: `GET`, a path in `include_paths` and not in `exclude_paths`, and a
/// top-level navigation (or, with `turbo_permanent`, a Turbo or Turbolinks visit).
pub(super) fn request_qualifies(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    rules: &config::Inject,
) -> Result<(), Skip> {
    if method != Method::GET {
        return Err(Skip::Method);
    }
    let path = normalized_path(path);
    if !rules.include_paths.matches(&path) || rules.exclude_paths.matches(&path) {
        return Err(Skip::Path);
    }
    // A Turbo visit's page becomes the next page's body: without the widget, Turbo would
    // drop the permanent element the current page has.
    let turbo_visit = rules.turbo_permanent && headers::is_turbo_visit(headers);
    if !headers::is_navigation(headers) && !turbo_visit {
        return Err(Skip::NotNavigation);
    }
    Ok(())
}

/// The path as the upstream will resolve it, for matching against the globs:
/// percent-decoded, `;` parameters dropped from segments (as Java servers do), repeated
/// slashes merged, `.` and `..` segments resolved (RFC 3986 §5.2.4). Otherwise `//admin`,
/// `/%61dmin`, `/admin;x=1/` or `/x/..;/admin` would slip past an exclusion.
pub(super) fn normalized_path(path: &str) -> Cow<'_, str> {
    let plain = !path.contains(['%', ';']) && !path.contains("//") && !path.contains("/.");
    if plain {
        return Cow::Borrowed(path);
    }
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    let mut segments: Vec<&str> = Vec::new();
    let without_parameters = decoded.split('/').map(|s| s.split(';').next().unwrap_or(""));
    for segment in without_parameters.filter(|s| !s.is_empty()) {
        match segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            segment => segments.push(segment),
        }
    }
    let trailing_slash = decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/..");
    let mut normal = format!("/{}", segments.join("/"));
    if trailing_slash && normal.len() > 1 {
        normal.push('/');
    }
    Cow::Owned(normal)
}

/// What the response head says about the page to rewrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Document {
    pub syntax: Syntax,
    /// The `charset` of `Content-Type`, when given: it decides over a BOM or `<meta>`.
    pub encoding: Option<&'static Encoding>,
    /// The page's content coding, if it is compressed.
    pub coding: Option<Coding>,
}

/// The one content coding of a response, if any. Several stacked codings, or one the
/// proxy cannot decode, mean the page passes through as it is.
fn content_coding(headers: &HeaderMap) -> Result<Option<Coding>, Skip> {
    let mut codings =
        headers::list_items(headers, header::CONTENT_ENCODING).filter(|t| !t.eq_ignore_ascii_case("identity"));
    match (codings.next(), codings.next()) {
        (None, _) => Ok(None),
        (Some(one), None) => Coding::from_token(one).map(Some).ok_or(Skip::Encoding),
        (Some(_), Some(_)) => Err(Skip::Encoding),
    }
}

/// The response rules: `200`, an HTML media type, an encoding and charset the rewriter
/// handles, and nothing that forbids a change. Whether the body is a whole page is decided
/// while it streams.
pub(super) fn response_qualifies(status: StatusCode, headers: &HeaderMap) -> Result<Document, Skip> {
    if status != StatusCode::OK {
        return Err(Skip::Status);
    }
    let (syntax, charset) = match headers::media_type(headers) {
        Some((media_type, charset)) if media_type == "text/html" => (Syntax::Html, charset),
        Some((media_type, charset)) if media_type == "application/xhtml+xml" => (Syntax::Xhtml, charset),
        _ => return Err(Skip::NotHtml),
    };
    if headers::has_directive(headers, header::CACHE_CONTROL, "no-transform") {
        return Err(Skip::NoTransform);
    }
    if headers::is_attachment(headers) {
        return Err(Skip::Attachment);
    }
    let coding = content_coding(headers)?;
    let encoding = match charset {
        None => None,
        // lol_html rewrites ASCII-compatible encodings only, byte for byte.
        Some(label) => match Encoding::for_label_no_replacement(label.as_bytes()) {
            Some(encoding) if encoding.is_ascii_compatible() => Some(encoding),
            Some(encoding) => return Err(Skip::Charset(Some(encoding.name()))),
            None => return Err(Skip::Charset(None)),
        },
    };
    Ok(Document { syntax, encoding, coding })
}

/// Header changes of a response whose body is rewritten (spec: "Headers of a rewritten
/// response"). `varies_by`: the request headers identity reads, which the page depends on;
/// `personalised`: identity attributes may be added, so shared caches must not
/// store it.
pub(super) fn rewrite_headers(headers: &mut HeaderMap, varies_by: &[header::HeaderName], personalised: bool) {
    headers.remove(header::CONTENT_LENGTH);
    headers.remove("content-md5");
    headers.remove(header::ACCEPT_RANGES);
    not_modified_headers(headers, varies_by);
    if personalised {
        headers::make_private(headers);
    }
}

/// Header changes of a compressed page that was decoded to be rewritten: it now depends on
/// `Accept-Encoding`, and goes out as identity to a client that does not take its coding.
pub(super) fn transcoded_headers(headers: &mut HeaderMap, reencoded: bool) {
    headers::add_vary(headers, "Accept-Encoding");
    if !reencoded {
        headers.remove(header::CONTENT_ENCODING);
    }
}

/// Header changes of a `304 Not Modified` for a request whose `200` would be rewritten:
/// its validators and `Vary` must describe the rewritten page the client has cached, or a
/// strong ETag would let a range request splice upstream bytes into it.
pub(super) fn not_modified_headers(headers: &mut HeaderMap, varies_by: &[header::HeaderName]) {
    headers::weaken_etag(headers);
    for name in varies_by {
        headers::add_vary_on(headers, name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(n, v)| (header::HeaderName::from_static(n), HeaderValue::from_static(v))).collect()
    }

    #[test]
    fn paths_are_matched_as_the_upstream_resolves_them() {
        for (path, normal) in [
            ("/admin/x", "/admin/x"),
            ("//admin//x", "/admin/x"),
            ("/%61dmin/x", "/admin/x"),
            ("/x/../admin/x", "/admin/x"),
            ("/./admin/./x/", "/admin/x/"),
            ("/../../admin", "/admin"),
            ("/a/b/..", "/a/"),
            ("/admin;jsessionid=x/users", "/admin/users"),
            ("/shop/..;/admin/users", "/admin/users"),
            ("/", "/"),
        ] {
            assert_eq!(normalized_path(path), normal, "{path}");
        }
    }

    #[test]
    fn only_plain_utf8_html_200s_qualify() {
        let html = headers(&[("content-type", "text/html; charset=utf-8")]);
        let utf8 = Document { syntax: Syntax::Html, encoding: Some(encoding_rs::UTF_8), coding: None };
        assert_eq!(response_qualifies(StatusCode::OK, &html), Ok(utf8));
        assert_eq!(response_qualifies(StatusCode::NOT_FOUND, &html), Err(Skip::Status));
        let xhtml = headers(&[("content-type", "application/xhtml+xml")]);
        assert_eq!(
            response_qualifies(StatusCode::OK, &xhtml),
            Ok(Document { syntax: Syntax::Xhtml, encoding: None, coding: None })
        );
        let json = headers(&[("content-type", "application/json")]);
        assert_eq!(response_qualifies(StatusCode::OK, &json), Err(Skip::NotHtml));
        let gzip = headers(&[("content-type", "text/html"), ("content-encoding", "gzip")]);
        assert_eq!(response_qualifies(StatusCode::OK, &gzip).map(|d| d.coding), Ok(Some(Coding::Gzip)));
        let stacked = headers(&[("content-type", "text/html"), ("content-encoding", "gzip, br")]);
        assert_eq!(response_qualifies(StatusCode::OK, &stacked), Err(Skip::Encoding));
        let unknown = headers(&[("content-type", "text/html"), ("content-encoding", "compress")]);
        assert_eq!(response_qualifies(StatusCode::OK, &unknown), Err(Skip::Encoding));
        let latin = headers(&[("content-type", "text/html; charset=iso-8859-1")]);
        let windows_1252 = Document { syntax: Syntax::Html, encoding: Some(encoding_rs::WINDOWS_1252), coding: None };
        assert_eq!(response_qualifies(StatusCode::OK, &latin), Ok(windows_1252));
        let utf16 = headers(&[("content-type", "text/html; charset=utf-16")]);
        assert_eq!(response_qualifies(StatusCode::OK, &utf16), Err(Skip::Charset(Some("UTF-16LE"))));
        let jis = headers(&[("content-type", "text/html; charset=ISO-2022-JP")]);
        assert_eq!(response_qualifies(StatusCode::OK, &jis), Err(Skip::Charset(Some("ISO-2022-JP"))));
        let unknown = headers(&[("content-type", "text/html; charset=klingon")]);
        assert_eq!(response_qualifies(StatusCode::OK, &unknown), Err(Skip::Charset(None)));
        assert_eq!(response_qualifies(StatusCode::OK, &HeaderMap::new()), Err(Skip::NotHtml));
    }

    #[test]
    fn no_transform_and_downloads_are_left_alone() {
        let no_transform = headers(&[("content-type", "text/html"), ("cache-control", "public, No-Transform")]);
        assert_eq!(response_qualifies(StatusCode::OK, &no_transform), Err(Skip::NoTransform));
        let download =
            headers(&[("content-type", "text/html"), ("content-disposition", "Attachment; filename=\"a.html\"")]);
        assert_eq!(response_qualifies(StatusCode::OK, &download), Err(Skip::Attachment));
        let inline = headers(&[("content-type", "text/html"), ("content-disposition", "inline")]);
        assert_eq!(response_qualifies(StatusCode::OK, &inline).map(|d| d.syntax), Ok(Syntax::Html));
    }

    #[test]
    fn rewritten_headers_drop_length_and_turn_private() {
        let mut h = headers(&[
            ("content-length", "10"),
            ("etag", "\"abc\""),
            ("content-md5", "x"),
            ("cache-control", "public, max-age=300"),
        ]);
        rewrite_headers(&mut h, &[header::COOKIE], true);
        assert!(!h.contains_key("content-length") && !h.contains_key("content-md5"));
        assert_eq!(h["etag"], "W/\"abc\"");
        assert_eq!(h["cache-control"], "private, max-age=300");
        assert_eq!(h["vary"], "Cookie");
    }
}
