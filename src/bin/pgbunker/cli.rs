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
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct RepoArg {
    /// Repository location: a folder, file:///path, s3://bucket/prefix[?endpoint=…],
    /// gs://bucket/prefix or az://container/prefix.
    #[arg(long, env = "PGBUNKER_REPO", value_name = "PATH")]
    pub repo: String,
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
        /// Worker connections streaming tables in parallel.
        #[arg(short, long, default_value_t = 4)]
        jobs: usize,
        /// zstd level (1 fastest … 19 smallest).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=19))]
        compress_level: i32,
        /// Split tables larger than this many MiB into ctid page ranges streamed on
        /// separate workers (PostgreSQL 14+); 0 never splits.
        #[arg(long, default_value_t = 64, value_name = "MIB")]
        part_size_mb: u64,
        /// Give up if the table locks are not granted within this many seconds
        /// (default: wait).
        #[arg(long, value_name = "SECONDS")]
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
        /// Connections loading data and building indexes in parallel.
        #[arg(short, long, default_value_t = 4)]
        jobs: usize,
        /// Skip ANALYZE after loading.
        #[arg(long)]
        no_analyze: bool,
    },
    /// List backups, newest first.
    List {
        #[command(flatten)]
        repo: RepoArg,
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
