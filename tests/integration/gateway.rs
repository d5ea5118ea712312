//! Identity asserted by an SSO gateway in front of the proxy: plain headers from a trusted
//! peer (oauth2-proxy, Authelia), a signed assertion in a header of its own (Cloudflare
//! Access, Google IAP, Pomerium), and AWS ALB's `X-Amzn-Oidc-Data` with its key fetched
//! per `kid` — each verified end to end on real sockets, and each attack anonymous.

use http::{Request, StatusCode};
use hyper::body::Incoming;
use jsonwebtoken::get_current_timestamp;
use serde_json::{Value, json};

use crate::operations::scrape_until;
use crate::support::tokens::{self, claims};
use crate::support::*;

const PAGE: &str = "<!DOCTYPE html><html><body><p>Dashboard</p></body></html>";

/// The gateway block of oauth2-proxy's headers, believing `from` (else `trusted_proxies`).
fn gateway(from: Option<&str>) -> IdentityYaml {
    let gateway = GatewayYaml::new("X-Auth-Request-User")
        .user_name_header("X-Auth-Request-Preferred-Username")
        .user_avatar_header("X-Auth-Request-Avatar");
    IdentityYaml::default().gateway(match from {
        Some(from) => gateway.from(&[from]),
        None => gateway,
    })
}

const ASSERTED: [(&str, &str); 3] = [
    ("x-auth-request-user", "ada@example.com"),
    ("x-auth-request-preferred-username", "Ada"),
    ("x-auth-request-avatar", "https://cdn.example/ada.png"),
];

#[tokio::test]
async fn a_trusted_gateways_headers_identify_the_visitor() {
    let upstream = spawn_html_upstream(PAGE).await;
    // The tests' client is on loopback: loopback is the gateway here.
    let configs = [
        ProxyYaml::new(upstream.addr).identity(gateway(Some("127.0.0.1/32"))),
        ProxyYaml::new(upstream.addr).trusted_proxies(&["127.0.0.1"]).identity(gateway(None)),
    ];
    for block in configs {
        let proxy = spawn_proxy(&block).await;
        let page = get_with(&proxy, "/", &ASSERTED).await.text();
        assert_eq!(widget_attribute(&page, "user-id").as_deref(), Some("ada@example.com"), "{block}: {page}");
        assert_eq!(
            widget_attribute(&page, "user-hash"),
            Some(invent_proxy::identity::user_hash(SECRET_KEY, "ada@example.com"))
        );
        assert_eq!(widget_attribute(&page, "user-name").as_deref(), Some("Ada"));
        assert_eq!(widget_attribute(&page, "user-avatar").as_deref(), Some("https://cdn.example/ada.png"));
    }
    let seen = upstream.seen();
    assert_eq!(seen[0].headers["x-auth-request-user"], "ada@example.com", "the gateway's headers reach the app");
}

#[tokio::test]
async fn from_any_other_peer_the_headers_are_ignored_and_removed() {
    let upstream = spawn_html_upstream(PAGE).await;
    let proxy = spawn_proxy(ProxyYaml::new(upstream.addr).identity(gateway(Some("10.0.0.0/8")))).await;
    let page = get_with(&proxy, "/", &ASSERTED).await;
    assert_eq!((page.status, page.widgets()), (StatusCode::OK, 1));
    assert_eq!(widget_attribute(&page.text(), "user-id"), None, "{}", page.text());
    let seen = &upstream.seen()[0].headers;
    for (name, _) in ASSERTED {
        assert!(!seen.contains_key(name), "{name} must not reach the app from a client: {seen:?}");
    }
    let asset = get_with(&proxy, "/app.js", &[("x-auth-request-user", "root")]).await;
    assert_eq!(asset.status, StatusCode::OK);
    assert!(!upstream.seen()[1].headers.contains_key("x-auth-request-user"), "on every request, not only pages");
}

#[tokio::test]
async fn asserted_ids_follow_the_claim_rules_and_the_gateway_comes_first() {
    let upstream = spawn_html_upstream(PAGE).await;
    let identity = gateway(Some("127.0.0.1/32")).jwt(JwtYaml::default().cookie("session").secret(JWT_SECRET));
    let proxy = spawn_proxy(ProxyYaml::new(upstream.addr).admin().identity(identity)).await;
    let markup = get_with(&proxy, "/", &[("x-auth-request-user", "\"><script>alert(1)</script>")]).await.text();
    assert_eq!(widget_attribute(&markup, "user-id"), None);
    assert!(!markup.contains("<script>alert(1)"));
    let empty = get_with(&proxy, "/", &[("x-auth-request-user", "")]).await.text();
    assert_eq!(widget_attribute(&empty, "user-id"), None);
    let cookie = format!("session={}", tokens::hs256(&claims("cookie_user")));
    let both = get_with(&proxy, "/", &[("x-auth-request-user", "gateway_user"), ("cookie", &cookie)]).await.text();
    assert_eq!(widget_attribute(&both, "user-id").as_deref(), Some("gateway_user"), "the gateway is asked first");
    let only_cookie = get_with(&proxy, "/", &[("cookie", &cookie)]).await.text();
    assert_eq!(widget_attribute(&only_cookie, "user-id").as_deref(), Some("cookie_user"), "then the session token");
    let admin = proxy.admin_addr().unwrap();
    let metrics = scrape_until(admin, r#"invent_proxy_requests_total{method="GET",status="2xx"} 4"#).await;
    for line in [
        r#"invent_proxy_identity_total{outcome="rejected",source="gateway",reason="invalid_user_id"} 1"#,
        r#"invent_proxy_identity_total{outcome="verified",source="gateway",reason=""} 1"#,
        r#"invent_proxy_identity_total{outcome="verified",source="jwt_cookie",reason=""} 1"#,
    ] {
        assert!(metrics.lines().any(|l| l == line), "no line {line:?} in\n{metrics}");
    }
}

#[tokio::test]
async fn a_gateways_signed_assertion_is_read_from_its_own_header() {
    let upstream = spawn_html_upstream(PAGE).await;
    let jwt = JwtYaml::default()
        .header("Cf-Access-Jwt-Assertion")
        .algorithms(&["RS256"])
        .public_key_file("keys/rsa_public.pem")
        .audience(&["shop-app"]);
    let proxy = spawn_proxy(ProxyYaml::new(upstream.addr).identity(IdentityYaml::default().jwt(jwt))).await;
    let signed = |aud: &str| tokens::rs256(&json!({"sub": "ada", "aud": aud, "exp": get_current_timestamp() + 600}));
    let page = get_with(&proxy, "/", &[("cf-access-jwt-assertion", &signed("shop-app"))]).await;
    assert_eq!(widget_attribute(&page.text(), "user-id").as_deref(), Some("ada"));
    assert_eq!(page.headers.get_all("vary").iter().collect::<Vec<_>>(), ["cf-access-jwt-assertion"]);
    let other = get_with(&proxy, "/", &[("cf-access-jwt-assertion", &signed("another-app"))]).await;
    assert_eq!(widget_attribute(&other.text(), "user-id"), None, "a token for another application");
    let bearer = get_with(&proxy, "/", &[("cf-access-jwt-assertion", &format!("Bearer {}", signed("shop-app")))]).await;
    assert_eq!(widget_attribute(&bearer.text(), "user-id"), None, "the header holds the token itself");
}

/// The load balancer's ARN, as the tests' ALB puts it in `signer`.
const SIGNER: &str = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/shop/50dc6c495c0c9188";

/// A key server like ALB's regional one: the fixture's EC public key as PEM at `/alb-1`.
async fn spawn_key_server() -> Upstream {
    spawn_upstream(|req: Request<Incoming>| async move {
        match req.uri().path() {
            "/keys/alb-1" => respond(StatusCode::OK, "application/octet-stream", tokens::fixture("ec_public.pem")),
            _ => respond(StatusCode::NOT_FOUND, "text/plain", "no such key"),
        }
    })
    .await
}

/// A proxy in front of `upstream` behind an ALB whose keys `key_server` serves.
fn alb_yaml(upstream: std::net::SocketAddr, key_server: std::net::SocketAddr) -> ProxyYaml {
    let jwt = JwtYaml::default()
        .header("X-Amzn-Oidc-Data")
        .algorithms(&["ES256"])
        .key_url(format!("http://{key_server}/keys/{{kid}}"))
        .jwks_min_refresh("1h")
        .header_claim("signer", SIGNER)
        .user_id_claim("sub")
        .user_name_claim("name");
    ProxyYaml::new(upstream).admin().identity(IdentityYaml::default().jwt(jwt))
}

/// ALB's JOSE header for `kid`, expiring in `ttl` seconds (negative: expired).
fn alb_header(kid: &str, signer: &str, ttl: i64) -> Value {
    let exp = get_current_timestamp() as i64 + ttl;
    json!({"typ": "JWT", "kid": kid, "alg": "ES256", "iss": "https://cognito-idp.eu-west-1.amazonaws.com/x",
           "client": "shop", "signer": signer, "exp": exp})
}

fn alb_claims() -> Value {
    json!({"sub": "alb-user-9", "name": "Ada", "email": "ada@example.com", "exp": get_current_timestamp() + 600,
           "iss": "https://cognito-idp.eu-west-1.amazonaws.com/x"})
}

fn key_fetches(server: &Upstream) -> usize {
    server.seen().iter().filter(|s| s.uri.path().starts_with("/keys/")).count()
}

#[tokio::test]
async fn an_aws_alb_assertion_is_verified_with_the_key_its_kid_names() {
    let key_server = spawn_key_server().await;
    let upstream = spawn_html_upstream(PAGE).await;
    let proxy = spawn_proxy(alb_yaml(upstream.addr, key_server.addr)).await;
    let token = tokens::alb_token(&alb_header("alb-1", SIGNER, 60), &alb_claims());
    assert!(token.split('.').any(|segment| segment.ends_with('=')), "ALB pads: {token}");
    for _ in 0..3 {
        let page = get_with(&proxy, "/", &[("x-amzn-oidc-data", &token)]).await.text();
        assert_eq!(widget_attribute(&page, "user-id").as_deref(), Some("alb-user-9"), "{page}");
        assert_eq!(widget_attribute(&page, "user-name").as_deref(), Some("Ada"));
    }
    assert_eq!(key_fetches(&key_server), 1, "the key of a kid is fetched once");
    assert_eq!(key_server.seen()[0].uri.path(), "/keys/alb-1");
}

#[tokio::test]
async fn alb_assertions_that_fail_any_check_leave_the_visitor_anonymous() {
    let key_server = spawn_key_server().await;
    let upstream = spawn_html_upstream(PAGE).await;
    let proxy = spawn_proxy(alb_yaml(upstream.addr, key_server.addr)).await;
    let unsigned = {
        use base64::Engine;
        let part = |v: &Value| base64::engine::general_purpose::URL_SAFE.encode(serde_json::to_vec(v).unwrap());
        let mut header = alb_header("alb-1", SIGNER, 60);
        header["alg"] = json!("none");
        format!("{}.{}.", part(&header), part(&alb_claims()))
    };
    let cases = [
        (
            "another load balancer",
            tokens::alb_token(
                &alb_header("alb-1", "arn:aws:elasticloadbalancing:x:1:loadbalancer/app/evil/1", 60),
                &alb_claims(),
            ),
            "wrong_header",
        ),
        ("expired in the header", tokens::alb_token(&alb_header("alb-1", SIGNER, -3600), &alb_claims()), "expired"),
        ("alg none", unsigned, "algorithm_not_allowed"),
        (
            "a kid the key server does not know",
            tokens::alb_token(&alb_header("alb-404", SIGNER, 60), &alb_claims()),
            "unknown_key",
        ),
        (
            "the same unknown kid again",
            tokens::alb_token(&alb_header("alb-404", SIGNER, 60), &alb_claims()),
            "unknown_key",
        ),
        (
            "a kid that is not one path segment",
            tokens::alb_token(&alb_header("../alb-1", SIGNER, 60), &alb_claims()),
            "unknown_key",
        ),
        (
            "tampered claims",
            {
                let token = tokens::alb_token(&alb_header("alb-1", SIGNER, 60), &alb_claims());
                let other = tokens::alb_token(
                    &alb_header("alb-1", SIGNER, 60),
                    &json!({"sub": "admin", "exp": get_current_timestamp() + 600}),
                );
                let (mut parts, other): (Vec<&str>, Vec<&str>) =
                    (token.split('.').collect(), other.split('.').collect());
                parts[1] = other[1];
                parts.join(".")
            },
            "bad_signature",
        ),
    ];
    for (what, token, _) in &cases {
        let page = get_with(&proxy, "/", &[("x-amzn-oidc-data", token)]).await;
        assert_eq!((page.status, page.widgets()), (StatusCode::OK, 1), "{what}");
        assert_eq!(widget_attribute(&page.text(), "user-id"), None, "{what}");
    }
    assert_eq!(key_fetches(&key_server), 2, "alb-1 once, the unknown kid once per jwks_min_refresh, ../ never");
    let admin = proxy.admin_addr().unwrap();
    let metrics =
        scrape_until(admin, &format!(r#"invent_proxy_requests_total{{method="GET",status="2xx"}} {}"#, cases.len()))
            .await;
    for reason in ["wrong_header", "expired", "algorithm_not_allowed", "bad_signature"] {
        let line =
            format!(r#"invent_proxy_identity_total{{outcome="rejected",source="jwt_header",reason="{reason}"}} 1"#);
        assert!(metrics.lines().any(|l| l == line), "no line {line:?} in\n{metrics}");
    }
    let unknown = r#"invent_proxy_identity_total{outcome="rejected",source="jwt_header",reason="unknown_key"} 3"#;
    assert!(metrics.lines().any(|l| l == unknown), "no line {unknown:?} in\n{metrics}");
}

#[tokio::test]
async fn a_key_server_that_is_down_leaves_the_visitor_anonymous_and_the_page_served() {
    let (nowhere, _held) = unreachable_address();
    let upstream = spawn_html_upstream(PAGE).await;
    let proxy = spawn_proxy(alb_yaml(upstream.addr, nowhere)).await;
    let token = tokens::alb_token(&alb_header("alb-1", SIGNER, 60), &alb_claims());
    let page = get_with(&proxy, "/", &[("x-amzn-oidc-data", &token)]).await;
    assert_eq!((page.status, page.widgets()), (StatusCode::OK, 1));
    assert_eq!(widget_attribute(&page.text(), "user-id"), None);
}

#[tokio::test]
async fn padding_is_accepted_only_with_key_url() {
    let upstream = spawn_html_upstream(PAGE).await;
    let jwt =
        JwtYaml::default().header("X-Amzn-Oidc-Data").algorithms(&["ES256"]).public_key_file("keys/ec_public.pem");
    let proxy = spawn_proxy(ProxyYaml::new(upstream.addr).identity(IdentityYaml::default().jwt(jwt))).await;
    let padded = tokens::alb_token(&json!({"typ": "JWT", "alg": "ES256"}), &alb_claims());
    let page = get_with(&proxy, "/", &[("x-amzn-oidc-data", &padded)]).await;
    assert_eq!(widget_attribute(&page.text(), "user-id"), None, "padded segments are malformed here");
    let unpadded = tokens::es256(&alb_claims());
    let page = get_with(&proxy, "/", &[("x-amzn-oidc-data", &unpadded)]).await;
    assert_eq!(widget_attribute(&page.text(), "user-id").as_deref(), Some("alb-user-9"), "the control verifies");
}

#[test]
fn check_warns_about_a_gateway_assertion_without_audience() {
    let jwt = JwtYaml::default()
        .header("X-Goog-Iap-Jwt-Assertion")
        .algorithms(&["ES256"])
        .public_key_file("keys/ec_public.pem");
    let config = config(ProxyYaml::new("127.0.0.1:9".parse().unwrap()).identity(IdentityYaml::default().jwt(jwt)));
    let warnings = config.main_site().warnings();
    assert!(warnings.iter().any(|w| w.contains("without identity.jwt.audience")), "{warnings:?}");
    let alb = crate::support::config(alb_yaml("127.0.0.1:9".parse().unwrap(), "127.0.0.1:10".parse().unwrap()));
    let warnings = alb.main_site().warnings();
    assert!(!warnings.iter().any(|w| w.contains("audience")), "the ALB's signer binds it: {warnings:?}");
}
