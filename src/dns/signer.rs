//! Signed zone files for `mailconf zone`, signed as `serve` signs them (`ZoneSigner`).

use super::rollover::record_zsk_since;
use super::{authority, dnssec, rolls, signed, state, tsig, wire, zone};
use crate::settings::Settings;

/// Signed zone files for `mailconf zone`: a signed domain's zones with their DNSSEC records and
/// signatures, as `serve` serves them in the same signing epoch (the serial it serves or would
/// serve, from `state_dir`; signatures valid for the epoch, so at least half the lifetime).
pub struct ZoneSigner {
    served: authority::Served,
    rolls: rolls::Rolls,
    now: u64,
}

/// The line after which a signed zone file holds only DNSSEC records: all above it (records,
/// serial, epoch, content and key) decides them, up to ECDSA's random signatures.
pub const SIGNED_MARK: &str = "; DNSSEC records and signatures";

impl ZoneSigner {
    pub fn new(settings: &Settings) -> ZoneSigner {
        record_zsk_since(settings);
        ZoneSigner {
            served: state::load(settings.server.state_dir.as_deref()),
            rolls: rolls::Rolls::load(settings.server.state_dir.as_deref()),
            now: tsig::now(),
        }
    }

    /// The zone file of zone `at` of `dr` (records of `domain`), signed; `None` when the
    /// domain's zones are not signed. Makes the key if there is none yet, as `serve` would.
    pub fn zone_file(
        &self,
        settings: &Settings,
        domain: &crate::settings::Domain,
        dr: &crate::records::DomainRecords,
        at: usize,
    ) -> anyhow::Result<Option<String>> {
        let (Some(alg), Some(dir)) = (settings.signed(domain), settings.server.state_dir.as_deref()) else {
            return Ok(None);
        };
        let Some(rz) = dr.zones.get(at) else { return Ok(None) };
        let origin = wire::name_wire(&rz.origin);
        let roll = self.rolls.get(&origin, alg);
        let epochs = dnssec::Epochs::new(
            settings.server.dnssec_signature_lifetime,
            settings.server.dnssec_zsk_lifetime,
        );
        let epoch = epochs.at(&origin, self.now);
        let zsks = epochs.zsks(&origin, epoch, self.rolls.zsk_since(epochs));
        let content = dnssec::served_content(&rz.content, alg.number(), epoch, roll, zsks);
        let serial = self
            .served
            .get(&origin)
            .map_or(rz.serial, |(s, c)| zone::follow(rz.serial, &content, *s, c));
        let validity = epochs.validity(&origin, epoch, signed::max_ttl(rz));
        let (view, _) = authority::build_view(dir, alg, &self.rolls, dr, at, (serial, content), validity, zsks, true)
            .ok_or_else(|| anyhow::anyhow!("no DNSSEC key for {}", rz.origin))?;
        let mut z = rz.clone();
        z.serial = serial;
        if let hickory_server::proto::rr::RData::SOA(soa) = &mut z.groups[0].records[0].data {
            soa.serial = serial;
        }
        let mut text = crate::render::zonefile::zone_file(&z);
        let expires = i64::from(validity.expiration);
        let renew = expires - (epochs.lifetime() / 2) as i64;
        text.push_str(&format!(
            "{SIGNED_MARK} ({}; algorithm {}, signing epoch {epoch}, content {}): valid until {}; \
             run `mailconf zone` again from {} for new ones.\n",
            view.key_summary(),
            alg.number(),
            content[..8].iter().map(|b| format!("{b:02x}")).collect::<String>(),
            crate::acme::clock::iso(expires),
            crate::acme::clock::iso(renew),
        ));
        text.push_str(&view.present());
        Ok(Some(text))
    }
}
