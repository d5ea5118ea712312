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
            warnings.extend(framework_secret_warnings(identity));
            warnings.extend(shared_cookie_warning(identity));
            warnings.extend(dotted_devise_path_warning(identity));
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

/// A framework's secret written in the file: whoever reads the file can forge the app's
/// sessions.
fn framework_secret_warnings(identity: &Identity) -> Vec<String> {
    let literal = |key: &str| {
        format!(
            "{key} is written in the file, and it can forge the app's sessions: read it from the environment with \
             ${{NAME}} (set from a secret store or a mounted secret file)"
        )
    };
    let mut warnings = Vec::new();
    if identity.rails.as_ref().is_some_and(|rails| !rails.secret_key_base.from_env()) {
        warnings.push(literal("identity.rails.secret_key_base"));
    }
    if identity.flask.as_ref().is_some_and(|flask| !flask.secret_key.from_env()) {
        warnings.push(literal("identity.flask.secret_key"));
    }
    if identity.cookie_session.as_ref().is_some_and(|cs| cs.keys.iter().any(|key| !key.from_env())) {
        warnings.push(literal("identity.cookie_session.keys"));
    }
    let assistant = identity.secret_key.expose();
    let same = [
        (
            "identity.rails.secret_key_base",
            identity.rails.as_ref().is_some_and(|r| r.secret_key_base.expose() == assistant),
        ),
        ("identity.flask.secret_key", identity.flask.as_ref().is_some_and(|f| f.secret_key.expose() == assistant)),
        (
            "identity.cookie_session.keys",
            identity.cookie_session.as_ref().is_some_and(|cs| cs.keys.iter().any(|k| k.expose() == assistant)),
        ),
    ];
    for (key, _) in same.into_iter().filter(|(_, same)| *same) {
        warnings.push(format!(
            "identity.secret_key is {key}: identity.secret_key is the assistant's secret key (from Invent, \
             for user-hash), not the app's — the hashes will not match the assistant's"
        ));
    }
    warnings
}

/// Two sources reading one cookie (Flask and cookie-session both default to `session`):
/// the first asked rejects the other's sessions, which then never reach it. Valid — a
/// config may list both while the site moves from one app to the other — but only one of
/// them can identify anyone.
fn shared_cookie_warning(identity: &Identity) -> Option<String> {
    let uses = [
        ("identity.jwt.cookie", identity.jwt.as_ref().and_then(|jwt| jwt.source.cookie.as_deref())),
        ("identity.rails.cookie", identity.rails.as_ref().map(|rails| rails.cookie.as_str())),
        ("identity.flask.cookie", identity.flask.as_ref().map(|flask| flask.cookie.as_str())),
        ("identity.cookie_session.cookie", identity.cookie_session.as_ref().map(|cs| cs.cookie.as_str())),
    ];
    let uses: Vec<(&str, &str)> = uses.into_iter().filter_map(|(key, cookie)| Some((key, cookie?))).collect();
    uses.iter().enumerate().find_map(|(i, (later, name))| {
        let (first, _) = uses[..i].iter().find(|(_, other)| other == name)?;
        Some(format!(
            "{first} and {later} are both `{name}`: {first} is asked first and rejects the other's sessions, so \
             {later} identifies no one; set each `cookie` to the name its app really uses"
        ))
    })
}

/// Devise's `warden.user.<scope>.key` written as a dotted path: the key itself holds the
/// dots, so the path finds nothing and every signed-in visitor reads as `signed_out`.
fn dotted_devise_path_warning(identity: &Identity) -> Option<String> {
    let path = &identity.rails.as_ref()?.claims.user_id.0;
    (path.len() > 1 && path[0] == "warden").then(|| {
        format!(
            "identity.rails.claims.user_id is the dotted path `{}`, but Devise's key holds the dots: write it as a \
             list, [warden.user.user.key, 0, 0]",
            path.join(".")
        )
    })
}

/// The framework sessions read in place, each with its claims.
fn write_frameworks_summary(s: &mut String, identity: &Identity) {
    if let Some(rails) = &identity.rails {
        let _ = writeln!(
            s,
            "  rails:          cookie `{}`, secret_key_base set, cipher {}, key derivation {}",
            rails.cookie, rails.cipher, rails.key_derivation
        );
        write_claims(s, &rails.claims);
    }
    if let Some(flask) = &identity.flask {
        let _ = writeln!(
            s,
            "  flask:          cookie `{}`, secret key set, max age {}",
            flask.cookie,
            match flask.max_age.as_secs() {
                // humantime writes 31 days as "1month 13h 26m 24s".
                secs if secs > 0 && secs % 86_400 == 0 => format!("{}d", secs / 86_400),
                _ => humantime::format_duration(flask.max_age).to_string(),
            }
        );
        write_claims(s, &flask.claims);
    }
    if let Some(cs) = &identity.cookie_session {
        let _ = writeln!(
            s,
            "  cookie_session: cookies `{0}` and `{0}.sig`, {1} key{2} set",
            cs.cookie,
            cs.keys.len(),
            if cs.keys.len() == 1 { "" } else { "s" }
        );
        write_claims(s, &cs.claims);
    }
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
    write_frameworks_summary(s, identity);
    if let Some(lookup) = &identity.lookup {
        let earlier = [identity.jwt.is_some(), identity.gateway.is_some(), identity.rails.is_some()]
            .into_iter()
            .chain([identity.flask.is_some(), identity.cookie_session.is_some()]);
        let then = if earlier.into_iter().any(|set| set) { "without a session, " } else { "" };
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
