// redis+cluster:// against the real local cluster (scripts/services.sh up --cluster): the
// shared contract suite, then what only a cluster shows (runs and their threads in other
// slots, SCAN on every primary, the wrong kind of server). A missing cluster is a failure,
// never a skip.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <cstdlib>
#include <set>
#include <thread>

#include "agentstate/registry.hpp"
#include "agentstate/tiered.hpp"
#include "backends/redis/cluster_client.hpp"
#include "backends/redis/redis_store.hpp"
#include "backends/store_contract.hpp"
#include "core/uri.hpp"
#include "support/pg_url.hpp"
#include "support/requests.hpp"
#include "support/run.hpp"

namespace agentstate {
namespace {

using backends::redis::KeySlot;
using backends::redis::RedisClusterClient;
using backends::redis::Reply;
using core::WithParams;
using ::testing::HasSubstr;

std::string ClusterUrl() {
  const char* v = std::getenv("AGENTSTATE_REDIS_CLUSTER_URL");
  return v ? v : "";
}

// A cluster client of the test's own, to look behind the store.
std::unique_ptr<RedisClusterClient> Side() {
  auto o = backends::redis::ParseRedisClusterUri(ClusterUrl());
  if (!o) return nullptr;
  auto c = std::make_unique<RedisClusterClient>(*o);
  Status s = testing::RunSync(
      [&]() -> Awaitable<Status> { co_return co_await c->Refresh(DeadlineIn(5s)); });
  if (!s.ok()) return nullptr;
  return c;
}

Result<Reply> Keyed(RedisClusterClient& c, const std::string& key, std::vector<std::string> args) {
  return testing::RunSync([&]() -> Awaitable<Result<Reply>> {
    std::vector<std::string_view> v(args.begin(), args.end());
    co_return co_await c.Command(key, v, DeadlineIn(5s));
  });
}

Result<Reply> On(RedisClusterClient& c, const std::string& node, std::vector<std::string> args) {
  return testing::RunSync([&]() -> Awaitable<Result<Reply>> {
    std::vector<std::string_view> v(args.begin(), args.end());
    co_return co_await c.CommandOn(node, v, DeadlineIn(5s));
  });
}

// Each test gets its own key prefix on the shared cluster, removed afterwards.
struct ClusterTraits {
  static constexpr const char* kName = "redis_cluster";
  static constexpr bool kSortedActiveRuns = false;  // SCAN order, primary by primary
  static inline std::atomic<int> counter{0};
  std::string prefix = fmt::format("ccontract-{}-{}:", ::getpid(), counter++);

  ClusterTraits() {
    if (ClusterUrl().empty()) {
      ADD_FAILURE() << "AGENTSTATE_REDIS_CLUSTER_URL is not set: start the cluster with "
                       "`scripts/services.sh up --cluster` and `eval \"$(scripts/services.sh "
                       "env)\"`";
    }
  }
  ~ClusterTraits() { DropKeys(prefix); }
  std::string Uri() { return WithParams(ClusterUrl(), "prefix=" + prefix); }

  // Every key under a prefix, on every primary: SCAN there, then DEL each key on its slot.
  static void DropKeys(const std::string& prefix) {
    auto c = Side();
    if (!c) return;
    for (const auto& node : c->Primaries()) {
      std::string cursor = "0";
      for (int i = 0; i < 10000; ++i) {
        auto r = On(*c, node, {"SCAN", cursor, "MATCH", prefix + "*", "COUNT", "1000"});
        if (!r || r->elements.size() != 2) break;
        for (const auto& k : r->elements[1].elements) Keyed(*c, k.str, {"DEL", k.str});
        cursor = r->elements[0].str;
        if (cursor == "0") break;
      }
    }
  }
  // Damage at rest: flip one bit of the stored payload field.
  bool Corrupt(StateStore& store, const std::string& run_id) {
    auto c = Side();
    if (!c) return false;
    const std::string key = dynamic_cast<backends::redis::RedisStore&>(store).RecordKey(run_id);
    auto p = Keyed(*c, key, {"HGET", key, "p"});
    if (!p || p->type != Reply::Type::kString || p->str.empty()) return false;
    std::string bytes = p->str;
    bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x01);
    auto w = Keyed(*c, key, {"HSET", key, "p", bytes});
    return w && !w->is_error();
  }
};

// The tiered store with the cluster as its hot tier and PostgreSQL (a schema per test) as
// its durable one.
struct ClusterTieredTraits : ClusterTraits {
  static constexpr const char* kName = "tiered_redis_cluster_postgresql";
  std::string schema = fmt::format("ctiered_{}_{}", ::getpid(), counter++);

  ClusterTieredTraits() {
    if (testing::StorePgUrl().empty()) {
      ADD_FAILURE() << testing::StorePgVariable() << " is not set: scripts/services.sh up";
    }
  }
  ~ClusterTieredTraits() {
    PGconn* c = PQconnectdb(std::getenv("AGENTSTATE_POSTGRES_URL"));
    PQclear(PQexec(
        c, ("SET client_min_messages = warning; DROP SCHEMA IF EXISTS " + schema + " CASCADE")
               .c_str()));
    PQfinish(c);
  }
  Result<std::unique_ptr<StateStore>> Open(const StoreOptions& o) {
    return OpenTieredStore(Uri(), WithParams(testing::StorePgUrl(), "schema=" + schema),
                           {.flush_window = std::chrono::milliseconds(50)}, o);
  }
  // Damage in both tiers, once the durable one has the run.
  bool Corrupt(StateStore& store, const std::string& run_id) {
    auto& t = dynamic_cast<TieredStore&>(store);
    Status flushed = testing::RunSync(
        [&]() -> Awaitable<Status> { co_return co_await t.Flush(DeadlineIn(5s)); });
    if (!flushed.ok()) return false;
    PGconn* c = PQconnectdb(std::getenv("AGENTSTATE_POSTGRES_URL"));
    const char* params[] = {run_id.c_str()};
    const std::string sql = "UPDATE " + schema +
                            ".runs SET payload = set_byte(payload, length(payload) / 2, "
                            "get_byte(payload, length(payload) / 2) # 1) WHERE run_id = $1";
    PGresult* r = PQexecParams(c, sql.c_str(), 1, nullptr, params, nullptr, nullptr, 0);
    const bool pg_ok = PQresultStatus(r) == PGRES_COMMAND_OK && std::string(PQcmdTuples(r)) == "1";
    PQclear(r);
    PQfinish(c);
    return pg_ok && ClusterTraits::Corrupt(t.hot(), run_id);
  }
};

using ClusterStores = ::testing::Types<ClusterTraits, ClusterTieredTraits>;
INSTANTIATE_TYPED_TEST_SUITE_P(Live, StoreContractTest, ClusterStores, TraitsName);

class RedisClusterStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(ClusterUrl().empty())
        << "AGENTSTATE_REDIS_CLUSTER_URL is not set: scripts/services.sh up --cluster";
    side_ = Side();
    ASSERT_TRUE(side_) << "the local cluster does not answer at " << ClusterUrl();
    auto s = OpenStore(traits_.Uri(), StoreOptions{});
    ASSERT_TRUE(s) << s.error().ToString();
    store_ = std::move(*s);
  }
  template <typename T>
  T Sync(Awaitable<T> op) {
    return testing::RunSync([&]() -> Awaitable<T> { co_return co_await std::move(op); });
  }
  ClusterTraits traits_;
  std::unique_ptr<RedisClusterClient> side_;
  std::unique_ptr<StateStore> store_;
};

// Sixty runs of three threads: their records spread over all three primaries, and each
// thread (in a slot of its own) points at its latest run; a deleted run's thread forgets it.
TEST_F(RedisClusterStoreTest, RunsSpreadOverEveryPrimaryAndTheirThreadsFollowAcrossSlots) {
  std::set<std::string> holders;
  for (int i = 0; i < 60; ++i) {
    const std::string run = fmt::format("run-{}", i), thread = fmt::format("thread-{}", i % 3);
    auto ack =
        Sync(store_->Save(testing::SampleSave(run, R"({"step":1})", thread), DeadlineIn(5s)));
    ASSERT_TRUE(ack) << ack.error().ToString();
    const std::string key = traits_.prefix + "agent_state:{" + run + "}";
    for (const auto& p : side_->Primaries()) {
      auto r = On(*side_, p, {"EXISTS", key});
      if (r && !r->is_error() && r->integer == 1) holders.insert(p);
    }
  }
  EXPECT_EQ(holders.size(), 3u) << "a run's keys go to its slot's primary";
  // The last run of each thread is its context, though thread and run differ in slot.
  for (int t = 0; t < 3; ++t) {
    const std::string thread = fmt::format("thread-{}", t), last = fmt::format("run-{}", 57 + t);
    ASSERT_NE(KeySlot(traits_.prefix + "thread_context:{" + thread + "}"),
              KeySlot(traits_.prefix + "agent_state:{" + last + "}"));
    auto ctx = Sync(store_->ThreadContext(thread, DeadlineIn(5s)));
    ASSERT_TRUE(ctx) << ctx.error().ToString();
    ASSERT_TRUE(*ctx);
    EXPECT_EQ((*ctx)->run_id, last);
  }
  auto gone = Sync(store_->Delete("run-57", DeadlineIn(5s)));
  ASSERT_TRUE(gone) << gone.error().ToString();
  EXPECT_TRUE(*gone);
  auto ctx = Sync(store_->ThreadContext("thread-0", DeadlineIn(5s)));
  ASSERT_TRUE(ctx);
  EXPECT_FALSE(*ctx) << "the thread still points at its deleted run";
  // Listing walks every primary: all 59 live runs, pages of 7, each once.
  std::set<std::string> listed;
  std::string cursor;
  bool named_other_primary = false;
  for (int page = 0; page < 100; ++page) {
    ActiveRunsQuery q;
    q.limit = 7;
    q.cursor = cursor;
    auto p = Sync(store_->ActiveRuns(q, DeadlineIn(5s)));
    ASSERT_TRUE(p) << p.error().ToString();
    for (const auto& r : p->runs) EXPECT_TRUE(listed.insert(r.run_id).second) << r.run_id;
    cursor = p->next_cursor;
    named_other_primary = named_other_primary || cursor.find('/') != std::string::npos;
    if (cursor.empty()) break;
  }
  EXPECT_EQ(listed.size(), 59u);
  EXPECT_TRUE(named_other_primary) << "the cursor moves on to the other primaries";
  // And DeletePrefix finds them on every primary.
  auto n = Sync(store_->DeletePrefix("run-", DeadlineIn(10s)));
  ASSERT_TRUE(n) << n.error().ToString();
  EXPECT_EQ(*n, 59u);
}

TEST_F(RedisClusterStoreTest, AnIdThatWouldBreakTheHashTagIsRefusedNotSentAsCrossSlot) {
  // "}x": the key ...agent_state:{}x} has an empty tag, so Redis hashes the whole key and
  // the run's keys would fall in different slots.
  auto ack = Sync(store_->Save(testing::SampleSave("}x", R"({"a":1})"), DeadlineIn(5s)));
  ASSERT_FALSE(ack);
  EXPECT_EQ(ack.error().code(), StatusCode::kInvalidArgument) << ack.error().ToString();
  EXPECT_THAT(ack.error().message(), HasSubstr("different cluster slots"));
  EXPECT_THAT(ack.error().message(), ::testing::Not(HasSubstr("CROSSSLOT")));
  // Other braces keep the tag whole: a run id holding '{' or a later '}' works.
  for (const char* id : {"a{b", "a}b", "{x}"}) {
    auto ok = Sync(store_->Save(testing::SampleSave(id, R"({"a":1})"), DeadlineIn(5s)));
    EXPECT_TRUE(ok) << id << ": " << ok.error().ToString();
    auto rec = Sync(store_->Load(id, DeadlineIn(5s)));
    ASSERT_TRUE(rec) << rec.error().ToString();
    EXPECT_TRUE(*rec) << id;
  }
}

// A slot in migration, as redis-cli --cluster reshard leaves it between two batches: the
// run's checkpoint index has moved, its checkpoint copy not yet. A script sees only one
// node's keys, so the listing found an id without its copy and reported corruption (two in
// a 22-minute chaos run). Now the script answers TRYAGAIN, the client retries, and once
// the migration is done the listing is whole.
TEST_F(RedisClusterStoreTest, ACheckpointHalfMigratedIsRetriedNotReportedCorrupt) {
  const std::string run = "migrating-run";
  SaveRequest req = testing::SampleSave(run, R"({"step":1})");
  req.checkpoint_type = CheckpointType::kCritical;  // keeps a checkpoint copy
  auto ack = Sync(store_->Save(req, DeadlineIn(5s)));
  ASSERT_TRUE(ack) << ack.error().ToString();
  auto before = Sync(store_->ListCheckpoints(run, DeadlineIn(5s)));
  ASSERT_TRUE(before && before->size() == 1u);
  const std::string tag = traits_.prefix + "checkpoint:{" + run + "}";
  const std::string index = tag, copy = tag + ":" + (*before)[0].checkpoint_id;
  const std::string slot = std::to_string(KeySlot(index));
  std::string source, target;
  for (const auto& p : side_->Primaries()) {
    auto r = On(*side_, p, {"EXISTS", index});
    (r && !r->is_error() ? source : target) = p;
  }
  ASSERT_FALSE(source.empty());
  ASSERT_FALSE(target.empty());
  auto id = [&](const std::string& n) { return On(*side_, n, {"CLUSTER", "MYID"})->str; };
  const std::string source_id = id(source), target_id = id(target);
  auto migrate = [&](const std::string& from, const std::string& to,
                     std::vector<std::string> keys) {
    const auto colon = to.rfind(':');
    std::vector<std::string> cmd = {
        "MIGRATE", to.substr(0, colon), to.substr(colon + 1), "", "0", "5000", "KEYS"};
    cmd.insert(cmd.end(), keys.begin(), keys.end());
    auto r = On(*side_, from, cmd);
    ASSERT_TRUE(r && !r->is_error()) << (r ? r->str : r.error().ToString());
  };
  auto all_keys = [&](const std::string& node) {
    std::vector<std::string> keys;
    auto r = On(*side_, node, {"CLUSTER", "GETKEYSINSLOT", slot, "1000"});
    if (r) {
      for (const auto& k : r->elements) keys.push_back(k.str);
    }
    return keys;
  };
  auto move_slot = [&](const std::string& from, const std::string& from_id, const std::string& to,
                       const std::string& to_id, bool index_first) {
    ASSERT_EQ(On(*side_, to, {"CLUSTER", "SETSLOT", slot, "IMPORTING", from_id})->str, "OK");
    ASSERT_EQ(On(*side_, from, {"CLUSTER", "SETSLOT", slot, "MIGRATING", to_id})->str, "OK");
    if (index_first) migrate(from, to, {index});
  };
  auto finish = [&](const std::string& from, const std::string& to, const std::string& to_id) {
    if (auto keys = all_keys(from); !keys.empty()) migrate(from, to, keys);
    for (const auto& n : {to, from})
      ASSERT_EQ(On(*side_, n, {"CLUSTER", "SETSLOT", slot, "NODE", to_id})->str, "OK");
  };
  move_slot(source, source_id, target, target_id, /*index_first=*/true);
  // The listing starts with the index on the target and the copy on the source, and is
  // retried until the rest has moved.
  Result<std::vector<CheckpointInfo>> listed = Error(StatusCode::kInternal, "not run");
  std::thread lister([&] { listed = Sync(store_->ListCheckpoints(run, DeadlineIn(10s))); });
  std::this_thread::sleep_for(300ms);  // the listing meets the half-migrated slot meanwhile
  finish(source, target, target_id);
  lister.join();
  ASSERT_TRUE(listed) << listed.error().ToString();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].checksum, ack->checksum);
  EXPECT_GT(side_->stats().retried + store_->Stats().values.at("cluster_retried"), 0.0);
  // And back where it was, for the tests after this one.
  move_slot(target, target_id, source, source_id, /*index_first=*/false);
  finish(target, source, source_id);
  auto after = Sync(store_->ListCheckpoints(run, DeadlineIn(5s)));
  ASSERT_TRUE(after) << after.error().ToString();
  EXPECT_EQ(after->size(), 1u);
}

TEST_F(RedisClusterStoreTest, TheHealthReportPingsEveryPrimary) {
  auto h = Sync(store_->Health(DeadlineIn(5s)));
  ASSERT_TRUE(h) << h.error().ToString();
  ASSERT_EQ(h->tiers.size(), 1u);
  EXPECT_TRUE(h->tiers[0].healthy) << h->tiers[0].detail;
  const StoreStats st = store_->Stats();
  EXPECT_EQ(st.values.at("cluster_primaries"), 3.0);
}

TEST(RedisClusterStoreBadInput, EachKindOfServerRefusesTheOthersUriByName) {
  const std::string cluster = ClusterUrl();
  const char* standalone = std::getenv("AGENTSTATE_REDIS_URL");
  ASSERT_FALSE(cluster.empty()) << "AGENTSTATE_REDIS_CLUSTER_URL is not set";
  ASSERT_TRUE(standalone) << "AGENTSTATE_REDIS_URL is not set";
  // A cluster URI naming the standalone server.
  std::string hostport = std::string(standalone).substr(std::string("redis://").size());
  hostport = hostport.substr(0, hostport.find('/'));
  auto s = OpenStore("redis+cluster://" + hostport, StoreOptions{});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), StatusCode::kInvalidArgument) << s.error().ToString();
  EXPECT_THAT(s.error().message(), HasSubstr("use redis://" + hostport));
  // A redis:// URI naming a cluster node.
  auto seeds = backends::redis::ParseRedisClusterUri(cluster);
  ASSERT_TRUE(seeds);
  s = OpenStore("redis://" + seeds->seeds.front(), StoreOptions{});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), StatusCode::kInvalidArgument) << s.error().ToString();
  EXPECT_THAT(s.error().message(), HasSubstr("use redis+cluster://" + seeds->seeds.front()));
  // A prefix with a brace would move the hash tag.
  s = OpenStore(WithParams(cluster, "prefix=a{b"), StoreOptions{});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.error().message(), HasSubstr("prefix 'a{b'"));
  // No seed answers: unavailable, each seed named.
  s = OpenStore("redis+cluster://127.0.0.1:1,127.0.0.1:2?connect_timeout=200ms", StoreOptions{});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), StatusCode::kUnavailable) << s.error().ToString();
  EXPECT_THAT(s.error().message(), HasSubstr("127.0.0.1:2"));
}

}  // namespace
}  // namespace agentstate
