//! `explain`'s report: the pipeline's [`Record`] of one request in stable, greppable lines
//! — `site:`, `request:`, `response:`, `identity:`, `widget:`, `csp nonce:`, `headers
//! changed:`, `result:` — each skip and identity outcome in the access line's words, with
//! what it means. No cookie, token or secret key is ever printed: only header and cookie
//! names the operator gave, and the markup the page itself carries.

use std::fmt::{self, Display, Formatter};

use http::header::{self, HeaderMap};
use invent_rewrite::{NonceSource, Place};

use super::{Target, Verdict};
use crate::config::{self, Config};
use crate::metrics::PageOutcome;
use crate::outcome::{Identified, Rejection, Skip};
use crate::pipeline::{Answer, Peer, Record, Routed, Sites, Stage};

/// Everything the report is made from.
pub(super) struct Report<'a> {
    pub config: &'a Config,
    pub sites: &'a Sites,
    pub target: &'a Target,
    pub peer: Peer,
    pub record: &'a Record,
    pub verdict: Verdict,
}

impl Display for Report<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        writeln!(f, "explain: GET {}", self.target.url)?;
        self.site(f)?;
        self.request(f)?;
        self.response(f)?;
        self.identity(f)?;
        self.widget(f)?;
        self.error(f)?;
        self.headers_changed(f)?;
        self.warnings(f)?;
        self.result(f)
    }
}

impl Report<'_> {
    /// The site of the record, if one took the request.
    fn chosen(&self) -> Option<&config::Site> {
        self.record.site.and_then(|(index, _)| self.config.sites.get(index))
    }

    /// Which site took the request and why, where its upstream is, and the peer.
    fn site(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let host = self.target.authority.host();
        let Some(((index, routed), site)) = self.record.site.zip(self.chosen()) else {
            let status = self.record.response.0.as_u16();
            return writeln!(
                f,
                "site: none — no site lists the host {host} and there is no default_site (the proxy answers {status})"
            );
        };
        let hosts: Vec<String> = site.hosts.iter().map(ToString::to_string).collect();
        match routed {
            Routed::Only => writeln!(f, "site: the only site (no `sites:` in the config): it serves every host")?,
            Routed::Host => writeln!(f, "site: {host} (sites[{index}]: {})", hosts.join(", "))?,
            Routed::Default => writeln!(
                f,
                "site: sites[{index}] ({}), the default_site: no site lists the host {host}",
                hosts.join(", ")
            )?,
        }
        let url = &site.upstream.url;
        writeln!(f, "upstream: {}://{}{}", url.scheme, url.authority, self.target.path_and_query)?;
        let over = if self.peer.tls { "https (as through listen_tls)" } else { "http" };
        let trusted = if self.config.process.trusts(self.peer.addr.ip()) { "in" } else { "not in" };
        writeln!(f, "peer: {} over {over}, {trusted} trusted_proxies", self.peer.addr.ip())
    }

    /// The request headers sent, and whether the request rules let the page get the widget.
    fn request(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let names = |names: &[http::HeaderName]| names.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", ");
        let target = self.target;
        writeln!(
            f,
            "request headers: host (the URL's), {} (as a browser's navigation sends them)",
            names(&target.defaults)
        )?;
        if !target.given.is_empty() {
            writeln!(f, "request headers given: {} (values not shown)", names(&target.given))?;
        }
        if !target.cookie_names.is_empty() {
            writeln!(f, "request cookies: {} (values not shown)", target.cookie_names.join(", "))?;
        }
        match self.record.skip {
            _ if self.record.site.is_none() => writeln!(f, "request: not checked (no site took it)"),
            Some((skip, Stage::Request)) => {
                writeln!(f, "request: skip={skip}")?;
                self.hint(f, skip)
            }
            _ => writeln!(f, "request: qualifies"),
        }
    }

    /// The upstream's response head, and whether the response rules let it get the widget.
    fn response(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let Some((status, headers)) = &self.record.upstream else {
            return match &self.record.failure {
                Some(failure) => writeln!(
                    f,
                    "response: none — {}: {} (the proxy answers {})",
                    failure.kind.as_str(),
                    failure.message,
                    self.record.response.0.as_u16()
                ),
                None => writeln!(f, "response: none (the proxy answered itself)"),
            };
        };
        let media_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("(no Content-Type)");
        writeln!(f, "response: {} {media_type}", status.as_u16())?;
        match self.record.skip {
            Some((_, Stage::Request)) => writeln!(f, "response: not checked (the request rules said no)"),
            Some((skip, Stage::Response)) => {
                writeln!(f, "response: skip={skip}")?;
                self.hint(f, skip)
            }
            _ => writeln!(f, "response: qualifies"),
        }
    }

    /// What identification concluded, from which source, and what that means.
    fn identity(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let Some(site) = self.chosen() else { return writeln!(f, "identity: not checked (no site took the request)") };
        let Some(identity) = &site.identity else {
            return writeln!(f, "identity: none (no `identity` block: every visitor is anonymous)");
        };
        if self.record.upstream.is_none() || matches!(self.record.skip, Some((_, Stage::Request | Stage::Response))) {
            return writeln!(f, "identity: not checked (only a response that may get the widget is identified)");
        }
        let identified = self.record.identified;
        match identified.source() {
            Some(source) => writeln!(f, "identity: {identified} ({})", source.as_str())?,
            None => writeln!(f, "identity: none (no session in the request)")?,
        }
        let hint = match identified {
            Identified::None => {
                writeln!(f, "  the sources, in order: {}", sources(identity).join("; "))?;
                "sign in, then pass the session as the browser does: --cookie 'NAME=VALUE' (or --header)".to_owned()
            }
            Identified::Verified { .. } => return Ok(()),
            Identified::SignedOut { .. } => "the lookup endpoint says this session is not signed in".to_owned(),
            Identified::Rejected { reason, .. } => rejection_hint(reason),
            Identified::Failed { .. } => {
                "the lookup endpoint could not tell: the visitor is anonymous on this page".to_owned()
            }
            Identified::Skipped { .. } => {
                "the lookup endpoint was not asked: the visitor is anonymous on this page".to_owned()
            }
        };
        writeln!(f, "  {hint}")
    }

    /// What the rewriter put into the page, where, and the CSP nonce of its script.
    fn widget(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let inserted = self.record.inserted.as_ref();
        match (self.record.page, inserted) {
            (PageOutcome::Injected, Some(inserted)) => {
                writeln!(f, "widget: injected {}", place(inserted.place))?;
                writeln!(f, "  {}", inserted.markup)?;
            }
            (PageOutcome::Completed, Some(inserted)) => {
                writeln!(f, "widget: completed the page's own <invent-assistant>")?;
                writeln!(f, "  {}", inserted.own_element.as_deref().unwrap_or("<invent-assistant>"))?;
                if !inserted.markup.is_empty() {
                    writeln!(f, "  and inserted {}: {}", place(inserted.place), inserted.markup)?;
                }
            }
            _ => {
                writeln!(f, "widget: not injected")?;
                if let Some((skip, Stage::Page)) = self.record.skip {
                    writeln!(f, "  skip={skip}")?;
                    self.hint(f, skip)?;
                }
            }
        }
        match inserted.and_then(|inserted| inserted.nonce.as_ref()) {
            Some((nonce, NonceSource::Header)) => {
                writeln!(f, "csp nonce: {nonce} (from the Content-Security-Policy header)")
            }
            Some((nonce, NonceSource::Meta)) => {
                writeln!(f, "csp nonce: {nonce} (from the page's <meta http-equiv=\"Content-Security-Policy\">)")
            }
            None => writeln!(f, "csp nonce: none"),
        }
    }

    /// A failure after the upstream's head came (one before it is on the `response:` line).
    fn error(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match (&self.record.failure, &self.record.upstream) {
            (Some(failure), Some(_)) => writeln!(f, "error: {}: {}", failure.kind.as_str(), failure.message),
            _ => Ok(()),
        }
    }

    /// The response headers the proxy changed: `-` removed, `+` added, `~` changed.
    fn headers_changed(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let Some((_, upstream)) = &self.record.upstream else {
            return writeln!(f, "headers changed: none (no upstream response)");
        };
        if self.record.answer == Answer::OwnPage {
            let status = self.record.response.0.as_u16();
            return writeln!(f, "headers changed: all (the visitor gets the proxy's own {status} page instead)");
        }
        let changes = changed_headers(upstream, &self.record.response.1);
        if changes.is_empty() {
            return writeln!(f, "headers changed: none");
        }
        writeln!(f, "headers changed:")?;
        changes.iter().try_for_each(|change| writeln!(f, "  {change}"))
    }

    /// What `check` would warn about that bears on this page.
    fn warnings(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let proxy = self.record.site.and_then(|(index, _)| self.sites.iter().nth(index));
        if let Some(reason) = proxy.and_then(crate::pipeline::Proxy::identity_keys_missing) {
            writeln!(f, "warning: identity.jwt.jwks_url is not loaded ({reason}): every session token is rejected")?;
        }
        Ok(())
    }

    fn result(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let code = self.verdict.exit_code();
        match self.verdict {
            Verdict::Widget => writeln!(f, "result: the page gets the widget (exit {code})"),
            Verdict::Failed => {
                let kind = self.record.failure.as_ref().map_or("failed", |failure| failure.kind.as_str());
                writeln!(f, "result: the request failed: {kind} (exit {code})")
            }
            Verdict::NoWidget => match (self.record.skip, &self.record.failure) {
                (Some((skip, _)), _) => writeln!(f, "result: no widget: skip={skip} (exit {code})"),
                (None, Some(failure)) => writeln!(f, "result: no widget: {} (exit {code})", failure.kind.as_str()),
                (None, None) => writeln!(f, "result: no widget (exit {code})"),
            },
        }
    }

    /// What a skip means and what to do about it, indented under its line.
    fn hint(&self, f: &mut Formatter<'_>, skip: Skip) -> fmt::Result {
        let globs = |globs: &config::PathGlobs| match globs.patterns() {
            [] => "none".to_owned(),
            patterns => patterns.join(", "),
        };
        let hint = match (skip, self.chosen()) {
            (Skip::Path, Some(site)) => format!(
                "the path is not in inject.include_paths ({}) or is in inject.exclude_paths ({})",
                globs(&site.inject.include_paths),
                globs(&site.inject.exclude_paths)
            ),
            _ => skip_hint(skip).to_owned(),
        };
        writeln!(f, "  {hint}")
    }
}

/// Where the markup went, in words.
fn place(place: Place) -> &'static str {
    match place {
        Place::BeforeBodyEnd => "before </body>",
        Place::BeforeHeadEnd => "before </head>",
        Place::DocumentEnd => "at the end of the page (it never closes its <body>)",
    }
}

/// What each skip reason means, and what to do about it.
fn skip_hint(skip: Skip) -> &'static str {
    match skip {
        Skip::Method => "only GET requests get the widget",
        Skip::Path => "the path is not in inject.include_paths or is in inject.exclude_paths",
        Skip::NotNavigation => {
            "not a top-level navigation: Sec-Fetch-Dest is not `document`, or X-Requested-With: XMLHttpRequest \
             or HX-Request is set (a fetch, an XHR, an iframe, htmx); a browser's address bar sends none of these"
        }
        Skip::Status => "only a 200 gets the widget: redirects, errors and 304s pass through as they are",
        Skip::NotHtml => "the Content-Type is not text/html or application/xhtml+xml",
        Skip::Encoding => "the Content-Encoding is stacked or unknown (gzip, deflate, br and zstd are decoded)",
        Skip::Charset(_) => "the charset is not ASCII-compatible (UTF-16, ISO-2022-JP) or not a known one",
        Skip::NoTransform => "Cache-Control: no-transform forbids any change to the page",
        Skip::Attachment => "Content-Disposition: attachment: a download, not a page to show",
        Skip::Fragment => {
            "no doctype, <html> or <body> at the start of the body: a fragment (a snippet a script fetches), \
             which never gets the widget"
        }
        Skip::RewriteFailed => {
            "the rewriter gave up (a tag or attribute larger than limits.rewriter_max_memory): the page went out unchanged"
        }
    }
}

/// What a rejection means, and where to look.
fn rejection_hint(reason: Rejection) -> String {
    let hint = match reason {
        Rejection::Expired => "the token has expired: sign in again (identity.jwt.leeway allows for clock skew)",
        Rejection::NotYetValid => "the token's nbf is in the future: check the clocks (identity.jwt.leeway)",
        Rejection::BadSignature => {
            "the signature does not verify with the configured key (identity.jwt.secret, public_key or jwks_url)"
        }
        Rejection::AlgorithmNotAllowed => "the token's alg is not in identity.jwt.algorithms",
        Rejection::UnknownKey => "the token's kid names no key of the configured key set",
        Rejection::WrongIssuer => "the token's iss is not in identity.jwt.issuer",
        Rejection::WrongAudience => "the token's aud is not in identity.jwt.audience",
        Rejection::MissingClaim => "the token lacks a claim of identity.jwt.required_claims",
        Rejection::NoUserId | Rejection::InvalidUserId => {
            "the user id claim (claims.user_id) is missing or not a string or number"
        }
        Rejection::Malformed => "the session is not a JWT (three base64url parts): is it the right cookie or header?",
        _ => "a session was there and did not identify the visitor",
    };
    format!("{hint} — docs/troubleshooting.md lists every reason")
}

/// The identity sources of `identity`, in the order they are asked, with what they read.
fn sources(identity: &config::Identity) -> Vec<String> {
    let mut sources = Vec::new();
    if let Some(gateway) = &identity.gateway {
        sources.push(format!("gateway (header {}, from a trusted peer)", gateway.user_id));
    }
    if let Some(jwt) = &identity.jwt {
        if let Some(name) = &jwt.source.header {
            sources.push(format!("jwt_header (header {name})"));
        }
        if let Some(name) = &jwt.source.cookie {
            sources.push(format!("jwt_cookie (cookie {name})"));
            if jwt.source.cookie_chunks {
                sources.push(format!("jwt_chunks (cookies {name}.0, {name}.1, …)"));
            }
        }
    }
    if let Some(lookup) = &identity.lookup {
        sources.push(format!("lookup (cookies {})", lookup.cookies.join(", ")));
    }
    sources
}

/// The header changes from `upstream` to `client`, a line each, in the upstream's order
/// then the added ones'. A `Set-Cookie` value is never shown.
fn changed_headers(upstream: &HeaderMap, client: &HeaderMap) -> Vec<String> {
    let values = |headers: &HeaderMap, name: &header::HeaderName| -> Vec<String> {
        let shown = |value: &http::HeaderValue| match name == header::SET_COOKIE {
            true => "(value not shown)".to_owned(),
            false => String::from_utf8_lossy(value.as_bytes()).into_owned(),
        };
        headers.get_all(name).iter().map(shown).collect()
    };
    let mut changes = Vec::new();
    for name in upstream.keys() {
        let (before, after) = (values(upstream, name), values(client, name));
        match () {
            () if before == after => {}
            () if after.is_empty() => changes.push(format!("- {name}: {}", before.join(", "))),
            () => changes.push(format!("~ {name}: {} → {}", before.join(", "), after.join(", "))),
        }
    }
    for name in client.keys().filter(|name| !upstream.contains_key(*name)) {
        changes.push(format!("+ {name}: {}", values(client, name).join(", ")));
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, http::HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn header_changes_are_removed_changed_and_added_and_cookies_stay_hidden() {
        let upstream = map(&[
            ("content-type", "text/html"),
            ("content-length", "120"),
            ("etag", "\"v1\""),
            ("set-cookie", "session=secret-value"),
        ]);
        let client = map(&[
            ("content-type", "text/html"),
            ("etag", "W/\"v1\""),
            ("set-cookie", "session=secret-value"),
            ("vary", "Cookie"),
        ]);
        assert_eq!(
            changed_headers(&upstream, &client),
            ["- content-length: 120", "~ etag: \"v1\" → W/\"v1\"", "+ vary: Cookie"]
        );
        let mut rotated = client.clone();
        rotated.insert("set-cookie", http::HeaderValue::from_static("session=other-secret"));
        let changes = changed_headers(&upstream, &rotated).join("\n");
        assert!(!changes.contains("secret"), "{changes}");
    }
}
