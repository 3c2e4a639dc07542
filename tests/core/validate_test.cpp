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

TEST(ValidateSave, APhaseEveryStoreCanKeep) {
  SaveRequest r{"run", "thread", "user", "agent", 1, std::string("tool\0call", 9), CheckpointType::kAuto, false, "{}", {}};
  StoreOptions o;
  Status nul = ValidateSave(r, o);
  EXPECT_EQ(nul.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(nul.message().find("NUL"), std::string::npos) << nul.message();
  r.phase = std::string(kMaxPhaseBytes + 1, 'p');
  EXPECT_EQ(ValidateSave(r, o).code(), StatusCode::kInvalidArgument);
  r.phase = std::string(kMaxPhaseBytes, 'p');
  EXPECT_TRUE(ValidateSave(r, o).ok());
}

}  // namespace
}  // namespace agentstate::core

namespace agentstate::core {
namespace {

TEST(IsWellFormedJson, AcceptsDocumentsAndRejectsEverythingElse) {
  for (const char* ok : {"{}", "[]", "{\"a\":[1,2.5e3,true,null,\"x\\u00e9\"]}", "\"just a string\"", "42", " {\"a\":1} "}) {
    EXPECT_TRUE(IsWellFormedJson(ok)) << ok;
  }
  for (const char* bad : {"", "{", "{\"a\":}", "[1,]", "{'a':1}", "{\"a\":1}{\"b\":2}", "nul", "\"\xff\xfe\""}) {
    EXPECT_FALSE(IsWellFormedJson(bad)) << bad;
  }
  EXPECT_FALSE(IsWellFormedJson(std::string("{\"a\":\"x\0y\"}", 11))) << "raw NUL inside a string";
}

}  // namespace
}  // namespace agentstate::core
