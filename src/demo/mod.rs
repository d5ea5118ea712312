//! `invent-proxy demo`: a small legacy site with the proxy in front of it, so a newcomer
//! sees the widget, then their verified identity in it after logging in.
//!
//! The demo's proxy is configured from YAML like any other (see [`config_yaml`]); the
//! site (`site`) signs its session cookie with the key the proxy verifies.

mod site;

use std::net::SocketAddr;
use std::path::Path;

use crate::config::Config;
use crate::config::ConfigError;
use crate::identity;
use crate::listen::{self, RunningProxy, StartError};

/// The demo assistant's secret key (demo only: a real one comes from the environment).
pub const DEMO_SECRET_KEY: &str = "demo-assistant-secret-key";
/// The key the demo site signs its session JWTs with.
pub const DEMO_SESSION_SECRET: &str = "demo-session-signing-secret";
/// The cookie the demo site keeps its session in.
pub const DEMO_SESSION_COOKIE: &str = "demo_session";
/// The user the demo's login signs in.
pub const DEMO_USER_ID: &str = "42";
pub const DEMO_USER_NAME: &str = "Ada Lovelace";
/// Where the demo site serves a stand-in for the widget's script, so the demo works
/// offline and shows the attributes it received.
pub const DEMO_SCRIPT_PATH: &str = "/__invent-demo/button.js";

/// The demo's config: the proxy on `listen`, in front of the site on `site`.
pub fn config_yaml(listen: SocketAddr, site: SocketAddr) -> String {
    format!(
        r##"listen: {listen}
upstream:
  url: http://{site}
assistant:
  id: ast_demo
  script_url: {DEMO_SCRIPT_PATH}
  theme:
    appearance: dark
    button_background_color: "#6366f1"
    button_color: "#ffffff"
identity:
  secret_key: {DEMO_SECRET_KEY}
  jwt:
    cookie: {DEMO_SESSION_COOKIE}
    algorithms: [HS256]
    secret: {DEMO_SESSION_SECRET}
    claims:
      user_id: sub
      user_name: name
shutdown_grace_period: 2s
"##
    )
}

/// The running demo: the site and the proxy in front of it.
pub struct RunningDemo {
    proxy: RunningProxy,
    site: site::RunningSite,
}

impl RunningDemo {
    /// Where to point a browser.
    pub fn proxy_addr(&self) -> SocketAddr {
        self.proxy.local_addr()
    }

    /// What to print for the person who started the demo.
    pub fn instructions(&self) -> String {
        let url = format!("http://{}", self.proxy_addr());
        format!(
            "invent-proxy demo\n\n\
             \x20 Proxy (open this):  {url}/\n\
             \x20 Sample site:        http://{site} (direct, without the widget)\n\n\
             \x20 1. Open {url}/ — the Invent bubble is in the bottom-right corner; you are anonymous.\n\
             \x20 2. Click \"Log in\" ({url}/login) — the site sets a signed session cookie, and the\n\
             \x20    bubble now shows user-id {DEMO_USER_ID} ({DEMO_USER_NAME}) with its user-hash:\n\
             \x20    {hash}\n\
             \x20 3. Also try {url}/legacy (no </body>), {url}/api/status (JSON, untouched), {url}/logout.\n\n\
             The demo's secrets (made up, for this demo only), to check the hash by hand:\n\
             \x20 assistant secret key:  {DEMO_SECRET_KEY}\n\
             \x20 session JWT secret:    {DEMO_SESSION_SECRET} (HS256, cookie {DEMO_SESSION_COOKIE})\n\
             \x20 user-hash = hex(HMAC-SHA256(secret key, user id)):\n\
             \x20   printf %s {DEMO_USER_ID} | openssl dgst -sha256 -hmac {DEMO_SECRET_KEY}\n\n\
             Press Ctrl-C to stop.",
            site = self.site.local_addr(),
            hash = identity::user_hash(DEMO_SECRET_KEY, DEMO_USER_ID),
        )
    }

    /// Stops the proxy, then the site.
    pub async fn shutdown(self) {
        self.proxy.shutdown().await;
        self.site.shutdown();
    }
}

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Start(#[from] StartError),
}

/// Starts the sample site on a free loopback port and the proxy on `listen`.
pub async fn start(listen: SocketAddr) -> Result<RunningDemo, DemoError> {
    let site = site::start().await?;
    let yaml = config_yaml(listen, site.local_addr());
    let config = Config::from_yaml(&yaml, "<demo config>", Path::new("."))?;
    let proxy = listen::start(config).await?;
    Ok(RunningDemo { proxy, site })
}
