// The original unit of work (build the state, save, load, verify) in waves of N concurrent
// agents, on the memory and sqlite stores, next to its anchor: raw SQLite doing the same
// upsert + select of the same payloads on one connection with the same pragmas (WAL,
// synchronous=NORMAL), no engine around it. The ratio store / anchor is what we track.
#include <benchmark/benchmark.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>

#include "agentstate/registry.hpp"
#include "core/asio.hpp"
#include "core/wait_group.hpp"
#include "load/workload/workload.hpp"

namespace {

using namespace agentstate;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

// The baseline scenario's mix: small / medium / large.
std::vector<std::pair<load::AgentSpec, std::string>> Agents(int n) {
  load::WorkloadGenerator g(1);
  std::vector<std::pair<load::AgentSpec, std::string>> out;
  const load::StateSize sizes[] = {load::StateSize::kSmall, load::StateSize::kMedium,
                                   load::StateSize::kLarge};
  for (int i = 0; i < n; ++i) {
    auto a = g.Agent("bench", i, "bench_user", sizes[i % 3], load::ExecutionPattern::kQuick);
    auto doc = g.StateDocument(a);
    out.emplace_back(std::move(a), std::move(doc));
  }
  return out;
}

fs::path ScratchDb(const char* name) {
  fs::path dir = fs::temp_directory_path() / ("agentstate-bench-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::remove(dir / name);
  return dir / name;
}

// `critical`: every save critical (on sqlite://, fsynced before it is acknowledged); else
// the generator's mix of types.
void BM_StoreWave(benchmark::State& state, const std::string& uri_prefix, bool critical) {
  const int agents = static_cast<int>(state.range(0));
  std::string uri = uri_prefix;
  if (uri == "sqlite://") uri += ScratchDb("store.db").string();
  auto store = OpenStore(uri, {});
  if (!store) {
    state.SkipWithError(store.error().ToString().c_str());
    return;
  }
  auto wave = Agents(agents);
  load::WorkloadGenerator g(1);
  uint64_t failures = 0;
  for (auto _ : state) {
    asio::io_context io(1);
    asio::co_spawn(
        io,
        [&]() -> Awaitable<void> {
          auto ex = co_await asio::this_coro::executor;
          core::WaitGroup group(ex);
          group.Add(wave.size());
          for (auto& [agent, doc] : wave) {
            asio::co_spawn(
                ex,
                [&, a = &agent, d = &doc]() -> Awaitable<void> {
                  SaveRequest req = g.Request(*a, *d);
                  if (critical) req.checkpoint_type = CheckpointType::kCritical;
                  auto ack = co_await (*store)->Save(std::move(req), DeadlineIn(10s));
                  auto rec = co_await (*store)->Load(a->run_id, DeadlineIn(10s));
                  if (!ack || !rec || !*rec || (*rec)->checksum != ack->checksum) ++failures;
                  group.Done();
                },
                asio::detached);
          }
          co_await group.Wait();
        },
        asio::detached);
    io.run();
  }
  state.counters["failures"] = static_cast<double>(failures);
  state.SetItemsProcessed(state.iterations() * agents);
}
BENCHMARK_CAPTURE(BM_StoreWave, memory, std::string("memory://"), false)
    ->Arg(100)
    ->Arg(1000)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_StoreWave, sqlite, std::string("sqlite://"), false)
    ->Arg(100)
    ->Arg(1000)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_StoreWave, sqlite_critical, std::string("sqlite://"), true)
    ->Arg(100)
    ->Arg(1000)
    ->UseRealTime();

// The anchor: what SQLite itself does for the same bytes, one upsert and one select per
// agent, autocommit, on one connection (the store's writer is one connection too).
void BM_AnchorRawSqlite(benchmark::State& state) {
  const int agents = static_cast<int>(state.range(0));
  auto path = ScratchDb("anchor.db");
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_exec(db,
               "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
               "CREATE TABLE runs(run_id TEXT PRIMARY KEY, version INTEGER, payload BLOB);",
               nullptr, nullptr, nullptr);
  sqlite3_stmt *up = nullptr, *sel = nullptr;
  sqlite3_prepare_v2(db,
                     "INSERT INTO runs VALUES(?1, 1, ?2) ON CONFLICT(run_id) DO UPDATE SET "
                     "version = version + 1, payload = ?2",
                     -1, &up, nullptr);
  sqlite3_prepare_v2(db, "SELECT version, payload FROM runs WHERE run_id = ?1", -1, &sel, nullptr);
  auto wave = Agents(agents);
  uint64_t bytes = 0;
  for (auto _ : state) {
    for (auto& [agent, doc] : wave) {
      sqlite3_bind_text(up, 1, agent.run_id.data(), static_cast<int>(agent.run_id.size()),
                        SQLITE_STATIC);
      sqlite3_bind_blob(up, 2, doc.data(), static_cast<int>(doc.size()), SQLITE_STATIC);
      sqlite3_step(up);
      sqlite3_reset(up);
      sqlite3_bind_text(sel, 1, agent.run_id.data(), static_cast<int>(agent.run_id.size()),
                        SQLITE_STATIC);
      if (sqlite3_step(sel) == SQLITE_ROW)
        bytes += static_cast<uint64_t>(sqlite3_column_bytes(sel, 1));
      sqlite3_reset(sel);
    }
  }
  benchmark::DoNotOptimize(bytes);
  sqlite3_finalize(up);
  sqlite3_finalize(sel);
  sqlite3_close(db);
  state.SetItemsProcessed(state.iterations() * agents);
}
BENCHMARK(BM_AnchorRawSqlite)->Arg(100)->Arg(1000)->UseRealTime();

}  // namespace
