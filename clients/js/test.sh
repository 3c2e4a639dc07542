#!/usr/bin/env bash
# clients/js's tests as CI runs them: install from the lock file, build with tsc, then the
# saver's tests and LangGraph's validation suite against a real agentstated, on SQLite and
# on PostgreSQL (AGENTSTATE_POSTGRES_URL, from scripts/services.sh env). Every one of the
# 735 must pass, none skipped. Then the LangGraph example, resumed after a restart.
# Usage: clients/js/test.sh PATH/TO/agentstated
set -euo pipefail
bin=$(realpath "${1:?usage: clients/js/test.sh PATH/TO/agentstated}")
cd "$(dirname "${BASH_SOURCE[0]}")"
: "${AGENTSTATE_POSTGRES_URL:?is not set: run scripts/services.sh up and eval its env}"
npm ci --no-audit --no-fund --loglevel=error
npm run --silent build
report=$(mktemp)
trap 'rm -f "$report"' EXIT
for store in sqlite postgres; do
  echo "clients/js: LangGraph's validation suite and the saver's tests on $store"
  AGENTSTATE_TEST_STORE=$store AGENTSTATED_BIN=$bin npx vitest run --reporter=dot --reporter=json --outputFile="$report"
  node scripts/check-results.mjs "$report" 735
done
npm ci --prefix ../../examples/langgraph-js --no-audit --no-fund --loglevel=error
../../examples/langgraph-js/run.sh "$bin"
