// zstd on agent states: the cost of one Encode per level, on the generator's documents
// (small, medium and large in turn, 8.4 KB mean). The anchor is level 1 (core::kZstdLevel),
// in the same run; docs/benchmarks.md gives the other levels as ratios of its time.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "core/codec.hpp"
#include "load/workload/workload.hpp"

namespace {

using namespace agentstate;

std::vector<std::string> Documents() {
  load::WorkloadGenerator g(1);
  const load::StateSize sizes[] = {load::StateSize::kSmall, load::StateSize::kMedium,
                                   load::StateSize::kLarge};
  std::vector<std::string> docs;
  for (int i = 0; i < 300; ++i) {
    docs.push_back(g.StateDocument(
        g.Agent("codec", i, "bench", sizes[i % 3], load::ExecutionPattern::kQuick)));
  }
  return docs;
}

// range(0): the zstd level.
void BM_Encode(benchmark::State& state) {
  const int level = static_cast<int>(state.range(0));
  const std::vector<std::string> docs = Documents();
  uint64_t in = 0, out = 0;
  std::size_t i = 0;
  for (auto _ : state) {
    const std::string& doc = docs[i++ % docs.size()];
    core::Encoded e = core::Encode(doc, 1, level);
    in += doc.size();
    out += e.bytes.size();
    benchmark::DoNotOptimize(e.bytes.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(in));
  state.counters["stored_fraction"] = in ? static_cast<double>(out) / static_cast<double>(in) : 0;
}
BENCHMARK(BM_Encode)->Arg(1)->Arg(-1)->Arg(-3)->Arg(-5)->Unit(benchmark::kMicrosecond);

}  // namespace
