//! `pgbunker export` (issue #8): archived backups to Parquet and Arrow IPC, read back by
//! an independent reader (pyarrow, `tests/export_read.py`) and compared value by value
//! with what the live server returns for the same rows.
//!
//! The oracle never decodes COPY data. For every column, SQL built from the live catalog
//! (`Catalog::canon`) turns each value on the server into the canonical JSON form the
//! reader prints for the Arrow value the contract maps it to:
//!
//! | PostgreSQL | server-side rule | reader's form |
//! |---|---|---|
//! | bool, int2/4/8 | `to_jsonb(x)` | JSON bool / integer |
//! | oid | `x::int8` | integer (UInt32) |
//! | float4, float8 | `x::float8::text` (shortest exact), compared as parsed f64 bits | `repr()` of the double, `NaN`/`Infinity`/`-Infinity` |
//! | numeric(p,s), p ≤ 76 (negative scale folded into p) | `x::text`; NaN/±Infinity → NULL (special) | Decimal as fixed-point text |
//! | numeric without typmod, p > 76 | `x::text` (NaN kept) | string |
//! | text-like, json(b), timetz, uuid, inet, cidr, mac*, bit, varbit, tsvector, pg_lsn, citext, xml | the output function: `format('%s', x)` (keeps bpchar padding, inet without /32) | string |
//! | bytea, unsupported (`--unsupported binary`) | `encode(x, 'hex')`, `encode(<typsend>(x), 'hex')` | hex |
//! | date | days since 1970-01-01; ±infinity → NULL | the Date32 integer |
//! | time | µs since midnight | the Time64(µs) integer |
//! | timestamp, timestamptz | µs since the epoch (exact numeric arithmetic); ±infinity or outside i64 → NULL | the Timestamp(µs) integer |
//! | interval | `[months, days, µs × 1000]`; infinity or nanoseconds outside i64 → NULL | MonthDayNano (Arrow IPC) or Struct{months, days, nanoseconds} (Parquet), as a triple |
//! | money | `x::numeric * 100` | Int64 cents |
//! | enum | `x::text` | the dictionary's value |
//! | domain | its base type's rule with the domain's modifier (README: a domain over numeric(p,s) keeps p and s) | |
//! | array | `unnest` in row-major order, NULL elements kept, `[]` for empty | list |
//! | composite | an object of the fields' rules (NULL only for a NULL value) | struct |
//! | range | `{lower, upper, lower_inclusive, upper_inclusive, empty}` from `lower()`, `lower_inc()`, `isempty()`… | struct |
//! | multirange | list of ranges | list |
//! | point | `{x, y}` floats | struct |
//! | hstore | `hstore_to_jsonb(x)` | map as an object |
//!
//! Rows are compared as multisets (each row normalized, then sorted); when they differ,
//! rows are paired by their first column to name the column, the expected and the
//! exported value.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use pgbunker::sandbox::s3::S3Server;
use serde_json::Value;
use tokio_postgres::Client;

use crate::support::{files, ok, pgbunker, run_sql, stderr, World, KEY, OTHER_KEY};

// ---------------------------------------------------------------------------
// The independent reader
// ---------------------------------------------------------------------------

/// The Python that has pyarrow: `PGBUNKER_PYTHON`, else `/opt/pgbunker-py/bin/python`
/// (what .ci/run installs), else `python3`. Never skips: panics with a hint.
pub(crate) fn python() -> &'static Path {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        let candidates: Vec<PathBuf> =
            match std::env::var_os("PGBUNKER_PYTHON").filter(|p| !p.is_empty()) {
                Some(p) => vec![PathBuf::from(p)],
                None => vec!["/opt/pgbunker-py/bin/python".into(), "python3".into()],
            };
        for c in &candidates {
            let has_pyarrow = Command::new(c)
                .args([
                    "-c",
                    "import pyarrow, pyarrow.parquet, pyarrow.ipc, pyarrow.fs",
                ])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if has_pyarrow {
                return c.clone();
            }
        }
        panic!(
            "no Python with pyarrow (tried {candidates:?}): the export tests read the \
             exported files back with pyarrow.\nhint: run .ci/run once (it installs a venv \
             with pyarrow at /opt/pgbunker-py), or `python3 -m venv /opt/pgbunker-py && \
             /opt/pgbunker-py/bin/pip install pyarrow==26.0.1`, then set \
             PGBUNKER_PYTHON=/opt/pgbunker-py/bin/python"
        )
    })
}

/// Reads an export folder (or `bucket/prefix` on `s3`) with tests/export_read.py.
pub(crate) fn read_export(root: &str, s3: Option<&S3Server>) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/export_read.py");
    let mut cmd = Command::new(python());
    cmd.arg(&script);
    if let Some(s) = s3 {
        cmd.arg("--s3-endpoint").arg(s.endpoint());
        for (k, v) in s.env() {
            cmd.env(k, v);
        }
    }
    cmd.arg(root);
    let out = cmd.output().expect("run tests/export_read.py");
    assert!(
        out.status.success(),
        "tests/export_read.py {root} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the reader prints JSON")
}

/// The reader's datasets by folder name.
fn datasets(read: &Value) -> BTreeMap<String, &Value> {
    read["datasets"]
        .as_array()
        .expect("datasets")
        .iter()
        .map(|d| (d["name"].as_str().unwrap().to_owned(), d))
        .collect()
}

// ---------------------------------------------------------------------------
// Running pgbunker export
// ---------------------------------------------------------------------------

/// `pgbunker --json export --repo REPO latest --out OUT <extra>` under [`KEY`] (an entry
/// of `env` overrides it).
fn export(repo: &str, out: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut args = vec!["--json", "export", "--repo", repo, "latest", "--out", out];
    args.extend_from_slice(extra);
    let mut all = vec![("PGBUNKER_KEY", KEY)];
    all.extend_from_slice(env);
    pgbunker(&args, &all)
}

/// [`export`], asserted successful, its `--json` report.
fn export_ok(repo: &str, out: &str, extra: &[&str], env: &[(&str, &str)]) -> Value {
    let o = export(repo, out, extra, env);
    let text = ok(o);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("export printed no JSON ({e}): {text}"))
}

fn warnings(report: &Value) -> Vec<String> {
    report["warnings"]
        .as_array()
        .unwrap_or_else(|| panic!("no warnings array in {report}"))
        .iter()
        .map(|w| w.as_str().expect("warning strings").to_owned())
        .collect()
}

/// Whether a warning names column `col` of a table whose name contains `table`.
fn warned(warns: &[String], table: &str, col: &str) -> bool {
    warns.iter().any(|w| {
        w.contains(table)
            && [
                format!("column {col} "),
                format!("column {col}:"),
                format!("column \"{col}\""),
                format!(".{col} "),
                format!(".{col}:"),
            ]
            .iter()
            .any(|n| w.contains(n.as_str()))
    })
}

/// Panics listing every problem when there is any.
fn assert_clean(what: &str, problems: &[String]) {
    if !problems.is_empty() {
        panic!(
            "{what}: {} problem(s):\n{}",
            problems.len(),
            problems.join("\n")
        );
    }
}

/// The folder name of a table: bytes other than [A-Za-z0-9_.-] and non-ASCII as %XX.
fn encode_name(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"_.-".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() && s.is_char_boundary(i + 3) {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The file a complete export ends with.
const SUMMARY: &str = "_pgbunker_export.json";

/// Parquet has no MonthDayNano interval: there an interval is this struct of the same
/// three numbers (README); its values are compared as `[months, days, nanoseconds]`.
const INTERVAL_STRUCT: &str = "struct<months: int32, days: int32, nanoseconds: int64>";

/// Arrow types equal, where the JSON extension may be missing on nested fields (the
/// contract names it for fields; the values are the same strings either way).
fn same_arrow(got: &str, want: &str) -> bool {
    let plain = |s: &str| {
        if s == "arrow.json(string)" {
            s.to_owned()
        } else {
            s.replace("arrow.json(string)", "string")
        }
    };
    got == want || plain(got) == plain(want)
}

/// Two reads of one dataset hold the same types and rows (intervals as triples in
/// both, see [`INTERVAL_STRUCT`]).
fn same_read(name: &str, a: &Value, b: &Value) -> Vec<String> {
    let fields = |d: &Value| -> Vec<String> {
        d["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["compact"].as_str().unwrap().to_owned())
            .collect()
    };
    let (fa, fb) = (fields(a), fields(b));
    let iv = |s: &str| s.replace(INTERVAL_STRUCT, "month_day_nano_interval");
    if fa.len() != fb.len() || fa.iter().zip(&fb).any(|(x, y)| !same_arrow(&iv(x), &iv(y))) {
        return vec![format!("{name}: Arrow types {fa:?} differ from {fb:?}")];
    }
    let rows = |d: &Value, types: &[String]| -> Vec<Vec<Value>> {
        d["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .zip(types)
                    .map(|(v, t)| shared_form(t, v))
                    .collect()
            })
            .collect()
    };
    let (ra, rb) = (rows(a, &fa), rows(b, &fb));
    match ra.iter().zip(&rb).position(|(x, y)| x != y) {
        _ if ra.len() != rb.len() => {
            vec![format!("{name}: {} rows against {}", ra.len(), rb.len())]
        }
        Some(i) => vec![format!(
            "{name}: row {i} differs: {} against {}",
            show(&Value::Array(ra[i].clone())),
            show(&Value::Array(rb[i].clone()))
        )],
        None => Vec::new(),
    }
}

/// A reader value with interval structs (top level or in lists) as triples.
fn shared_form(compact: &str, v: &Value) -> Value {
    match v {
        Value::Object(m) if compact == INTERVAL_STRUCT => Value::Array(
            ["months", "days", "nanoseconds"]
                .iter()
                .map(|k| m.get(*k).cloned().unwrap_or(Value::Null))
                .collect(),
        ),
        Value::Array(items) => match compact
            .strip_prefix("list<")
            .and_then(|s| s.strip_suffix('>'))
        {
            Some(inner) => Value::Array(items.iter().map(|i| shared_form(inner, i)).collect()),
            None => v.clone(),
        },
        _ => v.clone(),
    }
}

/// Short text of a value for failure messages.
fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 160 {
        let head: String = s.chars().take(160).collect();
        format!("{head}… ({} chars)", s.len())
    } else {
        s
    }
}

// ---------------------------------------------------------------------------
// The catalog-driven oracle
// ---------------------------------------------------------------------------

struct TypeRow {
    regtype: String,
    nsp: String,
    typname: String,
    typtype: String,
    category: String,
    elem: u32,
    len: i16,
    base: u32,
    relid: u32,
    send: String,
    range_sub: Option<u32>,
    multirange_of: Option<u32>,
    /// A domain's modifier (`numeric(8,2)`); -1 for none.
    typmod: i32,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Bool,
    Int,
    Oid,
    Float,
    Numeric,
    Text,
    Json,
    Bytea,
    Date,
    Time,
    Timestamp,
    TimestampTz,
    Interval,
    Uuid,
    Money,
    Point,
    Hstore,
    Enum,
    Domain(u32),
    Array(u32),
    Composite(u32),
    Range(u32),
    Multirange(u32),
    Unsupported,
}

/// How the export was asked to map the flag-dependent types.
#[derive(Default, Clone, Copy)]
struct Opts {
    uuid_text: bool,
    unsupported_binary: bool,
    /// Arrow IPC files (set from the report's format): intervals are MonthDayNano there.
    arrow_ipc: bool,
}

struct Catalog {
    types: HashMap<u32, TypeRow>,
    /// Composite type relid → (field, type, typmod), in attnum order.
    attrs: HashMap<u32, Vec<(String, u32, i32)>>,
}

/// A table column as the export must carry it.
struct Col {
    name: String,
    oid: u32,
    typmod: i32,
    pg_type: String,
    /// `format_type` with every type outside pg_catalog schema-qualified (search_path
    /// empty): the metadata may carry either form.
    pg_type_qualified: String,
    not_null: bool,
}

impl Col {
    fn is_pg_type(&self, v: &Value) -> bool {
        v == self.pg_type.as_str() || v == self.pg_type_qualified.as_str()
    }
}

const I64_RANGE: &str = "BETWEEN -9223372036854775808 AND 9223372036854775807";

impl Catalog {
    async fn load(client: &Client, version: u32) -> Catalog {
        let (mr_col, mr_join) = if version >= 140000 {
            (
                "mr.rngtypid",
                "LEFT JOIN pg_range mr ON mr.rngmultitypid = t.oid",
            )
        } else {
            ("NULL::oid", "")
        };
        let sql = format!(
            "SELECT t.oid, t.oid::regtype::text, n.nspname::text, t.typname::text, \
             t.typtype::text, t.typcategory::text, t.typelem, t.typlen, t.typbasetype, \
             t.typrelid, t.typsend::text, r.rngsubtype, {mr_col}, t.typtypmod \
             FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
             LEFT JOIN pg_range r ON r.rngtypid = t.oid {mr_join}"
        );
        let mut types = HashMap::new();
        for r in client.query(&sql, &[]).await.expect("read pg_type") {
            types.insert(
                r.get::<_, u32>(0),
                TypeRow {
                    regtype: r.get(1),
                    nsp: r.get(2),
                    typname: r.get(3),
                    typtype: r.get(4),
                    category: r.get(5),
                    elem: r.get(6),
                    len: r.get(7),
                    base: r.get(8),
                    relid: r.get(9),
                    send: r.get(10),
                    range_sub: r.get(11),
                    multirange_of: r.get(12),
                    typmod: r.get(13),
                },
            );
        }
        let mut attrs: HashMap<u32, Vec<(String, u32, i32)>> = HashMap::new();
        for r in client
            .query(
                "SELECT a.attrelid, a.attname::text, a.atttypid, a.atttypmod \
                 FROM pg_attribute a JOIN pg_type t ON t.typrelid = a.attrelid \
                 WHERE t.typtype = 'c' AND a.attnum > 0 AND NOT a.attisdropped \
                 ORDER BY a.attrelid, a.attnum",
                &[],
            )
            .await
            .expect("read composite fields")
        {
            attrs
                .entry(r.get(0))
                .or_default()
                .push((r.get(1), r.get(2), r.get(3)));
        }
        Catalog { types, attrs }
    }

    fn t(&self, oid: u32) -> &TypeRow {
        self.types
            .get(&oid)
            .unwrap_or_else(|| panic!("type {oid} not in pg_type"))
    }

    fn kind(&self, oid: u32) -> Kind {
        let t = self.t(oid);
        match t.typtype.as_str() {
            "d" => return Kind::Domain(t.base),
            "e" => return Kind::Enum,
            "c" => return Kind::Composite(t.relid),
            "r" => return Kind::Range(t.range_sub.expect("range subtype")),
            "m" => return Kind::Multirange(t.multirange_of.expect("multirange's range")),
            _ => {}
        }
        if t.category == "A" && t.elem != 0 && t.len == -1 {
            return Kind::Array(t.elem);
        }
        if t.nsp != "pg_catalog" {
            return match t.typname.as_str() {
                "citext" => Kind::Text,
                "hstore" => Kind::Hstore,
                _ => Kind::Unsupported,
            };
        }
        match t.typname.as_str() {
            "bool" => Kind::Bool,
            "int2" | "int4" | "int8" => Kind::Int,
            "oid" => Kind::Oid,
            "float4" | "float8" => Kind::Float,
            "numeric" => Kind::Numeric,
            "text" | "varchar" | "bpchar" | "name" | "char" | "xml" | "timetz" | "inet"
            | "cidr" | "macaddr" | "macaddr8" | "bit" | "varbit" | "tsvector" | "pg_lsn" => {
                Kind::Text
            }
            "json" | "jsonb" => Kind::Json,
            "bytea" => Kind::Bytea,
            "date" => Kind::Date,
            "time" => Kind::Time,
            "timestamp" => Kind::Timestamp,
            "timestamptz" => Kind::TimestampTz,
            "interval" => Kind::Interval,
            "uuid" => Kind::Uuid,
            "money" => Kind::Money,
            "point" => Kind::Point,
            _ => Kind::Unsupported,
        }
    }

    /// The Decimal (precision, scale) of a numeric typmod; None without one. A negative
    /// scale (PostgreSQL 15) folds into the precision, a scale above the precision
    /// raises it (README).
    fn numeric_ps(typmod: i32) -> Option<(i32, i32)> {
        if typmod < 4 {
            return None;
        }
        let t = typmod - 4;
        let p = (t >> 16) & 0xffff;
        let s = ((t & 0x7ff) ^ 1024) - 1024;
        Some(if s < 0 { (p - s, 0) } else { (p.max(s), s) })
    }

    /// Whether a value of the type itself (not an element or field) may come out NULL
    /// from a non-NULL one: a special value or one out of the Arrow type's range.
    fn can_be_special(&self, oid: u32, typmod: i32) -> bool {
        match self.kind(oid) {
            Kind::Date | Kind::Timestamp | Kind::TimestampTz | Kind::Interval => true,
            Kind::Numeric => Self::is_decimal(typmod),
            Kind::Domain(base) => self.can_be_special(base, self.t(oid).typmod),
            _ => false,
        }
    }

    /// Whether binary COPY cannot carry a value of the type, so a table with such a
    /// column is backed up, and exported, as COPY text (README): the type or one inside
    /// it has no binary send function (aclitem) or is a reg* type (a bare OID in
    /// binary form).
    fn needs_text(&self, oid: u32, depth: usize) -> bool {
        let t = self.t(oid);
        const REG: [&str; 11] = [
            "regclass",
            "regcollation",
            "regconfig",
            "regdictionary",
            "regnamespace",
            "regoper",
            "regoperator",
            "regproc",
            "regprocedure",
            "regrole",
            "regtype",
        ];
        let reg = t.nsp == "pg_catalog" && REG.contains(&t.typname.as_str());
        if t.send == "-" || reg || depth > 32 {
            return true;
        }
        let inner = |o: u32| o != 0 && self.needs_text(o, depth + 1);
        match t.typtype.as_str() {
            "d" => inner(t.base),
            "c" => self.attrs[&t.relid].iter().any(|(_, f, _)| inner(*f)),
            "r" => inner(t.range_sub.unwrap_or(0)),
            "m" => inner(t.multirange_of.unwrap_or(0)),
            _ => t.elem != 0 && t.len == -1 && inner(t.elem),
        }
    }

    /// A numeric column that maps to a Decimal (specials become NULL there).
    fn is_decimal(typmod: i32) -> bool {
        matches!(Self::numeric_ps(typmod), Some((p, _)) if p <= 76)
    }

    /// The Arrow type the contract maps the type to, as the reader's `compact` prints it.
    fn arrow(&self, oid: u32, typmod: i32, o: Opts) -> String {
        match self.kind(oid) {
            Kind::Bool => "bool".into(),
            Kind::Int => match self.t(oid).typname.as_str() {
                "int2" => "int16".into(),
                "int4" => "int32".into(),
                _ => "int64".into(),
            },
            Kind::Oid => "uint32".into(),
            Kind::Float => if self.t(oid).typname == "float4" {
                "float"
            } else {
                "double"
            }
            .into(),
            Kind::Numeric => match Self::numeric_ps(typmod) {
                Some((p, s)) if p <= 38 => format!("decimal128({p}, {s})"),
                Some((p, s)) if p <= 76 => format!("decimal256({p}, {s})"),
                _ => "string".into(),
            },
            Kind::Text => "string".into(),
            Kind::Json => "arrow.json(string)".into(),
            Kind::Bytea => "binary".into(),
            Kind::Date => "date32[day]".into(),
            Kind::Time => "time64[us]".into(),
            Kind::Timestamp => "timestamp[us]".into(),
            Kind::TimestampTz => "timestamp[us, tz=UTC]".into(),
            Kind::Interval if o.arrow_ipc => "month_day_nano_interval".into(),
            Kind::Interval => INTERVAL_STRUCT.into(),
            Kind::Uuid if o.uuid_text => "string".into(),
            Kind::Uuid => "arrow.uuid(fixed_size_binary[16])".into(),
            Kind::Money => "int64".into(),
            Kind::Point => "struct<x: double, y: double>".into(),
            Kind::Hstore => "map<string, string>".into(),
            Kind::Enum => "dictionary<int32, string>".into(),
            Kind::Domain(base) => self.arrow(base, self.t(oid).typmod, o),
            Kind::Array(elem) => format!("list<{}>", self.arrow(elem, typmod, o)),
            Kind::Composite(relid) => {
                let fields: Vec<String> = self.attrs[&relid]
                    .iter()
                    .map(|(n, t, m)| format!("{n}: {}", self.arrow(*t, *m, o)))
                    .collect();
                format!("struct<{}>", fields.join(", "))
            }
            Kind::Range(sub) => {
                let b = self.arrow(sub, -1, o);
                format!(
                    "struct<lower: {b}, upper: {b}, lower_inclusive: bool, \
                     upper_inclusive: bool, empty: bool>"
                )
            }
            Kind::Multirange(range) => format!("list<{}>", self.arrow(range, -1, o)),
            Kind::Unsupported if o.unsupported_binary => "binary".into(),
            Kind::Unsupported => "(unsupported: the export should have refused)".into(),
        }
    }

    /// SQL turning `x` (a value of type `oid`) into the reader's canonical JSON form
    /// (jsonb; SQL NULL for NULL). `depth` keeps subquery aliases apart.
    fn canon(&self, oid: u32, typmod: i32, x: &str, depth: usize) -> String {
        let t = self.t(oid);
        let nn = |e: String| format!("CASE WHEN ({x}) IS NULL THEN NULL ELSE {e} END");
        match self.kind(oid) {
            Kind::Bool | Kind::Int => format!("to_jsonb({x})"),
            Kind::Oid => format!("to_jsonb(({x})::int8)"),
            Kind::Float => format!("to_jsonb((({x})::float8)::text)"),
            Kind::Numeric if Self::is_decimal(typmod) => format!(
                "CASE WHEN ({x})::text IN ('NaN', 'Infinity', '-Infinity') THEN NULL \
                 ELSE to_jsonb(({x})::text) END"
            ),
            Kind::Numeric | Kind::Enum => format!("to_jsonb(({x})::text)"),
            Kind::Text | Kind::Json | Kind::Uuid => nn(format!("to_jsonb(format('%s', {x}))")),
            Kind::Bytea => format!("to_jsonb(encode({x}, 'hex'))"),
            Kind::Date => {
                format!("CASE WHEN isfinite({x}) THEN to_jsonb(({x}) - DATE '1970-01-01') END")
            }
            Kind::Time => {
                format!("to_jsonb(round(extract(epoch FROM {x})::numeric * 1000000)::int8)")
            }
            Kind::Timestamp | Kind::TimestampTz => format!("pg_temp.export_us({x})"),
            Kind::Interval => format!("pg_temp.export_interval({x})"),
            Kind::Money => format!("to_jsonb((({x})::numeric * 100)::int8)"),
            Kind::Point => nn(format!(
                "jsonb_build_object('x', to_jsonb((({x})[0])::text), \
                 'y', to_jsonb((({x})[1])::text))"
            )),
            Kind::Hstore => format!("{}.hstore_to_jsonb({x})", quote_ident(&t.nsp)),
            Kind::Domain(base) => {
                let cast = format!("({x})::{}", self.t(base).regtype);
                self.canon(base, t.typmod, &cast, depth)
            }
            Kind::Array(elem) => {
                let a = format!("a{depth}");
                let inner = self.canon(elem, typmod, &format!("{a}.e"), depth + 1);
                nn(format!(
                    "coalesce((SELECT jsonb_agg({inner} ORDER BY {a}.o) FROM \
                     (SELECT unnest({x}) AS e, generate_series(1, cardinality({x})) AS o) {a}), \
                     '[]'::jsonb)"
                ))
            }
            Kind::Composite(relid) => {
                let fields: Vec<String> = self.attrs[&relid]
                    .iter()
                    .map(|(n, ft, fm)| {
                        let e = self.canon(*ft, *fm, &format!("({x}).{}", quote_ident(n)), depth);
                        format!("'{}', {e}", n.replace('\'', "''"))
                    })
                    .collect();
                format!(
                    "CASE WHEN num_nulls({x}) = 1 THEN NULL ELSE jsonb_build_object({}) END",
                    fields.join(", ")
                )
            }
            Kind::Range(sub) => {
                let lo = self.canon(sub, -1, &format!("lower({x})"), depth);
                let hi = self.canon(sub, -1, &format!("upper({x})"), depth);
                nn(format!(
                    "jsonb_build_object('lower', {lo}, 'upper', {hi}, \
                     'lower_inclusive', lower_inc({x}), 'upper_inclusive', upper_inc({x}), \
                     'empty', isempty({x}))"
                ))
            }
            Kind::Multirange(range) => {
                let m = format!("m{depth}");
                let inner = self.canon(range, -1, &format!("{m}.r"), depth + 1);
                nn(format!(
                    "coalesce((SELECT jsonb_agg({inner} ORDER BY {m}.o) FROM \
                     unnest({x}) WITH ORDINALITY AS {m}(r, o)), '[]'::jsonb)"
                ))
            }
            Kind::Unsupported => format!("to_jsonb(encode({}({x}), 'hex'))", t.send),
        }
    }

    /// Both sides' values in one comparable form: floats as the Debug text of the parsed
    /// f64 (exact; NaN as "NaN"), everything else as is, recursively.
    fn normalize(&self, oid: u32, v: &Value) -> Value {
        if v.is_null() {
            return Value::Null;
        }
        match self.kind(oid) {
            Kind::Float => norm_float(v),
            Kind::Point => map_object(v, |k, x| match k {
                "x" | "y" => norm_float(x),
                _ => x.clone(),
            }),
            Kind::Domain(base) => self.normalize(base, v),
            Kind::Array(elem) => match v {
                Value::Array(items) => {
                    Value::Array(items.iter().map(|i| self.normalize(elem, i)).collect())
                }
                other => other.clone(),
            },
            Kind::Multirange(range) => match v {
                Value::Array(items) => {
                    Value::Array(items.iter().map(|i| self.normalize(range, i)).collect())
                }
                other => other.clone(),
            },
            Kind::Composite(relid) => {
                let fields = &self.attrs[&relid];
                map_object(v, |k, x| match fields.iter().find(|(n, _, _)| n == k) {
                    Some((_, ft, _)) => self.normalize(*ft, x),
                    None => x.clone(),
                })
            }
            Kind::Interval => match v {
                Value::Object(m) if m.len() == 3 => Value::Array(
                    ["months", "days", "nanoseconds"]
                        .iter()
                        .map(|k| m.get(*k).cloned().unwrap_or(Value::Null))
                        .collect(),
                ),
                other => other.clone(),
            },
            Kind::Range(sub) => map_object(v, |k, x| match k {
                "lower" | "upper" => self.normalize(sub, x),
                _ => x.clone(),
            }),
            _ => v.clone(),
        }
    }
}

fn map_object(v: &Value, f: impl Fn(&str, &Value) -> Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, x)| (k.clone(), f(k, x))).collect()),
        other => other.clone(),
    }
}

fn norm_float(v: &Value) -> Value {
    let Some(s) = v.as_str() else {
        return v.clone();
    };
    let f = match s {
        "NaN" => f64::NAN,
        "Infinity" => f64::INFINITY,
        "-Infinity" => f64::NEG_INFINITY,
        s => match s.parse::<f64>() {
            Ok(f) => f,
            Err(_) => return v.clone(),
        },
    };
    Value::String(if f.is_nan() {
        "NaN".into()
    } else {
        format!("{f:?}")
    })
}

/// A session for the oracle: fixed output settings and two helpers.
async fn oracle_session(w: &World, db: &str) -> Client {
    let client = w.pg.conn(db).connect().await.expect("connect");
    client
        .batch_execute(&format!(
            "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; \
             SET extra_float_digits = 1; SET bytea_output = 'hex'; \
             CREATE FUNCTION pg_temp.export_us(x timestamptz) RETURNS jsonb LANGUAGE sql \
             IMMUTABLE AS $$ SELECT CASE WHEN isfinite(x) THEN (SELECT CASE WHEN v {I64_RANGE} \
             THEN to_jsonb(v::int8) END FROM (SELECT \
             extract(epoch FROM date_trunc('second', x))::numeric * 1000000 \
             + extract(microseconds FROM x)::numeric % 1000000 AS v) s) END $$; \
             CREATE FUNCTION pg_temp.export_us(x timestamp) RETURNS jsonb LANGUAGE sql \
             IMMUTABLE AS $$ SELECT CASE WHEN isfinite(x) THEN (SELECT CASE WHEN v {I64_RANGE} \
             THEN to_jsonb(v::int8) END FROM (SELECT \
             extract(epoch FROM date_trunc('second', x))::numeric * 1000000 \
             + extract(microseconds FROM x)::numeric % 1000000 AS v) s) END $$; \
             CREATE FUNCTION pg_temp.export_interval(x interval) RETURNS jsonb LANGUAGE sql \
             IMMUTABLE AS $$ SELECT CASE WHEN isfinite(x) THEN (SELECT CASE WHEN ns {I64_RANGE} \
             THEN jsonb_build_array(m, d, ns::int8) END FROM (SELECT \
             (extract(year FROM x)::numeric * 12 + extract(month FROM x)::numeric)::int8 AS m, \
             extract(day FROM x)::int8 AS d, \
             (extract(hour FROM x)::numeric * 3600000000 + extract(minute FROM x)::numeric * 60000000 \
             + extract(microseconds FROM x)::numeric) * 1000 AS ns) s) END $$;"
        ))
        .await
        .expect("set up the oracle session");
    client
}

async fn server_version(client: &Client) -> u32 {
    let v: String = client
        .query_one("SHOW server_version_num", &[])
        .await
        .unwrap()
        .get(0);
    v.parse().unwrap()
}

/// The columns the archive holds (generated columns are not copied), in order.
async fn columns(client: &Client, qname: &str) -> Vec<Col> {
    let sql = "SELECT attname::text, atttypid, atttypmod, format_type(atttypid, atttypmod), \
               attnotnull \
               FROM pg_attribute WHERE attrelid = $1::text::regclass AND attnum > 0 \
               AND NOT attisdropped AND attgenerated = '' ORDER BY attnum";
    let plain = client.query(sql, &[&qname]).await.expect("read columns");
    client.batch_execute("SET search_path = ''").await.unwrap();
    let qualified = client.query(sql, &[&qname]).await.expect("read columns");
    client.batch_execute("RESET search_path").await.unwrap();
    plain
        .iter()
        .zip(&qualified)
        .map(|(r, q)| Col {
            name: r.get(0),
            oid: r.get(1),
            typmod: r.get(2),
            pg_type: r.get(3),
            pg_type_qualified: q.get(3),
            not_null: r.get(4),
        })
        .collect()
}

/// Every row of `qname` (ONLY: the export holds the table's own rows), canonical.
/// `text`: the table is exported as COPY text, each value as its output function
/// prints it with an empty search_path (reg* values schema-qualified).
async fn server_rows(
    client: &Client,
    cat: &Catalog,
    qname: &str,
    cols: &[Col],
    text: bool,
) -> Vec<Vec<Value>> {
    let exprs: Vec<String> = cols
        .iter()
        .map(|c| {
            let x = quote_ident(&c.name);
            if text {
                format!("CASE WHEN {x} IS NULL THEN NULL ELSE to_jsonb(format('%s', {x})) END")
            } else {
                cat.canon(c.oid, c.typmod, &x, 0)
            }
        })
        .collect();
    let sql = format!(
        "SELECT to_jsonb(ARRAY[{}]::jsonb[])::text FROM ONLY {qname}",
        exprs.join(", ")
    );
    if text {
        client.batch_execute("SET search_path = ''").await.unwrap();
    }
    let rows = client.query(&sql, &[]).await;
    if text {
        client.batch_execute("RESET search_path").await.unwrap();
    }
    rows.unwrap_or_else(|e| panic!("oracle query on {qname} failed: {e:?}\n{sql}"))
        .iter()
        .map(|r| {
            let text: String = r.get(0);
            match serde_json::from_str(&text).expect("jsonb text") {
                Value::Array(v) => v,
                other => panic!("not an array: {other}"),
            }
        })
        .collect()
}

/// Tables whose data a backup holds: ordinary tables with at least one copied column.
async fn data_tables(client: &Client) -> Vec<(String, String, String)> {
    client
        .query(
            "SELECT n.nspname::text, c.relname::text, format('%I.%I', n.nspname, c.relname) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
             AND n.nspname !~ '^pg_' AND EXISTS (SELECT 1 FROM pg_attribute a \
               WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
               AND a.attgenerated = '') ORDER BY 3",
            &[],
        )
        .await
        .expect("list tables")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

/// Compares an export (its `--json` report and what the reader read) with the live
/// database `db`: the table set against the report, folder names, files, row counts,
/// field names, Arrow types, `pgbunker.pg_type`, file key-value metadata and every
/// value. Returns the problems found.
async fn check_export(w: &World, db: &str, report: &Value, read: &Value, o: Opts) -> Vec<String> {
    let o = Opts {
        arrow_ipc: report["format"] == "arrow",
        ..o
    };
    let client = oracle_session(w, db).await;
    let version = server_version(&client).await;
    let cat = Catalog::load(&client, version).await;
    let sets = datasets(read);
    let mut problems = Vec::new();
    // Besides the parts, only _pgbunker_export.json, written last (README).
    let mut stray: Vec<&str> = read["stray_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    if !stray.contains(&SUMMARY) {
        problems.push(format!("no {SUMMARY} in a complete export"));
    }
    stray.retain(|f| *f != SUMMARY);
    if !stray.is_empty() {
        problems.push(format!("files that are not parts: {stray:?}"));
    }
    let backup_id = report["backup_id"].as_str().unwrap_or_default().to_owned();
    if backup_id.is_empty() {
        problems.push(format!("no backup_id in the report: {report}"));
    }
    let mut seen = BTreeSet::new();
    let mut total_rows = 0u64;
    for t in report["tables"].as_array().expect("tables in the report") {
        let (schema, name) = (t["schema"].as_str().unwrap(), t["name"].as_str().unwrap());
        total_rows += t["rows"].as_u64().unwrap_or(0);
        let qname: String = client
            .query_one(
                "SELECT format('%I.%I', $1::text, $2::text)",
                &[&schema, &name],
            )
            .await
            .unwrap()
            .get(0);
        let dir = format!("{}.{}", encode_name(schema), encode_name(name));
        // %xx in lower case is accepted too.
        let plain = format!("{schema}.{name}").into_bytes();
        let ds = sets.get(&dir).copied().or_else(|| {
            sets.iter()
                .find(|(k, _)| percent_decode(k) == plain)
                .map(|(_, v)| *v)
        });
        let Some(ds) = ds else {
            problems.push(format!(
                "{qname}: no dataset folder {dir} (folders: {:?})",
                sets.keys().collect::<Vec<_>>()
            ));
            continue;
        };
        let ds_name = ds["name"].as_str().unwrap().to_owned();
        seen.insert(ds_name.clone());
        let mut report_files: Vec<String> = t["files"]
            .as_array()
            .map(|f| f.iter().map(|x| x.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        report_files.sort();
        let read_files: Vec<String> = ds["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_owned())
            .collect();
        if report_files != read_files {
            problems.push(format!(
                "{qname}: the report lists files {report_files:?}, the folder holds {read_files:?}"
            ));
        }
        let rows = t["rows"].as_u64().unwrap_or(u64::MAX);
        if ds["num_rows"].as_u64() != Some(rows) {
            problems.push(format!(
                "{qname}: the report says {rows} rows, the files hold {}",
                ds["num_rows"]
            ));
        }
        check_table(
            &client,
            &cat,
            version,
            (schema, name, &qname),
            &backup_id,
            ds,
            o,
            &mut problems,
        )
        .await;
    }
    if report["rows"].as_u64() != Some(total_rows) {
        problems.push(format!(
            "the report's rows {} is not the sum over its tables {total_rows}",
            report["rows"]
        ));
    }
    for name in sets.keys() {
        if !seen.contains(name) {
            problems.push(format!("dataset {name} is not in the report"));
        }
    }
    problems
}

/// Schema, metadata and every value of one exported table.
#[allow(clippy::too_many_arguments)]
async fn check_table(
    client: &Client,
    cat: &Catalog,
    version: u32,
    (schema, name, qname): (&str, &str, &str),
    backup_id: &str,
    ds: &Value,
    o: Opts,
    problems: &mut Vec<String>,
) {
    let cols = columns(client, qname).await;
    let text = cols.iter().any(|c| cat.needs_text(c.oid, 0));
    let fields = ds["fields"].as_array().unwrap();
    let names: Vec<&str> = fields.iter().map(|f| f["name"].as_str().unwrap()).collect();
    let want_names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
    if names != want_names {
        problems.push(format!(
            "{qname}: exported columns {names:?}, the table's copied columns are {want_names:?}"
        ));
        return;
    }
    for (f, c) in fields.iter().zip(&cols) {
        let want = if text {
            "string".to_owned()
        } else {
            cat.arrow(c.oid, c.typmod, o)
        };
        if !same_arrow(f["compact"].as_str().unwrap_or_default(), &want) {
            problems.push(format!(
                "{qname}.{} ({}): Arrow type {} (pyarrow: {}), expected {want}",
                c.name, c.pg_type, f["compact"], f["type"]
            ));
        }
        if !c.is_pg_type(&f["metadata"]["pgbunker.pg_type"]) {
            problems.push(format!(
                "{qname}.{}: field metadata pgbunker.pg_type = {}, expected {:?} (all: {})",
                c.name, f["metadata"]["pgbunker.pg_type"], c.pg_type, f["metadata"]
            ));
        }
        // Nullability follows NOT NULL (README), except that a column whose values may
        // become NULL as special values may be nullable anyway.
        let nullable = f["nullable"].as_bool().unwrap_or(true);
        let special = !text && cat.can_be_special(c.oid, c.typmod);
        if nullable == c.not_null && !(nullable && special) {
            problems.push(format!(
                "{qname}.{} ({}): nullable is {nullable}, the column is{} NOT NULL",
                c.name,
                c.pg_type,
                if c.not_null { "" } else { " not" }
            ));
        }
        if !text && cat.kind(c.oid) == Kind::Money && f["metadata"]["pgbunker.unit"].is_null() {
            problems.push(format!(
                "{qname}.{}: money field without pgbunker.unit metadata ({})",
                c.name, f["metadata"]
            ));
        }
    }
    for (i, md) in ds["file_metadata"].as_array().unwrap().iter().enumerate() {
        let file = &ds["files"][i];
        let expect = [
            ("pgbunker.backup_id", backup_id.to_owned()),
            ("pgbunker.source_server_version", version.to_string()),
            ("pgbunker.export_format", "1".to_owned()),
        ];
        // The quoted SQL name: quoted where needed (format's %I) or everywhere.
        let table = md["pgbunker.table"].as_str().unwrap_or_default();
        if table != qname && table != format!("{}.{}", quote_ident(schema), quote_ident(name)) {
            problems.push(format!(
                "{file}: key-value pgbunker.table = {table:?}, expected {qname:?}"
            ));
        }
        for (k, v) in expect {
            if md[k] != v.as_str() {
                problems.push(format!("{file}: key-value {k} = {}, expected {v:?}", md[k]));
            }
        }
        if md["pgbunker.snapshot_time"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
        {
            problems.push(format!("{file}: no pgbunker.snapshot_time ({md})"));
        }
        let listed: Vec<Value> = md["pgbunker.columns"]
            .as_str()
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default();
        let same = listed.len() == cols.len()
            && listed
                .iter()
                .zip(&cols)
                .all(|(l, c)| l["name"] == c.name.as_str() && c.is_pg_type(&l["pg_type"]));
        if !same {
            let want: Vec<(&str, &str)> = cols
                .iter()
                .map(|c| (c.name.as_str(), c.pg_type.as_str()))
                .collect();
            problems.push(format!(
                "{file}: pgbunker.columns = {}, expected names and pg types {want:?}",
                md["pgbunker.columns"]
            ));
        }
    }

    let norm = |row: &[Value]| -> Vec<Value> {
        row.iter()
            .zip(&cols)
            .map(|(v, c)| cat.normalize(c.oid, v))
            .collect()
    };
    let mut want: Vec<Vec<Value>> = server_rows(client, cat, qname, &cols, text)
        .await
        .iter()
        .map(|r| norm(r))
        .collect();
    let mut got: Vec<Vec<Value>> = ds["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| norm(r.as_array().unwrap()))
        .collect();
    let key = |r: &Vec<Value>| serde_json::to_string(r).unwrap();
    want.sort_by_cached_key(key);
    got.sort_by_cached_key(key);
    if want != got {
        problems.extend(row_diff(qname, &cols, &want, &got));
    }
}

/// Names what differs, pairing rows by their first column.
fn row_diff(qname: &str, cols: &[Col], want: &[Vec<Value>], got: &[Vec<Value>]) -> Vec<String> {
    let mut out = vec![format!(
        "{qname}: rows differ (server {} rows, export {} rows)",
        want.len(),
        got.len()
    )];
    let by_key = |rows: &[Vec<Value>]| {
        let mut m: BTreeMap<String, Vec<Vec<Value>>> = BTreeMap::new();
        for r in rows {
            m.entry(r[0].to_string()).or_default().push(r.clone());
        }
        m
    };
    let (w, g) = (by_key(want), by_key(got));
    let keys: BTreeSet<&String> = w.keys().chain(g.keys()).collect();
    for k in keys {
        let (a, b) = (
            w.get(k).map(Vec::as_slice).unwrap_or(&[]),
            g.get(k).map(Vec::as_slice).unwrap_or(&[]),
        );
        if a == b {
            continue;
        }
        if a.len() == 1 && b.len() == 1 {
            for (i, c) in cols.iter().enumerate() {
                if a[0][i] != b[0][i] {
                    out.push(format!(
                        "  {qname}.{} ({}) where {} = {k}: server {}, export {}",
                        c.name,
                        c.pg_type,
                        cols[0].name,
                        show(&a[0][i]),
                        show(&b[0][i])
                    ));
                }
            }
        } else {
            out.push(format!(
                "  {qname} where {} = {}: {} row(s) on the server, {} in the export",
                cols[0].name,
                show(&serde_json::from_str(k).unwrap_or(Value::Null)),
                a.len(),
                b.len()
            ));
        }
        if out.len() > 60 {
            out.push("  …".into());
            break;
        }
    }
    out
}

/// The table set of a full export is every table with data; an empty table may be
/// left out. Checks `report` against the database.
async fn check_table_set(w: &World, db: &str, report: &Value) -> Vec<String> {
    let client = w.pg.conn(db).connect().await.unwrap();
    let exported: BTreeSet<(String, String)> = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["schema"].as_str().unwrap().to_owned(),
                t["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut problems = Vec::new();
    let mut want = BTreeSet::new();
    for (schema, name, qname) in data_tables(&client).await {
        let rows: i64 = client
            .query_one(&format!("SELECT count(*) FROM ONLY {qname}"), &[])
            .await
            .unwrap()
            .get(0);
        let key = (schema, name);
        if rows > 0 && !exported.contains(&key) {
            problems.push(format!("{qname} ({rows} rows) was not exported"));
        }
        want.insert(key);
    }
    for t in &exported {
        if !want.contains(t) {
            problems.push(format!(
                "{}.{} was exported but is not a table with data",
                t.0, t.1
            ));
        }
    }
    problems
}

/// Every file below `dir` with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    files(dir)
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Every type of the contract's mapping table
// ---------------------------------------------------------------------------

/// One table with a column per mapped type, rows with NULLs, arrays (NULL element,
/// empty, 2-D), a composite with NULL fields, ranges (empty, unbounded), special values
/// and extremes. Version-dependent values are added on the servers that have them.
fn every_type_sql(version: u32) -> String {
    let mut sql = String::from(
        r#"
CREATE EXTENSION hstore;
CREATE EXTENSION citext;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'ünï "q"');
CREATE TYPE pair AS (a int4, b text, c numeric(6,2), d mood);
CREATE DOMAIN posint AS int4 CHECK (VALUE > 0);
CREATE DOMAIN price AS numeric(8,2);
CREATE TABLE everything (
    id int4 PRIMARY KEY,
    c_bool bool, c_int2 int2, c_int4 int4, c_int8 int8, c_oid oid,
    c_float4 float4, c_float8 float8,
    c_num_10_2 numeric(10,2), c_num_38_10 numeric(38,10), c_num_50_5 numeric(50,5),
    c_num_76_0 numeric(76,0), c_num_100_20 numeric(100,20), c_num numeric,
    c_text text, c_varchar varchar(10), c_bpchar char(5), c_name name, c_char "char",
    c_citext citext, c_xml xml,
    c_json json, c_jsonb jsonb, c_bytea bytea,
    c_date date, c_time time, c_timetz timetz, c_ts timestamp, c_tstz timestamptz,
    c_interval interval,
    c_uuid uuid, c_enum mood, c_domain posint, c_domain_num price,
    c_arr_int4 int4[], c_arr_text text[], c_arr_2d int4[][], c_arr_num numeric(6,2)[],
    c_arr_enum mood[], c_arr_pair pair[], c_arr_date date[],
    c_pair pair,
    c_int4range int4range, c_tsrange tsrange, c_daterange daterange, c_numrange numrange,
    c_inet inet, c_cidr cidr, c_macaddr macaddr, c_macaddr8 macaddr8,
    c_money money, c_bit bit(4), c_varbit varbit(8), c_tsvector tsvector, c_pg_lsn pg_lsn,
    c_point point, c_hstore hstore
);
-- 1: ordinary values everywhere
INSERT INTO everything VALUES (
    1, true, 1, 2, 3, 12345,
    1.1, 0.1,
    12345678.91, 1.5, 1234567890123456789012345678901234567890.12345, 1, 3.14159, 12345.6789000,
    E'hello, "world"\n✓', 'varchar', 'ab', 'a_name', 'x', 'CiText', '<a b="1">&amp;</a>',
    '{"b": 1,  "a": [true, null]}', '{"b": 1, "a": [true, null]}', '\xdeadbeef00',
    '2024-02-29', '12:34:56.789012', '12:34:56.789+05:30', '2024-02-29 12:34:56.789012',
    '2024-02-29 12:34:56.789012+02', '1 year 2 mons 3 days 04:05:06.789012',
    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'happy', 7, 1.5,
    '{1,2,3}', '{a,"b c",NULL}', '{{1,2},{3,4}}', '{1.5,2.25}', '{sad,"ünï \"q\""}',
    ARRAY[ROW(1, 'x', 1.5, 'ok')::pair], '{2020-01-01}',
    ROW(1, 'one', 2.5, 'sad'),
    '[1,10)', '[2020-01-01,2021-01-01)', '[2020-01-01,2020-02-01)', '(0.5,1.5]',
    '192.168.1.5', '192.168.0.0/16', '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05',
    1234.56::numeric::money, B'1010', B'101', 'a:1A fat:2B,4C cat:5D', '16/B374D848',
    '(1.5,-2)', 'a=>1, b=>NULL');
-- 2: NULL everywhere
INSERT INTO everything (id) VALUES (2);
-- 3: special values, empty values, NULL elements and fields, empty and unbounded ranges
INSERT INTO everything (id, c_float4, c_float8, c_num_10_2, c_num_38_10, c_num_50_5,
    c_num_100_20, c_num, c_text, c_varchar, c_bpchar, c_bytea, c_json, c_jsonb,
    c_date, c_ts, c_tstz, c_interval, c_domain_num,
    c_arr_int4, c_arr_text, c_arr_2d, c_arr_num, c_arr_enum, c_arr_pair, c_arr_date,
    c_pair, c_int4range, c_tsrange, c_daterange, c_numrange, c_hstore, c_varbit,
    c_tsvector, c_point)
VALUES (3, 'NaN', '-Infinity', 'NaN', 'NaN', 'NaN',
    'NaN', 'NaN', '', '', '', '', '  [1, 2]  ', '{}',
    'infinity', '-infinity', 'infinity', '-1 mons +40 days -00:00:00.000001', 123456.78,
    '{1,NULL,3}', '{}', '{{1,2,3},{4,5,6}}', '{1.50,NULL,NaN}', '{}',
    ARRAY[ROW(1, NULL, NULL, NULL)::pair, NULL], '{infinity,2020-01-01,NULL}',
    ROW(NULL, NULL, NULL, NULL), 'empty', '[2020-01-01,)', '(,)', '(,1.5]', '', B'',
    '', '(NaN,-Infinity)');
-- 4: extremes
INSERT INTO everything (id, c_bool, c_int2, c_int4, c_int8, c_oid, c_float4, c_float8,
    c_num_10_2, c_num_38_10, c_num_50_5, c_num_76_0, c_num_100_20, c_num,
    c_text, c_bpchar, c_name, c_char, c_citext,
    c_date, c_time, c_timetz, c_ts, c_tstz, c_interval, c_uuid, c_enum,
    c_arr_int4, c_int4range, c_tsrange, c_numrange,
    c_inet, c_cidr, c_money, c_bit, c_varbit, c_pg_lsn, c_point, c_hstore)
VALUES (4, false, -32768, -2147483648, -9223372036854775808, 4294967295, '1.4e-45', '-0',
    -99999999.99, 9999999999999999999999999999.9999999999,
    ('-' || repeat('9', 45) || '.99999')::numeric, repeat('9', 76)::numeric,
    ('-' || repeat('9', 80) || '.' || repeat('0', 19) || '1')::numeric,
    -0.000000000000000000001,
    E'tab\there\\ é 😀', 'abcde', repeat('n', 63), 'é', 'MiXeD',
    '4714-11-24 BC', '24:00:00', '24:00:00-15:59', '4714-11-24 00:00:00 BC',
    '294276-12-31 23:59:59.999999+00', '-178000000 years -3 days -04:05:06.000001',
    'ffffffff-ffff-ffff-ffff-ffffffffffff', 'ünï "q"',
    ARRAY[2147483647, -2147483648], '[,5)', '[-infinity,2020-01-01 00:00:00.000001)',
    '[1.5,NaN)',
    '::1', '::/0', '-92233720368547758.08'::numeric::money, B'0000', B'11111111',
    'FFFFFFFF/FFFFFFFF', '(1e300,-1e-300)', '"a"=>NULL, "b"=>"", "ü k"=>"v\"q"');
-- 5: out of the Arrow types' ranges, and the other ends
INSERT INTO everything (id, c_ts, c_interval, c_date, c_time, c_inet, c_tstz, c_money,
    c_int8, c_float4, c_float8, c_domain_num)
VALUES (5, '294276-12-31 23:59:59.999999', '2147483647 days 2147483647:59:59.999999',
    '5874897-12-31', '00:00:00', '10.1.2.3/8', '4714-11-24 00:00:00+00 BC',
    '92233720368547758.07'::numeric::money, 9223372036854775807, '3.4028235e38',
    '1.7976931348623157e308', 'NaN');

-- for --on-special fail and for --unsupported
CREATE TABLE specials (id int4 PRIMARY KEY, c_date date);
INSERT INTO specials VALUES (1, '2020-01-01'), (2, 'infinity');
CREATE TABLE odd (id int4 PRIMARY KEY, c_shape box);
INSERT INTO odd VALUES (1, '(3,4),(1,2)'), (2, NULL);
"#,
    );
    if version >= 140000 {
        sql.push_str(
            "ALTER TABLE everything ADD COLUMN c_int4multirange int4multirange;
             UPDATE everything SET c_int4multirange = '{[1,3), [5,8)}' WHERE id = 1;
             UPDATE everything SET c_int4multirange = '{}', c_num = 'Infinity' WHERE id = 3;
             UPDATE everything SET c_int4multirange = '{(,0], [10,)}', c_num = '-Infinity'
                 WHERE id = 4;\n",
        );
    }
    if version >= 150000 {
        // Negative scale and a scale above the precision.
        sql.push_str(
            "ALTER TABLE everything ADD COLUMN c_num_neg numeric(5,-2),
                 ADD COLUMN c_num_small numeric(3,5);
             UPDATE everything SET c_num_neg = 12345, c_num_small = 0.00123 WHERE id = 1;
             UPDATE everything SET c_num_neg = -9999900, c_num_small = -0.00999 WHERE id = 4;\n",
        );
    }
    if version >= 170000 {
        sql.push_str(
            "INSERT INTO everything (id, c_interval) VALUES (6, 'infinity'), (7, '-infinity');\n",
        );
    }
    sql
}

/// The columns that hold a special value (or a value out of the Arrow type's range)
/// in [`every_type_sql`]: each must come back NULL and be named in a warning.
fn special_columns() -> Vec<&'static str> {
    vec![
        "c_num_10_2",   // NaN in numeric(10,2)
        "c_num_38_10",  // NaN in numeric(38,10)
        "c_num_50_5",   // NaN in a Decimal256
        "c_date",       // infinity
        "c_ts",         // -infinity; 294276 AD is past Timestamp(µs)'s i64
        "c_tstz",       // infinity; 294276 AD
        "c_interval",   // 2147483647 hours: nanoseconds past i64 (and ±infinity on 17+)
        "c_arr_num",    // a NaN element of numeric(6,2)[]
        "c_arr_date",   // an infinity element
        "c_tsrange",    // a -infinity bound
        "c_domain_num", // NaN in a domain over numeric(8,2)
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn every_mapped_type_exports_as_the_server_has_it() {
    let w = World::start();
    let version = w.server_version().await;
    w.empty_db("types").await;
    run_sql(&w, "types", &every_type_sql(version)).await;
    let repo = w.init_repo("repo");
    ok(w.backup(&repo, "types", &[]));
    let out = w.dir.path().join("out");
    let out_s = out.display().to_string();

    // The box column is unsupported: by default the export refuses, naming table,
    // column and type.
    let refused = export(
        &repo,
        &w.dir.path().join("refused").display().to_string(),
        &[],
        &[],
    );
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    let msg = stderr(&refused);
    for needle in ["odd", "c_shape", "box"] {
        assert!(msg.contains(needle), "the refusal names {needle:?}:\n{msg}");
    }

    // Everything else, with the defaults.
    let report = export_ok(&repo, &out_s, &["-T", "public.odd"], &[]);
    assert_eq!(report["format"], "parquet", "{report}");
    let read = read_export(&out_s, None);
    let mut problems = check_export(&w, "types", &report, &read, Opts::default()).await;
    let names: Vec<String> = datasets(&read).keys().cloned().collect();
    if names != ["public.everything", "public.specials"] {
        problems.push(format!(
            "datasets {names:?}, expected public.everything and public.specials"
        ));
    }
    // Special values came back NULL (checked above) and each column is warned about.
    let warns = warnings(&report);
    for col in special_columns() {
        if !warned(&warns, "everything", col) {
            problems.push(format!("no warning names everything.{col}: {warns:#?}"));
        }
    }
    if !warned(&warns, "everything", "c_arr_2d") {
        problems.push(format!(
            "no warning about the 2-D array c_arr_2d: {warns:#?}"
        ));
    }
    if warned(&warns, "everything", "c_arr_int4") || warned(&warns, "everything", "c_float8") {
        problems.push(format!(
            "a warning about a column without special values: {warns:#?}"
        ));
    }
    // Defaults: zstd, one row group for these few rows.
    for ds in read["datasets"].as_array().unwrap() {
        for p in ds["parquet"].as_array().unwrap() {
            if p["compression"] != serde_json::json!(["ZSTD"]) || p["row_groups"] != 1 {
                problems.push(format!(
                    "{}: parquet facts {p}, expected ZSTD in one row group",
                    ds["name"]
                ));
            }
        }
    }
    assert_clean("default export of every type", &problems);

    // The same backup as Arrow IPC files reads back equal, value for value.
    let arrow_out = w.dir.path().join("arrow").display().to_string();
    let arrow_report = export_ok(&repo, &arrow_out, &["--format", "arrow", "-T", "odd"], &[]);
    assert_eq!(arrow_report["format"], "arrow", "{arrow_report}");
    let arrow_read = read_export(&arrow_out, None);
    let mut problems = check_export(&w, "types", &arrow_report, &arrow_read, Opts::default()).await;
    for (name, ds) in datasets(&arrow_read) {
        for f in ds["files"].as_array().unwrap() {
            if !f.as_str().unwrap().ends_with(".arrow") {
                problems.push(format!("{name}: file {f} is not .arrow"));
            }
        }
        let pq = datasets(&read)[&name];
        problems.extend(same_read(&name, ds, pq));
    }
    assert_clean("--format arrow", &problems);

    // --unsupported binary: the send form, with a warning; -t selects the one table.
    let bin_out = w.dir.path().join("binary").display().to_string();
    let bin_report = export_ok(
        &repo,
        &bin_out,
        &["--unsupported", "binary", "-t", "odd"],
        &[],
    );
    let bin_read = read_export(&bin_out, None);
    let opts = Opts {
        unsupported_binary: true,
        ..Opts::default()
    };
    let mut problems = check_export(&w, "types", &bin_report, &bin_read, opts).await;
    let names: Vec<String> = datasets(&bin_read).keys().cloned().collect();
    if names != ["public.odd"] {
        problems.push(format!("-t odd exported {names:?}"));
    }
    if !warned(&warnings(&bin_report), "odd", "c_shape") {
        problems.push(format!("no warning names c_shape: {bin_report}"));
    }
    assert_clean("--unsupported binary -t odd", &problems);

    // --uuid-as text, a small row group size and snappy.
    let uuid_out = w.dir.path().join("uuid").display().to_string();
    let uuid_report = export_ok(
        &repo,
        &uuid_out,
        &[
            "--uuid-as",
            "text",
            "-t",
            "public.everything",
            "--row-group-size",
            "2",
            "--compression",
            "snappy",
        ],
        &[],
    );
    let uuid_read = read_export(&uuid_out, None);
    let opts = Opts {
        uuid_text: true,
        ..Opts::default()
    };
    let mut problems = check_export(&w, "types", &uuid_report, &uuid_read, opts).await;
    let ds = datasets(&uuid_read)["public.everything"];
    let groups: Vec<u64> = ds["parquet"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| {
            p["rows_per_group"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_u64().unwrap())
        })
        .collect();
    if groups.iter().any(|&n| n > 2)
        || groups.iter().sum::<u64>() != ds["num_rows"].as_u64().unwrap()
    {
        problems.push(format!("--row-group-size 2: row groups {groups:?}"));
    }
    for p in ds["parquet"].as_array().unwrap() {
        if p["compression"] != serde_json::json!(["SNAPPY"]) {
            problems.push(format!("--compression snappy: {p}"));
        }
    }
    assert_clean(
        "--uuid-as text --row-group-size 2 --compression snappy",
        &problems,
    );

    // --on-special fail: refused (exit 2), naming table, column and value; what it
    // wrote is removed.
    let fail_out = w.dir.path().join("fail");
    let failed = export(
        &repo,
        &fail_out.display().to_string(),
        &["--on-special", "fail", "-T", "odd"],
        &[],
    );
    assert_eq!(failed.status.code(), Some(2), "{}", stderr(&failed));
    let msg = stderr(&failed);
    assert!(
        (msg.contains("everything") && special_columns().iter().any(|c| msg.contains(c)))
            || (msg.contains("specials") && msg.contains("c_date")),
        "--on-special fail names the table and a column with a special value:\n{msg}"
    );
    let one = export(
        &repo,
        &fail_out.display().to_string(),
        &["--on-special", "fail", "-t", "specials"],
        &[],
    );
    assert_eq!(one.status.code(), Some(2), "{}", stderr(&one));
    let msg = stderr(&one);
    for needle in ["specials", "c_date", "infinity"] {
        assert!(
            msg.contains(needle),
            "--on-special fail names {needle:?}:\n{msg}"
        );
    }
    let left: Vec<PathBuf> = if fail_out.exists() {
        files(&fail_out)
    } else {
        Vec::new()
    };
    assert!(left.is_empty(), "a failed export leaves files: {left:?}");

    // Owner-only files and folders.
    for p in std::iter::once(out.clone()).chain(files(&out)) {
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        let want = if p.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode, want, "{} has mode {mode:o}", p.display());
    }
    for d in std::fs::read_dir(&out).unwrap().flatten() {
        if d.path().is_dir() {
            let mode = d.metadata().unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{} has mode {mode:o}", d.path().display());
        }
    }

    // _pgbunker_export.json lists what the report lists.
    let summary: Value =
        serde_json::from_slice(&std::fs::read(out.join(SUMMARY)).unwrap()).expect("JSON");
    assert_eq!(summary["backup_id"], report["backup_id"], "{summary}");
    assert_eq!(summary["tables"], report["tables"], "{summary}");
    assert_eq!(summary["warnings"], report["warnings"], "{summary}");

    // An existing file is refused, and nothing is overwritten.
    let before = snapshot(&out);
    let again = export(&repo, &out_s, &["-T", "public.odd"], &[]);
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert!(
        snapshot(&out) == before,
        "the second export changed files in {out_s}"
    );

    // One existing part among new ones: still refused, and the stranger is kept.
    let partial = w.dir.path().join("partial");
    std::fs::create_dir_all(partial.join("public.specials")).unwrap();
    std::fs::write(
        partial.join("public.specials/part-00000.parquet"),
        b"not mine",
    )
    .unwrap();
    let clash = export(
        &repo,
        &partial.display().to_string(),
        &["-T", "public.odd"],
        &[],
    );
    assert_eq!(clash.status.code(), Some(2), "{}", stderr(&clash));
    assert_eq!(
        std::fs::read(partial.join("public.specials/part-00000.parquet")).unwrap(),
        b"not mine"
    );

    // A wrong key opens nothing and writes nothing.
    let wrong_out = w.dir.path().join("wrong");
    let wrong = export(
        &repo,
        &wrong_out.display().to_string(),
        &[],
        &[("PGBUNKER_KEY", OTHER_KEY)],
    );
    assert_eq!(wrong.status.code(), Some(6), "{}", stderr(&wrong));
    assert!(stderr(&wrong).contains("key"), "{}", stderr(&wrong));
    assert!(
        !wrong_out.exists() || files(&wrong_out).is_empty(),
        "a wrong key wrote files"
    );
}

// ---------------------------------------------------------------------------
// The fixtures
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn the_fixture_exports_as_the_server_has_it() {
    let w = World::start();
    let repo = w.backed_up().await;
    let out = w.dir.path().join("out").display().to_string();
    let report = export_ok(&repo, &out, &["-j", "2"], &[]);
    let read = read_export(&out, None);
    let mut problems = check_table_set(&w, "heart", &report).await;
    problems.extend(check_export(&w, "heart", &report, &read, Opts::default()).await);
    assert_clean("export of the heart_recovery fixture", &problems);
    assert!(
        warnings(&report).is_empty(),
        "the fixture has no special values: {:?}",
        warnings(&report)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_torture_fixture_exports_as_the_server_has_it() {
    let w = World::start();
    crate::torture::torture_db(&w, "torture").await;
    let repo = w.init_repo("repo");
    ok(w.backup(&repo, "torture", &["--skip-large-objects"]));

    // torture.awkward has types outside the mapping (tsquery, line, lseg, box, path,
    // polygon, circle): refused by default, naming table, column and type.
    let refused_out = w.dir.path().join("refused").display().to_string();
    let refused = export(&repo, &refused_out, &[], &[]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    let msg = stderr(&refused);
    assert!(
        msg.contains("awkward"),
        "the refusal names the table:\n{msg}"
    );
    assert!(
        [
            ("tsq", "tsquery"),
            ("ln", "line"),
            ("ls", "lseg"),
            ("bx", "box"),
            ("pth", "path"),
            ("poly", "polygon"),
            ("circ", "circle")
        ]
        .iter()
        .any(|(c, t)| msg.contains(c) && msg.contains(t)),
        "the refusal names a column and its type:\n{msg}"
    );

    // Leaving the table out works as is.
    let without_out = w.dir.path().join("without").display().to_string();
    let without = export_ok(&repo, &without_out, &["-T", "torture.awkward"], &[]);
    assert!(
        !without["tables"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "awkward"),
        "-T left it out"
    );

    // Everything, with the unsupported columns as their binary send form.
    let out = w.dir.path().join("out").display().to_string();
    let report = export_ok(&repo, &out, &["--unsupported", "binary", "-j", "2"], &[]);
    let read = read_export(&out, None);
    let opts = Opts {
        unsupported_binary: true,
        ..Opts::default()
    };
    let mut problems = check_table_set(&w, "torture", &report).await;
    problems.extend(check_export(&w, "torture", &report, &read, opts).await);
    let warns = warnings(&report);
    for col in ["tsq", "circ"] {
        if !warned(&warns, "awkward", col) {
            problems.push(format!(
                "no warning names awkward.{col} (binary): {warns:#?}"
            ));
        }
    }
    for (col, why) in [
        ("ts", "294276 AD"),
        ("d", "±infinity"),
        ("arr_int3d", "3-D"),
    ] {
        if !warned(&warns, "awkward", col) {
            problems.push(format!(
                "no warning names awkward.{col} ({why}): {warns:#?}"
            ));
        }
    }
    // A partitioned parent has no dataset of its own; its partitions do.
    let sets = datasets(&read);
    for parent in [
        "torture.measurements",
        "torture.hashed",
        "Mixed%20Case.Orders",
    ] {
        if sets.contains_key(parent) {
            problems.push(format!("partitioned parent {parent} has a dataset"));
        }
    }
    for part in [
        "torture.measurements_2025",
        "Mixed%20Case.Orders%20EU%202024",
    ] {
        if !sets.contains_key(part) {
            problems.push(format!(
                "partition {part} has no dataset: {:?}",
                sets.keys()
            ));
        }
    }
    for zero in ["torture.zero_columns", "torture.only_dropped"] {
        if sets.contains_key(zero) {
            problems.push(format!("zero-column table {zero} has a dataset"));
        }
    }
    assert_clean("export of the torture fixture", &problems);
}

/// A table with reg* and aclitem columns is held as COPY text (README): every column,
/// ordinary ones too, exports as Utf8 of the server's text form, COPY's escapes
/// decoded, NULL as null; a warning says so.
#[tokio::test(flavor = "multi_thread")]
async fn a_table_held_as_text_exports_its_columns_as_text() {
    let w = World::start();
    w.empty_db("refs").await;
    run_sql(&w, "refs", crate::text_copy::SOURCE).await;
    let repo = w.init_repo("repo");
    ok(w.backup(&repo, "refs", &["--chunk-size-kb", "64"]));
    let out = w.dir.path().join("out").display().to_string();
    let report = export_ok(&repo, &out, &["-j", "2"], &[]);
    let read = read_export(&out, None);
    let mut problems = check_table_set(&w, "refs", &report).await;
    problems.extend(check_export(&w, "refs", &report, &read, Opts::default()).await);
    let warns = warnings(&report);
    if !warns
        .iter()
        .any(|w| w.contains("\"refs\"") && w.contains("text format"))
    {
        problems.push(format!("no warning says app.refs is text: {warns:#?}"));
    }
    if warns.iter().any(|w| w.contains("plain")) {
        problems.push(format!("app.plain is binary, yet warned about: {warns:#?}"));
    }
    assert_clean("export of a table held as text", &problems);
}

// ---------------------------------------------------------------------------
// Object storage
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn an_export_to_s3_reads_back() {
    let server = S3Server::start().unwrap_or_else(|e| {
        panic!(
            "could not start the S3 test server: {e}\n\
             hint: pip install 'moto[server]' (or set PGBUNKER_MOTO_SERVER; .ci/run does)"
        )
    });
    server.create_bucket("exports").unwrap();
    let w = World::start();
    w.empty_db("small").await;
    run_sql(
        &w,
        "small",
        "CREATE SCHEMA \"Sales Q3\";
         CREATE TABLE \"Sales Q3\".\"Orders ✓\" (id int8 PRIMARY KEY, placed date, total numeric(12,2),
             tags text[], note text);
         INSERT INTO \"Sales Q3\".\"Orders ✓\"
             SELECT i, DATE '2024-07-01' + (i % 90), i * 1.25, ARRAY['a' || i % 3, NULL], repeat('x', i % 7)
             FROM generate_series(1, 5000) i;
         CREATE TABLE public.plain (id int4, v float8);
         INSERT INTO public.plain VALUES (1, 0.1), (2, NULL), (3, 'NaN');",
    )
    .await;
    let repo = w.init_repo("repo");
    ok(w.backup(&repo, "small", &[]));
    let url = server.repo_url("exports", "analytics/run1");
    let env = server.env();
    let report = export_ok(&repo, &url, &["--row-group-size", "1000"], &env);
    let read = read_export("exports/analytics/run1", Some(&server));
    let mut problems = check_table_set(&w, "small", &report).await;
    problems.extend(check_export(&w, "small", &report, &read, Opts::default()).await);
    let names: Vec<String> = datasets(&read).keys().cloned().collect();
    if names != ["Sales%20Q3.Orders%20%E2%9C%93", "public.plain"] {
        problems.push(format!("dataset folders {names:?}"));
    }
    assert_clean("export to S3", &problems);

    // The same URL again: the parts exist, so it is refused.
    let again = export(&repo, &url, &[], &env);
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
}
