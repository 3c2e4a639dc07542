// A clock that tests move by hand, for TTLs and expiry without waiting.
#pragma once

#include <atomic>
#include <chrono>

#include "agentstate/options.hpp"

namespace agentstate::testing {

class ManualClock final : public Clock {
 public:
  SystemTime Now() const override { return SystemTime(std::chrono::milliseconds(now_ms_.load())); }
  void Advance(std::chrono::milliseconds d) { now_ms_ += d.count(); }

 private:
  std::atomic<int64_t> now_ms_{1'800'000'000'000};
};

}  // namespace agentstate::testing
