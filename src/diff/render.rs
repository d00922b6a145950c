//! Changed rows as JSON lines (and, for `files`, as Arrow batches): values decoded from the chunks' tuples with the same
//! type mapping as `export` (uuid as text, types with no mapping as their binary form),
//! so a row reads the same in a diff and in an exported file.

use std::io::Write;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Schema};
use serde_json::{Map, Value};

use super::key::MatchBy;
use super::table::{Change, Columns, Side};
use super::DiffError;
use crate::archive::CopyFormat;
use crate::export::decode::{PushError, TableDecoder};
use crate::export::kind::{Kind, Text, TypeChoices, TypeMap};

/// Rows decoded in one batch.
const BATCH_ROWS: usize = 4096;

/// One side's rows decoded: Arrow batches typed like `export`'s, the names of their
/// json and jsonb columns, and how many values became null because Arrow cannot hold
/// them (±infinity dates and timestamps).
pub struct Decoded {
    pub batches: Vec<RecordBatch>,
    pub json_columns: Vec<String>,
    pub nulled: u64,
}

/// Decodes `raws` (one side's tuples, as the chunks hold them).
pub fn decode(side: &Side<'_>, raws: &[&[u8]]) -> Result<Decoded, DiffError> {
    let text = side.format == CopyFormat::Text;
    let types = TypeMap::new(
        side.catalog,
        TypeChoices {
            uuid_as_text: true,
            unsupported_as_binary: true,
            ..TypeChoices::default()
        },
    );
    let columns: Vec<_> = side.copy_columns().collect();
    let kinds: Vec<Kind> = columns
        .iter()
        .map(|c| {
            if text {
                Ok(Kind::Text(Text::Plain))
            } else {
                types.column(c.type_oid, &c.type_sql)
            }
        })
        .collect::<Result<_, _>>()
        .map_err(DiffError::Decode)?;
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .zip(&kinds)
            .map(|(c, k)| k.field(&c.name, true))
            .collect::<Vec<_>>(),
    ));
    let json_columns = columns
        .iter()
        .zip(&kinds)
        .filter(|(_, k)| matches!(k, Kind::Text(Text::Json | Text::Jsonb)))
        .map(|(c, _)| c.name.clone())
        .collect();
    let mut decoder = TableDecoder::new(schema, &kinds, BATCH_ROWS, false);
    if text {
        decoder = decoder.text_rows();
    }
    let mut batches: Vec<RecordBatch> = Vec::new();
    for raw in raws {
        decoder
            .push(raw, &mut |b| {
                batches.push(b);
                Ok::<_, DiffError>(())
            })
            .map_err(|e| match e {
                PushError::Decode(e) => DiffError::Decode(format!("{}: {e:?}", side.table.name)),
                PushError::Emit(e) => e,
            })?;
    }
    batches.extend(decoder.flush());
    Ok(Decoded {
        batches,
        json_columns,
        nulled: decoder.lossy().iter().map(|l| l.nulled).sum(),
    })
}

/// Every row of `batches` as a JSON object of column name → value, json and jsonb
/// values as the documents they are.
pub fn json_rows(
    batches: &[RecordBatch],
    json_columns: &[String],
) -> Result<Vec<Map<String, Value>>, DiffError> {
    let err = |e: arrow_schema::ArrowError| DiffError::Decode(e.to_string());
    let mut json = arrow_json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow_json::writer::LineDelimited>(Vec::new());
    for b in batches {
        json.write(&json_safe(b)?).map_err(err)?;
    }
    json.finish().map_err(err)?;
    Ok(json
        .into_inner()
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut row: Map<String, Value> =
                serde_json::from_slice(l).expect("arrow-json writes JSON objects");
            for name in json_columns {
                if let Some(v) = row.get_mut(name) {
                    if let Some(doc) = v.as_str().and_then(|s| serde_json::from_str(s).ok()) {
                        *v = doc;
                    }
                }
            }
            row
        })
        .collect())
}

/// One side's rows as JSON objects (see [`json_rows`]) and the values nulled.
fn decode_json(
    side: &Side<'_>,
    raws: &[&[u8]],
) -> Result<(Vec<Map<String, Value>>, u64), DiffError> {
    let d = decode(side, raws)?;
    Ok((json_rows(&d.batches, &d.json_columns)?, d.nulled))
}

/// `batch` with timestamps in UTC written as offset `+00:00`: the JSON writer knows
/// offsets, not zone names (that would take the zone database along).
fn json_safe(batch: &RecordBatch) -> Result<RecordBatch, DiffError> {
    fn offset_utc(t: &DataType) -> DataType {
        match t {
            DataType::Timestamp(unit, Some(tz)) if &**tz == "UTC" => {
                DataType::Timestamp(*unit, Some("+00:00".into()))
            }
            DataType::List(f) => DataType::List(Arc::new(
                f.as_ref().clone().with_data_type(offset_utc(f.data_type())),
            )),
            DataType::Struct(fields) => DataType::Struct(
                fields
                    .iter()
                    .map(|f| f.as_ref().clone().with_data_type(offset_utc(f.data_type())))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    let err = |e: arrow_schema::ArrowError| DiffError::Decode(e.to_string());
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
        let t = offset_utc(f.data_type());
        columns.push(if t == *f.data_type() {
            Arc::clone(c)
        } else {
            arrow_cast::cast(c, &t).map_err(err)?
        });
        fields.push(f.as_ref().clone().with_data_type(t));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(err)
}

/// Writes one JSON line per change of a table: `{"table", "change", "key", "old",
/// "new"}`, with only the changed columns for an update and no `key` when rows have
/// none. Returns the lines written and the values written as null.
pub fn write_changes(
    out: &mut dyn Write,
    a: &Side<'_>,
    b: &Side<'_>,
    cols: &Columns,
    by: &MatchBy,
    changes: &[Change],
) -> Result<(u64, u64), DiffError> {
    let olds: Vec<&[u8]> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Delete(old) | Change::Update { old, .. } => Some(old.as_slice()),
            Change::Insert(_) => None,
        })
        .collect();
    let news: Vec<&[u8]> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Insert(new) | Change::Update { new, .. } => Some(new.as_slice()),
            Change::Delete(_) => None,
        })
        .collect();
    let (olds, nulled_a) = decode_json(a, &olds)?;
    let (news, nulled_b) = decode_json(b, &news)?;
    let (mut olds, mut news) = (olds.into_iter(), news.into_iter());
    let table = format!("{}.{}", b.table.name.schema, b.table.name.name);
    let pick = |row: &Map<String, Value>, names: &mut dyn Iterator<Item = &String>| {
        names
            .map(|n| (n.clone(), row.get(n).cloned().unwrap_or(Value::Null)))
            .collect::<Map<_, _>>()
    };
    let keyed = *by != MatchBy::WholeRows;
    let mut lines = 0;
    for c in changes {
        let (change, old, new) = match c {
            Change::Insert(_) => ("insert", None, news.next()),
            Change::Delete(_) => ("delete", olds.next(), None),
            Change::Update { .. } => ("update", olds.next(), news.next()),
        };
        let mut line = Map::new();
        line.insert("table".into(), Value::String(table.clone()));
        line.insert("change".into(), Value::String(change.into()));
        if let Some(row) = new.as_ref().or(old.as_ref()).filter(|_| keyed) {
            let key = pick(row, &mut by.columns().iter());
            line.insert("key".into(), Value::Object(key));
        }
        // An update shows only the columns that changed.
        let shown = |row: Map<String, Value>| match c {
            Change::Update { columns, .. } => {
                pick(&row, &mut columns.iter().map(|&i| &cols.names[i]))
            }
            _ => row,
        };
        if let Some(o) = old {
            line.insert("old".into(), Value::Object(shown(o)));
        }
        if let Some(n) = new {
            line.insert("new".into(), Value::Object(shown(n)));
        }
        serde_json::to_writer(&mut *out, &line).map_err(std::io::Error::from)?;
        out.write_all(b"\n")?;
        lines += 1;
    }
    Ok((lines, nulled_a + nulled_b))
}
