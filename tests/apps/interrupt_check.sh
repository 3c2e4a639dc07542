#!/usr/bin/env bash
# Ctrl-C used to kill a run at once and lose everything it had measured. A run stopped by
# SIGINT must write the reports of what ran, marked interrupted, and exit 130.
# Usage: interrupt_check.sh AGENTLOAD SCRATCH_DIR
set -euo pipefail
agentload=$1 out=$2
rm -rf "$out" && mkdir -p "$out"
"$agentload" --test sustained_load_24h_simulation --test 100_concurrent_agents_baseline --store memory:// \
  --report-dir "$out/reports" --verbose >"$out/stdout" 2>"$out/stderr" &
pid=$!
# Signalled once the first phase has ended (its line on stderr), at most 20 s.
for _ in $(seq 200); do grep -q 'sustained_load_24h_simulation / ' "$out/stderr" && break; sleep 0.1; done
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
fail() { echo "interrupt_check: $*" >&2; cat "$out/stderr" >&2; exit 1; }
[[ $rc -eq 130 ]] || fail "exit status $rc, expected 130"
grep -q '"interrupted": true' "$out/reports/summary.json" || fail "summary.json does not say interrupted"
ls "$out/reports"/sustained_load_24h_simulation_*.json >/dev/null || fail "no report of the interrupted scenario"
ls "$out/reports"/100_concurrent_agents_baseline_*.json >/dev/null 2>&1 && fail "a scenario that never started has a report"
[[ -s "$out/reports/index.html" && -s "$out/reports/junit.xml" ]] || fail "index.html or junit.xml missing"
echo "interrupt_check: exit 130, reports of what ran written and marked interrupted"
