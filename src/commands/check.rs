//! `pgbunker check`: one call for monitoring (Nagios-style exit 0 OK, 1 WARNING,
//! 2 CRITICAL), replacing the runbook's health-check script: is the repository
//! reachable, how old is the newest complete backup, did the last verify pass, is
//! there room left on a local repository. Optionally a Prometheus textfile.

pub mod prometheus;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::audit::Audit;
use super::{CommandError, RepoAccess};
use crate::archive::{BackupLayout, Summary};
use crate::error::Classify;

#[derive(Debug)]
pub struct CheckOptions {
    pub repo: RepoAccess,
    /// Older than this, the newest complete backup is CRITICAL.
    pub max_age: Duration,
    /// A last verify older than this (or none) is a WARNING.
    pub verify_max_age: Duration,
    /// Less free space than this share of a local repository's file system is a
    /// WARNING.
    pub min_free_percent: f64,
    pub prometheus: Option<PathBuf>,
    /// The clock; `None` is now. Tests inject time here.
    pub now: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Ok,
    Warning,
    Critical,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
        }
    }

    /// Nagios plugin exit codes.
    pub fn exit_code(self) -> i32 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Critical => 2,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct NewestBackup {
    pub backup_id: String,
    pub created_at: String,
    pub age_seconds: i64,
    pub stored_bytes: Option<u64>,
    pub duration_ms: Option<u64>,
    pub tables: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct LastVerify {
    pub ended_at: String,
    pub age_seconds: i64,
    pub ok: bool,
    pub backup_id: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub status: Status,
    /// One line for a pager or a Nagios status.
    pub summary: String,
    pub location: String,
    pub repository_reachable: bool,
    pub newest_backup: Option<NewestBackup>,
    pub last_verify: Option<LastVerify>,
    pub free_percent: Option<f64>,
    /// Deleted, replaced or unreadable audit records (each one is also a problem).
    pub audit_problems: usize,
    pub problems: Vec<String>,
}

impl Audit for CheckReport {
    fn backup_id(&self) -> Option<String> {
        self.newest_backup.as_ref().map(|b| b.backup_id.clone())
    }
    fn details(&self) -> serde_json::Value {
        serde_json::json!({ "status": self.status, "summary": self.summary })
    }
}

/// The report when the check could not even start (say, an unreadable key file):
/// CRITICAL, with the textfile written so dashboards do not show stale numbers.
pub fn cannot_check(
    location: String,
    error: &CommandError,
    prometheus: Option<&std::path::Path>,
) -> CheckReport {
    let hint = error.hint().map(|h| format!(" ({h})")).unwrap_or_default();
    let problem = format!("{error}{hint}");
    let report = CheckReport {
        status: Status::Critical,
        summary: format!("PGBUNKER CRITICAL: {problem}"),
        location: crate::store::shown_location(&location),
        repository_reachable: false,
        newest_backup: None,
        last_verify: None,
        free_percent: None,
        audit_problems: 0,
        problems: vec![problem],
    };
    if let Some(file) = prometheus {
        if let Err(e) = prometheus::write(file, &report, OffsetDateTime::now_utc()) {
            eprintln!("warning: could not write {}: {e}", file.display());
        }
    }
    report
}

fn parse(t: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(t, &Rfc3339).ok()
}

fn hours(seconds: i64) -> String {
    format!("{:.1} h", seconds as f64 / 3600.0)
}

/// Never fails for what it is meant to detect: an unreachable repository or a
/// wrong key is a CRITICAL report, not an error.
pub async fn check(opts: &CheckOptions) -> Result<CheckReport, CommandError> {
    let now = opts.now.unwrap_or_else(OffsetDateTime::now_utc);
    let mut problems: Vec<(Status, String)> = Vec::new();
    let mut report = CheckReport {
        status: Status::Ok,
        summary: String::new(),
        location: crate::store::shown_location(&opts.repo.location),
        repository_reachable: false,
        newest_backup: None,
        last_verify: None,
        free_percent: None,
        audit_problems: 0,
        problems: Vec::new(),
    };
    match inspect(opts, now, &mut report, &mut problems).await {
        Ok(()) => {}
        Err(e) => {
            let hint = e.hint().map(|h| format!(" ({h})")).unwrap_or_default();
            problems.push((Status::Critical, format!("{e}{hint}")));
        }
    }
    // The one-line summary shows the first problem: make it the worst.
    problems.sort_by_key(|p| std::cmp::Reverse(p.0));
    report.status = problems.iter().map(|(s, _)| *s).max().unwrap_or(Status::Ok);
    report.problems = problems.into_iter().map(|(_, p)| p).collect();
    report.summary = match (&report.newest_backup, report.problems.first()) {
        (_, Some(p)) => format!("PGBUNKER {}: {p}", report.status.word()),
        (Some(b), None) => format!(
            "PGBUNKER OK: newest backup {} is {} old",
            b.backup_id,
            hours(b.age_seconds)
        ),
        (None, None) => "PGBUNKER OK".into(),
    };
    if let Some(file) = &opts.prometheus {
        prometheus::write(file, &report, now)
            .map_err(|e| CommandError::Usage(format!("{}: {e}", file.display())))?;
    }
    Ok(report)
}

async fn inspect(
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
    let when = |c: &str| parse(c);
    let newest = cat
        .live
        .iter()
        .max_by(|a, b| (when(&a.created_at), &a.bid).cmp(&(when(&b.created_at), &b.bid)));
    match newest {
        None => problems.push((Status::Critical, "no complete backup".into())),
        Some(b) => {
            let created = when(&b.created_at).unwrap_or(OffsetDateTime::UNIX_EPOCH);
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
            let ended = parse(&v.ended_at).unwrap_or(OffsetDateTime::UNIX_EPOCH);
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
