// The Redis client's own throughput: N concurrent callers each doing SET then GET of a
// value, on 2 multiplexed connections. Needs a server: AGENTSTATE_REDIS_URL (from
// `scripts/services.sh env`); without it the benchmark reports an error and skips.
// The anchor is redis-benchmark on the same server with the same value size and client
// count (docs/benchmarks.md gives the command); its rate is this machine's limit.
#include <benchmark/benchmark.h>

#include <cstdlib>

#include "backends/redis/client.hpp"
#include "load/wait_group.hpp"

namespace {

using namespace agentstate;
using namespace std::chrono_literals;

void BM_RedisSetGet(benchmark::State& state) {
  const char* url = std::getenv("AGENTSTATE_REDIS_URL");
  if (!url) {
    state.SkipWithError("AGENTSTATE_REDIS_URL is not set (scripts/services.sh up)");
    return;
  }
  auto options = redis::ParseRedisUri(url);
  if (!options) {
    state.SkipWithError(options.error().ToString().c_str());
    return;
  }
  const int callers = static_cast<int>(state.range(0));
  const std::string value(static_cast<std::size_t>(state.range(1)), 'v');
  redis::RedisClient client(*options);
  uint64_t pairs = 0, failures = 0;
  for (auto _ : state) {
    asio::io_context io(1);
    asio::co_spawn(
        io,
        [&]() -> Awaitable<void> {
          auto ex = co_await asio::this_coro::executor;
          load::WaitGroup group(ex);
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
  state.counters["set_get_pairs_per_s"] = benchmark::Counter(static_cast<double>(pairs), benchmark::Counter::kIsRate);
  state.counters["commands_per_s"] = benchmark::Counter(2.0 * static_cast<double>(pairs), benchmark::Counter::kIsRate);
  state.counters["failures"] = static_cast<double>(failures);
}
BENCHMARK(BM_RedisSetGet)->Args({100, 4096})->Args({1000, 4096})->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
