#!/usr/bin/env bash
# A real agentstated for the CTest load runs through the server (FIXTURES_SETUP/CLEANUP):
#
#   agentstated_fixture.sh start DIR AGENTSTATED [STORE FLAGS...]   # on a free loopback port
#   agentstated_fixture.sh stop DIR
#
# start runs the binary in the background with its stderr in DIR/agentstated.log, waits
# until it listens, and writes DIR/url (http://127.0.0.1:PORT) and DIR/pid. stop sends
# SIGTERM to the agentstated listening on that port (failure_recovery_under_load kills the
# one started here and starts it again, appending to the same log) and fails unless it
# drained within 30 s.
set -euo pipefail

# The PID listening on 127.0.0.1:$1 (/proc/net/tcp, then the process holding that socket).
listener_pid() {
  local hex inode fd
  hex=$(printf '0100007F:%04X' "$1")
  inode=$(awk -v want="$hex" '$2 == want && $4 == "0A" {print $10; exit}' /proc/net/tcp)
  [[ -n "$inode" ]] || return 1
  for fd in /proc/[0-9]*/fd/*; do
    if [[ "$(readlink "$fd" 2> /dev/null)" == "socket:[$inode]" ]]; then
      fd=${fd#/proc/}
      echo "${fd%%/*}"
      return 0
    fi
  done
  return 1
}

cmd=${1:?usage: agentstated_fixture.sh start DIR AGENTSTATED [FLAGS...] | stop DIR}
dir=${2:?give the fixture directory}

case "$cmd" in
  start)
    bin=${3:?give the agentstated binary}
    shift 3
    mkdir -p "$dir"
    rm -f "$dir/url" "$dir/pid"
    # Every descriptor redirected: CTest waits for the test's pipes to close.
    "$bin" --listen 127.0.0.1:0 "$@" < /dev/null > "$dir/agentstated.out" 2> "$dir/agentstated.log" &
    pid=$!
    echo "$pid" > "$dir/pid"
    for _ in $(seq 1 200); do
      port=$(sed -n 's/^agentstated: listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$dir/agentstated.log")
      if [[ -n "$port" ]]; then
        echo "http://127.0.0.1:$port" > "$dir/url"
        echo "agentstated (pid $pid) on http://127.0.0.1:$port"
        exit 0
      fi
      if ! kill -0 "$pid" 2> /dev/null; then
        echo "agentstated_fixture: agentstated exited before listening:" >&2
        cat "$dir/agentstated.log" >&2
        exit 1
      fi
      sleep 0.05
    done
    echo "agentstated_fixture: agentstated did not listen within 10 s:" >&2
    cat "$dir/agentstated.log" >&2
    kill "$pid" 2> /dev/null || true
    exit 1
    ;;
  stop)
    [[ -f "$dir/url" ]] || { echo "agentstated_fixture: no $dir/url: was it started?" >&2; exit 1; }
    port=$(sed 's/.*://' "$dir/url")
    pid=$(listener_pid "$port") || pid=$(cat "$dir/pid" 2> /dev/null) ||
      { echo "agentstated_fixture: nothing listens on port $port" >&2; exit 1; }
    rm -f "$dir/pid"
    kill -TERM "$pid" 2> /dev/null || { echo "agentstated_fixture: pid $pid is gone" >&2; exit 1; }
    for _ in $(seq 1 600); do
      # Gone, or a zombie its parent has yet to reap (a test that restarted it, say).
      if ! kill -0 "$pid" 2> /dev/null || [[ "$(awk '{print $3}' "/proc/$pid/stat" 2> /dev/null)" == Z ]]; then
        # Not our child: its status is not ours to wait for; its log says it drained.
        if grep -q "drained, store flushed; exiting" "$dir/agentstated.log"; then
          tail -n 3 "$dir/agentstated.log"
          exit 0
        fi
        echo "agentstated_fixture: agentstated ended without draining:" >&2
        tail -n 20 "$dir/agentstated.log" >&2
        exit 1
      fi
      sleep 0.05
    done
    echo "agentstated_fixture: agentstated (pid $pid) did not drain within 30 s; killing it" >&2
    kill -KILL "$pid" 2> /dev/null || true
    exit 1
    ;;
  *)
    echo "agentstated_fixture: unknown command '$cmd': use start or stop" >&2
    exit 2
    ;;
esac
