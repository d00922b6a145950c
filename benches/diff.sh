#!/usr/bin/env bash
# benches/diff.sh — `pgbunker diff`: what a row-level diff costs when little changed,
# against the same diff when nothing can be skipped (a full decode of the table).
#
# Usage:
#   benches/diff.sh [--scale N] [--runs N] [--changed PERMILLE]
#
#   --scale N       heart-recovery fixture scale loaded into db `heart`
#                   (1 ≈ 10 MB, 10 ≈ 100 MB, 100 ≈ 1 GB). Default 100.
#   --runs N        timed runs of each step, interleaved; medians are reported. Default 3.
#   --changed P     rows of public.vitals_samples changed between the snapshots, in
#                   thousandths (1 = 0.1 %). Default 1.
#
# What it does, on a throwaway PostgreSQL it starts itself (lib.sh: initdb in a mktemp
# folder, free loopback port, fsync=off, autovacuum off; all removed on exit):
#   * loads the fixture and backs it up (backup A, untimed);
#   * changes P/1000 of vitals_samples the way a clinic's day does: the newest readings
#     are corrected (their note and value updated), so the changed rows are the
#     table's last pages, then backs up again (B); rotates the repository key and backs
#     up once more (C: the same rows as B under a new key, so no chunk id is shared
#     with A: the path of backups older than format 5, every chunk read and decoded);
#   * times, interleaved, --runs times each, under GNU time (wall, client CPU, peak RSS):
#       dedup     pgbunker diff A B -t vitals_samples   (shared chunks skipped unread)
#       full      pgbunker diff A C -t vitals_samples   (nothing shared: full decode)
#       live      pgbunker diff A --live URL -t vitals_samples (plus server CPU: the
#                 live table is read with COPY)
#     and checks every run found the same counts;
#   * prints the medians and dedup/full, live/full.
#
# pgbunker: PGBUNKER_BIN, else `cargo build --release`.
set -euo pipefail

scale=100
runs=3
changed=1

bench=diff.sh
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/lib.sh
. "$root/benches/lib.sh"

parse_args scale runs changed -- "$@"
check_scale "$scale"
is_uint "$runs" && [ "$runs" -ge 1 ] || die "--runs must be a positive integer, got '$runs'"
is_uint "$changed" && [ "$changed" -ge 1 ] && [ "$changed" -le 1000 ] \
  || die "--changed must be 1 to 1000 (thousandths), got '$changed'"

check_fixture
find_server_bindir psql createdb
detect_optional_tools
[ "$have_gnutime" = 1 ] || die "needs GNU time as /usr/bin/time (apt install time)"
clk_tck=$(getconf CLK_TCK)
make_workdir pgbunker-diff
find_pgbunker

start_cluster "autovacuum = off"
load_fixture heart "$scale"
psql_q -d heart -c "VACUUM (FREEZE, ANALYZE)" -c "CHECKPOINT"
postmaster=$(head -n 1 "$pgdata/postmaster.pid")

export PGBUNKER_KEY
PGBUNKER_KEY=$(random_hex32)
export PGBUNKER_STATE_DIR=$work/state
repo=$out/repo
pgb() { "$pgbunker" --no-progress "$@"; }
backup_id() { pgb backup --repo "$repo" --json "$(url heart)" | python3 -c 'import json,sys; print(json.load(sys.stdin)["backup_id"])'; }

echo "backups A, B (after the change), C (same rows, new key) ..." >&2
pgb init --repo "$repo" >"$logs/init.log" 2>&1
a=$(backup_id)
rows=$(psql_q -d heart -c "SELECT count(*) FROM public.vitals_samples")
n=$((rows * changed / 1000))
psql_q -d heart -c "UPDATE public.vitals_samples SET note = 'corrected', value = value + 1
                    WHERE id > (SELECT max(id) FROM public.vitals_samples) - $n"
b=$(backup_id)
pgb key rotate --repo "$repo" >"$logs/rotate.log" 2>&1
c=$(backup_id)

declare -A TIMES CPUS RSS SRV COUNTS
server_ticks() { awk '{print $16 + $17}' "/proc/$postmaster/stat"; }
step() {
  local id=$1; shift
  local tf=$logs/$id.time s0 s1 w cpu r
  s0=$(server_ticks)
  /usr/bin/time -f '%e %U %S %M' -o "$tf" "$pgbunker" --no-progress diff --repo "$repo" \
    -t public.vitals_samples --json "$@" >"$logs/$id.json" 2>"$logs/$id.err" \
    || { tail -n 20 "$logs/$id.err" >&2; die "step $id failed"; }
  sleep 0.3
  s1=$(server_ticks)
  read -r w cpu r < <(tail -n 1 "$tf" | awk '{printf "%.2f %.2f %.0f\n", $1, $2+$3, $4/1024}')
  TIMES[$id]+="$w "; CPUS[$id]+="$cpu "; RSS[$id]+="$r "
  SRV[$id]+="$(awk -v a="$s0" -v b="$s1" -v h="$clk_tck" 'BEGIN{printf "%.2f", (b-a)/h}') "
  COUNTS[$id]=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); t=r["tables"][0]
print(t["inserted"], t["deleted"], t["updated"], t["chunks_read"], t["chunks_skipped"])' "$logs/$id.json")
}
for i in $(seq "$runs"); do
  echo "round $i/$runs ..." >&2
  step dedup "$a" "$b"
  step full "$a" "$c"
  step live "$a" --live "$(url heart)"
done
for id in full live; do
  read -r i1 d1 u1 _ <<<"${COUNTS[dedup]}"
  read -r i2 d2 u2 _ <<<"${COUNTS[$id]}"
  [ "$i1 $d1 $u1" = "$i2 $d2 $u2" ] || die "$id found $i2/$d2/$u2 changes, dedup $i1/$d1/$u1"
done

med() { median $1; }
echo
echo "pgbunker diff, public.vitals_samples: $rows rows, $n updated ($changed/1000) between A and B"
echo "$(machine_line); $(build_label); $runs interleaved runs, medians"
printf '%-7s %8s %10s %10s %8s %18s\n' step wall_s client_cpu server_cpu rss_mb "read/skipped"
for id in dedup full live; do
  read -r _ _ u cr cs <<<"${COUNTS[$id]}"
  printf '%-7s %8s %10s %10s %8s %18s\n' "$id" "$(med "${TIMES[$id]}")" "$(med "${CPUS[$id]}")" \
    "$(med "${SRV[$id]}")" "$(med "${RSS[$id]}")" "$cr/$cs"
done
full=$(med "${TIMES[full]}")
awk -v d="$(med "${TIMES[dedup]}")" -v l="$(med "${TIMES[live]}")" -v f="$full" \
  'BEGIN{printf "dedup/full %.3f   live/full %.3f\n", d/f, l/f}'
