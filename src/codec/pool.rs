//! Runs CPU-bound codec work (compression, encryption, their inverses) on the rayon
//! pool, sized to the machine, so async tasks doing I/O are never blocked by it.

use futures::channel::oneshot;

/// Runs `f` on the rayon pool; resolves to `None` only if `f` panicked.
pub async fn on_cpu_pool<T, F>(f: F) -> Option<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    rayon::spawn(move || {
        let _ = tx.send(f());
    });
    rx.await.ok()
}
