//! Give memory back to the system after the one-off jobs of start and reload.
//!
//! Parsing 100,000 domains and building their zones allocate and free far more than the
//! served state keeps, on several threads; glibc keeps what was freed in per-thread arenas, so
//! without a trim the process stays some tens of megabytes above what it uses (measured at
//! 100k domains in `benches/scale.sh`).

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
