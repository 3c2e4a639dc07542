#include "core/circuit_breaker.hpp"

namespace agentstate::core {

bool CircuitBreaker::Allow(TimePoint now) {
  switch (state_) {
    case State::kClosed: return true;
    case State::kOpen:
      if (now < open_until_) return false;
      state_ = State::kHalfOpen;
      probe_out_ = true;
      return true;
    case State::kHalfOpen:
      if (probe_out_) return false;  // one probe at a time
      probe_out_ = true;
      return true;
  }
  return true;
}

void CircuitBreaker::RecordSuccess() {
  state_ = State::kClosed;
  consecutive_failures_ = 0;
  probe_out_ = false;
}

void CircuitBreaker::RecordFailure(TimePoint now) {
  probe_out_ = false;
  if (consecutive_failures_++ == 0) first_failure_ = now;
  if (state_ == State::kHalfOpen ||
      (consecutive_failures_ >= threshold_ && now - first_failure_ >= min_outage_)) {
    if (state_ != State::kOpen) ++trips_;
    state_ = State::kOpen;
    open_until_ = now + cooldown_;
    consecutive_failures_ = 0;
  }
}

std::string_view CircuitBreaker::Name(State s) {
  switch (s) {
    case State::kClosed: return "closed";
    case State::kOpen: return "open";
    case State::kHalfOpen: return "half_open";
  }
  return "closed";
}

}  // namespace agentstate::core
