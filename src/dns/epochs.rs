//! When a signed zone's signatures are made and which keys sign: signature validity (Knot's
//! defaults), signing epochs, and the ZSK schedule as a pure function of the epoch. The keys
//! and the signing itself are in `dnssec`.

/// Signature times (seconds since 1970, RFC 4034 §3.1.5 serial arithmetic on 32 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Validity {
    pub inception: u32,
    pub expiration: u32,
    /// When the signatures must be made again (Knot's `rrsig-refresh` before expiration).
    pub refresh_at: u64,
}

/// Knot's defaults: 14 days of validity, inception 90 minutes in the past (clock skew).
pub(crate) const LIFETIME: u64 = 14 * 86_400;
pub(crate) const BACKDATE: u64 = 90 * 60;
/// Knot's `propagation-delay` default, part of the refresh margin.
const PROPAGATION: u64 = 3_600;

impl Validity {
    /// Signatures made at `now` for a zone whose largest TTL is `max_ttl`, valid `lifetime`
    /// seconds: refreshed while 0.1 × lifetime + propagation delay + max TTL (as Knot's
    /// `rrsig-refresh`), and at most half the lifetime, is still left.
    pub fn at(now: u64, max_ttl: u32, lifetime: u64) -> Validity {
        let expiration = now + lifetime;
        let margin = (lifetime / 10 + PROPAGATION + u64::from(max_ttl)).min(lifetime / 2);
        Validity {
            inception: (now - BACKDATE.min(now)) as u32,
            expiration: expiration as u32,
            refresh_at: expiration.saturating_sub(margin),
        }
    }
}

/// Signing epochs: when a signed zone's signatures are made again, visibly.
///
/// A signed zone is signed for one epoch at a time: its signatures run from the epoch's start
/// (backdated) for `lifetime`, and a new epoch starts every half lifetime (7 days by default),
/// so a signature is always replaced with half its validity left. The epoch is folded into the
/// zone's content fingerprint ([`signed_content`]), so a new epoch is a content change like
/// any other: the SOA serial moves (kept in `state_dir` across restarts) and secondaries get a
/// NOTIFY and transfer the new signatures. Epoch boundaries are spread over the period by a
/// hash of the zone's name, so 100,000 zones do not all move at once.
///
/// [`signed_content`]: super::dnssec::signed_content
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Epochs {
    period: u64,
    /// Epochs per ZSK generation (at least 2, see [`Epochs::zsks`]).
    zsk: u64,
}

/// Knot's `zsk-lifetime` default: 30 days.
pub(crate) const ZSK_LIFETIME: u64 = 30 * 86_400;

impl Epochs {
    /// Epochs of signatures valid `lifetime` seconds (0: the default, 14 days), and ZSKs that
    /// sign for `zsk_lifetime` seconds (0: the default, 30 days), rounded up to whole epochs,
    /// at least 2.
    pub fn new(lifetime: u64, zsk_lifetime: u64) -> Epochs {
        let lifetime = if lifetime == 0 { LIFETIME } else { lifetime };
        let zsk_lifetime = if zsk_lifetime == 0 { ZSK_LIFETIME } else { zsk_lifetime };
        let period = (lifetime / 2).max(1);
        Epochs {
            period,
            zsk: zsk_lifetime.div_ceil(period).max(2),
        }
    }

    /// Seconds an epoch lasts.
    pub fn period(self) -> u64 {
        self.period
    }

    /// Signing epochs per ZSK generation.
    pub fn zsk_epochs(self) -> u64 {
        self.zsk
    }

    /// When `epoch` of zone `origin` starts (seconds since 1970).
    pub fn start(self, origin: &[u8], epoch: u64) -> u64 {
        (epoch * self.period).saturating_sub(self.offset(origin))
    }

    /// The ZSKs of zone `origin` in `epoch` (a pre-publish rollover, RFC 7583 §3.2, one step
    /// per epoch). With k epochs per generation, generation g = epoch / k signs. In the last
    /// epoch of a generation (epoch % k = k − 1) ZSK g + 1 is published beside it, not signing,
    /// so every resolver has it before its first signature (an epoch, 7 days by default, is far
    /// more than the DNSKEY TTL); in the first epoch of a generation (epoch % k = 0) ZSK g − 1
    /// stays published, since its signatures may still be in caches. k ≥ 2, so never both.
    ///
    /// `since`: when this version first served ZSKs on this schedule (`rolls::Rolls::zsk_since`;
    /// `None`: not yet). Before that, zones were signed by their one key (now the KSK) alone,
    /// and a resolver may hold that DNSKEY set, without any ZSK. So in an epoch that started
    /// less than one epoch after `since`, the KSK signs every RRset too (`ksk_too`, a double
    /// signature beside the ZSK's): a resolver with the old DNSKEY set validates with the KSK's
    /// signature, one with the new set with either. The ZSK alone signs only once it was
    /// published for a whole epoch. (The KSK alone beside a published ZSK would validate as
    /// well, but BIND's `dnssec-verify` and Knot's `kzonecheck` reject such a zone.)
    pub fn zsks(self, origin: &[u8], epoch: u64, since: Option<u64>) -> Zsks {
        let k = self.zsk;
        let g = epoch / k;
        let first = if epoch.is_multiple_of(k) {
            g.saturating_sub(1)
        } else {
            g
        };
        let last = if epoch % k == k - 1 { g + 1 } else { g };
        Zsks {
            first,
            last,
            signing: g,
            ksk_too: since.is_none_or(|t| self.start(origin, epoch) < t.saturating_add(self.period)),
        }
    }

    pub fn lifetime(self) -> u64 {
        self.period * 2
    }

    /// Where in the period `origin`'s epochs start (FNV-1a: the same on every run and machine).
    fn offset(self, origin: &[u8]) -> u64 {
        let h = origin.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b.to_ascii_lowercase())).wrapping_mul(0x100_0000_01b3)
        });
        h % self.period
    }

    /// The epoch of zone `origin` (lower-case wire name) at `now`.
    pub fn at(self, origin: &[u8], now: u64) -> u64 {
        (now + self.offset(origin)) / self.period
    }

    /// The full epoch whose low 16 bits are `low` (what a zone keeps), the latest not after
    /// the epoch of `now`.
    pub fn widen(self, origin: &[u8], low: u16, now: u64) -> u64 {
        let cur = self.at(origin, now);
        cur - u64::from((cur as u16).wrapping_sub(low)).min(cur)
    }

    /// The signature times of `epoch` for a zone whose largest TTL is `max_ttl`.
    pub fn validity(self, origin: &[u8], epoch: u64, max_ttl: u32) -> Validity {
        Validity::at(self.start(origin, epoch), max_ttl, self.lifetime())
    }

    /// How often to look for zones whose epoch ended: 1/168 of the period (hourly by default).
    pub fn tick(self) -> std::time::Duration {
        std::time::Duration::from_secs((self.period / 168).clamp(1, 3_600))
    }
}

/// The ZSKs of a zone in one signing epoch ([`Epochs::zsks`]): generations `first..=last` are
/// published (DNSKEY), `signing` signs every RRset but the apex DNSKEY, CDS and CDNSKEY (which
/// the KSKs sign); with `ksk_too` (the first epochs after an upgrade) the KSKs sign those
/// RRsets as well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Zsks {
    pub first: u64,
    pub last: u64,
    pub signing: u64,
    pub ksk_too: bool,
}

impl Zsks {
    /// The published generations, oldest first.
    pub fn published(self) -> std::ops::RangeInclusive<u64> {
        self.first..=self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::dnssec::{served_content, signed_content};

    #[test]
    fn validity_is_backdated_and_refreshed_well_before_expiry() {
        let now = 1_800_000_000;
        let v = Validity::at(now, 3600, LIFETIME);
        assert_eq!(u64::from(v.inception), now - 5400);
        assert_eq!(u64::from(v.expiration), now + 14 * 86_400);
        // Refreshed with 1.4 days + 1 h + the TTL still to go.
        assert_eq!(v.refresh_at, now + 14 * 86_400 - (120_960 + 3600 + 3600));
        // A short lifetime (tests): refreshed at half of it at the latest.
        assert_eq!(Validity::at(now, 3600, 20).refresh_at, now + 10);
    }

    #[test]
    fn epochs_move_every_half_lifetime_spread_by_zone_and_signatures_keep_half_their_life() {
        let e = Epochs::new(0, 0);
        assert_eq!(e.lifetime(), LIFETIME);
        assert_eq!(e.tick(), std::time::Duration::from_secs(3600));
        let a = b"\x07example\x03com\x00";
        let b = b"\x07example\x03net\x00";
        assert_ne!(e.offset(a), e.offset(b), "zones' epochs start at different times");
        assert_eq!(e.offset(a), e.offset(b"\x07EXAMPLE\x03com\x00"));
        // Fake clock: walk 60 days in 10-minute steps.
        let t0 = 1_800_000_000u64;
        let mut changes = 0;
        let mut last = e.at(a, t0);
        for step in 0..(60 * 144) {
            let now = t0 + step * 600;
            let ep = e.at(a, now);
            if ep != last {
                changes += 1;
                last = ep;
            }
            let v = e.validity(a, ep, 3600);
            // Never served before its inception or past its refresh point, and at least half
            // the lifetime (7 days) is left whenever it is served.
            assert!(u64::from(v.inception) + BACKDATE <= now, "{step}");
            assert!(now < v.refresh_at, "{step}");
            assert!(u64::from(v.expiration) >= now + LIFETIME / 2, "{step}");
            assert_eq!(e.widen(a, ep as u16, now), ep);
            assert_eq!(e.widen(a, (ep - 1) as u16, now), ep - 1);
        }
        assert!((8..=9).contains(&changes), "a new epoch every 7 days: {changes}");
        // The content a signed zone is served with moves with the epoch and the algorithm.
        let c = [7u8; 32];
        assert_ne!(signed_content(&c, 13, 1), signed_content(&c, 13, 2));
        assert_ne!(signed_content(&c, 13, 1), signed_content(&c, 15, 1));
        assert_ne!(signed_content(&c, 13, 1), c);
    }

    /// Which ZSKs are published and which signs, epoch by epoch (k = 30 days / 7 days → 5).
    #[test]
    fn zsk_schedule_prepublishes_one_epoch_signs_k_and_retires_one_epoch_after() {
        let e = Epochs::new(0, 0);
        assert_eq!(e.zsk_epochs(), 5, "30 days in 7-day epochs, rounded up");
        assert_eq!(Epochs::new(20, 20).zsk_epochs(), 2);
        assert_eq!(Epochs::new(20, 10).zsk_epochs(), 2, "at least two epochs");
        assert_eq!(Epochs::new(20, 31).zsk_epochs(), 4);
        // Published first..=last, `signing` signs, `ksk`: the KSK signs everything too.
        let z = |first, last, signing, ksk_too| Zsks {
            first,
            last,
            signing,
            ksk_too,
        };
        let o = b"\x07example\x03com\x00";
        let since = Some(0); // long ago: no migration
        // Generation 1000 (epochs 5000–5004) and the next.
        let g = 1000;
        let expect = [
            z(g - 1, g, g, false), // first epoch of g: g − 1 still published
            z(g, g, g, false),
            z(g, g, g, false),
            z(g, g, g, false),
            z(g, g + 1, g, false), // last epoch of g: g + 1 pre-published
            z(g, g + 1, g + 1, false),
            z(g + 1, g + 1, g + 1, false),
        ];
        for (i, want) in expect.iter().enumerate() {
            let epoch = 5 * g + i as u64;
            assert_eq!(e.zsks(o, epoch, since), *want, "epoch {epoch}");
        }
        // Generation 0: no generation −1 to keep.
        assert_eq!(e.zsks(o, 0, None), z(0, 0, 0, true));
        assert_eq!(e.zsks(o, 4, None), z(0, 1, 0, true));
        assert_eq!(e.zsks(o, 5, since), z(0, 1, 1, false));
        // Every generation is published an epoch before it signs and an epoch after.
        let k = 2;
        let e2 = Epochs::new(20, 20);
        for epoch in 1000..1100u64 {
            let (before, now) = (e2.zsks(o, epoch - 1, since), e2.zsks(o, epoch, since));
            assert_eq!(now.signing, epoch / k);
            assert!(before.published().contains(&now.signing), "{epoch}: pre-published");
            assert!(now.published().contains(&before.signing), "{epoch}: still published");
            assert!(now.published().count() <= 2);
        }
        // Migration: in epochs that start less than an epoch after `since` the KSK signs
        // everything too (the same ZSKs are published and sign); from the first epoch that
        // starts an epoch or more after it, the ZSK alone. Without `since` (never recorded) the
        // KSK keeps signing too.
        let period = LIFETIME / 2;
        let epoch = 1000;
        let start = e.start(o, epoch);
        assert_eq!(e.at(o, start), epoch);
        assert_eq!(e.at(o, start - 1), epoch - 1);
        for (since, ksk_too) in [
            (start, true),
            (start - 1, true),
            (start - period + 1, true),
            (start - period, false),
            (start - 3 * period, false),
            (start + period, true),
        ] {
            let got = e.zsks(o, epoch, Some(since));
            assert_eq!(got.ksk_too, ksk_too, "since {since}, epoch start {start}");
            assert_eq!(Zsks { ksk_too: false, ..got }, e.zsks(o, epoch, Some(0)));
        }
        assert!(e.zsks(o, epoch, None).ksk_too);
        // The first epoch where the ZSK signs alone: its ZSK was published in the epoch before,
        // which was served by this version from its start.
        for since in [start - 1, start - period / 2, start - period + 1] {
            let next = e.zsks(o, epoch + 1, Some(since));
            assert!(!next.ksk_too);
            assert!(e.start(o, epoch) >= since);
            assert!(e.zsks(o, epoch, Some(since)).published().contains(&next.signing));
        }
        // What is published or signs is part of the served content.
        let c = [3u8; 32];
        let a = served_content(&c, 13, 7, None, z(1, 1, 1, false));
        assert_ne!(a, served_content(&c, 13, 7, None, z(1, 2, 1, false)));
        assert_ne!(a, served_content(&c, 13, 7, None, z(1, 1, 1, true)));
        assert_ne!(a, served_content(&c, 13, 8, None, z(1, 1, 1, false)));
    }
}
