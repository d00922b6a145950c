//! Catalog → SQL for the pre-data and post-data sections of a restore, and the drops
//! `restore --clean` runs before them. Pure: no I/O.
//!
//! Every name is schema-qualified and quoted, so the statements do not depend on the
//! target's `search_path`. Objects are created in `pg_depend` order.

mod acl;
mod clean;
mod database;
mod large_object;
mod order;
mod roles;
mod statistics;
mod table;

use crate::catalog::{
    quote_ident, quote_literal, Catalog, ConstraintKind, SchemaObject, TableKind,
};
pub use clean::drops;
pub use database::{create_database, database_privileges, database_settings};
pub use large_object::large_object_statements;
use order::PreObject;
pub use roles::{create_roles, map_owner_and_acl, map_roles, named_roles};
pub use statistics::{import_statistics, IMPORT_FROM_VERSION};
use table::{is_pre_data_check, sequence_options};

/// What a restore reproduces besides the objects themselves. Turning a part off is
/// pg_restore's `--no-owner` / `--no-privileges`: for a target server whose roles
/// differ from the source's, where an `ALTER … OWNER TO` or a `GRANT` naming a role
/// it lacks would fail the restore. Both are on by default: a restore into a copy of
/// the source server should give back exactly what was backed up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DdlOptions {
    /// Off: no `ALTER … OWNER TO`, and grants another role made are made by the
    /// restoring user instead of as that role (`SET ROLE`): everything then belongs to
    /// whoever runs the restore.
    pub owners: bool,
    /// Off: no `GRANT`/`REVOKE` at all (object, column and default privileges), as
    /// `pg_restore -x`: the objects get the defaults of the target.
    pub privileges: bool,
}

impl Default for DdlOptions {
    fn default() -> Self {
        DdlOptions {
            owners: true,
            privileges: true,
        }
    }
}

impl DdlOptions {
    fn owner(&self, target: &str, owner: &Option<String>) -> Option<String> {
        owner
            .as_ref()
            .filter(|_| self.owners)
            .map(|o| format!("ALTER {target} OWNER TO {}", quote_ident(o)))
    }
}

/// The kind of the objects that hold `ALTER DEFAULT PRIVILEGES` statements.
const DEFAULT_PRIVILEGES: &str = "default privileges";

/// Post-data statements in the order their dependencies allow; statements within one
/// step are independent and may run in parallel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PostData {
    /// Primary keys, unique and exclusion constraints, plain indexes, each with its
    /// table's position in the catalog.
    pub indexes: Vec<(usize, String)>,
    /// Partition indexes joined to their parent's index, one after another: they need
    /// every index of the first step.
    pub attach: Vec<String>,
    /// Foreign keys and NOT VALID checks: need the referenced keys from the first step.
    /// Grouped so that no two groups touch the same table: adding a foreign key locks
    /// both of its tables, and two such statements in parallel can deadlock. Groups
    /// run in parallel, the statements of one group one after another.
    pub constraint_groups: Vec<ConstraintGroup>,
    /// Everything else, in order: table settings, triggers, rules, policies,
    /// statistics, materialized view contents, comments, and event triggers last.
    pub rest: Vec<String>,
}

/// Foreign keys of tables this large are checked apart from their addition.
const SEPARATE_CHECK_FROM_BYTES: u64 = 8 << 20;

/// The constraints of tables linked by foreign keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConstraintGroup {
    /// Run one after another, each with the table it is on. A foreign key of an
    /// ordinary table is added NOT VALID: adding one locks the referenced table
    /// against every other such addition and against its writers, so the additions
    /// are kept short.
    pub add: Vec<(usize, String)>,
    /// Then each foreign key added NOT VALID is checked, with the table's position:
    /// a check locks neither table against the others, so they may all run at once
    /// (they hold the referencing table against ANALYZE).
    pub validate: Vec<(usize, String)>,
}

impl ConstraintGroup {
    /// Every statement, in an order that runs.
    pub fn statements(&self) -> impl Iterator<Item = &String> {
        self.add.iter().chain(&self.validate).map(|(_, s)| s)
    }
}

fn comment(kind: &str, target: &str, text: &Option<String>) -> Option<String> {
    text.as_ref()
        .map(|t| format!("COMMENT ON {kind} {target} IS {}", quote_literal(t)))
}

/// One object's statements: create, owner, comment. Without privileges, the grants
/// some `create` lists hold (a foreign table's column privileges) are left out too.
fn object_statements(o: &SchemaObject, opts: &DdlOptions) -> Vec<String> {
    if !opts.privileges && o.kind == DEFAULT_PRIVILEGES {
        return Vec::new();
    }
    let grant = |s: &&String| s.starts_with("GRANT ") || s.starts_with("REVOKE ");
    let mut out: Vec<String> = o
        .create
        .iter()
        .filter(|s| opts.privileges || !grant(s))
        .cloned()
        .collect();
    if let Some(t) = &o.target {
        out.extend(opts.owner(t, &o.owner));
        if let Some(c) = &o.comment {
            out.push(format!("COMMENT ON {t} IS {}", quote_literal(c)));
        }
    }
    out
}

/// The statements that create one object of the dependency order.
fn create(cat: &Catalog, item: PreObject, opts: &DdlOptions) -> Vec<String> {
    match item {
        PreObject::Enum(e) => {
            let labels: Vec<String> = e.labels.iter().map(|l| quote_literal(l)).collect();
            let mut s = vec![format!(
                "CREATE TYPE {} AS ENUM ({})",
                e.name,
                labels.join(", ")
            )];
            s.extend(opts.owner(&format!("TYPE {}", e.name), &e.owner));
            s.extend(comment("TYPE", &e.name.to_string(), &e.comment));
            s
        }
        PreObject::Sequence(s) => {
            let mut v = vec![format!(
                "CREATE {}SEQUENCE {} AS {} {}",
                if s.unlogged { "UNLOGGED " } else { "" },
                s.name,
                s.data_type,
                sequence_options(s)
            )];
            v.extend(opts.owner(&format!("SEQUENCE {}", s.name), &s.owner));
            v
        }
        PreObject::Table(t) => table::create(cat, t, opts),
        PreObject::Object(o) => object_statements(o, opts),
    }
}

/// Schemas, extensions, types, functions, sequences, tables (with defaults, NOT NULL,
/// identity and valid CHECK constraints), views and materialized views (empty), in
/// dependency order; then partitions attached, sequence ownership and privileges.
pub fn pre_data(cat: &Catalog, opts: &DdlOptions) -> Vec<String> {
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
        out.extend(opts.owner(&format!("SCHEMA {name}"), &s.owner));
    }
    for item in order::pre_data(cat) {
        out.extend(create(cat, item, opts));
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
    if opts.privileges {
        out.extend(privileges(cat, opts.owners));
    }
    out
}

/// Every `GRANT`/`REVOKE`, after all objects exist (a grant may name any of them).
/// `set_role`: replay a grant someone other than the owner made as its grantor.
fn privileges(cat: &Catalog, set_role: bool) -> Vec<String> {
    let mut out = Vec::new();
    for s in &cat.schemas {
        let owner = s.owner.as_deref();
        match (&s.acl, s.existing) {
            (Some(a), true) => out.extend(acl::replace_statements(a, owner, set_role)),
            (Some(a), false) => out.extend(acl::statements(a, owner, set_role)),
            (None, _) => {}
        }
    }
    for e in &cat.enums {
        if let Some(a) = &e.acl {
            out.extend(acl::statements(a, e.owner.as_deref(), set_role));
        }
    }
    for s in &cat.sequences {
        if let Some(a) = &s.acl {
            out.extend(acl::statements(a, s.owner.as_deref(), set_role));
        }
    }
    for t in &cat.tables {
        let owner = t.owner.as_deref();
        if let Some(a) = &t.acl {
            out.extend(acl::statements(a, owner, set_role));
        }
        let target = format!("TABLE {}", t.name);
        for c in &t.columns {
            out.extend(acl::column_statements(
                &target, &c.name, &c.acl, owner, set_role,
            ));
        }
    }
    for o in &cat.objects {
        if let Some(a) = &o.acl {
            out.extend(acl::statements(a, o.owner.as_deref(), set_role));
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
pub fn post_data(cat: &Catalog, opts: &DdlOptions) -> PostData {
    let mut p = PostData::default();
    let groups = cat.fk_components();
    // (table, statement, the check that follows it when it is added NOT VALID)
    let mut grouped: Vec<(usize, String, Option<String>)> = Vec::new();
    let mut comments = Vec::new();
    for (ti, t) in cat.tables.iter().enumerate() {
        let partition = t.partition_of.is_some();
        for c in &t.constraints {
            let target = format!("{} ON {}", quote_ident(&c.name), t.name);
            comments.extend(comment("CONSTRAINT", &target, &c.comment));
            if let Some((index, text)) = &c.index_comment {
                let index = format!("{}.{}", quote_ident(&t.name.schema), quote_ident(index));
                comments.extend(comment("INDEX", &index, &Some(text.clone())));
            }
            if is_pre_data_check(c) {
                continue;
            }
            match c.kind {
                ConstraintKind::PrimaryKey | ConstraintKind::Unique | ConstraintKind::Exclusion => {
                    p.indexes.push((
                        ti,
                        format!(
                            "ALTER TABLE ONLY {} ADD CONSTRAINT {} {}",
                            t.name,
                            quote_ident(&c.name),
                            c.definition
                        ),
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
                    // PostgreSQL refuses NOT VALID foreign keys on partitioned tables
                    // before 18; a partition's comes with its parent's. On a small
                    // table the check is quick and a second statement is not.
                    let split = c.kind == ConstraintKind::ForeignKey
                        && t.kind == TableKind::Ordinary
                        && t.estimated_bytes >= SEPARATE_CHECK_FROM_BYTES
                        && t.partition_of.is_none()
                        && !c.definition.ends_with(" NOT VALID");
                    let name = quote_ident(&c.name);
                    grouped.push((
                        ti,
                        format!(
                            "ALTER TABLE {} ADD CONSTRAINT {name} {}{}",
                            t.name,
                            c.definition,
                            if split { " NOT VALID" } else { "" }
                        ),
                        split.then(|| format!("ALTER TABLE {} VALIDATE CONSTRAINT {name}", t.name)),
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
                None,
            ));
        }
        for i in &t.indexes {
            p.indexes.push((ti, i.definition.clone()));
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
    let mut by_root: std::collections::BTreeMap<usize, ConstraintGroup> = Default::default();
    for (ti, add, validate) in grouped {
        let g = by_root.entry(groups[ti]).or_default();
        g.add.push((ti, add));
        g.validate.extend(validate.map(|v| (ti, v)));
    }
    p.constraint_groups = by_root.into_values().collect();

    let mut last = Vec::new();
    for o in order::post_data(cat) {
        if o.kind == "event trigger" {
            last.extend(object_statements(o, opts));
        } else {
            p.rest.extend(object_statements(o, opts));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{
        Column, Constraint, IdentityKind, Index, ObjKey, OwnedBy, QualName, Sequence, Table,
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
                        ..Default::default()
                    },
                    Constraint {
                        name: "id_positive".into(),
                        kind: ConstraintKind::Check,
                        definition: "CHECK ((id > 0))".into(),
                        ..Default::default()
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
        let pre = pre_data(&cat, &DdlOptions::default()).join(";\n");
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
        let post = post_data(&cat, &DdlOptions::default());
        assert_eq!(post.indexes.len(), 2);
        assert!(post.constraint_groups.is_empty());
        assert_eq!(
            sequence_values(&cat),
            vec!["SELECT pg_catalog.setval('\"public\".\"patients_id_seq\"'::regclass, 42, true)"]
        );
    }

    /// Owners, object, column and default privileges, and a grant made by a role
    /// other than the owner, on every kind that carries them.
    fn owned_and_granted() -> Catalog {
        use crate::catalog::{Acl, EnumType, Schema, Section};
        let acl = |target: &str, items: &[&str]| {
            Some(Acl {
                target: target.into(),
                items: items.iter().map(|s| s.to_string()).collect(),
                defaults: vec![items[0].to_string()],
            })
        };
        let alice = Some("alice".to_string());
        let object =
            |kind: &str, section, create: Vec<String>, target: Option<&str>| SchemaObject {
                key: ObjKey::default(),
                kind: kind.into(),
                schema: Some("app".into()),
                name: kind.into(),
                section,
                create,
                target: target.map(Into::into),
                owner: target.and(alice.clone()),
                acl: None,
                comment: None,
                table: None,
            };
        let mut function = object(
            "function",
            Section::PreData,
            vec!["CREATE FUNCTION app.f() …".into()],
            Some("FUNCTION app.f()"),
        );
        function.acl = acl("FUNCTION app.f()", &["alice=X/alice", "bob=X/alice"]);
        let mut cat = sample();
        cat.schemas = vec![Schema {
            name: "app".into(),
            comment: None,
            existing: false,
            owner: alice.clone(),
            acl: acl("SCHEMA \"app\"", &["alice=UC/alice", "bob=U/alice"]),
        }];
        cat.enums = vec![EnumType {
            oid: 9,
            name: QualName::new("app", "mood"),
            labels: vec!["ok".into()],
            comment: None,
            owner: alice.clone(),
            acl: acl("TYPE app.mood", &["alice=U/alice", "=U/alice"]),
        }];
        cat.sequences.push(Sequence {
            oid: 8,
            name: QualName::new("app", "counter"),
            owner: alice.clone(),
            acl: acl("SEQUENCE app.counter", &["alice=rwU/alice", "bob=r/alice"]),
            ..Default::default()
        });
        let t = &mut cat.tables[0];
        t.owner = alice.clone();
        t.acl = acl(
            "TABLE public.patients",
            &["alice=arwdDxt/alice", "carol=r/bob"],
        );
        t.columns[0].acl = vec!["dave=r/alice".into()];
        cat.objects = vec![
            function,
            object(
                "foreign table",
                Section::PreData,
                vec![
                    "CREATE FOREIGN TABLE app.ft (x integer) SERVER s".into(),
                    "GRANT SELECT (x) ON TABLE app.ft TO bob".into(),
                ],
                Some("FOREIGN TABLE app.ft"),
            ),
            object(
                DEFAULT_PRIVILEGES,
                Section::PostData,
                vec![
                    "ALTER DEFAULT PRIVILEGES FOR ROLE alice GRANT SELECT ON TABLES TO bob".into(),
                ],
                None,
            ),
        ];
        cat
    }

    fn script(cat: &Catalog, opts: DdlOptions) -> Vec<String> {
        let mut all = pre_data(cat, &opts);
        all.extend(post_data(cat, &opts).rest);
        all
    }

    #[test]
    fn owners_and_privileges_can_each_be_left_out() {
        let cat = owned_and_granted();
        let has = |all: &[String], what: &str| all.iter().filter(|s| s.contains(what)).count();
        let full = script(&cat, DdlOptions::default());
        // schema, enum, sequence, table, function, foreign table
        assert_eq!(has(&full, "OWNER TO \"alice\""), 6, "{full:#?}");
        assert!(full.contains(
            &"SET ROLE \"bob\"; GRANT SELECT ON TABLE public.patients TO \"carol\"; RESET ROLE"
                .into()
        ));
        assert_eq!(has(&full, "GRANT SELECT (\"id\") ON TABLE"), 1);
        assert_eq!(has(&full, "ALTER DEFAULT PRIVILEGES"), 1);

        let no_owner = script(
            &cat,
            DdlOptions {
                owners: false,
                ..Default::default()
            },
        );
        assert_eq!(has(&no_owner, "OWNER"), 0, "{no_owner:#?}");
        assert_eq!(has(&no_owner, "ROLE \""), 0, "{no_owner:#?}");
        assert!(no_owner.contains(&"GRANT SELECT ON TABLE public.patients TO \"carol\"".into()));
        assert_eq!(has(&no_owner, "GRANT"), has(&full, "GRANT"));
        assert_eq!(has(&no_owner, "REVOKE"), has(&full, "REVOKE"));
        // Default privileges name their role: kept, as pg_restore -O keeps them.
        assert_eq!(has(&no_owner, "ALTER DEFAULT PRIVILEGES FOR ROLE alice"), 1);

        let no_acl = script(
            &cat,
            DdlOptions {
                privileges: false,
                ..Default::default()
            },
        );
        assert_eq!(
            has(&no_acl, "GRANT") + has(&no_acl, "REVOKE"),
            0,
            "{no_acl:#?}"
        );
        assert_eq!(has(&no_acl, "PRIVILEGES"), 0);
        assert_eq!(has(&no_acl, "OWNER TO \"alice\""), 6);
        // Nothing else is left out.
        let acl_statements = full
            .iter()
            .filter(|s| s.contains("GRANT ") || s.contains("REVOKE "))
            .count();
        assert_eq!(full.len() - no_acl.len(), acl_statements);
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
        let mut groups: Vec<usize> = post_data(&cat, &DdlOptions::default())
            .constraint_groups
            .iter()
            .map(|g| g.add.len())
            .collect();
        groups.sort();
        assert_eq!(groups, vec![2, 2], "a<->b together, c->d and e->c together");
    }
}
