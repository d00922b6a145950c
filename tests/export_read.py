#!/usr/bin/env python3
"""Reads a `pgbunker export` folder with pyarrow, independently of pgbunker's code, and
prints it as one JSON document on stdout: the judge the export tests (tests/it/export.rs)
compare with the live server.

    export_read.py DIR
    export_read.py --s3-endpoint http://127.0.0.1:PORT BUCKET/PREFIX   (AWS_* from the env)

Layout read: <root>/<schema>.<table>/part-NNNNN.parquet (or .arrow, Arrow IPC file format).
Every file below the root that is not such a part is listed under "stray_files".

Output:
    {"pyarrow": version,
     "stray_files": [...],
     "datasets": [{"name": "<dir name as on disk>", "files": [...], "num_rows": N,
                   "fields": [{"name", "type" (str of the Arrow type), "compact",
                               "nullable", "metadata": {...}}],
                   "schema_metadata": {...},            (first file's, without ARROW:schema)
                   "file_metadata": [{...} per file],    (Parquet footer key-value pairs, or
                                                          the IPC schema metadata)
                   "parquet": [{"row_groups", "rows_per_group", "compression"} per file],
                   "rows": [[value, ...], ...]}]}        (file order, row order)

"compact" is a type rendering that does not depend on list item names:
`list<int32>`, `struct<a: int32, b: string>`, `map<string, string>`,
`dictionary<int32, string>`, and `arrow.uuid(fixed_size_binary[16])` for a field that
carries an extension (a registered pyarrow extension type or ARROW:extension:name field
metadata).

Values, canonical and exact (the JSON carries no lossy floats):
    bool, ints                    JSON true/false, integers
    float16/32/64                 strings: repr() of the (widened) double, or "NaN",
                                  "Infinity", "-Infinity"
    decimal128/256                strings, fixed notation with the column's scale
    string / large / view         strings
    binary / fixed_size_binary    lower-case hex strings; arrow.uuid: "xxxxxxxx-xxxx-..."
    date32                        days since 1970-01-01 (integer)
    date64, timestamp, time, duration
                                  the stored integer in the type's unit (µs for us):
                                  exact for BC dates, years > 9999 and 24:00:00, which
                                  Python's datetime cannot hold
    month_day_nano_interval       [months, days, nanoseconds]
    dictionary                    the decoded value (enum label)
    list                          JSON arrays (recursively)
    struct                        JSON objects by field name (recursively)
    map                           JSON object when every key is a string, else [[k, v], ...]
    null                          null
"""

import argparse
import json
import os
import sys
import uuid

try:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.fs as pafs
    import pyarrow.ipc as ipc
    import pyarrow.parquet as pq
except ImportError as e:  # pragma: no cover - the hint is the point
    sys.stderr.write(
        f"pyarrow is not importable by {sys.executable}: {e}\n"
        "hint: .ci/run installs a venv with pyarrow at /opt/pgbunker-py; "
        "set PGBUNKER_PYTHON=/opt/pgbunker-py/bin/python\n"
    )
    sys.exit(3)


class Unhandled(Exception):
    pass


def ext_of(field):
    """(extension name or None, storage type) of a field."""
    t = field.type
    if isinstance(t, pa.BaseExtensionType):
        return t.extension_name, t.storage_type
    md = field.metadata or {}
    name = md.get(b"ARROW:extension:name")
    if name:
        return name.decode(), t
    return None, t


def compact(field):
    name, t = ext_of(field)
    inner = compact_type(t)
    return f"{name}({inner})" if name else inner


def compact_type(t):
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"list<{compact(t.value_field)}>"
    if pa.types.is_fixed_size_list(t):
        return f"fixed_size_list<{compact(t.value_field)}, {t.list_size}>"
    if pa.types.is_map(t):
        return f"map<{compact(t.key_field)}, {compact(t.item_field)}>"
    if pa.types.is_struct(t):
        inner = ", ".join(f"{t.field(i).name}: {compact(t.field(i))}" for i in range(t.num_fields))
        return f"struct<{inner}>"
    if pa.types.is_dictionary(t):
        return f"dictionary<{t.index_type}, {compact_type(t.value_type)}>"
    return str(t)


def float_text(x):
    if x is None:
        return None
    if x != x:
        return "NaN"
    if x == float("inf"):
        return "Infinity"
    if x == float("-inf"):
        return "-Infinity"
    return repr(float(x))


def values(arr, field):
    """Canonical Python values of one Arrow array (see the module doc)."""
    name, t = ext_of(field)
    if isinstance(arr.type, pa.BaseExtensionType):
        arr = arr.storage
    n = len(arr)
    if pa.types.is_null(t):
        return [None] * n
    valid = pc.is_valid(arr).to_pylist()

    if pa.types.is_list(t) or pa.types.is_large_list(t):
        offsets = arr.offsets.to_pylist()
        child = values(arr.values, t.value_field)
        return [child[offsets[i]:offsets[i + 1]] if valid[i] else None for i in range(n)]
    if pa.types.is_fixed_size_list(t):
        child = values(arr.values, t.value_field)
        k, base = t.list_size, arr.offset * t.list_size
        return [child[base + i * k: base + (i + 1) * k] if valid[i] else None for i in range(n)]
    if pa.types.is_map(t):
        offsets = arr.offsets.to_pylist()
        keys = values(arr.keys, t.key_field)
        items = values(arr.items, t.item_field)
        out = []
        for i in range(n):
            if not valid[i]:
                out.append(None)
                continue
            pairs = list(zip(keys[offsets[i]:offsets[i + 1]], items[offsets[i]:offsets[i + 1]]))
            if all(isinstance(k, str) for k, _ in pairs) and len({k for k, _ in pairs}) == len(pairs):
                out.append({k: v for k, v in pairs})
            else:
                out.append([[k, v] for k, v in pairs])
        return out
    if pa.types.is_struct(t):
        children = [values(arr.field(j), t.field(j)) for j in range(t.num_fields)]
        names = [t.field(j).name for j in range(t.num_fields)]
        return [
            {names[j]: children[j][i] for j in range(len(names))} if valid[i] else None
            for i in range(n)
        ]
    if pa.types.is_dictionary(t):
        decoded = arr.dictionary_decode()
        return values(decoded, pa.field(field.name, t.value_type))

    if pa.types.is_boolean(t) or pa.types.is_integer(t):
        return arr.to_pylist()
    if pa.types.is_floating(t):
        return [float_text(x) for x in arr.to_pylist()]
    if pa.types.is_decimal(t):
        return [None if d is None else format(d, "f") for d in arr.to_pylist()]
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return arr.to_pylist()
    if (pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)
            or pa.types.is_binary_view(t)):
        raw = arr.to_pylist()
        if name == "arrow.uuid" and pa.types.is_fixed_size_binary(t) and t.byte_width == 16:
            return [None if b is None else str(uuid.UUID(bytes=bytes(b))) for b in raw]
        return [None if b is None else bytes(b).hex() for b in raw]
    if pa.types.is_date32(t):
        return arr.cast(pa.int32()).to_pylist()
    if pa.types.is_date64(t) or pa.types.is_timestamp(t) or pa.types.is_duration(t) or pa.types.is_time64(t):
        return arr.cast(pa.int64()).to_pylist()
    if pa.types.is_time32(t):
        return arr.cast(pa.int32()).to_pylist()
    if t == pa.month_day_nano_interval():
        return [None if v is None else [v.months, v.days, v.nanoseconds] for v in arr.to_pylist()]
    raise Unhandled(f"no canonical form for Arrow type {t} (field {field.name!r})")


def text_map(md):
    out = {}
    for k, v in (md or {}).items():
        k = k.decode("utf-8", "replace")
        if k == "ARROW:schema":
            continue
        out[k] = v.decode("utf-8", "replace")
    return out


def field_desc(f):
    return {
        "name": f.name,
        "type": str(f.type),
        "compact": compact(f),
        "nullable": f.nullable,
        "metadata": text_map(f.metadata),
    }


def read_part(fs, path):
    """(table, file key-value metadata, parquet facts or None) of one part file."""
    with fs.open_input_file(path) as f:
        if path.endswith(".parquet"):
            pf = pq.ParquetFile(f)
            md = pf.metadata
            # Row group by row group: pyarrow cannot read nested columns (a dictionary
            # inside a struct or list) of several row groups into one table at once.
            parts = [pf.read_row_group(i) for i in range(md.num_row_groups)]
            table = pa.concat_tables(parts) if parts else pf.schema_arrow.empty_table()
            groups = [md.row_group(i) for i in range(md.num_row_groups)]
            facts = {
                "row_groups": md.num_row_groups,
                "rows_per_group": [g.num_rows for g in groups],
                "compression": sorted({g.column(c).compression for g in groups for c in range(g.num_columns)}),
            }
            return table, text_map(md.metadata), facts
        reader = ipc.open_file(f)
        table = reader.read_all()
        return table, text_map(reader.schema.metadata), None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--s3-endpoint")
    ap.add_argument("--region", default="us-east-1")
    args = ap.parse_args()

    if args.s3_endpoint:
        scheme, _, host = args.s3_endpoint.partition("://")
        fs = pafs.S3FileSystem(
            endpoint_override=host,
            scheme=scheme,
            access_key=os.environ["AWS_ACCESS_KEY_ID"],
            secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
            region=args.region,
        )
        root = args.root.strip("/")
    else:
        fs = pafs.LocalFileSystem()
        root = os.path.abspath(args.root)
        if not os.path.isdir(root):
            sys.exit(f"{root} is not a folder")

    infos = fs.get_file_info(pafs.FileSelector(root, recursive=True))
    files = sorted(i.path for i in infos if i.type == pafs.FileType.File)
    by_dataset, stray = {}, []
    for p in files:
        rel = p[len(root):].lstrip("/")
        parts = rel.split("/")
        base = parts[-1]
        is_part = (
            len(parts) == 2
            and base.startswith("part-")
            and (base.endswith(".parquet") or base.endswith(".arrow"))
        )
        if is_part:
            by_dataset.setdefault(parts[0], []).append(p)
        else:
            stray.append(rel)

    datasets = []
    for name in sorted(by_dataset):
        paths = sorted(by_dataset[name])
        tables, file_md, facts = [], [], []
        for p in paths:
            t, md, f = read_part(fs, p)
            tables.append(t)
            file_md.append(md)
            if f is not None:
                facts.append(f)
        schema = tables[0].schema
        for p, t in zip(paths[1:], tables[1:]):
            if not t.schema.equals(schema, check_metadata=False):
                sys.exit(f"{p}: schema differs from {paths[0]}:\n{t.schema}\nvs\n{schema}")
        columns = []
        for j, field in enumerate(schema):
            col = []
            for t in tables:
                for chunk in t.column(j).chunks:
                    col.extend(values(chunk, field))
            columns.append(col)
        num_rows = sum(t.num_rows for t in tables)
        rows = [[c[i] for c in columns] for i in range(num_rows)] if columns else []
        datasets.append({
            "name": name,
            "files": [p[len(root):].lstrip("/") for p in paths],
            "num_rows": num_rows,
            "fields": [field_desc(f) for f in schema],
            "schema_metadata": text_map(schema.metadata),
            "file_metadata": file_md,
            "parquet": facts,
            "rows": rows,
        })

    json.dump({"pyarrow": pa.__version__, "stray_files": stray, "datasets": datasets},
              sys.stdout, ensure_ascii=False, allow_nan=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    try:
        main()
    except Unhandled as e:
        sys.exit(f"export_read.py: {e}")
