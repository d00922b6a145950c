//! A run stopped by a signal: what it leaves behind, said per command, and the
//! process-wide flag that lets an audited run (`commands::audit::audited`) stop its
//! work and record the interruption before the binary exits. A leaf like `teardown`:
//! every layer may look at the flag.
//!
//! The binary races the command against SIGINT/SIGTERM. On a signal it calls
//! [`raise`]; an audited run sees it at once, drops its work (which stops every stream
//! and registers what teardown must delete), writes an audit record with the result
//! `interrupted` and returns `CommandError::Interrupted`. The
//! binary waits for that only while such a run is [`recording`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use tokio::sync::watch;

fn channel() -> &'static watch::Sender<Option<&'static str>> {
    static SIGNAL: OnceLock<watch::Sender<Option<&'static str>>> = OnceLock::new();
    SIGNAL.get_or_init(|| watch::channel(None).0)
}

static RECORDING: AtomicUsize = AtomicUsize::new(0);

/// Tells the running command that `signal` arrived.
pub fn raise(signal: &'static str) {
    channel().send_replace(Some(signal));
}

/// Resolves with the signal's name once [`raise`] was called (at once if it was).
pub async fn raised() -> &'static str {
    let mut rx = channel().subscribe();
    loop {
        if let Some(signal) = *rx.borrow_and_update() {
            return signal;
        }
        if rx.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

/// Whether an audited run is under way, which will return once interrupted.
pub fn recording() -> bool {
    RECORDING.load(Ordering::SeqCst) > 0
}

/// Marks an audited run under way while it lives.
pub(crate) struct Recording(());

impl Recording {
    pub(crate) fn start() -> Recording {
        RECORDING.fetch_add(1, Ordering::SeqCst);
        Recording(())
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        RECORDING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What an interrupted `operation` leaves behind, after "interrupted by SIGINT: ".
pub fn left_behind(operation: &str) -> &'static str {
    match operation {
        "backup" => "nothing was committed; leftovers show as `incomplete` in `list`",
        "restore" => {
            "the restore stopped midway: the target database may hold some tables, each \
             loaded whole or not at all, without the primary keys, indexes, foreign keys \
             and triggers that are built last"
        }
        "restore-test" => {
            "the restore test stopped midway: no report was written and the scratch \
             database may hold part of the restored backup"
        }
        "verify" => "the repository was not changed, and not every chunk was checked",
        "export" => "the files written so far were removed",
        "diff" => "the repository was not changed and no rows file was left",
        "prune" => {
            "prune stopped midway: what it already tombstoned or deleted stays so, \
             the rest is untouched"
        }
        "demo" => "the throwaway server and repository were removed",
        _ => "the command stopped before it finished",
    }
}

/// How to finish or clean up after an interrupted `operation`.
pub fn hint(operation: &str) -> Option<String> {
    Some(
        match operation {
            "backup" => {
                "run the backup again; `prune` deletes the leftovers after its grace period"
            }
            "restore" => {
                "run the same restore again with --clean --if-exists, which drops what the \
                 interrupted run created and restores everything, or drop the target \
                 database and restore with --create"
            }
            "restore-test" => {
                "empty the scratch database (drop and create it again), then run the restore \
                 test again"
            }
            "verify" => "run it again",
            "prune" => "run prune again to finish",
            "export" => "run the export again",
            "diff" => "run the diff again",
            "demo" => return None,
            _ => "run it again to see where it stands",
        }
        .into(),
    )
}
