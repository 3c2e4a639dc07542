// The wait before a client's next reconnect attempt: jittered exponential backoff, 50 ms
// doubling to 1 s, each wait 50..100 % of its step. One shape for every client (Redis,
// PostgreSQL): the cap bounds reconnect attempts to about one a second per connection while
// a server is down, and the time from its return to the first new connection to under 1 s.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

namespace agentstate::core {

class ReconnectBackoff {
 public:
  static constexpr double kFirstMs = 50, kCapMs = 1000;

  // The wait after the `attempts_`-th failure in a row; counts it.
  template <typename Rng>
  std::chrono::milliseconds Next(Rng& rng) {
    const double step = std::min(kCapMs, kFirstMs * std::pow(2.0, std::min(attempts_, 6)));
    ++attempts_;
    return std::chrono::milliseconds(
        static_cast<int64_t>(step * (0.5 + 0.5 * std::uniform_real_distribution<>(0, 1)(rng))));
  }
  void Reset() { attempts_ = 0; }

 private:
  int attempts_ = 0;
};

}  // namespace agentstate::core
