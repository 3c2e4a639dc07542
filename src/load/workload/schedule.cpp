#include "load/workload/schedule.hpp"

#include <algorithm>
#include <cmath>

#include "load/workload/workload.hpp"

namespace agentstate::load {

ArrivalSchedule::ArrivalSchedule(double start_per_s, double end_per_s,
                                 std::chrono::microseconds duration, Arrival kind, uint64_t seed,
                                 uint64_t max_arrivals)
    : start_(start_per_s),
      end_(end_per_s),
      duration_s_(std::chrono::duration<double>(duration).count()),
      kind_(kind),
      state_(Mix(seed)),
      left_(max_arrivals) {}

double ArrivalSchedule::RateAt(double t_s) const {
  if (duration_s_ <= 0) return start_;
  return start_ + (end_ - start_) * std::clamp(t_s / duration_s_, 0.0, 1.0);
}

std::optional<std::chrono::microseconds> ArrivalSchedule::Next() {
  if (left_ == 0) return std::nullopt;
  // The gap follows the rate in force now; a ramp from 0 waits until the rate is positive.
  double rate = RateAt(t_s_);
  while (rate <= 0 && t_s_ < duration_s_) {
    t_s_ += 0.001;
    rate = RateAt(t_s_);
  }
  if (rate <= 0) return std::nullopt;
  double gap = 1.0 / rate;
  if (kind_ == Arrival::kPoisson) {
    state_ = Mix(state_);
    // A uniform in (0, 1] from the top 53 bits, then an exponential gap.
    double u = (static_cast<double>(state_ >> 11) + 1.0) / 9007199254740992.0;
    gap = -std::log(u) / rate;
  }
  t_s_ += gap;
  if (t_s_ >= duration_s_) return std::nullopt;
  --left_;
  return std::chrono::microseconds(static_cast<int64_t>(t_s_ * 1e6));
}

}  // namespace agentstate::load
