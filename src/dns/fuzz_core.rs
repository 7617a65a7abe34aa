//! The answering core without sockets (`Core`), for the fuzz targets (`crate::fuzzing`).

use std::sync::Arc;

use super::authority::{self, Authority, Shared};
use super::{tsig, udp, wire};
use crate::settings::Settings;

/// The answering core without sockets, for the fuzz targets (`crate::fuzzing`): the same
/// functions the UDP threads and TCP connections call.
pub(crate) struct Core(Authority);

impl Core {
    pub(crate) fn new(settings: Arc<Settings>) -> Core {
        Core(Authority::new(
            settings,
            Arc::new(Shared::default()),
            &crate::pacc::Rollover::default(),
        ))
    }

    /// What a UDP thread sends for `pkt` from `peer` (`None`: nothing).
    pub(crate) fn udp(&self, pkt: &[u8], peer: std::net::IpAddr) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        udp::answer(&self.0, pkt, peer, &mut out).map(|_| out)
    }

    /// What a rate-limited UDP client gets on a slip.
    pub(crate) fn udp_slip(pkt: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        udp::truncated(pkt, &mut out).then_some(out)
    }

    /// The frames a TCP connection sends for `pkt` from `peer` (empty: nothing).
    pub(crate) fn tcp(&self, pkt: &[u8], peer: std::net::IpAddr) -> Vec<Vec<u8>> {
        match self.0.respond(pkt, authority::Transport::Tcp, peer) {
            authority::Reply::Message(m) => vec![m],
            authority::Reply::Transfer(frames) => frames,
            authority::Reply::Drop => Vec::new(),
        }
    }

    /// This core after a reload to `settings` (unchanged zones kept, the catalog journaled).
    pub(crate) fn reload(&self, settings: Arc<Settings>) -> Core {
        Core(self.0.reload(settings).0)
    }

    /// Sign a request with `key` at `time` (seconds), as a secondary would.
    pub(crate) fn sign_request(key: &crate::settings::TsigKey, msg: &mut Vec<u8>, time: u64) {
        tsig::sign_request(key, msg, time);
    }

    /// The TSIG clock (seconds since the epoch).
    pub(crate) fn now() -> u64 {
        tsig::now()
    }

    /// How the fast path reads `pkt`, if it takes it: lower-case wire qname, qtype, EDNS payload.
    pub(crate) fn plain(pkt: &[u8]) -> Option<(Vec<u8>, u16, Option<u16>)> {
        wire::plain(pkt).map(|p| (p.lower().to_vec(), p.qtype, p.edns.map(|e| e.payload)))
    }
}
