//! Rewrites the type OIDs that binary values carry inside them.
//!
//! An array value names its element type by OID and a composite value names each
//! field's type by OID; the server checks both when it reads them back (`array_recv`:
//! "wrong element type", `record_recv`: "wrong data type"). Types created per cluster
//! get other OIDs in the restored database, so restore rewrites them, source OID to
//! target OID, in place: an OID is four bytes either way, so no length changes and a
//! chunk of tuples is rewritten without copying it.
//!
//! Binary forms walked here (PostgreSQL's `*_send` functions, all integers big-endian):
//! - array: `ndim i32`, `has_nulls i32` (0 or 1), `elemtype u32`, per dimension
//!   `len i32, lbound i32`, then per element `len i32` (-1 for NULL) and its bytes;
//! - composite: `nfields i32`, then per live field `oid u32, len i32` (-1 for NULL)
//!   and its bytes;
//! - range: `flags u8`, then each present bound as `len i32` and its bytes (no OID);
//! - multirange: `count i32`, then per range `len i32` and the range's bytes (no OID);
//! - domain: its base type's form.
//!
//! Pure code: the caller says what each type is made of ([`Shape`]) and what each OID
//! becomes; this module knows nothing of catalogs or connections.

use std::collections::{BTreeSet, HashMap};

use thiserror::Error;

use super::{tuple_len, CopyFormatError, TupleEnd, MAX_FIELD_LEN};

/// OIDs below this are fixed in PostgreSQL's source, the same in every cluster; from
/// here up they are assigned per cluster and must be looked up by name. Built-in types
/// (below) only ever contain built-in types.
pub const FIRST_UNSTABLE_OID: u32 = 10_000;

/// Types nest this deep at most (PostgreSQL forbids cycles; this stops a broken catalog
/// from recursing forever).
const MAX_DEPTH: usize = 64;

/// PostgreSQL arrays have at most 6 dimensions (`MAXDIM`).
const MAX_DIMS: i32 = 6;

/// What a type's binary form is made of, as far as embedded OIDs go. Every OID is the
/// source's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// No OIDs inside. Types the graph does not know are opaque too.
    Opaque,
    Array {
        elem: u32,
    },
    /// The live fields' types in attribute order.
    Composite {
        fields: Vec<u32>,
    },
    Domain {
        base: u32,
    },
    Range {
        subtype: u32,
    },
    Multirange {
        range: u32,
    },
}

/// Why OIDs could not be rewritten.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RemapError {
    #[error("type OID {0} appears inside values, but its OID in the target is unknown")]
    NoTarget(u32),
    #[error("type OID {0} nests more than {MAX_DEPTH} levels deep (a cycle in the catalog?)")]
    TooDeep(u32),
    #[error("a tuple has {found} fields, but the table copies {expected} columns")]
    FieldCount { expected: usize, found: i16 },
    #[error(transparent)]
    Framing(#[from] CopyFormatError),
    #[error("row {row} of the chunk, column {column}: {problem}")]
    Value {
        /// 0-based, within the rewritten buffer.
        row: u64,
        /// 0-based, among the copied columns.
        column: usize,
        problem: ValueError,
    },
}

/// A value that does not have the binary form its type promises.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum ValueError {
    #[error("the value ends early")]
    Truncated,
    #[error("{0} bytes follow the end of the value")]
    Trailing(usize),
    #[error("an array declares {ndim} dimensions and flags {flags}")]
    BadArrayHeader { ndim: i32, flags: i32 },
    #[error("an array dimension declares {0} elements")]
    BadDimension(i32),
    #[error("a length of {0} inside the value is impossible")]
    BadLength(i32),
    #[error("an embedded type OID is {found}, the catalog says {expected}")]
    WrongType { expected: u32, found: u32 },
    #[error("a composite value has {found} fields, its type has {expected}")]
    WrongFieldCount { expected: usize, found: i32 },
    #[error("the text is not valid UTF-8")]
    NotUtf8,
    #[error("the value's format marker {0} is unknown")]
    BadVersion(u8),
    #[error("the value is outside the range its type allows")]
    OutOfRange,
}

/// The types a table's values are made of: source OID → [`Shape`].
#[derive(Debug, Clone, Default)]
pub struct TypeGraph {
    shapes: HashMap<u32, Shape>,
}

impl TypeGraph {
    pub fn new(shapes: impl IntoIterator<Item = (u32, Shape)>) -> Self {
        TypeGraph {
            shapes: shapes.into_iter().collect(),
        }
    }

    fn shape(&self, oid: u32) -> &Shape {
        self.shapes.get(&oid).unwrap_or(&Shape::Opaque)
    }

    /// The per-cluster OIDs that values of these column types carry inside them: the
    /// ones whose target OIDs [`TypeGraph::remapper`] needs. Empty for most tables.
    pub fn embedded_oids(&self, columns: &[u32]) -> Result<BTreeSet<u32>, RemapError> {
        let mut seen = BTreeSet::new();
        let mut record = |oid: u32| {
            seen.insert(oid);
            Ok(oid)
        };
        for &c in columns {
            self.plan(c, 0, &mut record)?;
        }
        Ok(seen)
    }

    /// A rewriter for tuples of these column types (in COPY column order), mapping
    /// each embedded per-cluster OID through `target`.
    pub fn remapper(
        &self,
        columns: &[u32],
        target: &HashMap<u32, u32>,
    ) -> Result<Remapper, RemapError> {
        let mut to = |oid: u32| target.get(&oid).copied().ok_or(RemapError::NoTarget(oid));
        let columns = columns
            .iter()
            .map(|&c| self.plan(c, 0, &mut to))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Remapper { columns })
    }

    /// How to rewrite values of type `oid`; `None` when nothing inside them changes.
    /// `to` maps an embedded per-cluster OID to its target.
    fn plan(
        &self,
        oid: u32,
        depth: usize,
        to: &mut dyn FnMut(u32) -> Result<u32, RemapError>,
    ) -> Result<Option<Node>, RemapError> {
        if depth > MAX_DEPTH {
            return Err(RemapError::TooDeep(oid));
        }
        fn target(
            o: u32,
            to: &mut dyn FnMut(u32) -> Result<u32, RemapError>,
        ) -> Result<u32, RemapError> {
            if o < FIRST_UNSTABLE_OID {
                Ok(o)
            } else {
                to(o)
            }
        }
        Ok(match self.shape(oid) {
            Shape::Opaque => None,
            Shape::Domain { base } => self.plan(*base, depth + 1, to)?,
            Shape::Array { elem } => {
                let new = target(*elem, to)?;
                let inner = self.plan(*elem, depth + 1, to)?.map(Box::new);
                (new != *elem || inner.is_some()).then_some(Node::Array(Embedded {
                    from: *elem,
                    to: new,
                    inner,
                }))
            }
            Shape::Composite { fields } => {
                let mut out = Vec::with_capacity(fields.len());
                for &f in fields {
                    let new = target(f, to)?;
                    let inner = self.plan(f, depth + 1, to)?.map(Box::new);
                    out.push(Embedded {
                        from: f,
                        to: new,
                        inner,
                    });
                }
                let changes = out.iter().any(|e| e.from != e.to || e.inner.is_some());
                changes.then_some(Node::Composite(out))
            }
            Shape::Range { subtype } => self
                .plan(*subtype, depth + 1, to)?
                .map(|n| Node::Range(Box::new(n))),
            Shape::Multirange { range } => self
                .plan(*range, depth + 1, to)?
                .map(|n| Node::Multirange(Box::new(n))),
        })
    }
}

/// An embedded OID and what to do with the value it introduces.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Embedded {
    from: u32,
    to: u32,
    inner: Option<Box<Node>>,
}

/// How to rewrite one value; only built for types whose values change.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Array(Embedded),
    Composite(Vec<Embedded>),
    Range(Box<Node>),
    Multirange(Box<Node>),
}

/// Rewrites embedded OIDs in whole tuples of one table, in place.
#[derive(Debug, Clone, Default)]
pub struct Remapper {
    /// Per copied column, how its values change (`None`: they do not).
    columns: Vec<Option<Node>>,
}

impl Remapper {
    /// True when no value of the table changes: the common case, where
    /// [`Remapper::rewrite`] does not even look at the data.
    pub fn is_identity(&self) -> bool {
        self.columns.iter().all(Option::is_none)
    }

    /// The rewriter that undoes this one (target OIDs back to source OIDs), e.g. to
    /// compare a restored table's binary COPY with the backup's checksums.
    pub fn inverse(&self) -> Remapper {
        Remapper {
            columns: self
                .columns
                .iter()
                .map(|c| c.as_ref().map(Node::inverse))
                .collect(),
        }
    }

    /// Rewrites every tuple in `data`, which must hold whole tuples only (a chunk's
    /// plaintext). On error the buffer may be partly rewritten.
    pub fn rewrite(&self, data: &mut [u8]) -> Result<(), RemapError> {
        if self.is_identity() {
            return Ok(());
        }
        let mut pos = 0;
        let mut row = 0u64;
        while pos < data.len() {
            let end = match tuple_len(&data[pos..])? {
                TupleEnd::Tuple(len) => pos + len,
                TupleEnd::Trailer => return Err(CopyFormatError::TrailingData.into()),
                TupleEnd::Incomplete => return Err(CopyFormatError::Truncated.into()),
            };
            self.rewrite_tuple(&mut data[pos..end], row)?;
            pos = end;
            row += 1;
        }
        Ok(())
    }

    /// `tuple` is one whole, framing-checked tuple.
    fn rewrite_tuple(&self, tuple: &mut [u8], row: u64) -> Result<(), RemapError> {
        let nfields = i16::from_be_bytes([tuple[0], tuple[1]]);
        if nfields as usize != self.columns.len() {
            return Err(RemapError::FieldCount {
                expected: self.columns.len(),
                found: nfields,
            });
        }
        let mut pos = 2;
        for (column, node) in self.columns.iter().enumerate() {
            let len = i32::from_be_bytes(tuple[pos..pos + 4].try_into().expect("4 bytes"));
            pos += 4;
            if len < 0 {
                continue;
            }
            let end = pos + len as usize;
            if let Some(node) = node {
                node.rewrite(&mut tuple[pos..end])
                    .map_err(|problem| RemapError::Value {
                        row,
                        column,
                        problem,
                    })?;
            }
            pos = end;
        }
        Ok(())
    }
}

/// A cursor over one value's bytes.
struct Cursor<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(buf: &'a mut [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&mut [u8], ValueError> {
        if self.buf.len() - self.pos < n {
            return Err(ValueError::Truncated);
        }
        let s = &mut self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn i32(&mut self) -> Result<i32, ValueError> {
        Ok(i32::from_be_bytes(
            (&*self.take(4)?).try_into().expect("4 bytes"),
        ))
    }

    fn u8(&mut self) -> Result<u8, ValueError> {
        Ok(self.take(1)?[0])
    }

    /// Checks the embedded OID is `e.from` and writes `e.to` over it.
    fn oid(&mut self, e: &Embedded) -> Result<(), ValueError> {
        let slot = self.take(4)?;
        let found = u32::from_be_bytes((&*slot).try_into().expect("4 bytes"));
        if found != e.from {
            return Err(ValueError::WrongType {
                expected: e.from,
                found,
            });
        }
        slot.copy_from_slice(&e.to.to_be_bytes());
        Ok(())
    }

    /// A length-prefixed item (-1: NULL, nothing follows); rewritten by `inner` if any.
    fn item(&mut self, inner: Option<&Node>, nullable: bool) -> Result<(), ValueError> {
        let len = self.i32()?;
        if len == -1 && nullable {
            return Ok(());
        }
        if len < 0 || len as usize > MAX_FIELD_LEN {
            return Err(ValueError::BadLength(len));
        }
        let bytes = self.take(len as usize)?;
        match inner {
            Some(n) => n.rewrite(bytes),
            None => Ok(()),
        }
    }

    fn end(&self) -> Result<(), ValueError> {
        match self.buf.len() - self.pos {
            0 => Ok(()),
            n => Err(ValueError::Trailing(n)),
        }
    }
}

/// Range flags (`rangetypes.h`): a bound is present unless the range is empty or the
/// bound is infinite (or NULL, a flag PostgreSQL never sets).
const RANGE_EMPTY: u8 = 0x01;
const RANGE_LB_INF: u8 = 0x08;
const RANGE_UB_INF: u8 = 0x10;
const RANGE_LB_NULL: u8 = 0x20;
const RANGE_UB_NULL: u8 = 0x40;

impl Node {
    fn inverse(&self) -> Node {
        let flip = |e: &Embedded| Embedded {
            from: e.to,
            to: e.from,
            inner: e.inner.as_ref().map(|n| Box::new(n.inverse())),
        };
        match self {
            Node::Array(e) => Node::Array(flip(e)),
            Node::Composite(fields) => Node::Composite(fields.iter().map(flip).collect()),
            Node::Range(n) => Node::Range(Box::new(n.inverse())),
            Node::Multirange(n) => Node::Multirange(Box::new(n.inverse())),
        }
    }

    fn rewrite(&self, value: &mut [u8]) -> Result<(), ValueError> {
        let mut c = Cursor::new(value);
        match self {
            Node::Array(e) => {
                let ndim = c.i32()?;
                let flags = c.i32()?;
                if !(0..=MAX_DIMS).contains(&ndim) || !(0..=1).contains(&flags) {
                    return Err(ValueError::BadArrayHeader { ndim, flags });
                }
                c.oid(e)?;
                let mut items: u64 = if ndim == 0 { 0 } else { 1 };
                for _ in 0..ndim {
                    let len = c.i32()?;
                    let _lbound = c.i32()?;
                    if len < 0 {
                        return Err(ValueError::BadDimension(len));
                    }
                    // Six factors below 2^31 can overflow: saturate, as a count that
                    // large runs out of bytes at once anyway.
                    items = items.saturating_mul(len as u64);
                }
                let Some(inner) = e.inner.as_deref() else {
                    // Only the header changes: leave the elements unread.
                    return Ok(());
                };
                for _ in 0..items {
                    c.item(Some(inner), true)?;
                }
                c.end()
            }
            Node::Composite(fields) => {
                let n = c.i32()?;
                if n < 0 || n as usize != fields.len() {
                    return Err(ValueError::WrongFieldCount {
                        expected: fields.len(),
                        found: n,
                    });
                }
                for f in fields {
                    c.oid(f)?;
                    c.item(f.inner.as_deref(), true)?;
                }
                c.end()
            }
            Node::Range(sub) => {
                let flags = c.u8()?;
                if flags & (RANGE_EMPTY | RANGE_LB_INF | RANGE_LB_NULL) == 0 {
                    c.item(Some(sub), false)?;
                }
                if flags & (RANGE_EMPTY | RANGE_UB_INF | RANGE_UB_NULL) == 0 {
                    c.item(Some(sub), false)?;
                }
                c.end()
            }
            Node::Multirange(range) => {
                let n = c.i32()?;
                if n < 0 {
                    return Err(ValueError::BadLength(n));
                }
                for _ in 0..n {
                    c.item(Some(range), false)?;
                }
                c.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::tuple;
    use super::*;

    // Source OIDs, as a PostgreSQL 15 cluster hands them out.
    const MOOD_ARR: u32 = 16385;
    const MOOD: u32 = 16386;
    const INNER_ARR: u32 = 16392;
    const INNER: u32 = 16393;
    const OUTER_ARR: u32 = 16395;
    const OUTER: u32 = 16396;
    const INT_DOMAIN: u32 = 16398; // domain over int4[]
    const MOOD_DOMAIN: u32 = 16401; // domain over mood[]
    const INNER_RANGE: u32 = 16415;
    const INNER_MULTI: u32 = 16413;
    const INT4: u32 = 23;
    const TEXT: u32 = 25;
    const INT4_ARR: u32 = 1007;

    fn graph() -> TypeGraph {
        TypeGraph::new([
            (MOOD_ARR, Shape::Array { elem: MOOD }),
            (MOOD, Shape::Opaque),
            (INNER_ARR, Shape::Array { elem: INNER }),
            (
                INNER,
                Shape::Composite {
                    fields: vec![INT4, MOOD_ARR],
                },
            ),
            (OUTER_ARR, Shape::Array { elem: OUTER }),
            (
                OUTER,
                Shape::Composite {
                    fields: vec![INNER, TEXT, INNER_ARR],
                },
            ),
            (INT_DOMAIN, Shape::Domain { base: INT4_ARR }),
            (MOOD_DOMAIN, Shape::Domain { base: MOOD_ARR }),
            (INNER_RANGE, Shape::Range { subtype: INNER }),
            (INNER_MULTI, Shape::Multirange { range: INNER_RANGE }),
        ])
    }

    /// The target cluster: every per-cluster OID moved by 1000.
    fn target() -> HashMap<u32, u32> {
        [
            MOOD_ARR,
            MOOD,
            INNER_ARR,
            INNER,
            OUTER_ARR,
            OUTER,
            INT_DOMAIN,
            MOOD_DOMAIN,
            INNER_RANGE,
            INNER_MULTI,
        ]
        .into_iter()
        .map(|o| (o, o + 1000))
        .collect()
    }

    /// Source OID, or its target when `moved`.
    fn oid(o: u32, moved: bool) -> u32 {
        if moved && o >= FIRST_UNSTABLE_OID {
            o + 1000
        } else {
            o
        }
    }

    fn item(out: &mut Vec<u8>, v: &Option<Vec<u8>>) {
        match v {
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(v) => {
                out.extend_from_slice(&(v.len() as i32).to_be_bytes());
                out.extend_from_slice(v);
            }
        }
    }

    /// An array value: `dims` as (length, lower bound).
    fn array(elem: u32, dims: &[(i32, i32)], items: &[Option<Vec<u8>>]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(dims.len() as i32).to_be_bytes());
        let nulls = items.iter().any(Option::is_none) as i32;
        out.extend_from_slice(&nulls.to_be_bytes());
        out.extend_from_slice(&elem.to_be_bytes());
        for (len, lb) in dims {
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&lb.to_be_bytes());
        }
        for i in items {
            item(&mut out, i);
        }
        out
    }

    fn record(fields: &[(u32, Option<Vec<u8>>)]) -> Vec<u8> {
        let mut out = (fields.len() as i32).to_be_bytes().to_vec();
        for (o, v) in fields {
            out.extend_from_slice(&o.to_be_bytes());
            item(&mut out, v);
        }
        out
    }

    fn range(flags: u8, bounds: &[Vec<u8>]) -> Vec<u8> {
        let mut out = vec![flags];
        for b in bounds {
            item(&mut out, &Some(b.clone()));
        }
        out
    }

    fn multirange(ranges: &[Vec<u8>]) -> Vec<u8> {
        let mut out = (ranges.len() as i32).to_be_bytes().to_vec();
        for r in ranges {
            item(&mut out, &Some(r.clone()));
        }
        out
    }

    fn int4(v: i32) -> Option<Vec<u8>> {
        Some(v.to_be_bytes().to_vec())
    }

    fn label(s: &str) -> Option<Vec<u8>> {
        Some(s.as_bytes().to_vec())
    }

    /// A 2×3 `mood[]` with lower bounds -1 and 5 and a NULL element.
    fn moods(moved: bool) -> Vec<u8> {
        let m = oid(MOOD, moved);
        let items = [
            label("calm"),
            None,
            label("tense"),
            label("tense"),
            label("calm"),
            label("calm"),
        ];
        array(m, &[(2, -1), (3, 5)], &items)
    }

    /// `inner_c(a int4, m mood[])`.
    fn inner(moved: bool, a: Option<i32>, m: Option<Vec<u8>>) -> Vec<u8> {
        record(&[
            (INT4, a.map(|v| v.to_be_bytes().to_vec())),
            (oid(MOOD_ARR, moved), m),
        ])
    }

    /// `outer_c(i inner_c, x text, l inner_c[])`, awkward: an all-NULL inner value, an
    /// empty and a NULL-holding array of inner values.
    fn outer(moved: bool) -> Vec<u8> {
        let all_null = inner(moved, None, None);
        let list = array(
            oid(INNER, moved),
            &[(3, 0)],
            &[
                Some(inner(moved, Some(1), Some(moods(moved)))),
                None,
                Some(all_null.clone()),
            ],
        );
        record(&[
            (oid(INNER, moved), Some(all_null)),
            (TEXT, label("x")),
            (oid(INNER_ARR, moved), Some(list)),
        ])
    }

    const COLUMNS: [u32; 8] = [
        INT4,
        MOOD_ARR,
        OUTER,
        OUTER_ARR,
        INT_DOMAIN,
        MOOD_DOMAIN,
        INNER_MULTI,
        INT4_ARR,
    ];

    /// One tuple of [`COLUMNS`], written by the source (`moved` false) or as the target
    /// expects it (`moved` true).
    fn row(moved: bool, n: i32) -> Vec<u8> {
        let empty_moods = array(oid(MOOD, moved), &[], &[]);
        let outers = array(
            oid(OUTER, moved),
            &[(2, 1)],
            &[Some(outer(moved)), Some(outer(moved))],
        );
        let ints = array(INT4, &[(2, 0)], &[int4(1), None]);
        let lo = inner(moved, Some(1), None);
        let hi = inner(moved, Some(2), Some(moods(moved)));
        let ranges = multirange(&[
            range(0x02, &[lo.clone(), hi.clone()]),
            range(0x08 | 0x04, &[hi]), // (-infinity, hi]
            range(0x10, &[lo]),        // [lo, +infinity)
        ]);
        let cols: Vec<Option<Vec<u8>>> = vec![
            int4(n),
            Some(if n % 2 == 0 {
                moods(moved)
            } else {
                empty_moods
            }),
            Some(outer(moved)),
            Some(outers),
            Some(ints.clone()),
            None,
            Some(ranges),
            Some(ints),
        ];
        let refs: Vec<Option<&[u8]>> = cols.iter().map(|c| c.as_deref()).collect();
        tuple(&refs)
    }

    #[test]
    fn every_embedded_oid_is_rewritten_and_nothing_else() {
        let g = graph();
        let r = g.remapper(&COLUMNS, &target()).unwrap();
        assert!(!r.is_identity());
        let mut data: Vec<u8> = (0..4).flat_map(|n| row(false, n)).collect();
        let want: Vec<u8> = (0..4).flat_map(|n| row(true, n)).collect();
        assert_ne!(data, want);
        let len = data.len();
        r.rewrite(&mut data).unwrap();
        assert_eq!(data.len(), len);
        assert_eq!(data, want);
        // And back, for comparing a restored table with the backup.
        r.inverse().rewrite(&mut data).unwrap();
        assert_eq!(
            data,
            (0..4).flat_map(|n| row(false, n)).collect::<Vec<u8>>()
        );
    }

    #[test]
    fn only_per_cluster_oids_need_a_target() {
        let g = graph();
        let want: BTreeSet<u32> = [MOOD, INNER, OUTER, INNER_ARR, MOOD_ARR].into();
        assert_eq!(g.embedded_oids(&COLUMNS).unwrap(), want);
        // Built-in types, enums and domains over built-in arrays carry nothing to move.
        let plain = [INT4, TEXT, INT4_ARR, MOOD, INT_DOMAIN, 99999];
        assert!(g.embedded_oids(&plain).unwrap().is_empty());
        let r = g.remapper(&plain, &HashMap::new()).unwrap();
        assert!(r.is_identity());
        // The fast path does not even read the bytes.
        let mut garbage = vec![0xffu8; 7];
        r.rewrite(&mut garbage).unwrap();
        assert_eq!(garbage, vec![0xffu8; 7]);
    }

    #[test]
    fn oids_that_happen_to_match_leave_the_table_alone() {
        let same: HashMap<u32, u32> = target().into_keys().map(|o| (o, o)).collect();
        assert!(graph().remapper(&COLUMNS, &same).unwrap().is_identity());
    }

    #[test]
    fn a_missing_target_is_named() {
        let mut t = target();
        t.remove(&INNER);
        assert_eq!(
            graph().remapper(&[OUTER], &t).unwrap_err(),
            RemapError::NoTarget(INNER)
        );
    }

    #[test]
    fn a_cycle_in_the_catalog_is_an_error_not_a_stack_overflow() {
        let g = TypeGraph::new([
            (
                20000,
                Shape::Composite {
                    fields: vec![20001],
                },
            ),
            (20001, Shape::Domain { base: 20000 }),
        ]);
        let t: HashMap<u32, u32> = [(20000, 30000), (20001, 30001)].into();
        assert!(matches!(
            g.remapper(&[20000], &t),
            Err(RemapError::TooDeep(_))
        ));
    }

    /// Rewrites a one-column tuple holding `value` of type `column`.
    fn rewrite_one(column: u32, value: Vec<u8>) -> Result<Vec<u8>, RemapError> {
        let r = graph().remapper(&[column], &target()).unwrap();
        let mut data = tuple(&[Some(&value)]);
        r.rewrite(&mut data)?;
        Ok(data)
    }

    #[test]
    fn values_that_contradict_the_catalog_are_refused() {
        let value_err = |problem| RemapError::Value {
            row: 0,
            column: 0,
            problem,
        };
        // An array of another element type.
        let wrong = array(TEXT, &[(1, 1)], &[label("calm")]);
        assert_eq!(
            rewrite_one(MOOD_ARR, wrong),
            Err(value_err(ValueError::WrongType {
                expected: MOOD,
                found: TEXT
            }))
        );
        // A composite field of another type, deep inside.
        let bad_inner = record(&[(INT4, int4(1)), (TEXT, None)]);
        let bad = array(INNER, &[(1, 1)], &[Some(bad_inner)]);
        assert_eq!(
            rewrite_one(INNER_ARR, bad),
            Err(value_err(ValueError::WrongType {
                expected: MOOD_ARR,
                found: TEXT
            }))
        );
        // Too few fields.
        assert_eq!(
            rewrite_one(INNER, record(&[(INT4, None)])),
            Err(value_err(ValueError::WrongFieldCount {
                expected: 2,
                found: 1
            }))
        );
        // A header PostgreSQL cannot write.
        let mut seven = array(MOOD, &[], &[]);
        seven[..4].copy_from_slice(&7i32.to_be_bytes());
        assert_eq!(
            rewrite_one(MOOD_ARR, seven),
            Err(value_err(ValueError::BadArrayHeader { ndim: 7, flags: 0 }))
        );
        // Elements missing, bytes left over, impossible lengths.
        let mut short = array(INNER, &[(2, 1)], &[Some(inner(false, None, None))]);
        assert_eq!(
            rewrite_one(INNER_ARR, short.clone()),
            Err(value_err(ValueError::Truncated))
        );
        short.extend_from_slice(&(-1i32).to_be_bytes());
        short.push(0);
        assert_eq!(
            rewrite_one(INNER_ARR, short),
            Err(value_err(ValueError::Trailing(1)))
        );
        let null_bound = range(0x02, &[]);
        let mut bad_len = null_bound.clone();
        bad_len.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(
            rewrite_one(INNER_RANGE, bad_len),
            Err(value_err(ValueError::BadLength(-1)))
        );
        assert_eq!(
            rewrite_one(INNER_RANGE, null_bound),
            Err(value_err(ValueError::Truncated))
        );
        // Empty ranges carry no bounds; an empty multirange carries no ranges.
        assert!(rewrite_one(INNER_RANGE, range(0x01, &[])).is_ok());
        assert!(rewrite_one(INNER_MULTI, multirange(&[])).is_ok());
    }

    #[test]
    fn tuples_must_match_the_column_list_and_be_whole() {
        let r = graph().remapper(&COLUMNS, &target()).unwrap();
        let mut short = tuple(&[Some(b"1")]);
        assert_eq!(
            r.rewrite(&mut short),
            Err(RemapError::FieldCount {
                expected: 8,
                found: 1
            })
        );
        let mut cut = row(false, 0);
        cut.pop();
        assert_eq!(
            r.rewrite(&mut cut),
            Err(RemapError::Framing(CopyFormatError::Truncated))
        );
        // The error names the row and column.
        let mut two = [row(false, 0), row(false, 1)].concat();
        let first = row(false, 0).len();
        // Corrupt the second row's mood[] element type (column 1): it follows the
        // field count (2), column 0 (4 + 4) and column 1's length, ndim and flags.
        let at = first + 2 + 8 + 4 + 8;
        two[at..at + 4].copy_from_slice(&TEXT.to_be_bytes());
        assert_eq!(
            r.rewrite(&mut two),
            Err(RemapError::Value {
                row: 1,
                column: 1,
                problem: ValueError::WrongType {
                    expected: MOOD,
                    found: TEXT
                }
            })
        );
    }
}
