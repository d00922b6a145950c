//! The `pgbunker` binary: parses flags, calls the library, renders reports, and turns
//! errors into a message, a hint and a documented exit code.

mod cli;
mod config;
mod keys;
mod progress;
mod render;
mod secrets;

use std::io::IsTerminal;
use std::sync::Arc;

use clap::Parser;
use pgbunker::archive::retention::{KeepWithin, RetentionPolicy};
use pgbunker::archive::{HoldChange, KeySource, StateDir};
use pgbunker::commands::audit::audited;
use pgbunker::commands::{self, CommandError, RepoAccess};
use pgbunker::ddl::DdlOptions;
use pgbunker::error::Classify;
use pgbunker::load::{LoadOptions, RoleOptions, Sections};
use pgbunker::progress::{NoProgress, Progress};

use cli::{Cli, Command, RepoArg, SectionArg};
use config::Config;

fn main() {
    // Everything this process creates (repository objects on a local disk, state
    // files, reports, exports, temporary files) is for its owner only: backups of
    // health data are nobody else's business on a shared machine.
    // SAFETY: umask only sets the process's file mode creation mask.
    unsafe {
        libc::umask(0o077);
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
        let outcome = tokio::select! {
            r = run(&cli, progress.clone()) => r,
            signal = interrupted() => Err(CommandError::Interrupted(signal)),
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

/// What every verb needs besides its own flags: the settings file and the state folder.
struct Ctx<'a> {
    cli: &'a Cli,
    cfg: Config,
}

impl Ctx<'_> {
    /// The repository from `--repo`/`PGBUNKER_REPO`, else the settings file.
    fn repo_access(&self, arg: &RepoArg) -> Result<RepoAccess, CommandError> {
        let location = arg
            .repo
            .clone()
            .or_else(|| self.cfg.repo.clone())
            .ok_or_else(|| {
                CommandError::Usage(
                    "no repository given: pass --repo URL, set PGBUNKER_REPO, or set repo in \
                 pgbunker.toml"
                        .into(),
                )
            })?;
        let key = match (KeySource::from_env()?, &self.cfg.key_file) {
            (Some(k), _) => Some(k),
            (None, Some(file)) => Some(KeySource::from_key_file(file)?),
            (None, None) => match &self.cli.command {
                Command::Init {
                    insecure_plaintext: true,
                    ..
                } => None,
                Command::Init { .. } => keys::prompt_passphrase(&location, true)?,
                _ => keys::prompt_passphrase(&location, false)?,
            },
        };
        let state = self
            .cli
            .state_dir
            .clone()
            .or_else(|| self.cfg.state_dir.clone())
            .map(StateDir::new)
            .or_else(StateDir::from_env);
        let mut access = RepoAccess::new(location, key, state);
        access.trust.expect_seq = self.cli.expect_seq;
        access.audit_db = self
            .cli
            .audit_db
            .clone()
            .or_else(|| self.cfg.audit_db.clone());
        Ok(access)
    }
}

/// A span (`26h`, `8d`, `30min`) given to `flag`; a mistake names the flag.
fn span_arg(flag: &str, text: &str) -> Result<KeepWithin, CommandError> {
    text.parse().map_err(
        |e: pgbunker::archive::retention::RetentionError| match e.hint() {
            Some(hint) => CommandError::Usage(format!("{flag}: {e}; {hint}")),
            None => CommandError::Usage(format!("{flag}: {e}")),
        },
    )
}

/// "0" means no grace period; anything else is a span like 24h or 7d.
fn grace(text: &str) -> Result<Option<KeepWithin>, CommandError> {
    if text.trim() == "0" {
        return Ok(None);
    }
    span_arg("--grace", text).map(Some)
}

/// A span such as `26h` or `8d`, given to `flag`, as a duration from now back.
fn span_duration(flag: &str, text: &str) -> Result<std::time::Duration, CommandError> {
    let span = span_arg(flag, text)?;
    let now = time::OffsetDateTime::now_utc();
    let back = now - span.cutoff(now).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    Ok(back.try_into().unwrap_or_default())
}

/// `--since`: a span back from now (`7d`, `12h`, `30min`), or a date or time as for
/// [`until`].
fn since_time(text: &str) -> Result<time::OffsetDateTime, CommandError> {
    if text.starts_with(|c: char| c.is_ascii_digit()) && !text.contains('-') {
        let span = span_arg("--since", text)?;
        return Ok(span
            .cutoff(time::OffsetDateTime::now_utc())
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH));
    }
    until("--since", text)
}

/// Chunk sizes outside 64 KiB–32 MiB from the settings file (clap checks the flag):
/// smaller ones flood the repository with objects, larger ones break the format's cap.
fn chunk_bytes(kb: u32) -> Result<usize, CommandError> {
    if !(64..=32768).contains(&kb) {
        return Err(CommandError::Usage(format!(
            "chunk_size_kb = {kb} in pgbunker.toml: use 64 to 32768 (KiB)"
        )));
    }
    Ok(kb as usize * 1024)
}

/// Like [`until`], but a bare date means the end of that day: "keep until
/// 2027-06-30" keeps it through the 30th.
fn until_end_of(text: &str) -> Result<time::OffsetDateTime, CommandError> {
    let t = until("--until", text)?;
    let bare_date = !text.contains('T') && !text.contains(' ');
    Ok(if bare_date {
        t + time::Duration::days(1)
    } else {
        t
    })
}

/// `2027-01-31` (midnight UTC) or an RFC 3339 time, given to `flag`.
fn until(flag: &str, text: &str) -> Result<time::OffsetDateTime, CommandError> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t);
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, &fmt)
        .map(|d| d.midnight().assume_utc())
        .map_err(|_| {
            let span = if flag == "--since" {
                "a span back from now (7d, 12h, 30min), "
            } else {
                ""
            };
            CommandError::Usage(format!(
                "{flag} {text:?}: use {span}a date (2027-01-31) or an RFC 3339 time"
            ))
        })
}

/// Runs the command; returns the exit code of a success (`check` reports its status
/// through it).
async fn run(cli: &Cli, progress: Arc<dyn Progress>) -> Result<i32, CommandError> {
    let (cfg, _) = config::load(cli.config.as_deref())?;
    let ctx = Ctx { cli, cfg };
    let cfg = &ctx.cfg;
    let json = cli.json;
    match &cli.command {
        Command::Init {
            repo,
            insecure_plaintext,
        } => {
            if *insecure_plaintext {
                eprintln!(
                    "WARNING: --insecure-plaintext: backups in this repository will NOT be \
                     encrypted. Anyone who can read the repository can read your data."
                );
            }
            let opts = commands::init::InitOptions {
                repo: ctx.repo_access(repo)?,
                plaintext: *insecure_plaintext,
            };
            let report = audited(&opts.repo, "init", commands::init::init(&opts)).await?;
            render::init(&report, json);
        }
        Command::Backup {
            repo,
            jobs,
            compress_level,
            part_size_mb,
            chunk_size_kb,
            lock_wait_timeout,
            select,
            large_objects,
            skip_large_objects,
            dburl,
            dbname,
        } => {
            let b = &cfg.backup;
            let lock_wait_timeout = match lock_wait_timeout.or(b.lock_wait_timeout) {
                Some(s) if !s.is_finite() || s <= 0.0 => {
                    return Err(CommandError::Usage(
                        "--lock-wait-timeout must be a positive number of seconds".into(),
                    ))
                }
                Some(s) => Some(std::time::Duration::from_secs_f64(s)),
                None => None,
            };
            let opts = commands::backup::BackupOptions {
                repo: ctx.repo_access(repo)?,
                source: dburl
                    .clone()
                    .or_else(|| dbname.clone())
                    .or_else(|| b.source.clone()),
                dump: pgbunker::dump::DumpOptions {
                    jobs: jobs.or(b.jobs).unwrap_or(4).max(1),
                    compress_level: compress_level.or(b.compress_level).unwrap_or(3),
                    part_bytes: part_size_mb
                        .or(b.part_size_mb)
                        .unwrap_or(64)
                        .saturating_mul(1 << 20),
                    chunk_bytes: match chunk_size_kb.or(b.chunk_size_kb) {
                        Some(kb) => chunk_bytes(kb)?,
                        None => pgbunker::dump::DumpOptions::default().chunk_bytes,
                    },
                    lock_wait_timeout,
                    selection: select.selection(),
                    skip_large_objects: *skip_large_objects,
                    large_objects: *large_objects,
                },
            };
            let report = audited(
                &opts.repo,
                "backup",
                commands::backup::backup(&opts, progress),
            )
            .await?;
            render::backup(&report, json);
        }
        Command::Restore {
            repo,
            backup,
            target,
            jobs,
            select,
            with_dependencies,
            into_schema,
            create,
            clean,
            if_exists,
            data_only,
            cascade,
            schema_only,
            section,
            no_owner,
            no_privileges,
            create_roles,
            role_map,
            large_objects,
            no_large_objects,
            no_analyze,
            no_preflight,
            dry_run,
            force,
        } => {
            let sections = if *data_only {
                Sections {
                    pre_data: false,
                    data: true,
                    post_data: false,
                }
            } else if *schema_only {
                Sections {
                    pre_data: true,
                    data: false,
                    post_data: true,
                }
            } else if section.is_empty() {
                Sections::ALL
            } else {
                Sections {
                    pre_data: section.contains(&SectionArg::PreData),
                    data: section.contains(&SectionArg::Data),
                    post_data: section.contains(&SectionArg::PostData),
                }
            };
            if *cascade && (sections.pre_data || !sections.data) {
                return Err(CommandError::Usage(
                    "--cascade empties tables referencing those --data-only reloads: it goes \
                     with --data-only (or --section data alone)"
                        .into(),
                ));
            }
            let mut access = ctx.repo_access(repo)?;
            access.trust.force = *force;
            let opts = commands::restore::RestoreOptions {
                repo: access,
                backup: backup.clone(),
                target: target.clone(),
                load: LoadOptions {
                    jobs: jobs.or(cfg.restore.jobs).unwrap_or(4).max(1),
                    analyze: !no_analyze,
                    sections,
                    clean: clean.then_some(*if_exists),
                    ddl: DdlOptions {
                        owners: !no_owner,
                        privileges: !no_privileges,
                    },
                    cascade: *cascade,
                    roles: RoleOptions {
                        create: *create_roles,
                        map: role_map.iter().cloned().collect(),
                    },
                    large_objects: match (large_objects, no_large_objects) {
                        (true, _) => Some(true),
                        (_, true) => Some(false),
                        _ => None,
                    },
                },
                preflight: !no_preflight,
                selection: select.selection(),
                with_dependencies: *with_dependencies,
                into_schema: into_schema.clone(),
                create: *create,
            };
            if *dry_run {
                let plan = commands::restore_plan::plan(&opts).await?;
                render::restore_plan(&plan, json);
                return Ok(0);
            }
            let outcome = audited(
                &opts.repo,
                "restore",
                commands::restore::restore(&opts, progress),
            )
            .await;
            match &outcome {
                Ok(report) => render::restore(report, json),
                Err(CommandError::RestoreIncomplete(report, _)) => render::restore(report, json),
                Err(_) => {}
            }
            outcome?;
        }
        Command::Verify {
            repo,
            backup,
            restore_test: true,
            scratch,
            report_dir,
            keep_scratch,
            jobs,
            ..
        } => {
            let opts = commands::restore_test::RestoreTestOptions {
                restore: commands::restore::RestoreOptions {
                    load: LoadOptions {
                        jobs: jobs.or(cfg.restore.jobs).unwrap_or(4).max(1),
                        analyze: false,
                        ..LoadOptions::default()
                    },
                    ..commands::restore::RestoreOptions::whole(
                        ctx.repo_access(repo)?,
                        backup.clone(),
                        scratch.clone(),
                    )
                },
                report_dir: report_dir.clone().unwrap_or_else(|| ".".into()),
                keep_scratch: *keep_scratch,
            };
            let outcome = audited(
                &opts.restore.repo,
                "restore-test",
                commands::restore_test::restore_test(&opts, progress),
            )
            .await;
            match &outcome {
                Ok(report) => render::restore_test(report, json),
                Err(CommandError::RestoreTestFailed(report)) => render::restore_test(report, json),
                Err(_) => {}
            }
            outcome?;
        }
        Command::Verify {
            repo,
            backup,
            data,
            sample,
            jobs,
            ..
        } => {
            let opts = commands::verify::VerifyOptions {
                repo: ctx.repo_access(repo)?,
                backup: backup.clone(),
                depth: if *data || sample.is_some() {
                    commands::verify::Depth::Data
                } else {
                    commands::verify::Depth::Metadata
                },
                sample: *sample,
                jobs: jobs.or(cfg.verify.jobs).unwrap_or(4).max(1),
            };
            let outcome = audited(
                &opts.repo,
                "verify",
                commands::verify::verify(&opts, progress),
            )
            .await;
            // A damaged backup still has its report: print it, then the error line.
            match &outcome {
                Ok(report) => render::verify(report, json),
                Err(CommandError::VerifyFailed(report)) => render::verify(report, json),
                Err(_) => {}
            }
            outcome?;
        }
        Command::Export {
            repo,
            backup,
            out,
            format,
            select,
            row_group_size,
            compression,
            on_special,
            unconstrained_numeric,
            uuid_as,
            unsupported,
            jobs,
        } => {
            use pgbunker::export::kind::TypeChoices;
            use pgbunker::export::sink::{Codec, FileFormat};
            let opts = commands::export::ExportOptions {
                repo: ctx.repo_access(repo)?,
                backup: backup.clone(),
                out: out.clone(),
                selection: select.selection(),
                export: pgbunker::export::ExportOptions {
                    format: match format {
                        cli::FormatArg::Parquet => FileFormat::Parquet,
                        cli::FormatArg::Arrow => FileFormat::Arrow,
                    },
                    codec: match compression {
                        cli::CompressionArg::Zstd => Codec::Zstd,
                        cli::CompressionArg::Snappy => Codec::Snappy,
                        cli::CompressionArg::None => Codec::None,
                    },
                    row_group_rows: *row_group_size as usize,
                    on_special_fail: *on_special == cli::SpecialArg::Fail,
                    types: TypeChoices {
                        unconstrained_numeric: unconstrained_numeric.0,
                        uuid_as_text: *uuid_as == cli::UuidArg::Text,
                        unsupported_as_binary: *unsupported == cli::UnsupportedArg::Binary,
                        ..TypeChoices::default()
                    },
                    jobs: jobs
                        .or(cfg.export.jobs)
                        .unwrap_or_else(|| {
                            std::thread::available_parallelism().map_or(2, |n| n.get())
                        })
                        .max(1),
                },
            };
            let report = audited(
                &opts.repo,
                "export",
                commands::export::export(&opts, progress),
            )
            .await?;
            render::export(&report, json);
        }
        Command::List { repo } => {
            let opts = commands::list::ListOptions {
                repo: ctx.repo_access(repo)?,
            };
            let report = commands::list::list(&opts).await?;
            render::list(&report, json);
        }
        Command::Prune {
            repo,
            policy,
            grace: grace_flag,
            dry_run,
            accept_removal,
            force,
            quiet,
        } => {
            let p = &cfg.prune;
            let grace_text = grace_flag
                .clone()
                .or_else(|| p.grace.clone())
                .unwrap_or_else(|| commands::prune::DEFAULT_GRACE.into());
            // Flags (and their variables) replace the file's policy as a whole: mixing
            // rules from two places would keep less, or more, than either says.
            let from_flags = RetentionPolicy {
                keep_last: policy.keep_last,
                keep_hourly: policy.keep_hourly,
                keep_daily: policy.keep_daily,
                keep_weekly: policy.keep_weekly,
                keep_monthly: policy.keep_monthly,
                keep_yearly: policy.keep_yearly,
                keep_within: policy.keep_within.clone(),
            };
            let opts = commands::prune::PruneOptions {
                repo: ctx.repo_access(repo)?,
                policy: if from_flags == RetentionPolicy::default() {
                    p.policy()
                } else {
                    from_flags
                },
                grace: grace(&grace_text)?,
                dry_run: *dry_run,
                now: None,
                accept_removals: accept_removal.clone(),
                force: *force,
            };
            let report = audited(&opts.repo, "prune", commands::prune::prune(&opts)).await?;
            render::prune(&report, json, *quiet);
        }
        Command::Check {
            repo,
            max_age,
            verify_max_age,
            min_free_percent,
            prometheus,
        } => {
            let c = &cfg.check;
            let span = |name: &str, flag: &Option<String>, file: &Option<String>, default: &str| {
                let text = flag
                    .clone()
                    .or_else(|| file.clone())
                    .unwrap_or(default.into());
                span_duration(name, &text)
            };
            let prometheus = prometheus.clone().or_else(|| c.prometheus.clone());
            // Whatever goes wrong, a monitoring plugin answers CRITICAL (exit 2) and the
            // textfile says so, rather than exiting with some other code.
            let access = match ctx.repo_access(repo) {
                Ok(a) => a,
                Err(e) => {
                    let location = repo.repo.clone().or_else(|| cfg.repo.clone());
                    let report = commands::check::cannot_check(
                        location.unwrap_or_default(),
                        &e,
                        prometheus.as_deref(),
                    );
                    render::check(&report, json);
                    return Ok(report.status.exit_code());
                }
            };
            let opts = commands::check::CheckOptions {
                repo: access,
                max_age: span("--max-age", max_age, &c.max_age, "26h")?,
                verify_max_age: span("--verify-max-age", verify_max_age, &c.verify_max_age, "8d")?,
                min_free_percent: min_free_percent.or(c.min_free_percent).unwrap_or(10.0),
                prometheus,
                now: None,
            };
            let report = audited(&opts.repo, "check", commands::check::check(&opts)).await?;
            render::check(&report, json);
            return Ok(report.status.exit_code());
        }
        Command::Audit {
            repo,
            since,
            operation,
        } => {
            let opts = commands::audit::AuditOptions {
                repo: ctx.repo_access(repo)?,
                since: since.as_deref().map(since_time).transpose()?,
                operation: operation.clone(),
            };
            // A tampered trail still shows its records and every problem, then the
            // error line.
            let outcome = commands::audit::audit(&opts).await;
            match &outcome {
                Ok(report) => render::audit(report, json),
                Err(CommandError::AuditTampered(report)) => render::audit(report, json),
                Err(_) => {}
            }
            outcome?;
        }
        Command::Hold {
            repo,
            backup,
            until: until_flag,
            release,
        } => {
            let change = match (until_flag, release) {
                (_, true) => HoldChange::Release,
                (Some(t), false) => {
                    let t = until_end_of(t)?;
                    if t <= time::OffsetDateTime::now_utc() {
                        return Err(CommandError::Usage(format!(
                            "--until {t} is in the past: a hold must end in the future"
                        )));
                    }
                    HoldChange::KeepUntil(t)
                }
                (None, false) => HoldChange::LegalHold,
            };
            let opts = commands::hold::HoldOptions {
                repo: ctx.repo_access(repo)?,
                backup: backup.clone(),
                change,
            };
            let report = audited(&opts.repo, "hold", commands::hold::hold(&opts)).await?;
            render::hold(&report, json);
        }
        Command::Key { action } => keys::run(&ctx, action, json).await?,
        Command::Mark {
            action: cli::MarkCommand::Export { repo, out },
        } => {
            let mark = commands::mark::export(&ctx.repo_access(repo)?).await?;
            render::mark_export(&mark, out.as_deref())
                .map_err(|e| CommandError::Usage(format!("cannot write the mark: {e}")))?;
        }
        Command::Mark {
            action: cli::MarkCommand::Import { repo, file },
        } => {
            let report = commands::mark::import(&ctx.repo_access(repo)?, file).await?;
            render::mark_import(&report, json);
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
    Ok(0)
}
