#!/usr/bin/env bash
# The server under varied load, as users' dashboards load it (issue #16): POST
# /api/v1/billing/query where every request draws its own range (a start day in 2025 and 1-365
# days), granularity (daily for ranges up to 92 days half the time, else monthly; yearly one
# time in ten), 0-3 group-by keys, and a project filter half the time, so the answer cache
# almost never serves one. wrk -t2 -c16 on loopback; meanwhile a probe times GET /healthz
# every 50 ms, and the server's RSS is sampled every second.
# With WRITES=1, an import replaces one account's July 2025 every 5 s during the run (two
# variants in turn, so the data version moves each time), and that account's July total is
# asked every 100 ms: the distinct answers printed must be the two variants' totals only.
# Needs wrk and the SQLite store `cloudbill-bench store` leaves in DIR.
# usage: [WRITES=1] bash bench/varied_load.sh [DIR] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-bench/out/1000000}"
secs="${2:-30}"
port=18092
db="sqlite://$dir/cloudbill.db"
export CLOUDBILL_SECRET_KEY="$(printf 'ab%.0s' $(seq 1 32))"
target="${CARGO_TARGET_DIR:-target}/release"
cargo build -q --release -p cloudbill-cli -p cloudbill-server
token=$("$target/cloudbill" --database-url "$db" token create --role admin --label varied-bench)
"$target/cloudbill-server" --database-url "$db" --listen "127.0.0.1:$port" --no-scheduler >/dev/null 2>&1 &
server=$!
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; jobs -p | xargs -r kill 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
rss_start=$(ps -o rss= -p $server)

cat > "$work/mix.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
local keys = {"project", "service_account", "service", "region", "cloud_account", "usage_type"}
local counter = 0
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
request = function()
  local from = os.time{year=2025, month=1, day=1 + math.random(0, 364), hour=12}
  local last = os.time{year=2026, month=1, day=1, hour=12}
  local days = math.random(1, 365)
  local to = math.min(from + days * 86400, last)
  days = math.floor((to - from) / 86400)
  local gran = "MONTHLY"
  local g = math.random()
  if days <= 92 and g < 0.5 then gran = "DAILY" elseif g > 0.9 then gran = "YEARLY" end
  local n = math.random(0, 3)
  local picked, used = {}, {}
  while #picked < n do
    local k = keys[math.random(1, #keys)]
    if not used[k] then used[k] = true; picked[#picked + 1] = '"' .. k .. '"' end
  end
  local filters = ""
  if math.random() < 0.5 then
    filters = string.format(', "filters": {"project": ["project-%04d"]}', math.random(0, 24))
  end
  local body = string.format('{"start": "%s", "end": "%s", "granularity": "%s", "group_by": [%s]%s}',
    os.date("!%Y-%m-%d", from), os.date("!%Y-%m-%d", to), gran, table.concat(picked, ", "), filters)
  return wrk.format(nil, "/api/v1/billing/query", nil, body)
end
done = function(summary, latency, requests)
  io.write(string.format("varied queries: %d in %.1f s = %.0f req/s; latency p50 %.1f ms, p99 %.1f ms, max %.1f ms; non-2xx %d, errors %d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA

# /healthz every 50 ms, timed by curl.
(
  end_at=$(( $(date +%s) + secs ))
  while [ "$(date +%s)" -lt "$end_at" ]; do
    curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$port/healthz" >> "$work/health.txt" || true
    sleep 0.05
  done
) &
# RSS every second.
(
  end_at=$(( $(date +%s) + secs ))
  while [ "$(date +%s)" -lt "$end_at" ]; do
    ps -o rss= -p $server >> "$work/rss.txt" || true
    sleep 1
  done
) &
if [ "${WRITES:-0}" = "1" ]; then
  acct=100000000000
  head -n 1 "$dir/focus.csv" > "$work/a.csv"
  grep ",$acct,2025-07-" "$dir/focus.csv" >> "$work/a.csv"
  head -n -1 "$work/a.csv" > "$work/b.csv"
  echo "writes: import of account $acct's July 2025 ($(($(wc -l < "$work/a.csv") - 1)) rows) every 5 s"
  (
    end_at=$(( $(date +%s) + secs ))
    i=0
    while [ "$(date +%s)" -lt "$end_at" ]; do
      f="$work/a.csv"; [ $((i % 2)) = 1 ] && f="$work/b.csv"
      "$target/cloudbill" --database-url "$db" -q import focus --account "$acct" "$f" >/dev/null
      i=$((i + 1))
      sleep 5
    done
    echo "$i imports" > "$work/imports.txt"
  ) &
  # The imported account's July total, asked every 100 ms meanwhile: each answer must be one
  # whole variant (the original rows, or all but the last), never a mix of the two.
  (
    end_at=$(( $(date +%s) + secs ))
    while [ "$(date +%s)" -lt "$end_at" ]; do
      curl -s -H "Authorization: Bearer $token" -H 'content-type: application/json' \
        -d "{\"start\": \"2025-07-01\", \"end\": \"2025-08-01\", \"granularity\": \"MONTHLY\", \"filters\": {\"service_account\": [\"$acct\"]}}" \
        "http://127.0.0.1:$port/api/v1/billing/query" | jq -r '.results[0].total[0].cost' >> "$work/july.txt" || true
      sleep 0.1
    done
  ) &
fi
wrk -t2 -c16 -d"${secs}s" --timeout 10s -s "$work/mix.lua" "http://127.0.0.1:$port" | tail -n 1
wait $(jobs -p | grep -v "^$server\$") 2>/dev/null || true
sort -n "$work/health.txt" | awk '{a[NR]=$1} END {printf "/healthz while loaded: %d probes, p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", NR, a[int(NR*0.5)]*1000, a[int(NR*0.99)]*1000, a[NR]*1000}'
# A soak (2 minutes or more) also prints each minute's peak: flat or growing.
if [ "$secs" -ge 120 ]; then
  awk '{m=int((NR-1)/60); if ($1>a[m]) a[m]=$1} END {printf "server RSS, each minute'"'"'s max (MiB):"; for (i=0;i in a;i++) printf " %.0f", a[i]/1024; print ""}' "$work/rss.txt"
fi
sort -n "$work/rss.txt" | awk -v s="$rss_start" '{a[NR]=$1} END {printf "server RSS: %.0f MiB at start (warm engine), max %.0f MiB during the run\n", s/1024, a[NR]/1024}'
[ -f "$work/imports.txt" ] && cat "$work/imports.txt"
if [ -f "$work/july.txt" ]; then
  echo "account $acct's July total, asked $(wc -l < "$work/july.txt") times during the imports: $(sort -u "$work/july.txt" | wc -l) distinct answers: $(sort -u "$work/july.txt" | tr '\n' ' ')(two variants imported in turn)"
fi
echo "server RSS after: $(( $(ps -o rss= -p $server) / 1024 )) MiB"
