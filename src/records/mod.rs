//! Settings → the DNS record set. Pure; the only place that decides which records exist.
//!
//! Both the authoritative server (`dns`) and the zone-file writer (`render::zonefile`) consume
//! [`DomainRecords`]; neither adds, drops or changes a record.
//!
//! Sources: RFC 6186 §3 and RFC 8314 §5.1 (mail SRV labels and priorities), RFC 2782 (SRV
//! targets are host names with addresses, never aliases), RFC 7505 (null MX), RFC 7208 (SPF),
//! RFC 7489 (DMARC), RFC 8461 (MTA-STS), RFC 8460 (TLS-RPT), MS-OXDISCO §3.1.5 (`_autodiscover`).
//!
//! Longer than most files here on purpose: one `Builder` with a method per record group is the
//! whole of "which records exist"; the tests live in `tests.rs`.

use std::net::IpAddr;

use hickory_server::proto::rr::rdata::{A, AAAA, CNAME, MX, NS, SOA, SRV, TXT};
use hickory_server::proto::rr::{Name, RData, Record};

use crate::settings::{self, DnsSettings, Domain, MailServer, Settings, WebHost};
use crate::vocab::{self, SRV_LABELS};

/// SOA timers (seconds). RFC 1912 §2.2 ranges; expire two weeks as RIPE-203 recommends.
const SOA_REFRESH: i32 = 14_400;
const SOA_RETRY: i32 = 3_600;
const SOA_EXPIRE: i32 = 1_209_600;
/// The port Autodiscover clients use for `https://<target>/autodiscover/autodiscover.xml`.
const AUTODISCOVER_PORT: u16 = 443;
/// Largest character-string in a TXT record (RFC 1035 §3.3).
const TXT_CHUNK: usize = 255;

/// What a group of records is for; decides where `mailconf zone --format …` puts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKind {
    /// SOA and NS at a zone apex: only in full zone files.
    Apex,
    /// NS records that delegate one of mailconf's zones from its parent.
    Delegation,
    /// Everything a mail client or sender reads.
    Data,
}

/// Records that belong together, with a one-line comment saying what they are for.
#[derive(Debug, Clone)]
pub struct Group {
    pub kind: GroupKind,
    pub comment: String,
    pub records: Vec<Record>,
}

/// One zone mailconf is authoritative for.
#[derive(Debug, Clone)]
pub struct Zone {
    pub origin: Name,
    pub ttl: u32,
    pub serial: u32,
    /// Fingerprint of the content, everything but the SOA serial: "did the zone change?"
    pub content: [u8; 32],
    /// The SOA MINIMUM (negative caching TTL).
    pub negative_ttl: u32,
    pub groups: Vec<Group>,
}

impl Zone {
    /// Every record, in output order.
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.groups.iter().flat_map(|g| g.records.iter())
    }

    /// The SOA record (always the first record).
    pub fn soa(&self) -> &Record {
        &self.groups[0].records[0]
    }
}

/// All records for one mail domain name (a primary domain or one alias).
#[derive(Debug, Clone)]
pub struct DomainRecords {
    /// ASCII, no trailing dot.
    pub domain: String,
    pub zones: Vec<Zone>,
    /// Records that belong in the parent zone the postmaster runs elsewhere: delegations to our
    /// zones and data outside them (MX, SPF, DMARC when only `_tcp` is delegated).
    pub parent: Vec<Group>,
    /// Secondaries allowed to transfer these zones (server list + domain list).
    pub transfer_to: Vec<std::net::SocketAddr>,
}

/// Records for every name of every domain that has a `[domain.dns]` table.
pub fn all(settings: &Settings) -> Vec<DomainRecords> {
    settings
        .domains
        .iter()
        .flat_map(|d| d.names().filter_map(move |n| for_name(settings, d, n)))
        .collect()
}

/// Records for one name of a domain (its primary name or an alias); `None` without DNS settings.
pub fn for_name(settings: &Settings, domain: &Domain, name: &str) -> Option<DomainRecords> {
    for_name_with(settings, domain, name, None, &[])
}

/// TTL of a DNS-01 challenge record: short, it lives for one validation.
const ACME_TTL: u32 = 60;

/// [`for_name`] with the PACC digests to publish given (current first, then any retired one
/// still in its rollover, see [`crate::pacc::Rollover`]), computed once per provider (or per
/// domain declaring its own services) by the caller instead of once per name; `None` computes
/// the current one. `acme`: DNS-01 challenges to publish, (host, TXT value) — only `serve`
/// has them, while an ACME order waits for them (`crate::acme::dns01`), so they never reach
/// zone files.
pub fn for_name_with(
    settings: &Settings,
    domain: &Domain,
    name: &str,
    pacc_digests: Option<&[String]>,
    acme: &[(String, String)],
) -> Option<DomainRecords> {
    let dns = domain.dns.as_ref()?;
    let apex = abs(name);
    let zone_names = dns.zones.iter().map(|z| relative(z, &apex)).collect();
    let b = Builder {
        dns,
        domain: name,
        apex,
        zone_names,
        pacc_digests,
    };
    let mut groups = b.data_groups(domain);
    if !acme.is_empty() {
        groups.push(Group {
            kind: GroupKind::Data,
            comment: "ACME DNS-01 challenges (RFC 8555 §8.4), while an order waits for them".into(),
            records: acme
                .iter()
                .map(|(host, value)| {
                    let name = abs(&format!("{}.{host}", vocab::ACME_CHALLENGE));
                    Record::from_rdata(name, dns.ttl.min(ACME_TTL), RData::TXT(TXT::new(vec![value.clone()])))
                })
                .collect(),
        });
    }
    let apex_is_ours = dns.zones.iter().any(String::is_empty);
    let delegations = b.delegations();
    // Zone i's groups, then (at index zones.len()) the parent's: each starts with its own
    // records (SOA and NS; the delegations), then the data groups' records in order.
    let mut placed: Vec<Vec<Group>> = dns
        .zones
        .iter()
        .map(|z| {
            let mut zgroups = vec![b.apex_group(z)];
            if z.is_empty() && !delegations.records.is_empty() {
                zgroups.push(delegations.clone());
            }
            zgroups
        })
        .collect();
    placed.push(Vec::new());
    if !apex_is_ours && !delegations.records.is_empty() {
        placed[dns.zones.len()].push(delegations);
    }
    // Each record goes where it belongs, once, by value.
    for g in groups {
        let mut parts: Vec<Vec<Record>> = vec![Vec::new(); placed.len()];
        for r in g.records {
            let at = b.zone_index(&r.name).unwrap_or(dns.zones.len());
            parts[at].push(r);
        }
        for (at, records) in parts.into_iter().enumerate() {
            if !records.is_empty() {
                placed[at].push(Group {
                    kind: g.kind,
                    comment: g.comment.clone(),
                    records,
                });
            }
        }
    }
    let parent = placed.pop().unwrap_or_default();
    let zones = dns
        .zones
        .iter()
        .zip(placed)
        .map(|(z, zgroups)| b.finish_zone(z, zgroups))
        .collect();
    let mut transfer_to = settings.server.transfer_to.clone();
    transfer_to.extend(
        dns.transfer_to
            .iter()
            .copied()
            .filter(|ip| !settings.server.transfer_to.contains(ip)),
    );
    Some(DomainRecords {
        domain: name.to_string(),
        zones,
        parent,
        transfer_to,
    })
}

struct Builder<'a> {
    dns: &'a DnsSettings,
    domain: &'a str,
    /// The mail domain as a name.
    apex: Name,
    /// The zone origins, in the order of `dns.zones` (`""`, `"_tcp"`…).
    zone_names: Vec<Name>,
    /// PACC digests to publish, when the caller has them (see `pacc::Rollover`).
    pacc_digests: Option<&'a [String]>,
}

/// An absolute name from an ASCII text that settings already validated.
fn abs(text: &str) -> Name {
    let mut n = Name::from_ascii(text).unwrap_or_else(|e| panic!("settings validated `{text}` as a name: {e}"));
    n.set_fqdn(true);
    n
}

/// `rel` (`""` = the apex itself, `"_imaps._tcp"`…) under `apex`.
fn relative(rel: &str, apex: &Name) -> Name {
    if rel.is_empty() {
        return apex.clone();
    }
    Name::from_ascii(rel)
        .and_then(|n| n.append_domain(apex))
        .unwrap_or_else(|e| panic!("settings validated `{rel}.{apex}` as a name: {e}"))
}

/// Split a TXT value into ≤255-octet character-strings at character boundaries.
pub fn txt_chunks(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in value.chars() {
        if cur.len() + c.len_utf8() > TXT_CHUNK {
            out.push(std::mem::take(&mut cur));
        }
        cur.push(c);
    }
    if !cur.is_empty() || out.is_empty() {
        out.push(cur);
    }
    out
}

impl Builder<'_> {
    /// Absolute name of a label relative to the mail domain (`""` = the domain itself).
    fn name(&self, rel: &str) -> Name {
        relative(rel, &self.apex)
    }

    fn rec(&self, name: Name, data: RData) -> Record {
        Record::from_rdata(name, self.dns.ttl, data)
    }

    fn txt(&self, rel: &str, value: &str) -> Record {
        self.rec(self.name(rel), RData::TXT(TXT::new(txt_chunks(value))))
    }

    /// The zone (of this domain's, an index into its `zones`) that holds `name`: the one with
    /// the longest origin.
    fn zone_index(&self, name: &Name) -> Option<usize> {
        self.zone_names
            .iter()
            .enumerate()
            .filter(|(_, origin)| origin.zone_of(name))
            .max_by_key(|(_, origin)| origin.num_labels())
            .map(|(i, _)| i)
    }

    fn address(&self, name: Name, ip: IpAddr) -> Record {
        match ip {
            IpAddr::V4(v4) => self.rec(name, RData::A(A(v4))),
            IpAddr::V6(v6) => self.rec(name, RData::AAAA(AAAA(v6))),
        }
    }

    fn apex_group(&self, zone: &str) -> Group {
        let origin = self.name(zone);
        let rname = self.rname();
        let soa = SOA::new(
            abs(&self.dns.nameservers[0]),
            rname,
            0,
            SOA_REFRESH,
            SOA_RETRY,
            SOA_EXPIRE,
            self.dns.negative_ttl,
        );
        let mut records = vec![self.rec(origin.clone(), RData::SOA(soa))];
        records.extend(
            self.dns
                .nameservers
                .iter()
                .map(|ns| self.rec(origin.clone(), RData::NS(NS(abs(ns))))),
        );
        Group {
            kind: GroupKind::Apex,
            comment: format!("Zone {}: start of authority and name servers", origin.to_ascii()),
            records,
        }
    }

    /// SOA RNAME: `host.master@example.com` → `host\.master.example.com.` (RFC 1035 §8).
    fn rname(&self) -> Name {
        let default = format!("hostmaster@{}", self.domain);
        let addr = self.dns.hostmaster.as_deref().unwrap_or(&default);
        let (local, dom) = addr.rsplit_once('@').unwrap_or(("hostmaster", self.domain));
        let dom = settings::to_ascii_domain(dom).unwrap_or_else(|_| self.domain.to_string());
        let labels = std::iter::once(local.as_bytes()).chain(dom.split('.').map(str::as_bytes));
        Name::from_labels(labels)
            .map(|mut n| {
                n.set_fqdn(true);
                n
            })
            .unwrap_or_else(|_| abs(&format!("hostmaster.{}", self.domain)))
    }

    fn delegations(&self) -> Group {
        let records = self
            .dns
            .zones
            .iter()
            .filter(|z| !z.is_empty())
            .flat_map(|z| {
                self.dns
                    .nameservers
                    .iter()
                    .map(move |ns| self.rec(self.name(z), RData::NS(NS(abs(ns)))))
            })
            .collect();
        Group {
            kind: GroupKind::Delegation,
            comment: "Delegations: these names are served by mailconf's own zones".into(),
            records,
        }
    }

    fn finish_zone(&self, zone: &str, mut groups: Vec<Group>) -> Zone {
        let (content_serial, content) = fingerprint(&groups);
        let serial = self.dns.serial.unwrap_or(content_serial);
        if let RData::SOA(soa) = &mut groups[0].records[0].data {
            soa.serial = serial;
        }
        Zone {
            origin: self.name(zone),
            ttl: self.dns.ttl,
            serial,
            content,
            negative_ttl: self.dns.negative_ttl,
            groups,
        }
    }

    fn data_groups(&self, domain: &Domain) -> Vec<Group> {
        let mut groups = Vec::new();
        let mut push = |comment: &str, records: Vec<Record>| {
            if !records.is_empty() {
                groups.push(Group {
                    kind: GroupKind::Data,
                    comment: comment.into(),
                    records,
                });
            }
        };
        let apex = self.name("");
        push(
            "Mail exchangers (RFC 5321 §5; `0 .` is the null MX of RFC 7505)",
            self.dns
                .mx
                .iter()
                .map(|m| self.rec(apex.clone(), RData::MX(MX::new(m.preference, abs(&m.host)))))
                .collect(),
        );
        push(
            "Sender Policy Framework (RFC 7208)",
            self.dns.spf.iter().map(|v| self.txt("", v)).collect(),
        );
        push(
            "DMARC policy (RFC 7489)",
            self.dns.dmarc.iter().map(|v| self.txt("_dmarc", v)).collect(),
        );
        push(
            "Mail client settings (RFC 6186, RFC 8314): lowest priority is preferred; `0 0 0 .` = not offered",
            self.mail_srv(&domain.provider.servers),
        );
        push(
            "Outlook Autodiscover service (MS-OXDISCO §3.1.5)",
            self.autodiscover_srv().into_iter().collect(),
        );
        push(
            "Web hosts for Thunderbird autoconfig, Outlook Autodiscover and MTA-STS policies (served by mailconf)",
            self.web_hosts(domain.mta_sts.is_some(), domain.provider.pacc),
        );
        if let Some(sts) = &domain.mta_sts {
            push(
                "MTA-STS policy id (RFC 8461 §3.1)",
                vec![self.txt("_mta-sts", &format!("v=STSv1; id={}", crate::mta_sts::policy_id(sts)))],
            );
        }
        push(
            "Calendars and contacts (RFC 6764 §3, §4): SRV over TLS with the context path beside it; `0 0 0 .` = not offered",
            self.dav_records(domain),
        );
        push(
            "PACC document digest (draft-ietf-mailmaint-pacc-03): base64 SHA-256 of the body at ua-auto-config; a replaced one stays for its TTL",
            self.pacc_txt(domain),
        );
        push(
            "SMTP TLS reporting (RFC 8460)",
            self.dns
                .tls_rpt
                .iter()
                .map(|rua| self.txt("_smtp._tls", &format!("v=TLSRPTv1; rua={rua}")))
                .collect(),
        );
        push(
            "Host addresses",
            self.dns
                .hosts
                .iter()
                .flat_map(|(h, ips)| ips.iter().map(|ip| self.address(self.name(h), *ip)))
                .collect(),
        );
        groups
    }

    /// RFC 6186 §3.4 / RFC 8314 §5.1: servers in configuration order get priorities 0, 10, 20…
    /// (incoming servers counted among themselves, submission servers likewise), weight 1.
    /// A label with no server gets the "decidedly not available" record `0 0 0 .`.
    fn mail_srv(&self, servers: &[MailServer]) -> Vec<Record> {
        let mut out = Vec::new();
        for label in SRV_LABELS {
            let owner = self.name(&format!("{label}._tcp"));
            let mut any = false;
            for (prio, s) in srv_priorities(servers) {
                if vocab::srv_label(s.protocol, s.security) == label {
                    any = true;
                    out.push(self.rec(owner.clone(), RData::SRV(SRV::new(prio, 1, s.port, abs(&s.host)))));
                }
            }
            if !any {
                out.push(self.rec(owner, RData::SRV(SRV::new(0, 0, 0, Name::root()))));
            }
        }
        out
    }

    /// The host that answers `https://…/autodiscover/autodiscover.xml`: never a CNAME we create.
    fn autodiscover_srv(&self) -> Option<Record> {
        let target = match self.dns.autoconfig.as_ref()? {
            WebHost::Addresses(_) => self.name(vocab::AUTODISCOVER),
            WebHost::Cname(t) => abs(t),
        };
        Some(self.rec(
            self.name("_autodiscover._tcp"),
            RData::SRV(SRV::new(0, 1, AUTODISCOVER_PORT, target)),
        ))
    }

    /// RFC 6764 for a domain with any DAV service (its own or its provider's): `_caldavs`/
    /// `_carddavs` SRV to the URL's host and port plus TXT `path=`, the plain labels "not
    /// offered" (RFC 6764 §3 prefers TLS; mailconf never publishes a cleartext DAV service), a
    /// TLS label without a service too.
    fn dav_records(&self, domain: &Domain) -> Vec<Record> {
        let services = domain.services();
        if services.dav_all().next().is_none() {
            return Vec::new();
        }
        let none = || RData::SRV(SRV::new(0, 0, 0, Name::root()));
        let mut out = Vec::new();
        for w in &vocab::DAV {
            let tls = self.name(&format!("{}._tcp", w.srv_tls));
            match services.dav(w.service) {
                Some(d) => {
                    out.push(self.rec(tls.clone(), RData::SRV(SRV::new(0, 1, d.port, abs(&d.host)))));
                    out.push(self.rec(
                        tls,
                        RData::TXT(TXT::new(txt_chunks(&format!(
                            "{}{}",
                            vocab::DAV_TXT_PATH_PREFIX,
                            d.path
                        )))),
                    ));
                }
                None => out.push(self.rec(tls, none())),
            }
            out.push(self.rec(self.name(&format!("{}._tcp", w.srv_plain)), none()));
        }
        out
    }

    /// `_ua-auto-config` TXT: the current digest, then any retired ones still published.
    fn pacc_txt(&self, domain: &Domain) -> Vec<Record> {
        if !domain.provider.pacc {
            return Vec::new();
        }
        let computed;
        let digests = match self.pacc_digests {
            Some(d) => d,
            None => {
                computed = crate::pacc::current(domain).into_iter().collect::<Vec<_>>();
                &computed
            }
        };
        digests
            .iter()
            .map(|d| self.txt(vocab::PACC_TXT_LABEL, &crate::pacc::txt(d)))
            .collect()
    }

    fn web_hosts(&self, mta_sts: bool, pacc: bool) -> Vec<Record> {
        let Some(web) = &self.dns.autoconfig else {
            return Vec::new();
        };
        vocab::web_labels(mta_sts, pacc)
            .flat_map(|l| match web {
                WebHost::Addresses(ips) => ips.iter().map(|ip| self.address(self.name(l), *ip)).collect::<Vec<_>>(),
                WebHost::Cname(t) => vec![self.rec(self.name(l), RData::CNAME(CNAME(abs(t))))],
            })
            .collect()
    }
}

/// SRV priority of every server, in configuration order.
pub fn srv_priorities(servers: &[MailServer]) -> impl Iterator<Item = (u16, &MailServer)> {
    let mut incoming = 0u16;
    let mut outgoing = 0u16;
    servers.iter().map(move |s| {
        let n = if s.is_incoming() { &mut incoming } else { &mut outgoing };
        let prio = n.saturating_mul(10);
        *n += 1;
        (prio, s)
    })
}

/// The one fingerprint of a zone: SHA-256 over every record but the SOA, whose first 32 bits
/// are the default serial (deterministic, but not monotonic: set `serial` in the settings when
/// secondaries must see increasing numbers, RFC 1982; `dns` keeps served serials growing),
/// continued over the SOA's fields but the serial for the content fingerprint.
fn fingerprint(groups: &[Group]) -> (u32, [u8; 32]) {
    let mut h = ring::digest::Context::new(&ring::digest::SHA256);
    let mut soa = None;
    // One line buffer for all records, written without `format!` (see `text`): the line is
    // `{name} {ttl} {data:?}\n`, byte for byte, as serials have always been made from.
    let mut line = String::with_capacity(256);
    for r in groups.iter().flat_map(|g| g.records.iter()) {
        match &r.data {
            RData::SOA(s) => soa = Some((r.ttl, s)),
            data => {
                line.clear();
                text::push_display(&mut line, &r.name);
                line.push(' ');
                line.push_str(itoa::Buffer::new().format(r.ttl));
                line.push(' ');
                text::push_debug(&mut line, data);
                line.push('\n');
                h.update(line.as_bytes());
            }
        }
    }
    let d = h.clone().finish();
    let d = d.as_ref();
    let serial = u32::from_be_bytes([d[0], d[1], d[2], d[3]]).max(1);
    if let Some((ttl, s)) = soa {
        h.update(
            format!(
                "SOA {ttl} {} {} {} {} {} {}",
                s.mname, s.rname, s.refresh, s.retry, s.expire, s.minimum
            )
            .as_bytes(),
        );
    }
    let mut content = [0u8; 32];
    content.copy_from_slice(h.finish().as_ref());
    (serial, content)
}

pub mod catalog;
pub mod text;

#[cfg(test)]
mod tests;
