//! What a restore left in a database, read back for the restore test: validated
//! foreign keys, index names, and large objects' sizes and digests.

use sha2::{Digest, Sha256};
use tokio_postgres::Client;

use crate::catalog::QualName;
use crate::pg::PgError;

/// `(schema.table, constraint)` of every foreign key that exists and is validated.
pub async fn validated_foreign_keys(client: &Client) -> Result<Vec<(String, String)>, PgError> {
    Ok(client
        .query(include_str!("sql/validated_foreign_keys.sql"), &[])
        .await
        .map_err(|e| PgError::query("list foreign keys", e))?
        .iter()
        .map(|r| {
            let table = QualName {
                schema: r.get(0),
                name: r.get(1),
            };
            (table.plain(), r.get(2))
        })
        .collect())
}

/// `(schema, index)` of every index.
pub async fn index_names(client: &Client) -> Result<Vec<(String, String)>, PgError> {
    Ok(client
        .query(include_str!("sql/index_names.sql"), &[])
        .await
        .map_err(|e| PgError::query("list indexes", e))?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// A large object's size and SHA-256, read in slices so a large one never sits in
/// memory whole; `None` when it does not exist.
pub async fn large_object_digest(
    client: &Client,
    oid: u32,
) -> Result<Option<(u64, String)>, PgError> {
    const SLICE: i32 = 1 << 20;
    let exists = client
        .query_opt(include_str!("sql/large_object_exists.sql"), &[&oid])
        .await
        .map_err(|e| PgError::query("look for a restored large object", e))?;
    if exists.is_none() {
        return Ok(None);
    }
    let (mut size, mut hash) = (0u64, Sha256::new());
    loop {
        let row = client
            .query_one(
                include_str!("sql/large_object_slice.sql"),
                &[&oid, &(size as i64), &SLICE],
            )
            .await
            .map_err(|e| PgError::query(format!("read back large object {oid}"), e))?;
        let data: &[u8] = row.get(0);
        hash.update(data);
        size += data.len() as u64;
        if data.len() < SLICE as usize {
            return Ok(Some((size, hex::encode(hash.finalize()))));
        }
    }
}
