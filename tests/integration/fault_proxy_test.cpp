// The TCP fault proxy between the Redis client and a real redis-server (label
// integration): each fault type, and the client's recovery from it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include "backends/redis/client.hpp"
#include "load/faults/fault_proxy.hpp"
#include "support/run.hpp"

namespace agentstate::load {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

class FaultProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* url = std::getenv("AGENTSTATE_REDIS_URL");
    ASSERT_TRUE(url) << "AGENTSTATE_REDIS_URL is not set: scripts/services.sh up";
    auto o = backends::redis::ParseRedisUri(url);
    ASSERT_TRUE(o);
    auto p = FaultProxy::Start("127.0.0.1", o->host, o->port);
    ASSERT_TRUE(p) << p.error().ToString();
    proxy_ = std::move(*p);
    o->port = proxy_->port();
    o->connections = 1;
    o->connect_timeout = 500ms;
    client_ = std::make_unique<backends::redis::RedisClient>(*o);
  }
  Result<backends::redis::Reply> Call(std::vector<std::string> args,
                                      std::chrono::milliseconds timeout = 2s) {
    return testing::RunSync([&]() -> Awaitable<Result<backends::redis::Reply>> {
      co_return co_await client_->Command(args, DeadlineIn(timeout));
    });
  }
  // Bounded: the client reconnects by itself after a fault ends.
  bool AnswersAgain() {
    for (int i = 0; i < 50; ++i) {
      auto r = Call({"PING"}, 300ms);
      if (r && r->str == "PONG") return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }
  std::unique_ptr<FaultProxy> proxy_;
  std::unique_ptr<backends::redis::RedisClient> client_;
};

TEST(FaultProxy, OnlyLoopbackIsAllowed) {
  auto listen = FaultProxy::Start("0.0.0.0", "127.0.0.1", 6379);
  ASSERT_FALSE(listen);
  EXPECT_EQ(listen.error().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(listen.error().message(), HasSubstr("not a loopback address"));
  auto target = FaultProxy::Start("127.0.0.1", "10.1.2.3", 6379);
  ASSERT_FALSE(target);
  EXPECT_THAT(target.error().message(), HasSubstr("10.1.2.3"));
  EXPECT_TRUE(IsLoopback("127.0.0.5"));
  EXPECT_TRUE(IsLoopback("::1"));
  EXPECT_FALSE(IsLoopback("192.168.1.1"));
}

TEST_F(FaultProxyTest, LatencyAndJitterDelayEachDirection) {
  ASSERT_TRUE(AnswersAgain());
  proxy_->set({.latency = 100ms, .jitter = 20ms});
  const auto t0 = std::chrono::steady_clock::now();
  auto r = Call({"PING"});
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_GE(took, 150ms) << "a request and its reply each wait 100 +/- 20 ms";
  EXPECT_LT(took, 1s);
  proxy_->set({});
}

TEST_F(FaultProxyTest, ABandwidthCapSlowsLargeValues) {
  ASSERT_TRUE(AnswersAgain());
  proxy_->set({.bandwidth_bytes_per_s = 1'000'000});
  const std::string value(500'000, 'b');
  const auto t0 = std::chrono::steady_clock::now();
  auto r = Call({"SET", "test:proxy:bw", value}, 5s);
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_GE(took, 400ms) << "500 KB at 1 MB/s";
  proxy_->set({});
  Call({"DEL", "test:proxy:bw"});
}

TEST_F(FaultProxyTest, AResetStormFailsWhatIsInFlightAndTheClientReconnects) {
  ASSERT_TRUE(AnswersAgain());
  for (int storm = 0; storm < 3; ++storm) {
    std::thread resetter([&] {
      std::this_thread::sleep_for(20ms);
      proxy_->reset_now();
    });
    auto blocked = Call({"BLPOP", "test:proxy:never", "1"}, 3s);  // in flight when the reset lands
    resetter.join();
    ASSERT_FALSE(blocked);
    EXPECT_EQ(blocked.error().code(), StatusCode::kUnavailable) << blocked.error().ToString();
    EXPECT_TRUE(AnswersAgain());
  }
  EXPECT_GE(proxy_->stats().resets, 3u);
  EXPECT_GE(client_->reconnects(), 3u);
  // New connections reset on arrival: refused until the fault is switched off.
  proxy_->set({.reset_probability = 1.0});
  proxy_->reset_now();
  auto refused = Call({"PING"}, 500ms);
  EXPECT_FALSE(refused);
  proxy_->set({});
  EXPECT_TRUE(AnswersAgain());
}

TEST_F(FaultProxyTest, ABlackholeTimesCommandsOutAndItsBytesFlowWhenItLifts) {
  ASSERT_TRUE(AnswersAgain());
  proxy_->set({.blackhole = true});
  auto lost = Call({"SET", "test:proxy:bh", "1"}, 300ms);
  ASSERT_FALSE(lost);
  EXPECT_EQ(lost.error().code(), StatusCode::kTimeout);
  proxy_->set({});
  EXPECT_TRUE(AnswersAgain());
  auto held = Call({"GET", "test:proxy:bh"});
  ASSERT_TRUE(held);
  EXPECT_EQ(held->str, "1") << "the held SET went through once the blackhole lifted";
  Call({"DEL", "test:proxy:bh"});
}

// A half-open connection never fails by itself: the client must notice the silence.
TEST_F(FaultProxyTest, AHalfOpenConnectionIsDroppedAfterRepeatedSilenceAndANewOneWorks) {
  ASSERT_TRUE(AnswersAgain());
  proxy_->set({.half_open = true});
  for (int i = 0; i < 3; ++i) {
    auto r = Call({"PING"}, 200ms);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), StatusCode::kTimeout);
  }
  proxy_->set({});
  EXPECT_TRUE(AnswersAgain()) << "the client kept writing into the half-open connection";
  EXPECT_GE(client_->reconnects(), 1u);
}

}  // namespace
}  // namespace agentstate::load
