//! Decoders for the binary forms of PostgreSQL values, as `COPY … (FORMAT binary)`
//! writes them (each type's `*_send` function), for readers that need the values
//! themselves rather than the bytes: the Parquet export.
//!
//! Every decoder takes one field's bytes and either returns the value or says why the
//! bytes cannot be one: a backup is authenticated, so a failure here means a bug or a
//! type whose binary form differs from what the catalog promised, and the caller
//! reports it with table, column and row. Text forms are printed the way PostgreSQL's
//! output functions print them, so an exported value compares equal to `col::text`.
//! Pure code: no I/O; nothing here can allocate more than a small multiple of its input.

use std::fmt::Write;

use super::remap::ValueError;
use super::MAX_FIELD_LEN;

/// Days from 1970-01-01 (Unix, Arrow) to 2000-01-01 (PostgreSQL's epoch).
pub const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
pub const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// A cursor over one value's bytes.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], ValueError> {
        if self.buf.len() < n {
            return Err(ValueError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ValueError> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }

    pub fn u8(&mut self) -> Result<u8, ValueError> {
        Ok(self.take(1)?[0])
    }
    pub fn i16(&mut self) -> Result<i16, ValueError> {
        Ok(i16::from_be_bytes(self.array()?))
    }
    pub fn u16(&mut self) -> Result<u16, ValueError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    pub fn i32(&mut self) -> Result<i32, ValueError> {
        Ok(i32::from_be_bytes(self.array()?))
    }
    pub fn u32(&mut self) -> Result<u32, ValueError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    pub fn i64(&mut self) -> Result<i64, ValueError> {
        Ok(i64::from_be_bytes(self.array()?))
    }
    pub fn f64(&mut self) -> Result<f64, ValueError> {
        Ok(f64::from_be_bytes(self.array()?))
    }

    /// A length-prefixed item inside a value; `None` for -1 (NULL).
    pub fn item(&mut self) -> Result<Option<&'a [u8]>, ValueError> {
        let len = self.i32()?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 || len as usize > MAX_FIELD_LEN {
            return Err(ValueError::BadLength(len));
        }
        self.take(len as usize).map(Some)
    }

    /// The bytes up to (not including) the next NUL, which is consumed.
    pub fn cstring(&mut self) -> Result<&'a [u8], ValueError> {
        let end = self
            .buf
            .iter()
            .position(|&b| b == 0)
            .ok_or(ValueError::Truncated)?;
        let s = &self.buf[..end];
        self.buf = &self.buf[end + 1..];
        Ok(s)
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Every byte must have been read.
    pub fn end(&self) -> Result<(), ValueError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(ValueError::Trailing(n)),
        }
    }
}

/// Decodes a fixed-size value, refusing bytes left over.
fn exact<const N: usize>(v: &[u8]) -> Result<[u8; N], ValueError> {
    match v.len().cmp(&N) {
        std::cmp::Ordering::Less => Err(ValueError::Truncated),
        std::cmp::Ordering::Greater => Err(ValueError::Trailing(v.len() - N)),
        std::cmp::Ordering::Equal => Ok(v.try_into().expect("N bytes")),
    }
}

pub fn bool(v: &[u8]) -> Result<bool, ValueError> {
    Ok(exact::<1>(v)?[0] != 0)
}
pub fn i16(v: &[u8]) -> Result<i16, ValueError> {
    Ok(i16::from_be_bytes(exact(v)?))
}
pub fn i32(v: &[u8]) -> Result<i32, ValueError> {
    Ok(i32::from_be_bytes(exact(v)?))
}
pub fn i64(v: &[u8]) -> Result<i64, ValueError> {
    Ok(i64::from_be_bytes(exact(v)?))
}
pub fn u32(v: &[u8]) -> Result<u32, ValueError> {
    Ok(u32::from_be_bytes(exact(v)?))
}
pub fn f32(v: &[u8]) -> Result<f32, ValueError> {
    Ok(f32::from_be_bytes(exact(v)?))
}
pub fn f64(v: &[u8]) -> Result<f64, ValueError> {
    Ok(f64::from_be_bytes(exact(v)?))
}
pub fn uuid(v: &[u8]) -> Result<[u8; 16], ValueError> {
    exact(v)
}

/// Text-like values (text, varchar, name, xml, json, enum labels, citext): UTF-8,
/// because pgbunker's sessions use `client_encoding = UTF8`.
pub fn text(v: &[u8]) -> Result<&str, ValueError> {
    std::str::from_utf8(v).map_err(|_| ValueError::NotUtf8)
}

/// jsonb: a version byte (1), then the JSON text as `jsonb_out` prints it.
pub fn jsonb(v: &[u8]) -> Result<&str, ValueError> {
    match v.split_first() {
        Some((1, rest)) => text(rest),
        Some((&version, _)) => Err(ValueError::BadVersion(version)),
        None => Err(ValueError::Truncated),
    }
}

/// `"char"`: one byte, printed as `charout` does (high bytes as `\ooo`).
pub fn char_text(v: &[u8], out: &mut String) -> Result<(), ValueError> {
    match v {
        [] => Ok(()),
        [b] if b.is_ascii() => {
            out.push(*b as char);
            Ok(())
        }
        [b] => write!(out, "\\{b:03o}").map_err(|_| ValueError::Truncated),
        _ => Err(ValueError::Trailing(v.len() - 1)),
    }
}

/// A value that has no place on the number line or the calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    NaN,
    Infinity,
    NegInfinity,
    /// A finite value beyond what the export's types hold (a timestamp past year
    /// 294276 in microseconds since 1970, an interval past 2^63 nanoseconds).
    OutOfRange,
}

impl std::fmt::Display for Special {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Special::NaN => "NaN",
            Special::Infinity => "infinity",
            Special::NegInfinity => "-infinity",
            Special::OutOfRange => "beyond the range of a 64-bit count from 1970",
        })
    }
}

/// `date`: days since 1970-01-01, or ±infinity.
pub fn date(v: &[u8]) -> Result<Result<i32, Special>, ValueError> {
    Ok(match i32(v)? {
        i32::MAX => Err(Special::Infinity),
        i32::MIN => Err(Special::NegInfinity),
        // PostgreSQL dates stop at 5874897-12-31, far below an overflow here.
        d => Ok(d.checked_add(PG_EPOCH_DAYS).ok_or(ValueError::OutOfRange)?),
    })
}

/// `timestamp` / `timestamptz`: microseconds since 1970-01-01 (UTC for timestamptz),
/// or ±infinity.
pub fn timestamp(v: &[u8]) -> Result<Result<i64, Special>, ValueError> {
    Ok(match i64(v)? {
        i64::MAX => Err(Special::Infinity),
        i64::MIN => Err(Special::NegInfinity),
        t => t.checked_add(PG_EPOCH_MICROS).ok_or(Special::OutOfRange),
    })
}

/// `time`: microseconds since midnight.
pub fn time(v: &[u8]) -> Result<i64, ValueError> {
    i64(v)
}

/// `timetz` printed as `timetz_out` does: `HH:MM:SS[.ffffff]±HH[:MM[:SS]]`.
pub fn timetz_text(v: &[u8], out: &mut String) -> Result<(), ValueError> {
    let mut r = Reader::new(v);
    let micros = r.i64()?;
    // Stored as seconds west of Greenwich; printed as the offset east.
    let zone = r.i32()?;
    r.end()?;
    if !(0..=86_400_000_000).contains(&micros) {
        return Err(ValueError::OutOfRange);
    }
    write_time(micros, out);
    let east = -(zone as i64);
    let sign = if east < 0 { '-' } else { '+' };
    let a = east.unsigned_abs();
    let (h, m, s) = (a / 3600, a / 60 % 60, a % 60);
    let _ = write!(out, "{sign}{h:02}");
    if m != 0 || s != 0 {
        let _ = write!(out, ":{m:02}");
    }
    if s != 0 {
        let _ = write!(out, ":{s:02}");
    }
    Ok(())
}

/// `HH:MM:SS` and the fraction without trailing zeros, as PostgreSQL prints times.
fn write_time(micros: i64, out: &mut String) {
    let secs = micros / 1_000_000;
    let frac = micros % 1_000_000;
    let _ = write!(
        out,
        "{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    if frac != 0 {
        let digits = format!("{frac:06}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
}

/// `interval` in Arrow's (months, days, nanoseconds), or ±infinity (PostgreSQL 17).
pub fn interval(v: &[u8]) -> Result<Result<(i32, i32, i64), Special>, ValueError> {
    let mut r = Reader::new(v);
    let micros = r.i64()?;
    let days = r.i32()?;
    let months = r.i32()?;
    r.end()?;
    match (micros, days, months) {
        (i64::MAX, i32::MAX, i32::MAX) => return Ok(Err(Special::Infinity)),
        (i64::MIN, i32::MIN, i32::MIN) => return Ok(Err(Special::NegInfinity)),
        _ => {}
    }
    Ok(micros
        .checked_mul(1000)
        .map(|nanos| (months, days, nanos))
        .ok_or(Special::OutOfRange))
}

/// A decoded `numeric`: base-10000 digits with a weight, or a special value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Numeric<'a> {
    pub negative: bool,
    /// The power of 10000 of the first digit.
    pub weight: i16,
    /// Decimal digits after the point, as PostgreSQL prints them.
    pub dscale: u16,
    digits: &'a [u8],
}

const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;
/// `NUMERIC_MAX_DISPLAY_SCALE`... and the largest dscale the on-disk format allows.
const NUMERIC_MAX_DSCALE: u16 = 0x3FFF;

pub fn numeric(v: &[u8]) -> Result<Result<Numeric<'_>, Special>, ValueError> {
    let mut r = Reader::new(v);
    // `numeric_recv` reads the digit count as unsigned: the largest numerics have
    // more than 32767 base-10000 digits.
    let ndigits = r.u16()?;
    let weight = r.i16()?;
    let sign = r.u16()?;
    let dscale = r.u16()?;
    if dscale > NUMERIC_MAX_DSCALE {
        return Err(ValueError::BadLength(dscale as i32));
    }
    let digits = r.take(ndigits as usize * 2)?;
    r.end()?;
    if digits
        .chunks_exact(2)
        .any(|d| u16::from_be_bytes([d[0], d[1]]) >= 10_000)
    {
        return Err(ValueError::OutOfRange);
    }
    Ok(match sign {
        NUMERIC_POS | NUMERIC_NEG => Ok(Numeric {
            negative: sign == NUMERIC_NEG,
            weight,
            dscale,
            digits,
        }),
        NUMERIC_NAN => Err(Special::NaN),
        NUMERIC_PINF => Err(Special::Infinity),
        NUMERIC_NINF => Err(Special::NegInfinity),
        _ => return Err(ValueError::BadVersion((sign >> 8) as u8)),
    })
}

impl Numeric<'_> {
    fn digit(&self, i: i32) -> u16 {
        if i < 0 || i as usize >= self.digits.len() / 2 {
            return 0;
        }
        let i = i as usize * 2;
        u16::from_be_bytes([self.digits[i], self.digits[i + 1]])
    }

    /// The value as `numeric_out` prints it.
    pub fn write_text(&self, out: &mut String) {
        if self.negative && self.digits.iter().any(|&b| b != 0) {
            out.push('-');
        }
        let weight = self.weight as i32;
        if weight < 0 {
            out.push('0');
        } else {
            for i in 0..=weight {
                let d = self.digit(i);
                if i == 0 {
                    let _ = write!(out, "{d}");
                } else {
                    let _ = write!(out, "{d:04}");
                }
            }
        }
        if self.dscale > 0 {
            out.push('.');
            let mut left = self.dscale as usize;
            let mut i = weight + 1;
            while left > 0 {
                let four = format!("{:04}", self.digit(i));
                let n = left.min(4);
                out.push_str(&four[..n]);
                left -= n;
                i += 1;
            }
        }
    }

    /// The decimal digits of the value times 10^`scale` (most significant first,
    /// without leading zeros), or `None` when that is not an integer: the value has
    /// non-zero digits beyond `scale`.
    pub fn scaled_digits(&self, scale: u32, out: &mut Vec<u8>) -> Option<()> {
        out.clear();
        let weight = self.weight as i32;
        let ndigits = (self.digits.len() / 2) as i32;
        let scale = scale as i32;
        // The decimal digit at exponent `e` (10^e) lives in base-10000 digit
        // `weight - floor(e / 4)`, at position `e mod 4` inside it.
        let at = |e: i32| -> u8 {
            let d = self.digit(weight - e.div_euclid(4));
            (d / 10u16.pow(e.rem_euclid(4) as u32) % 10) as u8
        };
        let top = if weight >= 0 { 4 * weight + 3 } else { 0 };
        let mut e = top;
        while e >= -scale {
            let digit = at(e);
            if !(out.is_empty() && digit == 0) {
                out.push(digit);
                if out.len() > MAX_SCALED_DIGITS {
                    return Some(());
                }
            }
            e -= 1;
        }
        // Below 10^-scale every digit must be zero for the scaled value to be exact.
        let lowest = 4 * (weight - ndigits + 1);
        (lowest..-scale).all(|e| at(e) == 0).then_some(())
    }
}

/// More digits than any Arrow decimal holds: [`Numeric::scaled_digits`] stops there.
pub const MAX_SCALED_DIGITS: usize = 80;

/// `inet` / `cidr` as `inet_out` / `cidr_out` print them.
pub fn inet_text(v: &[u8], out: &mut String) -> Result<(), ValueError> {
    let mut r = Reader::new(v);
    let family = r.u8()?;
    let bits = r.u8()?;
    let is_cidr = r.u8()? != 0;
    let n = r.u8()? as usize;
    let addr = r.take(n)?;
    r.end()?;
    let max = match (family, n) {
        (2, 4) => 32,
        (3, 16) => 128,
        _ => return Err(ValueError::BadVersion(family)),
    };
    if bits > max {
        return Err(ValueError::OutOfRange);
    }
    if family == 2 {
        let _ = write!(out, "{}.{}.{}.{}", addr[0], addr[1], addr[2], addr[3]);
    } else {
        write_ipv6(addr, out);
    }
    if is_cidr || bits != max {
        let _ = write!(out, "/{bits}");
    }
    Ok(())
}

/// IPv6 the way PostgreSQL's `inet_net_ntop` writes it: the longest run of two or
/// more zero groups as `::`, and an embedded IPv4 address for `::a.b.c.d` and
/// `::ffff:a.b.c.d`.
fn write_ipv6(addr: &[u8], out: &mut String) {
    let words: Vec<u16> = addr
        .chunks_exact(2)
        .map(|w| u16::from_be_bytes([w[0], w[1]]))
        .collect();
    let (mut best, mut cur): ((i32, i32), (i32, i32)) = ((-1, 0), (-1, 0));
    for (i, &w) in words.iter().enumerate() {
        if w == 0 {
            if cur.0 == -1 {
                cur = (i as i32, 1);
            } else {
                cur.1 += 1;
            }
        } else if cur.0 != -1 {
            if best.0 == -1 || cur.1 > best.1 {
                best = cur;
            }
            cur = (-1, 0);
        }
    }
    if cur.0 != -1 && (best.0 == -1 || cur.1 > best.1) {
        best = cur;
    }
    if best.0 != -1 && best.1 < 2 {
        best = (-1, 0);
    }
    let mut i = 0i32;
    while i < 8 {
        if best.0 != -1 && i >= best.0 && i < best.0 + best.1 {
            if i == best.0 {
                out.push(':');
            }
            i += 1;
            continue;
        }
        if i != 0 {
            out.push(':');
        }
        if i == 6 && best.0 == 0 && (best.1 == 6 || (best.1 == 5 && words[5] == 0xffff)) {
            let _ = write!(out, "{}.{}.{}.{}", addr[12], addr[13], addr[14], addr[15]);
            return;
        }
        let _ = write!(out, "{:x}", words[i as usize]);
        i += 1;
    }
    if best.0 != -1 && best.0 + best.1 == 8 {
        out.push(':');
    }
}

/// `macaddr` (6 bytes) / `macaddr8` (8 bytes): lowercase hex pairs joined by `:`.
pub fn mac_text(v: &[u8], len: usize, out: &mut String) -> Result<(), ValueError> {
    if v.len() != len {
        return Err(if v.len() < len {
            ValueError::Truncated
        } else {
            ValueError::Trailing(v.len() - len)
        });
    }
    for (i, b) in v.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{b:02x}");
    }
    Ok(())
}

/// `bit` / `varbit`: the bits as `0` and `1`.
pub fn bits_text(v: &[u8], out: &mut String) -> Result<(), ValueError> {
    let mut r = Reader::new(v);
    let nbits = r.i32()?;
    if nbits < 0 {
        return Err(ValueError::BadLength(nbits));
    }
    let bytes = r.take((nbits as usize).div_ceil(8))?;
    r.end()?;
    for i in 0..nbits as usize {
        out.push(if bytes[i / 8] & (0x80 >> (i % 8)) != 0 {
            '1'
        } else {
            '0'
        });
    }
    Ok(())
}

/// `pg_lsn` as `16/B374D848`.
pub fn lsn_text(v: &[u8], out: &mut String) -> Result<(), ValueError> {
    let lsn = i64(v)? as u64;
    let _ = write!(out, "{:X}/{:X}", lsn >> 32, lsn & 0xffff_ffff);
    Ok(())
}

/// `tsvector` as `tsvectorout` prints it: `'lexeme':1A,2 'other'`.
pub fn tsvector_text(v: &[u8], out: &mut String) -> Result<(), ValueError> {
    let mut r = Reader::new(v);
    let count = r.i32()?;
    if count < 0 {
        return Err(ValueError::BadLength(count));
    }
    for i in 0..count {
        if r.is_empty() {
            return Err(ValueError::Truncated);
        }
        if i > 0 {
            out.push(' ');
        }
        let lexeme = text(r.cstring()?)?;
        out.push('\'');
        for c in lexeme.chars() {
            if c == '\'' || c == '\\' {
                out.push(c);
            }
            out.push(c);
        }
        out.push('\'');
        let npos = r.u16()?;
        for p in 0..npos {
            let wp = r.u16()?;
            out.push(if p == 0 { ':' } else { ',' });
            let _ = write!(out, "{}", wp & 0x3fff);
            match wp >> 14 {
                3 => out.push('A'),
                2 => out.push('B'),
                1 => out.push('C'),
                _ => {}
            }
        }
    }
    r.end()
}

/// The framing of an array value; the elements follow in the reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrayHeader {
    pub elem_oid: u32,
    /// Elements per dimension (empty for an empty array).
    pub dims: Vec<i32>,
}

impl ArrayHeader {
    pub fn len(&self) -> usize {
        // A zero dimension makes the array empty whatever the others say; without
        // one, `array_header` has bounded the product (multiplying large dimensions
        // before a zero one would overflow).
        if self.dims.is_empty() || self.dims.contains(&0) {
            0
        } else {
            self.dims.iter().map(|&d| d as usize).product()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// PostgreSQL arrays have at most 6 dimensions and `MaxArraySize` elements.
const MAX_DIMS: i32 = 6;
const MAX_ARRAY_ELEMS: usize = 0x3FFF_FFFF / 4;

/// Reads an array's header; the elements (`item`s) follow.
pub fn array_header(r: &mut Reader<'_>) -> Result<ArrayHeader, ValueError> {
    let ndim = r.i32()?;
    let flags = r.i32()?;
    if !(0..=MAX_DIMS).contains(&ndim) || !(0..=1).contains(&flags) {
        return Err(ValueError::BadArrayHeader { ndim, flags });
    }
    let elem_oid = r.u32()?;
    let mut dims = Vec::with_capacity(ndim as usize);
    let mut total = 1usize;
    for _ in 0..ndim {
        let len = r.i32()?;
        let _lbound = r.i32()?;
        if len < 0 {
            return Err(ValueError::BadDimension(len));
        }
        total = total.saturating_mul(len as usize);
        dims.push(len);
    }
    if total > MAX_ARRAY_ELEMS {
        return Err(ValueError::BadDimension(i32::MAX));
    }
    Ok(ArrayHeader { elem_oid, dims })
}

/// Range flags (`rangetypes.h`).
const RANGE_EMPTY: u8 = 0x01;
const RANGE_LB_INC: u8 = 0x02;
const RANGE_UB_INC: u8 = 0x04;
const RANGE_LB_INF: u8 = 0x08;
const RANGE_UB_INF: u8 = 0x10;

/// A decoded range: bounds in the subtype's binary form, `None` when unbounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range<'a> {
    pub empty: bool,
    pub lower: Option<&'a [u8]>,
    pub upper: Option<&'a [u8]>,
    pub lower_inclusive: bool,
    pub upper_inclusive: bool,
}

pub fn range(v: &[u8]) -> Result<Range<'_>, ValueError> {
    let mut r = Reader::new(v);
    let flags = r.u8()?;
    let empty = flags & RANGE_EMPTY != 0;
    fn bound<'a>(r: &mut Reader<'a>, absent: bool) -> Result<Option<&'a [u8]>, ValueError> {
        if absent {
            return Ok(None);
        }
        r.item()?.map(Some).ok_or(ValueError::BadLength(-1))
    }
    let lower = bound(&mut r, empty || flags & RANGE_LB_INF != 0)?;
    let upper = bound(&mut r, empty || flags & RANGE_UB_INF != 0)?;
    r.end()?;
    Ok(Range {
        empty,
        lower,
        upper,
        lower_inclusive: !empty && lower.is_some() && flags & RANGE_LB_INC != 0,
        upper_inclusive: !empty && upper.is_some() && flags & RANGE_UB_INC != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_bytes(ndigits: &[u16], weight: i16, sign: u16, dscale: u16) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend((ndigits.len() as i16).to_be_bytes());
        v.extend(weight.to_be_bytes());
        v.extend(sign.to_be_bytes());
        v.extend(dscale.to_be_bytes());
        for d in ndigits {
            v.extend(d.to_be_bytes());
        }
        v
    }

    fn num_text(b: &[u8]) -> String {
        let mut s = String::new();
        numeric(b).unwrap().unwrap().write_text(&mut s);
        s
    }

    fn scaled(b: &[u8], scale: u32) -> Option<String> {
        let mut out = Vec::new();
        numeric(b)
            .unwrap()
            .unwrap()
            .scaled_digits(scale, &mut out)?;
        Some(out.iter().map(|d| (b'0' + d) as char).collect())
    }

    #[test]
    fn numeric_prints_like_numeric_out() {
        // 12345.678 = [1, 2345, 6780], weight 1, dscale 3
        let b = numeric_bytes(&[1, 2345, 6780], 1, NUMERIC_POS, 3);
        assert_eq!(num_text(&b), "12345.678");
        assert_eq!(scaled(&b, 3).as_deref(), Some("12345678"));
        assert_eq!(scaled(&b, 5).as_deref(), Some("1234567800"));
        assert_eq!(scaled(&b, 2), None);
        // -0.0012 = [12], weight -1, dscale 4
        let b = numeric_bytes(&[12], -1, NUMERIC_NEG, 4);
        assert_eq!(num_text(&b), "-0.0012");
        assert_eq!(scaled(&b, 4).as_deref(), Some("12"));
        assert_eq!(scaled(&b, 3), None);
        // 1e20 = [1], weight 5, dscale 0
        let b = numeric_bytes(&[1], 5, NUMERIC_POS, 0);
        assert_eq!(num_text(&b), "100000000000000000000");
        assert_eq!(scaled(&b, 0).as_deref(), Some("100000000000000000000"));
        // zero with scale
        let b = numeric_bytes(&[], 0, NUMERIC_POS, 2);
        assert_eq!(num_text(&b), "0.00");
        assert_eq!(scaled(&b, 2).as_deref(), Some(""));
        assert_eq!(
            numeric(&numeric_bytes(&[], 0, NUMERIC_NAN, 0)).unwrap(),
            Err(Special::NaN)
        );
        assert!(numeric(&numeric_bytes(&[10_000], 0, NUMERIC_POS, 0)).is_err());
        // More than 32767 digits: the count is unsigned.
        let many = vec![9999u16; 36_864];
        let b = numeric_bytes(&many, 32_767, NUMERIC_POS, 0);
        assert_eq!(num_text(&b).len(), 4 * 32_768);
    }

    #[test]
    fn times_and_dates_shift_to_the_unix_epoch() {
        assert_eq!(date(&0i32.to_be_bytes()).unwrap(), Ok(10_957));
        assert_eq!(
            date(&i32::MAX.to_be_bytes()).unwrap(),
            Err(Special::Infinity)
        );
        assert_eq!(
            timestamp(&i64::MIN.to_be_bytes()).unwrap(),
            Err(Special::NegInfinity)
        );
        let mut tz = 45_296_500_000i64.to_be_bytes().to_vec();
        tz.extend((-19_800i32).to_be_bytes());
        let mut s = String::new();
        timetz_text(&tz, &mut s).unwrap();
        assert_eq!(s, "12:34:56.5+05:30");
    }

    #[test]
    fn network_addresses_print_like_postgres() {
        let mut s = String::new();
        inet_text(&[2, 32, 0, 4, 10, 0, 0, 1], &mut s).unwrap();
        assert_eq!(s, "10.0.0.1");
        s.clear();
        inet_text(&[2, 24, 1, 4, 10, 0, 0, 0], &mut s).unwrap();
        assert_eq!(s, "10.0.0.0/24");
        s.clear();
        let mut v6 = vec![3, 128, 0, 16];
        v6.extend([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        inet_text(&v6, &mut s).unwrap();
        assert_eq!(s, "2001:db8::1");
        s.clear();
        let mut mapped = vec![3, 128, 0, 16];
        mapped.extend([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4]);
        inet_text(&mapped, &mut s).unwrap();
        assert_eq!(s, "::ffff:1.2.3.4");
    }

    #[test]
    fn tsvector_and_bits_print_like_postgres() {
        let mut v = 2i32.to_be_bytes().to_vec();
        v.extend(b"it's\0");
        v.extend(2u16.to_be_bytes());
        v.extend((1u16 | 3 << 14).to_be_bytes());
        v.extend(2u16.to_be_bytes());
        v.extend(b"b\0");
        v.extend(0u16.to_be_bytes());
        let mut s = String::new();
        tsvector_text(&v, &mut s).unwrap();
        assert_eq!(s, "'it''s':1A,2 'b'");
        s.clear();
        let mut b = 10i32.to_be_bytes().to_vec();
        b.extend([0b1010_0000, 0b0100_0000]);
        bits_text(&b, &mut s).unwrap();
        assert_eq!(s, "1010000001");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(numeric(&[0xff, 0xff]).is_err());
        assert!(range(&[0x00, 0, 0, 0, 9]).is_err());
        let mut r = Reader::new(&[0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 23]);
        assert!(array_header(&mut r).is_err());
        assert!(tsvector_text(&[0, 0, 0, 1, b'a'], &mut String::new()).is_err());
    }
}
