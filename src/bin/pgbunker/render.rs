//! Turning reports and errors into text (or JSON with `--json`).

use pgbunker::archive::MarkImport;
use pgbunker::commands::audit::AuditReport;
use pgbunker::commands::backup::BackupReport;
use pgbunker::commands::check::CheckReport;
use pgbunker::commands::copy::CopyReport;
use pgbunker::commands::demo::DemoReport;
use pgbunker::commands::diff::DiffReport;
use pgbunker::commands::export::ExportReport;
use pgbunker::commands::hold::HoldReport;
use pgbunker::commands::init::InitReport;
use pgbunker::commands::key::{KeyAddReport, KeyListReport, KeyRemoveReport, KeyRotateReport};
use pgbunker::commands::list::ListReport;
use pgbunker::commands::mask::MaskCheckReport;
use pgbunker::commands::prune::PruneReport;
use pgbunker::commands::restore::{DryRun, Script};
use pgbunker::commands::restore::{MergeReport, RestoreReport};
use pgbunker::commands::restore_test::RestoreTestReport;
use pgbunker::commands::show::ShowReport;
use pgbunker::commands::upgrade::UpgradeReport;
use pgbunker::commands::verify::{BackupVerdict, Depth, VerifyReport};
use pgbunker::commands::CommandError;
use pgbunker::error::{Classify, Failed};
use pgbunker::mask::MaskSummary;
use serde::Serialize;

// Standard output that a closed pipe ends quietly: `pgbunker audit | head -1` and
// `list | grep -q` close it on purpose, and std's macros would panic there. These two
// shadow std's for this module, the only one that writes to standard output.
macro_rules! println {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let written = writeln!(std::io::stdout().lock(), $($arg)*);
        stdout_written(written);
    }};
}

macro_rules! print {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let written = write!(std::io::stdout().lock(), $($arg)*);
        stdout_written(written);
    }};
}

/// A reader that went away gets no more output and the process ends with success, as
/// `head` expects; any other failure to write the report (a full disk behind a
/// redirection) is local I/O, exit 8.
fn stdout_written(written: std::io::Result<()>) {
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("error: could not write to standard output: {e}");
            std::process::exit(8);
        }
    }
}

/// A report as text for people; `--json` prints its serde form instead.
pub trait Render: Serialize {
    fn text(&self);
}

pub fn show<R: Render>(r: &R, json: bool) {
    if json {
        print_json(r)
    } else {
        r.text()
    }
}

fn print_json<T: Serialize>(v: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("reports serialize")
    );
}

/// The first 19 characters of an RFC 3339 time (to the second). Times can come from
/// plaintext repository files, so anything else is shown as it is, never sliced.
fn short_time(t: &str) -> &str {
    t.get(..19).unwrap_or(t)
}

pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

impl Render for InitReport {
    fn text(&self) {
        let r = self;
        println!("Created repository {} (id {})", r.location, r.repo_id);
        match &r.key_slot {
            Some(slot) => println!("Encryption: {}, key slot {slot}", r.encryption),
            None => println!("Encryption: NONE (plaintext repository)"),
        }
    }
}

fn not_covered(list: &[String]) {
    for item in list {
        eprintln!("warning: not in this backup: {item}");
    }
}

impl Render for BackupReport {
    fn text(&self) {
        let r = self;
        not_covered(&r.not_covered);
        let s = &r.summary;
        let raw = s.raw_bytes.unwrap_or_default();
        let ratio = if s.stored_bytes > 0 {
            raw as f64 / s.stored_bytes as f64
        } else {
            0.0
        };
        println!(
            "Backup {} complete: {} tables, {} rows, {} raw → {} stored ({ratio:.1}×), {:.1} s",
            r.backup_id,
            s.tables.unwrap_or_default(),
            s.rows.unwrap_or_default(),
            size(raw),
            size(s.stored_bytes),
            r.seconds
        );
        if let (Some(bytes), Some(chunks)) = (s.new_bytes, s.new_chunks) {
            println!(
                "  uploaded {} in {} new chunks; the other {} of {} chunks were stored already",
                size(bytes),
                chunks,
                s.chunks - chunks,
                s.chunks
            );
        }
    }
}

impl Render for RestoreReport {
    fn text(&self) {
        let r = self;
        // A refused restore wrote nothing; the error line lists the damage.
        if r.refused.is_some() {
            return;
        }
        for t in &r.tables {
            match &t.error {
                None => println!("  {:<40} {:>12} rows", t.table, t.rows),
                Some(e) => println!("  {:<40} {:>12}  rolled back: {e}", t.table, "FAILED"),
            }
        }
        for f in &r.failed {
            eprintln!("failed: `{}`: {}", f.what, f.error);
        }
        for w in &r.warnings {
            eprintln!("warning: {w}");
        }
        if let Some(m) = &r.masked {
            masked(m);
        }
        let preflight = match r.preflight_seconds {
            Some(s) => format!(" (pre-flight check {s:.1} s)"),
            None => " (no pre-flight check)".into(),
        };
        let failed = r.tables.iter().filter(|t| t.error.is_some()).count();
        let verb = match (r.complete(), r.masked.is_some()) {
            (true, false) => "Restored",
            (true, true) => "Restored MASKED",
            (false, _) => "Restore INCOMPLETE:",
        };
        println!(
            "{verb} backup {}{} into {}: {} restored{}, {} rows, {:.1} s{preflight}",
            r.backup_id,
            if r.partial { " (partial)" } else { "" },
            r.target,
            count((r.tables.len() - failed) as u64, "table"),
            if failed > 0 {
                format!(", {failed} failed")
            } else {
                String::new()
            },
            r.rows,
            r.seconds
        );
    }
}

impl Render for CopyReport {
    fn text(&self) {
        let r = self;
        for c in &r.copied {
            println!(
                "  {}  {} chunks, {} new ({}), {:.1} s",
                c.backup_id,
                c.chunks,
                c.new_chunks,
                size(c.new_bytes),
                c.seconds
            );
        }
        for f in &r.failed {
            println!("  {}  NOT COPIED: {}", f.backup_id, f.error);
        }
        println!(
            "Copied {} from {} to {}{}, {:.1} s",
            count(r.copied.len() as u64, "backup"),
            r.from,
            r.to,
            if r.skipped.is_empty() {
                String::new()
            } else {
                format!(" ({} there already or pruned there)", r.skipped.len())
            },
            r.seconds
        );
    }
}

/// What a masked restore or export masked: columns and transforms, never values.
fn masked(m: &MaskSummary) {
    println!(
        "Masked {} by the rules with SHA-256 {}:",
        count(m.columns.len() as u64, "column"),
        m.rules_sha256
    );
    for c in &m.columns {
        println!(
            "  {}.{:<30} {} ({})",
            c.table, c.column, c.transform, c.source
        );
    }
}

impl Render for MaskCheckReport {
    fn text(&self) {
        let r = self;
        println!(
            "Columns of backup {} that look like identifiers:",
            r.backup_id
        );
        for f in &r.flagged {
            println!(
                "  {:<44} {:<24} {}",
                format!("{}.{}", f.table, f.column),
                f.type_sql,
                f.why.join("; ")
            );
            match &f.covered_by {
                Some(c) => println!("      covered: {c}"),
                None => println!("      NOT COVERED (suggested: {})", f.suggestion),
            }
        }
        for p in &r.problems {
            println!("problem: {p}");
        }
        for n in &r.notes {
            println!("note: {n}");
        }
        if let Some(w) = &r.written {
            println!("Wrote a starting rules file to {w}: review it before use.");
        }
        println!(
            "{} flagged, {} not covered, {} rule problem(s){}",
            count(r.flagged.len() as u64, "column"),
            r.uncovered,
            r.problems.len(),
            r.rules_sha256
                .as_ref()
                .map(|s| format!(" (rules SHA-256 {s})"))
                .unwrap_or_default()
        );
    }
}

impl Render for DryRun {
    fn text(&self) {
        let p = self;
        println!(
            "Restore plan for backup {}{} (dry run: nothing is changed)",
            p.backup_id,
            if p.partial { ", partial" } else { "" }
        );
        if !p.pre_data.is_empty() {
            println!(
                "\npre-data, one transaction ({}):",
                count(p.pre_data.len() as u64, "statement")
            );
            for s in &p.pre_data {
                println!("  {s}");
            }
        }
        if !p.tables.is_empty() {
            let rows: u64 = p.tables.iter().map(|t| t.rows).sum();
            let raw: u64 = p.tables.iter().map(|t| t.raw_bytes).sum();
            let stored: u64 = p.tables.iter().map(|t| t.stored_bytes).sum();
            println!(
                "\ndata, in this order ({}, {} rows, {} of COPY data, {} to read):",
                count(p.tables.len() as u64, "table"),
                rows,
                size(raw),
                size(stored)
            );
            for t in &p.tables {
                let parts = if t.parts > 1 {
                    format!(" in {} parts", t.parts)
                } else {
                    String::new()
                };
                println!(
                    "  {:<40} {:>12} rows {:>10}{parts}",
                    t.table,
                    t.rows,
                    size(t.raw_bytes)
                );
            }
            if p.sequence_values > 0 {
                println!(
                    "  then {}",
                    count(p.sequence_values as u64, "sequence value")
                );
            }
        }
        if !p.post_data.is_empty() {
            println!(
                "\npost-data ({}):",
                count(p.post_data.len() as u64, "statement")
            );
            for s in &p.post_data {
                println!("  {s}");
            }
        }
        for n in &p.notes {
            println!("note: {n}");
        }
    }
}

fn count(n: u64, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// What was checked in one backup, in the words of its depth.
fn checked(b: &BackupVerdict, depth: Depth) -> String {
    let tables = count(b.tables, "table");
    match depth {
        Depth::Metadata => format!("{tables}, {} present", count(b.chunks, "chunk")),
        Depth::Stored => format!(
            "{tables}, {} of {} chunks read ({}), SHA-256 checked",
            b.chunks_read,
            b.chunks,
            size(b.bytes_read)
        ),
        Depth::Data => format!(
            "{tables}, {} of {} chunks read ({}), {}, content checksums of {} of {} parts \
             compared",
            b.chunks_read,
            b.chunks,
            size(b.bytes_read),
            count(b.rows_read, "row"),
            b.parts_checksummed,
            b.parts
        ),
    }
}

/// One block per backup (its problems listed under it), the sample, one summary line.
impl Render for ExportReport {
    fn text(&self) {
        let r = self;
        for t in &r.tables {
            println!(
                "{}.{}: {} in {} ({} of COPY data)",
                t.schema,
                t.name,
                count(t.rows, "row"),
                count(t.files.len() as u64, "file"),
                size(t.raw_bytes)
            );
        }
        for w in &r.warnings {
            println!("warning: {w}");
        }
        if let Some(m) = &r.masked {
            masked(m);
        }
        println!(
            "Exported{} backup {} to {} as {}: {} of {} in {} · {} of COPY data in {:.1} s ({:.0} MB/s)",
            if r.masked.is_some() { " MASKED" } else { "" },
            r.backup_id,
            r.out,
            r.format,
            count(r.rows, "row"),
            count(r.tables.len() as u64, "table"),
            count(r.files as u64, "file"),
            size(r.raw_bytes),
            r.seconds,
            r.raw_bytes as f64 / 1e6 / r.seconds.max(1e-3)
        );
    }
}

/// One line per table that changed, then the violations and a summary; rows are
/// never printed (they are data): `--rows` writes them to a file.
impl Render for DiffReport {
    fn text(&self) {
        use pgbunker::diff::Presence;
        let r = self;
        for t in r.tables.iter().filter(|t| t.changed()) {
            let name = format!("{}.{}", t.schema, t.name);
            match t.presence {
                Presence::OnlyFirst => {
                    println!("{name}: dropped ({} before)", count(t.rows_first, "row"))
                }
                Presence::NotHeld => {
                    println!("{name}: in one backup only, the other being partial")
                }
                Presence::OnlySecond => {
                    println!("{name}: created ({})", count(t.rows_second, "row"))
                }
                Presence::Both => {
                    let mut line = format!("{name}:");
                    if let Some(c) = &t.counts {
                        line.push_str(&format!(" +{} -{} ~{}", c.inserted, c.deleted, c.updated));
                        if !c.changed_columns.is_empty() {
                            let cols: Vec<String> = c
                                .changed_columns
                                .iter()
                                .map(|(name, n)| format!("{name} {n}"))
                                .collect();
                            line.push_str(&format!(" (updated: {})", cols.join(", ")));
                        }
                    }
                    if let Some(by) = &t.matched_by {
                        line.push_str(&format!(" · by {}", by.describe()));
                    }
                    if !t.columns_added.is_empty() {
                        line.push_str(&format!(" · columns added: {}", t.columns_added.join(", ")));
                    }
                    if !t.columns_dropped.is_empty() {
                        line.push_str(&format!(
                            " · columns dropped: {}",
                            t.columns_dropped.join(", ")
                        ));
                    }
                    if let Some(why) = &t.not_compared {
                        line.push_str(&format!(" · not compared: {why}"));
                    }
                    println!("{line}");
                }
            }
        }
        for v in &r.violations {
            println!("append-only violated: {v}");
        }
        for w in &r.warnings {
            println!("warning: {w}");
        }
        if let Some(f) = &r.rows_file {
            println!("{} written to {f}", count(r.rows_written, "changed row"));
        }
        println!(
            "Backup {} → {}: {} of {} changed · {} inserted, {} deleted, {} updated · {} read, {} shared chunks skipped, in {:.1} s",
            r.first.backup_id,
            r.second.backup_id,
            count(r.tables_changed as u64, "table"),
            r.tables.len(),
            count(r.rows_inserted, "row"),
            r.rows_deleted,
            r.rows_updated,
            count(r.chunks_read, "chunk"),
            r.chunks_skipped,
            r.seconds
        );
    }
}

/// One line per table: what was put back, deleted, or kept because it is referenced.
impl Render for MergeReport {
    fn text(&self) {
        let r = self;
        for t in &r.tables {
            let mut line = format!(
                "{}.{}: {} updated, {} inserted again",
                t.schema, t.name, t.updated, t.reinserted
            );
            if r.mode == pgbunker::diff::merge::MergeMode::Exact {
                line.push_str(&format!(", {} deleted", t.deleted));
            }
            if t.kept_referenced > 0 {
                line.push_str(&format!(
                    "; {} newer row(s) kept because other rows reference them: {}",
                    t.kept_referenced,
                    t.kept_keys.join(", ")
                ));
            } else if t.newer_rows > 0 {
                line.push_str(&format!("; {} newer row(s) left as they are", t.newer_rows));
            }
            println!("{line} · by {}", t.matched_by.describe());
        }
        println!(
            "{} {} into {} from backup {} in {:.1} s",
            if r.dry_run {
                "Dry run, rolled back: would merge"
            } else {
                "Merged"
            },
            count(r.tables.len() as u64, "table"),
            r.target,
            r.backup_id,
            r.seconds
        );
    }
}

impl Render for VerifyReport {
    fn text(&self) {
        let r = self;
        for b in &r.backups {
            if b.ok {
                println!("Backup {}: OK · {}", b.backup_id, checked(b, r.depth));
                continue;
            }
            println!(
                "Backup {}: DAMAGED · {} · {}",
                b.backup_id,
                count(b.problem_count(), "problem"),
                checked(b, r.depth)
            );
            for p in &b.problems {
                println!("  {p}");
            }
            if b.unlisted_problems > 0 {
                println!(
                    "  … and {} not listed",
                    count(b.unlisted_problems, "more problem")
                );
            }
        }
        if let Some(s) = &r.sample {
            let (read, all) = (r.chunks_read(), r.chunks());
            let next = if s.rotating {
                format!(
                    "the next run reads bucket {}",
                    (s.bucket + 1) % s.buckets + 1
                )
            } else {
                "no state folder, so the bucket was picked at random".into()
            };
            println!(
                "Sample: bucket {} of {} (about {} % of the chunks), {read} of {all} chunks read \
                 ({:.1} %); {next}",
                s.bucket + 1,
                s.buckets,
                s.percent,
                100.0 * read as f64 / all.max(1) as f64
            );
        }
        if let Some(u) = r.unreferenced.as_ref().filter(|u| u.chunks > 0) {
            println!(
                "{} ({}) no backup lists: prune deletes them after its grace period",
                count(u.chunks, "shared chunk"),
                size(u.bytes)
            );
        }
        let outcome = if r.ok {
            "all sound".to_string()
        } else {
            let damaged = r.backups.iter().filter(|b| !b.ok).count();
            format!("{damaged} damaged, {}", count(r.problems, "problem"))
        };
        println!(
            "Verified {} ({}): {outcome}, {:.1} s",
            count(r.backups.len() as u64, "backup"),
            r.depth,
            r.seconds
        );
    }
}

/// The mark file, to `out` or stdout: it is JSON whatever `--json` says.
pub fn mark_export(
    m: &pgbunker::archive::MarkFile,
    out: Option<&std::path::Path>,
) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(m).expect("marks serialize") + "\n";
    match out {
        Some(path) => std::fs::write(path, text),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

impl Render for MarkImport {
    fn text(&self) {
        let r = self;
        println!(
            "Imported: this machine now checks repository {} against catalog entry {} (the \
             newest is {}).",
            r.repo_id, r.seq, r.newest_seq
        );
    }
}

impl Render for ListReport {
    fn text(&self) {
        let r = self;
        if r.backups.is_empty() {
            println!("No backups in {} yet.", r.location);
            return;
        }
        println!(
            "{:<27} {:<11} {:<21} {:<16} {:>7} {:>12} {:>10} {:>10}  HOLD",
            "BACKUP", "STATUS", "CREATED", "DATABASE", "TABLES", "ROWS", "RAW", "STORED"
        );
        let dash = || "-".to_string();
        for b in &r.backups {
            println!(
                "{:<27} {:<11} {:<21} {:<16} {:>7} {:>12} {:>10} {:>10}  {}",
                b.backup_id,
                b.status,
                b.created_at
                    .as_deref()
                    .map_or_else(dash, |t| format!("{}Z", short_time(t))),
                b.database.clone().unwrap_or_else(dash),
                b.tables.map_or_else(dash, |v| v.to_string()),
                b.rows.map_or_else(dash, |v| v.to_string()),
                b.raw_bytes.map_or_else(dash, size),
                b.stored_bytes.map_or_else(dash, size),
                match (&b.legal_hold, &b.keep_until) {
                    (true, _) => "legal hold".to_string(),
                    (false, Some(t)) => format!("until {t}"),
                    (false, None) => String::new(),
                },
            );
        }
    }
}

impl Render for ShowReport {
    fn text(&self) {
        let r = self;
        let s = &r.source;
        println!("Backup {}", r.backup_id);
        println!(
            "  source       database {} on PostgreSQL {}{}",
            s.database,
            s.server_version,
            if s.in_recovery { " (a standby)" } else { "" }
        );
        if let Some(id) = &s.system_identifier {
            println!("  cluster      system identifier {id}");
        }
        println!(
            "  snapshot     {} (started {}, finished {}){}",
            s.snapshot,
            r.started_at,
            r.finished_at,
            s.lsn
                .as_ref()
                .map(|l| format!(", WAL at {l}"))
                .unwrap_or_default()
        );
        println!("  committed    {}", r.committed_at);
        match (&r.legal_hold, &r.keep_until) {
            (true, _) => println!("  held         legal hold"),
            (false, Some(t)) => println!("  held         until {t}"),
            (false, None) => {}
        }
        if let Some(sel) = &r.selection {
            let mut parts = Vec::new();
            for (flag, v) in [
                ("-t", &sel.tables),
                ("-n", &sel.schemas),
                ("-T", &sel.exclude_tables),
                ("-N", &sel.exclude_schemas),
            ] {
                parts.extend(v.iter().map(|p| format!("{flag} {p}")));
            }
            println!("  partial      {}", parts.join(" "));
        }
        println!(
            "  sealed       {} (format {}, pgbunker {}, zstd level {}{})",
            if r.encrypted {
                "AES-256-GCM-SIV"
            } else {
                "NOT ENCRYPTED"
            },
            r.format_version,
            r.tool_version,
            r.compress_level,
            r.key_generation
                .map(|g| format!(", key ring generation {g}"))
                .unwrap_or_default()
        );
        println!(
            "  totals       {} tables, {} rows, {} raw → {} stored",
            r.tables.len(),
            r.rows,
            size(r.raw_bytes),
            size(r.stored_bytes)
        );
        println!();
        println!(
            "{:<40} {:>12} {:>10} {:>10} {:>6} {:>5}",
            "TABLE", "ROWS", "RAW", "STORED", "CHUNKS", "PARTS"
        );
        for t in &r.tables {
            let text = if t.copy_format == pgbunker::archive::CopyFormat::Text {
                " (text)"
            } else {
                ""
            };
            println!(
                "{:<40} {:>12} {:>10} {:>10} {:>6} {:>5}{text}",
                t.table,
                t.rows,
                size(t.raw_bytes),
                size(t.stored_bytes),
                t.chunks,
                t.parts
            );
        }
        if let Some(l) = &r.large_objects {
            println!(
                "{:<40} {:>12} {:>10} {:>10}",
                "(large objects)",
                l.count,
                size(l.bytes),
                size(l.stored_bytes)
            );
        }
        if !r.not_covered.is_empty() {
            println!();
            println!("Not in this backup:");
            for n in &r.not_covered {
                println!("  {n}");
            }
        }
    }
}

/// Writes a restore script to `path` (`-`: standard output, nothing else printed),
/// readable by its owner only: it can hold a foreign server's options.
pub fn script(s: &Script, path: &std::path::Path, json: bool) -> Result<i32, CommandError> {
    if path.as_os_str() == "-" {
        print!("{}", s.sql);
        return Ok(0);
    }
    let write = || -> std::io::Result<()> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        f.write_all(s.sql.as_bytes())?;
        f.sync_all()
    };
    write().map_err(|e| {
        CommandError::Usage(format!(
            "could not write the script to {}: {e}",
            path.display()
        ))
    })?;
    if json {
        print_json(s);
    } else {
        println!(
            "Wrote the {} statements of backup {} to {}.",
            s.statements,
            s.backup_id,
            path.display()
        );
    }
    Ok(0)
}

/// `quiet`: only the warnings (stderr), for a cron job that mails any output.
pub fn prune(r: &PruneReport, json: bool, quiet: bool) {
    if quiet && !json {
        if let Some(why) = &r.deletions_skipped {
            eprintln!("warning: {why}");
        }
        return;
    }
    show(r, json);
}

impl Render for PruneReport {
    fn text(&self) {
        let r = self;
        let verb = if r.dry_run { "would " } else { "" };
        for k in &r.kept {
            println!("keep    {}  {}", k.backup_id, k.reasons.join(", "));
        }
        for b in &r.tombstoned {
            println!("{verb}remove  {b}  (tombstoned; objects deleted after the grace period)");
        }
        for b in &r.deleted {
            println!("{verb}delete  {b}  (grace period over)");
        }
        for b in &r.waiting {
            println!("waiting {b}  (tombstoned; inside the grace period or in use)");
        }
        for b in &r.leftovers_deleted {
            println!("{verb}delete  {b}  (leftover of an interrupted backup)");
        }
        for b in &r.unlisted_kept {
            println!("keep    {b}  (complete-looking but not in the catalog; --force)");
        }
        for seq in &r.accepted_removals {
            println!("accept  catalog entry {seq}  (--accept-removal)");
        }
        if let Some(why) = &r.deletions_skipped {
            eprintln!("warning: {why}");
        }
        let c = &r.chunks;
        if let Some(why) = &c.deferred {
            println!("chunks  not swept this time: {why}");
        } else if c.deleted + c.waiting > 0 {
            println!(
                "chunks  {verb}delete {} ({}) no backup lists; {} more wait out the grace period",
                c.deleted,
                size(c.deleted_bytes),
                c.waiting
            );
        }
        println!(
            "{}: kept {}, tombstoned {}, deleted {} (+{} leftovers), {} objects removed",
            if r.dry_run { "Dry run" } else { "Pruned" },
            r.kept.len(),
            r.tombstoned.len(),
            r.deleted.len(),
            r.leftovers_deleted.len(),
            r.objects_deleted
        );
    }
}

impl Render for RestoreTestReport {
    fn text(&self) {
        let r = self;
        print!("{}", pgbunker::commands::restore_test::markdown(r));
        println!("\nReports: {} and {}", r.report_markdown, r.report_json);
    }
}

impl Render for CheckReport {
    fn text(&self) {
        let r = self;
        println!("{}", r.summary);
        for p in r.problems.iter().skip(1) {
            println!("  also: {p}");
        }
    }
}

impl Render for AuditReport {
    fn text(&self) {
        let r = self;
        audit_records(r);
        if r.unchained > 0 {
            println!(
                "note: {} written before pgbunker chained its audit records: a deletion among \
                 them cannot be detected",
                count(r.unchained as u64, "record")
            );
        }
        for p in &r.problems {
            println!("CRITICAL: {p}");
        }
    }
}

fn audit_records(r: &AuditReport) {
    if r.records.is_empty() {
        println!("No audit records.");
        return;
    }
    println!(
        "{:<21} {:<10} {:<27} {:<20} {:>9}  RESULT",
        "ENDED", "OPERATION", "BACKUP", "WHO", "SECONDS"
    );
    for a in &r.records {
        println!(
            "{:<21} {:<10} {:<27} {:<20} {:>9.1}  {}{}",
            format!("{}Z", short_time(&a.ended_at)),
            a.operation,
            a.backup_id.as_deref().unwrap_or("-"),
            format!("{}@{}", a.user, a.host),
            a.duration_ms as f64 / 1000.0,
            a.result,
            a.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
    }
}

impl Render for UpgradeReport {
    fn text(&self) {
        if self.from_version == self.to_version {
            println!(
                "{} is already repository format {}",
                self.location, self.to_version
            );
        } else {
            println!(
                "Upgraded {} from repository format {} to {}: new backups are deduplicated \
                 (each stores only the chunks no backup stored yet); every backup stays \
                 readable, and older pgbunker versions can no longer write to it",
                self.location, self.from_version, self.to_version
            );
        }
    }
}

impl Render for HoldReport {
    fn text(&self) {
        let r = self;
        match (&r.legal_hold, &r.keep_until) {
            (true, _) => println!(
                "Backup {} is under legal hold: prune never removes it",
                r.backup_id
            ),
            (false, Some(t)) => println!("Backup {} is kept until {t}", r.backup_id),
            (false, None) => println!(
                "Backup {} has no hold: the retention policy applies",
                r.backup_id
            ),
        }
    }
}

fn upgraded(location: &str) {
    println!(
        "Upgraded {location} to repository format 2: the key ring now lives in keyring/ \
         (older pgbunker versions can no longer open it)"
    );
}

impl Render for KeyAddReport {
    fn text(&self) {
        let r = self;
        if r.upgraded {
            upgraded(&r.location);
        }
        println!("Added key slot {} ({}) to {}", r.kek_id, r.kind, r.location);
    }
}

impl Render for KeyListReport {
    fn text(&self) {
        let r = self;
        let time =
            |t: Option<&str>| t.map_or_else(|| "-".to_string(), |t| format!("{}Z", short_time(t)));
        println!(
            "Repository {} (id {}, format {})",
            r.location, r.repo_id, r.format_version
        );
        println!(
            "{:<17} {:<11} {:>7}  {:<21} ARGON2ID",
            "SLOT", "KIND", "VERSION", "CREATED"
        );
        for s in &r.slots {
            println!(
                "{:<17} {:<11} {:>7}  {:<21} {}{}",
                s.kek_id,
                s.kind,
                s.version,
                time(Some(&s.created_at)),
                s.argon2.map_or_else(
                    || "-".to_string(),
                    |a| format!("m={} KiB t={} p={}", a.m_kib, a.t, a.p)
                ),
                if s.unlocked_with {
                    "  (opened by this key)"
                } else {
                    ""
                },
            );
        }
        let Some(generations) = &r.generations else {
            println!(
                "The key ring is encrypted: set a key (PGBUNKER_KEY_FILE, …) to see its generations."
            );
            return;
        };
        println!();
        println!(
            "{:<11} {:<21} REPOSITORY KEYS (* = used by new backups)",
            "GENERATION", "CREATED"
        );
        for g in generations {
            let keys: Vec<String> = g
                .rk_ids
                .iter()
                .map(|id| {
                    if *id == g.current {
                        format!("*{id}")
                    } else {
                        id.clone()
                    }
                })
                .collect();
            let generation = match g.generation {
                0 => "0 (v1 slot)".to_string(),
                n => n.to_string(),
            };
            println!(
                "{generation:<11} {:<21} {}",
                time(g.created_at.as_deref()),
                keys.join(" ")
            );
        }
    }
}

impl Render for KeyRemoveReport {
    fn text(&self) {
        let r = self;
        if let Some(w) = &r.warning {
            eprintln!("warning: {w}");
        }
        println!(
            "Removed key slot {} from {}; {} slot(s) left: {}",
            r.removed,
            r.location,
            r.remaining.len(),
            r.remaining.join(", ")
        );
    }
}

impl Render for KeyRotateReport {
    fn text(&self) {
        let r = self;
        if r.upgraded {
            upgraded(&r.location);
        }
        println!(
            "Key ring generation {}: new backups use repository key {} (was {}); backups \
             written before stay readable",
            r.generation, r.rk_id, r.previous_rk_id
        );
        println!(
            "Every key slot opens the new key too: to cut a key off, remove its slot \
             (see `pgbunker key remove --help`)"
        );
    }
}

impl Render for DemoReport {
    fn text(&self) {
        let r = self;
        println!(
            "PostgreSQL {}, heart-recovery fixture at scale {} (loaded in {:.1} s)",
            r.server_version, r.scale, r.load_seconds
        );
        println!(
            "Backup {}: {} raw → {} encrypted, {:.1} s; restore {:.1} s after a {:.1} s \
             pre-flight check",
            r.backup_id,
            size(r.raw_bytes),
            size(r.stored_bytes),
            r.backup_seconds,
            r.restore_seconds,
            r.preflight_seconds
        );
        println!("{:<40} {:>12} {:>12}  SAME", "TABLE", "SOURCE", "RESTORED");
        for t in &r.tables {
            println!(
                "{:<40} {:>12} {:>12}  {}",
                t.table,
                t.source_rows,
                t.restored_rows,
                if t.identical { "yes" } else { "NO" }
            );
        }
        println!(
            "{}",
            if r.identical {
                "Every table came back identical (row counts and content checksums)."
            } else {
                "Some tables differ!"
            }
        );
    }
}

/// `error: …`, the causes not already in the message, and a hint when we have one.
/// The closing lines of a report whose verdict failed: the same shape as an error's.
pub fn failed(f: &Failed) {
    eprintln!("error: {}", f.message);
    if let Some(h) = &f.hint {
        eprintln!("hint: {h}");
    }
}

pub fn error(e: &CommandError) {
    let top = e.to_string();
    eprintln!("error: {top}");
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let msg = s.to_string();
        if !top.contains(&msg) {
            eprintln!("  caused by: {msg}");
        }
        src = s.source();
    }
    if let Some(h) = e.hint() {
        eprintln!("hint: {h}");
    }
}
