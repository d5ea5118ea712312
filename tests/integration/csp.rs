//! Pages with a Content-Security-Policy: the injected script carries the policy's nonce,
//! and `inject.csp_allow` widens only what governs the widget.

use http::{StatusCode, header};

use crate::support::*;

const PAGE: &str = "<!DOCTYPE html><html><head></head><body>x</body></html>";

/// The page under `policy` (sent as header `name`), through a proxy with `inject.csp_allow`
/// set to `csp_allow` if it lists any origin.
async fn page_with_policy(name: &'static str, policy: &'static str, csp_allow: &[&str]) -> Received {
    let upstream = spawn_upstream(move |_| async move {
        let mut response = html(PAGE);
        response.headers_mut().insert(name, policy.parse().unwrap());
        response
    })
    .await;
    let yaml = ProxyYaml::new(upstream.addr);
    let proxy = spawn_proxy(if csp_allow.is_empty() { yaml } else { yaml.csp_allow(csp_allow) }).await;
    get(&proxy, "/").await
}

fn script_tag(page: &str) -> &str {
    let start = page.find("<script").unwrap();
    &page[start..start + page[start..].find('>').unwrap() + 1]
}

#[tokio::test]
async fn the_script_carries_the_nonce_of_the_directive_that_governs_scripts() {
    for (policy, nonce) in [
        ("default-src 'self' 'nonce-dflt0123'", "dflt0123"),
        ("default-src 'self'; script-src 'nonce-scr+/=45' https://cdn.example", "scr+/=45"),
        ("script-src 'nonce-outer'; script-src-elem 'nonce-elem-6'", "elem-6"),
        ("script-src 'nonce-sd7' 'strict-dynamic'; object-src 'none'; base-uri 'none'", "sd7"),
    ] {
        let page = page_with_policy("content-security-policy", policy, &[]).await;
        let expected = format!(
            "<script nonce=\"{nonce}\" type=\"text/javascript\" src=\"https://www.useinvent.com/button.js\" \
             data-turbo-eval=\"false\" data-turbolinks-eval=\"false\" async defer>"
        );
        assert_eq!(script_tag(&page.text()), expected, "{policy}");
        assert_eq!(page.headers[header::CONTENT_SECURITY_POLICY], policy, "the policy itself is not changed");
    }
}

#[tokio::test]
async fn a_meta_policy_nonce_is_used_too() {
    let meta_page = "<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" \
                     content=\"script-src 'nonce-meta9'\"></head><body>x</body></html>";
    let upstream = spawn_html_upstream(meta_page).await;
    let proxy = spawn_default_proxy(upstream.addr).await;
    assert!(script_tag(&get(&proxy, "/").await.text()).starts_with("<script nonce=\"meta9\" "));
}

#[tokio::test]
async fn report_only_policies_are_neither_read_nor_changed() {
    let policy = "script-src 'nonce-ro1'";
    let page = page_with_policy("content-security-policy-report-only", policy, &["https://www.useinvent.com"]).await;
    assert!(!script_tag(&page.text()).contains("nonce"));
    assert_eq!(page.headers[header::CONTENT_SECURITY_POLICY_REPORT_ONLY], policy);
    assert!(!page.headers.contains_key(header::CONTENT_SECURITY_POLICY));
}

#[tokio::test]
async fn csp_allow_adds_the_widget_origins_where_they_are_governed() {
    let csp_allow = ["https://www.useinvent.com", "https://*.useinvent.com"];
    let policy = "default-src 'self'; script-src 'self' 'nonce-n1'; img-src *; object-src 'none'";
    let page = page_with_policy("content-security-policy", policy, &csp_allow).await;
    let origins = "https://www.useinvent.com https://*.useinvent.com";
    assert_eq!(
        page.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap(),
        format!(
            "default-src 'self'; script-src 'self' 'nonce-n1' {origins}; img-src * {origins}; object-src 'none'; \
             connect-src 'self' {origins}; frame-src 'self' {origins}; style-src-elem 'self' {origins}; \
             font-src 'self' {origins}"
        )
    );
    assert!(script_tag(&page.text()).contains("nonce=\"n1\""));
    assert!(!page.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("unsafe-inline"));
}

#[tokio::test]
async fn csp_allow_leaves_pages_that_are_not_rewritten_alone() {
    let upstream = spawn_upstream(|_| async {
        let mut response = respond(StatusCode::OK, "application/json", "{}");
        response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, "default-src 'none'".parse().unwrap());
        response
    })
    .await;
    let proxy = spawn_proxy(ProxyYaml::new(upstream.addr).csp_allow(&["https://www.useinvent.com"])).await;
    assert_eq!(get(&proxy, "/api").await.headers[header::CONTENT_SECURITY_POLICY], "default-src 'none'");
}
