//! invent-proxy: a streaming reverse proxy that adds the Invent assistant to every HTML
//! page of the site behind it, with a verified identity for signed-in visitors.
//!
//! A request flows through [`proxy::Proxy::handle`]:
//! 1. **plan** — does the request qualify (GET, path globs, a top-level navigation)?
//! 2. **forward** — to the upstream over a pooled connection ([`upstream`]), sent again if
//!    the upstream closed a reused one under it unanswered and that loses nothing
//!    ([`reuse`]); 502/504 on failure ([`error`]).
//! 3. **identify** — only for a page that will be rewritten: session token (cookie or bearer header) → JWT → `user-hash` ([`identity`]).
//! 4. **inject** — the first bytes show whether the body is a whole page; a page streams
//!    (decoded if compressed, in its own charset) through lol_html, which inserts the widget
//!    with the CSP nonce it needs ([`inject`], [`rewrite`]).
//! 5. **log** — one access line when the body ends ([`body`], [`telemetry`]).
//!
//! Module map: [`cli`] commands · [`config`] YAML → typed config (TLS files included) ·
//! [`server`] listeners (HTTP and TLS), accept loop, graceful shutdown · [`headers`] pure
//! header helpers · [`codec`] gzip/deflate/br/zstd in bounded steps · [`csp`] script nonces
//! and allowed origins · [`upgrade`] WebSocket tunnels · [`demo`] the built-in sample site.
#![forbid(unsafe_code)]

pub mod admin;
pub mod body;
pub mod cli;
pub mod codec;
pub mod config;
pub mod deadline;
pub mod demo;
pub mod edge;
pub mod error;
pub mod fetch;
pub mod headers;
pub mod identity;
pub mod inject;
pub mod live;
pub mod metrics;
pub mod proxy;
pub mod request_line;
pub mod reuse;
pub mod server;
pub mod telemetry;
pub mod upgrade;
pub mod upstream;
pub mod workers;

pub use config::{Config, ConfigError};
pub use server::{RunningProxy, StartError, start};
