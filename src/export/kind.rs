//! How each PostgreSQL column becomes an Arrow column: the mapping README.md documents
//! ("Export to Parquet"), decided once per column from the backup's catalog.
//!
//! Built-in types are known by their OID, which is the same in every cluster; their
//! modifiers (a numeric's precision and scale) come from the column's `format_type`
//! text. User types (enums, domains, composites, ranges, arrays of them) come from the
//! catalog's type graph; extension types are known by name where their binary form is
//! known (citext, hstore). Anything else is unsupported: an error naming it, or, on
//! request, its binary send form as raw bytes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow_schema::{DataType, Field, FieldRef, Fields, IntervalUnit, TimeUnit};

use crate::catalog::types::{TypeInfo, TypeShape};
use crate::catalog::{Catalog, QualName};

/// What a value is decoded into; each variant has exactly one Arrow type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Int2,
    Int4,
    Int8,
    Oid,
    Float4,
    Float8,
    /// Decimal128 when `precision` ≤ 38, else Decimal256. A negative PostgreSQL
    /// scale is folded into the precision (the values are integers).
    Decimal {
        precision: u8,
        scale: u8,
    },
    /// Utf8 of some text form (see [`Text`]).
    Text(Text),
    Bytea,
    Date,
    Time,
    Timestamp {
        utc: bool,
    },
    Interval,
    /// An interval as `Struct{months, days, nanoseconds}`: what Parquet files get,
    /// since Parquet's own INTERVAL keeps milliseconds only and Arrow's MonthDayNano
    /// has no Parquet form.
    IntervalParts,
    Uuid,
    Enum,
    Money,
    Point,
    Hstore,
    /// An unsupported type exported as its binary send form.
    Raw,
    Array(Box<Kind>),
    Multirange(Box<Kind>),
    Range(Box<Kind>),
    Composite(Vec<(String, Kind)>),
}

/// The text forms a value can be printed in, each the way PostgreSQL prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text {
    Plain,
    Json,
    Jsonb,
    Char,
    Numeric,
    TimeTz,
    Inet,
    MacAddr,
    MacAddr8,
    Bits,
    TsVector,
    Lsn,
    Uuid,
}

/// Where the mapping leaves a choice to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TypeChoices {
    /// `numeric` without a modifier: `None` exports exact text, `Some((p, s))`
    /// Decimal(p, s).
    pub unconstrained_numeric: Option<(u8, u8)>,
    pub uuid_as_text: bool,
    pub unsupported_as_binary: bool,
    /// Intervals as [`Kind::IntervalParts`]: set by the export for Parquet files.
    pub interval_as_struct: bool,
}

/// Precision Arrow's widest decimal holds.
const MAX_DECIMAL_PRECISION: i32 = 76;

/// Type graphs nest at most this deep (PostgreSQL forbids cycles).
const MAX_DEPTH: usize = 32;

/// The catalog's types, indexed for the mapping.
pub struct TypeMap<'a> {
    types: HashMap<u32, &'a TypeInfo>,
    enums: HashSet<u32>,
    /// Enums by name too: backups written before enum OIDs were recorded know an
    /// enum column only by the name `format_type` printed for it.
    enum_names: HashSet<QualName>,
    choices: TypeChoices,
}

impl<'a> TypeMap<'a> {
    pub fn new(catalog: &'a Catalog, choices: TypeChoices) -> Self {
        TypeMap {
            types: catalog.types.iter().map(|t| (t.oid, t)).collect(),
            enums: catalog
                .enums
                .iter()
                .map(|e| e.oid)
                .filter(|&oid| oid != 0)
                .collect(),
            enum_names: catalog.enums.iter().map(|e| e.name.clone()).collect(),
            choices,
        }
    }

    /// The kind of a column of type `oid`, printed `type_sql` by `format_type`. `Err`
    /// names the innermost type that has no mapping.
    pub fn column(&self, oid: u32, type_sql: &str) -> Result<Kind, String> {
        match self.kind(oid, type_sql, 0) {
            Ok(k) => Ok(k),
            Err(_) if self.choices.unsupported_as_binary => Ok(Kind::Raw),
            Err(name) => Err(name),
        }
    }

    fn kind(&self, oid: u32, sql: &str, depth: usize) -> Result<Kind, String> {
        if depth > MAX_DEPTH {
            return Err(sql.to_string());
        }
        if self.is_enum(oid, sql) {
            return Ok(Kind::Enum);
        }
        if let Some(t) = self.types.get(&oid) {
            return self.user_type(t, depth);
        }
        if let Some(elem_sql) = sql.strip_suffix("[]") {
            if self.is_enum(0, elem_sql) {
                return Ok(Kind::Array(Box::new(Kind::Enum)));
            }
        }
        if let Some(k) = self.builtin_scalar(oid, sql) {
            return Ok(k);
        }
        if let Some(elem) = builtin_array_elem(oid) {
            let elem_sql = sql.strip_suffix("[]").unwrap_or(sql);
            return Ok(Kind::Array(Box::new(self.kind(
                elem,
                elem_sql,
                depth + 1,
            )?)));
        }
        if let Some(sub) = builtin_range_subtype(oid) {
            return Ok(Kind::Range(Box::new(self.kind(sub, "", depth + 1)?)));
        }
        if let Some(range) = builtin_multirange_range(oid) {
            let inner = self.kind(range, "", depth + 1)?;
            return Ok(Kind::Multirange(Box::new(inner)));
        }
        Err(if sql.is_empty() {
            format!("type OID {oid}")
        } else {
            sql.to_string()
        })
    }

    fn is_enum(&self, oid: u32, sql: &str) -> bool {
        self.enums.contains(&oid)
            || parse_type_name(sql).is_some_and(|q| self.enum_names.contains(&q))
    }

    fn user_type(&self, t: &TypeInfo, depth: usize) -> Result<Kind, String> {
        let inner = |oid: u32, sql: &str| self.kind(oid, sql, depth + 1);
        Ok(match &t.shape {
            TypeShape::Array { elem } => {
                let elem_sql = t.name.strip_suffix("[]").unwrap_or(&t.name);
                Kind::Array(Box::new(inner(*elem, elem_sql)?))
            }
            TypeShape::Domain { base } => inner(*base, t.base_sql.as_deref().unwrap_or(""))?,
            TypeShape::Range { subtype } => Kind::Range(Box::new(inner(*subtype, "")?)),
            TypeShape::Multirange { range } => Kind::Multirange(Box::new(inner(*range, "")?)),
            TypeShape::Composite { fields } => Kind::Composite(
                fields
                    .iter()
                    .enumerate()
                    .map(|(i, &f)| {
                        let name = t
                            .field_names
                            .get(i)
                            .cloned()
                            .unwrap_or_else(|| format!("f{}", i + 1));
                        let sql = t.field_sql.get(i).map_or("", String::as_str);
                        Ok((name, inner(f, sql)?))
                    })
                    .collect::<Result<_, String>>()?,
            ),
            TypeShape::Scalar => match bare_name(&t.name) {
                "citext" => Kind::Text(Text::Plain),
                "hstore" => Kind::Hstore,
                _ => return Err(t.name.clone()),
            },
        })
    }

    fn builtin_scalar(&self, oid: u32, sql: &str) -> Option<Kind> {
        Some(match oid {
            16 => Kind::Bool,
            17 => Kind::Bytea,
            18 => Kind::Text(Text::Char),
            19 | 25 | 142 | 1042 | 1043 => Kind::Text(Text::Plain),
            20 => Kind::Int8,
            21 => Kind::Int2,
            23 => Kind::Int4,
            26 => Kind::Oid,
            114 => Kind::Text(Text::Json),
            600 => Kind::Point,
            650 | 869 => Kind::Text(Text::Inet),
            700 => Kind::Float4,
            701 => Kind::Float8,
            774 => Kind::Text(Text::MacAddr8),
            790 => Kind::Money,
            829 => Kind::Text(Text::MacAddr),
            1082 => Kind::Date,
            1083 => Kind::Time,
            1114 => Kind::Timestamp { utc: false },
            1184 => Kind::Timestamp { utc: true },
            1186 if self.choices.interval_as_struct => Kind::IntervalParts,
            1186 => Kind::Interval,
            1266 => Kind::Text(Text::TimeTz),
            1560 | 1562 => Kind::Text(Text::Bits),
            1700 => self.numeric(sql),
            2950 if self.choices.uuid_as_text => Kind::Text(Text::Uuid),
            2950 => Kind::Uuid,
            3220 => Kind::Text(Text::Lsn),
            3614 => Kind::Text(Text::TsVector),
            3802 => Kind::Text(Text::Jsonb),
            _ => return None,
        })
    }

    /// `numeric(p,s)` → Decimal(p,s) while Arrow can hold it; otherwise the choice for
    /// unconstrained numerics, or exact text when the precision is beyond Arrow's.
    fn numeric(&self, sql: &str) -> Kind {
        match numeric_typmod(sql) {
            Some((p, s)) => {
                // PostgreSQL 15 allows a scale above the precision (values below 1) and
                // a negative scale (values rounded to tens, hundreds, …).
                let precision = if s < 0 { p - s } else { p.max(s) };
                if precision <= MAX_DECIMAL_PRECISION {
                    Kind::Decimal {
                        precision: precision as u8,
                        scale: s.max(0) as u8,
                    }
                } else {
                    Kind::Text(Text::Numeric)
                }
            }
            None => match self.choices.unconstrained_numeric {
                Some((precision, scale)) => Kind::Decimal { precision, scale },
                None => Kind::Text(Text::Numeric),
            },
        }
    }
}

/// The unquoted last part of a qualified type name: `ext.citext` → `citext`.
fn bare_name(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name).trim_matches('"')
}

/// `(precision, scale)` from `numeric(10,2)`, `numeric(10)`, `numeric(10,2)[]`.
fn numeric_typmod(sql: &str) -> Option<(i32, i32)> {
    let rest = sql.strip_prefix("numeric(")?;
    let inner = &rest[..rest.find(')')?];
    let mut parts = inner.split(',').map(|p| p.trim().parse::<i32>());
    let p = parts.next()?.ok()?;
    let s = match parts.next() {
        Some(s) => s.ok()?,
        None => 0,
    };
    Some((p, s))
}

/// Element types of the built-in array types (`pg_type.typarray` in PostgreSQL's
/// source: the same OIDs in every cluster and version).
fn builtin_array_elem(oid: u32) -> Option<u32> {
    Some(match oid {
        1000 => 16,
        1001 => 17,
        1002 => 18,
        1003 => 19,
        1016 => 20,
        1005 => 21,
        1007 => 23,
        1009 => 25,
        1028 => 26,
        199 => 114,
        143 => 142,
        1017 => 600,
        651 => 650,
        1021 => 700,
        1022 => 701,
        775 => 774,
        791 => 790,
        1040 => 829,
        1041 => 869,
        1014 => 1042,
        1015 => 1043,
        1182 => 1082,
        1183 => 1083,
        1115 => 1114,
        1185 => 1184,
        1187 => 1186,
        1270 => 1266,
        1561 => 1560,
        1563 => 1562,
        1231 => 1700,
        2951 => 2950,
        3221 => 3220,
        3643 => 3614,
        3807 => 3802,
        3905 => 3904,
        3907 => 3906,
        3909 => 3908,
        3911 => 3910,
        3913 => 3912,
        3927 => 3926,
        6150 => 4451,
        6151 => 4532,
        6152 => 4533,
        6153 => 4534,
        6155 => 4535,
        6157 => 4536,
        _ => return None,
    })
}

fn builtin_range_subtype(oid: u32) -> Option<u32> {
    Some(match oid {
        3904 => 23,
        3906 => 1700,
        3908 => 1114,
        3910 => 1184,
        3912 => 1082,
        3926 => 20,
        _ => return None,
    })
}

fn builtin_multirange_range(oid: u32) -> Option<u32> {
    Some(match oid {
        4451 => 3904,
        4532 => 3906,
        4533 => 3908,
        4534 => 3910,
        4535 => 3912,
        4536 => 3926,
        _ => return None,
    })
}

/// Arrow's canonical extension types, so readers see a UUID or JSON, not bytes.
const EXTENSION_NAME: &str = "ARROW:extension:name";

impl Kind {
    pub fn data_type(&self) -> DataType {
        match self {
            Kind::Bool => DataType::Boolean,
            Kind::Int2 => DataType::Int16,
            Kind::Int4 => DataType::Int32,
            Kind::Int8 | Kind::Money => DataType::Int64,
            Kind::Oid => DataType::UInt32,
            Kind::Float4 => DataType::Float32,
            Kind::Float8 => DataType::Float64,
            Kind::Decimal { precision, scale } if *precision <= 38 => {
                DataType::Decimal128(*precision, *scale as i8)
            }
            Kind::Decimal { precision, scale } => DataType::Decimal256(*precision, *scale as i8),
            Kind::Text(_) => DataType::Utf8,
            Kind::Bytea | Kind::Raw => DataType::Binary,
            Kind::Date => DataType::Date32,
            Kind::Time => DataType::Time64(TimeUnit::Microsecond),
            Kind::Timestamp { utc } => {
                DataType::Timestamp(TimeUnit::Microsecond, utc.then(|| Arc::from("UTC")))
            }
            Kind::Interval => DataType::Interval(IntervalUnit::MonthDayNano),
            Kind::Uuid => DataType::FixedSizeBinary(16),
            Kind::Enum => DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            Kind::Point | Kind::IntervalParts => DataType::Struct(self.struct_fields()),
            Kind::Hstore => DataType::Map(hstore_entries(), false),
            // A multirange holds its range kind: a list of range structs.
            Kind::Array(item) | Kind::Multirange(item) => {
                DataType::List(Arc::new(item.field("item", true)))
            }
            Kind::Range(_) | Kind::Composite(_) => DataType::Struct(self.struct_fields()),
        }
    }

    /// The fields of a struct-shaped kind (composite, range, point).
    pub fn struct_fields(&self) -> Fields {
        match self {
            Kind::Composite(fields) => fields.iter().map(|(n, k)| k.field(n, true)).collect(),
            Kind::Range(sub) => Fields::from(vec![
                sub.field("lower", true),
                sub.field("upper", true),
                Field::new("lower_inclusive", DataType::Boolean, false),
                Field::new("upper_inclusive", DataType::Boolean, false),
                Field::new("empty", DataType::Boolean, false),
            ]),
            Kind::Point => Fields::from(vec![
                Field::new("x", DataType::Float64, false),
                Field::new("y", DataType::Float64, false),
            ]),
            Kind::IntervalParts => Fields::from(vec![
                Field::new("months", DataType::Int32, false),
                Field::new("days", DataType::Int32, false),
                Field::new("nanoseconds", DataType::Int64, false),
            ]),
            _ => Fields::empty(),
        }
    }

    /// An Arrow field of this kind, with the extension type readers understand.
    pub fn field(&self, name: &str, nullable: bool) -> Field {
        let f = Field::new(name, self.data_type(), nullable);
        let ext = match self {
            Kind::Uuid => "arrow.uuid",
            Kind::Text(Text::Json | Text::Jsonb) => "arrow.json",
            _ => return f,
        };
        f.with_metadata(HashMap::from([(EXTENSION_NAME.into(), ext.into())]))
    }

    /// Values of this kind may become NULL where Arrow cannot hold them (±infinity,
    /// NaN, out of range), so its field is nullable even for a NOT NULL column.
    pub fn may_become_null(&self) -> bool {
        matches!(
            self,
            Kind::Date
                | Kind::Timestamp { .. }
                | Kind::Interval
                | Kind::IntervalParts
                | Kind::Decimal { .. }
        )
    }

    /// Whether values of this kind are exported losslessly only in part (said in the
    /// README and in a warning): multi-dimensional arrays are flattened.
    pub fn has_array(&self) -> bool {
        match self {
            Kind::Array(_) => true,
            Kind::Multirange(k) | Kind::Range(k) => k.has_array(),
            Kind::Composite(f) => f.iter().any(|(_, k)| k.has_array()),
            _ => false,
        }
    }
}

/// hstore as `Map<Utf8, Utf8>`: keys are never NULL, values may be.
pub fn hstore_entries() -> FieldRef {
    Arc::new(Field::new(
        "entries",
        DataType::Struct(Fields::from(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Utf8, true),
        ])),
        false,
    ))
}

/// The schema and name of a type as `format_type` prints a user type with an empty
/// `search_path` (`ward.acuity`, `"My Schema"."Kind"`), unquoted; `None` for anything
/// else (built-in types, modifiers, arrays).
fn parse_type_name(sql: &str) -> Option<QualName> {
    let mut parts = Vec::new();
    let mut chars = sql.chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    '"' => break,
                    c => part.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if !(c.is_alphanumeric() || c == '_' || c == '$') {
                    break;
                }
                part.push(c);
                chars.next();
            }
            if part.is_empty() {
                return None;
            }
        }
        parts.push(part);
        match chars.next() {
            None => break,
            Some('.') => continue,
            Some(_) => return None,
        }
    }
    match <[String; 2]>::try_from(parts) {
        Ok([schema, name]) => Some(QualName::new(schema, name)),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::types::TypeInfo;

    fn catalog() -> Catalog {
        Catalog {
            types: vec![
                TypeInfo {
                    oid: 16400,
                    name: "public.pair".into(),
                    shape: TypeShape::Composite {
                        fields: vec![23, 16401],
                    },
                    field_names: vec!["l".into(), "money_left".into()],
                    field_sql: vec![],
                    base_sql: None,
                },
                TypeInfo {
                    oid: 16401,
                    name: "public.amount".into(),
                    shape: TypeShape::Domain { base: 1700 },
                    field_names: vec![],
                    field_sql: vec![],
                    base_sql: Some("numeric(12,2)".into()),
                },
                TypeInfo {
                    oid: 16402,
                    name: "public.box3d".into(),
                    shape: TypeShape::Scalar,
                    field_names: vec![],
                    field_sql: vec![],
                    base_sql: None,
                },
            ],
            ..Catalog::default()
        }
    }

    #[test]
    fn enums_of_older_backups_are_found_by_name() {
        let mut cat = catalog();
        cat.enums = vec![
            crate::catalog::EnumType {
                oid: 0,
                name: QualName::new("ward", "acuity"),
                labels: vec!["low".into()],
                comment: None,
                owner: None,
                acl: None,
            },
            crate::catalog::EnumType {
                oid: 0,
                name: QualName::new("My \"Ward\"", "Kind.Of"),
                labels: vec![],
                comment: None,
                owner: None,
                acl: None,
            },
        ];
        let m = TypeMap::new(&cat, TypeChoices::default());
        assert_eq!(m.column(16500, "ward.acuity").unwrap(), Kind::Enum);
        assert_eq!(
            m.column(16499, "ward.acuity[]").unwrap(),
            Kind::Array(Box::new(Kind::Enum))
        );
        assert_eq!(
            m.column(16600, "\"My \"\"Ward\"\"\".\"Kind.Of\"").unwrap(),
            Kind::Enum
        );
        assert!(m.column(16501, "ward.other").is_err());
        assert!(m.column(16502, "acuity").is_err());
        for not_a_name in ["ward.acuity(3)", "\"ward", "ward.", ".acuity", "a.b.c"] {
            assert_eq!(parse_type_name(not_a_name), None, "{not_a_name}");
        }
    }

    #[test]
    fn built_in_types_map_by_oid_with_their_modifiers() {
        let cat = catalog();
        let m = TypeMap::new(&cat, TypeChoices::default());
        assert_eq!(
            m.column(1700, "numeric(10,2)").unwrap(),
            Kind::Decimal {
                precision: 10,
                scale: 2
            }
        );
        assert_eq!(
            m.column(1231, "numeric(50,5)[]").unwrap(),
            Kind::Array(Box::new(Kind::Decimal {
                precision: 50,
                scale: 5
            }))
        );
        assert_eq!(
            m.column(1700, "numeric").unwrap(),
            Kind::Text(Text::Numeric)
        );
        assert_eq!(
            m.column(1700, "numeric(3,-2)").unwrap(),
            Kind::Decimal {
                precision: 5,
                scale: 0
            }
        );
        assert_eq!(
            m.column(1700, "numeric(100,2)").unwrap(),
            Kind::Text(Text::Numeric)
        );
        assert_eq!(
            m.column(3910, "tstzrange").unwrap(),
            Kind::Range(Box::new(Kind::Timestamp { utc: true }))
        );
        assert!(matches!(
            m.column(1184, "timestamp with time zone")
                .unwrap()
                .data_type(),
            DataType::Timestamp(TimeUnit::Microsecond, Some(_))
        ));
    }

    #[test]
    fn user_types_follow_the_catalog_and_unknown_ones_are_named() {
        let cat = catalog();
        let m = TypeMap::new(&cat, TypeChoices::default());
        let pair = m.column(16400, "public.pair").unwrap();
        assert_eq!(
            pair,
            Kind::Composite(vec![
                ("l".into(), Kind::Int4),
                (
                    "money_left".into(),
                    Kind::Decimal {
                        precision: 12,
                        scale: 2
                    }
                )
            ])
        );
        assert_eq!(m.column(16402, "public.box3d").unwrap_err(), "public.box3d");
        assert_eq!(m.column(603, "box").unwrap_err(), "box");
        let lenient = TypeMap::new(
            &cat,
            TypeChoices {
                unsupported_as_binary: true,
                ..TypeChoices::default()
            },
        );
        assert_eq!(lenient.column(603, "box").unwrap(), Kind::Raw);
    }
}
