//! `invent-proxy explain`, run as the real binary against real upstreams on loopback: what
//! it says of a page that gets the widget, of each kind of page that does not, of signed-in
//! and rejected visitors, of many sites, of an upstream that is down, and that it never
//! prints a secret.

use std::io::{Read, Write};
use std::time::Duration;

use bytes::Bytes;
use http::{StatusCode, header};
use http_body_util::BodyExt;
use invent_proxy::identity::user_hash;

use crate::support::process::{ProxyProcess, TempPath};
use crate::support::tokens::{self, claims};
use crate::support::*;

const PAGE: &str = "<!DOCTYPE html><html><head><title>Shop</title></head><body><p>Welcome</p></body></html>";

/// What one run of `explain` printed, and its exit status.
struct Explained {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Explained {
    /// The first line of the report that starts with `prefix`.
    fn line(&self, prefix: &str) -> &str {
        let found = self.stdout.lines().find(|line| line.starts_with(prefix));
        found.unwrap_or_else(|| panic!("no line starting with {prefix:?}:\n{}\n{}", self.stdout, self.stderr))
    }

    /// The line after the first one that starts with `prefix`, trimmed.
    fn line_after(&self, prefix: &str) -> &str {
        let mut lines = self.stdout.lines().skip_while(|line| !line.starts_with(prefix));
        lines.nth(1).unwrap_or_else(|| panic!("nothing after {prefix:?}:\n{}", self.stdout)).trim()
    }

    fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Runs `invent-proxy explain --config FILE ARGS…` with `yaml` as the file, the tests'
/// secrets in the environment. Waits at most a minute: a hang is a failure, not a wait.
async fn explain(yaml: &ProxyYaml, args: &[&str]) -> Explained {
    let config = TempPath::with_contents(&yaml.to_string());
    let mut command = tokio::process::Command::new(binary());
    command.args(["explain", "--config", config.path()]).args(args);
    run(command).await
}

async fn run(mut command: tokio::process::Command) -> Explained {
    let command = command
        .env_remove("INVENT_PROXY_CONFIG")
        .env_remove("RUST_LOG")
        .envs([("TEST_SECRET_KEY", SECRET_KEY), ("TEST_JWT_SECRET", JWT_SECRET)])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), command).await.expect("explain did not finish").unwrap();
    Explained {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// HS256 sessions in the `session` cookie, the secrets read from the environment.
fn with_sessions(yaml: ProxyYaml) -> ProxyYaml {
    let jwt = JwtYaml::session().secret("${TEST_JWT_SECRET}");
    yaml.identity(IdentityYaml::default().secret_key("${TEST_SECRET_KEY}").jwt(jwt))
}

#[tokio::test]
async fn a_page_that_gets_the_widget_shows_where_with_the_nonce_and_the_headers_changed() {
    let upstream = spawn_upstream(|_| async {
        let mut response = html(PAGE);
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_SECURITY_POLICY, "script-src 'self' 'nonce-abc123'".parse().unwrap());
        headers.insert(header::ETAG, "\"v1\"".parse().unwrap());
        headers.insert(header::CACHE_CONTROL, "public, max-age=60".parse().unwrap());
        response
    })
    .await;
    let yaml = ProxyYaml::new(upstream.addr);
    let explained = explain(&yaml, &["http://shop.example:8080/products?page=2"]).await;
    assert_eq!(explained.code, Some(0), "{}", explained.all());
    assert_eq!(explained.line("site:"), "site: the only site (no `sites:` in the config): it serves every host");
    assert_eq!(explained.line("upstream:"), format!("upstream: http://{}/products?page=2", upstream.addr));
    assert_eq!(explained.line("request:"), "request: qualifies");
    assert_eq!(explained.line("response: 200"), "response: 200 text/html; charset=utf-8");
    assert_eq!(explained.line("response: q"), "response: qualifies");
    assert_eq!(explained.line("identity:"), "identity: none (no `identity` block: every visitor is anonymous)");
    assert_eq!(explained.line("widget:"), "widget: injected before </body>");
    let markup = explained.line_after("widget:");
    assert!(markup.starts_with("<invent-assistant ") && markup.contains(" assistant-id=\"ast_test\""), "{markup}");
    assert!(markup.contains("</invent-assistant><script nonce=\"abc123\""), "{markup}");
    assert_eq!(explained.line("csp nonce:"), "csp nonce: abc123 (from the Content-Security-Policy header)");
    assert!(explained.line("  ~ etag:").ends_with("\"v1\" → W/\"v1\""), "{}", explained.stdout);
    assert!(explained.line("  ~ content-length:").starts_with("  ~ content-length: 87 → "), "{}", explained.stdout);
    explained.line("  + x-request-id: ");
    assert!(!explained.stdout.contains("cache-control"), "unchanged for an anonymous page: {}", explained.stdout);
    assert_eq!(explained.line("result:"), "result: the page gets the widget (exit 0)");

    let seen = upstream.seen();
    assert_eq!(seen.len(), 1, "one request, to the configured upstream");
    assert_eq!(seen[0].uri, "/products?page=2");
    assert_eq!(seen[0].headers[header::HOST], "shop.example:8080", "the URL's host, kept (host_header: preserve)");
    assert_eq!(seen[0].headers["sec-fetch-dest"], "document", "a browser's navigation");
    assert_eq!(seen[0].headers["x-forwarded-proto"], "http");

    // The markup is the one a running proxy puts into the same page.
    let proxy = spawn_proxy(&yaml).await;
    let page = get_with(&proxy, "/products?page=2", &[("sec-fetch-dest", "document")]).await.text();
    assert!(page.contains(&format!("<p>Welcome</p>{markup}</body>")), "{page}\nvs {markup}");
}

#[tokio::test]
async fn a_json_response_is_not_html() {
    let upstream = spawn_upstream(|_| async { respond(StatusCode::OK, "application/json", "{\"ok\":true}") }).await;
    let explained = explain(&ProxyYaml::new(upstream.addr), &["http://shop.example/api/cart"]).await;
    assert_eq!(explained.code, Some(1), "{}", explained.all());
    assert_eq!(explained.line("request:"), "request: qualifies");
    assert_eq!(explained.line("response: 200"), "response: 200 application/json");
    assert_eq!(explained.line("response: s"), "response: skip=not_html");
    assert!(explained.line_after("response: s").contains("text/html or application/xhtml+xml"));
    assert_eq!(explained.line("widget:"), "widget: not injected");
    assert_eq!(explained.line("csp nonce:"), "csp nonce: none");
    assert_eq!(explained.line("result:"), "result: no widget: skip=not_html (exit 1)");
}

#[tokio::test]
async fn an_excluded_path_and_an_xhr_are_skipped_by_the_request_rules() {
    let upstream = spawn_html_upstream(PAGE).await;
    let yaml = ProxyYaml::new(upstream.addr).exclude_paths(&["/admin/**"]);
    let excluded = explain(&yaml, &["http://shop.example/admin/users"]).await;
    assert_eq!(excluded.code, Some(1), "{}", excluded.all());
    assert_eq!(excluded.line("request:"), "request: skip=path");
    assert_eq!(
        excluded.line_after("request:"),
        "the path is not in inject.include_paths (/**) or is in inject.exclude_paths (/admin/**)"
    );
    assert_eq!(excluded.line("response: n"), "response: not checked (the request rules said no)");
    assert_eq!(excluded.line("result:"), "result: no widget: skip=path (exit 1)");

    let xhr = explain(&yaml, &["http://shop.example/cart", "--header", "X-Requested-With: XMLHttpRequest"]).await;
    assert_eq!(xhr.code, Some(1), "{}", xhr.all());
    assert_eq!(xhr.line("request:"), "request: skip=not_navigation");
    assert_eq!(xhr.line("request headers given:"), "request headers given: x-requested-with (values not shown)");
    assert_eq!(xhr.line("identity:"), "identity: none (no `identity` block: every visitor is anonymous)");
    let seen = upstream.seen();
    assert_eq!(seen.len(), 2, "both were sent upstream all the same");
    assert_eq!(seen[1].headers["x-requested-with"], "XMLHttpRequest");
}

#[tokio::test]
async fn a_compressed_page_is_explained_for_the_accept_encoding_sent() {
    let upstream = spawn_upstream(|_| async {
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gzip, PAGE.as_bytes()).unwrap();
        let mut response = html(gzip.finish().unwrap());
        response.headers_mut().insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
        response
    })
    .await;
    let yaml = ProxyYaml::new(upstream.addr);
    let browser = explain(&yaml, &["http://shop.example/"]).await;
    assert_eq!(browser.code, Some(0), "{}", browser.all());
    assert_eq!(browser.line("widget:"), "widget: injected before </body>");
    assert_eq!(browser.line("  + vary:"), "  + vary: Accept-Encoding");
    assert!(!browser.stdout.contains("content-encoding"), "encoded again for a browser: {}", browser.stdout);
    let plain = explain(&yaml, &["http://shop.example/", "--header", "Accept-Encoding: identity"]).await;
    assert_eq!(plain.code, Some(0), "{}", plain.all());
    assert_eq!(plain.line("  - content-encoding:"), "  - content-encoding: gzip");
    assert_eq!(upstream.seen()[0].headers[header::ACCEPT_ENCODING], "gzip, deflate, br, zstd");
}

#[tokio::test]
async fn a_fragment_is_skipped_by_the_page_itself() {
    let upstream = spawn_html_upstream("<li>one more item</li>").await;
    let explained = explain(&ProxyYaml::new(upstream.addr), &["http://shop.example/items?after=3"]).await;
    assert_eq!(explained.code, Some(1), "{}", explained.all());
    assert_eq!(explained.line("response: q"), "response: qualifies");
    assert_eq!(explained.line("widget:"), "widget: not injected");
    assert_eq!(explained.line_after("widget:"), "skip=fragment");
    assert_eq!(explained.line("result:"), "result: no widget: skip=fragment (exit 1)");
}

#[tokio::test]
async fn a_signed_in_visitor_is_verified_and_a_bad_token_rejected_and_no_secret_is_printed() {
    let upstream = spawn_html_upstream(PAGE).await;
    let yaml = with_sessions(ProxyYaml::new(upstream.addr));
    let token = tokens::hs256(&claims("user_42"));
    let session = format!("session={token}");
    let signed_in =
        explain(&yaml, &["http://shop.example/account", "--cookie", &session, "--cookie", "theme=dark"]).await;
    assert_eq!(signed_in.code, Some(0), "{}", signed_in.all());
    assert_eq!(signed_in.line("identity:"), "identity: verified (jwt_cookie)");
    assert_eq!(signed_in.line("request cookies:"), "request cookies: session, theme (values not shown)");
    let markup = signed_in.line_after("widget:");
    assert_eq!(widget_attribute(markup, "user-id").as_deref(), Some("user_42"));
    assert_eq!(widget_attribute(markup, "user-hash"), Some(user_hash(SECRET_KEY, "user_42")));
    assert_eq!(signed_in.line("  + vary:"), "  + vary: Cookie");
    assert!(signed_in.line("  + cache-control:").contains("private"), "{}", signed_in.stdout);

    let expired = tokens::hs256(&serde_json::json!({"sub": "user_42", "exp": 1_000_000}));
    let expired_cookie = format!("session={expired}");
    let rejected = explain(&yaml, &["http://shop.example/account", "--cookie", &expired_cookie]).await;
    assert_eq!(rejected.code, Some(0), "the page gets the widget, anonymous: {}", rejected.all());
    assert_eq!(rejected.line("identity:"), "identity: rejected:expired (jwt_cookie)");
    assert!(rejected.line_after("identity:").starts_with("the token has expired"));
    assert_eq!(widget_attribute(rejected.line_after("widget:"), "user-id"), None);

    let anonymous = explain(&yaml, &["http://shop.example/account"]).await;
    assert_eq!(anonymous.line("identity:"), "identity: none (no session in the request)");
    assert_eq!(anonymous.line_after("identity:"), "the sources, in order: jwt_cookie (cookie session)");

    for explained in [&signed_in, &rejected, &anonymous] {
        let all = explained.all();
        for secret in [SECRET_KEY, JWT_SECRET, token.as_str(), expired.as_str(), "dark"] {
            assert!(!all.contains(secret), "{secret} was printed:\n{all}");
        }
    }
}

#[tokio::test]
async fn the_pages_own_widget_is_completed_with_the_identity() {
    let own =
        "<!DOCTYPE html><html><body><invent-assistant theme-appearance=\"dark\"></invent-assistant></body></html>";
    let upstream = spawn_html_upstream(own).await;
    let yaml = with_sessions(ProxyYaml::new(upstream.addr));
    let session = format!("session={}", tokens::hs256(&claims("user_42")));
    let explained = explain(&yaml, &["http://shop.example/", "--cookie", &session]).await;
    assert_eq!(explained.code, Some(0), "{}", explained.all());
    assert_eq!(explained.line("widget:"), "widget: completed the page's own <invent-assistant>");
    let element = explained.line_after("widget:");
    assert!(element.starts_with("<invent-assistant theme-appearance=\"dark\" assistant-id=\"ast_test\""), "{element}");
    assert_eq!(widget_attribute(element, "user-id").as_deref(), Some("user_42"));
    assert_eq!(explained.line("  and inserted"), format!("  and inserted before </body>: {WIDGET_SCRIPT}"));
}

#[tokio::test]
async fn the_urls_host_chooses_the_site_and_its_upstream() {
    let (a, b) = (spawn_html_upstream(PAGE).await, spawn_html_upstream(PAGE).await);
    let sites = ProxyYaml::without_upstream()
        .site(SiteYaml::new(&["a.test"], a.addr))
        .site(SiteYaml::new(&["*.b.test"], b.addr).assistant_id("ast_b"));
    let explained = explain(&sites, &["https://www.b.test/"]).await;
    assert_eq!(explained.code, Some(0), "{}", explained.all());
    assert_eq!(explained.line("site:"), "site: www.b.test (sites[1]: *.b.test)");
    assert_eq!(explained.line("peer:"), "peer: 127.0.0.1 over https (as through listen_tls), not in trusted_proxies");
    let markup = explained.line_after("widget:");
    assert!(markup.starts_with("<invent-assistant ") && markup.contains(" assistant-id=\"ast_b\""), "{markup}");
    assert_eq!((a.seen().len(), b.seen().len()), (0, 1), "sent to the site's upstream, not to the URL's host");
    assert_eq!(b.seen()[0].headers["x-forwarded-proto"], "https");

    let unknown = explain(&sites, &["http://c.test/"]).await;
    assert_eq!(unknown.code, Some(1), "{}", unknown.all());
    assert_eq!(
        unknown.line("site:"),
        "site: none — no site lists the host c.test and there is no default_site (the proxy answers 421)"
    );
    assert_eq!(unknown.line("result:"), "result: no widget: unknown_host (exit 1)");

    let defaulted = explain(&sites.clone().default_site("a.test"), &["http://c.test/"]).await;
    assert_eq!(defaulted.code, Some(0), "{}", defaulted.all());
    assert_eq!(defaulted.line("site:"), "site: sites[0] (a.test), the default_site: no site lists the host c.test");
    assert_eq!((a.seen().len(), b.seen().len()), (1, 1));
}

#[tokio::test]
async fn an_unreachable_upstream_is_an_error_of_its_own() {
    let (addr, _held) = unreachable_address();
    let explained = explain(&ProxyYaml::new(addr), &["http://shop.example/"]).await;
    assert_eq!(explained.code, Some(3), "{}", explained.all());
    assert!(explained.line("response:").starts_with("response: none — upstream_connect: upstream unreachable"));
    assert!(explained.line("response:").ends_with("(the proxy answers 502)"));
    assert_eq!(explained.line("result:"), "result: the request failed: upstream_connect (exit 3)");
    assert!(explained.stderr.starts_with("invent-proxy: upstream unreachable"), "{}", explained.stderr);
}

#[tokio::test]
async fn an_upstream_that_breaks_off_mid_page_is_a_failed_request() {
    // The page's start, then the connection closes `length` bytes short.
    let breaking = |length: usize| {
        spawn_raw_upstream(move |mut socket| async move {
            read_request(&mut socket).await;
            let head = format!("HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {length}\r\n\r\n");
            let _ = tokio::io::AsyncWriteExt::write_all(&mut socket, format!("{head}{PAGE}").as_bytes()).await;
        })
    };
    // A small page is read whole before its head goes out: the visitor gets a 502.
    let before_head = explain(&ProxyYaml::new(breaking(5000).await), &["http://shop.example/"]).await;
    assert_eq!(before_head.code, Some(3), "{}", before_head.all());
    assert_eq!(before_head.line("response: 200"), "response: 200 text/html");
    assert!(before_head.line("error:").starts_with("error: upstream: "), "{}", before_head.stdout);
    let own_page = "headers changed: all (the visitor gets the proxy's own 502 page instead)";
    assert_eq!(before_head.line("headers changed:"), own_page);
    assert_eq!(before_head.line("result:"), "result: the request failed: upstream (exit 3)");
    // A large one goes out as it comes: the visitor's page is cut short.
    let mid_body = explain(&ProxyYaml::new(breaking(100_000).await), &["http://shop.example/"]).await;
    assert_eq!(mid_body.code, Some(3), "{}", mid_body.all());
    assert_eq!(mid_body.line("response: q"), "response: qualifies");
    assert!(mid_body.line("error:").starts_with("error: upstream_body: "), "{}", mid_body.stdout);
    assert_eq!(mid_body.line("result:"), "result: the request failed: upstream_body (exit 3)");
    assert!(mid_body.stderr.starts_with("invent-proxy: "), "the error on stderr too: {}", mid_body.stderr);
}

#[tokio::test]
async fn what_stops_explain_itself_is_one_line_and_status_2() {
    let (addr, _held) = unreachable_address();
    let misspelt = ProxyYaml::new(addr).extra("limits:\n  wrokers: 2\n");
    let explained = explain(&misspelt, &["http://shop.example/"]).await;
    assert_eq!(explained.code, Some(2), "{}", explained.all());
    assert!(explained.stderr.contains("limits.wrokers: unknown field"), "{}", explained.stderr);
    assert!(explained.stdout.is_empty());

    for (args, message) in [
        (vec!["/relative"], "give an absolute http:// or https:// URL"),
        (vec!["http://shop.example/", "--header", "no colon"], "expected 'Name: value'"),
        (vec!["http://shop.example/", "--cookie", "novalue"], "expected 'name=value'"),
    ] {
        let explained = explain(&ProxyYaml::new(addr), &args).await;
        assert_eq!(explained.code, Some(2), "{args:?}: {}", explained.all());
        assert_eq!(explained.stderr.lines().count(), 1, "{}", explained.stderr);
        assert!(explained.stderr.contains(message), "{args:?}: {}", explained.stderr);
    }
}

#[tokio::test]
async fn config_may_come_before_the_command_and_an_endless_stream_does_not_hold_explain() {
    let streams = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let held = std::sync::Arc::clone(&streams);
    let upstream = spawn_upstream(move |_| {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, BoxError>>(1);
        held.lock().unwrap().push(tx);
        async move {
            let body = ChannelBody(rx).boxed();
            http::Response::builder().header(header::CONTENT_TYPE, "text/event-stream").body(body).unwrap()
        }
    })
    .await;
    let config = TempPath::with_contents(&ProxyYaml::new(upstream.addr).to_string());
    let mut command = tokio::process::Command::new(binary());
    command.args(["--config", config.path(), "explain", "http://shop.example/events"]);
    let explained = run(command).await;
    assert_eq!(explained.code, Some(1), "{}", explained.all());
    assert_eq!(explained.line("response: s"), "response: skip=not_html");
    assert_eq!(streams.lock().unwrap().len(), 1, "the stream was still open");
}

/// `skip=` of a request's access line in the real binary's log (a text field: quoted).
fn access_skip(proxy: &mut ProxyProcess, path: &str) -> String {
    let line = proxy.wait_for_log(&format!("path={path} "));
    let at = line.find("skip=").unwrap_or_else(|| panic!("{line}")) + "skip=".len();
    line[at..].split_whitespace().next().unwrap().trim_matches('"').to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_skip_words_are_the_access_lines() {
    let upstream = spawn_upstream(|req| async move {
        match req.uri().path() {
            "/api" => respond(StatusCode::OK, "application/json", "{}"),
            _ => html(PAGE),
        }
    })
    .await;
    let yaml = ProxyYaml::new(upstream.addr);
    let mut proxy = ProxyProcess::start(&yaml.to_string(), &[]);
    let addr = proxy.addr;
    tokio::task::spawn_blocking(move || {
        for (path, extra) in [("/api", ""), ("/cart", "x-requested-with: XMLHttpRequest\r\n")] {
            let mut socket = std::net::TcpStream::connect(addr).unwrap();
            let request = format!("GET {path} HTTP/1.1\r\nhost: shop\r\n{extra}connection: close\r\n\r\n");
            socket.write_all(request.as_bytes()).unwrap();
            socket.read_to_end(&mut Vec::new()).unwrap();
        }
    })
    .await
    .unwrap();
    let api = explain(&yaml, &["http://shop/api"]).await;
    assert_eq!(api.line("response: s"), format!("response: skip={}", access_skip(&mut proxy, "/api")));
    let xhr = explain(&yaml, &["http://shop/cart", "--header", "X-Requested-With: XMLHttpRequest"]).await;
    assert_eq!(xhr.line("request:"), format!("request: skip={}", access_skip(&mut proxy, "/cart")));
}
