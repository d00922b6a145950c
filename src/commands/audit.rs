//! Audit records for every operation, and `pgbunker audit` to read them.
//!
//! [`audited`] wraps a command: whatever the outcome, one record goes into the
//! repository (and, when asked, one row into the runbook's `backup_audit_log` table).
//! An operation that could not open the repository (wrong key, storage down) cannot
//! be recorded in it; its error still reaches stderr and the journal.

use std::future::Future;
use std::time::Instant;

use serde::Serialize;
use time::OffsetDateTime;

use super::{CommandError, RepoAccess};
use crate::archive::audit::{new_audit_id, op_suffix, AuditProblem, AuditRecord, OPERATIONS};
use crate::archive::lock::host_name;
use crate::error::{Class, Classify, Failed, Outcome};
use crate::interrupt::{self, Recording};
use crate::pg::{ConnSpec, PgError};

/// What a report contributes to its audit record. Only counts, sizes and ids: never
/// names of tables in the clear database, never values.
pub trait Audit {
    fn backup_id(&self) -> Option<String> {
        None
    }
    fn details(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    /// Whether the record can be written at all.
    fn recordable(&self) -> bool {
        true
    }
}

/// The OS user running pgbunker (the effective uid's name, else the number).
fn os_user() -> String {
    // SAFETY: getpwuid_r writes into our buffer and returns a pointer into it or null.
    unsafe {
        let uid = libc::geteuid();
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        if libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) == 0
            && !out.is_null()
        {
            return std::ffi::CStr::from_ptr(pw.pw_name)
                .to_string_lossy()
                .into_owned();
        }
        format!("uid {uid}")
    }
}

/// `user@host`, for reports that name who ran them.
pub fn who() -> String {
    format!("{}@{}", os_user(), host_name())
}

/// Runs `work`, then records it. A failure to record is reported on stderr but does
/// not turn a successful backup into a failed one. A run whose report failed (damage
/// found, tables not restored) is recorded as failed with the report's counts.
pub async fn audited<T: Audit + Outcome>(
    access: &RepoAccess,
    operation: &str,
    work: impl Future<Output = Result<T, CommandError>>,
) -> Result<T, CommandError> {
    let started_at = OffsetDateTime::now_utc();
    let clock = Instant::now();
    // A signal drops the work (stopping its streams) and is recorded like any outcome.
    let recording = Recording::start();
    let outcome = tokio::select! {
        outcome = work => outcome,
        signal = interrupt::raised() => Err(CommandError::Interrupted {
            signal,
            operation: operation.into(),
        }),
    };
    let ended_at = OffsetDateTime::now_utc();
    let (exit_code, error) = match &outcome {
        Ok(report) => match report.failed() {
            Some(f) => (f.class.exit_code(), Some(f.message)),
            None => (0, None),
        },
        Err(e) => (e.class().exit_code(), Some(e.to_string())),
    };
    let record = AuditRecord {
        id: new_audit_id(ended_at),
        operation: operation.into(),
        backup_id: outcome.as_ref().ok().and_then(Audit::backup_id),
        user: os_user(),
        host: host_name(),
        started_at: started_at.into(),
        ended_at: ended_at.into(),
        duration_ms: clock.elapsed().as_millis() as u64,
        result: match &outcome {
            Err(CommandError::Interrupted { .. }) => "interrupted",
            _ if error.is_none() => "ok",
            _ => "failed",
        }
        .into(),
        exit_code,
        error,
        details: outcome
            .as_ref()
            .map(Audit::details)
            .unwrap_or(serde_json::Value::Null),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        prev: None,
    };
    let written = match &outcome {
        Ok(report) if !report.recordable() => return outcome,
        _ => write(access, &record).await,
    };
    match written {
        Ok(()) => {}
        // The operation failed because the repository cannot be opened, and its error
        // says so: the same words again as a warning would only blur them.
        Err(AuditWrite::Open(e)) if outcome.is_err() => {
            tracing::debug!("no audit record: {e}");
        }
        Err(AuditWrite::Open(e) | AuditWrite::Write(e)) => {
            tracing::warn!("could not write the audit record: {e}");
            eprintln!("warning: could not write the audit record: {e}");
        }
    }
    drop(recording);
    outcome
}

enum AuditWrite {
    /// The repository could not be opened.
    Open(CommandError),
    Write(CommandError),
}

async fn write(access: &RepoAccess, record: &AuditRecord) -> Result<(), AuditWrite> {
    let repo = access.open().await.map_err(AuditWrite::Open)?;
    let record = repo
        .append_audit(record)
        .await
        .map_err(|e| AuditWrite::Write(e.into()))?;
    if let Some(url) = &access.audit_db {
        insert_row(url, &record).await.map_err(AuditWrite::Write)?;
    }
    Ok(())
}

/// The runbook's `backup_audit_log` table, created when missing.
const AUDIT_TABLE: &str = "CREATE TABLE IF NOT EXISTS backup_audit_log (
    id SERIAL PRIMARY KEY,
    operation VARCHAR(50) NOT NULL,
    backup_file VARCHAR(255),
    initiated_by VARCHAR(100) NOT NULL,
    started_at TIMESTAMP NOT NULL DEFAULT NOW(),
    completed_at TIMESTAMP,
    status VARCHAR(20),
    file_size_mb INTEGER,
    error_message TEXT,
    notes TEXT
)";

async fn insert_row(url: &str, r: &AuditRecord) -> Result<(), CommandError> {
    let client = ConnSpec::parse(Some(url))?.connect().await?;
    client
        .batch_execute(AUDIT_TABLE)
        .await
        .map_err(|e| PgError::query("create backup_audit_log", e))?;
    let size_mb = r
        .details
        .get("stored_bytes")
        .and_then(serde_json::Value::as_u64)
        .map(|b| i32::try_from(b >> 20).unwrap_or(i32::MAX));
    let status = if r.result == "ok" {
        "success"
    } else {
        "failed"
    };
    client
        .execute(
            "INSERT INTO backup_audit_log (operation, backup_file, initiated_by, started_at, \
             completed_at, status, file_size_mb, error_message, notes) \
             VALUES ($1, $2, $3, $4::text::timestamptz AT TIME ZONE 'UTC', \
             $5::text::timestamptz AT TIME ZONE 'UTC', $6, $7, $8, $9)",
            &[
                &r.operation,
                &r.backup_id,
                &format!("{}@{}", r.user, r.host),
                &r.started_at.as_str(),
                &r.ended_at.as_str(),
                &status,
                &size_mb,
                &r.error,
                &format!("pgbunker {} audit record {}", r.tool_version, r.id),
            ],
        )
        .await
        .map_err(|e| PgError::query("insert into backup_audit_log", e))?;
    Ok(())
}

#[derive(Debug)]
pub struct AuditOptions {
    pub repo: RepoAccess,
    pub since: Option<OffsetDateTime>,
    /// Only this operation (`backup`, `verify`, `key add`, …).
    pub operation: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct AuditReport {
    pub records: Vec<AuditRecord>,
    /// Deleted, replaced or unreadable records: each is tampering (or lost storage).
    pub problems: Vec<AuditProblem>,
    /// Records from before records were chained, in the whole trail: a deletion among
    /// them cannot be detected.
    pub unchained: usize,
}

impl Outcome for AuditReport {
    fn failed(&self) -> Option<Failed> {
        let first = self.problems.first()?;
        Some(Failed {
            class: Class::Corrupt,
            message: match self.problems.len() {
                1 => format!("the audit trail was tampered with: {first}"),
                n => format!("the audit trail was tampered with ({n} problems): {first}"),
            },
            hint: Some(
                "someone with write access to the repository deleted or replaced audit \
                 records (or the storage lost them): check the storage's access logs and \
                 put audit/ back from a copy; `pgbunker --json audit` lists every problem"
                    .into(),
            ),
        })
    }
}

/// Reads and checks the whole trail whatever the filters: a deletion is found through
/// the records after it, which the filters may leave out. Tampering is the report's
/// verdict, so the records still reach the screen.
pub async fn audit(opts: &AuditOptions) -> Result<AuditReport, CommandError> {
    let wanted = match opts.operation.as_deref().map(op_suffix) {
        Some(op) if !OPERATIONS.contains(&op.as_str()) => {
            return Err(CommandError::Usage(format!(
                "--operation {:?}: no such operation; use one of {}",
                opts.operation.as_deref().unwrap_or_default(),
                OPERATIONS.join(", ")
            )))
        }
        op => op,
    };
    let repo = opts.repo.open().await?;
    // The catalog's mark catches a swapped or rolled-back repository first.
    repo.catalog().await?;
    let trail = repo.audit_trail().await?;
    let from = opts.since.map(new_audit_id);
    let records = trail
        .records
        .into_iter()
        .filter(|r| from.as_deref().is_none_or(|f| r.id.as_str() >= &f[..23]))
        .filter(|r| {
            // A restore test is a restore too: who restored patient data includes it.
            wanted.as_deref().is_none_or(|o| {
                let op = op_suffix(&r.operation);
                op == o || (o == "restore" && op == "restore-test")
            })
        })
        .collect();
    Ok(AuditReport {
        records,
        problems: trail.problems,
        unchained: trail.unchained,
    })
}
