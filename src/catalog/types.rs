//! What the backup knows about the types whose OIDs travel inside binary COPY values.
//!
//! `COPY … (FORMAT binary)` writes an array's element type OID into every array value
//! and each field's type OID into every composite value, and the server checks them on
//! the way back in. Types created by users (or by `initdb` after the built-in ones)
//! get other OIDs in the restored database, so restore rewrites those OIDs; this model
//! is the map it follows: for every type reachable from a backed-up column, what the
//! type is made of and the name to find its new OID by.

use serde::{Deserialize, Serialize};

/// One type whose OID may differ between the source and the restored database: OIDs
/// below 10000 are fixed in PostgreSQL's source and the same in every cluster; from
/// 10000 up they are assigned when a cluster is initialised (information_schema,
/// system views) or when users create objects (from 16384).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeInfo {
    /// The type's OID in the source database.
    pub oid: u32,
    /// `format_type(oid, NULL)` with an empty `search_path`: schema-qualified and
    /// quoted where needed, so `to_regtype(name)` finds the type in the target.
    pub name: String,
    pub shape: TypeShape,
    /// A composite's live field names, in the order of [`TypeShape::Composite`]'s
    /// OIDs: the export names struct fields after them. Empty in backups written
    /// before exports existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub field_names: Vec<String>,
    /// A composite's field types with their modifiers (`numeric(6,2)`), as
    /// `format_type` prints them, in the same order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub field_sql: Vec<String>,
    /// A domain's base type with its modifier (`numeric(10,2)`), which the export
    /// needs for the Arrow type; `None` for other types and in older backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_sql: Option<String>,
}

/// How a type's binary representation is built, as far as embedded OIDs go.
///
/// Every OID here is the source's. Types not listed in [`super::Catalog::types`] (all
/// built-in types, and anything an older backup did not record) count as `Scalar`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TypeShape {
    /// Carries no OIDs: enums, base types, extension types with their own send
    /// function.
    Scalar,
    /// A true array (`array_send`): every value carries `elem`, then the elements in
    /// `elem`'s binary form.
    Array { elem: u32 },
    /// A composite (a standalone composite type or a table's row type): every value
    /// carries each live field's type OID, in attribute order, dropped fields left out.
    Composite { fields: Vec<u32> },
    /// A domain: values are in `base`'s binary form; arrays and composites of the
    /// domain carry the domain's own OID.
    Domain { base: u32 },
    /// A range: a flags byte and up to two bounds in `subtype`'s binary form, no OID.
    Range { subtype: u32 },
    /// A multirange: a count, then ranges of type `range` in their binary form, no OID.
    Multirange { range: u32 },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_serialize_with_a_kind_tag() {
        let t = TypeInfo {
            oid: 16390,
            name: "public.pair".into(),
            shape: TypeShape::Composite {
                fields: vec![23, 16385],
            },
            field_names: vec![],
            field_sql: vec![],
            base_sql: None,
        };
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(
            json,
            r#"{"oid":16390,"name":"public.pair","shape":{"kind":"composite","fields":[23,16385]}}"#
        );
        assert_eq!(serde_json::from_str::<TypeInfo>(&json).unwrap(), t);
        let scalar: TypeShape = serde_json::from_str(r#"{"kind":"scalar"}"#).unwrap();
        assert_eq!(scalar, TypeShape::Scalar);
    }
}
