//! Large objects' metadata, read inside the backup's snapshot. Their content is read
//! by the backup workers (`lo_get`), which any role allowed to read them may call.

use tokio_postgres::Client;

use super::objects::acl;
use super::query;
use crate::catalog::LargeObject;
use crate::pg::PgError;

pub async fn read_large_objects(client: &Client) -> Result<Vec<LargeObject>, PgError> {
    let rows = query(
        client,
        "large objects",
        include_str!("sql/large_objects.sql"),
        &[],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let oid: u32 = r.get("oid");
            LargeObject {
                oid,
                owner: r.get("owner"),
                acl: acl(
                    Some(format!("LARGE OBJECT {oid}")),
                    r.get("acl"),
                    r.get("acl_default"),
                ),
                comment: r.get("comment"),
            }
        })
        .collect())
}

/// The large objects the role may not read, so a backup can name them all before it
/// writes anything instead of failing at the first one.
pub async fn unreadable_large_objects(client: &Client) -> Result<Vec<u32>, PgError> {
    let rows = query(
        client,
        "privileges on large objects",
        include_str!("sql/large_objects_unreadable.sql"),
        &[],
    )
    .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
