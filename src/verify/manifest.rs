//! What a manifest must say of itself before any chunk is read: its records add up,
//! its parts are complete, and `summary.json` is the one it sealed.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use super::findings::{Findings, Problem};
use crate::archive::{
    ArchiveError, BackupLayout, ChunkRecord, LargeObjects, Manifest, Repository, TableRecord,
};

/// The manifest's own consistency: every catalog table has its data record, and each
/// record's chunk list can be restored (each part ends with exactly one FINAL chunk,
/// indexes run 0, 1, 2, … without gaps or repeats) and adds up to its totals.
pub(super) fn check_manifest(m: &Manifest, found: &mut Findings) {
    let mut seen = BTreeSet::new();
    for rec in &m.tables {
        if !seen.insert(rec.table_no) {
            found.table(
                rec,
                format!("the manifest holds table number {} twice", rec.table_no),
            );
        }
        match m.catalog.tables.get(rec.table_no as usize) {
            None => found.table(
                rec,
                format!(
                    "the manifest has data for table number {}, which its catalog does not have",
                    rec.table_no
                ),
            ),
            Some(t) if t.name.schema != rec.schema || t.name.name != rec.name => found.table(
                rec,
                format!(
                    "the data of table number {} is recorded for {}",
                    rec.table_no,
                    t.name.plain()
                ),
            ),
            Some(_) => {}
        }
        check_record(rec, found);
    }
    if let Some(los) = &m.large_objects {
        check_large_objects(los, found);
    }
    for (i, t) in m.catalog.tables.iter().enumerate() {
        if t.has_data() && !seen.contains(&(i as u32)) {
            found.add(Problem {
                table: Some(t.name.plain()),
                chunk: None,
                reason: "the manifest holds no data for this table".into(),
            });
        }
    }
}

/// The large objects' content is checked as a table's rows are; each object must
/// also be listed once, in a part the content has.
fn check_large_objects(los: &LargeObjects, found: &mut Findings) {
    check_record(&los.data, found);
    let parts: BTreeSet<u32> = los.data.effective_parts().iter().map(|p| p.part).collect();
    let mut oids = BTreeSet::new();
    for o in &los.objects {
        if !oids.insert(o.object.oid) {
            found.table(
                &los.data,
                format!("the manifest lists large object {} twice", o.object.oid),
            );
        }
        if !parts.contains(&o.part) {
            found.table(
                &los.data,
                format!(
                    "large object {} is in part {}, which the manifest does not list",
                    o.object.oid, o.part
                ),
            );
        }
    }
}

fn check_record(rec: &TableRecord, found: &mut Findings) {
    let parts = rec.effective_parts();
    let numbers: BTreeSet<u32> = parts.iter().map(|p| p.part).collect();
    if numbers.len() != parts.len() {
        found.table(rec, "the manifest lists a part twice".into());
    }
    for c in rec.chunks.iter().filter(|c| !numbers.contains(&c.part)) {
        found.table(
            rec,
            format!(
                "chunk {} belongs to part {}, which the manifest does not list",
                c.index, c.part
            ),
        );
    }
    for part in &parts {
        let whose = if rec.parts.is_empty() {
            "the table".to_string()
        } else {
            format!("part {}", part.part)
        };
        let chunks: Vec<&ChunkRecord> = rec.part_chunks(part.part).collect();
        if chunks.is_empty() {
            found.table(
                rec,
                format!("{whose} has no chunks: the FINAL chunk that ends it is missing"),
            );
            continue;
        }
        if let Some((k, c)) = chunks
            .iter()
            .enumerate()
            .find(|(k, c)| c.index != *k as u64)
        {
            found.table(
                rec,
                format!(
                    "{whose} lists chunk {} where chunk {k} belongs: chunks are missing, \
                     repeated or out of order",
                    c.index
                ),
            );
        }
        let rows: u64 = chunks.iter().map(|c| c.rows).sum();
        let raw: u64 = chunks.iter().map(|c| c.raw_len).sum();
        for (held, total, what) in [(rows, part.rows, "rows"), (raw, part.raw_bytes, "bytes")] {
            if held != total {
                found.table(
                    rec,
                    format!(
                        "the chunks of {whose} hold {held} {what}, the manifest's total is {total}"
                    ),
                );
            }
        }
        if parse_checksum(&part.checksum).is_none() {
            found.table(rec, format!("the checksum of {whose} is not 32 hex digits"));
        }
    }
    if !rec.parts.is_empty() {
        let rows: u64 = rec.parts.iter().map(|p| p.rows).sum();
        let raw: u64 = rec.parts.iter().map(|p| p.raw_bytes).sum();
        let sum = rec
            .parts
            .iter()
            .filter_map(|p| parse_checksum(&p.checksum))
            .fold(0u128, u128::wrapping_add);
        if rows != rec.rows || raw != rec.raw_bytes || parse_checksum(&rec.checksum) != Some(sum) {
            found.table(
                rec,
                "the table's totals (rows, bytes, checksum) are not the sum of its parts".into(),
            );
        }
    }
}

/// `summary.json` is plaintext; the manifest holds its hash so an edit shows up here.
pub(super) async fn check_summary(
    repo: &Repository,
    m: &Manifest,
    layout: &BackupLayout,
    found: &mut Findings,
) -> Result<(), ArchiveError> {
    if m.summary_sha256.is_empty() {
        return Ok(());
    }
    let path = layout.summary();
    let problem = match repo.store().get_opt(&path).await? {
        None => format!("{path} is missing"),
        Some(b) if hex::encode(Sha256::digest(&b)) != m.summary_sha256 => {
            format!("{path} does not match the SHA-256 in the manifest: it was edited")
        }
        Some(_) => return Ok(()),
    };
    found.add(Problem {
        table: None,
        chunk: None,
        reason: problem,
    });
    Ok(())
}

pub(super) fn parse_checksum(hex: &str) -> Option<u128> {
    u128::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::CopyFormat;
    use crate::verify::MAX_PROBLEMS;

    fn record(chunks: &[(u32, u64, u64)]) -> TableRecord {
        TableRecord {
            table_no: 0,
            oid: 1,
            schema: "public".into(),
            name: "t".into(),
            rows: chunks.iter().map(|c| c.2).sum(),
            raw_bytes: chunks.len() as u64,
            checksum: format!("{:032x}", 0),
            chunks: chunks
                .iter()
                .map(|&(part, index, rows)| ChunkRecord {
                    part,
                    index,
                    ct_len: 100,
                    ct_sha256: String::new(),
                    raw_len: 1,
                    rows,
                    id: None,
                    bases: vec![],
                })
                .collect(),
            parts: vec![],
            copy_format: CopyFormat::Binary,
        }
    }

    fn problems(rec: &TableRecord) -> Vec<String> {
        let mut f = Findings::new(MAX_PROBLEMS);
        check_record(rec, &mut f);
        f.listed.into_iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn chunk_lists_must_run_without_gaps_and_add_up() {
        assert!(problems(&record(&[(0, 0, 5), (0, 1, 5)])).is_empty());
        let gap = problems(&record(&[(0, 0, 5), (0, 2, 5)]));
        assert!(
            gap[0].contains("lists chunk 2 where chunk 1 belongs"),
            "{gap:?}"
        );
        let twice = problems(&record(&[(0, 0, 5), (0, 0, 5)]));
        assert!(twice[0].contains("chunk 0 where chunk 1"), "{twice:?}");
        let none = problems(&record(&[]));
        assert!(none[0].contains("no chunks"), "{none:?}");
        let mut rows = record(&[(0, 0, 5)]);
        rows.rows = 6;
        assert!(problems(&rows)[0].contains("hold 5 rows"));
        let stray = problems(&record(&[(0, 0, 5), (3, 0, 1)]));
        assert!(stray[0].contains("part 3, which the manifest does not list"));
    }
}
