#!/usr/bin/env bash
# What one agent-op costs redis-server and the client, per build, builds alternating:
#   for each round, for each BUILD_DIR: CONFIG RESETSTAT, redis-server's CPU (user + system
#   from /proc/<pid>/stat) and the benchmark process's own CPU around one run of
#   BM_RedisAgentWave/<agents>/2 (build the state, save, load, verify), the agent-ops counted
#   by the server (`INFO commandstats`: one EVALSHA per save), and each command's cost per call.
#
# Usage: bench/redis_cost.sh [--agents N] [--rounds N] [--seconds S] BUILD_DIR...
# (needs scripts/services.sh up; loopback only; the server should have no other clients)
set -euo pipefail
agents=100 rounds=2 seconds=5
while [[ $# -gt 0 ]]; do
  case "$1" in
    --agents) agents=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    -*) echo "redis_cost.sh: unknown option $1; usage: redis_cost.sh [--agents N] [--rounds N] [--seconds S] BUILD_DIR..." >&2; exit 2 ;;
    *) break ;;
  esac
done
[[ $# -ge 1 ]] || { echo "redis_cost.sh: name at least one build directory" >&2; exit 2; }
: "${AGENTSTATE_REDIS_URL:?is not set: run scripts/services.sh up and eval \"\$(scripts/services.sh env)\"}"
hostport=${AGENTSTATE_REDIS_URL#redis://}
hostport=${hostport%%/*}
hostport=${hostport##*@}
host=${hostport%:*} port=${hostport##*:}
case "$host" in
  127.*|localhost|::1) ;;
  *) echo "redis_cost.sh: $host is not a loopback address; benchmarks only run on loopback" >&2; exit 2 ;;
esac
for b in "$@"; do
  [[ -x "$b/bench/agentstate_bench" ]] || { echo "redis_cost.sh: $b/bench/agentstate_bench is not built" >&2; exit 2; }
done
cli() { redis-cli -h "$host" -p "$port" "$@"; }
pid=$(cli INFO server | tr -d '\r' | awk -F: '$1=="process_id"{print $2}')
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
stat() { # usec_per_call and calls of one command
  cli INFO commandstats | tr -d '\r' | awk -F'[:,=]' -v c="cmdstat_$1" '$1==c{for(i=2;i<NF;i+=2){if($i=="calls")n=$(i+1); if($i=="usec_per_call")u=$(i+1)} print n, u}'
}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
printf '%-28s %10s %12s %11s %11s %9s %9s %9s %9s\n' build agent_ops agent_ops/s server_us client_us evalsha_us exec_us hset_us hmget_us
for ((r = 0; r < rounds; r++)); do
  for b in "$@"; do
    cli CONFIG RESETSTAT >/dev/null
    t0=$(ticks)
    start=$(date +%s.%N)
    # bash's `time` gives the benchmark process's own CPU (user + system).
    cpu=$( { TIMEFORMAT='%U %S'; time "$b/bench/agentstate_bench" \
      --benchmark_filter="BM_RedisAgentWave/$agents/2/" --benchmark_min_time="$seconds" \
      --benchmark_format=csv >"$out" 2>/dev/null; } 2>&1 )
    t1=$(ticks)
    read -r ops _ < <(stat evalsha)
    rate=$(tr -d '"' <"$out" | awk -F, 'NR==1{for(i=1;i<=NF;i++) if($i=="agent_ops_per_s") c=i} /BM_RedisAgentWave/{print $c}')
    server=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" -v n="$ops" 'BEGIN{printf "%.1f", (b-a)/hz*1e6/n}')
    client=$(awk -v c="$cpu" -v n="$ops" 'BEGIN{split(c,p," "); printf "%.1f", (p[1]+p[2])*1e6/n}')
    per() { stat "$1" | awk '{print ($2==""?"-":$2)}'; }
    printf '%-28s %10s %12.0f %11s %11s %9s %9s %9s %9s\n' "$b" "$ops" "$rate" "$server" "$client" \
      "$(per evalsha)" "$(per exec)" "$(per hset)" "$(per hmget)"
  done
done
cli --scan --pattern 'bench:*' | xargs -r -n 1000 redis-cli -h "$host" -p "$port" UNLINK >/dev/null
