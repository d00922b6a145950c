#!/usr/bin/env bash
# benches/scaling.sh — how backup time grows with the number of tables.
#
# Usage: benches/scaling.sh [--counts N,N,...] [--jobs N] [--runs N] [--pg-dump-bin DIR]
#                           (defaults: 30,300,3000,30000; 2; 3; the newest pg_dump found)
#
# Starts a throwaway PostgreSQL (as `nobody` when root; removed on exit) with
# max_locks_per_transaction = 64 + (largest count) / 10, and for each count N a
# database of N small tables shaped like compare.sh's `many` (`parent`, 50 rows, and
# t1 … tN: id int PRIMARY KEY, ref int NOT NULL REFERENCES parent (odd) or the table
# before (even), note text NOT NULL, an index on ref, 50 rows each), then VACUUM
# (FREEZE, ANALYZE). It then times, --runs rounds, interleaved, each round running
#   pgbunker backup --jobs J                      into a fresh encrypted repository
#   pg_dump -Fd -j J --compress=zstd:3            into a fresh folder
# on every database, CHECKPOINT before each step. Nothing is deleted until the end (see
# compare.sh's set_aside: ext4's search past recently deleted inodes). It prints, per
# count and tool, the median wall seconds, client CPU seconds (GNU time, children
# included) and milliseconds per table, and pg_dump's time over pgbunker's. A straight
# line (the same milliseconds per table at every count) is the goal.
#
# Environment: PGBUNKER_PG_BIN (server binaries), PGBUNKER_PG_DUMP (pg_dump folder),
# PGBUNKER_BIN (else cargo build --release), TMPDIR. Needs /usr/bin/time.
set -euo pipefail
bench=scaling.sh
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/lib.sh
. "$root/benches/lib.sh"

counts=30,300,3000,30000; jobs=2; runs=3; pg_dump_bin=
parse_args counts jobs runs pg-dump-bin -- "$@"
is_uint "$jobs" && [ "$jobs" -ge 1 ] || die "--jobs must be a positive integer"
is_uint "$runs" && [ "$runs" -ge 1 ] || die "--runs must be a positive integer"
IFS=, read -r -a ns <<<"$counts"
largest=0
for n in "${ns[@]}"; do
  is_uint "$n" && [ "$n" -ge 1 ] || die "--counts takes positive integers, got '$n'"
  [ "$n" -gt "$largest" ] && largest=$n
done

find_server_bindir psql createdb
find_pg_dump "$pg_dump_bin"
detect_optional_tools
[ "$have_gnutime" = 1 ] || die "needs GNU time as /usr/bin/time (apt install time)"
make_workdir pgbunker-scaling
find_pgbunker
start_cluster "autovacuum = off" "max_locks_per_transaction = $((64 + largest / 10))"
key=$(random_hex32)

for n in "${ns[@]}"; do
  echo "creating $n small tables ..." >&2
  create_small_tables "t$n" "$n"
  psql_q -d "t$n" -c "VACUUM (FREEZE, ANALYZE)" >/dev/null
done

# time_step NAME COMMAND... — appends "NAME wall cpu" to $work/times.
time_step() {
  local name=$1 t0 t1; shift
  psql_q -d postgres -c CHECKPOINT >/dev/null
  wait_backends_gone
  t0=$(now)
  /usr/bin/time -f '%U %S' -o "$work/time" "$@" >"$logs/step.log" 2>&1 \
    || { cat "$logs/step.log" >&2; die "$name failed"; }
  t1=$(now)
  awk -v n="$name" -v a="$t0" -v b="$t1" 'NR == 1 {printf "%s %.3f %.2f\n", n, b - a, $1 + $2}' \
    "$work/time" >>"$work/times"
  echo "  $name: $(tail -n 1 "$work/times" | cut -d' ' -f2) s" >&2
}

for ((r = 1; r <= runs; r++)); do
  for n in "${ns[@]}"; do
    repo=$out/repo-$n-$r
    PGBUNKER_KEY=$key "$pgbunker" init --repo "$repo" >/dev/null
    PGBUNKER_KEY=$key time_step "pgbunker.$n" \
      "$pgbunker" --no-progress backup --repo "$repo" --jobs "$jobs" "$(url "t$n")"
    time_step "pg_dump.$n" "$dumpbin/pg_dump" -Fd -j "$jobs" --compress=zstd:3 \
      -f "$out/dump-$n-$r" -d "t$n"
  done
done

echo
echo "backup time by table count: pgbunker $("$pgbunker" --version | awk '{print $2}') ($(build_label)) against pg_dump $dump_version -Fd -j $jobs --compress=zstd:3"
echo "$(machine_line); PostgreSQL $(psql_q -d postgres -c 'SHOW server_version'); median of $runs interleaved run(s)"
printf '%8s  %12s %10s %10s  %12s %10s %10s  %8s\n' tables "pgbunker s" "CPU s" "ms/table" \
  "pg_dump s" "CPU s" "ms/table" "ratio"
for n in "${ns[@]}"; do
  read -r bw bc < <(awk -v k="pgbunker.$n" '$1 == k {print $2, $3}' "$work/times" | sort -n | awk '{w[NR]=$1; c[NR]=$2} END {m=int((NR+1)/2); print w[m], c[m]}')
  read -r dw dc < <(awk -v k="pg_dump.$n" '$1 == k {print $2, $3}' "$work/times" | sort -n | awk '{w[NR]=$1; c[NR]=$2} END {m=int((NR+1)/2); print w[m], c[m]}')
  awk -v n="$n" -v bw="$bw" -v bc="$bc" -v dw="$dw" -v dc="$dc" 'BEGIN {
    printf "%8d  %12.2f %10.2f %10.3f  %12.2f %10.2f %10.3f  %7.2fx\n",
      n, bw, bc, bw * 1000 / (n + 1), dw, dc, dw * 1000 / (n + 1), dw / bw }'
done
