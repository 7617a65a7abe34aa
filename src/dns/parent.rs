//! `mailconf dnssec retire` checks the parent's DS before the old key goes: the DS of the key
//! that rolls in must be served by the parent, and have been for as long as resolvers may hold
//! the DS set from before it (its TTL). One `retire` run cannot wait that long, so the first
//! sighting is kept in the rollover state (`rolls::DsSeen`) and a later run retires.
//!
//! The DS is asked of a resolver (RD set) or of one of the parent zone's servers (RD clear) with
//! the probe's DNS stub (`crate::probe::net::Resolver`: UDP, TCP when truncated, a timeout). The
//! answer is not validated: it is only compared with our own key, so a forged answer can at worst
//! retire the old key early, which is why the resolver should be one the operator trusts.

use std::net::{IpAddr, SocketAddr};

use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::RecordType;
use hickory_server::proto::serialize::binary::BinEncodable;

use super::dnssec::{ds_matches, ds_text};
use super::rolls::DsSeen;
use crate::probe::net::Resolver;

/// The DS set the parent serves for a zone: each DS's RDATA and the set's TTL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ParentDs {
    pub rdatas: Vec<Vec<u8>>,
    pub ttl: u32,
    /// The answer was NXDOMAIN (the parent does not know the zone at all).
    pub nxdomain: bool,
}

impl ParentDs {
    /// What the parent serves, as comment lines for the operator.
    pub fn describe(&self, origin: &str) -> String {
        if self.rdatas.is_empty() {
            let why = if self.nxdomain { "NXDOMAIN" } else { "no DS record" };
            return format!("; the parent serves no DS for {origin} ({why})\n");
        }
        let mut text = String::from("; the parent serves:\n");
        for ds in &self.rdatas {
            text.push_str(&format!("; {origin} {} IN DS {}\n", self.ttl, ds_text(ds)));
        }
        text
    }
}

/// What the parent's DS says about the key that rolls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The parent does not serve its DS.
    Missing,
    /// It does, since `DsSeen::since`; resolvers may hold the old DS set until `until()`.
    Waiting(DsSeen),
    /// It does, and has for the old DS set's TTL: the old key may go.
    Ready(DsSeen),
}

/// Judge the parent's DS set `parent` of zone `owner` (lower-case wire name) for the key that
/// rolls in, `dnskey` (DNSKEY RDATA) of `generation`, at `now` (seconds since the epoch), with
/// the sighting recorded so far. The wait is the TTL of the DS set the new DS was first seen
/// in: a parent gives all DS records of a zone one TTL, the same before and after the change.
/// Seen through a resolver, that TTL may be what is left of it in the cache; the DS was then
/// fetched that much earlier than the sighting, so the old set's holders still expire by
/// `since + ttl`.
pub(crate) fn judge(
    owner: &[u8],
    dnskey: &[u8],
    generation: u32,
    parent: &ParentDs,
    seen: Option<DsSeen>,
    now: u64,
) -> Verdict {
    if !parent.rdatas.iter().any(|ds| ds_matches(owner, dnskey, ds)) {
        return Verdict::Missing;
    }
    let seen = seen.filter(|s| s.generation == generation).unwrap_or(DsSeen {
        generation,
        since: now,
        ttl: parent.ttl,
    });
    if now >= seen.until() {
        Verdict::Ready(seen)
    } else {
        Verdict::Waiting(seen)
    }
}

/// Ask `resolver` for the DS set of `origin` (ASCII, with or without the final dot).
pub(crate) fn ask(resolver: &Resolver, origin: &str) -> anyhow::Result<ParentDs> {
    let what = if resolver.recursion {
        "the resolver"
    } else {
        "the parent server"
    };
    let answer = resolver
        .query(origin, RecordType::DS)
        .map_err(|e| anyhow::anyhow!("cannot ask {what} {} for the DS of {origin}: {e}", resolver.addr))?;
    if !matches!(answer.rcode, ResponseCode::NoError | ResponseCode::NXDomain) {
        anyhow::bail!("{what} {} answered {} to `{origin} DS`", resolver.addr, answer.rcode);
    }
    if !resolver.recursion && !answer.authoritative {
        anyhow::bail!(
            "{} is not authoritative for the parent zone of {origin} (its answer to `{origin} DS` has no AA bit): \
             give --parent-server one of that zone's name servers, or use --resolver",
            resolver.addr
        );
    }
    let owner = super::wire::lower_wire(origin);
    let mut parent = ParentDs {
        nxdomain: answer.rcode == ResponseCode::NXDomain,
        ..ParentDs::default()
    };
    for r in answer.records.iter().filter(|r| r.record_type() == RecordType::DS) {
        if super::wire::lower_wire(&r.name.to_ascii()) != owner {
            continue;
        }
        let rdata = r
            .data
            .to_bytes()
            .map_err(|e| anyhow::anyhow!("a DS of {origin} from {} does not encode: {e}", resolver.addr))?;
        parent.ttl = parent.ttl.max(r.ttl);
        parent.rdatas.push(rdata);
    }
    Ok(parent)
}

/// An `ADDR[:PORT]` argument (`192.0.2.1`, `192.0.2.1:5353`, `2001:db8::1`, `[2001:db8::1]:53`):
/// port 53 unless given.
pub fn server_addr(text: &str) -> Result<SocketAddr, String> {
    text.parse::<SocketAddr>()
        .or_else(|_| text.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        .map_err(|_| format!("`{text}` is not an IP address with an optional port (ADDR or ADDR:PORT)"))
}

/// The first `nameserver` of resolv.conf text `text` whose address parses, port 53.
pub fn first_nameserver(text: &str) -> Option<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some("nameserver")).then(|| f.next()).flatten()
        })
        .find_map(|a| a.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
}

/// The resolver `retire` asks without `--resolver`: the first `nameserver` of /etc/resolv.conf.
pub fn system_resolver() -> anyhow::Result<SocketAddr> {
    const PATH: &str = "/etc/resolv.conf";
    let text = std::fs::read_to_string(PATH)
        .map_err(|e| anyhow::anyhow!("cannot read {PATH} for a resolver ({e}): give --resolver ADDR[:PORT]"))?;
    first_nameserver(&text)
        .ok_or_else(|| anyhow::anyhow!("no usable `nameserver` line in {PATH}: give --resolver ADDR[:PORT]"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::dnssec::ZoneKey;
    use crate::settings::DnssecAlgorithm;

    #[test]
    fn only_the_new_keys_ds_counts_and_only_after_the_old_sets_ttl() {
        let alg = DnssecAlgorithm::EcdsaP256Sha256;
        let owner = crate::dns::wire::lower_wire("mail.test");
        let old = ZoneKey::from_pkcs8(alg, &ZoneKey::generate(alg).unwrap()).unwrap();
        let new = ZoneKey::from_pkcs8(alg, &ZoneKey::generate(alg).unwrap()).unwrap();
        let set = |dss: &[&ZoneKey], ttl: u32| ParentDs {
            rdatas: dss.iter().map(|k| k.ds(&owner)).collect(),
            ttl,
            nxdomain: false,
        };
        let t = 1_767_225_600;
        // Only the old DS, or nothing: missing.
        for parent in [set(&[&old], 3600), set(&[], 0)] {
            assert_eq!(judge(&owner, &new.dnskey, 1, &parent, None, t), Verdict::Missing);
        }
        // The new DS under another name does not count either.
        let elsewhere = ParentDs {
            rdatas: vec![new.ds(&crate::dns::wire::lower_wire("other.test"))],
            ttl: 3600,
            nxdomain: false,
        };
        assert_eq!(judge(&owner, &new.dnskey, 1, &elsewhere, None, t), Verdict::Missing);
        // First seen (beside the old one, or alone): waiting one TTL from now.
        let first = DsSeen {
            generation: 1,
            since: t,
            ttl: 3600,
        };
        for parent in [set(&[&old, &new], 3600), set(&[&new], 3600)] {
            assert_eq!(judge(&owner, &new.dnskey, 1, &parent, None, t), Verdict::Waiting(first));
        }
        // Later runs keep the first sighting, whatever TTL they see, until it has passed.
        let later = set(&[&new], 60);
        assert_eq!(
            judge(&owner, &new.dnskey, 1, &later, Some(first), t + 3599),
            Verdict::Waiting(first)
        );
        assert_eq!(
            judge(&owner, &new.dnskey, 1, &later, Some(first), t + 3600),
            Verdict::Ready(first)
        );
        // A sighting of another rollover's key is not this one's.
        let stale = DsSeen {
            generation: 5,
            since: t - 100_000,
            ttl: 60,
        };
        assert_eq!(
            judge(&owner, &new.dnskey, 1, &later, Some(stale), t),
            Verdict::Waiting(DsSeen {
                generation: 1,
                since: t,
                ttl: 60
            })
        );
        // A DS of another digest type for the new key counts (SHA-384).
        let mut sha384 = new.ds(&owner)[..3].to_vec();
        sha384.push(4);
        sha384.extend(crate::dns::dnssec::ds_digest(&owner, &new.dnskey, 4).unwrap());
        let parent = ParentDs {
            rdatas: vec![old.ds(&owner), sha384],
            ttl: 10,
            nxdomain: false,
        };
        assert!(matches!(
            judge(&owner, &new.dnskey, 1, &parent, None, t),
            Verdict::Waiting(_)
        ));
        assert!(set(&[], 0).describe("mail.test.").contains("no DS record"));
        let text = set(&[&old], 3600).describe("mail.test.");
        assert!(
            text.contains(&format!("; mail.test. 3600 IN DS {} 13 2 ", old.tag)),
            "{text}"
        );
    }

    #[test]
    fn resolver_addresses_and_resolv_conf() {
        assert_eq!(server_addr("192.0.2.1"), Ok("192.0.2.1:53".parse().unwrap()));
        assert_eq!(server_addr("127.0.0.1:5353"), Ok("127.0.0.1:5353".parse().unwrap()));
        assert_eq!(server_addr("2001:db8::1"), Ok("[2001:db8::1]:53".parse().unwrap()));
        assert_eq!(server_addr("[2001:db8::1]:54"), Ok("[2001:db8::1]:54".parse().unwrap()));
        assert!(server_addr("ns.example").is_err());
        assert_eq!(
            first_nameserver(
                "# comment\nsearch example\nnameserver fe80::1%eth0\nnameserver  10.0.0.53 \nnameserver 10.0.0.54\n"
            ),
            Some("10.0.0.53:53".parse().unwrap()),
            "the first that parses"
        );
        assert_eq!(first_nameserver("search example\n"), None);
    }
}
