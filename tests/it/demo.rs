//! `pgbunker demo` on a machine without PostgreSQL fetches the pinned server build
//! (scripts/fetch-postgres) and runs (issue 24, item 1). The machine's servers are
//! hidden by mounting an empty folder over /usr/lib/postgresql in a private mount
//! namespace, which needs root (CI); elsewhere the test says so and passes.

use crate::support::*;

#[test]
fn demo_without_a_server_fetches_the_pinned_build_and_runs() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: hiding the machine's PostgreSQL needs root (a mount namespace)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    let prefix = dir.path().join("pg");
    std::fs::create_dir(&empty).unwrap();
    let script = format!(
        "mount --bind '{}' /usr/lib/postgresql && exec '{}' --no-progress demo --scale 1",
        empty.display(),
        env!("CARGO_BIN_EXE_pgbunker")
    );
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["-m", "sh", "-c", &script]);
    for (k, _) in std::env::vars() {
        if k.starts_with("PGBUNKER_") && k != "PGBUNKER_SANDBOX_USER" {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .env("PGBUNKER_PG_PREFIX", &prefix)
        .output()
        .expect("run unshare");
    let err = stderr(&out);
    assert!(out.status.success(), "demo failed: {err}\n{}", stdout(&out));
    assert!(
        err.contains("PostgreSQL 18: fetching"),
        "the demo says it fetches: {err}"
    );
    assert!(prefix.join("18/bin/initdb").is_file());
    let report = stdout(&out);
    assert!(
        report.contains("PostgreSQL 18") && report.contains("Every table came back identical"),
        "{report}"
    );
}
