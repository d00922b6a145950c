//! `restore --into-schema`: the chosen tables restored beside the live ones, under
//! another schema, so someone can compare a table with its backup before replacing
//! anything.
//!
//! The copies must never touch the live objects: a copy's foreign keys, indexes,
//! partition and inheritance links and serial defaults point at the other copies, and
//! whatever would point outside the restore is left out (and said so in the notes)
//! rather than pointing at the live database. Only the tables and the sequences they
//! own are copied; views, functions, triggers, policies and the rest stay live-only,
//! and the copies keep using the live types. The copies get no privileges: they hold
//! health data, and only their owner should read them until someone decides otherwise.
//!
//! The catalog keeps the SQL texts the server printed at backup time
//! (`pg_get_constraintdef`, `pg_get_indexdef`, `pg_get_expr`), which name relations
//! with `quote_identifier`'s rules under an empty `search_path`: always
//! schema-qualified, quoted only when needed. Those names are rewritten where the
//! grammar puts them; the new names are always quoted, which PostgreSQL accepts.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use thiserror::Error;

use crate::catalog::{
    quote_ident, Catalog, ConstraintKind, Dependency, ObjKey, QualName, Sequence, Table, PG_CLASS,
};

/// The catalog to restore beside the live tables, and what it leaves out.
#[derive(Debug, Clone)]
pub struct Relocated {
    /// Tables in the same order as the input: their data is filed by position.
    pub catalog: Catalog,
    /// What was left out and why, for the user: a comparison copy that silently
    /// lacks a key or calls a live sequence would mislead.
    pub notes: Vec<String>,
}

/// Why the chosen tables cannot be copied beside the live ones as asked: each is a
/// usage error the user fixes by choosing another schema or fewer tables.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RelocateError {
    #[error("cannot restore into schema {schema:?}: {reason}")]
    InvalidSchema {
        schema: String,
        reason: &'static str,
    },
    /// The copy would replace the live table rather than sit beside it.
    #[error(
        "table {table} already lives in schema {schema:?}: choose another schema to restore beside it"
    )]
    SameSchema { schema: String, table: String },
    /// Relations of several schemas meet in one, where names must be unique.
    #[error(
        "{first} and {second} would both be named {name} in schema {schema:?}: restore them into different schemas"
    )]
    Clash {
        schema: String,
        name: String,
        first: String,
        second: String,
    },
}

/// Rewrites `cat`, a catalog already cut to the chosen tables, so that the DDL
/// creates copies of them in `schema`. The name is used as given (no case folding).
pub fn relocate(mut cat: Catalog, schema: &str) -> Result<Relocated, RelocateError> {
    check_schema(schema)?;
    if let Some(t) = cat.tables.iter().find(|t| t.name.schema == schema) {
        return Err(RelocateError::SameSchema {
            schema: schema.to_owned(),
            table: t.name.plain(),
        });
    }
    let tables: HashMap<QualName, QualName> = cat
        .tables
        .iter()
        .map(|t| (t.name.clone(), QualName::new(schema, t.name.name.clone())))
        .collect();
    let (mut sequences, dropped): (Vec<Sequence>, Vec<Sequence>) =
        std::mem::take(&mut cat.sequences)
            .into_iter()
            .partition(|s| {
                s.owned_by
                    .as_ref()
                    .is_some_and(|o| tables.contains_key(&o.table))
            });
    check_clashes(&cat.tables, &sequences, schema)?;

    let mover = Mover {
        schema,
        sequences: sequences
            .iter()
            .map(|s| (s.name.clone(), QualName::new(schema, s.name.name.clone())))
            .collect(),
        tables,
    };
    for s in &mut sequences {
        s.name.schema = schema.to_owned();
        if let Some(o) = &mut s.owned_by {
            o.table = mover.tables[&o.table].clone();
        }
        s.acl = None;
    }
    let mut notes = Vec::new();
    for t in &mut cat.tables {
        mover.move_table(t, &mut notes);
    }

    cat.dependencies = dependencies(
        &cat.tables,
        &sequences,
        std::mem::take(&mut cat.dependencies),
    );
    notes.extend(left_out_note(&cat, &dropped));
    cat.objects.clear();
    cat.enums.clear();
    cat.schemas.clear();
    cat.sequences = sequences;
    Ok(Relocated {
        catalog: cat,
        notes,
    })
}

/// Old name → new name of every relation that moves.
struct Mover<'a> {
    schema: &'a str,
    tables: HashMap<QualName, QualName>,
    sequences: Vec<(QualName, QualName)>,
}

impl Mover<'_> {
    fn move_table(&self, t: &mut Table, notes: &mut Vec<String>) {
        let old = t.name.clone();
        self.links(t, notes);
        self.foreign_keys(t, notes);
        self.indexes(t, &old, notes);
        self.columns(t, notes);
        t.acl = None;
        t.name = self.tables[&old].clone();
    }

    /// Partition and inheritance parents: moved with their child, or cut off.
    fn links(&self, t: &mut Table, notes: &mut Vec<String>) {
        let mut detached = false;
        if let Some(p) = &mut t.partition_of {
            match self.tables.get(&p.parent) {
                Some(new) => p.parent = new.clone(),
                None => {
                    notes.push(format!(
                        "partition {} restored as a plain table: its parent {} is not restored \
                         (nor the foreign keys the partition inherits from it)",
                        t.name.plain(),
                        p.parent.plain()
                    ));
                    t.partition_of = None;
                    detached = true;
                    // A partition shares its parent's identity sequence; a copy with
                    // an identity of its own would start over at 1 below its rows.
                    for c in t.columns.iter_mut().filter(|c| c.identity.is_some()) {
                        notes.push(format!(
                            "column {} of {} restored without its identity: the sequence \
                             belongs to the partitioned table, which is not restored",
                            c.name,
                            t.name.plain()
                        ));
                        c.identity = None;
                    }
                }
            }
        }
        let mut inherits = Vec::new();
        for p in std::mem::take(&mut t.inherits) {
            match self.tables.get(&p) {
                Some(new) => inherits.push(new.clone()),
                None => {
                    notes.push(format!(
                        "{} restored without inheriting from {}, which is not restored: \
                         the columns and checks it inherited become its own",
                        t.name.plain(),
                        p.plain()
                    ));
                    detached = true;
                }
            }
        }
        t.inherits = inherits;
        if detached {
            make_local(t);
        }
        // Attaching needs the parent's index, which exists only when the parent does.
        let attached = t.partition_of.is_some();
        let parent_index = |i: &mut Option<QualName>| {
            *i = i
                .take()
                .filter(|_| attached)
                .map(|q| QualName::new(self.schema, q.name));
        };
        t.constraints
            .iter_mut()
            .for_each(|c| parent_index(&mut c.parent_index));
        t.indexes
            .iter_mut()
            .for_each(|i| parent_index(&mut i.parent_index));
    }

    /// Foreign keys between copies point at the copies; any other would tie a copy
    /// to a live table (or fail where it does not exist), so it is left out.
    fn foreign_keys(&self, t: &mut Table, notes: &mut Vec<String>) {
        let table = t.name.plain();
        t.constraints.retain_mut(|c| {
            if c.kind != ConstraintKind::ForeignKey {
                return true;
            }
            let Some(target) = c.references.as_ref() else {
                notes.push(format!(
                    "foreign key {} on {table} skipped: the backup does not say which table it references",
                    c.name
                ));
                return false;
            };
            let Some(to) = self.tables.get(target) else {
                notes.push(format!(
                    "foreign key {} on {table} skipped: it references {}, which is not restored",
                    c.name,
                    target.plain()
                ));
                return false;
            };
            match rewrite_name(&c.definition, target, to, &["REFERENCES "], "(", false, true) {
                Some(def) => {
                    c.definition = def;
                    c.references = Some(to.clone());
                    true
                }
                None => {
                    notes.push(format!(
                        "foreign key {} on {table} skipped: its definition does not name {} \
                         where expected: {}",
                        c.name,
                        target.plain(),
                        c.definition
                    ));
                    false
                }
            }
        });
    }

    /// An index definition left as it was would build the index on the live table.
    fn indexes(&self, t: &mut Table, old: &QualName, notes: &mut Vec<String>) {
        let new = &self.tables[old];
        t.indexes.retain_mut(|i| {
            let on = [" ON ", " ON ONLY "];
            match rewrite_name(&i.definition, old, new, &on, " USING ", false, true) {
                Some(def) => {
                    i.definition = def;
                    true
                }
                None => {
                    notes.push(format!(
                        "index {} on {} skipped: its definition does not name the table \
                         where expected: {}",
                        i.name,
                        old.plain(),
                        i.definition
                    ));
                    false
                }
            }
        });
    }

    /// Serial defaults call the copied sequence; privileges go.
    fn columns(&self, t: &mut Table, notes: &mut Vec<String>) {
        for c in &mut t.columns {
            c.acl.clear();
            let Some(d) = &c.default else { continue };
            let mut text = Cow::Borrowed(d.as_str());
            for (from, to) in &self.sequences {
                let lit = ["'"];
                if let Some(r) = rewrite_name(&text, from, to, &lit, "'::regclass", true, false) {
                    text = Cow::Owned(r);
                }
            }
            match text {
                Cow::Owned(r) => c.default = Some(r),
                Cow::Borrowed(d) if d.contains("nextval(") => notes.push(format!(
                    "column {} of {} keeps its default {d}, which calls a live sequence: \
                     no restored table owns that sequence",
                    c.name,
                    t.name.plain()
                )),
                Cow::Borrowed(_) => {}
            }
        }
    }
}

/// Tables and their sequences keep their OIDs, so pg_depend's edges between them
/// still order the DDL: an inheritance child needs its parent created first. Edges to
/// what is no longer restored go.
fn dependencies(
    tables: &[Table],
    sequences: &[Sequence],
    deps: Vec<Dependency>,
) -> Vec<Dependency> {
    let keys: HashSet<ObjKey> = tables
        .iter()
        .map(Table::key)
        .chain(sequences.iter().map(|s| ObjKey {
            class: PG_CLASS,
            oid: s.oid,
        }))
        .collect();
    let mut out: Vec<Dependency> = deps
        .into_iter()
        .filter(|d| keys.contains(&d.dependent) && keys.contains(&d.referenced))
        .collect();
    let key_of: HashMap<&QualName, ObjKey> = tables.iter().map(|t| (&t.name, t.key())).collect();
    for t in tables {
        for p in &t.inherits {
            let edge = Dependency {
                dependent: t.key(),
                referenced: key_of[p],
            };
            if !out.contains(&edge) {
                out.push(edge);
            }
        }
    }
    out
}

/// One line counting what stays live-only, by kind.
fn left_out_note(cat: &Catalog, dropped: &[Sequence]) -> Option<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let kinds = cat
        .objects
        .iter()
        .map(|o| o.kind.as_str())
        .chain(cat.enums.iter().map(|_| "enum type"))
        .chain(dropped.iter().map(|_| "sequence"));
    for kind in kinds {
        *counts.entry(kind).or_default() += 1;
    }
    if counts.is_empty() {
        return None;
    }
    let list: Vec<String> = counts
        .iter()
        .map(|(kind, &n)| match n {
            1 => format!("1 {kind}"),
            _ => format!("{n} {}", plural(kind)),
        })
        .collect();
    Some(format!(
        "{} not restored beside the live tables",
        list.join(", ")
    ))
}

/// The server would refuse these names or, past 63 bytes, silently cut them.
fn check_schema(schema: &str) -> Result<(), RelocateError> {
    let reason = if schema.is_empty() {
        "the name is empty"
    } else if schema.len() > 63 {
        "the name is longer than 63 bytes"
    } else if schema.starts_with("pg_") {
        "names starting with pg_ are reserved for system schemas"
    } else if schema.contains('\0') {
        "the name contains a NUL character"
    } else {
        return Ok(());
    };
    Err(RelocateError::InvalidSchema {
        schema: schema.to_owned(),
        reason,
    })
}

/// Tables, indexes and sequences share one namespace per schema: copies from
/// several schemas may meet in the new one.
fn check_clashes(
    tables: &[Table],
    sequences: &[Sequence],
    schema: &str,
) -> Result<(), RelocateError> {
    let mut relations: Vec<(&str, String)> = Vec::new();
    for t in tables {
        relations.push((&t.name.name, format!("table {}", t.name.plain())));
        for c in t.constraints.iter().filter(|c| {
            matches!(
                c.kind,
                ConstraintKind::PrimaryKey | ConstraintKind::Unique | ConstraintKind::Exclusion
            )
        }) {
            relations.push((
                &c.name,
                format!("the index of constraint {} on {}", c.name, t.name.plain()),
            ));
        }
        for i in &t.indexes {
            relations.push((&i.name, format!("index {} on {}", i.name, t.name.plain())));
        }
    }
    for s in sequences {
        relations.push((&s.name.name, format!("sequence {}", s.name.plain())));
    }
    let mut seen: HashMap<&str, String> = HashMap::new();
    for (name, what) in relations {
        if let Some(first) = seen.get(name) {
            return Err(RelocateError::Clash {
                schema: schema.to_owned(),
                name: name.to_owned(),
                first: first.clone(),
                second: what,
            });
        }
        seen.insert(name, what);
    }
    Ok(())
}

/// Columns and checks a table got from a parent that is not restored: without the
/// parent, `CREATE TABLE` must declare them itself.
fn make_local(t: &mut Table) {
    for c in &mut t.columns {
        c.local = true;
        c.not_null_inherited = false;
    }
    for c in &mut t.constraints {
        c.local = true;
    }
}

/// A name as `quote_identifier` prints it, except that keywords are not recognised:
/// callers also try the fully quoted spelling, which is what a keyword gets, rather
/// than carry a keyword list that changes between server versions.
fn pg_quote(ident: &str) -> Cow<'_, str> {
    let mut chars = ident.chars();
    let plain = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        Cow::Borrowed(ident)
    } else {
        Cow::Owned(quote_ident(ident))
    }
}

/// Every way the server may have printed `name` qualified: each part bare (when it
/// can be) or quoted.
fn spellings(name: &QualName) -> Vec<String> {
    let part = |p: &str| {
        let mut v = vec![pg_quote(p).into_owned(), quote_ident(p)];
        v.dedup();
        v
    };
    let mut out = Vec::new();
    for s in part(&name.schema) {
        for n in part(&name.name) {
            out.push(format!("{s}.{n}"));
        }
    }
    out
}

/// `sql` with `old` replaced by `new` where it stands between one of `before` and
/// `after`, outside quoted identifiers and string literals (unless `in_literal`: then
/// the name is the content of the literal `before` opens). `None` when no such place
/// exists.
fn rewrite_name(
    sql: &str,
    old: &QualName,
    new: &QualName,
    before: &[&str],
    after: &str,
    in_literal: bool,
    first_only: bool,
) -> Option<String> {
    let escape = |s: &str| {
        if in_literal {
            s.replace('\'', "''")
        } else {
            s.to_owned()
        }
    };
    let to = escape(&new.to_string());
    let needles: Vec<(String, String)> = before
        .iter()
        .flat_map(|b| {
            spellings(old)
                .into_iter()
                .map(|s| {
                    (
                        format!("{b}{}{after}", escape(&s)),
                        format!("{b}{to}{after}"),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    replace_unquoted(sql, &needles, first_only)
}

/// Replaces each `(from, to)` where `from` starts outside quoted identifiers and
/// string literals. Every `from` is balanced, so the scan is outside quotes again
/// after it.
fn replace_unquoted(sql: &str, needles: &[(String, String)], first_only: bool) -> Option<String> {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 16);
    let (mut copied, mut i, mut hits) = (0, 0, 0);
    let mut quote: Option<u8> = None;
    while i < b.len() {
        match quote {
            None => {
                if hits == 0 || !first_only {
                    if let Some((from, to)) = needles
                        .iter()
                        .find(|(from, _)| b[i..].starts_with(from.as_bytes()))
                    {
                        out.push_str(&sql[copied..i]);
                        out.push_str(to);
                        i += from.len();
                        copied = i;
                        hits += 1;
                        continue;
                    }
                }
                if b[i] == b'"' || b[i] == b'\'' {
                    quote = Some(b[i]);
                }
                i += 1;
            }
            Some(q) => {
                if b[i] == q {
                    if b.get(i + 1) == Some(&q) {
                        i += 2;
                        continue;
                    }
                    quote = None;
                }
                i += 1;
            }
        }
    }
    if hits == 0 {
        return None;
    }
    out.push_str(&sql[copied..]);
    Some(out)
}

/// Object kinds as the notes count them: `3 triggers`, `2 policies`.
fn plural(kind: &str) -> String {
    if kind.ends_with('s') || kind.ends_with("data") {
        kind.to_owned()
    } else if kind.ends_with('x') || kind.ends_with("ch") || kind.ends_with("sh") {
        format!("{kind}es")
    } else if let Some(stem) = kind
        .strip_suffix('y')
        .filter(|s| !s.ends_with(['a', 'e', 'o', 'u']))
    {
        format!("{stem}ies")
    } else {
        format!("{kind}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{
        Acl, Column, Constraint, EnumType, IdentityKind, Index, OwnedBy, PartitionOf, Schema,
        SchemaObject, Section, TableKind,
    };

    fn q(schema: &str, name: &str) -> QualName {
        QualName::new(schema, name)
    }

    fn col(name: &str) -> Column {
        Column {
            name: name.into(),
            type_sql: "integer".into(),
            type_oid: 23,
            ..Default::default()
        }
    }

    fn acl(target: &str) -> Option<Acl> {
        Some(Acl {
            target: target.into(),
            items: vec!["o=arwdDxt/o".into(), "reader=r/o".into()],
            defaults: vec!["o=arwdDxt/o".into()],
        })
    }

    fn table(oid: u32, name: QualName) -> Table {
        Table {
            oid,
            name,
            columns: vec![col("id")],
            owner: Some("o".into()),
            ..Default::default()
        }
    }

    /// A foreign key as `pg_get_constraintdef` prints it; `printed` is the referenced
    /// table as the server spells it.
    fn fk(name: &str, to: QualName, printed: &str) -> Constraint {
        Constraint {
            name: name.into(),
            kind: ConstraintKind::ForeignKey,
            definition: format!("FOREIGN KEY (ref) REFERENCES {printed}(id) ON DELETE CASCADE"),
            references: Some(to),
            ..Default::default()
        }
    }

    fn key(name: &str, kind: ConstraintKind, definition: &str) -> Constraint {
        Constraint {
            name: name.into(),
            kind,
            definition: definition.into(),
            ..Default::default()
        }
    }

    fn index(name: &str, definition: &str) -> Index {
        Index {
            name: name.into(),
            definition: definition.into(),
            ..Default::default()
        }
    }

    fn sequence(oid: u32, name: QualName, owner: Option<(QualName, &str)>) -> Sequence {
        Sequence {
            oid,
            name: name.clone(),
            data_type: "integer".into(),
            owned_by: owner.map(|(table, column)| OwnedBy {
                table,
                column: column.into(),
            }),
            acl: acl(&format!("SEQUENCE {name}")),
            ..Default::default()
        }
    }

    fn catalog(tables: Vec<Table>) -> Catalog {
        Catalog {
            tables,
            ..Default::default()
        }
    }

    fn moved(cat: Catalog) -> Relocated {
        relocate(cat, "restored").expect("relocates")
    }

    fn named<'a>(cat: &'a Catalog, name: &str) -> &'a Table {
        cat.tables.iter().find(|t| t.name.name == name).unwrap()
    }

    fn constraint<'a>(t: &'a Table, name: &str) -> Option<&'a Constraint> {
        t.constraints.iter().find(|c| c.name == name)
    }

    #[test]
    fn foreign_keys_follow_moved_tables_and_the_others_are_left_out() {
        let patients = q("public", "patients");
        let mut p = table(1, patients.clone());
        p.constraints = vec![
            key(
                "patients_pkey",
                ConstraintKind::PrimaryKey,
                "PRIMARY KEY (id)",
            ),
            fk(
                "patients_referrer_fkey",
                patients.clone(),
                "public.patients",
            ),
            fk(
                "patients_org_fkey",
                q("public", "organizations"),
                "public.organizations",
            ),
        ];
        let mut v = table(2, q("clinical", "visits"));
        v.constraints = vec![fk(
            "visits_patient_fkey",
            patients.clone(),
            "public.patients",
        )];
        let out = moved(catalog(vec![p, v]));
        let p = named(&out.catalog, "patients");
        assert_eq!(p.name, q("restored", "patients"));
        let self_ref = constraint(p, "patients_referrer_fkey").unwrap();
        assert_eq!(
            self_ref.definition,
            "FOREIGN KEY (ref) REFERENCES \"restored\".\"patients\"(id) ON DELETE CASCADE"
        );
        assert_eq!(self_ref.references, Some(q("restored", "patients")));
        assert!(constraint(p, "patients_org_fkey").is_none());
        assert_eq!(
            constraint(p, "patients_pkey").unwrap().definition,
            "PRIMARY KEY (id)"
        );
        let v = named(&out.catalog, "visits");
        assert_eq!(v.name, q("restored", "visits"));
        let to_patients = constraint(v, "visits_patient_fkey").unwrap();
        assert_eq!(
            to_patients.definition,
            "FOREIGN KEY (ref) REFERENCES \"restored\".\"patients\"(id) ON DELETE CASCADE"
        );
        assert_eq!(
            out.notes,
            vec![
                "foreign key patients_org_fkey on public.patients skipped: it references \
                 public.organizations, which is not restored"
            ]
        );
    }

    #[test]
    fn a_foreign_key_whose_text_does_not_name_its_table_is_left_out() {
        let patients = q("public", "patients");
        let mut p = table(1, patients.clone());
        p.constraints = vec![fk("odd", patients, "public.elsewhere")];
        let out = moved(catalog(vec![p]));
        assert!(out.catalog.tables[0].constraints.is_empty());
        assert!(out.notes[0].starts_with("foreign key odd on public.patients skipped"));
    }

    #[test]
    fn indexes_move_with_their_table_and_only_the_table_name_changes() {
        let mut vitals = table(1, q("public", "vitals"));
        vitals.kind = TableKind::Partitioned;
        vitals.indexes = vec![
            index(
                "vitals_at_idx",
                "CREATE INDEX vitals_at_idx ON ONLY public.vitals USING btree (at)",
            ),
            index(
                "vitals_note_key",
                "CREATE UNIQUE INDEX vitals_note_key ON public.vitals USING btree \
                 (lower(note)) WHERE (note <> ' ON public.vitals USING '::text)",
            ),
            // The name holds the pattern too, quoted: only the real place changes.
            index(
                "x ON public.vitals USING y",
                "CREATE INDEX \"x ON public.vitals USING y\" ON public.vitals USING gist (at)",
            ),
        ];
        let out = moved(catalog(vec![vitals]));
        let defs: Vec<&str> = out.catalog.tables[0]
            .indexes
            .iter()
            .map(|i| i.definition.as_str())
            .collect();
        assert_eq!(
            defs,
            vec![
                "CREATE INDEX vitals_at_idx ON ONLY \"restored\".\"vitals\" USING btree (at)",
                "CREATE UNIQUE INDEX vitals_note_key ON \"restored\".\"vitals\" USING btree \
                 (lower(note)) WHERE (note <> ' ON public.vitals USING '::text)",
                "CREATE INDEX \"x ON public.vitals USING y\" ON \"restored\".\"vitals\" USING gist (at)",
            ]
        );
        assert!(out.notes.is_empty(), "{:?}", out.notes);
    }

    #[test]
    fn an_index_that_would_land_on_the_live_table_is_left_out() {
        let mut t = table(1, q("public", "t"));
        t.indexes = vec![index(
            "i",
            "CREATE INDEX i ON public.other USING btree (id)",
        )];
        let out = moved(catalog(vec![t]));
        assert!(out.catalog.tables[0].indexes.is_empty());
        assert!(out.notes[0].starts_with("index i on public.t skipped"));
    }

    #[test]
    fn awkward_names_are_found_however_the_server_printed_them() {
        // `user` is reserved: the server quotes it although it is lower case.
        let user = q("public", "user");
        let order = q("Clinic", "Order");
        let weird = q("we\"ird", "it's");
        let mut u = table(1, user.clone());
        u.indexes = vec![index(
            "user_idx",
            "CREATE INDEX user_idx ON public.\"user\" USING btree (id)",
        )];
        let mut o = table(2, order.clone());
        o.constraints = vec![
            fk("order_user_fkey", user.clone(), "public.\"user\""),
            fk("order_weird_fkey", weird.clone(), "\"we\"\"ird\".\"it's\""),
        ];
        o.indexes = vec![index(
            "Order_idx",
            "CREATE INDEX \"Order_idx\" ON \"Clinic\".\"Order\" USING btree (id)",
        )];
        let mut w = table(3, weird);
        w.constraints = vec![fk("weird_order_fkey", order, "\"Clinic\".\"Order\"")];
        // A name the server did not need to quote, spelt bare.
        let mut plain = table(4, q("sales", "users"));
        plain.constraints = vec![fk("users_user_fkey", user, "public.\"user\"")];
        plain.indexes = vec![index(
            "users_idx",
            "CREATE INDEX users_idx ON sales.users USING btree (id)",
        )];
        let out = moved(catalog(vec![u, o, w, plain]));
        assert!(out.notes.is_empty(), "{:?}", out.notes);
        let c = &out.catalog;
        assert_eq!(
            named(c, "user").indexes[0].definition,
            "CREATE INDEX user_idx ON \"restored\".\"user\" USING btree (id)"
        );
        let o = named(c, "Order");
        assert_eq!(
            constraint(o, "order_user_fkey").unwrap().definition,
            "FOREIGN KEY (ref) REFERENCES \"restored\".\"user\"(id) ON DELETE CASCADE"
        );
        assert_eq!(
            constraint(o, "order_weird_fkey").unwrap().definition,
            "FOREIGN KEY (ref) REFERENCES \"restored\".\"it's\"(id) ON DELETE CASCADE"
        );
        assert_eq!(
            o.indexes[0].definition,
            "CREATE INDEX \"Order_idx\" ON \"restored\".\"Order\" USING btree (id)"
        );
        assert_eq!(
            constraint(named(c, "it's"), "weird_order_fkey")
                .unwrap()
                .definition,
            "FOREIGN KEY (ref) REFERENCES \"restored\".\"Order\"(id) ON DELETE CASCADE"
        );
        let users = named(c, "users");
        assert_eq!(
            users.indexes[0].definition,
            "CREATE INDEX users_idx ON \"restored\".\"users\" USING btree (id)"
        );
        assert_eq!(
            constraint(users, "users_user_fkey").unwrap().definition,
            "FOREIGN KEY (ref) REFERENCES \"restored\".\"user\"(id) ON DELETE CASCADE"
        );
    }

    #[test]
    fn serial_defaults_call_the_copied_sequences() {
        let patients = q("public", "patients");
        let mut t = table(1, patients.clone());
        let with_default = |name: &str, default: &str| Column {
            default: Some(default.into()),
            ..col(name)
        };
        t.columns = vec![
            with_default("id", "nextval('public.patients_id_seq'::regclass)"),
            with_default("Chart", "nextval('public.\"Chart_seq\"'::regclass)"),
            with_default("quoted", "nextval('\"public\".\"it''s_seq\"'::regclass)"),
            with_default("shared", "nextval('public.shared_seq'::regclass)"),
            with_default("note", "'public.patients_id_seq'::text"),
        ];
        let cat = Catalog {
            sequences: vec![
                sequence(
                    10,
                    q("public", "patients_id_seq"),
                    Some((patients.clone(), "id")),
                ),
                sequence(
                    11,
                    q("public", "Chart_seq"),
                    Some((patients.clone(), "Chart")),
                ),
                sequence(
                    12,
                    q("public", "it's_seq"),
                    Some((patients.clone(), "quoted")),
                ),
                sequence(13, q("public", "shared_seq"), None),
            ],
            ..catalog(vec![t])
        };
        let out = moved(cat);
        let defaults: Vec<&str> = out.catalog.tables[0]
            .columns
            .iter()
            .map(|c| c.default.as_deref().unwrap())
            .collect();
        assert_eq!(
            defaults,
            vec![
                "nextval('\"restored\".\"patients_id_seq\"'::regclass)",
                "nextval('\"restored\".\"Chart_seq\"'::regclass)",
                "nextval('\"restored\".\"it''s_seq\"'::regclass)",
                "nextval('public.shared_seq'::regclass)",
                "'public.patients_id_seq'::text",
            ]
        );
        let seqs = &out.catalog.sequences;
        let names: Vec<String> = seqs.iter().map(|s| s.name.plain()).collect();
        assert_eq!(
            names,
            vec![
                "restored.patients_id_seq",
                "restored.Chart_seq",
                "restored.it's_seq"
            ]
        );
        assert!(seqs.iter().all(|s| s.acl.is_none()));
        assert_eq!(
            seqs[0].owned_by.as_ref().unwrap().table,
            q("restored", "patients")
        );
        assert_eq!(
            out.notes,
            vec![
                "column shared of public.patients keeps its default \
                 nextval('public.shared_seq'::regclass), which calls a live sequence: \
                 no restored table owns that sequence",
                "1 sequence not restored beside the live tables",
            ]
        );
    }

    #[test]
    fn identity_sequences_move_with_their_column() {
        let patients = q("public", "patients");
        let mut t = table(1, patients.clone());
        t.columns[0].identity = Some(IdentityKind::Always);
        t.columns[0].not_null = true;
        let mut seq = sequence(10, q("public", "patients_id_seq"), Some((patients, "id")));
        seq.identity = true;
        let cat = Catalog {
            sequences: vec![seq],
            ..catalog(vec![t])
        };
        let out = moved(cat);
        let s = &out.catalog.sequences[0];
        assert_eq!(s.name, q("restored", "patients_id_seq"));
        assert!(s.identity);
        assert_eq!(
            s.owned_by,
            Some(OwnedBy {
                table: q("restored", "patients"),
                column: "id".into()
            })
        );
        assert_eq!(
            out.catalog.tables[0].columns[0].identity,
            Some(IdentityKind::Always)
        );
        assert!(out.notes.is_empty(), "{:?}", out.notes);
    }

    fn partitioned() -> (Table, Table) {
        let parent_name = q("public", "vitals");
        let mut parent = table(1, parent_name.clone());
        parent.kind = TableKind::Partitioned;
        parent.partition_key = Some("RANGE (at)".into());
        parent.columns[0].identity = Some(IdentityKind::ByDefault);
        parent.constraints = vec![key(
            "vitals_pkey",
            ConstraintKind::PrimaryKey,
            "PRIMARY KEY (id, at)",
        )];
        parent.indexes = vec![index(
            "vitals_at_idx",
            "CREATE INDEX vitals_at_idx ON ONLY public.vitals USING btree (at)",
        )];
        let mut part = table(2, q("public", "vitals_2024"));
        part.partition_of = Some(PartitionOf {
            parent: parent_name,
            bound: "FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')".into(),
        });
        part.columns = vec![
            Column {
                local: false,
                identity: Some(IdentityKind::ByDefault),
                ..col("id")
            },
            Column {
                local: false,
                ..col("at")
            },
        ];
        part.constraints = vec![
            Constraint {
                local: false,
                parent_index: Some(q("public", "vitals_pkey")),
                ..key(
                    "vitals_2024_pkey",
                    ConstraintKind::PrimaryKey,
                    "PRIMARY KEY (id, at)",
                )
            },
            Constraint {
                local: false,
                ..key("positive", ConstraintKind::Check, "CHECK ((id > 0))")
            },
        ];
        part.indexes = vec![Index {
            parent_index: Some(q("public", "vitals_at_idx")),
            ..index(
                "vitals_2024_at_idx",
                "CREATE INDEX vitals_2024_at_idx ON public.vitals_2024 USING btree (at)",
            )
        }];
        (parent, part)
    }

    #[test]
    fn a_partition_follows_its_parent() {
        let (parent, part) = partitioned();
        let mut seq = sequence(
            10,
            q("public", "vitals_id_seq"),
            Some((parent.name.clone(), "id")),
        );
        seq.identity = true;
        let cat = Catalog {
            sequences: vec![seq],
            ..catalog(vec![parent, part])
        };
        let out = moved(cat);
        assert!(out.notes.is_empty(), "{:?}", out.notes);
        let p = named(&out.catalog, "vitals_2024");
        let of = p.partition_of.as_ref().unwrap();
        assert_eq!(of.parent, q("restored", "vitals"));
        assert_eq!(of.bound, "FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')");
        assert_eq!(
            p.constraints[0].parent_index,
            Some(q("restored", "vitals_pkey"))
        );
        assert!(
            !p.constraints[1].local,
            "the parent's check still comes with it"
        );
        assert_eq!(
            p.indexes[0].parent_index,
            Some(q("restored", "vitals_at_idx"))
        );
        assert_eq!(
            p.indexes[0].definition,
            "CREATE INDEX vitals_2024_at_idx ON \"restored\".\"vitals_2024\" USING btree (at)"
        );
        assert_eq!(p.columns[0].identity, Some(IdentityKind::ByDefault));
        assert!(!p.columns[0].local);
    }

    #[test]
    fn a_partition_without_its_parent_stands_alone() {
        let (_, part) = partitioned();
        let out = moved(catalog(vec![part]));
        let p = &out.catalog.tables[0];
        assert_eq!(p.name, q("restored", "vitals_2024"));
        assert!(p.partition_of.is_none());
        assert!(p.columns.iter().all(|c| c.local));
        assert!(p
            .constraints
            .iter()
            .all(|c| c.local && c.parent_index.is_none()));
        assert!(p.indexes[0].parent_index.is_none());
        assert_eq!(p.columns[0].identity, None);
        assert_eq!(
            out.notes,
            vec![
                "partition public.vitals_2024 restored as a plain table: its parent \
                 public.vitals is not restored (nor the foreign keys the partition \
                 inherits from it)",
                "column id of public.vitals_2024 restored without its identity: the \
                 sequence belongs to the partitioned table, which is not restored",
            ]
        );
    }

    #[test]
    fn an_inheritance_child_without_its_parent_declares_what_it_inherited() {
        let kept = q("public", "events");
        let gone = q("audit", "stamped");
        let mut child = table(3, q("public", "visit_events"));
        child.inherits = vec![kept.clone(), gone.clone()];
        child.columns = vec![
            Column {
                local: false,
                not_null: true,
                not_null_inherited: true,
                ..col("id")
            },
            Column {
                local: false,
                ..col("stamped_at")
            },
            col("visit"),
        ];
        child.constraints = vec![Constraint {
            local: false,
            ..key(
                "stamped_check",
                ConstraintKind::Check,
                "CHECK ((stamped_at > 0))",
            )
        }];
        let lone = Table {
            inherits: vec![gone],
            columns: vec![Column {
                local: false,
                ..col("stamped_at")
            }],
            ..table(4, q("public", "lone"))
        };
        let cat = Catalog {
            dependencies: vec![Dependency {
                dependent: ObjKey {
                    class: PG_CLASS,
                    oid: 3,
                },
                referenced: ObjKey {
                    class: PG_CLASS,
                    oid: 99,
                },
            }],
            // The child comes first: only the dependency puts the parent before it.
            ..catalog(vec![child, lone, table(1, kept)])
        };
        let out = moved(cat);
        let c = named(&out.catalog, "visit_events");
        assert_eq!(c.inherits, vec![q("restored", "events")]);
        assert!(c.columns.iter().all(|c| c.local && !c.not_null_inherited));
        assert!(c.constraints[0].local);
        let l = named(&out.catalog, "lone");
        assert!(l.inherits.is_empty());
        assert!(l.columns[0].local);
        assert_eq!(
            out.catalog.dependencies,
            vec![Dependency {
                dependent: ObjKey {
                    class: PG_CLASS,
                    oid: 3
                },
                referenced: ObjKey {
                    class: PG_CLASS,
                    oid: 1
                },
            }]
        );
        assert_eq!(out.notes.len(), 2, "{:?}", out.notes);
        assert!(out.notes[0]
            .starts_with("public.visit_events restored without inheriting from audit.stamped"));
        let order: Vec<u32> = out.catalog.tables.iter().map(|t| t.oid).collect();
        assert_eq!(order, vec![3, 4, 1], "data is filed by position");
    }

    #[test]
    fn names_that_would_meet_in_the_new_schema_are_refused() {
        let clash = relocate(
            catalog(vec![table(1, q("a", "notes")), table(2, q("b", "notes"))]),
            "restored",
        )
        .unwrap_err();
        assert_eq!(
            clash,
            RelocateError::Clash {
                schema: "restored".into(),
                name: "notes".into(),
                first: "table a.notes".into(),
                second: "table b.notes".into(),
            }
        );
        assert_eq!(
            clash.to_string(),
            "table a.notes and table b.notes would both be named notes in schema \
             \"restored\": restore them into different schemas"
        );
        let mut x = table(1, q("a", "x"));
        x.indexes = vec![index(
            "by_date",
            "CREATE INDEX by_date ON a.x USING btree (id)",
        )];
        let mut y = table(2, q("b", "y"));
        y.constraints = vec![key("by_date", ConstraintKind::Unique, "UNIQUE (id)")];
        let err = relocate(catalog(vec![x, y]), "restored").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("index by_date on a.x and the index of constraint by_date on b.y"),
            "{err}"
        );
        let seq = Catalog {
            sequences: vec![sequence(10, q("b", "x"), Some((q("b", "y"), "id")))],
            ..catalog(vec![table(1, q("a", "x")), table(2, q("b", "y"))])
        };
        assert!(matches!(
            relocate(seq, "restored"),
            Err(RelocateError::Clash { .. })
        ));
    }

    #[test]
    fn the_schema_must_be_new_to_the_tables_and_acceptable() {
        let cat = catalog(vec![table(1, q("public", "patients"))]);
        assert_eq!(
            relocate(cat.clone(), "public").unwrap_err(),
            RelocateError::SameSchema {
                schema: "public".into(),
                table: "public.patients".into()
            }
        );
        for bad in ["", "pg_restored", &"x".repeat(64)] {
            assert!(matches!(
                relocate(cat.clone(), bad),
                Err(RelocateError::InvalidSchema { .. })
            ));
        }
        let out = relocate(cat, "Restored Copy").unwrap();
        assert_eq!(out.catalog.tables[0].name, q("Restored Copy", "patients"));
    }

    #[test]
    fn everything_else_stays_live_and_the_copies_get_no_privileges() {
        let patients = q("public", "patients");
        let mut t = table(1, patients.clone());
        t.acl = acl("TABLE \"public\".\"patients\"");
        t.columns[0].acl = vec!["reader=r/o".into()];
        t.row_security = true;
        let object = |oid: u32, kind: &str| SchemaObject {
            key: ObjKey { class: 1255, oid },
            kind: kind.into(),
            schema: Some("public".into()),
            name: format!("{kind}{oid}"),
            section: Section::PostData,
            create: vec![],
            target: None,
            owner: None,
            acl: None,
            comment: None,
            table: Some(patients.clone()),
        };
        let cat = Catalog {
            server_version_num: 150008,
            schemas: vec![Schema {
                name: "public".into(),
                comment: None,
                existing: true,
                owner: None,
                acl: None,
            }],
            enums: vec![EnumType {
                oid: 30,
                name: q("public", "mood"),
                labels: vec!["ok".into()],
                comment: None,
                owner: None,
                acl: None,
            }],
            objects: vec![
                object(20, "trigger"),
                object(21, "trigger"),
                object(22, "trigger"),
                object(23, "policy"),
                object(24, "policy"),
                object(25, "materialized view data"),
                object(26, "function"),
            ],
            dependencies: vec![Dependency {
                dependent: ObjKey {
                    class: 1255,
                    oid: 20,
                },
                referenced: t.key(),
            }],
            types: vec![crate::catalog::types::TypeInfo {
                oid: 16390,
                name: "public.mood[]".into(),
                shape: crate::catalog::types::TypeShape::Array { elem: 30 },
                field_names: vec![],
                field_sql: vec![],
                base_sql: None,
            }],
            ..catalog(vec![t])
        };
        let out = moved(cat);
        let c = &out.catalog;
        assert!(c.objects.is_empty() && c.enums.is_empty() && c.schemas.is_empty());
        assert!(c.dependencies.is_empty());
        assert_eq!(c.types.len(), 1, "live type OIDs are still looked up");
        assert_eq!(c.server_version_num, 150008);
        let t = &c.tables[0];
        assert!(t.acl.is_none() && t.columns[0].acl.is_empty());
        assert_eq!(t.owner.as_deref(), Some("o"), "owners stay");
        assert!(t.row_security, "without policies it only keeps others out");
        assert_eq!(
            out.notes,
            vec![
                "1 enum type, 1 function, 1 materialized view data, 2 policies, \
                 3 triggers not restored beside the live tables"
            ]
        );
    }

    #[test]
    fn names_are_spelt_as_quote_identifier_does_apart_from_keywords() {
        assert_eq!(pg_quote("patients_2024"), "patients_2024");
        assert_eq!(pg_quote("_x"), "_x");
        assert_eq!(pg_quote("Order"), "\"Order\"");
        assert_eq!(pg_quote("2024"), "\"2024\"");
        assert_eq!(pg_quote("a b"), "\"a b\"");
        assert_eq!(pg_quote("a$"), "\"a$\"");
        assert_eq!(pg_quote("é"), "\"é\"");
        assert_eq!(pg_quote("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(pg_quote(""), "\"\"");
        assert_eq!(
            spellings(&q("public", "user")),
            vec![
                "public.user",
                "public.\"user\"",
                "\"public\".user",
                "\"public\".\"user\""
            ]
        );
        assert_eq!(spellings(&q("A", "B")), vec!["\"A\".\"B\""]);
    }

    #[test]
    fn replacing_skips_quoted_text() {
        let needles = vec![("x".to_string(), "Y".to_string())];
        assert_eq!(
            replace_unquoted("x \"x\"\"x\" 'x''x' x", &needles, false).as_deref(),
            Some("Y \"x\"\"x\" 'x''x' Y")
        );
        assert_eq!(
            replace_unquoted("x x", &needles, true).as_deref(),
            Some("Y x")
        );
        assert_eq!(replace_unquoted("'x'", &needles, false), None);
    }

    #[test]
    fn kinds_are_counted_in_plain_english() {
        assert_eq!(plural("trigger"), "triggers");
        assert_eq!(plural("policy"), "policies");
        assert_eq!(plural("operator family"), "operator families");
        assert_eq!(plural("index"), "indexes");
        assert_eq!(plural("default privileges"), "default privileges");
        assert_eq!(plural("materialized view data"), "materialized view data");
        assert_eq!(plural("key"), "keys");
    }
}
