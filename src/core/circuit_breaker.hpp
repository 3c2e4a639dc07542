// A circuit breaker per endpoint, as pure logic: fed outcomes and the time, it says
// whether a call may go out. No clock of its own, so it is tested without sleeping.
//
//   closed     calls go out; `failure_threshold` consecutive failures open it, once they
//              have gone on for at least `min_outage` (0: at once). A stall shorter than
//              that fails many calls at once, all in flight together; it is not an outage.
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

  CircuitBreaker(int failure_threshold, std::chrono::milliseconds cooldown,
                 std::chrono::milliseconds min_outage = std::chrono::milliseconds(0))
      : threshold_(failure_threshold), cooldown_(cooldown), min_outage_(min_outage) {}

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
  std::chrono::milliseconds min_outage_;
  State state_ = State::kClosed;
  int consecutive_failures_ = 0;
  TimePoint first_failure_{};  // of the current run of failures
  TimePoint open_until_{};
  bool probe_out_ = false;
  uint64_t trips_ = 0;
};

}  // namespace agentstate::core
