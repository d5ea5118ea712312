//! What `invent-proxy check` prints: the config in a few lines, secrets shown only as
//! "set", and warnings about settings that are valid but probably not meant.

use std::fmt::Write as _;

use super::{ClaimPath, Claims, Identity, Jwt, KeySource, LookupAnswer, Pick, Process, Selection, Site};

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
            let key_server = match identity.jwt.as_ref().map(|jwt| &jwt.keys) {
                Some(KeySource::Url(jwks)) => Some(("jwks_url", &jwks.url)),
                Some(KeySource::PerKid(key_url)) => Some(("key_url", &key_url.example)),
                _ => None,
            };
            if let Some((key, url)) = key_server
                && url.scheme() == Some(&http::uri::Scheme::HTTP)
                && !is_loopback(url)
            {
                warnings.push(format!(
                    "identity.jwt.{key} is http:// to another host: anyone on the path can swap the keys"
                ));
            }
            if let Some(jwt) = &identity.jwt
                && jwt.source.header.as_ref().is_some_and(|h| h != http::header::AUTHORIZATION)
                && jwt.audience.is_empty()
                && jwt.header_claims.is_empty()
            {
                warnings.push(
                    "identity.jwt.header is a gateway's assertion without identity.jwt.audience (or \
                     header_claims, such as an ALB's signer): a token the gateway issued for another \
                     application would be accepted"
                        .to_owned(),
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
    if let Some(gateway) = &identity.gateway {
        let from: Vec<String> = gateway.from.iter().map(ToString::to_string).collect();
        let optional = |h: &Option<http::HeaderName>| h.as_ref().map_or_else(|| "-".to_owned(), ToString::to_string);
        let _ = writeln!(
            s,
            "  gateway:        from {} (headers user_id={} user_name={} user_avatar={}; removed from other peers)",
            from.join(", "),
            gateway.user_id,
            optional(&gateway.user_name),
            optional(&gateway.user_avatar),
        );
    }
    if let Some(jwt) = &identity.jwt {
        write_jwt_summary(s, jwt);
    }
    if let Some(lookup) = &identity.lookup {
        let then = if identity.jwt.is_some() || identity.gateway.is_some() { "without a token, " } else { "" };
        let _ = writeln!(
            s,
            "  lookup:         {then}GET {} with cookies [{}] (timeout {}, answers kept {}, at most {}; after a \
             failure not again for {}; at most {} at once)",
            lookup.target.uri,
            lookup.cookies.join(", "),
            humantime::format_duration(lookup.timeout),
            humantime::format_duration(lookup.cache_ttl),
            lookup.max_entries,
            humantime::format_duration(lookup.error_ttl),
            lookup.max_concurrent,
        );
        match &lookup.answer {
            LookupAnswer::Json(claims) => write_claims(s, claims),
            LookupAnswer::Html(selection) => write_selection(s, selection),
        }
    }
}

fn write_selection(s: &mut String, selection: &Selection) {
    let describe = |pick: &Pick| match &pick.attribute {
        Some(attribute) => format!("{} [{attribute}]", pick.css),
        None => format!("{} (text)", pick.css),
    };
    let optional = |pick: &Option<Pick>| pick.as_ref().map_or_else(|| "-".to_owned(), describe);
    let _ = writeln!(
        s,
        "  select (HTML):  user_id={} user_name={} user_avatar={}",
        describe(&selection.user_id),
        optional(&selection.user_name),
        optional(&selection.user_avatar)
    );
}

fn write_jwt_summary(s: &mut String, jwt: &Jwt) {
    let algorithms: Vec<String> = jwt.algorithms.iter().map(|a| format!("{a:?}")).collect();
    let mut places = Vec::new();
    if let Some(header) = &jwt.source.header {
        match header == http::header::AUTHORIZATION {
            true => places.push(format!("header `{header}: Bearer …`")),
            false => places.push(format!("header `{header}`")),
        }
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
    if !jwt.header_claims.is_empty() {
        let pairs: Vec<String> = jwt.header_claims.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(s, "  header claims:  {}", pairs.join(" "));
    }
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
