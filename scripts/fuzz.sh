#!/usr/bin/env bash
# The fuzzers (fuzz/, libFuzzer with ASan and UBSan under Debian's clang): builds them in
# build-fuzz, then runs each from its seed corpus in fuzz/corpus/<name> (which holds every
# input that once crashed, as a regression) for a bounded time. What a run finds new goes
# to a scratch corpus, never into the repo; a crash leaves its input in build-fuzz/crashes.
#   scripts/fuzz.sh [SECONDS] [NAME...]    (default: 20 s each, every fuzzer)
# CI runs it from scripts/test.sh; docs/reliability.md has the hour-long runs. Exit status:
# non-zero when a fuzzer found a crash, a leak, undefined behaviour or a timeout.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=${1:-20}
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "fuzz: '$seconds' is not a number of seconds" >&2; exit 2; }
shift || true
all=(fuzz_resp fuzz_uri fuzz_json fuzz_codec fuzz_checkpoint_wire fuzz_ch_rows fuzz_http_request fuzz_report)
names=("$@")
((${#names[@]})) || names=("${all[@]}")
for n in "${names[@]}"; do
  [[ " ${all[*]} " == *" $n "* ]] || { echo "fuzz: unknown fuzzer '$n'; one of: ${all[*]}" >&2; exit 2; }
done
command -v clang++ >/dev/null || { echo "fuzz: clang++ is missing; run scripts/install-deps.sh --services" >&2; exit 2; }

dir=build-fuzz
# -O1 without debug lines: clang 14 cannot assemble coroutine frames with -g under UBSan.
cmake -S . -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DAGENTSTATE_FUZZ=ON -DAGENTSTATE_WERROR=ON -DAGENTSTATE_BUILD_TESTS=OFF \
  -DAGENTSTATE_BUILD_BENCH=OFF >/dev/null
cmake --build "$dir" --target "${names[@]}"

export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
rc=0
mkdir -p "$dir/crashes"
for n in "${names[@]}"; do
  scratch="$dir/corpus/$n"
  mkdir -p "$scratch"
  dict=()
  [[ -f fuzz/$n.dict ]] && dict=(-dict="fuzz/$n.dict")
  log="$dir/$n.log"
  # -timeout: one input may take 10 s (a hang is a finding); -rss_limit_mb: memory too.
  if "$dir/fuzz/$n" "${dict[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$dir/crashes/$n-" "$scratch" "fuzz/corpus/$n" >"$log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo '?')
    echo "fuzz: $n: ok, $runs runs in ${seconds} s, $cov edges covered"
  else
    rc=1
    echo "fuzz: $n: FAILED (its log: $log; the input: $(ls -t "$dir/crashes/$n-"* 2>/dev/null | head -1))"
    grep -m1 -A12 'ERROR\|runtime error' "$log" || tail -20 "$log"
  fi
done
exit $rc
