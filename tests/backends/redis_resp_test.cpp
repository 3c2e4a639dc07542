// RESP2 byte by byte: no sockets.
#include "backends/redis/resp.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "backends/redis/client.hpp"

namespace agentstate::backends::redis {
namespace {

using namespace std::string_literals;  // "...\0..."s keeps embedded NULs

TEST(EncodeCommand, IsAnArrayOfBinarySafeBulkStrings) {
  std::string out;
  EncodeCommand(out, {"SET", "k", std::string_view("a\0b\r\n", 5)});
  EXPECT_EQ(out, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\na\0b\r\n\r\n"s);
  out.clear();
  EncodeCommand(out, {"GET", ""});
  EXPECT_EQ(out, "*2\r\n$3\r\nGET\r\n$0\r\n\r\n");
}

TEST(ReplyParser, ParsesEveryReplyTypeAcrossArbitrarySplits) {
  const std::string stream =
      "+OK\r\n-ERR wrong\r\n:42\r\n$-1\r\n$5\r\nx\0y\r\n\r\n*2\r\n$1\r\na\r\n:7\r\n"s;
  // Every split point: replies come out the same however the bytes arrive.
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    ReplyParser p;
    std::vector<Reply> got;
    for (std::string_view part :
         {std::string_view(stream).substr(0, cut), std::string_view(stream).substr(cut)}) {
      p.Feed(part);
      while (true) {
        auto r = p.Next();
        ASSERT_TRUE(r) << r.error().ToString();
        if (!*r) break;
        got.push_back(std::move(**r));
      }
    }
    ASSERT_EQ(got.size(), 6u) << "cut at " << cut;
    EXPECT_EQ(got[0].type, Reply::Type::kStatus);
    EXPECT_EQ(got[0].str, "OK");
    EXPECT_TRUE(got[1].is_error());
    EXPECT_EQ(got[1].str, "ERR wrong");
    EXPECT_EQ(got[2].integer, 42);
    EXPECT_EQ(got[3].type, Reply::Type::kNil);
    EXPECT_EQ(got[4].str, "x\0y\r\n"s);
    ASSERT_EQ(got[5].elements.size(), 2u);
    EXPECT_EQ(got[5].elements[0].str, "a");
    EXPECT_EQ(got[5].elements[1].integer, 7);
  }
}

TEST(ReplyParser, ALargeValueArrivingInSmallPiecesIsWhole) {
  const std::string value(3 << 20, 'v');
  const std::string wire = "$" + std::to_string(value.size()) + "\r\n" + value + "\r\n";
  ReplyParser p;
  std::optional<Reply> reply;
  for (std::size_t at = 0; at < wire.size(); at += 1000) {
    p.Feed(std::string_view(wire).substr(at, 1000));
    auto r = p.Next();
    ASSERT_TRUE(r);
    if (*r) reply = std::move(**r);
  }
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->str.size(), value.size());
}

TEST(ReplyParser, BytesThatAreNotResp2AreInternalWithTheBytesShown) {
  ReplyParser p;
  p.Feed("HTTP/1.1 400 Bad Request\r\n");
  auto r = p.Next();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), StatusCode::kInternal);
  EXPECT_THAT(r.error().message(), ::testing::HasSubstr("HTTP/1.1 400"));
  EXPECT_THAT(r.error().message(), ::testing::HasSubstr("\\r\\n"));
}

// Found by fuzz_resp: "*200000000\r\n" made hiredis calloc 1.6 GB before any element came.
TEST(ReplyParser, AnArrayLongerThanAnyReplyWeAskForIsRefusedBeforeItIsAllocated) {
  ReplyParser p;
  p.Feed("*200000000\r\n");
  auto r = p.Next();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), StatusCode::kInternal);
  EXPECT_THAT(r.error().message(), ::testing::HasSubstr("an array of 200000000 elements"));

  ReplyParser q;  // the limit itself is accepted, and an element arrives into it
  q.Feed("*1048576\r\n:1\r\n");
  auto more = q.Next();
  ASSERT_TRUE(more) << more.error().message();
  EXPECT_FALSE(*more);
}

TEST(ParseRedisUri, ReadsAuthorityDatabaseAndOptions) {
  auto o = ParseRedisUri(
      "redis://:s3cret@127.0.0.1:16379/"
      "2?connect_timeout=250ms&connections=4&max_in_flight=64&pool_wait=50ms");
  ASSERT_TRUE(o) << o.error().ToString();
  EXPECT_EQ(o->host, "127.0.0.1");
  EXPECT_EQ(o->port, 16379);
  EXPECT_EQ(o->password, "s3cret");
  EXPECT_EQ(o->db, 2);
  EXPECT_EQ(o->connect_timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(o->connections, 4);
  EXPECT_EQ(o->max_in_flight, 64u);
  EXPECT_EQ(o->pool_wait, std::chrono::milliseconds(50));
  EXPECT_EQ(o->redacted_uri.find("s3cret"), std::string::npos);
  auto d = ParseRedisUri("redis://localhost");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->port, 6379);
  EXPECT_EQ(d->db, 0);
  for (const char* bad :
       {"redis://", "redis://h:0", "redis://h:99999", "redis://h/x", "redis://h?connections=0",
        "redis://h?pool=3", "redis://h?max_in_flight=0", "redis://h?pool_wait=soon",
        "redis://:pw@h/1?connect_timeout=fast"}) {
    auto r = ParseRedisUri(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(r.error().message().find(":pw@"), std::string::npos)
        << "password leaked: " << r.error().message();
  }
}

}  // namespace
}  // namespace agentstate::backends::redis
