//! Planning, pure: which work units a backup streams and in what order, and in what
//! order a restore loads tables.

pub mod pattern;
pub mod relocate;
pub mod scope;
pub mod select;

use std::collections::BTreeSet;

use crate::catalog::Catalog;

/// A ctid page range `[start, end)` of a table; `end = None` reads to the end, so
/// pages added after the size was measured are never missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRange {
    pub start: u64,
    pub end: Option<u64>,
}

/// One stream of a backup: a whole table, or one page range of a big table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkUnit {
    /// Index into `Catalog::tables`.
    pub table: usize,
    pub part: u32,
    pub pages: Option<PageRange>,
    /// Estimated bytes, to schedule the largest work first.
    pub weight: u64,
}

/// When to split a table into parts.
#[derive(Debug, Clone, Copy)]
pub struct SplitPolicy {
    /// Tables larger than this are split into parts of about this size; 0 never splits.
    pub part_bytes: u64,
    /// Upper bound on the parts of one table.
    pub max_parts: u32,
}

/// The units a backup streams, largest first so the longest job never starts last;
/// small tables then fill the gaps. Splitting needs TID range scans (PostgreSQL 14+):
/// pass `None` on older servers, where each range would rescan the whole table.
///
/// Parts are page ranges of a power-of-two number of pages, the last one open: from
/// one backup to the next a growing table keeps its ranges (only a new one is added
/// at the end), so its old parts cut into the same chunks and are stored once.
pub fn backup_units(cat: &Catalog, split: Option<SplitPolicy>) -> Vec<WorkUnit> {
    let mut units = Vec::new();
    for (i, t) in cat.tables.iter().enumerate().filter(|(_, t)| t.has_data()) {
        let per = match split {
            Some(p) if p.part_bytes > 0 && t.estimated_bytes > p.part_bytes && t.heap_pages > 1 => {
                part_pages(t.heap_pages, t.estimated_bytes, p)
            }
            _ => t.heap_pages.max(1),
        };
        let parts = t.heap_pages.div_ceil(per).max(1);
        if parts <= 1 {
            units.push(WorkUnit {
                table: i,
                part: 0,
                pages: None,
                weight: t.estimated_bytes,
            });
            continue;
        }
        for k in 0..parts {
            let start = k * per;
            units.push(WorkUnit {
                table: i,
                part: k as u32,
                pages: Some(PageRange {
                    start,
                    end: (k + 1 < parts).then_some(start + per),
                }),
                weight: t.estimated_bytes / parts,
            });
        }
    }
    units.sort_by(|a, b| {
        b.weight
            .cmp(&a.weight)
            .then_with(|| cat.tables[a.table].name.cmp(&cat.tables[b.table].name))
            .then(a.part.cmp(&b.part))
    });
    units
}

/// Pages per part: about `part_bytes` worth at the table's bytes per page, rounded
/// down to a power of two so that drift in that ratio rarely moves a boundary, and
/// doubled until the table fits in `max_parts`.
fn part_pages(heap_pages: u64, bytes: u64, p: SplitPolicy) -> u64 {
    let per_page = bytes.div_ceil(heap_pages).max(1);
    let wanted = (p.part_bytes / per_page).max(1);
    let mut per = 1u64 << (63 - wanted.leading_zeros());
    while heap_pages.div_ceil(per) > u64::from(p.max_parts.max(1)) {
        per *= 2;
    }
    per
}

/// Table indexes in foreign-key order: every table after the tables it references.
/// Self-references are ignored; a cycle is broken at its largest table (its foreign
/// keys are added after the data anyway). Among tables that are ready, larger first.
pub fn restore_order(cat: &Catalog) -> Vec<usize> {
    let index = cat.table_positions();
    let mut parents: Vec<BTreeSet<usize>> = cat
        .tables
        .iter()
        .enumerate()
        .map(|(i, t)| {
            t.referenced_tables()
                .filter_map(|r| index.get(r).copied())
                .filter(|&p| p != i)
                .collect()
        })
        .collect();
    let size = |i: usize| cat.tables[i].estimated_bytes;
    let mut done = vec![false; cat.tables.len()];
    let mut order = Vec::with_capacity(cat.tables.len());
    while order.len() < cat.tables.len() {
        let mut ready: Vec<usize> = (0..cat.tables.len())
            .filter(|&i| !done[i] && parents[i].is_empty())
            .collect();
        if ready.is_empty() {
            // A cycle: take its largest member.
            let pick = (0..cat.tables.len())
                .filter(|&i| !done[i])
                .max_by_key(|&i| (size(i), std::cmp::Reverse(i)))
                .expect("some table is left");
            ready.push(pick);
        }
        ready.sort_by(|&a, &b| size(b).cmp(&size(a)).then(a.cmp(&b)));
        for &i in &ready {
            done[i] = true;
            order.push(i);
        }
        for p in parents.iter_mut() {
            for &i in &ready {
                p.remove(&i);
            }
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Constraint, ConstraintKind, QualName, Table};

    fn table(name: &str, bytes: u64, refs: &[&str]) -> Table {
        Table {
            oid: 0,
            name: QualName::new("public", name),
            columns: vec![],
            constraints: refs
                .iter()
                .map(|r| Constraint {
                    name: format!("fk_{r}"),
                    kind: ConstraintKind::ForeignKey,
                    definition: String::new(),
                    references: Some(QualName::new("public", *r)),
                    ..Default::default()
                })
                .collect(),
            estimated_bytes: bytes,
            ..Default::default()
        }
    }

    fn names(cat: &Catalog, order: &[usize]) -> Vec<String> {
        order
            .iter()
            .map(|&i| cat.tables[i].name.name.clone())
            .collect()
    }

    #[test]
    fn parents_come_first_self_references_and_cycles_do_not_block() {
        let cat = Catalog {
            tables: vec![
                table("vitals", 100, &["patients"]),
                table("patients", 10, &["users"]),
                table("users", 5, &["users"]),
                table("a", 1, &["b"]),
                table("b", 2, &["a"]),
            ],
            ..Default::default()
        };
        let order = names(&cat, &restore_order(&cat));
        let pos = |n: &str| order.iter().position(|x| x == n).unwrap();
        assert!(pos("users") < pos("patients"));
        assert!(pos("patients") < pos("vitals"));
        assert_eq!(order.len(), 5);
        let groups = cat.fk_components();
        assert_eq!(groups, vec![0, 0, 0, 3, 3], "vitals-patients-users, a-b");
        let first = backup_units(&cat, None)[0].table;
        assert_eq!(cat.tables[first].name.name, "vitals");
    }

    #[test]
    fn big_tables_split_into_contiguous_ranges_covering_every_page() {
        let mut big = table("vitals", 1000, &[]);
        big.heap_pages = 103;
        let cat = Catalog {
            tables: vec![big, table("small", 10, &[])],
            ..Default::default()
        };
        let policy = SplitPolicy {
            part_bytes: 300,
            max_parts: 8,
        };
        let units = backup_units(&cat, Some(policy));
        let mut parts: Vec<&WorkUnit> = units.iter().filter(|u| u.table == 0).collect();
        parts.sort_by_key(|u| u.part);
        // About 300 bytes at 10 bytes a page: 16 pages (a power of two) per part.
        assert_eq!(parts.len(), 7);
        assert_eq!(parts[0].pages.unwrap().start, 0);
        for w in parts.windows(2) {
            assert_eq!(w[0].pages.unwrap().end, Some(w[1].pages.unwrap().start));
        }
        assert_eq!(parts[6].pages.unwrap().end, None, "the last range is open");
        assert_eq!(units.last().unwrap().table, 1, "small tables fill in last");
        // Capped, and never split without TID range scans.
        let capped = SplitPolicy {
            part_bytes: 1,
            max_parts: 3,
        };
        assert_eq!(backup_units(&cat, Some(capped)).len(), 3);
        assert_eq!(backup_units(&cat, None).len(), 2);
    }

    #[test]
    fn a_growing_table_keeps_its_part_boundaries() {
        let ranges = |pages: u64| {
            let mut t = table("vitals", pages * 8000, &[]);
            t.heap_pages = pages;
            let cat = Catalog {
                tables: vec![t],
                ..Default::default()
            };
            let policy = SplitPolicy {
                part_bytes: 64 << 20,
                max_parts: 256,
            };
            let mut u = backup_units(&cat, Some(policy));
            u.sort_by_key(|u| u.part);
            u.into_iter().map(|u| u.pages.unwrap()).collect::<Vec<_>>()
        };
        let (day1, day2) = (ranges(100_000), ranges(103_000));
        assert!(day1.len() > 2);
        // Every closed range of day 1 is a range of day 2: those parts cut alike.
        for r in &day1[..day1.len() - 1] {
            assert!(day2.contains(r), "{r:?} moved");
        }
    }
}
