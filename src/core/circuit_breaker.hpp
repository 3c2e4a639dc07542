// A circuit breaker per endpoint, as pure logic: fed outcomes and the time, it says
// whether a call may go out. No clock of its own, so it is tested without sleeping.
//
//   closed     calls go out; `failure_threshold` consecutive failures open it
//   open       calls fail fast for `cooldown`, then one probe is let through (half-open)
//   half-open  the probe's success closes it; its failure opens it for another cooldown
//
// Not thread-safe: keep one per endpoint on the endpoint's own thread or strand.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

namespace agentstate::core {

class CircuitBreaker {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  enum class State { kClosed, kOpen, kHalfOpen };

  CircuitBreaker(int failure_threshold, std::chrono::milliseconds cooldown)
      : threshold_(failure_threshold), cooldown_(cooldown) {}

  // Whether a call may go out now. In the open state after the cooldown it lets exactly one
  // probe through and moves to half-open.
  bool Allow(TimePoint now);
  void RecordSuccess();
  void RecordFailure(TimePoint now);

  State state() const { return state_; }
  uint64_t trips() const { return trips_; }  // times it opened
  static std::string_view Name(State s);

 private:
  int threshold_;
  std::chrono::milliseconds cooldown_;
  State state_ = State::kClosed;
  int consecutive_failures_ = 0;
  TimePoint open_until_{};
  bool probe_out_ = false;
  uint64_t trips_ = 0;
};

}  // namespace agentstate::core
