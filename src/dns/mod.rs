//! Authoritative DNS front (hickory-server, UDP and TCP): wire request → records → wire answer.
//! Placeholder until the DNS issue lands: `start` refuses to run.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::settings::Settings;

/// A running DNS server.
pub struct DnsServer;

impl DnsServer {
    /// Bind every address (UDP and TCP) and answer for the zones of `settings`.
    pub async fn start(_addrs: &[SocketAddr], _settings: &Arc<Settings>) -> anyhow::Result<DnsServer> {
        anyhow::bail!("the DNS server is not built yet")
    }

    /// Swap in the zones of new settings.
    pub async fn reload(&self, _settings: &Arc<Settings>) {}

    /// Stop answering.
    pub async fn shutdown(self) {}
}
