//! The restore test's report on disk: JSON, and Markdown with the fields of the
//! runbook's "Restore Test Results" template.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::RestoreTestReport;
use crate::commands::CommandError;

pub(super) fn write(dir: &Path, r: &mut RestoreTestReport) -> Result<(), CommandError> {
    let io = |e: std::io::Error| {
        CommandError::Usage(format!(
            "cannot write the restore-test report in {}: {e}",
            dir.display()
        ))
    };
    // The reports name tables and count their rows: owner-only, like the repository.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io)?;
    let stem = format!("restore-test-{}-{}", &r.restore_start[..10], r.backup_id);
    let json_path = dir.join(format!("{stem}.json"));
    let md_path = dir.join(format!("{stem}.md"));
    r.report_json = json_path.display().to_string();
    r.report_markdown = md_path.display().to_string();
    let write = |path: &Path, bytes: &[u8]| {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(path)
            .and_then(|mut f| {
                // A report of an earlier run the same day may have had other modes.
                f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
                f.write_all(bytes)
            })
    };
    write(
        &json_path,
        &serde_json::to_vec_pretty(r).expect("reports serialize"),
    )
    .map_err(io)?;
    write(&md_path, markdown(r).as_bytes()).map_err(io)?;
    Ok(())
}

/// The runbook's "Restore Test Results" template, filled in.
pub fn markdown(r: &RestoreTestReport) -> String {
    let mb = |b: Option<u64>| b.map_or("-".into(), |b| format!("{:.1} MB", b as f64 / 1e6));
    let mut s = format!(
        "# Restore Test Results\n\n\
         - Date: {date}\n- Tester: {tester}\n\n\
         - Backup: {bid}\n- Backup Date: {bdate}\n- Backup Size: {stored} stored ({raw} raw)\n\n\
         - Restore Test Database: {db}\n- Restore Start Time: {start}\n\
         - Restore End Time: {end}\n- Restore Duration: {secs:.1} s\n\n\
         ## Data Verification\n\n\
         | table | rows in backup | rows restored | content checksum |\n|---|---:|---:|---|\n",
        date = &r.restore_start[..10],
        tester = r.tester,
        bid = r.backup_id,
        bdate = r.backup_date.as_deref().unwrap_or("-"),
        stored = mb(r.backup_stored_bytes),
        raw = mb(r.backup_raw_bytes),
        db = r.scratch_database,
        start = r.restore_start,
        end = r.restore_end,
        secs = r.restore_seconds,
    );
    for t in &r.check.tables {
        let ok = t.ok();
        s.push_str(&format!(
            "| {} {} | {} | {} | {} |\n",
            if ok { "✓" } else { "✗" },
            t.table,
            t.expected_rows,
            t.restored_rows.map_or("-".into(), |n| n.to_string()),
            if t.checksum_ok { "matches" } else { "DIFFERS" },
        ));
    }
    let mark = |ok: bool| if ok { "✓" } else { "✗" };
    s.push_str(&format!(
        "\n- {} Foreign key constraints intact ({}/{} present and validated)\n\
         - {} Indexes present ({}/{})\n",
        mark(
            r.check.foreign_keys_valid == r.check.foreign_keys_expected
                && !r.check.tables.is_empty()
        ),
        r.check.foreign_keys_valid,
        r.check.foreign_keys_expected,
        mark(r.check.indexes_present == r.check.indexes_expected && !r.check.tables.is_empty()),
        r.check.indexes_present,
        r.check.indexes_expected
    ));
    if r.check.large_objects_expected > 0 {
        s.push_str(&format!(
            "- {} Large objects restored with their size and SHA-256 ({}/{})\n",
            mark(r.check.large_objects_ok == r.check.large_objects_expected),
            r.check.large_objects_ok,
            r.check.large_objects_expected
        ));
    }
    for m in &r.check.missing {
        s.push_str(&format!("- ✗ missing: {m}\n"));
    }
    s.push_str(&format!("\n**Result: {}**\n\nNotes:\n", r.result));
    for n in &r.notes {
        s.push_str(&format!("- {n}\n"));
    }
    if !r.cleaned_up {
        s.push_str("- the restored objects were left in the scratch database\n");
    }
    s
}
