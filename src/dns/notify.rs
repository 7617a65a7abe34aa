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
/// asks for it), TSIG-signed for a secondary given a key in `transfer_to`. Such a secondary's
/// reply counts only when it is signed with the same key (RFC 8945 §5.3); any other reply from
/// its address is logged once per NOTIFY, counted in `/metrics`, and otherwise ignored.
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
            let request_mac = key
                .as_ref()
                .map(|key| super::tsig::sign_request(key, &mut bytes, super::tsig::now()));
            let bind = if target.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" };
            let Ok(sock) = UdpSocket::bind(bind).await else { return };
            let mut buf = [0u8; 1232];
            let mut distrusted = false;
            for _attempt in 1..=TRIES {
                if sock.send_to(&bytes, target).await.is_err() {
                    break;
                }
                let deadline = tokio::time::Instant::now() + WAIT;
                // Read until a trusted answer or the deadline: a forged or unsigned reply
                // (anyone can send one from the secondary's address) is ignored, not final.
                while let Ok(Ok((n, from))) = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await {
                    if from != target
                        || n < 12
                        || buf[2] & 0x80 == 0
                        || u16::from_be_bytes([buf[0], buf[1]]) != msg.metadata.id
                    {
                        continue;
                    }
                    if let (Some(key), Some(mac)) = (&key, &request_mac)
                        && let Err(why) = super::tsig::verify_reply(key, mac, &buf[..n], super::tsig::now())
                    {
                        crate::metrics::METRICS.notify_reply_untrusted();
                        if !distrusted {
                            let rcode = ResponseCode::from_low(buf[3] & 0x0f);
                            warn!(zone = %origin, %target, key = %key.name, reason = %why, %rcode, "NOTIFY reply not trusted: its TSIG does not verify; still waiting for a signed one");
                            distrusted = true;
                        }
                        continue;
                    }
                    let rcode = ResponseCode::from_low(buf[3] & 0x0f);
                    if rcode == ResponseCode::NoError {
                        info!(zone = %origin, %target, serial = zone.serial, "NOTIFY acknowledged");
                    } else {
                        warn!(zone = %origin, %target, rcode = %rcode, "NOTIFY refused");
                    }
                    return;
                }
            }
            if distrusted {
                warn!(zone = %origin, %target, "NOTIFY got no trusted answer after {TRIES} tries");
            } else {
                warn!(zone = %origin, %target, "NOTIFY not answered after {TRIES} tries");
            }
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
