# shellcheck shell=bash
# shellcheck disable=SC2034,SC2154  # variables set here are read by, or come from, the sourcing script
# benches/lib.sh — sourced by compare.sh and export.sh: finding the PostgreSQL server
# binaries and pgbunker, a scratch folder removed on exit, a throwaway cluster on a free
# loopback port, and the heart-recovery fixture. Not a script of its own.
#
# The sourcing script sets `bench` (its name, for messages) and `root` (the repository
# folder) first, and calls, in this order:
#   check_fixture                dies unless the fixture is there
#   find_server_bindir TOOL...   sets bindir; dies unless TOOL... are there too
#   find_pg_dump [DIR]           (compare.sh) sets dumpbin, dump_version: the newest pg_dump
#   detect_optional_tools        sets have_openssl, have_gnutime (0/1)
#   make_workdir PREFIX          sets work, pgdata, logs, out; cleanup on exit
#   find_pgbunker                sets pgbunker (PGBUNKER_BIN, else cargo build --release)
#   start_cluster [CONF_LINE]... initdb + start; sets port, postmaster, PGHOST/PGPORT/PGUSER
#   load_fixture DB SCALE        creates DB with the fixture; sets load_seconds
#   create_small_tables DB N     creates DB with N small tables and a parent
# after parse_args and may use die, is_uint, check_scale, usage, now, as_server, url, psql_q,
# random_hex32, machine_line, postmaster_ticks, wait_backends_gone, median.

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "$bench: $*" >&2; exit 1; }
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
now() { date +%s.%N; }

# parse_args NAME... -- "$@" — every NAME (scale, jobs, pgbench-scale, …) is an option
# that takes a value, as --NAME V or --NAME=V, stored in the variable NAME with - as _.
# -j stands for --jobs and -t for --table; -h/--help prints the usage and exits.
parse_args() {
  local names=() arg name val n known
  while [ "$1" != -- ]; do names+=("$1"); shift; done
  shift
  while [ $# -gt 0 ]; do
    arg=$1
    case "$arg" in
      -h|--help) usage; exit 0 ;;
      -j) arg=--jobs ;;
      -t) arg=--table ;;
    esac
    name=${arg#--}; name=${name%%=*}
    known=0
    for n in "${names[@]}"; do [ "$n" = "$name" ] && known=1; done
    [[ $arg == --* ]] && [ "$known" = 1 ] || die "unknown argument: $1 (try --help)"
    if [[ $arg == *=* ]]; then
      val=${arg#*=}; shift
    else
      [ $# -ge 2 ] || die "--$name needs a value"
      val=$2; shift 2
    fi
    printf -v "${name//-/_}" '%s' "$val"
  done
}

check_scale() {
  [[ $1 =~ ^[0-9]+(\.[0-9]+)?$ ]] && awk -v s="$1" 'BEGIN{exit !(s>0)}' \
    || die "--scale must be a positive number, got '$1'"
}

fixture_dir=$root/fixtures/heart_recovery
check_fixture() {
  [ -f "$fixture_dir/schema.sql" ] && [ -f "$fixture_dir/data.sql" ] \
    || die "fixture not found in $fixture_dir"
}

# ---------------------------------------------------------------------------------
# Server binaries: PGBUNKER_PG_BIN, else `pg_config --bindir`, else the newest
# /usr/lib/postgresql/*/bin.
# ---------------------------------------------------------------------------------
has_server() { [ -x "$1/initdb" ] && [ -x "$1/pg_ctl" ]; }
find_server_bindir() {
  local cand tool
  if [ -n "${PGBUNKER_PG_BIN:-}" ]; then
    bindir=$PGBUNKER_PG_BIN
    has_server "$bindir" || die "PGBUNKER_PG_BIN=$bindir has no initdb and pg_ctl"
  else
    bindir=
    if command -v pg_config >/dev/null 2>&1; then
      cand=$(pg_config --bindir 2>/dev/null || true)
      if [ -n "$cand" ] && has_server "$cand"; then bindir=$cand; fi
    fi
    if [ -z "$bindir" ]; then
      cand=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
      if [ -n "$cand" ] && has_server "$cand"; then bindir=$cand; fi
    fi
    [ -n "$bindir" ] || die "no PostgreSQL server binaries found (set PGBUNKER_PG_BIN, or apt install postgresql)"
  fi
  for tool in "$@"; do
    [ -x "$bindir/$tool" ] || die "$bindir/$tool is missing"
  done
}

# ---------------------------------------------------------------------------------
# pg_dump / pg_restore (compare.sh): DIR (--pg-dump-bin), else PGBUNKER_PG_DUMP (a
# folder, or the pg_dump in it), else the newest of /opt/pgbunker-pg/client/bin, the
# pg_dump on PATH and the server's bindir. Both tools come from the same folder.
# ---------------------------------------------------------------------------------
pg_dump_version_num() {  # "18.6" -> 180006, "15.18" -> 150018, "9.6.24" -> 90624
  "$1/pg_dump" --version 2>/dev/null | awk '{ v = $3; n = split(v, p, ".");
    if (p[1] >= 10) printf "%d\n", p[1] * 10000 + p[2];
    else printf "%d\n", p[1] * 10000 + p[2] * 100 + (n > 2 ? p[3] : 0) }'
}
find_pg_dump() {
  local want=${1:-${PGBUNKER_PG_DUMP:-}} cand v best=0 c
  dumpbin=
  if [ -n "$want" ]; then
    if [ -f "$want" ]; then want=$(dirname "$want"); fi
    if [ ! -x "$want/pg_dump" ] || [ ! -x "$want/pg_restore" ]; then
      die "no pg_dump and pg_restore in $want (--pg-dump-bin / PGBUNKER_PG_DUMP)"
    fi
    dumpbin=$want
  else
    c=$(command -v pg_dump 2>/dev/null || true)
    for cand in /opt/pgbunker-pg/client/bin ${c:+"$(dirname "$(readlink -f "$c")")"} "$bindir"; do
      if [ ! -x "$cand/pg_dump" ] || [ ! -x "$cand/pg_restore" ]; then continue; fi
      v=$(pg_dump_version_num "$cand")
      if [ -n "$v" ] && [ "$v" -gt "$best" ]; then best=$v; dumpbin=$cand; fi
    done
    [ -n "$dumpbin" ] || die "no pg_dump and pg_restore found (set PGBUNKER_PG_DUMP or --pg-dump-bin)"
  fi
  dump_version=$("$dumpbin/pg_dump" --version 2>/dev/null | awk '{print $3}')
  [ -n "$dump_version" ] || die "$dumpbin/pg_dump --version failed"
}

detect_optional_tools() {
  have_openssl=0; command -v openssl >/dev/null 2>&1 && have_openssl=1
  have_gnutime=0
  if [ -x /usr/bin/time ] && /usr/bin/time -f '%M' -o /dev/null true >/dev/null 2>&1; then
    have_gnutime=1
  fi
}

# ---------------------------------------------------------------------------------
# Scratch folder (under TMPDIR), removed on exit with the cluster, whatever happens.
# ---------------------------------------------------------------------------------
server_started=0

as_server() {
  if [ "$(id -u)" = 0 ]; then
    (cd "$work" && runuser -u nobody -- "$@")
  else
    "$@"
  fi
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [ "$server_started" = 1 ]; then
    as_server "$bindir/pg_ctl" -D "$pgdata" -m fast -t 30 -w stop >/dev/null 2>&1 \
      || as_server "$bindir/pg_ctl" -D "$pgdata" -m immediate -w stop >/dev/null 2>&1 \
      || true
  fi
  rm -rf "$work"
  exit "$rc"
}

make_workdir() {
  work=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
  pgdata=$work/pgdata
  logs=$work/logs
  out=$work/out
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM HUP
  mkdir -p "$logs" "$out"
  if [ "$(id -u)" = 0 ]; then
    id nobody >/dev/null 2>&1 || die "running as root, but there is no user 'nobody' to run PostgreSQL as"
    command -v runuser >/dev/null 2>&1 || die "running as root needs runuser (util-linux)"
    chown nobody "$work"
    as_server test -w "$work" || die "user nobody cannot write to $work (set TMPDIR to a folder it can reach)"
  fi
}

# ---------------------------------------------------------------------------------
# pgbunker: PGBUNKER_BIN, else `cargo build --release` (into CARGO_TARGET_DIR if set).
# Keys and repositories then come only from the sourcing script.
# ---------------------------------------------------------------------------------
find_pgbunker() {
  if [ -n "${PGBUNKER_BIN:-}" ]; then
    pgbunker=$PGBUNKER_BIN
    [ -x "$pgbunker" ] || die "PGBUNKER_BIN=$pgbunker is not executable"
  else
    command -v cargo >/dev/null 2>&1 || die "cargo not found (or set PGBUNKER_BIN to a built pgbunker)"
    echo "building pgbunker (cargo build --release) ..." >&2
    (cd "$root" && cargo build --release -q) || die "cargo build --release failed"
    pgbunker=${CARGO_TARGET_DIR:-$root/target}/release/pgbunker
  fi
  unset PGBUNKER_KEY_FILE PGBUNKER_PASSPHRASE PGBUNKER_PASSPHRASE_FILE PGBUNKER_REPO PGBUNKER_KEY
}

random_hex32() {
  if [ "$have_openssl" = 1 ]; then
    openssl rand -hex 32
  elif command -v xxd >/dev/null 2>&1; then
    head -c 32 /dev/urandom | xxd -p -c 64
  else
    head -c 32 /dev/urandom | od -An -tx1 -v | tr -d ' \n'
  fi
}

# ---------------------------------------------------------------------------------
# Throwaway cluster: initdb, each argument appended to postgresql.conf, started with
# fsync=off on a free loopback port.
# ---------------------------------------------------------------------------------
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_cluster() {
  local line p
  echo "initdb in $pgdata ..." >&2
  as_server "$bindir/initdb" -D "$pgdata" -U postgres -A trust -E UTF8 --locale=C -N \
    >"$logs/initdb.log" 2>&1 || { cat "$logs/initdb.log" >&2; die "initdb failed"; }
  for line in "$@"; do echo "$line" >>"$pgdata/postgresql.conf"; done
  port=
  for _ in 1 2 3 4 5; do
    p=$((20000 + RANDOM % 40000))
    port_free "$p" || continue
    if as_server "$bindir/pg_ctl" -D "$pgdata" -l "$work/server.log" -w -t 120 \
         -o "-p $p -k $work -c listen_addresses=127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=60 \
             -c shared_buffers=128MB -c max_wal_size=2GB" start >"$logs/pg_ctl.log" 2>&1; then
      port=$p; server_started=1; break
    fi
    # A failed start may still leave a postmaster behind.
    as_server "$bindir/pg_ctl" -D "$pgdata" -m immediate -w stop >/dev/null 2>&1 || true
  done
  [ -n "$port" ] || { cat "$logs/pg_ctl.log" "$work/server.log" >&2 2>/dev/null; die "could not start PostgreSQL"; }
  postmaster=$(head -n 1 "$pgdata/postmaster.pid")
  export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres
  unset PGPASSWORD PGDATABASE PGSERVICE PGOPTIONS PGSSLMODE
}

# The server's CPU: the postmaster's /proc/PID/stat fields 14-17 (utime, stime, cutime,
# cstime) in clock ticks (getconf CLK_TCK). Backends and parallel workers are the
# postmaster's children: their time is in cutime/cstime once they have been reaped, so
# read it again after wait_backends_gone. The long-lived auxiliary processes
# (checkpointer, background writer, walwriter, launchers) are not counted until they exit.
postmaster_ticks() {
  # Field 2 is "(comm)": drop up to ") " so that field 14 is the 12th.
  sed 's/.*) //' "/proc/$postmaster/stat" | awk '{print $12 + $13 + $14 + $15}'
}
# Children of the postmaster other than its auxiliary processes: backends, parallel and
# autovacuum workers, and exited ones not yet reaped.
server_backends() {
  pgrep -a -P "$postmaster" 2>/dev/null \
    | grep -cvE 'postgres: (checkpointer|background writer|walwriter|autovacuum launcher|logical replication launcher|archiver|logger|stats collector)' \
    || true
}
# Waits (up to 10 s) until no backend is left, so that every one has been reaped. Without
# pgrep, half a second.
wait_backends_gone() {
  if ! command -v pgrep >/dev/null 2>&1; then sleep 0.5; return 0; fi
  for _ in $(seq 200); do
    [ "$(server_backends)" = 0 ] && return 0
    sleep 0.05
  done
  echo "  (backends still running after 10 s: the server CPU figure may be short)" >&2
}

# median V... — the median of the numbers given ("-" when none); an even count averages
# the middle two.
median() {
  printf '%s\n' "$@" | awk '/^-?[0-9.]+$/ {v[n++] = $1 + 0}
    END { if (!n) { print "-"; exit }
      for (i = 1; i < n; i++) { x = v[i]; for (j = i - 1; j >= 0 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
      m = (n % 2) ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2
      print m }'
}

url() { echo "postgresql://postgres@127.0.0.1:$port/$1"; }
psql_q() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -At "$@"; }

load_fixture() {
  local db=$1 scale=$2 t0
  echo "loading the heart-recovery fixture at scale $scale ..." >&2
  "$bindir/createdb" "$db"
  t0=$(now)
  PGOPTIONS="-c pgbunker.scale=$scale" psql_q -f "$fixture_dir/schema.sql" -f "$fixture_dir/data.sql" \
    -d "$db" >"$logs/load-$db.log" 2>&1 || { tail -n 30 "$logs/load-$db.log" >&2; die "fixture load failed"; }
  load_seconds=$(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}')
}

# create_small_tables DB N — creates DB with `parent` (50 rows) and t1 … tN: id int
# primary key, ref int references `parent` (odd N) or the table before (even N), note
# text, an index on ref; 50 rows each (compare.sh's `many`, scaling.sh's databases).
create_small_tables() {
  local db=$1 n=$2
  "$bindir/createdb" "$db"
  psql_q -d "$db" >"$logs/load-$db.log" 2>&1 <<SQL || { tail -n 30 "$logs/load-$db.log" >&2; die "creating the tables failed"; }
CREATE TABLE parent (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO parent SELECT g, 'parent ' || g FROM generate_series(1, 50) AS g;
SELECT format('CREATE TABLE %I (id int PRIMARY KEY, ref int NOT NULL REFERENCES %I (id), note text NOT NULL)', t, r),
       format('CREATE INDEX ON %I (ref)', t),
       format('INSERT INTO %I SELECT g, 51 - g, md5(%L || g) || md5(g || %L) FROM generate_series(1, 50) AS g', t, t, t)
  FROM (SELECT 't' || lpad(i::text, ${#n}, '0') AS t,
               CASE WHEN i % 2 = 0 THEN 't' || lpad((i - 1)::text, ${#n}, '0') ELSE 'parent' END AS r
          FROM generate_series(1, $n) AS i) AS s
\\gexec
SQL
}

# One line about the machine, for the report.
machine_line() {
  local cpu mem
  cpu=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
  mem=$(awk '/^MemTotal/{printf "%.1f GB", $2/1048576}' /proc/meminfo 2>/dev/null || true)
  echo "machine: $(nproc) cores${cpu:+ ($cpu)}${mem:+, $mem RAM}, $(uname -sr)"
}

# "git REV[+dirty]", or with PGBUNKER_BIN "PGBUNKER_BIN=…; source tree at git REV".
build_label() {
  local rev dirty
  rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
  dirty=$(git -C "$root" status --porcelain 2>/dev/null | grep -q . && echo "+dirty" || true)
  if [ -n "${PGBUNKER_BIN:-}" ]; then
    echo "PGBUNKER_BIN=$PGBUNKER_BIN; source tree at git $rev$dirty"
  else
    echo "git $rev$dirty"
  fi
}
