//! What `invent-proxy check` prints: the config in a few lines, secrets shown only as
//! "set", and warnings about settings that are valid but probably not meant.

use std::fmt::Write as _;

use super::{ClaimPath, Claims, Identity, Jwt, KeySource, Process, Site};

impl Process {
    /// A human-readable account of the process-wide settings for `invent-proxy check`.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "listen:           {}", self.listen);
        if let Some(tls) = &self.listen_tls {
            let _ = writeln!(s, "listen (TLS):     {} (certificate {})", tls.address, tls.cert_file.display());
        }
        if let Some(admin) = &self.admin {
            let _ = writeln!(s, "admin:            {} (/healthz, /readyz, /metrics)", admin.listen);
        }
        if !self.trusted_proxies.is_empty() {
            let nets: Vec<String> = self.trusted_proxies.iter().map(ToString::to_string).collect();
            let _ = writeln!(s, "trusted proxies:  {} (their X-Forwarded-Proto/-Host are kept)", nets.join(", "));
        }
        if self.underscores_in_headers {
            s.push_str("underscores:      request headers named with `_` are passed to the upstream\n");
        }
        let _ = write!(s, "shutdown grace:   {}", humantime::format_duration(self.shutdown_grace_period));
        s
    }
}

impl Site {
    /// A human-readable account of a site for `invent-proxy check`. Secrets show as
    /// "set", never their value.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "upstream:         {}://{} (host header: {}, connect timeout: {}, response timeout: {})",
            self.upstream.url.scheme,
            self.upstream.url.authority,
            self.upstream.host_header,
            humantime::format_duration(self.upstream.connect_timeout),
            humantime::format_duration(self.upstream.response_timeout),
        );
        if let Some(ca) = &self.upstream.tls.ca_file {
            let _ = writeln!(s, "  trusting:       the CAs in {}", ca.display());
        }
        if let Some(name) = &self.upstream.tls.server_name {
            let _ = writeln!(s, "  server name:    {}", name.to_str());
        }
        let _ = writeln!(s, "assistant:        {} (script {})", self.assistant.id, self.assistant.script_url);
        let position = match self.inject.position {
            invent_rewrite::Position::BodyEnd => "body_end",
            invent_rewrite::Position::HeadEnd => "head_end",
        };
        let _ = writeln!(s, "inject:           {position} on {:?}", self.inject.include_paths.patterns());
        if !self.inject.exclude_paths.patterns().is_empty() {
            let _ = writeln!(s, "  except:         {:?}", self.inject.exclude_paths.patterns());
        }
        if !self.inject.csp_allow.is_empty() {
            let _ = writeln!(s, "  CSP allows:     {}", self.inject.csp_allow.join(" "));
        }
        match &self.identity {
            None => s.push_str("identity:         off (every visitor is anonymous)"),
            Some(identity) => write_identity_summary(&mut s, identity),
        }
        s.truncate(s.trim_end().len());
        s
    }

    /// Settings that are valid but probably not what the operator meant.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.assistant.id == "ast_123" {
            warnings.push("assistant.id is the example `ast_123`: set your assistant's id".to_owned());
        }
        if self.assistant.script_url.starts_with("http://") {
            warnings.push("assistant.script_url is http://: browsers block it on https:// pages".to_owned());
        }
        if let Some(identity) = &self.identity {
            if !identity.secret_key.from_env() {
                warnings.push(inline_secret_warning("identity.secret_key"));
            }
            if identity.jwt.as_ref().is_some_and(|jwt| jwt.inline_secret) {
                warnings.push(inline_secret_warning("identity.jwt.secret"));
            }
            if let Some(KeySource::Url(jwks)) = identity.jwt.as_ref().map(|jwt| &jwt.keys)
                && jwks.url.scheme() == Some(&http::uri::Scheme::HTTP)
                && !is_loopback(&jwks.url)
            {
                warnings.push(
                    "identity.jwt.jwks_url is http:// to another host: anyone on the path can swap the keys".to_owned(),
                );
            }
        }
        warnings
    }
}

fn is_loopback(url: &http::Uri) -> bool {
    let host = url.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn inline_secret_warning(key: &str) -> String {
    format!("{key} is written in the file: read it from the environment with ${{NAME}}")
}

fn write_identity_summary(s: &mut String, identity: &Identity) {
    s.push_str("identity:         secret key set\n");
    if let Some(jwt) = &identity.jwt {
        write_jwt_summary(s, jwt);
    }
    if let Some(lookup) = &identity.lookup {
        let then = if identity.jwt.is_some() { "without a token, " } else { "" };
        let _ = writeln!(
            s,
            "  lookup:         {then}GET {} with cookies [{}] (timeout {}, answers kept {}, at most {})",
            lookup.target.uri,
            lookup.cookies.join(", "),
            humantime::format_duration(lookup.timeout),
            humantime::format_duration(lookup.cache_ttl),
            lookup.max_entries
        );
        write_claims(s, &lookup.claims);
    }
}

fn write_jwt_summary(s: &mut String, jwt: &Jwt) {
    let algorithms: Vec<String> = jwt.algorithms.iter().map(|a| format!("{a:?}")).collect();
    let mut places = Vec::new();
    if let Some(header) = &jwt.source.header {
        places.push(format!("header `{header}: Bearer …`"));
    }
    if let Some(cookie) = &jwt.source.cookie {
        places.push(format!("cookie `{cookie}`"));
    }
    if jwt.source.cookie_chunks {
        places.push("its chunks `.0`, `.1`, …".to_owned());
    }
    let _ = writeln!(s, "  session JWT:    from {}", places.join(", then "));
    let _ = writeln!(s, "  algorithms:     {} with {}", algorithms.join(", "), jwt.keys.describe());
    let any = |list: &[String]| if list.is_empty() { "(any)".to_owned() } else { list.join(" or ") };
    let required: Vec<String> = jwt.required_claims.iter().map(ToString::to_string).collect();
    let _ = writeln!(
        s,
        "  checks:         issuer {}, audience {}, required claims [{}], leeway {}",
        any(&jwt.issuer),
        any(&jwt.audience),
        required.join(", "),
        humantime::format_duration(jwt.leeway)
    );
    write_claims(s, &jwt.claims);
}

fn write_claims(s: &mut String, claims: &Claims) {
    let optional = |p: &Option<ClaimPath>| p.as_ref().map_or_else(|| "-".to_owned(), ToString::to_string);
    let _ = writeln!(
        s,
        "  claims:         user_id={} user_name={} user_avatar={}",
        claims.user_id,
        optional(&claims.user_name),
        optional(&claims.user_avatar)
    );
}
