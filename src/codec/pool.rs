//! Runs CPU-bound codec work (compression, encryption, their inverses) on the rayon
//! pool, sized to the machine, so async tasks doing I/O are not held up by it for
//! long, unless handing it over costs more than it saves.

use futures::channel::oneshot;

/// Work on fewer bytes than this runs where it is: waking a pool thread (which then
/// spins before it sleeps) and the task again cost more. A backup of 3,000 small
/// tables made 100,000 `sched_yield` calls that way.
pub const INLINE_BYTES: usize = 64 << 10;

/// [`INLINE_BYTES`] for a task that does its pieces of work one after another, as a
/// backup unit seals its chunks: the pool adds no parallelism there, only handoffs,
/// which cost 8 % of the client's CPU on the 1.2 GB bench database. A lone value of
/// many megabytes still goes to the pool, so a runtime thread is never held for
/// seconds. Not for several pieces run at once within one task (verify's reads).
pub const IN_ORDER_INLINE_BYTES: usize = 16 << 20;

/// Runs `f` on the rayon pool, or at once when it works on fewer than
/// [`INLINE_BYTES`] `bytes`; resolves to `None` only if `f` panicked.
pub async fn on_cpu_pool<T, F>(bytes: usize, f: F) -> Option<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    on_cpu_pool_from(INLINE_BYTES, bytes, f).await
}

/// [`on_cpu_pool`] that runs `f` at once below `inline` bytes.
pub async fn on_cpu_pool_from<T, F>(inline: usize, bytes: usize, f: F) -> Option<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if bytes < inline {
        return std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok();
    }
    let (tx, rx) = oneshot::channel();
    rayon::spawn(move || {
        let _ = tx.send(f());
    });
    rx.await.ok()
}
