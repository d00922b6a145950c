//! Properties of the PGCOPY framing, the value decoders and the OID rewriter on any
//! input: never a panic, never an allocation out of proportion to the input, and the
//! round trips hold. Run in CI with proptest's fixed budget (`PROPTEST_CASES`, 256 by
//! default) and a fixed seed (`PROPTEST_RNG_SEED` picks another), so a run is
//! repeatable.

use std::collections::HashMap;

use proptest::prelude::*;

use crate::testing::tuple_of as tuple;

use super::remap::{Shape, TypeGraph};
use super::value::{self, Reader};
use super::{header, scan_tuples, tuples, Cutter, TupleScanner, TupleStats, TRAILER};

fn field() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop::option::weighted(0.8, prop::collection::vec(any::<u8>(), 0..40))
}

fn tuples_strategy() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(
        prop::collection::vec(field(), 0..6).prop_map(|f| tuple(&f)),
        0..20,
    )
}

/// Bytes that are mostly framing-shaped: whole tuples with a few bytes changed.
fn mutated_tuples() -> impl Strategy<Value = Vec<u8>> {
    (
        tuples_strategy(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    )
        .prop_map(|(ts, flips)| {
            let mut data = ts.concat();
            for (i, b) in flips {
                if !data.is_empty() {
                    let i = i.index(data.len());
                    data[i] ^= b;
                }
            }
            data
        })
}

fn any_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..300)
}

/// An array header with dimensions drawn from the awkward ones (0, 1, huge), then
/// a few elements.
fn array_value() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::option::weighted(0.1, 0i32..=7),
        0i32..=2,
        prop::collection::vec(
            prop::sample::select(vec![0i32, 1, 2, 3, 1000, i32::MAX, -1]),
            0..7,
        ),
        prop::collection::vec(field(), 0..4),
    )
        .prop_map(|(ndim, flags, dims, elems)| {
            // Mostly as many dimensions as the header says.
            let ndim = ndim.unwrap_or(dims.len() as i32);
            let mut v = ndim.to_be_bytes().to_vec();
            v.extend(flags.to_be_bytes());
            v.extend(23u32.to_be_bytes());
            for d in dims {
                v.extend(d.to_be_bytes());
                v.extend(1i32.to_be_bytes());
            }
            for e in elems {
                match e {
                    None => v.extend((-1i32).to_be_bytes()),
                    Some(b) => {
                        v.extend((b.len() as i32).to_be_bytes());
                        v.extend(b);
                    }
                }
            }
            v
        })
}

/// Walks every field of every tuple, as restore and export do.
fn walk(data: &[u8]) -> Result<u64, super::CopyFormatError> {
    let mut rows = 0;
    for t in tuples(data) {
        let fields = t?;
        for v in fields.flatten() {
            // Every field lies inside the buffer it was cut from.
            let start = v.as_ptr() as usize - data.as_ptr() as usize;
            assert!(start + v.len() <= data.len());
        }
        rows += 1;
    }
    Ok(rows)
}

proptest! {
    #![proptest_config(crate::testing::proptest_config())]

    #[test]
    fn scanning_any_bytes_never_panics(data in prop_oneof![any_bytes(), mutated_tuples()]) {
        let scanned = scan_tuples(&data);
        let walked = walk(&data);
        // Both readers agree on what is well-framed.
        match (&scanned, &walked) {
            (Ok(s), Ok(rows)) => prop_assert_eq!(s.rows, *rows),
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            _ => prop_assert!(false, "scan {scanned:?} but walk {walked:?}"),
        }
    }

    #[test]
    fn cuts_are_whole_tuples_whatever_the_feed(
        ts in tuples_strategy(),
        piece in 1usize..64,
        target in 64usize..400,
    ) {
        let mut stream = header().to_vec();
        for t in &ts {
            stream.extend(t);
        }
        stream.extend(TRAILER);
        let mut sc = TupleScanner::new(Cutter::new(&[5; 32], target));
        let mut total = TupleStats::default();
        for part in stream.chunks(piece) {
            sc.feed(part).unwrap();
            while let Some(c) = sc.next_cut() {
                prop_assert_eq!(scan_tuples(&c.data).unwrap(), c.stats);
                total.merge(c.stats);
            }
        }
        let last = sc.finish().unwrap();
        prop_assert_eq!(scan_tuples(&last.data).unwrap(), last.stats);
        total.merge(last.stats);
        prop_assert_eq!(total, scan_tuples(&ts.concat()).unwrap());
    }

    #[test]
    fn the_stream_scanner_survives_any_bytes(
        body in prop_oneof![any_bytes(), mutated_tuples()],
        with_header in any::<bool>(),
        piece in 1usize..50,
    ) {
        let mut stream = if with_header { header().to_vec() } else { Vec::new() };
        stream.extend(&body);
        let mut sc = TupleScanner::new(Cutter::new(&[5; 32], 64));
        let mut held = 0usize;
        let mut fed = 0usize;
        for part in stream.chunks(piece) {
            fed += part.len();
            if sc.feed(part).is_err() {
                break;
            }
            // Memory: never more than what came in.
            while let Some(c) = sc.next_cut() {
                held += c.data.len();
            }
            prop_assert!(held <= fed);
        }
        let _ = sc.finish();
    }

    #[test]
    fn value_decoders_never_panic_and_stay_in_proportion(v in prop_oneof![
        any_bytes(),
        array_value(),
        // Typed prefixes, so decoders get past their first checks.
        (any::<i16>(), any::<i16>(), prop::sample::select(vec![0u16, 0x4000, 0xC000, 0xD000, 0xF000, 0x1234]),
         0u16..0x4000, prop::collection::vec(0u16..10_000, 0..8))
            .prop_map(|(n, w, s, d, digits)| {
                let mut v = n.to_be_bytes().to_vec();
                v.extend(w.to_be_bytes());
                v.extend(s.to_be_bytes());
                v.extend(d.to_be_bytes());
                for x in digits {
                    v.extend(x.to_be_bytes());
                }
                v
            }),
    ]) {
        let bound = 16 * v.len() + 64;
        let mut out = String::new();
        let check = |r: Result<(), super::remap::ValueError>, out: &mut String, bound: usize| {
            let _ = r;
            assert!(out.len() <= bound, "{} bytes of text from {} bytes", out.len(), v.len());
            out.clear();
        };
        let _ = (value::bool(&v), value::i16(&v), value::i32(&v), value::i64(&v));
        let _ = (value::u32(&v), value::f32(&v), value::f64(&v), value::uuid(&v));
        let _ = (value::text(&v), value::jsonb(&v), value::date(&v), value::timestamp(&v));
        let _ = (value::time(&v), value::interval(&v), value::range(&v));
        check(value::char_text(&v, &mut out), &mut out, bound);
        check(value::timetz_text(&v, &mut out), &mut out, bound);
        check(value::inet_text(&v, &mut out), &mut out, bound);
        check(value::mac_text(&v, 6, &mut out), &mut out, bound);
        check(value::mac_text(&v, 8, &mut out), &mut out, bound);
        check(value::bits_text(&v, &mut out), &mut out, bound);
        check(value::lsn_text(&v, &mut out), &mut out, bound);
        check(value::tsvector_text(&v, &mut out), &mut out, bound);
        if let Ok(Ok(n)) = value::numeric(&v) {
            // numeric_out prints up to 4 digits per unit of weight and dscale digits
            // after the point: at most ~147 000 characters whatever the input.
            n.write_text(&mut out);
            prop_assert!(out.len() <= 4 * 32_768 + 0x3FFF + 8, "{}", out.len());
            let mut digits = Vec::new();
            for scale in [0u32, 2, 38, 76] {
                let _ = n.scaled_digits(scale, &mut digits);
                prop_assert!(digits.len() <= value::MAX_SCALED_DIGITS + 1);
            }
        }
        let mut r = Reader::new(&v);
        if let Ok(h) = value::array_header(&mut r) {
            // The element count is what the header claims (readers must not reserve
            // room for it before the bytes are there), and no more than PostgreSQL's
            // MaxArraySize.
            prop_assert!(h.len() <= 0x3FFF_FFFF / 4);
        }
    }

    #[test]
    fn remapping_any_bytes_never_panics_and_undoes_itself(
        data in prop_oneof![any_bytes(), mutated_tuples(), arrays_of_moods()],
    ) {
        let (remap, _) = remapper();
        let mut rewritten = data.clone();
        if remap.rewrite(&mut rewritten).is_ok() {
            prop_assert_eq!(rewritten.len(), data.len());
            let mut back = rewritten.clone();
            remap.inverse().rewrite(&mut back).unwrap();
            prop_assert_eq!(back, data);
        }
    }
}

const MOOD: u32 = 16386;
const MOOD_ARR: u32 = 16385;
const PAIR: u32 = 16390;

/// Tuples of (mood[], pair) where pair is a composite (int4, mood[]).
fn remapper() -> (super::remap::Remapper, TypeGraph) {
    let graph = TypeGraph::new([
        (MOOD_ARR, Shape::Array { elem: MOOD }),
        (MOOD, Shape::Opaque),
        (
            PAIR,
            Shape::Composite {
                fields: vec![23, MOOD_ARR],
            },
        ),
    ]);
    let target: HashMap<u32, u32> = [(MOOD, 26386), (MOOD_ARR, 26385), (PAIR, 26390)].into();
    (graph.remapper(&[MOOD_ARR, PAIR], &target).unwrap(), graph)
}

fn mood_array(labels: &[Option<Vec<u8>>]) -> Vec<u8> {
    let mut v = 1i32.to_be_bytes().to_vec();
    v.extend(i32::from(labels.iter().any(Option::is_none)).to_be_bytes());
    v.extend(MOOD.to_be_bytes());
    v.extend((labels.len() as i32).to_be_bytes());
    v.extend(1i32.to_be_bytes());
    for l in labels {
        match l {
            None => v.extend((-1i32).to_be_bytes()),
            Some(b) => {
                v.extend((b.len() as i32).to_be_bytes());
                v.extend(b);
            }
        }
    }
    v
}

/// Well-formed tuples for [`remapper`], some with a byte changed.
fn arrays_of_moods() -> impl Strategy<Value = Vec<u8>> {
    let labels = || prop::collection::vec(field(), 0..4);
    (
        prop::collection::vec((labels(), any::<i32>(), labels()), 0..5),
        prop::option::of((any::<prop::sample::Index>(), any::<u8>())),
    )
        .prop_map(|(rows, flip)| {
            let mut data = Vec::new();
            for (a, n, b) in rows {
                let mut pair = 2i32.to_be_bytes().to_vec();
                pair.extend(23u32.to_be_bytes());
                pair.extend(4i32.to_be_bytes());
                pair.extend(n.to_be_bytes());
                pair.extend(MOOD_ARR.to_be_bytes());
                let inner = mood_array(&b);
                pair.extend((inner.len() as i32).to_be_bytes());
                pair.extend(inner);
                data.extend(tuple(&[Some(mood_array(&a)), Some(pair)]));
            }
            if let Some((i, b)) = flip {
                if !data.is_empty() {
                    let i = i.index(data.len());
                    data[i] ^= b;
                }
            }
            data
        })
}

/// Found by `value_decoders_never_panic_and_stay_in_proportion`: huge dimensions
/// before a zero one passed the header check (the saturated product times 0 is 0),
/// then overflowed when the element count was multiplied out.
#[test]
fn huge_dimensions_before_a_zero_one_make_an_empty_array() {
    let mut v = 4i32.to_be_bytes().to_vec();
    v.extend(0i32.to_be_bytes());
    v.extend(23u32.to_be_bytes());
    for d in [i32::MAX, i32::MAX, i32::MAX, 0] {
        v.extend(d.to_be_bytes());
        v.extend(1i32.to_be_bytes());
    }
    let h = value::array_header(&mut Reader::new(&v)).unwrap();
    assert_eq!(h.len(), 0);
    assert!(h.is_empty());
}

proptest! {
    #![proptest_config(crate::testing::proptest_config())]

    /// Text rows: however a stream is fed, the cuts hold whole rows that add up to the
    /// stream's rows; a stream cut inside a row is an error at the end; any field
    /// decodes without a panic and never grows.
    #[test]
    fn text_scanner_cuts_whole_rows_of_any_bytes(
        data in prop::collection::vec(
            prop::sample::select(vec![b'\n', b'\t', b'\\', b'N', b'x', b'7', 0xff]),
            0..300,
        ),
        piece in 1usize..50,
        target in 64usize..400,
    ) {
        let mut sc = super::TextScanner::new(Cutter::new(&[5; 32], target));
        let mut total = TupleStats::default();
        for part in data.chunks(piece) {
            sc.feed(part);
            while let Some(c) = sc.next_cut() {
                prop_assert_eq!(super::scan_text_rows(&c.data).unwrap(), c.stats);
                total.merge(c.stats);
            }
        }
        let whole = data.ends_with(b"\n") || data.is_empty();
        match sc.finish() {
            Ok(last) => {
                prop_assert!(whole);
                total.merge(last.stats);
                prop_assert_eq!(total, super::scan_text_rows(&data).unwrap());
            }
            Err(_) => prop_assert!(!whole),
        }
        for row in super::text::text_rows(&data).flatten() {
            for f in row.fields() {
                if let Some(v) = super::text::decode_text_field(f) {
                    prop_assert!(v.len() <= f.len());
                }
            }
        }
    }
}
