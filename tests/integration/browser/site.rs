//! The test site behind the proxy in the browser tests: pages for each scenario, a login
//! that sets the session cookie, and the stub `button.js`.

use std::io::Write;

use bytes::Bytes;
use http::{Method, Response, StatusCode, header};

use crate::support::tokens::{self, claims};
use crate::support::*;

/// The signed-in user's display name: markup in it must stay text.
pub const USER_NAME: &str = "Zoë \"<Admin>\"";
/// The signed-in user's avatar.
pub const USER_AVATAR: &str = "https://avatars.example/zoe.png";

/// Collects page errors before anything else runs.
const ERRORS: &str =
    "<script>window.__errors=[];addEventListener('error',e=>__errors.push(String(e.message)))</script>";

/// Collects CSP violations the page reports.
const VIOLATIONS: &str = "<script>window.__violations=[];\
document.addEventListener('securitypolicyviolation',e=>__violations.push(e.violatedDirective))</script>";

/// Stands in for the real widget: defines the element, records what it was given, and
/// draws a bubble in the bottom-right corner showing it (through the CSSOM, which a strict
/// CSP allows, unlike a `style` attribute).
const BUTTON_JS: &str = r#"window.__inventRuns = (window.__inventRuns || 0) + 1;
customElements.define('invent-assistant', class extends HTMLElement {
  connectedCallback() {
    const seen = {};
    for (const a of this.attributes) seen[a.name] = a.value;
    (window.__invent = window.__invent || []).push(seen);
    Object.assign(this.style, {
      position: 'fixed', right: '24px', bottom: '24px', padding: '12px 18px', borderRadius: '24px',
      background: seen['theme-button-background-color'] || '#6366f1', color: seen['theme-button-color'] || '#fff',
      font: '15px/1.4 sans-serif', whiteSpace: 'pre', boxShadow: '0 4px 14px rgba(0,0,0,.3)',
    });
    const who = seen['user-id'] ? 'user-id ' + seen['user-id'] + ' · ' + (seen['user-name'] || '') : 'anonymous';
    this.textContent = 'Invent bubble · ' + seen['assistant-id'] + '\n' + who;
  }
});"#;

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html><head><title>{title}</title>{ERRORS}</head><body><h1>{title}</h1>{body}</body></html>"
    )
}

fn with(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<TestBody> {
    respond(status, content_type, body)
}

/// Accepts a WebSocket upgrade and echoes every text or binary message.
fn echo_websocket(mut req: hyper::Request<hyper::body::Incoming>) -> Response<TestBody> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
    use tokio_tungstenite::tungstenite::protocol::Role;
    let key = req.headers().get("sec-websocket-key").map(|k| derive_accept_key(k.as_bytes())).unwrap_or_default();
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let io = hyper_util::rt::TokioIo::new(upgraded);
        let mut socket = tokio_tungstenite::WebSocketStream::from_raw_socket(io, Role::Server, None).await;
        while let Some(Ok(message)) = socket.next().await {
            if (message.is_text() || message.is_binary()) && socket.send(message).await.is_err() {
                break;
            }
        }
    });
    let mut response = with(StatusCode::SWITCHING_PROTOCOLS, "text/plain", "");
    let headers = response.headers_mut();
    headers.remove(header::CONTENT_TYPE);
    headers.insert(header::UPGRADE, "websocket".parse().unwrap());
    headers.insert(header::CONNECTION, "Upgrade".parse().unwrap());
    headers.insert("sec-websocket-accept", key.parse().unwrap());
    response
}

/// A page under `policy` whose scripts carry the nonce `r4nd0m`, plus `body`.
fn strict(title: &str, policy: &str, body: &str) -> Response<TestBody> {
    let nonced = |script: &str| script.replace("<script>", "<script nonce=\"r4nd0m\">");
    let html = format!(
        "<!doctype html><html><head><title>{title}</title>{}{}</head><body><h1>{title}</h1>{body}</body></html>",
        nonced(ERRORS),
        nonced(VIOLATIONS)
    );
    let mut response = with(StatusCode::OK, "text/html; charset=utf-8", html);
    response.headers_mut().insert("content-security-policy", policy.parse().unwrap());
    response
}

const STRICT_POLICY: &str = "default-src 'self'; script-src 'nonce-r4nd0m'; object-src 'none'";

pub async fn spawn() -> Upstream {
    spawn_upstream(|req| async move {
        let html_type = "text/html; charset=utf-8";
        match (req.method(), req.uri().path()) {
            (_, "/button.js") => with(StatusCode::OK, "text/javascript", BUTTON_JS),
            (_, "/missing.js") => with(StatusCode::NOT_FOUND, "text/plain", "no such script"),
            (&Method::POST, "/login") => {
                let mut response = with(StatusCode::SEE_OTHER, html_type, "");
                let claims = tokens::with(tokens::with(claims("user_42"), "name", USER_NAME), "picture", USER_AVATAR);
                let cookie = format!("session={}; Path=/; HttpOnly", tokens::hs256(&claims));
                response.headers_mut().insert(header::SET_COOKIE, cookie.parse().unwrap());
                response.headers_mut().insert(header::LOCATION, "/account".parse().unwrap());
                response
            }
            (_, "/login") => with(
                StatusCode::OK,
                html_type,
                page("Sign in", "<form method=post action=/login><button>Sign in</button></form>"),
            ),
            (_, "/logout") => {
                let mut response = with(StatusCode::OK, html_type, page("Signed out", ""));
                response.headers_mut().insert(header::SET_COOKIE, "session=; Path=/; Max-Age=0".parse().unwrap());
                response
            }
            (_, "/account") => with(StatusCode::OK, html_type, page("Your account", "<p>Welcome back</p>")),
            (_, "/existing") => with(
                StatusCode::OK,
                html_type,
                page("Own widget", "<invent-assistant assistant-id=\"ast_test\"></invent-assistant>"),
            ),
            (_, "/gzip") => {
                let text = "<p>This page travels gzip-compressed, and is decoded, rewritten and compressed again.</p>";
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                gz.write_all(page("Compressed", &text.repeat(40)).as_bytes()).unwrap();
                let mut response = with(StatusCode::OK, html_type, gz.finish().unwrap());
                response.headers_mut().insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
                response
            }
            (_, "/latin1") => {
                let text = page("Café déjà vu", "<p>Crème brûlée</p>");
                let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(&text);
                with(StatusCode::OK, "text/html; charset=windows-1252", bytes.into_owned())
            }
            (_, "/csp") => strict("Strict", STRICT_POLICY, "<p>Only scripts with the nonce run here.</p>"),
            // The control page: a script that fails to load and one the policy refuses.
            (_, "/broken") => strict(
                "Broken on purpose",
                STRICT_POLICY,
                "<script nonce=\"r4nd0m\" src=\"/missing.js\"></script><script>window.refused = false</script>",
            ),
            (_, "/frame") => with(
                StatusCode::OK,
                html_type,
                page(
                    "Frames",
                    "<iframe src=\"/framed\"></iframe><script>\
                     fetch('/fragment').then(r => r.text()).then(t => window.__fetched = t);\
                     const x = new XMLHttpRequest(); x.open('GET', '/framed');\
                     x.onload = () => window.__xhr = x.responseText; x.send();</script>",
                ),
            ),
            // A whole page, loaded in a frame and by XHR: neither is a top-level navigation.
            (_, "/framed") => with(StatusCode::OK, html_type, page("Framed page", "<p>inside the frame</p>")),
            (_, "/fragment") => with(StatusCode::OK, html_type, "<p>fragment</p>"),
            (_, "/ws") => echo_websocket(req),
            (_, "/chat") => with(
                StatusCode::OK,
                html_type,
                page(
                    "Chat",
                    "<script>const ws = new WebSocket('ws://' + location.host + '/ws');\
                     ws.onopen = () => ws.send('hello through the proxy');\
                     ws.onmessage = m => window.__echo = m.data;</script>",
                ),
            ),
            _ => with(StatusCode::OK, html_type, page("Shop", "<script>window.pageScriptRan = true;</script>")),
        }
    })
    .await
}
