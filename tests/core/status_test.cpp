#include "agentstate/status.hpp"

#include <gtest/gtest.h>

#include <set>

namespace agentstate {
namespace {

Result<int> Half(int n) {
  if (n % 2) return Error(StatusCode::kInvalidArgument, "odd number " + std::to_string(n));
  return n / 2;
}

TEST(Status, DefaultIsOkAndErrorsCarryCodeAndMessage) {
  EXPECT_TRUE(Status().ok());
  EXPECT_EQ(Status().ToString(), "ok");
  Status s(StatusCode::kConflict, "run r1 is at version 3, expected 2");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.ToString(), "conflict: run r1 is at version 3, expected 2");
}

TEST(Status, EveryCodeHasADistinctName) {
  std::set<std::string_view> names;
  for (auto c : {StatusCode::kOk, StatusCode::kNotFound, StatusCode::kConflict,
                 StatusCode::kInvalidArgument, StatusCode::kTimeout, StatusCode::kUnavailable,
                 StatusCode::kPoolExhausted, StatusCode::kCorruption, StatusCode::kInternal}) {
    names.insert(CodeName(c));
  }
  EXPECT_EQ(names.size(), 9u);
  EXPECT_EQ(CodeName(StatusCode::kPoolExhausted), "pool_exhausted");
}

TEST(Result, HoldsAValueOrAStatus) {
  auto ok = Half(4);
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, 2);
  auto bad = Half(3);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.error().message(), "odd number 3");
  auto chained = Half(8).and_then(Half).and_then(Half);
  ASSERT_TRUE(chained);
  EXPECT_EQ(*chained, 1);
  EXPECT_FALSE(Half(6).and_then(Half));
}

}  // namespace
}  // namespace agentstate
