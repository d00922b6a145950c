//! Restores the large objects under their original OIDs (tables point at them by OID),
//! then their owners, privileges and comments. Each content stream (part) loads on its
//! own connection in one transaction: a part that fails is rolled back whole and
//! reported, the others go on. Chunks are fetched and opened ahead; a slice at a time
//! goes to the server (`lo_put`), so memory stays at a few chunks per connection.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio_postgres::Client;

use super::{Failure, LoadError, LoadOptions};
use crate::archive::{ArchiveError, BackupReader, LargeObjectRecord, Manifest, TableRecord};
use crate::codec::on_cpu_pool;
use crate::pg::{run_sessions, ConnSpec, PgError};
use crate::pgcopy::{scan_tuples, tuples, TupleStats};
use crate::plan::scope::Scope;
use crate::progress::Progress;

/// Chunks fetched and opened ahead of the one being written.
const READ_AHEAD: usize = 2;

const LABEL: &str = "large objects";

/// Whether this restore brings the backup's large objects back: pg_dump's rule, they
/// come with a whole restore and stay out of a partial one unless asked for.
pub fn included(manifest: &Manifest, scope: &Scope, opts: &LoadOptions) -> bool {
    manifest.large_objects.is_some()
        && opts.sections.data
        && opts.large_objects.unwrap_or(!scope.partial)
}

/// Refuses a target that already holds a large object under one of the OIDs to
/// restore (a restore cannot give it another OID), before anything is written.
/// `--clean` replaces them instead.
pub(super) async fn check_target(
    client: &Client,
    manifest: &Manifest,
    opts: &LoadOptions,
) -> Result<(), LoadError> {
    let Some(los) = &manifest.large_objects else {
        return Ok(());
    };
    if opts.clean.is_some() {
        return Ok(());
    }
    let oids: Vec<u32> = los.objects.iter().map(|l| l.object.oid).collect();
    let taken: Vec<u32> = client
        .query(
            "SELECT m.oid FROM pg_catalog.pg_largeobject_metadata m \
             WHERE m.oid = ANY($1::pg_catalog.oid[]) ORDER BY 1",
            &[&oids],
        )
        .await
        .map_err(|e| PgError::query("look for large objects in the target", e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if taken.is_empty() {
        Ok(())
    } else {
        Err(LoadError::LargeObjectsExist(taken))
    }
}

/// One part to restore.
struct Unit {
    part: u32,
    objects: Vec<LargeObjectRecord>,
}

/// Restores every large object; returns the parts that failed (rolled back).
pub(super) async fn load(
    target: &ConnSpec,
    reader: &BackupReader,
    opts: &LoadOptions,
    progress: Arc<dyn Progress>,
) -> Result<Vec<Failure>, LoadError> {
    let Some(los) = &reader.manifest().large_objects else {
        return Ok(Vec::new());
    };
    let units: Vec<Unit> = los
        .data
        .effective_parts()
        .iter()
        .map(|p| Unit {
            part: p.part,
            objects: los
                .objects
                .iter()
                .filter(|o| o.part == p.part)
                .cloned()
                .collect(),
        })
        .collect();
    progress.start(LABEL, units.len() as u64, los.data.raw_bytes);
    let data = Arc::new(los.data.clone());
    let (r, o, p) = (reader.clone(), opts.clone(), progress.clone());
    let setup = super::parallel::session_setting("SET synchronous_commit = off");
    let work = move |client: Arc<Client>, unit: Unit| {
        let (reader, opts, progress, data) = (r.clone(), o.clone(), p.clone(), data.clone());
        async move {
            let what = format!("{LABEL} (part {})", unit.part);
            let done = async {
                client
                    .batch_execute("BEGIN")
                    .await
                    .map_err(|e| PgError::query(format!("start loading {what}"), e))?;
                load_part(&client, &reader, &data, &unit, &opts, progress.as_ref()).await?;
                client
                    .batch_execute("COMMIT")
                    .await
                    .map_err(|e| PgError::query(format!("commit {what}"), e))?;
                Ok::<_, LoadError>(())
            }
            .await;
            Ok::<_, LoadError>(match done {
                Ok(()) => None,
                Err(e) => {
                    if client.is_closed() {
                        return Err(e);
                    }
                    let _ = client.batch_execute("ROLLBACK").await;
                    Some(Failure::new(what, &e))
                }
            })
        }
    };
    let out = run_sessions(target.into(), opts.jobs, units, setup, work).await;
    progress.finish();
    Ok(out?.into_iter().flatten().collect())
}

/// How far one large object has come.
struct Written {
    size: u64,
    hash: Sha256,
}

async fn load_part(
    client: &Client,
    reader: &BackupReader,
    data: &Arc<TableRecord>,
    unit: &Unit,
    opts: &LoadOptions,
    progress: &dyn Progress,
) -> Result<(), LoadError> {
    let pg = |e| PgError::query("restore large objects", e);
    let oids: Vec<u32> = unit.objects.iter().map(|o| o.object.oid).collect();
    if opts.clean.is_some() {
        unlink(client, &oids, "drop the large objects to replace (--clean)").await?;
    }
    let create = client
        .prepare("SELECT pg_catalog.lo_create($1::pg_catalog.oid)")
        .await
        .map_err(pg)?;
    let put = client
        .prepare(
            "SELECT pg_catalog.lo_put($1::pg_catalog.oid, $2::pg_catalog.int8, \
             $3::pg_catalog.bytea)",
        )
        .await
        .map_err(pg)?;
    let expected: BTreeSet<u32> = oids.iter().copied().collect();
    let (want_rows, want_checksum) = data
        .effective_parts()
        .into_iter()
        .find(|p| p.part == unit.part)
        .map(|p| (p.rows, p.checksum))
        .ok_or_else(|| {
            ArchiveError::Corrupt(format!(
                "the manifest has no part {} of the large objects",
                unit.part
            ))
        })?;
    progress.table_started(LABEL);
    let chunks: Vec<_> = data.part_chunks(unit.part).cloned().collect();
    let opened = futures::stream::iter(chunks)
        .map(|chunk| {
            let (reader, data) = (reader.clone(), data.clone());
            async move {
                let object = reader.fetch_chunk(&data, &chunk).await?;
                on_cpu_pool(
                    chunk.raw_len as usize,
                    move || -> Result<(Vec<u8>, TupleStats, u64), LoadError> {
                        let plain = reader.open_chunk(&data, &chunk, object)?;
                        let stats = scan_tuples(&plain).map_err(|source| LoadError::Tuples {
                            table: LABEL.into(),
                            chunk: chunk.index,
                            source,
                        })?;
                        if stats.rows != chunk.rows {
                            return Err(mismatch(
                                format!("the tuples of chunk {}", chunk.index),
                                stats.rows,
                                chunk.rows,
                            ));
                        }
                        Ok((plain, stats, chunk.index))
                    },
                )
                .await
                .ok_or_else(|| LoadError::Worker("a chunk-opening thread panicked".into()))?
            }
        })
        .buffered(READ_AHEAD);
    futures::pin_mut!(opened);
    let mut written: HashMap<u32, Written> = HashMap::new();
    let mut total = TupleStats::default();
    while let Some(next) = opened.next().await {
        let (plain, stats, index) = next?;
        total.merge(stats);
        for t in tuples(&plain) {
            let fields: Vec<Option<&[u8]>> = t
                .map_err(|source| LoadError::Tuples {
                    table: LABEL.into(),
                    chunk: index,
                    source,
                })?
                .collect();
            let (oid, offset, bytes) = match fields.as_slice() {
                [Some(o), Some(off), Some(b)] if o.len() == 4 && off.len() == 8 => (
                    u32::from_be_bytes((*o).try_into().expect("4 bytes")),
                    u64::from_be_bytes((*off).try_into().expect("8 bytes")),
                    *b,
                ),
                _ => {
                    return Err(ArchiveError::Corrupt(format!(
                        "chunk {index} of the large objects holds a tuple that is not \
                         (oid, offset, bytes)"
                    ))
                    .into())
                }
            };
            if !expected.contains(&oid) {
                return Err(ArchiveError::Corrupt(format!(
                    "chunk {index} of the large objects holds large object {oid}, which \
                     the manifest does not list in part {}",
                    unit.part
                ))
                .into());
            }
            let w = match written.entry(oid) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    // The first slice of an object: create it under its own OID.
                    client.execute(&create, &[&oid]).await.map_err(|e| {
                        if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
                            LoadError::LargeObjectsExist(vec![oid])
                        } else {
                            PgError::query(format!("create large object {oid}"), e).into()
                        }
                    })?;
                    e.insert(Written {
                        size: 0,
                        hash: Sha256::new(),
                    })
                }
            };
            if offset != w.size {
                return Err(mismatch(
                    format!("the next offset of large object {oid}"),
                    offset,
                    w.size,
                ));
            }
            if !bytes.is_empty() {
                client
                    .execute(&put, &[&oid, &(offset as i64), &bytes])
                    .await
                    .map_err(|e| PgError::query(format!("write large object {oid}"), e))?;
                w.hash.update(bytes);
                w.size += bytes.len() as u64;
            }
        }
        progress.chunk_done(LABEL, plain.len() as u64, stats.rows);
    }
    if total.rows != want_rows || format!("{:032x}", total.checksum) != want_checksum {
        return Err(mismatch(
            format!("the content (rows, checksum) of part {}", unit.part),
            format!("{} rows, {:032x}", total.rows, total.checksum),
            format!("{want_rows} rows, {want_checksum}"),
        ));
    }
    for lo in &unit.objects {
        let oid = lo.object.oid;
        let Some(w) = written.remove(&oid) else {
            return Err(ArchiveError::Corrupt(format!(
                "the chunks hold no content for large object {oid}"
            ))
            .into());
        };
        if w.size != lo.size {
            return Err(mismatch(
                format!("the size of large object {oid}"),
                w.size,
                lo.size,
            ));
        }
        let sha = hex::encode(w.hash.finalize());
        if sha != lo.sha256 {
            return Err(mismatch(
                format!("the SHA-256 of large object {oid}"),
                sha,
                &lo.sha256,
            ));
        }
        let mut object = lo.object.clone();
        crate::ddl::map_owner_and_acl(&mut object.owner, &mut object.acl, &opts.roles.map);
        for sql in crate::ddl::large_object_statements(&object, &opts.ddl) {
            client
                .batch_execute(&sql)
                .await
                .map_err(|e| LoadError::Ddl {
                    section: "data",
                    statement: super::first_line(&sql),
                    source: Box::new(PgError::query("large object metadata", e)),
                    partial: false,
                })?;
        }
    }
    progress.table_finished(LABEL, total.rows);
    Ok(())
}

fn mismatch(what: String, got: impl ToString, want: impl ToString) -> LoadError {
    LoadError::Mismatch {
        table: LABEL.into(),
        what,
        got: got.to_string(),
        want: want.to_string(),
    }
}

/// Removes those of `oids` the database has; `what` says why, for the error.
pub async fn unlink(
    client: &tokio_postgres::Client,
    oids: &[u32],
    what: &str,
) -> Result<(), PgError> {
    client
        .execute(
            "SELECT pg_catalog.lo_unlink(m.oid) FROM pg_catalog.pg_largeobject_metadata m \
             WHERE m.oid = ANY($1::pg_catalog.oid[])",
            &[&oids],
        )
        .await
        .map_err(|e| PgError::query(what, e))?;
    Ok(())
}
