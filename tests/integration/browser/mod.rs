//! The widget in a real browser: headless Chromium driven through chromedriver (WebDriver),
//! against the real proxy in front of a real test site on loopback. Run with
//! `cargo test --features browser-tests browser` (needs `chromium` and `chromium-driver`).
//! Each scenario saves a screenshot under `target/browser/`.

mod site;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};

use crate::support::*;

/// chromedriver and the browser session it runs; both end when dropped.
struct Browser {
    client: Client,
    driver: Child,
    _profile: tempdir::Dir,
}

mod tempdir {
    /// A fresh directory, removed when dropped: the browser's profile.
    pub struct Dir(pub std::path::PathBuf);

    impl Dir {
        pub fn new(tag: u16) -> Dir {
            let path = std::env::temp_dir().join(format!("invent-proxy-browser-{}-{tag}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            Dir(path)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

async fn start_browser() -> Browser {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let driver = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver (apt-get install chromium-driver)");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let profile = tempdir::Dir::new(port);
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
    let client = ClientBuilder::rustls()
        .unwrap()
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a Chromium session");
    Browser { client, driver, _profile: profile }
}

impl Browser {
    async fn open(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("{url}: {e}"));
        // The widget's script is async: wait until the page has settled.
        for _ in 0..50 {
            if self.js("return document.readyState === 'complete'").await == json!(true) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn js(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// Waits (up to 5 s) until `script` returns true.
    async fn until(&self, script: &str, what: &str) {
        for _ in 0..250 {
            if self.js(script).await == json!(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{what}: never true: {script}");
    }

    /// What the stub `button.js` saw: each `invent-assistant` it upgraded, with its
    /// attributes, and how many times the script ran.
    async fn widgets(&self) -> (Vec<Value>, i64) {
        let seen = self.js("return window.__invent || []").await;
        let runs = self.js("return window.__inventRuns || 0").await;
        (seen.as_array().cloned().unwrap_or_default(), runs.as_i64().unwrap_or(0))
    }

    async fn screenshot(&self, name: &str) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser");
        std::fs::create_dir_all(&dir).unwrap();
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Errors the page reported (its own `error` listener, set before anything else runs).
    async fn page_errors(&self) -> Value {
        self.js("return window.__errors || []").await
    }
}

/// One widget with exactly these attributes, its script run once, no page error.
async fn assert_one_widget(browser: &Browser, scenario: &str, want: &[(&str, &str)], absent: &[&str]) {
    browser.until("return (window.__invent || []).length > 0", scenario).await;
    let (seen, runs) = browser.widgets().await;
    assert_eq!(seen.len(), 1, "{scenario}: one element upgraded: {seen:?}");
    assert_eq!(runs, 1, "{scenario}: the script ran once");
    let count = browser.js("return document.querySelectorAll('invent-assistant').length").await;
    assert_eq!(count, json!(1), "{scenario}: one element in the live DOM");
    for (name, value) in want {
        assert_eq!(seen[0][name], json!(value), "{scenario}: {name} in {seen:?}");
    }
    for name in absent {
        assert!(seen[0].get(name).is_none(), "{scenario}: no {name} in {seen:?}");
    }
    assert_eq!(browser.page_errors().await, json!([]), "{scenario}: no page errors");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_widget_in_chromium() {
    let site = site::spawn().await;
    let yaml = proxy_yaml(site.addr, &identity_yaml())
        .replace("  id: ast_test\n", "  id: ast_test\n  script_url: /button.js\n  theme: { appearance: dark }\n");
    let proxy = spawn_proxy(&yaml).await;
    let base = format!("http://127.0.0.1:{}", proxy.local_addr().port());
    let browser = start_browser().await;

    browser.open(&format!("{base}/")).await;
    assert_one_widget(
        &browser,
        "anonymous",
        &[("assistant-id", "ast_test"), ("theme-appearance", "dark")],
        &["user-id", "user-hash"],
    )
    .await;
    assert_eq!(browser.js("return window.pageScriptRan === true").await, json!(true), "the page's own script ran");
    browser.screenshot("anonymous").await;

    browser.open(&format!("{base}/login")).await;
    browser.client.find(fantoccini::Locator::Css("button")).await.unwrap().click().await.unwrap();
    browser.until("return location.pathname === '/account'", "logged in").await;
    browser.until("return document.readyState === 'complete'", "account page").await;
    let hash = invent_proxy::identity::user_hash(SECRET_KEY, "user_42");
    assert_one_widget(
        &browser,
        "signed in",
        &[
            ("user-id", "user_42"),
            ("user-hash", hash.as_str()),
            ("user-name", "Zoë \"<Admin>\""),
            ("assistant-id", "ast_test"),
        ],
        &[],
    )
    .await;
    browser.screenshot("signed-in").await;

    browser.open(&format!("{base}/logout")).await;
    browser.open(&format!("{base}/")).await;
    assert_one_widget(&browser, "logged out", &[("assistant-id", "ast_test")], &["user-id", "user-hash"]).await;
    browser.screenshot("logged-out").await;

    browser.open(&format!("{base}/existing")).await;
    assert_one_widget(&browser, "page with the element already", &[("assistant-id", "ast_test")], &[]).await;
    browser.screenshot("existing-element").await;

    browser.open(&format!("{base}/gzip")).await;
    assert_one_widget(&browser, "gzip page", &[("assistant-id", "ast_test")], &[]).await;
    browser.screenshot("gzip").await;

    browser.open(&format!("{base}/latin1")).await;
    assert_one_widget(&browser, "windows-1252 page", &[("assistant-id", "ast_test")], &[]).await;
    let text = browser.js("return document.querySelector('h1').textContent").await;
    assert_eq!(text, json!("Café déjà vu"), "accented text renders unchanged");
    browser.screenshot("windows-1252").await;

    browser.open(&format!("{base}/csp")).await;
    assert_one_widget(&browser, "strict CSP with a nonce", &[("assistant-id", "ast_test")], &[]).await;
    assert_eq!(browser.js("return window.__violations").await, json!([]), "no CSP violation");
    browser.screenshot("csp-nonce").await;

    browser.open(&format!("{base}/frame")).await;
    assert_one_widget(&browser, "page with an iframe", &[("assistant-id", "ast_test")], &[]).await;
    browser.until("return window.__fetched !== undefined", "fetch of a fragment").await;
    assert_eq!(
        browser.js("return window.__fetched.includes('invent-assistant')").await,
        json!(false),
        "a fetched fragment is not injected"
    );
    let framed = "const d = document.querySelector('iframe').contentDocument; return d && d.readyState === 'complete' && d.body.textContent.includes('fragment')";
    browser.until(framed, "iframe loaded").await;
    let in_frame = browser
        .js("return document.querySelector('iframe').contentDocument.querySelectorAll('invent-assistant').length")
        .await;
    assert_eq!(in_frame, json!(0), "the iframe's document gets no widget");
    browser.screenshot("iframe-and-fetch").await;

    browser.open(&format!("{base}/chat")).await;
    assert_one_widget(&browser, "WebSocket page", &[("assistant-id", "ast_test")], &[]).await;
    browser.until("return window.__echo === 'hello through the proxy'", "the WebSocket echoes").await;
    browser.screenshot("websocket").await;

    browser.client.clone().close().await.unwrap();
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
    browser.screenshot("demo").await;
    browser.client.clone().close().await.unwrap();
    let _ = demo.kill();
    let _ = demo.wait();
    drop(lines);
}
