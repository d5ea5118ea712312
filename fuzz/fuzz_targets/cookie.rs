//! Session cookie extraction from random `Cookie` header bytes: a token or none, never a
//! panic, and a token found is always a substring of what was sent.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = http::HeaderValue::from_bytes(data) else { return };
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::COOKIE, value);
    if let Some(token) = invent_proxy::identity::session_cookie(&headers, "session") {
        assert!(data.windows(token.len().max(1)).any(|w| w == token.as_bytes()) || token.is_empty());
    }
});
