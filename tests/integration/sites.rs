//! Many sites from one proxy: routing by `Host` (port and case ignored, `*.` wildcards),
//! top-level blocks as defaults, each site's own identity and inject rules, `:authority` on
//! HTTP/2, `default_site`, and `421` for a host no site serves.

use http::StatusCode;
use invent_proxy::RunningProxy;

use crate::support::*;

/// Site a (its own assistant) and site b (the top-level one) on wildcard hosts.
fn sites_yaml(a: &Upstream, b: &Upstream) -> ProxyYaml {
    ProxyYaml::without_upstream()
        .assistant_id("ast_top")
        .site(SiteYaml::new(&["www.a.test", "a.test"], a.addr).assistant_id("ast_a"))
        .site(SiteYaml::new(&["*.b.test"], b.addr))
}

async fn page_for(proxy: &RunningProxy, host: &str) -> Received {
    get_with(proxy, "/", &[("host", host)]).await
}

#[tokio::test]
async fn requests_go_to_the_site_of_their_host() {
    let a = spawn_html_upstream("<!doctype html><html><body>site a</body></html>").await;
    let b = spawn_html_upstream("<!doctype html><html><body>site b</body></html>").await;
    let proxy = spawn_proxy(sites_yaml(&a, &b)).await;

    for host in ["www.a.test", "WWW.A.test:8080", "a.test."] {
        let page = page_for(&proxy, host).await;
        assert!(page.text().contains("site a"), "{host}: {}", page.text());
        assert_eq!(widget_attribute(&page.text(), "assistant-id").as_deref(), Some("ast_a"), "{host}");
    }
    let page = page_for(&proxy, "shop.b.test").await;
    assert!(page.text().contains("site b"), "{}", page.text());
    assert_eq!(
        widget_attribute(&page.text(), "assistant-id").as_deref(),
        Some("ast_top"),
        "top-level block as default"
    );
    assert!(page_for(&proxy, "x.y.b.test").await.text().contains("site b"), "a wildcard covers deeper names");

    for host in ["b.test", "evilb.test", "www.a.test.evil", "other.test"] {
        let refused = page_for(&proxy, host).await;
        assert_eq!(refused.status, StatusCode::MISDIRECTED_REQUEST, "{host}");
        assert!(refused.text().contains("421"), "{}", refused.text());
    }
    assert_eq!(a.seen().len(), 3);
    assert_eq!(b.seen().len(), 2);
}

#[tokio::test]
async fn an_unknown_host_goes_to_the_default_site() {
    let a = spawn_html_upstream("<!doctype html><html><body>site a</body></html>").await;
    let b = spawn_html_upstream("<!doctype html><html><body>site b</body></html>").await;
    let proxy = spawn_proxy(sites_yaml(&a, &b).default_site("a.test")).await;
    let page = page_for(&proxy, "10.0.0.1").await;
    assert!(page.text().contains("site a"), "{}", page.text());
    assert!(page_for(&proxy, "www.b.test").await.text().contains("site b"), "named hosts still route");
}

#[test]
fn site_errors_name_the_site_and_key() {
    let load = |yaml: &str| {
        invent_proxy::Config::from_yaml(yaml, "t.yaml", std::path::Path::new(".")).unwrap_err().to_string()
    };
    let base = "assistant: { id: a }\nsites:\n  - hosts: [a.test]\n    upstream: { url: \"http://127.0.0.1:9\" }\n";
    let error = load(&format!("default_site: b.test\n{base}"));
    assert!(error.contains("default_site") && error.contains("b.test"), "{error}");
    let error = load("assistant: { id: a }\nsites:\n  - hosts: [a.test]\n");
    assert!(error.contains("site 1 (a.test)") && error.contains("missing field `upstream`"), "{error}");
    let error = load(
        "assistant: { id: a }\nsites:\n  - hosts: [\"a.test:8080\"]\n    upstream: { url: \"http://127.0.0.1:9\" }\n",
    );
    assert!(error.contains("sites[0].hosts[0]") && error.contains("no port"), "{error}");
    let error = load(&format!(
        "{base}  - hosts: [b.test]\n    upstream: {{ url: \"http://127.0.0.1:9\", tls: {{ server_name: x }} }}\n"
    ));
    assert!(error.contains("site 2 (b.test)") && error.contains("upstream.tls"), "{error}");
}

#[tokio::test]
async fn an_exact_name_beats_a_wildcard_and_a_host_listed_twice_is_refused() {
    let wide = spawn_html_upstream("<!doctype html><html><body>wildcard site</body></html>").await;
    let api = spawn_html_upstream("<!doctype html><html><body>api site</body></html>").await;
    let yaml = format!(
        "listen: 127.0.0.1:0\nassistant: {{ id: a }}\nsites:\n  - hosts: [\"*.example.test\"]\n    upstream: {{ url: \"http://{}\" }}\n  \
         - hosts: [api.example.test, \"*.v2.example.test\"]\n    upstream: {{ url: \"http://{}\" }}\n",
        wide.addr, api.addr
    );
    let proxy = spawn_proxy(&yaml).await;
    assert!(page_for(&proxy, "api.example.test").await.text().contains("api site"), "exact beats the earlier wildcard");
    assert!(page_for(&proxy, "x.v2.example.test").await.text().contains("api site"), "longer wildcard wins");
    assert!(page_for(&proxy, "www.example.test").await.text().contains("wildcard site"));
    let twice = format!(
        "listen: 127.0.0.1:0\nassistant: {{ id: a }}\nsites:\n  - hosts: [\"*.example.test\", API.example.test]\n    upstream: {{ url: \"http://{}\" }}\n  \
         - hosts: [api.example.test, \"*.v2.example.test\"]\n    upstream: {{ url: \"http://{}\" }}\n",
        wide.addr, api.addr
    );
    let error = invent_proxy::Config::from_yaml(&twice, "t.yaml", std::path::Path::new(".")).unwrap_err().to_string();
    assert!(error.contains("api.example.test is listed by more than one site"), "{error}");
}

#[tokio::test]
async fn each_site_has_its_own_identity_and_inject_rules_and_http2_routes_by_authority() {
    let a = spawn_html_upstream("<!doctype html><html><body>site a</body></html>").await;
    let b = spawn_html_upstream("<!doctype html><html><body>site b</body></html>").await;
    let yaml = ProxyYaml::without_upstream()
        .assistant_id("ast_top")
        .identity(IdentityYaml::session())
        .site(SiteYaml::new(&["a.test"], a.addr))
        .site(
            SiteYaml::new(&["b.test"], b.addr)
                .exclude_paths(&["/admin/**"])
                .identity(IdentityYaml::session().secret_key("sk_site_b")),
        );
    let proxy = spawn_proxy(yaml).await;
    let token = tokens::hs256(&tokens::claims("ada"));
    let cookie = format!("session={token}");
    let hash_on = |host: &'static str| {
        let (proxy, cookie) = (&proxy, &cookie);
        async move {
            let page = get_with(proxy, "/", &[("host", host), ("cookie", cookie)]).await;
            widget_attribute(&page.text(), "user-hash")
        }
    };
    assert_eq!(
        hash_on("a.test").await,
        Some(invent_proxy::identity::user_hash(SECRET_KEY, "ada")),
        "top-level identity"
    );
    assert_eq!(hash_on("b.test").await, Some(invent_proxy::identity::user_hash("sk_site_b", "ada")), "the site's own");
    assert_eq!(get_with(&proxy, "/admin/x", &[("host", "a.test")]).await.widgets(), 1);
    assert_eq!(get_with(&proxy, "/admin/x", &[("host", "b.test")]).await.widgets(), 0, "the site's inject rules");

    let stream = tokio::net::TcpStream::connect(proxy.local_addr()).await.unwrap();
    let (mut h2, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    for (authority, expected) in [("http://b.test:8443/", "site b"), ("http://A.TEST/", "site a")] {
        let request = http::Request::get(authority)
            .header("accept", "text/html")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let response = h2.send_request(request).await.unwrap();
        assert_eq!(response.version(), http::Version::HTTP_2);
        let body = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains(expected) && text.contains("<invent-assistant"), "{authority}: {text}");
    }
    let unknown = http::Request::get("http://c.test/").body(http_body_util::Empty::<bytes::Bytes>::new()).unwrap();
    assert_eq!(h2.send_request(unknown).await.unwrap().status(), StatusCode::MISDIRECTED_REQUEST);
}
