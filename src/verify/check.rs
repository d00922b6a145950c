//! One backup's check at one depth: the manifest's own arithmetic, then every chunk
//! present (HEAD) or read, then the parts compared.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;

use super::chunks::{compare_parts, read_one, ChunkDone, ChunkJob, ReadTotals};
use super::findings::{label, plural, BackupVerdict, Counts, Findings};
use super::manifest::{check_manifest, check_summary};
use super::sample::Sample;
use super::seen::SeenChunks;
use super::{Depth, HEAD_CONCURRENCY, STORED_READS_AT_ONCE};
use crate::archive::{
    shared_chunk, ArchiveError, BackupLayout, BackupReader, Repository, TableRecord,
};
use crate::progress::Progress;

/// One backup's check at one depth.
pub struct Check<'a> {
    pub depth: Depth,
    pub sample: Option<&'a Sample>,
    /// Only these tables (manifest numbers); all when `None`.
    pub only: Option<&'a [u32]>,
    pub jobs: usize,
    /// How many more problems the report may list.
    pub room: usize,
    pub progress: &'a dyn Progress,
    /// Shared chunks checked earlier in this run, by this check or another's.
    pub seen: &'a SeenChunks,
}

impl Check<'_> {
    pub async fn run(
        &self,
        repo: &Repository,
        reader: &BackupReader,
    ) -> Result<BackupVerdict, ArchiveError> {
        let m = reader.manifest();
        let layout = BackupLayout::new(&m.backup_id);
        let mut found = Findings::new(self.room);
        check_manifest(m, &mut found);
        check_summary(repo, m, &layout, &mut found).await?;

        let tables: Vec<Arc<TableRecord>> = m
            .tables
            .iter()
            .chain(m.large_object_data())
            .filter(|t| self.only.is_none_or(|o| o.contains(&t.table_no)))
            .cloned()
            .map(Arc::new)
            .collect();
        let mut reads = Vec::new();
        let mut heads = Vec::new();
        for (t, rec) in tables.iter().enumerate() {
            for c in &rec.chunks {
                let job = ChunkJob {
                    table: t,
                    chunk: c.clone(),
                    path: reader.chunk_path(rec, c),
                };
                let read = self.depth >= Depth::Stored
                    && self
                        .sample
                        .is_none_or(|s| s.picks(&m.backup_id, rec.table_no, c));
                if read {
                    reads.push(job);
                } else {
                    heads.push(job);
                }
            }
        }
        let mut counts = Counts {
            tables: tables.len() as u64,
            chunks: (reads.len() + heads.len()) as u64,
            parts: tables
                .iter()
                .map(|t| t.effective_parts().len() as u64)
                .sum(),
            ..Default::default()
        };
        self.check_present(repo, &tables, heads, &mut found).await?;
        let read = self.read_chunks(reader, &tables, reads, &mut found).await?;
        counts.chunks_read = read.chunks;
        counts.bytes_read = read.bytes;
        counts.rows_read = read.rows;
        if self.depth == Depth::Data {
            counts.parts_checksummed = compare_parts(&tables, &read.parts, &mut found);
        }
        Ok(found.verdict(&m.backup_id, counts))
    }

    /// HEAD requests: each chunk there, with the length the manifest recorded.
    async fn check_present(
        &self,
        repo: &Repository,
        tables: &[Arc<TableRecord>],
        jobs: Vec<ChunkJob>,
        found: &mut Findings,
    ) -> Result<(), ArchiveError> {
        if jobs.is_empty() {
            return Ok(());
        }
        self.progress.phase(&format!(
            "checking that {} are present",
            plural(jobs.len() as u64, "chunk")
        ));
        let store = repo.store();
        let mut sizes = futures::stream::iter(jobs)
            .map(|job| async move {
                if let Some(outcome) = self.seen.get(&job.chunk, false) {
                    return Ok((job, outcome));
                }
                let mut missing_base = None;
                for b in &job.chunk.bases {
                    let path = shared_chunk(&b.id);
                    if store.size(&path).await?.is_none() {
                        missing_base = Some(path);
                        break;
                    }
                }
                let outcome = match store.size(&job.path).await? {
                    None => Err(format!("chunk {} is missing", job.path)),
                    Some(n) if n != job.chunk.ct_len => Err(format!(
                        "chunk {} is {n} bytes, the manifest says {}",
                        job.path, job.chunk.ct_len
                    )),
                    Some(_) if missing_base.is_some() => Err(format!(
                        "chunk {} is a delta, and its base {} is missing",
                        job.path,
                        missing_base.unwrap_or_default()
                    )),
                    Some(_) => Ok(None),
                };
                self.seen.put(&job.chunk, false, &outcome);
                Ok::<_, ArchiveError>((job, outcome))
            })
            .buffer_unordered(HEAD_CONCURRENCY);
        while let Some(checked) = sizes.next().await {
            let (job, outcome) = checked?;
            if let Err(why) = outcome {
                found.chunk(&tables[job.table], &job.chunk, &job.path, why);
            }
        }
        Ok(())
    }

    /// Downloads (and at depth data opens and scans) chunks, `jobs` at a time.
    async fn read_chunks(
        &self,
        reader: &BackupReader,
        tables: &[Arc<TableRecord>],
        jobs: Vec<ChunkJob>,
        found: &mut Findings,
    ) -> Result<ReadTotals, ArchiveError> {
        let mut totals = ReadTotals::default();
        if jobs.is_empty() {
            return Ok(totals);
        }
        // Progress counts table data covered (raw bytes), as restore's does.
        let raw: u64 = jobs.iter().map(|j| j.chunk.raw_len).sum();
        let mut left: HashMap<usize, usize> = HashMap::new();
        for j in &jobs {
            *left.entry(j.table).or_default() += 1;
        }
        self.progress.start(
            if self.depth == Depth::Data {
                "verify"
            } else {
                "pre-flight"
            },
            left.len() as u64,
            raw,
        );
        let (depth, seen) = (self.depth, self.seen);
        // Reading stored objects waits on the store, not on the cores: more of them at
        // once (restore's pre-flight of 3000 small tables took half a second, two at a
        // time). Opening them is CPU work: `--jobs` at a time.
        let in_flight = if depth == Depth::Stored {
            STORED_READS_AT_ONCE.max(self.jobs.max(1))
        } else {
            self.jobs.max(1)
        };
        let mut done = futures::stream::iter(jobs)
            .map(|job| {
                let (reader, rec) = (reader.clone(), tables[job.table].clone());
                async move {
                    if let Some(outcome) = seen.get(&job.chunk, true) {
                        return Ok(ChunkDone {
                            job,
                            bytes: 0,
                            outcome,
                        });
                    }
                    let d = read_one(reader, rec, job, depth).await?;
                    seen.put(&d.job.chunk, true, &d.outcome);
                    Ok::<_, ArchiveError>(d)
                }
            })
            .buffer_unordered(in_flight);
        while let Some(d) = done.next().await {
            let d = d?;
            let rec = &tables[d.job.table];
            let name = label(rec);
            totals.chunks += 1;
            totals.bytes += d.bytes;
            match d.outcome {
                Ok(stats) => {
                    let rows = stats.map_or(0, |s| s.rows);
                    totals.rows += rows;
                    let part = totals
                        .parts
                        .entry((d.job.table, d.job.chunk.part))
                        .or_default();
                    part.chunks_ok += 1;
                    if let Some(s) = stats {
                        part.stats.merge(s);
                    }
                    // A pre-flight reads no rows: it shows those the chunk holds.
                    let shown = stats.map_or(d.job.chunk.rows, |s| s.rows);
                    self.progress.chunk_done(&name, d.job.chunk.raw_len, shown);
                }
                Err(why) => found.chunk(rec, &d.job.chunk, &d.job.path, why),
            }
            let n = left.get_mut(&d.job.table).expect("counted above");
            *n -= 1;
            if *n == 0 {
                self.progress.table_finished(&name, 0);
            }
        }
        Ok(totals)
    }
}
