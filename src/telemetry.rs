//! Logs: the `tracing` set-up, in text or JSON, at the configured level. Each request's
//! access line is written by the pipeline ([`crate::pipeline`]), under [`ACCESS_TARGET`].

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// The `tracing` target of access lines, for filtering (`RUST_LOG=access=off`).
pub(crate) const ACCESS_TARGET: &str = "access";

/// Installs the global subscriber: `log.format`, and `RUST_LOG` if set, else `log.level`.
pub(crate) fn init(log: &crate::config::Log) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&log.level));
    // A second call (tests run the proxy more than once) keeps the first subscriber.
    let _ = match log.format {
        LogFormat::Text => {
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
            tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).try_init()
        }
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_env_filter(filter)
            .try_init(),
    };
}
