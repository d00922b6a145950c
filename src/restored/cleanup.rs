//! Giving the scratch database back: only what the backup's catalog created goes.

use crate::archive::Manifest;
use crate::catalog::{quote_ident, Catalog};
use crate::pg::{ConnSpec, PgError};

/// Unlinks the large objects the restore created (those under the backup's OIDs: the
/// scratch database held none of them, or the restore would have refused).
pub async fn drop_large_objects(scratch: &ConnSpec, manifest: &Manifest) -> Result<(), PgError> {
    let Some(los) = &manifest.large_objects else {
        return Ok(());
    };
    let oids: Vec<u32> = los.objects.iter().map(|l| l.object.oid).collect();
    let client = scratch.connect().await?;
    crate::load::unlink_large_objects(&client, &oids, "drop the restored large objects").await
}

/// Drops exactly what the backup's catalog created: its tables, sequences and types
/// in one transaction, then its schemas other than `public` one by one, and only when
/// empty (a schema that held something else before stays). Returns notes on what
/// stayed.
pub async fn drop_restored(scratch: &ConnSpec, cat: &Catalog) -> Result<Vec<String>, PgError> {
    let client = scratch.connect().await?;
    let mut sql = String::from("BEGIN;\n");
    for t in &cat.tables {
        sql.push_str(&format!("DROP TABLE IF EXISTS {} CASCADE;\n", t.name));
    }
    for s in &cat.sequences {
        sql.push_str(&format!("DROP SEQUENCE IF EXISTS {} CASCADE;\n", s.name));
    }
    for e in &cat.enums {
        sql.push_str(&format!("DROP TYPE IF EXISTS {} CASCADE;\n", e.name));
    }
    sql.push_str("COMMIT;");
    client
        .batch_execute(&sql)
        .await
        .map_err(|e| PgError::query("drop the restored objects", e))?;
    let mut kept = Vec::new();
    for s in cat.schemas.iter().filter(|s| s.name != "public") {
        let drop = format!("DROP SCHEMA IF EXISTS {}", quote_ident(&s.name));
        if client.batch_execute(&drop).await.is_err() {
            kept.push(format!(
                "schema {} was left in place: it holds objects the backup did not create",
                s.name
            ));
        }
    }
    Ok(kept)
}
