// Redis, two levels. Both need a server: AGENTSTATE_REDIS_URL (from `scripts/services.sh
// env`); without it they report an error.
//   BM_RedisSetGet     the client alone: N concurrent callers each doing SET then GET.
//   BM_RedisAgentWave  the redis:// store doing the original unit of work (build the state,
//                      save, load, verify) for waves of N concurrent agents, with the
//                      small/medium/large mix; reports agent-ops/s and per-agent P50/P99.
// The anchor is redis-benchmark on the same server with the same value size and client
// count; bench/redis_anchor.sh runs both side by side and prints the ratios.
//   BM_TieredAgentWave the same waves on Redis in front of PostgreSQL (anchor: Redis alone).
//   BM_TieredMemoryAgentWave  the tiered store's own cost, with no server: the same waves on
//                      it over two memory:// tiers, anchored on memory:// alone in the same run
//                      (BM_MemoryAgentWave).
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <cstdlib>

#include "agentstate/registry.hpp"
#include "backends/redis/client.hpp"
#include "core/asio.hpp"
#include "core/uri.hpp"
#include "core/wait_group.hpp"
#include "load/measure/histogram.hpp"
#include "load/workload/workload.hpp"

namespace {

using namespace agentstate;
using namespace std::chrono_literals;

void BM_RedisSetGet(benchmark::State& state) {
  const char* url = std::getenv("AGENTSTATE_REDIS_URL");
  if (!url) {
    state.SkipWithError("AGENTSTATE_REDIS_URL is not set (scripts/services.sh up)");
    return;
  }
  auto options = backends::redis::ParseRedisUri(url);
  if (!options) {
    state.SkipWithError(options.error().ToString().c_str());
    return;
  }
  const int callers = static_cast<int>(state.range(0));
  const std::string value(static_cast<std::size_t>(state.range(1)), 'v');
  backends::redis::RedisClient client(*options);
  uint64_t pairs = 0, failures = 0;
  for (auto _ : state) {
    asio::io_context io(1);
    asio::co_spawn(
        io,
        [&]() -> Awaitable<void> {
          auto ex = co_await asio::this_coro::executor;
          core::WaitGroup group(ex);
          group.Add(static_cast<std::size_t>(callers));
          for (int i = 0; i < callers; ++i) {
            asio::co_spawn(
                ex,
                [&, i]() -> Awaitable<void> {
                  for (int k = 0; k < 20; ++k) {
                    std::vector<std::string> set{"SET", "bench:" + std::to_string(i), value};
                    std::vector<std::string> get{"GET", "bench:" + std::to_string(i)};
                    auto a = co_await client.Command(std::move(set), DeadlineIn(5s));
                    auto b = co_await client.Command(std::move(get), DeadlineIn(5s));
                    (a && b && b->str.size() == value.size() ? pairs : failures)++;
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
  state.counters["set_get_pairs_per_s"] =
      benchmark::Counter(static_cast<double>(pairs), benchmark::Counter::kIsRate);
  state.counters["commands_per_s"] =
      benchmark::Counter(2.0 * static_cast<double>(pairs), benchmark::Counter::kIsRate);
  state.counters["failures"] = static_cast<double>(failures);
}
BENCHMARK(BM_RedisSetGet)
    ->Args({100, 4096})
    ->Args({1000, 4096})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// The baseline scenario's unit of work in waves of N agents. Every agent builds its state
// document (the generator), saves it, loads it back and verifies the checksum; its latency
// runs from the build to the verify.
void AgentWave(benchmark::State& state, StateStore& store) {
  const int agents = static_cast<int>(state.range(0));
  load::WorkloadGenerator g(1);
  const load::StateSize sizes[] = {load::StateSize::kSmall, load::StateSize::kMedium,
                                   load::StateSize::kLarge};
  std::vector<load::AgentSpec> wave;
  uint64_t payload_bytes = 0;
  for (int i = 0; i < agents; ++i) {
    wave.push_back(g.Agent("bench", i, "bench_user", sizes[i % 3], load::ExecutionPattern::kQuick));
    payload_bytes += g.StateDocument(wave.back()).size();
  }
  load::Histogram latency;
  uint64_t failures = 0;
  for (auto _ : state) {
    asio::io_context io(1);
    asio::co_spawn(
        io,
        [&]() -> Awaitable<void> {
          auto ex = co_await asio::this_coro::executor;
          core::WaitGroup group(ex);
          group.Add(wave.size());
          for (const auto& agent : wave) {
            asio::co_spawn(
                ex,
                [&, a = &agent]() -> Awaitable<void> {
                  const auto t0 = std::chrono::steady_clock::now();
                  SaveRequest req = g.Request(*a, g.StateDocument(*a));
                  auto ack = co_await store.Save(std::move(req), DeadlineIn(10s));
                  auto rec = co_await store.Load(a->run_id, DeadlineIn(10s));
                  if (!ack || !rec || !*rec || (*rec)->checksum != ack->checksum) ++failures;
                  latency.Record(std::chrono::duration_cast<std::chrono::microseconds>(
                                     std::chrono::steady_clock::now() - t0)
                                     .count());
                  group.Done();
                },
                asio::detached);
          }
          co_await group.Wait();
        },
        asio::detached);
    io.run();
  }
  state.counters["agent_ops_per_s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * agents), benchmark::Counter::kIsRate);
  state.counters["p50_ms"] = static_cast<double>(latency.ValueAtPercentile(50)) / 1000.0;
  state.counters["p99_ms"] = static_cast<double>(latency.ValueAtPercentile(99)) / 1000.0;
  state.counters["mean_payload_bytes"] = static_cast<double>(payload_bytes) / agents;
  state.counters["failures"] = static_cast<double>(failures);
}

// The wave on the store the environment variable names (a prefix and N connections added).
void EnvStoreAgentWave(benchmark::State& state, const char* variable, const char* start) {
  const char* url = std::getenv(variable);
  if (!url) {
    state.SkipWithError(fmt::format("{} is not set ({})", variable, start).c_str());
    return;
  }
  auto store = OpenStore(
      core::WithParams(url, "prefix=bench:&connections=" + std::to_string(state.range(1))), {});
  if (!store) {
    state.SkipWithError(store.error().ToString().c_str());
    return;
  }
  AgentWave(state, **store);
}

// On the redis:// store alone.
void BM_RedisAgentWave(benchmark::State& state) {
  EnvStoreAgentWave(state, "AGENTSTATE_REDIS_URL", "scripts/services.sh up");
}
// {agents per wave, connections}
BENCHMARK(BM_RedisAgentWave)
    ->Args({100, 2})
    ->Args({1000, 2})
    ->Args({1000, 4})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// The same wave on the local cluster (scripts/services.sh up --cluster: three primaries on
// the same two cores), beside BM_RedisAgentWave in one run: on this machine the ratio is the
// cluster's overhead, not its scaling.
void BM_RedisClusterAgentWave(benchmark::State& state) {
  EnvStoreAgentWave(state, "AGENTSTATE_REDIS_CLUSTER_URL", "scripts/services.sh up --cluster");
}
BENCHMARK(BM_RedisClusterAgentWave)
    ->Args({100, 2})
    ->Args({1000, 2})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// On the tiered store: the same Redis in front of PostgreSQL, auto saves written behind
// within 100 ms. Issue 6 asks for this within 20 % of the Redis-only rate.
void BM_TieredAgentWave(benchmark::State& state) {
  const char* redis = std::getenv("AGENTSTATE_REDIS_URL");
  const char* pg = std::getenv("AGENTSTATE_POSTGRES_URL");
  if (!redis || !pg) {
    state.SkipWithError(
        "AGENTSTATE_REDIS_URL / AGENTSTATE_POSTGRES_URL are not set (scripts/services.sh up)");
    return;
  }
  auto store = OpenTieredStore(
      core::WithParams(redis, "prefix=bench-tiered:&connections=" + std::to_string(state.range(1))),
      core::WithParams(pg, "schema=bench_tiered"), {.flush_window = 100ms}, {});
  if (!store) {
    state.SkipWithError(store.error().ToString().c_str());
    return;
  }
  AgentWave(state, **store);
}
BENCHMARK(BM_TieredAgentWave)
    ->Args({100, 2})
    ->Args({1000, 2})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// The anchor of the next: memory:// alone. range(1) is unused (kept for the same names).
void BM_MemoryAgentWave(benchmark::State& state) {
  auto store = OpenStore("memory://", {});
  if (!store) {
    state.SkipWithError(store.error().ToString().c_str());
    return;
  }
  AgentWave(state, **store);
}
BENCHMARK(BM_MemoryAgentWave)->Args({1000, 0})->UseRealTime()->Unit(benchmark::kMillisecond);

// The tiered store's bookkeeping (validation, the hot-version check, the write-behind queue
// and its flusher) over two memory:// tiers, so that no server shares the cores.
void BM_TieredMemoryAgentWave(benchmark::State& state) {
  auto store = OpenTieredStore("memory://", "memory://", {.flush_window = 100ms}, {});
  if (!store) {
    state.SkipWithError(store.error().ToString().c_str());
    return;
  }
  AgentWave(state, **store);
}
BENCHMARK(BM_TieredMemoryAgentWave)->Args({1000, 0})->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
