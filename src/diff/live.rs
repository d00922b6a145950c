//! The database as it is now, as the later snapshot. One read-only repeatable-read
//! transaction reads the catalog and every table; each table is read with the
//! backup's own COPY statements over the earlier backup's page ranges and cut with its
//! boundary key and chunk size, so a chunk that did not change has the id the backup
//! lists and is dropped without being kept or decoded.
//!
//! The chunks that differ are kept for the comparison while they fit in half the
//! memory given; beyond, the table is read a second time in the same transaction
//! (the same rows, cut the same way) and only those chunks are taken.

use std::collections::{HashMap, HashSet, VecDeque};
use std::pin::Pin;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use tokio_postgres::{Client, CopyOutStream};

use super::table::{ids, not_in, Chunks};
use super::DiffError;
use crate::archive::{ChunkRecord, CopyFormat, TableRecord};
use crate::catalog::{text_session, Table};
use crate::codec::ChunkKeys;
use crate::dump::copy_sql;
use crate::introspect::{read_catalog, Introspection};
use crate::pg::{export_snapshot, prepare_session, ConnSpec, PgError};
use crate::pgcopy::{Cutter, Scanner};
use crate::plan::{PageRange, WorkUnit};

pub struct Live {
    client: Client,
    pub introspection: Introspection,
}

/// One live table, read as an earlier backup read it.
pub struct LiveTable<'a> {
    pub table: &'a Table,
    pub earlier: &'a TableRecord,
    pub keys: &'a ChunkKeys,
    pub chunk_bytes: usize,
    /// The columns are laid out as the backup's: a chunk with one of its ids holds
    /// the same rows. Otherwise every chunk is compared.
    pub match_ids: bool,
}

/// What reading one table live left to compare.
pub struct Scanned<'r> {
    /// The live chunks the backup does not list, in order.
    pub chunks: Chunks<'r>,
    /// Their raw bytes when they are held in memory (0 when they are read again).
    pub held_bytes: usize,
    /// The backup's chunks the live table no longer has.
    pub left: Vec<&'r ChunkRecord>,
    /// Chunks found on both sides (counted on each), dropped unread.
    pub skipped: u64,
    /// The live table's rows.
    pub rows: u64,
}

/// A cut's place in a table's read: its unit (page range) and its number there.
type Place = (usize, usize);

impl Live {
    /// Connects and opens the transaction every table is read in.
    pub async fn open(conn: &ConnSpec) -> Result<Live, DiffError> {
        let client = conn.connect().await?;
        prepare_session(&client).await?;
        export_snapshot(&client).await?;
        let introspection = read_catalog(&[&client]).await?;
        Ok(Live {
            client,
            introspection,
        })
    }

    /// Connects and opens a read-write transaction (read committed: the tables a merge
    /// changes are locked before it reads them).
    pub async fn open_for_change(conn: &ConnSpec) -> Result<Live, DiffError> {
        let client = conn.connect().await?;
        prepare_session(&client).await?;
        client
            .batch_execute("BEGIN")
            .await
            .map_err(|e| PgError::query("start the merge's transaction", e))?;
        let introspection = read_catalog(&[&client]).await?;
        Ok(Live {
            client,
            introspection,
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The COPY format a backup would read `table` in.
    pub fn format(&self, table: &Table) -> CopyFormat {
        if self.introspection.text_copy.contains_key(&table.oid) {
            CopyFormat::Text
        } else {
            CopyFormat::Binary
        }
    }

    /// Reads `t` and sorts its chunks: those the backup lists are dropped, the others
    /// kept up to `memory_bytes / 2`, or read again when they are more.
    pub async fn scan<'r>(
        &'r self,
        t: LiveTable<'r>,
        memory_bytes: usize,
    ) -> Result<Scanned<'r>, DiffError> {
        let mut listed = if t.match_ids {
            ids(t.earlier)
        } else {
            Default::default()
        };
        let mut matched = listed.clone();
        matched.values_mut().for_each(|n| *n = 0);
        let (mut skipped, mut rows) = (0, 0);
        // The chunks to compare, by place, with their ids: a second read must give
        // them again.
        let mut wanted: HashMap<Place, String> = HashMap::new();
        let mut held: Option<Vec<Bytes>> = Some(Vec::new());
        let mut held_bytes = 0usize;
        let mut cuts = self.cuts(&t, None).await?;
        while let Some((place, data, cut_rows)) = cuts.try_next().await? {
            rows += cut_rows;
            let id = t.keys.id_of(&data).to_string();
            match listed.get_mut(id.as_str()) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    *matched.get_mut(id.as_str()).expect("same ids") += 1;
                    skipped += 2;
                }
                _ if data.is_empty() => {}
                _ => {
                    wanted.insert(place, id);
                    held_bytes += data.len();
                    if held_bytes > memory_bytes / 2 {
                        held = None;
                    }
                    if let Some(h) = held.as_mut() {
                        h.push(data);
                    }
                }
            }
        }
        drop(cuts);
        let (chunks, held_bytes) = match held {
            Some(h) => (
                futures::stream::iter(h.into_iter().map(Ok)).boxed(),
                held_bytes,
            ),
            None => {
                let again = self
                    .cuts(&t, Some(wanted.keys().copied().collect()))
                    .await?;
                let (keys, label) = (t.keys, t.table.name.plain());
                let checked = again.and_then(move |(place, data, _)| {
                    let same = wanted.get(&place) == Some(&keys.id_of(&data).to_string());
                    let out = if same {
                        Ok(data)
                    } else {
                        Err(DiffError::Unstable(label.clone()))
                    };
                    futures::future::ready(out)
                });
                (checked.boxed(), 0)
            }
        };
        Ok(Scanned {
            chunks,
            held_bytes,
            left: not_in(t.earlier, matched),
            skipped,
            rows,
        })
    }

    /// The table's cuts in order, each with its place and rows; only those in `only`
    /// when given (the others are still read, to cut the same way).
    async fn cuts<'r>(
        &'r self,
        t: &LiveTable<'r>,
        only: Option<HashSet<Place>>,
    ) -> Result<futures::stream::BoxStream<'r, Result<(Place, Bytes, u64), DiffError>>, DiffError>
    {
        let format = self.format(t.table);
        if format == CopyFormat::Text {
            self.client
                .batch_execute(&text_session(false))
                .await
                .map_err(|e| PgError::query("fix the settings text COPY depends on", e))?;
        }
        let units: Vec<WorkUnit> = if t.earlier.parts.is_empty() {
            vec![unit(0, None)]
        } else {
            let range = |p: &crate::archive::PartRecord| PageRange {
                start: p.start_page,
                end: p.end_page,
            };
            let parts = t.earlier.parts.iter();
            parts.map(|p| unit(p.part, Some(range(p)))).collect()
        };
        let state = Reading {
            client: &self.client,
            statements: units.iter().map(|u| copy_sql(t.table, u, format)).collect(),
            label: t.table.name.plain(),
            text: format == CopyFormat::Text,
            boundary: *t.keys.boundary_key().expose(),
            chunk_bytes: t.chunk_bytes,
            unit: 0,
            open: None,
            ready: VecDeque::new(),
            only,
        };
        Ok(futures::stream::try_unfold(state, Reading::next).boxed())
    }
}

/// Where [`Live::cuts`] stands: the unit being read and the cuts not handed out yet.
struct Reading<'c> {
    client: &'c Client,
    statements: Vec<String>,
    label: String,
    text: bool,
    boundary: [u8; 32],
    chunk_bytes: usize,
    unit: usize,
    /// The unit's COPY stream, its scanner and how many cuts it gave so far.
    open: Option<(Pin<Box<CopyOutStream>>, Scanner, usize)>,
    ready: VecDeque<(Place, Bytes, u64)>,
    only: Option<HashSet<Place>>,
}

impl<'c> Reading<'c> {
    async fn next(mut self) -> Result<Option<((Place, Bytes, u64), Self)>, DiffError> {
        loop {
            if let Some(cut) = self.ready.pop_front() {
                return Ok(Some((cut, self)));
            }
            let Some((stream, scanner, n)) = self.open.as_mut() else {
                let Some(sql) = self.statements.get(self.unit) else {
                    return Ok(None);
                };
                let stream = self
                    .client
                    .copy_out(sql.as_str())
                    .await
                    .map_err(|e| PgError::query(format!("copy out {}", self.label), e))?;
                let cutter = Cutter::new(&self.boundary, self.chunk_bytes);
                self.open = Some((Box::pin(stream), Scanner::new(self.text, cutter), 0));
                continue;
            };
            let mut found = Vec::new();
            match stream.next().await {
                Some(data) => {
                    let data =
                        data.map_err(|e| PgError::query(format!("copy out {}", self.label), e))?;
                    scanner.feed(data)?;
                    while let Some(cut) = scanner.next_cut() {
                        found.push(((self.unit, *n), cut.data, cut.stats.rows));
                        *n += 1;
                    }
                }
                None => {
                    let (_, scanner, n) = self.open.take().expect("open");
                    let last = scanner.finish()?;
                    found.push(((self.unit, n), last.data, last.stats.rows));
                    self.unit += 1;
                }
            }
            let only = &self.only;
            self.ready.extend(
                found
                    .into_iter()
                    .filter(|(place, _, _)| only.as_ref().is_none_or(|o| o.contains(place))),
            );
        }
    }
}

fn unit(part: u32, pages: Option<PageRange>) -> WorkUnit {
    WorkUnit {
        table: 0,
        part,
        pages,
        weight: 0,
    }
}
