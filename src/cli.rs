//! The command line: `run` (the default), `check`, `hash`, `explain`, `schema` and `demo`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, DEFAULT_CONFIG_PATH};
use crate::pipeline::{Proxy, Sites};
use crate::{demo, explain, identity, listen, telemetry};

/// A streaming reverse proxy that adds the Invent assistant to every HTML page of the
/// site behind it, recognising signed-in visitors from their session JWT.
#[derive(Debug, Parser)]
#[command(name = "invent-proxy", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// The YAML config file (for run, check, hash and explain).
    #[arg(
        long,
        short = 'c',
        global = true,
        value_name = "FILE",
        env = "INVENT_PROXY_CONFIG",
        default_value = DEFAULT_CONFIG_PATH
    )]
    config: PathBuf,
    /// With run: reload the config when its file changes (as on SIGHUP).
    #[arg(long, global = true)]
    watch: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the proxy (the default when no command is given).
    Run,
    /// Load and validate the config (secrets, keys), print a summary without secrets.
    Check,
    /// Print the JSON Schema of the config file (for editors' YAML language servers).
    Schema,
    /// Print the user-hash the proxy would inject for a user id.
    Hash {
        /// The user id to hash, exactly as it appears in the session token.
        #[arg(long, value_name = "ID")]
        user_id: String,
        /// With `sites:`, the host whose site's secret key to use (default: the default
        /// site, or the first).
        #[arg(long, value_name = "HOST")]
        site: Option<String>,
    },
    /// Send one request through the pipeline to the real upstream and say why the page does
    /// or does not get the widget.
    ///
    /// Nothing listens: the request goes through the configured sites in memory, to the
    /// real upstream. The report names the site, whether the request and the response
    /// qualify (else the access line's skip reason), the identity outcome and its source,
    /// the widget markup and where it goes, the CSP nonce, and the response headers the
    /// proxy changes; never a cookie value, token or secret key.
    ///
    /// Exit status: 0 the page gets the widget, 1 it does not, 2 explain could not run
    /// (the command line, the config, a site's set-up), 3 the request failed (the upstream
    /// unreachable, too slow, broken).
    Explain {
        /// The page's absolute URL (http:// or https://). Its host chooses the site; the
        /// request goes to that site's upstream, not to the URL's host.
        #[arg(value_name = "URL")]
        url: String,
        /// A request header, 'Name: value' (repeatable). Those of a browser's navigation
        /// (Accept, Sec-Fetch-*, …) are sent unless given.
        #[arg(long = "header", value_name = "NAME: VALUE")]
        headers: Vec<String>,
        /// A cookie, 'name=value' (repeatable): all go in one Cookie header.
        #[arg(long = "cookie", value_name = "NAME=VALUE")]
        cookies: Vec<String>,
    },
    /// Run a built-in sample legacy site with the proxy in front of it, for a first look.
    Demo {
        /// Where the proxy of the demo listens.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
}

/// Parses the command line, runs the command, and maps failures to a one-line reason and
/// a non-zero exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Run) {
        Command::Run => run(&cli.config, cli.watch),
        Command::Check => check(&cli.config),
        Command::Schema => {
            say(format_args!("{}", crate::config::json_schema().trim_end()));
            Ok(())
        }
        Command::Hash { user_id, site } => hash(&cli.config, &user_id, site.as_deref()),
        Command::Demo { listen } => demo(listen),
        Command::Explain { url, headers, cookies } => return explain(&cli.config, &url, &headers, &cookies),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("invent-proxy: {reason}");
            ExitCode::FAILURE
        }
    }
}

type CliResult = Result<(), Box<dyn std::error::Error>>;

/// Writes a line to standard output. When the reader has gone away (`invent-proxy check
/// | head -1`), the process ends quietly, as `cat` would, instead of failing.
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(error) = writeln!(out, "{line}").and_then(|()| out.flush()) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("invent-proxy: cannot write to standard output: {error}");
        std::process::exit(1);
    }
}

fn run(path: &Path, watch: bool) -> CliResult {
    // Read before the config is: a change in between is seen by `--watch`, not missed.
    let watched = std::fs::read(path).ok();
    let config = Config::load(path)?;
    telemetry::init(&config.process.log);
    block_on(async {
        // Before start-up, which may take seconds (a `jwks_url`): a SIGHUP meanwhile
        // reloads once serving, instead of ending the process.
        let mut reloads = reload_requests(path, watch.then_some(watched));
        let mut proxy = listen::start(config).await.map_err(|e| match e {
            listen::StartError::Bind { key, .. } => format!("{e} (set `{key}` in {})", path.display()),
            other => other.to_string(),
        })?;
        if let Some(admin) = proxy.admin_addr() {
            tracing::info!(admin = %admin, "admin listener: /healthz, /readyz, /metrics");
        }
        match proxy.tls_addr() {
            Some(tls) => {
                tracing::info!(listen = %proxy.local_addr(), listen_tls = %tls, config = %path.display(), "invent-proxy is serving")
            }
            None => tracing::info!(listen = %proxy.local_addr(), config = %path.display(), "invent-proxy is serving"),
        }
        let mut shutdown = std::pin::pin!(listen::shutdown_signal());
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some(why) = reloads.recv() => {
                    tracing::info!(trigger = why, config = %path.display(), "reloading the config");
                    match Config::load(path) {
                        Ok(config) => {
                            // A rejected config has been logged and counted already.
                            let _ = proxy.reload(config).await;
                        }
                        Err(error) => proxy.reload_failed(&error),
                    }
                }
            }
        }
        proxy.shutdown().await;
        Ok(())
    })?
}

/// How often `--watch` looks at the config file.
const WATCH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// What asks for a reload: SIGHUP, and with `--watch` a change of the config file's
/// contents. Its contents are compared, not its time stamp, so a file swapped in by a
/// symbolic link (a Kubernetes ConfigMap) counts too.
/// `watched`: with `--watch`, the file's contents the running config came from.
fn reload_requests(path: &Path, watched: Option<Option<Vec<u8>>>) -> tokio::sync::mpsc::Receiver<&'static str> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    #[cfg(unix)]
    if let Ok(mut hangup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        let tx = tx.clone();
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                let _ = tx.try_send("SIGHUP");
            }
        });
    }
    if let Some(mut seen) = watched {
        let path = path.to_owned();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(WATCH_INTERVAL).await;
                let now = std::fs::read(&path).ok();
                if now.is_some() && now != seen {
                    seen = now;
                    let _ = tx.try_send("file changed");
                }
            }
        });
    }
    rx
}

/// Validates exactly what `run` would build — config, keys (a `jwks_url` fetched), upstream
/// client (and its TLS roots) — without binding a port.
fn check(path: &Path) -> CliResult {
    let config = Config::load(path)?;
    let process = config.process.summary();
    let sites = block_on(Sites::start(config, std::sync::Arc::default()))??;
    say(format_args!("{}: OK", path.display()));
    say(format_args!("{process}"));
    for proxy in sites.iter() {
        report(proxy);
    }
    Ok(())
}

/// What `check` says about one site: its summary and what looks wrong.
fn report(proxy: &Proxy) {
    let site = proxy.site();
    if !site.hosts.is_empty() {
        let names: Vec<String> = site.hosts.iter().map(ToString::to_string).collect();
        say(format_args!("site {}:", names.join(", ")));
    }
    say(format_args!("{}", site.summary()));
    for warning in site.warnings() {
        say(format_args!("warning: {warning}"));
    }
    if let Some(reason) = proxy.identity_keys_missing() {
        say(format_args!(
            "warning: identity.jwt.jwks_url cannot be loaded now ({reason}); until it is, every session token is rejected"
        ));
    }
    if let Err(reason) = probe_upstream_briefly(&site.upstream) {
        say(format_args!("warning: upstream {reason}; until it answers, visitors get 502"));
    }
}

/// [`probe_upstream`] within 2 s: name resolution cannot be timed out, so it runs aside.
fn probe_upstream_briefly(upstream: &crate::config::Upstream) -> Result<(), String> {
    let (done, result) = std::sync::mpsc::channel();
    let upstream = upstream.clone();
    std::thread::spawn(move || {
        let _ = done.send(probe_upstream(&upstream));
    });
    result
        .recv_timeout(std::time::Duration::from_secs(2))
        .unwrap_or_else(|_| Err("does not answer within 2s".to_owned()))
}

/// Tries a TCP connection to the upstream (not a request): an upstream that is down is
/// worth a warning, not an error, since it may start after the proxy.
fn probe_upstream(upstream: &crate::config::Upstream) -> Result<(), String> {
    use std::net::ToSocketAddrs;
    let authority = &upstream.url.authority;
    let port = authority.port_u16().unwrap_or(if upstream.url.scheme == http::uri::Scheme::HTTPS { 443 } else { 80 });
    let host = authority.host().trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<_> =
        (host, port).to_socket_addrs().map_err(|e| format!("{authority} cannot be resolved ({e})"))?.collect();
    let timeout = upstream.connect_timeout.min(std::time::Duration::from_secs(2));
    let mut last_error = format!("{authority} has no address");
    for addr in addrs {
        match std::net::TcpStream::connect_timeout(&addr, timeout) {
            Ok(_) => return Ok(()),
            Err(e) => last_error = format!("{authority} does not answer ({e})"),
        }
    }
    Err(last_error)
}

/// The user-hash of `user_id` with the secret key of the site that serves `site` (else the
/// default site's): only `identity.secret_key` is read, so only its variable must be set.
fn hash(path: &Path, user_id: &str, site: Option<&str>) -> CliResult {
    let text = std::fs::read_to_string(path)
        .map_err(|source| crate::config::ConfigError::Read { path: path.display().to_string(), source })?;
    let file = path.display().to_string();
    let chosen = crate::config::hash_key::secret_key(&text, &file, site)?;
    if site.is_none() && chosen.sites > 1 {
        eprintln!("note: {file} has several sites; this is the default site's hash (choose one with --site HOST)");
    }
    let key = chosen
        .secret_key
        .ok_or_else(|| format!("{file}: identity is not configured, so there is no secret key to hash with"))?;
    say(format_args!("{}", identity::user_hash(key.expose(), user_id)));
    Ok(())
}

/// Prints the explanation of one request and exits with its verdict's status; what stops
/// the explanation itself (a bad URL, header or cookie, the config, a site's set-up) is
/// one line on stderr and status 2.
fn explain(path: &Path, url: &str, headers: &[String], cookies: &[String]) -> ExitCode {
    let explained = || -> Result<explain::Explanation, Box<dyn std::error::Error>> {
        let target = explain::Target::new(url, headers, cookies)?;
        let config = Config::load(path)?;
        Ok(block_on(explain::explain(config, &target))??)
    };
    match explained() {
        Ok(explanation) => {
            say(format_args!("{}", explanation.report.trim_end_matches('\n')));
            if let Some(error) = &explanation.error {
                eprintln!("invent-proxy: {error}");
            }
            ExitCode::from(explanation.verdict.exit_code())
        }
        Err(reason) => {
            eprintln!("invent-proxy: {reason}");
            ExitCode::from(2)
        }
    }
}

fn demo(listen: SocketAddr) -> CliResult {
    telemetry::init(&crate::config::Log::default());
    block_on(async {
        let running = demo::start(listen).await.map_err(|e| match e {
            demo::DemoError::Start(listen::StartError::Bind { .. }) => {
                format!("{e} (choose another address with --listen)")
            }
            other => other.to_string(),
        })?;
        say(format_args!("{}", running.instructions()));
        listen::shutdown_signal().await;
        running.shutdown().await;
        Ok(())
    })?
}

/// Runs `future` on the runtime of the accept loop, the admin listener, reloads and key
/// refreshes; connections are served on the proxy's worker threads. Two threads, so that
/// a reload building its sites (trust stores read, key sets fetched) does not hold up
/// accepting. Once it is done (the proxy has drained), whatever is left — an idle DNS
/// lookup thread, say — gets a moment, not a wait.
fn block_on<F: std::future::Future>(future: F) -> std::io::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let output = runtime.block_on(future);
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    Ok(output)
}
