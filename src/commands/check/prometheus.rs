//! The node_exporter textfile that `check --prometheus` writes, so Prometheus can
//! alert on stale or broken backups without scraping pgbunker itself.

use crate::archive::Timestamp;
use std::io::Write;
use std::path::Path;

use time::OffsetDateTime;

use super::CheckReport;

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn seconds(t: &Timestamp) -> Option<i64> {
    t.time().map(OffsetDateTime::unix_timestamp)
}

/// The metrics, one gauge each, labelled with the repository location (without its
/// query options).
pub fn render(r: &CheckReport, now: OffsetDateTime) -> String {
    let repo = escape(r.location.split('?').next().unwrap_or_default());
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, value: Option<f64>| {
        if let Some(v) = value {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{{repo=\"{repo}\"}} {v}\n"
            ));
        }
    };
    let b = r.newest_backup.as_ref();
    let v = r.last_verify.as_ref();
    gauge(
        "pgbunker_check_status",
        "0 OK, 1 WARNING, 2 CRITICAL.",
        Some(r.status.exit_code() as f64),
    );
    gauge(
        "pgbunker_repository_up",
        "1 when the repository could be opened and its catalog read.",
        Some(if r.repository_reachable { 1.0 } else { 0.0 }),
    );
    gauge(
        "pgbunker_last_success_timestamp_seconds",
        "When the newest complete backup was committed (Unix time).",
        b.and_then(|b| seconds(&b.created_at)).map(|s| s as f64),
    );
    gauge(
        "pgbunker_last_backup_age_seconds",
        "Age of the newest complete backup.",
        b.map(|b| b.age_seconds as f64),
    );
    gauge(
        "pgbunker_last_backup_size_bytes",
        "Stored (compressed, encrypted) size of the newest complete backup.",
        b.and_then(|b| b.stored_bytes).map(|v| v as f64),
    );
    gauge(
        "pgbunker_last_backup_duration_seconds",
        "How long the newest complete backup took.",
        b.and_then(|b| b.duration_ms).map(|v| v as f64 / 1000.0),
    );
    gauge(
        "pgbunker_last_backup_tables",
        "Tables in the newest complete backup.",
        b.and_then(|b| b.tables).map(|v| v as f64),
    );
    gauge(
        "pgbunker_verify_ok",
        "1 when the last verify passed, 0 when it failed, -1 when none ran.",
        Some(v.map_or(-1.0, |v| if v.ok { 1.0 } else { 0.0 })),
    );
    gauge(
        "pgbunker_last_verify_timestamp_seconds",
        "When the last verify ended (Unix time).",
        v.and_then(|v| seconds(&v.ended_at)).map(|s| s as f64),
    );
    gauge(
        "pgbunker_audit_problems",
        "Deleted, replaced or unreadable audit records (0 when the trail is whole).",
        r.repository_reachable.then_some(r.audit_problems as f64),
    );
    gauge(
        "pgbunker_check_timestamp_seconds",
        "When this check ran (Unix time).",
        Some(now.unix_timestamp() as f64),
    );
    out
}

/// Writes the file atomically (temp file, rename): node_exporter must never read
/// half a file. Unlike everything else pgbunker writes, the file is readable by all
/// (0644): node_exporter runs as its own user, and the file holds only numbers.
pub fn write(file: &Path, r: &CheckReport, now: OffsetDateTime) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
    f.write_all(render(r, now).as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, file)
}
