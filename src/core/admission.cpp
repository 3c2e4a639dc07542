#include "core/admission.hpp"
#include "core/asio.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace agentstate::core {

using SteadyClock = std::chrono::steady_clock;

Admission::Admission(asio::io_context& io, std::size_t max_in_flight,
                     std::chrono::milliseconds pool_wait, std::string endpoint, std::string unit)
    : io_(io),
      max_in_flight_(max_in_flight),
      pool_wait_(pool_wait),
      endpoint_(std::move(endpoint)),
      unit_(std::move(unit)) {}

void Admission::Admit(Deadline deadline, std::function<void()> go,
                      std::function<void(Status)> refuse) {
  if (!breaker_.Allow(SteadyClock::now())) {
    ++breaker_rejections_;
    refuse(Status(
        StatusCode::kUnavailable,
        fmt::format(
            "{}: circuit open: every call failed for {} ms or more; the next call after {} ms "
            "probes the server",
            endpoint_, kBreakerMinOutage.count(), kBreakerCooldown.count())));
    return;
  }
  if (in_flight_ < max_in_flight_) {
    in_flight_now_ = ++in_flight_;
    go();
    return;
  }
  ++waits_;
  auto w = std::make_shared<Waiter>(Waiter{std::move(go), std::move(refuse), SteadyClock::now(),
                                           std::make_unique<asio::steady_timer>(io_)});
  w->timer->expires_at(std::min(deadline, SteadyClock::now() + pool_wait_));
  w->timer->async_wait([this, weak = std::weak_ptr<Waiter>(w)](boost::system::error_code ec) {
    auto w = weak.lock();
    if (ec || !w || w->admitted) return;
    std::erase(waiting_, w);
    ++wait_timeouts_;
    waiting_now_ = waiting_.size();
    w->refuse(Status(
        StatusCode::kPoolExhausted,
        fmt::format(
            "{}: {} {} in flight and none finished within {} ms; raise max_in_flight or slow "
            "down",
            endpoint_, max_in_flight_, unit_, pool_wait_.count())));
  });
  waiting_.push_back(std::move(w));
  waiting_now_ = waiting_.size();
}

// The slot goes straight to the longest waiter, or back.
void Admission::Finished(bool answered, bool failure) {
  if (answered) {
    breaker_.RecordSuccess();
  } else if (failure) {
    breaker_.RecordFailure(SteadyClock::now());
  }
  breaker_state_ = static_cast<uint64_t>(breaker_.state());
  breaker_trips_ = breaker_.trips();
  if (!waiting_.empty()) {
    auto w = std::move(waiting_.front());
    waiting_.pop_front();
    waiting_now_ = waiting_.size();
    w->admitted = true;
    w->timer->cancel();
    const auto waited = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - w->since)
            .count());
    wait_us_total_ += waited;
    wait_hist_.Record(waited);
    // Posted, not called: this runs inside another operation's completion.
    asio::post(io_, [w] { w->go(); });
    return;
  }
  in_flight_now_ = --in_flight_;
}

void Admission::Counters::AppendTo(std::map<std::string, double>& v) const {
  v["in_flight"] = static_cast<double>(in_flight);
  v["pool_waiting"] = static_cast<double>(waiting);
  v["pool_waits"] = static_cast<double>(waits);
  v["pool_wait_timeouts"] = static_cast<double>(wait_timeouts);
  v["pool_wait_ms_total"] = static_cast<double>(wait_us_total) / 1000.0;
  v["pool_wait_p50_ms"] = static_cast<double>(wait_p50_us) / 1000.0;
  v["pool_wait_p99_ms"] = static_cast<double>(wait_p99_us) / 1000.0;
  v["pool_wait_max_ms"] = static_cast<double>(wait_max_us) / 1000.0;
  v["breaker_state"] = static_cast<double>(breaker_state);
  v["breaker_trips"] = static_cast<double>(breaker_trips);
  v["breaker_rejections"] = static_cast<double>(breaker_rejections);
}

Admission::Counters Admission::counters() const {
  Counters c;
  c.in_flight = in_flight_now_.load();
  c.waiting = waiting_now_.load();
  c.waits = waits_.load();
  c.wait_timeouts = wait_timeouts_.load();
  c.wait_us_total = wait_us_total_.load();
  c.wait_p50_us = wait_hist_.Percentile(0.50);
  c.wait_p99_us = wait_hist_.Percentile(0.99);
  c.wait_max_us = wait_hist_.Max();
  c.breaker_state = breaker_state_.load();
  c.breaker_trips = breaker_trips_.load();
  c.breaker_rejections = breaker_rejections_.load();
  return c;
}

}  // namespace agentstate::core
