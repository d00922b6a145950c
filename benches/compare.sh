#!/usr/bin/env bash
# benches/compare.sh — pgbunker against pg_dump / pg_restore, end to end, on one machine.
#
# Usage:
#   benches/compare.sh [--scale N] [--jobs N] [--runs N] [--pgbench-scale N]
#                      [--tables N] [--pg-dump-bin DIR]
#
#   --scale N          heart-recovery fixture scale loaded into db `heart`
#                      (1 ≈ 10 MB, 10 ≈ 100 MB, 100 ≈ 1 GB). Default 10.
#   --jobs N           parallelism given to every tool that has one. Default 2.
#   --runs N           rounds: every figure is the median over N runs. Default 3.
#   --pgbench-scale N  also run everything on `pgbench -i -s N` in db `bench`
#                      (1 ≈ 15 MB). Default 0 = skip.
#   --tables N         also run everything on db `many`: N small tables, 50 rows each,
#                      with a primary key, an index and a foreign key each. Default 0 = skip.
#   --pg-dump-bin DIR  the folder holding the pg_dump and pg_restore to compare with.
#                      Default: PGBUNKER_PG_DUMP (a folder, or a pg_dump in it), else the
#                      newest of /opt/pgbunker-pg/client/bin, the pg_dump on PATH and the
#                      server's bin folder.
#
# What it does, all in one run, on a throwaway PostgreSQL it starts itself:
#   * finds the server binaries (PGBUNKER_PG_BIN, else `pg_config --bindir`, else the
#     newest /usr/lib/postgresql/*/bin), runs initdb in a mktemp folder (as `nobody`
#     when run as root) and starts it on a free loopback port with fsync=off and
#     autovacuum=off. The cluster and every file the script made are removed on exit,
#     whatever happens;
#   * builds pgbunker (`cargo build --release -q`), unless PGBUNKER_BIN names a binary;
#   * loads the fixture (and pgbench, and the many-tables database), then VACUUM (FREEZE,
#     ANALYZE) so that no timed step pays for setting hint bits on freshly loaded rows;
#   * for each database, times these rows, N rounds, each round running every backup row
#     once in the order below (A B C … A B C …), then N rounds of the restore rows:
#       backup   pgbunker backup --jobs N            into a fresh encrypted repository
#                pg_dump -Fd -j N                    gzip (pg_dump's default)
#                pg_dump -Fd -j N --compress=zstd:3
#                pg_dump -Fd -j N --compress=lz4     (pgbunker and pg_dump fsync output)
#                pg_dump -Fc | openssl enc -aes-256-cbc -pbkdf2   (the cron runbook)
#                raw COPY … TO STDOUT (FORMAT binary) of every table to /dev/null,
#                one psql session, one table after another (the floor: what the
#                server alone costs to read the data out on one connection; with
#                --jobs > 1 the parallel tools can beat it)
#       restore  pgbunker restore latest --jobs N    into a new empty database
#                … the same with --no-analyze         (pg_restore does not ANALYZE)
#                pg_restore -j N -d                  from each -Fd dump, new empty db
#                the floor: into a database already holding the dump's pre-data and
#                sequence values (`pg_restore --section=pre-data`, untimed), with every
#                table's data already exported to a file by `\copy … TO (FORMAT binary)`
#                (untimed, once): `\copy … FROM (FORMAT binary)` over N parallel psql
#                sessions (xargs -P N; the tables, largest first, dealt to the session
#                with the fewest bytes so far; each table in `BEGIN; TRUNCATE ONLY;
#                COPY; COMMIT` as pg_restore -j does; a big table is not split), then
#                `pg_restore --section=post-data -j N` (keys, indexes, foreign keys).
#                What the server alone costs to take the data in and index it, with no
#                decoding, checking or scheduling;
#     Before each timed step: CHECKPOINT, and no backend left running. Backup outputs
#     are made anew each round (the restores read the last round's); each restore goes
#     into a new database, checked and renamed aside. Nothing is deleted until the
#     database's restores are done (previous outputs are moved aside): see set_aside;
#   * measures per step: wall seconds; client CPU seconds (user+sys from GNU time: the
#     command and every child it waited for, so pg_dump -j's and pg_restore -j's worker
#     processes and both ends of the runbook's pipe); server CPU seconds (the
#     postmaster's utime+stime+cutime+cstime from /proc/PID/stat, read before the step
#     and again once every backend has exited and been reaped, ÷ CLK_TCK); peak RSS
#     (GNU time %M); output size (du -sb). "machine CPU" = client + server;
#   * checks that every restored database (every run) holds the same rows, indexes,
#     constraints and sequence values as the source (not timed; a difference fails);
#   * prints one plain-text table per database: the median of each measure over the
#     runs, the range of wall times, and "wall x" / "CPU x", the step's median wall
#     time / machine CPU divided by pgbunker's for the same job (backup or restore):
#     above 1.00 means pgbunker was faster / cheaper.
#     Under it, where each restore's time went, from the server log of the restored
#     database (log_min_duration_statement=0 there only): for each kind of statement
#     (COPY, keys and indexes, foreign keys, ANALYZE, other DDL), the wall-clock time
#     during which at least one statement of that kind ran (median over the runs).
#     Kinds overlap when a tool runs them at once (pg_restore -j builds a table's
#     indexes while others load); "idle" is the step's time during which no statement
#     ran at all (client start, pgbunker's pre-flight check of the repository,
#     connecting, gaps).
#
# Exit status: 0 when every step and check succeeded, 1 otherwise (the table is
# still printed, failed steps say FAILED and the tail of their log is shown).
#
# Caveats when reading the numbers:
#   * peak RSS is GNU time's %M: the largest single process of the command. For
#     `pg_dump -j N` / `pg_restore -j N` (one process per worker) and for the
#     openssl pipeline, the tree as a whole uses more. The server is not counted.
#   * server CPU leaves out the checkpointer, background writer and walwriter (they
#     run for the whole benchmark), so writing the data files out is not counted.
#   * pgbunker restore runs ANALYZE at the end; pg_restore does not: compare pg_restore
#     with the --no-analyze row too.
#   * pgbunker uses zstd level 3 and encrypts; pg_dump -Fd does not encrypt.
#   * client and server share the machine's cores.
#   * the restore floor splits no table: with one table far larger than the others,
#     its data load runs on one session whatever N is (pgbunker loads a table backed
#     up in parts on several).
#   * pg_restore 17+ sends `SET transaction_timeout = 0`, which PostgreSQL 16 and older
#     reject; it carries on and exits 1. A run whose only errors are that one counts as
#     done (marked * in the table); its restored database is checked as any other.
#   * a row whose compression the pg_dump cannot do (zstd and lz4 need pg_dump 16 built
#     with them) is skipped, and the reason printed.
#
# Environment: PGBUNKER_PG_BIN (server binaries), PGBUNKER_PG_DUMP (pg_dump and
# pg_restore), PGBUNKER_BIN (use this pgbunker, skip the build), TMPDIR (where the
# cluster and the outputs go: room for the databases, the five backups of one
# database for every run, every restored copy of one database, and the floor's
# binary COPY files). Needs
# bash, pgrep, xargs, and psql, createdb, dropdb from the server's bin folder; openssl
# and GNU time as /usr/bin/time are optional (without GNU time: no client CPU, no
# RSS). It installs nothing.
set -euo pipefail

scale=10
jobs=2
runs=3
pgbench_scale=0
tables=0
pg_dump_bin=

bench=compare.sh
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/lib.sh
. "$root/benches/lib.sh"
parse_args scale jobs runs pgbench-scale tables pg-dump-bin -- "$@"
check_scale "$scale"
is_uint "$jobs" && [ "$jobs" -ge 1 ] || die "--jobs must be a positive integer, got '$jobs'"
if ! is_uint "$runs" || [ "$runs" -lt 1 ]; then die "--runs must be a positive integer, got '$runs'"; fi
is_uint "$pgbench_scale" || die "--pgbench-scale must be a non-negative integer, got '$pgbench_scale'"
is_uint "$tables" || die "--tables must be a non-negative integer, got '$tables'"
jobs=$((10#$jobs)); runs=$((10#$runs)); pgbench_scale=$((10#$pgbench_scale)); tables=$((10#$tables))

check_fixture
find_server_bindir psql createdb dropdb
find_pg_dump "$pg_dump_bin"
if [ "$pgbench_scale" -gt 0 ] && [ ! -x "$bindir/pgbench" ]; then
  die "--pgbench-scale needs $bindir/pgbench"
fi
detect_optional_tools
clk_tck=$(getconf CLK_TCK)
make_workdir pgbunker-compare
find_pgbunker

# Epoch timestamps in the server log: the restore splits are computed from it. No
# autovacuum: its workers would run (and be counted as server CPU) at random points.
# With many tables, room in the lock table for a tool holding several locks per table
# in one transaction (the default holds 64 × about 80 connection slots).
conf=("log_line_prefix = '%n [%d] '" "autovacuum = off")
if [ "$tables" -gt 0 ]; then conf+=("max_locks_per_transaction = $((64 + tables / 10))"); fi
start_cluster "${conf[@]}"
server_major=$(psql_q -d postgres -c "SELECT current_setting('server_version_num')::int / 10000")
[ -r "/proc/$postmaster/stat" ] || die "cannot read /proc/$postmaster/stat (the server's CPU)"

# Which compressions this pg_dump can write: a schema-only dump of `postgres` with each.
declare -A ZSPEC=([gzip]="" [zstd]="zstd:3" [lz4]="lz4") NOZ
for c in zstd lz4; do
  if ! "$dumpbin/pg_dump" -Fd -s --compress="${ZSPEC[$c]}" -f "$work/probe-$c" -d postgres \
       >"$logs/probe-$c.log" 2>&1; then
    NOZ[$c]="pg_dump $dump_version: $(head -n 1 "$logs/probe-$c.log")"
  fi
  rm -rf "$work/probe-$c"
done

# ---------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------
# Per step, one value per run, space-separated: WALL, CPU (client user+sys), SRV
# (server), MACH (CPU + SRV), RSS (MB), SIZE (bytes). NRUN and NFAIL count the runs;
# OK[id] is 1 (every run succeeded), 0 (one failed) or skip (NOTE[id] says why).
# shellcheck disable=SC2034  # CPU … SIZE are written and read through namerefs (add, med)
declare -A WALL CPU SRV MACH RSS SIZE NRUN NFAIL OK NOTE
failures=0
last_rc=0   # exit status of the last run_step

add() { local -n into=$1; into[$2]="${into[$2]:-}${into[$2]:+ }$3"; }

# run_step ID OUTPUT_PATH|- CMD...  — one run of CMD, its output in $logs/ID.RUN.log.
run_step() {
  local id=$1 output=$2; shift 2
  local n=$(( ${NRUN[$id]:-0} + 1 ))
  local log=$logs/$id.$n.log tf=$logs/$id.$n.time t0 t1 s0 s1 rc=0 u=- r=- wall srv
  NRUN[$id]=$n
  echo "  [$n/$runs] $id ..." >&2
  psql_q -d postgres -c CHECKPOINT >/dev/null
  wait_backends_gone
  s0=$(postmaster_ticks)
  t0=$(now)
  if [ "$have_gnutime" = 1 ]; then
    /usr/bin/time -f '%U %S %M' -o "$tf" "$@" >"$log" 2>&1 || rc=$?
  else
    "$@" >"$log" 2>&1 || rc=$?
  fi
  t1=$(now)
  wait_backends_gone
  s1=$(postmaster_ticks)
  if [ "$rc" = 1 ] && only_tt_errors "$log"; then rc=0; TT[$id]=1; fi
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}')
  srv=$(awk -v a="$s0" -v b="$s1" -v h="$clk_tck" 'BEGIN{printf "%.2f", (b-a)/h}')
  if [ "$have_gnutime" = 1 ] && [ -s "$tf" ]; then
    # The last line: with a failing command GNU time writes "Command exited …" first.
    read -r u r < <(tail -n 1 "$tf" | awk 'NF == 3 {printf "%.2f %.1f\n", $1+$2, $3/1024; ok=1}
      END{if(!ok) print "- -"}')
  fi
  add WALL "$id" "$wall"; add SRV "$id" "$srv"; add CPU "$id" "$u"; add RSS "$id" "$r"
  add MACH "$id" "$(if [ "$u" = - ]; then echo -; else awk -v a="$u" -v b="$srv" 'BEGIN{printf "%.2f", a+b}'; fi)"
  if [ "$output" != - ] && [ -e "$output" ]; then
    add SIZE "$id" "$(du -sb "$output" | cut -f1)"
  fi
  last_rc=$rc
  if [ "$rc" = 0 ]; then
    [ "${OK[$id]:-}" = 0 ] || OK[$id]=1
  else
    fail_run "$id" "exit $rc" "$log"
  fi
}

# pg_restore 17 and later send `SET transaction_timeout = 0` on each connection, which
# PostgreSQL 16 and older reject; pg_restore goes on with the rest (the setting only
# lifts a timeout) and exits 1 at the end. A run whose only errors are these counts as
# a success, marked TT[id]; its restored database is compared with the source as any.
declare -A TT
only_tt_errors() {
  grep -q 'unrecognized configuration parameter "transaction_timeout"' "$1" \
    && ! grep -i 'error' "$1" \
         | grep -qv 'unrecognized configuration parameter "transaction_timeout"\|errors ignored on restore'
}

# fail_run ID WHY [LOG] — a failed run (of the step, or of its untimed preparation).
fail_run() {
  OK[$1]=0
  NFAIL[$1]=$(( ${NFAIL[$1]:-0} + 1 ))
  failures=$((failures + 1))
  echo "  $1 FAILED ($2)${3:+; last lines of its log:}" >&2
  if [ -n "${3:-}" ]; then tail -n 25 "$3" | sed 's/^/    | /' >&2; fi
}

skip_step() { OK[$1]=skip; NOTE[$1]=$2; }

# ---------------------------------------------------------------------------------
# Verification: rows, indexes, constraints and sequences, independent of the tools.
# ---------------------------------------------------------------------------------
user_tables_sql="SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname !~ '^pg_' ORDER BY 1"

# One session: a row count and content hash per table, then the catalog.
fingerprint() {
  local db=$1
  psql_q -d "$db" <<SQL
SELECT format('SELECT %L, count(*), coalesce(sum(hashtext(x::text)::bigint), 0) FROM %s AS x', t, t)
  FROM ($user_tables_sql) AS u (t) ORDER BY t
\\gexec
SELECT 'index', schemaname, tablename, indexdef FROM pg_indexes
  WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 2, 3, 4;
SELECT 'constraint', conrelid::regclass::text, contype, pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace::regnamespace::text NOT IN ('pg_catalog', 'information_schema')
  ORDER BY 2, 3, 4;
SELECT 'sequence', schemaname, sequencename, last_value FROM pg_sequences ORDER BY 2, 3;
SQL
}

declare -A VERIFY
# verify_restore ID SOURCE_DB RESTORED_DB — after each successful run; one difference
# marks the step DIFFERENT.
verify_restore() {
  local id=$1 n=${NRUN[$1]:-0}
  fingerprint "$3" >"$logs/$3.$n.fp" 2>&1 || true
  if diff -u "$logs/$2.fp" "$logs/$3.$n.fp" >"$logs/$3.$n.diff"; then
    [ "${VERIFY[$id]:-}" = DIFFERENT ] || VERIFY[$id]=identical
  else
    VERIFY[$id]=DIFFERENT
    failures=$((failures + 1))
    echo "  $id (run $n): restored database $3 differs from $2:" >&2
    head -n 40 "$logs/$3.$n.diff" | sed 's/^/    | /' >&2
  fi
}

# ---------------------------------------------------------------------------------

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
# statement run there logged; then one more line in SPLITS[ID] from the log it wrote.
declare -A SPLITS
restore_step() {
  local id=$1 db=$2 off split; shift 2
  psql_q -d postgres -c "ALTER DATABASE \"$db\" SET log_min_duration_statement = 0"
  off=$(log_size)
  run_step "$id" - "$@"
  psql_q -d postgres -c "ALTER DATABASE \"$db\" RESET log_min_duration_statement"
  if [ "$last_rc" = 0 ] \
     && split=$(tail -c +"$((off + 1))" "$work/server.log" | split_log "$db" "${WALL[$id]##* }"); then
    SPLITS[$id]+="$split"$'\n'
  fi
}

# floor_export DB FOLDER — once, untimed: for each table of DB its rows as NNNNN.bin
# (binary COPY, one psql session), and session-K.sql for K = 1..jobs, the psql scripts
# that load them the way pg_restore -j does (TRUNCATE in the same transaction, which
# lets wal_level=minimal skip the WAL): the tables, largest first, each dealt to the
# script with the fewest bytes so far.
floor_export() {
  local db=$1 fdir=$2
  mkdir -p "$fdir" || return 1
  psql_q -d "$db" -F $'\t' -c "SELECT format('%I.%I', n.nspname, c.relname), pg_table_size(c.oid)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname !~ '^pg_' ORDER BY 2 DESC, 1" >"$fdir/tables.tsv" || return 1
  awk -F'\t' -v dir="$fdir" -v jobs="$jobs" '
    {
      f = sprintf("%s/%05d.bin", dir, NR)
      printf "\\copy %s TO '\''%s'\'' (FORMAT binary)\n", $1, f > (dir "/export.sql")
      k = 1; for (i = 2; i <= jobs; i++) if (load[i] < load[k]) k = i
      load[k] += $2 + 1
      printf "BEGIN;\nTRUNCATE ONLY %s;\n\\copy %s FROM '\''%s'\'' (FORMAT binary)\nCOMMIT;\n", \
        $1, $1, f > (dir "/session-" k ".sql")
    }' "$fdir/tables.tsv" || return 1
  [ -s "$fdir/export.sql" ] || return 0
  psql_q -d "$db" -f "$fdir/export.sql" </dev/null >/dev/null
}

# floor_prepare RESTORED_DB DUMP — each run, untimed: a new database holding the dump's
# pre-data and sequence values.
floor_prepare() {
  local rdb=$1 dump=$2
  local log=$logs/$rdb-pre.log rc=0
  "$bindir/createdb" "$rdb" || return 1
  # Errors about transaction_timeout only are let through, as in the timed rows.
  "$dumpbin/pg_restore" --section=pre-data -d "$rdb" "$dump" >"$log" 2>&1 || rc=$?
  if [ "$rc" != 0 ] && { [ "$rc" != 1 ] || ! only_tt_errors "$log"; }; then return 1; fi
  "$dumpbin/pg_restore" -l "$dump" >"$work/$rdb-toc.list" || return 1
  grep -E '^[0-9]+; [0-9]+ [0-9]+ SEQUENCE SET ' "$work/$rdb-toc.list" >"$work/$rdb-seq.list" || true
  [ -s "$work/$rdb-seq.list" ] || return 0
  rc=0
  "$dumpbin/pg_restore" -L "$work/$rdb-seq.list" -d "$rdb" "$dump" >"$log.seq" 2>&1 || rc=$?
  cat "$log.seq" >>"$log"
  [ "$rc" = 0 ] || { [ "$rc" = 1 ] && only_tt_errors "$log.seq"; }
}

# ---------------------------------------------------------------------------------
# The benchmark for one database
# ---------------------------------------------------------------------------------
backup_rows=(bunker_backup pgdump_gzip pgdump_zstd pgdump_lz4 runbook floor)
restore_rows=(bunker_restore bunker_restore_na pg_restore_gzip pg_restore_zstd pg_restore_lz4 floor_restore)

row_name() {
  case $1 in
    bunker_backup) echo "pgbunker backup --jobs $jobs" ;;
    pgdump_gzip) echo "pg_dump -Fd -j $jobs (gzip)" ;;
    pgdump_*) echo "pg_dump -Fd -j $jobs --compress=${ZSPEC[${1#pgdump_}]}" ;;
    runbook) echo "pg_dump -Fc | openssl enc -aes-256-cbc" ;;
    floor) echo "floor: COPY (FORMAT binary) > /dev/null" ;;
    bunker_restore) echo "pgbunker restore --jobs $jobs" ;;
    bunker_restore_na) echo "pgbunker restore --jobs $jobs --no-analyze" ;;
    pg_restore_*) echo "pg_restore -j $jobs (from -Fd ${1#pg_restore_})" ;;
    floor_restore) echo "floor: COPY FROM (binary) + post-data" ;;
  esac
}

# set_aside PATH — moves the previous run's output out of the way instead of deleting
# it: on ext4, files created soon after thousands were deleted make every new inode
# search past the deleted ones (`recently_deleted` in a kernel profile: 60 % of the
# client's time in a 3000-table backup, for pgbunker and pg_dump alike), which a
# repository or dump folder that is not emptied before each backup never pays. What is
# set aside is removed with the database's outputs, after its restores.
set_aside() {
  [ -e "$1" ] || return 0
  mkdir -p "$out/${db:?}-aside"
  aside=$(( ${aside:-0} + 1 ))
  mv "$1" "$out/$db-aside/$aside"
}

# backup_once DB ROW — one run of a backup row (the output of the previous run set aside).
backup_once() {
  local db=$1 row=$2 id=$1.$2 c
  case $row in
    bunker_backup)
      set_aside "$repo"
      if PGBUNKER_KEY=$key "$pgbunker" init --repo "$repo" >"$logs/$db-init.log" 2>&1; then
        PGBUNKER_KEY=$key run_step "$id" "$repo" \
          "$pgbunker" --no-progress backup --repo "$repo" --jobs "$jobs" "$(url "$db")"
      else
        NRUN[$id]=$(( ${NRUN[$id]:-0} + 1 ))
        fail_run "$id" "pgbunker init failed" "$logs/$db-init.log"
      fi ;;
    pgdump_*)
      c=${row#pgdump_}
      set_aside "$out/$db.$c.fd"
      run_step "$id" "$out/$db.$c.fd" "$dumpbin/pg_dump" -Fd -j "$jobs" \
        ${ZSPEC[$c]:+"--compress=${ZSPEC[$c]}"} -f "$out/$db.$c.fd" -d "$db" ;;
    runbook)
      # /usr/bin/time runs programs, not shell functions: the pipeline is a bash -c. The
      # passphrase travels in the environment, as in the runbook.
      set_aside "$out/$db.dump.enc"
      PASS=$(random_hex32) run_step "$id" "$out/$db.dump.enc" bash -c 'set -o pipefail
        "$0" -Fc -d "$1" | openssl enc -aes-256-cbc -salt -pbkdf2 -pass env:PASS -out "$2"' \
        "$dumpbin/pg_dump" "$db" "$out/$db.dump.enc" ;;
    floor)
      run_step "$id" - bash -c 'exec "$0" -X -q -v ON_ERROR_STOP=1 -d "$1" -f "$2" >/dev/null' \
        "$bindir/psql" "$db" "$work/$db-floor.sql" ;;
  esac
}

# keep_restored DB — renames a restored database out of the way instead of dropping
# it (for the reason files are set aside, above: the server creates a file per table,
# index and TOAST table, and on 3000 tables a restore after a drop spent most of its
# time in the kernel's inode search); the copies are dropped with the database's
# outputs, after its restores.
keep_restored() {
  kept=$(( ${kept:-0} + 1 ))
  psql_q -d postgres -c "ALTER DATABASE \"$1\" RENAME TO \"${1}_kept_$kept\"" >/dev/null
}

# drop_kept DB — drops the restored copies of DB kept by keep_restored.
drop_kept() {
  local k
  for k in $(psql_q -d postgres -c "SELECT datname FROM pg_database WHERE datname LIKE '${1}\_r\_%\_kept\_%'"); do
    "$bindir/dropdb" --if-exists "$k"
  done
}

# restore_once DB ROW — one run of a restore row into a new database, checked against
# the source, then kept aside.
restore_once() {
  local db=$1 row=$2 id=$1.$2 rdb=$1_r_$2 c na=()
  last_rc=0
  "$bindir/dropdb" --if-exists "$rdb"
  case $row in
    bunker_restore|bunker_restore_na)
      [ "$row" = bunker_restore ] || na=(--no-analyze)
      "$bindir/createdb" "$rdb"
      PGBUNKER_KEY=$key restore_step "$id" "$rdb" \
        "$pgbunker" --no-progress restore --repo "$repo" latest --target "$(url "$rdb")" --jobs "$jobs" \
        "${na[@]}" ;;
    pg_restore_*)
      c=${row#pg_restore_}
      "$bindir/createdb" "$rdb"
      restore_step "$id" "$rdb" "$dumpbin/pg_restore" -j "$jobs" -d "$rdb" "$out/$db.$c.fd" ;;
    floor_restore)
      if ! floor_prepare "$rdb" "$out/$db.gzip.fd"; then
        NRUN[$id]=$(( ${NRUN[$id]:-0} + 1 ))
        fail_run "$id" "preparing the restore floor failed" "$logs/$rdb-pre.log"
        keep_restored "$rdb"
        return 0
      fi
      restore_step "$id" "$rdb" bash -c 'set -o pipefail
        printf "%s\n" "$1"/session-*.sql | xargs -P "$2" -I{} "$3/psql" -X -q -v ON_ERROR_STOP=1 -d "$4" -f {} \
          && "$6/pg_restore" --section=post-data -j "$2" -d "$4" "$5"' \
        floor "$fdir" "$jobs" "$bindir" "$rdb" "$out/$db.gzip.fd" "$dumpbin" ;;
  esac
  if [ "$last_rc" = 0 ]; then verify_restore "$id" "$db" "$rdb"; fi
  keep_restored "$rdb"
}

reports=()

bench_db() {
  local db=$1 label=$2 key repo fdir row r c
  echo "== $db: $label" >&2
  psql_q -d "$db" -c "VACUUM (FREEZE, ANALYZE)" -c "CHECKPOINT"
  local db_bytes heap_bytes ntables
  db_bytes=$(psql_q -d "$db" -c "SELECT pg_database_size(current_database())")
  heap_bytes=$(psql_q -d "$db" -c "SELECT coalesce(sum(pg_table_size(c.oid)), 0) FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r'
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_'")
  fingerprint "$db" >"$logs/$db.fp"
  ntables=$(psql_q -d "$db" -c "SELECT count(*) FROM ($user_tables_sql) AS u")
  psql_q -d "$db" -c "$user_tables_sql" | sed 's/.*/COPY & TO STDOUT (FORMAT binary);/' \
    >"$work/$db-floor.sql"
  key=$(random_hex32)
  repo=$out/$db-repo
  fdir=$out/$db-floor

  for c in zstd lz4; do
    if [ -n "${NOZ[$c]:-}" ]; then
      skip_step "$db.pgdump_$c" "${NOZ[$c]}"; skip_step "$db.pg_restore_$c" "no dump with $c"
    fi
  done
  [ "$have_openssl" = 1 ] || skip_step "$db.runbook" "no openssl"

  # Backups: round after round, every row once per round, in the same order.
  for ((r = 1; r <= runs; r++)); do
    for row in "${backup_rows[@]}"; do
      [ "${OK[$db.$row]:-}" = skip ] || backup_once "$db" "$row"
    done
  done

  # Restores need their backup (the last round's output) and every run of it good.
  [ "${OK[$db.bunker_backup]:-}" = 1 ] || {
    skip_step "$db.bunker_restore" "no backup"; skip_step "$db.bunker_restore_na" "no backup"; }
  for c in gzip zstd lz4; do
    [ "${OK[$db.pg_restore_$c]:-}" = skip ] || [ "${OK[$db.pgdump_$c]:-}" = 1 ] \
      || skip_step "$db.pg_restore_$c" "no dump"
  done
  if [ "${OK[$db.pgdump_gzip]:-}" != 1 ]; then
    skip_step "$db.floor_restore" "no -Fd dump for the pre- and post-data"
  else
    echo "  exporting every table for the restore floor (untimed) ..." >&2
    if ! floor_export "$db" "$fdir" >"$logs/$db-floor-export.log" 2>&1; then
      skip_step "$db.floor_restore" "exporting the tables failed"; OK[$db.floor_restore]=0
      failures=$((failures + 1))
      tail -n 25 "$logs/$db-floor-export.log" | sed 's/^/    | /' >&2
    fi
  fi
  for ((r = 1; r <= runs; r++)); do
    for row in "${restore_rows[@]}"; do
      case "${OK[$db.$row]:-}" in skip|0) [ "${NRUN[$db.$row]:-0}" -gt 0 ] || continue ;; esac
      restore_once "$db" "$row"
    done
  done

  reports+=("$(report_db "$db" "$label" "$db_bytes" "$heap_bytes" "$ntables")")

  # Free the disk before the next database.
  drop_kept "$db"
  rm -rf "${out:?}"/"$db"*
}

# ---------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------
mb() { if [ "$1" = - ]; then echo -; else awk -v b="$1" 'BEGIN{printf "%.1f", b/1e6}'; fi; }
fmt() { if [ "$2" = - ]; then echo -; else awk -v v="$2" -v f="$1" 'BEGIN{printf f, v}'; fi; }
# med ARRAY ID — the median of the runs' values of one measure.
med() {
  local -n from=$1
  local vs=()
  read -ra vs <<<"${from[$2]:-}"
  if [ "${#vs[@]}" = 0 ]; then echo -; else median "${vs[@]}"; fi
}
span() {
  awk -v v="${WALL[$1]:-}" 'BEGIN{ n = split(v, a, " "); if (!n) { print "-"; exit }
    lo = hi = a[1] + 0; for (i = 2; i <= n; i++) { if (a[i] < lo) lo = a[i]; if (a[i] > hi) hi = a[i] }
    printf "%.2f-%.2f", lo, hi }'
}
# ratio A B — A / B, or "-".
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a != "-" && b != "-" && b > 0) printf "%.2f", a/b; else print "-" }'; }

line_fmt='%-42s  %7s  %11s  %6s  %7s  %8s  %6s  %7s  %6s  %6s  %s\n'
report_db() {
  local db=$1 label=$2 db_bytes=$3 heap_bytes=$4 ntables=$5 row id ref status
  local w c s m rss size rw rc notes=() tt=0
  printf 'database %s: %s; %s tables, %s MB on disk, of which tables (heap+TOAST) %s MB\n' \
    "$db" "$label" "$ntables" "$(mb "$db_bytes")" "$(mb "$heap_bytes")"
  # shellcheck disable=SC2059  # the format is the one above
  printf "$line_fmt" step "wall s" "wall range" "CPU s" "srv CPU" "mach CPU" "RSS MB" "out MB" \
    "wall x" "CPU x" check
  for row in "${backup_rows[@]}" "${restore_rows[@]}"; do
    id=$db.$row
    case $row in *restore*) ref=$db.bunker_restore ;; *) ref=$db.bunker_backup ;; esac
    w=$(med WALL "$id"); c=$(med CPU "$id"); s=$(med SRV "$id"); m=$(med MACH "$id")
    rss=$(med RSS "$id"); size=$(med SIZE "$id")
    rw=-; rc=-
    if [ "${OK[$id]:-skip}" = 1 ] && [ "${OK[$ref]:-skip}" = 1 ]; then
      rw=$(ratio "$w" "$(med WALL "$ref")"); rc=$(ratio "$m" "$(med MACH "$ref")")
    fi
    case "${OK[$id]:-skip}" in
      1) status=${VERIFY[$id]:-ok} ;;
      0) status="FAILED (${NFAIL[$id]:-1} of ${NRUN[$id]:-1} runs)" ;;
      *) status=skipped ;;
    esac
    [ -z "${NOTE[$id]:-}" ] || notes+=("$(row_name "$row"): ${NOTE[$id]}")
    [ "${VERIFY[$id]:-}" != DIFFERENT ] || status=DIFFERENT
    if [ -n "${TT[$id]:-}" ]; then status="$status *"; tt=1; fi
    # shellcheck disable=SC2059
    printf "$line_fmt" "$(row_name "$row")" "$(fmt %.2f "$w")" "$(span "$id")" "$(fmt %.2f "$c")" \
      "$(fmt %.2f "$s")" "$(fmt %.2f "$m")" "$(fmt %.1f "$rss")" "$(mb "$size")" "$rw" "$rc" "$status"
  done
  for n in "${notes[@]}"; do echo "  ($n)"; done
  if [ "$tt" = 1 ]; then
    echo "  * pg_restore $dump_version sent SET transaction_timeout = 0, which PostgreSQL $server_major rejects: runs"
    echo "    whose only errors were that one (exit status 1) are counted as done; the restored databases were compared as always"
  fi
  echo
  echo "where the restore time went: seconds during which at least one statement of the kind ran (median over the runs)"
  printf '%-42s  %6s  %9s  %6s  %7s  %6s  %6s\n' step COPY "keys+idx" FKs ANALYZE other idle
  for row in "${restore_rows[@]}"; do
    id=$db.$row
    local k cols=()
    for k in 1 2 3 4 5 6; do
      cols+=("$(printf '%s' "${SPLITS[$id]:-}" | awk -v k="$k" 'NF == 6 {print $k}' \
        | { mapfile -t vs; if [ "${#vs[@]}" -gt 0 ]; then fmt %.2f "$(median "${vs[@]}")"; else echo -; fi; })")
    done
    printf '%-42s  %6s  %9s  %6s  %7s  %6s  %6s\n' "$(row_name "$row")" "${cols[@]}"
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

# many: N small tables (create_small_tables in lib.sh).
if [ "$tables" -gt 0 ]; then
  echo "creating $tables small tables ..." >&2
  t0=$(now)
  create_small_tables many "$tables"
  load_many=$(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}')
fi

load_average=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo -)
bench_db heart "heart-recovery fixture, scale $scale (loaded in ${load_heart} s)"
if [ "$pgbench_scale" -gt 0 ]; then
  bench_db bench "pgbench -i -s $pgbench_scale"
fi
if [ "$tables" -gt 0 ]; then
  bench_db many "$tables small tables + parent, 50 rows each (created in ${load_many} s)"
fi

server_version=$(psql_q -d postgres -c "SHOW server_version")

echo
echo "pgbunker compare — $(date -u '+%Y-%m-%d %H:%M UTC')"
machine_line
echo "load average before timing: $load_average"
# With PGBUNKER_BIN the binary need not match the tree: build_label says so.
echo "pgbunker $("$pgbunker" --version 2>/dev/null | awk '{print $2}') ($(build_label)); PostgreSQL $server_version (fsync=off, autovacuum=off, same machine)"
echo "pg_dump and pg_restore $dump_version ($dumpbin)"
echo "--jobs $jobs everywhere; median of $runs run(s), rounds interleaved (every backup row once per round, then every restore row)"
echo "wall s: wall-clock seconds (wall range: fastest-slowest run); CPU s: client user+sys, children included; srv CPU: the server's (postmaster and reaped backends)"
echo "mach CPU: CPU s + srv CPU; RSS MB: peak RSS of the largest client process; out MB: du -sb of the output"
[ "$have_gnutime" = 1 ] || echo "(no GNU time as /usr/bin/time: client CPU, mach CPU and RSS unavailable)"
echo "wall x / CPU x: the row's wall s / mach CPU divided by pgbunker's for the same job (>1: pgbunker faster / cheaper)"
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
