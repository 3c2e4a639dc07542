// Admission control and a circuit breaker for one endpoint, shared by the Redis and
// PostgreSQL clients. At most `max_in_flight` operations run at once; beyond that an
// operation waits up to `pool_wait` (never past its own deadline) for a slot a finished one
// hands over, then is refused with kPoolExhausted. The breaker (core::CircuitBreaker: 5
// failures spanning at least 500 ms open it for 1 s) refuses with kUnavailable while open.
//
// Everything runs on the client's one I/O thread; only the counters are read elsewhere.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "agentstate/model.hpp"
#include "agentstate/status.hpp"
#include "core/asio.hpp"
#include "core/circuit_breaker.hpp"
#include "core/log2_histogram.hpp"

namespace agentstate::core {

class Admission {
 public:
  static constexpr int kBreakerFailures = 5;
  static constexpr std::chrono::milliseconds kBreakerCooldown{1000};
  static constexpr std::chrono::milliseconds kBreakerMinOutage{500};

  // `endpoint` names the server in messages (a URI without its password); `unit` names
  // what is admitted ("commands", "queries").
  Admission(asio::io_context& io, std::size_t max_in_flight, std::chrono::milliseconds pool_wait,
            std::string endpoint, std::string unit);

  // Runs `go` now or once a slot is handed over; or calls `refuse` with why not. Exactly one
  // of them runs, on the I/O thread. An admitted operation must call Finished once.
  void Admit(Deadline deadline, std::function<void()> go, std::function<void(Status)> refuse);
  // An admitted operation ended. `failure`: no answer from the server (timeout, connection
  // lost) that counts against the breaker.
  void Finished(bool answered, bool failure);

  struct Counters {
    uint64_t in_flight = 0, waiting = 0, waits = 0, wait_timeouts = 0, wait_us_total = 0;
    uint64_t wait_p50_us = 0, wait_p99_us = 0, wait_max_us = 0;
    uint64_t breaker_state = 0, breaker_trips = 0, breaker_rejections = 0;
    // As StoreStats values: in_flight, pool_waiting, pool_waits, pool_wait_timeouts,
    // pool_wait_{ms_total,p50_ms,p99_ms,max_ms}, breaker_{state,trips,rejections}.
    void AppendTo(std::map<std::string, double>& values) const;
  };
  Counters counters() const;

 private:
  struct Waiter {
    std::function<void()> go;
    std::function<void(Status)> refuse;
    std::chrono::steady_clock::time_point since;
    std::unique_ptr<asio::steady_timer> timer;
    bool admitted = false;
  };

  asio::io_context& io_;
  const std::size_t max_in_flight_;
  const std::chrono::milliseconds pool_wait_;
  const std::string endpoint_, unit_;
  std::size_t in_flight_ = 0;                    // I/O thread only
  std::deque<std::shared_ptr<Waiter>> waiting_;  // I/O thread only
  CircuitBreaker breaker_{kBreakerFailures, kBreakerCooldown,
                          kBreakerMinOutage};  // I/O thread only
  Log2Histogram wait_hist_;
  std::atomic<uint64_t> in_flight_now_{0}, waiting_now_{0}, waits_{0}, wait_timeouts_{0},
      wait_us_total_{0};
  std::atomic<uint64_t> breaker_state_{0}, breaker_trips_{0}, breaker_rejections_{0};
};

}  // namespace agentstate::core
