// The catalogue: every scenario declared, valid in both profiles, and the mechanisms the
// scenarios lean on (reads, updates, checkpoints, the harness pool, faults, early stop).
#include "load/catalogue/scenarios.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "agentstate/registry.hpp"
#include "core/asio.hpp"
#include "load/faults/faults.hpp"
#include "support/forwarding_store.hpp"
#include "support/run.hpp"

namespace agentstate::load {
namespace {

using namespace std::chrono_literals;

ScenarioResult RunOn(StateStore& store, const ScenarioSpec& spec,
                     std::vector<NamedFault> faults = {}) {
  WorkloadGenerator gen(2);
  EXPECT_TRUE(ValidateScenario(spec).ok()) << ValidateScenario(spec).ToString();
  return testing::RunSync([&]() -> Awaitable<ScenarioResult> {
    RunContext ctx{store, gen, false};
    ctx.faults = faults;
    co_return co_await RunScenario(spec, ctx);
  });
}

TEST(Catalogue, HasTheTenScenariosOfTheSeedSuiteInOrder) {
  const std::vector<std::string> names = {
      "100_concurrent_agents_baseline", "mixed_workload_read_write_patterns",
      "state_size_scalability",         "sustained_load_24h_simulation",
      "burst_traffic_handling",         "redis_connection_pool_exhaustion",
      "postgres_checkpoint_under_load", "memory_usage_under_load",
      "latency_sla_compliance",         "failure_recovery_under_load"};
  ASSERT_EQ(Catalogue().size(), names.size());
  for (std::size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(Catalogue()[i].name, names[i]);
    EXPECT_FALSE(Catalogue()[i].description.empty());
    EXPECT_EQ(Catalogue()[i].description.find('\n'), std::string::npos);
  }
}

TEST(Catalogue, EveryScenarioIsValidInBothProfilesAndCarriesTheIntegrityGates) {
  for (const auto& e : Catalogue()) {
    for (bool quick : {false, true}) {
      ScenarioSpec s = e.build(Profile{quick, {}, {}});
      EXPECT_EQ(s.name, e.name);
      EXPECT_TRUE(ValidateScenario(s).ok()) << e.name << ": " << ValidateScenario(s).ToString();
      std::set<std::string> gates;
      for (const auto& g : s.gates)
        EXPECT_TRUE(gates.insert(g.name).second) << e.name << " repeats gate " << g.name;
      for (const char* ours : {"lost_writes", "corruption", "peak_memory_mb", "phantom_writes"}) {
        EXPECT_TRUE(gates.count(ours)) << e.name << " lacks " << ours;
      }
    }
    // Quick keeps the shape: the same phases' kinds, fewer agents.
    ScenarioSpec full = e.build(Profile{false, {}, {}}), quick = e.build(Profile{true, {}, {}});
    int full_agents = 0, quick_agents = 0;
    for (const auto& p : full.phases) full_agents += p.agents + p.reads;
    for (const auto& p : quick.phases) quick_agents += p.agents + p.reads;
    EXPECT_LE(quick_agents, full_agents) << e.name;
  }
}

TEST(Catalogue, TheOriginalParametersAreTheFullProfile) {
  ScenarioSpec burst = FindScenario("burst_traffic_handling")->build(Profile{});
  ASSERT_EQ(burst.phases.size(), 3u);
  EXPECT_EQ(burst.phases[0].agents, 20);
  EXPECT_EQ(burst.phases[1].agents, 80);
  EXPECT_EQ(burst.phases[2].agents, 30);
  EXPECT_EQ(burst.phases[0].pause_after, 2000ms);
  ScenarioSpec ckpt = FindScenario("postgres_checkpoint_under_load")->build(Profile{});
  EXPECT_EQ(ckpt.phases.size(), 15u);
  EXPECT_EQ(ckpt.phases[0].agents, 50);
  EXPECT_EQ(ckpt.phases[0].work, Work::kCriticalCheckpoint);
  ScenarioSpec sla = FindScenario("latency_sla_compliance")->build(Profile{});
  EXPECT_EQ(sla.phases.size(), 6u);
  EXPECT_EQ(sla.phases[0].agents, 60);
  ScenarioSpec soak = FindScenario("sustained_load_24h_simulation")->build(Profile{false, {}, 48s});
  EXPECT_EQ(soak.phases.size(), 24u);
  EXPECT_EQ(soak.phases[0].executor, Executor::kConstant);
  EXPECT_EQ(soak.phases[0].duration, 2000ms);
}

TEST(Units, ReadsCheckRunsAnotherPhaseWroteAgainstTheLedger) {
  auto store = std::move(*OpenStore("memory://", {}));
  ScenarioResult r = RunOn(
      *store, FindScenario("mixed_workload_read_write_patterns")->build(Profile{true, {}, {}}));
  const auto& mixed = r.phases.at(1);
  EXPECT_EQ(mixed.kinds.at("read").executed, 15u);
  EXPECT_EQ(mixed.kinds.at("read").succeeded, 15u);
  EXPECT_EQ(mixed.kinds.at("agent").executed, 10u);
  EXPECT_TRUE(r.passed()) << r.gates[4].Describe();
}

TEST(Units, UpdatesGoInAtTheVersionJustRead) {
  auto store = std::move(*OpenStore("memory://", {}));
  ScenarioResult r =
      RunOn(*store, FindScenario("redis_connection_pool_exhaustion")->build(Profile{true, 20, {}}));
  EXPECT_EQ(r.metrics.at("succeeded"), 20);
  EXPECT_EQ(r.ledger.acked_writes, 40u) << "two saves per unit";
  EXPECT_TRUE(r.ledger.clean());
}

TEST(Units, CriticalCheckpointsLandInTheHistory) {
  auto store = std::move(*OpenStore("memory://", {}));
  ScenarioSpec s = FindScenario("postgres_checkpoint_under_load")->build(Profile{true, 5, {}});
  ScenarioResult r = RunOn(*store, s);
  EXPECT_EQ(r.metrics.at("succeeded"), 25);
  EXPECT_EQ(r.metrics.at("corruption"), 0);
  WorkloadGenerator gen(2);
  AgentSpec a =
      gen.Agent(s.name + "/wave_01", 0, s.user_id, StateSize::kLarge, ExecutionPattern::kSustained);
  auto history = testing::RunSync([&]() -> Awaitable<Result<std::vector<CheckpointInfo>>> {
    co_return co_await store->ListCheckpoints(a.run_id, DeadlineIn(1s));
  });
  ASSERT_TRUE(history);
  ASSERT_EQ(history->size(), 1u);
  EXPECT_EQ((*history)[0].type, CheckpointType::kCritical);
  EXPECT_TRUE((*history)[0].is_recovery_point);
}

TEST(HarnessPool, WaitsTimeoutsAndRejectionsAreCountedApart) {
  // A store whose saves take 300 ms, behind a pool of 2 slots with 3 waiters at most and a
  // 400 ms wait: of 8 agents, 2 run, 3 wait (2 get a slot after 300 ms, 1 times out), 3 are
  // turned away at once.
  class Slow final : public testing::ForwardingStore {
   public:
    Awaitable<Result<SaveAck>> Save(SaveRequest r, Deadline d) override {
      asio::steady_timer t(co_await asio::this_coro::executor, 300ms);
      co_await t.async_wait(asio::use_awaitable);
      co_return co_await inner().Save(std::move(r), d);
    }
  } store;
  ScenarioSpec s;
  s.name = "pool";
  s.user_id = "u";
  PhaseSpec p;
  p.name = "crowd";
  p.agents = 8;
  p.work = Work::kLargeSaves;  // one store call per unit
  p.saves_per_agent = 1;
  p.pool_slots = 2;
  p.pool_max_waiters = 3;
  p.pool_wait = 400ms;
  s.phases = {p};
  ScenarioResult r = RunOn(store, s);
  const PhaseResult& ph = r.phases[0];
  EXPECT_EQ(ph.pool_rejections, 3u);
  EXPECT_EQ(ph.pool_waits, 3u);
  EXPECT_EQ(ph.pool_timeouts, 1u);
  EXPECT_EQ(ph.succeeded, 4u);
  EXPECT_EQ(ph.errors.at("pool_exhausted"), 4u);
  EXPECT_EQ(r.ledger.unknown_writes, 0u) << "a call the pool refused never reached the store";
  EXPECT_TRUE(r.ledger.clean());
}

TEST(Faults, TheSqliteWriteLockMakesSavesRetryAndTheScenarioRecover) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("agentstate-fault-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  const std::string uri = "sqlite://" + (dir / "s.db").string();
  auto store = std::move(*OpenStore(uri, {}));
  auto faults = MakeStoreFaults(uri);
  ASSERT_TRUE(faults);
  ASSERT_EQ(faults->names(), std::vector<std::string>{"sqlite_write_lock"});
  EXPECT_NE(faults->faults[0].second->Describe().find("write lock"), std::string::npos);
  ScenarioResult r = RunOn(
      *store,
      FindScenario("failure_recovery_under_load")->build(Profile{true, 10, {}, faults->names()}),
      faults->view());
  ASSERT_EQ(r.faults.size(), 1u);
  const FaultWindow& w = r.faults[0];
  EXPECT_TRUE(w.injected) << w.error;
  EXPECT_EQ(w.phase, "during_sqlite_write_lock");
  EXPECT_EQ(w.name, "sqlite_write_lock");
  // The held lock shows as failed (timed-out) saves soon after it is taken, and is gone
  // within the phase once it is released.
  ASSERT_TRUE(w.detect_ms.has_value());
  EXPECT_LT(*w.detect_ms, 1000);
  EXPECT_TRUE(w.recovered);
  EXPECT_GT(w.units, 0u);
  EXPECT_EQ(w.lost_auto + w.lost_critical, 0u);
  EXPECT_GT(r.metrics.at("phase.during_sqlite_write_lock.critical_checkpoint.executed"), 0)
      << "every fifth agent writes critical checkpoints through the fault";
  EXPECT_EQ(r.metrics.at("faults_unrecovered"), 0);
  const PhaseResult& during = r.phases.at(1);
  EXPECT_GT(during.retries, 0u) << "the held lock must have made saves time out";
  EXPECT_GT(during.errors.size() + during.retries, 0u);
  EXPECT_EQ(r.phases.at(0).retries, 0u);
  EXPECT_TRUE(r.ledger.clean()) << "timed-out saves are unknown, never lost";
  store.reset();
  std::filesystem::remove_all(dir);
}

TEST(Faults, AStoreWithoutAFaultSaysSoAndFailsTheFaultGate) {
  auto store = std::move(*OpenStore("memory://", {}));
  auto none = MakeStoreFaults("memory://");
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->faults.empty());
  ScenarioResult r =
      RunOn(*store, FindScenario("failure_recovery_under_load")->build(Profile{true, 5, {}}));
  ASSERT_EQ(r.faults.size(), 1u);
  EXPECT_FALSE(r.faults[0].injected);
  EXPECT_NE(r.faults[0].error.find("no fault"), std::string::npos);
  EXPECT_FALSE(r.gates[0].passed) << r.gates[0].Describe();
}

TEST(Chaos, TheSameSeedGivesTheSameScheduleAndEveryFaultFitsTheDuration) {
  const std::vector<std::string> faults = {"redis_reset_storm", "redis_kill", "postgres_restart",
                                           "clickhouse_down"};
  const auto a = ChaosSchedule(faults, 10min, 42);
  const auto b = ChaosSchedule(faults, 10min, 42);
  const auto c = ChaosSchedule(faults, 10min, 43);
  ASSERT_GT(a.size(), 25u);  // ~18 s per fault over 10 minutes
  ASSERT_EQ(a.size(), b.size());
  std::set<std::string> seen;
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].fault, b[i].fault);
    EXPECT_EQ(a[i].at, b[i].at);
    EXPECT_EQ(a[i].hold, b[i].hold);
    EXPECT_GE(a[i].hold, 500ms);
    EXPECT_LE(a[i].hold, 2500ms);
    EXPECT_LE(a[i].at + a[i].hold, 10min - 6s)
        << "the last fault is healed before the end, under load";
    if (i > 0) {
      EXPECT_GE(a[i].at, a[i - 1].at + a[i - 1].hold + 12s);
    }
    seen.insert(a[i].fault);
  }
  EXPECT_EQ(seen.size(), faults.size()) << "every fault is drawn over a long schedule";
  bool differs = c.size() != a.size();
  for (std::size_t i = 0; !differs && i < a.size(); ++i)
    differs = a[i].fault != c[i].fault || a[i].at != c[i].at;
  EXPECT_TRUE(differs) << "another seed, another schedule";
  EXPECT_TRUE(ChaosSchedule({}, 10min, 42).empty());
  EXPECT_TRUE(ChaosSchedule(faults, 8s, 42).empty()) << "too short for a fault and its recovery";
}

TEST(Chaos, RunsTheScheduleOnTheSqliteWriteLockAndEndsWithACleanLedger) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("agentstate-chaos-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  const std::string uri = "sqlite://" + (dir / "s.db").string();
  auto store = std::move(*OpenStore(uri, {}));
  auto faults = MakeStoreFaults(uri);
  ASSERT_TRUE(faults);
  ScenarioSpec spec = ChaosScenario(Profile{true, 6, 30s, faults->names()}, 5);
  ASSERT_EQ(spec.phases.size(), 1u);
  const auto planned = spec.phases[0].fault_events.size();
  ASSERT_GE(planned, 1u);
  ScenarioResult r = RunOn(*store, spec, faults->view());
  ASSERT_EQ(r.faults.size(), planned);
  std::vector<const FaultWindow*> ran;
  for (const auto& w : r.faults) {
    if (!w.injected) {  // a fault that no longer fits the duration is not started, and says so
      EXPECT_NE(w.error.find("not started"), std::string::npos) << w.error;
      continue;
    }
    EXPECT_TRUE(w.recovered) << w.name << " at " << w.start_s << " s";
    ran.push_back(&w);
  }
  ASSERT_GE(ran.size(), 1u);
  // Each fault's recovery is watched before the next one starts.
  for (std::size_t i = 1; i < ran.size(); ++i) EXPECT_GE(ran[i]->start_s, ran[i - 1]->end_s + 4.9);
  EXPECT_GT(r.metrics.at("phase.chaos.critical_checkpoint.executed"), 0);
  EXPECT_TRUE(r.ledger.clean());
  EXPECT_TRUE(r.passed());
  store.reset();
  std::filesystem::remove_all(dir);
}

TEST(EarlyStop, TheSustainedScenarioStopsWhenAnHourFallsBelowEightyPercent) {
  // Every save fails validation: hour 3 is at 0 % and the scenario stops there.
  auto store = std::move(*OpenStore("memory://", StoreOptions{.max_payload_bytes = 10}));
  ScenarioResult r =
      RunOn(*store, FindScenario("sustained_load_24h_simulation")->build(Profile{true, 2, {}}));
  EXPECT_EQ(r.phases.size(), 3u);
  EXPECT_NE(r.stopped_early.find("hour_03"), std::string::npos) << r.stopped_early;
  EXPECT_FALSE(r.passed());
}

}  // namespace
}  // namespace agentstate::load
