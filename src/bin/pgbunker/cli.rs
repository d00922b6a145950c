//! The command-line tree. Flags follow pg_dump/pg_restore where the meaning is the same.

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "pgbunker",
    version,
    about = "Snapshot-consistent, encrypted, logical PostgreSQL backups without pg_dump",
    after_help = "Keys come from the environment, never from flags: PGBUNKER_KEY_FILE \
                  (preferred), PGBUNKER_KEY (64 hex characters), PGBUNKER_PASSPHRASE_FILE or \
                  PGBUNKER_PASSPHRASE.\nExit codes: 0 ok, 1 internal, 2 usage, 3 connection, \
                  4 database, 5 repository, 6 key, 7 integrity, 8 local I/O, 130 interrupted."
)]
pub struct Cli {
    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Never draw progress bars.
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// Settings file (default: ~/.config/pgbunker/pgbunker.toml, then
    /// /etc/pgbunker/pgbunker.toml).
    #[arg(long, global = true, env = "PGBUNKER_CONFIG", value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// Where this machine remembers what it saw of each repository, to refuse a
    /// rolled-back or swapped one (default: ~/.local/state/pgbunker).
    #[arg(long, global = true, env = "PGBUNKER_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<std::path::PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct RepoArg {
    /// Repository location: a folder, file:///path, s3://bucket/prefix[?endpoint=…],
    /// gs://bucket/prefix or az://container/prefix.
    #[arg(long, env = "PGBUNKER_REPO", value_name = "URL")]
    pub repo: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new repository with one key slot.
    Init {
        #[command(flatten)]
        repo: RepoArg,
        /// Store backups UNENCRYPTED. Only for data that is not sensitive.
        #[arg(long)]
        insecure_plaintext: bool,
    },
    /// Back up one database.
    Backup {
        #[command(flatten)]
        repo: RepoArg,
        /// Worker connections streaming tables in parallel [default: 4].
        #[arg(short, long, env = "PGBUNKER_BACKUP_JOBS")]
        jobs: Option<usize>,
        /// zstd level (1 fastest … 19 smallest) [default: 3].
        #[arg(long, env = "PGBUNKER_COMPRESS_LEVEL",
              value_parser = clap::value_parser!(i32).range(1..=19))]
        compress_level: Option<i32>,
        /// Split tables larger than this many MiB into ctid page ranges streamed on
        /// separate workers (PostgreSQL 14+); 0 never splits [default: 64].
        #[arg(long, env = "PGBUNKER_PART_SIZE_MB", value_name = "MIB")]
        part_size_mb: Option<u64>,
        /// Give up if the table locks are not granted within this many seconds
        /// (default: wait).
        #[arg(long, env = "PGBUNKER_LOCK_WAIT_TIMEOUT", value_name = "SECONDS")]
        lock_wait_timeout: Option<f64>,
        /// Connection string or URL of the database (else -d, else PG* variables).
        #[arg(value_name = "DBURL")]
        dburl: Option<String>,
        /// Same as DBURL, like pg_dump's -d.
        #[arg(short = 'd', long = "dbname", conflicts_with = "dburl")]
        dbname: Option<String>,
    },
    /// Restore a backup into an empty database.
    Restore {
        #[command(flatten)]
        repo: RepoArg,
        /// Backup id, or `latest`.
        #[arg(value_name = "BACKUP")]
        backup: String,
        /// Connection string or URL of the (empty) target database.
        #[arg(long, value_name = "DBURL")]
        target: Option<String>,
        /// Connections loading data and building indexes in parallel [default: 4].
        #[arg(short, long, env = "PGBUNKER_RESTORE_JOBS")]
        jobs: Option<usize>,
        /// Skip ANALYZE after loading.
        #[arg(long)]
        no_analyze: bool,
    },
    /// List backups, newest first.
    List {
        #[command(flatten)]
        repo: RepoArg,
    },
    /// Apply the retention policy: tombstone what it does not keep, delete
    /// tombstoned backups and leftovers of failed runs after the grace period.
    Prune {
        #[command(flatten)]
        repo: RepoArg,
        #[command(flatten)]
        policy: PolicyArgs,
        /// How long tombstoned backups and leftovers wait before their objects are
        /// deleted (e.g. 24h, 7d; 0 deletes at once) [default: 24h].
        #[arg(long, env = "PGBUNKER_PRUNE_GRACE", value_name = "SPAN")]
        grace: Option<String>,
        /// Show what would happen; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Protect a backup from prune (legal hold, or keep until a date), or release it.
    Hold {
        #[command(flatten)]
        repo: RepoArg,
        /// Backup id, or `latest`.
        #[arg(value_name = "BACKUP")]
        backup: String,
        /// Keep until this time (2027-01-31 or RFC 3339) instead of a legal hold.
        #[arg(long, value_name = "WHEN", conflicts_with = "release")]
        until: Option<String>,
        /// Lift the legal hold and any keep-until.
        #[arg(long)]
        release: bool,
    },
    /// Run the whole job on a throwaway PostgreSQL with the fixture database.
    Demo {
        /// Fixture scale (1 ≈ 10 MB, 100 ≈ 1 GB).
        #[arg(long, default_value_t = 1)]
        scale: u32,
        #[arg(short, long, default_value_t = 4)]
        jobs: usize,
        /// Keep the demo repository here (needs a key in the environment).
        #[arg(long, value_name = "PATH")]
        keep_repo: Option<String>,
    },
}

/// The retention policy (restic's): each rule keeps backups; a backup is removed only
/// when no rule keeps it. Legal holds and the newest backup are always kept.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Keep the N newest backups.
    #[arg(long, env = "PGBUNKER_KEEP_LAST", value_name = "N")]
    pub keep_last: Option<u32>,
    /// Keep the newest backup of each of the last N hours that have one.
    #[arg(long, env = "PGBUNKER_KEEP_HOURLY", value_name = "N")]
    pub keep_hourly: Option<u32>,
    /// Keep the newest backup of each of the last N days that have one.
    #[arg(long, env = "PGBUNKER_KEEP_DAILY", value_name = "N")]
    pub keep_daily: Option<u32>,
    /// Keep the newest backup of each of the last N ISO weeks that have one.
    #[arg(long, env = "PGBUNKER_KEEP_WEEKLY", value_name = "N")]
    pub keep_weekly: Option<u32>,
    /// Keep the newest backup of each of the last N months that have one.
    #[arg(long, env = "PGBUNKER_KEEP_MONTHLY", value_name = "N")]
    pub keep_monthly: Option<u32>,
    /// Keep the newest backup of each of the last N years that have one.
    #[arg(long, env = "PGBUNKER_KEEP_YEARLY", value_name = "N")]
    pub keep_yearly: Option<u32>,
    /// Keep every backup younger than this (e.g. 30d, 12h, 2w, 1y6m).
    #[arg(long, env = "PGBUNKER_KEEP_WITHIN", value_name = "SPAN")]
    pub keep_within: Option<pgbunker::archive::retention::KeepWithin>,
}
