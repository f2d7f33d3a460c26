#!/usr/bin/env bash
# Aggregation benchmark: cloudbill's warm engine vs DuckDB and pandas on the same 1M FOCUS rows.
# usage: bash bench/run.sh [ROWS] [DIR]   (needs: pip install numpy pandas duckdb)
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-1000000}"
dir="${2:-bench/out/$rows}"
shared="${SHARED:-../shared}"
mkdir -p "$dir"
[ -f "$dir/focus.csv" ] || python3 "$shared/bench/gen_focus.py" "$rows" "$dir"
echo "== reference (pandas, DuckDB, SQLite) =="
python3 "$shared/bench/reference.py" "$dir" --json "$dir/reference.json"
echo "== cloudbill =="
cargo run -q --release -p cloudbill-bench -- aggregate "$dir" "$dir/reference.json"
echo "== cloudbill SQLite store, engine load, end to end =="
cargo build -q --release -p cloudbill-cli
cargo run -q --release -p cloudbill-bench -- store "$dir" "$dir/reference.json"
echo "== bill import: cloudbill import focus vs DuckDB's CSV load and PostgreSQL COPY =="
# PostgreSQL part: set CLOUDBILL_BENCH_POSTGRES_URL (or CLOUDBILL_TEST_DATABASE_URL); the
# benchmark creates and drops its own database there.
cargo run -q --release -p cloudbill-bench -- import "$dir" ${CLOUDBILL_BENCH_POSTGRES_URL:-${CLOUDBILL_TEST_DATABASE_URL:-}}
echo "== tags: group by tag:team (5 tag keys) vs DuckDB over a JSON column =="
cargo run -q --release -p cloudbill-bench -- tags "$dir"
echo "== allocation: three rules vs the same reports without =="
cargo run -q --release -p cloudbill-bench -- allocation "$dir"
