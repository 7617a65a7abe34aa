//! The background work of a running `DnsServer`: serving a new snapshot (`install`), the zone
//! warm-up and key maker threads, and the tasks that make new snapshots on their own: re-signing
//! when a signing epoch ends, key rollovers written by the command line, ACME DNS-01 challenges.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use tracing::{info, warn};

use super::authority::{self, Authority};
use super::{keystore, notify, rolls, state, tsig};

/// Serve `new`: record its serials, NOTIFY the secondaries of the `changed` zones, and build
/// the zones not built yet in the background.
pub(super) async fn install(
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
pub(super) async fn resign(
    state: Arc<ArcSwap<Authority>>,
    swapping: Arc<tokio::sync::Mutex<()>>,
    stop: Arc<AtomicBool>,
) {
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
/// (`rolls::Rolls`). Every 2 s this looks at that file (a `stat`, nothing per zone) and, when
/// it changed, reloads the same settings: the zones whose rollover moved on are rebuilt with
/// their keys, get a new serial and a NOTIFY; nothing else changes. A SIGHUP reload reads the
/// file as well.
pub(super) async fn watch_rolls(
    state: Arc<ArcSwap<Authority>>,
    swapping: Arc<tokio::sync::Mutex<()>>,
    stop: Arc<AtomicBool>,
) {
    use std::os::unix::fs::MetadataExt;
    let stamp = |state: &ArcSwap<Authority>| {
        let dir = state.load().settings().server.state_dir.clone()?;
        let m = std::fs::metadata(rolls::Rolls::path(&dir)).ok()?;
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
pub(super) async fn acme_challenges(
    state: Arc<ArcSwap<Authority>>,
    swapping: Arc<tokio::sync::Mutex<()>>,
    stop: Arc<AtomicBool>,
) {
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
pub(super) fn warm_up(state: &Arc<ArcSwap<Authority>>, stop: &Arc<AtomicBool>) {
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
pub(super) fn make_keys(state: &Arc<ArcSwap<Authority>>, stop: &Arc<AtomicBool>) {
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
