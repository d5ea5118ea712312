//! invent-proxy: a streaming reverse proxy that adds the Invent assistant to every HTML
//! page of the site behind it, with a verified identity for signed-in visitors.
//!
//! A request's path through the tree:
//! 1. [`listen`] accepts the connection and hands it to a worker thread, which serves
//!    HTTP/1.1 or HTTP/2 on it with its deadlines;
//! 2. [`pipeline`] checks the request at the edge (its one authority, RFC rules), routes it
//!    to its site, and runs the phases: **plan** (may the response get the widget?) →
//!    **forward** to the upstream ([`upstream`]: pooled, sent again if a reused connection
//!    was closed under it) ∥ **identify** the visitor ([`identity`]: its sources in order,
//!    then the `user-hash`) → **respond**: the response passes through, or streams through
//!    the page rewriter (the `invent-rewrite` crate), decoded and encoded again if it is
//!    compressed ([`codec`]);
//! 3. the response body writes the request's one access line and counts it ([`metrics`]).
//!
//! Beside the path: [`config`] (YAML → typed config, process-wide and per site), [`cli`]
//! (the commands), [`demo`] (a sample site behind the proxy), [`explain`] (one request
//! through the pipeline, and what it decided, in words).
//!
//! Layers, each importing only those below it: `cli`, `demo`, `explain` → `listen` → `pipeline` →
//! `identity` → `upstream` → `config` → the leaves: [`error`], [`headers`], [`codec`],
//! [`metrics`], [`telemetry`], [`outcome`] (the fixed words of the access line and the
//! metrics) and [`per_worker`] (what belongs to the worker thread running now).

#![forbid(unsafe_code)]

pub mod cli;
pub mod codec;
pub mod config;
pub mod demo;
mod error;
pub mod explain;
mod headers;
pub mod identity;
pub mod listen;
mod metrics;
mod outcome;
mod per_worker;
mod pipeline;
mod telemetry;
mod upstream;

pub use config::{Config, ConfigError};
pub use listen::{RunningProxy, StartError, start};
