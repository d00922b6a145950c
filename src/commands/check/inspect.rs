//! What `check` finds in the repository: its room, its newest backup's age, the audit
//! trail's soundness and the last verify. Each finding is a problem with a status;
//! only what keeps the check from looking at all is an error.

use time::OffsetDateTime;

use super::{hours, CheckOptions, CheckReport, LastVerify, NewestBackup, Status};
use crate::archive::{trust, BackupLayout, Summary};
use crate::commands::CommandError;

pub(super) async fn inspect(
    opts: &CheckOptions,
    now: OffsetDateTime,
    report: &mut CheckReport,
    problems: &mut Vec<(Status, String)>,
) -> Result<(), CommandError> {
    let repo = opts.repo.open().await?;
    let cat = repo.catalog().await?;
    report.repository_reachable = true;
    report.free_percent = repo.store().free_percent();
    if let Some(free) = report.free_percent {
        if free < opts.min_free_percent {
            problems.push((
                Status::Warning,
                format!("only {free:.1}% free on the repository's file system"),
            ));
        }
    }
    match trust::newest(&cat.live) {
        None => problems.push((Status::Critical, "no complete backup".into())),
        Some(b) => {
            let created = b.created_at.time().unwrap_or(OffsetDateTime::UNIX_EPOCH);
            let age = (now - created).whole_seconds();
            let summary: Option<Summary> = repo
                .store()
                .get_opt(&BackupLayout::new(&b.bid).summary())
                .await?
                .and_then(|s| serde_json::from_slice(&s).ok());
            if age > opts.max_age.as_secs() as i64 {
                problems.push((
                    Status::Critical,
                    format!(
                        "newest backup {} is {} old (limit {})",
                        b.bid,
                        hours(age),
                        hours(opts.max_age.as_secs() as i64)
                    ),
                ));
            }
            report.newest_backup = Some(NewestBackup {
                backup_id: b.bid.clone(),
                created_at: b.created_at.clone(),
                age_seconds: age,
                stored_bytes: summary.as_ref().map(|s| s.stored_bytes),
                duration_ms: summary.as_ref().map(|s| s.duration_ms),
                tables: crate::archive::backup_totals(&repo, b, summary.as_ref())
                    .await
                    .map(|t| t.0),
            });
        }
    }
    if !opts.expect_append_only.is_empty() {
        super::append_only::append_only(&repo, &cat.live, &opts.expect_append_only, problems)
            .await?;
    }
    // The whole trail, not only verify records: deleting the record of a failed
    // verify must not turn CRITICAL back into OK unseen.
    let trail = repo.audit_trail().await?;
    for p in &trail.problems {
        problems.push((Status::Critical, format!("audit trail: {p}")));
    }
    report.audit_problems = trail.problems.len();
    let verifies: Vec<_> = trail
        .records
        .iter()
        .filter(|r| r.operation == "verify")
        .collect();
    match verifies.last() {
        None => problems.push((Status::Warning, "no verify has run yet".into())),
        Some(v) => {
            let ended = v.ended_at.time().unwrap_or(OffsetDateTime::UNIX_EPOCH);
            let age = (now - ended).whole_seconds();
            let ok = v.result == "ok";
            if !ok {
                problems.push((
                    Status::Critical,
                    format!(
                        "the last verify ({}) failed: {}",
                        v.ended_at,
                        v.error.as_deref().unwrap_or("see `pgbunker audit`")
                    ),
                ));
            } else if age > opts.verify_max_age.as_secs() as i64 {
                problems.push((
                    Status::Warning,
                    format!("the last verify is {} old", hours(age)),
                ));
            }
            report.last_verify = Some(LastVerify {
                ended_at: v.ended_at.clone(),
                age_seconds: age,
                ok,
                backup_id: v.backup_id.clone(),
            });
        }
    }
    Ok(())
}
