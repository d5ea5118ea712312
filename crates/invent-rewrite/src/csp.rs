//! Content-Security-Policy (CSP Level 3): the nonce the injected script must carry, and
//! the origins an operator allows for the widget.
//!
//! Only enforced policies are read or changed; `Content-Security-Policy-Report-Only` is
//! never touched, and `'unsafe-inline'` is never added.

use http::header::{CONTENT_SECURITY_POLICY, HeaderMap, HeaderValue};

/// Which directive governs a `<script src>` element, most specific first.
const SCRIPT_CHAIN: &[&str] = &["script-src-elem", "script-src", "default-src"];

/// The chains `inject.csp_allow` widens: what the widget loads (its script), and what such
/// a widget does once running (calls its API, opens frames, shows images, styles, fonts).
const ALLOW_CHAINS: &[&[&str]] = &[
    SCRIPT_CHAIN,
    &["connect-src", "default-src"],
    &["frame-src", "child-src", "default-src"],
    &["img-src", "default-src"],
    &["style-src-elem", "style-src", "default-src"],
    &["font-src", "default-src"],
];

/// One directive of a policy: its name (lowercased) and its source expressions.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Directive {
    name: String,
    sources: Vec<String>,
}

fn parse_policy(policy: &str) -> Vec<Directive> {
    let mut directives: Vec<Directive> = Vec::new();
    for part in policy.split(';') {
        let mut tokens = part.split_ascii_whitespace();
        let Some(name) = tokens.next() else { continue };
        let name = name.to_ascii_lowercase();
        // A repeated directive is ignored (CSP3 §2.2.1): the first one counts.
        if !directives.iter().any(|d| d.name == name) {
            directives.push(Directive { name, sources: tokens.map(str::to_owned).collect() });
        }
    }
    directives
}

fn render_policy(directives: &[Directive]) -> String {
    let parts: Vec<String> = directives
        .iter()
        .map(|d| if d.sources.is_empty() { d.name.clone() } else { format!("{} {}", d.name, d.sources.join(" ")) })
        .collect();
    parts.join("; ")
}

/// The position of the directive that governs `chain` in `directives`, if any does.
fn governing(directives: &[Directive], chain: &[&str]) -> Option<usize> {
    chain.iter().find_map(|name| directives.iter().position(|d| d.name == *name))
}

/// The nonce a script element needs under one policy (`'nonce-…'` in the directive that
/// governs scripts), if that directive asks for one.
pub fn policy_script_nonce(policy: &str) -> Option<String> {
    let directives = parse_policy(policy);
    let directive = &directives[governing(&directives, SCRIPT_CHAIN)?];
    directive.sources.iter().find_map(|source| {
        let value = source.strip_prefix("'nonce-")?.strip_suffix('\'')?;
        let valid = !value.is_empty() && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=-_".contains(&b));
        valid.then(|| value.to_owned())
    })
}

/// The script nonce of the response's enforced policies (header values may hold several
/// policies, separated by commas).
pub fn script_nonce(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(CONTENT_SECURITY_POLICY)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(policy_script_nonce)
}

/// Adds `origins` to the directives that govern the widget's resources, in every enforced
/// header policy. Where `default-src` is what governs, it is left as it is and the specific
/// directive is added instead, as a copy of `default-src` plus `origins`, so nothing else
/// (objects, workers, …) is widened.
pub fn allow_origins(headers: &mut HeaderMap, origins: &[String]) {
    if origins.is_empty() || !headers.contains_key(CONTENT_SECURITY_POLICY) {
        return;
    }
    // A value that is not text, or cannot be rebuilt, is kept exactly as it was: never
    // dropped, which would lift the policy altogether.
    let rewritten: Vec<HeaderValue> = headers
        .get_all(CONTENT_SECURITY_POLICY)
        .iter()
        .map(|value| {
            let widened = value.to_str().ok().and_then(|text| {
                let policies: Vec<String> = text.split(',').map(|policy| widen_policy(policy, origins)).collect();
                HeaderValue::from_str(&policies.join(", ")).ok()
            });
            widened.unwrap_or_else(|| value.clone())
        })
        .collect();
    headers.remove(CONTENT_SECURITY_POLICY);
    for value in rewritten {
        headers.append(CONTENT_SECURITY_POLICY, value);
    }
}

fn widen_policy(policy: &str, origins: &[String]) -> String {
    let mut directives = parse_policy(policy);
    for chain in ALLOW_CHAINS {
        let Some(index) = governing(&directives, chain) else { continue };
        let mut sources = directives[index].sources.clone();
        // `'none'` allows nothing and cannot be combined with sources.
        sources.retain(|s| !s.eq_ignore_ascii_case("'none'"));
        for origin in origins {
            if !sources.contains(origin) {
                sources.push(origin.clone());
            }
        }
        if directives[index].name == "default-src" {
            directives.push(Directive { name: chain[0].to_owned(), sources });
        } else {
            directives[index].sources = sources;
        }
    }
    render_policy(&directives)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csp(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(CONTENT_SECURITY_POLICY, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn the_nonce_follows_the_fallback_chain() {
        assert_eq!(policy_script_nonce("default-src 'self' 'nonce-abc123'").as_deref(), Some("abc123"));
        assert_eq!(policy_script_nonce("default-src 'self'; script-src 'nonce-s1'").as_deref(), Some("s1"));
        assert_eq!(policy_script_nonce("script-src 'nonce-s1'; script-src-elem 'nonce-e1'").as_deref(), Some("e1"));
        assert_eq!(policy_script_nonce("script-src 'self'; default-src 'nonce-d1'"), None, "script-src governs");
        assert_eq!(policy_script_nonce("script-src 'nonce-x' 'strict-dynamic'").as_deref(), Some("x"));
        assert_eq!(policy_script_nonce("img-src *"), None);
        assert_eq!(policy_script_nonce("script-src 'nonce-\"><b>'"), None, "only base64 characters");
    }

    #[test]
    fn only_enforced_policies_count() {
        let mut headers = csp(&["img-src *, script-src 'nonce-n2'"]);
        headers.append("content-security-policy-report-only", HeaderValue::from_static("script-src 'nonce-ro'"));
        assert_eq!(script_nonce(&headers).as_deref(), Some("n2"));
        let report_only: HeaderMap =
            [(http::header::CONTENT_SECURITY_POLICY_REPORT_ONLY, HeaderValue::from_static("script-src 'nonce-ro'"))]
                .into_iter()
                .collect();
        assert_eq!(script_nonce(&report_only), None);
    }

    #[test]
    fn allowed_origins_widen_only_the_governing_directives() {
        let origins = vec!["https://www.useinvent.com".to_owned()];
        let mut headers = csp(&["default-src 'self'; script-src 'self' 'nonce-a'; img-src 'none'; object-src 'none'"]);
        allow_origins(&mut headers, &origins);
        assert_eq!(
            headers[CONTENT_SECURITY_POLICY],
            "default-src 'self'; script-src 'self' 'nonce-a' https://www.useinvent.com; img-src https://www.useinvent.com; \
             object-src 'none'; connect-src 'self' https://www.useinvent.com; frame-src 'self' https://www.useinvent.com; \
             style-src-elem 'self' https://www.useinvent.com; font-src 'self' https://www.useinvent.com"
        );
        let mut opaque = HeaderMap::new();
        opaque.insert(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_bytes(b"default-src 'self'; report-uri /r\xe9").expect("header value"),
        );
        allow_origins(&mut opaque, &origins);
        assert_eq!(
            opaque[CONTENT_SECURITY_POLICY].as_bytes(),
            b"default-src 'self'; report-uri /r\xe9",
            "kept, never dropped"
        );
        let mut without_policy = HeaderMap::new();
        allow_origins(&mut without_policy, &origins);
        assert!(without_policy.is_empty(), "no policy, nothing to widen");
    }
}
