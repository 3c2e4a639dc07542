#!/usr/bin/env bash
# The LangGraph example end to end, as CI runs it: a fresh agentstated on SQLite (loopback,
# no token file), the graph run to its interrupt, then both restarted (a new server process
# on the same file, a new node process) and the thread resumed. Fails unless the resumed
# run finishes with the draft written before the restart and the human's approval.
# Usage: run.sh PATH/TO/agentstated
set -euo pipefail
bin=$(realpath "${1:?usage: run.sh PATH/TO/agentstated}")
cd "$(dirname "${BASH_SOURCE[0]}")"
server=../../tests/load/agentstated_fixture.sh
dir=$(mktemp -d)
trap '[[ -f $dir/pid ]] && $server stop "$dir" > /dev/null; rm -rf "$dir"' EXIT
start() {
  $server start "$dir" "$bin" --threads 2 --store "sqlite://$dir/state.db" > /dev/null
  AGENTSTATE_URL=$(cat "$dir/url")
  export AGENTSTATE_URL
}

start
first=$(node graph.mjs start post-1)
echo "example: before the restart: $first"
grep -q '"question":"publish?"' <<< "$first" || { echo "example: the graph did not stop at its interrupt" >&2; exit 1; }
$server stop "$dir" > /dev/null
start
second=$(node graph.mjs resume post-1)
echo "example: after the restart: $second"
[[ $second == '{"draft":"Why the tides turn twice a day","approved":true}' ]] ||
  { echo "example: the resumed run did not finish with the draft and the approval" >&2; exit 1; }
echo "example: resumed from a new process after a restart of agentstated"
