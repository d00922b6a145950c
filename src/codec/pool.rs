//! Runs CPU-bound codec work (compression, encryption, their inverses) on the rayon
//! pool, sized to the machine, so async tasks doing I/O are never blocked by it.

use futures::channel::oneshot;

/// Work on fewer bytes than this runs where it is: handing it to the pool (waking a
/// pool thread, which then spins before it sleeps) costs more than doing it. A backup
/// of 3,000 small tables made 100,000 `sched_yield` calls that way.
pub const INLINE_BYTES: usize = 64 << 10;

/// Runs `f` on the rayon pool, or at once when it works on fewer than
/// [`INLINE_BYTES`] `bytes`; resolves to `None` only if `f` panicked.
pub async fn on_cpu_pool<T, F>(bytes: usize, f: F) -> Option<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if bytes < INLINE_BYTES {
        return std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok();
    }
    let (tx, rx) = oneshot::channel();
    rayon::spawn(move || {
        let _ = tx.send(f());
    });
    rx.await.ok()
}
