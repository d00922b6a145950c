//! The transforms a rule can name, and what each does to one binary COPY value.
//!
//! Every transform is a function of the value and the masking key alone (plus, for
//! `shift_date`, the row's entity), never of the table or the column: the same value
//! masked in `patients` and in any table referencing it comes out the same, so joins
//! and foreign keys still hold.

use serde::{Deserialize, Serialize};

use super::fake::{self, FakeKind};
use super::prp::Prp;
use crate::codec::SecretKey;
use crate::pgcopy::remap::ValueError;
use crate::pgcopy::value;

/// What a rule does to the columns it names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "transform", rename_all = "snake_case", deny_unknown_fields)]
pub enum Transform {
    /// Carried as it is: says the column was looked at and is not an identifier.
    Keep,
    Null,
    /// A fixed text (`[redacted]` unless `text` says otherwise); JSON gets it as a
    /// JSON string, bytea an empty value.
    Redact {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
    /// A keyed digest of the same type: text of the same length, a non-negative
    /// integer, a version-4 uuid, 32 bytes of bytea.
    Hash,
    Fake {
        kind: FakeKind,
    },
    /// Moves dates and times by a whole number of days, at most `max_days` either way,
    /// the same for every row whose `by` column holds the same value: the intervals
    /// between one patient's events survive.
    ShiftDate {
        by: String,
        #[serde(default = "default_max_days")]
        max_days: u32,
    },
    /// January 1st of the same year (midnight for timestamps).
    YearOnly,
    Generalize {
        kind: Generalization,
    },
    /// A keyed permutation that keeps the format: text keeps its length and which
    /// positions hold ASCII digits, ASCII letters (and their case) or anything else
    /// (kept as is); integers keep their sign and number of digits; uuids stay uuids.
    /// Distinct values stay distinct, also after `lower()`: keys and unique columns.
    FormatPreserving,
}

fn default_max_days() -> u32 {
    365
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Generalization {
    /// The first three digits of a ZIP code, the rest starred: `021**`.
    Zip3,
    /// Ages over 89 become 90 (`90+` in text), as HIPAA Safe Harbor asks.
    Age,
}

/// How a transform treats distinct values, for unique constraints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Injective {
    Always,
    /// Distinct within the rows that share the value of this column.
    WithinEntity(String),
    /// Only NULLs come out, which never collide.
    NullsOnly,
    No,
}

impl Transform {
    pub fn name(&self) -> &'static str {
        match self {
            Transform::Keep => "keep",
            Transform::Null => "null",
            Transform::Redact { .. } => "redact",
            Transform::Hash => "hash",
            Transform::Fake { .. } => "fake",
            Transform::ShiftDate { .. } => "shift_date",
            Transform::YearOnly => "year_only",
            Transform::Generalize { .. } => "generalize",
            Transform::FormatPreserving => "format_preserving",
        }
    }

    /// The transform and its parameters, as a rules file spells them.
    pub fn describe(&self) -> String {
        match self {
            Transform::Fake { kind } => format!("fake {}", kind.name()),
            Transform::ShiftDate { by, max_days } => {
                format!("shift_date by {by} (up to {max_days} days)")
            }
            Transform::Generalize { kind } => format!(
                "generalize {}",
                match kind {
                    Generalization::Zip3 => "zip3",
                    Generalization::Age => "age",
                }
            ),
            other => other.name().into(),
        }
    }

    pub fn injective(&self) -> Injective {
        match self {
            Transform::Keep | Transform::FormatPreserving => Injective::Always,
            Transform::ShiftDate { by, .. } => Injective::WithinEntity(by.clone()),
            Transform::Null => Injective::NullsOnly,
            _ => Injective::No,
        }
    }

    /// Whether the transform can write a value of this kind.
    pub fn applies_to(&self, kind: &ValueKind) -> bool {
        use ValueKind as K;
        match self {
            Transform::Keep | Transform::Null => true,
            Transform::Redact { .. } => {
                matches!(kind, K::Text { .. } | K::Json | K::Jsonb | K::Bytea)
            }
            Transform::Hash => matches!(kind, K::Text { .. } | K::Int(_) | K::Uuid | K::Bytea),
            Transform::Fake { .. } => matches!(kind, K::Text { .. }),
            Transform::ShiftDate { .. } | Transform::YearOnly => {
                matches!(kind, K::Date | K::Timestamp)
            }
            Transform::Generalize { kind: g } => match g {
                Generalization::Zip3 => matches!(kind, K::Text { .. }),
                Generalization::Age => matches!(kind, K::Text { .. } | K::Int(_)),
            },
            Transform::FormatPreserving => matches!(kind, K::Text { .. } | K::Int(_) | K::Uuid),
        }
    }
}

/// The binary form a column's values have, as far as masking goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueKind {
    /// text, varchar, bpchar, name: UTF-8. `max_chars` from `varchar(n)`/`char(n)`;
    /// `padded` for `char(n)`, whose values come with trailing blanks.
    Text {
        max_chars: Option<usize>,
        padded: bool,
    },
    Json,
    Jsonb,
    Bytea,
    /// Two, four or eight bytes.
    Int(u8),
    Date,
    /// timestamp and timestamptz: microseconds.
    Timestamp,
    Uuid,
    /// Anything else: only `keep` and `null`.
    Other,
}

impl ValueKind {
    /// The kind of a built-in type by OID (domains resolved by the caller), with the
    /// type as the catalog prints it for the length limit.
    pub fn of(type_oid: u32, type_sql: &str) -> ValueKind {
        let limit = || {
            let open = type_sql.rfind('(')?;
            type_sql[open + 1..].strip_suffix(')')?.parse().ok()
        };
        match type_oid {
            25 | 19 => ValueKind::Text {
                max_chars: None,
                padded: false,
            },
            1043 => ValueKind::Text {
                max_chars: limit(),
                padded: false,
            },
            1042 => ValueKind::Text {
                max_chars: limit().or(Some(1)),
                padded: true,
            },
            114 => ValueKind::Json,
            3802 => ValueKind::Jsonb,
            17 => ValueKind::Bytea,
            21 => ValueKind::Int(2),
            23 => ValueKind::Int(4),
            20 => ValueKind::Int(8),
            1082 => ValueKind::Date,
            1114 | 1184 => ValueKind::Timestamp,
            2950 => ValueKind::Uuid,
            _ => ValueKind::Other,
        }
    }

    pub fn is_text(&self) -> bool {
        matches!(self, ValueKind::Text { .. })
    }

    pub fn is_date(&self) -> bool {
        matches!(self, ValueKind::Date | ValueKind::Timestamp)
    }
}

/// The keys each transform draws on, derived from the masking key, so that no two
/// transforms (and nothing else pgbunker does) share one.
pub struct Keys {
    hash: [u8; 32],
    fake: [u8; 32],
    shift: [u8; 32],
    prp: Prp,
}

impl Keys {
    pub fn derive(key: &SecretKey) -> Keys {
        let k = |what: &str| blake3::derive_key(&format!("pgbunker mask v1 {what}"), key.expose());
        Keys {
            hash: k("hash"),
            fake: k("fake"),
            shift: k("shift_date"),
            prp: Prp::new(k("format_preserving")),
        }
    }

    fn digest(&self, key: &[u8; 32], domain: &[u8], v: &[u8], out: &mut [u8]) {
        let mut h = blake3::Hasher::new_keyed(key);
        h.update(&(domain.len() as u32).to_le_bytes());
        h.update(domain);
        h.update(v);
        h.finalize_xof().fill(out);
    }

    /// The days rows of entity `entity` move by: never 0, so no date stays put.
    pub fn shift_days(&self, entity: &[u8], max_days: u32) -> i64 {
        let mut b = [0u8; 8];
        self.digest(&self.shift, &max_days.to_le_bytes(), entity, &mut b);
        let h = u64::from_le_bytes(b);
        let days = 1 + (h >> 1) % u64::from(max_days.max(1));
        if h & 1 == 0 {
            days as i64
        } else {
            -(days as i64)
        }
    }
}

/// What identifies a row's entity for `shift_date`: integers by value, whatever their
/// width (a key and the foreign keys pointing at it may be int4 and int8), anything
/// else by its bytes. `None` (NULL) is an entity of its own.
pub fn entity_bytes(kind: &ValueKind, v: Option<&[u8]>) -> Result<Vec<u8>, ValueError> {
    Ok(match (kind, v) {
        (_, None) => Vec::new(),
        (ValueKind::Int(_), Some(v)) => int_value(v)?.to_string().into_bytes(),
        (_, Some(v)) => {
            let mut out = vec![1];
            out.extend_from_slice(v);
            out
        }
    })
}

fn int_value(v: &[u8]) -> Result<i64, ValueError> {
    match v.len() {
        2 => value::i16(v).map(i64::from),
        4 => value::i32(v).map(i64::from),
        _ => value::i64(v),
    }
}

fn int_bytes(width: u8, x: i64) -> Vec<u8> {
    match width {
        2 => (x as i16).to_be_bytes().to_vec(),
        4 => (x as i32).to_be_bytes().to_vec(),
        _ => x.to_be_bytes().to_vec(),
    }
}

fn int_range(width: u8) -> (i64, i64) {
    match width {
        2 => (i16::MIN.into(), i16::MAX.into()),
        4 => (i32::MIN.into(), i32::MAX.into()),
        _ => (i64::MIN, i64::MAX),
    }
}

/// Cuts text to the column's length limit, in characters as PostgreSQL counts them.
fn fit(mut s: String, kind: &ValueKind) -> Vec<u8> {
    if let ValueKind::Text {
        max_chars: Some(n), ..
    } = kind
    {
        if let Some((at, _)) = s.char_indices().nth(*n) {
            s.truncate(at);
        }
    }
    s.into_bytes()
}

const REDACTED: &str = "[redacted]";
const HASH_ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
/// Days from PostgreSQL's epoch (2000-01-01) back to the Julian day count's.
const PG_EPOCH_JULIAN: i32 = 2_451_545;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// What besides the value a transform may need.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// The row's entity for `shift_date`, from [`entity_bytes`].
    pub entity: &'a [u8],
    /// For integers under `format_preserving`: the width of the narrowest column of
    /// the foreign-key group the column is in, so a value masks alike in an `int4` key
    /// and the `int8` columns referencing it.
    pub group_width: Option<u8>,
}

/// The masked value of `v` (`None`: NULL). The caller has checked that the transform
/// [`applies_to`](Transform::applies_to) the kind.
pub fn apply(
    t: &Transform,
    kind: &ValueKind,
    v: &[u8],
    cx: &Context<'_>,
    keys: &Keys,
) -> Result<Option<Vec<u8>>, ValueError> {
    use ValueKind as K;
    if *t == Transform::Keep {
        return Ok(Some(v.to_vec()));
    }
    // `char(n)` values come padded; the same text in a `varchar` key masks alike, and
    // the server pads what comes back.
    let v = match kind {
        K::Text { padded: true, .. } => {
            let end = v.iter().rposition(|b| *b != b' ').map_or(0, |i| i + 1);
            &v[..end]
        }
        _ => v,
    };
    Ok(Some(match (t, kind) {
        (Transform::Keep, _) => unreachable!("returned above"),
        (Transform::Null, _) => return Ok(None),
        (Transform::Redact { text }, _) => {
            let text = text.as_deref().unwrap_or(REDACTED);
            match kind {
                K::Json => serde_json::Value::from(text).to_string().into_bytes(),
                K::Jsonb => {
                    let mut out = vec![1];
                    out.extend(serde_json::Value::from(text).to_string().into_bytes());
                    out
                }
                K::Bytea => Vec::new(),
                _ => fit(text.to_string(), kind),
            }
        }
        (Transform::Hash, K::Text { .. }) => {
            let n = value::text(v)?.chars().count();
            let mut raw = vec![0u8; n];
            keys.digest(&keys.hash, b"text", v, &mut raw);
            raw.iter()
                .map(|b| HASH_ALPHABET[*b as usize % HASH_ALPHABET.len()])
                .collect()
        }
        (Transform::Hash, K::Int(w)) => {
            let mut b = [0u8; 8];
            keys.digest(
                &keys.hash,
                b"int",
                int_value(v)?.to_string().as_bytes(),
                &mut b,
            );
            let max = int_range(*w).1 as u64;
            int_bytes(*w, (u64::from_le_bytes(b) % (max + 1)) as i64)
        }
        (Transform::Hash, K::Uuid) => {
            let mut b = [0u8; 16];
            keys.digest(&keys.hash, b"uuid", &value::uuid(v)?, &mut b);
            b[6] = (b[6] & 0x0f) | 0x40;
            b[8] = (b[8] & 0x3f) | 0x80;
            b.to_vec()
        }
        (Transform::Hash, _) => {
            let mut b = vec![0u8; 32];
            keys.digest(&keys.hash, b"bytes", v, &mut b);
            b
        }
        (Transform::Fake { kind: fk }, _) => {
            let s = value::text(v)?;
            let mut seed = [0u8; 16];
            keys.digest(&keys.fake, fk.name().as_bytes(), s.as_bytes(), &mut seed);
            fit(fake::make(*fk, seed), kind)
        }
        (Transform::ShiftDate { max_days, .. }, _) => {
            let days = keys.shift_days(cx.entity, *max_days);
            match kind {
                K::Date => match value::date(v)? {
                    Ok(d) => shifted_date(d, days)?.to_be_bytes().to_vec(),
                    Err(_) => v.to_vec(),
                },
                _ => match value::timestamp(v)? {
                    Ok(us) => shifted_timestamp(us - value::PG_EPOCH_MICROS, days)?
                        .to_be_bytes()
                        .to_vec(),
                    Err(_) => v.to_vec(),
                },
            }
        }
        (Transform::YearOnly, K::Date) => match value::date(v)? {
            Ok(d) => (january_first(d - value::PG_EPOCH_DAYS)?)
                .to_be_bytes()
                .to_vec(),
            Err(_) => v.to_vec(),
        },
        (Transform::YearOnly, _) => match value::timestamp(v)? {
            Ok(us) => {
                let days = (us - value::PG_EPOCH_MICROS).div_euclid(MICROS_PER_DAY);
                let first =
                    january_first(i32::try_from(days).map_err(|_| ValueError::OutOfRange)?)?;
                (i64::from(first) * MICROS_PER_DAY).to_be_bytes().to_vec()
            }
            Err(_) => v.to_vec(),
        },
        (Transform::Generalize { kind: g }, _) => generalize(*g, kind, v)?,
        (Transform::FormatPreserving, K::Text { .. }) => {
            format_preserving_text(&keys.prp, value::text(v)?).into_bytes()
        }
        (Transform::FormatPreserving, K::Int(w)) => int_bytes(
            *w,
            format_preserving_int(&keys.prp, int_value(v)?, *w, cx.group_width.unwrap_or(*w)),
        ),
        (Transform::FormatPreserving, _) => {
            let x = u128::from_be_bytes(value::uuid(v)?);
            keys.prp
                .permute(b"uuid", 16, 32, None, x)
                .to_be_bytes()
                .to_vec()
        }
    }))
}

/// The dates PostgreSQL takes, in days since 2000-01-01: 4713-01-01 BC to
/// 5874897-12-31.
const DATE_RANGE: std::ops::RangeInclusive<i64> = -2_451_545..=2_145_031_948;
/// The timestamps it takes, in microseconds since 2000-01-01: 4714-11-24 BC to
/// 294276-12-31 23:59:59.999999.
const TIMESTAMP_RANGE: std::ops::RangeInclusive<i64> =
    -211_813_488_000_000_000..=9_223_371_331_199_999_999;

/// `d` (days since 1970-01-01, as `value::date` gives it) moved by `days`, in the
/// wire's days since 2000-01-01; a date moved out of PostgreSQL's range is an error
/// naming the column, not a failed table.
fn shifted_date(d: i32, days: i64) -> Result<i32, ValueError> {
    let moved = i64::from(d - value::PG_EPOCH_DAYS) + days;
    if !DATE_RANGE.contains(&moved) {
        return Err(ValueError::OutOfRange);
    }
    Ok(moved as i32)
}

/// `us` (microseconds since 2000-01-01) moved by `days`.
fn shifted_timestamp(us: i64, days: i64) -> Result<i64, ValueError> {
    days.checked_mul(MICROS_PER_DAY)
        .and_then(|d| us.checked_add(d))
        .filter(|t| TIMESTAMP_RANGE.contains(t))
        .ok_or(ValueError::OutOfRange)
}

/// January 1st of the year of `d`, both in days since 2000-01-01.
fn january_first(d: i32) -> Result<i32, ValueError> {
    let date =
        time::Date::from_julian_day(d + PG_EPOCH_JULIAN).map_err(|_| ValueError::OutOfRange)?;
    let first = time::Date::from_calendar_date(date.year(), time::Month::January, 1)
        .map_err(|_| ValueError::OutOfRange)?;
    Ok(first.to_julian_day() - PG_EPOCH_JULIAN)
}

fn generalize(g: Generalization, kind: &ValueKind, v: &[u8]) -> Result<Vec<u8>, ValueError> {
    Ok(match (g, kind) {
        (Generalization::Zip3, _) => {
            let s = value::text(v)?;
            let head: String = s.chars().take(3).collect();
            let out = if head.len() == 3 && head.bytes().all(|b| b.is_ascii_digit()) {
                format!("{head}**")
            } else {
                "*****".into()
            };
            fit(out, kind)
        }
        (Generalization::Age, ValueKind::Int(w)) => int_bytes(*w, int_value(v)?.min(90)),
        (Generalization::Age, _) => {
            let s = value::text(v)?;
            match s.trim().parse::<i64>() {
                Ok(age) if age > 89 => fit("90+".into(), kind),
                Ok(_) => v.to_vec(),
                // Not a number: nothing to generalize it to, and it may say anything.
                Err(_) => fit("*".into(), kind),
            }
        }
    })
}

/// Which class a character's position holds, for [`format_preserving_text`]: its
/// characters are permuted within their class, and anything else stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    /// ASCII digits.
    Digit,
    /// ASCII letters, case-folded (each position keeps its case).
    Letter,
    /// Other letters and digits, within their 256 code points (`U+0400`–`U+04FF`, …;
    /// Latin-1's `U+00C0`–`U+00FF` alone): names in any script change, and stay in it.
    Page(u32),
}

impl Class {
    fn of(c: char) -> Option<Class> {
        let cp = c as u32;
        if c.is_ascii_digit() {
            Some(Class::Digit)
        } else if c.is_ascii_alphabetic() {
            Some(Class::Letter)
        } else if c.is_alphanumeric() && cp >= 0xC0 {
            Some(Class::Page(cp >> 8))
        } else {
            None
        }
    }

    /// The first code point of the class and how many it has.
    fn span(self) -> (u32, u32) {
        match self {
            Class::Digit => ('0' as u32, 10),
            Class::Letter => ('a' as u32, 26),
            Class::Page(0) => (0xC0, 0x40),
            Class::Page(p) => (p << 8, 0x100),
        }
    }

    /// Its place in the shape: bytes no UTF-8 text holds, then the page.
    fn tag(self) -> Vec<u8> {
        match self {
            Class::Digit => vec![0xFE, 0],
            Class::Letter => vec![0xFE, 1],
            Class::Page(p) => [&[0xFF][..], &p.to_be_bytes()[1..]].concat(),
        }
    }
}

/// Permutes the characters of `s` within their classes ([`Class`]); other characters
/// stay. The tweak is the shape of the string (each position's class, the other
/// characters as they are), so the shape is kept, and for each shape each class is
/// permuted: distinct inputs stay distinct, and ASCII that differs only in case gives
/// outputs that differ only in case, so `lower()` keeps them distinct too.
fn format_preserving_text(prp: &Prp, s: &str) -> String {
    let mut shape = Vec::with_capacity(s.len() + 8);
    let mut numerals: std::collections::BTreeMap<Class, Vec<u32>> = Default::default();
    for c in s.chars() {
        match Class::of(c) {
            Some(class) => {
                shape.extend(class.tag());
                let (first, _) = class.span();
                numerals
                    .entry(class)
                    .or_default()
                    .push(c.to_ascii_lowercase() as u32 - first);
            }
            None => {
                let mut buf = [0u8; 4];
                shape.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    let mut permuted: std::collections::BTreeMap<Class, std::vec::IntoIter<u32>> = numerals
        .iter()
        .map(|(class, n)| {
            let (_, radix) = class.span();
            let out = permute_numerals(prp, &shape, &class.tag(), radix, n);
            (*class, out.into_iter())
        })
        .collect();
    s.chars()
        .map(|c| match Class::of(c) {
            Some(class) => {
                let n = permuted
                    .get_mut(&class)
                    .and_then(Iterator::next)
                    .expect("one numeral per character of the class");
                let out = char::from_u32(class.span().0 + n).expect("a code point of the class");
                if c.is_ascii_uppercase() {
                    out.to_ascii_uppercase()
                } else {
                    out
                }
            }
            None => c,
        })
        .collect()
}

/// Permutes a numeral string in blocks as long as one permutation takes; each block's
/// tweak holds the blocks before it, so a repeated block does not repeat its output.
fn permute_numerals(
    prp: &Prp,
    shape: &[u8],
    class: &[u8],
    radix: u32,
    numerals: &[u32],
) -> Vec<u32> {
    let mut out = Vec::with_capacity(numerals.len());
    let mut tweak = shape.to_vec();
    tweak.extend_from_slice(class);
    for block in numerals.chunks(Prp::max_len(radix) as usize) {
        let x = block
            .iter()
            .fold(0u128, |acc, &n| acc * radix as u128 + n as u128);
        let mut y = prp.permute(&tweak, radix, block.len() as u32, None, x);
        let start = out.len();
        for _ in block {
            out.push((y % radix as u128) as u32);
            y /= radix as u128;
        }
        out[start..].reverse();
        tweak.extend(block.iter().map(|&n| n as u8));
        tweak.push(0xFF);
    }
    out
}

/// Permutes `v` among the integers of the same sign and number of digits that the
/// type holds (zero counts among the non-negative one-digit numbers). The values the
/// narrowest column of its foreign-key group (`group`) holds are permuted among
/// themselves, so a key and its wider references agree; the others only among the
/// others, so no two values meet.
fn format_preserving_int(prp: &Prp, v: i64, width: u8, group: u8) -> i64 {
    let negative = v < 0;
    let limit = |w: u8| {
        let (min, max) = int_range(w);
        u128::from(if negative {
            min.unsigned_abs()
        } else {
            max as u64
        })
    };
    let magnitude = u128::from(v.unsigned_abs());
    let digits = magnitude.checked_ilog10().map_or(1, |l| l + 1);
    let lo = match (digits, negative) {
        (1, false) => 0,
        (1, true) => 1,
        _ => 10u128.pow(digits - 1),
    };
    let full = 10u128.pow(digits) - 1;
    let cut = full.min(limit(group.min(width)));
    let top = full.min(limit(width));
    let tweak = [b'i', u8::from(negative), digits as u8];
    let y = if magnitude <= cut {
        lo + prp.permute(&tweak, 10, digits, Some(cut - lo + 1), magnitude - lo)
    } else {
        let mut y = magnitude - lo;
        loop {
            y = prp.permute(&tweak, 10, digits, Some(top - lo + 1), y);
            if lo + y > cut {
                break lo + y;
            }
        }
    };
    if negative {
        (y as i128).wrapping_neg() as i64
    } else {
        y as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::derive(&SecretKey::from_bytes([3; 32]))
    }

    fn text(t: &Transform, s: &str, kind: &ValueKind) -> String {
        let out = apply(t, kind, s.as_bytes(), &Context::default(), &keys())
            .unwrap()
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    const TEXT: ValueKind = ValueKind::Text {
        max_chars: None,
        padded: false,
    };

    #[test]
    fn format_preserving_text_keeps_shape_and_is_one_to_one_even_after_lower() {
        let t = Transform::FormatPreserving;
        let m = text(&t, "MRN-00001234", &TEXT);
        assert_eq!(m.len(), 12);
        assert!(m[..3].chars().all(|c| c.is_ascii_uppercase()), "{m}");
        assert_eq!(&m[3..4], "-");
        assert!(m[4..].chars().all(|c| c.is_ascii_digit()), "{m}");
        assert_ne!(m, "MRN-00001234");
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..2000 {
            assert!(seen.insert(text(&t, &format!("p{i}@mail.example"), &TEXT).to_lowercase()));
        }
        let upper = text(&t, "Patient.3@mail.example", &TEXT);
        let lower = text(&t, "patient.3@mail.example", &TEXT);
        assert_eq!(
            upper.to_lowercase(),
            lower,
            "case follows the input, letters do not"
        );
        assert_ne!(text(&t, "é-1", &TEXT).chars().next(), Some('é'));
        let long: String = "1234567890".repeat(9);
        assert_eq!(text(&t, &long, &TEXT).len(), 90);
    }

    #[test]
    fn format_preserving_integers_keep_sign_and_digits_and_stay_distinct() {
        let p = keys();
        let mut seen = std::collections::BTreeSet::new();
        let values = (100_000i64..101_000)
            .chain(-9..=9)
            .chain([i64::MAX, i64::MIN, -1000]);
        for v in values {
            let out = format_preserving_int(&p.prp, v, 8, 8);
            assert_eq!(out < 0, v < 0, "{v} -> {out}");
            assert_eq!(
                out.unsigned_abs().to_string().len(),
                v.unsigned_abs().to_string().len()
            );
            assert!(seen.insert(out), "{v} -> {out} twice");
        }
        assert!(
            (i32::MIN as i64..=i32::MAX as i64).contains(&format_preserving_int(
                &p.prp,
                i32::MAX as i64,
                4,
                4
            ))
        );
    }

    #[test]
    fn integers_mask_alike_in_a_key_and_its_wider_references_and_never_meet() {
        let p = keys();
        // An int2 key referenced from int4, an int4 key referenced from int8: the values
        // the key holds mask alike on both sides.
        for (v, narrow) in [(12_345i64, 2u8), (31_000, 2), (1_500_000_000, 4), (-7, 2)] {
            let key = format_preserving_int(&p.prp, v, narrow, narrow);
            assert_eq!(format_preserving_int(&p.prp, v, 8, narrow), key, "{v}");
        }
        // In the wide column, values above the narrow one's range keep out of its range:
        // every five-digit value stays distinct.
        let mut seen = std::collections::BTreeSet::new();
        for v in 10_000i64..100_000 {
            assert!(seen.insert(format_preserving_int(&p.prp, v, 4, 2)), "{v}");
        }
    }

    #[test]
    fn other_scripts_change_and_stay_in_their_script() {
        let t = Transform::FormatPreserving;
        for name in [
            "Олег Петров",
            "王小明",
            "Jürgen.Müller@web.de",
            "ivan@пример.рф",
        ] {
            let out = text(&t, name, &TEXT);
            assert_eq!(out.chars().count(), name.chars().count());
            for (a, b) in name.chars().zip(out.chars()) {
                if a.is_alphanumeric() {
                    assert_eq!(a as u32 >> 8, b as u32 >> 8, "{name} -> {out}");
                } else {
                    assert_eq!(a, b);
                }
            }
            let kept = name
                .chars()
                .zip(out.chars())
                .filter(|(a, b)| a.is_alphanumeric() && a == b);
            assert!(kept.count() * 4 <= name.chars().count(), "{name} -> {out}");
        }
    }

    #[test]
    fn padded_text_masks_as_the_same_text_unpadded() {
        let padded = ValueKind::Text {
            max_chars: Some(5),
            padded: true,
        };
        for t in [Transform::FormatPreserving, Transform::Hash] {
            assert_eq!(text(&t, "AB1  ", &padded), text(&t, "AB1", &TEXT));
        }
    }

    #[test]
    fn dates_shift_by_entity_and_years_keep_only_the_year() {
        let k = keys();
        let shift = Transform::ShiftDate {
            by: "patient_id".into(),
            max_days: 30,
        };
        let day = |d: i32| (d - 10_957).to_be_bytes(); // 1970-based to the wire's
        let e1 = entity_bytes(&ValueKind::Int(4), Some(&5i32.to_be_bytes())).unwrap();
        let e1_wide = entity_bytes(&ValueKind::Int(8), Some(&5i64.to_be_bytes())).unwrap();
        assert_eq!(e1, e1_wide);
        let cx = Context {
            entity: &e1,
            group_width: None,
        };
        let a = apply(&shift, &ValueKind::Date, &day(20_000), &cx, &k)
            .unwrap()
            .unwrap();
        let b = apply(&shift, &ValueKind::Date, &day(20_010), &cx, &k)
            .unwrap()
            .unwrap();
        let (a, b) = (
            i32::from_be_bytes(a.try_into().unwrap()),
            i32::from_be_bytes(b.try_into().unwrap()),
        );
        assert_eq!(b - a, 10, "intervals survive");
        let moved = a - (20_000 - 10_957);
        assert!(moved != 0 && moved.abs() <= 30, "{moved}");
        // 2024-07-14 is 8961 days after 2000-01-01; 2024-01-01 is 8766.
        let y = apply(
            &Transform::YearOnly,
            &ValueKind::Date,
            &8961i32.to_be_bytes(),
            &Context::default(),
            &k,
        );
        assert_eq!(y.unwrap().unwrap(), 8766i32.to_be_bytes());
        let ts = 8961i64 * MICROS_PER_DAY + 3_600_000_000;
        let y = apply(
            &Transform::YearOnly,
            &ValueKind::Timestamp,
            &ts.to_be_bytes(),
            &Context::default(),
            &k,
        );
        assert_eq!(
            y.unwrap().unwrap(),
            (8766i64 * MICROS_PER_DAY).to_be_bytes()
        );
    }

    #[test]
    fn fakes_and_redactions_fit_the_column() {
        let short = ValueKind::Text {
            max_chars: Some(4),
            padded: false,
        };
        let name = Transform::Fake {
            kind: FakeKind::FullName,
        };
        assert!(text(&name, "Elena Rossi", &short).chars().count() <= 4);
        assert_eq!(text(&name, "Elena", &TEXT), text(&name, "Elena", &TEXT));
        assert_ne!(text(&name, "Elena", &TEXT), text(&name, "Elene", &TEXT));
        assert_eq!(text(&Transform::Redact { text: None }, "x", &short), "[red");
        let j = apply(
            &Transform::Redact { text: None },
            &ValueKind::Jsonb,
            b"\x01{}",
            &Context::default(),
            &keys(),
        );
        assert_eq!(j.unwrap().unwrap(), b"\x01\"[redacted]\"");
        let zip = Transform::Generalize {
            kind: Generalization::Zip3,
        };
        assert_eq!(text(&zip, "02139", &TEXT), "021**");
        let age = Transform::Generalize {
            kind: Generalization::Age,
        };
        assert_eq!(text(&age, "93", &TEXT), "90+");
        let h = text(&Transform::Hash, "Elena", &TEXT);
        assert_eq!(h.len(), 5);
        assert_ne!(h, "Elena");
    }

    #[test]
    fn another_key_masks_differently() {
        let other = Keys::derive(&SecretKey::from_bytes([4; 32]));
        let t = Transform::FormatPreserving;
        let cx = Context::default();
        let a = apply(&t, &TEXT, b"MRN-00001234", &cx, &keys()).unwrap();
        let b = apply(&t, &TEXT, b"MRN-00001234", &cx, &other).unwrap();
        assert_ne!(a, b);
    }
}
