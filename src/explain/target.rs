//! The request `explain` sends: `GET` of the URL's path and query with the URL's host as
//! `Host`, the operator's `--header`s and `--cookie`s (all cookies in one `Cookie`), and
//! the headers a browser's top-level navigation sends wherever the operator gave none.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, Scheme};
use http::{Request, Uri};

/// The headers a browser's top-level navigation sends, added unless given: with them, a
/// page is asked for as a visitor's browser asks for it.
const NAVIGATION: [(&str, &str); 7] = [
    ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    ("accept-encoding", "gzip, deflate, br, zstd"),
    ("sec-fetch-dest", "document"),
    ("sec-fetch-mode", "navigate"),
    ("sec-fetch-site", "none"),
    ("sec-fetch-user", "?1"),
    ("user-agent", concat!("Mozilla/5.0 (compatible; invent-proxy-explain/", env!("CARGO_PKG_VERSION"), ")")),
];

/// Why the URL, a header or a cookie cannot be sent.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("URL {0:?}: {1}")]
    Url(String, &'static str),
    #[error("--header {0:?}: {1}")]
    Header(String, &'static str),
    #[error("--cookie {0:?}: expected 'name=value' (a cookie name, `=`, and a value without `;`)")]
    Cookie(String),
}

/// The request to explain, and what the report says about how it was made.
#[derive(Debug, Clone)]
pub struct Target {
    /// As given, without a `#fragment` (browsers never send one).
    pub url: String,
    /// `https://`: the request is taken as arriving over the proxy's HTTPS listener.
    pub https: bool,
    pub authority: Authority,
    /// The path and query sent.
    pub path_and_query: String,
    headers: HeaderMap,
    /// The header names the operator gave (their values are never printed).
    pub given: Vec<HeaderName>,
    /// The header names added as a browser's navigation sends them.
    pub defaults: Vec<HeaderName>,
    /// The names of the cookies sent (their values are never printed).
    pub cookie_names: Vec<String>,
}

impl Target {
    /// The request for `url` (absolute `http://` or `https://`) with `headers` (each
    /// `Name: value`) and `cookies` (each `name=value`).
    pub fn new(url: &str, headers: &[String], cookies: &[String]) -> Result<Target, TargetError> {
        let without_fragment = url.split('#').next().unwrap_or(url).trim();
        let bad_url = |why| TargetError::Url(url.to_owned(), why);
        let uri: Uri = without_fragment.parse().map_err(|_| bad_url("not a valid URL"))?;
        let https = match uri.scheme() {
            Some(scheme) if *scheme == Scheme::HTTPS => true,
            Some(scheme) if *scheme == Scheme::HTTP => false,
            _ => return Err(bad_url("give an absolute http:// or https:// URL: its host chooses the site")),
        };
        let authority = uri.authority().cloned().ok_or_else(|| bad_url("has no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad_url("must not carry credentials"));
        }
        let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
        let path_and_query = if path_and_query.is_empty() { "/" } else { path_and_query }.to_owned();
        let mut target = Target {
            url: without_fragment.to_owned(),
            https,
            authority,
            path_and_query,
            headers: HeaderMap::new(),
            given: Vec::new(),
            defaults: Vec::new(),
            cookie_names: Vec::new(),
        };
        let mut cookie_pairs = Vec::new();
        for line in headers {
            target.add_header(line, &mut cookie_pairs)?;
        }
        for cookie in cookies {
            let name = cookie_name(cookie).ok_or_else(|| TargetError::Cookie(cookie.clone()))?;
            target.cookie_names.push(name.to_owned());
            cookie_pairs.push(cookie.trim().to_owned());
        }
        if !cookie_pairs.is_empty() {
            let joined = HeaderValue::from_str(&cookie_pairs.join("; "))
                .map_err(|_| TargetError::Cookie(cookie_pairs.join("; ")))?;
            target.headers.insert(header::COOKIE, joined);
        }
        for (name, value) in NAVIGATION {
            let name = HeaderName::from_static(name);
            if !target.headers.contains_key(&name) {
                target.headers.insert(name.clone(), HeaderValue::from_static(value));
                target.defaults.push(name);
            }
        }
        Ok(target)
    }

    /// Adds one `--header 'Name: value'`; a `Cookie` header's pairs join the `--cookie`s.
    fn add_header(&mut self, line: &str, cookie_pairs: &mut Vec<String>) -> Result<(), TargetError> {
        let bad = |why| TargetError::Header(line.to_owned(), why);
        let (name, value) = line.split_once(':').ok_or_else(|| bad("expected 'Name: value'"))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| bad("not a valid header name"))?;
        let value = value.trim();
        if name == header::HOST {
            return Err(bad("the URL's host is the Host: put the host in the URL"));
        }
        if name == header::COOKIE {
            for pair in value.split(';').map(str::trim).filter(|pair| !pair.is_empty()) {
                let cookie = cookie_name(pair).ok_or_else(|| bad("a Cookie header holds 'name=value' pairs"))?;
                self.cookie_names.push(cookie.to_owned());
                cookie_pairs.push(pair.to_owned());
            }
            return Ok(());
        }
        let value = HeaderValue::from_str(value).map_err(|_| bad("not a valid header value"))?;
        if !self.given.contains(&name) {
            self.given.push(name.clone());
        }
        self.headers.append(name, value);
        Ok(())
    }

    /// The request, as a browser sends it: origin-form target, `Host` first.
    pub(super) fn request(&self) -> Result<Request<http_body_util::Empty<bytes::Bytes>>, http::Error> {
        let mut request = Request::get(self.path_and_query.as_str())
            .header(header::HOST, self.authority.as_str())
            .body(http_body_util::Empty::new())?;
        request.headers_mut().extend(self.headers.clone());
        Ok(request)
    }
}

/// The name of a `name=value` cookie, if it is one: a name of visible characters (no
/// separators) and a value without `;`.
fn cookie_name(pair: &str) -> Option<&str> {
    let (name, value) = pair.trim().split_once('=')?;
    let name_ok =
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
    let value_ok = value.bytes().all(|b| b != b';' && (b.is_ascii_graphic() || b == b' '));
    (name_ok && value_ok).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_navigation_is_what_a_browser_sends_unless_told_otherwise() {
        let target =
            Target::new("https://www.example.com/a?b=1#top", &strings(&["Sec-Fetch-Dest: iframe"]), &[]).unwrap();
        assert!(target.https);
        assert_eq!((target.authority.as_str(), target.path_and_query.as_str()), ("www.example.com", "/a?b=1"));
        let request = target.request().unwrap();
        assert_eq!(request.uri(), "/a?b=1");
        assert_eq!(request.headers()["host"], "www.example.com");
        assert_eq!(request.headers()["sec-fetch-dest"], "iframe", "the operator's own value");
        assert_eq!(request.headers()["sec-fetch-mode"], "navigate");
        assert_eq!(target.given, ["sec-fetch-dest"]);
        assert!(!target.defaults.iter().any(|name| name == "sec-fetch-dest"));
        assert_eq!(Target::new("http://a.test", &[], &[]).unwrap().path_and_query, "/");
    }

    #[test]
    fn cookies_make_one_cookie_header() {
        let target = Target::new(
            "http://a.test/",
            &strings(&["Cookie: theme=dark; lang=en"]),
            &strings(&["session=abc.def.ghi", "x=1"]),
        )
        .unwrap();
        let request = target.request().unwrap();
        let cookies: Vec<_> = request.headers().get_all("cookie").iter().collect();
        assert_eq!(cookies, ["theme=dark; lang=en; session=abc.def.ghi; x=1"]);
        assert_eq!(target.cookie_names, ["theme", "lang", "session", "x"]);
    }

    #[test]
    fn what_cannot_be_sent_says_why() {
        let error = |url: &str, headers: &[&str], cookies: &[&str]| {
            Target::new(url, &strings(headers), &strings(cookies)).unwrap_err().to_string()
        };
        assert!(error("/page", &[], &[]).contains("absolute http:// or https:// URL"));
        assert!(error("ftp://a.test/", &[], &[]).contains("absolute"));
        assert!(error("http://u:p@a.test/", &[], &[]).contains("credentials"));
        assert!(error("http://a.test/", &["NoColon"], &[]).contains("expected 'Name: value'"));
        assert!(error("http://a.test/", &["Host: b.test"], &[]).contains("put the host in the URL"));
        assert!(error("http://a.test/", &[], &["novalue"]).contains("expected 'name=value'"));
        assert!(error("http://a.test/", &[], &["a=b;c"]).contains("--cookie"));
    }
}
