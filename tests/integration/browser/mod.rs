//! The widget in a real browser: headless Chromium driven through chromedriver (WebDriver),
//! against the real proxy in front of a real test site on loopback. Run with
//! `cargo test --features browser-tests --test integration browser::` (needs `chromium`
//! and `chromium-driver`). Each scenario saves a screenshot under `target/browser/`.

mod driver;
mod site;
mod turbo;

use std::process::Stdio;

use serde_json::json;

use crate::support::*;
use driver::{Browser, assert_no_errors, assert_one_widget, start_browser};

/// What an anonymous visitor's widget must not carry.
const IDENTITY_ATTRIBUTES: [&str; 4] = ["user-id", "user-hash", "user-name", "user-avatar"];

/// The `user-hash` the spec defines, computed here rather than by the proxy's own code:
/// lowercase hex HMAC-SHA256 of the user id, keyed with the assistant's secret key.
fn hmac_sha256_hex(key: &str, user_id: &str) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(user_id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The proxy in front of the test site, its widget script the site's stub `button.js`.
async fn proxy_for(site: &Upstream) -> invent_proxy::RunningProxy {
    let yaml =
        ProxyYaml::new(site.addr).identity(IdentityYaml::session()).script_url("/button.js").theme_appearance("dark");
    spawn_proxy(yaml).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_widget_in_chromium() {
    let site = site::spawn().await;
    let proxy = proxy_for(&site).await;
    let base = format!("http://127.0.0.1:{}", proxy.local_addr().port());
    let browser = start_browser().await;

    anonymous_sign_in_and_out(&browser, &base).await;
    pages_of_every_kind(&browser, &base).await;
    frames_and_fetches(&browser, &base).await;
    websocket(&browser, &base).await;
    the_error_checks_can_fail(&browser, &base).await;

    browser.client.clone().close().await.unwrap();
}

async fn anonymous_sign_in_and_out(browser: &Browser, base: &str) {
    browser.open(&format!("{base}/")).await;
    let anonymous = [("assistant-id", "ast_test"), ("theme-appearance", "dark")];
    assert_one_widget(browser, "anonymous", &anonymous, &IDENTITY_ATTRIBUTES).await;
    assert_eq!(browser.js("return window.pageScriptRan === true").await, json!(true), "the page's own script ran");
    browser.screenshot("anonymous").await;

    // Sign in through the site's own form: the browser, not the test, holds the cookie.
    browser.open(&format!("{base}/login")).await;
    browser.click("button").await;
    browser.until("return location.pathname === '/account'", "signed in").await;
    browser.until("return document.readyState === 'complete'", "account page").await;
    let hash = hmac_sha256_hex(SECRET_KEY, "user_42");
    let signed_in = [
        ("user-id", "user_42"),
        ("user-hash", hash.as_str()),
        ("user-name", site::USER_NAME),
        ("user-avatar", site::USER_AVATAR),
        ("assistant-id", "ast_test"),
    ];
    assert_one_widget(browser, "signed in", &signed_in, &[]).await;
    let shown = browser.js("return document.querySelector('invent-assistant').textContent").await;
    assert!(shown.as_str().unwrap_or_default().contains("Zoë \"<Admin>\""), "the name is text, not markup: {shown}");
    browser.screenshot("signed-in").await;

    browser.open(&format!("{base}/logout")).await;
    browser.open(&format!("{base}/")).await;
    assert_one_widget(browser, "signed out", &anonymous, &IDENTITY_ATTRIBUTES).await;
    browser.screenshot("signed-out").await;
}

async fn pages_of_every_kind(browser: &Browser, base: &str) {
    browser.open(&format!("{base}/existing")).await;
    assert_one_widget(browser, "page with the element already", &[("assistant-id", "ast_test")], &[]).await;
    browser.screenshot("existing-element").await;

    browser.open(&format!("{base}/gzip")).await;
    assert_one_widget(browser, "gzip page", &[("assistant-id", "ast_test")], &[]).await;
    let text = browser.js("return document.body.textContent").await;
    assert!(text.as_str().unwrap_or_default().contains("compressed again."), "the gzip page's text: {text}");
    browser.screenshot("gzip").await;

    browser.open(&format!("{base}/latin1")).await;
    assert_one_widget(browser, "windows-1252 page", &[("assistant-id", "ast_test")], &[]).await;
    let text = browser.js("return document.querySelector('h1').textContent").await;
    assert_eq!(text, json!("Café déjà vu"), "accented text renders unchanged");
    browser.screenshot("windows-1252").await;

    browser.open(&format!("{base}/csp")).await;
    assert_one_widget(browser, "strict CSP with a nonce", &[("assistant-id", "ast_test")], &[]).await;
    assert_eq!(browser.js("return window.__violations").await, json!([]), "no CSP violation");
    browser.screenshot("csp-nonce").await;
}

async fn frames_and_fetches(browser: &Browser, base: &str) {
    browser.open(&format!("{base}/frame")).await;
    assert_one_widget(browser, "page with an iframe", &[("assistant-id", "ast_test")], &[]).await;
    browser.until("return window.__fetched !== undefined && window.__xhr !== undefined", "fetch and XHR").await;
    let fetched = browser.js("return [window.__fetched, window.__xhr]").await;
    assert_eq!(fetched[0], json!("<p>fragment</p>"), "a fetched fragment arrives unchanged");
    let xhr = fetched[1].as_str().unwrap_or_default();
    assert!(
        xhr.contains("inside the frame") && !xhr.contains("invent-assistant"),
        "an XHR'd page is not injected: {xhr}"
    );
    let framed = "const d = document.querySelector('iframe').contentDocument; \
                  return !!d && d.readyState === 'complete' && d.body.textContent.includes('inside the frame')";
    browser.until(framed, "the iframe loaded").await;
    let in_frame = browser
        .js("return document.querySelector('iframe').contentDocument.querySelectorAll('invent-assistant').length")
        .await;
    assert_eq!(in_frame, json!(0), "the iframe's document gets no widget");
    assert_no_errors(browser, "page with an iframe").await;
    browser.screenshot("iframe-and-fetch").await;
}

async fn websocket(browser: &Browser, base: &str) {
    browser.open(&format!("{base}/chat")).await;
    assert_one_widget(browser, "WebSocket page", &[("assistant-id", "ast_test")], &[]).await;
    browser.until("return window.__echo === 'hello through the proxy'", "the WebSocket echoes").await;
    assert_no_errors(browser, "WebSocket page").await;
    browser.screenshot("websocket").await;
}

/// A control page with a script that fails to load and one the CSP refuses: the checks
/// that every other scenario passes must see both.
async fn the_error_checks_can_fail(browser: &Browser, base: &str) {
    browser.open(&format!("{base}/broken")).await;
    browser.until("return window.__violations.length > 0", "the refused script is reported").await;
    let errors = browser.console_errors().await.join("\n");
    assert!(errors.contains("missing.js"), "the console shows the failed load: {errors}");
    assert!(errors.contains("Content Security Policy"), "the console shows the CSP refusal: {errors}");
    assert_eq!(browser.js("return window.refused === undefined").await, json!(true), "the refused script did not run");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_in_chromium() {
    let mut demo = std::process::Command::new(binary())
        .args(["demo", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kept open until the end: a closed pipe would end the demo on its next line.
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(demo.stdout.take().unwrap()));
    let url = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            let word = l.split_whitespace().find(|w| w.starts_with("http://127.0.0.1:"));
            word.filter(|_| l.contains("open this")).map(str::to_owned)
        })
        .expect("the demo prints where to open it");
    let browser = start_browser().await;
    browser.open(&url).await;
    browser.until("return document.querySelectorAll('invent-assistant').length === 1", "the demo's widget").await;
    let created = browser.js("return window.__inventDemo && window.__inventDemo.created").await;
    assert_eq!(created.as_array().map(Vec::len), Some(1), "the demo's button.js ran and built one widget: {created}");
    assert!(created[0]["assistant-id"].as_str().is_some_and(|id| !id.is_empty()), "{created}");
    assert!(created[0].get("user-id").is_none(), "a first visit is anonymous: {created}");
    assert_no_errors(&browser, "demo").await;
    browser.screenshot("demo").await;
    browser.client.clone().close().await.unwrap();
    let _ = demo.kill();
    let _ = demo.wait();
    drop(lines);
}
