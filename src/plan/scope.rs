//! What part of a backup a restore works on: `restore -t/-n/-T/-N` picks tables and
//! schemas with pg_dump's pattern rules ([`super::select`]); this module adds what a
//! restore of that part needs and pg_restore leaves to the user:
//!
//! - a partitioned table comes with its partitions, which hold its rows;
//! - `--with-dependencies` adds, until nothing changes, the tables the chosen ones
//!   reference (foreign keys, partition and inheritance parents) and every object
//!   `pg_depend` says they need (types, sequences, functions, collations, extensions),
//!   with the triggers, rules and policies of each table added;
//! - the schemas of what is restored are created when missing (`CREATE SCHEMA IF NOT
//!   EXISTS`) unless the schema itself was chosen (`-n`), so `-t clinical.notes`
//!   restores into an empty database.
//!
//! Tables of the restore keep their numbers in the manifest (`table_numbers`), since
//! their data is filed under them.

use std::collections::{BTreeSet, HashSet};

use super::select::{SelectError, Selection};
use crate::catalog::{Catalog, Constraint, ConstraintKind, ObjKey, QualName, PG_CLASS, PG_TYPE};

/// The catalog a restore recreates, cut to the selection.
#[derive(Debug, Clone)]
pub struct Scope {
    pub catalog: Catalog,
    /// For each table of `catalog`, by position, its number in the backup's manifest.
    pub table_numbers: Vec<u32>,
    /// False when the whole backup is restored.
    pub partial: bool,
    /// Schemas the restored objects live in without their own definition being
    /// restored: created only when missing.
    pub ensure_schemas: Vec<String>,
    /// Objects outside the selection that were added because they are built on its
    /// tables (`--with-dependents`): the restore leaves out the views the target
    /// still has, and what is built on those.
    pub dependent_objects: Vec<ObjKey>,
}

/// What points at a restore's tables from outside it, per the backup's catalog:
/// `DROP TABLE … CASCADE` took these along, and a restore of the table alone does not
/// bring them back unless asked (`--with-dependents`).
#[derive(Debug, Clone, Default)]
pub struct Dependents {
    /// Foreign keys of tables outside the restore that reference its tables.
    pub foreign_keys: Vec<(QualName, Constraint)>,
    /// Objects outside the restore that `pg_depend` says are built on its tables,
    /// directly or through one another (views, materialized views, functions with
    /// SQL-standard bodies, other tables' policies, rules and triggers): what `DROP
    /// … CASCADE` drops with them.
    pub objects: Vec<ObjKey>,
    /// Columns of tables outside the restore whose default draws from a sequence of
    /// it: (table, column, default).
    pub defaults: Vec<(QualName, String, String)>,
}

impl Scope {
    /// The whole backup.
    pub fn whole(cat: &Catalog) -> Scope {
        Scope {
            catalog: cat.clone(),
            table_numbers: (0..cat.tables.len() as u32).collect(),
            partial: false,
            ensure_schemas: Vec::new(),
            dependent_objects: Vec::new(),
        }
    }

    /// What points at this scope's tables from outside it in `cat`, the whole backup's
    /// catalog (see [`Dependents`]).
    pub fn dependents(&self, cat: &Catalog) -> Dependents {
        let inside: HashSet<&QualName> = self.catalog.tables.iter().map(|t| &t.name).collect();
        let foreign_keys = cat
            .tables
            .iter()
            .filter(|t| !inside.contains(&t.name))
            .flat_map(|t| {
                t.constraints
                    .iter()
                    .filter(|c| c.kind == ConstraintKind::ForeignKey)
                    .filter(|c| c.references.as_ref().is_some_and(|r| inside.contains(r)))
                    .map(|c| (t.name.clone(), c.clone()))
            })
            .collect();
        let kept = keys_of(&self.catalog);
        let mut reached: HashSet<ObjKey> = self.catalog.tables.iter().map(|t| t.key()).collect();
        let mut objects = Vec::new();
        loop {
            let before = reached.len();
            for d in &cat.dependencies {
                if !reached.contains(&d.referenced) || reached.contains(&d.dependent) {
                    continue;
                }
                if cat.objects.iter().any(|o| o.key == d.dependent) {
                    reached.insert(d.dependent);
                    if !kept.contains(&d.dependent) {
                        objects.push(d.dependent);
                    }
                }
            }
            if reached.len() == before {
                break;
            }
        }
        // A default names its sequence quoted and qualified (`nextval('"s"."q"'…)`) or
        // as the search path at backup time printed it.
        let sequences: Vec<(String, String)> = self
            .catalog
            .sequences
            .iter()
            .map(|s| (s.name.to_string(), s.name.plain()))
            .collect();
        let defaults = cat
            .tables
            .iter()
            .filter(|t| !inside.contains(&t.name))
            .flat_map(|t| {
                t.columns.iter().filter_map(|c| {
                    let d = c.default.as_ref()?;
                    sequences
                        .iter()
                        .any(|(q, p)| d.contains(q.as_str()) || d.contains(&format!("'{p}'")))
                        .then(|| (t.name.clone(), c.name.clone(), d.clone()))
                })
            })
            .collect();
        Dependents {
            foreign_keys,
            objects,
            defaults,
        }
    }

    /// This scope with the objects built on its tables (see [`Dependents::objects`];
    /// with the rules and triggers of views among them), for `--with-dependents`.
    pub fn with_dependents(self, cat: &Catalog) -> Scope {
        let views = self.dependents(cat).objects;
        if views.is_empty() {
            return self;
        }
        let mut keys = keys_of(&self.catalog);
        keys.extend(views.iter().copied());
        let catalog = keep(cat, &keys, &self.catalog);
        let mut ensure = self.ensure_schemas;
        for o in catalog.objects.iter().filter(|o| views.contains(&o.key)) {
            if let Some(s) = &o.schema {
                if !ensure.contains(s)
                    && s != "public"
                    && !catalog.schemas.iter().any(|x| &x.name == s)
                {
                    ensure.push(s.clone());
                }
            }
        }
        Scope {
            catalog,
            ensure_schemas: ensure,
            dependent_objects: views,
            ..self
        }
    }

    /// Tables outside the restore that its tables point at: referenced by a foreign
    /// key, or a partition's or inheritance child's parent. A restore can only link
    /// to them where the target already has them.
    pub fn outside_tables(&self) -> BTreeSet<QualName> {
        let inside: HashSet<&QualName> = self.catalog.tables.iter().map(|t| &t.name).collect();
        self.catalog
            .tables
            .iter()
            .flat_map(|t| {
                t.referenced_tables()
                    .chain(t.partition_of.as_ref().map(|p| &p.parent))
                    .chain(t.inherits.iter())
            })
            .filter(|n| !inside.contains(n))
            .cloned()
            .collect()
    }
}

/// Cuts `cat` (a backup's catalog) to what `sel` chooses, plus what the module
/// documentation says comes along.
pub fn scope(
    cat: &Catalog,
    sel: &Selection,
    with_dependencies: bool,
) -> Result<Scope, SelectError> {
    if sel.is_everything() && !with_dependencies {
        return Ok(Scope::whole(cat));
    }
    let chosen = sel.choose(cat)?;
    let base = chosen.apply(cat.clone());
    let mut keys: HashSet<ObjKey> = keys_of(&base);
    let schemas: BTreeSet<String> = base.schemas.iter().map(|s| s.name.clone()).collect();
    loop {
        let before = keys.len();
        let kept: HashSet<QualName> = cat
            .tables
            .iter()
            .filter(|t| keys.contains(&t.key()))
            .map(|t| t.name.clone())
            .collect();
        for t in &cat.tables {
            if t.partition_of
                .as_ref()
                .is_some_and(|p| kept.contains(&p.parent))
            {
                keys.insert(t.key());
            }
        }
        if with_dependencies {
            let needed: HashSet<&QualName> = cat
                .tables
                .iter()
                .filter(|t| kept.contains(&t.name))
                .flat_map(|t| {
                    t.referenced_tables()
                        .chain(t.partition_of.as_ref().map(|p| &p.parent))
                        .chain(t.inherits.iter())
                })
                .collect();
            for t in cat.tables.iter().filter(|t| needed.contains(&t.name)) {
                keys.insert(t.key());
            }
            for o in &cat.objects {
                if o.table.as_ref().is_some_and(|t| kept.contains(t)) {
                    keys.insert(o.key);
                }
            }
            for d in &cat.dependencies {
                if keys.contains(&d.dependent) {
                    keys.insert(d.referenced);
                }
            }
        }
        if keys.len() == before {
            break;
        }
    }
    let catalog = keep(cat, &keys, &base);
    let table_numbers = catalog
        .tables
        .iter()
        .map(|t| {
            cat.tables
                .iter()
                .position(|u| u.name == t.name)
                .expect("a kept table comes from the catalog") as u32
        })
        .collect();
    let mut ensure: BTreeSet<String> = catalog
        .tables
        .iter()
        .map(|t| t.name.schema.clone())
        .chain(catalog.sequences.iter().map(|s| s.name.schema.clone()))
        .chain(catalog.enums.iter().map(|e| e.name.schema.clone()))
        .chain(catalog.objects.iter().filter_map(|o| o.schema.clone()))
        .collect();
    ensure.retain(|s| !schemas.contains(s) && s != "public");
    Ok(Scope {
        catalog,
        table_numbers,
        partial: !sel.is_everything(),
        ensure_schemas: ensure.into_iter().collect(),
        dependent_objects: Vec::new(),
    })
}

fn keys_of(cat: &Catalog) -> HashSet<ObjKey> {
    cat.tables
        .iter()
        .map(|t| t.key())
        .chain(cat.sequences.iter().map(|s| ObjKey {
            class: PG_CLASS,
            oid: s.oid,
        }))
        .chain(cat.enums.iter().map(|e| ObjKey {
            class: PG_TYPE,
            oid: e.oid,
        }))
        .chain(cat.objects.iter().map(|o| o.key))
        .collect()
}

/// `cat` with the objects in `keys`, the objects that belong to a kept relation, and
/// the schemas `base` kept. Sequences follow their owning table as in
/// [`super::select::Chosen::apply`], which made `base`.
fn keep(cat: &Catalog, keys: &HashSet<ObjKey>, base: &Catalog) -> Catalog {
    let mut out = cat.clone();
    out.tables.retain(|t| keys.contains(&t.key()));
    let relations: HashSet<QualName> = out
        .tables
        .iter()
        .map(|t| t.name.clone())
        .chain(
            cat.objects
                .iter()
                .filter(|o| keys.contains(&o.key))
                .filter_map(|o| Some(QualName::new(o.schema.clone()?, o.name.clone()))),
        )
        .collect();
    let tables: HashSet<&QualName> = out.tables.iter().map(|t| &t.name).collect();
    let base_sequences: HashSet<u32> = base.sequences.iter().map(|s| s.oid).collect();
    out.sequences.retain_mut(|s| {
        let key = ObjKey {
            class: PG_CLASS,
            oid: s.oid,
        };
        let owner_kept = s.owned_by.as_ref().map(|o| tables.contains(&o.table));
        match owner_kept {
            Some(true) => true,
            _ if s.identity => false,
            Some(false) if keys.contains(&key) || base_sequences.contains(&s.oid) => {
                s.owned_by = None;
                true
            }
            _ => keys.contains(&key),
        }
    });
    out.enums.retain(|e| {
        keys.contains(&ObjKey {
            class: PG_TYPE,
            oid: e.oid,
        })
    });
    out.objects.retain(|o| {
        keys.contains(&o.key) || o.table.as_ref().is_some_and(|t| relations.contains(t))
    });
    out.schemas = base.schemas.clone();
    let kept = keys_of(&out);
    out.dependencies
        .retain(|d| kept.contains(&d.dependent) && kept.contains(&d.referenced));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{
        Constraint, ConstraintKind, Dependency, OwnedBy, PartitionOf, SchemaObject, Section,
        Sequence, Table, TableKind,
    };
    use crate::plan::pattern::Pattern;

    fn table(oid: u32, name: &str, refs: &[&str]) -> Table {
        Table {
            oid,
            name: QualName::new("public", name),
            constraints: refs
                .iter()
                .map(|r| Constraint {
                    name: format!("{name}_{r}_fkey"),
                    kind: ConstraintKind::ForeignKey,
                    definition: format!("FOREIGN KEY (x) REFERENCES public.{r}(id)"),
                    references: Some(QualName::new("public", *r)),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn object(oid: u32, kind: &str, name: &str, table: Option<&str>) -> SchemaObject {
        SchemaObject {
            key: ObjKey { class: 1255, oid },
            kind: kind.into(),
            schema: Some("public".into()),
            name: name.into(),
            section: Section::PreData,
            create: vec![format!("CREATE {kind} {name}")],
            target: None,
            owner: None,
            acl: None,
            comment: None,
            table: table.map(|t| QualName::new("public", t)),
        }
    }

    fn sample() -> Catalog {
        let mut vitals = table(3, "vitals_samples", &["patients"]);
        vitals.kind = TableKind::Partitioned;
        let mut part = table(4, "vitals_2024", &["patients"]);
        part.partition_of = Some(PartitionOf {
            parent: QualName::new("public", "vitals_samples"),
            bound: "FOR VALUES FROM (1) TO (2)".into(),
        });
        let mut clinical = table(5, "notes", &[]);
        clinical.name = QualName::new("clinical", "notes");
        Catalog {
            tables: vec![
                table(1, "organizations", &[]),
                table(2, "patients", &["organizations", "patients"]),
                vitals,
                part,
                clinical,
            ],
            sequences: vec![Sequence {
                oid: 10,
                name: QualName::new("public", "patients_id_seq"),
                owned_by: Some(OwnedBy {
                    table: QualName::new("public", "patients"),
                    column: "id".into(),
                }),
                ..Default::default()
            }],
            objects: vec![
                object(20, "function", "audit()", None),
                object(
                    21,
                    "trigger",
                    "audit on public.vitals_2024",
                    Some("vitals_2024"),
                ),
                object(22, "function", "unrelated()", None),
            ],
            dependencies: vec![Dependency {
                dependent: ObjKey {
                    class: 1255,
                    oid: 21,
                },
                referenced: ObjKey {
                    class: 1255,
                    oid: 20,
                },
            }],
            ..Default::default()
        }
    }

    fn only(patterns: &[&str]) -> Selection {
        Selection {
            tables: patterns
                .iter()
                .map(|p| Pattern::table(p).unwrap())
                .collect(),
            ..Default::default()
        }
    }

    fn names(s: &Scope) -> Vec<String> {
        s.catalog.tables.iter().map(|t| t.name.plain()).collect()
    }

    #[test]
    fn one_table_keeps_its_sequence_and_numbers_and_points_outside() {
        let cat = sample();
        let s = scope(&cat, &only(&["patients"]), false).unwrap();
        assert_eq!(names(&s), vec!["public.patients"]);
        assert_eq!(s.table_numbers, vec![1]);
        assert_eq!(s.catalog.sequences.len(), 1);
        assert!(s.catalog.objects.is_empty());
        assert!(s.partial);
        let outside: Vec<String> = s.outside_tables().iter().map(|n| n.plain()).collect();
        assert_eq!(outside, vec!["public.organizations"]);
    }

    #[test]
    fn a_partitioned_table_brings_its_partitions_and_their_triggers() {
        let cat = sample();
        let s = scope(&cat, &only(&["vitals_samples"]), false).unwrap();
        assert_eq!(
            names(&s),
            vec!["public.vitals_samples", "public.vitals_2024"]
        );
        assert_eq!(s.table_numbers, vec![2, 3]);
        let kinds: Vec<&str> = s.catalog.objects.iter().map(|o| o.kind.as_str()).collect();
        assert_eq!(kinds, vec!["trigger"], "the trigger, not its function");
    }

    #[test]
    fn with_dependencies_closes_over_keys_parents_and_functions() {
        let cat = sample();
        let s = scope(&cat, &only(&["vitals_samples"]), true).unwrap();
        assert_eq!(
            names(&s),
            vec![
                "public.organizations",
                "public.patients",
                "public.vitals_samples",
                "public.vitals_2024"
            ]
        );
        let objects: Vec<&str> = s.catalog.objects.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(objects, vec!["audit()", "audit on public.vitals_2024"]);
        assert_eq!(s.catalog.dependencies.len(), 1);
        assert!(s.outside_tables().is_empty());
        let part = scope(&cat, &only(&["vitals_2024"]), true).unwrap();
        assert!(names(&part).contains(&"public.vitals_samples".to_string()));
    }

    #[test]
    fn schemas_of_chosen_tables_are_ensured() {
        let cat = sample();
        let s = scope(&cat, &only(&["clinical.notes"]), false).unwrap();
        assert_eq!(s.ensure_schemas, vec!["clinical"]);
        assert!(!scope(&cat, &Selection::default(), false).unwrap().partial);
    }
}
