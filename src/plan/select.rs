//! Which objects a partial backup holds: pg_dump's `-t`/`-T`/`-n`/`-N` rules applied
//! to a [`Catalog`].
//!
//! The rules (pg_dump's `selectDumpableNamespace`/`selectDumpableTable`):
//!
//! - nothing given: everything;
//! - `-n` selects schemas and everything in them (the schema itself, its enum types,
//!   sequences and tables); `-N` removes schemas from that (or, without `-n`, from
//!   everything);
//! - `-t` selects tables (and sequences, as in pg_dump) by name, and **only** those:
//!   no schema, no type, nothing database-wide. `-n` and `-N` have no effect when
//!   `-t` is given (as in pg_dump), except that their patterns must still match;
//! - `-T` removes tables (and sequences) from whatever was selected;
//! - a sequence owned by a table (serial, identity) goes with its table: kept when the
//!   table is kept, dropped when it is not, so `-T t` and `-t t` split a database into
//!   two backups that restore side by side. (pg_dump keeps a serial sequence of a table
//!   excluded by `-T`; we do not.) A serial sequence named by `-t` without its table is
//!   kept, without its `OWNED BY`.
//!
//! Every pattern must match something, exclusions included: pg_dump fails only for
//! inclusion patterns, and only with `--strict-names`, but a typo in a backup's
//! selection should never silently change what the backup holds. The error names each
//! pattern that matched nothing, with near matches.
//!
//! Like pg_dump, selection does not chase dependencies: a table kept without the
//! tables its foreign keys reference keeps those constraints in the catalog (the
//! restore can add them only where the referenced tables exist), a table keeps column
//! defaults that call sequences left out (`nextval('other_seq')`), and `-t` or `-n` on a
//! table whose columns use types of other schemas does not bring those types along.

use std::collections::BTreeSet;

use thiserror::Error;

use super::pattern::Pattern;
use crate::catalog::{Catalog, QualName};

/// The `-t`, `-n`, `-T` and `-N` patterns of a backup, restore or export, in the
/// order given. (The field comments are the command line's help.)
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct Selection {
    /// Only the tables (and sequences) matching PATTERN, without schemas, types or
    /// anything database-wide; repeatable. Patterns are pg_dump's: * and ? are
    /// wildcards, schema.table qualifies, unquoted letters are folded to lower case and
    /// "Quoted" parts are literal. -n and -N have no effect with -t.
    #[cfg_attr(feature = "cli", arg(short = 't', long = "table", value_name = "PATTERN",
          value_parser = Pattern::table))]
    pub tables: Vec<Pattern>,
    /// Only the schemas matching PATTERN, with everything in them; repeatable.
    #[cfg_attr(feature = "cli", arg(short = 'n', long = "schema", value_name = "PATTERN",
          value_parser = Pattern::schema))]
    pub schemas: Vec<Pattern>,
    /// Leave out the tables (and sequences) matching PATTERN; repeatable.
    #[cfg_attr(feature = "cli", arg(short = 'T', long = "exclude-table", value_name = "PATTERN",
          value_parser = Pattern::table))]
    pub exclude_tables: Vec<Pattern>,
    /// Leave out the schemas matching PATTERN; repeatable. Every pattern, exclusions
    /// included, must match something, or the command is refused (exit 2) with the
    /// near matches.
    #[cfg_attr(feature = "cli", arg(short = 'N', long = "exclude-schema", value_name = "PATTERN",
          value_parser = Pattern::schema))]
    pub exclude_schemas: Vec<Pattern>,
}

impl Selection {
    /// True when no pattern was given: the whole database.
    pub fn is_everything(&self) -> bool {
        self.tables.is_empty()
            && self.schemas.is_empty()
            && self.exclude_tables.is_empty()
            && self.exclude_schemas.is_empty()
    }

    /// Decides what the backup of `cat` holds, or names the patterns that matched
    /// nothing.
    pub fn choose(&self, cat: &Catalog) -> Result<Chosen, SelectError> {
        let relations = relations(cat);
        let schema_names = schema_names(cat);
        let mut misses = Vec::new();
        for (flag, list) in [("-t", &self.tables), ("-T", &self.exclude_tables)] {
            for p in list {
                if !relations
                    .iter()
                    .any(|r| p.matches_table(&r.schema, &r.name))
                {
                    misses.push(Miss {
                        flag,
                        pattern: p.to_string(),
                        suggestions: table_suggestions(p, &relations),
                    });
                }
            }
        }
        for (flag, list) in [("-n", &self.schemas), ("-N", &self.exclude_schemas)] {
            for p in list {
                if !schema_names.iter().any(|s| p.matches_schema(s)) {
                    misses.push(Miss {
                        flag,
                        pattern: p.to_string(),
                        suggestions: schema_suggestions(p, &schema_names),
                    });
                }
            }
        }
        if !misses.is_empty() {
            return Err(SelectError { misses });
        }

        let by_table = !self.tables.is_empty();
        let schemas: BTreeSet<String> = if by_table {
            BTreeSet::new()
        } else {
            schema_names
                .into_iter()
                .filter(|s| {
                    self.schemas.is_empty() || self.schemas.iter().any(|p| p.matches_schema(s))
                })
                .filter(|s| !self.exclude_schemas.iter().any(|p| p.matches_schema(s)))
                .collect()
        };
        let mut chosen = Chosen {
            everything: self.tables.is_empty() && self.schemas.is_empty(),
            schemas,
            tables: BTreeSet::new(),
            all_tables: cat.tables.iter().map(|t| t.name.clone()).collect(),
            include: self.tables.clone(),
            exclude: self.exclude_tables.clone(),
        };
        chosen.tables = cat
            .tables
            .iter()
            .filter(|t| chosen.keep_relation(&t.name.schema, &t.name.name))
            .map(|t| t.name.clone())
            .collect();
        Ok(chosen)
    }
}

/// Keeps in `cat` only what `sel` selects (see the module documentation).
pub fn select(cat: Catalog, sel: &Selection) -> Result<Catalog, SelectError> {
    if sel.is_everything() {
        return Ok(cat);
    }
    Ok(sel.choose(&cat)?.apply(cat))
}

/// Every relation `-t`/`-T` can name: tables and sequences. (When the catalog holds
/// views, materialized views or foreign tables, add them here: pg_dump's `-t` matches
/// those too.)
fn relations(cat: &Catalog) -> Vec<QualName> {
    let mut out: Vec<QualName> = cat.tables.iter().map(|t| t.name.clone()).collect();
    out.extend(cat.sequences.iter().map(|s| s.name.clone()));
    out.extend(
        cat.objects
            .iter()
            .filter(|o| is_relation(&o.kind))
            .filter_map(|o| Some(QualName::new(o.schema.clone()?, o.name.clone()))),
    );
    out.sort();
    out.dedup();
    out
}

/// Objects `-t` can name like tables, as pg_dump's does.
fn is_relation(kind: &str) -> bool {
    matches!(kind, "view" | "materialized view" | "foreign table")
}

/// Every schema `-n`/`-N` can name: the catalog's schemas, the schemas its objects
/// live in, and `public` (in every database, but never in the catalog's schema list:
/// it is not recreated).
fn schema_names(cat: &Catalog) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = cat.schemas.iter().map(|s| s.name.clone()).collect();
    out.extend(cat.tables.iter().map(|t| t.name.schema.clone()));
    out.extend(cat.sequences.iter().map(|s| s.name.schema.clone()));
    out.extend(cat.enums.iter().map(|e| e.name.schema.clone()));
    out.insert("public".into());
    out
}

/// What a selection keeps, decided once for a catalog.
#[derive(Debug, Clone)]
pub struct Chosen {
    /// Neither `-t` nor `-n` was given: database-wide objects are kept too.
    everything: bool,
    /// Schemas whose contents are kept (empty with `-t`).
    schemas: BTreeSet<String>,
    /// The tables kept.
    tables: BTreeSet<QualName>,
    /// Every table of the catalog, kept or not.
    all_tables: BTreeSet<QualName>,
    /// `-t` patterns (relations are picked by name when there are any).
    include: Vec<Pattern>,
    /// `-T` patterns.
    exclude: Vec<Pattern>,
}

impl Chosen {
    /// Whether table `name` is in the backup.
    pub fn keep_table(&self, name: &QualName) -> bool {
        self.tables.contains(name)
    }

    /// Whether a relation (a table, a sequence; later views, materialized views,
    /// foreign tables) is selected on its own: by `-t`, or by its schema, and not by
    /// `-T`.
    fn keep_relation(&self, schema: &str, name: &str) -> bool {
        let included = if self.include.is_empty() {
            self.schemas.contains(schema)
        } else {
            self.include.iter().any(|p| p.matches_table(schema, name))
        };
        included && !self.exclude.iter().any(|p| p.matches_table(schema, name))
    }

    // ----------------------------------------------------------------------------
    // keep_object: the rule for the catalog's generic list of other objects.
    // ----------------------------------------------------------------------------

    /// Whether an object of the catalog's generic object list stays in the backup.
    /// Pass what the object is, most specific first:
    ///
    /// - `table`: the table it belongs to (index, trigger, policy, rule, constraint,
    ///   statistics object on one table, …). Kept exactly when that table is kept;
    ///   `schema` and `relation` are then ignored. When `table` is not one of the
    ///   catalog's tables but a view, materialized view or foreign table (a trigger on
    ///   a view, an index on or the data of a materialized view), it is kept with that
    ///   relation, as under `relation` below.
    /// - `relation`: the object's own name when it is a relation `-t`/`-T` can name
    ///   (view, materialized view, foreign table), with `schema` its schema. Kept when
    ///   `-t` names it (or, without `-t`, when its schema is kept) and `-T` does not.
    /// - `schema` alone: any other object inside a schema (function, procedure,
    ///   aggregate, type, domain, collation, text search object, …). Kept when its
    ///   schema's contents are kept: never with `-t`, the `-n` schemas minus `-N`, or
    ///   every schema but the `-N` ones when neither `-t` nor `-n` is given.
    /// - nothing (`None`, `None`, `None`): a database-wide object (extension, event
    ///   trigger, publication, cast, foreign data wrapper, server, …). Kept only when
    ///   neither `-t` nor `-n` is given, as pg_dump does.
    ///
    /// In [`Chosen::apply`]:
    /// `objects.retain(|o| self.keep_object(o.schema.as_deref(), o.table.as_ref(), <o's
    /// name for views, materialized views and foreign tables, else None>))`.
    pub fn keep_object(
        &self,
        schema: Option<&str>,
        table: Option<&QualName>,
        relation: Option<&str>,
    ) -> bool {
        if let Some(t) = table {
            return if self.all_tables.contains(t) {
                self.keep_table(t)
            } else {
                self.keep_relation(&t.schema, &t.name)
            };
        }
        match (schema, relation) {
            (Some(s), Some(name)) => self.keep_relation(s, name),
            (Some(s), None) => self.schemas.contains(s),
            (None, _) => self.everything,
        }
    }

    /// The catalog with only what this selection keeps: schemas, enum types,
    /// sequences and tables. Catalog fields added later pass through unfiltered until
    /// they get their rule here (see [`Chosen::keep_object`]).
    pub fn apply(&self, mut cat: Catalog) -> Catalog {
        cat.schemas.retain(|s| self.schemas.contains(&s.name));
        cat.enums.retain(|e| self.schemas.contains(&e.name.schema));
        cat.tables.retain(|t| self.keep_table(&t.name));
        cat.sequences.retain_mut(|s| {
            let owner_kept = s.owned_by.as_ref().map(|o| self.keep_table(&o.table));
            match owner_kept {
                Some(kept) if s.identity => kept,
                Some(true) => true,
                // A serial sequence without its table: only when -t names it, and
                // then without an OWNED BY the restore could not honour.
                Some(false) => {
                    let named = !self.include.is_empty()
                        && self.keep_relation(&s.name.schema, &s.name.name);
                    if named {
                        s.owned_by = None;
                    }
                    named
                }
                None => self.keep_relation(&s.name.schema, &s.name.name),
            }
        });
        cat.objects.retain(|o| {
            self.keep_object(
                o.schema.as_deref(),
                o.table.as_ref(),
                is_relation(&o.kind).then_some(o.name.as_str()),
            )
        });
        let kept: std::collections::HashSet<crate::catalog::ObjKey> = cat
            .objects
            .iter()
            .map(|o| o.key)
            .chain(cat.tables.iter().map(|t| t.key()))
            .chain(cat.sequences.iter().map(|s| crate::catalog::ObjKey {
                class: crate::catalog::PG_CLASS,
                oid: s.oid,
            }))
            .chain(cat.enums.iter().map(|e| crate::catalog::ObjKey {
                class: crate::catalog::PG_TYPE,
                oid: e.oid,
            }))
            .collect();
        cat.dependencies
            .retain(|d| kept.contains(&d.dependent) && kept.contains(&d.referenced));
        cat
    }
}

/// One pattern that matched nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Miss {
    /// `-t`, `-T`, `-n` or `-N`.
    pub flag: &'static str,
    pub pattern: String,
    /// Near matches, qualified (`public.patients`), best first, at most three.
    pub suggestions: Vec<String>,
}

impl Miss {
    fn what(&self) -> &'static str {
        match self.flag {
            "-n" | "-N" => "schema",
            _ => "table",
        }
    }
}

/// Patterns that matched nothing in the database.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}", describe(&self.misses))]
pub struct SelectError {
    pub misses: Vec<Miss>,
}

fn describe(misses: &[Miss]) -> String {
    let one = |m: &Miss| format!("no {} matches {} {}", m.what(), m.flag, m.pattern);
    let guess = |m: &Miss| match m.suggestions.as_slice() {
        [] => None,
        [a] => Some(format!("did you mean {a}?")),
        [rest @ .., last] => Some(format!("did you mean {} or {last}?", rest.join(", "))),
    };
    match misses {
        [m] => match guess(m) {
            Some(g) => format!("{}; {g}", one(m)),
            None => one(m),
        },
        _ => misses
            .iter()
            .map(|m| match guess(m) {
                Some(g) => format!("{} ({g})", one(m)),
                None => one(m),
            })
            .collect::<Vec<_>>()
            .join("; "),
    }
}

const MAX_SUGGESTIONS: usize = 3;

/// Near matches for a table pattern: names it matches ignoring case, else names a
/// few edits away from (or containing) what it spells.
fn table_suggestions(p: &Pattern, relations: &[QualName]) -> Vec<String> {
    let folded: Vec<String> = relations
        .iter()
        .filter(|r| p.matches_table_ignoring_case(&r.schema, &r.name))
        .map(QualName::plain)
        .collect();
    if !folded.is_empty() {
        return folded.into_iter().take(MAX_SUGGESTIONS).collect();
    }
    let Some((schema, name)) = p.literal() else {
        return Vec::new();
    };
    let scored = relations.iter().filter_map(|r| {
        let score = match &schema {
            Some(s) => closeness(&format!("{s}.{name}"), &r.plain()),
            None => closeness(&name, &r.name),
        }?;
        Some((score, r.plain()))
    });
    best(scored)
}

/// Near matches for a schema pattern, as for tables.
fn schema_suggestions(p: &Pattern, schemas: &BTreeSet<String>) -> Vec<String> {
    let folded: Vec<String> = schemas
        .iter()
        .filter(|s| p.matches_schema_ignoring_case(s))
        .cloned()
        .collect();
    if !folded.is_empty() {
        return folded.into_iter().take(MAX_SUGGESTIONS).collect();
    }
    let Some((_, name)) = p.literal() else {
        return Vec::new();
    };
    best(
        schemas
            .iter()
            .filter_map(|s| Some((closeness(&name, s)?, s.clone()))),
    )
}

fn best(scored: impl Iterator<Item = (usize, String)>) -> Vec<String> {
    let mut v: Vec<(usize, String)> = scored.collect();
    v.sort();
    v.dedup_by(|a, b| a.1 == b.1);
    v.into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|(_, name)| name)
        .collect()
}

/// How far `typed` is from `actual` (ignoring case), when near enough to suggest: a
/// few edits (adjacent swaps count one), or `typed` being a part of `actual`.
fn closeness(typed: &str, actual: &str) -> Option<usize> {
    let (a, b) = (typed.to_lowercase(), actual.to_lowercase());
    let d = edit_distance(&a, &b);
    let len = a.chars().count();
    let allowed = (len / 3).clamp(1, 3);
    if d <= allowed {
        Some(d)
    } else if len >= 3 && b.contains(&a) {
        Some(allowed + 1)
    } else {
        None
    }
}

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps
/// of two adjacent characters each cost one.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{EnumType, Schema, Sequence, Table};

    // Built from JSON so fields added to the catalog later (all serde-defaulted) need
    // no change here.
    fn table(schema: &str, name: &str) -> Table {
        serde_json::from_value(serde_json::json!({
            "oid": 0, "name": {"schema": schema, "name": name}, "columns": []
        }))
        .expect("a table")
    }

    fn sequence(schema: &str, name: &str, owner: Option<(&str, &str)>, identity: bool) -> Sequence {
        let owned_by = owner
            .map(|(s, t)| serde_json::json!({"table": {"schema": s, "name": t}, "column": "id"}));
        serde_json::from_value(serde_json::json!({
            "name": {"schema": schema, "name": name}, "data_type": "bigint", "start": 1,
            "increment": 1, "min": 1, "max": i64::MAX, "cache": 1, "cycle": false,
            "last_value": 1, "is_called": false, "owned_by": owned_by, "identity": identity
        }))
        .expect("a sequence")
    }

    fn enum_type(schema: &str, name: &str) -> EnumType {
        serde_json::from_value(serde_json::json!({
            "name": {"schema": schema, "name": name}, "labels": ["a"]
        }))
        .expect("an enum")
    }

    /// The heart-recovery fixture's shape, in small.
    fn heart() -> Catalog {
        let mut patients = table("public", "patients");
        patients.constraints.push(
            serde_json::from_value(serde_json::json!({
                "name": "patients_organization_id_fkey", "kind": "foreign_key",
                "definition": "FOREIGN KEY (organization_id) REFERENCES organizations(id)",
                "references": {"schema": "public", "name": "organizations"}
            }))
            .expect("a constraint"),
        );
        let clinical: Schema =
            serde_json::from_value(serde_json::json!({"name": "clinical"})).expect("a schema");
        Catalog {
            server_version_num: 170000,
            encoding: "UTF8".into(),
            schemas: vec![clinical],
            enums: vec![
                enum_type("public", "vital_kind"),
                enum_type("clinical", "note_kind"),
            ],
            sequences: vec![
                sequence("public", "chart_number_seq", None, false),
                sequence(
                    "public",
                    "patients_id_seq",
                    Some(("public", "patients")),
                    false,
                ),
                sequence(
                    "public",
                    "vitals_samples_id_seq",
                    Some(("public", "vitals_samples")),
                    false,
                ),
                sequence(
                    "public",
                    "organizations_id_seq",
                    Some(("public", "organizations")),
                    true,
                ),
                sequence(
                    "clinical",
                    "clinical_notes_id_seq",
                    Some(("clinical", "clinical_notes")),
                    false,
                ),
            ],
            tables: vec![
                table("public", "organizations"),
                patients,
                table("public", "vitals_samples"),
                table("clinical", "clinical_notes"),
                table("clinical", "therapy_sessions"),
                table("Mixed Case", "Order"),
            ],
            ..Default::default()
        }
    }

    fn sel(t: &[&str], n: &[&str], xt: &[&str], xn: &[&str]) -> Selection {
        let tp = |v: &[&str]| v.iter().map(|p| Pattern::table(p).unwrap()).collect();
        let sp = |v: &[&str]| v.iter().map(|p| Pattern::schema(p).unwrap()).collect();
        Selection {
            tables: tp(t),
            schemas: sp(n),
            exclude_tables: tp(xt),
            exclude_schemas: sp(xn),
        }
    }

    fn names(cat: &Catalog) -> (Vec<String>, Vec<String>, Vec<String>, Vec<String>) {
        (
            cat.schemas.iter().map(|s| s.name.clone()).collect(),
            cat.enums.iter().map(|e| e.name.plain()).collect(),
            cat.sequences.iter().map(|s| s.name.plain()).collect(),
            cat.tables.iter().map(|t| t.name.plain()).collect(),
        )
    }

    #[test]
    fn select_nothing_given_keeps_everything() {
        let cat = select(heart(), &Selection::default()).unwrap();
        let (s, e, q, t) = names(&cat);
        assert_eq!((s.len(), e.len(), q.len(), t.len()), (1, 2, 5, 6));
        let chosen = Selection::default().choose(&heart()).unwrap();
        assert!(chosen.keep_object(None, None, None), "extensions too");
        assert!(chosen.keep_object(Some("public"), None, None));
    }

    #[test]
    fn select_by_table_keeps_just_the_tables_and_their_sequences() {
        let s = sel(&["patients"], &[], &[], &[]);
        let cat = select(heart(), &s).unwrap();
        let (schemas, enums, seqs, tables) = names(&cat);
        assert!(
            schemas.is_empty() && enums.is_empty(),
            "no schemas or types with -t"
        );
        assert_eq!(seqs, ["public.patients_id_seq"]);
        assert_eq!(tables, ["public.patients"]);
        assert_eq!(
            cat.tables[0].constraints.len(),
            1,
            "the foreign key to a table left out stays (pg_dump -t keeps it too)"
        );
        assert_eq!(cat.server_version_num, 170000);
        // Several patterns, wildcards, and identity sequences following their table.
        let s = sel(&["org*", "clinical.*"], &[], &[], &[]);
        let (_, _, seqs, tables) = names(&select(heart(), &s).unwrap());
        assert_eq!(
            tables,
            [
                "public.organizations",
                "clinical.clinical_notes",
                "clinical.therapy_sessions"
            ]
        );
        assert_eq!(
            seqs,
            [
                "public.organizations_id_seq",
                "clinical.clinical_notes_id_seq"
            ]
        );
    }

    #[test]
    fn select_by_table_also_names_sequences() {
        let s = sel(&["patients", "chart_number_seq"], &[], &[], &[]);
        let (_, _, seqs, _) = names(&select(heart(), &s).unwrap());
        assert_eq!(seqs, ["public.chart_number_seq", "public.patients_id_seq"]);
        // A serial sequence named without its table loses its OWNED BY.
        let s = sel(&["vitals_samples_id_seq"], &[], &[], &[]);
        let cat = select(heart(), &s).unwrap();
        assert_eq!(names(&cat).2, ["public.vitals_samples_id_seq"]);
        assert!(cat.tables.is_empty());
        assert_eq!(cat.sequences[0].owned_by, None);
        // An identity sequence never goes without its table.
        let s = sel(&["organizations_id_seq"], &[], &[], &[]);
        assert!(select(heart(), &s).unwrap().sequences.is_empty());
    }

    #[test]
    fn select_by_schema_keeps_the_schema_and_everything_in_it() {
        let s = sel(&[], &["clinical"], &[], &[]);
        let (schemas, enums, seqs, tables) = names(&select(heart(), &s).unwrap());
        assert_eq!(schemas, ["clinical"]);
        assert_eq!(enums, ["clinical.note_kind"]);
        assert_eq!(seqs, ["clinical.clinical_notes_id_seq"]);
        assert_eq!(
            tables,
            ["clinical.clinical_notes", "clinical.therapy_sessions"]
        );
        // public is never in the schema list, but -n public works.
        let s = sel(&[], &["public"], &[], &[]);
        let (schemas, enums, seqs, tables) = names(&select(heart(), &s).unwrap());
        assert!(schemas.is_empty());
        assert_eq!(enums, ["public.vital_kind"]);
        assert_eq!(seqs.len(), 4);
        assert_eq!(tables.len(), 3);
        let chosen = s.choose(&heart()).unwrap();
        assert!(
            !chosen.keep_object(None, None, None),
            "nothing database-wide with -n"
        );
        assert!(chosen.keep_object(Some("public"), None, None));
        assert!(!chosen.keep_object(Some("clinical"), None, None));
    }

    #[test]
    fn select_exclusions_apply_after_inclusions() {
        // -T alone: everything but the table and its sequence.
        let s = sel(&[], &[], &["vitals_samples"], &[]);
        let (schemas, enums, seqs, tables) = names(&select(heart(), &s).unwrap());
        assert_eq!(schemas, ["clinical"]);
        assert_eq!(enums.len(), 2);
        assert!(!seqs.contains(&"public.vitals_samples_id_seq".to_string()));
        assert!(seqs.contains(&"public.chart_number_seq".to_string()));
        assert!(!tables.contains(&"public.vitals_samples".to_string()));
        assert_eq!(tables.len(), 5);
        let chosen = s.choose(&heart()).unwrap();
        assert!(
            chosen.keep_object(None, None, None),
            "-T keeps database-wide objects"
        );
        // -N alone: everything outside the schema.
        let s = sel(&[], &[], &[], &["clinical"]);
        let (schemas, enums, _, tables) = names(&select(heart(), &s).unwrap());
        assert!(schemas.is_empty());
        assert_eq!(enums, ["public.vital_kind"]);
        assert!(tables.iter().all(|t| !t.starts_with("clinical.")));
        // -n with -N, -t with -T.
        let s = sel(&[], &["*"], &[], &["public", "\"Mixed Case\""]);
        assert_eq!(names(&select(heart(), &s).unwrap()).0, ["clinical"]);
        let s = sel(&["clinical.*"], &[], &["*notes"], &[]);
        assert_eq!(
            names(&select(heart(), &s).unwrap()).3,
            ["clinical.therapy_sessions"]
        );
    }

    #[test]
    fn select_schema_switches_have_no_effect_with_tables() {
        let s = sel(&["patients"], &["clinical"], &[], &["public"]);
        let (schemas, enums, _, tables) = names(&select(heart(), &s).unwrap());
        assert!(schemas.is_empty() && enums.is_empty());
        assert_eq!(tables, ["public.patients"]);
    }

    #[test]
    fn select_keep_object_follows_tables_relations_and_schemas() {
        // -t also names relations of the object list (views): keep_object decides.
        let s = sel(&["patients", "*_view"], &[], &[], &[]);
        let mut cat = heart();
        cat.tables.push(table("public", "x_view"));
        let chosen = s.choose(&cat).unwrap();
        let patients = QualName::new("public", "patients");
        let vitals = QualName::new("public", "vitals_samples");
        assert!(
            chosen.keep_object(Some("public"), Some(&patients), None),
            "a trigger on it"
        );
        assert!(!chosen.keep_object(Some("public"), Some(&vitals), None));
        assert!(chosen.keep_object(Some("public"), None, Some("patient_view")));
        // An index on (or the data of) a materialized view goes with the view.
        let matview = QualName::new("public", "patient_view");
        assert!(chosen.keep_object(Some("public"), Some(&matview), None));
        let other = QualName::new("public", "other_matview");
        assert!(!chosen.keep_object(Some("public"), Some(&other), None));
        assert!(!chosen.keep_object(Some("public"), None, Some("other")));
        assert!(
            !chosen.keep_object(Some("public"), None, None),
            "no functions with -t"
        );
        assert!(
            !chosen.keep_object(None, None, None),
            "no extensions with -t"
        );
        assert!(chosen.keep_table(&patients));
    }

    #[test]
    fn select_refuses_patterns_that_match_nothing_with_near_matches() {
        let e = select(heart(), &sel(&["patiens"], &[], &[], &[])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no table matches -t patiens; did you mean public.patients?"
        );
        // Quoted names keep their case: suggest the name that differs only in case.
        let e = select(heart(), &sel(&["\"Patients\""], &[], &[], &[])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no table matches -t \"Patients\"; did you mean public.patients?"
        );
        let e = select(heart(), &sel(&["public.pateints"], &[], &[], &[])).unwrap_err();
        assert_eq!(e.misses[0].suggestions, ["public.patients"]);
        let e = select(heart(), &sel(&["vitals"], &[], &[], &[])).unwrap_err();
        assert_eq!(
            e.misses[0].suggestions,
            ["public.vitals_samples", "public.vitals_samples_id_seq"]
        );
        // Several misses, exclusions included, each named.
        let e = select(
            heart(),
            &sel(
                &["patients"],
                &["clinicl"],
                &["nothing_like_it*"],
                &["\"Clinical\""],
            ),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "no table matches -T nothing_like_it*; no schema matches -n clinicl (did you mean \
             clinical?); no schema matches -N \"Clinical\" (did you mean clinical?)"
        );
        // Too far from anything: no guess.
        let e = select(heart(), &sel(&["zzz"], &[], &[], &[])).unwrap_err();
        assert_eq!(e.to_string(), "no table matches -t zzz");
    }

    #[test]
    fn select_edit_distance_counts_swaps_once() {
        assert_eq!(edit_distance("patients", "patients"), 0);
        assert_eq!(edit_distance("patiens", "patients"), 1);
        assert_eq!(edit_distance("pateints", "patients"), 1);
        assert_eq!(edit_distance("patinets", "patients"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("ptaients", "patients"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(closeness("ab", "xy"), None);
        assert_eq!(closeness("users", "user"), Some(1));
    }
}
