//! One table's chunks → Arrow record batches of bounded size. Chunks hold binary
//! tuples, or, for a table the backup copied in text format, text rows whose fields
//! become Utf8 values with COPY's escapes decoded (every kind is then
//! `Kind::Text(Text::Plain)`).

use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchOptions};
use arrow_schema::SchemaRef;

use super::build::{Builder, Lossy, Problem};
use super::kind::Kind;
use crate::pgcopy::text::{decode_text_field, text_rows};
use crate::pgcopy::{self, CopyFormatError};

/// A batch is handed on once its rows hold this much COPY data: Arrow's string and
/// binary arrays address at most 2 GiB each, and a single PostgreSQL value can be 1 GiB.
const BATCH_BYTES: usize = 256 << 20;

/// Why a chunk's tuples could not become rows.
#[derive(Debug)]
pub enum DecodeError {
    Framing(CopyFormatError),
    FieldCount { expected: usize, found: usize },
    Value { column: usize, problem: Problem },
}

/// Decodes tuples of one table into record batches of at most `batch_rows` rows.
pub struct TableDecoder {
    schema: SchemaRef,
    columns: Vec<Builder>,
    lossy: Vec<Lossy>,
    batch_rows: usize,
    rows: usize,
    /// COPY bytes of the rows since the last batch.
    bytes: usize,
    /// Rows decoded so far, over all batches: where an error happened.
    pub total_rows: u64,
    /// The chunks hold COPY text rows instead of binary tuples.
    text: bool,
}

impl TableDecoder {
    pub fn new(schema: SchemaRef, kinds: &[Kind], batch_rows: usize, fail: bool) -> Self {
        TableDecoder {
            schema,
            columns: kinds.iter().map(Builder::new).collect(),
            lossy: vec![
                Lossy {
                    fail,
                    ..Lossy::default()
                };
                kinds.len()
            ],
            batch_rows: batch_rows.max(1),
            rows: 0,
            bytes: 0,
            total_rows: 0,
            text: false,
        }
    }

    /// Reads the chunks as COPY text rows (a table the backup copied in text format).
    pub fn text_rows(mut self) -> Self {
        self.text = true;
        self
    }

    /// Decodes a chunk's whole tuples, handing out every full batch to `emit`.
    pub fn push<E>(
        &mut self,
        chunk: &[u8],
        emit: &mut dyn FnMut(RecordBatch) -> Result<(), E>,
    ) -> Result<(), PushError<E>> {
        if self.text {
            return self.push_text(chunk, emit);
        }
        for tuple in pgcopy::tuples(chunk) {
            let fields = tuple.map_err(|e| PushError::Decode(DecodeError::Framing(e)))?;
            let tuple_bytes = fields.byte_len();
            if fields.remaining() != self.columns.len() {
                return Err(PushError::Decode(DecodeError::FieldCount {
                    expected: self.columns.len(),
                    found: fields.remaining(),
                }));
            }
            for (column, ((b, lossy), field)) in self
                .columns
                .iter_mut()
                .zip(self.lossy.iter_mut())
                .zip(fields)
                .enumerate()
            {
                b.append(field, lossy)
                    .map_err(|problem| PushError::Decode(DecodeError::Value { column, problem }))?;
            }
            self.row_done(tuple_bytes, emit)?;
        }
        Ok(())
    }

    fn push_text<E>(
        &mut self,
        chunk: &[u8],
        emit: &mut dyn FnMut(RecordBatch) -> Result<(), E>,
    ) -> Result<(), PushError<E>> {
        for row in text_rows(chunk) {
            let row = row.map_err(|e| PushError::Decode(DecodeError::Framing(e)))?;
            if row.field_count() != self.columns.len() {
                return Err(PushError::Decode(DecodeError::FieldCount {
                    expected: self.columns.len(),
                    found: row.field_count(),
                }));
            }
            for (column, ((b, lossy), raw)) in self
                .columns
                .iter_mut()
                .zip(self.lossy.iter_mut())
                .zip(row.fields())
                .enumerate()
            {
                let value = decode_text_field(raw);
                b.append(value.as_deref(), lossy)
                    .map_err(|problem| PushError::Decode(DecodeError::Value { column, problem }))?;
            }
            self.row_done(row.byte_len(), emit)?;
        }
        Ok(())
    }

    /// Counts a decoded row and hands out the batch once it is full.
    fn row_done<E>(
        &mut self,
        bytes: usize,
        emit: &mut dyn FnMut(RecordBatch) -> Result<(), E>,
    ) -> Result<(), PushError<E>> {
        self.rows += 1;
        self.total_rows += 1;
        self.bytes += bytes;
        if self.rows >= self.batch_rows || self.bytes >= BATCH_BYTES {
            emit(self.take_batch()).map_err(PushError::Emit)?;
        }
        Ok(())
    }

    /// The rows decoded since the last batch, if any.
    pub fn flush(&mut self) -> Option<RecordBatch> {
        (self.rows > 0).then(|| self.take_batch())
    }

    /// What each column could not carry, in column order.
    pub fn lossy(&self) -> &[Lossy] {
        &self.lossy
    }

    fn take_batch(&mut self) -> RecordBatch {
        let arrays = self.columns.iter_mut().map(Builder::finish).collect();
        let rows = std::mem::take(&mut self.rows);
        self.bytes = 0;
        RecordBatch::try_new_with_options(
            Arc::clone(&self.schema),
            arrays,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )
        .expect("builders follow the schema they were made from")
    }
}

/// A failure while decoding, or while handing a batch on.
#[derive(Debug)]
pub enum PushError<E> {
    Decode(DecodeError),
    Emit(E),
}

#[cfg(test)]
mod tests {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Decimal128Type, Int32Type};
    use arrow_array::Array;
    use arrow_schema::{Field, Schema};

    use super::*;
    use crate::export::kind::Text;
    use crate::testing::tuple_of as tuple;

    fn array_of_int4(dims: &[i32], elems: &[Option<i32>]) -> Vec<u8> {
        let mut v = (dims.len() as i32).to_be_bytes().to_vec();
        v.extend(i32::from(elems.iter().any(Option::is_none)).to_be_bytes());
        v.extend(23u32.to_be_bytes());
        for d in dims {
            v.extend(d.to_be_bytes());
            v.extend(1i32.to_be_bytes());
        }
        for e in elems {
            match e {
                None => v.extend((-1i32).to_be_bytes()),
                Some(x) => {
                    v.extend(4i32.to_be_bytes());
                    v.extend(x.to_be_bytes());
                }
            }
        }
        v
    }

    fn decoder(kinds: &[Kind], batch: usize, fail: bool) -> TableDecoder {
        let schema = Arc::new(Schema::new(
            kinds
                .iter()
                .enumerate()
                .map(|(i, k)| k.field(&format!("c{i}"), true))
                .collect::<Vec<Field>>(),
        ));
        TableDecoder::new(schema, kinds, batch, fail)
    }

    fn numeric(digits: &[u16], weight: i16, neg: bool, dscale: u16) -> Vec<u8> {
        let mut v = (digits.len() as i16).to_be_bytes().to_vec();
        v.extend(weight.to_be_bytes());
        v.extend((if neg { 0x4000u16 } else { 0 }).to_be_bytes());
        v.extend(dscale.to_be_bytes());
        for d in digits {
            v.extend(d.to_be_bytes());
        }
        v
    }

    #[test]
    fn rows_become_batches_of_the_asked_size_with_nulls_and_lists() {
        let kinds = [
            Kind::Int4,
            Kind::Array(Box::new(Kind::Int4)),
            Kind::Text(Text::Plain),
        ];
        let mut d = decoder(&kinds, 2, false);
        let mut chunk = Vec::new();
        chunk.extend(tuple(&[
            Some(1i32.to_be_bytes().to_vec()),
            Some(array_of_int4(&[3], &[Some(1), None, Some(3)])),
            Some(b"a".to_vec()),
        ]));
        chunk.extend(tuple(&[None, None, None]));
        chunk.extend(tuple(&[
            Some(3i32.to_be_bytes().to_vec()),
            Some(array_of_int4(
                &[2, 2],
                &[Some(1), Some(2), Some(3), Some(4)],
            )),
            Some(b"c".to_vec()),
        ]));
        let mut batches = Vec::new();
        d.push::<()>(&chunk, &mut |b| {
            batches.push(b);
            Ok(())
        })
        .unwrap();
        batches.extend(d.flush());
        assert_eq!(
            batches.iter().map(|b| b.num_rows()).collect::<Vec<_>>(),
            [2, 1]
        );
        let ids = batches[0].column(0).as_primitive::<Int32Type>();
        assert_eq!(ids.value(0), 1);
        assert!(ids.is_null(1));
        let lists = batches[0].column(1).as_list::<i32>();
        assert_eq!(lists.value(0).len(), 3);
        assert!(lists.value(0).is_null(1));
        assert!(lists.is_null(1));
        let flat = batches[1].column(1).as_list::<i32>();
        assert_eq!(flat.value(0).len(), 4, "2-D arrays are flattened");
        assert_eq!(d.lossy()[1].flattened, 1);
    }

    #[test]
    fn decimals_are_exact_and_special_values_follow_the_policy() {
        let kinds = [Kind::Decimal {
            precision: 10,
            scale: 2,
        }];
        let nan = {
            let mut v = numeric(&[], 0, false, 0);
            v[4] = 0xC0;
            v
        };
        let mut chunk = tuple(&[Some(numeric(&[1, 2345, 6700], 1, true, 2))]);
        chunk.extend(tuple(&[Some(nan.clone())]));
        chunk.extend(tuple(&[Some(numeric(&[1, 1], 0, false, 4))])); // 1.0001
        let mut d = decoder(&kinds, 100, false);
        d.push::<()>(&chunk, &mut |_| Ok(())).unwrap();
        let b = d.flush().unwrap();
        let col = b.column(0).as_primitive::<Decimal128Type>();
        assert_eq!(col.value(0), -1_234_567);
        assert!(col.is_null(1) && col.is_null(2));
        assert_eq!(d.lossy()[0].nulled, 2);
        assert_eq!(d.lossy()[0].example.as_deref(), Some("numeric NaN"));
        let mut strict = decoder(&kinds, 100, true);
        let err = strict
            .push::<()>(&tuple(&[Some(nan)]), &mut |_| Ok(()))
            .unwrap_err();
        assert!(matches!(
            err,
            PushError::Decode(DecodeError::Value {
                column: 0,
                problem: Problem::Special(_)
            })
        ));
    }

    #[test]
    fn text_rows_become_utf8_columns_with_escapes_decoded() {
        let kinds = [Kind::Text(Text::Plain), Kind::Text(Text::Plain)];
        let mut d = decoder(&kinds, 100, false).text_rows();
        // Row 1: a value with an escaped tab, newline and backslash, and an array
        // literal; row 2: NULL and an empty string.
        let chunk = b"x\\tab\\n\\\\\t{a,\"b c\"}\n\\N\t\n";
        d.push::<()>(chunk, &mut |_| Ok(())).unwrap();
        let b = d.flush().unwrap();
        let (a, c) = (
            b.column(0).as_string::<i32>(),
            b.column(1).as_string::<i32>(),
        );
        assert_eq!(a.value(0), "x\tab\n\\");
        assert_eq!(c.value(0), "{a,\"b c\"}");
        assert!(a.is_null(1));
        assert_eq!(c.value(1), "");
        let err = d.push::<()>(b"1\t2\t3\n", &mut |_| Ok(())).unwrap_err();
        assert!(matches!(
            err,
            PushError::Decode(DecodeError::FieldCount {
                expected: 2,
                found: 3
            })
        ));
        let cut = d.push::<()>(b"1\t2", &mut |_| Ok(())).unwrap_err();
        assert!(matches!(
            cut,
            PushError::Decode(DecodeError::Framing(CopyFormatError::UnterminatedRow))
        ));
    }

    #[test]
    fn a_tuple_with_the_wrong_field_count_is_refused() {
        let mut d = decoder(&[Kind::Int4, Kind::Int4], 10, false);
        let err = d.push::<()>(&tuple(&[None]), &mut |_| Ok(())).unwrap_err();
        assert!(matches!(
            err,
            PushError::Decode(DecodeError::FieldCount {
                expected: 2,
                found: 1
            })
        ));
    }
}
