//! The widget across Turbo Drive and Turbolinks visits, in Chromium, with the real
//! libraries from npm (`tests/browser-assets/`, installed by its `install.sh`): Turbo 8,
//! Turbo 7 and Turbolinks 5, each through three visits by clicking its links, and Turbo
//! through a sign-out by a Turbo form. The proxy runs with its default
//! `inject.turbo_permanent: true`.
//!
//! The pages watch themselves: a head script (the same on every page, so neither library
//! runs it again) records every `<script>` element created through `createElement` — how
//! both libraries make a new body's scripts run — and every animation frame that shows
//! other than one `invent-assistant`. A body script of the page's own, `/control.js`, is
//! run again on every visit as usual, which shows that the record sees a script re-run.

use std::path::{Path, PathBuf};

use http::{Method, Response, StatusCode, header};
use serde_json::{Value, json};

use super::driver::{Browser, assert_no_errors, start_browser};
use super::{hmac_sha256_hex, site::USER_NAME};
use crate::support::tokens::{self, claims};
use crate::support::*;

/// The widget's script at `assistant.script_url`: counts its runs, keeps every element it
/// shows (connected to the document: Turbo also clones the element, for its page cache and
/// the old body, and clones of a defined element are constructed too, never shown), and
/// defines the element — a second run would throw (`NotSupportedError`) and show as a
/// page error.
const WIDGET_JS: &str = r#"window.__inventLoads = (window.__inventLoads || 0) + 1;
window.__inventShown = window.__inventShown || [];
customElements.define('invent-assistant', class extends HTMLElement {
  connectedCallback() {
    if (!window.__inventShown.includes(this)) window.__inventShown.push(this);
    Object.assign(this.style, { position: 'fixed', right: '24px', bottom: '24px', padding: '12px 18px',
      borderRadius: '24px', background: '#6366f1', color: '#fff', font: '15px/1.4 sans-serif' });
    this.textContent = 'Invent bubble · ' + (this.getAttribute('user-id') || 'anonymous');
  }
});"#;

/// A body script of the page's own: run on every load and every visit.
const CONTROL_JS: &str = "window.__controlRuns = (window.__controlRuns || 0) + 1;";

/// The page's watch, first in `<head>`: page errors, scripts created, frames without
/// exactly one widget (once the test starts the frame watch).
const WATCH: &str = r#"<script>
if (!window.__watching) {
  window.__watching = true;
  window.__errors = [];
  addEventListener('error', e => __errors.push(String(e.message)));
  window.__createdScripts = [];
  const create = Document.prototype.createElement;
  Document.prototype.createElement = function (name, ...rest) {
    const element = create.call(this, name, ...rest);
    if (String(name).toLowerCase() === 'script') __createdScripts.push(element);
    return element;
  };
  window.__badFrames = [];
  window.__watchFrames = () => (function frame() {
    const n = document.querySelectorAll('invent-assistant').length;
    if (n !== 1) __badFrames.push(n);
    requestAnimationFrame(frame);
  })();
}
</script>"#;

/// The libraries under test: the path prefix of their pages, the file served, and the
/// event each fires after a visit has rendered.
struct Library {
    name: &'static str,
    file: &'static str,
    load_event: &'static str,
    /// Submits forms as visits (Turbo does; Turbolinks leaves them to the browser).
    forms: bool,
}

const LIBRARIES: [Library; 3] = [
    Library { name: "turbo8", file: "@hotwired/turbo/dist/turbo.es2017-umd.js", load_event: "turbo:load", forms: true },
    Library { name: "turbo7", file: "turbo-7/dist/turbo.es2017-umd.js", load_event: "turbo:load", forms: true },
    Library { name: "turbolinks", file: "turbolinks/dist/turbolinks.js", load_event: "turbolinks:load", forms: false },
];

fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser-assets/node_modules")
}

/// The library's script, read from the npm install; failing (never skipping) without it.
fn library_js(library: &str) -> Vec<u8> {
    let Some(found) = LIBRARIES.iter().find(|l| l.name == library) else { return Vec::new() };
    let path = assets().join(found.file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run tests/browser-assets/install.sh)", path.display()))
}

/// Page `n` (1 to 3) of `library`: a link to the next, a sign-out form, the control script.
fn page(library: &str, n: u32) -> String {
    let next = n % 3 + 1;
    format!(
        "<!doctype html><html><head><title>Page {n}</title>{WATCH}<script src=\"/{library}.js\"></script></head>\
         <body><h1>Page {n}</h1><p><a id=\"next\" href=\"/{library}/{next}\">Page {next}</a></p>\
         <form method=\"post\" action=\"/{library}/signout\"><button id=\"signout\">Sign out</button></form>\
         <script src=\"/control.js\"></script></body></html>"
    )
}

fn redirect(to: &str, cookie: &str) -> Response<TestBody> {
    let mut response = respond(StatusCode::SEE_OTHER, "text/plain", "");
    response.headers_mut().insert(header::LOCATION, to.parse().unwrap());
    response.headers_mut().insert(header::SET_COOKIE, cookie.parse().unwrap());
    response
}

async fn spawn_site() -> Upstream {
    spawn_upstream(|req| async move {
        let path = req.uri().path().to_owned();
        let mut parts = path.trim_start_matches('/').splitn(2, '/');
        let (first, rest) = (parts.next().unwrap_or_default(), parts.next());
        let no_store = |mut response: Response<TestBody>| {
            response.headers_mut().insert(header::CACHE_CONTROL, "no-store".parse().unwrap());
            response
        };
        match (req.method(), first, rest) {
            (_, "widget.js", None) => no_store(respond(StatusCode::OK, "text/javascript", WIDGET_JS)),
            (_, "favicon.ico", None) => respond(StatusCode::NO_CONTENT, "image/x-icon", ""),
            (_, "control.js", None) => no_store(respond(StatusCode::OK, "text/javascript", CONTROL_JS)),
            (_, script, None) if script.ends_with(".js") => {
                respond(StatusCode::OK, "text/javascript", library_js(script.trim_end_matches(".js")))
            }
            (&Method::GET, library, Some("signin")) => {
                let claims = tokens::with(claims("user_42"), "name", USER_NAME);
                redirect(&format!("/{library}/1"), &format!("session={}; Path=/; HttpOnly", tokens::hs256(&claims)))
            }
            (&Method::POST, library, Some("signout")) => {
                redirect(&format!("/{library}/2"), "session=; Path=/; Max-Age=0")
            }
            (&Method::GET, library, Some(n)) if matches!(n, "1" | "2" | "3") => {
                respond(StatusCode::OK, "text/html; charset=utf-8", page(library, n.parse().unwrap_or(1)))
            }
            _ => respond(StatusCode::NOT_FOUND, "text/plain", "not here"),
        }
    })
    .await
}

/// The attributes of the page's one `invent-assistant`.
async fn widget_attributes(browser: &Browser) -> Value {
    let script = "const e = document.querySelector('invent-assistant'); \
                  return e && Object.fromEntries([...e.attributes].map(a => [a.name, a.value]))";
    browser.js(script).await
}

/// How many of the `<script>` elements created since the first page load have `src`.
async fn scripts_created(browser: &Browser, src: &str) -> Value {
    browser.js(&format!("return __createdScripts.filter(s => s.getAttribute('src') === '{src}').length")).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_widget_across_turbo_and_turbolinks_visits() {
    let site = spawn_site().await;
    let yaml = ProxyYaml::new(site.addr).identity(IdentityYaml::session()).script_url("/widget.js");
    let proxy = spawn_proxy(yaml).await;
    let base = format!("http://127.0.0.1:{}", proxy.local_addr().port());
    let browser = start_browser().await;
    for library in &LIBRARIES {
        three_visits_keep_the_first_widget(&browser, &base, library).await;
        if library.forms {
            signing_out_by_a_turbo_form_replaces_it(&browser, library).await;
        }
        assert_eq!(
            browser.js("return __badFrames").await,
            json!([]),
            "{}: every frame showed one widget",
            library.name
        );
        browser.screenshot(&format!("turbo-{}", library.name)).await;
    }
    browser.client.clone().close().await.unwrap();
}

/// Signs in (a full page load), then follows the links three times.
async fn three_visits_keep_the_first_widget(browser: &Browser, base: &str, library: &Library) {
    let name = library.name;
    browser.open(&format!("{base}/{name}/signin")).await;
    browser.until(&format!("return location.pathname === '/{name}/1'"), "signed in, on page 1").await;
    browser.until("return window.__inventLoads === 1 && window.__inventShown.length === 1", name).await;
    let first = widget_attributes(browser).await;
    let hash = hmac_sha256_hex(SECRET_KEY, "user_42");
    for (attribute, value) in [("user-id", "user_42"), ("user-hash", &hash), ("data-turbo-permanent", "")] {
        assert_eq!(first[attribute], json!(value), "{name}: {attribute} in {first}");
    }
    assert!(first["id"].as_str().is_some_and(|id| id.starts_with("invent-assistant-")), "{name}: {first}");
    // Set now, kept only while no full page load happens.
    let marks = format!(
        "window.__firstLoad = true; window.__first = document.querySelector('invent-assistant'); \
         window.__visits = 0; document.addEventListener('{}', () => __visits++); __watchFrames();",
        library.load_event
    );
    browser.js(&marks).await;

    for (visit, page) in [(1, 2), (2, 3), (3, 1)] {
        browser.click("#next").await;
        let arrived = format!(
            "return location.pathname === '/{name}/{page}' && document.querySelector('h1').textContent === \
             'Page {page}' && window.__visits === {visit} && window.__controlRuns >= {}",
            visit + 1
        );
        let what = format!("{name}: visit {visit} to page {page}");
        browser.until(&arrived, &what).await;
        assert_eq!(browser.js("return window.__firstLoad === true").await, json!(true), "{what}: not a full load");
        // At least once a visit: the page cached on the way out is shown first, as a preview,
        // when it is visited again, and its scripts run for that render too.
        let reruns = scripts_created(browser, "/control.js").await.as_i64().unwrap_or(0);
        assert!(reruns >= visit, "{what}: the page's script re-run {reruns} times");
        assert_eq!(scripts_created(browser, "/widget.js").await, json!(0), "{what}: the widget's not re-run");
        let same = "return document.querySelectorAll('invent-assistant').length === 1 && \
                    document.querySelector('invent-assistant') === window.__first";
        assert_eq!(browser.js(same).await, json!(true), "{what}: one widget, the first page's element");
        assert_eq!(widget_attributes(browser).await, first, "{what}: the first page's attributes");
        let ran = "return [window.__inventLoads, window.__inventShown.length]";
        assert_eq!(browser.js(ran).await, json!([1, 1]), "{what}: the script ran once, one element shown");
        assert_no_errors(browser, &what).await;
    }
}

/// Signs out through the page's form: Turbo submits it, follows the redirect and renders
/// the next page as a visit. The new identity's element replaces the first page's, built
/// by the script loaded at the start.
async fn signing_out_by_a_turbo_form_replaces_it(browser: &Browser, library: &Library) {
    let name = library.name;
    browser.click("#signout").await;
    let arrived = format!("return location.pathname === '/{name}/2' && window.__visits === 4");
    let what = format!("{name}: signed out by a Turbo form");
    browser.until(&arrived, &what).await;
    assert_eq!(browser.js("return window.__firstLoad === true").await, json!(true), "{what}: not a full load");
    let replaced = "return document.querySelectorAll('invent-assistant').length === 1 && \
                    document.querySelector('invent-assistant') !== window.__first";
    assert_eq!(browser.js(replaced).await, json!(true), "{what}: one widget, a new element");
    let attributes = widget_attributes(browser).await;
    assert_eq!(attributes["id"], json!("invent-assistant"), "{what}: {attributes}");
    assert!(attributes.get("user-id").is_none() && attributes.get("user-hash").is_none(), "{what}: {attributes}");
    let shown = "return window.__inventShown.length === 2 && \
                 window.__inventShown[1] === document.querySelector('invent-assistant')";
    browser.until(shown, &format!("{what}: the new element is upgraded and shown")).await;
    assert_eq!(browser.js("return window.__inventLoads").await, json!(1), "{what}: the script still ran once");
    assert_eq!(scripts_created(browser, "/widget.js").await, json!(0), "{what}: the widget's not re-run");
    assert_no_errors(browser, &what).await;
}
