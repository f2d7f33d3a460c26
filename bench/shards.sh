#!/usr/bin/env bash
# Past one database (docs/SCALING.md): three local PostgreSQL instances — a coordinator and two
# shards — with cloudbill's cost segments hash-partitioned by account across the shards through
# declarative partitioning and postgres_fdw, against the same segments in one instance.
# Measures what cloudbill does with segments: load every segment in month order (a warm
# engine's load), load one month, and replace one account's month in one transaction.
# Data: the real segments of the 1M-record SQLite store `cloudbill-bench store` leaves in DIR,
# copied COPIES times under new account ids (default 4: 4M records, ~190 MB of segments).
# Needs the PostgreSQL server binaries (initdb, pg_ctl; Debian's postgresql package) and
# postgres_fdw; runs the instances as the `postgres` user on ports 5440-5442 under a scratch
# directory, and removes them at the end.
# usage: bash bench/shards.sh [DIR] [COPIES]
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-bench/out/1000000}"
copies="${2:-4}"
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
work=/var/tmp/cloudbill-shards
as_pg() { if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi; }
stop_all() {
  for i in 0 1 2; do
    [ -d "$work/n$i" ] && as_pg "$bin/pg_ctl" -D "$work/n$i" -m immediate stop >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap stop_all EXIT
stop_all
mkdir -p "$work" && chown postgres "$work"
for i in 0 1 2; do
  as_pg "$bin/initdb" -D "$work/n$i" -A trust -U postgres >/dev/null
  as_pg "$bin/pg_ctl" -D "$work/n$i" -l "$work/n$i.log" \
    -o "-p 544$i -k $work -c shared_buffers=256MB -c max_wal_size=2GB -c fsync=on" start >/dev/null
done
q() { psql -X -q -h "$work" -p "$1" -U postgres -d postgres -v ON_ERROR_STOP=1 "${@:2}"; }
table() {
  echo "CREATE TABLE $1 (account_id uuid NOT NULL, domain_id uuid NOT NULL, month date NOT NULL,
    seq bigint NOT NULL, rows_count bigint NOT NULL, payload bytea NOT NULL,
    PRIMARY KEY (account_id, month, seq)) $2;
    ALTER TABLE $1 ALTER COLUMN payload SET STORAGE EXTERNAL;"
}
# Shards: one plain table each. Coordinator: the partitioned table over foreign partitions,
# plus the same data in one local table (the single-instance reference).
for s in 1 2; do q 544$s -c "$(table cost_segments_p$((s - 1)) '')"; done
q 5440 <<SQL
CREATE EXTENSION postgres_fdw;
CREATE SERVER shard1 FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '$work', port '5441', dbname 'postgres', async_capable 'true', fetch_size '200');
CREATE SERVER shard2 FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '$work', port '5442', dbname 'postgres', async_capable 'true', fetch_size '200');
CREATE USER MAPPING FOR postgres SERVER shard1 OPTIONS (user 'postgres');
CREATE USER MAPPING FOR postgres SERVER shard2 OPTIONS (user 'postgres');
CREATE TABLE cost_segments (account_id uuid NOT NULL, domain_id uuid NOT NULL, month date NOT NULL,
  seq bigint NOT NULL, rows_count bigint NOT NULL, payload bytea NOT NULL) PARTITION BY HASH (account_id);
CREATE FOREIGN TABLE cost_segments_p0 PARTITION OF cost_segments FOR VALUES WITH (MODULUS 2, REMAINDER 0)
  SERVER shard1 OPTIONS (table_name 'cost_segments_p0');
CREATE FOREIGN TABLE cost_segments_p1 PARTITION OF cost_segments FOR VALUES WITH (MODULUS 2, REMAINDER 1)
  SERVER shard2 OPTIONS (table_name 'cost_segments_p1');
$(table single_segments '')
SQL

# The segments as COPY text (bytea in hex), COPIES times under derived account ids.
csv="$work/segments.copy"
python3 - "$dir/cloudbill.db" "$copies" > "$csv" <<'PY'
import sqlite3, sys, uuid
db, copies = sys.argv[1], int(sys.argv[2])
rows = sqlite3.connect(db).execute(
    "SELECT account_id, domain_id, month, seq, rows_count, payload FROM cost_segments").fetchall()
for c in range(copies):
    for account, domain, month, seq, n, payload in rows:
        a = uuid.UUID(bytes=bytes(account))
        if c:
            a = uuid.uuid5(a, str(c))
        d = uuid.UUID(bytes=bytes(domain))
        sys.stdout.write(f"{a}\t{d}\t{month}\t{seq}\t{n}\t\\\\x{bytes(payload).hex()}\n")
PY
segments=$(wc -l < "$csv")
mb=$(python3 -c "import os; print(round(os.path.getsize('$csv') / 2 / 1e6))")
echo "segments: $segments ($copies x the 1M-record store: $((copies))M records, ~${mb} MB of payload)"

ms() { python3 -c "import time; print(int(time.time() * 1000))"; }
time_sql() { # port, label, sql
  local t0 t1
  t0=$(ms); q "$1" -c "$3" >/dev/null; t1=$(ms)
  printf '%-72s %7d ms\n' "$2" $((t1 - t0))
}
time_sql 5440 "COPY into one instance" "\\copy single_segments FROM '$csv'"
time_sql 5440 "COPY through the coordinator (routed to 2 shards by account hash)" "\\copy cost_segments FROM '$csv'"
for p in 5441 5442; do
  echo "  shard on port $p holds $(q $p -At -c "SELECT count(*) FROM cost_segments_p$((p - 5441))") segments"
done
q 5440 -c "ANALYZE single_segments" >/dev/null
load="SELECT account_id, month, seq, payload FROM %s ORDER BY month, account_id, seq"
for run in 1 2; do
  time_sql 5440 "load every segment in month order, one instance (run $run)" "COPY ($(printf "$load" single_segments)) TO '/dev/null'"
  time_sql 5440 "load every segment in month order, coordinator over 2 shards (run $run)" "COPY ($(printf "$load" cost_segments)) TO '/dev/null'"
done
month="SELECT account_id, seq, payload FROM %s WHERE month = '2025-06-01' ORDER BY account_id, seq"
time_sql 5440 "load one month, one instance" "COPY ($(printf "$month" single_segments)) TO '/dev/null'"
time_sql 5440 "load one month, coordinator over 2 shards" "COPY ($(printf "$month" cost_segments)) TO '/dev/null'"
# One account's month replaced in one transaction (what a sync window does), on the shard
# that owns the account: delete its segments and write them back.
acct=$(q 5440 -At -c "SELECT account_id FROM single_segments LIMIT 1")
replace="BEGIN; CREATE TEMP TABLE w AS SELECT * FROM %s WHERE account_id = '$acct' AND month = '2025-06-01';
  DELETE FROM %s WHERE account_id = '$acct' AND month = '2025-06-01'; INSERT INTO %s SELECT * FROM w; COMMIT;"
for run in 1 2 3; do
  time_sql 5440 "replace one account-month in one transaction, one instance (run $run)" "$(printf "$replace" single_segments single_segments single_segments)"
  time_sql 5440 "replace one account-month in one transaction, through the coordinator (run $run)" "$(printf "$replace" cost_segments cost_segments cost_segments)"
done
echo "plan of the month load through the coordinator:"
q 5440 -c "EXPLAIN (COSTS OFF) $(printf "$month" cost_segments)" | sed 's/^/  /'
