//! The demo's sample "legacy" site: server-rendered pages, a JSON endpoint, a page with
//! no `</body>`, and a login that sets a signed session cookie. It knows nothing of Invent.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::json;

use super::{DEMO_SCRIPT_PATH, DEMO_SESSION_COOKIE, DEMO_SESSION_SECRET, DEMO_USER_ID, DEMO_USER_NAME};
use crate::identity::session_cookie;
use crate::listen::{self, StartError};

const BUTTON_JS: &str = include_str!("button.js");
const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;\
line-height:1.5;color:#1f2937}nav a{margin-right:1rem}header{border-bottom:1px solid #e5e7eb;margin-bottom:1rem}";

/// The site, serving on a loopback port until shut down.
pub(super) struct RunningSite {
    local_addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl RunningSite {
    pub(super) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub(super) fn shutdown(self) {
        self.task.abort();
    }
}

pub(super) async fn start() -> Result<RunningSite, StartError> {
    let addr = SocketAddr::from(([127, 0, 0, 1], 0));
    let listener = listen::bind(addr, "demo site").await?;
    let local_addr = listener.local_addr().map_err(|source| StartError::Bind { key: "demo site", addr, source })?;
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = service_fn(|req| async move { Ok::<_, Infallible>(route(&req)) });
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    Ok(RunningSite { local_addr, task })
}

fn route(req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let user = signed_in_user(req);
    match req.uri().path() {
        "/" => html(StatusCode::OK, &home(user.as_deref())),
        "/account" => html(StatusCode::OK, &account(user.as_deref())),
        "/legacy" => html(StatusCode::OK, LEGACY_PAGE),
        "/api/status" => respond(
            StatusCode::OK,
            "application/json",
            json!({"status": "ok", "signed_in": user.is_some()}).to_string(),
        ),
        "/login" => redirect("/account", &session_cookie_header(&mint_session())),
        "/logout" => redirect("/", &format!("{DEMO_SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax")),
        // Browsers ask for it on every first visit; a 404 would be the console's only error.
        "/favicon.ico" => respond(StatusCode::OK, "image/svg+xml", FAVICON.to_owned()),
        DEMO_SCRIPT_PATH => respond(StatusCode::OK, "text/javascript; charset=utf-8", BUTTON_JS.to_owned()),
        _ => html(StatusCode::NOT_FOUND, &layout("Not found", "<p>There is no such page.</p>", None)),
    }
}

/// The site's own view of its session: it verifies the cookie it signed.
fn signed_in_user(req: &Request<Incoming>) -> Option<String> {
    let token = session_cookie(req.headers(), DEMO_SESSION_COOKIE)?;
    let key = jsonwebtoken::DecodingKey::from_secret(DEMO_SESSION_SECRET.as_bytes());
    let data = jsonwebtoken::decode::<serde_json::Value>(&token, &key, &jsonwebtoken::Validation::default()).ok()?;
    data.claims.get("name")?.as_str().map(str::to_owned)
}

fn mint_session() -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = json!({"sub": DEMO_USER_ID, "name": DEMO_USER_NAME, "iat": now, "exp": now + 3600});
    let key = EncodingKey::from_secret(DEMO_SESSION_SECRET.as_bytes());
    // HS256 over a JSON object cannot fail to sign.
    encode(&Header::default(), &claims, &key).unwrap_or_default()
}

fn session_cookie_header(token: &str) -> String {
    format!("{DEMO_SESSION_COOKIE}={token}; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax")
}

fn home(user: Option<&str>) -> String {
    let body = "<p>Welcome to Acme's shop, a site from 2009 that nobody wants to touch. Its pages are \
        rendered on the server and know nothing about Invent.</p>\
        <p>invent-proxy sits in front of it and adds the Invent bubble to every page, on the way to \
        your browser. Look at the bottom-right corner.</p>\
        <ul><li><a href=\"/account\">Your account</a> — sign in to see the bubble recognise you</li>\
        <li><a href=\"/legacy\">An old page with no closing body tag</a></li>\
        <li><a href=\"/api/status\">A JSON endpoint</a> — passed through untouched</li></ul>";
    layout("Acme Shop", body, user)
}

fn account(user: Option<&str>) -> String {
    let body = match user {
        Some(name) => format!(
            "<p>You are signed in as <strong>{name}</strong> (user {DEMO_USER_ID}). The site keeps its session \
             in a signed JWT cookie; invent-proxy verified it and gave the bubble your <code>user-id</code> \
             and a fresh <code>user-hash</code>.</p><p><a href=\"/logout\">Log out</a></p>"
        ),
        None => "<p>You are not signed in. <a href=\"/login\">Log in</a> as the demo user.</p>".to_owned(),
    };
    layout("Your account", &body, user)
}

fn layout(title: &str, body: &str, user: Option<&str>) -> String {
    let who = match user {
        Some(name) => format!("Signed in as {name} · <a href=\"/logout\">Log out</a>"),
        None => "<a href=\"/login\">Log in</a>".to_owned(),
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n\
         <style>{STYLE}</style>\n</head>\n<body>\n<header><nav><a href=\"/\">Home</a><a href=\"/account\">Account</a>\
         <a href=\"/legacy\">Legacy page</a><span>{who}</span></nav></header>\n<h1>{title}</h1>\n{body}\n</body>\n</html>\n"
    )
}

/// The demo shop's icon: a round indigo bubble.
const FAVICON: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\">\
<circle cx=\"8\" cy=\"8\" r=\"7\" fill=\"#6366f1\"/></svg>";

const LEGACY_PAGE: &str = "<html><head><title>Legacy page</title></head><body>\
<h1>Legacy page</h1><p>This page was generated by a template that never closes its body or html \
tags. The widget goes at the end of the document instead.</p><p><a href=\"/\">Home</a></p>\n";

fn html(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    respond(status, "text/html; charset=utf-8", body.to_owned())
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    response
}

fn redirect(location: &'static str, set_cookie: &str) -> Response<Full<Bytes>> {
    let mut response = respond(StatusCode::SEE_OTHER, "text/plain", String::new());
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, header::HeaderValue::from_static(location));
    if let Ok(cookie) = header::HeaderValue::from_str(set_cookie) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    response
}
