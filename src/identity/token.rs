//! Where a request's session token is: a `Bearer` header, a cookie, or that cookie split
//! into chunks (`name.0`, `name.1`, … as NextAuth/Auth.js write it). The first that is
//! present is used, in that order.

use http::HeaderMap;
use http::header::COOKIE;

use super::{MAX_TOKEN_BYTES, Rejection};
use crate::config::TokenSource;

/// The token of a request, if it carries one. Chunks with a gap, or adding up to more than
/// a token may be, are a rejection.
pub fn find_token(headers: &HeaderMap, source: &TokenSource) -> Result<Option<String>, Rejection> {
    if let Some(token) = source.header.as_ref().and_then(|name| bearer(headers, name)) {
        return Ok(Some(token));
    }
    let Some(name) = &source.cookie else { return Ok(None) };
    if let Some(token) = session_cookie(headers, name) {
        return Ok(Some(token));
    }
    if source.cookie_chunks { chunked_cookie(headers, name) } else { Ok(None) }
}

/// `Authorization: Bearer <token>` (RFC 6750 §2.1; the scheme is case-insensitive).
fn bearer(headers: &HeaderMap, name: &http::HeaderName) -> Option<String> {
    let value = headers.get(name)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

/// Every cookie of the request, across all `Cookie` headers (HTTP/2 may split them).
fn cookies(headers: &HeaderMap) -> impl Iterator<Item = cookie::Cookie<'_>> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
}

/// The value of the first cookie called `name`, if not empty.
pub fn session_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    cookies(headers).find(|c| c.name() == name).map(|c| c.value().to_owned()).filter(|v| !v.is_empty())
}

/// `name.0` + `name.1` + … joined, if `name.0` is there.
fn chunked_cookie(headers: &HeaderMap, name: &str) -> Result<Option<String>, Rejection> {
    let mut chunks: Vec<(usize, String)> = cookies(headers)
        .filter_map(|c| {
            let digits = c.name().strip_prefix(name)?.strip_prefix('.')?;
            let index = digits.parse::<usize>().ok()?;
            // Plain decimal only: `.01` or `.+1` are other cookies, not chunk 1.
            (index.to_string() == digits).then_some(())?;
            Some((index, c.value().to_owned()))
        })
        .collect();
    if chunks.is_empty() {
        return Ok(None);
    }
    chunks.sort_unstable_by_key(|(index, _)| *index);
    chunks.dedup_by_key(|(index, _)| *index);
    if chunks.iter().enumerate().any(|(expected, (index, _))| *index != expected) {
        return Err(Rejection::IncompleteChunks);
    }
    let total: usize = chunks.iter().map(|(_, value)| value.len()).sum();
    if total > MAX_TOKEN_BYTES {
        return Err(Rejection::TooLarge);
    }
    Ok(Some(chunks.into_iter().map(|(_, value)| value).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn request(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(n, v)| (http::HeaderName::from_static(n), HeaderValue::from_static(v))).collect()
    }

    fn source(header: bool, chunks: bool) -> TokenSource {
        TokenSource {
            header: header.then_some(http::header::AUTHORIZATION),
            cookie: Some("session".into()),
            cookie_chunks: chunks,
        }
    }

    #[test]
    fn the_header_comes_first_then_the_cookie_then_its_chunks() {
        let both = request(&[("authorization", "Bearer from.header"), ("cookie", "session=from.cookie")]);
        assert_eq!(find_token(&both, &source(true, false)), Ok(Some("from.header".into())));
        assert_eq!(find_token(&both, &source(false, false)), Ok(Some("from.cookie".into())));
        let chunked = request(&[("cookie", "session.1=b.c; other=1; session.0=a.")]);
        assert_eq!(find_token(&chunked, &source(false, true)), Ok(Some("a.b.c".into())));
        assert_eq!(find_token(&chunked, &source(false, false)), Ok(None), "chunks only when asked for");
    }

    #[test]
    fn bearer_needs_its_scheme() {
        let basic = request(&[("authorization", "Basic dXNlcjpwYXNz")]);
        assert_eq!(find_token(&basic, &source(true, false)), Ok(None));
        let lower = request(&[("authorization", "bearer  tok")]);
        assert_eq!(find_token(&lower, &source(true, false)), Ok(Some("tok".into())));
        assert_eq!(find_token(&request(&[("authorization", "Bearer ")]), &source(true, false)), Ok(None));
    }

    #[test]
    fn chunks_with_a_gap_are_refused() {
        let gap = request(&[("cookie", "session.0=a; session.2=c")]);
        assert_eq!(find_token(&gap, &source(false, true)), Err(Rejection::IncompleteChunks));
        let no_start = request(&[("cookie", "session.1=b")]);
        assert_eq!(find_token(&no_start, &source(false, true)), Err(Rejection::IncompleteChunks));
        let lookalike = request(&[("cookie", "session.x=1; sessionx.0=2")]);
        assert_eq!(find_token(&lookalike, &source(false, true)), Ok(None));
    }
}
