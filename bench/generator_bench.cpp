// The generator's own cost: 10,000 concurrent virtual agents (coroutines) on the memory
// store, everything on one thread, each repeating the unit of work with a small state.
// Issue 3 asks for <= 100 MB RSS and >= 200,000 simple operations/s on one core. The
// anchor is the same save + load pair in a bare loop on the same store, no harness: the
// ratio is what the harness (scheduling, histograms, ledger, intervals) costs.
#include <benchmark/benchmark.h>

#include "agentstate/registry.hpp"
#include "core/asio.hpp"
#include "load/engine/scenario.hpp"

namespace {

using namespace agentstate;
using namespace std::chrono_literals;

void BM_Generator(benchmark::State& state) {
  const int agents = static_cast<int>(state.range(0));
  for (auto _ : state) {
    auto store = std::move(*OpenStore("memory://", {}));
    load::WorkloadGenerator gen(1);
    load::ScenarioSpec spec;
    spec.name = "generator";
    spec.user_id = "bench";
    load::PhaseSpec p;
    p.name = "steady";
    p.executor = load::Executor::kConstant;
    p.agents = agents;
    p.duration = 3s;
    spec.phases = {p};
    asio::io_context io(1);
    auto fut = asio::co_spawn(io, load::RunScenario(spec, load::RunContext{*store, gen, false}),
                              asio::use_future);
    io.run();
    load::ScenarioResult r = fut.get();
    const double wall = r.phases[0].end_s - r.phases[0].start_s;
    const double units = static_cast<double>(r.phases[0].executed);
    state.counters["units_per_s"] = units / wall;
    state.counters["store_ops_per_s"] = 2 * units / wall;  // a unit is one save and one load
    state.counters["peak_rss_mb"] = r.peak_rss_mb;
    state.counters["harness_thread_cpu_percent"] = r.harness_thread_cpu_percent;
    state.counters["failed"] = static_cast<double>(r.phases[0].failed);
    state.counters["ledger_clean"] = r.ledger.clean() ? 1 : 0;
  }
}
BENCHMARK(BM_Generator)->Arg(10000)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();

void BM_AnchorBareLoop(benchmark::State& state) {
  auto store = std::move(*OpenStore("memory://", {}));
  load::WorkloadGenerator gen(1);
  auto agent =
      gen.Agent("anchor", 0, "bench", load::StateSize::kSmall, load::ExecutionPattern::kQuick);
  const std::string doc = gen.StateDocument(agent);
  uint64_t units = 0;
  for (auto _ : state) {
    asio::io_context io(1);
    asio::co_spawn(
        io,
        [&]() -> Awaitable<void> {
          for (int i = 0; i < 10000; ++i) {
            SaveRequest req = gen.Request(agent, doc);
            auto ack = co_await store->Save(std::move(req), DeadlineIn(1s));
            auto rec = co_await store->Load(agent.run_id, DeadlineIn(1s));
            benchmark::DoNotOptimize(rec);
            units += ack ? 1 : 0;
          }
        },
        asio::detached);
    io.run();
  }
  state.counters["units_per_s"] =
      benchmark::Counter(static_cast<double>(units), benchmark::Counter::kIsRate);
  state.counters["store_ops_per_s"] =
      benchmark::Counter(2.0 * static_cast<double>(units), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_AnchorBareLoop)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
