#!/usr/bin/env bash
# clients/python's tests as CI runs them: a venv from the lock file with the package installed
# from the repo; its tests (the run client, the saver, LangGraph's conformance suite, the
# pytest plugin) against a real agentstated on SQLite, then the server-facing ones again on
# PostgreSQL (AGENTSTATE_POSTGRES_URL, from scripts/services.sh env); every test must pass and
# none may be skipped. Then the quick load suite through the plugin (every quick scenario a
# passing test) and the LangGraph example, resumed after a restart.
# Usage: clients/python/test.sh PATH/TO/agentstated PATH/TO/agentload
set -euo pipefail
bin=$(realpath "${1:?usage: clients/python/test.sh PATH/TO/agentstated PATH/TO/agentload}")
load=$(realpath "${2:?usage: clients/python/test.sh PATH/TO/agentstated PATH/TO/agentload}")
cd "$(dirname "${BASH_SOURCE[0]}")"
: "${AGENTSTATE_POSTGRES_URL:?is not set: run scripts/services.sh up and eval its env}"
venv=$PWD/.venv
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r requirements.lock
"$venv/bin/pip" install -q --disable-pip-version-check --no-deps -e .
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export AGENTSTATED_BIN=$bin AGENTLOAD_BIN=$load

# pytest's JUnit report says what ran: at least `least` tests, every one passed, none skipped.
check() {
  "$venv/bin/python" - "$1" "$2" "$3" <<'PY'
import sys, xml.etree.ElementTree as ET
path, least, what = sys.argv[1], int(sys.argv[2]), sys.argv[3]
suite = ET.parse(path).getroot().find("testsuite")
n, bad, skipped = (int(suite.get(k)) for k in ("tests", "failures", "skipped"))
bad += int(suite.get("errors"))
print(f"clients/python: {what}: {n - bad - skipped} of {n} passed, {skipped} skipped")
sys.exit(0 if n >= least and bad == 0 and skipped == 0 else 1)
PY
}
echo "clients/python: the client, the saver, LangGraph's conformance suite and the plugin on sqlite"
AGENTSTATE_TEST_STORE=sqlite "$venv/bin/pytest" -q -p no:cacheprovider --junitxml="$work/sqlite.xml" tests
check "$work/sqlite.xml" 29 "sqlite"
echo "clients/python: the client, the saver and LangGraph's conformance suite on postgres"
AGENTSTATE_TEST_STORE=postgres "$venv/bin/pytest" -q -p no:cacheprovider --junitxml="$work/postgres.xml" \
  tests/test_client.py tests/test_saver.py tests/test_conformance.py
check "$work/postgres.xml" 23 "postgres"

echo "clients/python: the quick load suite from pytest (pytest -m \"load and not slow\")"
(cd "$work" && "$venv/bin/pytest" -m "load and not slow" --quick -p no:cacheprovider \
  --agentload-store "sqlite://$work/load.db" --agentload-report-dir "$work/reports" --junitxml="$work/load.xml" -v)
check "$work/load.xml" 9 "the quick load suite"
../../examples/langgraph-python/run.sh "$bin" "$venv/bin/python"
