//! Pure header helpers: hop-by-hop removal, upgrades, `X-Forwarded-*`, media types, cache
//! headers.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::codec::Coding;

/// Hop-by-hop headers (RFC 9110 §7.6.1, plus the legacy `Keep-Alive` and
/// `Proxy-Connection`): meaningful for one connection only, never forwarded.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// The items of comma-separated header fields (`Cache-Control`, `Vary`, `Connection`, …)
/// across all fields of that name, trimmed, empty ones skipped (RFC 9110 §5.6.1).
pub(crate) fn list_items<K: header::AsHeaderName>(headers: &HeaderMap, name: K) -> impl Iterator<Item = &str> {
    headers
        .get_all(name)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// Removes hop-by-hop headers, including every header the `Connection` header names.
/// `Upgrade` goes too: a proxied upgrade is handled by the caller, not by copying it.
pub(crate) fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = list_items(headers, header::CONNECTION)
        .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
        .collect();
    for name in &named {
        headers.remove(name);
    }
    remove_all(headers, &HOP_BY_HOP);
    remove_all(headers, &[header::UPGRADE]);
}

/// Removes the fields named in `names`. One pass over the map's few names finds which
/// are there: cheaper than a hashed lookup per name when, as usual, none is.
fn remove_all(headers: &mut HeaderMap, names: &[HeaderName]) {
    while let Some(name) = headers.keys().find(|key| names.contains(key)).cloned() {
        headers.remove(name);
    }
}

/// The protocol a request asks to switch to: an `Upgrade` header together with the
/// `upgrade` token in `Connection` (RFC 9110 §7.8).
pub(crate) fn upgrade_protocol(headers: &HeaderMap) -> Option<HeaderValue> {
    let connection_says_upgrade =
        list_items(headers, header::CONNECTION).any(|token| token.eq_ignore_ascii_case("upgrade"));
    connection_says_upgrade.then(|| headers.get(header::UPGRADE).cloned()).flatten()
}

/// Puts back the two headers an upgrade needs after hop-by-hop headers were removed.
pub(crate) fn restore_upgrade(headers: &mut HeaderMap, protocol: HeaderValue) {
    headers.insert(header::UPGRADE, protocol);
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
}

/// Removes request headers whose names have an `_`: CGI-style apps (PHP, Perl, Python's
/// WSGI) see `X_Forwarded_For` and `X-Forwarded-For` as the same `HTTP_X_FORWARDED_FOR`,
/// so such a name lets a client pass for a header the proxy sets or drops (nginx drops
/// them by default, `underscores_in_headers off`).
pub(crate) fn remove_underscored(headers: &mut HeaderMap) {
    if !headers.keys().any(|name| name.as_str().contains('_')) {
        return;
    }
    let underscored: Vec<HeaderName> = headers.keys().filter(|name| name.as_str().contains('_')).cloned().collect();
    for name in underscored {
        headers.remove(name);
    }
}

/// Other headers through which a client could claim a scheme, host, port, prefix or
/// address to the upstream. Only a trusted peer's are passed on.
/// The forwarding headers the proxy sets on what it sends upstream.
pub(crate) const X_FORWARDED: [HeaderName; 3] = [
    HeaderName::from_static("x-forwarded-for"),
    HeaderName::from_static("x-forwarded-proto"),
    HeaderName::from_static("x-forwarded-host"),
];

const SPOOFABLE: [HeaderName; 9] = [
    header::FORWARDED,
    HeaderName::from_static("x-real-ip"),
    HeaderName::from_static("x-forwarded-port"),
    HeaderName::from_static("x-forwarded-prefix"),
    HeaderName::from_static("x-forwarded-scheme"),
    HeaderName::from_static("x-forwarded-ssl"),
    HeaderName::from_static("x-forwarded-server"),
    HeaderName::from_static("x-url-scheme"),
    HeaderName::from_static("front-end-https"),
];

/// Sets `X-Forwarded-For` (appending the peer to any list the client sent, as nginx's
/// `$proxy_add_x_forwarded_for` does), `X-Forwarded-Proto` and `X-Forwarded-Host`. A
/// `trusted` peer (a load balancer in front) keeps the `-Proto` and `-Host` it sent, and
/// its other forwarding headers (`Forwarded`, `X-Real-IP`, …); anyone else's are dropped.
pub(crate) fn set_forwarded(
    headers: &mut HeaderMap,
    peer: IpAddr,
    proto: &'static str,
    host: Option<&HeaderValue>,
    trusted: bool,
) {
    const XFF: HeaderName = HeaderName::from_static("x-forwarded-for");
    let mut chain = Vec::with_capacity(48);
    for prior in headers.get_all(&XFF).iter().filter(|v| v.to_str().is_ok()) {
        chain.extend_from_slice(prior.as_bytes());
        chain.extend_from_slice(b", ");
    }
    write_ip(&mut chain, peer);
    if let Ok(value) = HeaderValue::from_maybe_shared(bytes::Bytes::from(chain)) {
        headers.insert(XFF, value);
    }
    if !trusted {
        remove_all(headers, &SPOOFABLE);
    }
    const XFP: HeaderName = HeaderName::from_static("x-forwarded-proto");
    const XFH: HeaderName = HeaderName::from_static("x-forwarded-host");
    let (keep_proto, keep_host) = (trusted && headers.contains_key(&XFP), trusted && headers.contains_key(&XFH));
    if !keep_proto {
        headers.insert(XFP, HeaderValue::from_static(proto));
    }
    if !keep_host {
        match host {
            Some(host) => headers.insert(XFH, host.clone()),
            None => headers.remove(XFH),
        };
    }
}

/// Appends `ip` as text: an IPv4 address digit by digit (`Display` goes through the
/// formatter's padding machinery, a third of `set_forwarded`'s cost), IPv6 as `Display`
/// writes it.
fn write_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                if octet >= 100 {
                    out.push(b'0' + octet / 100);
                }
                if octet >= 10 {
                    out.push(b'0' + octet / 10 % 10);
                }
                out.push(b'0' + octet % 10);
            }
        }
        IpAddr::V6(v6) => {
            use std::io::Write;
            let _ = write!(out, "{v6}");
        }
    }
}

/// The media type of `Content-Type`, lowercased, and its `charset` parameter if any.
pub(crate) fn media_type(headers: &HeaderMap) -> Option<(String, Option<String>)> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let mut parts = value.split(';');
    let essence = parts.next()?.trim().to_ascii_lowercase();
    let charset = parts.find_map(|p| {
        let (name, value) = p.split_once('=')?;
        name.trim().eq_ignore_ascii_case("charset").then(|| value.trim().trim_matches('"').to_ascii_lowercase())
    });
    Some((essence, charset))
}

/// Whether the request is a top-level navigation rather than a subresource, XHR/fetch or
/// htmx request (spec: "What gets rewritten").
pub(crate) fn is_navigation(headers: &HeaderMap) -> bool {
    let dest_ok = headers.get(&SEC_FETCH_DEST).is_none_or(|v| v.as_bytes().eq_ignore_ascii_case(b"document"));
    let xhr = headers.get(&X_REQUESTED_WITH).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"xmlhttprequest"));
    dest_ok && !xhr && !headers.contains_key(&HX_REQUEST)
}

// Names looked up on every request, parsed once (a `&str` name is parsed at each lookup).
static SEC_FETCH_DEST: HeaderName = HeaderName::from_static("sec-fetch-dest");
static X_REQUESTED_WITH: HeaderName = HeaderName::from_static("x-requested-with");
static HX_REQUEST: HeaderName = HeaderName::from_static("hx-request");

/// Whether the request is a Turbo Drive or Turbolinks visit: the page the library fetches
/// (`fetch`/XHR, so `Sec-Fetch-Dest: empty`) to swap in as the new `<body>`, which must
/// carry the widget as a navigation's page does. Recognised by what each version sends:
/// `X-Turbo-Request-Id` (Turbo 8), Turbo 7's exact `Accept` list (`text/html,
/// application/xhtml+xml`, after `text/vnd.turbo-stream.html` for a form's), `VND.PREFETCH`
/// (Turbo 7's preloads), `Turbolinks-Referrer` (Turbolinks 5). Not a Turbo Frame's request
/// (`Turbo-Frame`), which renders one frame; not one marked as XHR or htmx.
pub(crate) fn is_turbo_visit(headers: &HeaderMap) -> bool {
    let marked = ["x-turbo-request-id", "turbolinks-referrer", "vnd.prefetch"].iter().any(|h| headers.contains_key(*h));
    let accept: Vec<&str> = list_items(headers, header::ACCEPT).collect();
    let turbo_7 =
        |list: &[&str]| accept.len() == list.len() && accept.iter().zip(list).all(|(a, b)| a.eq_ignore_ascii_case(b));
    let turbo_accept = turbo_7(&["text/html", "application/xhtml+xml"])
        || turbo_7(&["text/vnd.turbo-stream.html", "text/html", "application/xhtml+xml"]);
    let xhr = headers.get(&X_REQUESTED_WITH).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"xmlhttprequest"));
    (marked || turbo_accept) && !headers.contains_key("turbo-frame") && !xhr && !headers.contains_key(&HX_REQUEST)
}

/// Whether the client asks for an HTML document (`Accept` names `text/html` or
/// `application/xhtml+xml`), as browsers' navigations do.
pub(crate) fn accepts_html(headers: &HeaderMap) -> bool {
    list_items(headers, header::ACCEPT).any(|t| {
        let media = t.split(';').next().unwrap_or("").trim();
        media.eq_ignore_ascii_case("text/html") || media.eq_ignore_ascii_case("application/xhtml+xml")
    })
}

/// Whether the client's `Accept-Encoding` allows `coding` (RFC 9110 §12.5.3): named with a
/// q-value above zero, or covered by `*`. Without the header, only identity is assumed.
pub(crate) fn accepts_coding(headers: &HeaderMap, coding: Coding) -> bool {
    let mut wildcard = false;
    for item in list_items(headers, header::ACCEPT_ENCODING) {
        let mut parts = item.split(';');
        let token = parts.next().unwrap_or("").trim();
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
            .map_or(1.0, |q| q.trim().parse::<f32>().unwrap_or(0.0));
        if Coding::from_token(token) == Some(coding) {
            return q > 0.0;
        }
        wildcard |= token == "*" && q > 0.0;
    }
    wildcard
}

/// `"abc"` → `W/"abc"`: the rewritten body is no longer byte-identical to the upstream's.
pub(crate) fn weaken_etag(headers: &mut HeaderMap) {
    let Some(etag) = headers.get(header::ETAG) else {
        return;
    };
    if etag.as_bytes().starts_with(b"W/") {
        return;
    }
    let mut weak = b"W/".to_vec();
    weak.extend_from_slice(etag.as_bytes());
    match HeaderValue::from_bytes(&weak) {
        Ok(value) => headers.insert(header::ETAG, value),
        Err(_) => headers.remove(header::ETAG),
    };
}

/// Marks a personalised response as unfit for shared caches: `private` in, `public` and
/// `s-maxage` out (RFC 9111 §5.2.2).
pub(crate) fn make_private(headers: &mut HeaderMap) {
    let mut directives: Vec<String> = list_items(headers, header::CACHE_CONTROL)
        .map(str::to_owned)
        .filter(|d| {
            let name = d.split('=').next().unwrap_or("").trim().to_ascii_lowercase();
            !d.is_empty() && name != "public" && name != "s-maxage"
        })
        .collect();
    if !directives.iter().any(|d| d.eq_ignore_ascii_case("private")) {
        directives.insert(0, "private".to_owned());
    }
    if let Ok(value) = HeaderValue::from_str(&directives.join(", ")) {
        headers.insert(header::CACHE_CONTROL, value);
    }
    // Targeted cache controls (RFC 9213 `CDN-Cache-Control`, vendor `*-CDN-Cache-Control`,
    // `Surrogate-Control`, nginx's `X-Accel-Expires`) override Cache-Control at a CDN or a
    // caching proxy: they must not let it store the page.
    let targeted: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            let name = name.as_str();
            name.ends_with("cdn-cache-control") || name == "surrogate-control" || name == "x-accel-expires"
        })
        .cloned()
        .collect();
    for name in targeted {
        headers.remove(name);
    }
}

/// Whether a comma-separated header (e.g. `Cache-Control`) carries `directive`.
pub(crate) fn has_directive(headers: &HeaderMap, name: HeaderName, directive: &str) -> bool {
    list_items(headers, name).any(|d| d.split('=').next().unwrap_or("").trim().eq_ignore_ascii_case(directive))
}

/// `Content-Disposition: attachment` (RFC 6266): the body is a download.
pub(crate) fn is_attachment(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_DISPOSITION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|kind| kind.trim().eq_ignore_ascii_case("attachment"))
}

/// Adds `name` to `Vary` unless it is already there (or `Vary: *`).
pub(crate) fn add_vary(headers: &mut HeaderMap, name: &str) {
    let present = list_items(headers, header::VARY).any(|v| v == "*" || v.eq_ignore_ascii_case(name));
    if !present && let Ok(value) = HeaderValue::from_str(name) {
        headers.append(header::VARY, value);
    }
}

/// Adds a request header to `Vary`, in its usual spelling (`Cookie`, `Authorization`).
pub(crate) fn add_vary_on(headers: &mut HeaderMap, name: &HeaderName) {
    let spelled = match name {
        n if n == header::COOKIE => "Cookie",
        n if n == header::AUTHORIZATION => "Authorization",
        n => n.as_str(),
    };
    add_vary(headers, spelled);
}

/// The request id header: taken from the client, else made; sent upstream and returned.
pub(crate) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The client's `X-Request-Id` when it is a plain token of at most 128 bytes (letters,
/// digits and `-_.:/+=`), else a new one: 32 hex digits, unique and not guessable from
/// earlier ones ([`new_request_id`]).
pub(crate) fn request_id(headers: &HeaderMap) -> HeaderValue {
    let plain = |b: &u8| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(b);
    match headers.get(&X_REQUEST_ID) {
        Some(id) if (1..=128).contains(&id.len()) && id.as_bytes().iter().all(plain) => id.clone(),
        _ => new_request_id(),
    }
}

/// A new request id: a per-thread counter through SipHash-1-3 under a per-thread random
/// key (std's `RandomState`), 128 bits as 32 hex digits. Distinct inputs under one key,
/// and a key per thread, make ids unique; the secret key keeps them unpredictable. It
/// replaces 16 bytes from aws-lc's generator per request (and a provider built for
/// them), 4,000 instructions, with about 300.
fn new_request_id() -> HeaderValue {
    use std::cell::Cell;
    use std::hash::{BuildHasher, Hasher};
    thread_local! {
        static IDS: (std::hash::RandomState, Cell<u64>) = (std::hash::RandomState::new(), const { Cell::new(0) });
    }
    let (high, low) = IDS.with(|(key, counter)| {
        let n = counter.get();
        counter.set(n.wrapping_add(1));
        let half = |tag: u8| {
            let mut hasher = key.build_hasher();
            hasher.write_u64(n);
            hasher.write_u8(tag);
            hasher.finish()
        };
        (half(0), half(1))
    });
    let id = (u128::from(high) << 64 | u128::from(low)).to_be_bytes();
    let mut text = [0u8; 32];
    // 16 bytes always fit 32 hex digits, which are always a valid header value.
    match hex::encode_to_slice(id, &mut text) {
        Ok(()) => HeaderValue::from_bytes(&text).unwrap_or_else(|_| HeaderValue::from_static("-")),
        Err(_) => HeaderValue::from_static("-"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn hop_by_hop_headers_and_those_named_in_connection_are_removed() {
        let mut headers = map(&[
            ("connection", "keep-alive, x-secret-hop"),
            ("keep-alive", "timeout=5"),
            ("x-secret-hop", "1"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("cookie", "a=b"),
        ]);
        remove_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key("cookie"));
    }

    #[test]
    fn forwarded_for_appends_the_peer() {
        let mut headers = map(&[("x-forwarded-for", "203.0.113.9")]);
        let host = HeaderValue::from_static("shop.example");
        set_forwarded(&mut headers, "10.1.2.3".parse().unwrap(), "http", Some(&host), false);
        assert_eq!(headers["x-forwarded-for"], "203.0.113.9, 10.1.2.3");
        assert_eq!(headers["x-forwarded-proto"], "http");
        assert_eq!(headers["x-forwarded-host"], "shop.example");
    }

    #[test]
    fn only_trusted_peers_keep_their_forwarded_proto_and_host() {
        let sent = || {
            map(&[
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "www.example"),
                ("forwarded", "for=1.2.3.4;proto=https"),
                ("x-real-ip", "1.2.3.4"),
            ])
        };
        let host = HeaderValue::from_static("internal:8080");
        let mut untrusted = sent();
        set_forwarded(&mut untrusted, "203.0.113.9".parse().unwrap(), "http", Some(&host), false);
        assert_eq!(
            (&untrusted["x-forwarded-proto"], &untrusted["x-forwarded-host"]),
            (&"http".parse::<HeaderValue>().unwrap(), &host)
        );
        let mut trusted = sent();
        set_forwarded(&mut trusted, "10.0.0.2".parse().unwrap(), "http", Some(&host), true);
        assert_eq!(trusted["x-forwarded-proto"], "https");
        assert_eq!(trusted["x-forwarded-host"], "www.example");
        assert_eq!(trusted["x-forwarded-for"], "10.0.0.2");
        assert_eq!(trusted["forwarded"], "for=1.2.3.4;proto=https");
        assert!(!untrusted.contains_key("forwarded") && !untrusted.contains_key("x-real-ip"));
    }

    #[test]
    fn media_type_is_lowercased_with_its_charset() {
        let headers = map(&[("content-type", "Text/HTML; Charset=\"UTF-8\"")]);
        assert_eq!(media_type(&headers), Some(("text/html".into(), Some("utf-8".into()))));
        assert_eq!(media_type(&map(&[("content-type", "application/json")])), Some(("application/json".into(), None)));
    }

    #[test]
    fn navigation_excludes_fetches_xhr_and_htmx() {
        assert!(is_navigation(&map(&[])));
        assert!(is_navigation(&map(&[("sec-fetch-dest", "document")])));
        assert!(!is_navigation(&map(&[("sec-fetch-dest", "iframe")])));
        assert!(!is_navigation(&map(&[("sec-fetch-dest", "empty")])));
        assert!(!is_navigation(&map(&[("x-requested-with", "XMLHttpRequest")])));
        assert!(!is_navigation(&map(&[("hx-request", "true")])));
    }

    #[test]
    fn turbo_and_turbolinks_visits_are_told_from_frames_and_other_fetches() {
        let fetch = ("sec-fetch-dest", "empty");
        for visit in [
            map(&[fetch, ("x-turbo-request-id", "5d1c"), ("accept", "text/html, application/xhtml+xml")]),
            map(&[fetch, ("accept", "text/html, application/xhtml+xml")]),
            map(&[fetch, ("accept", "text/vnd.turbo-stream.html, text/html, application/xhtml+xml")]),
            map(&[fetch, ("accept", "text/html"), ("vnd.prefetch", "true")]),
            map(&[fetch, ("accept", "text/html, application/xhtml+xml"), ("turbolinks-referrer", "http://a/")]),
        ] {
            assert!(is_turbo_visit(&visit), "{visit:?}");
        }
        for other in [
            map(&[fetch]),
            map(&[fetch, ("accept", "*/*")]),
            map(&[fetch, ("accept", "text/html")]),
            map(&[fetch, ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")]),
            map(&[fetch, ("x-turbo-request-id", "5d1c"), ("turbo-frame", "cart")]),
            map(&[fetch, ("accept", "text/html, application/xhtml+xml"), ("turbo-frame", "cart")]),
            map(&[fetch, ("x-turbo-request-id", "5d1c"), ("x-requested-with", "XMLHttpRequest")]),
            map(&[fetch, ("x-turbo-request-id", "5d1c"), ("hx-request", "true")]),
        ] {
            assert!(!is_turbo_visit(&other), "{other:?}");
        }
    }

    #[test]
    fn accept_encoding_follows_q_values_and_wildcards() {
        let accepts = |value: &'static str, coding| accepts_coding(&map(&[("accept-encoding", value)]), coding);
        assert!(accepts("gzip, deflate, br", Coding::Brotli));
        assert!(accepts("x-gzip", Coding::Gzip));
        assert!(!accepts("gzip;q=0, br", Coding::Gzip));
        assert!(accepts("*", Coding::Zstd));
        assert!(!accepts("*;q=0", Coding::Zstd));
        assert!(!accepts("br, *;q=0.5, zstd;q=0", Coding::Zstd), "a named coding beats the wildcard");
        assert!(!accepts("identity", Coding::Gzip));
        assert!(!accepts_coding(&HeaderMap::new(), Coding::Gzip));
    }

    #[test]
    fn strong_etags_are_weakened() {
        let mut headers = map(&[("etag", "\"v1\"")]);
        weaken_etag(&mut headers);
        assert_eq!(headers["etag"], "W/\"v1\"");
        weaken_etag(&mut headers);
        assert_eq!(headers["etag"], "W/\"v1\"");
    }

    #[test]
    fn private_replaces_shared_cache_directives() {
        let mut headers = map(&[
            ("cache-control", "public, max-age=60, s-maxage=600"),
            ("cdn-cache-control", "max-age=600"),
            ("cloudflare-cdn-cache-control", "max-age=600"),
            ("surrogate-control", "max-age=600"),
            ("x-accel-expires", "600"),
        ]);
        make_private(&mut headers);
        assert_eq!(headers["cache-control"], "private, max-age=60");
        assert_eq!(headers.len(), 1, "targeted cache controls are gone: {headers:?}");
        let mut empty = HeaderMap::new();
        make_private(&mut empty);
        assert_eq!(empty["cache-control"], "private");
    }

    #[test]
    fn vary_gains_cookie_once() {
        let mut headers = map(&[("vary", "Accept-Encoding")]);
        add_vary(&mut headers, "Cookie");
        add_vary(&mut headers, "Cookie");
        let values: Vec<_> = headers.get_all("vary").iter().collect();
        assert_eq!(values, ["Accept-Encoding", "Cookie"]);
    }

    #[test]
    fn an_upgrade_needs_both_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert_eq!(upgrade_protocol(&headers), None);
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        assert_eq!(upgrade_protocol(&headers), Some(HeaderValue::from_static("websocket")));
        headers.remove(header::UPGRADE);
        assert_eq!(upgrade_protocol(&headers), None);
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for ip in ["0.0.0.0", "9.10.99.100", "127.0.0.1", "255.254.199.200", "::1", "2001:db8::8a2e:370:7334"] {
            let ip: IpAddr = ip.parse().unwrap();
            let mut out = Vec::new();
            write_ip(&mut out, ip);
            assert_eq!(String::from_utf8(out).unwrap(), ip.to_string());
        }
    }

    #[test]
    fn new_request_ids_are_32_hex_digits_and_distinct() {
        let ids: std::collections::HashSet<HeaderValue> = (0..10_000).map(|_| new_request_id()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids.iter().all(|id| id.len() == 32 && id.as_bytes().iter().all(u8::is_ascii_hexdigit)));
        let other_thread = std::thread::spawn(new_request_id).join().unwrap();
        assert!(!ids.contains(&other_thread));
    }
}
