//! Catalog → SQL for the pre-data and post-data sections of a restore. Pure: no I/O.
//!
//! Every name is schema-qualified and quoted, so the statements do not depend on the
//! target's `search_path`.

use crate::catalog::{
    quote_ident, quote_literal, Catalog, Column, ConstraintKind, IdentityKind, Sequence, Table,
};

/// Post-data statements in the order their dependencies allow; statements within one
/// step are independent and may run in parallel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PostData {
    /// Primary keys, unique and exclusion constraints, plain indexes.
    pub indexes: Vec<String>,
    /// Foreign keys and NOT VALID checks: need the referenced keys from the first step.
    /// Grouped so that no two groups touch the same table: adding a foreign key locks
    /// both of its tables, and two such statements in parallel can deadlock. Groups
    /// run in parallel, the statements of one group one after another.
    pub constraint_groups: Vec<Vec<String>>,
    /// Comments on what the first two steps created.
    pub comments: Vec<String>,
}

fn comment(kind: &str, target: &str, text: &Option<String>) -> Option<String> {
    text.as_ref()
        .map(|t| format!("COMMENT ON {kind} {target} IS {}", quote_literal(t)))
}

fn sequence_options(s: &Sequence) -> String {
    format!(
        "START WITH {} INCREMENT BY {} MINVALUE {} MAXVALUE {} CACHE {}{}",
        s.start,
        s.increment,
        s.min,
        s.max,
        s.cache,
        if s.cycle { " CYCLE" } else { " NO CYCLE" }
    )
}

fn identity_sequence<'a>(cat: &'a Catalog, t: &Table, c: &Column) -> Option<&'a Sequence> {
    cat.sequences.iter().find(|s| {
        s.identity
            && s.owned_by
                .as_ref()
                .is_some_and(|o| o.table == t.name && o.column == c.name)
    })
}

fn column_sql(cat: &Catalog, t: &Table, c: &Column) -> String {
    let mut s = format!("{} {}", quote_ident(&c.name), c.type_sql);
    if let Some(coll) = &c.collation {
        s.push_str(&format!(" COLLATE {coll}"));
    }
    if let Some(expr) = &c.generated {
        let kind = if c.generated_virtual {
            "VIRTUAL"
        } else {
            "STORED"
        };
        s.push_str(&format!(" GENERATED ALWAYS AS ({expr}) {kind}"));
    } else if let Some(d) = &c.default {
        s.push_str(&format!(" DEFAULT {d}"));
    }
    if c.not_null {
        s.push_str(" NOT NULL");
    }
    if let Some(kind) = c.identity {
        let how = match kind {
            IdentityKind::Always => "ALWAYS",
            IdentityKind::ByDefault => "BY DEFAULT",
        };
        s.push_str(&format!(" GENERATED {how} AS IDENTITY"));
        if let Some(seq) = identity_sequence(cat, t, c) {
            s.push_str(&format!(
                " (SEQUENCE NAME {} {})",
                seq.name,
                sequence_options(seq)
            ));
        }
    }
    s
}

/// A constraint that can be created before the data: a valid CHECK.
fn is_pre_data_check(kind: ConstraintKind, def: &str) -> bool {
    kind == ConstraintKind::Check && !def.ends_with("NOT VALID")
}

/// Schemas, types, sequences, tables (with defaults, NOT NULL, identity and valid
/// CHECK constraints), sequence ownership and comments.
pub fn pre_data(cat: &Catalog) -> Vec<String> {
    let mut out = Vec::new();
    for s in &cat.schemas {
        out.push(format!("CREATE SCHEMA {}", quote_ident(&s.name)));
        out.extend(comment("SCHEMA", &quote_ident(&s.name), &s.comment));
    }
    for e in &cat.enums {
        let labels: Vec<String> = e.labels.iter().map(|l| quote_literal(l)).collect();
        out.push(format!(
            "CREATE TYPE {} AS ENUM ({})",
            e.name,
            labels.join(", ")
        ));
        out.extend(comment("TYPE", &e.name.to_string(), &e.comment));
    }
    for s in cat.sequences.iter().filter(|s| !s.identity) {
        out.push(format!(
            "CREATE SEQUENCE {} AS {} {}",
            s.name,
            s.data_type,
            sequence_options(s)
        ));
    }
    for t in &cat.tables {
        let mut items: Vec<String> = t.columns.iter().map(|c| column_sql(cat, t, c)).collect();
        for c in &t.constraints {
            if is_pre_data_check(c.kind, &c.definition) {
                items.push(format!(
                    "CONSTRAINT {} {}",
                    quote_ident(&c.name),
                    c.definition
                ));
            }
        }
        out.push(format!(
            "CREATE TABLE {} (\n    {}\n)",
            t.name,
            items.join(",\n    ")
        ));
        out.extend(comment("TABLE", &t.name.to_string(), &t.comment));
        for c in &t.columns {
            let target = format!("{}.{}", t.name, quote_ident(&c.name));
            out.extend(comment("COLUMN", &target, &c.comment));
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

/// Keys, indexes, foreign keys and the comments on them.
pub fn post_data(cat: &Catalog) -> PostData {
    let mut p = PostData::default();
    let mut groups = TableGroups::new(cat);
    let mut grouped: Vec<(usize, String)> = Vec::new();
    for (ti, t) in cat.tables.iter().enumerate() {
        for c in &t.constraints {
            let target = format!("{} ON {}", quote_ident(&c.name), t.name);
            p.comments
                .extend(comment("CONSTRAINT", &target, &c.comment));
            if is_pre_data_check(c.kind, &c.definition) {
                continue;
            }
            let stmt = format!(
                "ALTER TABLE {} ADD CONSTRAINT {} {}",
                t.name,
                quote_ident(&c.name),
                c.definition
            );
            match c.kind {
                ConstraintKind::PrimaryKey | ConstraintKind::Unique | ConstraintKind::Exclusion => {
                    p.indexes.push(stmt)
                }
                ConstraintKind::ForeignKey | ConstraintKind::Check => {
                    if let Some(r) = &c.references {
                        groups.join(ti, r);
                    }
                    grouped.push((ti, stmt));
                }
            }
        }
        for i in &t.indexes {
            p.indexes.push(i.definition.clone());
            let target = format!("{}.{}", quote_ident(&t.name.schema), quote_ident(&i.name));
            p.comments.extend(comment("INDEX", &target, &i.comment));
        }
    }
    let mut by_root: std::collections::BTreeMap<usize, Vec<String>> = Default::default();
    for (ti, stmt) in grouped {
        by_root.entry(groups.root(ti)).or_default().push(stmt);
    }
    p.constraint_groups = by_root.into_values().collect();
    p
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
    use crate::catalog::{Constraint, Index, OwnedBy, QualName};

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
                comment: None,
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
                }],
                constraints: vec![
                    Constraint {
                        name: "patients_pkey".into(),
                        kind: ConstraintKind::PrimaryKey,
                        definition: "PRIMARY KEY (id)".into(),
                        references: None,
                        comment: None,
                    },
                    Constraint {
                        name: "id_positive".into(),
                        kind: ConstraintKind::Check,
                        definition: "CHECK ((id > 0))".into(),
                        references: None,
                        comment: None,
                    },
                ],
                indexes: vec![Index {
                    name: "i".into(),
                    definition: "CREATE INDEX i ON public.patients USING btree (id)".into(),
                    comment: None,
                }],
                comment: None,
                estimated_bytes: 0,
                heap_pages: 0,
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
            comment: None,
        };
        let table = |name: &str, fks: Vec<Constraint>| Table {
            oid: 0,
            name: QualName::new("public", name),
            columns: vec![],
            constraints: fks,
            indexes: vec![],
            comment: None,
            estimated_bytes: 0,
            heap_pages: 0,
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
