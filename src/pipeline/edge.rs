//! What the proxy refuses at its edge, before a request is routed: request targets that
//! are not a path or an absolute URL, more or fewer `Host` fields than HTTP allows, an
//! authority the request names twice in two ways, HTTP/2 fields HTTP/2 calls malformed,
//! and transfer codings that cannot be forwarded. A request that passes has one authority
//! (RFC 9112 §3.2.2, RFC 9113 §8.3.1): it decides the site, and it is the request's only
//! `Host` from here on.

use http::header::{self, HeaderMap, HeaderValue};
use http::uri::Authority;
use http::{Method, Request, Version};

use crate::error::ProxyError;

/// Why a request was refused at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// An HTTP/1.1 request without `Host` (RFC 9112 §3.2).
    NoHost,
    /// More than one `Host` field (RFC 9112 §3.2).
    ManyHosts,
    /// A `Host` value that is not `host[:port]` (RFC 9112 §3.2).
    InvalidHost,
    /// HTTP/2: a `host` field naming another authority than `:authority` (RFC 9113 §8.3.1).
    HostConflict,
    /// `user@host` in an authority (RFC 9110 §4.2.4; RFC 9113 §8.3.1 for `:authority`).
    UserInfo,
    /// `GET host:port`: the authority-form is for CONNECT only (RFC 9112 §3.2.3).
    AuthorityForm,
    /// `GET *`: the asterisk-form is for OPTIONS only (RFC 9112 §3.2.4, RFC 9113 §8.3.1).
    AsteriskForm,
    /// A target with a `#fragment`: no request-target form has one (RFC 9112 §3.2).
    Fragment,
    /// A target that is neither a path nor an `http(s)` URL (RFC 9112 §3.2).
    InvalidTarget,
    /// HTTP/2: a field value with leading or trailing white space (RFC 9113 §8.2.1).
    FieldWhitespace,
    /// `chunked` applied more than once (RFC 9112 §6.1).
    ChunkedTwice,
    /// A transfer coding besides `chunked` (RFC 9112 §6.1: 501).
    TransferCoding,
}

impl Refusal {
    /// What the access line says, a fixed phrase.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Refusal::NoHost => "no Host field",
            Refusal::ManyHosts => "more than one Host field",
            Refusal::InvalidHost => "the Host field is not host[:port]",
            Refusal::HostConflict => "the host field contradicts :authority",
            Refusal::UserInfo => "an authority with userinfo",
            Refusal::AuthorityForm => "an authority-form target outside CONNECT",
            Refusal::AsteriskForm => "an asterisk-form target outside OPTIONS",
            Refusal::Fragment => "a target with a fragment",
            Refusal::InvalidTarget => "a target that is not a path or an http(s) URL",
            Refusal::FieldWhitespace => "an HTTP/2 field value with leading or trailing white space",
            Refusal::ChunkedTwice => "chunked applied more than once",
            Refusal::TransferCoding => "a transfer coding other than chunked",
        }
    }
}

/// A refusal is the client's error: `400`, or `501` for a transfer coding the proxy does
/// not implement.
impl From<Refusal> for ProxyError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::TransferCoding => ProxyError::NotImplemented(refusal.reason()),
            _ => ProxyError::BadRequest(refusal.reason()),
        }
    }
}

/// Checks a request at the edge and gives it its one authority: the target's (absolute
/// form, or HTTP/2 `:authority`), else `Host`'s, written into `Host` so that routing,
/// identity and the upstream all read the same one. `fragment`: whether the client's
/// request line carried a `#fragment` (which the parsed URI no longer shows).
pub(super) fn admit<B>(req: &mut Request<B>, fragment: bool) -> Result<Option<HeaderValue>, Refusal> {
    if fragment {
        return Err(Refusal::Fragment);
    }
    check_target(req.method(), req.uri())?;
    if req.version() == Version::HTTP_2 {
        check_h2_fields(req.headers())?;
    }
    check_transfer_coding(req.headers())?;
    let host = single_host(req.headers(), req.version())?;
    let authority = match (req.uri().authority(), host) {
        (Some(target), Some(host)) if req.version() == Version::HTTP_2 && !same_authority(target, &host) => {
            return Err(Refusal::HostConflict);
        }
        (Some(target), _) => Some(HeaderValue::from_str(target.as_str()).map_err(|_| Refusal::InvalidTarget)?),
        (None, host) => host.filter(|h| !h.is_empty()),
    };
    match &authority {
        Some(authority) => req.headers_mut().insert(header::HOST, authority.clone()),
        None => req.headers_mut().remove(header::HOST),
    };
    Ok(authority)
}

/// The request-target forms (RFC 9112 §3.2): origin-form (a path), absolute-form (an
/// `http`/`https` URL), asterisk-form for OPTIONS; CONNECT's authority-form is left to
/// the proxy's refusal of CONNECT itself.
fn check_target(method: &Method, uri: &http::Uri) -> Result<(), Refusal> {
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(Refusal::UserInfo);
    }
    if uri.path() == "*" {
        return if method == Method::OPTIONS { Ok(()) } else { Err(Refusal::AsteriskForm) };
    }
    match (uri.scheme_str(), uri.authority()) {
        (None, Some(_)) if method == Method::CONNECT => Ok(()),
        (None, Some(_)) => Err(Refusal::AuthorityForm),
        (Some("http" | "https"), Some(_)) => Ok(()),
        (Some(_), _) => Err(Refusal::InvalidTarget),
        (None, None) if uri.path().starts_with('/') => Ok(()),
        (None, None) => Err(Refusal::InvalidTarget),
    }
}

/// The request's `Host`: none, or exactly one field whose value is `host[:port]`
/// (RFC 9112 §3.2). HTTP/1.1 requires it; HTTP/1.0 and HTTP/2 may leave it out.
fn single_host(headers: &HeaderMap, version: Version) -> Result<Option<HeaderValue>, Refusal> {
    let mut hosts = headers.get_all(header::HOST).iter();
    let host = match (hosts.next(), hosts.next()) {
        (_, Some(_)) => return Err(Refusal::ManyHosts),
        (None, None) if version == Version::HTTP_11 => return Err(Refusal::NoHost),
        (None, None) => return Ok(None),
        (Some(host), None) => host,
    };
    if host.is_empty() {
        return Ok(Some(host.clone()));
    }
    let authority = host.to_str().ok().and_then(|h| h.parse::<Authority>().ok()).ok_or(Refusal::InvalidHost)?;
    if authority.as_str().contains('@') {
        return Err(Refusal::UserInfo);
    }
    if authority.as_str().len() != host.len() {
        return Err(Refusal::InvalidHost);
    }
    Ok(Some(host.clone()))
}

/// Whether a `host` field names the same authority as the target: host case-insensitively,
/// the same port.
fn same_authority(target: &Authority, host: &HeaderValue) -> bool {
    host.to_str()
        .ok()
        .and_then(|h| h.parse::<Authority>().ok())
        .is_some_and(|host| host.host().eq_ignore_ascii_case(target.host()) && host.port_u16() == target.port_u16())
}

/// RFC 9113 §8.2.1: a field value must not start or end with SP or HTAB.
fn check_h2_fields(headers: &HeaderMap) -> Result<(), Refusal> {
    let padded = |value: &HeaderValue| {
        let bytes = value.as_bytes();
        [bytes.first(), bytes.last()].into_iter().flatten().any(|b| matches!(b, b' ' | b'\t'))
    };
    if headers.values().any(padded) { Err(Refusal::FieldWhitespace) } else { Ok(()) }
}

/// `Transfer-Encoding` must be one `chunked` and nothing else: hyper decodes a list that
/// ends in `chunked` as one chunked body, so `chunked, chunked` or `gzip, chunked` would
/// reach the upstream as other bytes than the client meant (RFC 9112 §6.1).
fn check_transfer_coding(headers: &HeaderMap) -> Result<(), Refusal> {
    let mut chunked = 0;
    for coding in crate::headers::list_items(headers, header::TRANSFER_ENCODING) {
        if coding.eq_ignore_ascii_case("chunked") {
            chunked += 1;
        } else {
            return Err(Refusal::TransferCoding);
        }
    }
    if chunked > 1 { Err(Refusal::ChunkedTwice) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(version: Version, target: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::get(target).version(version);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    fn admitted(version: Version, target: &str, headers: &[(&str, &str)]) -> Result<Option<String>, Refusal> {
        let mut req = request(version, target, headers);
        let authority = admit(&mut req, false)?;
        let hosts: Vec<_> = req.headers().get_all(header::HOST).iter().cloned().collect();
        assert_eq!(hosts, authority.iter().cloned().collect::<Vec<_>>(), "Host is the authority");
        Ok(authority.map(|a| a.to_str().unwrap().to_owned()))
    }

    #[test]
    fn the_target_authority_wins_over_host() {
        let h11 = Version::HTTP_11;
        assert_eq!(admitted(h11, "/x", &[("host", "a.test")]), Ok(Some("a.test".into())));
        assert_eq!(admitted(h11, "http://a.test/x", &[("host", "evil.test")]), Ok(Some("a.test".into())));
        assert_eq!(admitted(Version::HTTP_2, "http://a.test/x", &[]), Ok(Some("a.test".into())));
        assert_eq!(admitted(Version::HTTP_2, "http://a.test/x", &[("host", "A.TEST")]), Ok(Some("a.test".into())));
        assert_eq!(admitted(Version::HTTP_2, "http://a.test/x", &[("host", "b.test")]), Err(Refusal::HostConflict));
        assert_eq!(admitted(Version::HTTP_2, "http://a.test:8443/", &[("host", "a.test")]), Err(Refusal::HostConflict));
        assert_eq!(admitted(Version::HTTP_10, "/x", &[]), Ok(None));
    }

    #[test]
    fn host_fields_follow_rfc_9112() {
        let h11 = Version::HTTP_11;
        assert_eq!(admitted(h11, "/", &[]), Err(Refusal::NoHost));
        assert_eq!(admitted(h11, "/", &[("host", "a"), ("host", "a")]), Err(Refusal::ManyHosts));
        assert_eq!(admitted(h11, "/", &[("host", "u@a")]), Err(Refusal::UserInfo));
        assert_eq!(admitted(h11, "/", &[("host", "a/b")]), Err(Refusal::InvalidHost));
        assert_eq!(admitted(h11, "/", &[("host", "a, b")]), Err(Refusal::InvalidHost));
        assert_eq!(admitted(h11, "/", &[("host", "[::1]:8080")]), Ok(Some("[::1]:8080".into())));
        assert_eq!(admitted(h11, "/", &[("host", "")]), Ok(None), "an empty Host names no authority");
    }

    #[test]
    fn targets_must_be_a_path_or_an_http_url() {
        let check = |method: Method, target: &str| check_target(&method, &target.parse().unwrap());
        assert_eq!(check(Method::GET, "/x?y"), Ok(()));
        assert_eq!(check(Method::GET, "https://a.test/x"), Ok(()));
        assert_eq!(check(Method::OPTIONS, "*"), Ok(()));
        assert_eq!(check(Method::GET, "*"), Err(Refusal::AsteriskForm));
        assert_eq!(check(Method::GET, "a.test:80"), Err(Refusal::AuthorityForm));
        assert_eq!(check(Method::CONNECT, "a.test:443"), Ok(()));
        assert_eq!(check(Method::GET, "ftp://a.test/x"), Err(Refusal::InvalidTarget));
        assert_eq!(check(Method::GET, "http://u@a.test/"), Err(Refusal::UserInfo));
    }

    #[test]
    fn transfer_codings_are_one_chunked() {
        let codings = |values: &[&'static str]| {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append(header::TRANSFER_ENCODING, HeaderValue::from_static(value));
            }
            check_transfer_coding(&headers)
        };
        assert_eq!(codings(&["chunked"]), Ok(()));
        assert_eq!(codings(&[]), Ok(()));
        assert_eq!(codings(&["chunked, chunked"]), Err(Refusal::ChunkedTwice));
        assert_eq!(codings(&["chunked", "Chunked"]), Err(Refusal::ChunkedTwice));
        assert_eq!(codings(&["gzip, chunked"]), Err(Refusal::TransferCoding));
    }
}
