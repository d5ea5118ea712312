//! Reading a session out of a request's headers: a `Bearer` header, a cookie, or that
//! cookie split into chunks (`name.0`, `name.1`, … as NextAuth/Auth.js write it).

use http::HeaderMap;
use http::header::COOKIE;

use super::MAX_TOKEN_BYTES;
use crate::outcome::Rejection;

/// `Authorization: Bearer <token>` (RFC 6750 §2.1; the scheme is case-insensitive).
pub(super) fn bearer(headers: &HeaderMap, name: &http::HeaderName) -> Option<String> {
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

/// The first cookie called `name`, if its value is not empty: where two cookies share a
/// name (one set for a sub-path), Rails, Flask and cookie-session all take the first.
pub(super) fn first_cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<cookie::Cookie<'h>> {
    cookies(headers).find(|c| c.name() == name).filter(|c| !c.value().is_empty())
}

/// `name.0` + `name.1` + … joined, if `name.0` is there. Chunks with a gap, or adding up
/// to more than a token may be, are a rejection.
pub(super) fn chunked_cookie(headers: &HeaderMap, name: &str) -> Result<Option<String>, Rejection> {
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

    #[test]
    fn a_cookie_and_its_chunks_are_read() {
        let chunked = request(&[("cookie", "session.1=b.c; other=1; session.0=a.")]);
        assert_eq!(chunked_cookie(&chunked, "session"), Ok(Some("a.b.c".into())));
        assert_eq!(session_cookie(&chunked, "session"), None);
        let plain = request(&[("cookie", "session=from.cookie")]);
        assert_eq!(session_cookie(&plain, "session").as_deref(), Some("from.cookie"));
    }

    #[test]
    fn bearer_needs_its_scheme() {
        let header = http::header::AUTHORIZATION;
        assert_eq!(bearer(&request(&[("authorization", "Basic dXNlcjpwYXNz")]), &header), None);
        assert_eq!(bearer(&request(&[("authorization", "bearer  tok")]), &header).as_deref(), Some("tok"));
        assert_eq!(bearer(&request(&[("authorization", "Bearer ")]), &header), None);
    }

    #[test]
    fn chunks_with_a_gap_are_refused() {
        let gap = request(&[("cookie", "session.0=a; session.2=c")]);
        assert_eq!(chunked_cookie(&gap, "session"), Err(Rejection::IncompleteChunks));
        let no_start = request(&[("cookie", "session.1=b")]);
        assert_eq!(chunked_cookie(&no_start, "session"), Err(Rejection::IncompleteChunks));
        let lookalike = request(&[("cookie", "session.x=1; sessionx.0=2")]);
        assert_eq!(chunked_cookie(&lookalike, "session"), Ok(None));
    }

    #[test]
    fn session_cookie_is_found_across_cookie_headers() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("theme=dark; other=1"));
        headers.append(COOKIE, HeaderValue::from_static("session=abc.def.ghi"));
        assert_eq!(session_cookie(&headers, "session").as_deref(), Some("abc.def.ghi"));
        assert_eq!(session_cookie(&headers, "missing"), None);
    }
}
