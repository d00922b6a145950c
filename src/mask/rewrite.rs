//! Rewrites a chunk of binary COPY tuples with a table's masks applied: masked values
//! change length, so each tuple is written anew; the others are copied as they are.

use std::sync::Arc;

use super::transform::{apply, entity_bytes, Context, Keys, Transform, ValueKind};
use super::MaskError;
use crate::pgcopy::tuples;

/// What to do to one copied column.
pub struct FieldMask {
    pub column: String,
    pub transform: Transform,
    pub kind: ValueKind,
    /// For `shift_date`: the position and kind of the column naming the entity.
    pub entity: Option<(usize, ValueKind)>,
    /// See [`Context::group_width`].
    pub group_width: Option<u8>,
}

/// One table's masks, one entry per copied column (`None`: carried as is).
pub struct TableMask {
    table: String,
    fields: Vec<Option<FieldMask>>,
    keys: Arc<Keys>,
}

impl TableMask {
    pub(super) fn new(table: String, fields: Vec<Option<FieldMask>>, keys: Arc<Keys>) -> Self {
        TableMask {
            table,
            fields,
            keys,
        }
    }

    /// The masked copy of `data`, which holds whole tuples (a chunk's plaintext).
    pub fn rewrite(&self, data: &[u8]) -> Result<Vec<u8>, MaskError> {
        let framing = |source| MaskError::Framing {
            table: self.table.clone(),
            source,
        };
        let mut out = Vec::with_capacity(data.len() + data.len() / 8);
        let mut values: Vec<Option<&[u8]>> = Vec::with_capacity(self.fields.len());
        for (row, tuple) in tuples(data).enumerate() {
            let tuple = tuple.map_err(framing)?;
            let count = tuple.remaining();
            if count != self.fields.len() {
                return Err(framing(crate::pgcopy::CopyFormatError::BadFieldCount(
                    count as i16,
                )));
            }
            values.clear();
            values.extend(tuple);
            out.extend_from_slice(&(count as i16).to_be_bytes());
            for (i, v) in values.iter().enumerate() {
                let new = match (&self.fields[i], v) {
                    (Some(f), Some(v)) => {
                        let entity = match &f.entity {
                            Some((at, kind)) => entity_bytes(kind, values[*at]),
                            None => Ok(Vec::new()),
                        };
                        entity
                            .and_then(|e| {
                                let cx = Context {
                                    entity: &e,
                                    group_width: f.group_width,
                                };
                                apply(&f.transform, &f.kind, v, &cx, &self.keys)
                            })
                            .map_err(|problem| MaskError::Value {
                                table: self.table.clone(),
                                column: f.column.clone(),
                                row: row as u64 + 1,
                                problem,
                            })?
                    }
                    (_, v) => {
                        put(&mut out, *v);
                        continue;
                    }
                };
                put(&mut out, new.as_deref());
            }
        }
        Ok(out)
    }
}

fn put(out: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        Some(v) => {
            out.extend_from_slice(&(v.len() as i32).to_be_bytes());
            out.extend_from_slice(v);
        }
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::SecretKey;
    use crate::pgcopy::scan_tuples;

    fn tuple(fields: &[Option<&[u8]>]) -> Vec<u8> {
        let mut t = (fields.len() as i16).to_be_bytes().to_vec();
        for f in fields {
            put(&mut t, *f);
        }
        t
    }

    #[test]
    fn masked_fields_change_and_the_rest_stay_byte_for_byte() {
        let keys = Arc::new(Keys::derive(&SecretKey::from_bytes([9; 32])));
        let text = ValueKind::Text {
            max_chars: None,
            padded: false,
        };
        let mask = TableMask::new(
            "public.t".into(),
            vec![
                None,
                Some(FieldMask {
                    column: "name".into(),
                    transform: Transform::Redact { text: None },
                    kind: text.clone(),
                    entity: None,
                    group_width: None,
                }),
                Some(FieldMask {
                    column: "note".into(),
                    transform: Transform::Null,
                    kind: text,
                    entity: None,
                    group_width: None,
                }),
            ],
            keys,
        );
        let mut data = tuple(&[Some(b"\0\0\0\x01"), Some(b"Elena"), None]);
        data.extend(tuple(&[Some(b"\0\0\0\x02"), None, Some(b"secret")]));
        let out = mask.rewrite(&data).unwrap();
        assert_eq!(scan_tuples(&out).unwrap().rows, 2);
        let mut expected = tuple(&[Some(b"\0\0\0\x01"), Some(b"[redacted]"), None]);
        expected.extend(tuple(&[Some(b"\0\0\0\x02"), None, None]));
        assert_eq!(out, expected);
        let wrong = tuple(&[Some(b"x")]);
        assert!(matches!(
            mask.rewrite(&wrong),
            Err(MaskError::Framing { .. })
        ));
    }
}
