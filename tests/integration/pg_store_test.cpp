// postgresql:// against a real PostgreSQL (scripts/services.sh up; label integration): the
// shared contract suite, migrations, and what only a real server shows. A missing server is
// a failure, never a skip.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <cstdlib>
#include <set>
#include <thread>

#include "backends/checkpoint_contract.hpp"
#include "backends/postgres/pg_store.hpp"
#include "backends/store_contract.hpp"
#include "core/asio.hpp"
#include "core/uri.hpp"
#include "load/faults/fault_proxy.hpp"
#include "support/pg_url.hpp"
#include "support/requests.hpp"

namespace agentstate {
namespace {

using core::WithParams;

using ::testing::HasSubstr;
using ::testing::Not;

std::string PgUrl() {
  const char* v = std::getenv("AGENTSTATE_POSTGRES_URL");
  return v ? v : "";
}

// A blocking connection of the test's own, to act on the server behind the store's back.
struct Side {
  PGconn* c = Connect();
  static PGconn* Connect() {
    PGconn* c = PQconnectdb(PgUrl().c_str());
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    return c;
  }
  ~Side() { PQfinish(c); }
  std::string Exec(const std::string& sql, std::vector<std::string> params = {}) {
    std::vector<const char*> v;
    for (const auto& p : params) v.push_back(p.c_str());
    PGresult* r = PQexecParams(c, sql.c_str(), static_cast<int>(v.size()), nullptr, v.data(),
                               nullptr, nullptr, 0);
    std::string out;
    const auto st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK && PQntuples(r) > 0) out = PQgetvalue(r, 0, 0);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
      out = std::string("ERROR: ") + PQresultErrorMessage(r);
    PQclear(r);
    return out;
  }
};

// Each test gets its own schema, dropped afterwards.
struct PgTraits {
  static constexpr const char* kName = "postgresql";
  static constexpr bool kSortedActiveRuns = true;
  static inline std::atomic<int> counter{0};
  std::string schema = fmt::format("contract_{}_{}", ::getpid(), counter++);

  PgTraits() {
    for (const char* var : {"AGENTSTATE_POSTGRES_URL", testing::StorePgVariable()}) {
      if (testing::EnvOr(var).empty()) {
        ADD_FAILURE() << var << " is not set: start the services with `scripts/services.sh up` "
                      << "and `eval \"$(scripts/services.sh env)\"`";
      }
    }
  }
  ~PgTraits() { Side().Exec(fmt::format("DROP SCHEMA IF EXISTS {} CASCADE", schema)); }
  // The store through pgbouncer when CTest asks (support/pg_url.hpp); Side() goes direct.
  std::string Uri() { return WithParams(testing::StorePgUrl(), "schema=" + schema); }
  // Damage at rest: flip one bit of the stored payload.
  bool Corrupt(StateStore&, const std::string& run_id) {
    const std::string r = Side().Exec(
        fmt::format("UPDATE {}.runs SET payload = set_byte(payload, length(payload) / 2, "
                    "get_byte(payload, length(payload) / 2) # 1) WHERE run_id = $1 RETURNING 1",
                    schema),
        {run_id});
    return r == "1";
  }
};

using PgStores = ::testing::Types<PgTraits>;
INSTANTIATE_TYPED_TEST_SUITE_P(Live, StoreContractTest, PgStores, TraitsName);

// The checkpoint model's contract on the same server, a schema per test.
struct PgCheckpointTraits : PgTraits {
  bool CorruptValue(StateStore&, const std::string& thread, const std::string& ns,
                    const std::string& channel, const std::string& version) {
    return Side().Exec(fmt::format("UPDATE {}.lg_values SET bytes = set_byte(bytes, 0, "
                                   "get_byte(bytes, 0) # 1) WHERE thread_id = $1 AND ns = $2 AND "
                                   "channel = $3 AND version = $4 RETURNING 1",
                                   schema),
                       {thread, ns, channel, version}) == "1";
  }
};
using PgCheckpointStores = ::testing::Types<PgCheckpointTraits>;
INSTANTIATE_TYPED_TEST_SUITE_P(Live, CheckpointContractTest, PgCheckpointStores, TraitsName);

class PgStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(PgUrl().empty())
        << "AGENTSTATE_POSTGRES_URL is not set: start the services with "
           "`scripts/services.sh up` and `eval \"$(scripts/services.sh env)\"`";
  }
  std::string Uri(const std::string& extra = "") {
    return WithParams(PgUrl(), "schema=" + traits_.schema + (extra.empty() ? "" : "&" + extra));
  }
  static SaveRequest Req(std::string run, std::string payload) {
    return testing::SampleSave(std::move(run), std::move(payload));
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
  PgTraits traits_;
  Side side_;
};

TEST_F(PgStoreTest, MigrationsRunTwiceAndConcurrentlyAndANewerSchemaIsRefused) {
  // Eight opens at once on a fresh schema: one migrates, the others wait and find it done.
  std::vector<std::thread> threads;
  std::atomic<int> opened{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      auto s = OpenStore(Uri(), {});
      EXPECT_TRUE(s) << s.error().ToString();
      if (s) ++opened;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(opened.load(), 8);
  EXPECT_EQ(side_.Exec(fmt::format("SELECT version FROM {}.agentstate_schema", traits_.schema)),
            std::to_string(backends::postgres::kSchemaVersion));
  EXPECT_EQ(side_.Exec(fmt::format("SELECT count(*) FROM {}.agentstate_schema", traits_.schema)),
            "1");
  auto again = OpenStore(Uri(), {});  // a second run is a no-op
  ASSERT_TRUE(again) << again.error().ToString();
  ASSERT_TRUE(Save(**again, Req("run_m", R"({"m":1})")));
  // The payload column is stored EXTERNAL: the server does not compress it again.
  EXPECT_EQ(side_.Exec(fmt::format(
                "SELECT attstorage FROM pg_attribute WHERE attrelid = '{}.runs'::regclass "
                "AND attname = 'payload'",
                traits_.schema)),
            "e");

  side_.Exec(fmt::format("UPDATE {}.agentstate_schema SET version = {}", traits_.schema,
                         backends::postgres::kSchemaVersion + 1));
  auto newer = OpenStore(Uri(), {});
  ASSERT_FALSE(newer);
  EXPECT_THAT(newer.error().message(), HasSubstr("newer than this build"));
  EXPECT_EQ(side_.Exec(fmt::format("SELECT version FROM {}.agentstate_schema", traits_.schema)),
            std::to_string(backends::postgres::kSchemaVersion + 1))
      << "the schema was downgraded";
}

TEST_F(PgStoreTest, ACriticalSaveStoresItsPayloadOnceAndReadsItFromItsCheckpoint) {
  auto store = OpenStore(Uri(), {});
  ASSERT_TRUE(store) << store.error().ToString();
  std::string big = "{\"items\":[";
  for (int i = 0; i < 5000; ++i) big += (i ? "," : "") + std::to_string(i * 7);
  big += "]}";
  SaveRequest critical = Req("run_once", big);
  critical.checkpoint_type = CheckpointType::kCritical;
  auto ack = Save(**store, critical);
  ASSERT_TRUE(ack) << ack.error().ToString();
  const auto where = fmt::format("run_id = 'run_once' AND version = {}", ack->version);
  EXPECT_EQ(side_.Exec(
                fmt::format("SELECT payload IS NULL FROM {}.runs WHERE {}", traits_.schema, where)),
            "t")
      << "the run's row points at its checkpoint instead of holding a second copy";
  EXPECT_EQ(side_.Exec(
                fmt::format("SELECT count(*) FROM {}.checkpoints WHERE {}", traits_.schema, where)),
            "1");
  auto rec = Load(**store, "run_once");
  ASSERT_TRUE(rec && *rec) << (rec ? "missing" : rec.error().ToString());
  EXPECT_EQ((*rec)->payload, big);
  EXPECT_EQ((*rec)->version, ack->version);
  // A manual checkpoint of that version is the one already there.
  auto cp = RunSync([&]() -> Awaitable<Result<CheckpointInfo>> {
    co_return co_await (*store)->Checkpoint("run_once", CheckpointType::kManual, DeadlineIn(10s));
  });
  ASSERT_TRUE(cp) << cp.error().ToString();
  EXPECT_EQ(cp->version, ack->version);
  // Damage to the only copy is corruption on load, never data.
  side_.Exec(
      fmt::format("UPDATE {}.checkpoints SET payload = set_byte(payload, length(payload) / 2, "
                  "get_byte(payload, length(payload) / 2) # 1) WHERE {}",
                  traits_.schema, where));
  auto bad = Load(**store, "run_once");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), StatusCode::kCorruption);
  // The next auto save keeps its payload in the run's row again.
  auto next = Save(**store, Req("run_once", R"({"n":2})"));
  ASSERT_TRUE(next) << next.error().ToString();
  EXPECT_EQ(side_.Exec(fmt::format("SELECT payload IS NULL FROM {}.runs WHERE run_id = 'run_once'",
                                   traits_.schema)),
            "f");
  auto latest = Load(**store, "run_once");
  ASSERT_TRUE(latest && *latest);
  EXPECT_EQ((*latest)->payload, R"({"n":2})");
}

TEST_F(PgStoreTest, ASchemaAtVersionOneIsUpgradedWithItsRowsReadable) {
  // A v1 schema with a row, as the previous build wrote it: the upgrade keeps it readable.
  {
    auto store = OpenStore(Uri(), {});
    ASSERT_TRUE(store) << store.error().ToString();
    SaveRequest critical = Req("run_v1", R"({"old":true})");
    critical.checkpoint_type = CheckpointType::kCritical;
    ASSERT_TRUE(Save(**store, critical));
  }
  // Back to v1's shape: the row holds its payload again, and the schema says 1.
  side_.Exec(
      fmt::format("UPDATE {0}.runs r SET payload = c.payload FROM {0}.checkpoints c "
                  "WHERE r.run_id = c.run_id AND r.version = c.version",
                  traits_.schema));
  side_.Exec(fmt::format("UPDATE {}.agentstate_schema SET version = 1", traits_.schema));
  auto upgraded = OpenStore(Uri(), {});
  ASSERT_TRUE(upgraded) << upgraded.error().ToString();
  EXPECT_EQ(side_.Exec(fmt::format("SELECT version FROM {}.agentstate_schema", traits_.schema)),
            std::to_string(backends::postgres::kSchemaVersion));
  auto rec = Load(**upgraded, "run_v1");
  ASSERT_TRUE(rec && *rec);
  EXPECT_EQ((*rec)->payload, R"({"old":true})");
}

TEST_F(PgStoreTest, BinaryPayloadsFromEmptyToSixteenMegabytesWithNulBytes) {
  StoreOptions o;
  o.validate_json = false;
  auto store = OpenStore(Uri(), o);
  ASSERT_TRUE(store) << store.error().ToString();
  for (std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{4096}, std::size_t{1} << 20,
                           (std::size_t{16} << 20) - 1}) {
    std::string bytes(size, '\0');
    for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>((i * 131) % 256);
    auto ack = Save(**store, Req(fmt::format("run_bin_{}", size), bytes));
    ASSERT_TRUE(ack) << size << ": " << ack.error().ToString();
    auto rec = Load(**store, fmt::format("run_bin_{}", size));
    ASSERT_TRUE(rec && *rec) << size;
    EXPECT_TRUE((*rec)->payload == bytes) << "payload of " << size << " bytes changed";
  }
}

TEST_F(PgStoreTest, TwoHundredWritersOnOneRunEachVersionWonExactlyOnce) {
  auto opened = OpenStore(Uri("connections=4"), {});
  ASSERT_TRUE(opened) << opened.error().ToString();
  StateStore& store = **opened;
  constexpr int kWriters = 200, kAttempts = 3;
  std::mutex mu;
  std::vector<int64_t> won;
  std::atomic<int> conflicts{0}, other{0};
  asio::io_context io(4);
  for (int w = 0; w < kWriters; ++w) {
    asio::co_spawn(
        io,
        [&, w]() -> Awaitable<void> {
          for (int i = 0; i < kAttempts; ++i) {
            auto cur = co_await store.Load("run_hot", DeadlineIn(20s));
            auto r = Req("run_hot", fmt::format(R"({{"writer":{},"i":{}}})", w, i));
            r.expected_version = cur && *cur ? (*cur)->version : 0;
            auto ack = co_await store.Save(r, DeadlineIn(20s));
            if (ack) {
              std::lock_guard lock(mu);
              won.push_back(ack->version);
            } else if (ack.error().code() == StatusCode::kConflict) {
              ++conflicts;
            } else {
              ADD_FAILURE() << ack.error().ToString();
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
  EXPECT_EQ(won.size() + static_cast<std::size_t>(conflicts.load()),
            std::size_t{kWriters * kAttempts});
}

TEST_F(PgStoreTest, ABackendKilledMidQueryFailsItsQueriesCleanlyAndLaterOnesSucceed) {
  auto opened = OpenStore(Uri("connections=1"), {});
  ASSERT_TRUE(opened) << opened.error().ToString();
  StateStore& store = **opened;
  ASSERT_TRUE(Save(store, Req("run_before", R"({"n":1})")));
  // pg_sleep holds the one connection; the server then terminates that backend.
  auto& client = dynamic_cast<backends::postgres::PgStore&>(store).client();
  std::atomic<bool> slept_failed{false};
  std::thread sleeper([&] {
    auto r = RunSync([&]() -> Awaitable<Result<backends::postgres::PgResult>> {
      co_return co_await client.Query("SELECT pg_sleep(5)", {}, DeadlineIn(10s));
    });
    slept_failed = !r && r.error().code() == StatusCode::kUnavailable;
  });
  std::string killed;
  for (int i = 0; i < 100 && killed != "t"; ++i) {
    std::this_thread::sleep_for(20ms);
    killed = side_.Exec(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT "
        "pg_sleep(5)'");
  }
  sleeper.join();
  EXPECT_EQ(killed, "t");
  EXPECT_TRUE(slept_failed) << "the query on the killed backend did not fail with kUnavailable";
  Result<std::optional<StateRecord>> rec = Error(StatusCode::kInternal, "not tried");
  for (int i = 0; i < 50 && !rec; ++i) {
    rec = Load(store, "run_before");
    if (!rec) std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(rec && *rec) << (rec ? "missing" : rec.error().ToString());
  EXPECT_GE(store.Stats().values["reconnects"], 1);
}

// The reconnect counter is bumped on the client's I/O thread and read by Stats() from any
// thread (agentload's sampler): it was a plain integer, a data race ThreadSanitizer reports.
// Here the project's fault proxy resets the connections over and over while another thread
// reads Stats(); under TSan (scripts/sanitize.sh) the race fails the test.
TEST_F(PgStoreTest, StatsReadFromAnotherThreadWhileTheClientReconnects) {
  auto parsed = core::ParseUri(PgUrl());
  ASSERT_TRUE(parsed);
  auto server = core::ParseAuthority(parsed->body);
  ASSERT_TRUE(server && server->port) << "AGENTSTATE_POSTGRES_URL names no host:port";
  auto proxy =
      load::FaultProxy::Start("127.0.0.1", server->host, static_cast<uint16_t>(*server->port));
  ASSERT_TRUE(proxy) << proxy.error().ToString();
  std::string uri = PgUrl();
  const std::string hostport = fmt::format("{}:{}", server->host, *server->port);
  uri.replace(uri.find(hostport), hostport.size(), fmt::format("127.0.0.1:{}", (*proxy)->port()));
  auto opened = OpenStore(WithParams(uri, "schema=" + traits_.schema + "&connections=2"), {});
  ASSERT_TRUE(opened) << opened.error().ToString();
  StateStore& store = **opened;
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (!done) (void)store.Stats();
  });
  for (int i = 0; i < 20; ++i) {
    (void)Save(store, Req("run_reconnect", R"({"n":1})"));
    (*proxy)->reset_now();
  }
  Result<SaveAck> last = Error(StatusCode::kInternal, "not tried");
  for (int i = 0; i < 100 && !last; ++i) {
    last = Save(store, Req("run_reconnect", R"({"n":2})"));
    if (!last) std::this_thread::sleep_for(20ms);
  }
  done = true;
  reader.join();
  ASSERT_TRUE(last) << last.error().ToString();
  EXPECT_GE(store.Stats().values["reconnects"], 1);
}

// The client runs its warm-up batch first on every session, a reconnected one included,
// before any query queued for it.
TEST_F(PgStoreTest, EverySessionRunsTheWarmupBeforeItsFirstQuery) {
  auto parsed = core::ParseUri(Uri("connections=2"));
  ASSERT_TRUE(parsed) << parsed.error().ToString();
  auto options = backends::postgres::ParsePgUri(*parsed);
  ASSERT_TRUE(options) << options.error().ToString();
  backends::postgres::PgClient client(*options, [] {
    std::vector<backends::postgres::PgClient::Statement> warmup;
    warmup.push_back({"SELECT set_config('application_name', 'warmed', false)", {}});
    return warmup;
  });
  EXPECT_TRUE(client.AwaitWarm(5s));
  auto ask = [&](const std::string& sql) -> std::string {
    auto r = RunSync([&]() -> Awaitable<Result<backends::postgres::PgResult>> {
      co_return co_await client.Query(sql, {}, DeadlineIn(5s));
    });
    if (!r) return "error: " + r.error().ToString();
    if (PQresultStatus(r->get()) != PGRES_TUPLES_OK)
      return std::string("error: ") + PQresultErrorMessage(r->get());
    return std::string(backends::postgres::GetBytes(r->get(), 0, 0));
  };
  // Each answer names the session's application_name and its backend.
  const std::string sql = "SELECT current_setting('application_name') || ' ' || pg_backend_pid()";
  std::set<std::string> pids;
  for (int i = 0; i < 4; ++i) {
    const std::string answer = ask(sql);
    EXPECT_THAT(answer, ::testing::StartsWith("warmed "));
    pids.insert(answer.substr(answer.find(' ') + 1));
  }
  ASSERT_EQ(pids.size(), 2u) << "the queries did not use both sessions";
  for (const auto& pid : pids)
    EXPECT_EQ(side_.Exec("SELECT pg_terminate_backend($1::int)", {pid}), "t");
  // The sessions that replace them run the warm-up again before anything else.
  // Bounded in time, not in answers: while one session is still reconnecting (its backoff is
  // 50-100 ms) every query goes to the other, however many are asked.
  std::set<std::string> new_pids;
  for (const auto until = std::chrono::steady_clock::now() + 5s;
       new_pids.size() < 2 && std::chrono::steady_clock::now() < until;
       std::this_thread::sleep_for(10ms)) {
    const std::string answer = ask(sql);
    if (answer.rfind("error", 0) == 0)
      continue;  // a query on a terminated session, or before the reconnect
    EXPECT_THAT(answer, ::testing::StartsWith("warmed "))
        << "a reconnected session answered before its warm-up";
    new_pids.insert(answer.substr(answer.find(' ') + 1));
  }
  EXPECT_EQ(new_pids.size(), 2u);
  for (const auto& pid : new_pids)
    EXPECT_EQ(pids.count(pid), 0u) << "backend " << pid << " was not replaced";
  EXPECT_EQ(client.stats().warmup_failures, 0u);
  EXPECT_EQ(client.stats().warmups, 4u);
}

// The store's own warm-up (saves, write-behind puts and a delete of a run no caller can
// name) succeeds on every session before Open returns, and leaves no row behind.
TEST_F(PgStoreTest, TheStoresWarmupSucceedsBeforeOpenReturnsAndLeavesNoRow) {
  auto opened = OpenStore(Uri("connections=3"), {});
  ASSERT_TRUE(opened) << opened.error().ToString();
  auto stats = (*opened)->Stats().values;
  EXPECT_EQ(stats["warmups"], 3);
  EXPECT_EQ(stats["warmup_failures"], 0);
  for (const char* table : {"runs", "checkpoints", "threads"}) {
    EXPECT_EQ(side_.Exec(fmt::format("SELECT count(*) FROM {}.{}", traits_.schema, table)), "0")
        << table;
  }
  ASSERT_TRUE(Save(**opened, Req("run_w", R"({"w":1})")));
  auto rec = Load(**opened, "run_w");
  ASSERT_TRUE(rec && *rec);
  EXPECT_EQ((*rec)->version, 1);
}

TEST_F(PgStoreTest, RetentionKeepsTheNewestCheckpointsAndExpiredRowsArePurged) {
  auto clock = std::make_shared<ManualClock>();
  StoreOptions o;
  o.clock = clock;
  o.ttl.active = 60s;
  o.ttl.recovery_point = 60s;
  auto opened = OpenStore(Uri("keep_checkpoints=3"), o);
  ASSERT_TRUE(opened) << opened.error().ToString();
  StateStore& store = **opened;
  for (int v = 1; v <= 10; ++v) {
    auto r = Req("run_keep", fmt::format(R"({{"v":{}}})", v));
    r.checkpoint_type = CheckpointType::kCritical;
    ASSERT_TRUE(Save(store, r));
  }
  auto kept = RunSync([&]() -> Awaitable<Result<std::vector<CheckpointInfo>>> {
    co_return co_await store.ListCheckpoints("run_keep", DeadlineIn(5s));
  });
  ASSERT_TRUE(kept) << kept.error().ToString();
  ASSERT_EQ(kept->size(), 3u);
  EXPECT_EQ(kept->front().version, 8);
  EXPECT_EQ(kept->back().version, 10);
  // Past every TTL (and the once-a-minute purge cadence, on the store's clock), the next
  // save removes the expired rows for good.
  clock->Advance(120s);
  ASSERT_TRUE(Save(store, Req("run_after", R"({"late":true})")));
  EXPECT_EQ(side_.Exec(fmt::format("SELECT count(*) FROM {}.runs WHERE run_id = 'run_keep'",
                                   traits_.schema)),
            "0");
  EXPECT_EQ(side_.Exec(fmt::format("SELECT count(*) FROM {}.checkpoints", traits_.schema)), "0");
  EXPECT_GE(store.Stats().values["purged_rows"], 4);
}

TEST_F(PgStoreTest, BadServerSettingsAreClearSetupErrorsWithoutThePassword) {
  auto unreachable =
      OpenStore("postgresql://agentstate:s3cret@127.0.0.1:1/agentstate?connect_timeout=1s", {});
  ASSERT_FALSE(unreachable);
  EXPECT_EQ(unreachable.error().code(), StatusCode::kUnavailable);
  EXPECT_THAT(unreachable.error().message(), HasSubstr("127.0.0.1:1"));
  EXPECT_THAT(unreachable.error().message(), HasSubstr("scripts/services.sh up"));
  EXPECT_THAT(unreachable.error().message(), Not(HasSubstr("s3cret")));
  auto no_db = OpenStore(
      WithParams(PgUrl().substr(0, PgUrl().rfind('/')) + "/no_such_database", "connect_timeout=2s"),
      {});
  ASSERT_FALSE(no_db);
  EXPECT_THAT(no_db.error().message(), HasSubstr("no_such_database"));
  auto bad_schema = OpenStore(WithParams(PgUrl(), "schema=Robert'); DROP TABLE runs;--"), {});
  ASSERT_FALSE(bad_schema);
  EXPECT_EQ(bad_schema.error().code(), StatusCode::kInvalidArgument);
  auto bad_pool = OpenStore(WithParams(PgUrl(), "pool_mode=statement"), {});
  ASSERT_FALSE(bad_pool);
  EXPECT_EQ(bad_pool.error().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_pool.error().message(), HasSubstr("pool_mode must be session"));
}

// Through pgbouncer in transaction mode the session is not ours: a setting a statement made
// in one transaction is not there for the next. With pool_mode=transaction every
// transaction still finds the store's schema and its retention (keep_checkpoints).
TEST_F(PgStoreTest, ThroughPgbouncerEveryTransactionFindsTheSchemaAndRetention) {
  const char* pgb = std::getenv("AGENTSTATE_PGBOUNCER_URL");
  ASSERT_TRUE(pgb && *pgb) << "AGENTSTATE_PGBOUNCER_URL is not set: scripts/services.sh up";
  auto opened = OpenStore(
      WithParams(pgb, "schema=" + traits_.schema + "&keep_checkpoints=2&connections=3"), {});
  ASSERT_TRUE(opened) << opened.error().ToString();
  StateStore& store = **opened;
  // Many transactions over three client connections and whichever server sessions
  // pgbouncer picks: each must find the store's schema and its keep_checkpoints.
  for (int i = 0; i < 30; ++i) {
    auto r = Req("pooled-" + std::to_string(i % 5), fmt::format(R"({{"v":{}}})", i));
    r.checkpoint_type = CheckpointType::kCritical;
    auto ack = Save(store, r);
    ASSERT_TRUE(ack) << ack.error().ToString();
  }
  for (int i = 0; i < 5; ++i) {
    const std::string run = "pooled-" + std::to_string(i);
    auto got = Load(store, run);
    ASSERT_TRUE(got && *got) << run;
    EXPECT_EQ((*got)->version, 6) << run;
    auto kept = RunSync([&]() -> Awaitable<Result<std::vector<CheckpointInfo>>> {
      co_return co_await store.ListCheckpoints(run, DeadlineIn(5s));
    });
    ASSERT_TRUE(kept) << kept.error().ToString();
    EXPECT_EQ(kept->size(), 2u) << run << ": keep_checkpoints=2 reached every transaction";
  }
  EXPECT_EQ(side_.Exec(fmt::format("SELECT count(*) FROM {}.runs", traits_.schema)), "5");
}

}  // namespace
}  // namespace agentstate
