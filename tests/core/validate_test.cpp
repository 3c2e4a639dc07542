#include "core/validate.hpp"

#include <gmock/gmock.h>
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
  SaveRequest r{"run", "thread",   "user", "agent", 1, "p", CheckpointType::kAuto,
                false, "not json", {}};
  StoreOptions o;
  EXPECT_EQ(ValidateSave(r, o).code(), StatusCode::kInvalidArgument);
  o.validate_json = false;
  EXPECT_TRUE(ValidateSave(r, o).ok());
}

TEST(ValidateSave, APhaseEveryStoreCanKeep) {
  SaveRequest r{
      "run", "thread", "user", "agent", 1, std::string("tool\0call", 9), CheckpointType::kAuto,
      false, "{}",     {}};
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
  for (const char* ok : {"{}", "[]", "{\"a\":[1,2.5e3,true,null,\"x\\u00e9\"]}",
                         "\"just a string\"", "42", " {\"a\":1} "}) {
    EXPECT_TRUE(IsWellFormedJson(ok)) << ok;
  }
  for (const char* bad :
       {"", "{", "{\"a\":}", "[1,]", "{'a':1}", "{\"a\":1}{\"b\":2}", "nul", "\"\xff\xfe\""}) {
    EXPECT_FALSE(IsWellFormedJson(bad)) << bad;
  }
  EXPECT_FALSE(IsWellFormedJson(std::string("{\"a\":\"x\0y\"}", 11))) << "raw NUL inside a string";
}

// Valid JSON that simdjson cannot hold was refused as "not well-formed": a caller could not
// tell a typo from a limit. Each limit is now named.
TEST(CheckJson, SaysWhichLimitADocumentHit) {
  const std::string deep =
      std::string(kMaxJsonDepth + 1, '[') + std::string(kMaxJsonDepth + 1, ']');
  EXPECT_THAT(CheckJson(deep).message(), ::testing::HasSubstr("deeper than 1024 levels"));
  const std::string ok_deep = std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']');
  EXPECT_TRUE(CheckJson(ok_deep).ok()) << CheckJson(ok_deep).ToString();
  for (const char* big : {"[18446744073709551616]", "[1e400]", "[-9223372036854775809]"}) {
    EXPECT_THAT(CheckJson(big).message(), ::testing::HasSubstr("outside the stored range")) << big;
  }
  EXPECT_TRUE(CheckJson("[18446744073709551615, -9223372036854775808, 1e308]").ok());
  EXPECT_THAT(CheckJson("\"\xff\"").message(), ::testing::HasSubstr("not valid UTF-8"));
  EXPECT_THAT(CheckJson("{").message(), ::testing::HasSubstr("not well-formed JSON"));
  EXPECT_EQ(CheckJson("{").code(), StatusCode::kInvalidArgument);
}

// Ids and phases must be text every store can keep: invalid UTF-8 passed validation and
// then only PostgreSQL refused it.
TEST(ValidateId, InvalidUtf8IsRefusedLikeAControlByte) {
  EXPECT_TRUE(ValidateId("run_id", "r\xc3\xa9sum\xc3\xa9", 256).ok()) << "valid UTF-8 is fine";
  for (const char* bad : {"run_\xff", "run_\xc3", "\xed\xa0\x80"}) {
    const Status s = ValidateId("run_id", bad, 256);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(), ::testing::HasSubstr("not valid UTF-8")) << bad;
  }
  EXPECT_THAT(ValidatePhase("r", "plan\xff").message(), ::testing::HasSubstr("not valid UTF-8"));
  EXPECT_TRUE(ValidatePhase("r", "plan \xe2\x9c\x93").ok());
}

}  // namespace
}  // namespace agentstate::core
