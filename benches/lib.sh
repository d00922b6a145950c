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
#   detect_optional_tools        sets have_openssl, have_gnutime (0/1)
#   make_workdir PREFIX          sets work, pgdata, logs, out; cleanup on exit
#   find_pgbunker                sets pgbunker (PGBUNKER_BIN, else cargo build --release)
#   start_cluster [CONF_LINE]... initdb + start; sets port, PGHOST/PGPORT/PGUSER
#   load_fixture DB SCALE        creates DB with the fixture; sets load_seconds
# after parse_args and may use die, is_uint, check_scale, usage, now, as_server, url, psql_q,
# random_hex32, machine_line.

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
  export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres
  unset PGPASSWORD PGDATABASE PGSERVICE PGOPTIONS PGSSLMODE
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
