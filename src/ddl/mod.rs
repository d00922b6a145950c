//! Catalog → SQL for the pre-data and post-data sections of a restore. Pure: no I/O.
//!
//! Every name is schema-qualified and quoted, so the statements do not depend on the
//! target's `search_path`. Objects are created in `pg_depend` order.

mod acl;
mod order;
mod table;

use std::collections::HashMap;

use crate::catalog::{
    quote_ident, quote_literal, Catalog, ConstraintKind, ObjKey, SchemaObject, Section, PG_CLASS,
    PG_TYPE,
};
use order::Node;
use table::{is_pre_data_check, sequence_options};

/// Post-data statements in the order their dependencies allow; statements within one
/// step are independent and may run in parallel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PostData {
    /// Primary keys, unique and exclusion constraints, plain indexes.
    pub indexes: Vec<String>,
    /// Partition indexes joined to their parent's index, one after another: they need
    /// every index of the first step.
    pub attach: Vec<String>,
    /// Foreign keys and NOT VALID checks: need the referenced keys from the first step.
    /// Grouped so that no two groups touch the same table: adding a foreign key locks
    /// both of its tables, and two such statements in parallel can deadlock. Groups
    /// run in parallel, the statements of one group one after another.
    pub constraint_groups: Vec<Vec<String>>,
    /// Everything else, in order: table settings, triggers, rules, policies,
    /// statistics, materialized view contents, comments, and event triggers last.
    pub rest: Vec<String>,
}

fn comment(kind: &str, target: &str, text: &Option<String>) -> Option<String> {
    text.as_ref()
        .map(|t| format!("COMMENT ON {kind} {target} IS {}", quote_literal(t)))
}

fn owner(target: &str, owner: &Option<String>) -> Option<String> {
    owner
        .as_ref()
        .map(|o| format!("ALTER {target} OWNER TO {}", quote_ident(o)))
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
        "trigger" | "rule" | "policy" => 22,
        "materialized view data" => 25,
        "event trigger" => 30,
        _ => 15,
    }
}

/// One object's statements: create, owner, comment.
fn object_statements(o: &SchemaObject) -> Vec<String> {
    let mut out = o.create.clone();
    if let Some(t) = &o.target {
        out.extend(owner(t, &o.owner));
        if let Some(c) = &o.comment {
            out.push(format!("COMMENT ON {t} IS {}", quote_literal(c)));
        }
    }
    out
}

/// Schemas, extensions, types, functions, sequences, tables (with defaults, NOT NULL,
/// identity and valid CHECK constraints), views and materialized views (empty), in
/// dependency order; then partitions attached, sequence ownership and privileges.
pub fn pre_data(cat: &Catalog) -> Vec<String> {
    let mut out = Vec::new();
    for s in &cat.schemas {
        let name = quote_ident(&s.name);
        if s.existing {
            // The target's own comment may differ: set it, or clear it.
            let text = s.comment.as_deref().map_or("NULL".into(), quote_literal);
            out.push(format!("COMMENT ON SCHEMA {name} IS {text}"));
        } else {
            out.push(format!("CREATE SCHEMA {name}"));
            out.extend(comment("SCHEMA", &name, &s.comment));
        }
        out.extend(owner(&format!("SCHEMA {name}"), &s.owner));
    }
    let mut nodes: Vec<Node> = Vec::new();
    let mut stmts: Vec<Vec<String>> = Vec::new();
    for e in &cat.enums {
        let labels: Vec<String> = e.labels.iter().map(|l| quote_literal(l)).collect();
        let mut s = vec![format!(
            "CREATE TYPE {} AS ENUM ({})",
            e.name,
            labels.join(", ")
        )];
        s.extend(owner(&format!("TYPE {}", e.name), &e.owner));
        s.extend(comment("TYPE", &e.name.to_string(), &e.comment));
        nodes.push(Node {
            key: ObjKey {
                class: PG_TYPE,
                oid: e.oid,
            },
            rank: rank("enum"),
            name: e.name.plain(),
        });
        stmts.push(s);
    }
    for s in cat.sequences.iter().filter(|s| !s.identity) {
        let mut v = vec![format!(
            "CREATE {}SEQUENCE {} AS {} {}",
            if s.unlogged { "UNLOGGED " } else { "" },
            s.name,
            s.data_type,
            sequence_options(s)
        )];
        v.extend(owner(&format!("SEQUENCE {}", s.name), &s.owner));
        nodes.push(Node {
            key: ObjKey {
                class: PG_CLASS,
                oid: s.oid,
            },
            rank: rank("sequence"),
            name: s.name.plain(),
        });
        stmts.push(v);
    }
    for t in &cat.tables {
        nodes.push(Node {
            key: t.key(),
            rank: rank("table"),
            name: t.name.plain(),
        });
        stmts.push(table::create(cat, t));
    }
    for o in cat.objects.iter().filter(|o| o.section == Section::PreData) {
        nodes.push(Node {
            key: o.key,
            rank: rank(&o.kind),
            name: o.name.clone(),
        });
        stmts.push(object_statements(o));
    }
    for i in order::sorted(&nodes, &cat.dependencies) {
        out.append(&mut stmts[i]);
    }
    for t in &cat.tables {
        if let Some(p) = &t.partition_of {
            out.push(format!(
                "ALTER TABLE ONLY {} ATTACH PARTITION {} {}",
                p.parent, t.name, p.bound
            ));
        }
    }
    for s in &cat.sequences {
        if let (false, Some(o)) = (s.identity, &s.owned_by) {
            out.push(format!(
                "ALTER SEQUENCE {} OWNED BY {}.{}",
                s.name,
                o.table,
                quote_ident(&o.column)
            ));
        }
        out.extend(comment("SEQUENCE", &s.name.to_string(), &s.comment));
    }
    out.extend(privileges(cat));
    out
}

/// Every `GRANT`/`REVOKE`, after all objects exist (a grant may name any of them).
fn privileges(cat: &Catalog) -> Vec<String> {
    let mut out = Vec::new();
    for s in &cat.schemas {
        match (&s.acl, s.existing) {
            (Some(a), true) => out.extend(acl::replace_statements(a, s.owner.as_deref())),
            (Some(a), false) => out.extend(acl::statements(a, s.owner.as_deref())),
            (None, _) => {}
        }
    }
    for e in &cat.enums {
        if let Some(a) = &e.acl {
            out.extend(acl::statements(a, e.owner.as_deref()));
        }
    }
    for s in &cat.sequences {
        if let Some(a) = &s.acl {
            out.extend(acl::statements(a, s.owner.as_deref()));
        }
    }
    for t in &cat.tables {
        if let Some(a) = &t.acl {
            out.extend(acl::statements(a, t.owner.as_deref()));
        }
        let target = format!("TABLE {}", t.name);
        for c in &t.columns {
            out.extend(acl::column_statements(
                &target,
                &c.name,
                &c.acl,
                t.owner.as_deref(),
            ));
        }
    }
    for o in &cat.objects {
        if let Some(a) = &o.acl {
            out.extend(acl::statements(a, o.owner.as_deref()));
        }
    }
    out
}

/// Sequence values as they were at backup time.
pub fn sequence_values(cat: &Catalog) -> Vec<String> {
    cat.sequences
        .iter()
        .map(|s| {
            format!(
                "SELECT pg_catalog.setval({}::regclass, {}, {})",
                quote_literal(&s.name.to_string()),
                s.last_value,
                s.is_called
            )
        })
        .collect()
}

/// Keys, indexes, foreign keys, table settings, triggers, rules, policies and the
/// other post-data objects.
pub fn post_data(cat: &Catalog) -> PostData {
    let mut p = PostData::default();
    let mut groups = TableGroups::new(cat);
    let mut grouped: Vec<(usize, String)> = Vec::new();
    let mut comments = Vec::new();
    for (ti, t) in cat.tables.iter().enumerate() {
        let partition = t.partition_of.is_some();
        for c in &t.constraints {
            let target = format!("{} ON {}", quote_ident(&c.name), t.name);
            comments.extend(comment("CONSTRAINT", &target, &c.comment));
            if is_pre_data_check(c.kind, &c.definition) {
                continue;
            }
            match c.kind {
                ConstraintKind::PrimaryKey | ConstraintKind::Unique | ConstraintKind::Exclusion => {
                    p.indexes.push(format!(
                        "ALTER TABLE ONLY {} ADD CONSTRAINT {} {}",
                        t.name,
                        quote_ident(&c.name),
                        c.definition
                    ));
                    if let Some(parent) = &c.parent_index {
                        p.attach.push(format!(
                            "ALTER INDEX {parent} ATTACH PARTITION {}.{}",
                            quote_ident(&t.name.schema),
                            quote_ident(&c.name)
                        ));
                    }
                }
                ConstraintKind::ForeignKey | ConstraintKind::Check => {
                    // Inherited NOT VALID checks come from the parent's statement.
                    if !c.local && !partition {
                        continue;
                    }
                    if let Some(r) = &c.references {
                        groups.join(ti, r);
                    }
                    grouped.push((
                        ti,
                        format!(
                            "ALTER TABLE {} ADD CONSTRAINT {} {}",
                            t.name,
                            quote_ident(&c.name),
                            c.definition
                        ),
                    ));
                }
            }
        }
        for c in t.columns.iter().filter(|c| c.not_null && !c.not_null_valid) {
            let name = c.not_null_name.as_deref().unwrap_or(&c.name);
            grouped.push((
                ti,
                format!(
                    "ALTER TABLE {} ADD CONSTRAINT {} NOT NULL {} NOT VALID",
                    t.name,
                    quote_ident(name),
                    quote_ident(&c.name)
                ),
            ));
        }
        for i in &t.indexes {
            p.indexes.push(i.definition.clone());
            let qualified = format!("{}.{}", quote_ident(&t.name.schema), quote_ident(&i.name));
            if let Some(parent) = &i.parent_index {
                p.attach
                    .push(format!("ALTER INDEX {parent} ATTACH PARTITION {qualified}"));
            }
            for (col, target) in &i.statistics {
                p.rest.push(format!(
                    "ALTER INDEX {qualified} ALTER COLUMN {col} SET STATISTICS {target}"
                ));
            }
            comments.extend(comment("INDEX", &qualified, &i.comment));
        }
        p.rest.extend(table_settings(t));
    }
    let mut by_root: std::collections::BTreeMap<usize, Vec<String>> = Default::default();
    for (ti, stmt) in grouped {
        by_root.entry(groups.root(ti)).or_default().push(stmt);
    }
    p.constraint_groups = by_root.into_values().collect();

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
    let mut last = Vec::new();
    for i in order::sorted(&nodes, &deps) {
        if posts[i].kind == "event trigger" {
            last.extend(object_statements(posts[i]));
        } else {
            p.rest.extend(object_statements(posts[i]));
        }
    }
    p.rest.extend(comments);
    p.rest.extend(last);
    p
}

/// Settings that would slow the load or get in its way: clustering, replica
/// identity, row-level security.
fn table_settings(t: &crate::catalog::Table) -> Vec<String> {
    let only = format!("ALTER TABLE ONLY {}", t.name);
    let mut out = Vec::new();
    if let Some(i) = &t.cluster_on {
        out.push(format!("{only} CLUSTER ON {}", quote_ident(i)));
    }
    if let Some(r) = &t.replica_identity {
        out.push(format!("{only} REPLICA IDENTITY {r}"));
    }
    if t.row_security {
        out.push(format!("{only} ENABLE ROW LEVEL SECURITY"));
    }
    if t.force_row_security {
        out.push(format!("{only} FORCE ROW LEVEL SECURITY"));
    }
    out
}

/// Post-data objects depend on each other through their tables: a materialized
/// view's contents need the contents of the views it reads first. Refresh objects
/// carry class 0 and the view's OID; their order follows the views' dependencies.
fn refresh_dependencies(cat: &Catalog, posts: &[&SchemaObject]) -> Vec<crate::catalog::Dependency> {
    let refresh: HashMap<u32, ObjKey> = posts
        .iter()
        .filter(|o| o.key.class == 0)
        .map(|o| (o.key.oid, o.key))
        .collect();
    let mut out: Vec<crate::catalog::Dependency> = cat.dependencies.clone();
    for d in &cat.dependencies {
        if let (Some(&a), Some(&b)) = (
            refresh
                .get(&d.dependent.oid)
                .filter(|_| d.dependent.class == PG_CLASS),
            refresh
                .get(&d.referenced.oid)
                .filter(|_| d.referenced.class == PG_CLASS),
        ) {
            out.push(crate::catalog::Dependency {
                dependent: a,
                referenced: b,
            });
        }
    }
    out
}

/// Union-find over tables: tables linked by a foreign key end up in one group.
struct TableGroups<'a> {
    cat: &'a Catalog,
    parent: Vec<usize>,
}

impl<'a> TableGroups<'a> {
    fn new(cat: &'a Catalog) -> Self {
        TableGroups {
            cat,
            parent: (0..cat.tables.len()).collect(),
        }
    }

    fn root(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    fn join(&mut self, table: usize, referenced: &crate::catalog::QualName) {
        if let Some(j) = self.cat.tables.iter().position(|t| &t.name == referenced) {
            let (a, b) = (self.root(table), self.root(j));
            self.parent[a.max(b)] = a.min(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{
        Column, Constraint, IdentityKind, Index, OwnedBy, QualName, Sequence, Table,
    };

    fn sample() -> Catalog {
        let t = QualName::new("public", "patients");
        Catalog {
            sequences: vec![Sequence {
                name: QualName::new("public", "patients_id_seq"),
                data_type: "bigint".into(),
                start: 1,
                increment: 1,
                min: 1,
                max: i64::MAX,
                cache: 1,
                cycle: false,
                last_value: 42,
                is_called: true,
                owned_by: Some(OwnedBy {
                    table: t.clone(),
                    column: "id".into(),
                }),
                identity: true,
                ..Default::default()
            }],
            tables: vec![Table {
                oid: 1,
                name: t,
                columns: vec![Column {
                    name: "id".into(),
                    type_sql: "bigint".into(),
                    type_oid: 20,
                    not_null: true,
                    default: None,
                    identity: Some(IdentityKind::Always),
                    generated: None,
                    generated_virtual: false,
                    collation: None,
                    comment: Some("it's the id".into()),
                    local: true,
                    ..Default::default()
                }],
                constraints: vec![
                    Constraint {
                        name: "patients_pkey".into(),
                        kind: ConstraintKind::PrimaryKey,
                        definition: "PRIMARY KEY (id)".into(),
                        references: None,
                        comment: None,
                        local: true,
                        parent_index: None,
                    },
                    Constraint {
                        name: "id_positive".into(),
                        kind: ConstraintKind::Check,
                        definition: "CHECK ((id > 0))".into(),
                        references: None,
                        comment: None,
                        local: true,
                        parent_index: None,
                    },
                ],
                indexes: vec![Index {
                    name: "i".into(),
                    definition: "CREATE INDEX i ON public.patients USING btree (id)".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn identity_checks_and_keys_land_in_the_right_section() {
        let cat = sample();
        let pre = pre_data(&cat).join(";\n");
        assert!(
            pre.contains(
                "GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME \"public\".\"patients_id_seq\""
            ),
            "{pre}"
        );
        assert!(
            pre.contains("CONSTRAINT \"id_positive\" CHECK ((id > 0))"),
            "{pre}"
        );
        assert!(
            !pre.contains("CREATE SEQUENCE"),
            "identity sequences come with their column"
        );
        assert!(pre.contains("IS 'it''s the id'"));
        let post = post_data(&cat);
        assert_eq!(post.indexes.len(), 2);
        assert!(post.constraint_groups.is_empty());
        assert_eq!(
            sequence_values(&cat),
            vec!["SELECT pg_catalog.setval('\"public\".\"patients_id_seq\"'::regclass, 42, true)"]
        );
    }

    #[test]
    fn foreign_keys_that_share_a_table_never_run_in_parallel() {
        let fk = |name: &str, to: &str| Constraint {
            name: name.into(),
            kind: ConstraintKind::ForeignKey,
            definition: format!("FOREIGN KEY (x) REFERENCES {to}(id)"),
            references: Some(QualName::new("public", to)),
            local: true,
            ..Default::default()
        };
        let table = |name: &str, fks: Vec<Constraint>| Table {
            oid: 0,
            name: QualName::new("public", name),
            columns: vec![],
            constraints: fks,
            ..Default::default()
        };
        let cat = Catalog {
            tables: vec![
                table("a", vec![fk("a_b", "b")]),
                table("b", vec![fk("b_a", "a")]),
                table("c", vec![fk("c_d", "d")]),
                table("d", vec![]),
                table("e", vec![fk("e_c", "c")]),
            ],
            ..Default::default()
        };
        let mut groups: Vec<usize> = post_data(&cat)
            .constraint_groups
            .iter()
            .map(Vec::len)
            .collect();
        groups.sort();
        assert_eq!(groups, vec![2, 2], "a<->b together, c->d and e->c together");
    }
}
