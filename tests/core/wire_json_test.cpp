// The record's wire form (core/wire_json.*): what agentstated writes and the http:// store
// reads back, and what a replication PUT sends.
#include "core/wire_json.hpp"

#include <gtest/gtest.h>

#include "core/codec.hpp"
#include "core/validate.hpp"

namespace agentstate::core {
namespace {

std::string Record(std::string_view saved_at_ms) {
  return std::string(
             R"({"run_id":"r","thread_id":"t","user_id":"u","agent_type":"a","version":2,)") +
         R"("step_count":0,"phase":"","checkpoint_type":"auto","is_recovery_point":false,)" +
         R"("status":"active","saved_at_ms":)" + std::string(saved_at_ms) +
         R"(,"checksum":"0000000000000000","state":{"k":1}})";
}

TEST(WireJson, ARecordRoundTripsWithItsStateByteForByte) {
  StateRecord r;
  r.run_id = "run-1";
  r.thread_id = "t-1";
  r.version = 7;
  r.payload = R"( {"messages": ["hi"] })";
  r.checksum = Checksum(r.payload);
  r.saved_at = FromUnixMillis(1764600000123);
  auto back = ParseRecordJson(RecordJson(r));
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->payload, r.payload);
  EXPECT_EQ(back->version, 7);
  EXPECT_EQ(back->checksum, r.checksum);
  EXPECT_EQ(ToUnixMillis(back->saved_at), 1764600000123);
}

// Found by fuzz/fuzz_json.cpp: a saved_at_ms past 2262 overflowed the conversion to the
// clock's nanoseconds (undefined behaviour). It is now refused, naming the field.
TEST(WireJson, ATimeTheClockCannotHoldIsRefusedNotOverflowed) {
  for (const char* ms : {"11764600000000", "9223372036854775807", "-1"}) {
    auto r = ParseRecordJson(Record(ms));
    ASSERT_FALSE(r) << ms;
    EXPECT_NE(r.error().message().find("saved_at_ms"), std::string::npos) << r.error().message();
  }
  EXPECT_TRUE(ParseRecordJson(Record("8999999999999")));
  // And a stored time from outside the range is clamped, never converted as it is.
  EXPECT_EQ(ToUnixMillis(FromUnixMillis(INT64_MAX)), kMaxUnixMillis);
  EXPECT_EQ(ToUnixMillis(FromUnixMillis(INT64_MIN)), -kMaxUnixMillis);
}

}  // namespace
}  // namespace agentstate::core
