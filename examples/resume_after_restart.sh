#!/usr/bin/env bash
# The LangGraph examples end to end, as CI runs them: a fresh agentstated on SQLite
# (loopback, no token file), the graph run to its interrupt, then both restarted (a new
# server process on the same file, a new program) and the thread resumed. Fails unless the
# first run stops at the interrupt and the resumed one answers exactly as expected.
# Usage: resume_after_restart.sh AGENTSTATED INTERRUPTED_PATTERN RESUMED_OUTPUT PROGRAM...
#   PROGRAM start THREAD and PROGRAM resume THREAD are run, with AGENTSTATE_URL set.
set -euo pipefail
bin=$(realpath "${1:?usage: resume_after_restart.sh AGENTSTATED INTERRUPTED_PATTERN RESUMED_OUTPUT PROGRAM...}")
interrupted=${2:?the pattern the interrupted output must hold}
resumed=${3:?the output the resumed run must print}
shift 3
server=$(dirname "${BASH_SOURCE[0]}")/../tests/load/agentstated_fixture.sh
dir=$(mktemp -d)
trap '[[ -f $dir/pid ]] && $server stop "$dir" > /dev/null; rm -rf "$dir"' EXIT
start() {
  $server start "$dir" "$bin" --threads 2 --store "sqlite://$dir/state.db" > /dev/null
  AGENTSTATE_URL=$(cat "$dir/url")
  export AGENTSTATE_URL
}

start
first=$("$@" start post-1)
echo "example: before the restart: $first"
grep -q -- "$interrupted" <<< "$first" || { echo "example: the graph did not stop at its interrupt" >&2; exit 1; }
$server stop "$dir" > /dev/null
start
second=$("$@" resume post-1)
echo "example: after the restart: $second"
[[ $second == "$resumed" ]] || { echo "example: the resumed run did not answer $resumed" >&2; exit 1; }
echo "example: resumed from a new process after a restart of agentstated"
