//! HTTP front (hyper): autoconfig, Autodiscover, profiles, MTA-STS.
//! Placeholder until the HTTP issue lands: `start` refuses to run.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::settings::Settings;

/// A running HTTP server.
pub struct HttpServer;

impl HttpServer {
    /// Bind every address and serve the domains of `settings`.
    pub async fn start(_addrs: &[SocketAddr], _settings: &Arc<Settings>) -> anyhow::Result<HttpServer> {
        anyhow::bail!("the HTTP server is not built yet")
    }

    /// Swap in new settings.
    pub fn reload(&self, _settings: &Arc<Settings>) {}

    /// Stop accepting and finish in-flight requests.
    pub async fn shutdown(self) {}
}
