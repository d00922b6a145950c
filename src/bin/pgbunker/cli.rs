//! The command-line tree. Flags follow pg_dump/pg_restore where the meaning is the same.

use clap::{Args, Parser, Subcommand};
use pgbunker::archive::retention::RetentionPolicy;
use pgbunker::commands::backup::Selection;
use pgbunker::dump::DumpOptions;
use pgbunker::export::sink::{Codec, FileFormat};
use pgbunker::plan::pattern::Pattern;

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
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,
    /// More log output on stderr (-v info, which shows retried storage requests; -vv
    /// debug).
    #[arg(short, long, global = true, help_heading = "Global options", action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Never draw progress bars.
    #[arg(long, global = true, help_heading = "Global options")]
    pub no_progress: bool,
    /// Settings file (default: ~/.config/pgbunker/pgbunker.toml, then
    /// /etc/pgbunker/pgbunker.toml).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "PGBUNKER_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<std::path::PathBuf>,
    /// Where this machine remembers what it saw of each repository, to refuse a
    /// rolled-back or swapped one (default: ~/.local/state/pgbunker).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "PGBUNKER_STATE_DIR",
        value_name = "DIR"
    )]
    pub state_dir: Option<std::path::PathBuf>,
    /// Refuse a repository whose newest catalog entry is below N: what a host with no
    /// mark of it (a DR host) knows from the primary (`pgbunker mark export`, `list
    /// --json`'s catalog_seq).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "PGBUNKER_EXPECT_SEQ",
        value_name = "N"
    )]
    pub expect_seq: Option<u64>,
    /// Also log every operation as a row of this database's `backup_audit_log` table
    /// (the runbook's schema; created when missing).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "PGBUNKER_AUDIT_DB",
        value_name = "DBURL"
    )]
    pub audit_db: Option<String>,
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
    Init(InitArgs),
    /// Back up one database.
    Backup(BackupArgs),
    /// Restore a backup, or chosen tables of it, in foreign-key order.
    ///
    /// Into an empty database by default; `--create` makes the database, `--clean`
    /// drops and recreates the restored objects in one that has them, `--data-only`
    /// reloads the rows of existing tables. `-t/-n/-T/-N` choose tables and schemas
    /// with pg_dump's patterns (a partitioned table brings its partitions);
    /// `--with-dependencies` adds the tables they reference and the types, sequences
    /// and functions they need; `--into-schema` restores them beside the live ones.
    ///
    /// Before writing anything to the target, a pre-flight check downloads every chunk
    /// of the restored tables and compares its length and SHA-256 with the manifest,
    /// so a damaged backup is refused with the target untouched (exit 7). The check
    /// reads the stored (compressed) backup once more: from a local disk that is well
    /// under 1 % of the restore (0.14 s before a 23 s restore of 676 MiB of rows stored
    /// in 142 MiB), from object storage the time to download the stored backup once.
    /// `--no-preflight` skips it when the backup was just verified (`pgbunker verify
    /// --data`); chunks are still authenticated as they load, but damage found then
    /// leaves a partly restored target.
    ///
    /// Each table loads in its own transaction: one that fails is rolled back while
    /// the rest go on; the report lists what failed and the exit status is not 0.
    Restore(RestoreArgs),
    /// Check that backups would restore, without a database.
    ///
    /// Always: the catalog chain, the manifest (its hash in the catalog, its data key,
    /// its authentication tag), that its chunk lists are whole, and that every chunk is
    /// present with its recorded length (no download). `--data` also downloads every
    /// chunk and checks it down to the rows: SHA-256, header, decryption, decompression,
    /// tuple counts and each table's content checksum. `--sample PERCENT` does that for
    /// about PERCENT % of the chunks, the next share on every run (this machine's state
    /// folder remembers which), so repeated runs cover every chunk.
    ///
    /// Exit 7 when a backup is damaged: the report names each damaged table and chunk,
    /// and `--json` prints it with "ok": false before the error line.
    Verify(VerifyArgs),
    /// Export a backup's tables to Parquet (or Arrow IPC) files for analytics, straight
    /// from the repository: no database is needed.
    ///
    /// Each table becomes a folder OUT/<schema>.<table>/ of part-NNNNN.parquet files in
    /// row order (other bytes than letters, digits, _ and - in names as %XX). Types map
    /// as README.md's "Export to Parquet" table says; values Arrow cannot hold exactly
    /// (±infinity dates and timestamps, numeric NaN in a Decimal column) become NULL
    /// and are counted in a warning, or fail the export with --on-special fail. Files
    /// appear under their final name only once complete, an existing file is never
    /// replaced, and a failed or interrupted export removes the files it wrote;
    /// OUT/_pgbunker_export.json, written last, lists the tables and files.
    Export(ExportArgs),
    /// What changed in each table between two backups (or a backup and the database
    /// now, --live), row by row: rows inserted, deleted and updated (with the columns that
    /// changed), matched by primary key, else by a unique NOT NULL key, else as whole
    /// rows. Chunks both backups share are skipped unread.
    ///
    /// Rows are never printed: --rows FILE writes them as JSON lines. With
    /// --expect-append-only, exit 1 when such a table lost or changed a row.
    Diff(DiffArgs),
    /// Copy backups into a second repository (3-2-1: a copy off-site), re-sealed
    /// under its keys and committed to its catalog.
    ///
    /// The second repository's key comes from PGBUNKER_TO_KEY, PGBUNKER_TO_KEY_FILE,
    /// PGBUNKER_TO_PASSPHRASE or PGBUNKER_TO_PASSPHRASE_FILE (the first's from the usual
    /// PGBUNKER_KEY…). Backups it lists already are skipped: `copy … all` from cron
    /// copies what is new, and running a copy that stopped again finishes it.
    Copy(CopyArgs),
    /// List backups, newest first.
    List(ListArgs),
    /// One backup in detail: source database and server, snapshot time, each table
    /// with rows and sizes, what it does not hold, the keys it is sealed under.
    Show(ShowArgs),
    /// Apply the retention policy: tombstone what it does not keep, delete
    /// tombstoned backups and leftovers of failed runs after the grace period.
    Prune(PruneArgs),
    /// Monitoring: exit 0 OK, 1 WARNING, 2 CRITICAL (Nagios plugin codes) with a
    /// one-line summary; optionally a Prometheus textfile.
    Check(CheckArgs),
    /// Show the audit trail: who ran what, when, with what result.
    Audit(AuditArgs),
    /// Protect a backup from prune (legal hold, or keep until a date), or release it.
    Hold(HoldArgs),
    /// Bring a repository written by an older pgbunker to the current format, so new
    /// backups into it are deduplicated. No backup is rewritten.
    Upgrade {
        #[command(flatten)]
        repo: RepoArg,
    },
    /// Manage the keys that open the repository (key slots) and the repository key
    /// new backups use. Nothing is re-encrypted.
    Key {
        #[command(subcommand)]
        action: KeyCommand,
    },
    /// Masking rules for `restore --mask` and `export --mask`: which columns of a
    /// backup look like identifiers and whether the rules cover them.
    Mask {
        #[command(subcommand)]
        action: MaskCommand,
    },
    /// Carry this machine's high-water mark of a repository to another host.
    Mark {
        #[command(subcommand)]
        action: MarkCommand,
    },
    /// Run the whole job on a throwaway PostgreSQL with the fixture database.
    Demo(DemoArgs),
    /// Write the man pages or a shell's completions (what scripts/install installs),
    /// generated from this binary's own flags.
    #[command(hide = true)]
    Generate {
        #[command(subcommand)]
        what: GenerateCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum GenerateCommand {
    /// Man pages, one per command (pgbunker.1, pgbunker-backup.1, …), into DIR.
    Man {
        #[arg(value_name = "DIR")]
        dir: std::path::PathBuf,
    },
    /// The completion script for SHELL, on stdout.
    Completions {
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub repo: RepoArg,
    /// Store backups UNENCRYPTED. Only for data that is not sensitive.
    #[arg(long)]
    pub insecure_plaintext: bool,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub repo: RepoArg,
    /// Worker connections streaming tables in parallel [default: 4].
    #[arg(short, long, env = "PGBUNKER_BACKUP_JOBS")]
    pub jobs: Option<usize>,
    /// zstd level (1 fastest … 19 smallest) [default: 2].
    #[arg(long, env = "PGBUNKER_COMPRESS_LEVEL",
          value_parser = clap::value_parser!(i32).range(levels()))]
    pub compress_level: Option<i32>,
    /// Split tables larger than this many MiB into ctid page ranges streamed on
    /// separate workers (PostgreSQL 14+); 0 never splits [default: 64].
    #[arg(long, env = "PGBUNKER_PART_SIZE_MB", value_name = "MIB")]
    pub part_size_mb: Option<u64>,
    /// Average raw tuple bytes per chunk object, in KiB (64 to 32768); chunks end where
    /// the rows say, between a quarter and four times this. Smaller chunks store less
    /// of a table again when a few rows change, in more objects [default: 2048].
    #[arg(long, env = "PGBUNKER_CHUNK_SIZE_KB", value_name = "KIB",
          value_parser = clap::value_parser!(u32).range(chunk_kib()))]
    pub chunk_size_kb: Option<u32>,
    /// Give up if the table locks are not granted within this many seconds
    /// (default: wait).
    #[arg(long, env = "PGBUNKER_LOCK_WAIT_TIMEOUT", value_name = "SECONDS")]
    pub lock_wait_timeout: Option<f64>,
    #[command(flatten)]
    pub select: Selection,
    /// Also back up the large objects when -t/-n choose tables or schemas (as
    /// pg_dump's -b): a backup of the whole database carries them anyway.
    #[arg(short = 'b', long, conflicts_with = "skip_large_objects")]
    pub large_objects: bool,
    /// Leave the large objects out (pg_dump's -B); the backup lists them as not
    /// covered.
    #[arg(
        short = 'B',
        long = "no-large-objects",
        visible_alias = "skip-large-objects"
    )]
    pub skip_large_objects: bool,
    /// Connection string or URL of the database (else -d, else PG* variables).
    #[arg(value_name = "DBURL")]
    pub dburl: Option<String>,
    /// Same as DBURL, like pg_dump's -d.
    #[arg(short = 'd', long = "dbname", conflicts_with = "dburl")]
    pub dbname: Option<String>,
}

/// Which backup a command reads.
#[derive(Debug, Args)]
pub struct BackupArg {
    /// Backup id, a unique start of it or of its last part (`8850cd42`), or `latest`.
    #[arg(value_name = "BACKUP", required_unless_present = "latest")]
    backup: Option<String>,
    /// The newest complete backup: the same as BACKUP `latest`.
    #[arg(long, conflicts_with = "backup")]
    latest: bool,
}

impl BackupArg {
    pub fn id(&self) -> String {
        match (&self.backup, self.latest) {
            (Some(id), false) => id.clone(),
            _ => "latest".into(),
        }
    }
}

/// `--mask`, for the verbs that write rows out of the repository.
#[derive(Debug, Args)]
pub struct MaskArg {
    /// Mask the rows on their way out with the rules in this file: names, emails,
    /// MRNs, dates and notes replaced by the library's keyed transforms, the same in
    /// every table and run for the same masking key (PGBUNKER_MASK_KEY or
    /// PGBUNKER_MASK_KEY_FILE, never the repository's key). Refused before anything is
    /// written while a column that looks like an identifier has no rule, or a rule
    /// would break a key or foreign key; `pgbunker mask check` shows both.
    #[arg(long, value_name = "RULES.toml")]
    pub mask: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The repository to copy from (as --repo).
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// The repository to copy into; it must exist (`pgbunker init`).
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Backup id, a unique start of it, `latest`, or `all`.
    #[arg(value_name = "BACKUP", default_value = "latest")]
    pub backup: String,
}

#[derive(Debug, Subcommand)]
pub enum MaskCommand {
    /// List every column of BACKUP that looks like an identifier (by its name and by
    /// a sample of its values: names, emails, phones, SSNs, MRNs, dates of birth,
    /// free text), what RULES do to each, and the rules that would break a key or a
    /// foreign key. Exit 1 while any is uncovered: `--mask` refuses then too.
    Check(MaskCheckArgs),
}

#[derive(Debug, Args)]
pub struct MaskCheckArgs {
    #[command(flatten)]
    pub repo: RepoArg,
    /// Backup id, a unique start of it, or `latest`.
    #[arg(value_name = "BACKUP")]
    pub backup: String,
    /// The rules file to check; without it every flagged column is uncovered.
    #[arg(value_name = "RULES.toml")]
    pub rules: Option<std::path::PathBuf>,
    /// Write a starting rules file covering every flagged column with its suggested
    /// transform, for review (a new file: never overwritten).
    #[arg(long, value_name = "FILE")]
    pub write_rules: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub select: Selection,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub repo: RepoArg,
    #[command(flatten)]
    pub backup: BackupArg,
    /// Connection string or URL of the target database.
    #[arg(long, value_name = "DBURL", required_unless_present_any = ["dry_run", "sql"])]
    pub target: Option<String>,
    /// Connections loading data and building indexes in parallel [default: 4].
    #[arg(short, long, env = "PGBUNKER_RESTORE_JOBS")]
    pub jobs: Option<usize>,
    #[command(flatten)]
    pub select: Selection,
    /// Also restore what the chosen tables need: the tables their foreign keys
    /// reference (and theirs), partition and inheritance parents, and the types,
    /// sequences, functions and extensions they use.
    #[arg(long)]
    pub with_dependencies: bool,
    /// Also bring back what points at the chosen tables from outside them and the
    /// target lacks (as after `DROP TABLE … CASCADE`): other tables' foreign keys to
    /// them (validated: rows without a parent make that key fail, named) and the views
    /// and materialized views built on them. Without it, the report names what was not
    /// brought back.
    #[arg(long, conflicts_with = "into_schema")]
    pub with_dependents: bool,
    /// Restore the chosen tables under this schema (created if missing), beside
    /// the live ones, to compare before replacing. Only the tables, their keys,
    /// indexes and checks, their own sequences, and foreign keys between them come
    /// along; the copies get no grants.
    #[arg(long, value_name = "SCHEMA", conflicts_with_all = ["create", "data_only"])]
    pub into_schema: Option<String>,
    /// Create the target database (with --clean, drop it first).
    #[arg(short = 'C', long)]
    pub create: bool,
    /// Drop the restored objects before recreating them (never CASCADE: an object
    /// that is not restored and depends on one makes the restore fail untouched).
    #[arg(short = 'c', long, conflicts_with = "data_only")]
    pub clean: bool,
    /// With --clean: do not fail on objects that are not there.
    #[arg(long, requires = "clean")]
    pub if_exists: bool,
    /// Only the rows (and sequence values), into tables that exist: each group of
    /// tables linked by foreign keys is emptied and reloaded in one transaction.
    #[arg(short = 'a', long, conflicts_with_all = ["schema_only", "section"])]
    pub data_only: bool,
    /// With --data-only: also empty the tables outside the restore whose foreign
    /// keys reference the reloaded ones (their rows are lost).
    #[arg(long)]
    pub cascade: bool,
    /// Only the schema: no rows, no sequence values.
    #[arg(short = 's', long, conflicts_with = "section")]
    pub schema_only: bool,
    /// Restore only this section; repeatable: pre-data (schemas, types, tables),
    /// data (rows, sequence values), post-data (keys, indexes, foreign keys,
    /// triggers, policies).
    #[arg(long, value_enum, value_name = "SECTION")]
    pub section: Vec<SectionArg>,
    /// Do not set owners: everything is owned by the user who restores.
    #[arg(short = 'O', long)]
    pub no_owner: bool,
    /// Do not restore privileges (GRANT/REVOKE, default privileges).
    #[arg(short = 'x', long)]
    pub no_privileges: bool,
    /// Create the roles the backup's objects name (owners, grantees, policy roles)
    /// that the target cluster lacks, with their attributes and memberships and
    /// without passwords, as `pg_dumpall --globals-only --no-role-passwords` would;
    /// roles that exist are left as they are. Needs CREATEROLE (superuser for
    /// superuser roles).
    #[arg(long)]
    pub create_roles: bool,
    /// Put role NEW wherever the backup names role OLD (owners, grants, policies,
    /// default privileges, user mappings); repeatable.
    #[arg(long, value_name = "OLD=NEW", value_parser = role_pair)]
    pub role_map: Vec<(String, String)>,
    /// Also restore the backup's large objects when -t/-n choose tables or schemas
    /// (a whole restore brings them anyway). They keep their OIDs: a target that
    /// has a large object under one of them is refused unless --clean.
    #[arg(short = 'b', long, conflicts_with = "no_large_objects")]
    pub large_objects: bool,
    /// Leave the backup's large objects out.
    #[arg(short = 'B', long)]
    pub no_large_objects: bool,
    /// Skip ANALYZE after loading (and, on PostgreSQL 18+, the import of the source's
    /// planner statistics that replaces it for the larger tables).
    #[arg(long)]
    pub no_analyze: bool,
    /// Skip the pre-flight check (see above).
    #[arg(long)]
    pub no_preflight: bool,
    /// Print the plan (objects and tables in order, with sizes) and change nothing;
    /// with --merge, count what the merge would change and roll it back. (For --mask,
    /// `pgbunker mask check` shows what the rules do.)
    #[arg(long, conflicts_with = "mask")]
    pub dry_run: bool,
    /// Bring the chosen tables (-t) of the live target back to the backup's rows in
    /// place, without dropping or emptying them, so tables referencing them keep their
    /// rows: changed rows are updated and deleted rows inserted again, matched by
    /// primary key (or a unique NOT NULL key), in one transaction with the tables
    /// locked against writers. `exact` also deletes rows the backup did not have,
    /// except those another row references (named, never cascaded).
    #[arg(long, value_enum, value_name = "keep|exact", num_args = 0..=1,
          default_missing_value = "keep", requires = "target", conflicts_with_all = ["sql", "mask"])]
    pub merge: Option<pgbunker::diff::merge::MergeMode>,
    #[command(flatten)]
    pub mask: MaskArg,
    /// Write the restore's statements, whole, as an SQL script to FILE (`-`: standard
    /// output) and change nothing, like pg_restore -f: the schema only, the rows stay
    /// in the repository.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["dry_run", "target", "mask"])]
    pub sql: Option<std::path::PathBuf>,
    /// Restore `latest` although a complete-looking backup newer than it is missing
    /// from the catalog (a sign that its newest entries were deleted).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub repo: RepoArg,
    /// Backup id (or a unique start of it), `latest`, or `all` (every complete backup).
    #[arg(value_name = "BACKUP", default_value = "latest")]
    pub backup: String,
    /// Download every chunk and check it down to its rows.
    #[arg(long)]
    pub data: bool,
    /// Check the data of about PERCENT % of the chunks, the next share on each run.
    #[arg(long, value_name = "PERCENT", conflicts_with = "data",
          value_parser = clap::value_parser!(u8).range(1..=100))]
    pub sample: Option<u8>,
    /// Chunks downloaded and checked at once [default: 4].
    #[arg(short, long, env = "PGBUNKER_VERIFY_JOBS")]
    pub jobs: Option<usize>,
    /// Restore the backup into the --scratch database, check every table's rows
    /// and content checksum, foreign keys and indexes, write a report, and drop
    /// what was restored.
    #[arg(long, requires = "scratch", conflicts_with_all = ["data", "sample"])]
    pub restore_test: bool,
    /// An empty database for --restore-test (connection string or URL).
    #[arg(long, env = "PGBUNKER_SCRATCH_DB", value_name = "DBURL")]
    pub scratch: Option<String>,
    /// Where --restore-test writes its JSON and Markdown reports [default: .].
    #[arg(long, env = "PGBUNKER_REPORT_DIR", value_name = "DIR")]
    pub report_dir: Option<std::path::PathBuf>,
    /// Leave the restored objects in the scratch database.
    #[arg(long)]
    pub keep_scratch: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub repo: RepoArg,
    #[command(flatten)]
    pub backup: BackupArg,
    /// Folder, or object-storage URL (s3://bucket/prefix, gs://…, az://…).
    #[arg(long, value_name = "DIR|URL")]
    pub out: String,
    #[arg(long, value_enum, default_value = "parquet")]
    pub format: FileFormat,
    #[command(flatten)]
    pub select: Selection,
    /// Rows per Parquet row group.
    #[arg(long, value_name = "ROWS", default_value_t = 1_048_576,
          value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub row_group_size: u64,
    #[arg(long, value_enum, default_value = "zstd")]
    pub compression: Codec,
    /// What to do with values Arrow cannot hold exactly: export NULL and warn, or
    /// stop with the table, column and row.
    #[arg(long, value_enum, default_value = "null")]
    pub on_special: SpecialArg,
    /// numeric columns without precision: `text` (exact, as PostgreSQL prints them)
    /// or `P,S` for Decimal(P,S); values that do not fit follow --on-special.
    #[arg(long, value_name = "text|P,S", default_value = "text",
          value_parser = parse_unconstrained_numeric)]
    pub unconstrained_numeric: NumericChoice,
    /// uuid columns as 16 bytes with Arrow's UUID extension type, or as text.
    #[arg(long, value_enum, default_value = "binary")]
    pub uuid_as: UuidArg,
    /// Columns of types with no Arrow mapping: refuse the export naming them, or
    /// export their PostgreSQL binary send form as bytes, with a warning.
    #[arg(long, value_enum, default_value = "fail")]
    pub unsupported: UnsupportedArg,
    /// Files decoded and encoded at once [default: the number of CPUs].
    #[arg(short, long, env = "PGBUNKER_EXPORT_JOBS")]
    pub jobs: Option<usize>,
    #[command(flatten)]
    pub mask: MaskArg,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub repo: RepoArg,
    /// The earlier backup: id, a unique start of it, or `latest`.
    #[arg(value_name = "FIRST")]
    pub first: String,
    /// The later backup.
    #[arg(value_name = "SECOND", required_unless_present = "live")]
    pub second: Option<String>,
    /// Compare FIRST with the database as it is now (read in one snapshot, each table
    /// cut into chunks as a backup would, so what did not change is not compared row by
    /// row) instead of with a second backup.
    #[arg(long, value_name = "DBURL", conflicts_with = "second")]
    pub live: Option<String>,
    #[command(flatten)]
    pub select: Selection,
    /// Write every changed row to this new file as JSON lines ({"table", "change",
    /// "key", "old", "new"}), or with --format csv|parquet to this new folder as one
    /// file per table; created owner-only, never overwritten, removed if the diff fails.
    #[arg(long, value_name = "PATH")]
    pub rows: Option<std::path::PathBuf>,
    /// How --rows writes: JSON lines, or per table CSV or Parquet files whose rows are
    /// numbered changes (pgbunker_change_no, pgbunker_change, pgbunker_side: old or
    /// new) followed by the table's columns, typed like export's.
    #[arg(long, value_enum, default_value = "jsonl", requires = "rows")]
    pub format: pgbunker::diff::RowsFormat,
    /// Tables (patterns as -t) that may only grow: exit 1, naming the rows, when one of
    /// their rows was updated or deleted. Repeatable.
    #[arg(long, value_name = "PATTERN", value_parser = Pattern::table)]
    pub expect_append_only: Vec<Pattern>,
    /// Memory for one table's rows that differ, in MiB: more are spilled to sealed
    /// temporary files ($TMPDIR) and matched part by part.
    #[arg(long, value_name = "MIB", default_value_t = (pgbunker::diff::DEFAULT_MEMORY_BYTES >> 20) as u64,
          value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub memory_mb: u64,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub repo: RepoArg,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub repo: RepoArg,
    #[command(flatten)]
    pub backup: BackupArg,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    #[command(flatten)]
    pub repo: RepoArg,
    #[command(flatten)]
    pub policy: RetentionPolicy,
    /// How long tombstoned backups and leftovers wait before their objects are
    /// deleted (e.g. 24h, 7d; 0 deletes at once) [default: 24h].
    #[arg(long, env = "PGBUNKER_PRUNE_GRACE", value_name = "SPAN")]
    pub grace: Option<String>,
    /// Show what would happen; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Accept catalog entry SEQ, written by another client, that took several
    /// backups (or the newest) out of the catalog, so their objects may be deleted;
    /// repeatable.
    #[arg(long, value_name = "SEQ")]
    pub accept_removal: Vec<u64>,
    /// Go on although a complete-looking backup newer than every committed one is
    /// missing from the catalog; it is kept for the grace period.
    #[arg(long)]
    pub force: bool,
    /// Print nothing when all went well (for cron, which mails any output);
    /// warnings and errors still go to stderr.
    #[arg(short, long, conflicts_with = "dry_run")]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub repo: RepoArg,
    /// CRITICAL when the newest complete backup is older than this [default: 26h; units y, mo, w, d, h, min].
    #[arg(long, env = "PGBUNKER_CHECK_MAX_AGE", value_name = "SPAN")]
    pub max_age: Option<String>,
    /// WARNING when the last verify is older than this, or none ran [default: 8d].
    #[arg(long, env = "PGBUNKER_CHECK_VERIFY_MAX_AGE", value_name = "SPAN")]
    pub verify_max_age: Option<String>,
    /// WARNING below this much free space on a local repository [default: 10].
    #[arg(long, env = "PGBUNKER_CHECK_MIN_FREE_PERCENT", value_name = "PERCENT")]
    pub min_free_percent: Option<f64>,
    /// Also write node_exporter textfile metrics here.
    #[arg(long, env = "PGBUNKER_CHECK_PROMETHEUS", value_name = "FILE")]
    pub prometheus: Option<std::path::PathBuf>,
    /// CRITICAL when the repository has not answered within this many seconds
    /// (storage retries included) [default: 30].
    #[arg(long, env = "PGBUNKER_CHECK_TIMEOUT", value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: Option<u64>,
    /// Also write an audit record of this check (by default a check, which runs every
    /// few minutes, leaves the trail alone).
    #[arg(long, env = "PGBUNKER_CHECK_AUDIT")]
    pub audit: bool,
    /// Tables (patterns as -t) that may only grow: CRITICAL when a row of theirs was
    /// updated or deleted between the two newest backups holding them (as `diff
    /// --expect-append-only`; needs the repository key). Repeatable.
    #[arg(long, value_name = "PATTERN", value_parser = Pattern::table)]
    pub expect_append_only: Vec<Pattern>,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub repo: RepoArg,
    /// Only records since this span ago (7d, 12h) or date (2026-11-01).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only this operation (backup, restore, verify, prune, hold, check, …).
    #[arg(long, value_name = "NAME")]
    pub operation: Option<String>,
}

#[derive(Debug, Args)]
pub struct HoldArgs {
    #[command(flatten)]
    pub repo: RepoArg,
    #[command(flatten)]
    pub backup: BackupArg,
    /// Keep until this time (2027-01-31 or RFC 3339) instead of a legal hold.
    #[arg(long, value_name = "WHEN", conflicts_with = "release")]
    pub until: Option<String>,
    /// Lift the legal hold and any keep-until.
    #[arg(long)]
    pub release: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Fixture scale (1 ≈ 10 MB, 100 ≈ 1 GB).
    #[arg(long, default_value_t = 1)]
    pub scale: u32,
    #[arg(short, long, default_value_t = 4)]
    pub jobs: usize,
    /// Keep the demo repository here (needs a key in the environment).
    #[arg(long, value_name = "PATH")]
    pub keep_repo: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Add a key slot for a new key or passphrase.
    #[command(long_about = "Add a key slot for a new key or passphrase.\n\n\
        A key that already opens the repository unlocks it (PGBUNKER_KEY_FILE, \
        PGBUNKER_KEY, PGBUNKER_PASSPHRASE_FILE or PGBUNKER_PASSPHRASE). The new one comes \
        from exactly one of PGBUNKER_NEW_KEY_FILE, PGBUNKER_NEW_KEY, \
        PGBUNKER_NEW_PASSPHRASE_FILE or PGBUNKER_NEW_PASSPHRASE, else from a passphrase \
        typed twice at the terminal; never from a flag.\n\n\
        A format-1 repository is upgraded to format 2 first (its key ring moves to \
        keyring/); older pgbunker versions can no longer open it afterwards.")]
    Add {
        #[command(flatten)]
        repo: RepoArg,
    },
    /// List the key slots and the key ring's generations.
    #[command(long_about = "List the key slots and the key ring's generations.\n\n\
        Without a key in the environment only the slots are shown: they are plaintext. \
        With a key, also which slot it opened and every generation of the (encrypted) \
        key ring, with its repository key ids and which one new backups use.")]
    List {
        #[command(flatten)]
        repo: RepoArg,
    },
    /// Remove a key slot, so its key no longer opens the repository.
    #[command(
        long_about = "Remove a key slot, so its key no longer opens the repository.\n\n\
        Any key that opens the repository may remove any slot, its own too, but never the \
        last one.\n\n\
        Removing revokes: the other slots get a new ring key and a new key ring \
        generation is written under it, so the removed key opens nothing current even if \
        its slot is put back, and anything it seals from now on is refused. It can still \
        read the backups written before its removal: after a key is exposed, treat those \
        as exposed. Every other slot must have been used for a write once since format 3 \
        (so its public key is pinned); pgbunker names the ones that were not."
    )]
    Remove {
        #[command(flatten)]
        repo: RepoArg,
        /// The slot's id (16 hex digits, from `pgbunker key list`).
        #[arg(value_name = "KEK_ID")]
        kek_id: String,
    },
    /// Start a new repository key for new backups; older backups stay readable.
    #[command(
        long_about = "Start a new repository key for new backups; older backups stay \
        readable (every key in the ring reads, the newest writes).\n\n\
        From the rotation on, catalog entries and backups sealed with an older \
        repository key are refused. Every key slot opens the new generation too: rotation \
        limits what one leaked repository key can do, not what a leaked slot key can. To \
        cut a key off, remove its slot (see `pgbunker key remove --help`)."
    )]
    Rotate {
        #[command(flatten)]
        repo: RepoArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum MarkCommand {
    /// Print the newest catalog entry this machine trusts as a mark file (JSON).
    #[command(
        long_about = "Print the newest catalog entry this machine trusts as a mark \
        file (JSON, schema/mark.schema.json).\n\n\
        Import it on a host that has never seen the repository (`pgbunker mark import`): \
        that host then refuses a catalog that went back before this entry or was \
        rewritten, instead of trusting whatever it finds on first contact."
    )]
    Export {
        #[command(flatten)]
        repo: RepoArg,
        /// Write the mark here instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<std::path::PathBuf>,
    },
    /// Make a mark file this machine's high-water mark of the repository.
    #[command(long_about = "Make a mark file this machine's high-water mark of the \
        repository.\n\n\
        The repository must hold the entry the mark names, unchanged, and nothing older as \
        its newest; a higher mark this machine already keeps stays.")]
    Import {
        #[command(flatten)]
        repo: RepoArg,
        /// A file written by `pgbunker mark export`.
        #[arg(value_name = "FILE")]
        file: std::path::PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SpecialArg {
    Null,
    Fail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UuidArg {
    Binary,
    Text,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UnsupportedArg {
    Fail,
    Binary,
}

/// How numeric columns without precision are exported: `None` as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumericChoice(pub Option<(u8, u8)>);

/// `text` → exact text; `P,S` → Decimal(P,S) within Arrow's limits.
fn parse_unconstrained_numeric(s: &str) -> Result<NumericChoice, String> {
    if s == "text" {
        return Ok(NumericChoice(None));
    }
    let bad = || format!("expected `text` or `P,S` with 1 <= P <= 76 and 0 <= S <= P, not {s:?}");
    let (p, sc) = s.split_once(',').ok_or_else(bad)?;
    let p: u8 = p.trim().parse().map_err(|_| bad())?;
    let sc: u8 = sc.trim().parse().map_err(|_| bad())?;
    if !(1..=76).contains(&p) || sc > p {
        return Err(bad());
    }
    Ok(NumericChoice(Some((p, sc))))
}

/// A section of a restore, as pg_restore names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SectionArg {
    PreData,
    Data,
    PostData,
}

/// The library's range of zstd levels, for clap.
fn levels() -> std::ops::RangeInclusive<i64> {
    let r = DumpOptions::COMPRESS_LEVELS;
    (*r.start()).into()..=(*r.end()).into()
}

/// The library's range of chunk sizes in KiB, for clap.
fn chunk_kib() -> std::ops::RangeInclusive<i64> {
    let r = DumpOptions::CHUNK_KIB;
    (*r.start()).into()..=(*r.end()).into()
}

/// `OLD=NEW` of `--role-map`: two role names, neither empty.
fn role_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((old, new)) if !old.is_empty() && !new.is_empty() && !new.contains('=') => {
            Ok((old.to_owned(), new.to_owned()))
        }
        _ => Err(format!(
            "expected OLD=NEW, two role names (e.g. --role-map app_owner=clinic_owner), got {s:?}"
        )),
    }
}
