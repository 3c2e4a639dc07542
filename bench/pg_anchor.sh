#!/usr/bin/env bash
# Critical checkpoints on postgresql:// next to their anchor, in one run on one server:
#   1. agentstate_bench BM_PgCriticalSaves: 50 agents each saving `critical` checkpoints of
#      a ~30 KB state (record + checkpoint + thread context, one transaction, acknowledged
#      after the commit);
#   2. pgbench, 50 clients, inserting that same document as jsonb, one row per transaction,
#      with the server's synchronous_commit=on;
# and prints the ratio of the two rates.
#
# Usage: bench/pg_anchor.sh [BUILD_DIR]   (needs scripts/services.sh up; loopback only)
set -euo pipefail
build=${1:-build}
: "${AGENTSTATE_POSTGRES_URL:?is not set: run scripts/services.sh up and eval \"\$(scripts/services.sh env)\"}"
rest=${AGENTSTATE_POSTGRES_URL#postgresql://}
user=${rest%%@*}; rest=${rest#*@}
hostport=${rest%%/*}; db=${rest#*/}; db=${db%%\?*}
host=${hostport%:*}; port=${hostport##*:}
case "$host" in
  127.*|localhost|::1) ;;
  *) echo "pg_anchor.sh: $host is not a loopback address; benchmarks only run on loopback" >&2; exit 2 ;;
esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

AGENTSTATE_BENCH_DOC_OUT=$work/doc.json "$build/bench/agentstate_bench" --benchmark_filter='BM_PgCriticalSaves/50/8/' \
  --benchmark_min_time=5 --benchmark_format=csv 2>/dev/null | tr -d '"' >"$work/ours.csv"
col() { awk -F, -v want="$1" 'NR==1{for(i=1;i<=NF;i++) if($i==want) c=i} NR==2{print $c}' "$work/ours.csv"; }
ours=$(col critical_saves_per_s); p50=$(col p50_ms); p99=$(col p99_ms); bytes=$(col mean_payload_bytes)

psql=(psql -h "$host" -p "$port" -U "$user" -d "$db" -qAt -v ON_ERROR_STOP=1)
"${psql[@]}" -c "SET client_min_messages = warning; CREATE SCHEMA IF NOT EXISTS bench_anchor; DROP TABLE IF EXISTS bench_anchor.docs;
                 CREATE TABLE bench_anchor.docs (id bigserial PRIMARY KEY, doc jsonb NOT NULL);"
{ printf "INSERT INTO bench_anchor.docs(doc) VALUES ('"; sed "s/'/''/g" "$work/doc.json"; printf "'::jsonb);\n"; } >"$work/insert.sql"
pgbench -h "$host" -p "$port" -U "$user" -n -c 50 -j 2 -T 10 -f "$work/insert.sql" "$db" >"$work/pgbench.txt" 2>&1
tps=$(awk '/^tps = /{print $3; exit}' "$work/pgbench.txt")
lat=$(awk '/^latency average = /{print $4; exit}' "$work/pgbench.txt")
sync=$("${psql[@]}" -c "SHOW synchronous_commit")
"${psql[@]}" -c "SET client_min_messages = warning; DROP SCHEMA bench_anchor CASCADE"

printf 'document %.0f bytes, 50 clients, synchronous_commit=%s\n' "$bytes" "$sync"
printf '%-34s %10s %9s %9s\n' "" "per_s" "p50_ms" "p99_ms"
printf '%-34s %10.0f %9.2f %9.2f\n' "agentstate critical saves" "$ours" "$p50" "$p99"
printf '%-34s %10.0f %9s %9s\n' "pgbench jsonb inserts (anchor)" "$tps" "${lat}avg" "-"
awk -v o="$ours" -v p="$tps" 'BEGIN{printf "ratio %.2f\n", o/p}'
