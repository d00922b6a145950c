//! The `pgbunker` binary: parses flags, calls the library, renders reports, and turns
//! errors into a message, a hint and a documented exit code.

mod cli;
mod progress;
mod render;

use std::io::IsTerminal;
use std::sync::Arc;

use clap::Parser;
use pgbunker::archive::{KeySource, StateDir};
use pgbunker::commands::{self, CommandError, RepoAccess};
use pgbunker::error::Classify;
use pgbunker::progress::{NoProgress, Progress};

use cli::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PGBUNKER_LOG")
                .unwrap_or_else(|_| format!("pgbunker={level}").into()),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let progress: Arc<dyn Progress> = if cli.no_progress || cli.json {
        Arc::new(NoProgress)
    } else if std::io::stderr().is_terminal() {
        Arc::new(progress::Bars::new())
    } else {
        Arc::new(progress::Lines::new())
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("start the async runtime");
    let outcome = runtime.block_on(async {
        tokio::select! {
            r = run(&cli, progress.clone()) => r,
            signal = interrupted() => Err(CommandError::Interrupted(signal)),
        }
    });
    let code = match outcome {
        Ok(()) => 0,
        Err(e) => {
            progress.finish();
            render::error(&e);
            e.class().exit_code()
        }
    };
    std::process::exit(code);
}

/// Resolves on SIGINT or SIGTERM. Dropping the running command then stops every
/// stream before anything is committed: the catalog commit is the last step, so an
/// interrupted backup can never look complete.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

fn repo_access(location: &str) -> Result<RepoAccess, CommandError> {
    Ok(RepoAccess {
        location: location.to_owned(),
        key: KeySource::from_env()?,
        state: StateDir::from_env(),
    })
}

async fn run(cli: &Cli, progress: Arc<dyn Progress>) -> Result<(), CommandError> {
    let json = cli.json;
    match &cli.command {
        Command::Init {
            repo,
            insecure_plaintext,
        } => {
            if *insecure_plaintext {
                eprintln!(
                    "WARNING: --insecure-plaintext: backups in this repository will NOT be \
                     encrypted. Anyone who can read {} can read your data.",
                    repo.repo
                );
            }
            let opts = commands::init::InitOptions {
                repo: repo_access(&repo.repo)?,
                plaintext: *insecure_plaintext,
            };
            let report = commands::init::init(&opts).await?;
            render::init(&report, json);
        }
        Command::Backup {
            repo,
            jobs,
            compress_level,
            part_size_mb,
            lock_wait_timeout,
            dburl,
            dbname,
        } => {
            let lock_wait_timeout = match lock_wait_timeout {
                Some(s) if !s.is_finite() || *s <= 0.0 => {
                    return Err(CommandError::Usage(
                        "--lock-wait-timeout must be a positive number of seconds".into(),
                    ))
                }
                Some(s) => Some(std::time::Duration::from_secs_f64(*s)),
                None => None,
            };
            let opts = commands::backup::BackupOptions {
                repo: repo_access(&repo.repo)?,
                source: dburl.clone().or_else(|| dbname.clone()),
                dump: pgbunker::dump::DumpOptions {
                    jobs: (*jobs).max(1),
                    compress_level: *compress_level,
                    part_bytes: part_size_mb.saturating_mul(1 << 20),
                    lock_wait_timeout,
                    ..Default::default()
                },
            };
            let report = commands::backup::backup(&opts, progress).await?;
            render::backup(&report, json);
        }
        Command::Restore {
            repo,
            backup,
            target,
            jobs,
            no_analyze,
        } => {
            let opts = commands::restore::RestoreOptions {
                repo: repo_access(&repo.repo)?,
                backup: backup.clone(),
                target: target.clone(),
                load: pgbunker::load::LoadOptions {
                    jobs: (*jobs).max(1),
                    analyze: !no_analyze,
                },
            };
            let report = commands::restore::restore(&opts, progress).await?;
            render::restore(&report, json);
        }
        Command::List { repo } => {
            let opts = commands::list::ListOptions {
                repo: repo_access(&repo.repo)?,
            };
            let report = commands::list::list(&opts).await?;
            render::list(&report, json);
        }
        Command::Demo {
            scale,
            jobs,
            keep_repo,
        } => {
            let opts = commands::demo::DemoOptions {
                scale: *scale,
                jobs: (*jobs).max(1),
                keep_repo: keep_repo.clone(),
            };
            let report = commands::demo::demo(&opts, progress).await?;
            render::demo(&report, json);
        }
    }
    Ok(())
}
