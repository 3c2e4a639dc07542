#!/usr/bin/env bash
# The LangGraph example end to end, as CI runs it: a fresh agentstated on SQLite (loopback,
# no token file), the graph run to its interrupt, then both restarted (a new server process
# on the same file, a new node process) and the thread resumed. Fails unless the resumed
# run finishes with the draft written before the restart and the human's approval.
# Usage: run.sh PATH/TO/agentstated
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
bin=${1:?usage: run.sh PATH/TO/agentstated}
dir=$(mktemp -d)
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT

start_server() {
  "$bin" --listen 127.0.0.1:0 --threads 2 --store "sqlite://$dir/state.db" 2> "$dir/log" &
  pid=$!
  for _ in $(seq 100); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/log" | head -1)
    [[ -n $port ]] && break
    sleep 0.1
  done
  [[ -n $port ]] || { echo "example: agentstated did not start: $(cat "$dir/log")" >&2; exit 1; }
  export AGENTSTATE_URL=http://127.0.0.1:$port
}
stop_server() { kill -TERM "$pid"; wait "$pid" || true; pid=; }

start_server
first=$(node graph.mjs start post-1)
echo "example: before the restart: $first"
grep -q '"question":"publish?"' <<< "$first" || { echo "example: the graph did not stop at its interrupt" >&2; exit 1; }
stop_server
start_server
second=$(node graph.mjs resume post-1)
echo "example: after the restart: $second"
[[ $second == '{"draft":"Why the tides turn twice a day","approved":true}' ]] ||
  { echo "example: the resumed run did not finish with the draft and the approval" >&2; exit 1; }
echo "example: resumed from a new process after a restart of agentstated"
