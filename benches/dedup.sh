#!/usr/bin/env bash
# benches/dedup.sh — deduplicated backups of a growing clinical database, day after day.
#
# Usage:
#   benches/dedup.sh [--scale N] [--days N] [--jobs N] [--check-days "1 15 30"|all]
#                    [--tsv FILE]
#
#   --scale N       heart-recovery fixture scale loaded into db `dedup_src`
#                   (1 ≈ 10 MB, 10 ≈ 100 MB, 100 ≈ 1 GB). Default 10.
#   --days N        days simulated: day 1 is the fixture as loaded, each later day
#                   first applies one day of change. Default 30.
#   --jobs N        --jobs given to every pgbunker backup and restore. Default 2.
#   --check-days L  the days whose backup is restored at the end and compared with the
#                   source as it was right after that backup: a list of day numbers
#                   (spaces or commas), or `all`. Default all.
#   --tsv FILE      also copy the raw per-day rows (bytes, seconds) to FILE; they are
#                   written to $work/dedup-days.tsv, which is removed on exit.
#
# What it does, on a throwaway PostgreSQL it starts itself (as compare.sh does):
#   * finds the server binaries (PGBUNKER_PG_BIN, else `pg_config --bindir`, else the
#     newest /usr/lib/postgresql/*/bin), runs initdb in a mktemp folder (as `nobody`
#     when run as root) and starts it on a free loopback port with fsync=off and
#     autovacuum=off (the script runs the VACUUM itself, once a day). The cluster and
#     every file the script made are removed on exit, whatever happens;
#   * builds pgbunker (`cargo build --release -q`), unless PGBUNKER_BIN names a binary;
#   * loads the fixture into `dedup_src` (dropped first if there), VACUUM ANALYZE;
#   * for each day d = 1..N:
#       - (d > 1) one day of change, in one transaction: the oldest 0.2 % of the rows of
#         vitals_samples and medication_logs deleted (nothing references them); about
#         3 % new rows appended to both (ids from their sequences, existing patients and
#         medications, timestamps after the newest ones, values derived from d and the
#         row number: no random()); 1 % of patients and 1 % of medications updated (the
#         rows whose id % 100 = d % 100); one audit_log row per updated row and one per
#         table for the appends and the deletes. Then VACUUM ANALYZE (plain, as
#         autovacuum would, not FULL);
#       - CHECKPOINT, then `pgbunker backup` into the repository `dedup`, one for all
#         days (the deduplicated, forever-incremental one), timed;
#       - CHECKPOINT, then `pgbunker backup` into a new empty repository, timed: a
#         backup into an empty repository uploads everything, which is what a full copy
#         (pg_dump-style) stores; its size is measured (du -sb) and it is deleted. The
#         "full copies" size after day d is the sum of those sizes over days 1..d;
#       - on a day of --check-days, a fingerprint of `dedup_src` right after the backup:
#         per user table a row count and an order-independent content hash (the sum of
#         the first 64 bits of md5(row::text)), and every sequence's last_value;
#   * at the end, restores each checked day's backup from `dedup` into a new database
#     `dedup_check` (`pgbunker restore ID --target …`), fingerprints it the same way and
#     compares table by table: PASS or FAIL per day;
#   * prints one line per day and a summary: the first full backup's size; the `dedup`
#     repository after N days and its ratio to the first full backup (target ≤ 4×); the
#     sum of the full copies and its ratio; the median backup time of each kind over
#     days 2..N (or day 1 alone) and their ratio (target ≤ 1.1×); for each table what
#     the `dedup` backups of days 2..N uploaded for it.
#
# Columns of the per-day table (sizes in MB = 10^6 bytes; the TSV has bytes):
#   db MB        pg_database_size of dedup_src when backed up
#   dedup new    what that day's backup uploaded into `dedup` (summary new_bytes)
#   dedup repo   du -sb of the `dedup` repository after the backup
#   dedup s      wall seconds of the backup into `dedup`
#   full         du -sb of that day's new repository after its backup
#   full cum     the sum of `full` over days 1..d
#   full s       wall seconds of the backup into the new repository
#   app new      what the `dedup` backup uploaded for the append-only tables
#                (vitals_samples, medication_logs: summed new_bytes)
#   app delta    their stored_bytes in today's full backup minus yesterday's: the
#                compressed size of the rows appended that day, less that of the rows
#                deleted (0.2 % against 3 %), so a slight underestimate
#   app x        app new / app delta: what the deduplicated backup stored for the new
#                rows against their compressed size (target ≤ 1.3×)
#
# Exit status: 0 when every step succeeded and every checked restore matched its
# source; 1 otherwise. The targets are reported, not enforced.
#
# Environment: PGBUNKER_PG_BIN (server binaries), PGBUNKER_BIN (use this pgbunker, skip
# the build), TMPDIR (where the cluster and the repositories go: room for the database,
# its WAL, the `dedup` repository and one full copy). pgbunker keeps what it saw of the
# repositories in $work/state (PGBUNKER_STATE_DIR), not in ~/.local/state. Needs bash,
# awk, python3 or jq, and psql, createdb, dropdb from the server's bin folder. It
# installs nothing.
set -euo pipefail

scale=10
days=30
jobs=2
check_days=all
tsv=

bench=dedup.sh
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/lib.sh
. "$root/benches/lib.sh"
parse_args scale days jobs check-days tsv -- "$@"
check_scale "$scale"
if ! is_uint "$days" || [ "$((10#$days))" -lt 1 ]; then die "--days must be a positive integer, got '$days'"; fi
if ! is_uint "$jobs" || [ "$((10#$jobs))" -lt 1 ]; then die "--jobs must be a positive integer, got '$jobs'"; fi
days=$((10#$days)); jobs=$((10#$jobs))

# CHECK[d]=1 for each day to restore and compare.
declare -A CHECK
if [ "$check_days" = all ]; then
  for ((d = 1; d <= days; d++)); do CHECK[$d]=1; done
else
  for d in ${check_days//,/ }; do
    if ! is_uint "$d" || [ "$((10#$d))" -lt 1 ] || [ "$((10#$d))" -gt "$days" ]; then
      die "--check-days: '$d' is not a day between 1 and $days"
    fi
    CHECK[$((10#$d))]=1
  done
fi

if command -v jq >/dev/null 2>&1; then json_tool=jq
elif command -v python3 >/dev/null 2>&1; then json_tool=python3
else die "needs jq or python3 to read pgbunker's JSON reports"
fi

check_fixture
find_server_bindir psql createdb dropdb
detect_optional_tools
make_workdir pgbunker-dedup
find_pgbunker
start_cluster "autovacuum = off"
export PGBUNKER_STATE_DIR=$work/state
key=$(random_hex32)
src=dedup_src
chk=dedup_check
dedup_repo=$work/dedup
failures=0

# ---------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------
# report_lines JSON — pgbunker's backup report as tab-separated lines:
#   id       BACKUP_ID
#   summary  STORED_BYTES NEW_BYTES CHUNKS NEW_CHUNKS RAW_BYTES DURATION_MS FORMAT_VERSION
#   table    NAME RAW_BYTES STORED_BYTES NEW_BYTES CHUNKS NEW_CHUNKS
# A field the report lacks is "-".
report_lines() {
  if [ "$json_tool" = jq ]; then
    jq -r 'def f(x): if x == null then "-" else x | tostring end;
      "id\t" + .backup_id,
      ([ "summary", f(.summary.stored_bytes), f(.summary.new_bytes), f(.summary.chunks),
         f(.summary.new_chunks), f(.summary.raw_bytes), f(.summary.duration_ms),
         f(.summary.format_version) ] | join("\t")),
      (.tables[] | [ "table", .table, f(.raw_bytes), f(.stored_bytes), f(.new_bytes),
         f(.chunks), f(.new_chunks) ] | join("\t"))' "$1"
  else
    python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
f = lambda x: "-" if x is None else str(x)
s = r["summary"]
print("id\t" + r["backup_id"])
print("\t".join(["summary"] + [f(s.get(k)) for k in
      ("stored_bytes", "new_bytes", "chunks", "new_chunks", "raw_bytes", "duration_ms",
       "format_version")]))
for t in r["tables"]:
    print("\t".join(["table", t["table"]] + [f(t.get(k)) for k in
          ("raw_bytes", "stored_bytes", "new_bytes", "chunks", "new_chunks")]))
PY
  fi
}

# field LINES KIND COL [NAME] — column COL (1 = the first after KIND, or after NAME for
# a table line) of the line of that kind (and table NAME).
field() {
  awk -F'\t' -v k="$2" -v c="$3" -v n="${4:-}" '
    $1 == k && (n == "" || $2 == n) { print (n == "" ? $(c + 1) : $(c + 2)); exit }' <<<"$1"
}

# backup REPO JSON LOG — one timed `pgbunker backup`; sets secs. Dies on failure.
backup() {
  local t0 t1 rc=0
  psql_q -d postgres -c CHECKPOINT >/dev/null
  wait_backends_gone
  t0=$(now)
  PGBUNKER_KEY=$key "$pgbunker" --json --no-progress backup --repo "$1" --jobs "$jobs" \
    "$(url "$src")" >"$2" 2>"$3" || rc=$?
  t1=$(now)
  if [ "$rc" != 0 ]; then
    echo "$bench: pgbunker backup into $1 failed (exit $rc); last lines of its log:" >&2
    tail -n 25 "$3" | sed 's/^/    | /' >&2
    exit 1
  fi
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}')
}

init_repo() {
  PGBUNKER_KEY=$key "$pgbunker" --no-progress init --repo "$1" >"$2" 2>&1 \
    || { tail -n 25 "$2" | sed 's/^/    | /' >&2; die "pgbunker init --repo $1 failed"; }
}

dir_bytes() { du -sb "$1" | cut -f1; }

user_tables_sql="SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname !~ '^pg_' ORDER BY 1"

# fingerprint DB — per user table "table<TAB>NAME<TAB>ROWS<TAB>HASH" (HASH: the sum of
# the first 64 bits of md5(row::text), so the order of the rows does not matter and
# nothing large is built in memory), then "sequence<TAB>NAME<TAB>LAST_VALUE".
fingerprint() {
  psql_q -F $'\t' -d "$1" <<SQL
SELECT format('SELECT ''table'', %L, count(*), coalesce(sum((''x'' || left(md5(x::text), 16))::bit(64)::bigint::numeric), 0) FROM %s AS x', t, t)
  FROM ($user_tables_sql) AS u (t) ORDER BY t
\\gexec
SELECT 'sequence', format('%I.%I', schemaname, sequencename), coalesce(last_value::text, 'null')
  FROM pg_sequences ORDER BY 2;
SQL
}

# day_sql D — one day of change to dedup_src (see the header), one transaction.
day_sql() {
  local d=$1
  cat <<SQL
BEGIN;
CREATE TEMP TABLE day_base ON COMMIT DROP AS
SELECT (SELECT count(*) FROM public.vitals_samples) AS nv,
       (SELECT count(*) FROM public.medication_logs) AS nl,
       (SELECT coalesce(max(occurred_at), timestamptz '2024-06-01 00:00:00+00') FROM public.audit_log)
         + interval '1 hour' AS at0,
       (SELECT min(id) FROM public.users WHERE role <> 'patient') AS actor;

-- audit_log rows: one per updated row, one per table for the appends and the deletes.
-- step: orders them within the day; n: the row within the step.
CREATE TEMP TABLE day_audit (step int, n bigint, action text, table_name text,
                             record_id text, details jsonb) ON COMMIT DROP;

-- The oldest 0.2 % of the readings and of the dose logs (no foreign key points at
-- either table).
WITH del AS (
  DELETE FROM public.vitals_samples WHERE id IN (
    SELECT id FROM public.vitals_samples ORDER BY recorded_at, id
     LIMIT (SELECT ceil(nv * 0.002)::bigint FROM day_base))
  RETURNING id)
INSERT INTO day_audit
SELECT 1, 1, 'delete', 'vitals_samples', NULL,
       jsonb_build_object('day', $d, 'reason', 'retention', 'rows', count(*), 'min_id', min(id), 'max_id', max(id))
  FROM del;

WITH del AS (
  DELETE FROM public.medication_logs WHERE id IN (
    SELECT id FROM public.medication_logs ORDER BY scheduled_for, id
     LIMIT (SELECT ceil(nl * 0.002)::bigint FROM day_base))
  RETURNING id)
INSERT INTO day_audit
SELECT 2, 1, 'delete', 'medication_logs', NULL,
       jsonb_build_object('day', $d, 'reason', 'retention', 'rows', count(*), 'min_id', min(id), 'max_id', max(id))
  FROM del;

-- About 3 % new readings: 6 hours apart per patient, after the newest one.
WITH ins AS (
  INSERT INTO public.vitals_samples (patient_id, kind, recorded_at, value, unit, source,
                                     device_id, confidence, is_flagged, note)
  SELECT
      s.pid,
      (ARRAY['heart_rate', 'bp_systolic', 'bp_diastolic', 'weight_kg', 'spo2', 'temperature_c', 'glucose_mg_dl'])[1 + s.k]::public.vital_kind,
      s.t0 + (1 + s.r) * interval '6 hours' + (s.pid % 300) * interval '1 minute' + (s.k * 45) * interval '1 second',
      CASE s.k
          WHEN 0 THEN 52 + s.h % 60
          WHEN 1 THEN 98 + s.h % 70
          WHEN 2 THEN 58 + s.h % 40
          WHEN 3 THEN 48 + (s.h % 7500) / 100.0
          WHEN 4 THEN 88 + (s.h % 120) / 10.0
          WHEN 5 THEN 35.8 + (s.h % 250) / 100.0
          ELSE        70 + (s.h % 1600) / 10.0
      END,
      (ARRAY['bpm', 'mmHg', 'mmHg', 'kg', '%', '°C', 'mg/dL'])[1 + s.k],
      (ARRAY['manual', 'omron-bp7', 'apple-watch', 'withings', 'clinic'])[1 + s.pid % 5],
      CASE WHEN s.pid % 5 = 0 THEN NULL ELSE md5('device-' || s.pid || '-' || s.pid % 5)::uuid END,
      CASE WHEN s.g % 7 = 0 THEN NULL ELSE (0.5 + (s.h % 500) / 1000.0)::real END,
      s.h % 37 = 0,
      CASE WHEN s.g % 97 = 0 THEN 'Day $d: felt "light-headed" after stairs;' || chr(9) || 'rested 5 min'
           WHEN s.g % 89 = 0 THEN 'Mesure prise après café — jour $d'
           ELSE NULL END
  FROM (
      SELECT g,
             p.ids[1 + ((g - 1) % p.np)::int] AS pid,
             (g - 1) / p.np                   AS r,
             (g + $d) % 7                     AS k,
             (($d * 1000003 + g) * 2654435761) % 1000003 AS h,
             c.t0
        FROM (SELECT max(recorded_at) AS t0 FROM public.vitals_samples) AS c
       CROSS JOIN (SELECT array_agg(id ORDER BY id) AS ids, count(*) AS np FROM public.patients) AS p
       CROSS JOIN day_base AS b
       CROSS JOIN LATERAL generate_series(1::bigint, ceil(b.nv * 0.03)::bigint) AS g
  ) AS s
  ORDER BY s.g
  RETURNING id)
INSERT INTO day_audit
SELECT 3, 1, 'insert', 'vitals_samples', NULL,
       jsonb_build_object('day', $d, 'source', 'device sync', 'rows', count(*), 'min_id', min(id), 'max_id', max(id))
  FROM ins;

-- About 3 % new dose logs: 8 hours apart per medication, after the newest one.
WITH ins AS (
  INSERT INTO public.medication_logs (medication_id, patient_id, scheduled_for, taken_at, status,
                                      dose_taken_mg, side_effects)
  SELECT
      m.id,
      m.patient_id,
      s.sched,
      CASE WHEN (m.id + s.g + $d) % 5 IN (3, 4) THEN NULL
           ELSE s.sched + ((m.id * 7 + s.g) % 90) * interval '1 minute' END,
      (CASE (m.id + s.g + $d) % 5 WHEN 0 THEN 'taken' WHEN 1 THEN 'taken' WHEN 2 THEN 'late'
                                  WHEN 3 THEN 'missed' ELSE 'pending' END)::public.dose_status,
      CASE WHEN (m.id + s.g + $d) % 5 IN (3, 4) THEN NULL ELSE m.dosage_mg END,
      CASE WHEN (m.id + s.g) % 6 = 0 THEN ARRAY['dizziness', 'fatigue']
           WHEN (m.id + s.g) % 6 = 1 THEN ARRAY['nausée', 'Kopfschmerzen']
           WHEN (m.id + s.g) % 6 = 2 THEN '{}'::text[]
           ELSE NULL END
  FROM (
      SELECT g, 1 + (g - 1) % c.nm AS rn,
             c.t0 + (1 + (g - 1) / c.nm) * interval '8 hours' AS sched_base
        FROM (SELECT max(scheduled_for) AS t0, (SELECT count(*) FROM public.medications) AS nm
                FROM public.medication_logs) AS c
       CROSS JOIN day_base AS b
       CROSS JOIN LATERAL generate_series(1::bigint, ceil(b.nl * 0.03)::bigint) AS g
  ) AS s0
  JOIN (SELECT id, patient_id, dosage_mg, row_number() OVER (ORDER BY id) AS rn
          FROM public.medications) AS m ON m.rn = s0.rn
  CROSS JOIN LATERAL (SELECT s0.g AS g, s0.sched_base + (m.id % 60) * interval '1 minute' AS sched) AS s
  ORDER BY s.g
  RETURNING id)
INSERT INTO day_audit
SELECT 4, 1, 'insert', 'medication_logs', NULL,
       jsonb_build_object('day', $d, 'source', 'dose reminders', 'rows', count(*), 'min_id', min(id), 'max_id', max(id))
  FROM ins;

-- 1 % of the patients: a new phone number and risk score.
WITH upd AS (
  UPDATE public.patients
     SET phone = '+1-555-' || lpad(((id * 7919 + $d * 101) % 10000)::text, 4, '0'),
         risk_score = ((id * 31 + $d * 17) % 1000) / 1000.0
   WHERE id % 100 = $d % 100
  RETURNING id, phone, risk_score)
INSERT INTO day_audit
SELECT 5, row_number() OVER (ORDER BY id), 'update', 'patients', id::text,
       jsonb_build_object('day', $d, 'changed', jsonb_build_object('phone', phone, 'risk_score', risk_score))
  FROM upd;

-- 1 % of the medications: the dose adjusted.
WITH upd AS (
  UPDATE public.medications
     SET dosage_mg = dosage_mg + 0.5,
         instructions = 'Dose adjusted on day $d: take with food'
   WHERE id % 100 = $d % 100
  RETURNING id, dosage_mg)
INSERT INTO day_audit
SELECT 6, row_number() OVER (ORDER BY id), 'update', 'medications', id::text,
       jsonb_build_object('day', $d, 'changed', jsonb_build_object('dosage_mg', dosage_mg))
  FROM upd;

INSERT INTO public.audit_log (occurred_at, actor_id, action, table_name, record_id, client_ip,
                              request_id, details)
SELECT b.at0 + a.step * interval '10 minutes' + a.n * interval '1 second',
       b.actor, a.action, a.table_name, a.record_id,
       ('10.20.' || ($d % 256) || '.' || (a.step * 7 + a.n) % 256)::inet,
       md5('dedup-day-$d-' || a.step || '-' || a.n)::uuid,
       a.details
  FROM day_audit AS a CROSS JOIN day_base AS b
 ORDER BY a.step, a.n;
COMMIT;
SQL
}

mb() { awk -v b="$1" -v p="${2:-2}" 'BEGIN{ if (b == "-") print "-"; else printf "%.*f", p, b/1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a != "-" && b != "-" && b > 0) printf "%.2f", a/b; else print "-" }'; }
append_tables=(public.vitals_samples public.medication_logs)
# sum_tables LINES COL — the sum of one column (2 = stored_bytes, 3 = new_bytes) over
# the append-only tables.
sum_tables() {
  local t v s=0
  for t in "${append_tables[@]}"; do
    v=$(field "$1" table "$2" "$t")
    [[ $v =~ ^[0-9]+$ ]] || { echo -; return; }
    s=$((s + v))
  done
  echo "$s"
}

# ---------------------------------------------------------------------------------
# Day 1: the fixture
# ---------------------------------------------------------------------------------
quiet_dropdb() { PGOPTIONS="-c client_min_messages=warning" "$bindir/dropdb" --if-exists "$1"; }
quiet_dropdb "$src"
load_fixture "$src" "$scale"
psql_q -d "$src" -c "VACUUM ANALYZE"
init_repo "$dedup_repo" "$logs/init-dedup.log"

tsv_file=$work/dedup-days.tsv
printf 'day\tdb_bytes\tdedup_new_bytes\tdedup_repo_bytes\tdedup_s\tfull_bytes\tfull_cum_bytes\tfull_s\tapp_new_bytes\tapp_full_delta_bytes\n' \
  >"$tsv_file"
row_fmt='%4s  %8s  %10s  %10s  %7s  %8s  %9s  %7s  %9s  %9s  %5s\n'
# shellcheck disable=SC2059  # the format is the one above
header=$(printf "$row_fmt" day "db MB" "dedup new" "dedup repo" "dedup s" "full" "full cum" "full s" \
  "app new" "app delta" "app x")

declare -A BID TNEW
full_cum=0
prev_full_app=-
dedup_secs=(); full_secs=()
first_full=
no_new=   # the repository format of a report without new_bytes, if any
echo "$header" >&2

for ((d = 1; d <= days; d++)); do
  if [ "$d" -gt 1 ]; then
    day_sql "$d" >"$work/day-$d.sql"
    psql_q -d "$src" -f "$work/day-$d.sql" >"$logs/day-$d.log" 2>&1 \
      || { tail -n 25 "$logs/day-$d.log" >&2; die "day $d: applying the change failed"; }
    psql_q -d "$src" -c "VACUUM ANALYZE" >>"$logs/day-$d.log" 2>&1 \
      || { tail -n 25 "$logs/day-$d.log" >&2; die "day $d: VACUUM ANALYZE failed"; }
  fi
  db_bytes=$(psql_q -d "$src" -c "SELECT pg_database_size(current_database())")

  # The deduplicated repository, then the fingerprint of what it holds.
  backup "$dedup_repo" "$work/dedup-$d.json" "$logs/dedup-$d.log"
  dsecs=$secs
  dlines=$(report_lines "$work/dedup-$d.json")
  BID[$d]=$(field "$dlines" id 1)
  [ -n "${BID[$d]}" ] || die "day $d: no backup_id in the report ($work/dedup-$d.json)"
  dnew=$(field "$dlines" summary 2)
  [[ $dnew =~ ^[0-9]+$ ]] || no_new=$(field "$dlines" summary 7)
  drepo=$(dir_bytes "$dedup_repo")
  if [ "${CHECK[$d]:-}" = 1 ]; then fingerprint "$src" >"$work/fp-src-$d.tsv"; fi
  while IFS=$'\t' read -r kind name _ _ tnew _; do
    [ "$kind" = table ] || continue
    if [ "$d" -gt 1 ] && [[ $tnew =~ ^[0-9]+$ ]]; then
      TNEW[$name]=$(( ${TNEW[$name]:-0} + tnew ))
    else
      TNEW[$name]=${TNEW[$name]:-0}
    fi
  done <<<"$dlines"

  # A full copy: a backup into a new empty repository, measured, then deleted.
  full_repo=$work/full-$d
  init_repo "$full_repo" "$logs/init-full-$d.log"
  backup "$full_repo" "$work/full-$d.json" "$logs/full-$d.log"
  fsecs=$secs
  flines=$(report_lines "$work/full-$d.json")
  fbytes=$(dir_bytes "$full_repo")
  rm -rf "$full_repo"
  full_cum=$((full_cum + fbytes))
  [ -n "$first_full" ] || first_full=$fbytes

  # The rows appended today: what the dedup backup uploaded for the append-only tables,
  # against how much the full copy of them grew.
  full_app=$(sum_tables "$flines" 2)
  app_new=-; app_delta=-
  if [ "$d" -gt 1 ]; then
    app_new=$(sum_tables "$dlines" 3)
    if [ "$full_app" != - ] && [ "$prev_full_app" != - ]; then app_delta=$((full_app - prev_full_app)); fi
  fi
  prev_full_app=$full_app

  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$d" "$db_bytes" "$dnew" "$drepo" "$dsecs" \
    "$fbytes" "$full_cum" "$fsecs" "$app_new" "$app_delta" >>"$tsv_file"
  # shellcheck disable=SC2059
  printf "$row_fmt" "$d" "$(mb "$db_bytes" 1)" "$(mb "$dnew" 3)" "$(mb "$drepo")" "$dsecs" \
    "$(mb "$fbytes")" "$(mb "$full_cum")" "$fsecs" "$(mb "$app_new" 3)" "$(mb "$app_delta" 3)" \
    "$(ratio "$app_new" "$app_delta")" >&2
  if [ "$d" -gt 1 ] || [ "$days" = 1 ]; then dedup_secs+=("$dsecs"); full_secs+=("$fsecs"); fi
done
final_repo=$drepo

# ---------------------------------------------------------------------------------
# The oracle: each checked day's backup restored from `dedup`, compared with the source
# ---------------------------------------------------------------------------------
declare -A VERDICT
for ((d = 1; d <= days; d++)); do
  [ "${CHECK[$d]:-}" = 1 ] || continue
  echo "restoring day $d (${BID[$d]}) into $chk ..." >&2
  quiet_dropdb "$chk"
  "$bindir/createdb" "$chk"
  rc=0
  PGBUNKER_KEY=$key "$pgbunker" --json --no-progress restore --repo "$dedup_repo" "${BID[$d]}" \
    --target "$(url "$chk")" --jobs "$jobs" >"$work/restore-$d.json" 2>"$logs/restore-$d.log" || rc=$?
  if [ "$rc" != 0 ]; then
    VERDICT[$d]="FAIL (restore exit $rc)"
    failures=$((failures + 1))
    tail -n 25 "$logs/restore-$d.log" | sed 's/^/    | /' >&2
  else
    fingerprint "$chk" >"$work/fp-chk-$d.tsv" 2>&1 || true
    if diff -u "$work/fp-src-$d.tsv" "$work/fp-chk-$d.tsv" >"$work/fp-$d.diff"; then
      VERDICT[$d]="PASS ($(grep -c '^table' "$work/fp-src-$d.tsv") tables, $(grep -c '^sequence' "$work/fp-src-$d.tsv") sequences)"
    else
      VERDICT[$d]="FAIL (differs: $(grep -c '^[-+][^-+]' "$work/fp-$d.diff") lines)"
      failures=$((failures + 1))
      head -n 40 "$work/fp-$d.diff" | sed 's/^/    | /' >&2
    fi
  fi
  quiet_dropdb "$chk"
done

[ -z "$tsv" ] || cp "$tsv_file" "$tsv"

# ---------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------
server_version=$(psql_q -d postgres -c "SHOW server_version")
med_d=$(printf '%.3f' "$(median "${dedup_secs[@]}")")
med_f=$(printf '%.3f' "$(median "${full_secs[@]}")")
if [ "$days" -gt 2 ]; then med_days="days 2..$days"; elif [ "$days" = 2 ]; then med_days="day 2"; else med_days="day 1"; fi
r_repo=$(ratio "$final_repo" "$first_full")
r_full=$(ratio "$full_cum" "$first_full")
r_time=$(ratio "$med_d" "$med_f")
verdict() { awk -v r="$1" -v t="$2" 'BEGIN{ if (r == "-") print "?"; else if (r + 0 <= t + 0) print "met"; else print "NOT met" }'; }

echo
echo "pgbunker dedup — $(date -u '+%Y-%m-%d %H:%M UTC')"
machine_line
echo "pgbunker $("$pgbunker" --version 2>/dev/null | awk '{print $2}') ($(build_label)); PostgreSQL $server_version (fsync=off, autovacuum=off, same machine)"
echo "heart-recovery fixture, scale $scale; $days day(s); --jobs $jobs; each day after the first: +3 % rows in vitals_samples and"
echo "medication_logs, -0.2 % oldest rows there, 1 % of patients and medications updated, audit_log rows, VACUUM ANALYZE"
echo "sizes in MB (10^6 bytes); dedup: one repository for all days; full: each day a backup into a new empty repository"
echo
echo "$header"
tail -n +2 "$tsv_file" | while IFS=$'\t' read -r d db dn dr ds fb fc fs an ad; do
  # shellcheck disable=SC2059
  printf "$row_fmt" "$d" "$(mb "$db" 1)" "$(mb "$dn" 3)" "$(mb "$dr")" "$ds" "$(mb "$fb")" "$(mb "$fc")" "$fs" \
    "$(mb "$an" 3)" "$(mb "$ad" 3)" "$(ratio "$an" "$ad")"
done
echo
printf '%-52s %10s MB\n' "first full backup (day 1, new repository)" "$(mb "$first_full")"
printf '%-52s %10s MB  %6sx the first full backup (target <= 4x: %s)\n' \
  "dedup repository after $days day(s)" "$(mb "$final_repo")" "$r_repo" "$(verdict "$r_repo" 4)"
printf '%-52s %10s MB  %6sx the first full backup\n' "sum of the $days full copies" "$(mb "$full_cum")" "$r_full"
printf '%-52s %10s s\n' "median dedup backup ($med_days)" "$med_d"
printf '%-52s %10s s   %6sx (target <= 1.1x: %s)\n' "median full backup ($med_days)" "$med_f" "$r_time" \
  "$(verdict "$r_time" 1.1)"
app=$(tail -n +3 "$tsv_file" | awk -F'\t' '$9 ~ /^[0-9]+$/ && $10 ~ /^[0-9]+$/ {n += $9; f += $10} END {printf "%d %d", n, f}')
read -r app_n app_f <<<"$app"
if [ -n "$no_new" ]; then
  echo
  echo "pgbunker's backup reports carry no new_bytes (summary.format_version $no_new; new_bytes came with the"
  echo "deduplicated format 5): \"dedup new\", \"app new\" and the growth by table are unknown. The \"dedup repo\""
  echo "column (du -sb) still shows what the repository grew by."
elif [ "$days" -gt 1 ]; then
  printf '%-52s %10s MB  vs %s MB of compressed growth: %sx (target <= 1.3x: %s)\n' \
    "appended rows, days 2..$days: dedup uploaded" "$(mb "$app_n" 3)" "$(mb "$app_f" 3)" \
    "$(ratio "$app_n" "$app_f")" "$(verdict "$(ratio "$app_n" "$app_f")" 1.3)"
  echo
  echo "growth of the dedup repository by table: new_bytes summed over days 2..$days"
  printf '  %-36s %12s %7s\n' table "MB" share
  grown=0
  for t in "${!TNEW[@]}"; do grown=$((grown + ${TNEW[$t]})); done
  for t in "${!TNEW[@]}"; do printf '%s\t%s\n' "${TNEW[$t]}" "$t"; done | sort -k1,1nr -k2 \
    | while IFS=$'\t' read -r b t; do
        printf '  %-36s %12s %6s%%\n' "$t" "$(mb "$b" 3)" \
          "$(awk -v b="$b" -v g="$grown" 'BEGIN{ if (g > 0) printf "%.1f", 100*b/g; else print "-" }')"
      done
  printf '  %-36s %12s\n' "(all tables)" "$(mb "$grown" 3)"
fi
echo
if [ "${#VERDICT[@]}" -gt 0 ]; then
  echo "restore checks (backup restored from the dedup repository against the source right after it):"
  for ((d = 1; d <= days; d++)); do
    [ -n "${VERDICT[$d]:-}" ] || continue
    printf '  day %3s  %s  %s\n' "$d" "${BID[$d]}" "${VERDICT[$d]}"
  done
fi
echo "raw per-day rows: $tsv_file (removed on exit)${tsv:+, copied to $tsv}"
if [ "$failures" -gt 0 ]; then
  echo "$failures restore check(s) FAILED"
  exit 1
fi
echo "all steps succeeded; every checked restore matches its source"
