//! The framework sessions against the real frameworks: cookies made, at test time, by
//! Rails', Flask's and cookie-session's own code (the minting scripts of
//! `tests/frameworks/`), sent through the real proxy binary; and a real Flask-Login app and
//! a real Express app with cookie-session behind it, signed in through their own forms.
//! Run `tests/frameworks/setup.sh` first (it installs them under `target/frameworks`), then
//! `cargo test --features framework-tests --test integration frameworks::`.

mod cookie_session;
mod flask;
mod rails;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use http::{HeaderMap, Request, header};
use http_body_util::{BodyExt, Full};

use crate::support::process::ProxyProcess;
use crate::support::*;

/// The page every upstream of these tests serves.
pub const PAGE: &str = "<!doctype html><html><head><title>shop</title></head><body><h1>shop</h1></body></html>";

/// The repository's top.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where `tests/frameworks/setup.sh` installed the frameworks.
fn installed() -> PathBuf {
    let dir = std::env::var_os("FRAMEWORKS_DIR").map_or_else(|| root().join("target/frameworks"), PathBuf::from);
    assert!(
        dir.join("venv/bin/python").exists()
            && dir.join("node_modules").exists()
            && dir.join("rails72/.complete").exists(),
        "the frameworks are not installed under {}: run tests/frameworks/setup.sh",
        dir.display()
    );
    dir
}

/// A framework's own program, run from `tests/frameworks/`.
pub enum Runtime {
    /// `ruby` (Debian's, with its ActiveSupport and ActionPack).
    Ruby,
    /// The venv's Python (Flask, Flask-Login, itsdangerous).
    Python,
    /// `node` (express, cookie-session).
    Node,
}

fn command(runtime: Runtime, script: &str) -> Command {
    let program = match runtime {
        Runtime::Ruby => PathBuf::from("ruby"),
        Runtime::Python => installed().join("venv/bin/python"),
        Runtime::Node => PathBuf::from("node"),
    };
    let mut command = Command::new(program);
    command.arg(root().join("tests/frameworks").join(script)).env("FRAMEWORKS_DIR", installed());
    command
}

/// What a minting script prints: a `Cookie` request-header value made by the framework's code.
pub fn mint(runtime: Runtime, script: &str, args: &[&str]) -> String {
    let output = command(runtime, script).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{script} {args:?} failed: {stderr}");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Mints each case's cookie at once (each script starts its framework: a second or so).
pub fn mint_all<'a>(
    cases: &'a [(&'a str, Vec<String>)],
    mint_one: impl Fn(&[&str]) -> String + Sync,
) -> Vec<(&'a str, String)> {
    std::thread::scope(|scope| {
        let mint_one = &mint_one;
        let minting: Vec<_> = cases
            .iter()
            .map(|(name, args)| {
                scope.spawn(move || {
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    (*name, mint_one(&args))
                })
            })
            .collect();
        minting.into_iter().map(|thread| thread.join().unwrap()).collect()
    })
}

/// `args` written as owned strings.
pub fn args(args: &[&str]) -> Vec<String> {
    args.iter().map(|&arg| arg.to_owned()).collect()
}

/// A framework's app (`flask_app.py`, `express_app.js`) on a loopback port; killed when
/// dropped (it also exits when its stdin closes).
pub struct App {
    child: Child,
    pub addr: SocketAddr,
}

impl App {
    pub fn start(runtime: Runtime, script: &str, args: &[&str]) -> App {
        let mut child = command(runtime, script)
            .arg("0")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("{script} said {line:?}"));
        App { child, addr: SocketAddr::from(([127, 0, 0, 1], port.parse().unwrap())) }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The real proxy binary with `identity`, the assistant's secret key and the framework's
/// secrets from the environment (`envs`), in front of `upstream`.
pub fn proxy(upstream: SocketAddr, identity: IdentityYaml, envs: &[(&str, &str)]) -> ProxyProcess {
    let yaml = ProxyYaml::new(upstream).identity(identity.secret_key("${TEST_SECRET_KEY}"));
    let mut envs = envs.to_vec();
    envs.push(("TEST_SECRET_KEY", SECRET_KEY));
    ProxyProcess::start(&yaml.to_string(), &envs)
}

/// One request to `addr`, with a `Cookie` header when `cookie` is not empty and a form body
/// when `form` is given.
pub async fn fetch(addr: SocketAddr, method: &str, path: &str, cookie: &str, form: Option<&str>) -> Received {
    let mut request =
        Request::builder().method(method).uri(format!("http://{addr}{path}")).header(header::HOST, "shop");
    if !cookie.is_empty() {
        request = request.header(header::COOKIE, cookie);
    }
    if form.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    let body = Full::new(Bytes::from(form.unwrap_or_default().to_owned()));
    let response = client().request(request.body(body).unwrap()).await.unwrap();
    let (parts, body) = response.into_parts();
    Received { status: parts.status, headers: parts.headers, body: body.collect().await.unwrap().to_bytes() }
}

/// The `identity` and `identity_source` of the access line of the first request to `path`,
/// waited for.
pub fn access(proxy: &mut ProxyProcess, path: &str) -> (String, String) {
    access_nth(proxy, path, 0)
}

/// The `identity` and `identity_source` of the access line of the `nth` request (from 0)
/// to `path`, waited for (up to 20 s).
pub fn access_nth(proxy: &mut ProxyProcess, path: &str, nth: usize) -> (String, String) {
    let needle = format!("path={path} ");
    let line = tokio::task::block_in_place(|| {
        proxy.wait_for_log(&needle);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if let Some(line) = proxy.logs().into_iter().filter(|line| line.contains(&needle)).nth(nth) {
                return line;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no access line #{nth} of {path}:\n{}",
                proxy.logs().join("\n")
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    });
    let field = |name: &str| {
        let at = line.find(&format!(" {name}=")).unwrap_or_else(|| panic!("no {name} in {line}")) + name.len() + 2;
        line[at..].split(' ').next().unwrap_or_default().to_owned()
    };
    (field("identity"), field("identity_source"))
}

/// The `user-hash` the spec defines, computed here, not by the proxy's code: lowercase hex
/// HMAC-SHA256 of the user id keyed with the assistant's secret key.
pub fn expected_hash(user_id: &str) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET_KEY.as_bytes()).unwrap();
    mac.update(user_id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Checks a page: served (`200`), one widget, naming `user_id` with its hash (or nobody).
pub fn assert_page(page: &Received, user_id: Option<&str>, case: &str) {
    assert_eq!(page.status, http::StatusCode::OK, "{case}");
    assert_eq!(page.widgets(), 1, "{case}: {}", page.text());
    let text = page.text();
    assert_eq!(widget_attribute(&text, "user-id").as_deref(), user_id, "{case}: {text}");
    assert_eq!(widget_attribute(&text, "user-hash"), user_id.map(expected_hash), "{case}");
}

/// The cookies a browser holds for one site: what `Set-Cookie` sets, without what it
/// deletes (an empty value, `Max-Age=0`, an expiry in 1970).
#[derive(Debug, Default)]
pub struct Jar(Vec<(String, String)>);

impl Jar {
    pub fn absorb(&mut self, response: &HeaderMap) {
        for set_cookie in response.get_all(header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()) {
            let (pair, attributes) = set_cookie.split_once(';').unwrap_or((set_cookie, ""));
            let Some((name, value)) = pair.split_once('=') else { continue };
            let attributes = attributes.to_ascii_lowercase();
            let deleted = value.is_empty() || attributes.contains("max-age=0") || attributes.contains("1970");
            self.0.retain(|(held, _)| held != name.trim());
            if !deleted {
                self.0.push((name.trim().to_owned(), value.trim().to_owned()));
            }
        }
    }

    /// The `Cookie` header the browser sends.
    pub fn header(&self) -> String {
        self.0.iter().map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join("; ")
    }
}

/// The `name` attributes of the inputs of the first `<form>` of `page`, and its `action`:
/// what a browser would submit.
pub fn form_of(page: &str) -> (String, Vec<String>) {
    let form = &page[page.find("<form").expect("a form")..];
    let form = &form[..form.find("</form>").expect("the end of the form")];
    let attribute = |tag: &str, name: &str| {
        let at = tag.find(&format!("{name}=\""))? + name.len() + 2;
        Some(tag[at..at + tag[at..].find('"')?].to_owned())
    };
    let action = attribute(form, "action").expect("an action");
    let inputs = form.split("<input").skip(1).filter_map(|input| attribute(input, "name")).collect();
    (action, inputs)
}
