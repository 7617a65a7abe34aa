//! The DNSSEC key store: one PKCS#8 file per zone, algorithm and key generation in
//! `state_dir/dnssec/`, mode 0600 in a 0700 directory.
//!
//! Keys are made **off the query path and in batches**: at start and after each reload a
//! background thread makes the keys of signed zones that have none (`make_keys`). A batch
//! writes every new key to a temporary file, syncs them all at once (`sync_files`), *links*
//! each into place and syncs the directory once. One key used to cost two syncs of its own
//! (the file, then the directory), each a device flush: 17 ms, 37 minutes for 130,000 zones.
//! A key file therefore exists only whole and on disk; a crash leaves at most temporary files,
//! removed at the next start.
//!
//! The link fails if the key exists, so two processes (a running `serve` and `mailconf zone
//! --format ds` or `mailconf dnssec roll`) never make two keys for one zone: the second one
//! reads the first one's file. Within this process one lock serialises making keys.
//!
//! Answers never make keys: a DO query to a zone whose key is not made yet gets the unsigned
//! answer (see `Authority::view`). Transfers and the command line make a missing key at once.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;

use super::dnssec::ZoneKey;
use crate::settings::DnssecAlgorithm;

/// Keys made per batch at most: one `syncfs` and one directory sync each. Batches start at
/// [`FIRST_BATCH`] and double, so that the first zones are signed within moments of a start.
const BATCH: usize = 1024;
const FIRST_BATCH: usize = 32;

/// Serialises key creation within this process (across processes the link does).
static CREATING: Mutex<()> = Mutex::new(());

/// Where key `generation` of `origin` (ASCII, any case, with or without the trailing dot) is
/// kept. Generation 0, the first key, keeps the name keys have always had.
pub(crate) fn key_path(state_dir: &Path, origin: &str, algorithm: DnssecAlgorithm, generation: u32) -> PathBuf {
    let name = origin.trim_end_matches('.').to_ascii_lowercase();
    let file = match generation {
        0 => format!("{name}.{}.pk8", algorithm.number()),
        g => format!("{name}.{}.g{g}.pk8", algorithm.number()),
    };
    state_dir.join("dnssec").join(file)
}

/// Key `generation` of zone `origin` if it was made (`None`: not yet).
pub(crate) fn read_key(
    state_dir: &Path,
    origin: &str,
    algorithm: DnssecAlgorithm,
    generation: u32,
) -> anyhow::Result<Option<ZoneKey>> {
    let path = key_path(state_dir, origin, algorithm, generation);
    match std::fs::read(&path) {
        Ok(der) => ZoneKey::from_pkcs8(algorithm, &der)
            .map(Some)
            .with_context(|| format!("bad key file `{}`", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read `{}`", path.display())),
    }
}

/// Key `generation` of zone `origin`, read from `state_dir`, or made and saved there first.
pub(crate) fn zone_key(
    state_dir: &Path,
    origin: &str,
    algorithm: DnssecAlgorithm,
    generation: u32,
) -> anyhow::Result<ZoneKey> {
    if let Some(k) = read_key(state_dir, origin, algorithm, generation)? {
        return Ok(k);
    }
    let path = key_path(state_dir, origin, algorithm, generation);
    write_batch(state_dir, algorithm, &[path])?;
    tracing::info!(zone = origin, generation, "DNSSEC key made");
    read_key(state_dir, origin, algorithm, generation)?
        .ok_or_else(|| anyhow::anyhow!("the key of {origin} vanished after it was made"))
}

/// What [`make_keys`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Made {
    pub made: usize,
    pub existing: usize,
}

/// The bytes of zone `origin`'s first key file (generation 0, kept even after a KSK rollover
/// retired it): what its ZSKs are derived from (`ZoneKey::zsk`). `None` while it is not made
/// yet, or if it was removed: never made here, since a new first key would replace every ZSK
/// at once, unannounced (the KSKs then sign everything, which validates).
pub(crate) fn zsk_secret(
    state_dir: &Path,
    origin: &str,
    algorithm: DnssecAlgorithm,
) -> anyhow::Result<Option<Vec<u8>>> {
    let path = key_path(state_dir, origin, algorithm, 0);
    match std::fs::read(&path) {
        Ok(der) => Ok(Some(der)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read `{}`", path.display())),
    }
}

/// Make the first key of every zone of `origins` (algorithm of each) that has none, in batches.
/// Stops between batches when `stop` says so.
pub(crate) fn make_keys(
    state_dir: &Path,
    origins: impl IntoIterator<Item = (String, DnssecAlgorithm)>,
    stop: impl Fn() -> bool,
) -> anyhow::Result<Made> {
    let mut done = Made::default();
    let mut batch: Vec<(PathBuf, DnssecAlgorithm)> = Vec::new();
    let mut size = FIRST_BATCH;
    // One directory listing per start or reload, in this background thread.
    remove_stale_temps(&state_dir.join("dnssec"));
    let flush = |batch: &mut Vec<(PathBuf, DnssecAlgorithm)>, done: &mut Made| -> anyhow::Result<()> {
        for alg in [DnssecAlgorithm::EcdsaP256Sha256, DnssecAlgorithm::Ed25519] {
            let paths: Vec<PathBuf> = batch.iter().filter(|b| b.1 == alg).map(|b| b.0.clone()).collect();
            if !paths.is_empty() {
                done.made += write_batch(state_dir, alg, &paths)?;
            }
        }
        batch.clear();
        Ok(())
    };
    for (origin, alg) in origins {
        let path = key_path(state_dir, &origin, alg, 0);
        if path.exists() {
            done.existing += 1;
            continue;
        }
        batch.push((path, alg));
        if batch.len() >= size {
            flush(&mut batch, &mut done)?;
            size = (size * 2).min(BATCH);
            if stop() {
                return Ok(done);
            }
        }
    }
    if !batch.is_empty() {
        flush(&mut batch, &mut done)?;
    }
    Ok(done)
}

/// The key directory, made private if it is new.
pub(super) fn key_dir(state_dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = state_dir.join("dnssec");
    if !dir.is_dir() {
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict `{}` to mailconf's user", dir.display()))?;
    Ok(dir)
}

/// Make a key of `algorithm` at each of `paths` (in the key directory) that does not exist:
/// all written, synced with one journal commit, linked into place, the directory synced once.
/// Returns how many this call made (a key another process linked first is not counted).
fn write_batch(state_dir: &Path, algorithm: DnssecAlgorithm, paths: &[PathBuf]) -> anyhow::Result<usize> {
    let _one_at_a_time = CREATING.lock().unwrap_or_else(|e| e.into_inner());
    let dir = key_dir(state_dir)?;
    let mut temps: Vec<(std::fs::File, PathBuf, &Path)> = Vec::with_capacity(paths.len());
    let written = (|| {
        for path in paths.iter().filter(|p| !p.exists()) {
            let der = ZoneKey::generate(algorithm)?;
            let name = path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            let tmp = dir.join(format!(".new-{}-{name}", std::process::id()));
            let f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .with_context(|| format!("cannot create `{}`", tmp.display()))?;
            temps.push((f, tmp, path));
            if let Some((f, _, _)) = temps.last_mut() {
                f.write_all(&der)?;
            }
        }
        let files: Vec<&std::fs::File> = temps.iter().map(|t| &t.0).collect();
        sync_files(&files).with_context(|| format!("cannot sync the new keys in `{}`", dir.display()))?;
        let mut made = 0;
        for (_, tmp, path) in &temps {
            // A link fails if the key exists: another process made it first, and its key wins.
            match std::fs::hard_link(tmp, path) {
                Ok(()) => made += 1,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e).with_context(|| format!("cannot save the new key `{}`", path.display())),
            }
        }
        if !temps.is_empty() {
            std::fs::File::open(&dir)
                .and_then(|d| d.sync_all())
                .with_context(|| format!("cannot sync `{}`", dir.display()))?;
        }
        anyhow::Ok(made)
    })();
    for (_, tmp, _) in &temps {
        let _ = std::fs::remove_file(tmp);
    }
    written
}

/// Put the data of every file of a batch on disk. On Linux with one `syncfs`: one pass over
/// the file system and one device flush for the whole batch, where a sync of each file pays a
/// device flush each (3–4 ms here: that, twice a key, was the old 17 ms). `syncfs` writes out
/// whatever else is pending on that file system too, which a batch of a thousand keys can
/// afford.
fn sync_files(files: &[&std::fs::File]) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    if let Some(f) = files.first() {
        use std::os::fd::AsRawFd;
        // SAFETY: a valid open descriptor, borrowed for the call; syncfs only writes the file
        // system's dirty data out and touches no memory of ours.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::syncfs(f.as_raw_fd()) };
        return if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        };
    }
    files.iter().try_for_each(|f| f.sync_all())
}

/// Remove temporary key files a process that no longer runs left behind (killed mid-batch).
/// They hold whole keys nobody uses; a key in its place is made again.
fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(".new-")) else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_some_and(|p| p == std::process::id() || Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::dnssec::Epochs;
    use crate::dns::rolls::{Roll, Rolls};

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mailconf-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn keys_are_made_once_private_and_reused() {
        let dir = temp("dnssec-keys");
        for alg in [DnssecAlgorithm::EcdsaP256Sha256, DnssecAlgorithm::Ed25519] {
            let a = zone_key(&dir, "Example.COM.", alg, 0).unwrap();
            let b = zone_key(&dir, "example.com", alg, 0).unwrap();
            assert_eq!(a.dnskey, b.dnskey, "the second call reads the first one's key");
            assert_eq!(
                a.dnskey.len(),
                4 + if alg == DnssecAlgorithm::Ed25519 { 32 } else { 64 }
            );
            let mode = std::fs::metadata(key_path(&dir, "example.com", alg, 0))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            let next = zone_key(&dir, "example.com", alg, 1).unwrap();
            assert_ne!(next.dnskey, a.dnskey, "generation 1 is another key");
            assert!(key_path(&dir, "example.com", alg, 1).ends_with(format!("example.com.{}.g1.pk8", alg.number())));
        }
        let mode = std::fs::metadata(dir.join("dnssec")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn batches_make_only_missing_keys_and_clean_up_after_dead_processes() {
        let dir = temp("dnssec-batch");
        let alg = DnssecAlgorithm::EcdsaP256Sha256;
        let first = zone_key(&dir, "z1.example", alg, 0).unwrap();
        // A temporary file left by a killed process (no such PID), and one of a live process.
        let stale = dir.join("dnssec/.new-4294967295-z9.example.13.pk8");
        let live = dir.join(format!("dnssec/.new-{}-other.example.13.pk8", std::process::id()));
        std::fs::write(&stale, b"half").unwrap();
        std::fs::write(&live, b"whole").unwrap();
        let origins = (0..(BATCH + 10)).map(|i| (format!("z{i}.example"), alg));
        let made = make_keys(&dir, origins.clone(), || false).unwrap();
        assert_eq!(
            made,
            Made {
                made: BATCH + 9,
                existing: 1
            }
        );
        assert!(!stale.exists(), "a dead process's temporary file is removed");
        assert!(live.exists(), "a running process's is not");
        assert_eq!(
            read_key(&dir, "z1.example", alg, 0).unwrap().unwrap().dnskey,
            first.dnskey
        );
        for i in 0..(BATCH + 10) {
            assert!(
                read_key(&dir, &format!("z{i}.example"), alg, 0).unwrap().is_some(),
                "{i}"
            );
        }
        assert_eq!(make_keys(&dir, origins, || false).unwrap().made, 0, "all there");
        assert!(read_key(&dir, "none.example", alg, 0).unwrap().is_none());
        // Only the keys and the live temporary file: nothing else left behind.
        assert_eq!(std::fs::read_dir(dir.join("dnssec")).unwrap().count(), BATCH + 10 + 1);
        // Rollover state: saved and read back; a zone that never rolled is generation 0.
        let mut rolls = Rolls::load(Some(&dir));
        assert_eq!(rolls, Rolls::default());
        let a = crate::dns::wire::lower_wire("A.example");
        let b = crate::dns::wire::lower_wire("b.example");
        rolls.set(
            &a,
            alg,
            Roll {
                generation: 0,
                rolling: true,
            },
        );
        rolls.set(
            &b,
            alg,
            Roll {
                generation: 3,
                rolling: false,
            },
        );
        rolls.save(&dir).unwrap();
        let back = Rolls::load(Some(&dir));
        assert_eq!(back, rolls);
        assert_eq!(back.of(&a, alg).generations().collect::<Vec<_>>(), [0, 1]);
        assert_eq!(back.of(&b, alg).generations().collect::<Vec<_>>(), [3]);
        assert_eq!(
            back.of(&crate::dns::wire::lower_wire("c.example"), alg)
                .generations()
                .collect::<Vec<_>>(),
            [0]
        );
        assert!(back.get(&a, DnssecAlgorithm::Ed25519).is_none(), "per algorithm");
        assert_eq!(back.changed(&rolls).count(), 0);
        let mut later = back.clone();
        later.set(
            &a,
            alg,
            Roll {
                generation: 1,
                rolling: false,
            },
        );
        assert_eq!(later.changed(&back).collect::<Vec<_>>(), [&*a]);
        assert_eq!(Rolls::default().changed(&back).count(), 2);
        // The `zsk-since` line: recorded once per schedule, kept by `roll`'s saves.
        let e = Epochs::new(0, 0);
        assert_eq!(back.zsk_since(e), None);
        Rolls::record_zsk_since(&dir, 1000, e).unwrap();
        Rolls::record_zsk_since(&dir, 2000, e).unwrap();
        let with = Rolls::load(Some(&dir));
        assert_eq!(with.zsk_since(e), Some(1000), "the first time stays");
        assert_eq!(with.of(&b, alg).generation, 3, "the rollovers stay");
        with.save(&dir).unwrap();
        assert_eq!(Rolls::load(Some(&dir)).zsk_since(e), Some(1000));
        let other = Epochs::new(0, 60 * 86_400);
        assert_eq!(with.zsk_since(other), None, "another schedule: not since then");
        Rolls::record_zsk_since(&dir, 3000, other).unwrap();
        assert_eq!(Rolls::load(Some(&dir)).zsk_since(other), Some(3000));
        assert_eq!(Rolls::load(Some(&dir)).zsk_since(e), None);
        std::fs::remove_file(Rolls::path(&dir)).unwrap();
        // Stopped after the first batch.
        let more = (0..(2 * BATCH)).map(|i| (format!("y{i}.example"), alg));
        assert_eq!(make_keys(&dir, more, || true).unwrap().made, FIRST_BATCH);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
