#!/usr/bin/env bash
# agentstated against its anchors, each pair measured in one run on this machine:
#   1. wrk: /healthz (the trivial route) and then a small-state load on memory:// (a save
#      and a load of a 40-byte state, alternating): the state route's rate as a ratio of the
#      trivial one's;
#   2. agentload's baseline (one wave of 100, then of 1000 agents, the original unit of work)
#      on sqlite:// in-process, and through agentstated on a sqlite:// store of its own:
#      throughput ratio (http / in-process) and P99 added, median of ROUNDS alternating runs;
#   3. agentstated's RSS with 10,000 open idle connections, against its RSS before them.
#
# Usage: bench/http_anchor.sh [BUILD_DIR] [ROUNDS]   (loopback only; starts and stops its own
# agentstated processes, by PID)
set -euo pipefail
build=${1:-build}
rounds=${2:-5}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d /tmp/agentstate-http-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2> /dev/null || true; done
  wait 2> /dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Starts agentstated on a free loopback port with the given flags; sets $url and $pid.
start() {
  local name=$1
  shift
  "$build/agentstated" --listen 127.0.0.1:0 "$@" < /dev/null > /dev/null 2> "$work/$name.log" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 1 200); do
    port=$(sed -n 's/^agentstated: listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$work/$name.log")
    [[ -n "$port" ]] && { url="http://127.0.0.1:$port"; return; }
    sleep 0.05
  done
  echo "http_anchor.sh: agentstated did not start:" >&2
  cat "$work/$name.log" >&2
  exit 1
}
median() { sort -g | awk '{v[NR]=$1} END{print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

echo "== 1. wrk, 2 threads, 50 connections, 5 s each, agentstated --store memory:// --threads 1"
start wrk --store memory:// --threads 1
wrk_rate() { wrk -t2 -c50 -d5s "$@" | awk '/^Requests\/sec:/{print $2}'; }
trivial=$(wrk_rate "$url/healthz")
# A first pass saves every run once, so that the measured pass's loads find theirs.
wrk -t2 -c50 -d2s -s "$here/wrk/state.lua" "$url" > /dev/null 2>&1
state=$(wrk_rate -s "$here/wrk/state.lua" "$url")
printf '%-22s %12s\n' route requests/s
printf '%-22s %12.0f\n' /healthz "$trivial" "save+load (40 B state)" "$state"
awk -v s="$state" -v t="$trivial" 'BEGIN{printf "state route / trivial route: %.2f\n", s/t}'
kill -TERM "$pid"

echo
echo "== 2. agentload 100_concurrent_agents_baseline, in-process sqlite:// vs through agentstated (sqlite://), median of $rounds"
start baseline --store "sqlite://$work/server.db"
field() {  # the field of the scenario's summary line: p99 or throughput
  awk -v f="$1" '$1=="PASS"||$1=="FAIL"{for(i=1;i<=NF;i++){if(f=="p99"&&$i=="p99")print $(i+1); if(f=="tput"&&$i=="agents/s")print $(i-1)}}'
}
printf '%-7s %-10s %12s %9s\n' agents store agents/s p99_ms
for agents in 100 1000; do
  : > "$work/local.tput"; : > "$work/local.p99"; : > "$work/http.tput"; : > "$work/http.p99"
  for r in $(seq 1 "$rounds"); do
    for where in local http; do
      store="sqlite://$work/local.db"
      [[ $where == http ]] && store=$url
      out=$("$build/agentload" --test 100_concurrent_agents_baseline --agents "$agents" --seed "$r" \
              --store "$store" --report-dir "$work/reports" 2>&1 || true)
      echo "$out" | field tput >> "$work/$where.tput"
      echo "$out" | field p99 >> "$work/$where.p99"
    done
  done
  for where in local http; do
    printf '%-7s %-10s %12.0f %9.2f\n' "$agents" "$where" "$(median < "$work/$where.tput")" \
      "$(median < "$work/$where.p99")"
  done
  awk -v h="$(median < "$work/http.tput")" -v l="$(median < "$work/local.tput")" \
      -v hp="$(median < "$work/http.p99")" -v lp="$(median < "$work/local.p99")" \
      'BEGIN{printf "%s agents: throughput http / in-process %.2f, P99 added %.2f ms\n", "'"$agents"'", h/l, hp-lp}'
done
kill -TERM "$pid"

echo
echo "== 3. agentstated RSS with 10,000 open idle connections (--store memory://)"
start idle --store memory:// --max-connections 20000
python3 "$here/wrk/idle_connections.py" "$port" 10000 "$pid"
