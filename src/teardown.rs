//! Cleanups that outlive the command that started them. When a command is abandoned
//! (a signal drops its future, an error unwinds it), the parts that wrote something
//! (a repository lock, an export's files in object storage) cannot await their own
//! cleanup in `Drop`: they spawn it here, and the binary waits for them before the
//! process exits, so an interrupted run leaves nothing that looks alive or whole.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::task::JoinHandle;

/// Cleanups still running.
static PENDING: Mutex<Vec<JoinHandle<()>>> = Mutex::new(Vec::new());

/// Starts `cleanup` on the current runtime (nothing happens outside one: there is no
/// way left to do I/O).
pub fn spawn(cleanup: impl Future<Output = ()> + Send + 'static) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        let task = rt.spawn(cleanup);
        PENDING.lock().unwrap_or_else(|p| p.into_inner()).push(task);
    }
}

/// Waits, at most `limit`, for every cleanup to finish, including those spawned
/// meanwhile: values held by aborted tasks drop only when the runtime gets to them.
pub async fn finish(limit: Duration) {
    let settle = async {
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(30)).await;
            let pending = std::mem::take(&mut *PENDING.lock().unwrap_or_else(|p| p.into_inner()));
            futures::future::join_all(pending).await;
        }
    };
    let _ = tokio::time::timeout(limit, settle).await;
}
