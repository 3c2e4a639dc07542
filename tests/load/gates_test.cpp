#include "load/engine/gates.hpp"

#include <gtest/gtest.h>

namespace agentstate::load {
namespace {

TEST(Gates, EvaluateEachAgainstItsMetric) {
  std::vector<GateSpec> gates = {
      {"p99_ms", "p99_ms", Compare::kAtMost, 200, "ms"},
      {"availability", "availability_percent", Compare::kAtLeast, 99.9, "%"},
      {"lost", "lost_writes", Compare::kAtMost, 0, ""},
      {"absent", "never_measured", Compare::kAtMost, 1, ""}};
  auto r =
      EvaluateGates(gates, {{"p99_ms", 200.0}, {"availability_percent", 99.8}, {"lost_writes", 0}});
  ASSERT_EQ(r.size(), 4u);
  EXPECT_TRUE(r[0].passed) << "the limit itself holds";
  EXPECT_FALSE(r[1].passed);
  EXPECT_TRUE(r[2].passed);
  EXPECT_FALSE(r[3].passed) << "a gate with no measurement fails";
  EXPECT_FALSE(AllPassed(r));
  EXPECT_EQ(r[0].Describe(), "p99_ms: 200 ms <= 200 ms");
  EXPECT_EQ(r[1].Describe(), "availability: 99.8 % >= 99.9 %");
  EXPECT_NE(r[3].Describe().find("not measured"), std::string::npos);
}

TEST(Gates, OverridesParseAndApplyByName) {
  auto o = ParseGateOverride("p99_ms=150");
  ASSERT_TRUE(o);
  EXPECT_EQ(o->name, "p99_ms");
  EXPECT_EQ(o->limit, 150);
  for (const char* bad :
       {"p99_ms", "=5", "p99_ms=", "p99_ms=fast", "p99_ms=-1", "p99_ms=nan", "p99_ms=inf"}) {
    EXPECT_FALSE(ParseGateOverride(bad)) << bad;
  }
  std::vector<GateSpec> gates = {{"p99_ms", "p99_ms", Compare::kAtMost, 200, "ms"}};
  auto used = ApplyOverrides(gates, {*o, {"unknown_gate", 1}});
  EXPECT_EQ(gates[0].limit, 150);
  EXPECT_EQ(used, std::vector<std::string>{"p99_ms"});
}

}  // namespace
}  // namespace agentstate::load
