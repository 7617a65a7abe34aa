//! Give memory back to the system after the one-off jobs of start and reload.
//!
//! Parsing 100,000 domains and building their zones allocate and free far more than the
//! served state keeps, on several threads; glibc keeps what was freed in per-thread arenas, so
//! without a trim the process stays some tens of megabytes above what it uses (measured at
//! 100k domains in `benches/scale.sh`).

/// Tune glibc's allocator for a process that keeps a large state for long and rebuilds it on
/// reload: as many malloc arenas as there are cores (at least 2) instead of its default of eight
/// per core, and a fixed mmap threshold of 128 KiB. Each is left alone when the operator chose
/// it with `MALLOC_ARENA_MAX` / `MALLOC_MMAP_THRESHOLD_` or `GLIBC_TUNABLES`.
///
/// Arenas: each thread that parses, builds zones or answers takes an arena of its own; what one
/// reload frees in one arena is not reused by the next reload running on another thread, and
/// the pieces left between live blocks cannot be trimmed. Measured with `benches/scale.sh
/// 100000` (`PARTS=serve,reload`, three reloads): glibc's default 172 MiB steady and 225, 234,
/// 228 MiB after each reload; two arenas 149 MiB and 170, 160, 164 MiB; one arena no smaller,
/// and its start 1.6 s slower.
///
/// Threshold: glibc raises its mmap threshold each time a large block is freed (up to 32 MiB),
/// so after the first reload the large temporary tables of the next one (the file's text, maps
/// of every name) come from the heap, between the new long-lived blocks, and stay there as holes.
/// Measured at 100k domains, RSS after each of four reloads (one domain changed each time),
/// starting from 155 MiB: dynamic threshold 163, 176, 194, 187 MiB; fixed at 32 KiB, 128 KiB or
/// 1 MiB alike 162–176 MiB (128 KiB: 163, 170, 165, 170). Call once, before other threads start.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
        let chosen = |env: &str, tunable: &str| std::env::var_os(env).is_some() || tunables.contains(tunable);
        let arenas = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
        #[allow(unsafe_code)]
        // SAFETY: mallopt only sets a parameter of the allocator, under its own lock; called
        // once at start, before any other thread allocates.
        unsafe {
            if !chosen("MALLOC_ARENA_MAX", "arena_max") {
                libc::mallopt(libc::M_ARENA_MAX, arenas as libc::c_int);
            }
            if !chosen("MALLOC_MMAP_THRESHOLD_", "mmap_threshold") {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
            }
        }
    }
}

/// Return the free parts of the heap to the system (glibc `malloc_trim`); nothing elsewhere.
pub fn release() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: malloc_trim only inspects and shrinks the allocator's own free lists; it takes
    // the arena locks itself and may be called from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
