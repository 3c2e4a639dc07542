#!/usr/bin/env bash
# Installs every build, test and service dependency from Debian 12's archive.
# Idempotent: packages already present are left alone. Must run as root.
#   scripts/install-deps.sh            build + unit tests
#   scripts/install-deps.sh --services also Redis, PostgreSQL and ClickHouse servers,
#                                      Chromium for the HTML report's browser test, and the
#                                      load and fuzzing tools (clang, wrk, h2load, pgbouncer, perf)
set -euo pipefail

build_pkgs=(
  build-essential cmake ninja-build pkg-config git
  libboost-dev libexpected-dev libsqlite3-dev sqlite3 nlohmann-json3-dev libsimdjson-dev libcli11-dev
  libfmt-dev libzstd-dev libxxhash-dev libhiredis-dev libpq-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev clang-format libssl-dev
)
service_pkgs=(redis-server redis-tools postgresql postgresql-client clickhouse-server clickhouse-client curl procps
              chromium
              # a venv for clients/python when python3 is Debian's own
              python3-venv
              # the tools around them: libFuzzer (clang, and its runtime, which Debian packages
              # apart), HTTP load (wrk, h2load), pgbouncer, perf
              clang libclang-rt-14-dev wrk nghttp2-client pgbouncer linux-perf)

want=("${build_pkgs[@]}")
if [[ "${1:-}" == "--services" ]]; then want+=("${service_pkgs[@]}"); fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#want[@]} packages present"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing packages (${missing[*]}); run this script as root" >&2
  exit 2
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d on these machines blocks service starts; our scripts start services themselves.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
