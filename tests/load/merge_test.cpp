#include "load/report/merge.hpp"

#include <gtest/gtest.h>

#include "agentstate/registry.hpp"
#include "load/catalogue/scenarios.hpp"
#include "load/report/report.hpp"
#include "support/run.hpp"

namespace agentstate::load {
namespace {

using namespace std::chrono_literals;

ScenarioResult RunShard(const ScenarioSpec& spec, int shard, int shards) {
  auto store = std::move(*OpenStore("memory://", {}));
  WorkloadGenerator gen(9);
  return testing::RunSync([&]() -> Awaitable<ScenarioResult> {
    co_return co_await RunScenario(spec, RunContext{*store, gen, false, false, 0, shard, shards});
  });
}

// What `agentload merge` does with two report files, minus the files.
ScenarioResult ThroughReports(const ScenarioSpec& spec, std::vector<ScenarioResult> shards) {
  std::vector<ScenarioResult> parsed;
  for (std::size_t i = 0; i < shards.size(); ++i) {
    RunInfo info{.store = "memory://",
                 .profile = "quick",
                 .seed = 9,
                 .version = "test",
                 .shard_index = static_cast<int>(i),
                 .shard_count = static_cast<int>(shards.size())};
    auto json =
        nlohmann::json::parse(ScenarioReport(shards[i], info).dump());  // as written to disk
    auto r = ResultFromReport(json, spec);
    EXPECT_TRUE(r) << r.error().ToString();
    parsed.push_back(std::move(*r));
  }
  auto merged = MergeResults(std::move(parsed));
  EXPECT_TRUE(merged) << merged.error().ToString();
  return std::move(*merged);
}

TEST(Merge, TwoShardsMergedGiveTheVerdictsOfTheUnshardedRun) {
  ScenarioSpec spec = FindScenario("100_concurrent_agents_baseline")->build(Profile{true, {}});
  spec.gates.push_back(
      {"p99_in_windows", "p99_ms", Compare::kAtMost, 200, "ms", IntervalRule{1s, 90}});
  ScenarioResult whole = RunShard(spec, 0, 1);
  ScenarioResult a = RunShard(spec, 0, 2), b = RunShard(spec, 1, 2);
  EXPECT_EQ(a.metrics.at("executed") + b.metrics.at("executed"), 100);
  ScenarioResult merged = ThroughReports(spec, {a, b});

  EXPECT_EQ(merged.metrics.at("executed"), whole.metrics.at("executed"));
  EXPECT_EQ(merged.metrics.at("succeeded"), whole.metrics.at("succeeded"));
  EXPECT_EQ(merged.ledger.runs_checked, whole.ledger.runs_checked);
  EXPECT_EQ(merged.ledger.acked_writes, whole.ledger.acked_writes);
  ASSERT_EQ(merged.gates.size(), whole.gates.size());
  for (std::size_t i = 0; i < whole.gates.size(); ++i) {
    EXPECT_EQ(merged.gates[i].passed, whole.gates[i].passed)
        << whole.gates[i].Describe() << " vs " << merged.gates[i].Describe();
  }
  EXPECT_TRUE(merged.passed());
}

// raw.ledger lacked "resurrected" (the ledger's JSON was written in three places), so a
// shard's resurrected runs read back as 0 and the merged run passed the gate.
TEST(Merge, AShardsResurrectedRunsSurviveTheMerge) {
  ScenarioSpec spec = FindScenario("100_concurrent_agents_baseline")->build(Profile{true, {}});
  ScenarioResult a = RunShard(spec, 0, 2), b = RunShard(spec, 1, 2);
  a.ledger.resurrected = 2;
  b.ledger.resurrected = 1;
  ScenarioResult merged = ThroughReports(spec, {a, b});
  EXPECT_EQ(merged.ledger.resurrected, 3u);
  EXPECT_EQ(merged.metrics.at("resurrected_runs"), 3);
}

TEST(Merge, MergedPercentilesAreThoseOfTheUnion) {
  ScenarioSpec spec = FindScenario("100_concurrent_agents_baseline")->build(Profile{true, {}});
  ScenarioResult a = RunShard(spec, 0, 2), b = RunShard(spec, 1, 2);
  Histogram union_of;
  union_of.Merge(a.latency);
  union_of.Merge(b.latency);
  ScenarioResult merged = ThroughReports(spec, {a, b});
  EXPECT_EQ(merged.latency.Count(), union_of.Count());
  for (double p : {50.0, 90.0, 99.0, 100.0}) {
    EXPECT_EQ(merged.latency.ValueAtPercentile(p), union_of.ValueAtPercentile(p)) << p;
  }
  EXPECT_EQ(merged.phases[0].save.Count(), a.phases[0].save.Count() + b.phases[0].save.Count());
}

TEST(Merge, ReportsOfAnotherScenarioVersionAreRefused) {
  ScenarioSpec spec = FindScenario("100_concurrent_agents_baseline")->build(Profile{true, {}});
  ScenarioResult a = RunShard(spec, 0, 1);
  auto json =
      nlohmann::json::parse(ScenarioReport(a, RunInfo{"memory://", "quick", 9, "t"}).dump());
  ScenarioSpec changed = spec;
  changed.phases[0].agents = 99;
  auto r = ResultFromReport(json, changed);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("another version"), std::string::npos) << r.error().message();
  json["raw"].erase("phases");
  EXPECT_FALSE(ResultFromReport(json, spec));
}

TEST(Merge, ShardsWithDifferentGateLimitsAreRefused) {
  ScenarioSpec spec = FindScenario("100_concurrent_agents_baseline")->build(Profile{true, {}});
  ScenarioSpec strict = spec;
  strict.gates[3].limit = 1;
  ScenarioResult a = RunShard(spec, 0, 2), b = RunShard(strict, 1, 2);
  auto merged = MergeResults({a, b});
  ASSERT_FALSE(merged);
  EXPECT_NE(merged.error().message().find("different limits"), std::string::npos);
}

}  // namespace
}  // namespace agentstate::load
