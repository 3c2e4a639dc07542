#!/usr/bin/env bash
# The sanitizer stage of scripts/test.sh (and so of CI): each sanitizer runs what it is for.
#   asan  AddressSanitizer + UndefinedBehaviorSanitizer (UB aborts): every unit test.
#   tsan  ThreadSanitizer: the concurrent parts (the tiered store and its flusher, the
#         Redis and PostgreSQL clients, the load engine), against the real services, with
#         the one suppression in tests/tsan.supp.
# Usage: scripts/sanitize.sh [asan] [tsan]   (default: both). The tsan tests need the
# services: eval "$(scripts/services.sh env)" first. Exit status: non-zero if any failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

kinds=("$@")
((${#kinds[@]})) || kinds=(asan tsan)
unit_targets=(agentload core_test core_timing_test store_contract_test load_test load_timing_test redis_resp_test ch_sink_test agentload_cli_test
              agentload_invalid_test agentstated agentstated_test security_test http_store_test
              power_cut_test power_cut_writer)
tsan_targets=(store_contract_test load_test load_timing_test redis_client_test pg_store_test tiered_store_test agentstated
             agentstated_test http_store_test redis_cluster_test redis_cluster_store_test)
# The concurrent tests: agentstated (two I/O threads, raw clients), the http:// client
# against its server in-process (the contract suite over it), the tiered store
# (embedded and live), its degradation paths, both clients under reconnects, the executors.
# agentstated's tests run the binary of the same build, so under ASan and TSan the server
# itself is instrumented: a report stops it, and the test that drove it fails. The contract
# suites' second run through pgbouncer is the same client code: TSan runs it once.
tsan_tests='Tenants\.|Wire\.|HttpStore\.|OverHttp|tiered|Tiered|RedisClientTest|RedisClusterTest|RedisClusterStore|redis_cluster\.|StatsReadFromAnotherThreadWhileTheClientReconnects|ABackendKilledMidQuery|OpenModel|ConstantConcurrency'

# A latency ratio measured beside a flood: a sanitizer's cost per request is not the
# server's, and the same request paths run in the other server tests.
not_here='AFloodFromOneTenant'

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/tsan.supp"

rc=0
for kind in "${kinds[@]}"; do
  case "$kind" in
    asan) dir=build-asan flag=-DAGENTSTATE_SANITIZE=ON opt=-O0 targets=("${unit_targets[@]}") select=(-L "^(unit|timing|server)$" -E "$not_here") ;;
    tsan) dir=build-tsan flag=-DAGENTSTATE_TSAN=ON opt=-O1 targets=("${tsan_targets[@]}") select=(-LE load -R "$tsan_tests" -E "^pgbouncer\.|$not_here") ;;
    *) echo "sanitize: unknown sanitizer '$kind'; use asan or tsan" >&2; exit 2 ;;
  esac
  echo "sanitize: $kind: building ${targets[*]} in $dir"
  # -g1: line tables, enough for the reports. TSan at -O1, as it recommends. ASan+UBSan at
  # -O0: g++ 12 optimising UBSan's checks is most of the time (src/server/http_server.cpp:
  # 79 s at -O1, 47 s at -Og, 33 s at -O0; ASan alone at -O1, 33 s), and the unit tests it
  # runs are small.
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$opt -g1" \
    -DAGENTSTATE_BUILD_BENCH=OFF -DAGENTSTATE_WERROR=ON "$flag" >/dev/null
  cmake --build "$dir" --target "${targets[@]}"
  echo "sanitize: $kind: running the tests"
  ctest --test-dir "$dir" --output-on-failure -j2 "${select[@]}" || rc=1
done
exit $rc
