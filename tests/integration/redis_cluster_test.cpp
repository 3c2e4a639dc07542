// The cluster client on the real local cluster (scripts/services.sh up --cluster: three
// primaries, three replicas). A missing cluster is a failure, never a skip.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <set>

#include "backends/redis/cluster_client.hpp"
#include "support/run.hpp"

namespace agentstate::backends::redis {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

std::string ClusterUrl() {
  const char* url = std::getenv("AGENTSTATE_REDIS_CLUSTER_URL");
  EXPECT_TRUE(url) << "AGENTSTATE_REDIS_CLUSTER_URL is not set: run scripts/services.sh up "
                      "--cluster and eval \"$(scripts/services.sh env)\"";
  return url ? url : "redis+cluster://127.0.0.1:17000";
}

std::unique_ptr<RedisClusterClient> Client(const std::string& url) {
  auto o = ParseRedisClusterUri(url);
  EXPECT_TRUE(o) << o.error().ToString();
  return std::make_unique<RedisClusterClient>(*o);
}

template <typename F>
auto Sync(F&& f) {
  return testing::RunSync(std::forward<F>(f));
}

Result<Reply> On(RedisClusterClient& c, const std::string& node, std::vector<std::string> args) {
  return Sync([&]() -> Awaitable<Result<Reply>> {
    std::vector<std::string_view> v(args.begin(), args.end());
    co_return co_await c.CommandOn(node, v, DeadlineIn(5s));
  });
}

Result<Reply> Keyed(RedisClusterClient& c, const std::string& key, std::vector<std::string> args) {
  return Sync([&]() -> Awaitable<Result<Reply>> {
    std::vector<std::string_view> v(args.begin(), args.end());
    co_return co_await c.Command(key, v, DeadlineIn(5s));
  });
}

class RedisClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    client_ = Client(ClusterUrl());
    Status s =
        Sync([&]() -> Awaitable<Status> { co_return co_await client_->Refresh(DeadlineIn(5s)); });
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_EQ(client_->Primaries().size(), 3u) << "the local cluster has three primaries";
  }
  std::unique_ptr<RedisClusterClient> client_;
};

TEST_F(RedisClusterTest, OurKeySlotIsTheClustersOwn) {
  const std::string seed = client_->options().seeds.front();
  for (int i = 0; i < 300; ++i) {
    const std::string key = i % 3 == 0   ? "plain-" + std::to_string(i * 7919)
                            : i % 3 == 1 ? "agent_state:{run-" + std::to_string(i) + "}"
                                         : "x{}{" + std::to_string(i) + "}";
    auto r = On(*client_, seed, {"CLUSTER", "KEYSLOT", key});
    ASSERT_TRUE(r) << r.error().ToString();
    EXPECT_EQ(r->integer, KeySlot(key)) << key;
  }
}

TEST_F(RedisClusterTest, EveryKeyLandsOnItsSlotsPrimaryAndEveryPrimaryGetsSome) {
  std::set<std::string> used;
  const auto primaries = client_->Primaries();
  for (int i = 0; i < 300; ++i) {
    const std::string key = "ctest-cluster:{run-" + std::to_string(i) + "}";
    auto set = Keyed(*client_, key, {"SET", key, "v" + std::to_string(i), "PX", "60000"});
    ASSERT_TRUE(set) << set.error().ToString();
    ASSERT_EQ(set->str, "OK") << key;
    // Asked of each primary directly, no redirection followed: exactly one holds it.
    int holders = 0;
    for (const auto& p : primaries) {
      auto get = On(*client_, p, {"GET", key});
      ASSERT_TRUE(get);
      if (get->is_error()) {
        EXPECT_THAT(get->str, HasSubstr("MOVED " + std::to_string(KeySlot(key))));
        continue;
      }
      EXPECT_EQ(get->str, "v" + std::to_string(i));
      ++holders;
      used.insert(p);
    }
    EXPECT_EQ(holders, 1) << key;
  }
  EXPECT_EQ(used.size(), 3u);
  EXPECT_EQ(client_->stats().moved, 0u) << "a fresh map needs no redirection";
}

// A slot migrated by hand, as redis-cli --cluster reshard does it: while it is migrating, a
// key already moved is answered with ASK; once the slot is the target's, with MOVED. The
// client follows both, and the slot goes back where it was.
TEST_F(RedisClusterTest, AMigratingSlotIsFollowedThroughAskThenMoved) {
  const std::string key = "ctest-cluster:{migrating}";
  const auto slot = std::to_string(KeySlot(key));
  ASSERT_TRUE(Keyed(*client_, key, {"SET", key, "here", "PX", "60000"}));
  // Source: the primary that holds the key; target: another primary.
  std::string source, target;
  for (const auto& p : client_->Primaries()) {
    auto get = On(*client_, p, {"GET", key});
    ASSERT_TRUE(get);
    (get->is_error() ? target : source) = p;
  }
  ASSERT_FALSE(source.empty());
  auto id = [&](const std::string& node) { return On(*client_, node, {"CLUSTER", "MYID"})->str; };
  const std::string source_id = id(source), target_id = id(target);
  auto move = [&](const std::string& from, const std::string& from_id, const std::string& to,
                  const std::string& to_id) {
    ASSERT_EQ(On(*client_, to, {"CLUSTER", "SETSLOT", slot, "IMPORTING", from_id})->str, "OK");
    ASSERT_EQ(On(*client_, from, {"CLUSTER", "SETSLOT", slot, "MIGRATING", to_id})->str, "OK");
    const auto colon = to.rfind(':');
    auto migrated =
        On(*client_, from,
           {"MIGRATE", to.substr(0, colon), to.substr(colon + 1), "", "0", "5000", "KEYS", key});
    ASSERT_TRUE(migrated);
    ASSERT_FALSE(migrated->is_error()) << migrated->str;
  };
  move(source, source_id, target, target_id);
  // Migrating: the source answers ASK for the moved key, and the client asks the target.
  const auto asked = client_->stats().asked;
  auto get = Keyed(*client_, key, {"GET", key});
  ASSERT_TRUE(get) << get.error().ToString();
  EXPECT_EQ(get->str, "here");
  EXPECT_EQ(client_->stats().asked, asked + 1);
  // The slot is the target's: the source answers MOVED.
  for (const auto& node : {target, source}) {
    ASSERT_EQ(On(*client_, node, {"CLUSTER", "SETSLOT", slot, "NODE", target_id})->str, "OK");
  }
  const auto moved = client_->stats().moved;
  get = Keyed(*client_, key, {"GET", key});
  ASSERT_TRUE(get) << get.error().ToString();
  EXPECT_EQ(get->str, "here");
  EXPECT_GE(client_->stats().moved, moved + 1);
  // And back.
  move(target, target_id, source, source_id);
  for (const auto& node : {source, target}) {
    ASSERT_EQ(On(*client_, node, {"CLUSTER", "SETSLOT", slot, "NODE", source_id})->str, "OK");
  }
  get = Keyed(*client_, key, {"GET", key});
  ASSERT_TRUE(get) << get.error().ToString();
  EXPECT_EQ(get->str, "here");
}

TEST(RedisClusterBadInput, AStandaloneServerOrNoReachableSeedIsAClearError) {
  const char* standalone = std::getenv("AGENTSTATE_REDIS_URL");
  ASSERT_TRUE(standalone) << "AGENTSTATE_REDIS_URL is not set: scripts/services.sh up";
  // redis://127.0.0.1:16379/0 -> redis+cluster://127.0.0.1:16379
  std::string hostport = std::string(standalone).substr(std::string("redis://").size());
  hostport = hostport.substr(0, hostport.find('/'));
  auto c = Client("redis+cluster://" + hostport);
  Status s = Sync([&]() -> Awaitable<Status> { co_return co_await c->Refresh(DeadlineIn(3s)); });
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr("is not a cluster node"));
  EXPECT_THAT(s.message(), HasSubstr("use redis://" + hostport));

  auto none = Client("redis+cluster://127.0.0.1:1,127.0.0.1:2?connect_timeout=200ms");
  s = Sync([&]() -> Awaitable<Status> { co_return co_await none->Refresh(DeadlineIn(3s)); });
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr("127.0.0.1:1"));
  EXPECT_THAT(s.message(), HasSubstr("127.0.0.1:2"));
  // A command through it fails within its deadline, with the same reasons.
  const auto t0 = std::chrono::steady_clock::now();
  auto r = Sync([&]() -> Awaitable<Result<Reply>> {
    std::vector<std::string_view> args = {"GET", "k"};
    co_return co_await none->Command("k", args, DeadlineIn(1s));
  });
  ASSERT_FALSE(r);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
}

}  // namespace
}  // namespace agentstate::backends::redis
