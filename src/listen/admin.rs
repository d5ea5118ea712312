//! The admin listener: `/healthz`, `/readyz` and `/metrics` on a port of their own, never
//! the one proxied traffic comes in on.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tracing::{debug, warn};

use crate::pipeline::Live;

/// The media type of the Prometheus text exposition format prometheus-client writes.
const METRICS_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Answers admin requests on `listener` until the task is dropped.
pub(super) async fn serve(listener: TcpListener, live: Arc<Live>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                warn!(%error, "admin accept failed; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let live = Arc::clone(&live);
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let response = answer(&req, &live);
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                debug!(%error, "admin connection ended with an error");
            }
        });
    }
}

/// One admin request's answer.
fn answer(req: &Request<Incoming>, live: &Live) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if !matches!(path, "/healthz" | "/readyz" | "/metrics") {
        return text(StatusCode::NOT_FOUND, "not found: /healthz, /readyz and /metrics are served here\n".into());
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD only\n".into());
        response.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match path {
        "/healthz" => text(StatusCode::OK, "ok\n".into()),
        "/readyz" => match live.not_ready() {
            None => text(StatusCode::OK, "ready\n".into()),
            Some(reason) => text(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {reason}\n")),
        },
        _ => {
            let mut response = text(StatusCode::OK, live.metrics_text());
            response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(METRICS_TYPE));
            response
        }
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    response
}
