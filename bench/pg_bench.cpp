// The durable tier's critical path: N agents each saving `critical` checkpoints of a ~30 KB
// state on the postgresql:// store, back to back. A critical save is acknowledged after the
// server's commit (synchronous_commit=on in scripts/services.sh) and writes the record, its
// checkpoint and the thread context in one transaction. Needs AGENTSTATE_POSTGRES_URL.
// The anchor is pgbench inserting the same document as jsonb with the same client count;
// bench/pg_anchor.sh runs both and prints the ratio.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>

#include "agentstate/registry.hpp"
#include "core/asio.hpp"
#include "core/uri.hpp"
#include "core/wait_group.hpp"
#include "load/measure/histogram.hpp"
#include "load/workload/workload.hpp"

namespace {

using namespace agentstate;
using namespace std::chrono_literals;

// A large state plus 250 extra strings: about 30 KB of JSON.
std::string Document(const load::WorkloadGenerator& g, const load::AgentSpec& a) {
  return g.StateDocument(a, 250);
}

void BM_PgCriticalSaves(benchmark::State& state) {
  const char* url = std::getenv("AGENTSTATE_POSTGRES_URL");
  if (!url) {
    state.SkipWithError("AGENTSTATE_POSTGRES_URL is not set (scripts/services.sh up)");
    return;
  }
  const std::string uri =
      core::WithParams(url, "schema=bench&connections=" + std::to_string(state.range(1)));
  StoreOptions options;
  // AGENTSTATE_BENCH_COMPRESS=N overrides the store's threshold, to measure the trade-off.
  if (const char* t = std::getenv("AGENTSTATE_BENCH_COMPRESS"))
    options.compress_threshold_bytes = std::strtoull(t, nullptr, 10);
  auto store = OpenStore(uri, options);
  if (!store) {
    state.SkipWithError(store.error().ToString().c_str());
    return;
  }
  const int agents = static_cast<int>(state.range(0));
  constexpr int kSavesPerAgent = 10;  // per iteration
  load::WorkloadGenerator g(1);
  std::vector<load::AgentSpec> specs;
  std::vector<std::string> docs;
  for (int i = 0; i < agents; ++i) {
    specs.push_back(g.Agent("pgbench", i, "bench_user", load::StateSize::kLarge,
                            load::ExecutionPattern::kSustained));
    docs.push_back(Document(g, specs.back()));
  }
  // bench/pg_anchor.sh gives pgbench the very same document.
  if (const char* out = std::getenv("AGENTSTATE_BENCH_DOC_OUT")) {
    std::FILE* f = std::fopen(out, "wb");
    if (f) {
      std::fwrite(docs[0].data(), 1, docs[0].size(), f);
      std::fclose(f);
    }
  }
  load::Histogram latency;
  uint64_t failures = 0, saves = 0, bytes = 0;
  for (const auto& d : docs) bytes += d.size();
  for (auto _ : state) {
    asio::io_context io(1);
    asio::co_spawn(
        io,
        [&]() -> Awaitable<void> {
          auto ex = co_await asio::this_coro::executor;
          core::WaitGroup group(ex);
          group.Add(specs.size());
          for (int i = 0; i < agents; ++i) {
            asio::co_spawn(
                ex,
                [&, i]() -> Awaitable<void> {
                  for (int k = 0; k < kSavesPerAgent; ++k) {
                    SaveRequest req = g.Request(specs[static_cast<std::size_t>(i)],
                                                docs[static_cast<std::size_t>(i)]);
                    req.checkpoint_type = CheckpointType::kCritical;
                    const auto t0 = std::chrono::steady_clock::now();
                    auto ack = co_await (*store)->Save(std::move(req), DeadlineIn(10s));
                    latency.Record(std::chrono::duration_cast<std::chrono::microseconds>(
                                       std::chrono::steady_clock::now() - t0)
                                       .count());
                    ack ? ++saves : ++failures;
                  }
                  group.Done();
                },
                asio::detached);
          }
          co_await group.Wait();
        },
        asio::detached);
    io.run();
  }
  state.counters["critical_saves_per_s"] =
      benchmark::Counter(static_cast<double>(saves), benchmark::Counter::kIsRate);
  state.counters["p50_ms"] = static_cast<double>(latency.ValueAtPercentile(50)) / 1000.0;
  state.counters["p99_ms"] = static_cast<double>(latency.ValueAtPercentile(99)) / 1000.0;
  state.counters["mean_payload_bytes"] = static_cast<double>(bytes) / agents;
  state.counters["failures"] = static_cast<double>(failures);
}
// {agents, connections}
BENCHMARK(BM_PgCriticalSaves)
    ->Args({50, 2})
    ->Args({50, 4})
    ->Args({50, 8})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
