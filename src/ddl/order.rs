//! Dependency order: every object after the objects it needs, ties broken by a rank
//! per kind and then by name, so the same catalog always gives the same script.
//! Creation and `--clean` read the same lists, one forwards and one backwards, so a
//! drop can never disagree with the creation it undoes.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::catalog::{
    Catalog, Dependency, EnumType, ObjKey, SchemaObject, Section, Sequence, Table, PG_CLASS,
    PG_TYPE,
};

/// One object of the pre-data section that takes part in the dependency order.
/// Schemas do not: they come before everything and go after everything.
#[derive(Clone, Copy)]
pub enum PreObject<'a> {
    Enum(&'a EnumType),
    /// Not an identity sequence: those come with their column.
    Sequence(&'a Sequence),
    Table(&'a Table),
    Object(&'a SchemaObject),
}

/// The pre-data objects in creation order.
pub fn pre_data(cat: &Catalog) -> Vec<PreObject<'_>> {
    let mut items = Vec::new();
    let mut nodes = Vec::new();
    let mut add = |item, key, kind: &str, name: String| {
        items.push(item);
        nodes.push(Node {
            key,
            rank: rank(kind),
            name,
        });
    };
    for e in &cat.enums {
        let key = ObjKey {
            class: PG_TYPE,
            oid: e.oid,
        };
        add(PreObject::Enum(e), key, "enum", e.name.plain());
    }
    for s in cat.sequences.iter().filter(|s| !s.identity) {
        let key = ObjKey {
            class: PG_CLASS,
            oid: s.oid,
        };
        add(PreObject::Sequence(s), key, "sequence", s.name.plain());
    }
    for t in &cat.tables {
        add(PreObject::Table(t), t.key(), "table", t.name.plain());
    }
    for o in cat.objects.iter().filter(|o| o.section == Section::PreData) {
        add(PreObject::Object(o), o.key, &o.kind, o.name.clone());
    }
    sorted(&nodes, &cat.dependencies)
        .into_iter()
        .map(|i| items[i])
        .collect()
}

/// The post-data schema objects in creation order.
pub fn post_data(cat: &Catalog) -> Vec<&SchemaObject> {
    let posts: Vec<&SchemaObject> = cat
        .objects
        .iter()
        .filter(|o| o.section == Section::PostData)
        .collect();
    let nodes: Vec<Node> = posts
        .iter()
        .map(|o| Node {
            key: o.key,
            rank: rank(&o.kind),
            name: o.name.clone(),
        })
        .collect();
    let deps = refresh_dependencies(cat, &posts);
    sorted(&nodes, &deps)
        .into_iter()
        .map(|i| posts[i])
        .collect()
}

/// Tie-break rank of an object kind when dependencies leave a choice.
fn rank(kind: &str) -> u8 {
    match kind {
        "extension" => 1,
        "collation" => 2,
        "enum" => 3,
        "domain" | "composite type" | "range type" => 4,
        "function" | "procedure" => 5,
        "sequence" => 7,
        "table" => 8,
        "view" => 9,
        "materialized view" => 10,
        "index" => 20,
        "view definition" => 21,
        "trigger" | "rule" | "policy" => 22,
        "trigger state" => 23,
        "materialized view data" => 25,
        "event trigger" => 30,
        _ => 15,
    }
}

/// Post-data objects depend on each other through relations, which `pg_depend`
/// links to each other and not to the post-data objects. A materialized view's
/// contents (class 0, the view's OID) need its own definition when that comes after
/// the keys, the definitions of the views it reads that come after the keys, and the
/// contents of the materialized views it reads, also through plain views between
/// them: refreshing it before those would store placeholder rows or fail.
fn refresh_dependencies(cat: &Catalog, posts: &[&SchemaObject]) -> Vec<Dependency> {
    let in_post: HashSet<ObjKey> = posts.iter().map(|o| o.key).collect();
    let mut reads: HashMap<ObjKey, Vec<ObjKey>> = HashMap::new();
    for d in &cat.dependencies {
        reads.entry(d.dependent).or_default().push(d.referenced);
    }
    let mut out: Vec<Dependency> = cat.dependencies.clone();
    for refresh in posts.iter().map(|o| o.key).filter(|k| k.class == 0) {
        let start = ObjKey {
            class: PG_CLASS,
            oid: refresh.oid,
        };
        let mut seen = HashSet::from([start]);
        let mut stack = vec![start];
        while let Some(k) = stack.pop() {
            let contents = ObjKey {
                class: 0,
                oid: k.oid,
            };
            if k != start && k.class == PG_CLASS && in_post.contains(&contents) {
                // That refresh waits for what it reads itself.
                out.push(Dependency {
                    dependent: refresh,
                    referenced: contents,
                });
                continue;
            }
            if in_post.contains(&k) {
                out.push(Dependency {
                    dependent: refresh,
                    referenced: k,
                });
            }
            for &r in reads.get(&k).into_iter().flatten() {
                if seen.insert(r) {
                    stack.push(r);
                }
            }
        }
    }
    out
}

/// What the sorter needs to know of one object.
struct Node {
    key: ObjKey,
    rank: u8,
    name: String,
}

/// Indexes into `nodes` in creation order. Edges to unknown keys are ignored; a
/// cycle (which `pg_depend` should not contain between the objects we create) is
/// broken at the lowest-ranked object left, so the order is still total.
fn sorted(nodes: &[Node], deps: &[Dependency]) -> Vec<usize> {
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
