//! Flags over the settings file over the library's defaults: every verb's options are
//! built here, in one place, and nowhere else. Defaults are the library's own
//! (`DumpOptions::default()`, `LoadOptions::default()`, …), and the library checks
//! ranges and combinations (`DumpOptions::check`, `PlanOptions::check`), so a library
//! caller gets the same refusals as the command line.

use pgbunker::archive::retention::{KeepWithin, RetentionError, RetentionPolicy};
use pgbunker::archive::{HoldChange, KeySource, StateDir};
use pgbunker::commands::{self, CommandError, RepoAccess};
use pgbunker::ddl::DdlOptions;
use pgbunker::dump::DumpOptions;
use pgbunker::error::Classify;
use pgbunker::load::plan::PlanOptions;
use pgbunker::load::{LoadOptions, RoleOptions, Sections};
use std::time::Duration;

use time::OffsetDateTime;

use crate::cli::{self, Cli, Command, RepoArg, SectionArg};
use crate::config::Config;
use crate::keys;

/// What every verb needs besides its own flags: the global flags and the settings file.
pub struct Ctx<'a> {
    pub cli: &'a Cli,
    pub cfg: Config,
}

/// Workers: the flag, else the settings file, else `default` (the library's).
fn jobs(flag: Option<usize>, file: Option<usize>, default: usize) -> usize {
    flag.or(file).unwrap_or(default).max(1)
}

impl Ctx<'_> {
    /// The repository from `--repo`/`PGBUNKER_REPO`, else the settings file.
    pub fn repo_access(&self, arg: &RepoArg) -> Result<RepoAccess, CommandError> {
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
                Command::Init(cli::InitArgs {
                    insecure_plaintext: true,
                    ..
                }) => None,
                Command::Init(_) => keys::prompt_passphrase(&location, true)?,
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

    pub fn init(&self, a: &cli::InitArgs) -> Result<commands::init::InitOptions, CommandError> {
        Ok(commands::init::InitOptions {
            repo: self.repo_access(&a.repo)?,
            plaintext: a.insecure_plaintext,
        })
    }

    pub fn backup(
        &self,
        a: &cli::BackupArgs,
    ) -> Result<commands::backup::BackupOptions, CommandError> {
        let file = &self.cfg.backup;
        let default = DumpOptions::default();
        Ok(commands::backup::BackupOptions {
            repo: self.repo_access(&a.repo)?,
            source: a
                .dburl
                .clone()
                .or_else(|| a.dbname.clone())
                .or_else(|| file.source.clone()),
            dump: DumpOptions {
                jobs: jobs(a.jobs, file.jobs, default.jobs),
                compress_level: a
                    .compress_level
                    .or(file.compress_level)
                    .unwrap_or(default.compress_level),
                part_bytes: a
                    .part_size_mb
                    .or(file.part_size_mb)
                    .map_or(default.part_bytes, |mb| mb.saturating_mul(1 << 20)),
                chunk_bytes: a
                    .chunk_size_kb
                    .or(file.chunk_size_kb)
                    .map_or(default.chunk_bytes, |kb| kb as usize * 1024),
                lock_wait_timeout: a
                    .lock_wait_timeout
                    .or(file.lock_wait_timeout)
                    .map(pgbunker::dump::lock_wait_timeout)
                    .transpose()
                    .map_err(|e| CommandError::Usage(format!("--lock-wait-timeout: {e}")))?,
                selection: a.select.clone(),
                skip_large_objects: a.skip_large_objects,
                large_objects: a.large_objects,
            },
        })
    }

    pub fn restore(
        &self,
        a: &cli::RestoreArgs,
    ) -> Result<commands::restore::RestoreOptions, CommandError> {
        let sections = if a.data_only {
            Sections {
                pre_data: false,
                data: true,
                post_data: false,
            }
        } else if a.schema_only {
            Sections {
                pre_data: true,
                data: false,
                post_data: true,
            }
        } else if a.section.is_empty() {
            Sections::ALL
        } else {
            Sections {
                pre_data: a.section.contains(&SectionArg::PreData),
                data: a.section.contains(&SectionArg::Data),
                post_data: a.section.contains(&SectionArg::PostData),
            }
        };
        let plan = PlanOptions {
            load: LoadOptions {
                jobs: jobs(a.jobs, self.cfg.restore.jobs, LoadOptions::default().jobs),
                analyze: !a.no_analyze,
                sections,
                clean: a.clean.then_some(a.if_exists),
                ddl: DdlOptions {
                    owners: !a.no_owner,
                    privileges: !a.no_privileges,
                },
                cascade: a.cascade,
                roles: RoleOptions {
                    create: a.create_roles,
                    map: a.role_map.iter().cloned().collect(),
                },
                large_objects: match (a.large_objects, a.no_large_objects) {
                    (true, _) => Some(true),
                    (_, true) => Some(false),
                    _ => None,
                },
                mask: None,
                with_dependents: a.with_dependents,
            },
            preflight: !a.no_preflight,
            selection: a.select.clone(),
            with_dependencies: a.with_dependencies,
            into_schema: a.into_schema.clone(),
            create: a.create,
        };
        // Before the key is asked for: a contradiction needs no repository.
        plan.check()?;
        let mut repo = self.repo_access(&a.repo)?;
        repo.trust.force = a.force;
        Ok(commands::restore::RestoreOptions {
            repo,
            backup: a.backup.id(),
            target: a.target.clone(),
            plan,
            mask: a.mask.mask.clone(),
        })
    }

    pub fn restore_test(
        &self,
        a: &cli::VerifyArgs,
    ) -> Result<commands::restore_test::RestoreTestOptions, CommandError> {
        Ok(commands::restore_test::RestoreTestOptions {
            repo: self.repo_access(&a.repo)?,
            backup: a.backup.clone(),
            scratch: a.scratch.clone(),
            jobs: jobs(a.jobs, self.cfg.restore.jobs, LoadOptions::default().jobs),
            report_dir: a.report_dir.clone().unwrap_or_else(|| ".".into()),
            keep_scratch: a.keep_scratch,
        })
    }

    pub fn verify(
        &self,
        a: &cli::VerifyArgs,
    ) -> Result<commands::verify::VerifyOptions, CommandError> {
        Ok(commands::verify::VerifyOptions {
            repo: self.repo_access(&a.repo)?,
            backup: a.backup.clone(),
            depth: if a.data || a.sample.is_some() {
                commands::verify::Depth::Data
            } else {
                commands::verify::Depth::Metadata
            },
            sample: a.sample,
            jobs: jobs(a.jobs, self.cfg.verify.jobs, commands::verify::DEFAULT_JOBS),
        })
    }

    pub fn diff(&self, a: &cli::DiffArgs) -> Result<commands::diff::DiffOptions, CommandError> {
        Ok(commands::diff::DiffOptions {
            repo: self.repo_access(&a.repo)?,
            first: a.first.clone(),
            second: match (&a.second, &a.live) {
                (_, Some(url)) => commands::diff::Second::Live(url.clone()),
                (Some(id), None) => commands::diff::Second::Backup(id.clone()),
                (None, None) => unreachable!("clap requires SECOND or --live"),
            },
            selection: a.select.clone(),
            rows: a.rows.clone(),
            rows_format: a.format,
            diff: pgbunker::diff::DiffOptions {
                expect_append_only: a.expect_append_only.clone(),
                memory_bytes: (a.memory_mb as usize) << 20,
            },
        })
    }

    pub fn export(
        &self,
        a: &cli::ExportArgs,
    ) -> Result<commands::export::ExportOptions, CommandError> {
        use pgbunker::export::kind::TypeChoices;
        Ok(commands::export::ExportOptions {
            repo: self.repo_access(&a.repo)?,
            backup: a.backup.id(),
            out: a.out.clone(),
            selection: a.select.clone(),
            mask: a.mask.mask.clone(),
            export: pgbunker::export::ExportOptions {
                format: a.format,
                codec: a.compression,
                row_group_rows: a.row_group_size as usize,
                on_special_fail: a.on_special == cli::SpecialArg::Fail,
                types: TypeChoices {
                    unconstrained_numeric: a.unconstrained_numeric.0,
                    uuid_as_text: a.uuid_as == cli::UuidArg::Text,
                    unsupported_as_binary: a.unsupported == cli::UnsupportedArg::Binary,
                    ..TypeChoices::default()
                },
                jobs: jobs(
                    a.jobs,
                    self.cfg.export.jobs,
                    pgbunker::export::default_jobs(),
                ),
                mask: None,
            },
        })
    }

    /// `copy`: the first repository as --repo would be, the second with its key from
    /// `PGBUNKER_TO_…` (never the first's).
    pub fn copy(&self, a: &cli::CopyArgs) -> Result<commands::copy::CopyOptions, CommandError> {
        let from = self.repo_access(&RepoArg {
            repo: Some(a.from.clone()),
        })?;
        let key = KeySource::from_env_with_prefix("PGBUNKER_TO_")?.ok_or_else(|| {
            CommandError::Usage(
                "no key for --to: set PGBUNKER_TO_KEY, PGBUNKER_TO_KEY_FILE, \
                 PGBUNKER_TO_PASSPHRASE or PGBUNKER_TO_PASSPHRASE_FILE"
                    .into(),
            )
        })?;
        let mut to = RepoAccess::new(a.to.clone(), Some(key), from.state.clone());
        to.audit_db = from.audit_db.clone();
        Ok(commands::copy::CopyOptions {
            from,
            to,
            backup: a.backup.clone(),
        })
    }

    pub fn mask_check(
        &self,
        a: &cli::MaskCheckArgs,
    ) -> Result<commands::mask::MaskCheckOptions, CommandError> {
        Ok(commands::mask::MaskCheckOptions {
            repo: self.repo_access(&a.repo)?,
            backup: a.backup.clone(),
            rules: a.rules.clone(),
            write_rules: a.write_rules.clone(),
            selection: a.select.clone(),
        })
    }

    pub fn list(&self, a: &cli::ListArgs) -> Result<commands::list::ListOptions, CommandError> {
        Ok(commands::list::ListOptions {
            repo: self.repo_access(&a.repo)?,
        })
    }

    pub fn show(&self, a: &cli::ShowArgs) -> Result<commands::show::ShowOptions, CommandError> {
        Ok(commands::show::ShowOptions {
            repo: self.repo_access(&a.repo)?,
            backup: a.backup.id(),
        })
    }

    pub fn prune(&self, a: &cli::PruneArgs) -> Result<commands::prune::PruneOptions, CommandError> {
        let file = &self.cfg.prune;
        let grace_text = a
            .grace
            .clone()
            .or_else(|| file.grace.clone())
            .unwrap_or_else(|| commands::prune::DEFAULT_GRACE.into());
        Ok(commands::prune::PruneOptions {
            repo: self.repo_access(&a.repo)?,
            // Flags (and their variables) replace the file's policy as a whole: mixing
            // rules from two places would keep less, or more, than either says.
            policy: if a.policy == RetentionPolicy::default() {
                file.policy.clone()
            } else {
                a.policy.clone()
            },
            grace: grace(&grace_text)?,
            dry_run: a.dry_run,
            now: None,
            accept_removals: a.accept_removal.clone(),
            force: a.force,
        })
    }

    /// `repo` is the repository access already made (`check` reports a failure to
    /// make it as CRITICAL, not as an error).
    pub fn check(
        &self,
        a: &cli::CheckArgs,
        repo: RepoAccess,
    ) -> Result<commands::check::CheckOptions, CommandError> {
        let file = &self.cfg.check;
        let span = |name: &str, flag: &Option<String>, file: &Option<String>, default: &str| {
            let text = flag
                .clone()
                .or_else(|| file.clone())
                .unwrap_or(default.into());
            span_duration(name, &text)
        };
        Ok(commands::check::CheckOptions {
            repo,
            max_age: span("--max-age", &a.max_age, &file.max_age, "26h")?,
            verify_max_age: span(
                "--verify-max-age",
                &a.verify_max_age,
                &file.verify_max_age,
                "8d",
            )?,
            min_free_percent: a.min_free_percent.or(file.min_free_percent).unwrap_or(10.0),
            prometheus: self.prometheus(a),
            timeout: a
                .timeout
                .or(file.timeout)
                .map_or(commands::check::DEFAULT_TIMEOUT, Duration::from_secs),
            expect_append_only: a.expect_append_only.clone(),
            now: None,
        })
    }

    /// Whether this check writes an audit record (`--audit`, or the settings file).
    pub fn check_audited(&self, a: &cli::CheckArgs) -> bool {
        a.audit || self.cfg.check.audit.unwrap_or(false)
    }

    pub fn prometheus(&self, a: &cli::CheckArgs) -> Option<std::path::PathBuf> {
        a.prometheus
            .clone()
            .or_else(|| self.cfg.check.prometheus.clone())
    }

    pub fn audit(&self, a: &cli::AuditArgs) -> Result<commands::audit::AuditOptions, CommandError> {
        Ok(commands::audit::AuditOptions {
            repo: self.repo_access(&a.repo)?,
            since: a.since.as_deref().map(since_time).transpose()?,
            operation: a.operation.clone(),
        })
    }

    pub fn hold(&self, a: &cli::HoldArgs) -> Result<commands::hold::HoldOptions, CommandError> {
        let change = match (&a.until, a.release) {
            (_, true) => HoldChange::Release,
            (Some(t), false) => {
                let t = until_end_of(t)?;
                if t <= OffsetDateTime::now_utc() {
                    return Err(CommandError::Usage(format!(
                        "--until {t} is in the past: a hold must end in the future"
                    )));
                }
                HoldChange::KeepUntil(t)
            }
            (None, false) => HoldChange::LegalHold,
        };
        Ok(commands::hold::HoldOptions {
            repo: self.repo_access(&a.repo)?,
            backup: a.backup.id(),
            change,
        })
    }

    pub fn demo(&self, a: &cli::DemoArgs) -> commands::demo::DemoOptions {
        commands::demo::DemoOptions {
            scale: a.scale,
            jobs: a.jobs.max(1),
            keep_repo: a.keep_repo.clone(),
        }
    }
}

/// A span (`26h`, `8d`, `30min`) given to `flag`; a mistake names the flag.
fn span_arg(flag: &str, text: &str) -> Result<KeepWithin, CommandError> {
    text.parse().map_err(|e: RetentionError| match e.hint() {
        Some(hint) => CommandError::Usage(format!("{flag}: {e}; {hint}")),
        None => CommandError::Usage(format!("{flag}: {e}")),
    })
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
    let now = OffsetDateTime::now_utc();
    let back = now - span.cutoff(now).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    Ok(back.try_into().unwrap_or_default())
}

/// `--since`: a span back from now (`7d`, `12h`, `30min`), or a date or time as for
/// [`until`].
fn since_time(text: &str) -> Result<OffsetDateTime, CommandError> {
    if text.starts_with(|c: char| c.is_ascii_digit()) && !text.contains('-') {
        let span = span_arg("--since", text)?;
        return Ok(span
            .cutoff(OffsetDateTime::now_utc())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH));
    }
    until("--since", text)
}

/// Like [`until`], but a bare date means the end of that day: "keep until
/// 2027-06-30" keeps it through the 30th.
fn until_end_of(text: &str) -> Result<OffsetDateTime, CommandError> {
    let t = until("--until", text)?;
    let bare_date = !text.contains('T') && !text.contains(' ');
    Ok(if bare_date {
        t + time::Duration::days(1)
    } else {
        t
    })
}

/// `2027-01-31` (midnight UTC) or an RFC 3339 time, given to `flag`.
fn until(flag: &str, text: &str) -> Result<OffsetDateTime, CommandError> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
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
