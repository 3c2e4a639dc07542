#!/usr/bin/env bash
# README command (b), and what CI runs: install everything, start the local services,
# build, run every test (unit, integration against the real services, load), then the
# sanitizer builds (scripts/sanitize.sh) and the fuzzers' short runs (scripts/fuzz.sh),
# and stop the services this script started. Exit status: non-zero when any test failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build_dir=${AGENTSTATE_BUILD_DIR:-build}
# Each stage's wall time, printed as it ends: CI has 40 minutes, and this says where they go.
stage_start=$SECONDS
stage() {
  echo "test: stage '$1' took $((SECONDS - stage_start)) s (total $SECONDS s)"
  stage_start=$SECONDS
}
scripts/install-deps.sh --services
stage install

# Start the services unless all are already up; stop only what this run started.
if scripts/services.sh status >/dev/null 2>&1; then
  echo "test: services already running; leaving them as they are"
else
  trap 'scripts/services.sh down || true' EXIT
  scripts/services.sh up --cluster >/dev/null
fi
eval "$(scripts/services.sh env)"

# The browser test drives Debian's Chromium through playwright-core, pinned in the lock file.
command -v npm >/dev/null || { echo "test: npm is missing (Node.js); the browser test needs it" >&2; exit 2; }
npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error

# The house style first: it takes a second and fails on any file clang-format would change.
scripts/check_format.sh

# -g1 (line tables, no variables or types): a quarter less compile time than -g on this
# code (src/server/http_server.cpp: 27.4 s at -g, 20.9 s at -g1), and stack traces keep their
# lines. Warnings are errors here (AGENTSTATE_WERROR), not in a user's build.
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAGENTSTATE_WERROR=ON \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" >/dev/null
cmake --build "$build_dir"
stage build
# An embedder's build: `cmake --install` of that build, and examples/ configured with
# find_package(agentstate) against the installed package alone, built and run.
prefix="$(realpath -m "$build_dir-install")"
rm -rf "$prefix"
cmake --install "$build_dir" --prefix "$prefix" >/dev/null
cmake -S examples -B "$build_dir-examples" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$build_dir-examples"
(cd "$build_dir-examples" && rm -rf embed-data && ./embed memory:// && ./embed && ./embed)
# The tests that kill, pause and restart the shared services run last and alone: a timing
# test right after one of them would measure a cold PostgreSQL and fail for it.
faults='failure_recovery_under_load|chaos|ServiceControl\.|TieredFaults\.'
stage examples
rc=0
ctest --test-dir "$build_dir" --output-on-failure -j2 -E "$faults" || rc=$?
stage tests
# LangGraph.js: clients/js's saver and LangGraph's validation suite against a real
# agentstated on SQLite and on PostgreSQL, and the example graph resumed after a restart.
clients/js/test.sh "$build_dir/agentstated" || rc=1
stage clients/js
# Python: clients/python's client, saver and plugin, LangGraph's conformance suite on SQLite
# and PostgreSQL, the quick load suite from pytest, and the example resumed after a restart.
clients/python/test.sh "$build_dir/agentstated" "$build_dir/agentload" || rc=1
stage clients/python
# The HTTP API against docs/openapi.json: schemathesis from PyPI, every check, a fixed seed.
tests/schemathesis/run.sh "$build_dir/agentstated" 30 || rc=1
stage schemathesis
ctest --test-dir "$build_dir" --output-on-failure -R "$faults" || rc=$?
stage faults
# Then the sanitizers, each on what it is for: the unit tests under ASan+UBSan, the
# concurrent parts under TSan against the same services (scripts/sanitize.sh).
scripts/sanitize.sh asan tsan || rc=1
stage sanitizers
# The fuzzers, 10 s each from their seed corpora (every past crash among them): a bounded
# check that no parser of untrusted bytes crashes (docs/reliability.md has the long runs).
scripts/fuzz.sh 10 || rc=1
stage fuzz
exit $rc
