// The Redis client against a real redis-server (scripts/services.sh up; label integration).
// A missing server is a failure, never a skip.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "backends/redis/client.hpp"
#include "core/asio.hpp"
#include "support/run.hpp"

namespace agentstate::backends::redis {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

// Polls `condition` every millisecond until it holds or `limit` has passed: synchronisation
// on the condition itself, never a sleep that hopes it is long enough. Whether it held.
template <typename Condition>
bool WaitUntil(std::chrono::milliseconds limit, Condition condition) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

std::string Url() {
  const char* v = std::getenv("AGENTSTATE_REDIS_URL");
  return v ? v : "";
}

class RedisClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(Url().empty())
        << "AGENTSTATE_REDIS_URL is not set: start the services with "
           "`scripts/services.sh up` and `eval \"$(scripts/services.sh env)\"`";
    auto o = ParseRedisUri(Url());
    ASSERT_TRUE(o) << o.error().ToString();
    options_ = *o;
  }
  std::unique_ptr<RedisClient> Client(int connections = 1) {
    RedisOptions o = options_;
    o.connections = connections;
    return std::make_unique<RedisClient>(o);
  }
  static Result<Reply> Call(RedisClient& c, std::vector<std::string> args,
                            std::chrono::milliseconds timeout = 2s) {
    return testing::RunSync([&]() -> Awaitable<Result<Reply>> {
      co_return co_await c.Command(args, DeadlineIn(timeout));
    });
  }
  // A plain hiredis connection of the test's own, to act on the server behind the client's back.
  redisReply* Side(const char* cmd) {
    if (!side_) side_ = redisConnect(options_.host.c_str(), options_.port);
    return static_cast<redisReply*>(redisCommand(side_, cmd));
  }
  void TearDown() override {
    if (side_) redisFree(side_);
  }

  RedisOptions options_;
  redisContext* side_ = nullptr;
};

TEST_F(RedisClientTest, PingSetGetAndBinaryValuesFromEmptyToSixteenMegabytes) {
  auto c = Client();
  auto pong = Call(*c, {"PING"});
  ASSERT_TRUE(pong) << pong.error().ToString();
  EXPECT_EQ(pong->str, "PONG");
  for (std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{1000}, std::size_t{1} << 20,
                           std::size_t{16} << 20}) {
    std::string value(size, '\0');
    for (std::size_t i = 0; i < size; ++i)
      value[i] = static_cast<char>(i * 7 % 256);  // NULs included
    auto set = Call(*c, {"SET", "test:bin", value}, 10s);
    ASSERT_TRUE(set && !set->is_error()) << size;
    auto get = Call(*c, {"GET", "test:bin"}, 10s);
    ASSERT_TRUE(get) << get.error().ToString();
    EXPECT_EQ(get->str.size(), size);
    EXPECT_TRUE(get->str == value) << "value of " << size << " bytes came back different";
  }
  auto err = Call(*c, {"INCR", "test:bin"});
  ASSERT_TRUE(err);
  EXPECT_TRUE(err->is_error()) << "a Redis error reply is a reply, not a transport error";
}

TEST_F(RedisClientTest, ManyConcurrentCommandsShareTwoConnectionsAndEachGetsItsOwnReply) {
  auto c = Client(2);
  constexpr int kCallers = 2000;
  std::atomic<int> right{0}, wrong{0};
  asio::io_context io(4);
  for (int i = 0; i < kCallers; ++i) {
    asio::co_spawn(
        io,
        [&, i]() -> Awaitable<void> {
          const std::string key = "test:mux:" + std::to_string(i);
          // Named, not braced in the co_await: g++ 12 mishandles such temporaries.
          std::vector<std::string> set_args{"SET", key, "value-" + std::to_string(i)},
              get_args{"GET", key};
          auto set = co_await c->Command(std::move(set_args), DeadlineIn(5s));
          auto get = co_await c->Command(std::move(get_args), DeadlineIn(5s));
          (set && get && get->str == "value-" + std::to_string(i) ? right : wrong)++;
        },
        asio::detached);
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back([&] { io.run(); });
  for (auto& t : threads) t.join();
  EXPECT_EQ(right, kCallers);
  EXPECT_EQ(wrong, 0);
}

TEST_F(RedisClientTest, AConnectionKilledMidPipelineFailsItsCommandsCleanlyAndLaterOnesSucceed) {
  auto c = Client();
  auto id = Call(*c, {"CLIENT", "ID"});
  ASSERT_TRUE(id);
  // A command that stays in flight on the server until we kill its connection.
  std::atomic<bool> finished{false};
  Result<Reply> blocked = Error(StatusCode::kInternal, "not run");
  std::thread waiter([&] {
    blocked = Call(*c, {"BLPOP", "test:never", "10"}, 8s);
    finished = true;
  });
  // Until the server runs the BLPOP on that connection.
  const std::string list = "CLIENT LIST ID " + std::to_string(id->integer);
  EXPECT_TRUE(WaitUntil(5s, [&] {
    redisReply* r = Side(list.c_str());
    const bool blocked_now = r && r->type == REDIS_REPLY_STRING && std::strstr(r->str, "cmd=blpop");
    freeReplyObject(r);
    return blocked_now;
  })) << "the BLPOP never reached the server";
  const auto t0 = std::chrono::steady_clock::now();
  freeReplyObject(Side(("CLIENT KILL ID " + std::to_string(id->integer)).c_str()));
  waiter.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s)
      << "the in-flight command hung until its deadline";
  ASSERT_FALSE(blocked);
  EXPECT_EQ(blocked.error().code(), StatusCode::kUnavailable) << blocked.error().ToString();
  // The client reconnects by itself.
  auto pong = Call(*c, {"PING"}, 3s);
  ASSERT_TRUE(pong) << pong.error().ToString();
  EXPECT_EQ(pong->str, "PONG");
  EXPECT_GE(c->reconnects(), 1u);
}

TEST_F(RedisClientTest, ACommandPastItsDeadlineTimesOutAndItsLateReplyIsDiscarded) {
  auto c = Client();
  const auto t0 = std::chrono::steady_clock::now();
  auto r = Call(*c, {"BLPOP", "test:never", "1"}, 150ms);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 900ms);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), StatusCode::kTimeout);
  // The BLPOP's nil reply arrives after 1 s; the next command must get its own reply.
  auto pong = Call(*c, {"ECHO", "mine"}, 3s);
  ASSERT_TRUE(pong) << pong.error().ToString();
  EXPECT_EQ(pong->str, "mine");
}

TEST_F(RedisClientTest,
       AnUnreachableServerOrAWrongPasswordIsUnavailableNamingTheUriWithoutThePassword) {
  RedisOptions down = options_;
  down.port = 1;  // nothing listens on loopback port 1
  down.redacted_uri = "redis://127.0.0.1:1/0";
  down.connect_timeout = 200ms;
  RedisClient dead(down);
  std::this_thread::sleep_for(400ms);  // let it fail to connect twice
  auto r = Call(dead, {"PING"}, 1s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), StatusCode::kUnavailable) << r.error().ToString();
  EXPECT_THAT(r.error().message(), HasSubstr("redis://127.0.0.1:1/0"));

  // The failures opened the endpoint's breaker: now calls fail fast, saying so.
  // Bounded: failing for 500 ms opens it; give it up to 3 s of failing calls.
  const auto until = std::chrono::steady_clock::now() + 3s;
  while (dead.stats().breaker_trips == 0 && std::chrono::steady_clock::now() < until) {
    (void)Call(dead, {"PING"}, 1s);
    std::this_thread::sleep_for(20ms);
  }
  auto fast = Call(dead, {"PING"}, 1s);
  ASSERT_FALSE(fast);
  EXPECT_THAT(fast.error().message(), HasSubstr("circuit open"));
  EXPECT_GE(dead.stats().breaker_trips, 1u);
  EXPECT_GE(dead.stats().breaker_rejections, 1u);

  auto wrong = ParseRedisUri("redis://:not-the-password@" + options_.host + ":" +
                             std::to_string(options_.port) + "/0");
  ASSERT_TRUE(wrong);
  RedisClient refused(*wrong);
  // Until a call meets the refusal (the first ones may still be waiting for the connection).
  Result<Reply> a = Error(StatusCode::kInternal, "not tried");
  WaitUntil(5s, [&] {
    a = Call(refused, {"PING"}, 1s);
    return !a && a.error().message().find("refused AUTH") != std::string::npos;
  });
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code(), StatusCode::kUnavailable) << a.error().ToString();
  EXPECT_THAT(a.error().message(), HasSubstr("refused AUTH"));
  EXPECT_THAT(a.error().message(), ::testing::Not(HasSubstr("not-the-password")));
}

TEST_F(RedisClientTest, BeyondMaxInFlightCommandsWaitForASlotThenArePoolExhausted) {
  RedisOptions o = options_;
  o.connections = 1;
  o.max_in_flight = 2;
  o.pool_wait = 150ms;
  RedisClient c(o);
  // Two commands hold both slots for 1 s on the server.
  std::vector<std::thread> holders;
  for (int i = 0; i < 2; ++i)
    holders.emplace_back([&] { (void)Call(c, {"BLPOP", "test:never", "1"}, 3s); });
  EXPECT_TRUE(WaitUntil(900ms, [&] { return c.stats().in_flight == 2; }))
      << "the two BLPOPs did not both take a slot";
  const auto t0 = std::chrono::steady_clock::now();
  auto turned_away = Call(c, {"PING"}, 2s);
  const auto waited = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(turned_away);
  EXPECT_EQ(turned_away.error().code(), StatusCode::kPoolExhausted)
      << turned_away.error().ToString();
  EXPECT_GE(waited, 140ms);
  EXPECT_LT(waited, 900ms) << "it waited for pool_wait, not for its own deadline";
  for (auto& t : holders) t.join();
  const auto s = c.stats();
  EXPECT_EQ(s.waits, 1u);
  EXPECT_EQ(s.wait_timeouts, 1u);
  EXPECT_EQ(s.in_flight, 0u);
  EXPECT_TRUE(Call(c, {"PING"}, 2s)) << "slots come back";
}

TEST_F(RedisClientTest, AWaitingCommandGetsTheSlotAFinishedOneGivesBack) {
  RedisOptions o = options_;
  o.connections = 1;
  o.max_in_flight = 1;
  o.pool_wait = 2s;
  RedisClient c(o);
  std::thread holder([&] { (void)Call(c, {"BLPOP", "test:never", "1"}, 3s); });
  EXPECT_TRUE(WaitUntil(900ms, [&] { return c.stats().in_flight == 1; }))
      << "the BLPOP never took the slot";
  auto pong = Call(c, {"PING"}, 3s);
  holder.join();
  ASSERT_TRUE(pong) << pong.error().ToString();
  EXPECT_EQ(pong->str, "PONG");
  const auto s = c.stats();
  EXPECT_EQ(s.waits, 1u);
  EXPECT_EQ(s.wait_timeouts, 0u);
  EXPECT_GE(s.wait_us_total, 500000u) << "it waited for the BLPOP's slot";
  EXPECT_EQ(s.in_flight, 0u);
}

TEST_F(RedisClientTest, TheDatabaseIndexFromTheUriIsSelected) {
  auto o = ParseRedisUri("redis://" + options_.host + ":" + std::to_string(options_.port) + "/3");
  ASSERT_TRUE(o);
  RedisClient c(*o);
  ASSERT_TRUE(Call(c, {"SET", "test:db3", "here"}));
  freeReplyObject(Side("SELECT 3"));
  redisReply* r = Side("GET test:db3");
  ASSERT_TRUE(r && r->str);
  EXPECT_STREQ(r->str, "here");
  freeReplyObject(r);
}

}  // namespace
}  // namespace agentstate::backends::redis
