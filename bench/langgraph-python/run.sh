#!/usr/bin/env bash
# The side-by-side Python LangGraph saver benchmark (saver_bench.py), on the PostgreSQL that
# scripts/services.sh started: a venv from requirements.lock with clients/python installed,
# a fresh agentstated on a schema of its own, the async HTTP clients side by side
# (http_clients.py), then both savers in turn.
# Usage: bench/langgraph-python/run.sh BUILD_DIR [--agents 100] [--steps 50] [--rounds 3] [--only agentstate|postgres]
set -euo pipefail
bin=$(realpath "${1:?usage: run.sh BUILD_DIR [options]}")/agentstated
cd "$(dirname "${BASH_SOURCE[0]}")"
shift
: "${AGENTSTATE_POSTGRES_URL:?is not set: run scripts/services.sh up and eval its env}"
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r requirements.lock
.venv/bin/pip install -q --disable-pip-version-check --no-deps ../../clients/python
server=../../tests/load/agentstated_fixture.sh
schema=bench_lgpy_$$
dir=$(mktemp -d)
trap '[[ -f $dir/pid ]] && $server stop "$dir" > /dev/null; psql "$AGENTSTATE_POSTGRES_URL" -qc "SET client_min_messages = warning; DROP SCHEMA IF EXISTS $schema CASCADE"; rm -rf "$dir"' EXIT
$server start "$dir" "$bin" --threads 2 --store "$AGENTSTATE_POSTGRES_URL?schema=$schema" > /dev/null
.venv/bin/python http_clients.py --agentstated "$(cat "$dir/url")"
# BENCH_PYTHON_ARGS: for a profile, e.g. "-m cProfile -o /tmp/prof.out" with --only agentstate.
# shellcheck disable=SC2086
.venv/bin/python ${BENCH_PYTHON_ARGS:-} saver_bench.py --agentstated "$(cat "$dir/url")" --postgres "$AGENTSTATE_POSTGRES_URL" --schema "$schema" "$@"
