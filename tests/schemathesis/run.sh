#!/usr/bin/env bash
# schemathesis (PyPI, pinned in requirements.lock) against the HTTP API as docs/openapi.json
# describes it, and a real agentstated on SQLite that this script starts on loopback and
# stops. Two passes: the tenant routes with a tenant's token, then the admin routes with an
# admin's (the admin pass may drop any tenant it lists, the first pass's too). Each check of
# schemathesis.toml runs on every operation; a failure, an error or a crash of the server
# fails the run. The seed is fixed, so a CI failure replays; SEED=random explores anew.
#   tests/schemathesis/run.sh PATH/TO/agentstated [EXAMPLES]   (default 30 per operation)
# Exit status: 0 when both passes pass, 1 when a check failed, 2 for a usage or setup error.
set -euo pipefail
bin=$(realpath "${1:?usage: tests/schemathesis/run.sh PATH/TO/agentstated [EXAMPLES]}")
examples=${2:-30}
[[ "$examples" =~ ^[1-9][0-9]*$ ]] || { echo "schemathesis: '$examples' is not a number of examples" >&2; exit 2; }
seed=${SEED:-20261203}
cd "$(dirname "${BASH_SOURCE[0]}")"
here=$PWD
venv=$here/.venv
# Debian's Python (python3-venv): with pyenv's 3.11.7, hypothesis meets CPython's
# "AST constructor recursion depth mismatch" SystemError parsing schemathesis's own source.
/usr/bin/python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r requirements.lock

work=$(mktemp -d)
pid=
cleanup() {
  [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
# Tokens made for this run only; they reach schemathesis through its config's environment,
# never its command line, and its output masks the Authorization header.
tenant_token=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
admin_token=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
{
  printf '%s\n' "$tenant_token" | "$bin" hash-token --tenant st --role agent
  printf '%s\n' "$admin_token" | "$bin" hash-token --tenant ops --role admin
} >"$work/tokens"
"$bin" --listen 127.0.0.1:0 --threads 2 --tokens "$work/tokens" --store "sqlite://$work/data/st.db" \
  2>"$work/server.log" &
pid=$!
url=
for _ in $(seq 100); do
  url=$(grep -o 'listening on 127\.0\.0\.1:[0-9]*' "$work/server.log" | sed 's/listening on /http:\/\//' || true)
  [[ -n "$url" ]] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
[[ -n "$url" ]] || { echo "schemathesis: agentstated did not start:" >&2; cat "$work/server.log" >&2; exit 2; }

admin_routes='^/(metrics|v1/stats|v1/admin/)'
rc=0
pass() {
  local what=$1 token=$2 filter=$3
  echo "schemathesis: the $what routes, $examples examples per operation, seed $seed"
  AGENTSTATE_ST_TOKEN=$token "$venv/bin/st" --config-file "$here/schemathesis.toml" run ../../docs/openapi.json \
    --url "$url" "$filter" "$admin_routes" --max-examples "$examples" \
    $([[ "$seed" == random ]] || echo --seed "$seed") --workers 2 --generation-codec ascii \
    --no-color --report junit --report-junit-path "$work/$what.xml" || rc=1
}
pass tenant "$tenant_token" --exclude-path-regex
pass admin "$admin_token" --include-path-regex
kill -0 "$pid" 2>/dev/null || { echo "schemathesis: agentstated died during the run:" >&2; tail -20 "$work/server.log" >&2; rc=1; }
exit $rc
