#include "load/workload/workload.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>

namespace agentstate::load {
namespace {

using nlohmann::json;

TEST(WorkloadGenerator, IdsFollowTheOriginalFormats) {
  WorkloadGenerator g(1);
  AgentSpec a = g.Agent("s/p", 7, "user_9", StateSize::kSmall, ExecutionPattern::kQuick);
  EXPECT_TRUE(std::regex_match(a.agent_id, std::regex("agent_7_[0-9a-f]{8}"))) << a.agent_id;
  EXPECT_EQ(a.run_id, "run_" + a.agent_id);
  EXPECT_EQ(a.thread_id, "thread_" + a.agent_id);
  EXPECT_EQ(a.user_id, "user_9");
  EXPECT_GE(a.step_count, 1);
  EXPECT_LE(a.step_count, 50);
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(g.Agent("s/p", i, "u", StateSize::kSmall, ExecutionPattern::kQuick).agent_type,
              kAgentTypes[i % 4]);
  }
}

// The generator writes JSON directly; what it writes must be the canonical form a JSON
// library gives the same document (sorted keys, its number formatting, its escapes), with
// ids that need escaping among them.
TEST(WorkloadGenerator, DocumentsAreCanonicalJson) {
  WorkloadGenerator g(5);
  const StateSize sizes[] = {StateSize::kSmall, StateSize::kMedium, StateSize::kLarge,
                             StateSize::kEnterprise};
  for (int i = 0; i < 40; ++i) {
    auto a = g.Agent("canon", i, std::string("user \"quoted\" \\ tab\t nl\n \x01"), sizes[i % 4],
                     ExecutionPattern::kBurst);
    const std::string doc = g.StateDocument(a, i % 5 == 0 ? 30 : 0);
    json parsed = json::parse(doc);
    EXPECT_EQ(doc, parsed.dump()) << "agent " << i;
    EXPECT_EQ(parsed["user_id"], a.user_id);
  }
}

TEST(WorkloadGenerator, DocumentsHaveTheShapeOfEachSize) {
  WorkloadGenerator g(3);
  auto doc = [&](StateSize s) {
    return json::parse(g.StateDocument(g.Agent("s", 1, "u", s, ExecutionPattern::kSustained)));
  };
  json small = doc(StateSize::kSmall);
  for (const char* k : {"user_request", "chat_thread_id", "user_id", "run_id", "step_count",
                        "agent_type", "created_at", "updated_at", "metadata"}) {
    EXPECT_TRUE(small.contains(k)) << k;
  }
  EXPECT_EQ(small["metadata"]["simple"], true);
  EXPECT_EQ(small["metadata"]["data_points"], 100);

  json medium = doc(StateSize::kMedium);
  EXPECT_EQ(medium["metadata"]["results"].size(), 50u);
  EXPECT_EQ(medium["metadata"]["history"].size(), 10u);
  EXPECT_TRUE(medium["metadata"]["history"][0].contains("duration"));
  EXPECT_EQ(medium["metadata"]["data_points"], 1000);

  json large = doc(StateSize::kLarge);
  EXPECT_EQ(large["metadata"]["results"].size(), 200u);
  EXPECT_EQ(large["metadata"]["history"].size(), 50u);
  EXPECT_EQ(large["metadata"]["cache"].size(), 100u);
  EXPECT_EQ(large["metadata"]["data_points"], 10000);

  json ent = doc(StateSize::kEnterprise);
  EXPECT_EQ(ent["metadata"]["results"].size(), 500u);
  EXPECT_EQ(ent["metadata"]["history"].size(), 100u);
  EXPECT_EQ(ent["metadata"]["cache"].size(), 300u);
  EXPECT_EQ(ent["metadata"]["metrics"].size(), 200u);
  EXPECT_EQ(ent["metadata"]["data_points"], 50000);
  EXPECT_GT(ent.dump().size(), 25000u);  // "~30 KB" enterprise states

  json extra = json::parse(
      g.StateDocument(g.Agent("s", 1, "u", StateSize::kLarge, ExecutionPattern::kBurst), 1000));
  EXPECT_EQ(extra["large_dataset"].size(), 1000u);
}

TEST(WorkloadGenerator, TheSameSeedGivesTheSameDocuments) {
  WorkloadGenerator a(42), b(42), c(43);
  for (int i = 0; i < 20; ++i) {
    auto sa = a.Agent("scenario/phase", i, "u", StateSize::kLarge, ExecutionPattern::kQuick);
    auto sb = b.Agent("scenario/phase", i, "u", StateSize::kLarge, ExecutionPattern::kQuick);
    auto sc = c.Agent("scenario/phase", i, "u", StateSize::kLarge, ExecutionPattern::kQuick);
    EXPECT_EQ(sa.agent_id, sb.agent_id);
    EXPECT_EQ(a.StateDocument(sa), b.StateDocument(sb));
    EXPECT_NE(sa.agent_id, sc.agent_id);
    EXPECT_NE(a.StateDocument(sa), c.StateDocument(sc));
  }
  // Scopes separate scenarios: same index, different ids.
  EXPECT_NE(a.Agent("x", 0, "u", StateSize::kSmall, ExecutionPattern::kQuick).agent_id,
            a.Agent("y", 0, "u", StateSize::kSmall, ExecutionPattern::kQuick).agent_id);
}

TEST(WorkloadGenerator, RequestIsAnAutoCheckpointThatIsNotARecoveryPoint) {
  WorkloadGenerator g(1);
  auto a = g.Agent("s", 0, "u", StateSize::kSmall, ExecutionPattern::kQuick);
  SaveRequest r = g.Request(a, g.StateDocument(a));
  EXPECT_EQ(r.checkpoint_type, CheckpointType::kAuto);
  EXPECT_FALSE(r.is_recovery_point);
  EXPECT_EQ(r.run_id, a.run_id);
  EXPECT_TRUE(json::accept(r.payload));
}

}  // namespace
}  // namespace agentstate::load
