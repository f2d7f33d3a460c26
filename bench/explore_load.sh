#!/usr/bin/env bash
# Explorer benchmark: GET /explore pages (chart + table + movers, rendered server-side) on a
# 1M-record domain, uncached: every request draws its own range (a start day in 2025 and a
# length of 7-365 days), granularity and group-by key, so the answer cache almost never serves
# one.
# One connection (latency, not throughput), loopback only; prints p50/p95/p99 and the HTML
# size of a 12 months x 8 groups page. Needs wrk and the SQLite store `bench/run.sh` leaves in
# DIR (cloudbill-bench store).
# usage: bash bench/explore_load.sh [DIR] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-bench/out/1000000}"
secs="${2:-20}"
port=18091
db="sqlite://$dir/cloudbill.db"
export CLOUDBILL_SECRET_KEY="$(printf 'ab%.0s' $(seq 1 32))"
target="${CARGO_TARGET_DIR:-target}/release"
cargo build -q --release -p cloudbill-cli -p cloudbill-server
token=$("$target/cloudbill" --database-url "$db" token create --role admin --label explore-bench)
"$target/cloudbill-server" --database-url "$db" --listen "127.0.0.1:$port" --no-scheduler >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
page() { curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$port$1"; }
t0=$(date +%s.%N)
page "/explore?start=2025-01-01&end=2026-01-01&group_by=service" >/dev/null
t1=$(date +%s.%N)
echo "first page (loads the warm engine from the store): $(echo "$t1 - $t0" | bc) s"
size=$(page "/explore?start=2025-01-01&end=2026-01-01&granularity=monthly&group_by=cloud_account&top=8" | wc -c)
echo "HTML of 12 months x 8 groups (cloud_account: every account in the table too): $size bytes (goal <= 300 KB)"
size=$(page "/explore?start=2025-01-01&end=2026-01-01&granularity=monthly&group_by=service&top=8" | wc -c)
echo "HTML of 12 months x 8 groups (service): $size bytes"
script=$(mktemp)
cat > "$script" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
local keys = {"service", "project", "region", "service_account", ""}
math.randomseed(42)
request = function()
  -- A start day anywhere in 2025 and 7 to 365 days: ~130,000 distinct ranges, so the
  -- answer cache almost never holds one.
  local from = os.time{year=2025, month=1, day=1 + math.random(0, 364), hour=12}
  local days = math.random(7, 365)
  local to = from + days * 86400
  local gran = "monthly"
  if days <= 62 and math.random() < 0.5 then gran = "daily" end
  local path = string.format("/explore?start=%s&end=%s&granularity=%s&group_by=%s",
    os.date("!%Y-%m-%d", from), os.date("!%Y-%m-%d", to), gran, keys[math.random(1, #keys)])
  return wrk.format("GET", path)
end
done = function(summary, latency, requests)
  io.write(string.format("explorer pages: %d in %.1f s; latency p50 %.1f ms, p95 %.1f ms, p99 %.1f ms (goal p95 <= 50 ms); non-2xx %d\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.errors.status))
end
LUA
wrk -t1 -c1 -d"${secs}s" -s "$script" "http://127.0.0.1:$port" | tail -n 1
rm -f "$script"
