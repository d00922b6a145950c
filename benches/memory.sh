#!/usr/bin/env bash
# benches/memory.sh — peak memory of backup and restore on one table much larger than
# the memory budget, the effect of the zstd level, and what one huge value costs.
#
# Usage: benches/memory.sh [--gb N] [--jobs N] [--value-mb N]   (defaults: 2 GB, 2 jobs, 244 MB)
#
# Starts a throwaway PostgreSQL (as `nobody` when root; removed on exit), creates one
# table `big` of about N GB (text rows, generated server-side), then runs with GNU time:
#   pgbunker backup  --jobs N --compress-level 1 / 3 / 6   (one repository each)
#   pgbunker restore --jobs N                               (from the level-3 backup)
# and prints wall seconds, peak RSS (MB) and repository size. The budget pgbunker keeps
# is 300 MB whatever the table size. Then one row holding a bytea of --value-mb MB of
# random bytes (a scanned document: it does not compress), backed up and restored, and
# the same table with a one-byte value: what the huge value adds to each peak, against
# the target of at most about 2x its size. --gb 0 or --value-mb 0 skips a part.
# Needs /usr/bin/time (apt install time).
# Environment: PGBUNKER_PG_BIN, PGBUNKER_BIN (else target/release/pgbunker is built).
set -euo pipefail
gb=2; jobs=2; value_mb=244
while [ $# -gt 0 ]; do
  case "$1" in
    --gb) gb=$2; shift 2 ;;
    --value-mb) value_mb=$2; shift 2 ;;
    --jobs|-j) jobs=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "memory.sh: unknown argument $1" >&2; exit 1 ;;
  esac
done
[ -x /usr/bin/time ] || { echo "memory.sh: needs GNU time (/usr/bin/time)" >&2; exit 1; }
root=$(cd "$(dirname "$0")/.." && pwd)
bindir=${PGBUNKER_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
[ -x "$bindir/initdb" ] || { echo "memory.sh: no PostgreSQL server binaries" >&2; exit 1; }
bunker=${PGBUNKER_BIN:-}
if [ -z "$bunker" ]; then
  (cd "$root" && cargo build --release -q)
  bunker=$root/target/release/pgbunker
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/pgbunker-memory.XXXXXX")
as_server() { if [ "$(id -u)" = 0 ]; then (cd "$work" && runuser -u nobody -- "$@"); else "$@"; fi; }
cleanup() {
  as_server "$bindir/pg_ctl" -D "$work/pgdata" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
[ "$(id -u)" = 0 ] && chown nobody "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_server "$bindir/initdb" -D "$work/pgdata" -U postgres -A trust -E UTF8 --locale=C -N >/dev/null
as_server "$bindir/pg_ctl" -D "$work/pgdata" -l "$work/server.log" -w -o \
  "-p $port -k $work -c listen_addresses=127.0.0.1 -c fsync=off -c max_wal_size=4GB -c shared_buffers=128MB" start >/dev/null
url=postgresql://postgres@127.0.0.1:$port
psql=("$bindir/psql" -q -X -v ON_ERROR_STOP=1 -d "$url/postgres")
"${psql[@]}" -c "CREATE DATABASE src" -c "CREATE DATABASE dst"
measure() { # name, command...
  local name=$1; shift
  local t0=$(date +%s.%N)
  /usr/bin/time -f '%M' -o "$work/rss" "$@" >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }
  local t1=$(date +%s.%N)
  printf '%-40s %8.2f s %8.1f MB' "$name" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" \
    "$(awk -v k="$(cat "$work/rss")" 'BEGIN{print k/1024}')"
}
peak_mb() { awk -v k="$(cat "$work/rss")" 'BEGIN{printf "%.1f", k/1024}'; }
export PGBUNKER_KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')

if [ "$gb" -gt 0 ]; then
  rows=$(( gb * 1024 * 1024 * 1024 / 1100 ))
  echo "creating table big: $rows rows (~$gb GB) ..."
  "$bindir/psql" -q -X -v ON_ERROR_STOP=1 -d "$url/src" <<SQL
CREATE TABLE big (id bigint PRIMARY KEY, at timestamptz NOT NULL, payload text NOT NULL);
INSERT INTO big SELECT g, timestamptz '2026-01-01' + g * interval '1 second',
       repeat(md5(g::text), 32) FROM generate_series(1, $rows) g;
VACUUM (FREEZE, ANALYZE) big;
SQL
  size=$("$bindir/psql" -X -At -d "$url/src" -c "SELECT pg_size_pretty(pg_total_relation_size('big'))")
  echo "table big: $size on disk; --jobs $jobs; budget 300 MB"
  for level in 1 3 6; do
    repo=$work/repo$level
    "$bunker" init --repo "$repo" >/dev/null
    measure "backup --compress-level $level" "$bunker" --no-progress backup --repo "$repo" -j "$jobs" --compress-level "$level" "$url/src"
    printf '   repository %s\n' "$(du -sh "$repo" | cut -f1)"
  done
  measure "restore (from level 3)" "$bunker" --no-progress restore --repo "$work/repo3" latest --target "$url/dst" -j "$jobs"
  echo
fi

if [ "$value_mb" -gt 0 ]; then
  # The file is read by the server (as nobody when root): the value never passes a client.
  head -c "$((value_mb * 1024 * 1024))" /dev/urandom >"$work/value.bin"
  [ "$(id -u)" = 0 ] && chown nobody "$work/value.bin"
  echo "one huge value: a bytea of $value_mb MB of random bytes, and the same table with one byte"
  printf '%-40s %8s   %8s %10s %8s\n' "" "wall" "peak RSS" "+ value" "x value"
  for kind in small huge; do
    db=doc_$kind
    "${psql[@]}" -c "CREATE DATABASE $db" -c "CREATE DATABASE ${db}_restored"
    if [ "$kind" = huge ]; then value="pg_read_binary_file('$work/value.bin')"; else value="'\\x00'::bytea"; fi
    "$bindir/psql" -q -X -v ON_ERROR_STOP=1 -d "$url/$db" \
      -c "CREATE TABLE doc (id int PRIMARY KEY, scan bytea NOT NULL)" \
      -c "INSERT INTO doc VALUES (1, $value)"
    repo=$work/repo-$kind
    "$bunker" init --repo "$repo" >/dev/null
    for step in backup restore; do
      if [ "$step" = backup ]; then
        measure "$step ($kind)" "$bunker" --no-progress backup --repo "$repo" -j "$jobs" "$url/$db"
      else
        measure "$step ($kind)" "$bunker" --no-progress restore --repo "$repo" latest --target "$url/${db}_restored" -j "$jobs"
      fi
      peak=$(peak_mb)
      if [ "$kind" = small ]; then
        printf -v "base_$step" '%s' "$peak"; echo
      else
        base=base_$step
        awk -v p="$peak" -v b="${!base}" -v v="$value_mb" 'BEGIN{printf " %10.1f %8.2f\n", p-b, (p-b)/v}'
      fi
    done
  done
  echo "target: the huge value adds at most about 2x its size to each peak"
fi
