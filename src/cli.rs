//! The command line: `run` (the default), `check`, `hash` and `demo`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, DEFAULT_CONFIG_PATH};
use crate::proxy::Proxy;
use crate::{demo, identity, server, telemetry};

/// A streaming reverse proxy that adds the Invent assistant to every HTML page of the
/// site behind it, recognising signed-in visitors from their session JWT.
#[derive(Debug, Parser)]
#[command(name = "invent-proxy", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// The YAML config file (for run, check and hash).
    #[arg(
        long,
        short = 'c',
        global = true,
        value_name = "FILE",
        env = "INVENT_PROXY_CONFIG",
        default_value = DEFAULT_CONFIG_PATH
    )]
    config: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the proxy (the default when no command is given).
    Run,
    /// Load and validate the config (secrets, keys), print a summary without secrets.
    Check,
    /// Print the user-hash the proxy would inject for a user id.
    Hash {
        /// The user id to hash, exactly as it appears in the session token.
        #[arg(long, value_name = "ID")]
        user_id: String,
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
        Command::Run => run(&cli.config),
        Command::Check => check(&cli.config),
        Command::Hash { user_id } => hash(&cli.config, &user_id),
        Command::Demo { listen } => demo(listen),
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

fn run(path: &Path) -> CliResult {
    let config = Config::load(path)?;
    telemetry::init();
    runtime()?.block_on(async {
        let proxy = server::start(config).await.map_err(|e| match e {
            server::StartError::Bind { .. } => format!("{e} (set `listen` in {})", path.display()),
            other => other.to_string(),
        })?;
        match proxy.tls_addr() {
            Some(tls) => tracing::info!(listen = %proxy.local_addr(), listen_tls = %tls, config = %path.display(), "invent-proxy is serving"),
            None => tracing::info!(listen = %proxy.local_addr(), config = %path.display(), "invent-proxy is serving"),
        }
        server::shutdown_signal().await;
        proxy.shutdown().await;
        Ok(())
    })
}

/// Validates exactly what `run` would build — config, keys, upstream client (and its TLS
/// roots) — without binding a port.
fn check(path: &Path) -> CliResult {
    let config = Config::load(path)?;
    let proxy = Proxy::new(config).map_err(|e| format!("cannot set up the upstream client: {e}"))?;
    println!("{}: OK\n{}", path.display(), proxy.config().summary());
    for warning in proxy.config().warnings() {
        println!("warning: {warning}");
    }
    Ok(())
}

fn hash(path: &Path, user_id: &str) -> CliResult {
    let config = Config::load(path)?;
    let identity = config.identity.ok_or_else(|| {
        format!("{}: identity is not configured, so there is no secret key to hash with", path.display())
    })?;
    println!("{}", identity::user_hash(identity.secret_key.expose(), user_id));
    Ok(())
}

fn demo(listen: SocketAddr) -> CliResult {
    telemetry::init();
    runtime()?.block_on(async {
        let running = demo::start(listen).await.map_err(|e| match e {
            server::StartError::Bind { .. } => {
                format!("{e} (choose another address with --listen)")
            }
            other => other.to_string(),
        })?;
        println!("{}", running.instructions());
        server::shutdown_signal().await;
        running.shutdown().await;
        Ok(())
    })
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()
}
