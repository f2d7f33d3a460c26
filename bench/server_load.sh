#!/usr/bin/env bash
# Server load benchmark: POST /api/v1/billing/query (per project per month) on a 1M-record
# domain, 16 connections for 30 s, loopback only. Needs wrk (apt-get install wrk) and the
# SQLite store `bench/run.sh` leaves in DIR (cloudbill-bench store).
# usage: bash bench/server_load.sh [DIR] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-bench/out/1000000}"
secs="${2:-30}"
port=18090
db="sqlite://$dir/cloudbill.db"
export CLOUDBILL_SECRET_KEY="$(printf 'ab%.0s' $(seq 1 32))"
cargo build -q --release -p cloudbill-cli -p cloudbill-server
token=$(target/release/cloudbill --database-url "$db" token create --role admin --label load-bench)
target/release/cloudbill-server --database-url "$db" --listen "127.0.0.1:$port" --no-scheduler >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
body='{"start":"2025-01-01","end":"2026-01-01","granularity":"MONTHLY","group_by":["project"]}'
t0=$(date +%s.%N)
curl -sf -H "Authorization: Bearer $token" -H 'content-type: application/json' -d "$body" "http://127.0.0.1:$port/api/v1/billing/query" >/dev/null
t1=$(date +%s.%N)
echo "first query (loads the warm engine from the store): $(echo "$t1 - $t0" | bc) s"
rss_before=$(ps -o rss= -p $server)
script=$(mktemp)
cat > "$script" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
LUA
wrk -t2 -c16 -d"${secs}s" --latency -s "$script" "http://127.0.0.1:$port/api/v1/billing/query"
rss_after=$(ps -o rss= -p $server)
echo "server RSS: ${rss_before} KiB before the run, ${rss_after} KiB after"
rm -f "$script"
