#!/usr/bin/env bash
# benches/export.sh — `pgbunker export` (archive -> Parquet, no database) against
# pg2parquet and DuckDB's postgres_scan (live server -> Parquet), in one run.
#
# Usage:
#   benches/export.sh [--scale N] [--jobs N] [--table SCHEMA.NAME]
#
#   --scale N       heart-recovery fixture scale loaded into db `heart`
#                   (1 ≈ 10 MB, 10 ≈ 100 MB, 100 ≈ 1 GB). Default 10.
#   --jobs N        the parallel runs use N (pgbunker -j N, DuckDB threads=N); every
#                   tool that has a knob is also run with 1. Default 2.
#   --table T       the table of the single-table rows. Default public.vitals_samples
#                   (the fixture's largest, ~60 % of its data).
#
# What it does, on a throwaway PostgreSQL it starts itself (as compare.sh does: initdb
# in a mktemp folder, as `nobody` when run as root, free loopback port, fsync=off,
# autovacuum off; all removed on exit):
#   * loads the fixture, VACUUM (FREEZE, ANALYZE), backs it up with
#     `pgbunker backup --jobs N` into a fresh encrypted repository (untimed here: see
#     compare.sh), and counts the rows of every table and the bytes of the table's
#     binary COPY (`COPY T TO STDOUT (FORMAT binary) | wc -c`, untimed);
#   * times, one after another, each under GNU time (wall seconds, user+sys CPU
#     seconds of the client process and its children, peak RSS of the largest one):
#       floor       psql: COPY T TO STDOUT (FORMAT binary) > /dev/null — what the
#                   server alone costs to produce the COPY stream (one session)
#       pgbunker    pgbunker export --repo R latest --out DIR -t T -j 1, then -j N
#                   (from the archive: decrypt, decompress, decode PGCOPY, encode Parquet)
#       pg2parquet  pg2parquet export --host … --dbname heart -t T -o FILE --quiet
#                   (from the live server, single-threaded: SELECT * FROM T with
#                   binary results, not COPY; PGPASSWORD=unused stops it prompting)
#       DuckDB      COPY (SELECT * FROM postgres_scan(DSN, SCHEMA, NAME)) TO FILE
#                   (FORMAT parquet, COMPRESSION zstd), with threads=1, then threads=N
#       whole       pgbunker export --repo R latest --out DIR -j 1, then -j N: every
#                   table of the backup
#     and, for the live-server tools, the server's CPU seconds during the step (the
#     postmaster's reaped children: backends and parallel workers, read from
#     /proc/PID/stat after the step's backends have exited);
#   * reads every output back (pyarrow, else DuckDB's Parquet reader: row counts from
#     the footers) and checks each table's rows against count(*) on the server; a
#     difference, like a failed step, makes the exit status 1;
#   * prints one table and the ratios. Per row: rows/s and MB/s are rows and binary
#     COPY megabytes (10^6 bytes) of the table over wall seconds; MB/s/core is the same
#     megabytes over the client's CPU seconds, "+srv" over client + server CPU seconds
#     (what the export costs the machine as a whole; pgbunker export uses no server).
#     COPY MB are pgbunker export's raw_bytes (from its --json) when it ran, else the
#     bytes of the binary COPY counted above. Then the Arrow type each tool wrote for
#     each column of the table.
#
# Tools (none is installed by the script; a missing one is reported as not measured,
# with the reason, and the rest runs):
#   pgbunker    PGBUNKER_BIN, else `cargo build --release` (CARGO_TARGET_DIR is honoured)
#   pg2parquet  PG2PARQUET_BIN, else `pg2parquet` on PATH   (cargo install pg2parquet --locked)
#   DuckDB      DUCKDB_PYTHON, a python with the duckdb module, else python3 if it has one
#               (python3 -m venv V && V/bin/pip install duckdb==1.5.5 duckdb-extension-postgres==1.5.5).
#               The postgres extension: DUCKDB_POSTGRES_EXTENSION (a .duckdb_extension
#               file), else the duckdb-extension-postgres package of that python (same
#               version as duckdb), else one already installed (LOAD postgres), else
#               INSTALL postgres (downloads: fails without access to extensions.duckdb.org)
#   reader      PYARROW_PYTHON, else /opt/pgbunker-py/bin/python, else python3 — the
#               first that imports pyarrow; else the DuckDB python above
#
# Caveats: client and server share the machine's cores, so the live tools' wall time
# includes the server's work while pgbunker export reads local files (the backup it
# reads was taken earlier, untimed). Output sizes differ in more than compression:
# row-group sizes differ (pgbunker 1048576 rows, DuckDB 122880, pg2parquet 1048576 or 500 MB)
# and so do type mappings (see the type table: numeric and enum especially).
# Every tool writes zstd; pg2parquet with its default.
#
# Environment: PGBUNKER_PG_BIN (server binaries), PGBUNKER_BIN, PG2PARQUET_BIN,
# DUCKDB_PYTHON, DUCKDB_POSTGRES_EXTENSION, PYARROW_PYTHON, TMPDIR (room for about 4×
# the database: the cluster, the repository and the outputs). Needs bash, python3,
# GNU time (/usr/bin/time), ps, and psql, createdb from the server's bin folder.
set -euo pipefail

scale=10
jobs=2
table=public.vitals_samples

bench=export.sh
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/lib.sh
. "$root/benches/lib.sh"

parse_args scale jobs table -- "$@"
check_scale "$scale"
is_uint "$jobs" && [ "$jobs" -ge 1 ] || die "--jobs must be a positive integer, got '$jobs'"
[[ $table =~ ^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$ ]] \
  || die "--table must be schema.name in lower-case letters, digits and _, got '$table'"
tschema=${table%%.*}
tname=${table#*.}

check_fixture
find_server_bindir psql createdb
detect_optional_tools
[ "$have_gnutime" = 1 ] || die "needs GNU time as /usr/bin/time (apt install time)"
command -v python3 >/dev/null 2>&1 || die "needs python3"
clk_tck=$(getconf CLK_TCK)
make_workdir pgbunker-export
find_pgbunker

# ---------------------------------------------------------------------------------
# Which tools can run (reasons are printed in the report)
# ---------------------------------------------------------------------------------
declare -A MISSING   # tool -> why it is not measured

if ! "$pgbunker" export --help >/dev/null 2>&1; then
  MISSING[pgbunker]="$pgbunker has no 'export' subcommand (pgbunker $("$pgbunker" --version 2>/dev/null | awk '{print $2}'))"
fi

pg2parquet=${PG2PARQUET_BIN:-$(command -v pg2parquet 2>/dev/null || true)}
if [ -z "$pg2parquet" ]; then
  MISSING[pg2parquet]="pg2parquet not found (set PG2PARQUET_BIN, or: cargo install pg2parquet --locked)"
elif ! "$pg2parquet" --version >/dev/null 2>&1 && ! "$pg2parquet" --help >/dev/null 2>&1; then
  MISSING[pg2parquet]="$pg2parquet does not run"
fi

# DuckDB: a python with duckdb, and a way to load the postgres extension. The probe
# prints either "ok<TAB>how<TAB>LOAD statement" or "no<TAB>why".
duckdb_py=
for cand in "${DUCKDB_PYTHON:-}" python3; do
  [ -n "$cand" ] || continue
  if "$cand" -c 'import duckdb' >/dev/null 2>&1; then duckdb_py=$cand; break; fi
done
duckdb_load=
duckdb_how=
if [ -z "$duckdb_py" ]; then
  MISSING[duckdb]="no python with the duckdb module (set DUCKDB_PYTHON; pip install duckdb duckdb-extension-postgres of the same version)"
else
  mkdir -p "$work/duckdb"
  probe=$("$duckdb_py" - "$work/duckdb" "${DUCKDB_POSTGRES_EXTENSION:-}" <<'PY' 2>"$logs/duckdb-probe.err" || true
import importlib, os, pathlib, shutil, sys
import duckdb
scratch, given = sys.argv[1], sys.argv[2]
version = duckdb.connect().sql("PRAGMA version").fetchone()[0]   # e.g. v1.5.5
tried = []

def try_load(stmt, how):
    con = duckdb.connect()
    try:
        con.execute(stmt)
        con.sql("SELECT 1 FROM duckdb_extensions() WHERE extension_name = 'postgres_scanner' AND loaded").fetchone()[0]
    except Exception as e:
        tried.append(f"{how}: {str(e).splitlines()[0]}")
        return False
    print(f"ok\t{how}\t{stmt}")
    return True

def from_file(path, how):
    # DuckDB derives the init symbol from the file name: the extension is postgres_scanner.
    dst = os.path.join(scratch, "postgres_scanner.duckdb_extension")
    shutil.copyfile(path, dst)
    return try_load(f"LOAD '{dst}'", how)

if given:
    if from_file(given, f"DUCKDB_POSTGRES_EXTENSION={given}"):
        sys.exit(0)
try:
    mod = importlib.import_module("duckdb_extension_postgres")
    base = pathlib.Path(list(mod.__path__)[0]) / "extensions"
    f = base / version / "postgres.duckdb_extension"
    if f.is_file():
        if from_file(str(f), f"PyPI duckdb-extension-postgres ({version})"):
            sys.exit(0)
    else:
        have = sorted(p.name for p in base.iterdir()) if base.is_dir() else []
        tried.append(f"duckdb-extension-postgres has {have}, not duckdb {version}")
except ImportError:
    tried.append("no duckdb-extension-postgres package")
if try_load("SET autoinstall_known_extensions = false; LOAD postgres", "LOAD postgres (installed before)"):
    sys.exit(0)
if try_load("INSTALL postgres; LOAD postgres", "INSTALL postgres"):
    sys.exit(0)
print("no\t" + "; ".join(tried))
PY
  )
  case "$probe" in
    ok*) IFS=$'\t' read -r _ duckdb_how duckdb_load <<<"$probe"
         duckdb_how="duckdb $("$duckdb_py" -c 'import duckdb; print(duckdb.__version__)'), postgres extension: $duckdb_how" ;;
    no*) MISSING[duckdb]="DuckDB's postgres extension cannot be loaded: ${probe#no?}" ;;
    *)   MISSING[duckdb]="the DuckDB probe failed: $(tail -n 1 "$logs/duckdb-probe.err")" ;;
  esac
fi

reader_py=
reader_kind=
for cand in "${PYARROW_PYTHON:-}" /opt/pgbunker-py/bin/python python3; do
  [ -n "$cand" ] || continue
  if "$cand" -c 'import pyarrow.parquet' >/dev/null 2>&1; then reader_py=$cand; reader_kind=pyarrow; break; fi
done
if [ -z "$reader_py" ] && [ -n "$duckdb_py" ]; then reader_py=$duckdb_py; reader_kind=duckdb; fi
[ -n "$reader_py" ] || die "nothing can read Parquet back: set PYARROW_PYTHON to a python with pyarrow"

# pq_read PATH — one JSON line per dataset under PATH (a file, or a folder of
# <schema>.<table>/part-*.parquet): {"dataset", "rows", "files", "row_groups",
# "types": [[col, type]]}.
cat >"$work/pq_read.py" <<'PY'
import json, os, sys, urllib.parse
kind, path = sys.argv[1], sys.argv[2]
if os.path.isfile(path):
    groups = {".": [path]}
else:
    groups = {}
    for d, _, fs in os.walk(path):
        for f in fs:
            if f.endswith(".parquet"):
                full = os.path.join(d, f)
                key = urllib.parse.unquote(os.path.relpath(full, path).split(os.sep)[0])
                groups.setdefault(key, []).append(full)
for key, files in sorted(groups.items()):
    files.sort()
    if kind == "pyarrow":
        import pyarrow.parquet as pq
        metas = [pq.ParquetFile(f).metadata for f in files]
        rows = sum(m.num_rows for m in metas)
        groups_n = sum(m.num_row_groups for m in metas)
        types = [[fl.name, str(fl.type)] for fl in pq.read_schema(files[0])]
    else:
        import duckdb
        con = duckdb.connect()
        rows = con.execute("SELECT count(*) FROM read_parquet(?)", [files]).fetchone()[0]
        groups_n = con.execute("SELECT count(DISTINCT (file_name, row_group_id)) FROM parquet_metadata(?)", [files]).fetchone()[0]
        types = [[r[0], r[1]] for r in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [files[:1]]).fetchall()]
    print(json.dumps({"dataset": key, "rows": rows, "files": len(files), "row_groups": groups_n, "types": types}))
PY
pq_read() { "$reader_py" "$work/pq_read.py" "$reader_kind" "$1"; }

# ---------------------------------------------------------------------------------
# Cluster, fixture, backup
# ---------------------------------------------------------------------------------
start_cluster "autovacuum = off"
load_fixture heart "$scale"
echo "VACUUM (FREEZE, ANALYZE) ..." >&2
psql_q -d heart -c "VACUUM (FREEZE, ANALYZE)" -c "CHECKPOINT"
[ "$(psql_q -d heart -c "SELECT to_regclass('$table') IS NOT NULL")" = t ] \
  || die "table $table is not in the fixture"
postmaster=$(head -n 1 "$pgdata/postmaster.pid")

# Live row counts of every table: the judge for every output.
declare -A LIVE
while IFS=$'\t' read -r t n; do
  [ -n "$t" ] && LIVE[$t]=$n
done < <(psql_q -d heart -F $'\t' -c "SELECT format('%s.%s', n.nspname, c.relname),
    (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname),
      false, true, '')))[1]::text::bigint
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname !~ '^pg_' ORDER BY 1")
table_rows=${LIVE[$table]}
all_rows=0
for t in "${!LIVE[@]}"; do all_rows=$((all_rows + ${LIVE[$t]})); done
copy_bytes=$(psql_q -d heart -c "COPY $table TO STDOUT (FORMAT binary)" | wc -c)

key=$(random_hex32)
repo=$out/repo
export PGBUNKER_STATE_DIR=$work/state
backup_note=
if [ -z "${MISSING[pgbunker]:-}" ]; then
  echo "pgbunker backup --jobs $jobs (untimed) ..." >&2
  if PGBUNKER_KEY=$key "$pgbunker" init --repo "$repo" >"$logs/init.log" 2>&1 \
     && PGBUNKER_KEY=$key "$pgbunker" --no-progress backup --repo "$repo" --jobs "$jobs" "$(url heart)" \
          >"$logs/backup.log" 2>&1; then
    backup_note="repository $(du -sb "$repo" | awk '{printf "%.1f MB", $1/1e6}')"
  else
    tail -n 25 "$logs/init.log" "$logs/backup.log" | sed 's/^/    | /' >&2
    MISSING[pgbunker]="pgbunker init/backup failed (see above)"
  fi
fi

# ---------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------
# Per step: OK[id] (1, 0 = failed, skip), TIME, CPU (user+sys), SRV (server CPU),
# RSS MB, SIZE bytes, ROWS (read back), RAW (COPY bytes the step counts), CHECK (ok,
# MISMATCH …), NOTE.
declare -A OK TIME CPU SRV RSS SIZE ROWS RAW CHECK NOTE
failures=0

server_ticks() { awk '{print $16 + $17}' "/proc/$postmaster/stat"; }
server_children() { ps -o pid= --ppid "$postmaster" | wc -l; }

# run_step ID OUTPUT|- CMD... — CMD under GNU time, stdout in $logs/ID.out, stderr in
# $logs/ID.err; the server's CPU over the step once its backends have gone.
run_step() {
  local id=$1 output=$2; shift 2
  local tf=$logs/$id.time rc=0 kids0 s0 s1
  echo "  $id ..." >&2
  kids0=$(server_children); s0=$(server_ticks)
  /usr/bin/time -f '%e %U %S %M' -o "$tf" "$@" >"$logs/$id.out" 2>"$logs/$id.err" || rc=$?
  for _ in $(seq 100); do [ "$(server_children)" -le "$kids0" ] && break; sleep 0.05; done
  s1=$(server_ticks)
  SRV[$id]=$(awk -v a="$s0" -v b="$s1" -v h="$clk_tck" 'BEGIN{printf "%.2f", (b-a)/h}')
  read -r "TIME[$id]" "CPU[$id]" "RSS[$id]" < <(tail -n 1 "$tf" | awk '{printf "%.2f %.2f %.1f\n", $1, $2+$3, $4/1024}')
  SIZE[$id]=-
  if [ "$output" != - ] && [ -e "$output" ]; then SIZE[$id]=$(du -sb "$output" | cut -f1); fi
  if [ "$rc" = 0 ]; then
    OK[$id]=1
  else
    OK[$id]=0; CHECK[$id]=FAILED
    failures=$((failures + 1))
    echo "  $id FAILED (exit $rc); last lines of its output:" >&2
    tail -n 25 "$logs/$id.err" "$logs/$id.out" | sed 's/^/    | /' >&2
  fi
}

skip_step() { OK[$1]=skip; NOTE[$1]=$2; }

# check_rows ID PATH [whole] — reads PATH back; ROWS[ID] and CHECK[ID] against LIVE.
# Single table: the one dataset must hold the table's rows. Whole: every table with rows
# must be there with all of them, and nothing else.
check_rows() {
  local id=$1 path=$2 whole=${3:-} bad=() total=0 ds rows t
  [ "${OK[$id]}" = 1 ] || return 0
  if ! pq_read "$path" >"$logs/$id.read" 2>"$logs/$id.read.err"; then
    CHECK[$id]="UNREADABLE"; failures=$((failures + 1))
    tail -n 5 "$logs/$id.read.err" | sed 's/^/    | /' >&2
    return 0
  fi
  declare -A seen=()
  while IFS=$'\t' read -r ds rows; do
    total=$((total + rows)); seen[$ds]=$rows
  done < <(python3 -c 'import json,sys
for l in sys.stdin: d=json.loads(l); print(d["dataset"], d["rows"], sep="\t")' <"$logs/$id.read")
  ROWS[$id]=$total
  if [ -z "$whole" ]; then
    [ "$total" = "$table_rows" ] || bad+=("$total rows, the server has $table_rows")
  else
    for t in "${!LIVE[@]}"; do
      [ "${seen[$t]:-0}" = "${LIVE[$t]}" ] || bad+=("$t: ${seen[$t]:-none} vs ${LIVE[$t]}")
    done
    for ds in "${!seen[@]}"; do
      [ -n "${LIVE[$ds]:-}" ] || bad+=("$ds: not a table of the database")
    done
  fi
  if [ "${#bad[@]}" = 0 ]; then
    CHECK[$id]=ok
  else
    CHECK[$id]="MISMATCH: ${bad[*]}"; failures=$((failures + 1))
  fi
}

# bunker_json ID WHAT — from the export's --json: WHAT=table: "raw rows" of $table;
# WHAT=all: "raw rows" of the whole export. Empty when it cannot be read.
bunker_json() {
  python3 - "$logs/$1.out" "$2" "$tschema" "$tname" <<'PY' 2>/dev/null || true
import json, sys
f, what, schema, name = sys.argv[1:]
d = json.load(open(f))
if what == "all":
    print(d["raw_bytes"], d["rows"])
else:
    t = [t for t in d["tables"] if t["schema"] == schema and t["name"] == name][0]
    print(t["raw_bytes"], t["rows"])
PY
}

echo "timing ..." >&2

# floor: the server's binary COPY of the table, to /dev/null.
run_step floor - bash -c 'exec "$0" -X -q -v ON_ERROR_STOP=1 -d "$1" -c "COPY $2 TO STDOUT (FORMAT binary)" >/dev/null' \
  "$bindir/psql" heart "$table"
CHECK[floor]=${CHECK[floor]:--}

# bunker_step table|all J — pgbunker export of the table or of the whole backup, -j J.
bunker_jobs=(1); [ "$jobs" -gt 1 ] && bunker_jobs+=("$jobs")
table_raw=
bunker_step() {
  local what=$1 j=$2 id=bunker_$1_j$2 dir=$out/bunker_$1_j$2 sel=() raw n want
  if [ -n "${MISSING[pgbunker]:-}" ]; then skip_step "$id" "${MISSING[pgbunker]}"; return 0; fi
  [ "$what" = table ] && sel=(-t "$table")
  PGBUNKER_KEY=$key run_step "$id" "$dir" "$pgbunker" --no-progress export --repo "$repo" latest \
    --out "$dir" "${sel[@]}" -j "$j" --json
  [ "${OK[$id]}" = 1 ] || return 0
  read -r raw n < <(bunker_json "$id" "$what"; echo) || true
  if [ -n "${raw:-}" ]; then
    RAW[$id]=$raw
    if [ "$what" = table ] && [ -z "$table_raw" ]; then table_raw=$raw; fi
    want=$table_rows; [ "$what" = table ] || want=$all_rows
    [ "$n" = "$want" ] || NOTE[$id]="--json says $n rows"
  else
    NOTE[$id]="no usable --json on stdout"
  fi
  if [ "$what" = table ]; then check_rows "$id" "$dir"; else check_rows "$id" "$dir" whole; fi
}

for j in "${bunker_jobs[@]}"; do bunker_step table "$j"; done
# What the single-table rows count as COPY data: pgbunker's raw_bytes, else the COPY size.
raw_source="pgbunker export --json raw_bytes"
if [ -z "$table_raw" ]; then table_raw=$copy_bytes; raw_source="bytes of COPY (FORMAT binary)"; fi
for id in floor bunker_table_j1 "bunker_table_j$jobs"; do RAW[$id]=${RAW[$id]:-$table_raw}; done

# pg2parquet, from the live server.
if [ -n "${MISSING[pg2parquet]:-}" ]; then
  skip_step pg2parquet "${MISSING[pg2parquet]}"
else
  # It asks for a password on the terminal unless it has one; the server trusts anyone.
  PGPASSWORD=unused run_step pg2parquet "$out/pg2parquet.parquet" "$pg2parquet" export --host 127.0.0.1 --port "$port" \
    --user postgres --dbname heart -t "$table" -o "$out/pg2parquet.parquet" --quiet
  RAW[pg2parquet]=$table_raw
  check_rows pg2parquet "$out/pg2parquet.parquet"
fi

# DuckDB postgres_scan, threads=1 and threads=N.
for j in "${bunker_jobs[@]}"; do
  id=duckdb_t$j
  if [ -n "${MISSING[duckdb]:-}" ]; then skip_step "$id" "${MISSING[duckdb]}"; continue; fi
  f=$out/$id.parquet
  run_step "$id" "$f" "$duckdb_py" - "$duckdb_load" "$j" \
    "host=127.0.0.1 port=$port user=postgres dbname=heart" "$tschema" "$tname" "$f" <<'PY'
import sys
import duckdb
load, threads, dsn, schema, name, out = sys.argv[1:]
q = lambda s: "'" + s.replace("'", "''") + "'"
con = duckdb.connect()
con.execute(f"SET threads = {int(threads)}")
con.execute(load)
con.execute(f"COPY (SELECT * FROM postgres_scan({q(dsn)}, {q(schema)}, {q(name)})) "
            f"TO {q(out)} (FORMAT parquet, COMPRESSION zstd)")
PY
  RAW[$id]=$table_raw
  check_rows "$id" "$f"
done

# The whole backup, every table.
for j in "${bunker_jobs[@]}"; do bunker_step all "$j"; done

# ---------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------
mb() { if [ "${1:--}" = - ]; then echo -; else awk -v b="$1" 'BEGIN{printf "%.1f", b/1e6}'; fi; }
div() { awk -v a="$1" -v b="$2" -v f="$3" 'BEGIN{ if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf f, a/b; else print "-" }'; }

# Per row: rows/s, MB/s, MB/s/core, MB/s/core counting the server.
rates() {
  local id=$1 rows=$2
  local raw=${RAW[$id]:-} t=${TIME[$id]:-} c=${CPU[$id]:-} s=${SRV[$id]:-0}
  printf '%s %s %s %s' \
    "$(div "$rows" "$t" '%.0f')" \
    "$(div "$(mb "${raw:--}")" "$t" '%.1f')" \
    "$(div "$(mb "${raw:--}")" "$c" '%.1f')" \
    "$(div "$(mb "${raw:--}")" "$(awk -v a="$c" -v b="$s" 'BEGIN{print a+b}')" '%.1f')"
}

line() { printf '%-44s %7s %7s %7s %10s %7s %9s %7s %7s %8s %10s  %s\n' "$@"; }
row() {
  local id=$1 name=$2 rows=$3 rps mbs mbc mbcs
  case "${OK[$id]:-skip}" in
    1)
      read -r rps mbs mbc mbcs <<<"$(rates "$id" "$rows")"
      line "$name" "${TIME[$id]}" "${CPU[$id]}" "${SRV[$id]}" "$rps" "$mbs" "$mbc" "$mbcs" \
        "${RSS[$id]}" "$(mb "${SIZE[$id]}")" "${ROWS[$id]:--}" "${CHECK[$id]:-}${NOTE[$id]:+ (${NOTE[$id]})}" ;;
    0) line "$name" FAILED - - - - - - - - - "see $logs/$id.err" ;;
    *) line "$name" - - - - - - - - - - "not measured" ;;
  esac
}

# ratio A B — how many times B's time A's throughput is, three ways.
ratio() {
  local a=$1 b=$2
  [ "${OK[$a]:-}" = 1 ] && [ "${OK[$b]:-}" = 1 ] || return 0
  printf '  %-26s %5s× wall   %5s× per core   %5s× per core counting the server\n' \
    "$3:" "$(div "${TIME[$b]}" "${TIME[$a]}" '%.2f')" \
    "$(div "${CPU[$b]}" "${CPU[$a]}" '%.2f')" \
    "$(div "$(awk -v a="${CPU[$b]}" -v b="${SRV[$b]}" 'BEGIN{print a+b}')" \
           "$(awk -v a="${CPU[$a]}" -v b="${SRV[$a]}" 'BEGIN{print a+b}')" '%.2f')"
}

server_version=$(psql_q -d postgres -c "SHOW server_version")
jN=$jobs
echo
echo "pgbunker export benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')"
machine_line
echo "load average before timing: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo -)"
echo "pgbunker $("$pgbunker" --version 2>/dev/null | awk '{print $2}') ($(build_label)); PostgreSQL $server_version (fsync=off, same machine)"
[ -z "${MISSING[pg2parquet]:-}" ] && echo "pg2parquet: $("$pg2parquet" --version 2>/dev/null | head -n 1 || echo "$pg2parquet")"
[ -z "${MISSING[duckdb]:-}" ] && echo "DuckDB: $duckdb_how"
echo "read back with: $reader_kind ($reader_py)"
echo "fixture scale $scale (loaded in ${load_seconds} s)${backup_note:+; $backup_note}"
echo "table $table: $table_rows rows, $(mb "$table_raw") MB of COPY data ($raw_source;" \
  "binary COPY itself: $(mb "$copy_bytes") MB); whole backup: $all_rows rows"
echo
line step "wall s" "CPU s" "srv CPU" "rows/s" "MB/s" "MB/s/core" "+srv" "RSS MB" "out MB" rows check
row floor "floor: psql COPY (binary) > /dev/null" "$table_rows"
for j in "${bunker_jobs[@]}"; do row "bunker_table_j$j" "pgbunker export -t $tname -j $j" "$table_rows"; done
row pg2parquet "pg2parquet export -t $tname" "$table_rows"
for j in "${bunker_jobs[@]}"; do row "duckdb_t$j" "DuckDB postgres_scan, threads=$j" "$table_rows"; done
for j in "${bunker_jobs[@]}"; do
  row "bunker_all_j$j" "pgbunker export (whole backup) -j $j" "$all_rows"
done
echo
echo "CPU s: user+sys of the client process and its children; srv CPU: the server's, during the step;"
echo "MB/s: COPY MB / wall s; MB/s/core: COPY MB / CPU s; +srv: COPY MB / (CPU s + srv CPU s)"
echo
echo "pgbunker export against the others on $table: pgbunker's throughput ÷ theirs (above 1: pgbunker faster)"
ratio bunker_table_j1 pg2parquet "-j 1 vs pg2parquet"
[ "$jN" -gt 1 ] && ratio "bunker_table_j$jN" pg2parquet "-j $jN vs pg2parquet"
ratio bunker_table_j1 duckdb_t1 "-j 1 vs DuckDB threads=1"
[ "$jN" -gt 1 ] && ratio "bunker_table_j$jN" "duckdb_t$jN" "-j $jN vs DuckDB threads=$jN"
for tool in pgbunker pg2parquet duckdb; do
  [ -z "${MISSING[$tool]:-}" ] || echo "  $tool not measured: ${MISSING[$tool]}"
done

# Arrow types written for each column of the table, side by side.
typefiles=()
for id in bunker_table_j1 pg2parquet duckdb_t1; do
  if [ "${OK[$id]:-}" = 1 ] && [ -s "$logs/$id.read" ]; then typefiles+=("$id=$logs/$id.read"); fi
done
if [ "${#typefiles[@]}" -gt 0 ]; then
  echo
  echo "files and row groups written for $table:"
  for id in bunker_table_j1 "bunker_table_j$jN" pg2parquet duckdb_t1 "duckdb_t$jN"; do
    [ "${OK[$id]:-}" = 1 ] && [ -s "$logs/$id.read" ] || continue
    case "$id" in
      bunker_table_j*) label="pgbunker -j ${id#bunker_table_j}" ;;
      duckdb_t*) label="DuckDB threads=${id#duckdb_t}" ;;
      *) label=$id ;;
    esac
    python3 -c 'import json, sys
d = json.loads(open(sys.argv[1]).readline())
print("  %-20s %d file(s), %d row group(s)" % (sys.argv[2], d["files"], d["row_groups"]))' "$logs/$id.read" "$label"
  done | awk '!seen[$0]++'
  echo
  echo "column types as written ($reader_kind's names):"
  python3 - "${typefiles[@]}" <<'PY'
import json, sys
names = {"bunker_table_j1": "pgbunker", "pg2parquet": "pg2parquet", "duckdb_t1": "DuckDB"}
cols, per = [], {}
for arg in sys.argv[1:]:
    tool, path = arg.split("=", 1)
    d = json.loads(open(path).readline())
    per[names[tool]] = dict(d["types"])
    for c, _ in d["types"]:
        if c not in cols:
            cols.append(c)
tools = list(per)
w = [max(len(c) for c in cols + ["column"])] + [max([len(t)] + [len(per[t].get(c, "-")) for c in cols]) for t in tools]
line = lambda vals: print("  " + "  ".join(v.ljust(n) for v, n in zip(vals, w)).rstrip())
line(["column"] + tools)
for c in cols:
    line([c] + [per[t].get(c, "-") for t in tools])
PY
fi

echo
missing_count=0
for tool in pgbunker pg2parquet duckdb; do [ -z "${MISSING[$tool]:-}" ] || missing_count=$((missing_count + 1)); done
if [ "$failures" -gt 0 ] || [ -n "${MISSING[pgbunker]:-}" ]; then
  echo "$failures step(s) or check(s) FAILED${MISSING[pgbunker]:+; pgbunker export not measured}"
  exit 1
fi
not_measured=; [ "$missing_count" = 0 ] || not_measured=" ($missing_count tool(s) not measured)"
echo "all measured steps succeeded; every output holds the server's row counts$not_measured"
