// The tiered store on the real services: redis:// in front of postgresql:// (label
// integration). The shared contract suite, then write-behind against the durable tier: the
// tiers agree once the flush window has passed, critical saves are in PostgreSQL when they
// are acknowledged, and a FLUSHALL of the hot tier loses nothing beyond the window.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#include <cstdlib>

#include "agentstate/tiered.hpp"
#include "backends/clickhouse/ch_sink.hpp"
#include "backends/redis/redis_store.hpp"
#include "backends/store_contract.hpp"
#include "core/uri.hpp"
#include "support/pg_url.hpp"
#include "support/requests.hpp"

namespace agentstate {
namespace {

using core::WithParams;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}
// One namespace per test in each tier: a Redis key prefix and a PostgreSQL schema.
struct LiveTieredTraits {
  static constexpr const char* kName = "tiered_redis_postgresql";
  static constexpr bool kSortedActiveRuns = false;  // the hot tier's order: SCAN
  static inline std::atomic<int> counter{0};
  std::string ns = fmt::format("tiered_{}_{}", ::getpid(), counter++);

  LiveTieredTraits() {
    for (const char* var :
         {"AGENTSTATE_REDIS_URL", "AGENTSTATE_POSTGRES_URL", testing::StorePgVariable()}) {
      if (Env(var).empty()) {
        ADD_FAILURE() << var << " is not set: start the services with `scripts/services.sh up` "
                      << "and `eval \"$(scripts/services.sh env)\"`";
      }
    }
  }
  ~LiveTieredTraits() {
    DropSchema();
    DropHotKeys();
  }
  void DropSchema() const {
    PGconn* c = PQconnectdb(Env("AGENTSTATE_POSTGRES_URL").c_str());
    PQclear(PQexec(
        c,
        ("SET client_min_messages = warning; DROP SCHEMA IF EXISTS " + ns + " CASCADE").c_str()));
    PQfinish(c);
  }
  // The hot tier loses everything of ours: FLUSHALL, scoped to our prefix because the
  // server is shared with other tests. SCAN our prefix, UNLINK what it finds.
  void DropHotKeys() const {
    redisContext* r = Redis();
    if (!r) return;
    std::string cursor = "0";
    do {
      auto* reply = static_cast<redisReply*>(
          redisCommand(r, "SCAN %s MATCH %s* COUNT 1000", cursor.c_str(), HotPrefix().c_str()));
      if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) break;
      cursor = reply->element[0]->str;
      for (std::size_t i = 0; i < reply->element[1]->elements; ++i) {
        freeReplyObject(redisCommand(r, "UNLINK %s", reply->element[1]->element[i]->str));
      }
      freeReplyObject(reply);
    } while (cursor != "0");
    redisFree(r);
  }
  std::string HotPrefix() const { return ns + ":"; }
  std::string HotUri() const {
    return WithParams(Env("AGENTSTATE_REDIS_URL"), "prefix=" + HotPrefix());
  }
  // Through pgbouncer when CTest asks (support/pg_url.hpp); the test's own connections go
  // to the server directly.
  std::string DurableUri() const { return WithParams(testing::StorePgUrl(), "schema=" + ns); }
  static redisContext* Redis() {
    auto o = backends::redis::ParseRedisUri(Env("AGENTSTATE_REDIS_URL"));
    if (!o) return nullptr;
    return redisConnect(o->host.c_str(), o->port);
  }
  Result<std::unique_ptr<StateStore>> Open(
      const StoreOptions& o, std::chrono::milliseconds window = std::chrono::milliseconds(50)) {
    return OpenTieredStore(HotUri(), DurableUri(), {.flush_window = window}, o);
  }
  // Damage in both tiers, once the durable one has the run.
  bool Corrupt(StateStore& store, const std::string& run_id) {
    auto& t = dynamic_cast<TieredStore&>(store);
    Status flushed =
        RunSync([&]() -> Awaitable<Status> { co_return co_await t.Flush(DeadlineIn(5s)); });
    if (!flushed.ok()) return false;
    PGconn* c = PQconnectdb(Env("AGENTSTATE_POSTGRES_URL").c_str());
    const char* params[] = {run_id.c_str()};
    const std::string sql = "UPDATE " + ns +
                            ".runs SET payload = set_byte(payload, length(payload) / 2, "
                            "get_byte(payload, length(payload) / 2) # 1) WHERE run_id = $1";
    PGresult* r = PQexecParams(c, sql.c_str(), 1, nullptr, params, nullptr, nullptr, 0);
    const bool pg_ok = PQresultStatus(r) == PGRES_COMMAND_OK && std::string(PQcmdTuples(r)) == "1";
    PQclear(r);
    PQfinish(c);
    redisContext* rc = Redis();
    const std::string key = dynamic_cast<backends::redis::RedisStore&>(t.hot()).RecordKey(run_id);
    auto* p = static_cast<redisReply*>(redisCommand(rc, "HGET %b p", key.data(), key.size()));
    bool redis_ok = p && p->type == REDIS_REPLY_STRING && p->len > 0;
    if (redis_ok) {
      std::string bytes(p->str, p->len);
      bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x01);
      freeReplyObject(
          redisCommand(rc, "HSET %b p %b", key.data(), key.size(), bytes.data(), bytes.size()));
    }
    if (p) freeReplyObject(p);
    redisFree(rc);
    return pg_ok && redis_ok;
  }
};

using LiveTiered = ::testing::Types<LiveTieredTraits>;
INSTANTIATE_TYPED_TEST_SUITE_P(Live, StoreContractTest, LiveTiered, TraitsName);

class TieredLiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = traits_.Open({}, 100ms);
    ASSERT_TRUE(s) << s.error().ToString();
    store_ = std::move(*s);
    tiered_ = &dynamic_cast<TieredStore&>(*store_);
  }
  static SaveRequest Req(std::string run, std::string payload,
                         CheckpointType type = CheckpointType::kAuto) {
    const std::string thread = "thread_" + run;
    SaveRequest r = testing::SampleSave(std::move(run), std::move(payload), thread);
    r.checkpoint_type = type;
    return r;
  }
  Result<SaveAck> Save(SaveRequest r) {
    return RunSync([&]() -> Awaitable<Result<SaveAck>> {
      co_return co_await store_->Save(r, DeadlineIn(10s));
    });
  }
  static Result<std::optional<StateRecord>> LoadFrom(StateStore& s, const std::string& run) {
    return RunSync([&]() -> Awaitable<Result<std::optional<StateRecord>>> {
      co_return co_await s.Load(run, DeadlineIn(10s));
    });
  }
  LiveTieredTraits traits_;
  std::unique_ptr<StateStore> store_;
  TieredStore* tiered_ = nullptr;
};

TEST_F(TieredLiveTest, AutoSavesReachPostgresWithinTheWindowAndCriticalOnesBeforeTheAck) {
  std::map<std::string, SaveAck> acked;
  for (int i = 0; i < 50; ++i) {
    const std::string run = fmt::format("run_{}", i);
    for (int v = 1; v <= 3; ++v) {
      auto ack = Save(Req(run, fmt::format(R"({{"i":{},"v":{}}})", i, v)));
      ASSERT_TRUE(ack) << ack.error().ToString();
      acked[run] = *ack;
    }
  }
  // A critical save is in PostgreSQL the moment it is acknowledged.
  auto critical = Save(Req("run_critical", R"({"important":true})", CheckpointType::kCritical));
  ASSERT_TRUE(critical) << critical.error().ToString();
  auto in_pg = LoadFrom(tiered_->durable(), "run_critical");
  ASSERT_TRUE(in_pg && *in_pg);
  EXPECT_EQ((*in_pg)->version, critical->version);
  EXPECT_EQ((*in_pg)->checksum, critical->checksum);

  // Bounded wait, a few flush windows: the durable tier catches up with every auto save,
  // at the newest version (coalesced: versions 1 and 2 need never be written).
  const auto until = std::chrono::steady_clock::now() + 3s;
  std::size_t caught_up = 0;
  while (std::chrono::steady_clock::now() < until) {
    caught_up = 0;
    for (const auto& [run, ack] : acked) {
      auto d = LoadFrom(tiered_->durable(), run);
      if (d && *d && (*d)->version == ack.version && (*d)->checksum == ack.checksum) ++caught_up;
    }
    if (caught_up == acked.size()) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(caught_up, acked.size()) << "hot latest != durable latest after the flush window";
  StoreStats s = store_->Stats();
  EXPECT_EQ(s.values["write_behind_queue"], 0);
  EXPECT_GE(s.values["write_behind_flushed"], 50);
  EXPECT_GT(s.values["write_behind_lag_max_ms"], 0);
  EXPECT_LT(s.values["write_behind_lag_p99_ms"], 1000);
}

TEST_F(TieredLiveTest, AFlushAllOfTheHotTierLosesNothingOlderThanTheWindow) {
  std::map<std::string, SaveAck> acked;
  for (int i = 0; i < 40; ++i) {
    const std::string run = fmt::format("run_{}", i);
    auto ack = Save(Req(run, fmt::format(R"({{"i":{}}})", i)));
    ASSERT_TRUE(ack) << ack.error().ToString();
    acked[run] = *ack;
  }
  // Past the window, the hot tier loses everything we wrote.
  Status flushed =
      RunSync([&]() -> Awaitable<Status> { co_return co_await tiered_->Flush(DeadlineIn(5s)); });
  ASSERT_TRUE(flushed.ok()) << flushed.ToString();
  traits_.DropHotKeys();
  auto gone = LoadFrom(tiered_->hot(), "run_0");
  ASSERT_TRUE(gone);
  EXPECT_FALSE(*gone) << "the hot tier still has the run";
  // A new save continues the run's versions rather than starting again at 1 ...
  auto next = Save(Req("run_0", R"({"i":0,"after":"flush"})"));
  ASSERT_TRUE(next) << next.error().ToString();
  EXPECT_EQ(next->version, acked["run_0"].version + 1);
  acked["run_0"] = *next;
  EXPECT_GE(store_->Stats().values["rebased"], 1);
  // ... and every acknowledged save reads back through the tiers (from PostgreSQL,
  // re-hydrating Redis).
  for (const auto& [run, ack] : acked) {
    auto rec = LoadFrom(*store_, run);
    ASSERT_TRUE(rec) << rec.error().ToString();
    ASSERT_TRUE(*rec) << run << " lost";
    EXPECT_EQ((*rec)->version, ack.version) << run;
    EXPECT_EQ((*rec)->checksum, ack.checksum) << run;
  }
  auto back = LoadFrom(tiered_->hot(), "run_5");
  ASSERT_TRUE(back && *back) << "a read did not re-hydrate the hot tier";
}

// With ClickHouse behind it: one event per operation on the server, and completed runs
// archived. (A ClickHouse restart, with drops counted, is in process_faults_test.)
TEST_F(TieredLiveTest, EveryOperationIsAnEventInClickHouseAndCompletedRunsAreArchived) {
  const std::string ch = Env("AGENTSTATE_CLICKHOUSE_URL");
  ASSERT_FALSE(ch.empty()) << "AGENTSTATE_CLICKHOUSE_URL is not set: scripts/services.sh up";
  auto opened = OpenTieredStore(traits_.HotUri(), traits_.DurableUri(), {.flush_window = 100ms}, {},
                                WithParams(ch, "prefix=test_" + traits_.ns + "_&flush=200ms"));
  ASSERT_TRUE(opened) << opened.error().ToString();
  auto& t = dynamic_cast<TieredStore&>(**opened);
  for (int i = 0; i < 30; ++i) {
    const std::string run = fmt::format("run_{}", i);
    auto ack = RunSync([&]() -> Awaitable<Result<SaveAck>> {
      co_return co_await t.Save(Req(run, R"({"n":1})"), DeadlineIn(10s));
    });
    ASSERT_TRUE(ack) << ack.error().ToString();
    ASSERT_TRUE(LoadFrom(t, run));
  }
  for (int i = 0; i < 5; ++i) {
    auto done = RunSync([&]() -> Awaitable<Done> {
      co_return co_await t.Complete(fmt::format("run_{}", i), DeadlineIn(10s));
    });
    ASSERT_TRUE(done) << done.error().ToString();
  }
  auto* sink = t.analytics();
  ASSERT_NE(sink, nullptr);
  ASSERT_TRUE(sink->Flush().ok());
  auto counts = sink->EventsByOp();
  ASSERT_TRUE(counts) << counts.error().ToString();
  EXPECT_EQ((*counts)["save"], 30u);
  EXPECT_EQ((*counts)["load"], 30u);
  EXPECT_EQ((*counts)["complete"], 5u);
  EXPECT_EQ(sink->stats().dropped_events, 0u);
  auto archived = sink->ArchivedRuns();
  ASSERT_TRUE(archived) << archived.error().ToString();
  EXPECT_EQ(*archived, 5u);
  auto p99 = sink->P99MsByOp();
  ASSERT_TRUE(p99);
  EXPECT_GT((*p99)["save"], 0);
  EXPECT_TRUE(t.Stats().values.count("analytics_sent"));
}

TEST(AnalyticsSink, ABadUriOrADeadServerIsAClearSetupError) {
  auto unreachable = backends::clickhouse::AnalyticsSink::Open(
      "clickhouse://user:s3cret@127.0.0.1:1/default?timeout=300ms");
  ASSERT_FALSE(unreachable);
  EXPECT_EQ(unreachable.error().code(), StatusCode::kUnavailable);
  EXPECT_THAT(unreachable.error().message(), ::testing::HasSubstr("scripts/services.sh up"));
  EXPECT_THAT(unreachable.error().message(), ::testing::Not(::testing::HasSubstr("s3cret")));
  auto bad = backends::clickhouse::AnalyticsSink::Open(
      "clickhouse://127.0.0.1:18123/default?prefix=Robert');--");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace agentstate
