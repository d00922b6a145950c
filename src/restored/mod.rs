//! A restored database checked against its backup's manifest, independently of the
//! loader that filled it: row counts and content checksums read back over the same
//! COPY the backup took, every foreign key present and validated, every index
//! present, every large object whole. Then the scratch database is given back as it
//! was. The restore test runs this after a restore into a scratch database.

mod cleanup;

pub use cleanup::{drop_large_objects, drop_restored};

use serde::Serialize;

use crate::archive::Manifest;
use crate::catalog::ConstraintKind;
use crate::dump::table_fingerprint;
use crate::introspect::{index_names, large_object_digest, validated_foreign_keys};
use crate::load::type_remapper;
use crate::pg::{prepare_session, ConnSpec, PgError};

#[derive(Debug, Clone, Serialize)]
pub struct TableCheck {
    pub table: String,
    pub expected_rows: u64,
    pub restored_rows: Option<u64>,
    pub checksum_ok: bool,
}

impl TableCheck {
    pub fn ok(&self) -> bool {
        self.checksum_ok && self.restored_rows == Some(self.expected_rows)
    }
}

/// What the check found; `missing` lists every object absent or different.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RestoredCheck {
    pub tables: Vec<TableCheck>,
    pub foreign_keys_expected: usize,
    pub foreign_keys_valid: usize,
    pub indexes_expected: usize,
    pub indexes_present: usize,
    /// Large objects in the backup, and those read back whole with the manifest's size
    /// and SHA-256.
    pub large_objects_expected: usize,
    pub large_objects_ok: usize,
    pub missing: Vec<String>,
}

impl RestoredCheck {
    /// Checks that failed: missing objects and tables that differ.
    pub fn failures(&self) -> usize {
        self.missing.len() + self.tables.iter().filter(|t| !t.ok()).count()
    }
}

/// Reads every table back (row count and content checksum over the same binary COPY
/// the backup took), and lists foreign keys and indexes the catalog says must exist.
pub async fn check(scratch: &ConnSpec, manifest: &Manifest) -> Result<RestoredCheck, PgError> {
    let mut found = RestoredCheck::default();
    let client = scratch.connect().await?;
    prepare_session(&client).await?;
    for rec in &manifest.tables {
        let name = crate::catalog::QualName {
            schema: rec.schema.clone(),
            name: rec.name.clone(),
        };
        let Some(table) = manifest.catalog.table(&name) else {
            found
                .missing
                .push(format!("table {} (not in the catalog)", name.plain()));
            continue;
        };
        // The restored values name the scratch database's type OIDs: map them back to
        // the backup's before hashing, as the manifest's checksum covers those bytes.
        let fingerprint = async {
            let remap = type_remapper(&client, table, &manifest.catalog.types)
                .await
                .map_err(|e| e.to_string())?
                .inverse();
            table_fingerprint(&client, table, rec.copy_format, Some(&remap))
                .await
                .map_err(|e| e.to_string())
        };
        let stats = match fingerprint.await {
            Ok(s) => s,
            Err(e) => {
                found.missing.push(format!("table {}: {e}", name.plain()));
                found.tables.push(TableCheck {
                    table: name.plain(),
                    expected_rows: rec.rows,
                    restored_rows: None,
                    checksum_ok: false,
                });
                continue;
            }
        };
        found.tables.push(TableCheck {
            table: name.plain(),
            expected_rows: rec.rows,
            restored_rows: Some(stats.rows),
            checksum_ok: format!("{:032x}", stats.checksum) == rec.checksum,
        });
    }
    let cat = &manifest.catalog;
    let fks: Vec<(String, String)> = cat
        .tables
        .iter()
        .flat_map(|t| {
            t.constraints
                .iter()
                .filter(|c| c.kind == ConstraintKind::ForeignKey)
                .map(move |c| (t.name.plain(), c.name.clone()))
        })
        .collect();
    let valid = validated_foreign_keys(&client).await?;
    found.foreign_keys_expected = fks.len();
    for fk in &fks {
        if valid.contains(fk) {
            found.foreign_keys_valid += 1;
        } else {
            found.missing.push(format!(
                "foreign key {} on {} (missing or not validated)",
                fk.1, fk.0
            ));
        }
    }
    // Every index: explicit ones and those behind primary keys, uniques, exclusions.
    let indexes: Vec<(String, String)> = cat
        .tables
        .iter()
        .flat_map(|t| {
            let schema = t.name.schema.clone();
            t.indexes
                .iter()
                .map(|i| i.name.clone())
                .chain(
                    t.constraints
                        .iter()
                        .filter(|c| {
                            matches!(
                                c.kind,
                                ConstraintKind::PrimaryKey
                                    | ConstraintKind::Unique
                                    | ConstraintKind::Exclusion
                            )
                        })
                        .map(|c| c.name.clone()),
                )
                .map(move |i| (schema.clone(), i))
                .collect::<Vec<_>>()
        })
        .collect();
    let present = index_names(&client).await?;
    found.indexes_expected = indexes.len();
    for ix in &indexes {
        if present.contains(ix) {
            found.indexes_present += 1;
        } else {
            found.missing.push(format!("index {}.{}", ix.0, ix.1));
        }
    }
    if let Some(los) = &manifest.large_objects {
        found.large_objects_expected = los.objects.len();
        for lo in &los.objects {
            let oid = lo.object.oid;
            match large_object_digest(&client, oid).await? {
                None => found
                    .missing
                    .push(format!("large object {oid} (not restored)")),
                Some((size, sha)) if size == lo.size && sha == lo.sha256 => {
                    found.large_objects_ok += 1
                }
                Some((size, _)) => found.missing.push(format!(
                    "large object {oid}: {size} bytes restored, {} in the backup, or its \
                     content differs",
                    lo.size
                )),
            }
        }
    }
    Ok(found)
}
