//! Planning, pure: which work units a backup streams and in what order, and in what
//! order a restore loads tables.

use std::collections::{BTreeSet, HashMap};

use crate::catalog::{Catalog, QualName};

/// Table indexes (into `Catalog::tables`) in the order backup workers should take
/// them: largest first, so the longest job never starts last.
pub fn backup_order(cat: &Catalog) -> Vec<usize> {
    let mut order: Vec<usize> = (0..cat.tables.len()).collect();
    order.sort_by(|&a, &b| {
        cat.tables[b]
            .estimated_bytes
            .cmp(&cat.tables[a].estimated_bytes)
            .then_with(|| cat.tables[a].name.cmp(&cat.tables[b].name))
    });
    order
}

/// Table indexes in foreign-key order: every table after the tables it references.
/// Self-references are ignored; a cycle is broken at its largest table (its foreign
/// keys are added after the data anyway). Among tables that are ready, larger first.
pub fn restore_order(cat: &Catalog) -> Vec<usize> {
    let index: HashMap<&QualName, usize> = cat
        .tables
        .iter()
        .enumerate()
        .map(|(i, t)| (&t.name, i))
        .collect();
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
    use crate::catalog::{Constraint, ConstraintKind, Table};

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
                    comment: None,
                })
                .collect(),
            indexes: vec![],
            comment: None,
            estimated_bytes: bytes,
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
        assert_eq!(names(&cat, &backup_order(&cat))[0], "vitals");
    }
}
