//! Arrow builders fed with binary COPY values: one [`Builder`] per column, nesting for
//! arrays, composites, ranges and maps, following the column's [`Kind`].

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Decimal256Builder,
    FixedSizeBinaryBuilder, Float32Builder, Float64Builder, Int16Builder, Int32Builder,
    Int64Builder, IntervalMonthDayNanoBuilder, StringBuilder, StringDictionaryBuilder,
    Time64MicrosecondBuilder, TimestampMicrosecondBuilder, UInt32Builder,
};
use arrow_array::types::{Int32Type, IntervalMonthDayNano};
use arrow_array::{ArrayRef, ListArray, MapArray, StructArray};
use arrow_buffer::{i256, NullBufferBuilder, OffsetBuffer, ScalarBuffer};
use arrow_schema::{FieldRef, Fields};

use super::kind::{hstore_entries, Kind, Text};
use crate::pgcopy::remap::ValueError;
use crate::pgcopy::value::{self, Reader, Special};

/// Why a value could not be appended.
#[derive(Debug)]
pub enum Problem {
    /// The bytes are not a value of the column's type.
    Malformed(ValueError),
    /// A value Arrow cannot hold (±infinity, NaN, too many digits) under the "fail"
    /// policy: what it was.
    Special(String),
}

impl From<ValueError> for Problem {
    fn from(e: ValueError) -> Self {
        Problem::Malformed(e)
    }
}

/// Per column: what the mapping could not carry, for the report.
#[derive(Debug, Default, Clone)]
pub struct Lossy {
    /// Fail on special values instead of exporting NULL.
    pub fail: bool,
    /// Values exported as NULL because Arrow cannot hold them.
    pub nulled: u64,
    /// The first of them, as PostgreSQL would print it.
    pub example: Option<String>,
    /// Multi-dimensional arrays flattened into a list.
    pub flattened: u64,
}

impl Lossy {
    fn special(&mut self, what: impl FnOnce() -> String) -> Result<(), Problem> {
        if self.fail {
            return Err(Problem::Special(what()));
        }
        self.nulled += 1;
        if self.example.is_none() {
            self.example = Some(what());
        }
        Ok(())
    }
}

/// Builds one Arrow array from binary values of one kind.
pub enum Builder {
    Bool(BooleanBuilder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    U32(UInt32Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    D128 {
        b: Decimal128Builder,
        precision: u8,
        scale: u8,
        digits: Vec<u8>,
    },
    D256 {
        b: Decimal256Builder,
        precision: u8,
        scale: u8,
        digits: Vec<u8>,
    },
    Str {
        b: StringBuilder,
        form: Text,
        scratch: String,
    },
    Dict(StringDictionaryBuilder<Int32Type>),
    Bin(BinaryBuilder),
    Uuid(FixedSizeBinaryBuilder),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
    Ts(TimestampMicrosecondBuilder),
    Interval(IntervalMonthDayNanoBuilder),
    List {
        field: FieldRef,
        offsets: Vec<i32>,
        nulls: NullBufferBuilder,
        child: Box<Builder>,
        /// Multirange (ranges, each length-prefixed) rather than array.
        multirange: bool,
    },
    Struct {
        fields: Fields,
        nulls: NullBufferBuilder,
        children: Vec<Builder>,
        shape: StructShape,
    },
    Map {
        offsets: Vec<i32>,
        nulls: NullBufferBuilder,
        keys: StringBuilder,
        values: StringBuilder,
    },
}

/// How a struct-shaped value is laid out in binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StructShape {
    Composite,
    Range,
    Point,
    Interval,
}

/// `match`es `$builder`, running `$leaf` with `$b` bound to the Arrow builder of
/// every variant that wraps a single one, then the arms given for the nested ones.
macro_rules! on_leaf {
    ($builder:expr, $b:ident => $leaf:expr, $($nested:tt)*) => {
        match $builder {
            Builder::Bool($b) => $leaf,
            Builder::I16($b) => $leaf,
            Builder::I32($b) => $leaf,
            Builder::I64($b) => $leaf,
            Builder::U32($b) => $leaf,
            Builder::F32($b) => $leaf,
            Builder::F64($b) => $leaf,
            Builder::D128 { b: $b, .. } => $leaf,
            Builder::D256 { b: $b, .. } => $leaf,
            Builder::Str { b: $b, .. } => $leaf,
            Builder::Dict($b) => $leaf,
            Builder::Bin($b) => $leaf,
            Builder::Uuid($b) => $leaf,
            Builder::Date($b) => $leaf,
            Builder::Time($b) => $leaf,
            Builder::Ts($b) => $leaf,
            Builder::Interval($b) => $leaf,
            $($nested)*
        }
    };
}

impl Builder {
    pub fn new(kind: &Kind) -> Builder {
        match kind {
            Kind::Bool => Builder::Bool(BooleanBuilder::new()),
            Kind::Int2 => Builder::I16(Int16Builder::new()),
            Kind::Int4 => Builder::I32(Int32Builder::new()),
            Kind::Int8 | Kind::Money => Builder::I64(Int64Builder::new()),
            Kind::Oid => Builder::U32(UInt32Builder::new()),
            Kind::Float4 => Builder::F32(Float32Builder::new()),
            Kind::Float8 => Builder::F64(Float64Builder::new()),
            Kind::Decimal { precision, scale } if *precision <= 38 => Builder::D128 {
                b: Decimal128Builder::new().with_data_type(kind.data_type()),
                precision: *precision,
                scale: *scale,
                digits: Vec::new(),
            },
            Kind::Decimal { precision, scale } => Builder::D256 {
                b: Decimal256Builder::new().with_data_type(kind.data_type()),
                precision: *precision,
                scale: *scale,
                digits: Vec::new(),
            },
            Kind::Text(form) => Builder::Str {
                b: StringBuilder::new(),
                form: *form,
                scratch: String::new(),
            },
            Kind::Enum => Builder::Dict(StringDictionaryBuilder::new()),
            Kind::Bytea | Kind::Raw => Builder::Bin(BinaryBuilder::new()),
            Kind::Uuid => Builder::Uuid(FixedSizeBinaryBuilder::new(16)),
            Kind::Date => Builder::Date(Date32Builder::new()),
            Kind::Time => Builder::Time(Time64MicrosecondBuilder::new()),
            Kind::Timestamp { .. } => {
                Builder::Ts(TimestampMicrosecondBuilder::new().with_data_type(kind.data_type()))
            }
            Kind::Interval => Builder::Interval(IntervalMonthDayNanoBuilder::new()),
            Kind::Array(item) | Kind::Multirange(item) => Builder::List {
                field: Arc::new(item.field("item", true)),
                offsets: vec![0],
                nulls: NullBufferBuilder::new(0),
                child: Box::new(Builder::new(item)),
                multirange: matches!(kind, Kind::Multirange(_)),
            },
            Kind::Composite(fields) => Builder::Struct {
                fields: kind.struct_fields(),
                nulls: NullBufferBuilder::new(0),
                children: fields.iter().map(|(_, k)| Builder::new(k)).collect(),
                shape: StructShape::Composite,
            },
            Kind::Range(sub) => Builder::Struct {
                fields: kind.struct_fields(),
                nulls: NullBufferBuilder::new(0),
                children: vec![
                    Builder::new(sub),
                    Builder::new(sub),
                    Builder::new(&Kind::Bool),
                    Builder::new(&Kind::Bool),
                    Builder::new(&Kind::Bool),
                ],
                shape: StructShape::Range,
            },
            Kind::Point => Builder::Struct {
                fields: kind.struct_fields(),
                nulls: NullBufferBuilder::new(0),
                children: vec![Builder::new(&Kind::Float8), Builder::new(&Kind::Float8)],
                shape: StructShape::Point,
            },
            Kind::IntervalParts => Builder::Struct {
                fields: kind.struct_fields(),
                nulls: NullBufferBuilder::new(0),
                children: vec![
                    Builder::new(&Kind::Int4),
                    Builder::new(&Kind::Int4),
                    Builder::new(&Kind::Int8),
                ],
                shape: StructShape::Interval,
            },
            Kind::Hstore => Builder::Map {
                offsets: vec![0],
                nulls: NullBufferBuilder::new(0),
                keys: StringBuilder::new(),
                values: StringBuilder::new(),
            },
        }
    }

    /// Appends one value (`None`: SQL NULL).
    pub fn append(&mut self, v: Option<&[u8]>, lossy: &mut Lossy) -> Result<(), Problem> {
        let Some(v) = v else {
            self.append_null();
            return Ok(());
        };
        match self {
            Builder::Bool(b) => b.append_value(value::bool(v)?),
            Builder::I16(b) => b.append_value(value::i16(v)?),
            Builder::I32(b) => b.append_value(value::i32(v)?),
            Builder::I64(b) => b.append_value(value::i64(v)?),
            Builder::U32(b) => b.append_value(value::u32(v)?),
            Builder::F32(b) => b.append_value(value::f32(v)?),
            Builder::F64(b) => b.append_value(value::f64(v)?),
            Builder::D128 {
                b,
                precision,
                scale,
                digits,
            } => match decimal(v, *precision, *scale, digits, lossy)? {
                Some(d) => b.append_value(
                    fold(digits, 0i128, |a, d| {
                        a.checked_mul(10)?.checked_add(d as i128)
                    })
                    .map(|x| if d { -x } else { x })
                    .ok_or(ValueError::OutOfRange)?,
                ),
                None => b.append_null(),
            },
            Builder::D256 {
                b,
                precision,
                scale,
                digits,
            } => match decimal(v, *precision, *scale, digits, lossy)? {
                Some(neg) => {
                    let ten = i256::from_i128(10);
                    let x = fold(digits, i256::ZERO, |a, d| {
                        a.checked_mul(ten)?.checked_add(i256::from_i128(d as i128))
                    })
                    .ok_or(ValueError::OutOfRange)?;
                    b.append_value(if neg { x.wrapping_neg() } else { x })
                }
                None => b.append_null(),
            },
            Builder::Str { b, form, scratch } => {
                if let Text::Plain | Text::Json = form {
                    b.append_value(value::text(v)?);
                } else {
                    scratch.clear();
                    text_form(*form, v, scratch)?;
                    b.append_value(scratch.as_str());
                }
            }
            Builder::Dict(b) => {
                b.append_value(value::text(v)?);
            }
            Builder::Bin(b) => b.append_value(v),
            Builder::Uuid(b) => b
                .append_value(value::uuid(v)?)
                .map_err(|_| ValueError::Truncated)?,
            Builder::Date(b) => match value::date(v)? {
                Ok(d) => b.append_value(d),
                Err(s) => {
                    lossy.special(|| format!("date {s}"))?;
                    b.append_null()
                }
            },
            Builder::Time(b) => b.append_value(value::time(v)?),
            Builder::Ts(b) => match value::timestamp(v)? {
                Ok(t) => b.append_value(t),
                Err(s) => {
                    lossy.special(|| format!("timestamp {s}"))?;
                    b.append_null()
                }
            },
            Builder::Interval(b) => match value::interval(v)? {
                Ok((months, days, nanos)) => {
                    b.append_value(IntervalMonthDayNano::new(months, days, nanos))
                }
                Err(s) => {
                    lossy.special(|| format!("interval {s}"))?;
                    b.append_null()
                }
            },
            Builder::List {
                offsets,
                nulls,
                child,
                multirange,
                ..
            } => {
                let mut r = Reader::new(v);
                let mut added = 0usize;
                if *multirange {
                    let count = r.i32()?;
                    if count < 0 {
                        return Err(ValueError::BadLength(count).into());
                    }
                    for _ in 0..count {
                        let range = r.item()?.ok_or(ValueError::BadLength(-1))?;
                        child.append(Some(range), lossy)?;
                        added += 1;
                    }
                } else {
                    let header = value::array_header(&mut r)?;
                    if header.dims.len() > 1 {
                        lossy.flattened += 1;
                    }
                    for _ in 0..header.len() {
                        child.append(r.item()?, lossy)?;
                        added += 1;
                    }
                }
                r.end()?;
                let last = *offsets.last().expect("offsets start with 0");
                offsets.push(last + i32::try_from(added).map_err(|_| ValueError::OutOfRange)?);
                nulls.append_non_null();
            }
            Builder::Struct {
                nulls,
                children,
                shape,
                ..
            } => {
                match shape {
                    StructShape::Composite => {
                        let mut r = Reader::new(v);
                        let n = r.i32()?;
                        if n as usize != children.len() {
                            return Err(ValueError::WrongFieldCount {
                                expected: children.len(),
                                found: n,
                            }
                            .into());
                        }
                        for c in children.iter_mut() {
                            let _oid = r.u32()?;
                            c.append(r.item()?, lossy)?;
                        }
                        r.end()?;
                    }
                    StructShape::Range => {
                        let range = value::range(v)?;
                        children[0].append(range.lower, lossy)?;
                        children[1].append(range.upper, lossy)?;
                        for (c, flag) in children[2..].iter_mut().zip([
                            range.lower_inclusive,
                            range.upper_inclusive,
                            range.empty,
                        ]) {
                            let Builder::Bool(b) = c else {
                                unreachable!("range flags are booleans")
                            };
                            b.append_value(flag);
                        }
                    }
                    StructShape::Interval => match value::interval(v)? {
                        Ok((months, days, nanos)) => {
                            let [Builder::I32(m), Builder::I32(d), Builder::I64(n)] =
                                &mut children[..]
                            else {
                                unreachable!("interval parts are integers")
                            };
                            m.append_value(months);
                            d.append_value(days);
                            n.append_value(nanos);
                        }
                        Err(s) => {
                            lossy.special(|| format!("interval {s}"))?;
                            self.append_null();
                            return Ok(());
                        }
                    },
                    StructShape::Point => {
                        let mut r = Reader::new(v);
                        let (x, y) = (r.f64()?, r.f64()?);
                        r.end()?;
                        for (c, f) in children.iter_mut().zip([x, y]) {
                            let Builder::F64(b) = c else {
                                unreachable!("point coordinates are floats")
                            };
                            b.append_value(f);
                        }
                    }
                }
                nulls.append_non_null();
            }
            Builder::Map {
                offsets,
                nulls,
                keys,
                values,
            } => {
                let mut r = Reader::new(v);
                let count = r.i32()?;
                if count < 0 {
                    return Err(ValueError::BadLength(count).into());
                }
                for _ in 0..count {
                    let k = r.item()?.ok_or(ValueError::BadLength(-1))?;
                    keys.append_value(value::text(k)?);
                    match r.item()? {
                        Some(val) => values.append_value(value::text(val)?),
                        None => values.append_null(),
                    }
                }
                r.end()?;
                let last = *offsets.last().expect("offsets start with 0");
                offsets.push(last + count);
                nulls.append_non_null();
            }
        }
        Ok(())
    }

    pub fn append_null(&mut self) {
        on_leaf!(self, b => b.append_null(),
            Builder::List { offsets, nulls, .. } | Builder::Map { offsets, nulls, .. } => {
                offsets.push(*offsets.last().expect("offsets start with 0"));
                nulls.append_null();
            }
            Builder::Struct {
                nulls, children, ..
            } => {
                // Children hold a slot for every row, NULL rows included.
                for c in children.iter_mut() {
                    c.append_null();
                }
                nulls.append_null();
            }
        )
    }

    /// The array built so far; the builder starts over empty.
    pub fn finish(&mut self) -> ArrayRef {
        on_leaf!(self, b => Arc::new(b.finish()),
            Builder::List {
                field,
                offsets,
                nulls,
                child,
                ..
            } => Arc::new(ListArray::new(
                field.clone(),
                take_offsets(offsets),
                child.finish(),
                nulls.finish(),
            )),
            Builder::Struct {
                fields,
                nulls,
                children,
                ..
            } => Arc::new(StructArray::new(
                fields.clone(),
                children.iter_mut().map(Builder::finish).collect(),
                nulls.finish(),
            )),
            Builder::Map {
                offsets,
                nulls,
                keys,
                values,
            } => {
                let entries = hstore_entries();
                let arrow_schema::DataType::Struct(fields) = entries.data_type().clone() else {
                    unreachable!("hstore entries are a struct")
                };
                let entries_array = StructArray::new(
                    fields,
                    vec![Arc::new(keys.finish()), Arc::new(values.finish())],
                    None,
                );
                Arc::new(MapArray::new(
                    entries,
                    take_offsets(offsets),
                    entries_array,
                    nulls.finish(),
                    false,
                ))
            }
        )
    }
}

fn take_offsets(offsets: &mut Vec<i32>) -> OffsetBuffer<i32> {
    let done = std::mem::replace(offsets, vec![0]);
    OffsetBuffer::new(ScalarBuffer::from(done))
}

/// Decodes a numeric into `digits` (the unscaled integer's decimal digits) and
/// returns its sign, or `None` when it does not fit Decimal(precision, scale) and the
/// policy made it NULL.
fn decimal(
    v: &[u8],
    precision: u8,
    scale: u8,
    digits: &mut Vec<u8>,
    lossy: &mut Lossy,
) -> Result<Option<bool>, Problem> {
    let n = match value::numeric(v)? {
        Ok(n) => n,
        Err(s) => {
            lossy.special(|| format!("numeric {s}"))?;
            return Ok(None);
        }
    };
    if n.scaled_digits(scale as u32, digits).is_none() || digits.len() > precision as usize {
        lossy.special(|| {
            let mut t = String::new();
            n.write_text(&mut t);
            format!("numeric {t} (beyond numeric({precision},{scale}))")
        })?;
        return Ok(None);
    }
    Ok(Some(n.negative))
}

fn fold<T: Copy>(digits: &[u8], zero: T, step: impl Fn(T, u8) -> Option<T>) -> Option<T> {
    digits.iter().try_fold(zero, |a, &d| step(a, d))
}

/// Prints `v` in `form` into `out`. Text has room for every value: a numeric NaN or
/// infinity keeps its name here (only Decimal columns lose them).
fn text_form(form: Text, v: &[u8], out: &mut String) -> Result<(), ValueError> {
    match form {
        Text::Plain | Text::Json => out.push_str(value::text(v)?),
        Text::Jsonb => out.push_str(value::jsonb(v)?),
        Text::Char => value::char_text(v, out)?,
        Text::Numeric => match value::numeric(v)? {
            Ok(n) => n.write_text(out),
            Err(Special::NaN) => out.push_str("NaN"),
            Err(Special::Infinity) => out.push_str("Infinity"),
            Err(Special::NegInfinity) => out.push_str("-Infinity"),
            Err(Special::OutOfRange) => return Err(ValueError::OutOfRange),
        },
        Text::TimeTz => value::timetz_text(v, out)?,
        Text::Inet => value::inet_text(v, out)?,
        Text::MacAddr => value::mac_text(v, 6, out)?,
        Text::MacAddr8 => value::mac_text(v, 8, out)?,
        Text::Bits => value::bits_text(v, out)?,
        Text::TsVector => value::tsvector_text(v, out)?,
        Text::Lsn => value::lsn_text(v, out)?,
        Text::Uuid => {
            let u = value::uuid(v)?;
            let h = hex::encode(u);
            out.push_str(&format!(
                "{}-{}-{}-{}-{}",
                &h[..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..]
            ));
        }
    }
    Ok(())
}
