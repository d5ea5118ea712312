//! The `identity` block, typed: which gateway may assert the visitor in headers
//! (`gateway`), where a session token is and how it is verified (`jwt`), a framework's own
//! session cookie (`rails`, `flask`, `cookie_session`, in [`super::frameworks`]), and how
//! a session that is none of these is asked of the site (`lookup`).

use std::path::Path;
use std::time::Duration;

use super::frameworks::{self, CookieSession, Flask, Rails};
use super::raw::{self, ClaimPath, LookupUrl, RawClaims};
use super::{BuildError, KeySource, Secret, Upstream, keys, value};

/// How a visitor is recognised and how their `user-hash` is keyed. At least one source is
/// set; they are asked in order — `gateway`, `jwt`, `rails`, `flask`, `cookie_session`,
/// `lookup` — and the first that finds a session decides.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The assistant's secret key: the HMAC key of `user-hash`. Never leaves the process.
    pub secret_key: Secret,
    pub gateway: Option<Gateway>,
    pub jwt: Option<Jwt>,
    pub rails: Option<Rails>,
    pub flask: Option<Flask>,
    pub cookie_session: Option<CookieSession>,
    pub lookup: Option<Lookup>,
}

/// `identity.gateway`: an SSO gateway in front (oauth2-proxy, Authelia, …) asserts the
/// visitor in plain request headers.
#[derive(Debug, Clone)]
pub struct Gateway {
    /// The peers allowed to assert identity; from any other the headers are removed.
    pub from: Vec<ipnet::IpNet>,
    pub user_id: http::HeaderName,
    pub user_name: Option<http::HeaderName>,
    pub user_avatar: Option<http::HeaderName>,
}

/// Where the session JWT is and how it is verified.
#[derive(Debug, Clone)]
pub struct Jwt {
    /// Where the token is: the cookie, its chunks, and/or a `Bearer` header.
    pub source: TokenSource,
    /// Accepted `alg` values.
    pub algorithms: Vec<jsonwebtoken::Algorithm>,
    pub keys: KeySource,
    /// Accepted `iss` values (any, if empty).
    pub issuer: Vec<String>,
    /// Accepted `aud` values (any, if empty).
    pub audience: Vec<String>,
    /// Claims a token must carry (default `exp`).
    pub required_claims: Vec<ClaimPath>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
    /// `secret` was written in the file rather than read from the environment.
    pub inline_secret: bool,
    pub claims: Claims,
    /// JOSE header parameters that must have exactly these values (`signer`, for AWS ALB).
    pub header_claims: Vec<(String, String)>,
}

/// Where a request's session token is looked for, in this order: the header, the cookie,
/// the cookie's chunks. At least one of `header` and `cookie` is set.
#[derive(Debug, Clone)]
pub struct TokenSource {
    /// `Authorization` with the `Bearer` scheme, or another header holding the token
    /// itself (a gateway's signed assertion, `Cf-Access-Jwt-Assertion`, …).
    pub header: Option<http::HeaderName>,
    pub cookie: Option<String>,
    /// The cookie may be split as `name.0`, `name.1`, … (NextAuth/Auth.js).
    pub cookie_chunks: bool,
}

/// Where the identity lives in a token's payload or a lookup's answer.
#[derive(Debug, Clone)]
pub struct Claims {
    pub user_id: ClaimPath,
    pub user_name: Option<ClaimPath>,
    pub user_avatar: Option<ClaimPath>,
}

/// `identity.lookup`: the site's own "who am I" endpoint, asked with the session cookies.
#[derive(Debug, Clone)]
pub struct Lookup {
    pub target: LookupTarget,
    /// The only cookies forwarded to the endpoint; a request with none of them is not
    /// looked up.
    pub cookies: Vec<String>,
    /// The most a page waits for an answer.
    pub timeout: Duration,
    /// How long an answer is reused for the same cookie values (0: not reused).
    pub cache_ttl: Duration,
    pub max_entries: u64,
    /// How the answer is read: JSON by claim paths, or an HTML page by CSS selectors.
    pub answer: LookupAnswer,
    /// How long a session whose lookup failed is not asked about again.
    pub error_ttl: Duration,
    /// The most lookups running at once; a page that would exceed it is anonymous at once.
    pub max_concurrent: usize,
}

/// How a lookup's answer is read.
#[derive(Debug, Clone)]
pub enum LookupAnswer {
    /// A JSON answer, by claim paths (`claims`).
    Json(Claims),
    /// An HTML page the app already renders, by CSS selectors (`select`).
    Html(Selection),
}

/// Where the identity is in an HTML page.
#[derive(Debug, Clone)]
pub struct Selection {
    pub user_id: Pick,
    pub user_name: Option<Pick>,
    pub user_avatar: Option<Pick>,
}

/// The first element a selector matches, and its attribute (or, without one, its text).
#[derive(Debug, Clone)]
pub struct Pick {
    pub css: String,
    pub attribute: Option<String>,
}

/// Where a lookup goes.
#[derive(Debug, Clone)]
pub struct LookupTarget {
    pub uri: http::Uri,
    /// The URL is on the upstream: it is asked through the upstream's client (its TLS
    /// settings), with the `Host` a page request would carry.
    pub on_upstream: bool,
}

/// Builds the `identity` block; `trusted_proxies` is the gateway's default `from`.
pub(super) fn build(
    raw: raw::RawIdentity,
    upstream: &Upstream,
    base_dir: &Path,
    trusted_proxies: &[ipnet::IpNet],
) -> Result<Identity, BuildError> {
    let frameworks = [raw.rails.is_some(), raw.flask.is_some(), raw.cookie_session.is_some()];
    if raw.gateway.is_none() && raw.jwt.is_none() && raw.lookup.is_none() && !frameworks.contains(&true) {
        let message = "say how visitors are recognised: `gateway` (headers an SSO gateway sets), `jwt` (a session \
                       token), `rails`, `flask` or `cookie_session` (the framework's session cookie), `lookup` (a \
                       page or endpoint of the app), or several";
        return Err(BuildError::new("identity", None, message));
    }
    let gateway = raw.gateway.map(|gateway| build_gateway(gateway, trusted_proxies)).transpose()?;
    let jwt = raw.jwt.map(|jwt| build_jwt(jwt, base_dir)).transpose()?;
    let rails = raw.rails.map(frameworks::build_rails).transpose()?;
    let flask = raw.flask.map(frameworks::build_flask).transpose()?;
    let cookie_session = raw.cookie_session.map(frameworks::build_cookie_session).transpose()?;
    let lookup = raw.lookup.map(|lookup| build_lookup(lookup, upstream)).transpose()?;
    Ok(Identity { secret_key: raw.secret_key, gateway, jwt, rails, flask, cookie_session, lookup })
}

fn build_gateway(
    raw: serde_saphyr::Spanned<raw::RawGateway>,
    trusted_proxies: &[ipnet::IpNet],
) -> Result<Gateway, BuildError> {
    let from = match raw.value.from {
        Some(from) => from.into_iter().map(|net| net.0.0).collect(),
        None => trusted_proxies.to_vec(),
    };
    if from.is_empty() {
        let message = "no peer may assert identity: list the gateway's addresses in `from` (or in `trusted_proxies`)";
        return Err(BuildError::new("identity.gateway.from", Some(raw.referenced), message));
    }
    let headers = raw.value.headers;
    Ok(Gateway {
        from,
        user_id: headers.user_id.0.0,
        user_name: headers.user_name.map(|h| h.0.0),
        user_avatar: headers.user_avatar.map(|h| h.0.0),
    })
}

fn build_jwt(raw: serde_saphyr::Spanned<raw::RawJwt>, base_dir: &Path) -> Result<Jwt, BuildError> {
    let jwt_location = raw.referenced;
    let jwt = raw.value;
    let key = keys::load(&jwt, jwt_location, base_dir)?;
    let source = TokenSource {
        header: jwt.header.map(|v| v.0.0),
        cookie: jwt.cookie.map(|v| v.0.0),
        cookie_chunks: jwt.cookie_chunks.unwrap_or(false),
    };
    if source.header.is_none() && source.cookie.is_none() {
        let message = "say where the session token is: `cookie` (and `cookie_chunks`) and/or `header`";
        return Err(BuildError::new("identity.jwt", Some(jwt_location), message));
    }
    if source.cookie_chunks && source.cookie.is_none() {
        return Err(BuildError::new(
            "identity.jwt.cookie_chunks",
            Some(jwt_location),
            "needs `cookie`, the chunks' base name",
        ));
    }
    let texts = |list: Option<raw::OneOrMany<value::Parsed<value::NonEmpty>>>| {
        list.map(raw::OneOrMany::into_vec).unwrap_or_default().into_iter().map(|v| v.0.0).collect()
    };
    let required_claims = jwt.required_claims.unwrap_or_else(|| vec![ClaimPath(vec!["exp".to_owned()])]);
    Ok(Jwt {
        source,
        algorithms: key.algorithms,
        keys: key.key,
        issuer: texts(jwt.issuer),
        audience: texts(jwt.audience),
        required_claims,
        leeway: jwt.leeway.map_or(Duration::from_secs(30), |v| v.0.0),
        inline_secret: jwt.secret.as_ref().is_some_and(|s| !s.value.from_env()),
        claims: claims(jwt.claims, ClaimPath(vec!["sub".to_owned()])),
        header_claims: jwt.header_claims.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0.0)).collect(),
    })
}

fn build_lookup(raw: serde_saphyr::Spanned<raw::RawLookup>, upstream: &Upstream) -> Result<Lookup, BuildError> {
    let lookup = raw.value;
    let target = match lookup.url.0 {
        LookupUrl::Path(path) => {
            let uri = http::Uri::builder()
                .scheme(upstream.url.scheme.clone())
                .authority(upstream.url.authority.clone())
                .path_and_query(path)
                .build()
                .map_err(|e| BuildError::new("identity.lookup.url", Some(raw.referenced), e.to_string()))?;
            LookupTarget { uri, on_upstream: true }
        }
        LookupUrl::Absolute(url) => {
            let on_upstream = url.0.scheme() == Some(&upstream.url.scheme)
                && url.0.authority().is_some_and(|a| a.as_str().eq_ignore_ascii_case(upstream.url.authority.as_str()));
            LookupTarget { uri: url.0, on_upstream }
        }
    };
    if lookup.cookies.value.is_empty() {
        let message = "lists no cookie; name the session cookies the endpoint needs, e.g. [PHPSESSID]";
        return Err(BuildError::new("identity.lookup.cookies", Some(lookup.cookies.referenced), message));
    }
    let max_entries = match lookup.max_entries {
        None => 10_000,
        Some(max) if max.value == 0 => {
            let message = "must be at least 1 (use `cache_ttl: 0s` to ask on every page)";
            return Err(BuildError::new("identity.lookup.max_entries", Some(max.referenced), message));
        }
        Some(max) => max.value,
    };
    let cache_ttl = lookup.cache_ttl.map_or(Duration::from_secs(60), |v| v.0.0);
    if cache_ttl > Duration::from_secs(86_400) {
        let message = "must be at most 1 day: a visitor who signs out stays recognised this long";
        return Err(BuildError::new("identity.lookup.cache_ttl", Some(raw.referenced), message));
    }
    let answer = match (lookup.claims, lookup.select) {
        (Some(_), Some(_)) => {
            let message = "set one of `claims` (a JSON answer) and `select` (an HTML page), not both";
            return Err(BuildError::new("identity.lookup.select", Some(raw.referenced), message));
        }
        (None, Some(select)) => LookupAnswer::Html(Selection {
            user_id: pick(select.user_id),
            user_name: select.user_name.map(pick),
            user_avatar: select.user_avatar.map(pick),
        }),
        (claims_given, None) => LookupAnswer::Json(claims(claims_given, ClaimPath(vec!["id".to_owned()]))),
    };
    let max_concurrent = match lookup.max_concurrent {
        None => 64,
        Some(max) if max.value == 0 => {
            let message = "must be at least 1";
            return Err(BuildError::new("identity.lookup.max_concurrent", Some(max.referenced), message));
        }
        Some(max) => usize::try_from(max.value).unwrap_or(usize::MAX),
    };
    Ok(Lookup {
        target,
        cookies: lookup.cookies.value.into_iter().map(|c| c.0.0).collect(),
        timeout: lookup.timeout.map_or(Duration::from_secs(1), |v| v.0.0),
        cache_ttl,
        max_entries,
        answer,
        error_ttl: lookup.error_ttl.map_or(Duration::from_secs(5), |v| v.0.0),
        max_concurrent,
    })
}

fn pick(raw: raw::RawPick) -> Pick {
    Pick { css: raw.css.0.0, attribute: raw.attribute.map(|a| a.0.0) }
}

/// The claim paths, with `default_user_id` when `user_id` is not given.
pub(super) fn claims(raw: Option<RawClaims>, default_user_id: ClaimPath) -> Claims {
    match raw {
        None => Claims { user_id: default_user_id, user_name: None, user_avatar: None },
        Some(c) => {
            Claims { user_id: c.user_id.unwrap_or(default_user_id), user_name: c.user_name, user_avatar: c.user_avatar }
        }
    }
}
