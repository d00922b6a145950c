//! Dependency order: every object after the objects it needs, ties broken by a rank
//! per kind and then by name, so the same catalog always gives the same script.

use std::collections::{BTreeSet, HashMap};

use crate::catalog::{Dependency, ObjKey};

/// What the sorter needs to know of one object.
pub struct Node {
    pub key: ObjKey,
    pub rank: u8,
    pub name: String,
}

/// Indexes into `nodes` in creation order. Edges to unknown keys are ignored; a
/// cycle (which `pg_depend` should not contain between the objects we create) is
/// broken at the lowest-ranked object left, so the order is still total.
pub fn sorted(nodes: &[Node], deps: &[Dependency]) -> Vec<usize> {
    let index: HashMap<ObjKey, usize> = nodes.iter().enumerate().map(|(i, n)| (n.key, i)).collect();
    let mut waiting = vec![0usize; nodes.len()];
    let mut needed_by: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    let mut seen = std::collections::HashSet::new();
    for d in deps {
        if let (Some(&a), Some(&b)) = (index.get(&d.dependent), index.get(&d.referenced)) {
            if a != b && seen.insert((a, b)) {
                waiting[a] += 1;
                needed_by[b].push(a);
            }
        }
    }
    let label = |i: usize| (nodes[i].rank, nodes[i].name.clone(), i);
    let mut ready: BTreeSet<(u8, String, usize)> = (0..nodes.len())
        .filter(|&i| waiting[i] == 0)
        .map(label)
        .collect();
    let mut pending: BTreeSet<(u8, String, usize)> = (0..nodes.len())
        .filter(|&i| waiting[i] > 0)
        .map(label)
        .collect();
    let mut out = Vec::with_capacity(nodes.len());
    while out.len() < nodes.len() {
        let next = match ready.pop_first() {
            Some(n) => n,
            None => {
                let n = pending
                    .pop_first()
                    .expect("nodes left while none is pending");
                waiting[n.2] = 0;
                n
            }
        };
        let i = next.2;
        out.push(i);
        for &j in &needed_by[i] {
            if waiting[j] > 0 {
                waiting[j] -= 1;
                if waiting[j] == 0 {
                    let l = label(j);
                    pending.remove(&l);
                    ready.insert(l);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(oid: u32) -> ObjKey {
        ObjKey { class: 1, oid }
    }

    fn node(oid: u32, rank: u8) -> Node {
        Node {
            key: key(oid),
            rank,
            name: format!("n{oid}"),
        }
    }

    fn dep(a: u32, b: u32) -> Dependency {
        Dependency {
            dependent: key(a),
            referenced: key(b),
        }
    }

    #[test]
    fn dependencies_beat_ranks_and_cycles_still_finish() {
        // A function (rank 5) that reads a table (rank 7) comes after it.
        let nodes = vec![node(1, 5), node(2, 7), node(3, 1)];
        assert_eq!(sorted(&nodes, &[dep(1, 2)]), vec![2, 1, 0]);
        let cyclic = vec![node(1, 5), node(2, 5), node(3, 9)];
        let order = sorted(&cyclic, &[dep(1, 2), dep(2, 1), dep(3, 1)]);
        assert_eq!(order.len(), 3);
        assert_eq!(order[2], 2);
    }
}
