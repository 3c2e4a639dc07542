#include "load/engine/scenario.hpp"

#include <gtest/gtest.h>

#include <set>

#include "agentstate/registry.hpp"
#include "backends/memory/memory_store.hpp"
#include "load/catalogue/scenarios.hpp"
#include "support/forwarding_store.hpp"
#include "support/run.hpp"

namespace agentstate::load {
namespace {

ScenarioResult RunOn(StateStore& store, ScenarioSpec spec, uint64_t seed = 1) {
  WorkloadGenerator gen(seed);
  return testing::RunSync([&]() -> Awaitable<ScenarioResult> {
    co_return co_await RunScenario(std::move(spec), RunContext{store, gen, false});
  });
}

TEST(RunScenario, BaselineOnTheMemoryStoreHoldsEveryGate) {
  auto store = OpenStore("memory://", {});
  ASSERT_TRUE(store);
  ScenarioResult r =
      RunOn(**store, FindScenario("100_concurrent_agents_baseline")->build(Profile{true, {}}));
  EXPECT_EQ(r.metrics.at("executed"), 100);
  EXPECT_EQ(r.metrics.at("succeeded"), 100);
  EXPECT_EQ(r.ledger.runs_checked, 100u);
  EXPECT_EQ(r.ledger.acked_writes, 100u);
  EXPECT_TRUE(r.ledger.clean());
  EXPECT_EQ(r.latency.Count(), 100u);
  EXPECT_GT(r.metrics.at("peak_memory_mb"), 0);
  for (const auto& g : r.gates) EXPECT_TRUE(g.passed) << g.Describe();
  EXPECT_TRUE(r.passed());
}

// A store that damages what it returns must fail the corruption gates, not pass quietly.
class BitRotStore final : public testing::ForwardingStore {
 public:
  Awaitable<Result<std::optional<StateRecord>>> Load(std::string id, Deadline d) override {
    auto r = co_await inner().Load(id, d);
    if (r && *r && (*r)->version % 2 == 1 && id.back() == '3')
      (*r)->checksum ^= 1;  // every run ending in 3
    co_return r;
  }
};

TEST(RunScenario, CorruptReadsFailTheScenario) {
  BitRotStore store;
  ScenarioResult r =
      RunOn(store, FindScenario("100_concurrent_agents_baseline")->build(Profile{true, {}}));
  EXPECT_GT(r.metrics.at("corruption"), 0);
  EXPECT_LT(r.metrics.at("succeeded"), 100);
  EXPECT_GT(r.ledger.corrupted, 0u);
  EXPECT_FALSE(r.passed());
}

// A store that writes each run's first save but loses its answer (a timeout after the
// commit): what a dropped connection does to a client.
class LostAnswerStore final : public testing::ForwardingStore {
 public:
  Awaitable<Result<SaveAck>> Save(SaveRequest r, Deadline d) override {
    const std::string run = r.run_id;
    auto ack = co_await inner().Save(std::move(r), d);
    if (ack && !ack->replayed && answered_.insert(run).second)
      co_return Error(StatusCode::kTimeout, "the answer was lost");
    co_return ack;
  }
  std::set<std::string> answered_;
};

// Where a phase retries, a retried save carries its first attempt's idempotency key: the
// store answers the first acknowledgement, no run gets a second version, and the ledger
// has no write left in doubt.
TEST(RunScenario, RetriedSavesReuseTheirIdempotencyKeyAndLeaveNothingInDoubt) {
  LostAnswerStore store;
  ScenarioSpec spec;
  spec.name = "lost_answers";
  spec.user_id = "u";
  spec.phases = {{"retrying", 20, {StateSize::kSmall}, {ExecutionPattern::kQuick}, {}}};
  spec.phases[0].max_retries = 2;
  spec.phases[0].retry_backoff = std::chrono::milliseconds(1);
  spec.gates = {{"executed", "executed", Compare::kAtLeast, 20, ""}};
  ScenarioResult r = RunOn(store, spec);
  ASSERT_EQ(r.phases.size(), 1u);
  EXPECT_EQ(r.phases[0].executed, 20u);
  EXPECT_EQ(r.phases[0].succeeded, 20u);
  EXPECT_EQ(r.phases[0].retries, 20u);
  EXPECT_EQ(r.phases[0].replayed_saves, 20u);
  EXPECT_EQ(r.ledger.unknown_writes, 0u);
  EXPECT_TRUE(r.ledger.clean());
  for (const auto& run : store.answered_) {
    auto rec = testing::RunSync([&]() -> Awaitable<Result<std::optional<StateRecord>>> {
      co_return co_await store.Load(run, DeadlineIn(std::chrono::seconds(1)));
    });
    ASSERT_TRUE(rec && *rec);
    EXPECT_EQ((*rec)->version, 1) << run << ": the retry made a second version";
  }
}

TEST(RunScenario, PhasesRunInOrderWithTheirOwnCountsAndPauses) {
  auto store = OpenStore("memory://", {});
  ASSERT_TRUE(store);
  ScenarioSpec spec;
  spec.name = "two_phase";
  spec.user_id = "u";
  spec.phases = {
      {"first", 7, {StateSize::kSmall}, {ExecutionPattern::kQuick}, std::chrono::milliseconds(200)},
      {"second", 13, {StateSize::kMedium}, {ExecutionPattern::kBurst}, {}}};
  spec.gates = {{"executed", "executed", Compare::kAtLeast, 20, ""}};
  const auto t0 = std::chrono::steady_clock::now();
  ScenarioResult r = RunOn(**store, spec);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(200))
      << "pause skipped";
  ASSERT_EQ(r.phases.size(), 2u);
  EXPECT_EQ(r.phases[0].name, "first");
  EXPECT_EQ(r.phases[0].executed, 7u);
  EXPECT_EQ(r.phases[1].executed, 13u);
  EXPECT_EQ(r.latency.Count(), 20u);
  EXPECT_TRUE(r.passed());
}

TEST(RunScenario, TheSameSeedWritesTheSameRuns) {
  auto a = OpenStore("memory://", {});
  auto b = OpenStore("memory://", {});
  auto spec = FindScenario("100_concurrent_agents_baseline")->build(Profile{true, 10});
  RunOn(**a, spec, 5);
  RunOn(**b, spec, 5);
  auto page = [](StateStore& s) {
    return testing::RunSync([&]() -> Awaitable<Result<ActiveRunsPage>> {
      ActiveRunsQuery all;  // named: g++ 12 destroys braced temporaries in co_await twice
      co_return co_await s.ActiveRuns(all, DeadlineIn(std::chrono::seconds(1)));
    });
  };
  auto pa = page(**a), pb = page(**b);
  ASSERT_TRUE(pa && pb);
  ASSERT_EQ(pa->runs.size(), 10u);
  for (std::size_t i = 0; i < 10; ++i) {
    EXPECT_EQ(pa->runs[i].run_id, pb->runs[i].run_id);
    auto la = testing::RunSync([&]() -> Awaitable<Result<std::optional<StateRecord>>> {
      co_return co_await (*a)->Load(pa->runs[i].run_id, DeadlineIn(std::chrono::seconds(1)));
    });
    auto lb = testing::RunSync([&]() -> Awaitable<Result<std::optional<StateRecord>>> {
      co_return co_await (*b)->Load(pb->runs[i].run_id, DeadlineIn(std::chrono::seconds(1)));
    });
    EXPECT_EQ((*la)->payload, (*lb)->payload);
  }
}

}  // namespace
}  // namespace agentstate::load
