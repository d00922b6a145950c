#!/usr/bin/env bash
# benches/mask.sh — what `restore --mask` costs over the same restore unmasked.
#
# Usage:
#   benches/mask.sh [--scale N] [--runs N] [--jobs N] [--rules FILE]
#
#   --scale N    heart-recovery fixture scale loaded into db `heart`
#                (1 ≈ 10 MB, 10 ≈ 100 MB, 100 ≈ 1 GB). Default 100.
#   --runs N     timed restores of each kind, interleaved; medians are reported. Default 3.
#   --jobs N     restore connections (-j). Default 2.
#   --rules F    masking rules. Default fixtures/heart_recovery/mask.toml (42 columns of
#                12 tables: names, contacts, MRNs, notes, every patient date shifted).
#
# What it does, on a throwaway PostgreSQL it starts itself (lib.sh: initdb in a mktemp
# folder, free loopback port, fsync=off, autovacuum off; all removed on exit):
#   * loads the fixture and backs it up once (untimed);
#   * restores it, --runs times each, interleaved, into a new database each time, under
#     GNU time (wall, client CPU, peak RSS) with the server's CPU from /proc:
#       plain   pgbunker restore latest --target …
#       masked  pgbunker restore latest --target … --mask RULES
#     and checks every restore loaded the same number of rows;
#   * prints the medians and masked/plain.
#
# pgbunker: PGBUNKER_BIN, else `cargo build --release`.
set -euo pipefail

scale=100
runs=3
jobs=2
rules=

bench=mask.sh
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/lib.sh
. "$root/benches/lib.sh"

parse_args scale runs jobs rules -- "$@"
check_scale "$scale"
is_uint "$runs" && [ "$runs" -ge 1 ] || die "--runs must be a positive integer, got '$runs'"
is_uint "$jobs" && [ "$jobs" -ge 1 ] || die "--jobs must be a positive integer, got '$jobs'"
rules=${rules:-$root/fixtures/heart_recovery/mask.toml}
[ -f "$rules" ] || die "no rules file at $rules"

check_fixture
find_server_bindir psql createdb dropdb
detect_optional_tools
[ "$have_gnutime" = 1 ] || die "needs GNU time as /usr/bin/time (apt install time)"
clk_tck=$(getconf CLK_TCK)
make_workdir pgbunker-mask
find_pgbunker

start_cluster "autovacuum = off"
load_fixture heart "$scale"
psql_q -d heart -c "VACUUM (FREEZE, ANALYZE)" -c "CHECKPOINT"

export PGBUNKER_KEY PGBUNKER_MASK_KEY
PGBUNKER_KEY=$(random_hex32)
PGBUNKER_MASK_KEY=$(random_hex32)
export PGBUNKER_STATE_DIR=$work/state
repo=$out/repo
pgb() { "$pgbunker" --no-progress "$@"; }

echo "backing up ..." >&2
pgb init --repo "$repo" >"$logs/init.log" 2>&1
pgb backup --repo "$repo" "$(url heart)" >"$logs/backup.log" 2>&1

declare -A TIMES CPUS RSS SRV ROWS
step() {
  local id=$1; shift
  local tf=$logs/$id.time s0 s1 w cpu r
  "$bindir/dropdb" --if-exists "$id" && "$bindir/createdb" "$id"
  psql_q -d heart -c "CHECKPOINT"
  wait_backends_gone
  s0=$(postmaster_ticks)
  /usr/bin/time -f '%e %U %S %M' -o "$tf" "$pgbunker" --no-progress restore --repo "$repo" \
    latest --target "$(url "$id")" -j "$jobs" --json "$@" >"$logs/$id.json" 2>"$logs/$id.err" \
    || { tail -n 20 "$logs/$id.err" >&2; die "restore $id failed"; }
  wait_backends_gone
  s1=$(postmaster_ticks)
  read -r w cpu r < <(tail -n 1 "$tf" | awk '{printf "%.2f %.2f %.0f\n", $1, $2+$3, $4/1024}')
  TIMES[$id]+="$w "; CPUS[$id]+="$cpu "; RSS[$id]+="$r "
  SRV[$id]+="$(awk -v a="$s0" -v b="$s1" -v h="$clk_tck" 'BEGIN{printf "%.2f", (b-a)/h}') "
  ROWS[$id]=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rows"])' "$logs/$id.json")
}
for i in $(seq "$runs"); do
  echo "round $i/$runs ..." >&2
  step plain
  step masked --mask "$rules"
done
[ "${ROWS[plain]}" = "${ROWS[masked]}" ] || die "masked loaded ${ROWS[masked]} rows, plain ${ROWS[plain]}"
columns=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["masked"]["columns"]))' "$logs/masked.json")

med() { median $1; }
echo
echo "pgbunker restore -j $jobs, heart-recovery scale $scale: ${ROWS[plain]} rows; masked: $columns columns by $(basename "$rules")"
echo "$(machine_line); $(build_label); $runs interleaved runs, medians"
printf '%-7s %8s %10s %10s %8s\n' restore wall_s client_cpu server_cpu rss_mb
for id in plain masked; do
  printf '%-7s %8s %10s %10s %8s\n' "$id" "$(med "${TIMES[$id]}")" "$(med "${CPUS[$id]}")" \
    "$(med "${SRV[$id]}")" "$(med "${RSS[$id]}")"
done
awk -v m="$(med "${TIMES[masked]}")" -v p="$(med "${TIMES[plain]}")" \
  'BEGIN{printf "masked/plain %.3f (wall time)\n", m/p}'
