// redis:// against a real redis-server (scripts/services.sh up; label integration): the
// shared contract suite, then what only a real server shows. A missing server is a
// failure, never a skip.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include "backends/redis/redis_store.hpp"
#include "backends/store_contract.hpp"
#include "backends/tenant_traits.hpp"
#include "core/asio.hpp"
#include "core/uri.hpp"
#include "load/faults/fault_proxy.hpp"
#include "support/requests.hpp"

namespace agentstate {
namespace {

using core::WithParams;

using ::testing::HasSubstr;
using ::testing::Not;

std::string RedisUrl() {
  const char* v = std::getenv("AGENTSTATE_REDIS_URL");
  return v ? v : "";
}

Result<backends::redis::Reply> Side(backends::redis::RedisClient& c,
                                    std::vector<std::string> args) {
  return RunSync([&]() -> Awaitable<Result<backends::redis::Reply>> {
    co_return co_await c.Command(args, DeadlineIn(5s));
  });
}

// Each test gets its own key prefix on the shared server, removed afterwards.
struct RedisTraits {
  static constexpr const char* kName = "redis";
  static constexpr bool kSortedActiveRuns = false;  // SCAN order
  static inline std::atomic<int> counter{0};
  std::string prefix = fmt::format("contract-{}-{}:", ::getpid(), counter++);

  RedisTraits() {
    if (RedisUrl().empty()) {
      ADD_FAILURE()
          << "AGENTSTATE_REDIS_URL is not set: start the services with `scripts/services.sh up` "
             "and `eval \"$(scripts/services.sh env)\"`";
    }
  }
  ~RedisTraits() { DropKeys(prefix); }
  std::string Uri() { return WithParams(RedisUrl(), "prefix=" + prefix); }

  static std::unique_ptr<backends::redis::RedisClient> Client() {
    auto o = backends::redis::ParseRedisUri(RedisUrl());
    if (!o) return nullptr;
    return std::make_unique<backends::redis::RedisClient>(*o);
  }
  // Every key under a prefix, removed with SCAN and UNLINK.
  static void DropKeys(const std::string& prefix) {
    auto c = Client();
    if (!c) return;
    std::string cursor = "0";
    for (int i = 0; i < 10000; ++i) {
      auto r = Side(*c, {"SCAN", cursor, "MATCH", prefix + "*", "COUNT", "1000"});
      if (!r || r->elements.size() != 2) return;
      std::vector<std::string> del = {"UNLINK"};
      for (const auto& k : r->elements[1].elements) del.push_back(k.str);
      if (del.size() > 1) Side(*c, del);
      cursor = r->elements[0].str;
      if (cursor == "0") return;
    }
  }
  // Damage at rest: flip one bit of the stored payload field.
  bool Corrupt(StateStore& store, const std::string& run_id) {
    auto c = Client();
    const std::string key = dynamic_cast<backends::redis::RedisStore&>(store).RecordKey(run_id);
    auto p = Side(*c, {"HGET", key, "p"});
    if (!p || p->type != backends::redis::Reply::Type::kString || p->str.empty()) return false;
    std::string bytes = p->str;
    bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x01);
    auto w = Side(*c, {"HSET", key, "p", bytes});
    return w && !w->is_error();
  }
};

// One tenant's view (agentstated's) on Redis, whose listing is in SCAN order, not by id.
struct TenantRedisTraits : testing::TenantTraits<RedisTraits> {
  static constexpr const char* kName = "tenant_redis";
};

using RedisStores = ::testing::Types<RedisTraits, TenantRedisTraits>;
INSTANTIATE_TYPED_TEST_SUITE_P(Live, StoreContractTest, RedisStores, TraitsName);

class RedisStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(RedisUrl().empty())
        << "AGENTSTATE_REDIS_URL is not set: start the services with "
           "`scripts/services.sh up` and `eval \"$(scripts/services.sh env)\"`";
    side_ = RedisTraits::Client();
  }
  void TearDown() override { RedisTraits::DropKeys(traits_.prefix); }

  std::unique_ptr<StateStore> Open(const std::string& extra = "",
                                   std::function<void(StoreOptions&)> tweak = {}) {
    StoreOptions o;
    if (tweak) tweak(o);
    auto uri =
        WithParams(RedisUrl(), "prefix=" + traits_.prefix + (extra.empty() ? "" : "&" + extra));
    auto s = OpenStore(uri, o);
    EXPECT_TRUE(s) << s.error().ToString();
    return s ? std::move(*s) : nullptr;
  }
  static SaveRequest Req(std::string run, std::string payload, std::string thread = "thread_1") {
    return testing::SampleSave(std::move(run), std::move(payload), std::move(thread));
  }
  static Result<SaveAck> Save(StateStore& s, SaveRequest r) {
    return RunSync(
        [&]() -> Awaitable<Result<SaveAck>> { co_return co_await s.Save(r, DeadlineIn(10s)); });
  }
  static Result<std::optional<StateRecord>> Load(StateStore& s, const std::string& run) {
    return RunSync([&]() -> Awaitable<Result<std::optional<StateRecord>>> {
      co_return co_await s.Load(run, DeadlineIn(10s));
    });
  }
  int64_t Pttl(const std::string& key) {
    auto r = Side(*side_, {"PTTL", key});
    return r ? r->integer : -100;
  }

  RedisTraits traits_;
  std::unique_ptr<backends::redis::RedisClient> side_;
};

TEST_F(RedisStoreTest, KeysFollowTheOriginalSchemaWithHashTagsAndTheirTtls) {
  auto store = Open();
  ASSERT_TRUE(store);
  auto crit = Req("run_k", R"({"plan":"x"})", "thread_k");
  crit.checkpoint_type = CheckpointType::kRecovery;
  crit.is_recovery_point = true;
  ASSERT_TRUE(Save(*store, crit));
  const std::string p = traits_.prefix;
  for (const std::string& key :
       {p + "agent_state:{run_k}", p + "agent_state_version:{run_k}", p + "checkpoint:{run_k}",
        p + "checkpoint:{run_k}:v000000000001", p + "thread_context:{thread_k}"}) {
    auto e = Side(*side_, {"EXISTS", key});
    ASSERT_TRUE(e);
    EXPECT_EQ(e->integer, 1) << key;
  }
  auto v = Side(*side_, {"GET", p + "agent_state_version:{run_k}"});
  EXPECT_EQ(v->str, "1");
  // The server expires them by the policy: a recovery point 7 d, its thread context 24 h.
  const int64_t day = 24 * 3600 * 1000;
  EXPECT_GT(Pttl(p + "agent_state:{run_k}"), 7 * day - 60000);
  EXPECT_GT(Pttl(p + "checkpoint:{run_k}:v000000000001"), 7 * day - 60000);
  EXPECT_GT(Pttl(p + "agent_state_version:{run_k}"), 7 * day - 60000);
  const int64_t thread_ttl = Pttl(p + "thread_context:{thread_k}");
  EXPECT_GT(thread_ttl, day - 60000);
  EXPECT_LE(thread_ttl, day);
  // A plain auto save: 24 h; the version key keeps the longer TTL its checkpoint needs.
  ASSERT_TRUE(Save(*store, Req("run_k", R"({"plan":"y"})", "thread_k")));
  EXPECT_LE(Pttl(p + "agent_state:{run_k}"), day);
  EXPECT_GT(Pttl(p + "agent_state_version:{run_k}"), 7 * day - 60000);
  // Completed: 1 h.
  ASSERT_TRUE(RunSync(
      [&]() -> Awaitable<Done> { co_return co_await store->Complete("run_k", DeadlineIn(5s)); }));
  const int64_t done_ttl = Pttl(p + "agent_state:{run_k}");
  EXPECT_GT(done_ttl, 3600 * 1000 - 60000);
  EXPECT_LE(done_ttl, 3600 * 1000);
}

TEST_F(RedisStoreTest, TtlsComeFromThePolicyAndTheServerExpiresKeysItself) {
  auto store = Open("", [](StoreOptions& o) {
    o.ttl.active = std::chrono::seconds(1);
    o.ttl.completed = std::chrono::seconds(1);
    o.ttl.recovery_point = std::chrono::seconds(1);
  });
  ASSERT_TRUE(store);
  ASSERT_TRUE(Save(*store, Req("run_t", R"({"a":1})")));
  ASSERT_TRUE(*Load(*store, "run_t"));
  // Bounded wait on the server's own clock: at most 5 s for a 1 s TTL.
  const auto until = std::chrono::steady_clock::now() + 5s;
  int64_t exists = 1;
  while (exists != 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(100ms);
    exists = Side(*side_, {"EXISTS", traits_.prefix + "agent_state:{run_t}"})->integer;
  }
  EXPECT_EQ(exists, 0) << "the server kept the key past its TTL";
  EXPECT_FALSE(*Load(*store, "run_t"));
}

TEST_F(RedisStoreTest, TwoHundredWritersOnOneRunEachVersionWonExactlyOnce) {
  auto store = Open("connections=4");
  ASSERT_TRUE(store);
  constexpr int kWriters = 200, kAttempts = 5;
  std::mutex mu;
  std::vector<int64_t> won;
  std::atomic<int> conflicts{0}, other{0};
  asio::io_context io(4);
  for (int w = 0; w < kWriters; ++w) {
    asio::co_spawn(
        io,
        [&, w]() -> Awaitable<void> {
          for (int i = 0; i < kAttempts; ++i) {
            auto cur = co_await store->Load("run_hot", DeadlineIn(10s));
            auto r = Req("run_hot", fmt::format(R"({{"writer":{},"i":{}}})", w, i));
            r.expected_version = cur && *cur ? (*cur)->version : 0;
            auto ack = co_await store->Save(r, DeadlineIn(10s));
            if (ack) {
              std::lock_guard lock(mu);
              won.push_back(ack->version);
            } else if (ack.error().code() == StatusCode::kConflict) {
              ++conflicts;
            } else {
              ++other;
            }
          }
        },
        asio::detached);
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back([&] { io.run(); });
  for (auto& t : threads) t.join();
  EXPECT_EQ(other.load(), 0);
  std::set<int64_t> unique(won.begin(), won.end());
  EXPECT_EQ(unique.size(), won.size()) << "two writers won the same version";
  ASSERT_FALSE(won.empty());
  EXPECT_EQ(*unique.rbegin(), static_cast<int64_t>(won.size()));
  EXPECT_GT(conflicts.load(), 0);
  EXPECT_EQ(won.size() + static_cast<std::size_t>(conflicts.load()),
            std::size_t{kWriters * kAttempts});
  auto rec = Load(*store, "run_hot");
  ASSERT_TRUE(rec && *rec);
  EXPECT_EQ((*rec)->version, static_cast<int64_t>(won.size()));
}

TEST_F(RedisStoreTest, BinaryPayloadsFromEmptyToSixteenMegabytesWithNulBytes) {
  auto store = Open("", [](StoreOptions& o) { o.validate_json = false; });
  ASSERT_TRUE(store);
  for (std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{4096}, std::size_t{1} << 20,
                           (std::size_t{16} << 20) - 1}) {
    std::string bytes(size, '\0');
    for (std::size_t i = 0; i < size; ++i)
      bytes[i] = static_cast<char>((i * 131) % 256);  // NULs included
    auto ack = Save(*store, Req(fmt::format("run_bin_{}", size), bytes));
    ASSERT_TRUE(ack) << size << ": " << ack.error().ToString();
    auto rec = Load(*store, fmt::format("run_bin_{}", size));
    ASSERT_TRUE(rec && *rec) << size;
    EXPECT_EQ((*rec)->payload.size(), size);
    EXPECT_TRUE((*rec)->payload == bytes) << "payload of " << size << " bytes changed";
  }
}

TEST_F(RedisStoreTest, AKilledConnectionFailsItsOperationsCleanlyAndLaterOnesSucceed) {
  auto store = Open("connections=1");
  ASSERT_TRUE(store);
  auto& client = dynamic_cast<backends::redis::RedisStore&>(*store).client();
  auto id = Side(client, {"CLIENT", "ID"});
  ASSERT_TRUE(id);
  for (int i = 0; i < 50; ++i)
    ASSERT_TRUE(Save(*store, Req(fmt::format("run_before_{}", i), R"({"n":1})")));
  // The server holds writes (CLIENT PAUSE WRITE) so that 300 saves are surely in flight on
  // the one connection when the server kills it; then it lets writes go again.
  ASSERT_TRUE(Side(*side_, {"CLIENT", "PAUSE", "5000", "WRITE"}));
  std::atomic<int> ok{0}, unavailable{0}, wrong{0};
  std::vector<int> outcome(300, -1);  // 1 acknowledged, 0 failed
  asio::io_context io;
  for (int i = 0; i < 300; ++i) {
    asio::co_spawn(
        io,
        [&, i]() -> Awaitable<void> {
          auto ack = co_await store->Save(Req(fmt::format("run_kill_{}", i), R"({"n":2})"),
                                          DeadlineIn(10s));
          if (ack) {
            outcome[i] = 1;
            ack->version == 1 ? ++ok : ++wrong;
          } else {
            outcome[i] = 0;
            ack.error().code() == StatusCode::kUnavailable ? ++unavailable : ++wrong;
          }
        },
        asio::detached);
  }
  const uint64_t sent_before = client.stats().sent;
  std::thread runner([&] { io.run(); });
  // Bounded wait until all 300 are written to the socket (the server holds them unanswered).
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (client.stats().sent < sent_before + 300 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(1ms);
  ASSERT_GE(client.stats().sent, sent_before + 300) << "the 300 saves never went out";
  auto killed = Side(*side_, {"CLIENT", "KILL", "ID", std::to_string(id->integer)});
  Side(*side_, {"CLIENT", "UNPAUSE"});
  runner.join();
  ASSERT_TRUE(killed && killed->integer == 1) << "the server did not kill the connection";
  EXPECT_EQ(wrong.load(), 0) << "an operation got another's reply or a wrong error";
  EXPECT_EQ(ok.load() + unavailable.load(), 300);
  EXPECT_GT(unavailable.load(), 0) << "nothing was in flight when the connection died";
  // Acknowledged saves are there, failed ones left nothing behind, earlier ones survived,
  // and the connection came back by itself.
  for (int i = 0; i < 300; ++i) {
    auto rec = Load(*store, fmt::format("run_kill_{}", i));
    ASSERT_TRUE(rec) << rec.error().ToString();
    EXPECT_EQ(rec->has_value(), outcome[i] == 1) << "run_kill_" << i;
  }
  for (int i = 0; i < 50; ++i) EXPECT_TRUE(*Load(*store, fmt::format("run_before_{}", i)));
  auto after = Save(*store, Req("run_after_kill", R"({"ok":true})"));
  EXPECT_TRUE(after) << after.error().ToString();
  EXPECT_GE(store->Stats().values["reconnects"], 1);
}

// A save is one MULTI ... EXEC: the payload staged by HSET, then the script that commits it
// (the payload never passes through Lua). Here the connection is cut after every prefix of
// that transaction's bytes, in 120 steps and at the last ones, by the fault proxy: each
// cut save leaves the run exactly as it was (the old version, the old payload, no stage
// left behind), and the whole transaction commits the new one.
TEST_F(RedisStoreTest, ASaveCutOffAtAnyByteLeavesTheOldVersionOrTheNewNeverAMix) {
  auto o = backends::redis::ParseRedisUri(RedisUrl());
  ASSERT_TRUE(o) << o.error().ToString();
  auto proxy = load::FaultProxy::Start("127.0.0.1", o->host, o->port);
  ASSERT_TRUE(proxy) << proxy.error().ToString();
  std::string uri = RedisUrl();
  const std::string hostport = fmt::format("{}:{}", o->host, o->port);
  ASSERT_NE(uri.find(hostport), std::string::npos) << uri;
  uri.replace(uri.find(hostport), hostport.size(), fmt::format("127.0.0.1:{}", (*proxy)->port()));
  auto cut = OpenStore(WithParams(uri, "prefix=" + traits_.prefix + "&connections=1"), {});
  ASSERT_TRUE(cut) << cut.error().ToString();
  auto direct = Open();
  ASSERT_TRUE(direct);
  const std::string old_payload = R"({"plan":"old"})",
                    new_payload = R"({"plan":")" + std::string(9000, 'n') + R"("})";
  // Every save below has arguments of the same lengths (run ids of one length, the same
  // payloads, expected version 1), so all send the same number of bytes: a probe counts them.
  auto save = [&](StateStore& s, const std::string& run, const std::string& payload) {
    auto r = Req(run, payload);
    if (payload == new_payload) r.expected_version = 1;
    return Save(s, r);
  };
  ASSERT_TRUE(save(*direct, "run_cut_probe", old_payload));
  const uint64_t before = (*proxy)->stats().bytes_from_clients;
  auto probe = save(**cut, "run_cut_probe", new_payload);
  ASSERT_TRUE(probe) << probe.error().ToString();
  const int64_t total = static_cast<int64_t>((*proxy)->stats().bytes_from_clients - before);
  ASSERT_GT(total, static_cast<int64_t>(new_payload.size()));
  std::vector<int64_t> budgets;
  for (int i = 0; i < 120; ++i) budgets.push_back(total * i / 120);
  for (int64_t b = total - 20; b <= total; ++b) budgets.push_back(b);
  int cut_saves = 0;
  for (std::size_t i = 0; i < budgets.size(); ++i) {
    const std::string run = fmt::format("run_cut_{:05}", i);
    ASSERT_TRUE(save(*direct, run, old_payload));
    (*proxy)->cut_after(budgets[i]);
    auto ack = save(**cut, run, new_payload);
    (*proxy)->cut_after(-1);
    auto rec = Load(*direct, run);
    ASSERT_TRUE(rec && *rec) << run;
    // The cut client reconnects and reads what the server has (a success between the cut
    // saves also keeps its breaker closed).
    auto seen = Load(**cut, run);
    ASSERT_TRUE(seen && *seen) << (seen ? "no record" : seen.error().ToString());
    EXPECT_EQ((*seen)->version, (*rec)->version);
    const std::string stage = traits_.prefix + "agent_state_stage:{" + run + "}";
    auto staged = Side(*side_, {"EXISTS", stage});
    ASSERT_TRUE(staged);
    EXPECT_EQ(staged->integer, 0) << "a stage outlived the save, cut after " << budgets[i];
    if (budgets[i] < total) {
      ++cut_saves;
      EXPECT_FALSE(ack) << "a save cut after " << budgets[i] << " of " << total
                        << " bytes was acknowledged";
      EXPECT_EQ((*rec)->version, 1) << "cut after " << budgets[i] << " of " << total;
      EXPECT_TRUE((*rec)->payload == old_payload) << "cut after " << budgets[i];
    } else {
      ASSERT_TRUE(ack) << ack.error().ToString();
      EXPECT_EQ((*rec)->version, 2);
      EXPECT_TRUE((*rec)->payload == new_payload);
    }
  }
  EXPECT_EQ((*proxy)->stats().cuts, static_cast<uint64_t>(cut_saves));
}

// SCRIPT FLUSH (what a restarted server looks like) is global: on a shared server another
// client may load the same script again between the flush and our save, and our save then
// finds it cached. So the flush is repeated (at most 20 times) until one of our saves met
// NOSCRIPT; every save must succeed at its version either way, which is what other
// agentstate clients on the server see too.
TEST_F(RedisStoreTest, AForgottenScriptIsSentWholeAndCachedAgain) {
  auto store = Open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(Save(*store, Req("run_s", R"({"n":1})")));
  for (int n = 2; n < 22 && store->Stats().values["noscript_reloads"] < 1; ++n) {
    ASSERT_TRUE(Side(*side_, {"SCRIPT", "FLUSH"}));
    auto ack = Save(*store, Req("run_s", fmt::format(R"({{"n":{}}})", n)));
    ASSERT_TRUE(ack) << ack.error().ToString();
    EXPECT_EQ(ack->version, n);
  }
  EXPECT_GE(store->Stats().values["noscript_reloads"], 1);
}

TEST_F(RedisStoreTest, StatsCarryThePoolTheBreakerAndTheServersInfo) {
  auto store = Open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(Save(*store, Req("run_i", R"({"n":1})")));
  // INFO is refreshed in the background; bounded wait for the first sample.
  StoreStats s = store->Stats();
  for (int i = 0; i < 50 && !s.values.count("server_used_memory_bytes"); ++i) {
    std::this_thread::sleep_for(50ms);
    s = store->Stats();
  }
  EXPECT_GT(s.values["server_used_memory_bytes"], 0);
  EXPECT_GT(s.values["server_rss_bytes"], 0);
  EXPECT_GE(s.values["server_connected_clients"], 1);
  EXPECT_TRUE(s.values.count("server_ops_per_sec"));
  EXPECT_TRUE(s.values.count("server_aof_enabled"));
  EXPECT_EQ(s.values["saves"], 1);
  EXPECT_EQ(s.values["connections"], 2);
  EXPECT_EQ(s.values["breaker_state"], 0);
  EXPECT_TRUE(s.values.count("pool_wait_p99_ms"));
}

TEST_F(RedisStoreTest, BadServerSettingsAreClearSetupErrorsWithoutThePassword) {
  auto o = backends::redis::ParseRedisUri(RedisUrl());
  ASSERT_TRUE(o);
  auto unreachable = OpenStore("redis://:s3cret@127.0.0.1:1/0?connect_timeout=300ms", {});
  ASSERT_FALSE(unreachable);
  EXPECT_EQ(unreachable.error().code(), StatusCode::kUnavailable);
  EXPECT_THAT(unreachable.error().message(), HasSubstr("127.0.0.1:1"));
  EXPECT_THAT(unreachable.error().message(), HasSubstr("scripts/services.sh up"));
  EXPECT_THAT(unreachable.error().message(), Not(HasSubstr("s3cret")));

  auto wrong_pw = OpenStore(fmt::format("redis://:s3cret@{}:{}/0", o->host, o->port), {});
  ASSERT_FALSE(wrong_pw);
  EXPECT_THAT(wrong_pw.error().message(), HasSubstr("AUTH"));
  EXPECT_THAT(wrong_pw.error().message(), Not(HasSubstr("s3cret")));

  auto wrong_db = OpenStore(fmt::format("redis://{}:{}/999", o->host, o->port), {});
  ASSERT_FALSE(wrong_db);
  EXPECT_THAT(wrong_db.error().message(), HasSubstr("SELECT"));

  auto unknown = OpenStore(WithParams(RedisUrl(), "colour=blue"), {});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.error().message(), HasSubstr("colour"));
}

}  // namespace
}  // namespace agentstate
