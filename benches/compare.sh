#!/usr/bin/env bash
# benches/compare.sh — pgbunker against pg_dump / pg_restore, end to end, on one machine.
#
# Usage:
#   benches/compare.sh [--scale N] [--jobs N] [--pgbench-scale N]
#
#   --scale N          heart-recovery fixture scale loaded into db `heart`
#                      (1 ≈ 10 MB, 10 ≈ 100 MB, 100 ≈ 1 GB). Default 10.
#   --jobs N           parallelism given to every tool that has one. Default 2.
#   --pgbench-scale N  also run everything on `pgbench -i -s N` in db `bench`
#                      (1 ≈ 15 MB). Default 0 = skip.
#
# What it does, all in one run, on a throwaway PostgreSQL it starts itself:
#   * finds the server binaries (PGBUNKER_PG_BIN, else `pg_config --bindir`, else the
#     newest /usr/lib/postgresql/*/bin), runs initdb in a mktemp folder (as `nobody`
#     when run as root) and starts it on a free loopback port with fsync=off. The
#     cluster and every file the script made are removed on exit, whatever happens;
#   * builds pgbunker (`cargo build --release -q`), unless PGBUNKER_BIN names a binary;
#   * loads the fixture (and pgbench), then VACUUM (FREEZE, ANALYZE) so that no timed
#     step pays for setting hint bits on freshly loaded rows;
#   * for each database, times (wall clock, and peak RSS with GNU time if
#     /usr/bin/time exists):
#       backup   pgbunker backup --jobs N            into a fresh encrypted repository
#                pg_dump -Fd -j N                    (both fsync their output)
#                pg_dump -Fc | openssl enc -aes-256-cbc -pbkdf2   (the cron runbook)
#                raw COPY … TO STDOUT (FORMAT binary) of every table to /dev/null,
#                one psql session, one table after another (the floor: what the
#                server alone costs to read the data out on one connection; with
#                --jobs > 1 the parallel tools can beat it)
#       restore  pgbunker restore latest --jobs N    into a new empty database
#                … the same with --no-analyze         (pg_restore does not ANALYZE)
#                pg_restore -j N -d                  from the -Fd dump, new empty db
#                the floor: into a database already holding the dump's pre-data and
#                sequence values (`pg_restore --section=pre-data`, untimed), with every
#                table's data already exported to a file by `\copy … TO (FORMAT binary)`
#                (untimed): `\copy … FROM (FORMAT binary)` of every table over N
#                parallel psql sessions (xargs -P N, one table per session, largest
#                first, each `BEGIN; TRUNCATE ONLY; COPY; COMMIT` as pg_restore -j does;
#                a big table is not split), then `pg_restore --section=post-data -j N`
#                (keys, indexes, foreign keys). What the server alone costs to take the
#                data in and index it, with no decoding, checking or scheduling;
#   * checks that every restored database holds the same rows, indexes, constraints
#     and sequence values as the source (not timed; a difference is a failure);
#   * prints one plain-text table per database. "vs pgbunker" is the step's time
#     divided by pgbunker's time for the same job: above 1.00 means pgbunker was faster.
#     Under it, where each restore's time went, from the server log of the restored
#     database (log_min_duration_statement=0 there only): for each kind of statement
#     (COPY, keys and indexes, foreign keys, ANALYZE, other DDL), the wall-clock time
#     during which at least one statement of that kind ran. Kinds overlap when a tool
#     runs them at once (pg_restore -j builds a table's indexes while others load);
#     "idle" is the step's time during which no statement ran at all (client start,
#     pgbunker's pre-flight check of the repository, connecting, gaps).
#
# Exit status: 0 when every step and check succeeded, 1 otherwise (the table is
# still printed, failed steps say FAILED and the tail of their log is shown).
#
# Caveats when reading the numbers:
#   * peak RSS is GNU time's %M: the largest single process of the command. For
#     `pg_dump -j N` / `pg_restore -j N` (one process per worker) and for the
#     openssl pipeline, the tree as a whole uses more. The server is not counted.
#   * pgbunker restore runs ANALYZE at the end; pg_restore does not: compare pg_restore
#     with the --no-analyze row too.
#   * pg_dump compresses with gzip (level 6 by default); pgbunker uses zstd level 3 and
#     encrypts; pg_dump -Fd does not encrypt.
#   * client and server share the machine's cores.
#   * the restore floor splits no table: with one table far larger than the others,
#     its data load runs on one session whatever N is (pgbunker loads a table backed
#     up in parts on several).
#
# Environment: PGBUNKER_PG_BIN (server binaries), PGBUNKER_BIN (use this pgbunker,
# skip the build), TMPDIR (where the cluster and the outputs go: room for about 6× the
# database, which is restored four times, plus its tables once more as binary COPY
# files). Needs bash, xargs, and psql, pg_dump, pg_restore, createdb from the same bin
# folder; openssl and /usr/bin/time are optional. It installs nothing.
set -euo pipefail

scale=10
jobs=2
pgbench_scale=0

bench=compare.sh
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/lib.sh
. "$root/benches/lib.sh"
parse_args scale jobs pgbench-scale -- "$@"
check_scale "$scale"
is_uint "$jobs" && [ "$jobs" -ge 1 ] || die "--jobs must be a positive integer, got '$jobs'"
is_uint "$pgbench_scale" || die "--pgbench-scale must be a non-negative integer, got '$pgbench_scale'"

check_fixture
find_server_bindir psql pg_dump pg_restore createdb
if [ "$pgbench_scale" -gt 0 ] && [ ! -x "$bindir/pgbench" ]; then
  die "--pgbench-scale needs $bindir/pgbench"
fi
detect_optional_tools
make_workdir pgbunker-compare
find_pgbunker

# Epoch timestamps in the server log: the restore splits are computed from it.
start_cluster "log_line_prefix = '%n [%d] '"

# ---------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------
# Per step: TIME[id] seconds, RSS[id] MB ("-" if unknown), SIZE[id] bytes ("-"), OK[id].
declare -A TIME RSS SIZE OK
failures=0


# run_step ID OUTPUT_PATH|- CMD...  — runs CMD with its output in $logs/ID.log.
run_step() {
  local id=$1 output=$2; shift 2
  local log=$logs/$id.log rssf=$logs/$id.rss t0 t1 rc=0
  echo "  $id ..." >&2
  t0=$(now)
  if [ "$have_gnutime" = 1 ]; then
    /usr/bin/time -f '%M' -o "$rssf" "$@" >"$log" 2>&1 || rc=$?
  else
    "$@" >"$log" 2>&1 || rc=$?
  fi
  t1=$(now)
  TIME[$id]=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')
  RSS[$id]=-
  if [ "$have_gnutime" = 1 ] && [ -s "$rssf" ]; then
    RSS[$id]=$(tail -n 1 "$rssf" | awk '/^[0-9]+$/{printf "%.1f", $1/1024; ok=1} END{if(!ok) print "-"}')
  fi
  SIZE[$id]=-
  if [ "$output" != - ] && [ -e "$output" ]; then
    SIZE[$id]=$(du -sb "$output" | cut -f1)
  fi
  if [ "$rc" = 0 ]; then
    OK[$id]=1
  else
    OK[$id]=0
    failures=$((failures + 1))
    echo "  $id FAILED (exit $rc); last lines of its log:" >&2
    tail -n 25 "$log" | sed 's/^/    | /' >&2
  fi
}

skip_step() { TIME[$1]=-; RSS[$1]=-; SIZE[$1]=-; OK[$1]=skip; }

# ---------------------------------------------------------------------------------
# Verification: rows, indexes, constraints and sequences, independent of the tools.
# ---------------------------------------------------------------------------------
user_tables_sql="SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname !~ '^pg_' ORDER BY 1"

fingerprint() {
  local db=$1 t
  {
    psql_q -d "$db" -c "$user_tables_sql" | while IFS= read -r t; do
      psql_q -d "$db" </dev/null \
        -c "SELECT \$q\$$t\$q\$, count(*), coalesce(sum(hashtext(x::text)::bigint), 0) FROM $t AS x"
    done
    psql_q -d "$db" -c "SELECT 'index', schemaname, tablename, indexdef FROM pg_indexes
      WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 2, 3, 4"
    psql_q -d "$db" -c "SELECT 'constraint', conrelid::regclass::text, contype, pg_get_constraintdef(oid)
      FROM pg_constraint WHERE connamespace::regnamespace::text NOT IN ('pg_catalog', 'information_schema')
      ORDER BY 2, 3, 4"
    psql_q -d "$db" -c "SELECT 'sequence', schemaname, sequencename, last_value FROM pg_sequences
      ORDER BY 2, 3"
  }
}

declare -A VERIFY
verify_restore() {
  # $1 id, $2 source db, $3 restored db
  local id=$1
  if [ "${OK[$id]}" != 1 ]; then VERIFY[$id]=-; return; fi
  fingerprint "$3" >"$logs/$3.fp" 2>&1 || true
  if diff -u "$logs/$2.fp" "$logs/$3.fp" >"$logs/$3.diff"; then
    VERIFY[$id]=identical
  else
    VERIFY[$id]=DIFFERENT
    failures=$((failures + 1))
    echo "  $id: restored database $3 differs from $2:" >&2
    head -n 40 "$logs/$3.diff" | sed 's/^/    | /' >&2
  fi
}

# ---------------------------------------------------------------------------------
# Where a restore's time went, from the server log
# ---------------------------------------------------------------------------------
# SPLIT[id]: "copy index fk analyze other idle" seconds, or "-".
declare -A SPLIT

log_size() { stat -c %s "$work/server.log" 2>/dev/null || echo 0; }

# split_log DB SECONDS < server log — for each kind of statement run in DB, the union
# of the wall-clock intervals during which at least one ran; idle: SECONDS minus the
# union over all kinds. Lines look like "<epoch.ms> [db] LOG:  duration: 1.2 ms
# statement: …" (or "execute <unnamed>: …"); a statement's continuation lines start
# with a tab.
split_log() {
  awk -v db="[$1]" '
    function kind(q, u) {
      u = toupper(q); sub(/^[ \t]+/, "", u)
      if (u ~ /^COPY /) return "copy"
      if (u ~ /^ANALYZE/) return "analyze"
      if (u ~ /FOREIGN KEY/) return "fk"
      if (u ~ /^CREATE (UNIQUE )?INDEX/ || u ~ /ADD CONSTRAINT .*(PRIMARY KEY|UNIQUE|EXCLUDE)/) return "index"
      return "other"
    }
    function flush(k) {
      if (stmt == "") return
      k = kind(stmt)
      printf "%s %.3f %.3f\n", k, end - dur / 1000, end
      printf "all %.3f %.3f\n", end - dur / 1000, end
      stmt = ""
    }
    /^[0-9]+\.[0-9]+ \[/ {
      flush()
      if ($2 != db || !match($0, /duration: [0-9.]+ ms  /)) next
      dur = substr($0, RSTART + 10, RLENGTH - 15) + 0
      end = $1 + 0
      rest = substr($0, RSTART + RLENGTH)
      stmt = substr(rest, index(rest, ": ") + 2)
      next
    }
    /^\t/ { if (stmt != "") stmt = stmt " " substr($0, 2) }
    END { flush() }' \
  | LC_ALL=C sort -k1,1 -k2,2n \
  | awk -v total="$2" '
    $1 != k { if (k != "") sum[k] += e - s; k = $1; s = $2; e = $3; next }
    $2 > e { sum[k] += e - s; s = $2; e = $3; next }
    $3 > e { e = $3 }
    END {
      if (k != "") sum[k] += e - s
      idle = total - sum["all"]; if (idle < 0) idle = 0
      printf "%.2f %.2f %.2f %.2f %.2f %.2f\n", sum["copy"], sum["index"], sum["fk"], \
        sum["analyze"], sum["other"], idle
    }'
}

# restore_step ID DB CMD... — run_step for a restore into the database DB, with every
# statement run there logged; then SPLIT[ID] from the log lines it wrote.
restore_step() {
  local id=$1 db=$2 off; shift 2
  psql_q -d postgres -c "ALTER DATABASE \"$db\" SET log_min_duration_statement = 0"
  off=$(log_size)
  run_step "$id" - "$@"
  psql_q -d postgres -c "ALTER DATABASE \"$db\" RESET log_min_duration_statement"
  SPLIT[$id]=-
  if [ "${OK[$id]}" = 1 ]; then
    SPLIT[$id]=$(tail -c +"$((off + 1))" "$work/server.log" | split_log "$db" "${TIME[$id]}") \
      || SPLIT[$id]=-
  fi
}

# floor_setup DB RESTORED_DB FOLDER — untimed preparation of the restore floor: the
# dump's pre-data and sequence values in RESTORED_DB, and in FOLDER, for each table of
# DB (largest first), its rows as NNNNN.bin (binary COPY) and NNNNN.sql, the psql
# script that loads them the way pg_restore -j does (TRUNCATE in the same transaction,
# which lets wal_level=minimal skip the WAL).
floor_setup() {
  local db=$1 rdb=$2 fdir=$3 tables t f n=0
  mkdir -p "$fdir" || return 1
  "$bindir/createdb" "$rdb" || return 1
  "$bindir/pg_restore" --section=pre-data -d "$rdb" "$out/$db.fd" >"$logs/$rdb-pre.log" 2>&1 \
    || { tail -n 25 "$logs/$rdb-pre.log" | sed 's/^/    | /' >&2; return 1; }
  "$bindir/pg_restore" -l "$out/$db.fd" >"$fdir/toc.list" || return 1
  grep -E '^[0-9]+; [0-9]+ [0-9]+ SEQUENCE SET ' "$fdir/toc.list" >"$fdir/sequences.list" || true
  if [ -s "$fdir/sequences.list" ]; then
    "$bindir/pg_restore" -L "$fdir/sequences.list" -d "$rdb" "$out/$db.fd" \
      >>"$logs/$rdb-pre.log" 2>&1 || { tail -n 25 "$logs/$rdb-pre.log" >&2; return 1; }
  fi
  tables=$(psql_q -d "$db" -c "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname !~ '^pg_' ORDER BY pg_table_size(c.oid) DESC, 1") || return 1
  while IFS= read -r t; do
    [ -n "$t" ] || continue
    n=$((n + 1))
    f=$(printf '%s/%05d' "$fdir" "$n")
    psql_q -d "$db" -c "\\copy $t TO '$f.bin' (FORMAT binary)" </dev/null >/dev/null || return 1
    printf 'BEGIN;\nTRUNCATE ONLY %s;\n\\copy %s FROM '"'"'%s'"'"' (FORMAT binary)\nCOMMIT;\n' \
      "$t" "$t" "$f.bin" >"$f.sql"
  done <<<"$tables"
}

# ---------------------------------------------------------------------------------
# The benchmark for one database
# ---------------------------------------------------------------------------------
reports=()

bench_db() {
  local db=$1 label=$2 key repo
  echo "== $db: $label" >&2
  psql_q -d "$db" -c "VACUUM (FREEZE, ANALYZE)" -c "CHECKPOINT"
  local db_bytes heap_bytes
  db_bytes=$(psql_q -d "$db" -c "SELECT pg_database_size(current_database())")
  heap_bytes=$(psql_q -d "$db" -c "SELECT coalesce(sum(pg_table_size(c.oid)), 0) FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r'
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_'")
  fingerprint "$db" >"$logs/$db.fp"

  # 1. pgbunker backup into a fresh repository with a random key.
  key=$(random_hex32)
  repo=$out/$db-repo
  if PGBUNKER_KEY=$key "$pgbunker" init --repo "$repo" >"$logs/$db-init.log" 2>&1; then
    PGBUNKER_KEY=$key run_step "$db.bunker_backup" "$repo" \
      "$pgbunker" --no-progress backup --repo "$repo" --jobs "$jobs" "$(url "$db")"
  else
    echo "  pgbunker init failed:" >&2; sed 's/^/    | /' "$logs/$db-init.log" >&2
    failures=$((failures + 1)); skip_step "$db.bunker_backup"; OK[$db.bunker_backup]=0
  fi

  # 2. pg_dump directory format, parallel.
  run_step "$db.pgdump_fd" "$out/$db.fd" \
    "$bindir/pg_dump" -Fd -j "$jobs" -f "$out/$db.fd" -d "$db"

  # 3. The runbook: custom format through openssl.
  if [ "$have_openssl" = 1 ]; then
    # /usr/bin/time runs programs, not shell functions: the pipeline is a bash -c. The
    # passphrase travels in the environment, as in the runbook.
    PASS=$(random_hex32) run_step "$db.runbook" "$out/$db.dump.enc" bash -c 'set -o pipefail
      "$0" -Fc -d "$1" | openssl enc -aes-256-cbc -salt -pbkdf2 -pass env:PASS -out "$2"' \
      "$bindir/pg_dump" "$db" "$out/$db.dump.enc"
  else
    skip_step "$db.runbook"
  fi

  # 4. The floor: every table's binary COPY to /dev/null, one session, sequentially.
  psql_q -d "$db" -c "$user_tables_sql" | sed 's/.*/COPY & TO STDOUT (FORMAT binary);/' \
    >"$work/$db-floor.sql"
  run_step "$db.floor" - bash -c 'exec "$0" -X -q -v ON_ERROR_STOP=1 -d "$1" -f "$2" >/dev/null' \
    "$bindir/psql" "$db" "$work/$db-floor.sql"

  # 5. Restores into new empty databases.
  if [ "${OK[$db.bunker_backup]}" = 1 ]; then
    "$bindir/createdb" "${db}_r_bunker"
    PGBUNKER_KEY=$key restore_step "$db.bunker_restore" "${db}_r_bunker" \
      "$pgbunker" --no-progress restore --repo "$repo" latest --target "$(url "${db}_r_bunker")" --jobs "$jobs"
    # pg_restore does not ANALYZE; this row makes the like-for-like comparison visible.
    "$bindir/createdb" "${db}_r_bunker_na"
    PGBUNKER_KEY=$key restore_step "$db.bunker_restore_na" "${db}_r_bunker_na" \
      "$pgbunker" --no-progress restore --repo "$repo" latest --target "$(url "${db}_r_bunker_na")" \
      --jobs "$jobs" --no-analyze
  else
    skip_step "$db.bunker_restore"
    skip_step "$db.bunker_restore_na"
  fi
  if [ "${OK[$db.pgdump_fd]}" = 1 ]; then
    "$bindir/createdb" "${db}_r_pgrestore"
    restore_step "$db.pg_restore" "${db}_r_pgrestore" \
      "$bindir/pg_restore" -j "$jobs" -d "${db}_r_pgrestore" "$out/$db.fd"
  else
    skip_step "$db.pg_restore"
  fi

  # 6. The restore floor: pre-data, sequence values and the exported table files are
  # prepared untimed; timed: binary COPY FROM of every table over N psql sessions (one
  # table per session, largest first), then the dump's post-data with pg_restore -j N.
  local fdir=$out/$db-floor
  if [ "${OK[$db.pgdump_fd]}" != 1 ]; then
    skip_step "$db.floor_restore"
  elif echo "  preparing the restore floor (untimed) ..." >&2 \
       && floor_setup "$db" "${db}_r_floor" "$fdir"; then
    restore_step "$db.floor_restore" "${db}_r_floor" bash -c 'set -o pipefail
      printf "%s\n" "$1"/*.sql | xargs -P "$2" -I{} "$3/psql" -X -q -v ON_ERROR_STOP=1 -d "$4" -f {} \
        && "$3/pg_restore" --section=post-data -j "$2" -d "$4" "$5"' \
      floor "$fdir" "$jobs" "$bindir" "${db}_r_floor" "$out/$db.fd"
  else
    echo "  preparing the restore floor failed" >&2
    skip_step "$db.floor_restore"; OK[$db.floor_restore]=0
    failures=$((failures + 1))
  fi

  echo "  verifying restored databases ..." >&2
  verify_restore "$db.bunker_restore" "$db" "${db}_r_bunker"
  verify_restore "$db.bunker_restore_na" "$db" "${db}_r_bunker_na"
  verify_restore "$db.pg_restore" "$db" "${db}_r_pgrestore"
  verify_restore "$db.floor_restore" "$db" "${db}_r_floor"

  reports+=("$(report_db "$db" "$label" "$db_bytes" "$heap_bytes")")

  # Free the disk before the next database.
  rm -rf "${out:?}"/"$db"*
  "$bindir/dropdb" --if-exists "${db}_r_bunker"
  "$bindir/dropdb" --if-exists "${db}_r_bunker_na"
  "$bindir/dropdb" --if-exists "${db}_r_pgrestore"
  "$bindir/dropdb" --if-exists "${db}_r_floor"
}

mb() { if [ "$1" = - ]; then echo -; else awk -v b="$1" 'BEGIN{printf "%.1f", b/1e6}'; fi; }
ratio() {
  # $1 step id, $2 reference id: time(step) / time(reference)
  local a=${TIME[$1]:--} b=${TIME[$2]:--}
  if [ "${OK[$1]:-}" = 1 ] && [ "${OK[$2]:-}" = 1 ]; then
    awk -v a="$a" -v b="$b" 'BEGIN{ if (b > 0) printf "%.2f", a/b; else print "-" }'
  else
    echo -
  fi
}

report_db() {
  local db=$1 label=$2 db_bytes=$3 heap_bytes=$4 row id name ref
  printf 'database %s: %s; %s MB on disk, of which tables (heap+TOAST) %s MB\n' \
    "$db" "$label" "$(mb "$db_bytes")" "$(mb "$heap_bytes")"
  printf '%-42s  %8s  %11s  %10s  %11s  %s\n' step seconds "peak RSS MB" "output MB" "vs pgbunker" check
  for row in \
    "bunker_backup;pgbunker backup --jobs $jobs;bunker_backup" \
    "pgdump_fd;pg_dump -Fd -j $jobs;bunker_backup" \
    "runbook;pg_dump -Fc | openssl enc -aes-256-cbc;bunker_backup" \
    "floor;floor: COPY (FORMAT binary) > /dev/null;bunker_backup" \
    "bunker_restore;pgbunker restore --jobs $jobs;bunker_restore" \
    "bunker_restore_na;pgbunker restore --jobs $jobs --no-analyze;bunker_restore" \
    "pg_restore;pg_restore -j $jobs (from -Fd);bunker_restore" \
    "floor_restore;floor: COPY FROM (binary) + post-data;bunker_restore"; do
    IFS=';' read -r id name ref <<<"$row"
    id=$db.$id
    local t=${TIME[$id]:--} status
    case "${OK[$id]:-skip}" in
      1) status=${VERIFY[$id]:-ok} ;;
      0) status=FAILED; t=FAILED ;;
      *) status=skipped ;;
    esac
    printf '%-42s  %8s  %11s  %10s  %11s  %s\n' "$name" "$t" "${RSS[$id]:--}" \
      "$(mb "${SIZE[$id]:--}")" "$(ratio "$id" "$db.$ref")" "$status"
  done
  echo
  echo "where the restore time went: seconds during which at least one statement of the kind ran"
  printf '%-42s  %6s  %9s  %6s  %7s  %6s  %6s\n' step COPY "keys+idx" FKs ANALYZE other idle
  for row in \
    "bunker_restore;pgbunker restore --jobs $jobs" \
    "bunker_restore_na;pgbunker restore --jobs $jobs --no-analyze" \
    "pg_restore;pg_restore -j $jobs (from -Fd)" \
    "floor_restore;floor: COPY FROM (binary) + post-data"; do
    IFS=';' read -r id name <<<"$row"
    local c=- i=- f=- a=- o=- z=-
    if [ "${SPLIT[$db.$id]:--}" != - ]; then read -r c i f a o z <<<"${SPLIT[$db.$id]}"; fi
    printf '%-42s  %6s  %9s  %6s  %7s  %6s  %6s\n' "$name" "$c" "$i" "$f" "$a" "$o" "$z"
  done
}

# ---------------------------------------------------------------------------------
# Load and run
# ---------------------------------------------------------------------------------
load_fixture heart "$scale"
load_heart=$load_seconds

if [ "$pgbench_scale" -gt 0 ]; then
  echo "pgbench -i -s $pgbench_scale ..." >&2
  "$bindir/createdb" bench
  "$bindir/pgbench" -i -q -s "$pgbench_scale" bench >"$logs/load-bench.log" 2>&1 \
    || { tail -n 30 "$logs/load-bench.log" >&2; die "pgbench -i failed"; }
fi

bench_db heart "heart-recovery fixture, scale $scale (loaded in ${load_heart} s)"
if [ "$pgbench_scale" -gt 0 ]; then
  bench_db bench "pgbench -i -s $pgbench_scale"
fi

# ---------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------
server_version=$(psql_q -d postgres -c "SHOW server_version")

echo
echo "pgbunker compare — $(date -u '+%Y-%m-%d %H:%M UTC')"
machine_line
# With PGBUNKER_BIN the binary need not match the tree: build_label says so.
echo "pgbunker $("$pgbunker" --version 2>/dev/null | awk '{print $2}') ($(build_label)); PostgreSQL $server_version (fsync=off, same machine)"
echo "--jobs $jobs everywhere; wall-clock seconds; peak RSS of the largest client process$([ "$have_gnutime" = 1 ] || echo ' (unavailable: no /usr/bin/time)')"
echo "vs pgbunker = step time / pgbunker time for the same job (>1: pgbunker faster)"
for r in "${reports[@]}"; do
  echo
  echo "$r"
done
echo
if [ "$failures" -gt 0 ]; then
  echo "$failures step(s) or check(s) FAILED"
  exit 1
fi
echo "all steps succeeded; restored databases match their source"
