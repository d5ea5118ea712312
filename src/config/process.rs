//! The process-wide settings: where the proxy listens (plain, TLS, admin), its limits,
//! how it logs, which peers it trusts, and how strict its edge is. One set for the whole
//! process, whatever the number of sites.

use std::net::SocketAddr;
use std::time::Duration;

use super::load::BuildError;
use super::raw::{self, RawConfig};
use super::tls;
use super::value::LogFormat;

/// Everything about the process that no site can change.
#[derive(Debug, Clone)]
pub struct Process {
    /// Address the proxy listens on for client traffic.
    pub listen: SocketAddr,
    /// The HTTPS listener, beside `listen`, if configured.
    pub listen_tls: Option<tls::ListenTls>,
    /// The admin listener (`/healthz`, `/readyz`, `/metrics`), if configured.
    pub admin: Option<Admin>,
    /// How long in-flight requests may run after SIGTERM/SIGINT before they are cut.
    pub shutdown_grace_period: Duration,
    /// Peers (a load balancer in front) whose forwarding headers (`X-Forwarded-Proto`/`-Host`,
    /// `Forwarded`, `X-Real-IP`, …) are kept.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Request headers whose names have an `_` are passed to the upstream (default: they
    /// are dropped, as nginx does, since CGI-style apps read `X_Forwarded_For` as
    /// `X-Forwarded-For`).
    pub underscores_in_headers: bool,
    pub log: Log,
    pub limits: Limits,
}

impl Process {
    /// Whether `peer` is one of `trusted_proxies` (IPv4-mapped IPv6 counts as IPv4).
    pub fn trusts(&self, peer: std::net::IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }
}

/// `limits.workers` by default: one per CPU the process may use (its affinity and cgroup
/// quota counted), as nginx's `worker_processes auto`.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// What one proxy takes on at most, and how long it waits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Client connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// The most a client may take to send a whole request head (slowloris), timed from
    /// its first byte (from the accept for a connection's first request).
    pub header_read_timeout: Duration,
    /// How long a client connection may stay open with no request in flight.
    pub idle_timeout: Duration,
    /// The most a response body may wait for its next bytes from the upstream before it
    /// is ended (the connection then closes, so the client sees it cut short).
    pub body_stall_timeout: Duration,
    /// lol_html's memory budget per page: a page that needs more passes through
    /// unchanged and uninjected, never truncated.
    pub rewriter_max_memory: usize,
    /// The largest request head a client may send, in bytes (more: 431, a longer URI: 414).
    pub max_header_size: usize,
    /// Threads serving connections, each with its own runtime (see the listener's `workers`).
    pub workers: usize,
}

/// The most `limits.workers` there may be (a bigger number is taken as this).
const MAX_WORKERS: usize = 1024;

/// The smallest `limits.max_header_size`: hyper reads request heads in 8 KiB steps.
const MIN_HEADER_SIZE: u64 = 8 * 1024;

/// The smallest `limits.rewriter_max_memory`: lol_html's own buffers need a few KiB.
const MIN_REWRITER_MEMORY: u64 = 16 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 10_000,
            workers: default_workers(),
            header_read_timeout: Duration::from_secs(10),
            // nginx's `keepalive_timeout`.
            idle_timeout: Duration::from_secs(75),
            body_stall_timeout: Duration::from_secs(30),
            rewriter_max_memory: invent_rewrite::REWRITER_MAX_MEMORY,
            max_header_size: 128 * 1024,
        }
    }
}

/// How the proxy logs. `RUST_LOG`, when set, overrides `level`.
#[derive(Debug, Clone)]
pub struct Log {
    pub format: LogFormat,
    pub level: String,
}

impl Default for Log {
    fn default() -> Self {
        Log { format: LogFormat::Text, level: "info".to_owned() }
    }
}

/// The admin listener: never the port proxied traffic comes in on.
#[derive(Debug, Clone)]
pub struct Admin {
    pub listen: SocketAddr,
}

/// Builds the process-wide settings from the top level of the file.
pub(super) fn build(raw: &RawConfig, base_dir: &std::path::Path) -> Result<Process, BuildError> {
    let listen = raw.listen.as_ref().map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 8080)), |v| v.0.0);
    let listen_tls = raw.listen_tls.clone().map(|raw| tls::build_listen_tls(raw, base_dir)).transpose()?;
    let admin = raw.admin.as_ref().map(|admin| Admin { listen: admin.listen.0.0 });
    check_admin_port(admin.as_ref(), listen, listen_tls.as_ref())?;
    let log = raw.log.as_ref().map_or_else(Log::default, |raw| Log {
        format: raw.format.as_ref().map_or(LogFormat::Text, |v| v.0),
        level: raw.level.as_ref().map_or_else(|| Log::default().level, |v| v.0.0.clone()),
    });
    Ok(Process {
        listen,
        listen_tls,
        admin,
        shutdown_grace_period: raw.shutdown_grace_period.as_ref().map_or(Duration::from_secs(30), |v| v.0.0),
        trusted_proxies: raw.trusted_proxies.iter().flatten().map(|n| n.0.0).collect(),
        underscores_in_headers: raw.underscores_in_headers.unwrap_or(false),
        log,
        limits: build_limits(raw.limits.clone())?,
    })
}

fn build_limits(raw: Option<raw::RawLimits>) -> Result<Limits, BuildError> {
    let defaults = Limits::default();
    let Some(raw) = raw else { return Ok(defaults) };
    let max_connections = at_least(raw.max_connections, 1, defaults.max_connections, "limits.max_connections")?;
    Ok(Limits {
        max_connections: max_connections.min(tokio::sync::Semaphore::MAX_PERMITS),
        workers: at_least(raw.workers, 1, defaults.workers, "limits.workers")?.min(MAX_WORKERS),
        rewriter_max_memory: at_least(
            raw.rewriter_max_memory,
            MIN_REWRITER_MEMORY,
            defaults.rewriter_max_memory,
            "limits.rewriter_max_memory",
        )?,
        max_header_size: at_least(
            raw.max_header_size,
            MIN_HEADER_SIZE,
            defaults.max_header_size,
            "limits.max_header_size",
        )?,
        header_read_timeout: raw.header_read_timeout.map_or(defaults.header_read_timeout, |v| v.0.0),
        idle_timeout: raw.idle_timeout.map_or(defaults.idle_timeout, |v| v.0.0),
        body_stall_timeout: raw.body_stall_timeout.map_or(defaults.body_stall_timeout, |v| v.0.0),
    })
}

/// `value`, or `default` when absent; below `min` it is an error naming `key`.
fn at_least(value: Option<u64>, min: u64, default: usize, key: &'static str) -> Result<usize, BuildError> {
    match value {
        None => Ok(default),
        Some(n) if n < min => Err(BuildError::new(key, None, format!("must be at least {min}"))),
        Some(n) => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
    }
}

/// The admin listener must not take proxied traffic's port (port 0 picks a free one).
fn check_admin_port(admin: Option<&Admin>, listen: SocketAddr, tls: Option<&tls::ListenTls>) -> Result<(), BuildError> {
    let Some(admin) = admin else { return Ok(()) };
    let clashes = |other: SocketAddr| {
        admin.listen.port() != 0
            && admin.listen.port() == other.port()
            && (admin.listen.ip() == other.ip() || admin.listen.ip().is_unspecified() || other.ip().is_unspecified())
    };
    if clashes(listen) {
        return Err(BuildError::new("admin.listen", None, format!("{} is the proxy's own `listen`", admin.listen)));
    }
    if let Some(tls) = tls.filter(|tls| clashes(tls.address)) {
        return Err(BuildError::new("admin.listen", None, format!("{} is `listen_tls.address`", tls.address)));
    }
    Ok(())
}
