#include "core/validate.hpp"

#include <gtest/gtest.h>

namespace agentstate::core {
namespace {

TEST(Expiry, FollowsTheTtlPolicy) {
  TtlPolicy ttl;
  const SystemTime now = FromUnixMillis(1'000'000);
  EXPECT_EQ(ExpiryMillis(ttl, RunStatus::kActive, false, now), 1'000'000 + 24 * 3600 * 1000LL);
  EXPECT_EQ(ExpiryMillis(ttl, RunStatus::kCompleted, true, now), 1'000'000 + 3600 * 1000LL);
  EXPECT_EQ(ExpiryMillis(ttl, RunStatus::kActive, true, now), 1'000'000 + 7 * 24 * 3600 * 1000LL);
  ttl.active = std::chrono::seconds(0);
  EXPECT_EQ(ExpiryMillis(ttl, RunStatus::kActive, false, now), kNever);
}

TEST(CheckpointIds, SortInVersionOrder) {
  EXPECT_EQ(CheckpointId(42), "v000000000042");
  EXPECT_LT(CheckpointId(9), CheckpointId(10));
}

TEST(ValidateSave, JsonCheckCanBeTurnedOff) {
  SaveRequest r{"run", "thread", "user", "agent", 1, "p", CheckpointType::kAuto, false, "not json", {}};
  StoreOptions o;
  EXPECT_EQ(ValidateSave(r, o).code(), StatusCode::kInvalidArgument);
  o.validate_json = false;
  EXPECT_TRUE(ValidateSave(r, o).ok());
}

}  // namespace
}  // namespace agentstate::core
