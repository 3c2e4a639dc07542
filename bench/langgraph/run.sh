#!/usr/bin/env bash
# The side-by-side LangGraph saver benchmark (saver_bench.mjs), on the PostgreSQL that
# scripts/services.sh started: a fresh agentstated on a schema of its own, then both savers
# in turn. Usage: bench/langgraph/run.sh BUILD_DIR [--agents 50] [--steps 100] [--rounds 3]
set -euo pipefail
bin=$(realpath "${1:?usage: run.sh BUILD_DIR [options]}")/agentstated
cd "$(dirname "${BASH_SOURCE[0]}")"
shift
: "${AGENTSTATE_POSTGRES_URL:?is not set: run scripts/services.sh up and eval its env}"
server=../../tests/load/agentstated_fixture.sh
schema=bench_lg_$$
dir=$(mktemp -d)
trap '[[ -f $dir/pid ]] && $server stop "$dir" > /dev/null; psql "$AGENTSTATE_POSTGRES_URL" -qc "SET client_min_messages = warning; DROP SCHEMA IF EXISTS $schema CASCADE"; rm -rf "$dir"' EXIT
$server start "$dir" "$bin" --threads 2 --store "$AGENTSTATE_POSTGRES_URL?schema=$schema" > /dev/null
node saver_bench.mjs --agentstated "$(cat "$dir/url")" --postgres "$AGENTSTATE_POSTGRES_URL" --schema "$schema" "$@"
