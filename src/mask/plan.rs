//! Rules checked against a backup's catalog, before anything is written.
//!
//! A column referencing a masked column through a foreign key takes the same transform
//! (so the reference still finds its row); a rule that gives it another, or masks a
//! referencing column whose parent is not masked, is refused. A column under a primary
//! key, unique constraint or unique index takes only a transform that keeps distinct
//! values distinct; NOT NULL columns are not nulled; transforms apply only to the
//! types they can write; partition keys and text-format tables are not masked.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde::Serialize;

use super::rewrite::{FieldMask, TableMask};
use super::rules::{LargeObjects, Rules};
use super::transform::{Injective, Keys, Transform, ValueKind};
use super::MaskError;
use crate::catalog::types::TypeShape;
use crate::catalog::{Catalog, Column, ConstraintKind, Table};
use crate::codec::SecretKey;

/// One masked column, for reports: never values.
#[derive(Debug, Clone, Serialize)]
pub struct MaskedColumn {
    pub table: String,
    pub column: String,
    pub transform: String,
    /// `rule 3`, or the foreign key it follows.
    pub source: String,
}

/// What a masked restore or export reports: which rules, and what they masked; never
/// values.
#[derive(Debug, Clone, Serialize)]
pub struct MaskSummary {
    /// SHA-256 of the rules file.
    pub rules_sha256: String,
    pub columns: Vec<MaskedColumn>,
}

/// Compiled rules: what to do to each column of each table, and the keys to do it.
pub struct Masking {
    tables: HashMap<u32, Arc<TableMask>>,
    /// Every column a rule or a foreign key decides, `keep` included, by table OID
    /// and column name: what it gets and why.
    covered: HashMap<(u32, String), String>,
    pub columns: Vec<MaskedColumn>,
    /// What the user should know: CHECK constraints over masked columns.
    pub notes: Vec<String>,
    /// SHA-256 of the rules file.
    pub rules_sha256: String,
    pub large_objects: LargeObjects,
}

/// No keys in debug output.
impl std::fmt::Debug for Masking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masking")
            .field("columns", &self.columns.len())
            .field("rules_sha256", &self.rules_sha256)
            .finish()
    }
}

impl Masking {
    /// The mask for the table with this source OID; `None` when it is carried as is.
    pub fn table(&self, oid: u32) -> Option<Arc<TableMask>> {
        self.tables.get(&oid).cloned()
    }

    pub fn summary(&self) -> MaskSummary {
        MaskSummary {
            rules_sha256: self.rules_sha256.clone(),
            columns: self.columns.clone(),
        }
    }

    /// What the rules do to a column (`keep` included), or `None` when no rule covers it.
    pub fn covers(&self, table: &Table, column: &str) -> Option<&str> {
        self.covered
            .get(&(table.oid, column.to_string()))
            .map(String::as_str)
    }
}

/// The masking kind of a column, through domains.
pub fn value_kind(cat: &Catalog, column: &Column) -> ValueKind {
    let mut oid = column.type_oid;
    for _ in 0..16 {
        match cat.types.iter().find(|t| t.oid == oid).map(|t| &t.shape) {
            Some(TypeShape::Domain { base }) => oid = *base,
            _ => break,
        }
    }
    let sql = if oid == column.type_oid {
        column.type_sql.as_str()
    } else {
        ""
    };
    // citext (an extension's type, with a per-cluster OID) sends its text as text does.
    let named_citext =
        |name: &str| name.rsplit('.').next().map(|n| n.trim_matches('"')) == Some("citext");
    let citext = cat
        .types
        .iter()
        .any(|t| t.oid == oid && named_citext(&t.name))
        || (oid == column.type_oid && named_citext(&column.type_sql));
    if citext {
        return ValueKind::Text {
            max_chars: None,
            padded: false,
        };
    }
    ValueKind::of(oid, sql)
}

/// The table's columns an SQL text names (an index's expression, a CHECK, a
/// partition key): every identifier that is one of its columns. Generous on purpose:
/// a column named in a WHERE clause counts too.
pub fn mentioned_columns(sql: &str, table: &Table) -> BTreeSet<String> {
    let mut words = BTreeSet::new();
    let mut chars = sql.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '"' {
            let mut name = String::new();
            while let Some((_, c)) = chars.next() {
                if c != '"' {
                    name.push(c);
                } else if chars.peek().is_some_and(|(_, n)| *n == '"') {
                    name.push('"');
                    chars.next();
                } else {
                    break;
                }
            }
            words.insert(name);
        } else if c == '\'' {
            // A literal: its words are not columns.
            while let Some((_, c)) = chars.next() {
                if c == '\'' && chars.peek().is_none_or(|(_, n)| *n != '\'') {
                    break;
                } else if c == '\'' {
                    chars.next();
                }
            }
        } else if c.is_alphabetic() || c == '_' {
            let mut end = i + c.len_utf8();
            while let Some((j, n)) = chars.peek().copied() {
                if n.is_alphanumeric() || n == '_' || n == '$' {
                    end = j + n.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            words.insert(sql[i..end].to_lowercase());
        }
    }
    table
        .columns
        .iter()
        .filter(|c| words.contains(&c.name))
        .map(|c| c.name.clone())
        .collect()
}

/// `t` and the tables it takes rows or columns from: partitioned parents and
/// inheritance parents, nearest first.
fn ancestors<'c>(cat: &'c Catalog, t: &'c Table) -> Vec<&'c Table> {
    let mut out = vec![t];
    let mut i = 0;
    while i < out.len() && out.len() < 64 {
        let parents: Vec<&Table> = out[i]
            .partition_of
            .iter()
            .map(|p| &p.parent)
            .chain(&out[i].inherits)
            .filter_map(|n| cat.table(n))
            .collect();
        for p in parents {
            if !out.iter().any(|x| x.name == p.name) {
                out.push(p);
            }
        }
        i += 1;
    }
    out
}

/// The integer width of the narrowest column each column is linked to by foreign keys
/// (itself included), for `format_preserving` (see `Context::group_width`).
fn group_widths(
    cat: &Catalog,
    fk_pairs: &[(usize, String, usize, String, String)],
) -> HashMap<(usize, String), u8> {
    let width = |ti: usize, c: &str| {
        cat.tables[ti]
            .columns
            .iter()
            .find(|x| x.name == c)
            .and_then(|x| match value_kind(cat, x) {
                ValueKind::Int(w) => Some(w),
                _ => None,
            })
    };
    let mut out: HashMap<(usize, String), u8> = HashMap::new();
    for (ti, l, ri, r, _) in fk_pairs {
        if let (Some(a), Some(b)) = (width(*ti, l), width(*ri, r)) {
            for k in [(*ti, l.clone()), (*ri, r.clone())] {
                let w = out.entry(k).or_insert(a.min(b));
                *w = (*w).min(a.min(b));
            }
        }
    }
    // Chains (a → b → c): spread the narrowest width until nothing changes.
    loop {
        let mut changed = false;
        for (ti, l, ri, r, _) in fk_pairs {
            let (a, b) = (
                out.get(&(*ti, l.clone())).copied(),
                out.get(&(*ri, r.clone())).copied(),
            );
            if let (Some(a), Some(b)) = (a, b) {
                if a != b {
                    let m = a.min(b);
                    out.insert((*ti, l.clone()), m);
                    out.insert((*ri, r.clone()), m);
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    out
}

/// A unique index's key (between `USING method (` and `INCLUDE` or `WHERE`) and its
/// predicate, as `pg_get_indexdef` prints them.
fn index_parts(definition: &str) -> (&str, &str) {
    let key = definition.find(" USING ").map_or("", |p| &definition[p..]);
    let (key, predicate) = key.split_once(" WHERE ").unwrap_or((key, ""));
    (key.split(" INCLUDE ").next().unwrap_or(key), predicate)
}

/// The domain a column is of, if any.
fn domain_of(cat: &Catalog, column: &Column) -> Option<String> {
    cat.types
        .iter()
        .find(|t| t.oid == column.type_oid && matches!(t.shape, TypeShape::Domain { .. }))
        .map(|t| t.name.clone())
}

/// What the rules do to one column once foreign keys are followed.
#[derive(Clone)]
struct Effective {
    transform: Transform,
    source: String,
}

/// Checks `rules` against the catalog and compiles them. `text_copied` says which
/// tables the backup copied in text format. Every problem is listed at once.
pub fn compile(
    cat: &Catalog,
    rules: &Rules,
    key: &SecretKey,
    text_copied: &dyn Fn(&Table) -> bool,
) -> Result<Masking, MaskError> {
    let positions = cat.table_positions();
    let mut eff: HashMap<(usize, String), Effective> = HashMap::new();
    let mut used = BTreeSet::new();
    for (ti, t) in cat.tables.iter().enumerate() {
        let lineage = ancestors(cat, t);
        for c in t.copy_columns() {
            // A rule naming a partitioned or inheritance parent's column holds for its
            // children's rows, which is where the rows are.
            let found = lineage.iter().find_map(|a| {
                rules
                    .rule_for(&a.name.schema, &a.name.name, &c.name)
                    .map(|r| (a, r))
            });
            if let Some((a, r)) = found {
                used.insert(r.number);
                let source = if a.name == t.name {
                    format!("rule {}", r.number)
                } else {
                    format!("rule {} through {}", r.number, a.name.plain())
                };
                eff.insert(
                    (ti, c.name.clone()),
                    Effective {
                        transform: r.transform.clone(),
                        source,
                    },
                );
            }
        }
    }
    let masked = |e: Option<&Effective>| e.filter(|e| e.transform != Transform::Keep).cloned();
    let fk_pairs: Vec<(usize, String, usize, String, String)> = cat
        .tables
        .iter()
        .enumerate()
        .flat_map(|(ti, t)| {
            t.constraints.iter().filter_map(move |c| {
                let (local, referenced) = c.foreign_key_columns()?;
                Some((ti, c, local, referenced))
            })
        })
        .filter_map(|(ti, c, local, referenced)| {
            let ri = *positions.get(c.references.as_ref()?)?;
            Some(
                local
                    .into_iter()
                    .zip(referenced)
                    .map(move |(l, r)| (ti, l, ri, r, c.name.clone()))
                    .collect::<Vec<_>>(),
            )
        })
        .flatten()
        .collect();
    // Referencing columns inherit their parent's transform, through chains of keys.
    loop {
        let mut changed = false;
        for (ti, l, ri, r, name) in &fk_pairs {
            let parent = masked(eff.get(&(*ri, r.clone())));
            if let (Some(p), None) = (parent, eff.get(&(*ti, l.clone()))) {
                eff.insert(
                    (*ti, l.clone()),
                    Effective {
                        transform: p.transform,
                        source: format!(
                            "foreign key {name} to {}.{r}",
                            cat.tables[*ri].name.plain()
                        ),
                    },
                );
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }

    let mut problems = Vec::new();
    let label = |ti: usize, c: &str| format!("{}.{c}", cat.tables[ti].name.plain());
    for (ti, l, ri, r, name) in &fk_pairs {
        let parent = masked(eff.get(&(*ri, r.clone())));
        let child = masked(eff.get(&(*ti, l.clone())));
        match (parent, child) {
            (Some(p), c) if c.as_ref().map(|c| &c.transform) != Some(&p.transform) => {
                problems.push(format!(
                    "{} references {} through {name}, which is masked with {} ({}); the \
                     referencing column must be masked the same way (it is {})",
                    label(*ti, l),
                    label(*ri, r),
                    p.transform.describe(),
                    p.source,
                    eff.get(&(*ti, l.clone()))
                        .map_or("not masked".into(), |e| format!(
                            "{} by {}",
                            e.transform.describe(),
                            e.source
                        ))
                ));
            }
            (None, Some(c)) => problems.push(format!(
                "{} is masked with {} ({}), but it references {} through {name}, which is \
                 not: the masked values would find no row; mask {} the same way or keep {}",
                label(*ti, l),
                c.transform.describe(),
                c.source,
                label(*ri, r),
                label(*ri, r),
                label(*ti, l)
            )),
            _ => {}
        }
    }

    let keys = Arc::new(Keys::derive(key));
    let mut tables = HashMap::new();
    let mut columns = Vec::new();
    let mut notes: Vec<String> = rules
        .rules
        .iter()
        .filter(|r| !used.contains(&r.number))
        .map(|r| {
            format!(
                "rule {} ({}) names no column of the backup: a typo?",
                r.number,
                r.columns
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect();
    let widths = group_widths(cat, &fk_pairs);
    for (ti, t) in cat.tables.iter().enumerate() {
        let copied: Vec<&Column> = t.copy_columns().collect();
        let mut fields: Vec<Option<FieldMask>> = Vec::new();
        let mut masked_names = BTreeSet::new();
        for c in &copied {
            let Some(e) = masked(eff.get(&(ti, c.name.clone()))) else {
                fields.push(None);
                continue;
            };
            let here = label(ti, &c.name);
            let kind = value_kind(cat, c);
            let why = format!("{here} ({}, {})", c.type_sql, e.source);
            if !e.transform.applies_to(&kind) {
                problems.push(format!(
                    "{why}: {} does not apply to this type",
                    e.transform.describe()
                ));
            }
            if e.transform == Transform::Null && c.not_null {
                problems.push(format!("{why}: null, but the column is NOT NULL"));
            }
            let entity = match &e.transform {
                Transform::ShiftDate { by, .. } => {
                    match copied.iter().position(|x| x.name == *by) {
                        Some(i) => Some((i, value_kind(cat, copied[i]))),
                        None => {
                            problems.push(format!(
                                "{why}: shift_date by {by}, but {} has no such column",
                                t.name.plain()
                            ));
                            None
                        }
                    }
                }
                _ => None,
            };
            masked_names.insert(c.name.clone());
            columns.push(MaskedColumn {
                table: t.name.plain(),
                column: c.name.clone(),
                transform: e.transform.describe(),
                source: e.source.clone(),
            });
            let group_width = widths.get(&(ti, c.name.clone())).copied();
            if let Some(domain) = domain_of(cat, c) {
                notes.push(format!(
                    "{here} is of domain {domain}: a masked value its constraints reject stops \
                     that table's load"
                ));
            }
            fields.push(Some(FieldMask {
                column: c.name.clone(),
                transform: e.transform,
                kind,
                entity,
                group_width,
            }));
        }
        if masked_names.is_empty() {
            continue;
        }
        let tname = t.name.plain();
        if text_copied(t) {
            problems.push(format!(
                "{tname} was backed up in text format (a column type without binary \
                 input/output), which masking cannot rewrite: keep its columns"
            ));
        }
        check_unique(ti, t, &eff, &masked_names, &mut problems);
        let partition_keys = [
            t.partition_key.clone(),
            t.partition_of
                .as_ref()
                .and_then(|p| cat.table(&p.parent))
                .and_then(|p| p.partition_key.clone()),
        ];
        for key in partition_keys.iter().flatten() {
            for c in mentioned_columns(key, t).intersection(&masked_names) {
                problems.push(format!(
                    "{tname}.{c} is part of a partition key: masked values could belong to \
                     another partition; keep it"
                ));
            }
        }
        for c in t
            .constraints
            .iter()
            .filter(|c| c.kind == ConstraintKind::Check)
        {
            let hit: Vec<String> = mentioned_columns(&c.definition, t)
                .intersection(&masked_names)
                .cloned()
                .collect();
            if !hit.is_empty() {
                notes.push(format!(
                    "CHECK {} of {tname} reads masked column(s) {}: a masked value it \
                     rejects stops that table's load",
                    c.name,
                    hit.join(", ")
                ));
            }
        }
        tables.insert(
            t.oid,
            Arc::new(TableMask::new(tname, fields, Arc::clone(&keys))),
        );
    }
    if !problems.is_empty() {
        return Err(MaskError::Refused(problems));
    }
    let covered = eff
        .into_iter()
        .map(|((ti, c), e)| {
            (
                (cat.tables[ti].oid, c),
                format!("{} ({})", e.transform.describe(), e.source),
            )
        })
        .collect();
    Ok(Masking {
        tables,
        covered,
        columns,
        notes,
        rules_sha256: rules.sha256.clone(),
        large_objects: rules.large_objects,
    })
}

/// Refuses transforms that could make two rows equal under a primary key, unique
/// constraint or unique index, or that an exclusion constraint would have to judge.
fn check_unique(
    ti: usize,
    t: &Table,
    eff: &HashMap<(usize, String), Effective>,
    masked: &BTreeSet<String>,
    problems: &mut Vec<String>,
) {
    let mut sets: Vec<(String, BTreeSet<String>, bool)> = Vec::new();
    for c in &t.constraints {
        match c.kind {
            ConstraintKind::PrimaryKey | ConstraintKind::Unique => {
                let cols = c
                    .key_columns()
                    .map(|k| k.into_iter().collect())
                    .unwrap_or_else(|| mentioned_columns(&c.definition, t));
                sets.push((
                    c.name.clone(),
                    cols,
                    c.definition.contains("NULLS NOT DISTINCT"),
                ));
            }
            ConstraintKind::Exclusion => {
                for col in mentioned_columns(&c.definition, t).intersection(masked) {
                    problems.push(format!(
                        "{}.{col} is under exclusion constraint {}, which masked values \
                         could violate; keep it",
                        t.name.plain(),
                        c.name
                    ));
                }
            }
            _ => {}
        }
    }
    for i in t
        .indexes
        .iter()
        .filter(|i| i.definition.starts_with("CREATE UNIQUE INDEX"))
    {
        let (key, predicate) = index_parts(&i.definition);
        sets.push((
            i.name.clone(),
            mentioned_columns(key, t),
            i.definition.contains("NULLS NOT DISTINCT"),
        ));
        // Masking a column of the predicate could change which rows the index covers.
        for col in mentioned_columns(predicate, t).intersection(masked) {
            problems.push(format!(
                "{}.{col} is in the predicate of the partial unique index {}: masked, it \
                 could bring rows under the index that collide; keep it",
                t.name.plain(),
                i.name
            ));
        }
    }
    for (name, mut cols, nulls_not_distinct) in sets {
        // A generated column under the key is made of other columns: they count too.
        let generated: Vec<String> = t
            .columns
            .iter()
            .filter(|c| cols.contains(&c.name))
            .filter_map(|c| c.generated.as_deref())
            .flat_map(|expr| mentioned_columns(expr, t))
            .collect();
        cols.extend(generated);
        for col in cols.intersection(masked) {
            let e = &eff[&(ti, col.clone())];
            let ok = match e.transform.injective() {
                Injective::Always => true,
                Injective::WithinEntity(by) => cols.contains(&by),
                Injective::NullsOnly => !nulls_not_distinct,
                Injective::No => false,
            };
            if !ok {
                problems.push(format!(
                    "{}.{col} is masked with {} ({}), which can give two rows the same \
                     value, but {name} needs them distinct: use format_preserving or keep{}",
                    t.name.plain(),
                    e.transform.describe(),
                    e.source,
                    match e.transform {
                        Transform::ShiftDate { .. } =>
                            " (or shift by a column that is part of the key)",
                        _ => "",
                    }
                ));
            }
        }
    }
}
