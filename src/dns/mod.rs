//! Authoritative DNS front, UDP and TCP: wire request → zones from `records` → wire answer.
//!
//! Built on hickory-proto's message types (re-exported by hickory-server) where a message is
//! rare (errors, transfers, NOTIFY). The hot path is our own: hickory-server's generic request
//! path reached 0.42× Knot's UDP rate on this hardware. `zone` encodes every answer once, with
//! names under the mail domain as pointers into the question, so one provider's answers are
//! shared by all its domains; `answer` writes header + question + those bytes; `authority`
//! indexes the names and builds zones on demand; `transfer` answers AXFR from `records`.

mod answer;
mod authority;
mod catalog;
mod dnssec;
mod encode;
mod keystore;
mod notify;
mod parent;
mod signed;
mod state;
mod tcp;
mod transfer;
mod tsig;
mod udp;
mod wire;
mod zone;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use arc_swap::ArcSwap;
use tracing::{info, warn};

use crate::settings::Settings;
use authority::{Authority, Shared};

/// A running DNS server.
pub struct DnsServer {
    state: Arc<ArcSwap<Authority>>,
    /// Held while a new snapshot is made from the current one (a reload, re-signing), so
    /// that neither replaces the other's.
    swapping: Arc<tokio::sync::Mutex<()>>,
    stop: Arc<AtomicBool>,
    resign_task: Option<tokio::task::JoinHandle<()>>,
    rolls_task: Option<tokio::task::JoinHandle<()>>,
    acme_task: Option<tokio::task::JoinHandle<()>>,
    udp_threads: Vec<JoinHandle<()>>,
    tcp_tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The addresses actually bound (port 0 resolved).
    pub local_addrs: Vec<SocketAddr>,
}

impl DnsServer {
    /// Bind every address (UDP and TCP) and answer for the zones of `settings`. Zones are built
    /// on their first query and by a background warm-up that starts here.
    pub async fn start(addrs: &[SocketAddr], settings: &Arc<Settings>) -> anyhow::Result<DnsServer> {
        let previous = state::load(settings.server.state_dir.as_deref());
        record_zsk_since(settings);
        let shared = Arc::new(Shared {
            previous,
            ..Shared::default()
        });
        let s = settings.clone();
        let pacc = crate::pacc::Rollover::load(settings.server.state_dir.as_deref());
        let auth = tokio::task::spawn_blocking(move || Authority::new(s, shared, &pacc)).await?;
        auth.pacc().save(settings.server.state_dir.as_deref());
        info!(
            names = auth.counts().0,
            dnssec_cache_zones = auth.shared().views.capacity(),
            "DNS names indexed"
        );
        let state = Arc::new(ArcSwap::from_pointee(auth));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
        let mut server = DnsServer {
            state,
            swapping: Arc::default(),
            stop,
            resign_task: None,
            rolls_task: None,
            acme_task: None,
            udp_threads: Vec::new(),
            tcp_tasks: Vec::new(),
            local_addrs: Vec::new(),
        };
        for addr in addrs {
            // UDP and TCP on one port. For port 0, a UDP socket without SO_REUSEPORT (so it can
            // share with no one) finds a port free for UDP; it holds the port until TCP has it too
            // and is then the socket served.
            let mut tries = if addr.port() == 0 { 20 } else { 1 };
            let (listener, bound, handles) = loop {
                tries -= 1;
                let attempt = (|| {
                    let (at, udp_at) = if addr.port() == 0 {
                        let sock = udp::bind_picked(*addr)?;
                        (sock.local_addr()?, udp::Udp::Picked(sock))
                    } else {
                        (*addr, udp::Udp::At(*addr))
                    };
                    let listener = crate::listen::tcp(at, "DNS")?;
                    let (bound, handles) = udp::spawn(udp_at, threads, server.state.clone(), server.stop.clone())?;
                    anyhow::Ok((listener, bound, handles))
                })();
                match attempt {
                    Ok(done) => break done,
                    Err(e) if tries == 0 => return Err(e),
                    Err(_) => continue,
                }
            };
            server.udp_threads.extend(handles);
            server
                .tcp_tasks
                .push(tokio::spawn(tcp::serve(listener, server.state.clone())));
            info!(addr = %bound, "DNS listening on UDP and TCP");
            server.local_addrs.push(bound);
        }
        warm_up(&server.state, &server.stop);
        make_keys(&server.state, &server.stop);
        server.resign_task = Some(tokio::spawn(resign(
            server.state.clone(),
            server.swapping.clone(),
            server.stop.clone(),
        )));
        server.rolls_task = Some(tokio::spawn(watch_rolls(
            server.state.clone(),
            server.swapping.clone(),
            server.stop.clone(),
        )));
        server.acme_task = Some(tokio::spawn(acme_challenges(
            server.state.clone(),
            server.swapping.clone(),
            server.stop.clone(),
        )));
        Ok(server)
    }

    /// Swap in the zones of new settings and NOTIFY the secondaries of zones whose serial moved.
    /// Domains whose settings did not change keep their zones as they are.
    pub async fn reload(&self, settings: &Arc<Settings>) {
        let _one_at_a_time = self.swapping.lock().await;
        let started = std::time::Instant::now();
        let old = self.state.load_full();
        let s = settings.clone();
        let recorded = settings.clone();
        let _ = tokio::task::spawn_blocking(move || record_zsk_since(&recorded)).await;
        let Ok((new, changed)) = tokio::task::spawn_blocking(move || old.reload(s)).await else {
            return;
        };
        info!(
            names = new.counts().0,
            changed = changed.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "DNS zones reloaded"
        );
        install(&self.state, &self.stop, new, changed).await;
    }

    /// Stop answering.
    pub async fn shutdown(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self
            .tcp_tasks
            .iter()
            .chain(&self.resign_task)
            .chain(&self.rolls_task)
            .chain(&self.acme_task)
        {
            t.abort();
        }
        let threads = self.udp_threads;
        let _ = tokio::task::spawn_blocking(move || threads.into_iter().for_each(|t| drop(t.join()))).await;
    }
}

/// Serve `new`: record its serials, NOTIFY the secondaries of the `changed` zones, and build
/// the zones not built yet in the background.
async fn install(
    state: &Arc<ArcSwap<Authority>>,
    stop: &Arc<AtomicBool>,
    new: Authority,
    changed: Vec<authority::Changed>,
) {
    let new = Arc::new(new);
    state.store(new.clone());
    let settings = new.settings_arc();
    let saved = new.clone();
    let _ = tokio::task::spawn_blocking(move || {
        saved.shared().interner.purge();
        state::save(saved.settings().server.state_dir.as_deref(), || saved.served());
        saved.pacc().save(saved.settings().server.state_dir.as_deref());
    })
    .await;
    for zone in changed {
        tokio::spawn(notify::send(zone, settings.clone()));
    }
    warm_up(state, stop);
    make_keys(state, stop);
}

/// Re-signing: once a tick, when a signed zone's signing epoch ended (`dnssec::Epochs`), the
/// same settings are reloaded. That rebuilds just those zones with their new epoch, so their
/// serials move and their secondaries get a NOTIFY, exactly as for a changed record; their
/// signed views are then made again (with the new epoch's signatures) on the next DO query
/// or transfer. Nothing per query: answers read the zones as before.
async fn resign(state: Arc<ArcSwap<Authority>>, swapping: Arc<tokio::sync::Mutex<()>>, stop: Arc<AtomicBool>) {
    loop {
        let tick = state.load().epochs().tick();
        tokio::time::sleep(tick).await;
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let _one_at_a_time = swapping.lock().await;
        let old = state.load_full();
        let check = old.clone();
        let due = tokio::task::spawn_blocking(move || check.epochs_ended(tsig::now())).await;
        if !due.unwrap_or(false) {
            continue;
        }
        let started = std::time::Instant::now();
        let settings = old.settings_arc();
        let Ok((new, changed)) = tokio::task::spawn_blocking(move || old.reload(settings)).await else {
            continue;
        };
        info!(
            zones = changed.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "DNSSEC signing epoch ended: zones re-signed with new serials"
        );
        install(&state, &stop, new, changed).await;
    }
}

/// Key rollovers: `mailconf dnssec roll` and `retire` write `state_dir/dnssec/rolls`
/// (`keystore::Rolls`). Every 2 s this looks at that file (a `stat`, nothing per zone) and, when
/// it changed, reloads the same settings: the zones whose rollover moved on are rebuilt with
/// their keys, get a new serial and a NOTIFY; nothing else changes. A SIGHUP reload reads the
/// file as well.
async fn watch_rolls(state: Arc<ArcSwap<Authority>>, swapping: Arc<tokio::sync::Mutex<()>>, stop: Arc<AtomicBool>) {
    use std::os::unix::fs::MetadataExt;
    let stamp = |state: &ArcSwap<Authority>| {
        let dir = state.load().settings().server.state_dir.clone()?;
        let m = std::fs::metadata(keystore::Rolls::path(&dir)).ok()?;
        Some((m.ino(), m.mtime(), m.mtime_nsec(), m.len()))
    };
    let mut seen = stamp(&state);
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let now = stamp(&state);
        if now == seen {
            continue;
        }
        seen = now;
        let _one_at_a_time = swapping.lock().await;
        let old = state.load_full();
        let settings = old.settings_arc();
        let Ok((new, changed)) = tokio::task::spawn_blocking(move || old.reload(settings)).await else {
            continue;
        };
        // A sighting of the parent's DS (`mailconf dnssec retire`) changes the file, no key.
        if !changed.is_empty() {
            info!(
                zones = changed.len(),
                "DNSSEC key rollover state changed: zones re-signed with new serials"
            );
        }
        install(&state, &stop, new, changed).await;
    }
}

/// ACME DNS-01 (`crate::acme::dns01`): each time the challenges posted on the board change,
/// the zones that hold them are built again with them (or without, once they are taken down),
/// their serials move and their secondaries get a NOTIFY, as for a changed record; then the
/// board learns which names are served, and by which secondaries. Nothing per query.
async fn acme_challenges(state: Arc<ArcSwap<Authority>>, swapping: Arc<tokio::sync::Mutex<()>>, stop: Arc<AtomicBool>) {
    let board = &crate::acme::dns01::BOARD;
    let mut changes = board.subscribe();
    loop {
        if changes.changed().await.is_err() || stop.load(Ordering::Relaxed) {
            return;
        }
        let _one_at_a_time = swapping.lock().await;
        changes.borrow_and_update();
        let (generation, entries) = board.snapshot();
        let started = std::time::Instant::now();
        let old = state.load_full();
        let count = entries.len();
        let Ok((new, changed, placed)) = tokio::task::spawn_blocking(move || old.with_acme(&entries)).await else {
            continue;
        };
        info!(
            challenges = count,
            served = placed.len(),
            zones = changed.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "ACME DNS-01 challenges: zones rebuilt"
        );
        install(&state, &stop, new, changed).await;
        board.mark_served(crate::acme::dns01::Served {
            generation,
            placed: Arc::new(placed),
        });
    }
}

/// Build the zones nobody asked for yet in the background, then record the serials in
/// `state_dir`. Gives up when a reload replaced the snapshot (the reload starts another).
fn warm_up(state: &Arc<ArcSwap<Authority>>, stop: &Arc<AtomicBool>) {
    let state = state.clone();
    let stop = stop.clone();
    let spawned = std::thread::Builder::new().name("dns-warm-up".into()).spawn(move || {
        let auth = state.load_full();
        let started = std::time::Instant::now();
        let replaced = || stop.load(Ordering::Relaxed) || !Arc::ptr_eq(&state.load(), &auth);
        if auth.build_all(replaced) {
            let (names, zones) = auth.counts();
            let (blobs, bytes) = auth.shared().interner.stats();
            info!(
                names,
                zones,
                distinct_answers = blobs,
                answer_bytes = bytes,
                seconds = started.elapsed().as_secs_f32(),
                "DNS zones built"
            );
            state::save(auth.settings().server.state_dir.as_deref(), || auth.served());
            crate::heap::release();
        }
    });
    if let Err(e) = spawned {
        warn!(error = %e, "cannot start the zone warm-up thread: zones are built on first query");
    }
}

/// Make the keys of signed zones that have none, in batches, in the background (`keystore`).
/// Gives up when a reload replaced the snapshot (the reload starts another).
fn make_keys(state: &Arc<ArcSwap<Authority>>, stop: &Arc<AtomicBool>) {
    let auth = state.load_full();
    let Some(dir) = auth.settings().server.state_dir.clone() else {
        return;
    };
    if auth.signed_origins().next().is_none() {
        return;
    }
    let state = state.clone();
    let stop = stop.clone();
    let spawned = std::thread::Builder::new().name("dnssec-keys".into()).spawn(move || {
        let started = std::time::Instant::now();
        let replaced = || stop.load(Ordering::Relaxed) || !Arc::ptr_eq(&state.load(), &auth);
        match keystore::make_keys(&dir, auth.signed_origins(), replaced) {
            Ok(done) if done.made > 0 => {
                let seconds = started.elapsed().as_secs_f64();
                info!(
                    made = done.made,
                    existing = done.existing,
                    seconds = seconds as f32,
                    keys_per_second = (done.made as f64 / seconds.max(1e-6)) as u64,
                    "DNSSEC keys made"
                );
            }
            Ok(_) => {}
            Err(e) => warn!(
                error = %format!("{e:#}"),
                "cannot make DNSSEC keys: DO queries to zones without one get unsigned answers"
            ),
        }
    });
    if let Err(e) = spawned {
        warn!(error = %e, "cannot start the DNSSEC key thread");
    }
}

/// Record, once per ZSK schedule, when zones were first signed with ZSKs on it
/// (`keystore::Rolls::record_zsk_since`): for settings with signed domains and a `state_dir`.
/// If it cannot be written, the KSKs go on signing everything beside the ZSKs (still valid),
/// and the log says why.
fn record_zsk_since(settings: &Settings) {
    let Some(dir) = settings.server.state_dir.as_deref() else {
        return;
    };
    if !settings.domains.iter().any(|d| settings.signed(d).is_some()) {
        return;
    }
    let epochs = dnssec::Epochs::new(
        settings.server.dnssec_signature_lifetime,
        settings.server.dnssec_zsk_lifetime,
    );
    if let Err(e) = keystore::Rolls::record_zsk_since(dir, tsig::now(), epochs) {
        warn!(error = %format!("{e:#}"), "cannot record the start of ZSK signing: the KSKs keep signing every RRset too");
    }
}

/// Make the keys of the signed zones of `settings` (or of mail domain name `only`) that have
/// none, in batches (`keystore`): for `mailconf zone`, before it reads them one by one.
pub fn make_keys_for(settings: &Settings, only: Option<&str>) -> anyhow::Result<()> {
    let Some(dir) = settings.server.state_dir.as_deref() else {
        return Ok(());
    };
    let origins = settings.domains.iter().flat_map(|d| {
        let alg = settings.signed(d);
        d.names()
            .filter(move |n| only.is_none_or(|o| o == *n))
            .flat_map(move |name| {
                alg.into_iter()
                    .flat_map(move |alg| crate::records::catalog::zone_origins(d, name).map(move |o| (o, alg)))
            })
    });
    keystore::make_keys(dir, origins, || false)?;
    Ok(())
}

/// The signed zones of `settings` (or of the mail domain name `only`) whose parent is not one
/// of our zones: the zones whose DS the registrar holds. Origin (ASCII), wire name, TTL and
/// algorithm of each.
fn registrar_zones(
    settings: &Settings,
    only: Option<&str>,
) -> Vec<(String, Box<[u8]>, u32, crate::settings::DnssecAlgorithm)> {
    let mut out = Vec::new();
    for d in &settings.domains {
        let Some(alg) = settings.signed(d) else { continue };
        for name in d.names().filter(|n| only.is_none_or(|o| o == *n)) {
            let Some(dr) = crate::records::for_name(settings, d, name) else {
                continue;
            };
            let origins: Vec<Box<[u8]>> = dr.zones.iter().map(|z| wire::name_wire(&z.origin)).collect();
            for (z, origin) in dr.zones.iter().zip(&origins) {
                let delegated_by_us = origins
                    .iter()
                    .any(|o| o.len() < origin.len() && wire::suffix_at(origin, o).is_some());
                if !delegated_by_us {
                    out.push((z.origin.to_ascii(), origin.clone(), z.ttl, alg));
                }
            }
        }
    }
    out
}

/// One DS line (digest type 2) for `key` of zone `origin`.
fn ds_line(origin: &str, wire_origin: &[u8], ttl: u32, key: &dnssec::ZoneKey) -> String {
    let ds = key.ds(wire_origin);
    let hex: String = ds[4..].iter().map(|b| format!("{b:02X}")).collect();
    format!(
        "{} {ttl} IN DS {} {} {} {hex}\n",
        origin.to_ascii_lowercase(),
        key.tag,
        ds[2],
        ds[3]
    )
}

/// `mailconf zone --format ds`: the DS records (digest type 2) the parent zones need for the
/// signed zones of `settings` (or of the mail domain name `only`), one line each, in zone-file
/// syntax; during a key rollover, one for each key. Zones delegated from another zone of ours
/// get their DS there and are not listed. Makes the keys that do not exist yet, as `serve`
/// would.
pub fn ds_records(settings: &Settings, only: Option<&str>) -> anyhow::Result<String> {
    let Some(dir) = settings.server.state_dir.as_deref() else {
        return Ok(String::new());
    };
    make_keys_for(settings, only)?;
    let rolls = keystore::Rolls::load(Some(dir));
    let mut text = String::new();
    for (origin, wire_origin, ttl, alg) in registrar_zones(settings, only) {
        for generation in rolls.of(&wire_origin, alg).generations() {
            let key = keystore::zone_key(dir, &origin, alg, generation)?;
            text.push_str(&ds_line(&origin, &wire_origin, ttl, &key));
        }
    }
    Ok(text)
}

/// `mailconf dnssec roll --domain NAME`: start a rollover of the key of each zone of `name`
/// whose DS the registrar holds. Makes the new key and records the rollover in `state_dir`;
/// `serve` then (within seconds, see `watch_rolls`) publishes both keys, signs with both, moves
/// the serial and NOTIFYs. Returns what the operator needs: the new DS records.
pub fn roll(settings: &Settings, name: &str) -> anyhow::Result<String> {
    let (dir, zones, mut rolls) = rollover_zones(settings, name)?;
    let mut text = String::new();
    for (origin, wire_origin, ttl, alg) in &zones {
        let now = rolls.of(wire_origin, *alg);
        if now.rolling {
            anyhow::bail!(
                "a rollover of {origin} is under way already: finish it with `mailconf dnssec retire --domain {name}`"
            );
        }
        let old = keystore::zone_key(dir, origin, *alg, now.generation)?;
        let new = keystore::zone_key(dir, origin, *alg, now.generation + 1)?;
        // Both generations published.
        rolls.set(
            wire_origin,
            *alg,
            keystore::Roll {
                generation: now.generation,
                rolling: true,
            },
        );
        rolls.set_ds_seen(wire_origin, *alg, None);
        text.push_str(&format!(
            "; {origin}: new key {} published beside key {}, both sign. New DS:\n",
            new.tag, old.tag
        ));
        text.push_str(&ds_line(origin, wire_origin, *ttl, &new));
    }
    rolls.save(dir)?;
    Ok(text)
}

/// How `retire` makes sure the parent serves the new DS.
pub enum ParentCheck {
    /// `--force`: it does not.
    Skip,
    /// Ask for each zone's DS (see `parent`): `server`, or the first name server of
    /// /etc/resolv.conf; with `recursion` (RD) for a resolver, without for a parent server.
    Ask {
        server: Option<SocketAddr>,
        recursion: bool,
        timeout: std::time::Duration,
    },
}

pub use parent::server_addr;

/// What `roll` or `retire` did.
#[derive(Debug)]
pub enum Outcome {
    /// Done; the text says what, with the DS records (in force, or new).
    Done(String),
    /// Nothing retired: the parent does not serve the new DS (the text gives it, and what the
    /// parent serves), or not for long enough yet (the text says until when). Running the same
    /// command later retires.
    NotYet(String),
}

/// `mailconf dnssec retire --domain NAME`: end the rollovers `roll` started for `name`: the
/// old keys are no longer published nor used (their files stay in `state_dir`).
///
/// Unless `check` is `Skip`, only once the parent serves the DS of every new key and has for
/// the TTL of its DS set (see `parent::judge`): a first sighting is recorded in the rollover
/// state and the retirement refused (`NotYet`) until then; a DS that is no longer served
/// forgets its sighting. Nothing else changes while refused.
pub fn retire(settings: &Settings, name: &str, check: &ParentCheck) -> anyhow::Result<Outcome> {
    let (dir, zones, mut rolls) = rollover_zones(settings, name)?;
    let mut keys = Vec::new();
    for (origin, wire_origin, _, alg) in &zones {
        let now = rolls.of(wire_origin, *alg);
        if !now.rolling {
            anyhow::bail!(
                "no rollover of {origin} is under way: start one with `mailconf dnssec roll --domain {name}`"
            );
        }
        let old = keystore::zone_key(dir, origin, *alg, now.generation)?;
        let new = keystore::zone_key(dir, origin, *alg, now.generation + 1)?;
        keys.push((now.generation, old, new));
    }
    let mut text = String::new();
    match check {
        ParentCheck::Skip => text.push_str("; --force: the parent's DS was not checked\n"),
        ParentCheck::Ask {
            server,
            recursion,
            timeout,
        } => {
            let resolver = crate::probe::net::Resolver {
                addr: match server {
                    Some(a) => *a,
                    None => parent::system_resolver()?,
                },
                timeout: *timeout,
                recursion: *recursion,
            };
            let resolver = &resolver;
            let before = rolls.clone();
            let mut ready = true;
            for ((origin, wire_origin, ttl, alg), (generation, _, new)) in zones.iter().zip(&keys) {
                let served = parent::ask(resolver, origin)?;
                let now = tsig::now();
                let seen = rolls.ds_seen(wire_origin, *alg);
                let verdict = parent::judge(wire_origin, &new.dnskey, generation + 1, &served, seen, now);
                let iso = |t: u64| crate::acme::clock::iso(t as i64);
                match verdict {
                    parent::Verdict::Missing => {
                        ready = false;
                        rolls.set_ds_seen(wire_origin, *alg, None);
                        text.push_str(&format!(
                            "; the parent does not serve the DS of the new key {} of {origin} (asked {}): give the registrar\n",
                            new.tag, resolver.addr
                        ));
                        text.push_str(&ds_line(origin, wire_origin, *ttl, new));
                        text.push_str(&served.describe(origin));
                    }
                    parent::Verdict::Waiting(seen) => {
                        ready = false;
                        rolls.set_ds_seen(wire_origin, *alg, Some(seen));
                        text.push_str(&format!(
                            "; the parent serves the new DS of {origin} since {}; resolvers may hold the old DS set until {} \
                             (TTL {} s): run `mailconf dnssec retire --domain {name}` again after {}\n",
                            iso(seen.since),
                            iso(seen.until()),
                            seen.ttl,
                            iso(seen.until())
                        ));
                    }
                    parent::Verdict::Ready(seen) => text.push_str(&format!(
                        "; the parent serves the new DS of {origin} since {}, longer than the old DS set's TTL ({} s)\n",
                        iso(seen.since),
                        seen.ttl
                    )),
                }
            }
            if !ready {
                if rolls != before {
                    rolls.save(dir)?;
                }
                return Ok(Outcome::NotYet(text));
            }
        }
    }
    for ((origin, wire_origin, ttl, alg), (generation, old, new)) in zones.iter().zip(&keys) {
        // The new key alone.
        rolls.set(
            wire_origin,
            *alg,
            keystore::Roll {
                generation: generation + 1,
                rolling: false,
            },
        );
        rolls.set_ds_seen(wire_origin, *alg, None);
        text.push_str(&format!(
            "; {origin}: key {} retired, key {} signs alone. DS in force:\n",
            old.tag, new.tag
        ));
        text.push_str(&ds_line(origin, wire_origin, *ttl, new));
    }
    rolls.save(dir)?;
    Ok(Outcome::Done(text))
}

/// The registrar zones of `name` for `roll`/`retire`, with `state_dir` and the rollover
/// state. An error when there is none.
#[allow(clippy::type_complexity)]
fn rollover_zones<'s>(
    settings: &'s Settings,
    name: &str,
) -> anyhow::Result<(
    &'s std::path::Path,
    Vec<(String, Box<[u8]>, u32, crate::settings::DnssecAlgorithm)>,
    keystore::Rolls,
)> {
    let dir =
        settings.server.state_dir.as_deref().ok_or_else(|| {
            anyhow::anyhow!("no [server] state_dir: DNSSEC keys are kept there, so no zone is signed")
        })?;
    let zones = registrar_zones(settings, Some(name));
    if zones.is_empty() {
        anyhow::bail!("`{name}` has no signed zone (dnssec is off for it, or it has no [domain.dns])");
    }
    Ok((dir, zones, keystore::Rolls::load(Some(dir))))
}

/// Signed zone files for `mailconf zone`: a signed domain's zones with their DNSSEC records and
/// signatures, as `serve` serves them in the same signing epoch (the serial it serves or would
/// serve, from `state_dir`; signatures valid for the epoch, so at least half the lifetime).
pub struct ZoneSigner {
    served: authority::Served,
    rolls: keystore::Rolls,
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
            rolls: keystore::Rolls::load(settings.server.state_dir.as_deref()),
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
