#include "core/circuit_breaker.hpp"

#include <gtest/gtest.h>

namespace agentstate::core {
namespace {

using namespace std::chrono_literals;
using State = CircuitBreaker::State;

TEST(CircuitBreaker, OpensAfterConsecutiveFailuresAndProbesAfterTheCooldown) {
  CircuitBreaker b(3, 500ms);
  const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  b.RecordFailure(t0);
  b.RecordFailure(t0);
  b.RecordSuccess();  // a success in between resets the count
  b.RecordFailure(t0);
  b.RecordFailure(t0);
  EXPECT_EQ(b.state(), State::kClosed);
  EXPECT_TRUE(b.Allow(t0));
  b.RecordFailure(t0);
  EXPECT_EQ(b.state(), State::kOpen);
  EXPECT_EQ(b.trips(), 1u);
  EXPECT_FALSE(b.Allow(t0 + 499ms)) << "fails fast during the cooldown";
  EXPECT_TRUE(b.Allow(t0 + 500ms)) << "one probe after it";
  EXPECT_EQ(b.state(), State::kHalfOpen);
  EXPECT_FALSE(b.Allow(t0 + 501ms)) << "only one probe at a time";
  b.RecordSuccess();
  EXPECT_EQ(b.state(), State::kClosed);
  EXPECT_TRUE(b.Allow(t0 + 502ms));
}

TEST(CircuitBreaker, AFailedProbeOpensItForAnotherCooldown) {
  CircuitBreaker b(1, 100ms);
  const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  b.RecordFailure(t0);
  ASSERT_TRUE(b.Allow(t0 + 100ms));
  b.RecordFailure(t0 + 150ms);
  EXPECT_EQ(b.state(), State::kOpen);
  EXPECT_EQ(b.trips(), 2u);
  EXPECT_FALSE(b.Allow(t0 + 249ms));
  EXPECT_TRUE(b.Allow(t0 + 250ms));
  EXPECT_EQ(CircuitBreaker::Name(b.state()), "half_open");
}

TEST(CircuitBreaker, AShortStallIsNotAnOutageALongOneIs) {
  CircuitBreaker b(5, 1000ms, 500ms);
  const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  for (int i = 0; i < 50; ++i)
    b.RecordFailure(t0 + std::chrono::milliseconds(i * 8));  // 50 failures in 400 ms
  EXPECT_EQ(b.state(), State::kClosed) << "a 400 ms stall opened it";
  b.RecordSuccess();
  b.RecordFailure(t0 + 1s);
  for (int i = 0; i < 4; ++i) b.RecordFailure(t0 + 1s + 499ms);
  EXPECT_EQ(b.state(), State::kClosed);
  b.RecordFailure(t0 + 1s + 500ms);  // failing for 500 ms, 6 in a row
  EXPECT_EQ(b.state(), State::kOpen);
  EXPECT_EQ(b.trips(), 1u);
}

}  // namespace
}  // namespace agentstate::core
