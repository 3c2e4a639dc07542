// Process faults on the real local services (label integration, run alone: they stop and
// kill the shared redis-server). A missing service is a failure, never a skip.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>

#include <libpq-fe.h>
#include "agentstate/registry.hpp"
#include "backends/clickhouse/ch_sink.hpp"
#include "backends/redis/client.hpp"
#include "backends/redis/cluster_client.hpp"
#include "core/uri.hpp"
#include "load/faults/faults.hpp"
#include "load/faults/server_process.hpp"
#include "load/faults/services.hpp"
#include "support/requests.hpp"
#include "support/run.hpp"

namespace agentstate::load {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

Result<backends::redis::Reply> Call(backends::redis::RedisClient& c, std::vector<std::string> args,
                                    std::chrono::milliseconds timeout) {
  return testing::RunSync([&]() -> Awaitable<Result<backends::redis::Reply>> {
    co_return co_await c.Command(args, DeadlineIn(timeout));
  });
}

std::unique_ptr<backends::redis::RedisClient> Client() {
  const char* url = std::getenv("AGENTSTATE_REDIS_URL");
  EXPECT_TRUE(url) << "AGENTSTATE_REDIS_URL is not set: scripts/services.sh up";
  auto o = backends::redis::ParseRedisUri(url ? url : "redis://127.0.0.1:16379/0");
  o->connections = 1;
  return std::make_unique<backends::redis::RedisClient>(*o);
}

TEST(ServiceControl, RefusesWhatTheScriptsDidNotStart) {
  ServiceControl real(ServiceControl::DefaultDir());
  auto unknown = real.Find("mysql");
  ASSERT_FALSE(unknown);
  EXPECT_THAT(unknown.error().message(), HasSubstr("not a service"));
  // A services dir whose redis pid file names this test process, not a redis-server.
  const auto dir = std::filesystem::temp_directory_path() /
                   ("agentstate-fake-services-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "redis.pid") << ::getpid() << "\n";
  std::ofstream(dir / "redis.pidfile") << (dir / "redis.pid").string() << "\n";
  std::ofstream(dir / "redis.cmd") << "redis-server --port 1\n";
  ServiceControl fake(dir);
  auto refused = fake.KillAndRestart("redis", 5s);
  ASSERT_FALSE(refused);
  EXPECT_THAT(refused.error().message(), HasSubstr("refused"));
  EXPECT_TRUE(::kill(::getpid(), 0) == 0) << "we are still alive";
  std::filesystem::remove_all(dir);
}

TEST(ServiceControl, APausedRedisTimesCommandsOutAndAResumedOneAnswers) {
  ServiceControl services(ServiceControl::DefaultDir());
  ASSERT_TRUE(services.Find("redis")) << services.Find("redis").error().ToString();
  auto c = Client();
  ASSERT_TRUE(Call(*c, {"PING"}, 2s));
  auto paused = services.Pause("redis");
  ASSERT_TRUE(paused) << paused.error().ToString();
  auto stalled = Call(*c, {"PING"}, 200ms);
  auto resumed = services.Resume("redis");  // before asserting: never leave redis stopped
  ASSERT_TRUE(resumed) << resumed.error().ToString();
  ASSERT_FALSE(stalled);
  EXPECT_EQ(stalled.error().code(), StatusCode::kTimeout);
  auto pong = Call(*c, {"PING"}, 2s);
  ASSERT_TRUE(pong) << pong.error().ToString();
  EXPECT_EQ(pong->str, "PONG");
}

// Issue 5's "server restart": the client recovers without a process restart, and with AOF
// everysec a write older than a second survives kill -9.
TEST(ServiceControl, RedisKilledAndRestartedComesBackWithItsDataAndTheClientReconnects) {
  ServiceControl services(ServiceControl::DefaultDir());
  auto before = services.Find("redis");
  ASSERT_TRUE(before) << before.error().ToString();
  auto c = Client();
  ASSERT_TRUE(Call(*c, {"SET", "test:survives", "yes"}, 2s));
  std::this_thread::sleep_for(1200ms);  // past AOF everysec's window: the write is on disk
  auto outage = services.KillAndRestart("redis", 20s);
  ASSERT_TRUE(outage) << outage.error().ToString();
  auto after = services.Find("redis");
  ASSERT_TRUE(after);
  EXPECT_NE(after->pid, before->pid);
  // The client reconnects by itself; a command may meet the old, dead connection first, or
  // the new server still loading its AOF (kUnavailable, LOADING).
  Result<backends::redis::Reply> got = Error(StatusCode::kInternal, "not tried");
  for (int attempt = 0; attempt < 50; ++attempt) {
    got = Call(*c, {"GET", "test:survives"}, 500ms);
    if (got) break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_EQ(got->str, "yes");
  EXPECT_GE(c->reconnects(), 1u);
  std::cout << "redis kill -9 + restart took " << outage->count() / 1000 << " ms\n";
}

// One command to one cluster node by address (no redirection followed), 2 s deadline.
Result<backends::redis::Reply> ClusterOn(backends::redis::RedisClusterClient& cluster,
                                         const std::string& node, std::vector<std::string> args) {
  return testing::RunSync([&]() -> Awaitable<Result<backends::redis::Reply>> {
    std::vector<std::string_view> v(args.begin(), args.end());
    co_return co_await cluster.CommandOn(node, v, DeadlineIn(2s));
  });
}

// After a failover: waits until `old_primary`, started again, has caught up as a replica,
// then CLUSTER FAILOVER gives it its slots back; returns once both ends have switched (the
// promoted one may serve the slot until the new configuration reaches it). Later tests
// find the topology services.sh made.
void FailBack(backends::redis::RedisClusterClient& cluster, const std::string& old_primary,
              const std::string& promoted) {
  auto on = [&](const std::string& node, std::vector<std::string> args) {
    return ClusterOn(cluster, node, std::move(args));
  };
  bool synced = false;
  for (int i = 0; i < 100 && !synced; ++i) {
    auto info = on(old_primary, {"INFO", "replication"});
    synced = info && info->str.find("master_link_status:up") != std::string::npos;
    if (!synced) std::this_thread::sleep_for(200ms);
  }
  ASSERT_TRUE(synced) << old_primary << " did not rejoin as a replica within 20 s";
  auto failover = on(old_primary, {"CLUSTER", "FAILOVER"});
  ASSERT_TRUE(failover && failover->str == "OK") << (failover ? failover->str : "no reply");
  auto role_of = [&](const std::string& node) {
    auto role = on(node, {"ROLE"});
    return role && !role->elements.empty() ? role->elements[0].str : std::string();
  };
  bool back = false;
  for (int i = 0; i < 100 && !back; ++i) {
    back = role_of(old_primary) == "master" && role_of(promoted) == "slave";
    if (!back) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(back) << old_primary << " is not a primary again, or " << promoted
                    << " not a replica, 10 s after CLUSTER FAILOVER";
}

// The local cluster (scripts/services.sh up --cluster): a primary killed with SIGKILL is
// replaced by its replica, and the cluster client's commands on its slots go through again
// once it is; the old primary, started again, rejoins as a replica, and a manual failover
// (CLUSTER FAILOVER) gives it its slots back, which the client follows through MOVED.
TEST(ServiceControl, AKilledClusterPrimaryIsReplacedByItsReplicaAndTheClientFollows) {
  using backends::redis::RedisClusterClient;
  const char* url = std::getenv("AGENTSTATE_REDIS_CLUSTER_URL");
  ASSERT_TRUE(url) << "AGENTSTATE_REDIS_CLUSTER_URL is not set: scripts/services.sh up --cluster";
  auto options = backends::redis::ParseRedisClusterUri(url);
  ASSERT_TRUE(options) << options.error().ToString();
  RedisClusterClient cluster(*options);
  auto sync = [](auto f) { return testing::RunSync(std::move(f)); };
  auto keyed = [&](const std::string& key, std::vector<std::string> args, auto timeout) {
    return sync([&]() -> Awaitable<Result<backends::redis::Reply>> {
      std::vector<std::string_view> v(args.begin(), args.end());
      co_return co_await cluster.Command(key, v, DeadlineIn(timeout));
    });
  };
  auto on = [&](const std::string& node, std::vector<std::string> args) {
    return ClusterOn(cluster, node, std::move(args));
  };
  Status refreshed =
      sync([&]() -> Awaitable<Status> { co_return co_await cluster.Refresh(DeadlineIn(5s)); });
  ASSERT_TRUE(refreshed.ok()) << refreshed.ToString();
  const std::string key = "ctest-failover:{run-1}";
  auto set = keyed(key, {"SET", key, "before", "PX", "120000"}, 2s);
  ASSERT_TRUE(set && set->str == "OK");
  // The primary of the key's slot, and its service name (redis-cluster-N listens on base+N).
  std::string primary;
  for (const auto& p : cluster.Primaries()) {
    auto get = on(p, {"GET", key});
    if (get && !get->is_error()) primary = p;
  }
  ASSERT_FALSE(primary.empty());
  const int base = std::stoi(options->seeds.front().substr(options->seeds.front().rfind(':') + 1));
  const int port = std::stoi(primary.substr(primary.rfind(':') + 1));
  const std::string name = "redis-cluster-" + std::to_string(port - base);
  ServiceControl services(ServiceControl::DefaultDir());
  ASSERT_TRUE(services.Find(name)) << services.Find(name).error().ToString();
  (void)on(primary, {"WAIT", "1", "2000"});  // its replica has the key before the kill

  auto killed = services.Kill(name, 10s);
  ASSERT_TRUE(killed) << killed.error().ToString();
  const auto t0 = std::chrono::steady_clock::now();
  // One command, its deadline long enough for the failure detection (cluster-node-timeout
  // 2 s) and the election: it waits out CLUSTERDOWN and the dead primary, then succeeds.
  auto during = keyed(key, {"SET", key, "during", "PX", "120000"}, 20s);
  const auto failover_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  auto restarted = services.Restart(name, 20s);  // before asserting: never leave it down
  ASSERT_TRUE(restarted) << restarted.error().ToString();
  ASSERT_TRUE(during) << during.error().ToString();
  EXPECT_EQ(during->str, "OK");
  EXPECT_GE(cluster.stats().retried, 1u);
  auto read = keyed(key, {"GET", key}, 2s);
  ASSERT_TRUE(read);
  EXPECT_EQ(read->str, "during");
  const auto now_primaries = cluster.Primaries();
  EXPECT_TRUE(std::find(now_primaries.begin(), now_primaries.end(), primary) == now_primaries.end())
      << "the killed node still holds its slots in the client's map";

  // The promoted replica, which the client's map names for the slot now.
  std::string promoted;
  for (const auto& p : now_primaries) {
    auto get = on(p, {"GET", key});
    if (get && !get->is_error()) promoted = p;
  }
  ASSERT_FALSE(promoted.empty()) << "no primary holds the key after the failover";
  const auto moved = cluster.stats().moved;
  FailBack(cluster, primary, promoted);
  if (HasFatalFailure()) return;
  auto after = keyed(key, {"GET", key}, 5s);
  ASSERT_TRUE(after) << after.error().ToString();
  EXPECT_EQ(after->str, "during");
  EXPECT_GE(cluster.stats().moved, moved + 1) << "the old primary now answers MOVED";
  std::cout << "cluster primary " << primary << " killed: writes to its slots went through "
            << failover_ms.count() << " ms later\n";
}

// wait_replicas=1 on the cluster: a critical save is acknowledged only once the replica of
// its primary has it. Shown three ways: with the replica paused, the save is refused as in
// doubt; under a stream of saves, the primary is killed and its replica promoted, and not
// one acknowledged critical save is missing afterwards (auto saves, acknowledged by the
// primary alone, may be: the figure is printed, it is the asynchronous-replication
// contract); while the promoted primary has no replica, critical saves are refused.
TEST(ServiceControl, ReplicaWaitKeepsEveryAcknowledgedCriticalSaveThroughAFailover) {
  using backends::redis::RedisClusterClient;
  const char* url = std::getenv("AGENTSTATE_REDIS_CLUSTER_URL");
  ASSERT_TRUE(url) << "AGENTSTATE_REDIS_CLUSTER_URL is not set: scripts/services.sh up --cluster";
  auto options = backends::redis::ParseRedisClusterUri(url);
  ASSERT_TRUE(options) << options.error().ToString();
  RedisClusterClient cluster(*options);
  auto on = [&](const std::string& node, std::vector<std::string> args) {
    return ClusterOn(cluster, node, std::move(args));
  };
  Status refreshed = testing::RunSync(
      [&]() -> Awaitable<Status> { co_return co_await cluster.Refresh(DeadlineIn(5s)); });
  ASSERT_TRUE(refreshed.ok()) << refreshed.ToString();
  const std::string prefix = fmt::format("twait-{}:", ::getpid());
  auto store =
      OpenStore(core::WithParams(url, "prefix=" + prefix + "&wait_replicas=1&wait_timeout=300ms"),
                StoreOptions{});
  ASSERT_TRUE(store) << store.error().ToString();
  auto save = [&](const std::string& run, CheckpointType type) {
    return testing::RunSync([&]() -> Awaitable<Result<SaveAck>> {
      SaveRequest r = testing::SampleSave(run, R"({"n":1})");
      r.checkpoint_type = type;
      co_return co_await (*store)->Save(std::move(r), DeadlineIn(5s));
    });
  };
  // The runs of one primary's slots (its EXISTS answers MOVED for any other), and its replica.
  const std::string primary = cluster.Primaries().front();
  std::vector<std::string> runs;
  for (int i = 0; i < 600 && runs.size() < 100; ++i) {
    const std::string run = fmt::format("w-{}", i);
    auto r = on(primary, {"EXISTS", prefix + "agent_state:{" + run + "}"});
    if (r && !r->is_error()) runs.push_back(run);
  }
  ASSERT_EQ(runs.size(), 100u);
  auto role = on(primary, {"ROLE"});
  ASSERT_TRUE(role && role->elements.size() == 3 && role->elements[2].elements.size() == 1)
      << primary << " has not exactly one replica";
  const std::string replica = fmt::format("{}:{}", role->elements[2].elements[0].elements[0].str,
                                          role->elements[2].elements[0].elements[1].str);
  const int base = std::stoi(options->seeds.front().substr(options->seeds.front().rfind(':') + 1));
  auto name_of = [&](const std::string& node) {
    return "redis-cluster-" + std::to_string(std::stoi(node.substr(node.rfind(':') + 1)) - base);
  };
  ServiceControl services(ServiceControl::DefaultDir());

  // 1. Critical saves wait; auto saves do not.
  ASSERT_TRUE(save(runs[0], CheckpointType::kCritical));
  ASSERT_TRUE(save(runs[0], CheckpointType::kAuto));
  EXPECT_EQ((*store)->Stats().values.at("replica_waits"), 1.0);
  // 2. The replica paused: the save is on the primary, and refused as in doubt.
  ASSERT_TRUE(services.Pause(name_of(replica)));
  auto doubt = save(runs[1], CheckpointType::kCritical);
  auto resumed = services.Resume(name_of(replica));
  ASSERT_TRUE(resumed) << resumed.error().ToString();
  ASSERT_FALSE(doubt);
  EXPECT_EQ(doubt.error().code(), StatusCode::kUnavailable);
  EXPECT_THAT(doubt.error().message(), HasSubstr("not confirmed by its replicas"));
  EXPECT_THAT(doubt.error().message(), HasSubstr("0 of 1 replicas"));
  ASSERT_TRUE(save(runs[1], CheckpointType::kCritical));

  // 3. A stream of saves (one in two critical) while the primary is killed.
  std::atomic<bool> stop{false};
  std::atomic<int> auto_ok_after_kill{0}, critical_ok_after_restart{0}, refused{0};
  std::atomic<int> phase{0};  // 1 after the kill, 2 after the restart
  struct Acked {
    int64_t version;
    uint64_t checksum;
    bool critical;
  };
  std::map<std::string, Acked> acked;  // each run's last acknowledged save
  std::thread saver([&] {
    testing::RunSync([&]() -> Awaitable<void> {
      for (int i = 0; !stop && i < 200000; ++i) {
        const std::string& run = runs[static_cast<std::size_t>(i) % runs.size()];
        const bool critical = i % 2 == 0;
        SaveRequest r = testing::SampleSave(run, fmt::format(R"({{"i":{}}})", i));
        r.checkpoint_type = critical ? CheckpointType::kCritical : CheckpointType::kAuto;
        auto ack = co_await (*store)->Save(std::move(r), DeadlineIn(2s));
        if (!ack) {
          ++refused;
          continue;
        }
        acked[run] = {ack->version, ack->checksum, critical};
        if (phase == 1 && !critical) ++auto_ok_after_kill;
        if (phase == 2 && critical) ++critical_ok_after_restart;
      }
    });
  });
  auto wait_for = [](std::atomic<int>& n, std::chrono::seconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (n == 0 && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(20ms);
    return n > 0;
  };
  std::this_thread::sleep_for(1s);  // saves under way before the kill
  auto killed = services.Kill(name_of(primary), 10s);
  phase = 1;
  const bool auto_back = wait_for(auto_ok_after_kill, 20s);
  auto restarted = services.Restart(name_of(primary), 20s);
  phase = 2;
  const bool critical_back = wait_for(critical_ok_after_restart, 30s);
  stop = true;
  saver.join();
  ASSERT_TRUE(killed) << killed.error().ToString();
  ASSERT_TRUE(restarted) << restarted.error().ToString();
  FailBack(cluster, primary, replica);
  if (HasFatalFailure()) return;
  EXPECT_TRUE(auto_back) << "no auto save went through within 20 s of the kill";
  EXPECT_TRUE(critical_back) << "no critical save went through within 30 s of the restart";
  int critical_lost = 0, auto_lost = 0, critical_acked = 0;
  for (const auto& [run, last] : acked) {
    auto rec = testing::RunSync([&]() -> Awaitable<Result<std::optional<StateRecord>>> {
      co_return co_await (*store)->Load(run, DeadlineIn(5s));
    });
    ASSERT_TRUE(rec) << rec.error().ToString();
    // Kept: that save, or a later one. The same version with other bytes is a save the
    // promoted replica numbered again after losing the acknowledged one.
    const bool kept =
        *rec && ((*rec)->version > last.version ||
                 ((*rec)->version == last.version && (*rec)->checksum == last.checksum));
    if (last.critical) ++critical_acked;
    if (!kept) ++(last.critical ? critical_lost : auto_lost);
  }
  EXPECT_EQ(critical_lost, 0) << "acknowledged critical saves lost through the failover";
  EXPECT_GT(critical_acked, 0);
  std::cout << "replica wait through a failover: runs " << acked.size() << ", last save critical "
            << critical_acked << " (lost " << critical_lost << "), last save auto "
            << acked.size() - static_cast<std::size_t>(critical_acked) << " (lost " << auto_lost
            << "); saves refused or failed " << refused << "\n";
  (void)testing::RunSync([&]() -> Awaitable<Result<uint64_t>> {
    co_return co_await (*store)->DeletePrefix("w-", DeadlineIn(10s));
  });
}

// A redis-server holding 1.6 GB dies slowly: its main thread is a zombie at once, while
// another thread still unmaps the memory and holds the listening socket. A restart that
// treated the zombie as gone failed to bind (seen in CI with 900 MB of data).
TEST(ServiceControl, ABigRedisIsKilledCompletelyBeforeItIsRestarted) {
  ServiceControl services(ServiceControl::DefaultDir());
  auto c = Client();
  for (int i = 0; i < 8; ++i) {
    auto r = Call(*c, {"SETRANGE", "test:big:" + std::to_string(i), "200000000", "x"},
                  10s);  // 200 MB each
    ASSERT_TRUE(r && !r->is_error()) << (r ? r->str : r.error().ToString());
  }
  auto outage = services.KillAndRestart("redis", 30s);
  ASSERT_TRUE(outage) << outage.error().ToString();
  Result<backends::redis::Reply> gone = Error(StatusCode::kInternal, "not tried");
  for (int attempt = 0; attempt < 100; ++attempt) {
    gone = Call(*c,
                {"DEL", "test:big:0", "test:big:1", "test:big:2", "test:big:3", "test:big:4",
                 "test:big:5", "test:big:6", "test:big:7"},
                2s);
    if (gone && !gone->is_error()) break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(gone && !gone->is_error()) << "the restarted server never answered";
  std::cout << "1.6 GB redis kill -9 + restart took " << outage->count() / 1000 << " ms\n";
}

// The redis:// store across a kill -9 and restart: acknowledged saves older than AOF
// everysec's window are back, and the store carries on without being reopened, reloading
// its scripts into the new server's empty cache (NOSCRIPT, then EVAL).
TEST(ServiceControl, TheRedisStoreOutlivesAServerRestartWithItsAcknowledgedSaves) {
  const char* url = std::getenv("AGENTSTATE_REDIS_URL");
  ASSERT_TRUE(url) << "AGENTSTATE_REDIS_URL is not set: scripts/services.sh up";
  const std::string prefix = "restart-" + std::to_string(::getpid()) + ":";
  auto store = OpenStore(core::WithParams(url, "prefix=" + prefix), {});
  ASSERT_TRUE(store) << store.error().ToString();
  auto save = [&](const std::string& run, int n) {
    SaveRequest r;
    r.run_id = run;
    r.thread_id = "thread_" + run;
    r.user_id = "u";
    r.agent_type = "triage_agent";
    r.payload = "{\"n\":" + std::to_string(n) + "}";
    r.checkpoint_type = n % 2 ? CheckpointType::kCritical : CheckpointType::kAuto;
    return testing::RunSync([&]() -> Awaitable<Result<SaveAck>> {
      co_return co_await (*store)->Save(r, DeadlineIn(2s));
    });
  };
  std::map<std::string, uint64_t> acked;
  for (int i = 0; i < 20; ++i) {
    auto ack = save("run_" + std::to_string(i), i);
    ASSERT_TRUE(ack) << ack.error().ToString();
    acked["run_" + std::to_string(i)] = ack->checksum;
  }
  std::this_thread::sleep_for(1200ms);  // past AOF everysec's window
  ServiceControl services(ServiceControl::DefaultDir());
  auto outage = services.KillAndRestart("redis", 20s);
  ASSERT_TRUE(outage) << outage.error().ToString();
  // Bounded: the server may still be loading its AOF (kUnavailable) for a moment.
  Result<std::optional<StateRecord>> first = Error(StatusCode::kInternal, "not tried");
  for (int attempt = 0; attempt < 50 && !first; ++attempt) {
    first = testing::RunSync([&]() -> Awaitable<Result<std::optional<StateRecord>>> {
      co_return co_await (*store)->Load("run_0", DeadlineIn(500ms));
    });
    if (!first) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(first) << first.error().ToString();
  for (const auto& [run, checksum] : acked) {
    auto rec = testing::RunSync([&]() -> Awaitable<Result<std::optional<StateRecord>>> {
      co_return co_await (*store)->Load(run, DeadlineIn(2s));
    });
    ASSERT_TRUE(rec && *rec) << run << " lost across the restart";
    EXPECT_EQ((*rec)->checksum, checksum) << run;
  }
  auto again = save("run_0", 100);
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_EQ(again->version, 2);
  EXPECT_GE((*store)->Stats().values["noscript_reloads"], 1)
      << "the new server cannot have had our script";
  auto cps = testing::RunSync([&]() -> Awaitable<Result<std::vector<CheckpointInfo>>> {
    co_return co_await (*store)->ListCheckpoints("run_1", DeadlineIn(2s));
  });
  ASSERT_TRUE(cps);
  EXPECT_EQ(cps->size(), 1u) << "the critical save's checkpoint survived";
  for (const auto& [run, checksum] : acked) {
    testing::RunSync([&]() -> Awaitable<Result<bool>> {
      co_return co_await (*store)->Delete(run, DeadlineIn(2s));
    });
  }
}

// ClickHouse killed and restarted under a stream of events: what the sink could not send is
// dropped and counted, never lost silently, and sending resumes without reopening it.
TEST(ServiceControl, AnalyticsSurvivesAClickHouseRestartWithDropsCounted) {
  const char* url = std::getenv("AGENTSTATE_CLICKHOUSE_URL");
  ASSERT_TRUE(url) << "AGENTSTATE_CLICKHOUSE_URL is not set: scripts/services.sh up";
  auto opened = backends::clickhouse::AnalyticsSink::Open(
      std::string(url) + "?prefix=restart_test_&flush=100ms&timeout=1s");
  ASSERT_TRUE(opened) << opened.error().ToString();
  auto& sink = **opened;
  std::atomic<bool> stop{false};
  std::thread producer([&] {
    for (int i = 0; !stop && i < 100000; ++i) {  // bounded in count and time
      backends::clickhouse::Event e;
      e.at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
      e.op = "save";
      e.run_id = "run_" + std::to_string(i);
      e.outcome = "ok";
      sink.Record(std::move(e));
      std::this_thread::sleep_for(2ms);
    }
  });
  std::this_thread::sleep_for(500ms);
  ServiceControl services(ServiceControl::DefaultDir());
  auto outage = services.KillAndRestart("clickhouse", 60s);
  ASSERT_TRUE(outage) << outage.error().ToString();
  // Bounded wait for the server to answer again, then a little more traffic.
  Result<std::map<std::string, uint64_t>> counts = Error(StatusCode::kInternal, "not tried");
  for (int i = 0; i < 100 && !counts; ++i) {
    std::this_thread::sleep_for(200ms);
    counts = sink.EventsByOp();
  }
  ASSERT_TRUE(counts) << "clickhouse did not come back: " << counts.error().ToString();
  std::this_thread::sleep_for(500ms);
  stop = true;
  producer.join();
  ASSERT_TRUE(sink.Flush().ok());
  counts = sink.EventsByOp();
  ASSERT_TRUE(counts) << counts.error().ToString();
  const auto st = sink.stats();
  EXPECT_EQ(st.recorded - st.dropped_events, (*counts)["save"])
      << "events neither on the server nor counted as dropped";
  EXPECT_GT(st.sent, 0u);
  std::cout << "clickhouse kill -9 + restart took " << outage->count() / 1000 << " ms; "
            << st.recorded << " events, " << st.dropped_events << " dropped (counted), "
            << st.retries << " retries\n";
}

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  EXPECT_TRUE(v && *v)
      << name << " is not set: scripts/services.sh up, then eval \"$(scripts/services.sh env)\"";
  return v ? v : "";
}

TEST(ServiceControl, PostgresStoppedAtOnceRestartsAndAnswers) {
  ServiceControl services(ServiceControl::DefaultDir());
  ASSERT_TRUE(services.Find("postgres")) << services.Find("postgres").error().ToString();
  auto running = services.Restart("postgres", 5s);
  ASSERT_FALSE(running) << "a running service is never started twice";
  EXPECT_THAT(running.error().message(), HasSubstr("is running"));
  auto down = services.Kill("postgres", 30s);
  ASSERT_TRUE(down) << down.error().ToString();
  EXPECT_FALSE(services.Find("postgres")) << "gone once Kill returns";
  auto up = services.Restart("postgres", 60s);
  ASSERT_TRUE(up) << up.error().ToString();
  // It answers queries again (crash recovery done: pg_ctl -w waits for it).
  const std::string url = Env("AGENTSTATE_POSTGRES_URL");
  const auto conninfo = "postgresql" + url.substr(url.find("://"));
  PGconn* c = PQconnectdb(conninfo.c_str());
  EXPECT_EQ(PQstatus(c), CONNECTION_OK) << PQerrorMessage(c);
  PGresult* r = PQexec(c, "SELECT 1");
  EXPECT_EQ(PQresultStatus(r), PGRES_TUPLES_OK);
  PQclear(r);
  PQfinish(c);
  std::cout << "postgres: immediate shutdown " << down->count() / 1000 << " ms, restart "
            << up->count() / 1000 << " ms\n";
}

TEST(TieredFaults, EveryFaultOnTheScriptsServicesAndTheRedisProxyReachesTheServer) {
  const std::string redis = Env("AGENTSTATE_REDIS_URL"), pg = Env("AGENTSTATE_POSTGRES_URL"),
                    ch = Env("AGENTSTATE_CLICKHOUSE_URL");
  auto faults = MakeTieredFaults(redis, pg, ch, ServiceControl::DefaultDir());
  ASSERT_TRUE(faults) << faults.error().ToString();
  EXPECT_EQ(faults->names(), (std::vector<std::string>{"redis_reset_storm", "redis_kill",
                                                       "postgres_restart", "clickhouse_down"}));
  EXPECT_TRUE(faults->skipped.empty()) << faults->skipped.front();
  ASSERT_NE(faults->proxied_hot_uri, redis);
  auto o = backends::redis::ParseRedisUri(faults->proxied_hot_uri);
  ASSERT_TRUE(o) << o.error().ToString();
  backends::redis::RedisClient through(*o);
  EXPECT_TRUE(Call(through, {"PING"}, 2s)) << "the proxy forwards to the real server";
  // The storm resets what goes through the proxy, and healing it lets clients back in.
  Fault* storm = faults->faults[0].second.get();
  ASSERT_TRUE(storm->Begin().ok());
  EXPECT_FALSE(Call(through, {"PING"}, 500ms));
  ASSERT_TRUE(storm->End().ok());
  bool back = false;
  for (int i = 0; i < 40 && !back; ++i) {
    back = Call(through, {"PING"}, 500ms).has_value();
    if (!back) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(back) << "the client reconnects once the storm is over";
}

// A durable tier through pgbouncer (transaction pooling): pgbouncer itself is killed and
// restarted, and PostgreSQL's restart is the server's behind it.
TEST(TieredFaults, ThroughPgbouncerItsRestartIsAFaultAndPostgresRestartsBehindIt) {
  const std::string redis = Env("AGENTSTATE_REDIS_URL"), pgb = Env("AGENTSTATE_PGBOUNCER_URL"),
                    ch = Env("AGENTSTATE_CLICKHOUSE_URL");
  ASSERT_FALSE(pgb.empty()) << "AGENTSTATE_PGBOUNCER_URL is not set: scripts/services.sh up";
  auto faults = MakeTieredFaults(redis, pgb, ch, ServiceControl::DefaultDir());
  ASSERT_TRUE(faults) << faults.error().ToString();
  EXPECT_EQ(faults->names(),
            (std::vector<std::string>{"redis_reset_storm", "redis_kill", "pgbouncer_restart",
                                      "postgres_restart", "clickhouse_down"}));
  EXPECT_TRUE(faults->skipped.empty()) << faults->skipped.front();
  const std::string pg_at = ServiceControl(ServiceControl::DefaultDir()).Authority("postgres");
  EXPECT_THAT(faults->faults[3].second->Describe(), HasSubstr(pg_at));
  // Killed, then restarted: it serves again, and a session through it answers.
  Fault* bouncer = faults->faults[2].second.get();
  ASSERT_TRUE(bouncer->Begin().ok());
  ASSERT_TRUE(bouncer->End().ok());
  PGconn* c = PQconnectdb(pgb.substr(0, pgb.find('?')).c_str());
  EXPECT_EQ(PQstatus(c), CONNECTION_OK) << PQerrorMessage(c);
  PGresult* r = PQexec(c, "SELECT 1");
  EXPECT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << PQerrorMessage(c);
  PQclear(r);
  PQfinish(c);
}

TEST(TieredFaults, ServicesTheScriptsDidNotStartAreSkippedWithTheReason) {
  // Another port than the script's redis, and a host the proxy may not front.
  auto other =
      MakeTieredFaults("redis://127.0.0.1:1/0", "postgresql://agentstate@127.0.0.1:2/agentstate",
                       "", ServiceControl::DefaultDir());
  ASSERT_TRUE(other) << other.error().ToString();
  EXPECT_EQ(other->names(), std::vector<std::string>{"redis_reset_storm"});
  ASSERT_EQ(other->skipped.size(), 2u);
  EXPECT_THAT(other->skipped[0],
              HasSubstr("redis_kill: 127.0.0.1:1 is not the redis scripts/services.sh started"));
  EXPECT_THAT(other->skipped[1], HasSubstr("postgres_restart"));
  auto remote = MakeTieredFaults("redis://10.1.2.3:6379/0", "postgresql://u@10.1.2.3:5432/db", "",
                                 "/nonexistent");
  ASSERT_TRUE(remote) << remote.error().ToString();
  EXPECT_TRUE(remote->names().empty());
  EXPECT_EQ(remote->proxy, nullptr);
  ASSERT_EQ(remote->skipped.size(), 3u);
  EXPECT_THAT(remote->skipped[0], HasSubstr("not a loopback address"));
}

// agentstated killed and started again, as failure_recovery_under_load does through an
// http:// store: a real agentstated (started by the CTest fixture's script), SQLite behind it.
class ServerKillTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("server-kill-" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    const std::string start = Script() + " start " + dir_.string() + " " + AGENTSTATED_BINARY +
                              " --store sqlite://" + (dir_ / "state.db").string();
    ASSERT_EQ(std::system(start.c_str()), 0) << start;
    std::ifstream in(dir_ / "url");
    std::getline(in, url_);
    port_ = static_cast<uint16_t>(std::stoi(url_.substr(url_.rfind(':') + 1)));
  }
  void TearDown() override {
    // Stops whichever agentstated listens on the port now, by its PID, and checks it drained.
    EXPECT_EQ(std::system((Script() + " stop " + dir_.string()).c_str()), 0);
    while (waitpid(-1, nullptr, WNOHANG) > 0) {
    }  // the restarted agentstated was this process's child
    std::filesystem::remove_all(dir_);
  }
  static std::string Script() {
    return std::string(AGENTSTATE_SOURCE_DIR) + "/tests/load/agentstated_fixture.sh";
  }
  void StopAndStartAgain(int signal, const std::string& described, std::string& log);
  std::filesystem::path dir_;
  std::string url_;
  uint16_t port_ = 0;
};

// The fault with `signal` injected and healed: the port is free in between, another PID
// listens after, and what was acknowledged before is there. `log`: the server's log.
void ServerKillTest::StopAndStartAgain(int signal, const std::string& described, std::string& log) {
  auto fault = MakeServerKillFault(port_, signal);
  ASSERT_TRUE(fault) << fault.error().ToString();
  EXPECT_THAT((*fault)->Describe(), HasSubstr(described));
  {
    auto store = OpenStore(url_, {});
    ASSERT_TRUE(store) << store.error().ToString();
    auto saved = testing::RunSync([&]() -> Awaitable<Result<SaveAck>> {
      SaveRequest r;
      r.run_id = "before-the-kill";
      r.thread_id = "t";
      r.user_id = "u";
      r.agent_type = "planner";
      r.payload = R"({"kept":true})";
      co_return co_await (*store)->Save(r, DeadlineIn(5s));
    });
    ASSERT_TRUE(saved) << saved.error().ToString();
  }
  const int before = ListenerPid(port_);
  ASSERT_GT(before, 0);
  const Status down = (*fault)->Begin();
  ASSERT_TRUE(down.ok()) << down.ToString();
  EXPECT_EQ(ListenerPid(port_), 0) << "the port is still listened on";
  const Status healed = (*fault)->End();
  ASSERT_TRUE(healed.ok()) << healed.ToString();
  const int after = ListenerPid(port_);
  EXPECT_GT(after, 0);
  EXPECT_NE(after, before);
  // The same store behind it: what was acknowledged before the kill is there.
  auto store = OpenStore(url_, {});
  ASSERT_TRUE(store) << store.error().ToString();
  auto loaded = testing::RunSync([&]() -> Awaitable<Result<std::optional<StateRecord>>> {
    co_return co_await (*store)->Load("before-the-kill", DeadlineIn(5s));
  });
  ASSERT_TRUE(loaded && *loaded) << (loaded ? "absent" : loaded.error().ToString());
  EXPECT_EQ((*loaded)->payload, R"({"kept":true})");
  // Its log goes on in the same file: two starts on the same port.
  std::ifstream file(dir_ / "agentstated.log");
  const std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  const std::string listening = "listening on 127.0.0.1:" + std::to_string(port_);
  EXPECT_NE(text.find(listening), text.rfind(listening)) << text;
  log = text;
}

TEST_F(ServerKillTest, AgentstatedIsKilledAndStartedAgainAsItWasOnTheSamePort) {
  std::string log;
  StopAndStartAgain(SIGKILL, "killed (SIGKILL)", log);
}

// SIGTERM: the server drains and exits on its own before it is started again.
TEST_F(ServerKillTest, AgentstatedIsStoppedWithSigtermDrainsAndIsStartedAgain) {
  std::string log;
  StopAndStartAgain(SIGTERM, "stopped (SIGTERM", log);
  EXPECT_THAT(log, HasSubstr("SIGTERM: draining"));
}

TEST(ServerKill, AProcessThatIsNotAgentstatedIsNeverKilled) {
  asio::io_context io;
  asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
  auto fault = MakeServerKillFault(a.local_endpoint().port(), SIGKILL);
  ASSERT_FALSE(fault);
  EXPECT_THAT(fault.error().message(), HasSubstr("not agentstated"));
  auto none = MakeServerKillFault(1, SIGTERM);  // nothing of ours listens on port 1
  ASSERT_FALSE(none);
  EXPECT_THAT(none.error().message(), HasSubstr("no process"));
}

}  // namespace
}  // namespace agentstate::load
