// Redis Cluster without a cluster: key slots, the CLUSTER SHARDS reply, redirections and
// the redis+cluster:// URI (tests/integration/redis_cluster_test.cpp runs a real one).
#include "backends/redis/cluster.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "backends/redis/cluster_client.hpp"

namespace agentstate::backends::redis {
namespace {

using ::testing::HasSubstr;

Reply Str(std::string s) {
  Reply r;
  r.type = Reply::Type::kString;
  r.str = std::move(s);
  return r;
}
Reply Int(int64_t v) {
  Reply r;
  r.type = Reply::Type::kInteger;
  r.integer = v;
  return r;
}
Reply Arr(std::vector<Reply> e) {
  Reply r;
  r.type = Reply::Type::kArray;
  r.elements = std::move(e);
  return r;
}
Reply Node(const std::string& id, int port, const std::string& role,
           const std::string& health = "online") {
  return Arr({Str("id"), Str(id), Str("port"), Int(port), Str("ip"), Str("127.0.0.1"),
              Str("endpoint"), Str("127.0.0.1"), Str("role"), Str(role), Str("replication-offset"),
              Int(42), Str("health"), Str(health)});
}
Reply Shard(std::vector<Reply> slots, std::vector<Reply> nodes) {
  return Arr({Str("slots"), Arr(std::move(slots)), Str("nodes"), Arr(std::move(nodes))});
}

TEST(KeySlot, MatchesTheSpecificationsVectorsAndHashTags) {
  // CRC16("123456789") = 0x31C3, the specification's check value.
  EXPECT_EQ(KeySlot("123456789"), 0x31C3);
  EXPECT_EQ(KeySlot("foo"), 12182);  // CLUSTER KEYSLOT foo
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("user1000"));
  EXPECT_EQ(KeySlot("{user1000}.followers"), KeySlot("user1000"));
  EXPECT_EQ(KeySlot("foo{}{bar}"), KeySlot("foo{}{bar}"));  // an empty tag: the whole key
  EXPECT_NE(KeySlot("foo{}{bar}"), KeySlot("bar"));
  EXPECT_EQ(KeySlot("foo{{bar}}zap"), KeySlot("{bar"));
  EXPECT_EQ(KeySlot("foo{bar}{zap}"), KeySlot("bar"));
  // Our keys: every key of a run has the run's tag, so one script's keys share a slot.
  EXPECT_EQ(KeySlot("agent_state:{run-7}"), KeySlot("agent_state_version:{run-7}"));
  EXPECT_EQ(KeySlot("p:agent_state:{run-7}"), KeySlot("run-7"));
}

TEST(ClusterShards, ParseIntoASlotMapOfPrimaries) {
  Reply r =
      Arr({Shard({Int(0), Int(5460)}, {Node("a", 7000, "master"), Node("d", 7003, "replica")}),
           Shard({Int(5461), Int(10922)}, {Node("b", 7001, "master")}),
           Shard({Int(10923), Int(16000), Int(16001), Int(16383)},
                 {Node("c", 7002, "master"), Node("f", 7005, "replica", "loading")})});
  auto map = ParseClusterShards(r, "127.0.0.1:7000");
  ASSERT_TRUE(map) << map.error().ToString();
  ASSERT_EQ(map->nodes.size(), 5u);
  EXPECT_EQ(map->Uncovered(), "");
  EXPECT_EQ(map->nodes[static_cast<std::size_t>(map->primary[0])].address(), "127.0.0.1:7000");
  EXPECT_EQ(map->nodes[static_cast<std::size_t>(map->primary[5461])].address(), "127.0.0.1:7001");
  EXPECT_EQ(map->nodes[static_cast<std::size_t>(map->primary[16383])].address(), "127.0.0.1:7002");
  EXPECT_FALSE(map->nodes[1].primary);
  EXPECT_EQ(map->nodes[4].health, "loading");
  EXPECT_EQ(map->Find("127.0.0.1:7003"), 1);
  EXPECT_EQ(map->Find("127.0.0.1:9999"), -1);
}

TEST(ClusterShards, SlotsWithoutAPrimaryAreNamedAndBadShapesRefused) {
  // Shard b has lost its primary (a failover under way); slot 16383 belongs to no shard.
  Reply r = Arr({Shard({Int(0), Int(5460)}, {Node("a", 7000, "master")}),
                 Shard({Int(5461), Int(10922)}, {Node("e", 7004, "replica")}),
                 Shard({Int(10923), Int(16382)}, {Node("c", 7002, "master")})});
  auto map = ParseClusterShards(r, "n");
  ASSERT_TRUE(map);
  EXPECT_EQ(map->Uncovered(), "5461-10922, 16383");

  EXPECT_THAT(ParseClusterShards(Str("x"), "n").error().message(), HasSubstr("not an array"));
  EXPECT_THAT(ParseClusterShards(Arr({Arr({Str("slots")})}), "n").error().message(),
              HasSubstr("without its slots and nodes"));
  Reply bad_range = Arr({Shard({Int(0), Int(16384)}, {Node("a", 7000, "master")})});
  EXPECT_THAT(ParseClusterShards(bad_range, "n").error().message(), HasSubstr("outside 0..16383"));
  Reply no_port =
      Arr({Shard({Int(0), Int(1)},
                 {Arr({Str("id"), Str("a"), Str("role"), Str("master"), Str("ip"), Str("h")})})});
  EXPECT_THAT(ParseClusterShards(no_port, "n").error().message(), HasSubstr("port"));
  Reply err;
  err.type = Reply::Type::kError;
  err.str = "ERR This instance has cluster support disabled";
  EXPECT_EQ(ParseClusterShards(err, "n").error().code(), StatusCode::kUnavailable);
}

TEST(Redirect, MovedAndAskAreReadAndAnythingElseIsNot) {
  auto moved = ParseRedirect("MOVED 3999 127.0.0.1:6381");
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->kind, Redirect::Kind::kMoved);
  EXPECT_EQ(moved->slot, 3999);
  EXPECT_EQ(moved->address, "127.0.0.1:6381");
  auto ask = ParseRedirect("ASK 0 10.0.0.1:7000");
  ASSERT_TRUE(ask);
  EXPECT_EQ(ask->kind, Redirect::Kind::kAsk);
  for (const char* no : {"ERR unknown", "MOVED", "MOVED x 1.2.3.4:5", "MOVED 16384 h:1",
                         "ASK 1 nohostport", "ASK 1 :5", "MOVED 1 h:"}) {
    EXPECT_FALSE(ParseRedirect(no)) << no;
  }
}

TEST(RedisClusterUri, SeedsPasswordAndParameters) {
  auto o = ParseRedisClusterUri(
      "redis+cluster://:s3cret@127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7000?timeout=50ms");
  ASSERT_TRUE(o) << o.error().ToString();
  EXPECT_THAT(o->seeds, ::testing::ElementsAre("127.0.0.1:7000", "127.0.0.1:7001"));
  EXPECT_EQ(o->node.password, "s3cret");
  EXPECT_EQ(o->node.command_timeout, std::chrono::milliseconds(50));
  EXPECT_THAT(o->redacted_uri, ::testing::Not(HasSubstr("s3cret")));

  for (auto [uri, why] : std::vector<std::pair<std::string, std::string>>{
           {"redis://127.0.0.1:7000", "must be redis+cluster://"},
           {"redis+cluster://127.0.0.1", "has no port"},
           {"redis+cluster://127.0.0.1:7000/1", "only database 0"},
           {"redis+cluster://127.0.0.1:7000,", "seed ''"},
           {"redis+cluster://127.0.0.1:7000?bogus=1", "bogus"},
           {"redis+cluster://:pw@127.0.0.1:70000", "port"}}) {
    auto r = ParseRedisClusterUri(uri);
    ASSERT_FALSE(r) << uri;
    EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument) << uri;
    EXPECT_THAT(r.error().message(), HasSubstr(why)) << uri;
    EXPECT_THAT(r.error().message(), ::testing::Not(HasSubstr("pw@"))) << uri;
  }
}

}  // namespace
}  // namespace agentstate::backends::redis
