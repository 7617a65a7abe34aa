//! Give memory back to the system after the one-off jobs of start and reload.
//!
//! Parsing 100,000 domains and building their zones allocate and free far more than the
//! served state keeps, on several threads; glibc keeps what was freed in per-thread arenas, so
//! without a trim the process stays some tens of megabytes above what it uses (measured at
//! 100k domains in `benches/scale.sh`).

/// Keep glibc to as many malloc arenas as there are cores (at least 2) instead of its default
/// of eight per core, unless the operator chose with `MALLOC_ARENA_MAX` or `GLIBC_TUNABLES`.
///
/// Each thread that parses, builds zones or answers takes an arena of its own; what one
/// reload frees in one arena is not reused by the next reload running on another thread, and
/// the pieces left between live blocks cannot be trimmed. Measured with `benches/scale.sh
/// 100000` (`PARTS=serve,reload`, three reloads): glibc's default 172 MiB steady and 225, 234,
/// 228 MiB after each reload; two arenas 149 MiB and 170, 160, 164 MiB; one arena no smaller,
/// and its start 1.6 s slower. Call once, before other threads start.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let chosen = std::env::var_os("MALLOC_ARENA_MAX").is_some()
            || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("arena_max"));
        if chosen {
            return;
        }
        let arenas = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
        #[allow(unsafe_code)]
        // SAFETY: mallopt only sets a parameter of the allocator, under its own lock; called
        // once at start, before any other thread allocates.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas as libc::c_int);
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
