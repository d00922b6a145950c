//! Properties of the export decoder on any chunk bytes: for every kind of column, a
//! chunk either decodes into consistent record batches or is an error, never a panic.
//! Fixed budget and seed, as in `pgcopy`'s properties.

use std::sync::Arc;

use arrow_schema::{Field, Schema};
use proptest::prelude::*;

use crate::testing::tuple_of as tuple;

use super::decode::TableDecoder;
use super::kind::{Kind, Text};

/// One column of every kind the export maps, nested ones included.
fn kinds() -> Vec<Kind> {
    let texts = [
        Text::Plain,
        Text::Json,
        Text::Jsonb,
        Text::Char,
        Text::Numeric,
        Text::TimeTz,
        Text::Inet,
        Text::MacAddr,
        Text::MacAddr8,
        Text::Bits,
        Text::TsVector,
        Text::Lsn,
        Text::Uuid,
    ];
    let mut k = vec![
        Kind::Bool,
        Kind::Int2,
        Kind::Int4,
        Kind::Int8,
        Kind::Oid,
        Kind::Float4,
        Kind::Float8,
        Kind::Decimal {
            precision: 10,
            scale: 2,
        },
        Kind::Decimal {
            precision: 38,
            scale: 0,
        },
        Kind::Decimal {
            precision: 76,
            scale: 20,
        },
        Kind::Bytea,
        Kind::Date,
        Kind::Time,
        Kind::Timestamp { utc: false },
        Kind::Timestamp { utc: true },
        Kind::Interval,
        Kind::IntervalParts,
        Kind::Uuid,
        Kind::Enum,
        Kind::Money,
        Kind::Point,
        Kind::Hstore,
        Kind::Raw,
        Kind::Array(Box::new(Kind::Int4)),
        Kind::Array(Box::new(Kind::Text(Text::Plain))),
        Kind::Range(Box::new(Kind::Date)),
        Kind::Multirange(Box::new(Kind::Range(Box::new(Kind::Int8)))),
        Kind::Composite(vec![
            ("a".into(), Kind::Int4),
            (
                "b".into(),
                Kind::Array(Box::new(Kind::Decimal {
                    precision: 5,
                    scale: 1,
                })),
            ),
        ]),
        Kind::Array(Box::new(Kind::Composite(vec![
            ("x".into(), Kind::Text(Text::Plain)),
            (
                "y".into(),
                Kind::Range(Box::new(Kind::Timestamp { utc: true })),
            ),
        ]))),
    ];
    k.extend(texts.into_iter().map(Kind::Text));
    k
}

fn decoder(kinds: &[Kind], fail: bool) -> TableDecoder {
    let schema = Arc::new(Schema::new(
        kinds
            .iter()
            .enumerate()
            .map(|(i, k)| k.field(&format!("c{i}"), true))
            .collect::<Vec<Field>>(),
    ));
    TableDecoder::new(schema, kinds, 3, fail)
}

/// Field bytes that get past the first checks of many decoders: small numbers in
/// the places where lengths, counts and dimensions go.
fn value() -> impl Strategy<Value = Vec<u8>> {
    let small = prop_oneof![
        (0i32..4).prop_map(|n| n.to_be_bytes().to_vec()),
        Just((-1i32).to_be_bytes().to_vec()),
        (0u8..=32).prop_map(|b| vec![b]),
        prop::collection::vec(any::<u8>(), 0..9),
    ];
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..24),
        prop::collection::vec(small, 0..10).prop_map(|p| p.concat()),
        structured(),
    ]
}

fn item(v: &Option<Vec<u8>>) -> Vec<u8> {
    match v {
        None => (-1i32).to_be_bytes().to_vec(),
        Some(b) => [(b.len() as i32).to_be_bytes().to_vec(), b.clone()].concat(),
    }
}

/// Values shaped like arrays, composites, ranges, multiranges and hstores, with
/// awkward counts and dimensions, and elements that are often valid int4, int8, date
/// or timestamp values.
fn structured() -> impl Strategy<Value = Vec<u8>> {
    let elem = prop_oneof![
        any::<i32>().prop_map(|x| Some(x.to_be_bytes().to_vec())),
        any::<i64>().prop_map(|x| Some(x.to_be_bytes().to_vec())),
        Just(None),
        prop::collection::vec(any::<u8>(), 0..10).prop_map(Some),
    ];
    let elems = prop::collection::vec(elem, 0..5);
    let count = prop::sample::select(vec![0i32, 1, 2, 3, 1000, i32::MAX, -1, -2]);
    (
        0u8..5,
        count.clone(),
        prop::collection::vec(count, 0..7),
        elems,
        any::<u8>(),
    )
        .prop_map(|(shape, n, dims, elems, flags)| {
            let mut v = Vec::new();
            match shape {
                // array: ndim, flags, element oid, dims, items
                0 => {
                    v.extend((dims.len() as i32).to_be_bytes());
                    v.extend(0i32.to_be_bytes());
                    v.extend(23u32.to_be_bytes());
                    for d in &dims {
                        v.extend(d.to_be_bytes());
                        v.extend(1i32.to_be_bytes());
                    }
                    elems.iter().for_each(|e| v.extend(item(e)));
                }
                // composite: count, then (oid, item)
                1 => {
                    v.extend(n.to_be_bytes());
                    for e in &elems {
                        v.extend(23u32.to_be_bytes());
                        v.extend(item(e));
                    }
                }
                // range: flags, bounds
                2 => {
                    v.push(flags);
                    elems.iter().take(2).for_each(|e| v.extend(item(e)));
                }
                // multirange / hstore: count, items
                _ => {
                    v.extend(n.to_be_bytes());
                    elems.iter().for_each(|e| v.extend(item(e)));
                }
            }
            v
        })
}

/// One column's tuples: `rows` values of that column alone.
fn column_chunk(rows: Vec<Option<Vec<u8>>>) -> Vec<u8> {
    rows.iter()
        .flat_map(|v| tuple(std::slice::from_ref(v)))
        .collect()
}

proptest! {
    #![proptest_config(crate::testing::proptest_config())]

    #[test]
    fn any_chunk_decodes_or_fails_cleanly(
        column in any::<prop::sample::Index>(),
        rows in prop::collection::vec(prop::option::weighted(0.9, value()), 0..8),
        fail in any::<bool>(),
    ) {
        let kinds = kinds();
        let kind = kinds[column.index(kinds.len())].clone();
        let mut d = decoder(std::slice::from_ref(&kind), fail);
        let mut rows_out = 0;
        let r = d.push::<()>(&column_chunk(rows), &mut |b| {
            rows_out += b.num_rows();
            Ok(())
        });
        if r.is_ok() {
            if let Some(b) = d.flush() {
                rows_out += b.num_rows();
            }
            prop_assert_eq!(rows_out as u64, d.total_rows);
        }
    }

    #[test]
    fn random_bytes_as_a_chunk_of_every_kind(
        data in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        let kinds = kinds();
        let mut d = decoder(&kinds, false);
        if d.push::<()>(&data, &mut |_| Ok(())).is_ok() {
            let _ = d.flush();
        }
    }
}
