//! `pgbunker check`: one call for monitoring (Nagios-style exit 0 OK, 1 WARNING,
//! 2 CRITICAL), replacing the runbook's health-check script: is the repository
//! reachable, how old is the newest complete backup, did the last verify pass, is
//! there room left on a local repository. Optionally a Prometheus textfile.

mod append_only;
mod inspect;
pub mod prometheus;

use inspect::inspect;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use super::audit::Audit;
use super::{CommandError, RepoAccess};
use crate::archive::Timestamp;
use crate::error::Classify;
use crate::error::Outcome;

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
    /// The whole look at the repository, storage retries included: a monitoring
    /// plugin must answer within its own timeout, and cron every few minutes.
    pub timeout: Duration,
    /// Tables that may only grow, compared between the two newest backups holding
    /// them: a row updated, deleted or dropped is CRITICAL.
    pub expect_append_only: Vec<crate::plan::pattern::Pattern>,
    /// The clock; `None` is now. Tests inject time here.
    pub now: Option<OffsetDateTime>,
}

/// How long a check waits for the repository when not told.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

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
    pub created_at: Timestamp,
    pub age_seconds: i64,
    pub stored_bytes: Option<u64>,
    pub duration_ms: Option<u64>,
    pub tables: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct LastVerify {
    pub ended_at: Timestamp,
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

impl Outcome for CheckReport {}

impl Audit for CheckReport {
    fn backup_id(&self) -> Option<String> {
        self.newest_backup.as_ref().map(|b| b.backup_id.clone())
    }
    fn details(&self) -> serde_json::Value {
        serde_json::json!({ "status": self.status, "summary": self.summary })
    }
    /// A repository that did not answer cannot take the record either: trying again
    /// would wait out the storage's retries a second time.
    fn recordable(&self) -> bool {
        self.repository_reachable
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

/// Seconds as hours, for the report's lines.
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
    match tokio::time::timeout(opts.timeout, inspect(opts, now, &mut report, &mut problems)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            let hint = e.hint().map(|h| format!(" ({h})")).unwrap_or_default();
            problems.push((Status::Critical, format!("{e}{hint}")));
        }
        Err(_) => problems.push((
            Status::Critical,
            format!(
                "the repository did not answer within {} s (--timeout)",
                opts.timeout.as_secs()
            ),
        )),
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
