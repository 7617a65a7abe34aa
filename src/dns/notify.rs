//! NOTIFY (RFC 1996) to a zone's secondaries after its serial changed.

use std::sync::Arc;
use std::time::Duration;

use hickory_server::proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_server::proto::rr::RecordType;
use tokio::net::UdpSocket;
use tracing::{info, warn};

use super::authority::Changed;
use crate::settings::Settings;

/// RFC 1996 §3.6: retry a few times until the secondary answers.
const TRIES: u32 = 5;
const WAIT: Duration = Duration::from_secs(2);

/// NOTIFY every secondary of a zone (without the optional SOA, RFC 1996 §3.7: the secondary
/// asks for it), TSIG-signed for a secondary given a key in `transfer_to`.
pub(crate) async fn send(zone: Changed, settings: Arc<Settings>) {
    let zone = Arc::new(zone);
    for target in zone.transfer_to.iter().copied() {
        let zone = zone.clone();
        let key = settings
            .server
            .transfer_keys
            .get(&target.ip())
            .and_then(|&k| settings.server.tsig.get(k))
            .cloned();
        tokio::spawn(async move {
            let origin = super::wire::name_from_wire(&zone.origin);
            let mut msg = Message::new(rand_id(zone.serial), MessageType::Query, OpCode::Notify);
            msg.metadata.authoritative = true;
            msg.add_query(Query::query(origin.clone(), RecordType::SOA));
            let Ok(mut bytes) = msg.to_vec() else { return };
            if let Some(key) = &key {
                super::tsig::sign_request(key, &mut bytes, super::tsig::now());
            }
            let bind = if target.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" };
            let Ok(sock) = UdpSocket::bind(bind).await else { return };
            let mut buf = [0u8; 512];
            for attempt in 1..=TRIES {
                if sock.send_to(&bytes, target).await.is_err() {
                    break;
                }
                if let Ok(Ok((n, from))) = tokio::time::timeout(WAIT, sock.recv_from(&mut buf)).await
                    && from == target
                    && n >= 12
                    && buf[2] & 0x80 != 0
                    && u16::from_be_bytes([buf[0], buf[1]]) == msg.metadata.id
                {
                    // The header is enough (a signed answer's TSIG record is not checked).
                    let rcode = ResponseCode::from_low(buf[3] & 0x0f);
                    if rcode == ResponseCode::NoError {
                        info!(zone = %origin, %target, serial = zone.serial, "NOTIFY acknowledged");
                    } else {
                        warn!(zone = %origin, %target, rcode = %rcode, "NOTIFY refused");
                    }
                    return;
                }
                let _ = attempt;
            }
            warn!(zone = %origin, %target, "NOTIFY not answered after {TRIES} tries");
        });
    }
}

/// A message ID that differs per zone and serial (no RNG needed for a handful of messages).
fn rand_id(serial: u32) -> u16 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (serial ^ t) as u16
}
