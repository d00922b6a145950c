//! `pgbunker demo`: the whole job on a throwaway server. Starts a private PostgreSQL,
//! loads the heart-recovery fixture, backs it up into a fresh encrypted repository,
//! restores it into a second database and proves every table came back identical.

use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::CommandError;
use crate::archive::{BackupReader, KeySource, Repository};
use crate::codec::SecretKey;
use crate::dump::{self, table_fingerprint, DumpOptions};
use crate::load::plan::PlanOptions;
use crate::load::restore::Restored;
use crate::load::{self, LoadOptions};
use crate::pg::PgError;
use crate::progress::Progress;
use crate::sandbox::{fetch_command, fetched_prefix, fixture, Sandbox, SandboxError};
use crate::store::Store;

#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Fixture scale: 1 ≈ 10 MB.
    pub scale: u32,
    pub jobs: usize,
    /// Keep the repository here instead of a temporary folder.
    pub keep_repo: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct DemoTable {
    pub table: String,
    pub source_rows: u64,
    pub restored_rows: u64,
    pub identical: bool,
}

#[derive(Debug, Serialize)]
pub struct DemoReport {
    pub server_version: String,
    pub scale: u32,
    pub backup_id: String,
    pub repository: String,
    pub load_seconds: f64,
    pub backup_seconds: f64,
    /// Restore's pre-flight check (every chunk downloaded and hashed), on top of
    /// `restore_seconds`.
    pub preflight_seconds: f64,
    pub restore_seconds: f64,
    pub raw_bytes: u64,
    pub stored_bytes: u64,
    pub tables: Vec<DemoTable>,
    pub identical: bool,
}

impl crate::error::Outcome for DemoReport {}

pub async fn demo(
    opts: &DemoOptions,
    progress: Arc<dyn Progress>,
) -> Result<DemoReport, CommandError> {
    progress.phase("starting a throwaway PostgreSQL");
    let sandbox = match tokio::task::spawn_blocking(Sandbox::start)
        .await
        .map_err(|e| CommandError::Usage(format!("sandbox thread failed: {e}")))?
    {
        Err(SandboxError::NoBinaries(looked)) => {
            let bindir = fetch_postgres(&looked, progress.as_ref()).await?;
            tokio::task::spawn_blocking(move || Sandbox::start_with(bindir))
                .await
                .map_err(|e| CommandError::Usage(format!("sandbox thread failed: {e}")))??
        }
        started => started?,
    };
    let source = sandbox.create_database("heart_recovery").await?;
    let client = source.connect().await?;
    let server_version: String = client
        .query_one("SHOW server_version", &[])
        .await
        .map_err(|e| PgError::query("read the server version", e))?
        .get(0);

    progress.phase("loading the heart-recovery fixture");
    let t = Instant::now();
    fixture::load_heart_recovery(&client, opts.scale).await?;
    let load_seconds = t.elapsed().as_secs_f64();

    let tmp = tempfile::Builder::new()
        .prefix("pgbunker-demo-repo-")
        .tempdir()
        .map_err(|e| CommandError::Usage(format!("cannot create a temporary folder: {e}")))?;
    let location = match &opts.keep_repo {
        Some(p) => p.clone(),
        None => tmp.path().join("repo").display().to_string(),
    };
    // A throwaway key: the demo repository is not meant to outlive the demo.
    let key = match (&opts.keep_repo, KeySource::from_env()?) {
        (Some(_), Some(k)) => k,
        (Some(_), None) => return Err(crate::archive::ArchiveError::NoKey.into()),
        (None, _) => KeySource::Key(SecretKey::random()),
    };
    let (repo, _) = Repository::init(Store::create(&location)?, Some(&key), false).await?;

    progress.phase("backing up");
    let t = Instant::now();
    let dump_opts = DumpOptions {
        jobs: opts.jobs,
        ..Default::default()
    };
    let backup = dump::run(&source, &repo, &dump_opts, progress.clone()).await?;
    let backup_seconds = t.elapsed().as_secs_f64();

    progress.phase("restoring into a second database");
    let target = sandbox.create_database("heart_recovery_restored").await?;
    let live = repo.resolve("latest").await?;
    let reader = BackupReader::open(&repo, &live).await?;
    let t = Instant::now();
    // The same path as `restore`, with its pre-flight check.
    let plan = load::plan::plan(
        &reader.manifest().catalog,
        &PlanOptions {
            load: LoadOptions {
                jobs: opts.jobs,
                ..Default::default()
            },
            ..Default::default()
        },
    )?;
    let (out, preflight) =
        match load::restore::restore(&target, &repo, &reader, &plan, progress.clone()).await? {
            Restored::Loaded(out, preflight) => (out, preflight),
            Restored::Refused(v) => {
                return Err(CommandError::DemoMismatch(format!(
                    "the backup just taken failed the pre-flight check: {}",
                    v.problems
                        .first()
                        .map_or(String::new(), ToString::to_string)
                )))
            }
        };
    let preflight_seconds = preflight.unwrap_or_default();
    let failed = out.tables.iter().filter_map(|t| t.error.as_ref());
    if let Some(f) = failed.chain(&out.failed).next() {
        return Err(CommandError::DemoMismatch(format!(
            "the restore failed: {}: {}",
            f.what, f.error
        )));
    }
    let restore_seconds = t.elapsed().as_secs_f64() - preflight_seconds;

    progress.phase("comparing source and restored tables");
    let restored = target.connect().await?;
    let mut tables = Vec::new();
    for (i, table) in reader.manifest().catalog.tables.iter().enumerate() {
        let format = reader
            .manifest()
            .table(i as u32)
            .map(|r| r.copy_format)
            .unwrap_or_default();
        let a = table_fingerprint(&client, table, format, None)
            .await
            .map_err(CommandError::from)?;
        // The restored values name the target's type OIDs: map them back first.
        let back = load::type_remapper(&restored, table, &reader.manifest().catalog.types)
            .await?
            .inverse();
        let b = table_fingerprint(&restored, table, format, Some(&back))
            .await
            .map_err(CommandError::from)?;
        tables.push(DemoTable {
            table: table.name.plain(),
            source_rows: a.rows,
            restored_rows: b.rows,
            identical: a == b,
        });
    }
    let identical = tables.iter().all(|t| t.identical);
    let report = DemoReport {
        server_version,
        scale: opts.scale,
        backup_id: backup.summary.backup_id.clone(),
        repository: if opts.keep_repo.is_some() {
            location
        } else {
            "(temporary, removed)".into()
        },
        load_seconds,
        backup_seconds,
        preflight_seconds,
        restore_seconds,
        raw_bytes: backup.summary.raw_bytes.unwrap_or_default(),
        stored_bytes: backup.summary.stored_bytes,
        tables,
        identical,
    };
    if !identical {
        let bad: Vec<&str> = report
            .tables
            .iter()
            .filter(|t| !t.identical)
            .map(|t| t.table.as_str())
            .collect();
        return Err(CommandError::DemoMismatch(format!(
            "restored tables differ from the source: {}",
            bad.join(", ")
        )));
    }
    Ok(report)
}

/// No server binaries here: fetch the pinned PostgreSQL 18 build with the checkout's
/// scripts/fetch-postgres (what `cargo run -- demo` has at hand), into
/// [`fetched_prefix`], where the sandbox finds it next time too. Without the script
/// (an installed binary), the error names the command.
async fn fetch_postgres(
    looked: &str,
    progress: &dyn Progress,
) -> Result<std::path::PathBuf, CommandError> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fetch-postgres");
    if !script.is_file() {
        return Err(SandboxError::NoBinaries(looked.into()).into());
    }
    let prefix = fetched_prefix();
    progress.phase(&format!(
        "no PostgreSQL server here ({looked}): fetching the pinned PostgreSQL 18 into {}",
        prefix.display()
    ));
    // Its progress goes to stderr; stdout stays the demo's report.
    // The builds must be readable by the unprivileged user the server runs as under
    // root: not this process's owner-only umask.
    let status = tokio::process::Command::new("/bin/sh")
        .args(["-c", "umask 022 && exec \"$0\" 18"])
        .arg(&script)
        .env("PGBUNKER_PG_PREFIX", &prefix)
        .stdout(std::process::Stdio::from(
            std::io::stderr()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| {
                    CommandError::Usage(format!("cannot run {}: {e}", script.display()))
                })?,
        ))
        .status()
        .await
        .map_err(|e| CommandError::Usage(format!("cannot run {}: {e}", script.display())))?;
    let bindir = prefix.join("18/bin");
    if !status.success() || !bindir.join("initdb").is_file() {
        return Err(CommandError::Usage(format!(
            "no PostgreSQL server here ({looked}), and `{}` failed (exit {}): install the \
             server (apt install postgresql) or set PGBUNKER_PG_BIN",
            fetch_command(),
            status
                .code()
                .map_or("by a signal".into(), |c| c.to_string())
        )));
    }
    Ok(bindir)
}
