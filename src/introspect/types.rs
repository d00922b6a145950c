//! The types whose OIDs binary COPY values carry inside them (see
//! [`crate::catalog::types`]), read for the tables being backed up.

use tokio_postgres::Client;

use super::query;
use crate::catalog::types::{TypeInfo, TypeShape};
use crate::catalog::Table;
use crate::pg::PgError;

/// Every type with a cluster-assigned OID reachable from the columns of `tables`, with
/// its shape. Runs inside the snapshot, with an empty `search_path` so names come back
/// schema-qualified.
pub(crate) async fn read_types(
    client: &Client,
    tables: &[Table],
) -> Result<Vec<TypeInfo>, PgError> {
    let table_oids: Vec<u32> = tables.iter().map(|t| t.oid).collect();
    let rows = query(
        client,
        "types",
        include_str!("sql/types.sql"),
        &[&table_oids],
    )
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let oid: u32 = r.get("oid");
        let inner: Option<u32> = r.get("inner_oid");
        let kind: String = r.get("kind");
        // A shape whose inner type is missing cannot happen in a consistent catalog;
        // should it, the type is kept as a scalar: its values are then sent as they
        // are, which is what restore did before it rewrote OIDs at all.
        let shape = match (kind.as_str(), inner) {
            ("array", Some(elem)) => TypeShape::Array { elem },
            ("domain", Some(base)) => TypeShape::Domain { base },
            ("range", Some(subtype)) => TypeShape::Range { subtype },
            ("multirange", Some(range)) => TypeShape::Multirange { range },
            ("composite", _) => TypeShape::Composite {
                fields: r.get::<_, Option<Vec<u32>>>("fields").unwrap_or_default(),
            },
            _ => TypeShape::Scalar,
        };
        out.push(TypeInfo {
            oid,
            name: r.get("name"),
            shape,
            field_names: r
                .get::<_, Option<Vec<String>>>("field_names")
                .unwrap_or_default(),
            field_sql: r
                .get::<_, Option<Vec<String>>>("field_sql")
                .unwrap_or_default(),
            base_sql: r.get("base_sql"),
        });
    }
    Ok(out)
}
