//! invent-proxy's integration tests: the real proxy and real upstreams on loopback ports
//! the OS picks, talking over sockets.
// Test and bench code: a panic is the test failing, and its helpers are `pub` for the
// modules beside them.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod account_page;
#[cfg(feature = "browser-tests")]
mod browser;
mod charsets;
mod cli;
mod compression;
mod config_errors;
mod csp;
mod edge;
mod explain;
#[cfg(feature = "nginx-tests")]
mod front_nginx;
mod gateway;
mod http_versions;
mod identity;
mod injection;
mod jwks;
mod keepalive;
mod limits;
mod logs;
mod lookup;
mod operations;
mod proxying;
mod reload;
mod sites;
mod streaming;
mod support;
mod tls;
mod turbo;
