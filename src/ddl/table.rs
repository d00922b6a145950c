//! `CREATE TABLE` and the table settings that come with it.

use super::{comment, DdlOptions};
use crate::catalog::{
    quote_ident, Catalog, Column, Constraint, ConstraintKind, IdentityKind, Sequence, Table,
};

pub(super) fn sequence_options(s: &Sequence) -> String {
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
    if c.not_null && c.not_null_valid {
        if let Some(name) = &c.not_null_name {
            s.push_str(&format!(" CONSTRAINT {}", quote_ident(name)));
        }
        s.push_str(" NOT NULL");
    }
    // A partition shares its parent's identity (PostgreSQL 17+) and gets it when
    // attached; a partition with an identity of its own cannot be attached.
    if let Some(kind) = c.identity.filter(|_| t.partition_of.is_none()) {
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

/// A constraint that can be created with its table: a valid CHECK that needs no
/// function created after the table.
pub(super) fn is_pre_data_check(c: &Constraint) -> bool {
    c.kind == ConstraintKind::Check && !c.definition.ends_with("NOT VALID") && !c.after_functions
}

/// Columns a typed table adds to its type's: defaults and NOT NULL.
fn typed_column_sql(c: &Column) -> Option<String> {
    let mut s = String::new();
    if let Some(d) = &c.default {
        s.push_str(&format!(" DEFAULT {d}"));
    }
    if c.not_null {
        s.push_str(" NOT NULL");
    }
    (!s.is_empty()).then(|| format!("{} WITH OPTIONS{s}", quote_ident(&c.name)))
}

/// `CREATE TABLE` with its columns and valid checks, then per-column settings, the
/// owner and the comments. A partition is created on its own with all its columns
/// (its column order may differ from the parent's) and attached later, as pg_dump
/// does; an inheritance child declares only its own columns.
///
/// A child whose columns are all its own was made on its own and adopted with
/// `ALTER TABLE … INHERIT`: its column order may differ from what `INHERITS` gives,
/// so it is recreated the same way.
pub(super) fn create(cat: &Catalog, t: &Table, opts: &DdlOptions) -> Vec<String> {
    let partition = t.partition_of.is_some();
    let adopted = !t.inherits.is_empty() && t.columns.iter().all(|c| c.local);
    let inherits: &[crate::catalog::QualName] = if adopted { &[] } else { &t.inherits };
    let mut items: Vec<String> = Vec::new();
    for c in &t.columns {
        if t.of_type.is_some() {
            items.extend(typed_column_sql(c));
        } else if partition || c.local || inherits.is_empty() {
            items.push(column_sql(cat, t, c));
        }
    }
    for c in &t.constraints {
        if is_pre_data_check(c) && (c.local || partition) {
            items.push(format!(
                "CONSTRAINT {} {}",
                quote_ident(&c.name),
                c.definition
            ));
        }
    }
    let mut sql = format!(
        "CREATE {}TABLE {}",
        if t.unlogged { "UNLOGGED " } else { "" },
        t.name
    );
    if let Some(ty) = &t.of_type {
        sql.push_str(&format!(" OF {ty}"));
        if !items.is_empty() {
            sql.push_str(&format!(" (\n    {}\n)", items.join(",\n    ")));
        }
    } else {
        sql.push_str(&format!(" (\n    {}\n)", items.join(",\n    ")));
    }
    if !inherits.is_empty() {
        let parents: Vec<String> = inherits.iter().map(ToString::to_string).collect();
        sql.push_str(&format!(" INHERITS ({})", parents.join(", ")));
    }
    if let Some(key) = &t.partition_key {
        sql.push_str(&format!(" PARTITION BY {key}"));
    }
    if let Some(am) = &t.access_method {
        sql.push_str(&format!(" USING {}", quote_ident(am)));
    }
    let options: Vec<String> = t
        .reloptions
        .iter()
        .cloned()
        .chain(t.toast_reloptions.iter().map(|o| format!("toast.{o}")))
        .collect();
    if !options.is_empty() {
        sql.push_str(&format!(" WITH ({})", options.join(", ")));
    }
    let mut out = vec![sql];
    // An identity sequence is made with its table's persistence; since PostgreSQL 15
    // it can be switched on its own (before, sequences were always logged).
    if cat.server_version_num >= 150000 {
        for c in t.columns.iter().filter(|c| c.identity.is_some()) {
            if let Some(seq) = identity_sequence(cat, t, c).filter(|s| s.unlogged != t.unlogged) {
                let to = if seq.unlogged { "UNLOGGED" } else { "LOGGED" };
                out.push(format!("ALTER SEQUENCE {} SET {to}", seq.name));
            }
        }
    }
    if adopted {
        out.extend(
            t.inherits
                .iter()
                .map(|p| format!("ALTER TABLE {} INHERIT {p}", t.name)),
        );
    }
    let only = format!("ALTER TABLE ONLY {}", t.name);
    for c in &t.columns {
        let col = quote_ident(&c.name);
        if !c.local && !partition && t.of_type.is_none() {
            if let Some(d) = &c.default {
                out.push(format!("{only} ALTER COLUMN {col} SET DEFAULT {d}"));
            }
            if c.not_null && !c.not_null_inherited {
                out.push(format!("{only} ALTER COLUMN {col} SET NOT NULL"));
            }
        }
        if let Some(s) = &c.storage {
            out.push(format!("{only} ALTER COLUMN {col} SET STORAGE {s}"));
        }
        if let Some(m) = &c.compression {
            out.push(format!("{only} ALTER COLUMN {col} SET COMPRESSION {m}"));
        }
        if let Some(n) = c.statistics {
            out.push(format!("{only} ALTER COLUMN {col} SET STATISTICS {n}"));
        }
        if !c.options.is_empty() {
            out.push(format!(
                "{only} ALTER COLUMN {col} SET ({})",
                c.options.join(", ")
            ));
        }
    }
    out.extend(opts.owner(&format!("TABLE {}", t.name), &t.owner));
    out.extend(comment("TABLE", &t.name.to_string(), &t.comment));
    for c in &t.columns {
        let target = format!("{}.{}", t.name, quote_ident(&c.name));
        out.extend(comment("COLUMN", &target, &c.comment));
    }
    out
}
