//! Headless Chromium through chromedriver: a fresh profile per session, the flags a closed
//! network needs, the browser's console log read through chromedriver's log endpoint,
//! and screenshots saved under `target/browser/`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};

/// chromedriver and the browser session it runs; both end when dropped.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: Profile,
}

/// A fresh directory for the browser's profile, removed when dropped.
struct Profile(std::path::PathBuf);

impl Profile {
    fn new(tag: u16) -> Profile {
        let path = std::env::temp_dir().join(format!("invent-proxy-browser-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Profile(path)
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// chromedriver's own log endpoint (`POST /session/{id}/se/log`): the entries of one log
/// type since the last read. WebDriver has no standard command for it.
#[derive(Debug)]
struct ReadLog(&'static str);

impl WebDriverCompatibleCommand for ReadLog {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/se/log", session_id.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(json!({ "type": self.0 }).to_string()))
    }
}

/// Starts chromedriver on a free port and a headless Chromium session with a fresh
/// profile. Panics (failing the test, never skipping it) if either is missing.
pub async fn start_browser() -> Browser {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let driver = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver is not installed (apt-get install chromium-driver)");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let profile = Profile::new(port);
    let options = json!({
        "binary": "/usr/bin/chromium",
        "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run", "--disable-sync", "--window-size=1024,768",
            format!("--user-data-dir={}", profile.0.display()),
        ],
    });
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".into(), options);
    // Everything the page's console shows, failed loads and CSP refusals included.
    capabilities.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
    let client = ClientBuilder::rustls()
        .unwrap()
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("no Chromium session (apt-get install chromium)");
    Browser { client, driver, _profile: profile }
}

impl Browser {
    /// Navigates to `url` and waits until the page has loaded.
    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("{url}: {e}"));
        self.until("return document.readyState === 'complete'", url).await;
    }

    pub async fn js(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// Waits (up to 5 s) until `script` returns true.
    pub async fn until(&self, script: &str, what: &str) {
        for _ in 0..250 {
            if self.js(script).await == json!(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{what}: never true: {script}");
    }

    /// Clicks the element `css` selects.
    pub async fn click(&self, css: &str) {
        let element = self.client.find(fantoccini::Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
        element.click().await.unwrap_or_else(|e| panic!("{css}: {e}"));
    }

    /// What the stub `button.js` saw: each `invent-assistant` it upgraded, with its
    /// attributes, and how many times the script ran.
    pub async fn widgets(&self) -> (Vec<Value>, i64) {
        let seen = self.js("return window.__invent || []").await;
        let runs = self.js("return window.__inventRuns || 0").await;
        (seen.as_array().cloned().unwrap_or_default(), runs.as_i64().unwrap_or(0))
    }

    /// Saves what the browser shows as `target/browser/NAME.png`.
    pub async fn screenshot(&self, name: &str) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser");
        std::fs::create_dir_all(&dir).unwrap();
        let png = self.client.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{name}: a PNG screenshot");
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// The browser console's entries since the last read, as `LEVEL message`.
    pub async fn console(&self) -> Vec<String> {
        let entries = self.client.issue_cmd(ReadLog("browser")).await.expect("chromedriver's browser log");
        let entries = entries.as_array().cloned().unwrap_or_default();
        entries.iter().map(|e| format!("{} {}", e["level"].as_str().unwrap_or("?"), e["message"])).collect()
    }

    /// The console's errors since the last read: script errors, failed loads, CSP refusals.
    pub async fn console_errors(&self) -> Vec<String> {
        self.console().await.into_iter().filter(|e| e.starts_with("SEVERE")).collect()
    }

    /// Errors the page's own `error` listener caught (set before anything else runs).
    pub async fn page_errors(&self) -> Value {
        self.js("return window.__errors || []").await
    }
}

/// One widget with exactly these attributes and none of `absent`, its script run once,
/// and neither a page error nor a console error.
pub async fn assert_one_widget(browser: &Browser, scenario: &str, want: &[(&str, &str)], absent: &[&str]) {
    browser.until("return (window.__invent || []).length > 0", scenario).await;
    // A second run of the script or a second element would show up within this pause.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (seen, runs) = browser.widgets().await;
    assert_eq!(seen.len(), 1, "{scenario}: one element upgraded: {seen:?}");
    assert_eq!(runs, 1, "{scenario}: the script ran once");
    let count = browser.js("return document.querySelectorAll('invent-assistant').length").await;
    assert_eq!(count, json!(1), "{scenario}: one element in the live DOM");
    let scripts = browser.js("return document.querySelectorAll('script[src=\"/button.js\"]').length").await;
    assert_eq!(scripts, json!(1), "{scenario}: one script tag");
    for (name, value) in want {
        assert_eq!(seen[0][name], json!(value), "{scenario}: {name} in {seen:?}");
    }
    for name in absent {
        assert!(seen[0].get(name).is_none(), "{scenario}: no {name} in {seen:?}");
    }
    let bubble = browser.js("return getComputedStyle(document.querySelector('invent-assistant')).position").await;
    assert_eq!(bubble, json!("fixed"), "{scenario}: the stub drew its bubble");
    assert_no_errors(browser, scenario).await;
}

/// Neither the page's `error` listener nor the browser console has an error.
pub async fn assert_no_errors(browser: &Browser, scenario: &str) {
    assert_eq!(browser.page_errors().await, json!([]), "{scenario}: no page errors");
    assert_eq!(browser.console_errors().await, Vec::<String>::new(), "{scenario}: no console errors");
}
