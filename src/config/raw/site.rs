//! A site's own blocks but `identity`, as written: `upstream` (where the site is),
//! `assistant` (the widget and its theme) and `inject` (which pages get it, and where), with
//! the scalars only they take.

use std::str::FromStr;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::config::value::{Appearance, HostHeader, NonEmpty, Parsed, Position, TextSchema, Timeout};

/// `upstream`: the site behind the proxy, and how the proxy reaches it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    /// The site's origin: `http://` or `https://`, a host, an optional port, no path, query
    /// or credentials (`http://127.0.0.1:3000`). Requests keep their own path. An `https://`
    /// upstream's certificate is verified against the system's CA roots (see `tls`).
    pub url: Parsed<UpstreamUrl>,
    /// The `Host` the upstream receives: `preserve` (the client's, from the request's one
    /// authority) or `upstream` (the authority of `url`, for an upstream that routes by name).
    /// Default: `preserve`.
    pub host_header: Option<Parsed<HostHeader>>,
    /// The most connecting to the upstream may take; past it the client gets `502`. A
    /// duration above zero.
    /// Default: `5s`.
    pub connect_timeout: Option<Parsed<Timeout>>,
    /// The most the upstream may take to send its response head, counted from when the
    /// request (its body included) has been sent, and the most an upstream may stop taking
    /// an upload; past it the client gets `504`. A client that is merely slow to upload is
    /// not cut off. A duration above zero.
    /// Default: `60s`.
    pub response_timeout: Option<Parsed<Timeout>>,
    /// How an `https://` upstream is verified; only with an `https://` `url`.
    /// Default: the system's CA roots, for the URL's host.
    #[schemars(with = "Option<crate::config::tls::RawUpstreamTls>")]
    pub tls: Option<Spanned<crate::config::tls::RawUpstreamTls>>,
}

/// `assistant`: the Invent assistant the widget shows.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAssistant {
    /// The assistant's id, the widget's `assistant-id` (`ast_…`); not empty.
    pub id: Parsed<NonEmpty>,
    /// The widget's script: an `http://` or `https://` URL, or a path on the site starting
    /// with `/`. A page that already loads it does not get it twice.
    /// Default: `https://www.useinvent.com/button.js`.
    pub script_url: Option<Parsed<ScriptUrl>>,
    /// The widget's `theme-*` attributes; each is written only when set.
    /// Default: none (the widget's own theme).
    pub theme: Option<RawTheme>,
}

/// `assistant.theme`: the widget's optional `theme-*` attributes.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTheme {
    /// `theme-appearance`: `auto`, `light` or `dark`.
    /// Default: not written (the widget takes `auto`).
    pub appearance: Option<Parsed<Appearance>>,
    /// `theme-button-background-color`: any CSS colour (`"#6366f1"`; quote it in YAML).
    /// Default: not written.
    pub button_background_color: Option<Parsed<NonEmpty>>,
    /// `theme-button-color`: any CSS colour (`"#ffffff"`).
    /// Default: not written.
    pub button_color: Option<Parsed<NonEmpty>>,
}

/// `inject`: which pages get the widget, and where in them.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawInject {
    /// `body_end` (before `</body>`) or `head_end` (before `</head>`). A page without the
    /// tag gets the widget at its end.
    /// Default: `body_end`.
    pub position: Option<Parsed<Position>>,
    /// Path globs whose pages may get the widget, not an empty list: `*` stays within one
    /// segment, `**` crosses segments; each starts with `/`. Matched, case-sensitively,
    /// against the request path decoded and normalised (`//a/./b/../c;x=1` is `/a/c`).
    /// Default: `["/**"]` (every path).
    pub include_paths: Option<Vec<Parsed<PathGlob>>>,
    /// Path globs whose pages never get the widget, written and matched as `include_paths`;
    /// an exclusion wins over an inclusion.
    /// Default: `[]`.
    pub exclude_paths: Option<Vec<Parsed<PathGlob>>>,
    /// Origins (`https://host[:port]`, or `http`, `ws`, `wss`; the host may start with `*.`)
    /// added to a rewritten page's `Content-Security-Policy` header where it governs what the
    /// widget loads: scripts, `connect-src`, frames, images, styles and fonts. Where only
    /// `default-src` governs, the specific directive is added instead, so nothing else is
    /// widened.
    /// Default: `[]`.
    pub csp_allow: Option<Vec<Parsed<CspSource>>>,
    /// Keep one widget across Turbo Drive and Turbolinks visits, which replace `<body>` with
    /// the next page's fetched in the background: the injected element carries an `id`
    /// (`invent-assistant`; for a signed-in visitor `invent-assistant-` and a digest of the
    /// identity attributes) and `data-turbo-permanent` and `data-turbolinks-permanent`, so
    /// the element of the first page is kept while the visitor's identity stays the same;
    /// the script tag carries `data-turbo-eval="false"` and `data-turbolinks-eval="false"`,
    /// so it runs once per full page load; and a Turbo or Turbolinks visit's request (not
    /// a Turbo Frame's) gets the widget as a navigation does. pjax needs none of it. `false`:
    /// none of these.
    /// Default: `true`.
    pub turbo_permanent: Option<bool>,
}

/// An origin for `inject.csp_allow`: `https://host[:port]`, the host may start with `*.`.
/// Nothing else, so it can never break the policy it is added to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CspSource(pub String);

impl FromStr for CspSource {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || format!("{s:?} is not an origin like https://www.useinvent.com or https://*.example.com");
        let schemes = ["https://", "http://", "wss://", "ws://"];
        let rest = schemes.iter().find_map(|scheme| s.strip_prefix(scheme)).ok_or_else(invalid)?;
        let (host, port) = rest.split_once(':').unwrap_or((rest, ""));
        let host = host.strip_prefix("*.").unwrap_or(host);
        let host_ok = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        let port_ok = if rest.contains(':') { port.parse::<u16>().is_ok() } else { true };
        if host_ok && port_ok { Ok(CspSource(s.to_owned())) } else { Err(invalid()) }
    }
}

/// `upstream.url`: `http://` or `https://`, a host, an optional port, and no path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamUrl {
    pub scheme: http::uri::Scheme,
    pub authority: http::uri::Authority,
    /// `authority` as a `Host` header value, made once.
    pub host: http::HeaderValue,
}

impl FromStr for UpstreamUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let uri: http::Uri = s.parse().map_err(|e| format!("invalid URL {s:?}: {e}"))?;
        let scheme = uri.scheme().cloned().ok_or_else(|| format!("{s:?} needs a scheme: http:// or https://"))?;
        if scheme != http::uri::Scheme::HTTP && scheme != http::uri::Scheme::HTTPS {
            return Err(format!("unsupported scheme in {s:?}: use http:// or https://"));
        }
        let authority = uri.authority().cloned().ok_or_else(|| format!("{s:?} has no host"))?;
        if authority.as_str().contains('@') {
            return Err(format!("{s:?} must not carry credentials"));
        }
        let path_is_root = matches!(uri.path(), "" | "/");
        if !path_is_root || uri.query().is_some() {
            return Err(format!(
                "{s:?} has a path or query; the upstream is an origin (scheme://host:port) and requests keep their own path"
            ));
        }
        let host = http::HeaderValue::from_str(authority.as_str()).map_err(|_| format!("{s:?} has an invalid host"))?;
        Ok(UpstreamUrl { scheme, authority, host })
    }
}

/// `assistant.script_url`: an absolute `http(s)://` URL or a path on the site itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptUrl(pub String);

impl FromStr for ScriptUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let is_path = s.starts_with('/') && !s.starts_with("//");
        let is_absolute = s.starts_with("https://") || s.starts_with("http://");
        let parses = s.parse::<http::Uri>().is_ok();
        if (is_path || is_absolute) && parses {
            Ok(ScriptUrl(s.to_owned()))
        } else {
            Err(format!("{s:?} is not an http(s):// URL or a path starting with /"))
        }
    }
}

/// A glob on the request path: `*` stays within one segment, `**` crosses segments.
#[derive(Debug, Clone)]
pub struct PathGlob {
    pub pattern: String,
    pub glob: globset::Glob,
}

impl FromStr for PathGlob {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if !s.starts_with('/') {
            return Err(format!("{s:?} must start with / (it is matched against the request path)"));
        }
        let glob = globset::GlobBuilder::new(s)
            .literal_separator(true)
            .build()
            .map_err(|e| format!("invalid glob {s:?}: {}", e.kind()))?;
        Ok(PathGlob { pattern: s.to_owned(), glob })
    }
}

impl TextSchema for CspSource {
    const KIND: &'static str = "origin";
}
impl TextSchema for PathGlob {
    const KIND: &'static str = "path glob";
}
impl TextSchema for ScriptUrl {
    const KIND: &'static str = "URL or path";
}
impl TextSchema for UpstreamUrl {
    const KIND: &'static str = "origin URL";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls_are_origins() {
        let url: UpstreamUrl = "http://127.0.0.1:3000".parse().unwrap();
        assert_eq!(url.authority.as_str(), "127.0.0.1:3000");
        assert!("https://app.internal/".parse::<UpstreamUrl>().is_ok());
        assert!("ftp://x".parse::<UpstreamUrl>().is_err());
        assert!("127.0.0.1:3000".parse::<UpstreamUrl>().is_err());
        assert!("http://x/app".parse::<UpstreamUrl>().is_err());
        assert!("http://user:pw@x".parse::<UpstreamUrl>().is_err());
    }

    #[test]
    fn script_urls_are_absolute_or_site_paths() {
        assert!("https://www.useinvent.com/button.js".parse::<ScriptUrl>().is_ok());
        assert!("/static/button.js".parse::<ScriptUrl>().is_ok());
        assert!("//cdn.example/button.js".parse::<ScriptUrl>().is_err());
        assert!("javascript:alert(1)".parse::<ScriptUrl>().is_err());
    }

    #[test]
    fn csp_sources_are_plain_origins() {
        for good in ["https://www.useinvent.com", "https://*.useinvent.com", "wss://chat.example:8443"] {
            assert!(good.parse::<CspSource>().is_ok(), "{good}");
        }
        for bad in [
            "www.useinvent.com",
            "https://x; script-src *",
            "https://a b",
            "'unsafe-inline'",
            "https://x:port",
            "https://",
        ] {
            assert!(bad.parse::<CspSource>().is_err(), "{bad}");
        }
    }

    #[test]
    fn path_globs_keep_single_stars_within_a_segment() {
        let matcher = |p: &str| p.parse::<PathGlob>().unwrap().glob.compile_matcher();
        assert!(matcher("/**").is_match("/"));
        assert!(matcher("/**").is_match("/a/b/c"));
        assert!(matcher("/admin/*").is_match("/admin/users"));
        assert!(!matcher("/admin/*").is_match("/admin/users/1"));
        assert!(matcher("/admin/**").is_match("/admin/users/1"));
        assert!("admin/*".parse::<PathGlob>().is_err());
    }
}
