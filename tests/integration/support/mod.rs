//! Test harness: real upstream servers and the real proxy on ports the OS picks, and a
//! client that talks to them over sockets.

pub mod pki;
pub mod process;
pub mod tokens;
pub mod yaml;

pub use yaml::{FrameworkYaml, GatewayYaml, IdentityYaml, JwtYaml, LookupYaml, ProxyYaml, SiteYaml};

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, header};
use http_body::{Body, Frame};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use invent_proxy::{Config, RunningProxy};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type TestBody = BoxBody<Bytes, BoxError>;
type Handler = Arc<dyn Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Response<TestBody>> + Send>> + Send + Sync>;

/// The assistant secret key of the spec's test vectors.
pub const SECRET_KEY: &str = "sk_test_123";
/// The HS256 key test sessions are signed with.
pub const JWT_SECRET: &str = "jwt-test-secret-0123456789abcdef";

/// What an upstream saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: http::Method,
    pub uri: http::Uri,
    pub headers: HeaderMap,
}

/// A real HTTP/1.1 server on loopback that answers with a handler and records requests.
pub struct Upstream {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    /// The requests received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts an upstream whose every request is answered by `handler`.
pub async fn spawn_upstream<F, Fut>(handler: F) -> Upstream
where
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<TestBody>> + Send + 'static,
{
    let handler: Handler = Arc::new(move |req| Box::pin(handler(req)));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let connections = Arc::new(AtomicUsize::new(0));
    let (seen2, connections2) = (Arc::clone(&seen), Arc::clone(&connections));
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            connections2.fetch_add(1, Ordering::SeqCst);
            let (handler, seen) = (Arc::clone(&handler), Arc::clone(&seen2));
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    seen.lock().unwrap().push(Seen {
                        method: req.method().clone(),
                        uri: req.uri().clone(),
                        headers: req.headers().clone(),
                    });
                    let response = handler(req);
                    async move { Ok::<_, Infallible>(response.await) }
                });
                let connection =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                let _ = connection.with_upgrades().await;
            });
        }
    });
    Upstream { addr, seen, connections, task }
}

/// A WebSocket server on a loopback port the OS picks that echoes every text and binary
/// message back.
pub async fn spawn_websocket_echo() -> SocketAddr {
    use futures_util::{SinkExt, StreamExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut socket = tokio_tungstenite::accept_async(stream).await.unwrap();
                while let Some(Ok(message)) = socket.next().await {
                    if message.is_text() || message.is_binary() {
                        socket.send(message).await.unwrap();
                    }
                }
            });
        }
    });
    addr
}

/// An upstream that serves one fixed HTML page on every path.
pub async fn spawn_html_upstream(page: &'static str) -> Upstream {
    spawn_upstream(move |_| async move { html(page) }).await
}

/// A raw TCP upstream: `handler` gets each accepted socket, to misbehave at will.
pub async fn spawn_raw_upstream<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(handler(stream));
        }
    });
    addr
}

/// Reads one request (head, and a body of its `content-length`); `None` at end of stream.
pub async fn read_request(socket: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if socket.read(&mut byte).await.unwrap_or(0) == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let length = head.lines().find_map(|l| l.strip_prefix("content-length: ")).map_or(0, |n| n.trim().parse().unwrap());
    let mut body = vec![0u8; length];
    socket.read_exact(&mut body).await.ok()?;
    Some(head)
}

/// An address nothing listens on, held so no other test can take it: connections to it
/// are refused until the socket is turned into a listener with `listen`.
pub fn unreachable_address() -> (SocketAddr, tokio::net::TcpSocket) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    (socket.local_addr().unwrap(), socket)
}

pub fn full(body: impl Into<Bytes>) -> TestBody {
    Full::new(body.into()).map_err(|never| match never {}).boxed()
}

pub fn respond(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<TestBody> {
    Response::builder().status(status).header(header::CONTENT_TYPE, content_type).body(full(body)).unwrap()
}

pub fn html(body: impl Into<Bytes>) -> Response<TestBody> {
    respond(StatusCode::OK, "text/html; charset=utf-8", body)
}

/// A body fed chunk by chunk from a channel: the test decides when each chunk goes.
pub struct ChannelBody(pub mpsc::Receiver<Result<Bytes, BoxError>>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.0.poll_recv(cx).map(|item| item.map(|r| r.map(Frame::data)))
    }
}

/// A streaming HTML response and the sender that feeds it.
pub fn streamed_html() -> (mpsc::Sender<Result<Bytes, BoxError>>, Response<TestBody>) {
    let (tx, rx) = mpsc::channel(1);
    let response = Response::builder()
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .body(ChannelBody(rx).boxed())
        .unwrap();
    (tx, response)
}

/// Holds an upstream back until the test opens it: how tests prove that bytes arrive
/// before the upstream has sent the rest, without timing anything.
#[derive(Clone)]
pub struct Gate(Arc<tokio::sync::watch::Sender<bool>>);

impl Gate {
    pub fn new() -> Gate {
        Gate(Arc::new(tokio::sync::watch::Sender::new(false)))
    }

    /// Waits until [`Gate::open`] (at once if it already was).
    pub async fn wait(&self) {
        let _ = self.0.subscribe().wait_for(|open| *open).await;
    }

    pub fn open(&self) {
        self.0.send_replace(true);
    }
}

/// An HTML upstream that sends `first`, then waits for the returned [`Gate`] to open
/// before it sends `rest`.
pub async fn spawn_paused_upstream(first: &'static str, rest: &'static str) -> (Upstream, Gate) {
    let gate = Gate::new();
    let upstream_gate = gate.clone();
    let upstream = spawn_upstream(move |_| {
        let gate = upstream_gate.clone();
        async move {
            let (tx, response) = streamed_html();
            tokio::spawn(async move {
                tx.send(Ok(Bytes::from_static(first.as_bytes()))).await.unwrap();
                gate.wait().await;
                tx.send(Ok(Bytes::from_static(rest.as_bytes()))).await.unwrap();
            });
            response
        }
    })
    .await;
    (upstream, gate)
}

/// The widget the test config's proxy injects for an anonymous visitor: with the `id` and
/// the Turbo attributes of `inject.turbo_permanent`, on by default.
pub const WIDGET: &str = "<invent-assistant id=\"invent-assistant\" data-turbo-permanent=\"\" \
data-turbolinks-permanent=\"\" assistant-id=\"ast_test\"></invent-assistant><script type=\"text/javascript\" \
src=\"https://www.useinvent.com/button.js\" data-turbo-eval=\"false\" data-turbolinks-eval=\"false\" async defer></script>";
/// Its element alone.
pub const WIDGET_ELEMENT: &str = "<invent-assistant id=\"invent-assistant\" data-turbo-permanent=\"\" \
data-turbolinks-permanent=\"\" assistant-id=\"ast_test\"></invent-assistant>";
/// Its script tag alone.
pub const WIDGET_SCRIPT: &str = "<script type=\"text/javascript\" src=\"https://www.useinvent.com/button.js\" \
data-turbo-eval=\"false\" data-turbolinks-eval=\"false\" async defer></script>";
/// What `inject.turbo_permanent` adds to a signed-in visitor's element, before
/// `assistant-id`: its `id` follows the identity attributes.
pub fn turbo_attributes(visitor: &invent_rewrite::Visitor) -> String {
    let id = invent_rewrite::element_id(Some(visitor));
    format!("id=\"{id}\" data-turbo-permanent=\"\" data-turbolinks-permanent=\"\"")
}

/// The proxy of [`ProxyYaml::new`], in front of `upstream`.
pub async fn spawn_default_proxy(upstream: SocketAddr) -> RunningProxy {
    spawn_proxy(ProxyYaml::new(upstream)).await
}

/// A config from YAML, relative paths (key files) from `tests/fixtures`.
pub fn config(yaml: impl std::fmt::Display) -> Config {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    Config::from_yaml(&yaml.to_string(), "test.yaml", &fixtures).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `future` to completion on a runtime of its own, for tests that are not async.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(future)
}

/// Starts the real proxy from YAML.
pub async fn spawn_proxy(yaml: impl std::fmt::Display) -> RunningProxy {
    invent_proxy::start(config(yaml)).await.unwrap()
}

/// A proxy in front of `upstream` with identity on ([`IdentityYaml::session`]).
pub async fn spawn_identity_proxy(upstream: &Upstream) -> RunningProxy {
    spawn_proxy(ProxyYaml::new(upstream.addr).identity(IdentityYaml::session())).await
}

/// Polls `done` until it holds, for up to 10 s (of the runtime's clock: virtual time on a
/// paused one): for what other tasks, threads or processes do in their own time.
pub async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    wait_until_async(what, || std::future::ready(done())).await;
}

/// [`wait_until`] with a condition that must be awaited.
pub async fn wait_until_async<F: Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "not within 10 s: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// What a client received.
#[derive(Debug)]
pub struct Received {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// How many widgets the page carries.
    pub fn widgets(&self) -> usize {
        self.text().matches("<invent-assistant").count()
    }
}

/// An HTTP/1.1 client with keep-alive, like a browser's.
pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// Sends a request through `proxy` and reads the whole response.
pub async fn send(proxy: &RunningProxy, req: Request<Full<Bytes>>) -> Received {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    parts.uri = format!("http://{}{path}", proxy.local_addr()).parse().unwrap();
    let response = client().request(Request::from_parts(parts, body)).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Received { status: parts.status, headers: parts.headers, body }
}

/// `GET path` through `proxy` with extra headers.
pub async fn get_with(proxy: &RunningProxy, path: &str, headers: &[(&str, &str)]) -> Received {
    let mut builder = Request::get(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    send(proxy, builder.body(Full::new(Bytes::new())).unwrap()).await
}

pub async fn get(proxy: &RunningProxy, path: &str) -> Received {
    get_with(proxy, path, &[]).await
}

/// `GET path` with the session cookie set to `token`.
pub async fn get_as(proxy: &RunningProxy, path: &str, token: &str) -> Received {
    get_with(proxy, path, &[("cookie", &format!("theme=dark; session={token}"))]).await
}

/// The value of attribute `name` on the page's `<invent-assistant>` element.
pub fn widget_attribute(page: &str, name: &str) -> Option<String> {
    let start = page.find("<invent-assistant")?;
    let tag = &page[start..start + page[start..].find('>')?];
    let needle = format!(" {name}=\"");
    let at = tag.find(&needle)? + needle.len();
    Some(tag[at..at + tag[at..].find('"')?].to_owned())
}

/// The path of the real `invent-proxy` binary.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_invent-proxy")
}
