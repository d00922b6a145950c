//! The `pgbunker` binary: parses flags, calls the library, renders reports, and turns
//! errors into a message, a hint and a documented exit code.

mod cli;
mod config;
mod keys;
mod options;
mod progress;
mod render;
mod secrets;

use std::io::IsTerminal;
use std::sync::Arc;

use clap::Parser;
use pgbunker::commands::audit::{self, audited};
use pgbunker::commands::{
    backup, check, copy, demo, diff, export, hold, init, list, mark, mask, prune, restore,
    restore_test, show, upgrade, verify, CommandError,
};
use pgbunker::error::{Classify, Outcome};
use pgbunker::interrupt;
use pgbunker::progress::{NoProgress, Progress};

use cli::{Cli, Command};
use options::Ctx;
use render::Render;

fn main() {
    // Everything this process creates (repository objects on a local disk, state
    // files, reports, exports, temporary files) is for its owner only: backups of
    // health data are nobody else's business on a shared machine.
    // SAFETY: umask only sets the process's file mode creation mask.
    unsafe {
        libc::umask(0o077);
    }
    // Chunk buffers are megabytes each and come and go a hundred times a gigabyte:
    // above glibc's default threshold each one is a fresh mmap whose pages the kernel
    // faults in and zeroes, then unmaps. Keeping them on the heap halves the page
    // faults of a backup (measured: 156k → 66k minor faults on 812 MiB); memory stays
    // bounded by the chunks in flight.
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only tunes the allocator, before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
    }
    // Before anything secret is read: both images of a re-exec are covered.
    secrets::harden();
    let args = secrets::hide_passwords();
    secrets::scrub_environ();
    secrets::scrub_panics(&args);
    let cli = match Cli::try_parse_from(&args.args) {
        Ok(cli) => cli,
        // --help and --version, and clap's errors, which may quote an argument.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            eprint!("{}", secrets::scrub(&e.to_string(), &args, &[]));
            std::process::exit(e.exit_code());
        }
    };
    if let Command::Generate { what } = &cli.command {
        std::process::exit(match generate(what) {
            Ok(()) => 0,
            Err(e) => {
                render::error(&e);
                e.class().exit_code()
            }
        });
    }
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PGBUNKER_LOG")
                // object_store says at info level when it retries a request.
                .unwrap_or_else(|_| format!("pgbunker={level},object_store={level}").into()),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        // Cron mails stderr: colour codes there are noise.
        .with_ansi(std::io::stderr().is_terminal())
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
        let work = run(&cli, progress.clone());
        tokio::pin!(work);
        let outcome = tokio::select! {
            r = &mut work => r,
            signal = interrupted() => {
                // An audited run stops its work, records the interruption and returns;
                // a second signal, or a run that is not recorded, does not wait.
                interrupt::raise(signal);
                let stopped = Err(CommandError::Interrupted {
                    signal,
                    operation: operation(&cli.command).into(),
                });
                if interrupt::recording() {
                    tokio::select! {
                        r = tokio::time::timeout(std::time::Duration::from_secs(30), &mut work) => {
                            r.unwrap_or(stopped)
                        }
                        _ = interrupted() => stopped,
                    }
                } else {
                    stopped
                }
            }
        };
        // A command abandoned midway (a signal, an error) deletes its repository lock
        // and what it wrote to object storage on the way out, so prune need not wait
        // for the lock to go stale and an export leaves no files.
        if outcome.is_err() {
            pgbunker::teardown::finish(std::time::Duration::from_secs(10)).await;
        }
        outcome
    });
    let code = match outcome {
        Ok(code) => code,
        Err(e) => {
            progress.finish();
            render::error(&e);
            e.class().exit_code()
        }
    };
    std::process::exit(code);
}

/// The name an interrupted run's message and audit record go by.
fn operation(command: &Command) -> &'static str {
    match command {
        Command::Init(_) => "init",
        Command::Backup(_) => "backup",
        Command::Restore(_) => "restore",
        Command::Verify(a) if a.restore_test => "restore-test",
        Command::Verify(_) => "verify",
        Command::Export(_) => "export",
        Command::Diff(_) => "diff",
        Command::Copy(_) => "copy",
        Command::List(_) => "list",
        Command::Show(_) => "show",
        Command::Prune(_) => "prune",
        Command::Check(_) => "check",
        Command::Audit(_) => "audit",
        Command::Hold(_) => "hold",
        Command::Upgrade { .. } => "upgrade",
        Command::Key { .. } => "key",
        Command::Mark { .. } => "mark",
        Command::Mask { .. } => "mask-check",
        Command::Demo(_) => "demo",
        Command::Generate { .. } => "generate",
    }
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

/// `pgbunker generate`: man pages and completions from the command tree itself, so
/// they always match the flags.
fn generate(what: &cli::GenerateCommand) -> Result<(), CommandError> {
    use clap::CommandFactory;
    match what {
        cli::GenerateCommand::Man { dir } => std::fs::create_dir_all(dir)
            .and_then(|()| clap_mangen::generate_to(Cli::command(), dir))
            .map_err(|e| {
                CommandError::Usage(format!(
                    "cannot write the man pages to {}: {e}",
                    dir.display()
                ))
            }),
        cli::GenerateCommand::Completions { shell } => {
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "pgbunker",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    }
}

/// Prints a report, then the closing error line when its verdict failed; the exit
/// code.
fn finish<R: Render + Outcome>(report: &R, json: bool) -> i32 {
    render::show(report, json);
    match report.failed() {
        None => 0,
        Some(f) => {
            render::failed(&f);
            f.class.exit_code()
        }
    }
}

/// Runs the command; returns the exit code of a run that went to its end (a failed
/// verdict, `check`'s status).
async fn run(cli: &Cli, progress: Arc<dyn Progress>) -> Result<i32, CommandError> {
    let (cfg, _) = config::load(cli.config.as_deref())?;
    let ctx = Ctx { cli, cfg };
    let json = cli.json;
    Ok(match &cli.command {
        Command::Init(a) => {
            if a.insecure_plaintext {
                eprintln!(
                    "WARNING: --insecure-plaintext: backups in this repository will NOT be \
                     encrypted. Anyone who can read the repository can read your data."
                );
            }
            let o = ctx.init(a)?;
            finish(&audited(&o.repo, "init", init::init(&o)).await?, json)
        }
        Command::Backup(a) => {
            let o = ctx.backup(a)?;
            let work = backup::backup(&o, progress);
            finish(&audited(&o.repo, "backup", work).await?, json)
        }
        Command::Restore(a) if a.merge.is_some() => {
            let o = ctx.restore(a)?;
            let mode = a.merge.expect("checked above");
            let work = restore::merge(&o, mode, a.dry_run);
            finish(&audited(&o.repo, "restore", work).await?, json)
        }
        Command::Restore(a) if a.dry_run => finish(&restore::plan(&ctx.restore(a)?).await?, json),
        Command::Restore(a) if a.sql.is_some() => {
            let script = restore::script(&ctx.restore(a)?).await?;
            render::script(&script, a.sql.as_deref().expect("checked above"), json)?
        }
        Command::Restore(a) => {
            let o = ctx.restore(a)?;
            let work = restore::restore(&o, progress);
            finish(&audited(&o.repo, "restore", work).await?, json)
        }
        Command::Verify(a) if a.restore_test => {
            let o = ctx.restore_test(a)?;
            let work = restore_test::restore_test(&o, progress);
            finish(&audited(&o.repo, "restore-test", work).await?, json)
        }
        Command::Verify(a) => {
            let o = ctx.verify(a)?;
            let work = verify::verify(&o, progress);
            finish(&audited(&o.repo, "verify", work).await?, json)
        }
        Command::Export(a) => {
            let o = ctx.export(a)?;
            let work = export::export(&o, progress);
            finish(&audited(&o.repo, "export", work).await?, json)
        }
        Command::Diff(a) => {
            let o = ctx.diff(a)?;
            let work = diff::diff(&o, progress);
            finish(&audited(&o.repo, "diff", work).await?, json)
        }
        Command::Copy(a) => {
            let o = ctx.copy(a)?;
            let work = copy::copy(&o, progress);
            finish(&audited(&o.to, "copy", work).await?, json)
        }
        Command::List(a) => finish(&list::list(&ctx.list(a)?).await?, json),
        Command::Show(a) => finish(&show::show(&ctx.show(a)?).await?, json),
        Command::Prune(a) => {
            let o = ctx.prune(a)?;
            let report = audited(&o.repo, "prune", prune::prune(&o)).await?;
            render::prune(&report, json, a.quiet);
            0
        }
        Command::Check(a) => {
            // Whatever goes wrong, a monitoring plugin answers CRITICAL (exit 2) and
            // the textfile says so, rather than exiting with some other code.
            let report = match ctx.repo_access(&a.repo) {
                Ok(access) => {
                    let o = ctx.check(a, access)?;
                    if ctx.check_audited(a) {
                        audited(&o.repo, "check", check::check(&o)).await?
                    } else {
                        check::check(&o).await?
                    }
                }
                Err(e) => {
                    let location = a.repo.repo.clone().or_else(|| ctx.cfg.repo.clone());
                    check::cannot_check(
                        location.unwrap_or_default(),
                        &e,
                        ctx.prometheus(a).as_deref(),
                    )
                }
            };
            render::show(&report, json);
            report.status.exit_code()
        }
        Command::Audit(a) => finish(&audit::audit(&ctx.audit(a)?).await?, json),
        Command::Hold(a) => {
            let o = ctx.hold(a)?;
            finish(&audited(&o.repo, "hold", hold::hold(&o)).await?, json)
        }
        Command::Upgrade { repo } => {
            let o = upgrade::UpgradeOptions {
                repo: ctx.repo_access(repo)?,
            };
            finish(
                &audited(&o.repo, "upgrade", upgrade::upgrade(&o)).await?,
                json,
            )
        }
        Command::Key { action } => {
            keys::run(&ctx, action, json).await?;
            0
        }
        Command::Mask {
            action: cli::MaskCommand::Check(a),
        } => {
            let o = ctx.mask_check(a)?;
            finish(
                &audited(&o.repo, "mask-check", mask::check(&o)).await?,
                json,
            )
        }
        Command::Mark {
            action: cli::MarkCommand::Export { repo, out },
        } => {
            let mark = mark::export(&ctx.repo_access(repo)?).await?;
            render::mark_export(&mark, out.as_deref())
                .map_err(|e| CommandError::Usage(format!("cannot write the mark: {e}")))?;
            0
        }
        Command::Mark {
            action: cli::MarkCommand::Import { repo, file },
        } => finish(&mark::import(&ctx.repo_access(repo)?, file).await?, json),
        Command::Demo(a) => finish(&demo::demo(&ctx.demo(a), progress).await?, json),
        // Handled in main, before the settings file is read.
        Command::Generate { .. } => 0,
    })
}
