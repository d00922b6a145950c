//! Turning reports and errors into text (or JSON with `--json`).

use pgbunker::commands::backup::BackupReport;
use pgbunker::commands::demo::DemoReport;
use pgbunker::commands::hold::HoldReport;
use pgbunker::commands::init::InitReport;
use pgbunker::commands::list::ListReport;
use pgbunker::commands::prune::PruneReport;
use pgbunker::commands::restore::RestoreReport;
use pgbunker::commands::CommandError;
use pgbunker::error::Classify;
use serde::Serialize;

fn print_json<T: Serialize>(v: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("reports serialize")
    );
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

pub fn init(r: &InitReport, json: bool) {
    if json {
        return print_json(r);
    }
    println!("Created repository {} (id {})", r.location, r.repo_id);
    match &r.key_slot {
        Some(slot) => println!("Encryption: {}, key slot {slot}", r.encryption),
        None => println!("Encryption: NONE (plaintext repository)"),
    }
}

fn not_covered(list: &[String]) {
    for item in list {
        eprintln!("warning: not in this backup: {item}");
    }
}

pub fn backup(r: &BackupReport, json: bool) {
    if json {
        return print_json(r);
    }
    not_covered(&r.not_covered);
    let s = &r.summary;
    let ratio = if s.stored_bytes > 0 {
        s.raw_bytes as f64 / s.stored_bytes as f64
    } else {
        0.0
    };
    println!(
        "Backup {} complete: {} tables, {} rows, {} raw → {} stored ({ratio:.1}×), {:.1} s",
        r.backup_id,
        s.tables,
        s.rows,
        size(s.raw_bytes),
        size(s.stored_bytes),
        r.seconds
    );
}

pub fn restore(r: &RestoreReport, json: bool) {
    if json {
        return print_json(r);
    }
    for t in &r.tables {
        println!("  {:<40} {:>12} rows", t.table, t.rows);
    }
    println!(
        "Restored backup {} into {}: {} tables, {} rows, {:.1} s",
        r.backup_id,
        r.target,
        r.tables.len(),
        r.rows,
        r.seconds
    );
}

pub fn list(r: &ListReport, json: bool) {
    if json {
        return print_json(r);
    }
    if r.backups.is_empty() {
        println!("No backups in {} yet.", r.location);
        return;
    }
    println!(
        "{:<27} {:<11} {:<21} {:>7} {:>12} {:>10} {:>10}  HOLD",
        "BACKUP", "STATUS", "CREATED", "TABLES", "ROWS", "RAW", "STORED"
    );
    let dash = || "-".to_string();
    for b in &r.backups {
        println!(
            "{:<27} {:<11} {:<21} {:>7} {:>12} {:>10} {:>10}  {}",
            b.backup_id,
            b.status,
            b.created_at
                .as_deref()
                .map_or_else(dash, |t| format!("{}Z", &t[..t.len().min(19)])),
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

pub fn prune(r: &PruneReport, json: bool) {
    if json {
        return print_json(r);
    }
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

pub fn hold(r: &HoldReport, json: bool) {
    if json {
        return print_json(r);
    }
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

pub fn demo(r: &DemoReport, json: bool) {
    if json {
        return print_json(r);
    }
    println!(
        "PostgreSQL {}, heart-recovery fixture at scale {} (loaded in {:.1} s)",
        r.server_version, r.scale, r.load_seconds
    );
    println!(
        "Backup {}: {} raw → {} encrypted, {:.1} s; restore {:.1} s",
        r.backup_id,
        size(r.raw_bytes),
        size(r.stored_bytes),
        r.backup_seconds,
        r.restore_seconds
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

/// `error: …`, the causes not already in the message, and a hint when we have one.
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
