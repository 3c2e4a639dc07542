#!/usr/bin/env bash
# The redis:// agent-op benchmark next to its anchor, in one run on one server:
#   1. agentstate_bench BM_RedisAgentWave: waves of 100 and 1000 agents doing the original
#      unit of work (build the state, save, load, verify) on the redis:// store;
#   2. redis-benchmark SET then GET with the same mean value size and the same client count:
#      the rate of SET-then-GET pairs, 1 / (1/set + 1/get), is this machine's limit;
# and prints each agent-op rate as a ratio of that limit.
#
# Usage: bench/redis_anchor.sh [BUILD_DIR]   (needs scripts/services.sh up; loopback only)
set -euo pipefail
build=${1:-build}
: "${AGENTSTATE_REDIS_URL:?is not set: run scripts/services.sh up and eval \"\$(scripts/services.sh env)\"}"
hostport=${AGENTSTATE_REDIS_URL#redis://}
hostport=${hostport%%/*}
hostport=${hostport##*@}
host=${hostport%:*}
port=${hostport##*:}
case "$host" in
  127.*|localhost|::1) ;;
  *) echo "redis_anchor.sh: $host is not a loopback address; benchmarks only run on loopback" >&2; exit 2 ;;
esac

out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$build/bench/agentstate_bench" --benchmark_filter='BM_RedisAgentWave/(100|1000)/2/' --benchmark_min_time=3 \
  --benchmark_format=csv 2>/dev/null | tr -d '"' >"$out"

printf '%-8s %14s %9s %9s %12s %16s %7s\n' agents agent_ops/s p50_ms p99_ms value_bytes redis_pairs/s ratio
for agents in 100 1000; do
  line=$(grep "BM_RedisAgentWave/$agents/2/" "$out")
  # csv columns: name,iterations,real_time,cpu_time,time_unit,bytes_per_second,items_per_second,label,error_occurred,error_message,<counters...>
  header=$(grep '^name,' "$out")
  col() { awk -F, -v want="$1" 'NR==1{for(i=1;i<=NF;i++) if($i==want) c=i} NR==2{print $c}' <(echo "$header"; echo "$line"); }
  ops=$(col agent_ops_per_s); p50=$(col p50_ms); p99=$(col p99_ms); bytes=$(col mean_payload_bytes)
  csv=$(redis-benchmark -h "$host" -p "$port" --dbnum 9 -t set,get -d "${bytes%.*}" -c "$agents" -n 100000 -r 100000 --csv 2>/dev/null)
  set_rps=$(echo "$csv" | awk -F'"' '$2=="SET"{print $4}')
  get_rps=$(echo "$csv" | awk -F'"' '$2=="GET"{print $4}')
  pairs=$(awk -v s="$set_rps" -v g="$get_rps" 'BEGIN{printf "%.0f", 1/(1/s+1/g)}')
  ratio=$(awk -v o="$ops" -v p="$pairs" 'BEGIN{printf "%.2f", o/p}')
  printf '%-8s %14.0f %9.2f %9.2f %12.0f %16s %7s\n' "$agents" "$ops" "$p50" "$p99" "$bytes" "$pairs" "$ratio"
done
# redis-benchmark wrote its keys (key:NNN, up to 100,000 of them) in database 9: remove them.
redis-cli -h "$host" -p "$port" -n 9 --scan --pattern 'key:*' | xargs -r -n 1000 redis-cli -h "$host" -p "$port" -n 9 UNLINK >/dev/null
